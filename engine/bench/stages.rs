//! Time per stage, measured in-process on a sample of devices by calling each stage's engine
//! function on its own, one after another on one thread: key generation, CSR parse + verify,
//! template fill, signing, PKCS#12, ZIP entry write and the store's records. The hot pipeline
//! is not instrumented, so these figures are per device on one core and do not add up exactly
//! to the batch's wall time (which overlaps the stages on every worker).

use super::BenchError;
use crate::batch::zipstream::ZipStream;
use crate::ca::IssuingCa;
use crate::csr::ParsedCsr;
use crate::keys::{self, GeneratedKey};
use crate::pkcs12::{self, Pkcs12Options, Pkcs12Password};
use crate::profile::{Inputs, Lookup};
use crate::store::{CertificateRecord, NewBatch, Store};
use crate::template::Template;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

/// How the stage figures were obtained, printed next to them.
pub const METHOD: &str = "in-process sample: each stage's engine function timed on its own over the sample, one thread; not instrumented from the batch pipeline";

/// Devices in the store stage's transactions (the pipeline's chunk).
const STORE_CHUNK: usize = 512;

/// Microseconds per device of each stage, on one core.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageTimes {
    /// How they were measured.
    pub method: &'static str,
    /// Devices in the sample.
    pub sample: usize,
    /// Keys generated for the sample (fewer than the sample for RSA, reused cyclically).
    pub keys_generated: usize,
    /// Key generation (server-generated keys only).
    pub key_generation_us: Option<f64>,
    /// CSR parse and signature verification (CSR batches only).
    pub csr_parse_verify_us: Option<f64>,
    /// Template prepare and TBS fill.
    pub template_fill_us: f64,
    /// The CA's signature.
    pub sign_us: f64,
    /// PKCS#12 build (server-generated keys only).
    pub pkcs12_us: Option<f64>,
    /// ZIP entry write (stored entry, CRC-32, central directory spool), finish amortised.
    pub zip_write_us: f64,
    /// Serial reservation and certificate records, in transactions of 512 devices.
    pub store_us: f64,
}

impl StageTimes {
    /// Each stage's mean over this sample and `other` (a sample of the same kind and size,
    /// taken at another moment).
    pub fn mean(&self, other: &StageTimes) -> StageTimes {
        let mean = |a: f64, b: f64| (a + b) / 2.0;
        let mean_of = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(mean(a, b)),
            (a, b) => a.or(b),
        };
        StageTimes {
            method: self.method,
            sample: self.sample,
            keys_generated: self.keys_generated,
            key_generation_us: mean_of(self.key_generation_us, other.key_generation_us),
            csr_parse_verify_us: mean_of(self.csr_parse_verify_us, other.csr_parse_verify_us),
            template_fill_us: mean(self.template_fill_us, other.template_fill_us),
            sign_us: mean(self.sign_us, other.sign_us),
            pkcs12_us: mean_of(self.pkcs12_us, other.pkcs12_us),
            zip_write_us: mean(self.zip_write_us, other.zip_write_us),
            store_us: mean(self.store_us, other.store_us),
        }
    }

    /// Sum of the stages: one device on one core, without the pipeline's overlap.
    pub fn total_us(&self) -> f64 {
        self.key_generation_us.unwrap_or(0.0)
            + self.csr_parse_verify_us.unwrap_or(0.0)
            + self.template_fill_us
            + self.sign_us
            + self.pkcs12_us.unwrap_or(0.0)
            + self.zip_write_us
            + self.store_us
    }
}

/// What the sample runs on.
pub(crate) struct Sample<'a> {
    pub(crate) template: &'a Template,
    pub(crate) ca: &'a IssuingCa,
    pub(crate) parameters: &'a BTreeMap<String, String>,
    /// Request values per device (CSV or generator), or empty for a CSR batch.
    pub(crate) values: &'a [BTreeMap<String, String>],
    /// CSR DER per device (CSR batches).
    pub(crate) csrs: &'a [Vec<u8>],
    /// Keys to generate (a small number for RSA).
    pub(crate) keys: usize,
    pub(crate) password: &'a Pkcs12Password,
    /// A scratch directory (ZIP and a store of its own).
    pub(crate) dir: &'a Path,
}

