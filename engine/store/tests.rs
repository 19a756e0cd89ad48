use super::*;

pub(super) const T0: i64 = 1_700_000_000;

fn fixed_clock() -> i64 {
    T0
}

pub(super) fn open(dir: &Path) -> Store {
    Store::open(dir)
        .expect("open store")
        .with_clock(fixed_clock)
}

fn store_dialect_is_sqlite() -> bool {
    test_postgres().is_none()
}

pub(super) fn new_batch(issuer: IssuerId, size: u64) -> NewBatch<'static> {
    NewBatch {
        batch_name: "line 3 morning",
        profile_name: "iot-ecc",
        kind: "GENERATOR",
        size,
        issuer,
        parameters_json: r#"{"MANUFACTURER_ID":"1020"}"#,
        output_path: "/var/lib/certmill/batches/1.zip",
    }
}

/// A record whose device id is unique per (`tag`, `row`).
fn record(tag: u8, row: u64, serial: &[u8]) -> CertificateRecord {
    let mut device_id = [tag; 16];
    device_id[8..].copy_from_slice(&row.to_be_bytes());
    CertificateRecord {
        device_id,
        row,
        common_name: format!("device-{tag}-{row}"),
        serial: serial.to_vec(),
        not_before: T0,
        not_after: T0 + 86_400,
        der: vec![0x30, 0x03, 0x02, 0x01, tag],
        file_name: format!("device-{tag}-{row}.p12"),
    }
}

/// A 16-octet serial unique per (`tag`, `row`), with its top bit set.
pub(super) fn serial(tag: u8, row: u64) -> Vec<u8> {
    let mut serial = vec![0x80 | tag; 8];
    serial.extend_from_slice(&row.to_be_bytes());
    serial
}

pub(super) fn records(tag: u8, rows: std::ops::Range<u64>) -> Vec<CertificateRecord> {
    rows.map(|row| record(tag, row, &serial(tag, row)))
        .collect()
}

/// True, with a note on stderr, when the store tests run on PostgreSQL
/// (`CERTMILL_TEST_POSTGRES`) and the caller tests what only SQLite has (`what`).
pub(crate) fn skip_on_postgres(what: &str) -> bool {
    let postgres = test_postgres().is_some();
    if postgres {
        eprintln!("SQLite only ({what}): skipped on PostgreSQL");
    }
    postgres
}

/// Drops the trigger that keeps `audit_log` entries from being updated (tamper tests).
pub(super) fn drop_audit_update_trigger(store: &Store) {
    let sql = match store.dialect() {
        db::Dialect::Sqlite => "DROP TRIGGER audit_log_no_update",
        db::Dialect::Postgres => "DROP TRIGGER audit_log_append_only ON audit_log",
    };
    store.connection.execute_batch(sql).expect("drop trigger");
}

pub(super) struct Fixture {
    pub(super) dir: tempfile::TempDir,
    pub(super) store: Store,
    pub(super) issuer: IssuerId,
}

pub(super) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    let issuer = store
        .register_issuer(b"issuer one DER", "CN=Factory CA 1")
        .expect("register issuer");
    Fixture { dir, store, issuer }
}

#[test]
fn format_version_counts_the_migrations() {
    assert_eq!(
        usize::try_from(FORMAT_VERSION).ok(),
        Some(schema::MIGRATIONS.len())
    );
}

#[test]
fn open_creates_the_data_dir_and_reopens_idempotently() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("nested").join("data");
    let batch = {
        let store = open(&data_dir);
        assert_eq!(store.format_version().expect("version"), FORMAT_VERSION);
        let issuer = store.register_issuer(b"der", "CN=CA").expect("issuer");
        store.create_batch(&new_batch(issuer, 1)).expect("batch")
    };
    if store_dialect_is_sqlite() {
        assert!(data_dir.join(DATABASE_FILE).is_file());
    }
    let store = open(&data_dir);
    assert_eq!(store.format_version().expect("version"), FORMAT_VERSION);
    assert!(store.batch(batch).expect("read").is_some());
    drop(store);
    let store = open(&data_dir);
    assert_eq!(store.batches().expect("list").len(), 1);
}

