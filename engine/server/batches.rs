//! Seed 001 "Batch API", "Upload" and "Download": creating, listing, reading, rejecting and
//! downloading batches.
//!
//! A create call validates every device (a bad row is a 400 naming it), records the batch, and
//! answers with it at once while its devices are issued on a thread of their own; clients poll
//! `status` or `processing_info`. The batch pipeline is the CLI's ([`crate::batch::issue`]).

use super::auth_api::Caller;
use super::catalog::{authority_for, visible_authority};
use super::{ApiError, AppState, Shared};
use crate::auth::Principal;
use crate::batch::{BatchError, BatchInput, BatchOptions, ProgressStyle};
use crate::csr::CsrBundle;
use crate::generator::{GeneratorKind, Sequence};
use crate::pkcs12::{Pkcs12Options, Pkcs12Password};
use crate::store::{AuthorityRow, BatchId, BatchRow, OrganizationId, Store};
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

/// Batches running on their own threads; shutdown waits for them.
#[derive(Default)]
pub struct Running {
    count: Mutex<usize>,
    idle: Condvar,
}

impl Running {
    /// Batches running now.
    pub fn count(&self) -> usize {
        self.count.lock().map_or(0, |c| *c)
    }

    fn start(&self) {
        if let Ok(mut count) = self.count.lock() {
            *count += 1;
        }
    }

    fn finish(&self) {
        if let Ok(mut count) = self.count.lock() {
            *count = count.saturating_sub(1);
            self.idle.notify_all();
        }
    }

    /// Blocks until no batch runs.
    pub fn wait_all(&self) {
        let Ok(mut count) = self.count.lock() else {
            return;
        };
        while *count > 0 {
            match self.idle.wait(count) {
                Ok(next) => count = next,
                Err(_) => return,
            }
        }
    }
}

/// The batch `id` if the caller may read it: an admin reads every batch, a user the batches of
/// their organization's authorities. Anything else is 404, as if it did not exist.
pub(super) fn readable(store: &Store, caller: &Principal, id: i64) -> Result<BatchRow, ApiError> {
    let missing = || ApiError::not_found(format!("no batch {id}"));
    let batch = store.batch(BatchId(id))?.ok_or_else(missing)?;
    if caller.is_admin() {
        return Ok(batch);
    }
    let Some(authority) = batch.authority else {
        return Err(missing());
    };
    let authority = store.authority(authority)?;
    if authority.organization.0 == caller.organization_id
        && caller.may_use_profile(&batch.profile_name)
    {
        Ok(batch)
    } else {
        Err(missing())
    }
}

/// Every batch the caller may read.
pub(super) fn visible_batches(
    store: &Store,
    caller: &Principal,
) -> Result<Vec<BatchRow>, ApiError> {
    let batches = store.batches()?;
    if caller.is_admin() {
        return Ok(batches);
    }
    // Removed authorities too: their batches stay the organization's.
    let own: Vec<_> = store
        .authorities_including_removed(OrganizationId(caller.organization_id))?
        .into_iter()
        .map(|a| a.id)
        .collect();
    Ok(batches
        .into_iter()
        .filter(|b| b.authority.is_some_and(|a| own.contains(&a)))
        .filter(|b| caller.may_use_profile(&b.profile_name))
        .collect())
}

/// A JSON value given for a parameter, as text: strings as they are, numbers and booleans
/// written out; anything else is refused naming the field.
fn text(field: &str, value: &Value) -> Result<Option<String>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(ApiError::bad_request(format!(
            "{field}: expected a string or a number"
        ))),
    }
}

fn texts(field: &str, map: &BTreeMap<String, Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (name, value) in map {
        if let Some(v) = text(&format!("{field}.{name}"), value)? {
            out.insert(name.clone(), v);
        }
    }
    Ok(out)
}

/// What a create call issues from.
enum Source {
    Generator(Sequence),
    Single,
    Csv(tempfile::TempPath),
    Csr(tempfile::TempPath),
}

/// A batch ready to start: authority, profile, parameters, password.
struct Order {
    authority: AuthorityRow,
    profile: usize,
    /// The signer the batch is signed with from its first device to its last, even when its
    /// issuer rotates meanwhile.
    signer: crate::signers::LoadedSigner,
    batch_name: String,
    parameters: BTreeMap<String, String>,
    password: Option<Pkcs12Password>,
}

