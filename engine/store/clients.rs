//! API clients (seed 002 "credentials"): machine logins for factory stations.
//!
//! A client is a row of `users` with `kind = 'CLIENT'` (format 8): its username is the client
//! id, its password hash the argon2id hash of the secret, its role `USER`, its organization and
//! profile list its scope, and `active = 0` while it is locked. Its batches, balances and token
//! checks are therefore exactly a user's; the people lists ([`Store::list_users`]) leave it out.

use super::db::{params, OptionalExtension, Row};

use super::identity::{insert_user, revoke_user_tokens};
use super::{db, NewUser, OrganizationId, Store, StoreError, UserId};
use crate::filter::{Field, FieldType};

/// A client to create ([`Store::create_client`]).
pub struct NewClient<'a> {
    /// The client id (a UUID, shown to the administrator).
    pub client_id: &'a str,
    /// The argon2id PHC string of the secret.
    pub secret_hash: &'a str,
    /// `credentialName`.
    pub name: &'a str,
    /// The one organization it acts for.
    pub organization: OrganizationId,
    /// Profiles it may issue under; `None` means all.
    pub profiles: Option<&'a [String]>,
}

/// A stored client (without its secret hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRow {
    /// Row id in `users`.
    pub id: UserId,
    /// The client id.
    pub client_id: String,
    /// `credentialName`.
    pub name: String,
    /// The organization it acts for.
    pub organization: OrganizationId,
    /// Profiles it may issue under; `None` means all.
    pub profiles: Option<Vec<String>>,
    /// Locked: no token is issued and tokens already issued are refused.
    pub locked: bool,
    /// Secret generation: 1, and one more per reset.
    pub generation: i64,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last change, unix seconds.
    pub updated_at: i64,
}

/// Columns read by [`read_client`], in order.
pub(crate) const SELECT_CLIENT: &str = "SELECT id, username, client_name, organization_id,
        profiles, active, generation, created_at, updated_at FROM users";

/// What `filter=` may name on the client list, over the `users` columns.
pub const CLIENT_FIELDS: &[Field] = &[
    Field::new("id", "username", FieldType::Text),
    Field::new("clientId", "username", FieldType::Text),
    Field::new("credentialName", "client_name", FieldType::Text),
    Field::new("organizationId", "organization_id", FieldType::Integer),
    Field::new("locked", "(1 - active)", FieldType::Boolean),
    Field::new("generation", "generation", FieldType::Integer),
    Field::new("createdAt", "created_at", FieldType::Timestamp),
    Field::new("updatedAt", "updated_at", FieldType::Timestamp),
];

impl Store {
    /// Creates a client; `None` when its client id is taken.
    ///
    /// Fails with [`StoreError::OrganizationNotFound`] when the organization does not exist or
    /// is deleted.
    pub fn create_client(
        &self,
        client: &NewClient<'_>,
        actor: &str,
    ) -> Result<Option<UserId>, StoreError> {
        const ACTION: &str = "creating an API client";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let id = insert_user(
            &tx,
            &NewUser {
                username: client.client_id,
                password_hash: client.secret_hash,
                organization: client.organization,
                roles: &["USER"],
                profiles: client.profiles,
            },
            now,
            ACTION,
        )?;
        if let Some(id) = id {
            tx.prepare_cached("UPDATE users SET kind = 'CLIENT', client_name = ?2 WHERE id = ?1")
                .and_then(|mut update| update.execute(params![id.0, client.name]))
                .map_err(db(ACTION))?;
            let scope = match client.profiles {
                Some(profiles) => profiles.join(", "),
                None => "every profile".to_owned(),
            };
            event(
                &tx,
                client.client_id,
                now,
                actor,
                "CREATED",
                &format!(
                    "{:?} for organization {}, {scope}",
                    client.name, client.organization.0
                ),
            )?;
        }
        tx.commit().map_err(db(ACTION))?;
        Ok(id)
    }

    /// The client with this client id, if any.
    pub fn client(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
        self.connection
            .prepare_cached(&format!(
                "{SELECT_CLIENT} WHERE kind = 'CLIENT' AND lower(username) = lower(?1)"
            ))
            .and_then(|mut select| select.query_row([client_id], read_client).optional())
            .map_err(db("reading an API client"))?
            .map(parse)
            .transpose()
    }

