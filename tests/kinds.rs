//! The other batch kinds: CSR bundles (PEM and ZIP), generator sequences, preview, and
//! single-certificate batches, checked with openssl and Python.

use crate::util::{pem_blocks, tool, unzip, Fixture};
use std::path::{Path, PathBuf};

const PASSWORD: &str = "factory-line-7";

/// Makes a CSR with the openssl CLI; returns its PEM.
fn make_csr(f: &Fixture, name: &str, key: &str, subject: &str) -> String {
    let key_path = f.path(&format!("{name}.key"));
    let csr_path = f.path(&format!("{name}.csr"));
    let mut args = vec![
        "req",
        "-new",
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        key_path.to_str().unwrap(),
        "-out",
        csr_path.to_str().unwrap(),
    ];
    match key {
        "P-256" => args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        "RSA" => args.extend(["-newkey", "rsa:2048"]),
        other => panic!("{other}"),
    }
    let out = tool("openssl", &args);
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(csr_path).unwrap()
}

fn public_key_of(args: &[&str]) -> String {
    let out = tool("openssl", args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PUBLIC KEY"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn issue_args<'a>(
    f: &'a Fixture,
    profile: &'a str,
    source: &'a [&'a str],
    params: &'a [&'a str],
    out: &'a Path,
) -> Vec<String> {
    let mut args: Vec<String> = vec!["issue".into(), "--profile".into(), profile.into()];
    args.extend(source.iter().map(|s| s.to_string()));
    for p in params {
        args.push("--param".into());
        args.push(p.to_string());
    }
    let pw = f.write("pw.txt", &format!("{PASSWORD}\n"));
    args.extend([
        "--password-file".into(),
        pw.to_str().unwrap().into(),
        "--out".into(),
        out.to_str().unwrap().into(),
    ]);
    args
}

/// Runs `certmill issue` with these arguments and asserts it succeeded.
fn issue_ok(f: &Fixture, profile: &str, source: &[&str], params: &[&str], out: &Path) {
    let result = run(f, &issue_args(f, profile, source, params, out));
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Issues the PEM CSR `bundle` on the ECC device profile into `certs.zip`; returns its path.
fn issue_bundle(f: &Fixture, bundle: &str) -> PathBuf {
    let bundle_path = f.write("bundle.pem", bundle);
    let out = f.path("certs.zip");
    issue_ok(
        f,
        "ecc-device",
        &["--csr", bundle_path.to_str().unwrap()],
        &["deviceClass=Aircraft"],
        &out,
    );
    out
}

fn run(f: &Fixture, args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    f.certmill(&args)
}

/// No output ZIP and no partial one.
fn no_zip(f: &Fixture) -> bool {
    !f.path("certs.zip").exists()
        && !f.path("gen.zip").exists()
        && std::fs::read_dir(f.dir.path()).unwrap().all(|e| {
            !e.unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".zip.part")
        })
}

#[test]
fn csr_bundle_is_signed_with_the_requesters_keys() {
    let f = fixture!();
    let mut bundle = String::from("junk before the first block\n");
    let mut csrs = Vec::new();
    for i in 0..3 {
        let pem = make_csr(
            &f,
            &format!("dev{i}"),
            "P-256",
            &format!("/CN=00:1A:2B:3C:4D:5{i}/OU=Customer {i}/O=Ignored Org"),
        );
        let pem = if i == 1 {
            pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
        } else {
            pem
        };
        bundle.push_str(&pem);
        csrs.push(f.path(&format!("dev{i}.csr")));
    }
    let out = issue_bundle(&f, &bundle);
    let names = unzip(&out, &f.path("out"));
    assert_eq!(
        names,
        [
            "chain.pem",
            "00-1A-2B-3C-4D-50.crt",
            "00-1A-2B-3C-4D-51.crt",
            "00-1A-2B-3C-4D-52.crt",
            "manifest.csv"
        ]
    );
    let chain = f.path("out/chain.pem");
    let root = f.write(
        "root.pem",
        &pem_blocks(&std::fs::read_to_string(&chain).unwrap())[1],
    );
    for (i, csr) in csrs.iter().enumerate() {
        let crt = f.path(&format!("out/00-1A-2B-3C-4D-5{i}.crt"));
        let verify = tool(
            "openssl",
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                root.to_str().unwrap(),
                "-untrusted",
                chain.to_str().unwrap(),
                crt.to_str().unwrap(),
            ],
        );
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );
        // The certificate carries the CSR's public key.
        let from_csr = public_key_of(&["req", "-in", csr.to_str().unwrap(), "-pubkey", "-noout"]);
        let from_cert = public_key_of(&["x509", "-in", crt.to_str().unwrap(), "-pubkey", "-noout"]);
        assert_eq!(from_csr, from_cert);
        // The profile decides: OU from the CSR, O from the profile (not the requester's).
        let subject = tool(
            "openssl",
            &[
                "x509",
                "-in",
                crt.to_str().unwrap(),
                "-noout",
                "-subject",
                "-nameopt",
                "RFC2253",
            ],
        );
        let subject = String::from_utf8_lossy(&subject.stdout).into_owned();
        assert!(subject.contains(&format!("OU=Customer {i}")), "{subject}");
        assert!(
            subject.contains("O=COMODO CA Limited") && !subject.contains("Ignored Org"),
            "{subject}"
        );
    }
}

