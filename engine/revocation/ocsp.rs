//! OCSP requests and responses: RFC 6960, with the RFC 5019 lightweight profile.
//!
//! [`parse_request`] decodes an `OCSPRequest` (POST body, or a GET path through
//! [`decode_get_path`]) with `x509-ocsp` and keeps each CertID exactly as received, so the
//! response echoes the client's bytes. [`IssuerKeyHashes`] holds the issuer's name and key
//! hashes in every supported hash so that matching a CertID is a comparison, not a hash.
//! [`build_response`] encodes and signs a `BasicOCSPResponse` with the crate's DER writer
//! (`asn1.rs`): a response is a handful of pre-encoded pieces framed around one ECDSA P-256
//! signature, which keeps the responder at thousands of responses per second per core, and
//! the result is plain bytes that a cache can serve as they are. [`error_response`] gives the
//! unsigned responses that carry only a `responseStatus`.
//!
//! It does not look up certificate status, decide validity periods (`thisUpdate`,
//! `nextUpdate`), cache responses or speak HTTP: the revocation service and the API do. It
//! never signs with the CA key: responses are signed by a delegated responder ([`Responder`],
//! RFC 6960 section 4.2.2.2) whose certificate the CA issues
//! (`IssuingCa::issue_ocsp_responder`).

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64ct::Encoding as _;
use der::asn1::ObjectIdentifier;
use der::{Decode, Reader as _, SliceReader, Tag, Tagged as _};
use x509_cert::ext::Extensions;
use x509_ocsp::OcspRequest;

use super::RevocationReason;
use crate::asn1::{self, push_header, push_tlv, tlv_len};
use crate::keys::{self, KeyAlgorithm, KeyError, SignatureAlgorithm};

#[cfg(test)]
#[path = "ocsp_tests.rs"]
mod tests;

/// Most CertIDs one request may ask about. RFC 6960 sets no limit; RFC 5019 section 2.1.1
/// has clients ask about one certificate per request, and a bound keeps one request from
/// costing the responder an unbounded amount of lookups.
pub const MAX_CERT_IDS: usize = 16;

/// Longest GET path [`decode_get_path`] accepts, in characters as received. RFC 5019 section
/// 5 has clients use GET for requests of at most 255 bytes once encoded (URL included); this
/// leaves room for [`MAX_CERT_IDS`] SHA-512 CertIDs percent-encoded. Larger requests go by
/// POST.
pub const MAX_GET_PATH_LEN: usize = 8192;

/// `ENUMERATED` (X.690 8.4), which `asn1.rs` does not name: OCSPResponseStatus and CRLReason.
const ENUMERATED: u8 = 0x0a;

const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
/// id-pkix-ocsp-nonce (RFC 6960 section 4.4.1).
const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");

/// DER `OBJECT IDENTIFIER` id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1 (RFC 6960 section 4.2.1).
const ID_PKIX_OCSP_BASIC_DER: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01,
];
/// DER `OBJECT IDENTIFIER` id-pkix-ocsp-nonce, 1.3.6.1.5.5.7.48.1.2 (RFC 6960 section 4.4.1).
const ID_PKIX_OCSP_NONCE_DER: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02,
];
/// The whole extension `{ id-pkix-ocsp-extended-revoke (1.3.6.1.5.5.7.48.1.9), extnValue NULL }`
/// (RFC 6960 section 4.4.8: non-critical, value NULL).
const EXTENDED_REVOKE_EXTENSION_DER: &[u8] = &[
    0x30, 0x0f, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x09, 0x04, 0x02, 0x05,
    0x00,
];

