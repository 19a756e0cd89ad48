//! CSR parsing and bundle tests. Requests come from the openssl CLI, so that an outside tool
//! decides what a real CSR looks like; each test is skipped with a note when openssl is absent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::*;
use crate::profile::Lookup;

fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: openssl not found on PATH");
    }
    found
}

/// Runs openssl, panicking with its stderr on failure.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `openssl req -new` with a fresh key (`newkey`: `ec:P-256`, `rsa:2048`, ...): the DER CSR.
fn make_csr(dir: &Path, newkey: &str, digest: &str, subject: &str, san: Option<&str>) -> Vec<u8> {
    let key = dir.join("key.pem");
    let out = dir.join("req.der");
    let mut args: Vec<String> = vec!["req".into(), "-new".into(), "-nodes".into()];
    if let Some(curve) = newkey.strip_prefix("ec:") {
        args.extend([
            "-newkey".into(),
            "ec".into(),
            "-pkeyopt".into(),
            format!("ec_paramgen_curve:{curve}"),
        ]);
    } else {
        args.extend(["-newkey".into(), newkey.into()]);
    }
    args.extend([
        format!("-{digest}"),
        "-keyout".into(),
        key.display().to_string(),
        "-subj".into(),
        subject.into(),
        "-outform".into(),
        "DER".into(),
        "-out".into(),
        out.display().to_string(),
    ]);
    if let Some(san) = san {
        args.extend(["-addext".into(), format!("subjectAltName={san}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl(&args);
    std::fs::read(out).unwrap()
}

fn p256(dir: &Path, cn: &str) -> Vec<u8> {
    make_csr(dir, "ec:P-256", "sha256", &format!("/CN={cn}"), None)
}

/// PEM armour with 64-column lines.
fn pem(label: &str, der: &[u8]) -> String {
    let body = der::pem::encode_string("X", der::pem::LineEnding::LF, der).unwrap();
    body.replace("-----BEGIN X-----", &format!("-----BEGIN {label}-----"))
        .replace("-----END X-----", &format!("-----END {label}-----"))
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// A ZIP of `(name, content)` files; a name ending in `/` is a directory.
fn write_zip(
    dir: &Path,
    name: &str,
    method: CompressionMethod,
    files: &[(&str, &[u8])],
) -> PathBuf {
    let path = dir.join(name);
    let mut zip = ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = SimpleFileOptions::default().compression_method(method);
    for (name, content) in files {
        if name.ends_with('/') {
            zip.add_directory(*name, options).unwrap();
        } else {
            zip.start_file(*name, options).unwrap();
            zip.write_all(content).unwrap();
        }
    }
    zip.finish().unwrap();
    path
}

fn collect(bundle: &CsrBundle) -> Vec<CsrEntry> {
    bundle
        .entries()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The SPKI DER as openssl extracts it from the request.
fn openssl_spki(dir: &Path, csr: &[u8]) -> Vec<u8> {
    let csr_path = write(dir, "spki-src.der", csr);
    let pub_pem = openssl(&[
        "req",
        "-inform",
        "DER",
        "-in",
        csr_path.to_str().unwrap(),
        "-pubkey",
        "-noout",
    ]);
    let pub_path = write(dir, "pub.pem", &pub_pem);
    openssl(&[
        "pkey",
        "-pubin",
        "-in",
        pub_path.to_str().unwrap(),
        "-outform",
        "DER",
    ])
}

#[test]
fn p256_request_parses_verifies_and_answers_every_path() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let subject = "/CN=00:1A:2B:3C:4D:5E/OU=Acme/OU=Second/O=Acme Corp/C=GB/ST=Greater Manchester\
                   /L=Salford/serialNumber=SN-123/emailAddress=dev@example.com/GN=Ada/SN=Lovelace\
                   /title=Sensor";
    let san = "DNS:a.example.com,DNS:b.example.com,IP:10.0.0.1,IP:10.0.0.2,\
               email:dev@example.com,URI:https://example.com/dev,\
               otherName:1.2.3.4;IA5:not-utf8,\
               otherName:1.3.6.1.4.1.32473.1;UTF8:Aircraft,\
               otherName:1.3.6.1.4.1.32473.2;UTF8:Second";
    let der = make_csr(dir.path(), "ec:P-256", "sha256", subject, Some(san));
    let csr = ParsedCsr::from_der(&der).unwrap();
    assert_eq!(csr.key_algorithm(), crate::keys::KeyAlgorithm::EcP256);
    assert_eq!(csr.spki_der(), openssl_spki(dir.path(), &der).as_slice());
    assert_eq!(csr.public_key_bits().len(), 65);
    assert!(csr.spki_der().ends_with(csr.public_key_bits()));
    assert_eq!(csr.subject_common_name(), Some("00:1A:2B:3C:4D:5E"));
    for (path, expected) in [
        ("Subject.commonName", Some("00:1A:2B:3C:4D:5E")),
        ("Subject.organizationalUnitName", Some("Acme")),
        ("Subject.organizationName", Some("Acme Corp")),
        ("Subject.countryName", Some("GB")),
        ("Subject.stateOrProvinceName", Some("Greater Manchester")),
        ("Subject.localityName", Some("Salford")),
        ("Subject.serialNumber", Some("SN-123")),
        ("Subject.emailAddress", Some("dev@example.com")),
        ("Subject.givenName", Some("Ada")),
        ("Subject.surname", Some("Lovelace")),
        ("Subject.title", Some("Sensor")),
        ("Subject.pseudonym", None),
        ("SubjectAlternativeName.dNSName", Some("a.example.com")),
        ("SubjectAlternativeName.iPAddress", Some("10.0.0.1")),
        ("SubjectAlternativeName.rfc822Name", Some("dev@example.com")),
        (
            "SubjectAlternativeName.uniformResourceIdentifier",
            Some("https://example.com/dev"),
        ),
        ("SubjectAlternativeName.otherName", Some("Aircraft")),
        ("SubjectPublicKeyInfo", None),
        ("Subject.nonsense", None),
        ("", None),
    ] {
        assert_eq!(csr.lookup(path), expected, "{path}");
    }
}

#[test]
fn ipv6_and_big_arc_other_name() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // certmill's own `2.25.<UUID>` arc (AeroMACS_DeviceClass) is beyond der's 32-bit arcs.
    let san = format!(
        "IP:2001:db8::1,otherName:{}.1.1;UTF8:Surface Vehicle",
        crate::profile::CERTMILL_ARC
    );
    let der = make_csr(dir.path(), "ec:P-256", "sha256", "/O=Acme", Some(&san));
    let csr = ParsedCsr::from_der(&der).unwrap();
    assert_eq!(
        csr.lookup("SubjectAlternativeName.iPAddress"),
        Some("2001:db8::1")
    );
    assert_eq!(
        csr.lookup("SubjectAlternativeName.otherName"),
        Some("Surface Vehicle")
    );
    assert_eq!(csr.subject_common_name(), None);
    assert_eq!(csr.lookup("SubjectAlternativeName.dNSName"), None);
}

#[test]
fn p384_rsa_and_crossed_hashes_verify() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (newkey, digest, expected) in [
        ("ec:P-384", "sha384", KeyAlgorithm::EcP384),
        ("ec:P-384", "sha256", KeyAlgorithm::EcP384),
        ("ec:P-256", "sha384", KeyAlgorithm::EcP256),
        ("rsa:2048", "sha256", KeyAlgorithm::Rsa2048),
        ("rsa:2048", "sha384", KeyAlgorithm::Rsa2048),
        ("rsa:2048", "sha512", KeyAlgorithm::Rsa2048),
        ("rsa:3072", "sha256", KeyAlgorithm::Rsa3072),
    ] {
        let der = make_csr(dir.path(), newkey, digest, "/CN=dev", None);
        let csr = ParsedCsr::from_der(&der).unwrap_or_else(|e| panic!("{newkey}/{digest}: {e}"));
        assert_eq!(csr.key_algorithm(), expected, "{newkey}/{digest}");
        assert_eq!(csr.spki_der(), openssl_spki(dir.path(), &der).as_slice());
        assert!(csr.spki_der().ends_with(csr.public_key_bits()));
        assert_eq!(csr.subject_common_name(), Some("dev"));
    }
}

#[test]
fn unsupported_keys_are_named() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let der = make_csr(dir.path(), "rsa:1024", "sha256", "/CN=dev", None);
    assert!(matches!(
        ParsedCsr::from_der(&der),
        Err(CsrError::UnsupportedKey {
            key: RejectedKey::RsaSize { bits: 1024 }
        })
    ));
    let der = make_csr(dir.path(), "ec:secp256k1", "sha256", "/CN=dev", None);
    let err = ParsedCsr::from_der(&der).unwrap_err();
    assert!(
        matches!(
            err,
            CsrError::UnsupportedKey {
                key: RejectedKey::Curve { .. }
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("1.3.132.0.10"), "{err}");
    let der = make_csr(dir.path(), "ed25519", "sha256", "/CN=dev", None);
    assert!(matches!(
        ParsedCsr::from_der(&der),
        Err(CsrError::UnsupportedKey {
            key: RejectedKey::Algorithm { .. }
        })
    ));
}

#[test]
fn non_utf8_string_types_are_absent() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "bmp.cnf",
        b"[req]\ndistinguished_name = dn\nstring_mask = default\n[dn]\n",
    );
    let out = dir.path().join("bmp.der");
    openssl(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-keyout",
        dir.path().join("k.pem").to_str().unwrap(),
        "-config",
        config.to_str().unwrap(),
        "-utf8",
        "-subj",
        "/CN=\u{20ac}uro/O=Plain",
        "-outform",
        "DER",
        "-out",
        out.to_str().unwrap(),
    ]);
    let der = std::fs::read(out).unwrap();
    // openssl's `default` mask encodes the euro sign as a BMPString.
    assert!(der.windows(2).any(|w| w == [0x1e, 0x08]), "no BMPString");
    let csr = ParsedCsr::from_der(&der).unwrap();
    assert_eq!(csr.subject_common_name(), None);
    assert_eq!(csr.lookup("Subject.organizationName"), Some("Plain"));
}

#[test]
fn flipped_signature_byte_is_bad_signature() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for newkey in ["ec:P-256", "rsa:2048"] {
        let mut der = make_csr(dir.path(), newkey, "sha256", "/CN=dev", None);
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let err = ParsedCsr::from_der(&der).unwrap_err();
        assert!(matches!(err, CsrError::BadSignature), "{newkey}: {err}");
        let entry = CsrEntry {
            name: "dev-7.csr".into(),
            der,
        };
        let message = entry.parse().unwrap_err().to_string();
        assert!(message.contains("entry `dev-7.csr`"), "{message}");
    }
}

