//! Password reset through a real SMTP sink, and API clients for factory stations (seed 002),
//! against the real server.

use crate::server::{batch_id, generator_batch, verify, Body, Server};
use crate::util::tool;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A local SMTP sink: Python's `aiosmtpd` writing every message into a Maildir. Killed when
/// dropped.
struct MailSink {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl MailSink {
    fn start(maildir: PathBuf) -> MailSink {
        // The sink binds port 0 itself and prints the port: a port chosen beforehand could be
        // taken meanwhile by a server another test starts.
        const SINK: &str = r#"
import asyncio, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

async def main():
    handler = Mailbox(sys.argv[1])
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;
        let mut child = Command::new("python3")
            .args(["-c", SINK, maildir.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the sink's port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("aiosmtpd did not start: {line:?}"));
        MailSink {
            child,
            port,
            maildir,
        }
    }

    /// Every message received so far.
    fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for entry in entries.flatten() {
                    out.push(std::fs::read_to_string(entry.path()).expect("message"));
                }
            }
        }
        out
    }

    /// Waits until `count` messages arrived and returns them.
    fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{count} message(s) expected, {} arrived; server stderr:\n{}",
                messages.len(),
                std::fs::read_to_string(self.maildir.with_file_name("server.stderr"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reset code (a UUID) in a mail.
fn code_in(message: &str) -> String {
    // The body is quoted-printable or plain; the code is a hyphenated UUID either way.
    let chars: Vec<char> = message.chars().collect();
    for start in 0..chars.len().saturating_sub(36) {
        let candidate: String = chars[start..start + 36].iter().collect();
        if uuid_shaped(&candidate) {
            return candidate;
        }
    }
    panic!("no code in the mail:\n{message}");
}

fn uuid_shaped(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

fn post(server: &Server, path: &str) -> crate::server::Resp {
    server.call("POST", path, None, Body::Empty, &[])
}

#[test]
fn password_reset_by_mail_end_to_end() {
    let f = fixture!();
    let sink = MailSink::start(f.path("maildir"));
    let smtp = format!("smtp://127.0.0.1:{}", sink.port);
    let server = Server::start(
        &f,
        &[
            ("CERTMILL_SMTP_URL", &smtp),
            ("CERTMILL_MAIL_FROM", "Line ops <ops@factory.example>"),
        ],
    );
    let admin = server.admin();
    let org = server
        .get("/api/v1/organizations/user", &admin)
        .expect(200, "org")
        .json()["organizationId"]
        .as_i64()
        .unwrap();
    server.add_user(
        &admin,
        org,
        ("ann_line", "first-password-1"),
        "ann@factory.example",
        "USER",
    );
    let (_, refresh) = server.login("ann_line", "first-password-1");

    // Asked by login name: true, and a mail with the code arrives at her address.
    assert_eq!(
        post(&server, "/auth/reset?login=ann_line")
            .expect(200, "reset")
            .json(),
        json!(true)
    );
    // An unknown login gets the same answer, and no mail.
    assert_eq!(
        post(&server, "/auth/reset?login=nobody_here")
            .expect(200, "unknown")
            .json(),
        json!(true)
    );
    // Within 15 minutes: false, for both.
    for login in ["ann_line", "nobody_here", "ANN@factory.example"] {
        let again = post(&server, &format!("/auth/reset?login={login}"))
            .expect(200, "again")
            .json();
        let expected = login == "ANN@factory.example"; // another login key: a new request
        assert_eq!(again, json!(expected), "{login}");
    }
    let messages = sink.wait_for(2);
    std::thread::sleep(Duration::from_millis(500));
    let messages = if messages.len() == 2 {
        sink.messages()
    } else {
        messages
    };
    assert_eq!(messages.len(), 2, "one mail per accepted request for ann");
    for message in &messages {
        assert!(message.contains("To: ann@factory.example"), "{message}");
        assert!(
            message.contains("From: \"Line ops\" <ops@factory.example>")
                || message.contains("From: Line ops <ops@factory.example>"),
            "{message}"
        );
    }
    // Only the most recent code counts: find it by trying both.
    let codes: Vec<String> = messages.iter().map(|m| code_in(m)).collect();
    assert_ne!(codes[0], codes[1]);
    let valid: Vec<&String> = codes
        .iter()
        .filter(|code| {
            post(&server, &format!("/auth/validate-code?code={code}"))
                .expect(200, "validate")
                .json()
                == json!(true)
        })
        .collect();
    assert_eq!(valid.len(), 1, "exactly the newest code is valid");
    let code = valid[0].clone();

    // The repeat must match, the policy holds, and a refused password keeps the code.
    let update = |new: &str, repeated: &str, code: &str| {
        server.call(
            "POST",
            "/auth/update",
            None,
            Body::Json(json!({"updatedPassword": {"newPassword": new,
                               "repeatedNewPassword": repeated}, "code": code})),
            &[],
        )
    };
    let refused =
        update("second-password-2", "different-2", &code).expect_error(400, "repeat differs");
    assert!(refused["error_description"]
        .as_str()
        .unwrap()
        .contains("repeatedNewPassword"));
    update("short1", "short1", &code).expect_error(400, "too short");
    update("second-password-2", "second-password-2", "not-a-code")
        .expect_error(400, "a malformed code");
    assert_eq!(
        update("second-password-2", "second-password-2", &code).status,
        204
    );
    // Spent: invalid now, and a second use is refused.
    assert_eq!(
        post(&server, &format!("/auth/validate-code?code={code}"))
            .expect(200, "validate")
            .json(),
        json!(false)
    );
    update("third-password-3", "third-password-3", &code).expect_error(400, "reuse");
    // The new password logs in, the old one does not, and the old session ended.
    server.login("ann_line", "second-password-2");
    server
        .json(
            "POST",
            "/auth/pwd",
            "",
            json!({"username": "ann_line", "password": "first-password-1"}),
        )
        .expect_error(401, "old password");
    server
        .call(
            "POST",
            "/auth/refresh",
            None,
            Body::Raw(refresh.as_bytes(), "text/plain"),
            &[],
        )
        .expect_error(401, "old session");
    server.assert_documented(&["/auth/reset", "/auth/validate-code", "/auth/update"]);
}

/// `POST /auth/token` with HTTP Basic.
fn client_token(server: &Server, id: &str, secret: &str) -> crate::server::Resp {
    use base64ct::Encoding;
    let basic = base64ct::Base64::encode_string(format!("{id}:{secret}").as_bytes());
    server.call(
        "POST",
        "/auth/token",
        None,
        Body::Raw(
            b"grant_type=client_credentials",
            "application/x-www-form-urlencoded",
        ),
        &[&format!("Authorization: Basic {basic}")],
    )
}

#[test]
fn a_station_client_issues_within_its_scope() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    // Without --smtp-url there is no password reset.
    post(&server, "/auth/reset?login=admin").expect_error(503, "no SMTP");

    let factory = server
        .json(
            "POST",
            "/api/v1/organizations",
            &admin,
            json!({"organizationName": "Factory", "address": "Line 3",
                   "primaryContactName": "Ops", "primaryContactEmail": "ops@factory.example",
                   "primaryContactPhone": "+1 555 0100", "manufactureId": "F3",
                   "orgStatus": "ACTIVE"}),
        )
        .expect(200, "org")
        .json()
        .as_i64()
        .unwrap();
    let authority = |profile: u64| {
        server
            .json(
                "POST",
                &format!("/api/v1/organizations/{factory}/authority"),
                &admin,
                json!({"profileId": profile, "balance": 5}),
            )
            .expect(200, "authority")
            .json()["id"]
            .as_i64()
            .unwrap()
    };
    let allowed = authority(1);
    let other_profile = authority(2);

    // Create: the secret is shown once.
    let created = server
        .json(
            "POST",
            "/api/v1/credentials",
            &admin,
            json!({"credentialName": "Line 3 station", "organizationId": factory,
                   "accessibleProfiles": [1]}),
        )
        .expect(200, "create client")
        .json();
    let id = created["clientId"].as_str().unwrap().to_owned();
    let secret = created["clientSecret"].as_str().unwrap().to_owned();
    assert_eq!(created["id"], created["clientId"]);
    assert_eq!(created["type"], "credentials");
    assert_eq!(created["generation"], 1);
    assert_eq!(created["associatedTenant"]["tenantName"], "Factory");
    assert_eq!(created["accessibleProfiles"], json!([1]));
    assert_eq!(secret.len(), 64);
    let read = server
        .get(&format!("/api/v1/credentials/{id}"), &admin)
        .expect(200, "read")
        .json();
    assert!(read.get("clientSecret").is_none(), "{read}");
    // Only the argon2id hash is stored.
    let db = rusqlite::Connection::open(server.data.join("certmill.db")).expect("db");
    let stored: String = db
        .query_row(
            "SELECT password_hash FROM users WHERE username = ?1",
            [&id],
            |row| row.get(0),
        )
        .expect("row");
    assert!(stored.starts_with("$argon2id$") && !stored.contains(&secret));

    // Token by client credentials: HTTP Basic, or the form.
    let r = client_token(&server, &id, &secret).expect(200, "token");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let answer = r.json();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 900);
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    server
        .call(
            "POST",
            "/auth/token",
            None,
            Body::Raw(form.as_bytes(), "application/x-www-form-urlencoded"),
            &[],
        )
        .expect(200, "form token");
    // Refusals in RFC 6749's words.
    let wrong = client_token(&server, &id, "0".repeat(64).as_str()).expect_error(401, "wrong");
    assert_eq!(wrong["error"], "invalid_client");
    let grant = server
        .call(
            "POST",
            "/auth/token",
            None,
            Body::Raw(b"grant_type=password", "application/x-www-form-urlencoded"),
            &[],
        )
        .expect_error(400, "grant type");
    assert_eq!(grant["error"], "unsupported_grant_type");
    assert_eq!(
        server
            .call("POST", "/auth/token", None, Body::Json(json!({})), &[])
            .status,
        415
    );
    // The secret is not a password: no password login with it.
    server
        .json(
            "POST",
            "/auth/pwd",
            "",
            json!({"username": id, "password": secret}),
        )
        .expect_error(401, "password login with a client secret");

    // A single-device batch within its scope, verified by openssl.
    let batch = server
        .json(
            "PUT",
            "/api/v1/batches",
            &token,
            generator_batch(allowed, "station", "02:00:00:00:00:01", 1),
        )
        .expect(200, "station batch")
        .json();
    let batch = batch_id(&batch);
    server.wait_ready(&token, batch);
    let (out, names, _) = server.download(&token, batch, "station");
    let p12 = names.iter().find(|n| n.ends_with(".p12")).expect("a p12");
    let cert = out.join("station.pem");
    let opened = tool(
        "openssl",
        &[
            "pkcs12",
            "-in",
            out.join(p12).to_str().unwrap(),
            "-nokeys",
            "-clcerts",
            "-passin",
            &format!("pass:{}", crate::server::PKCS12_PASSWORD),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    verify(&server.data, &cert);
    assert_eq!(server.balance_available(&admin, allowed), 4);
    let audit = server
        .get(&format!("/api/v1/batches/{batch}/auditLog"), &token)
        .expect(200, "audit")
        .text();
    assert!(
        audit.contains(&format!("user {}", created["userId"])),
        "{audit}"
    );

    // Outside its scope: another profile's authority, another organization's, the admin API.
    server
        .json(
            "PUT",
            "/api/v1/batches",
            &token,
            generator_batch(other_profile, "nope", "02:00:00:00:00:02", 1),
        )
        .expect_error(404, "a profile it was not given");
    let default_authority = server.authority(&admin, 1);
    server
        .json(
            "PUT",
            "/api/v1/batches",
            &token,
            generator_batch(default_authority, "nope", "02:00:00:00:00:03", 1),
        )
        .expect_error(404, "another organization's authority");
    assert_eq!(server.balance_available(&admin, other_profile), 5);
    for (method, path) in [
        ("GET", "/api/v1/credentials"),
        ("GET", "/api/v1/organizations"),
        ("GET", "/api/v1/issuers"),
    ] {
        let r = server.call(method, path, Some(&token), Body::Empty, &[]);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
    }
    server
        .json(
            "PUT",
            "/api/v1/users/credentials",
            &token,
            json!({"currentPassword": secret, "newPassword": "x-password-1",
                   "repeatedNewPassword": "x-password-1"}),
        )
        .expect_error(403, "a client has no password to change");

    // The list takes filter=; injection attempts are data, malformed filters name a position.
    let list = |filter: &str| {
        let query = crate::util::query_escape(filter);
        server.get(&format!("/api/v1/credentials?filter={query}"), &admin)
    };
    let found = list("credentialName eq 'Line 3 station'")
        .expect(200, "filter")
        .json();
    assert_eq!(found["count"], 1);
    assert_eq!(found["items"][0]["clientId"], id.as_str());
    for injection in [
        "credentialName eq 'x'' OR 1=1 --'",
        "credentialName eq 'x' or organizationId eq 0",
    ] {
        assert_eq!(list(injection).expect(200, injection).json()["count"], 0);
    }
    let malformed = list("credentialName eq 'x' OR 1=1").expect_error(400, "malformed");
    assert!(malformed["error_description"]
        .as_str()
        .unwrap()
        .contains("position"));
    list("password_hash eq 'x'").expect_error(400, "an unknown property");

    // Lock: the token it holds stops working, and it gets no new one; unlock restores it.
    let path = format!("/api/v1/credentials/{id}");
    let locked = server
        .json("PUT", &path, &admin, json!({"locked": true}))
        .expect(200, "lock")
        .json();
    assert_eq!(locked["locked"], true);
    assert_eq!(locked["credentialName"], "Line 3 station");
    server
        .get("/api/v1/authorities/allowed", &token)
        .expect_error(401, "locked client's token");
    client_token(&server, &id, &secret).expect_error(401, "locked client");
    server
        .json("PUT", &path, &admin, json!({"locked": false}))
        .expect(200, "unlock");
    let token = client_token(&server, &id, &secret).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .get("/api/v1/authorities/allowed", &token)
        .expect(200, "unlocked");

    // Reset: a new secret once; the old secret and its tokens stop working.
    let reset = server
        .call(
            "POST",
            &format!("{path}/reset"),
            Some(&admin),
            Body::Empty,
            &[],
        )
        .expect(200, "reset")
        .json();
    assert_eq!(reset["generation"], 2);
    let new_secret = reset["clientSecret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    client_token(&server, &id, &secret).expect_error(401, "old secret");
    server
        .get("/api/v1/authorities/allowed", &token)
        .expect_error(401, "token of the old secret");
    let token = client_token(&server, &id, &new_secret).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // An ORG_ADMIN of the factory administers its clients only.
    let pw = f.write("olga.pw", "olga-password-1\n");
    server.cli(&[
        "users",
        "add",
        "olga",
        "--org",
        "Factory",
        "--role",
        "ORG_ADMIN",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let olga = server.login("olga", "olga-password-1").0;
    let default_client = server
        .json(
            "POST",
            "/api/v1/credentials",
            &admin,
            json!({"credentialName": "Default station"}),
        )
        .expect(200, "default-org client")
        .json();
    let theirs = server
        .get("/api/v1/credentials", &olga)
        .expect(200, "olga lists")
        .json();
    assert_eq!(theirs["count"], 1, "{theirs}");
    server
        .get(
            &format!(
                "/api/v1/credentials/{}",
                default_client["clientId"].as_str().unwrap()
            ),
            &olga,
        )
        .expect_error(404, "another organization's client");
    server
        .json(
            "POST",
            "/api/v1/credentials",
            &olga,
            json!({"credentialName": "elsewhere", "organizationId": 1}),
        )
        .expect_error(403, "a client in another organization");
    let hers = server
        .json(
            "POST",
            "/api/v1/credentials",
            &olga,
            json!({"credentialName": "Line 4 station"}),
        )
        .expect(200, "olga creates")
        .json();
    assert_eq!(hers["organizationId"], factory);

    // Delete: 204, and its token is refused at once.
    assert_eq!(
        server
            .call("DELETE", &path, Some(&olga), Body::Empty, &[])
            .status,
        204
    );
    server
        .get("/api/v1/authorities/allowed", &token)
        .expect_error(401, "deleted client's token");
    server.get(&path, &admin).expect_error(404, "deleted");
    // Every administration step is in the client's log, which outlives it.
    let log = server
        .get(&format!("{path}/events"), &admin)
        .expect(200, "client log")
        .json();
    let kinds: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["CREATED", "LOCKED", "UNLOCKED", "SECRET_RESET", "DELETED"]
    );
    assert_eq!(log[0]["actor"], "user 1");
    assert!(log[4]["actor"].as_str().unwrap().starts_with("user "));
    assert_ne!(log[4]["actor"], "user 1", "olga deleted it");
    // People lists never show clients.
    let people = server
        .json(
            "POST",
            &format!("/api/v1/users/organizations/{factory}"),
            &admin,
            json!({}),
        )
        .expect(200, "people")
        .json();
    assert_eq!(people.as_array().unwrap().len(), 1, "{people}");
    server.assert_documented(&[
        "/auth/token",
        "/api/v1/credentials",
        "/api/v1/credentials/{id}",
        "/api/v1/credentials/{id}/reset",
        "/api/v1/credentials/{id}/events",
    ]);
}