/// Errors of OCSP request parsing and response building.
///
/// Every request defect means the same thing to a client, `malformedRequest` (RFC 6960
/// section 2.3); the variants say which defect for logs and tests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// The request has the same extension twice (RFC 5280 section 4.2 rules that out, and
    /// two nonces leave no single value to echo).
    #[error("the request has the {oid} extension more than once")]
    DuplicateExtension {
        /// The repeated extension.
        oid: ObjectIdentifier,
    },
    /// The request's requestList is empty.
    #[error("the request asks about no certificate (empty requestList)")]
    EmptyRequestList,
    /// [`build_response`] was given no SingleResponse.
    #[error("a response must answer at least one CertID")]
    EmptyResponseList,
    /// The GET path is not base64 once percent-decoded.
    #[error("the GET path is not base64: {source}")]
    GetPathBase64 {
        /// The decoder's error.
        source: base64ct::Error,
    },
    /// The GET path holds a character outside the base64 alphabets, or a broken `%` escape.
    #[error("the GET path has an invalid character or escape at position {position}")]
    GetPathCharacter {
        /// Byte offset in the path as received.
        position: usize,
    },
    /// The GET path is empty.
    #[error("the GET path is empty")]
    GetPathEmpty,
    /// The GET path is longer than [`MAX_GET_PATH_LEN`].
    #[error("the GET path is {length} characters long; at most {max} are accepted (use POST)")]
    GetPathTooLong {
        /// Its length.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// A CertID's hashAlgorithm has parameters other than NULL.
    #[error("CertID {index}: hashAlgorithm parameters must be NULL or absent")]
    HashAlgorithmParameters {
        /// Position of the CertID in the requestList, from 0.
        index: usize,
    },
    /// A CertID's issuerNameHash or issuerKeyHash is not as long as its hash's output.
    #[error("CertID {index}: {algorithm} hash of {found} bytes, expected {expected}")]
    HashLength {
        /// Position of the CertID in the requestList, from 0.
        index: usize,
        /// The CertID's hash algorithm.
        algorithm: HashAlgorithm,
        /// The hash's output length.
        expected: usize,
        /// The length received.
        found: usize,
    },
    /// The responder key could not be generated.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// aws-lc-rs rejected the freshly generated responder key.
    #[error("the OCSP responder key was rejected: {source}")]
    KeyRejected {
        /// The backend's reason.
        source: aws_lc_rs::error::KeyRejected,
    },
    /// The request is not a DER `OCSPRequest`: garbage, truncated, trailing bytes, another
    /// structure, or a CertID serial longer than 20 octets.
    #[error("not a DER OCSPRequest: {source}")]
    Malformed {
        /// The decoding error (it gives the DER byte position).
        source: der::Error,
    },
    /// A SingleResponse's nextUpdate is before its thisUpdate.
    #[error("nextUpdate {next_update} is before thisUpdate {this_update}")]
    NextUpdateBeforeThisUpdate {
        /// thisUpdate, Unix seconds.
        this_update: i64,
        /// nextUpdate, Unix seconds.
        next_update: i64,
    },
    /// A CertID's serialNumber is zero or negative (RFC 5280 section 4.1.2.2: serials are
    /// positive, and certmill never issues others).
    #[error("CertID {index}: serialNumber is not positive")]
    SerialNotPositive {
        /// Position of the CertID in the requestList, from 0.
        index: usize,
    },
    /// The responder key failed to sign.
    #[error("the OCSP responder key failed to sign: {source}")]
    Signing {
        /// The backend's error.
        source: aws_lc_rs::error::Unspecified,
    },
    /// A time cannot be written as a four-digit-year GeneralizedTime.
    #[error("time {unix_seconds} (Unix seconds) is outside years 0000 to 9999")]
    TimeOutOfRange {
        /// The time given.
        unix_seconds: i64,
    },
    /// The request asks about more than [`MAX_CERT_IDS`] certificates.
    #[error("the request asks about {count} certificates; at most {max} are answered")]
    TooManyCertIds {
        /// CertIDs in the request.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An internal invariant failed (a bug, never the client's fault): says which.
    #[error("internal error: {0}")]
    Unreachable(&'static str),
    /// The request has a critical extension this responder does not understand (RFC 6960
    /// section 4.4: unrecognized extensions are ignored unless critical).
    #[error("the request has the critical extension {oid}, which is not supported")]
    UnsupportedCriticalExtension {
        /// The extension.
        oid: ObjectIdentifier,
    },
    /// A CertID's hashAlgorithm is not SHA-1 or SHA-2.
    #[error("CertID {index}: unsupported hashAlgorithm {oid}")]
    UnsupportedHashAlgorithm {
        /// Position of the CertID in the requestList, from 0.
        index: usize,
        /// The algorithm's OID.
        oid: ObjectIdentifier,
    },
}

impl OcspError {
    /// The `responseStatus` to answer with: `malformedRequest` for a defect of the request,
    /// `internalError` for a failure of the responder (RFC 6960 section 2.3).
    pub fn response_status(&self) -> ResponseStatus {
        match self {
            OcspError::DuplicateExtension { .. }
            | OcspError::EmptyRequestList
            | OcspError::GetPathBase64 { .. }
            | OcspError::GetPathCharacter { .. }
            | OcspError::GetPathEmpty
            | OcspError::GetPathTooLong { .. }
            | OcspError::HashAlgorithmParameters { .. }
            | OcspError::HashLength { .. }
            | OcspError::Malformed { .. }
            | OcspError::SerialNotPositive { .. }
            | OcspError::TooManyCertIds { .. }
            | OcspError::UnsupportedCriticalExtension { .. }
            | OcspError::UnsupportedHashAlgorithm { .. } => ResponseStatus::MalformedRequest,
            OcspError::EmptyResponseList
            | OcspError::Key(_)
            | OcspError::KeyRejected { .. }
            | OcspError::NextUpdateBeforeThisUpdate { .. }
            | OcspError::Signing { .. }
            | OcspError::TimeOutOfRange { .. }
            | OcspError::Unreachable(_) => ResponseStatus::InternalError,
        }
    }
}

/// The hash a CertID is computed with (its `hashAlgorithm`, RFC 6960 section 4.1.1).
///
/// SHA-1 is what most clients send (RFC 5019 section 2.1.1 required it); the SHA-2 hashes
/// are what newer clients (`openssl ocsp -cert_id_md sha256`) send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1, 1.3.14.3.2.26.
    Sha1,
    /// SHA-256, 2.16.840.1.101.3.4.2.1.
    Sha256,
    /// SHA-384, 2.16.840.1.101.3.4.2.2.
    Sha384,
    /// SHA-512, 2.16.840.1.101.3.4.2.3.
    Sha512,
}

impl HashAlgorithm {
    /// Every supported hash, in declaration order.
    pub const ALL: [HashAlgorithm; 4] = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// The algorithm's OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha1 => ID_SHA1,
            HashAlgorithm::Sha256 => ID_SHA256,
            HashAlgorithm::Sha384 => ID_SHA384,
            HashAlgorithm::Sha512 => ID_SHA512,
        }
    }

    /// The hash with this OID, if supported.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.oid() == *oid)
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        self.digest_algorithm().output_len()
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), data)
            .as_ref()
            .to_vec()
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            // CertIDs are identifiers, not signatures: SHA-1 is still what they use.
            HashAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
            HashAlgorithm::Sha512 => &digest::SHA512,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha384 => "SHA-384",
            HashAlgorithm::Sha512 => "SHA-512",
        })
    }
}

