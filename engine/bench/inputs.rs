//! Synthetic batch inputs: a CSV of unique device identities, a PEM bundle of freshly generated
//! P-256 CSRs, or a generator sequence, for the shipped device and server profiles (and any
//! profile whose only required per-device column is `macAddress` or `dnsName`).

use super::BenchError;
use crate::csr::{CsrBundle, CsrLimits};
use crate::generator::{GeneratorKind, Sequence};
use crate::profile::Profile;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the benchmark's devices come from (`--kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A CSV file of device identities; keys are generated.
    Csv,
    /// A PEM bundle of P-256 CSRs generated up front; the devices' keys are signed.
    Csr,
    /// A generator sequence; keys are generated.
    Generator,
}

impl InputKind {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Csv => "csv",
            InputKind::Csr => "csr",
            InputKind::Generator => "generator",
        }
    }
}

/// The per-device value the synthetic devices differ by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Identity {
    /// `macAddress`: `02:BE:NC:xx:xx:xx`, a locally administered address from a 24-bit counter.
    Mac,
    /// `dnsName`: `d<i>.bench.example`.
    Dns,
}

impl Identity {
    fn column(self) -> &'static str {
        match self {
            Identity::Mac => "macAddress",
            Identity::Dns => "dnsName",
        }
    }

    fn value(self, index: u64) -> String {
        match self {
            Identity::Mac => format!(
                "02:BE:4C:{:02X}:{:02X}:{:02X}",
                (index >> 16) & 0xff,
                (index >> 8) & 0xff,
                index & 0xff
            ),
            Identity::Dns => format!("d{index}.bench.example"),
        }
    }
}

/// Most devices a synthetic batch may have (the MAC counter's 24 bits).
pub const MAX_DEVICES: u64 = 1 << 24;

/// A synthetic batch's inputs, written under a temporary directory.
pub(crate) struct Synthetic {
    /// Batch parameters (and, for a generator, the profile's per-device templates).
    pub(crate) parameters: BTreeMap<String, String>,
    /// The CSV file (kind csv).
    pub(crate) csv: Option<PathBuf>,
    /// The CSR bundle (kind csr).
    pub(crate) bundle: Option<CsrBundle>,
    /// The sequence (kind generator).
    pub(crate) sequence: Option<Sequence>,
    /// The DER of the first CSRs, for the stage sample (kind csr).
    pub(crate) sample_csrs: Vec<Vec<u8>>,
    /// Per-device request values of the first devices, for the stage sample.
    pub(crate) sample_values: Vec<BTreeMap<String, String>>,
}

fn identity_of(profile: &Profile) -> Result<Identity, BenchError> {
    let columns = profile.csv_columns();
    let identity = [Identity::Mac, Identity::Dns]
        .into_iter()
        .find(|i| columns.iter().any(|c| c.name == i.column()))
        .ok_or_else(|| unsupported(profile, "it has neither a macAddress nor a dnsName column"))?;
    let batch = batch_parameters(profile);
    for column in &columns {
        let covered = column.name == identity.column()
            || column
                .required_unless_batch_parameter
                .as_ref()
                .is_some_and(|b| batch.contains_key(b));
        if column.required && !covered {
            return Err(unsupported(
                profile,
                &format!("its required column {} has no synthetic value", column.name),
            ));
        }
    }
    Ok(identity)
}

fn unsupported(profile: &Profile, why: &str) -> BenchError {
    BenchError::UnsupportedProfile {
        profile: profile.name().to_owned(),
        reason: why.to_owned(),
    }
}

