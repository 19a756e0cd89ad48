//! Batches: inputs → validated devices → rayon workers (key, template, signature, PKCS#12) →
//! one writer (streaming ZIP + manifest + store).
//!
//! The flow, numbered as in `docs/ISSUANCE.md` (steps 0 and 1 are the profile and template):
//! 2. every input row is resolved and checked against the profile before any key exists; up to
//!    100 errors are reported with their row and nothing is written;
//! 3. the batch is recorded in the store;
//! 4. rows are read again in chunks; workers generate the key, draw the serial, fill the
//!    template, have the CA sign and pack the PKCS#12;
//! 5. the writer appends each chunk to the ZIP and the manifest and records its certificates
//!    in one transaction;
//! 6. the ZIP is renamed into place and the batch marked Ready For Download.
//!
//! Memory stays flat: at most two chunks are in flight, the ZIP and the manifest stream to
//! temporary files. This module orchestrates; it holds no crypto of its own.

pub mod chunked;
pub mod cputime;
mod csv_input;
mod input;
pub mod recovery;
mod station;

pub use csv_input::CsvLayout;
pub use input::{BatchInput, ChunkProofs, DeviceInput, Job, OpenInput, Proof};
pub use station::{Station, StationDevice};
mod writer;
pub(crate) mod zipstream;

pub use writer::{hex, rfc3339, MANIFEST_HEADER};

use crate::ca::{CaError, IssuingCa};
use crate::csr::{CsrError, ParsedCsr};
use crate::generator::GeneratorError;
use crate::keys::{self, KeyError, KeypairQueue};
use crate::pkcs12::{self, Pkcs12Error, Pkcs12Options, Pkcs12Password};
use crate::profile::{CertBag, Profile, ValueError};
use crate::store::{
    device_id_from, AuthorityId, BatchId, BatchStatus, Checkpointer, IssuerId, NewBatch, Store,
    StoreError, CHECKPOINT_INTERVAL, DEVICE_ID_RANDOM_OCTETS,
};
use crate::template::{PreparedDevice, Template, TemplateError};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most row errors listed before giving up on listing.
pub const MAX_LISTED_ERRORS: usize = 100;
/// Devices per chunk between workers and the writer.
const CHUNK: usize = 512;
/// Chunks queued on the workers at once (see `run_issuing`).
const CHUNKS_IN_FLIGHT: usize = 2;

/// Chunks queued on the workers, oldest first: each one's device count and where its
/// [`Issued`] arrives.
type InFlight = VecDeque<(u64, crossbeam_channel::Receiver<Issued>)>;

/// One chunk's devices issued, in the chunk's order.
enum Issued {
    /// Each device's outcome (requests checked before).
    Outcomes(Vec<Outcome>),
    /// Each request's check, then its outcome (a pipelined batch: [`pipelined_job`]).
    Checked(Vec<Result<Outcome, Box<RowError>>>),
}

/// Errors of a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The CSV is malformed (header or a record).
    #[error("{path}{}: {message}", .row.map(|r| format!(", row {r}")).unwrap_or_default())]
    Csv {
        /// The file.
        path: String,
        /// Data row (1 = first record after the header).
        row: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// Rows broke the profile's rules; nothing was issued.
    #[error("{}", RowErrors::new(errors, *total))]
    InvalidRows {
        /// Up to [`MAX_LISTED_ERRORS`] errors.
        errors: Vec<RowError>,
        /// How many rows failed in all.
        total: u64,
    },
    /// The CSR bundle cannot be read or breaks a limit.
    #[error("CSR input{}: {source}", .entry.as_ref().map(|e| format!(" {e}")).unwrap_or_default())]
    Csr {
        /// Entry name or position, when one is at fault.
        entry: Option<String>,
        /// Cause.
        source: CsrError,
    },
    /// The generator parameters are invalid.
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    /// The input has no devices.
    #[error("the input has no devices")]
    Empty,
    /// The input holds more devices than one batch may ([`InputLimits::max_devices`]).
    #[error("the input holds more than {limit} devices, the most one batch may hold (split it, or raise --max-devices)")]
    TooManyDevices {
        /// [`InputLimits::max_devices`].
        limit: u64,
    },
    /// A required batch input is missing (the PKCS#12 password).
    #[error("{0}")]
    MissingInput(String),
    /// A batch parameter the profile does not read.
    #[error("batch parameter {name:?} is not used by profile {profile:?} (it reads: {known})")]
    UnknownParameter {
        /// The parameter.
        name: String,
        /// The profile.
        profile: String,
        /// What it reads.
        known: String,
    },
    /// The profile cannot be used with this CA.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Key generation failed.
    #[error("row {row}: key generation failed: {source}")]
    Key {
        /// Row.
        row: u64,
        /// Cause.
        source: KeyError,
    },
    /// The CA failed to sign.
    #[error("row {row}: signing failed: {source}")]
    Sign {
        /// Row.
        row: u64,
        /// Cause.
        source: CaError,
    },
    /// PKCS#12 packing failed.
    #[error("row {row}: PKCS#12 failed: {source}")]
    Pkcs12 {
        /// Row.
        row: u64,
        /// Cause.
        source: Pkcs12Error,
    },
    /// The ZIP writer failed.
    #[error("ZIP: {0}")]
    Zip(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer thread stopped unexpectedly.
    #[error("internal error: {0}")]
    Unreachable(&'static str),
    /// A chunked batch's shared resources (object store, sealed password, work description)
    /// failed ([`chunked`]).
    #[error("{0}")]
    Cluster(String),
    /// This node cannot work on a chunked batch that another node can: its key, profiles or
    /// signers differ from the ordering node's. The chunk goes back to the queue without
    /// spending one of its attempts.
    #[error("this node cannot work on it: {0}")]
    NotForThisNode(String),
}

/// A device whose input broke a rule.
#[derive(Debug)]
pub struct RowError {
    /// 1-based position in the input.
    pub row: u64,
    /// How the input names it ("row 3", "entry `dev-7.csr`", "device 12").
    pub location: String,
    /// What broke.
    pub error: DeviceError,
}

/// Why one device cannot be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// A value is missing or refused by the profile.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The CSR is malformed, unsupported or its signature does not verify.
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// An internal inconsistency.
    #[error("internal error: {0}")]
    Unreachable(&'static str),
}

struct RowErrors<'a> {
    errors: &'a [RowError],
    total: u64,
}

impl<'a> RowErrors<'a> {
    fn new(errors: &'a [RowError], total: u64) -> Self {
        RowErrors { errors, total }
    }
}

impl fmt::Display for RowErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} device(s) refused, nothing was issued:", self.total)?;
        for e in self.errors {
            write!(f, "\n  {}: {}", e.location, e.error)?;
        }
        if self.total > self.errors.len() as u64 {
            write!(
                f,
                "\n  ... and {} more",
                self.total - self.errors.len() as u64
            )?;
        }
        Ok(())
    }
}

/// What became of one device, on its way to the writer.
pub enum Outcome {
    /// Issued.
    Issued(IssuedDevice),
    /// Could not be issued; the batch goes on (it ends Batch Issued Partly).
    Failed(FailedDevice),
}

/// A device that could not be issued.
pub struct FailedDevice {
    /// Input row.
    pub row: u64,
    /// Random UUID.
    pub device_id: [u8; 16],
    /// Where the input names it.
    pub location: String,
    /// Why (no secrets).
    pub reason: String,
}