fn micros_per(started: Instant, count: usize) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / count.max(1) as f64
}

/// Runs every stage over the sample.
pub(crate) fn measure(s: &Sample<'_>) -> Result<StageTimes, BenchError> {
    let profile = s.template.profile();
    let from_csrs = !s.csrs.is_empty();
    let count = if from_csrs {
        s.csrs.len()
    } else {
        s.values.len()
    };
    if count == 0 {
        return Err(BenchError::Unreachable("an empty stage sample"));
    }
    let mut times = StageTimes {
        method: METHOD,
        sample: count,
        ..StageTimes::default()
    };

    let mut parsed: Vec<ParsedCsr> = Vec::new();
    let mut generated: Vec<GeneratedKey> = Vec::new();
    if from_csrs {
        let started = Instant::now();
        for der in s.csrs {
            parsed.push(ParsedCsr::from_der(der).map_err(|source| BenchError::Csr { source })?);
        }
        times.csr_parse_verify_us = Some(micros_per(started, count));
    } else {
        let keys = s.keys.clamp(1, count);
        let started = Instant::now();
        for _ in 0..keys {
            generated.push(
                keys::generate(profile.key_algorithm())
                    .map_err(|source| BenchError::Key { source })?,
            );
        }
        times.key_generation_us = Some(micros_per(started, keys));
        times.keys_generated = keys;
    }

    let serials: Vec<[u8; 16]> = (0..count)
        .map(|i| {
            let mut serial = [0u8; 16];
            keys::random_bytes(&mut serial).map_err(|source| BenchError::Key { source })?;
            serial[0] = (serial[0] & 0x7f) | 0x01;
            // Unique within the sample even if the CSPRNG repeated itself.
            serial[12..].copy_from_slice(&(i as u32).to_be_bytes());
            Ok(serial)
        })
        .collect::<Result<_, BenchError>>()?;

    let started = Instant::now();
    let mut tbs_list = Vec::with_capacity(count);
    for i in 0..count {
        let (request, csr): (Option<&dyn Lookup>, Option<&dyn Lookup>) = if from_csrs {
            (None, Some(&parsed[i]))
        } else {
            (Some(&s.values[i]), None)
        };
        let inputs = Inputs {
            request,
            batch: s.parameters,
            profile: profile.values(),
            csr,
        };
        let prepared = s
            .template
            .prepare(&inputs)
            .map_err(|source| BenchError::Value {
                device: i,
                message: source.to_string(),
            })?;
        let (spki, bits) = if from_csrs {
            (parsed[i].spki_der(), parsed[i].public_key_bits())
        } else {
            let key = &generated[i % generated.len()];
            (key.spki_der(), key.public_key_bits())
        };
        tbs_list.push((
            s.template
                .tbs_certificate(&prepared, &serials[i], spki, bits),
            prepared.common_name.clone().unwrap_or_default(),
            prepared.not_after().unix_timestamp(),
        ));
    }
    times.template_fill_us = micros_per(started, count);

    let started = Instant::now();
    let mut certificates = Vec::with_capacity(count);
    for (tbs, _, _) in &tbs_list {
        let signature =
            s.ca.sign(s.template.signature_algorithm(), tbs)
                .map_err(|source| BenchError::Sign { source })?;
        certificates.push(s.template.certificate(tbs, &signature));
    }
    times.sign_us = micros_per(started, count);

    let files: Vec<Vec<u8>> = if from_csrs {
        certificates.clone()
    } else {
        let started = Instant::now();
        let mut files = Vec::with_capacity(count);
        for (i, certificate) in certificates.iter().enumerate() {
            let mut chain: Vec<&[u8]> = vec![certificate];
            chain.extend(s.ca.chain_der().iter().map(Vec::as_slice));
            files.push(
                pkcs12::build(
                    generated[i % generated.len()].pkcs8_der(),
                    &chain,
                    &tbs_list[i].1,
                    s.password,
                    &Pkcs12Options::default(),
                )
                .map_err(|source| BenchError::Pkcs12 { source })?,
            );
        }
        times.pkcs12_us = Some(micros_per(started, count));
        files
    };

    let zip_path = s.dir.join("stage-sample.zip");
    let started = Instant::now();
    let mut zip = ZipEntryWriter::create(&zip_path, s.dir)?;
    for (i, file) in files.iter().enumerate() {
        zip.add(&format!("device-{i}.p12"), file)?;
    }
    zip.finish()?;
    times.zip_write_us = micros_per(started, count);
    std::fs::remove_file(&zip_path).map_err(|source| BenchError::Io {
        path: zip_path.display().to_string(),
        source,
    })?;

    let store_dir = s.dir.join("stage-store");
    std::fs::create_dir_all(&store_dir).map_err(|source| BenchError::Io {
        path: store_dir.display().to_string(),
        source,
    })?;
    let mut store = Store::open(&store_dir)?;
    let issuer = store.register_issuer(s.ca.certificate_der(), &s.ca.describe())?;
    let batch = store.create_batch(&NewBatch {
        batch_name: "stage sample",
        profile_name: profile.name(),
        kind: if from_csrs { "CSR" } else { "CSV" },
        size: count as u64,
        issuer,
        parameters_json: "{}",
        output_path: "",
    })?;
    let records: Vec<CertificateRecord> = (0..count)
        .map(|i| {
            let mut device_id = [0u8; 16];
            device_id[8..].copy_from_slice(&(i as u64).to_be_bytes());
            CertificateRecord {
                device_id,
                row: i as u64 + 1,
                common_name: tbs_list[i].1.clone(),
                serial: serials[i].to_vec(),
                not_before: s.template.not_before().unix_timestamp(),
                not_after: tbs_list[i].2,
                der: certificates[i].clone(),
                file_name: format!("device-{i}.p12"),
            }
        })
        .collect();
    let started = Instant::now();
    for chunk in records.chunks(STORE_CHUNK) {
        let reserved: Vec<(u64, &[u8])> =
            chunk.iter().map(|r| (r.row, r.serial.as_slice())).collect();
        store.reserve_serials(batch, issuer, &reserved)?;
        store.insert_certificates(batch, chunk)?;
    }
    times.store_us = micros_per(started, count);
    Ok(times)
}

