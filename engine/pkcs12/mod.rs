//! Password-protected PKCS#12 (PFX, RFC 7292) files holding one private key and its
//! certificate chain, laid out like `openssl pkcs12 -export` of OpenSSL 3.
//!
//! [`build`] writes: `authSafe` = `[ EncryptedData(cert bags), Data(shrouded key bag) ]` and a
//! `macData`. The default [`Pkcs12Encryption::Aes256Pbes2`] matches OpenSSL 3's defaults (PBES2,
//! PBKDF2-HMAC-SHA256, AES-256-CBC, SHA-256 MAC); [`Pkcs12Encryption::LegacyTripleDesSha1`] is
//! for old devices and still opens in OpenSSL 3 without `-legacy` (3DES, never RC2). The three
//! key derivations of the default format run in one interleaved loop (module `kdf`), which is
//! where a device's time goes. They depend only on the password, so [`Pkcs12Seal::derive`]
//! can run them before or while the key and certificate are made, and [`build_sealed`] then
//! finishes the file.
//!
//! [`build`] does not check that the key matches the leaf certificate or decode the key and
//! certificates beyond checking that each is a single DER `SEQUENCE`: callers hand it what they
//! just generated and signed. Salts and IVs come from `aws_lc_rs::rand`. [`open`] reads a
//! PKCS#12 back (ours or OpenSSL's): MAC, decryption, and the key checked against the leaf.

mod kdf;
mod open;
pub use open::{open, OpenedPkcs12};

/// Which loop derives the three keys of an OpenSSL 3 default PKCS#12 (for benchmarks; [`build`]
/// always takes the fastest the CPU has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KdfPath {
    /// `sha2::compress256` per compression, the three chains in lockstep.
    Portable,
    /// x86_64 SHA-NI, the three chains interleaved (falls back to `Portable` without it).
    ShaNi,
}

impl KdfPath {
    /// Whether this CPU runs [`KdfPath::ShaNi`] natively (detected at run time).
    pub fn sha_ni_available() -> bool {
        kdf::Backend::detect() == kdf::Backend::ShaNi
    }
}

/// The three keys of one OpenSSL 3 default PKCS#12 on `path`: key bag (PBKDF2-HMAC-SHA256
/// over `key_salt`), certificate bag (over `cert_salt`), MAC key (RFC 7292 KDF, SHA-256, over
/// `mac_salt`), each 32 bytes, `iterations` rounds. What [`build`] derives, for benchmarks and
/// checks against other implementations.
pub fn derive_openssl3_keys(
    path: KdfPath,
    password: &Pkcs12Password,
    key_salt: &[u8],
    cert_salt: &[u8],
    mac_salt: &[u8],
    iterations: NonZeroU32,
) -> Zeroizing<[[u8; 32]; 3]> {
    let bmp = kdf::bmp_password(password.as_str());
    let backend = match path {
        KdfPath::Portable => kdf::Backend::Portable,
        KdfPath::ShaNi => kdf::Backend::ShaNi,
    };
    let keys = kdf::derive_openssl3_keys_with(
        &kdf::Openssl3KdfInput {
            password_utf8: password.as_str().as_bytes(),
            password_bmp: &bmp,
            key_bag_salt: key_salt,
            cert_bag_salt: cert_salt,
            mac_salt,
            iterations,
        },
        backend,
    );
    Zeroizing::new([keys.key_bag_key, keys.cert_bag_key, keys.mac_key])
}

use core::num::NonZeroU32;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use der::asn1::ObjectIdentifier;
use hmac::digest::generic_array::GenericArray;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::asn1::{
    context_constructed, context_primitive, oid_const, push_tlv, push_tlv_parts, small_integer,
    tlv, tlv_parts, BMP_STRING, INTEGER, NULL, OCTET_STRING, SEQUENCE, SET,
};

/// A PKCS#12 password. Debug prints `"Pkcs12Password(<redacted>)"`; zeroized on drop.
pub struct Pkcs12Password(zeroize::Zeroizing<String>);

/// Longest accepted password, in UTF-8 bytes.
const MAX_PASSWORD_BYTES: usize = 1024;

/// Longest accepted friendly name, in UTF-16 code units (characters, since all are in the BMP).
const MAX_FRIENDLY_NAME_UNITS: usize = 1024;

