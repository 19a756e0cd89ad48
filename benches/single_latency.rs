//! Single-device issuance latency, in-process, as a factory station sees it: one
//! `batch::issue` of a single-certificate batch on the ECC device profile (validate, record,
//! key, sign, PKCS#12, ZIP written, fsynced and renamed, store updated), 1,000 calls.
//! Prints median, p90, p99 and max. `cargo bench --bench single_latency`.

use certmill::batch::{self, BatchInput, BatchOptions, ProgressStyle};
use certmill::ca::{CaInitOptions, IssuingCa};
use certmill::pkcs12::{Pkcs12Options, Pkcs12Password};
use certmill::profile::{CompileOptions, Profile};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn main() {
    let calls: usize = std::env::var("CERTMILL_LATENCY_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = IssuingCa::init(dir.path(), &CaInitOptions::default()).expect("CA");
    let profile = Profile::load("ecc-device", &CompileOptions::default()).expect("profile");
    let mut samples: Vec<Duration> = Vec::with_capacity(calls);
    for i in 0..calls {
        let mut parameters = BTreeMap::new();
        parameters.insert(
            "macAddress".to_owned(),
            format!("02:00:00:00:{:02X}:{:02X}", i >> 8, i & 0xff),
        );
        parameters.insert("deviceClass".to_owned(), "Surface Vehicle".to_owned());
        parameters.insert("years".to_owned(), "1".to_owned());
        let options = BatchOptions {
            parameters,
            password: Some(Pkcs12Password::new("station-password".into()).expect("password")),
            pkcs12: Pkcs12Options::default(),
            out: dir.path().join(format!("single-{i}.zip")),
            batch_name: format!("single-{i}"),
            threads: Some(1),
            progress: ProgressStyle::Quiet,
            authority: None,
            user: None,
            on_created: None,
            keypairs: None,
        };
        let started = Instant::now();
        batch::issue(dir.path(), &ca, &profile, &BatchInput::Single, &options).expect("issue");
        samples.push(started.elapsed());
    }
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "single-device issuance, ECC device profile, {calls} calls: median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
}
