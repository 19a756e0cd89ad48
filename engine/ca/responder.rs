//! The delegated OCSP responder certificate (RFC 6960 section 4.2.2.2): the issuing CA
//! certifies a separate key to sign OCSP responses, so the CA key stays out of the hot path.
//!
//! The TBSCertificate is framed by hand with `asn1.rs` around the CA's own bytes (its subject
//! Name and key identifier) and the responder's SubjectPublicKeyInfo, copied verbatim. How
//! long the certificate lives and when it is replaced is the caller's policy; this file only
//! refuses a validity that the CA itself does not cover.

use der::asn1::ObjectIdentifier;
use der::{Decode, Tag, Tagged};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use super::{CaError, IssuingCa};
use crate::asn1::{self, tlv, tlv_parts};

/// organizationName, 2.5.4.10.
const ORGANIZATION_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");

/// `SEQUENCE { commonName }`'s OID TLV, 2.5.4.3.
const COMMON_NAME_DER: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];

/// RFC 5280 appendix A.1 `ub-common-name`: a commonName holds at most 64 characters.
const COMMON_NAME_MAX_CHARS: usize = 64;

/// Appended to the CA's common name to name the responder.
const COMMON_NAME_SUFFIX: &str = " OCSP Responder";

/// basicConstraints (2.5.29.19), critical, `SEQUENCE {}`: cA FALSE by default (RFC 5280
/// section 4.2.1.9).
const BASIC_CONSTRAINTS_END_ENTITY: &[u8] = &[
    0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x02, 0x30, 0x00,
];
/// keyUsage (2.5.29.15), critical, digitalSignature only (RFC 5280 section 4.2.1.3): the key
/// signs OCSP responses and nothing else.
const KEY_USAGE_DIGITAL_SIGNATURE: &[u8] = &[
    0x30, 0x0e, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x07, 0x80,
];
/// extKeyUsage (2.5.29.37) `{ id-kp-OCSPSigning }` (1.3.6.1.5.5.7.3.9): what makes the
/// certificate a delegated responder (RFC 6960 section 4.2.2.2).
const EXTENDED_KEY_USAGE_OCSP_SIGNING: &[u8] = &[
    0x30, 0x13, 0x06, 0x03, 0x55, 0x1d, 0x25, 0x04, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01,
    0x05, 0x05, 0x07, 0x03, 0x09,
];
/// id-pkix-ocsp-nocheck (1.3.6.1.5.5.7.48.1.5), value NULL, non-critical: clients need not
/// check the responder certificate's own revocation (RFC 6960 section 4.2.2.2.1).
const OCSP_NO_CHECK: &[u8] = &[
    0x30, 0x0f, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05, 0x04, 0x02, 0x05,
    0x00,
];
/// authorityKeyIdentifier's extnID TLV, 2.5.29.35.
const AUTHORITY_KEY_IDENTIFIER_OID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x23];
/// subjectKeyIdentifier's extnID TLV, 2.5.29.14.
const SUBJECT_KEY_IDENTIFIER_OID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0e];

/// `[0] EXPLICIT Version`, v3 (2): extensions need v3 (RFC 5280 section 4.1.2.1).
const VERSION_V3: &[u8] = &[0xa0, 0x03, 0x02, 0x01, 0x02];

