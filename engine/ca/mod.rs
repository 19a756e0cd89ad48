//! The issuing CA: creating a development CA (`certmill ca init`), importing an existing one,
//! loading it from the data directory, and signing TBS certificates with its key.
//!
//! This is the only module that touches CA private keys. On disk a CA lives in `<data>/ca/`:
//! `root.crt`, `root.key` (only for a CA made by `init`), `issuing.crt`, `issuing.key` and
//! `chain.pem` (issuing CA first, then its issuers up to the root, PEM). Key files are PKCS#8
//! PEM, created with mode 0600, and encrypted (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC) when a
//! passphrase is given. CA certificates are made with rcgen; signing uses aws-lc-rs directly.
//! Or the keys live in a PKCS#11 token (`pkcs11`): then `pkcs11.json` names the module, token
//! and key label in place of the key files, and every signature is made in the token.
//!
//! It does not build leaf certificates, choose serials for them or decide what a profile
//! allows: callers hand [`IssuingCa::sign`] the exact TBS bytes to sign. It never overwrites an
//! existing CA and never writes a key file that is readable by anyone but its owner.

mod key;
mod pkcs11;
mod responder;
mod signer;
#[cfg(test)]
mod tests;
mod x509;

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use der::asn1::ObjectIdentifier;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod,
    KeyUsagePurpose, SerialNumber,
};
use sha1::{Digest, Sha1};
use time::{Duration, OffsetDateTime};

pub use key::CaPassphrase;
use key::CaSigningKey;
pub use pkcs11::{finalize_modules, Pkcs11Config, Pkcs11Pin, PKCS11_FILE};
pub use signer::{RootCa, SignerOptions, SignerSubject};
use x509::ParsedCertificate;

use crate::keys::{KeyAlgorithm, KeyError, SignatureAlgorithm};

/// Why a certificate offered as a CA certificate is not one (RFC 5280 sections 4.2.1.9 and
/// 4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotCaReason {
    /// The certificate has no basicConstraints extension.
    BasicConstraintsMissing,
    /// basicConstraints says cA=FALSE.
    CaFlagFalse,
    /// keyUsage is present but does not include keyCertSign.
    KeyCertSignMissing,
}

impl fmt::Display for NotCaReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotCaReason::BasicConstraintsMissing => "it has no basicConstraints extension",
            NotCaReason::CaFlagFalse => "its basicConstraints say cA=FALSE",
            NotCaReason::KeyCertSignMissing => "its keyUsage lacks keyCertSign",
        })
    }
}

