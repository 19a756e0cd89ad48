//! One PKCS#10 request: parsed, its key classified and its self-signature verified.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::{AnyRef, ObjectIdentifier, UintRef};
use der::{Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::request::{CertReq, Version};

use super::CsrError;
use crate::keys::KeyAlgorithm;

/// A public key certmill does not issue for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectedKey {
    /// A key algorithm other than id-ecPublicKey and rsaEncryption, or one with parameters
    /// of the wrong shape.
    Algorithm {
        /// The SubjectPublicKeyInfo's algorithm OID.
        oid: ObjectIdentifier,
    },
    /// An EC key on a curve other than P-256 and P-384.
    Curve {
        /// The named curve's OID.
        oid: ObjectIdentifier,
    },
    /// An EC point that is not an uncompressed point of the curve's size (RFC 5480 section
    /// 2.2: uncompressed is the form every implementation reads).
    EcPointEncoding,
    /// An RSA modulus of a size other than 2048, 3072 or 4096 bits.
    RsaSize {
        /// The modulus size in bits.
        bits: usize,
    },
}

impl fmt::Display for RejectedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectedKey::Algorithm { oid } => write!(f, "key algorithm {oid}"),
            RejectedKey::Curve { oid } => {
                write!(f, "EC curve {oid} (P-256 and P-384 are supported)")
            }
            RejectedKey::EcPointEncoding => f.write_str("EC point not in uncompressed form"),
            RejectedKey::RsaSize { bits } => {
                write!(f, "RSA-{bits} (2048, 3072 and 4096 are supported)")
            }
        }
    }
}

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
/// PKCS#9 `extensionRequest` (RFC 2985 section 5.4.2).
const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
/// Content octets of `id-ce-subjectAltName` (2.5.29.17). Extension OIDs are compared as bytes so
/// that an extension under an arc beyond 32 bits (which `der` 0.7 cannot decode) is skipped,
/// not refused.
const SUBJECT_ALT_NAME_OID_BYTES: &[u8] = &[0x55, 0x1d, 0x11];

/// The `Subject.<attributeType>` paths and their OIDs: the attribute types of the profile
/// language (`profile/names.rs` `ATTRIBUTE_TYPES`, which `profile` does not export).
const SUBJECT_PATHS: &[(&str, ObjectIdentifier)] = &[
    (
        "Subject.businessCategory",
        ObjectIdentifier::new_unwrap("2.5.4.15"),
    ),
    (
        "Subject.commonName",
        ObjectIdentifier::new_unwrap("2.5.4.3"),
    ),
    (
        "Subject.countryName",
        ObjectIdentifier::new_unwrap("2.5.4.6"),
    ),
    (
        "Subject.dnQualifier",
        ObjectIdentifier::new_unwrap("2.5.4.46"),
    ),
    (
        "Subject.domainComponent",
        ObjectIdentifier::new_unwrap("0.9.2342.19200300.100.1.25"),
    ),
    (
        "Subject.emailAddress",
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1"),
    ),
    (
        "Subject.generationQualifier",
        ObjectIdentifier::new_unwrap("2.5.4.44"),
    ),
    (
        "Subject.givenName",
        ObjectIdentifier::new_unwrap("2.5.4.42"),
    ),
    ("Subject.initials", ObjectIdentifier::new_unwrap("2.5.4.43")),
    (
        "Subject.localityName",
        ObjectIdentifier::new_unwrap("2.5.4.7"),
    ),
    (
        "Subject.organizationIdentifier",
        ObjectIdentifier::new_unwrap("2.5.4.97"),
    ),
    (
        "Subject.organizationName",
        ObjectIdentifier::new_unwrap("2.5.4.10"),
    ),
    (
        "Subject.organizationalUnitName",
        ObjectIdentifier::new_unwrap("2.5.4.11"),
    ),
    (
        "Subject.postalCode",
        ObjectIdentifier::new_unwrap("2.5.4.17"),
    ),
    (
        "Subject.pseudonym",
        ObjectIdentifier::new_unwrap("2.5.4.65"),
    ),
    (
        "Subject.serialNumber",
        ObjectIdentifier::new_unwrap("2.5.4.5"),
    ),
    (
        "Subject.stateOrProvinceName",
        ObjectIdentifier::new_unwrap("2.5.4.8"),
    ),
    (
        "Subject.streetAddress",
        ObjectIdentifier::new_unwrap("2.5.4.9"),
    ),
    ("Subject.surname", ObjectIdentifier::new_unwrap("2.5.4.4")),
    ("Subject.title", ObjectIdentifier::new_unwrap("2.5.4.12")),
    (
        "Subject.userId",
        ObjectIdentifier::new_unwrap("0.9.2342.19200300.100.1.1"),
    ),
];