impl IssuingCa {
    /// Issues a delegated OCSP responder certificate (RFC 6960 section 4.2.2.2) for `spki_der`,
    /// signed by the issuing CA with its default signature algorithm.
    ///
    /// `serial` is the big-endian magnitude (positive, 1 to 20 octets once leading zeros are
    /// stripped); `not_before` and `not_after` are Unix seconds and must lie within the CA's
    /// own validity end. The subject is `O=<the CA's O>, CN=<the CA's CN> OCSP Responder`, or
    /// the CN alone when the CA's subject has no single simple O. Extensions: basicConstraints
    /// (critical, cA FALSE), keyUsage (critical, digitalSignature), extKeyUsage
    /// id-kp-OCSPSigning, id-pkix-ocsp-nocheck, authorityKeyIdentifier (the CA's key id) and
    /// subjectKeyIdentifier (SHA-1 of the responder key bits). Returns the Certificate DER;
    /// [`CaError::InvalidResponderParameter`] for an unusable argument.
    pub fn issue_ocsp_responder(
        &self,
        spki_der: &[u8],
        serial: &[u8],
        not_before: i64,
        not_after: i64,
    ) -> Result<Vec<u8>, CaError> {
        let invalid = |parameter, reason| CaError::InvalidResponderParameter { parameter, reason };
        let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
            .map_err(|_| invalid("spki_der", "not a DER SubjectPublicKeyInfo"))?;
        let key_bits = spki.subject_public_key.as_bytes().ok_or(invalid(
            "spki_der",
            "the public key BIT STRING has unused bits",
        ))?;

        let magnitude = {
            let first = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
            &serial[first..]
        };
        // RFC 5280 section 4.1.2.2: positive, at most 20 octets.
        if magnitude.is_empty() {
            return Err(invalid("serial", "must be positive"));
        }
        if magnitude.len() > 20 || (magnitude.len() == 20 && magnitude[0] & 0x80 != 0) {
            return Err(invalid("serial", "must fit in 20 octets"));
        }
        if not_after <= not_before {
            return Err(invalid("not_after", "must be after not_before"));
        }
        // A certificate must not outlive its issuer: clients would reject the responses once
        // the CA expires anyway, and RFC 5280 section 6.1.3 path validation fails beyond it.
        if not_after > self.not_after_unix() {
            return Err(invalid("not_after", "is after the issuing CA's notAfter"));
        }
        let validity = tlv_parts(
            asn1::SEQUENCE,
            &[&encode_time(not_before)?, &encode_time(not_after)?],
        );

        let signature_algorithm = self.default_signature_algorithm();
        let algorithm_identifier = signature_algorithm.algorithm_identifier_der();
        let subject = self.responder_subject();
        let extensions = responder_extensions(self.subject_key_identifier(), key_bits);
        let tbs = tlv_parts(
            asn1::SEQUENCE,
            &[
                VERSION_V3,
                &asn1::unsigned_integer(magnitude),
                algorithm_identifier,
                self.subject_der(),
                &validity,
                &subject,
                spki_der,
                &extensions,
            ],
        );
        let signature = self.sign(signature_algorithm, &tbs)?;
        let mut signature_bits = Vec::with_capacity(1 + signature.len());
        signature_bits.push(0);
        signature_bits.extend_from_slice(&signature);
        Ok(tlv_parts(
            asn1::SEQUENCE,
            &[
                &tbs,
                algorithm_identifier,
                &tlv(asn1::BIT_STRING, &signature_bits),
            ],
        ))
    }

    /// `O=<CA O>, CN=<CA CN> OCSP Responder`, the O's AttributeTypeAndValue copied from the CA
    /// subject (keeping its string type) when it has exactly one O in a single-valued RDN.
    fn responder_subject(&self) -> Vec<u8> {
        let common_name = responder_common_name(&self.common_name);
        let cn_atv = tlv_parts(
            asn1::SEQUENCE,
            &[
                COMMON_NAME_DER,
                &tlv(asn1::UTF8_STRING, common_name.as_bytes()),
            ],
        );
        let mut rdns = Vec::new();
        if let Some(organization) = simple_organization(self.subject_der()) {
            rdns.extend_from_slice(&tlv(asn1::SET, &organization));
        }
        rdns.extend_from_slice(&tlv(asn1::SET, &cn_atv));
        tlv(asn1::SEQUENCE, &rdns)
    }
}

/// `<ca_common_name> OCSP Responder`, the CA part cut at a character boundary so that the
/// whole stays within `ub-common-name`.
fn responder_common_name(ca_common_name: &str) -> String {
    let room = COMMON_NAME_MAX_CHARS - COMMON_NAME_SUFFIX.chars().count();
    let mut name: String = ca_common_name.trim().chars().take(room).collect();
    name.truncate(name.trim_end().len());
    name.push_str(COMMON_NAME_SUFFIX);
    name
}

