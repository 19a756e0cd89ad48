//! Every input limit and error class over HTTP against the real server: each hostile or broken
//! upload is refused with an error that names what is wrong (row, column, entry), and leaves
//! nothing behind: no batch, no ZIP, no spooled upload, no balance change. The server keeps
//! issuing good batches in between.

use crate::server::{Resp, Server, PKCS12_PASSWORD};
use crate::util::Fixture;
use serde_json::json;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

/// Every file under the data directory except the store's own (which records logins).
fn files(data: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![data.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(data).unwrap().display().to_string();
                if !name.starts_with("certmill.db") && !name.ends_with(".crl") {
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// `POST /api/v1/batches/upload?profileId=1` of one CSR file.
fn upload(server: &Server, token: &str, content: &[u8], content_type: &str) -> Resp {
    let path = server.temp("upload");
    std::fs::write(&path, content).unwrap();
    let params = json!({"deviceClass": "Aircraft"});
    server.upload("upload", token, &path, content_type, params)
}

fn zip(files: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut out);
    for (name, content, method) in files {
        let options = zip::write::SimpleFileOptions::default().compression_method(*method);
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap();
    out.into_inner()
}

/// A P-256 CSR (PEM) and its private key (PEM), made by openssl.
fn csr(f: &Fixture, name: &str, cn: &str) -> (Vec<u8>, String) {
    let path = crate::server::make_csr(f.dir.path(), name, cn);
    let key = std::fs::read_to_string(f.dir.path().join(format!("{name}.key"))).unwrap();
    (std::fs::read(path).unwrap(), key)
}

#[test]
fn refused_inputs_are_named_and_change_nothing() {
    let f = fixture!();
    let server = Server::start(
        &f,
        &[
            ("CERTMILL_MAX_DEVICES", "3"),
            ("CERTMILL_MAX_CSV_FIELD_BYTES", "40"),
            ("CERTMILL_MAX_CSV_RECORD_BYTES", "2048"),
            ("CERTMILL_MAX_CSRS", "2"),
            ("CERTMILL_MAX_CSR_BYTES", "4096"),
            ("CERTMILL_MAX_ZIP_RATIO", "20"),
        ],
    );
    let token = server.admin();
    let authority = server.authority(&token, 1);
    let params = json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD});

    // One good batch first, so that "nothing changed" is measured against a used server.
    let good = server
        .upload_csv(&token, "macAddress\n02:00:00:00:00:01\n", params.clone())
        .expect(200, "a good batch")
        .json();
    let good_id = good["batchId"].as_i64().unwrap();
    server.wait_ready(&token, good_id);
    let balance = server.balance_available(&token, authority);
    let before = files(&server.data);
    let batches = |server: &Server| {
        server
            .json(
                "POST",
                "/api/v1/batches?profileId=1",
                &token,
                json!({"filter": {"pagingSettings": {"pageIndex": 0, "pageSize": 100}}}),
            )
            .expect(200, "batch list")
            .json()["batches"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(batches(&server), 1);

    let mac = |i: usize| format!("02:00:00:00:01:{i:02X}");
    let mut long_record = format!("macAddress\n{}\n\"{}", mac(1), mac(2)).into_bytes();
    long_record.resize(100_000, b'a');
    let csv_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "more devices than --max-devices",
            format!(
                "macAddress\n{}\n{}\n{}\n{}\n",
                mac(1),
                mac(2),
                mac(3),
                mac(4)
            )
            .into_bytes(),
            "more than 3 devices",
        ),
        (
            "a field over --max-csv-field-bytes",
            format!(
                "macAddress,additionalInformation\n{},{}\n",
                mac(1),
                "x".repeat(41)
            )
            .into_bytes(),
            "CSV, row 1: column 2 (\"additionalInformation\"): 41 bytes, over the limit of 40",
        ),
        (
            "a record over --max-csv-record-bytes",
            long_record,
            "CSV, row 2: the record is longer than the limit of 2048 bytes",
        ),
        (
            "a NUL",
            format!("macAddress\n{}\n0\u{0}2\n", mac(1)).into_bytes(),
            "CSV, row 2: column 1 (\"macAddress\"): holds a NUL character",
        ),
        (
            "semicolons",
            format!("macAddress;deviceClass\n{};Aircraft\n", mac(1)).into_bytes(),
            "the file seems separated by ';'",
        ),
        (
            "a ragged row",
            format!("macAddress,deviceClass\n{},Aircraft,extra\n", mac(1)).into_bytes(),
            "CSV, row 1: record has 3 fields but the header has 2",
        ),
        (
            "a repeated column",
            format!("macAddress,MACADDRESS\n{},{}\n", mac(1), mac(2)).into_bytes(),
            "repeats column \"macAddress\"",
        ),
        (
            "an unknown column",
            format!("macAddress,colour\n{},red\n", mac(1)).into_bytes(),
            "\"colour\" is not a parameter",
        ),
        (
            "invalid UTF-8",
            [
                format!("macAddress,additionalInformation\n{},caf", mac(1)).as_bytes(),
                b"\xe9\n",
            ]
            .concat(),
            "not valid UTF-8",
        ),
        (
            "a formula in a free-text field",
            format!(
                "macAddress,additionalInformation\n{},=HYPERLINK(\"http://x\")\n",
                mac(1)
            )
            .into_bytes(),
            "spreadsheet formula",
        ),
    ];
    for (what, csv, expected) in &csv_cases {
        let error = server
            .upload_csv(&token, csv, params.clone())
            .expect_error(400, what);
        let said = error["error_description"].as_str().unwrap();
        assert!(said.contains(expected), "{what}: {said}");
        assert!(
            !said.contains(&server.data.display().to_string()),
            "{what}: {said}"
        );
    }

    // CSR uploads.
    let (one, key) = csr(&f, "one", "02:00:00:00:02:01");
    let (two, _) = csr(&f, "two", "02:00:00:00:02:02");
    let (three, _) = csr(&f, "three", "02:00:00:00:02:03");
    let stored = zip::CompressionMethod::Stored;
    let deflated = zip::CompressionMethod::Deflated;
    let inner = zip(&[("a.csr", &one, stored)]);
    let bomb = vec![b'A'; 60_000];
    let big = [one.as_slice(), &vec![b'\n'; 5000]].concat();
    let csr_cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "more CSRs than --max-csrs",
            [one.clone(), two.clone(), three].concat(),
            "application/x-pem-file",
            "3 CSRs exceed the limit of 2",
        ),
        (
            "a CSR over --max-csr-bytes",
            zip(&[("big.csr", &big, stored)]),
            "application/zip",
            "entry `big.csr`: 5",
        ),
        (
            "a zip bomb",
            zip(&[("a.csr", &bomb, deflated)]),
            "application/zip",
            "exceeds the limit of 20:1",
        ),
        (
            "a nested ZIP",
            zip(&[("a.csr", &one, stored), ("b.csr", &inner, stored)]),
            "application/zip",
            "entry `b.csr`: a ZIP inside the ZIP",
        ),
        (
            "a path out",
            zip(&[("../../etc/a.csr", &one, stored)]),
            "application/zip",
            "a '..' path component",
        ),
        (
            "a private key",
            [one.clone(), key.clone().into_bytes()].concat(),
            "application/x-pem-file",
            "PRIVATE KEY block",
        ),
        (
            "a certificate instead",
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec(),
            "application/x-pem-file",
            "a CERTIFICATE block, not a CERTIFICATE REQUEST",
        ),
    ];
    for (what, content, content_type, expected) in &csr_cases {
        let error = upload(&server, &token, content, content_type).expect_error(400, what);
        let said = error["error_description"].as_str().unwrap();
        assert!(said.contains(expected), "{what}: {said}");
        assert!(
            !said.contains("BEGIN PRIVATE KEY") && !said.contains(&key[30..60]),
            "{what}: {said}"
        );
        assert!(
            !said.contains(&server.data.display().to_string()),
            "{what}: {said}"
        );
    }

    // A generator batch is counted before anything is read.
    let error = server
        .json(
            "PUT",
            "/api/v1/batches",
            &token,
            crate::server::generator_batch(authority, "too-big", "02:00:00:00:03:00", 4),
        )
        .expect_error(400, "a generator batch over --max-devices");
    let said = error["error_description"].as_str().unwrap();
    assert!(said.contains("more than 3 devices"), "{said}");

    // A single request's free-text value that starts like a formula, refused by field.
    let error = server
        .json(
            "PUT",
            "/api/v1/batches/createSingleCertBatch",
            &token,
            json!({"authorityId": authority, "batchName": "formula", "profileParams": {
                "macAddress": "02:00:00:00:04:01", "deviceClass": "Aircraft",
                "additionalInformation": "@SUM(1+1)*cmd|' /C calc'!A0",
                "pkcs12Password": PKCS12_PASSWORD}}),
        )
        .expect_error(400, "a formula in a single request");
    let said = error["error_description"].as_str().unwrap();
    assert!(
        said.contains("organizationalUnitName") && said.contains("spreadsheet formula"),
        "{said}"
    );

    // Nothing changed: no batch, no file (ZIP or spooled upload), no balance.
    assert_eq!(batches(&server), 1, "a refused input recorded a batch");
    assert_eq!(server.balance_available(&token, authority), balance);
    assert_eq!(
        files(&server.data),
        before,
        "a refused input left a file behind"
    );

    // And the server still issues.
    let again = upload(
        &server,
        &token,
        &[one, two].concat(),
        "application/x-pem-file",
    )
    .expect(200, "a good CSR bundle")
    .json();
    server.wait_ready(&token, again["batchId"].as_i64().unwrap());
    assert_eq!(server.balance_available(&token, authority), balance - 2);
}