/// One certificate a request asks about: its CertID (RFC 6960 section 4.1.1).
///
/// ```text
/// CertID ::= SEQUENCE {
///     hashAlgorithm       AlgorithmIdentifier,
///     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
///     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
///     serialNumber        CertificateSerialNumber }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertIdRequest {
    /// The hash of `issuer_name_hash` and `issuer_key_hash`.
    pub hash: HashAlgorithm,
    /// Hash of the issuer's subject Name DER.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey BIT STRING contents.
    pub issuer_key_hash: Vec<u8>,
    /// The serial: big-endian magnitude octets, no leading 0x00, not empty (positive).
    pub serial: Vec<u8>,
    /// The CertID exactly as received, echoed in the SingleResponse (RFC 6960 section 4.2.2.3
    /// has clients match the response's CertID against their request's).
    pub cert_id_der: Vec<u8>,
}

/// A parsed `OCSPRequest` (RFC 6960 section 4.1.1): what the responder needs from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The CertIDs, in request order: 1 to [`MAX_CERT_IDS`].
    pub certs: Vec<CertIdRequest>,
    /// The nonce extension's extnValue contents (for RFC 8954 clients, a DER OCTET STRING),
    /// to be echoed verbatim: OpenSSL compares the two extnValues byte for byte.
    pub nonce: Option<Vec<u8>>,
}

