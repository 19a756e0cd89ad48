//! The store schema as an ordered list of migrations, keyed by `PRAGMA user_version`.
//!
//! Migration `n` (1-based) takes a database from format version `n - 1` to `n`. Migrations are
//! append-only: a shipped migration is never edited, a change is a new entry. `docs/STORE.md`
//! describes every table and the invariants the constraints below enforce.

/// Format version written by this build: the number of migrations.
pub const FORMAT_VERSION: i64 = 9;

/// The migrations, in order; `MIGRATIONS[n - 1]` produces format version `n`.
pub(super) const MIGRATIONS: [&str; 9] = [V1, V2, V3, V4, V5, V6, V7, V8, V9];

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

/// Format version 2: batch lifecycle columns, organizations and authorities with balances, the
/// append-only hash-chained audit log, serial intents.
///
/// `batches` grows by `ALTER TABLE ... ADD COLUMN` so a version 1 database upgrades in place
/// without copying its rows; SQLite checks the added CHECK constraints against existing rows.
const V2: &str = r"
CREATE TABLE organizations (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE authorities (
    id                INTEGER PRIMARY KEY,
    organization_id   INTEGER NOT NULL REFERENCES organizations (id),
    profile_name      TEXT    NOT NULL,
    issuer_id         INTEGER NOT NULL REFERENCES issuers (id),
    balance_available INTEGER NOT NULL CHECK (balance_available >= 0),
    balance_reserved  INTEGER NOT NULL DEFAULT 0 CHECK (balance_reserved >= 0),
    balance_used      INTEGER NOT NULL DEFAULT 0 CHECK (balance_used >= 0),
    created_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX authorities_organization ON authorities (organization_id);

ALTER TABLE batches ADD COLUMN order_number INTEGER;
ALTER TABLE batches ADD COLUMN user_id INTEGER;
ALTER TABLE batches ADD COLUMN active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1));
ALTER TABLE batches ADD COLUMN authority_id INTEGER REFERENCES authorities (id);
ALTER TABLE batches ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0);
ALTER TABLE batches ADD COLUMN used INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0);
ALTER TABLE batches ADD COLUMN failed INTEGER NOT NULL DEFAULT 0
    CHECK (failed >= 0 AND issued + failed <= size);
ALTER TABLE batches ADD COLUMN downloaded_at INTEGER;
ALTER TABLE batches ADD COLUMN zip_removed_at INTEGER;

-- Version 1 batches were numbered by id; new ones take max + 1 (see Store::create_batch_for).
UPDATE batches SET order_number = id;
UPDATE batches SET active = 0 WHERE status IN ('Rejected', 'Revoked', 'Broken');
CREATE UNIQUE INDEX batches_order_number ON batches (order_number);
CREATE INDEX batches_status ON batches (status);
CREATE INDEX batches_authority_user ON batches (authority_id, user_id);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    batch_id  INTEGER NOT NULL REFERENCES batches (id),
    device_id BLOB    CHECK (device_id IS NULL OR length(device_id) = 16),
    time      INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    type      TEXT    NOT NULL,
    message   TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

