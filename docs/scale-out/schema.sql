DROP TABLE IF EXISTS chunks, serial_intents, certificates;
CREATE TABLE chunks (
  batch_id bigint NOT NULL, idx int NOT NULL, first_row int NOT NULL, rows int NOT NULL,
  state text NOT NULL DEFAULT 'PENDING', node text, lease_until timestamptz, attempt int NOT NULL DEFAULT 0,
  part_key text, PRIMARY KEY (batch_id, idx));
CREATE INDEX chunks_claimable ON chunks (batch_id, idx) WHERE state <> 'DONE';
CREATE TABLE serial_intents (
  issuer_id bigint NOT NULL, serial bytea NOT NULL, batch_id bigint NOT NULL, row_index int NOT NULL,
  state text NOT NULL DEFAULT 'RESERVED', created_at bigint NOT NULL, PRIMARY KEY (issuer_id, serial));
CREATE INDEX serial_intents_batch ON serial_intents (batch_id, row_index);
CREATE TABLE certificates (
  device_id bytea PRIMARY KEY, batch_id bigint NOT NULL, issuer_id bigint NOT NULL, row_index int NOT NULL,
  common_name text NOT NULL, serial bytea NOT NULL, not_before bigint NOT NULL, not_after bigint NOT NULL,
  der bytea NOT NULL, file_name text NOT NULL, status text NOT NULL DEFAULT 'ISSUED');
CREATE UNIQUE INDEX certificates_serial ON certificates (serial, issuer_id);
-- 1,000 chunks of CHUNK rows each, one batch
INSERT INTO chunks (batch_id, idx, first_row, rows) SELECT 1, i, i * :chunk, :chunk FROM generate_series(0, 999) i;
