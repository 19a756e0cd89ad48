//! Revocation end to end: the real server on loopback revokes over seed 001's endpoints, and
//! the openssl CLI and Python `cryptography` read its CRL and its OCSP answers (GET and POST).

use crate::server::{batch_id, generator_batch, Body, Resp, Server, BOB_PASSWORD, PKCS12_PASSWORD};
use crate::util::{openssl, text, tool};
use base64ct::{Base64, Encoding};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The CRL of the data directory's first signer (`{issuerKeyId}` in the shipped profiles).
fn crl_url(server: &Server) -> String {
    crate::util::crl_path_of(&server.data.join("ca").join("issuing.crt"))
}

fn python(args: &[&str]) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/check_revocation.py"
    );
    let mut all = vec![script];
    all.extend_from_slice(args);
    let out = tool("python3", &all);
    assert!(
        out.status.success(),
        "check_revocation.py {args:?}: {}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from check_revocation.py")
}

fn ca_file(server: &Server, name: &str) -> String {
    server.data.join("ca").join(name).display().to_string()
}

/// The certificate of the device with this common name, as a PEM file.
fn leaf(server: &Server, dir: &Path, cn: &str) -> PathBuf {
    let out = server.cli(&["certs", "find", "--cn", cn, "--pem"]);
    let start = out
        .find("-----BEGIN CERTIFICATE-----")
        .expect("PEM in certs find");
    let end = out.find("-----END CERTIFICATE-----").expect("PEM end") + 25;
    let path = dir.join(format!("{}.pem", cn.replace(':', "")));
    std::fs::write(&path, format!("{}\n", &out[start..end])).unwrap();
    path
}

/// `POST /api/v1/certificates/find` by common name: (deviceId, serialNumber, status).
fn find(server: &Server, token: &str, cn: &str) -> (String, String, String) {
    let found = server
        .json(
            "POST",
            "/api/v1/certificates/find",
            token,
            json!({"commonName": cn}),
        )
        .expect(200, "find")
        .json();
    let item = &found["items"][0];
    (
        item["deviceId"].as_str().expect("deviceId").to_owned(),
        item["serialNumber"]
            .as_str()
            .expect("serialNumber")
            .to_owned(),
        item["status"].as_str().expect("status").to_owned(),
    )
}

/// `openssl ocsp` against the server by POST, with a nonce: the status line and openssl's
/// verdict on the signature.
fn ocsp_post(server: &Server, cert: &Path) -> String {
    openssl(&[
        "ocsp",
        "-issuer",
        &ca_file(server, "issuing.crt"),
        "-CAfile",
        &ca_file(server, "chain.pem"),
        "-cert",
        cert.to_str().unwrap(),
        "-url",
        &format!("{}/ocsp", server.base),
    ])
}

/// An OCSP request made by openssl, sent by GET (RFC 6960 A.1); the response is checked by
/// `openssl ocsp -respin`. Returns openssl's text, the HTTP answer and the response file.
fn ocsp_get(server: &Server, dir: &Path, cert: &Path, tag: &str) -> (String, Resp, PathBuf) {
    let request = dir.join(format!("{tag}.req"));
    openssl(&[
        "ocsp",
        "-issuer",
        &ca_file(server, "issuing.crt"),
        "-cert",
        cert.to_str().unwrap(),
        "-no_nonce",
        "-reqout",
        request.to_str().unwrap(),
    ]);
    let encoded = Base64::encode_string(&std::fs::read(&request).unwrap())
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let r = server.call("GET", &format!("/ocsp/{encoded}"), None, Body::Empty, &[]);
    assert_eq!(r.status, 200, "OCSP GET: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/ocsp-response"));
    let response = dir.join(format!("{tag}.resp"));
    std::fs::write(&response, &r.body).unwrap();
    let verdict = openssl(&[
        "ocsp",
        "-respin",
        response.to_str().unwrap(),
        "-issuer",
        &ca_file(server, "issuing.crt"),
        "-CAfile",
        &ca_file(server, "chain.pem"),
        "-cert",
        cert.to_str().unwrap(),
        "-no_nonce",
    ]);
    (verdict, r, response)
}

