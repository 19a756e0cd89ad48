//! Revocations in the store: revoking certificates one by one, by device or a whole batch,
//! the status of a serial for OCSP, an issuer's entries for its CRL, CRL numbers, and the
//! OCSP responder certificates an issuer signed.
//!
//! Every change commits in one immediate transaction together with its audit entries and the
//! issuer's `revocation_version` bump, before the caller acknowledges it: a revocation that was
//! answered survives a crash. The rules for a certificate that is already revoked are in
//! [`decide`].

use super::db::{params, OptionalExtension, Transaction};
use super::{
    db, from_sql_integer, hex, parse_serial_query, significant_octets, to_sql_integer, AuditChain,
    AuditKind, BatchId, BatchState, BatchStatus, DeviceStatus, IssuerId, NewAuditEntry, Store,
    StoreError, MAX_SERIAL_OCTETS,
};
use crate::revocation::{RevocationReason, RevokedEntry};

/// What a revocation request did to one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// It was already revoked: its first reason and date stand.
    AlreadyRevoked,
    /// It was revoked before with `from`; the reason changed (a hold made permanent, or an
    /// escalation to keyCompromise). The revocation date stays the first one.
    ReasonChanged {
        /// The reason it had.
        from: RevocationReason,
    },
    /// It was on hold and is valid again (removeFromCRL).
    Released,
    /// It is newly revoked.
    Revoked,
}

impl RevokeOutcome {
    /// Whether the request changed anything.
    pub fn changed(self) -> bool {
        self != RevokeOutcome::AlreadyRevoked
    }
}

/// One certificate a revocation request named, with what happened to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Device id, hyphenated.
    pub device_id: String,
    /// Serial number, lower-case hex.
    pub serial_hex: String,
    /// The batch it was issued in.
    pub batch_id: BatchId,
    /// Its issuer.
    pub issuer: IssuerId,
    /// The reason it is revoked for now (`None` once released from hold).
    pub reason: Option<RevocationReason>,
    /// When it was revoked (the first revocation's date), unix seconds.
    pub revoked_at: Option<i64>,
    /// What the request did.
    pub outcome: RevokeOutcome,
}

/// One stored revocation, as `certmill crl show` and the API list them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationRow {
    /// Serial number, lower-case hex.
    pub serial_hex: String,
    /// Device id, hyphenated.
    pub device_id: String,
    /// The batch the certificate was issued in.
    pub batch_id: BatchId,
    /// Why.
    pub reason: RevocationReason,
    /// When, unix seconds.
    pub revoked_at: i64,
    /// The certificate's notAfter, unix seconds.
    pub not_after: i64,
    /// Who revoked it (`user <id>`, `cli`, `system`).
    pub actor: String,
}

/// What an issuer's serial registry knows of a serial, for OCSP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialStatus {
    /// A certificate with this serial was issued and is not revoked.
    Good {
        /// Its notAfter, unix seconds.
        not_after: i64,
    },
    /// Reserved for a device of a batch still issuing: no certificate yet, or a CSR batch's
    /// certificate not yet delivered (its batch has not finished).
    Pending,
    /// A certificate with this serial was issued and is revoked.
    Revoked {
        /// When, unix seconds.
        revoked_at: i64,
        /// Why.
        reason: RevocationReason,
        /// Its notAfter, unix seconds.
        not_after: i64,
    },
    /// The issuer never assigned this serial.
    Unknown,
    /// Reserved, then never used for a certificate (the batch ended without it): no
    /// certificate with this serial exists, and none ever will.
    Voided,
}

/// An issuer's CRL state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrlState {
    /// The last CRL number issued (0 before the first CRL).
    pub crl_number: u64,
    /// thisUpdate of the last CRL, unix seconds.
    pub this_update: Option<i64>,
    /// nextUpdate of the last CRL, unix seconds.
    pub next_update: Option<i64>,
    /// The issuer's `revocation_version` the last CRL was built from.
    pub built_from_version: Option<i64>,
    /// The issuer's `revocation_version` now.
    pub revocation_version: i64,
}