CREATE INDEX audit_log_batch ON audit_log (batch_id, device_id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE serial_intents (
    issuer_id  INTEGER NOT NULL REFERENCES issuers (id),
    serial     BLOB    NOT NULL
               CHECK (length(serial) BETWEEN 1 AND 20 AND substr(serial, 1, 1) <> x'00'),
    batch_id   INTEGER NOT NULL REFERENCES batches (id),
    row_index  INTEGER NOT NULL CHECK (row_index >= 0),
    state      TEXT    NOT NULL DEFAULT 'RESERVED' CHECK (state IN ('RESERVED', 'WASTED')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, serial)
) STRICT, WITHOUT ROWID;

CREATE INDEX serial_intents_batch ON serial_intents (batch_id, row_index);
";

/// Format version 3: `serial_intents` becomes the issuer's serial registry.
///
/// An intent is no longer deleted when its certificate is recorded: every serial an issuer ever
/// reserved or recorded keeps its row, and the table's primary key alone makes serials unique.
/// Recording a device then probes its own intent through the sequential `(batch_id, row_index)`
/// index instead of deleting a row at a random place of the serial key, and `certificates` drops
/// its serial index (a search by serial goes through the registry): the store's cost per
/// device halves (benches/store.rs). Certificates recorded before this version join the registry.
const V3: &str = r"
INSERT INTO serial_intents (issuer_id, serial, batch_id, row_index, created_at)
    SELECT issuer_id, serial, batch_id, row_index, not_before FROM certificates;
DROP INDEX certificates_serial;
";

/// Format version 4: users of the HTTP API and their refresh tokens (`engine/auth`).
///
/// Only new tables: a version 3 database upgrades in place. User ids are AUTOINCREMENT so an id
/// carried by a token never names a later user. `username` compares case-insensitively (ASCII),
/// so `Admin` and `admin` cannot be two accounts. A refresh token row outlives its use: a used
/// token presented again is how a stolen token is detected (and its family revoked).
const V4: &str = r"
CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL COLLATE NOCASE UNIQUE
                    CHECK (length(username) BETWEEN 1 AND 64),
    password_hash   TEXT    NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    organization_id INTEGER NOT NULL REFERENCES organizations (id),
    roles           TEXT    NOT NULL CHECK (roles <> ''),
    profiles        TEXT    CHECK (profiles IS NULL OR json_type(profiles) = 'array'),
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX users_organization ON users (organization_id);

CREATE TABLE refresh_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY CHECK (length(jti) = 32),
    family     TEXT    NOT NULL CHECK (length(family) = 32),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL CHECK (expires_at > issued_at),
    used_at    INTEGER,
    revoked_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
";

/// Format version 5: revocation (`engine/revocation`).
///
/// `revocations` holds one row per revoked serial of an issuer, keyed like the serial registry,
/// so a CRL streams an issuer's entries in serial order from the primary key and an OCSP lookup
/// is one key probe. `not_after` is copied from the certificate so a CRL can drop entries of
/// long-expired certificates without a join. Reasons 7 (unused by RFC 5280) and 8
/// (removeFromCRL, which only releases a hold) are never stored.
///
/// `issuers` grows the CRL state: the last CRL number issued (strictly increasing, RFC 5280
/// section 5.2.3), its times, and `revocation_version`, bumped by every transaction that changes
/// an issuer's revocations: a CRL records the version it was built from, so a server sees that a
/// revocation (from any process) needs a new CRL and that its cached OCSP answers are stale.
///
/// `ocsp_responders` keeps every delegated OCSP responder certificate an issuer signed. Their
/// serials share the issuer's serial space with device certificates: a trigger refuses a
/// serial intent that an OCSP responder certificate already uses (the responder side checks the
/// registry before it signs).
const V5: &str = r"
CREATE TABLE revocations (
    issuer_id  INTEGER NOT NULL REFERENCES issuers (id),
    serial     BLOB    NOT NULL
               CHECK (length(serial) BETWEEN 1 AND 20 AND substr(serial, 1, 1) <> x'00'),
    device_id  BLOB    NOT NULL CHECK (length(device_id) = 16),
    batch_id   INTEGER NOT NULL REFERENCES batches (id),
    reason     INTEGER NOT NULL CHECK (reason BETWEEN 0 AND 10 AND reason NOT IN (7, 8)),
    revoked_at INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    PRIMARY KEY (issuer_id, serial)
) STRICT, WITHOUT ROWID;

ALTER TABLE issuers ADD COLUMN revocation_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issuers ADD COLUMN crl_number INTEGER NOT NULL DEFAULT 0 CHECK (crl_number >= 0);
ALTER TABLE issuers ADD COLUMN crl_this_update INTEGER;
ALTER TABLE issuers ADD COLUMN crl_next_update INTEGER;
ALTER TABLE issuers ADD COLUMN crl_revocation_version INTEGER;

CREATE TABLE ocsp_responders (
    issuer_id  INTEGER NOT NULL REFERENCES issuers (id),
    serial     BLOB    NOT NULL
               CHECK (length(serial) BETWEEN 1 AND 20 AND substr(serial, 1, 1) <> x'00'),
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL CHECK (not_after > not_before),
    der        BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, serial)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER serial_intents_not_responder BEFORE INSERT ON serial_intents
WHEN EXISTS (SELECT 1 FROM ocsp_responders r
             WHERE r.issuer_id = NEW.issuer_id AND r.serial = NEW.serial)
BEGIN
    SELECT RAISE(ABORT, 'serial number used by an OCSP responder certificate');
END;
";

/// Format version 6: named issuers and their signers (seed 004), and the signers' audit log.
///
/// A signer is one issuing key of a named issuer (seed 004's tenant) with its current
/// certificate, registered in `issuers` once it has one (`issuer_id`, NULL while it waits for
/// an external root). A renewal replaces the `issuers` row's certificate in place, so serial
/// registry, revocations and CRL numbers stay with the key. At most one signer per issuer is
/// ACTIVE (the partial unique index): rotating retires the previous one in the same
/// transaction. A DELETED signer keeps its row (its `issuers` row may still be referenced by
/// expired certificates) but its key files are gone.
///
/// `signer_events` is append-only like `audit_log` (triggers refuse UPDATE and DELETE); its
/// highest id is the signers' epoch, which a server polls to pick up changes made elsewhere.
const V6: &str = r"
CREATE TABLE signers (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 26),
    issuer_name TEXT    NOT NULL COLLATE NOCASE CHECK (length(issuer_name) BETWEEN 1 AND 64),
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    state       TEXT    NOT NULL
                CHECK (state IN ('PENDING', 'ACTIVE', 'RETIRED', 'REVOKED', 'DELETED')),
    generation  INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    issuer_id   INTEGER UNIQUE REFERENCES issuers (id),
    algorithm   TEXT    NOT NULL,
    key_dir     TEXT    NOT NULL,
    root_dir    TEXT,
    not_after   INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK (state IN ('PENDING', 'DELETED') OR issuer_id IS NOT NULL)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX signers_one_active ON signers (issuer_name) WHERE state = 'ACTIVE';
CREATE INDEX signers_issuer ON signers (issuer_name, created_at);

CREATE TABLE signer_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    signer_id TEXT    NOT NULL REFERENCES signers (id),
    time      INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    type      TEXT    NOT NULL,
    message   TEXT    NOT NULL
) STRICT;

