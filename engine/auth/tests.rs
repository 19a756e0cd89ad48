//! Tests of [`Auth`]: login, refresh rotation, verification, throttling, secret, bootstrap.

use super::*;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

const T0: i64 = 1_800_000_000;
const HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const PASSWORD: &str = "correct horse 42";

struct Fixture {
    dir: tempfile::TempDir,
    auth: Auth,
    clock: Arc<AtomicI64>,
}

impl Fixture {
    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    fn store(&self) -> Store {
        Store::open(self.dir.path()).expect("store")
    }
}

/// An `Auth` on a fresh data directory with user `alice` (USER) and a controllable clock.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(AtomicI64::new(T0));
    let reading = Arc::clone(&clock);
    let auth = Auth::open(dir.path())
        .expect("open")
        .with_clock(move || reading.load(Ordering::SeqCst));
    add_user(dir.path(), "alice", &[Role::User], None);
    Fixture { dir, auth, clock }
}

fn add_user(data: &Path, username: &str, roles: &[Role], profiles: Option<&[String]>) -> UserId {
    let store = Store::open(data).expect("store");
    let organization = store.default_organization().expect("default org");
    let roles: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    store
        .create_user(&NewUser {
            username,
            password_hash: &hash_password(PASSWORD).expect("hash"),
            organization,
            roles: &roles,
            profiles,
        })
        .expect("create")
        .expect("new name")
}

fn payload(token: &str) -> serde_json::Value {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let part = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).expect("base64")).expect("json")
}

#[test]
fn auth_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Auth>();
    shareable::<Arc<Auth>>();
}

#[test]
fn login_issues_tokens_in_the_seed_shape() {
    let f = fixture();
    let tokens = f.auth.login("alice", PASSWORD, HOST).expect("login");
    assert_eq!(tokens.expires_in, 900);
    let access = payload(&tokens.access_token);
    assert_eq!(access["sub"], "alice");
    assert_eq!(access["Authorities"], serde_json::json!(["ROLE_USER"]));
    assert_eq!(access["iat"].as_i64(), Some(T0));
    assert_eq!(access["exp"].as_i64(), Some(T0 + 900));
    let refresh = payload(&tokens.refresh_token);
    assert_eq!(
        refresh["Authorities"],
        serde_json::json!(["ROLE_REFRESH_TOKEN"])
    );
    assert_eq!(refresh["exp"].as_i64(), Some(T0 + 7 * 86_400));
    assert_eq!(refresh["jti"].as_str().map(str::len), Some(32));
    assert!(
        !format!("{tokens:?}").contains("eyJ"),
        "Debug redacts tokens"
    );

    let principal = f.auth.verify_access(&tokens.access_token).expect("verify");
    assert_eq!(principal.username, "alice");
    assert_eq!(principal.roles, [Role::User]);
    assert!(!principal.is_admin());
    assert!(principal.may_use_profile("ecc-device"));
    // Usernames are case-insensitive at login; the token carries the stored spelling.
    let upper = f.auth.login("ALICE", PASSWORD, HOST).expect("login");
    assert_eq!(payload(&upper.access_token)["sub"], "alice");
}

#[test]
fn unknown_users_and_wrong_passwords_look_alike() {
    let f = fixture();
    // The cost of one real verification, as the reference.
    let phc = hash_password(PASSWORD).expect("hash");
    // The fastest of three, so a slow reference (parallel tests) cannot raise the floor.
    let one_verify = (0..3)
        .map(|_| {
            let started = Instant::now();
            assert!(password::verify(&phc, PASSWORD).expect("verify"));
            started.elapsed()
        })
        .min()
        .expect("three runs");

    let timed = |username: &str, password: &str| {
        let started = Instant::now();
        let error = f.auth.login(username, password, HOST).expect_err("refused");
        (started.elapsed(), error)
    };
    let (unknown_time, unknown) = timed("mallory", PASSWORD);
    let (wrong_time, wrong) = timed("alice", "wrong password 1");
    assert_eq!(unknown.to_string(), wrong.to_string());
    assert!(matches!(unknown, AuthError::InvalidCredentials));
    assert!(matches!(wrong, AuthError::InvalidCredentials));
    assert_eq!(wrong.http_status(), 401);
    // Both paths ran argon2 (no tight timing: a quarter of one verification).
    let floor = one_verify / 4;
    assert!(unknown_time > floor, "{unknown_time:?} vs {one_verify:?}");
    assert!(wrong_time > floor, "{wrong_time:?} vs {one_verify:?}");
    assert!(!wrong.to_string().contains("wrong password"));
}

