//! Tests of the chunk queue (format version 9): plans, claims, leases, finishing, assembly.

use super::tests::{fixture, new_batch, open, records, serial, Fixture, T0};
use super::*;

fn lease_expired_clock() -> i64 {
    T0 + 3_600
}

fn plans(size: u64, per_chunk: u64) -> Vec<ChunkPlan> {
    (0..size.div_ceil(per_chunk))
        .map(|i| ChunkPlan {
            first_row: i * per_chunk + 1,
            rows: per_chunk.min(size - i * per_chunk),
            names: Vec::new(),
        })
        .collect()
}

fn entries(records: &[CertificateRecord]) -> Vec<PartEntry> {
    records
        .iter()
        .enumerate()
        .map(|(i, record)| PartEntry {
            row: record.row,
            offset: i as u64 * 100,
            size: 60,
            crc32: 0xdead_beef,
            sha256: [record.row as u8; 32],
        })
        .collect()
}

/// A chunked batch of `size` rows in chunks of `per_chunk`, with a sealed password.
fn chunked(f: &Fixture, size: u64, per_chunk: u64) -> BatchId {
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, size))
        .expect("batch");
    f.store
        .plan_chunks(
            batch,
            r#"{"kind":"GENERATOR"}"#,
            Some(b"sealed"),
            &plans(size, per_chunk),
        )
        .expect("plan");
    batch
}

fn finish_part(store: &Store, claimed: &ClaimedChunk, tag: u8) -> Finished {
    let rows = claimed.first_row..claimed.first_row + claimed.rows;
    let records = records(tag, rows);
    store
        .finish_chunk(
            &claimed.lease,
            &ChunkOutput {
                part_key: &format!("part-{}-{}", claimed.lease.idx, claimed.lease.attempt),
                part_size: 100 * claimed.rows,
                records: &records,
                entries: &entries(&records),
                failures: &[],
            },
        )
        .expect("finish")
}

#[test]
fn a_plan_must_cover_the_batch_exactly() {
    let f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 10))
        .expect("batch");
    for (bad, why) in [
        (plans(9, 5), "cover 9 rows of 10"),
        (plans(11, 5), "cover 11 rows of 10"),
        (
            vec![
                ChunkPlan {
                    first_row: 1,
                    rows: 5,
                    names: vec![],
                },
                ChunkPlan {
                    first_row: 7,
                    rows: 4,
                    names: vec![],
                },
            ],
            "expected row 6",
        ),
    ] {
        match f.store.plan_chunks(batch, "{}", None, &bad) {
            Err(StoreError::InvalidChunkPlan { reason, .. }) => {
                assert!(reason.contains(why), "{reason}")
            }
            other => panic!("expected an invalid plan, got {other:?}"),
        }
    }
    assert!(!f.store.is_chunked(batch).expect("chunked"));
    assert!(f.store.claim_chunk("node-a", 60).expect("claim").is_none());
}