const SAN_OTHER_NAME: &str = "SubjectAlternativeName.otherName";
const SAN_RFC822_NAME: &str = "SubjectAlternativeName.rfc822Name";
const SAN_DNS_NAME: &str = "SubjectAlternativeName.dNSName";
const SAN_URI: &str = "SubjectAlternativeName.uniformResourceIdentifier";
const SAN_IP_ADDRESS: &str = "SubjectAlternativeName.iPAddress";

/// Whether [`ParsedCsr::decode`] verifies the request's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proof {
    /// Verify it (the default).
    Verify,
    /// These exact bytes were verified before.
    AlreadyVerified,
}

/// A PKCS#10 request, parsed, with its self-signature verified (proof of possession).
///
/// ```text
/// CertificationRequest ::= SEQUENCE {
///      certificationRequestInfo CertificationRequestInfo,
///      signatureAlgorithm AlgorithmIdentifier{{ SignatureAlgorithms }},
///      signature          BIT STRING }
/// ```
/// [RFC 2986 section 4](https://www.rfc-editor.org/rfc/rfc2986#section-4).
pub struct ParsedCsr {
    key_algorithm: KeyAlgorithm,
    spki: Vec<u8>,
    /// Offset in `spki` where the subjectPublicKey BIT STRING contents begin (they run to its
    /// end: the BIT STRING is the SPKI's last element).
    key_bits_start: usize,
    /// `(path, value)` for every `CSR.<path>` the request answers, first value of each path.
    values: Vec<(&'static str, String)>,
}

impl fmt::Debug for ParsedCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedCsr")
            .field("key_algorithm", &self.key_algorithm)
            .field("values", &self.values)
            .finish_non_exhaustive()
    }
}

impl ParsedCsr {
    /// Parses a DER request and verifies its signature with its own key.
    ///
    /// Refuses requests whose key is not a [`KeyAlgorithm`] ([`CsrError::UnsupportedKey`]),
    /// whose signature algorithm is not ECDSA with SHA-256/384 or RSA PKCS#1 v1.5 with
    /// SHA-256/384/512, and whose signature does not verify ([`CsrError::BadSignature`]).
    pub fn from_der(der: &[u8]) -> Result<ParsedCsr, CsrError> {
        Self::decode(der, Proof::Verify)
    }

    /// Parses a DER request whose signature [`ParsedCsr::from_der`] has already verified, byte
    /// for byte the same DER (a batch's issuing pass, after its validation pass verified the
    /// same bytes; see `batch::CsrProofs`). Verification is deterministic, so it is not
    /// repeated; every other check is.
    pub(crate) fn from_verified_der(der: &[u8]) -> Result<ParsedCsr, CsrError> {
        Self::decode(der, Proof::AlreadyVerified)
    }

    fn decode(der: &[u8], proof: Proof) -> Result<ParsedCsr, CsrError> {
        let request = CertReq::from_der(der)?;
        if request.info.version != Version::V1 {
            return Err(Tag::Integer.value_error().into());
        }
        // The signed bytes exactly as received: the first element of the outer SEQUENCE.
        let signed = {
            let mut reader = SliceReader::new(der)?;
            let header = der::Header::decode(&mut reader)?;
            header.tag.assert_eq(Tag::Sequence)?;
            reader.tlv_bytes()?
        };

        let spki = request.info.public_key.to_der()?;
        let key_bits = request
            .info
            .public_key
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Tag::BitString.value_error())?;
        let key_bits_start = spki
            .len()
            .checked_sub(key_bits.len())
            .filter(|&start| spki[start..] == *key_bits)
            .ok_or_else(|| Tag::BitString.value_error())?;
        let key_algorithm = classify_key(&request.info.public_key.algorithm, key_bits)?;