#[test]
fn every_flipped_byte_is_an_error_never_a_panic() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let san = Some("DNS:a.example.com,IP:10.0.0.1,otherName:1.3.6.1.4.1.32473.1;UTF8:Aircraft");
    for newkey in ["ec:P-256", "rsa:2048"] {
        let der = make_csr(dir.path(), newkey, "sha256", "/CN=dev/O=Acme", san);
        ParsedCsr::from_der(&der).unwrap();
        for i in 0..der.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= mask;
                assert!(
                    ParsedCsr::from_der(&bad).is_err(),
                    "{newkey}: byte {i} ^ {mask:#x} accepted"
                );
            }
        }
        for len in 0..der.len() {
            assert!(ParsedCsr::from_der(&der[..len]).is_err());
        }
    }
}

#[test]
fn pem_bundle_with_both_labels_and_junk() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ders: Vec<Vec<u8>> = (1..=3)
        .map(|n| p256(dir.path(), &format!("dev-{n}")))
        .collect();
    let mut text = String::from("Bundle exported by the factory tool\n\n");
    text += &pem("CERTIFICATE REQUEST", &ders[0]);
    text += "some junk between blocks\n-----BEGIN CERTIFICATE-----\nnot ours\n";
    text += &pem("NEW CERTIFICATE REQUEST", &ders[1]);
    text += &pem("CERTIFICATE REQUEST", &ders[2]).replace('\n', "\r\n");
    text += "trailing text";
    let path = write(dir.path(), "bundle.pem", text.as_bytes());
    let bundle = CsrBundle::open(&path, &CsrLimits::default()).unwrap();
    assert_eq!(bundle.len(), 3);
    assert!(!bundle.is_empty());
    for _pass in 0..2 {
        let entries = collect(&bundle);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["#1", "#2", "#3"]);
        for (n, entry) in entries.iter().enumerate() {
            assert_eq!(entry.der, ders[n]);
            let cn = format!("dev-{}", n + 1);
            assert_eq!(
                entry.parse().unwrap().subject_common_name(),
                Some(cn.as_str())
            );
        }
    }
}

