//! Batches issued in chunks by several nodes that share one store and one object store
//! (`docs/SCALE-OUT.md`).
//!
//! The node that takes the order runs steps 2 and 3 as for one node (every row validated, the
//! batch recorded and its balance reserved), names every device's ZIP entry in row order, puts
//! the input in the object store and [plans](crate::store::Store::plan_chunks) the chunks.
//! Then every node's worker [claims](crate::store::Store::claim_chunk) chunks:
//! [`issue_chunk`] issues one chunk's rows into a *part* (stored ZIP local entries) and records
//! it; [`assemble`] builds the tail (the manifest, the central directory, the end records) once
//! every part is done, and ends the batch. The download stitches `chain.pem`, the parts and the
//! tail into one ZIP without copying them.
//!
//! The PKCS#12 password crosses to the other nodes sealed (AES-256-GCM, bound to the batch id)
//! under a key every node derives from the data directory secret they share; the sealed copy is
//! deleted when the batch ends.

use super::csv_input::{self, CsvChunkIndex};
use super::writer::{default_entry_name, record_of, spreadsheet_safe, EntryNamer, MANIFEST_HEADER};
use super::{
    hex, precheck, record_batch, reserve_chunk, rfc3339, validate_and_name, worker_pool,
    BatchError, BatchInput, BatchOptions, IssuedDevice, OpenInput, Outcome, Proof,
};
use crate::ca::IssuingCa;
use crate::csr::CsrBundle;
use crate::generator::{GeneratorKind, Sequence};
use crate::keys::KeypairQueue;
use crate::objects::zipparts::{self, Head, PartWriter, PieceObject, TailWriter};
use crate::objects::ObjectStore;
use crate::pkcs12::{Pkcs12Encryption, Pkcs12Options, Pkcs12Password};
use crate::profile::Profile;
use crate::store::{
    BatchId, BatchStatus, ChunkOutput, ChunkPlan, ClaimedChunk, DeviceFailure, Finished, PartEntry,
    Store,
};
use crate::template::Template;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Seek, Write};
use std::path::Path;
use zeroize::Zeroizing;

/// Devices per chunk unless the node is told otherwise: large enough that claiming and
/// recording cost nothing per device (docs/SCALE-OUT.md measures 0.1 µs), small enough that a
/// dead node's chunk is redone in seconds.
pub const DEFAULT_CHUNK_SIZE: u64 = 10_000;

/// Manifest rows read from the store at a time while a tail is built.
const MANIFEST_PAGE: usize = 10_000;

/// What any node needs to issue a chunk of a batch it did not validate, recorded as JSON when
/// the batch is planned. Never holds the password (that is sealed beside it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkSpec {
    /// The store's batch kind: CSV, CSR, GENERATOR or SINGLE.
    pub kind: String,
    /// The profile's name.
    pub profile: String,
    /// Batch parameters (without the password).
    pub parameters: BTreeMap<String, String>,
    /// A generator batch's generator.
    pub generator: Option<GeneratorSpec>,
    /// The input's object key (CSV and CSR batches).
    pub input_key: Option<String>,
    /// A CSV batch's chunk index ([`CsvChunkIndex`]): each chunk fetches the header and its
    /// own byte range of the input instead of the whole file. Absent, a chunk fetches the
    /// whole input and skips to its first row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_index_key: Option<String>,
    /// The store id of the issuer whose signer signs every chunk.
    pub issuer: i64,
    /// The template's time (unix seconds): every chunk gets the same notBefore and entry date.
    pub issued_at: i64,
    /// `p12` or `crt`.
    pub extension: String,
    /// PKCS#12 iteration count.
    pub iterations: u32,
    /// Whether the PKCS#12 files use the legacy 3DES / SHA-1 algorithms.
    pub legacy_pkcs12: bool,
    /// The signer's chain, the ZIP's `chain.pem`.
    pub chain_pem: String,
}

