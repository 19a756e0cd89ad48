use super::*;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Deterministic bytes that look random.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

/// A multi-thread runtime for the store's requests (as the server's).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// The calls every backend must answer alike: put, get, range, size, list, delete, missing keys.
fn exercise(store: &ObjectStore, runtime: &tokio::runtime::Runtime) {
    let blocking = store.blocking();
    let scratch = tempfile::tempdir().unwrap();

    // A multi-MB part from a file, streamed.
    let part = noise(7, 6 << 20);
    let part_path = scratch.path().join("part");
    std::fs::write(&part_path, &part).unwrap();
    let part_key = "batches/1/part-0000-1";
    assert_eq!(
        blocking.put_file(part_key, &part_path).unwrap(),
        part.len() as u64
    );
    blocking
        .put_bytes("batches/1/chain.pem", b"old chain".to_vec())
        .unwrap();
    blocking
        .put_bytes("batches/1/chain.pem", b"chain".to_vec())
        .unwrap();
    blocking
        .put_bytes("batches/2/tail", b"tail".to_vec())
        .unwrap();

    assert_eq!(blocking.size(part_key).unwrap(), part.len() as u64);
    assert_eq!(blocking.size("batches/1/chain.pem").unwrap(), 5);
    let len = part.len() as u64;
    assert!(blocking.read_range(part_key, 0..len).unwrap() == part);
    for range in [
        0..1,
        1000..2_000_123,
        len - 10..len,
        5..5,
        3_000_000..3_000_001,
    ] {
        let bytes = blocking.read_range(part_key, range.clone()).unwrap();
        let (start, end) = (
            usize::try_from(range.start).unwrap(),
            usize::try_from(range.end).unwrap(),
        );
        assert!(bytes == part[start..end], "{range:?}");
    }
    assert_eq!(
        blocking.read_range("batches/1/chain.pem", 0..5).unwrap(),
        b"chain"
    );
    let error = blocking.read_range(part_key, len - 1..len + 1).unwrap_err();
    assert!(matches!(error, ObjectError::Range { .. }), "{error}");
    assert!(error.to_string().contains(part_key), "{error}");

    // The async API: the body is an http_body::Body, as an axum response takes it.
    let body = runtime
        .block_on(async { store.get_range(part_key, 10..1_000_010).await })
        .unwrap();
    assert_eq!(body.len(), 1_000_000);
    let collected = runtime.block_on(body.collect()).unwrap().to_bytes();
    assert!(collected[..] == part[10..1_000_010]);
    let size = runtime.block_on(store.size(part_key)).unwrap();
    assert_eq!(size, len);

    assert_eq!(
        blocking.list("batches/").unwrap(),
        ["batches/1/chain.pem", part_key, "batches/2/tail"]
    );
    assert_eq!(
        blocking.list("batches/1/").unwrap(),
        ["batches/1/chain.pem", part_key]
    );
    assert_eq!(blocking.list("batches/1/pa").unwrap(), [part_key]);
    assert_eq!(blocking.list("").unwrap().len(), 3);
    assert!(blocking.list("batches/3/").unwrap().is_empty());
    assert!(blocking.list("elsewhere/").unwrap().is_empty());

    // A missing key.
    for error in [
        blocking.size("batches/1/missing").unwrap_err(),
        blocking.read_range("batches/1/missing", 0..1).unwrap_err(),
    ] {
        assert!(matches!(error, ObjectError::NotFound { .. }), "{error}");
        assert!(error.to_string().contains("batches/1/missing"), "{error}");
    }
    blocking.delete("batches/1/missing").unwrap();

    blocking.delete(part_key).unwrap();
    assert!(matches!(
        blocking.size(part_key),
        Err(ObjectError::NotFound { .. })
    ));
    assert_eq!(
        blocking.list("batches/").unwrap(),
        ["batches/1/chain.pem", "batches/2/tail"]
    );
    assert_eq!(blocking.list("").unwrap().len(), 2);

    // Keys that could escape the directory or that S3 would store oddly.
    for key in [
        "",
        "../x",
        "a/../../x",
        "/abs",
        "a//b",
        "a/",
        "./a",
        "a\\b",
        "a\0b",
    ] {
        let error = blocking.put_bytes(key, b"x".to_vec()).unwrap_err();
        assert!(
            matches!(error, ObjectError::BadKey { .. }),
            "{key:?}: {error}"
        );
    }
    assert!(matches!(
        blocking.list("../"),
        Err(ObjectError::BadKey { .. })
    ));
}

