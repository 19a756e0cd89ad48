//! Every shipped profile, issued through the CLI, checked by tools we did not write:
//! `openssl pkcs12` (OpenSSL 3, no -legacy), `openssl verify -x509_strict`, Java `keytool`,
//! Python `cryptography` and pkilint's `lint_pkix_cert`.

use crate::util::{mac_csv, pem_blocks, tool, unzip};
use std::collections::HashSet;
use std::path::Path;

const PASSWORD: &str = "factory-line-7";

/// pkilint findings a profile is allowed to have, each with its reason. Anything else at
/// WARNING or above fails the test.
fn allowed_findings(profile: &str) -> &'static [(&'static str, &'static str)] {
    const OTHER_NAME_ARC: (&str, &str) = (
        "itu.invalid_asn1_syntax",
        "pkilint's DER decoder (pyasn1-fasder) refuses OID arcs over 32 bits, and every \
         2.25.<UUID> OID (X.667) has a 128-bit arc: the seed's otherName:AeroMACS_DeviceClass \
         maps to certmill's 2.25 arc because no published OID exists (README). openssl and \
         Python cryptography decode it; `lint_with_small_other_name_oid` lints the same SAN \
         with an arc pkilint can read.",
    );
    match profile {
        // The seed's ECC device config has no SubjectKeyIdentifier (kept faithful).
        "ecc-device" => &[
            OTHER_NAME_ARC,
            (
                "pkix.certificate_skid_end_entity_missing",
                "the seed's ECC device config has no SubjectKeyIdentifier",
            ),
        ],
        "rsa-device" => &[OTHER_NAME_ARC],
        _ => &[],
    }
}