#[test]
fn broken_pem_blocks_are_named_by_position() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = pem("CERTIFICATE REQUEST", &p256(dir.path(), "dev"));
    let cases = [
        (
            format!("{good}{}", good.replacen("-----\nMI", "-----\nM*", 1)),
            "#2",
            PemDefect::BadBase64,
        ),
        (
            format!(
                "{good}{good}{}",
                good.replace("-----END CERTIFICATE REQUEST-----\n", "")
            ),
            "#3",
            PemDefect::Unterminated,
        ),
        (
            format!(
                "{}{good}",
                good.replace("-----END CERTIFICATE REQUEST-----\n", "")
            ),
            "#1",
            PemDefect::Unterminated,
        ),
        (
            good.replace("END CERTIFICATE", "END NEW CERTIFICATE"),
            "#1",
            PemDefect::MismatchedEnd,
        ),
        (
            "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n".into(),
            "#1",
            PemDefect::EmptyBlock,
        ),
        (
            good.replacen("\n-----END", "A\n-----END", 1),
            "#1",
            PemDefect::BadBase64,
        ),
    ];
    for (text, expected_entry, expected_defect) in cases {
        let path = write(dir.path(), "broken.pem", text.as_bytes());
        let err = CsrBundle::open(&path, &CsrLimits::default()).unwrap_err();
        let message = err.to_string();
        match err {
            CsrError::Pem {
                entry,
                line,
                defect,
            } => {
                assert_eq!(entry, expected_entry, "{message}");
                assert_eq!(defect, expected_defect, "{message}");
                assert!(line > 0, "{message}");
                assert!(message.contains(&format!("entry `{expected_entry}`")));
            }
            other => panic!("{expected_entry}: {other}"),
        }
    }
}