impl Pkcs12Password {
    /// Rejects an empty password, one longer than 1024 bytes of UTF-8, or one containing NUL or
    /// another control character, with [`Pkcs12Error::InvalidPassword`].
    pub fn new(password: String) -> Result<Self, Pkcs12Error> {
        // Wrapped first, so a rejected password is zeroized too.
        let password = Zeroizing::new(password);
        if password.is_empty() {
            return Err(Pkcs12Error::InvalidPassword(PasswordDefect::Empty));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(Pkcs12Error::InvalidPassword(PasswordDefect::TooLong {
                bytes: password.len(),
            }));
        }
        // `char::is_control` covers NUL, the other C0 controls, DEL and the C1 controls. NUL
        // would end the password early in C tools; the others cannot be typed reliably.
        if let Some(index) = password.chars().position(char::is_control) {
            return Err(Pkcs12Error::InvalidPassword(
                PasswordDefect::ControlCharacter { index },
            ));
        }
        Ok(Self(password))
    }

    fn as_str(&self) -> &str {
        &self.0
    }

    /// The password itself, for sealing it to the other nodes of a cluster
    /// ([`crate::batch::chunked`]); never for logs or storage in the clear.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for Pkcs12Password {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Pkcs12Password(<redacted>)")
    }
}

/// How the bags are encrypted and the MAC computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pkcs12Encryption {
    /// OpenSSL 3 defaults: PBES2 + PBKDF2-HMAC-SHA256 + AES-256-CBC for the key bag and the
    /// certificate bag, SHA-256 MAC; 2048 iterations each.
    #[default]
    Aes256Pbes2,
    /// For old devices: pbeWithSHAAnd3-KeyTripleDES-CBC for both bags (not RC2, so OpenSSL 3
    /// opens it without `-legacy`), HMAC-SHA1 MAC with the PKCS#12 KDF on SHA-1; 2048
    /// iterations. About five times the cost of the default (its KDF chains are not
    /// interleaved).
    LegacyTripleDesSha1,
}

/// Options of [`build`].
#[derive(Clone, Debug)]
pub struct Pkcs12Options {
    /// Bag encryption and MAC algorithms.
    pub encryption: Pkcs12Encryption,
    /// Iteration count of both bags' key derivation and of the MAC key derivation; at least 1.
    /// Default 2048, as OpenSSL 3.
    pub iterations: u32,
}

impl Default for Pkcs12Options {
    fn default() -> Self {
        Self {
            encryption: Pkcs12Encryption::default(),
            iterations: 2048,
        }
    }
}

/// Why a password was rejected. Never holds the password or any part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordDefect {
    /// The character at `index` (counted in characters) is NUL or another control character.
    ControlCharacter {
        /// Position of the first control character, in characters from the start.
        index: usize,
    },
    /// The password is empty.
    Empty,
    /// The password is longer than 1024 bytes of UTF-8.
    TooLong {
        /// Its length in bytes.
        bytes: usize,
    },
}

impl core::fmt::Display for PasswordDefect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ControlCharacter { index } => {
                write!(f, "control character at character {index}")
            }
            Self::Empty => f.write_str("empty"),
            Self::TooLong { bytes } => {
                write!(f, "{bytes} bytes long, more than {MAX_PASSWORD_BYTES}")
            }
        }
    }
}

/// Why a friendly name was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FriendlyNameDefect {
    /// The character at `index` is a control character.
    ControlCharacter {
        /// Position of the first control character, in characters from the start.
        index: usize,
    },
    /// The character at `index` lies outside the Basic Multilingual Plane, which a
    /// `BMPString` cannot hold.
    OutsideBmp {
        /// Position of the first such character, in characters from the start.
        index: usize,
    },
    /// The name has more than 1024 characters.
    TooLong {
        /// Its length in characters.
        chars: usize,
    },
}

impl core::fmt::Display for FriendlyNameDefect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ControlCharacter { index } => {
                write!(f, "control character at character {index}")
            }
            Self::OutsideBmp { index } => write!(
                f,
                "character {index} is outside the Basic Multilingual Plane (BMPString)"
            ),
            Self::TooLong { chars } => {
                write!(
                    f,
                    "{chars} characters long, more than {MAX_FRIENDLY_NAME_UNITS}"
                )
            }
        }
    }
}

