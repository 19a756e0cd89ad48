//! Seed 001's EcoSystem API (ADMIN only): an ecosystem's statistics, record and balance, and the
//! installation's administrators.
//!
//! certmill has no ecosystem apart from the organization: an organization is the seed's
//! ecosystem (`ecosystemId` is its id, as `/api/v1/authorities/allowed` answers). The caller's
//! ecosystem is their organization; `?ecosystemId=` names another. Figures count the
//! organization's authorities that are not removed: `capacity` their total balances (available,
//! reserved and used), `balance` the units available on the enabled ones, `used` the units
//! spent. The administrators are the people (never API clients) holding ADMIN or ECO_ADMIN;
//! reading and changing one goes through the User API's code, with its checks.

use super::auth_api::Caller;
use super::users_api::UpdateUserRequest;
use super::{ApiError, Shared};
use crate::auth::Principal;
use crate::store::{AuthorityRow, OrganizationId, OrganizationRecord, Store, UserId};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn admin(caller: &Principal) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "ecosystems are administered by the role ADMIN",
        ))
    }
}

/// `?ecosystemId=`: an organization id; the caller's organization when absent.
#[derive(Deserialize)]
pub struct EcosystemQuery {
    #[serde(rename = "ecosystemId")]
    ecosystem_id: Option<i64>,
}

/// The ecosystem asked for with its authorities (not removed ones); 404 for an unknown or
/// deleted organization.
fn ecosystem_of(
    store: &Store,
    caller: &Principal,
    query: &EcosystemQuery,
) -> Result<(OrganizationRecord, Vec<AuthorityRow>), ApiError> {
    let id = query.ecosystem_id.unwrap_or(caller.organization_id);
    let record = store
        .organization(OrganizationId(id))?
        .ok_or_else(|| ApiError::not_found(format!("ecosystemId: no ecosystem {id}")))?;
    let authorities = store.authorities_for(record.id)?;
    Ok((record, authorities))
}

/// An ecosystem's balances: (capacity, available on enabled authorities, used).
fn totals(authorities: &[AuthorityRow]) -> (u64, u64, u64) {
    authorities
        .iter()
        .fold((0, 0, 0), |(capacity, balance, used), a| {
            (
                capacity + a.balance_available + a.balance_reserved + a.balance_used,
                balance + if a.enabled { a.balance_available } else { 0 },
                used + a.balance_used,
            )
        })
}

/// `GET /api/v1/ecosystems/statistics[?ecosystemId=]`: `{capacity, balance, used, ordered,
/// issued}`; `ordered` and `issued` have one entry per UTC day the ecosystem ordered batches
/// on (`dt` the day's start, `total` the batches, `devices` the devices ordered, or the
/// certificates issued for them), counting its active batches as `GET /api/v1/devices` does.
pub async fn statistics(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<EcosystemQuery>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let (authorities, days) = state
        .store(move |store| {
            let (record, authorities) = ecosystem_of(store, &caller, &query)?;
            Ok((authorities, store.batch_days(record.id)?))
        })
        .await?;
    let (capacity, balance, used) = totals(&authorities);
    let ordered: Vec<Value> = days
        .iter()
        .map(|d| json!({"dt": crate::batch::rfc3339(d.day), "total": d.batches, "devices": d.ordered}))
        .collect();
    let issued: Vec<Value> = days
        .iter()
        .map(|d| {
            json!({"dt": crate::batch::rfc3339(d.day), "total": d.issuing_batches, "devices": d.issued})
        })
        .collect();
    Ok(Json(json!({
        "capacity": capacity,
        "balance": balance,
        "used": used,
        "ordered": ordered,
        "issued": issued,
    })))
}

