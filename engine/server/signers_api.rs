//! Seed 004's signer endpoints, adapted: `/v2/tenants/{tenant}/signers...` becomes
//! `/api/v1/issuers/{issuer}/signers...` (a seed tenant is a certmill issuer). ADMIN only;
//! every change is recorded in the signers' audit log with the caller as actor.
//!
//! Key generation and signing run on blocking threads; after a change the server reloads its
//! signers before it answers, so the next batch already uses the new current signer and OCSP
//! and CRLs serve the new set.

use super::auth_api::Caller;
use super::revocation_api::actor;
use super::{ApiError, AppState, Shared};
use crate::batch::rfc3339;
use crate::ca::{CaInitOptions, IssuingCa};
use crate::filter::{self, Field, FieldType};
use crate::keys::KeyAlgorithm;
use crate::signers::{self, RotateOptions, SignerError};
use crate::store::{SignerRow, SignerState, Store};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Only ADMIN (the whole installation) administers signers.
fn admin(caller: &crate::auth::Principal) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "signers are administered by the role ADMIN",
        ))
    }
}

/// One entry of an administration log (signers, authorities): `time`, `actor`, `type`,
/// `message`.
pub(super) fn event_json(time: i64, actor: &str, kind: &str, message: &str) -> Value {
    json!({
        "time": rfc3339(time),
        "actor": actor,
        "type": kind,
        "message": message,
    })
}

/// Seed 004's signer object, with certmill's additions after `state`.
pub(super) fn info(row: &SignerRow) -> Value {
    json!({
        "id": row.id,
        "tenant": row.issuer_name,
        "name": row.name,
        "createdAt": rfc3339(row.created_at),
        "updatedAt": rfc3339(row.updated_at),
        "generation": row.generation,
        "state": row.state.as_str(),
        "certificateStatus": if row.issuer.is_some() { "ISSUED" } else { "REQUESTED" },
        "keyAlgorithm": row.algorithm,
        "notAfter": row.not_after.map(rfc3339),
        "rootLocal": row.root_dir.is_some(),
    })
}

/// Runs a signer operation on a blocking thread with a store connection, then reloads the
/// server's signers when it changed something.
async fn change<T, F>(state: &Shared, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState, &Store) -> Result<T, ApiError> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let store = Store::open(&state.data)?;
        let out = f(&state, &store)?;
        state
            .reload_signers(&store, true)
            .map_err(ApiError::internal)?;
        Ok(out)
    })
    .await?
}

/// Resolves `{signerSpec}` within `{issuer}` on a blocking thread.
async fn resolved(state: &Shared, issuer: String, spec: String) -> Result<SignerRow, ApiError> {
    state
        .store(move |store| Ok(signers::resolve(store, &issuer, &spec)?))
        .await
}

/// `GET /api/v1/issuers`: every issuer with its current signer.
pub async fn list_issuers(
    State(state): State<Shared>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let rows = state.store(|store| Ok(store.signers(None)?)).await?;
    let mut issuers: Vec<(String, Vec<&SignerRow>)> = Vec::new();
    for row in &rows {
        match issuers
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(&row.issuer_name))
        {
            Some((_, list)) => list.push(row),
            None => issuers.push((row.issuer_name.clone(), vec![row])),
        }
    }
    let served: Vec<Value> = issuers
        .iter()
        .map(|(name, list)| {
            let current = list.iter().find(|r| r.state == SignerState::Active);
            let profiles: Vec<&str> = state
                .profiles
                .iter()
                .filter(|p| p.profile.issuer_name().eq_ignore_ascii_case(name))
                .map(|p| p.profile.name())
                .collect();
            json!({
                "name": name,
                "current": current.map(|r| info(r)),
                "signers": list.len(),
                "profiles": profiles,
            })
        })
        .collect();
    Ok(Json(Value::Array(served)))
}

