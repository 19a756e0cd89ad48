use super::*;
use crate::ca::CaInitOptions;
use crate::profile::{CompileOptions, SHIPPED};
use der::{Decode, Encode};
use std::collections::BTreeMap;
use x509_cert::Certificate;

struct Fixture {
    _dir: tempfile::TempDir,
    ca: IssuingCa,
}

fn fixture(algorithm: crate::keys::KeyAlgorithm) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let options = CaInitOptions {
        algorithm,
        ..CaInitOptions::default()
    };
    let ca = IssuingCa::init(dir.path(), &options).unwrap();
    Fixture { _dir: dir, ca }
}

fn profile(name: &str) -> Profile {
    Profile::load(
        name,
        &CompileOptions {
            base_url: "http://certmill.test".into(),
            ..CompileOptions::default()
        },
    )
    .unwrap()
}

fn row(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Issues one certificate through the template and returns its DER.
fn issue(
    template: &Template,
    ca: &IssuingCa,
    request: &BTreeMap<String, String>,
    batch: &BTreeMap<String, String>,
) -> (Vec<u8>, crate::keys::GeneratedKey) {
    let empty = BTreeMap::new();
    let inputs = Inputs {
        request: Some(request),
        batch,
        profile: &empty,
        csr: None,
    };
    let prepared = template.prepare(&inputs).unwrap();
    let key = crate::keys::generate(template.profile().key_algorithm()).unwrap();
    let serial = [0x5a; 16];
    let tbs = template.tbs_certificate(&prepared, &serial, key.spki_der(), key.public_key_bits());
    let signature = ca.sign(template.signature_algorithm(), &tbs).unwrap();
    (template.certificate(&tbs, &signature), key)
}

fn extension<'a>(cert: &'a Certificate, oid: &str) -> Option<&'a x509_cert::ext::Extension> {
    let oid = der::asn1::ObjectIdentifier::new(oid).unwrap();
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
}