#[test]
fn pem_limits_and_empty() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let block = pem("CERTIFICATE REQUEST", &p256(dir.path(), "dev"));
    let path = write(dir.path(), "three.pem", block.repeat(3).as_bytes());
    let limits = CsrLimits {
        max_entries: 2,
        ..CsrLimits::default()
    };
    assert!(matches!(
        CsrBundle::open(&path, &limits),
        Err(CsrError::TooManyEntries { count: 3, limit: 2 })
    ));
    let limits = CsrLimits {
        max_csr_bytes: 200,
        ..CsrLimits::default()
    };
    let err = CsrBundle::open(&path, &limits).unwrap_err();
    assert!(
        matches!(&err, CsrError::TooLarge { entry, limit: 200, .. } if entry == "#1"),
        "{err}"
    );
    let limits = CsrLimits {
        max_total_bytes: 100,
        ..CsrLimits::default()
    };
    assert!(matches!(
        CsrBundle::open(&path, &limits),
        Err(CsrError::TotalTooLarge { limit: 100, .. })
    ));
    let path = write(dir.path(), "junk.pem", b"no blocks here\n");
    assert!(matches!(
        CsrBundle::open(&path, &CsrLimits::default()),
        Err(CsrError::Empty)
    ));
    let err = CsrBundle::open(&dir.path().join("missing.pem"), &CsrLimits::default()).unwrap_err();
    assert!(matches!(err, CsrError::Io { .. }));
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

