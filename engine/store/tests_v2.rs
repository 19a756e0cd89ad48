//! Tests of format version 2: migration, lifecycle, balances, audit chain, serial intents.

use super::tests::{fixture, new_batch, open, records, serial, skip_on_postgres, Fixture, T0};
use super::*;

/// An organization with one authority for the fixture's issuer and `new_batch`'s profile.
fn authority(f: &Fixture, balance: u64) -> AuthorityId {
    let organization = f.store.create_organization("Acme Devices").expect("org");
    f.store
        .create_authority(organization, "iot-ecc", f.issuer, balance)
        .expect("authority")
}

fn balance(store: &Store, authority: AuthorityId) -> (u64, u64, u64) {
    let row = store.authority(authority).expect("authority");
    (
        row.balance_available,
        row.balance_reserved,
        row.balance_used,
    )
}

fn total(store: &Store, authority: AuthorityId) -> u64 {
    let (available, reserved, used) = balance(store, authority);
    available + reserved + used
}

fn failure(row: u64) -> DeviceFailure {
    let mut device_id = [0xee; 16];
    device_id[8..].copy_from_slice(&row.to_be_bytes());
    DeviceFailure {
        row,
        device_id,
        reason: format!("CSR of row {row} has a bad signature"),
    }
}

#[test]
fn a_version_1_database_upgrades_in_place() {
    if skip_on_postgres("SQLite migrations") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let raw = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).expect("raw open");
        raw.execute_batch(schema::MIGRATIONS[0]).expect("v1 schema");
        raw.pragma_update(None, "user_version", 1)
            .expect("version 1");
        raw.execute_batch(
            "INSERT INTO issuers (id, fingerprint, subject, der, created_at)
                 VALUES (1, zeroblob(32), 'CN=CA', x'30', 1);
             INSERT INTO batches (id, batch_name, profile_name, kind, size, issuer_id, status,
                                  parameters_json, output_path, issued, created_at, updated_at)
                 VALUES (7, 'old', 'iot-ecc', 'CSV', 3, 1, 'Ready For Download', '{}', 'a.zip',
                         1, 10, 11),
                        (9, 'broken', 'iot-ecc', 'CSV', 3, 1, 'Broken', '{}', 'b.zip', 0, 12, 12);
             INSERT INTO certificates (device_id, batch_id, issuer_id, row_index, common_name,
                                       serial, not_before, not_after, der, file_name)
                 VALUES (x'00112233445566778899aabbccddeeff', 7, 1, 0, 'old-0', x'42', 0, 1,
                         x'30', 'old-0.p12');",
        )
        .expect("v1 rows");
    }
    let mut store = open(dir.path());
    assert_eq!(store.format_version().expect("version"), FORMAT_VERSION);
    let old = store.batch(BatchId(7)).expect("read").expect("kept");
    assert_eq!(
        (old.order_number, old.active, old.issued, old.failed),
        (7, true, 1, 0)
    );
    assert_eq!(
        (old.authority, old.user_id, old.downloaded_at),
        (None, None, None)
    );
    assert!(old.downloadable && old.rejectable);
    assert!(!store.batch(BatchId(9)).expect("read").expect("kept").active);
    assert_eq!(store.certificate_count(BatchId(7)).expect("count"), 1);
    assert_eq!(store.verify_audit_chain().expect("empty chain"), 0);

    // The upgraded store keeps working: order numbers continue, old serials stay unique.
    let new = store
        .create_batch(&new_batch(IssuerId(1), 2))
        .expect("create");
    assert_eq!(
        store.batch(new).expect("read").expect("new").order_number,
        10
    );
    let mut reused = records(1, 0..1);
    reused[0].serial = vec![0x42];
    assert!(matches!(
        store.insert_certificates(new, &reused),
        Err(StoreError::DuplicateSerial { .. })
    ));
    store
        .reject_batch(BatchId(7), "wrong lot")
        .expect("reject old");
    assert_eq!(store.verify_audit_chain().expect("chain"), 3);
    // The old certificate joined the serial registry (v3) and is found by its serial.
    assert_eq!(
        store.find_certificates(None, Some("42")).expect("find")[0].batch_id,
        BatchId(7)
    );
    drop(store);
    assert_eq!(
        open(dir.path()).format_version().expect("again"),
        FORMAT_VERSION
    );
}

