//! Issue 17, "Hostile and broken input", over HTTP: slow and idle connections, stalled and
//! oversized bodies, wrong content types, malformed JSON, login bursts, and error bodies that
//! never show the server's internals. Slow clients are raw `TcpStream`s, since curl cannot
//! stall on purpose.

use crate::server::{generator_batch, Body, Server, ADMIN_PASSWORD, PKCS12_PASSWORD};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// The balance of each default authority (`CERTMILL_DEFAULT_BALANCE` is unset in tests).
const DEFAULT_BALANCE: u64 = 1_000_000;

/// An answer read off a raw connection.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error in the API's JSON shape with this status; returns it.
    fn expect_error(&self, status: u16, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {}", self.text());
        let body: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", self.text()));
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {body}"
        );
        assert!(body["error_description"].is_string(), "{what}: {body}");
        body
    }
}

/// A connection to the server, reads failing after 60 s (a hung server fails the test).
fn connect(server: &Server) -> TcpStream {
    connect_to(server.base.trim_start_matches("http://"))
}

fn connect_to(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection (a reset after some bytes ends it too), then
/// parses the one answer.
fn read_answer(stream: &mut TcpStream) -> Raw {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if !bytes.is_empty() && e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the answer: {e} (after {} bytes)", bytes.len()),
        }
    }
    parse_answer(&bytes)
}

fn parse_answer(bytes: &[u8]) -> Raw {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line of {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Raw {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16)
            .expect("chunk size");
        if size == 0 || rest.len() < end + 2 + size {
            return out;
        }
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[(end + 4 + size).min(rest.len())..];
    }
}

/// One complete request on a new connection (`Connection: close`): its answer.
fn request(server: &Server, method: &str, path: &str, headers: &[String], body: &[u8]) -> Raw {
    request_to(
        server.base.trim_start_matches("http://"),
        method,
        path,
        headers,
        body,
    )
}

fn request_to(address: &str, method: &str, path: &str, headers: &[String], body: &[u8]) -> Raw {
    let mut stream = connect_to(address);
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: certmill.test\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(body).expect("send the body");
    read_answer(&mut stream)
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

fn login_body(username: &str, password: &str) -> Vec<u8> {
    json!({"username": username, "password": password})
        .to_string()
        .into_bytes()
}

/// Waits until the server closes `stream` (EOF or reset) and returns what it sent first;
/// panics if it stays open `within`.
fn wait_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(within)).unwrap();
    let start = Instant::now();
    let mut sent = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return sent,
            Ok(n) => sent.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return sent,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "the connection stayed open {:?} ({e}); it sent {:?}",
                start.elapsed(),
                String::from_utf8_lossy(&sent)
            ),
        }
    }
}

/// The number of batches the caller sees, and the balance of the authority of profile 1.
fn batches_and_balance(server: &Server, token: &str, authority: i64) -> (u64, u64) {
    let list = server
        .json(
            "POST",
            "/api/v1/batches?profileId=1",
            token,
            json!({"filter": {"pagingSettings": {"pageIndex": 0, "pageSize": 10}}, "sortColumns": null}),
        )
        .expect(200, "batch list")
        .json();
    let count = list["totalCount"]
        .as_u64()
        .unwrap_or_else(|| panic!("{list}"));
    (count, server.balance_available(token, authority))
}

