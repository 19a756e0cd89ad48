//! Format version 4: organizations by name, users of the HTTP API and their refresh tokens.
//!
//! The store keeps what `engine/auth` decides: it never hashes or sees a password (only the
//! argon2id PHC string), never signs a token (only its id, family and times), and does not know
//! what a role means (roles are names, checked by `auth::Role`). It does enforce what must hold
//! across processes: a username is taken once (case-insensitively), a refresh token is used
//! once, and a family is revoked in one statement.

use std::fmt;

use super::db::{params, OptionalExtension, Row};
use crate::filter::{Field, FieldType};

use super::{db, OrganizationId, Store, StoreError};

/// Name of the organization users belong to when none is named ([`Store::default_organization`]).
pub const DEFAULT_ORGANIZATION: &str = "Default";

/// Store row id of a user of the HTTP API (`userId` in seed 001).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An organization: id, name and creation time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationRow {
    /// Row id (`organizationId`, `ecosystemId`).
    pub id: OrganizationId,
    /// Name; version 2 allowed two organizations of one name, so lookups take the oldest.
    pub name: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
}

/// A user to create ([`Store::create_user`]).
pub struct NewUser<'a> {
    /// Login name, 1 to 64 characters; unique ignoring ASCII case.
    pub username: &'a str,
    /// The argon2id PHC string (`$argon2id$v=19$m=...`), never the password.
    pub password_hash: &'a str,
    /// Organization the user acts for.
    pub organization: OrganizationId,
    /// Role names (`USER`, `ORG_ADMIN`, `ECO_ADMIN`, `ADMIN`), at least one.
    pub roles: &'a [&'a str],
    /// Profiles the user may issue under; `None` means all.
    pub profiles: Option<&'a [String]>,
}

/// A stored user. `Debug` leaves out the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Row id.
    pub id: UserId,
    /// Login name as created.
    pub username: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// Organization the user acts for.
    pub organization: OrganizationId,
    /// Role names as stored, in order.
    pub roles: Vec<String>,
    /// Profiles the user may issue under; `None` means all.
    pub profiles: Option<Vec<String>>,
    /// Whether the user may log in and use tokens.
    pub active: bool,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last change (password, activation), unix seconds.
    pub updated_at: i64,
    /// An API client (seed 002 credentials), not a person: its username is the client id and
    /// its password hash the secret's.
    pub client: bool,
    /// Secret generation of an API client (1, then one more per reset); 1 for people.
    pub generation: i64,
}

impl fmt::Debug for UserRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("organization", &self.organization)
            .field("roles", &self.roles)
            .field("profiles", &self.profiles)
            .field("active", &self.active)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("client", &self.client)
            .field("generation", &self.generation)
            .finish()
    }
}

/// A refresh token to record: its id and family, never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefreshToken<'a> {
    /// The token's `jti`: 128 random bits, lower-case hex.
    pub jti: &'a str,
    /// The `family` shared by every token rotated from one login, lower-case hex.
    pub family: &'a str,
    /// Whose token it is.
    pub user: UserId,
    /// `iat`, unix seconds.
    pub issued_at: i64,
    /// `exp`, unix seconds.
    pub expires_at: i64,
}

/// A recorded refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenRow {
    /// The token's `jti`.
    pub jti: String,
    /// Its family.
    pub family: String,
    /// Whose token it is.
    pub user: UserId,
    /// `iat`, unix seconds.
    pub issued_at: i64,
    /// `exp`, unix seconds.
    pub expires_at: i64,
    /// When it was exchanged for a new pair, if it was.
    pub used_at: Option<i64>,
    /// When its family was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// What [`Store::rotate_refresh_token`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token is past its `expires_at`; nothing changed.
    Expired,
    /// The token names another family than the one recorded; nothing changed.
    FamilyMismatch,
    /// The token was used before: its whole family is now revoked.
    Reused {
        /// Tokens of the family revoked by this call.
        revoked: u64,
    },
    /// The token (or its family) was revoked earlier; nothing changed.
    Revoked,
    /// The token was unused: it is now used and the next token is recorded.
    Rotated,
    /// No token has this id.
    Unknown,
}

