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

use certmill::fuzz_check::{self, Fixture, Outcome};

/// Runs every corpus file of `target` through `check`, failing on a panic with the file's
/// name; returns how many were accepted and refused.
fn run(target: &str, check: impl Fn(&[u8]) -> Outcome) -> (usize, usize) {
    let (mut accepted, mut refused) = (0, 0);
    for (path, bytes) in corpus(target) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes))) {
            Ok(Outcome::Accepted) => accepted += 1,
            Ok(Outcome::Refused) => refused += 1,
            Err(_) => panic!("{} panicked", path.display()),
        }
    }
    (accepted, refused)
}

#[test]
fn profile_json_corpus() {
    let fixture = Fixture::new();
    let (compiled, refused) = run("profile_json", |b| fuzz_check::profile_json(&fixture, b));
    assert!(
        compiled >= 2 && refused >= 2,
        "the shipped and seed profiles compile, the broken ones do not ({compiled}, {refused})"
    );
}

#[test]
fn csv_batch_corpus() {
    let fixture = Fixture::new();
    let (accepted, _) = run("csv_batch", |b| fuzz_check::csv_batch(&fixture, b));
    assert_eq!(accepted, 2, "good.csv and bom-quoted.csv are valid");
}

#[test]
fn csr_der_corpus() {
    let (verified, _) = run("csr_der", fuzz_check::csr_der);
    assert_eq!(verified, 2, "the two openssl-made CSRs parse and verify");
}

#[test]
fn csr_bundle_corpus() {
    let fixture = Fixture::new();
    let (accepted, refused) = run("csr_bundle", |b| fuzz_check::csr_bundle(&fixture, b));
    assert_eq!(
        (accepted, refused),
        (4, 8),
        "two.pem, two.zip, deflated.zip and dir.zip are good; the rest are not"
    );
}

#[test]
fn pkcs12_round_trip_corpus() {
    let fixture = Fixture::new();
    let (round_trips, refused) = run("pkcs12_round_trip", |b| {
        fuzz_check::pkcs12_round_trip(&fixture, b)
    });
    assert_eq!(
        (round_trips, refused),
        (4, 6),
        "the two simple ones, unicode and no-name round-trip; a control character in the \
         password or the name, a name outside the BMP, an empty password, and the openssl files \
         read as build instructions are refused"
    );
}

#[test]
fn ocsp_request_corpus() {
    let (parsed, _) = run("ocsp_request", fuzz_check::ocsp_request);
    assert_eq!(
        parsed, 3,
        "the three requests openssl made parse; the broken ones do not"
    );
}

#[test]
fn filter_expr_corpus() {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE t (id INTEGER, name TEXT, created_at INTEGER, active INTEGER);
         INSERT INTO t VALUES (1, 'test', 1600697949, 1), (2, 'it''s', 1577836800, 0);",
    )
    .unwrap();
    let (compiled, refused) = run("filter_expr", |bytes| {
        let Some(filter) = fuzz_check::filter_expr(bytes) else {
            return Outcome::Refused;
        };
        // What compiles is a valid SQLite condition with as many parameters as values.
        let sql = format!("SELECT count(*) FROM t WHERE {}", filter.sql);
        let count: i64 = db
            .query_row(
                &sql,
                rusqlite::params_from_iter(filter.values.iter()),
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!((0..=2).contains(&count));
        Outcome::Accepted
    });
    assert!(
        compiled >= 10 && refused >= 4,
        "{compiled} compiled, {refused} refused"
    );
    let injected: i64 = db
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(injected, 2, "no corpus input changed the table");
}
