//! Organizations as seed 001's administration API keeps them: name, address, primary contact,
//! manufacturer id, logo, status and organization parameters; created, listed, updated and
//! deleted (hidden, status DELETED) only while nothing depends on them. An organization is also
//! the seed's ecosystem: its batches counted per day, and the installation's administrators.

use super::db::{params, OptionalExtension, Row};

use super::{db, OrganizationId, Store, StoreError, UserContact, UserId, UserRow};

/// An organization's batches of one UTC day (seed 001 "Get ecosystem statistics").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchDay {
    /// The day: unix seconds of its 00:00 UTC.
    pub day: i64,
    /// Batches ordered that day.
    pub batches: u64,
    /// Devices ordered by them (their sizes).
    pub ordered: u64,
    /// Of those batches, the ones with at least one certificate issued.
    pub issuing_batches: u64,
    /// Certificates issued for them.
    pub issued: u64,
}

/// `roles` holds ADMIN or ECO_ADMIN (a comma list of role names).
const ADMINISTRATOR: &str = "kind = 'USER'
    AND (',' || roles || ',' LIKE '%,ADMIN,%' OR ',' || roles || ',' LIKE '%,ECO_ADMIN,%')";

/// An organization's details as the API reads and writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrganizationDetails {
    /// Name, unique among organizations that are not deleted (ASCII case ignored).
    pub name: String,
    /// Postal address.
    pub address: String,
    /// Primary contact's name.
    pub contact_name: String,
    /// Primary contact's e-mail address.
    pub contact_email: String,
    /// Primary contact's phone number.
    pub contact_phone: String,
    /// Manufacturer id.
    pub manufacture_id: String,
    /// Logo (as the client sends it).
    pub logo: String,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Organization parameters (a JSON object of strings).
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

/// A stored organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationRecord {
    /// Row id.
    pub id: OrganizationId,
    /// Its details.
    pub details: OrganizationDetails,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last changed, unix seconds.
    pub updated_at: Option<i64>,
}

/// Why an organization cannot be deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrganizationInUse {
    /// It still has users.
    Users(u64),
    /// Authorities with units available or reserved.
    Balance(u64),
    /// Batches still issuing.
    Batches(u64),
}

impl std::fmt::Display for OrganizationInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrganizationInUse::Users(n) => write!(f, "it has {n} user(s)"),
            OrganizationInUse::Balance(n) => {
                write!(f, "{n} of its authorities still have a balance")
            }
            OrganizationInUse::Batches(n) => write!(f, "{n} of its batches are still issuing"),
        }
    }
}

const SELECT_ORGANIZATION: &str = "SELECT id, name, address, contact_name, contact_email,
        contact_phone, manufacture_id, logo, status, parameters_json, created_at, updated_at
        FROM organizations";

fn read(row: &Row<'_>) -> db::Result<(OrganizationRecord, String)> {
    Ok((
        OrganizationRecord {
            id: OrganizationId(row.get(0)?),
            details: OrganizationDetails {
                name: row.get(1)?,
                address: row.get(2)?,
                contact_name: row.get(3)?,
                contact_email: row.get(4)?,
                contact_phone: row.get(5)?,
                manufacture_id: row.get(6)?,
                logo: row.get(7)?,
                status: row.get(8)?,
                parameters: serde_json::Map::new(),
            },
            created_at: row.get(10)?,
            updated_at: row.get(11)?,
        },
        row.get(9)?,
    ))
}

fn finish(raw: (OrganizationRecord, String)) -> Result<OrganizationRecord, StoreError> {
    let (mut record, json) = raw;
    record.details.parameters = match serde_json::from_str(&json) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => {
            return Err(StoreError::CorruptRow {
                table: "organizations",
                id: record.id.to_string(),
                column: "parameters_json",
                value: json,
            })
        }
    };
    Ok(record)
}

fn parameters_json(details: &OrganizationDetails) -> String {
    serde_json::Value::Object(details.parameters.clone()).to_string()
}