/// A device issued by a worker, on its way to the writer.
#[derive(Clone)]
pub struct IssuedDevice {
    /// Input row.
    pub row: u64,
    /// Random UUID.
    pub device_id: [u8; 16],
    /// Subject CN (empty when the subject has none).
    pub common_name: String,
    /// What the ZIP entry is named after: the CN, else the CSR entry name or `device-<row>`.
    pub file_stem: String,
    /// Serial, big-endian positive magnitude.
    pub serial: Vec<u8>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// Certificate DER.
    pub certificate: Vec<u8>,
    /// The ZIP entry: PKCS#12 DER, or the PEM certificate of a CSR.
    pub file: EntryFile,
}

/// A ZIP entry's content with its CRC-32 (for the ZIP headers) and SHA-256 (for the manifest),
/// both computed when it is made, on the worker that packed it: the batch's one writer thread
/// then only copies it. On the writer the two hashes were 3.4 µs of an ECC device's 17 µs and
/// 1.6 µs of a CSR's 19 µs, work that bounds a batch as the cores grow (the writer caps it at
/// one device per its own time) and that a 1-thread batch got for free on the second core.
///
/// The hashes can only be made from the bytes ([`EntryFile::new`]), so they cannot disagree.
#[derive(Clone)]
pub struct EntryFile {
    bytes: Vec<u8>,
    crc32: u32,
    sha256: [u8; 32],
}

impl EntryFile {
    /// `bytes` with their CRC-32 and SHA-256.
    pub fn new(bytes: Vec<u8>) -> EntryFile {
        let crc32 = crc32fast::hash(&bytes);
        let sha256 = Sha256::digest(&bytes).into();
        EntryFile {
            bytes,
            crc32,
            sha256,
        }
    }

    /// The content.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// CRC-32 (IEEE) of the content.
    pub fn crc32(&self) -> u32 {
        self.crc32
    }

    /// SHA-256 of the content.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The content, without its hashes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl Default for EntryFile {
    /// No content, with the hashes of no content as constants: a device between its signature
    /// and its file holds this, so the hot path hashes nothing twice (tested against `new`).
    fn default() -> EntryFile {
        EntryFile {
            bytes: Vec::new(),
            crc32: 0,
            sha256: [
                0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
                0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
                0x78, 0x52, 0xb8, 0x55,
            ],
        }
    }
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressStyle {
    /// An indicatif bar on stderr.
    Bar,
    /// A plain line on stderr every 10%.
    Lines,
    /// Nothing.
    Quiet,
}

/// Options of one batch.
pub struct BatchOptions {
    /// Batch parameters (`Batch.<name>`), without the password.
    pub parameters: BTreeMap<String, String>,
    /// PKCS#12 password (never stored).
    pub password: Option<Pkcs12Password>,
    /// PKCS#12 encryption.
    pub pkcs12: Pkcs12Options,
    /// Output ZIP.
    pub out: PathBuf,
    /// Batch name in the store.
    pub batch_name: String,
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// Progress display.
    pub progress: ProgressStyle,
    /// The authority whose balance pays for the batch (none: unmetered).
    pub authority: Option<AuthorityId>,
    /// The user ordering it.
    pub user: Option<i64>,
    /// The signer's registration in the store (a loaded signer's); `None` registers the CA
    /// certificate by its fingerprint. Given, it keeps a batch under its signer's serial
    /// registry even when the signer was renewed after the batch picked it up.
    pub issuer: Option<IssuerId>,
    /// Told the batch's id as soon as the store has recorded it (after validation, before
    /// issuing): a server answers its client then, while the batch runs on.
    pub on_created: Option<crossbeam_channel::Sender<BatchId>>,
    /// Pre-generated device keys to draw from (none: every key is generated as its device is
    /// issued). A device whose algorithm has no ready key generates it inline.
    pub keypairs: Option<std::sync::Arc<KeypairQueue>>,
    /// Bounds on the input.
    pub limits: InputLimits,
}

/// Bounds on one batch's input, checked as it is read, so that a broken or hostile file is
/// refused by name before it costs more than the bound.
#[derive(Clone, Copy, Debug)]
pub struct InputLimits {
    /// Most devices in one batch: CSV records, CSRs or generated devices (default 10,000,000;
    /// `--max-devices`, `CERTMILL_MAX_DEVICES`).
    pub max_devices: u64,
    /// Longest CSV field, in bytes (default 4 KiB; `--max-csv-field-bytes`). No certificate
    /// field takes more (a commonName is at most 64 characters, a SAN DNS name 253).
    pub max_csv_field_bytes: usize,
    /// Longest CSV record, in bytes (default 64 KiB; `--max-csv-record-bytes`): the memory one
    /// row may take as the file streams. A file without line ends or with an unclosed quote is
    /// refused at this size.
    pub max_csv_record_bytes: u64,
    /// CSR bundles, checked when the bundle is opened ([`crate::csr::CsrBundle::open`]).
    pub csr: crate::csr::CsrLimits,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_devices: 10_000_000,
            max_csv_field_bytes: 4 << 10,
            max_csv_record_bytes: 64 << 10,
            csr: crate::csr::CsrLimits::default(),
        }
    }
}

/// What a finished batch reports.
#[derive(Clone, Debug)]
pub struct BatchReport {
    /// Store id.
    pub batch_id: BatchId,
    /// Devices issued.
    pub devices: u64,
    /// Devices that failed (listed in the manifest).
    pub failed: u64,
    /// How the batch ended.
    pub status: BatchStatus,
    /// Wall time of the issuing pass (after validation).
    pub elapsed: Duration,
    /// Wall time of the validation pass.
    pub validation: Duration,
    /// Whether each request was verified as it was signed, in one pass
    /// ([`BatchInput::verified_as_signed`]): `validation` is then only opening the input.
    pub one_pass: bool,
    /// The ZIP.
    pub out: PathBuf,
    /// CPU time the store took (reserving serials, recording devices), all threads.
    pub store_cpu: Duration,
    /// CPU time of the whole process over the issuing pass, all threads (Linux only).
    pub cpu: Option<Duration>,
}

impl BatchReport {
    /// Devices per second over the issuing pass.
    pub fn devices_per_second(&self) -> f64 {
        self.devices as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The store's share of the issuing pass's CPU time: with every core busy, the speed the
    /// batch would gain without the store.
    pub fn store_share(&self) -> Option<f64> {
        let cpu = self.cpu?.as_secs_f64();
        (cpu > 0.0).then(|| self.store_cpu.as_secs_f64() / cpu)
    }
}

/// Octets of the millisecond clock that lead a serial of [`TIME_PREFIXED_FROM`] octets or more.
const SERIAL_CLOCK_OCTETS: usize = 6;

/// Serials this long or longer lead with the clock and keep 64 random bits or more.
const TIME_PREFIXED_FROM: usize = SERIAL_CLOCK_OCTETS + 8;

/// Draws a serial of `length` octets, positive and of fixed length in DER.
///
/// From `TIME_PREFIXED_FROM` octets (the shipped profiles use 16), the serial is the Unix
/// time in milliseconds on 6 octets followed by `length - 6` CSPRNG octets: 80 random bits at 16
/// octets, above the 64 that CA/Browser Forum BR 7.1 asks for, and the leading octet is 0x01
/// until the year 10889, so the serial is positive with no sign octet. Time order puts each new
/// serial at the right edge of the store's serial registry instead of at a random page, which
/// halves the store's cost per device (benches/store.rs); the layout is the one UUIDv7 uses for
/// the same reason. Shorter serials (9 to 13 octets) are all random: top bit clear, first
/// octet non-zero, `8 * length - 1` bits less a negligible bias on the first octet.
pub fn draw_serial(length: usize) -> Result<Vec<u8>, KeyError> {
    let mut serial = vec![0u8; length];
    keys::random_bytes(&mut serial)?;
    shape_serial(&mut serial, crate::store::unix_millis());
    Ok(serial)
}

/// Turns `length` CSPRNG octets into the serial [`draw_serial`] describes, stamped with
/// `millis` (Unix milliseconds) when it is long enough.
fn shape_serial(serial: &mut [u8], millis: u64) {
    if serial.len() >= TIME_PREFIXED_FROM {
        let clock = millis.to_be_bytes();
        serial[..SERIAL_CLOCK_OCTETS].copy_from_slice(&clock[8 - SERIAL_CLOCK_OCTETS..]);
    }
    if let Some(first) = serial.first_mut() {
        *first &= 0x7f;
        if *first == 0 {
            *first = 1;
        }
    }
}

#[cfg(test)]
mod validation_tests {
    use super::*;