/// `page` and `page_size` (seed 004: 1-based, 5 to 100, default 20), `filter` (seed 002's
/// expressions over [`SIGNER_FIELDS`]) and `state`.
#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<u32>,
    page_size: Option<u32>,
    state: Option<String>,
    filter: Option<String>,
}

/// What `filter=` may name on the signer list (seed 004's signer properties).
const SIGNER_FIELDS: &[Field] = &[
    Field {
        name: "id",
        column: "id",
        kind: FieldType::Text,
    },
    Field {
        name: "name",
        column: "name",
        kind: FieldType::Text,
    },
    Field {
        name: "state",
        column: "state",
        kind: FieldType::Text,
    },
    Field {
        name: "generation",
        column: "generation",
        kind: FieldType::Integer,
    },
    Field {
        name: "createdAt",
        column: "created_at",
        kind: FieldType::Timestamp,
    },
    Field {
        name: "updatedAt",
        column: "updated_at",
        kind: FieldType::Timestamp,
    },
    Field {
        name: "keyAlgorithm",
        column: "algorithm",
        kind: FieldType::Text,
    },
    Field {
        name: "notAfter",
        column: "not_after",
        kind: FieldType::Timestamp,
    },
];

/// `GET /api/v1/issuers/{issuer}/signers`: the issuer's signers, oldest first, paged.
pub async fn list_signers(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(issuer): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let page = query.page.unwrap_or(1);
    let page_size = query.page_size.unwrap_or(20);
    if page == 0 {
        return Err(ApiError::bad_request("page: must be at least 1"));
    }
    if !(5..=100).contains(&page_size) {
        return Err(ApiError::bad_request(
            "page_size: must be between 5 and 100",
        ));
    }
    let mut filter = filter::compile(query.filter.as_deref().unwrap_or(""), SIGNER_FIELDS)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(state_text) = query.state {
        let Some(wanted) = SignerState::parse(&state_text) else {
            return Err(ApiError::bad_request(format!(
                "state {state_text:?}: one of PENDING, ACTIVE, RETIRED, REVOKED"
            )));
        };
        filter.sql = format!("{} AND state = ?", filter.sql);
        filter
            .values
            .push(rusqlite::types::Value::Text(wanted.as_str().to_owned()));
    }
    let name = issuer.clone();
    let offset = u64::from(page - 1) * u64::from(page_size);
    let (exists, rows) = state
        .store(move |store| {
            let exists = !store.signers(Some(&name))?.is_empty();
            Ok((
                exists,
                store.signers_page(&name, &filter, page_size, offset)?,
            ))
        })
        .await?;
    if !exists {
        return Err(ApiError::not_found(format!("no issuer {issuer}")));
    }
    let list: Vec<Value> = rows.iter().map(info).collect();
    Ok(Json(Value::Array(list)))
}

/// `POST /api/v1/issuers/{issuer}/signers` body (seed 004 plus certmill's key options).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    name: Option<String>,
    #[serde(rename = "keyAlgorithm")]
    key_algorithm: Option<String>,
    #[serde(rename = "validityYears")]
    validity_years: Option<u32>,
    organization: Option<String>,
    /// A new issuer whose root is the maker's own: its first signer is a key and a CSR.
    #[serde(rename = "externalRoot", default)]
    external_root: bool,
}

