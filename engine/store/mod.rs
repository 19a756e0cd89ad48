//! Persistence of issuers, batches and issued certificates in one embedded SQLite database.
//!
//! A [`Store`] wraps one connection to `<data_dir>/certmill.db` (WAL mode, foreign keys on) and
//! applies the schema migrations of [`FORMAT_VERSION`] when it opens. The batch writer records
//! certificates chunk by chunk, each chunk in one transaction, and the database itself enforces
//! the invariants a CA cannot break: a serial number is unique per issuer across all batches, a
//! row of a batch is recorded once, a batch never records more certificates than its size.
//! `docs/STORE.md` describes the tables, the format version and the invariants.
//!
//! Format version 2 adds the batch lifecycle ([`BatchStatus::TRANSITIONS`], checked inside the
//! writing transaction), organizations and authorities with balances that batches reserve, use
//! and give back, an append-only hash-chained audit log written in the same transaction as the
//! change it records, and serial intents recorded before signing.
//!
//! It never sees private keys or PKCS#12 passwords, and it does not generate serial numbers:
//! it only refuses to record (or reserve) one twice.

mod authorities;
mod checkpoint;
mod chunks;
mod clients;
pub mod db;
mod identity;
mod organizations;
mod resets;
mod revocation;
mod schema;
mod schema_pg;
mod signers;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_chunks;
#[cfg(test)]
mod tests_revocation;
#[cfg(test)]
mod tests_v2;
mod users;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use db::{params, Connection, OptionalExtension, PooledConnection, Transaction};
use sha2::{Digest, Sha256};

pub use authorities::{AuthorityEvent, AuthorityInUse};
pub use checkpoint::{Checkpointer, CHECKPOINT_INTERVAL};
pub use chunks::{
    ChunkKind, ChunkLease, ChunkOutput, ChunkPlan, ChunkedLayout, ClaimedChunk, DonePart, Finished,
    IssuedEntry, ManifestRow, PartEntry, MAX_CHUNK_ATTEMPTS,
};
pub use clients::{ClientRow, NewClient, CLIENT_FIELDS};
pub use db::{DbError, Dialect};
pub use identity::{
    NewRefreshToken, NewUser, OrganizationRow, RefreshTokenRow, Rotation, UserId, UserRow,
    DEFAULT_ORGANIZATION, USER_FIELDS,
};
pub use organizations::{BatchDay, OrganizationDetails, OrganizationInUse, OrganizationRecord};
pub use revocation::{CrlState, RevocationRow, RevokeOutcome, RevokedCertificate, SerialStatus};
pub use schema::FORMAT_VERSION;
pub use signers::{NewSigner, SignerCertificate, SignerEvent, SignerRow, SignerState};
pub use users::UserContact;

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "certmill.db";

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a waiting connection polls at [`BUSY_SHORT_PAUSE`] before it slows to
/// [`BUSY_LONG_PAUSE`].
const BUSY_POLL_FOR: Duration = Duration::from_millis(20);
const BUSY_SHORT_PAUSE: Duration = Duration::from_micros(50);
const BUSY_LONG_PAUSE: Duration = Duration::from_millis(1);

/// The pause before a connection tries the write lock again, after waiting `waited`; `None`
/// once [`BUSY_TIMEOUT`] has passed (the statement then fails with `SQLITE_BUSY`).
///
/// SQLite's own handler (`busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25, 25, ... ms. A batch's
/// reserver and writer take the write lock in turn, each for one chunk's transaction, with a
/// window of a few milliseconds between the writer's transactions: a reserver asleep for 5 or
/// 25 ms missed the windows, lost the lock to the writer's next chunk again and again, and the
/// workers waited for its serials (strace, 50,000 CSRs: 236 sleeps of 1-25 ms, the cores 91%
/// busy). Short polls catch the window; after [`BUSY_POLL_FOR`] the pause grows to 1 ms.
fn busy_pause(waited: Duration) -> Option<Duration> {
    if waited >= BUSY_TIMEOUT {
        None
    } else if waited < BUSY_POLL_FOR {
        Some(BUSY_SHORT_PAUSE)
    } else {
        Some(BUSY_LONG_PAUSE)
    }
}

/// The connections' busy handler: SQLite calls it with the number of earlier calls for the
/// same lock (0 first), and retries while it returns true. A plain `fn` as rusqlite takes,
/// so the wait's start is kept per thread (a connection is used by one thread at a time).
fn wait_for_write_lock(attempt: i32) -> bool {
    thread_local! {
        static WAITING_SINCE: std::cell::Cell<Option<std::time::Instant>> =
            const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    let since = WAITING_SINCE.with(|since| match since.get() {
        Some(start) if attempt > 0 => start,
        _ => {
            since.set(Some(now));
            now
        }
    });
    match busy_pause(now.saturating_duration_since(since)) {
        Some(pause) => {
            std::thread::sleep(pause);
            true
        }
        None => false,
    }
}

/// Longest serial number magnitude accepted, in octets (RFC 5280 §4.1.2.2: "Conforming CAs
/// MUST NOT use serialNumber values longer than 20 octets").
const MAX_SERIAL_OCTETS: usize = 20;

/// Batch kinds accepted by [`Store::create_batch`], as the batch sources name them.
pub const BATCH_KINDS: [&str; 4] = ["CSV", "CSR", "GENERATOR", "SINGLE"];

/// Declares a store row id: a newtype over the SQLite integer key that displays as the number.
macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

row_id!(
    /// Store row id of a batch (`batchId` in the API).
    BatchId
);
row_id!(
    /// Store row id of a registered issuing CA certificate.
    IssuerId
);
row_id!(
    /// Store row id of an organization (the seed's `ecosystemId` / `organizationId`).
    OrganizationId
);
row_id!(
    /// Store row id of an authority: an organization's right to issue under one profile and
    /// CA, with its balance (seed 001 "Authorities API" `id`).
    AuthorityId
);

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

    /// Every allowed status change, with the download state it needs; nothing else is allowed.
    ///
    /// Seed 001 "Batch Statuses": Rejected "is available only if batch has status Ready For
    /// Download or Batch Issued Partly and before downloading the batch"; Revoked "is available
    /// if batch has status Zip removed after expiration or Ready For Download or Batch Issued
    /// Partly, but only after downloading batch". `docs/STORE.md` shows the same table.
    pub const TRANSITIONS: [(BatchStatus, BatchStatus, Download); 14] = {
        use BatchStatus::*;
        [
            (PendingCreation, PendingIssue, Download::Any),
            (PendingCreation, Broken, Download::Any),
            (PendingIssue, ReadyForDownload, Download::Any),
            (PendingIssue, BatchIssuedPartly, Download::Any),
            (PendingIssue, Broken, Download::Any),
            (ReadyForDownload, ProcessingReject, Download::NotDone),
            (ReadyForDownload, ProcessingRevoke, Download::Done),
            (ReadyForDownload, ZipRemovedAfterExpiration, Download::Any),
            (BatchIssuedPartly, ProcessingReject, Download::NotDone),
            (BatchIssuedPartly, ProcessingRevoke, Download::Done),
            (BatchIssuedPartly, ZipRemovedAfterExpiration, Download::Any),
            (ProcessingReject, Rejected, Download::Any),
            (ProcessingRevoke, Revoked, Download::Any),
            (ZipRemovedAfterExpiration, ProcessingRevoke, Download::Done),
        ]
    };

    /// Whether a batch in this status may move to `next`, given whether it was downloaded.
    ///
    /// Looks `(self, next)` up in [`BatchStatus::TRANSITIONS`].
    pub fn can_become(self, next: BatchStatus, downloaded: bool) -> bool {
        BatchStatus::TRANSITIONS
            .iter()
            .any(|&(from, to, download)| from == self && to == next && download.allows(downloaded))
    }

    /// The plain-text answer of seed 001 "Get Batch Status" for a batch in this status.
    ///
    /// "Ready for download" when the ZIP can be downloaded (Ready For Download, Batch Issued
    /// Partly: the seed calls the latter "ready to be downloaded" too); "Processing" while the
    /// system is still working on it (Pending Creation, Pending Issue, Processing Reject,
    /// Processing Revoke); "Failed" for Broken; `"Not Acceptable. Status: <status>"` for the
    /// statuses with nothing left to download (Zip removed after expiration, Rejected, Revoked).
    pub fn status_text(self) -> String {
        match self {
            BatchStatus::ReadyForDownload | BatchStatus::BatchIssuedPartly => {
                "Ready for download".to_owned()
            }
            BatchStatus::PendingCreation
            | BatchStatus::PendingIssue
            | BatchStatus::ProcessingReject
            | BatchStatus::ProcessingRevoke => "Processing".to_owned(),
            BatchStatus::Broken => "Failed".to_owned(),
            BatchStatus::ZipRemovedAfterExpiration
            | BatchStatus::Rejected
            | BatchStatus::Revoked => {
                format!("Not Acceptable. Status: {}", self.as_str())
            }
        }
    }

    /// Pending Creation or Pending Issue: certificates may still be recorded, and an authority
    /// batch still holds a reservation.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            BatchStatus::PendingCreation | BatchStatus::PendingIssue
        )
    }

    /// Ready For Download or Batch Issued Partly: the ZIP can be downloaded (`downloadable`).
    pub fn is_downloadable(self) -> bool {
        matches!(
            self,
            BatchStatus::ReadyForDownload | BatchStatus::BatchIssuedPartly
        )
    }

    /// Rejected, Revoked or Broken: the batch is no longer `active`.
    fn ends_activity(self) -> bool {
        matches!(
            self,
            BatchStatus::Rejected | BatchStatus::Revoked | BatchStatus::Broken
        )
    }
}

/// What a status transition needs of the batch's download state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Download {
    /// Allowed whether or not the batch was downloaded.
    Any,
    /// Only after the batch was downloaded (revoking).
    Done,
    /// Only before the batch is downloaded (rejecting).
    NotDone,
}

impl Download {
    /// Whether a batch with this download state meets the requirement.
    pub fn allows(self, downloaded: bool) -> bool {
        match self {
            Download::Any => true,
            Download::Done => downloaded,
            Download::NotDone => !downloaded,
        }
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

impl BatchRow {
    /// The batch in seed 001's `CertificateBatchInfo` shape ("Get Batch by ID").
    ///
    /// `generatorParametersValues` are the batch parameters as recorded, which never hold the
    /// PKCS#12 password.
    pub fn api_json(&self) -> serde_json::Value {
        let parameters: serde_json::Value =
            serde_json::from_str(&self.parameters_json).unwrap_or(serde_json::json!({}));
        serde_json::json!({
            "batchId": self.id.0,
            "orderNumber": self.order_number,
            "creationDate": crate::batch::rfc3339(self.created_at),
            "profile": self.profile_name,
            "size": self.size,
            "status": self.status.as_str(),
            "active": self.active,
            "batchName": self.batch_name,
            "rejectReason": self.reason,
            "generatorParametersValues": parameters,
            "userId": self.user_id,
            "downloadable": self.downloadable,
            "rejectable": self.rejectable,
        })
    }

    /// Seed 001 "processing_info": devices still being issued, issued, failed.
    pub fn processing_info(&self) -> serde_json::Value {
        let active = if self.status.is_pending() {
            self.size.saturating_sub(self.issued + self.failed)
        } else {
            0
        };
        serde_json::json!({ "active": active, "success": self.issued, "failed": self.failed })
    }
}

/// A new device id (`deviceId`): a version 7 UUID (RFC 9562 5.7), 48 bits of Unix
/// milliseconds then 74 random bits.
///
/// Time-ordered ids land at the right edge of the `certificates` and `audit_log` indexes
/// instead of at random pages, which keeps recording a device cheap however large the store.
pub fn new_device_id() -> Result<[u8; 16], crate::keys::KeyError> {
    let mut random = [0u8; DEVICE_ID_RANDOM_OCTETS];
    crate::keys::random_bytes(&mut random)?;
    Ok(device_id_from(unix_millis(), &random))
}

/// CSPRNG octets a device id takes ([`device_id_from`]).
pub const DEVICE_ID_RANDOM_OCTETS: usize = 10;

/// The device id [`new_device_id`] makes of `millis` (Unix milliseconds) and `random` (from
/// the CSPRNG): for callers that draw many ids' octets at once.
pub fn device_id_from(millis: u64, random: &[u8; DEVICE_ID_RANDOM_OCTETS]) -> [u8; 16] {
    *uuid::Builder::from_unix_timestamp_millis(millis, random)
        .as_uuid()
        .as_bytes()
}

/// Milliseconds since the Unix epoch (0 before it, `u64::MAX` past it).
pub fn unix_millis() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
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

/// A device the batch could not issue, as [`Store::record_failures`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceFailure {
    /// Index of the device in its batch.
    pub row: u64,
    /// Device id (`deviceId`), UUID bytes.
    pub device_id: [u8; 16],
    /// Why the device failed, for the device audit log (no secrets).
    pub reason: String,
}

/// One authority with its balance, as [`Store::authority`] returns it.
///
/// `balance_available + balance_reserved + balance_used` only changes through
/// [`Store::add_balance`] (and creation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityRow {
    /// Authority id (`id`).
    pub id: AuthorityId,
    /// Owning organization (`ecosystemId`).
    pub organization: OrganizationId,
    /// Profile the authority issues under (`profileName`).
    pub profile_name: String,
    /// CA that signs its batches (`signerCertificateId`).
    pub issuer: IssuerId,
    /// Units free to reserve (`balance`, "available balance").
    pub balance_available: u64,
    /// Units held by pending batches for devices not yet issued or failed.
    pub balance_reserved: u64,
    /// Units spent on issued certificates ("used balance").
    pub balance_used: u64,
    /// Whether it may order new batches (`enabled`).
    pub enabled: bool,
    /// When an administrator removed it from its organization (v8): it orders no batch and is
    /// in no list, while its batches and events keep referring to it.
    pub deleted_at: Option<i64>,
}

