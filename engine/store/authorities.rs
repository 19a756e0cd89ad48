//! Administering authorities (seed 001's organization authority endpoints): creating one for an
//! organization and profile, topping its balance up, setting its total, enabling and disabling
//! it. Each change is one write transaction with its entry in the append-only
//! `authority_events`; a total is never set below what the authority has used and reserved, so
//! no batch can be overspent.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{
    db, read_authority, to_sql_integer, AuthorityId, AuthorityRow, IssuerId, OrganizationId, Store,
    StoreError,
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
    /// `CREATED`, `TOPPED_UP`, `BALANCE_SET`, `ENABLED`, `DISABLED`.
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
    tx.prepare_cached(
        "INSERT INTO authority_events (authority_id, time, actor, type, message)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut insert| insert.execute(params![authority.0, time, actor, kind, message]))
    .map_err(db("recording an authority event"))?;
    Ok(())
}

/// The authority, which must belong to `organization` (404 for another's, as for none).
fn owned(
    tx: &Transaction<'_>,
    authority: AuthorityId,
    organization: OrganizationId,
) -> Result<AuthorityRow, StoreError> {
    let row = read_authority(tx, authority)?;
    if row.organization != organization {
        return Err(StoreError::AuthorityNotFound { authority });
    }
    Ok(row)
}

impl Store {
    /// Creates `organization`'s authority for `profile_name`, signed by `issuer`, with
    /// `balance` units; [`StoreError::AuthorityExists`] when it has one for the profile.
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
                "SELECT id FROM authorities WHERE organization_id = ?1 AND profile_name = ?2",
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
        tx.prepare_cached(
            "INSERT INTO authorities (organization_id, profile_name, issuer_id, balance_available,
                                      created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut insert| {
            insert.execute(params![organization.0, profile_name, issuer.0, units, now])
        })
        .map_err(db(ACTION))?;
        let id = AuthorityId(tx.last_insert_rowid());
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
