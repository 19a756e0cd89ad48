//! Batch lifecycle through the CLI: balances, partial success, reject, download, audit log,
//! retention, and crash safety under SIGKILL.

use crate::util::{unzip, Fixture};
use certmill::store::{AuthorityId, BatchStatus, Store};
use std::process::{Command, Stdio};
use std::time::Duration;

const PASSWORD: &str = "factory-line-7";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A data directory with a CA and one authority of `balance` for the ECC device profile.
fn with_authority(f: &Fixture, balance: u64) -> i64 {
    f.certmill_ok(&["ca", "init"]);
    let out = f.certmill_ok(&[
        "authorities",
        "create",
        "--organization",
        "Acme",
        "--profile",
        "ecc-device",
        "--balance",
        &balance.to_string(),
    ]);
    out.split_whitespace()
        .nth(1)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("authority id in {out:?}"))
}

fn generator_args(f: &Fixture, count: u64, start: &str, authority: i64, out: &str) -> Vec<String> {
    let pw = f.write("pw.txt", &format!("{PASSWORD}\n"));
    [
        "issue",
        "--profile",
        "ecc-device",
        "--generator",
        "mac",
        "--count",
        &count.to_string(),
        "--param",
        &format!("startValue={start}"),
        "--param",
        "deviceClass=Aircraft",
        "--authority",
        &authority.to_string(),
        "--password-file",
        pw.to_str().unwrap(),
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn balances_reject_download_and_audit() {
    let f = fixture!();
    let authority = with_authority(&f, 10);
    let out = f.path("a.zip");
    let args = generator_args(&f, 6, "02:00:00:00:00:00", authority, out.to_str().unwrap());
    f.certmill_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let store = Store::open(&f.data()).unwrap();
    let a = store.authority(AuthorityId(authority)).unwrap();
    assert_eq!(
        (a.balance_available, a.balance_reserved, a.balance_used),
        (4, 0, 6)
    );

    // More than the balance: refused before anything is issued.
    let too_many = generator_args(
        &f,
        5,
        "02:00:00:01:00:00",
        authority,
        f.path("b.zip").to_str().unwrap(),
    );
    let refused = f.certmill(&too_many.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("5 units requested, 4 available"),
        "{}",
        stderr(&refused)
    );
    assert!(!f.path("b.zip").exists());

    // Reject restores the balance; a rejected batch cannot be downloaded.
    let show: serde_json::Value =
        serde_json::from_str(&f.certmill_ok(&["batches", "show", "1"])).unwrap();
    assert_eq!(show["status"], "Ready For Download");
    assert_eq!(show["statusText"], "Ready for download");
    assert_eq!(show["rejectable"], true);
    assert_eq!(show["processingInfo"]["success"], 6);
    f.certmill_ok(&["batches", "reject", "1", "--reason", "wrong device class"]);
    let a = store.authority(AuthorityId(authority)).unwrap();
    assert_eq!(
        (a.balance_available, a.balance_reserved, a.balance_used),
        (10, 0, 0)
    );
    let again = f.certmill(&["batches", "reject", "1", "--reason", "twice"]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));

    // A downloaded batch is no longer rejectable and its devices are COLLECTED.
    let out2 = f.path("c.zip");
    let args = generator_args(
        &f,
        2,
        "02:00:00:02:00:00",
        authority,
        out2.to_str().unwrap(),
    );
    f.certmill_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    f.certmill_ok(&[
        "batches",
        "download",
        "2",
        "--out",
        f.path("copy.zip").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(f.path("copy.zip")).unwrap(),
        std::fs::read(&out2).unwrap()
    );
    let found = f.certmill_ok(&["certs", "find", "--cn", "02:00:00:02:00:00"]);
    assert!(found.contains("COLLECTED"), "{found}");
    let refused = f.certmill(&["batches", "reject", "2", "--reason", "late"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));

    // The audit log names every state change and device; the chain verifies, and breaks
    // visibly when a row is edited behind certmill's back.
    let log = f.certmill_ok(&["batches", "audit", "1"]);
    assert!(
        log.contains("Rejected") && log.contains("wrong device class"),
        "{log}"
    );
    let devices = f.certmill_ok(&["batches", "audit", "1", "--devices"]);
    assert_eq!(devices.lines().count(), 6, "{devices}");
    assert!(f
        .certmill_ok(&["audit", "verify"])
        .contains("hash chain verified"));
    let db = rusqlite::Connection::open(f.data().join("certmill.db")).unwrap();
    let triggers: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        !triggers.is_empty(),
        "the audit log is append-only by trigger"
    );
    assert!(
        db.execute("UPDATE audit_log SET message = 'edited' WHERE id = 3", [])
            .is_err(),
        "updates are refused"
    );
    for trigger in &triggers {
        db.execute(&format!("DROP TRIGGER {trigger}"), []).unwrap();
    }
    db.execute("UPDATE audit_log SET message = 'edited' WHERE id = 3", [])
        .unwrap();
    let verify = f.certmill(&["audit", "verify"]);
    assert!(!verify.status.success());
    assert!(stderr(&verify).contains('3'), "{}", stderr(&verify));
}

#[test]
fn a_device_that_fails_at_issue_time_leaves_the_batch_issued_partly() {
    // A CN outside the Basic Multilingual Plane passes the profile (UTF8String, 64 characters)
    // but cannot be a PKCS#12 friendly name (a BMPString): that device fails alone.
    let f = fixture!();
    let mut profile: serde_json::Value =
        serde_json::from_str(include_str!("../profiles/ecc-device.json")).unwrap();
    profile["Subject"]["attributes"][5]["syntax"] = serde_json::Value::Null;
    let path = f.write("free-cn.json", &profile.to_string());
    let zip = f.issue(
        path.to_str().unwrap(),
        "macAddress\ndevice-1\ndevice-\u{1F600}-2\ndevice-3\n",
        &["deviceClass=Aircraft"],
        PASSWORD,
        &[],
    );
    let names = unzip(&zip, &f.path("out"));
    assert_eq!(
        names,
        ["chain.pem", "device-1.p12", "device-3.p12", "manifest.csv"]
    );
    let manifest = std::fs::read_to_string(f.path("out/manifest.csv")).unwrap();
    let failed: Vec<&str> = manifest
        .lines()
        .filter(|l| l.contains(",FAILED,"))
        .collect();
    assert_eq!(failed.len(), 1, "{manifest}");
    assert!(
        failed[0].starts_with("2,") && failed[0].contains("row 2"),
        "{manifest}"
    );
    let show: serde_json::Value =
        serde_json::from_str(&f.certmill_ok(&["batches", "show", "1"])).unwrap();
    assert_eq!(show["status"], "Batch Issued Partly");
    assert_eq!(show["processingInfo"]["failed"], 1);
    assert_eq!(show["processingInfo"]["success"], 2);
}

#[test]
fn zips_past_their_retention_are_removed() {
    let f = fixture!();
    let zip = f.issue(
        "ecc-device",
        "macAddress\n00:1A:2B:3C:4D:5E\n",
        &["deviceClass=Aircraft"],
        PASSWORD,
        &[],
    );
    assert!(zip.exists());
    let out = Command::new(env!("CARGO_BIN_EXE_certmill"))
        .args(["--data", f.data().to_str().unwrap(), "batches", "list"])
        .env("CERTMILL_ZIP_RETENTION_DAYS", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!zip.exists(), "the janitor deleted the ZIP");
    let show: serde_json::Value =
        serde_json::from_str(&f.certmill_ok(&["batches", "show", "1"])).unwrap();
    assert_eq!(show["status"], "Zip removed after expiration");
    assert_eq!(show["downloadable"], false);
}

/// A process that died after renaming its complete ZIP into place, before recording the end:
/// recovery recognises the ZIP by the token in its comment and finishes the batch; a ZIP at
/// that path without the token is someone else's file and is left alone.
#[test]
fn recovery_finishes_a_batch_whose_zip_was_already_in_place() {
    for ours in [true, false] {
        let f = fixture!();
        let zip = f.issue(
            "ecc-device",
            "macAddress\n00:1A:2B:3C:4D:5E\n00:1A:2B:3C:4D:5F\n",
            &["deviceClass=Aircraft"],
            PASSWORD,
            &[],
        );
        let comment = {
            let file = std::fs::File::open(&zip).unwrap();
            let archive = zip::ZipArchive::new(file).unwrap();
            String::from_utf8(archive.comment().to_vec()).unwrap()
        };
        let token = comment
            .strip_prefix("certmill batch ")
            .expect("the ZIP ends with its token");
        assert_eq!(token.len(), 32, "{comment}");
        // Rewind to the moment between the rename and the store's commit.
        let db = rusqlite::Connection::open(f.data().join("certmill.db")).unwrap();
        db.execute(
            "UPDATE batches SET status = 'Pending Issue' WHERE id = 1",
            [],
        )
        .unwrap();
        drop(db);
        let lock_token = if ours {
            token.to_owned()
        } else {
            "0".repeat(32)
        };
        std::fs::write(f.data().join("locks/batch-1.lock"), lock_token).unwrap();
        let before = std::fs::read(&zip).unwrap();

        f.certmill_ok(&["batches", "list"]);
        let show: serde_json::Value =
            serde_json::from_str(&f.certmill_ok(&["batches", "show", "1"])).unwrap();
        assert_eq!(std::fs::read(&zip).unwrap(), before, "the ZIP is untouched");
        if ours {
            assert_eq!(show["status"], "Ready For Download", "{show}");
            assert_eq!(show["downloadable"], true);
        } else {
            assert_eq!(show["status"], "Broken", "{show}");
            assert!(
                show["rejectReason"]
                    .as_str()
                    .unwrap()
                    .contains("interrupted"),
                "{show}"
            );
        }
        f.certmill_ok(&["audit", "verify"]);
    }
}

/// Kills `certmill issue` with SIGKILL at random moments, restarts, and checks every invariant.
#[test]
fn sigkill_at_random_moments_breaks_no_invariant() {
    let f = fixture!();
    const INITIAL: u64 = 1_000_000;
    let authority = with_authority(&f, INITIAL);
    let runs: u64 = std::env::var("CERTMILL_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut next = move || {
        // xorshift64: enough to spread the kill moments.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut killed = 0;
    for run in 0..runs {
        let out = f.path(&format!("run-{run}.zip"));
        let start = format!("02:{:02X}:00:00:00:00", run);
        let args = generator_args(&f, 1500, &start, authority, out.to_str().unwrap());
        let mut child = Command::new(env!("CARGO_BIN_EXE_certmill"))
            .arg("--data")
            .arg(f.data())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The first run is killed early for sure; the others at random moments.
        let delay = Duration::from_millis(if run == 0 { 250 } else { next() % 1200 });
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        // Restart: any command runs recovery first.
        f.certmill_ok(&["batches", "list"]);
        check_invariants(&f, authority, INITIAL);
    }
    eprintln!("sigkill test: {runs} runs, {killed} killed mid-batch, 0 invariant violations");
    assert!(killed > 0, "at least one run was killed mid-batch");
}

fn check_invariants(f: &Fixture, authority: i64, initial: u64) {
    let store = Store::open(&f.data()).unwrap();
    let db = rusqlite::Connection::open(f.data().join("certmill.db")).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    // 1. Every batch finished or Broken with a reason.
    for batch in store.batches().unwrap() {
        match batch.status {
            BatchStatus::ReadyForDownload => {
                // The ZIP is complete: its manifest lists exactly the recorded devices.
                let dir = f.path(&format!("check-{}", batch.id.0));
                let names = unzip(std::path::Path::new(&batch.output_path), &dir);
                assert_eq!(names.len() as u64, batch.issued + 2, "batch {}", batch.id.0);
                let manifest = std::fs::read_to_string(dir.join("manifest.csv")).unwrap();
                for line in manifest.lines().skip(1) {
                    let serial = line.split(',').nth(3).unwrap();
                    assert!(
                        !store
                            .find_certificates(None, Some(serial))
                            .unwrap()
                            .is_empty(),
                        "serial {serial} recorded"
                    );
                }
            }
            BatchStatus::Broken => {
                assert!(
                    batch.reason.as_deref().is_some_and(|r| !r.is_empty()),
                    "batch {} Broken without a reason",
                    batch.id.0
                );
                assert!(
                    !std::path::Path::new(&batch.output_path).exists(),
                    "a Broken batch has no ZIP"
                );
            }
            other => panic!("batch {} left {}", batch.id.0, other.as_str()),
        }
    }
    // 2. No half-written ZIP anywhere.
    for entry in std::fs::read_dir(f.dir.path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".zip.part"),
            "partial file {name} left behind"
        );
    }
    // 3. No serial used twice, among certificates and intents.
    assert_eq!(count("SELECT COUNT(*) FROM (SELECT serial FROM certificates GROUP BY issuer_id, serial HAVING COUNT(*) > 1)"), 0);
    // Every certificate holds its serial's registry entry (the registry's key is the serial).
    assert_eq!(count("SELECT COUNT(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM serial_intents i WHERE i.issuer_id = c.issuer_id AND i.serial = c.serial AND i.batch_id = c.batch_id AND i.row_index = c.row_index)"), 0);
    // 4. Balances match the records: nothing reserved once no batch runs, used = certificates.
    let a = store.authority(AuthorityId(authority)).unwrap();
    assert_eq!(a.balance_reserved, 0);
    assert_eq!(a.balance_available + a.balance_used, initial);
    assert_eq!(
        a.balance_used as i64,
        count("SELECT COUNT(*) FROM certificates")
    );
    // 5. The audit chain is intact.
    store.verify_audit_chain().unwrap();
}
