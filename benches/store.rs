//! The store's cost per device, as the batch pipeline pays it: serial intents reserved one
//! chunk at a time, then the chunk's certificates recorded (with their audit entries).
//!
//! `cargo bench --bench store [-- DEVICES]` prints microseconds per device for each step.
//! With `CERTMILL_BENCH_POSTGRES` set to a PostgreSQL URL it runs against that server instead
//! (`certmill::store::use_postgres`); the CPU time is then only the client's, so the wall time
//! is printed too.
//! The pipeline runs these on its reserver and writer threads, beside the workers, so on a
//! 2-core machine every microsecond here is taken from key generation, signing and PKCS#12.

use certmill::store::{CertificateRecord, NewBatch, Store};
use std::time::Duration;

const CHUNK: usize = 512;

/// On-CPU time of this thread (Linux schedstat, nanoseconds): steady while other processes
/// compete for the cores, unlike wall time.
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

fn main() {
    let devices: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    if let Ok(url) = std::env::var("CERTMILL_BENCH_POSTGRES") {
        certmill::store::use_postgres(&url);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(dir.path()).expect("store");
    let issuer = store
        .register_issuer(b"bench issuer DER", "CN=Bench CA")
        .expect("issuer");
    let batch = store
        .create_batch(&NewBatch {
            batch_name: "bench",
            profile_name: "ecc-device",
            kind: "GENERATOR",
            size: devices as u64,
            issuer,
            parameters_json: "{}",
            output_path: "/dev/null",
        })
        .expect("batch");
    let der = vec![0x30; 480];
    let (mut reserving, mut recording) = (Duration::ZERO, Duration::ZERO);
    let wall = std::time::Instant::now();
    let mut row = 0u64;
    while (row as usize) < devices {
        let n = CHUNK.min(devices - row as usize);
        let serials: Vec<Vec<u8>> = (0..n)
            .map(|_| certmill::batch::draw_serial(16).expect("serial"))
            .collect();
        let rows: Vec<(u64, &[u8])> = serials
            .iter()
            .enumerate()
            .map(|(i, s)| (row + i as u64, s.as_slice()))
            .collect();
        let started = cpu_time();
        store
            .reserve_serials(batch, issuer, &rows)
            .expect("reserve");
        reserving += cpu_time() - started;
        let records: Vec<CertificateRecord> = serials
            .iter()
            .enumerate()
            .map(|(i, serial)| CertificateRecord {
                device_id: certmill::store::new_device_id().expect("device id"),
                row: row + i as u64,
                common_name: format!("device-{:08}", row + i as u64),
                serial: serial.clone(),
                not_before: 1_700_000_000,
                not_after: 1_800_000_000,
                der: der.clone(),
                file_name: format!("device-{:08}.p12", row + i as u64),
            })
            .collect();
        let started = cpu_time();
        store.insert_certificates(batch, &records).expect("record");
        recording += cpu_time() - started;
        row += n as u64;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / devices as f64;
    println!(
        "store, {devices} devices in chunks of {CHUNK}, CPU time: reserve {:.1} µs/device, record {:.1} µs/device, total {:.1} µs/device",
        per(reserving),
        per(recording),
        per(reserving + recording)
    );
    println!(
        "wall time {:.1} µs/device (includes building the records)",
        per(wall.elapsed())
    );
}