#[test]
fn transitions_are_exactly_the_table() {
    use BatchStatus::*;
    let allowed = [
        (PendingCreation, PendingIssue, None),
        (PendingCreation, Broken, None),
        (PendingIssue, ReadyForDownload, None),
        (PendingIssue, BatchIssuedPartly, None),
        (PendingIssue, Broken, None),
        (ReadyForDownload, ProcessingReject, Some(false)),
        (ReadyForDownload, ProcessingRevoke, Some(true)),
        (ReadyForDownload, ZipRemovedAfterExpiration, None),
        (BatchIssuedPartly, ProcessingReject, Some(false)),
        (BatchIssuedPartly, ProcessingRevoke, Some(true)),
        (BatchIssuedPartly, ZipRemovedAfterExpiration, None),
        (ProcessingReject, Rejected, None),
        (ProcessingRevoke, Revoked, None),
        (ZipRemovedAfterExpiration, ProcessingRevoke, Some(true)),
    ];
    for from in BatchStatus::ALL {
        for to in BatchStatus::ALL {
            for downloaded in [false, true] {
                let expected = allowed.iter().any(|&(f, t, needs)| {
                    f == from && t == to && needs.is_none_or(|needs| needs == downloaded)
                });
                assert_eq!(
                    from.can_become(to, downloaded),
                    expected,
                    "{from} -> {to}, downloaded {downloaded}"
                );
            }
        }
    }
}

#[test]
fn set_batch_status_refuses_other_transitions_and_changes_nothing() {
    let f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 1))
        .expect("create");
    let refused = |to| match f.store.set_batch_status(batch, to, Some("nope")) {
        Err(StoreError::InvalidTransition {
            batch: b,
            from,
            to: t,
        }) => {
            assert_eq!((b, t), (batch, to));
            from
        }
        other => panic!("expected InvalidTransition to {to}, got {other:?}"),
    };
    assert_eq!(refused(BatchStatus::Rejected), BatchStatus::PendingIssue);
    assert_eq!(
        refused(BatchStatus::ProcessingReject),
        BatchStatus::PendingIssue
    );
    f.store
        .set_batch_status(batch, BatchStatus::ReadyForDownload, None)
        .expect("ready");
    assert_eq!(
        refused(BatchStatus::PendingIssue),
        BatchStatus::ReadyForDownload
    );
    // Revoking needs a download first.
    assert_eq!(
        refused(BatchStatus::ProcessingRevoke),
        BatchStatus::ReadyForDownload
    );
    let row = f.store.batch(batch).expect("read").expect("exists");
    assert_eq!(
        (row.status, row.reason),
        (BatchStatus::ReadyForDownload, None)
    );
    assert_eq!(
        f.store.audit_log(batch).expect("log").len(),
        2,
        "create + ready"
    );
}

#[test]
fn status_text_follows_get_batch_status() {
    use BatchStatus::*;
    for (status, text) in [
        (PendingCreation, "Processing"),
        (PendingIssue, "Processing"),
        (BatchIssuedPartly, "Ready for download"),
        (ReadyForDownload, "Ready for download"),
        (
            ZipRemovedAfterExpiration,
            "Not Acceptable. Status: Zip removed after expiration",
        ),
        (ProcessingReject, "Processing"),
        (ProcessingRevoke, "Processing"),
        (Rejected, "Not Acceptable. Status: Rejected"),
        (Revoked, "Not Acceptable. Status: Revoked"),
        (Broken, "Failed"),
    ] {
        assert_eq!(status.status_text(), text, "{status}");
    }
}

#[test]
fn order_numbers_count_up_and_users_are_kept() {
    let f = fixture();
    let authority = authority(&f, 10);
    let first = f
        .store
        .create_batch(&new_batch(f.issuer, 1))
        .expect("first");
    let second = f
        .store
        .create_batch_for(authority, &new_batch(f.issuer, 1), Some(10))
        .expect("second");
    let read = |id| f.store.batch(id).expect("read").expect("exists");
    assert_eq!(
        (read(first).order_number, read(second).order_number),
        (1, 2)
    );
    assert_eq!(read(second).user_id, Some(10));
    assert_eq!(read(second).authority, Some(authority));
}

