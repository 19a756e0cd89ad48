//! Seed 001's User API: administrators create, read, list, update and remove users; every user
//! changes their own contact details, e-mail and password; login and e-mail checks.

use super::auth_api::Caller;
use super::{ApiError, AppState, Shared};
use crate::store::{UserContact, UserId};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
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
    person(&caller)?;
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
    admin(&caller)?;
    let taken = state
        .store(move |store| Ok(store.find_user_by_name(&query.username)?.is_some()))
        .await?;
    Ok(Json(taken))
}

/// 403 for an API client: it has a secret, reset by its administrator, and no contact details.
fn person(caller: &crate::auth::Principal) -> Result<(), ApiError> {
    match caller.client {
        Some(_) => Err(ApiError::forbidden(
            "an API client has no password or contact details of its own; its administrator resets its secret (POST /api/v1/credentials/{id}/reset)",
        )),
        None => Ok(()),
    }
}

/// What the caller may do to users: ADMIN administers everyone; ECO_ADMIN and ORG_ADMIN the
/// people of their own organization, granting roles up to their own and leaving alone anyone
/// who ranks above them.
struct UserAdmin {
    /// `None`: every organization.
    organization: Option<i64>,
    /// The highest role the caller holds (and may grant).
    rank: usize,
}

/// A role's rank: USER 0, ORG_ADMIN 1, ECO_ADMIN 2, ADMIN 3.
fn rank(role: crate::auth::Role) -> usize {
    crate::auth::Role::ALL
        .iter()
        .position(|r| *r == role)
        .unwrap_or(0)
}

/// The highest rank among role names (unknown names rank as USER).
fn highest(roles: &[impl AsRef<str>]) -> usize {
    roles
        .iter()
        .filter_map(|name| crate::auth::Role::parse(name.as_ref()))
        .map(rank)
        .max()
        .unwrap_or(0)
}

fn admin(caller: &crate::auth::Principal) -> Result<UserAdmin, ApiError> {
    use crate::auth::Role;
    person(caller)?;
    let rank = highest(&caller.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>());
    if caller.is_admin() {
        Ok(UserAdmin {
            organization: None,
            rank,
        })
    } else if caller.has_role(Role::EcoAdmin) || caller.has_role(Role::OrgAdmin) {
        Ok(UserAdmin {
            organization: Some(caller.organization_id),
            rank,
        })
    } else {
        Err(ApiError::forbidden(
            "users are administered by ADMIN, and by ECO_ADMIN and ORG_ADMIN in their organization",
        ))
    }
}

impl UserAdmin {
    /// 403 unless the caller may act in `organization`.
    fn in_organization(&self, organization: i64) -> Result<(), ApiError> {
        match self.organization {
            Some(own) if own != organization => Err(ApiError::forbidden(format!(
                "organizationId: you administer the users of organization {own} only"
            ))),
            _ => Ok(()),
        }
    }

    /// 403 when `roles` include one above the caller's own.
    fn may_grant(&self, roles: &[&str]) -> Result<(), ApiError> {
        if highest(roles) > self.rank {
            return Err(ApiError::forbidden(format!(
                "userPrivileges: you may grant roles up to {} only",
                crate::auth::Role::ALL[self.rank]
            )));
        }
        Ok(())
    }

    /// 404 for an API client or (for a scoped administrator) a user of another organization,
    /// so ids cannot be probed; 403 for a user who ranks above the caller.
    fn may_manage(&self, user: &crate::store::UserRow) -> Result<(), ApiError> {
        if user.client
            || self
                .organization
                .is_some_and(|own| own != user.organization.0)
        {
            return Err(ApiError::not_found(format!("no user {}", user.id.0)));
        }
        if highest(&user.roles) > self.rank {
            return Err(ApiError::forbidden(format!(
                "user {} holds a role above yours",
                user.id.0
            )));
        }
        Ok(())
    }
}

/// The user `id` if the caller may administer them (see [`UserAdmin::may_manage`]).
async fn managed(
    state: &Shared,
    admin: &UserAdmin,
    id: i64,
) -> Result<crate::store::UserRow, ApiError> {
    let user = state
        .store(move |store| Ok(store.user(UserId(id))?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))?;
    admin.may_manage(&user)?;
    Ok(user)
}