/// A batch of three parts (one empty) stored as objects, its tail written once and stored, then
/// downloaded whole (blocking) and by ranges (async body): the same bytes, a ZIP the zip crate
/// reads entry by entry.
fn stitched_download(store: &ObjectStore, runtime: &tokio::runtime::Runtime) {
    use zipparts::{Head, PartWriter, PieceObject, Stitched, TailWriter};
    let modified = time::macros::datetime!(2024-05-17 13:45:31 UTC);
    let scratch = tempfile::tempdir().unwrap();
    let head = Head::new(&[("chain.pem", b"chain")], modified).unwrap();
    let mut files = vec![("chain.pem".to_owned(), b"chain".to_vec())];
    let mut parts = Vec::new();
    let mut entries = Vec::new();
    for (index, devices) in [0..30u64, 0..0, 30..45].into_iter().enumerate() {
        let path = scratch.path().join(format!("part-{index}"));
        let mut writer = PartWriter::new(std::fs::File::create(&path).unwrap(), modified);
        for i in devices {
            let (name, data) = (format!("devices/{i:03}.p12"), noise(i, 40_000));
            entries.push((index, writer.add(&name, &data).unwrap()));
            files.push((name, data));
        }
        let key = format!("stitch/part-{index}");
        let (_, len) = writer.finish().unwrap();
        assert_eq!(store.blocking().put_file(&key, &path).unwrap(), len);
        parts.push(PieceObject { key, len });
    }
    let manifest = b"row,file_name\n".to_vec();
    files.push(("manifest.csv".to_owned(), manifest.clone()));
    let tail_path = scratch.path().join("tail");
    let mut tail = TailWriter::new(
        std::fs::File::create(&tail_path).unwrap(),
        &head,
        &parts,
        "manifest.csv",
        &mut manifest.as_slice(),
        manifest.len() as u64,
        modified,
    )
    .unwrap();
    for (part, entry) in &entries {
        tail.entry(*part, entry).unwrap();
    }
    let (_, summary) = tail.finish(b"").unwrap();
    let tail_len = store
        .blocking()
        .put_file("stitch/tail", &tail_path)
        .unwrap();
    assert_eq!(tail_len, summary.len);
    let stitched = std::sync::Arc::new(Stitched::new(
        &head,
        parts,
        PieceObject {
            key: "stitch/tail".to_owned(),
            len: tail_len,
        },
    ));

    let mut whole = Vec::new();
    let len = stitched.len();
    assert_eq!(
        store
            .blocking()
            .write_stitched_range(&stitched, 0..len, &mut whole)
            .unwrap(),
        len
    );
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(whole.clone())).unwrap();
    assert_eq!(archive.len(), files.len());
    for (index, (name, data)) in files.iter().enumerate() {
        let mut file = archive.by_index(index).unwrap();
        assert_eq!(file.name().unwrap(), name.as_str());
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut read).unwrap();
        assert!(&read == data, "{name}");
    }
    for range in [0..len, 3..len - 3, 100..700_000, len - 1..len, 7..7] {
        let body = store
            .stitched_range(stitched.clone(), range.clone())
            .unwrap();
        let bytes = runtime.block_on(body.collect()).unwrap().to_bytes();
        let (start, end) = (
            usize::try_from(range.start).unwrap(),
            usize::try_from(range.end).unwrap(),
        );
        assert!(bytes[..] == whole[start..end], "{range:?}");
    }
    assert!(matches!(
        store.stitched_range(stitched.clone(), 0..len + 1),
        Err(ObjectError::Archive(_))
    ));
    // A part gone from the store: the body ends with the store's error.
    store.blocking().delete("stitch/part-2").unwrap();
    let body = store.stitched_range(stitched, 0..len).unwrap();
    let error = runtime.block_on(body.collect()).err().unwrap();
    assert!(matches!(error, ObjectError::NotFound { .. }), "{error}");
}

#[test]
fn local_backend() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let store = ObjectStore::open(&url, runtime.handle().clone()).unwrap();
    assert_eq!(store.describe(), url);
    exercise(&store, &runtime);
    stitched_download(&store, &runtime);
    assert_eq!(
        std::fs::read(dir.path().join("batches/1/chain.pem")).unwrap(),
        b"chain"
    );
    // An unfinished write's temporary file is not an object.
    std::fs::write(dir.path().join("batches/1/.certmill-tmp-abc"), b"half").unwrap();
    assert_eq!(
        store.blocking().list("batches/1/").unwrap(),
        ["batches/1/chain.pem"]
    );
    let error = store
        .blocking()
        .put_bytes("batches/.certmill-tmp-x", b"x".to_vec())
        .unwrap_err();
    assert!(matches!(
        error,
        ObjectError::BadKey {
            defect: KeyDefect::Reserved,
            ..
        }
    ));

    // A plain path names the same directory.
    let plain = ObjectStore::open(dir.path().to_str().unwrap(), runtime.handle().clone()).unwrap();
    assert_eq!(plain.blocking().size("batches/2/tail").unwrap(), 4);
}