    /// Clients by id matching `filter` (compiled over [`CLIENT_FIELDS`]), only those of
    /// `organization` when given.
    pub fn clients(
        &self,
        organization: Option<OrganizationId>,
        filter: &crate::filter::SqlFilter,
    ) -> Result<Vec<ClientRow>, StoreError> {
        let mut values = filter.values.clone();
        let scope = match organization {
            Some(organization) => {
                values.push(rusqlite::types::Value::Integer(organization.0));
                "AND organization_id = ?"
            }
            None => "",
        };
        let sql = format!(
            "{SELECT_CLIENT} WHERE kind = 'CLIENT' AND {} {scope} ORDER BY id",
            filter.sql
        );
        let raws = self.filtered(&sql, &values, read_client, "listing API clients")?;
        raws.into_iter().map(parse).collect()
    }

    /// Replaces a client's secret hash and counts a generation: tokens issued for the old
    /// secret stop working at once (they carry the generation). `false` for an unknown client.
    pub fn reset_client_secret(
        &self,
        id: UserId,
        secret_hash: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        const ACTION: &str = "resetting an API client's secret";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let client: Option<(String, i64)> = tx
            .prepare_cached(
                "UPDATE users SET password_hash = ?2, generation = generation + 1, updated_at = ?3
                 WHERE id = ?1 AND kind = 'CLIENT' RETURNING username, generation",
            )
            .and_then(|mut update| {
                update
                    .query_row(params![id.0, secret_hash, now], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()
            })
            .map_err(db(ACTION))?;
        let Some((client_id, generation)) = client else {
            return Ok(false);
        };
        revoke_user_tokens(&tx, id, now, ACTION)?;
        event(
            &tx,
            &client_id,
            now,
            actor,
            "SECRET_RESET",
            &format!("generation {generation}"),
        )?;
        tx.commit().map_err(db(ACTION))?;
        Ok(true)
    }

    /// Replaces a client's name, profiles (`None`: all) and lock; `false` for an unknown
    /// client. Locking takes effect at the client's next request.
    pub fn update_client(
        &self,
        id: UserId,
        name: &str,
        profiles: Option<&[String]>,
        locked: bool,
        actor: &str,
    ) -> Result<bool, StoreError> {
        const ACTION: &str = "updating an API client";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let Some(before) = tx
            .prepare_cached(&format!(
                "{SELECT_CLIENT} WHERE kind = 'CLIENT' AND id = ?1"
            ))
            .and_then(|mut select| select.query_row([id.0], read_client).optional())
            .map_err(db(ACTION))?
            .map(parse)
            .transpose()?
        else {
            return Ok(false);
        };
        let json = profiles.map(|profiles| serde_json::Value::from(profiles.to_vec()).to_string());
        tx.prepare_cached(
            "UPDATE users SET client_name = ?2, profiles = ?3, active = ?4, updated_at = ?5
             WHERE id = ?1",
        )
        .and_then(|mut update| update.execute(params![id.0, name, json, !locked, now]))
        .map_err(db(ACTION))?;
        let client_id = before.client_id.as_str();
        if before.locked != locked {
            let kind = if locked { "LOCKED" } else { "UNLOCKED" };
            event(&tx, client_id, now, actor, kind, "")?;
        }
        let profiles = profiles.map(<[String]>::to_vec);
        if before.name != name || before.profiles != profiles {
            let scope = match &profiles {
                Some(profiles) => profiles.join(", "),
                None => "every profile".to_owned(),
            };
            event(
                &tx,
                client_id,
                now,
                actor,
                "UPDATED",
                &format!("{name:?}, {scope}"),
            )?;
        }
        tx.commit().map_err(db(ACTION))?;
        Ok(true)
    }

    /// Deletes a client, its tokens and its row, with its `DELETED` event, in one transaction;
    /// `false` for an unknown client. Its batches keep naming it (`user <id>`).
    pub fn delete_client(&self, id: UserId, actor: &str) -> Result<bool, StoreError> {
        const ACTION: &str = "deleting an API client";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let client_id: Option<String> = tx
            .prepare_cached("SELECT username FROM users WHERE id = ?1 AND kind = 'CLIENT'")
            .and_then(|mut select| select.query_row([id.0], |row| row.get(0)).optional())
            .map_err(db(ACTION))?;
        let Some(client_id) = client_id else {
            return Ok(false);
        };
        for sql in [
            "DELETE FROM refresh_tokens WHERE user_id = ?1",
            "DELETE FROM users WHERE id = ?1",
        ] {
            tx.prepare_cached(sql)
                .and_then(|mut delete| delete.execute([id.0]))
                .map_err(db(ACTION))?;
        }
        event(&tx, &client_id, now, actor, "DELETED", "")?;
        tx.commit().map_err(db(ACTION))?;
        Ok(true)
    }

    /// The administration log of the client `client_id` (which may be deleted), oldest first:
    /// `(time, actor, type, message)`.
    pub fn client_events(
        &self,
        client_id: &str,
    ) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT time, actor, type, message FROM client_events WHERE client_id = ?1
                 ORDER BY id",
            )
            .and_then(|mut select| {
                select
                    .query_map([client_id], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                    })?
                    .collect()
            })
            .map_err(db("reading an API client's log"))
    }
}