#[test]
fn csr_zip_with_der_and_pem_entries() {
    let f = fixture!();
    let a = make_csr(&f, "a", "P-256", "/CN=00:1A:2B:3C:4D:60");
    make_csr(&f, "b", "P-256", "/CN=00:1A:2B:3C:4D:61");
    let der = tool(
        "openssl",
        &[
            "req",
            "-in",
            f.path("b.csr").to_str().unwrap(),
            "-outform",
            "DER",
        ],
    )
    .stdout;
    let zip_path = f.path("requests.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("line-1/a.pem", options).unwrap();
        std::io::Write::write_all(&mut zip, a.as_bytes()).unwrap();
        zip.start_file("b.csr", options).unwrap();
        std::io::Write::write_all(&mut zip, &der).unwrap();
        zip.finish().unwrap();
    }
    let out = f.path("certs.zip");
    issue_ok(
        &f,
        "ecc-device",
        &["--csr", zip_path.to_str().unwrap()],
        &["deviceClass=Aircraft"],
        &out,
    );
    let names = unzip(&out, &f.path("out"));
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.contains(&"00-1A-2B-3C-4D-61.crt".to_owned()),
        "{names:?}"
    );
}

/// A CSR batch that a crash interrupted: recovery voids what it signed, so OCSP never answers
/// good for a certificate no one received, and the batch's serials are never reused.
#[test]
fn recovery_voids_the_certificates_of_an_interrupted_csr_batch() {
    let f = fixture!();
    let mut bundle = String::new();
    for i in 0..2 {
        bundle.push_str(&make_csr(
            &f,
            &format!("crash{i}"),
            "P-256",
            &format!("/CN=00:1A:2B:3C:4D:8{i}"),
        ));
    }
    let out = issue_bundle(&f, &bundle);
    unzip(&out, &f.path("out"));
    let manifest = std::fs::read_to_string(f.path("out/manifest.csv")).unwrap();
    let serials: Vec<String> = manifest
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(3).unwrap().to_owned())
        .collect();
    assert_eq!(serials.len(), 2, "{manifest}");
    let good = f.certmill_ok(&["ocsp", "status", "--serial", &serials[0]]);
    assert!(good.contains(": good"), "{good}");
    // Rewind to a crash before the ZIP was renamed into place: the batch still Pending Issue,
    // its certificates recorded, its lock released, no ZIP.
    let db = rusqlite::Connection::open(f.data().join("certmill.db")).unwrap();
    db.execute(
        "UPDATE batches SET status = 'Pending Issue' WHERE id = 1",
        [],
    )
    .unwrap();
    drop(db);
    std::fs::remove_file(&out).unwrap();
    std::fs::write(f.data().join("locks/batch-1.lock"), "0".repeat(32)).unwrap();
    // The next command runs recovery first, like every command.
    let show: serde_json::Value =
        serde_json::from_str(&f.certmill_ok(&["batches", "show", "1"])).unwrap();
    assert_eq!(show["status"], "Broken", "{show}");
    let reason = show["rejectReason"].as_str().unwrap();
    assert!(
        reason.contains("interrupted") && reason.contains("voided"),
        "{reason}"
    );
    for serial in &serials {
        let status = f.certmill_ok(&["ocsp", "status", "--serial", serial]);
        assert!(status.contains(": revoked (never issued"), "{status}");
    }
    assert_eq!(show["processingInfo"]["success"], 0, "{show}");
    f.certmill_ok(&["audit", "verify"]);
}