#[test]
fn refresh_rotates_and_reuse_revokes_the_family() {
    let f = fixture();
    let first = f.auth.login("alice", PASSWORD, HOST).expect("login");
    let other_login = f.auth.login("alice", PASSWORD, HOST).expect("login");
    f.advance(60);
    let second = f.auth.refresh(&first.refresh_token).expect("rotate");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(
        payload(&second.refresh_token)["family"],
        payload(&first.refresh_token)["family"]
    );
    assert_eq!(payload(&second.access_token)["iat"].as_i64(), Some(T0 + 60));
    f.auth
        .verify_access(&second.access_token)
        .expect("new access token");
    let third = f.auth.refresh(&second.refresh_token).expect("rotate again");

    // The first token again: it was copied. The family is revoked, including the newest.
    let reused = f.auth.refresh(&first.refresh_token).expect_err("reuse");
    assert!(matches!(reused, AuthError::RefreshReused), "{reused:?}");
    assert_eq!(reused.http_status(), 401);
    assert!(matches!(
        f.auth.refresh(&third.refresh_token),
        Err(AuthError::InvalidToken(_))
    ));
    // Another login's family is untouched.
    f.auth
        .refresh(&other_login.refresh_token)
        .expect("other family");
}

#[test]
fn access_and_refresh_tokens_are_not_interchangeable() {
    let f = fixture();
    let tokens = f.auth.login("alice", PASSWORD, HOST).expect("login");
    assert!(matches!(
        f.auth.refresh(&tokens.access_token),
        Err(AuthError::InvalidToken(_))
    ));
    assert!(matches!(
        f.auth.verify_access(&tokens.refresh_token),
        Err(AuthError::InvalidToken(_))
    ));
}

#[test]
fn tokens_expire_by_the_injected_clock() {
    let f = fixture();
    let tokens = f.auth.login("alice", PASSWORD, HOST).expect("login");
    f.advance(899);
    f.auth.verify_access(&tokens.access_token).expect("valid");
    f.advance(1);
    let expired = f
        .auth
        .verify_access(&tokens.access_token)
        .expect_err("expired");
    assert!(matches!(expired, AuthError::Expired));
    assert_eq!(expired.http_status(), 401);
    // The refresh token still works and gives a fresh access token.
    let renewed = f.auth.refresh(&tokens.refresh_token).expect("refresh");
    f.auth.verify_access(&renewed.access_token).expect("fresh");
    f.advance(7 * 86_400);
    assert!(matches!(
        f.auth.refresh(&renewed.refresh_token),
        Err(AuthError::Expired)
    ));
}

#[test]
fn tokens_of_another_installation_are_refused() {
    let f = fixture();
    let g = fixture();
    let tokens = f.auth.login("alice", PASSWORD, HOST).expect("login");
    assert!(matches!(
        g.auth.verify_access(&tokens.access_token),
        Err(AuthError::InvalidToken(reason)) if reason == "bad signature"
    ));
}

#[test]
fn a_deactivated_user_is_refused_everywhere() {
    let f = fixture();
    let tokens = f.auth.login("alice", PASSWORD, HOST).expect("login");
    let store = f.store();
    let alice = store
        .find_user_by_name("alice")
        .expect("lookup")
        .expect("exists")
        .id;
    assert!(store.set_user_active(alice, false).expect("deactivate"));
    assert!(matches!(
        f.auth.verify_access(&tokens.access_token),
        Err(AuthError::InvalidToken(_))
    ));
    assert!(f.auth.refresh(&tokens.refresh_token).is_err());
    assert!(matches!(
        f.auth.login("alice", PASSWORD, HOST),
        Err(AuthError::InvalidCredentials)
    ));
}

#[test]
fn a_password_change_ends_refresh_sessions() {
    let f = fixture();
    let tokens = f.auth.login("alice", PASSWORD, HOST).expect("login");
    let store = f.store();
    let alice = store
        .find_user_by_name("alice")
        .expect("lookup")
        .expect("exists")
        .id;
    let new_hash = hash_password("another password 7").expect("hash");
    assert!(store.set_password(alice, &new_hash).expect("set"));
    assert!(matches!(
        f.auth.refresh(&tokens.refresh_token),
        Err(AuthError::InvalidToken(_))
    ));
    assert!(f.auth.login("alice", PASSWORD, HOST).is_err());
    f.auth
        .login("alice", "another password 7", HOST)
        .expect("new password");
}