/// `POST /api/v1/issuers/{issuer}/signers`: the issuer's first signer (a new issuer with a
/// local development root), or a rotation: a new key and certificate become ACTIVE, the
/// previous signer RETIRED. With an external root the new signer is PENDING and the answer
/// carries its `csr`.
pub async fn create(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(issuer): Path<String>,
    body: Option<Json<CreateRequest>>,
) -> Result<Response, ApiError> {
    admin(&caller)?;
    let request = body.map(|Json(b)| b).unwrap_or_default();
    let algorithm = match request.key_algorithm.as_deref() {
        None => None,
        Some(s) => Some(KeyAlgorithm::from_syntax(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "keyAlgorithm {s:?}: one of EC:P-256, EC:P-384, RSA:2048, RSA:3072, RSA:4096"
            ))
        })?),
    };
    if request.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::bad_request("name: must not be empty"));
    }
    let actor = actor(&caller);
    let (row, csr) = change(&state, move |state, store| {
        signers::check_issuer_name(&issuer)?;
        let passphrase = state.passphrase.as_ref();
        if store.signers(Some(&issuer))?.is_empty() {
            let mut options = CaInitOptions {
                algorithm: algorithm.unwrap_or(KeyAlgorithm::EcP256),
                passphrase: state.passphrase.clone(),
                ..CaInitOptions::default()
            };
            if let Some(organization) = request.organization {
                options.organization = organization;
            }
            if let Some(name) = &request.name {
                options.common_name_prefix = name.clone();
            }
            if let Some(years) = request.validity_years {
                options.issuing_years = years;
                options.root_years = options.root_years.max(years);
            }
            if request.external_root {
                let done = signers::request_issuer(&state.data, store, &issuer, &options, &actor)?;
                return Ok((done.signer, done.csr));
            }
            let (row, _) = signers::init_issuer(&state.data, store, &issuer, &options, &actor)?;
            Ok((row, None))
        } else {
            let options = RotateOptions {
                name: request.name,
                algorithm,
                years: request.validity_years,
            };
            let done = signers::rotate(&state.data, store, &issuer, &options, passphrase, &actor)?;
            Ok((done.signer, done.csr))
        }
    })
    .await?;
    let mut body = info(&row);
    if let Some(csr) = csr {
        body["csr"] = Value::String(csr);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/issuers/{issuer}/signers/{signerSpec}`: `{info, certificate}` (PEM; empty
/// while the certificate is requested).
pub async fn get(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((issuer, spec)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let row = resolved(&state, issuer, spec).await?;
    let certificate = match loaded_chain(&state, &row).await? {
        Some(ca) => first_pem(&ca.chain_pem()),
        None => String::new(),
    };
    Ok(Json(
        json!({ "info": info(&row), "certificate": certificate }),
    ))
}

/// The signer's certificate and chain as on disk, when it has a certificate.
async fn loaded_chain(state: &Shared, row: &SignerRow) -> Result<Option<Arc<IssuingCa>>, ApiError> {
    if let Some(issuer) = row.issuer {
        if let Some(loaded) = state.signers().by_issuer(issuer) {
            return Ok(Some(loaded.ca.clone()));
        }
    } else {
        return Ok(None);
    }
    // Not served (revoked): read it from its directory.
    let dir = state.data.join(&row.key_dir);
    let passphrase = state.passphrase.clone();
    let loaded =
        tokio::task::spawn_blocking(move || IssuingCa::load_from(&dir, passphrase.as_ref()))
            .await?
            .map_err(|e| ApiError::from(SignerError::from(e)))?;
    Ok(Some(Arc::new(loaded)))
}

/// The first PEM block of `pem`.
fn first_pem(pem: &str) -> String {
    const END: &str = "-----END CERTIFICATE-----\n";
    match pem.find(END) {
        Some(i) => pem[..i + END.len()].to_owned(),
        None => pem.to_owned(),
    }
}

/// `GET /api/v1/issuers/{issuer}/signers/{signerSpec}/chain`: `{chain: [PEM, ...]}`, the
/// signer's certificate first, up to the root.
pub async fn chain(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((issuer, spec)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let row = resolved(&state, issuer, spec).await?;
    let ca = loaded_chain(&state, &row).await?.ok_or_else(|| {
        ApiError::conflict(format!(
            "signer {} has no certificate yet (its CSR waits for the external root)",
            row.id
        ))
    })?;
    let chain: Vec<String> = ca
        .chain_der()
        .iter()
        .map(|der| {
            der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
                .map_err(ApiError::internal)
        })
        .collect::<Result<_, _>>()?;
    Ok(Json(json!({ "chain": chain })))
}

/// `POST .../renew` body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    #[serde(rename = "validityYears")]
    validity_years: Option<u32>,
}

/// `POST /api/v1/issuers/{issuer}/signers/{signerSpec}/renew`: the same key in a new
/// certificate; with an external root the answer carries the `csr` for it instead.
pub async fn renew(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((issuer, spec)): Path<(String, String)>,
    body: Option<Json<RenewRequest>>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let years = body.and_then(|Json(b)| b.validity_years);
    let actor = actor(&caller);
    let outcome = change(&state, move |state, store| {
        let row = signers::resolve(store, &issuer, &spec)?;
        Ok(signers::renew(
            &state.data,
            store,
            &row,
            years,
            state.passphrase.as_ref(),
            &actor,
        )?)
    })
    .await?;
    let mut body = info(&outcome.signer);
    if let Some(csr) = outcome.csr {
        body["csr"] = Value::String(csr);
    }
    Ok(Json(body))
}

/// `POST /api/v1/issuers/{issuer}/signers/{signerSpec}/revoke`: the signer signs nothing more
/// and is no longer served.
pub async fn revoke(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((issuer, spec)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let actor = actor(&caller);
    let row = change(&state, move |_, store| {
        let row = signers::resolve(store, &issuer, &spec)?;
        Ok(signers::revoke(store, &row, &actor)?)
    })
    .await?;
    Ok(Json(info(&row)))
}

/// `DELETE /api/v1/issuers/{issuer}/signers/{signerSpec}`: 204, or 409 while the signer is
/// ACTIVE or anything it issued is still valid.
pub async fn delete(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((issuer, spec)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    admin(&caller)?;
    let actor = actor(&caller);
    change(&state, move |state, store| {
        let row = signers::resolve(store, &issuer, &spec)?;
        Ok(signers::delete(&state.data, store, &row, &actor)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/issuers/{issuer}/signers/{signerSpec}/csr`: the CSR waiting for the external
/// root (PEM).
pub async fn csr(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((issuer, spec)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    admin(&caller)?;
    let row = resolved(&state, issuer, spec).await?;
    let dir = state.data.join(&row.key_dir);
    let pem = tokio::task::spawn_blocking(move || IssuingCa::pending_request(&dir))
        .await?
        .map_err(|_| ApiError::not_found(format!("signer {} has no pending CSR", row.id)))?;
    Ok(([(header::CONTENT_TYPE, "application/pkcs10")], pem).into_response())
}

/// `PUT /api/v1/issuers/{issuer}/signers/{signerSpec}/certificate`: the certificate (PEM, its
/// chain after it) the external root made from the signer's CSR. A PENDING signer becomes
/// ACTIVE; an ACTIVE or RETIRED one is renewed.
pub async fn install(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((issuer, spec)): Path<(String, String)>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    if !body.contains("-----BEGIN CERTIFICATE-----") {
        return Err(ApiError::bad_request(
            "the body must be the certificate in PEM (then its chain)",
        ));
    }
    let actor = actor(&caller);
    let row = change(&state, move |state, store| {
        let row = signers::resolve(store, &issuer, &spec)?;
        Ok(signers::install(
            &state.data,
            store,
            &row,
            &body,
            state.passphrase.as_ref(),
            &actor,
        )?)
    })
    .await?;
    Ok(Json(info(&row)))
}

/// `GET /api/v1/issuers/{issuer}/signers/{signerSpec}/events`: the signer's audit log.
pub async fn events(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path((issuer, spec)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let events = state
        .store(move |store| {
            let row = signers::resolve(store, &issuer, &spec)?;
            Ok(store.signer_events(&row.id)?)
        })
        .await?;
    Ok(Json(Value::Array(
        events
            .iter()
            .map(|e| event_json(e.time, &e.actor, &e.kind, &e.message))
            .collect(),
    )))
}
