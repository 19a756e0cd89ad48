//! Revocation over HTTP: seed 001's revoke endpoints, the batch revoke, and the public CRL and
//! OCSP endpoints the certificates name (no authentication: relying parties call them).
//!
//! OCSP answers from the responder's cache on the async thread (a hash-map lookup); a miss
//! reads the store and signs on a blocking thread. Malformed requests get an OCSP
//! `malformedRequest` response, never an HTTP error.

use super::auth_api::Caller;
use super::batches::readable;
use super::{ApiError, Shared};
use crate::revocation::ocsp::{self, ResponseStatus};
use crate::revocation::service::{self, now_unix, CrlSchedule, OcspAnswer, OcspService};
use crate::revocation::RevocationReason;
use crate::store::{IssuerId, RevokedCertificate, Store};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Largest OCSP request accepted (a request for 16 certificates with a nonce is well under
/// 2 KiB); anything bigger is malformed.
const MAX_OCSP_REQUEST: usize = 16 << 10;

/// A CRL as the server publishes it.
#[derive(Clone, Debug)]
pub struct PublishedCrl {
    /// The DER file.
    pub path: PathBuf,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// Strong ETag: hex SHA-256 of the file.
    pub etag: String,
    /// cRLNumber.
    pub number: u64,
}

impl From<service::IssuedCrl> for PublishedCrl {
    fn from(crl: service::IssuedCrl) -> PublishedCrl {
        PublishedCrl {
            path: crl.path,
            this_update: crl.this_update,
            next_update: crl.next_update,
            etag: crate::batch::hex(&crl.sha256),
            number: crl.number,
        }
    }
}

/// Revocation of one signer: its OCSP responder and the CRL it publishes.
#[derive(Debug)]
pub struct SignerRevocation {
    /// The signer's store registration.
    pub issuer: IssuerId,
    /// `<key id>.crl`: the file name under `/crl/` that serves this signer's CRL (the
    /// `{issuerKeyId}` of profile URLs).
    pub crl_file: String,
    /// The OCSP responder.
    pub ocsp: OcspService,
    /// The CRL being served, once one is issued or found.
    pub crl: RwLock<Option<Arc<PublishedCrl>>>,
}

impl SignerRevocation {
    /// Publishes the CRL in the file after an issue (or at start).
    pub fn publish(&self, crl: PublishedCrl) {
        let crl = Some(Arc::new(crl));
        match self.crl.write() {
            Ok(mut guard) => *guard = crl,
            Err(poisoned) => *poisoned.into_inner() = crl,
        }
    }

    pub fn published(&self) -> Option<Arc<PublishedCrl>> {
        match self.crl.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// What the server needs to publish CRLs and answer OCSP for every signer it serves (the
/// ACTIVE and RETIRED signers of every issuer).
#[derive(Debug)]
pub struct Revocation {
    /// The CRL and OCSP schedule (from the served profiles).
    pub schedule: CrlSchedule,
    /// Fixed file names under `/crl/` that profiles name, each with the issuer whose current
    /// signer's CRL it serves.
    pub crl_names: Vec<(String, String)>,
    /// One entry per served signer.
    pub signers: RwLock<Arc<Vec<Arc<SignerRevocation>>>>,
}

impl Revocation {
    /// The signers served now.
    pub fn signers(&self) -> Arc<Vec<Arc<SignerRevocation>>> {
        match self.signers.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes the served set exactly `signers`: an entry is kept for a signer already served
    /// (its responder and cache live on), started for a new one (a responder certificate is
    /// issued), dropped for one no longer loaded.
    pub fn sync(
        &self,
        store: &Store,
        signers: &crate::signers::Signers,
    ) -> Result<(), service::ServiceError> {
        let current = self.signers();
        let mut next = Vec::with_capacity(signers.all().len());
        for signer in signers.all() {
            let issuer = signer.issuer();
            match current.iter().find(|s| s.issuer == issuer) {
                Some(kept) => next.push(kept.clone()),
                None => next.push(Arc::new(SignerRevocation {
                    issuer,
                    crl_file: format!(
                        "{}.crl",
                        crate::batch::hex(signer.ca.subject_key_identifier())
                    ),
                    ocsp: OcspService::start(store, &signer.ca, issuer, self.schedule)?,
                    crl: RwLock::new(None),
                })),
            }
        }
        let next = Arc::new(next);
        match self.signers.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }

    /// Drops every signer's cached OCSP answers (after a revocation).
    pub fn invalidate_all(&self) {
        for signer in self.signers().iter() {
            signer.ocsp.invalidate_all();
        }
    }

    /// The signer whose CertID hashes the request's first CertID carries.
    fn for_request(&self, request: &ocsp::ParsedRequest) -> Option<Arc<SignerRevocation>> {
        self.signers()
            .iter()
            .find(|s| s.ocsp.serves(request))
            .cloned()
    }

    /// The signer whose CRL `/crl/{name}` serves: `<key id>.crl`, or a fixed name a profile
    /// gives, which serves its issuer's current signer.
    fn for_crl(
        &self,
        name: &str,
        current: &crate::signers::Signers,
    ) -> Option<Arc<SignerRevocation>> {
        let signers = self.signers();
        if let Some(found) = signers
            .iter()
            .find(|s| s.crl_file.eq_ignore_ascii_case(name))
        {
            return Some(found.clone());
        }
        let (_, issuer_name) = self.crl_names.iter().find(|(n, _)| n == name)?;
        let issuer = current.current(issuer_name)?.issuer();
        signers.iter().find(|s| s.issuer == issuer).cloned()
    }
}

/// `reasonCode` as seed 001 takes it: a number 0 to 10, a code from RFC 5280 (7 is not).
fn reason_from(code: i64) -> Result<RevocationReason, ApiError> {
    u8::try_from(code)
        .ok()
        .and_then(RevocationReason::from_code)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "reasonCode {code}: must be a CRLReason code of RFC 5280 section 5.3.1, 0 to 10 \
                 except 7"
            ))
        })
}

