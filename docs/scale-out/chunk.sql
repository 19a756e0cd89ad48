-- one chunk's whole coordination: claim with a lease, reserve its serials, record its certificates and finish it
BEGIN;
UPDATE chunks SET state = 'RUNNING', node = 'n' || :client_id, lease_until = now() + interval '60 s', attempt = attempt + 1
 WHERE (batch_id, idx) = (SELECT batch_id, idx FROM chunks WHERE state = 'PENDING' OR (state = 'RUNNING' AND lease_until < now())
                          ORDER BY batch_id, idx LIMIT 1 FOR UPDATE SKIP LOCKED)
 RETURNING idx \gset
COMMIT;
INSERT INTO serial_intents (issuer_id, serial, batch_id, row_index, created_at)
 SELECT 1, decode(replace(gen_random_uuid()::text, '-', ''), 'hex'), 1, :idx * :chunk + g, 0 FROM generate_series(0, :chunk - 1) g;
BEGIN;
INSERT INTO certificates (device_id, batch_id, issuer_id, row_index, common_name, serial, not_before, not_after, der, file_name)
 SELECT decode(md5(random()::text), 'hex'), 1, 1, s.row_index, 'device-' || s.row_index, s.serial, 0, 0, convert_to(repeat('x', 520), 'UTF8'), 'device-' || s.row_index || '.p12'
   FROM serial_intents s WHERE s.batch_id = 1 AND s.row_index >= :idx * :chunk AND s.row_index < (:idx + 1) * :chunk;
UPDATE chunks SET state = 'DONE', part_key = 'batch-1/part-' || :idx WHERE batch_id = 1 AND idx = :idx;
COMMIT;
