//! Tests of format version 5: revocations, serial status, CRL numbers, OCSP responders.

use super::tests::{fixture, new_batch, records, serial, Fixture, T0};
use super::*;
use crate::revocation::{RevocationReason, RevokedEntry};

/// A batch of `size` devices (tag 1, rows 0..size), finished Ready For Download, paid by an
/// authority with `size` units.
fn issued_batch(f: &mut Fixture, tag: u8, size: u64) -> (BatchId, AuthorityId) {
    let organization = f.store.create_organization("Acme").expect("org");
    let authority = f
        .store
        .create_authority(organization, "iot-ecc", f.issuer, size)
        .expect("authority");
    let batch = f
        .store
        .create_batch_for(authority, &new_batch(f.issuer, size), Some(7))
        .expect("create");
    for chunk in records(tag, 0..size).chunks(1000) {
        f.store.insert_certificates(batch, chunk).expect("issue");
    }
    f.store
        .finish_batch(batch, BatchStatus::ReadyForDownload)
        .expect("finish");
    (batch, authority)
}

/// A pending batch of `kind` and `size` paid by a new authority with 10 units: serials of
/// rows 0..`reserved` (tag `tag`) reserved, certificates of rows 0..`recorded` recorded.
/// Returns the batch, the authority and the reserved serials.
fn charged_batch(
    f: &mut Fixture,
    kind: &'static str,
    size: u64,
    tag: u8,
    reserved: u64,
    recorded: u64,
) -> (BatchId, AuthorityId, Vec<Vec<u8>>) {
    let organization = f.store.create_organization("Acme").expect("org");
    let authority = f
        .store
        .create_authority(organization, "iot-ecc", f.issuer, 10)
        .expect("authority");
    let batch = f
        .store
        .create_batch_for(
            authority,
            &NewBatch {
                kind,
                ..new_batch(f.issuer, size)
            },
            Some(7),
        )
        .expect("create");
    let serials: Vec<Vec<u8>> = (0..reserved).map(|row| serial(tag, row)).collect();
    let rows: Vec<(u64, &[u8])> = serials
        .iter()
        .enumerate()
        .map(|(row, s)| (row as u64, s.as_slice()))
        .collect();
    f.store
        .reserve_serials(batch, f.issuer, &rows)
        .expect("reserve");
    f.store
        .insert_certificates(batch, &records(tag, 0..recorded))
        .expect("issue");
    (batch, authority, serials)
}

/// An authority's (available, reserved, used) units.
fn balance(f: &Fixture, authority: AuthorityId) -> (u64, u64, u64) {
    let a = f.store.authority(authority).expect("authority");
    (a.balance_available, a.balance_reserved, a.balance_used)
}

/// Whether OCSP would answer `serial` of the fixture's issuer good.
fn is_good(f: &Fixture, serial: &[u8]) -> bool {
    matches!(
        f.store.serial_status(f.issuer, serial).expect("status"),
        SerialStatus::Good { .. }
    )
}

fn device(tag: u8, row: u64) -> [u8; 16] {
    let mut id = [tag; 16];
    id[8..].copy_from_slice(&row.to_be_bytes());
    id
}

fn status_of(store: &Store, tag: u8, row: u64) -> DeviceStatus {
    store
        .find_certificates(Some(&format!("device-{tag}-{row}")), None)
        .expect("find")[0]
        .status
}

