//! Object storage for batch parts: a local directory or an S3-compatible bucket, chosen by URL.
//!
//! - `file:///some/dir` (or a plain path): each object is a file under the directory. A write
//!   goes to a temporary file beside the object, synced, then renamed over it, so a reader never
//!   sees half an object.
//! - `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1`: path-style requests
//!   to the endpoint (`https://s3.<region>.amazonaws.com` when none is given; `http` and `https`
//!   endpoints), keys under `prefix/`, credentials from `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN`.
//!
//! Keys are relative paths with `/` (`batches/42/part-0003-1`); a key that is empty, absolute,
//! or has an empty, `.` or `..` component is refused, on both backends alike.
//!
//! [`ObjectStore`] has an async API for tokio tasks (an axum download handler answers with the
//! [`ObjectBody`] a range read gives) and a blocking one, [`ObjectStore::blocking`], for plain
//! threads (the batch workers): it runs the same calls on the runtime whose handle the store was
//! opened with, which must be a multi-thread runtime (the server's).
//!
//! It does not do multipart uploads (a single PUT, so objects up to 5 GiB on S3: a part of
//! 10,000 devices is 30-60 MB), retries, or listing pagination beyond following S3's
//! continuation tokens into one list. How parts are stitched into one ZIP is [`zipparts`].

mod body;
mod local;
mod s3;
mod stitched;
pub mod zipparts;

pub use body::ObjectBody;
pub use stitched::StitchedBody;

use bytes::Bytes;
use http_body_util::BodyExt;
use local::LocalBackend;
use s3::S3Backend;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// File name prefix of the local backend's temporary files; no key component may start with it.
const TEMP_PREFIX: &str = ".certmill-tmp-";
/// S3's limit on a key's length, applied to both backends.
const MAX_KEY_LEN: usize = 1024;

/// Tries of an S3 request that failed for a reason that may pass ([`ObjectError::is_transient`]).
const ATTEMPTS: u32 = 4;