        let verification = verification_algorithm(&request.algorithm, key_algorithm)?;
        let signature_bytes = request
            .signature
            .as_bytes()
            .ok_or_else(|| Tag::BitString.value_error())?;
        if proof == Proof::Verify {
            UnparsedPublicKey::new(verification, key_bits)
                .verify(signed, signature_bytes)
                .map_err(|_| CsrError::BadSignature)?;
        }

        let mut values = Vec::new();
        collect_subject(&request.info.subject, &mut values);
        for attribute in request.info.attributes.iter() {
            if attribute.oid == EXTENSION_REQUEST {
                // `SET SIZE (1..MAX)` of Extensions; RFC 2985 allows exactly one value.
                if let Some(extensions) = attribute.values.iter().next() {
                    collect_extension_request(&extensions.to_der()?, &mut values)?;
                }
                break;
            }
        }

        Ok(ParsedCsr {
            key_algorithm,
            spki,
            key_bits_start,
            values,
        })
    }

    /// The key's algorithm.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key_algorithm
    }

    /// SubjectPublicKeyInfo DER exactly as in the request.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The subjectPublicKey BIT STRING contents without the unused-bits byte (for the SKI,
    /// RFC 5280 section 4.2.1.2 method 1): the uncompressed point for EC, the `RSAPublicKey`
    /// DER for RSA.
    pub fn public_key_bits(&self) -> &[u8] {
        &self.spki[self.key_bits_start..]
    }

    /// The first commonName of the subject, if it is a PrintableString, IA5String or
    /// UTF8String.
    pub fn subject_common_name(&self) -> Option<&str> {
        self.value("Subject.commonName")
    }

    fn value(&self, path: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, v)| v.as_str())
    }
}

/// Values for the profile's `CSR.<path>` sources.
///
/// - `Subject.<attributeType>` (`commonName`, `organizationalUnitName`, ... as in the profile
///   language): the first value of that type in the subject, when it is a PrintableString,
///   IA5String or UTF8String; a first value of another string type makes the attribute absent.
/// - `SubjectAlternativeName.dNSName`, `.rfc822Name`, `.uniformResourceIdentifier`: the first
///   of that type in the extensionRequest's subjectAltName; `.iPAddress` as text (`10.0.0.1`,
///   `2001:db8::1`); `.otherName`: the first otherName whose value is `[0] EXPLICIT
///   UTF8String`.
/// - `SubjectPublicKeyInfo` and unknown paths: `None` (the key comes from
///   [`ParsedCsr::spki_der`]).
impl crate::profile::Lookup for ParsedCsr {
    fn lookup(&self, path: &str) -> Option<&str> {
        self.value(path)
    }
}

/// Classifies the key, refusing what certmill does not issue for.
fn classify_key(
    algorithm: &x509_cert::spki::AlgorithmIdentifierOwned,
    key_bits: &[u8],
) -> Result<KeyAlgorithm, CsrError> {
    let rejected = |key| Err(CsrError::UnsupportedKey { key });
    if algorithm.oid == ID_EC_PUBLIC_KEY {
        let Some(parameters) = &algorithm.parameters else {
            return rejected(RejectedKey::Algorithm { oid: algorithm.oid });
        };
        let Ok(curve) = parameters.decode_as::<ObjectIdentifier>() else {
            // implicitCurve or specifiedCurve (RFC 5480 section 2.1.1: MUST NOT be used).
            return rejected(RejectedKey::Algorithm { oid: algorithm.oid });
        };
        let (key_algorithm, point_len) = match curve {
            PRIME256V1 => (KeyAlgorithm::EcP256, 65),
            SECP384R1 => (KeyAlgorithm::EcP384, 97),
            oid => return rejected(RejectedKey::Curve { oid }),
        };
        if key_bits.len() != point_len || key_bits.first() != Some(&0x04) {
            return rejected(RejectedKey::EcPointEncoding);
        }
        Ok(key_algorithm)
    } else if algorithm.oid == RSA_ENCRYPTION {
        // RFC 3279 section 2.3.1: the parameters MUST be NULL.
        if !is_null_or_absent(&algorithm.parameters) {
            return rejected(RejectedKey::Algorithm { oid: algorithm.oid });
        }
        let bits = rsa_modulus_bits(key_bits)?;
        KeyAlgorithm::from_rsa_bits(bits).map_or(rejected(RejectedKey::RsaSize { bits }), Ok)
    } else {
        rejected(RejectedKey::Algorithm { oid: algorithm.oid })
    }
}

