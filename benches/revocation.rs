//! Revocation at scale, through the real store and CA: a batch revoke of 100,000 certificates
//! (one transaction, one audit entry each), then a CRL of 1,000,000 entries streamed from the
//! store, signed and written.
//!
//! `cargo bench --bench revocation [-- BATCH CRL_ENTRIES]` (defaults 100000 1000000) prints
//! wall times and the process's peak RSS. The certificates are recorded as the batch writer
//! records them (`insert_certificates`, chunks of 4,096) with stand-in DER: revocation never
//! reads the DER.

use certmill::ca::{CaInitOptions, IssuingCa};
use certmill::revocation::service::{self, CrlSchedule};
use certmill::revocation::RevocationReason;
use certmill::store::{BatchId, BatchStatus, CertificateRecord, IssuerId, NewBatch, Store};
use std::time::Instant;

const CHUNK: u64 = 4096;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A downloaded batch of `size` certificates with fresh serials, all valid for a year.
fn batch(store: &mut Store, issuer: IssuerId, size: u64, tag: u8) -> BatchId {
    let batch = store
        .create_batch(&NewBatch {
            batch_name: "bench",
            profile_name: "ecc-device",
            kind: "GENERATOR",
            size,
            issuer,
            parameters_json: "{}",
            output_path: "/dev/null",
        })
        .expect("batch");
    let now = service::now_unix();
    let der = vec![0x30; 8];
    let mut row = 0u64;
    while row < size {
        let records: Vec<CertificateRecord> = (row..size.min(row + CHUNK))
            .map(|r| {
                let mut device_id = [tag; 16];
                device_id[8..].copy_from_slice(&r.to_be_bytes());
                CertificateRecord {
                    device_id,
                    row: r,
                    common_name: format!("device-{r}"),
                    serial: certmill::batch::draw_serial(16).expect("serial"),
                    not_before: now,
                    not_after: now + 365 * 86_400,
                    der: der.clone(),
                    file_name: format!("device-{r}.p12"),
                }
            })
            .collect();
        store.insert_certificates(batch, &records).expect("record");
        row += CHUNK;
    }
    store
        .finish_batch(batch, BatchStatus::ReadyForDownload)
        .expect("finish");
    store.mark_downloaded(batch).expect("download");
    batch
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let batch_size = numbers.next().unwrap_or(100_000);
    let crl_entries = numbers.next().unwrap_or(1_000_000).max(batch_size);
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = IssuingCa::init(dir.path(), &CaInitOptions::default()).expect("CA");
    let mut store = Store::open(dir.path()).expect("store");
    let issuer = store
        .register_issuer(ca.certificate_der(), &ca.describe())
        .expect("issuer");

    eprintln!("recording {batch_size} certificates ...");
    let first = batch(&mut store, issuer, batch_size, 1);
    let started = Instant::now();
    let revoked = store
        .revoke_batch(first, RevocationReason::KeyCompromise, "bench")
        .expect("revoke batch");
    let batch_revoke = started.elapsed();
    println!(
        "batch revoke: {revoked} certificates in {:.3} s ({:.0} per second), one transaction",
        batch_revoke.as_secs_f64(),
        revoked as f64 / batch_revoke.as_secs_f64()
    );

    if crl_entries > batch_size {
        eprintln!(
            "recording and revoking {} more ...",
            crl_entries - batch_size
        );
        let second = batch(&mut store, issuer, crl_entries - batch_size, 2);
        store
            .revoke_batch(second, RevocationReason::CessationOfOperation, "bench")
            .expect("revoke batch");
    }
    let before = peak_rss_mib();
    let started = Instant::now();
    let issued = service::issue_crl(
        dir.path(),
        &store,
        &ca,
        issuer,
        &CrlSchedule::default(),
        service::now_unix(),
    )
    .expect("CRL");
    let crl = started.elapsed();
    println!(
        "CRL: {} entries, {:.1} MiB, built, signed and written in {:.3} s; peak RSS {:.1} MiB \
         before the CRL, {:.1} MiB after",
        issued.entries,
        issued.bytes as f64 / (1024.0 * 1024.0),
        crl.as_secs_f64(),
        before,
        peak_rss_mib()
    );
}