/// The store's actor for a caller.
pub(super) fn actor(caller: &crate::auth::Principal) -> String {
    caller.actor()
}

/// After a revocation committed: cached OCSP answers go at once, and the CRL follows within
/// the worker's next round.
fn revoked(state: &Shared, changes: &[RevokedCertificate]) {
    if changes.iter().any(|c| c.outcome.changed()) {
        state.revocation.invalidate_all();
    }
}

/// `POST /api/v1/certificates/revoke` body (seed 001 "Revoke Certificates Request").
#[derive(Deserialize)]
pub struct RevokeDevicesRequest {
    #[serde(rename = "reasonCode")]
    reason_code: i64,
    #[serde(rename = "deviceIds")]
    device_ids: Vec<String>,
}

/// `POST /api/v1/certificates/revoke`: revokes the devices' certificates, all or none; a device
/// the caller may not see is 404, as one that does not exist.
pub async fn revoke_devices(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<RevokeDevicesRequest>,
) -> Result<Response, ApiError> {
    let reason = reason_from(request.reason_code)?;
    if request.device_ids.is_empty() {
        return Err(ApiError::bad_request("deviceIds: must not be empty"));
    }
    let mut devices = Vec::with_capacity(request.device_ids.len());
    for (i, id) in request.device_ids.iter().enumerate() {
        let uuid = uuid::Uuid::parse_str(id.trim()).map_err(|_| {
            ApiError::bad_request(format!(
                "deviceIds[{i}]: {id:?} is not a device id (a UUID)"
            ))
        })?;
        devices.push(*uuid.as_bytes());
    }
    let changes = state
        .store(move |store| {
            for device in &devices {
                let id = uuid::Uuid::from_bytes(*device).hyphenated().to_string();
                let found = store.find_device(device)?;
                let visible = found.is_some_and(|batch| readable(store, &caller, batch.0).is_ok());
                if !visible {
                    return Err(ApiError::not_found(format!("no device {id}")));
                }
            }
            Ok(store.revoke_devices(&devices, reason, &actor(&caller))?)
        })
        .await?;
    revoked(&state, &changes);
    Ok(StatusCode::OK.into_response())
}