#[test]
fn open_refuses_a_newer_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    match store.connection.sqlite() {
        Some(raw) => raw
            .pragma_update(None, "user_version", FORMAT_VERSION + 1)
            .expect("bump version"),
        None => {
            store
                .connection
                .execute(
                    "UPDATE certmill_format SET version = ?1",
                    [FORMAT_VERSION + 1],
                )
                .expect("bump version");
        }
    }
    drop(store);
    match Store::open(dir.path()) {
        Err(StoreError::UnsupportedFormat {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
}

#[test]
fn postgresql_connections_are_reused_and_a_closed_one_is_replaced() {
    if test_postgres().is_none() {
        eprintln!("PostgreSQL only (SQLite connections are not pooled): skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = |store: &Store| -> i64 {
        store
            .connection
            .query_row("SELECT pg_backend_pid()", [], |row| row.get(0))
            .expect("backend pid")
    };
    let first = open(dir.path());
    let pid = backend(&first);
    // Two stores open at once have their own connections...
    let second = open(dir.path());
    assert_ne!(backend(&second), pid);
    drop(second);
    drop(first);
    // ...and a store opened after one is dropped takes an idle connection.
    let again = open(dir.path());
    let reused = backend(&again);
    drop(again);
    let third = open(dir.path());
    assert_eq!(
        backend(&third),
        reused,
        "the idle connection is taken again"
    );
    // The server ends that connection (as a restart would): the next open notices and
    // connects anew instead of failing.
    third
        .connection
        .execute_batch("SELECT 1")
        .expect("still open");
    let killer = open(dir.path());
    drop(third);
    killer
        .connection
        .query_row("SELECT pg_terminate_backend(?1)", [reused], |row| {
            row.get::<_, i64>(0)
        })
        .expect("terminate");
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(killer);
    // Two at once: one takes the killer's idle connection, the other the terminated one,
    // finds it closed and connects anew.
    let a = open(dir.path());
    let b = open(dir.path());
    for store in [&a, &b] {
        assert_ne!(backend(store), reused);
        assert!(store.verify_audit_chain().is_ok());
    }
}

#[test]
fn connection_uses_wal_foreign_keys_and_normal_sync() {
    if skip_on_postgres("SQLite pragmas") {
        return;
    }
    let f = fixture();
    let pragma = |name: &str| -> String {
        f.store
            .connection
            .sqlite()
            .expect("SQLite")
            .pragma_query_value(None, name, |row| row.get::<_, rusqlite::types::Value>(0))
            .map(|value| match value {
                rusqlite::types::Value::Integer(n) => n.to_string(),
                rusqlite::types::Value::Text(text) => text,
                other => format!("{other:?}"),
            })
            .expect("pragma")
    };
    assert_eq!(pragma("journal_mode"), "wal");
    assert_eq!(pragma("foreign_keys"), "1");
    // 1 = NORMAL.
    assert_eq!(pragma("synchronous"), "1");
    // The busy handler is certmill's own (`wait_for_write_lock`), so SQLite reports no
    // built-in timeout.
    assert_eq!(pragma("busy_timeout"), "0");
    // 0 = the default: sorts and temporary indexes of the lifecycle queries (a CRL of a
    // million serials) may spill to files.
    assert_eq!(pragma("temp_store"), "0");
    // The pipeline's connections keep their statement journals in memory: a chunk's multi-row
    // insert otherwise wrote 160-380 KB of them to files in /var/tmp (about 800 bytes a
    // device) and created and unlinked a file a chunk.
    let pipeline = Store::open(f.dir.path())
        .expect("open")
        .for_pipeline()
        .expect("pipeline");
    let connection = pipeline.connection.sqlite().expect("SQLite");
    let read = |name: &str| -> i64 {
        connection
            .pragma_query_value(None, name, |row| row.get(0))
            .expect("pragma")
    };
    assert_eq!(read("temp_store"), 2);
    assert_eq!(read("foreign_keys"), 0);
}

#[test]
fn register_issuer_is_idempotent_by_der() {
    let f = fixture();
    let again = f
        .store
        .register_issuer(b"issuer one DER", "CN=another spelling")
        .expect("register again");
    assert_eq!(again, f.issuer);
    let other = f
        .store
        .register_issuer(b"issuer two DER", "CN=Factory CA 1")
        .expect("register other");
    assert_ne!(other, f.issuer);
}

#[test]
fn create_batch_starts_pending_issue() {
    let f = fixture();
    let id = f
        .store
        .create_batch(&new_batch(f.issuer, 10))
        .expect("create");
    let batch = f.store.batch(id).expect("read").expect("exists");
    assert_eq!(
        batch,
        BatchRow {
            id,
            batch_name: "line 3 morning".into(),
            profile_name: "iot-ecc".into(),
            kind: "GENERATOR".into(),
            size: 10,
            status: BatchStatus::PendingIssue,
            created_at: T0,
            issued: 0,
            output_path: "/var/lib/certmill/batches/1.zip".into(),
            reason: None,
            issuer: f.issuer,
            parameters_json: r#"{"MANUFACTURER_ID":"1020"}"#.into(),
            updated_at: T0,
            order_number: 1,
            user_id: None,
            active: true,
            authority: None,
            failed: 0,
            reserved: 0,
            used: 0,
            downloaded_at: None,
            zip_removed_at: None,
            downloadable: false,
            rejectable: false,
        }
    );
    assert_eq!(f.store.batch(BatchId(id.0 + 1)).expect("read"), None);
}

#[test]
fn create_batch_refuses_unknown_issuer_and_kind() {
    let f = fixture();
    let unknown = IssuerId(f.issuer.0 + 100);
    assert!(matches!(
        f.store.create_batch(&new_batch(unknown, 1)),
        Err(StoreError::IssuerNotFound { issuer }) if issuer == unknown
    ));
    let mut batch = new_batch(f.issuer, 1);
    batch.kind = "BULK";
    assert!(matches!(
        f.store.create_batch(&batch),
        Err(StoreError::InvalidBatchKind { kind }) if kind == "BULK"
    ));
    for kind in BATCH_KINDS {
        batch.kind = kind;
        f.store
            .create_batch(&batch)
            .expect("every listed kind is accepted");
    }
    assert!(matches!(
        f.store.create_batch(&new_batch(f.issuer, u64::MAX)),
        Err(StoreError::ValueTooLarge {
            value: u64::MAX,
            ..
        })
    ));
}

#[test]
fn batches_are_listed_newest_first() {
    let f = fixture();
    let first = f
        .store
        .create_batch(&new_batch(f.issuer, 1))
        .expect("first");
    let second = f
        .store
        .create_batch(&new_batch(f.issuer, 1))
        .expect("second");
    let ids: Vec<BatchId> = f
        .store
        .batches()
        .expect("list")
        .into_iter()
        .map(|batch| batch.id)
        .collect();
    assert_eq!(ids, [second, first]);
}

#[test]
fn chunks_are_recorded_and_counted() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 1000))
        .expect("create");
    f.store
        .insert_certificates(batch, &records(1, 0..512))
        .expect("chunk 1");
    f.store
        .insert_certificates(batch, &records(1, 512..1000))
        .expect("chunk 2");
    f.store
        .insert_certificates(batch, &[])
        .expect("empty chunk");
    assert_eq!(f.store.certificate_count(batch).expect("count"), 1000);
    assert_eq!(
        f.store.batch(batch).expect("read").expect("exists").issued,
        1000
    );

    let other = f
        .store
        .create_batch(&new_batch(f.issuer, 5))
        .expect("create");
    assert_eq!(f.store.certificate_count(other).expect("count"), 0);
    assert!(matches!(
        f.store.certificate_count(BatchId(other.0 + 1)),
        Err(StoreError::BatchNotFound { .. })
    ));
    assert!(matches!(
        f.store
            .insert_certificates(BatchId(other.0 + 1), &records(2, 0..1)),
        Err(StoreError::BatchNotFound { .. })
    ));
}