#[test]
fn zip_bundles_stored_and_deflated() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = p256(dir.path(), "dev-a");
    let b = make_csr(dir.path(), "rsa:2048", "sha256", "/CN=dev-b", None);
    let c = p256(dir.path(), "dev-c");
    let b_pem = format!("leading note\n{}", pem("NEW CERTIFICATE REQUEST", &b));
    for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
        let path = write_zip(
            dir.path(),
            "bundle.zip",
            method,
            &[
                ("csrs/", b""),
                ("csrs/a.csr", &a),
                ("csrs/b.pem", b_pem.as_bytes()),
                ("C.DER", &c),
            ],
        );
        let bundle = CsrBundle::open(&path, &CsrLimits::default()).unwrap();
        assert_eq!(bundle.len(), 3);
        for _pass in 0..2 {
            let entries = collect(&bundle);
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, ["csrs/a.csr", "csrs/b.pem", "C.DER"], "{method:?}");
            assert_eq!(entries[0].der, a);
            assert_eq!(entries[1].der, b);
            assert_eq!(entries[2].der, c);
            let cns: Vec<String> = entries
                .iter()
                .map(|e| e.parse().unwrap().subject_common_name().unwrap().to_owned())
                .collect();
            assert_eq!(cns, ["dev-a", "dev-b", "dev-c"]);
        }
    }
}

#[test]
fn zip_entry_names_that_are_paths_out_are_refused_by_name() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = p256(dir.path(), "dev-a");
    for (i, (name, rule)) in [
        ("../a.csr", "'..'"),
        ("csrs/../../a.csr", "'..'"),
        ("/etc/a.csr", "absolute"),
        ("C:/a.csr", "drive letter"),
        ("csrs\\a.csr", "backslash"),
        ("a\u{7}.csr", "control"),
        ("a\n.csr", "control"),
    ]
    .into_iter()
    .enumerate()
    {
        let path = write_zip(
            dir.path(),
            &format!("slip{i}.zip"),
            CompressionMethod::Stored,
            &[("ok.csr", &a), (name, &a)],
        );
        let err = CsrBundle::open(&path, &CsrLimits::default()).unwrap_err();
        assert!(
            matches!(&err, CsrError::UnsafeEntryName { entry, .. } if entry == name),
            "{name:?}: {err}"
        );
        assert!(err.to_string().contains(rule), "{name:?}: {err}");
    }
    // Plain relative paths are fine.
    let path = write_zip(
        dir.path(),
        "fine.zip",
        CompressionMethod::Stored,
        &[("line-3/a.csr", &a), ("b..csr", &a)],
    );
    assert_eq!(
        CsrBundle::open(&path, &CsrLimits::default()).unwrap().len(),
        2
    );
}

#[test]
fn zip_refuses_unexpected_entries_and_broken_pem_members() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = p256(dir.path(), "dev-a");
    let path = write_zip(
        dir.path(),
        "odd.zip",
        CompressionMethod::Deflated,
        &[("a.csr", &a), ("notes.txt", b"hello"), ("README", b"x")],
    );
    let err = CsrBundle::open(&path, &CsrLimits::default()).unwrap_err();
    assert!(
        matches!(&err, CsrError::UnexpectedEntries { names } if names == &["notes.txt", "README"]),
        "{err}"
    );
    assert!(err.to_string().contains("`notes.txt`"), "{err}");

    let two = pem("CERTIFICATE REQUEST", &a).repeat(2);
    let path = write_zip(
        dir.path(),
        "two.zip",
        CompressionMethod::Stored,
        &[("two.pem", two.as_bytes())],
    );
    let bundle = CsrBundle::open(&path, &CsrLimits::default()).unwrap();
    let err = bundle.entries().unwrap().next().unwrap().unwrap_err();
    assert!(
        matches!(&err, CsrError::Pem { entry, defect: PemDefect::MultipleBlocks, .. } if entry == "two.pem"),
        "{err}"
    );

    let path = write_zip(
        dir.path(),
        "bad.zip",
        CompressionMethod::Stored,
        &[("good.csr", &a), ("bad.csr", b"\x30\x03\x02\x01")],
    );
    let bundle = CsrBundle::open(&path, &CsrLimits::default()).unwrap();
    let entries = collect(&bundle);
    entries[0].parse().unwrap();
    let message = entries[1].parse().unwrap_err().to_string();
    assert!(
        message.contains("entry `bad.csr`: malformed CSR"),
        "{message}"
    );
}