CREATE INDEX signer_events_signer ON signer_events (signer_id);

CREATE TRIGGER signer_events_no_update BEFORE UPDATE ON signer_events
BEGIN
    SELECT RAISE(ABORT, 'signer_events is append-only');
END;

CREATE TRIGGER signer_events_no_delete BEFORE DELETE ON signer_events
BEGIN
    SELECT RAISE(ABORT, 'signer_events is append-only');
END;
";

/// Format version 7: seed 001's organization record (address, primary contact, manufacturer id,
/// logo, status, organization parameters) and the authorities' `enabled` flag, for the
/// administration API, with `authority_events`, the append-only log of what administrators do
/// to authorities (created, balance topped up or set, enabled, disabled).
///
/// Only added columns: a version 6 database upgrades in place, its organizations ACTIVE with
/// empty details. `DELETED` hides an organization from every list: its authorities and finished
/// batches stay referenced by their records.
const V7: &str = r"
ALTER TABLE organizations ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN contact_name TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN contact_email TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN contact_phone TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN manufacture_id TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN logo TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE'
    CHECK (status IN ('ACTIVE', 'INACTIVE', 'DELETED'));
ALTER TABLE organizations ADD COLUMN parameters_json TEXT NOT NULL DEFAULT '{}'
    CHECK (json_type(parameters_json) = 'object');
ALTER TABLE organizations ADD COLUMN updated_at INTEGER;

ALTER TABLE authorities ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1));

ALTER TABLE users ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '' COLLATE NOCASE;

CREATE TABLE authority_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    authority_id INTEGER NOT NULL REFERENCES authorities (id),
    time         INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    message      TEXT    NOT NULL
) STRICT;

CREATE INDEX authority_events_authority ON authority_events (authority_id);

CREATE TRIGGER authority_events_no_update BEFORE UPDATE ON authority_events
BEGIN
    SELECT RAISE(ABORT, 'authority_events is append-only');
END;

CREATE TRIGGER authority_events_no_delete BEFORE DELETE ON authority_events
BEGIN
    SELECT RAISE(ABORT, 'authority_events is append-only');
END;
";

/// Format version 8: API clients (seed 002 credentials), password reset codes, and removable
/// authorities.
///
/// - An API client is a row of `users` with `kind = 'CLIENT'`: its `username` is the client id,
///   its `password_hash` the argon2id hash of the secret, its roles `USER`, its organization
///   and profiles its scope, `active = 0` while locked. So a client's batches, balances and
///   token checks are a user's, and the user lists leave clients out. `client_name` is the
///   seed's `credentialName`; `generation` counts secret resets.
/// - `password_resets` holds the one outstanding reset code of a user, as its SHA-256 (the code
///   is 122 random bits, so a fast hash suffices); a new request replaces it, use spends it.
///   `password_reset_requests` remembers when a reset was last asked for a login (hashed,
///   whether or not it names a user), for the seed's "once per 15 minutes".
/// - `client_events`: the append-only log of what administrators did to API clients (created,
///   changed, locked, unlocked, secret reset, deleted), keyed by client id so it outlives the
///   client.
/// - `authorities.deleted_at`: an administrator removed the authority from its organization;
///   its batches keep referring to it.
const V8: &str = r"
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'USER' CHECK (kind IN ('USER', 'CLIENT'));
ALTER TABLE users ADD COLUMN client_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1);

