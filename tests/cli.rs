//! The CLI: demo, issue, refusals with row numbers, records, profile check.

use crate::util::{mac_csv, unzip};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Entries of a directory that look like output (ZIPs or partial ZIPs).
fn outputs(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".zip"))
        .collect()
}

#[test]
fn demo_runs_twice_and_reuses_the_ca() {
    let f = fixture!();
    let first = f.certmill(&["demo", "--devices", "20"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("DEVELOPMENT CA"),
        "the first run says it made a CA"
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("issued 20 devices"), "{stdout}");
    assert!(stdout.contains("key matches its certificate"), "{stdout}");
    let ca_before = std::fs::read(f.data().join("ca/issuing.crt")).unwrap();
    let second = f.certmill(&["demo", "--devices", "5"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        !stderr(&second).contains("DEVELOPMENT CA"),
        "the second run reuses the CA"
    );
    assert_eq!(
        std::fs::read(f.data().join("ca/issuing.crt")).unwrap(),
        ca_before
    );
    // The password file is private and the password never appears in the output.
    let demo = f.data().join("demo");
    let password_file = std::fs::read_dir(&demo)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".password"))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&password_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let password = std::fs::read_to_string(&password_file).unwrap();
    assert!(!stdout.contains(password.trim()) && !stderr(&first).contains(password.trim()));
}