fn is_null_or_absent(parameters: &Option<der::Any>) -> bool {
    parameters
        .as_ref()
        .is_none_or(|p| p.tag() == Tag::Null && p.value().is_empty())
}

/// Bit length of the modulus of `RSAPublicKey ::= SEQUENCE { modulus INTEGER,
/// publicExponent INTEGER }` (RFC 8017 appendix A.1.1).
fn rsa_modulus_bits(key_bits: &[u8]) -> Result<usize, CsrError> {
    let mut reader = SliceReader::new(key_bits)?;
    let modulus = reader.sequence(|seq| {
        let modulus = UintRef::decode(seq)?;
        let _exponent = UintRef::decode(seq)?;
        Ok(modulus)
    })?;
    reader.finish(())?;
    let bytes = modulus.as_bytes();
    let Some(&first) = bytes.first() else {
        return Ok(0);
    };
    // `leading_zeros` of a u8 is at most 8, so this never underflows.
    Ok(bytes.len() * 8 - first.leading_zeros() as usize)
}

/// The aws-lc-rs verification algorithm for the request's signature algorithm and key.
fn verification_algorithm(
    algorithm: &x509_cert::spki::AlgorithmIdentifierOwned,
    key: KeyAlgorithm,
) -> Result<&'static dyn VerificationAlgorithm, CsrError> {
    let oid = algorithm.oid;
    let unsupported = || CsrError::UnsupportedSignatureAlgorithm { oid };
    let mismatch = || CsrError::KeyMismatch {
        signature: oid,
        key,
    };
    match oid {
        ECDSA_WITH_SHA256 | ECDSA_WITH_SHA384 => {
            // RFC 5758 section 3.2: the parameters MUST be absent.
            if algorithm.parameters.is_some() {
                return Err(unsupported());
            }
            let sha256 = oid == ECDSA_WITH_SHA256;
            Ok(match (key, sha256) {
                (KeyAlgorithm::EcP256, true) => &signature::ECDSA_P256_SHA256_ASN1,
                (KeyAlgorithm::EcP256, false) => &signature::ECDSA_P256_SHA384_ASN1,
                (KeyAlgorithm::EcP384, true) => &signature::ECDSA_P384_SHA256_ASN1,
                (KeyAlgorithm::EcP384, false) => &signature::ECDSA_P384_SHA384_ASN1,
                _ => return Err(mismatch()),
            })
        }
        SHA256_WITH_RSA | SHA384_WITH_RSA | SHA512_WITH_RSA => {
            // RFC 4055 section 5: NULL parameters; some encoders omit them.
            if !is_null_or_absent(&algorithm.parameters) {
                return Err(unsupported());
            }
            if key.is_ec() {
                return Err(mismatch());
            }
            Ok(match oid {
                SHA256_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
                SHA384_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            })
        }
        _ => Err(unsupported()),
    }
}

/// Text of a directory string or IA5String value; `None` for other types, non-ASCII bytes in
/// ASCII types, invalid UTF-8, and embedded NULs (which would truncate the value in C readers).
fn string_value(tag: Tag, bytes: &[u8]) -> Option<String> {
    let text = match tag {
        Tag::PrintableString | Tag::Ia5String if bytes.is_ascii() => std::str::from_utf8(bytes),
        Tag::Utf8String => std::str::from_utf8(bytes),
        _ => return None,
    }
    .ok()?;
    (!text.contains('\0')).then(|| text.to_owned())
}