/// Downloads the CRL to `<dir>/<tag>.crl`; checks its HTTP headers.
fn fetch_crl(server: &Server, dir: &Path, tag: &str) -> (PathBuf, Resp) {
    let r = server.call("GET", &crl_url(server), None, Body::Empty, &[]);
    assert_eq!(r.status, 200, "CRL: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/pkix-crl"));
    assert!(
        r.header("etag").is_some_and(|e| e.len() == 66),
        "{:?}",
        r.header("etag")
    );
    assert!(
        r.header("cache-control")
            .is_some_and(|c| c.contains("max-age=")),
        "{:?}",
        r.header("cache-control")
    );
    assert!(r.header("expires").is_some_and(|e| e.ends_with("GMT")));
    let path = dir.join(format!("{tag}.crl"));
    std::fs::write(&path, &r.body).unwrap();
    (path, r)
}

fn crl_number(path: &Path) -> u64 {
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path.to_str().unwrap(),
        "-noout",
        "-crlnumber",
    ]);
    let hex = out
        .trim()
        .trim_start_matches("crlNumber=")
        .trim_start_matches("0x");
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("crlNumber in {out:?}"))
}

/// Polls the CRL until it lists `serials` (the server re-issues it within seconds of a
/// revocation); returns its file.
fn crl_listing(server: &Server, dir: &Path, tag: &str, serials: &[&str]) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (path, _) = fetch_crl(server, dir, tag);
        let listing = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            path.to_str().unwrap(),
            "-noout",
            "-text",
        ]);
        if serials
            .iter()
            .all(|s| listing.contains(&format!("Serial Number: {}", s.to_ascii_uppercase())))
        {
            return path;
        }
        assert!(
            Instant::now() < deadline,
            "CRL never listed {serials:?}:\n{listing}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn verify_crl(server: &Server, crl: &Path) -> String {
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-noout",
        "-text",
        "-verify",
        "-CAfile",
        &ca_file(server, "chain.pem"),
    ]);
    assert!(out.contains("verify OK"), "{out}");
    out
}

/// `openssl verify -crl_check` of a leaf with the CRL (converted to PEM).
fn verify_with_crl(server: &Server, dir: &Path, crl: &Path, cert: &Path) -> (bool, String) {
    let pem = dir.join("crl.pem");
    openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-out",
        pem.to_str().unwrap(),
    ]);
    let out = tool(
        "openssl",
        &[
            "verify",
            "-crl_check",
            "-CRLfile",
            pem.to_str().unwrap(),
            "-CAfile",
            &ca_file(server, "chain.pem"),
            cert.to_str().unwrap(),
        ],
    );
    (out.status.success(), text(&out))
}

/// `POST /api/v1/certificates/revoke` with `body`.
fn revoke_devices(server: &Server, token: &str, body: Value) -> Resp {
    server.json("POST", "/api/v1/certificates/revoke", token, body)
}

/// `POST /api/v1/certificates/1/revoke` (profile 1, ecc-device) with `body`.
fn revoke_serial(server: &Server, token: &str, body: Value) -> Resp {
    server.json("POST", "/api/v1/certificates/1/revoke", token, body)
}

