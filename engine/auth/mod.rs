//! Identity for the HTTP API: users, password login, HS512 access tokens and rotating refresh
//! tokens (seed 001 "User Authentication API": `POST /auth/pwd`, `POST /auth/refresh`).
//!
//! [`Auth`] is opened once per process and shared (`Send + Sync`). A login checks the
//! throttle, verifies the argon2id hash, and issues a 15-minute access token plus a 7-day
//! refresh token; each refresh uses up the presented refresh token and issues the next one of
//! its family, and a used token presented again revokes the family (it was copied).
//! [`Auth::verify_access`] reads the user on every call, so a deactivated user is refused at
//! once and roles come from the store, not from the token. `docs/AUTH.md` has the parameters.
//!
//! It does not speak HTTP, does not do TLS client-certificate login, password reset mail or
//! authorization decisions beyond [`Principal`]'s helpers: the `api` layer does.

mod clients;
mod password;
mod reset;
#[cfg(test)]
mod tests;
mod throttle;
mod token;

use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use zeroize::Zeroizing;

use crate::keys::KeyError;
use crate::store::{NewRefreshToken, NewUser, Rotation, Store, StoreError, UserId, UserRow};

pub use clients::{new_client_secret, ClientToken, CLIENT_SECRET_CHARS};
pub use password::{
    check_password_policy, hash_password, GENERATED_PASSWORD_CHARS, MAX_PASSWORD_BYTES,
    MIN_PASSWORD_CHARS,
};
pub use reset::{ResetRequest, RESET_CODE_LIFETIME_SECS, RESET_REQUEST_WINDOW_SECS};
pub use throttle::{Policy as ThrottlePolicy, ACCOUNT_POLICY, CLIENT_POLICY};
pub use token::ROLE_REFRESH_TOKEN;

use token::{Claims, Codec, Kind};

/// Lifetime of an access token, in seconds (seed 001: "a validity time of 15 minutes").
pub const ACCESS_TOKEN_LIFETIME_SECS: u64 = 15 * 60;

/// Seconds a download ticket ([`Auth::download_ticket`]) is valid for: long enough for a
/// browser to follow the link it was made for, short enough that a copied link is soon dead.
/// The check is at the request's start; a download may take longer.
pub const DOWNLOAD_TICKET_LIFETIME_SECS: u64 = 60;

/// Lifetime of a refresh token, in seconds: a week, renewed by every rotation.
pub const REFRESH_TOKEN_LIFETIME_SECS: u64 = 7 * 24 * 60 * 60;

/// The installation's token signing secret, relative to the data directory.
pub const SECRET_FILE: &str = "auth/jwt-secret";

/// Octets of the signing secret: 512 bits, the HMAC-SHA-512 block-sized key (RFC 7518 §3.2
/// requires at least the hash output size).
pub const SECRET_OCTETS: usize = 64;

/// Username of the first administrator when `CERTMILL_ADMIN_USER` is not set.
pub const DEFAULT_ADMIN_USER: &str = "admin";

/// Longest username, in characters (the store's CHECK).
pub const MAX_USERNAME_CHARS: usize = 64;

/// A role of a user, spelled as seed 001 spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// `ADMIN`: the whole installation.
    Admin,
    /// `ECO_ADMIN`: administers an ecosystem.
    EcoAdmin,
    /// `ORG_ADMIN`: administers one organization.
    OrgAdmin,
    /// `USER`: orders and downloads batches.
    User,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 4] = [Role::User, Role::OrgAdmin, Role::EcoAdmin, Role::Admin];

    /// The stored and command-line name: `USER`, `ORG_ADMIN`, `ECO_ADMIN`, `ADMIN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::EcoAdmin => "ECO_ADMIN",
            Role::OrgAdmin => "ORG_ADMIN",
            Role::User => "USER",
        }
    }

    /// The JWT authority: `ROLE_USER`, ...
    pub fn authority(self) -> &'static str {
        match self {
            Role::Admin => "ROLE_ADMIN",
            Role::EcoAdmin => "ROLE_ECO_ADMIN",
            Role::OrgAdmin => "ROLE_ORG_ADMIN",
            Role::User => "ROLE_USER",
        }
    }

    /// The role named `name` (as [`Role::as_str`] spells it), if any.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a verified access token speaks for, as the store knows the user now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user's store id.
    pub user_id: i64,
    /// The login name.
    pub username: String,
    /// The organization the user acts for.
    pub organization_id: i64,
    /// The user's roles.
    pub roles: Vec<Role>,
    /// Profiles the user may issue under; `None` means all.
    pub profiles: Option<Vec<String>>,
    /// The client id when the caller is an API client (seed 002), not a person.
    pub client: Option<String>,
}