impl CrlState {
    /// Whether revocations changed since the last CRL (or there is none).
    pub fn is_stale(&self) -> bool {
        self.built_from_version != Some(self.revocation_version)
    }
}

/// A stored `revocations.reason`, checked: the table's CHECK keeps it a CRLReason, so another
/// value means the file was altered outside certmill.
fn stored_reason(code: i64, serial: &[u8]) -> Result<RevocationReason, StoreError> {
    u8::try_from(code)
        .ok()
        .and_then(RevocationReason::from_code)
        .ok_or_else(|| StoreError::CorruptRow {
            table: "revocations",
            id: hex(serial),
            column: "reason",
            value: code.to_string(),
        })
}

/// What to do with a certificate's revocation given its current reason and the one asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Insert,
    Keep,
    Release,
    SetReason,
}

/// The revocation rules: a revoked certificate keeps its first reason and date, except that a
/// hold (certificateHold) may be made permanent with any other reason or released with
/// removeFromCRL (RFC 5280 section 5.3.1), and any reason may be escalated to keyCompromise
/// (what boulder allows too: a key compromise learned later must reach relying parties).
/// removeFromCRL on a certificate that is not on hold is [`StoreError::NotOnHold`].
fn decide(
    current: Option<RevocationReason>,
    requested: RevocationReason,
    serial: &[u8],
) -> Result<Change, StoreError> {
    use RevocationReason::{CertificateHold, KeyCompromise, RemoveFromCrl};
    match (current, requested) {
        (Some(CertificateHold), RemoveFromCrl) => Ok(Change::Release),
        (_, RemoveFromCrl) => Err(StoreError::NotOnHold {
            serial_hex: hex(serial),
        }),
        (None, _) => Ok(Change::Insert),
        (Some(CertificateHold), CertificateHold) => Ok(Change::Keep),
        (Some(CertificateHold), _) => Ok(Change::SetReason),
        (Some(current), KeyCompromise) if current != KeyCompromise => Ok(Change::SetReason),
        (Some(_), _) => Ok(Change::Keep),
    }
}

/// A certificate as a revocation reads it inside its transaction.
struct Target {
    device_id: [u8; 16],
    batch_id: i64,
    issuer_id: i64,
    serial: Vec<u8>,
    not_after: i64,
    current: Option<(RevocationReason, i64)>,
}

/// A [`Target`] as SQLite types: device id, batch, issuer, serial, notAfter, reason, date.
type RawTarget = (Vec<u8>, i64, i64, Vec<u8>, i64, Option<i64>, Option<i64>);

/// Columns of [`Target::read`], from `certificates c LEFT JOIN revocations r`.
const SELECT_TARGET: &str = "SELECT c.device_id, c.batch_id, c.issuer_id, c.serial, c.not_after,
        r.reason, r.revoked_at, c.row_index
     FROM certificates c
     LEFT JOIN revocations r ON r.issuer_id = c.issuer_id AND r.serial = c.serial";

impl Target {
    fn read(row: &db::Row<'_>) -> db::Result<RawTarget> {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
        ))
    }

    fn parse(raw: RawTarget) -> Result<Target, StoreError> {
        let (device_id, batch_id, issuer_id, serial, not_after, reason, revoked_at) = raw;
        let corrupt = |column: &'static str, value: String| StoreError::CorruptRow {
            table: "revocations",
            id: hex(&serial),
            column,
            value,
        };
        let device_id = <[u8; 16]>::try_from(device_id.as_slice())
            .map_err(|_| corrupt("device_id", hex(&device_id)))?;
        let current = match (reason, revoked_at) {
            (Some(code), Some(at)) => Some((stored_reason(code, &serial)?, at)),
            _ => None,
        };
        Ok(Target {
            device_id,
            batch_id,
            issuer_id,
            serial,
            not_after,
            current,
        })
    }
}