/// Errors of [`build`], [`open`] and [`Pkcs12Password::new`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs12Error {
    /// [`open`]: a bag's ciphertext is not a whole number of cipher blocks or its padding is
    /// wrong, although the MAC matched: the file was damaged before its MAC was computed, or its
    /// bags were encrypted under another password than its MAC.
    #[error("could not decrypt the {what}: wrong length or padding")]
    DecryptionFailed {
        /// Which encrypted structure: `"encrypted SafeContents"` or `"pkcs8ShroudedKeyBag"`.
        what: &'static str,
    },
    /// `certs[index]` is not exactly one DER `SEQUENCE`.
    #[error("certificate {index} (0 is the leaf) is not one DER SEQUENCE: {defect}")]
    InvalidCertificate {
        /// Position in `certs`; 0 is the leaf.
        index: usize,
        /// What the DER check found, with its byte offset.
        defect: der::Error,
    },
    /// The friendly name cannot be written as a `BMPString` attribute.
    #[error("friendly name rejected: {0}")]
    InvalidFriendlyName(FriendlyNameDefect),
    /// The password was rejected by [`Pkcs12Password::new`].
    #[error("PKCS#12 password rejected: {0}")]
    InvalidPassword(PasswordDefect),
    /// The private key is not exactly one DER `SEQUENCE` (a PKCS#8 `PrivateKeyInfo`).
    #[error("private key is not one DER SEQUENCE (PKCS#8 PrivateKeyInfo): {defect}")]
    InvalidPrivateKey {
        /// What the DER check found, with its byte offset.
        defect: der::Error,
    },
    /// [`open`]: an iteration count in the file is above the limit (10,000,000), which bounds
    /// the work a hostile file can demand before its MAC is checked.
    #[error("{what} iteration count {iterations} is above the limit of {limit}")]
    IterationsAboveLimit {
        /// Whose count: `"MAC"`, `"PBKDF2"` or `"pbeWithSHAAnd3-KeyTripleDES-CBC"`.
        what: &'static str,
        /// The count in the file.
        iterations: u32,
        /// The highest accepted count.
        limit: u32,
    },
    /// [`open`]: the private key is not the key of the leaf certificate (the certificate whose
    /// localKeyId is the key bag's), or no certificate holds its public key.
    #[error("the private key does not belong to the leaf certificate")]
    KeyMismatch,
    /// [`open`]: the MAC does not match: the password is wrong, or the file was altered.
    #[error("PKCS#12 MAC mismatch: wrong password, or the file was altered")]
    MacMismatch,
    /// [`open`]: a structure is not the DER that RFC 7292 (or PKCS #8, X.509) prescribes.
    #[error("malformed PKCS#12 {what}: {defect}")]
    Malformed {
        /// The structure, e.g. `"macData"`, `"SafeBag"`, `"certificate"`.
        what: &'static str,
        /// What the DER parser found, at a byte offset into the file (into the plaintext for
        /// decrypted SafeContents; into the key or certificate for those).
        defect: der::Error,
    },
    /// [`open`]: the file holds more than one private key bag.
    #[error("the PKCS#12 holds {count} private keys; exactly one is supported")]
    MultiplePrivateKeys {
        /// How many keyBags and pkcs8ShroudedKeyBags it holds.
        count: usize,
    },
    /// [`open`]: the file holds no X.509 certificate bag.
    #[error("the PKCS#12 holds no X.509 certificate")]
    NoCertificateBag,
    /// `certs` is empty: a PKCS#12 needs at least the leaf certificate.
    #[error("no certificate given: certs[0] must be the leaf certificate")]
    NoCertificates,
    /// [`open`]: the file holds no keyBag or pkcs8ShroudedKeyBag.
    #[error("the PKCS#12 holds no private key")]
    NoPrivateKey,
    /// The system random generator failed to produce salts and IVs.
    #[error("the random generator failed to produce PKCS#12 salts and IVs")]
    Random,
    /// [`open`]: aws-lc-rs rejected the private key (not a valid P-256, P-384 or RSA PKCS#8
    /// key, or an EC key whose embedded public key is not its own).
    #[error("the private key was rejected: {0}")]
    RejectedPrivateKey(#[source] aws_lc_rs::error::KeyRejected),
    /// [`open`]: an algorithm or content type [`open`] does not implement.
    #[error("unsupported {what}: OID {oid}")]
    UnsupportedAlgorithm {
        /// Where it appears, e.g. `"MAC digest"`, `"bag encryption"`, `"PBKDF2 PRF"`.
        what: &'static str,
        /// Its object identifier.
        oid: ObjectIdentifier,
    },
    /// `Pkcs12Options::iterations` is 0.
    #[error("PKCS#12 iteration count is 0; it must be at least 1")]
    ZeroIterations,
}

/// Object identifiers written into the file.
mod oids {
    use der::asn1::ObjectIdentifier as Oid;

    /// `id-data` (PKCS #7).
    pub(super) const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    /// `id-encryptedData` (PKCS #7).
    pub(super) const ENCRYPTED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.6");
    /// `pkcs8ShroudedKeyBag` (RFC 7292 §4.2).
    pub(super) const SHROUDED_KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.2");
    /// `certBag` (RFC 7292 §4.2).
    pub(super) const CERT_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.3");
    /// `x509Certificate` cert type (RFC 7292 §4.2.3).
    pub(super) const X509_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.22.1");
    /// `friendlyName` attribute (PKCS #9).
    pub(super) const FRIENDLY_NAME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.20");
    /// `localKeyId` attribute (PKCS #9).
    pub(super) const LOCAL_KEY_ID: Oid = Oid::new_unwrap("1.2.840.113549.1.9.21");
    /// `id-PBES2` (RFC 8018 A.4).
    pub(super) const PBES2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.13");
    /// `id-PBKDF2` (RFC 8018 A.2).
    pub(super) const PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");
    /// `id-hmacWithSHA256` (RFC 8018 B.1.2).
    pub(super) const HMAC_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
    /// `aes256-CBC` (NIST).
    pub(super) const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
    /// `pbeWithSHAAnd3-KeyTripleDES-CBC` (RFC 7292 Appendix C).
    pub(super) const PBE_SHA1_3DES: Oid = Oid::new_unwrap("1.2.840.113549.1.12.1.3");
    /// `id-sha256` (NIST).
    pub(super) const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// `id-sha1` (OIW).
    pub(super) const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
}