#[test]
fn a_batch_reserves_uses_and_returns_its_balance() {
    let mut f = fixture();
    let authority = authority(&f, 100);
    let batch = f
        .store
        .create_batch_for(authority, &new_batch(f.issuer, 10), Some(5))
        .expect("create");
    assert_eq!(balance(&f.store, authority), (90, 10, 0));

    f.store
        .insert_certificates(batch, &records(1, 0..6))
        .expect("issue 6");
    assert_eq!(balance(&f.store, authority), (90, 4, 6));
    f.store
        .record_failures(batch, &[failure(6), failure(7)])
        .expect("2 failures");
    assert_eq!(balance(&f.store, authority), (92, 2, 6));
    // Failures and certificates together fill the batch.
    assert!(matches!(
        f.store.insert_certificates(batch, &records(1, 8..11)),
        Err(StoreError::BatchFull {
            size: 10,
            issued: 8,
            adding: 3,
            ..
        })
    ));
    let row = f.store.batch(batch).expect("read").expect("exists");
    assert_eq!(
        (row.issued, row.failed, row.reserved, row.used),
        (6, 2, 2, 6)
    );

    f.store
        .finish_batch(batch, BatchStatus::BatchIssuedPartly)
        .expect("finish");
    assert_eq!(balance(&f.store, authority), (94, 0, 6));
    assert_eq!(f.store.balance_used_by_user(authority, 5).expect("user"), 6);
    assert_eq!(
        f.store.balance_used_by_user(authority, 6).expect("other"),
        0
    );
    assert!(matches!(
        f.store.insert_certificates(batch, &records(1, 8..9)),
        Err(StoreError::BatchNotPending {
            status: BatchStatus::BatchIssuedPartly,
            ..
        })
    ));

    f.store.reject_batch(batch, "wrong lot").expect("reject");
    assert_eq!(balance(&f.store, authority), (100, 0, 0));
    assert_eq!(f.store.balance_used_by_user(authority, 5).expect("user"), 0);
    let row = f.store.batch(batch).expect("read").expect("exists");
    assert_eq!(row.status, BatchStatus::Rejected);
    assert_eq!(row.reason.as_deref(), Some("wrong lot"));
    assert!(!row.active && !row.rejectable && !row.downloadable);
    let certificates = f
        .store
        .find_certificates(Some("device-1-0"), None)
        .expect("find");
    assert_eq!(certificates[0].status, DeviceStatus::Rejected);

    f.store.add_balance(authority, 50).expect("top up");
    assert_eq!(balance(&f.store, authority), (150, 0, 0));
}

#[test]
fn reservations_are_refused_beyond_the_balance() {
    let f = fixture();
    let authority = authority(&f, 5);
    match f
        .store
        .create_batch_for(authority, &new_batch(f.issuer, 6), None)
    {
        Err(StoreError::InsufficientBalance {
            authority: a,
            requested: 6,
            available: 5,
        }) => assert_eq!(a, authority),
        other => panic!("expected InsufficientBalance, got {other:?}"),
    }
    assert!(
        f.store.batches().expect("list").is_empty(),
        "nothing written"
    );
    f.store
        .create_batch_for(authority, &new_batch(f.issuer, 5), None)
        .expect("exactly the balance");
    assert_eq!(balance(&f.store, authority), (0, 5, 0));

    let other_issuer = f
        .store
        .register_issuer(b"issuer two DER", "CN=CA 2")
        .expect("issuer");
    assert!(matches!(
        f.store
            .create_batch_for(authority, &new_batch(other_issuer, 0), None),
        Err(StoreError::AuthorityMismatch {
            field: "issuer",
            ..
        })
    ));
    let mut other_profile = new_batch(f.issuer, 0);
    other_profile.profile_name = "tls-server";
    assert!(matches!(
        f.store.create_batch_for(authority, &other_profile, None),
        Err(StoreError::AuthorityMismatch {
            field: "profile",
            ..
        })
    ));
    let missing = AuthorityId(authority.0 + 1);
    assert!(matches!(
        f.store.create_batch_for(missing, &new_batch(f.issuer, 1), None),
        Err(StoreError::AuthorityNotFound { authority: a }) if a == missing
    ));
    assert!(matches!(
        f.store.add_balance(missing, 1),
        Err(StoreError::AuthorityNotFound { .. })
    ));
    assert!(matches!(
        f.store.authority(missing),
        Err(StoreError::AuthorityNotFound { .. })
    ));
}