#[test]
fn repeated_failures_throttle_the_account_until_the_delay_passes() {
    let f = fixture();
    for _ in 0..5 {
        assert!(matches!(
            f.auth.login("alice", "wrong password 1", HOST),
            Err(AuthError::InvalidCredentials)
        ));
    }
    // Even the right password waits now, without an argon2 verification.
    let throttled = f
        .auth
        .login("alice", PASSWORD, HOST)
        .expect_err("throttled");
    assert!(matches!(
        throttled,
        AuthError::Throttled {
            retry_after_secs: 2
        }
    ));
    assert_eq!(throttled.http_status(), 429);
    // Another client is throttled for this account too (the account counter).
    let elsewhere = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
    assert!(matches!(
        f.auth.login("alice", PASSWORD, elsewhere),
        Err(AuthError::Throttled { .. })
    ));
    f.advance(2);
    f.auth
        .login("alice", PASSWORD, HOST)
        .expect("after the delay");
    // Success reset the account: one more failure does not throttle.
    assert!(matches!(
        f.auth.login("alice", "wrong password 1", HOST),
        Err(AuthError::InvalidCredentials)
    ));
    f.auth
        .login("alice", PASSWORD, HOST)
        .expect("not throttled");
}

#[test]
fn the_secret_is_created_once_private_and_reused() {
    let f = fixture();
    let path = f.dir.path().join(SECRET_FILE);
    let metadata = std::fs::metadata(&path).expect("secret exists");
    assert_eq!(metadata.len(), 64);
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let before = std::fs::read(&path).expect("read");
    let tokens = f.auth.login("alice", PASSWORD, HOST).expect("login");
    let reopened = Auth::open(f.dir.path())
        .expect("reopen")
        .with_clock(|| T0 + 1);
    assert_eq!(std::fs::read(&path).expect("read"), before);
    let principal = reopened
        .verify_access(&tokens.access_token)
        .expect("same secret after reopening");
    assert_eq!(principal.username, "alice");
}

#[test]
fn a_readable_or_truncated_secret_is_refused() {
    let f = fixture();
    let path = f.dir.path().join(SECRET_FILE);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(matches!(
        Auth::open(f.dir.path()),
        Err(AuthError::SecretPermissions { mode: 0o644, .. })
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(&path, [1u8; 10]).expect("truncate");
    assert!(matches!(
        Auth::open(f.dir.path()),
        Err(AuthError::SecretCorrupt { length: 10, .. })
    ));
}

#[test]
fn bootstrap_creates_one_admin_and_shows_a_password_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = || BootstrapOptions {
        username: DEFAULT_ADMIN_USER.to_owned(),
        password: None,
    };
    let Bootstrap::Created {
        username,
        generated_password: Some(password),
        ..
    } = bootstrap_admin_with(dir.path(), options()).expect("first start")
    else {
        panic!("the first start creates the admin with a generated password");
    };
    assert_eq!(username, "admin");
    assert_eq!(password.len(), GENERATED_PASSWORD_CHARS);
    assert_eq!(
        bootstrap_admin_with(dir.path(), options()).expect("second start"),
        Bootstrap::UsersExist
    );
    assert_eq!(bootstrap_admin(dir.path()).expect("third start"), None);

    let store = Store::open(dir.path()).expect("store");
    let users = store.list_users().expect("list");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].roles, ["ADMIN", "USER"]);
    assert_eq!(
        Some(users[0].organization),
        store
            .organization_by_name(crate::store::DEFAULT_ORGANIZATION)
            .expect("lookup")
            .map(|org| org.id)
    );
    let auth = Auth::open(dir.path()).expect("open");
    let tokens = auth.login("admin", &password, HOST).expect("login");
    let principal = auth.verify_access(&tokens.access_token).expect("verify");
    assert!(principal.is_admin() && principal.has_role(Role::User));
    assert_eq!(
        payload(&tokens.access_token)["Authorities"],
        serde_json::json!(["ROLE_ADMIN", "ROLE_USER"])
    );
}