#[test]
fn revoking_a_device_is_recorded_audited_and_idempotent() {
    let mut f = fixture();
    let (batch, _) = issued_batch(&mut f, 1, 3);
    let epoch = f.store.revocation_epoch().expect("epoch");
    let store = f.store.with_clock(|| T0 + 100);

    let report = store
        .revoke_devices(&[device(1, 1)], RevocationReason::Superseded, "user 7")
        .expect("revoke");
    assert_eq!(report[0].outcome, RevokeOutcome::Revoked);
    assert_eq!(report[0].serial_hex, hex(&serial(1, 1)));
    assert_eq!(report[0].batch_id, batch);
    assert_eq!(status_of(&store, 1, 1), DeviceStatus::Revoked);
    assert_eq!(status_of(&store, 1, 0), DeviceStatus::Issued);
    assert_eq!(
        store
            .serial_status(f.issuer, &serial(1, 1))
            .expect("status"),
        SerialStatus::Revoked {
            revoked_at: T0 + 100,
            reason: RevocationReason::Superseded,
            not_after: T0 + 86_400,
        }
    );
    assert_eq!(store.revocation_epoch().expect("epoch"), epoch + 1);
    let entries = store.device_audit_log(batch).expect("log");
    let revoked: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == AuditKind::Revoked)
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].actor, "user 7");
    assert!(revoked[0].message.contains("reason superseded (4)"));

    // Again, and with another reason: nothing changes, nothing is logged.
    let store = store.with_clock(|| T0 + 200);
    let again = store
        .revoke_devices(&[device(1, 1)], RevocationReason::AffiliationChanged, "cli")
        .expect("again");
    assert_eq!(again[0].outcome, RevokeOutcome::AlreadyRevoked);
    assert_eq!(again[0].reason, Some(RevocationReason::Superseded));
    assert_eq!(again[0].revoked_at, Some(T0 + 100));
    assert_eq!(store.revocation_epoch().expect("epoch"), epoch + 1);

    // keyCompromise escalates the reason and keeps the first date.
    let escalated = store
        .revoke_devices(&[device(1, 1)], RevocationReason::KeyCompromise, "cli")
        .expect("escalate");
    assert_eq!(
        escalated[0].outcome,
        RevokeOutcome::ReasonChanged {
            from: RevocationReason::Superseded
        }
    );
    assert!(matches!(
        store.serial_status(f.issuer, &serial(1, 1)).expect("status"),
        SerialStatus::Revoked {
            revoked_at,
            reason: RevocationReason::KeyCompromise,
            ..
        } if revoked_at == T0 + 100
    ));
    store.verify_audit_chain().expect("chain");
}

#[test]
fn an_unknown_device_revokes_nothing() {
    let mut f = fixture();
    issued_batch(&mut f, 1, 2);
    let epoch = f.store.revocation_epoch().expect("epoch");
    let result = f.store.revoke_devices(
        &[device(1, 0), device(9, 9)],
        RevocationReason::KeyCompromise,
        "cli",
    );
    assert!(
        matches!(&result, Err(StoreError::CertificateNotFound { what }) if what.starts_with("device ")),
        "{result:?}"
    );
    assert_eq!(status_of(&f.store, 1, 0), DeviceStatus::Issued);
    assert!(is_good(&f, &serial(1, 0)));
    assert_eq!(f.store.revocation_epoch().expect("epoch"), epoch);
}

#[test]
fn a_hold_is_released_or_made_permanent() {
    let mut f = fixture();
    let (batch, _) = issued_batch(&mut f, 1, 2);
    f.store.mark_downloaded(batch).expect("download");
    f.store
        .revoke_serial(
            f.issuer,
            &serial(1, 0),
            RevocationReason::CertificateHold,
            "cli",
        )
        .expect("hold");
    assert_eq!(status_of(&f.store, 1, 0), DeviceStatus::Revoked);
    let released = f
        .store
        .revoke_serial(
            f.issuer,
            &serial(1, 0),
            RevocationReason::RemoveFromCrl,
            "cli",
        )
        .expect("release");
    assert_eq!(released.outcome, RevokeOutcome::Released);
    assert_eq!(status_of(&f.store, 1, 0), DeviceStatus::Collected);
    assert!(is_good(&f, &serial(1, 0)));
    assert!(matches!(
        f.store.revoke_serial(
            f.issuer,
            &serial(1, 0),
            RevocationReason::RemoveFromCrl,
            "cli"
        ),
        Err(StoreError::NotOnHold { .. })
    ));
    f.store
        .revoke_serial(
            f.issuer,
            &serial(1, 1),
            RevocationReason::CertificateHold,
            "cli",
        )
        .expect("hold");
    let permanent = f
        .store
        .revoke_serial(
            f.issuer,
            &serial(1, 1),
            RevocationReason::CessationOfOperation,
            "cli",
        )
        .expect("permanent");
    assert_eq!(
        permanent.outcome,
        RevokeOutcome::ReasonChanged {
            from: RevocationReason::CertificateHold
        }
    );
    assert!(matches!(
        f.store.revoke_serial(
            f.issuer,
            &serial(9, 9),
            RevocationReason::KeyCompromise,
            "cli"
        ),
        Err(StoreError::CertificateNotFound { .. })
    ));
}

