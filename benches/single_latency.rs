//! Single-device issuance latency, in-process, on the ECC device profile, two ways:
//! - warm: [`batch::Station::issue`] on an open station (key, serial intent, sign, PKCS#12,
//!   ZIP entry, certificate recorded), what a factory line's flashing station waits for;
//! - cold: one `batch::issue` of a single-certificate batch per device (validate, record the
//!   batch, key, sign, PKCS#12, ZIP written, fsynced and renamed, batch finished).
//!
//! Warm: `CERTMILL_LATENCY_ROUNDS` rounds (default 3) of `CERTMILL_LATENCY_CALLS` calls
//! (default 2,000) on one station, each round right after its own measurement of the
//! per-device cost at the ceiling (one core: t_keygen + t_sign + 10240 × t_c from
//! `openssl speed`; skipped without openssl). Prints each round's median, p90, p99 and max and
//! its p99 as a multiple of that cost, then the median of the rounds' multiples: this VM's
//! speed drifts by 20–30% within minutes, so one round is one sample. Cold: the same
//! quantiles over `CERTMILL_LATENCY_COLD_CALLS` calls (default 200).
//! `cargo bench --bench single_latency`.

use certmill::batch::{self, BatchInput, BatchOptions, ProgressStyle, Station};
use certmill::bench::ceiling;
use certmill::ca::{CaInitOptions, IssuingCa};
use certmill::pkcs12::{Pkcs12Options, Pkcs12Password};
use certmill::profile::{CompileOptions, Profile};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn main() {
    let setting = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(default)
    };
    let calls = setting("CERTMILL_LATENCY_CALLS", 2000);
    let rounds = setting("CERTMILL_LATENCY_ROUNDS", 3);
    let cold_calls = setting("CERTMILL_LATENCY_COLD_CALLS", 200);
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
        issuer: None,
        on_created: None,
        keypairs: None,
        limits: Default::default(),
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
        (calls * rounds) as u64 + 50,
        options("station".into(), BTreeMap::new()),
    )
    .expect("station");
    for i in 0..50 {
        station.issue(&device(60_000 + i)).expect("warm-up");
    }
    let mut multiples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let per_device_at_ceiling = per_device_at_ceiling();
        let mut warm = Vec::with_capacity(calls);
        for i in 0..calls {
            let values = device(round * calls + i);
            let started = Instant::now();
            let issued = station.issue(&values).expect("issue");
            warm.push(started.elapsed());
            std::hint::black_box(issued);
        }
        let p99 = report(
            &format!("warm (Station::issue), round {} of {rounds}", round + 1),
            calls,
            warm,
        );
        match per_device_at_ceiling {
            Some(cost) => {
                let multiple = p99.as_secs_f64() / cost.as_secs_f64();
                multiples.push(multiple);
                println!(
                    "  per-device cost at the ceiling {:.3} ms (one core, openssl speed, right before this round): p99 = {multiple:.2}x it",
                    cost.as_secs_f64() * 1e3,
                );
            }
            None => {
                println!("  per-device cost at the ceiling: not measured (openssl speed failed)")
            }
        }
    }
    station.close(dir.path()).expect("close");
    if !multiples.is_empty() {
        multiples.sort_by(f64::total_cmp);
        println!(
            "warm p99 ÷ per-device cost at the ceiling: median {:.2}x over {} rounds (range {:.2}–{:.2}x)",
            multiples[multiples.len() / 2],
            multiples.len(),
            multiples[0],
            multiples[multiples.len() - 1],
        );
    }

    let mut cold = Vec::with_capacity(cold_calls);
    for i in 0..cold_calls {
        let opts = options(format!("single-{i}"), device(i));
        let started = Instant::now();
        batch::issue(dir.path(), &ca, &profile, &BatchInput::Single, &opts).expect("issue");
        cold.push(started.elapsed());
    }
    report(
        "cold (a single-certificate batch per device)",
        cold_calls,
        cold,
    );
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
