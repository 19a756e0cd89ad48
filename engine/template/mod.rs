//! The DER certificate template: a [`Profile`] bound to an issuing CA and a batch clock.
//!
//! Everything that is the same for every device of a batch (version, signature algorithm,
//! issuer name, constant extensions) is encoded once in [`Template::new`]. Per device,
//! [`Template::prepare`] resolves and checks the varying values (subject, SAN, validity) and
//! [`Template::tbs_certificate`] frames them around the constant pieces: a few hundred bytes of
//! copying, no allocation per field beyond the output. The template does not sign and never
//! sees a private key; `ca` signs the bytes it produces.

use crate::asn1::{self, push_header, push_tlv, tlv, tlv_len, tlv_parts};
use crate::ca::IssuingCa;

/// Placeholder in CRL distribution point URLs for the signing CA's key identifier (lower-case
/// hex of its subjectKeyIdentifier), which `GET /crl/<key id>.crl` serves.
pub const ISSUER_KEY_ID: &str = "{issuerKeyId}";
use crate::keys::SignatureAlgorithm;
use crate::profile::{
    AttributeType, CertBag, DirectoryString, GeneralNameKind, Inputs, Profile, ValueError,
};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;

/// Errors of binding a profile to an issuing CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The profile's signature algorithm cannot be made with the issuing CA's key.
    #[error(
        "profile signature algorithm {signature} cannot be made with the issuing CA's {key} key"
    )]
    AlgorithmMismatch {
        /// Profile signature algorithm.
        signature: &'static str,
        /// CA key algorithm.
        key: &'static str,
    },
    /// The issuing CA has expired or is not yet valid at the batch clock.
    #[error("the issuing CA is not valid at {at}: it expires at unix time {not_after}")]
    IssuerExpired {
        /// Batch clock.
        at: String,
        /// CA notAfter (unix seconds).
        not_after: i64,
    },
    /// Even the shortest validity the profile allows would end its certificates after the
    /// issuing CA's notAfter, so no device of the batch could be issued.
    #[error(
        "{path}: {years} year(s) from {not_before} end at {not_after}, after the issuing CA \
         expires at {issuer_not_after} ({})",
        validity_wording(.fixed)
    )]
    ValidityBeyondIssuer {
        /// JSON path of the profile's validity (`/Validity/...`).
        path: String,
        /// The shortest validity in years the profile allows.
        years: u32,
        /// Whether that is the profile's only validity (no request or batch can choose).
        fixed: bool,
        /// The batch clock (RFC 3339).
        not_before: String,
        /// Where the certificates would end (RFC 3339).
        not_after: String,
        /// The issuing CA's notAfter (RFC 3339).
        issuer_not_after: String,
    },
}

fn validity_wording(fixed: &bool) -> &'static str {
    if *fixed {
        "the profile fixes the validity: shorten it or use a longer-lived issuing CA"
    } else {
        "the shortest validity the profile allows: no device could be issued"
    }
}

/// Per-device values resolved, checked and encoded.
#[derive(Clone, Debug)]
pub struct PreparedDevice {
    /// The subject commonName, when the subject has one (file names, friendly names, the
    /// manifest).
    pub common_name: Option<String>,
    subject_der: Vec<u8>,
    san_extension: Option<Vec<u8>>,
    not_after: OffsetDateTime,
    /// Which certificates the PKCS#12 holds.
    pub cert_bag: CertBag,
}

