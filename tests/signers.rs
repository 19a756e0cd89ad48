//! Several issuers and seed 004's signer lifecycle against the real server: an ECC and an RSA
//! issuer side by side, a rotation while a batch is being issued, OCSP and CRLs of the retired
//! signer, renewal, refused deletions, and an external root's CSR round trip. openssl judges
//! every chain, OCSP answer and CRL.

use crate::server::{batch_id, generator_batch, Body, Server, BOB_PASSWORD, PKCS12_PASSWORD};
use crate::util::{openssl, text, tool, Fixture};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The chain of a batch ZIP split for `openssl verify`: (root file, intermediates file).
fn split_chain(chain: &Path) -> (PathBuf, PathBuf) {
    let blocks = crate::util::pem_blocks(&std::fs::read_to_string(chain).unwrap());
    assert!(blocks.len() >= 2, "chain.pem holds the signer and its root");
    let root = chain.with_extension("root.pem");
    let untrusted = chain.with_extension("untrusted.pem");
    std::fs::write(&root, blocks.last().unwrap()).unwrap();
    std::fs::write(&untrusted, blocks[..blocks.len() - 1].concat()).unwrap();
    (root, untrusted)
}

/// The device certificate of the first PKCS#12 in an unzipped batch, as a PEM file.
fn first_leaf(dir: &Path, names: &[String]) -> PathBuf {
    let p12 = names
        .iter()
        .find(|n| n.ends_with(".p12"))
        .expect("a .p12 in the ZIP");
    let out = dir.join("leaf.pem");
    openssl(&[
        "pkcs12",
        "-in",
        dir.join(p12).to_str().unwrap(),
        "-passin",
        &format!("pass:{PKCS12_PASSWORD}"),
        "-nokeys",
        "-clcerts",
        "-out",
        out.to_str().unwrap(),
    ]);
    out
}

/// `openssl verify` of `leaf` against a chain file: whether it verifies, and openssl's words.
fn verify(chain: &Path, leaf: &Path) -> (bool, String) {
    let (root, untrusted) = split_chain(chain);
    let out = tool(
        "openssl",
        &[
            "verify",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            untrusted.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ],
    );
    (out.status.success(), text(&out))
}

/// The issuer line of a certificate (`issuer=O = ..., CN = ...`).
fn issuer_of(cert: &Path) -> String {
    openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-issuer"])
}

/// The subject public key of a PEM certificate, as openssl prints it.
fn public_key(cert: &Path) -> String {
    openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"])
}

/// The CRL distribution point URL of a certificate.
fn crl_url(cert: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-ext",
        "crlDistributionPoints",
    ]);
    out.lines()
        .find_map(|l| l.trim().strip_prefix("URI:"))
        .expect("a CRL URI")
        .to_owned()
}

/// The entry of `GET /api/v1/profiles` whose `field` is `value`.
fn profile_where(server: &Server, token: &str, field: &str, value: &str) -> Value {
    let profiles = server
        .get("/api/v1/profiles", token)
        .expect(200, "profiles")
        .json();
    profiles
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[field] == value)
        .cloned()
        .unwrap_or_else(|| panic!("no profile with {field} {value:?} in {profiles}"))
}

/// Starts a generator batch and returns its id.
fn start_batch(
    server: &Server,
    token: &str,
    authority: i64,
    name: &str,
    start: &str,
    size: u64,
) -> i64 {
    let r = server
        .json(
            "PUT",
            "/api/v1/batches",
            token,
            generator_batch(authority, name, start, size),
        )
        .expect(200, "generator batch");
    batch_id(&r.json())
}

/// Issues (if `size` > 0), waits and downloads a batch: its unzipped directory and entries.
fn issued(server: &Server, token: &str, id: i64, name: &str) -> (PathBuf, Vec<String>) {
    server.wait_ready(token, id);
    let (dir, names, _) = server.download(token, id, name);
    (dir, names)
}