/// A generator batch's generator, as [`Sequence::new`] takes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GeneratorSpec {
    /// `generatorId`.
    pub id: String,
    /// Its own parameters as given.
    pub params: BTreeMap<String, String>,
    /// Devices.
    pub size: u64,
}

impl WorkSpec {
    fn modified(&self) -> Result<time::OffsetDateTime, BatchError> {
        time::OffsetDateTime::from_unix_timestamp(self.issued_at)
            .map_err(|_| BatchError::Cluster(format!("bad issue time {}", self.issued_at)))
    }

    fn extension(&self) -> &'static str {
        if self.extension == "crt" {
            "crt"
        } else {
            "p12"
        }
    }

    fn pkcs12(&self) -> Pkcs12Options {
        Pkcs12Options {
            encryption: if self.legacy_pkcs12 {
                Pkcs12Encryption::LegacyTripleDesSha1
            } else {
                Pkcs12Encryption::Aes256Pbes2
            },
            iterations: self.iterations,
        }
    }
}

/// Seals batch passwords for the other nodes: AES-256-GCM under a key derived from the data
/// directory secret the nodes share, with the batch id as associated data (a sealed password
/// opens only for its own batch).
pub struct Sealer {
    key: aws_lc_rs::aead::LessSafeKey,
}

const NONCE_LEN: usize = 12;

impl Sealer {
    /// The sealer of the nodes sharing `data_dir`'s secret.
    pub fn open(data_dir: &Path) -> Result<Sealer, BatchError> {
        let key = crate::auth::derived_key(data_dir, b"certmill batch password seal")
            .map_err(|e| BatchError::Cluster(format!("the cluster's sealing key: {e}")))?;
        Sealer::from_key(&key)
    }

