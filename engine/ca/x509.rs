//! Reading CA certificates: PEM blocks, the fields the issuing CA needs (as exact DER slices
//! where a leaf copies them), CA checks and signature verification with aws-lc-rs.

use std::ops::Range;
use std::path::Path;

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::ObjectIdentifier;
use der::{Decode, Reader};
use sha1::{Digest, Sha1};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use x509_cert::Certificate;

use super::{CaError, NotCaReason};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// One `-----BEGIN label-----` … `-----END label-----` block, decoded.
pub(crate) struct PemBlock {
    /// The block's label, e.g. `CERTIFICATE`.
    pub(crate) label: String,
    /// The decoded contents.
    pub(crate) der: Vec<u8>,
}

/// Splits PEM text into its blocks, in order; text between blocks is ignored (OpenSSL allows
/// explanatory text there).
pub(crate) fn pem_blocks(text: &str, path: &Path) -> Result<Vec<PemBlock>, CaError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block_text = &rest[start..];
        let label_end = block_text[BEGIN.len()..]
            .find("-----")
            .map(|i| BEGIN.len() + i);
        let end = label_end.and_then(|label_end| {
            let label = &block_text[BEGIN.len()..label_end];
            let end_marker = format!("-----END {label}-----");
            block_text.find(&end_marker).map(|i| i + end_marker.len())
        });
        // Without an END line, hand the remainder to the decoder so it reports the defect.
        let block_len = end.unwrap_or(block_text.len());
        let (label, der) =
            der::pem::decode_vec(&block_text.as_bytes()[..block_len]).map_err(|e| {
                CaError::Pem {
                    path: path.to_path_buf(),
                    source: e.into(),
                }
            })?;
        blocks.push(PemBlock {
            label: label.to_owned(),
            der,
        });
        rest = &block_text[block_len..];
    }
    Ok(blocks)
}