/// Parses a DER `OCSPRequest` (RFC 6960 section 4.1.1).
///
/// Refuses (for a `malformedRequest` answer) anything that is not exactly one DER
/// OCSPRequest, an empty requestList or more than [`MAX_CERT_IDS`] CertIDs, zero or negative
/// serials, unsupported hash algorithms, hash values of the wrong length, and unknown critical
/// extensions. A signed request is accepted and its signature ignored: nothing the responder
/// says depends on who asks (RFC 6960 section 4.1.2 makes signing optional).
pub fn parse_request(der: &[u8]) -> Result<ParsedRequest, OcspError> {
    // `from_der` also refuses trailing bytes after the OCSPRequest.
    let request = OcspRequest::from_der(der).map_err(|source| OcspError::Malformed { source })?;
    let tbs = &request.tbs_request;
    let count = tbs.request_list.len();
    if count == 0 {
        return Err(OcspError::EmptyRequestList);
    }
    if count > MAX_CERT_IDS {
        return Err(OcspError::TooManyCertIds {
            count,
            max: MAX_CERT_IDS,
        });
    }

    let mut nonce = None;
    for extension in tbs.request_extensions.iter().flatten() {
        if extension.extn_id == ID_PKIX_OCSP_NONCE {
            if nonce.is_some() {
                return Err(OcspError::DuplicateExtension {
                    oid: extension.extn_id,
                });
            }
            nonce = Some(extension.extn_value.as_bytes().to_vec());
        } else if extension.critical {
            return Err(OcspError::UnsupportedCriticalExtension {
                oid: extension.extn_id,
            });
        }
    }

    let raw_cert_ids = raw_cert_ids(der).map_err(|source| OcspError::Malformed { source })?;
    if raw_cert_ids.len() != count {
        return Err(OcspError::Unreachable(
            "the CertID walk and x509-ocsp disagree on the requestList",
        ));
    }

    let mut certs = Vec::with_capacity(count);
    for (index, (single, cert_id_der)) in tbs.request_list.iter().zip(raw_cert_ids).enumerate() {
        check_no_critical_extension(single.single_request_extensions.as_ref())?;
        let cert_id = &single.req_cert;
        let oid = cert_id.hash_algorithm.oid;
        let hash = HashAlgorithm::from_oid(&oid)
            .ok_or(OcspError::UnsupportedHashAlgorithm { index, oid })?;
        // RFC 5754 section 2: the SHA-2 parameters are absent or NULL, and clients send both
        // (OpenSSL writes NULL); SHA-1 likewise.
        if let Some(parameters) = &cert_id.hash_algorithm.parameters {
            if parameters.tag() != Tag::Null || !parameters.value().is_empty() {
                return Err(OcspError::HashAlgorithmParameters { index });
            }
        }
        for found in [
            cert_id.issuer_name_hash.as_bytes().len(),
            cert_id.issuer_key_hash.as_bytes().len(),
        ] {
            if found != hash.output_len() {
                return Err(OcspError::HashLength {
                    index,
                    algorithm: hash,
                    expected: hash.output_len(),
                    found,
                });
            }
        }
        certs.push(CertIdRequest {
            hash,
            issuer_name_hash: cert_id.issuer_name_hash.as_bytes().to_vec(),
            issuer_key_hash: cert_id.issuer_key_hash.as_bytes().to_vec(),
            serial: positive_magnitude(cert_id.serial_number.as_bytes())
                .ok_or(OcspError::SerialNotPositive { index })?
                .to_vec(),
            cert_id_der: cert_id_der.to_vec(),
        });
    }
    Ok(ParsedRequest { certs, nonce })
}

/// RFC 6960 section 4.4: extensions that are not understood are ignored unless critical.
fn check_no_critical_extension(extensions: Option<&Extensions>) -> Result<(), OcspError> {
    match extensions.into_iter().flatten().find(|e| e.critical) {
        Some(extension) => Err(OcspError::UnsupportedCriticalExtension {
            oid: extension.extn_id,
        }),
        None => Ok(()),
    }
}

/// The magnitude of a DER INTEGER's two's-complement content octets, without the sign octet;
/// `None` when the value is zero or negative.
fn positive_magnitude(content: &[u8]) -> Option<&[u8]> {
    if content.first().is_none_or(|b| b & 0x80 != 0) {
        return None;
    }
    // DER INTEGERs are minimal, so at most one 0x00 leads, and only before a high bit.
    let magnitude = content.strip_prefix(&[0]).unwrap_or(content);
    if magnitude.is_empty() {
        None
    } else {
        Some(magnitude)
    }
}

/// The CertID TLVs of a request, as received, in requestList order.
///
/// ```text
/// OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT ... }
/// TBSRequest  ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, requestorName [1] EXPLICIT
///                            OPTIONAL, requestList SEQUENCE OF Request, ... }
/// Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT OPTIONAL }
/// ```
fn raw_cert_ids(der: &[u8]) -> der::Result<Vec<&[u8]>> {
    let request = sequence_contents(der)?;
    let tbs = sequence_contents(first_tlv(request)?)?;
    let mut reader = SliceReader::new(tbs)?;
    // Skip version [0] and requestorName [1]; requestList is the first universal SEQUENCE.
    let request_list = loop {
        let element = reader.tlv_bytes()?;
        if element.first() == Some(&asn1::SEQUENCE) {
            break sequence_contents(element)?;
        }
    };
    let mut requests = SliceReader::new(request_list)?;
    let mut cert_ids = Vec::new();
    while !requests.is_finished() {
        let single = sequence_contents(requests.tlv_bytes()?)?;
        cert_ids.push(first_tlv(single)?);
    }
    Ok(cert_ids)
}

/// The contents of the SEQUENCE that is exactly `tlv`.
fn sequence_contents(tlv: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(tlv)?;
    let header = der::Header::decode(&mut reader)?;
    header.tag.assert_eq(Tag::Sequence)?;
    let contents = reader.read_slice(header.length)?;
    reader.finish(contents)
}

/// The first TLV of `contents`.
fn first_tlv(contents: &[u8]) -> der::Result<&[u8]> {
    SliceReader::new(contents)?.tlv_bytes()
}

