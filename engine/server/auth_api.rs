//! Seed 001 "Authentication API" (`/auth/pwd`, `/auth/refresh`) and the bearer-token check
//! every `/api/v1` handler starts with ([`Caller`]).

use super::{ApiError, Shared};
use crate::auth::Principal;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::{header, request::Parts};
use axum::Json;
use serde::Deserialize;
use std::net::SocketAddr;

/// The authenticated caller of an `/api/v1` endpoint.
pub struct Caller(pub Principal);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("an Authorization: Bearer <accessToken> header is required")
        })?;
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
                ApiError::unauthorized("the Authorization header must be Bearer <accessToken>")
            })?
            .to_owned();
        let state = state.clone();
        // verify_access reads the user from the store: a blocking call.
        let principal =
            tokio::task::spawn_blocking(move || state.auth.verify_access(&token)).await??;
        Ok(Caller(principal))
    }
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