#[test]
fn recorded_certificate_reads_back() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 1))
        .expect("create");
    let mut rec = record(7, 0, &[0x00, 0x11, 0xb3, 0x15]);
    rec.device_id = *uuid::Uuid::parse_str("4b971c11-204a-4bad-9b95-d6ab7a85c748")
        .expect("uuid")
        .as_bytes();
    f.store
        .insert_certificates(batch, std::slice::from_ref(&rec))
        .expect("insert");
    let found = f
        .store
        .find_certificates(Some(&rec.common_name), None)
        .expect("find");
    assert_eq!(
        found,
        [CertificateRow {
            device_id: "4b971c11-204a-4bad-9b95-d6ab7a85c748".into(),
            batch_id: batch,
            row: 0,
            common_name: rec.common_name.clone(),
            serial_hex: "11b315".into(),
            not_before: rec.not_before,
            not_after: rec.not_after,
            status: DeviceStatus::Issued,
            file_name: rec.file_name.clone(),
            der: rec.der.clone(),
        }]
    );
}

#[test]
fn duplicate_serial_across_batches_rolls_back_the_whole_chunk() {
    let mut f = fixture();
    let first = f
        .store
        .create_batch(&new_batch(f.issuer, 10))
        .expect("create");
    let second = f
        .store
        .create_batch(&new_batch(f.issuer, 10))
        .expect("create");
    f.store
        .insert_certificates(first, &records(1, 0..3))
        .expect("first batch");

    // Fresh records around one that reuses row 1's serial, spelled with a leading zero octet.
    let mut chunk = records(2, 0..4);
    let mut reused = serial(1, 1);
    reused.insert(0, 0x00);
    chunk[2].serial = reused;
    match f.store.insert_certificates(second, &chunk) {
        Err(StoreError::DuplicateSerial { serial_hex }) => {
            assert_eq!(serial_hex, hex(&serial(1, 1)));
        }
        other => panic!("expected DuplicateSerial, got {other:?}"),
    }
    assert_eq!(f.store.certificate_count(second).expect("count"), 0);
    assert_eq!(
        f.store.batch(second).expect("read").expect("exists").issued,
        0
    );
    assert_eq!(f.store.certificate_count(first).expect("count"), 3);

    // The same chunk without the duplicate goes through: nothing of the failed one remained.
    f.store
        .insert_certificates(second, &records(2, 0..4))
        .expect("retry");
    assert_eq!(f.store.certificate_count(second).expect("count"), 4);
}