#[test]
fn a_batch_revoke_needs_a_download_and_revokes_every_certificate_in_one_go() {
    let mut f = fixture();
    let (batch, authority) = issued_batch(&mut f, 1, 5000);
    assert!(matches!(
        f.store
            .revoke_batch(batch, RevocationReason::KeyCompromise, "user 7"),
        Err(StoreError::NotRevocable {
            downloaded: false,
            ..
        })
    ));
    assert!(matches!(
        f.store
            .revoke_batch(batch, RevocationReason::CertificateHold, "user 7"),
        Err(StoreError::BatchReasonRefused { .. })
    ));
    f.store.mark_downloaded(batch).expect("download");
    // One certificate revoked before keeps its reason and date.
    let store = f.store.with_clock(|| T0 + 10);
    store
        .revoke_devices(&[device(1, 3)], RevocationReason::Superseded, "cli")
        .expect("one");
    let balance_before = store.authority(authority).expect("authority");
    let store = store.with_clock(|| T0 + 20);
    let changed = store
        .revoke_batch(batch, RevocationReason::CessationOfOperation, "user 7")
        .expect("revoke");
    assert_eq!(changed, 4999);
    let row = store.batch(batch).expect("read").expect("exists");
    assert_eq!(row.status, BatchStatus::Revoked);
    assert!(!row.active);
    assert_eq!(
        store.authority(authority).expect("authority"),
        balance_before
    );
    assert!(matches!(
        store.serial_status(f.issuer, &serial(1, 3)).expect("status"),
        SerialStatus::Revoked {
            revoked_at,
            reason: RevocationReason::Superseded,
            ..
        } if revoked_at == T0 + 10
    ));
    assert!(matches!(
        store
            .serial_status(f.issuer, &serial(1, 4999))
            .expect("status"),
        SerialStatus::Revoked {
            reason: RevocationReason::CessationOfOperation,
            ..
        }
    ));
    assert_eq!(status_of(&store, 1, 0), DeviceStatus::Revoked);
    let log = store.audit_log(batch).expect("log");
    let statuses: Vec<&str> = log
        .iter()
        .filter(|e| e.kind == AuditKind::Status)
        .map(|e| e.message.as_str())
        .collect();
    assert!(statuses
        .contains(&"Ready For Download -> Processing Revoke: reason cessationOfOperation (5)"));
    assert!(statuses.contains(&"Processing Revoke -> Revoked"));
    let revoked = store
        .device_audit_log(batch)
        .expect("log")
        .into_iter()
        .filter(|e| e.kind == AuditKind::Revoked)
        .count();
    assert_eq!(revoked, 5000);
    store.verify_audit_chain().expect("chain");
    // A second revoke is refused: the batch is Revoked.
    assert!(matches!(
        store.revoke_batch(batch, RevocationReason::KeyCompromise, "user 7"),
        Err(StoreError::NotRevocable {
            status: BatchStatus::Revoked,
            ..
        })
    ));

    // The CRL stream: every entry, in serial order, none expired before the cut.
    let mut streamed: Vec<RevokedEntry> = Vec::new();
    let count = store
        .for_each_revocation(f.issuer, T0, |entry| {
            streamed.push(entry);
            Ok::<(), ()>(())
        })
        .expect("stream")
        .expect("each");
    assert_eq!(count, 5000);
    assert!(streamed.windows(2).all(|w| w[0].serial < w[1].serial));
    let after_expiry = store
        .for_each_revocation(f.issuer, T0 + 86_401, |_| Ok::<(), ()>(()))
        .expect("stream")
        .expect("each");
    assert_eq!(after_expiry, 0);
}

#[test]
fn a_rejected_batch_is_revoked_for_cessation_of_operation() {
    let mut f = fixture();
    let (batch, _) = issued_batch(&mut f, 1, 3);
    let epoch = f.store.revocation_epoch().expect("epoch");
    f.store.reject_batch(batch, "wrong lot").expect("reject");
    assert!(matches!(
        f.store
            .serial_status(f.issuer, &serial(1, 2))
            .expect("status"),
        SerialStatus::Revoked {
            reason: RevocationReason::CessationOfOperation,
            ..
        }
    ));
    assert_eq!(f.store.revocation_epoch().expect("epoch"), epoch + 1);
    assert_eq!(status_of(&f.store, 1, 2), DeviceStatus::Rejected);
}

#[test]
fn serial_status_tells_unknown_pending_and_voided_apart() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 2))
        .expect("create");
    let (s0, s1) = (serial(3, 0), serial(3, 1));
    f.store
        .reserve_serials(batch, f.issuer, &[(0, &s0), (1, &s1)])
        .expect("reserve");
    assert_eq!(
        f.store.serial_status(f.issuer, &s0).expect("status"),
        SerialStatus::Pending
    );
    assert_eq!(
        f.store.serial_status(f.issuer, &[0x42]).expect("status"),
        SerialStatus::Unknown
    );
    assert_eq!(
        f.store.serial_status(IssuerId(999), &s0).expect("status"),
        SerialStatus::Unknown
    );
    f.store
        .insert_certificates(batch, &records(3, 0..1))
        .expect("issue");
    f.store
        .finish_batch(batch, BatchStatus::BatchIssuedPartly)
        .expect("finish");
    assert!(matches!(
        f.store.serial_status(f.issuer, &s0).expect("status"),
        SerialStatus::Good { .. }
    ));
    assert_eq!(
        f.store.serial_status(f.issuer, &s1).expect("status"),
        SerialStatus::Voided
    );
}

