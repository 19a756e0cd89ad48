//! Several certmill nodes issuing one batch in chunks (docs/SCALE-OUT.md): three `certmill
//! serve` processes share a store and an object store; one is killed with SIGKILL mid-batch;
//! the batch still completes, its stitched ZIP is valid and every serial is recorded once.

use crate::server::{batch_id, generator_batch, manifest_rows, verify, Server, PKCS12_PASSWORD};
use crate::util::{tool, Fixture};
use serde_json::json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the nodes keep their shared state.
pub(crate) enum Shared {
    /// One SQLite data directory for every node, objects in a local folder.
    Sqlite { objects: PathBuf },
    /// PostgreSQL and an S3-compatible server; each node has its own data directory (a copy
    /// of the first node's secrets and keys).
    Postgres { pg: Postgres, s3: S3Server },
}

const BUCKET: &str = "certmill-cluster";

impl Shared {
    fn node_args(&self) -> Vec<String> {
        match self {
            Shared::Sqlite { objects } => {
                vec!["--objects".into(), format!("file://{}", objects.display())]
            }
            Shared::Postgres { pg, s3 } => vec![
                "--store".into(),
                pg.url(),
                "--objects".into(),
                format!(
                    "s3://{BUCKET}/line-7?endpoint={}&region=us-east-1",
                    s3.endpoint
                ),
            ],
        }
    }

    fn node_env(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            Shared::Sqlite { .. } => Vec::new(),
            Shared::Postgres { .. } => vec![
                ("AWS_ACCESS_KEY_ID", "certmill-test"),
                ("AWS_SECRET_ACCESS_KEY", "certmill-test-secret"),
            ],
        }
    }

    /// One value of a SQL query on the shared store.
    fn query(&self, data: &Path, sql: &str) -> String {
        if let Shared::Postgres { pg, .. } = self {
            return pg.query(sql);
        }
        let script = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                      print(c.execute(sys.argv[2]).fetchone()[0])";
        let db = data.join("certmill.db");
        let out = tool("python3", &["-c", script, &db.display().to_string(), sql]);
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The object keys stored under `prefix`.
    fn objects(&self, prefix: &str) -> Vec<String> {
        match self {
            Shared::Sqlite { objects } => {
                let dir = objects.join(prefix);
                let mut keys: Vec<String> = std::fs::read_dir(&dir)
                    .map(|entries| {
                        entries
                            .flatten()
                            .map(|e| format!("{prefix}{}", e.file_name().to_string_lossy()))
                            .collect()
                    })
                    .unwrap_or_default();
                keys.sort();
                keys
            }
            Shared::Postgres { s3, .. } => {
                let url = format!(
                    "{}/{BUCKET}?list-type=2&prefix=line-7/{}",
                    s3.endpoint,
                    prefix.replace('/', "%2F")
                );
                let out = tool("curl", &["-sf", &url]);
                assert!(out.status.success(), "list {url}");
                let xml = String::from_utf8_lossy(&out.stdout).into_owned();
                let mut keys: Vec<String> = xml
                    .split("<Key>")
                    .skip(1)
                    .filter_map(|k| k.split_once("</Key>"))
                    .map(|(k, _)| k.trim_start_matches("line-7/").to_owned())
                    .collect();
                keys.sort();
                keys
            }
        }
    }
}