/// Decodes the request of an RFC 6960 appendix A.1 GET (`{url}/{url-encoding of base-64
/// encoding of the DER encoding of the OCSPRequest}`) into DER for [`parse_request`].
///
/// Takes the path after the responder's prefix, percent-decoded or not: `%2B`, `%2F` and `%3D`
/// (either case) are decoded here, and a base64 text has no `%` of its own. It also accepts
/// base64url (`-`, `_`), a space for `+` (a path decoded as a form), and missing padding.
/// At most [`MAX_GET_PATH_LEN`] characters.
pub fn decode_get_path(encoded: &str) -> Result<Vec<u8>, OcspError> {
    if encoded.len() > MAX_GET_PATH_LEN {
        return Err(OcspError::GetPathTooLong {
            length: encoded.len(),
            max: MAX_GET_PATH_LEN,
        });
    }
    let bytes = encoded.as_bytes();
    let mut text = String::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        let start = position;
        let byte = if bytes[position] == b'%' {
            let escape = bytes
                .get(position + 1..position + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or(OcspError::GetPathCharacter { position })?;
            position += 3;
            escape
        } else {
            position += 1;
            bytes[start]
        };
        let byte = match byte {
            b'-' | b' ' => b'+',
            b'_' => b'/',
            other => other,
        };
        if !(byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=')) {
            return Err(OcspError::GetPathCharacter { position: start });
        }
        text.push(char::from(byte));
    }
    // Re-pad canonically: base64url clients often leave the padding out.
    let unpadded = text.trim_end_matches('=').len();
    text.truncate(unpadded);
    if text.is_empty() {
        return Err(OcspError::GetPathEmpty);
    }
    while !text.len().is_multiple_of(4) {
        text.push('=');
    }
    base64ct::Base64::decode_vec(&text).map_err(|source| OcspError::GetPathBase64 { source })
}

/// The issuer's name and key hashes in every [`HashAlgorithm`], computed once, for telling
/// whether a CertID names this issuer (RFC 6960 section 4.1.1: issuerNameHash is the hash of
/// the issuer's subject Name DER, issuerKeyHash of its subjectPublicKey BIT STRING value
/// without tag, length and unused-bits octet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerKeyHashes {
    /// `(name hash, key hash)` per hash, in [`HashAlgorithm::ALL`] order.
    hashes: [(Vec<u8>, Vec<u8>); 4],
}

impl IssuerKeyHashes {
    /// Hashes the issuer's subject Name DER (as in its certificate) and its public key bits
    /// (`IssuingCa::subject_der` and `IssuingCa::public_key_bits`).
    pub fn new(issuer_subject_der: &[u8], issuer_public_key_bits: &[u8]) -> Self {
        IssuerKeyHashes {
            hashes: HashAlgorithm::ALL.map(|hash| {
                (
                    hash.digest(issuer_subject_der),
                    hash.digest(issuer_public_key_bits),
                )
            }),
        }
    }

    /// The issuer's name hash in `hash`.
    pub fn name_hash(&self, hash: HashAlgorithm) -> &[u8] {
        &self.entry(hash).0
    }

    /// The issuer's key hash in `hash`.
    pub fn key_hash(&self, hash: HashAlgorithm) -> &[u8] {
        &self.entry(hash).1
    }

    /// Whether `cert` names this issuer: both hashes equal, in the CertID's own hash.
    pub fn matches(&self, cert: &CertIdRequest) -> bool {
        let (name, key) = self.entry(cert.hash);
        cert.issuer_name_hash == *name && cert.issuer_key_hash == *key
    }

    fn entry(&self, hash: HashAlgorithm) -> &(Vec<u8>, Vec<u8>) {
        // Same order as `HashAlgorithm::ALL`, which `new` maps over.
        let index = match hash {
            HashAlgorithm::Sha1 => 0,
            HashAlgorithm::Sha256 => 1,
            HashAlgorithm::Sha384 => 2,
            HashAlgorithm::Sha512 => 3,
        };
        &self.hashes[index]
    }
}

/// A certificate's status in a SingleResponse (RFC 6960 section 4.2.1).
///
/// ```text
/// CertStatus ::= CHOICE {
///     good        [0]     IMPLICIT NULL,
///     revoked     [1]     IMPLICIT RevokedInfo,
///     unknown     [2]     IMPLICIT UnknownInfo }
/// RevokedInfo ::= SEQUENCE {
///     revocationTime              GeneralizedTime,
///     revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked. RFC 6960 section 2.2: this says nothing about whether the certificate
    /// was ever issued, unless the response carries the extended revoke extension.
    Good,
    /// Revoked at `revoked_at` (Unix seconds), with the reason when one is to be published.
    Revoked {
        /// revocationTime, Unix seconds.
        revoked_at: i64,
        /// revocationReason; `None` leaves it out.
        reason: Option<RevocationReason>,
    },
    /// The responder does not know the certificate (RFC 6960 section 2.2).
    Unknown,
}