/// Columns read by [`read_user`], in order.
const SELECT_USER: &str = "SELECT id, username, password_hash, organization_id, roles, profiles,
        active, created_at, updated_at, kind = 'CLIENT', generation FROM users";

/// What `filter=` may name on a user list, over the `users` columns.
pub const USER_FIELDS: &[Field] = &[
    Field::new("userId", "id", FieldType::Integer),
    Field::new("login", "username", FieldType::Text),
    Field::new("username", "username", FieldType::Text),
    Field::new("firstName", "first_name", FieldType::Text),
    Field::new("lastName", "last_name", FieldType::Text),
    Field::new("email", "email", FieldType::Text),
    Field::new("phone", "phone", FieldType::Text),
    Field::new("active", "active", FieldType::Boolean),
    Field::new("createdAt", "created_at", FieldType::Timestamp),
    Field::new("updatedAt", "updated_at", FieldType::Timestamp),
];

/// Columns read by [`read_refresh_token`], in order.
const SELECT_REFRESH_TOKEN: &str =
    "SELECT jti, family, user_id, issued_at, expires_at, used_at, revoked_at FROM refresh_tokens";

impl Store {
    /// The oldest organization named `name`, if any.
    pub fn organization_by_name(&self, name: &str) -> Result<Option<OrganizationRow>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT id, name, created_at FROM organizations WHERE name = ?1 AND status <> 'DELETED'
                 ORDER BY id LIMIT 1",
            )
            .and_then(|mut select| select.query_row([name], read_organization).optional())
            .map_err(db("looking up an organization"))
    }

    /// All organizations, by id.
    pub fn organizations(&self) -> Result<Vec<OrganizationRow>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT id, name, created_at FROM organizations WHERE status <> 'DELETED' ORDER BY id",
            )
            .and_then(|mut select| {
                select
                    .query_map([], read_organization)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("listing organizations"))
    }

    /// Creates an organization named `name` unless one exists: `None` when the name is taken.
    ///
    /// Checked and inserted in one write transaction, so two concurrent calls create one.
    pub fn add_organization(&self, name: &str) -> Result<Option<OrganizationId>, StoreError> {
        const ACTION: &str = "adding an organization";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let taken = tx
            .prepare_cached("SELECT 1 FROM organizations WHERE name = ?1 AND status <> 'DELETED'")
            .and_then(|mut select| select.exists([name]))
            .map_err(db(ACTION))?;
        if taken {
            return Ok(None);
        }
        let id = tx
            .prepare_cached(
                "INSERT INTO organizations (name, created_at) VALUES (?1, ?2) RETURNING id",
            )
            .and_then(|mut insert| insert.query_row(params![name, now], |row| row.get(0)))
            .map(OrganizationId)
            .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))?;
        Ok(Some(id))
    }

    /// The organization named [`DEFAULT_ORGANIZATION`], created if missing.
    pub fn default_organization(&self) -> Result<OrganizationId, StoreError> {
        if let Some(found) = self.organization_by_name(DEFAULT_ORGANIZATION)? {
            return Ok(found.id);
        }
        match self.add_organization(DEFAULT_ORGANIZATION)? {
            Some(id) => Ok(id),
            // Another connection created it between the lookup and the write transaction.
            None => self
                .organization_by_name(DEFAULT_ORGANIZATION)?
                .map(|found| found.id)
                .ok_or(StoreError::CorruptRow {
                    table: "organizations",
                    id: String::new(),
                    column: "name",
                    value: DEFAULT_ORGANIZATION.to_owned(),
                }),
        }
    }

    /// Creates a user: `None` when the username is taken (ignoring ASCII case).
    ///
    /// Fails with [`StoreError::OrganizationNotFound`] when the organization does not exist.
    pub fn create_user(&self, user: &NewUser<'_>) -> Result<Option<UserId>, StoreError> {
        const ACTION: &str = "creating a user";
        let tx = self.write_transaction(ACTION)?;
        let id = insert_user(&tx, user, (self.clock)(), ACTION)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(id)
    }

    /// Creates `user` only if the store has no user at all (first start): `None` otherwise.
    ///
    /// Counted and inserted in one write transaction, so two processes starting at once create
    /// one first user.
    pub fn create_first_user(&self, user: &NewUser<'_>) -> Result<Option<UserId>, StoreError> {
        const ACTION: &str = "creating the first user";
        let tx = self.write_transaction(ACTION)?;
        let any = tx
            .prepare_cached("SELECT 1 FROM users LIMIT 1")
            .and_then(|mut select| select.exists([]))
            .map_err(db(ACTION))?;
        if any {
            return Ok(None);
        }
        let id = insert_user(&tx, user, (self.clock)(), ACTION)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(id)
    }

    /// Number of users, active or not.
    pub fn user_count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .connection
            .prepare_cached("SELECT count(*) FROM users")
            .and_then(|mut select| select.query_row([], |row| row.get(0)))
            .map_err(db("counting users"))?;
        super::from_sql_integer("users", 0, "count", count)
    }

    /// The user with this login name (ignoring ASCII case), if any.
    pub fn find_user_by_name(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        self.connection
            .prepare_cached(&format!("{SELECT_USER} WHERE lower(username) = lower(?1)"))
            .and_then(|mut select| select.query_row([username], read_user).optional())
            .map_err(db("looking up a user"))?
            .map(RawUser::parse)
            .transpose()
    }

    /// The user with this id, if any.
    pub fn user(&self, user: UserId) -> Result<Option<UserRow>, StoreError> {
        self.connection
            .prepare_cached(&format!("{SELECT_USER} WHERE id = ?1"))
            .and_then(|mut select| select.query_row([user.0], read_user).optional())
            .map_err(db("reading a user"))?
            .map(RawUser::parse)
            .transpose()
    }

    /// All users (people, not API clients), by id.
    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let raws = self
            .connection
            .prepare_cached(&format!("{SELECT_USER} WHERE kind = 'USER' ORDER BY id"))
            .and_then(|mut select| {
                select
                    .query_map([], read_user)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("listing users"))?;
        raws.into_iter().map(RawUser::parse).collect()
    }

    /// The people (not API clients) of `organization` matching `filter` (compiled over
    /// [`USER_FIELDS`]), by id.
    pub fn users_matching(
        &self,
        organization: OrganizationId,
        filter: &crate::filter::SqlFilter,
    ) -> Result<Vec<UserRow>, StoreError> {
        let mut values = filter.values.clone();
        values.push(rusqlite::types::Value::Integer(organization.0));
        let sql = format!(
            "{SELECT_USER} WHERE kind = 'USER' AND {} AND organization_id = ? ORDER BY id",
            filter.sql
        );
        let raws = self.filtered(&sql, &values, read_user, "listing users")?;
        raws.into_iter().map(RawUser::parse).collect()
    }

    /// Replaces a user's password hash and revokes all of the user's refresh tokens, in one
    /// transaction: a changed password ends every session. `false` when no user has this id.
    pub fn set_password(&self, user: UserId, password_hash: &str) -> Result<bool, StoreError> {
        const ACTION: &str = "changing a password";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let changed = tx
            .prepare_cached("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![user.0, password_hash, now]))
            .map_err(db(ACTION))?;
        if changed == 0 {
            return Ok(false);
        }
        revoke_user_tokens(&tx, user, now, ACTION)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(true)
    }

    /// Activates or deactivates a user; deactivating also revokes the user's refresh tokens.
    /// `false` when no user has this id.
    pub fn set_user_active(&self, user: UserId, active: bool) -> Result<bool, StoreError> {
        const ACTION: &str = "changing a user's activation";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let changed = tx
            .prepare_cached("UPDATE users SET active = ?2, updated_at = ?3 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![user.0, active, now]))
            .map_err(db(ACTION))?;
        if changed == 0 {
            return Ok(false);
        }
        if !active {
            revoke_user_tokens(&tx, user, now, ACTION)?;
        }
        tx.commit().map_err(db(ACTION))?;
        Ok(true)
    }

    /// Records a refresh token issued at login.
    pub fn insert_refresh_token(&self, token: &NewRefreshToken<'_>) -> Result<(), StoreError> {
        insert_refresh(&self.connection, token, "recording a refresh token")
    }

    /// The recorded refresh token with this id, if any.
    pub fn refresh_token(&self, jti: &str) -> Result<Option<RefreshTokenRow>, StoreError> {
        self.connection
            .prepare_cached(&format!("{SELECT_REFRESH_TOKEN} WHERE jti = ?1"))
            .and_then(|mut select| select.query_row([jti], read_refresh_token).optional())
            .map_err(db("looking up a refresh token"))
    }

    /// Marks an unused, unrevoked refresh token used: `false` when it was not (unknown, used
    /// or revoked), in which case nothing changed.
    pub fn mark_refresh_token_used(&self, jti: &str, now: i64) -> Result<bool, StoreError> {
        let changed = self
            .connection
            .prepare_cached(
                "UPDATE refresh_tokens SET used_at = ?2
                 WHERE jti = ?1 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .and_then(|mut update| update.execute(params![jti, now]))
            .map_err(db("marking a refresh token used"))?;
        Ok(changed == 1)
    }

    /// Revokes every not yet revoked token of a family; returns how many.
    pub fn revoke_refresh_family(&self, family: &str, now: i64) -> Result<u64, StoreError> {
        revoke_family(
            &self.connection,
            family,
            now,
            "revoking a refresh token family",
        )
    }

    /// Exchanges refresh token `jti` for `next` in one write transaction (rotation).
    ///
    /// An unused, unrevoked, unexpired token of `next.family` becomes used and `next` is
    /// recorded. A used token means it was copied: the whole family is revoked (committed) and
    /// [`Rotation::Reused`] returned. Every other outcome changes nothing.
    pub fn rotate_refresh_token(
        &self,
        jti: &str,
        next: &NewRefreshToken<'_>,
    ) -> Result<Rotation, StoreError> {
        const ACTION: &str = "rotating a refresh token";
        let now = next.issued_at;
        let tx = self.write_transaction(ACTION)?;
        let Some(current) = tx
            .prepare_cached(&format!("{SELECT_REFRESH_TOKEN} WHERE jti = ?1"))
            .and_then(|mut select| select.query_row([jti], read_refresh_token).optional())
            .map_err(db(ACTION))?
        else {
            return Ok(Rotation::Unknown);
        };
        if current.family != next.family || current.user != next.user {
            return Ok(Rotation::FamilyMismatch);
        }
        if current.revoked_at.is_some() {
            return Ok(Rotation::Revoked);
        }
        if current.used_at.is_some() {
            let revoked = revoke_family(&tx, &current.family, now, ACTION)?;
            tx.commit().map_err(db(ACTION))?;
            return Ok(Rotation::Reused { revoked });
        }
        if current.expires_at <= now {
            return Ok(Rotation::Expired);
        }
        tx.prepare_cached("UPDATE refresh_tokens SET used_at = ?2 WHERE jti = ?1")
            .and_then(|mut update| update.execute(params![jti, now]))
            .map_err(db(ACTION))?;
        insert_refresh(&tx, next, ACTION)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(Rotation::Rotated)
    }

    /// Deletes refresh tokens that expired before `now` (they are refused by their `exp`
    /// anyway, so reuse detection no longer needs them); returns how many.
    pub fn delete_expired_refresh_tokens(&self, now: i64) -> Result<u64, StoreError> {
        let deleted = self
            .connection
            .prepare_cached("DELETE FROM refresh_tokens WHERE expires_at < ?1")
            .and_then(|mut delete| delete.execute([now]))
            .map_err(db("deleting expired refresh tokens"))?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }
}

pub(super) fn insert_user(
    connection: &db::Connection,
    user: &NewUser<'_>,
    now: i64,
    action: &'static str,
) -> Result<Option<UserId>, StoreError> {
    let organization_exists = connection
        .prepare_cached("SELECT 1 FROM organizations WHERE id = ?1 AND status <> 'DELETED'")
        .and_then(|mut select| select.exists([user.organization.0]))
        .map_err(db(action))?;
    if !organization_exists {
        return Err(StoreError::OrganizationNotFound {
            organization: user.organization,
        });
    }
    let profiles = user
        .profiles
        .map(|profiles| serde_json::Value::from(profiles.to_vec()).to_string());
    // No conflict target: PostgreSQL's key on the name is an expression index (lower case).
    connection
        .prepare_cached(
            "INSERT INTO users (username, password_hash, organization_id, roles, profiles,
                                created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .and_then(|mut insert| {
            insert
                .query_row(
                    params![
                        user.username,
                        user.password_hash,
                        user.organization.0,
                        user.roles.join(","),
                        profiles,
                        now
                    ],
                    |row| row.get(0),
                )
                .optional()
        })
        .map(|id| id.map(UserId))
        .map_err(db(action))
}

fn insert_refresh(
    connection: &db::Connection,
    token: &NewRefreshToken<'_>,
    action: &'static str,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO refresh_tokens (jti, family, user_id, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                token.jti,
                token.family,
                token.user.0,
                token.issued_at,
                token.expires_at
            ])
        })
        .map_err(db(action))?;
    Ok(())
}