/// Builds the DER of a PFX holding the private key (PKCS#8 PrivateKeyInfo DER, unencrypted
/// input) in a pkcs8ShroudedKeyBag and the certificates (DER; `certs[0]` is the leaf, the rest
/// the chain in order) in one encrypted SafeContents, like `openssl pkcs12 -export` of OpenSSL 3:
/// authSafe = [ EncryptedData(cert bags), Data(shrouded key bag) ], macData.
///
/// The leaf cert bag and the key bag carry localKeyId (SHA-1 of the leaf certificate DER, as
/// OpenSSL does) and friendlyName (BMPString) = `friendly_name`; chain cert bags carry no
/// attributes. Salts (8 bytes for the MAC salt, like OpenSSL; 16 bytes for PBES2 salts) and IVs
/// are fresh from `aws_lc_rs::rand` on every call.
///
/// An empty `friendly_name` writes no friendlyName attribute (localKeyId stays). The legacy
/// format uses 8-byte salts for its bags, as OpenSSL does.
///
/// This is [`Pkcs12Seal::derive`] then [`build_sealed`]; a caller with a second core can run
/// the derivation (nearly all of the cost) while it makes the key and the certificate.
pub fn build(
    key_pkcs8: &[u8],
    certs: &[&[u8]],
    friendly_name: &str,
    password: &Pkcs12Password,
    options: &Pkcs12Options,
) -> Result<Vec<u8>, Pkcs12Error> {
    // The cheap checks first: a refused input costs no key derivation.
    check_contents(key_pkcs8, certs)?;
    friendly_name_bmp(friendly_name)?;
    build_sealed(
        Pkcs12Seal::derive(password, options)?,
        key_pkcs8,
        certs,
        friendly_name,
    )
}

/// The password half of one PKCS#12: fresh salts and IVs and the keys derived from them and the
/// password (both bags' encryption keys and the MAC key). It depends on nothing else, so it can
/// be derived before or while the private key and the certificate are made: about 0.23 ms of a
/// default PKCS#12's 0.25 ms. [`build_sealed`] consumes it, so its salts and IVs serve one file
/// only. Zeroized on drop; `Debug` prints no secret.
pub struct Pkcs12Seal(SealKeys);

/// What a [`Pkcs12Seal`] holds, by format.
enum SealKeys {
    Aes256Pbes2 {
        iterations: NonZeroU32,
        key_salt: [u8; 16],
        key_iv: [u8; 16],
        cert_salt: [u8; 16],
        cert_iv: [u8; 16],
        mac_salt: [u8; 8],
        keys: kdf::Openssl3Keys,
    },
    LegacyTripleDesSha1 {
        iterations: NonZeroU32,
        key_salt: [u8; 8],
        cert_salt: [u8; 8],
        mac_salt: [u8; 8],
        key_bag: TripleDesKey,
        cert_bag: TripleDesKey,
        mac_key: Zeroizing<[u8; 20]>,
    },
}

/// A 3DES key and IV from the PKCS#12 KDF on SHA-1.
struct TripleDesKey {
    key: Zeroizing<[u8; 24]>,
    iv: [u8; 8],
}

impl core::fmt::Debug for Pkcs12Seal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let format = match self.0 {
            SealKeys::Aes256Pbes2 { .. } => "Aes256Pbes2",
            SealKeys::LegacyTripleDesSha1 { .. } => "LegacyTripleDesSha1",
        };
        write!(f, "Pkcs12Seal({format}, <redacted>)")
    }
}

