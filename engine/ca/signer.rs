//! Signers on disk: a new issuing key certified by an issuer's local root (rotation), the same
//! key certified again (renewal), a key with a CSR for an external root, and installing the
//! certificate that root returns.
//!
//! A signer lives in its own directory with the files of [`super::CaPaths`]: `issuing.key` (or
//! `pkcs11.json`), `issuing.crt`, `chain.pem`, and `issuing.csr` while it waits for an external
//! root. A local root is `root.crt` and `root.key` (or the token key `<label>-root`) in the
//! issuer's first directory. Every file is written before the store records the signer, and a
//! failed operation removes what it wrote; a certificate replaced by a renewal is swapped in by
//! rename, so a reader sees the old or the new one, never half of either.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer,
    KeyIdMethod, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};
use x509_cert::der::{Decode, Tag, Tagged};

use super::key::CaSigningKey;
use super::pkcs11::{self, Pkcs11Config, Pkcs11Pin};
use super::x509::{self, ParsedCertificate};
use super::{
    create_ca_dir, read_text, years_after, CaError, CaPassphrase, CaPaths, IssuingCa, NewFiles,
    CERT_FILE_MODE, KEY_FILE_MODE,
};
use crate::keys::KeyAlgorithm;

const COMMON_NAME: [u64; 4] = [2, 5, 4, 3];

/// What a new signer looks like.
#[derive(Debug)]
pub struct SignerOptions {
    /// Its subject commonName (seed 004's signer name).
    pub common_name: String,
    /// The rest of its subject.
    pub subject: SignerSubject,
    /// Key algorithm.
    pub algorithm: KeyAlgorithm,
    /// Validity in years; the certificate still ends no later than its root.
    pub years: u32,
    /// Encrypts the key file when set.
    pub passphrase: Option<CaPassphrase>,
    /// Generates the key in this PKCS#11 token (under the configured label) instead.
    pub pkcs11: Option<(Pkcs11Config, Pkcs11Pin)>,
}

/// Where a new signer's subject comes from, besides its commonName.
#[derive(Clone, Debug)]
pub enum SignerSubject {
    /// The attributes of this DER Name other than commonName (the previous signer's subject),
    /// so a rotated signer stays in its organization.
    Like(Vec<u8>),
    /// organizationName only (an issuer's first signer for an external root).
    Organization(String),
}

impl SignerSubject {
    /// The subject with `common_name` as its commonName (replacing the template's, or last).
    fn with_common_name(&self, common_name: &str) -> Result<DistinguishedName, CaError> {
        let cn = DnType::from_oid(&COMMON_NAME);
        let mut name = match self {
            SignerSubject::Like(der) => {
                let mut name = distinguished_name(der)?;
                name.remove(cn.clone());
                name
            }
            SignerSubject::Organization(organization) => {
                let mut name = DistinguishedName::new();
                name.push(DnType::OrganizationName, organization.as_str());
                name
            }
        };
        name.push(cn, DnValue::Utf8String(common_name.to_owned()));
        Ok(name)
    }
}

/// An issuer's local root: the CA that certifies its signers.
pub struct RootCa {
    key: CaSigningKey,
    certificate: ParsedCertificate,
    path: PathBuf,
}

impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa")
            .field("path", &self.path)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RootCa {
    /// Loads the root in `dir`: `root.crt`, and `root.key` or, when `pkcs11.json` is there,
    /// the token key labelled `<label>-root` (PIN from the environment).
    /// [`CaError::NotFound`] when `dir` holds no root key (an imported CA: its root is
    /// elsewhere).
    pub fn load(dir: &Path, passphrase: Option<&CaPassphrase>) -> Result<RootCa, CaError> {
        let paths = CaPaths::at(dir);
        if !paths.root_crt.exists() {
            return Err(CaError::NotFound(paths.root_crt));
        }
        let key = match pkcs11::read_config(&paths.pkcs11)? {
            Some(config) => {
                let root = Pkcs11Config {
                    key_label: format!("{}-root", config.key_label),
                    ..config
                };
                CaSigningKey::from_pkcs11(pkcs11::Pkcs11Key::open(&root, &Pkcs11Pin::from_env()?)?)
            }
            None => {
                if !paths.root_key.exists() {
                    return Err(CaError::NotFound(paths.root_key));
                }
                let text = zeroize::Zeroizing::new(read_text(&paths.root_key)?);
                CaSigningKey::from_pem(&text, &paths.root_key, passphrase)?
            }
        };
        let der =
            x509::pem_certificates(&read_text(&paths.root_crt)?, &paths.root_crt)?.swap_remove(0);
        let certificate = ParsedCertificate::from_der(der, &paths.root_crt)?;
        certificate.check_is_ca(&paths.root_crt)?;
        if key.public_key_bits() != certificate.public_key_bits() {
            return Err(CaError::KeyMismatch {
                certificate: paths.root_crt,
                key: paths.root_key,
            });
        }
        Ok(RootCa {
            key,
            certificate,
            path: paths.root_crt,
        })
    }

    /// Whether `dir` holds a root certificate (a local root).
    pub fn exists(dir: &Path) -> bool {
        CaPaths::at(dir).root_crt.exists()
    }

    /// The root certificate's notAfter, unix seconds.
    pub fn not_after_unix(&self) -> i64 {
        self.certificate.not_after_unix()
    }

    /// Signs `params` for `subject_key` and checks the result chains to this root.
    fn certify(
        &self,
        params: &CertificateParams,
        subject_key: &CaSigningKey,
    ) -> Result<ParsedCertificate, CaError> {
        let mut issuer_params = CertificateParams::default();
        issuer_params.distinguished_name = distinguished_name(self.certificate.subject_der())?;
        issuer_params.key_identifier_method =
            KeyIdMethod::PreSpecified(self.certificate.subject_key_identifier(&self.path)?);
        issuer_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = Issuer::new(issuer_params, &self.key);
        let certificate = params
            .signed_by(subject_key, &issuer)
            .map_err(|source| CaError::CertificateGeneration { source })?;
        let parsed = ParsedCertificate::from_der(certificate.der().to_vec(), &self.path)?;
        // rcgen re-encodes the root's name; a name it cannot reproduce byte for byte would
        // make a certificate no verifier chains to this root.
        if parsed.issuer_der() != self.certificate.subject_der()
            || !parsed.is_signed_by(&self.certificate, &self.path)?
        {
            return Err(CaError::NameNotReproducible {
                path: self.path.clone(),
            });
        }
        Ok(parsed)
    }
}

/// An rcgen name with the attributes of the DER Name `der`, in order, each with its string
/// type; `CaError::NameNotReproducible` for a value rcgen cannot carry.
fn distinguished_name(der: &[u8]) -> Result<DistinguishedName, CaError> {
    let unsupported = || CaError::NameNotReproducible {
        path: PathBuf::from("subject"),
    };
    let name = x509_cert::name::Name::from_der(der).map_err(|source| CaError::Certificate {
        path: PathBuf::from("subject"),
        source,
    })?;
    let mut out = DistinguishedName::new();
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            let arcs: Vec<u64> = atv.oid.arcs().map(u64::from).collect();
            let text = String::from_utf8(atv.value.value().to_vec()).map_err(|_| unsupported())?;
            let value = match atv.value.tag() {
                Tag::PrintableString => DnValue::PrintableString(
                    rcgen::string::PrintableString::try_from(text).map_err(|_| unsupported())?,
                ),
                Tag::Utf8String => DnValue::Utf8String(text),
                Tag::Ia5String => DnValue::Ia5String(
                    rcgen::string::Ia5String::try_from(text).map_err(|_| unsupported())?,
                ),
                Tag::TeletexString => DnValue::TeletexString(
                    rcgen::string::TeletexString::try_from(text).map_err(|_| unsupported())?,
                ),
                _ => return Err(unsupported()),
            };
            out.push(DnType::from_oid(&arcs), value);
        }
    }
    Ok(out)
}

