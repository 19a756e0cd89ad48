//! Password reset by a one-time code sent by e-mail (seed 001 `POST /auth/reset`,
//! `/auth/validate-code`, `/auth/update`).
//!
//! - A request names a login (username or e-mail address). It is recorded whether or not the
//!   login names anyone, and a second request for the same login within
//!   [`RESET_REQUEST_WINDOW_SECS`] is refused (the seed's `false`) the same way in both cases:
//!   the answer never says whether an account exists.
//! - For an active person with an e-mail address, a code is made: a random (version 4) UUID,
//!   as in the seed. The store keeps its SHA-256 only; it works once, for
//!   [`RESET_CODE_LIFETIME_SECS`], and a newer code replaces it.
//! - Using it sets the new password (which must meet the policy), spends the code and revokes
//!   every refresh token of the user, in one transaction.
//! - Requests and wrong codes count against the client address ([`RESET_POLICY`]); past the
//!   limit the answer is [`AuthError::Throttled`].
//!
//! Sending the mail is the caller's: [`ResetRequest::Send`] carries the address and the code.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{password, throttle, Auth, AuthError};
use crate::store::UserId;

/// How long a reset code works, in seconds.
pub const RESET_CODE_LIFETIME_SECS: i64 = 15 * 60;

/// A login gets one reset request per this many seconds (seed 001: "within the past 15
/// minutes the response will contain false").
pub const RESET_REQUEST_WINDOW_SECS: i64 = 15 * 60;

/// Per client address: 10 reset requests or wrong codes, then 2 s, 4 s, ... up to 15 minutes.
pub(crate) const RESET_POLICY: throttle::Policy = throttle::Policy {
    free_failures: 10,
    ..super::ACCOUNT_POLICY
};

/// What a reset request led to.
#[derive(PartialEq, Eq)]
pub enum ResetRequest {
    /// Recorded; mail `code` to `to`. (The seed's `true`.)
    Send {
        /// The user.
        user: UserId,
        /// Their e-mail address.
        to: String,
        /// The one-time code, to put in the mail and nowhere else.
        code: Zeroizing<String>,
    },
    /// Recorded, but the login names no active person with an e-mail address: nothing to send.
    /// Answered exactly like [`ResetRequest::Send`].
    Nobody,
    /// The login had a request within [`RESET_REQUEST_WINDOW_SECS`]. (The seed's `false`.)
    TooSoon,
}

impl std::fmt::Debug for ResetRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResetRequest::Send { user, to, .. } => f
                .debug_struct("Send")
                .field("user", user)
                .field("to", to)
                .finish_non_exhaustive(),
            ResetRequest::Nobody => f.write_str("Nobody"),
            ResetRequest::TooSoon => f.write_str("TooSoon"),
        }
    }
}

impl ResetRequest {
    /// The seed's answer: `true` unless [`ResetRequest::TooSoon`].
    pub fn accepted(&self) -> bool {
        !matches!(self, ResetRequest::TooSoon)
    }
}

/// SHA-256 of `text`, lower-case hex.
fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|octet| format!("{octet:02x}"))
        .collect()
}

/// The key a login's requests are counted under: its lower-cased SHA-256.
fn login_key(login: &str) -> String {
    sha256_hex(&login.trim().to_ascii_lowercase())
}

/// A code as the seed shows one: a random UUID, lower-case.
fn new_code() -> Result<Zeroizing<String>, AuthError> {
    let mut bits = [0u8; 16];
    crate::keys::random_bytes(&mut bits).map_err(AuthError::Random)?;
    Ok(Zeroizing::new(
        uuid::Builder::from_random_bytes(bits)
            .into_uuid()
            .hyphenated()
            .to_string(),
    ))
}

impl Auth {
    /// Asks for a password reset for `login` (username or e-mail address) from `client`.
    pub fn request_reset(&self, login: &str, client: IpAddr) -> Result<ResetRequest, AuthError> {
        let now = (self.clock)();
        // Every request counts against the address: a flood of requests is a flood of mail.
        self.begin_reset_attempt(client, now)?.failed(now);
        let login = login.trim();
        let store = self.store();
        if !store.note_reset_request(&login_key(login), now, RESET_REQUEST_WINDOW_SECS)? {
            return Ok(ResetRequest::TooSoon);
        }
        let Some((user, to)) = store.reset_recipient(login)? else {
            return Ok(ResetRequest::Nobody);
        };
        let code = new_code()?;
        store.put_reset_code(
            user,
            &sha256_hex(&code),
            now,
            now.saturating_add(RESET_CODE_LIFETIME_SECS),
        )?;
        Ok(ResetRequest::Send { user, to, code })
    }

    /// Whether `code` is an outstanding reset code (seed `POST /auth/validate-code`). Does not
    /// spend it; a wrong code counts against `client`.
    pub fn validate_reset_code(&self, code: &str, client: IpAddr) -> Result<bool, AuthError> {
        let now = (self.clock)();
        let attempt = self.begin_reset_attempt(client, now)?;
        let valid = self
            .store()
            .reset_code_user(&sha256_hex(code.trim()), now)?
            .is_some();
        if !valid {
            attempt.failed(now);
        }
        // A valid code settles nothing: the address's failures stay counted.
        Ok(valid)
    }

    /// Sets a new password with a reset code (seed `POST /auth/update`): `Ok(false)` (and
    /// counted against `client`) when the code is unknown, used or expired, `Ok(true)` once the
    /// password is replaced, the code spent and the user's refresh tokens revoked.
    ///
    /// The new password is checked against the policy first ([`AuthError::InvalidPassword`]),
    /// so a refused password does not spend the code. Blocking (one argon2id hash).
    pub fn reset_password(
        &self,
        code: &str,
        new_password: &str,
        client: IpAddr,
    ) -> Result<bool, AuthError> {
        let now = (self.clock)();
        let attempt = self.begin_reset_attempt(client, now)?;
        let hash = password::hash_password(new_password)?;
        // Bound first: the store guard of the call must be released before the match reads
        // the store again.
        let spent = self
            .store()
            .use_reset_code(&sha256_hex(code.trim()), &hash, now)?;
        match spent {
            Some(user) => {
                if let Some(row) = self.store().user(user)? {
                    // A locked-out account may log in again with its new password.
                    self.throttle.success(&row.username);
                }
                Ok(true)
            }
            None => {
                attempt.failed(now);
                Ok(false)
            }
        }
    }

    /// Begins a reset request or code check from `client`, counted while in flight so that a
    /// burst cannot pass the throttle before its first failure is counted (as for logins).
    fn begin_reset_attempt(
        &self,
        client: IpAddr,
        now: i64,
    ) -> Result<throttle::Attempt<'_>, AuthError> {
        self.reset_throttle
            .begin(&client.to_string(), client, now)
            .map_err(|retry_after_secs| AuthError::Throttled { retry_after_secs })
    }
}