impl Store {
    /// Creates an organization; [`StoreError::OrganizationNameTaken`] when an organization
    /// that is not deleted has the name (ASCII case ignored). Checked and inserted in one
    /// write transaction.
    pub fn create_organization_with(
        &self,
        details: &OrganizationDetails,
    ) -> Result<OrganizationId, StoreError> {
        const ACTION: &str = "creating an organization";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let taken = tx
            .prepare_cached(
                "SELECT 1 FROM organizations WHERE lower(name) = lower(?1) AND status <> 'DELETED'",
            )
            .and_then(|mut select| select.exists([&details.name]))
            .map_err(db(ACTION))?;
        if taken {
            return Err(StoreError::OrganizationNameTaken {
                name: details.name.clone(),
            });
        }
        let id = tx
            .prepare_cached(
                "INSERT INTO organizations (name, address, contact_name, contact_email,
                 contact_phone, manufacture_id, logo, status, parameters_json, created_at,
                 updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) RETURNING id",
            )
            .and_then(|mut insert| {
                insert.query_row(
                    params![
                        details.name,
                        details.address,
                        details.contact_name,
                        details.contact_email,
                        details.contact_phone,
                        details.manufacture_id,
                        details.logo,
                        details.status,
                        parameters_json(details),
                        now
                    ],
                    |row| row.get(0),
                )
            })
            .map(OrganizationId)
            .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))?;
        Ok(id)
    }

    /// The organization with this id, unless deleted.
    pub fn organization(
        &self,
        id: OrganizationId,
    ) -> Result<Option<OrganizationRecord>, StoreError> {
        self.connection
            .prepare_cached(&format!(
                "{SELECT_ORGANIZATION} WHERE id = ?1 AND status <> 'DELETED'"
            ))
            .and_then(|mut select| select.query_row([id.0], read).optional())
            .map_err(db("reading an organization"))?
            .map(finish)
            .transpose()
    }

    /// A page of the organizations that are not deleted, by id, matching `filter` (a compiled
    /// `filter=` over the `organizations` columns).
    pub fn organizations_page(
        &self,
        filter: &crate::filter::SqlFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<OrganizationRecord>, StoreError> {
        let mut values = filter.values.clone();
        values.push(rusqlite::types::Value::Integer(i64::from(limit)));
        values.push(rusqlite::types::Value::Integer(
            i64::try_from(offset).unwrap_or(i64::MAX),
        ));
        let sql = format!(
            "{SELECT_ORGANIZATION} WHERE status <> 'DELETED' AND {} ORDER BY id LIMIT ? OFFSET ?",
            filter.sql
        );
        let raws = self.filtered(&sql, &values, read, "listing organizations")?;
        raws.into_iter().map(finish).collect()
    }

    /// Replaces an organization's details except its name; [`StoreError::OrganizationNotFound`]
    /// for a deleted or unknown one.
    pub fn update_organization(
        &self,
        id: OrganizationId,
        details: &OrganizationDetails,
    ) -> Result<(), StoreError> {
        let now = (self.clock)();
        let changed = self
            .connection
            .prepare_cached(
                "UPDATE organizations SET address = ?2, contact_name = ?3, contact_email = ?4,
                     contact_phone = ?5, manufacture_id = ?6, logo = ?7, status = ?8,
                     parameters_json = ?9, updated_at = ?10
                 WHERE id = ?1 AND status <> 'DELETED'",
            )
            .and_then(|mut update| {
                update.execute(params![
                    id.0,
                    details.address,
                    details.contact_name,
                    details.contact_email,
                    details.contact_phone,
                    details.manufacture_id,
                    details.logo,
                    details.status,
                    parameters_json(details),
                    now
                ])
            })
            .map_err(db("updating an organization"))?;
        if changed == 0 {
            return Err(StoreError::OrganizationNotFound { organization: id });
        }
        Ok(())
    }

    /// Deletes (hides, status DELETED) an organization with no users, no authority holding a
    /// balance and no batch still issuing; [`StoreError::OrganizationInUse`] otherwise. Checked
    /// and changed in one write transaction.
    pub fn delete_organization(&self, id: OrganizationId) -> Result<(), StoreError> {
        const ACTION: &str = "deleting an organization";
        let now = (self.clock)();
        let tx = self.write_transaction(ACTION)?;
        let count = |sql: &str| -> Result<u64, StoreError> {
            tx.prepare_cached(sql)
                .and_then(|mut select| select.query_row([id.0], |row| row.get::<_, i64>(0)))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(db(ACTION))
        };
        if count("SELECT count(*) FROM organizations WHERE id = ?1 AND status <> 'DELETED'")? == 0 {
            return Err(StoreError::OrganizationNotFound { organization: id });
        }
        let users = count("SELECT count(*) FROM users WHERE organization_id = ?1")?;
        if users > 0 {
            return Err(StoreError::OrganizationInUse {
                organization: id,
                reason: OrganizationInUse::Users(users),
            });
        }
        let balances = count(
            "SELECT count(*) FROM authorities WHERE organization_id = ?1
                 AND (balance_available > 0 OR balance_reserved > 0)",
        )?;
        if balances > 0 {
            return Err(StoreError::OrganizationInUse {
                organization: id,
                reason: OrganizationInUse::Balance(balances),
            });
        }
        let issuing = count(
            "SELECT count(*) FROM batches b JOIN authorities a ON a.id = b.authority_id
             WHERE a.organization_id = ?1
               AND b.status IN ('Pending Creation', 'Pending Issue', 'Processing Reject',
                                'Processing Revoke')",
        )?;
        if issuing > 0 {
            return Err(StoreError::OrganizationInUse {
                organization: id,
                reason: OrganizationInUse::Batches(issuing),
            });
        }
        tx.prepare_cached(
            "UPDATE organizations SET status = 'DELETED', updated_at = ?2 WHERE id = ?1",
        )
        .and_then(|mut update| update.execute(params![id.0, now]))
        .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))
    }

    /// Whether an organization that is not deleted has this name (ASCII case ignored).
    pub fn organization_name_taken(&self, name: &str) -> Result<bool, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT 1 FROM organizations WHERE lower(name) = lower(?1) AND status <> 'DELETED'",
            )
            .and_then(|mut select| select.exists([name]))
            .map_err(db("looking up an organization name"))
    }

    /// The organization's batches per UTC day of their creation, oldest day first: those of
    /// its authorities, removed ones included, that are still active (not Rejected, Revoked or
    /// Broken, as `GET /api/v1/devices` counts them).
    pub fn batch_days(&self, organization: OrganizationId) -> Result<Vec<BatchDay>, StoreError> {
        const DAY: i64 = 86_400;
        let rows: Vec<(i64, i64, i64, i64, i64)> = self
            .connection
            .prepare_cached(
                "SELECT b.created_at - b.created_at % ?2 AS day, count(*), sum(b.size),
                        sum(CASE WHEN b.issued > 0 THEN 1 ELSE 0 END), sum(b.issued)
                 FROM batches b JOIN authorities a ON a.id = b.authority_id
                 WHERE a.organization_id = ?1 AND b.active = 1
                 GROUP BY day ORDER BY day",
            )
            .and_then(|mut select| {
                select
                    .query_map(params![organization.0, DAY], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    })?
                    .collect()
            })
            .map_err(db("counting an organization's batches per day"))?;
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        Ok(rows
            .into_iter()
            .map(|(day, batches, ordered, issuing, issued)| BatchDay {
                day,
                batches: count(batches),
                ordered: count(ordered),
                issuing_batches: count(issuing),
                issued: count(issued),
            })
            .collect())
    }

    /// The installation's administrators, by id, with their contact details: people (`kind`
    /// USER, never API clients) holding ADMIN or ECO_ADMIN.
    pub fn administrators(&self) -> Result<Vec<(UserRow, UserContact)>, StoreError> {
        let ids: Vec<i64> = self
            .connection
            .prepare_cached(&format!(
                "SELECT id FROM users WHERE {ADMINISTRATOR} ORDER BY id"
            ))
            .and_then(|mut select| select.query_map([], |row| row.get(0))?.collect())
            .map_err(db("listing administrators"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // Removed between the two reads: no longer an administrator.
            let Some(user) = self.user(UserId(id))? else {
                continue;
            };
            let contact = self.user_contact(user.id)?.unwrap_or_default();
            out.push((user, contact));
        }
        Ok(out)
    }

    /// Whether the user is one of [`Store::administrators`].
    pub fn is_administrator(&self, user: UserId) -> Result<bool, StoreError> {
        self.connection
            .prepare_cached(&format!(
                "SELECT 1 FROM users WHERE id = ?1 AND {ADMINISTRATOR}"
            ))
            .and_then(|mut select| select.exists([user.0]))
            .map_err(db("looking up an administrator"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, new_batch, records, T0};
    use super::super::{BatchStatus, NewUser};
    use super::*;

    #[test]
    fn batches_are_counted_per_day_of_their_creation() {
        let mut f = fixture();
        let acme = f.store.create_organization("Acme").expect("org");
        let other = f.store.create_organization("Other").expect("org");
        let authority = f
            .store
            .create_authority(acme, "iot-ecc", f.issuer, 100)
            .expect("authority");
        let elsewhere = f
            .store
            .create_authority(other, "iot-ecc", f.issuer, 100)
            .expect("authority");
        assert!(f.store.batch_days(acme).expect("none yet").is_empty());
        let issued = f
            .store
            .create_batch_for(authority, &new_batch(f.issuer, 5), None)
            .expect("batch");
        f.store
            .insert_certificates(issued, &records(1, 0..3))
            .expect("issue 3");
        f.store
            .create_batch_for(authority, &new_batch(f.issuer, 7), None)
            .expect("a batch not issued yet");
        let rejected = f
            .store
            .create_batch_for(authority, &new_batch(f.issuer, 11), None)
            .expect("batch");
        f.store
            .insert_certificates(rejected, &records(2, 0..11))
            .expect("issue");
        f.store
            .finish_batch(rejected, BatchStatus::ReadyForDownload)
            .expect("finish");
        f.store.reject_batch(rejected, "wrong lot").expect("reject");
        f.store
            .create_batch_for(elsewhere, &new_batch(f.issuer, 13), None)
            .expect("another organization's");
        assert_eq!(
            f.store.batch_days(acme).expect("days"),
            [BatchDay {
                day: T0 - T0 % 86_400,
                batches: 2,
                ordered: 12,
                issuing_batches: 1,
                issued: 3,
            }]
        );
    }

    #[test]
    fn administrators_are_people_holding_admin_or_eco_admin() {
        let f = fixture();
        let acme = f.store.create_organization("Acme").expect("org");
        let user = |name: &str, roles: &[&str]| {
            f.store
                .create_user(&NewUser {
                    username: name,
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                    organization: acme,
                    roles,
                    profiles: None,
                })
                .expect("create")
                .expect("new name")
        };
        let admin = user("admin", &["ADMIN", "USER"]);
        let eco = user("eco", &["ECO_ADMIN"]);
        let plain = user("plain", &["USER", "ORG_ADMIN"]);
        let client = user("client", &["ADMIN"]);
        f.store
            .connection
            .execute("UPDATE users SET kind = 'CLIENT' WHERE id = ?1", [client.0])
            .expect("an API client");
        f.store
            .set_user_contact(
                eco,
                &UserContact {
                    first_name: "Eve".into(),
                    email: "eve@example.com".into(),
                    ..UserContact::default()
                },
            )
            .expect("contact");
        let found = f.store.administrators().expect("list");
        assert_eq!(
            found.iter().map(|(u, _)| u.id).collect::<Vec<_>>(),
            [admin, eco]
        );
        assert_eq!(found[1].1.first_name, "Eve");
        for (id, expected) in [(admin, true), (eco, true), (plain, false), (client, false)] {
            assert_eq!(
                f.store.is_administrator(id).expect("lookup"),
                expected,
                "{id}"
            );
        }
        assert!(!f.store.is_administrator(UserId(9_999)).expect("none"));
    }
}