/// Errors of the issuing CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The requested signature algorithm cannot be made with the CA key
    /// ([`SignatureAlgorithm::fits`] is false).
    #[error("the CA key is {key}, which cannot make {requested} signatures")]
    AlgorithmMismatch {
        /// The signature algorithm asked for.
        requested: SignatureAlgorithm,
        /// The CA key's algorithm.
        key: KeyAlgorithm,
    },
    /// A CA file is already there; nothing was overwritten.
    #[error("{} already exists; refusing to overwrite an existing CA", .0.display())]
    AlreadyExists(PathBuf),
    /// A certificate is not valid DER X.509.
    #[error("{}: not a valid X.509 certificate: {source}", .path.display())]
    Certificate {
        /// The file the certificate came from.
        path: PathBuf,
        /// The decoding error (it gives the DER byte position).
        source: der::Error,
    },
    /// rcgen could not build a CA certificate.
    #[error("could not create the CA certificate: {source}")]
    CertificateGeneration {
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// A certificate of the chain is not signed by the certificate that follows it.
    #[error(
        "{}: certificate {position} of the chain (0 = the issuing CA) is not signed by the next \
         one",
        .path.display()
    )]
    ChainMismatch {
        /// The chain file.
        path: PathBuf,
        /// Index of the certificate whose signature failed; 0 is the issuing CA certificate,
        /// 1 the first certificate of the chain file.
        position: usize,
    },
    /// A PKCS#11 operation failed (module, token, login, key); `detail` says which and why,
    /// never the PIN.
    #[error("PKCS#11: {action}: {detail}")]
    Pkcs11 {
        /// What was being done.
        action: &'static str,
        /// The module's answer or what was missing.
        detail: String,
    },
    /// An empty passphrase was given.
    #[error("the CA key passphrase is empty")]
    EmptyPassphrase,
    /// An option of `ca init` is out of range.
    #[error("invalid CA option {option}: {reason}")]
    InvalidOption {
        /// The option's field name in [`CaInitOptions`].
        option: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An argument of [`IssuingCa::issue_ocsp_responder`] is unusable (a SubjectPublicKeyInfo
    /// that does not parse, a serial that is not a positive 20-octet INTEGER, an empty validity
    /// or one that ends after the issuing CA's notAfter); nothing was signed.
    #[error("invalid OCSP responder certificate parameter {parameter}: {reason}")]
    InvalidResponderParameter {
        /// The parameter's name.
        parameter: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Key generation or the random number generator failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A private key is not a valid PKCS#8 (or encrypted PKCS#8) structure.
    #[error("{}: not a valid PKCS#8 private key: {source}", .path.display())]
    KeyDer {
        /// The key file.
        path: PathBuf,
        /// The decoding error.
        source: der::Error,
    },
    /// A private key could not be encoded as PEM.
    #[error("{}: could not encode the private key as PEM: {source}", .path.display())]
    KeyEncoding {
        /// The key file being written.
        path: PathBuf,
        /// The encoding error.
        source: der::Error,
    },
    /// A key file uses an encryption scheme that cannot be handled, or encryption failed.
    #[error("{}: private key encryption: {cause}", .path.display())]
    KeyEncryption {
        /// The key file.
        path: PathBuf,
        /// The PKCS#5 error (unsupported PBES2 scheme or parameters).
        cause: pkcs8::pkcs5::Error,
    },
    /// The backend could not export the CA key as PKCS#8.
    #[error("could not export the {algorithm} CA key as PKCS#8")]
    KeyExport {
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
    },
    /// The private key does not belong to the certificate (their public keys differ).
    #[error(
        "the private key in {} does not match the certificate in {}",
        .key.display(),
        .certificate.display()
    )]
    KeyMismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// aws-lc-rs rejected the private key (malformed, inconsistent or wrong curve).
    #[error("{}: private key rejected: {source}", .path.display())]
    KeyRejected {
        /// The key file.
        path: PathBuf,
        /// The backend's reason.
        source: aws_lc_rs::error::KeyRejected,
    },
    /// The certificate is not a CA certificate.
    #[error("{}: not a CA certificate: {reason}", .path.display())]
    NotCa {
        /// The certificate file.
        path: PathBuf,
        /// What is missing.
        reason: NotCaReason,
    },
    /// There is no CA in the data directory (the named file is missing).
    #[error("no CA found: {} does not exist (run `certmill ca init` or `ca import`)", .0.display())]
    NotFound(PathBuf),
    /// The key file is encrypted and no passphrase was given.
    #[error("{} is encrypted: a passphrase is required (CERTMILL_CA_PASSPHRASE)", .0.display())]
    PassphraseRequired(PathBuf),
    /// A PEM block is malformed.
    #[error("{}: malformed PEM: {source}", .path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The PEM decoding error.
        source: der::Error,
    },
    /// A file has no PEM block of the expected kind.
    #[error("{}: no {expected} PEM block found", .path.display())]
    PemMissing {
        /// The file.
        path: PathBuf,
        /// The PEM label looked for.
        expected: &'static str,
    },
    /// The backend failed to sign.
    #[error("the CA key failed to make a {algorithm} signature")]
    SigningFailed {
        /// The signature algorithm.
        algorithm: SignatureAlgorithm,
    },
    /// An EC key is on a curve other than P-256 or P-384.
    #[error("{}: unsupported elliptic curve {oid} (P-256 and P-384 are supported)", .path.display())]
    UnsupportedCurve {
        /// The key or certificate file.
        path: PathBuf,
        /// The curve's OID.
        oid: ObjectIdentifier,
    },
    /// A key is neither EC nor RSA.
    #[error("{}: unsupported key algorithm {oid} (EC and RSA are supported)", .path.display())]
    UnsupportedKeyAlgorithm {
        /// The key file.
        path: PathBuf,
        /// The algorithm's OID.
        oid: ObjectIdentifier,
    },
    /// An RSA key has a size other than 2048, 3072 or 4096 bits.
    #[error("{}: unsupported RSA key size {bits} bits (2048, 3072, 4096)", .path.display())]
    UnsupportedRsaKeySize {
        /// The key file.
        path: PathBuf,
        /// The modulus size.
        bits: usize,
    },
    /// A chain signature uses an algorithm (or key type) that cannot be verified.
    #[error(
        "{}: cannot verify a {signature} signature made with a {key} key",
        .path.display()
    )]
    UnsupportedSignatureAlgorithm {
        /// The chain file.
        path: PathBuf,
        /// The signature algorithm OID.
        signature: ObjectIdentifier,
        /// The issuer's public key algorithm OID.
        key: ObjectIdentifier,
    },
    /// A name cannot be re-encoded exactly (rcgen does not carry its string types or
    /// multi-valued RDNs), so a certificate under it would not chain; nothing was written.
    #[error("{}: its subject name cannot be reproduced exactly; use a certificate made by the root itself (`certmill ca install`)", .path.display())]
    NameNotReproducible {
        /// The certificate whose name it is.
        path: PathBuf,
    },
    /// A renewal certificate has another subject than the certificate it replaces.
    #[error("{}: its subject differs from the signer's; a renewal keeps the subject (create a new signer instead)", .path.display())]
    SubjectChanged {
        /// The certificate offered.
        path: PathBuf,
    },
    /// The passphrase does not decrypt the key file.
    #[error("{}: wrong passphrase", .0.display())]
    WrongPassphrase(PathBuf),
}

