//! `certmill serve` end to end: the binary listens on a free port, `curl` is the client, and
//! openssl checks what comes out. Each test starts its own server on a fresh data directory.

use crate::util::{pem_blocks, tool, unzip, Fixture};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Value};
use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub(crate) const BOB_PASSWORD: &str = "bob-password-for-tests";
/// Password of the users [`Server::role_users`] makes.
pub(crate) const ROLE_PASSWORD: &str = "role-matrix-password";
pub(crate) const PKCS12_PASSWORD: &str = "factory-line-7";
const DEFAULT_BALANCE: u64 = 1_000_000;

/// A running `certmill serve`; killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    dir: PathBuf,
    pub(crate) data: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
    files: Cell<usize>,
}

/// One HTTP answer.
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// A request body.
pub(crate) enum Body<'a> {
    Empty,
    Json(Value),
    /// Bytes with their Content-Type.
    Raw(&'a [u8], &'a str),
    /// `curl -F` arguments (multipart/form-data).
    Form(Vec<String>),
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text()))
    }

    /// Asserts the status; returns self for chaining.
    pub(crate) fn expect(self, status: u16, what: &str) -> Resp {
        assert_eq!(self.status, status, "{what}: {}", self.text());
        self
    }

    /// Asserts an error answer in the API's shape with this status.
    pub(crate) fn expect_error(self, status: u16, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {}", self.text());
        let body = self.json();
        assert!(
            body["error"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: error field: {body}"
        );
        assert!(
            body["error_description"].is_string(),
            "{what}: error_description field: {body}"
        );
        body
    }
}

impl Server {
    /// `certmill --data DIR serve --listen 127.0.0.1:0`, with the admin password set.
    pub(crate) fn start(f: &Fixture, env: &[(&str, &str)]) -> Server {
        Server::start_node(f, &f.data(), "server", &[], env)
    }

