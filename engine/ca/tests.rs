//! Tests of the issuing CA: init/load/import round trips, the certificates' profile parsed
//! back, key files, and OpenSSL as the outside judge.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use sha1::{Digest, Sha1};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::Certificate;

use super::*;

const PASSPHRASE: &str = "correct horse battery staple";

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs openssl with `args` in `dir`, panicking with its stderr on failure; returns stdout.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn passphrase(s: &str) -> CaPassphrase {
    CaPassphrase::new(s.to_owned()).unwrap()
}

fn init_with(dir: &Path, algorithm: KeyAlgorithm, passphrase: Option<CaPassphrase>) -> IssuingCa {
    let options = CaInitOptions {
        algorithm,
        passphrase,
        ..CaInitOptions::default()
    };
    IssuingCa::init(dir, &options).unwrap()
}

fn ca_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("ca").join(name)
}

fn read_cert(path: &Path) -> Certificate {
    let pem = std::fs::read_to_string(path).unwrap();
    let der = x509::pem_certificates(&pem, path).unwrap().remove(0);
    Certificate::from_der(&der).unwrap()
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

/// Verifies `signature` over `message` with the public key of the certificate `cert_der`.
fn verify_with_cert(
    cert_der: &[u8],
    algorithm: SignatureAlgorithm,
    message: &[u8],
    signature_value: &[u8],
) {
    let cert = Certificate::from_der(cert_der).unwrap();
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let bits = spki.subject_public_key.raw_bytes();
    let verification: &'static dyn signature::VerificationAlgorithm = match algorithm {
        SignatureAlgorithm::EcdsaWithSha256 => &signature::ECDSA_P256_SHA256_ASN1,
        SignatureAlgorithm::EcdsaWithSha384 => &signature::ECDSA_P384_SHA384_ASN1,
        SignatureAlgorithm::Sha256WithRsaEncryption => &signature::RSA_PKCS1_2048_8192_SHA256,
        SignatureAlgorithm::Sha384WithRsaEncryption => &signature::RSA_PKCS1_2048_8192_SHA384,
    };
    UnparsedPublicKey::new(verification, bits)
        .verify(message, signature_value)
        .expect("signature verifies under the issuing certificate's key");
}

fn assert_same(a: &IssuingCa, b: &IssuingCa) {
    assert_eq!(a.key_algorithm(), b.key_algorithm());
    assert_eq!(a.certificate_der(), b.certificate_der());
    assert_eq!(a.subject_der(), b.subject_der());
    assert_eq!(a.subject_key_identifier(), b.subject_key_identifier());
    assert_eq!(a.chain_der(), b.chain_der());
    assert_eq!(a.chain_pem(), b.chain_pem());
    assert_eq!(a.not_after_unix(), b.not_after_unix());
    assert_eq!(a.describe(), b.describe());
}

#[test]
fn issuing_ca_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<IssuingCa>();
}

#[test]
fn passphrase_is_non_empty_and_redacted() {
    assert!(matches!(
        CaPassphrase::new(String::new()),
        Err(CaError::EmptyPassphrase)
    ));
    let p = passphrase("hunter2hunter2");
    let shown = format!("{p:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let options = CaInitOptions {
        passphrase: Some(p),
        ..CaInitOptions::default()
    };
    assert!(!format!("{options:?}").contains("hunter2"));
}