#[test]
fn duplicate_serial_within_one_chunk_is_refused() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 10))
        .expect("create");
    let mut chunk = records(1, 0..3);
    chunk[2].serial = chunk[0].serial.clone();
    assert!(matches!(
        f.store.insert_certificates(batch, &chunk),
        Err(StoreError::DuplicateSerial { .. })
    ));
    assert_eq!(f.store.certificate_count(batch).expect("count"), 0);
}

#[test]
fn same_serial_under_another_issuer_is_allowed_and_found_twice() {
    let mut f = fixture();
    let other_issuer = f
        .store
        .register_issuer(b"issuer two DER", "CN=Factory CA 2")
        .expect("issuer two");
    let first = f
        .store
        .create_batch(&new_batch(f.issuer, 1))
        .expect("create");
    let second = f
        .store
        .create_batch(&new_batch(other_issuer, 1))
        .expect("create");
    let shared = serial(1, 0);
    f.store
        .insert_certificates(first, &[record(1, 0, &shared)])
        .expect("issuer one");
    f.store
        .insert_certificates(second, &[record(2, 0, &shared)])
        .expect("issuer two");
    let found = f
        .store
        .find_certificates(None, Some(&hex(&shared)))
        .expect("find");
    let batches: Vec<BatchId> = found.iter().map(|row| row.batch_id).collect();
    assert_eq!(batches, [first, second]);
}

#[test]
fn duplicate_device_and_row_are_named() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 10))
        .expect("create");
    f.store
        .insert_certificates(batch, &records(1, 0..2))
        .expect("insert");

    let mut same_device = record(1, 1, &serial(9, 9));
    same_device.row = 5;
    match f.store.insert_certificates(batch, &[same_device]) {
        Err(StoreError::DuplicateDevice { row: 5, device_id }) => {
            assert_eq!(
                device_id,
                uuid::Uuid::from_bytes(record(1, 1, &[1]).device_id)
                    .hyphenated()
                    .to_string()
            );
        }
        other => panic!("expected DuplicateDevice, got {other:?}"),
    }

    let same_row = record(3, 1, &serial(3, 1));
    assert!(matches!(
        f.store.insert_certificates(batch, &[same_row]),
        Err(StoreError::DuplicateRow { batch: b, row: 1 }) if b == batch
    ));
    assert_eq!(f.store.certificate_count(batch).expect("count"), 2);
}