/// One SingleResponse to encode (RFC 6960 section 4.2.1).
///
/// ```text
/// SingleResponse ::= SEQUENCE {
///     certID                  CertID,
///     certStatus              CertStatus,
///     thisUpdate              GeneralizedTime,
///     nextUpdate          [0] EXPLICIT GeneralizedTime OPTIONAL,
///     singleExtensions    [1] EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SingleResponse<'a> {
    /// The CertID DER as the request had it ([`CertIdRequest::cert_id_der`]); copied verbatim.
    pub cert_id_der: &'a [u8],
    /// The status.
    pub status: CertStatus,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds; RFC 5019 section 2.2.4 requires it of lightweight responders.
    pub next_update: Option<i64>,
}

/// An unsuccessful OCSPResponseStatus (RFC 6960 section 4.2.1); such responses carry nothing
/// else and are not signed.
///
/// ```text
/// OCSPResponseStatus ::= ENUMERATED {
///     successful            (0),  -- Response has valid confirmations
///     malformedRequest      (1),  -- Illegal confirmation request
///     internalError         (2),  -- Internal error in issuer
///     tryLater              (3),  -- Try again later
///                                 -- (4) is not used
///     sigRequired           (5),  -- Must sign the request
///     unauthorized          (6)   -- Request unauthorized }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseStatus {
    /// `malformedRequest` (1).
    MalformedRequest,
    /// `internalError` (2).
    InternalError,
    /// `tryLater` (3).
    TryLater,
    /// `sigRequired` (5).
    SigRequired,
    /// `unauthorized` (6): also the answer for a CertID of another issuer (RFC 5019 section
    /// 2.2.3).
    Unauthorized,
}

impl ResponseStatus {
    /// The ENUMERATED value.
    pub fn code(self) -> u8 {
        match self {
            ResponseStatus::MalformedRequest => 1,
            ResponseStatus::InternalError => 2,
            ResponseStatus::TryLater => 3,
            ResponseStatus::SigRequired => 5,
            ResponseStatus::Unauthorized => 6,
        }
    }
}

/// An `OCSPResponse` with only a responseStatus (RFC 6960 section 4.2.1): five bytes.
pub fn error_response(status: ResponseStatus) -> Vec<u8> {
    // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] ... OPTIONAL }
    vec![asn1::SEQUENCE, 3, ENUMERATED, 1, status.code()]
}

/// The delegated responder's private key: EC P-256 in memory, never written anywhere.
/// `Debug` shows the key hash only.
pub struct ResponderKey {
    pair: EcdsaKeyPair,
    spki: Vec<u8>,
    /// Offset in `spki` where the subjectPublicKey bits begin (after the unused-bits octet).
    key_bits_start: usize,
    key_hash: [u8; 20],
    rng: SystemRandom,
}

impl ResponderKey {
    /// Generates a new P-256 key.
    pub fn generate() -> Result<Self, OcspError> {
        let generated = keys::generate(KeyAlgorithm::EcP256)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, generated.pkcs8_der())
            .map_err(|source| OcspError::KeyRejected { source })?;
        let spki = generated.spki_der().to_vec();
        // `public_key_bits` is the tail of `spki_der` (keys::GeneratedKey).
        let key_bits_start = spki.len() - generated.public_key_bits().len();
        let mut key_hash = [0u8; 20];
        key_hash.copy_from_slice(
            digest::digest(
                &digest::SHA1_FOR_LEGACY_USE_ONLY,
                generated.public_key_bits(),
            )
            .as_ref(),
        );
        Ok(ResponderKey {
            pair,
            spki,
            key_bits_start,
            key_hash,
            rng: SystemRandom::new(),
        })
    }

    /// SubjectPublicKeyInfo DER, for the responder certificate.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The subjectPublicKey BIT STRING contents (the uncompressed point).
    pub fn public_key_bits(&self) -> &[u8] {
        &self.spki[self.key_bits_start..]
    }

    /// SHA-1 of [`ResponderKey::public_key_bits`]: the `byKey` ResponderID (RFC 6960 section
    /// 4.2.1) and the responder certificate's subjectKeyIdentifier (RFC 5280 section 4.2.1.2
    /// method 1).
    pub fn key_hash(&self) -> &[u8; 20] {
        &self.key_hash
    }

    /// Signs `message` with ECDSA P-256 SHA-256: the DER `Ecdsa-Sig-Value`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, OcspError> {
        self.pair
            .sign(&self.rng, message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|source| OcspError::Signing { source })
    }
}

impl fmt::Debug for ResponderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key_hash: String = self.key_hash.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("ResponderKey")
            .field("key_hash", &key_hash)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// The delegated OCSP responder (RFC 6960 section 4.2.2.2): its key and the certificate the