#[test]
fn nodes_claim_parts_in_order_and_the_assembly_last() {
    let f = fixture();
    let batch = chunked(&f, 25, 10);
    assert!(f.store.is_chunked(batch).expect("chunked"));
    let a = f
        .store
        .claim_chunk("node-a", 60)
        .expect("claim")
        .expect("a chunk");
    let b = f
        .store
        .claim_chunk("node-b", 60)
        .expect("claim")
        .expect("a chunk");
    let c = f
        .store
        .claim_chunk("node-c", 60)
        .expect("claim")
        .expect("a chunk");
    assert_eq!(
        [
            (a.lease.idx, a.first_row, a.rows),
            (b.lease.idx, b.first_row, b.rows),
            (c.lease.idx, c.first_row, c.rows)
        ],
        [(0, 1, 10), (1, 11, 10), (2, 21, 5)]
    );
    assert_eq!(a.kind, ChunkKind::Part);
    assert_eq!(a.sealed_password.as_deref(), Some(&b"sealed"[..]));
    assert_eq!(a.spec_json, r#"{"kind":"GENERATOR"}"#);
    // The assembly waits for every part.
    assert!(f.store.claim_chunk("node-d", 60).expect("claim").is_none());
    assert_eq!(finish_part(&f.store, &a, 1), Finished::Done);
    assert_eq!(finish_part(&f.store, &c, 1), Finished::Done);
    assert!(f.store.claim_chunk("node-d", 60).expect("claim").is_none());
    assert_eq!(f.store.chunk_progress(batch).expect("progress"), (2, 3));
    assert_eq!(finish_part(&f.store, &b, 1), Finished::Done);
    let assembly = f
        .store
        .claim_chunk("node-d", 60)
        .expect("claim")
        .expect("assembly");
    assert_eq!(assembly.kind, ChunkKind::Assemble);
    let parts = f.store.done_parts(batch).expect("parts");
    assert_eq!(
        parts
            .iter()
            .map(|p| (p.idx, p.key.as_str(), p.size))
            .collect::<Vec<_>>(),
        [
            (0, "part-0-1", 1000),
            (1, "part-1-1", 1000),
            (2, "part-2-1", 500)
        ]
    );
    assert!(f.store.chunked_layout(batch).expect("layout").is_none());
    assert_eq!(
        f.store
            .finish_assembly(
                &assembly.lease,
                ("tail", 900),
                BatchStatus::ReadyForDownload
            )
            .expect("assemble"),
        Finished::Done
    );
    let row = f.store.batch(batch).expect("read").expect("batch");
    assert_eq!(
        (row.status, row.issued, row.failed),
        (BatchStatus::ReadyForDownload, 25, 0)
    );
    let layout = f
        .store
        .chunked_layout(batch)
        .expect("layout")
        .expect("assembled");
    assert_eq!(layout.spec_json, r#"{"kind":"GENERATOR"}"#);
    assert_eq!(layout.tail, ("tail".to_owned(), 900));
    assert_eq!(layout.parts, parts);
    let sealed: Option<Vec<u8>> = f
        .store
        .connection
        .query_row(
            "SELECT sealed_password FROM batch_work WHERE batch_id = ?1",
            [batch.0],
            |r| r.get(0),
        )
        .expect("work row");
    assert_eq!(
        sealed, None,
        "the sealed password is deleted when the batch ends"
    );
    assert!(f.store.claim_chunk("node-a", 60).expect("claim").is_none());
    assert!(f.store.verify_audit_chain().expect("chain") > 25);
}

#[test]
fn a_dead_nodes_chunk_is_redone_and_its_late_finish_is_lost() {
    let f = fixture();
    let batch = chunked(&f, 10, 10);
    let dead = f
        .store
        .claim_chunk("node-a", 60)
        .expect("claim")
        .expect("chunk");
    // Within the lease nobody else gets it, and the holder renews.
    assert!(f.store.claim_chunk("node-b", 60).expect("claim").is_none());
    assert!(f.store.renew_lease(&dead.lease, 60).expect("renew"));
    // An hour later the lease has run out: node-b takes it over as attempt 2.
    let later = open(f.dir.path()).with_clock(lease_expired_clock);
    let redo = later
        .claim_chunk("node-b", 60)
        .expect("claim")
        .expect("expired chunk");
    assert_eq!(
        (redo.lease.idx, redo.lease.attempt, redo.lease.node.as_str()),
        (0, 2, "node-b")
    );
    // The first node wakes up: it can neither renew nor finish, and records nothing.
    assert!(!later.renew_lease(&dead.lease, 60).expect("renew"));
    assert_eq!(finish_part(&later, &dead, 1), Finished::Lost);
    assert_eq!(later.certificate_count(batch).expect("count"), 0);
    assert_eq!(finish_part(&later, &redo, 2), Finished::Done);
    assert_eq!(later.certificate_count(batch).expect("count"), 10);
    let rows = later.manifest_rows(batch, 0, 100).expect("rows");
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r
        .issued
        .as_ref()
        .is_some_and(|i| i.file_name.starts_with("device-2-"))));
}