/// What `certmill ca init` creates.
#[derive(Debug)]
pub struct CaInitOptions {
    /// Key algorithm of both the root and the issuing CA key (default `EC:P-256`).
    pub algorithm: KeyAlgorithm,
    /// Subject organization (O) of both certificates (default `certmill development`).
    pub organization: String,
    /// Common name prefix: the CNs are `<prefix> Root CA` and `<prefix> Issuing CA 1`. Empty
    /// (the default) means the organization.
    pub common_name_prefix: String,
    /// Root certificate validity in years (default 20, 1 to 100).
    pub root_years: u32,
    /// Issuing certificate validity in years (default 10, at most `root_years`).
    pub issuing_years: u32,
    /// Encrypts both key files when set.
    pub passphrase: Option<CaPassphrase>,
    /// Generates both keys in this PKCS#11 token instead of key files: the issuing key under
    /// the configured label, the root key under `<label>-root`.
    pub pkcs11: Option<(Pkcs11Config, Pkcs11Pin)>,
}

impl Default for CaInitOptions {
    fn default() -> Self {
        CaInitOptions {
            algorithm: KeyAlgorithm::EcP256,
            organization: "certmill development".to_owned(),
            common_name_prefix: String::new(),
            root_years: 20,
            issuing_years: 10,
            passphrase: None,
            pkcs11: None,
        }
    }
}

/// The files of a CA (or of one signer) in its directory.
struct CaPaths {
    dir: PathBuf,
    root_crt: PathBuf,
    root_key: PathBuf,
    issuing_crt: PathBuf,
    issuing_key: PathBuf,
    issuing_csr: PathBuf,
    chain_pem: PathBuf,
    pkcs11: PathBuf,
}

impl CaPaths {
    /// The CA of a data directory: `<data_dir>/ca/`.
    fn new(data_dir: &Path) -> Self {
        Self::at(&data_dir.join("ca"))
    }

    /// The files in `dir`.
    fn at(dir: &Path) -> Self {
        CaPaths {
            root_crt: dir.join("root.crt"),
            root_key: dir.join("root.key"),
            issuing_crt: dir.join("issuing.crt"),
            issuing_key: dir.join("issuing.key"),
            issuing_csr: dir.join("issuing.csr"),
            chain_pem: dir.join("chain.pem"),
            pkcs11: dir.join(PKCS11_FILE),
            dir: dir.to_path_buf(),
        }
    }

    /// Fails with `AlreadyExists` on the first CA file that is present.
    fn ensure_absent(&self) -> Result<(), CaError> {
        for path in [
            &self.root_crt,
            &self.root_key,
            &self.issuing_crt,
            &self.issuing_key,
            &self.chain_pem,
            &self.pkcs11,
            &self.issuing_csr,
        ] {
            // `symlink_metadata` so that a dangling symlink also counts as present.
            if fs::symlink_metadata(path).is_ok() {
                return Err(CaError::AlreadyExists(path.clone()));
            }
        }
        Ok(())
    }
}

/// Files created by `init`/`import` so far; removed again unless the whole operation succeeds,
/// so a failed `init` leaves no half CA behind.
struct NewFiles {
    created: Vec<PathBuf>,
    committed: bool,
}

impl NewFiles {
    fn new() -> Self {
        NewFiles {
            created: Vec::new(),
            committed: false,
        }
    }