fn revoke_family(
    connection: &db::Connection,
    family: &str,
    now: i64,
    action: &'static str,
) -> Result<u64, StoreError> {
    let revoked = connection
        .prepare_cached(
            "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL",
        )
        .and_then(|mut update| update.execute(params![family, now]))
        .map_err(db(action))?;
    Ok(u64::try_from(revoked).unwrap_or(u64::MAX))
}

pub(super) fn revoke_user_tokens(
    connection: &db::Connection,
    user: UserId,
    now: i64,
    action: &'static str,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        )
        .and_then(|mut update| update.execute(params![user.0, now]))
        .map_err(db(action))?;
    Ok(())
}

fn read_organization(row: &Row<'_>) -> db::Result<OrganizationRow> {
    Ok(OrganizationRow {
        id: OrganizationId(row.get(0)?),
        name: row.get(1)?,
        created_at: row.get(2)?,
    })
}

fn read_refresh_token(row: &Row<'_>) -> db::Result<RefreshTokenRow> {
    Ok(RefreshTokenRow {
        jti: row.get(0)?,
        family: row.get(1)?,
        user: UserId(row.get(2)?),
        issued_at: row.get(3)?,
        expires_at: row.get(4)?,
        used_at: row.get(5)?,
        revoked_at: row.get(6)?,
    })
}

