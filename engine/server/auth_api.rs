//! Seed 001 "Authentication API" (`/auth/pwd`, `/auth/refresh`, the password reset of
//! `/auth/reset`, `/auth/validate-code`, `/auth/update`), seed 002's client credentials
//! (`/auth/token`), and the bearer-token check every `/api/v1` handler starts with
//! ([`Caller`]).

use super::{ApiError, Shared};
use crate::auth::{AuthError, Principal, ResetRequest, RESET_CODE_LIFETIME_SECS};
use crate::mail::Mail;
use axum::extract::{ConnectInfo, Form, FromRequestParts, MatchedPath, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64ct::Encoding;
use serde::Deserialize;
use std::net::SocketAddr;
use zeroize::Zeroizing;

/// The authenticated caller of an `/api/v1` endpoint.
pub struct Caller(pub Principal);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let state = state.clone();
        // verify_access and verify_download read the user from the store: blocking calls.
        let principal = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ApiError::unauthorized(
                            "the Authorization header must be Bearer <accessToken>",
                        )
                    })?
                    .to_owned();
                tokio::task::spawn_blocking(move || state.auth.verify_access(&token)).await??
            }
            // A download link carries a ticket for its batch instead of a header.
            None => match download_ticket(parts, &state).await {
                Some((batch, ticket)) => {
                    tokio::task::spawn_blocking(move || state.auth.verify_download(&ticket, batch))
                        .await??
                }
                None => {
                    return Err(ApiError::unauthorized(
                        "an Authorization: Bearer <accessToken> header is required",
                    ))
                }
            },
        };
        // The route table says which roles may call this endpoint at all.
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .and_then(|matched| super::api::find(parts.method.as_str(), matched.as_str()));
        match route {
            Some(route) if route.access.allows(&principal) => Ok(Caller(principal)),
            Some(route) if route.access.roles().is_empty() => Err(ApiError::forbidden(format!(
                "{} {} is for people, not API clients",
                route.method, route.path
            ))),
            Some(route) => {
                let roles: Vec<&str> = route.access.roles().iter().map(|r| r.as_str()).collect();
                Err(ApiError::forbidden(format!(
                    "{} {} needs the role {}",
                    route.method,
                    route.path,
                    roles.join(" or ")
                )))
            }
            None => Err(ApiError::internal(format!(
                "no route entry for {} {:?}",
                parts.method,
                parts
                    .extensions
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
            ))),
        }
    }
}

/// The path of the one endpoint a download ticket opens.
const DOWNLOAD_ROUTE: &str = "/api/v1/batches/{batchId}/download";

/// `?ticket=` of a download link.
#[derive(Deserialize)]
struct TicketQuery {
    ticket: String,
}

/// `(batch, ticket)` of a `GET /api/v1/batches/{batchId}/download?ticket=` request, read by
/// the same extractors as the handler's.
async fn download_ticket(parts: &mut Parts, state: &Shared) -> Option<(i64, String)> {
    let matched = parts.extensions.get::<MatchedPath>()?;
    if matched.as_str() != DOWNLOAD_ROUTE {
        return None;
    }
    let Query(TicketQuery { ticket }) = Query::try_from_uri(&parts.uri).ok()?;
    let Path(batch) = Path::<i64>::from_request_parts(parts, state).await.ok()?;
    Some((batch, ticket))
}

/// `POST /auth/pwd` body.
#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

/// `POST /auth/pwd`: `{accessToken, refreshToken}`.
pub async fn login(
    State(state): State<Shared>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Json(credentials): Json<Credentials>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // argon2 is deliberately slow: never on an async worker.
    let tokens = tokio::task::spawn_blocking(move || {
        state
            .auth
            .login(&credentials.username, &credentials.password, client.ip())
    })
    .await??;
    Ok(Json(serde_json::json!({
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token,
    })))
}

/// `POST /auth/refresh` (body: the refresh token): `{accessToken, refreshToken}`. The refresh
/// token rotates: the one presented is spent, and the response carries its successor.
pub async fn refresh(
    State(state): State<Shared>,
    body: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = body.trim().trim_matches('"').to_owned();
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "the request body must be the refresh token",
        ));
    }
    let tokens = tokio::task::spawn_blocking(move || state.auth.refresh(&token)).await??;
    Ok(Json(serde_json::json!({
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token,
    })))
}

/// `?login=` of `POST /auth/reset`.
#[derive(Deserialize)]
pub struct LoginQuery {
    login: Option<String>,
}

/// Longest login accepted by `/auth/reset` (an e-mail address is at most 254 characters).
const MAX_LOGIN_CHARS: usize = 254;

/// `POST /auth/reset?login=`: mails a one-time code to the person with this username or
/// e-mail address. `true` once the request is recorded (whether or not the login names anyone,
/// so the answer reveals nothing), `false` when the login had a request within 15 minutes; 503
/// when the server has no `--smtp-url`.
pub async fn reset(
    State(state): State<Shared>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(query): Query<LoginQuery>,
) -> Result<Json<bool>, ApiError> {
    let Some(outbox) = state.outbox.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "password reset by e-mail is not configured on this server (certmill serve --smtp-url)",
        ));
    };
    let login = query.login.unwrap_or_default().trim().to_owned();
    if login.is_empty()
        || login.chars().count() > MAX_LOGIN_CHARS
        || login.contains(char::is_control)
    {
        return Err(ApiError::bad_request(
            "login: a username or e-mail address of 1 to 254 characters",
        ));
    }
    let request = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.auth.request_reset(&login, client.ip())).await??
    };
    if let ResetRequest::Send { to, code, .. } = &request {
        // The mail thread sends it: the answer does not wait for (or time) the relay.
        outbox.post(reset_mail(&state.public_url, to, code));
    }
    Ok(Json(request.accepted()))
}

