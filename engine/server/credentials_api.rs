//! Seed 002's credential management as `/api/v1/credentials`: API clients for factory
//! stations. A client acts for one organization and the profiles it is given (its authorities
//! are that organization's authorities for those profiles), gets tokens from `POST /auth/token`
//! with its id and secret, and may do what a `USER` may do there, nothing else.
//!
//! ADMIN administers every client; ORG_ADMIN and ECO_ADMIN those of their own organization
//! (another organization's client is 404). The secret is shown once, in the answer to create
//! and reset; the store keeps its argon2id hash.

use super::auth_api::Caller;
use super::{ApiError, AppState, Shared};
use crate::auth::{Principal, Role};
use crate::filter;
use crate::store::{ClientRow, NewClient, OrganizationId, CLIENT_FIELDS};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Longest `credentialName`, in characters.
const MAX_NAME_CHARS: usize = 100;

/// Which organizations' clients the caller administers: `None` for all (ADMIN), its own for
/// ORG_ADMIN and ECO_ADMIN; 403 for anyone else and for API clients themselves.
fn scope(caller: &Principal) -> Result<Option<OrganizationId>, ApiError> {
    if caller.client.is_some() {
        return Err(ApiError::forbidden(
            "an API client cannot administer API clients",
        ));
    }
    if caller.is_admin() {
        Ok(None)
    } else if caller.has_role(Role::OrgAdmin) || caller.has_role(Role::EcoAdmin) {
        Ok(Some(OrganizationId(caller.organization_id)))
    } else {
        Err(ApiError::forbidden(
            "API clients are administered by ADMIN, or by ORG_ADMIN and ECO_ADMIN for their organization",
        ))
    }
}

/// The client `client_id` if the caller's scope covers it; 404 otherwise.
fn visible(
    store: &crate::store::Store,
    scope: Option<OrganizationId>,
    client_id: &str,
) -> Result<ClientRow, ApiError> {
    store
        .client(client_id)?
        .filter(|row| scope.is_none_or(|org| org == row.organization))
        .ok_or_else(|| ApiError::not_found(format!("no API client {client_id}")))
}

/// The seed's credential object (without the secret).
fn credential(state: &AppState, row: &ClientRow, organization_name: &str) -> Value {
    let profiles: Option<Vec<u64>> = row.profiles.as_ref().map(|names| {
        state
            .profiles
            .iter()
            .filter(|p| names.iter().any(|n| n == p.profile.name()))
            .map(|p| p.id)
            .collect()
    });
    json!({
        "id": row.client_id,
        "clientId": row.client_id,
        "userId": row.id.0,
        "credentialName": row.name,
        "type": "credentials",
        "generation": row.generation,
        "createdAt": crate::batch::rfc3339(row.created_at),
        "updatedAt": crate::batch::rfc3339(row.updated_at),
        "organizationId": row.organization.0,
        "associatedTenant": {
            "resourceUri": format!("/api/v1/organizations/{}", row.organization.0),
            "tenantName": organization_name,
        },
        "accessibleProfiles": profiles,
        "locked": row.locked,
    })
}

/// The name of a live organization; 404 for an unknown or deleted one.
fn organization_name(
    store: &crate::store::Store,
    organization: OrganizationId,
) -> Result<String, ApiError> {
    store
        .organizations()?
        .into_iter()
        .find(|o| o.id == organization)
        .map(|o| o.name)
        .ok_or_else(|| ApiError::not_found(format!("no organization {}", organization.0)))
}

/// Profile names from `accessibleProfiles` (profile ids): `null` or absent means all.
fn profile_names(state: &AppState, value: &Value) -> Result<Option<Vec<String>>, ApiError> {
    let ids = match value {
        Value::Null => return Ok(None),
        Value::Array(ids) => ids,
        _ => {
            return Err(ApiError::bad_request(
                "accessibleProfiles: a list of profile ids, or null for all",
            ))
        }
    };
    let mut names = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let served = id
            .as_u64()
            .and_then(|id| state.profiles.iter().find(|p| p.id == id))
            .ok_or_else(|| {
                ApiError::bad_request(format!("accessibleProfiles[{i}]: no profile {id}"))
            })?;
        let name = served.profile.name().to_owned();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "accessibleProfiles: at least one profile id, or null for all",
        ));
    }
    Ok(Some(names))
}

fn checked_name(name: Option<&str>) -> Result<String, ApiError> {
    let name = name.unwrap_or_default().trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.contains(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "credentialName: 1 to {MAX_NAME_CHARS} characters, no control characters"
        )));
    }
    Ok(name.to_owned())
}

/// `POST /api/v1/credentials` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    credential_name: Option<String>,
    organization_id: Option<i64>,
    #[serde(default)]
    accessible_profiles: Value,
}

/// `POST /api/v1/credentials`: a new client with its secret, shown this once.
pub async fn create(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<CreateRequest>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&caller)?;
    let name = checked_name(request.credential_name.as_deref())?;
    let organization = OrganizationId(request.organization_id.unwrap_or(caller.organization_id));
    if scope.is_some_and(|own| own != organization) {
        return Err(ApiError::forbidden(format!(
            "organizationId: you administer the clients of organization {} only",
            caller.organization_id
        )));
    }
    let profiles = profile_names(&state, &request.accessible_profiles)?;
    let client_id =
        uuid::Uuid::from_bytes(crate::store::new_device_id().map_err(ApiError::internal)?)
            .to_string();
    let secret = crate::auth::new_client_secret()?;
    let hash = {
        let secret = secret.clone();
        tokio::task::spawn_blocking(move || crate::auth::hash_password(&secret)).await??
    };
    let actor = caller.actor();
    let answer = {
        let state = state.clone();
        let client_id = client_id.clone();
        state.clone().store(move |store| {
            let tenant = organization_name(store, organization)?;
            store
                .create_client(
                    &NewClient {
                        client_id: &client_id,
                        secret_hash: &hash,
                        name: &name,
                        organization,
                        profiles: profiles.as_deref(),
                    },
                    &actor,
                )?
                .ok_or_else(|| ApiError::conflict("client id collision; try again"))?;
            let row = visible(store, None, &client_id)?;
            Ok(credential(&state, &row, &tenant))
        })
    }
    .await?;
    let mut answer = answer;
    answer["clientSecret"] = Value::String(secret.as_str().to_owned());
    Ok(Json(answer))
}