#[test]
fn urls_are_checked_and_never_echo_credentials() {
    let runtime = runtime();
    let handle = || runtime.handle().clone();
    let credentials = S3Credentials::new("AKIDEXAMPLE", "very-secret-key", None);
    assert!(!format!("{credentials:?}").contains("very-secret-key"));
    for (url, expected) in [
        ("ftp://host/dir", "unknown scheme"),
        ("", "empty"),
        ("s3:///prefix", "without a bucket"),
        ("s3://user:pass@bucket/p", "take no credentials"),
        ("s3://bucket/p?endpoint=ftp://x", "not an http"),
        (
            "s3://bucket/p?endpoint=http://u:p@x",
            "takes no credentials",
        ),
        ("s3://bucket/p?colour=blue", "unknown s3:// URL parameter"),
    ] {
        let error = ObjectStore::open_with_credentials(url, Some(&credentials), handle())
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{url}: {error}");
        assert!(!error.contains("pass"), "{url}: {error}");
    }
    let store = ObjectStore::open_with_credentials(
        "s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9&region=eu-west-3",
        Some(&credentials),
        handle(),
    )
    .unwrap();
    assert_eq!(
        store.describe(),
        "s3://bucket/some/prefix at http://127.0.0.1:9"
    );
    assert!(!format!("{store:?}").contains("very-secret-key"));
    // Nothing listens on port 9: the error names the key, not the signed URL.
    let error = store.blocking().size("k").unwrap_err();
    assert!(matches!(error, ObjectError::Http { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("refused"), "{message}");
    assert!(message.contains("\"k\""), "{message}");
    assert!(!message.contains("Signature"), "{message}");
    assert!(!message.contains("AKIDEXAMPLE"), "{message}");
    // https endpoints get a TLS client.
    ObjectStore::open_with_credentials(
        "s3://bucket/p?endpoint=https://s3.example.com",
        Some(&credentials),
        handle(),
    )
    .unwrap();
}

/// A moto S3 server on a port of its own, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts `python3 -m moto.server`, or returns None (after saying so) when moto is not
    /// installed (`.ci/run` installs it).
    fn start() -> Option<Moto> {
        Moto::start_with(&[])
    }

    /// [`Moto::start`] with more arguments (`-c cert -k key` for https).
    fn start_with(extra: &[&str]) -> Option<Moto> {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            println!("skipped: moto is not installed (python3 -m pip install 'moto[server]')");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                moto.child.try_wait().unwrap().is_none(),
                "moto exited before listening"
            );
            assert!(Instant::now() < deadline, "moto did not listen within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    fn url(&self, bucket: &str) -> String {
        format!(
            "s3://{bucket}/certmill/objects?endpoint=http://127.0.0.1:{}&region=us-east-1",
            self.port
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn s3_backend_against_moto() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let runtime = runtime();
    let credentials = S3Credentials::new("testing", "testing-secret-key", None);
    let open = |url: &str| {
        ObjectStore::open_with_credentials(url, Some(&credentials), runtime.handle().clone())
            .unwrap()
    };
    let store = open(&moto.url("certmill-test"));
    runtime.block_on(store.create_bucket()).unwrap();
    exercise(&store, &runtime);
    stitched_download(&store, &runtime);

    // Keys live under the URL's prefix, and list gives them back without it.
    let root = open(&format!(
        "s3://certmill-test?endpoint=http://127.0.0.1:{}",
        moto.port
    ));
    assert_eq!(
        root.blocking().list("certmill/objects/batches/2/").unwrap(),
        ["certmill/objects/batches/2/tail"]
    );

    // More than one page of listing (1,000 keys a page).
    for i in 0..1_005 {
        store
            .blocking()
            .put_bytes(&format!("many/{i:04}"), Bytes::new())
            .unwrap();
    }
    let many = store.blocking().list("many/").unwrap();
    assert_eq!(many.len(), 1_005);
    assert_eq!(many[1_004], "many/1004");

    // A bucket that does not exist: S3's error code, the key, no credentials.
    let missing = open(&moto.url("no-such-bucket"));
    let error = missing
        .blocking()
        .put_bytes("batches/1/tail", b"x".to_vec())
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, ObjectError::Status { status: 404, code: Some(code), .. }
            if code == "NoSuchBucket"),
        "{message}"
    );
    assert!(message.contains("batches/1/tail"), "{message}");
    assert!(!message.contains("testing-secret-key"), "{message}");
    assert!(!message.contains("X-Amz"), "{message}");
    let error = missing.blocking().list("batches/").unwrap_err();
    assert!(
        matches!(&error, ObjectError::Status { code: Some(code), .. } if code == "NoSuchBucket"),
        "{error}"
    );

    // Over 5 GiB is refused before anything is sent (a sparse file).
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(s3::MAX_SINGLE_PUT + 1)
        .unwrap();
    let error = store.blocking().put_file("huge", &huge).unwrap_err();
    assert!(matches!(error, ObjectError::TooLarge { .. }), "{error}");
}

#[test]
fn s3_backend_over_https_against_moto() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let Some(moto) = Moto::start_with(&["-c", cert.to_str().unwrap(), "-k", key.to_str().unwrap()])
    else {
        return;
    };
    let runtime = runtime();
    let credentials = S3Credentials::new("testing", "testing-secret-key", None);
    let url = format!(
        "s3://certmill-tls/p?endpoint=https://127.0.0.1:{}",
        moto.port
    );
    // The system's roots do not know the test's certificate: the handshake fails.
    let untrusted =
        ObjectStore::open_with_credentials(&url, Some(&credentials), runtime.handle().clone())
            .unwrap();
    let error = untrusted.blocking().size("k").unwrap_err();
    assert!(matches!(error, ObjectError::Http { .. }), "{error}");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    // rustls-native-certs reads SSL_CERT_FILE when the store is opened (set only around it).
    std::env::set_var("SSL_CERT_FILE", &cert);
    let store =
        ObjectStore::open_with_credentials(&url, Some(&credentials), runtime.handle().clone());
    std::env::remove_var("SSL_CERT_FILE");
    let store = store.unwrap();
    runtime.block_on(store.create_bucket()).unwrap();
    store
        .blocking()
        .put_bytes("batches/1/tail", b"over TLS".to_vec())
        .unwrap();
    assert_eq!(
        store.blocking().read_range("batches/1/tail", 5..8).unwrap(),
        b"TLS"
    );
}