/// The DER AttributeTypeAndValue of the subject's organizationName when there is exactly one,
/// alone in its RDN, as a UTF8String or PrintableString; otherwise `None` (the responder is
/// then named by its CN alone rather than by a guess at a complex name).
fn simple_organization(subject_der: &[u8]) -> Option<Vec<u8>> {
    let name = Name::from_der(subject_der).ok()?;
    let mut found = None;
    for rdn in name.0.iter() {
        for atv in rdn.0.iter().filter(|atv| atv.oid == ORGANIZATION_NAME) {
            let simple = rdn.0.len() == 1
                && matches!(atv.value.tag(), Tag::Utf8String | Tag::PrintableString);
            if found.is_some() || !simple {
                return None;
            }
            found = Some(atv);
        }
    }
    der::Encode::to_der(found?).ok()
}

/// `[3] EXPLICIT Extensions` of the responder certificate.
fn responder_extensions(authority_key_identifier: &[u8], responder_key_bits: &[u8]) -> Vec<u8> {
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT KeyIdentifier, ... }
    let aki_value = tlv(
        asn1::SEQUENCE,
        &tlv(asn1::context_primitive(0), authority_key_identifier),
    );
    let aki = tlv_parts(
        asn1::SEQUENCE,
        &[
            AUTHORITY_KEY_IDENTIFIER_OID,
            &tlv(asn1::OCTET_STRING, &aki_value),
        ],
    );
    // RFC 5280 section 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits, which is also the
    // byKey ResponderID the responses carry (RFC 6960 section 4.2.1).
    let ski_value = tlv(asn1::OCTET_STRING, &Sha1::digest(responder_key_bits));
    let ski = tlv_parts(
        asn1::SEQUENCE,
        &[
            SUBJECT_KEY_IDENTIFIER_OID,
            &tlv(asn1::OCTET_STRING, &ski_value),
        ],
    );
    let list = tlv_parts(
        asn1::SEQUENCE,
        &[
            BASIC_CONSTRAINTS_END_ENTITY,
            KEY_USAGE_DIGITAL_SIGNATURE,
            EXTENDED_KEY_USAGE_OCSP_SIGNING,
            OCSP_NO_CHECK,
            &aki,
            &ski,
        ],
    );
    tlv(asn1::context_constructed(3), &list)
}

/// RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
fn encode_time(unix_seconds: i64) -> Result<Vec<u8>, CaError> {
    let out_of_range = || CaError::InvalidResponderParameter {
        parameter: "not_before/not_after",
        reason: "outside years 0000 to 9999",
    };
    let t = OffsetDateTime::from_unix_timestamp(unix_seconds).map_err(|_| out_of_range())?;
    let (year, month, day) = (t.year(), u8::from(t.month()), t.day());
    let (hour, minute, second) = (t.hour(), t.minute(), t.second());
    if (1950..2050).contains(&year) {
        let text = format!(
            "{:02}{month:02}{day:02}{hour:02}{minute:02}{second:02}Z",
            year % 100
        );
        Ok(tlv(asn1::UTC_TIME, text.as_bytes()))
    } else if (0..=9999).contains(&year) {
        let text = format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}Z");
        Ok(tlv(asn1::GENERALIZED_TIME, text.as_bytes()))
    } else {
        Err(out_of_range())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use der::Encode;
    use x509_cert::ext::pkix::{
        AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
        SubjectKeyIdentifier,
    };
    use x509_cert::Certificate;

    use super::super::x509::ParsedCertificate;
    use super::super::CaInitOptions;
    use super::*;
    use crate::keys::{self, KeyAlgorithm};

    const ID_KP_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
    const ID_PKIX_OCSP_NOCHECK: &str = "1.3.6.1.5.5.7.48.1.5";

    fn init(dir: &Path, algorithm: KeyAlgorithm) -> IssuingCa {
        let options = CaInitOptions {
            algorithm,
            ..CaInitOptions::default()
        };
        IssuingCa::init(dir, &options).unwrap()
    }

    fn now() -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }

    /// Runs openssl in `dir`, panicking with its output on failure; returns stdout and stderr.
    fn openssl(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run openssl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "openssl {args:?} failed: {text}");
        text
    }

    fn extension<'a>(cert: &'a Certificate, oid: &str) -> &'a x509_cert::ext::Extension {
        let oid = ObjectIdentifier::new_unwrap(oid);
        cert.tbs_certificate
            .extensions
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == oid)
            .unwrap_or_else(|| panic!("extension {oid} missing"))
    }

    fn extension_der(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
        let oid = asn1::oid(oid).unwrap();
        let value = tlv(asn1::OCTET_STRING, value);
        if critical {
            tlv_parts(asn1::SEQUENCE, &[&oid, &[asn1::BOOLEAN, 1, 0xff], &value])
        } else {
            tlv_parts(asn1::SEQUENCE, &[&oid, &value])
        }
    }

    #[test]
    fn constant_extensions_match_their_definitions() {
        assert_eq!(
            BASIC_CONSTRAINTS_END_ENTITY,
            extension_der(
                "2.5.29.19",
                true,
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                }
                .to_der()
                .unwrap()
            )
        );
        let digital_signature = KeyUsage(KeyUsages::DigitalSignature.into());
        assert_eq!(
            KEY_USAGE_DIGITAL_SIGNATURE,
            extension_der("2.5.29.15", true, &digital_signature.to_der().unwrap())
        );
        let ocsp_signing = ExtendedKeyUsage(vec![ObjectIdentifier::new_unwrap(ID_KP_OCSP_SIGNING)]);
        assert_eq!(
            EXTENDED_KEY_USAGE_OCSP_SIGNING,
            extension_der("2.5.29.37", false, &ocsp_signing.to_der().unwrap())
        );
        assert_eq!(
            OCSP_NO_CHECK,
            extension_der(ID_PKIX_OCSP_NOCHECK, false, &[asn1::NULL, 0])
        );
        assert_eq!(
            AUTHORITY_KEY_IDENTIFIER_OID,
            asn1::oid("2.5.29.35").unwrap()
        );
        assert_eq!(SUBJECT_KEY_IDENTIFIER_OID, asn1::oid("2.5.29.14").unwrap());
        assert_eq!(COMMON_NAME_DER, asn1::oid("2.5.4.3").unwrap());
    }

    #[test]
    fn responder_certificates_follow_rfc_6960_and_openssl_accepts_them() {
        for algorithm in [
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let ca = init(dir.path(), algorithm);
            let key = keys::generate(KeyAlgorithm::EcP256).unwrap();
            let (not_before, not_after) = (now() - 3600, now() + 30 * 86_400);
            let der = ca
                .issue_ocsp_responder(key.spki_der(), &[0, 0x8a, 0x01], not_before, not_after)
                .unwrap();

            // Signed by the issuing CA, with its default algorithm.
            let path = dir.path().join("responder.crt");
            let parsed = ParsedCertificate::from_der(der.clone(), &path).unwrap();
            let issuing =
                ParsedCertificate::from_der(ca.certificate_der().to_vec(), &path).unwrap();
            assert!(parsed.is_signed_by(&issuing, &path).unwrap(), "{algorithm}");

            let cert = Certificate::from_der(&der).unwrap();
            assert_eq!(cert.to_der().unwrap(), der, "DER, not merely BER");
            let tbs = &cert.tbs_certificate;
            assert_eq!(tbs.version, x509_cert::Version::V3);
            assert_eq!(tbs.serial_number.as_bytes(), [0x00, 0x8a, 0x01]);
            assert_eq!(
                tbs.signature.to_der().unwrap(),
                ca.default_signature_algorithm().algorithm_identifier_der()
            );
            assert_eq!(tbs.issuer.to_der().unwrap(), ca.subject_der());
            assert_eq!(
                tbs.validity.not_before.to_unix_duration().as_secs(),
                u64::try_from(not_before).unwrap()
            );
            assert_eq!(
                tbs.validity.not_after.to_unix_duration().as_secs(),
                u64::try_from(not_after).unwrap()
            );
            assert_eq!(
                tbs.subject.to_string(),
                "CN=certmill development Issuing CA 1 OCSP Responder,O=certmill development"
            );
            assert_eq!(
                tbs.subject_public_key_info.to_der().unwrap(),
                key.spki_der()
            );

            let extensions = tbs.extensions.as_ref().unwrap();
            assert_eq!(extensions.len(), 6);
            let basic = extension(&cert, "2.5.29.19");
            assert!(basic.critical);
            assert!(
                !BasicConstraints::from_der(basic.extn_value.as_bytes())
                    .unwrap()
                    .ca
            );
            let usage = extension(&cert, "2.5.29.15");
            assert!(usage.critical);
            let usage = KeyUsage::from_der(usage.extn_value.as_bytes()).unwrap();
            assert_eq!(usage, KeyUsage(KeyUsages::DigitalSignature.into()));
            let eku = extension(&cert, "2.5.29.37");
            assert!(!eku.critical);
            assert_eq!(
                ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
                    .unwrap()
                    .0,
                [ObjectIdentifier::new_unwrap(ID_KP_OCSP_SIGNING)]
            );
            let nocheck = extension(&cert, ID_PKIX_OCSP_NOCHECK);
            assert!(!nocheck.critical);
            assert_eq!(nocheck.extn_value.as_bytes(), [asn1::NULL, 0]);
            let aki = extension(&cert, "2.5.29.35");
            assert!(!aki.critical);
            let aki = AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes()).unwrap();
            assert_eq!(
                aki.key_identifier.unwrap().as_bytes(),
                ca.subject_key_identifier()
            );
            assert_eq!(aki.authority_cert_issuer, None);
            let ski = extension(&cert, "2.5.29.14");
            assert!(!ski.critical);
            assert_eq!(
                SubjectKeyIdentifier::from_der(ski.extn_value.as_bytes())
                    .unwrap()
                    .0
                    .as_bytes(),
                Sha1::digest(key.public_key_bits()).as_slice()
            );

            // OpenSSL: the chain verifies for the OCSP helper purpose, and it reads the profile.
            let pem = super::super::x509::certificates_pem([der.as_slice()]).unwrap();
            std::fs::write(&path, pem).unwrap();
            let chain = dir.path().join("ca/chain.pem");
            let (chain, file) = (chain.to_str().unwrap(), path.to_str().unwrap());
            let out = openssl(
                dir.path(),
                &["verify", "-CAfile", chain, "-purpose", "ocsphelper", file],
            );
            assert!(out.contains(": OK"), "{algorithm}: {out}");
            let text = openssl(dir.path(), &["x509", "-noout", "-text", "-in", file]);
            for expected in [
                "X509v3 Basic Constraints: critical",
                "CA:FALSE",
                "X509v3 Key Usage: critical",
                "Digital Signature",
                "OCSP Signing",
                "OCSP No Check",
            ] {
                assert!(text.contains(expected), "{algorithm}: {expected}: {text}");
            }
        }
    }

    #[test]
    fn unusable_arguments_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = init(dir.path(), KeyAlgorithm::EcP256);
        let key = keys::generate(KeyAlgorithm::EcP256).unwrap();
        let spki = key.spki_der();
        let (start, end) = (now(), now() + 86_400);
        let refused = |spki: &[u8], serial: &[u8], not_before, not_after| match ca
            .issue_ocsp_responder(spki, serial, not_before, not_after)
        {
            Err(CaError::InvalidResponderParameter { parameter, .. }) => parameter,
            other => panic!("expected InvalidResponderParameter, got {other:?}"),
        };
        assert_eq!(refused(b"not a key", &[1], start, end), "spki_der");
        assert_eq!(
            refused(&spki[..spki.len() - 1], &[1], start, end),
            "spki_der"
        );
        assert_eq!(refused(spki, &[], start, end), "serial");
        assert_eq!(refused(spki, &[0, 0], start, end), "serial");
        assert_eq!(refused(spki, &[0x80; 20], start, end), "serial");
        assert_eq!(refused(spki, &[1; 21], start, end), "serial");
        assert!(ca
            .issue_ocsp_responder(spki, &[0x7f; 20], start, end)
            .is_ok());
        assert!(ca
            .issue_ocsp_responder(spki, &[0, 0x7f], start, end)
            .is_ok());
        assert_eq!(refused(spki, &[1], end, start), "not_after");
        assert_eq!(refused(spki, &[1], start, start), "not_after");
        let ca_end = ca.not_after_unix();
        assert_eq!(refused(spki, &[1], start, ca_end + 1), "not_after");
        assert!(ca.issue_ocsp_responder(spki, &[1], start, ca_end).is_ok());
        assert_eq!(refused(spki, &[1], i64::MIN, start), "not_before/not_after");
    }

    #[test]
    fn times_switch_to_generalized_time_in_2050() {
        // 2049-12-31T23:59:59Z and 2050-01-01T00:00:00Z.
        assert_eq!(
            encode_time(2_524_607_999).unwrap(),
            tlv(asn1::UTC_TIME, b"491231235959Z")
        );
        assert_eq!(
            encode_time(2_524_608_000).unwrap(),
            tlv(asn1::GENERALIZED_TIME, b"20500101000000Z")
        );
        assert_eq!(
            encode_time(-631_152_001).unwrap(),
            tlv(asn1::GENERALIZED_TIME, b"19491231235959Z")
        );
        assert_eq!(
            encode_time(0).unwrap(),
            tlv(asn1::UTC_TIME, b"700101000000Z")
        );
    }

    #[test]
    fn the_common_name_fits_ub_common_name() {
        assert_eq!(
            responder_common_name("Example Issuing CA"),
            "Example Issuing CA OCSP Responder"
        );
        let long = "é".repeat(100);
        let name = responder_common_name(&long);
        assert_eq!(name.chars().count(), COMMON_NAME_MAX_CHARS);
        assert!(name.ends_with(COMMON_NAME_SUFFIX));
    }

    #[test]
    fn only_a_single_simple_organization_is_copied() {
        let atv = |oid: &str, tag: u8, value: &str| {
            tlv_parts(
                asn1::SEQUENCE,
                &[&asn1::oid(oid).unwrap(), &tlv(tag, value.as_bytes())],
            )
        };
        let name = |rdns: &[Vec<u8>]| {
            let sets: Vec<u8> = rdns.iter().flat_map(|r| tlv(asn1::SET, r)).collect();
            tlv(asn1::SEQUENCE, &sets)
        };
        let o = atv("2.5.4.10", asn1::PRINTABLE_STRING, "Example");
        let o2 = atv("2.5.4.10", asn1::UTF8_STRING, "Other");
        let cn = atv("2.5.4.3", asn1::UTF8_STRING, "CA");
        let c = atv("2.5.4.6", asn1::PRINTABLE_STRING, "NL");
        assert_eq!(
            simple_organization(&name(&[c.clone(), o.clone(), cn.clone()])),
            Some(o.clone())
        );
        assert_eq!(simple_organization(&name(std::slice::from_ref(&cn))), None);
        assert_eq!(
            simple_organization(&name(&[o.clone(), o2.clone(), cn.clone()])),
            None
        );
        assert_eq!(
            simple_organization(&name(&[[o.clone(), cn.clone()].concat()])),
            None
        );
        let teletex = atv("2.5.4.10", 0x14, "Example");
        assert_eq!(simple_organization(&name(&[teletex, cn])), None);
        assert_eq!(simple_organization(b"junk"), None);
    }
}