/// `?filter=` of the list.
#[derive(Deserialize)]
pub struct ListQuery {
    filter: Option<String>,
}

/// `GET /api/v1/credentials?filter=`: `{items, count}`, by creation; `filter` over `id`,
/// `clientId`, `credentialName`, `organizationId`, `locked`, `generation`, `createdAt`,
/// `updatedAt`.
pub async fn list(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&caller)?;
    let filter = filter::compile(query.filter.as_deref().unwrap_or(""), CLIENT_FIELDS)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let inner = state.clone();
    let items = state
        .store(move |store| {
            let names: std::collections::HashMap<i64, String> = store
                .organizations()?
                .into_iter()
                .map(|o| (o.id.0, o.name))
                .collect();
            Ok(store
                .clients(scope, &filter)?
                .iter()
                .map(|row| {
                    let tenant = names.get(&row.organization.0).map_or("", String::as_str);
                    credential(&inner, row, tenant)
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Json(json!({ "count": items.len(), "items": items })))
}

/// `GET /api/v1/credentials/{id}`.
pub async fn get(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&caller)?;
    let inner = state.clone();
    let answer = state
        .store(move |store| {
            let row = visible(store, scope, &client_id)?;
            let tenant = organization_name(store, row.organization).unwrap_or_default();
            Ok(credential(&inner, &row, &tenant))
        })
        .await?;
    Ok(Json(answer))
}

/// `PUT /api/v1/credentials/{id}` body: each field absent stays as it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    credential_name: Option<String>,
    /// Absent: unchanged; `null`: every profile; a list: those.
    #[serde(default, deserialize_with = "present")]
    accessible_profiles: Option<Value>,
    locked: Option<bool>,
}

/// Tells an absent field (`None`, by `default`) from a present `null` (`Some(Null)`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// `PUT /api/v1/credentials/{id}`: rename, re-scope to other profiles, lock or unlock. A locked
/// client gets no token, and the tokens it holds are refused from its next request.
pub async fn update(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(client_id): Path<String>,
    Json(request): Json<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&caller)?;
    let name = request
        .credential_name
        .as_deref()
        .map(|n| checked_name(Some(n)))
        .transpose()?;
    let profiles = request
        .accessible_profiles
        .as_ref()
        .map(|value| profile_names(&state, value))
        .transpose()?;
    let inner = state.clone();
    let answer = state
        .store(move |store| {
            let row = visible(store, scope, &client_id)?;
            let name = name.unwrap_or(row.name);
            let profiles = profiles.unwrap_or(row.profiles);
            let locked = request.locked.unwrap_or(row.locked);
            store.update_client(row.id, &name, profiles.as_deref(), locked, &caller.actor())?;
            let row = visible(store, scope, &client_id)?;
            let tenant = organization_name(store, row.organization).unwrap_or_default();
            Ok(credential(&inner, &row, &tenant))
        })
        .await?;
    Ok(Json(answer))
}

/// `POST /api/v1/credentials/{id}/reset`: a new secret, shown this once; the old one and every
/// token issued for it stop working at once.
pub async fn reset(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&caller)?;
    let secret = crate::auth::new_client_secret()?;
    let hash = {
        let secret = secret.clone();
        tokio::task::spawn_blocking(move || crate::auth::hash_password(&secret)).await??
    };
    let inner = state.clone();
    let mut answer = state
        .store(move |store| {
            let row = visible(store, scope, &client_id)?;
            store.reset_client_secret(row.id, &hash, &caller.actor())?;
            let row = visible(store, scope, &client_id)?;
            let tenant = organization_name(store, row.organization).unwrap_or_default();
            Ok(credential(&inner, &row, &tenant))
        })
        .await?;
    answer["clientSecret"] = Value::String(secret.as_str().to_owned());
    Ok(Json(answer))
}

/// `DELETE /api/v1/credentials/{id}`: 204. The client's batches keep their records (and name
/// it in their audit logs); its tokens stop working at once.
pub async fn delete(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let scope = scope(&caller)?;
    state
        .store(move |store| {
            let row = visible(store, scope, &client_id)?;
            store.delete_client(row.id, &caller.actor())?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/credentials/{id}/events`: what administrators did to the client (`CREATED`,
/// `UPDATED`, `LOCKED`, `UNLOCKED`, `SECRET_RESET`, `DELETED`, with actor and time), oldest
/// first, from the append-only `client_events`. A deleted client's log stays readable to ADMIN.
pub async fn events(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&caller)?;
    let events = state
        .store(move |store| {
            // A scoped administrator reads the log of a client of theirs; ADMIN any, even deleted.
            if scope.is_some() {
                visible(store, scope, &client_id)?;
            }
            let events = store.client_events(&client_id)?;
            if events.is_empty() {
                return Err(ApiError::not_found(format!("no API client {client_id}")));
            }
            Ok(events)
        })
        .await?;
    Ok(Json(Value::Array(
        events
            .iter()
            .map(|(time, actor, kind, message)| {
                super::signers_api::event_json(*time, actor, kind, message)
            })
            .collect(),
    )))
}
