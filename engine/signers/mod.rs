//! Named issuers and their signers (seed 004, "Certificate Authority"), mapped onto certmill.
//!
//! An **issuer** is a named line of issuing CAs (seed 004's tenant): `default`, `rsa-line`, a
//! customer's name. A profile names the issuer it signs with (`Issuer.name`; `default` when
//! absent), and an organization reaches it through its authority for that profile. Each issuer
//! has **signers**: one issuing key with its certificate each, in the states of
//! [`SignerState`]. The ACTIVE signer is the issuer's `current` one and signs every new batch;
//! **rotating** creates a new key and certificate that becomes ACTIVE while the previous one is
//! RETIRED and keeps signing CRLs and OCSP responses for what it issued; **renewing** certifies
//! the same key again; a signer is deleted only once nothing it issued is still valid.
//!
//! Files live under the data directory (`ca/` for the `default` issuer's first signer and its
//! root, `issuers/<name>/` for another issuer's, `issuers/<name>/<signer id>/` for the signers
//! made by rotation); the store ([`crate::store::Store::add_signer`] and friends) records which
//! directory holds which signer, its state and an append-only log of every change. This module
//! joins the two: it writes the files first, then commits the record, and removes the files
//! again when the record fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ca::{
    CaError, CaInitOptions, CaPassphrase, IssuingCa, Pkcs11Config, Pkcs11Pin, RootCa,
    SignerOptions, SignerSubject,
};
use crate::keys::KeyAlgorithm;
use crate::store::{
    IssuerId, NewSigner, SignerCertificate, SignerRow, SignerState, Store, StoreError,
};

/// The issuer of profiles that name none, and of the CA `certmill ca init` makes without
/// `--name`.
pub const DEFAULT_ISSUER: &str = "default";

/// Validity of a signer certificate made by rotation or renewal unless told otherwise, years
/// (as `ca init`'s issuing CA; never beyond the root).
pub const DEFAULT_SIGNER_YEARS: u32 = 10;

/// Errors of the signer lifecycle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// A CA file operation failed.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An issuer name is not 1 to 64 of `a-z 0-9 . _ -` starting with a letter or digit.
    #[error("issuer name {0:?}: use 1 to 64 characters a-z, 0-9, '.', '_', '-', starting with a letter or digit")]
    InvalidName(String),
    /// The issuer already exists (`ca init|import --name` of a name in use).
    #[error(
        "issuer {0} already exists (rotate its signer instead: `certmill ca rotate --issuer {0}`)"
    )]
    IssuerExists(String),
    /// No signer of the issuer has a certificate and is ACTIVE.
    #[error("issuer {0} has no current signer (create one with `certmill ca init --name {0}`, or rotate it)")]
    NoCurrentSigner(String),
    /// No signer of this issuer matches the spec.
    #[error("issuer {issuer} has no signer {spec}")]
    NotFound {
        /// The issuer.
        issuer: String,
        /// The signer id or `current` asked for.
        spec: String,
    },
    /// A signer directory named by the store is missing or unreadable.
    #[error("signer {signer}: {source}")]
    Files {
        /// The signer's id.
        signer: String,
        /// Why its files could not be used.
        source: Box<CaError>,
    },
    /// Removing a deleted signer's files failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Checks an issuer name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit (it
/// names a directory and appears in URLs).
pub fn check_issuer_name(name: &str) -> Result<(), SignerError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(SignerError::InvalidName(name.to_owned()))
    }
}

/// A new ULID (26 characters of Crockford base32: 48 bits of milliseconds since 1970, then 80
/// random bits), seed 004's id format `^[0-7][0-9A-HJKMNP-TV-Z]{25}$`.
pub fn new_ulid() -> Result<String, crate::keys::KeyError> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut random = [0u8; 10];
    crate::keys::random_bytes(&mut random)?;
    // 128 bits: the 48-bit time above the 80 random bits.
    let mut value = (millis & 0xffff_ffff_ffff) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (8 * (9 - i));
    }
    let mut out = vec![0u8; 26];
    for (i, slot) in out.iter_mut().enumerate().rev() {
        let shift = 5 * (25 - i);
        *slot = ALPHABET[((value >> shift) & 31) as usize];
    }
    Ok(out.into_iter().map(char::from).collect())
}