/// Seed 001's name rule: `^[A-Za-z]{1,50}$`.
fn name(field: &str, value: Option<&str>) -> Result<String, ApiError> {
    let value = value.unwrap_or_default();
    if (1..=50).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::bad_request(format!(
            "{field}: 1 to 50 letters A-Z or a-z"
        )))
    }
}

/// Contact details of a create or update body, each checked by seed 001's rule.
fn contact(
    first: Option<&str>,
    last: Option<&str>,
    phone: Option<&str>,
    email: Option<&str>,
) -> Result<UserContact, ApiError> {
    let phone = phone.unwrap_or_default().trim();
    if !super::organizations_api::phone(phone) {
        return Err(ApiError::bad_request(
            "phone: digits in groups, such as +38 050 492 4110",
        ));
    }
    Ok(UserContact {
        first_name: name("firstName", first)?,
        last_name: name("lastName", last)?,
        phone: phone.to_owned(),
        email: checked_email(email)?,
    })
}

fn checked_email(email: Option<&str>) -> Result<String, ApiError> {
    let email = email.unwrap_or_default().trim();
    if super::organizations_api::email(email) {
        Ok(email.to_owned())
    } else {
        Err(ApiError::bad_request(
            "email: must be a well-formed email address",
        ))
    }
}

/// A privilege of seed 001's user object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Privilege {
    user_role: String,
    organization_id: Option<i64>,
    #[serde(default)]
    accessible_profiles: Option<Vec<u64>>,
}

/// Roles and profile names from a list of privileges (one organization, as certmill users
/// act for one): `None` profiles means all.
fn access(
    state: &AppState,
    privileges: &[Privilege],
    organization: i64,
) -> Result<(Vec<&'static str>, Option<Vec<String>>), ApiError> {
    if privileges.is_empty() {
        return Err(ApiError::bad_request("userPrivileges: at least one role"));
    }
    let mut roles = Vec::new();
    let mut profiles: Option<Vec<String>> = None;
    for (i, privilege) in privileges.iter().enumerate() {
        let role = crate::auth::Role::parse(&privilege.user_role).ok_or_else(|| {
            ApiError::bad_request(format!(
                "userPrivileges[{i}].userRole: USER, ORG_ADMIN, ECO_ADMIN or ADMIN"
            ))
        })?;
        if privilege.organization_id.is_some_and(|o| o != organization) {
            return Err(ApiError::bad_request(format!(
                "userPrivileges[{i}].organizationId: a user acts for one organization, {organization}"
            )));
        }
        if !roles.contains(&role.as_str()) {
            roles.push(role.as_str());
        }
        if let Some(ids) = &privilege.accessible_profiles {
            let list = profiles.get_or_insert_with(Vec::new);
            for id in ids {
                let served = state.profiles.iter().find(|p| p.id == *id).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "userPrivileges[{i}].accessibleProfiles: no profile {id}"
                    ))
                })?;
                let profile = served.profile.name().to_owned();
                if !list.contains(&profile) {
                    list.push(profile);
                }
            }
        }
    }
    Ok((roles, profiles.filter(|list| !list.is_empty())))
}

/// `PUT /api/v1/users` body (seed 001 "Create User").
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserRequest {
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    organization_id: Option<i64>,
    credentials: Option<NewCredentials>,
    #[serde(default)]
    user_privileges: Vec<Privilege>,
    #[serde(default)]
    is_admin: bool,
}

/// Login and password of a new user.
#[derive(Deserialize)]
pub struct NewCredentials {
    login: String,
    password: String,
}