/// Resolves the authority (given, or the organization's for the profile), checks the caller
/// may use it and takes the PKCS#12 password out of the parameters.
async fn order(
    state: &Shared,
    caller: &Principal,
    authority: Option<i64>,
    profile_key: Option<&str>,
    batch_name: Option<String>,
    mut parameters: BTreeMap<String, String>,
    needs_password: bool,
) -> Result<Order, ApiError> {
    if !caller.is_admin() && !caller.has_role(crate::auth::Role::User) {
        return Err(ApiError::forbidden(
            "ordering certificates needs the role USER",
        ));
    }
    let profile_name = match profile_key {
        Some(key) => Some(state.profile(key, caller)?.profile.name().to_owned()),
        None => None,
    };
    let who = caller.clone();
    let wanted = profile_name.clone();
    let authority = state
        .store(move |store| match authority {
            Some(id) => visible_authority(store, &who, id),
            None => {
                let name =
                    wanted.ok_or_else(|| ApiError::bad_request("authorityId is required"))?;
                authority_for(store, OrganizationId(who.organization_id), &name)?.ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "your organization has no authority for profile {name}"
                    ))
                })
            }
        })
        .await?;
    if profile_name
        .as_ref()
        .is_some_and(|p| *p != authority.profile_name)
    {
        return Err(ApiError::bad_request(format!(
            "authority {} is for profile {}, not {}",
            authority.id.0,
            authority.profile_name,
            profile_name.unwrap_or_default()
        )));
    }
    let profile = state
        .profiles
        .iter()
        .position(|p| p.profile.name() == authority.profile_name)
        .filter(|_| caller.may_use_profile(&authority.profile_name))
        .ok_or_else(|| ApiError::not_found(format!("no authority {}", authority.id.0)))?;
    let mut signer = state.signer_for(&state.profiles[profile].profile)?;
    if signer.issuer() != authority.issuer {
        // Another process rotated the issuer (its transaction moved the authority): pick up
        // the new current signer now instead of at the next worker round.
        let reloading = state.clone();
        state
            .store(move |store| {
                reloading
                    .reload_signers(store, false)
                    .map_err(ApiError::internal)
            })
            .await?;
        signer = state.signer_for(&state.profiles[profile].profile)?;
        if signer.issuer() != authority.issuer {
            return Err(ApiError::conflict(format!(
                "authority {} is bound to another signer than the current one of issuer {}; \
                 retry in a second",
                authority.id.0, signer.row.issuer_name
            )));
        }
    }
    let password_name = state.profiles[profile]
        .profile
        .password_parameter()
        .unwrap_or("pkcs12Password")
        .to_owned();
    let given = parameters.remove(&password_name);
    let password =
        if needs_password {
            let text = given.ok_or_else(|| {
                ApiError::bad_request(format!("profileParams.{password_name} is required"))
            })?;
            Some(Pkcs12Password::new(text).map_err(|e| {
                ApiError::bad_request(format!("profileParams.{password_name}: {e}"))
            })?)
        } else {
            None
        };
    let batch_name = batch_name.unwrap_or_default();
    if batch_name.chars().count() > 255 {
        return Err(ApiError::bad_request("batchName: at most 255 characters"));
    }
    Ok(Order {
        authority,
        profile,
        signer,
        batch_name,
        parameters,
        password,
    })
}