/// Directory of an issuer's first signer and its root, relative to the data directory.
fn issuer_dir(name: &str) -> String {
    if name == DEFAULT_ISSUER {
        "ca".to_owned()
    } else {
        format!("issuers/{name}")
    }
}

/// A signer with a certificate, loaded and ready to sign.
#[derive(Debug, Clone)]
pub struct LoadedSigner {
    /// Its record.
    pub row: SignerRow,
    /// Its key and certificate.
    pub ca: Arc<IssuingCa>,
    issuer: IssuerId,
}

impl LoadedSigner {
    /// Pairs a record with its loaded files; `None` for a record without a registered
    /// certificate (a PENDING signer cannot sign).
    pub fn new(row: SignerRow, ca: Arc<IssuingCa>) -> Option<LoadedSigner> {
        let issuer = row.issuer?;
        Some(LoadedSigner { row, ca, issuer })
    }

    /// The signer's registration in the store: batches, serials and revocations are kept
    /// under it.
    pub fn issuer(&self) -> IssuerId {
        self.issuer
    }
}

/// The signers a process signs with: every ACTIVE and RETIRED signer of every issuer.
#[derive(Debug, Clone, Default)]
pub struct Signers {
    loaded: Vec<LoadedSigner>,
}

impl Signers {
    /// Loads the ACTIVE and RETIRED signers. A data directory whose CA predates signers
    /// (`<data>/ca/` and no signer record) is adopted first as the `default` issuer.
    pub fn load(
        data: &Path,
        store: &Store,
        passphrase: Option<&CaPassphrase>,
    ) -> Result<Signers, SignerError> {
        adopt_legacy(data, store, passphrase)?;
        let mut loaded = Vec::new();
        for row in store.signers(None)? {
            if !row.state.serves_revocation() || row.issuer.is_none() {
                continue;
            }
            let ca =
                IssuingCa::load_from(&data.join(&row.key_dir), passphrase).map_err(|source| {
                    SignerError::Files {
                        signer: row.id.clone(),
                        source: Box::new(source),
                    }
                })?;
            loaded.extend(LoadedSigner::new(row, Arc::new(ca)));
        }
        Ok(Signers { loaded })
    }

    /// The current (ACTIVE) signer of `issuer`.
    pub fn current(&self, issuer: &str) -> Option<&LoadedSigner> {
        self.loaded.iter().find(|s| {
            s.row.state == SignerState::Active && s.row.issuer_name.eq_ignore_ascii_case(issuer)
        })
    }

    /// The current signer of `issuer`, or [`SignerError::NoCurrentSigner`].
    pub fn require_current(&self, issuer: &str) -> Result<&LoadedSigner, SignerError> {
        self.current(issuer)
            .ok_or_else(|| SignerError::NoCurrentSigner(issuer.to_owned()))
    }

    /// The loaded signer registered as `issuer`.
    pub fn by_issuer(&self, issuer: IssuerId) -> Option<&LoadedSigner> {
        self.loaded.iter().find(|s| s.issuer == issuer)
    }

    /// Every loaded signer, by issuer name and age.
    pub fn all(&self) -> &[LoadedSigner] {
        &self.loaded
    }
}