/// `PUT /api/v1/users` (ADMIN): creates a user and answers its id.
pub async fn create(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<CreateUserRequest>,
) -> Result<Json<i64>, ApiError> {
    let admin = admin(&caller)?;
    let organization = request
        .organization_id
        .ok_or_else(|| ApiError::bad_request("organizationId is required"))?;
    admin.in_organization(organization)?;
    let contact = contact(
        request.first_name.as_deref(),
        request.last_name.as_deref(),
        request.phone.as_deref(),
        request.email.as_deref(),
    )?;
    let credentials = request
        .credentials
        .ok_or_else(|| ApiError::bad_request("credentials is required"))?;
    // Seed 001: `^[\w]{5,30}$`.
    let login = credentials.login;
    if !(5..=30).contains(&login.len())
        || !login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(ApiError::bad_request(
            "credentials.login: 5 to 30 letters, digits or '_'",
        ));
    }
    let (mut roles, profiles) = access(&state, &request.user_privileges, organization)?;
    if request.is_admin && !roles.contains(&"ADMIN") {
        roles.push("ADMIN");
    }
    admin.may_grant(&roles)?;
    let password = credentials.password;
    let id = state
        .store(move |store| {
            let live = store
                .organization(crate::store::OrganizationId(organization))?
                .is_some();
            if !live {
                return Err(ApiError::bad_request(format!(
                    "organizationId: no organization {organization}"
                )));
            }
            let hash = crate::auth::hash_password(&password)?;
            let id = store
                .create_user(&crate::store::NewUser {
                    username: &login,
                    password_hash: &hash,
                    organization: crate::store::OrganizationId(organization),
                    roles: &roles,
                    profiles: profiles.as_deref(),
                })?
                .ok_or_else(|| ApiError::conflict(format!("credentials.login {login}: taken")))?;
            if let Err(refused) = store.set_user_contact(id, &contact) {
                // The address was taken meanwhile: the user goes again, whole.
                store.remove_user(id)?;
                return Err(refused.into());
            }
            Ok(id)
        })
        .await?;
    Ok(Json(id.0))
}

/// The user with this id and their organization's name; 404 when none.
async fn user_with_contact(state: &Shared, id: i64) -> Result<Value, ApiError> {
    let state_ = state.clone();
    let (user, contact, organization) = state
        .store(move |store| {
            let user = store
                .user(UserId(id))?
                .ok_or_else(|| ApiError::not_found(format!("no user {id}")))?;
            let contact = store.user_contact(user.id)?.unwrap_or_default();
            let organization = store
                .organization(user.organization)?
                .map(|o| o.details.name);
            Ok((user, contact, organization))
        })
        .await?;
    Ok(super::catalog::user_json(
        &state_,
        &user,
        &contact,
        organization.as_deref(),
    ))
}

/// `GET /api/v1/users/{userId}` (ADMIN).
pub async fn get(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let admin = admin(&caller)?;
    managed(&state, &admin, id).await?;
    Ok(Json(user_with_contact(&state, id).await?))
}

/// `?role=` of the organization's user list.
#[derive(Deserialize)]
pub struct RoleQuery {
    role: Option<String>,
    filter: Option<String>,
}

/// `searchLine` of the organization's user list.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    search_line: Option<String>,
}

/// `POST /api/v1/users/organizations/{organizationId}?role=` (ADMIN): the organization's users
/// with the role (any when absent) whose login, names or e-mail contain `searchLine` (case
/// ignored).
pub async fn of_organization(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(organization): Path<i64>,
    Query(query): Query<RoleQuery>,
    body: Option<Json<SearchRequest>>,
) -> Result<Json<Value>, ApiError> {
    if admin(&caller)?
        .organization
        .is_some_and(|own| own != organization)
    {
        return Err(ApiError::not_found(format!(
            "no organization {organization}"
        )));
    }
    let role = match query.role.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            crate::auth::Role::parse(&text.to_ascii_uppercase())
                .ok_or_else(|| ApiError::bad_request(format!("role {text:?}: no such role")))?,
        ),
    };
    let search = body
        .and_then(|Json(b)| b.search_line)
        .map(|s| s.to_lowercase())
        .filter(|s| !s.is_empty());
    let filter = crate::filter::compile(
        query.filter.as_deref().unwrap_or(""),
        crate::store::USER_FIELDS,
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (users, name) = state
        .store(move |store| {
            let record = store
                .organization(crate::store::OrganizationId(organization))?
                .ok_or_else(|| ApiError::not_found(format!("no organization {organization}")))?;
            Ok((
                store.users_of_matching(crate::store::OrganizationId(organization), &filter)?,
                record.details.name,
            ))
        })
        .await?;
    let list: Vec<Value> = users
        .iter()
        .filter(|(user, _)| role.is_none_or(|r| user.roles.iter().any(|n| n == r.as_str())))
        .filter(|(user, contact)| {
            search.as_deref().is_none_or(|needle| {
                [
                    user.username.as_str(),
                    &contact.first_name,
                    &contact.last_name,
                    &contact.email,
                ]
                .iter()
                .any(|field| field.to_lowercase().contains(needle))
            })
        })
        .map(|(user, contact)| super::catalog::user_json(&state, user, contact, Some(&name)))
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `PUT /api/v1/users/{userId}` body (seed 001 "Update User").
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateUserRequest {
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    #[serde(default)]
    user_privileges: Vec<Privilege>,
}

/// `PUT /api/v1/users/{userId}` (ADMIN): contact details and, when given, roles and
/// accessible profiles.
pub async fn update(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Path(id): Path<i64>,
    Json(request): Json<UpdateUserRequest>,
) -> Result<Json<Value>, ApiError> {
    let admin = admin(&caller)?;
    let contact = contact(
        request.first_name.as_deref(),
        request.last_name.as_deref(),
        request.phone.as_deref(),
        request.email.as_deref(),
    )?;
    let current = managed(&state, &admin, id).await?;
    let access = if request.user_privileges.is_empty() {
        None
    } else {
        Some(access(
            &state,
            &request.user_privileges,
            current.organization.0,
        )?)
    };
    if let Some((roles, _)) = &access {
        admin.may_grant(roles)?;
    }
    if id == caller.user_id
        && caller.is_admin()
        && access
            .as_ref()
            .is_some_and(|(roles, _)| !roles.contains(&"ADMIN"))
    {
        return Err(ApiError::conflict(
            "an administrator cannot take the role ADMIN from themselves",
        ));
    }
    state
        .store(move |store| {
            store.set_user_contact(UserId(id), &contact)?;
            if let Some((roles, profiles)) = &access {
                store.set_user_access(UserId(id), roles, profiles.as_deref())?;
            }
            Ok(())
        })
        .await?;
    Ok(Json(user_with_contact(&state, id).await?))
}

/// `PUT /api/v1/users/current` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CurrentUserRequest {
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
}