/// Waits until `done` says so, or fails after `limit` with `what`.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three nodes, 100,000 devices in chunks of 10,000, one node killed while it holds a chunk.
pub(crate) fn three_nodes_one_killed(f: &Fixture, shared: &Shared, data: [&Path; 3]) {
    const DEVICES: u64 = 100_000;
    let args = shared.node_args();
    let env = shared.node_env();
    let mut node_args: Vec<&str> = args.iter().map(String::as_str).collect();
    node_args.extend(["--chunk-size", "10000", "--lease-secs", "3"]);
    let start = |i: usize| {
        let name = format!("node-{}", i + 1);
        let mut args = node_args.clone();
        args.extend(["--node", &name]);
        Server::start_node(f, data[i], &name, &args, &env)
    };
    // The first node bootstraps the store (administrator, CA, authorities); the others start
    // from a copy of its data directory (its keys and secrets) when they have their own.
    let first = start(0);
    for other in &data[1..] {
        if *other != data[0] {
            let out = tool(
                "cp",
                &[
                    "-a",
                    &data[0].display().to_string(),
                    &other.display().to_string(),
                ],
            );
            assert!(out.status.success(), "copy the data directory");
        }
    }
    let token = first.admin();
    let authority = first.authority(&token, 1);
    let before = first.balance_available(&token, authority);
    let mut victim = start(1);
    let third = start(2);

    let batch = first
        .json(
            "PUT",
            "/api/v1/batches",
            &token,
            generator_batch(authority, "three nodes", "00:1B:00:00:00:00", DEVICES),
        )
        .expect(200, "order a generator batch")
        .json();
    let id = batch_id(&batch);

    // Kill node 2 while it holds a chunk: after its first finished chunk, as it works on the
    // next one.
    wait_for(Duration::from_secs(240), "node 2 finishing a chunk", || {
        victim
            .stdout_lines()
            .iter()
            .any(|l| l.contains("chunk") && l.contains("done"))
    });
    wait_for(Duration::from_secs(60), "node 2 holding a chunk", || {
        shared.query(
            data[1],
            &format!("SELECT count(*) FROM chunks WHERE batch_id = {id} AND node = 'node-2' AND state = 'RUNNING'"),
        ) == "1"
    });
    victim.kill();

    // The other two finish the batch, redoing node 2's chunk after its lease runs out.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status = third
            .get(&format!("/api/v1/batches/{id}/status"), &token)
            .expect(200, "status")
            .text();
        if status.trim() == "Ready for download" {
            break;
        }
        assert_eq!(status.trim(), "Processing", "batch {id}");
        assert!(Instant::now() < deadline, "batch {id} not done after 600 s");
        std::thread::sleep(Duration::from_millis(250));
    }
    let redone: u64 = shared
        .query(
            data[0],
            &format!("SELECT count(*) FROM chunks WHERE batch_id = {id} AND attempt > 1"),
        )
        .parse()
        .unwrap();
    assert!(
        redone >= 1,
        "the killed node's chunk was redone by another node"
    );

    // The ZIP, stitched by a node that did not take the order; resumable with Range.
    let (dir, names, response) = third.download(&token, id, "three-nodes");
    assert_eq!(
        names.len() as u64,
        DEVICES + 2,
        "chain.pem, manifest.csv, one file per device"
    );
    let zip = f.path("three-nodes.zip");
    let check = tool(
        "python3",
        &[
            "-c",
            "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); print(z.testzip())",
            &zip.display().to_string(),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "None",
        "python zipfile testzip"
    );
    let len = response.body.len();
    let tail = third
        .call(
            "GET",
            &format!("/api/v1/batches/{id}/download"),
            Some(&token),
            crate::server::Body::Empty,
            &[&format!("Range: bytes={}-", len - 100_000)],
        )
        .expect(206, "a range of the stitched ZIP");
    assert_eq!(tail.body, response.body[len - 100_000..]);

    let rows = manifest_rows(&dir.join("manifest.csv"));
    assert_eq!(rows.len() as u64, DEVICES);
    let serials: HashSet<&str> = rows.iter().map(|r| r["serial_hex"].as_str()).collect();
    assert_eq!(
        serials.len() as u64,
        DEVICES,
        "every serial once in the manifest"
    );
    assert!(rows.iter().all(|r| r["status"] == "ISSUED"));
    let names_in_manifest: HashSet<&str> = rows.iter().map(|r| r["file_name"].as_str()).collect();
    assert_eq!(names_in_manifest.len() as u64, DEVICES);
    // Every manifest serial is recorded once, as this batch's certificate, and nothing else is.
    assert_eq!(
        shared.query(
            data[0],
            &format!("SELECT count(DISTINCT serial) || ' ' || count(*) FROM certificates WHERE batch_id = {id}")
        ),
        format!("{DEVICES} {DEVICES}")
    );
    let recorded_not_in_zip: u64 = shared
        .query(
            data[0],
            &format!(
                "SELECT count(*) FROM serial_intents i WHERE batch_id = {id} AND state <> 'WASTED'
                   AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.batch_id = i.batch_id
                                   AND c.row_index = i.row_index AND c.serial = i.serial)"
            ),
        )
        .parse()
        .unwrap();
    assert_eq!(
        recorded_not_in_zip, 0,
        "the dead attempt's serials are wasted, never left open"
    );
    // A sample of devices, from every chunk, verifies with openssl.
    for row in [1u64, 10_000, 10_001, 35_555, 70_000, 99_999, 100_000] {
        let file = &rows[(row - 1) as usize]["file_name"];
        let pem = leaf_of(&dir.join(file), &f.path(&format!("device-{row}.pem")));
        verify(data[0], &pem);
    }

    // Balances exact: the batch used exactly its devices.
    assert_eq!(first.balance_available(&token, authority), before - DEVICES);
    let reserved = shared.query(
        data[0],
        &format!("SELECT reserved || ' ' || used FROM batches WHERE id = {id}"),
    );
    assert_eq!(reserved, format!("0 {DEVICES}"));
    // The audit chain holds.
    let mut audit_args: Vec<String> = match shared {
        Shared::Postgres { pg, .. } => vec!["--store".into(), pg.url()],
        Shared::Sqlite { .. } => Vec::new(),
    };
    audit_args.extend(["audit".into(), "verify".into()]);
    let audit = first.cli(&audit_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        audit.contains("intact") || audit.contains("ok") || audit.contains("verified"),
        "{audit}"
    );
    // Only the objects the download reads are left: the parts and the tail.
    let objects = shared.objects(&format!("batches/{id}/"));
    assert_eq!(
        objects.iter().filter(|k| k.contains("/part-")).count(),
        10,
        "{objects:?}"
    );
    assert_eq!(
        objects.iter().filter(|k| k.contains("/tail-")).count(),
        1,
        "{objects:?}"
    );
    assert_eq!(objects.len(), 11, "{objects:?}");

    revocation_holds_across_nodes(f, data[0], &first, &third, &token, &rows);
}

