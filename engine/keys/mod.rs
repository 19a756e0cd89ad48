//! Key algorithms, device key generation, signature algorithms and the CSPRNG: the one module
//! that knows which crypto backend (aws-lc-rs) generates subject keys.
//!
//! It turns the profile syntax (`"EC:P-256"`, `"sha256WithRSAEncryption"`) into closed enums,
//! generates device key pairs as PKCS#8 v1 plus SubjectPublicKeyInfo DER ready to be dropped
//! into a certificate template and a PKCS#12, and hands out random bytes for serials and salts.
//!
//! It does not touch CA keys (that is `ca/`), does not sign certificates and does not build
//! PKCS#12 files. [`KeypairQueue`] pre-generates device key pairs in idle time (`pool.rs`).
//! Private key bytes never leave a [`GeneratedKey`] except by reference, are zeroized when it
//! is dropped, and never appear in its `Debug` output.

mod pool;

pub use pool::{
    parse_config as parse_pool_config, KeypairQueue, LaneStats, PoolConfigDefect, PoolStats,
    MAX_CAPACITY as MAX_POOL_CAPACITY,
};

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _};

/// Key algorithm of a subject public key, in the profile syntax `"EC:P-256"` etc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 (secp256r1, `"EC:P-256"`).
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1, `"EC:P-384"`).
    EcP384,
    /// RSA with a 2048-bit modulus (`"RSA:2048"`).
    Rsa2048,
    /// RSA with a 3072-bit modulus (`"RSA:3072"`).
    Rsa3072,
    /// RSA with a 4096-bit modulus (`"RSA:4096"`).
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every supported key algorithm, in declaration order.
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    /// Parses the profile syntax: `"EC:P-256"`, `"EC:P-384"`, `"RSA:2048"`, `"RSA:3072"`,
    /// `"RSA:4096"` (exact spelling, case-sensitive).
    pub fn from_syntax(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.syntax() == s)
    }

    /// The profile syntax of this algorithm, the inverse of [`KeyAlgorithm::from_syntax`].
    pub fn syntax(self) -> &'static str {
        match self {
            KeyAlgorithm::EcP256 => "EC:P-256",
            KeyAlgorithm::EcP384 => "EC:P-384",
            KeyAlgorithm::Rsa2048 => "RSA:2048",
            KeyAlgorithm::Rsa3072 => "RSA:3072",
            KeyAlgorithm::Rsa4096 => "RSA:4096",
        }
    }

    /// Whether this is an elliptic-curve algorithm.
    pub fn is_ec(self) -> bool {
        matches!(self, KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384)
    }

    /// The signature algorithm a CA key of this algorithm uses by default: the curve's own hash
    /// for ECDSA (P-256/SHA-256, P-384/SHA-384, as Mozilla Root Store Policy 5.1 requires) and
    /// SHA-256 for RSA.
    pub fn default_signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcP256 => SignatureAlgorithm::EcdsaWithSha256,
            KeyAlgorithm::EcP384 => SignatureAlgorithm::EcdsaWithSha384,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                SignatureAlgorithm::Sha256WithRsaEncryption
            }
        }
    }

    /// RSA modulus size in bits, `None` for EC.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyAlgorithm::Rsa2048 => Some(2048),
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => None,
        }
    }

    /// The RSA key algorithm with exactly this modulus size, if supported.
    pub fn from_rsa_bits(bits: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.rsa_bits() == Some(bits))
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.syntax())
    }
}

/// Signature algorithm of a certificate.
///
/// ```text
/// AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
/// ```
/// ECDSA identifiers carry no parameters (RFC 5758 section 3.2); RSA PKCS#1 v1.5 identifiers
/// carry NULL (RFC 4055 section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// `ecdsa-with-SHA256`, 1.2.840.10045.4.3.2.
    EcdsaWithSha256,
    /// `ecdsa-with-SHA384`, 1.2.840.10045.4.3.3.
    EcdsaWithSha384,
    /// `sha256WithRSAEncryption`, 1.2.840.113549.1.1.11.
    Sha256WithRsaEncryption,
    /// `sha384WithRSAEncryption`, 1.2.840.113549.1.1.12.
    Sha384WithRsaEncryption,
}