/// The batch parameters the shipped profiles need, for those the profile declares.
fn batch_parameters(profile: &Profile) -> BTreeMap<String, String> {
    let declared = profile.batch_parameter_names();
    [("deviceClass", "Surface Vehicle"), ("years", "1")]
        .into_iter()
        .filter(|(name, _)| declared.iter().any(|d| d == name))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// Up to this many devices' inputs are kept for the stage sample.
fn sample_values(identity: Identity, sample: usize) -> Vec<BTreeMap<String, String>> {
    (0..sample as u64)
        .map(|i| BTreeMap::from([(identity.column().to_owned(), identity.value(i))]))
        .collect()
}

/// Builds the inputs of `devices` synthetic devices in `dir`, keeping `sample` of them aside
/// for the stage measurements.
pub(crate) fn build(
    profile: &Profile,
    kind: InputKind,
    devices: u64,
    sample: usize,
    dir: &Path,
) -> Result<Synthetic, BenchError> {
    if devices == 0 || devices > MAX_DEVICES {
        return Err(BenchError::Devices { devices });
    }
    let identity = identity_of(profile)?;
    let mut synthetic = Synthetic {
        parameters: batch_parameters(profile),
        csv: None,
        bundle: None,
        sequence: None,
        sample_csrs: Vec::new(),
        sample_values: sample_values(identity, sample),
    };
    match kind {
        InputKind::Csv => {
            let path = dir.join("devices.csv");
            let mut text = String::with_capacity(devices as usize * 20);
            text.push_str(identity.column());
            text.push('\n');
            for i in 0..devices {
                text.push_str(&identity.value(i));
                text.push('\n');
            }
            std::fs::write(&path, text).map_err(|source| io(&path, source))?;
            synthetic.csv = Some(path);
        }
        InputKind::Csr => {
            let ders: Vec<Vec<u8>> = (0..devices)
                .into_par_iter()
                .map(|i| p256_csr_der(&identity.value(i)))
                .collect::<Result<_, _>>()?;
            let path = dir.join("devices.pem");
            let file = std::fs::File::create(&path).map_err(|source| io(&path, source))?;
            let mut out = std::io::BufWriter::new(file);
            for der in &ders {
                let pem =
                    der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, der)
                        .map_err(|_| BenchError::Unreachable("PEM encoding of a CSR"))?;
                out.write_all(pem.as_bytes())
                    .map_err(|source| io(&path, source))?;
            }
            out.flush().map_err(|source| io(&path, source))?;
            drop(out);
            synthetic.sample_csrs = ders.into_iter().take(sample).collect();
            synthetic.bundle = Some(
                CsrBundle::open(&path, &CsrLimits::default())
                    .map_err(|source| BenchError::Csr { source })?,
            );
        }
        InputKind::Generator => {
            let (generator, own) = match identity {
                Identity::Mac => ("mac", [("startValue", "02:BE:4C:00:00:00")]),
                Identity::Dns => ("decimal", [("startValue", "0")]),
            };
            let own: BTreeMap<String, String> = own
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            let kind = GeneratorKind::find(generator)
                .map_err(|source| BenchError::Generator { source })?;
            synthetic.sequence = Some(
                Sequence::new(kind, &own, devices)
                    .map_err(|source| BenchError::Generator { source })?,
            );
            if identity == Identity::Dns {
                // A per-device free-text parameter is a suffix to the sequence value:
                // "0" + ".bench.example".
                synthetic
                    .parameters
                    .insert("dnsName".to_owned(), ".bench.example".to_owned());
            }
        }
    }
    Ok(synthetic)
}

/// A PKCS#10 request for a new P-256 key with `common_name` as its subject CN, DER.
pub fn p256_csr_der(common_name: &str) -> Result<Vec<u8>, BenchError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|source| BenchError::CsrGeneration { source })?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let request = params
        .serialize_request(&key)
        .map_err(|source| BenchError::CsrGeneration { source })?;
    Ok(request.der().to_vec())
}

fn io(path: &Path, source: std::io::Error) -> BenchError {
    BenchError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_unique_and_well_formed() {
        assert_eq!(Identity::Mac.value(0x01_02_03), "02:BE:4C:01:02:03");
        assert_ne!(Identity::Mac.value(1), Identity::Mac.value(256));
        assert_eq!(Identity::Dns.value(7), "d7.bench.example");
    }

    #[test]
    fn csr_of_a_new_key_parses_and_verifies() {
        let der = p256_csr_der("02:BE:4C:00:00:01").expect("csr");
        let parsed = crate::csr::ParsedCsr::from_der(&der).expect("parse and verify");
        assert_eq!(parsed.subject_common_name(), Some("02:BE:4C:00:00:01"));
    }
}