#[test]
fn invalid_serials_are_refused() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 10))
        .expect("create");
    for (bad, octets) in [(vec![], 0), (vec![0, 0], 0), (vec![0x7f; 21], 21)] {
        let chunk = [record(1, 0, &serial(1, 0)), record(1, 1, &bad)];
        assert!(matches!(
            f.store.insert_certificates(batch, &chunk),
            Err(StoreError::InvalidSerial { row: 1, octets: o }) if o == octets
        ));
    }
    // 20 significant octets behind a sign octet is the longest accepted.
    let mut longest = vec![0x00];
    longest.extend_from_slice(&[0xff; 20]);
    f.store
        .insert_certificates(batch, &[record(1, 0, &longest)])
        .expect("20 octets");
    assert_eq!(f.store.certificate_count(batch).expect("count"), 1);
}

#[test]
fn a_batch_never_records_more_than_its_size() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 5))
        .expect("create");
    f.store
        .insert_certificates(batch, &records(1, 0..3))
        .expect("first");
    assert!(matches!(
        f.store.insert_certificates(batch, &records(1, 3..6)),
        Err(StoreError::BatchFull {
            size: 5,
            issued: 3,
            adding: 3,
            ..
        })
    ));
    f.store
        .insert_certificates(batch, &records(1, 3..5))
        .expect("up to size");
    assert_eq!(f.store.certificate_count(batch).expect("count"), 5);
}

#[test]
fn find_by_common_name_and_serial_spellings() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 10))
        .expect("create");
    let mut chunk = records(1, 0..4);
    chunk[1].serial = vec![0x11, 0xb3, 0x15, 0xa8, 0x14, 0x6e, 0xf4, 0xad];
    chunk[2].serial = vec![0x0f, 0xef, 0xc6];
    chunk[3].common_name = chunk[0].common_name.clone();
    f.store.insert_certificates(batch, &chunk).expect("insert");

    let by_cn = f
        .store
        .find_certificates(Some(&chunk[0].common_name), None)
        .expect("by cn");
    assert_eq!(by_cn.iter().map(|row| row.row).collect::<Vec<_>>(), [0, 3]);
    assert!(f
        .store
        .find_certificates(Some("DEVICE-1-0"), None)
        .expect("cn is exact")
        .is_empty());

    for spelling in [
        "11b315a8146ef4ad",
        "11B315A8146EF4AD",
        "11:B3:15:A8:14:6E:F4:AD",
        "00:11:b3:15:a8:14:6e:f4:ad",
        "0011B315A8146EF4AD",
        " 11b315a8146ef4ad\n",
    ] {
        let found = f
            .store
            .find_certificates(None, Some(spelling))
            .expect("by serial");
        assert_eq!(
            found.iter().map(|row| row.row).collect::<Vec<_>>(),
            [1],
            "{spelling:?}"
        );
        assert_eq!(found[0].serial_hex, "11b315a8146ef4ad");
    }
    // Odd digit counts pair from the right: "fefc6" is 0x0f 0xef 0xc6.
    for spelling in ["fefc6", "0FEFC6", "0f:ef:c6", "000fefc6"] {
        let found = f
            .store
            .find_certificates(None, Some(spelling))
            .expect("by serial");
        assert_eq!(
            found.iter().map(|row| row.row).collect::<Vec<_>>(),
            [2],
            "{spelling:?}"
        );
        assert_eq!(found[0].serial_hex, "0fefc6");
    }

    let both = f
        .store
        .find_certificates(Some(&chunk[1].common_name), Some("11b315a8146ef4ad"))
        .expect("both");
    assert_eq!(both.len(), 1);
    let mismatch = f
        .store
        .find_certificates(Some(&chunk[0].common_name), Some("11b315a8146ef4ad"))
        .expect("both, no match");
    assert!(mismatch.is_empty());
}