/// Revocations go through the shared store: a device revoked on one node is revoked in the
/// other node's OCSP answers and CRL, and CRL numbers keep rising whichever node signs.
fn revocation_holds_across_nodes(
    f: &Fixture,
    data: &Path,
    first: &Server,
    third: &Server,
    token: &str,
    rows: &[std::collections::HashMap<String, String>],
) {
    let issuer = data.join("ca").join("issuing.crt").display().to_string();
    let chain = data.join("ca").join("chain.pem").display().to_string();
    let ocsp = |server: &Server, row: u64| {
        let cert = f.path(&format!("device-{row}.pem")).display().to_string();
        let out = tool(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                &issuer,
                "-CAfile",
                &chain,
                "-cert",
                &cert,
                "-url",
                &format!("{}/ocsp", server.base),
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Response verify OK"), "{text}");
        text
    };
    let crl = |server: &Server| {
        let url = crate::util::crl_path_of(&data.join("ca").join("issuing.crt"));
        let r = server.call("GET", &url, None, crate::server::Body::Empty, &[]);
        assert_eq!(r.status, 200, "CRL: {}", r.text());
        let file = f.path("cluster.crl");
        std::fs::write(&file, &r.body).unwrap();
        let out = tool(
            "openssl",
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                &file.display().to_string(),
                "-CAfile",
                &chain,
                "-noout",
                "-text",
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("verify OK"), "{text}");
        let number = text
            .lines()
            .skip_while(|l| !l.contains("X509v3 CRL Number"))
            .nth(1)
            .expect("a CRL number")
            .trim()
            .to_owned();
        let number = match number.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => number.parse(),
        }
        .expect("a CRL number");
        (text, number)
    };
    let serial = |row: u64| rows[(row - 1) as usize]["serial_hex"].to_ascii_uppercase();
    let (_, number_before) = crl(third);
    assert!(ocsp(third, 35_555).contains(": good"));

    let revoke = |server: &Server, row: u64, reason: u8| {
        let device = &rows[(row - 1) as usize]["device_id"];
        server
            .json(
                "POST",
                "/api/v1/certificates/revoke",
                token,
                json!({"reasonCode": reason, "deviceIds": [device]}),
            )
            .expect(200, &format!("revoke row {row} on {}", server.base));
    };

    // Revoked on the node that took the order, seen by the other node.
    revoke(first, 35_555, 1);
    let answer = ocsp(third, 35_555);
    assert!(answer.contains(": revoked"), "node 3's OCSP: {answer}");
    assert!(ocsp(third, 70_000).contains(": good"));
    // CRLs are issued by whichever node's revocation round (every second) sees the change
    // first, and taken over by the others within a round or two.
    let crl_listing = |server: &Server, serials: &[String]| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (listing, number) = crl(server);
            if serials.iter().all(|s| listing.contains(s.as_str())) {
                return number;
            }
            assert!(
                Instant::now() < deadline,
                "{} still serves a CRL without {serials:?} after 30 s: {listing}",
                server.base
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let number_third = crl_listing(third, &[serial(35_555)]);
    assert!(
        number_third > number_before,
        "{number_third} after {number_before}"
    );

    // Revoked on the other node, seen by the first; one CRL lists both.
    revoke(third, 70_000, 4);
    assert!(ocsp(first, 70_000).contains(": revoked"));
    let number_first = crl_listing(first, &[serial(35_555), serial(70_000)]);
    assert!(
        number_first > number_third,
        "{number_first} after {number_third}"
    );
}

#[test]
fn three_nodes_on_one_sqlite_store_survive_a_killed_node() {
    let f = fixture!();
    let shared = Shared::Sqlite {
        objects: f.path("objects"),
    };
    let data = f.data();
    three_nodes_one_killed(&f, &shared, [&data, &data, &data]);
}

/// A throwaway PostgreSQL from the Debian package: its own directory, port and trust auth on
/// loopback, stopped (immediately) when dropped.
pub(crate) struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn is_root() -> bool {
    String::from_utf8_lossy(&tool("id", &["-u"]).stdout).trim() == "0"
}

impl Postgres {
    pub(crate) fn start() -> Postgres {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        versions.sort();
        let bin = versions
            .pop()
            .expect("no initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            // initdb refuses root: the cluster belongs to the postgres user.
            let out = tool(
                "chown",
                &["-R", "postgres", &dir.path().display().to_string()],
            );
            assert!(
                out.status.success(),
                "chown: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let pg = Postgres {
            dir,
            bin,
            port: free_port(),
            as_postgres,
        };
        let data = pg.dir.path().join("data").display().to_string();
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "certmill", "--no-sync"],
        );
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            pg.dir.path().display(),
            pg.port
        );
        let log = pg.dir.path().join("log").display().to_string();
        pg.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        pg
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let path = self.bin.join(program).display().to_string();
        let out = if self.as_postgres {
            let mut all = vec!["-u", "postgres", "--", path.as_str()];
            all.extend(args);
            tool("runuser", &all)
        } else {
            tool(&path, args)
        };
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://certmill@127.0.0.1:{}/postgres", self.port)
    }

    /// One value of a query.
    pub(crate) fn query(&self, sql: &str) -> String {
        let port = self.port.to_string();
        self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "certmill",
                "-d",
                "postgres",
                "-Atc",
                sql,
            ],
        )
        .trim()
        .to_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let path = self.bin.join("pg_ctl").display().to_string();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            let mut all = vec!["-u", "postgres", "--", path.as_str()];
            all.extend(args);
            std::process::Command::new("runuser").args(&all).output()
        } else {
            std::process::Command::new(&path).args(args).output()
        };
    }
}

