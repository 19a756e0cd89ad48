//! API errors: `{ "error": ..., "error_description": ... }` with the right status code.
//!
//! Every handler returns `Result<_, ApiError>`; engine errors convert here, in one place, so
//! the status a client sees for a given failure is the same on every endpoint. Messages are
//! the engine's own (they name the row, entry or field) and never carry a secret.

use crate::auth::AuthError;
use crate::batch::BatchError;
use crate::csr::CsrError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short machine-readable code (`invalid_request`, `not_found`, ...).
    pub error: &'static str,
    /// What went wrong, for a human.
    pub description: String,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `error` code and description.
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    /// 400: the request is invalid; the description names the field or row.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 404: no such object, or one the caller may not see (ids cannot be probed).
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 403: authenticated, but the role does not allow it.
    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", description)
    }

    /// 409: the object's state does not allow it (illegal transition).
    pub fn conflict(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", description)
    }

    /// 401: no valid access token.
    pub fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", description)
    }

    /// 500: a fault of the server; the description stays generic, the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        eprintln!("certmill serve: internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error; the server log has the cause",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"certmill\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match &e {
            AuthError::Throttled { retry_after_secs } => ApiError {
                retry_after: Some(*retry_after_secs),
                ..ApiError::new(status, "too_many_requests", e.to_string())
            },
            _ if status.is_server_error() => ApiError::internal(e),
            _ if status == StatusCode::UNAUTHORIZED => ApiError::unauthorized(e.to_string()),
            _ => ApiError::new(status, "invalid_request", e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::BatchNotFound { .. }
            | StoreError::AuthorityNotFound { .. }
            | StoreError::CertificateNotFound { .. }
            | StoreError::SignerNotFound { .. }
            | StoreError::OrganizationNotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::InvalidTransition { .. }
            | StoreError::NotRejectable { .. }
            | StoreError::NotRevocable { .. }
            | StoreError::NotOnHold { .. }
            | StoreError::NotDownloadable { .. }
            | StoreError::BatchNotPending { .. }
            | StoreError::SignerInUse { .. }
            | StoreError::SignerState { .. }
            | StoreError::OrganizationInUse { .. }
            | StoreError::OrganizationNameTaken { .. }
            | StoreError::AuthorityDeleted { .. }
            | StoreError::AuthorityDisabled { .. }
            | StoreError::AuthorityInUse { .. }
            | StoreError::AuthorityExists { .. }
            | StoreError::BalanceBelowCommitted { .. }
            | StoreError::EmailTaken { .. } => ApiError::conflict(e.to_string()),
            StoreError::InsufficientBalance { .. } => {
                ApiError::new(StatusCode::CONFLICT, "insufficient_balance", e.to_string())
            }
            StoreError::EmptyQuery
            | StoreError::InvalidSerialQuery { .. }
            | StoreError::BatchReasonRefused { .. } => ApiError::bad_request(e.to_string()),
            _ => ApiError::internal(e),
        }
    }
}

impl From<BatchError> for ApiError {
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::Store(store) => store.into(),
            BatchError::Io { .. }
            | BatchError::Zip(_)
            | BatchError::Unreachable(_)
            | BatchError::Key { .. }
            | BatchError::Sign { .. } => ApiError::internal(e),
            // Reading the spooled upload failed: the server's fault, and its path is internal.
            BatchError::Csr {
                source: CsrError::Io { .. } | CsrError::Changed { .. },
                ..
            } => ApiError::internal(e),
            // The CSV's message names the spooled file's path: the client sees its row only.
            BatchError::Csv { row, message, .. } => ApiError::bad_request(match row {
                Some(row) => format!("CSV, row {row}: {message}"),
                None => format!("CSV: {message}"),
            }),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<crate::signers::SignerError> for ApiError {
    fn from(e: crate::signers::SignerError) -> Self {
        use crate::ca::CaError;
        use crate::signers::SignerError;
        match e {
            SignerError::Store(store) => store.into(),
            SignerError::NotFound { .. } | SignerError::NoCurrentSigner(_) => {
                ApiError::not_found(e.to_string())
            }
            SignerError::IssuerExists(_) => ApiError::conflict(e.to_string()),
            SignerError::InvalidName(_)
            | SignerError::Ca(
                CaError::InvalidOption { .. }
                | CaError::KeyMismatch { .. }
                | CaError::ChainMismatch { .. }
                | CaError::NotCa { .. }
                | CaError::Pem { .. }
                | CaError::PemMissing { .. }
                | CaError::Certificate { .. }
                | CaError::SubjectChanged { .. }
                | CaError::NameNotReproducible { .. },
            ) => ApiError::bad_request(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// A blocking task that panicked or was cancelled.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(e)
    }
}