/// The wait before the second try; each later wait is four times the one before (0.1, 0.4,
/// 1.6 s: about 2 s in all, within S3's advice for `SlowDown`).
const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs `request` until it succeeds, fails for good, or has failed [`ATTEMPTS`] times. A part
/// that fails to upload would otherwise cost its chunk's whole issuance again.
async fn retried<T, F, Fut>(mut request: F) -> Result<T, ObjectError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ObjectError>>,
{
    let mut wait = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match request().await {
            Err(error) if attempt < ATTEMPTS && error.is_transient() => {
                tokio::time::sleep(wait).await;
                wait *= 4;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// Why an object store call failed. Messages name the key (or URL part) and, for S3, the HTTP
/// status and the S3 error code; never credentials or signed URLs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// A byte range outside a stitched archive, or another layout error.
    #[error("stitched archive: {0}")]
    Archive(zipparts::ZipPartsError),
    /// A key or list prefix the store refuses.
    #[error("object key {key:?} {defect}")]
    BadKey {
        /// The refused key.
        key: String,
        /// What is wrong with it.
        defect: KeyDefect,
    },
    /// The store URL cannot be used.
    #[error("object store URL: {reason}")]
    BadUrl {
        /// What is wrong (the URL's credentials, if any, are not repeated).
        reason: String,
    },
    /// An `s3://` store without `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[error("S3 object store: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and optionally AWS_SESSION_TOKEN)")]
    Credentials,
    /// The request could not be sent or its response read (connection refused, reset, ...).
    #[error("object {key:?}: HTTP request failed: {}", error_chain(source.as_ref()))]
    Http {
        /// The object's key (or list prefix).
        key: String,
        /// The transport error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading or writing the local backend's file failed.
    #[error("object {key:?}: {source}")]
    Io {
        /// The object's key.
        key: String,
        /// The error.
        source: std::io::Error,
    },
    /// A listing response that is not a ListObjectsV2 result.
    #[error("listing objects under {prefix:?}: unreadable response: {reason}")]
    ListResponse {
        /// The list prefix.
        prefix: String,
        /// The XML parser's message.
        reason: String,
    },
    /// No object has this key.
    #[error("object {key:?} does not exist")]
    NotFound {
        /// The missing key.
        key: String,
    },
    /// A byte range outside the object.
    #[error("object {key:?}: bytes {start}..{end} are outside the object{}",
        size.map(|size| format!(" of {size} bytes")).unwrap_or_default())]
    Range {
        /// The object's key.
        key: String,
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The object's size, when known.
        size: Option<u64>,
    },
    /// The local file to upload could not be read.
    #[error("object {key:?}: reading the file to upload: {source}")]
    Source {
        /// The object's key.
        key: String,
        /// The error.
        source: std::io::Error,
    },
    /// The S3 service answered with an error.
    #[error("object {key:?}: S3 {operation} answered {status}{}{}",
        code.as_ref().map(|code| format!(" {code}")).unwrap_or_default(),
        message.as_ref().map(|message| format!(": {message}")).unwrap_or_default())]
    Status {
        /// The object's key (or list prefix, or bucket name).
        key: String,
        /// The request: `PUT`, `GET`, `HEAD`, `DELETE`, `LIST`.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// S3's error `Code` (`NoSuchBucket`, `AccessDenied`, ...), when the body had one.
        code: Option<String>,
        /// S3's error `Message`, when the body had one.
        message: Option<String>,
    },
    /// The system's root certificates for an `https` endpoint could not be loaded.
    #[error("S3 object store: loading the system's root certificates: {source}")]
    TlsRoots {
        /// The error.
        source: std::io::Error,
    },
    /// Larger than one PUT may carry on S3 (5 GiB); multipart upload is not implemented.
    #[error("object {key:?}: {size} bytes, more than the 5 GiB a single S3 PUT accepts")]
    TooLarge {
        /// The object's key.
        key: String,
        /// Its size.
        size: u64,
    },
    /// A read gave fewer or more bytes than the range asked for.
    #[error("object {key:?}: {expected} bytes expected, {received} received{}",
        if *longer { " and more followed" } else { "" })]
    Truncated {
        /// The object's key.
        key: String,
        /// Bytes asked for.
        expected: u64,
        /// Bytes received before the stream ended (or went past `expected`).
        received: u64,
        /// The stream had more bytes than asked for.
        longer: bool,
    },
    /// A background task of the local backend panicked or was cancelled.
    #[error("object {key:?}: the file task did not finish: {reason}")]
    Task {
        /// The object's key.
        key: String,
        /// Tokio's message.
        reason: String,
    },
}

/// An error and its sources, `: `-separated: hyper's own message is only "client error
/// (Connect)", the reason (refused, certificate unknown) is in its sources.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        message.push_str(": ");
        message.push_str(&error.to_string());
        source = error.source();
    }
    message
}

/// What is wrong with an object key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyDefect {
    /// Starts with `/`.
    #[error("is absolute")]
    Absolute,
    /// Holds a `\`.
    #[error("contains a backslash")]
    Backslash,
    /// Has an empty component (`a//b`, or a trailing `/`).
    #[error("has an empty component")]
    EmptyComponent,
    /// Empty.
    #[error("is empty")]
    Empty,
    /// Holds a NUL or another control character.
    #[error("contains a control character")]
    Control,
    /// Has a `.` or `..` component.
    #[error("contains a '.' or '..' component")]
    DotComponent,
    /// A component starts like the local backend's temporary files.
    #[error("has a component starting with {TEMP_PREFIX:?}")]
    Reserved,
    /// Longer than S3 allows.
    #[error("is {0} bytes long, more than 1024")]
    TooLong(usize),
}

/// Checks a key (or, with `prefix`, a list prefix, which may be empty and end with `/`).
fn check_key(key: &str, prefix: bool) -> Result<(), ObjectError> {
    let mut components: Vec<&str> = key.split('/').collect();
    if prefix {
        // "a/b/" lists under a/b; "" lists everything; "a/pa" lists keys starting with it.
        if components.last() == Some(&"") {
            components.pop();
        }
    }
    let defect = if key.is_empty() && !prefix {
        Some(KeyDefect::Empty)
    } else if key.len() > MAX_KEY_LEN {
        Some(KeyDefect::TooLong(key.len()))
    } else if key.chars().any(char::is_control) {
        Some(KeyDefect::Control)
    } else if key.contains('\\') {
        Some(KeyDefect::Backslash)
    } else if key.starts_with('/') {
        Some(KeyDefect::Absolute)
    } else if components.iter().any(|c| *c == "." || *c == "..") {
        Some(KeyDefect::DotComponent)
    } else if components.iter().any(|c| c.is_empty()) {
        Some(KeyDefect::EmptyComponent)
    } else if components.iter().any(|c| c.starts_with(TEMP_PREFIX)) {
        Some(KeyDefect::Reserved)
    } else {
        None
    };
    match defect {
        Some(defect) => Err(ObjectError::BadKey {
            key: key.to_owned(),
            defect,
        }),
        None => Ok(()),
    }
}