    /// Creates `path` (never overwriting) with `mode` set at creation, writes and syncs it.
    fn write(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
        let io_error = |source| CaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CaError::AlreadyExists(path.to_path_buf())
            } else {
                io_error(e)
            }
        })?;
        self.created.push(path.to_path_buf());
        file.write_all(contents).map_err(io_error)?;
        file.sync_all().map_err(io_error)
    }

    fn commit(mut self, dir: &Path) -> Result<(), CaError> {
        // Make the new directory entries durable too.
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| CaError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for NewFiles {
    fn drop(&mut self) {
        if !self.committed {
            for path in &self.created {
                // Best effort: the original error is what the caller needs to see.
                let _ = fs::remove_file(path);
            }
        }
    }
}

/// Mode of key files: owner read/write only.
const KEY_FILE_MODE: u32 = 0o600;
/// Mode of certificate files.
const CERT_FILE_MODE: u32 = 0o644;
/// Mode of `<data>/ca/`.
const CA_DIR_MODE: u32 = 0o700;

fn create_ca_dir(dir: &Path) -> Result<(), CaError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(CA_DIR_MODE);
    }
    builder.create(dir).map_err(|source| CaError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn years_after(start: OffsetDateTime, years: u32) -> Result<OffsetDateTime, CaError> {
    let invalid = CaError::InvalidOption {
        option: "years",
        reason: "the validity end is out of range",
    };
    let years = i32::try_from(years).map_err(|_| CaError::InvalidOption {
        option: "years",
        reason: "too large",
    })?;
    let year = start
        .year()
        .checked_add(years)
        .ok_or(CaError::InvalidOption {
            option: "years",
            reason: "too large",
        })?;
    // 29 February has no counterpart in most years; end on 28 February instead.
    match start.replace_year(year) {
        Ok(end) => Ok(end),
        Err(_) => (start - Duration::days(1))
            .replace_year(year)
            .map_err(|_| invalid),
    }
}

/// A positive 16-byte serial from the CSPRNG (RFC 5280 section 4.1.2.2: at most 20 octets;
/// CA/B BR 7.1: at least 64 random bits). The top bit is cleared so the INTEGER is positive
/// and the next one set so it keeps all 16 bytes: 126 random bits.
fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    crate::keys::random_bytes(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn ca_params(
    organization: &str,
    common_name: String,
    key: &CaSigningKey,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, organization);
    name.push(DnType::CommonName, common_name);
    ca_params_named(name, key, not_before, not_after)
}

/// CA certificate parameters for `name`: a random serial, the validity, and the SKI of `key`.
fn ca_params_named(
    name: DistinguishedName,
    key: &CaSigningKey,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name;
    params.serial_number = Some(random_serial()?);
    params.not_before = not_before;
    params.not_after = not_after;
    // SKI by RFC 5280 section 4.2.1.2 method 1, as OpenSSL computes it, so that
    // `subject_key_identifier()` gives the same value whether or not the extension is present.
    params.key_identifier_method =
        KeyIdMethod::PreSpecified(Sha1::digest(key.public_key_bits()).to_vec());
    Ok(params)
}

impl rcgen::PublicKeyData for CaSigningKey {
    fn der_bytes(&self) -> &[u8] {
        self.public_key_bits()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.algorithm() {
            KeyAlgorithm::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                &rcgen::PKCS_RSA_SHA256
            }
        }
    }
}

impl rcgen::SigningKey for CaSigningKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // Same pairing as `rcgen::PublicKeyData::algorithm` above.
        CaSigningKey::sign(self, self.algorithm().default_signature_algorithm(), msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// The issuing key in `paths`: the token key `pkcs11.json` names (PIN from the environment),
/// else `issuing.key`.
fn load_key(
    paths: &CaPaths,
    token: Option<&Pkcs11Config>,
    passphrase: Option<&CaPassphrase>,
) -> Result<CaSigningKey, CaError> {
    match token {
        Some(config) => Ok(CaSigningKey::from_pkcs11(pkcs11::Pkcs11Key::open(
            config,
            &Pkcs11Pin::from_env()?,
        )?)),
        None => {
            let key_text = zeroize::Zeroizing::new(read_text(&paths.issuing_key)?);
            CaSigningKey::from_pem(&key_text, &paths.issuing_key, passphrase)
        }
    }
}

/// Where an imported CA's key comes from.
enum ImportKey<'a> {
    /// A PEM key file.
    Pem(&'a Path),
    /// A key already in a PKCS#11 token.
    Pkcs11(Pkcs11Config, &'a Pkcs11Pin),
}

/// The issuing CA loaded and ready to sign. `Send + Sync`: workers share it behind `&` or
/// `Arc`.
pub struct IssuingCa {
    key: CaSigningKey,
    certificate_der: Vec<u8>,
    subject_der: Vec<u8>,
    subject_key_identifier: Vec<u8>,
    /// Issuing CA certificate first, then its issuers.
    chain_der: Vec<Vec<u8>>,
    chain_pem: String,
    not_after_unix: i64,
    common_name: String,
}

impl fmt::Debug for IssuingCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuingCa")
            .field("common_name", &self.common_name)
            .field("key", &self.key)
            .field("chain_len", &self.chain_der.len())
            .finish_non_exhaustive()
    }
}