    /// A server on data directory `data`, its stderr in `<name>.stderr`, with more `serve`
    /// arguments: one node of several when they share a store.
    pub(crate) fn start_node(
        f: &Fixture,
        data: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let stderr_path = f.path(&format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_certmill"));
        command
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("CERTMILL_BASE_URL", "http://ca.certmill.test")
            .env("CERTMILL_ADMIN_PASSWORD", ADMIN_PASSWORD);
        for name in [
            "CERTMILL_DATA",
            "CERTMILL_LISTEN",
            "CERTMILL_PROFILES",
            "CERTMILL_PKCS12_PASSWORD",
            "CERTMILL_CA_PASSPHRASE",
            "CERTMILL_ADMIN_USER",
            "CERTMILL_DEFAULT_BALANCE",
            "CERTMILL_MAX_JSON_BYTES",
            "CERTMILL_MAX_UPLOAD_BYTES",
            "CERTMILL_HEADER_TIMEOUT_SECS",
            "CERTMILL_BODY_TIMEOUT_SECS",
            "CERTMILL_MAX_CONNECTIONS",
            "CERTMILL_JANITOR_INTERVAL_SECS",
            "CERTMILL_ZIP_RETENTION_DAYS",
            "CERTMILL_MAX_DEVICES",
            "CERTMILL_MAX_CSV_FIELD_BYTES",
            "CERTMILL_MAX_CSV_RECORD_BYTES",
            "CERTMILL_MAX_CSRS",
            "CERTMILL_MAX_CSR_BYTES",
            "CERTMILL_MAX_CSR_TOTAL_BYTES",
            "CERTMILL_MAX_ZIP_RATIO",
            "CERTMILL_OBJECTS",
            "CERTMILL_NODE",
            "CERTMILL_CHUNK_SIZE",
            "CERTMILL_LEASE_SECS",
            "CERTMILL_STORE",
        ] {
            command.env_remove(name);
        }
        let mut child = command
            .envs(env.iter().copied())
            .current_dir(f.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start certmill serve");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let pipe = child.stdout.take().unwrap();
            let lines = stdout.clone();
            // Keeps draining stdout after the first line so the server never blocks on it.
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix("certmill listening on ") {
                        let _ = tx.send(rest.trim().to_owned());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "certmill serve did not print its address; stdout: {:?}\nstderr: {}",
                    stdout.lock().unwrap(),
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        };
        assert!(
            base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
            "listening line: {base}"
        );
        Server {
            child,
            base,
            dir: f.dir.path().to_path_buf(),
            data: data.to_owned(),
            stdout,
            files: Cell::new(0),
        }
    }

    pub(crate) fn temp(&self, what: &str) -> PathBuf {
        let n = self.files.get() + 1;
        self.files.set(n);
        self.dir.join(format!("http-{n}.{what}"))
    }

    /// One request with curl.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Body,
        headers: &[&str],
    ) -> Resp {
        let body_path = self.temp("body");
        let head_path = self.temp("head");
        let mut args: Vec<String> = vec![
            "-sS".into(),
            "--max-time".into(),
            "120".into(),
            "-o".into(),
            body_path.display().to_string(),
            "-D".into(),
            head_path.display().to_string(),
            "-w".into(),
            "%{http_code}".into(),
            "-X".into(),
            method.into(),
        ];
        if let Some(token) = token {
            args.push("-H".into());
            args.push(format!("Authorization: Bearer {token}"));
        }
        for h in headers {
            args.push("-H".into());
            args.push((*h).to_owned());
        }
        match body {
            Body::Empty => {}
            Body::Json(value) => {
                let file = self.temp("json");
                std::fs::write(&file, value.to_string()).unwrap();
                args.push("-H".into());
                args.push("Content-Type: application/json".into());
                args.push("--data-binary".into());
                args.push(format!("@{}", file.display()));
            }
            Body::Raw(bytes, content_type) => {
                let file = self.temp("raw");
                std::fs::write(&file, bytes).unwrap();
                args.push("-H".into());
                args.push(format!("Content-Type: {content_type}"));
                args.push("--data-binary".into());
                args.push(format!("@{}", file.display()));
            }
            Body::Form(fields) => {
                for field in fields {
                    args.push("-F".into());
                    args.push(field);
                }
            }
        }
        args.push(format!("{}{path}", self.base));
        let out = Command::new("curl")
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run curl ({e}): the server tests need it"));
        let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let status: u16 = code.parse().unwrap_or(0);
        assert!(
            status != 0,
            "curl {method} {path} got no answer: {}{}",
            code,
            String::from_utf8_lossy(&out.stderr)
        );
        let head = std::fs::read_to_string(&head_path).unwrap_or_default();
        // With 100-continue there are several header blocks: the last is the answer.
        let block = head
            .split("\r\n\r\n")
            .filter(|b| !b.trim().is_empty())
            .last()
            .unwrap_or("");
        let headers = block
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = std::fs::read(&body_path).unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub(crate) fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), Body::Empty, &[])
    }

    pub(crate) fn json(&self, method: &str, path: &str, token: &str, body: Value) -> Resp {
        self.call(method, path, Some(token), Body::Json(body), &[])
    }

    /// `POST /auth/pwd`: (accessToken, refreshToken).
    pub(crate) fn login(&self, username: &str, password: &str) -> (String, String) {
        let r = self
            .call(
                "POST",
                "/auth/pwd",
                None,
                Body::Json(json!({"username": username, "password": password})),
                &[],
            )
            .expect(200, "login");
        let body = r.json();
        let access = body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned();
        let refresh = body["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_owned();
        (access, refresh)
    }

    pub(crate) fn admin(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).0
    }

    /// The id of the caller's authority for `profile_id`.
    pub(crate) fn authority(&self, token: &str, profile_id: u64) -> i64 {
        let list = self
            .get("/api/v1/authorities/allowed", token)
            .expect(200, "authorities/allowed")
            .json();
        list.as_array()
            .expect("array")
            .iter()
            .find(|a| a["profileId"] == profile_id)
            .and_then(|a| a["id"].as_i64())
            .unwrap_or_else(|| panic!("no authority for profile {profile_id}: {list}"))
    }

    /// The first page (10 rows) of the batch grid of profile 1.
    pub(crate) fn batch_list(&self, token: &str) -> Value {
        self.json(
            "POST",
            "/api/v1/batches?profileId=1",
            token,
            json!({"filter": {"pagingSettings": {"pageIndex": 0, "pageSize": 10}}, "sortColumns": null}),
        )
        .expect(200, "batch list")
        .json()
    }

    pub(crate) fn balance_available(&self, token: &str, authority: i64) -> u64 {
        self.get(
            &format!("/api/v1/authorities/{authority}/balanceavailable"),
            token,
        )
        .expect(200, "balanceavailable")
        .json()
        .as_u64()
        .expect("a bare number")
    }

    /// `PUT /api/v1/users`: a person of `organization` with one role, created by `token`'s
    /// holder; the new user's id.
    pub(crate) fn add_user(
        &self,
        token: &str,
        organization: i64,
        (login, password): (&str, &str),
        email: &str,
        role: &str,
    ) -> i64 {
        self.json(
            "PUT",
            "/api/v1/users",
            token,
            json!({"firstName": "Test", "lastName": "User", "phone": "+1 555 0100",
                   "email": email, "organizationId": organization,
                   "credentials": {"login": login, "password": password},
                   "userPrivileges": [{"userRole": role, "organizationId": organization}]}),
        )
        .expect(200, &format!("create user {login}"))
        .json()
        .as_i64()
        .expect("the new user's id")
    }

    /// `POST /api/v1/batches/upload-csv?profileId=1`: the batch JSON.
    pub(crate) fn upload_csv(&self, token: &str, csv: impl AsRef<[u8]>, params: Value) -> Resp {
        let csv_path = self.temp("csv");
        std::fs::write(&csv_path, csv).unwrap();
        self.upload("upload-csv", token, &csv_path, "text/csv", params)
    }

    /// `POST /api/v1/batches/<endpoint>?profileId=1` (`upload` for CSRs, `upload-csv`) of one
    /// file with its content type.
    pub(crate) fn upload(
        &self,
        endpoint: &str,
        token: &str,
        file: &Path,
        content_type: &str,
        params: Value,
    ) -> Resp {
        let request = self.temp("request.json");
        std::fs::write(&request, json!({ "profileParams": params }).to_string()).unwrap();
        self.call(
            "POST",
            &format!("/api/v1/batches/{endpoint}?profileId=1"),
            Some(token),
            Body::Form(vec![
                format!(
                    "csrBatchRequest=<{};type=application/json",
                    request.display()
                ),
                format!("files=@{};type={content_type}", file.display()),
            ]),
            &[],
        )
    }

    /// Polls `/status` until "Ready for download" (60 s at most).
    pub(crate) fn wait_ready(&self, token: &str, id: i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self
                .get(&format!("/api/v1/batches/{id}/status"), token)
                .expect(200, "status");
            let text = r.text();
            if text.trim() == "Ready for download" {
                assert!(
                    r.header("content-type")
                        .is_some_and(|t| t.starts_with("text/plain")),
                    "status content type {:?}",
                    r.header("content-type")
                );
                return;
            }
            assert_eq!(text.trim(), "Processing", "batch {id} status");
            assert!(Instant::now() < deadline, "batch {id} not ready after 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Downloads a batch into `<dir>/<name>.zip`, unzips it into `<dir>/<name>/`.
    pub(crate) fn download(
        &self,
        token: &str,
        id: i64,
        name: &str,
    ) -> (PathBuf, Vec<String>, Resp) {
        let r = self
            .get(&format!("/api/v1/batches/{id}/download"), token)
            .expect(200, "download");
        let zip = self.dir.join(format!("{name}.zip"));
        std::fs::write(&zip, &r.body).unwrap();
        let out = self.dir.join(name);
        let names = unzip(&zip, &out);
        (out, names, r)
    }

    /// `certmill --data DIR ARGS` while the server runs.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_certmill"))
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .env_remove("CERTMILL_DATA")
            .env_remove("CERTMILL_CA_PASSPHRASE")
            .env("CERTMILL_BASE_URL", "http://ca.certmill.test")
            .current_dir(&self.dir)
            .output()
            .expect("run certmill");
        assert!(
            out.status.success(),
            "certmill {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Adds the organization `OrgB` and in it one user per role below ADMIN, each holding only
    /// that role (`ecoadmin`, `orgadmin`, `user`, password [`ROLE_PASSWORD`]): their tokens, as
    /// `[("ECO_ADMIN", token), ("ORG_ADMIN", token), ("USER", token)]`.
    pub(crate) fn role_users(&self, f: &Fixture) -> Vec<(&'static str, String)> {
        self.cli(&["orgs", "add", "OrgB"]);
        let password_file = f.write("role.pw", &format!("{ROLE_PASSWORD}\n"));
        let mut tokens = Vec::new();
        for role in ["ECO_ADMIN", "ORG_ADMIN", "USER"] {
            let name = role.to_ascii_lowercase().replace('_', "");
            self.cli(&[
                "users",
                "add",
                &name,
                "--org",
                "OrgB",
                "--role",
                role,
                "--password-file",
                password_file.to_str().unwrap(),
            ]);
            tokens.push((role, self.login(&name, ROLE_PASSWORD).0));
        }
        tokens
    }

    /// Adds the user `bob` (role USER, password [`BOB_PASSWORD`]) in a second organization,
    /// `OrgB`, through the CLI.
    pub(crate) fn add_bob(&self, f: &Fixture) {
        self.cli(&["orgs", "add", "OrgB"]);
        let password_file = f.write("bob.pw", &format!("{BOB_PASSWORD}\n"));
        self.cli(&[
            "users",
            "add",
            "bob",
            "--org",
            "OrgB",
            "--role",
            "USER",
            "--password-file",
            password_file.to_str().unwrap(),
        ]);
    }

    /// Asserts that `/api/v1/openapi.json` documents each of `paths`.
    pub(crate) fn assert_documented(&self, paths: &[&str]) {
        let doc = self
            .call("GET", "/api/v1/openapi.json", None, Body::Empty, &[])
            .expect(200, "openapi")
            .json();
        for path in paths {
            assert!(doc["paths"][path].is_object(), "{path} in openapi.json");
        }
    }

    /// What the server printed on stdout so far.
    pub(crate) fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// SIGKILL: the process dies at once, in whatever it was doing.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then the exit status (30 s at most).
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let kill = tool("kill", &["-TERM", &pid]);
        assert!(kill.status.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit 30 s after SIGTERM; stdout: {:?}",
                self.stdout.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn batch_id(batch: &Value) -> i64 {
    batch["batchId"]
        .as_i64()
        .unwrap_or_else(|| panic!("batchId in {batch}"))
}

/// The batch JSON of seed 001 has these fields.
fn assert_batch_shape(batch: &Value) {
    for key in [
        "batchId",
        "orderNumber",
        "creationDate",
        "profile",
        "size",
        "status",
        "active",
        "batchName",
        "rejectReason",
        "generatorParametersValues",
        "userId",
        "downloadable",
        "rejectable",
    ] {
        assert!(batch.get(key).is_some(), "batch JSON lacks {key}: {batch}");
    }
}

/// Rows of manifest.csv as maps of column name to value.
pub(crate) fn manifest_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("manifest header")
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

/// `openssl verify -x509_strict` of a certificate against the server's CA chain.
pub(crate) fn verify(data: &Path, cert: &Path) {
    let out = tool(
        "openssl",
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            data.join("ca/chain.pem").to_str().unwrap(),
            cert.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "openssl verify {}: {}{}",
        cert.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 key (`<name>.key`) and CSR made by openssl; returns the CSR path.
pub(crate) fn make_csr(dir: &Path, name: &str, cn: &str) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let out = tool(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    csr
}

fn public_key(args: &[&str]) -> String {
    let out = tool("openssl", args);
    assert!(out.status.success(), "{args:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The body of a generator batch of `size` MAC addresses from `start`.
pub(crate) fn generator_batch(authority: i64, name: &str, start: &str, size: u64) -> Value {
    json!({
        "authorityId": authority,
        "batchName": name,
        "generatorId": 2,
        "generatorParams": {"startValue": start, "increment": "1"},
        "batchSize": size,
        "profileParams": {"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD, "years": "1"}
    })
}

#[test]
fn certificate_lifecycle_over_http() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();

    // Profiles: the four shipped ones, ids 1..4.
    let profiles = server
        .get("/api/v1/profiles", &token)
        .expect(200, "profiles")
        .json();
    let profiles = profiles.as_array().expect("profiles array");
    for id in 1..=4u64 {
        let p = profiles
            .iter()
            .find(|p| p["profileId"] == id)
            .unwrap_or_else(|| panic!("profile {id} in {profiles:?}"));
        assert!(p["ca"].as_str().is_some_and(|s| !s.is_empty()), "{p}");
        let algorithm = p["algorithms"][0].as_str().unwrap_or_default().to_owned();
        let expected = if id <= 2 { "EC:P-256" } else { "RSA:" };
        assert!(algorithm.starts_with(expected), "profile {id}: {p}");
    }
    assert_eq!(
        profiles.iter().find(|p| p["profileId"] == 1).unwrap()["algorithms"],
        json!(["EC:P-256"])
    );
    let profile = server
        .get("/api/v1/profiles/1", &token)
        .expect(200, "profile 1")
        .json();
    assert_eq!(profile["profileId"], 1);
    assert_eq!(profile["keyAlgorithmInfo"], "EC:P-256");
    assert!(profile["profileName"].is_string() && profile["name"].is_string());
    let raw: Value = serde_json::from_str(profile["rawProfileConfig"].as_str().expect("string"))
        .expect("rawProfileConfig is JSON");
    assert!(raw.get("Subject").is_some(), "{raw}");
    // A name works in place of the id.
    let by_name = server
        .get("/api/v1/profiles/ecc-device", &token)
        .expect(200, "profile by name")
        .json();
    assert_eq!(by_name["profileId"], 1);
    server
        .get("/api/v1/profiles/99", &token)
        .expect_error(404, "unknown profile");

    // Parameters in the seed's shape.
    let parameters = server
        .get("/api/v1/profiles/1/parameters", &token)
        .expect(200, "parameters")
        .json();
    let parameters = parameters.as_array().expect("parameters array");
    let find = |name: &str| {
        parameters
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("parameter {name} in {parameters:?}"))
            .clone()
    };
    let years = find("years");
    assert_eq!(years["inputType"], "validityPeriod");
    assert_eq!(years["required"], false);
    assert_eq!(years["scopes"], json!(["REQUEST", "BATCH"]));
    assert_eq!(years["dynamic"], true);
    assert_eq!(find("macAddress")["required"], true);
    find("deviceClass");
    find("pkcs12Password");
    for p in parameters {
        for key in ["name", "inputType", "required", "scopes", "dynamic"] {
            assert!(p.get(key).is_some(), "{key} missing in {p}");
        }
    }
    let dn = server
        .get("/api/v1/profiles/1/dn", &token)
        .expect(200, "dn")
        .json();
    let dn = dn.as_object().expect("dn object");
    assert!(dn.contains_key("CN"), "{dn:?}");
    for (attribute, value) in dn {
        let value = value.as_str().expect("string");
        // A source list is shown whole: `<CSR Subject.commonName, Request.macAddress>`.
        assert!(
            !value.starts_with('<') || value.ends_with('>'),
            "dn {attribute} cut short: {value:?}"
        );
    }

    // Generators: decimal, hex, mac.
    let generators = server
        .get("/api/v1/generators?profileId=1", &token)
        .expect(200, "generators")
        .json();
    let ids: Vec<i64> = generators
        .as_array()
        .expect("generators array")
        .iter()
        .filter_map(|g| g["generatorId"].as_i64())
        .collect();
    for id in [0, 1, 2] {
        assert!(ids.contains(&id), "generator {id} in {generators}");
    }
    let mac = generators
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["generatorId"] == 2)
        .unwrap();
    let start = mac["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "startValue")
        .unwrap_or_else(|| panic!("startValue in {mac}"));
    for key in [
        "generatorParameterId",
        "label",
        "type",
        "required",
        "validator",
        "message",
    ] {
        assert!(start.get(key).is_some(), "{key} missing in {start}");
    }

    // The user, the authority, the balance.
    let user = server
        .get("/api/v1/users", &token)
        .expect(200, "users")
        .json();
    assert_eq!(user["credentials"]["login"], "admin");
    assert_eq!(user["organizationName"], "Default");
    assert_eq!(user["isAdmin"], true);
    assert!(user["userPrivileges"]
        .as_array()
        .is_some_and(|p| !p.is_empty()));
    let organization = user["organizationId"].as_i64().expect("organizationId");
    let allowed = server
        .get("/api/v1/authorities/allowed", &token)
        .expect(200, "allowed")
        .json();
    assert_eq!(allowed.as_array().map(Vec::len), Some(4), "{allowed}");
    let authority = server.authority(&token, 1);
    let entry = allowed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == authority)
        .unwrap();
    assert_eq!(entry["balance"], DEFAULT_BALANCE);
    assert_eq!(entry["enabled"], true);
    assert!(entry["profileName"].is_string(), "{entry}");
    assert_eq!(server.balance_available(&token, authority), DEFAULT_BALANCE);
    let profile_balance = server
        .get("/api/v1/profiles/1/balance", &token)
        .expect(200, "profile balance")
        .json();
    assert_eq!(profile_balance, DEFAULT_BALANCE);

    // Upload a CSV of three devices.
    let macs = [
        "00:1A:2B:3C:4D:01",
        "00:1A:2B:3C:4D:02",
        "00:1A:2B:3C:4D:03",
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
    assert_batch_shape(&batch);
    assert_eq!(batch["size"], 3);
    let id = batch_id(&batch);
    server.wait_ready(&token, id);

    let info = server
        .get(&format!("/api/v1/batches/{id}/processing_info"), &token)
        .expect(200, "processing_info")
        .json();
    assert_eq!(info["success"], 3, "{info}");
    assert_eq!(info["failed"], 0, "{info}");
    assert!(info.get("active").is_some(), "{info}");
    let batch = server
        .get(&format!("/api/v1/batches/{id}"), &token)
        .expect(200, "batch")
        .json();
    assert_batch_shape(&batch);
    assert_eq!(batch["status"], "Ready For Download");
    assert_eq!(batch["downloadable"], true);
    assert_eq!(batch["rejectable"], true);
    assert_eq!(
        server.balance_available(&token, authority),
        DEFAULT_BALANCE - 3
    );
    let used = server
        .get(
            &format!("/api/v1/authorities/{authority}/balanceused/{organization}"),
            &token,
        )
        .expect(200, "balanceused")
        .json();
    assert_eq!(used, 3);
    let available = server
        .get(
            &format!("/api/v1/authorities/{authority}/balanceavailable/{organization}"),
            &token,
        )
        .expect(200, "balanceavailable/{organizationId}")
        .json();
    assert_eq!(available, DEFAULT_BALANCE - 3);
    let devices = server
        .get("/api/v1/devices", &token)
        .expect(200, "devices")
        .json();
    assert_eq!(devices, json!({"ordered": 3, "issued": 3}));

    // Before the download the certificate is found, not yet collected.
    let found = server
        .json(
            "POST",
            "/api/v1/certificates/find",
            &token,
            json!({"commonName": macs[0]}),
        )
        .expect(200, "find")
        .json();
    assert_eq!(found["totalCount"], 1, "{found}");
    assert_ne!(found["items"][0]["status"], "COLLECTED", "{found}");

    // Download and open every PKCS#12 with openssl.
    let (out, names, r) = server.download(&token, id, "lifecycle");
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/zip")),
        "{:?}",
        r.headers
    );
    assert!(
        r.header("content-disposition")
            .is_some_and(|d| d.contains("filename")),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert!(r.header("etag").is_some(), "{:?}", r.headers);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(names.first().map(String::as_str), Some("chain.pem"));
    assert_eq!(names.last().map(String::as_str), Some("manifest.csv"));
    let p12s: Vec<&String> = names.iter().filter(|n| n.ends_with(".p12")).collect();
    assert_eq!(p12s.len(), 3, "{names:?}");
    for (i, name) in p12s.iter().enumerate() {
        let path = out.join(name);
        let opened = tool(
            "openssl",
            &[
                "pkcs12",
                "-in",
                path.to_str().unwrap(),
                "-nodes",
                "-passin",
                &format!("pass:{PKCS12_PASSWORD}"),
            ],
        );
        assert!(
            opened.status.success(),
            "openssl pkcs12 {name}: {}",
            String::from_utf8_lossy(&opened.stderr)
        );
        let pem = String::from_utf8_lossy(&opened.stdout).into_owned();
        assert!(
            pem.contains("-----BEGIN PRIVATE KEY-----"),
            "{name}: no key"
        );
        let certs = pem_blocks(&pem);
        assert!(!certs.is_empty(), "{name}: no certificate");
        let leaf = out.join(format!("leaf-{i}.pem"));
        std::fs::write(&leaf, &certs[0]).unwrap();
        verify(&server.data, &leaf);
        // The wrong password does not open it.
        let wrong = tool(
            "openssl",
            &[
                "pkcs12",
                "-in",
                path.to_str().unwrap(),
                "-nodes",
                "-passin",
                "pass:wrong",
            ],
        );
        assert!(
            !wrong.status.success(),
            "{name} opened with a wrong password"
        );
    }
    let rows = manifest_rows(&out.join("manifest.csv"));
    let mut cns: Vec<&str> = rows.iter().map(|r| r["common_name"].as_str()).collect();
    cns.sort();
    assert_eq!(cns, macs);

    // After the download: COLLECTED, with the manifest's serial.
    let found = server
        .json(
            "POST",
            "/api/v1/certificates/find",
            &token,
            json!({"commonName": macs[0]}),
        )
        .expect(200, "find")
        .json();
    assert_eq!(found["totalCount"], 1, "{found}");
    let item = &found["items"][0];
    assert_eq!(item["status"], "COLLECTED", "{found}");
    assert_eq!(item["commonName"], macs[0]);
    let row = rows.iter().find(|r| r["common_name"] == macs[0]).unwrap();
    assert!(
        item["serialNumber"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(&row["serial_hex"])),
        "{item} vs {}",
        row["serial_hex"]
    );
    for key in ["deviceId", "creationDate"] {
        assert!(item.get(key).is_some(), "{key} in {item}");
    }
    let batch = server
        .get(&format!("/api/v1/batches/{id}"), &token)
        .expect(200, "batch")
        .json();
    assert_eq!(batch["rejectable"], false, "downloaded: {batch}");

    // Audit logs.
    let log = server
        .get(&format!("/api/v1/batches/{id}/auditLog"), &token)
        .expect(200, "auditLog")
        .json();
    let log = log.as_array().expect("auditLog array");
    assert!(!log.is_empty());
    for entry in log {
        assert_eq!(entry["batchId"], id, "{entry}");
        for key in ["logId", "logType", "userName", "dateTime", "message"] {
            assert!(entry.get(key).is_some(), "{key} in {entry}");
        }
    }
    let devices_log = server
        .get(
            &format!("/api/v1/batches/{id}/devices/auditLog?position=1"),
            &token,
        )
        .expect(200, "devices auditLog")
        .json();
    let devices_log = devices_log.as_array().expect("devices auditLog array");
    assert!(!devices_log.is_empty());
    for entry in devices_log {
        assert!(
            entry["cn"].as_str().is_some_and(|cn| macs.contains(&cn)),
            "{entry}"
        );
        for key in ["logId", "deviceId", "dateTime", "message"] {
            assert!(entry.get(key).is_some(), "{key} in {entry}");
        }
    }

    // The batch grid.
    let list = server.batch_list(&token);
    assert_eq!(list["totalCount"], 1, "{list}");
    assert_eq!(list["batches"][0]["batchId"], id, "{list}");
}

#[test]
fn csr_bundle_and_csr_zip_uploads_are_signed() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let dir = f.path("csrs");
    std::fs::create_dir_all(&dir).unwrap();

    let upload = |file: &Path, content_type: &str| -> i64 {
        let params = json!({"deviceClass": "Aircraft"});
        let batch = server
            .upload("upload", &token, file, content_type, params)
            .expect(200, "upload")
            .json();
        assert_batch_shape(&batch);
        batch_id(&batch)
    };

    // A PEM bundle of two CSRs.
    let bundle_cns = ["00:1A:2B:3C:4D:01", "00:1A:2B:3C:4D:02"];
    let mut bundle = String::new();
    let mut csrs = Vec::new();
    for (i, cn) in bundle_cns.iter().enumerate() {
        let csr = make_csr(&dir, &format!("b{i}"), cn);
        bundle.push_str(&std::fs::read_to_string(&csr).unwrap());
        csrs.push(csr);
    }
    let bundle_path = f.write("requests.pem", &bundle);
    let first = upload(&bundle_path, "application/x-pem-file");

    // A ZIP of two .csr files.
    let zip_cns = ["00:1A:2B:3C:4D:11", "00:1A:2B:3C:4D:12"];
    let zip_path = f.path("requests.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (i, cn) in zip_cns.iter().enumerate() {
            let csr = make_csr(&dir, &format!("z{i}"), cn);
            zip.start_file(format!("z{i}.csr"), options).unwrap();
            std::io::Write::write_all(&mut zip, &std::fs::read(&csr).unwrap()).unwrap();
            csrs.push(csr);
        }
        zip.finish().unwrap();
    }
    let second = upload(&zip_path, "application/zip");

    for (id, cns, offset) in [(first, bundle_cns, 0), (second, zip_cns, 2)] {
        server.wait_ready(&token, id);
        let info = server
            .get(&format!("/api/v1/batches/{id}/processing_info"), &token)
            .expect(200, "processing_info")
            .json();
        assert_eq!(info["success"], 2, "{info}");
        let (out, names, _) = server.download(&token, id, &format!("csr-{id}"));
        assert!(names.contains(&"chain.pem".to_owned()), "{names:?}");
        assert!(names.contains(&"manifest.csv".to_owned()), "{names:?}");
        let crts: Vec<&String> = names.iter().filter(|n| n.ends_with(".crt")).collect();
        assert_eq!(crts.len(), 2, "{names:?}");
        assert!(!names.iter().any(|n| n.ends_with(".p12")), "{names:?}");
        for (i, cn) in cns.iter().enumerate() {
            let crt = out.join(format!("{}.crt", cn.replace(':', "-")));
            assert!(crt.exists(), "{} in {names:?}", crt.display());
            verify(&server.data, &crt);
            let from_csr = public_key(&[
                "req",
                "-in",
                csrs[offset + i].to_str().unwrap(),
                "-pubkey",
                "-noout",
            ]);
            let from_cert =
                public_key(&["x509", "-in", crt.to_str().unwrap(), "-pubkey", "-noout"]);
            assert_eq!(from_csr, from_cert, "{cn}: the CSR's key is certified");
        }
    }
}

/// A PEM bundle is verified as it is signed: a request that does not verify still answers
/// 400 naming it, charges nothing, and leaves the attempt as a Broken batch whose serials
/// OCSP never calls good.
#[test]
fn a_refused_csr_bundle_upload_is_400_and_charges_nothing() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let authority = server.authority(&token, 1);
    let dir = f.path("csrs");
    std::fs::create_dir_all(&dir).unwrap();
    let mut bundle = String::new();
    for (i, cn) in [
        "00:1A:2B:3C:4D:21",
        "00:1A:2B:3C:4D:22",
        "00:1A:2B:3C:4D:23",
    ]
    .iter()
    .enumerate()
    {
        let pem = std::fs::read_to_string(make_csr(&dir, &format!("r{i}"), cn)).unwrap();
        if i != 1 {
            bundle.push_str(&pem);
            continue;
        }
        // The second request's signature, one bit flipped.
        let (label, mut der) = der::pem::decode_vec(pem.as_bytes()).unwrap();
        let at = der.len() - 5;
        der[at] ^= 0x01;
        bundle.push_str(&der::pem::encode_string(label, der::pem::LineEnding::LF, &der).unwrap());
    }
    let path = f.write("refused.pem", &bundle);
    let e = server
        .upload(
            "upload",
            &token,
            &path,
            "application/x-pem-file",
            json!({"deviceClass": "Aircraft"}),
        )
        .expect_error(400, "a request that does not verify");
    let description = e["error_description"].as_str().unwrap();
    assert!(description.contains("#2"), "{description}");
    assert!(description.contains("signature"), "{description}");
    assert!(
        !description.contains("#1") && !description.contains("#3"),
        "{description}"
    );
    assert_eq!(server.balance_available(&token, authority), DEFAULT_BALANCE);
    let list = server.batch_list(&token);
    assert_eq!(list["totalCount"], 1, "{list}");
    let batch = &list["batches"][0];
    assert_eq!(batch["status"], "Broken", "{batch}");
    assert!(
        batch["rejectReason"]
            .as_str()
            .is_some_and(|r| r.contains("#2")),
        "{batch}"
    );
    let id = batch["batchId"].as_i64().unwrap();
    let info = server
        .get(&format!("/api/v1/batches/{id}/processing_info"), &token)
        .expect(200, "processing_info")
        .json();
    assert_eq!(info["success"], 0, "{info}");
}

#[test]
fn generator_batch_preview_reject_and_balance() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let token = server.admin();
    let authority = server.authority(&token, 1);

    // Preview: the first device's values, no password echoed.
    let body = generator_batch(authority, "gen-a", "00:1A:2B:00:00:00", 3);
    let preview_resp = server
        .json("PUT", "/api/v1/batches/preview", &token, body.clone())
        .expect(200, "preview");
    assert!(
        !preview_resp.text().contains(PKCS12_PASSWORD),
        "the password is echoed: {}",
        preview_resp.text()
    );
    let preview = preview_resp.json();
    assert_eq!(preview["macAddress"], "00:1A:2B:00:00:00", "{preview}");
    assert_eq!(preview["serials"], "00:1A:2B:00:00:00", "{preview}");
    // A preview orders nothing.
    assert_eq!(server.balance_available(&token, authority), DEFAULT_BALANCE);

    let batch = server
        .json("PUT", "/api/v1/batches", &token, body)
        .expect(200, "create generator batch")
        .json();
    assert_batch_shape(&batch);
    assert_eq!(batch["size"], 3);
    // generatorParametersValues: the generator's own parameters, never the password.
    let recorded = &batch["generatorParametersValues"];
    assert_eq!(recorded["generatorId"], "2", "{batch}");
    assert!(recorded["startValue"].is_string(), "{batch}");
    assert!(!batch.to_string().contains("pkcs12Password"), "{batch}");
    let status = batch["status"].as_str().unwrap_or_default();
    assert!(
        ["Pending Issue", "Ready For Download"].contains(&status),
        "{batch}"
    );
    let downloaded = batch_id(&batch);
    server.wait_ready(&token, downloaded);
    let (out, _, _) = server.download(&token, downloaded, "gen-a");
    let rows = manifest_rows(&out.join("manifest.csv"));
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["row"], "1");
    assert_eq!(
        rows[0]["common_name"],
        preview["macAddress"].as_str().unwrap()
    );
    assert_eq!(rows[2]["common_name"], "00:1A:2B:00:00:02");

    // Rejecting after a download: 409, and nothing changes.
    let balance = server.balance_available(&token, authority);
    assert_eq!(balance, DEFAULT_BALANCE - 3);
    server
        .call(
            "DELETE",
            &format!("/api/v1/batches/{downloaded}"),
            Some(&token),
            Body::Raw(b"wrong lot", "text/plain"),
            &[],
        )
        .expect_error(409, "reject after download");
    let after = server
        .get(&format!("/api/v1/batches/{downloaded}"), &token)
        .expect(200, "batch")
        .json();
    assert_eq!(after["status"], "Ready For Download");
    assert_eq!(server.balance_available(&token, authority), balance);

    // A second batch, never downloaded, is rejected: its balance comes back.
    let batch = server
        .json(
            "PUT",
            "/api/v1/batches",
            &token,
            generator_batch(authority, "gen-b", "00:1A:2B:00:01:00", 4),
        )
        .expect(200, "create generator batch")
        .json();
    let rejected = batch_id(&batch);
    server.wait_ready(&token, rejected);
    assert_eq!(server.balance_available(&token, authority), balance - 4);
    server
        .call(
            "DELETE",
            &format!("/api/v1/batches/{rejected}"),
            Some(&token),
            Body::Raw(b"wrong lot", "text/plain"),
            &[],
        )
        .expect(200, "reject");
    let after = server
        .get(&format!("/api/v1/batches/{rejected}"), &token)
        .expect(200, "batch")
        .json();
    assert_eq!(after["status"], "Rejected", "{after}");
    assert_eq!(after["rejectReason"], "wrong lot", "{after}");
    assert_eq!(after["downloadable"], false, "{after}");
    assert_eq!(server.balance_available(&token, authority), balance);
    let text = server
        .get(&format!("/api/v1/batches/{rejected}/status"), &token)
        .expect(200, "status")
        .text();
    assert_eq!(text.trim(), "Not Acceptable. Status: Rejected");
    let r = server.get(&format!("/api/v1/batches/{rejected}/download"), &token);
    assert!(
        (400..500).contains(&r.status),
        "download of a rejected batch: {} {}",
        r.status,
        r.text()
    );
    // Rejecting twice is an illegal transition.
    server
        .call(
            "DELETE",
            &format!("/api/v1/batches/{rejected}"),
            Some(&token),
            Body::Raw(b"again", "text/plain"),
            &[],
        )
        .expect_error(409, "second reject");

    // A single-certificate batch.
    let batch = server
        .json(
            "PUT",
            "/api/v1/batches/createSingleCertBatch",
            &token,
            json!({"authorityId": authority, "batchName": "one", "profileParams": {
                "macAddress": "00:00:00:00:00:01", "deviceClass": "Surface Vehicle",
                "pkcs12Password": "111111", "years": "1"}}),
        )
        .expect(200, "createSingleCertBatch")
        .json();
    assert_eq!(batch["size"], 1);
    let single = batch_id(&batch);
    server.wait_ready(&token, single);
    let (out, names, _) = server.download(&token, single, "single");
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".p12")).count(),
        1,
        "{names:?}"
    );
    let p12 = names.iter().find(|n| n.ends_with(".p12")).unwrap();
    let opened = tool(
        "openssl",
        &[
            "pkcs12",
            "-in",
            out.join(p12).to_str().unwrap(),
            "-nodes",
            "-passin",
            "pass:111111",
        ],
    );
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );

    let list = server.batch_list(&token);
    assert_eq!(list["totalCount"], 3, "{list}");
    let listed: Vec<i64> = list["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(batch_id)
        .collect();
    for id in [downloaded, rejected, single] {
        assert!(listed.contains(&id), "{id} in {listed:?}");
    }
    // Paging: one per page.
    let page = server
        .json(
            "POST",
            "/api/v1/batches?profileId=1",
            &token,
            json!({"filter": {"pagingSettings": {"pageIndex": 1, "pageSize": 1}}, "sortColumns": null}),
        )
        .expect(200, "batch list page")
        .json();
    assert_eq!(page["totalCount"], 3, "{page}");
    assert_eq!(page["batches"].as_array().map(Vec::len), Some(1), "{page}");
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).expect("base64url")).expect("JSON")
}