impl PreparedDevice {
    /// notAfter of the certificate.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

/// A profile bound to an issuing CA and a clock, with the constant DER pre-encoded.
pub struct Template {
    profile: Profile,
    signature_algorithm: SignatureAlgorithm,
    /// `[0] { INTEGER 2 }`: version v3.
    issuer_name: Vec<u8>,
    not_before: OffsetDateTime,
    not_before_der: Vec<u8>,
    issuer_not_after: i64,
    /// KU, EKU, BC: extensions before the SKI.
    extensions_head: Vec<u8>,
    with_subject_key_identifier: bool,
    /// AKI, AIA, CRL DP: extensions after the SKI.
    extensions_tail: Vec<u8>,
    /// OID TLV of each subject attribute, in profile order.
    attribute_oids: Vec<Vec<u8>>,
}

const VERSION_V3: [u8; 5] = [0xa0, 0x03, 0x02, 0x01, 0x02];
const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_EXTENDED_KEY_USAGE: &str = "2.5.29.37";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_SUBJECT_KEY_IDENTIFIER: &str = "2.5.29.14";
const OID_AUTHORITY_KEY_IDENTIFIER: &str = "2.5.29.35";
const OID_AUTHORITY_INFO_ACCESS: &str = "1.3.6.1.5.5.7.1.1";
const OID_CRL_DISTRIBUTION_POINTS: &str = "2.5.29.31";
const OID_SUBJECT_ALT_NAME: &str = "2.5.29.17";
const OID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
const OID_AD_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";

/// `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`.
fn extension(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    // The OIDs above are constants of this file, tested to encode.
    let oid = asn1::oid(oid).unwrap_or_default();
    let octets = tlv(asn1::OCTET_STRING, value);
    if critical {
        tlv_parts(asn1::SEQUENCE, &[&oid, &[asn1::BOOLEAN, 1, 0xff], &octets])
    } else {
        tlv_parts(asn1::SEQUENCE, &[&oid, &octets])
    }
}

fn uri(url: &str) -> Vec<u8> {
    tlv(asn1::context_primitive(6), url.as_bytes())
}

/// Encodes a time as RFC 5280 4.1.2.5 requires: UTCTime through 2049, GeneralizedTime after.
fn encode_time(t: OffsetDateTime) -> Vec<u8> {
    let (y, mo, d, h, mi, s) = (
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    );
    if (1950..2050).contains(&y) {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        tlv(asn1::UTC_TIME, text.as_bytes())
    } else {
        let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        tlv(asn1::GENERALIZED_TIME, text.as_bytes())
    }
}

/// notBefore + `years` calendar years − 1 second (so "1 year" is exactly one year, counted
/// inclusively as RFC 5280 4.1.2.5 defines the period). 29 February maps to 28 February.
pub fn add_years(t: OffsetDateTime, years: u32) -> OffsetDateTime {
    let year = t.year() + years as i32;
    let date = t
        .date()
        .replace_year(year)
        .or_else(|_| t.date().replace_day(28).and_then(|d| d.replace_year(year)))
        .unwrap_or(t.date());
    t.replace_date(date) - time::Duration::seconds(1)
}

/// Checks a DN attribute value against its type's encoding and bounds.
pub fn check_attribute_value(attribute: &AttributeType, value: &str) -> Result<(), String> {
    let chars = value.chars().count();
    if chars == 0 {
        return Err("is empty".into());
    }
    if let Some(exact) = attribute.exact_len {
        if chars != exact {
            return Err(format!(
                "must be exactly {exact} characters for {}",
                attribute.name
            ));
        }
    }
    if chars > attribute.max_len {
        return Err(format!(
            "is longer than {} characters, the upper bound for {} (RFC 5280 Appendix A.1)",
            attribute.max_len, attribute.name
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    match attribute.encoding {
        DirectoryString::Printable if !crate::profile::is_printable_string(value) => Err(format!(
            "has characters outside PrintableString, which {} requires",
            attribute.name
        )),
        DirectoryString::Ia5 if !value.is_ascii() => Err(format!(
            "has non-ASCII characters, but {} is an IA5String",
            attribute.name
        )),
        _ => Ok(()),
    }
}

fn encode_attribute_value(attribute: &AttributeType, value: &str) -> Vec<u8> {
    let tag = match attribute.encoding {
        DirectoryString::Ia5 => asn1::IA5_STRING,
        DirectoryString::Printable => asn1::PRINTABLE_STRING,
        DirectoryString::Utf8 => asn1::UTF8_STRING,
    };
    tlv(tag, value.as_bytes())
}

/// Encodes one SAN general name, checking the value's syntax.
fn encode_general_name(kind: &GeneralNameKind, value: &str) -> Result<Vec<u8>, String> {
    match kind {
        GeneralNameKind::DnsName => {
            // RFC 5280 4.2.1.6 / RFC 1034 preferred name syntax (a leading "*." wildcard allowed).
            let host = value.strip_prefix("*.").unwrap_or(value);
            let ok = !host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if ok {
                Ok(tlv(asn1::context_primitive(2), value.as_bytes()))
            } else {
                Err(
                    "is not a DNS name (letters, digits and hyphens in dot-separated labels)"
                        .into(),
                )
            }
        }
        GeneralNameKind::IpAddress => match value.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) => Ok(tlv(asn1::context_primitive(7), &v4.octets())),
            Ok(std::net::IpAddr::V6(v6)) => Ok(tlv(asn1::context_primitive(7), &v6.octets())),
            Err(_) => Err("is not an IPv4 or IPv6 address".into()),
        },
        GeneralNameKind::Rfc822Name => {
            let ok = value.is_ascii()
                && value
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
                && !value
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
            if ok {
                Ok(tlv(asn1::context_primitive(1), value.as_bytes()))
            } else {
                Err("is not an email address (local@domain in ASCII)".into())
            }
        }
        GeneralNameKind::Uri => {
            let ok = value.is_ascii()
                && value.split_once(':').is_some_and(|(scheme, rest)| {
                    !scheme.is_empty()
                        && scheme
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                        && !rest.is_empty()
                })
                && !value
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
            if ok {
                Ok(tlv(asn1::context_primitive(6), value.as_bytes()))
            } else {
                Err("is not an absolute URI (scheme:rest in ASCII)".into())
            }
        }
        GeneralNameKind::OtherName { oid_der, .. } => {
            if value.chars().any(char::is_control) {
                return Err("contains control characters".into());
            }
            // otherName ::= [0] { type-id OID, value [0] EXPLICIT UTF8String }.
            let utf8 = tlv(asn1::UTF8_STRING, value.as_bytes());
            let explicit = tlv(asn1::context_constructed(0), &utf8);
            Ok(tlv_parts(
                asn1::context_constructed(0),
                &[oid_der, &explicit],
            ))
        }
    }
}

impl Template {
    /// Binds `profile` to `issuer`, with `now` as every certificate's notBefore.
    pub fn new(
        profile: &Profile,
        issuer: &IssuingCa,
        now: OffsetDateTime,
    ) -> Result<Template, TemplateError> {
        let signature_algorithm = profile.signature_algorithm();
        if !signature_algorithm.fits(issuer.key_algorithm()) {
            return Err(TemplateError::AlgorithmMismatch {
                signature: signature_algorithm.name(),
                key: issuer.key_algorithm().syntax(),
            });
        }
        let now = now.replace_nanosecond(0).unwrap_or(now);
        if now.unix_timestamp() >= issuer.not_after_unix() {
            return Err(TemplateError::IssuerExpired {
                at: now.to_string(),
                not_after: issuer.not_after_unix(),
            });
        }
        // RFC 5280 6.1.3 (a)(2): a certificate outliving its issuer fails path validation once
        // the issuer expires. Checked per device in `prepare`; refused here when no device could
        // pass, so a profile with a fixed validity is refused before any batch work, naming
        // its validity.
        let years = profile.shortest_years();
        let not_after = add_years(now, years);
        if not_after.unix_timestamp() > issuer.not_after_unix() {
            use crate::batch::rfc3339;
            return Err(TemplateError::ValidityBeyondIssuer {
                path: profile.validity_path().to_owned(),
                years,
                fixed: profile.fixed_years().is_some(),
                not_before: rfc3339(now.unix_timestamp()),
                not_after: rfc3339(not_after.unix_timestamp()),
                issuer_not_after: rfc3339(issuer.not_after_unix()),
            });
        }
        let e = &profile.extensions;
        let mut head = Vec::new();
        if let Some((bits, critical)) = e.key_usage {
            head.extend(extension(
                OID_KEY_USAGE,
                critical,
                &key_usage_bit_string(bits.0),
            ));
        }
        if let Some((oids, critical)) = &e.extended_key_usage {
            let mut purposes = Vec::new();
            for oid in oids {
                purposes.extend(asn1::oid_big(oid).unwrap_or_default());
            }
            head.extend(extension(
                OID_EXTENDED_KEY_USAGE,
                *critical,
                &tlv(asn1::SEQUENCE, &purposes),
            ));
        }
        if let Some(critical) = e.basic_constraints {
            // cA FALSE is the DEFAULT, so DER omits it: an empty SEQUENCE.
            head.extend(extension(
                OID_BASIC_CONSTRAINTS,
                critical,
                &[asn1::SEQUENCE, 0],
            ));
        }
        let mut tail = Vec::new();
        if let Some(critical) = e.authority_key_identifier {
            let key_id = tlv(asn1::context_primitive(0), issuer.subject_key_identifier());
            tail.extend(extension(
                OID_AUTHORITY_KEY_IDENTIFIER,
                critical,
                &tlv(asn1::SEQUENCE, &key_id),
            ));
        }
        if !e.ocsp_urls.is_empty() || !e.ca_issuers_urls.is_empty() {
            let mut descriptions = Vec::new();
            let ocsp = asn1::oid(OID_AD_OCSP).unwrap_or_default();
            let ca_issuers = asn1::oid(OID_AD_CA_ISSUERS).unwrap_or_default();
            for url in &e.ocsp_urls {
                descriptions.extend(tlv_parts(asn1::SEQUENCE, &[&ocsp, &uri(url)]));
            }
            for url in &e.ca_issuers_urls {
                descriptions.extend(tlv_parts(asn1::SEQUENCE, &[&ca_issuers, &uri(url)]));
            }
            tail.extend(extension(
                OID_AUTHORITY_INFO_ACCESS,
                false,
                &tlv(asn1::SEQUENCE, &descriptions),
            ));
        }
        if let Some(crl) = &e.crl {
            // One DistributionPoint { distributionPoint [0] { fullName [0] { URIs } } }.
            // `{issuerKeyId}` names the signer's own CRL, so a certificate keeps pointing at
            // the CRL of the key that signed it after its issuer rotates.
            let key_id = crate::batch::hex(issuer.subject_key_identifier());
            let names: Vec<u8> = crl
                .urls
                .iter()
                .flat_map(|u| uri(&u.replace(ISSUER_KEY_ID, &key_id)))
                .collect();
            let full_name = tlv(asn1::context_constructed(0), &names);
            let point_name = tlv(asn1::context_constructed(0), &full_name);
            let point = tlv(asn1::SEQUENCE, &point_name);
            tail.extend(extension(
                OID_CRL_DISTRIBUTION_POINTS,
                crl.critical,
                &tlv(asn1::SEQUENCE, &point),
            ));
        }
        let attribute_oids = profile
            .subject
            .iter()
            .map(|a| asn1::oid(a.attribute.oid).unwrap_or_default())
            .collect();
        Ok(Template {
            profile: profile.clone(),
            signature_algorithm,
            issuer_name: issuer.subject_der().to_vec(),
            not_before_der: encode_time(now),
            not_before: now,
            issuer_not_after: issuer.not_after_unix(),
            extensions_head: head,
            with_subject_key_identifier: e.subject_key_identifier.is_some(),
            extensions_tail: tail,
            attribute_oids,
        })
    }

    /// The bound profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The signature algorithm the CA must use.
    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.signature_algorithm
    }

    /// Every certificate's notBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// Resolves, checks and encodes one device's values.
    pub fn prepare(&self, inputs: &Inputs<'_>) -> Result<PreparedDevice, ValueError> {
        let profile = &self.profile;
        let mut rdns = Vec::with_capacity(256);
        let mut common_name = None;
        for (attribute, oid) in profile.subject.iter().zip(&self.attribute_oids) {
            let Some(value) = attribute.field.resolve(inputs)? else {
                continue;
            };
            check_attribute_value(attribute.attribute, &value).map_err(|reason| {
                ValueError::Unencodable {
                    field: attribute.field.label().to_owned(),
                    value: value.clone(),
                    reason,
                }
            })?;
            let encoded = encode_attribute_value(attribute.attribute, &value);
            // RelativeDistinguishedName ::= SET { AttributeTypeAndValue ::= SEQUENCE { type, value } }
            let atv_len = oid.len() + encoded.len();
            push_header(&mut rdns, asn1::SET, tlv_len(atv_len));
            push_header(&mut rdns, asn1::SEQUENCE, atv_len);
            rdns.extend_from_slice(oid);
            rdns.extend_from_slice(&encoded);
            if attribute.attribute.name == "commonName" {
                common_name = Some(value);
            }
        }
        let subject_der = tlv(asn1::SEQUENCE, &rdns);

        let san_extension = match &profile.extensions.subject_alternative_name {
            Some((names, critical)) => {
                let mut encoded = Vec::new();
                for name in names {
                    let Some(value) = name.field.resolve(inputs)? else {
                        continue;
                    };
                    let der = encode_general_name(&name.kind, &value).map_err(|reason| {
                        ValueError::Unencodable {
                            field: name.field.label().to_owned(),
                            value: value.clone(),
                            reason,
                        }
                    })?;
                    encoded.extend(der);
                }
                // RFC 5280 4.2.1.6: no empty SAN; leave it out when no name has a value.
                (!encoded.is_empty()).then(|| {
                    extension(
                        OID_SUBJECT_ALT_NAME,
                        *critical,
                        &tlv(asn1::SEQUENCE, &encoded),
                    )
                })
            }
            None => None,
        };

        // RFC 5280 4.1.2.6: an empty subject needs a critical subjectAltName. The compiler
        // refuses profiles that could produce one without a critical SAN; this catches the
        // device whose optional subject and SAN values are all missing.
        if rdns.is_empty() {
            let san_critical = profile
                .extensions
                .subject_alternative_name
                .as_ref()
                .is_some_and(|(_, critical)| *critical);
            if san_extension.is_none() || !san_critical {
                return Err(ValueError::EmptySubject {
                    san_present: san_extension.is_some(),
                });
            }
        }

        let years = profile.resolve_years(inputs)?;
        let not_after = add_years(self.not_before, years);
        if not_after.unix_timestamp() > self.issuer_not_after {
            return Err(ValueError::Unencodable {
                field: "validityPeriod".into(),
                value: years.to_string(),
                reason: format!(
                    "years would end the certificate at {not_after}, after the issuing CA expires (unix {})",
                    self.issuer_not_after
                ),
            });
        }
        let cert_bag = profile.resolve_cert_bag(inputs)?;
        Ok(PreparedDevice {
            common_name,
            subject_der,
            san_extension,
            not_after,
            cert_bag,
        })
    }

    /// The DER of the TBSCertificate for one device.
    ///
    /// `serial` is the big-endian positive magnitude; `spki` the SubjectPublicKeyInfo DER;
    /// `public_key_bits` the subjectPublicKey bits (for the SKI).
    pub fn tbs_certificate(
        &self,
        device: &PreparedDevice,
        serial: &[u8],
        spki: &[u8],
        public_key_bits: &[u8],
    ) -> Vec<u8> {
        let serial = asn1::unsigned_integer(serial);
        let not_after = encode_time(device.not_after);
        let validity_len = self.not_before_der.len() + not_after.len();

        let ski = self.with_subject_key_identifier.then(|| {
            // RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value.
            let digest = Sha1::digest(public_key_bits);
            extension(
                OID_SUBJECT_KEY_IDENTIFIER,
                false,
                &tlv(asn1::OCTET_STRING, &digest),
            )
        });
        let extensions_len = self.extensions_head.len()
            + ski.as_ref().map_or(0, Vec::len)
            + self.extensions_tail.len()
            + device.san_extension.as_ref().map_or(0, Vec::len);

        let algorithm = self.signature_algorithm.algorithm_identifier_der();
        let body_len = VERSION_V3.len()
            + serial.len()
            + algorithm.len()
            + self.issuer_name.len()
            + tlv_len(validity_len)
            + device.subject_der.len()
            + spki.len()
            + if extensions_len > 0 {
                tlv_len(tlv_len(extensions_len))
            } else {
                0
            };

        let mut out = Vec::with_capacity(tlv_len(body_len));
        push_header(&mut out, asn1::SEQUENCE, body_len);
        out.extend_from_slice(&VERSION_V3);
        out.extend_from_slice(&serial);
        out.extend_from_slice(algorithm);
        out.extend_from_slice(&self.issuer_name);
        push_header(&mut out, asn1::SEQUENCE, validity_len);
        out.extend_from_slice(&self.not_before_der);
        out.extend_from_slice(&not_after);
        out.extend_from_slice(&device.subject_der);
        out.extend_from_slice(spki);
        if extensions_len > 0 {
            push_header(
                &mut out,
                asn1::context_constructed(3),
                tlv_len(extensions_len),
            );
            push_header(&mut out, asn1::SEQUENCE, extensions_len);
            out.extend_from_slice(&self.extensions_head);
            if let Some(ski) = &ski {
                out.extend_from_slice(ski);
            }
            out.extend_from_slice(&self.extensions_tail);
            if let Some(san) = &device.san_extension {
                out.extend_from_slice(san);
            }
        }
        debug_assert_eq!(out.len(), tlv_len(body_len));
        out
    }

    /// Assembles `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`.
    pub fn certificate(&self, tbs: &[u8], signature: &[u8]) -> Vec<u8> {
        let algorithm = self.signature_algorithm.algorithm_identifier_der();
        let bits_len = signature.len() + 1;
        let body_len = tbs.len() + algorithm.len() + tlv_len(bits_len);
        let mut out = Vec::with_capacity(tlv_len(body_len));
        push_header(&mut out, asn1::SEQUENCE, body_len);
        out.extend_from_slice(tbs);
        out.extend_from_slice(algorithm);
        push_header(&mut out, asn1::BIT_STRING, bits_len);
        out.push(0);
        out.extend_from_slice(signature);
        out
    }
}

/// `KeyUsage ::= BIT STRING`, DER: named-bit list with trailing zero bits removed (X.690 11.2.2).
fn key_usage_bit_string(mask: u16) -> Vec<u8> {
    if mask == 0 {
        return vec![asn1::BIT_STRING, 1, 0];
    }
    let highest = 15 - mask.leading_zeros() as usize; // index of the last named bit set
    let byte_count = highest / 8 + 1;
    let mut bytes = [0u8; 2];
    for bit in 0..=highest {
        if mask & (1 << bit) != 0 {
            bytes[bit / 8] |= 0x80 >> (bit % 8);
        }
    }
    let unused = (7 - highest % 8) as u8;
    let mut content = vec![unused];
    content.extend_from_slice(&bytes[..byte_count]);
    let mut out = Vec::new();
    push_tlv(&mut out, asn1::BIT_STRING, &content);
    out
}

#[cfg(test)]
mod tests;
