//! Organizations as seed 001's administration API keeps them: name, address, primary contact,
//! manufacturer id, logo, status and organization parameters; created, listed, updated and
//! deleted (hidden, status DELETED) only while nothing depends on them.

use rusqlite::{params, OptionalExtension, Row};

use super::{db, OrganizationId, Store, StoreError};

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

fn read(row: &Row<'_>) -> rusqlite::Result<(OrganizationRecord, String)> {
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
                "SELECT 1 FROM organizations WHERE name = ?1 COLLATE NOCASE AND status <> 'DELETED'",
            )
            .and_then(|mut select| select.exists([&details.name]))
            .map_err(db(ACTION))?;
        if taken {
            return Err(StoreError::OrganizationNameTaken {
                name: details.name.clone(),
            });
        }
        tx.prepare_cached(
            "INSERT INTO organizations (name, address, contact_name, contact_email,
                 contact_phone, manufacture_id, logo, status, parameters_json, created_at,
                 updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
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
            ])
        })
        .map_err(db(ACTION))?;
        let id = OrganizationId(tx.last_insert_rowid());
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
        let raws = self
            .connection
            .prepare(&sql)
            .and_then(|mut select| {
                select
                    .query_map(rusqlite::params_from_iter(values.iter()), read)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("listing organizations"))?;
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
                "SELECT 1 FROM organizations WHERE name = ?1 COLLATE NOCASE AND status <> 'DELETED'",
            )
            .and_then(|mut select| select.exists([name]))
            .map_err(db("looking up an organization name"))
    }
}