#[test]
fn authorities_belong_to_their_organization() {
    let f = fixture();
    let acme = f.store.create_organization("Acme").expect("acme");
    let other = f.store.create_organization("Other").expect("other");
    let first = f
        .store
        .create_authority(acme, "iot-ecc", f.issuer, 500)
        .expect("first");
    let second = f
        .store
        .create_authority(acme, "iot-rsa", f.issuer, 30)
        .expect("second");
    f.store
        .create_authority(other, "iot-ecc", f.issuer, 1)
        .expect("other org");
    let listed = f.store.authorities_for(acme).expect("list");
    assert_eq!(
        listed.iter().map(|row| row.id).collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(
        listed[1],
        AuthorityRow {
            id: second,
            organization: acme,
            profile_name: "iot-rsa".into(),
            issuer: f.issuer,
            balance_available: 30,
            balance_reserved: 0,
            balance_used: 0,
            enabled: true,
            deleted_at: None,
        }
    );
    let missing = OrganizationId(other.0 + 1);
    assert!(matches!(
        f.store.create_authority(missing, "iot-ecc", f.issuer, 1),
        Err(StoreError::OrganizationNotFound { organization }) if organization == missing
    ));
    let no_issuer = IssuerId(f.issuer.0 + 10);
    assert!(matches!(
        f.store.create_authority(acme, "iot-ecc", no_issuer, 1),
        Err(StoreError::IssuerNotFound { issuer }) if issuer == no_issuer
    ));
}

#[test]
fn downloads_collect_certificates_and_end_rejectability() {
    let mut f = fixture();
    let authority = authority(&f, 10);
    let batch = f
        .store
        .create_batch_for(authority, &new_batch(f.issuer, 3), Some(1))
        .expect("create");
    assert!(matches!(
        f.store.mark_downloaded(batch),
        Err(StoreError::NotDownloadable {
            status: BatchStatus::PendingIssue,
            ..
        })
    ));
    assert!(matches!(
        f.store.reject_batch(batch, "early"),
        Err(StoreError::NotRejectable {
            status: BatchStatus::PendingIssue,
            downloaded: false,
            ..
        })
    ));
    f.store
        .insert_certificates(batch, &records(1, 0..3))
        .expect("issue");
    f.store
        .finish_batch(batch, BatchStatus::ReadyForDownload)
        .expect("finish");
    let row = f.store.batch(batch).expect("read").expect("exists");
    assert!(row.downloadable && row.rejectable);

    let store = f.store.with_clock(|| T0 + 5);
    store.mark_downloaded(batch).expect("download");
    let row = store.batch(batch).expect("read").expect("exists");
    assert_eq!(row.downloaded_at, Some(T0 + 5));
    assert!(row.downloadable && !row.rejectable);
    let found = store
        .find_certificates(Some("device-1-2"), None)
        .expect("find");
    assert_eq!(found[0].status, DeviceStatus::Collected);
    assert!(matches!(
        store.reject_batch(batch, "too late"),
        Err(StoreError::NotRejectable {
            downloaded: true,
            ..
        })
    ));

    // Revoking: the balance is not restored.
    store
        .set_batch_status(batch, BatchStatus::ZipRemovedAfterExpiration, None)
        .expect("expired");
    assert_eq!(
        store
            .batch(batch)
            .expect("read")
            .expect("exists")
            .zip_removed_at,
        Some(T0 + 5)
    );
    store
        .set_batch_status(batch, BatchStatus::ProcessingRevoke, Some("key leak"))
        .expect("revoking");
    store
        .set_batch_status(batch, BatchStatus::Revoked, None)
        .expect("revoked");
    assert_eq!(balance(&store, authority), (7, 0, 3));
    let found = store
        .find_certificates(Some("device-1-2"), None)
        .expect("find");
    assert_eq!(found[0].status, DeviceStatus::Revoked);
    assert!(!store.batch(batch).expect("read").expect("exists").active);
}

#[test]
fn finish_batch_takes_only_end_of_issue_statuses() {
    let f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 1))
        .expect("create");
    assert!(matches!(
        f.store.finish_batch(batch, BatchStatus::Rejected),
        Err(StoreError::InvalidTransition {
            from: BatchStatus::PendingIssue,
            to: BatchStatus::Rejected,
            ..
        })
    ));
    f.store
        .finish_batch(batch, BatchStatus::Broken)
        .expect("broken");
    assert!(matches!(
        f.store.finish_batch(batch, BatchStatus::ReadyForDownload),
        Err(StoreError::InvalidTransition {
            from: BatchStatus::Broken,
            ..
        })
    ));
}