/// `PUT /api/v1/users/current`: the caller's own contact details.
pub async fn update_current(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<CurrentUserRequest>,
) -> Result<Json<Value>, ApiError> {
    person(&caller)?;
    let contact = contact(
        request.first_name.as_deref(),
        request.last_name.as_deref(),
        request.phone.as_deref(),
        request.email.as_deref(),
    )?;
    let id = caller.user_id;
    state
        .store(move |store| {
            store.set_user_contact(UserId(id), &contact)?;
            Ok(())
        })
        .await?;
    Ok(Json(user_with_contact(&state, id).await?))
}

/// `PUT /api/v1/users/update_email` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    email: Option<String>,
}

/// `PUT /api/v1/users/update_email`: the caller's own e-mail address.
pub async fn update_email(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Json(request): Json<EmailRequest>,
) -> Result<Json<Value>, ApiError> {
    person(&caller)?;
    let email = checked_email(request.email.as_deref())?;
    let id = caller.user_id;
    state
        .store(move |store| {
            let mut contact = store.user_contact(UserId(id))?.unwrap_or_default();
            contact.email = email;
            store.set_user_contact(UserId(id), &contact)?;
            Ok(())
        })
        .await?;
    Ok(Json(user_with_contact(&state, id).await?))
}

/// `?email=` of check_email.
#[derive(Deserialize)]
pub struct EmailQuery {
    email: String,
}

/// `GET /api/v1/users/check_email?email=` (ADMIN): `true` when a user has this address.
pub async fn check_email(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<EmailQuery>,
) -> Result<Json<bool>, ApiError> {
    admin(&caller)?;
    let taken = state
        .store(move |store| Ok(store.email_taken(&query.email)?))
        .await?;
    Ok(Json(taken))
}

/// `?userId=` of remove_user.
#[derive(Deserialize)]
pub struct UserIdQuery {
    #[serde(rename = "userId")]
    user_id: i64,
}

/// `GET /api/v1/users/remove_user?userId=` (ADMIN; the seed's method): removes the user and
/// ends their sessions. An administrator cannot remove themselves.
pub async fn remove(
    State(state): State<Shared>,
    Caller(caller): Caller,
    Query(query): Query<UserIdQuery>,
) -> Result<Json<bool>, ApiError> {
    let admin = admin(&caller)?;
    if query.user_id == caller.user_id {
        return Err(ApiError::conflict(
            "an administrator cannot remove themselves",
        ));
    }
    let id = query.user_id;
    managed(&state, &admin, id).await?;
    let removed = state
        .store(move |store| Ok(store.remove_user(UserId(id))?))
        .await?;
    if !removed {
        return Err(ApiError::not_found(format!("no user {id}")));
    }
    Ok(Json(true))
}