CREATE TABLE password_resets (
    user_id    INTEGER NOT NULL PRIMARY KEY REFERENCES users (id),
    code_hash  TEXT    NOT NULL UNIQUE CHECK (length(code_hash) = 64),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL CHECK (expires_at > created_at),
    used_at    INTEGER
) STRICT;

CREATE TABLE password_reset_requests (
    login_hash   TEXT    NOT NULL PRIMARY KEY CHECK (length(login_hash) = 64),
    requested_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

ALTER TABLE authorities ADD COLUMN deleted_at INTEGER;

CREATE TABLE client_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT    NOT NULL,
    time      INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    type      TEXT    NOT NULL,
    message   TEXT    NOT NULL
) STRICT;

CREATE INDEX client_events_client ON client_events (client_id);

CREATE TRIGGER client_events_no_update BEFORE UPDATE ON client_events
BEGIN
    SELECT RAISE(ABORT, 'client_events is append-only');
END;

CREATE TRIGGER client_events_no_delete BEFORE DELETE ON client_events
BEGIN
    SELECT RAISE(ABORT, 'client_events is append-only');
END;
";

/// Format version 9: batches issued in chunks by several nodes (docs/SCALE-OUT.md).
///
/// `batch_work` holds what any node needs to issue a chunk of a batch it did not validate (the
/// input's object key, the profile parameters, the PKCS#12 password sealed under the nodes'
/// shared key, deleted when the batch ends). `chunks` is the work queue: a node claims a
/// PENDING chunk, or a RUNNING one whose lease ran out, and finishes it only while it still
/// holds it (same node, same attempt). `chunk_rows` says where each device's entry lies in its
/// chunk's part, so the download can build the central directory and the manifest.
const V9: &str = r"
CREATE TABLE batch_work (
    batch_id        INTEGER NOT NULL PRIMARY KEY REFERENCES batches (id),
    spec_json       TEXT    NOT NULL,
    sealed_password BLOB,
    tail_key        TEXT,
    tail_size       INTEGER CHECK (tail_size IS NULL OR tail_size >= 0)
) STRICT;

CREATE TABLE chunks (
    batch_id    INTEGER NOT NULL REFERENCES batches (id),
    idx         INTEGER NOT NULL CHECK (idx >= 0),
    kind        TEXT    NOT NULL CHECK (kind IN ('PART', 'ASSEMBLE')),
    first_row   INTEGER NOT NULL CHECK (first_row >= 1),
    rows        INTEGER NOT NULL CHECK (rows >= 0),
    names_json  TEXT    NOT NULL DEFAULT '[]',
    state       TEXT    NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'RUNNING', 'DONE')),
    node        TEXT,
    lease_until INTEGER,
    attempt     INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    part_key    TEXT,
    part_size   INTEGER CHECK (part_size IS NULL OR part_size >= 0),
    PRIMARY KEY (batch_id, idx)
) STRICT;

CREATE INDEX chunks_open ON chunks (state, batch_id, idx);

CREATE TABLE chunk_rows (
    batch_id     INTEGER NOT NULL,
    row_index    INTEGER NOT NULL CHECK (row_index >= 0),
    chunk_idx    INTEGER NOT NULL CHECK (chunk_idx >= 0),
    device_id    BLOB    NOT NULL CHECK (length(device_id) = 16),
    entry_offset INTEGER CHECK (entry_offset IS NULL OR entry_offset >= 0),
    entry_size   INTEGER CHECK (entry_size IS NULL OR entry_size >= 0),
    crc32        INTEGER CHECK (crc32 IS NULL OR crc32 BETWEEN 0 AND 4294967295),
    sha256       BLOB    CHECK (sha256 IS NULL OR length(sha256) = 32),
    reason       TEXT,
    PRIMARY KEY (batch_id, row_index),
    FOREIGN KEY (batch_id, chunk_idx) REFERENCES chunks (batch_id, idx)
) STRICT, WITHOUT ROWID;
";