/// Writes one decided change inside the caller's transaction and returns its report; the audit
/// entry is appended by the caller (so a batch can append many at once). `set_status` updates
/// the certificate's status row; a batch revoke leaves that to its Revoked transition, which
/// sets the whole batch's in one statement.
fn apply(
    tx: &Transaction<'_>,
    target: &Target,
    requested: RevocationReason,
    actor: &str,
    now: i64,
    set_status: bool,
) -> Result<RevokedCertificate, StoreError> {
    const ACTION: &str = "recording a revocation";
    let change = decide(target.current.map(|(r, _)| r), requested, &target.serial)?;
    let run = super::statement_runner(tx, ACTION);
    let code = i64::from(requested.code());
    let (reason, revoked_at, outcome) = match (change, target.current) {
        (Change::Insert, _) => {
            run(
                "INSERT INTO revocations (issuer_id, serial, device_id, batch_id, reason,
                                          revoked_at, not_after, actor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                &[
                    &target.issuer_id,
                    &target.serial,
                    &target.device_id.as_slice(),
                    &target.batch_id,
                    &code,
                    &now,
                    &target.not_after,
                    &actor,
                ],
            )?;
            (Some(requested), Some(now), RevokeOutcome::Revoked)
        }
        (Change::SetReason, Some((from, at))) => {
            run(
                "UPDATE revocations SET reason = ?3 WHERE issuer_id = ?1 AND serial = ?2",
                &[&target.issuer_id, &target.serial, &code],
            )?;
            (
                Some(requested),
                Some(at),
                RevokeOutcome::ReasonChanged { from },
            )
        }
        (Change::Release, _) => {
            run(
                "DELETE FROM revocations WHERE issuer_id = ?1 AND serial = ?2",
                &[&target.issuer_id, &target.serial],
            )?;
            (None, None, RevokeOutcome::Released)
        }
        (_, current) => (
            current.map(|(r, _)| r),
            current.map(|(_, at)| at),
            RevokeOutcome::AlreadyRevoked,
        ),
    };
    if set_status && outcome.changed() {
        // A released certificate is back to what its batch's download made it.
        run(
            "UPDATE certificates SET status = CASE WHEN ?2 THEN ?3 ELSE
                 (SELECT CASE WHEN b.downloaded_at IS NULL THEN ?4 ELSE ?5 END
                  FROM batches b WHERE b.id = certificates.batch_id) END
             WHERE device_id = ?1",
            &[
                &target.device_id.as_slice(),
                &(outcome != RevokeOutcome::Released),
                &DeviceStatus::Revoked.as_str(),
                &DeviceStatus::Issued.as_str(),
                &DeviceStatus::Collected.as_str(),
            ],
        )?;
    }
    Ok(RevokedCertificate {
        device_id: uuid::Uuid::from_bytes(target.device_id)
            .hyphenated()
            .to_string(),
        serial_hex: hex(&target.serial),
        batch_id: BatchId(target.batch_id),
        issuer: IssuerId(target.issuer_id),
        reason,
        revoked_at,
        outcome,
    })
}

/// The audit message of one device's revocation change.
fn audit_message(change: &RevokedCertificate, requested: RevocationReason) -> String {
    match change.outcome {
        RevokeOutcome::Revoked => format!(
            "revoked serial {} reason {} ({})",
            change.serial_hex,
            requested.name(),
            requested.code()
        ),
        RevokeOutcome::ReasonChanged { from } => format!(
            "revocation reason of serial {} changed from {} to {}",
            change.serial_hex,
            from.name(),
            requested.name()
        ),
        RevokeOutcome::Released => format!(
            "serial {} released from certificateHold (removeFromCRL)",
            change.serial_hex
        ),
        RevokeOutcome::AlreadyRevoked => format!("serial {} already revoked", change.serial_hex),
    }
}