impl IssuingCa {
    /// Creates a new root CA and an issuing CA signed by it in `<data_dir>/ca/`. Refuses to
    /// overwrite an existing CA ([`CaError::AlreadyExists`]); on failure it removes what it
    /// wrote.
    pub fn init(data_dir: &Path, options: &CaInitOptions) -> Result<IssuingCa, CaError> {
        Self::init_in(&data_dir.join("ca"), options)
    }

    /// As [`IssuingCa::init`], in `dir` instead of `<data_dir>/ca/` (a named issuer's
    /// directory).
    pub fn init_in(dir: &Path, options: &CaInitOptions) -> Result<IssuingCa, CaError> {
        if !(1..=100).contains(&options.root_years) {
            return Err(CaError::InvalidOption {
                option: "root_years",
                reason: "must be between 1 and 100",
            });
        }
        if options.issuing_years == 0 || options.issuing_years > options.root_years {
            return Err(CaError::InvalidOption {
                option: "issuing_years",
                reason: "must be at least 1 and at most root_years",
            });
        }
        if options.organization.trim().is_empty() {
            return Err(CaError::InvalidOption {
                option: "organization",
                reason: "must not be empty",
            });
        }
        let paths = CaPaths::at(dir);
        paths.ensure_absent()?;

        let prefix = if options.common_name_prefix.trim().is_empty() {
            options.organization.as_str()
        } else {
            options.common_name_prefix.as_str()
        };
        let (root_key, issuing_key) = match &options.pkcs11 {
            Some((config, pin)) => {
                let root = Pkcs11Config {
                    key_label: format!("{}-root", config.key_label),
                    ..config.clone()
                };
                (
                    CaSigningKey::from_pkcs11(pkcs11::Pkcs11Key::generate(
                        &root,
                        pin,
                        options.algorithm,
                    )?),
                    CaSigningKey::from_pkcs11(pkcs11::Pkcs11Key::generate(
                        config,
                        pin,
                        options.algorithm,
                    )?),
                )
            }
            None => (
                CaSigningKey::generate(options.algorithm)?,
                CaSigningKey::generate(options.algorithm)?,
            ),
        };

        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .map_err(|_| CaError::InvalidOption {
                option: "clock",
                reason: "the system time is out of range",
            })?;
        // One hour of margin for relying parties whose clocks are behind.
        let not_before = now - Duration::hours(1);
        let generation = |source| CaError::CertificateGeneration { source };

        let mut root_params = ca_params(
            &options.organization,
            format!("{prefix} Root CA"),
            &root_key,
            not_before,
            years_after(now, options.root_years)?,
        )?;
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_cert = root_params.self_signed(&root_key).map_err(generation)?;

        let mut issuing_params = ca_params(
            &options.organization,
            format!("{prefix} Issuing CA 1"),
            &issuing_key,
            not_before,
            years_after(now, options.issuing_years)?,
        )?;
        issuing_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        issuing_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        issuing_params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_params(&root_params, &root_key);
        let issuing_cert = issuing_params
            .signed_by(&issuing_key, &issuer)
            .map_err(generation)?;

        let issuing = ParsedCertificate::from_der(issuing_cert.der().to_vec(), &paths.issuing_crt)?;
        let root = ParsedCertificate::from_der(root_cert.der().to_vec(), &paths.root_crt)?;

        create_ca_dir(&paths.dir)?;
        let mut files = NewFiles::new();
        match issuing_key.pkcs11_config() {
            // The keys stay in the token; the file only says where.
            Some(config) => {
                files.write(
                    &paths.pkcs11,
                    pkcs11::config_json(config)?.as_bytes(),
                    CERT_FILE_MODE,
                )?;
            }
            None => {
                let passphrase = options.passphrase.as_ref();
                let root_key_pem = root_key.to_pem(passphrase, &paths.root_key)?;
                let issuing_key_pem = issuing_key.to_pem(passphrase, &paths.issuing_key)?;
                files.write(&paths.root_key, root_key_pem.as_bytes(), KEY_FILE_MODE)?;
                files.write(
                    &paths.issuing_key,
                    issuing_key_pem.as_bytes(),
                    KEY_FILE_MODE,
                )?;
            }
        }
        files.write(&paths.root_crt, root_cert.pem().as_bytes(), CERT_FILE_MODE)?;
        files.write(
            &paths.issuing_crt,
            issuing_cert.pem().as_bytes(),
            CERT_FILE_MODE,
        )?;
        let ca = Self::assemble(issuing, issuing_key, vec![root], &paths)?;
        files.write(&paths.chain_pem, ca.chain_pem.as_bytes(), CERT_FILE_MODE)?;
        files.commit(&paths.dir)?;
        Ok(ca)
    }