#[test]
fn revoke_crl_and_ocsp_over_http() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let dir = f.dir.path();
    let macs = [
        "00:1A:2B:3C:5D:01",
        "00:1A:2B:3C:5D:02",
        "00:1A:2B:3C:5D:03",
    ];
    let csv = format!("macAddress\n{}\n", macs.join("\n"));
    let batch = server
        .upload_csv(
            &token,
            &csv,
            json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD}),
        )
        .expect(200, "upload-csv")
        .json();
    let batch = batch_id(&batch);
    server.wait_ready(&token, batch);
    let certs: Vec<PathBuf> = macs.iter().map(|m| leaf(&server, dir, m)).collect();
    let (device0, serial0, _) = find(&server, &token, macs[0]);
    let (_, serial1, _) = find(&server, &token, macs[1]);
    let (_, serial2, _) = find(&server, &token, macs[2]);

    // Before: an empty CRL that verifies, and "good" by POST (with a nonce) and by GET.
    let (crl, first) = fetch_crl(&server, dir, "before");
    let listing = verify_crl(&server, &crl);
    assert!(listing.contains("No Revoked Certificates"), "{listing}");
    let etag = first.header("etag").unwrap().to_owned();
    let again = server.call(
        "GET",
        &crl_url(&server),
        None,
        Body::Empty,
        &[&format!("If-None-Match: {etag}")],
    );
    assert_eq!(again.status, 304, "a matching ETag is 304");
    let post = ocsp_post(&server, &certs[0]);
    assert!(post.contains(": good"), "{post}");
    assert!(post.contains("Response verify OK"), "{post}");
    assert!(!post.contains("WARNING"), "the nonce is echoed: {post}");
    let (get, r, response) = ocsp_get(&server, dir, &certs[0], "good");
    assert!(
        get.contains(": good") && get.contains("Response verify OK"),
        "{get}"
    );
    let cache = r.header("cache-control").unwrap_or_default();
    assert!(
        cache.contains("max-age=") && cache.contains("public"),
        "{cache}"
    );
    let py = python(&[
        "ocsp",
        response.to_str().unwrap(),
        &ca_file(&server, "issuing.crt"),
    ]);
    assert_eq!(py["response_status"], "SUCCESSFUL");
    assert_eq!(py["certificate_status"], "GOOD");
    assert_eq!(
        py["serial"].as_str().unwrap().to_ascii_uppercase(),
        serial0.trim_start_matches('0')
    );
    assert_eq!(py["responder_ocsp_signing"], true);
    assert_eq!(py["responder_issued_by_ca"], true);
    // The delegated responder certificate passes pkilint with no finding at WARNING or above.
    let text = openssl(&[
        "ocsp",
        "-respin",
        response.to_str().unwrap(),
        "-resp_text",
        "-noverify",
    ]);
    let start = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("responder certificate");
    let end = text.find("-----END CERTIFICATE-----").expect("end") + 25;
    let responder = dir.join("responder.pem");
    std::fs::write(&responder, format!("{}\n", &text[start..end])).unwrap();
    let findings = crate::interop::lint(&responder);
    assert!(
        findings.is_empty(),
        "pkilint on the OCSP responder certificate: {findings:?}"
    );
    // The warm path gives the same bytes.
    let (_, cached, _) = ocsp_get(&server, dir, &certs[0], "good-again");
    assert_eq!(
        cached.body, r.body,
        "a cached response is served as it was signed"
    );

    // Refused requests change nothing.
    revoke_devices(
        &server,
        &token,
        json!({"reasonCode": 7, "deviceIds": [device0]}),
    )
    .expect_error(400, "reason 7");
    revoke_devices(
        &server,
        &token,
        json!({"reasonCode": 11, "deviceIds": [device0]}),
    )
    .expect_error(400, "reason 11");
    revoke_devices(&server, &token, json!({"reasonCode": 1, "deviceIds": []}))
        .expect_error(400, "no devices");
    revoke_devices(
        &server,
        &token,
        json!({"reasonCode": 1, "deviceIds": [device0, "0190b6a4-0000-7000-8000-000000000000"]}),
    )
    .expect_error(404, "an unknown device revokes nothing");
    revoke_serial(
        &server,
        &token,
        json!({"reasonCode": 1, "serialNumber": "0123456789ABCDEF"}),
    )
    .expect_error(404, "unknown serial");
    assert_eq!(find(&server, &token, macs[0]).2, "ISSUED");

    // Another organization's user cannot revoke (404, as for what does not exist).
    server.add_bob(&f);
    let (bob, _) = server.login("bob", BOB_PASSWORD);
    revoke_serial(
        &server,
        &bob,
        json!({"reasonCode": 1, "serialNumber": serial0}),
    )
    .expect_error(404, "another org's serial");
    revoke_devices(
        &server,
        &bob,
        json!({"reasonCode": 1, "deviceIds": [device0]}),
    )
    .expect_error(404, "another org's device");

    // Revoke: device 0 by device id (keyCompromise), device 1 by serial (superseded).
    let r = revoke_devices(
        &server,
        &token,
        json!({"reasonCode": 1, "deviceIds": [device0]}),
    )
    .expect(200, "revoke by device");
    assert!(r.body.is_empty(), "seed 001 answers 200 without a body");
    revoke_serial(
        &server,
        &token,
        json!({"reasonCode": 4, "serialNumber": serial1}),
    )
    .expect(200, "revoke by serial");
    assert_eq!(find(&server, &token, macs[0]).2, "REVOKED");
    // Idempotent: again with another reason keeps the first.
    revoke_serial(
        &server,
        &token,
        json!({"reasonCode": 3, "serialNumber": serial1}),
    )
    .expect(200, "revoke again");

    // OCSP says revoked at once, by POST and by GET (the cached "good" is gone).
    let post = ocsp_post(&server, &certs[0]);
    assert!(post.contains(": revoked"), "{post}");
    assert!(post.contains("Reason: keyCompromise"), "{post}");
    assert!(post.contains("Revocation Time:"), "{post}");
    assert!(post.contains("Response verify OK"), "{post}");
    let (get, _, response) = ocsp_get(&server, dir, &certs[1], "revoked");
    assert!(
        get.contains(": revoked") && get.contains("Reason: superseded"),
        "{get}"
    );
    let py = python(&["ocsp", response.to_str().unwrap()]);
    assert_eq!(py["certificate_status"], "REVOKED");
    assert_eq!(py["revocation_reason"], "superseded");
    let (get, _, _) = ocsp_get(&server, dir, &certs[2], "still-good");
    assert!(get.contains(": good"), "{get}");

    // The CRL follows within seconds: verified, both serials with their reasons.
    let crl = crl_listing(&server, dir, "after", &[&serial0, &serial1]);
    let listing = verify_crl(&server, &crl);
    assert!(
        listing.contains("Key Compromise") && listing.contains("Superseded"),
        "{listing}"
    );
    assert!(!listing.contains(&serial2), "{listing}");
    assert!(crl_number(&crl) > 1, "the CRL number went up");
    let py = python(&[
        "crl",
        crl.to_str().unwrap(),
        &ca_file(&server, "issuing.crt"),
    ]);
    assert_eq!(py["signature_valid"], true);
    assert_eq!(py["issuer_matches"], true);
    let entries = py["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{py}");
    let reason_of = |serial: &str| {
        entries
            .iter()
            .find(|e| {
                e["serial"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(serial.trim_start_matches('0'))
            })
            .map(|e| e["reason"].clone())
    };
    assert_eq!(reason_of(&serial0), Some(json!("key_compromise")));
    assert_eq!(reason_of(&serial1), Some(json!("superseded")));
    let (ok, out) = verify_with_crl(&server, dir, &crl, &certs[0]);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify_with_crl(&server, dir, &crl, &certs[2]);
    assert!(ok, "{out}");

    // A hold is released with removeFromCRL (8): OCSP says good again; 8 on a certificate
    // that is not on hold is refused.
    revoke_serial(
        &server,
        &token,
        json!({"reasonCode": 8, "serialNumber": serial2}),
    )
    .expect_error(409, "removeFromCRL without a hold");
    revoke_serial(
        &server,
        &token,
        json!({"reasonCode": 6, "serialNumber": serial2}),
    )
    .expect(200, "hold");
    let held = ocsp_post(&server, &certs[2]);
    assert!(
        held.contains(": revoked") && held.contains("certificateHold"),
        "{held}"
    );
    revoke_serial(
        &server,
        &token,
        json!({"reasonCode": 8, "serialNumber": serial2}),
    )
    .expect(200, "release");
    let released = ocsp_post(&server, &certs[2]);
    assert!(released.contains(": good"), "{released}");
    assert_eq!(find(&server, &token, macs[2]).2, "ISSUED");

    // A malformed request and an unknown serial.
    let garbage = server.call(
        "POST",
        "/ocsp",
        None,
        Body::Raw(b"\x30\x03\x02\x01", "application/ocsp-request"),
        &[],
    );
    assert_eq!(garbage.status, 200);
    let bad = dir.join("malformed.resp");
    std::fs::write(&bad, &garbage.body).unwrap();
    assert_eq!(
        python(&["ocsp", bad.to_str().unwrap()])["response_status"],
        "MALFORMED_REQUEST"
    );
    let junk = server.call("GET", "/ocsp/not-base64!!", None, Body::Empty, &[]);
    assert_eq!(junk.status, 200);
    std::fs::write(&bad, &junk.body).unwrap();
    assert_eq!(
        python(&["ocsp", bad.to_str().unwrap()])["response_status"],
        "MALFORMED_REQUEST"
    );
    let unknown = openssl(&[
        "ocsp",
        "-issuer",
        &ca_file(&server, "issuing.crt"),
        "-CAfile",
        &ca_file(&server, "chain.pem"),
        "-serial",
        "0x0123456789ABCDEF0123",
        "-url",
        &format!("{}/ocsp", server.base),
    ]);
    assert!(
        unknown.contains(": unknown") && unknown.contains("Response verify OK"),
        "{unknown}"
    );

    // Every revocation is in the audit log, and the chain holds.
    let log = server
        .get(&format!("/api/v1/batches/{batch}/devices/auditLog"), &token)
        .expect(200, "devices audit log")
        .json();
    let revoked: Vec<&Value> = log
        .as_array()
        .expect("an array of entries")
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("revoked serial"))
        })
        .collect();
    // keyCompromise, superseded, the hold; the release has its own entry.
    assert_eq!(revoked.len(), 3, "{log}");
    assert!(
        log.as_array().unwrap().iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("released from certificateHold (removeFromCRL)"))),
        "{log}"
    );
    assert!(
        revoked.iter().any(|e| e["deviceId"] == device0.as_str()),
        "{log}"
    );
    let verified = server.cli(&["audit", "verify"]);
    assert!(verified.contains("hash chain verified"), "{verified}");
}