impl Principal {
    /// Whether the user holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the user is an installation administrator (`ADMIN`).
    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    /// Whether the user may issue under the profile `name`: administrators and users without
    /// a profile list may use every profile.
    pub fn may_use_profile(&self, name: &str) -> bool {
        self.is_admin()
            || self
                .profiles
                .as_ref()
                .is_none_or(|profiles| profiles.iter().any(|profile| profile == name))
    }

    fn from_row(user: &UserRow) -> Result<Principal, AuthError> {
        let roles = user
            .roles
            .iter()
            .map(|name| {
                Role::parse(name).ok_or_else(|| AuthError::CorruptUser {
                    user: user.id,
                    role: name.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Principal {
            user_id: user.id.0,
            username: user.username.clone(),
            organization_id: user.organization.0,
            roles,
            profiles: user.profiles.clone(),
            client: user.client.then(|| user.username.clone()),
        })
    }

    /// How the audit log names the caller: `user <id>`, or `client <client id>`.
    pub fn actor(&self) -> String {
        match &self.client {
            Some(client_id) => format!("client {client_id}"),
            None => format!("user {}", self.user_id),
        }
    }
}

/// The tokens of a login or a refresh (seed 001 `accessToken`, `refreshToken`). `Debug`
/// redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The access token, for `Authorization: Bearer`.
    pub access_token: String,
    /// The refresh token, for `POST /auth/refresh`; usable once.
    pub refresh_token: String,
    /// Seconds the access token is valid for ([`ACCESS_TOKEN_LIFETIME_SECS`]).
    pub expires_in: u64,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Errors of authentication. No message contains a password or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A stored user holds a role this build does not know (the store was altered).
    #[error("user {user}: unknown role {role:?} in the store")]
    CorruptUser {
        /// The user.
        user: UserId,
        /// The stored role name.
        role: String,
    },
    /// The token's `exp` has passed.
    #[error("token expired")]
    Expired,
    /// Unknown user, wrong password or deactivated user: deliberately not told apart.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A new password does not meet the policy ([`check_password_policy`]).
    #[error("password refused: {reason}")]
    InvalidPassword {
        /// Which rule, e.g. "it must have at least 8 characters".
        reason: &'static str,
    },
    /// The token is not an HS512 token of ours, of the expected kind, for an active user.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// A new username is empty, too long or has characters outside letters, digits and `._@-`.
    #[error("username {username:?} refused: {reason}")]
    InvalidUsername {
        /// The username given.
        username: String,
        /// Which rule.
        reason: &'static str,
    },
    /// Hashing or reading a password hash failed (not a mismatch).
    #[error("password hash: {0}")]
    PasswordHash(argon2::password_hash::Error),
    /// The system random generator failed.
    #[error("random generator failed")]
    Random(#[source] KeyError),
    /// A used refresh token was presented again: it was copied, so its whole family is now
    /// revoked and the user must log in again.
    #[error("refresh token already used; all tokens of this login are revoked")]
    RefreshReused,
    /// The signing secret file could not be created or read.
    #[error("token signing secret {}", path.display())]
    Secret {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The signing secret file does not hold [`SECRET_OCTETS`] octets.
    #[error("token signing secret {} has {length} bytes, not 64", path.display())]
    SecretCorrupt {
        /// The file.
        path: PathBuf,
        /// Its length.
        length: usize,
    },
    /// The signing secret file may be read by other users.
    #[error("token signing secret {} has mode {mode:o}; run chmod 600 on it", path.display())]
    SecretPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many failed logins for this account or from this client.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled {
        /// Seconds until the next attempt is considered (`Retry-After`).
        retry_after_secs: u64,
    },
    /// Signing a token failed.
    #[error("token signing failed")]
    TokenEncoding(#[source] jsonwebtoken::errors::Error),
}

impl AuthError {
    /// The HTTP status the API answers with: 400 refused input, 401 authentication failed,
    /// 429 throttled, 500 everything else (detail logged, not sent).
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::InvalidPassword { .. } | AuthError::InvalidUsername { .. } => 400,
            AuthError::Expired
            | AuthError::InvalidCredentials
            | AuthError::InvalidToken(_)
            | AuthError::RefreshReused => 401,
            AuthError::Throttled { .. } => 429,
            AuthError::CorruptUser { .. }
            | AuthError::PasswordHash(_)
            | AuthError::Random(_)
            | AuthError::Secret { .. }
            | AuthError::SecretCorrupt { .. }
            | AuthError::SecretPermissions { .. }
            | AuthError::Store(_)
            | AuthError::TokenEncoding(_) => 500,
        }
    }
}

/// The current time in unix seconds; injected so tests control expiry and throttling.
type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_clock() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Login, refresh and token verification for one data directory. `Send + Sync`: share it in an
/// `Arc`. Its store connection is behind a mutex held only for single queries, never during
/// argon2.
pub struct Auth {
    store: Mutex<Store>,
    codec: Codec,
    throttle: throttle::Throttle,
    /// Counts password reset requests and wrong reset codes per client address.
    reset_throttle: throttle::Throttle,
    /// The hash an unknown username is verified against, so it costs what a known one does.
    dummy_hash: String,
    clock: Clock,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// Opens the store of `data_dir` and loads the signing secret `<data>/auth/jwt-secret`,
    /// creating it (64 random octets, mode 0600, atomically) on first use.
    ///
    /// Blocking: computes one argon2id hash (the dummy for unknown usernames).
    pub fn open(data_dir: &Path) -> Result<Auth, AuthError> {
        let store = Store::open(data_dir)?;
        let secret = load_or_create_secret(data_dir)?;
        let dummy = password::generate_password()?;
        Ok(Auth {
            store: Mutex::new(store),
            codec: Codec::new(&secret[..]),
            throttle: throttle::Throttle::new(ACCOUNT_POLICY, CLIENT_POLICY),
            reset_throttle: throttle::Throttle::new(reset::RESET_POLICY, reset::RESET_POLICY),
            dummy_hash: password::hash_unchecked(&dummy)?,
            clock: Arc::new(system_clock),
        })
    }

    /// Replaces the clock (unix seconds) that stamps and checks tokens and drives the throttle.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Auth {
        self.clock = Arc::new(clock);
        self
    }

    /// Replaces the throttle policies (per account, per client address).
    pub fn with_throttle(mut self, account: ThrottlePolicy, client: ThrottlePolicy) -> Auth {
        self.throttle = throttle::Throttle::new(account, client);
        self.reset_throttle = throttle::Throttle::new(account, client);
        self
    }

    /// Logs in with a password (seed 001 `POST /auth/pwd`).
    ///
    /// Blocking (argon2id, tens of milliseconds): call it in `spawn_blocking`. Unknown users,
    /// wrong passwords and deactivated users all cost one argon2id verification and all answer
    /// [`AuthError::InvalidCredentials`]. Failures count against the account and the client
    /// address; past the limits the answer is [`AuthError::Throttled`] without verifying.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Tokens, AuthError> {
        let now = (self.clock)();
        let user = self.verify_secret(username, password, false, client, now)?;
        if password::needs_rehash(&user.password_hash) {
            let rehashed = password::hash_unchecked(password)?;
            self.store().set_password(user.id, &rehashed)?;
        }
        let principal = Principal::from_row(&user)?;
        let family = random_hex()?;
        let (tokens, jti) = self.issue(&principal, &family, now)?;
        let store = self.store();
        store.insert_refresh_token(&NewRefreshToken {
            jti: &jti,
            family: &family,
            user: user.id,
            issued_at: now,
            expires_at: now.saturating_add(secs(REFRESH_TOKEN_LIFETIME_SECS)),
        })?;
        store.delete_expired_refresh_tokens(now)?;
        Ok(tokens)
    }

    /// The active account `name`, a person or (`client`) an API client, whose password or
    /// secret is `secret`. Unknown names cost one argon2id verification too, against the dummy
    /// hash, and every refusal is [`AuthError::InvalidCredentials`]: a failure counts against
    /// the name and the address, and past the limits the answer is [`AuthError::Throttled`]
    /// without verifying. A person's password never opens a client, nor the reverse.
    fn verify_secret(
        &self,
        name: &str,
        secret: &str,
        client: bool,
        address: IpAddr,
        now: i64,
    ) -> Result<UserRow, AuthError> {
        let attempt = self
            .throttle
            .begin(name, address, now)
            .map_err(|retry_after_secs| AuthError::Throttled { retry_after_secs })?;
        let row = self.store().find_user_by_name(name)?;
        let verified = match &row {
            Some(row) => password::verify(&row.password_hash, secret)?,
            None => {
                password::verify(&self.dummy_hash, secret)?;
                false
            }
        };
        match row {
            Some(row) if verified && row.active && row.client == client => {
                attempt.succeeded();
                Ok(row)
            }
            _ => {
                attempt.failed(now);
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Changes a user's own password (seed 001 `PUT /api/v1/users/credentials`): `Ok(false)`
    /// when `current` is not the user's password (which counts against the account and the
    /// client like a failed login; past the limits [`AuthError::Throttled`]), `Ok(true)` once
    /// `new` (which must meet the policy) replaces it. Every refresh token of the user is
    /// revoked with the change, so other sessions end at their next refresh.
    ///
    /// Blocking (two argon2id computations): call it in `spawn_blocking`.
    pub fn change_password(
        &self,
        user: UserId,
        current: &str,
        new: &str,
        client: IpAddr,
    ) -> Result<bool, AuthError> {
        let now = (self.clock)();
        let row = self
            .store()
            .user(user)?
            .filter(|row| row.active)
            .ok_or_else(|| AuthError::InvalidToken("unknown user".to_owned()))?;
        let attempt = self
            .throttle
            .begin(&row.username, client, now)
            .map_err(|retry_after_secs| AuthError::Throttled { retry_after_secs })?;
        if !password::verify(&row.password_hash, current)? {
            attempt.failed(now);
            return Ok(false);
        }
        attempt.succeeded();
        let hash = password::hash_password(new)?;
        Ok(self.store().set_password(user, &hash)?)
    }

    /// Exchanges a refresh token for a new access token and the next refresh token of its
    /// family (seed 001 `POST /auth/refresh`). Cheap: no argon2.
    ///
    /// The presented token is used up. Presenting a used one again revokes every token of its
    /// family and answers [`AuthError::RefreshReused`].
    pub fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let now = (self.clock)();
        let claims = self.codec.decode(refresh_token, Kind::Refresh, now)?;
        let (Some(jti), Some(family)) = (&claims.jti, &claims.family) else {
            // `Kind::Refresh` guarantees both; kept as a refusal rather than a panic.
            return Err(AuthError::InvalidToken("not a refresh token".to_owned()));
        };
        let user = self.active_user(&claims)?;
        let principal = Principal::from_row(&user)?;
        let (tokens, next_jti) = self.issue(&principal, family, now)?;
        let rotation = self.store().rotate_refresh_token(
            jti,
            &NewRefreshToken {
                jti: &next_jti,
                family,
                user: user.id,
                issued_at: now,
                expires_at: now.saturating_add(secs(REFRESH_TOKEN_LIFETIME_SECS)),
            },
        )?;
        match rotation {
            Rotation::Rotated => Ok(tokens),
            Rotation::Reused { .. } => Err(AuthError::RefreshReused),
            Rotation::Expired => Err(AuthError::Expired),
            Rotation::Revoked => Err(AuthError::InvalidToken("refresh token revoked".to_owned())),
            Rotation::FamilyMismatch | Rotation::Unknown => {
                Err(AuthError::InvalidToken("unknown refresh token".to_owned()))
            }
        }
    }

    /// The principal of a valid access token, as the store knows the user now. Cheap: one
    /// HMAC and one indexed read.
    pub fn verify_access(&self, access_token: &str) -> Result<Principal, AuthError> {
        let now = (self.clock)();
        let claims = self.codec.decode(access_token, Kind::Access, now)?;
        self.principal_of(&claims)
    }

    /// A download ticket: the caller's access to batch `batch`'s ZIP alone, for
    /// [`DOWNLOAD_TICKET_LIFETIME_SECS`], to put in a link (`?ticket=`) a browser or a plain
    /// HTTP client follows without an `Authorization` header. It carries the same roles,
    /// organization and client secret generation as an access token, so everything that
    /// voids the caller's tokens voids it too.
    pub fn download_ticket(&self, principal: &Principal, batch: i64) -> Result<String, AuthError> {
        let now = (self.clock)();
        let mut claims = access_claims(principal, now);
        let user = self.active_user(&claims)?;
        claims.generation = user.client.then_some(user.generation);
        claims.exp = now.saturating_add(secs(DOWNLOAD_TICKET_LIFETIME_SECS));
        claims.download = Some(batch);
        self.codec.encode(&claims)
    }

    /// The principal of a valid download ticket for batch `batch` (a ticket for another
    /// batch, an access token and an expired ticket are refused).
    pub fn verify_download(&self, ticket: &str, batch: i64) -> Result<Principal, AuthError> {
        let now = (self.clock)();
        let claims = self.codec.decode(ticket, Kind::Download, now)?;
        if claims.download != Some(batch) {
            return Err(AuthError::InvalidToken(
                "a download ticket for another batch".to_owned(),
            ));
        }
        self.principal_of(&claims)
    }

    /// The principal an access token's or a download ticket's claims name, as the store
    /// knows the user now.
    fn principal_of(&self, claims: &Claims) -> Result<Principal, AuthError> {
        let user = self.active_user(claims)?;
        // A client's token names its secret generation: a reset secret voids it at once. A
        // person's token names none.
        let generation = user.client.then_some(user.generation);
        if claims.generation != generation {
            return Err(AuthError::InvalidToken(
                "issued for a secret that was reset".to_owned(),
            ));
        }
        Principal::from_row(&user)
    }

    /// The user a token names, if it still exists under that name and is active.
    fn active_user(&self, claims: &Claims) -> Result<UserRow, AuthError> {
        let user = self
            .store()
            .user(UserId(claims.uid))?
            .filter(|user| user.username == claims.sub)
            .ok_or_else(|| AuthError::InvalidToken("unknown user".to_owned()))?;
        if !user.active {
            return Err(AuthError::InvalidToken("user is deactivated".to_owned()));
        }
        Ok(user)
    }

    /// An access token and a refresh token (of `family`, with a new `jti`, returned too).
    fn issue(
        &self,
        principal: &Principal,
        family: &str,
        now: i64,
    ) -> Result<(Tokens, String), AuthError> {
        let access = access_claims(principal, now);
        let jti = random_hex()?;
        let refresh = Claims {
            authorities: vec![ROLE_REFRESH_TOKEN.to_owned()],
            exp: now.saturating_add(secs(REFRESH_TOKEN_LIFETIME_SECS)),
            org: None,
            jti: Some(jti.clone()),
            family: Some(family.to_owned()),
            ..access.clone()
        };
        let tokens = Tokens {
            access_token: self.codec.encode(&access)?,
            refresh_token: self.codec.encode(&refresh)?,
            expires_in: ACCESS_TOKEN_LIFETIME_SECS,
        };
        Ok((tokens, jti))
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the database half written: an open
        // rusqlite transaction rolls back when dropped.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How the first administrator is named and what password it gets.
pub struct BootstrapOptions {
    /// Username ([`DEFAULT_ADMIN_USER`] unless `CERTMILL_ADMIN_USER` is set).
    pub username: String,
    /// Password (`CERTMILL_ADMIN_PASSWORD`); `None` means generate one.
    pub password: Option<Zeroizing<String>>,
}

impl BootstrapOptions {
    /// `CERTMILL_ADMIN_USER` (default `admin`) and `CERTMILL_ADMIN_PASSWORD` (unset or empty:
    /// generate).
    pub fn from_env() -> BootstrapOptions {
        let username = std::env::var("CERTMILL_ADMIN_USER")
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| DEFAULT_ADMIN_USER.to_owned());
        let password = std::env::var("CERTMILL_ADMIN_PASSWORD")
            .ok()
            .filter(|password| !password.is_empty())
            .map(Zeroizing::new);
        BootstrapOptions { username, password }
    }
}

/// What [`bootstrap_admin_with`] did.
#[derive(PartialEq, Eq)]
pub enum Bootstrap {
    /// The store had no user; this administrator was created.
    Created {
        /// Its id.
        user: UserId,
        /// Its username.
        username: String,
        /// The password certmill generated, to show once; `None` when it was given.
        generated_password: Option<Zeroizing<String>>,
    },
    /// The store already has users; nothing was done.
    UsersExist,
}

impl fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bootstrap::Created { user, username, .. } => f
                .debug_struct("Created")
                .field("user", user)
                .field("username", username)
                .finish_non_exhaustive(),
            Bootstrap::UsersExist => f.write_str("UsersExist"),
        }
    }
}

/// On first start (no users), creates the administrator from the environment
/// ([`BootstrapOptions::from_env`]) in the default organization with roles ADMIN and USER.
///
/// Returns the generated password, for the caller to print once, when certmill chose it;
/// `None` when users already exist or the password came from `CERTMILL_ADMIN_PASSWORD`. There
/// is no fixed default password. Blocking (one argon2id hash).
pub fn bootstrap_admin(data_dir: &Path) -> Result<Option<String>, AuthError> {
    match bootstrap_admin_with(data_dir, BootstrapOptions::from_env())? {
        Bootstrap::Created {
            generated_password, ..
        } => Ok(generated_password.map(|password| password.as_str().to_owned())),
        Bootstrap::UsersExist => Ok(None),
    }
}

/// [`bootstrap_admin`] with explicit options.
pub fn bootstrap_admin_with(
    data_dir: &Path,
    options: BootstrapOptions,
) -> Result<Bootstrap, AuthError> {
    let store = Store::open(data_dir)?;
    if store.user_count()? > 0 {
        return Ok(Bootstrap::UsersExist);
    }
    check_username(&options.username)?;
    let (password, generated) = match options.password {
        Some(given) => (given, false),
        None => (password::generate_password()?, true),
    };
    let password_hash = hash_password(&password)?;
    let organization = store.default_organization()?;
    let created = store.create_first_user(&NewUser {
        username: &options.username,
        password_hash: &password_hash,
        organization,
        roles: &[Role::Admin.as_str(), Role::User.as_str()],
        profiles: None,
    })?;
    Ok(match created {
        Some(user) => Bootstrap::Created {
            user,
            username: options.username,
            generated_password: generated.then_some(password),
        },
        // Another process created the first user between the count and the insert.
        None => Bootstrap::UsersExist,
    })
}

/// Checks a new username: 1 to 64 characters, ASCII letters, digits and `._@-`.
pub fn check_username(username: &str) -> Result<(), AuthError> {
    let refuse = |reason| {
        Err(AuthError::InvalidUsername {
            username: username.to_owned(),
            reason,
        })
    };
    if username.is_empty() || username.len() > MAX_USERNAME_CHARS {
        return refuse("it must have 1 to 64 characters");
    }
    if !username
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"._@-".contains(&c))
    {
        return refuse("only letters, digits and . _ @ - are allowed");
    }
    Ok(())
}