/// `GET /api/v1/ecosystems/ecosystem[?ecosystemId=]`: `{id, name, description, authorities,
/// capacity}`; `description` is the organization's address, `authorities` the profile names of
/// its authorities joined by ", ".
pub async fn ecosystem(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<EcosystemQuery>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let (record, authorities) = state
        .store(move |store| ecosystem_of(store, &caller, &query))
        .await?;
    let names: Vec<&str> = authorities
        .iter()
        .map(|a| a.profile_name.as_str())
        .collect();
    Ok(Json(json!({
        "id": record.id.0,
        "name": record.details.name,
        "description": record.details.address,
        "authorities": names.join(", "),
        "capacity": totals(&authorities).0,
    })))
}

/// `GET /api/v1/ecosystems/ecosystem/balance[?ecosystemId=]`: the units available on the
/// ecosystem's enabled authorities, a bare number.
pub async fn balance(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<EcosystemQuery>,
) -> Result<Json<u64>, ApiError> {
    admin(&caller)?;
    let (_, authorities) = state
        .store(move |store| ecosystem_of(store, &caller, &query))
        .await?;
    Ok(Json(totals(&authorities).1))
}

/// `POST /api/v1/ecosystems/users` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdministratorSearch {
    search_line: Option<String>,
}

/// Seed 001's `searchLine` rule, `^[!#$%&'*+\-/=?^_`{|}~\.\w@]{0,}$` (Java's `\w`: ASCII
/// letters, digits and `_`).
fn search_line(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.@".contains(c))
}

/// `POST /api/v1/ecosystems/users`: the administrators (ADMIN or ECO_ADMIN) whose login, names
/// or e-mail contain `searchLine` (case ignored; empty: all), in the User API's shape.
pub async fn administrators(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<AdministratorSearch>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let line = request
        .search_line
        .ok_or_else(|| ApiError::bad_request("searchLine is required (it may be empty)"))?;
    if !search_line(&line) {
        return Err(ApiError::bad_request(
            "searchLine: letters, digits and !#$%&'*+-/=?^_`{|}~.@ only",
        ));
    }
    let needle = line.to_lowercase();
    let (users, organizations) = state
        .store(|store| Ok((store.administrators()?, store.organizations()?)))
        .await?;
    let list: Vec<Value> = users
        .iter()
        .filter(|(user, contact)| {
            [
                user.username.as_str(),
                &contact.first_name,
                &contact.last_name,
                &contact.email,
            ]
            .iter()
            .any(|field| field.to_lowercase().contains(&needle))
        })
        .map(|(user, contact)| {
            let name = organizations
                .iter()
                .find(|o| o.id == user.organization)
                .map(|o| o.name.as_str());
            super::catalog::user_json(&state, user, contact, name)
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// 404 unless `id` is one of the administrators.
async fn administrator(state: &Shared, id: i64) -> Result<(), ApiError> {
    let found = state
        .store(move |store| Ok(store.is_administrator(UserId(id))?))
        .await?;
    if found {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no administrator {id} (a user holding ADMIN or ECO_ADMIN)"
        )))
    }
}

/// `GET /api/v1/ecosystems/users/{userId}`: an administrator, as `GET /api/v1/users/{userId}`
/// answers.
pub async fn read_administrator(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    administrator(&state, id).await?;
    super::users_api::get(State(state), Caller(caller), Path(id)).await
}

/// `PUT /api/v1/ecosystems/users/{userId}`: an administrator's contact details and privileges,
/// through `PUT /api/v1/users/{userId}` (same checks: seed rules per field, a unique e-mail,
/// no administrator takes ADMIN from themselves); answers the user.
pub async fn update_administrator(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
    Json(request): Json<UpdateUserRequest>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    administrator(&state, id).await?;
    super::users_api::update(State(state), Caller(caller), Path(id), Json(request)).await
}

#[cfg(test)]
mod tests {
    use super::search_line;

    #[test]
    fn search_lines_follow_the_seed() {
        for good in ["", "test@email.test", "j.smith", "a_b-c+d", "O'Neil", "50%"] {
            assert!(search_line(good), "{good}");
        }
        for bad in ["a b", "x<y", "ü", "(1)", "a,b", "tab\t"] {
            assert!(!search_line(bad), "{bad}");
        }
    }
}