/// Lints a PEM certificate; returns the findings at WARNING and above as (code, line).
pub(crate) fn lint(cert_pem: &Path) -> Vec<(String, String)> {
    let out = tool(
        "python3",
        &[
            "-m",
            "pkilint.bin.lint_pkix_cert",
            "lint",
            "-s",
            "WARNING",
            "-f",
            "CSV",
            cert_pem.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut findings = Vec::new();
    for line in text.lines().skip(1) {
        // CSV: node_path,validator,severity,code,message
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() >= 4 {
            findings.push((fields[3].to_owned(), line.to_owned()));
        }
    }
    assert!(
        out.status.success() || !findings.is_empty(),
        "lint_pkix_cert failed without findings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    findings
}

struct Issued {
    fixture: crate::util::Fixture,
    files: Vec<std::path::PathBuf>,
    chain: std::path::PathBuf,
    root: std::path::PathBuf,
    manifest: String,
}

fn issue(profile: &str, csv: &str, params: &[&str], extra: &[&str]) -> Issued {
    let fixture = fixture!();
    let zip = fixture.issue(profile, csv, params, PASSWORD, extra);
    let out = fixture.path("out");
    let names = unzip(&zip, &out);
    assert_eq!(names.first().map(String::as_str), Some("chain.pem"));
    assert_eq!(names.last().map(String::as_str), Some("manifest.csv"));
    let files = names
        .iter()
        .filter(|n| n.ends_with(".p12"))
        .map(|n| out.join(n))
        .collect();
    let chain = out.join("chain.pem");
    let blocks = pem_blocks(&std::fs::read_to_string(&chain).unwrap());
    assert_eq!(blocks.len(), 2, "chain.pem = issuing CA, then root");
    let root = fixture.write("root.pem", &blocks[1]);
    let manifest = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    Issued {
        fixture,
        files,
        chain,
        root,
        manifest,
    }
}

/// Everything the outside tools must agree on, for one profile.
fn check_profile(
    profile: &str,
    csv: &str,
    params: &[&str],
    expected_devices: usize,
    cert_bag_certs: usize,
    linted: usize,
) {
    let issued = issue(profile, csv, params, &[]);
    assert_eq!(issued.files.len(), expected_devices);
    let password_file = issued.fixture.write("pw", &format!("{PASSWORD}\n"));

    // The manifest: one row per device, unique serials, SHA-256 of each file.
    let mut serials = HashSet::new();
    let mut rows = issued.manifest.lines();
    assert_eq!(
        rows.next(),
        Some("row,device_id,common_name,serial_hex,not_before,not_after,file_name,sha256,status,reason")
    );
    for line in rows {
        let fields: Vec<&str> = line.split(',').collect();
        assert!(
            serials.insert(fields[3].to_owned()),
            "duplicate serial {}",
            fields[3]
        );
        let file = issued.fixture.path("out").join(fields[6]);
        let digest = tool("sha256sum", &[file.to_str().unwrap()]);
        assert!(
            String::from_utf8_lossy(&digest.stdout).starts_with(fields[7]),
            "sha256 of {}",
            fields[6]
        );
    }
    assert_eq!(serials.len(), expected_devices);

    for (i, file) in issued.files.iter().enumerate() {
        let path = file.to_str().unwrap();
        // openssl pkcs12, OpenSSL 3 without -legacy: the key and the certificates come out.
        let out = tool(
            "openssl",
            &[
                "pkcs12",
                "-in",
                path,
                "-passin",
                &format!("pass:{PASSWORD}"),
                "-nodes",
            ],
        );
        assert!(
            out.status.success(),
            "openssl pkcs12 {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            pem.contains("-----BEGIN PRIVATE KEY-----"),
            "{path}: no key"
        );
        let certs = pem_blocks(&pem);
        assert_eq!(
            certs.len(),
            cert_bag_certs,
            "{path}: certificates in the bag"
        );
        let leaf = issued.fixture.write(&format!("leaf-{i}.pem"), &certs[0]);

        // openssl verify -x509_strict against the chain.
        let out = tool(
            "openssl",
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                issued.root.to_str().unwrap(),
                "-untrusted",
                issued.chain.to_str().unwrap(),
                leaf.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "openssl verify {path}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        if i < linted {
            // keytool sees one private key entry.
            let out = tool(
                "keytool",
                &[
                    "-list",
                    "-storetype",
                    "PKCS12",
                    "-keystore",
                    path,
                    "-storepass",
                    PASSWORD,
                ],
            );
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("PrivateKeyEntry"),
                "keytool {path}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );

            // pkilint: no ERROR or WARNING beyond the named ones.
            let allowed = allowed_findings(profile);
            for (code, line) in lint(&leaf) {
                assert!(
                    allowed.iter().any(|(c, _)| *c == code),
                    "{profile} {path}: pkilint {line}"
                );
            }
        }
    }

    // Python cryptography opens every file, the key matches the certificate.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/check_p12.py");
    let mut args = vec![script, password_file.to_str().unwrap()];
    args.extend(issued.files.iter().map(|f| f.to_str().unwrap()));
    let out = tool("python3", &args);
    assert!(
        out.status.success(),
        "python cryptography: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen = seen.as_array().unwrap();
    assert_eq!(seen.len(), expected_devices);
    for cert in seen {
        // Serials: 16 bytes from the CSPRNG, positive (top bit clear) and non-zero-led.
        assert_eq!(cert["serial_bytes"], 16, "{cert}");
        assert_eq!(
            cert["additional"].as_u64().unwrap() as usize,
            cert_bag_certs - 1
        );
        let subject = cert["subject"].as_array().unwrap();
        assert_eq!(
            subject[0][0], "2.5.4.6",
            "countryName first, in profile order"
        );
        assert_eq!(
            cert["friendly_name"],
            subject.last().unwrap()[1],
            "friendly name = CN"
        );
    }
}

#[test]
fn ecc_device_profile() {
    let csv = mac_csv(6, ",years,additionalInformation", ",2,Acme Airport");
    check_profile(
        "ecc-device",
        &csv,
        &["deviceClass=Ground Critical"],
        6,
        3,
        2,
    );
    // Subject, validity and extensions as the profile says, seen by Python.
    let issued = issue(
        "ecc-device",
        &mac_csv(1, "", ""),
        &["deviceClass=Aircraft", "years=3"],
        &[],
    );
    let pw = issued.fixture.write("pw", &format!("{PASSWORD}\n"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/check_p12.py");
    let out = tool(
        "python3",
        &[
            script,
            pw.to_str().unwrap(),
            issued.files[0].to_str().unwrap(),
        ],
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cert = &seen[0];
    let subject: Vec<String> = cert["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}={}", a[0].as_str().unwrap(), a[1].as_str().unwrap()))
        .collect();
    assert_eq!(
        subject,
        [
            "2.5.4.6=GB",
            "2.5.4.8=Greater Manchester",
            "2.5.4.7=Salford",
            "2.5.4.10=COMODO CA Limited",
            "2.5.4.3=00:1A:2B:00:00:00"
        ]
    );
    let years = (cert["not_after"].as_i64().unwrap() - cert["not_before"].as_i64().unwrap() + 1)
        as f64
        / (365.2425 * 86_400.0);
    assert!((years - 3.0).abs() < 0.01, "3 years, got {years}");
    let extensions: Vec<(String, bool)> = cert["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().to_owned(), e[1].as_bool().unwrap()))
        .collect();
    assert_eq!(
        extensions,
        [
            ("2.5.29.15".to_owned(), true),
            ("2.5.29.37".to_owned(), false),
            ("2.5.29.35".to_owned(), false),
            ("1.3.6.1.5.5.7.1.1".to_owned(), false),
            ("2.5.29.31".to_owned(), false),
            ("2.5.29.17".to_owned(), false),
        ]
    );
}

#[test]
fn ecc_server_profile() {
    let mut csv = String::from("dnsName,ipAddress\n");
    for i in 0..4 {
        csv.push_str(&format!("node-{i}.factory.example.com,10.0.0.{i}\n"));
    }
    check_profile("ecc-server", &csv, &[], 4, 3, 2);
}

#[test]
fn rsa_device_profile() {
    check_profile(
        "rsa-device",
        &mac_csv(3, "", ""),
        &["deviceClass=Video Sensor"],
        3,
        3,
        1,
    );
}

#[test]
fn rsa_server_profile() {
    check_profile(
        "rsa-server",
        "dnsName\nrsa-1.factory.example.com\nrsa-2.factory.example.com\n",
        &[],
        2,
        3,
        1,
    );
}

#[test]
fn cert_bag_leaf_only_and_legacy_pkcs12() {
    // A profile variant whose PKCS#12 holds the leaf only, in the legacy 3DES/SHA-1 format.
    let mut profile: serde_json::Value =
        serde_json::from_str(include_str!("../profiles/ecc-device.json")).unwrap();
    profile["PKCS12"]["CertBag"]["default"] = "leaf".into();
    let fixture = fixture!();
    let path = fixture.write("leaf-only.json", &profile.to_string());
    let zip = fixture.issue(
        path.to_str().unwrap(),
        &mac_csv(2, "", ""),
        &["deviceClass=Aircraft"],
        PASSWORD,
        &["--legacy-pkcs12"],
    );
    let names = unzip(&zip, &fixture.path("out"));
    let p12 = fixture.path("out").join(&names[1]);
    let info = tool(
        "openssl",
        &[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            &format!("pass:{PASSWORD}"),
            "-info",
            "-noout",
        ],
    );
    let text =
        String::from_utf8_lossy(&info.stderr).into_owned() + &String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{text}");
    assert!(text.contains("MAC: sha1"), "{text}");
    assert!(text.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{text}");
    let out = tool(
        "openssl",
        &[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            &format!("pass:{PASSWORD}"),
            "-nodes",
        ],
    );
    assert_eq!(
        pem_blocks(&String::from_utf8_lossy(&out.stdout)).len(),
        1,
        "leaf only"
    );
    let pw = fixture.write("pw", &format!("{PASSWORD}\n"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/check_p12.py");
    let out = tool(
        "python3",
        &[script, pw.to_str().unwrap(), p12.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keytool = tool(
        "keytool",
        &[
            "-list",
            "-storetype",
            "PKCS12",
            "-keystore",
            p12.to_str().unwrap(),
            "-storepass",
            PASSWORD,
        ],
    );
    assert!(String::from_utf8_lossy(&keytool.stdout).contains("PrivateKeyEntry"));
}

#[test]
fn lint_with_small_other_name_oid() {
    // The ECC device profile with SKI and the otherName under IANA's documentation enterprise
    // number (RFC 5612: 1.3.6.1.4.1.32473), which pkilint's decoder can read: the whole
    // certificate lints clean.
    let mut profile: serde_json::Value =
        serde_json::from_str(include_str!("../profiles/ecc-device.json")).unwrap();
    profile["Extensions"]["SubjectAlternativeName"]["generalNames"][0]["type"] =
        "otherName:1.3.6.1.4.1.32473.1".into();
    profile["Extensions"]["SubjectKeyIdentifier"] = serde_json::json!({"critical": false});
    let fixture = fixture!();
    let path = fixture.write("small-oid.json", &profile.to_string());
    let zip = fixture.issue(
        path.to_str().unwrap(),
        &mac_csv(1, "", ""),
        &["deviceClass=Aircraft"],
        PASSWORD,
        &[],
    );
    let names = unzip(&zip, &fixture.path("out"));
    let p12 = fixture.path("out").join(&names[1]);
    let out = tool(
        "openssl",
        &[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            &format!("pass:{PASSWORD}"),
            "-nodes",
            "-clcerts",
            "-nokeys",
        ],
    );
    let leaf = fixture.write(
        "leaf.pem",
        &pem_blocks(&String::from_utf8_lossy(&out.stdout))[0],
    );
    let findings = lint(&leaf);
    assert!(findings.is_empty(), "{findings:?}");
    let text = tool(
        "openssl",
        &[
            "x509",
            "-in",
            leaf.to_str().unwrap(),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("1.3.6.1.4.1.32473.1::Aircraft"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
}
