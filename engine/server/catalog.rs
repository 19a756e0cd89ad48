//! Read-mostly endpoints: profiles, generators, authorities and balances, certificate search,
//! device counts, the current user.

use super::auth_api::Caller;
use super::{ApiError, Shared};
use crate::auth::Principal;
use crate::generator::GeneratorKind;
use crate::store::{AuthorityId, AuthorityRow, OrganizationId, Store, UserId};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `GET /api/v1/profiles`.
pub async fn profiles(State(state): State<Shared>, Caller(caller): Caller) -> Json<Value> {
    let list: Vec<Value> = state
        .profiles
        .iter()
        .filter(|p| caller.may_use_profile(p.profile.name()))
        .map(profile_summary)
        .collect();
    Json(Value::Array(list))
}

/// A profile as `GET /api/v1/profiles` lists it.
fn profile_summary(p: &super::ServedProfile) -> Value {
    json!({
        "profileId": p.id,
        "algorithms": [p.profile.key_algorithm().syntax()],
        "ca": p.profile.name(),
        // certmill: the issuer whose current signer signs this profile.
        "issuer": p.profile.issuer_name(),
    })
}

/// `?authorityId=` of the user's profiles.
#[derive(Deserialize)]
pub struct AuthorityQuery {
    #[serde(rename = "authorityId")]
    authority_id: i64,
}

/// `GET /api/v1/users/profiles?authorityId=` (ADMIN or USER), seed 001 "Get User allowed
/// Profiles": the profile of the authority, as `GET /api/v1/profiles` lists it, when the caller
/// may order with the authority (their organization's, or any for ADMIN, not removed) and use
/// its profile; 404 otherwise.
pub async fn user_profiles(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<AuthorityQuery>,
) -> Result<Json<Value>, ApiError> {
    if !caller.is_admin() && !caller.has_role(crate::auth::Role::User) {
        return Err(ApiError::forbidden("this needs the role ADMIN or USER"));
    }
    let id = query.authority_id;
    let who = caller.clone();
    let authority = state
        .store(move |store| visible_authority(store, &who, id))
        .await?;
    state
        .profile_named(&authority.profile_name)
        .filter(|p| caller.may_use_profile(p.profile.name()))
        .map(|p| Json(profile_summary(p)))
        .ok_or_else(|| ApiError::not_found(format!("no profile of authority {id} for you")))
}