/// Starts the batch on a thread of its own and answers with the recorded batch, or with the
/// error that refused it before anything was recorded.
async fn start(
    state: &Shared,
    caller: &Principal,
    order: Order,
    source: Source,
) -> Result<Json<Value>, ApiError> {
    let out = state.data.join("batches").join(format!(
        "batch-{}.zip",
        uuid::Uuid::from_bytes(crate::store::new_device_id().map_err(ApiError::internal)?)
    ));
    let (created_sender, created) = crossbeam_channel::bounded::<BatchId>(1);
    let (refused_sender, refused) = crossbeam_channel::bounded::<BatchError>(1);
    let thread_state = Arc::clone(state);
    let user = caller.user_id;
    state.running.start();
    let spawned = std::thread::Builder::new()
        .name("certmill-batch".into())
        .spawn(move || {
            let state = thread_state;
            match run_batch(&state, order, source, user, out, created_sender) {
                Ok(Some(report)) => state.metrics.batch_finished(report.devices, report.elapsed),
                // Ordered: the nodes' workers issue it in chunks.
                Ok(None) => {}
                // Refused before it was recorded: the waiting request answers with it.
                // After that, the store has the batch Broken with this reason.
                Err(e) => {
                    let _ = refused_sender.send(e);
                }
            }
            state.running.finish();
        });
    if let Err(e) = spawned {
        state.running.finish();
        return Err(ApiError::internal(e));
    }
    // The id is sent before any error of a recorded batch, so it wins when both are there.
    let started = tokio::task::spawn_blocking(move || {
        crossbeam_channel::select! {
            // A disconnected id channel means the batch failed before it was recorded: its
            // error follows on the other channel.
            recv(created) -> id => match id {
                Ok(id) => Ok(Ok(id)),
                Err(_) => refused.recv().map(Err),
            },
            recv(refused) -> error => created.try_recv().map(Ok).or_else(|_| error.map(Err)),
        }
    })
    .await?
    .map_err(|_| ApiError::internal("the batch thread ended without a word"))?;
    let id = started?;
    let batch = state
        .store(move |store| {
            store
                .batch(id)?
                .ok_or_else(|| ApiError::internal("a created batch is missing"))
        })
        .await?;
    Ok(Json(batch.api_json()))
}

/// The batch thread: loads the input and runs the pipeline, or, on a node of a cluster, orders
/// the batch for the nodes' workers (then there is no report: it runs on).
fn run_batch(
    state: &AppState,
    order: Order,
    source: Source,
    user: i64,
    out: PathBuf,
    created: crossbeam_channel::Sender<BatchId>,
) -> Result<Option<crate::batch::BatchReport>, BatchError> {
    let profile = &state.profiles[order.profile].profile;
    let options = BatchOptions {
        parameters: order.parameters,
        password: order.password,
        pkcs12: Pkcs12Options::default(),
        out,
        batch_name: order.batch_name,
        threads: None,
        progress: ProgressStyle::Quiet,
        authority: Some(order.authority.id),
        user: Some(user),
        issuer: Some(order.signer.issuer()),
        on_created: Some(created),
        keypairs: state.keypairs.clone(),
        limits: state.limits.input,
    };
    let bundle;
    let input = match &source {
        Source::Generator(sequence) => BatchInput::Generator(sequence),
        Source::Single => BatchInput::Single,
        Source::Csv(path) => BatchInput::Csv(path),
        Source::Csr(path) => {
            bundle = CsrBundle::open(path, &state.limits.input.csr).map_err(|source| {
                BatchError::Csr {
                    entry: None,
                    source,
                }
            })?;
            BatchInput::Csr(&bundle)
        }
    };
    match &state.cluster {
        Some(cluster) => {
            let node = cluster.node(&state.data);
            crate::batch::chunked::order(&node, &order.signer.ca, profile, &input, &options)
                .map(|_| None)
        }
        None => {
            crate::batch::issue(&state.data, &order.signer.ca, profile, &input, &options).map(Some)
        }
    }
}

/// The JSON create calls (generator, single): the authority is required, the PKCS#12
/// password too.
async fn start_ordered(
    state: &Shared,
    caller: &Principal,
    authority: Option<i64>,
    batch_name: Option<String>,
    profile_params: &BTreeMap<String, Value>,
    source: Source,
) -> Result<Json<Value>, ApiError> {
    let authority = authority.ok_or_else(|| ApiError::bad_request("authorityId is required"))?;
    let parameters = texts("profileParams", profile_params)?;
    let order = order(
        state,
        caller,
        Some(authority),
        None,
        batch_name,
        parameters,
        true,
    )
    .await?;
    start(state, caller, order, source).await
}

/// `PUT /api/v1/batches` and `PUT /api/v1/batches/preview` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRequest {
    authority_id: Option<i64>,
    batch_name: Option<String>,
    generator_id: Value,
    #[serde(default)]
    generator_params: BTreeMap<String, Value>,
    batch_size: u64,
    #[serde(default)]
    profile_params: BTreeMap<String, Value>,
}

fn sequence(request: &GeneratorRequest) -> Result<Sequence, ApiError> {
    let id = text("generatorId", &request.generator_id)?
        .ok_or_else(|| ApiError::bad_request("generatorId is required"))?;
    let kind =
        GeneratorKind::find(&id).map_err(|e| ApiError::bad_request(format!("generatorId: {e}")))?;
    let own = texts("generatorParams", &request.generator_params)?;
    Sequence::new(kind, &own, request.batch_size)
        .map_err(|e| ApiError::bad_request(format!("generatorParams: {e}")))
}