/// `POST /api/v1/certificates/{profileId}/revoke` body (seed 001 "Revoke Certificate
/// Request").
#[derive(Deserialize)]
pub struct RevokeSerialRequest {
    #[serde(rename = "reasonCode")]
    reason_code: i64,
    #[serde(rename = "serialNumber")]
    serial_number: String,
}

/// `POST /api/v1/certificates/{profileId}/revoke`: revokes the certificate of the profile with
/// this serial number; another organization's certificate is 404.
pub async fn revoke_serial(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(profile_id): Path<String>,
    Json(request): Json<RevokeSerialRequest>,
) -> Result<Response, ApiError> {
    let reason = reason_from(request.reason_code)?;
    if request.serial_number.trim().is_empty() {
        return Err(ApiError::bad_request("serialNumber: must not be blank"));
    }
    let profile = state
        .profile(&profile_id, &caller)?
        .profile
        .name()
        .to_owned();
    let serial_text = request.serial_number;
    let changes = state
        .store(move |store| {
            let found = store.find_certificates(None, Some(&serial_text))?;
            let missing = || {
                ApiError::not_found(format!(
                    "no certificate with serial number {serial_text} under profile {profile}"
                ))
            };
            let mut targets = Vec::new();
            for certificate in found {
                let Ok(batch) = readable(store, &caller, certificate.batch_id.0) else {
                    continue;
                };
                if batch.profile_name != profile {
                    continue;
                }
                let device =
                    uuid::Uuid::parse_str(&certificate.device_id).map_err(ApiError::internal)?;
                targets.push(*device.as_bytes());
            }
            if targets.is_empty() {
                return Err(missing());
            }
            Ok(store.revoke_devices(&targets, reason, &actor(&caller))?)
        })
        .await?;
    revoked(&state, &changes);
    Ok(StatusCode::OK.into_response())
}

/// `POST /api/v1/batches/{batchId}/revoke` body.
#[derive(Deserialize)]
pub struct RevokeBatchRequest {
    #[serde(rename = "reasonCode")]
    reason_code: i64,
}

/// `POST /api/v1/batches/{batchId}/revoke`: seed 001's "Processing Revoke" → "Revoked" for a
/// downloaded batch; every certificate of it is revoked in one transaction and the balance is
/// not restored. Answers the batch.
pub async fn revoke_batch(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
    Json(request): Json<RevokeBatchRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reason = reason_from(request.reason_code)?;
    let batch = state
        .store(move |store| {
            let batch = readable(store, &caller, id)?;
            store.revoke_batch(batch.id, reason, &actor(&caller))?;
            store
                .batch(batch.id)?
                .ok_or_else(|| ApiError::not_found(format!("no batch {id}")))
        })
        .await?;
    state.revocation.invalidate_all();
    Ok(Json(batch.api_json()))
}

/// `GET /crl/{name}`: the issuer's current CRL, DER, cacheable until its nextUpdate.
pub async fn crl(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(revocation) = state.revocation.for_crl(&name, &state.signers()) else {
        return Err(ApiError::not_found(format!("no CRL {name}")));
    };
    let Some(crl) = revocation.published() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the first CRL is being issued; retry in a few seconds",
        ));
    };
    let etag = format!("\"{}\"", crl.etag);
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        }) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // Opened before streaming: a newer CRL renamed into place meanwhile does not disturb
        // this one (the open file stays the old one).
        let file = tokio::fs::File::open(&crl.path)
            .await
            .map_err(ApiError::internal)?;
        let len = file.metadata().await.map_err(ApiError::internal)?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10);
        let mut response = Response::new(Body::from_stream(stream));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pkix-crl"),
        );
        response
    };
    let h = response.headers_mut();
    insert(h, header::ETAG, &etag);
    caching_headers(h, crl.this_update, crl.next_update, now_unix());
    Ok(response)
}

