//! CA keys in a PKCS#11 token (an HSM; SoftHSM2 in the tests), through the `cryptoki` crate.
//!
//! The private key never leaves the token: certmill keeps a handle and a pool of logged-in
//! sessions, one per concurrent signer, so batch workers sign in parallel (a PKCS#11 session
//! is single-threaded). What identifies the key is kept in `<data>/ca/pkcs11.json` (module
//! path, token label, key label) instead of a key file; the user PIN is never stored: it comes
//! from `CERTMILL_PKCS11_PIN` or a PIN file each time the CA is loaded.
//!
//! ECDSA signs the digest (`CKM_ECDSA`) and the token's raw `r || s` is encoded as the
//! `Ecdsa-Sig-Value` a certificate carries; RSA signs with `CKM_SHA256_RSA_PKCS` /
//! `CKM_SHA384_RSA_PKCS` over the message, or `CKM_RSA_PKCS` over a DigestInfo for a digest
//! computed in pieces.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::CaError;
use crate::asn1;
use crate::keys::{KeyAlgorithm, SignatureAlgorithm};

/// File in `<data>/ca/` naming the token key of a CA kept in PKCS#11.
pub const PKCS11_FILE: &str = "pkcs11.json";

/// Where a CA key lives in a PKCS#11 token (no secret: the PIN is given separately).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// Label of the token holding the key.
    pub token: String,
    /// CKA_LABEL of the issuing CA's key pair.
    pub key_label: String,
}

/// The token's user PIN; redacted in `Debug`, zeroized on drop.
#[derive(Clone)]
pub struct Pkcs11Pin(Zeroizing<String>);

impl Pkcs11Pin {
    /// A PIN; refused when empty.
    pub fn new(pin: String) -> Result<Self, CaError> {
        let pin = pin.trim_end_matches(['\r', '\n']).to_owned();
        if pin.is_empty() {
            return Err(CaError::InvalidOption {
                option: "pkcs11_pin",
                reason: "the PKCS#11 PIN is empty",
            });
        }
        Ok(Pkcs11Pin(Zeroizing::new(pin)))
    }

    /// The PIN from `CERTMILL_PKCS11_PIN_FILE` (its first line) or `CERTMILL_PKCS11_PIN`.
    pub fn from_env() -> Result<Self, CaError> {
        if let Some(path) = std::env::var_os("CERTMILL_PKCS11_PIN_FILE") {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path).map_err(|source| CaError::Io {
                path: path.clone(),
                source,
            })?;
            return Pkcs11Pin::new(text.lines().next().unwrap_or_default().to_owned());
        }
        match std::env::var("CERTMILL_PKCS11_PIN") {
            Ok(pin) => Pkcs11Pin::new(pin),
            Err(_) => Err(CaError::InvalidOption {
                option: "pkcs11_pin",
                reason: "the CA key is in a PKCS#11 token: set CERTMILL_PKCS11_PIN_FILE (a file \
                         holding the PIN) or CERTMILL_PKCS11_PIN",
            }),
        }
    }

    fn auth(&self) -> AuthPin {
        AuthPin::new(self.0.as_str().into())
    }
}

impl fmt::Debug for Pkcs11Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pkcs11Pin(<redacted>)")
    }
}