#[test]
fn zip_limits_are_checked_from_the_central_directory() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 10 * 1024 * 1024];
    let a = p256(dir.path(), "dev-a");
    let path = write_zip(
        dir.path(),
        "bomb.zip",
        CompressionMethod::Deflated,
        &[("a.csr", &a), ("bomb.csr", &zeros)],
    );
    let err = CsrBundle::open(&path, &CsrLimits::default()).unwrap_err();
    match &err {
        CsrError::CompressionRatio {
            entry,
            ratio,
            limit,
        } => {
            assert_eq!(entry, "bomb.csr");
            assert!(*ratio > 1000, "{err}");
            assert_eq!(*limit, 100);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("entry `bomb.csr`"), "{err}");

    let files: Vec<(String, &[u8])> = (0..3).map(|n| (format!("{n}.csr"), &a[..])).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let path = write_zip(dir.path(), "three.zip", CompressionMethod::Stored, &files);
    let limits = CsrLimits {
        max_entries: 2,
        ..CsrLimits::default()
    };
    assert!(matches!(
        CsrBundle::open(&path, &limits),
        Err(CsrError::TooManyEntries { count: 3, limit: 2 })
    ));
    let limits = CsrLimits {
        max_csr_bytes: 200,
        ..CsrLimits::default()
    };
    let err = CsrBundle::open(&path, &limits).unwrap_err();
    assert!(
        matches!(&err, CsrError::TooLarge { entry, limit: 200, .. } if entry == "0.csr"),
        "{err}"
    );
    assert!(err.to_string().contains("entry `0.csr`"), "{err}");
    let limits = CsrLimits {
        max_total_bytes: a.len() as u64 * 2,
        ..CsrLimits::default()
    };
    assert!(matches!(
        CsrBundle::open(&path, &limits),
        Err(CsrError::TotalTooLarge { .. })
    ));

    let path = write_zip(
        dir.path(),
        "empty.zip",
        CompressionMethod::Stored,
        &[("d/", b"")],
    );
    assert!(matches!(
        CsrBundle::open(&path, &CsrLimits::default()),
        Err(CsrError::Empty)
    ));
    let path = write_zip(dir.path(), "none.zip", CompressionMethod::Stored, &[]);
    assert!(matches!(
        CsrBundle::open(&path, &CsrLimits::default()),
        Err(CsrError::Empty)
    ));
}

#[test]
fn truncated_and_garbage_zips_are_errors() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = p256(dir.path(), "dev-a");
    let path = write_zip(
        dir.path(),
        "ok.zip",
        CompressionMethod::Deflated,
        &[("a.csr", &a), ("b.csr", &a)],
    );
    let bytes = std::fs::read(&path).unwrap();
    for len in [4, 30, bytes.len() / 2, bytes.len() - 1] {
        let path = write(dir.path(), "cut.zip", &bytes[..len]);
        // Either refused at open or at read, never a panic.
        if let Ok(bundle) = CsrBundle::open(&path, &CsrLimits::default()) {
            let _ = bundle.entries().map(|e| e.count());
        }
    }
    // Corrupt every byte of the local headers and data: errors or parse failures, no panic.
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0xff;
        let path = write(dir.path(), "flip.zip", &bad);
        if let Ok(bundle) = CsrBundle::open(&path, &CsrLimits::default()) {
            if let Ok(entries) = bundle.entries() {
                for entry in entries.flatten() {
                    let _ = entry.parse();
                }
            }
        }
    }
}