/// `SEQUENCE { ecdsa-with-SHA256 }`.
const ECDSA_WITH_SHA256_DER: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// `SEQUENCE { ecdsa-with-SHA384 }`.
const ECDSA_WITH_SHA384_DER: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
/// `SEQUENCE { sha256WithRSAEncryption, NULL }`.
const SHA256_WITH_RSA_DER: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
/// `SEQUENCE { sha384WithRSAEncryption, NULL }`.
const SHA384_WITH_RSA_DER: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00,
];

impl SignatureAlgorithm {
    /// Every supported signature algorithm, in declaration order.
    pub const ALL: [SignatureAlgorithm; 4] = [
        SignatureAlgorithm::EcdsaWithSha256,
        SignatureAlgorithm::EcdsaWithSha384,
        SignatureAlgorithm::Sha256WithRsaEncryption,
        SignatureAlgorithm::Sha384WithRsaEncryption,
    ];

    /// Parses the profile name: `"ecdsa-with-SHA256"`, `"ecdsa-with-SHA384"`,
    /// `"sha256WithRSAEncryption"`, `"sha384WithRSAEncryption"` (exact spelling).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The name used in profiles and in OpenSSL output, inverse of
    /// [`SignatureAlgorithm::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::EcdsaWithSha256 => "ecdsa-with-SHA256",
            SignatureAlgorithm::EcdsaWithSha384 => "ecdsa-with-SHA384",
            SignatureAlgorithm::Sha256WithRsaEncryption => "sha256WithRSAEncryption",
            SignatureAlgorithm::Sha384WithRsaEncryption => "sha384WithRSAEncryption",
        }
    }

    /// Full DER of the AlgorithmIdentifier SEQUENCE (ECDSA: no parameters; RSA: NULL
    /// parameters, RFC 4055/5758).
    pub fn algorithm_identifier_der(self) -> &'static [u8] {
        match self {
            SignatureAlgorithm::EcdsaWithSha256 => ECDSA_WITH_SHA256_DER,
            SignatureAlgorithm::EcdsaWithSha384 => ECDSA_WITH_SHA384_DER,
            SignatureAlgorithm::Sha256WithRsaEncryption => SHA256_WITH_RSA_DER,
            SignatureAlgorithm::Sha384WithRsaEncryption => SHA384_WITH_RSA_DER,
        }
    }

    /// Whether an issuer key of this algorithm can make this signature.
    ///
    /// RSA signatures fit every RSA key. ECDSA signatures fit the EC key whose curve matches the
    /// hash (P-256 with SHA-256, P-384 with SHA-384): Mozilla Root Store Policy 5.1 allows only
    /// these pairs, and aws-lc-rs has no signing algorithm for the crossed pairs.
    pub fn fits(self, issuer_key: KeyAlgorithm) -> bool {
        match self {
            SignatureAlgorithm::EcdsaWithSha256 => issuer_key == KeyAlgorithm::EcP256,
            SignatureAlgorithm::EcdsaWithSha384 => issuer_key == KeyAlgorithm::EcP384,
            SignatureAlgorithm::Sha256WithRsaEncryption
            | SignatureAlgorithm::Sha384WithRsaEncryption => !issuer_key.is_ec(),
        }
    }

    /// The hash this signature algorithm signs over, for signing a digest computed in
    /// pieces (a CRL streamed from the store: `IssuingCa::sign_digest`).
    pub fn digest_algorithm(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            SignatureAlgorithm::EcdsaWithSha256 | SignatureAlgorithm::Sha256WithRsaEncryption => {
                &aws_lc_rs::digest::SHA256
            }
            SignatureAlgorithm::EcdsaWithSha384 | SignatureAlgorithm::Sha384WithRsaEncryption => {
                &aws_lc_rs::digest::SHA384
            }
        }
    }

    /// The signature algorithm whose AlgorithmIdentifier is exactly `der`, if supported.
    pub fn from_algorithm_identifier_der(der: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.algorithm_identifier_der() == der)
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// SubjectPublicKeyInfo DER up to and including the BIT STRING's unused-bits byte, for a P-256
/// key: `SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65-byte point) }`.
const P256_SPKI_HEADER: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Uncompressed P-256 point length: 0x04 || X (32) || Y (32).
const P256_POINT_LEN: usize = 65;
/// Same as [`P256_SPKI_HEADER`] for P-384: `{ id-ecPublicKey, secp384r1 }`, 97-byte point.
const P384_SPKI_HEADER: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
/// Uncompressed P-384 point length: 0x04 || X (48) || Y (48).
const P384_POINT_LEN: usize = 97;

