BEGIN;
UPDATE chunks SET state = 'RUNNING', node = 'n' || :client_id, lease_until = now() + interval '60 s', attempt = attempt + 1
 WHERE (batch_id, idx) = (SELECT batch_id, idx FROM chunks WHERE state = 'PENDING' OR (state = 'RUNNING' AND lease_until < now())
                          ORDER BY batch_id, idx LIMIT 1 FOR UPDATE SKIP LOCKED)
 RETURNING idx \gset
COMMIT;
UPDATE chunks SET state = 'DONE', part_key = 'batch-1/part-' || :idx WHERE batch_id = 1 AND idx = :idx;