/// `GET /api/v1/profiles/organization_parameters` (ADMIN), seed 001 "Get Organization Profile
/// Parameters": the parameters an organization may fix for its batches, as
/// `organizationParameters`, `[{name, type, pattern, message}]`: the batch-wide (BATCH scope)
/// parameters of the served profiles, once per name, without the PKCS#12 password (a secret,
/// never stored).
pub async fn organization_parameters(
    State(state): State<Shared>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden(
            "organization parameters are administered by the role ADMIN",
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut list = Vec::new();
    for served in &state.profiles {
        let password = served
            .profile
            .password_parameter()
            .unwrap_or("pkcs12Password");
        for parameter in served.profile.parameters() {
            if !parameter.scopes.iter().any(|s| s == "BATCH")
                || parameter.name == password
                || seen.contains(&parameter.name)
            {
                continue;
            }
            list.push(json!({
                "name": parameter.name,
                "type": parameter.input_type,
                "pattern": parameter.validation_pattern,
                "message": parameter.message,
            }));
            seen.push(parameter.name);
        }
    }
    Ok(Json(Value::Array(list)))
}

/// `GET /api/v1/profiles/{profileId}`.
pub async fn profile(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = state.profile(&key, &caller)?;
    Ok(Json(json!({
        "profileName": p.profile.name(),
        "profileId": p.id,
        "rawProfileConfig": p.profile.raw_json(),
        "name": p.profile.name(),
        "keyAlgorithmInfo": p.profile.key_algorithm().syntax(),
    })))
}

/// `GET /api/v1/profiles/{profileId}/parameters`.
pub async fn parameters(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = state.profile(&key, &caller)?;
    serde_json::to_value(p.profile.parameters())
        .map(Json)
        .map_err(ApiError::internal)
}

/// `GET /api/v1/profiles/{profileId}/dn`: each subject attribute with its default value, or
/// `<source list>` when the value comes from the request.
pub async fn dn(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = state.profile(&key, &caller)?;
    let mut map = serde_json::Map::new();
    for (name, value) in p.profile.subject_template() {
        map.insert(name, Value::String(value));
    }
    Ok(Json(Value::Object(map)))
}

/// The caller's organization's authority for `profile`, if any.
pub(super) fn authority_for(
    store: &Store,
    organization: OrganizationId,
    profile: &str,
) -> Result<Option<AuthorityRow>, ApiError> {
    Ok(store
        .authorities_for(organization)?
        .into_iter()
        .find(|a| a.profile_name == profile))
}

/// `GET /api/v1/profiles/{profileId}/balance`: a bare number.
pub async fn profile_balance(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(key): Path<String>,
) -> Result<Json<u64>, ApiError> {
    let name = state.profile(&key, &caller)?.profile.name().to_owned();
    let organization = OrganizationId(caller.organization_id);
    let balance = state
        .store(move |store| {
            Ok(authority_for(store, organization, &name)?.map_or(0, |a| a.balance_available))
        })
        .await?;
    Ok(Json(balance))
}

/// `GET /api/v1/generators?profileId=`.
pub async fn generators(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if let Some(key) = query.get("profileId") {
        let p = state.profile(key, &caller)?;
        if !p.profile.allows_server_keys() && !p.profile.allows_csr_keys() {
            return Ok(Json(json!([])));
        }
    }
    let list: Vec<_> = GeneratorKind::ALL
        .into_iter()
        .map(GeneratorKind::info)
        .collect();
    serde_json::to_value(list)
        .map(Json)
        .map_err(ApiError::internal)
}

/// An authority the caller may see: its organization's, or any for an admin; 404 otherwise,
/// and for one removed from its organization (it has no balance and orders nothing).
pub(super) fn visible_authority(
    store: &Store,
    caller: &Principal,
    id: i64,
) -> Result<AuthorityRow, ApiError> {
    let missing = || ApiError::not_found(format!("no authority {id}"));
    let authority = store.authority(AuthorityId(id)).map_err(|e| match e {
        crate::store::StoreError::AuthorityNotFound { .. } => missing(),
        other => other.into(),
    })?;
    if !caller.is_admin() && authority.organization.0 != caller.organization_id {
        return Err(missing());
    }
    if authority.deleted_at.is_some() {
        return Err(ApiError::not_found(format!(
            "authority {id} was removed from its organization"
        )));
    }
    Ok(authority)
}

/// `GET /api/v1/authorities/allowed`.
pub async fn allowed(
    State(state): State<Shared>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    let organization = OrganizationId(caller.organization_id);
    let (authorities, organizations) = state
        .store(move |store| Ok((store.authorities_for(organization)?, store.organizations()?)))
        .await?;
    let list: Vec<Value> = authorities
        .into_iter()
        .filter(|a| caller.may_use_profile(&a.profile_name))
        .map(|a| {
            let name = organizations
                .iter()
                .find(|o| o.id == a.organization)
                .map(|o| o.name.as_str());
            authority_json(&state, &a, name)
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// Seed 001's authority object (`Authorities API`).
pub(super) fn authority_json(
    state: &super::AppState,
    a: &AuthorityRow,
    organization_name: Option<&str>,
) -> Value {
    json!({
        "id": a.id.0,
        "ecosystemId": a.organization.0,
        "signerCertificateId": a.issuer.0,
        "ecosystemName": organization_name,
        "balance": a.balance_available,
        "enabled": true,
        "profileId": state.profile_named(&a.profile_name).map(|p| p.id),
        "profileName": a.profile_name,
    })
}

/// `?userId=` of balanceused.
#[derive(Deserialize)]
pub struct UserQuery {
    #[serde(rename = "userId")]
    user_id: Option<i64>,
}

/// `GET /api/v1/authorities/{authorityId}/balanceused/{organizationId}[?userId=]`.
pub async fn balance_used(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((authority, organization)): Path<(i64, i64)>,
    Query(query): Query<UserQuery>,
) -> Result<Json<u64>, ApiError> {
    let used = state
        .store(move |store| {
            let a = visible_authority(store, &caller, authority)?;
            if a.organization.0 != organization {
                return Err(ApiError::not_found(format!(
                    "authority {authority} does not belong to organization {organization}"
                )));
            }
            match query.user_id {
                Some(user) => Ok(store.balance_used_by_user(a.id, user)?),
                None => Ok(a.balance_used),
            }
        })
        .await?;
    Ok(Json(used))
}

/// `GET /api/v1/authorities/{authorityId}/balanceavailable/{organizationId}`.
pub async fn balance_available_for(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((authority, organization)): Path<(i64, i64)>,
) -> Result<Json<u64>, ApiError> {
    let available = state
        .store(move |store| {
            let a = visible_authority(store, &caller, authority)?;
            if a.organization.0 != organization {
                return Err(ApiError::not_found(format!(
                    "authority {authority} does not belong to organization {organization}"
                )));
            }
            Ok(a.balance_available)
        })
        .await?;
    Ok(Json(available))
}

/// `GET /api/v1/authorities/{authorityId}/balanceavailable`.
pub async fn balance_available(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(authority): Path<i64>,
) -> Result<Json<u64>, ApiError> {
    let available = state
        .store(move |store| Ok(visible_authority(store, &caller, authority)?.balance_available))
        .await?;
    Ok(Json(available))
}

/// `POST /api/v1/certificates/find` body.
#[derive(Deserialize)]
pub struct FindRequest {
    #[serde(rename = "commonName", default)]
    common_name: Option<String>,
    #[serde(rename = "serialNumber", default)]
    serial_number: Option<String>,
}

/// `POST /api/v1/certificates/find`: certificates of batches the caller may read.
pub async fn find_certificates(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<FindRequest>,
) -> Result<Json<Value>, ApiError> {
    let common_name = request.common_name.filter(|s| !s.is_empty());
    let serial = request.serial_number.filter(|s| !s.is_empty());
    if common_name.is_none() && serial.is_none() {
        return Err(ApiError::bad_request(
            "give commonName, serialNumber or both",
        ));
    }
    let items = state
        .store(move |store| {
            let found = store.find_certificates(common_name.as_deref(), serial.as_deref())?;
            let mut items = Vec::new();
            for certificate in found {
                if super::batches::readable(store, &caller, certificate.batch_id.0).is_err() {
                    continue;
                }
                items.push(json!({
                    "deviceId": certificate.device_id,
                    "commonName": certificate.common_name,
                    "serialNumber": certificate.serial_hex.to_ascii_uppercase(),
                    "creationDate": crate::batch::rfc3339(certificate.not_before),
                    "status": certificate.status.as_str(),
                }));
            }
            Ok(items)
        })
        .await?;
    Ok(Json(json!({ "totalCount": items.len(), "items": items })))
}

/// `GET /api/v1/devices`: devices ordered (batch sizes) and issued, over the batches the
/// caller may read that are not rejected.
pub async fn devices(
    State(state): State<Shared>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    let (ordered, issued) = state
        .store(move |store| {
            let mut totals = (0u64, 0u64);
            for batch in super::batches::visible_batches(store, &caller)? {
                if batch.active {
                    totals.0 += batch.size;
                    totals.1 += batch.issued;
                }
            }
            Ok(totals)
        })
        .await?;
    Ok(Json(json!({ "ordered": ordered, "issued": issued })))
}

/// `GET /api/v1/users`: the current user in the seed's shape.
pub async fn current_user(
    State(state): State<Shared>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    let id = caller.user_id;
    let (user, contact, organization_name) = state
        .store(move |store| {
            let user = store
                .user(UserId(id))?
                .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
            let contact = store.user_contact(user.id)?.unwrap_or_default();
            let name = store
                .organizations()?
                .into_iter()
                .find(|o| o.id == user.organization)
                .map(|o| o.name);
            Ok((user, contact, name))
        })
        .await?;
    Ok(Json(user_json(
        &state,
        &user,
        &contact,
        organization_name.as_deref(),
    )))
}

/// Seed 001's user object: contact details, login, organization and one privilege per role
/// with the profiles the user may use (`accessibleProfiles`, profile ids).
pub(super) fn user_json(
    state: &super::AppState,
    user: &crate::store::UserRow,
    contact: &crate::store::UserContact,
    organization_name: Option<&str>,
) -> Value {
    let organization = user.organization.0;
    let accessible: Vec<u64> = state
        .profiles
        .iter()
        .filter(|p| {
            user.profiles
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == p.profile.name()))
        })
        .map(|p| p.id)
        .collect();
    let privileges: Vec<Value> = user
        .roles
        .iter()
        .enumerate()
        .map(|(i, role)| {
            json!({
                "id": i + 1,
                "userRole": role,
                "ecosystemId": organization,
                "organizationId": organization,
                "accessibleProfiles": accessible,
            })
        })
        .collect();
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    json!({
        "userId": user.id.0,
        "firstName": text(&contact.first_name),
        "lastName": text(&contact.last_name),
        "phone": text(&contact.phone),
        "email": text(&contact.email),
        "organizationId": organization,
        "organizationName": organization_name,
        "credentials": { "login": user.username },
        "userPrivileges": privileges,
        "ecosystemId": organization,
        "isAdmin": user.roles.iter().any(|r| r == "ADMIN"),
        "active": user.active,
    })
}