#[test]
fn init_then_load_round_trip() {
    for (algorithm, signature_algorithms) in [
        (
            KeyAlgorithm::EcP256,
            &[SignatureAlgorithm::EcdsaWithSha256][..],
        ),
        (
            KeyAlgorithm::EcP384,
            &[SignatureAlgorithm::EcdsaWithSha384][..],
        ),
        (
            KeyAlgorithm::Rsa2048,
            &[
                SignatureAlgorithm::Sha256WithRsaEncryption,
                SignatureAlgorithm::Sha384WithRsaEncryption,
            ][..],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        assert!(!IssuingCa::exists(dir.path()));
        let created = init_with(dir.path(), algorithm, None);
        assert!(IssuingCa::exists(dir.path()));
        assert_eq!(created.key_algorithm(), algorithm);
        let loaded = IssuingCa::load(dir.path(), None).unwrap();
        assert_same(&created, &loaded);
        assert_eq!(loaded.chain_der().len(), 2);
        assert_eq!(loaded.chain_der()[0], loaded.certificate_der());
        assert!(loaded.describe().starts_with(&format!(
            "certmill development Issuing CA 1 ({algorithm}), not after "
        )));

        for &sig_alg in signature_algorithms {
            let tbs = b"a TBSCertificate stand-in";
            let sig = loaded.sign(sig_alg, tbs).unwrap();
            verify_with_cert(loaded.certificate_der(), sig_alg, tbs, &sig);
        }
        for sig_alg in SignatureAlgorithm::ALL {
            if !sig_alg.fits(algorithm) {
                assert!(
                    matches!(
                        loaded.sign(sig_alg, b"x"),
                        Err(CaError::AlgorithmMismatch { requested, key })
                            if requested == sig_alg && key == algorithm
                    ),
                    "{sig_alg} with {algorithm}"
                );
            }
        }
    }
}

#[test]
fn certificates_follow_the_ca_profile() {
    let dir = tempfile::tempdir().unwrap();
    let options = CaInitOptions {
        organization: "Acme Devices".to_owned(),
        common_name_prefix: "Acme Line 7".to_owned(),
        ..CaInitOptions::default()
    };
    let before = OffsetDateTime::now_utc().unix_timestamp();
    let ca = IssuingCa::init(dir.path(), &options).unwrap();
    let root = read_cert(&ca_file(dir.path(), "root.crt"));
    let issuing = read_cert(&ca_file(dir.path(), "issuing.crt"));
    assert_eq!(issuing.to_der().unwrap(), ca.certificate_der());
    assert_eq!(root.to_der().unwrap(), ca.chain_der()[1]);

    assert_eq!(
        root.tbs_certificate.subject.to_string(),
        "CN=Acme Line 7 Root CA,O=Acme Devices"
    );
    assert_eq!(
        issuing.tbs_certificate.subject.to_string(),
        "CN=Acme Line 7 Issuing CA 1,O=Acme Devices"
    );
    assert_eq!(root.tbs_certificate.issuer, root.tbs_certificate.subject);
    assert_eq!(issuing.tbs_certificate.issuer, root.tbs_certificate.subject);
    assert_eq!(
        ca.subject_der(),
        issuing.tbs_certificate.subject.to_der().unwrap().as_slice()
    );
    assert!(ca
        .describe()
        .starts_with("Acme Line 7 Issuing CA 1 (EC:P-256)"));

    for (cert, path_len, usages) in [
        (&root, None, KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        (
            &issuing,
            Some(0u8),
            KeyUsages::DigitalSignature | KeyUsages::KeyCertSign | KeyUsages::CRLSign,
        ),
    ] {
        let tbs = &cert.tbs_certificate;
        assert_eq!(tbs.version, x509_cert::certificate::Version::V3);
        let serial = tbs.serial_number.as_bytes();
        assert_eq!(serial.len(), 16, "16-byte serial");
        assert!(serial[0] & 0x80 == 0 && serial[0] != 0, "positive, minimal");

        let not_before =
            i64::try_from(tbs.validity.not_before.to_unix_duration().as_secs()).unwrap();
        assert!(
            not_before <= before - 3500 && not_before >= before - 3700,
            "1 h skew margin"
        );

        let bc = extension(cert, "2.5.29.19");
        assert!(bc.critical, "basicConstraints critical");
        let bc = BasicConstraints::from_der(bc.extn_value.as_bytes()).unwrap();
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, path_len);

        let ku = extension(cert, "2.5.29.15");
        assert!(ku.critical, "keyUsage critical");
        let ku = KeyUsage::from_der(ku.extn_value.as_bytes()).unwrap();
        assert_eq!(ku.0, usages);

        let ski = extension(cert, "2.5.29.14");
        assert!(!ski.critical);
        let ski = SubjectKeyIdentifier::from_der(ski.extn_value.as_bytes()).unwrap();
        let bits = tbs.subject_public_key_info.subject_public_key.raw_bytes();
        assert_eq!(
            ski.0.as_bytes(),
            Sha1::digest(bits).as_slice(),
            "RFC 5280 method 1"
        );
    }
    let root_ski =
        SubjectKeyIdentifier::from_der(extension(&root, "2.5.29.14").extn_value.as_bytes())
            .unwrap();
    let aki = extension(&issuing, "2.5.29.35");
    assert!(!aki.critical);
    let aki = AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes()).unwrap();
    assert_eq!(aki.key_identifier.unwrap(), root_ski.0);
    assert_eq!(
        ca.subject_key_identifier(),
        SubjectKeyIdentifier::from_der(extension(&issuing, "2.5.29.14").extn_value.as_bytes())
            .unwrap()
            .0
            .as_bytes()
    );

    let root_not_after = root
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    let issuing_not_after = issuing
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    assert_eq!(
        ca.not_after_unix(),
        i64::try_from(issuing_not_after).unwrap()
    );
    let year = 365 * 86_400;
    let ten = issuing_not_after - u64::try_from(before).unwrap();
    // Up to 3 leap days, plus the seconds `init` took (notAfter counts from its own clock).
    assert!(
        (10 * year..=10 * year + 3 * 86_400 + 60).contains(&ten),
        "10 years, got {ten} s"
    );
    let twenty = root_not_after - u64::try_from(before).unwrap();
    assert!(
        (20 * year..=20 * year + 6 * 86_400 + 60).contains(&twenty),
        "20 years"
    );

    // The issuing certificate verifies under the root key (aws-lc).
    let path = Path::new("test");
    let root_parsed = ParsedCertificate::from_der(root.to_der().unwrap(), path).unwrap();
    let issuing_parsed = ParsedCertificate::from_der(issuing.to_der().unwrap(), path).unwrap();
    assert!(issuing_parsed.is_signed_by(&root_parsed, path).unwrap());
    assert!(root_parsed.is_signed_by(&root_parsed, path).unwrap());
    assert!(!root_parsed.is_signed_by(&issuing_parsed, path).unwrap());
}