/// An S3-compatible server (moto, from pip) on a free port, with one bucket; killed when dropped.
pub(crate) struct S3Server {
    child: std::process::Child,
    pub(crate) endpoint: String,
}

impl S3Server {
    pub(crate) fn start(bucket: &str) -> S3Server {
        let port = free_port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (pip install 'moto[server]'; .ci/run does it)");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_for(Duration::from_secs(60), "moto answering", || {
            tool(
                "curl",
                &["-sf", "-o", "/dev/null", &format!("{}/", server.endpoint)],
            )
            .status
            .success()
        });
        let made = tool(
            "curl",
            &["-sf", "-X", "PUT", &format!("{}/{bucket}", server.endpoint)],
        );
        assert!(made.status.success(), "create bucket {bucket}");
        server
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn three_nodes_on_postgresql_and_s3_survive_a_killed_node() {
    let f = fixture!();
    let shared = Shared::Postgres {
        pg: Postgres::start(),
        s3: S3Server::start(BUCKET),
    };
    let data: Vec<PathBuf> = (1..=3).map(|i| f.path(&format!("node-{i}-data"))).collect();
    three_nodes_one_killed(&f, &shared, [&data[0], &data[1], &data[2]]);
}

/// The device certificate of PKCS#12 file `p12` (password [`PKCS12_PASSWORD`]), written by
/// `openssl pkcs12` (OpenSSL 3, no -legacy) to `pem`; returns `pem`.
fn leaf_of(p12: &Path, pem: &Path) -> PathBuf {
    let out = tool(
        "openssl",
        &[
            "pkcs12",
            "-in",
            &p12.display().to_string(),
            "-passin",
            &format!("pass:{PKCS12_PASSWORD}"),
            "-nokeys",
            "-clcerts",
            "-out",
            &pem.display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "openssl pkcs12 {}: {}",
        p12.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    pem.to_path_buf()
}

/// The manifest of a downloaded batch without what differs between two issuances of the same
/// input (device ids, serials, dates, file hashes): row, common name, file name, status, reason.
fn manifest_shape(dir: &Path) -> Vec<[String; 5]> {
    manifest_rows(&dir.join("manifest.csv"))
        .into_iter()
        .map(|r| {
            ["row", "common_name", "file_name", "status", "reason"]
                .map(|column| r.get(column).cloned().unwrap_or_default())
        })
        .collect()
}

#[test]
fn csv_and_csr_batches_in_chunks_of_three_match_one_node() {
    let f = fixture!();
    let plain = Server::start(&f, &[]);
    let objects = f.path("objects");
    let args = [
        "--objects".to_owned(),
        format!("file://{}", objects.display()),
        "--chunk-size".into(),
        "3".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = Server::start_node(&f, &f.path("node-data"), "node", &args, &[]);
    let (plain_token, node_token) = (plain.admin(), node.admin());

    // A BOM, CRLF line ends, blank lines inside and across chunk boundaries, quoted fields
    // with commas and quotes, and a common name twice (its second file is renamed `-<row>`).
    let mut csv = String::from("\u{feff}macAddress,deviceClass,additionalInformation\r\n");
    for i in 1..=11 {
        csv.push_str(&format!("02:00:00:00:01:{i:02},Aircraft,\"note {i}\"\r\n"));
        if i == 3 || i == 7 {
            csv.push_str("\r\n");
        }
        if i == 5 {
            csv.push_str("02:00:00:00:01:02,Aircraft,\"a, b and \"\"c\"\"\"\r\n");
        }
    }
    let params = json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD});
    let issue = |server: &Server, token: &str, name: &str| {
        let batch = server
            .upload_csv(token, &csv, params.clone())
            .expect(200, "upload-csv")
            .json();
        let id = batch_id(&batch);
        server.wait_ready(token, id);
        (id, server.download(token, id, name))
    };
    let shared = Shared::Sqlite {
        objects: objects.clone(),
    };
    let parts = |id: i64| {
        shared
            .objects(&format!("batches/{id}/"))
            .iter()
            .filter(|k| k.contains("/part-"))
            .count()
    };
    let (_, (plain_dir, plain_names, _)) = issue(&plain, &plain_token, "plain-csv");
    let (id, (node_dir, mut node_names, _)) = issue(&node, &node_token, "chunked-csv");
    assert_eq!(parts(id), 4, "12 devices in parts of 3");
    let expected = manifest_shape(&plain_dir);
    assert_eq!(expected.len(), 12, "{expected:?}");
    assert_eq!(manifest_shape(&node_dir), expected, "chunked CSV manifest");
    let mut plain_names = plain_names;
    plain_names.sort();
    node_names.sort();
    assert_eq!(node_names, plain_names, "the same ZIP entries");
    for file in node_names.iter().filter(|n| n.ends_with(".p12")) {
        let pem = leaf_of(&node_dir.join(file), &f.path(&format!("{file}.pem")));
        verify(&f.path("node-data"), &pem);
    }

    // A PEM bundle of seven CSRs, one with the common name of another.
    let dir = f.path("csrs");
    std::fs::create_dir_all(&dir).unwrap();
    let mut bundle = String::new();
    for i in 1..=7 {
        let cn = format!("00:1A:2B:3C:4D:{:02}", if i == 6 { 2 } else { i });
        let csr = crate::server::make_csr(&dir, &format!("c{i}"), &cn);
        bundle.push_str(&std::fs::read_to_string(&csr).unwrap());
    }
    let bundle_path = f.write("requests.pem", &bundle);
    let issue_csrs = |server: &Server, token: &str, name: &str| {
        let batch = server
            .upload(
                "upload",
                token,
                &bundle_path,
                "application/x-pem-file",
                json!({"deviceClass": "Aircraft"}),
            )
            .expect(200, "upload CSRs")
            .json();
        let id = batch_id(&batch);
        server.wait_ready(token, id);
        (id, server.download(token, id, name).0)
    };
    let expected = manifest_shape(&issue_csrs(&plain, &plain_token, "plain-csr").1);
    assert_eq!(expected.len(), 7, "{expected:?}");
    let (id, node_dir) = issue_csrs(&node, &node_token, "chunked-csr");
    assert_eq!(parts(id), 3, "7 devices in parts of 3");
    assert_eq!(manifest_shape(&node_dir), expected, "chunked CSR manifest");
}