/// Credentials for an `s3://` store. `Debug` shows the access key id only.
#[derive(Clone)]
pub struct S3Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl ObjectError {
    /// Whether trying the same request again may succeed: the connection failed, or S3 asked
    /// to slow down (429, 503) or failed inside (500, 502, 504).
    pub fn is_transient(&self) -> bool {
        match self {
            ObjectError::Http { .. } => true,
            ObjectError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}

impl S3Credentials {
    /// Credentials from their parts.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> S3Credentials {
        S3Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        }
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, when set, `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<S3Credentials, ObjectError> {
        let var = |name| std::env::var(name).ok().filter(|value| !value.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                Ok(S3Credentials::new(id, secret, var("AWS_SESSION_TOKEN")))
            }
            _ => Err(ObjectError::Credentials),
        }
    }

    fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }
}

/// Where an `s3://` URL points.
struct S3Location {
    endpoint: url::Url,
    bucket: String,
    region: String,
    prefix: String,
}

/// Parses `s3://bucket/prefix?endpoint=...&region=...`.
fn parse_s3_url(url: &url::Url) -> Result<S3Location, ObjectError> {
    let bad = |reason: String| ObjectError::BadUrl { reason };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "s3:// URLs take no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .to_owned(),
        ));
    }
    let bucket = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| bad("s3:// URL without a bucket (s3://bucket/prefix)".to_owned()))?
        .to_owned();
    let mut endpoint = None;
    let mut region = None;
    for (name, value) in url.query_pairs() {
        match &*name {
            "endpoint" => endpoint = Some(value.into_owned()),
            "region" => region = Some(value.into_owned()),
            other => return Err(bad(format!("unknown s3:// URL parameter {other:?}"))),
        }
    }
    let region = region.unwrap_or_else(|| "us-east-1".to_owned());
    let endpoint = endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let endpoint =
        url::Url::parse(&endpoint).map_err(|e| bad(format!("endpoint {endpoint:?}: {e}")))?;
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
        return Err(bad(format!(
            "endpoint {:?}: not an http:// or https:// URL",
            endpoint.origin().ascii_serialization()
        )));
    }
    if !endpoint.username().is_empty() || endpoint.password().is_some() {
        return Err(bad(
            "the endpoint takes no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .to_owned(),
        ));
    }
    let prefix = url.path().trim_matches('/').to_owned();
    if !prefix.is_empty() {
        check_key(&prefix, false)?;
    }
    Ok(S3Location {
        endpoint,
        bucket,
        region,
        prefix,
    })
}

#[derive(Clone, Debug)]
enum Backend {
    Local(LocalBackend),
    /// Boxed: the client and bucket are some 400 bytes, and clones share them.
    S3(std::sync::Arc<S3Backend>),
}

/// An object store: a directory or an S3 bucket (see the module's documentation for the URLs).
/// Cloning is cheap and shares the HTTP connection pool.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    backend: Backend,
    runtime: tokio::runtime::Handle,
}

impl ObjectStore {
    /// Opens the store named by `url` (`file:///dir`, a plain path, or `s3://bucket/prefix?…`
    /// with credentials from the `AWS_*` variables). `runtime` runs the requests of the blocking
    /// API and must be a multi-thread runtime. Nothing is sent until the first call.
    pub fn open(url: &str, runtime: tokio::runtime::Handle) -> Result<ObjectStore, ObjectError> {
        let credentials = if url.starts_with("s3://") {
            Some(S3Credentials::from_env()?)
        } else {
            None
        };
        ObjectStore::open_with_credentials(url, credentials.as_ref(), runtime)
    }