/// `PUT /api/v1/batches`: a generator batch.
pub async fn create_generator(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<GeneratorRequest>,
) -> Result<Json<Value>, ApiError> {
    let sequence = sequence(&request)?;
    let source = Source::Generator(sequence);
    start_ordered(
        &state,
        &caller,
        request.authority_id,
        request.batch_name,
        &request.profile_params,
        source,
    )
    .await
}

/// `PUT /api/v1/batches/preview`: the values the first device would get; nothing is issued.
/// The PKCS#12 password is never echoed.
pub async fn preview(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<GeneratorRequest>,
) -> Result<Json<Value>, ApiError> {
    let sequence = sequence(&request)?;
    let parameters = texts("profileParams", &request.profile_params)?;
    let order = order(
        &state,
        &caller,
        request.authority_id,
        None,
        request.batch_name,
        parameters,
        false,
    )
    .await?;
    let profile = &state.profiles[order.profile].profile;
    let shown = crate::generator::preview(profile, &order.parameters, &sequence);
    serde_json::to_value(shown)
        .map(Json)
        .map_err(ApiError::internal)
}

/// `PUT /api/v1/batches/createSingleCertBatch` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SingleRequest {
    authority_id: Option<i64>,
    batch_name: Option<String>,
    #[serde(default)]
    profile_params: BTreeMap<String, Value>,
}

/// `PUT /api/v1/batches/createSingleCertBatch`.
pub async fn create_single(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<SingleRequest>,
) -> Result<Json<Value>, ApiError> {
    start_ordered(
        &state,
        &caller,
        request.authority_id,
        request.batch_name,
        &request.profile_params,
        Source::Single,
    )
    .await
}

/// `?profileId=`.
#[derive(Deserialize)]
pub struct ProfileQuery {
    #[serde(rename = "profileId")]
    profile_id: Option<String>,
}

/// The `csrBatchRequest` part of an upload.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UploadRequest {
    authority_id: Option<i64>,
    batch_name: Option<String>,
    #[serde(default)]
    profile_params: BTreeMap<String, Value>,
}

/// Media types accepted for the `files` part.
const CSV_TYPES: &[&str] = &[
    "text/csv",
    "text/plain",
    "application/csv",
    "application/vnd.ms-excel",
    "application/octet-stream",
];
/// Seed 001: a PEM text file as text/plain, application/octet-stream or
/// application/x-x509-ca-cert; a ZIP as application/zip (and the usual PEM/PKCS#10 types).
const CSR_TYPES: &[&str] = &[
    "application/x-x509-ca-cert",
    "application/x-pem-file",
    "application/pkcs10",
    "application/x-pkcs10",
    "text/plain",
    "application/octet-stream",
    "application/zip",
    "application/x-zip-compressed",
];