#[test]
fn ecc_device_certificate_matches_the_profile() {
    let f = fixture(crate::keys::KeyAlgorithm::EcP256);
    let now = time::macros::datetime!(2026-11-23 10:00:00 UTC);
    let template = Template::new(&profile("ecc-device"), &f.ca, now).unwrap();
    let batch = row(&[("deviceClass", "Surface Vehicle"), ("years", "2")]);
    let (der, key) = issue(
        &template,
        &f.ca,
        &row(&[("macAddress", "00:1A:2B:3C:4D:5E")]),
        &batch,
    );
    let cert = Certificate::from_der(&der).unwrap();
    let tbs = &cert.tbs_certificate;

    assert_eq!(tbs.version, x509_cert::Version::V3);
    assert_eq!(tbs.serial_number.as_bytes(), &[0x5a; 16]);
    assert_eq!(tbs.issuer.to_der().unwrap(), f.ca.subject_der());
    // RFC 4514 prints the last RDN first: the DER order is C, ST, L, O, CN as in the profile.
    assert_eq!(
        tbs.subject.to_string(),
        "CN=00:1A:2B:3C:4D:5E,O=COMODO CA Limited,L=Salford,ST=Greater Manchester,C=GB"
    );
    assert_eq!(
        tbs.subject_public_key_info.to_der().unwrap(),
        key.spki_der()
    );
    assert_eq!(
        tbs.validity.not_before.to_unix_duration().as_secs() as i64,
        now.unix_timestamp()
    );
    let two_years = time::macros::datetime!(2028-11-23 09:59:59 UTC);
    assert_eq!(
        tbs.validity.not_after.to_unix_duration().as_secs() as i64,
        two_years.unix_timestamp()
    );
    assert_eq!(
        cert.signature_algorithm.to_der().unwrap(),
        crate::keys::SignatureAlgorithm::EcdsaWithSha256.algorithm_identifier_der()
    );

    // KeyUsage: critical, digitalSignature + keyAgreement.
    let ku = extension(&cert, "2.5.29.15").unwrap();
    assert!(ku.critical);
    let bits = x509_cert::ext::pkix::KeyUsage::from_der(ku.extn_value.as_bytes()).unwrap();
    assert!(bits.digital_signature() && bits.key_agreement());
    assert!(!bits.key_encipherment() && !bits.non_repudiation() && !bits.key_cert_sign());
    // EKU clientAuth, not critical.
    let eku = extension(&cert, "2.5.29.37").unwrap();
    assert!(!eku.critical);
    let purposes =
        x509_cert::ext::pkix::ExtendedKeyUsage::from_der(eku.extn_value.as_bytes()).unwrap();
    assert_eq!(
        purposes.0,
        [der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2")]
    );
    // AKI = the CA's SKI.
    let aki = extension(&cert, "2.5.29.35").unwrap();
    let aki =
        x509_cert::ext::pkix::AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes()).unwrap();
    assert_eq!(
        aki.key_identifier.unwrap().as_bytes(),
        f.ca.subject_key_identifier()
    );
    // No SKI: the seed's profile has none.
    assert!(extension(&cert, "2.5.29.14").is_none());
    // AIA OCSP at the base URL.
    let aia = extension(&cert, "1.3.6.1.5.5.7.1.1").unwrap();
    let aia = x509_cert::ext::pkix::AuthorityInfoAccessSyntax::from_der(aia.extn_value.as_bytes())
        .unwrap();
    assert_eq!(aia.0.len(), 1);
    assert_eq!(
        aia.0[0].access_method,
        der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1")
    );
    assert!(
        matches!(&aia.0[0].access_location, x509_cert::ext::pkix::name::GeneralName::UniformResourceIdentifier(u) if u.as_str() == "http://certmill.test/ocsp")
    );
    // CRL DP.
    let crl = extension(&cert, "2.5.29.31").unwrap();
    let crl =
        x509_cert::ext::pkix::CrlDistributionPoints::from_der(crl.extn_value.as_bytes()).unwrap();
    let Some(x509_cert::ext::pkix::name::DistributionPointName::FullName(names)) =
        &crl.0[0].distribution_point
    else {
        panic!()
    };
    // `{issuerKeyId}` became the signing CA's key identifier: the signer's own CRL.
    let own_crl = format!(
        "http://certmill.test/crl/{}.crl",
        crate::batch::hex(f.ca.subject_key_identifier())
    );
    assert!(
        matches!(&names[0], x509_cert::ext::pkix::name::GeneralName::UniformResourceIdentifier(u) if u.as_str() == own_crl)
    );
    // SAN: otherName AeroMACS device class = UTF8String "Surface Vehicle", byte for byte.
    let san = extension(&cert, "2.5.29.17").unwrap();
    assert!(!san.critical);
    let oid = crate::asn1::oid_big(&format!("{}.1.1", crate::profile::CERTMILL_ARC)).unwrap();
    let mut expected = vec![0x30];
    let inner = [
        &[0xa0u8, (oid.len() + 2 + 2 + 15) as u8][..],
        &oid,
        &[0xa0, 17, 0x0c, 15],
        b"Surface Vehicle",
    ]
    .concat();
    expected.push(inner.len() as u8);
    expected.extend(inner);
    assert_eq!(san.extn_value.as_bytes(), expected);
    assert_eq!(tbs.extensions.as_ref().unwrap().len(), 6);

    // The signature verifies under the CA key.
    let ca_cert = Certificate::from_der(f.ca.certificate_der()).unwrap();
    let ca_key = ca_cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let verifier = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        ca_key,
    );
    verifier
        .verify(&tbs.to_der().unwrap(), cert.signature.raw_bytes())
        .unwrap();
}

