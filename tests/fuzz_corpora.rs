//! The fuzz corpora (`fuzz/corpus/<target>/`) run as ordinary tests: every input is either
//! accepted or refused with an error, never a panic, exactly as the fuzz targets check.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

#[test]
fn profile_json_corpus() {
    let mut compiled = 0;
    for (path, bytes) in corpus("profile_json") {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let result = std::panic::catch_unwind(|| {
            certmill::profile::Profile::from_json(
                text,
                "fuzz",
                &certmill::profile::CompileOptions::default(),
            )
            .is_ok()
        });
        match result {
            Ok(true) => compiled += 1,
            Ok(false) => {}
            Err(_) => panic!("{} panicked", path.display()),
        }
    }
    assert!(
        compiled >= 2,
        "the shipped and seed profiles in the corpus compile"
    );
}

#[test]
fn csv_batch_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certmill::ca::IssuingCa::init(dir.path(), &Default::default()).unwrap();
    let profile = certmill::profile::Profile::load("ecc-device", &Default::default()).unwrap();
    let template =
        certmill::template::Template::new(&profile, &ca, time::OffsetDateTime::now_utc()).unwrap();
    let mut accepted = 0;
    for (path, bytes) in corpus("csv_batch") {
        let input = dir.path().join("input.csv");
        std::fs::write(&input, &bytes).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            certmill::batch::validate_csv(&template, &input, &Default::default()).is_ok()
        }));
        match result {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(_) => panic!("{} panicked", path.display()),
        }
    }
    assert_eq!(accepted, 2, "good.csv and bom-quoted.csv are valid");
}

#[test]
fn csr_der_corpus() {
    let mut verified = 0;
    for (path, bytes) in corpus("csr_der") {
        match std::panic::catch_unwind(|| certmill::csr::ParsedCsr::from_der(&bytes).is_ok()) {
            Ok(true) => verified += 1,
            Ok(false) => {}
            Err(_) => panic!("{} panicked", path.display()),
        }
    }
    assert_eq!(verified, 2, "the two openssl-made CSRs parse and verify");
}

#[test]
fn ocsp_request_corpus() {
    let mut parsed = 0;
    for (path, bytes) in corpus("ocsp_request") {
        let result = std::panic::catch_unwind(|| {
            let request = certmill::revocation::ocsp::parse_request(&bytes);
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = certmill::revocation::ocsp::decode_get_path(text);
            }
            request.map(|r| r.certs.len())
        });
        match result {
            Ok(Ok(n)) => {
                assert!((1..=16).contains(&n), "{}: {n} CertIDs", path.display());
                parsed += 1;
            }
            Ok(Err(_)) => {}
            Err(_) => panic!("{} panicked", path.display()),
        }
    }
    assert_eq!(
        parsed, 3,
        "the three requests openssl made parse; the broken ones do not"
    );
}

#[test]
fn filter_expr_corpus() {
    use certmill::filter::{compile, Field, FieldType};
    const FIELDS: &[Field] = &[
        Field {
            name: "name",
            column: "name",
            kind: FieldType::Text,
        },
        Field {
            name: "id",
            column: "id",
            kind: FieldType::Integer,
        },
        Field {
            name: "createdAt",
            column: "created_at",
            kind: FieldType::Timestamp,
        },
        Field {
            name: "active",
            column: "active",
            kind: FieldType::Boolean,
        },
    ];
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE t (id INTEGER, name TEXT, created_at INTEGER, active INTEGER);
         INSERT INTO t VALUES (1, 'test', 1600697949, 1), (2, 'it''s', 1577836800, 0);",
    )
    .unwrap();
    let (mut compiled, mut refused) = (0, 0);
    for (path, bytes) in corpus("filter_expr") {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        match std::panic::catch_unwind(|| compile(text, FIELDS)) {
            // What compiles is a valid SQLite condition with as many parameters as values.
            Ok(Ok(filter)) => {
                let sql = format!("SELECT count(*) FROM t WHERE {}", filter.sql);
                let count: i64 = db
                    .query_row(
                        &sql,
                        rusqlite::params_from_iter(filter.values.iter()),
                        |r| r.get(0),
                    )
                    .unwrap_or_else(|e| panic!("{}: {sql}: {e}", path.display()));
                assert!((0..=2).contains(&count));
                compiled += 1;
            }
            Ok(Err(e)) => {
                assert!(e.position >= 1, "{}: {e}", path.display());
                refused += 1;
            }
            Err(_) => panic!("{} panicked", path.display()),
        }
    }
    assert!(
        compiled >= 10 && refused >= 4,
        "{compiled} compiled, {refused} refused"
    );
    let injected: i64 = db
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(injected, 2, "no corpus input changed the table");
}