#[test]
fn bootstrap_with_a_given_password_returns_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let created = bootstrap_admin_with(
        dir.path(),
        BootstrapOptions {
            username: "root".to_owned(),
            password: Some(Zeroizing::new("given password 9".to_owned())),
        },
    )
    .expect("bootstrap");
    assert!(matches!(
        created,
        Bootstrap::Created { ref username, generated_password: None, .. } if username == "root"
    ));
    let auth = Auth::open(dir.path()).expect("open");
    auth.login("root", "given password 9", HOST).expect("login");
    // A weak given password or a bad username is refused, not stored.
    let other = tempfile::tempdir().expect("temp dir");
    let weak = bootstrap_admin_with(
        other.path(),
        BootstrapOptions {
            username: "root".to_owned(),
            password: Some(Zeroizing::new("short".to_owned())),
        },
    )
    .expect_err("weak");
    assert_eq!(weak.http_status(), 400);
    assert!(!weak.to_string().contains("short"));
    assert!(bootstrap_admin_with(
        other.path(),
        BootstrapOptions {
            username: "no spaces".to_owned(),
            password: None,
        },
    )
    .is_err());
    assert_eq!(
        Store::open(other.path())
            .expect("store")
            .user_count()
            .expect("count"),
        0
    );
}

#[test]
fn profiles_and_roles_come_from_the_store() {
    let f = fixture();
    let profiles = vec!["ecc-device".to_owned()];
    add_user(f.dir.path(), "olga", &[Role::OrgAdmin], Some(&profiles));
    let tokens = f.auth.login("olga", PASSWORD, HOST).expect("login");
    let principal = f.auth.verify_access(&tokens.access_token).expect("verify");
    assert!(principal.has_role(Role::OrgAdmin) && !principal.has_role(Role::User));
    assert!(principal.may_use_profile("ecc-device"));
    assert!(!principal.may_use_profile("rsa-server"));
    let admin = Principal {
        roles: vec![Role::Admin],
        ..principal
    };
    assert!(admin.may_use_profile("rsa-server"));
}

#[test]
fn roles_parse_and_print_as_the_seed_spells_them() {
    for role in Role::ALL {
        assert_eq!(Role::parse(role.as_str()), Some(role));
        assert_eq!(role.authority(), format!("ROLE_{role}"));
    }
    assert_eq!(Role::parse("user"), None);
    assert_eq!(Role::parse("ROLE_USER"), None);
}