/// Parameters of a signer certificate: a CA that signs only leaves (pathLen 0), with
/// digitalSignature (OCSP responder certificates), keyCertSign and cRLSign.
fn signer_params(
    name: DistinguishedName,
    key: &CaSigningKey,
    years: u32,
    root: &RootCa,
) -> Result<CertificateParams, CaError> {
    if years == 0 || years > 100 {
        return Err(CaError::InvalidOption {
            option: "years",
            reason: "must be between 1 and 100",
        });
    }
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|_| CaError::InvalidOption {
            option: "clock",
            reason: "the system time is out of range",
        })?;
    let root_end = OffsetDateTime::from_unix_timestamp(root.not_after_unix()).map_err(|_| {
        CaError::InvalidOption {
            option: "years",
            reason: "the root's validity end is out of range",
        }
    })?;
    if root_end <= now {
        return Err(CaError::InvalidOption {
            option: "root",
            reason: "the root certificate has expired",
        });
    }
    let not_after = years_after(now, years)?.min(root_end);
    let mut params = super::ca_params_named(name, key, now - Duration::hours(1), not_after)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// A new key as `options` says: in the token, or in memory (then written to a key file).
fn new_key(options: &SignerOptions) -> Result<CaSigningKey, CaError> {
    match &options.pkcs11 {
        Some((config, pin)) => Ok(CaSigningKey::from_pkcs11(pkcs11::Pkcs11Key::generate(
            config,
            pin,
            options.algorithm,
        )?)),
        None => CaSigningKey::generate(options.algorithm),
    }
}

/// Writes the key file (or `pkcs11.json`) of a new signer.
fn write_key(
    files: &mut NewFiles,
    paths: &CaPaths,
    key: &CaSigningKey,
    passphrase: Option<&CaPassphrase>,
) -> Result<(), CaError> {
    match key.pkcs11_config() {
        Some(config) => files.write(
            &paths.pkcs11,
            pkcs11::config_json(config)?.as_bytes(),
            CERT_FILE_MODE,
        ),
        None => {
            let pem = key.to_pem(passphrase, &paths.issuing_key)?;
            files.write(&paths.issuing_key, pem.as_bytes(), KEY_FILE_MODE)
        }
    }
}

/// Replaces `path` with `contents` atomically (temporary file, fsync, rename).
fn replace_file(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    let io_error = |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let temporary = path.with_extension("tmp");
    let mut file = fs::File::create(&temporary).map_err(io_error)?;
    file.write_all(contents).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    fs::rename(&temporary, path).map_err(io_error)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error)?;
    }
    Ok(())
}

impl IssuingCa {
    /// Creates a signer in the new directory `dir`: a fresh key certified by `root`, subject
    /// `options.subject_template` with `options.common_name`. Refuses a directory that already
    /// holds CA files; on failure removes what it wrote (a token key it generated stays in the
    /// token under its label).
    pub fn create_signer(
        root: &RootCa,
        dir: &Path,
        options: &SignerOptions,
    ) -> Result<IssuingCa, CaError> {
        let paths = CaPaths::at(dir);
        paths.ensure_absent()?;
        let name = options.subject.with_common_name(&options.common_name)?;
        let key = new_key(options)?;
        let params = signer_params(name, &key, options.years, root)?;
        let certificate = root.certify(&params, &key)?;
        create_ca_dir(&paths.dir)?;
        let mut files = NewFiles::new();
        write_key(&mut files, &paths, &key, options.passphrase.as_ref())?;
        Self::write_certificate(&mut files, &paths, &certificate)?;
        let root_copy = ParsedCertificate::from_der(root.certificate.der().to_vec(), &root.path)?;
        let ca = Self::assemble(certificate, key, vec![root_copy], &paths)?;
        files.write(&paths.chain_pem, ca.chain_pem.as_bytes(), CERT_FILE_MODE)?;
        files.commit(&paths.dir)?;
        Ok(ca)
    }

