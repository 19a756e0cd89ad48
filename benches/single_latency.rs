//! Single-device issuance latency, in-process, on the ECC device profile, two ways:
//! - warm: [`batch::Station::issue`] on an open station (key, serial intent, sign, PKCS#12,
//!   ZIP entry, certificate recorded), what a factory line's flashing station waits for;
//! - cold: one `batch::issue` of a single-certificate batch per device (validate, record the
//!   batch, key, sign, PKCS#12, ZIP written, fsynced and renamed, batch finished).
//!
//! 1,000 calls each (`CERTMILL_LATENCY_CALLS`). Prints median, p90, p99 and max, and the warm
//! p99 as a multiple of the per-device cost at the ceiling (one core: t_keygen + t_sign +
//! 10240 × t_c from `openssl speed`, measured right before the warm run; skipped without
//! openssl). `cargo bench --bench single_latency`.

use certmill::batch::{self, BatchInput, BatchOptions, ProgressStyle, Station};
use certmill::bench::ceiling;
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
    let options = |name: String, parameters: BTreeMap<String, String>| BatchOptions {
        parameters,
        password: Some(Pkcs12Password::new("station-password".into()).expect("password")),
        pkcs12: Pkcs12Options::default(),
        out: dir.path().join(format!("{name}.zip")),
        batch_name: name,
        threads: Some(1),
        progress: ProgressStyle::Quiet,
        authority: None,
        user: None,
        on_created: None,
        keypairs: None,
    };
    let device = |i: usize| {
        let mut values = BTreeMap::new();
        values.insert(
            "macAddress".to_owned(),
            format!("02:00:00:00:{:02X}:{:02X}", i >> 8, i & 0xff),
        );
        values.insert("deviceClass".to_owned(), "Surface Vehicle".to_owned());
        values.insert("years".to_owned(), "1".to_owned());
        values
    };

    let mut station = Station::open(
        dir.path(),
        &ca,
        &profile,
        calls as u64 + 50,
        options("station".into(), BTreeMap::new()),
    )
    .expect("station");
    for i in 0..50 {
        station.issue(&device(60_000 + i)).expect("warm-up");
    }
    let per_device_at_ceiling = per_device_at_ceiling();
    let mut warm = Vec::with_capacity(calls);
    for i in 0..calls {
        let values = device(i);
        let started = Instant::now();
        let issued = station.issue(&values).expect("issue");
        warm.push(started.elapsed());
        std::hint::black_box(issued);
    }
    station.close(dir.path()).expect("close");
    let p99 = report("warm (Station::issue)", calls, warm);
    match per_device_at_ceiling {
        Some(cost) => println!(
            "  per-device cost at the ceiling {:.3} ms (one core, openssl speed, this run): warm p99 = {:.2}x it",
            cost.as_secs_f64() * 1e3,
            p99.as_secs_f64() / cost.as_secs_f64()
        ),
        None => println!("  per-device cost at the ceiling: not measured (openssl speed failed)"),
    }

    let mut cold = Vec::with_capacity(calls);
    for i in 0..calls {
        let opts = options(format!("single-{i}"), device(i));
        let started = Instant::now();
        batch::issue(dir.path(), &ca, &profile, &BatchInput::Single, &opts).expect("issue");
        cold.push(started.elapsed());
    }
    report("cold (a single-certificate batch per device)", calls, cold);
}

/// t_keygen + t_sign + 10240 × t_c: one core's time per ECC device at the ceiling.
fn per_device_at_ceiling() -> Option<Duration> {
    let mut primitives = ceiling::Primitives::default();
    ceiling::measure_ecc(&mut primitives, true).ok()?;
    let at = ceiling::ecc_device(
        1,
        primitives.ecdh_p256_per_second?,
        primitives.ecdsa_p256_sign_per_second?,
        primitives.sha256_compression_ns? * 1e-9,
    );
    Some(Duration::from_secs_f64(at.seconds_per_device_per_core))
}

/// Prints the quantiles; returns p99.
fn report(what: &str, calls: usize, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "single-device issuance, ECC device profile, {what}, {calls} calls: median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
    at(0.99)
}