#[test]
fn crl_numbers_only_go_up_and_an_older_crl_never_overwrites_the_state() {
    let f = fixture();
    let state = f.store.crl_state(f.issuer).expect("state");
    assert_eq!(state.crl_number, 0);
    assert!(state.is_stale());
    let (first, version) = f.store.next_crl_number(f.issuer).expect("number");
    let (second, _) = f.store.next_crl_number(f.issuer).expect("number");
    assert_eq!((first, second), (1, 2));
    f.store
        .record_crl(f.issuer, second, T0, T0 + 100, version)
        .expect("record");
    // The slower writer of number 1 finishes last: ignored.
    f.store
        .record_crl(f.issuer, first, T0 - 5, T0 + 50, version)
        .expect("record");
    let state = f.store.crl_state(f.issuer).expect("state");
    assert_eq!(state.crl_number, 2);
    assert_eq!(state.this_update, Some(T0));
    assert!(!state.is_stale());
    assert!(matches!(
        f.store.next_crl_number(IssuerId(999)),
        Err(StoreError::IssuerNotFound { .. })
    ));
}

#[test]
fn an_ocsp_responder_serial_and_a_device_serial_never_meet() {
    let f = fixture();
    let batch = f
        .store
        .create_batch(&new_batch(f.issuer, 2))
        .expect("create");
    let taken = serial(4, 0);
    f.store
        .reserve_serials(batch, f.issuer, &[(0, &taken)])
        .expect("reserve");
    assert!(matches!(
        f.store
            .record_ocsp_responder(f.issuer, &taken, T0, T0 + 10, b"der"),
        Err(StoreError::DuplicateSerial { .. })
    ));
    let responder = serial(4, 1);
    f.store
        .record_ocsp_responder(f.issuer, &responder, T0, T0 + 10, b"der")
        .expect("record");
    assert!(matches!(
        f.store.reserve_serials(batch, f.issuer, &[(1, &responder)]),
        Err(StoreError::DuplicateSerial { .. })
    ));
}

#[test]
fn a_csr_certificate_is_pending_for_ocsp_until_its_batch_finishes() {
    let mut f = fixture();
    let batch = f
        .store
        .create_batch(&NewBatch {
            kind: "CSR",
            ..new_batch(f.issuer, 2)
        })
        .expect("create");
    f.store
        .insert_certificates(batch, &records(4, 0..2))
        .expect("issue");
    // Recorded but not delivered: a batch verified as it is signed may still void it.
    assert_eq!(
        f.store
            .serial_status(f.issuer, &serial(4, 0))
            .expect("status"),
        SerialStatus::Pending
    );
    f.store
        .finish_batch(batch, BatchStatus::ReadyForDownload)
        .expect("finish");
    assert!(is_good(&f, &serial(4, 0)));
}

#[test]
fn a_station_device_is_good_for_ocsp_while_its_batch_is_open() {
    let mut f = fixture();
    // A station's batch (SINGLE) stays Pending Issue for a shift and hands every device out
    // as soon as it is recorded.
    let batch = f
        .store
        .create_batch(&NewBatch {
            kind: "SINGLE",
            ..new_batch(f.issuer, 2)
        })
        .expect("create");
    f.store
        .insert_certificates(batch, &records(6, 0..1))
        .expect("issue");
    assert!(is_good(&f, &serial(6, 0)));
    // Abandoned (a crash), its delivered devices stay issued and good.
    assert_eq!(
        f.store
            .abandon_batch(batch, "interrupted")
            .expect("abandon"),
        0
    );
    assert_eq!(
        f.store
            .find_certificates(Some("device-6-0"), None)
            .expect("find")
            .len(),
        1
    );
    assert!(is_good(&f, &serial(6, 0)));
}