/// The reset mail: the code, a link carrying it, and what to do if it was not asked for.
fn reset_mail(public_url: &str, to: &str, code: &str) -> Mail {
    let minutes = RESET_CODE_LIFETIME_SECS / 60;
    Mail {
        to: to.to_owned(),
        subject: "certmill password reset".to_owned(),
        body: format!(
            "Someone asked to reset the password of your certmill account.\n\n\
             To choose a new password, open\n\n    {public_url}/reset-password?code={code}\n\n\
             or send this code with the new password to POST {public_url}/auth/update:\n\n    \
             {code}\n\n\
             The code works once, for {minutes} minutes. If you did not ask for it, ignore this \
             mail: your password stays as it is.\n"
        ),
    }
}

/// `?code=` of `POST /auth/validate-code`.
#[derive(Deserialize)]
pub struct CodeQuery {
    code: Option<String>,
}

/// `POST /auth/validate-code?code=`: `true` while the code is unused and unexpired. Wrong
/// codes count against the client address (429 past the limit).
pub async fn validate_code(
    State(state): State<Shared>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(query): Query<CodeQuery>,
) -> Result<Json<bool>, ApiError> {
    let code = checked_code(query.code.as_deref())?;
    let valid =
        tokio::task::spawn_blocking(move || state.auth.validate_reset_code(&code, client.ip()))
            .await??;
    Ok(Json(valid))
}

/// A reset code as sent: a UUID (36 characters). Anything else is refused before the store.
fn checked_code(code: Option<&str>) -> Result<String, ApiError> {
    let code = code.unwrap_or_default().trim();
    if code.len() == 36 && code.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(code.to_ascii_lowercase())
    } else {
        Err(ApiError::bad_request(
            "code: the code from the reset mail (a UUID such as bed76301-92ff-413b-9f7a-bb876183cb79)",
        ))
    }
}

/// `POST /auth/update` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    code: Option<String>,
    updated_password: Option<UpdatedPassword>,
}

/// The new password, twice.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedPassword {
    new_password: Option<String>,
    repeated_new_password: Option<String>,
}

/// `POST /auth/update`: sets the new password with a reset code. 204 once changed (the code is
/// spent and every session of the user ends); 400 when the code is unknown, used or expired,
/// when the repeat differs or the password breaks the policy (the code then stays usable).
pub async fn update_password(
    State(state): State<Shared>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Json(request): Json<UpdateRequest>,
) -> Result<StatusCode, ApiError> {
    let code = checked_code(request.code.as_deref())?;
    let updated = request
        .updated_password
        .ok_or_else(|| ApiError::bad_request("updatedPassword: required"))?;
    let new = Zeroizing::new(updated.new_password.unwrap_or_default());
    let repeated = Zeroizing::new(updated.repeated_new_password.unwrap_or_default());
    if new.is_empty() {
        return Err(ApiError::bad_request(
            "updatedPassword.newPassword: required",
        ));
    }
    if *new != *repeated {
        return Err(ApiError::bad_request(
            "updatedPassword.repeatedNewPassword: differs from newPassword",
        ));
    }
    let changed =
        tokio::task::spawn_blocking(move || state.auth.reset_password(&code, &new, client.ip()))
            .await?
            .map_err(|e| match e {
                AuthError::InvalidPassword { reason } => {
                    ApiError::bad_request(format!("updatedPassword.newPassword: {reason}"))
                }
                other => other.into(),
            })?;
    if changed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::bad_request(
            "code: unknown, already used or expired; ask for a new one with POST /auth/reset",
        ))
    }
}

/// `POST /auth/token` form (RFC 6749 §4.4.2).
#[derive(Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /auth/token` (`application/x-www-form-urlencoded`, `grant_type=client_credentials`):
/// an API client's access token (RFC 6749 §4.4). The client authenticates with HTTP Basic or
/// with `client_id` and `client_secret` in the form. Answers `{access_token, token_type,
/// expires_in}` with `Cache-Control: no-store`; errors are RFC 6749 §5.2's (`invalid_client`
/// 401, `unsupported_grant_type` 400), and failures are throttled like password logins.
pub async fn token(
    State(state): State<Shared>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<TokenRequest>,
) -> Result<Response, ApiError> {
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type: only client_credentials is supported",
            ))
        }
        None => {
            return Err(ApiError::bad_request(
                "grant_type: required (client_credentials)",
            ))
        }
    }
    let (id, secret) = match (
        basic_credentials(&headers)?,
        form.client_id,
        form.client_secret,
    ) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(ApiError::bad_request(
                "client credentials: in the Authorization header or in the form, not both",
            ))
        }
        (Some(basic), None, None) => basic,
        (None, Some(id), Some(secret)) => (id, Zeroizing::new(secret)),
        (None, _, _) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client_id and client_secret are required (HTTP Basic or form)",
            ))
        }
    };
    let issued =
        tokio::task::spawn_blocking(move || state.auth.client_token(&id, &secret, client.ip()))
            .await?
            .map_err(|e| match e {
                AuthError::InvalidCredentials => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "unknown client, wrong secret or locked client",
                ),
                other => other.into(),
            })?;
    let body = serde_json::json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    });
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The client id and secret of an `Authorization: Basic` header, if there is one.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, Zeroizing<String>)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the Authorization header must be Basic base64(client_id:client_secret)",
        )
    };
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .ok_or_else(refused)?;
    let decoded =
        Zeroizing::new(base64ct::Base64::decode_vec(encoded.trim()).map_err(|_| refused())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| refused())?;
    let (id, secret) = text.split_once(':').ok_or_else(refused)?;
    Ok(Some((id.to_owned(), Zeroizing::new(secret.to_owned()))))
}