fn encode_part(value: &Value) -> String {
    Base64UrlUnpadded::encode_string(value.to_string().as_bytes())
}

#[test]
fn tokens_rotate_reuse_is_detected_and_forgeries_are_refused() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let refresh = |token: &str| {
        server.call(
            "POST",
            "/auth/refresh",
            None,
            Body::Raw(token.as_bytes(), "text/plain"),
            &[],
        )
    };
    let users = |token: &str| server.call("GET", "/api/v1/users", Some(token), Body::Empty, &[]);

    let (access, refresh1) = server.login("admin", ADMIN_PASSWORD);
    let parts: Vec<&str> = access.split('.').collect();
    assert_eq!(parts.len(), 3, "{access}");
    assert_eq!(decode_part(parts[0])["alg"], "HS512");
    assert_eq!(decode_part(parts[1])["sub"], "admin");
    users(&access).expect(200, "access token");

    // Rotation: a new pair; the old refresh token is spent.
    let body = refresh(&refresh1).expect(200, "refresh").json();
    let access2 = body["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned();
    let refresh2 = body["refreshToken"]
        .as_str()
        .expect("refreshToken")
        .to_owned();
    assert_ne!(refresh2, refresh1);
    users(&access2).expect(200, "rotated access token");
    // Reuse of the spent token: 401, and the whole family is revoked.
    let r = refresh(&refresh1);
    assert!(r.header("www-authenticate").is_some(), "{:?}", r.headers);
    r.expect_error(401, "reused refresh token");
    refresh(&refresh2).expect_error(401, "newest token of a revoked family");
    // Another login is another family.
    let (_, other) = server.login("admin", ADMIN_PASSWORD);
    refresh(&other).expect(200, "other family");

    // Kinds do not mix.
    refresh(&access).expect_error(401, "access token as refresh token");
    let (_, fresh_refresh) = server.login("admin", ADMIN_PASSWORD);
    users(&fresh_refresh).expect_error(401, "refresh token as access token");

    // Forgeries.
    let mut claims = decode_part(parts[1]);
    claims["sub"] = json!("root");
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    let tampered_payload = format!("{}.{}.{}", parts[0], encode_part(&claims), parts[2]);
    users(&tampered_payload).expect_error(401, "modified payload");
    let mut signature: Vec<char> = parts[2].chars().collect();
    signature[0] = if signature[0] == 'A' { 'B' } else { 'A' };
    let tampered_signature = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        signature.into_iter().collect::<String>()
    );
    users(&tampered_signature).expect_error(401, "modified signature");
    let none = encode_part(&json!({"alg": "none", "typ": "JWT"}));
    users(&format!("{none}.{}.", parts[1])).expect_error(401, "alg none, no signature");
    users(&format!("{none}.{}.{}", parts[1], parts[2])).expect_error(401, "alg none, signature");
    let hs256 = encode_part(&json!({"alg": "HS256"}));
    users(&format!("{hs256}.{}.{}", parts[1], parts[2])).expect_error(401, "alg HS256");
    users("not-a-token").expect_error(401, "garbage");
    let r = server.call("GET", "/api/v1/users", None, Body::Empty, &[]);
    assert!(r.header("www-authenticate").is_some(), "{:?}", r.headers);
    r.expect_error(401, "no token");
    server
        .call(
            "GET",
            "/api/v1/users",
            None,
            Body::Empty,
            &[&format!("Authorization: Basic {access}")],
        )
        .expect_error(401, "not Bearer");

    // Wrong passwords: 5 failures per account are free, then 429 even for the right one.
    let login = |password: &str| {
        server.call(
            "POST",
            "/auth/pwd",
            None,
            Body::Json(json!({"username": "admin", "password": password})),
            &[],
        )
    };
    server
        .call(
            "POST",
            "/auth/pwd",
            None,
            Body::Json(json!({"username": "nobody", "password": "whatever-it-is"})),
            &[],
        )
        .expect_error(401, "unknown user");
    for i in 1..=5 {
        login("wrong-password").expect_error(401, &format!("wrong password #{i}"));
    }
    let r = login(ADMIN_PASSWORD);
    let retry = r.header("retry-after").map(str::to_owned);
    r.expect_error(429, "throttled login");
    assert!(
        retry
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s > 0),
        "Retry-After: {retry:?}"
    );
}