impl Pkcs12Seal {
    /// Draws the salts and IVs (one call to `aws_lc_rs::rand`) and derives the keys of a
    /// PKCS#12 in `options`' format under `password`: for the default format the three chains
    /// in one interleaved loop (module `kdf`), for the legacy one the PKCS#12 KDF on SHA-1.
    pub fn derive(password: &Pkcs12Password, options: &Pkcs12Options) -> Result<Self, Pkcs12Error> {
        let iterations = NonZeroU32::new(options.iterations).ok_or(Pkcs12Error::ZeroIterations)?;
        let bmp = kdf::bmp_password(password.as_str());
        Ok(Self(match options.encryption {
            Pkcs12Encryption::Aes256Pbes2 => {
                // Key-bag salt and IV, cert salt and IV, MAC salt: one call to the generator.
                let mut random = [0u8; 16 + 16 + 16 + 16 + 8];
                aws_lc_rs::rand::fill(&mut random).map_err(|_| Pkcs12Error::Random)?;
                let take16 = |at: usize| -> [u8; 16] {
                    let mut out = [0; 16];
                    out.copy_from_slice(&random[at..at + 16]);
                    out
                };
                let (key_salt, key_iv, cert_salt, cert_iv) =
                    (take16(0), take16(16), take16(32), take16(48));
                let mut mac_salt = [0u8; 8];
                mac_salt.copy_from_slice(&random[64..]);
                let keys = kdf::derive_openssl3_keys(&kdf::Openssl3KdfInput {
                    password_utf8: password.as_str().as_bytes(),
                    password_bmp: &bmp,
                    key_bag_salt: &key_salt,
                    cert_bag_salt: &cert_salt,
                    mac_salt: &mac_salt,
                    iterations,
                });
                SealKeys::Aes256Pbes2 {
                    iterations,
                    key_salt,
                    key_iv,
                    cert_salt,
                    cert_iv,
                    mac_salt,
                    keys,
                }
            }
            Pkcs12Encryption::LegacyTripleDesSha1 => {
                let mut random = [0u8; 8 * 3];
                aws_lc_rs::rand::fill(&mut random).map_err(|_| Pkcs12Error::Random)?;
                let take8 = |at: usize| -> [u8; 8] {
                    let mut out = [0; 8];
                    out.copy_from_slice(&random[at..at + 8]);
                    out
                };
                let (key_salt, cert_salt, mac_salt) = (take8(0), take8(8), take8(16));
                let mut mac_key = Zeroizing::new([0u8; 20]);
                kdf::pkcs12_kdf::<Sha1>(
                    &bmp,
                    &mac_salt,
                    kdf::Pkcs12KdfId::Mac,
                    iterations,
                    &mut mac_key[..],
                );
                SealKeys::LegacyTripleDesSha1 {
                    iterations,
                    key_salt,
                    cert_salt,
                    mac_salt,
                    key_bag: TripleDesKey::derive(&bmp, &key_salt, iterations),
                    cert_bag: TripleDesKey::derive(&bmp, &cert_salt, iterations),
                    mac_key,
                }
            }
        }))
    }
}

/// [`build`] with the password half already derived: encrypts the bags with `seal`'s keys and
/// MACs the result, about 15 µs for a P-256 device. The checks and the layout are [`build`]'s.
pub fn build_sealed(
    seal: Pkcs12Seal,
    key_pkcs8: &[u8],
    certs: &[&[u8]],
    friendly_name: &str,
) -> Result<Vec<u8>, Pkcs12Error> {
    let leaf = check_contents(key_pkcs8, certs)?;
    let friendly_name = friendly_name_bmp(friendly_name)?;

    // RFC 7292 §4.2 bag attributes: localKeyId ties the key bag to the leaf cert bag.
    let local_key_id: [u8; 20] = Sha1::digest(leaf).into();
    let attributes = bag_attributes(&local_key_id, friendly_name.as_deref());

    // Certificate SafeContents ::= SEQUENCE OF SafeBag (RFC 7292 §4.2).
    let cert_bags: Vec<Vec<u8>> = certs
        .iter()
        .enumerate()
        .map(|(index, cert)| cert_bag(cert, (index == 0).then_some(&attributes[..])))
        .collect();
    let cert_bag_refs: Vec<&[u8]> = cert_bags.iter().map(Vec::as_slice).collect();
    let cert_safe_contents = tlv_parts(SEQUENCE, &cert_bag_refs);

    let sealed = seal.seal(key_pkcs8, &cert_safe_contents);

    // EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData OCTET STRING }.
    let mut encrypted_key_info = Vec::with_capacity(sealed.key_ciphertext.len() + 160);
    push_tlv_parts(
        &mut encrypted_key_info,
        SEQUENCE,
        &[
            &sealed.key_algorithm,
            &tlv(OCTET_STRING, &sealed.key_ciphertext),
        ],
    );
    let key_bag = safe_bag(
        &oids::SHROUDED_KEY_BAG,
        &encrypted_key_info,
        Some(&attributes),
    );
    let key_safe_contents = tlv(SEQUENCE, &key_bag);

    // AuthenticatedSafe ::= SEQUENCE OF ContentInfo, in OpenSSL's order.
    let auth_safe = tlv_parts(
        SEQUENCE,
        &[
            &encrypted_data_content_info(&sealed.cert_algorithm, &sealed.cert_ciphertext),
            &data_content_info(&key_safe_contents),
        ],
    );

    // MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
    // (RFC 7292 §4); the MAC covers the content octets of the authSafe `Data`.
    let (digest_oid, mac) = match sealed.mac_key {
        MacKeyRef::Sha1(key) => (&oids::SHA1, hmac_tag::<Hmac<Sha1>, 20>(key, &auth_safe)),
        MacKeyRef::Sha256(key) => (&oids::SHA256, hmac_tag::<Hmac<Sha256>, 32>(key, &auth_safe)),
    };
    let digest_algorithm = tlv_parts(SEQUENCE, &[&oid_const(digest_oid), &[NULL, 0]]);
    let digest_info = tlv_parts(SEQUENCE, &[&digest_algorithm, &tlv(OCTET_STRING, &mac)]);
    // DER omits a DEFAULT value, so an iteration count of 1 is not written (OpenSSL agrees).
    let mac_iterations = if sealed.iterations.get() == 1 {
        Vec::new()
    } else {
        small_integer(u64::from(sealed.iterations.get()))
    };
    let mac_data = tlv_parts(
        SEQUENCE,
        &[
            &digest_info,
            &tlv(OCTET_STRING, sealed.mac_salt),
            &mac_iterations,
        ],
    );

    // PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, macData MacData }.
    let auth_safe_info = data_content_info(&auth_safe);
    Ok(tlv_parts(
        SEQUENCE,
        &[&[INTEGER, 1, 3], &auth_safe_info, &mac_data],
    ))
}