#[test]
fn abandoning_a_csr_batch_voids_what_it_recorded() {
    let mut f = fixture();
    let (batch, authority, serials) = charged_batch(&mut f, "CSR", 4, 8, 3, 2);
    // Crash recovery, or a failure such as a full disk: nothing was delivered.
    let voided = f
        .store
        .abandon_batch(
            batch,
            "interrupted: the process stopped after 2 of 4 devices",
        )
        .expect("abandon");
    assert_eq!(voided, 2);
    let row = f.store.batch(batch).expect("read").expect("batch");
    assert_eq!(row.status, BatchStatus::Broken);
    assert_eq!((row.issued, row.reserved, row.used), (0, 0, 0));
    assert_eq!(balance(&f, authority), (10, 0, 0));
    for s in &serials {
        assert_eq!(
            f.store.serial_status(f.issuer, s).expect("status"),
            SerialStatus::Voided
        );
    }
    let log = f.store.audit_log(batch).expect("audit");
    assert!(log
        .iter()
        .any(|e| e.kind == AuditKind::Voided && e.message.starts_with("2 certificates")));
    assert!(f.store.verify_audit_chain().expect("chain") > 0);
}

#[test]
fn setting_a_pending_csr_batch_broken_voids_what_it_recorded() {
    let mut f = fixture();
    let (batch, authority, serials) = charged_batch(&mut f, "CSR", 4, 9, 3, 2);
    f.store
        .set_batch_status(batch, BatchStatus::Broken, Some("stopped by an operator"))
        .expect("broken");
    let row = f.store.batch(batch).expect("read").expect("batch");
    assert_eq!(row.status, BatchStatus::Broken);
    assert_eq!((row.issued, row.reserved, row.used), (0, 0, 0));
    assert_eq!(balance(&f, authority), (10, 0, 0));
    assert!(serials.iter().all(|s| !is_good(&f, s)));
    assert_eq!(
        f.store
            .serial_status(f.issuer, &serials[0])
            .expect("status"),
        SerialStatus::Voided
    );
    let log = f.store.audit_log(batch).expect("audit");
    assert!(log
        .iter()
        .any(|e| e.kind == AuditKind::Voided && e.message.starts_with("2 certificates")));

    // A device batch keeps what it recorded: its keys went out with the partial ZIP.
    let (devices, _, kept) = charged_batch(&mut f, "CSV", 4, 10, 3, 2);
    f.store
        .set_batch_status(devices, BatchStatus::Broken, Some("disk full"))
        .expect("broken");
    assert!(is_good(&f, &kept[0]) && is_good(&f, &kept[1]));
    assert!(f.store.verify_audit_chain().expect("chain") > 0);
}

#[test]
fn voiding_a_batch_deletes_its_certificates_wastes_its_serials_and_restores_the_balance() {
    let mut f = fixture();
    let (batch, authority, serials) = charged_batch(&mut f, "GENERATOR", 6, 5, 6, 4);
    assert_eq!(balance(&f, authority), (4, 2, 4));

    let voided = f
        .store
        .void_batch(batch, "entry `#5`: the CSR signature does not verify")
        .expect("void");
    assert_eq!(voided, 4);
    let row = f.store.batch(batch).expect("read").expect("batch");
    assert_eq!(row.status, BatchStatus::Broken);
    assert_eq!((row.issued, row.reserved, row.used), (0, 0, 0));
    assert!(row.reason.as_deref().unwrap_or("").contains("#5"));
    assert_eq!(balance(&f, authority), (10, 0, 0));
    assert!(f
        .store
        .find_certificates(Some("device-5-0"), None)
        .expect("find")
        .is_empty());
    let intents = f.store.serial_intents(batch).expect("intents");
    assert_eq!(intents.len(), 6);
    assert!(intents.iter().all(|i| i.state == IntentState::Wasted));
    for s in &serials {
        assert_eq!(
            f.store.serial_status(f.issuer, s).expect("status"),
            SerialStatus::Voided
        );
    }
    let log = f.store.audit_log(batch).expect("audit");
    assert!(log
        .iter()
        .any(|e| e.kind == AuditKind::Voided && e.message.starts_with("4 certificates")));
    assert!(f.store.verify_audit_chain().expect("chain") > 0);
    // A serial of a voided batch is never reused.
    let again = f
        .store
        .create_batch_for(authority, &new_batch(f.issuer, 1), Some(7))
        .expect("create");
    assert!(matches!(
        f.store
            .reserve_serials(again, f.issuer, &[(0, &serials[0])]),
        Err(StoreError::DuplicateSerial { .. })
    ));
    // Only a pending batch can be voided.
    assert!(matches!(
        f.store.void_batch(batch, "again"),
        Err(StoreError::InvalidTransition { .. })
    ));
}