#[test]
fn other_organizations_cannot_see_a_batch() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    let batch = server
        .upload_csv(
            &admin,
            "macAddress\n00:1A:2B:3C:4D:21\n00:1A:2B:3C:4D:22\n",
            json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD}),
        )
        .expect(200, "upload-csv")
        .json();
    let id = batch_id(&batch);
    server.wait_ready(&admin, id);
    let admin_authority = server.authority(&admin, 1);

    server.add_bob(&f);
    server.cli(&[
        "authorities",
        "create",
        "--organization",
        "OrgB",
        "--profile",
        "ecc-device",
        "--balance",
        "100",
    ]);
    let (bob, _) = server.login("bob", BOB_PASSWORD);
    let me = server
        .get("/api/v1/users", &bob)
        .expect(200, "users")
        .json();
    assert_eq!(me["organizationName"], "OrgB");
    assert_eq!(me["isAdmin"], false);
    assert_eq!(me["credentials"]["login"], "bob");

    for path in [
        format!("/api/v1/batches/{id}"),
        format!("/api/v1/batches/{id}/download"),
        format!("/api/v1/batches/{id}/status"),
        format!("/api/v1/batches/{id}/processing_info"),
        format!("/api/v1/batches/{id}/auditLog"),
        format!("/api/v1/batches/{id}/devices/auditLog?position=1"),
        format!("/api/v1/authorities/{admin_authority}/balanceavailable"),
    ] {
        server
            .get(&path, &bob)
            .expect_error(404, &format!("bob GET {path}"));
    }
    server
        .call(
            "DELETE",
            &format!("/api/v1/batches/{id}"),
            Some(&bob),
            Body::Raw(b"not mine", "text/plain"),
            &[],
        )
        .expect_error(404, "bob rejects admin's batch");
    let list = server.batch_list(&bob);
    assert_eq!(list["totalCount"], 0, "{list}");
    assert_eq!(list["batches"], json!([]), "{list}");
    let found = server
        .json(
            "POST",
            "/api/v1/certificates/find",
            &bob,
            json!({"commonName": "00:1A:2B:3C:4D:21"}),
        )
        .expect(200, "find")
        .json();
    assert_eq!(found["totalCount"], 0, "{found}");
    let allowed = server
        .get("/api/v1/authorities/allowed", &bob)
        .expect(200, "allowed")
        .json();
    let allowed = allowed.as_array().expect("array");
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert_eq!(allowed[0]["balance"], 100);
    assert_eq!(allowed[0]["profileId"], 1);
    let bob_authority = allowed[0]["id"].as_i64().unwrap();
    assert_ne!(bob_authority, admin_authority);

    // Bob cannot spend admin's authority, nor more than his own balance.
    server
        .json(
            "PUT",
            "/api/v1/batches",
            &bob,
            generator_batch(admin_authority, "theirs", "00:1A:2B:00:05:00", 1),
        )
        .expect_error(404, "another organization's authority");
    server
        .json(
            "PUT",
            "/api/v1/batches",
            &bob,
            generator_batch(bob_authority, "too-big", "00:1A:2B:00:06:00", 101),
        )
        .expect_error(409, "insufficient balance");
    assert_eq!(server.balance_available(&bob, bob_authority), 100);

    // Admin's batch is untouched.
    let after = server
        .get(&format!("/api/v1/batches/{id}"), &admin)
        .expect(200, "admin's batch")
        .json();
    assert_eq!(after["status"], "Ready For Download");
    assert_eq!(
        after["rejectable"], true,
        "bob's attempts changed it: {after}"
    );
}