/// The PKCS#8 DER as the backend returned it; both types zeroize their bytes on drop.
enum Pkcs8Secret {
    /// From `EcdsaKeyPair::to_pkcs8v1`.
    Ec(aws_lc_rs::pkcs8::Document),
    /// From `rsa::KeyPair::as_der`.
    Rsa(Pkcs8V1Der<'static>),
}

impl Pkcs8Secret {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Pkcs8Secret::Ec(doc) => doc.as_ref(),
            Pkcs8Secret::Rsa(der) => der.as_ref(),
        }
    }
}

/// A freshly generated device key pair.
///
/// Holds the private key only as PKCS#8 DER (zeroized on drop) plus the public key as
/// SubjectPublicKeyInfo DER; `Debug` shows the algorithm and nothing secret.
pub struct GeneratedKey {
    algorithm: KeyAlgorithm,
    pkcs8: Pkcs8Secret,
    spki: Vec<u8>,
    /// Offset in `spki` where the BIT STRING contents (after the unused-bits byte) begin; they
    /// run to the end of `spki`.
    key_bits_start: usize,
}

impl GeneratedKey {
    /// The algorithm the key was generated for.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// PKCS#8 PrivateKeyInfo DER (v1, what openssl/keytool/python read inside a PKCS#12).
    /// Zeroized on drop.
    pub fn pkcs8_der(&self) -> &[u8] {
        self.pkcs8.as_bytes()
    }