/// Records `<data>/ca/` as the `default` issuer's signer when the store has no signer for
/// it yet (a data directory from before signers, or a CA just made by `ca init`). Returns the
/// record made, if any.
pub fn adopt_legacy(
    data: &Path,
    store: &Store,
    passphrase: Option<&CaPassphrase>,
) -> Result<Option<SignerRow>, SignerError> {
    let dir = data.join(issuer_dir(DEFAULT_ISSUER));
    if !IssuingCa::exists(data) || !store.signers(Some(DEFAULT_ISSUER))?.is_empty() {
        return Ok(None);
    }
    let ca = IssuingCa::load_from(&dir, passphrase)?;
    let root = RootCa::load(&dir, passphrase).is_ok();
    record(
        store,
        DEFAULT_ISSUER,
        &ca,
        &issuer_dir(DEFAULT_ISSUER),
        root,
        "system",
    )
    .map(Some)
}

/// Records a signer that has its certificate, ACTIVE.
fn record(
    store: &Store,
    issuer: &str,
    ca: &IssuingCa,
    key_dir: &str,
    local_root: bool,
    actor: &str,
) -> Result<SignerRow, SignerError> {
    let id = new_ulid().map_err(CaError::from)?;
    let algorithm = ca.key_algorithm().syntax();
    let root_dir = local_root.then(|| issuer_dir(issuer));
    let row = store.add_signer(
        &NewSigner {
            id: &id,
            issuer_name: issuer,
            name: ca.common_name(),
            algorithm,
            key_dir,
            root_dir: root_dir.as_deref(),
        },
        Some(&certificate_of(ca)),
        actor,
    )?;
    Ok(row)
}

fn certificate_of(ca: &IssuingCa) -> SignerCertificate<'_> {
    SignerCertificate {
        der: ca.certificate_der(),
        description: ca.describe(),
        not_after: ca.not_after_unix(),
    }
}