#[test]
fn download_links_open_one_batch_without_a_header() {
    let f = fixture!();
    let server = Server::start(&f, &[]);
    let admin = server.admin();
    let params = json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD});
    let mut ids = Vec::new();
    for csv in [
        "macAddress\n00:1A:2B:3C:4D:31\n00:1A:2B:3C:4D:32\n",
        "macAddress\n00:1A:2B:3C:4D:33\n",
    ] {
        let batch = server
            .upload_csv(&admin, csv, params.clone())
            .expect(200, "upload-csv")
            .json();
        let id = batch_id(&batch);
        server.wait_ready(&admin, id);
        ids.push(id);
    }
    let (first, second) = (ids[0], ids[1]);
    let link = server
        .call(
            "POST",
            &format!("/api/v1/batches/{first}/download-link"),
            Some(&admin),
            Body::Empty,
            &[],
        )
        .expect(200, "download-link")
        .json();
    assert_eq!(link["expiresIn"], 60, "{link}");
    let url = link["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("/api/v1/batches/{first}/download?ticket=")),
        "{url}"
    );
    let ticket = url.split("ticket=").nth(1).unwrap().to_owned();

    // The link needs no Authorization header and gives the ZIP, marking the batch downloaded.
    let zip = server
        .call("GET", &url, None, Body::Empty, &[])
        .expect(200, "download by link");
    assert_eq!(zip.header("content-type"), Some("application/zip"));
    let path = f.path("by-link.zip");
    std::fs::write(&path, &zip.body).unwrap();
    let names = unzip(&path, &f.path("by-link"));
    assert!(
        names.iter().any(|n| n == "00-1A-2B-3C-4D-31.p12"),
        "{names:?}"
    );
    let batch = server
        .get(&format!("/api/v1/batches/{first}"), &admin)
        .expect(200, "batch")
        .json();
    assert_eq!(batch["rejectable"], false, "downloaded by link: {batch}");

    // The ticket opens that batch's ZIP and nothing else; an access token is no ticket.
    for path in [
        format!("/api/v1/batches/{second}/download?ticket={ticket}"),
        format!("/api/v1/batches/{first}?ticket={ticket}"),
        format!("/api/v1/batches/{first}/auditLog?ticket={ticket}"),
        format!("/api/v1/batches/{first}/download?ticket={admin}"),
        format!("/api/v1/batches/{first}/download?ticket={ticket}x"),
    ] {
        server
            .call("GET", &path, None, Body::Empty, &[])
            .expect_error(401, &path);
    }
    let refused = server
        .call(
            "GET",
            &format!("/api/v1/batches/{first}/download?ticket={ticket}"),
            Some(&ticket),
            Body::Empty,
            &[],
        )
        .expect_error(401, "a ticket as a bearer token");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("not an access token"),
        "{refused}"
    );

    // Another organization gets no link; a batch that cannot be downloaded gets none either.
    server.add_bob(&f);
    let (bob, _) = server.login("bob", BOB_PASSWORD);
    server
        .call(
            "POST",
            &format!("/api/v1/batches/{first}/download-link"),
            Some(&bob),
            Body::Empty,
            &[],
        )
        .expect_error(404, "bob asks for admin's link");
    server
        .call(
            "DELETE",
            &format!("/api/v1/batches/{second}"),
            Some(&admin),
            Body::Raw(b"wrong devices", "text/plain"),
            &[],
        )
        .expect(200, "reject");
    server
        .call(
            "POST",
            &format!("/api/v1/batches/{second}/download-link"),
            Some(&admin),
            Body::Empty,
            &[],
        )
        .expect_error(409, "link to a rejected batch");
}