/// A profile file naming `issuer`, made from a shipped one.
fn profile_for_issuer(f: &Fixture, shipped: &str, name: &str, id: u64, issuer: &str) {
    let path = format!("{}/profiles/{shipped}.json", env!("CARGO_MANIFEST_DIR"));
    let mut profile: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    profile["Profile"]["name"] = json!(name);
    profile["Profile"]["id"] = json!(id);
    profile["Issuer"]["name"] = json!(issuer);
    let dir = f.data().join("profiles");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{issuer}.json")),
        serde_json::to_string_pretty(&profile).unwrap(),
    )
    .unwrap();
}

/// Polls the CRL at `url` (relative to the server) until it lists `serial` (hex); returns the
/// CRL file, verified by openssl against `chain`.
fn crl_listing(server: &Server, path: &str, chain: &Path, serial: &str, tag: &str) -> String {
    let (root, untrusted) = split_chain(chain);
    let both = chain.with_extension("both.pem");
    std::fs::write(
        &both,
        format!(
            "{}{}",
            std::fs::read_to_string(&untrusted).unwrap(),
            std::fs::read_to_string(&root).unwrap()
        ),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = server.call("GET", path, None, Body::Empty, &[]);
        assert_eq!(r.status, 200, "CRL {path}: {}", r.text());
        let file = chain.with_extension(format!("{tag}.crl"));
        std::fs::write(&file, &r.body).unwrap();
        let listing = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            file.to_str().unwrap(),
            "-CAfile",
            both.to_str().unwrap(),
            "-noout",
            "-text",
        ]);
        if listing
            .to_ascii_uppercase()
            .contains(&serial.to_ascii_uppercase())
        {
            return listing;
        }
        assert!(
            Instant::now() < deadline,
            "serial {serial} not on {path}: {listing}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The serial of a PEM certificate, upper-case hex.
fn serial_of(cert: &Path) -> String {
    openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_owned()
}

/// `openssl ocsp` by POST against the server, for `leaf` of the signer whose chain is `chain`.
fn ocsp(server: &Server, chain: &Path, leaf: &Path) -> String {
    let (root, untrusted) = split_chain(chain);
    let issuing = crate::util::pem_blocks(&std::fs::read_to_string(&untrusted).unwrap())
        .into_iter()
        .next()
        .unwrap();
    let issuing_file = chain.with_extension("issuing.pem");
    std::fs::write(&issuing_file, issuing).unwrap();
    openssl(&[
        "ocsp",
        "-issuer",
        issuing_file.to_str().unwrap(),
        "-CAfile",
        root.to_str().unwrap(),
        "-cert",
        leaf.to_str().unwrap(),
        "-url",
        &format!("{}/ocsp", server.base),
    ])
}

#[test]
fn two_issuers_side_by_side_rotation_mid_batch_renewal_and_refused_deletes() {
    let f = fixture!();
    f.certmill_ok(&["ca", "init"]);
    f.certmill_ok(&[
        "ca",
        "init",
        "--name",
        "rsa-line",
        "--algorithm",
        "RSA:2048",
    ]);
    profile_for_issuer(&f, "rsa-device", "RSA Line Device", 51, "rsa-line");
    let list = f.certmill_ok(&["ca", "list"]);
    assert!(
        list.contains("issuer default:") && list.contains("issuer rsa-line:"),
        "{list}"
    );
    let server = Server::start(&f, &[]);
    let token = server.admin();

    // Profile 5 is the RSA line's; the shipped ECC profile signs with the default issuer.
    let rsa_profile = profile_where(&server, &token, "ca", "RSA Line Device");
    assert_eq!(rsa_profile["issuer"], "rsa-line");
    let rsa_id = rsa_profile["profileId"].as_u64().unwrap();
    let issuers = server
        .get("/api/v1/issuers", &token)
        .expect(200, "issuers")
        .json();
    let names: Vec<&str> = issuers
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "rsa-line"], "{issuers}");
    assert_eq!(issuers[1]["current"]["keyAlgorithm"], "RSA:2048");
    assert_eq!(issuers[1]["current"]["state"], "ACTIVE");
    assert!(issuers[1]["profiles"]
        .as_array()
        .unwrap()
        .contains(&json!("RSA Line Device")));

    // An ECC and an RSA batch, each verified against its own chain only.
    let ecc_authority = server.authority(&token, 1);
    let rsa_authority = server.authority(&token, rsa_id);
    let ecc = start_batch(
        &server,
        &token,
        ecc_authority,
        "ecc",
        "02:00:00:00:10:00",
        3,
    );
    let rsa = start_batch(
        &server,
        &token,
        rsa_authority,
        "rsa",
        "02:00:00:00:20:00",
        3,
    );
    let (ecc_dir, ecc_names) = issued(&server, &token, ecc, "ecc");
    let (rsa_dir, rsa_names) = issued(&server, &token, rsa, "rsa");
    let ecc_leaf = first_leaf(&ecc_dir, &ecc_names);
    let rsa_leaf = first_leaf(&rsa_dir, &rsa_names);
    let ecc_chain = ecc_dir.join("chain.pem");
    let rsa_chain = rsa_dir.join("chain.pem");
    assert!(
        verify(&ecc_chain, &ecc_leaf).0,
        "{}",
        verify(&ecc_chain, &ecc_leaf).1
    );
    assert!(
        verify(&rsa_chain, &rsa_leaf).0,
        "{}",
        verify(&rsa_chain, &rsa_leaf).1
    );
    assert!(
        !verify(&rsa_chain, &ecc_leaf).0,
        "the ECC leaf must not verify under the RSA line"
    );
    assert!(
        !verify(&ecc_chain, &rsa_leaf).0,
        "the RSA leaf must not verify under the ECC issuer"
    );
    let rsa_text = openssl(&["x509", "-in", rsa_leaf.to_str().unwrap(), "-noout", "-text"]);
    assert!(rsa_text.contains("sha256WithRSAEncryption"), "{rsa_text}");
    let rsa_api_chain = server
        .get("/api/v1/issuers/rsa-line/signers/current/chain", &token)
        .expect(200, "chain")
        .json();
    assert_eq!(
        rsa_api_chain["chain"].as_array().unwrap().concat_pems(),
        std::fs::read_to_string(&rsa_chain).unwrap()
    );

    // Rotation while a batch is being issued: the batch finishes with the signer it started
    // with, the next batch gets the new one.
    let old = server
        .get("/api/v1/issuers/default/signers/current", &token)
        .expect(200, "current signer")
        .json();
    let big = start_batch(
        &server,
        &token,
        ecc_authority,
        "big",
        "02:00:00:01:00:00",
        20_000,
    );
    let status = server
        .get(&format!("/api/v1/batches/{big}/status"), &token)
        .expect(200, "status")
        .text();
    assert_eq!(
        status.trim(),
        "Processing",
        "the batch is in flight during the rotation"
    );
    let rotated = server
        .json("POST", "/api/v1/issuers/default/signers", &token, json!({}))
        .expect(201, "rotate")
        .json();
    assert_eq!(rotated["state"], "ACTIVE");
    assert_eq!(rotated["tenant"], "default");
    assert_ne!(rotated["id"], old["info"]["id"]);
    let (big_dir, big_names) = issued(&server, &token, big, "big");
    let big_leaf = first_leaf(&big_dir, &big_names);
    assert_eq!(
        issuer_of(&big_leaf),
        issuer_of(&ecc_leaf),
        "in-flight batch keeps its signer"
    );
    assert_eq!(
        std::fs::read_to_string(big_dir.join("chain.pem")).unwrap(),
        std::fs::read_to_string(&ecc_chain).unwrap()
    );
    assert!(verify(&big_dir.join("chain.pem"), &big_leaf).0);
    let after = start_batch(
        &server,
        &token,
        ecc_authority,
        "after",
        "02:00:00:02:00:00",
        2,
    );
    let (after_dir, after_names) = issued(&server, &token, after, "after");
    let after_leaf = first_leaf(&after_dir, &after_names);
    let after_chain = after_dir.join("chain.pem");
    assert!(
        issuer_of(&after_leaf).contains("Issuing CA 2"),
        "{}",
        issuer_of(&after_leaf)
    );
    assert!(verify(&after_chain, &after_leaf).0);
    assert!(
        !verify(&ecc_chain, &after_leaf).0,
        "a new certificate chains to the new signer only"
    );
    let retired = server
        .get(
            &format!(
                "/api/v1/issuers/default/signers/{}",
                old["info"]["id"].as_str().unwrap()
            ),
            &token,
        )
        .expect(200, "retired signer")
        .json();
    assert_eq!(retired["info"]["state"], "RETIRED");

    // The retired signer keeps answering OCSP and publishing its CRL for what it issued.
    let before = ocsp(&server, &ecc_chain, &ecc_leaf);
    assert!(
        before.contains(": good") && before.contains("Response verify OK"),
        "{before}"
    );
    let now_new = ocsp(&server, &after_chain, &after_leaf);
    assert!(
        now_new.contains(": good") && now_new.contains("Response verify OK"),
        "{now_new}"
    );
    server
        .json(
            "POST",
            &format!("/api/v1/batches/{ecc}/revoke"),
            &token,
            json!({"reasonCode": 1}),
        )
        .expect(200, "revoke the first ECC batch");
    let revoked = ocsp(&server, &ecc_chain, &ecc_leaf);
    assert!(
        revoked.contains(": revoked") && revoked.contains("Response verify OK"),
        "{revoked}"
    );
    let url = crl_url(&ecc_leaf);
    let path = &url[url.find("/crl/").unwrap()..];
    let listing = crl_listing(&server, path, &ecc_chain, &serial_of(&ecc_leaf), "retired");
    assert!(listing.contains("Key Compromise"), "{listing}");
    assert_ne!(crl_url(&after_leaf), url, "each signer names its own CRL");

    // Renewal: same key, new certificate; what the signer issued still verifies.
    let before_renewal = after_dir.join("before-renewal.pem");
    std::fs::write(
        &before_renewal,
        crate::util::pem_blocks(&std::fs::read_to_string(&after_chain).unwrap())[0].clone(),
    )
    .unwrap();
    let renewed = server
        .json(
            "POST",
            "/api/v1/issuers/default/signers/current/renew",
            &token,
            json!({"validityYears": 2}),
        )
        .expect(200, "renew")
        .json();
    assert_eq!(renewed["generation"], 1);
    assert_eq!(renewed["id"], rotated["id"]);
    let chain = server
        .get("/api/v1/issuers/default/signers/current/chain", &token)
        .expect(200, "renewed chain")
        .json();
    let renewed_chain = after_dir.join("renewed-chain.pem");
    std::fs::write(
        &renewed_chain,
        chain["chain"].as_array().unwrap().concat_pems(),
    )
    .unwrap();
    let renewed_cert = after_dir.join("renewed.pem");
    std::fs::write(&renewed_cert, chain["chain"][0].as_str().unwrap()).unwrap();
    assert_eq!(public_key(&renewed_cert), public_key(&before_renewal));
    assert_ne!(
        std::fs::read(&renewed_cert).unwrap(),
        std::fs::read(&before_renewal).unwrap()
    );
    assert!(
        verify(&renewed_chain, &after_leaf).0,
        "{}",
        verify(&renewed_chain, &after_leaf).1
    );
    let again = start_batch(
        &server,
        &token,
        ecc_authority,
        "again",
        "02:00:00:03:00:00",
        1,
    );
    let (again_dir, again_names) = issued(&server, &token, again, "again");
    assert_eq!(
        std::fs::read_to_string(again_dir.join("chain.pem")).unwrap(),
        std::fs::read_to_string(&renewed_chain).unwrap(),
        "batches after the renewal carry the renewed certificate"
    );
    assert!(verify(&renewed_chain, &first_leaf(&again_dir, &again_names)).0);

    // A rotation by another process (the CLI) while the server runs: the very next batch is
    // signed by the new signer, without waiting for the server's next look at the store.
    let rotated_by_cli = server.cli(&["ca", "rotate"]);
    assert!(
        rotated_by_cli.contains("now signs with"),
        "{rotated_by_cli}"
    );
    let third = start_batch(
        &server,
        &token,
        ecc_authority,
        "third",
        "02:00:00:04:00:00",
        1,
    );
    let (third_dir, third_names) = issued(&server, &token, third, "third");
    let third_leaf = first_leaf(&third_dir, &third_names);
    assert!(
        issuer_of(&third_leaf).contains("Issuing CA 3"),
        "{}",
        issuer_of(&third_leaf)
    );
    assert!(verify(&third_dir.join("chain.pem"), &third_leaf).0);

    // Deletion is refused while certificates are valid, and for the current signer.
    let old_id = old["info"]["id"].as_str().unwrap();
    let refused = server
        .call(
            "DELETE",
            &format!("/api/v1/issuers/default/signers/{old_id}"),
            Some(&token),
            Body::Empty,
            &[],
        )
        .expect_error(409, "delete a signer with valid certificates");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("still valid"),
        "{refused}"
    );
    server
        .call(
            "DELETE",
            "/api/v1/issuers/default/signers/current",
            Some(&token),
            Body::Empty,
            &[],
        )
        .expect_error(409, "delete the current signer");
    server
        .get("/api/v1/issuers/nobody/signers/current", &token)
        .expect_error(404, "an issuer that does not exist");

    // Only ADMIN administers signers.
    server.add_bob(&f);
    let (bob, _) = server.login("bob", BOB_PASSWORD);
    server
        .get("/api/v1/issuers", &bob)
        .expect_error(403, "a USER lists issuers");
    server
        .json("POST", "/api/v1/issuers/default/signers", &bob, json!({}))
        .expect_error(403, "a USER rotates");

    // Every change is in the signers' audit log with its actor.
    let events = server
        .get(
            &format!("/api/v1/issuers/default/signers/{old_id}/events"),
            &token,
        )
        .expect(200, "events")
        .json();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["CREATED", "ACTIVATED", "RETIRED"], "{events}");
    assert_eq!(events[2]["actor"], "user 1");
    let current_events = server
        .get(
            &format!(
                "/api/v1/issuers/default/signers/{}/events",
                rotated["id"].as_str().unwrap()
            ),
            &token,
        )
        .expect(200, "events")
        .json();
    assert!(
        current_events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "RENEWED"),
        "{current_events}"
    );

    // The paging of seed 004.
    let page = server
        .get("/api/v1/issuers/default/signers?page=1&page_size=5", &token)
        .expect(200, "list")
        .json();
    assert_eq!(page.as_array().unwrap().len(), 3);
    let retired_only = server
        .get("/api/v1/issuers/default/signers?state=RETIRED", &token)
        .expect(200, "list RETIRED")
        .json();
    assert_eq!(retired_only.as_array().unwrap().len(), 2, "{retired_only}");
    // Seed 002's filter expressions, as parameters, never as SQL.
    let encode = |filter: &str| filter.replace(' ', "%20").replace('\'', "%27");
    let filtered = server
        .get(
            &format!(
                "/api/v1/issuers/default/signers?filter={}",
                encode("state eq 'RETIRED' and generation eq 1")
            ),
            &token,
        )
        .expect(200, "filter")
        .json();
    assert_eq!(filtered.as_array().unwrap().len(), 1, "{filtered}");
    assert_eq!(filtered[0]["id"], rotated["id"]);
    let by_name = server
        .get(
            &format!(
                "/api/v1/issuers/default/signers?filter={}",
                encode("endswith(name, 'CA 3') or createdAt lt '2000-01-01T00:00:00Z'")
            ),
            &token,
        )
        .expect(200, "filter by name")
        .json();
    assert_eq!(by_name.as_array().unwrap().len(), 1, "{by_name}");
    let injected = server
        .get(
            &format!(
                "/api/v1/issuers/default/signers?filter={}",
                encode("name eq 'x'' OR 1=1 --'")
            ),
            &token,
        )
        .expect(200, "an injection attempt is a string")
        .json();
    assert_eq!(injected.as_array().unwrap().len(), 0, "{injected}");
    let malformed = server
        .get(
            &format!(
                "/api/v1/issuers/default/signers?filter={}",
                encode("state eq 'RETIRED' or; DROP TABLE signers")
            ),
            &token,
        )
        .expect_error(400, "a malformed filter");
    assert!(
        malformed["error_description"]
            .as_str()
            .unwrap()
            .contains("position 22"),
        "{malformed}"
    );
    server
        .get("/api/v1/issuers/default/signers?page_size=4", &token)
        .expect_error(400, "page_size below 5");
    server.assert_documented(&[
        "/api/v1/issuers",
        "/api/v1/issuers/{issuer}/signers",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}/renew",
        "/api/v1/issuers/{issuer}/signers/{signerSpec}/certificate",
    ]);
}

