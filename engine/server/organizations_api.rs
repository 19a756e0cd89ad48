//! Seed 001's Organization API: read (ADMIN any, others their own), list, create, update,
//! delete (certmill's addition: refused while the organization has users, authorities with a
//! balance or batches still issuing), name check, select items, organization parameters, and
//! the organization's authorities: created or topped up, added from another authority's profile,
//! set, removed (only once nothing but used units is left on them) and their events.

use super::auth_api::Caller;
use super::catalog::authority_json;
use super::{ApiError, Shared};
use crate::filter::{self, Field, FieldType};
use crate::store::{
    AuthorityId, OrganizationDetails, OrganizationId, OrganizationRecord, StoreError,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// What `filter=` may name on the organization list.
const ORGANIZATION_FIELDS: &[Field] = &[
    Field {
        name: "organizationId",
        column: "id",
        kind: FieldType::Integer,
    },
    Field {
        name: "organizationName",
        column: "name",
        kind: FieldType::Text,
    },
    Field {
        name: "orgStatus",
        column: "status",
        kind: FieldType::Text,
    },
    Field {
        name: "manufactureId",
        column: "manufacture_id",
        kind: FieldType::Text,
    },
    Field {
        name: "primaryContactEmail",
        column: "contact_email",
        kind: FieldType::Text,
    },
    Field {
        name: "createdAt",
        column: "created_at",
        kind: FieldType::Timestamp,
    },
];

/// Largest page (seed 001: "Maximum value is 50").
const MAX_PAGE_SIZE: u32 = 50;

fn admin(caller: &crate::auth::Principal) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "organizations are administered by the role ADMIN",
        ))
    }
}

/// Seed 001's organization object, with its authorities.
async fn organization_json(state: &Shared, record: OrganizationRecord) -> Result<Value, ApiError> {
    let id = record.id;
    let authorities = state
        .store(move |store| Ok(store.authorities_for(id)?))
        .await?;
    let details = &record.details;
    let authorities: Vec<Value> = authorities
        .iter()
        .map(|a| authority_json(state, a, Some(&details.name)))
        .collect();
    Ok(json!({
        "organizationId": record.id.0,
        "organizationName": details.name,
        "address": details.address,
        "primaryContactName": details.contact_name,
        "primaryContactEmail": details.contact_email,
        "primaryContactPhone": details.contact_phone,
        "manufactureId": details.manufacture_id,
        "logo": details.logo,
        "authorities": authorities,
        "ecosystemId": record.id.0,
        "organizationParameters": details.parameters,
        "orgStatus": details.status,
    }))
}

/// `GET /api/v1/organizations/{organizationId}`: ADMIN reads any organization, everyone else
/// their own; another is 404, as one that does not exist.
pub async fn get(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    if !caller.is_admin() && id != caller.organization_id {
        return Err(ApiError::not_found(format!("no organization {id}")));
    }
    read(&state, id).await
}

/// `GET /api/v1/organizations/user`: the caller's organization.
pub async fn mine(
    State(state): State<Shared>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    read(&state, caller.organization_id).await
}