/// DER tag-length-value with a definite DER length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A request for an RSA key of `bits` bits (a made-up odd modulus) with an empty subject and
/// a signature of zeros: enough to reach the key check, which comes before the signature's.
fn rsa_request_of(bits: usize) -> Vec<u8> {
    const RSA_ENCRYPTION: [u8; 11] = [6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 1];
    const SHA256_WITH_RSA: [u8; 11] = [6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 11];
    let mut modulus = vec![0u8; 1 + bits / 8];
    modulus[1] = 0x80;
    *modulus.last_mut().unwrap() = 1;
    let public_key = tlv(0x30, &[tlv(2, &modulus), tlv(2, &[1, 0, 1])].concat());
    let algorithm = |oid: &[u8]| tlv(0x30, &[oid, &[5, 0][..]].concat());
    let spki = tlv(
        0x30,
        &[
            algorithm(&RSA_ENCRYPTION),
            tlv(3, &[&[0][..], &public_key].concat()),
        ]
        .concat(),
    );
    let info = tlv(
        0x30,
        &[tlv(2, &[0]), tlv(0x30, &[]), spki, vec![0xa0, 0]].concat(),
    );
    let signature = tlv(3, &vec![0u8; 1 + bits / 8]);
    tlv(
        0x30,
        &[info, algorithm(&SHA256_WITH_RSA), signature].concat(),
    )
}

/// Hostile or broken PEM and DER: each refused with an error that says what is wrong, never a
/// panic, never a huge allocation.
#[test]
fn hostile_pem_and_der_are_refused_by_name() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = p256(dir.path(), "dev");
    ParsedCsr::from_der(&good).unwrap();

    // Trailing garbage after the request, and lengths far beyond the input.
    let trailing = [good.as_slice(), &[0, 0]].concat();
    assert!(matches!(
        ParsedCsr::from_der(&trailing),
        Err(CsrError::Malformed { .. })
    ));
    for huge in [
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00],
        vec![
            0x30, 0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x30,
        ],
        vec![0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00],
    ] {
        let err = ParsedCsr::from_der(&huge).unwrap_err();
        assert!(
            matches!(err, CsrError::Malformed { .. }),
            "{huge:02x?}: {err}"
        );
    }

    // RSA keys: 8192 bits is the largest issued for; above is refused by size, before any
    // signature work.
    for bits in [8200, 16384] {
        let err = ParsedCsr::from_der(&rsa_request_of(bits)).unwrap_err();
        assert!(
            matches!(err, CsrError::UnsupportedKey { key: RejectedKey::RsaSize { bits: b } } if b == bits),
            "{bits}: {err}"
        );
        assert!(err.to_string().contains(&bits.to_string()), "{err}");
    }

    // An EC key with explicit curve parameters (RFC 5480: MUST NOT be used).
    let key = dir.path().join("explicit.pem");
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-param_enc",
        "explicit",
        "-genkey",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]);
    let explicit = openssl(&[
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=dev",
        "-outform",
        "DER",
    ]);
    let err = ParsedCsr::from_der(&explicit).unwrap_err();
    assert!(matches!(err, CsrError::UnsupportedKey { .. }), "{err}");

    // Signature algorithms outside the supported set: SHA-224 and RSASSA-PSS.
    let sha224 = make_csr(dir.path(), "rsa:2048", "sha224", "/CN=dev", None);
    let err = ParsedCsr::from_der(&sha224).unwrap_err();
    assert!(
        matches!(&err, CsrError::UnsupportedSignatureAlgorithm { oid } if oid.to_string() == "1.2.840.113549.1.1.14"),
        "{err}"
    );
    let rsa_key = dir.path().join("key.pem");
    let pss = openssl(&[
        "req",
        "-new",
        "-key",
        rsa_key.to_str().unwrap(),
        "-sigopt",
        "rsa_padding_mode:pss",
        "-subj",
        "/CN=dev",
        "-outform",
        "DER",
    ]);
    let err = ParsedCsr::from_der(&pss).unwrap_err();
    assert!(
        matches!(&err, CsrError::UnsupportedSignatureAlgorithm { oid } if oid.to_string() == "1.2.840.113549.1.1.10"),
        "{err}"
    );

    // A private key in the upload refuses the whole upload, naming the block, and never
    // echoes the key.
    let private = std::fs::read_to_string(&rsa_key).unwrap();
    let text = format!("{}{private}", pem("CERTIFICATE REQUEST", &good));
    let path = write(dir.path(), "with-key.pem", text.as_bytes());
    let err = CsrBundle::open(&path, &CsrLimits::default()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, CsrError::Pem { entry, defect: PemDefect::PrivateKey, .. } if entry == "#2"),
        "{message}"
    );
    let key_line = private.lines().nth(1).unwrap();
    assert!(!message.contains(key_line), "{message}");

    // Only blocks of other labels: named, not "empty".
    let certificate = pem("CERTIFICATE", &good);
    let path = write(
        dir.path(),
        "certs.pem",
        format!("notes\n{certificate}").as_bytes(),
    );
    let err = CsrBundle::open(&path, &CsrLimits::default()).unwrap_err();
    assert!(
        matches!(&err, CsrError::Pem { entry, line: 2, defect: PemDefect::WrongLabel(label) } if entry == "#1" && label == "CERTIFICATE"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("a CERTIFICATE block, not a CERTIFICATE REQUEST"),
        "{err}"
    );

    // A ZIP inside the ZIP, under a request's name or its own.
    let inner = write_zip(
        dir.path(),
        "inner.zip",
        CompressionMethod::Stored,
        &[("a.der", &good)],
    );
    let inner = std::fs::read(inner).unwrap();
    let path = write_zip(
        dir.path(),
        "outer.zip",
        CompressionMethod::Stored,
        &[("a.der", &good), ("b.csr", &inner)],
    );
    let bundle = CsrBundle::open(&path, &CsrLimits::default()).unwrap();
    let err = bundle.entries().unwrap().find_map(Result::err).unwrap();
    assert!(
        matches!(&err, CsrError::NestedZip { entry } if entry == "b.csr"),
        "{err}"
    );
    let path = write_zip(
        dir.path(),
        "outer2.zip",
        CompressionMethod::Stored,
        &[("a.der", &good), ("more.zip", &inner)],
    );
    let err = CsrBundle::open(&path, &CsrLimits::default()).unwrap_err();
    assert!(
        matches!(&err, CsrError::UnexpectedEntries { names } if names == &["more.zip"]),
        "{err}"
    );
}

