//! Signers in the store (seed 004): the issuing keys of each named issuer, their states, and
//! the append-only log of what was done to them.
//!
//! Every change is one immediate transaction with its `signer_events` entries: making a signer
//! ACTIVE retires the issuer's previous ACTIVE signer and moves the authorities that pointed at
//! it to the new one, so a new batch can only be recorded with the current signer while a batch
//! already recorded keeps the signer it started with.

use super::db::{params, Transaction};
use sha2::{Digest, Sha256};

use super::{db, IssuerId, Store, StoreError};

/// A signer's state (seed 004 "state", plus PENDING and DELETED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignerState {
    /// Its key exists and its CSR waits for an external root's certificate.
    Pending,
    /// The issuer's current signer: new batches are signed with it.
    Active,
    /// Replaced by a newer signer: signs CRLs and OCSP responses for what it issued, no new
    /// certificates.
    Retired,
    /// Its certificate was revoked: it signs nothing and is not served.
    Revoked,
    /// Deleted after nothing it issued was still valid: its key files are gone.
    Deleted,
}

impl SignerState {
    /// The stored and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SignerState::Pending => "PENDING",
            SignerState::Active => "ACTIVE",
            SignerState::Retired => "RETIRED",
            SignerState::Revoked => "REVOKED",
            SignerState::Deleted => "DELETED",
        }
    }

    /// The state spelled `s`.
    pub fn parse(s: &str) -> Option<SignerState> {
        [
            SignerState::Pending,
            SignerState::Active,
            SignerState::Retired,
            SignerState::Revoked,
            SignerState::Deleted,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    /// Whether a signer in this state signs CRLs and OCSP responses.
    pub fn serves_revocation(self) -> bool {
        matches!(self, SignerState::Active | SignerState::Retired)
    }
}

impl std::fmt::Display for SignerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One signer as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerRow {
    /// ULID (seed 004 `id`).
    pub id: String,
    /// The issuer it belongs to (seed 004 `tenant`).
    pub issuer_name: String,
    /// Readable name: its certificate's commonName.
    pub name: String,
    /// State.
    pub state: SignerState,
    /// Renewals so far (seed 004 `generation`).
    pub generation: u32,
    /// Its certificate's registration, once it has one.
    pub issuer: Option<IssuerId>,
    /// Key algorithm (`EC:P-256`, ...).
    pub algorithm: String,
    /// Directory of its key and certificate, relative to the data directory.
    pub key_dir: String,
    /// Directory of the local root that certifies it, relative to the data directory; `None`
    /// for an external root.
    pub root_dir: Option<String>,
    /// Its certificate's notAfter, unix seconds.
    pub not_after: Option<i64>,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last changed, unix seconds.
    pub updated_at: i64,
}

/// One entry of the signers' audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerEvent {
    /// Position in the log.
    pub id: i64,
    /// The signer.
    pub signer_id: String,
    /// When, unix seconds.
    pub time: i64,
    /// Who (`user <id>`, `cli`).
    pub actor: String,
    /// What: CREATED, ACTIVATED, RETIRED, RENEWED, REVOKED, DELETED.
    pub kind: String,
    /// Details.
    pub message: String,
}

/// A signer to record.
#[derive(Clone, Copy, Debug)]
pub struct NewSigner<'a> {
    /// Its ULID.
    pub id: &'a str,
    /// Issuer name.
    pub issuer_name: &'a str,
    /// Readable name.
    pub name: &'a str,
    /// Key algorithm.
    pub algorithm: &'a str,
    /// Key directory, relative to the data directory.
    pub key_dir: &'a str,
    /// Local root directory, relative to the data directory.
    pub root_dir: Option<&'a str>,
}

/// A signer's certificate.
#[derive(Clone, Debug)]
pub struct SignerCertificate<'a> {
    /// DER.
    pub der: &'a [u8],
    /// One-line description (`issuers.subject`).
    pub description: String,
    /// notAfter, unix seconds.
    pub not_after: i64,
}