/// Reads the multipart upload: the JSON part and the file, streamed to a temporary file in
/// the data directory.
async fn read_upload(
    state: &Shared,
    mut multipart: Multipart,
    accepted: &[&str],
) -> Result<(UploadRequest, tempfile::TempPath), ApiError> {
    use tokio::io::AsyncWriteExt as _;
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(
            e.status(),
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large"
            } else {
                "invalid_request"
            },
            e.body_text(),
        )
    };
    let mut request = None;
    let mut file = None;
    let mut declared_zip = None;
    let mut first_bytes = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "csrBatchRequest" => {
                if let Some(media) = field.content_type() {
                    if !media.to_ascii_lowercase().starts_with("application/json") {
                        return Err(ApiError::new(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            "unsupported_media_type",
                            format!(
                                "csrBatchRequest: content type {media} must be application/json"
                            ),
                        ));
                    }
                }
                let body = field.text().await.map_err(multipart_error)?;
                let parsed: UploadRequest = serde_json::from_str(&body)
                    .map_err(|e| ApiError::bad_request(format!("csrBatchRequest: {e}")))?;
                request = Some(parsed);
            }
            "files" => {
                if file.is_some() {
                    return Err(ApiError::bad_request(
                        "files: send one file per upload (a ZIP holds many CSRs)",
                    ));
                }
                declared_zip = field
                    .content_type()
                    .map(|m| m.to_ascii_lowercase().contains("zip"));
                if let Some(media) = field.content_type() {
                    let essence = media
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    if !accepted.contains(&essence.as_str()) {
                        return Err(ApiError::new(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            "unsupported_media_type",
                            format!(
                                "files: content type {essence} is not one of {}",
                                accepted.join(", ")
                            ),
                        ));
                    }
                }
                let dir = state.data.join("uploads");
                let temp = tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&dir)?;
                    tempfile::Builder::new().prefix("upload-").tempfile_in(&dir)
                })
                .await?
                .map_err(ApiError::internal)?;
                let (std_file, path) = temp.into_parts();
                let mut writer = tokio::fs::File::from_std(std_file);
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if first_bytes.len() < 4 {
                        let take = (4 - first_bytes.len()).min(chunk.len());
                        first_bytes.extend_from_slice(&chunk[..take]);
                    }
                    writer.write_all(&chunk).await.map_err(ApiError::internal)?;
                }
                writer.flush().await.map_err(ApiError::internal)?;
                file = Some(path);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown part {other:?}: expected csrBatchRequest and files"
                )))
            }
        }
    }
    let file = file.ok_or_else(|| ApiError::bad_request("the files part is missing"))?;
    // Seed 001: a ZIP must be sent as application/zip, a PEM file as a text type.
    let is_zip = first_bytes.starts_with(b"PK\x03\x04");
    if accepted == CSR_TYPES && declared_zip.is_some_and(|declared| declared != is_zip) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            if is_zip {
                "files: a ZIP must be sent with Content-Type application/zip"
            } else {
                "files: the part is declared application/zip but is not a ZIP file"
            },
        ));
    }
    Ok((request.unwrap_or_default(), file))
}

async fn upload(
    state: Shared,
    caller: Principal,
    query: ProfileQuery,
    multipart: Multipart,
    csr: bool,
) -> Result<Json<Value>, ApiError> {
    let profile_key = query
        .profile_id
        .ok_or_else(|| ApiError::bad_request("the profileId query parameter is required"))?;
    // 404 before reading a large body for a profile the caller may not use.
    state.profile(&profile_key, &caller)?;
    let (request, file) =
        read_upload(&state, multipart, if csr { CSR_TYPES } else { CSV_TYPES }).await?;
    let parameters = texts("profileParams", &request.profile_params)?;
    let order = order(
        &state,
        &caller,
        request.authority_id,
        Some(&profile_key),
        request.batch_name,
        parameters,
        !csr,
    )
    .await?;
    let source = if csr {
        Source::Csr(file)
    } else {
        Source::Csv(file)
    };
    start(&state, &caller, order, source).await
}

/// An upload whose body is not `multipart/form-data` with a boundary (JSON, say): 415, where
/// axum's own rejection is a plain-text 400.
fn not_multipart(rejection: MultipartRejection) -> ApiError {
    match rejection {
        MultipartRejection::InvalidBoundary(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "an upload must be multipart/form-data (with a boundary) holding a csrBatchRequest \
             part and a files part",
        ),
        other => ApiError::bad_request(other.body_text()),
    }
}

/// `POST /api/v1/batches/upload?profileId=`: a CSR bundle (PEM text or ZIP).
pub async fn upload_csr(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<ProfileQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    upload(
        state,
        caller,
        query,
        multipart.map_err(not_multipart)?,
        true,
    )
    .await
}

/// `POST /api/v1/batches/upload-csv?profileId=`: a CSV of devices.
pub async fn upload_csv(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<ProfileQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    upload(
        state,
        caller,
        query,
        multipart.map_err(not_multipart)?,
        false,
    )
    .await
}

/// `POST /api/v1/batches` body (the grid list).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    #[serde(default)]
    filter: Filter,
    #[serde(default)]
    sort_columns: Option<Vec<SortColumn>>,
}

/// The grid filter; absent, null, zero or empty fields filter nothing.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    batch_id: Option<i64>,
    from_date: Option<Value>,
    to_date: Option<Value>,
    size_from: Option<u64>,
    size_to: Option<u64>,
    status: Option<Value>,
    batch_name: Option<String>,
    #[serde(default)]
    paging_settings: Paging,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Paging {
    page_index: Option<u64>,
    page_size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SortColumn {
    #[serde(alias = "name", alias = "column")]
    column_name: String,
    #[serde(default, alias = "order", alias = "sortDirection")]
    direction: Option<String>,
}

/// A date filter: RFC 3339 text or epoch milliseconds; the epoch itself filters nothing.
fn date(field: &str, value: &Option<Value>) -> Result<Option<i64>, ApiError> {
    let seconds = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(|ms| ms.div_euclid(1000)),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp())
        }
        Some(_) => None,
    };
    let seconds = seconds.ok_or_else(|| {
        ApiError::bad_request(format!(
            "filter.{field}: expected an RFC 3339 date or epoch milliseconds"
        ))
    })?;
    Ok((seconds != 0).then_some(seconds))
}