/// A stand-in S3 endpoint: it answers the requests in turn with `statuses` (an S3 error body
/// for each error), then 200, and counts them.
fn scripted_endpoint(
    statuses: Vec<u16>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&count);
    let statuses = std::sync::Arc::new(statuses);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (seen, statuses) = (
                std::sync::Arc::clone(&seen),
                std::sync::Arc::clone(&statuses),
            );
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut length = 0usize;
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(value) =
                            line.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        head.push_str(&line);
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let status = statuses.get(n).copied().unwrap_or(200);
                    let answer = if status == 200 {
                        "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n".to_owned()
                    } else {
                        let xml = format!("<Error><Code>Scripted{status}</Code><Message>try again</Message></Error>");
                        format!(
                            "HTTP/1.1 {status} Scripted\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                            xml.len()
                        )
                    };
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, count)
}

#[test]
fn s3_requests_are_tried_again_only_for_failures_that_may_pass() {
    use std::sync::atomic::Ordering;
    let runtime = runtime();
    let credentials = S3Credentials::new("AKIDEXAMPLE", "very-secret-key", None);
    let open = |url: &str| {
        ObjectStore::open_with_credentials(
            &format!("s3://bucket/p?endpoint={url}"),
            Some(&credentials),
            runtime.handle().clone(),
        )
        .unwrap()
    };
    // Slow down, then an internal error: the third try stores it.
    let (url, count) = scripted_endpoint(vec![503, 500]);
    open(&url)
        .blocking()
        .put_bytes("part-1", b"x".to_vec())
        .expect("stored on the third try");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // Refused for good: one try, and the error says why.
    let (url, count) = scripted_endpoint(vec![403]);
    let error = open(&url)
        .blocking()
        .put_bytes("part-1", b"x".to_vec())
        .unwrap_err();
    assert!(
        matches!(error, ObjectError::Status { status: 403, .. }),
        "{error}"
    );
    assert!(!error.is_transient());
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // Failing every time: it gives up after the last try with the last answer.
    let (url, count) = scripted_endpoint(vec![503; 10]);
    let error = open(&url)
        .blocking()
        .put_bytes("part-1", b"x".to_vec())
        .unwrap_err();
    assert!(
        matches!(error, ObjectError::Status { status: 503, .. }),
        "{error}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 4);
}
