//! CRLs checked by tools we did not write: openssl, Python `cryptography`, x509-cert.

use super::*;
use crate::ca::{CaInitOptions, IssuingCa};
use crate::keys::KeyAlgorithm;
use der::Decode;
use std::process::Command;

const T0: i64 = 1_790_000_000; // 2026-09-21

fn ca(algorithm: KeyAlgorithm) -> (tempfile::TempDir, IssuingCa) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = IssuingCa::init(
        dir.path(),
        &CaInitOptions {
            algorithm,
            ..CaInitOptions::default()
        },
    )
    .expect("CA");
    (dir, ca)
}

fn params(ca: &IssuingCa, number: u64) -> CrlParams<'_> {
    CrlParams {
        issuer_name_der: ca.subject_der(),
        authority_key_identifier: ca.subject_key_identifier(),
        crl_number: number,
        this_update: T0,
        next_update: T0 + 4 * 86_400,
        algorithm: ca.default_signature_algorithm(),
    }
}

fn entry(serial: &[u8], revoked_at: i64, reason: RevocationReason) -> RevokedEntry {
    RevokedEntry {
        serial: serial.to_vec(),
        revoked_at,
        reason,
    }
}

fn build(
    ca: &IssuingCa,
    dir: &Path,
    number: u64,
    entries: &[RevokedEntry],
) -> (PathBuf, CrlSummary) {
    let mut builder = CrlBuilder::new(params(ca, number), dir).expect("builder");
    for e in entries {
        builder.push(e).expect("push");
    }
    let out = dir.join(format!("test-{number}.crl"));
    let algorithm = ca.default_signature_algorithm();
    let summary = builder
        .finish(|digest| ca.sign_digest(algorithm, digest), &out)
        .expect("finish");
    (out, summary)
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn openssl_text(dir: &Path, crl: &Path) -> String {
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-noout",
        "-text",
        "-verify",
        "-CAfile",
        dir.join("ca/chain.pem").to_str().unwrap(),
    ]);
    assert!(ok && text.contains("verify OK"), "{text}");
    text
}

fn sample() -> Vec<RevokedEntry> {
    vec![
        entry(
            &[0x01, 0x02, 0x03],
            T0 - 100,
            RevocationReason::KeyCompromise,
        ),
        // Top bit set: needs a 0x00 sign octet.
        entry(&[0x8f; 16], T0 - 50, RevocationReason::Superseded),
        entry(&[0x00, 0x42], T0 - 10, RevocationReason::Unspecified),
        entry(&[0x7f; 20], T0, RevocationReason::CertificateHold),
    ]
}

#[test]
fn a_crl_verifies_with_openssl_and_lists_serials_and_reasons() {
    for algorithm in [KeyAlgorithm::EcP256, KeyAlgorithm::Rsa2048] {
        let (dir, ca) = ca(algorithm);
        let (crl, summary) = build(&ca, dir.path(), 7, &sample());
        assert_eq!(summary.entries, 4);
        let bytes = std::fs::read(&crl).unwrap();
        assert_eq!(summary.bytes, bytes.len() as u64);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        assert_eq!(summary.sha256.as_slice(), digest.as_ref());
        let text = openssl_text(dir.path(), &crl);
        assert!(text.contains("Version 2"), "{text}");
        assert!(
            text.contains("X509v3 CRL Number") && text.contains("7"),
            "{text}"
        );
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
        assert!(text.contains("Serial Number: 010203"), "{text}");
        assert!(
            text.contains(&format!("Serial Number: {}", "8F".repeat(16))),
            "{text}"
        );
        assert!(text.contains("Serial Number: 42"), "{text}");
        assert!(
            text.contains("Key Compromise") && text.contains("Superseded"),
            "{text}"
        );
        assert!(text.contains("Certificate Hold"), "{text}");
        // The unspecified entry has no reason extension: 3 reason codes for 4 entries.
        assert_eq!(text.matches("X509v3 CRL Reason Code").count(), 3, "{text}");
        assert!(text.contains("Sep 21"), "thisUpdate: {text}");

        // x509-cert decodes it and sees the same.
        let list = x509_cert::crl::CertificateList::from_der(&bytes).expect("x509-cert");
        let tbs = &list.tbs_cert_list;
        assert_eq!(tbs.version, x509_cert::Version::V2);
        let revoked = tbs.revoked_certificates.as_ref().expect("entries");
        assert_eq!(revoked.len(), 4);
        assert_eq!(revoked[2].serial_number.as_bytes(), &[0x42]);
        assert!(revoked[2].crl_entry_extensions.is_none());
        assert_eq!(tbs.crl_extensions.as_ref().map(Vec::len), Some(2));
        let issuer = der::Encode::to_der(&tbs.issuer).unwrap();
        assert_eq!(issuer, ca.subject_der());

        // Python `cryptography` verifies the signature and reads the reasons.
        let issuer_pem = dir.path().join("ca/issuing.crt");
        let script = r#"
import sys
from cryptography import x509
crl = x509.load_der_x509_crl(open(sys.argv[1], "rb").read())
issuer = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
assert crl.is_signature_valid(issuer.public_key())
assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
reasons = []
for r in crl:
    try:
        reasons.append(r.extensions.get_extension_for_class(x509.CRLReason).value.reason.name)
    except x509.ExtensionNotFound:
        reasons.append("-")
print(",".join(reasons))
"#;
        let out = Command::new("python3")
            .args([
                "-c",
                script,
                crl.to_str().unwrap(),
                issuer_pem.to_str().unwrap(),
            ])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "key_compromise,superseded,-,certificate_hold"
        );
    }
}