#[test]
fn server_profile_has_ski_dns_and_ip_names() {
    let f = fixture(crate::keys::KeyAlgorithm::EcP256);
    let template = Template::new(
        &profile("ecc-server"),
        &f.ca,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let request = row(&[
        ("dnsName", "device-1.example.com"),
        ("ipAddress", "2001:db8::1"),
    ]);
    let (der, key) = issue(&template, &f.ca, &request, &BTreeMap::new());
    let cert = Certificate::from_der(&der).unwrap();
    let ski = extension(&cert, "2.5.29.14").unwrap();
    let ski =
        x509_cert::ext::pkix::SubjectKeyIdentifier::from_der(ski.extn_value.as_bytes()).unwrap();
    assert_eq!(
        ski.0.as_bytes(),
        Sha1::digest(key.public_key_bits()).as_slice()
    );
    let san = extension(&cert, "2.5.29.17").unwrap();
    let san = x509_cert::ext::pkix::SubjectAltName::from_der(san.extn_value.as_bytes()).unwrap();
    assert!(
        matches!(&san.0[0], x509_cert::ext::pkix::name::GeneralName::DnsName(n) if n.as_str() == "device-1.example.com")
    );
    assert!(
        matches!(&san.0[1], x509_cert::ext::pkix::name::GeneralName::IpAddress(ip) if ip.as_bytes() == "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets())
    );
}

#[test]
fn values_are_checked_with_the_field_named() {
    let f = fixture(crate::keys::KeyAlgorithm::EcP256);
    let template = Template::new(
        &profile("ecc-server"),
        &f.ca,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let empty = BTreeMap::new();
    let bad_ip = row(&[("dnsName", "a.example.com"), ("ipAddress", "300.1.1.1")]);
    let err = template
        .prepare(&Inputs {
            request: Some(&bad_ip),
            batch: &empty,
            profile: &empty,
            csr: None,
        })
        .unwrap_err();
    assert!(
        matches!(&err, ValueError::Unencodable { field, .. } if field == "iPAddress"),
        "{err}"
    );
    let long_org = row(&[("dnsName", "a.example.com")]);
    let batch = row(&[("organizationName", &"x".repeat(65))]);
    let err = template
        .prepare(&Inputs {
            request: Some(&long_org),
            batch: &batch,
            profile: &empty,
            csr: None,
        })
        .unwrap_err();
    assert!(err.to_string().contains("64"), "{err}");
}

#[test]
fn validity_may_not_outlive_the_issuer() {
    let f = fixture(crate::keys::KeyAlgorithm::EcP256);
    let ten_years_before_expiry =
        time::OffsetDateTime::from_unix_timestamp(f.ca.not_after_unix() - 86_400 * 365 * 2)
            .unwrap();
    let template = Template::new(&profile("ecc-device"), &f.ca, ten_years_before_expiry).unwrap();
    let empty = BTreeMap::new();
    let request = row(&[
        ("macAddress", "00:1A:2B:3C:4D:5E"),
        ("deviceClass", "Aircraft"),
        ("years", "3"),
    ]);
    let err = template
        .prepare(&Inputs {
            request: Some(&request),
            batch: &empty,
            profile: &empty,
            csr: None,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("after the issuing CA expires"),
        "{err}"
    );
}

#[test]
fn signature_algorithm_must_fit_the_issuer_key() {
    let f = fixture(crate::keys::KeyAlgorithm::EcP256);
    match Template::new(
        &profile("rsa-device"),
        &f.ca,
        time::OffsetDateTime::now_utc(),
    ) {
        Err(TemplateError::AlgorithmMismatch { signature, key }) => {
            assert_eq!(signature, "sha256WithRSAEncryption");
            assert_eq!(key, "EC:P-256");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("an RSA profile must not bind to an EC CA"),
    }
}

#[test]
fn times_switch_to_generalized_time_in_2050() {
    assert_eq!(
        encode_time(time::macros::datetime!(2049-12-31 23:59:59 UTC))[0],
        asn1::UTC_TIME
    );
    assert_eq!(
        encode_time(time::macros::datetime!(2050-01-01 00:00:00 UTC)),
        tlv(asn1::GENERALIZED_TIME, b"20500101000000Z")
    );
    assert_eq!(
        add_years(time::macros::datetime!(2028-02-29 12:00:00 UTC), 1),
        time::macros::datetime!(2029-02-28 11:59:59 UTC)
    );
}

#[test]
fn key_usage_bits_match_der_crate() {
    for mask in [1u16, 0b10001, 0b1_0000_0001, 0b100, 0x1ff] {
        let ours = key_usage_bit_string(mask);
        // Decoding and re-encoding with x509-cert gives the same bytes: ours is minimal DER.
        let decoded = x509_cert::ext::pkix::KeyUsage::from_der(&ours).unwrap();
        assert_eq!(decoded.0.bits(), mask, "mask {mask:#b}");
        assert_eq!(decoded.to_der().unwrap(), ours, "mask {mask:#b}");
    }
}

#[test]
fn shipped_profiles_issue_with_matching_cas() {
    for (name, _) in SHIPPED {
        let p = profile(name);
        let f = fixture(p.key_algorithm());
        let template = Template::new(&p, &f.ca, time::OffsetDateTime::now_utc()).unwrap();
        let request = row(&[
            ("macAddress", "00:1A:2B:3C:4D:5E"),
            ("deviceClass", "Aircraft"),
            ("dnsName", "d.example.com"),
        ]);
        let (der, _) = issue(&template, &f.ca, &request, &BTreeMap::new());
        Certificate::from_der(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn ecc_device_json() -> serde_json::Value {
    serde_json::from_str(SHIPPED[0].1).unwrap()
}

fn compile(value: &serde_json::Value) -> Profile {
    Profile::from_json(&value.to_string(), "test", &CompileOptions::default()).unwrap()
}

#[test]
fn a_fixed_validity_beyond_the_issuer_is_refused_when_the_template_is_built() {
    let f = fixture(crate::keys::KeyAlgorithm::EcP256);
    let issuer_end = f.ca.not_after_unix();
    let two_years_before_expiry =
        time::OffsetDateTime::from_unix_timestamp(issuer_end - 86_400 * 365 * 2).unwrap();
    let mut value = ecc_device_json();
    value["Validity"].as_object_mut().unwrap().remove("period");
    value["Validity"]["default"]["years"] = serde_json::json!(3);
    let fixed = compile(&value);
    match Template::new(&fixed, &f.ca, two_years_before_expiry) {
        Err(err @ TemplateError::ValidityBeyondIssuer { .. }) => {
            let message = err.to_string();
            let TemplateError::ValidityBeyondIssuer {
                path,
                years,
                fixed,
                issuer_not_after,
                ..
            } = err
            else {
                unreachable!()
            };
            assert_eq!(path, "/Validity");
            assert_eq!(years, 3);
            assert!(fixed);
            let expected_end = time::OffsetDateTime::from_unix_timestamp(issuer_end)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            assert_eq!(issuer_not_after, expected_end);
            assert!(
                message.starts_with("/Validity: 3 year(s) from "),
                "{message}"
            );
            assert!(
                message.contains("the profile fixes the validity"),
                "{message}"
            );
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a fixed 3-year validity must not bind to a CA with 2 years left"),
    }
    // One year fits.
    value["Validity"]["default"]["years"] = serde_json::json!(1);
    assert!(Template::new(&compile(&value), &f.ca, two_years_before_expiry).is_ok());
}

#[test]
fn a_validity_whose_every_choice_outlives_the_issuer_is_refused() {
    let f = fixture(crate::keys::KeyAlgorithm::EcP256);
    let half_a_year_before_expiry =
        time::OffsetDateTime::from_unix_timestamp(f.ca.not_after_unix() - 86_400 * 182).unwrap();
    // ecc-device lets each device choose 1, 2 or 3 years: even 1 is too long.
    match Template::new(&profile("ecc-device"), &f.ca, half_a_year_before_expiry) {
        Err(TemplateError::ValidityBeyondIssuer {
            path, years, fixed, ..
        }) => {
            assert_eq!(path, "/Validity/period");
            assert_eq!((years, fixed), (1, false));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("no device could be issued"),
    }
}

/// ecc-device with a subject that may come out empty, and a critical SAN of one optional DNS
/// name.
fn optional_subject_profile() -> Profile {
    let mut value = ecc_device_json();
    value["Subject"]["attributes"] = serde_json::json!([
        {"type": "commonName", "source": ["Request.name"], "optional": true}
    ]);
    value["Extensions"]["SubjectAlternativeName"] = serde_json::json!({
        "critical": true,
        "generalNames": [{"type": "dNSName", "source": ["Request.dnsName"], "optional": true}]
    });
    compile(&value)
}

#[test]
fn a_device_with_an_empty_subject_needs_a_critical_san() {
    let f = fixture(crate::keys::KeyAlgorithm::EcP256);
    let template = Template::new(
        &optional_subject_profile(),
        &f.ca,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let empty = BTreeMap::new();
    let nothing = row(&[]);
    let err = template
        .prepare(&Inputs {
            request: Some(&nothing),
            batch: &empty,
            profile: &empty,
            csr: None,
        })
        .unwrap_err();
    assert_eq!(err, ValueError::EmptySubject { san_present: false });
    assert!(err.to_string().contains("RFC 5280 4.1.2.6"), "{err}");

    // With a SAN value the empty subject is valid: the certificate has an empty subject
    // and a critical SAN.
    let (der, _) = issue(
        &template,
        &f.ca,
        &row(&[("dnsName", "device-7.example.com")]),
        &empty,
    );
    let cert = Certificate::from_der(&der).unwrap();
    assert!(cert.tbs_certificate.subject.0.is_empty());
    let san = extension(&cert, OID_SUBJECT_ALT_NAME).unwrap();
    assert!(san.critical);

    // A subject value alone is fine too.
    let (der, _) = issue(&template, &f.ca, &row(&[("name", "device-7")]), &empty);
    let cert = Certificate::from_der(&der).unwrap();
    assert_eq!(cert.tbs_certificate.subject.to_string(), "CN=device-7");
}

#[test]
fn an_empty_subject_with_a_non_critical_san_is_refused_per_device() {
    // The compiler refuses this profile (all-optional subject, non-critical SAN); the template
    // checks the filled-in certificate itself rather than trusting that, so flip the SAN's
    // criticality on a compiled profile to reach its guard.
    let mut profile = optional_subject_profile();
    if let Some((_, critical)) = profile.extensions.subject_alternative_name.as_mut() {
        *critical = false;
    }
    let f = fixture(crate::keys::KeyAlgorithm::EcP256);
    let template = Template::new(&profile, &f.ca, time::OffsetDateTime::now_utc()).unwrap();
    let empty = BTreeMap::new();
    let san_only = row(&[("dnsName", "device-7.example.com")]);
    let err = template
        .prepare(&Inputs {
            request: Some(&san_only),
            batch: &empty,
            profile: &empty,
            csr: None,
        })
        .unwrap_err();
    assert_eq!(err, ValueError::EmptySubject { san_present: true });
}
