//! `certmill users ...` and `certmill orgs ...`: who may use the HTTP API.
//!
//! Passwords come from a file's first line or from a prompt on the terminal (twice), never
//! from an argument, an environment variable or a log line.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use zeroize::Zeroizing;

use super::args::{OrgsCommand, UsersCommand};
use super::InvalidInput;
use crate::auth::{self, AuthError, Role};
use crate::store::{NewUser, OrganizationId, Store, StoreError};

/// Runs `certmill users ...`.
pub(super) fn users(data: &Path, command: UsersCommand) -> Result<()> {
    let store = Store::open(data)?;
    match command {
        UsersCommand::Add {
            username,
            org,
            roles,
            profiles,
            password_file,
        } => {
            auth::check_username(&username).map_err(input_error)?;
            let roles = parse_roles(&roles)?;
            if profiles.iter().any(|profile| profile.trim().is_empty()) {
                bail!(InvalidInput("--profile needs a profile name".into()));
            }
            let (organization, org_name) = organization(&store, org.as_deref())?;
            if store.find_user_by_name(&username)?.is_some() {
                bail!(InvalidInput(format!("user {username:?} already exists")));
            }
            let password = read_new_password(password_file.as_deref())?;
            let password_hash = auth::hash_password(&password).map_err(input_error)?;
            let role_names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
            let created = store.create_user(&NewUser {
                username: &username,
                password_hash: &password_hash,
                organization,
                roles: &role_names,
                profiles: (!profiles.is_empty()).then_some(&profiles[..]),
            })?;
            let Some(id) = created else {
                bail!(InvalidInput(format!("user {username:?} already exists")));
            };
            println!(
                "user {id} {username} (organization {org_name:?}, roles {})",
                role_names.join(",")
            );
        }
        UsersCommand::List => {
            let names: std::collections::HashMap<OrganizationId, String> = store
                .organizations()?
                .into_iter()
                .map(|org| (org.id, org.name))
                .collect();
            println!("ID\tUSERNAME\tORGANIZATION\tROLES\tPROFILES\tACTIVE");
            for user in store.list_users()? {
                let organization = names.get(&user.organization).map_or("?", String::as_str);
                let profiles = user
                    .profiles
                    .map_or_else(|| "*".to_owned(), |profiles| profiles.join(","));
                println!(
                    "{}\t{}\t{organization}\t{}\t{profiles}\t{}",
                    user.id,
                    user.username,
                    user.roles.join(","),
                    if user.active { "yes" } else { "no" }
                );
            }
        }
        UsersCommand::Passwd {
            username,
            password_file,
        } => {
            let Some(user) = store.find_user_by_name(&username)? else {
                bail!(InvalidInput(format!("no user {username:?}")));
            };
            let password = read_new_password(password_file.as_deref())?;
            let password_hash = auth::hash_password(&password).map_err(input_error)?;
            if !store.set_password(user.id, &password_hash)? {
                bail!(InvalidInput(format!("no user {username:?}")));
            }
            println!(
                "password of {} changed; its refresh tokens are revoked",
                user.username
            );
        }
    }
    Ok(())
}

/// Runs `certmill orgs ...`.
pub(super) fn orgs(data: &Path, command: OrgsCommand) -> Result<()> {
    let store = Store::open(data)?;
    match command {
        OrgsCommand::Add { name } => {
            let name = name.trim();
            if name.is_empty() {
                bail!(InvalidInput("an organization needs a name".into()));
            }
            let Some(id) = store.add_organization(name)? else {
                bail!(InvalidInput(format!(
                    "organization {name:?} already exists"
                )));
            };
            println!("organization {id} {name}");
        }
        OrgsCommand::List => {
            println!("ID\tNAME");
            for org in store.organizations()? {
                println!("{}\t{}", org.id, org.name);
            }
        }
    }
    Ok(())
}

/// The organization named `name`, or the default one (created if missing) when none is named.
fn organization(store: &Store, name: Option<&str>) -> Result<(OrganizationId, String)> {
    match name {
        None => Ok((
            store.default_organization()?,
            crate::store::DEFAULT_ORGANIZATION.to_owned(),
        )),
        Some(name) => match store.organization_by_name(name)? {
            Some(org) => Ok((org.id, org.name)),
            None => Err(anyhow!(InvalidInput(format!(
                "organization {name:?} does not exist (certmill orgs add {name:?})"
            )))),
        },
    }
}

/// The roles given (clap checked the names), without repeats; USER when none.
fn parse_roles(names: &[String]) -> Result<Vec<Role>> {
    let mut roles = Vec::new();
    for name in names {
        let role = Role::parse(name)
            .ok_or_else(|| anyhow!(InvalidInput(format!("unknown role {name:?}"))))?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    if roles.is_empty() {
        roles.push(Role::User);
    }
    Ok(roles)
}

/// A new password: the first line of `file`, or typed twice on the terminal.
fn read_new_password(file: Option<&Path>) -> Result<Zeroizing<String>> {
    if let Some(file) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading the password file {}", file.display()))?,
        );
        return Ok(Zeroizing::new(text.lines().next().unwrap_or("").to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        bail!(InvalidInput(
            "a password is required: --password-file FILE, or run on a terminal for a prompt"
                .into()
        ));
    }
    let first =
        Zeroizing::new(rpassword::prompt_password("password: ").context("reading the password")?);
    let second =
        Zeroizing::new(rpassword::prompt_password("again: ").context("reading the password")?);
    if first != second {
        bail!(InvalidInput("the passwords differ".into()));
    }
    Ok(first)
}

/// Refused input (username, password policy) becomes exit code 3; the rest stays a failure.
fn input_error(error: AuthError) -> anyhow::Error {
    match error {
        AuthError::InvalidPassword { .. } | AuthError::InvalidUsername { .. } => {
            anyhow!(InvalidInput(error.to_string()))
        }
        AuthError::Store(StoreError::OrganizationNotFound { .. }) => {
            anyhow!(InvalidInput(error.to_string()))
        }
        other => anyhow!(other),
    }
}
