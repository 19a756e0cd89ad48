//! `certmill users` and `certmill orgs`: the identities the HTTP API logs in.

use std::net::{IpAddr, Ipv4Addr};

use certmill::auth::{Auth, AuthError, Role};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Runs certmill expecting failure with `code`; returns stderr.
fn certmill_fails(f: &crate::util::Fixture, args: &[&str], code: i32) -> String {
    let out = f.certmill(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "certmill {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn orgs_are_added_once_and_listed() {
    let f = fixture!();
    assert!(f
        .certmill_ok(&["orgs", "add", "Acme Devices"])
        .contains("Acme Devices"));
    f.certmill_ok(&["orgs", "add", "Globex"]);
    let stderr = certmill_fails(&f, &["orgs", "add", "Acme Devices"], 3);
    assert!(stderr.contains("already exists"), "{stderr}");
    let list = f.certmill_ok(&["orgs", "list"]);
    let names: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').nth(1))
        .collect();
    assert_eq!(names, ["Acme Devices", "Globex"]);
}

#[test]
fn a_user_added_from_a_password_file_can_log_in() {
    let f = fixture!();
    let password = f.write("pw.txt", "s3cret password\n");
    let out = f.certmill_ok(&[
        "users",
        "add",
        "alice",
        "--password-file",
        password.to_str().unwrap(),
    ]);
    assert!(!out.contains("s3cret"), "{out}");
    let list = f.certmill_ok(&["users", "list"]);
    assert!(
        list.lines()
            .any(|line| line.ends_with("alice\tDefault\tUSER\t*\tyes")),
        "{list}"
    );

    let auth = Auth::open(&f.data()).expect("open auth");
    let tokens = auth
        .login("alice", "s3cret password", CLIENT)
        .expect("login");
    let principal = auth.verify_access(&tokens.access_token).expect("verify");
    assert_eq!(principal.roles, [Role::User]);
    assert_eq!(principal.profiles, None);
    assert!(matches!(
        auth.login("alice", "s3cret passwore", CLIENT),
        Err(AuthError::InvalidCredentials)
    ));
}

#[test]
fn roles_profiles_and_organization_are_recorded() {
    let f = fixture!();
    f.certmill_ok(&["orgs", "add", "Acme"]);
    let password = f.write("pw.txt", "another secret 1\n");
    f.certmill_ok(&[
        "users",
        "add",
        "olga",
        "--org",
        "Acme",
        "--role",
        "ORG_ADMIN",
        "--role",
        "USER",
        "--role",
        "ORG_ADMIN",
        "--profile",
        "ecc-device",
        "--profile",
        "rsa-device",
        "--password-file",
        password.to_str().unwrap(),
    ]);
    let list = f.certmill_ok(&["users", "list"]);
    assert!(
        list.contains("olga\tAcme\tORG_ADMIN,USER\tecc-device,rsa-device\tyes"),
        "{list}"
    );
    let auth = Auth::open(&f.data()).expect("open auth");
    let tokens = auth
        .login("olga", "another secret 1", CLIENT)
        .expect("login");
    let principal = auth.verify_access(&tokens.access_token).expect("verify");
    assert!(principal.has_role(Role::OrgAdmin) && principal.has_role(Role::User));
    assert!(principal.may_use_profile("rsa-device"));
    assert!(!principal.may_use_profile("ecc-server"));
}

#[test]
fn refused_input_exits_3_without_echoing_the_password() {
    let f = fixture!();
    let short = f.write("short.txt", "abc123\n");
    let good = f.write("good.txt", "long enough 42\n");
    let stderr = certmill_fails(
        &f,
        &[
            "users",
            "add",
            "bob",
            "--password-file",
            short.to_str().unwrap(),
        ],
        3,
    );
    assert!(stderr.contains("at least 8 characters"), "{stderr}");
    assert!(!stderr.contains("abc123"), "{stderr}");

    let stderr = certmill_fails(
        &f,
        &[
            "users",
            "add",
            "bob",
            "--org",
            "Nowhere",
            "--password-file",
            good.to_str().unwrap(),
        ],
        3,
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
    certmill_fails(
        &f,
        &[
            "users",
            "add",
            "bad name",
            "--password-file",
            good.to_str().unwrap(),
        ],
        3,
    );
    // No password file and no terminal: refused rather than hanging on a prompt.
    certmill_fails(&f, &["users", "add", "bob"], 3);
    // Role names are checked by the parser (usage error).
    certmill_fails(
        &f,
        &[
            "users",
            "add",
            "bob",
            "--role",
            "ROOT",
            "--password-file",
            good.to_str().unwrap(),
        ],
        2,
    );
    f.certmill_ok(&[
        "users",
        "add",
        "bob",
        "--password-file",
        good.to_str().unwrap(),
    ]);
    let stderr = certmill_fails(
        &f,
        &[
            "users",
            "add",
            "BOB",
            "--password-file",
            good.to_str().unwrap(),
        ],
        3,
    );
    assert!(stderr.contains("already exists"), "{stderr}");
    let list = f.certmill_ok(&["users", "list"]);
    assert_eq!(list.lines().count(), 2, "header and bob only: {list}");
}

#[test]
fn passwd_changes_the_password_and_ends_refresh_sessions() {
    let f = fixture!();
    let old = f.write("old.txt", "old password 1\n");
    let new = f.write("new.txt", "new password 2\n");
    f.certmill_ok(&[
        "users",
        "add",
        "carol",
        "--password-file",
        old.to_str().unwrap(),
    ]);
    let auth = Auth::open(&f.data()).expect("open auth");
    let tokens = auth
        .login("carol", "old password 1", CLIENT)
        .expect("login");

    f.certmill_ok(&[
        "users",
        "passwd",
        "carol",
        "--password-file",
        new.to_str().unwrap(),
    ]);
    assert!(matches!(
        auth.login("carol", "old password 1", CLIENT),
        Err(AuthError::InvalidCredentials)
    ));
    auth.login("carol", "new password 2", CLIENT)
        .expect("new password");
    assert!(auth.refresh(&tokens.refresh_token).is_err());
    certmill_fails(
        &f,
        &[
            "users",
            "passwd",
            "nobody",
            "--password-file",
            new.to_str().unwrap(),
        ],
        3,
    );
}

#[test]
fn authorities_reuse_an_organization_of_the_same_name() {
    let f = fixture!();
    f.certmill_ok(&["ca", "init"]);
    f.certmill_ok(&["orgs", "add", "Acme"]);
    let create = [
        "authorities",
        "create",
        "--organization",
        "Acme",
        "--profile",
        "ecc-device",
        "--balance",
        "10",
    ];
    f.certmill_ok(&create);
    f.certmill_ok(&create);
    let list = f.certmill_ok(&["orgs", "list"]);
    assert_eq!(list.lines().count(), 2, "header and one Acme: {list}");
    let store = certmill::store::Store::open(&f.data()).expect("store");
    let acme = store
        .organization_by_name("Acme")
        .expect("lookup")
        .expect("exists");
    assert_eq!(
        store.authorities_for(acme.id).expect("authorities").len(),
        2
    );
}