/// A signing key held in a token.
pub(crate) struct Pkcs11Key {
    config: Pkcs11Config,
    /// The module, initialized; kept alive as long as its sessions.
    context: Pkcs11,
    slot: Slot,
    private_key: ObjectHandle,
    algorithm: KeyAlgorithm,
    /// subjectPublicKey BIT STRING contents.
    public_key_bits: Vec<u8>,
    /// Idle logged-in sessions; a signer takes one and gives it back.
    sessions: Mutex<Vec<Session>>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("config", &self.config)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn pkcs11_error(action: &'static str) -> impl Fn(cryptoki::error::Error) -> CaError {
    move |source| CaError::Pkcs11 {
        action,
        detail: source.to_string(),
    }
}

/// `namedCurve` OIDs (DER) of the curves certmill's CA keys use.
const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const SECP384R1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// The modules this process loaded and initialized, by path.
static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

fn modules() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Pkcs11>> {
    match MODULES.get_or_init(Default::default).lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The module loaded and initialized once per process: C_Initialize may be called only once
/// per module (a second call is CKR_CRYPTOKI_ALREADY_INITIALIZED), so every key of one module
/// shares one context until [`finalize_modules`].
fn module(path: &Path) -> Result<Pkcs11, CaError> {
    let mut modules = modules();
    if let Some(context) = modules.get(path) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(path).map_err(|source| CaError::Pkcs11 {
        action: "loading the PKCS#11 module",
        detail: format!("{}: {source}", path.display()),
    })?;
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(pkcs11_error("initializing the PKCS#11 module"))?;
    modules.insert(path.to_path_buf(), context.clone());
    Ok(context)
}

/// Finalizes every PKCS#11 module this process initialized (C_Finalize), for a process that
/// is done with its CA keys: `main` calls it before exiting. Without it the module's own
/// exit-time destructors tear down its live state while the process ends, which SoftHSM2 is
/// known to crash on now and then (SoftHSMv2 issues 635 and 729). Keys still open afterwards
/// fail to sign; a later key initializes its module again.
pub fn finalize_modules() {
    let drained: Vec<Pkcs11> = modules().drain().map(|(_, context)| context).collect();
    for context in drained {
        // Nothing to do about a module that fails to finalize at exit.
        let _ = context.finalize();
    }
}

/// Opens the module, finds the token by label and logs in; returns the context, the slot and a
/// logged-in session.
fn open_token(config: &Pkcs11Config, pin: &Pkcs11Pin) -> Result<(Pkcs11, Slot, Session), CaError> {
    let context = module(&config.module)?;
    let slots = context
        .get_slots_with_token()
        .map_err(pkcs11_error("listing the PKCS#11 slots"))?;
    let mut found = None;
    for slot in slots {
        let info = context
            .get_token_info(slot)
            .map_err(pkcs11_error("reading a token's information"))?;
        if info.label().trim_end() == config.token {
            found = Some(slot);
            break;
        }
    }
    let slot = found.ok_or_else(|| CaError::Pkcs11 {
        action: "finding the token",
        detail: format!(
            "no token labelled {:?} in {}",
            config.token,
            config.module.display()
        ),
    })?;
    let session = context
        .open_rw_session(slot)
        .map_err(pkcs11_error("opening a PKCS#11 session"))?;
    match session.login(UserType::User, Some(&pin.auth())) {
        // The login is per application and token (PKCS#11 section 5.6): a second key of the
        // same token finds it done.
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => return Err(pkcs11_error("logging in to the token (check the PIN)")(e)),
    }
    Ok((context, slot, session))
}

/// The public key of a token key pair as subjectPublicKey bits, and its algorithm.
fn public_key(session: &Session, public: ObjectHandle) -> Result<(KeyAlgorithm, Vec<u8>), CaError> {
    let read = pkcs11_error("reading the public key");
    let attributes = session
        .get_attributes(public, &[AttributeType::KeyType])
        .map_err(&read)?;
    let is_ec = attributes
        .iter()
        .any(|a| matches!(a, Attribute::KeyType(t) if *t == KeyType::EC));
    if is_ec {
        let attributes = session
            .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(&read)?;
        let (mut params, mut point) = (None, None);
        for attribute in attributes {
            match attribute {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let algorithm = match params.as_deref() {
            Some(PRIME256V1) => KeyAlgorithm::EcP256,
            Some(SECP384R1) => KeyAlgorithm::EcP384,
            _ => {
                return Err(CaError::Pkcs11 {
                    action: "reading the public key",
                    detail: "the key is on a curve other than P-256 or P-384".to_owned(),
                })
            }
        };
        // CKA_EC_POINT is the DER OCTET STRING of the point (PKCS#11 2.40 section 2.3.3); a
        // few modules give the raw point.
        let point = point.unwrap_or_default();
        let raw = match point.split_first() {
            Some((&asn1::OCTET_STRING, rest))
                if rest
                    .first()
                    .is_some_and(|&l| usize::from(l) + 1 == rest.len()) =>
            {
                rest[1..].to_vec()
            }
            _ => point,
        };
        Ok((algorithm, raw))
    } else {
        let attributes = session
            .get_attributes(
                public,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .map_err(&read)?;
        let (mut modulus, mut exponent) = (Vec::new(), Vec::new());
        for attribute in attributes {
            match attribute {
                Attribute::Modulus(m) => modulus = m,
                Attribute::PublicExponent(e) => exponent = e,
                _ => {}
            }
        }
        let bits = modulus.iter().skip_while(|&&b| b == 0).count() * 8;
        let algorithm = KeyAlgorithm::from_rsa_bits(bits).ok_or(CaError::Pkcs11 {
            action: "reading the public key",
            detail: format!("an RSA key of {bits} bits (2048, 3072 or 4096 are supported)"),
        })?;
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let key = asn1::tlv_parts(
            asn1::SEQUENCE,
            &[
                &asn1::unsigned_integer(&modulus),
                &asn1::unsigned_integer(&exponent),
            ],
        );
        Ok((algorithm, key))
    }
}

fn find_key(
    session: &Session,
    label: &str,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>, CaError> {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(pkcs11_error("looking for the key"))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(CaError::Pkcs11 {
            action: "looking for the key",
            detail: format!("several keys are labelled {label:?}; labels must be unique"),
        }),
    }
}

impl Pkcs11Key {
    /// Opens the key named by `config`.
    pub(crate) fn open(config: &Pkcs11Config, pin: &Pkcs11Pin) -> Result<Pkcs11Key, CaError> {
        let (context, slot, session) = open_token(config, pin)?;
        let missing = || CaError::Pkcs11 {
            action: "looking for the key",
            detail: format!(
                "no key pair labelled {:?} in token {:?}",
                config.key_label, config.token
            ),
        };
        let private_key =
            find_key(&session, &config.key_label, ObjectClass::PRIVATE_KEY)?.ok_or_else(missing)?;
        let public =
            find_key(&session, &config.key_label, ObjectClass::PUBLIC_KEY)?.ok_or_else(missing)?;
        Self::assemble(config, context, slot, session, private_key, public)
    }

    /// The key from its handles, with its public key read from the token.
    fn assemble(
        config: &Pkcs11Config,
        context: Pkcs11,
        slot: Slot,
        session: Session,
        private_key: ObjectHandle,
        public: ObjectHandle,
    ) -> Result<Pkcs11Key, CaError> {
        let (algorithm, public_key_bits) = public_key(&session, public)?;
        Ok(Pkcs11Key {
            config: config.clone(),
            context,
            slot,
            private_key,
            algorithm,
            public_key_bits,
            sessions: Mutex::new(vec![session]),
        })
    }

    /// Generates a key pair in the token (private key sensitive and not extractable) labelled
    /// `config.key_label`; refuses a label already in use.
    pub(crate) fn generate(
        config: &Pkcs11Config,
        pin: &Pkcs11Pin,
        algorithm: KeyAlgorithm,
    ) -> Result<Pkcs11Key, CaError> {
        let (context, slot, session) = open_token(config, pin)?;
        if find_key(&session, &config.key_label, ObjectClass::PRIVATE_KEY)?.is_some() {
            return Err(CaError::Pkcs11 {
                action: "generating the key",
                detail: format!(
                    "token {:?} already holds a key labelled {:?}; choose another --key-label",
                    config.token, config.key_label
                ),
            });
        }
        let label = Attribute::Label(config.key_label.as_bytes().to_vec());
        let id = Attribute::Id(config.key_label.as_bytes().to_vec());
        let private_template = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            label.clone(),
            id.clone(),
        ];
        let (mechanism, public_template) = match algorithm {
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
                let curve = if algorithm == KeyAlgorithm::EcP256 {
                    PRIME256V1
                } else {
                    SECP384R1
                };
                (
                    Mechanism::EccKeyPairGen,
                    vec![
                        Attribute::Token(true),
                        Attribute::Verify(true),
                        Attribute::EcParams(curve.to_vec()),
                        label,
                        id,
                    ],
                )
            }
            rsa => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::Token(true),
                    Attribute::Verify(true),
                    Attribute::ModulusBits((rsa.rsa_bits().unwrap_or(3072) as u64).into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                    label,
                    id,
                ],
            ),
        };
        let (public, private_key) = session
            .generate_key_pair(&mechanism, &public_template, &private_template)
            .map_err(pkcs11_error("generating the key pair in the token"))?;
        let key = Self::assemble(config, context, slot, session, private_key, public)?;
        if key.algorithm != algorithm {
            return Err(CaError::Pkcs11 {
                action: "generating the key pair in the token",
                detail: format!("asked for {algorithm}, the token made {}", key.algorithm),
            });
        }
        Ok(key)
    }

    pub(crate) fn config(&self) -> &Pkcs11Config {
        &self.config
    }

    pub(crate) fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    pub(crate) fn public_key_bits(&self) -> &[u8] {
        &self.public_key_bits
    }

    /// Runs `f` on an idle session (opening one when all are busy: the login of the first
    /// holds for every session of the application, PKCS#11 section 5.6).
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, CaError>,
    ) -> Result<T, CaError> {
        let idle = match self.sessions.lock() {
            Ok(mut sessions) => sessions.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        let session = match idle {
            Some(session) => session,
            None => self
                .context
                .open_rw_session(self.slot)
                .map_err(pkcs11_error("opening a PKCS#11 session"))?,
        };
        let result = f(&session);
        match self.sessions.lock() {
            Ok(mut sessions) => sessions.push(session),
            Err(poisoned) => poisoned.into_inner().push(session),
        }
        result
    }

    /// Signs a message (see [`Pkcs11Key::sign_digest`] for the encodings).
    pub(crate) fn sign(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, CaError> {
        if self.algorithm.is_ec() {
            let digest = aws_lc_rs::digest::digest(algorithm.digest_algorithm(), message);
            return self.sign_digest(algorithm, &digest);
        }
        let mechanism = match algorithm {
            SignatureAlgorithm::Sha384WithRsaEncryption => Mechanism::Sha384RsaPkcs,
            _ => Mechanism::Sha256RsaPkcs,
        };
        self.with_session(|session| {
            session
                .sign(&mechanism, self.private_key, message)
                .map_err(|_| CaError::SigningFailed { algorithm })
        })
    }

    /// Signs a digest: ECDSA as a DER `Ecdsa-Sig-Value`, RSA as a PKCS#1 v1.5 signature.
    pub(crate) fn sign_digest(
        &self,
        algorithm: SignatureAlgorithm,
        digest: &aws_lc_rs::digest::Digest,
    ) -> Result<Vec<u8>, CaError> {
        if self.algorithm.is_ec() {
            let raw = self.with_session(|session| {
                session
                    .sign(&Mechanism::Ecdsa, self.private_key, digest.as_ref())
                    .map_err(|_| CaError::SigningFailed { algorithm })
            })?;
            return ecdsa_der(&raw).ok_or(CaError::SigningFailed { algorithm });
        }
        // RFC 8017 section 9.2: DigestInfo ::= SEQUENCE { digestAlgorithm, digest OCTET STRING }.
        let prefix: &[u8] = match algorithm {
            SignatureAlgorithm::Sha384WithRsaEncryption => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            _ => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
        };
        let mut info = prefix.to_vec();
        info.extend_from_slice(digest.as_ref());
        self.with_session(|session| {
            session
                .sign(&Mechanism::RsaPkcs, self.private_key, &info)
                .map_err(|_| CaError::SigningFailed { algorithm })
        })
    }
}

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` from PKCS#11's `r || s` (equal
/// halves, big-endian).
fn ecdsa_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Some(asn1::tlv_parts(
        asn1::SEQUENCE,
        &[&asn1::unsigned_integer(r), &asn1::unsigned_integer(s)],
    ))
}

/// `pkcs11.json`'s text for `config`.
pub(crate) fn config_json(config: &Pkcs11Config) -> Result<String, CaError> {
    serde_json::to_string_pretty(config).map_err(|e| CaError::Pkcs11 {
        action: "writing the PKCS#11 configuration",
        detail: e.to_string(),
    })
}

/// Reads `<data>/ca/pkcs11.json`, if the CA's key is in a token.
pub(crate) fn read_config(path: &Path) -> Result<Option<Pkcs11Config>, CaError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CaError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| CaError::Pkcs11 {
            action: "reading the PKCS#11 configuration",
            detail: format!("{}: {e}", path.display()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_become_der() {
        let mut raw = vec![0x80; 32];
        raw.extend(vec![0x01; 32]);
        let der = ecdsa_der(&raw).expect("der");
        // r needs a sign octet, s does not.
        assert_eq!(&der[..4], &[0x30, 0x45, 0x02, 0x21]);
        assert_eq!(der[4], 0x00);
        assert!(ecdsa_der(&[1, 2, 3]).is_none());
        assert!(ecdsa_der(&[]).is_none());
    }

    #[test]
    fn the_pin_is_redacted_and_an_empty_one_refused() {
        let pin = Pkcs11Pin::new("1234\n".to_owned()).expect("pin");
        assert_eq!(format!("{pin:?}"), "Pkcs11Pin(<redacted>)");
        assert!(Pkcs11Pin::new("\n".to_owned()).is_err());
    }
}