    fn write_certificate(
        files: &mut NewFiles,
        paths: &CaPaths,
        certificate: &ParsedCertificate,
    ) -> Result<(), CaError> {
        let pem =
            x509::certificates_pem([certificate.der()]).map_err(|source| CaError::Certificate {
                path: paths.issuing_crt.clone(),
                source,
            })?;
        files.write(&paths.issuing_crt, pem.as_bytes(), CERT_FILE_MODE)
    }

    /// Creates a signer waiting for an external root in the new directory `dir`: a fresh key
    /// and `issuing.csr` (PKCS#10, PEM), which it returns. [`IssuingCa::install`] takes the
    /// certificate the root makes from it.
    pub fn create_request(dir: &Path, options: &SignerOptions) -> Result<String, CaError> {
        let paths = CaPaths::at(dir);
        paths.ensure_absent()?;
        let name = options.subject.with_common_name(&options.common_name)?;
        let key = new_key(options)?;
        let csr = request_pem(name, &key)?;
        create_ca_dir(&paths.dir)?;
        let mut files = NewFiles::new();
        write_key(&mut files, &paths, &key, options.passphrase.as_ref())?;
        files.write(&paths.issuing_csr, csr.as_bytes(), CERT_FILE_MODE)?;
        files.commit(&paths.dir)?;
        Ok(csr)
    }

    /// A CSR for the signer in `dir` (same key, same subject) for an external root to renew
    /// its certificate; also written to `issuing.csr`.
    pub fn renewal_request(&self, dir: &Path) -> Result<String, CaError> {
        let paths = CaPaths::at(dir);
        let csr = request_pem(distinguished_name(&self.subject_der)?, &self.key)?;
        replace_file(&paths.issuing_csr, csr.as_bytes())?;
        Ok(csr)
    }

    /// Renews the signer in `dir`: the same key and subject in a new certificate from `root`
    /// valid for `years` from now (at most to the root's end). `issuing.crt` and `chain.pem`
    /// are replaced atomically; certificates the signer issued before still chain to it (same
    /// name, same key).
    pub fn renew(
        dir: &Path,
        root: &RootCa,
        years: u32,
        passphrase: Option<&CaPassphrase>,
    ) -> Result<IssuingCa, CaError> {
        let current = Self::load_from(dir, passphrase)?;
        let paths = CaPaths::at(dir);
        let name = distinguished_name(&current.subject_der)?;
        let params = signer_params(name, &current.key, years, root)?;
        let certificate = root.certify(&params, &current.key)?;
        if certificate.subject_der() != current.subject_der.as_slice() {
            return Err(CaError::NameNotReproducible {
                path: paths.issuing_crt,
            });
        }
        let root_copy = ParsedCertificate::from_der(root.certificate.der().to_vec(), &root.path)?;
        let ca = Self::assemble(certificate, current.key, vec![root_copy], &paths)?;
        let pem = x509::certificates_pem([ca.certificate_der.as_slice()]).map_err(|source| {
            CaError::Certificate {
                path: paths.issuing_crt.clone(),
                source,
            }
        })?;
        replace_file(&paths.issuing_crt, pem.as_bytes())?;
        replace_file(&paths.chain_pem, ca.chain_pem.as_bytes())?;
        Ok(ca)
    }