#[test]
fn bad_csr_inputs_get_their_own_errors_and_no_zip() {
    let f = fixture!();
    let good = make_csr(&f, "good", "P-256", "/CN=00:1A:2B:3C:4D:70");
    let rsa = make_csr(&f, "rsa", "RSA", "/CN=00:1A:2B:3C:4D:71");
    // Broken signature: flip a byte near the end of the DER (inside the signature).
    let der = tool(
        "openssl",
        &[
            "req",
            "-in",
            f.path("good.csr").to_str().unwrap(),
            "-outform",
            "DER",
        ],
    )
    .stdout;
    let mut broken = der.clone();
    let at = broken.len() - 5;
    broken[at] ^= 0x01;
    let broken_pem =
        der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &broken).unwrap();

    let out = f.path("certs.zip");
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "broken signature",
            f.write("broken.pem", &format!("{good}{broken_pem}")),
            "signature",
        ),
        (
            "wrong key type",
            f.write("rsa.pem", &format!("{good}{rsa}")),
            "#2",
        ),
    ];
    for (what, path, expected) in cases {
        let result = run(
            &f,
            &issue_args(
                &f,
                "ecc-device",
                &["--csr", path.to_str().unwrap()],
                &["deviceClass=Aircraft"],
                &out,
            ),
        );
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        assert_eq!(result.status.code(), Some(3), "{what}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(&expected.to_lowercase()),
            "{what}: {stderr}"
        );
        assert!(no_zip(&f), "{what}: no ZIP");
    }
    // The wrong key type names the profile's key type.
    let result = run(
        &f,
        &issue_args(
            &f,
            "ecc-device",
            &["--csr", f.path("rsa.pem").to_str().unwrap()],
            &["deviceClass=Aircraft"],
            &out,
        ),
    );
    assert!(
        String::from_utf8_lossy(&result.stderr).contains("EC:P-256"),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );

    // A ZIP bomb and a ZIP with a non-CSR entry, made with Python's zipfile (deflated).
    let bomb = f.path("bomb.zip");
    let stray = f.path("stray.zip");
    let script = format!(
        "import zipfile\nz = zipfile.ZipFile({bomb:?}, 'w', zipfile.ZIP_DEFLATED)\nz.writestr('big.csr', b'\\0' * 50_000_000)\nz.close()\n\
         z = zipfile.ZipFile({stray:?}, 'w', zipfile.ZIP_DEFLATED)\nz.writestr('a.csr', open({good_path:?}, 'rb').read())\nz.writestr('notes.txt', b'hello')\nz.close()\n",
        bomb = bomb.to_str().unwrap(),
        stray = stray.to_str().unwrap(),
        good_path = f.path("good.csr").to_str().unwrap()
    );
    let made = tool("python3", &["-c", &script]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for (what, path, expected) in [
        ("zip bomb", &bomb, "big.csr"),
        ("stray entry", &stray, "notes.txt"),
    ] {
        let result = run(
            &f,
            &issue_args(
                &f,
                "ecc-device",
                &["--csr", path.to_str().unwrap()],
                &["deviceClass=Aircraft"],
                &out,
            ),
        );
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        assert_eq!(result.status.code(), Some(3), "{what}: {stderr}");
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(no_zip(&f), "{what}: no ZIP");
    }
}

#[test]
fn mac_generator_batch_matches_its_preview() {
    let f = fixture!();
    let source = ["--generator", "mac", "--count", "3"];
    let params = [
        "startValue=00:1A:2B:00:00:FE",
        "increment=1",
        "deviceClass=Surface Vehicle",
        "additionalInformation=line-{seq}",
    ];
    let preview = f.certmill_ok(&[
        "preview",
        "--profile",
        "ecc-device",
        "--generator",
        "mac",
        "--count",
        "3",
        "--param",
        params[0],
        "--param",
        params[1],
        "--param",
        params[2],
        "--param",
        params[3],
    ]);
    let preview: serde_json::Value = serde_json::from_str(&preview).unwrap();
    assert_eq!(preview["macAddress"], "00:1A:2B:00:00:FE");
    assert_eq!(preview["serials"], "00:1A:2B:00:00:FE");
    assert_eq!(preview["additionalInformation"], "line-00:1A:2B:00:00:FE");
    assert_eq!(preview["deviceClass"], "Surface Vehicle");
    assert!(preview.get("pkcs12Password").is_none());

    let out = f.path("gen.zip");
    issue_ok(&f, "ecc-device", &source, &params, &out);
    let names = unzip(&out, &f.path("out"));
    assert_eq!(
        names,
        [
            "chain.pem",
            "00-1A-2B-00-00-FE.p12",
            "00-1A-2B-00-00-FF.p12",
            "00-1A-2B-00-01-00.p12",
            "manifest.csv"
        ]
    );
    // What was issued for device 1 is what the preview said.
    let p12 = f.path("out/00-1A-2B-00-00-FE.p12");
    let cert = tool(
        "openssl",
        &[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            &format!("pass:{PASSWORD}"),
            "-nokeys",
            "-clcerts",
        ],
    );
    let leaf = f.write(
        "leaf.pem",
        &pem_blocks(&String::from_utf8_lossy(&cert.stdout))[0],
    );
    let subject = tool(
        "openssl",
        &[
            "x509",
            "-in",
            leaf.to_str().unwrap(),
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
        ],
    );
    let subject = String::from_utf8_lossy(&subject.stdout).into_owned();
    assert!(subject.contains("CN=00:1A:2B:00:00:FE"), "{subject}");
    assert!(subject.contains("OU=line-00:1A:2B:00:00:FE"), "{subject}");
}