    /// SubjectPublicKeyInfo DER (EC: id-ecPublicKey + named curve, uncompressed point; RSA:
    /// rsaEncryption + NULL).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The subjectPublicKey BIT STRING contents without the unused-bits byte (for the SKI,
    /// RFC 5280 section 4.2.1.2 method 1): the uncompressed point for EC, the `RSAPublicKey`
    /// DER for RSA.
    pub fn public_key_bits(&self) -> &[u8] {
        &self.spki[self.key_bits_start..]
    }
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("algorithm", &self.algorithm)
            .field("pkcs8", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Errors of key generation and randomness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The backend generated a key but could not export it as PKCS#8 or SubjectPublicKeyInfo,
    /// or exported something of an unexpected shape.
    #[error("could not encode a freshly generated {algorithm} key")]
    Encoding {
        /// Algorithm of the key that failed to export.
        algorithm: KeyAlgorithm,
    },
    /// A keypair pool's filler thread could not be started.
    #[error("could not start a keypair pool filler thread: {source}")]
    FillerThread {
        /// The cause.
        source: std::io::Error,
    },
    /// The backend failed to generate a key pair.
    #[error("could not generate a {algorithm} key pair")]
    Generation {
        /// Algorithm that was requested.
        algorithm: KeyAlgorithm,
    },
    /// An entry of a keypair pool configuration (`CERTMILL_KEYPAIR_QUEUE`) is malformed.
    #[error("keypair pool entry {entry:?}: {reason}")]
    PoolConfig {
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: PoolConfigDefect,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Generates a new key pair of `algorithm`.
///
/// EC keys take about 15 µs (the SPKI is a constant header plus the point the backend already
/// holds); RSA keys take tens to hundreds of milliseconds.
pub fn generate(algorithm: KeyAlgorithm) -> Result<GeneratedKey, KeyError> {
    match algorithm {
        KeyAlgorithm::EcP256 => generate_ec(
            algorithm,
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            P256_SPKI_HEADER,
            P256_POINT_LEN,
        ),
        KeyAlgorithm::EcP384 => generate_ec(
            algorithm,
            &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            P384_SPKI_HEADER,
            P384_POINT_LEN,
        ),
        KeyAlgorithm::Rsa2048 => generate_rsa(algorithm, KeySize::Rsa2048),
        KeyAlgorithm::Rsa3072 => generate_rsa(algorithm, KeySize::Rsa3072),
        KeyAlgorithm::Rsa4096 => generate_rsa(algorithm, KeySize::Rsa4096),
    }
}

fn generate_ec(
    algorithm: KeyAlgorithm,
    signing: &'static aws_lc_rs::signature::EcdsaSigningAlgorithm,
    spki_header: &'static [u8],
    point_len: usize,
) -> Result<GeneratedKey, KeyError> {
    let pair = EcdsaKeyPair::generate(signing).map_err(|_| KeyError::Generation { algorithm })?;
    let pkcs8 = pair
        .to_pkcs8v1()
        .map_err(|_| KeyError::Encoding { algorithm })?;
    // `PublicKey::as_ref` is the uncompressed SEC1 point (0x04 || X || Y).
    let point = pair.public_key().as_ref();
    if point.len() != point_len || point.first() != Some(&0x04) {
        return Err(KeyError::Encoding { algorithm });
    }
    let mut spki = Vec::with_capacity(spki_header.len() + point_len);
    spki.extend_from_slice(spki_header);
    spki.extend_from_slice(point);
    Ok(GeneratedKey {
        algorithm,
        pkcs8: Pkcs8Secret::Ec(pkcs8),
        spki,
        key_bits_start: spki_header.len(),
    })
}

fn generate_rsa(algorithm: KeyAlgorithm, size: KeySize) -> Result<GeneratedKey, KeyError> {
    let pair =
        aws_lc_rs::rsa::KeyPair::generate(size).map_err(|_| KeyError::Generation { algorithm })?;
    let pkcs8: Pkcs8V1Der<'static> = pair
        .as_der()
        .map_err(|_| KeyError::Encoding { algorithm })?;
    let public = pair.public_key();
    let spki_der = public
        .as_der()
        .map_err(|_| KeyError::Encoding { algorithm })?;
    let spki = spki_der.as_ref().to_vec();
    // The SPKI's BIT STRING is its last element and holds exactly the RSAPublicKey DER, so the
    // key bits are the SPKI's tail; check rather than trust, because the SKI depends on it.
    let key_bits = public.as_ref();
    let key_bits_start = spki
        .len()
        .checked_sub(key_bits.len())
        .filter(|&start| start >= 1 && spki[start..] == *key_bits && spki[start - 1] == 0)
        .ok_or(KeyError::Encoding { algorithm })?;
    Ok(GeneratedKey {
        algorithm,
        pkcs8: Pkcs8Secret::Rsa(pkcs8),
        spki,
        key_bits_start,
    })
}

/// Fills `out` from the CSPRNG (aws-lc's, seeded from the operating system).
pub fn random_bytes(out: &mut [u8]) -> Result<(), KeyError> {
    aws_lc_rs::rand::fill(out).map_err(|_| KeyError::Random)
}

/// Seeds the CSPRNG on a thread of its own, for a process about to issue.
///
/// aws-lc seeds its generator on first use from CPU jitter, which took 30-35 ms of CPU on
/// this machine: inside the first batch of a process (its lock token) it delayed every
/// device. Started at launch, it runs while the CA key, the profile and the input are read.
/// A failure here is not reported: the first real use fails the same way, with its error.
pub fn warm_random() {
    let _ = std::thread::Builder::new()
        .name("certmill-rng-seed".into())
        .spawn(|| random_bytes(&mut [0u8; 1]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{self, UnparsedPublicKey};
    use der::asn1::{BitStringRef, Null, ObjectIdentifier};
    use der::{Decode, Encode};
    use std::process::Command;
    use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};

    const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

    fn openssl_available() -> bool {
        Command::new("openssl")
            .arg("version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    #[test]
    fn key_syntax_round_trips() {
        for a in KeyAlgorithm::ALL {
            assert_eq!(KeyAlgorithm::from_syntax(a.syntax()), Some(a));
            assert_eq!(a.to_string(), a.syntax());
            assert!(a.default_signature_algorithm().fits(a));
            assert_eq!(a.is_ec(), a.rsa_bits().is_none());
        }
        assert_eq!(
            KeyAlgorithm::from_syntax("EC:P-256"),
            Some(KeyAlgorithm::EcP256)
        );
        assert_eq!(
            KeyAlgorithm::from_syntax("RSA:4096"),
            Some(KeyAlgorithm::Rsa4096)
        );
        for bad in [
            "",
            "ec:p-256",
            "EC:P-521",
            "RSA:1024",
            "RSA:2048 ",
            "Ed25519",
        ] {
            assert_eq!(KeyAlgorithm::from_syntax(bad), None, "{bad:?}");
        }
        assert_eq!(
            KeyAlgorithm::from_rsa_bits(3072),
            Some(KeyAlgorithm::Rsa3072)
        );
        assert_eq!(KeyAlgorithm::from_rsa_bits(1024), None);
    }

    #[test]
    fn signature_names_round_trip() {
        for s in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::from_name(s.name()), Some(s));
            assert_eq!(
                SignatureAlgorithm::from_algorithm_identifier_der(s.algorithm_identifier_der()),
                Some(s)
            );
        }
        assert_eq!(SignatureAlgorithm::from_name("sha256WithRSA"), None);
        assert_eq!(SignatureAlgorithm::from_name("ECDSA-WITH-SHA256"), None);
    }

    #[test]
    fn algorithm_identifiers_match_der_crate() {
        let cases = [
            (
                SignatureAlgorithm::EcdsaWithSha256,
                "1.2.840.10045.4.3.2",
                false,
            ),
            (
                SignatureAlgorithm::EcdsaWithSha384,
                "1.2.840.10045.4.3.3",
                false,
            ),
            (
                SignatureAlgorithm::Sha256WithRsaEncryption,
                "1.2.840.113549.1.1.11",
                true,
            ),
            (
                SignatureAlgorithm::Sha384WithRsaEncryption,
                "1.2.840.113549.1.1.12",
                true,
            ),
        ];
        for (alg, oid, null) in cases {
            let expected = AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap(oid),
                parameters: null.then(|| der::Any::from(Null)),
            }
            .to_der()
            .unwrap();
            assert_eq!(alg.algorithm_identifier_der(), expected.as_slice(), "{alg}");
            let decoded =
                AlgorithmIdentifierOwned::from_der(alg.algorithm_identifier_der()).unwrap();
            assert_eq!(decoded.oid.to_string(), oid);
        }
    }

    #[test]
    fn fits_matches_key_families() {
        use KeyAlgorithm::*;
        use SignatureAlgorithm::*;
        assert!(EcdsaWithSha256.fits(EcP256));
        assert!(EcdsaWithSha384.fits(EcP384));
        assert!(!EcdsaWithSha256.fits(EcP384));
        assert!(!EcdsaWithSha384.fits(EcP256));
        for rsa in [Rsa2048, Rsa3072, Rsa4096] {
            assert!(Sha256WithRsaEncryption.fits(rsa));
            assert!(Sha384WithRsaEncryption.fits(rsa));
            assert!(!EcdsaWithSha256.fits(rsa));
            assert!(!EcdsaWithSha384.fits(rsa));
        }
        for ec in [EcP256, EcP384] {
            assert!(!Sha256WithRsaEncryption.fits(ec));
            assert!(!Sha384WithRsaEncryption.fits(ec));
        }
    }

    /// Parses the SPKI and PKCS#8 with RustCrypto decoders and checks they describe the same
    /// key: same algorithm identifier, and a signature made from the PKCS#8 verifies under the
    /// SPKI's key.
    fn check_key(key: &GeneratedKey) {
        let algorithm = key.algorithm();
        let spki = SubjectPublicKeyInfoRef::from_der(key.spki_der()).unwrap();
        assert_eq!(spki.subject_public_key.unused_bits(), 0);
        assert_eq!(spki.subject_public_key.raw_bytes(), key.public_key_bits());
        let expected_bits = BitStringRef::from_bytes(key.public_key_bits()).unwrap();
        assert_eq!(spki.subject_public_key, expected_bits);

        let pkcs8 = pkcs8::PrivateKeyInfo::from_der(key.pkcs8_der()).unwrap();
        assert_eq!(pkcs8.version(), pkcs8::Version::V1);
        assert_eq!(pkcs8.algorithm.oid, spki.algorithm.oid);
        assert_eq!(
            pkcs8.algorithm.parameters.map(|p| p.to_der().unwrap()),
            spki.algorithm.parameters.map(|p| p.to_der().unwrap())
        );

        let message = b"certmill key pair check";
        match algorithm {
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
                let (sign_alg, verify_alg, curve, point_len) = if algorithm == KeyAlgorithm::EcP256
                {
                    (
                        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                        &signature::ECDSA_P256_SHA256_ASN1,
                        PRIME256V1,
                        P256_POINT_LEN,
                    )
                } else {
                    (
                        &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                        &signature::ECDSA_P384_SHA384_ASN1,
                        SECP384R1,
                        P384_POINT_LEN,
                    )
                };
                assert_eq!(spki.algorithm.oid, ID_EC_PUBLIC_KEY);
                let params: ObjectIdentifier =
                    spki.algorithm.parameters.unwrap().decode_as().unwrap();
                assert_eq!(params, curve);
                assert_eq!(key.public_key_bits().len(), point_len);
                let pair = EcdsaKeyPair::from_pkcs8(sign_alg, key.pkcs8_der()).unwrap();
                // Our constant-header SPKI equals the backend's own encoding.
                assert_eq!(pair.public_key().as_der().unwrap().as_ref(), key.spki_der());
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let sig = pair.sign(&rng, message).unwrap();
                UnparsedPublicKey::new(verify_alg, key.public_key_bits())
                    .verify(message, sig.as_ref())
                    .unwrap();
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                assert_eq!(spki.algorithm.oid, RSA_ENCRYPTION);
                assert_eq!(
                    spki.algorithm.parameters.unwrap().to_der().unwrap(),
                    [0x05, 0x00]
                );
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(key.pkcs8_der()).unwrap();
                assert_eq!(Some(pair.public_modulus_len() * 8), algorithm.rsa_bits());
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .unwrap();
                UnparsedPublicKey::new(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    key.public_key_bits(),
                )
                .verify(message, &sig)
                .unwrap();
            }
        }
    }

    #[test]
    fn generated_ec_keys_are_consistent() {
        for algorithm in [KeyAlgorithm::EcP256, KeyAlgorithm::EcP384] {
            for _ in 0..8 {
                let key = generate(algorithm).unwrap();
                assert_eq!(key.algorithm(), algorithm);
                check_key(&key);
            }
        }
    }

    #[test]
    fn generated_rsa_keys_are_consistent() {
        for algorithm in [
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Rsa3072,
            KeyAlgorithm::Rsa4096,
        ] {
            let key = generate(algorithm).unwrap();
            assert_eq!(key.algorithm(), algorithm);
            check_key(&key);
        }
    }

    #[test]
    fn keys_are_distinct() {
        let a = generate(KeyAlgorithm::EcP256).unwrap();
        let b = generate(KeyAlgorithm::EcP256).unwrap();
        assert_ne!(a.spki_der(), b.spki_der());
        assert_ne!(a.pkcs8_der(), b.pkcs8_der());
    }

    #[test]
    fn debug_is_redacted() {
        let key = generate(KeyAlgorithm::EcP256).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(shown.contains("EcP256"), "{shown}");
        // No run of the private key's hex or decimal bytes leaks into the output.
        let hex: String = key.pkcs8_der()[36..52]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!shown.contains(&hex));
        assert!(!shown.contains(&format!("{:?}", &key.pkcs8_der()[36..44])));
    }

    #[test]
    fn random_bytes_fill() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
        random_bytes(&mut []).unwrap();
    }