/// issuing CA gave it, which every response carries so that clients can check the signature.
#[derive(Debug)]
pub struct Responder {
    /// The signing key.
    pub key: ResponderKey,
    /// Its certificate (DER), issued by the CA whose certificates it answers for.
    pub certificate_der: Vec<u8>,
}

/// Builds a successful, signed `OCSPResponse` (RFC 6960 section 4.2.1).
///
/// ```text
/// OCSPResponse ::= SEQUENCE {
///    responseStatus         OCSPResponseStatus,  -- successful (0)
///    responseBytes      [0] EXPLICIT ResponseBytes OPTIONAL }
/// ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
/// BasicOCSPResponse ::= SEQUENCE {
///    tbsResponseData        ResponseData,
///    signatureAlgorithm     AlgorithmIdentifier,
///    signature              BIT STRING,
///    certs              [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ResponseData ::= SEQUENCE {
///    version            [0] EXPLICIT Version DEFAULT v1,
///    responderID            ResponderID,
///    producedAt             GeneralizedTime,
///    responses              SEQUENCE OF SingleResponse,
///    responseExtensions [1] EXPLICIT Extensions OPTIONAL }
/// ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
/// ```
///
/// The version is v1, the default, so it is left out (X.690 11.5). The responder is named
/// `byKey`: 22 bytes instead of a Name. `nonce` is the request's nonce extnValue contents
/// ([`ParsedRequest::nonce`]), echoed as it came (RFC 8954 section 2.1). `extended_revoke`
/// adds id-pkix-ocsp-extended-revoke (RFC 6960 section 4.4.8), by which the responder says
/// it answers `revoked` for serials that were never issued (RFC 6960 section 2.2). The
/// signature is ecdsa-with-SHA256 by [`Responder::key`], and `certs` holds the responder's
/// certificate. Every `cert_id_der` must be a CertID as [`parse_request`] returned it.
pub fn build_response(
    responder: &Responder,
    produced_at: i64,
    responses: &[SingleResponse<'_>],
    nonce: Option<&[u8]>,
    extended_revoke: bool,
) -> Result<Vec<u8>, OcspError> {
    if responses.is_empty() {
        return Err(OcspError::EmptyResponseList);
    }
    let mut singles = Vec::with_capacity(responses.len() * 128);
    for single in responses {
        push_single_response(&mut singles, single)?;
    }

    // Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension, so none at all means no [1].
    let mut extensions = Vec::new();
    if let Some(nonce) = nonce {
        // Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE (left out), extnValue }
        push_header(
            &mut extensions,
            asn1::SEQUENCE,
            ID_PKIX_OCSP_NONCE_DER.len() + tlv_len(nonce.len()),
        );
        extensions.extend_from_slice(ID_PKIX_OCSP_NONCE_DER);
        push_tlv(&mut extensions, asn1::OCTET_STRING, nonce);
    }
    if extended_revoke {
        extensions.extend_from_slice(EXTENDED_REVOKE_EXTENSION_DER);
    }

    let produced_at = generalized_time(produced_at)?;
    let key_hash = responder.key.key_hash();
    // byKey [2] EXPLICIT KeyHash, KeyHash ::= OCTET STRING (SHA-1 of the key bits).
    let responder_id = [asn1::context_constructed(2), 22, asn1::OCTET_STRING, 20];
    let extensions_len = if extensions.is_empty() {
        0
    } else {
        tlv_len(tlv_len(extensions.len()))
    };
    let tbs_len = responder_id.len()
        + key_hash.len()
        + produced_at.len()
        + tlv_len(singles.len())
        + extensions_len;
    let mut tbs = Vec::with_capacity(tlv_len(tbs_len));
    push_header(&mut tbs, asn1::SEQUENCE, tbs_len);
    tbs.extend_from_slice(&responder_id);
    tbs.extend_from_slice(key_hash);
    tbs.extend_from_slice(&produced_at);
    push_tlv(&mut tbs, asn1::SEQUENCE, &singles);
    if !extensions.is_empty() {
        push_header(
            &mut tbs,
            asn1::context_constructed(1),
            tlv_len(extensions.len()),
        );
        push_tlv(&mut tbs, asn1::SEQUENCE, &extensions);
    }

    let signature = responder.key.sign(&tbs)?;
    let algorithm = SignatureAlgorithm::EcdsaWithSha256.algorithm_identifier_der();
    let certificate = &responder.certificate_der;
    // BIT STRING: the unused-bits octet (0) and the signature.
    let signature_len = 1 + signature.len();
    let basic_len =
        tbs.len() + algorithm.len() + tlv_len(signature_len) + tlv_len(tlv_len(certificate.len()));
    let response_bytes_len = ID_PKIX_OCSP_BASIC_DER.len() + tlv_len(tlv_len(basic_len));
    let outer_len = 3 + tlv_len(tlv_len(response_bytes_len));

    let mut out = Vec::with_capacity(tlv_len(outer_len));
    push_header(&mut out, asn1::SEQUENCE, outer_len);
    out.extend_from_slice(&[ENUMERATED, 1, 0]);
    push_header(
        &mut out,
        asn1::context_constructed(0),
        tlv_len(response_bytes_len),
    );
    push_header(&mut out, asn1::SEQUENCE, response_bytes_len);
    out.extend_from_slice(ID_PKIX_OCSP_BASIC_DER);
    push_header(&mut out, asn1::OCTET_STRING, tlv_len(basic_len));
    push_header(&mut out, asn1::SEQUENCE, basic_len);
    out.extend_from_slice(&tbs);
    out.extend_from_slice(algorithm);
    push_header(&mut out, asn1::BIT_STRING, signature_len);
    out.push(0);
    out.extend_from_slice(&signature);
    push_header(
        &mut out,
        asn1::context_constructed(0),
        tlv_len(certificate.len()),
    );
    push_tlv(&mut out, asn1::SEQUENCE, certificate);
    Ok(out)
}

/// Appends one SingleResponse (RFC 6960 section 4.2.1).
fn push_single_response(out: &mut Vec<u8>, single: &SingleResponse<'_>) -> Result<(), OcspError> {
    let this_update = generalized_time(single.this_update)?;
    let next_update = match single.next_update {
        Some(next) if next < single.this_update => {
            return Err(OcspError::NextUpdateBeforeThisUpdate {
                this_update: single.this_update,
                next_update: next,
            })
        }
        Some(next) => Some(generalized_time(next)?),
        None => None,
    };
    let mut status = Vec::with_capacity(24);
    match single.status {
        // good [0] IMPLICIT NULL
        CertStatus::Good => status.extend_from_slice(&[asn1::context_primitive(0), 0]),
        // unknown [2] IMPLICIT UnknownInfo, UnknownInfo ::= NULL
        CertStatus::Unknown => status.extend_from_slice(&[asn1::context_primitive(2), 0]),
        // revoked [1] IMPLICIT RevokedInfo (a SEQUENCE, so the tag stays constructed)
        CertStatus::Revoked { revoked_at, reason } => {
            let revocation_time = generalized_time(revoked_at)?;
            let reason_len = if reason.is_some() { 5 } else { 0 };
            push_header(
                &mut status,
                asn1::context_constructed(1),
                revocation_time.len() + reason_len,
            );
            status.extend_from_slice(&revocation_time);
            if let Some(reason) = reason {
                // revocationReason [0] EXPLICIT CRLReason (ENUMERATED, RFC 5280 5.3.1)
                status.extend_from_slice(&[
                    asn1::context_constructed(0),
                    3,
                    ENUMERATED,
                    1,
                    reason.code(),
                ]);
            }
        }
    }
    let next_update_len = next_update.map_or(0, |t| tlv_len(t.len()));
    let len = single.cert_id_der.len() + status.len() + this_update.len() + next_update_len;
    push_header(out, asn1::SEQUENCE, len);
    out.extend_from_slice(single.cert_id_der);
    out.extend_from_slice(&status);
    out.extend_from_slice(&this_update);
    if let Some(next_update) = next_update {
        // nextUpdate [0] EXPLICIT GeneralizedTime
        push_tlv(out, asn1::context_constructed(0), &next_update);
    }
    Ok(())
}

/// A DER GeneralizedTime TLV `YYYYMMDDHHMMSSZ` (RFC 6960 section 4.2.2.1 and RFC 5280 section
/// 4.1.2.5.2: UTC, seconds, no fraction).
fn generalized_time(unix_seconds: i64) -> Result<[u8; 17], OcspError> {
    let out_of_range = || OcspError::TimeOutOfRange { unix_seconds };
    let time =
        time::OffsetDateTime::from_unix_timestamp(unix_seconds).map_err(|_| out_of_range())?;
    let year = u32::try_from(time.year())
        .ok()
        .filter(|y| *y <= 9999)
        .ok_or_else(out_of_range)?;
    let mut out = [0u8; 17];
    out[0] = asn1::GENERALIZED_TIME;
    out[1] = 15;
    let fields = [
        (year, 4),
        (u32::from(u8::from(time.month())), 2),
        (u32::from(time.day()), 2),
        (u32::from(time.hour()), 2),
        (u32::from(time.minute()), 2),
        (u32::from(time.second()), 2),
    ];
    let mut position = 2;
    for (value, width) in fields {
        let mut value = value;
        for i in (0..width).rev() {
            // `value % 10` is a single digit, so the cast cannot truncate.
            out[position + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        position += width;
    }
    out[16] = b'Z';
    Ok(out)
}
