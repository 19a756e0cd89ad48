//! Where a batch's devices come from: CSV rows, CSRs, a generator sequence, or a single
//! request. Each input streams its devices as [`Job`]s, any number of times (a validation pass,
//! then the issuing pass), holding one device at a time.

use super::csv_input::{CsvLayout, RecordReader};
use super::{BatchError, DeviceError, InputLimits};
use crate::csr::{CsrBundle, ParsedCsr};
use crate::generator::{self, Sequence};
use crate::profile::ValueError;
use crate::profile::{Inputs, Profile};
use crate::template::{PreparedDevice, Template};
use std::collections::BTreeMap;
use std::path::Path;

/// The devices of a batch.
pub enum BatchInput<'a> {
    /// A CSV file, one device per record (server-generated keys).
    Csv(&'a Path),
    /// A bundle of CSRs, one device per request (the requester's keys).
    Csr(&'a CsrBundle),
    /// A generator sequence (server-generated keys).
    Generator(&'a Sequence),
    /// One device from the batch parameters alone (server-generated key).
    Single,
}

impl BatchInput<'_> {
    /// The store's batch kind.
    pub fn kind(&self) -> &'static str {
        match self {
            BatchInput::Csv(_) => "CSV",
            BatchInput::Csr(_) => "CSR",
            BatchInput::Generator(_) => "GENERATOR",
            BatchInput::Single => "SINGLE",
        }
    }

    /// How many devices the input holds, when that is known before it is read (a generator, a
    /// CSR bundle counted when opened, a single request).
    pub fn known_len(&self) -> Option<u64> {
        match self {
            BatchInput::Csv(_) => None,
            BatchInput::Csr(bundle) => Some(bundle.len() as u64),
            BatchInput::Generator(sequence) => Some(sequence.len()),
            BatchInput::Single => Some(1),
        }
    }

    /// Whether devices bring their own keys (no PKCS#12 then).
    pub fn has_csr(&self) -> bool {
        matches!(self, BatchInput::Csr(_))
    }

    /// Whether the batch verifies each request as it signs it, in one pass, instead of
    /// verifying the whole input first: a PEM CSR bundle, whose entries
    /// [`CsrBundle::entries_checked_at_open`] (see `batch::issue` and docs/ISSUANCE.md).
    pub fn verified_as_signed(&self) -> bool {
        matches!(self, BatchInput::Csr(bundle) if bundle.entries_checked_at_open())
    }
}

/// One device's raw input.
pub enum DeviceInput {
    /// A CSV record.
    Record(csv::StringRecord),
    /// Named values (generator, single request).
    Values(BTreeMap<String, String>),
    /// A CSR's DER, parsed and verified by the worker that prepares it.
    Csr(Vec<u8>),
}

/// One device on its way through the pipeline.
pub struct Job {
    /// 1-based position in the input.
    pub row: u64,
    /// How the input names it: "row 3", "entry `dev-7.csr`", "device 12".
    pub location: String,
    /// What it brings.
    pub input: DeviceInput,
}

impl Job {
    /// A file name stem for a device whose subject has no commonName: the CSR entry's file
    /// name without its extension, else `device-<row>`.
    pub fn name_hint(&self) -> String {
        let entry = self
            .location
            .strip_prefix("entry `")
            .and_then(|l| l.strip_suffix('`'));
        match entry {
            Some(name) if !name.starts_with('#') => {
                let file = name.rsplit('/').next().unwrap_or(name);
                file.rsplit_once('.')
                    .map_or(file, |(stem, _)| stem)
                    .to_owned()
            }
            _ => format!("device-{}", self.row),
        }
    }
}

/// An opened input, ready to stream its jobs.
pub struct OpenInput<'a> {
    input: &'a BatchInput<'a>,
    layout: Option<CsvLayout>,
    parameters: &'a BTreeMap<String, String>,
    profile: &'a Profile,
    limits: &'a InputLimits,
    /// CSV only: rows before the file's first record (a chunk's file starts mid-batch).
    csv_row_base: u64,
}