#[test]
fn usernames_are_checked() {
    for good in ["admin", "a.b-c_d@example.com", &"x".repeat(64)] {
        check_username(good).expect(good);
    }
    for bad in ["", "with space", "tab\t", "ünï", &"x".repeat(65)] {
        assert!(check_username(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_lost_race_for_the_secret_reads_the_winner() {
    // Two openers on one fresh directory end with the same secret.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || load_or_create_secret(&path).expect("secret"))
        })
        .collect();
    let secrets: Vec<_> = handles
        .into_iter()
        .map(|handle| handle.join().expect("thread"))
        .collect();
    assert!(secrets.windows(2).all(|pair| pair[0] == pair[1]));
    let leftovers = std::fs::read_dir(path.join("auth")).expect("dir").count();
    assert_eq!(leftovers, 1, "temporary files are removed");
}

fn set_email(f: &Fixture, username: &str, email: &str) -> UserId {
    let store = f.store();
    let user = store
        .find_user_by_name(username)
        .expect("read")
        .expect("user");
    store
        .set_user_contact(
            user.id,
            &crate::store::UserContact {
                email: email.to_owned(),
                ..Default::default()
            },
        )
        .expect("contact");
    user.id
}

fn code_of(request: ResetRequest) -> Zeroizing<String> {
    match request {
        ResetRequest::Send { code, .. } => code,
        other => panic!("expected a code to send, got {other:?}"),
    }
}

#[test]
fn a_reset_code_works_once_and_ends_every_session() {
    let f = fixture();
    let alice = set_email(&f, "alice", "alice@factory.example");
    let session = f.auth.login("alice", PASSWORD, HOST).expect("login");
    // By e-mail address, any case: the code goes to alice's address.
    let request = f
        .auth
        .request_reset("ALICE@factory.example", HOST)
        .expect("request");
    let ResetRequest::Send { user, ref to, .. } = request else {
        panic!("{request:?}");
    };
    assert_eq!((user, to.as_str()), (alice, "alice@factory.example"));
    let code = code_of(request);
    assert_eq!(
        uuid::Uuid::parse_str(&code)
            .expect("uuid")
            .get_version_num(),
        4
    );
    // Only the hash is stored.
    let stored = crate::store::Store::open(f.dir.path())
        .expect("store")
        .text_for_tests("SELECT code_hash FROM password_resets");
    assert_ne!(stored, *code);
    assert_eq!(stored.len(), 64);

    assert!(f.auth.validate_reset_code(&code, HOST).expect("validate"));
    // A password the policy refuses leaves the code usable.
    assert!(matches!(
        f.auth.reset_password(&code, "short", HOST),
        Err(AuthError::InvalidPassword { .. })
    ));
    assert!(f
        .auth
        .reset_password(&code, "a new password 7", HOST)
        .expect("reset"));
    assert!(!f.auth.validate_reset_code(&code, HOST).expect("validate"));
    assert!(!f
        .auth
        .reset_password(&code, "another password 8", HOST)
        .expect("second use"));
    assert!(matches!(
        f.auth.login("alice", PASSWORD, HOST),
        Err(AuthError::InvalidCredentials)
    ));
    f.auth
        .login("alice", "a new password 7", HOST)
        .expect("new password");
    assert!(f.auth.refresh(&session.refresh_token).is_err());
}

#[test]
fn reset_requests_reveal_nothing_and_come_once_per_window() {
    let f = fixture();
    set_email(&f, "alice", "alice@factory.example");
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
    // Unknown login and known login answer alike; both are limited to one per window.
    assert_eq!(
        f.auth.request_reset("nobody", HOST).expect("unknown"),
        ResetRequest::Nobody
    );
    assert!(f.auth.request_reset("nobody", HOST).expect("again") == ResetRequest::TooSoon);
    let first = code_of(f.auth.request_reset("alice", other).expect("alice"));
    assert!(f.auth.request_reset("alice", other).expect("again") == ResetRequest::TooSoon);
    f.advance(RESET_REQUEST_WINDOW_SECS);
    let second = code_of(f.auth.request_reset("alice", other).expect("after window"));
    // Only the most recent code works.
    assert!(!f.auth.validate_reset_code(&first, other).expect("old"));
    assert!(f.auth.validate_reset_code(&second, other).expect("new"));
    // Codes expire.
    f.advance(RESET_CODE_LIFETIME_SECS);
    assert!(!f.auth.validate_reset_code(&second, other).expect("expired"));
    assert!(!f
        .auth
        .reset_password(&second, "a new password 7", other)
        .expect("expired"));
    // A person without an e-mail address, and a deactivated one, get nothing to send.
    add_user(f.dir.path(), "bruno", &[Role::User], None);
    assert_eq!(
        f.auth.request_reset("bruno", other).expect("bruno"),
        ResetRequest::Nobody
    );
}

#[test]
fn wrong_reset_codes_and_request_floods_are_throttled_per_address() {
    let f = fixture();
    let wrong = "00000000-0000-4000-8000-000000000000";
    for _ in 0..reset::RESET_POLICY.free_failures {
        assert!(!f.auth.validate_reset_code(wrong, HOST).expect("wrong"));
    }
    assert!(matches!(
        f.auth.validate_reset_code(wrong, HOST),
        Err(AuthError::Throttled { .. })
    ));
    assert!(matches!(
        f.auth.request_reset("alice", HOST),
        Err(AuthError::Throttled { .. })
    ));
    // Another address is not held up.
    let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    assert!(!f.auth.validate_reset_code(wrong, other).expect("other"));
}

/// A burst of wrong codes sent at once (each `/auth/update` hashes the new password first, so
/// tens of milliseconds pass before the code is looked up) cannot check more codes than the
/// free failures: attempts in flight count.
#[test]
fn a_burst_of_wrong_reset_codes_cannot_race_past_the_throttle() {
    let f = fixture();
    let wrong = "00000000-0000-4000-8000-000000000000";
    let answers: Vec<Result<bool, AuthError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..24)
            .map(|_| scope.spawn(|| f.auth.reset_password(wrong, "a new password 7", HOST)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = answers.iter().filter(|a| matches!(a, Ok(false))).count();
    let throttled = answers
        .iter()
        .filter(|a| matches!(a, Err(AuthError::Throttled { .. })))
        .count();
    assert_eq!(checked + throttled, 24, "only wrong codes and refusals");
    assert!(
        (1..=reset::RESET_POLICY.free_failures as usize).contains(&checked),
        "{checked} codes checked in a burst of 24"
    );
}

fn add_client(f: &Fixture, client_id: &str, secret: &str) -> UserId {
    let store = f.store();
    let organization = store.default_organization().expect("org");
    store
        .create_client(
            &crate::store::NewClient {
                client_id,
                secret_hash: &hash_password(secret).expect("hash"),
                name: "station",
                organization,
                profiles: None,
            },
            "cli",
        )
        .expect("create")
        .expect("new")
}

#[test]
fn client_tokens_follow_the_secret_and_the_lock() {
    let f = fixture();
    let secret = new_client_secret().expect("secret");
    assert_eq!(secret.len(), CLIENT_SECRET_CHARS);
    let id = add_client(&f, "station-1", &secret);
    let token = f
        .auth
        .client_token("station-1", &secret, HOST)
        .expect("token");
    let principal = f.auth.verify_access(&token.access_token).expect("verify");
    assert_eq!(principal.client.as_deref(), Some("station-1"));
    assert_eq!(principal.roles, [Role::User]);
    assert_eq!(principal.actor(), "client station-1");
    assert_eq!(payload(&token.access_token)["gen"], 1);

    // Neither credential works on the other door.
    assert!(matches!(
        f.auth.login("station-1", &secret, HOST),
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        f.auth.client_token("alice", PASSWORD, HOST),
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        f.auth.client_token("station-1", "wrong", HOST),
        Err(AuthError::InvalidCredentials)
    ));

    // A reset voids the old secret and its tokens.
    let next = new_client_secret().expect("secret");
    f.store()
        .reset_client_secret(id, &hash_password(&next).expect("hash"), "cli")
        .expect("reset");
    assert!(matches!(
        f.auth.verify_access(&token.access_token),
        Err(AuthError::InvalidToken(_))
    ));
    assert!(f.auth.client_token("station-1", &secret, HOST).is_err());
    let token = f
        .auth
        .client_token("station-1", &next, HOST)
        .expect("token");
    f.auth.verify_access(&token.access_token).expect("verify");

    // Locked: no token, and the one it holds is refused.
    f.store()
        .update_client(id, "station", None, true, "cli")
        .expect("lock");
    assert!(f.auth.verify_access(&token.access_token).is_err());
    assert!(matches!(
        f.auth.client_token("station-1", &next, HOST),
        Err(AuthError::InvalidCredentials)
    ));
}

#[test]
fn download_tickets_open_one_batch_for_a_minute_and_nothing_else() {
    let f = fixture();
    let tokens = f.auth.login("alice", PASSWORD, HOST).expect("login");
    let alice = f.auth.verify_access(&tokens.access_token).expect("verify");
    let ticket = f.auth.download_ticket(&alice, 7).expect("ticket");
    assert_eq!(payload(&ticket)["dl"], 7);
    assert_eq!(f.auth.verify_download(&ticket, 7).expect("valid"), alice);
    // Not for another batch, not as an access token, and an access token is no ticket.
    assert!(matches!(
        f.auth.verify_download(&ticket, 8),
        Err(AuthError::InvalidToken(reason)) if reason.contains("another batch")
    ));
    assert!(matches!(
        f.auth.verify_access(&ticket),
        Err(AuthError::InvalidToken(_))
    ));
    assert!(matches!(
        f.auth.verify_download(&tokens.access_token, 7),
        Err(AuthError::InvalidToken(_))
    ));
    assert!(f.auth.verify_download(&tokens.refresh_token, 7).is_err());
    // Valid for DOWNLOAD_TICKET_LIFETIME_SECS, by the injected clock.
    f.advance(DOWNLOAD_TICKET_LIFETIME_SECS as i64 - 1);
    f.auth.verify_download(&ticket, 7).expect("still valid");
    f.advance(1);
    assert!(matches!(
        f.auth.verify_download(&ticket, 7),
        Err(AuthError::Expired)
    ));
}

#[test]
fn a_client_ticket_dies_with_its_secret() {
    let f = fixture();
    let secret = new_client_secret().expect("secret");
    let id = add_client(&f, "station-2", &secret);
    let token = f
        .auth
        .client_token("station-2", &secret, HOST)
        .expect("token");
    let station = f.auth.verify_access(&token.access_token).expect("verify");
    let ticket = f.auth.download_ticket(&station, 3).expect("ticket");
    assert_eq!(payload(&ticket)["gen"], 1);
    f.auth.verify_download(&ticket, 3).expect("valid");
    let next = new_client_secret().expect("secret");
    f.store()
        .reset_client_secret(id, &hash_password(&next).expect("hash"), "cli")
        .expect("reset");
    assert!(matches!(
        f.auth.verify_download(&ticket, 3),
        Err(AuthError::InvalidToken(_))
    ));
}
