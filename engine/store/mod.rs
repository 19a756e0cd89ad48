//! Persistence of issuers, batches and issued certificates in one embedded SQLite database.
//!
//! A [`Store`] wraps one connection to `<data_dir>/certmill.db` (WAL mode, foreign keys on) and
//! applies the schema migrations of [`FORMAT_VERSION`] when it opens. The batch writer records
//! certificates chunk by chunk, each chunk in one transaction, and the database itself enforces
//! the invariants a CA cannot break: a serial number is unique per issuer across all batches, a
//! row of a batch is recorded once, a batch never records more certificates than its size.
//! `docs/STORE.md` describes the tables, the format version and the invariants.
//!
//! It does not decide batch lifecycle transitions, balances or audit records (later issues
//! build them on these tables), it never sees private keys or PKCS#12 passwords, and it does
//! not generate serial numbers: it only refuses to record one twice.

mod schema;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{ffi, params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

pub use schema::FORMAT_VERSION;

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "certmill.db";

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest serial number magnitude accepted, in octets (RFC 5280 §4.1.2.2: "Conforming CAs
/// MUST NOT use serialNumber values longer than 20 octets").
const MAX_SERIAL_OCTETS: usize = 20;

/// Batch kinds accepted by [`Store::create_batch`], as the batch sources name them.
pub const BATCH_KINDS: [&str; 4] = ["CSV", "CSR", "GENERATOR", "SINGLE"];

/// Store row id of a batch (`batchId` in the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchId(pub i64);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Store row id of a registered issuing CA certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IssuerId(pub i64);

impl fmt::Display for IssuerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Status of a batch, spelled exactly as seed 001 "Batch Statuses" names it.
///
/// The variants follow the seed's table (the lifecycle order), not the alphabet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchStatus {
    /// "Pending Creation": the certificates of the batch are being created.
    PendingCreation,
    /// "Pending Issue": the certificates of the batch are being issued.
    PendingIssue,
    /// "Batch Issued Partly": some certificates are ready, others failed.
    BatchIssuedPartly,
    /// "Ready For Download": all certificates are ready to be downloaded.
    ReadyForDownload,
    /// "Zip removed after expiration": the ZIP was removed after its lifetime.
    ZipRemovedAfterExpiration,
    /// "Processing Reject": all certificates of the batch are being rejected.
    ProcessingReject,
    /// "Processing Revoke": all certificates of the batch are being revoked.
    ProcessingRevoke,
    /// "Rejected": rejected by the user before download; the balance is restored.
    Rejected,
    /// "Revoked": revoked by the user after download; the balance is not restored.
    Revoked,
    /// "Broken": failed as a whole (the reason says why).
    Broken,
}

impl BatchStatus {
    /// Every status, in the seed's order.
    pub const ALL: [BatchStatus; 10] = [
        BatchStatus::PendingCreation,
        BatchStatus::PendingIssue,
        BatchStatus::BatchIssuedPartly,
        BatchStatus::ReadyForDownload,
        BatchStatus::ZipRemovedAfterExpiration,
        BatchStatus::ProcessingReject,
        BatchStatus::ProcessingRevoke,
        BatchStatus::Rejected,
        BatchStatus::Revoked,
        BatchStatus::Broken,
    ];

    /// The status string of seed 001, as stored and as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::PendingCreation => "Pending Creation",
            BatchStatus::PendingIssue => "Pending Issue",
            BatchStatus::BatchIssuedPartly => "Batch Issued Partly",
            BatchStatus::ReadyForDownload => "Ready For Download",
            BatchStatus::ZipRemovedAfterExpiration => "Zip removed after expiration",
            BatchStatus::ProcessingReject => "Processing Reject",
            BatchStatus::ProcessingRevoke => "Processing Revoke",
            BatchStatus::Rejected => "Rejected",
            BatchStatus::Revoked => "Revoked",
            BatchStatus::Broken => "Broken",
        }
    }

    /// Parses a status string; exact match, as written by [`BatchStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        BatchStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