impl<'a> OpenInput<'a> {
    /// Opens the input (reads a CSV header and matches it against the profile).
    pub fn open(
        input: &'a BatchInput<'a>,
        profile: &'a Profile,
        parameters: &'a BTreeMap<String, String>,
        limits: &'a InputLimits,
    ) -> Result<OpenInput<'a>, BatchError> {
        let layout = match input {
            BatchInput::Csv(path) => Some(CsvLayout::open(path, profile, parameters, limits)?.0),
            _ => None,
        };
        Ok(OpenInput {
            input,
            layout,
            parameters,
            profile,
            limits,
            csv_row_base: 0,
        })
    }

    /// A CSV input that is one chunk of a batch's file (its header and the chunk's rows):
    /// numbers its records as if `row` rows came before them.
    pub fn continuing_from_row(mut self, row: u64) -> OpenInput<'a> {
        self.csv_row_base = row;
        self
    }

    /// The bounds the input is read under.
    pub fn limits(&self) -> &InputLimits {
        self.limits
    }

    /// Streams the jobs from the start.
    pub fn jobs(
        &self,
    ) -> Result<Box<dyn Iterator<Item = Result<Job, BatchError>> + '_>, BatchError> {
        match self.input {
            BatchInput::Csv(_) => {
                let layout = self
                    .layout
                    .as_ref()
                    .ok_or(BatchError::Unreachable("CSV input without a layout"))?;
                let mut reader = layout.reopen()?;
                reader.continue_from_row(self.csv_row_base);
                Ok(Box::new(CsvJobs { reader }))
            }
            BatchInput::Generator(sequence) => {
                let profile = self.profile;
                let parameters = self.parameters;
                Ok(Box::new((0..sequence.len()).map(move |i| {
                    let values = generator::device_values(profile, parameters, &sequence.value(i));
                    Ok(Job {
                        row: i + 1,
                        location: format!("device {} ({})", i + 1, sequence.value(i)),
                        input: DeviceInput::Values(values),
                    })
                })))
            }
            BatchInput::Single => Ok(Box::new(std::iter::once(Ok(Job {
                row: 1,
                location: "the request".into(),
                input: DeviceInput::Values(self.parameters.clone()),
            })))),
            BatchInput::Csr(bundle) => {
                let entries = bundle.entries().map_err(|e| BatchError::Csr {
                    entry: None,
                    source: e,
                })?;
                Ok(Box::new(entries.enumerate().map(|(i, entry)| {
                    let entry = entry.map_err(|e| BatchError::Csr {
                        entry: Some(format!("#{}", i + 1)),
                        source: e,
                    })?;
                    Ok(Job {
                        row: i as u64 + 1,
                        location: format!("entry `{}`", entry.name),
                        input: DeviceInput::Csr(entry.der),
                    })
                })))
            }
        }
    }

    /// Resolves and checks one job's values against the template; a CSR is parsed and its
    /// signature verified here (proof of possession), on the worker, unless `proof` says these
    /// exact bytes were verified before ([`ChunkProofs`]).
    pub fn prepare(
        &self,
        template: &Template,
        job: &Job,
        proof: Proof,
    ) -> Result<(PreparedDevice, Option<Box<ParsedCsr>>), DeviceError> {
        let profile = template.profile();
        let prepared = match &job.input {
            DeviceInput::Record(record) => {
                // A CSV job only exists when the layout does.
                let layout = self
                    .layout
                    .as_ref()
                    .ok_or(DeviceError::Unreachable("CSV record without a layout"))?;
                let row = layout.row(record);
                template.prepare(&Inputs {
                    request: Some(&row),
                    batch: self.parameters,
                    profile: profile.values(),
                    csr: None,
                })
            }
            DeviceInput::Values(values) => template.prepare(&Inputs {
                request: Some(values),
                batch: self.parameters,
                profile: profile.values(),
                csr: None,
            }),
            DeviceInput::Csr(der) => {
                let csr = match proof {
                    Proof::Verify => ParsedCsr::from_der(der),
                    Proof::Verified => ParsedCsr::from_verified_der(der),
                }
                .map_err(DeviceError::Csr)?;
                if csr.key_algorithm() != profile.key_algorithm() {
                    return Err(DeviceError::Value(ValueError::Unencodable {
                        field: "SubjectPublicKeyInfo".into(),
                        value: csr.key_algorithm().syntax().into(),
                        reason: format!(
                            "is not the profile's key type {}",
                            profile.key_algorithm().syntax()
                        ),
                    }));
                }
                let prepared = template
                    .prepare(&Inputs {
                        request: None,
                        batch: self.parameters,
                        profile: profile.values(),
                        csr: Some(&csr),
                    })
                    .map_err(DeviceError::Value)?;
                return Ok((prepared, Some(Box::new(csr))));
            }
        };
        Ok((prepared.map_err(DeviceError::Value)?, None))
    }
}

/// Whether a CSR job's signature still needs verifying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// Verify it.
    Verify,
    /// The validation pass verified these exact bytes.
    Verified,
}