/// A user row as SQLite types, before the profile list is parsed.
struct RawUser {
    row: UserRow,
    profiles: Option<String>,
}

fn read_user(row: &Row<'_>) -> db::Result<RawUser> {
    let roles: String = row.get(4)?;
    Ok(RawUser {
        row: UserRow {
            id: UserId(row.get(0)?),
            username: row.get(1)?,
            password_hash: row.get(2)?,
            organization: OrganizationId(row.get(3)?),
            roles: roles.split(',').map(str::to_owned).collect(),
            profiles: None,
            active: row.get(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
            client: row.get(9)?,
            generation: row.get(10)?,
        },
        profiles: row.get(5)?,
    })
}

impl RawUser {
    fn parse(self) -> Result<UserRow, StoreError> {
        let RawUser { mut row, profiles } = self;
        if let Some(text) = profiles {
            let list: Vec<String> =
                serde_json::from_str(&text).map_err(|_| StoreError::CorruptRow {
                    table: "users",
                    id: row.id.to_string(),
                    column: "profiles",
                    value: text.clone(),
                })?;
            row.profiles = Some(list);
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{open, skip_on_postgres};
    use super::super::{schema, DATABASE_FILE, FORMAT_VERSION};
    use super::*;
    use rusqlite::Connection;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";

    fn user<'a>(username: &'a str, organization: OrganizationId) -> NewUser<'a> {
        NewUser {
            username,
            password_hash: HASH,
            organization,
            roles: &["USER"],
            profiles: None,
        }
    }

    fn token<'a>(jti: &'a str, family: &'a str, user: UserId, at: i64) -> NewRefreshToken<'a> {
        NewRefreshToken {
            jti,
            family,
            user,
            issued_at: at,
            expires_at: at + 100,
        }
    }

    const FAMILY: &str = "ffffffffffffffffffffffffffffffff";
    const JTI_1: &str = "00000000000000000000000000000001";
    const JTI_2: &str = "00000000000000000000000000000002";
    const JTI_3: &str = "00000000000000000000000000000003";

    #[test]
    fn a_version_2_database_upgrades_to_the_users_version() {
        if skip_on_postgres("SQLite migrations") {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let raw = Connection::open(dir.path().join(DATABASE_FILE)).expect("raw open");
            raw.execute_batch(schema::MIGRATIONS[0]).expect("v1 schema");
            raw.execute_batch(schema::MIGRATIONS[1]).expect("v2 schema");
            raw.pragma_update(None, "user_version", 2)
                .expect("version 2");
            raw.execute_batch(
                "INSERT INTO organizations (id, name, created_at) VALUES (4, 'Acme', 1),
                                                                        (5, 'Acme', 2);",
            )
            .expect("v2 rows");
        }
        let store = open(dir.path());
        assert_eq!(store.format_version().expect("version"), FORMAT_VERSION);
        // Duplicate names from version 2 survive; lookups take the oldest.
        let acme = store
            .organization_by_name("Acme")
            .expect("lookup")
            .expect("kept");
        assert_eq!(acme.id, OrganizationId(4));
        assert_eq!(store.organizations().expect("list").len(), 2);
        let id = store
            .create_user(&user("alice", acme.id))
            .expect("create")
            .expect("new name");
        assert_eq!(
            store.user(id).expect("read").expect("exists").username,
            "alice"
        );
        drop(store);
        assert_eq!(
            open(dir.path()).format_version().expect("again"),
            FORMAT_VERSION
        );
    }

    #[test]
    fn usernames_are_unique_ignoring_case_and_need_an_organization() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(dir.path());
        let org = store.default_organization().expect("default");
        assert_eq!(store.default_organization().expect("again"), org);
        let alice = store
            .create_user(&user("alice", org))
            .expect("create")
            .expect("new");
        assert_eq!(
            store.create_user(&user("ALICE", org)).expect("create"),
            None
        );
        let found = store
            .find_user_by_name("Alice")
            .expect("lookup")
            .expect("found");
        assert_eq!((found.id, found.username.as_str()), (alice, "alice"));
        assert!(matches!(
            store.create_user(&user("bob", OrganizationId(999))),
            Err(StoreError::OrganizationNotFound { .. })
        ));
        assert!(
            !format!("{found:?}").contains("argon2"),
            "Debug hides the hash"
        );
    }

    #[test]
    fn roles_and_profiles_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(dir.path());
        let org = store
            .add_organization("Acme")
            .expect("add")
            .expect("new name");
        assert_eq!(store.add_organization("Acme").expect("add"), None);
        let profiles = vec!["ecc-device".to_owned(), "rsa-device".to_owned()];
        let id = store
            .create_user(&NewUser {
                roles: &["USER", "ORG_ADMIN"],
                profiles: Some(&profiles),
                ..user("carol", org)
            })
            .expect("create")
            .expect("new");
        let row = store.user(id).expect("read").expect("exists");
        assert_eq!(row.roles, ["USER", "ORG_ADMIN"]);
        assert_eq!(row.profiles, Some(profiles));
        assert!(row.active);
        assert_eq!(store.list_users().expect("list"), vec![row]);
        assert_eq!(store.user_count().expect("count"), 1);
    }

    #[test]
    fn the_first_user_is_created_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(dir.path());
        let org = store.default_organization().expect("default");
        assert!(store
            .create_first_user(&user("admin", org))
            .expect("first")
            .is_some());
        assert_eq!(
            store.create_first_user(&user("root", org)).expect("second"),
            None
        );
        assert_eq!(store.user_count().expect("count"), 1);
    }

    #[test]
    fn rotation_uses_a_token_once_and_reuse_revokes_the_family() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(dir.path());
        let org = store.default_organization().expect("default");
        let id = store
            .create_user(&user("dave", org))
            .expect("create")
            .expect("new");
        store
            .insert_refresh_token(&token(JTI_1, FAMILY, id, 1_000))
            .expect("insert");
        assert_eq!(
            store
                .rotate_refresh_token(JTI_1, &token(JTI_2, FAMILY, id, 1_010))
                .expect("rotate"),
            Rotation::Rotated
        );
        let used = store.refresh_token(JTI_1).expect("read").expect("kept");
        assert_eq!((used.used_at, used.revoked_at), (Some(1_010), None));
        // The used token again: both tokens of the family are revoked.
        assert_eq!(
            store
                .rotate_refresh_token(JTI_1, &token(JTI_3, FAMILY, id, 1_020))
                .expect("reuse"),
            Rotation::Reused { revoked: 2 }
        );
        assert_eq!(
            store
                .rotate_refresh_token(JTI_2, &token(JTI_3, FAMILY, id, 1_030))
                .expect("revoked"),
            Rotation::Revoked
        );
        assert_eq!(store.refresh_token(JTI_3).expect("read"), None);
        assert!(!store.mark_refresh_token_used(JTI_2, 1_040).expect("mark"));
    }

    #[test]
    fn rotation_refuses_unknown_expired_and_foreign_tokens() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(dir.path());
        let org = store.default_organization().expect("default");
        let id = store
            .create_user(&user("erin", org))
            .expect("create")
            .expect("new");
        assert_eq!(
            store
                .rotate_refresh_token(JTI_1, &token(JTI_2, FAMILY, id, 1_000))
                .expect("unknown"),
            Rotation::Unknown
        );
        store
            .insert_refresh_token(&token(JTI_1, FAMILY, id, 1_000))
            .expect("insert");
        let other = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
        assert_eq!(
            store
                .rotate_refresh_token(JTI_1, &token(JTI_2, other, id, 1_010))
                .expect("mismatch"),
            Rotation::FamilyMismatch
        );
        assert_eq!(
            store
                .rotate_refresh_token(JTI_1, &token(JTI_2, FAMILY, id, 1_100))
                .expect("expired"),
            Rotation::Expired
        );
        assert_eq!(
            store.delete_expired_refresh_tokens(1_101).expect("prune"),
            1
        );
    }

    #[test]
    fn a_password_change_or_deactivation_revokes_refresh_tokens() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(dir.path());
        let org = store.default_organization().expect("default");
        let id = store
            .create_user(&user("frank", org))
            .expect("create")
            .expect("new");
        store
            .insert_refresh_token(&token(JTI_1, FAMILY, id, 1_000))
            .expect("insert");
        let new_hash = HASH.replace("aGFzaGhh", "bmV3bmV3");
        assert!(store.set_password(id, &new_hash).expect("set"));
        assert_eq!(
            store.user(id).expect("read").expect("exists").password_hash,
            new_hash
        );
        assert!(store
            .refresh_token(JTI_1)
            .expect("read")
            .expect("kept")
            .revoked_at
            .is_some());
        assert!(!store.set_password(UserId(999), HASH).expect("no user"));
        store
            .insert_refresh_token(&token(JTI_2, FAMILY, id, 1_000))
            .expect("insert");
        assert!(store.set_user_active(id, false).expect("deactivate"));
        assert!(!store.user(id).expect("read").expect("exists").active);
        assert!(store
            .refresh_token(JTI_2)
            .expect("read")
            .expect("kept")
            .revoked_at
            .is_some());
    }
}