/// Kind of an audit log entry (`logType`), stored upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// "CREATED": the batch was created (with its reservation, if any).
    Created,
    /// "DOWNLOADED": the batch was downloaded; its certificates became COLLECTED.
    Downloaded,
    /// "FAILED": one device could not be issued.
    Failed,
    /// "ISSUED": one device's certificate was recorded.
    Issued,
    /// "REVOKED": one device's certificate was revoked, its reason changed, or it was released
    /// from hold.
    Revoked,
    /// "STATUS": the batch changed status.
    Status,
    /// "VOIDED": a failed batch's certificates were deleted undelivered and its serials
    /// wasted ([`Store::void_batch`]).
    Voided,
}

impl AuditKind {
    /// Every kind, in alphabetical order.
    pub const ALL: [AuditKind; 7] = [
        AuditKind::Created,
        AuditKind::Downloaded,
        AuditKind::Failed,
        AuditKind::Issued,
        AuditKind::Revoked,
        AuditKind::Status,
        AuditKind::Voided,
    ];

    /// The stored and shown string.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Created => "CREATED",
            AuditKind::Downloaded => "DOWNLOADED",
            AuditKind::Failed => "FAILED",
            AuditKind::Issued => "ISSUED",
            AuditKind::Revoked => "REVOKED",
            AuditKind::Status => "STATUS",
            AuditKind::Voided => "VOIDED",
        }
    }

    /// Parses a stored string; exact match.
    pub fn parse(s: &str) -> Option<Self> {
        AuditKind::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit log entry (seed 001 "Get Batch Audit Log" / "Get Batch Devices Audit Log").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the global chain (`logId`).
    pub id: i64,
    /// The batch (`batchId`).
    pub batch_id: BatchId,
    /// The device, hyphenated, for device entries (`deviceId`).
    pub device_id: Option<String>,
    /// The device's common name, when its certificate is recorded (`cn`).
    pub common_name: Option<String>,
    /// Unix seconds (`dateTime`).
    pub time: i64,
    /// Who caused it: `system` or `user <userId>` (`userName`).
    pub actor: String,
    /// What happened (`logType`).
    pub kind: AuditKind,
    /// Human-readable detail (`message`).
    pub message: String,
}

/// State of a serial intent that has no certificate (yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntentState {
    /// "RESERVED": reserved for a pending batch; may still be signed and recorded.
    Reserved,
    /// "WASTED": the batch ended without recording it; never reused.
    Wasted,
}