fn event(
    tx: &db::Transaction<'_>,
    client_id: &str,
    time: i64,
    actor: &str,
    kind: &str,
    message: &str,
) -> Result<(), StoreError> {
    super::EventLog::Client.record(tx, &client_id, time, actor, kind, message)
}

fn read_client(row: &Row<'_>) -> db::Result<(ClientRow, Option<String>)> {
    let active: bool = row.get(5)?;
    Ok((
        ClientRow {
            id: UserId(row.get(0)?),
            client_id: row.get(1)?,
            name: row.get(2)?,
            organization: OrganizationId(row.get(3)?),
            profiles: None,
            locked: !active,
            generation: row.get(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
        },
        row.get(4)?,
    ))
}

fn parse((mut row, profiles): (ClientRow, Option<String>)) -> Result<ClientRow, StoreError> {
    if let Some(text) = profiles {
        row.profiles = Some(
            serde_json::from_str(&text).map_err(|_| StoreError::CorruptRow {
                table: "users",
                id: row.id.to_string(),
                column: "profiles",
                value: text.clone(),
            })?,
        );
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter;

    fn hash() -> String {
        crate::auth::hash_password("station-secret-1").expect("hash")
    }

    #[test]
    fn clients_are_users_of_kind_client_left_out_of_the_people_lists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let org = store.default_organization().expect("org");
        let hash = hash();
        let profiles = vec!["ecc-device".to_owned()];
        let id = store
            .create_client(
                &NewClient {
                    client_id: "4f0c1d2e-0000-4000-8000-000000000001",
                    secret_hash: &hash,
                    name: "Line 3 station",
                    organization: org,
                    profiles: Some(&profiles),
                },
                "cli",
            )
            .expect("create")
            .expect("new");
        let taken = store
            .create_client(
                &NewClient {
                    client_id: "4f0c1d2e-0000-4000-8000-000000000001",
                    secret_hash: &hash,
                    name: "again",
                    organization: org,
                    profiles: None,
                },
                "cli",
            )
            .expect("create");
        assert_eq!(taken, None);
        assert!(store.list_users().expect("users").is_empty());
        let user = store.user(id).expect("read").expect("row");
        assert!(user.client && user.active && user.generation == 1);
        assert_eq!(user.roles, ["USER"]);

        let row = store
            .client("4f0c1d2e-0000-4000-8000-000000000001")
            .expect("read")
            .expect("client");
        assert_eq!(row.profiles.as_deref(), Some(&profiles[..]));
        assert!(!row.locked);

        assert!(store
            .update_client(id, "Line 3", None, true, "user 1")
            .expect("update"));
        let locked = filter::compile("locked eq true", CLIENT_FIELDS).expect("filter");
        let found = store.clients(Some(org), &locked).expect("list");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].name.as_str(), found[0].profiles.clone()),
            ("Line 3", None)
        );
        let other = OrganizationId(org.0 + 1000);
        assert!(store
            .clients(Some(other), &locked)
            .expect("list")
            .is_empty());

        assert!(store
            .reset_client_secret(id, &hash, "user 1")
            .expect("reset"));
        assert_eq!(store.user(id).expect("read").expect("row").generation, 2);
        // A person's id is not a client's.
        assert!(!store
            .reset_client_secret(UserId(id.0 + 1), &hash, "user 1")
            .expect("reset"));
        assert!(store.delete_client(id, "user 1").expect("delete"));
        assert!(store.user(id).expect("read").is_none());
        assert!(!store.delete_client(id, "user 1").expect("again"));
        // The log outlives the client, in order, and cannot be rewritten.
        let log = store
            .client_events("4f0c1d2e-0000-4000-8000-000000000001")
            .expect("log");
        let kinds: Vec<&str> = log.iter().map(|(_, _, kind, _)| kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["CREATED", "LOCKED", "UPDATED", "SECRET_RESET", "DELETED"]
        );
        assert_eq!(log[0].1, "cli");
        assert!(store
            .connection
            .execute("DELETE FROM client_events", [])
            .is_err());
    }

    #[test]
    fn a_client_needs_a_live_organization() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let error = store
            .create_client(
                &NewClient {
                    client_id: "c",
                    secret_hash: &hash(),
                    name: "n",
                    organization: OrganizationId(999),
                    profiles: None,
                },
                "cli",
            )
            .unwrap_err();
        assert!(
            matches!(error, StoreError::OrganizationNotFound { .. }),
            "{error:?}"
        );
    }
}