    /// [`ObjectStore::open`] with the S3 credentials given rather than read from the
    /// environment (they are ignored for a local store).
    pub fn open_with_credentials(
        url: &str,
        credentials: Option<&S3Credentials>,
        runtime: tokio::runtime::Handle,
    ) -> Result<ObjectStore, ObjectError> {
        let backend = if let Some(rest) = url.strip_prefix("file://") {
            let path = url::Url::parse(url)
                .ok()
                .and_then(|parsed| parsed.to_file_path().ok())
                .ok_or_else(|| ObjectError::BadUrl {
                    reason: format!("{url:?} is not a file:///absolute/path URL ({rest:?})"),
                })?;
            Backend::Local(LocalBackend::new(path))
        } else if url.starts_with("s3://") {
            let parsed = url::Url::parse(url).map_err(|e| ObjectError::BadUrl {
                reason: format!("s3:// URL: {e}"),
            })?;
            let location = parse_s3_url(&parsed)?;
            let credentials = credentials.ok_or(ObjectError::Credentials)?;
            Backend::S3(std::sync::Arc::new(S3Backend::new(
                location.endpoint,
                &location.bucket,
                &location.region,
                &location.prefix,
                credentials,
            )?))
        } else if url.contains("://") {
            return Err(ObjectError::BadUrl {
                reason: format!(
                    "unknown scheme in {:?} (file:// or s3://)",
                    url.split("://").next().unwrap_or_default()
                ),
            });
        } else if url.is_empty() {
            return Err(ObjectError::BadUrl {
                reason: "empty object store location".to_owned(),
            });
        } else {
            Backend::Local(LocalBackend::new(PathBuf::from(url)))
        };
        Ok(ObjectStore { backend, runtime })
    }

    /// Where the objects are, for logs: the directory, or bucket, prefix and endpoint (never
    /// credentials).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Local(local) => format!("file://{}", local.root().display()),
            Backend::S3(s3) => s3.describe(),
        }
    }

    /// The blocking API, for plain threads (not tokio workers).
    pub fn blocking(&self) -> BlockingObjects<'_> {
        BlockingObjects { store: self }
    }

    /// Stores the file at `path` as object `key` (streamed, never whole in memory); returns its
    /// length. On S3 a file over 5 GiB is refused ([`ObjectError::TooLarge`]).
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<u64, ObjectError> {
        check_key(key, false)?;
        match &self.backend {
            Backend::Local(local) => {
                let (local, key_owned, path) = (local.clone(), key.to_owned(), path.to_owned());
                run_blocking(key, move || local.put_file(&key_owned, &path)).await
            }
            Backend::S3(s3) => retried(|| s3.put_file(key, path)).await,
        }
    }

    /// Stores `data` as object `key`.
    pub async fn put_bytes(&self, key: &str, data: Bytes) -> Result<(), ObjectError> {
        check_key(key, false)?;
        match &self.backend {
            Backend::Local(local) => {
                let (local, key_owned) = (local.clone(), key.to_owned());
                run_blocking(key, move || local.put_bytes(&key_owned, &data)).await
            }
            Backend::S3(s3) => retried(|| s3.put_bytes(key, data.clone())).await,
        }
    }

    /// Bytes `range` (`start..end`, end excluded) of object `key`, as a stream. A range past the
    /// object's end is an error ([`ObjectError::Range`]); an empty range sends no request.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<ObjectBody, ObjectError> {
        check_key(key, false)?;
        if range.start > range.end {
            return Err(ObjectError::Range {
                key: key.to_owned(),
                start: range.start,
                end: range.end,
                size: None,
            });
        }
        if range.is_empty() {
            return Ok(ObjectBody::empty(key));
        }
        match &self.backend {
            Backend::Local(local) => {
                let (local, key_owned, range_owned) =
                    (local.clone(), key.to_owned(), range.clone());
                let file =
                    run_blocking(key, move || local.open_range(&key_owned, &range_owned)).await?;
                Ok(ObjectBody::file(
                    key,
                    tokio::fs::File::from_std(file),
                    range.end - range.start,
                ))
            }
            Backend::S3(s3) => retried(|| s3.get_range(key, range.clone())).await,
        }
    }

    /// The size of object `key` in bytes ([`ObjectError::NotFound`] when there is none).
    pub async fn size(&self, key: &str) -> Result<u64, ObjectError> {
        check_key(key, false)?;
        match &self.backend {
            Backend::Local(local) => {
                let (local, key_owned) = (local.clone(), key.to_owned());
                run_blocking(key, move || local.size(&key_owned)).await
            }
            Backend::S3(s3) => retried(|| s3.size(key)).await,
        }
    }

    /// Deletes object `key`; deleting a missing object is not an error (as on S3).
    pub async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        check_key(key, false)?;
        match &self.backend {
            Backend::Local(local) => {
                let (local, key_owned) = (local.clone(), key.to_owned());
                run_blocking(key, move || local.delete(&key_owned)).await
            }
            Backend::S3(s3) => retried(|| s3.delete(key)).await,
        }
    }

    /// The keys that start with `prefix` (`batches/42/` for one batch's objects; `""` for all),
    /// sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        check_key(prefix, true)?;
        match &self.backend {
            Backend::Local(local) => {
                let (local, prefix_owned) = (local.clone(), prefix.to_owned());
                run_blocking(prefix, move || local.list(&prefix_owned)).await
            }
            Backend::S3(s3) => retried(|| s3.list(prefix)).await,
        }
    }

    /// Creates the S3 bucket (tests start from an empty server).
    #[cfg(test)]
    async fn create_bucket(&self) -> Result<(), ObjectError> {
        match &self.backend {
            Backend::Local(_) => Ok(()),
            Backend::S3(s3) => s3.create_bucket().await,
        }
    }
}