fn collect_subject(subject: &x509_cert::name::Name, values: &mut Vec<(&'static str, String)>) {
    let mut seen: Vec<&'static str> = Vec::new();
    for rdn in subject.0.iter() {
        for attribute in rdn.0.iter() {
            let Some((path, _)) = SUBJECT_PATHS.iter().find(|(_, oid)| *oid == attribute.oid)
            else {
                continue;
            };
            if seen.contains(path) {
                continue;
            }
            seen.push(path);
            if let Some(text) = string_value(attribute.value.tag(), attribute.value.value()) {
                values.push((path, text));
            }
        }
    }
}

/// Walks `Extensions ::= SEQUENCE OF Extension` for the first subjectAltName.
fn collect_extension_request(
    der: &[u8],
    values: &mut Vec<(&'static str, String)>,
) -> Result<(), CsrError> {
    let mut reader = SliceReader::new(der)?;
    let mut san: Option<&[u8]> = None;
    reader.sequence(|extensions| {
        while !extensions.is_finished() {
            // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
            //                          extnValue OCTET STRING }
            extensions.sequence(|extension| {
                let oid = AnyRef::decode(extension)?;
                oid.tag().assert_eq(Tag::ObjectIdentifier)?;
                let mut next = AnyRef::decode(extension)?;
                if next.tag() == Tag::Boolean {
                    next = AnyRef::decode(extension)?;
                }
                next.tag().assert_eq(Tag::OctetString)?;
                if oid.value() == SUBJECT_ALT_NAME_OID_BYTES && san.is_none() {
                    san = Some(next.value());
                }
                Ok(())
            })?;
        }
        Ok(())
    })?;
    reader.finish(())?;
    if let Some(san) = san {
        collect_general_names(san, values)?;
    }
    Ok(())
}

/// Walks `GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName` (RFC 5280 section 4.2.1.6)
/// without decoding otherName type-ids as `der` OIDs (certmill's own `2.25.<UUID>` arc is
/// beyond `der` 0.7's 32-bit arcs).
fn collect_general_names(
    der: &[u8],
    values: &mut Vec<(&'static str, String)>,
) -> Result<(), CsrError> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|names| {
        while !names.is_finished() {
            let name = AnyRef::decode(names)?;
            let Tag::ContextSpecific {
                constructed,
                number,
            } = name.tag()
            else {
                return Err(name.tag().value_error());
            };
            let path = match (number.value(), constructed) {
                (0, true) => SAN_OTHER_NAME,
                (1, false) => SAN_RFC822_NAME,
                (2, false) => SAN_DNS_NAME,
                (6, false) => SAN_URI,
                (7, false) => SAN_IP_ADDRESS,
                // x400Address, directoryName, ediPartyName, registeredID: no CSR path.
                _ => continue,
            };
            if values.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let text = match path {
                SAN_OTHER_NAME => other_name_utf8(name.value())?,
                SAN_IP_ADDRESS => Some(ip_address_text(name.value()).ok_or_else(|| {
                    der::ErrorKind::Length {
                        tag: Tag::ContextSpecific {
                            constructed: false,
                            number: TagNumber::N7,
                        },
                    }
                    .at(names.position())
                })?),
                _ => string_value(Tag::Ia5String, name.value()),
            };
            if let Some(text) = text {
                values.push((path, text));
            }
        }
        Ok(())
    })?;
    reader.finish(())?;
    Ok(())
}

/// The value of `OtherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }` (the
/// SEQUENCE's contents, IMPLICIT [0]) when it is a UTF8String.
fn other_name_utf8(contents: &[u8]) -> der::Result<Option<String>> {
    let mut reader = SliceReader::new(contents)?;
    let type_id = AnyRef::decode(&mut reader)?;
    type_id.tag().assert_eq(Tag::ObjectIdentifier)?;
    let explicit = AnyRef::decode(&mut reader)?;
    explicit.tag().assert_eq(Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    })?;
    reader.finish(())?;
    let mut inner = SliceReader::new(explicit.value())?;
    let value = AnyRef::decode(&mut inner)?;
    inner.finish(())?;
    Ok(if value.tag() == Tag::Utf8String {
        string_value(Tag::Utf8String, value.value())
    } else {
        None
    })
}

/// An iPAddress as text: 4 bytes IPv4, 16 bytes IPv6 (RFC 5280 section 4.2.1.6).
fn ip_address_text(bytes: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(Ipv4Addr::from(v4).to_string())
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(Ipv6Addr::from(v6).to_string())
    } else {
        None
    }
}