/// The entry count is read from the end record before the zip crate parses the directory (it
/// keeps every entry in memory): a ZIP of 70,000 empty entries, a ZIP64 directory, is refused
/// by its declared count.
#[test]
fn a_huge_central_directory_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let zip_of = |name: &str, n: usize| {
        let path = dir.path().join(name);
        let mut zip = ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        for i in 0..n {
            zip.start_file(format!("{i}.csr"), options).unwrap();
        }
        zip.finish().unwrap();
        path
    };
    let limits = CsrLimits {
        max_entries: 1000,
        ..CsrLimits::default()
    };
    let err = CsrBundle::open(&zip_of("huge.zip", 70_000), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            CsrError::DirectoryTooLarge {
                declared: 70_000,
                limit: 1000
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the ZIP declares 70000 entries, more than twice the limit of 1000 CSRs per bundle"
    );
    // An end record cut short (found by the csr_bundle fuzz target: it read past the input).
    let short = write(dir.path(), "short.zip", b"PK\x05\x06\0\0\0\0");
    assert!(matches!(
        CsrBundle::open(&short, &limits),
        Err(CsrError::Zip { .. })
    ));
    // Up to twice the limit, the directory is parsed and the files counted.
    let err = CsrBundle::open(&zip_of("over.zip", 1500), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            CsrError::TooManyEntries {
                count: 1500,
                limit: 1000
            }
        ),
        "{err}"
    );
}