#[test]
fn generators_refuse_to_wrap_before_any_work() {
    let f = fixture!();
    let out = f.path("gen.zip");
    let result = run(
        &f,
        &issue_args(
            &f,
            "ecc-device",
            &["--generator", "mac", "--count", "3"],
            &["startValue=FF:FF:FF:FF:FF:FE", "deviceClass=Aircraft"],
            &out,
        ),
    );
    assert_eq!(result.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&result.stderr).contains("FF:FF:FF:FF:FF:FF"),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(no_zip(&f));
    assert!(
        !f.data().join("certmill.db").exists()
            || f.certmill_ok(&["batches", "list"]).trim().is_empty(),
        "no batch recorded"
    );
    let decimal = run(
        &f,
        &issue_args(
            &f,
            "ecc-server",
            &["--generator", "decimal", "--count", "2"],
            &["startValue=7", "dnsName=.node.example.com"],
            &out,
        ),
    );
    assert!(
        decimal.status.success(),
        "{}",
        String::from_utf8_lossy(&decimal.stderr)
    );
    let names = unzip(&out, &f.path("dec"));
    assert_eq!(
        names[1..3],
        ["7.node.example.com.p12", "8.node.example.com.p12"]
    );
}

#[test]
fn single_certificate_batch() {
    let f = fixture!();
    let out = f.path("single.zip");
    let params = [
        "macAddress=00:00:00:00:00:01",
        "deviceClass=Surface Vehicle",
        "years=2",
        "additionalInformation=info",
    ];
    issue_ok(&f, "ecc-device", &["--single"], &params, &out);
    let names = unzip(&out, &f.path("out"));
    assert_eq!(
        names,
        ["chain.pem", "00-00-00-00-00-01.p12", "manifest.csv"]
    );
    let info = tool(
        "openssl",
        &[
            "pkcs12",
            "-in",
            f.path("out/00-00-00-00-00-01.p12").to_str().unwrap(),
            "-passin",
            &format!("pass:{PASSWORD}"),
            "-nodes",
        ],
    );
    assert!(info.status.success());
    // Same validation as every batch.
    let bad = run(
        &f,
        &issue_args(
            &f,
            "ecc-device",
            &["--single"],
            &["macAddress=nope", "deviceClass=Aircraft"],
            &f.path("bad.zip"),
        ),
    );
    assert_eq!(bad.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("the request: commonName"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn a_csr_without_common_name_is_named_after_its_entry() {
    let f = fixture!();
    let mut profile: serde_json::Value =
        serde_json::from_str(include_str!("../profiles/ecc-server.json")).unwrap();
    profile["Subject"]["attributes"][2]["optional"] = true.into();
    let profile_path = f.write("no-cn.json", &profile.to_string());
    let key = f.path("k.key");
    let csr = f.path("k.csr");
    let made = tool(
        "openssl",
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-subj",
            "/O=Acme",
            "-addext",
            "subjectAltName=DNS:station-7.factory.example.com",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
            "-outform",
            "DER",
        ],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let zip_path = f.path("requests.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        zip.start_file(
            "line-2/station-7.csr",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        std::io::Write::write_all(&mut zip, &std::fs::read(&csr).unwrap()).unwrap();
        zip.finish().unwrap();
    }
    let out = f.path("certs.zip");
    issue_ok(
        &f,
        profile_path.to_str().unwrap(),
        &["--csr", zip_path.to_str().unwrap()],
        &[],
        &out,
    );
    let names = unzip(&out, &f.path("out"));
    assert_eq!(names, ["chain.pem", "station-7.crt", "manifest.csv"]);
    let san = tool(
        "openssl",
        &[
            "x509",
            "-in",
            f.path("out/station-7.crt").to_str().unwrap(),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(String::from_utf8_lossy(&san.stdout).contains("DNS:station-7.factory.example.com"));
}