    /// OpenSSL reads our SPKI, and derives exactly that SPKI from our PKCS#8.
    #[test]
    fn openssl_accepts_spki_and_pkcs8() {
        if !openssl_available() {
            eprintln!("skipped: openssl not found on PATH");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for algorithm in [
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let key = generate(algorithm).unwrap();
            let spki_path = dir.path().join("pub.der");
            let key_path = dir.path().join("key.der");
            std::fs::write(&spki_path, key.spki_der()).unwrap();
            std::fs::write(&key_path, key.pkcs8_der()).unwrap();

            let out = Command::new("openssl")
                .args(["pkey", "-pubin", "-inform", "DER", "-outform", "DER", "-in"])
                .arg(&spki_path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{algorithm}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                out.stdout,
                key.spki_der(),
                "{algorithm}: openssl re-encoded the SPKI"
            );

            let out = Command::new("openssl")
                .args([
                    "pkey", "-inform", "DER", "-pubout", "-outform", "DER", "-in",
                ])
                .arg(&key_path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{algorithm}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                out.stdout,
                key.spki_der(),
                "{algorithm}: PKCS#8 and SPKI disagree"
            );

            let out = Command::new("openssl")
                .args(["pkey", "-inform", "DER", "-check", "-noout", "-in"])
                .arg(&key_path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{algorithm}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