/// The spooled uploads left in the data directory.
fn spooled(server: &Server) -> Vec<String> {
    match std::fs::read_dir(server.data.join("uploads")) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A multipart upload-csv head and the start of its body: the JSON part, then the CSV part's
/// head and `rows`. The caller sends the rest (or not).
fn upload_start(token: &str, rows: &str, length: Option<usize>) -> (String, Vec<u8>) {
    let boundary = "certmill-hostile-boundary";
    let request =
        json!({"profileParams": {"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD}});
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrBatchRequest\"\r\n\
         Content-Type: application/json\r\n\r\n{request}\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"files\"; filename=\"devices.csv\"\r\n\
         Content-Type: text/csv\r\n\r\nmacAddress\n{rows}"
    );
    let framing = match length {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    let head = format!(
        "POST /api/v1/batches/upload-csv?profileId=1 HTTP/1.1\r\nHost: certmill.test\r\n\
         Connection: close\r\n{}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         {framing}\r\n",
        bearer(token)
    );
    (head, body.into_bytes())
}

fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn slow_headers_and_idle_keep_alive_connections_are_cut_off() {
    let f = fixture!();
    let server = Server::start(&f, &[("CERTMILL_HEADER_TIMEOUT_SECS", "2")]);

    // Slowloris: a header byte every 200 ms never completes the head; the server does not wait
    // for it past the header timeout, however steadily the bytes come.
    let mut slow = connect(&server);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: certmill.test\r\nX-Slow: ")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut closed = false;
    let mut buffer = [0u8; 1024];
    while start.elapsed() < Duration::from_secs(30) {
        if slow.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        match slow.read(&mut buffer) {
            Ok(0) => {
                closed = true;
                break;
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(
        closed,
        "a slowloris connection open after {:?}",
        start.elapsed()
    );

    // A client that connects and sends nothing.
    let mut silent = connect(&server);
    wait_closed(&mut silent, Duration::from_secs(30));

    // An idle keep-alive connection: answered once, then closed by the server.
    let mut idle = connect(&server);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: certmill.test\r\n\r\n")
        .unwrap();
    let sent = wait_closed(&mut idle, Duration::from_secs(30));
    let answer = parse_answer(&sent);
    assert_eq!(answer.status, 200, "{}", answer.text());

    // The server still answers.
    let health = request(&server, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200, "{}", health.text());
}

#[test]
fn a_stalled_body_is_answered_408_and_leaves_nothing_behind() {
    let f = fixture!();
    let server = Server::start(&f, &[("CERTMILL_BODY_TIMEOUT_SECS", "2")]);
    let token = server.admin();
    let authority = server.authority(&token, 1);

    // A JSON order that declares 2000 bytes and sends 40.
    let mut stream = connect(&server);
    let head = format!(
        "PUT /api/v1/batches HTTP/1.1\r\nHost: certmill.test\r\n{}\r\n\
         Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n",
        bearer(&token)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let order = generator_batch(authority, "stalled", "00:1A:2B:00:00:00", 1).to_string();
    stream.write_all(&order.as_bytes()[..40]).unwrap();
    let answer = read_answer(&mut stream);
    let e = answer.expect_error(408, "a stalled JSON body");
    assert_eq!(e["error"], "request_timeout", "{e}");
    assert_eq!(answer.header("connection"), Some("close"));

    // An upload whose CSV stops halfway: 408, and its spool file is gone.
    let (head, body) = upload_start(
        &token,
        "00:1A:2B:3C:4D:01\n00:1A:2B:3C:4D:02\n",
        Some(100_000),
    );
    let mut stream = connect(&server);
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    read_answer(&mut stream).expect_error(408, "a stalled upload");

    assert_eq!(
        batches_and_balance(&server, &token, authority),
        (0, DEFAULT_BALANCE),
        "a stalled request ordered nothing"
    );
    assert_eq!(spooled(&server), Vec::<String>::new(), "spool files left");
}

#[test]
fn wrong_content_types_are_415_in_the_api_shape() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let authority = server.authority(&token, 1);
    let order = generator_batch(authority, "typed", "00:1A:2B:00:00:00", 1).to_string();
    let login = String::from_utf8(login_body("admin", ADMIN_PASSWORD)).unwrap();

    for (method, path, auth, body, content_type) in [
        (
            "PUT",
            "/api/v1/batches",
            true,
            order.as_str(),
            Some("text/plain"),
        ),
        ("PUT", "/api/v1/batches", true, order.as_str(), None),
        (
            "PUT",
            "/api/v1/batches/preview",
            true,
            order.as_str(),
            Some("application/x-www-form-urlencoded"),
        ),
        (
            "PUT",
            "/api/v1/batches/createSingleCertBatch",
            true,
            order.as_str(),
            None,
        ),
        (
            "POST",
            "/auth/pwd",
            false,
            login.as_str(),
            Some("text/plain"),
        ),
        ("POST", "/auth/pwd", false, login.as_str(), None),
        (
            "POST",
            "/api/v1/batches/upload-csv?profileId=1",
            true,
            order.as_str(),
            Some("application/json"),
        ),
        (
            "POST",
            "/api/v1/batches/upload?profileId=1",
            true,
            order.as_str(),
            Some("text/plain"),
        ),
    ] {
        let mut headers = Vec::new();
        if auth {
            headers.push(bearer(&token));
        }
        if let Some(content_type) = content_type {
            headers.push(format!("Content-Type: {content_type}"));
        }
        let what = format!("{method} {path} as {content_type:?}");
        let e = request(&server, method, path, &headers, body.as_bytes()).expect_error(415, &what);
        assert_eq!(e["error"], "unsupported_media_type", "{what}: {e}");
    }
    assert_eq!(
        batches_and_balance(&server, &token, authority),
        (0, DEFAULT_BALANCE)
    );
}

#[test]
fn malformed_json_is_400_naming_the_field_or_position() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let authority = server.authority(&token, 1);
    let json_type = "Content-Type: application/json".to_owned();

    // A field of the wrong type is named.
    let mut order = generator_batch(authority, "typed", "00:1A:2B:00:00:00", 1);
    order["batchSize"] = json!("three");
    let e = request(
        &server,
        "PUT",
        "/api/v1/batches",
        &[bearer(&token), json_type.clone()],
        order.to_string().as_bytes(),
    )
    .expect_error(400, "batchSize as a string");
    let said = e["error_description"].as_str().unwrap();
    assert!(said.contains("batchSize"), "{said}");

    let e = request(
        &server,
        "POST",
        "/auth/pwd",
        std::slice::from_ref(&json_type),
        br#"{"username": 7, "password": "x"}"#,
    )
    .expect_error(400, "username as a number");
    let said = e["error_description"].as_str().unwrap();
    assert!(said.contains("username"), "{said}");

    // Broken syntax is placed by line and column.
    for broken in [
        &b"{\"authorityId\": 1,, }"[..],
        b"{\"authorityId\": ",
        b"[1, 2",
    ] {
        let e = request(
            &server,
            "PUT",
            "/api/v1/batches",
            &[bearer(&token), json_type.clone()],
            broken,
        )
        .expect_error(400, "broken JSON");
        let said = e["error_description"].as_str().unwrap();
        assert!(said.contains("line 1 column"), "{said}");
    }
    assert_eq!(
        batches_and_balance(&server, &token, authority),
        (0, DEFAULT_BALANCE)
    );
}

#[test]
fn oversized_bodies_are_413_declared_or_streamed_and_store_nothing() {
    let f = fixture!();
    let server = Server::start(
        &f,
        &[
            ("CERTMILL_MAX_JSON_BYTES", "4000"),
            ("CERTMILL_MAX_UPLOAD_BYTES", "1000"),
        ],
    );
    let token = server.admin();
    let authority = server.authority(&token, 1);
    let json_type = "Content-Type: application/json".to_owned();

    // Declared: answered from the head alone, before any body byte is sent.
    let mut stream = connect(&server);
    let head = format!(
        "PUT /api/v1/batches HTTP/1.1\r\nHost: certmill.test\r\n{}\r\n{json_type}\r\n\
         Content-Length: 1000000\r\n\r\n",
        bearer(&token)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let e = read_answer(&mut stream).expect_error(413, "a declared JSON body over the limit");
    assert_eq!(e["error"], "payload_too_large", "{e}");

    // Streamed: a chunked JSON order whose batch name runs past the limit.
    let mut order = generator_batch(authority, "big", "00:1A:2B:00:00:00", 1);
    order["batchName"] = json!("n".repeat(6000));
    let order = order.to_string();
    let mut stream = connect(&server);
    let head = format!(
        "PUT /api/v1/batches HTTP/1.1\r\nHost: certmill.test\r\nConnection: close\r\n{}\r\n\
         {json_type}\r\nTransfer-Encoding: chunked\r\n\r\n",
        bearer(&token)
    );
    stream.write_all(head.as_bytes()).unwrap();
    for piece in order.as_bytes().chunks(1500) {
        // The server may answer and close once past the limit: later writes may fail.
        if stream.write_all(&chunk(piece)).is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let e = read_answer(&mut stream).expect_error(413, "a chunked JSON body over the limit");
    assert_eq!(e["error"], "payload_too_large", "{e}");

    // Uploads, declared and streamed.
    let rows: String = (0..100)
        .map(|i| format!("00:1A:2B:3C:{:02X}:{:02X}\n", i >> 8, i & 0xff))
        .collect();
    let (head, _) = upload_start(&token, &rows, Some(50_000));
    let mut stream = connect(&server);
    stream.write_all(head.as_bytes()).unwrap();
    read_answer(&mut stream).expect_error(413, "a declared upload over the limit");

    let (head, mut body) = upload_start(&token, &rows, None);
    body.extend_from_slice(b"\r\n--certmill-hostile-boundary--\r\n");
    let mut stream = connect(&server);
    stream.write_all(head.as_bytes()).unwrap();
    for piece in body.chunks(500) {
        if stream.write_all(&chunk(piece)).is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let e = read_answer(&mut stream).expect_error(413, "a chunked upload over the limit");
    assert_eq!(e["error"], "payload_too_large", "{e}");

    assert_eq!(
        batches_and_balance(&server, &token, authority),
        (0, DEFAULT_BALANCE),
        "an oversized request ordered nothing"
    );
    assert_eq!(spooled(&server), Vec::<String>::new(), "spool files left");
}

/// Per-account policy of `certmill::auth::ACCOUNT_POLICY`: free failures before delays.
const FREE_FAILURES: usize = 5;

/// `n` concurrent logins of `admin` with a wrong password: their answers.
fn login_burst(server: &Server, n: usize) -> Vec<Raw> {
    let barrier = Arc::new(Barrier::new(n));
    let address = server.base.trim_start_matches("http://");
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    let body = login_body("admin", &format!("wrong-password-{i}"));
                    barrier.wait();
                    request_to(
                        address,
                        "POST",
                        "/auth/pwd",
                        &["Content-Type: application/json".to_owned()],
                        &body,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a login thread"))
            .collect()
    })
}

/// Checks a burst's answers: only 401 (a verified wrong guess) and 429 (refused unverified,
/// with Retry-After); returns (401s, longest Retry-After).
fn tally(answers: &[Raw]) -> (usize, u64) {
    let mut verified = 0;
    let mut longest = 0;
    for answer in answers {
        match answer.status {
            401 => verified += 1,
            429 => {
                let e = answer.expect_error(429, "a throttled login");
                assert_eq!(e["error"], "too_many_requests", "{e}");
                let retry: u64 = answer
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("Retry-After in {:?}", answer.headers));
                assert!((1..=900).contains(&retry), "Retry-After {retry}");
                longest = longest.max(retry);
            }
            other => panic!("a wrong password answered {other}: {}", answer.text()),
        }
    }
    (verified, longest)
}

/// Seconds the next login of `admin` must wait: one more wrong password, refused unverified.
fn delay_now(server: &Server) -> u64 {
    let (verified, wait) = tally(&login_burst(server, 1));
    assert_eq!(verified, 0, "a login during the delay was verified");
    wait
}

#[test]
fn a_login_burst_cannot_race_past_the_throttle() {
    let f = fixture!();
    let server = Server::start(&f, &[]);

    // 40 at once: no more guesses are verified than the free failures; the rest are refused
    // while those are in flight, and the fifth failure starts a 2 s delay.
    let (verified, _) = tally(&login_burst(&server, 40));
    assert!(
        (1..=FREE_FAILURES).contains(&verified),
        "{verified} of 40 concurrent guesses were verified"
    );
    if verified == FREE_FAILURES {
        let wait = delay_now(&server);
        assert!((1..=2).contains(&wait), "the first delay is 2 s: {wait}");
    }

    // Bursts until the delay doubles: past the free failures, one guess per burst.
    let mut wait = 0;
    for round in 0.. {
        if wait >= 3 {
            break;
        }
        assert!(round < 10, "the delay stays at {wait} s");
        std::thread::sleep(Duration::from_secs(wait + 1));
        let (verified, _) = tally(&login_burst(&server, 40));
        assert!(
            verified <= 1,
            "{verified} guesses verified past the free failures"
        );
        wait = delay_now(&server);
    }
    assert!(wait <= 8, "delays double from 2 s: {wait}");

    // The right password during the delay is refused too, unverified.
    let right = request(
        &server,
        "POST",
        "/auth/pwd",
        &["Content-Type: application/json".to_owned()],
        &login_body("admin", ADMIN_PASSWORD),
    );
    let e = right.expect_error(429, "the right password during the delay");
    assert_eq!(e["error"], "too_many_requests", "{e}");
    assert!(right.header("retry-after").is_some(), "{:?}", right.headers);
}

#[test]
fn error_bodies_never_show_server_paths_or_internals() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let json_type = "Content-Type: application/json".to_owned();
    let mut answers: Vec<(String, u16, String)> = Vec::new();
    let mut record = |what: &str, status: u16, body: String| {
        answers.push((what.to_owned(), status, body));
    };

    let r = request(
        &server,
        "PUT",
        "/api/v1/batches",
        &[bearer(&token), json_type.clone()],
        b"{\"authorityId\": ",
    );
    record("bad JSON", r.status, r.text());
    let r = server.upload_csv(
        &token,
        "macAddress\n00:1A:2B:3C:4D:01,extra\nnot-a-mac\n",
        json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD}),
    );
    record("bad CSV upload", r.status, r.text());
    let r = server.call(
        "POST",
        "/api/v1/batches/upload?profileId=1",
        Some(&token),
        Body::Form(vec![format!(
            "files=@{};type=application/zip",
            f.write("not.zip", "PK\u{3}\u{4} this is no ZIP").display()
        )]),
        &[],
    );
    record("bad ZIP upload", r.status, r.text());
    let r = server.get("/api/v1/batches/987654", &token);
    record("unknown batch", r.status, r.text());
    let r = server.get("/api/v1/batches/987654/download", &token);
    record("unknown batch download", r.status, r.text());
    let r = server.get(
        "/api/v1/organizations?filter=organizationName%20eq%20%27unterminated",
        &token,
    );
    record("bad filter", r.status, r.text());
    let r = request(
        &server,
        "DELETE",
        "/api/v1/profiles",
        &[bearer(&token)],
        b"",
    );
    record("wrong method", r.status, r.text());
    let r = request(
        &server,
        "GET",
        "/api/v1/batches/%ZZ",
        &[bearer(&token)],
        b"",
    );
    record("bad path", r.status, r.text());

    let data = server.data.display().to_string();
    let dir = f.dir.path().display().to_string();
    for (what, status, body) in &answers {
        assert!((400..500).contains(status), "{what}: {status} {body}");
        let parsed: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
        assert!(parsed["error"].is_string(), "{what}: {body}");
        for leak in [
            data.as_str(),
            dir.as_str(),
            "/tmp",
            "panicked",
            "src/",
            "engine/",
        ] {
            assert!(!body.contains(leak), "{what} shows {leak:?}: {body}");
        }
    }
}

#[test]
fn the_server_answers_while_hostile_clients_hold_connections() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();

    // 50 slowloris connections inside the (default, 10 s) header timeout, and a stalled upload
    // inside the (default, 30 s) body timeout.
    let mut hostile: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: certmill.test\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let (head, body) = upload_start(&token, "00:1A:2B:3C:4D:01\n", Some(100_000));
    let mut stalled = connect(&server);
    stalled.write_all(head.as_bytes()).unwrap();
    stalled.write_all(&body).unwrap();
    hostile.push(stalled);

    let start = Instant::now();
    let health = request(&server, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200, "{}", health.text());
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "/healthz took {took:?}");

    let start = Instant::now();
    let login = request(
        &server,
        "POST",
        "/auth/pwd",
        &["Content-Type: application/json".to_owned()],
        &login_body("admin", ADMIN_PASSWORD),
    );
    assert_eq!(login.status, 200, "{}", login.text());
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "a login took {took:?}");
    drop(hostile);
}

#[test]
fn past_the_connection_cap_clients_wait_until_idle_ones_time_out() {
    let f = fixture!();
    let server = Server::start(
        &f,
        &[
            ("CERTMILL_MAX_CONNECTIONS", "4"),
            ("CERTMILL_HEADER_TIMEOUT_SECS", "2"),
        ],
    );
    // Four silent sockets take every slot; a fifth client waits in the backlog and is served
    // once the header timeout has closed them.
    let mut idle: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
    let health = request(&server, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200, "{}", health.text());
    for stream in &mut idle {
        wait_closed(stream, Duration::from_secs(30));
    }
}