/// Checks that the key and each certificate is a single DER `SEQUENCE` and that there is a
/// leaf; returns the leaf.
fn check_contents<'c>(key_pkcs8: &[u8], certs: &[&'c [u8]]) -> Result<&'c [u8], Pkcs12Error> {
    check_sequence(key_pkcs8).map_err(|defect| Pkcs12Error::InvalidPrivateKey { defect })?;
    let Some(leaf) = certs.first() else {
        return Err(Pkcs12Error::NoCertificates);
    };
    for (index, cert) in certs.iter().enumerate() {
        check_sequence(cert).map_err(|defect| Pkcs12Error::InvalidCertificate { index, defect })?;
    }
    Ok(leaf)
}

/// The encrypted parts of a PFX and its MAC key, borrowing the seal's salts and keys.
struct Sealed<'s> {
    /// AlgorithmIdentifier of the key bag encryption.
    key_algorithm: Vec<u8>,
    /// The encrypted PKCS#8 PrivateKeyInfo.
    key_ciphertext: Vec<u8>,
    /// AlgorithmIdentifier of the certificate SafeContents encryption.
    cert_algorithm: Vec<u8>,
    /// The encrypted certificate SafeContents.
    cert_ciphertext: Vec<u8>,
    /// MacData salt.
    mac_salt: &'s [u8],
    /// MacData iteration count.
    iterations: NonZeroU32,
    /// HMAC key of the MacData.
    mac_key: MacKeyRef<'s>,
}

/// An HMAC key of the MacData, by digest.
enum MacKey {
    Sha1(Zeroizing<[u8; 20]>),
    Sha256(Zeroizing<[u8; 32]>),
}

/// A [`MacKey`] borrowed from a [`Pkcs12Seal`].
enum MacKeyRef<'s> {
    Sha1(&'s [u8; 20]),
    Sha256(&'s [u8; 32]),
}

impl Pkcs12Seal {
    /// Encrypts the key and the certificate SafeContents.
    fn seal<'s>(&'s self, key_pkcs8: &[u8], cert_safe_contents: &[u8]) -> Sealed<'s> {
        match &self.0 {
            // OpenSSL 3 defaults: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC for both bags,
            // the SHA-256 MAC key from the PKCS#12 KDF.
            SealKeys::Aes256Pbes2 {
                iterations,
                key_salt,
                key_iv,
                cert_salt,
                cert_iv,
                mac_salt,
                keys,
            } => Sealed {
                key_algorithm: pbes2_algorithm(key_salt, *iterations, key_iv),
                key_ciphertext: aes256_cbc(&keys.key_bag_key, key_iv, key_pkcs8),
                cert_algorithm: pbes2_algorithm(cert_salt, *iterations, cert_iv),
                cert_ciphertext: aes256_cbc(&keys.cert_bag_key, cert_iv, cert_safe_contents),
                mac_salt,
                iterations: *iterations,
                mac_key: MacKeyRef::Sha256(&keys.mac_key),
            },
            // The legacy format: pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix C) for
            // both bags and an HMAC-SHA1 MAC, every key and IV from the PKCS#12 KDF on SHA-1.
            SealKeys::LegacyTripleDesSha1 {
                iterations,
                key_salt,
                cert_salt,
                mac_salt,
                key_bag,
                cert_bag,
                mac_key,
            } => Sealed {
                key_algorithm: pkcs12_pbe_algorithm(key_salt, *iterations),
                key_ciphertext: key_bag.encrypt(key_pkcs8),
                cert_algorithm: pkcs12_pbe_algorithm(cert_salt, *iterations),
                cert_ciphertext: cert_bag.encrypt(cert_safe_contents),
                mac_salt,
                iterations: *iterations,
                mac_key: MacKeyRef::Sha1(mac_key),
            },
        }
    }
}

