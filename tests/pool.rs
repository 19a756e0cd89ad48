//! The keypair pool in a real batch: every PKCS#12 holds a key that matches its certificate,
//! no key is used twice, and the keys came from the pool. openssl decides.

use crate::util::{mac_csv, tool, unzip, Fixture};
use certmill::batch::{self, BatchInput, BatchOptions, ProgressStyle};
use certmill::keys::{KeyAlgorithm, KeypairQueue};
use certmill::pkcs12::{Pkcs12Options, Pkcs12Password};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "pool-test-pass";
const DEVICES: usize = 5;

fn stdout(args: &[&str]) -> String {
    let out = tool("openssl", args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_batch_issued_from_a_warm_pool_has_matching_keys() {
    let f = Fixture::new();
    let ca = certmill::IssuingCa::init(&f.data(), &Default::default()).expect("CA");
    let profile =
        certmill::Profile::load("ecc-device", &Default::default()).expect("ecc-device profile");
    assert_eq!(profile.key_algorithm(), KeyAlgorithm::EcP256);
    let queue = KeypairQueue::start(&[(KeyAlgorithm::EcP256, DEVICES)], 1).expect("pool");
    assert!(queue.wait_until_full(Duration::from_secs(60)));

    let csv = f.write("devices.csv", &mac_csv(DEVICES, "", ""));
    let out = f.path("batch.zip");
    let options = BatchOptions {
        parameters: [("deviceClass".to_owned(), "Aircraft".to_owned())].into(),
        password: Some(Pkcs12Password::new(PASSWORD.into()).expect("password")),
        pkcs12: Pkcs12Options::default(),
        out: out.clone(),
        batch_name: "pooled".into(),
        threads: Some(2),
        progress: ProgressStyle::Quiet,
        authority: None,
        user: None,
        issuer: None,
        on_created: None,
        keypairs: Some(Arc::clone(&queue)),
        limits: Default::default(),
    };
    let report =
        batch::issue(&f.data(), &ca, &profile, &BatchInput::Csv(&csv), &options).expect("batch");
    assert_eq!(report.devices, DEVICES as u64);
    assert_eq!(report.failed, 0);
    // The pool was full with one key per device: every key came from it.
    let stats = queue.stats();
    assert_eq!(stats.served_from_pool(), DEVICES as u64, "{stats:?}");
    assert_eq!(stats.generated_inline(), 0, "{stats:?}");

    let dir = f.path("out");
    let names = unzip(&out, &dir);
    let p12s: Vec<&String> = names.iter().filter(|n| n.ends_with(".p12")).collect();
    assert_eq!(p12s.len(), DEVICES);
    let mut public_keys = Vec::new();
    for name in p12s {
        let p12 = dir.join(name);
        let p12 = p12.to_str().unwrap();
        let pass = format!("pass:{PASSWORD}");
        let key = f.write(
            "key.pem",
            &stdout(&["pkcs12", "-in", p12, "-passin", &pass, "-nocerts", "-nodes"]),
        );
        let cert = f.write(
            "cert.pem",
            &stdout(&[
                "pkcs12", "-in", p12, "-passin", &pass, "-nokeys", "-clcerts",
            ]),
        );
        let from_key = stdout(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
        let from_cert = stdout(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"]);
        assert!(from_key.contains("BEGIN PUBLIC KEY"), "{from_key}");
        assert_eq!(from_key, from_cert, "{name}: key and certificate disagree");
        public_keys.push(from_key);
    }
    public_keys.sort();
    public_keys.dedup();
    assert_eq!(public_keys.len(), DEVICES, "a key was used twice");
}

/// A malformed `CERTMILL_KEYPAIR_QUEUE` stops `certmill serve` before anything starts, with the
/// entry named and the exit code of refused input.
#[test]
fn serve_refuses_a_malformed_keypair_queue() {
    let f = Fixture::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certmill"))
        .arg("--data")
        .arg(f.data())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CERTMILL_KEYPAIR_QUEUE", "RSA:2048=8,RSA:1024=4")
        .output()
        .expect("run certmill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("RSA:1024=4"), "{stderr}");
    assert!(stderr.contains("unknown algorithm"), "{stderr}");
    assert!(!f.data().join("ca").exists(), "a CA was created");
}