#[test]
fn a_downloaded_batch_is_revoked_whole_and_a_revocation_survives_kill_9() {
    let f = fixture!();
    let dir = f.dir.path().to_path_buf();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let authority = server.authority(&token, 1);
    let batch = server
        .json(
            "PUT",
            "/api/v1/batches",
            &token,
            generator_batch(authority, "revoke me", "00:1A:2B:3C:6E:00", 25),
        )
        .expect(200, "generator batch")
        .json();
    let batch = batch_id(&batch);
    server.wait_ready(&token, batch);
    let before = server.balance_available(&token, authority);
    // Not downloaded yet: reject is the way, revoke is refused.
    server
        .json(
            "POST",
            &format!("/api/v1/batches/{batch}/revoke"),
            &token,
            json!({"reasonCode": 5}),
        )
        .expect_error(409, "revoke before download");
    server
        .json(
            "POST",
            &format!("/api/v1/batches/{batch}/revoke"),
            &token,
            json!({"reasonCode": 6}),
        )
        .expect_error(400, "a batch is not put on hold");
    server.download(&token, batch, "batch");
    let revoked = server
        .json(
            "POST",
            &format!("/api/v1/batches/{batch}/revoke"),
            &token,
            json!({"reasonCode": 5}),
        )
        .expect(200, "revoke batch")
        .json();
    assert_eq!(revoked["status"], "Revoked");
    assert_eq!(revoked["active"], false);
    assert_eq!(
        server.balance_available(&token, authority),
        before,
        "the balance is not restored"
    );
    let log = server
        .get(&format!("/api/v1/batches/{batch}/auditLog"), &token)
        .expect(200, "audit log")
        .json();
    let messages: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("-> Processing Revoke")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Processing Revoke -> Revoked")),
        "{messages:?}"
    );

    // Every certificate is on the CRL with cessationOfOperation.
    let serials: Vec<String> = (0..25)
        .map(|i| find(&server, &token, &format!("00:1A:2B:3C:6E:{i:02X}")).1)
        .collect();
    let refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    let crl = crl_listing(&server, &dir, "batch", &refs);
    let py = python(&[
        "crl",
        crl.to_str().unwrap(),
        &ca_file(&server, "issuing.crt"),
    ]);
    let entries = py["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 25);
    assert!(
        entries
            .iter()
            .all(|e| e["reason"] == "cessation_of_operation"),
        "{py}"
    );

    // A revocation acknowledged, then kill -9: after a restart OCSP still says revoked and the
    // CRL on disk is served at once.
    let single = server
        .json(
            "PUT",
            "/api/v1/batches",
            &token,
            generator_batch(authority, "one", "00:1A:2B:3C:7F:00", 1),
        )
        .expect(200, "one more")
        .json();
    server.wait_ready(&token, batch_id(&single));
    let cert = leaf(&server, &dir, "00:1A:2B:3C:7F:00");
    let (_, serial, _) = find(&server, &token, "00:1A:2B:3C:7F:00");
    revoke_serial(
        &server,
        &token,
        json!({"reasonCode": 1, "serialNumber": serial}),
    )
    .expect(200, "revoke");
    // Dropping the server SIGKILLs it (std's Child::kill): no graceful shutdown.
    drop(server);
    let server = Server::start(&f, &[]);
    let post = ocsp_post(&server, &cert);
    assert!(
        post.contains(": revoked") && post.contains("keyCompromise"),
        "{post}"
    );
    let crl = crl_listing(&server, &dir, "restart", &[&serial]);
    verify_crl(&server, &crl);
}