#[test]
fn audit_log_records_every_change_in_one_chain() {
    let mut f = fixture();
    let authority = authority(&f, 10);
    let batch = f
        .store
        .create_batch_for(authority, &new_batch(f.issuer, 4), Some(3))
        .expect("create");
    f.store
        .insert_certificates(batch, &records(1, 0..2))
        .expect("issue");
    f.store
        .record_failures(batch, &[failure(2)])
        .expect("failure");
    f.store
        .finish_batch(batch, BatchStatus::BatchIssuedPartly)
        .expect("finish");
    f.store.reject_batch(batch, "wrong lot").expect("reject");

    let log = f.store.audit_log(batch).expect("log");
    let kinds: Vec<AuditKind> = log.iter().map(|entry| entry.kind).collect();
    assert_eq!(
        kinds,
        [
            AuditKind::Created,
            AuditKind::Status,
            AuditKind::Status,
            AuditKind::Status
        ]
    );
    assert_eq!(
        log[1].message,
        "Pending Issue -> Batch Issued Partly; 1 reserved units released"
    );
    assert_eq!(
        log[2].message,
        "Batch Issued Partly -> Processing Reject: wrong lot"
    );
    assert_eq!(
        log[3].message,
        "Processing Reject -> Rejected; 2 used units restored; 2 certificates revoked \
         (cessationOfOperation)"
    );
    assert_eq!(
        (log[0].actor.as_str(), log[3].actor.as_str()),
        ("user 3", "user 3")
    );
    assert_eq!(log[1].actor, "system");
    assert!(log
        .iter()
        .all(|entry| entry.time == T0 && entry.batch_id == batch));

    let devices = f.store.device_audit_log(batch).expect("device log");
    assert_eq!(devices.len(), 3);
    assert_eq!(devices[0].kind, AuditKind::Issued);
    assert_eq!(devices[0].common_name.as_deref(), Some("device-1-0"));
    assert_eq!(
        devices[0].device_id.as_deref(),
        Some(
            uuid::Uuid::from_bytes(records(1, 0..1)[0].device_id)
                .hyphenated()
                .to_string()
                .as_str()
        )
    );
    assert_eq!(devices[2].kind, AuditKind::Failed);
    assert_eq!(devices[2].common_name, None);
    assert_eq!(
        devices[2].message,
        "row 2: CSR of row 2 has a bad signature"
    );

    assert_eq!(f.store.verify_audit_chain().expect("verify"), 7);
}

#[test]
fn audit_log_is_append_only_and_tampering_is_found() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 5))
        .expect("create");
    f.store
        .insert_certificates(batch, &records(1, 0..5))
        .expect("issue");
    assert_eq!(f.store.verify_audit_chain().expect("verify"), 6);
    for sql in [
        "UPDATE audit_log SET message = 'forged' WHERE id = 3",
        "DELETE FROM audit_log WHERE id = 3",
    ] {
        let error = f.store.connection.execute(sql, []).expect_err("refused");
        assert!(error.to_string().contains("append-only"), "{error}");
    }

    // Someone with file access drops the trigger and edits entry 3.
    super::tests::drop_audit_update_trigger(&f.store);
    f.store
        .connection
        .execute_batch("UPDATE audit_log SET message = 'row 1: issued serial 00' WHERE id = 3")
        .expect("tamper");
    assert!(matches!(
        f.store.verify_audit_chain(),
        Err(StoreError::AuditChainBroken { id: 3 })
    ));
}

#[test]
fn a_rehashed_entry_breaks_the_chain_at_its_successor() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 3))
        .expect("create");
    f.store
        .insert_certificates(batch, &records(1, 0..3))
        .expect("issue");
    // Forge entry 2 with a correctly recomputed hash: entry 3 still names the old one.
    let (prev, batch_id, time): (Vec<u8>, i64, i64) = f
        .store
        .connection
        .query_row(
            "SELECT prev_hash, batch_id, time FROM audit_log WHERE id = 2",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("entry 2");
    let prev: [u8; 32] = prev.try_into().expect("32 octets");
    let forged = audit_hash(&prev, 2, batch_id, None, time, "system", "STATUS", "forged");
    super::tests::drop_audit_update_trigger(&f.store);
    f.store
        .connection
        .execute(
            "UPDATE audit_log SET device_id = NULL, type = 'STATUS', message = 'forged',
                                  hash = ?1 WHERE id = 2",
            [forged.as_slice()],
        )
        .expect("forge");
    assert!(matches!(
        f.store.verify_audit_chain(),
        Err(StoreError::AuditChainBroken { id: 3 })
    ));
}