/// Runs a local backend call on tokio's blocking pool.
async fn run_blocking<T: Send + 'static>(
    key: &str,
    call: impl FnOnce() -> Result<T, ObjectError> + Send + 'static,
) -> Result<T, ObjectError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| ObjectError::Task {
            key: key.to_owned(),
            reason: e.to_string(),
        })?
}

/// The blocking form of [`ObjectStore`]'s calls, for plain threads. Each call waits on the
/// store's runtime; calling one from inside a tokio worker panics (tokio forbids blocking there).
#[derive(Clone, Copy, Debug)]
pub struct BlockingObjects<'a> {
    store: &'a ObjectStore,
}

impl BlockingObjects<'_> {
    /// [`ObjectStore::put_file`], blocking.
    pub fn put_file(&self, key: &str, path: &Path) -> Result<u64, ObjectError> {
        self.store.runtime.block_on(self.store.put_file(key, path))
    }

    /// [`ObjectStore::put_bytes`], blocking.
    pub fn put_bytes(&self, key: &str, data: impl Into<Bytes>) -> Result<(), ObjectError> {
        self.store
            .runtime
            .block_on(self.store.put_bytes(key, data.into()))
    }

    /// Copies bytes `range` of object `key` into `out`; returns the number of bytes copied (the
    /// range's length: anything else is an error).
    pub fn read_range_to(
        &self,
        key: &str,
        range: Range<u64>,
        out: &mut impl Write,
    ) -> Result<u64, ObjectError> {
        self.store.runtime.block_on(async {
            let mut body = self.store.get_range(key, range).await?;
            let mut copied = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    out.write_all(&data).map_err(|source| ObjectError::Io {
                        key: key.to_owned(),
                        source,
                    })?;
                    copied += data.len() as u64;
                }
            }
            Ok(copied)
        })
    }

    /// Bytes `range` of object `key`, in memory.
    pub fn read_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>, ObjectError> {
        let mut out = Vec::new();
        self.read_range_to(key, range, &mut out)?;
        Ok(out)
    }

    /// [`ObjectStore::size`], blocking.
    pub fn size(&self, key: &str) -> Result<u64, ObjectError> {
        self.store.runtime.block_on(self.store.size(key))
    }

    /// [`ObjectStore::delete`], blocking.
    pub fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.store.runtime.block_on(self.store.delete(key))
    }

    /// [`ObjectStore::list`], blocking.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        self.store.runtime.block_on(self.store.list(prefix))
    }
}

#[cfg(test)]
mod tests;