#[test]
fn the_cli_revokes_and_issues_and_shows_the_crl() {
    let f = fixture!();
    let csv = f.write(
        "devices.csv",
        "macAddress\n00:1A:2B:3C:8A:01\n00:1A:2B:3C:8A:02\n",
    );
    let password = f.write("pw.txt", "cli-password-1\n");
    let zip = f.path("out.zip");
    f.certmill_ok(&[
        "issue",
        "--profile",
        "ecc-device",
        "--csv",
        csv.to_str().unwrap(),
        "--param",
        "deviceClass=Aircraft",
        "--password-file",
        password.to_str().unwrap(),
        "--out",
        zip.to_str().unwrap(),
    ]);
    let found = f.certmill_ok(&["certs", "find", "--cn", "00:1A:2B:3C:8A:01"]);
    let serial = found
        .split_whitespace()
        .find(|w| w.len() == 32 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("a serial in {found}"))
        .to_owned();
    let status = f.certmill_ok(&["ocsp", "status", "--serial", &serial]);
    assert!(status.contains("good"), "{status}");
    let bad = f.certmill(&["revoke", "--serial", &serial, "--reason", "stolen"]);
    assert_eq!(
        bad.status.code(),
        Some(3),
        "an unknown reason is refused as input"
    );
    let out = f.certmill_ok(&["revoke", "--serial", &serial, "--reason", "keyCompromise"]);
    assert!(out.contains("revoked serial"), "{out}");
    let status = f.certmill_ok(&["ocsp", "status", "--serial", &serial]);
    assert!(
        status.contains("revoked") && status.contains("keyCompromise"),
        "{status}"
    );
    let unknown = f.certmill_ok(&["ocsp", "status", "--serial", "0BADC0DE"]);
    assert!(unknown.contains("unknown"), "{unknown}");

    let issued = f.certmill_ok(&["crl", "issue"]);
    assert!(issued.contains("1 entries"), "{issued}");
    let crl = f.path("cli.crl");
    let shown = f.certmill_ok(&["crl", "show", "--out", crl.to_str().unwrap()]);
    assert!(
        shown.contains(&serial) && shown.contains("keyCompromise"),
        "{shown}"
    );
    let listing = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-noout",
        "-text",
        "-verify",
        "-CAfile",
        f.data().join("ca/chain.pem").to_str().unwrap(),
    ]);
    assert!(
        listing.contains("verify OK") && listing.contains("Key Compromise"),
        "{listing}"
    );
    let second = f.certmill_ok(&["crl", "issue"]);
    assert!(second.contains("CRL number 2"), "numbers go up: {second}");
}