/// 128 random bits, lower-case hex: a `jti` or a `family`.
/// The claims of an access token for `principal` issued at `now` (no client generation).
fn access_claims(principal: &Principal, now: i64) -> Claims {
    Claims {
        sub: principal.username.clone(),
        authorities: principal
            .roles
            .iter()
            .map(|role| role.authority().to_owned())
            .collect(),
        exp: now.saturating_add(secs(ACCESS_TOKEN_LIFETIME_SECS)),
        iat: now,
        uid: principal.user_id,
        org: Some(principal.organization_id),
        jti: None,
        family: None,
        generation: None,
        download: None,
    }
}

fn random_hex() -> Result<String, AuthError> {
    let mut bits = [0u8; 16];
    crate::keys::random_bytes(&mut bits).map_err(AuthError::Random)?;
    Ok(bits.iter().map(|octet| format!("{octet:02x}")).collect())
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A 32-byte key for `purpose`, derived (HKDF-SHA256) from the data directory's secret
/// (`auth/jwt-secret`, created if missing). Nodes of one cluster share that secret (they must,
/// for each other's tokens), so they derive the same key; another purpose gives an unrelated
/// key, and the secret itself never leaves this module.
pub fn derived_key(data_dir: &Path, purpose: &[u8]) -> Result<Zeroizing<[u8; 32]>, AuthError> {
    use aws_lc_rs::hkdf;
    let secret = load_or_create_secret(data_dir)?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"certmill derived key v1").extract(&secret);
    let mut key = Zeroizing::new([0u8; 32]);
    prk.expand(&[purpose], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(key.as_mut_slice()))
        .map_err(|_| AuthError::Random(crate::keys::KeyError::Random))?;
    Ok(key)
}

