//! Administering authorities (seed 001's organization authority endpoints): creating one for an
//! organization and profile, topping its balance up, setting its total, enabling and disabling
//! it, removing it from its organization. Each change is one write transaction with its entry in
//! the append-only `authority_events`; a total is never set below what the authority has used
//! and reserved, so no batch can be overspent, and an authority is removed only once nothing
//! but its used units is left on it.

use super::db::{params, OptionalExtension, Transaction};

use super::{
    db, read_authority, to_sql_integer, AuthorityId, AuthorityRow, IssuerId, OrganizationId,
    RawAuthority, Store, StoreError, SELECT_AUTHORITY,
};

/// One entry of an authority's administration log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityEvent {
    /// The authority.
    pub authority: AuthorityId,
    /// When, unix seconds.
    pub time: i64,
    /// Who (`user <id>`, `cli`).
    pub actor: String,
    /// `CREATED`, `TOPPED_UP`, `BALANCE_SET`, `ENABLED`, `DISABLED`, `DELETED`.
    pub kind: String,
    /// Details.
    pub message: String,
}

fn event(
    tx: &Transaction<'_>,
    authority: AuthorityId,
    time: i64,
    actor: &str,
    kind: &str,
    message: &str,
) -> Result<(), StoreError> {
    super::EventLog::Authority.record(tx, &authority.0, time, actor, kind, message)
}

/// Why an authority cannot be removed from its organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorityInUse {
    /// Units are still available or reserved: removing it would lose them.
    Balance {
        /// Units available.
        available: u64,
        /// Units reserved by pending batches.
        reserved: u64,
        /// Units used, the total to set first.
        used: u64,
    },
    /// Batches of it are still issuing, rejecting or revoking.
    Batches(u64),
}

impl std::fmt::Display for AuthorityInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthorityInUse::Balance {
                available,
                reserved,
                used,
            } => write!(
                f,
                "it still has {available} units available and {reserved} reserved; \
                 set its balance to the {used} units used first"
            ),
            AuthorityInUse::Batches(n) => write!(f, "{n} of its batches are still in progress"),
        }
    }
}

/// The authority, which must belong to `organization` and not be removed from it (404 for
/// another's or a removed one, as for none).
fn owned(
    tx: &Transaction<'_>,
    authority: AuthorityId,
    organization: OrganizationId,
) -> Result<AuthorityRow, StoreError> {
    let row = read_authority(tx, authority)?;
    if row.organization != organization || row.deleted_at.is_some() {
        return Err(StoreError::AuthorityNotFound { authority });
    }
    Ok(row)
}