async fn read(state: &Shared, id: i64) -> Result<Json<Value>, ApiError> {
    let record = state
        .store(move |store| Ok(store.organization(OrganizationId(id))?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no organization {id}")))?;
    Ok(Json(organization_json(state, record).await?))
}

/// `page` (from 0), `size` (1 to 50, default 50) and `filter`.
#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<u64>,
    size: Option<u32>,
    filter: Option<String>,
}

/// `GET /api/v1/organizations?page=&size=&filter=` (ADMIN).
pub async fn list(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let size = query.size.unwrap_or(MAX_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(ApiError::bad_request(format!("size: 1 to {MAX_PAGE_SIZE}")));
    }
    let offset = query.page.unwrap_or(0).saturating_mul(u64::from(size));
    let filter = filter::compile(query.filter.as_deref().unwrap_or(""), ORGANIZATION_FIELDS)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let records = state
        .store(move |store| Ok(store.organizations_page(&filter, size, offset)?))
        .await?;
    let mut list = Vec::with_capacity(records.len());
    for record in records {
        list.push(organization_json(&state, record).await?);
    }
    Ok(Json(Value::Array(list)))
}

/// `GET /api/v1/organizations/select/items` (ADMIN): `[{id, name}]`.
pub async fn select_items(
    State(state): State<Shared>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let organizations = state.store(|store| Ok(store.organizations()?)).await?;
    Ok(Json(Value::Array(
        organizations
            .iter()
            .map(|o| json!({"id": o.id.0, "name": o.name}))
            .collect(),
    )))
}

/// `?name=` of check_organization.
#[derive(Deserialize)]
pub struct NameQuery {
    name: String,
}

/// `GET /api/v1/organizations/check_organization?name=` (ADMIN): `true` when an organization
/// has the name.
pub async fn check(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<NameQuery>,
) -> Result<Json<bool>, ApiError> {
    admin(&caller)?;
    let taken = state
        .store(move |store| Ok(store.organization_name_taken(&query.name)?))
        .await?;
    Ok(Json(taken))
}

/// The body of create and update (seed 001 "Create Organization" / "Update Organization").
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrganizationRequest {
    organization_id: Option<i64>,
    organization_name: Option<String>,
    address: Option<String>,
    primary_contact_name: Option<String>,
    primary_contact_email: Option<String>,
    primary_contact_phone: Option<String>,
    manufacture_id: Option<String>,
    logo: Option<String>,
    org_status: Option<String>,
    organization_parameters: Option<serde_json::Map<String, Value>>,
}

/// A required text field: trimmed, not empty, at most `max` characters.
fn required(field: &str, value: Option<&str>, max: usize) -> Result<String, ApiError> {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("{field}: must not be empty")));
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{field}: at most {max} characters, no control characters"
        )));
    }
    Ok(value.to_owned())
}

/// Seed 001's phone rule: `^\+?\d*(\s|-)?((\(\d+\))?|\d+)(\s|-)?\d+(\s|-)?\d+(\s|-)?\d+$`, checked
/// as: an optional `+`, then digits in groups separated by one space or hyphen, one group
/// optionally in parentheses, at least three groups of digits after the first separator.
pub(super) fn phone(value: &str) -> bool {
    let rest = value.strip_prefix('+').unwrap_or(value);
    let groups: Vec<&str> = rest.split([' ', '-']).collect();
    let digits = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    let parenthesized = |g: &str| {
        g.strip_prefix('(')
            .and_then(|g| g.strip_suffix(')'))
            .is_some_and(digits)
    };
    groups.len() >= 3
        && groups.len() <= 5
        && groups.iter().all(|g| digits(g) || parenthesized(g))
        && groups.iter().filter(|g| parenthesized(g)).count() <= 1
}

pub(super) fn email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    (5..=254).contains(&value.len())
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.contains(char::is_whitespace)
        && !domain.contains('@')
}

fn details(request: &OrganizationRequest, name: String) -> Result<OrganizationDetails, ApiError> {
    let contact_email = required(
        "primaryContactEmail",
        request.primary_contact_email.as_deref(),
        254,
    )?;
    if !email(&contact_email) {
        return Err(ApiError::bad_request(
            "primaryContactEmail: must be a well-formed email address",
        ));
    }
    let contact_phone = required(
        "primaryContactPhone",
        request.primary_contact_phone.as_deref(),
        64,
    )?;
    if !phone(&contact_phone) {
        return Err(ApiError::bad_request(
            "primaryContactPhone: digits in groups, such as +38 012 345 6789",
        ));
    }
    let status = request
        .org_status
        .clone()
        .unwrap_or_else(|| "ACTIVE".to_owned());
    if status != "ACTIVE" && status != "INACTIVE" {
        return Err(ApiError::bad_request("orgStatus: ACTIVE or INACTIVE"));
    }
    let parameters = request.organization_parameters.clone().unwrap_or_default();
    for (key, value) in &parameters {
        if !value.is_string() {
            return Err(ApiError::bad_request(format!(
                "organizationParameters.{key}: must be a string"
            )));
        }
    }
    Ok(OrganizationDetails {
        name,
        address: required("address", request.address.as_deref(), 255)?,
        contact_name: required(
            "primaryContactName",
            request.primary_contact_name.as_deref(),
            255,
        )?,
        contact_email,
        contact_phone,
        manufacture_id: request.manufacture_id.clone().unwrap_or_default(),
        logo: request.logo.clone().unwrap_or_default(),
        status,
        parameters,
    })
}