impl IntentState {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentState::Reserved => "RESERVED",
            IntentState::Wasted => "WASTED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [IntentState::Reserved, IntentState::Wasted]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// A serial intent without a recorded certificate, as [`Store::serial_intents`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialIntent {
    /// Row of the batch the serial was reserved for.
    pub row: u64,
    /// Serial number, lower-case hex of the magnitude octets.
    pub serial_hex: String,
    /// Reserved or wasted.
    pub state: IntentState,
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
    /// `orderNumber`: 1, 2, 3… in creation order, per store.
    pub order_number: u64,
    /// `userId` of the user who ordered the batch, if known.
    pub user_id: Option<i64>,
    /// `active`: false once the batch is Rejected, Revoked or Broken.
    pub active: bool,
    /// The authority whose balance pays for the batch, if any.
    pub authority: Option<AuthorityId>,
    /// Devices that failed (processing info `failed`; `issued` is `success`).
    pub failed: u64,
    /// Units still reserved by this batch on its authority's balance.
    pub reserved: u64,
    /// Units of its authority's balance this batch used (0 again once Rejected).
    pub used: u64,
    /// When the batch was first downloaded, unix seconds.
    pub downloaded_at: Option<i64>,
    /// When the batch's ZIP was removed after expiration, unix seconds.
    pub zip_removed_at: Option<i64>,
    /// `downloadable`: status is Ready For Download or Batch Issued Partly.
    pub downloadable: bool,
    /// `rejectable`: downloadable and not downloaded yet.
    pub rejectable: bool,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The audit log chain does not verify at this entry: the entry, or the one before it, was
    /// altered or removed outside certmill.
    #[error("audit log entry {id}: hash chain broken (entry or its predecessor altered)")]
    AuditChainBroken {
        /// Id of the first entry whose hashes do not match.
        id: i64,
    },
    /// The authority is disabled: it orders no new batch.
    #[error("authority {authority} is disabled")]
    AuthorityDisabled {
        /// The authority.
        authority: AuthorityId,
    },
    /// The organization already has an authority for the profile.
    #[error("organization {organization} already has authority {authority} for profile {profile}")]
    AuthorityExists {
        /// The organization.
        organization: OrganizationId,
        /// Its authority for the profile.
        authority: AuthorityId,
        /// The profile.
        profile: String,
    },
    /// A total balance below what the authority has used and reserved; nothing was changed.
    #[error("authority {authority}: a balance of {requested} is below the {committed} units already used or reserved")]
    BalanceBelowCommitted {
        /// The authority.
        authority: AuthorityId,
        /// The total asked for.
        requested: u64,
        /// Units used and reserved.
        committed: u64,
    },
    /// A batch was created for an authority whose issuer or profile is not the batch's.
    #[error("authority {authority}: its {field} is not the batch's")]
    AuthorityMismatch {
        /// The authority.
        authority: AuthorityId,
        /// Which field differs: "issuer" or "profile".
        field: &'static str,
    },
    /// The authority was removed from its organization: it orders no batch.
    #[error("authority {authority} was removed from its organization: it orders no batch")]
    AuthorityDeleted {
        /// The authority.
        authority: AuthorityId,
    },
    /// The authority cannot be removed from its organization; nothing was changed.
    #[error("authority {authority} cannot be removed: {reason}")]
    AuthorityInUse {
        /// The authority.
        authority: AuthorityId,
        /// What still holds it.
        reason: AuthorityInUse,
    },
    /// No authority has this id.
    #[error("authority {authority} does not exist")]
    AuthorityNotFound {
        /// The id given.
        authority: AuthorityId,
    },
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
    /// The batch no longer takes certificates, failures or serial intents: it is not Pending
    /// Creation or Pending Issue.
    #[error("batch {batch} is {status}, not pending: nothing more can be recorded for it")]
    BatchNotPending {
        /// The batch.
        batch: BatchId,
        /// Its status.
        status: BatchStatus,
    },
    /// A chunked batch's plan or a finished chunk does not fit the batch (a bug of the caller:
    /// nothing is recorded).
    #[error("batch {batch}: {reason}")]
    InvalidChunkPlan {
        /// The batch.
        batch: BatchId,
        /// What does not fit.
        reason: String,
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
    /// A revoke named no certificate issued by this store.
    #[error("no certificate for {what}")]
    CertificateNotFound {
        /// What was named: `device <id>` or `serial <hex>`.
        what: String,
    },
    /// A whole batch cannot be put on hold or released: a batch revoke is final.
    #[error("a batch cannot be revoked with reason {reason}: a batch revoke is final (put single certificates on hold instead)")]
    BatchReasonRefused {
        /// The reason refused.
        reason: crate::revocation::RevocationReason,
    },
    /// A database operation failed.
    #[error("database error while {action}")]
    Database {
        /// What was being done, e.g. "recording certificates".
        action: &'static str,
        /// Cause.
        #[source]
        source: db::DbError,
    },
    /// Another user has this e-mail address; nothing was changed.
    #[error("email {email}: another user has it")]
    EmailTaken {
        /// The address.
        email: String,
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
    /// The authority's available balance cannot cover the batch; nothing was reserved.
    #[error("authority {authority}: {requested} units requested, {available} available")]
    InsufficientBalance {
        /// The authority.
        authority: AuthorityId,
        /// Units the batch needs (its size).
        requested: u64,
        /// Units available when the reservation was refused.
        available: u64,
    },
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
    /// The status change is not in [`BatchStatus::TRANSITIONS`] (or its download condition
    /// does not hold); nothing was changed.
    #[error("batch {batch}: status {from} cannot become {to}")]
    InvalidTransition {
        /// The batch.
        batch: BatchId,
        /// Its status.
        from: BatchStatus,
        /// The status refused.
        to: BatchStatus,
    },
    /// Serials were reserved under an issuer that is not the batch's.
    #[error("batch {batch} is not signed by issuer {issuer}")]
    IssuerMismatch {
        /// The batch.
        batch: BatchId,
        /// The issuer given.
        issuer: IssuerId,
    },
    /// No issuer has this id.
    #[error("issuer {issuer} does not exist")]
    IssuerNotFound {
        /// The id given.
        issuer: IssuerId,
    },
    /// A signer still has certificates that have not expired; nothing was changed.
    #[error("signer {signer} issued {valid} certificate(s) still valid (until {until}): it can be retired by rotation or revoked, not deleted")]
    SignerInUse {
        /// The signer's id.
        signer: String,
        /// Certificates not yet expired.
        valid: u64,
        /// The last notAfter among them, unix seconds.
        until: i64,
    },
    /// No signer has this id.
    #[error("no signer {signer}")]
    SignerNotFound {
        /// The id given.
        signer: String,
    },
    /// The signer's state does not allow the operation; nothing was changed.
    #[error("signer {signer} is {state} and cannot {action}")]
    SignerState {
        /// The signer's id.
        signer: String,
        /// Its state.
        state: SignerState,
        /// What was refused.
        action: &'static str,
    },
    /// SQLite refused WAL mode (e.g. on a network file system).
    #[error("database {} cannot use WAL mode; journal mode is {mode:?}", path.display())]
    JournalMode {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// Only a Ready For Download or Batch Issued Partly batch can be downloaded.
    #[error("batch {batch} is {status}: nothing to download")]
    NotDownloadable {
        /// The batch.
        batch: BatchId,
        /// Its status.
        status: BatchStatus,
    },
    /// Seed 001: a batch can be rejected "only if batch has status Ready For Download or Batch
    /// Issued Partly and before downloading the batch".
    #[error("batch {batch} cannot be rejected: it is {status}{}", if *downloaded { " and was downloaded" } else { "" })]
    NotRejectable {
        /// The batch.
        batch: BatchId,
        /// Its status.
        status: BatchStatus,
        /// Whether it was downloaded.
        downloaded: bool,
    },
    /// removeFromCRL only releases a certificate on hold (certificateHold).
    #[error("serial number {serial_hex} is not on hold: removeFromCRL only releases a certificate revoked with certificateHold")]
    NotOnHold {
        /// The serial, lower-case hex.
        serial_hex: String,
    },
    /// Seed 001: a batch can be revoked if it "has status Zip removed after expiration or Ready
    /// For Download or Batch Issued Partly, but only after downloading batch".
    #[error("batch {batch} cannot be revoked: it is {status}{}", if *downloaded { "" } else { " and was not downloaded (reject it instead)" })]
    NotRevocable {
        /// The batch.
        batch: BatchId,
        /// Its status.
        status: BatchStatus,
        /// Whether it was downloaded.
        downloaded: bool,
    },
    /// The database file could not be opened or configured.
    #[error("cannot open database {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: db::DbError,
    },
    /// The organization cannot be deleted; nothing was changed.
    #[error("organization {organization} cannot be deleted: {reason}")]
    OrganizationInUse {
        /// The organization.
        organization: OrganizationId,
        /// What still depends on it.
        reason: OrganizationInUse,
    },
    /// Another organization has this name.
    #[error("an organization named {name:?} already exists")]
    OrganizationNameTaken {
        /// The name asked for.
        name: String,
    },
    /// No organization has this id.
    #[error("organization {organization} does not exist")]
    OrganizationNotFound {
        /// The id given.
        organization: OrganizationId,
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
    /// A thread of the store could not start.
    #[error("cannot start a thread for {action}")]
    Thread {
        /// What the thread was for.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
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

/// The PostgreSQL server `Store::open` connects to instead of the data directory's SQLite file,
/// once [`use_postgres`] has set it.
static POSTGRES: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every later [`Store::open`] of this process connect to PostgreSQL at `url`
/// (`postgres://user@host:port/db` or `host=… port=… user=… dbname=…`, without TLS) instead of
/// opening `<data_dir>/certmill.db`. Set once, at startup, before any store is opened; `false`
/// if another URL was set before (the first one stays). The data directory is still created
/// and holds the node's other files.
pub fn use_postgres(url: &str) -> bool {
    POSTGRES.get_or_init(|| url.to_owned()) == url
}

/// Whether [`use_postgres`] sent this process's stores to PostgreSQL (shared with other nodes).
pub fn uses_postgres() -> bool {
    POSTGRES.get().is_some()
}

/// Where `Store::open(data_dir)` goes when it is not the data directory's SQLite file: the
/// server of [`use_postgres`], or in tests the `CERTMILL_TEST_POSTGRES` server with a schema of
/// the data directory's own (so parallel tests, each in its temporary directory, never meet).
fn postgres_target(data_dir: &Path) -> Option<(String, Option<String>)> {
    if let Some(url) = POSTGRES.get() {
        return Some((url.clone(), None));
    }
    #[cfg(test)]
    if let Some(url) = test_postgres() {
        let canonical = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf());
        let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
        return Some((url, Some(format!("certmill_test_{}", hex(&digest[..10])))));
    }
    let _ = data_dir;
    None
}

/// The PostgreSQL server the store's tests run against, from `CERTMILL_TEST_POSTGRES`.
#[cfg(test)]
pub(crate) fn test_postgres() -> Option<String> {
    std::env::var("CERTMILL_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
}

/// What [`StoreError::UnsupportedFormat`] and [`StoreError::Open`] name for a PostgreSQL store.
const POSTGRES_PATH: &str = "PostgreSQL store";

/// The certmill database: one connection, to the data directory's SQLite file or to the shared
/// PostgreSQL server. `Send`, not `Sync`: each thread opens its own.
#[derive(Debug)]
pub struct Store {
    connection: PooledConnection,
    /// Current time in unix seconds; injected so tests control `created_at`.
    clock: fn() -> i64,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/certmill.db` and brings it to [`FORMAT_VERSION`];
    /// after [`use_postgres`], connects to that server instead ([`Store::open_postgres`]).
    ///
    /// Creates `data_dir` if missing. The connection uses WAL mode, `synchronous=NORMAL`,
    /// foreign keys and a 5 s busy timeout. Migrations run in one immediate transaction each,
    /// so concurrent openers apply each one exactly once.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        if let Some((url, schema)) = postgres_target(data_dir) {
            return Store::connect_postgres(&url, schema.as_deref());
        }
        let path = data_dir.join(DATABASE_FILE);
        let open_error = |source: rusqlite::Error| StoreError::Open {
            path: path.clone(),
            source: source.into(),
        };
        let connection = rusqlite::Connection::open(&path).map_err(open_error)?;
        connection
            .busy_handler(Some(wait_for_write_lock))
            .map_err(open_error)?;
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
            connection: PooledConnection::unpooled(Connection::from_sqlite(connection)),
            clock: system_clock,
        };
        store.migrate(&path)?;
        Ok(store)
    }

    /// Connects to the PostgreSQL store at `url` and creates its schema if the database has
    /// none (once, under an advisory lock, so concurrent nodes do not race). A schema of a newer
    /// format is refused with [`StoreError::UnsupportedFormat`]. See `docs/STORE.md`.
    pub fn open_postgres(url: &str) -> Result<Store, StoreError> {
        Store::connect_postgres(url, None)
    }

    fn connect_postgres(url: &str, schema: Option<&str>) -> Result<Store, StoreError> {
        while let Some(connection) = PooledConnection::take_idle(url, schema) {
            // The schema exists; one round trip still refuses a format a newer certmill
            // wrote meanwhile, as a new connection's check would. A connection the server
            // closed meanwhile (a restart) fails here and is dropped for good.
            match postgres_version(&connection) {
                Ok(found) if found > FORMAT_VERSION => {
                    return Err(unsupported(Path::new(POSTGRES_PATH), found));
                }
                Ok(_) => {
                    return Ok(Store {
                        connection,
                        clock: system_clock,
                    })
                }
                Err(_) => connection.discard(),
            }
        }
        let connection =
            Connection::open_postgres(url, schema).map_err(|source| StoreError::Open {
                path: PathBuf::from(POSTGRES_PATH),
                source,
            })?;
        let mut store = Store {
            connection: PooledConnection::unpooled(connection),
            clock: system_clock,
        };
        store.create_postgres_schema()?;
        // Checked: from now on it serves later opens of this server and schema too.
        store.connection.pool_as(url, schema);
        Ok(store)
    }

    fn create_postgres_schema(&self) -> Result<(), StoreError> {
        let tx = self
            .connection
            .schema_transaction()
            .map_err(db("starting the schema creation"))?;
        let exists: bool = tx
            .query_row(
                "SELECT to_regclass('certmill_format') IS NOT NULL",
                [],
                |row| row.get(0),
            )
            .map_err(db("reading the format version"))?;
        if exists {
            let found = postgres_version(&tx)?;
            if found > FORMAT_VERSION {
                return Err(unsupported(Path::new(POSTGRES_PATH), found));
            }
            return Ok(());
        }
        tx.execute_batch(schema_pg::SCHEMA)
            .map_err(db("creating the schema"))?;
        tx.execute(
            "INSERT INTO certmill_format (version) VALUES (?1)",
            [schema_pg::VERSION],
        )
        .map_err(db("recording the format version"))?;
        tx.commit().map_err(db("committing the schema"))
    }

    /// Replaces the clock that stamps `created_at` and `updated_at` (tests, replays).
    pub fn with_clock(mut self, clock: fn() -> i64) -> Store {
        self.clock = clock;
        self
    }

    /// This connection for the batch pipeline's hot path: foreign keys are not probed per row,
    /// and statement journals stay in memory.
    ///
    /// `reserve_serials` and `insert_certificates` load the batch once per chunk and refuse a
    /// missing batch or another issuer's serials in code, so every row they write references
    /// a batch and issuer just checked; the per-row foreign key lookups would only repeat that
    /// check for each device. Every other connection enforces the foreign keys. On PostgreSQL
    /// the foreign keys stay checked (they cannot be turned off per connection without also
    /// turning off the append-only triggers).
    ///
    /// A chunk's rows go in as one multi-row statement inside a savepoint, and SQLite keeps
    /// the statement journal of such a statement in a file once it passes 64 KiB: 160-380 KB
    /// a chunk, written to a new file in /var/tmp and unlinked, about 800 bytes a device.
    /// `temp_store = MEMORY` keeps it in memory (bounded by the pages one chunk's statement
    /// touches); the other connections keep the default, so the large sorts of lifecycle
    /// queries may still spill to files.
    pub fn for_pipeline(self) -> Result<Store, StoreError> {
        if let Some(connection) = self.connection.sqlite() {
            connection
                .pragma_update(None, "foreign_keys", false)
                .and_then(|()| connection.pragma_update(None, "temp_store", "MEMORY"))
                .map_err(|source| StoreError::Database {
                    action: "configuring the pipeline connection",
                    source: source.into(),
                })?;
        }
        Ok(self)
    }

    /// Format version of the open database (`PRAGMA user_version`; on PostgreSQL the
    /// `certmill_format` row).
    pub fn format_version(&self) -> Result<i64, StoreError> {
        match self.connection.sqlite() {
            Some(connection) => user_version(connection),
            None => postgres_version(&self.connection),
        }
    }

    /// The one text value `sql` selects, on either backend (tests of other modules that look
    /// at what was stored).
    #[cfg(test)]
    pub(crate) fn text_for_tests(&self, sql: &str) -> String {
        self.connection
            .query_row(sql, [], |row| row.get(0))
            .expect("one text value")
    }

    /// Which backend this store runs on.
    pub fn dialect(&self) -> db::Dialect {
        self.connection.dialect()
    }

    fn migrate(&mut self, path: &Path) -> Result<(), StoreError> {
        let Some(connection) = self.connection.sqlite() else {
            return Ok(());
        };
        // Cheap check outside a transaction: an up-to-date database takes no write lock.
        let found = user_version(connection)?;
        if found > FORMAT_VERSION {
            return Err(unsupported(path, found));
        }
        if found == FORMAT_VERSION {
            return Ok(());
        }
        let tx = self
            .connection
            .write_transaction()
            .map_err(db("starting a schema migration"))?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let found = user_version(connection)?;
        if found > FORMAT_VERSION {
            return Err(unsupported(path, found));
        }
        for (done, sql) in (1..=FORMAT_VERSION).zip(schema::MIGRATIONS) {
            if done <= found {
                continue;
            }
            tx.execute_batch(sql)
                .map_err(db("applying a schema migration"))?;
            connection
                .pragma_update(None, "user_version", done)
                .map_err(|source| StoreError::Database {
                    action: "recording the format version",
                    source: source.into(),
                })?;
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
    ///
    /// The batch pays from no authority's balance; [`Store::create_batch_for`] creates one
    /// that does.
    pub fn create_batch(&self, batch: &NewBatch<'_>) -> Result<BatchId, StoreError> {
        self.insert_batch(None, batch, None)
    }

    /// Inserts a batch in status Pending Issue that reserves `size` units of the authority's
    /// balance, in the same transaction, and returns its id.
    ///
    /// Refused with [`StoreError::InsufficientBalance`] when the available balance is below
    /// `size` (nothing is written), with [`StoreError::AuthorityMismatch`] when the batch's
    /// issuer or profile is not the authority's.
    pub fn create_batch_for(
        &self,
        authority: AuthorityId,
        batch: &NewBatch<'_>,
        user: Option<i64>,
    ) -> Result<BatchId, StoreError> {
        self.insert_batch(Some(authority), batch, user)
    }

    fn insert_batch(
        &self,
        authority: Option<AuthorityId>,
        batch: &NewBatch<'_>,
        user: Option<i64>,
    ) -> Result<BatchId, StoreError> {
        const ACTION: &str = "creating a batch";
        if !BATCH_KINDS.contains(&batch.kind) {
            return Err(StoreError::InvalidBatchKind {
                kind: batch.kind.to_owned(),
            });
        }
        let size = to_sql_integer("batch size", batch.size)?;
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        if let Some(authority) = authority {
            let row = read_authority(&tx, authority)?;
            if row.deleted_at.is_some() {
                return Err(StoreError::AuthorityDeleted { authority });
            }
            if row.issuer != batch.issuer {
                return Err(StoreError::AuthorityMismatch {
                    authority,
                    field: "issuer",
                });
            }
            if row.profile_name != batch.profile_name {
                return Err(StoreError::AuthorityMismatch {
                    authority,
                    field: "profile",
                });
            }
            if !row.enabled {
                return Err(StoreError::AuthorityDisabled { authority });
            }
            let reserved = tx
                .prepare_cached(
                    "UPDATE authorities SET balance_available = balance_available - ?2,
                                            balance_reserved = balance_reserved + ?2
                     WHERE id = ?1 AND balance_available >= ?2",
                )
                .and_then(|mut update| update.execute(params![authority.0, size]))
                .map_err(db(ACTION))?;
            if reserved == 0 {
                return Err(StoreError::InsufficientBalance {
                    authority,
                    requested: batch.size,
                    available: row.balance_available,
                });
            }
        }
        let inserted = tx
            .prepare_cached(
                "INSERT INTO batches (batch_name, profile_name, kind, size, issuer_id, status,
                                      parameters_json, output_path, created_at, updated_at,
                                      order_number, user_id, authority_id, reserved)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9,
                         (SELECT coalesce(max(order_number), 0) + 1 FROM batches),
                         ?10, ?11, ?12)
                 RETURNING id",
            )
            .and_then(|mut insert| {
                insert.query_row(
                    params![
                        batch.batch_name,
                        batch.profile_name,
                        batch.kind,
                        size,
                        batch.issuer.0,
                        BatchStatus::PendingIssue.as_str(),
                        batch.parameters_json,
                        batch.output_path,
                        now,
                        user,
                        authority.map(|authority| authority.0),
                        if authority.is_some() { size } else { 0 },
                    ],
                    |row| row.get(0),
                )
            });
        let id = match inserted {
            Ok(id) => BatchId(id),
            Err(error) if violation(&error) == Some(db::Violation::ForeignKey) => {
                return Err(StoreError::IssuerNotFound {
                    issuer: batch.issuer,
                })
            }
            Err(source) => {
                return Err(StoreError::Database {
                    action: ACTION,
                    source,
                })
            }
        };
        let message = match authority {
            Some(authority) => format!(
                "created in {}; {} units reserved on authority {authority}",
                BatchStatus::PendingIssue,
                batch.size
            ),
            None => format!("created in {}", BatchStatus::PendingIssue),
        };
        let mut chain = AuditChain::load(&tx)?;
        chain.append(
            &tx,
            &NewAuditEntry {
                batch: id.0,
                device_id: None,
                time: now,
                actor: &actor_for(user),
                kind: AuditKind::Created,
                message: &message,
            },
        )?;
        tx.commit().map_err(db(ACTION))?;
        Ok(id)
    }

    /// Records certificates of a batch in one transaction, with status ISSUED.
    ///
    /// All or nothing: any refused record rolls the whole chunk back. Serial numbers are unique
    /// per issuer across all batches and serial intents ([`StoreError::DuplicateSerial`]; a
    /// serial reserved by [`Store::reserve_serials`] is accepted for its own batch and row, and
    /// its intent is then deleted), device ids are unique ([`StoreError::DuplicateDevice`]), a
    /// row of a batch is recorded once ([`StoreError::DuplicateRow`]), a batch never records
    /// more than its size, failures included ([`StoreError::BatchFull`]), and only a pending
    /// batch records ([`StoreError::BatchNotPending`]). Each certificate moves one unit of the
    /// batch's reservation to used and appends one ISSUED audit entry, in the same transaction.
    pub fn insert_certificates(
        &mut self,
        batch: BatchId,
        records: &[CertificateRecord],
    ) -> Result<(), StoreError> {
        // Immediate: take the write lock up front, so a busy database waits for the busy
        // timeout instead of failing when a read transaction would upgrade to a write.
        let tx = self.write_transaction("recording certificates")?;
        record_certificates(&tx, (self.clock)(), batch, records)?;
        tx.commit().map_err(db("committing recorded certificates"))
    }

    /// Records devices the batch could not issue, in one transaction.
    ///
    /// Each failure counts in `failed`, gives its reserved unit back to the authority's available
    /// balance, and appends one FAILED audit entry. Like certificates, failures need a pending
    /// batch with room left ([`StoreError::BatchFull`] counts both).
    pub fn record_failures(
        &self,
        batch: BatchId,
        failures: &[DeviceFailure],
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction("recording failed devices")?;
        record_failures(&tx, (self.clock)(), batch, failures)?;
        tx.commit().map_err(db("recording failed devices"))
    }

    /// Moves a batch to `status`, stamping `updated_at`, if [`BatchStatus::TRANSITIONS`] allows
    /// it; otherwise [`StoreError::InvalidTransition`] and nothing changes.
    ///
    /// The check and the change share one immediate transaction, so two writers cannot both
    /// move a batch out of the same status. `reason` replaces the stored reason when given;
    /// `None` keeps the stored one, so a user's reject reason survives the system's later
    /// status steps. The transition's effects commit with it: leaving Pending returns the
    /// remaining reservation to available and marks unrecorded serial intents WASTED; entering
    /// Rejected returns the batch's used units to available and marks its certificates
    /// REJECTED; entering Revoked marks them REVOKED; Rejected, Revoked and Broken clear
    /// `active`; one STATUS audit entry records the change. A pending CSR batch moved to
    /// Broken voids the certificates it recorded first, as [`Store::abandon_batch`] does: none
    /// of them was delivered, so none may turn good for OCSP.
    pub fn set_batch_status(
        &self,
        batch: BatchId,
        status: BatchStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        const ACTION: &str = "setting a batch status";
        let tx = self.write_transaction(ACTION)?;
        let mut state = BatchState::load(&tx, batch)?;
        let mut chain = AuditChain::load(&tx)?;
        let now = (self.clock)();
        if status == BatchStatus::Broken && state.status.is_pending() {
            state.break_off(&tx, &mut chain, batch, reason, now, false)?;
        } else {
            state.transition(&tx, &mut chain, batch, status, reason, SYSTEM_ACTOR, now)?;
        }
        tx.commit().map_err(db(ACTION))
    }

    /// Ends the issuing of a pending batch: `status` is Ready For Download, Batch Issued Partly
    /// or Broken. Whatever the batch still reserves goes back to available.
    ///
    /// Any other target is [`StoreError::InvalidTransition`].
    pub fn finish_batch(&self, batch: BatchId, status: BatchStatus) -> Result<(), StoreError> {
        const ACTION: &str = "finishing a batch";
        let tx = self.write_transaction(ACTION)?;
        let mut state = BatchState::load(&tx, batch)?;
        if !matches!(
            status,
            BatchStatus::ReadyForDownload | BatchStatus::BatchIssuedPartly | BatchStatus::Broken
        ) {
            return Err(StoreError::InvalidTransition {
                batch,
                from: state.status,
                to: status,
            });
        }
        let mut chain = AuditChain::load(&tx)?;
        let now = (self.clock)();
        let reason = (status == BatchStatus::Broken)
            .then_some("no device could be issued: every device failed (their reasons are in the manifest and the devices' audit log)");
        state.transition(&tx, &mut chain, batch, status, reason, SYSTEM_ACTOR, now)?;
        tx.commit().map_err(db(ACTION))
    }

    /// Rejects a batch for the user's `reason` (seed 001 "Reject Batch"): Processing Reject
    /// then Rejected, in one transaction.
    ///
    /// Refused with [`StoreError::NotRejectable`] unless the batch is `rejectable` (Ready For
    /// Download or Batch Issued Partly, not downloaded). The batch's used units return to the
    /// authority's available balance ("The balance will be restored") and its certificates
    /// become REJECTED.
    pub fn reject_batch(&self, batch: BatchId, reason: &str) -> Result<(), StoreError> {
        const ACTION: &str = "rejecting a batch";
        let tx = self.write_transaction(ACTION)?;
        let mut state = BatchState::load(&tx, batch)?;
        if !state.rejectable() {
            return Err(StoreError::NotRejectable {
                batch,
                status: state.status,
                downloaded: state.downloaded,
            });
        }
        let mut chain = AuditChain::load(&tx)?;
        let now = (self.clock)();
        let actor = actor_for(state.user_id);
        state.transition(
            &tx,
            &mut chain,
            batch,
            BatchStatus::ProcessingReject,
            Some(reason),
            &actor,
            now,
        )?;
        state.transition(
            &tx,
            &mut chain,
            batch,
            BatchStatus::Rejected,
            None,
            &actor,
            now,
        )?;
        tx.commit().map_err(db(ACTION))
    }

    /// Records a download of a downloadable batch: stamps `downloaded_at` (the first download
    /// is kept) and marks every ISSUED certificate of the batch COLLECTED, in one transaction.
    ///
    /// Refused with [`StoreError::NotDownloadable`] unless the status is Ready For Download or
    /// Batch Issued Partly. After it the batch is no longer rejectable, only revocable.
    pub fn mark_downloaded(&self, batch: BatchId) -> Result<(), StoreError> {
        const ACTION: &str = "recording a download";
        let tx = self.write_transaction(ACTION)?;
        let state = BatchState::load(&tx, batch)?;
        if !state.status.is_downloadable() {
            return Err(StoreError::NotDownloadable {
                batch,
                status: state.status,
            });
        }
        let now = (self.clock)();
        tx.prepare_cached(
            "UPDATE batches SET downloaded_at = coalesce(downloaded_at, ?2) WHERE id = ?1",
        )
        .and_then(|mut update| update.execute(params![batch.0, now]))
        .map_err(db(ACTION))?;
        let collected = tx
            .prepare_cached(
                "UPDATE certificates SET status = ?2 WHERE batch_id = ?1 AND status = ?3",
            )
            .and_then(|mut update| {
                update.execute(params![
                    batch.0,
                    DeviceStatus::Collected.as_str(),
                    DeviceStatus::Issued.as_str()
                ])
            })
            .map_err(db(ACTION))?;
        let mut chain = AuditChain::load(&tx)?;
        chain.append(
            &tx,
            &NewAuditEntry {
                batch: batch.0,
                device_id: None,
                time: now,
                actor: &actor_for(state.user_id),
                kind: AuditKind::Downloaded,
                message: &format!("downloaded; {collected} certificates collected"),
            },
        )?;
        tx.commit().map_err(db(ACTION))
    }

    /// Marks a pending batch Broken for `reason` (crash recovery, or a batch that failed): its
    /// reservation goes back to the authority's available balance, and its unrecorded serial
    /// intents end WASTED (never reused). A CSR batch's recorded certificates are voided as by
    /// [`Store::void_batch`]: a CSR batch delivers nothing before it finishes, and one verified
    /// as it is signed may have signed requests of a bundle that is not valid as a whole
    /// (docs/ISSUANCE.md). Other batches keep their recorded certificates. Returns how many
    /// certificates were voided.
    ///
    /// A batch that is not pending is [`StoreError::InvalidTransition`].
    pub fn abandon_batch(&self, batch: BatchId, reason: &str) -> Result<u64, StoreError> {
        self.break_off_batch(batch, reason, false, "abandoning a batch")
    }

    /// Fails a pending batch whose certificates must never count as issued, for `reason`: a
    /// CSR bundle verified as it was signed, in which a request was refused after earlier
    /// requests were signed (docs/ISSUANCE.md). In one transaction: the batch's certificate
    /// rows are deleted (they were never delivered: the ZIP is only written whole), the units
    /// they used go back to the authority's available balance with the rest of the
    /// reservation, every serial intent of the batch becomes WASTED (never reused; OCSP
    /// answers it revoked, RFC 6960 section 2.2), one VOIDED audit entry counts them, and the
    /// batch ends Broken. Returns how many certificates were voided.
    ///
    /// A batch that is not pending is [`StoreError::InvalidTransition`] and nothing changes.
    pub fn void_batch(&self, batch: BatchId, reason: &str) -> Result<u64, StoreError> {
        self.break_off_batch(batch, reason, true, "voiding a batch")
    }

    /// [`Store::abandon_batch`], or [`Store::void_batch`] when `void`, in one transaction.
    fn break_off_batch(
        &self,
        batch: BatchId,
        reason: &str,
        void: bool,
        action: &'static str,
    ) -> Result<u64, StoreError> {
        let tx = self.write_transaction(action)?;
        let mut state = BatchState::load_pending(&tx, batch)?;
        let mut chain = AuditChain::load(&tx)?;
        let now = (self.clock)();
        let voided = state.break_off(&tx, &mut chain, batch, Some(reason), now, void)?;
        tx.commit().map_err(db(action))?;
        Ok(voided)
    }

    /// Batches still Pending Creation or Pending Issue, oldest first: after a crash, the ones
    /// to resume or [abandon](Store::abandon_batch).
    pub fn unfinished_batches(&self) -> Result<Vec<BatchRow>, StoreError> {
        let raws = self
            .connection
            .prepare_cached(&format!(
                "{SELECT_BATCH} WHERE status IN (?1, ?2) ORDER BY id"
            ))
            .and_then(|mut select| {
                select
                    .query_map(
                        params![
                            BatchStatus::PendingCreation.as_str(),
                            BatchStatus::PendingIssue.as_str()
                        ],
                        RawBatch::read,
                    )?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("listing unfinished batches"))?;
        raws.into_iter().map(RawBatch::parse).collect()
    }

    /// Records the intent to sign these serials for rows of a pending batch, before signing
    /// (`ca.go` order: reserve the serial, then sign), all in one transaction.
    ///
    /// A serial already recorded as a certificate or an intent of the issuer, or twice in the
    /// list, is [`StoreError::DuplicateSerial`] and nothing is reserved. `issuer` must be the
    /// batch's ([`StoreError::IssuerMismatch`]).
    pub fn reserve_serials(
        &self,
        batch: BatchId,
        issuer: IssuerId,
        serials: &[(u64, &[u8])],
    ) -> Result<(), StoreError> {
        const ACTION: &str = "reserving serial numbers";
        // The intents go in without the write lock (on PostgreSQL; the registry's key keeps
        // them unique across nodes); the lock is taken only to see the batch still pending at
        // commit, so nodes reserving at once do not queue for each other.
        let tx = self.connection.row_lock_transaction().map_err(db(ACTION))?;
        let pending = |tx: &Transaction<'_>| {
            let state = BatchState::load(tx, batch)?;
            if !state.status.is_pending() {
                return Err(StoreError::BatchNotPending {
                    batch,
                    status: state.status,
                });
            }
            if state.issuer_id != issuer.0 {
                return Err(StoreError::IssuerMismatch { batch, issuer });
            }
            Ok(())
        };
        pending(&tx)?;
        let now = (self.clock)();
        let mut rows = Vec::with_capacity(serials.len());
        for &(row, serial) in serials {
            let serial = significant_octets(serial);
            if serial.is_empty() || serial.len() > MAX_SERIAL_OCTETS {
                return Err(StoreError::InvalidSerial {
                    row,
                    octets: serial.len(),
                });
            }
            rows.push((to_sql_integer("row", row)?, serial));
        }
        let mut values: Vec<&dyn db::Param> = Vec::with_capacity(5 * rows.len());
        for (row, serial) in &rows {
            values.extend([&issuer.0 as &dyn db::Param, serial, &batch.0, row, &now]);
        }
        const INSERT_INTENTS: &str =
            "INSERT INTO serial_intents (issuer_id, serial, batch_id, row_index, created_at)";
        // Many rows a statement; only when that fails does the row-by-row path below find the
        // serial to name.
        if tx
            .savepoint(|| tx.insert_rows(INSERT_INTENTS, 5, &values))
            .is_err()
        {
            let mut insert = tx
                .prepare_cached(&format!("{INSERT_INTENTS} VALUES (?1, ?2, ?3, ?4, ?5)"))
                .map_err(db(ACTION))?;
            for (row, serial) in &rows {
                let duplicate = || StoreError::DuplicateSerial {
                    serial_hex: hex(serial),
                };
                match insert.execute(params![issuer.0, serial, batch.0, row, now]) {
                    Ok(_) => {}
                    // The registry's key, or the trigger that keeps OCSP responder
                    // certificates' serials out of it (schema V5).
                    Err(error)
                        if matches!(
                            violation(&error),
                            Some(db::Violation::Unique | db::Violation::Trigger)
                        ) =>
                    {
                        return Err(duplicate())
                    }
                    Err(source) => {
                        return Err(StoreError::Database {
                            action: ACTION,
                            source,
                        })
                    }
                }
            }
        }
        tx.take_write_lock().map_err(db(ACTION))?;
        pending(&tx)?;
        tx.commit().map_err(db(ACTION))
    }

    /// Serial intents of a batch that have no recorded certificate, by row.
    pub fn serial_intents(&self, batch: BatchId) -> Result<Vec<SerialIntent>, StoreError> {
        let raws: Vec<(i64, Vec<u8>, String)> = self
            .connection
            .prepare_cached(
                "SELECT row_index, serial, state FROM serial_intents i WHERE batch_id = ?1
                   AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.batch_id = i.batch_id
                                   AND c.row_index = i.row_index AND c.serial = i.serial)
                 ORDER BY row_index, serial",
            )
            .and_then(|mut select| {
                select
                    .query_map([batch.0], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("listing serial intents"))?;
        raws.into_iter()
            .map(|(row, serial, state)| {
                let corrupt = |column: &'static str, value: String| StoreError::CorruptRow {
                    table: "serial_intents",
                    id: hex(&serial),
                    column,
                    value,
                };
                Ok(SerialIntent {
                    row: u64::try_from(row).map_err(|_| corrupt("row_index", row.to_string()))?,
                    state: IntentState::parse(&state)
                        .ok_or_else(|| corrupt("state", state.clone()))?,
                    serial_hex: hex(&serial),
                })
            })
            .collect()
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
        let (condition, values): (&str, Vec<&dyn db::Param>) = match (&common_name, &serial) {
            (None, None) => return Err(StoreError::EmptyQuery),
            (Some(name), None) => ("common_name = ?1", vec![name]),
            // By serial through the registry's key, then the certificate by its row.
            (None, Some(serial)) => (
                "(batch_id, row_index) IN (SELECT batch_id, row_index FROM serial_intents
                                           WHERE issuer_id IN (SELECT id FROM issuers)
                                             AND serial = ?1) AND serial = ?1",
                vec![serial],
            ),
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

    /// Creates an organization (the seed's ecosystem) and returns its id.
    pub fn create_organization(&self, name: &str) -> Result<OrganizationId, StoreError> {
        let now = (self.clock)();
        self.connection
            .prepare_cached(
                "INSERT INTO organizations (name, created_at) VALUES (?1, ?2) RETURNING id",
            )
            .and_then(|mut insert| insert.query_row(params![name, now], |row| row.get(0)))
            .map(OrganizationId)
            .map_err(db("creating an organization"))
    }

    /// Creates an authority of `organization` to issue under `profile_name` with `issuer`
    /// (`signerCertificateId`), with `initial_balance` units available.
    pub fn create_authority(
        &self,
        organization: OrganizationId,
        profile_name: &str,
        issuer: IssuerId,
        initial_balance: u64,
    ) -> Result<AuthorityId, StoreError> {
        const ACTION: &str = "creating an authority";
        let balance = to_sql_integer("balance", initial_balance)?;
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let exists = |sql: &str, id: i64| {
            tx.prepare_cached(sql)
                .and_then(|mut select| select.exists([id]))
                .map_err(db(ACTION))
        };
        if !exists("SELECT 1 FROM organizations WHERE id = ?1", organization.0)? {
            return Err(StoreError::OrganizationNotFound { organization });
        }
        if !exists("SELECT 1 FROM issuers WHERE id = ?1", issuer.0)? {
            return Err(StoreError::IssuerNotFound { issuer });
        }
        let id = tx
            .prepare_cached(
                "INSERT INTO authorities (organization_id, profile_name, issuer_id,
                                          balance_available, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )
            .and_then(|mut insert| {
                insert.query_row(
                    params![organization.0, profile_name, issuer.0, balance, now],
                    |row| row.get(0),
                )
            })
            .map(AuthorityId)
            .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))?;
        Ok(id)
    }

    /// Adds `units` to an authority's available balance: the only change to its total.
    pub fn add_balance(&self, authority: AuthorityId, units: u64) -> Result<(), StoreError> {
        let units = to_sql_integer("balance", units)?;
        let changed = self
            .connection
            .prepare_cached(
                "UPDATE authorities SET balance_available = balance_available + ?2 WHERE id = ?1",
            )
            .and_then(|mut update| update.execute(params![authority.0, units]))
            .map_err(db("adding balance"))?;
        if changed == 0 {
            return Err(StoreError::AuthorityNotFound { authority });
        }
        Ok(())
    }

    /// The authority with this id and its balance, also when it was removed from its
    /// organization (`deleted_at`): batches and events keep referring to it. Ordering a batch
    /// against a removed authority is refused ([`StoreError::AuthorityDeleted`]).
    pub fn authority(&self, authority: AuthorityId) -> Result<AuthorityRow, StoreError> {
        read_authority(&self.connection, authority)
    }

    /// The authorities of an organization, by id, except those removed from it
    /// ([`Store::delete_authority`]); [`Store::authorities_including_removed`] has them all.
    pub fn authorities_for(
        &self,
        organization: OrganizationId,
    ) -> Result<Vec<AuthorityRow>, StoreError> {
        let raws = self
            .connection
            .prepare_cached(&format!(
                "{SELECT_AUTHORITY} WHERE organization_id = ?1 AND deleted_at IS NULL ORDER BY id"
            ))
            .and_then(|mut select| {
                select
                    .query_map([organization.0], RawAuthority::read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("listing authorities"))?;
        raws.into_iter().map(RawAuthority::parse).collect()
    }

    /// Units of the authority's balance used by the batches of one user (seed 001 "Get
    /// authority used balance" `?userId=`). Rejected batches count 0: their units came back.
    ///
    /// The available balance is the authority's, shared by its users ([`Store::authority`]).
    pub fn balance_used_by_user(
        &self,
        authority: AuthorityId,
        user: i64,
    ) -> Result<u64, StoreError> {
        let used: i64 = self
            .connection
            .prepare_cached(
                "SELECT coalesce(sum(used), 0) FROM batches WHERE authority_id = ?1 AND user_id = ?2",
            )
            .and_then(|mut select| select.query_row(params![authority.0, user], |row| row.get(0)))
            .map_err(db("summing a user's used balance"))?;
        from_sql_integer("authorities", authority.0, "used by user", used)
    }

    /// Batch-level audit entries of a batch (creation, status changes, downloads), oldest
    /// first (seed 001 "Get Batch Audit Log").
    pub fn audit_log(&self, batch: BatchId) -> Result<Vec<AuditEntry>, StoreError> {
        self.read_audit(batch, "a.device_id IS NULL")
    }

    /// Device audit entries of a batch (ISSUED, FAILED), oldest first (seed 001 "Get Batch
    /// Devices Audit Log").
    pub fn device_audit_log(&self, batch: BatchId) -> Result<Vec<AuditEntry>, StoreError> {
        self.read_audit(batch, "a.device_id IS NOT NULL")
    }

    fn read_audit(&self, batch: BatchId, condition: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!(
            "SELECT a.id, a.batch_id, a.device_id, c.common_name, a.time, a.actor, a.type,
                    a.message
             FROM audit_log a LEFT JOIN certificates c ON c.device_id = a.device_id
             WHERE a.batch_id = ?1 AND {condition} ORDER BY a.id"
        );
        type RawEntry = (
            i64,
            i64,
            Option<Vec<u8>>,
            Option<String>,
            i64,
            String,
            String,
            String,
        );
        let raws: Vec<RawEntry> = self
            .connection
            .prepare_cached(&sql)
            .and_then(|mut select| {
                select
                    .query_map([batch.0], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                            row.get(6)?,
                            row.get(7)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("reading the audit log"))?;
        raws.into_iter()
            .map(
                |(id, batch_id, device_id, common_name, time, actor, kind, message)| {
                    let corrupt = |column: &'static str, value: String| StoreError::CorruptRow {
                        table: "audit_log",
                        id: id.to_string(),
                        column,
                        value,
                    };
                    let device_id = device_id
                        .map(|octets| {
                            uuid::Uuid::from_slice(&octets)
                                .map(|uuid| uuid.hyphenated().to_string())
                                .map_err(|_| corrupt("device_id", hex(&octets)))
                        })
                        .transpose()?;
                    let kind =
                        AuditKind::parse(&kind).ok_or_else(|| corrupt("type", kind.clone()))?;
                    Ok(AuditEntry {
                        id,
                        batch_id: BatchId(batch_id),
                        device_id,
                        common_name,
                        time,
                        actor,
                        kind,
                        message,
                    })
                },
            )
            .collect()
    }

    /// Recomputes the whole audit chain and returns how many entries it checked.
    ///
    /// The first entry whose `prev_hash` is not its predecessor's `hash`, or whose `hash` is
    /// not SHA-256 over `prev_hash` and its fields, is [`StoreError::AuditChainBroken`]. An
    /// altered or deleted entry breaks the chain at itself or its successor; removing entries
    /// from the end is not detectable from the chain alone (compare the count with a copy).
    pub fn verify_audit_chain(&self) -> Result<u64, StoreError> {
        const ACTION: &str = "verifying the audit log";
        let mut select = self
            .connection
            .prepare_cached(
                "SELECT id, batch_id, device_id, time, actor, type, message, prev_hash, hash
                 FROM audit_log ORDER BY id",
            )
            .map_err(db(ACTION))?;
        let mut rows = select.query([]).map_err(db(ACTION))?;
        let mut previous = GENESIS_HASH;
        let mut checked = 0u64;
        while let Some(row) = rows.next().map_err(db(ACTION))? {
            let id: i64 = row.get(0).map_err(db(ACTION))?;
            let device_id: Option<Vec<u8>> = row.get(2).map_err(db(ACTION))?;
            let actor: String = row.get(4).map_err(db(ACTION))?;
            let kind: String = row.get(5).map_err(db(ACTION))?;
            let message: String = row.get(6).map_err(db(ACTION))?;
            let prev_hash: Vec<u8> = row.get(7).map_err(db(ACTION))?;
            let hash: Vec<u8> = row.get(8).map_err(db(ACTION))?;
            let device_id = match device_id.as_deref().map(<[u8; 16]>::try_from) {
                None => None,
                Some(Ok(octets)) => Some(octets),
                Some(Err(_)) => return Err(StoreError::AuditChainBroken { id }),
            };
            let expected = audit_hash(
                &previous,
                id,
                row.get(1).map_err(db(ACTION))?,
                device_id.as_ref(),
                row.get(3).map_err(db(ACTION))?,
                &actor,
                &kind,
                &message,
            );
            if prev_hash != previous || hash != expected {
                return Err(StoreError::AuditChainBroken { id });
            }
            previous = expected;
            checked += 1;
        }
        Ok(checked)
    }

    /// The rows of `sql`, a statement around a compiled `filter=` condition, with `values`
    /// bound to its `?` placeholders in order (the filter's, then the caller's), each read by
    /// `read`. The SQL text varies with the filter, so the statement is not cached.
    fn filtered<T>(
        &self,
        sql: &str,
        values: &[rusqlite::types::Value],
        read: impl FnMut(&db::Row<'_>) -> db::Result<T>,
        action: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        self.connection
            .prepare(sql)
            .and_then(|mut select| {
                select
                    .query_map(db::params_from_iter(values.iter()), read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db(action))
    }

    /// Starts an immediate transaction on the shared connection.
    ///
    /// Immediate takes the write lock up front, so the read-check-write sequences of the
    /// lifecycle (status, balance, audit chain head) cannot interleave with another writer's,
    /// and a busy database waits for the busy timeout instead of failing on lock upgrade.
    /// `&self` suffices because a `Store` is not `Sync` and no other transaction of this
    /// connection can be open while a method runs.
    fn write_transaction(&self, action: &'static str) -> Result<Transaction<'_>, StoreError> {
        self.connection.write_transaction().map_err(db(action))
    }
}

/// The body of [`Store::insert_certificates`], inside the caller's write transaction.
fn record_certificates(
    tx: &Transaction<'_>,
    now: i64,
    batch: BatchId,
    records: &[CertificateRecord],
) -> Result<(), StoreError> {
    let issuer_id = BatchState::load(tx, batch)?.issuer_id;
    let messages = insert_certificate_rows(tx, now, batch, issuer_id, records)?;
    account_certificates(tx, now, batch, records, &messages)
}

/// The first half of [`record_certificates`]: inserts the certificate rows (and registers
/// serials the caller did not reserve), returning each record's audit message.
///
/// It needs no write lock: the keys of `certificates` and `serial_intents` refuse a row any
/// other transaction holds, and the batch's issuer never changes. So on PostgreSQL
/// [`Store::finish_chunk`] runs it before taking the write lock, which then covers only the
/// accounting.
fn insert_certificate_rows(
    tx: &Transaction<'_>,
    now: i64,
    batch: BatchId,
    issuer_id: i64,
    records: &[CertificateRecord],
) -> Result<Vec<String>, StoreError> {
    const ACTION: &str = "recording certificates";
    // The pipeline reserved these rows' serials: one scan of the sequential
    // (batch_id, row_index) index over the chunk's rows finds them all. A record
    // without its own intent (a caller that did not reserve) registers the serial now;
    // the registry's key refuses a serial any other row holds.
    let rows = records.iter().map(|r| r.row);
    let (first, last) = (rows.clone().min(), rows.max());
    let mut own_intents: Vec<(i64, Vec<u8>)> = match (first, last) {
        (Some(first), Some(last)) => tx
            .prepare_cached(
                "SELECT row_index, serial FROM serial_intents
                     WHERE batch_id = ?1 AND row_index BETWEEN ?2 AND ?3 AND issuer_id = ?4
                       AND state = 'RESERVED'",
            )
            .and_then(|mut select| {
                select
                    .query_map(
                        params![
                            batch.0,
                            to_sql_integer("row", first).unwrap_or(i64::MAX),
                            to_sql_integer("row", last).unwrap_or(i64::MAX),
                            issuer_id
                        ],
                        |found| Ok((found.get(0)?, found.get(1)?)),
                    )?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db(ACTION))?,
        _ => Vec::new(),
    };
    own_intents.sort_unstable();
    let mut register = tx
        .prepare_cached(
            "INSERT INTO serial_intents (issuer_id, serial, batch_id, row_index, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(db(ACTION))?;
    let mut messages = Vec::with_capacity(records.len());
    // (row, significant serial octets) of each record, bound by the insert below.
    let mut keys: Vec<(i64, &[u8])> = Vec::with_capacity(records.len());
    for record in records {
        let serial = significant_octets(&record.serial);
        if serial.is_empty() || serial.len() > MAX_SERIAL_OCTETS {
            return Err(StoreError::InvalidSerial {
                row: record.row,
                octets: serial.len(),
            });
        }
        let row = to_sql_integer("row", record.row)?;
        let at = own_intents.partition_point(|(r, _)| *r < row);
        let own = own_intents[at..]
            .iter()
            .take_while(|(r, _)| *r == row)
            .any(|(_, s)| s.as_slice() == serial);
        if !own {
            match register.execute(params![issuer_id, serial, batch.0, row, now]) {
                Ok(_) => {}
                Err(error) if violation(&error) == Some(db::Violation::Unique) => {
                    return Err(StoreError::DuplicateSerial {
                        serial_hex: hex(serial),
                    })
                }
                Err(source) => {
                    return Err(StoreError::Database {
                        action: ACTION,
                        source,
                    })
                }
            }
        }
        keys.push((row, serial));
        messages.push(format!("row {}: issued serial {}", record.row, hex(serial)));
    }
    const INSERT_CERTIFICATES: &str = "INSERT INTO certificates (device_id, batch_id,
            issuer_id, row_index, common_name, serial, not_before, not_after, der, file_name,
            status)";
    let issued = DeviceStatus::Issued.as_str();
    let mut values: Vec<&dyn db::Param> = Vec::with_capacity(11 * records.len());
    for (record, (row, serial)) in records.iter().zip(&keys) {
        values.extend([
            &record.device_id as &dyn db::Param,
            &batch.0,
            &issuer_id,
            row,
            &record.common_name,
            serial,
            &record.not_before,
            &record.not_after,
            &record.der,
            &record.file_name,
            &issued,
        ]);
    }
    // Many rows a statement; only when that fails does the row-by-row path below find the
    // record to name.
    if tx
        .savepoint(|| tx.insert_rows(INSERT_CERTIFICATES, 11, &values))
        .is_err()
    {
        let mut insert = tx
            .prepare_cached(&format!(
                "{INSERT_CERTIFICATES} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .map_err(db(ACTION))?;
        for (record, row_values) in records.iter().zip(values.chunks_exact(11)) {
            if let Err(error) = insert.execute(row_values) {
                return Err(explain_insert_failure(tx, error, batch, record));
            }
        }
    }
    Ok(messages)
}

/// The second half of [`record_certificates`], under the write lock: checks the batch has room
/// for `records` and is still pending, appends their audit entries (`messages`) and moves the
/// counters and the balance.
fn account_certificates(
    tx: &Transaction<'_>,
    now: i64,
    batch: BatchId,
    records: &[CertificateRecord],
    messages: &[String],
) -> Result<(), StoreError> {
    const ACTION: &str = "recording certificates";
    let state = BatchState::load(tx, batch)?;
    let adding = state.check_room(batch, records.len())?;
    let mut chain = AuditChain::load(tx)?;
    {
        let entries: Vec<NewAuditEntry<'_>> = records
            .iter()
            .zip(messages)
            .map(|(record, message)| NewAuditEntry {
                batch: batch.0,
                device_id: Some(&record.device_id),
                time: now,
                actor: SYSTEM_ACTOR,
                kind: AuditKind::Issued,
                message,
            })
            .collect();
        chain.append_all(tx, &entries)?;
    }
    // While pending, an authority batch's reservation is size - issued - failed, and
    // check_room keeps issued + failed + adding <= size, so the reservation covers `adding`.
    let moved = if state.authority.is_some() {
        adding.min(to_sql_integer("reserved", state.reserved)?)
    } else {
        0
    };
    tx.prepare_cached(
        "UPDATE batches SET issued = issued + ?2, reserved = reserved - ?3, used = used + ?3
         WHERE id = ?1",
    )
    .and_then(|mut update| update.execute(params![batch.0, adding, moved]))
    .map_err(db(ACTION))?;
    if let Some(authority) = state.authority {
        tx.prepare_cached(
            "UPDATE authorities SET balance_reserved = balance_reserved - ?2,
                                    balance_used = balance_used + ?2
             WHERE id = ?1",
        )
        .and_then(|mut update| update.execute(params![authority, moved]))
        .map_err(db(ACTION))?;
    }
    Ok(())
}

/// The body of [`Store::record_failures`], inside the caller's write transaction.
fn record_failures(
    tx: &Transaction<'_>,
    now: i64,
    batch: BatchId,
    failures: &[DeviceFailure],
) -> Result<(), StoreError> {
    const ACTION: &str = "recording failed devices";
    let state = BatchState::load(tx, batch)?;
    let adding = state.check_room(batch, failures.len())?;
    let mut chain = AuditChain::load(tx)?;
    for failure in failures {
        chain.append(
            tx,
            &NewAuditEntry {
                batch: batch.0,
                device_id: Some(&failure.device_id),
                time: now,
                actor: SYSTEM_ACTOR,
                kind: AuditKind::Failed,
                message: &format!("row {}: {}", failure.row, failure.reason),
            },
        )?;
    }
    let moved = if state.authority.is_some() {
        adding.min(to_sql_integer("reserved", state.reserved)?)
    } else {
        0
    };
    tx.prepare_cached(
        "UPDATE batches SET failed = failed + ?2, reserved = reserved - ?3 WHERE id = ?1",
    )
    .and_then(|mut update| update.execute(params![batch.0, adding, moved]))
    .map_err(db(ACTION))?;
    if let Some(authority) = state.authority {
        tx.prepare_cached(
            "UPDATE authorities SET balance_reserved = balance_reserved - ?2,
                                    balance_available = balance_available + ?2
             WHERE id = ?1",
        )
        .and_then(|mut update| update.execute(params![authority, moved]))
        .map_err(db(ACTION))?;
    }
    Ok(())
}

/// Columns read by [`RawBatch::read`], in order.
const SELECT_BATCH: &str = "SELECT id, batch_name, profile_name, kind, size, status, created_at,
        issued, output_path, reason, issuer_id, parameters_json, updated_at, order_number,
        user_id, active, authority_id, failed, reserved, used, downloaded_at, zip_removed_at
        FROM batches";

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
    order_number: i64,
    user_id: Option<i64>,
    active: bool,
    authority_id: Option<i64>,
    failed: i64,
    reserved: i64,
    used: i64,
    downloaded_at: Option<i64>,
    zip_removed_at: Option<i64>,
}

impl RawBatch {
    fn read(row: &db::Row<'_>) -> db::Result<RawBatch> {
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
            order_number: row.get(13)?,
            user_id: row.get(14)?,
            active: row.get(15)?,
            authority_id: row.get(16)?,
            failed: row.get(17)?,
            reserved: row.get(18)?,
            used: row.get(19)?,
            downloaded_at: row.get(20)?,
            zip_removed_at: row.get(21)?,
        })
    }

    fn parse(self) -> Result<BatchRow, StoreError> {
        let status = BatchStatus::parse(&self.status).ok_or_else(|| StoreError::CorruptRow {
            table: "batches",
            id: self.id.to_string(),
            column: "status",
            value: self.status.clone(),
        })?;
        let downloadable = status.is_downloadable();
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
            order_number: from_sql_integer("batches", self.id, "order_number", self.order_number)?,
            user_id: self.user_id,
            active: self.active,
            authority: self.authority_id.map(AuthorityId),
            failed: from_sql_integer("batches", self.id, "failed", self.failed)?,
            reserved: from_sql_integer("batches", self.id, "reserved", self.reserved)?,
            used: from_sql_integer("batches", self.id, "used", self.used)?,
            downloaded_at: self.downloaded_at,
            zip_removed_at: self.zip_removed_at,
            downloadable,
            rejectable: downloadable && self.downloaded_at.is_none(),
        })
    }
}

/// Runs one cached statement inside `tx` and returns the rows it changed; an error is named
/// by `action`.
fn statement_runner<'t>(
    tx: &'t Transaction<'_>,
    action: &'static str,
) -> impl Fn(&str, &[&dyn db::Param]) -> Result<usize, StoreError> + 't {
    move |sql, values| {
        tx.prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values))
            .map_err(db(action))
    }
}

/// What the lifecycle methods read of a batch inside their write transaction.
struct BatchState {
    status: BatchStatus,
    downloaded: bool,
    issuer_id: i64,
    size: u64,
    issued: u64,
    failed: u64,
    authority: Option<i64>,
    reserved: u64,
    used: u64,
    user_id: Option<i64>,
    /// Whether the batch is a CSR batch: its certificates count only once it finishes.
    csr: bool,
}

impl BatchState {
    fn load(tx: &Transaction<'_>, batch: BatchId) -> Result<BatchState, StoreError> {
        const ACTION: &str = "reading a batch";
        type Raw = (
            String,
            Option<i64>,
            i64,
            i64,
            i64,
            i64,
            Option<i64>,
            i64,
            i64,
            Option<i64>,
            String,
        );
        let raw: Raw = tx
            .prepare_cached(
                "SELECT status, downloaded_at, issuer_id, size, issued, failed, authority_id,
                        reserved, used, user_id, kind
                 FROM batches WHERE id = ?1",
            )
            .and_then(|mut select| {
                select
                    .query_row([batch.0], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                            row.get(6)?,
                            row.get(7)?,
                            row.get(8)?,
                            row.get(9)?,
                            row.get(10)?,
                        ))
                    })
                    .optional()
            })
            .map_err(db(ACTION))?
            .ok_or(StoreError::BatchNotFound { batch })?;
        let (
            status,
            downloaded_at,
            issuer_id,
            size,
            issued,
            failed,
            authority,
            reserved,
            used,
            user_id,
            kind,
        ) = raw;
        let status = BatchStatus::parse(&status).ok_or_else(|| StoreError::CorruptRow {
            table: "batches",
            id: batch.to_string(),
            column: "status",
            value: status.clone(),
        })?;
        let count = |column, value| from_sql_integer("batches", batch.0, column, value);
        Ok(BatchState {
            status,
            downloaded: downloaded_at.is_some(),
            issuer_id,
            size: count("size", size)?,
            issued: count("issued", issued)?,
            failed: count("failed", failed)?,
            authority,
            reserved: count("reserved", reserved)?,
            used: count("used", used)?,
            user_id,
            csr: kind == "CSR",
        })
    }

    fn rejectable(&self) -> bool {
        self.status.is_downloadable() && !self.downloaded
    }

    /// Checks that a pending batch has room for `len` more devices and returns `len` as the
    /// SQL integer to add.
    fn check_room(&self, batch: BatchId, len: usize) -> Result<i64, StoreError> {
        if !self.status.is_pending() {
            return Err(StoreError::BatchNotPending {
                batch,
                status: self.status,
            });
        }
        let adding = u64::try_from(len).map_err(|_| StoreError::ValueTooLarge {
            field: "chunk length",
            value: u64::MAX,
        })?;
        let recorded = self.issued + self.failed;
        if recorded
            .checked_add(adding)
            .is_none_or(|total| total > self.size)
        {
            return Err(StoreError::BatchFull {
                batch,
                size: self.size,
                issued: recorded,
                adding,
            });
        }
        to_sql_integer("chunk length", adding)
    }

    /// [`BatchState::load`] for a batch the system is about to break off: one that is not
    /// pending is [`StoreError::InvalidTransition`] (to Broken).
    fn load_pending(tx: &Transaction<'_>, batch: BatchId) -> Result<BatchState, StoreError> {
        let state = BatchState::load(tx, batch)?;
        if !state.status.is_pending() {
            return Err(StoreError::InvalidTransition {
                batch,
                from: state.status,
                to: BatchStatus::Broken,
            });
        }
        Ok(state)
    }

    /// The system ends a pending batch Broken for `reason` (None keeps the stored one;
    /// [`BatchState::transition`]). A CSR batch's certificates, or any batch's when `void`,
    /// are voided first ([`BatchState::void_certificates`]); returns how many.
    fn break_off(
        &mut self,
        tx: &Transaction<'_>,
        chain: &mut AuditChain,
        batch: BatchId,
        reason: Option<&str>,
        now: i64,
        void: bool,
    ) -> Result<u64, StoreError> {
        let voided = if void || self.csr {
            self.void_certificates(tx, chain, batch, now)?
        } else {
            0
        };
        self.transition(
            tx,
            chain,
            batch,
            BatchStatus::Broken,
            reason,
            SYSTEM_ACTOR,
            now,
        )?;
        Ok(voided)
    }

    /// Deletes the certificate rows of a pending batch that never delivered them, gives the
    /// units they used back to its reservation (the break-off that follows returns the
    /// reservation to the authority), and appends one VOIDED audit entry with the count. Every
    /// serial intent of the batch then ends WASTED with the batch: never reused, and OCSP
    /// answers it revoked. Returns how many certificates were voided.
    fn void_certificates(
        &mut self,
        tx: &Transaction<'_>,
        chain: &mut AuditChain,
        batch: BatchId,
        now: i64,
    ) -> Result<u64, StoreError> {
        const ACTION: &str = "voiding a batch's certificates";
        let run = statement_runner(tx, ACTION);
        let voided = run("DELETE FROM certificates WHERE batch_id = ?1", &[&batch.0])? as u64;
        // While pending, `used` is what the deleted certificates moved out of the reservation.
        let used = to_sql_integer("used", self.used)?;
        run(
            "UPDATE batches SET issued = 0, used = 0, reserved = reserved + ?2 WHERE id = ?1",
            &[&batch.0, &used],
        )?;
        if let Some(authority) = self.authority {
            run(
                "UPDATE authorities SET balance_used = balance_used - ?2,
                                        balance_reserved = balance_reserved + ?2
                 WHERE id = ?1",
                &[&authority, &used],
            )?;
        }
        self.reserved += self.used;
        self.used = 0;
        self.issued = 0;
        chain.append(
            tx,
            &NewAuditEntry {
                batch: batch.0,
                device_id: None,
                time: now,
                actor: SYSTEM_ACTOR,
                kind: AuditKind::Voided,
                message: &format!(
                    "{voided} certificates signed before the batch failed were voided, never \
                     delivered; every serial of the batch is WASTED"
                ),
            },
        )?;
        Ok(voided)
    }

    /// Applies one status change and its effects (see [`Store::set_batch_status`]) inside the
    /// caller's transaction, and updates `self` to match.
    #[allow(clippy::too_many_arguments)]
    fn transition(
        &mut self,
        tx: &Transaction<'_>,
        chain: &mut AuditChain,
        batch: BatchId,
        to: BatchStatus,
        reason: Option<&str>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        const ACTION: &str = "changing a batch status";
        let from = self.status;
        if !from.can_become(to, self.downloaded) {
            return Err(StoreError::InvalidTransition { batch, from, to });
        }
        let run = statement_runner(tx, ACTION);
        // `status = from` re-checks what was read: the write lock makes it hold, and a change
        // of zero rows would mean a logic error rather than a silent overwrite.
        let changed = run(
            "UPDATE batches SET status = ?3, reason = coalesce(?4, reason), updated_at = ?5,
                    active = CASE WHEN ?6 THEN 0 ELSE active END,
                    zip_removed_at = CASE WHEN ?7 THEN ?5 ELSE zip_removed_at END
             WHERE id = ?1 AND status = ?2",
            &[
                &batch.0,
                &from.as_str(),
                &to.as_str(),
                &reason,
                &now,
                &to.ends_activity(),
                &(to == BatchStatus::ZipRemovedAfterExpiration),
            ],
        )?;
        if changed != 1 {
            return Err(StoreError::InvalidTransition { batch, from, to });
        }
        let mut message = format!("{from} -> {to}");
        if from.is_pending() && !to.is_pending() {
            if let Some(authority) = self.authority {
                let reserved = to_sql_integer("reserved", self.reserved)?;
                run(
                    "UPDATE authorities SET balance_reserved = balance_reserved - ?2,
                                            balance_available = balance_available + ?2
                     WHERE id = ?1",
                    &[&authority, &reserved],
                )?;
                run("UPDATE batches SET reserved = 0 WHERE id = ?1", &[&batch.0])?;
                if self.reserved > 0 {
                    message.push_str(&format!("; {} reserved units released", self.reserved));
                }
                self.reserved = 0;
            }
            // Every certificate of the batch holds exactly one of its intents (its own, or one
            // registered when it was recorded), so as many intents as certificates means none
            // is left to waste: the count reads the (batch_id, row_index) index alone, where
            // the sweep below probes `certificates` once per intent (60 ms at 50,000).
            let intents: i64 = tx
                .prepare_cached("SELECT count(*) FROM serial_intents WHERE batch_id = ?1")
                .and_then(|mut count| count.query_row(params![batch.0], |row| row.get(0)))
                .map_err(db(ACTION))?;
            let unrecorded = u64::try_from(intents) != Ok(self.issued);
            if unrecorded {
                run(
                    "UPDATE serial_intents SET state = ?2 WHERE batch_id = ?1 AND state = ?3
                       AND NOT EXISTS (SELECT 1 FROM certificates c
                                       WHERE c.batch_id = serial_intents.batch_id
                                         AND c.row_index = serial_intents.row_index
                                         AND c.serial = serial_intents.serial)",
                    &[
                        &batch.0,
                        &IntentState::Wasted.as_str(),
                        &IntentState::Reserved.as_str(),
                    ],
                )?;
            }
        }
        if to == BatchStatus::Rejected {
            if let Some(authority) = self.authority {
                let used = to_sql_integer("used", self.used)?;
                run(
                    "UPDATE authorities SET balance_used = balance_used - ?2,
                                            balance_available = balance_available + ?2
                     WHERE id = ?1",
                    &[&authority, &used],
                )?;
                run("UPDATE batches SET used = 0 WHERE id = ?1", &[&batch.0])?;
                message.push_str(&format!("; {} used units restored", self.used));
                self.used = 0;
            }
            // A rejected batch was never delivered, but its certificates are signed: they go
            // on the CRL and OCSP answers revoked (cessationOfOperation), so a copy that leaked
            // is not trusted. Certificates revoked before keep their reason.
            let revoked = run(
                "INSERT INTO revocations (issuer_id, serial, device_id, batch_id, reason,
                                          revoked_at, not_after, actor)
                 SELECT issuer_id, serial, device_id, batch_id, ?2, ?3, not_after, ?4
                 FROM certificates WHERE batch_id = ?1
                 ON CONFLICT (issuer_id, serial) DO NOTHING",
                &[
                    &batch.0,
                    &i64::from(crate::revocation::RevocationReason::CessationOfOperation.code()),
                    &now,
                    &actor,
                ],
            )?;
            if revoked > 0 {
                run(
                    "UPDATE issuers SET revocation_version = revocation_version + 1
                     WHERE id = ?1",
                    &[&self.issuer_id],
                )?;
                message.push_str(&format!(
                    "; {revoked} certificates revoked (cessationOfOperation)"
                ));
            }
        }
        let device_status = match to {
            BatchStatus::Rejected => Some(DeviceStatus::Rejected),
            BatchStatus::Revoked => Some(DeviceStatus::Revoked),
            _ => None,
        };
        if let Some(device_status) = device_status {
            run(
                "UPDATE certificates SET status = ?2 WHERE batch_id = ?1",
                &[&batch.0, &device_status.as_str()],
            )?;
        }
        if let Some(reason) = reason {
            message.push_str(": ");
            message.push_str(reason);
        }
        chain.append(
            tx,
            &NewAuditEntry {
                batch: batch.0,
                device_id: None,
                time: now,
                actor,
                kind: AuditKind::Status,
                message: &message,
            },
        )?;
        self.status = to;
        Ok(())
    }
}

/// Actor of entries the system writes on its own.
const SYSTEM_ACTOR: &str = "system";

/// Actor of an entry caused by the batch's user, when known.
fn actor_for(user: Option<i64>) -> String {
    match user {
        Some(user) => format!("user {user}"),
        None => SYSTEM_ACTOR.to_owned(),
    }
}

/// `prev_hash` of the first audit entry.
const GENESIS_HASH: [u8; 32] = [0; 32];

/// Domain separator at the start of every hashed entry, so the hash cannot be confused with
/// another SHA-256 use; it names the encoding's version.
const AUDIT_DOMAIN: &[u8] = b"certmill audit entry v1";

/// An audit entry about to be appended.
struct NewAuditEntry<'a> {
    batch: i64,
    device_id: Option<&'a [u8; 16]>,
    time: i64,
    actor: &'a str,
    kind: AuditKind,
    message: &'a str,
}

/// The head of the audit chain inside a write transaction: the next id and the last hash.
struct AuditChain {
    next_id: i64,
    prev_hash: [u8; 32],
}

impl AuditChain {
    /// Reads the chain head. Call inside an immediate transaction, so no other writer appends
    /// between this read and the caller's commit.
    fn load(tx: &Transaction<'_>) -> Result<AuditChain, StoreError> {
        const ACTION: &str = "reading the audit chain head";
        let head: Option<(i64, Vec<u8>)> = tx
            .prepare_cached("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            .and_then(|mut select| {
                select
                    .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .map_err(db(ACTION))?;
        match head {
            None => Ok(AuditChain {
                next_id: 1,
                prev_hash: GENESIS_HASH,
            }),
            Some((id, hash)) => Ok(AuditChain {
                next_id: id + 1,
                prev_hash: <[u8; 32]>::try_from(hash.as_slice())
                    .map_err(|_| StoreError::AuditChainBroken { id })?,
            }),
        }
    }

    /// Appends many entries, many rows per INSERT ([`Connection::insert_rows`]): a chunk of
    /// devices pays one statement per [`db::ROWS_PER_INSERT`] entries instead of one each.
    fn append_all(
        &mut self,
        tx: &Transaction<'_>,
        entries: &[NewAuditEntry<'_>],
    ) -> Result<(), StoreError> {
        struct Row<'a> {
            id: i64,
            device_id: Option<&'a [u8]>,
            kind: &'static str,
            prev_hash: [u8; 32],
            hash: [u8; 32],
        }
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            let hash = self.hash(self.next_id, entry);
            rows.push(Row {
                id: self.next_id,
                device_id: entry.device_id.map(|octets| octets.as_slice()),
                kind: entry.kind.as_str(),
                prev_hash: self.prev_hash,
                hash,
            });
            self.next_id += 1;
            self.prev_hash = hash;
        }
        let mut values: Vec<&dyn db::Param> = Vec::with_capacity(9 * rows.len());
        for (entry, row) in entries.iter().zip(&rows) {
            values.extend([
                &row.id as &dyn db::Param,
                &entry.batch,
                &row.device_id,
                &entry.time,
                &entry.actor,
                &row.kind,
                &entry.message,
                &row.prev_hash,
                &row.hash,
            ]);
        }
        tx.insert_rows(
            "INSERT INTO audit_log (id, batch_id, device_id, time, actor, type, message,
                                    prev_hash, hash)",
            9,
            &values,
        )
        .map_err(db("appending to the audit log"))?;
        Ok(())
    }

    fn hash(&self, id: i64, entry: &NewAuditEntry<'_>) -> [u8; 32] {
        audit_hash(
            &self.prev_hash,
            id,
            entry.batch,
            entry.device_id,
            entry.time,
            entry.actor,
            entry.kind.as_str(),
            entry.message,
        )
    }

    fn append(
        &mut self,
        tx: &Transaction<'_>,
        entry: &NewAuditEntry<'_>,
    ) -> Result<(), StoreError> {
        let hash = self.hash(self.next_id, entry);
        tx.prepare_cached(
            "INSERT INTO audit_log (id, batch_id, device_id, time, actor, type, message,
                                    prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                self.next_id,
                entry.batch,
                entry.device_id.map(|octets| octets.as_slice()),
                entry.time,
                entry.actor,
                entry.kind.as_str(),
                entry.message,
                self.prev_hash.as_slice(),
                hash.as_slice(),
            ])
        })
        .map_err(db("appending to the audit log"))?;
        self.next_id += 1;
        self.prev_hash = hash;
        Ok(())
    }
}

/// SHA-256 over `prev_hash` and the canonical encoding of an entry: the domain separator, then
/// every field as an 8-octet big-endian length followed by its octets (integers as 8-octet
/// big-endian two's complement, an absent device id as length 0), so no two different entries
/// encode alike.
#[allow(clippy::too_many_arguments)]
fn audit_hash(
    prev_hash: &[u8; 32],
    id: i64,
    batch: i64,
    device_id: Option<&[u8; 16]>,
    time: i64,
    actor: &str,
    kind: &str,
    message: &str,
) -> [u8; 32] {
    fn field(hasher: &mut Sha256, octets: &[u8]) {
        // usize → u64 never truncates on the 32- and 64-bit targets certmill builds for.
        hasher.update((octets.len() as u64).to_be_bytes());
        hasher.update(octets);
    }
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    field(&mut hasher, AUDIT_DOMAIN);
    field(&mut hasher, &id.to_be_bytes());
    field(&mut hasher, &batch.to_be_bytes());
    field(
        &mut hasher,
        device_id.map_or(&[][..], |octets| octets.as_slice()),
    );
    field(&mut hasher, &time.to_be_bytes());
    field(&mut hasher, actor.as_bytes());
    field(&mut hasher, kind.as_bytes());
    field(&mut hasher, message.as_bytes());
    hasher.finalize().into()
}

/// Columns read by [`RawAuthority::read`], in order.
const SELECT_AUTHORITY: &str = "SELECT id, organization_id, profile_name, issuer_id,
        balance_available, balance_reserved, balance_used, enabled, deleted_at FROM authorities";

/// An authority row as SQLite types, before its values are checked.
struct RawAuthority {
    id: i64,
    organization_id: i64,
    profile_name: String,
    issuer_id: i64,
    available: i64,
    reserved: i64,
    used: i64,
    enabled: bool,
    deleted_at: Option<i64>,
}

impl RawAuthority {
    fn read(row: &db::Row<'_>) -> db::Result<RawAuthority> {
        Ok(RawAuthority {
            id: row.get(0)?,
            organization_id: row.get(1)?,
            profile_name: row.get(2)?,
            issuer_id: row.get(3)?,
            available: row.get(4)?,
            reserved: row.get(5)?,
            used: row.get(6)?,
            enabled: row.get(7)?,
            deleted_at: row.get(8)?,
        })
    }

    fn parse(self) -> Result<AuthorityRow, StoreError> {
        let count = |column, value| from_sql_integer("authorities", self.id, column, value);
        Ok(AuthorityRow {
            id: AuthorityId(self.id),
            organization: OrganizationId(self.organization_id),
            profile_name: self.profile_name.clone(),
            issuer: IssuerId(self.issuer_id),
            balance_available: count("balance_available", self.available)?,
            balance_reserved: count("balance_reserved", self.reserved)?,
            balance_used: count("balance_used", self.used)?,
            enabled: self.enabled,
            deleted_at: self.deleted_at,
        })
    }
}

fn read_authority(
    connection: &Connection,
    authority: AuthorityId,
) -> Result<AuthorityRow, StoreError> {
    connection
        .prepare_cached(&format!("{SELECT_AUTHORITY} WHERE id = ?1"))
        .and_then(|mut select| {
            select
                .query_row([authority.0], RawAuthority::read)
                .optional()
        })
        .map_err(db("reading an authority"))?
        .ok_or(StoreError::AuthorityNotFound { authority })?
        .parse()
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
    fn read(row: &db::Row<'_>) -> db::Result<RawCertificate> {
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
    tx: &db::Transaction<'_>,
    error: db::DbError,
    batch: BatchId,
    record: &CertificateRecord,
) -> StoreError {
    if violation(&error) != Some(db::Violation::Unique) {
        return StoreError::Database {
            action: "recording certificates",
            source: error,
        };
    }
    let duplicate_device = || StoreError::DuplicateDevice {
        row: record.row,
        device_id: uuid::Uuid::from_bytes(record.device_id)
            .hyphenated()
            .to_string(),
    };
    // PostgreSQL names the key, and a failed statement ends its transaction, so there is no
    // asking it afterwards.
    match error.constraint() {
        Some("certificates_pkey") => return duplicate_device(),
        Some("certificates_batch_row") => {
            return StoreError::DuplicateRow {
                batch,
                row: record.row,
            }
        }
        _ => {}
    }
    // A lookup that itself fails counts as "not this key": the caller then gets the original
    // constraint error as a Database error, which loses no information.
    let exists = |sql: &str, values: &[&dyn db::Param]| -> bool {
        tx.prepare_cached(sql)
            .and_then(|mut select| select.exists(values))
            .unwrap_or(false)
    };
    if exists(
        "SELECT 1 FROM certificates WHERE device_id = ?1",
        &[&record.device_id.as_slice()],
    ) {
        return duplicate_device();
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

fn user_version(connection: &rusqlite::Connection) -> Result<i64, StoreError> {
    connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|source| StoreError::Database {
            action: "reading the format version",
            source: source.into(),
        })
}

fn postgres_version(connection: &Connection) -> Result<i64, StoreError> {
    connection
        .query_row("SELECT version FROM certmill_format", [], |row| row.get(0))
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
/// The append-only event logs of signers, authorities and API clients: one row per change,
/// written in the transaction of the change (triggers refuse updates and deletes).
#[derive(Clone, Copy)]
enum EventLog {
    Signer,
    Authority,
    Client,
}

impl EventLog {
    /// Appends one event about `subject` (the log's key: signer id, authority id, client id).
    fn record(
        self,
        tx: &Transaction<'_>,
        subject: &dyn db::Param,
        time: i64,
        actor: &str,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let (sql, action) = match self {
            EventLog::Signer => (
                "INSERT INTO signer_events (signer_id, time, actor, type, message)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                "recording a signer event",
            ),
            EventLog::Authority => (
                "INSERT INTO authority_events (authority_id, time, actor, type, message)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                "recording an authority event",
            ),
            EventLog::Client => (
                "INSERT INTO client_events (client_id, time, actor, type, message)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                "recording an API client event",
            ),
        };
        tx.prepare_cached(sql)
            .and_then(|mut insert| insert.execute(params![subject, time, actor, kind, message]))
            .map(drop)
            .map_err(db(action))
    }
}

fn db(action: &'static str) -> impl Fn(db::DbError) -> StoreError {
    move |source| StoreError::Database { action, source }
}

fn violation(error: &db::DbError) -> Option<db::Violation> {
    error.violation()
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
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}