#[test]
fn a_new_issuer_over_http_and_an_external_root_signing_a_rotation() {
    let f = fixture!();
    // The maker's CA, made elsewhere: its root key never enters certmill's data directory.
    let elsewhere = fixture!();
    elsewhere.certmill_ok(&["ca", "init", "--organization", "Acme Devices"]);
    let made = elsewhere.data().join("ca");
    f.certmill_ok(&[
        "ca",
        "import",
        "--name",
        "acme",
        "--cert",
        made.join("issuing.crt").to_str().unwrap(),
        "--key",
        made.join("issuing.key").to_str().unwrap(),
        "--chain",
        made.join("root.crt").to_str().unwrap(),
    ]);
    profile_for_issuer(&f, "ecc-device", "Acme Device", 61, "acme");
    // A profile whose issuer does not exist yet: refused until the issuer is created.
    profile_for_issuer(&f, "ecc-device", "Line B Device", 62, "line-b");
    let server = Server::start(&f, &[]);
    let token = server.admin();

    let line_b = profile_where(&server, &token, "issuer", "line-b")["profileId"]
        .as_u64()
        .expect("profileId");
    let allowed = server
        .get("/api/v1/authorities/allowed", &token)
        .expect(200, "authorities")
        .json();
    assert!(
        !allowed
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["profileId"] == line_b),
        "no authority before the issuer exists: {allowed}"
    );
    let created = server
        .json(
            "POST",
            "/api/v1/issuers/line-b/signers",
            &token,
            json!({"organization": "Line B", "name": "Line B"}),
        )
        .expect(201, "a new issuer over HTTP")
        .json();
    assert_eq!(created["state"], "ACTIVE");
    assert_eq!(created["name"], "Line B Issuing CA 1");
    assert_eq!(created["rootLocal"], true);
    let authority = server.authority(&token, line_b);
    let batch = start_batch(&server, &token, authority, "line-b", "02:00:00:08:00:00", 1);
    let (dir, names) = issued(&server, &token, batch, "line-b");
    let leaf = first_leaf(&dir, &names);
    assert!(
        issuer_of(&leaf).contains("Line B Issuing CA 1"),
        "{}",
        issuer_of(&leaf)
    );
    assert!(verify(&dir.join("chain.pem"), &leaf).0);

    let pending = server
        .json(
            "POST",
            "/api/v1/issuers/acme/signers",
            &token,
            json!({"name": "Acme Issuing CA 2"}),
        )
        .expect(201, "rotate with an external root")
        .json();
    assert_eq!(pending["state"], "PENDING");
    assert_eq!(pending["certificateStatus"], "REQUESTED");
    let id = pending["id"].as_str().unwrap().to_owned();
    let csr = server
        .get(&format!("/api/v1/issuers/acme/signers/{id}/csr"), &token)
        .expect(200, "csr")
        .text();
    assert_eq!(Some(csr.as_str()), pending["csr"].as_str());
    let csr_file = f.write("acme.csr", &csr);
    let subject = openssl(&[
        "req",
        "-in",
        csr_file.to_str().unwrap(),
        "-noout",
        "-verify",
        "-subject",
    ]);
    assert!(
        subject.contains("CN = Acme Issuing CA 2") && subject.contains("O = Acme Devices"),
        "{subject}"
    );
    // Until the certificate comes back, the first signer stays current.
    server
        .get(&format!("/api/v1/issuers/acme/signers/{id}/chain"), &token)
        .expect_error(409, "chain of a signer without certificate");
    let current = server
        .get("/api/v1/issuers/acme/signers/current", &token)
        .expect(200, "current")
        .json();
    assert_ne!(current["info"]["id"], json!(id));

    let ext = f.write(
        "ca.ext",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );
    let acme_2 = f.path("acme-2.pem");
    openssl(&[
        "x509",
        "-req",
        "-in",
        csr_file.to_str().unwrap(),
        "-CA",
        made.join("root.crt").to_str().unwrap(),
        "-CAkey",
        made.join("root.key").to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "400",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        acme_2.to_str().unwrap(),
    ]);
    let body = format!(
        "{}{}",
        std::fs::read_to_string(&acme_2).unwrap(),
        std::fs::read_to_string(made.join("root.crt")).unwrap()
    );
    server
        .call(
            "PUT",
            &format!("/api/v1/issuers/acme/signers/{id}/certificate"),
            Some(&token),
            Body::Raw(b"not a certificate", "text/plain"),
            &[],
        )
        .expect_error(400, "a body without a certificate");
    let active = server
        .call(
            "PUT",
            &format!("/api/v1/issuers/acme/signers/{id}/certificate"),
            Some(&token),
            Body::Raw(body.as_bytes(), "text/plain"),
            &[],
        )
        .expect(200, "install")
        .json();
    assert_eq!(active["state"], "ACTIVE");
    assert_eq!(active["certificateStatus"], "ISSUED");

    // The next batch of the Acme profile is signed by the new signer and chains to the root.
    let acme_id = profile_where(&server, &token, "issuer", "acme")["profileId"]
        .as_u64()
        .expect("profileId");
    let authority = server.authority(&token, acme_id);
    let batch = start_batch(&server, &token, authority, "acme", "02:00:00:09:00:00", 2);
    let (dir, names) = issued(&server, &token, batch, "acme");
    let leaf = first_leaf(&dir, &names);
    assert!(
        issuer_of(&leaf).contains("Acme Issuing CA 2"),
        "{}",
        issuer_of(&leaf)
    );
    let (ok, words) = verify(&dir.join("chain.pem"), &leaf);
    assert!(ok, "{words}");
    let good = ocsp(&server, &dir.join("chain.pem"), &leaf);
    assert!(
        good.contains(": good") && good.contains("Response verify OK"),
        "{good}"
    );
}

/// Joins the PEM strings of a JSON array.
trait ConcatPems {
    fn concat_pems(&self) -> String;
}

impl ConcatPems for Vec<Value> {
    fn concat_pems(&self) -> String {
        self.iter()
            .map(|v| v.as_str().unwrap_or_default())
            .collect()
    }
}