#[test]
fn find_needs_a_criterion_and_a_hex_serial() {
    let f = fixture();
    assert!(matches!(
        f.store.find_certificates(None, None),
        Err(StoreError::EmptyQuery)
    ));
    for bad in ["", "00:00", "12g4", "0x12"] {
        assert!(
            matches!(
                f.store.find_certificates(None, Some(bad)),
                Err(StoreError::InvalidSerialQuery { ref input }) if input == bad
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn every_batch_status_round_trips_through_the_store() {
    let f = fixture();
    let seed_strings = [
        "Pending Creation",
        "Pending Issue",
        "Batch Issued Partly",
        "Ready For Download",
        "Zip removed after expiration",
        "Processing Reject",
        "Processing Revoke",
        "Rejected",
        "Revoked",
        "Broken",
    ];
    for (status, text) in BatchStatus::ALL.into_iter().zip(seed_strings) {
        assert_eq!(status.as_str(), text);
        assert_eq!(BatchStatus::parse(text), Some(status));
        assert_eq!(status.to_string(), text);
        // Reach the status along allowed transitions and read it back.
        let batch = f
            .store
            .create_batch(&new_batch(f.issuer, 1))
            .expect("create");
        if status == BatchStatus::PendingCreation {
            force_status(&f.store, batch, status);
        } else {
            for &step in path_to(status) {
                if step == BatchStatus::ProcessingRevoke {
                    // Revoking needs a downloaded batch.
                    f.store.mark_downloaded(batch).expect("download");
                }
                f.store
                    .set_batch_status(batch, step, None)
                    .expect("allowed step");
            }
        }
        assert_eq!(
            f.store.batch(batch).expect("read").expect("exists").status,
            status
        );
    }
    assert_eq!(BatchStatus::parse("pending issue"), None);
    assert_eq!(BatchStatus::parse("Normal"), None);
}

/// Allowed steps from Pending Issue (a new batch) to `status`.
fn path_to(status: BatchStatus) -> &'static [BatchStatus] {
    use BatchStatus::*;
    match status {
        PendingCreation | PendingIssue => &[],
        BatchIssuedPartly => &[BatchIssuedPartly],
        ReadyForDownload => &[ReadyForDownload],
        ZipRemovedAfterExpiration => &[ReadyForDownload, ZipRemovedAfterExpiration],
        ProcessingReject => &[ReadyForDownload, ProcessingReject],
        ProcessingRevoke => &[ReadyForDownload, ProcessingRevoke],
        Rejected => &[ReadyForDownload, ProcessingReject, Rejected],
        Revoked => &[ReadyForDownload, ProcessingRevoke, Revoked],
        Broken => &[Broken],
    }
}

/// Writes a status directly, bypassing the lifecycle (to reach Pending Creation, which no
/// store method creates).
pub(super) fn force_status(store: &Store, batch: BatchId, status: BatchStatus) {
    store
        .connection
        .execute(
            "UPDATE batches SET status = ?2 WHERE id = ?1",
            params![batch.0, status.as_str()],
        )
        .expect("force status");
}

#[test]
fn every_device_status_round_trips() {
    for status in DeviceStatus::ALL {
        assert_eq!(DeviceStatus::parse(status.as_str()), Some(status));
        assert_eq!(status.as_str(), status.as_str().to_ascii_uppercase());
    }
    assert_eq!(
        DeviceStatus::parse("COLLECTED"),
        Some(DeviceStatus::Collected)
    );
    assert_eq!(DeviceStatus::parse("issued"), None);
}

#[test]
fn status_reason_is_kept_until_replaced() {
    let f = fixture();
    let store = f.store.with_clock(|| T0 + 60);
    let batch = store.create_batch(&new_batch(f.issuer, 1)).expect("create");
    store
        .set_batch_status(batch, BatchStatus::ReadyForDownload, None)
        .expect("ready");
    store
        .set_batch_status(batch, BatchStatus::ProcessingReject, Some("wrong profile"))
        .expect("reject");
    store
        .set_batch_status(batch, BatchStatus::Rejected, None)
        .expect("rejected");
    let row = store.batch(batch).expect("read").expect("exists");
    assert_eq!(row.status, BatchStatus::Rejected);
    assert_eq!(row.reason.as_deref(), Some("wrong profile"));
    assert_eq!(row.updated_at, T0 + 60);
    assert!(!row.active);

    let other = store.create_batch(&new_batch(f.issuer, 1)).expect("create");
    store
        .set_batch_status(other, BatchStatus::Broken, Some("disk full"))
        .expect("broken");
    let row = store.batch(other).expect("read").expect("exists");
    assert_eq!(row.reason.as_deref(), Some("disk full"));
    assert!(!row.active);
    assert!(matches!(
        store.set_batch_status(BatchId(other.0 + 1), BatchStatus::Broken, None),
        Err(StoreError::BatchNotFound { .. })
    ));
}

#[test]
fn store_is_send_and_threads_write_through_their_own_connections() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();

    let dir = tempfile::tempdir().expect("temp dir");
    let issuer = open(dir.path())
        .register_issuer(b"der", "CN=CA")
        .expect("issuer");
    let writers: Vec<_> = (1..=2u8)
        .map(|tag| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut store = open(&path);
                let batch = store.create_batch(&new_batch(issuer, 400)).expect("create");
                for start in (0..400).step_by(100) {
                    store
                        .insert_certificates(batch, &records(tag, start..start + 100))
                        .expect("insert");
                }
                batch
            })
        })
        .collect();
    let store = open(dir.path());
    for writer in writers {
        let batch = writer.join().expect("writer thread");
        assert_eq!(store.certificate_count(batch).expect("count"), 400);
    }
}

