//! Seed 001's user self-service and checks: changing one's own password, and whether a login
//! name is taken.

use super::auth_api::Caller;
use super::{ApiError, Shared};
use crate::store::UserId;
use axum::extract::{ConnectInfo, Query, State};
use axum::Json;
use serde::Deserialize;
use std::net::SocketAddr;

/// `PUT /api/v1/users/credentials` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialsRequest {
    current_password: String,
    new_password: String,
    repeated_new_password: String,
}

/// `PUT /api/v1/users/credentials`: the caller changes their own password. `true` once
/// changed (every refresh token of the user is revoked), `false` when `currentPassword` is
/// wrong (counted like a failed login); 400 when the two new passwords differ or the new one
/// breaks the policy. The seed limits it to ADMIN; certmill lets every user change their own.
pub async fn change_password(
    State(state): State<Shared>,
    Caller(caller): Caller,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Json(request): Json<CredentialsRequest>,
) -> Result<Json<bool>, ApiError> {
    if request.new_password != request.repeated_new_password {
        return Err(ApiError::bad_request(
            "repeatedNewPassword: differs from newPassword",
        ));
    }
    if request.new_password == request.current_password {
        return Err(ApiError::bad_request(
            "newPassword: must differ from currentPassword",
        ));
    }
    let changed = tokio::task::spawn_blocking(move || {
        state.auth.change_password(
            UserId(caller.user_id),
            &request.current_password,
            &request.new_password,
            client.ip(),
        )
    })
    .await??;
    Ok(Json(changed))
}

/// `?username=` of check_user.
#[derive(Deserialize)]
pub struct UsernameQuery {
    username: String,
}

/// `GET /api/v1/users/check_user?username=` (ADMIN): `true` when a user has this login name
/// (ASCII case ignored, as logins are).
pub async fn check_user(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<UsernameQuery>,
) -> Result<Json<bool>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden("checking logins needs the role ADMIN"));
    }
    let taken = state
        .store(move |store| Ok(store.find_user_by_name(&query.username)?.is_some()))
        .await?;
    Ok(Json(taken))
}
