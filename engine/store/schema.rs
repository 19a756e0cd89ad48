//! The store schema as an ordered list of migrations, keyed by `PRAGMA user_version`.
//!
//! Migration `n` (1-based) takes a database from format version `n - 1` to `n`. Migrations are
//! append-only: a shipped migration is never edited, a change is a new entry. `docs/STORE.md`
//! describes every table and the invariants the constraints below enforce.

/// Format version written by this build: the number of migrations.
pub const FORMAT_VERSION: i64 = 1;

/// The migrations, in order; `MIGRATIONS[n - 1]` produces format version `n`.
pub(super) const MIGRATIONS: [&str; 1] = [V1];

/// Format version 1: issuers, batches, certificates.
const V1: &str = r"
CREATE TABLE issuers (
    id          INTEGER PRIMARY KEY,
    fingerprint BLOB    NOT NULL UNIQUE CHECK (length(fingerprint) = 32),
    subject     TEXT    NOT NULL,
    der         BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE batches (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_name      TEXT    NOT NULL,
    profile_name    TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('CSV', 'CSR', 'GENERATOR', 'SINGLE')),
    size            INTEGER NOT NULL CHECK (size >= 0),
    issuer_id       INTEGER NOT NULL REFERENCES issuers (id),
    status          TEXT    NOT NULL CHECK (status IN (
                        'Pending Creation', 'Pending Issue', 'Batch Issued Partly',
                        'Ready For Download', 'Zip removed after expiration',
                        'Processing Reject', 'Processing Revoke', 'Rejected', 'Revoked',
                        'Broken')),
    reason          TEXT,
    parameters_json TEXT    NOT NULL,
    output_path     TEXT    NOT NULL,
    issued          INTEGER NOT NULL DEFAULT 0 CHECK (issued >= 0 AND issued <= size),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (id, issuer_id)
) STRICT;

CREATE TABLE certificates (
    device_id   BLOB    NOT NULL PRIMARY KEY CHECK (length(device_id) = 16),
    batch_id    INTEGER NOT NULL,
    issuer_id   INTEGER NOT NULL,
    row_index   INTEGER NOT NULL CHECK (row_index >= 0),
    common_name TEXT    NOT NULL,
    serial      BLOB    NOT NULL
                CHECK (length(serial) BETWEEN 1 AND 20 AND substr(serial, 1, 1) <> x'00'),
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    der         BLOB    NOT NULL,
    file_name   TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'ISSUED',
    FOREIGN KEY (batch_id, issuer_id) REFERENCES batches (id, issuer_id)
) STRICT;

CREATE UNIQUE INDEX certificates_serial ON certificates (serial, issuer_id);
CREATE UNIQUE INDEX certificates_batch_row ON certificates (batch_id, row_index);
CREATE INDEX certificates_common_name ON certificates (common_name);
";
