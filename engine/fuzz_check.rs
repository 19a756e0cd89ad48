//! The properties the fuzz targets (`fuzz/fuzz_targets/`) check, one function per target, so
//! that the fuzzer and `cargo test` (`tests/fuzz_corpora.rs`, which runs every corpus file)
//! check exactly the same thing.
//!
//! Each function takes the raw fuzz input, runs it through the parser under test and returns
//! whether it was accepted or refused. A refusal with an error is fine; a property that does not
//! hold (a round trip that does not give back what went in, an error at a position outside the
//! text, more entries than counted) panics, and so does any panic of the code under test, which
//! is what the fuzzer looks for.
//!
//! Not part of certmill's API: only the fuzz targets and the corpus tests call it.

use std::path::{Path, PathBuf};

use crate::ca::IssuingCa;
use crate::csr::{CsrBundle, CsrLimits, ParsedCsr};
use crate::filter::{Field, FieldType};
use crate::pkcs12::{self, Pkcs12Encryption, Pkcs12Error, Pkcs12Options, Pkcs12Password};
use crate::profile::{CompileOptions, Profile, ProfileError};
use crate::template::{Template, TemplateError};

/// What became of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Parsed (and verified, compiled, round-tripped: whatever the target does) without error.
    Accepted,
    /// Refused with an error.
    Refused,
}

impl Outcome {
    fn of<T, E>(result: &Result<T, E>) -> Outcome {
        if result.is_ok() {
            Outcome::Accepted
        } else {
            Outcome::Refused
        }
    }
}

/// What the targets need once per process: a scratch directory, an issuing CA, the `ecc-device`
/// template, and a device key with its certificate chain for the PKCS#12 round trip.
pub struct Fixture {
    dir: tempfile::TempDir,
    ca: IssuingCa,
    template: Template,
    key_pkcs8: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl Fixture {
    /// Makes a fresh CA in a temporary directory; panics if the machine cannot.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca = IssuingCa::init(dir.path(), &Default::default()).expect("issuing CA");
        let profile = Profile::load("ecc-device", &Default::default()).expect("shipped profile");
        let template =
            Template::new(&profile, &ca, time::OffsetDateTime::now_utc()).expect("template");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let key = rcgen::KeyPair::generate().expect("device key");
        let leaf = rcgen::CertificateParams::new(vec!["device-1".to_owned()])
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("device certificate");
        Fixture {
            dir,
            ca,
            template,
            key_pkcs8: key.serialize_der(),
            chain: vec![leaf.der().to_vec(), ca_cert.der().to_vec()],
        }
    }

    /// A file in the fixture's directory holding `data`.
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, data).expect("write fuzz input");
        path
    }

    /// The fixture's scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

/// Profile JSON: compiles (and then builds a template against the fixture's CA) or is refused
/// with problems that each name a JSON path.
pub fn profile_json(fixture: &Fixture, data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome::Refused;
    };
    match Profile::from_json(text, "fuzz", &CompileOptions::default()) {
        Ok(profile) => {
            let template = Template::new(&profile, &fixture.ca, time::OffsetDateTime::now_utc());
            if let Err(TemplateError::ValidityBeyondIssuer { path, .. }) = &template {
                assert!(path.starts_with("/Validity"), "{path}");
            }
            Outcome::of(&template)
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            match &e {
                ProfileError::Invalid(problems) => {
                    assert!(!problems.is_empty());
                    for problem in problems {
                        assert!(problem.path.starts_with('/'), "{problem:?}");
                    }
                }
                ProfileError::Json { path, line, .. }
                | ProfileError::TooDeep { path, line, .. } => {
                    assert!(path.starts_with('/'), "{e}");
                    // serde counts a line after a final line feed; `lines()` does not.
                    assert!(*line <= text.split('\n').count(), "{e}");
                }
                _ => {}
            }
            Outcome::Refused
        }
    }
}

/// Device CSV against the `ecc-device` profile: every row validated, or the file refused.
pub fn csv_batch(fixture: &Fixture, data: &[u8]) -> Outcome {
    let path = fixture.file("input.csv", data);
    Outcome::of(&crate::batch::validate_csv(
        &fixture.template,
        &path,
        &Default::default(),
        &Default::default(),
    ))
}

/// One CSR as DER: parsed and its signature verified, or refused.
pub fn csr_der(data: &[u8]) -> Outcome {
    Outcome::of(&ParsedCsr::from_der(data))
}

/// The limits the `csr_bundle` target opens with: small enough that the fuzzer reaches each.
pub const FUZZ_CSR_LIMITS: CsrLimits = CsrLimits {
    max_entries: 16,
    max_csr_bytes: 8 * 1024,
    max_total_bytes: 64 * 1024,
    max_compression_ratio: 100,
};