/// `POST /api/v1/organizations` (ADMIN): the new organization's id (a bare number).
pub async fn create(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<OrganizationRequest>,
) -> Result<Json<i64>, ApiError> {
    admin(&caller)?;
    let name = required(
        "organizationName",
        request.organization_name.as_deref(),
        255,
    )?;
    let details = details(&request, name)?;
    let id = state
        .store(move |store| Ok(store.create_organization_with(&details)?))
        .await?;
    Ok(Json(id.0))
}

/// `PUT /api/v1/organizations` (ADMIN): replaces the details of `organizationId` (the name
/// stays).
pub async fn update(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<OrganizationRequest>,
) -> Result<StatusCode, ApiError> {
    admin(&caller)?;
    let id = request
        .organization_id
        .ok_or_else(|| ApiError::bad_request("organizationId is required"))?;
    let current = state
        .store(move |store| Ok(store.organization(OrganizationId(id))?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no organization {id}")))?;
    if let Some(name) = &request.organization_name {
        if *name != current.details.name {
            return Err(ApiError::bad_request(
                "organizationName: an organization keeps its name",
            ));
        }
    }
    let details = details(&request, current.details.name)?;
    state
        .store(move |store| Ok(store.update_organization(OrganizationId(id), &details)?))
        .await?;
    Ok(StatusCode::OK)
}

/// `DELETE /api/v1/organizations/{organizationId}` (ADMIN): 204, or 409 while it has users,
/// authorities with a balance or batches still issuing.
pub async fn delete(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    admin(&caller)?;
    state
        .store(move |store| Ok(store.delete_organization(OrganizationId(id))?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/organizations/{organizationId}/all_authorities` (ADMIN).
pub async fn authorities(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let record = state
        .store(move |store| Ok(store.organization(OrganizationId(id))?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no organization {id}")))?;
    let organization = organization_json(&state, record).await?;
    Ok(Json(organization["authorities"].clone()))
}

/// An authority with its totals (seed 001's "Update Organization Authority" answer plus the
/// authority object's fields).
fn authority_totals(
    state: &Shared,
    a: &crate::store::AuthorityRow,
    organization: &str,
    all: &[crate::store::AuthorityRow],
) -> Value {
    let total =
        |a: &crate::store::AuthorityRow| a.balance_available + a.balance_reserved + a.balance_used;
    let mut out = authority_json(state, a, Some(organization));
    out["balance"] = json!(total(a));
    out["availableBalance"] = json!(a.balance_available);
    out["reservedBalance"] = json!(a.balance_reserved);
    out["usedBalance"] = json!(a.balance_used);
    out["enabled"] = json!(a.enabled);
    out["totalEcosystemBalance"] = json!(all.iter().map(total).sum::<u64>());
    out
}

/// `POST /api/v1/organizations/{organizationId}/authority` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorityRequest {
    profile_id: Option<u64>,
    profile_name: Option<String>,
    balance: Option<u64>,
    added_balance: Option<u64>,
}

/// `POST /api/v1/organizations/{organizationId}/authority` (ADMIN): the organization's
/// authority for the profile (`profileId` or `profileName`): created with `balance` (default 0)
/// and signed by the current signer of the profile's issuer, or, when it exists, topped up by
/// `addedBalance`. Answers the authority with its totals.
pub async fn upsert_authority(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
    Json(request): Json<AuthorityRequest>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let served = match (request.profile_id, request.profile_name.as_deref()) {
        (Some(profile_id), _) => state
            .profiles
            .iter()
            .find(|p| p.id == profile_id)
            .ok_or_else(|| {
                ApiError::bad_request(format!("profileId {profile_id}: no such profile"))
            })?,
        (None, Some(name)) => state.profile_named(name).ok_or_else(|| {
            ApiError::bad_request(format!("profileName {name:?}: no such profile"))
        })?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "profileId or profileName is required",
            ))
        }
    };
    let present = WhenPresent::TopUp(request.added_balance);
    ensure_authority(
        &state,
        &caller,
        id,
        served,
        request.balance.unwrap_or(0),
        present,
    )
    .await
}

/// What [`ensure_authority`] does when the organization already has an authority for the
/// profile.
enum WhenPresent {
    /// Top it up by `addedBalance` (409 without).
    TopUp(Option<u64>),
    /// Answer it as it is.
    Keep,
}

/// The organization's authority for `served`'s profile: created with `balance` units and signed
/// by the current signer of the profile's issuer, or the existing one handled as `present`
/// says. Answers the authority with its totals.
async fn ensure_authority(
    state: &Shared,
    caller: &crate::auth::Principal,
    id: i64,
    served: &super::ServedProfile,
    balance: u64,
    present: WhenPresent,
) -> Result<Json<Value>, ApiError> {
    let profile_name = served.profile.name().to_owned();
    let signer = state.signer_for(&served.profile)?;
    let actor = super::revocation_api::actor(caller);
    let organization = OrganizationId(id);
    let (record, authorities) = state
        .store(move |store| {
            let record = store
                .organization(organization)?
                .ok_or_else(|| ApiError::not_found(format!("no organization {id}")))?;
            let existing = store
                .authorities_for(organization)?
                .into_iter()
                .find(|a| a.profile_name == profile_name);
            match (existing, present) {
                (Some(authority), WhenPresent::TopUp(added)) => {
                    let added = added.ok_or_else(|| {
                        ApiError::conflict(format!(
                            "organization {id} already has authority {} for {profile_name}; \
                             give addedBalance to top it up",
                            authority.id.0
                        ))
                    })?;
                    store.top_up_authority(authority.id, organization, added, &actor)?;
                }
                (Some(_), WhenPresent::Keep) => {}
                (None, present) => {
                    match store.admin_create_authority(
                        organization,
                        &profile_name,
                        signer.issuer(),
                        balance,
                        &actor,
                    ) {
                        Ok(_) => {}
                        // Another request created it meanwhile: it is there, as asked.
                        Err(StoreError::AuthorityExists { .. })
                            if matches!(present, WhenPresent::Keep) => {}
                        Err(refused) => return Err(refused.into()),
                    }
                }
            }
            Ok((record, store.authorities_for(organization)?))
        })
        .await?;
    let name = served.profile.name();
    let authority = authorities
        .iter()
        .find(|a| a.profile_name == name)
        .ok_or_else(|| ApiError::internal("the authority just written is missing"))?;
    Ok(Json(authority_totals(
        state,
        authority,
        &record.details.name,
        &authorities,
    )))
}

/// `PUT /api/v1/organizations/{organizationId}/authority/{authorityId}` (ADMIN), seed 001 "Add
/// Organization Authorities": gives the organization an authority for the profile of authority
/// `authorityId` (any organization's, also one removed), created with a balance of 0 and signed
/// by the current signer of the profile's issuer; when it has one already, that one (the call
/// is idempotent). Answers the authority with its totals, as `POST .../authority` does.
pub async fn add_authority(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((id, authority)): Path<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let template = state
        .store(move |store| Ok(store.authority(AuthorityId(authority))?))
        .await?;
    let served = state.profile_named(&template.profile_name).ok_or_else(|| {
        ApiError::conflict(format!(
            "authority {authority} is for profile {}, which this server does not serve",
            template.profile_name
        ))
    })?;
    ensure_authority(&state, &caller, id, served, 0, WhenPresent::Keep).await
}

/// `DELETE /api/v1/organizations/{organizationId}/authority/{authorityId}` (ADMIN), seed 001
/// "Remove Organization Authorities": 200 once removed (`deleted_at`, a `DELETED` event); 409
/// while it has units available or reserved (set its balance to what is used first) or
/// batches in progress. Its batches and events keep their records.
pub async fn remove_authority(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((id, authority)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    admin(&caller)?;
    let actor = super::revocation_api::actor(&caller);
    let organization = OrganizationId(id);
    state
        .store(move |store| {
            store
                .organization(organization)?
                .ok_or_else(|| ApiError::not_found(format!("no organization {id}")))?;
            store.delete_authority(AuthorityId(authority), organization, &actor)?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::OK)
}

/// `GET /api/v1/organizations/profile_parameters/{organizationId}` (ADMIN), seed 001 "Get
/// Organization Parameters": the organization's `organizationParameters`, with `ORGANIZATION`
/// (its name) and `MANUFACTURER_ID` (its `manufactureId`, when set) filled in where the
/// parameters do not give them.
pub async fn profile_parameters(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let record = state
        .store(move |store| Ok(store.organization(OrganizationId(id))?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no organization {id}")))?;
    let details = record.details;
    let mut parameters = details.parameters;
    parameters
        .entry("ORGANIZATION")
        .or_insert_with(|| Value::String(details.name));
    if !details.manufacture_id.is_empty() {
        parameters
            .entry("MANUFACTURER_ID")
            .or_insert_with(|| Value::String(details.manufacture_id));
    }
    Ok(Json(Value::Object(parameters)))
}

/// `PUT /api/v1/organizations/{organizationId}/authorities/{authorityId}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAuthorityRequest {
    balance: Option<u64>,
    enabled: Option<bool>,
}

/// `PUT /api/v1/organizations/{organizationId}/authorities/{authorityId}` (ADMIN): sets the
/// total `balance` (409 below what is used and reserved) and/or `enabled` (a disabled
/// authority orders no batch).
pub async fn set_authority(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((id, authority)): Path<(i64, i64)>,
    Json(request): Json<SetAuthorityRequest>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let actor = super::revocation_api::actor(&caller);
    let organization = OrganizationId(id);
    let (record, row, all) = state
        .store(move |store| {
            let record = store
                .organization(organization)?
                .ok_or_else(|| ApiError::not_found(format!("no organization {id}")))?;
            let row = store.set_authority(
                crate::store::AuthorityId(authority),
                organization,
                request.balance,
                request.enabled,
                &actor,
            )?;
            Ok((record, row, store.authorities_for(organization)?))
        })
        .await?;
    Ok(Json(authority_totals(
        &state,
        &row,
        &record.details.name,
        &all,
    )))
}

/// `GET /api/v1/organizations/{organizationId}/authorities/{authorityId}/events` (ADMIN): what
/// administrators did to the authority.
pub async fn authority_events(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((id, authority)): Path<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let events = state
        .store(move |store| {
            let row = store.authority(crate::store::AuthorityId(authority))?;
            if row.organization.0 != id {
                return Err(ApiError::not_found(format!("no authority {authority}")));
            }
            Ok(store.authority_events(row.id)?)
        })
        .await?;
    Ok(Json(Value::Array(
        events
            .iter()
            .map(|e| super::signers_api::event_json(e.time, &e.actor, &e.kind, &e.message))
            .collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::{email, phone};

    #[test]
    fn phone_numbers_follow_the_seed() {
        for good in [
            "+38 012 345 6789",
            "012-345-6789",
            "+1 (555) 123 4567",
            "1 2 3",
        ] {
            assert!(phone(good), "{good}");
        }
        for bad in [
            "",
            "12",
            "+38 012",
            "abc def ghi",
            "1  2 3",
            "(1) (2) 3",
            "1 2 3 4 5 6",
        ] {
            assert!(!phone(bad), "{bad}");
        }
    }

    #[test]
    fn e_mail_addresses_are_checked() {
        for good in ["j.smith@example.com", "a@b.co"] {
            assert!(email(good), "{good}");
        }
        for bad in [
            "",
            "a@b",
            "@example.com",
            "a b@example.com",
            "a@.com",
            "a@b.com.",
            "a@@b.com",
        ] {
            assert!(!email(bad), "{bad}");
        }
    }
}
