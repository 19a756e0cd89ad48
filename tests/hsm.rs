//! CA keys in a PKCS#11 token: SoftHSM2 (Debian `softhsm2`, installed by .ci/run) holds the
//! keys; a batch, a CRL and an OCSP response signed through it are checked by openssl.

use crate::server::{Body, Server};
use crate::util::{openssl as openssl_ok, unzip, Fixture};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4321-user-pin";

/// A SoftHSM2 configuration with its own token directory and one token labelled `label`.
fn token(f: &Fixture, label: &str) -> PathBuf {
    assert!(
        Path::new(MODULE).exists(),
        "{MODULE} is missing: install the Debian package softhsm2 (see .ci/run)"
    );
    let tokens = f.path("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = f.path("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            "8765-so-pin",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util (Debian package softhsm2)");
    assert!(
        out.status.success(),
        "softhsm2-util: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}

/// `certmill --data <dir>/data ARGS` with the token's configuration and the PIN in a file.
fn certmill(f: &Fixture, conf: &Path, args: &[&str]) -> Output {
    certmill_in(f, conf, &f.data(), args)
}

/// [`certmill`] on another data directory.
fn certmill_in(f: &Fixture, conf: &Path, data: &Path, args: &[&str]) -> Output {
    let pin_file = f.write("pin.txt", &format!("{PIN}\n"));
    Command::new(env!("CARGO_BIN_EXE_certmill"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("CERTMILL_DATA")
        .env_remove("CERTMILL_PKCS11_PIN")
        .env_remove("CERTMILL_CA_PASSPHRASE")
        .env("SOFTHSM2_CONF", conf)
        .env("CERTMILL_PKCS11_PIN_FILE", &pin_file)
        .env("CERTMILL_BASE_URL", "http://ca.certmill.test")
        .current_dir(f.dir.path())
        .output()
        .expect("run certmill")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issues one device of `profile` with the CA in `data` (key in the token), and checks its
/// certificate with `openssl verify` against that CA's chain; returns the certificate.
fn issue_one(
    f: &Fixture,
    conf: &Path,
    data: &Path,
    profile: &str,
    mac: &str,
    tag: &str,
) -> PathBuf {
    let csv = f.write(&format!("{tag}.csv"), &format!("macAddress\n{mac}\n"));
    let password = f.write("pw.txt", "hsm-batch-1\n");
    let zip = f.path(&format!("{tag}.zip"));
    ok(
        certmill_in(
            f,
            conf,
            data,
            &[
                "issue",
                "--profile",
                profile,
                "--csv",
                csv.to_str().unwrap(),
                "--param",
                "deviceClass=Aircraft",
                "--password-file",
                password.to_str().unwrap(),
                "--out",
                zip.to_str().unwrap(),
            ],
        ),
        "issue with the token's key",
    );
    let dir = f.path(&format!("{tag}-unzipped"));
    unzip(&zip, &dir);
    let leaf = f.path(&format!("{tag}-leaf.pem"));
    openssl_ok(&[
        "pkcs12",
        "-in",
        dir.join(format!("{}.p12", mac.replace(':', "-")))
            .to_str()
            .unwrap(),
        "-passin",
        "pass:hsm-batch-1",
        "-clcerts",
        "-nokeys",
        "-out",
        leaf.to_str().unwrap(),
    ]);
    // The chain the batch carries: its signer's, up to the root.
    let chain = dir.join("chain.pem");
    let verified = openssl_ok(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        chain.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    assert!(verified.contains(": OK"), "{verified}");
    leaf
}

/// Inits a CA in the token, issues a device of `profile` and checks them and a CRL with
/// openssl; returns the first device's certificate.
fn issue_and_verify(f: &Fixture, conf: &Path, algorithm: &str, profile: &str) -> PathBuf {
    let out = ok(
        certmill(
            f,
            conf,
            &[
                "ca",
                "init",
                "--algorithm",
                algorithm,
                "--pkcs11-module",
                MODULE,
                "--token",
                "certmill-ca",
                "--key-label",
                "issuing-1",
            ],
        ),
        "ca init in the token",
    );
    assert!(out.contains("created"), "{out}");
    let ca = f.data().join("ca");
    assert!(ca.join("pkcs11.json").exists());
    assert!(
        !ca.join("issuing.key").exists() && !ca.join("root.key").exists(),
        "no key files"
    );
    let leaf = issue_one(f, conf, &f.data(), profile, "00:1A:2B:3C:9A:01", "hsm");
    let chain = ca.join("chain.pem");
    ok(
        certmill(f, conf, &["crl", "issue"]),
        "crl issue with the token's key",
    );
    let crl = f.data().join("crl/issuer-1.crl");
    let text = openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-noout",
        "-verify",
        "-CAfile",
        chain.to_str().unwrap(),
    ]);
    assert!(text.contains("verify OK"), "{text}");
    leaf
}

#[test]
fn an_ecc_ca_in_softhsm_issues_batches_crls_and_ocsp_answers() {
    let f = fixture!();
    let conf = token(&f, "certmill-ca");
    let leaf = issue_and_verify(&f, &conf, "EC:P-256", "ecc-device");

    // Without the PIN the CA cannot load, and the error says how to give it.
    let out = Command::new(env!("CARGO_BIN_EXE_certmill"))
        .arg("--data")
        .arg(f.data())
        .args(["ca", "show"])
        .env_remove("CERTMILL_PKCS11_PIN")
        .env_remove("CERTMILL_PKCS11_PIN_FILE")
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CERTMILL_PKCS11_PIN"));
    // A wrong PIN is refused by the token.
    let wrong = f.write("wrong.pin", "0000\n");
    let out = Command::new(env!("CARGO_BIN_EXE_certmill"))
        .arg("--data")
        .arg(f.data())
        .args(["ca", "show"])
        .env("CERTMILL_PKCS11_PIN_FILE", &wrong)
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("logging in") && !stderr.contains("0000"),
        "{stderr}"
    );

    // The server signs its OCSP responder certificate with the token's key.
    let pin_file = f.write("pin.txt", &format!("{PIN}\n"));
    let server = Server::start(
        &f,
        &[
            ("SOFTHSM2_CONF", conf.to_str().unwrap()),
            ("CERTMILL_PKCS11_PIN_FILE", pin_file.to_str().unwrap()),
        ],
    );
    let chain = f.data().join("ca/chain.pem");
    let issuing = f.data().join("ca/issuing.crt");
    let answer = openssl_ok(&[
        "ocsp",
        "-issuer",
        issuing.to_str().unwrap(),
        "-CAfile",
        chain.to_str().unwrap(),
        "-cert",
        leaf.to_str().unwrap(),
        "-url",
        &format!("{}/ocsp", server.base),
    ]);
    assert!(
        answer.contains(": good") && answer.contains("Response verify OK"),
        "{answer}"
    );
    let r = server.call(
        "GET",
        &crate::util::crl_path_of(&f.data().join("ca").join("issuing.crt")),
        None,
        Body::Empty,
        &[],
    );
    assert_eq!(r.status, 200);
    drop(server);

    // The same token key imported into another data directory (a maker's existing HSM key):
    // its batches verify against the same chain; the root's key does not match the issuing
    // certificate and is refused by name.
    let other = f.path("imported");
    let import = |label: &str| {
        certmill_in(
            &f,
            &conf,
            &other,
            &[
                "ca",
                "import",
                "--cert",
                chain.to_str().unwrap(),
                "--pkcs11-module",
                MODULE,
                "--token",
                "certmill-ca",
                "--key-label",
                label,
            ],
        )
    };
    let mismatch = import("issuing-1-root");
    assert!(!mismatch.status.success());
    let stderr = String::from_utf8_lossy(&mismatch.stderr);
    assert!(
        stderr.contains("pkcs11:token=certmill-ca;object=issuing-1-root"),
        "{stderr}"
    );
    ok(import("issuing-1"), "ca import of the token key");
    assert!(!other.join("ca/issuing.key").exists() && other.join("ca/pkcs11.json").exists());
    issue_one(
        &f,
        &conf,
        &other,
        "ecc-device",
        "00:1A:2B:3C:9B:01",
        "imported",
    );
}

#[test]
fn an_rsa_ca_in_softhsm_issues_rsa_devices() {
    let f = fixture!();
    let conf = token(&f, "certmill-ca");
    let first = issue_and_verify(&f, &conf, "RSA:2048", "rsa-device");

    // Rotating generates the next signer's key in the same token (no key file anywhere) and
    // certifies it with the root key in the token; renewing certifies the same token key again.
    let rotated = ok(
        certmill(&f, &conf, &["ca", "rotate"]),
        "rotation in the token",
    );
    assert!(rotated.contains("now signs with"), "{rotated}");
    let leaf = issue_one(
        &f,
        &conf,
        &f.data(),
        "rsa-device",
        "00:1A:2B:3C:9A:02",
        "rotated",
    );
    let issuer =
        |cert: &Path| openssl_ok(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-issuer"]);
    assert!(issuer(&leaf).contains("Issuing CA 2"), "{}", issuer(&leaf));
    assert!(
        issuer(&first).contains("Issuing CA 1"),
        "{}",
        issuer(&first)
    );
    let signers = f.data().join("issuers/default");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&signers)
        .expect("the rotated signer's directory")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].join("pkcs11.json").exists() && !dirs[0].join("issuing.key").exists());
    let label = std::fs::read_to_string(dirs[0].join("pkcs11.json")).unwrap();
    assert!(label.contains("issuing-1-"), "{label}");
    let pubkey =
        |cert: &Path| openssl_ok(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"]);
    let before = pubkey(&dirs[0].join("issuing.crt"));
    ok(
        certmill(&f, &conf, &["ca", "renew", "--years", "2"]),
        "renewal in the token",
    );
    assert_eq!(
        pubkey(&dirs[0].join("issuing.crt")),
        before,
        "a renewal keeps the token key"
    );
    issue_one(
        &f,
        &conf,
        &f.data(),
        "rsa-device",
        "00:1A:2B:3C:9A:03",
        "renewed",
    );
}