#[test]
fn init_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let first = init_with(dir.path(), KeyAlgorithm::EcP256, None);
    let err = IssuingCa::init(dir.path(), &CaInitOptions::default()).unwrap_err();
    assert!(
        matches!(&err, CaError::AlreadyExists(p) if p == &ca_file(dir.path(), "root.crt")),
        "{err}"
    );
    assert!(err.to_string().contains("root.crt"), "{err}");
    // Any single file blocks init, and nothing is changed.
    std::fs::remove_file(ca_file(dir.path(), "root.crt")).unwrap();
    std::fs::remove_file(ca_file(dir.path(), "root.key")).unwrap();
    let err = IssuingCa::init(dir.path(), &CaInitOptions::default()).unwrap_err();
    assert!(matches!(err, CaError::AlreadyExists(p) if p.ends_with("issuing.crt")));
    assert_same(&first, &IssuingCa::load(dir.path(), None).unwrap());
}

#[test]
fn init_rejects_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        CaInitOptions {
            issuing_years: 21,
            ..CaInitOptions::default()
        },
        CaInitOptions {
            root_years: 0,
            ..CaInitOptions::default()
        },
        CaInitOptions {
            issuing_years: 0,
            ..CaInitOptions::default()
        },
        CaInitOptions {
            organization: " ".to_owned(),
            ..CaInitOptions::default()
        },
    ] {
        assert!(matches!(
            IssuingCa::init(dir.path(), &options),
            Err(CaError::InvalidOption { .. })
        ));
    }
    assert!(!IssuingCa::exists(dir.path()));
}