impl Store {
    /// Creates `organization`'s authority for `profile_name`, signed by `issuer`, with
    /// `balance` units; [`StoreError::AuthorityExists`] when it has one for the profile (one
    /// removed from it does not count: a new one may replace it).
    pub fn admin_create_authority(
        &self,
        organization: OrganizationId,
        profile_name: &str,
        issuer: IssuerId,
        balance: u64,
        actor: &str,
    ) -> Result<AuthorityId, StoreError> {
        const ACTION: &str = "creating an authority";
        let units = to_sql_integer("balance", balance)?;
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let existing: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM authorities WHERE organization_id = ?1 AND profile_name = ?2
                     AND deleted_at IS NULL",
            )
            .and_then(|mut select| {
                select
                    .query_row(params![organization.0, profile_name], |r| r.get(0))
                    .optional()
            })
            .map_err(db(ACTION))?;
        if let Some(id) = existing {
            return Err(StoreError::AuthorityExists {
                organization,
                authority: AuthorityId(id),
                profile: profile_name.to_owned(),
            });
        }
        let live = tx
            .prepare_cached("SELECT 1 FROM organizations WHERE id = ?1 AND status <> 'DELETED'")
            .and_then(|mut select| select.exists([organization.0]))
            .map_err(db(ACTION))?;
        if !live {
            return Err(StoreError::OrganizationNotFound { organization });
        }
        let id = tx
            .prepare_cached(
                "INSERT INTO authorities (organization_id, profile_name, issuer_id,
                                          balance_available, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )
            .and_then(|mut insert| {
                insert.query_row(
                    params![organization.0, profile_name, issuer.0, units, now],
                    |row| row.get(0),
                )
            })
            .map(AuthorityId)
            .map_err(db(ACTION))?;
        event(
            &tx,
            id,
            now,
            actor,
            "CREATED",
            &format!("profile {profile_name}, balance {balance}"),
        )?;
        tx.commit().map_err(db(ACTION))?;
        Ok(id)
    }

    /// Adds `units` to the available balance of `organization`'s authority.
    pub fn top_up_authority(
        &self,
        authority: AuthorityId,
        organization: OrganizationId,
        units: u64,
        actor: &str,
    ) -> Result<AuthorityRow, StoreError> {
        const ACTION: &str = "topping up an authority";
        let added = to_sql_integer("addedBalance", units)?;
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        owned(&tx, authority, organization)?;
        tx.prepare_cached(
            "UPDATE authorities SET balance_available = balance_available + ?2 WHERE id = ?1",
        )
        .and_then(|mut update| update.execute(params![authority.0, added]))
        .map_err(db(ACTION))?;
        event(
            &tx,
            authority,
            now,
            actor,
            "TOPPED_UP",
            &format!("+{units}"),
        )?;
        let row = read_authority(&tx, authority)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(row)
    }

    /// Sets the total balance (used + reserved + available) and/or the enabled flag of
    /// `organization`'s authority. A total below what is used and reserved is
    /// [`StoreError::BalanceBelowCommitted`], checked under the write lock.
    pub fn set_authority(
        &self,
        authority: AuthorityId,
        organization: OrganizationId,
        total: Option<u64>,
        enabled: Option<bool>,
        actor: &str,
    ) -> Result<AuthorityRow, StoreError> {
        const ACTION: &str = "setting an authority";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let row = owned(&tx, authority, organization)?;
        if let Some(total) = total {
            let committed = row.balance_used.saturating_add(row.balance_reserved);
            let Some(available) = total.checked_sub(committed) else {
                return Err(StoreError::BalanceBelowCommitted {
                    authority,
                    requested: total,
                    committed,
                });
            };
            let value = to_sql_integer("balance", available)?;
            tx.prepare_cached("UPDATE authorities SET balance_available = ?2 WHERE id = ?1")
                .and_then(|mut update| update.execute(params![authority.0, value]))
                .map_err(db(ACTION))?;
            event(
                &tx,
                authority,
                now,
                actor,
                "BALANCE_SET",
                &format!(
                    "total {total} ({available} available, was {})",
                    row.balance_available
                ),
            )?;
        }
        if let Some(enabled) = enabled.filter(|&e| e != row.enabled) {
            tx.prepare_cached("UPDATE authorities SET enabled = ?2 WHERE id = ?1")
                .and_then(|mut update| update.execute(params![authority.0, enabled]))
                .map_err(db(ACTION))?;
            let kind = if enabled { "ENABLED" } else { "DISABLED" };
            event(&tx, authority, now, actor, kind, "")?;
        }
        let row = read_authority(&tx, authority)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(row)
    }

    /// Removes an authority from `organization` (stamps `deleted_at`) with its `DELETED` event,
    /// in one write transaction: refused with [`StoreError::AuthorityInUse`] while units are
    /// available or reserved on it or a batch of it is still in progress. Its batches and events
    /// keep their records; the organization may get a new authority for the profile.
    pub fn delete_authority(
        &self,
        authority: AuthorityId,
        organization: OrganizationId,
        actor: &str,
    ) -> Result<AuthorityRow, StoreError> {
        const ACTION: &str = "removing an authority";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let row = owned(&tx, authority, organization)?;
        if row.balance_available > 0 || row.balance_reserved > 0 {
            return Err(StoreError::AuthorityInUse {
                authority,
                reason: AuthorityInUse::Balance {
                    available: row.balance_available,
                    reserved: row.balance_reserved,
                    used: row.balance_used,
                },
            });
        }
        let running: i64 = tx
            .prepare_cached(
                "SELECT count(*) FROM batches WHERE authority_id = ?1
                   AND status IN ('Pending Creation', 'Pending Issue', 'Processing Reject',
                                  'Processing Revoke')",
            )
            .and_then(|mut select| select.query_row([authority.0], |r| r.get(0)))
            .map_err(db(ACTION))?;
        if running > 0 {
            return Err(StoreError::AuthorityInUse {
                authority,
                reason: AuthorityInUse::Batches(u64::try_from(running).unwrap_or(0)),
            });
        }
        tx.prepare_cached("UPDATE authorities SET deleted_at = ?2 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![authority.0, now]))
            .map_err(db(ACTION))?;
        event(
            &tx,
            authority,
            now,
            actor,
            "DELETED",
            &format!(
                "removed from organization {} ({} units used)",
                organization.0, row.balance_used
            ),
        )?;
        let row = read_authority(&tx, authority)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(row)
    }

    /// The authorities of an organization, by id, with those removed from it: whose batches
    /// its users may still read, and which a first start must not create again.
    pub fn authorities_including_removed(
        &self,
        organization: OrganizationId,
    ) -> Result<Vec<AuthorityRow>, StoreError> {
        let raws = self
            .connection
            .prepare_cached(&format!(
                "{SELECT_AUTHORITY} WHERE organization_id = ?1 ORDER BY id"
            ))
            .and_then(|mut select| {
                select
                    .query_map([organization.0], RawAuthority::read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("listing authorities"))?;
        raws.into_iter().map(RawAuthority::parse).collect()
    }

    /// An authority's administration log, oldest first.
    pub fn authority_events(
        &self,
        authority: AuthorityId,
    ) -> Result<Vec<AuthorityEvent>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT time, actor, type, message FROM authority_events WHERE authority_id = ?1
                 ORDER BY id",
            )
            .and_then(|mut select| {
                select
                    .query_map([authority.0], |row| {
                        Ok(AuthorityEvent {
                            authority,
                            time: row.get(0)?,
                            actor: row.get(1)?,
                            kind: row.get(2)?,
                            message: row.get(3)?,
                        })
                    })?
                    .collect()
            })
            .map_err(db("reading an authority's log"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, new_batch, records, T0};
    use super::super::BatchStatus;
    use super::*;

    #[test]
    fn an_authority_is_removed_only_once_nothing_but_used_units_are_left() {
        let mut f = fixture();
        let acme = f.store.create_organization("Acme").expect("org");
        let authority = f
            .store
            .admin_create_authority(acme, "iot-ecc", f.issuer, 10, "user 1")
            .expect("create");
        let batch = f
            .store
            .create_batch_for(authority, &new_batch(f.issuer, 4), Some(1))
            .expect("batch");
        // Units available and reserved, and a batch still issuing.
        assert!(matches!(
            f.store.delete_authority(authority, acme, "user 1"),
            Err(StoreError::AuthorityInUse {
                reason: AuthorityInUse::Balance {
                    available: 6,
                    reserved: 4,
                    used: 0
                },
                ..
            })
        ));
        f.store
            .set_authority(authority, acme, Some(4), None, "user 1")
            .expect("total 4");
        assert!(matches!(
            f.store.delete_authority(authority, acme, "user 1"),
            Err(StoreError::AuthorityInUse {
                reason: AuthorityInUse::Balance { reserved: 4, .. },
                ..
            })
        ));
        f.store
            .insert_certificates(batch, &records(1, 0..4))
            .expect("issue");
        f.store
            .finish_batch(batch, BatchStatus::ReadyForDownload)
            .expect("finish");
        // Another organization's authority is not found there.
        let other = f.store.create_organization("Other").expect("org");
        assert!(matches!(
            f.store.delete_authority(authority, other, "user 1"),
            Err(StoreError::AuthorityNotFound { .. })
        ));

        let removed = f
            .store
            .delete_authority(authority, acme, "user 1")
            .expect("remove");
        assert_eq!(removed.deleted_at, Some(T0));
        assert_eq!(removed.balance_used, 4);
        assert!(f.store.authorities_for(acme).expect("list").is_empty());
        let all = f.store.authorities_including_removed(acme).expect("all");
        assert_eq!(all.iter().map(|a| a.id).collect::<Vec<_>>(), [authority]);
        assert_eq!(
            f.store.authority(authority).expect("record").deleted_at,
            Some(T0)
        );
        assert_eq!(
            f.store.batch(batch).expect("read").expect("kept").authority,
            Some(authority)
        );
        let kinds: Vec<String> = f
            .store
            .authority_events(authority)
            .expect("events")
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["CREATED", "BALANCE_SET", "DELETED"]);

        // Nothing more is ordered, set or removed through it.
        assert!(matches!(
            f.store
                .create_batch_for(authority, &new_batch(f.issuer, 1), Some(1)),
            Err(StoreError::AuthorityDeleted { .. })
        ));
        assert!(matches!(
            f.store
                .set_authority(authority, acme, Some(9), None, "user 1"),
            Err(StoreError::AuthorityNotFound { .. })
        ));
        assert!(matches!(
            f.store.delete_authority(authority, acme, "user 1"),
            Err(StoreError::AuthorityNotFound { .. })
        ));

        // The organization may get a new authority for the profile; the old keeps its record.
        let again = f
            .store
            .admin_create_authority(acme, "iot-ecc", f.issuer, 0, "user 1")
            .expect("a new authority for the profile");
        assert_ne!(again, authority);
        assert_eq!(
            f.store
                .authorities_for(acme)
                .expect("list")
                .iter()
                .map(|a| a.id)
                .collect::<Vec<_>>(),
            [again]
        );
        assert!(matches!(
            f.store.admin_create_authority(acme, "iot-ecc", f.issuer, 0, "user 1"),
            Err(StoreError::AuthorityExists { authority, .. }) if authority == again
        ));
    }

    #[test]
    fn a_batch_still_rejecting_keeps_its_authority() {
        let mut f = fixture();
        let acme = f.store.create_organization("Acme").expect("org");
        let authority = f
            .store
            .admin_create_authority(acme, "iot-ecc", f.issuer, 2, "cli")
            .expect("create");
        let batch = f
            .store
            .create_batch_for(authority, &new_batch(f.issuer, 2), None)
            .expect("batch");
        f.store
            .insert_certificates(batch, &records(2, 0..2))
            .expect("issue");
        f.store
            .finish_batch(batch, BatchStatus::ReadyForDownload)
            .expect("finish");
        f.store
            .set_batch_status(batch, BatchStatus::ProcessingReject, Some("wrong lot"))
            .expect("rejecting");
        assert!(matches!(
            f.store.delete_authority(authority, acme, "cli"),
            Err(StoreError::AuthorityInUse {
                reason: AuthorityInUse::Batches(1),
                ..
            })
        ));
    }
}