const SELECT_SIGNER: &str = "SELECT id, issuer_name, name, state, generation, issuer_id, algorithm,
        key_dir, root_dir, not_after, created_at, updated_at FROM signers";

fn read_signer(row: &db::Row<'_>) -> db::Result<(SignerRow, String)> {
    let state: String = row.get(3)?;
    Ok((
        SignerRow {
            id: row.get(0)?,
            issuer_name: row.get(1)?,
            name: row.get(2)?,
            state: SignerState::Deleted,
            generation: row.get(4)?,
            issuer: row.get::<_, Option<i64>>(5)?.map(IssuerId),
            algorithm: row.get(6)?,
            key_dir: row.get(7)?,
            root_dir: row.get(8)?,
            not_after: row.get(9)?,
            created_at: row.get(10)?,
            updated_at: row.get(11)?,
        },
        state,
    ))
}

fn finish(raw: (SignerRow, String)) -> Result<SignerRow, StoreError> {
    let (mut row, state) = raw;
    row.state = SignerState::parse(&state).ok_or_else(|| StoreError::CorruptRow {
        table: "signers",
        id: row.id.clone(),
        column: "state",
        value: state,
    })?;
    Ok(row)
}

fn query_signers(
    connection: &db::Connection,
    filter: &str,
    values: &[&dyn db::Param],
) -> Result<Vec<SignerRow>, StoreError> {
    const ACTION: &str = "reading signers";
    let sql = format!("{SELECT_SIGNER} {filter}");
    let raws = connection
        .prepare_cached(&sql)
        .and_then(|mut select| {
            select
                .query_map(values, read_signer)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db(ACTION))?;
    raws.into_iter().map(finish).collect()
}

fn signer_in(tx: &Transaction<'_>, id: &str) -> Result<SignerRow, StoreError> {
    query_signers(tx, "WHERE id = ?1", &[&id])?
        .pop()
        .ok_or_else(|| StoreError::SignerNotFound { signer: id.into() })
}

fn event(
    tx: &Transaction<'_>,
    signer: &str,
    time: i64,
    actor: &str,
    kind: &str,
    message: &str,
) -> Result<(), StoreError> {
    super::EventLog::Signer.record(tx, &signer, time, actor, kind, message)
}

/// Registers `certificate` in `issuers` (or finds it there) and returns its id.
fn register(
    tx: &Transaction<'_>,
    certificate: &SignerCertificate<'_>,
    now: i64,
) -> Result<i64, StoreError> {
    const ACTION: &str = "registering a signer certificate";
    let fingerprint = Sha256::digest(certificate.der);
    tx.prepare_cached(
        "INSERT INTO issuers (fingerprint, subject, der, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (fingerprint) DO NOTHING",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            fingerprint.as_slice(),
            certificate.description,
            certificate.der,
            now
        ])
    })
    .map_err(db(ACTION))?;
    tx.prepare_cached("SELECT id FROM issuers WHERE fingerprint = ?1")
        .and_then(|mut select| select.query_row([fingerprint.as_slice()], |row| row.get(0)))
        .map_err(db(ACTION))
}