#[test]
fn load_without_ca_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = IssuingCa::load(dir.path(), None).unwrap_err();
    assert!(
        matches!(&err, CaError::NotFound(p) if p.ends_with("issuing.crt")),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn key_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    init_with(
        dir.path(),
        KeyAlgorithm::EcP256,
        Some(passphrase(PASSPHRASE)),
    );
    let mode = |name: &str| {
        std::fs::metadata(ca_file(dir.path(), name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("root.key"), 0o600);
    assert_eq!(mode("issuing.key"), 0o600);
    assert_eq!(mode("issuing.crt"), 0o644);
    let dir_mode = std::fs::metadata(dir.path().join("ca"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[test]
fn encrypted_key_needs_the_right_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let created = init_with(
        dir.path(),
        KeyAlgorithm::EcP256,
        Some(passphrase(PASSPHRASE)),
    );
    for name in ["root.key", "issuing.key"] {
        let text = std::fs::read_to_string(ca_file(dir.path(), name)).unwrap();
        assert!(
            text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
            "{name}"
        );
    }
    let key_path = ca_file(dir.path(), "issuing.key");
    let err = IssuingCa::load(dir.path(), None).unwrap_err();
    assert!(
        matches!(&err, CaError::PassphraseRequired(p) if p == &key_path),
        "{err}"
    );
    for wrong in [
        "wrong",
        "correct horse battery stapl",
        "correct horse battery staple ",
    ] {
        let err = IssuingCa::load(dir.path(), Some(&passphrase(wrong))).unwrap_err();
        assert!(
            matches!(&err, CaError::WrongPassphrase(p) if p == &key_path),
            "{err}"
        );
    }
    let loaded = IssuingCa::load(dir.path(), Some(&passphrase(PASSPHRASE))).unwrap();
    assert_same(&created, &loaded);
    let sig = loaded
        .sign(SignatureAlgorithm::EcdsaWithSha256, b"tbs")
        .unwrap();
    verify_with_cert(
        loaded.certificate_der(),
        SignatureAlgorithm::EcdsaWithSha256,
        b"tbs",
        &sig,
    );
}

#[test]
fn unencrypted_key_ignores_a_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    init_with(dir.path(), KeyAlgorithm::EcP384, None);
    let text = std::fs::read_to_string(ca_file(dir.path(), "issuing.key")).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    IssuingCa::load(dir.path(), Some(&passphrase("unused"))).unwrap();
}

#[test]
fn load_detects_a_swapped_key() {
    let dir = tempfile::tempdir().unwrap();
    init_with(dir.path(), KeyAlgorithm::EcP256, None);
    let issuing_key = ca_file(dir.path(), "issuing.key");
    std::fs::remove_file(&issuing_key).unwrap();
    std::fs::copy(ca_file(dir.path(), "root.key"), &issuing_key).unwrap();
    let err = IssuingCa::load(dir.path(), None).unwrap_err();
    assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
}

#[test]
fn openssl_verifies_the_chain_and_reads_the_keys() {
    if !openssl_available() {
        eprintln!("skipped: openssl not found on PATH");
        return;
    }
    for algorithm in [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Rsa2048,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ca = init_with(dir.path(), algorithm, Some(passphrase(PASSPHRASE)));
        let ca_dir = dir.path().join("ca");
        let out = openssl(
            &ca_dir,
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                "root.crt",
                "issuing.crt",
            ],
        );
        assert_eq!(out.trim(), "issuing.crt: OK", "{algorithm}");
        // chain.pem holds issuing then root.
        let out = openssl(
            &ca_dir,
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                "root.crt",
                "-untrusted",
                "chain.pem",
                "chain.pem",
            ],
        );
        assert!(out.contains("OK"), "{out}");
        let pass = format!("pass:{PASSPHRASE}");
        for key in ["issuing.key", "root.key"] {
            openssl(
                &ca_dir,
                &["pkey", "-in", key, "-passin", &pass, "-check", "-noout"],
            );
        }
        // The issuing key's public half is the issuing certificate's.
        let from_key = openssl(
            &ca_dir,
            &["pkey", "-in", "issuing.key", "-passin", &pass, "-pubout"],
        );
        let from_cert = openssl(
            &ca_dir,
            &["x509", "-in", "issuing.crt", "-pubkey", "-noout"],
        );
        assert_eq!(from_key, from_cert, "{algorithm}");
        let text = openssl(&ca_dir, &["x509", "-in", "issuing.crt", "-noout", "-text"]);
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
        assert_eq!(
            ca.chain_pem(),
            std::fs::read_to_string(ca_dir.join("chain.pem")).unwrap()
        );
        // A wrong passphrase is refused by OpenSSL as well.
        let out = Command::new("openssl")
            .current_dir(&ca_dir)
            .args([
                "pkey",
                "-in",
                "issuing.key",
                "-passin",
                "pass:wrong",
                "-noout",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
}

/// Creates a self-signed CA with `openssl req -x509`, returning (cert, key) paths.
fn openssl_self_signed(
    dir: &Path,
    name: &str,
    key_spec: &[&str],
    extensions: &[&str],
    extra: &[&str],
) -> (PathBuf, PathBuf) {
    let cert = format!("{name}.crt");
    let key = format!("{name}.key");
    let subject = format!("/O=Imported/CN={name}");
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(key_spec);
    args.extend_from_slice(&[
        "-keyout", &key, "-out", &cert, "-days", "30", "-subj", &subject,
    ]);
    for ext in extensions {
        args.push("-addext");
        args.push(ext);
    }
    args.extend_from_slice(extra);
    openssl(dir, &args);
    (dir.join(cert), dir.join(key))
}

const CA_EXTENSIONS: &[&str] = &[
    "basicConstraints=critical,CA:TRUE",
    "keyUsage=critical,keyCertSign,cRLSign",
];
const EC_P256: &[&str] = &[
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-noenc",
];

#[test]
fn import_openssl_self_signed_ca() {
    if !openssl_available() {
        eprintln!("skipped: openssl not found on PATH");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_self_signed(work.path(), "ImportedEC", EC_P256, CA_EXTENSIONS, &[]);
    let data = tempfile::tempdir().unwrap();
    let ca = IssuingCa::import(data.path(), &cert, &key, None, None).unwrap();
    assert_eq!(ca.key_algorithm(), KeyAlgorithm::EcP256);
    assert_eq!(ca.chain_der().len(), 1);
    assert!(
        ca.describe().starts_with("ImportedEC (EC:P-256)"),
        "{}",
        ca.describe()
    );
    let sig = ca
        .sign(SignatureAlgorithm::EcdsaWithSha256, b"tbs")
        .unwrap();
    verify_with_cert(
        ca.certificate_der(),
        SignatureAlgorithm::EcdsaWithSha256,
        b"tbs",
        &sig,
    );
    assert_same(&ca, &IssuingCa::load(data.path(), None).unwrap());
    // The stored key is PKCS#8, unencrypted as no passphrase was given.
    let stored = std::fs::read_to_string(ca_file(data.path(), "issuing.key")).unwrap();
    assert!(stored.starts_with("-----BEGIN PRIVATE KEY-----"));
    // Importing again refuses to overwrite.
    let err = IssuingCa::import(data.path(), &cert, &key, None, None).unwrap_err();
    assert!(matches!(err, CaError::AlreadyExists(_)), "{err}");
}

#[test]
fn import_rsa_with_encrypted_key_and_chain() {
    if !openssl_available() {
        eprintln!("skipped: openssl not found on PATH");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (root_cert, _root_key) = openssl_self_signed(w, "Root", EC_P256, CA_EXTENSIONS, &[]);
    // An RSA intermediate signed by the root, with its key encrypted by OpenSSL.
    let pass = format!("pass:{PASSPHRASE}");
    openssl(
        w,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-keyout",
            "inter.key",
            "-passout",
            &pass,
            "-out",
            "inter.csr",
            "-subj",
            "/O=Imported/CN=Intermediate",
        ],
    );
    std::fs::write(
        w.join("inter.ext"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    openssl(
        w,
        &[
            "x509",
            "-req",
            "-in",
            "inter.csr",
            "-CA",
            "Root.crt",
            "-CAkey",
            "Root.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "inter.ext",
            "-out",
            "inter.crt",
        ],
    );
    // OpenSSL 3 `req` encrypts with 3DES (PBES2); re-encrypt with AES-256, which is what
    // certmill reads (the pkcs8 crate is built without its `3des` feature).
    openssl(
        w,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-v2prf",
            "hmacWithSHA256",
            "-in",
            "inter.key",
            "-passin",
            &pass,
            "-passout",
            &pass,
            "-out",
            "inter.aes.key",
        ],
    );
    let inter_cert = w.join("inter.crt");
    let inter_key = w.join("inter.aes.key");
    assert!(std::fs::read_to_string(&inter_key)
        .unwrap()
        .contains("ENCRYPTED PRIVATE KEY"));

    // 3DES-encrypted keys (OpenSSL 3 `req -passout` default) import too (pkcs8 feature "3des").
    let data = tempfile::tempdir().unwrap();
    let imported = IssuingCa::import(
        data.path(),
        &inter_cert,
        &w.join("inter.key"),
        Some(&root_cert),
        Some(&passphrase(PASSPHRASE)),
    )
    .unwrap();
    assert_eq!(imported.key_algorithm(), KeyAlgorithm::Rsa2048);

    // Encrypted input without a passphrase.
    let data = tempfile::tempdir().unwrap();
    let err = IssuingCa::import(data.path(), &inter_cert, &inter_key, Some(&root_cert), None)
        .unwrap_err();
    assert!(
        matches!(&err, CaError::PassphraseRequired(p) if p == &inter_key),
        "{err}"
    );
    assert!(!IssuingCa::exists(data.path()));

    // A chain that did not sign it.
    let (other_root, _) = openssl_self_signed(w, "OtherRoot", EC_P256, CA_EXTENSIONS, &[]);
    let pp = passphrase(PASSPHRASE);
    let err = IssuingCa::import(
        data.path(),
        &inter_cert,
        &inter_key,
        Some(&other_root),
        Some(&pp),
    )
    .unwrap_err();
    assert!(
        matches!(&err, CaError::ChainMismatch { path, position: 0 } if path == &other_root),
        "{err}"
    );
    assert!(!IssuingCa::exists(data.path()));

    let ca = IssuingCa::import(
        data.path(),
        &inter_cert,
        &inter_key,
        Some(&root_cert),
        Some(&pp),
    )
    .unwrap();
    assert_eq!(ca.key_algorithm(), KeyAlgorithm::Rsa2048);
    assert_eq!(ca.chain_der().len(), 2);
    for alg in [
        SignatureAlgorithm::Sha256WithRsaEncryption,
        SignatureAlgorithm::Sha384WithRsaEncryption,
    ] {
        let sig = ca.sign(alg, b"tbs").unwrap();
        verify_with_cert(ca.certificate_der(), alg, b"tbs", &sig);
    }
    assert!(matches!(
        ca.sign(SignatureAlgorithm::EcdsaWithSha256, b"tbs"),
        Err(CaError::AlgorithmMismatch { .. })
    ));
    // Stored encrypted with the passphrase; root.crt stored since the chain ends in a root.
    let stored = std::fs::read_to_string(ca_file(data.path(), "issuing.key")).unwrap();
    assert!(stored.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let ca_dir = data.path().join("ca");
    openssl(
        &ca_dir,
        &[
            "pkey",
            "-in",
            "issuing.key",
            "-passin",
            &pass,
            "-check",
            "-noout",
        ],
    );
    let out = openssl(
        &ca_dir,
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "root.crt",
            "issuing.crt",
        ],
    );
    assert_eq!(out.trim(), "issuing.crt: OK");
    assert!(matches!(
        IssuingCa::load(data.path(), None),
        Err(CaError::PassphraseRequired(_))
    ));
    assert_same(&ca, &IssuingCa::load(data.path(), Some(&pp)).unwrap());
}

#[test]
fn import_rejects_non_ca_certificates() {
    if !openssl_available() {
        eprintln!("skipped: openssl not found on PATH");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let data = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], NotCaReason); 2] = [
        (
            "Leaf",
            &["basicConstraints=critical,CA:FALSE"],
            NotCaReason::CaFlagFalse,
        ),
        (
            "NoCertSign",
            &[
                "basicConstraints=critical,CA:TRUE",
                "keyUsage=critical,digitalSignature",
            ],
            NotCaReason::KeyCertSignMissing,
        ),
    ];
    for (name, extensions, expected) in cases {
        let (cert, key) = openssl_self_signed(w, name, EC_P256, extensions, &[]);
        let err = IssuingCa::import(data.path(), &cert, &key, None, None).unwrap_err();
        assert!(
            matches!(&err, CaError::NotCa { path, reason } if path == &cert && *reason == expected),
            "{name}: {err}"
        );
    }
    // A certificate with no basicConstraints at all (empty extension section).
    std::fs::write(
        w.join("bare.cnf"),
        "[req]\ndistinguished_name=dn\nx509_extensions=none\n[dn]\n[none]\nsubjectKeyIdentifier=hash\n",
    )
    .unwrap();
    let (cert, key) = openssl_self_signed(w, "Bare", EC_P256, &[], &["-config", "bare.cnf"]);
    let err = IssuingCa::import(data.path(), &cert, &key, None, None).unwrap_err();
    assert!(
        matches!(
            err,
            CaError::NotCa {
                reason: NotCaReason::BasicConstraintsMissing,
                ..
            }
        ),
        "{err}"
    );
    assert!(!IssuingCa::exists(data.path()));
}

#[test]
fn import_rejects_a_mismatched_key() {
    if !openssl_available() {
        eprintln!("skipped: openssl not found on PATH");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (cert, _) = openssl_self_signed(work.path(), "One", EC_P256, CA_EXTENSIONS, &[]);
    let (_, other_key) = openssl_self_signed(work.path(), "Two", EC_P256, CA_EXTENSIONS, &[]);
    let data = tempfile::tempdir().unwrap();
    let err = IssuingCa::import(data.path(), &cert, &other_key, None, None).unwrap_err();
    assert!(
        matches!(&err, CaError::KeyMismatch { certificate, key } if certificate == &cert && key == &other_key),
        "{err}"
    );
    assert!(!IssuingCa::exists(data.path()));
}

#[test]
fn import_accepts_traditional_key_formats_and_computes_a_missing_ski() {
    if !openssl_available() {
        eprintln!("skipped: openssl not found on PATH");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // P-384 CA without a subjectKeyIdentifier, key converted to SEC1 "EC PRIVATE KEY".
    let (cert, _) = openssl_self_signed(
        w,
        "NoSki",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-noenc",
        ],
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign",
            "subjectKeyIdentifier=none",
            "authorityKeyIdentifier=none",
        ],
        &[],
    );
    openssl(w, &["ec", "-in", "NoSki.key", "-out", "NoSki.sec1.key"]);
    let sec1 = w.join("NoSki.sec1.key");
    assert!(std::fs::read_to_string(&sec1)
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    let parsed = read_cert(&cert);
    let has_ski = parsed
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .any(|e| e.extn_id == ObjectIdentifier::new_unwrap("2.5.29.14"));
    let data = tempfile::tempdir().unwrap();
    let ca = IssuingCa::import(data.path(), &cert, &sec1, None, None).unwrap();
    assert_eq!(ca.key_algorithm(), KeyAlgorithm::EcP384);
    let bits = parsed
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    assert!(!has_ski, "openssl was asked for no subjectKeyIdentifier");
    assert_eq!(ca.subject_key_identifier(), Sha1::digest(bits).as_slice());
    let sig = ca
        .sign(SignatureAlgorithm::EcdsaWithSha384, b"tbs")
        .unwrap();
    verify_with_cert(
        ca.certificate_der(),
        SignatureAlgorithm::EcdsaWithSha384,
        b"tbs",
        &sig,
    );
    // The stored copy is PKCS#8.
    let stored = std::fs::read_to_string(ca_file(data.path(), "issuing.key")).unwrap();
    assert!(stored.starts_with("-----BEGIN PRIVATE KEY-----"));

    // PKCS#1 "RSA PRIVATE KEY".
    let (cert, _) = openssl_self_signed(
        w,
        "Rsa",
        &["-newkey", "rsa:3072", "-noenc"],
        CA_EXTENSIONS,
        &[],
    );
    openssl(
        w,
        &[
            "rsa",
            "-in",
            "Rsa.key",
            "-traditional",
            "-out",
            "Rsa.pkcs1.key",
        ],
    );
    let pkcs1 = w.join("Rsa.pkcs1.key");
    assert!(std::fs::read_to_string(&pkcs1)
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));
    let data = tempfile::tempdir().unwrap();
    let ca = IssuingCa::import(data.path(), &cert, &pkcs1, None, None).unwrap();
    assert_eq!(ca.key_algorithm(), KeyAlgorithm::Rsa3072);
}

#[test]
fn import_rejects_unsupported_keys() {
    if !openssl_available() {
        eprintln!("skipped: openssl not found on PATH");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_self_signed(
        work.path(),
        "P521",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
            "-noenc",
        ],
        CA_EXTENSIONS,
        &[],
    );
    let err = IssuingCa::import(data.path(), &cert, &key, None, None).unwrap_err();
    assert!(matches!(err, CaError::UnsupportedCurve { .. }), "{err}");
    let (cert, key) = openssl_self_signed(
        work.path(),
        "Ed",
        &["-newkey", "ed25519", "-noenc"],
        CA_EXTENSIONS,
        &[],
    );
    let err = IssuingCa::import(data.path(), &cert, &key, None, None).unwrap_err();
    assert!(
        matches!(err, CaError::UnsupportedKeyAlgorithm { .. }),
        "{err}"
    );
    // A file without a key.
    let err = IssuingCa::import(data.path(), &cert, &cert, None, None).unwrap_err();
    assert!(
        matches!(
            err,
            CaError::PemMissing {
                expected: "PRIVATE KEY",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn pem_blocks_skip_surrounding_text() {
    let dir = tempfile::tempdir().unwrap();
    let ca = init_with(dir.path(), KeyAlgorithm::EcP256, None);
    let text = format!("subject=whatever\n{}\ntrailing text\n", ca.chain_pem());
    let certs = x509::pem_certificates(&text, Path::new("t")).unwrap();
    assert_eq!(certs, ca.chain_der());
    let err = x509::pem_certificates("no pem here", Path::new("t")).unwrap_err();
    assert!(matches!(err, CaError::PemMissing { .. }));
    let truncated = &ca.chain_pem()[..100];
    let err = x509::pem_certificates(truncated, Path::new("t")).unwrap_err();
    assert!(matches!(err, CaError::Pem { .. }), "{err}");
}

#[test]
fn validity_years_handle_leap_days() {
    use time::macros::datetime;
    assert_eq!(
        years_after(datetime!(2024-02-29 12:00 UTC), 1).unwrap(),
        datetime!(2025-02-28 12:00 UTC)
    );
    assert_eq!(
        years_after(datetime!(2024-02-29 12:00 UTC), 4).unwrap(),
        datetime!(2028-02-29 12:00 UTC)
    );
    assert_eq!(
        years_after(datetime!(2026-11-23 05:00 UTC), 20).unwrap(),
        datetime!(2046-11-23 05:00 UTC)
    );
}

#[test]
fn unfinished_writes_are_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept");
    let dropped = dir.path().join("dropped");
    let mut files = NewFiles::new();
    files.write(&kept, b"x", KEY_FILE_MODE).unwrap();
    files.commit(dir.path()).unwrap();
    let mut files = NewFiles::new();
    files.write(&dropped, b"y", KEY_FILE_MODE).unwrap();
    let err = files.write(&kept, b"z", KEY_FILE_MODE).unwrap_err();
    assert!(
        matches!(&err, CaError::AlreadyExists(p) if p == &kept),
        "{err}"
    );
    drop(files);
    assert!(!dropped.exists(), "uncommitted file removed");
    assert_eq!(std::fs::read(&kept).unwrap(), b"x", "never overwritten");
}