fn bump_versions(tx: &Transaction<'_>, issuers: &[i64]) -> Result<(), StoreError> {
    for issuer in issuers {
        tx.prepare_cached(
            "UPDATE issuers SET revocation_version = revocation_version + 1 WHERE id = ?1",
        )
        .and_then(|mut update| update.execute([issuer]))
        .map_err(db("recording a revocation"))?;
    }
    Ok(())
}

/// Rows of a batch revoke read and written per round, so memory stays flat in the batch size.
const BATCH_REVOKE_CHUNK: i64 = 4096;

impl Store {
    /// Revokes the certificates of these devices for `reason`, all or none, in one transaction
    /// committed before this returns (with one audit entry per changed certificate).
    ///
    /// A device id that names no certificate is [`StoreError::CertificateNotFound`] and nothing
    /// changes. A certificate already revoked keeps its first reason and date, except for the
    /// hold and keyCompromise rules (`decide`, `docs/REVOCATION.md`). `actor` names who asked
    /// (`user 3`, `cli`).
    pub fn revoke_devices(
        &self,
        devices: &[[u8; 16]],
        reason: RevocationReason,
        actor: &str,
    ) -> Result<Vec<RevokedCertificate>, StoreError> {
        const ACTION: &str = "revoking certificates";
        let tx = self.write_transaction(ACTION)?;
        let now = (self.clock)();
        let mut chain = AuditChain::load(&tx)?;
        let mut report = Vec::with_capacity(devices.len());
        let mut issuers: Vec<i64> = Vec::new();
        for device in devices {
            let raw = tx
                .prepare_cached(&format!("{SELECT_TARGET} WHERE c.device_id = ?1"))
                .and_then(|mut select| {
                    select
                        .query_row([device.as_slice()], Target::read)
                        .optional()
                })
                .map_err(db(ACTION))?
                .ok_or_else(|| StoreError::CertificateNotFound {
                    what: format!("device {}", uuid::Uuid::from_bytes(*device).hyphenated()),
                })?;
            let target = Target::parse(raw)?;
            let change = apply(&tx, &target, reason, actor, now, true)?;
            if change.outcome.changed() {
                chain.append(
                    &tx,
                    &NewAuditEntry {
                        batch: target.batch_id,
                        device_id: Some(&target.device_id),
                        time: now,
                        actor,
                        kind: AuditKind::Revoked,
                        message: &audit_message(&change, reason),
                    },
                )?;
                if !issuers.contains(&target.issuer_id) {
                    issuers.push(target.issuer_id);
                }
            }
            report.push(change);
        }
        bump_versions(&tx, &issuers)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(report)
    }

    /// Revokes the certificate with this serial of `issuer` (as [`Store::revoke_devices`]).
    pub fn revoke_serial(
        &self,
        issuer: IssuerId,
        serial: &[u8],
        reason: RevocationReason,
        actor: &str,
    ) -> Result<RevokedCertificate, StoreError> {
        let device = self.device_of_serial(issuer, serial)?.ok_or_else(|| {
            StoreError::CertificateNotFound {
                what: format!("serial {}", hex(significant_octets(serial))),
            }
        })?;
        let mut report = self.revoke_devices(&[device], reason, actor)?;
        report.pop().ok_or(StoreError::CertificateNotFound {
            what: format!("serial {}", hex(significant_octets(serial))),
        })
    }

    /// The batch of the device's certificate, if the device has one.
    pub fn find_device(&self, device: &[u8; 16]) -> Result<Option<BatchId>, StoreError> {
        self.connection
            .prepare_cached("SELECT batch_id FROM certificates WHERE device_id = ?1")
            .and_then(|mut select| {
                select
                    .query_row([device.as_slice()], |row| row.get(0))
                    .optional()
            })
            .map(|found| found.map(BatchId))
            .map_err(db("looking up a device"))
    }