/// Reads `<data>/auth/jwt-secret`, or creates it: written to a temporary file (mode 0600) in
/// the same directory, synced, then linked into place without replacing, so a concurrent
/// opener either wins or reads the winner's secret; a half-written secret is never visible.
fn load_or_create_secret(data_dir: &Path) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

    let path = data_dir.join(SECRET_FILE);
    let secret_error = |source| AuthError::Secret {
        path: path.clone(),
        source,
    };
    let dir = path
        .parent()
        .ok_or_else(|| secret_error(std::io::ErrorKind::InvalidInput.into()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(secret_error)?;
    loop {
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let mode = std::fs::metadata(&path)
                    .map_err(secret_error)?
                    .permissions()
                    .mode()
                    & 0o777;
                if mode & 0o077 != 0 {
                    return Err(AuthError::SecretPermissions { path, mode });
                }
                if bytes.len() != SECRET_OCTETS {
                    return Err(AuthError::SecretCorrupt {
                        path,
                        length: bytes.len(),
                    });
                }
                return Ok(bytes);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(secret_error(error)),
        }
        let mut secret = Zeroizing::new(vec![0u8; SECRET_OCTETS]);
        crate::keys::random_bytes(&mut secret).map_err(AuthError::Random)?;
        // tempfile creates the file with mode 0600.
        let mut file = tempfile::Builder::new()
            .prefix(".jwt-secret.")
            .tempfile_in(dir)
            .map_err(secret_error)?;
        file.write_all(&secret).map_err(secret_error)?;
        file.as_file().sync_all().map_err(secret_error)?;
        match file.persist_noclobber(&path) {
            Ok(_) => return Ok(secret),
            // Another process created it first: loop and read theirs.
            Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(secret_error(error.error)),
        }
    }
}
