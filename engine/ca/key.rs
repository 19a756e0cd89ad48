//! The CA private key: loading it from PEM (plain or passphrase-encrypted PKCS#8, SEC1 or
//! PKCS#1), storing it as PKCS#8 PEM, and signing with aws-lc-rs.

use std::fmt;
use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use der::asn1::ObjectIdentifier;
use der::pem::LineEnding;
use der::Decode;
use pkcs8::pkcs5;
use zeroize::Zeroizing;

use super::CaError;
use crate::keys::{self, KeyAlgorithm, SignatureAlgorithm};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// PBKDF2-HMAC-SHA256 iterations for a stored encrypted CA key: OWASP's 2023 figure for
/// PBKDF2-SHA256. The key is decrypted once per process, so the ~0.1 s this costs is paid once.
const PBKDF2_ITERATIONS: u32 = 600_000;

/// A CA key passphrase (redacted Debug, zeroized; clones are zeroized too).
#[derive(Clone)]
pub struct CaPassphrase(Zeroizing<String>);

impl CaPassphrase {
    /// Wraps a passphrase; it must not be empty (an empty passphrase protects nothing and
    /// OpenSSL treats it as "no passphrase").
    pub fn new(s: String) -> Result<Self, CaError> {
        let s = Zeroizing::new(s);
        if s.is_empty() {
            return Err(CaError::EmptyPassphrase);
        }
        Ok(CaPassphrase(s))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for CaPassphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaPassphrase(<redacted>)")
    }
}

/// The loaded CA private key, ready to sign. The backend key objects free (and aws-lc
/// cleanses) their memory on drop.
pub(crate) struct CaSigningKey {
    algorithm: KeyAlgorithm,
    inner: Inner,
    /// subjectPublicKey BIT STRING contents: uncompressed point (EC) or RSAPublicKey DER.
    public_key_bits: Vec<u8>,
}

enum Inner {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    /// In a PKCS#11 token: certmill holds a handle, never the key.
    Pkcs11(Box<super::pkcs11::Pkcs11Key>),
}

impl fmt::Debug for CaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaSigningKey")
            .field("algorithm", &self.algorithm)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// PKCS#1 v1.5 padding for an RSA signature algorithm (`fits` has checked it is RSA).