#[test]
fn audit_hash_fields_cannot_run_into_each_other() {
    let prev = [7; 32];
    let a = audit_hash(&prev, 1, 1, None, 0, "user 1", "STATUS", "x");
    let b = audit_hash(&prev, 1, 1, None, 0, "user ", "1STATUS", "x");
    let c = audit_hash(&prev, 1, 1, Some(&[0; 16]), 0, "user 1", "STATUS", "x");
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_ne!(
        a,
        audit_hash(&[8; 32], 1, 1, None, 0, "user 1", "STATUS", "x")
    );
}

#[test]
fn serial_intents_reserve_before_signing() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 4))
        .expect("create");
    let other = f
        .store
        .create_batch(&new_batch(f.issuer, 4))
        .expect("other");
    let s0 = serial(1, 0);
    let s1 = serial(1, 1);
    f.store
        .reserve_serials(batch, f.issuer, &[(0, &s0), (1, &s1)])
        .expect("reserve");
    // Reserved by `batch`: neither another batch nor a second reservation may take it.
    assert!(matches!(
        f.store.reserve_serials(other, f.issuer, &[(0, &s0)]),
        Err(StoreError::DuplicateSerial { .. })
    ));
    let mut stolen = records(2, 0..1);
    stolen[0].serial = s1.clone();
    assert!(matches!(
        f.store.insert_certificates(other, &stolen),
        Err(StoreError::DuplicateSerial { .. })
    ));
    // Its own batch, but the wrong row, is refused too.
    let mut wrong_row = records(1, 2..3);
    wrong_row[0].serial = s0.clone();
    assert!(matches!(
        f.store.insert_certificates(batch, &wrong_row),
        Err(StoreError::DuplicateSerial { .. })
    ));
    // A list with a duplicate reserves nothing.
    let s2 = serial(1, 2);
    assert!(matches!(
        f.store
            .reserve_serials(batch, f.issuer, &[(2, &s2), (3, &s2)]),
        Err(StoreError::DuplicateSerial { .. })
    ));
    assert_eq!(f.store.serial_intents(batch).expect("intents").len(), 2);
    assert!(matches!(
        f.store
            .reserve_serials(batch, IssuerId(f.issuer.0 + 9), &[(2, &s2)]),
        Err(StoreError::IssuerMismatch { .. })
    ));
    assert!(matches!(
        f.store.reserve_serials(batch, f.issuer, &[(2, &[0, 0])]),
        Err(StoreError::InvalidSerial { row: 2, octets: 0 })
    ));

    // Recording row 0 with its reserved serial consumes the intent.
    f.store
        .insert_certificates(batch, &records(1, 0..1))
        .expect("record reserved");
    assert_eq!(
        f.store.serial_intents(batch).expect("intents"),
        [SerialIntent {
            row: 1,
            serial_hex: hex(&s1),
            state: IntentState::Reserved,
        }]
    );
    // A recorded serial cannot be reserved again.
    assert!(matches!(
        f.store.reserve_serials(other, f.issuer, &[(0, &s0)]),
        Err(StoreError::DuplicateSerial { .. })
    ));

    // Crash: row 1 may have been signed. Abandoning wastes its serial for good.
    assert_eq!(
        f.store
            .unfinished_batches()
            .expect("unfinished")
            .iter()
            .map(|row| row.id)
            .collect::<Vec<_>>(),
        [batch, other]
    );
    f.store
        .abandon_batch(batch, "crashed during issue")
        .expect("abandon");
    assert_eq!(
        f.store.serial_intents(batch).expect("intents")[0].state,
        IntentState::Wasted
    );
    assert!(matches!(
        f.store.reserve_serials(other, f.issuer, &[(1, &s1)]),
        Err(StoreError::DuplicateSerial { .. })
    ));
    assert!(matches!(
        f.store.reserve_serials(batch, f.issuer, &[(2, &s2)]),
        Err(StoreError::BatchNotPending {
            status: BatchStatus::Broken,
            ..
        })
    ));
    assert!(matches!(
        f.store.abandon_batch(batch, "again"),
        Err(StoreError::InvalidTransition {
            from: BatchStatus::Broken,
            ..
        })
    ));
    let row = f.store.batch(batch).expect("read").expect("exists");
    assert_eq!(row.reason.as_deref(), Some("crashed during issue"));
    assert_eq!(
        f.store
            .unfinished_batches()
            .expect("unfinished")
            .iter()
            .map(|row| row.id)
            .collect::<Vec<_>>(),
        [other]
    );
}

