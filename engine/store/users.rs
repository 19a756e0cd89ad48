//! Users as seed 001's administration API keeps them: contact details (first and last name,
//! phone, e-mail), roles and accessible profiles, listed per organization, removed.

use super::db::{params, OptionalExtension};

use super::{db, OrganizationId, Store, StoreError, UserId, UserRow};

/// A user's contact details (seed 001 `firstName`, `lastName`, `phone`, `email`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserContact {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Phone number.
    pub phone: String,
    /// E-mail address (compared ignoring ASCII case).
    pub email: String,
}

impl Store {
    /// A user's contact details; `None` when no user has this id.
    pub fn user_contact(&self, user: UserId) -> Result<Option<UserContact>, StoreError> {
        self.connection
            .prepare_cached("SELECT first_name, last_name, phone, email FROM users WHERE id = ?1")
            .and_then(|mut select| {
                select
                    .query_row([user.0], |row| {
                        Ok(UserContact {
                            first_name: row.get(0)?,
                            last_name: row.get(1)?,
                            phone: row.get(2)?,
                            email: row.get(3)?,
                        })
                    })
                    .optional()
            })
            .map_err(db("reading a user's contact details"))
    }

    /// Replaces a user's contact details; `false` when no user has this id, and
    /// [`StoreError::EmailTaken`] when another user has the e-mail address (ASCII case
    /// ignored), checked and written in one write transaction.
    pub fn set_user_contact(
        &self,
        user: UserId,
        contact: &UserContact,
    ) -> Result<bool, StoreError> {
        const ACTION: &str = "updating a user's contact details";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let taken = tx
            .prepare_cached(
                "SELECT 1 FROM users WHERE lower(email) = lower(?1) AND email <> '' AND id <> ?2",
            )
            .and_then(|mut select| select.exists(params![contact.email, user.0]))
            .map_err(db(ACTION))?;
        if taken {
            return Err(StoreError::EmailTaken {
                email: contact.email.clone(),
            });
        }
        let changed = tx
            .prepare_cached(
                "UPDATE users SET first_name = ?2, last_name = ?3, phone = ?4, email = ?5,
                     updated_at = ?6
                 WHERE id = ?1",
            )
            .and_then(|mut update| {
                update.execute(params![
                    user.0,
                    contact.first_name,
                    contact.last_name,
                    contact.phone,
                    contact.email,
                    now
                ])
            })
            .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))?;
        Ok(changed == 1)
    }

    /// Replaces a user's roles (at least one) and accessible profiles (`None`: all); `false`
    /// when no user has this id. Access tokens carry the user's id, and every request reads
    /// the user as stored, so the change holds from the next request.
    pub fn set_user_access(
        &self,
        user: UserId,
        roles: &[&str],
        profiles: Option<&[String]>,
    ) -> Result<bool, StoreError> {
        let now = (self.clock)();
        let profiles =
            profiles.map(|profiles| serde_json::Value::from(profiles.to_vec()).to_string());
        self.connection
            .prepare_cached(
                "UPDATE users SET roles = ?2, profiles = ?3, updated_at = ?4 WHERE id = ?1",
            )
            .and_then(|mut update| update.execute(params![user.0, roles.join(","), profiles, now]))
            .map(|changed| changed == 1)
            .map_err(db("updating a user's roles"))
    }

    /// The users of an organization, by id, with their contact details.
    pub fn users_of(
        &self,
        organization: OrganizationId,
    ) -> Result<Vec<(UserRow, UserContact)>, StoreError> {
        self.users_of_matching(organization, &crate::filter::SqlFilter::all())
    }

    /// The users of an organization matching `filter` (compiled over
    /// [`super::USER_FIELDS`]), by id, with their contact details.
    pub fn users_of_matching(
        &self,
        organization: OrganizationId,
        filter: &crate::filter::SqlFilter,
    ) -> Result<Vec<(UserRow, UserContact)>, StoreError> {
        let mut out = Vec::new();
        for user in self.users_matching(organization, filter)? {
            let contact = self.user_contact(user.id)?.unwrap_or_default();
            out.push((user, contact));
        }
        Ok(out)
    }

    /// Whether a user has this e-mail address (ASCII case ignored).
    pub fn email_taken(&self, email: &str) -> Result<bool, StoreError> {
        self.connection
            .prepare_cached("SELECT 1 FROM users WHERE lower(email) = lower(?1) AND email <> ''")
            .and_then(|mut select| select.exists([email]))
            .map_err(db("looking up an e-mail address"))
    }

    /// Removes a user and their refresh tokens in one transaction; `false` when no user has
    /// this id. The audit log keeps naming them (`user <id>`), and ids are never reused.
    pub fn remove_user(&self, user: UserId) -> Result<bool, StoreError> {
        const ACTION: &str = "removing a user";
        let tx = self.write_transaction(ACTION)?;
        for sql in [
            "DELETE FROM refresh_tokens WHERE user_id = ?1",
            "DELETE FROM password_resets WHERE user_id = ?1",
        ] {
            tx.prepare_cached(sql)
                .and_then(|mut delete| delete.execute([user.0]))
                .map_err(db(ACTION))?;
        }
        let removed = tx
            .prepare_cached("DELETE FROM users WHERE id = ?1")
            .and_then(|mut delete| delete.execute([user.0]))
            .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))?;
        Ok(removed == 1)
    }
}