    /// The validation pass reads the next chunk while the pool checks the current one: every
    /// chunk's refused rows are still reported, in order, and a clean input counts every row.
    #[test]
    fn validation_reports_refused_rows_of_every_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let ca = IssuingCa::init(dir.path(), &Default::default()).unwrap();
        let profile = Profile::load("ecc-device", &Default::default()).unwrap();
        let template = Template::new(&profile, &ca, time::OffsetDateTime::now_utc()).unwrap();
        let rows = 2 * CHUNK + 300;
        let bad = [5, CHUNK + 7, 2 * CHUNK + 290];
        let csv = |with_bad: bool| {
            let mut text = String::from("macAddress,deviceClass\n");
            for row in 1..=rows {
                let mac = if with_bad && bad.contains(&row) {
                    "not-a-mac".to_owned()
                } else {
                    format!("02:00:00:00:{:02X}:{:02X}", row >> 8, row & 0xff)
                };
                text.push_str(&format!("{mac},Aircraft\n"));
            }
            let path = dir.path().join(format!("rows-{with_bad}.csv"));
            std::fs::write(&path, text).unwrap();
            path
        };
        let counted = validate_csv(
            &template,
            &csv(false),
            &BTreeMap::new(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(counted, rows as u64);
        match validate_csv(&template, &csv(true), &BTreeMap::new(), &Default::default()) {
            Err(BatchError::InvalidRows { errors, total }) => {
                assert_eq!(total, 3);
                let refused: Vec<u64> = errors.iter().map(|e| e.row).collect();
                assert_eq!(refused, bad.map(|row| row as u64).to_vec());
            }
            other => panic!("expected the three bad rows, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod pipeline_tests {
    use super::*;
    use crate::csr::{CsrBundle, CsrLimits};
    use crate::store::IntentState;

    /// A PEM bundle of `n` P-256 requests; those at the 1-based positions in `broken` have a
    /// flipped signature bit.
    fn bundle(dir: &Path, n: usize, broken: &[usize]) -> CsrBundle {
        let ders: Vec<Vec<u8>> = (1..=n)
            .into_par_iter()
            .map(|i| {
                let mac = format!("02:00:00:00:{:02X}:{:02X}", i >> 8, i & 0xff);
                let mut der = crate::bench::inputs::p256_csr_der(&mac).unwrap();
                if broken.contains(&i) {
                    let at = der.len() - 3;
                    der[at] ^= 1;
                }
                der
            })
            .collect();
        let mut text = String::new();
        for der in &ders {
            text.push_str(
                &der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, der)
                    .unwrap(),
            );
        }
        let path = dir.join(format!("bundle-{n}-{broken:?}.pem"));
        std::fs::write(&path, text).unwrap();
        let bundle = CsrBundle::open(&path, &CsrLimits::default()).unwrap();
        assert!(BatchInput::Csr(&bundle).verified_as_signed());
        bundle
    }

    fn options(out: PathBuf, on_created: crossbeam_channel::Sender<BatchId>) -> BatchOptions {
        BatchOptions {
            parameters: BTreeMap::from([("deviceClass".to_owned(), "Aircraft".to_owned())]),
            password: None,
            pkcs12: Default::default(),
            out,
            batch_name: "pipelined".into(),
            threads: Some(2),
            progress: ProgressStyle::Quiet,
            authority: None,
            user: None,
            issuer: None,
            on_created: Some(on_created),
            keypairs: None,
            limits: Default::default(),
        }
    }

    /// Issues a bundle of `n` requests (those at `broken` not verifying) into `dir`/out.zip
    /// with a fresh CA; returns the result, the `on_created` receiver and the ZIP's path.
    fn issue_bundle(
        dir: &Path,
        n: usize,
        broken: &[usize],
    ) -> (
        Result<BatchReport, BatchError>,
        crossbeam_channel::Receiver<BatchId>,
        PathBuf,
    ) {
        let ca = IssuingCa::init(dir, &Default::default()).unwrap();
        let profile = Profile::load("ecc-device", &Default::default()).unwrap();
        let bundle = bundle(dir, n, broken);
        let out = dir.join("out.zip");
        let (sender, created) = crossbeam_channel::bounded(1);
        let result = issue(
            dir,
            &ca,
            &profile,
            &BatchInput::Csr(&bundle),
            &options(out.clone(), sender),
        );
        (result, created, out)
    }

    /// A bundle verified as it is signed: every certificate recorded and in the ZIP, every
    /// serial used, and the batch announced.
    #[test]
    fn a_valid_pem_bundle_is_verified_and_signed_in_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * CHUNK + 10;
        let (result, created, out) = issue_bundle(dir.path(), n, &[]);
        let report = result.unwrap();
        assert_eq!((report.devices, report.failed), (n as u64, 0));
        assert_eq!(created.try_recv().unwrap(), report.batch_id);
        assert!(out.exists());
        let store = Store::open(dir.path()).unwrap();
        let batch = store.batch(report.batch_id).unwrap().unwrap();
        assert_eq!(batch.status, BatchStatus::ReadyForDownload);
        assert_eq!(batch.issued, n as u64);
        // Every reserved serial is used by its certificate: none is left over.
        assert!(store.serial_intents(report.batch_id).unwrap().is_empty());
    }

    /// Requests that do not verify, in the third chunk, after two chunks were signed and
    /// recorded: the batch fails whole naming both, with no ZIP, no certificate left, every
    /// serial it reserved WASTED, and it is never announced.
    #[test]
    fn a_refused_request_fails_the_batch_and_voids_what_it_signed() {
        let dir = tempfile::tempdir().unwrap();
        let broken = [2 * CHUNK + 7, 3 * CHUNK + 100];
        let (result, created, out) = issue_bundle(dir.path(), 4 * CHUNK, &broken);
        match result {
            Err(BatchError::InvalidRows { errors, total }) => {
                assert_eq!(total, 2);
                let rows: Vec<u64> = errors.iter().map(|e| e.row).collect();
                assert_eq!(rows, broken.map(|row| row as u64).to_vec());
                assert!(
                    errors[0].error.to_string().contains("signature"),
                    "{errors:?}"
                );
            }
            other => panic!("expected the broken requests, got {other:?}"),
        }
        assert!(
            created.try_recv().is_err(),
            "a refused batch is not announced"
        );
        assert!(!out.exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let store = Store::open(dir.path()).unwrap();
        let batch = store.batches().unwrap().into_iter().next().unwrap();
        assert_eq!(batch.status, BatchStatus::Broken);
        assert_eq!(batch.issued, 0);
        assert!(store
            .find_certificates(Some("02:00:00:00:00:01"), None)
            .unwrap()
            .is_empty());
        // The first two chunks were signed and recorded, then voided; the third was reserved
        // and signed, then dropped: all their serials are in the registry, WASTED.
        let intents = store.serial_intents(batch.id).unwrap();
        assert!(intents.len() >= 3 * CHUNK, "{} intents", intents.len());
        assert!(intents.iter().all(|i| i.state == IntentState::Wasted));
        let voided = store.audit_log(batch.id).unwrap();
        assert!(voided
            .iter()
            .any(|e| e.kind == crate::store::AuditKind::Voided
                && e.message
                    .starts_with(&format!("{} certificates", 2 * CHUNK))));
    }
}

#[cfg(test)]
mod serial_tests {
    use super::*;

    #[test]
    fn long_serials_lead_with_the_clock_and_keep_80_random_bits() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let a = draw_serial(16).unwrap();
        let b = draw_serial(16).unwrap();
        let clock = |s: &[u8]| {
            let mut octets = [0u8; 8];
            octets[2..].copy_from_slice(&s[..6]);
            u64::from_be_bytes(octets)
        };
        assert_eq!(a.len(), 16);
        assert_eq!(a[0], 0x01, "positive, non-zero, no sign octet");
        assert!(clock(&a) >= before && clock(&a) <= clock(&b));
        assert!(clock(&b) - before < 60_000);
        assert_ne!(a[6..], b[6..], "the random part differs");
    }

    #[test]
    fn a_chunk_draws_distinct_time_ordered_serials_and_version_7_ids() {
        let before = crate::store::unix_millis();
        let reserved = draw_reserved(512, 16, 0).unwrap();
        let after = crate::store::unix_millis();
        assert_eq!(reserved.len(), 512);
        let serials: std::collections::HashSet<&[u8]> =
            reserved.iter().map(|r| r.serial.as_slice()).collect();
        let ids: std::collections::HashSet<[u8; 16]> =
            reserved.iter().map(|r| r.device_id).collect();
        assert_eq!((serials.len(), ids.len()), (512, 512));
        for r in &reserved {
            assert_eq!(r.serial.len(), 16);
            let mut clock = [0u8; 8];
            clock[2..].copy_from_slice(&r.serial[..6]);
            let millis = u64::from_be_bytes(clock);
            assert!((before..=after).contains(&millis), "serial clock {millis}");
            let id = uuid::Uuid::from_bytes(r.device_id);
            assert_eq!(id.get_version_num(), 7);
            let (seconds, nanos) = id.get_timestamp().unwrap().to_unix();
            assert_eq!(seconds * 1000 + u64::from(nanos) / 1_000_000, millis);
        }
        // The random parts differ between devices (80 bits of serial, 74 of id).
        assert!(reserved
            .windows(2)
            .all(|w| w[0].serial[6..] != w[1].serial[6..]));
        let short = draw_reserved(64, 9, 0).unwrap();
        assert!(short
            .iter()
            .all(|r| r.serial.len() == 9 && r.serial[0] & 0x80 == 0 && r.serial[0] != 0));
    }

    #[test]
    fn short_serials_are_all_random_and_positive() {
        let mut leading = std::collections::BTreeSet::new();
        for _ in 0..64 {
            let s = draw_serial(9).unwrap();
            assert_eq!(s.len(), 9);
            assert!(s[0] != 0 && s[0] < 0x80, "{s:02x?}");
            leading.insert(s[0]);
        }
        assert!(
            leading.len() > 16,
            "the first octet is random too: {leading:?}"
        );
    }
}

/// What every device of a batch is issued with.
struct DeviceTools<'a> {
    template: &'a Template,
    ca: &'a IssuingCa,
    input: &'a OpenInput<'a>,
    password: Option<&'a Pkcs12Password>,
    pkcs12: &'a Pkcs12Options,
    keypairs: Option<&'a KeypairQueue>,
}

/// Steps 4.3 to 4.6 for one device with its reserved serial: its values, key, certificate and
/// file. A device that fails (its values, or the crypto refusing it) fails alone.
fn issue_job(tools: &DeviceTools<'_>, job: Job, reserved: Reserved, proof: Proof) -> Outcome {
    match tools.input.prepare(tools.template, &job, proof) {
        Ok((prepared, csr)) => issue_prepared(tools, job, reserved, prepared, csr.as_deref()),
        Err(error) => Outcome::Failed(FailedDevice {
            row: job.row,
            device_id: reserved.device_id,
            location: job.location,
            reason: error.to_string(),
        }),
    }
}

/// [`issue_job`] for a request not verified before ([`Issuing::pipelined`]): a request its
/// check refuses is the whole batch's [`RowError`], as in the validation pass; a device the
/// crypto then refuses fails alone.
fn pipelined_job(
    tools: &DeviceTools<'_>,
    job: Job,
    reserved: Reserved,
) -> Result<Outcome, Box<RowError>> {
    match tools.input.prepare(tools.template, &job, Proof::Verify) {
        Ok((prepared, csr)) => Ok(issue_prepared(
            tools,
            job,
            reserved,
            prepared,
            csr.as_deref(),
        )),
        Err(error) => Err(Box::new(RowError {
            row: job.row,
            location: job.location,
            error,
        })),
    }
}

/// Issues a device whose values are prepared (key, certificate and file); a device the crypto
/// refuses fails alone.
fn issue_prepared(
    tools: &DeviceTools<'_>,
    job: Job,
    reserved: Reserved,
    prepared: PreparedDevice,
    csr: Option<&ParsedCsr>,
) -> Outcome {
    let device_id = reserved.device_id;
    let issued = issue_device(
        tools.template,
        tools.ca,
        job.row,
        &job.name_hint(),
        reserved,
        prepared,
        csr,
        tools.password,
        tools.pkcs12,
        tools.keypairs,
    );
    match issued {
        Ok(device) => Outcome::Issued(device),
        Err(error) => Outcome::Failed(FailedDevice {
            row: job.row,
            device_id,
            location: job.location,
            reason: error.to_string(),
        }),
    }
}

/// The requests of `chunk` that `input`'s checks refuse (step 2's checks, nothing signed).
fn check_chunk(
    template: &Template,
    input: &OpenInput<'_>,
    chunk: &[Job],
    pool: &rayon::ThreadPool,
) -> Vec<RowError> {
    pool.install(|| {
        chunk
            .par_iter()
            .with_max_len(1)
            .filter_map(|job| {
                input
                    .prepare(template, job, Proof::Verify)
                    .err()
                    .map(|error| RowError {
                        row: job.row,
                        location: job.location.clone(),
                        error,
                    })
            })
            .collect()
    })
}

/// Step 4 for one device: key (generated, or the CSR's), serial, TBS, signature, and the file
/// (PKCS#12 for a generated key, PEM certificate for a CSR).
#[allow(clippy::too_many_arguments)]
fn issue_device(
    template: &Template,
    ca: &IssuingCa,
    row: u64,
    name_hint: &str,
    reserved: Reserved,
    prepared: PreparedDevice,
    csr: Option<&ParsedCsr>,
    password: Option<&Pkcs12Password>,
    pkcs12_options: &Pkcs12Options,
    keypairs: Option<&KeypairQueue>,
) -> Result<IssuedDevice, BatchError> {
    let signed = sign_device(
        template, ca, row, name_hint, reserved, prepared, csr, keypairs,
    )?;
    pack_device(signed, ca, Sealing::Derive(password, pkcs12_options))
}

/// A signed device whose file is not built yet.
struct SignedDevice {
    device: IssuedDevice,
    /// The generated key (None for a CSR), until its PKCS#12.
    key: Option<keys::GeneratedKey>,
    cert_bag: CertBag,
}

/// The first half of [`issue_device`]: the key, the TBS and the signature.
#[allow(clippy::too_many_arguments)]
fn sign_device(
    template: &Template,
    ca: &IssuingCa,
    row: u64,
    name_hint: &str,
    reserved: Reserved,
    prepared: PreparedDevice,
    csr: Option<&ParsedCsr>,
    keypairs: Option<&KeypairQueue>,
) -> Result<SignedDevice, BatchError> {
    let profile = template.profile();
    let file_stem = prepared
        .common_name
        .clone()
        .unwrap_or_else(|| name_hint.to_owned());
    let Reserved { serial, device_id } = reserved;
    // The key: the CSR's, or a new one, from the keypair pool when there is one, else
    // generated here (it lives only until its PKCS#12).
    let generated = match (csr, keypairs) {
        (Some(_), _) => None,
        (None, Some(queue)) => Some(
            queue
                .take(profile.key_algorithm())
                .map_err(|source| BatchError::Key { row, source })?,
        ),
        (None, None) => Some(
            keys::generate(profile.key_algorithm())
                .map_err(|source| BatchError::Key { row, source })?,
        ),
    };
    let (spki, public_key_bits) = match (csr, &generated) {
        (Some(csr), _) => (csr.spki_der(), csr.public_key_bits()),
        (None, Some(key)) => (key.spki_der(), key.public_key_bits()),
        (None, None) => return Err(BatchError::Unreachable("no key for a device")),
    };
    let tbs = template.tbs_certificate(&prepared, &serial, spki, public_key_bits);
    let signature = ca
        .sign(template.signature_algorithm(), &tbs)
        .map_err(|source| BatchError::Sign { row, source })?;
    let certificate = template.certificate(&tbs, &signature);
    Ok(SignedDevice {
        device: IssuedDevice {
            row,
            device_id,
            common_name: prepared.common_name.clone().unwrap_or_default(),
            file_stem,
            serial,
            not_before: template.not_before().unix_timestamp(),
            not_after: prepared.not_after().unix_timestamp(),
            certificate,
            // Made by pack_device.
            file: EntryFile::default(),
        },
        key: generated,
        cert_bag: prepared.cert_bag,
    })
}

/// How [`pack_device`] gets a PKCS#12's password-derived keys.
enum Sealing<'a> {
    /// Derived here, from the batch's password (none for a CSR batch) and options.
    Derive(Option<&'a Pkcs12Password>, &'a Pkcs12Options),
    /// Derived already, e.g. on another thread while the device was signed.
    Sealed(pkcs12::Pkcs12Seal),
}

/// The second half of [`issue_device`]: the file, a PKCS#12 for a generated key (which ends
/// here) or the PEM certificate for a CSR.
fn pack_device(
    signed: SignedDevice,
    ca: &IssuingCa,
    sealing: Sealing<'_>,
) -> Result<IssuedDevice, BatchError> {
    let SignedDevice {
        mut device,
        key,
        cert_bag,
    } = signed;
    device.file = EntryFile::new(match key {
        None => crate::asn1::pem_certificate(&device.certificate),
        Some(key) => {
            let chain = ca.chain_der();
            let extra = match cert_bag {
                CertBag::Leaf => 0,
                CertBag::LeafIssuer => 1.min(chain.len()),
                CertBag::LeafIssuerRoot => chain.len(),
            };
            let mut certs: Vec<&[u8]> = Vec::with_capacity(1 + extra);
            certs.push(&device.certificate);
            certs.extend(chain[..extra].iter().map(Vec::as_slice));
            let row = device.row;
            match sealing {
                Sealing::Derive(password, options) => pkcs12::build(
                    key.pkcs8_der(),
                    &certs,
                    &device.file_stem,
                    password.ok_or(BatchError::Unreachable("server key without a password"))?,
                    options,
                ),
                Sealing::Sealed(seal) => {
                    pkcs12::build_sealed(seal, key.pkcs8_der(), &certs, &device.file_stem)
                }
            }
            .map_err(|source| BatchError::Pkcs12 { row, source })?
        }
    });
    Ok(device)
}

/// A device's serial (already recorded as an intent in the store) and id.
struct Reserved {
    serial: Vec<u8>,
    device_id: [u8; 16],
}

/// A serial of `serial_length` octets ([`draw_serial`]) and a device id ([`new_device_id`]
/// layout) for each of `count` devices, from one CSPRNG call: a call per value cost the
/// reserver about a microsecond a device. `row` names the chunk in an error.
///
/// [`new_device_id`]: crate::store::new_device_id
fn draw_reserved(
    count: usize,
    serial_length: usize,
    row: u64,
) -> Result<Vec<Reserved>, BatchError> {
    let per_device = serial_length + DEVICE_ID_RANDOM_OCTETS;
    let mut random = vec![0u8; per_device * count];
    keys::random_bytes(&mut random).map_err(|source| BatchError::Key { row, source })?;
    let millis = crate::store::unix_millis();
    random
        .chunks_exact(per_device)
        .map(|octets| {
            let (serial, id) = octets
                .split_last_chunk::<DEVICE_ID_RANDOM_OCTETS>()
                .ok_or(BatchError::Unreachable("a device's random octets"))?;
            let mut serial = serial.to_vec();
            shape_serial(&mut serial, millis);
            Ok(Reserved {
                serial,
                device_id: device_id_from(millis, id),
            })
        })
        .collect()
}

/// Step 4.2 for a chunk: draws a serial per device and records them all as intents in one
/// transaction, before anything is signed with them. A crash after this wastes the serials,
/// never reuses them. A (2^-120-unlikely) collision with an earlier serial draws again.
fn reserve_chunk(
    store: &Store,
    batch: BatchId,
    issuer: IssuerId,
    chunk: &[Job],
    serial_length: usize,
) -> Result<Vec<Reserved>, BatchError> {
    for _attempt in 0..3 {
        let reserved = draw_reserved(
            chunk.len(),
            serial_length,
            chunk.first().map_or(0, |job| job.row),
        )?;
        let serials: Vec<(u64, &[u8])> = chunk
            .iter()
            .zip(&reserved)
            .map(|(job, r)| (job.row, r.serial.as_slice()))
            .collect();
        match store.reserve_serials(batch, issuer, &serials) {
            Ok(()) => return Ok(reserved),
            Err(StoreError::DuplicateSerial { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(BatchError::Unreachable("three serial collisions in a row"))
}

/// The checks of an order before any row is read: the batch parameters, the device limit
/// (when the input knows its length) and the PKCS#12 password rule. Returns the password the
/// server's keys are packed with, if any.
fn precheck<'o>(
    profile: &Profile,
    input: &BatchInput<'_>,
    options: &'o BatchOptions,
) -> Result<Option<&'o Pkcs12Password>, BatchError> {
    check_parameters(profile, &options.parameters, input)?;
    if input
        .known_len()
        .is_some_and(|n| n > options.limits.max_devices)
    {
        return Err(BatchError::TooManyDevices {
            limit: options.limits.max_devices,
        });
    }
    server_key_password(profile, input, options)
}

fn check_parameters(
    profile: &Profile,
    parameters: &BTreeMap<String, String>,
    input: &BatchInput<'_>,
) -> Result<(), BatchError> {
    let known = profile.batch_parameter_names();
    // Generator and single batches carry per-device values as batch parameters too
    // (seed 001 `profileParams`).
    let per_device: Vec<String> = match input {
        BatchInput::Generator(_) | BatchInput::Single => {
            profile.csv_columns().into_iter().map(|c| c.name).collect()
        }
        _ => Vec::new(),
    };
    for name in parameters.keys() {
        if !known.contains(name) && !per_device.contains(name) {
            let mut all = known.clone();
            all.extend(per_device.iter().cloned());
            return Err(BatchError::UnknownParameter {
                name: name.clone(),
                profile: profile.name().to_owned(),
                known: all.join(", "),
            });
        }
    }
    Ok(())
}

fn worker_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, BatchError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .thread_name(|i| format!("certmill-worker-{i}"))
        .build()
        .map_err(|_| BatchError::Unreachable("cannot start the worker pool"))
}

/// Reads up to `CHUNK` jobs.
fn next_chunk(
    jobs: &mut dyn Iterator<Item = Result<Job, BatchError>>,
) -> Result<Vec<Job>, BatchError> {
    let mut chunk = Vec::with_capacity(CHUNK);
    while chunk.len() < CHUNK {
        match jobs.next() {
            Some(job) => chunk.push(job?),
            None => break,
        }
    }
    Ok(chunk)
}

/// Step 2: resolves and checks every device against `template`, in parallel chunks. Returns
/// the number of devices, or every refused device (up to [`MAX_LISTED_ERRORS`] listed).
/// Generates no key and writes nothing.
pub fn validate(
    template: &Template,
    input: &OpenInput<'_>,
    pool: &rayon::ThreadPool,
) -> Result<u64, BatchError> {
    validate_with_proofs(template, input, pool).map(|(total, _)| total)
}

/// [`validate`], also returning the digests of the chunks it verified ([`ChunkProofs`]).
fn validate_with_proofs(
    template: &Template,
    input: &OpenInput<'_>,
    pool: &rayon::ThreadPool,
) -> Result<(u64, ChunkProofs), BatchError> {
    validate_and_name(template, input, pool, None)
}

/// [`validate_with_proofs`], also naming every device's ZIP entry in row order with `namer`
/// when given, and returning in `renamed` the rows whose name is not the default one
/// ([`writer::default_entry_name`]): what lets nodes name the entries of a chunked batch
/// independently and still uniquely.
fn validate_and_name(
    template: &Template,
    input: &OpenInput<'_>,
    pool: &rayon::ThreadPool,
    mut naming: Option<(&mut writer::EntryNamer, &mut Vec<(u64, String)>)>,
) -> Result<(u64, ChunkProofs), BatchError> {
    let mut jobs = input.jobs()?;
    let mut errors = Vec::new();
    let mut failed = 0u64;
    let mut total = 0u64;
    let mut proofs = ChunkProofs::default();
    let mut chunk = next_chunk(&mut jobs)?;
    for index in 0.. {
        if chunk.is_empty() {
            break;
        }
        total += chunk.len() as u64;
        if total > input.limits().max_devices {
            return Err(BatchError::TooManyDevices {
                limit: input.limits().max_devices,
            });
        }
        // The pool checks this chunk while this thread reads the next one and hashes this one:
        // run between the chunks, that sequential work left both workers idle for about a
        // tenth of a CSR bundle's validation.
        let mut refused: Vec<RowError> = Vec::new();
        let mut stems: Vec<String> = Vec::new();
        let naming_now = naming.is_some();
        let (next, digest) = pool.in_place_scope(|scope| {
            scope.spawn(|_| {
                let row_error = |job: &Job, error| RowError {
                    row: job.row,
                    location: job.location.clone(),
                    error,
                };
                if naming_now {
                    let results: Vec<Result<String, Box<RowError>>> = chunk
                        .par_iter()
                        .with_max_len(1)
                        .map(|job| {
                            input
                                .prepare(template, job, Proof::Verify)
                                .map(|(prepared, _)| {
                                    prepared.common_name.unwrap_or_else(|| job.name_hint())
                                })
                                .map_err(|error| Box::new(row_error(job, error)))
                        })
                        .collect();
                    for result in results {
                        match result {
                            Ok(stem) => stems.push(stem),
                            Err(error) => refused.push(*error),
                        }
                    }
                } else {
                    refused = check_chunk(template, input, &chunk, pool);
                }
            });
            (next_chunk(&mut jobs), ChunkProofs::digest(&chunk))
        });
        if let Some((namer, renamed)) = naming.as_mut() {
            if refused.is_empty() && failed == 0 {
                for (job, stem) in chunk.iter().zip(&stems) {
                    let name = namer.name(stem, job.row);
                    if name != namer.default_name(stem) {
                        renamed.push((job.row, name));
                    }
                }
            }
        }
        if refused.is_empty() && failed == 0 {
            proofs.push_digest(index, digest);
        }
        failed += refused.len() as u64;
        errors.extend(
            refused
                .into_iter()
                .take(MAX_LISTED_ERRORS.saturating_sub(errors.len())),
        );
        chunk = next?;
    }
    if failed > 0 {
        return Err(BatchError::InvalidRows {
            errors,
            total: failed,
        });
    }
    if total == 0 {
        return Err(BatchError::Empty);
    }
    Ok((total, proofs))
}

/// Step 2 for a CSV file alone (the fuzz target's entry point).
pub fn validate_csv(
    template: &Template,
    csv_path: &Path,
    parameters: &BTreeMap<String, String>,
    limits: &InputLimits,
) -> Result<u64, BatchError> {
    let input = BatchInput::Csv(csv_path);
    let open = OpenInput::open(&input, template.profile(), parameters, limits)?;
    validate(template, &open, &worker_pool(Some(1))?)
}

/// Issues a CSV batch with server-generated keys into a ZIP of PKCS#12 files.
pub fn issue_csv(
    data_dir: &Path,
    ca: &IssuingCa,
    profile: &Profile,
    csv_path: &Path,
    options: &BatchOptions,
) -> Result<BatchReport, BatchError> {
    issue(data_dir, ca, profile, &BatchInput::Csv(csv_path), options)
}

/// Issues a batch: validates every device, records the batch, issues and writes the ZIP.
pub fn issue(
    data_dir: &Path,
    ca: &IssuingCa,
    profile: &Profile,
    input: &BatchInput<'_>,
    options: &BatchOptions,
) -> Result<BatchReport, BatchError> {
    let password = precheck(profile, input, options)?;
    let template = Template::new(profile, ca, time::OffsetDateTime::now_utc())?;
    let pool = worker_pool(options.threads)?;

    // 2. Validate every device before any key is generated or anything signed; a PEM CSR
    // bundle is verified as it is signed instead, all or nothing still (see run_issuing).
    let started = Instant::now();
    let open = OpenInput::open(input, profile, &options.parameters, &options.limits)?;
    let pipelined = input.verified_as_signed();
    let (total, proofs) = if pipelined {
        // The bundle's open decoded every entry: what is left to check is each request
        // (signature, key, values), which step 4 does before signing it.
        let total = input.known_len().unwrap_or_default();
        if total > open.limits().max_devices {
            return Err(BatchError::TooManyDevices {
                limit: open.limits().max_devices,
            });
        }
        if total == 0 {
            return Err(BatchError::Empty);
        }
        (total, ChunkProofs::default())
    } else {
        validate_with_proofs(&template, &open, &pool)?
    };
    let validation = started.elapsed();

    // 3. Record the batch (and reserve its size from the authority's balance).
    let store = Store::open(data_dir)?;
    let (issuer, batch) = record_batch(&store, ca, profile, input, options, total)?;
    // Held while the batch runs: recovery never touches a batch whose lock is taken.
    let lock = recovery::lock_batch(data_dir, batch)?;
    if !pipelined {
        announce(options, batch);
    }

    let extension = if input.has_csr() { "crt" } else { "p12" };
    let context = Issuing {
        template: &template,
        ca,
        input: &open,
        options,
        password,
        pool: &pool,
        issuer,
        batch,
        total,
        proofs: &proofs,
        extension,
        zip_comment: lock.zip_comment(),
        pipelined,
    };
    let cpu_before = cputime::process();
    let checkpointer = Checkpointer::start(data_dir, CHECKPOINT_INTERVAL)?;
    let result = run_issuing(&context, data_dir, store.for_pipeline()?, &checkpointer);
    drop(checkpointer);
    let cpu = cputime::process()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let store = Store::open(data_dir)?;
    match result {
        Ok(counts) => {
            // 6. Finished: the ZIP is in place.
            let status = if counts.failed == 0 {
                BatchStatus::ReadyForDownload
            } else if counts.issued > 0 {
                BatchStatus::BatchIssuedPartly
            } else {
                BatchStatus::Broken
            };
            store.finish_batch(batch, status)?;
            Ok(BatchReport {
                batch_id: batch,
                devices: counts.issued,
                failed: counts.failed,
                status,
                elapsed: started.elapsed() - validation,
                validation,
                one_pass: pipelined,
                out: options.out.clone(),
                store_cpu: counts.store_cpu,
                cpu,
            })
        }
        Err(e) if pipelined => {
            // All or nothing: what the batch signed was never delivered and never counts.
            store.void_batch(batch, &e.to_string())?;
            Err(e)
        }
        Err(e) => {
            store.abandon_batch(batch, &e.to_string())?;
            Err(e)
        }
    }
}

/// Tells the options' `on_created` the batch's id: the batch is recorded and its input valid.
fn announce(options: &BatchOptions, batch: BatchId) {
    if let Some(created) = &options.on_created {
        // The receiver may have gone (a client that disconnected): the batch runs on.
        let _ = created.send(batch);
    }
}

/// Step 3: registers the issuer and records a batch of `size` devices (reserving them from the
/// options' authority, if any). generatorParametersValues are the batch parameters (never the
/// password), and a generator batch's own parameters.
fn record_batch(
    store: &Store,
    ca: &IssuingCa,
    profile: &Profile,
    input: &BatchInput<'_>,
    options: &BatchOptions,
    size: u64,
) -> Result<(IssuerId, BatchId), BatchError> {
    let issuer = match options.issuer {
        Some(issuer) => issuer,
        None => store.register_issuer(ca.certificate_der(), &ca.describe())?,
    };
    let mut recorded = options.parameters.clone();
    if let BatchInput::Generator(sequence) = input {
        recorded.extend(sequence.recorded_parameters());
    }
    let parameters_json = serde_json::to_string(&recorded).unwrap_or_else(|_| "{}".into());
    let out_text = options.out.display().to_string();
    let new_batch = NewBatch {
        batch_name: &options.batch_name,
        profile_name: profile.name(),
        kind: input.kind(),
        size,
        issuer,
        parameters_json: &parameters_json,
        output_path: &out_text,
    };
    let batch = match options.authority {
        Some(authority) => store.create_batch_for(authority, &new_batch, options.user)?,
        None => store.create_batch(&new_batch)?,
    };
    Ok((issuer, batch))
}

/// The PKCS#12 password a batch of `input` needs: none for CSRs (the profile must take keys
/// from CSRs), the options' password for server-generated keys (the profile must allow them).
fn server_key_password<'o>(
    profile: &Profile,
    input: &BatchInput<'_>,
    options: &'o BatchOptions,
) -> Result<Option<&'o Pkcs12Password>, BatchError> {
    Ok(if input.has_csr() {
        if !profile.allows_csr_keys() {
            return Err(BatchError::MissingInput(format!(
                "profile {:?} takes no key from a CSR (no CSR.SubjectPublicKeyInfo source)",
                profile.name()
            )));
        }
        None
    } else {
        if !profile.allows_server_keys() {
            return Err(BatchError::MissingInput(format!(
                "profile {:?} takes keys only from CSRs (no KeypairQueue.der_spki source): this batch cannot generate keys for it",
                profile.name()
            )));
        }
        // Refused before anything is recorded: every device's PKCS#12 would fail after its
        // certificate was signed.
        if options.pkcs12.iterations == 0 {
            return Err(BatchError::MissingInput(
                "the PKCS#12 iteration count is 0; it must be at least 1 (OpenSSL 3 uses 2048)"
                    .into(),
            ));
        }
        Some(options.password.as_ref().ok_or_else(|| {
            BatchError::MissingInput(
                "a PKCS#12 password is required: --password-file, CERTMILL_PKCS12_PASSWORD or the prompt".into(),
            )
        })?)
    })
}