/// The DER certificates of every `CERTIFICATE` block in PEM text; `PemMissing` when none.
pub(crate) fn pem_certificates(text: &str, path: &Path) -> Result<Vec<Vec<u8>>, CaError> {
    let certificates: Vec<Vec<u8>> = pem_blocks(text, path)?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der)
        .collect();
    if certificates.is_empty() {
        return Err(CaError::PemMissing {
            path: path.to_path_buf(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certificates)
}

/// PEM text of DER certificates, one `CERTIFICATE` block each, in order.
pub(crate) fn certificates_pem<'a>(
    certificates: impl IntoIterator<Item = &'a [u8]>,
) -> Result<String, der::Error> {
    // PEM encoding only fails on lengths beyond `isize::MAX`.
    let mut out = String::new();
    for der in certificates {
        out.push_str(
            &der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
                .map_err(der::Error::from)?,
        );
    }
    Ok(out)
}

/// A parsed certificate plus the byte ranges of the parts that must be used verbatim.
pub(crate) struct ParsedCertificate {
    der: Vec<u8>,
    certificate: Certificate,
    tbs: Range<usize>,
    issuer: Range<usize>,
    subject: Range<usize>,
}

/// Header length and total TLV length of the DER element at the start of `input`.
fn tlv_extent(input: &[u8]) -> der::Result<(usize, usize)> {
    let mut reader = der::SliceReader::new(input)?;
    let header = der::Header::decode(&mut reader)?;
    let header_len = usize::try_from(reader.position())?;
    let content_len = usize::try_from(header.length)?;
    Ok((header_len, header_len + content_len))
}

impl ParsedCertificate {
    /// Parses DER; `path` only names the source in errors.
    pub(crate) fn from_der(der: Vec<u8>, path: &Path) -> Result<Self, CaError> {
        let certificate_error = |source| CaError::Certificate {
            path: path.to_path_buf(),
            source,
        };
        let certificate = Certificate::from_der(&der).map_err(certificate_error)?;
        // x509-cert has validated the structure; walk it again for the exact byte ranges of
        // TBSCertificate and its subject Name:
        //   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        //   TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
        //                                 issuer, validity, subject, ... }
        let (outer_header, _) = tlv_extent(&der).map_err(certificate_error)?;
        let tbs_start = outer_header;
        let (tbs_header, tbs_len) = tlv_extent(&der[tbs_start..]).map_err(certificate_error)?;
        let mut position = tbs_start + tbs_header;
        if der.get(position) == Some(&0xa0) {
            position += tlv_extent(&der[position..]).map_err(certificate_error)?.1;
        }
        // serialNumber, signature, issuer, validity.
        let mut issuer = 0..0;
        for field in 0..4 {
            let len = tlv_extent(&der[position..]).map_err(certificate_error)?.1;
            if field == 2 {
                issuer = position..position + len;
            }
            position += len;
        }
        let subject_len = tlv_extent(&der[position..]).map_err(certificate_error)?.1;
        Ok(ParsedCertificate {
            tbs: tbs_start..tbs_start + tbs_len,
            issuer,
            subject: position..position + subject_len,
            der,
            certificate,
        })
    }

    /// The whole certificate.
    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    /// Consumes the parsed form, keeping the DER.
    pub(crate) fn into_der(self) -> Vec<u8> {
        self.der
    }

    /// TBSCertificate exactly as signed.
    pub(crate) fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    /// The issuer Name exactly as encoded.
    pub(crate) fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer.clone()]
    }

    /// The subject Name exactly as encoded.
    pub(crate) fn subject_der(&self) -> &[u8] {
        &self.der[self.subject.clone()]
    }

    /// subjectPublicKey BIT STRING contents.
    pub(crate) fn public_key_bits(&self) -> &[u8] {
        self.certificate
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
    }

    /// Whether subject and issuer names are the same bytes (a self-issued certificate).
    pub(crate) fn is_self_issued(&self) -> bool {
        let tbs = &self.certificate.tbs_certificate;
        tbs.issuer == tbs.subject
    }

    fn extension_value(&self, oid: ObjectIdentifier) -> Option<&[u8]> {
        self.certificate
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// Checks basicConstraints cA=TRUE and, when keyUsage is present, keyCertSign
    /// (RFC 5280 sections 4.2.1.9 and 4.2.1.3).
    pub(crate) fn check_is_ca(&self, path: &Path) -> Result<(), CaError> {
        let not_ca = |reason| CaError::NotCa {
            path: path.to_path_buf(),
            reason,
        };
        let certificate_error = |source| CaError::Certificate {
            path: path.to_path_buf(),
            source,
        };
        let value = self
            .extension_value(BASIC_CONSTRAINTS)
            .ok_or(not_ca(NotCaReason::BasicConstraintsMissing))?;
        let constraints = BasicConstraints::from_der(value).map_err(certificate_error)?;
        if !constraints.ca {
            return Err(not_ca(NotCaReason::CaFlagFalse));
        }
        if let Some(value) = self.extension_value(KEY_USAGE) {
            let usage = KeyUsage::from_der(value).map_err(certificate_error)?;
            if !usage.key_cert_sign() {
                return Err(not_ca(NotCaReason::KeyCertSignMissing));
            }
        }
        Ok(())
    }

    /// The subjectKeyIdentifier extension's value or, when absent, RFC 5280 section 4.2.1.2
    /// method 1: SHA-1 of the subjectPublicKey bits.
    pub(crate) fn subject_key_identifier(&self, path: &Path) -> Result<Vec<u8>, CaError> {
        match self.extension_value(SUBJECT_KEY_IDENTIFIER) {
            Some(value) => SubjectKeyIdentifier::from_der(value)
                .map(|ski| ski.0.as_bytes().to_vec())
                .map_err(|source| CaError::Certificate {
                    path: path.to_path_buf(),
                    source,
                }),
            None => Ok(Sha1::digest(self.public_key_bits()).to_vec()),
        }
    }

    /// notAfter as Unix seconds.
    pub(crate) fn not_after_unix(&self) -> i64 {
        let seconds = self
            .certificate
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs();
        // X.509 times end at year 9999, about 2.5e11 seconds: far below i64::MAX.
        i64::try_from(seconds).unwrap_or(i64::MAX)
    }

    /// The subject's first commonName, or the whole subject (RFC 4514 form) when it has none.
    pub(crate) fn common_name(&self) -> String {
        let subject = &self.certificate.tbs_certificate.subject;
        subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == COMMON_NAME)
            .map(|atv| String::from_utf8_lossy(atv.value.value()).into_owned())
            .unwrap_or_else(|| subject.to_string())
    }

    /// Whether `issuer`'s public key verifies this certificate's signature. Signature or key
    /// algorithms aws-lc-rs cannot verify are an error, not a `false`.
    pub(crate) fn is_signed_by(
        &self,
        issuer: &ParsedCertificate,
        path: &Path,
    ) -> Result<bool, CaError> {
        let signature_oid = self.certificate.signature_algorithm.oid;
        let issuer_spki = &issuer.certificate.tbs_certificate.subject_public_key_info;
        let key_oid = issuer_spki.algorithm.oid;
        let unsupported = || CaError::UnsupportedSignatureAlgorithm {
            path: path.to_path_buf(),
            signature: signature_oid,
            key: key_oid,
        };
        let algorithm: &'static dyn VerificationAlgorithm = if key_oid == ID_EC_PUBLIC_KEY {
            let curve: ObjectIdentifier = issuer_spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as().ok())
                .ok_or_else(unsupported)?;
            match (curve, signature_oid) {
                (c, s) if c == PRIME256V1 && s == ECDSA_WITH_SHA256 => {
                    &signature::ECDSA_P256_SHA256_ASN1
                }
                (c, s) if c == PRIME256V1 && s == ECDSA_WITH_SHA384 => {
                    &signature::ECDSA_P256_SHA384_ASN1
                }
                (c, s) if c == PRIME256V1 && s == ECDSA_WITH_SHA512 => {
                    &signature::ECDSA_P256_SHA512_ASN1
                }
                (c, s) if c == SECP384R1 && s == ECDSA_WITH_SHA256 => {
                    &signature::ECDSA_P384_SHA256_ASN1
                }
                (c, s) if c == SECP384R1 && s == ECDSA_WITH_SHA384 => {
                    &signature::ECDSA_P384_SHA384_ASN1
                }
                (c, s) if c == SECP384R1 && s == ECDSA_WITH_SHA512 => {
                    &signature::ECDSA_P384_SHA512_ASN1
                }
                (c, s) if c == SECP521R1 && s == ECDSA_WITH_SHA256 => {
                    &signature::ECDSA_P521_SHA256_ASN1
                }
                (c, s) if c == SECP521R1 && s == ECDSA_WITH_SHA384 => {
                    &signature::ECDSA_P521_SHA384_ASN1
                }
                (c, s) if c == SECP521R1 && s == ECDSA_WITH_SHA512 => {
                    &signature::ECDSA_P521_SHA512_ASN1
                }
                _ => return Err(unsupported()),
            }
        } else if key_oid == RSA_ENCRYPTION {
            match signature_oid {
                s if s == SHA256_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
                s if s == SHA384_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA384,
                s if s == SHA512_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA512,
                _ => return Err(unsupported()),
            }
        } else {
            return Err(unsupported());
        };
        let Some(signature_value) = self.certificate.signature.as_bytes() else {
            // A signature BIT STRING with unused bits cannot hold any of these signatures.
            return Ok(false);
        };
        Ok(UnparsedPublicKey::new(algorithm, issuer.public_key_bits())
            .verify(self.tbs_der(), signature_value)
            .is_ok())
    }
}