#[test]
fn failures_are_in_the_manifest_rows_with_their_reason() {
    let f = fixture();
    let batch = chunked(&f, 4, 4);
    let claimed = f
        .store
        .claim_chunk("node-a", 60)
        .expect("claim")
        .expect("chunk");
    let issued = records(3, 1..3);
    let failures = [3u64, 4].map(|row| DeviceFailure {
        row,
        device_id: [row as u8; 16],
        reason: format!("row {row}: refused"),
    });
    f.store
        .finish_chunk(
            &claimed.lease,
            &ChunkOutput {
                part_key: "p",
                part_size: 200,
                records: &issued,
                entries: &entries(&issued),
                failures: &failures,
            },
        )
        .expect("finish");
    let page1 = f.store.manifest_rows(batch, 0, 3).expect("page 1");
    let page2 = f.store.manifest_rows(batch, 3, 3).expect("page 2");
    assert_eq!(page1.iter().map(|r| r.row).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(page2.iter().map(|r| r.row).collect::<Vec<_>>(), [4]);
    assert_eq!(page1[1].issued.as_ref().map(|i| i.entry.offset), Some(100));
    assert_eq!(page1[2].issued, None);
    assert_eq!(page1[2].reason.as_deref(), Some("row 3: refused"));
    let row = f.store.batch(batch).expect("read").expect("batch");
    assert_eq!((row.issued, row.failed), (2, 2));
}

#[test]
fn a_chunk_that_keeps_failing_breaks_its_batch() {
    let f = fixture();
    let batch = chunked(&f, 5, 5);
    for attempt in 1..=MAX_CHUNK_ATTEMPTS {
        let claimed = f
            .store
            .claim_chunk("node-a", 60)
            .expect("claim")
            .expect("chunk");
        assert_eq!(claimed.lease.attempt, attempt);
        f.store
            .release_chunk(&claimed.lease, "object store unreachable")
            .expect("release");
    }
    let row = f.store.batch(batch).expect("read").expect("batch");
    assert_eq!(row.status, BatchStatus::Broken);
    assert!(
        row.reason
            .as_deref()
            .is_some_and(|r| r.contains("object store unreachable")),
        "{:?}",
        row.reason
    );
    assert!(f.store.claim_chunk("node-a", 60).expect("claim").is_none());
}

#[test]
fn a_broken_chunked_csr_batch_voids_the_certificates_of_its_done_chunks() {
    let f = fixture();
    let batch = f
        .store
        .create_batch(&NewBatch {
            kind: "CSR",
            ..new_batch(f.issuer, 4)
        })
        .expect("batch");
    f.store
        .plan_chunks(batch, r#"{"kind":"CSR"}"#, None, &plans(4, 2))
        .expect("plan");
    let first = f
        .store
        .claim_chunk("node-a", 60)
        .expect("claim")
        .expect("chunk");
    assert_eq!(finish_part(&f.store, &first, 9), Finished::Done);
    assert_eq!(
        f.store
            .find_certificates(Some("device-9-1"), None)
            .expect("find")
            .len(),
        1
    );
    for _ in 1..=MAX_CHUNK_ATTEMPTS {
        let claimed = f
            .store
            .claim_chunk("node-a", 60)
            .expect("claim")
            .expect("chunk");
        assert_eq!(claimed.lease.idx, 1);
        f.store
            .release_chunk(&claimed.lease, "object store unreachable")
            .expect("release");
    }
    let row = f.store.batch(batch).expect("read").expect("batch");
    assert_eq!(row.status, BatchStatus::Broken);
    assert_eq!(row.issued, 0);
    // The first chunk's certificates were never delivered (no ZIP was assembled).
    assert!(f
        .store
        .find_certificates(Some("device-9-1"), None)
        .expect("find")
        .is_empty());
    let log = f.store.audit_log(batch).expect("audit");
    assert!(log
        .iter()
        .any(|e| e.kind == AuditKind::Voided && e.message.starts_with("2 certificates")));
}

#[test]
fn a_chunk_of_many_groups_records_every_row_in_order() {
    // 300 rows: two full multi-row statements and a remainder, for each of the tables.
    let f = fixture();
    let batch = chunked(&f, 300, 300);
    let claimed = f
        .store
        .claim_chunk("node-a", 60)
        .expect("claim")
        .expect("chunk");
    let rows = claimed.first_row..claimed.first_row + claimed.rows;
    let serials: Vec<(u64, Vec<u8>)> = rows.clone().map(|row| (row, serial(7, row))).collect();
    let borrowed: Vec<(u64, &[u8])> = serials.iter().map(|(r, s)| (*r, s.as_slice())).collect();
    f.store
        .reserve_serials(batch, f.issuer, &borrowed)
        .expect("reserve");
    assert_eq!(finish_part(&f.store, &claimed, 7), Finished::Done);
    assert_eq!(f.store.certificate_count(batch).expect("count"), 300);
    let manifest = f.store.manifest_rows(batch, 0, 1_000).expect("rows");
    assert_eq!(manifest.len(), 300);
    for (i, row) in manifest.iter().enumerate() {
        let issued = row.issued.as_ref().expect("issued");
        assert_eq!(row.row, i as u64 + 1);
        assert_eq!(issued.file_name, format!("device-7-{}.p12", i + 1));
        assert_eq!(issued.entry.offset, i as u64 * 100);
    }
    // Every reserved serial became a certificate: no intent is left open.
    assert!(f.store.serial_intents(batch).expect("intents").is_empty());
    assert_eq!(
        f.store.verify_audit_chain().expect("audit") as usize,
        300 + 1
    );
}

#[test]
fn concurrent_claims_never_share_a_chunk() {
    let f = fixture();
    chunked(&f, 40, 1);
    let claimed: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|n| {
                let dir = f.dir.path();
                scope.spawn(move || {
                    let store = open(dir);
                    let mut mine = Vec::new();
                    while let Some(chunk) =
                        store.claim_chunk(&format!("node-{n}"), 60).expect("claim")
                    {
                        mine.push(chunk.lease.idx);
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let mut all: Vec<u64> = claimed.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..40).collect::<Vec<_>>(),
        "each part claimed exactly once"
    );
}

#[test]
fn a_claim_does_not_queue_behind_the_write_lock_on_postgresql() {
    if test_postgres().is_none() {
        eprintln!("PostgreSQL only (SQLite has one lock for every write): skipped");
        return;
    }
    let f = fixture();
    chunked(&f, 10, 10);
    let writer = open(f.dir.path());
    let other_node = open(f.dir.path());
    let held = writer.connection.write_transaction().expect("write lock");
    let (sent, received) = std::sync::mpsc::channel();
    let claimer = std::thread::spawn(move || {
        let claim = other_node.claim_chunk("node-a", 60).map(|c| c.is_some());
        let _ = sent.send(claim);
    });
    // With the write lock held elsewhere, the claim still completes (it would wait for the
    // lock forever if it took it).
    let claimed = received
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the claim finished while the write lock was held");
    drop(held);
    claimer.join().expect("claimer");
    assert!(claimed.expect("claim"));
}

#[test]
fn a_chunk_given_back_keeps_its_attempts_and_a_skipped_batch_waits() {
    let f = fixture();
    let first = chunked(&f, 10, 10);
    let second = chunked(&f, 10, 10);
    // A misconfigured node claims and gives back more often than a chunk may fail: the
    // batch is not broken and the next claim is still the first attempt.
    for _ in 0..MAX_CHUNK_ATTEMPTS + 2 {
        let claimed = f
            .store
            .claim_chunk("node-unfit", 60)
            .expect("claim")
            .expect("chunk");
        assert_eq!((claimed.lease.batch, claimed.lease.attempt), (first, 1));
        f.store.give_back_chunk(&claimed.lease).expect("give back");
    }
    assert_eq!(
        f.store.batch(first).expect("batch").expect("row").status,
        BatchStatus::PendingIssue
    );
    // Passing over the first batch, the node gets the second one's chunk...
    let other = f
        .store
        .claim_chunk_except("node-unfit", 60, &[first])
        .expect("claim")
        .expect("chunk");
    assert_eq!(other.lease.batch, second);
    assert!(f
        .store
        .claim_chunk_except("node-unfit", 60, &[first, second])
        .expect("claim")
        .is_none());
    // ...while a healthy node still gets the first batch's chunk.
    let healthy = f
        .store
        .claim_chunk("node-b", 60)
        .expect("claim")
        .expect("chunk");
    assert_eq!((healthy.lease.batch, healthy.lease.attempt), (first, 1));
    // Giving back a chunk the node no longer holds changes nothing.
    f.store.give_back_chunk(&other.lease).expect("give back");
    f.store
        .give_back_chunk(&other.lease)
        .expect("give back twice");
    let again = f
        .store
        .claim_chunk("node-c", 60)
        .expect("claim")
        .expect("chunk");
    assert_eq!((again.lease.batch, again.lease.attempt), (second, 1));
}