/// `POST /api/v1/batches?profileId=`: `{batches, totalCount}`.
pub async fn list(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<ProfileQuery>,
    body: Option<Json<ListRequest>>,
) -> Result<Json<Value>, ApiError> {
    let request = body.map(|Json(r)| r).unwrap_or_default();
    let profile = match &query.profile_id {
        Some(key) if !key.is_empty() => {
            Some(state.profile(key, &caller)?.profile.name().to_owned())
        }
        _ => None,
    };
    let f = request.filter;
    let from = date("fromDate", &f.from_date)?;
    let to = date("toDate", &f.to_date)?;
    let status = match &f.status {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => None,
            Some(i) => Some(
                *crate::store::BatchStatus::ALL
                    .get(i as usize - 1)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "filter.status: 0 (any) or 1..=10 in the order of Batch Statuses",
                        )
                    })?,
            ),
            None => return Err(ApiError::bad_request("filter.status: a number")),
        },
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(crate::store::BatchStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("filter.status: unknown status {s:?}"))
        })?),
        Some(_) => {
            return Err(ApiError::bad_request(
                "filter.status: a number or a status name",
            ))
        }
    };
    let name = f
        .batch_name
        .filter(|n| !n.is_empty())
        .map(|n| n.to_lowercase());
    let page_size = f
        .paging_settings
        .page_size
        .filter(|&s| s > 0)
        .unwrap_or(20)
        .min(1000);
    let page_index = f.paging_settings.page_index.unwrap_or(0);
    let batches = state
        .store(move |store| visible_batches(store, &caller))
        .await?;
    let mut selected: Vec<BatchRow> = batches
        .into_iter()
        .filter(|b| profile.as_ref().is_none_or(|p| *p == b.profile_name))
        .filter(|b| {
            f.batch_id
                .filter(|&id| id > 0)
                .is_none_or(|id| b.id.0 == id)
        })
        .filter(|b| from.is_none_or(|t| b.created_at >= t))
        .filter(|b| to.is_none_or(|t| b.created_at <= t))
        .filter(|b| f.size_from.filter(|&s| s > 0).is_none_or(|s| b.size >= s))
        .filter(|b| f.size_to.filter(|&s| s > 0).is_none_or(|s| b.size <= s))
        .filter(|b| status.is_none_or(|s| b.status == s))
        .filter(|b| {
            name.as_ref()
                .is_none_or(|n| b.batch_name.to_lowercase().contains(n))
        })
        .collect();
    // Newest first, unless sortColumns say otherwise (last column applied first).
    selected.sort_by_key(|b| std::cmp::Reverse(b.id.0));
    for column in request.sort_columns.unwrap_or_default().iter().rev() {
        let descending = column.direction.as_deref().is_some_and(|d| {
            d.eq_ignore_ascii_case("desc") || d.eq_ignore_ascii_case("descending")
        });
        let key = column.column_name.as_str();
        let compare = |a: &BatchRow, b: &BatchRow| match key {
            "batchId" | "orderNumber" => a.id.0.cmp(&b.id.0),
            "creationDate" => a.created_at.cmp(&b.created_at),
            "size" => a.size.cmp(&b.size),
            "status" => a.status.as_str().cmp(b.status.as_str()),
            "batchName" => a.batch_name.cmp(&b.batch_name),
            "profile" => a.profile_name.cmp(&b.profile_name),
            _ => std::cmp::Ordering::Equal,
        };
        if ![
            "batchId",
            "orderNumber",
            "creationDate",
            "size",
            "status",
            "batchName",
            "profile",
        ]
        .contains(&key)
        {
            return Err(ApiError::bad_request(format!(
                "sortColumns: unknown column {key:?} (batchId, orderNumber, creationDate, size, status, batchName, profile)"
            )));
        }
        selected.sort_by(|a, b| {
            if descending {
                compare(b, a)
            } else {
                compare(a, b)
            }
        });
    }
    let total = selected.len();
    let page: Vec<Value> = selected
        .iter()
        .skip(usize::try_from(page_index.saturating_mul(page_size)).unwrap_or(usize::MAX))
        .take(page_size as usize)
        .map(BatchRow::api_json)
        .collect();
    Ok(Json(json!({ "batches": page, "totalCount": total })))
}