fn rsa_padding(algorithm: SignatureAlgorithm) -> &'static dyn signature::RsaEncoding {
    match algorithm {
        SignatureAlgorithm::Sha384WithRsaEncryption => &signature::RSA_PKCS1_SHA384,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

impl CaSigningKey {
    /// Generates a new CA key with aws-lc-rs.
    pub(crate) fn generate(algorithm: KeyAlgorithm) -> Result<Self, CaError> {
        let generated = keys::generate(algorithm)?;
        Self::from_pkcs8_der(generated.pkcs8_der(), Path::new("<generated>"))
    }

    /// Parses an unencrypted PKCS#8 PrivateKeyInfo; `path` only names the source in errors.
    pub(crate) fn from_pkcs8_der(der: &[u8], path: &Path) -> Result<Self, CaError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|source| CaError::KeyDer {
            path: path.to_path_buf(),
            source,
        })?;
        let oid = info.algorithm.oid;
        if oid == ID_EC_PUBLIC_KEY {
            let curve =
                info.algorithm
                    .parameters_oid()
                    .map_err(|_| CaError::UnsupportedKeyAlgorithm {
                        path: path.to_path_buf(),
                        oid,
                    })?;
            let (algorithm, signing) = if curve == PRIME256V1 {
                (
                    KeyAlgorithm::EcP256,
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                )
            } else if curve == SECP384R1 {
                (
                    KeyAlgorithm::EcP384,
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                )
            } else {
                return Err(CaError::UnsupportedCurve {
                    path: path.to_path_buf(),
                    oid: curve,
                });
            };
            let pair =
                EcdsaKeyPair::from_pkcs8(signing, der).map_err(|source| CaError::KeyRejected {
                    path: path.to_path_buf(),
                    source,
                })?;
            Ok(Self::from_ec(algorithm, pair))
        } else if oid == RSA_ENCRYPTION {
            let pair = RsaKeyPair::from_pkcs8(der).map_err(|source| CaError::KeyRejected {
                path: path.to_path_buf(),
                source,
            })?;
            Self::from_rsa(pair, path)
        } else {
            Err(CaError::UnsupportedKeyAlgorithm {
                path: path.to_path_buf(),
                oid,
            })
        }
    }

    /// Parses a SEC1 `ECPrivateKey` (OpenSSL's "EC PRIVATE KEY") on P-256 or P-384.
    fn from_sec1_der(der: &[u8], path: &Path) -> Result<Self, CaError> {
        // The SEC1 parser is told the curve and rejects a key on another one.
        if let Ok(pair) =
            EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der)
        {
            return Ok(Self::from_ec(KeyAlgorithm::EcP256, pair));
        }
        EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, der)
            .map(|pair| Self::from_ec(KeyAlgorithm::EcP384, pair))
            .map_err(|source| CaError::KeyRejected {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Parses a PKCS#1 `RSAPrivateKey` (OpenSSL's "RSA PRIVATE KEY").
    fn from_pkcs1_der(der: &[u8], path: &Path) -> Result<Self, CaError> {
        let pair = RsaKeyPair::from_der(der).map_err(|source| CaError::KeyRejected {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_rsa(pair, path)
    }

    fn from_ec(algorithm: KeyAlgorithm, pair: EcdsaKeyPair) -> Self {
        let public_key_bits = pair.public_key().as_ref().to_vec();
        CaSigningKey {
            algorithm,
            inner: Inner::Ec(pair),
            public_key_bits,
        }
    }

    fn from_rsa(pair: RsaKeyPair, path: &Path) -> Result<Self, CaError> {
        let bits = pair.public_modulus_len() * 8;
        let algorithm =
            KeyAlgorithm::from_rsa_bits(bits).ok_or_else(|| CaError::UnsupportedRsaKeySize {
                path: path.to_path_buf(),
                bits,
            })?;
        let public_key_bits = pair.public_key().as_ref().to_vec();
        Ok(CaSigningKey {
            algorithm,
            inner: Inner::Rsa(pair),
            public_key_bits,
        })
    }

    /// A key held in a PKCS#11 token.
    pub(crate) fn from_pkcs11(key: super::pkcs11::Pkcs11Key) -> Self {
        CaSigningKey {
            algorithm: key.algorithm(),
            public_key_bits: key.public_key_bits().to_vec(),
            inner: Inner::Pkcs11(Box::new(key)),
        }
    }

    /// Where the key lives when it is in a token.
    pub(crate) fn pkcs11_config(&self) -> Option<&super::pkcs11::Pkcs11Config> {
        match &self.inner {
            Inner::Pkcs11(key) => Some(key.config()),
            _ => None,
        }
    }

    pub(crate) fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// subjectPublicKey BIT STRING contents (what a certificate for this key carries).
    pub(crate) fn public_key_bits(&self) -> &[u8] {
        &self.public_key_bits
    }

    /// Signs `message`; ECDSA gives a DER `Ecdsa-Sig-Value`, RSA a PKCS#1 v1.5 signature.
    pub(crate) fn sign(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, CaError> {
        if !algorithm.fits(self.algorithm) {
            return Err(CaError::AlgorithmMismatch {
                requested: algorithm,
                key: self.algorithm,
            });
        }
        // aws-lc ignores the rng argument (it uses its own DRBG); ring's API requires one.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.inner {
            // `fits` above guarantees the key pair's own digest is the requested one: the pair
            // was built for its curve's hash and `fits` only admits that pairing.
            Inner::Ec(pair) => pair
                .sign(&rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| CaError::SigningFailed { algorithm }),
            Inner::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(rsa_padding(algorithm), &rng, message, &mut sig)
                    .map_err(|_| CaError::SigningFailed { algorithm })?;
                Ok(sig)
            }
            Inner::Pkcs11(key) => key.sign(algorithm, message),
        }
    }

    /// Signs a message given by its digest (computed by the caller, in pieces); the digest's
    /// algorithm must be `algorithm`'s ([`SignatureAlgorithm::digest_algorithm`]). Same
    /// signature encodings as [`CaSigningKey::sign`].
    pub(crate) fn sign_digest(
        &self,
        algorithm: SignatureAlgorithm,
        digest: &aws_lc_rs::digest::Digest,
    ) -> Result<Vec<u8>, CaError> {
        if !algorithm.fits(self.algorithm) || digest.algorithm() != algorithm.digest_algorithm() {
            return Err(CaError::AlgorithmMismatch {
                requested: algorithm,
                key: self.algorithm,
            });
        }
        match &self.inner {
            Inner::Ec(pair) => pair
                .sign_digest(digest)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| CaError::SigningFailed { algorithm }),
            Inner::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign_digest(rsa_padding(algorithm), digest, &mut sig)
                    .map_err(|_| CaError::SigningFailed { algorithm })?;
                Ok(sig)
            }
            Inner::Pkcs11(key) => key.sign_digest(algorithm, digest),
        }
    }

    /// PKCS#8 v1 DER of the private key.
    fn pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, CaError> {
        let exported = match &self.inner {
            Inner::Ec(pair) => pair.to_pkcs8v1().map(|doc| doc.as_ref().to_vec()),
            Inner::Rsa(pair) => pair.as_der().map(|der| der.as_ref().to_vec()),
            // A token key is not extractable: there is nothing to export.
            Inner::Pkcs11(_) => {
                return Err(CaError::KeyExport {
                    algorithm: self.algorithm,
                })
            }
        };
        exported
            .map(Zeroizing::new)
            .map_err(|_| CaError::KeyExport {
                algorithm: self.algorithm,
            })
    }

    /// The key as PEM for a key file: `PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` (PBES2,
    /// PBKDF2-HMAC-SHA256, AES-256-CBC, which `openssl pkey -passin` reads) with a passphrase.
    pub(crate) fn to_pem(
        &self,
        passphrase: Option<&CaPassphrase>,
        path: &Path,
    ) -> Result<Zeroizing<String>, CaError> {
        let der = self.pkcs8_der()?;
        let Some(passphrase) = passphrase else {
            return der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der)
                .map(Zeroizing::new)
                .map_err(|e| CaError::KeyEncoding {
                    path: path.to_path_buf(),
                    source: e.into(),
                });
        };
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        keys::random_bytes(&mut salt)?;
        keys::random_bytes(&mut iv)?;
        let encryption_error = |cause| CaError::KeyEncryption {
            path: path.to_path_buf(),
            cause,
        };
        let params =
            pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
                .map_err(encryption_error)?;
        let info = pkcs8::PrivateKeyInfo::from_der(&der).map_err(|source| CaError::KeyDer {
            path: path.to_path_buf(),
            source,
        })?;
        let encrypted = info
            .encrypt_with_params(params, passphrase.as_bytes())
            .map_err(|e| match e {
                pkcs8::Error::Asn1(source) => CaError::KeyDer {
                    path: path.to_path_buf(),
                    source,
                },
                pkcs8::Error::EncryptedPrivateKey(cause) => encryption_error(cause),
                _ => encryption_error(pkcs5::Error::EncryptFailed),
            })?;
        encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map_err(|source| CaError::KeyEncoding {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Reads a key from PEM text. Accepts `PRIVATE KEY`, `ENCRYPTED PRIVATE KEY` (PBES2),
    /// `EC PRIVATE KEY` and `RSA PRIVATE KEY` blocks (other blocks such as `EC PARAMETERS` are
    /// skipped); `path` only names the source in errors.
    pub(crate) fn from_pem(
        pem: &str,
        path: &Path,
        passphrase: Option<&CaPassphrase>,
    ) -> Result<Self, CaError> {
        for block in super::x509::pem_blocks(pem, path)? {
            let der = Zeroizing::new(block.der);
            match block.label.as_str() {
                "PRIVATE KEY" => return Self::from_pkcs8_der(&der, path),
                "EC PRIVATE KEY" => return Self::from_sec1_der(&der, path),
                "RSA PRIVATE KEY" => return Self::from_pkcs1_der(&der, path),
                "ENCRYPTED PRIVATE KEY" => {
                    let passphrase = passphrase
                        .ok_or_else(|| CaError::PassphraseRequired(path.to_path_buf()))?;
                    let plain = decrypt(&der, path, passphrase)?;
                    return Self::from_pkcs8_der(&plain, path);
                }
                _ => {}
            }
        }
        Err(CaError::PemMissing {
            path: path.to_path_buf(),
            expected: "PRIVATE KEY",
        })
    }
}

/// Decrypts an `EncryptedPrivateKeyInfo`. A failed decryption (bad padding) or a plaintext that
/// is not a PrivateKeyInfo both mean the passphrase was wrong: CBC padding alone lets about one
/// wrong passphrase in 256 through.
fn decrypt(
    der: &[u8],
    path: &Path,
    passphrase: &CaPassphrase,
) -> Result<Zeroizing<Vec<u8>>, CaError> {
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(der).map_err(|source| CaError::KeyDer {
        path: path.to_path_buf(),
        source,
    })?;
    let plain = info
        .encryption_algorithm
        .decrypt(passphrase.as_bytes(), info.encrypted_data)
        .map(Zeroizing::new)
        .map_err(|e| match e {
            // pkcs5 0.7 reports bad CBC padding on decryption as `EncryptFailed`.
            pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed => {
                CaError::WrongPassphrase(path.to_path_buf())
            }
            cause => CaError::KeyEncryption {
                path: path.to_path_buf(),
                cause,
            },
        })?;
    if pkcs8::PrivateKeyInfo::from_der(&plain).is_err() {
        return Err(CaError::WrongPassphrase(path.to_path_buf()));
    }
    Ok(plain)
}