    fn from_key(key: &[u8; 32]) -> Result<Sealer, BatchError> {
        use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| BatchError::Unreachable("an AES-256-GCM key of 32 bytes"))?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
        })
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, batch: BatchId, password: &Pkcs12Password) -> Result<Vec<u8>, BatchError> {
        use aws_lc_rs::aead::{Aad, Nonce};
        let mut nonce = [0u8; NONCE_LEN];
        crate::keys::random_bytes(&mut nonce)
            .map_err(|_| BatchError::Unreachable("the system random generator failed"))?;
        let mut sealed = Zeroizing::new(password.expose().as_bytes().to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(batch.0.to_be_bytes()),
                &mut *sealed,
            )
            .map_err(|_| BatchError::Unreachable("AES-GCM sealing"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Sealer::seal`] sealed for `batch`.
    pub fn open_sealed(&self, batch: BatchId, sealed: &[u8]) -> Result<Pkcs12Password, BatchError> {
        use aws_lc_rs::aead::{Aad, Nonce};
        let refused = || {
            BatchError::NotForThisNode(format!(
                "batch {batch}: the sealed PKCS#12 password does not open with this node's key \
                 (every node must share the data directory secret auth/jwt-secret)"
            ))
        };
        if sealed.len() < NONCE_LEN {
            return Err(refused());
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).map_err(|_| refused())?;
        let mut buffer = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(batch.0.to_be_bytes()), &mut buffer)
            .map_err(|_| refused())?;
        let text = std::str::from_utf8(plain)
            .map_err(|_| refused())?
            .to_owned();
        Pkcs12Password::new(text).map_err(|_| refused())
    }
}

/// What a node brings to chunked batches.
pub struct Node<'a> {
    /// The node's data directory (its store handle, temporary files).
    pub data_dir: &'a Path,
    /// Where parts, tails and inputs go.
    pub objects: &'a ObjectStore,
    /// Seals and opens batch passwords.
    pub sealer: &'a Sealer,
    /// Devices per chunk (when ordering).
    pub chunk_size: u64,
}

fn object_error(key: &str) -> impl Fn(crate::objects::ObjectError) -> BatchError + '_ {
    move |e| BatchError::Cluster(format!("object {key}: {e}"))
}

fn io_error(what: &str) -> impl Fn(std::io::Error) -> BatchError + '_ {
    move |source| BatchError::Io {
        path: what.to_owned(),
        source,
    }
}

/// The object key of a batch's input.
fn input_key(batch: BatchId) -> String {
    format!("batches/{batch}/input")
}

/// The object key of a CSV batch's chunk index.
fn csv_index_key(batch: BatchId) -> String {
    format!("batches/{batch}/input-index.json")
}

/// Steps 2 and 3 of a chunked batch on the node that takes the order: validates and names every
/// device, records the batch (reserving its balance), puts the input in the object store and
/// plans the chunks. Returns the batch; the nodes' workers issue it. Anything that fails after
/// the batch is recorded abandons it (Broken, balance given back).
pub fn order(
    node: &Node<'_>,
    ca: &IssuingCa,
    profile: &Profile,
    input: &BatchInput<'_>,
    options: &BatchOptions,
) -> Result<BatchId, BatchError> {
    let password = precheck(profile, input, options)?;
    let issued_at = time::OffsetDateTime::now_utc();
    let template = Template::new(profile, ca, issued_at)?;
    let pool = worker_pool(options.threads)?;
    let extension = if input.has_csr() { "crt" } else { "p12" };
    let open = OpenInput::open(input, profile, &options.parameters, &options.limits)?;
    let mut namer = EntryNamer::new(extension);
    let mut renamed = Vec::new();
    let (total, _) = validate_and_name(&template, &open, &pool, Some((&mut namer, &mut renamed)))?;
    drop(namer);

    let store = Store::open(node.data_dir)?;
    let (issuer, batch) = record_batch(&store, ca, profile, input, options, total)?;
    let planned = (|| -> Result<(), BatchError> {
        let source = match input {
            BatchInput::Csv(path) => Some(*path),
            BatchInput::Csr(bundle) => Some(bundle.path()),
            BatchInput::Generator(_) | BatchInput::Single => None,
        };
        let key = input_key(batch);
        if let Some(path) = source {
            node.objects
                .blocking()
                .put_file(&key, path)
                .map_err(object_error(&key))?;
        }
        let csv_index = match input {
            BatchInput::Csv(path) => {
                let index = csv_input::chunk_index(path, &options.limits, node.chunk_size)?;
                let json = serde_json::to_vec(&index)
                    .map_err(|_| BatchError::Unreachable("a chunk index serializes"))?;
                let index_key = csv_index_key(batch);
                node.objects
                    .blocking()
                    .put_bytes(&index_key, json)
                    .map_err(object_error(&index_key))?;
                Some(index_key)
            }
            _ => None,
        };
        let generator = match input {
            BatchInput::Generator(sequence) => {
                let mut params = sequence.recorded_parameters();
                let id = params.remove("generatorId").unwrap_or_default();
                Some(GeneratorSpec {
                    id,
                    params,
                    size: sequence.len(),
                })
            }
            _ => None,
        };
        let spec = WorkSpec {
            kind: input.kind().to_owned(),
            profile: profile.name().to_owned(),
            parameters: options.parameters.clone(),
            generator,
            input_key: source.map(|_| key),
            csv_index_key: csv_index,
            issuer: issuer.0,
            issued_at: issued_at.unix_timestamp(),
            extension: extension.to_owned(),
            iterations: options.pkcs12.iterations,
            legacy_pkcs12: options.pkcs12.encryption == Pkcs12Encryption::LegacyTripleDesSha1,
            chain_pem: ca.chain_pem(),
        };
        let spec_json = serde_json::to_string(&spec)
            .map_err(|_| BatchError::Unreachable("a work description serializes"))?;
        let sealed = password
            .map(|password| node.sealer.seal(batch, password))
            .transpose()?;
        let plans = plan(total, node.chunk_size.max(1), renamed);
        store.plan_chunks(batch, &spec_json, sealed.as_deref(), &plans)?;
        Ok(())
    })();
    if let Err(e) = planned {
        store.abandon_batch(batch, &e.to_string())?;
        let _ = node.objects.blocking().delete(&input_key(batch));
        let _ = node.objects.blocking().delete(&csv_index_key(batch));
        return Err(e);
    }
    if let Some(created) = &options.on_created {
        let _ = created.send(batch);
    }
    Ok(batch)
}

/// Cuts `total` rows into chunks of `size`, each with its renamed rows.
fn plan(total: u64, size: u64, renamed: Vec<(u64, String)>) -> Vec<ChunkPlan> {
    let mut plans: Vec<ChunkPlan> = (0..total.div_ceil(size))
        .map(|i| ChunkPlan {
            first_row: i * size + 1,
            rows: size.min(total - i * size),
            names: Vec::new(),
        })
        .collect();
    for (row, name) in renamed {
        if let Some(plan) = plans.get_mut(((row - 1) / size) as usize) {
            plan.names.push((row, name));
        }
    }
    plans
}

/// The input of a chunk: the batch's input fetched from the object store into a temporary
/// file (CSV, CSR), or rebuilt from the work description (generator, single).
struct ChunkInput {
    _file: Option<tempfile::NamedTempFile>,
    bundle: Option<CsrBundle>,
    sequence: Option<Sequence>,
    csv: Option<std::path::PathBuf>,
    /// The rows before the chunk, when `csv` holds only the header and the chunk's rows.
    csv_row_base: Option<u64>,
}

impl ChunkInput {
    fn fetch(
        node: &Node<'_>,
        spec: &WorkSpec,
        limits: &super::InputLimits,
        chunk: u64,
    ) -> Result<ChunkInput, BatchError> {
        let mut input = ChunkInput {
            _file: None,
            bundle: None,
            sequence: None,
            csv: None,
            csv_row_base: None,
        };
        if let Some(key) = &spec.input_key {
            let temp_dir = node.data_dir.join("tmp");
            std::fs::create_dir_all(&temp_dir).map_err(io_error("the data directory's tmp"))?;
            let mut file = tempfile::Builder::new()
                .prefix("chunk-input-")
                .tempfile_in(&temp_dir)
                .map_err(io_error("a chunk's input"))?;
            let objects = node.objects.blocking();
            // A CSV chunk reads the header and its own rows; anything else the whole input.
            let index = match &spec.csv_index_key {
                Some(index_key) => {
                    let size = objects.size(index_key).map_err(object_error(index_key))?;
                    let json = objects
                        .read_range(index_key, 0..size)
                        .map_err(object_error(index_key))?;
                    let index: CsvChunkIndex = serde_json::from_slice(&json).map_err(|e| {
                        BatchError::Cluster(format!("unreadable CSV chunk index {index_key}: {e}"))
                    })?;
                    let (range, row) = usize::try_from(chunk)
                        .ok()
                        .and_then(|idx| index.chunk(idx))
                        .ok_or_else(|| {
                            BatchError::Cluster(format!(
                                "the CSV chunk index {index_key} has no chunk {chunk}"
                            ))
                        })?;
                    Some((index.header_end, range, row))
                }
                None => None,
            };
            {
                let mut writer = BufWriter::new(file.as_file_mut());
                match &index {
                    Some((header_end, range, row)) => {
                        objects
                            .read_range_to(key, 0..*header_end, &mut writer)
                            .map_err(object_error(key))?;
                        objects
                            .read_range_to(key, range.clone(), &mut writer)
                            .map_err(object_error(key))?;
                        input.csv_row_base = Some(*row);
                    }
                    None => {
                        let size = objects.size(key).map_err(object_error(key))?;
                        objects
                            .read_range_to(key, 0..size, &mut writer)
                            .map_err(object_error(key))?;
                    }
                }
                writer.flush().map_err(io_error("a chunk's input"))?;
            }
            let path = file.path().to_owned();
            match spec.kind.as_str() {
                "CSV" => input.csv = Some(path),
                "CSR" => {
                    input.bundle = Some(CsrBundle::open(&path, &limits.csr).map_err(|source| {
                        BatchError::Csr {
                            entry: None,
                            source,
                        }
                    })?)
                }
                other => {
                    return Err(BatchError::Cluster(format!(
                        "a {other} batch with an input object"
                    )))
                }
            }
            input._file = Some(file);
        }
        if let Some(generator) = &spec.generator {
            let kind = GeneratorKind::find(&generator.id)?;
            input.sequence = Some(Sequence::new(kind, &generator.params, generator.size)?);
        }
        Ok(input)
    }

    fn batch_input(&self, spec: &WorkSpec) -> Result<BatchInput<'_>, BatchError> {
        Ok(
            match (spec.kind.as_str(), &self.csv, &self.bundle, &self.sequence) {
                ("CSV", Some(path), _, _) => BatchInput::Csv(path),
                ("CSR", _, Some(bundle), _) => BatchInput::Csr(bundle),
                ("GENERATOR", _, _, Some(sequence)) => BatchInput::Generator(sequence),
                ("SINGLE", _, _, _) => BatchInput::Single,
                (kind, ..) => {
                    return Err(BatchError::Cluster(format!(
                        "a {kind} batch without its input"
                    )))
                }
            },
        )
    }
}

/// The signing side a node brings to a chunk.
pub struct ChunkTools<'a> {
    /// The batch's signer.
    pub ca: &'a IssuingCa,
    /// The batch's profile.
    pub profile: &'a Profile,
    /// The node's workers.
    pub pool: &'a rayon::ThreadPool,
    /// Pre-generated keys, if the node keeps some.
    pub keypairs: Option<&'a KeypairQueue>,
    /// Input bounds.
    pub limits: &'a super::InputLimits,
}

/// Parses a claimed chunk's work description.
pub fn work_spec(claimed: &ClaimedChunk) -> Result<WorkSpec, BatchError> {
    serde_json::from_str(&claimed.spec_json).map_err(|e| {
        BatchError::Cluster(format!(
            "batch {}: unreadable work description: {e}",
            claimed.lease.batch
        ))
    })
}

/// Issues one PART chunk: its rows' keys, certificates and files, written as a part object,
/// then recorded with [`Store::finish_chunk`]. `stop` says when the node lost its lease or
/// shuts down: the work ends at the next sub-chunk. Returns [`Finished::Lost`] when the chunk was taken
/// over meanwhile (its part is deleted again).
pub fn issue_chunk(
    node: &Node<'_>,
    tools: &ChunkTools<'_>,
    claimed: &ClaimedChunk,
    stop: &dyn Fn() -> bool,
) -> Result<Finished, BatchError> {
    let spec = work_spec(claimed)?;
    let batch = claimed.lease.batch;
    let password = claimed
        .sealed_password
        .as_deref()
        .map(|sealed| node.sealer.open_sealed(batch, sealed))
        .transpose()?;
    let template = Template::new(tools.profile, tools.ca, spec.modified()?)?;
    let fetched = ChunkInput::fetch(node, &spec, tools.limits, claimed.lease.idx)?;
    let input = fetched.batch_input(&spec)?;
    let open = OpenInput::open(&input, tools.profile, &spec.parameters, tools.limits)?;
    // A chunk's own CSV rows start at its first row; any other input is skipped to it.
    let (open, first) = match fetched.csv_row_base {
        Some(row) => (open.continuing_from_row(row), 0),
        None => (open, claimed.first_row.saturating_sub(1)),
    };
    let pkcs12 = spec.pkcs12();
    let extension = spec.extension();
    let names: HashMap<u64, String> = claimed.names.iter().cloned().collect();
    let store = Store::open(node.data_dir)?;
    let issuer = crate::store::IssuerId(spec.issuer);
    let serial_length = tools.profile.serial_length;

    let temp_dir = node.data_dir.join("tmp");
    std::fs::create_dir_all(&temp_dir).map_err(io_error("the data directory's tmp"))?;
    let part_file = tempfile::Builder::new()
        .prefix("chunk-part-")
        .tempfile_in(&temp_dir)
        .map_err(io_error("a chunk's part"))?;
    let mut part = PartWriter::new(
        BufWriter::with_capacity(1 << 20, part_file.as_file()),
        spec.modified()?,
    );
    let mut records = Vec::new();
    let mut entries = Vec::new();
    let mut failures = Vec::new();
    let first =
        usize::try_from(first).map_err(|_| BatchError::Unreachable("a row index fits usize"))?;
    let rows = usize::try_from(claimed.rows)
        .map_err(|_| BatchError::Unreachable("a chunk size fits usize"))?;
    let mut jobs = open.jobs()?.skip(first).take(rows);
    loop {
        if stop() {
            return Ok(Finished::Lost);
        }
        let chunk = super::next_chunk(&mut jobs)?;
        if chunk.is_empty() {
            break;
        }
        let reserved = reserve_chunk(&store, batch, issuer, &chunk, serial_length)?;
        let outcomes: Vec<Outcome> = tools.pool.install(|| {
            chunk
                .into_par_iter()
                .zip(reserved)
                .with_max_len(1)
                .map(|(job, reserved)| {
                    super::issue_job(
                        &super::DeviceTools {
                            template: &template,
                            ca: tools.ca,
                            input: &open,
                            password: password.as_ref(),
                            pkcs12: &pkcs12,
                            keypairs: tools.keypairs,
                        },
                        job,
                        reserved,
                        Proof::Verify,
                    )
                })
                .collect()
        });
        for outcome in outcomes {
            match outcome {
                Outcome::Issued(device) => {
                    let name = names
                        .get(&device.row)
                        .cloned()
                        .unwrap_or_else(|| default_entry_name(&device.file_stem, extension));
                    let entry = part
                        .add_file_entry(&name, &device.file)
                        .map_err(|e| BatchError::Zip(e.to_string()))?;
                    entries.push(part_entry(&device, &entry));
                    records.push(record_of(device, name));
                }
                Outcome::Failed(failed) => failures.push(DeviceFailure {
                    row: failed.row,
                    device_id: failed.device_id,
                    reason: format!("{}: {}", failed.location, failed.reason),
                }),
            }
        }
    }
    let (writer, part_size) = part.finish().map_err(|e| BatchError::Zip(e.to_string()))?;
    writer
        .into_inner()
        .map_err(|e| BatchError::Io {
            path: "a chunk's part".into(),
            source: e.into_error(),
        })?
        .sync_data()
        .map_err(io_error("a chunk's part"))?;
    let lease = &claimed.lease;
    let key = format!("batches/{}/part-{:06}-{}", batch, lease.idx, lease.attempt);
    let objects = node.objects.blocking();
    objects
        .put_file(&key, part_file.path())
        .map_err(object_error(&key))?;
    let finished = store.finish_chunk(
        lease,
        &ChunkOutput {
            part_key: &key,
            part_size,
            records: &records,
            entries: &entries,
            failures: &failures,
        },
    );
    match finished {
        Ok(Finished::Done) => Ok(Finished::Done),
        Ok(Finished::Lost) => {
            let _ = objects.delete(&key);
            Ok(Finished::Lost)
        }
        Err(e) => {
            let _ = objects.delete(&key);
            Err(e.into())
        }
    }
}

fn part_entry(device: &IssuedDevice, entry: &zipparts::PartEntry) -> PartEntry {
    PartEntry {
        row: device.row,
        offset: entry.offset,
        size: entry.size,
        crc32: entry.crc32,
        sha256: entry.sha256,
    }
}

/// The head of a chunked batch's ZIP: `chain.pem`, rebuilt from the work description (the same
/// bytes on every node).
pub fn head(spec: &WorkSpec) -> Result<Head, BatchError> {
    Head::new(
        &[("chain.pem", spec.chain_pem.as_bytes())],
        spec.modified()?,
    )
    .map_err(|e| BatchError::Zip(e.to_string()))
}

/// The whole ZIP of an assembled chunked batch: its head, parts and tail, laid out for reads
/// of any range.
pub fn stitched(layout: &crate::store::ChunkedLayout) -> Result<zipparts::Stitched, BatchError> {
    let spec: WorkSpec = serde_json::from_str(&layout.spec_json)
        .map_err(|e| BatchError::Cluster(format!("unreadable work description: {e}")))?;
    let parts = layout
        .parts
        .iter()
        .map(|part| PieceObject {
            key: part.key.clone(),
            len: part.size,
        })
        .collect();
    let tail = PieceObject {
        key: layout.tail.0.clone(),
        len: layout.tail.1,
    };
    Ok(zipparts::Stitched::new(&head(&spec)?, parts, tail))
}

/// The ZIP comment of a chunked batch.
fn zip_comment(batch: BatchId) -> String {
    format!("certmill batch {batch}")
}

/// Assembles a batch whose parts are all done: writes the manifest and the tail (manifest
/// entry, central directory, end records) as one object, ends the batch (Ready For Download,
/// Batch Issued Partly or Broken) with [`Store::finish_assembly`], and deletes the objects no
/// part refers to (the input, parts of attempts that lost their lease).
pub fn assemble(node: &Node<'_>, claimed: &ClaimedChunk) -> Result<Finished, BatchError> {
    let spec = work_spec(claimed)?;
    let batch = claimed.lease.batch;
    let store = Store::open(node.data_dir)?;
    let head = head(&spec)?;
    let parts = store.done_parts(batch)?;
    let position: HashMap<u64, usize> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| (part.idx, i))
        .collect();
    let pieces: Vec<PieceObject> = parts
        .iter()
        .map(|part| PieceObject {
            key: part.key.clone(),
            len: part.size,
        })
        .collect();
    let temp_dir = node.data_dir.join("tmp");
    std::fs::create_dir_all(&temp_dir).map_err(io_error("the data directory's tmp"))?;

    // The manifest, a page of rows at a time.
    let mut manifest_file = tempfile::tempfile_in(&temp_dir).map_err(io_error("a manifest"))?;
    let (mut issued, mut failed) = (0u64, 0u64);
    {
        let mut manifest = csv::Writer::from_writer(BufWriter::new(&mut manifest_file));
        let csv_error = |e: csv::Error| BatchError::Io {
            path: "manifest.csv".into(),
            source: e.into(),
        };
        manifest.write_record(MANIFEST_HEADER).map_err(csv_error)?;
        let mut after = 0;
        loop {
            let page = store.manifest_rows(batch, after, MANIFEST_PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.row;
            for row in &page {
                let device_id = uuid::Uuid::from_bytes(row.device_id)
                    .hyphenated()
                    .to_string();
                let fields: [String; 10] = match &row.issued {
                    Some(entry) => {
                        issued += 1;
                        [
                            row.row.to_string(),
                            device_id,
                            entry.common_name.clone(),
                            hex(&entry.serial),
                            rfc3339(entry.not_before),
                            rfc3339(entry.not_after),
                            entry.file_name.clone(),
                            hex(&entry.entry.sha256),
                            "ISSUED".into(),
                            String::new(),
                        ]
                    }
                    None => {
                        failed += 1;
                        [
                            row.row.to_string(),
                            device_id,
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                            "FAILED".into(),
                            row.reason.clone().unwrap_or_default(),
                        ]
                    }
                };
                manifest
                    .write_record(fields.iter().map(|f| spreadsheet_safe(f)))
                    .map_err(csv_error)?;
            }
        }
        manifest.flush().map_err(io_error("manifest.csv"))?;
    }
    let manifest_len = manifest_file
        .stream_position()
        .map_err(io_error("manifest.csv"))?;
    manifest_file.rewind().map_err(io_error("manifest.csv"))?;

    // The tail: the manifest entry, then the central directory in archive order.
    let tail_file = tempfile::NamedTempFile::new_in(&temp_dir).map_err(io_error("a tail"))?;
    let zip = |e: zipparts::ZipPartsError| BatchError::Zip(e.to_string());
    let mut tail = TailWriter::new(
        BufWriter::new(tail_file.as_file()),
        &head,
        &pieces,
        "manifest.csv",
        &mut std::io::BufReader::new(&manifest_file),
        manifest_len,
        spec.modified()?,
    )
    .map_err(zip)?;
    let mut after = 0;
    loop {
        let page = store.manifest_rows(batch, after, MANIFEST_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.row;
        for row in &page {
            let Some(entry) = &row.issued else { continue };
            let part = *position.get(&row.chunk).ok_or_else(|| {
                BatchError::Cluster(format!(
                    "batch {batch}: row {} of a chunk not done",
                    row.row
                ))
            })?;
            tail.entry(
                part,
                &zipparts::PartEntry {
                    name: entry.file_name.clone(),
                    offset: entry.entry.offset,
                    size: entry.entry.size,
                    crc32: entry.entry.crc32,
                    sha256: entry.entry.sha256,
                },
            )
            .map_err(zip)?;
        }
    }
    let (writer, summary) = tail.finish(zip_comment(batch).as_bytes()).map_err(zip)?;
    writer
        .into_inner()
        .map_err(|e| BatchError::Io {
            path: "a tail".into(),
            source: e.into_error(),
        })?
        .sync_data()
        .map_err(io_error("a tail"))?;
    let key = format!("batches/{batch}/tail-{}", claimed.lease.attempt);
    let objects = node.objects.blocking();
    objects
        .put_file(&key, tail_file.path())
        .map_err(object_error(&key))?;
    let status = if failed == 0 {
        BatchStatus::ReadyForDownload
    } else if issued > 0 {
        BatchStatus::BatchIssuedPartly
    } else {
        BatchStatus::Broken
    };
    match store.finish_assembly(&claimed.lease, (&key, summary.len), status)? {
        Finished::Lost => {
            let _ = objects.delete(&key);
            Ok(Finished::Lost)
        }
        Finished::Done => {
            // What no download reads: the input, and parts or tails of attempts that lost.
            let keep: std::collections::HashSet<&str> = parts
                .iter()
                .map(|p| p.key.as_str())
                .chain([key.as_str()])
                .collect();
            if let Ok(all) = objects.list(&format!("batches/{batch}/")) {
                for stale in all.iter().filter(|k| !keep.contains(k.as_str())) {
                    let _ = objects.delete(stale);
                }
            }
            Ok(Finished::Done)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_password_opens_only_for_its_batch_and_key() {
        let sealer = Sealer::from_key(&[7u8; 32]).unwrap();
        let password = Pkcs12Password::new("line 3 secret".into()).unwrap();
        let sealed = sealer.seal(BatchId(12), &password).unwrap();
        assert!(!sealed
            .windows(b"line 3 secret".len())
            .any(|w| w == b"line 3 secret"));
        assert_eq!(
            sealer.open_sealed(BatchId(12), &sealed).unwrap().expose(),
            "line 3 secret"
        );
        assert!(sealer.open_sealed(BatchId(13), &sealed).is_err());
        let other = Sealer::from_key(&[8u8; 32]).unwrap();
        assert!(other.open_sealed(BatchId(12), &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(sealer.open_sealed(BatchId(12), &flipped).is_err());
        assert!(sealer.open_sealed(BatchId(12), &sealed[..5]).is_err());
        // Two seals of the same password differ (fresh nonce).
        assert_ne!(sealer.seal(BatchId(12), &password).unwrap(), sealed);
    }

    #[test]
    fn plans_cover_every_row_and_carry_their_renamed_rows() {
        let plans = plan(25, 10, vec![(3, "a-3.p12".into()), (21, "b-21.p12".into())]);
        assert_eq!(
            plans
                .iter()
                .map(|p| (p.first_row, p.rows, p.names.len()))
                .collect::<Vec<_>>(),
            [(1, 10, 1), (11, 10, 0), (21, 5, 1)]
        );
        assert_eq!(plans[2].names, [(21, "b-21.p12".to_owned())]);
        assert_eq!(plan(10, 10, vec![]).len(), 1);
    }
}