/// Removes a directory written for a signer whose record then failed (best effort: the
/// record's error is what the caller needs).
fn discard(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// `certmill ca init [--name N]`: a new issuer with a local root and its first signer.
pub fn init_issuer(
    data: &Path,
    store: &Store,
    issuer: &str,
    options: &CaInitOptions,
    actor: &str,
) -> Result<(SignerRow, IssuingCa), SignerError> {
    check_issuer_name(issuer)?;
    adopt_legacy(data, store, options.passphrase.as_ref())?;
    if !store.signers(Some(issuer))?.is_empty() {
        return Err(SignerError::IssuerExists(issuer.to_owned()));
    }
    let key_dir = issuer_dir(issuer);
    let dir = data.join(&key_dir);
    let ca = IssuingCa::init_in(&dir, options)?;
    match record(store, issuer, &ca, &key_dir, true, actor) {
        Ok(row) => Ok((row, ca)),
        Err(error) => {
            discard_files(&dir);
            Err(error)
        }
    }
}

/// Removes the CA files `init_in` or `import_into` wrote to `dir` (not the directory: for the
/// default issuer it is `<data>/ca/`).
fn discard_files(dir: &Path) {
    for file in [
        "root.crt",
        "root.key",
        "issuing.crt",
        "issuing.key",
        "chain.pem",
        crate::ca::PKCS11_FILE,
    ] {
        let _ = std::fs::remove_file(dir.join(file));
    }
}

/// Where an imported issuer's key comes from.
#[derive(Debug)]
pub enum ImportedKey<'a> {
    /// A key file (PEM).
    File(&'a Path),
    /// A key already in a PKCS#11 token.
    Pkcs11(Pkcs11Config, &'a Pkcs11Pin),
}

/// An existing issuing CA to import: its certificate (PEM; further certificates are its chain
/// when `chain` is `None`), its key, and the chain above it.
#[derive(Debug)]
pub struct Imported<'a> {
    /// The issuing CA certificate.
    pub cert: &'a Path,
    /// Its key.
    pub key: ImportedKey<'a>,
    /// The chain up to the root (PEM), if apart.
    pub chain: Option<&'a Path>,
}

/// `certmill ca import [--name N]`: an issuer whose first signer is an existing CA (its root is
/// external: rotation then makes a CSR for it).
pub fn import_issuer(
    data: &Path,
    store: &Store,
    issuer: &str,
    imported: Imported<'_>,
    passphrase: Option<&CaPassphrase>,
    actor: &str,
) -> Result<(SignerRow, IssuingCa), SignerError> {
    let Imported { cert, key, chain } = imported;
    check_issuer_name(issuer)?;
    adopt_legacy(data, store, passphrase)?;
    if !store.signers(Some(issuer))?.is_empty() {
        return Err(SignerError::IssuerExists(issuer.to_owned()));
    }
    let key_dir = issuer_dir(issuer);
    let dir = data.join(&key_dir);
    let ca = match key {
        ImportedKey::File(path) => IssuingCa::import_into(&dir, cert, path, chain, passphrase)?,
        ImportedKey::Pkcs11(config, pin) => {
            IssuingCa::import_pkcs11_into(&dir, cert, config, pin, chain)?
        }
    };
    match record(store, issuer, &ca, &key_dir, false, actor) {
        Ok(row) => Ok((row, ca)),
        Err(error) => {
            discard_files(&dir);
            Err(error)
        }
    }
}

/// `certmill ca init --name N --external-root`: a new issuer whose root is the maker's own
/// (kept outside certmill): its first signer is a key and a CSR, PENDING until [`install`]
/// takes the certificate the root makes from it. `options` gives the key (algorithm, file
/// passphrase or PKCS#11 token), the organization and the CA names' prefix.
pub fn request_issuer(
    data: &Path,
    store: &Store,
    issuer: &str,
    options: &CaInitOptions,
    actor: &str,
) -> Result<LifecycleOutcome, SignerError> {
    check_issuer_name(issuer)?;
    adopt_legacy(data, store, options.passphrase.as_ref())?;
    if !store.signers(Some(issuer))?.is_empty() {
        return Err(SignerError::IssuerExists(issuer.to_owned()));
    }
    if options.organization.trim().is_empty() {
        return Err(CaError::InvalidOption {
            option: "organization",
            reason: "must not be empty",
        }
        .into());
    }
    let prefix = if options.common_name_prefix.trim().is_empty() {
        options.organization.as_str()
    } else {
        options.common_name_prefix.as_str()
    };
    let signer_options = SignerOptions {
        common_name: format!("{prefix} Issuing CA 1"),
        subject: SignerSubject::Organization(options.organization.clone()),
        algorithm: options.algorithm,
        years: options.issuing_years,
        passphrase: options.passphrase.clone(),
        pkcs11: options.pkcs11.clone(),
    };
    let key_dir = issuer_dir(issuer);
    let dir = data.join(&key_dir);
    let csr = IssuingCa::create_request(&dir, &signer_options)?;
    let id = new_ulid().map_err(CaError::from)?;
    let new = NewSigner {
        id: &id,
        issuer_name: issuer,
        name: &signer_options.common_name,
        algorithm: options.algorithm.syntax(),
        key_dir: &key_dir,
        root_dir: None,
    };
    match store.add_signer(&new, None, actor) {
        Ok(signer) => Ok(LifecycleOutcome {
            signer,
            csr: Some(csr),
        }),
        Err(error) => {
            for file in ["issuing.key", "issuing.csr", crate::ca::PKCS11_FILE] {
                let _ = std::fs::remove_file(dir.join(file));
            }
            Err(error.into())
        }
    }
}

/// A signer id (ULID) or `current`, resolved within `issuer`.
pub fn resolve(store: &Store, issuer: &str, spec: &str) -> Result<SignerRow, SignerError> {
    let not_found = || SignerError::NotFound {
        issuer: issuer.to_owned(),
        spec: spec.to_owned(),
    };
    let row = if spec == "current" {
        store.current_signer(issuer)?
    } else {
        store.signer(&spec.to_ascii_uppercase())?
    };
    row.filter(|r| r.issuer_name.eq_ignore_ascii_case(issuer) && r.state != SignerState::Deleted)
        .ok_or_else(not_found)
}

/// What a rotation asks for.
#[derive(Debug, Default)]
pub struct RotateOptions {
    /// Name (commonName) of the new signer; by default the current one's name with its
    /// trailing number increased.
    pub name: Option<String>,
    /// Key algorithm; by default the current signer's.
    pub algorithm: Option<KeyAlgorithm>,
    /// Validity in years (default [`DEFAULT_SIGNER_YEARS`], never beyond the root).
    pub years: Option<u32>,
}

/// What a rotation or renewal did.
#[derive(Debug)]
pub struct LifecycleOutcome {
    /// The signer's record after it.
    pub signer: SignerRow,
    /// The CSR to take to the external root, when the issuer's root is not local (the signer
    /// is PENDING, or its renewal waits for `install`).
    pub csr: Option<String>,
}

/// The next name in a signer line: `... Issuing CA 1` → `... Issuing CA 2`.
fn next_name(previous: &str, count: usize) -> String {
    let base = previous
        .rsplit_once(' ')
        .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map_or(previous, |(base, _)| base);
    format!("{base} {}", count + 1)
}

/// Rotates `issuer` (seed 004 "create a new tenant signer"): a new key and certificate from the
/// issuer's local root become ACTIVE, the previous signer RETIRED. With an external root the new
/// signer is PENDING with a CSR until [`install`] takes its certificate; the current signer
/// stays ACTIVE meanwhile.
pub fn rotate(
    data: &Path,
    store: &Store,
    issuer: &str,
    options: &RotateOptions,
    passphrase: Option<&CaPassphrase>,
    actor: &str,
) -> Result<LifecycleOutcome, SignerError> {
    adopt_legacy(data, store, passphrase)?;
    let line = store.signers(Some(issuer))?;
    let template = line
        .iter()
        .rev()
        .find(|s| s.issuer.is_some() && s.state != SignerState::Pending)
        .ok_or_else(|| SignerError::NoCurrentSigner(issuer.to_owned()))?;
    let previous =
        IssuingCa::load_from(&data.join(&template.key_dir), passphrase).map_err(|source| {
            SignerError::Files {
                signer: template.id.clone(),
                source: Box::new(source),
            }
        })?;
    let id = new_ulid().map_err(CaError::from)?;
    let key_dir = format!(
        "issuers/{}/{}",
        template.issuer_name,
        id.to_ascii_lowercase()
    );
    let dir = data.join(&key_dir);
    let algorithm = options.algorithm.unwrap_or(previous.key_algorithm());
    let pkcs11 = match previous.pkcs11_config() {
        Some(config) => Some((
            Pkcs11Config {
                key_label: format!("{}-{}", config.key_label, id.to_ascii_lowercase()),
                ..config.clone()
            },
            Pkcs11Pin::from_env()?,
        )),
        None => None,
    };
    let signer_options = SignerOptions {
        common_name: options
            .name
            .clone()
            .unwrap_or_else(|| next_name(&template.name, line.len())),
        subject: SignerSubject::Like(previous.subject_der().to_vec()),
        algorithm,
        years: options.years.unwrap_or(DEFAULT_SIGNER_YEARS),
        passphrase: passphrase.cloned(),
        pkcs11,
    };
    let new = NewSigner {
        id: &id,
        issuer_name: &template.issuer_name,
        name: &signer_options.common_name,
        algorithm: algorithm.syntax(),
        key_dir: &key_dir,
        root_dir: template.root_dir.as_deref(),
    };
    let outcome = match &template.root_dir {
        Some(root_dir) => {
            let root = RootCa::load(&data.join(root_dir), passphrase)?;
            let ca = IssuingCa::create_signer(&root, &dir, &signer_options)?;
            store
                .add_signer(&new, Some(&certificate_of(&ca)), actor)
                .map(|signer| LifecycleOutcome { signer, csr: None })
        }
        None => {
            let csr = IssuingCa::create_request(&dir, &signer_options)?;
            store
                .add_signer(&new, None, actor)
                .map(|signer| LifecycleOutcome {
                    signer,
                    csr: Some(csr),
                })
        }
    };
    outcome.map_err(|error| {
        discard(&dir);
        error.into()
    })
}

/// Renews a signer (seed 004 "renew"): the same key in a new certificate valid `years` from
/// now. With an external root it writes a CSR for the same key instead; [`install`] takes the
/// renewed certificate.
pub fn renew(
    data: &Path,
    store: &Store,
    signer: &SignerRow,
    years: Option<u32>,
    passphrase: Option<&CaPassphrase>,
    actor: &str,
) -> Result<LifecycleOutcome, SignerError> {
    if !signer.state.serves_revocation() {
        return Err(StoreError::SignerState {
            signer: signer.id.clone(),
            state: signer.state,
            action: "be renewed",
        }
        .into());
    }
    let dir = data.join(&signer.key_dir);
    match &signer.root_dir {
        Some(root_dir) => {
            let root = RootCa::load(&data.join(root_dir), passphrase)?;
            let ca = IssuingCa::renew(
                &dir,
                &root,
                years.unwrap_or(DEFAULT_SIGNER_YEARS),
                passphrase,
            )?;
            let signer = store.renew_signer(&signer.id, &certificate_of(&ca), actor)?;
            Ok(LifecycleOutcome { signer, csr: None })
        }
        None => {
            let ca = IssuingCa::load_from(&dir, passphrase)?;
            let csr = ca.renewal_request(&dir)?;
            Ok(LifecycleOutcome {
                signer: signer.clone(),
                csr: Some(csr),
            })
        }
    }
}

/// Installs the certificate an external root made for a signer's CSR: a PENDING signer becomes
/// ACTIVE (its issuer's previous signer RETIRED); an ACTIVE or RETIRED one is renewed.
pub fn install(
    data: &Path,
    store: &Store,
    signer: &SignerRow,
    certificate_pem: &str,
    passphrase: Option<&CaPassphrase>,
    actor: &str,
) -> Result<SignerRow, SignerError> {
    let dir = data.join(&signer.key_dir);
    let source = PathBuf::from("the certificate given");
    match signer.state {
        SignerState::Pending => {
            let ca = IssuingCa::install(&dir, certificate_pem, &source, passphrase)?;
            Ok(store.activate_signer(&signer.id, &certificate_of(&ca), actor)?)
        }
        SignerState::Active | SignerState::Retired => {
            let ca = IssuingCa::install(&dir, certificate_pem, &source, passphrase)?;
            Ok(store.renew_signer(&signer.id, &certificate_of(&ca), actor)?)
        }
        state => Err(StoreError::SignerState {
            signer: signer.id.clone(),
            state,
            action: "receive a certificate",
        }
        .into()),
    }
}

/// Revokes a signer (seed 004 "revoke"): it signs nothing more and is not served.
pub fn revoke(store: &Store, signer: &SignerRow, actor: &str) -> Result<SignerRow, SignerError> {
    Ok(store.revoke_signer(&signer.id, actor)?)
}

/// Deletes a signer once nothing it issued is still valid, then removes its key and
/// certificate files (the root stays with the issuer).
pub fn delete(
    data: &Path,
    store: &Store,
    signer: &SignerRow,
    actor: &str,
) -> Result<SignerRow, SignerError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let row = store.delete_signer(&signer.id, now, actor)?;
    let dir = data.join(&signer.key_dir);
    for file in [
        "issuing.key",
        "issuing.crt",
        "issuing.csr",
        "chain.pem",
        crate::ca::PKCS11_FILE,
    ] {
        let path = dir.join(file);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SignerError::Io { path, source }),
        }
    }
    // Only a rotation's own directory goes; an issuer's first keeps its root.
    if signer.root_dir.as_deref() != Some(signer.key_dir.as_str()) {
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(row)
}

#[cfg(test)]
mod tests;