    /// Imports an existing issuing CA: its certificate (PEM; further certificates in the same
    /// file are taken as the chain when `chain_pem` is `None`), its private key (PKCS#8,
    /// encrypted PKCS#8, SEC1 or PKCS#1 PEM) and optionally the chain above it (PEM, the
    /// certificate's issuer first).
    ///
    /// Checks that the key matches the certificate, that the certificate is a CA, and that
    /// each certificate is signed by the next one in the chain. Stores the key as PKCS#8 PEM,
    /// encrypted with `passphrase` when given (which also decrypts an encrypted input key),
    /// `chain.pem` as the issuing certificate plus the chain, and `root.crt` when the chain
    /// ends in a self-signed certificate.
    pub fn import(
        data_dir: &Path,
        cert_pem: &Path,
        key_pem: &Path,
        chain_pem: Option<&Path>,
        passphrase: Option<&CaPassphrase>,
    ) -> Result<IssuingCa, CaError> {
        Self::import_into(
            &data_dir.join("ca"),
            cert_pem,
            key_pem,
            chain_pem,
            passphrase,
        )
    }

    /// As [`IssuingCa::import`], into `dir` instead of `<data_dir>/ca/`.
    pub fn import_into(
        dir: &Path,
        cert_pem: &Path,
        key_pem: &Path,
        chain_pem: Option<&Path>,
        passphrase: Option<&CaPassphrase>,
    ) -> Result<IssuingCa, CaError> {
        Self::import_key(
            dir,
            cert_pem,
            ImportKey::Pem(key_pem),
            chain_pem,
            passphrase,
        )
    }

    /// Imports an existing issuing CA whose key is already in a PKCS#11 token (a maker's HSM):
    /// as [`IssuingCa::import`], but the key is found in the token by its label and stays
    /// there; `pkcs11.json` records where.
    pub fn import_pkcs11(
        data_dir: &Path,
        cert_pem: &Path,
        config: Pkcs11Config,
        pin: &Pkcs11Pin,
        chain_pem: Option<&Path>,
    ) -> Result<IssuingCa, CaError> {
        Self::import_pkcs11_into(&data_dir.join("ca"), cert_pem, config, pin, chain_pem)
    }

    /// As [`IssuingCa::import_pkcs11`], into `dir` instead of `<data_dir>/ca/`.
    pub fn import_pkcs11_into(
        dir: &Path,
        cert_pem: &Path,
        config: Pkcs11Config,
        pin: &Pkcs11Pin,
        chain_pem: Option<&Path>,
    ) -> Result<IssuingCa, CaError> {
        Self::import_key(
            dir,
            cert_pem,
            ImportKey::Pkcs11(config, pin),
            chain_pem,
            None,
        )
    }