/// What the validation pass proved about a CSR batch: the SHA-256 of each chunk's requests
/// (rows and DER, in order), one per `CHUNK` (512) devices whose signatures all verified.
/// The issuing pass reads the same chunks; a chunk whose digest matches skips the signature
/// check (ECDSA verification is deterministic, so repeating it on the same bytes proves
/// nothing new), and any other chunk (the bundle changed on disk in between) is verified again.
/// 32 bytes per chunk: 62 KiB at 1,000,000 devices.
#[derive(Debug, Default)]
pub struct ChunkProofs {
    digests: Vec<[u8; 32]>,
}

impl ChunkProofs {
    /// Records chunk `index` as verified.
    pub fn push(&mut self, index: usize, chunk: &[Job]) {
        self.push_digest(index, ChunkProofs::digest(chunk));
    }

    /// Records chunk `index`, whose [`ChunkProofs::digest`] is `digest`, as verified.
    pub fn push_digest(&mut self, index: usize, digest: Option<[u8; 32]>) {
        if let Some(digest) = digest {
            debug_assert_eq!(index, self.digests.len());
            self.digests.push(digest);
        }
    }

    /// The digest of a chunk: SHA-256 over each CSR job's row and DER (length-prefixed);
    /// `None` for a chunk without CSRs.
    pub fn digest(chunk: &[Job]) -> Option<[u8; 32]> {
        chunk_digest(chunk)
    }

    /// Whether chunk `index` holds exactly the bytes the validation pass verified.
    pub fn proof(&self, index: usize, chunk: &[Job]) -> Proof {
        // No digest recorded for the chunk: nothing to hash.
        match self.digests.get(index) {
            Some(proved) if chunk_digest(chunk).as_ref() == Some(proved) => Proof::Verified,
            _ => Proof::Verify,
        }
    }
}

/// SHA-256 over each CSR job's row and DER (length-prefixed); `None` for a chunk without CSRs.
fn chunk_digest(chunk: &[Job]) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut any = false;
    for job in chunk {
        if let DeviceInput::Csr(der) = &job.input {
            any = true;
            hasher.update(job.row.to_le_bytes());
            hasher.update((der.len() as u64).to_le_bytes());
            hasher.update(der);
        }
    }
    any.then(|| hasher.finalize().into())
}

struct CsvJobs {
    reader: RecordReader,
}

impl Iterator for CsvJobs {
    type Item = Result<Job, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.next_record() {
            Ok(Some(record)) => Some(Ok(Job {
                row: record.row,
                location: format!("row {}", record.row),
                input: DeviceInput::Record(record.fields),
            })),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChunkProofs, DeviceInput, Job, Proof};

    fn csr_job(row: u64, der: &[u8]) -> Job {
        Job {
            row,
            location: format!("entry `#{row}`"),
            input: DeviceInput::Csr(der.to_vec()),
        }
    }

    #[test]
    fn only_the_exact_verified_bytes_skip_verification() {
        let chunk = vec![csr_job(1, b"\x30\x03\x02\x01\x01"), csr_job(2, b"\x30\x00")];
        let mut proofs = ChunkProofs::default();
        proofs.push(0, &chunk);
        assert_eq!(proofs.proof(0, &chunk), Proof::Verified);
        // Another chunk index was never proved.
        assert_eq!(proofs.proof(1, &chunk), Proof::Verify);
        // One byte changed on disk between the passes.
        let edited = vec![csr_job(1, b"\x30\x03\x02\x01\x02"), csr_job(2, b"\x30\x00")];
        assert_eq!(proofs.proof(0, &edited), Proof::Verify);
        // The same requests in another order (rows swapped) are not the verified chunk.
        let swapped = vec![csr_job(1, b"\x30\x00"), csr_job(2, b"\x30\x03\x02\x01\x01")];
        assert_eq!(proofs.proof(0, &swapped), Proof::Verify);
        // Moving a byte across the boundary of two requests changes the digest too.
        let shifted = vec![csr_job(1, b"\x30\x03\x02\x01"), csr_job(2, b"\x01\x30\x00")];
        assert_eq!(proofs.proof(0, &shifted), Proof::Verify);
    }

    #[test]
    fn chunks_without_requests_are_never_proved() {
        let chunk = vec![Job {
            row: 1,
            location: "row 1".into(),
            input: DeviceInput::Values(Default::default()),
        }];
        let mut proofs = ChunkProofs::default();
        proofs.push(0, &chunk);
        assert_eq!(proofs.proof(0, &chunk), Proof::Verify);
    }
}