#[test]
fn bad_rows_are_named_and_nothing_is_written() {
    let f = fixture!();
    let csv = "macAddress,years\n00:1A:2B:3C:4D:5E,1\nnot-a-mac,1\n00:1A:2B:3C:4D:5F,7\n";
    let csv_path = f.write("bad.csv", csv);
    let pw = f.write("pw", "secret-pass\n");
    let out = f.certmill(&[
        "issue",
        "--profile",
        "ecc-device",
        "--csv",
        csv_path.to_str().unwrap(),
        "--param",
        "deviceClass=Aircraft",
        "--password-file",
        pw.to_str().unwrap(),
        "--out",
        f.path("batch.zip").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("row 2: commonName"), "{message}");
    assert!(message.contains("Valid MAC address"), "{message}");
    assert!(message.contains("row 3: validityPeriod"), "{message}");
    assert!(message.contains("Valid integer values: 1,2,3"), "{message}");
    assert!(!message.contains("row 1:"), "{message}");
    assert!(
        outputs(f.dir.path()).is_empty(),
        "no ZIP and no partial file: {:?}",
        outputs(f.dir.path())
    );
}

/// The input limit flags of `certmill issue`: each refused by name, nothing written, nothing
/// recorded; within the limits the same input issues.
#[test]
fn input_limit_flags_refuse_by_name_and_write_nothing() {
    let f = fixture!();
    let csv = mac_csv(3, "", "");
    let issue = |flags: &[&str]| {
        f.try_issue(
            "ecc-device",
            &csv,
            &["deviceClass=Aircraft"],
            "secret-pass",
            flags,
        )
        .0
    };
    for (flags, expected) in [
        (
            &["--max-devices", "2"][..],
            "more than 2 devices, the most one batch may hold",
        ),
        (
            &["--max-csv-field-bytes", "10"][..],
            "row 1: column 1 (\"macAddress\"): 17 bytes, over the limit of 10",
        ),
    ] {
        let out = issue(flags);
        assert_eq!(out.status.code(), Some(3), "{flags:?}: {}", stderr(&out));
        let message = stderr(&out);
        assert!(message.contains(expected), "{flags:?}: {message}");
        assert!(
            outputs(f.dir.path()).is_empty(),
            "{flags:?}: {:?}",
            outputs(f.dir.path())
        );
    }
    let listed = f.certmill_ok(&["batches", "list"]);
    assert!(
        !listed.contains("batch.zip"),
        "a refused batch was recorded: {listed}"
    );
    let out = issue(&["--max-devices", "3", "--max-csv-field-bytes", "17"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(outputs(f.dir.path()), ["ecc-device.zip"]);
}

#[test]
fn header_problems_are_refused_before_any_row() {
    let f = fixture!();
    let pw = f.write("pw", "secret-pass\n");
    let cases = [
        (
            "macAddress,colour\n00:1A:2B:3C:4D:5E,red\n",
            "\"colour\" is not a parameter",
        ),
        ("years\n1\n", "required column \"macAddress\" is missing"),
        (
            "macAddress\n00:1A:2B:3C:4D:5E\n",
            "required column \"deviceClass\" is missing (or give batch parameter deviceClass)",
        ),
        (
            "macAddress,years\n00:1A:2B:3C:4D:5E\n",
            "record has 1 fields but the header has 2",
        ),
        ("macAddress\n", "no devices"),
    ];
    for (csv, expected) in cases {
        let csv_path = f.write("case.csv", csv);
        let needs_class = !expected.contains("deviceClass");
        let mut args = vec![
            "issue",
            "--profile",
            "ecc-device",
            "--csv",
            csv_path.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ];
        let zip = f.path("batch.zip");
        args.extend(["--out", zip.to_str().unwrap()]);
        if needs_class {
            args.extend(["--param", "deviceClass=Aircraft"]);
        }
        let out = f.certmill(&args);
        assert_eq!(out.status.code(), Some(3), "{csv:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{csv:?}: {}", stderr(&out));
        assert!(outputs(f.dir.path()).is_empty());
    }
}

#[test]
fn csv_headers_are_case_insensitive_in_any_order_with_a_bom() {
    let f = fixture!();
    let csv = "\u{feff}YEARS,MacAddress,deviceclass\n2,00:1A:2B:3C:4D:5E,Aircraft\n\n1,00:1A:2B:3C:4D:5F,Video Sensor\n";
    let zip = f.issue("ecc-device", csv, &[], "secret-pass", &[]);
    let names = unzip(&zip, &f.path("out"));
    assert_eq!(
        names,
        [
            "chain.pem",
            "00-1A-2B-3C-4D-5E.p12",
            "00-1A-2B-3C-4D-5F.p12",
            "manifest.csv"
        ]
    );
}

#[test]
fn duplicate_common_names_get_unique_file_names() {
    let f = fixture!();
    let csv = "macAddress\n00:1A:2B:3C:4D:5E\n00-1A-2B-3C-4D-5E\n00:1A:2B:3C:4D:5E\n";
    let zip = f.issue(
        "ecc-device",
        csv,
        &["deviceClass=Aircraft"],
        "secret-pass",
        &[],
    );
    let names = unzip(&zip, &f.path("out"));
    assert_eq!(
        names[1..4],
        [
            "00-1A-2B-3C-4D-5E.p12",
            "00-1A-2B-3C-4D-5E-2.p12",
            "00-1A-2B-3C-4D-5E-3.p12"
        ]
    );
}

#[test]
fn issued_certificates_are_recorded_and_found() {
    let f = fixture!();
    let zip = f.issue(
        "ecc-device",
        &mac_csv(3, "", ""),
        &["deviceClass=Aircraft"],
        "secret-pass",
        &[],
    );
    unzip(&zip, &f.path("out"));
    let manifest = std::fs::read_to_string(f.path("out/manifest.csv")).unwrap();
    let second: Vec<&str> = manifest.lines().nth(2).unwrap().split(',').collect();
    let (cn, serial) = (second[2], second[3]);
    let found = f.certmill_ok(&["certs", "find", "--cn", cn]);
    assert!(found.contains(serial), "{found}");
    assert_eq!(found.lines().count(), 1);
    let upper_with_colons: Vec<String> = serial
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect();
    let found = f.certmill_ok(&[
        "certs",
        "find",
        "--serial",
        &upper_with_colons.join(":"),
        "--pem",
    ]);
    assert!(
        found.contains(cn) && found.contains("BEGIN CERTIFICATE"),
        "{found}"
    );
    let missing = f.certmill(&["certs", "find", "--cn", "00:00:00:00:00:00"]);
    assert_eq!(missing.status.code(), Some(1));
    let batches = f.certmill_ok(&["batches", "list"]);
    assert!(
        batches.contains("Ready For Download") && batches.contains("3/3"),
        "{batches}"
    );
}

#[test]
fn profile_check_prints_parameters_or_errors_with_paths() {
    let f = fixture!();
    let text = f.certmill_ok(&["profile", "check", "ecc-device"]);
    assert!(
        text.contains("macAddress") && text.contains("required"),
        "{text}"
    );
    assert!(
        text.contains("deviceClass")
            && text.contains("required unless batch parameter deviceClass"),
        "{text}"
    );
    let json = f.certmill_ok(&["profile", "check", "ecc-device", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["keyAlgorithmInfo"], "EC:P-256");
    let years = value["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "years")
        .unwrap();
    assert_eq!(years["validationPattern"], "^(1|2|3){1}$");

    let bad = f.write(
        "bad.json",
        &include_str!("../profiles/ecc-device.json").replace("\"length\": 16", "\"length\": 4"),
    );
    let out = f.certmill(&["profile", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("/SerialNumber/length"),
        "{}",
        stderr(&out)
    );

    // Bound to the issuer when the data directory has one: a validity of 100 years compiles,
    // fits no CA of 10 years, and is refused as a batch would refuse it.
    let long = f.write(
        "long.json",
        include_str!("../fuzz/corpus/profile_json/validity-beyond-issuer.json"),
    );
    assert!(text.contains("not checked against a CA"), "{text}");
    let unbound = f.certmill_ok(&["profile", "check", long.to_str().unwrap()]);
    assert!(unbound.contains(": OK"), "{unbound}");
    f.certmill_ok(&["demo", "--devices", "1"]);
    let bound = f.certmill_ok(&["profile", "check", "ecc-device"]);
    assert!(
        bound.contains("issuer:     default: ") && bound.contains("the profile fits it"),
        "{bound}"
    );
    let out = f.certmill(&["profile", "check", long.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("against issuer default: /Validity")
            && stderr(&out).contains("after the issuing CA expires"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn profile_limits_come_from_flags_and_refuse_by_file_name() {
    let f = fixture!();
    let profile = f.write("p.json", include_str!("../profiles/ecc-device.json"));
    let path = profile.to_str().unwrap();
    f.certmill_ok(&["profile", "check", path]);

    let out = f.certmill(&["--max-profile-bytes", "1000", "profile", "check", path]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let size = include_str!("../profiles/ecc-device.json").len();
    assert!(
        stderr(&out).contains(&format!(
            "profile {path}: profile is {size} bytes, over the limit of 1000"
        )),
        "{}",
        stderr(&out)
    );

    let out = f.certmill(&["--max-profile-depth", "4", "profile", "check", path]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nesting deeper than 4 at /Subject/attributes/0/source (line 29"),
        "{}",
        stderr(&out)
    );

    let deep = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/profile_json/deep-nesting.json"
    );
    let out = f.certmill(&["profile", "check", deep]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nesting deeper than 32 at /Extensions/KeyUsage/bits/0/0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_password_is_required_and_never_echoed() {
    let f = fixture!();
    let csv = f.write("d.csv", &mac_csv(1, "", ""));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certmill"))
        .args([
            "--data",
            f.data().to_str().unwrap(),
            "issue",
            "--profile",
            "ecc-device",
            "--csv",
            csv.to_str().unwrap(),
        ])
        .args([
            "--param",
            "deviceClass=Aircraft",
            "--out",
            f.path("b.zip").to_str().unwrap(),
        ])
        .env_remove("CERTMILL_PKCS12_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("password is required"),
        "{}",
        stderr(&out)
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certmill"))
        .args([
            "--data",
            f.data().to_str().unwrap(),
            "issue",
            "--profile",
            "ecc-device",
            "--csv",
            csv.to_str().unwrap(),
        ])
        .args([
            "--param",
            "deviceClass=Aircraft",
            "--out",
            f.path("b.zip").to_str().unwrap(),
        ])
        .env("CERTMILL_PKCS12_PASSWORD", "env-secret-123")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(!all.contains("env-secret-123"));
    let db = std::fs::read(f.data().join("certmill.db")).unwrap();
    assert!(
        !db.windows(14).any(|w| w == b"env-secret-123"),
        "the password is not stored"
    );
}

#[test]
fn ca_init_import_and_encrypted_keys() {
    let f = fixture!();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certmill"))
        .args([
            "--data",
            f.data().to_str().unwrap(),
            "ca",
            "init",
            "--algorithm",
            "EC:P-384",
        ])
        .env("CERTMILL_CA_PASSPHRASE", "ca-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    let key = f.data().join("ca/issuing.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("ENCRYPTED PRIVATE KEY"));
    let show = f.certmill(&["ca", "show"]);
    assert!(
        !show.status.success(),
        "an encrypted CA key needs the passphrase"
    );
    assert!(stderr(&show).contains("passphrase"), "{}", stderr(&show));

    // Import into another data directory: the maker's own issuing CA.
    let other = fixture!();
    let imported = std::process::Command::new(env!("CARGO_BIN_EXE_certmill"))
        .args(["--data", other.data().to_str().unwrap(), "ca", "import"])
        .args(["--cert", f.data().join("ca/issuing.crt").to_str().unwrap()])
        .args(["--key", key.to_str().unwrap()])
        .args(["--chain", f.data().join("ca/root.crt").to_str().unwrap()])
        .env("CERTMILL_CA_PASSPHRASE", "ca-secret")
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", stderr(&imported));
    let refused = other.certmill(&[
        "ca",
        "import",
        "--cert",
        f.data().join("ca/issuing.crt").to_str().unwrap(),
        "--key",
        f.data().join("ca/root.key").to_str().unwrap(),
    ]);
    assert!(
        !refused.status.success(),
        "a second import must not overwrite the CA"
    );
}