    fn import_key(
        dir: &Path,
        cert_pem: &Path,
        key_source: ImportKey<'_>,
        chain_pem: Option<&Path>,
        passphrase: Option<&CaPassphrase>,
    ) -> Result<IssuingCa, CaError> {
        let paths = CaPaths::at(dir);
        paths.ensure_absent()?;

        let mut certificates = x509::pem_certificates(&read_text(cert_pem)?, cert_pem)?;
        let mut chain_source = cert_pem;
        let chain_der = match chain_pem {
            Some(path) => {
                chain_source = path;
                x509::pem_certificates(&read_text(path)?, path)?
            }
            None => certificates.split_off(1),
        };
        let issuing_der = certificates.swap_remove(0);
        let issuing = ParsedCertificate::from_der(issuing_der, cert_pem)?;
        issuing.check_is_ca(cert_pem)?;

        let (key, key_name) = match key_source {
            ImportKey::Pem(key_pem) => (
                CaSigningKey::from_pem(&read_text(key_pem)?, key_pem, passphrase)?,
                key_pem.to_path_buf(),
            ),
            ImportKey::Pkcs11(config, pin) => {
                // RFC 7512 names the key in errors.
                let name = PathBuf::from(format!(
                    "pkcs11:token={};object={}",
                    config.token, config.key_label
                ));
                (
                    CaSigningKey::from_pkcs11(pkcs11::Pkcs11Key::open(&config, pin)?),
                    name,
                )
            }
        };
        if key.public_key_bits() != issuing.public_key_bits() {
            return Err(CaError::KeyMismatch {
                certificate: cert_pem.to_path_buf(),
                key: key_name,
            });
        }

        let chain = chain_der
            .into_iter()
            .map(|der| ParsedCertificate::from_der(der, chain_source))
            .collect::<Result<Vec<_>, _>>()?;
        let mut subject = &issuing;
        for (position, issuer) in chain.iter().enumerate() {
            if !subject.is_signed_by(issuer, chain_source)? {
                return Err(CaError::ChainMismatch {
                    path: chain_source.to_path_buf(),
                    position,
                });
            }
            subject = issuer;
        }
        let root_der = match chain.last() {
            Some(last) if last.is_self_issued() && last.is_signed_by(last, chain_source)? => {
                Some(last.der().to_vec())
            }
            _ => None,
        };

        let issuing_pem =
            x509::certificates_pem([issuing.der()]).map_err(|source| CaError::Certificate {
                path: paths.issuing_crt.clone(),
                source,
            })?;

        create_ca_dir(&paths.dir)?;
        let mut files = NewFiles::new();
        match key.pkcs11_config() {
            Some(config) => files.write(
                &paths.pkcs11,
                pkcs11::config_json(config)?.as_bytes(),
                CERT_FILE_MODE,
            )?,
            None => {
                let key_pem_text = key.to_pem(passphrase, &paths.issuing_key)?;
                files.write(&paths.issuing_key, key_pem_text.as_bytes(), KEY_FILE_MODE)?;
            }
        }
        files.write(&paths.issuing_crt, issuing_pem.as_bytes(), CERT_FILE_MODE)?;
        if let Some(root_der) = root_der {
            let root_pem = x509::certificates_pem([root_der.as_slice()]).map_err(|source| {
                CaError::Certificate {
                    path: paths.root_crt.clone(),
                    source,
                }
            })?;
            files.write(&paths.root_crt, root_pem.as_bytes(), CERT_FILE_MODE)?;
        }
        let ca = Self::assemble(issuing, key, chain, &paths)?;
        files.write(&paths.chain_pem, ca.chain_pem.as_bytes(), CERT_FILE_MODE)?;
        files.commit(&paths.dir)?;
        Ok(ca)
    }

    /// Loads the issuing CA from `<data_dir>/ca/`. [`CaError::NotFound`] if there is none,
    /// [`CaError::PassphraseRequired`] if the key is encrypted and no passphrase was given,
    /// [`CaError::WrongPassphrase`] if it does not decrypt the key.
    ///
    /// A CA whose key is in a PKCS#11 token (`<data_dir>/ca/pkcs11.json`) logs in with the PIN
    /// from `CERTMILL_PKCS11_PIN_FILE` (a file) or `CERTMILL_PKCS11_PIN`.
    pub fn load(data_dir: &Path, passphrase: Option<&CaPassphrase>) -> Result<IssuingCa, CaError> {
        Self::load_from(&data_dir.join("ca"), passphrase)
    }