/// AES-256-CBC with PKCS#7 padding.
fn aes256_cbc(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

impl TripleDesKey {
    /// pbeWithSHAAnd3-KeyTripleDES-CBC's key (ID 1, 24 bytes) and IV (ID 2, 8 bytes) from the
    /// PKCS#12 KDF on SHA-1.
    fn derive(bmp: &[u8], salt: &[u8], iterations: NonZeroU32) -> Self {
        let mut key = Zeroizing::new([0u8; 24]);
        let mut iv = [0u8; 8];
        kdf::pkcs12_kdf::<Sha1>(bmp, salt, kdf::Pkcs12KdfId::Key, iterations, &mut key[..]);
        kdf::pkcs12_kdf::<Sha1>(bmp, salt, kdf::Pkcs12KdfId::Iv, iterations, &mut iv);
        Self { key, iv }
    }

    /// 3DES-EDE-CBC with PKCS#7 padding.
    fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        cbc::Encryptor::<des::TdesEde3>::new((&*self.key).into(), (&self.iv).into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext)
    }
}

/// PBES2 AlgorithmIdentifier (RFC 8018 A.4) as OpenSSL 3 writes it: PBKDF2 with salt and
/// iteration count, no keyLength, prf hmacWithSHA256 with NULL parameters; aes256-CBC with its IV.
fn pbes2_algorithm(salt: &[u8], iterations: NonZeroU32, iv: &[u8]) -> Vec<u8> {
    let prf = tlv_parts(SEQUENCE, &[&oid_const(&oids::HMAC_WITH_SHA256), &[NULL, 0]]);
    let pbkdf2_params = tlv_parts(
        SEQUENCE,
        &[
            &tlv(OCTET_STRING, salt),
            &small_integer(u64::from(iterations.get())),
            &prf,
        ],
    );
    let kdf = tlv_parts(SEQUENCE, &[&oid_const(&oids::PBKDF2), &pbkdf2_params]);
    let scheme = tlv_parts(
        SEQUENCE,
        &[&oid_const(&oids::AES256_CBC), &tlv(OCTET_STRING, iv)],
    );
    let params = tlv_parts(SEQUENCE, &[&kdf, &scheme]);
    tlv_parts(SEQUENCE, &[&oid_const(&oids::PBES2), &params])
}

/// `pkcs-12PbeParams` AlgorithmIdentifier (RFC 7292 Appendix C):
/// `SEQUENCE { salt OCTET STRING, iterations INTEGER }`.
fn pkcs12_pbe_algorithm(salt: &[u8], iterations: NonZeroU32) -> Vec<u8> {
    let params = tlv_parts(
        SEQUENCE,
        &[
            &tlv(OCTET_STRING, salt),
            &small_integer(u64::from(iterations.get())),
        ],
    );
    tlv_parts(SEQUENCE, &[&oid_const(&oids::PBE_SHA1_3DES), &params])
}