#[test]
fn abandon_releases_the_reservation() {
    let mut f = fixture();
    let authority = authority(&f, 20);
    let batch = f
        .store
        .create_batch_for(authority, &new_batch(f.issuer, 10), None)
        .expect("create");
    f.store
        .insert_certificates(batch, &records(1, 0..4))
        .expect("issue");
    f.store.abandon_batch(batch, "crash").expect("abandon");
    assert_eq!(balance(&f.store, authority), (16, 0, 4));
    assert_eq!(total(&f.store, authority), 20);
}

#[test]
fn pending_creation_moves_to_pending_issue() {
    let f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 1))
        .expect("create");
    super::tests::force_status(&f.store, batch, BatchStatus::PendingCreation);
    assert_eq!(f.store.unfinished_batches().expect("list").len(), 1);
    f.store
        .set_batch_status(batch, BatchStatus::PendingIssue, None)
        .expect("issue");
    assert!(matches!(
        f.store
            .set_batch_status(batch, BatchStatus::PendingCreation, None),
        Err(StoreError::InvalidTransition { .. })
    ));
}

#[test]
fn concurrent_reservations_never_overspend() {
    const THREADS: u64 = 32;
    const BATCHES_PER_THREAD: u64 = 8;
    const BALANCE: u64 = 600;
    let dir = tempfile::tempdir().expect("temp dir");
    let (issuer, authority) = {
        let store = open(dir.path());
        let issuer = store.register_issuer(b"der", "CN=CA").expect("issuer");
        let organization = store.create_organization("Acme").expect("org");
        let authority = store
            .create_authority(organization, "iot-ecc", issuer, BALANCE)
            .expect("authority");
        (issuer, authority)
    };
    // 32 threads × 8 batches × 7 units = 1,792 units wanted from 600; each granted batch
    // uses 3 and gives 4 back, so at most 200 batches can ever be granted.
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut store = open(&path);
                let mut granted = 0u64;
                for n in 0..BATCHES_PER_THREAD {
                    match store.create_batch_for(
                        authority,
                        &new_batch(issuer, 7),
                        Some(thread as i64),
                    ) {
                        Ok(batch) => {
                            granted += 7;
                            let tag =
                                u8::try_from(thread * BATCHES_PER_THREAD + n).expect("256 tags");
                            // `serial` repeats for tags 128 apart; these are unique per tag.
                            let mut chunk = records(tag, 0..3);
                            for (row, record) in (0u8..).zip(chunk.iter_mut()) {
                                record.serial = vec![0x40, tag, row];
                            }
                            store.insert_certificates(batch, &chunk).expect("issue");
                            store
                                .record_failures(
                                    batch,
                                    &[DeviceFailure {
                                        row: 3,
                                        device_id: [tag ^ 0x55; 16],
                                        reason: "bad CSR".into(),
                                    }],
                                )
                                .expect("failure");
                            store
                                .finish_batch(batch, BatchStatus::BatchIssuedPartly)
                                .expect("finish");
                            let (available, reserved, used) = balance(&store, authority);
                            assert_eq!(available + reserved + used, BALANCE);
                        }
                        Err(StoreError::InsufficientBalance {
                            requested: 7,
                            available,
                            ..
                        }) => {
                            assert!(available < 7);
                        }
                        Err(other) => panic!("thread {thread}: {other:?}"),
                    }
                }
                granted
            })
        })
        .collect();
    let granted: u64 = workers
        .into_iter()
        .map(|worker| worker.join().expect("worker"))
        .sum();
    let store = open(dir.path());
    let (available, reserved, used) = balance(&store, authority);
    assert_eq!(available + reserved + used, BALANCE);
    assert_eq!(reserved, 0);
    let batches = store.batches().expect("list");
    let issued: u64 = batches.iter().map(|batch| batch.issued).sum();
    assert_eq!(used, issued);
    assert_eq!(used, batches.iter().map(|batch| batch.used).sum::<u64>());
    // Units given back let later batches in (more than 600 / 7 were granted), yet the
    // balance was never overspent: at most 600 / 3 batches, and some threads were refused.
    let granted_batches = u64::try_from(batches.len()).expect("count");
    assert_eq!(granted, 7 * granted_batches);
    assert!(
        granted_batches > BALANCE / 7,
        "freed units were reserved again"
    );
    assert!(granted_batches <= BALANCE / 3);
    assert!(
        granted_batches < THREADS * BATCHES_PER_THREAD,
        "some were refused"
    );
    assert_eq!(used, 3 * granted_batches);
    let numbers: std::collections::BTreeSet<u64> =
        batches.iter().map(|batch| batch.order_number).collect();
    assert_eq!(numbers.len(), batches.len(), "order numbers are unique");
    assert_eq!(
        store.verify_audit_chain().expect("chain"),
        granted_batches * 6,
        "created + 3 issued + 1 failed + finished, per batch"
    );
}