async fn load(state: &Shared, caller: Principal, id: i64) -> Result<BatchRow, ApiError> {
    state.store(move |store| readable(store, &caller, id)).await
}

/// `GET /api/v1/batches/{batchId}`.
pub async fn get_batch(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(load(&state, caller, id).await?.api_json()))
}

/// `GET /api/v1/batches/{batchId}/status`: text/plain.
pub async fn status(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let batch = load(&state, caller, id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        batch.status.status_text(),
    )
        .into_response())
}

/// `GET /api/v1/batches/{batchId}/processing_info`.
pub async fn processing_info(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(load(&state, caller, id).await?.processing_info()))
}

/// `DELETE /api/v1/batches/{batchId}` (body: the reason): reject; the balance is restored.
pub async fn reject(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let reason = body.trim().trim_matches('"').trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            "the request body must give the reason",
        ));
    }
    let batch = state
        .store(move |store| {
            let batch = readable(store, &caller, id)?;
            store.reject_batch(batch.id, &reason)?;
            store
                .batch(batch.id)?
                .ok_or_else(|| ApiError::not_found(format!("no batch {id}")))
        })
        .await?;
    Ok(Json(batch.api_json()))
}

/// `GET /api/v1/batches/{batchId}/auditLog`.
pub async fn audit_log(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let entries = state
        .store(move |store| {
            let batch = readable(store, &caller, id)?;
            Ok(store.audit_log(batch.id)?)
        })
        .await?;
    let list: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({
                "logId": e.id.to_string(),
                "batchId": e.batch_id.0,
                "logType": e.kind.as_str(),
                "userName": e.actor,
                "dateTime": crate::batch::rfc3339(e.time),
                "message": e.message,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// Device audit entries per page.
const DEVICE_LOG_PAGE: usize = 1000;

/// `?position=`.
#[derive(Deserialize)]
pub struct PositionQuery {
    position: Option<usize>,
}

/// `GET /api/v1/batches/{batchId}/devices/auditLog?position=N`: entries N.. (1-based), at most
/// [`DEVICE_LOG_PAGE`].
pub async fn devices_audit_log(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
    Query(query): Query<PositionQuery>,
) -> Result<Json<Value>, ApiError> {
    let start = query.position.unwrap_or(1).max(1) - 1;
    let entries = state
        .store(move |store| {
            let batch = readable(store, &caller, id)?;
            Ok(store.device_audit_log(batch.id)?)
        })
        .await?;
    let list: Vec<Value> = entries
        .into_iter()
        .skip(start)
        .take(DEVICE_LOG_PAGE)
        .map(|e| {
            json!({
                "logId": e.id.to_string(),
                "deviceId": e.device_id,
                "cn": e.common_name,
                "dateTime": crate::batch::rfc3339(e.time),
                "message": e.message,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// A `Range: bytes=...` header against a file of `len` bytes: `Ok(None)` for the whole file,
/// the inclusive range, or `Err` when unsatisfiable (416).
fn parse_range(header: Option<&HeaderValue>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None); // another unit: ignored, as RFC 9110 14.2 allows
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: answered with the whole file
    }
    let (first, last) = spec.split_once('-').ok_or(())?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().map_err(|_| ())?;
        if suffix == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(suffix), len - 1)
    } else {
        let start: u64 = first.parse().map_err(|_| ())?;
        let end = if last.is_empty() {
            len.saturating_sub(1)
        } else {
            last.parse::<u64>()
                .map_err(|_| ())?
                .min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

/// Where a download's bytes come from.
enum Download {
    /// The batch's ZIP file.
    File(tokio::fs::File),
    /// A chunked batch's head, parts and tail.
    Stitched(crate::objects::zipparts::Stitched),
}

/// The layout of a chunked batch's ZIP.
fn stitched(
    state: &AppState,
    layout: &crate::store::ChunkedLayout,
) -> Result<crate::objects::zipparts::Stitched, ApiError> {
    if state.cluster.is_none() {
        return Err(ApiError::conflict(
            "this batch was issued in chunks into an object store; download it from a node started with --objects",
        ));
    }
    crate::batch::chunked::stitched(layout).map_err(ApiError::internal)
}

/// The caller's batch `id`, if it may be downloaded now (409 otherwise).
async fn load_downloadable(
    state: &Shared,
    caller: Principal,
    id: i64,
) -> Result<BatchRow, ApiError> {
    let batch = load(state, caller, id).await?;
    if !batch.downloadable {
        return Err(ApiError::conflict(format!(
            "batch {id} is not downloadable: status {}",
            batch.status.as_str()
        )));
    }
    Ok(batch)
}

/// `POST /api/v1/batches/{batchId}/download-link`: `{url, expiresIn}`, a link to the ZIP
/// with a download ticket in place of the Authorization header, so a browser saves it
/// straight to disk (no copy in the page's memory) and a station can fetch it with a plain
/// HTTP client.
pub async fn download_link(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let batch_id = load_downloadable(&state, caller.clone(), id).await?.id.0;
    let ticket = tokio::task::spawn_blocking(move || state.auth.download_ticket(&caller, batch_id))
        .await??;
    Ok(Json(json!({
        "url": format!("/api/v1/batches/{batch_id}/download?ticket={ticket}"),
        "expiresIn": crate::auth::DOWNLOAD_TICKET_LIFETIME_SECS,
    })))
}

/// `GET /api/v1/batches/{batchId}/download`: the ZIP from disk, streamed, with Range support.
/// A download marks the batch's devices COLLECTED; the batch is then no longer rejectable.
pub async fn download(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let batch = load_downloadable(&state, caller, id).await?;
    let batch_id = batch.id;
    let layout = state
        .store(move |store| Ok(store.chunked_layout(batch_id)?))
        .await?;
    // A batch issued in chunks by several nodes is stitched from its objects; any other is
    // one ZIP file in the data directory.
    let (source, len, etag) = match layout {
        Some(layout) => {
            let stitched = stitched(&state, &layout)?;
            let len = stitched.len();
            let tag = crate::batch::hex(&Sha256::digest(layout.tail.0.as_bytes())[..8]);
            let etag = format!("\"{}-{len:x}-{tag}\"", batch.id.0);
            (Download::Stitched(stitched), len, etag)
        }
        None => {
            let path = PathBuf::from(&batch.output_path);
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
            let metadata = file.metadata().await.map_err(ApiError::internal)?;
            let len = metadata.len();
            let modified = metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            let etag = format!("\"{}-{len:x}-{modified:x}\"", batch.id.0);
            (Download::File(file), len, etag)
        }
    };
    let range = match headers.get(header::IF_RANGE) {
        // A stale If-Range: the client's copy changed, so send the whole file.
        Some(tag) if tag.as_bytes() != etag.as_bytes() => Ok(None),
        _ => parse_range(headers.get(header::RANGE), len),
    };
    let Ok(range) = range else {
        let mut response = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the Range header does not fit the file of {len} bytes"),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        return Ok(response);
    };
    state
        .store(move |store| Ok(store.mark_downloaded(batch_id)?))
        .await?;
    let (status, start, count) = match range {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        None => (StatusCode::OK, 0, len),
    };
    let body = match source {
        Download::File(mut file) => {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(ApiError::internal)?;
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                file.take(count),
                256 << 10,
            ))
        }
        Download::Stitched(stitched) => {
            let cluster = state.cluster.as_ref().ok_or_else(|| {
                ApiError::internal("a stitched download on a node without --objects")
            })?;
            let body = cluster
                .objects
                .stitched_range(std::sync::Arc::new(stitched), start..start + count)
                .map_err(ApiError::internal)?;
            Body::new(body)
        }
    };
    let file_name = format!("batch-{}.zip", batch.id.0);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(value) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
        {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
        parse_range(Some(&HeaderValue::from_str(value).unwrap()), len)
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(range("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(range("bytes=900-", 1000), Ok(Some((900, 999))));
        assert_eq!(range("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(range("bytes=0-5000", 1000), Ok(Some((0, 999))));
        assert_eq!(range("bytes=1000-", 1000), Err(()));
        assert_eq!(range("bytes=5-4", 1000), Err(()));
        assert_eq!(range("bytes=0-1,5-6", 1000), Ok(None));
        assert_eq!(range("items=0-1", 1000), Ok(None));
        assert_eq!(parse_range(None, 1000), Ok(None));
    }
}