impl fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status of one device's certificate, spelled as seed 001 "Certificate Search Request"
/// (`"status" : "COLLECTED"`) spells it: upper case.
///
/// `COLLECTED` is the seed's own example; `ISSUED` is the seed's word for an issued request;
/// `REJECTED` and `REVOKED` are what the seed's "Processing Reject" and "Processing Revoke" do
/// to "all certificates from batch".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// "COLLECTED": the batch holding the certificate has been downloaded.
    Collected,
    /// "ISSUED": signed and recorded, not yet downloaded.
    Issued,
    /// "REJECTED": the batch was rejected before download.
    Rejected,
    /// "REVOKED": the certificate was revoked.
    Revoked,
}

impl DeviceStatus {
    /// Every status, in alphabetical order.
    pub const ALL: [DeviceStatus; 4] = [
        DeviceStatus::Collected,
        DeviceStatus::Issued,
        DeviceStatus::Rejected,
        DeviceStatus::Revoked,
    ];

    /// The status string, as stored and as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Collected => "COLLECTED",
            DeviceStatus::Issued => "ISSUED",
            DeviceStatus::Rejected => "REJECTED",
            DeviceStatus::Revoked => "REVOKED",
        }
    }

    /// Parses a status string; exact match, as written by [`DeviceStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        DeviceStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

impl fmt::Display for DeviceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch about to be created by [`Store::create_batch`].
#[derive(Clone, Copy, Debug)]
pub struct NewBatch<'a> {
    /// `batchName`, as the user gave it.
    pub batch_name: &'a str,
    /// Name of the profile the batch is issued under (`profile` in the API).
    pub profile_name: &'a str,
    /// Source of the devices: one of [`BATCH_KINDS`] (`CSV`, `CSR`, `GENERATOR`, `SINGLE`).
    pub kind: &'a str,
    /// Number of devices the batch was ordered for.
    pub size: u64,
    /// The CA that signs the batch.
    pub issuer: IssuerId,
    /// Batch parameters as JSON (`generatorParametersValues`), without secrets.
    pub parameters_json: &'a str,
    /// Where the batch's ZIP is written.
    pub output_path: &'a str,
}

/// One issued certificate, as the batch writer records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Device id (`deviceId`), UUID bytes.
    pub device_id: [u8; 16],
    /// Index of the device in its batch.
    pub row: u64,
    /// Subject common name.
    pub common_name: String,
    /// Serial number: big-endian magnitude without sign byte (leading zero octets are ignored).
    pub serial: Vec<u8>,
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Name of the device's entry in the batch ZIP.
    pub file_name: String,
}