#[test]
fn a_chunk_of_devices_appends_one_chained_entry_each_in_order() {
    // 2 full multi-row INSERTs of db::ROWS_PER_INSERT entries and a remainder of 8.
    let mut f = fixture();
    let size = 2 * db::ROWS_PER_INSERT as u64 + 8;
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, size))
        .expect("create");
    let before = f.store.verify_audit_chain().expect("chain");
    f.store
        .insert_certificates(batch, &records(1, 0..size))
        .expect("record");
    assert_eq!(f.store.verify_audit_chain().expect("chain"), before + size);
    let log = f.store.device_audit_log(batch).expect("log");
    assert_eq!(log.len() as u64, size);
    for (row, entry) in log.iter().enumerate() {
        assert!(
            entry
                .message
                .starts_with(&format!("row {row}: issued serial ")),
            "{entry:?}"
        );
    }
}

#[test]
fn a_pipeline_connection_still_refuses_rows_of_a_missing_batch_or_another_issuer() {
    // for_pipeline() drops the per-row foreign key probes; the per-chunk checks in code stay.
    let f = fixture();
    let dir = f.dir.path().to_path_buf();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 2))
        .expect("create");
    let mut pipeline = Store::open(&dir)
        .expect("open")
        .for_pipeline()
        .expect("pipeline");
    assert!(matches!(
        pipeline.insert_certificates(BatchId(batch.0 + 100), &records(1, 0..1)),
        Err(StoreError::BatchNotFound { .. })
    ));
    let s0 = serial(1, 0);
    assert!(matches!(
        pipeline.reserve_serials(batch, IssuerId(f.issuer.0 + 9), &[(0, &s0)]),
        Err(StoreError::IssuerMismatch { .. })
    ));
    pipeline
        .reserve_serials(batch, f.issuer, &[(0, &s0)])
        .expect("reserve");
    pipeline
        .insert_certificates(batch, &records(1, 0..1))
        .expect("record");
    assert_eq!(f.store.certificate_count(batch).expect("count"), 1);
}

/// Finishing a batch wastes exactly the intents no certificate holds: none when every intent
/// has its certificate (the sweep is skipped), and the unused one when a certificate
/// registered its own serial beside it (as many certificates as reserved rows, one intent
/// more, so the sweep runs).
#[test]
fn finishing_wastes_only_intents_without_a_certificate() {
    let mut f = fixture();
    let state = |store: &Store, batch| -> Vec<(u64, IntentState)> {
        let mut intents: Vec<_> = store
            .serial_intents(batch)
            .expect("intents")
            .into_iter()
            .map(|intent| (intent.row, intent.state))
            .collect();
        intents.sort_by_key(|(row, _)| *row);
        intents
    };
    // Every reserved serial recorded: nothing wasted.
    let whole = f
        .store
        .create_batch(&new_batch(f.issuer, 2))
        .expect("create");
    let (s0, s1) = (serial(1, 0), serial(1, 1));
    f.store
        .reserve_serials(whole, f.issuer, &[(0, &s0), (1, &s1)])
        .expect("reserve");
    f.store
        .insert_certificates(whole, &records(1, 0..2))
        .expect("record");
    f.store
        .finish_batch(whole, BatchStatus::ReadyForDownload)
        .expect("finish");
    // (The store lists the intents no certificate holds.)
    assert_eq!(state(&f.store, whole), []);
    // Rows 0 and 1 reserved; row 0 and an unreserved row 2 recorded: row 1 is wasted.
    let mixed = f
        .store
        .create_batch(&new_batch(f.issuer, 3))
        .expect("create");
    let (t0, t1) = (serial(2, 0), serial(2, 1));
    f.store
        .reserve_serials(mixed, f.issuer, &[(0, &t0), (1, &t1)])
        .expect("reserve");
    let mut recorded = records(2, 0..1);
    recorded.extend(records(2, 2..3));
    f.store
        .insert_certificates(mixed, &recorded)
        .expect("record");
    f.store
        .finish_batch(mixed, BatchStatus::BatchIssuedPartly)
        .expect("finish");
    assert_eq!(state(&f.store, mixed), [(1, IntentState::Wasted)]);
}