/// A CSR upload (a PEM bundle, or a ZIP of PEM and DER requests): opened with its limits
/// checked, then every entry streamed and parsed. Accepted only when every entry parses; then
/// exactly as many entries came as [`CsrBundle::open`] counted, none of them larger than the
/// limit.
pub fn csr_bundle(fixture: &Fixture, data: &[u8]) -> Outcome {
    let path = fixture.file("upload.bin", data);
    let limits = FUZZ_CSR_LIMITS;
    let Ok(bundle) = CsrBundle::open(&path, &limits) else {
        return Outcome::Refused;
    };
    assert!(!bundle.is_empty() && bundle.len() <= limits.max_entries);
    let Ok(entries) = bundle.entries() else {
        return Outcome::Refused;
    };
    let mut seen = 0;
    for entry in entries {
        let Ok(entry) = entry else {
            return Outcome::Refused;
        };
        seen += 1;
        assert!(seen <= bundle.len(), "more entries than counted");
        assert!(entry.der.len() <= limits.max_csr_bytes);
        if entry.parse().is_err() {
            return Outcome::Refused;
        }
    }
    assert_eq!(seen, bundle.len(), "fewer entries than counted");
    Outcome::Accepted
}

/// PKCS#12: the input picks the encryption, a password and a friendly name. Whatever
/// [`Pkcs12Password::new`] and [`pkcs12::check_friendly_name`] accept builds a file that
/// [`pkcs12::open`] gives back exactly (key, chain, name); the same file refuses another
/// password, and the same file with any one byte changed is refused. The raw input is also
/// opened as a PFX, which must not panic.
pub fn pkcs12_round_trip(fixture: &Fixture, data: &[u8]) -> Outcome {
    let fixed = Pkcs12Password::new("fuzz".to_owned()).expect("password");
    let _ = pkcs12::open(data, &fixed);
    let [flags, password_len, rest @ ..] = data else {
        return Outcome::Refused;
    };
    let split = usize::from(*password_len).min(rest.len());
    let (password, name) = rest.split_at(split);
    let name = String::from_utf8_lossy(name);
    let text = String::from_utf8_lossy(password).into_owned();
    let other =
        Pkcs12Password::new(if text == "x" { "y" } else { "x" }.to_owned()).expect("password");
    let password = match Pkcs12Password::new(text) {
        Ok(password) => password,
        Err(Pkcs12Error::InvalidPassword(_)) => return Outcome::Refused,
        Err(e) => panic!("Pkcs12Password::new failed with {e}"),
    };
    let options = Pkcs12Options {
        encryption: if flags & 1 == 0 {
            Pkcs12Encryption::Aes256Pbes2
        } else {
            Pkcs12Encryption::LegacyTripleDesSha1
        },
        // One iteration keeps the fuzzer fast; the count changes no code path.
        iterations: 1,
    };
    let chain: Vec<&[u8]> = fixture.chain.iter().map(Vec::as_slice).collect();
    let pfx = match pkcs12::build(&fixture.key_pkcs8, &chain, &name, &password, &options) {
        Ok(pfx) => pfx,
        Err(e @ Pkcs12Error::InvalidFriendlyName(_)) => {
            assert!(pkcs12::check_friendly_name(&name).is_err(), "{e}");
            return Outcome::Refused;
        }
        Err(e) => panic!("build failed with {e}"),
    };
    let opened = pkcs12::open(&pfx, &password).expect("a built PKCS#12 opens");
    assert_eq!(
        opened.private_key_pkcs8.as_slice(),
        fixture.key_pkcs8.as_slice()
    );
    assert_eq!(opened.certificates, fixture.chain);
    let expected_name = (!name.is_empty()).then(|| name.clone().into_owned());
    assert_eq!(opened.friendly_name, expected_name);
    assert!(matches!(
        pkcs12::open(&pfx, &other),
        Err(Pkcs12Error::MacMismatch)
    ));
    let mut altered = pfx;
    let at = usize::from(*flags >> 1) * altered.len() / 128;
    altered[at] ^= 0x01;
    assert!(
        pkcs12::open(&altered, &password).is_err(),
        "a PKCS#12 with byte {at} changed opened"
    );
    Outcome::Accepted
}

/// An OCSP request (the body of `POST /ocsp`, the decoded path of `GET /ocsp/...`): 1 to 16
/// CertIDs, or refused; and the text, if any, decodes as a GET path or is refused.
pub fn ocsp_request(data: &[u8]) -> Outcome {
    let request = crate::revocation::ocsp::parse_request(data);
    if let Ok(request) = &request {
        assert!(!request.certs.is_empty() && request.certs.len() <= 16);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::revocation::ocsp::decode_get_path(text);
    }
    Outcome::of(&request)
}

/// The fields [`filter_expr`] compiles against (a text, an integer, a timestamp, a boolean).
pub const FILTER_FIELDS: &[Field] = &[
    Field::new("name", "name", FieldType::Text),
    Field::new("id", "id", FieldType::Integer),
    Field::new("createdAt", "created_at", FieldType::Timestamp),
    Field::new("active", "active", FieldType::Boolean),
];

/// A `filter=` expression: compiles with as many placeholders as values, or is refused at a
/// position within the text (or just past its end).
pub fn filter_expr(data: &[u8]) -> Option<crate::filter::SqlFilter> {
    let text = std::str::from_utf8(data).ok()?;
    match crate::filter::compile(text, FILTER_FIELDS) {
        Ok(filter) => {
            assert_eq!(filter.sql.matches('?').count(), filter.values.len());
            Some(filter)
        }
        Err(e) => {
            assert!(
                e.position >= 1 && e.position <= text.chars().count() + 1
                    || text.len() > crate::filter::MAX_FILTER_LEN,
                "{e}"
            );
            None
        }
    }
}