/// One recorded certificate, as [`Store::find_certificates`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRow {
    /// Device id (`deviceId`), hyphenated lower-case UUID.
    pub device_id: String,
    /// Batch the certificate was issued in.
    pub batch_id: BatchId,
    /// Index of the device in its batch.
    pub row: u64,
    /// Subject common name.
    pub common_name: String,
    /// Serial number, lower-case hex of the magnitude octets, no colons.
    pub serial_hex: String,
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
    /// Status of the certificate.
    pub status: DeviceStatus,
    /// Name of the device's entry in the batch ZIP.
    pub file_name: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// One batch, as [`Store::batch`] and [`Store::batches`] return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRow {
    /// Batch id (`batchId`).
    pub id: BatchId,
    /// `batchName`.
    pub batch_name: String,
    /// Profile name (`profile`).
    pub profile_name: String,
    /// Source of the devices: one of [`BATCH_KINDS`].
    pub kind: String,
    /// Number of devices ordered (`size`).
    pub size: u64,
    /// Current status.
    pub status: BatchStatus,
    /// Creation time (`creationDate`), unix seconds.
    pub created_at: i64,
    /// Number of certificates recorded so far.
    pub issued: u64,
    /// Where the batch's ZIP is written.
    pub output_path: String,
    /// Why the batch has its status (`rejectReason`, or why it is Broken), if given.
    pub reason: Option<String>,
    /// The CA that signs the batch.
    pub issuer: IssuerId,
    /// Batch parameters as JSON (`generatorParametersValues`).
    pub parameters_json: String,
    /// Time of the last status change (creation time until then), unix seconds.
    pub updated_at: i64,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Recording the chunk would take the batch past the size it was ordered (and paid) for.
    #[error("batch {batch}: recording {adding} more certificates would exceed its size {size} ({issued} already recorded)")]
    BatchFull {
        /// The batch.
        batch: BatchId,
        /// Size the batch was created with.
        size: u64,
        /// Certificates already recorded.
        issued: u64,
        /// Certificates in the refused chunk.
        adding: u64,
    },
    /// No batch has this id.
    #[error("batch {batch} does not exist")]
    BatchNotFound {
        /// The id asked for.
        batch: BatchId,
    },
    /// A stored value cannot be read back as its type (the database was altered outside
    /// certmill, or by a newer build that wrote the same format version).
    #[error("{table} row {id}: column {column} holds an unexpected value {value:?}")]
    CorruptRow {
        /// Table read.
        table: &'static str,
        /// Row id (or device id for certificates) of the row.
        id: String,
        /// Column read.
        column: &'static str,
        /// What the column holds.
        value: String,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {}", path.display())]
    CreateDataDir {
        /// Directory asked for.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A database operation failed.
    #[error("database error while {action}")]
    Database {
        /// What was being done, e.g. "recording certificates".
        action: &'static str,
        /// Cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A device id is already recorded (in this chunk or an earlier one); the chunk was
    /// rolled back.
    #[error("row {row}: device id {device_id} is already recorded; chunk rolled back")]
    DuplicateDevice {
        /// Row of the refused record.
        row: u64,
        /// The device id, hyphenated.
        device_id: String,
    },
    /// A row of the batch is already recorded; the chunk was rolled back.
    #[error("batch {batch}: row {row} is already recorded; chunk rolled back")]
    DuplicateRow {
        /// The batch.
        batch: BatchId,
        /// The row recorded twice.
        row: u64,
    },
    /// The issuer already issued a certificate with this serial number (in any batch); the
    /// whole chunk was rolled back.
    #[error("serial number {serial_hex} is already used by this issuer; chunk rolled back")]
    DuplicateSerial {
        /// The serial number, lower-case hex.
        serial_hex: String,
    },
    /// A certificate search named neither a common name nor a serial number.
    #[error("certificate search needs a common name or a serial number")]
    EmptyQuery,
    /// The batch kind is not one of [`BATCH_KINDS`].
    #[error("batch kind {kind:?} is not one of CSV, CSR, GENERATOR, SINGLE")]
    InvalidBatchKind {
        /// The kind given.
        kind: String,
    },
    /// A record's serial number is zero or longer than 20 octets (RFC 5280 §4.1.2.2).
    #[error("row {row}: serial number has {octets} significant octets; it must be 1 to 20")]
    InvalidSerial {
        /// Row of the refused record.
        row: u64,
        /// Octets after leading zeros are dropped (0 for a zero serial).
        octets: usize,
    },
    /// A serial number searched for is not hexadecimal (colons and case aside), or is zero.
    #[error("serial number {input:?} is not a non-zero hexadecimal number")]
    InvalidSerialQuery {
        /// The text searched for.
        input: String,
    },
    /// No issuer has this id.
    #[error("issuer {issuer} does not exist")]
    IssuerNotFound {
        /// The id given.
        issuer: IssuerId,
    },
    /// SQLite refused WAL mode (e.g. on a network file system).
    #[error("database {} cannot use WAL mode; journal mode is {mode:?}", path.display())]
    JournalMode {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// The database file could not be opened or configured.
    #[error("cannot open database {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer certmill with a format this build does not know.
    #[error("database {} has format version {found}; this build knows up to {supported}", path.display())]
    UnsupportedFormat {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// [`FORMAT_VERSION`].
        supported: i64,
    },
    /// A number does not fit SQLite's signed 64-bit integers.
    #[error("{field} {value} is too large to store")]
    ValueTooLarge {
        /// Which value, e.g. "batch size" or "row".
        field: &'static str,
        /// The value.
        value: u64,
    },
}

fn system_clock() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The certmill database: one SQLite connection. `Send`, not `Sync`: each thread opens its own.
#[derive(Debug)]
pub struct Store {
    connection: Connection,
    /// Current time in unix seconds; injected so tests control `created_at`.
    clock: fn() -> i64,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/certmill.db` and brings it to [`FORMAT_VERSION`].
    ///
    /// Creates `data_dir` if missing. The connection uses WAL mode, `synchronous=NORMAL`,
    /// foreign keys and a 5 s busy timeout. Migrations run in one immediate transaction each,
    /// so concurrent openers apply each one exactly once.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let connection = Connection::open(&path).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::JournalMode { path, mode });
        }
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        // The writer, the finders and the later lifecycle queries stay well under this.
        connection.set_prepared_statement_cache_capacity(32);
        let mut store = Store {
            connection,
            clock: system_clock,
        };
        store.migrate(&path)?;
        Ok(store)
    }

    /// Replaces the clock that stamps `created_at` and `updated_at` (tests, replays).
    pub fn with_clock(mut self, clock: fn() -> i64) -> Store {
        self.clock = clock;
        self
    }

    /// Format version of the open database (`PRAGMA user_version`).
    pub fn format_version(&self) -> Result<i64, StoreError> {
        user_version(&self.connection)
    }

    fn migrate(&mut self, path: &Path) -> Result<(), StoreError> {
        // Cheap check outside a transaction: an up-to-date database takes no write lock.
        let found = user_version(&self.connection)?;
        if found > FORMAT_VERSION {
            return Err(unsupported(path, found));
        }
        if found == FORMAT_VERSION {
            return Ok(());
        }
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("starting a schema migration"))?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let found = user_version(&tx)?;
        if found > FORMAT_VERSION {
            return Err(unsupported(path, found));
        }
        for (done, sql) in (1..=FORMAT_VERSION).zip(schema::MIGRATIONS) {
            if done <= found {
                continue;
            }
            tx.execute_batch(sql)
                .map_err(db("applying a schema migration"))?;
            tx.pragma_update(None, "user_version", done)
                .map_err(db("recording the format version"))?;
        }
        tx.commit().map_err(db("committing a schema migration"))
    }

    /// Registers an issuing CA by its certificate DER and returns its id.
    ///
    /// The key is the SHA-256 of the DER: registering the same certificate again returns the
    /// existing id and keeps the subject first given.
    pub fn register_issuer(
        &self,
        certificate_der: &[u8],
        subject: &str,
    ) -> Result<IssuerId, StoreError> {
        let fingerprint = Sha256::digest(certificate_der);
        let now = (self.clock)();
        self.connection
            .prepare_cached(
                "INSERT INTO issuers (fingerprint, subject, der, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (fingerprint) DO NOTHING",
            )
            .and_then(|mut insert| {
                insert.execute(params![fingerprint.as_slice(), subject, certificate_der, now])
            })
            .map_err(db("registering an issuer"))?;
        self.connection
            .prepare_cached("SELECT id FROM issuers WHERE fingerprint = ?1")
            .and_then(|mut select| select.query_row([fingerprint.as_slice()], |row| row.get(0)))
            .map(IssuerId)
            .map_err(db("looking up a registered issuer"))
    }

    /// Inserts a batch in status Pending Issue, created now, and returns its id.
    pub fn create_batch(&self, batch: &NewBatch<'_>) -> Result<BatchId, StoreError> {
        if !BATCH_KINDS.contains(&batch.kind) {
            return Err(StoreError::InvalidBatchKind {
                kind: batch.kind.to_owned(),
            });
        }
        let size = to_sql_integer("batch size", batch.size)?;
        let now = (self.clock)();
        let inserted = self
            .connection
            .prepare_cached(
                "INSERT INTO batches (batch_name, profile_name, kind, size, issuer_id, status,
                                      parameters_json, output_path, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    batch.batch_name,
                    batch.profile_name,
                    batch.kind,
                    size,
                    batch.issuer.0,
                    BatchStatus::PendingIssue.as_str(),
                    batch.parameters_json,
                    batch.output_path,
                    now,
                ])
            });
        match inserted {
            Ok(_) => Ok(BatchId(self.connection.last_insert_rowid())),
            Err(error) if extended_code(&error) == Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                Err(StoreError::IssuerNotFound {
                    issuer: batch.issuer,
                })
            }
            Err(source) => Err(StoreError::Database {
                action: "creating a batch",
                source,
            }),
        }
    }

    /// Records certificates of a batch in one transaction, with status ISSUED.
    ///
    /// All or nothing: any refused record rolls the whole chunk back. Serial numbers are unique
    /// per issuer across all batches ([`StoreError::DuplicateSerial`]), device ids are unique
    /// ([`StoreError::DuplicateDevice`]), a row of a batch is recorded once
    /// ([`StoreError::DuplicateRow`]) and a batch never records more than its size
    /// ([`StoreError::BatchFull`]).
    pub fn insert_certificates(
        &mut self,
        batch: BatchId,
        records: &[CertificateRecord],
    ) -> Result<(), StoreError> {
        const ACTION: &str = "recording certificates";
        // Immediate: take the write lock up front, so a busy database waits for the busy
        // timeout instead of failing when a read transaction would upgrade to a write.
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db(ACTION))?;
        let (issuer_id, size, issued): (i64, i64, i64) = tx
            .prepare_cached("SELECT issuer_id, size, issued FROM batches WHERE id = ?1")
            .and_then(|mut select| {
                select
                    .query_row([batch.0], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                    .optional()
            })
            .map_err(db(ACTION))?
            .ok_or(StoreError::BatchNotFound { batch })?;
        let size = from_sql_integer("batches", batch.0, "size", size)?;
        let issued = from_sql_integer("batches", batch.0, "issued", issued)?;
        let adding = u64::try_from(records.len()).map_err(|_| StoreError::ValueTooLarge {
            field: "chunk length",
            value: u64::MAX,
        })?;
        if issued.checked_add(adding).is_none_or(|total| total > size) {
            return Err(StoreError::BatchFull {
                batch,
                size,
                issued,
                adding,
            });
        }
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO certificates (device_id, batch_id, issuer_id, row_index,
                         common_name, serial, not_before, not_after, der, file_name, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(db(ACTION))?;
            for record in records {
                let serial = significant_octets(&record.serial);
                if serial.is_empty() || serial.len() > MAX_SERIAL_OCTETS {
                    return Err(StoreError::InvalidSerial {
                        row: record.row,
                        octets: serial.len(),
                    });
                }
                let row = to_sql_integer("row", record.row)?;
                let inserted = insert.execute(params![
                    record.device_id.as_slice(),
                    batch.0,
                    issuer_id,
                    row,
                    record.common_name,
                    serial,
                    record.not_before,
                    record.not_after,
                    record.der,
                    record.file_name,
                    DeviceStatus::Issued.as_str(),
                ]);
                if let Err(error) = inserted {
                    return Err(explain_insert_failure(
                        &tx, error, batch, issuer_id, record, serial,
                    ));
                }
            }
        }
        let adding = to_sql_integer("chunk length", adding)?;
        tx.prepare_cached("UPDATE batches SET issued = issued + ?2 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![batch.0, adding]))
            .map_err(db(ACTION))?;
        tx.commit().map_err(db("committing recorded certificates"))
    }

    /// Sets the status of a batch, stamping `updated_at`.
    ///
    /// `reason` replaces the stored reason when given; `None` keeps the stored one, so a
    /// user's reject reason survives the system's later status steps.
    pub fn set_batch_status(
        &self,
        batch: BatchId,
        status: BatchStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = (self.clock)();
        let changed = self
            .connection
            .prepare_cached(
                "UPDATE batches SET status = ?2, reason = coalesce(?3, reason), updated_at = ?4
                 WHERE id = ?1",
            )
            .and_then(|mut update| update.execute(params![batch.0, status.as_str(), reason, now]))
            .map_err(db("setting a batch status"))?;
        if changed == 0 {
            return Err(StoreError::BatchNotFound { batch });
        }
        Ok(())
    }

    /// The batch with this id, if any.
    pub fn batch(&self, batch: BatchId) -> Result<Option<BatchRow>, StoreError> {
        let raw = self
            .connection
            .prepare_cached(&format!("{SELECT_BATCH} WHERE id = ?1"))
            .and_then(|mut select| select.query_row([batch.0], RawBatch::read).optional())
            .map_err(db("reading a batch"))?;
        raw.map(RawBatch::parse).transpose()
    }

    /// All batches, newest (highest id) first.
    pub fn batches(&self) -> Result<Vec<BatchRow>, StoreError> {
        let raws = self
            .connection
            .prepare_cached(&format!("{SELECT_BATCH} ORDER BY id DESC"))
            .and_then(|mut select| {
                select
                    .query_map([], RawBatch::read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("listing batches"))?;
        raws.into_iter().map(RawBatch::parse).collect()
    }

    /// Certificates with this exact common name and/or serial number, oldest batch first.
    ///
    /// The serial is hexadecimal, case-insensitive; colons, surrounding whitespace and leading
    /// zeros are ignored. Both criteria given means both must match. Serials are unique per
    /// issuer only, so a serial search can return certificates of several issuers.
    pub fn find_certificates(
        &self,
        common_name: Option<&str>,
        serial_hex: Option<&str>,
    ) -> Result<Vec<CertificateRow>, StoreError> {
        let serial = serial_hex.map(parse_serial_query).transpose()?;
        let (condition, values): (&str, Vec<&dyn rusqlite::ToSql>) = match (&common_name, &serial) {
            (None, None) => return Err(StoreError::EmptyQuery),
            (Some(name), None) => ("common_name = ?1", vec![name]),
            (None, Some(serial)) => ("serial = ?1", vec![serial]),
            (Some(name), Some(serial)) => ("common_name = ?1 AND serial = ?2", vec![name, serial]),
        };
        let sql = format!(
            "SELECT device_id, batch_id, row_index, common_name, serial, not_before, not_after,
                    status, file_name, der
             FROM certificates WHERE {condition} ORDER BY batch_id, row_index"
        );
        let raws = self
            .connection
            .prepare_cached(&sql)
            .and_then(|mut select| {
                select
                    .query_map(values.as_slice(), RawCertificate::read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("searching certificates"))?;
        raws.into_iter().map(RawCertificate::parse).collect()
    }

    /// Number of certificates recorded for a batch (counted, not the `issued` counter).
    pub fn certificate_count(&self, batch: BatchId) -> Result<u64, StoreError> {
        let count: Option<i64> = self
            .connection
            .prepare_cached(
                "SELECT (SELECT count(*) FROM certificates WHERE batch_id = ?1)
                 FROM batches WHERE id = ?1",
            )
            .and_then(|mut select| select.query_row([batch.0], |row| row.get(0)).optional())
            .map_err(db("counting certificates"))?;
        let count = count.ok_or(StoreError::BatchNotFound { batch })?;
        from_sql_integer("certificates", batch.0, "count", count)
    }
}

/// Columns read by [`RawBatch::read`], in order.
const SELECT_BATCH: &str = "SELECT id, batch_name, profile_name, kind, size, status, created_at,
        issued, output_path, reason, issuer_id, parameters_json, updated_at FROM batches";

/// A batch row as SQLite types, before its values are checked.
struct RawBatch {
    id: i64,
    batch_name: String,
    profile_name: String,
    kind: String,
    size: i64,
    status: String,
    created_at: i64,
    issued: i64,
    output_path: String,
    reason: Option<String>,
    issuer_id: i64,
    parameters_json: String,
    updated_at: i64,
}

impl RawBatch {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawBatch> {
        Ok(RawBatch {
            id: row.get(0)?,
            batch_name: row.get(1)?,
            profile_name: row.get(2)?,
            kind: row.get(3)?,
            size: row.get(4)?,
            status: row.get(5)?,
            created_at: row.get(6)?,
            issued: row.get(7)?,
            output_path: row.get(8)?,
            reason: row.get(9)?,
            issuer_id: row.get(10)?,
            parameters_json: row.get(11)?,
            updated_at: row.get(12)?,
        })
    }

    fn parse(self) -> Result<BatchRow, StoreError> {
        let status = BatchStatus::parse(&self.status).ok_or_else(|| StoreError::CorruptRow {
            table: "batches",
            id: self.id.to_string(),
            column: "status",
            value: self.status.clone(),
        })?;
        Ok(BatchRow {
            id: BatchId(self.id),
            batch_name: self.batch_name,
            profile_name: self.profile_name,
            kind: self.kind,
            size: from_sql_integer("batches", self.id, "size", self.size)?,
            status,
            created_at: self.created_at,
            issued: from_sql_integer("batches", self.id, "issued", self.issued)?,
            output_path: self.output_path,
            reason: self.reason,
            issuer: IssuerId(self.issuer_id),
            parameters_json: self.parameters_json,
            updated_at: self.updated_at,
        })
    }
}

/// A certificate row as SQLite types, before its values are checked.
struct RawCertificate {
    device_id: Vec<u8>,
    batch_id: i64,
    row_index: i64,
    common_name: String,
    serial: Vec<u8>,
    not_before: i64,
    not_after: i64,
    status: String,
    file_name: String,
    der: Vec<u8>,
}

impl RawCertificate {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawCertificate> {
        Ok(RawCertificate {
            device_id: row.get(0)?,
            batch_id: row.get(1)?,
            row_index: row.get(2)?,
            common_name: row.get(3)?,
            serial: row.get(4)?,
            not_before: row.get(5)?,
            not_after: row.get(6)?,
            status: row.get(7)?,
            file_name: row.get(8)?,
            der: row.get(9)?,
        })
    }

    fn parse(self) -> Result<CertificateRow, StoreError> {
        let device_id = uuid::Uuid::from_slice(&self.device_id)
            .map_err(|_| StoreError::CorruptRow {
                table: "certificates",
                id: format!("batch {} row {}", self.batch_id, self.row_index),
                column: "device_id",
                value: hex(&self.device_id),
            })?
            .hyphenated()
            .to_string();
        let status = DeviceStatus::parse(&self.status).ok_or_else(|| StoreError::CorruptRow {
            table: "certificates",
            id: device_id.clone(),
            column: "status",
            value: self.status.clone(),
        })?;
        let row = u64::try_from(self.row_index).map_err(|_| StoreError::CorruptRow {
            table: "certificates",
            id: device_id.clone(),
            column: "row_index",
            value: self.row_index.to_string(),
        })?;
        Ok(CertificateRow {
            device_id,
            batch_id: BatchId(self.batch_id),
            row,
            common_name: self.common_name,
            serial_hex: hex(&self.serial),
            not_before: self.not_before,
            not_after: self.not_after,
            status,
            file_name: self.file_name,
            der: self.der,
        })
    }
}

/// Turns a failed certificate insert into the invariant it broke.
///
/// SQLite names the violated index only in its message text, so rather than parse that, this
/// asks the open transaction which unique key already holds the record's values (rows inserted
/// earlier in the same chunk are visible to it).
fn explain_insert_failure(
    tx: &rusqlite::Transaction<'_>,
    error: rusqlite::Error,
    batch: BatchId,
    issuer_id: i64,
    record: &CertificateRecord,
    serial: &[u8],
) -> StoreError {
    let code = extended_code(&error);
    if code != Some(ffi::SQLITE_CONSTRAINT_UNIQUE)
        && code != Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    {
        return StoreError::Database {
            action: "recording certificates",
            source: error,
        };
    }
    // A lookup that itself fails counts as "not this key": the caller then gets the original
    // constraint error as a Database error, which loses no information.
    let exists = |sql: &str, values: &[&dyn rusqlite::ToSql]| -> bool {
        tx.prepare_cached(sql)
            .and_then(|mut select| select.exists(values))
            .unwrap_or(false)
    };
    if exists(
        "SELECT 1 FROM certificates WHERE serial = ?1 AND issuer_id = ?2",
        &[&serial, &issuer_id],
    ) {
        return StoreError::DuplicateSerial {
            serial_hex: hex(serial),
        };
    }
    if exists(
        "SELECT 1 FROM certificates WHERE device_id = ?1",
        &[&record.device_id.as_slice()],
    ) {
        return StoreError::DuplicateDevice {
            row: record.row,
            device_id: uuid::Uuid::from_bytes(record.device_id)
                .hyphenated()
                .to_string(),
        };
    }
    if i64::try_from(record.row).is_ok_and(|row| {
        exists(
            "SELECT 1 FROM certificates WHERE batch_id = ?1 AND row_index = ?2",
            &[&batch.0, &row],
        )
    }) {
        return StoreError::DuplicateRow {
            batch,
            row: record.row,
        };
    }
    StoreError::Database {
        action: "recording certificates",
        source: error,
    }
}

fn user_version(connection: &Connection) -> Result<i64, StoreError> {
    connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db("reading the format version"))
}

fn unsupported(path: &Path, found: i64) -> StoreError {
    StoreError::UnsupportedFormat {
        path: path.to_path_buf(),
        found,
        supported: FORMAT_VERSION,
    }
}

/// Wraps a rusqlite error with what was being done.
fn db(action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Database { action, source }
}

fn extended_code(error: &rusqlite::Error) -> Option<std::ffi::c_int> {
    error.sqlite_error().map(|error| error.extended_code)
}

fn to_sql_integer(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::ValueTooLarge { field, value })
}

fn from_sql_integer(
    table: &'static str,
    id: i64,
    column: &'static str,
    value: i64,
) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::CorruptRow {
        table,
        id: id.to_string(),
        column,
        value: value.to_string(),
    })
}

/// The serial without leading zero octets: the canonical form stored and compared.
fn significant_octets(serial: &[u8]) -> &[u8] {
    let start = serial
        .iter()
        .position(|&octet| octet != 0)
        .unwrap_or(serial.len());
    &serial[start..]
}

/// Parses a searched serial: hex digits, any case, colons and leading zeros ignored.
fn parse_serial_query(input: &str) -> Result<Vec<u8>, StoreError> {
    let invalid = || StoreError::InvalidSerialQuery {
        input: input.to_owned(),
    };
    let digits = input
        .trim()
        .chars()
        .filter(|&c| c != ':')
        .map(|c| c.to_digit(16).ok_or_else(invalid))
        .collect::<Result<Vec<u32>, StoreError>>()?;
    let start = digits
        .iter()
        .position(|&digit| digit != 0)
        .ok_or_else(invalid)?;
    let digits = &digits[start..];
    // An odd count means the first octet has one digit: pair from the right.
    let (head, tail) = digits.split_at(digits.len() % 2);
    let mut octets = Vec::with_capacity(digits.len() / 2 + 1);
    for &digit in head {
        octets.push(nibble_octet(0, digit));
    }
    for pair in tail.chunks_exact(2) {
        octets.push(nibble_octet(pair[0], pair[1]));
    }
    Ok(octets)
}

/// One octet from two hex digit values (each below 16, as `char::to_digit(16)` returns).
fn nibble_octet(high: u32, low: u32) -> u8 {
    let [_, _, _, octet] = ((high << 4) | low).to_be_bytes();
    octet
}

/// Lower-case hex, no separators.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}