/// Makes `signer` (registered as `issuer`) the ACTIVE signer of its issuer: the previous one is
/// RETIRED and its authorities move to `issuer`.
fn make_active(
    tx: &Transaction<'_>,
    signer: &SignerRow,
    issuer: i64,
    now: i64,
    actor: &str,
) -> Result<(), StoreError> {
    const ACTION: &str = "activating a signer";
    let previous = query_signers(
        tx,
        "WHERE lower(issuer_name) = lower(?1) AND state = 'ACTIVE'",
        &[&signer.issuer_name],
    )?;
    for old in previous.iter().filter(|old| old.id != signer.id) {
        tx.prepare_cached("UPDATE signers SET state = 'RETIRED', updated_at = ?2 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![old.id, now]))
            .map_err(db(ACTION))?;
        if let Some(old_issuer) = old.issuer {
            tx.prepare_cached("UPDATE authorities SET issuer_id = ?2 WHERE issuer_id = ?1")
                .and_then(|mut update| update.execute(params![old_issuer.0, issuer]))
                .map_err(db(ACTION))?;
        }
        event(
            tx,
            &old.id,
            now,
            actor,
            "RETIRED",
            &format!("replaced by signer {} ({})", signer.id, signer.name),
        )?;
    }
    tx.prepare_cached("UPDATE signers SET state = 'ACTIVE', updated_at = ?2 WHERE id = ?1")
        .and_then(|mut update| update.execute(params![signer.id, now]))
        .map_err(db(ACTION))?;
    event(
        tx,
        &signer.id,
        now,
        actor,
        "ACTIVATED",
        &format!("current signer of issuer {}", signer.issuer_name),
    )
}

impl Store {
    /// Records a new signer. With its certificate it is registered and becomes the issuer's
    /// ACTIVE signer (the previous one RETIRED, its authorities moved); without, it is PENDING.
    pub fn add_signer(
        &self,
        new: &NewSigner<'_>,
        certificate: Option<&SignerCertificate<'_>>,
        actor: &str,
    ) -> Result<SignerRow, StoreError> {
        const ACTION: &str = "recording a signer";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        tx.prepare_cached(
            "INSERT INTO signers (id, issuer_name, name, state, algorithm, key_dir, root_dir,
                                  not_after, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'PENDING', ?4, ?5, ?6, ?7, ?8, ?8)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                new.id,
                new.issuer_name,
                new.name,
                new.algorithm,
                new.key_dir,
                new.root_dir,
                certificate.map(|c| c.not_after),
                now
            ])
        })
        .map_err(db(ACTION))?;
        event(
            &tx,
            new.id,
            now,
            actor,
            "CREATED",
            &format!(
                "issuer {}, {} key, {}",
                new.issuer_name,
                new.algorithm,
                if certificate.is_some() {
                    "certified by the issuer's root"
                } else {
                    "CSR for an external root"
                }
            ),
        )?;
        if let Some(certificate) = certificate {
            let issuer = register(&tx, certificate, now)?;
            tx.prepare_cached("UPDATE signers SET issuer_id = ?2 WHERE id = ?1")
                .and_then(|mut update| update.execute(params![new.id, issuer]))
                .map_err(db(ACTION))?;
            let row = signer_in(&tx, new.id)?;
            make_active(&tx, &row, issuer, now, actor)?;
        }
        let row = signer_in(&tx, new.id)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(row)
    }

    /// Gives a PENDING signer its first certificate and makes it ACTIVE (as
    /// [`Store::add_signer`] does).
    pub fn activate_signer(
        &self,
        id: &str,
        certificate: &SignerCertificate<'_>,
        actor: &str,
    ) -> Result<SignerRow, StoreError> {
        const ACTION: &str = "activating a signer";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let row = signer_in(&tx, id)?;
        if row.state != SignerState::Pending {
            return Err(StoreError::SignerState {
                signer: id.into(),
                state: row.state,
                action: "receive its first certificate",
            });
        }
        let issuer = register(&tx, certificate, now)?;
        tx.prepare_cached("UPDATE signers SET issuer_id = ?2, not_after = ?3 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![id, issuer, certificate.not_after]))
            .map_err(db(ACTION))?;
        make_active(&tx, &row, issuer, now, actor)?;
        let row = signer_in(&tx, id)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(row)
    }

    /// Records a renewal: the signer's registered certificate is replaced in place (same key,
    /// same subject), so its serial registry, revocations and CRL numbers carry on; the
    /// generation grows by one.
    pub fn renew_signer(
        &self,
        id: &str,
        certificate: &SignerCertificate<'_>,
        actor: &str,
    ) -> Result<SignerRow, StoreError> {
        const ACTION: &str = "renewing a signer";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let row = signer_in(&tx, id)?;
        let Some(issuer) = row.issuer.filter(|_| row.state.serves_revocation()) else {
            return Err(StoreError::SignerState {
                signer: id.into(),
                state: row.state,
                action: "be renewed",
            });
        };
        let fingerprint = Sha256::digest(certificate.der);
        tx.prepare_cached(
            "UPDATE issuers SET fingerprint = ?2, der = ?3, subject = ?4 WHERE id = ?1",
        )
        .and_then(|mut update| {
            update.execute(params![
                issuer.0,
                fingerprint.as_slice(),
                certificate.der,
                certificate.description
            ])
        })
        .map_err(db(ACTION))?;
        tx.prepare_cached(
            "UPDATE signers SET generation = generation + 1, not_after = ?2, updated_at = ?3
             WHERE id = ?1",
        )
        .and_then(|mut update| update.execute(params![id, certificate.not_after, now]))
        .map_err(db(ACTION))?;
        event(
            &tx,
            id,
            now,
            actor,
            "RENEWED",
            &format!(
                "generation {}, same key, valid until {}",
                row.generation + 1,
                certificate.not_after
            ),
        )?;
        let row = signer_in(&tx, id)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(row)
    }

    /// Revokes a signer (seed 004 "revoke"): it no longer signs anything, and is no longer
    /// served. Revoking the ACTIVE signer leaves its issuer without a current signer until a
    /// new one is created.
    pub fn revoke_signer(&self, id: &str, actor: &str) -> Result<SignerRow, StoreError> {
        self.end_signer(id, actor, SignerState::Revoked, 0)
    }

    /// Deletes a signer: refused for the ACTIVE signer and while any certificate it issued has
    /// not expired at `now` ([`StoreError::SignerInUse`]). The row stays, DELETED.
    pub fn delete_signer(&self, id: &str, now: i64, actor: &str) -> Result<SignerRow, StoreError> {
        self.end_signer(id, actor, SignerState::Deleted, now)
    }

    fn end_signer(
        &self,
        id: &str,
        actor: &str,
        state: SignerState,
        now: i64,
    ) -> Result<SignerRow, StoreError> {
        const ACTION: &str = "changing a signer's state";
        let time = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let row = signer_in(&tx, id)?;
        let action = if state == SignerState::Deleted {
            "be deleted"
        } else {
            "be revoked"
        };
        let refused = matches!(
            (state, row.state),
            (_, SignerState::Deleted)
                | (SignerState::Revoked, SignerState::Revoked)
                | (SignerState::Deleted, SignerState::Active)
        );
        if refused {
            return Err(StoreError::SignerState {
                signer: id.into(),
                state: row.state,
                action,
            });
        }
        if state == SignerState::Deleted {
            if let Some(issuer) = row.issuer {
                let (valid, until): (i64, Option<i64>) = tx
                    .prepare_cached(
                        "SELECT count(*), max(not_after) FROM certificates
                         WHERE issuer_id = ?1 AND not_after > ?2",
                    )
                    .and_then(|mut select| {
                        select.query_row(params![issuer.0, now], |r| Ok((r.get(0)?, r.get(1)?)))
                    })
                    .map_err(db(ACTION))?;
                if valid > 0 {
                    return Err(StoreError::SignerInUse {
                        signer: id.into(),
                        valid: u64::try_from(valid).unwrap_or(0),
                        until: until.unwrap_or(now),
                    });
                }
            }
        }
        tx.prepare_cached("UPDATE signers SET state = ?2, updated_at = ?3 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![id, state.as_str(), time]))
            .map_err(db(ACTION))?;
        event(
            &tx,
            id,
            time,
            actor,
            state.as_str(),
            &format!("was {}", row.state),
        )?;
        let row = signer_in(&tx, id)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(row)
    }

    /// The signer with this id.
    pub fn signer(&self, id: &str) -> Result<Option<SignerRow>, StoreError> {
        Ok(query_signers(&self.connection, "WHERE id = ?1", &[&id])?.pop())
    }

    /// The ACTIVE signer of `issuer_name` (seed 004 `current`).
    pub fn current_signer(&self, issuer_name: &str) -> Result<Option<SignerRow>, StoreError> {
        Ok(query_signers(
            &self.connection,
            "WHERE lower(issuer_name) = lower(?1) AND state = 'ACTIVE'",
            &[&issuer_name],
        )?
        .pop())
    }

    /// The signers of `issuer_name` (all issuers when `None`), DELETED ones left out, oldest
    /// first.
    pub fn signers(&self, issuer_name: Option<&str>) -> Result<Vec<SignerRow>, StoreError> {
        match issuer_name {
            Some(name) => query_signers(
                &self.connection,
                "WHERE lower(issuer_name) = lower(?1) AND state <> 'DELETED' ORDER BY created_at, id",
                &[&name],
            ),
            None => query_signers(
                &self.connection,
                "WHERE state <> 'DELETED' ORDER BY lower(issuer_name), created_at, id",
                &[],
            ),
        }
    }

    /// A page of `issuer_name`'s signers (DELETED ones left out), oldest first, that match
    /// `filter` (a compiled `filter=` over the `signers` columns).
    pub fn signers_page(
        &self,
        issuer_name: &str,
        filter: &crate::filter::SqlFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<SignerRow>, StoreError> {
        let mut values: Vec<rusqlite::types::Value> =
            vec![rusqlite::types::Value::Text(issuer_name.to_owned())];
        values.extend(filter.values.iter().cloned());
        values.push(rusqlite::types::Value::Integer(i64::from(limit)));
        values.push(rusqlite::types::Value::Integer(
            i64::try_from(offset).unwrap_or(i64::MAX),
        ));
        let refs: Vec<&dyn db::Param> = values.iter().map(|v| v as &dyn db::Param).collect();
        query_signers(
            &self.connection,
            &format!(
                "WHERE lower(issuer_name) = lower(?) AND state <> 'DELETED' AND {}
                 ORDER BY created_at, id LIMIT ? OFFSET ?",
                filter.sql
            ),
            &refs,
        )
    }

    /// The signer registered as `issuer`.
    pub fn signer_of_issuer(&self, issuer: IssuerId) -> Result<Option<SignerRow>, StoreError> {
        Ok(query_signers(&self.connection, "WHERE issuer_id = ?1", &[&issuer.0])?.pop())
    }

    /// A number that grows with every signer change (the last `signer_events` id): a server
    /// that sees it move reloads its signers.
    pub fn signers_epoch(&self) -> Result<i64, StoreError> {
        self.connection
            .prepare_cached("SELECT coalesce(max(id), 0) FROM signer_events")
            .and_then(|mut select| select.query_row([], |row| row.get(0)))
            .map_err(db("reading the signers' epoch"))
    }

    /// The audit log of one signer, oldest first.
    pub fn signer_events(&self, id: &str) -> Result<Vec<SignerEvent>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT id, signer_id, time, actor, type, message FROM signer_events
                 WHERE signer_id = ?1 ORDER BY id",
            )
            .and_then(|mut select| {
                select
                    .query_map([id], |row| {
                        Ok(SignerEvent {
                            id: row.get(0)?,
                            signer_id: row.get(1)?,
                            time: row.get(2)?,
                            actor: row.get(3)?,
                            kind: row.get(4)?,
                            message: row.get(5)?,
                        })
                    })?
                    .collect()
            })
            .map_err(db("reading a signer's audit log"))
    }

    /// Points the authorities of `profile_name` at `issuer` (a profile that now names another
    /// issuer, or whose authorities predate its issuer's current signer).
    pub fn repoint_authorities(
        &self,
        profile_name: &str,
        issuer: IssuerId,
    ) -> Result<usize, StoreError> {
        self.connection
            .prepare_cached(
                "UPDATE authorities SET issuer_id = ?2 WHERE profile_name = ?1 AND issuer_id <> ?2",
            )
            .and_then(|mut update| update.execute(params![profile_name, issuer.0]))
            .map_err(db("moving authorities to a signer"))
    }
}
