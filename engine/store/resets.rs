//! Password reset codes (seed 001 `/auth/reset`, `/auth/validate-code`, `/auth/update`).
//!
//! The store keeps a code's SHA-256 only, one outstanding code per user (a new request replaces
//! it), and the time a reset was last requested per login (also hashed, and kept whether or not
//! the login names a user, so the "once per window" answer reveals nothing). Spending a code,
//! setting the password and revoking the user's refresh tokens is one transaction.

use super::db::{params, OptionalExtension};

use super::{db, identity::revoke_user_tokens, Store, StoreError, UserId};

impl Store {
    /// Records a reset request for the login whose hash is `login_hash` at `now`, unless one was
    /// recorded less than `window` seconds before: `true` when recorded, `false` when too soon.
    /// Requests older than the window are forgotten on the way.
    pub fn note_reset_request(
        &self,
        login_hash: &str,
        now: i64,
        window: i64,
    ) -> Result<bool, StoreError> {
        const ACTION: &str = "recording a password reset request";
        let tx = self.write_transaction(ACTION)?;
        tx.prepare_cached("DELETE FROM password_reset_requests WHERE requested_at <= ?1")
            .and_then(|mut delete| delete.execute([now.saturating_sub(window)]))
            .map_err(db(ACTION))?;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO password_reset_requests (login_hash, requested_at) VALUES (?1, ?2)
                 ON CONFLICT (login_hash) DO NOTHING",
            )
            .and_then(|mut insert| insert.execute(params![login_hash, now]))
            .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))?;
        Ok(inserted == 1)
    }

    /// Makes `code_hash` the user's one outstanding reset code, valid until `expires_at`; a
    /// previous code of the user stops working.
    pub fn put_reset_code(
        &self,
        user: UserId,
        code_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(
                "INSERT INTO password_resets (user_id, code_hash, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id) DO UPDATE SET code_hash = ?2, created_at = ?3,
                     expires_at = ?4, used_at = NULL",
            )
            .and_then(|mut upsert| upsert.execute(params![user.0, code_hash, now, expires_at]))
            .map(drop)
            .map_err(db("storing a password reset code"))
    }

    /// The user whose unused, unexpired reset code hashes to `code_hash`, if any.
    pub fn reset_code_user(&self, code_hash: &str, now: i64) -> Result<Option<UserId>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT r.user_id FROM password_resets r JOIN users u ON u.id = r.user_id
                 WHERE r.code_hash = ?1 AND r.used_at IS NULL AND r.expires_at > ?2
                   AND u.active = 1 AND u.kind = 'USER'",
            )
            .and_then(|mut select| {
                select
                    .query_row(params![code_hash, now], |row| row.get(0))
                    .optional()
            })
            .map(|id| id.map(UserId))
            .map_err(db("checking a password reset code"))
    }

    /// Spends the reset code `code_hash` if it is unused and unexpired: in one transaction the
    /// code is marked used, the user's password hash becomes `password_hash` and every refresh
    /// token of the user is revoked. `None` (nothing changed) for an unknown, used or expired
    /// code.
    pub fn use_reset_code(
        &self,
        code_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<UserId>, StoreError> {
        const ACTION: &str = "resetting a password";
        let tx = self.write_transaction(ACTION)?;
        let user: Option<i64> = tx
            .prepare_cached(
                "UPDATE password_resets SET used_at = ?2
                 WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                   AND user_id IN (SELECT id FROM users WHERE active = 1 AND kind = 'USER')
                 RETURNING user_id",
            )
            .and_then(|mut update| {
                update
                    .query_row(params![code_hash, now], |row| row.get(0))
                    .optional()
            })
            .map_err(db(ACTION))?;
        let Some(user) = user.map(UserId) else {
            return Ok(None);
        };
        tx.prepare_cached("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![user.0, password_hash, now]))
            .map_err(db(ACTION))?;
        revoke_user_tokens(&tx, user, now, ACTION)?;
        tx.commit().map_err(db(ACTION))?;
        Ok(Some(user))
    }

    /// The active person (not an API client) whose login name or e-mail address is `login`
    /// (ASCII case ignored), with their e-mail address; `None` when there is none or they
    /// have no address.
    pub fn reset_recipient(&self, login: &str) -> Result<Option<(UserId, String)>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT id, email FROM users
                 WHERE (lower(username) = lower(?1) OR lower(email) = lower(?1)) AND email <> '' AND active = 1
                   AND kind = 'USER'
                 ORDER BY lower(username) = lower(?1) DESC, id LIMIT 1",
            )
            .and_then(|mut select| {
                select
                    .query_row([login], |row| Ok((UserId(row.get(0)?), row.get(1)?)))
                    .optional()
            })
            .map_err(db("looking up the recipient of a password reset"))
    }
}