    /// The device whose certificate of `issuer` has this serial, if one was issued.
    pub fn device_of_serial(
        &self,
        issuer: IssuerId,
        serial: &[u8],
    ) -> Result<Option<[u8; 16]>, StoreError> {
        let serial = significant_octets(serial);
        let found: Option<Vec<u8>> = self
            .connection
            .prepare_cached(
                "SELECT c.device_id FROM serial_intents i
                 JOIN certificates c ON c.batch_id = i.batch_id AND c.row_index = i.row_index
                                    AND c.serial = i.serial
                 WHERE i.issuer_id = ?1 AND i.serial = ?2",
            )
            .and_then(|mut select| {
                select
                    .query_row(params![issuer.0, serial], |row| row.get(0))
                    .optional()
            })
            .map_err(db("looking up a serial"))?;
        found
            .map(|octets| {
                <[u8; 16]>::try_from(octets.as_slice()).map_err(|_| StoreError::CorruptRow {
                    table: "certificates",
                    id: hex(serial),
                    column: "device_id",
                    value: hex(&octets),
                })
            })
            .transpose()
    }

    /// Revokes every certificate of a downloaded batch (seed 001: Processing Revoke, then
    /// Revoked), in one transaction with one audit entry per changed certificate; the balance is
    /// not restored. Returns how many certificates changed.
    ///
    /// Refused with [`StoreError::NotRevocable`] unless the batch is Ready For Download, Batch
    /// Issued Partly or Zip removed after expiration, and was downloaded. A hold or a release
    /// cannot be applied to a whole batch ([`StoreError::BatchReasonRefused`]): a batch revoke
    /// is final.
    pub fn revoke_batch(
        &self,
        batch: BatchId,
        reason: RevocationReason,
        actor: &str,
    ) -> Result<u64, StoreError> {
        const ACTION: &str = "revoking a batch";
        if matches!(
            reason,
            RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl
        ) {
            return Err(StoreError::BatchReasonRefused { reason });
        }
        let tx = self.write_transaction(ACTION)?;
        let mut state = BatchState::load(&tx, batch)?;
        if !state
            .status
            .can_become(BatchStatus::ProcessingRevoke, state.downloaded)
        {
            return Err(StoreError::NotRevocable {
                batch,
                status: state.status,
                downloaded: state.downloaded,
            });
        }
        let mut chain = AuditChain::load(&tx)?;
        let now = (self.clock)();
        let text = format!("reason {} ({})", reason.name(), reason.code());
        state.transition(
            &tx,
            &mut chain,
            batch,
            BatchStatus::ProcessingRevoke,
            Some(&text),
            actor,
            now,
        )?;
        let mut changed = 0u64;
        let mut last_row = -1i64;
        loop {
            let raws = tx
                .prepare_cached(&format!(
                    "{SELECT_TARGET} WHERE c.batch_id = ?1 AND c.row_index > ?2
                     ORDER BY c.row_index LIMIT ?3"
                ))
                .and_then(|mut select| {
                    select
                        .query_map(params![batch.0, last_row, BATCH_REVOKE_CHUNK], |row| {
                            Ok((Target::read(row)?, row.get::<_, i64>(7)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(db(ACTION))?;
            let Some(&(_, last)) = raws.last() else {
                break;
            };
            last_row = last;
            let mut changes = Vec::with_capacity(raws.len());
            for (raw, _) in raws {
                let target = Target::parse(raw)?;
                let change = apply(&tx, &target, reason, actor, now, false)?;
                if change.outcome.changed() {
                    changes.push((audit_message(&change, reason), target));
                }
            }
            changed += changes.len() as u64;
            let entries: Vec<NewAuditEntry<'_>> = changes
                .iter()
                .map(|(message, target)| NewAuditEntry {
                    batch: target.batch_id,
                    device_id: Some(&target.device_id),
                    time: now,
                    actor,
                    kind: AuditKind::Revoked,
                    message,
                })
                .collect();
            chain.append_all(&tx, &entries)?;
        }
        state.transition(
            &tx,
            &mut chain,
            batch,
            BatchStatus::Revoked,
            None,
            actor,
            now,
        )?;
        bump_versions(&tx, &[state.issuer_id])?;
        tx.commit().map_err(db(ACTION))?;
        Ok(changed)
    }

    /// What `issuer`'s serial registry knows of `serial` (leading zero octets ignored).
    pub fn serial_status(
        &self,
        issuer: IssuerId,
        serial: &[u8],
    ) -> Result<SerialStatus, StoreError> {
        let serial = significant_octets(serial);
        if serial.is_empty() || serial.len() > MAX_SERIAL_OCTETS {
            return Ok(SerialStatus::Unknown);
        }
        type Raw = (
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            String,
            String,
        );
        let raw: Option<Raw> = self
            .connection
            .prepare_cached(
                "SELECT i.state, c.not_after, r.reason, r.revoked_at, b.status, b.kind
                 FROM serial_intents i
                 JOIN batches b ON b.id = i.batch_id
                 LEFT JOIN certificates c ON c.batch_id = i.batch_id AND c.row_index = i.row_index
                                         AND c.serial = i.serial
                 LEFT JOIN revocations r ON r.issuer_id = i.issuer_id AND r.serial = i.serial
                 WHERE i.issuer_id = ?1 AND i.serial = ?2",
            )
            .and_then(|mut select| {
                select
                    .query_row(params![issuer.0, serial], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                        ))
                    })
                    .optional()
            })
            .map_err(db("reading the status of a serial"))?;
        let Some((state, not_after, reason, revoked_at, batch_status, kind)) = raw else {
            return Ok(SerialStatus::Unknown);
        };
        // A CSR batch's certificate is good once its batch finished: until then it was
        // delivered to no one, and a batch verified as it is signed may still void it
        // (Store::void_batch; a CSR batch that breaks off voids its certificates). Other
        // batches' certificates are good once recorded: a station hands each device out at once.
        let batch_pending =
            kind == "CSR" && BatchStatus::parse(&batch_status).is_some_and(BatchStatus::is_pending);
        Ok(match (not_after, reason, revoked_at) {
            (Some(not_after), Some(code), Some(revoked_at)) => SerialStatus::Revoked {
                revoked_at,
                reason: stored_reason(code, serial)?,
                not_after,
            },
            (Some(_), _, _) if batch_pending => SerialStatus::Pending,
            (Some(not_after), _, _) => SerialStatus::Good { not_after },
            (None, _, _) if state == super::IntentState::Reserved.as_str() => SerialStatus::Pending,
            (None, _, _) => SerialStatus::Voided,
        })
    }

    /// Streams `issuer`'s revocations of certificates whose notAfter is at or after
    /// `not_after_from`, in serial order, to `each`; returns how many it passed. Nothing is
    /// collected: a CRL of a million entries is encoded as it is read.
    pub fn for_each_revocation<E>(
        &self,
        issuer: IssuerId,
        not_after_from: i64,
        mut each: impl FnMut(RevokedEntry) -> Result<(), E>,
    ) -> Result<Result<u64, E>, StoreError> {
        const ACTION: &str = "reading revocations";
        let mut select = self
            .connection
            .prepare_cached(
                "SELECT serial, revoked_at, reason FROM revocations
                 WHERE issuer_id = ?1 AND not_after >= ?2 ORDER BY serial",
            )
            .map_err(db(ACTION))?;
        let mut rows = select
            .query(params![issuer.0, not_after_from])
            .map_err(db(ACTION))?;
        let mut count = 0u64;
        while let Some(row) = rows.next().map_err(db(ACTION))? {
            let serial: Vec<u8> = row.get(0).map_err(db(ACTION))?;
            let code: i64 = row.get(2).map_err(db(ACTION))?;
            let reason = stored_reason(code, &serial)?;
            let entry = RevokedEntry {
                serial,
                revoked_at: row.get(1).map_err(db(ACTION))?,
                reason,
            };
            if let Err(error) = each(entry) {
                return Ok(Err(error));
            }
            count += 1;
        }
        Ok(Ok(count))
    }

    /// The revocations of `issuer`, newest first, at most `limit`.
    pub fn revocations(
        &self,
        issuer: IssuerId,
        limit: u64,
    ) -> Result<Vec<RevocationRow>, StoreError> {
        const ACTION: &str = "listing revocations";
        let limit = to_sql_integer("limit", limit)?;
        type Raw = (Vec<u8>, Vec<u8>, i64, i64, i64, i64, String);
        let raws: Vec<Raw> = self
            .connection
            .prepare_cached(
                "SELECT serial, device_id, batch_id, reason, revoked_at, not_after, actor
                 FROM revocations WHERE issuer_id = ?1 ORDER BY revoked_at DESC, serial
                 LIMIT ?2",
            )
            .and_then(|mut select| {
                select
                    .query_map(params![issuer.0, limit], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                            row.get(6)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db(ACTION))?;
        raws.into_iter()
            .map(
                |(serial, device, batch, code, revoked_at, not_after, actor)| {
                    let corrupt = |column: &'static str, value: String| StoreError::CorruptRow {
                        table: "revocations",
                        id: hex(&serial),
                        column,
                        value,
                    };
                    Ok(RevocationRow {
                        reason: stored_reason(code, &serial)?,
                        device_id: uuid::Uuid::from_slice(&device)
                            .map_err(|_| corrupt("device_id", hex(&device)))?
                            .hyphenated()
                            .to_string(),
                        serial_hex: hex(&serial),
                        batch_id: BatchId(batch),
                        revoked_at,
                        not_after,
                        actor,
                    })
                },
            )
            .collect()
    }

    /// The CRL state of `issuer`.
    pub fn crl_state(&self, issuer: IssuerId) -> Result<CrlState, StoreError> {
        type Raw = (i64, Option<i64>, Option<i64>, Option<i64>, i64);
        let raw: Raw = self
            .connection
            .prepare_cached(
                "SELECT crl_number, crl_this_update, crl_next_update, crl_revocation_version,
                        revocation_version
                 FROM issuers WHERE id = ?1",
            )
            .and_then(|mut select| {
                select
                    .query_row([issuer.0], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    })
                    .optional()
            })
            .map_err(db("reading the CRL state"))?
            .ok_or(StoreError::IssuerNotFound { issuer })?;
        Ok(CrlState {
            crl_number: from_sql_integer("issuers", issuer.0, "crl_number", raw.0)?,
            this_update: raw.1,
            next_update: raw.2,
            built_from_version: raw.3,
            revocation_version: raw.4,
        })
    }

    /// Takes the next CRL number of `issuer` (strictly increasing, committed before the CRL is
    /// signed so a number is never used twice even if the CRL is then lost) and returns it with
    /// the `revocation_version` the CRL is about to be built from.
    pub fn next_crl_number(&self, issuer: IssuerId) -> Result<(u64, i64), StoreError> {
        const ACTION: &str = "taking a CRL number";
        let tx = self.write_transaction(ACTION)?;
        let raw: Option<(i64, i64)> = tx
            .prepare_cached(
                "UPDATE issuers SET crl_number = crl_number + 1 WHERE id = ?1
                 RETURNING crl_number, revocation_version",
            )
            .and_then(|mut update| {
                update
                    .query_row([issuer.0], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .map_err(db(ACTION))?;
        let (number, version) = raw.ok_or(StoreError::IssuerNotFound { issuer })?;
        tx.commit().map_err(db(ACTION))?;
        Ok((
            from_sql_integer("issuers", issuer.0, "crl_number", number)?,
            version,
        ))
    }

    /// Records that CRL `number` of `issuer`, built from `version`, is published.
    ///
    /// A CRL older than the one recorded (a lower number, from a slower writer) is ignored, so
    /// the state never goes back.
    pub fn record_crl(
        &self,
        issuer: IssuerId,
        number: u64,
        this_update: i64,
        next_update: i64,
        version: i64,
    ) -> Result<(), StoreError> {
        let number = to_sql_integer("CRL number", number)?;
        self.connection
            .prepare_cached(
                "UPDATE issuers SET crl_this_update = ?3, crl_next_update = ?4,
                        crl_revocation_version = ?5
                 WHERE id = ?1 AND crl_number = ?2",
            )
            .and_then(|mut update| {
                update.execute(params![issuer.0, number, this_update, next_update, version])
            })
            .map_err(db("recording a CRL"))?;
        Ok(())
    }

    /// Sum of every issuer's `revocation_version`: changes whenever any revocation does, from
    /// any process (an OCSP cache compares it to drop stale answers).
    pub fn revocation_epoch(&self) -> Result<i64, StoreError> {
        self.connection
            .prepare_cached("SELECT coalesce(sum(revocation_version), 0) FROM issuers")
            .and_then(|mut select| select.query_row([], |row| row.get(0)))
            .map_err(db("reading the revocation epoch"))
    }

    /// Records an OCSP responder certificate `issuer` signed with `serial`.
    ///
    /// A responder certificate is put to use only once recorded: a serial already in the
    /// issuer's serial registry (or of another responder) is [`StoreError::DuplicateSerial`],
    /// nothing is recorded and the certificate must be discarded. From then on the registry
    /// refuses the serial to devices.
    pub fn record_ocsp_responder(
        &self,
        issuer: IssuerId,
        serial: &[u8],
        not_before: i64,
        not_after: i64,
        der: &[u8],
    ) -> Result<(), StoreError> {
        const ACTION: &str = "recording an OCSP responder certificate";
        let serial = significant_octets(serial);
        let tx = self.write_transaction(ACTION)?;
        let taken = tx
            .prepare_cached("SELECT 1 FROM serial_intents WHERE issuer_id = ?1 AND serial = ?2")
            .and_then(|mut select| select.exists(params![issuer.0, serial]))
            .map_err(db(ACTION))?;
        let duplicate = || StoreError::DuplicateSerial {
            serial_hex: hex(serial),
        };
        if taken {
            return Err(duplicate());
        }
        let now = (self.clock)();
        match tx
            .prepare_cached(
                "INSERT INTO ocsp_responders (issuer_id, serial, not_before, not_after, der,
                                              created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut insert| {
                insert.execute(params![issuer.0, serial, not_before, not_after, der, now])
            }) {
            Ok(_) => {}
            Err(error) if super::violation(&error) == Some(super::db::Violation::Unique) => {
                return Err(duplicate())
            }
            Err(source) => {
                return Err(StoreError::Database {
                    action: ACTION,
                    source,
                })
            }
        }
        tx.commit().map_err(db(ACTION))
    }

    /// Parses a serial number as the CLI and API take it (hex, colons and case ignored).
    pub fn parse_serial(text: &str) -> Result<Vec<u8>, StoreError> {
        parse_serial_query(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RevocationReason::*;

    #[test]
    fn a_revoked_certificate_keeps_its_first_reason_except_for_hold_and_key_compromise() {
        let serial = [1u8];
        for (current, requested, expected) in [
            (None, Superseded, Change::Insert),
            (Some(Superseded), Superseded, Change::Keep),
            (Some(Superseded), AffiliationChanged, Change::Keep),
            (Some(Superseded), KeyCompromise, Change::SetReason),
            (Some(KeyCompromise), KeyCompromise, Change::Keep),
            (Some(KeyCompromise), Superseded, Change::Keep),
            (Some(CertificateHold), Superseded, Change::SetReason),
            (Some(CertificateHold), CertificateHold, Change::Keep),
            (Some(CertificateHold), RemoveFromCrl, Change::Release),
        ] {
            assert_eq!(
                decide(current, requested, &serial).unwrap(),
                expected,
                "{current:?} then {requested:?}"
            );
        }
        for current in [Some(Superseded), None] {
            assert!(matches!(
                decide(current, RemoveFromCrl, &serial),
                Err(StoreError::NotOnHold { .. })
            ));
        }
    }
}