/// Cache-Control, Expires and Last-Modified for a document valid from `this_update` to
/// `next_update` (RFC 5019 section 6.2: max-age no later than nextUpdate).
fn caching_headers(h: &mut HeaderMap, this_update: i64, next_update: i64, now: i64) {
    let max_age = next_update.saturating_sub(now).max(0);
    insert(
        h,
        header::CACHE_CONTROL,
        &format!("max-age={max_age}, public, no-transform, must-revalidate"),
    );
    insert(h, header::EXPIRES, &http_date(next_update));
    insert(h, header::LAST_MODIFIED, &http_date(this_update));
}

fn insert(h: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        h.insert(name, value);
    }
}

/// An HTTP-date (RFC 9110 section 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(unix: i64) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// `GET /ocsp/{request}`: RFC 6960 appendix A.1, the url-encoded base64 of the DER request.
pub async fn ocsp_get(State(state): State<Shared>, Path(encoded): Path<String>) -> Response {
    match ocsp::decode_get_path(&encoded) {
        Ok(der) => answer(&state, Bytes::from(der), true).await,
        Err(_) => status_response(ResponseStatus::MalformedRequest),
    }
}

/// `POST /ocsp`: the DER request as the body (`application/ocsp-request`).
pub async fn ocsp_post(State(state): State<Shared>, body: Bytes) -> Response {
    answer(&state, body, false).await
}

async fn answer(state: &Shared, der: Bytes, get: bool) -> Response {
    if der.len() > MAX_OCSP_REQUEST {
        return status_response(ResponseStatus::MalformedRequest);
    }
    let Ok(request) = ocsp::parse_request(&der) else {
        return status_response(ResponseStatus::MalformedRequest);
    };
    let now = now_unix();
    // RFC 5019 section 2.2.3 / RFC 6960 section 2.3: not a CA this server serves.
    let Some(signer) = state.revocation.for_request(&request) else {
        return status_response(ResponseStatus::Unauthorized);
    };
    // The warm path: a lookup, no store, no signature, no thread hop.
    if let Some(cached) = signer.ocsp.cached(&request, now) {
        return signed_response(&cached, get, now);
    }
    let data = state.data.clone();
    let answered = tokio::task::spawn_blocking(move || {
        with_reader(&data, |store| signer.ocsp.answer(store, &request))
    })
    .await;
    match answered {
        Ok(Ok(OcspAnswer::Signed {
            response,
            cacheable,
        })) => signed_response(&response, get && cacheable, now),
        Ok(Ok(OcspAnswer::Status(_, der))) => ocsp_bytes(der.to_vec()),
        Ok(Err(error)) => {
            eprintln!("certmill serve: OCSP: {error}");
            status_response(ResponseStatus::InternalError)
        }
        Err(error) => {
            eprintln!("certmill serve: OCSP: {error}");
            status_response(ResponseStatus::InternalError)
        }
    }
}

fn signed_response(response: &service::CachedResponse, cacheable: bool, now: i64) -> Response {
    let mut out = ocsp_bytes(response.der.to_vec());
    let h = out.headers_mut();
    if cacheable {
        caching_headers(h, response.this_update, response.next_update, now);
        insert(h, header::ETAG, &format!("\"{}\"", response.etag));
    } else {
        insert(h, header::CACHE_CONTROL, "no-store");
    }
    out
}

fn status_response(status: ResponseStatus) -> Response {
    let mut out = ocsp_bytes(ocsp::error_response(status));
    insert(out.headers_mut(), header::CACHE_CONTROL, "no-store");
    out
}

fn ocsp_bytes(der: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(der));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ocsp-response"),
    );
    response
}

thread_local! {
    /// A store connection per blocking thread for OCSP lookups: opening SQLite per request
    /// would cost more than the lookup and the signature together.
    static READER: std::cell::RefCell<Option<(PathBuf, Store)>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's connection to the store in `data`, opened on first use.
pub(super) fn with_reader<T>(
    data: &std::path::Path,
    f: impl FnOnce(&Store) -> Result<T, service::ServiceError>,
) -> Result<T, service::ServiceError> {
    READER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let store = match &mut *slot {
            Some((path, store)) if path == data => store,
            other => &mut other.insert((data.to_path_buf(), Store::open(data)?)).1,
        };
        f(store)
    })
}