    /// Installs a certificate (PEM; further certificates in the text are its chain) for the
    /// key in `dir`: the first certificate of a signer created by [`IssuingCa::create_request`]
    /// or a renewal by an external root. Checks it is a CA certificate for this key, that the
    /// chain verifies (the chain already installed is kept when none is given and it still
    /// verifies), and for a renewal that the subject is unchanged.
    pub fn install(
        dir: &Path,
        certificate_pem: &str,
        source: &Path,
        passphrase: Option<&CaPassphrase>,
    ) -> Result<IssuingCa, CaError> {
        let paths = CaPaths::at(dir);
        let mut certificates = x509::pem_certificates(certificate_pem, source)?;
        let given_chain = certificates.split_off(1);
        let issuing = ParsedCertificate::from_der(certificates.swap_remove(0), source)?;
        issuing.check_is_ca(source)?;
        let token = pkcs11::read_config(&paths.pkcs11)?;
        if token.is_none() && !paths.issuing_key.exists() {
            return Err(CaError::NotFound(paths.issuing_key));
        }
        let key = super::load_key(&paths, token.as_ref(), passphrase)?;
        if key.public_key_bits() != issuing.public_key_bits() {
            return Err(CaError::KeyMismatch {
                certificate: source.to_path_buf(),
                key: if token.is_some() {
                    paths.pkcs11.clone()
                } else {
                    paths.issuing_key.clone()
                },
            });
        }
        let previous = if paths.issuing_crt.exists() {
            Some(Self::load_from(dir, passphrase)?)
        } else {
            None
        };
        if let Some(previous) = &previous {
            if previous.subject_der != issuing.subject_der() {
                return Err(CaError::SubjectChanged {
                    path: source.to_path_buf(),
                });
            }
        }
        let (chain_der, chain_source) = match (given_chain.is_empty(), &previous) {
            (false, _) | (true, None) => (given_chain, source.to_path_buf()),
            (true, Some(previous)) => (previous.chain_der[1..].to_vec(), paths.chain_pem.clone()),
        };
        let chain = chain_der
            .into_iter()
            .map(|der| ParsedCertificate::from_der(der, &chain_source))
            .collect::<Result<Vec<_>, _>>()?;
        let mut subject = &issuing;
        for (position, issuer) in chain.iter().enumerate() {
            if !subject.is_signed_by(issuer, &chain_source)? {
                return Err(CaError::ChainMismatch {
                    path: chain_source,
                    position,
                });
            }
            subject = issuer;
        }
        let ca = Self::assemble(issuing, key, chain, &paths)?;
        let pem = x509::certificates_pem([ca.certificate_der.as_slice()]).map_err(|source| {
            CaError::Certificate {
                path: paths.issuing_crt.clone(),
                source,
            }
        })?;
        replace_file(&paths.chain_pem, ca.chain_pem.as_bytes())?;
        replace_file(&paths.issuing_crt, pem.as_bytes())?;
        match fs::remove_file(&paths.issuing_csr) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CaError::Io {
                    path: paths.issuing_csr,
                    source,
                })
            }
        }
        Ok(ca)
    }

    /// The CSR waiting in `dir` (a signer created by [`IssuingCa::create_request`], or a
    /// renewal request), PEM.
    pub fn pending_request(dir: &Path) -> Result<String, CaError> {
        let paths = CaPaths::at(dir);
        if !paths.issuing_csr.exists() {
            return Err(CaError::NotFound(paths.issuing_csr));
        }
        read_text(&paths.issuing_csr)
    }

    /// Where the key lives when it is in a PKCS#11 token.
    pub fn pkcs11_config(&self) -> Option<&Pkcs11Config> {
        self.key.pkcs11_config()
    }

    /// The issuing certificate's subject commonName (seed 004's signer name).
    pub fn common_name(&self) -> &str {
        &self.common_name
    }
}

/// A PKCS#10 request for `name` signed by `key`, PEM.
fn request_pem(name: DistinguishedName, key: &CaSigningKey) -> Result<String, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params
        .serialize_request(key)
        .and_then(|csr| csr.pem())
        .map_err(|source| CaError::CertificateGeneration { source })
}