/// HMAC tag over `message` with an `N`-byte key, `N` at most the 64-byte block of SHA-1 and
/// SHA-256 (the MAC keys are 20 or 32 bytes).
fn hmac_tag<M: Mac + KeyInit, const N: usize>(key: &[u8; N], message: &[u8]) -> Vec<u8> {
    const { assert!(N <= 64, "HMAC key longer than the SHA-1/SHA-256 block") };
    // RFC 2104 pads a key shorter than the block with zeros, so handing HMAC the zero-padded
    // 64-byte block is the same key, through the infallible `KeyInit::new`.
    let mut block = Zeroizing::new([0u8; 64]);
    block[..N].copy_from_slice(key);
    let mut mac = <M as KeyInit>::new(GenericArray::from_slice(&block[..]));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `ContentInfo { id-data, [0] EXPLICIT OCTET STRING content }`.
fn data_content_info(content: &[u8]) -> Vec<u8> {
    let octets = tlv(OCTET_STRING, content);
    let explicit = tlv(context_constructed(0), &octets);
    tlv_parts(SEQUENCE, &[&oid_const(&oids::DATA), &explicit])
}

/// `ContentInfo { id-encryptedData, [0] EXPLICIT EncryptedData }` with
/// `EncryptedData ::= SEQUENCE { version 0, EncryptedContentInfo }` and
/// `EncryptedContentInfo ::= SEQUENCE { id-data, algorithm, [0] IMPLICIT OCTET STRING }`.
fn encrypted_data_content_info(algorithm: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let mut encrypted_content = Vec::with_capacity(ciphertext.len() + 4);
    push_tlv(&mut encrypted_content, context_primitive(0), ciphertext);
    let content_info = tlv_parts(
        SEQUENCE,
        &[&oid_const(&oids::DATA), algorithm, &encrypted_content],
    );
    let encrypted_data = tlv_parts(SEQUENCE, &[&[INTEGER, 1, 0], &content_info]);
    let explicit = tlv(context_constructed(0), &encrypted_data);
    tlv_parts(SEQUENCE, &[&oid_const(&oids::ENCRYPTED_DATA), &explicit])
}

/// `SafeBag ::= SEQUENCE { bagId, bagValue [0] EXPLICIT, bagAttributes SET OF OPTIONAL }`;
/// `attributes` is the already-encoded `SET`.
fn safe_bag(bag_id: &ObjectIdentifier, value: &[u8], attributes: Option<&[u8]>) -> Vec<u8> {
    let explicit = tlv(context_constructed(0), value);
    tlv_parts(
        SEQUENCE,
        &[
            &oid_const(bag_id),
            &explicit,
            attributes.unwrap_or_default(),
        ],
    )
}

/// A certBag SafeBag holding an X.509 certificate (RFC 7292 §4.2.3).
fn cert_bag(cert: &[u8], attributes: Option<&[u8]>) -> Vec<u8> {
    let value = tlv(context_constructed(0), &tlv(OCTET_STRING, cert));
    let bag = tlv_parts(SEQUENCE, &[&oid_const(&oids::X509_CERTIFICATE), &value]);
    safe_bag(&oids::CERT_BAG, &bag, attributes)
}

/// The bag attributes `SET OF PKCS12Attribute`: localKeyId and, if any, friendlyName, sorted
/// by encoding as DER requires of a `SET OF`.
fn bag_attributes(local_key_id: &[u8], friendly_name_bmp: Option<&[u8]>) -> Vec<u8> {
    let mut attributes = vec![attribute(
        &oids::LOCAL_KEY_ID,
        &tlv(OCTET_STRING, local_key_id),
    )];
    if let Some(name) = friendly_name_bmp {
        attributes.push(attribute(&oids::FRIENDLY_NAME, &tlv(BMP_STRING, name)));
    }
    attributes.sort();
    let refs: Vec<&[u8]> = attributes.iter().map(Vec::as_slice).collect();
    tlv_parts(SET, &refs)
}

/// `PKCS12Attribute ::= SEQUENCE { attrId, attrValues SET OF }` with one value.
fn attribute(id: &ObjectIdentifier, value: &[u8]) -> Vec<u8> {
    tlv_parts(SEQUENCE, &[&oid_const(id), &tlv(SET, value)])
}

/// The friendly name as `BMPString` content (UTF-16BE, no terminator), or `None` when empty.
/// Whether [`build`] takes `name` as a friendly name (at most 1,024 characters, no control
/// characters, all in the BMP); the error names the defect.
pub fn check_friendly_name(name: &str) -> Result<(), Pkcs12Error> {
    friendly_name_bmp(name).map(drop)
}

fn friendly_name_bmp(name: &str) -> Result<Option<Vec<u8>>, Pkcs12Error> {
    if name.is_empty() {
        return Ok(None);
    }
    let chars = name.chars().count();
    if chars > MAX_FRIENDLY_NAME_UNITS {
        return Err(Pkcs12Error::InvalidFriendlyName(
            FriendlyNameDefect::TooLong { chars },
        ));
    }
    if let Some(index) = name.chars().position(char::is_control) {
        return Err(Pkcs12Error::InvalidFriendlyName(
            FriendlyNameDefect::ControlCharacter { index },
        ));
    }
    if let Some(index) = name.chars().position(|c| u32::from(c) > 0xffff) {
        return Err(Pkcs12Error::InvalidFriendlyName(
            FriendlyNameDefect::OutsideBmp { index },
        ));
    }
    Ok(Some(
        name.encode_utf16().flat_map(u16::to_be_bytes).collect(),
    ))
}

/// Checks that `bytes` is exactly one DER `SEQUENCE` (tag, definite length, nothing after).
fn check_sequence(bytes: &[u8]) -> Result<(), der::Error> {
    use der::{Decode, Tagged};
    let any = der::asn1::AnyRef::from_der(bytes)?;
    if any.tag() != der::Tag::Sequence {
        return Err(der::Error::new(
            der::ErrorKind::TagUnexpected {
                expected: Some(der::Tag::Sequence),
                actual: any.tag(),
            },
            der::Length::ZERO,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
