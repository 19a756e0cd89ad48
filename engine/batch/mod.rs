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

mod csv_input;

pub use csv_input::CsvLayout;
mod writer;

pub use writer::{hex, MANIFEST_HEADER};

use crate::ca::{CaError, IssuingCa};
use crate::keys::{self, KeyError};
use crate::pkcs12::{self, Pkcs12Error, Pkcs12Options, Pkcs12Password};
use crate::profile::{CertBag, Inputs, Profile, ValueError};
use crate::store::{BatchId, BatchStatus, NewBatch, Store, StoreError};
use crate::template::{PreparedDevice, Template, TemplateError};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most row errors listed before giving up on listing.
pub const MAX_LISTED_ERRORS: usize = 100;
/// Devices per chunk between workers and the writer.
const CHUNK: usize = 512;

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
    /// The input has no devices.
    #[error("the input has no devices")]
    Empty,
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
}

/// A row that broke a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// Data row (1 = first record after the header).
    pub row: u64,
    /// What broke.
    pub error: ValueError,
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
        write!(f, "{} row(s) refused, nothing was issued:", self.total)?;
        for e in self.errors {
            write!(f, "\n  row {}: {}", e.row, e.error)?;
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

/// A device issued by a worker, on its way to the writer.
pub struct IssuedDevice {
    /// Input row.
    pub row: u64,
    /// Random UUID.
    pub device_id: [u8; 16],
    /// Subject CN (or first subject value).
    pub common_name: String,
    /// Serial, big-endian positive magnitude.
    pub serial: Vec<u8>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// Certificate DER.
    pub certificate: Vec<u8>,
    /// The ZIP entry: PKCS#12 DER.
    pub file: Vec<u8>,
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
}

/// What a finished batch reports.
#[derive(Clone, Debug)]
pub struct BatchReport {
    /// Store id.
    pub batch_id: BatchId,
    /// Devices issued.
    pub devices: u64,
    /// Wall time of the issuing pass (after validation).
    pub elapsed: Duration,
    /// Wall time of the validation pass.
    pub validation: Duration,
    /// The ZIP.
    pub out: PathBuf,
}

impl BatchReport {
    /// Devices per second over the issuing pass.
    pub fn devices_per_second(&self) -> f64 {
        self.devices as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Issues one device from prepared values: key, serial, TBS, signature, PKCS#12.
fn issue_device(
    template: &Template,
    ca: &IssuingCa,
    row: u64,
    prepared: PreparedDevice,
    password: &Pkcs12Password,
    pkcs12_options: &Pkcs12Options,
) -> Result<IssuedDevice, BatchError> {
    let profile = template.profile();
    let key = keys::generate(profile.key_algorithm())
        .map_err(|source| BatchError::Key { row, source })?;
    let mut serial = vec![0u8; profile.serial_length];
    let mut device_id = [0u8; 16];
    keys::random_bytes(&mut serial).map_err(|source| BatchError::Key { row, source })?;
    keys::random_bytes(&mut device_id).map_err(|source| BatchError::Key { row, source })?;
    // Positive and of fixed length in DER: top bit clear, first byte non-zero
    // (8 * length - 1 bits of randomness, less a negligible bias on the first byte).
    serial[0] &= 0x7f;
    if serial[0] == 0 {
        serial[0] = 1;
    }
    let device_id = *uuid::Builder::from_random_bytes(device_id)
        .as_uuid()
        .as_bytes();
    let tbs = template.tbs_certificate(&prepared, &serial, key.spki_der(), key.public_key_bits());
    let signature = ca
        .sign(template.signature_algorithm(), &tbs)
        .map_err(|source| BatchError::Sign { row, source })?;
    let certificate = template.certificate(&tbs, &signature);
    let chain = ca.chain_der();
    let extra = match prepared.cert_bag {
        CertBag::Leaf => 0,
        CertBag::LeafIssuer => 1.min(chain.len()),
        CertBag::LeafIssuerRoot => chain.len(),
    };
    let mut certs: Vec<&[u8]> = Vec::with_capacity(1 + extra);
    certs.push(&certificate);
    certs.extend(chain[..extra].iter().map(Vec::as_slice));
    let file = pkcs12::build(
        key.pkcs8_der(),
        &certs,
        &prepared.common_name,
        password,
        pkcs12_options,
    )
    .map_err(|source| BatchError::Pkcs12 { row, source })?;
    Ok(IssuedDevice {
        row,
        device_id,
        common_name: prepared.common_name.clone(),
        serial,
        not_before: template.not_before().unix_timestamp(),
        not_after: prepared.not_after().unix_timestamp(),
        certificate,
        file,
    })
}

fn check_parameters(
    profile: &Profile,
    parameters: &BTreeMap<String, String>,
) -> Result<(), BatchError> {
    let known = profile.batch_parameter_names();
    for name in parameters.keys() {
        if !known.contains(name) {
            return Err(BatchError::UnknownParameter {
                name: name.clone(),
                profile: profile.name().to_owned(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

/// Step 2 for a CSV: reads the header and every record and resolves each device's values
/// against `template`. Returns the layout and the number of devices, or every refused row
/// (up to [`MAX_LISTED_ERRORS`] listed). Generates no key and writes nothing.
pub fn validate_csv(
    template: &Template,
    csv_path: &Path,
    parameters: &BTreeMap<String, String>,
) -> Result<(csv_input::CsvLayout, u64), BatchError> {
    let profile = template.profile();
    let (layout, mut reader) = csv_input::CsvLayout::open(csv_path, profile, parameters)?;
    let mut errors = Vec::new();
    let mut failed = 0u64;
    let mut total = 0u64;
    while let Some(record) = reader.next_record()? {
        total += 1;
        let row = layout.row(&record.fields);
        let inputs = Inputs {
            request: Some(&row),
            batch: parameters,
            profile: profile.values(),
            csr: None,
        };
        if let Err(error) = template.prepare(&inputs) {
            failed += 1;
            if errors.len() < MAX_LISTED_ERRORS {
                errors.push(RowError {
                    row: record.row,
                    error,
                });
            }
        }
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
    Ok((layout, total))
}

/// Issues a CSV batch with server-generated keys into a ZIP of PKCS#12 files.
pub fn issue_csv(
    data_dir: &Path,
    ca: &IssuingCa,
    profile: &Profile,
    csv_path: &Path,
    options: &BatchOptions,
) -> Result<BatchReport, BatchError> {
    check_parameters(profile, &options.parameters)?;
    if !profile.allows_server_keys() {
        return Err(BatchError::MissingInput(format!(
            "profile {:?} takes keys only from CSRs (no KeypairQueue.der_spki source): a CSV batch cannot generate keys for it",
            profile.name()
        )));
    }
    let password = options.password.as_ref().ok_or_else(|| {
        BatchError::MissingInput("a PKCS#12 password is required: --password-file, CERTMILL_PKCS12_PASSWORD or the prompt".into())
    })?;
    let template = Template::new(profile, ca, time::OffsetDateTime::now_utc())?;

    // 2. Validate every row before any key is generated.
    let started = Instant::now();
    let (layout, total) = validate_csv(&template, csv_path, &options.parameters)?;
    let validation = started.elapsed();

    // 3. Record the batch.
    let store = Store::open(data_dir)?;
    let issuer = store.register_issuer(ca.certificate_der(), &ca.describe())?;
    let parameters_json =
        serde_json::to_string(&options.parameters).unwrap_or_else(|_| "{}".into());
    let out_text = options.out.display().to_string();
    let batch = store.create_batch(&NewBatch {
        batch_name: &options.batch_name,
        profile_name: profile.name(),
        kind: "CSV",
        size: total,
        issuer,
        parameters_json: &parameters_json,
        output_path: &out_text,
    })?;

    let result = run_issuing(
        &template, ca, &layout, options, password, store, batch, total,
    );
    let store = Store::open(data_dir)?;
    match result {
        Ok(devices) => {
            // 6. Finished: the ZIP is in place.
            store.set_batch_status(batch, BatchStatus::ReadyForDownload, None)?;
            Ok(BatchReport {
                batch_id: batch,
                devices,
                elapsed: started.elapsed() - validation,
                validation,
                out: options.out.clone(),
            })
        }
        Err(e) => {
            store.set_batch_status(batch, BatchStatus::Broken, Some(&e.to_string()))?;
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_issuing(
    template: &Template,
    ca: &IssuingCa,
    layout: &csv_input::CsvLayout,
    options: &BatchOptions,
    password: &Pkcs12Password,
    store: Store,
    batch: BatchId,
    total: u64,
) -> Result<u64, BatchError> {
    let profile = template.profile();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.unwrap_or(0))
        .thread_name(|i| format!("certmill-worker-{i}"))
        .build()
        .map_err(|_| BatchError::Unreachable("cannot start the worker pool"))?;
    let writer = writer::BatchWriter::create(
        &options.out,
        &ca.chain_pem(),
        store,
        batch,
        template.not_before(),
        "p12",
    )?;
    let (sender, receiver) = crossbeam_channel::bounded::<Vec<IssuedDevice>>(2);
    let progress = Progress::new(options.progress, total);

    std::thread::scope(|scope| {
        // 5. The writer: one thread owns the ZIP and the store.
        let writer_thread = scope.spawn(move || -> Result<u64, BatchError> {
            let mut writer = writer;
            for chunk in receiver {
                writer.write_chunk(chunk)?;
            }
            Ok(writer.finish()?.0)
        });

        // 4. Read, prepare and issue chunk by chunk.
        let produce = || -> Result<(), BatchError> {
            let mut reader = layout.reopen()?;
            let profile_values = profile.values();
            loop {
                let mut chunk = Vec::with_capacity(CHUNK);
                while chunk.len() < CHUNK {
                    let Some(record) = reader.next_record()? else {
                        break;
                    };
                    let row = layout.row(&record.fields);
                    let inputs = Inputs {
                        request: Some(&row),
                        batch: &options.parameters,
                        profile: profile_values,
                        csr: None,
                    };
                    // Validated in step 2; a change between passes (the file edited meanwhile)
                    // is still caught here, with its row.
                    let prepared =
                        template
                            .prepare(&inputs)
                            .map_err(|error| BatchError::InvalidRows {
                                errors: vec![RowError {
                                    row: record.row,
                                    error,
                                }],
                                total: 1,
                            })?;
                    chunk.push((record.row, prepared));
                }
                if chunk.is_empty() {
                    return Ok(());
                }
                let count = chunk.len() as u64;
                let issued: Result<Vec<IssuedDevice>, BatchError> = pool.install(|| {
                    chunk
                        .into_par_iter()
                        .map(|(row, prepared)| {
                            issue_device(template, ca, row, prepared, password, &options.pkcs12)
                        })
                        .collect()
                });
                if sender.send(issued?).is_err() {
                    // The writer stopped: its error is reported below.
                    return Ok(());
                }
                progress.advance(count);
            }
        };
        let produced = produce();
        drop(sender);
        let written = writer_thread
            .join()
            .map_err(|_| BatchError::Unreachable("the writer thread panicked"))?;
        progress.finish();
        produced?;
        written
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