#[test]
fn an_empty_crl_has_no_entry_list_and_verifies() {
    let (dir, ca) = ca(KeyAlgorithm::EcP256);
    let (crl, summary) = build(&ca, dir.path(), 1, &[]);
    assert_eq!(summary.entries, 0);
    let text = openssl_text(dir.path(), &crl);
    assert!(text.contains("No Revoked Certificates"), "{text}");
    let bytes = std::fs::read(&crl).unwrap();
    let list = x509_cert::crl::CertificateList::from_der(&bytes).expect("x509-cert");
    assert!(list.tbs_cert_list.revoked_certificates.is_none());
}

#[test]
fn dates_from_2050_are_generalized_time() {
    let (dir, ca) = ca(KeyAlgorithm::EcP256);
    // 2051-01-01T00:00:00Z.
    let late = 2_556_144_000;
    let (crl, _) = build(
        &ca,
        dir.path(),
        3,
        &[entry(&[5], late, RevocationReason::KeyCompromise)],
    );
    let bytes = std::fs::read(&crl).unwrap();
    let needle = [&[asn1::GENERALIZED_TIME, 15][..], b"20510101000000Z"].concat();
    assert!(bytes.windows(needle.len()).any(|w| w == needle.as_slice()));
    let text = openssl_text(dir.path(), &crl);
    assert!(text.contains("Jan  1 00:00:00 2051 GMT"), "{text}");
}

#[test]
fn bad_inputs_are_refused_by_name_and_a_failed_signature_writes_nothing() {
    let (dir, ca) = ca(KeyAlgorithm::EcP256);
    let mut p = params(&ca, 1);
    p.next_update = p.this_update;
    assert!(matches!(
        CrlBuilder::new(p, dir.path()),
        Err(CrlError::NextUpdateNotAfterThisUpdate { .. })
    ));
    assert!(matches!(
        CrlBuilder::new(params(&ca, 0), dir.path()),
        Err(CrlError::CrlNumber { number: 0 })
    ));
    let mut builder = CrlBuilder::new(params(&ca, 1), dir.path()).expect("builder");
    for (serial, reason) in [
        (vec![0u8, 0], RevocationReason::KeyCompromise),
        (vec![1u8; 21], RevocationReason::KeyCompromise),
        (vec![1u8], RevocationReason::RemoveFromCrl),
    ] {
        assert!(matches!(
            builder.push(&entry(&serial, T0, reason)),
            Err(CrlError::InvalidEntry { .. })
        ));
    }
    builder
        .push(&entry(&[9], T0, RevocationReason::KeyCompromise))
        .expect("a good entry still goes in");
    let out = dir.path().join("never.crl");
    let result = builder.finish(
        |_| {
            Err(CaError::SigningFailed {
                algorithm: SignatureAlgorithm::EcdsaWithSha256,
            })
        },
        &out,
    );
    assert!(matches!(result, Err(CrlError::Signing(_))));
    assert!(!out.exists());
    // The wrong digest for the key is refused by the CA.
    let builder = CrlBuilder::new(
        CrlParams {
            algorithm: SignatureAlgorithm::EcdsaWithSha384,
            ..params(&ca, 1)
        },
        dir.path(),
    )
    .expect("builder");
    let result = builder.finish(
        |digest| ca.sign_digest(SignatureAlgorithm::EcdsaWithSha384, digest),
        &out,
    );
    assert!(matches!(result, Err(CrlError::Signing(_))), "{result:?}");
    assert!(!out.exists());
}

#[test]
fn a_large_crl_round_trips_through_openssl() {
    let (dir, ca) = ca(KeyAlgorithm::EcP256);
    let mut builder = CrlBuilder::new(params(&ca, 2), dir.path()).expect("builder");
    for i in 0u32..200_000 {
        let mut serial = vec![0x40; 16];
        serial[12..].copy_from_slice(&i.to_be_bytes());
        builder
            .push(&entry(
                &serial,
                T0 - i64::from(i),
                RevocationReason::ALL[(i % 7) as usize],
            ))
            .expect("push");
    }
    let out = dir.path().join("large.crl");
    let algorithm = ca.default_signature_algorithm();
    let summary = builder
        .finish(|digest| ca.sign_digest(algorithm, digest), &out)
        .expect("finish");
    assert_eq!(summary.entries, 200_000);
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        out.to_str().unwrap(),
        "-noout",
        "-verify",
        "-CAfile",
        dir.path().join("ca/chain.pem").to_str().unwrap(),
    ]);
    assert!(ok && text.contains("verify OK"), "{text}");
    let bytes = std::fs::read(&out).unwrap();
    let list = x509_cert::crl::CertificateList::from_der(&bytes).expect("x509-cert");
    assert_eq!(
        list.tbs_cert_list
            .revoked_certificates
            .as_ref()
            .map(Vec::len),
        Some(200_000)
    );
}