#[test]
fn errors_limits_ranges_openapi_and_graceful_shutdown() {
    let f = fixture!();
    let mut server = Server::start(
        &f,
        &[
            ("CERTMILL_MAX_UPLOAD_BYTES", "1000"),
            ("CERTMILL_MAX_JSON_BYTES", "4000"),
        ],
    );
    let token = server.admin();
    let authority = server.authority(&token, 1);

    // Unknown paths and objects.
    server
        .get("/api/v1/nothing-here", &token)
        .expect_error(404, "unknown path");
    server
        .get("/api/v1/batches/999999", &token)
        .expect_error(404, "unknown batch");
    let r = server.get("/api/v1/batches/not-a-number", &token);
    assert!(
        [400, 404].contains(&r.status),
        "non-numeric batch id: {} {}",
        r.status,
        r.text()
    );
    let status = r.status;
    r.expect_error(status, "non-numeric batch id");

    // A malformed upload names its row, never a path of the server.
    let ragged = server
        .upload_csv(
            &token,
            "macAddress\n00:1A:2B:3C:4D:01,extra\n",
            json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD}),
        )
        .expect_error(400, "a ragged CSV");
    let said = ragged["error_description"].as_str().unwrap();
    assert!(said.contains("row 1"), "{said}");
    let data = server.data.display().to_string();
    assert!(!said.contains(&data) && !said.contains("/tmp"), "{said}");

    // Bodies.
    let bad_json = server.call(
        "PUT",
        "/api/v1/batches",
        Some(&token),
        Body::Raw(b"{\"authorityId\": ", "application/json"),
        &[],
    );
    bad_json.expect_error(400, "invalid JSON body");
    server
        .call(
            "POST",
            "/auth/pwd",
            None,
            Body::Raw(b"{\"username\": \"admin\",", "application/json"),
            &[],
        )
        .expect_error(400, "invalid JSON login");
    server
        .call(
            "PUT",
            "/api/v1/batches",
            Some(&token),
            Body::Raw(
                generator_batch(authority, "x", "00:1A:2B:00:00:00", 1)
                    .to_string()
                    .as_bytes(),
                "text/plain",
            ),
            &[],
        )
        .expect_error(415, "wrong content type");
    let mut missing = generator_batch(authority, "x", "00:1A:2B:00:00:00", 1);
    missing["profileParams"]
        .as_object_mut()
        .unwrap()
        .remove("pkcs12Password");
    let e = server
        .json("PUT", "/api/v1/batches", &token, missing)
        .expect_error(400, "no PKCS#12 password");
    assert!(
        e["error_description"]
            .as_str()
            .is_some_and(|d| d.to_ascii_lowercase().contains("password")),
        "{e}"
    );
    let mut big = generator_batch(authority, "x", "00:1A:2B:00:00:00", 1);
    big["batchName"] = json!("n".repeat(5000));
    server
        .json("PUT", "/api/v1/batches", &token, big)
        .expect_error(413, "JSON over CERTMILL_MAX_JSON_BYTES");

    // A bad MAC in row 2: 400 naming the row, nothing ordered.
    let e = server
        .upload_csv(
            &token,
            "macAddress\n00:1A:2B:3C:4D:31\nnot-a-mac\n00:1A:2B:3C:4D:33\n",
            json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD}),
        )
        .expect_error(400, "bad MAC");
    let description = e["error_description"].as_str().unwrap();
    assert!(description.contains("row 2"), "{description}");
    assert!(
        !description.contains("row 1:") && !description.contains("row 3"),
        "{description}"
    );
    assert_eq!(server.balance_available(&token, authority), DEFAULT_BALANCE);

    // An upload over CERTMILL_MAX_UPLOAD_BYTES.
    let mut csv = String::from("macAddress\n");
    for i in 0..200 {
        csv.push_str(&format!("00:1A:2B:3C:{:02X}:{:02X}\n", i >> 8, i & 0xff));
    }
    server
        .upload_csv(
            &token,
            &csv,
            json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD}),
        )
        .expect_error(413, "upload over the limit");
    assert_eq!(server.balance_available(&token, authority), DEFAULT_BALANCE);

    // Range download.
    let batch = server
        .upload_csv(
            &token,
            "macAddress\n00:1A:2B:3C:4D:41\n00:1A:2B:3C:4D:42\n",
            json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD}),
        )
        .expect(200, "upload-csv")
        .json();
    let id = batch_id(&batch);
    server.wait_ready(&token, id);
    let path = format!("/api/v1/batches/{id}/download");
    let part = server
        .call(
            "GET",
            &path,
            Some(&token),
            Body::Empty,
            &["Range: bytes=0-99"],
        )
        .expect(206, "range");
    assert_eq!(part.body.len(), 100);
    let full = server.get(&path, &token).expect(200, "full download");
    assert!(full.body.len() > 100);
    assert_eq!(part.body[..], full.body[..100]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-99/{}", full.body.len()).as_str()),
        "{:?}",
        part.headers
    );
    assert_eq!(part.header("content-length"), Some("100"));
    assert_eq!(part.header("etag"), full.header("etag"));
    // A range past the end: 416 with the file's length, in the JSON error shape.
    let beyond = server
        .call(
            "GET",
            &path,
            Some(&token),
            Body::Empty,
            &["Range: bytes=999999999-"],
        )
        .expect(416, "range past the end");
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{}", full.body.len()).as_str())
    );
    assert_eq!(beyond.json()["error"], "range_not_satisfiable");

    // OpenAPI, health, metrics: no token needed.
    let doc = server
        .call("GET", "/api/v1/openapi.json", None, Body::Empty, &[])
        .expect(200, "openapi")
        .json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    for (method, path) in [
        ("post", "/auth/pwd"),
        ("post", "/auth/refresh"),
        ("get", "/api/v1/profiles"),
        ("get", "/api/v1/profiles/{profileId}"),
        ("get", "/api/v1/profiles/{profileId}/parameters"),
        ("get", "/api/v1/profiles/{profileId}/balance"),
        ("get", "/api/v1/profiles/{profileId}/dn"),
        ("get", "/api/v1/generators"),
        ("get", "/api/v1/authorities/allowed"),
        (
            "get",
            "/api/v1/authorities/{authorityId}/balanceused/{organizationId}",
        ),
        (
            "get",
            "/api/v1/authorities/{authorityId}/balanceavailable/{organizationId}",
        ),
        ("get", "/api/v1/authorities/{authorityId}/balanceavailable"),
        ("post", "/api/v1/batches"),
        ("put", "/api/v1/batches"),
        ("put", "/api/v1/batches/createSingleCertBatch"),
        ("put", "/api/v1/batches/preview"),
        ("post", "/api/v1/batches/upload"),
        ("post", "/api/v1/batches/upload-csv"),
        ("get", "/api/v1/batches/{batchId}"),
        ("delete", "/api/v1/batches/{batchId}"),
        ("get", "/api/v1/batches/{batchId}/status"),
        ("get", "/api/v1/batches/{batchId}/processing_info"),
        ("get", "/api/v1/batches/{batchId}/auditLog"),
        ("get", "/api/v1/batches/{batchId}/devices/auditLog"),
        ("get", "/api/v1/batches/{batchId}/download"),
        ("post", "/api/v1/certificates/find"),
        ("get", "/api/v1/devices"),
        ("get", "/api/v1/users"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{} {path} not in openapi.json",
            method.to_ascii_uppercase()
        );
    }
    server
        .call("GET", "/healthz", None, Body::Empty, &[])
        .expect(200, "healthz");
    let metrics = server
        .call("GET", "/metrics", None, Body::Empty, &[])
        .expect(200, "metrics")
        .text();
    assert!(metrics.contains("certmill_"), "{metrics}");

    // SIGTERM: a graceful exit with status 0.
    let status = server.terminate();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}