/// The batch writer's ZIP stream (stored entries, central directory spooled to a temporary
/// file) on a file of its own: what the ZIP stage costs, for this harness and the criterion
/// benches.
pub struct ZipEntryWriter {
    path: String,
    zip: ZipStream<BufWriter<File>>,
}

impl ZipEntryWriter {
    /// Creates `path`, spooling the central directory in `spool_dir`.
    pub fn create(path: &Path, spool_dir: &Path) -> Result<ZipEntryWriter, BenchError> {
        let shown = path.display().to_string();
        let io = |source| BenchError::Io {
            path: shown.clone(),
            source,
        };
        let file = File::create(path).map_err(io)?;
        let zip = ZipStream::new(
            BufWriter::with_capacity(1 << 16, file),
            spool_dir,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(io)?;
        Ok(ZipEntryWriter { path: shown, zip })
    }

    /// Appends one stored entry.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<(), BenchError> {
        self.zip.add(name, data).map_err(|source| BenchError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes the central directory and flushes the file.
    pub fn finish(self) -> Result<(), BenchError> {
        let path = self.path;
        let io = |source| BenchError::Io {
            path: path.clone(),
            source,
        };
        let mut out = self.zip.finish_with_comment(b"").map_err(io)?;
        std::io::Write::flush(&mut out).map_err(io)
    }
}