    /// As [`IssuingCa::load`], from `dir` instead of `<data_dir>/ca/` (a signer's directory).
    pub fn load_from(dir: &Path, passphrase: Option<&CaPassphrase>) -> Result<IssuingCa, CaError> {
        let paths = CaPaths::at(dir);
        let token = pkcs11::read_config(&paths.pkcs11)?;
        let needed: &[&PathBuf] = if token.is_some() {
            &[&paths.issuing_crt]
        } else {
            &[&paths.issuing_crt, &paths.issuing_key]
        };
        for path in needed {
            if !path.exists() {
                return Err(CaError::NotFound((*path).clone()));
            }
        }
        let certificates =
            x509::pem_certificates(&read_text(&paths.issuing_crt)?, &paths.issuing_crt)?;
        let mut certificates = certificates.into_iter();
        let issuing = match certificates.next() {
            Some(der) => ParsedCertificate::from_der(der, &paths.issuing_crt)?,
            // `pem_certificates` returns at least one certificate or an error.
            None => {
                return Err(CaError::PemMissing {
                    path: paths.issuing_crt.clone(),
                    expected: "CERTIFICATE",
                })
            }
        };
        issuing.check_is_ca(&paths.issuing_crt)?;

        let key = load_key(&paths, token.as_ref(), passphrase)?;
        if key.public_key_bits() != issuing.public_key_bits() {
            return Err(CaError::KeyMismatch {
                certificate: paths.issuing_crt.clone(),
                key: paths.issuing_key.clone(),
            });
        }

        let chain = if paths.chain_pem.exists() {
            let mut der = x509::pem_certificates(&read_text(&paths.chain_pem)?, &paths.chain_pem)?;
            if der.first().map(Vec::as_slice) == Some(issuing.der()) {
                der.remove(0);
            }
            der.into_iter()
                .map(|d| ParsedCertificate::from_der(d, &paths.chain_pem))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Self::assemble(issuing, key, chain, &paths)
    }

    /// Whether `<data_dir>/ca/` holds an issuing CA certificate or key.
    pub fn exists(data_dir: &Path) -> bool {
        let paths = CaPaths::new(data_dir);
        paths.issuing_crt.exists() || paths.issuing_key.exists() || paths.pkcs11.exists()
    }

    fn assemble(
        issuing: ParsedCertificate,
        key: CaSigningKey,
        chain: Vec<ParsedCertificate>,
        paths: &CaPaths,
    ) -> Result<IssuingCa, CaError> {
        let subject_key_identifier = issuing.subject_key_identifier(&paths.issuing_crt)?;
        let subject_der = issuing.subject_der().to_vec();
        let not_after_unix = issuing.not_after_unix();
        let common_name = issuing.common_name();
        let chain_der: Vec<Vec<u8>> = std::iter::once(issuing)
            .chain(chain)
            .map(ParsedCertificate::into_der)
            .collect();
        let chain_pem =
            x509::certificates_pem(chain_der.iter().map(Vec::as_slice)).map_err(|source| {
                CaError::Certificate {
                    path: paths.chain_pem.clone(),
                    source,
                }
            })?;
        Ok(IssuingCa {
            key,
            certificate_der: chain_der[0].clone(),
            subject_der,
            subject_key_identifier,
            chain_der,
            chain_pem,
            not_after_unix,
            common_name,
        })
    }

    /// Algorithm of the issuing CA key.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key.algorithm()
    }

    /// The issuing CA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// Full DER of the issuing certificate's subject Name, the exact bytes from the
    /// certificate (a leaf's issuer field).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The issuing certificate's subjectKeyIdentifier; if it has none, RFC 5280 section
    /// 4.2.1.2 method 1 (SHA-1 of the subjectPublicKey bits). A leaf's authorityKeyIdentifier.
    pub fn subject_key_identifier(&self) -> &[u8] {
        &self.subject_key_identifier
    }

    /// DER certificates: the issuing CA first, then its issuers up to and including the root
    /// when known.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// [`IssuingCa::chain_der`] as PEM.
    pub fn chain_pem(&self) -> String {
        self.chain_pem.clone()
    }

    /// The issuing certificate's notAfter as Unix seconds (leaves must not outlive it).
    pub fn not_after_unix(&self) -> i64 {
        self.not_after_unix
    }

    /// Signs `tbs_der`: the signature value bytes (ECDSA: DER `Ecdsa-Sig-Value`; RSA: PKCS#1
    /// v1.5). [`CaError::AlgorithmMismatch`] if `algorithm` does not fit the CA key.
    pub fn sign(&self, algorithm: SignatureAlgorithm, tbs_der: &[u8]) -> Result<Vec<u8>, CaError> {
        self.key.sign(algorithm, tbs_der)
    }

    /// Signs a message given by its digest, computed by the caller in pieces (a CRL streamed
    /// from the store never sits in memory whole). The digest must be of
    /// [`SignatureAlgorithm::digest_algorithm`]; otherwise, or when `algorithm` does not fit
    /// the CA key, [`CaError::AlgorithmMismatch`].
    pub fn sign_digest(
        &self,
        algorithm: SignatureAlgorithm,
        digest: &aws_lc_rs::digest::Digest,
    ) -> Result<Vec<u8>, CaError> {
        self.key.sign_digest(algorithm, digest)
    }

    /// The signature algorithm the CA signs its CRLs and OCSP responder certificates with:
    /// the key's default (ECDSA with the curve's hash, or sha256WithRSAEncryption).
    pub fn default_signature_algorithm(&self) -> SignatureAlgorithm {
        self.key.algorithm().default_signature_algorithm()
    }

    /// The issuing certificate's subjectPublicKey BIT STRING contents (for OCSP CertID key
    /// hashes and key identifiers).
    pub fn public_key_bits(&self) -> &[u8] {
        self.key.public_key_bits()
    }

    /// One line: subject CN, key algorithm, notAfter and SKI in hex.
    pub fn describe(&self) -> String {
        let not_after = OffsetDateTime::from_unix_timestamp(self.not_after_unix)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| self.not_after_unix.to_string());
        let ski: String = self
            .subject_key_identifier
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            "{} ({}), not after {not_after}, SKI {ski}",
            self.common_name,
            self.key.algorithm()
        )
    }
}