/// Everything the issuing pass needs.
struct Issuing<'a> {
    template: &'a Template,
    ca: &'a IssuingCa,
    input: &'a OpenInput<'a>,
    options: &'a BatchOptions,
    password: Option<&'a Pkcs12Password>,
    pool: &'a rayon::ThreadPool,
    issuer: IssuerId,
    batch: BatchId,
    total: u64,
    /// The chunks the validation pass verified.
    proofs: &'a ChunkProofs,
    extension: &'static str,
    /// Ends the ZIP, so recovery can recognise it (see [`recovery`]).
    zip_comment: String,
    /// Each request is verified as it is signed ([`BatchInput::verified_as_signed`]): one
    /// refused request fails the batch, and the batch is announced only once all verified.
    pipelined: bool,
}

/// How many devices were issued and how many failed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Issued.
    pub issued: u64,
    /// Failed.
    pub failed: u64,
    /// CPU time the writer and reserver threads spent in the store.
    pub store_cpu: Duration,
}

/// Runs the issuing pass. `checkpointer` takes the WAL checkpoints of the pass's connections
/// (`store` included), so no commit of the reserver or the writer waits on an fsync.
fn run_issuing(
    c: &Issuing<'_>,
    data_dir: &Path,
    store: Store,
    checkpointer: &Checkpointer,
) -> Result<Counts, BatchError> {
    let writer = writer::BatchWriter::create(
        &c.options.out,
        &c.ca.chain_pem(),
        store.checkpoint_in_background(checkpointer)?,
        c.batch,
        c.template.not_before(),
        c.extension,
        c.zip_comment.clone(),
    )?;
    // The reserver's own connection, for serial intents (the writer's records certificates).
    let intents = Store::open(data_dir)?
        .for_pipeline()?
        .checkpoint_in_background(checkpointer)?;
    let (sender, receiver) = crossbeam_channel::bounded::<Vec<Outcome>>(2);
    // Chunks whose serials are reserved, waiting for the workers: reserving chunk k+1 overlaps
    // issuing chunk k, so the workers never wait on the store.
    let (reserved_sender, reserved_receiver) =
        crossbeam_channel::bounded::<(Vec<Job>, Vec<Reserved>, Proof)>(1);
    let progress = Progress::new(c.options.progress, c.total);
    let serial_length = c.template.profile().serial_length;
    // A pipelined batch with a refused request: nothing more is reserved or signed, and the
    // writer is dropped unfinished (its temporary ZIP removed; issue voids what it recorded).
    let refusing = AtomicBool::new(false);
    let refusing = &refusing;

    std::thread::scope(|scope| {
        // 5. The writer: one thread owns the ZIP and the store's records.
        let writer_thread = scope.spawn(move || -> Result<Counts, BatchError> {
            let mut writer = writer;
            for chunk in receiver {
                writer.write_chunk(chunk)?;
            }
            if refusing.load(Ordering::SeqCst) {
                return Ok(Counts::default());
            }
            // Every record is committed: the store's last checkpoint overlaps closing the ZIP.
            checkpointer.finish_soon();
            Ok(writer.finish()?.0)
        });

        // 4. Read the input and reserve each chunk's serials (4.2), one chunk ahead.
        let reserver_thread = scope.spawn(move || -> Result<Duration, BatchError> {
            let mut jobs = c.input.jobs()?;
            let mut store_cpu = Duration::ZERO;
            for index in 0.. {
                let chunk = next_chunk(&mut jobs)?;
                if chunk.is_empty() {
                    break;
                }
                let proof = c.proofs.proof(index, &chunk);
                let reserved = if refusing.load(Ordering::SeqCst) {
                    Vec::new() // only checked from now on: no serial is reserved for it
                } else {
                    cputime::measure(&mut store_cpu, || {
                        reserve_chunk(&intents, c.batch, c.issuer, &chunk, serial_length)
                    })?
                };
                if reserved_sender.send((chunk, reserved, proof)).is_err() {
                    return Ok(store_cpu); // the issuing loop stopped: its error is reported below
                }
            }
            Ok(store_cpu)
        });

        // 4. Prepare and issue each reserved chunk on the workers.
        let tools = DeviceTools {
            template: c.template,
            ca: c.ca,
            input: c.input,
            password: c.password,
            pkcs12: &c.options.pkcs12,
            keypairs: c.options.keypairs.as_deref(),
        };
        // Refused requests of a pipelined batch (up to MAX_LISTED_ERRORS) and their count.
        let mut refused: Vec<RowError> = Vec::new();
        let mut refused_total = 0u64;
        // One chunk's devices on the workers, in the chunk's order.
        let issue_chunk = |chunk: Vec<Job>, reserved: Vec<Reserved>, proof: Proof| -> Issued {
            if c.pipelined {
                Issued::Checked(
                    chunk
                        .into_par_iter()
                        .zip(reserved)
                        .with_max_len(1)
                        .map(|(job, reserved)| pipelined_job(&tools, job, reserved))
                        .collect(),
                )
            } else {
                Issued::Outcomes(
                    chunk
                        .into_par_iter()
                        .zip(reserved)
                        // One device a task: a worker that runs out steals single devices,
                        // so a chunk never ends with one worker finishing a long run alone
                        // (on 2 cores: 2-3% of an ECC batch's time; a device is 20-250 µs,
                        // a task under 1 µs).
                        .with_max_len(1)
                        // Validated in step 2; a value that fails now (the file edited
                        // meanwhile) or a device the crypto refuses fails alone.
                        .map(|(job, reserved)| issue_job(&tools, job, reserved, proof))
                        .collect(),
                )
            }
        };
        // A chunk done, in order: its outcomes go to the writer, unless a request of a
        // pipelined batch was refused (in it or before), and then its certificates are dropped
        // here, never recorded. False when the writer stopped (its error is reported below).
        let deliver = |issued: Issued,
                       count: u64,
                       refused: &mut Vec<RowError>,
                       refused_total: &mut u64|
         -> bool {
            let outcomes = match issued {
                Issued::Outcomes(outcomes) => outcomes,
                Issued::Checked(results) => {
                    let mut outcomes = Vec::with_capacity(results.len());
                    for result in results {
                        match result {
                            Ok(outcome) => outcomes.push(outcome),
                            Err(error) => {
                                *refused_total += 1;
                                if refused.len() < MAX_LISTED_ERRORS {
                                    refused.push(*error);
                                }
                            }
                        }
                    }
                    outcomes
                }
            };
            if *refused_total > 0 {
                refusing.store(true, Ordering::SeqCst);
                return true;
            }
            if sender.send(outcomes).is_err() {
                return false;
            }
            progress.advance(count);
            true
        };
        let produce = || -> Result<(), BatchError> {
            let reserved_chunks = reserved_receiver;
            // Up to CHUNKS_IN_FLIGHT chunks are queued on the pool at once: a worker that runs
            // out of one chunk's devices takes the next chunk's, instead of sleeping at every
            // chunk's end until this thread has handed the chunk over and queued the next.
            c.pool.in_place_scope(|scope| -> Result<(), BatchError> {
                let mut in_flight: InFlight = VecDeque::with_capacity(CHUNKS_IN_FLIGHT);
                let next_done = |in_flight: &mut InFlight,
                                 refused: &mut Vec<RowError>,
                                 refused_total: &mut u64|
                 -> Result<bool, BatchError> {
                    let Some((count, done)) = in_flight.pop_front() else {
                        return Ok(true);
                    };
                    let issued = done
                        .recv()
                        .map_err(|_| BatchError::Unreachable("a chunk's workers stopped"))?;
                    Ok(deliver(issued, count, refused, refused_total))
                };
                for (chunk, reserved, proof) in reserved_chunks.iter() {
                    if refused_total > 0 {
                        // The batch fails: the rest is only checked, to name every refused
                        // request as a validation pass would.
                        let more = check_chunk(c.template, c.input, &chunk, c.pool);
                        refused_total += more.len() as u64;
                        let room = MAX_LISTED_ERRORS.saturating_sub(refused.len());
                        refused.extend(more.into_iter().take(room));
                        continue;
                    }
                    let count = chunk.len() as u64;
                    let (done_sender, done) = crossbeam_channel::bounded::<Issued>(1);
                    let issue_chunk = &issue_chunk;
                    scope.spawn(move |_| {
                        // The receiver is gone only when the batch already stopped.
                        let _ = done_sender.send(issue_chunk(chunk, reserved, proof));
                    });
                    in_flight.push_back((count, done));
                    if in_flight.len() == CHUNKS_IN_FLIGHT
                        && !next_done(&mut in_flight, &mut refused, &mut refused_total)?
                    {
                        return Ok(());
                    }
                }
                while !in_flight.is_empty() {
                    if !next_done(&mut in_flight, &mut refused, &mut refused_total)? {
                        return Ok(());
                    }
                }
                Ok(())
            })
        };
        let produced = produce();
        let reserved = reserver_thread
            .join()
            .map_err(|_| BatchError::Unreachable("the reserving thread panicked"))?;
        if c.pipelined && refused_total == 0 && produced.is_ok() && reserved.is_ok() {
            // Every request read and verified: the batch stands (its last records follow).
            announce(c.options, c.batch);
        }
        drop(sender);
        let written = writer_thread
            .join()
            .map_err(|_| BatchError::Unreachable("the writer thread panicked"))?;
        progress.finish();
        let reserving_cpu = reserved?;
        produced?;
        if refused_total > 0 {
            return Err(BatchError::InvalidRows {
                errors: refused,
                total: refused_total,
            });
        }
        let mut counts = written?;
        counts.store_cpu += reserving_cpu;
        Ok(counts)
    })
}

/// Progress on stderr: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    total: u64,
    done: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn new(style: ProgressStyle, total: u64) -> Progress {
        let bar = (style == ProgressStyle::Bar).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(s) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} devices  {per_sec}  eta {eta}",
            ) {
                bar.set_style(s);
            }
            bar
        });
        Progress {
            bar,
            lines: style == ProgressStyle::Lines,
            total,
            done: 0.into(),
        }
    }

    fn advance(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.lines && self.total > 0 {
            let tenth = |x: u64| x * 10 / self.total;
            if tenth(before + n) > tenth(before) {
                eprintln!("issued {}/{} devices", before + n, self.total);
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