#[test]
fn parse_serial_query_pairs_digits_from_the_right() {
    assert_eq!(parse_serial_query("1").expect("one digit"), [0x01]);
    assert_eq!(parse_serial_query("abc").expect("three"), [0x0a, 0xbc]);
    assert_eq!(
        parse_serial_query("00:0a:bc").expect("colons"),
        [0x0a, 0xbc]
    );
    assert_eq!(hex(&[0x00, 0x0a, 0xff]), "000aff");
}

/// Insert rate in records per second: 100,000 records in chunks of 512, each with its ISSUED
/// audit entry (run in release:
/// `cargo test --release --lib store::tests::insert_rate -- --ignored --nocapture`).
#[test]
#[ignore = "measurement, run by hand in release"]
fn insert_rate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = open(dir.path());
    let issuer = store.register_issuer(b"der", "CN=CA").expect("issuer");
    let batch = store
        .create_batch(&new_batch(issuer, 100_000))
        .expect("create");
    let all = records(3, 0..100_000);
    let started = std::time::Instant::now();
    for chunk in all.chunks(512) {
        store.insert_certificates(batch, chunk).expect("insert");
    }
    let elapsed = started.elapsed();
    println!(
        "insert_rate: {:.0} records/s ({elapsed:?})",
        100_000.0 / elapsed.as_secs_f64()
    );
    assert_eq!(store.verify_audit_chain().expect("chain"), 100_001);
}

/// The busy handler polls often at first, then every millisecond, and gives up after the
/// timeout.
#[test]
fn busy_pauses_are_short_first_and_end_at_the_timeout() {
    assert_eq!(busy_pause(Duration::ZERO), Some(BUSY_SHORT_PAUSE));
    assert_eq!(
        busy_pause(BUSY_POLL_FOR - Duration::from_micros(1)),
        Some(BUSY_SHORT_PAUSE)
    );
    assert_eq!(busy_pause(BUSY_POLL_FOR), Some(BUSY_LONG_PAUSE));
    assert_eq!(
        busy_pause(BUSY_TIMEOUT - Duration::from_millis(1)),
        Some(BUSY_LONG_PAUSE)
    );
    assert_eq!(busy_pause(BUSY_TIMEOUT), None);
    assert!(BUSY_SHORT_PAUSE < BUSY_LONG_PAUSE && BUSY_POLL_FOR < BUSY_TIMEOUT);
}

/// A connection that finds the write lock taken waits for it and then writes: a second
/// store's write transaction succeeds once the first commits, 30 ms later.
#[test]
fn a_writer_waits_for_another_connections_write_lock() {
    if skip_on_postgres("the SQLite busy handler") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Store::open(dir.path()).expect("open");
    let second = Store::open(dir.path()).expect("open");
    let holder = first.connection.sqlite().expect("SQLite");
    holder.execute_batch("BEGIN IMMEDIATE").expect("lock");
    std::thread::scope(|scope| {
        let waiter = scope.spawn(move || {
            let connection = second.connection.sqlite().expect("SQLite");
            connection.execute_batch("BEGIN IMMEDIATE; CREATE TABLE waited (x); COMMIT")
        });
        std::thread::sleep(Duration::from_millis(30));
        // Still waiting: the lock is held.
        assert!(!waiter.is_finished());
        holder.execute_batch("COMMIT").expect("release");
        waiter
            .join()
            .expect("waiter")
            .expect("the waiter got the lock");
    });
    let count: i64 = holder
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'waited'",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(count, 1);
}
