use super::*;
use crate::store::StoreError;

/// A data directory with a store.
struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    Fixture { dir, store }
}

impl Fixture {
    fn data(&self) -> &Path {
        self.dir.path()
    }

    fn init(&self, issuer: &str, algorithm: KeyAlgorithm) -> SignerRow {
        let options = CaInitOptions {
            algorithm,
            ..CaInitOptions::default()
        };
        init_issuer(self.data(), &self.store, issuer, &options, "test")
            .expect("init issuer")
            .0
    }

    fn rotate(&self, issuer: &str) -> LifecycleOutcome {
        rotate(
            self.data(),
            &self.store,
            issuer,
            &RotateOptions::default(),
            None,
            "test",
        )
        .expect("rotate")
    }

    fn load(&self, row: &SignerRow) -> IssuingCa {
        IssuingCa::load_from(&self.data().join(&row.key_dir), None).expect("load signer")
    }
}

fn openssl(args: &[&str]) -> std::process::Output {
    std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
}

/// `openssl verify` of `leaf` (PEM file) with `chain.pem` of `dir` split into root and
/// intermediates: true when it verifies.
fn verifies(dir: &Path, leaf: &Path) -> bool {
    let chain = std::fs::read_to_string(dir.join("chain.pem")).expect("chain.pem");
    let end = "-----END CERTIFICATE-----";
    let blocks: Vec<String> = chain
        .split_inclusive(end)
        .filter(|b| b.contains("BEGIN"))
        .map(|b| format!("{}\n", b.trim()))
        .collect();
    let root = dir.join("verify-root.pem");
    let untrusted = dir.join("verify-untrusted.pem");
    std::fs::write(&root, blocks.last().expect("root")).unwrap();
    std::fs::write(&untrusted, blocks[..blocks.len() - 1].concat()).unwrap();
    let out = openssl(&[
        "verify",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        untrusted.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    out.status.success()
}

/// The root in `root_dir` (`root.crt`, `root.key`) certifies `csr` with openssl, with these
/// extensions (an openssl extfile), for 30 days; returns the certificate file (next to the CSR).
fn sign_as_root(csr: &Path, root_dir: &Path, extensions: &str) -> PathBuf {
    let ext = csr.with_extension("ext.cnf");
    std::fs::write(&ext, extensions).unwrap();
    let issued = csr.with_extension("issued.pem");
    let signed = openssl(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        root_dir.join("root.crt").to_str().unwrap(),
        "-CAkey",
        root_dir.join("root.key").to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        issued.to_str().unwrap(),
    ]);
    assert!(signed.status.success(), "{signed:?}");
    issued
}

fn write_pem(path: &Path, der: &[u8]) {
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap();
    std::fs::write(path, pem).unwrap();
}

#[test]
fn ulids_have_seed_004_format_and_differ() {
    let a = new_ulid().unwrap();
    let b = new_ulid().unwrap();
    for id in [&a, &b] {
        assert_eq!(id.len(), 26);
        assert!(matches!(id.as_bytes()[0], b'0'..=b'7'), "{id}");
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !b"ILOU".contains(&c))),
            "{id}"
        );
    }
    assert_ne!(a, b);
    // The first 10 characters are the time: two ids a millisecond apart sort in time order.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let c = new_ulid().unwrap();
    assert!(c[..10] > a[..10], "{a} then {c}");
}

#[test]
fn issuer_names_are_checked() {
    for good in ["default", "rsa-line", "acme.2", "a", "x_1"] {
        assert!(check_issuer_name(good).is_ok(), "{good}");
    }
    for bad in ["", "-x", "Upper", "a/b", "..", "a b", &"x".repeat(65)] {
        assert!(
            matches!(check_issuer_name(bad), Err(SignerError::InvalidName(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn rotation_names_count_on() {
    assert_eq!(next_name("acme Issuing CA 1", 1), "acme Issuing CA 2");
    assert_eq!(next_name("acme Issuing CA 7", 3), "acme Issuing CA 4");
    assert_eq!(next_name("Line signer", 1), "Line signer 2");
}

#[test]
fn a_ca_from_before_signers_is_adopted_as_the_default_issuer() {
    let f = fixture();
    let ca = IssuingCa::init(f.data(), &CaInitOptions::default()).unwrap();
    let signers = Signers::load(f.data(), &f.store, None).unwrap();
    let current = signers.current(DEFAULT_ISSUER).expect("adopted");
    assert_eq!(current.ca.certificate_der(), ca.certificate_der());
    assert_eq!(current.row.key_dir, "ca");
    assert_eq!(current.row.root_dir.as_deref(), Some("ca"));
    assert_eq!(current.row.state, SignerState::Active);
    // Adopting twice does nothing more.
    assert!(adopt_legacy(f.data(), &f.store, None).unwrap().is_none());
    assert_eq!(f.store.signers(None).unwrap().len(), 1);
    // The same certificate registered earlier (by a batch) is the same issuer id.
    assert_eq!(
        f.store
            .register_issuer(ca.certificate_der(), "again")
            .unwrap(),
        current.issuer()
    );
}

#[test]
fn rotation_retires_the_previous_signer_and_moves_the_authorities() {
    let f = fixture();
    let first = f.init(DEFAULT_ISSUER, KeyAlgorithm::EcP256);
    let org = f.store.default_organization().unwrap();
    let authority = f
        .store
        .create_authority(org, "ECC Device Certificate", first.issuer.unwrap(), 10)
        .unwrap();

    let second = f.rotate(DEFAULT_ISSUER);
    assert!(second.csr.is_none(), "a local root certifies at once");
    let second = second.signer;
    assert_eq!(second.state, SignerState::Active);
    assert_eq!(second.name, "certmill development Issuing CA 2");
    assert_eq!(second.root_dir.as_deref(), Some("ca"));
    let first_now = f.store.signer(&first.id).unwrap().unwrap();
    assert_eq!(first_now.state, SignerState::Retired);
    assert_eq!(
        f.store.current_signer(DEFAULT_ISSUER).unwrap().unwrap().id,
        second.id
    );
    assert_eq!(
        f.store.authority(authority).unwrap().issuer,
        second.issuer.unwrap()
    );

    // A new key, certified by the same root, with the old subject's organization.
    let old = f.load(&first);
    let new = f.load(&second);
    assert_ne!(old.public_key_bits(), new.public_key_bits());
    assert_eq!(old.chain_der().last(), new.chain_der().last());
    let leaf = f.data().join("new.pem");
    write_pem(&leaf, new.certificate_der());
    assert!(verifies(&f.data().join(&second.key_dir), &leaf));
    let subject = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-subject"]);
    let subject = String::from_utf8_lossy(&subject.stdout).into_owned();
    assert!(
        subject.contains("O = certmill development")
            && subject.contains("CN = certmill development Issuing CA 2"),
        "{subject}"
    );

    // Both are served; the current one is the new one.
    let signers = Signers::load(f.data(), &f.store, None).unwrap();
    assert_eq!(signers.all().len(), 2);
    assert_eq!(signers.current(DEFAULT_ISSUER).unwrap().row.id, second.id);
    assert!(signers.by_issuer(first.issuer.unwrap()).is_some());

    let kinds: Vec<String> = f
        .store
        .signer_events(&first.id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["CREATED", "ACTIVATED", "RETIRED"]);
}

#[test]
fn renewal_keeps_the_key_the_subject_and_the_registration() {
    let f = fixture();
    let first = f.init("rsa-line", KeyAlgorithm::Rsa2048);
    assert_eq!(first.key_dir, "issuers/rsa-line");
    let before = f.load(&first);
    let epoch = f.store.signers_epoch().unwrap();
    let renewed = renew(f.data(), &f.store, &first, Some(3), None, "test").unwrap();
    assert!(renewed.csr.is_none());
    let row = renewed.signer;
    assert_eq!(row.generation, 1);
    assert_eq!(row.issuer, first.issuer);
    assert!(f.store.signers_epoch().unwrap() > epoch);
    let after = f.load(&row);
    assert_eq!(after.public_key_bits(), before.public_key_bits());
    assert_eq!(after.subject_der(), before.subject_der());
    assert_eq!(
        after.subject_key_identifier(),
        before.subject_key_identifier()
    );
    assert_ne!(after.certificate_der(), before.certificate_der());
    // Three years, not the ten of the first certificate.
    assert!(after.not_after_unix() < before.not_after_unix());
    assert_eq!(row.not_after, Some(after.not_after_unix()));
    // The registration now holds the new certificate: registering it finds the same id.
    assert_eq!(
        f.store
            .register_issuer(after.certificate_der(), "x")
            .unwrap(),
        first.issuer.unwrap()
    );
    // A certificate signed under the old one still verifies with the renewed chain.
    let old_leaf = f.data().join("old-issuing.pem");
    write_pem(&old_leaf, before.certificate_der());
    assert!(verifies(&f.data().join(&row.key_dir), &old_leaf));
}

#[test]
fn deleting_is_refused_for_the_current_signer_and_allowed_for_an_unused_retired_one() {
    let f = fixture();
    let first = f.init(DEFAULT_ISSUER, KeyAlgorithm::EcP256);
    let refused = delete(f.data(), &f.store, &first, "test").unwrap_err();
    assert!(
        matches!(
            refused,
            SignerError::Store(StoreError::SignerState {
                state: SignerState::Active,
                ..
            })
        ),
        "{refused}"
    );
    let second = f.rotate(DEFAULT_ISSUER).signer;
    let retired = f.store.signer(&first.id).unwrap().unwrap();
    let deleted = delete(f.data(), &f.store, &retired, "test").unwrap();
    assert_eq!(deleted.state, SignerState::Deleted);
    // Its key and certificate are gone; the root (which signs the current signer) stays.
    assert!(!f.data().join("ca/issuing.key").exists());
    assert!(!f.data().join("ca/issuing.crt").exists());
    assert!(f.data().join("ca/root.key").exists());
    assert!(f
        .store
        .signers(None)
        .unwrap()
        .iter()
        .all(|s| s.id != first.id));
    assert!(matches!(
        resolve(&f.store, DEFAULT_ISSUER, &first.id),
        Err(SignerError::NotFound { .. })
    ));
    // The issuer still rotates from its root after its first signer is gone.
    let third = f.rotate(DEFAULT_ISSUER).signer;
    assert_eq!(
        f.store.signer(&second.id).unwrap().unwrap().state,
        SignerState::Retired
    );
    assert_eq!(third.state, SignerState::Active);
}

#[test]
fn a_revoked_signer_is_not_served_and_cannot_be_renewed() {
    let f = fixture();
    let first = f.init(DEFAULT_ISSUER, KeyAlgorithm::EcP256);
    let revoked = revoke(&f.store, &first, "test").unwrap();
    assert_eq!(revoked.state, SignerState::Revoked);
    let signers = Signers::load(f.data(), &f.store, None).unwrap();
    assert!(signers.all().is_empty());
    assert!(matches!(
        signers.require_current(DEFAULT_ISSUER),
        Err(SignerError::NoCurrentSigner(_))
    ));
    assert!(renew(f.data(), &f.store, &revoked, None, None, "test").is_err());
    assert!(matches!(
        revoke(&f.store, &revoked, "test"),
        Err(SignerError::Store(StoreError::SignerState { .. }))
    ));
}

#[test]
fn issuers_are_separate_and_named_once() {
    let f = fixture();
    let ecc = f.init(DEFAULT_ISSUER, KeyAlgorithm::EcP256);
    let rsa = f.init("rsa-line", KeyAlgorithm::Rsa2048);
    assert!(matches!(
        init_issuer(
            f.data(),
            &f.store,
            "rsa-line",
            &CaInitOptions::default(),
            "test"
        ),
        Err(SignerError::IssuerExists(_))
    ));
    let signers = Signers::load(f.data(), &f.store, None).unwrap();
    assert_eq!(signers.current("default").unwrap().row.id, ecc.id);
    assert_eq!(signers.current("RSA-LINE").unwrap().row.id, rsa.id);
    assert_eq!(
        signers.current("rsa-line").unwrap().ca.key_algorithm(),
        KeyAlgorithm::Rsa2048
    );
    // Rotating one issuer leaves the other alone.
    f.rotate("rsa-line");
    assert_eq!(
        f.store.current_signer("default").unwrap().unwrap().id,
        ecc.id
    );
    assert!(matches!(
        resolve(&f.store, "default", &rsa.id),
        Err(SignerError::NotFound { .. })
    ));
}

#[test]
fn an_external_root_gets_a_csr_and_its_certificate_activates_the_signer() {
    let f = fixture();
    // The maker's root and issuing CA, made elsewhere.
    let elsewhere = tempfile::tempdir().unwrap();
    IssuingCa::init(elsewhere.path(), &CaInitOptions::default()).unwrap();
    let made = elsewhere.path().join("ca");
    let first = import_issuer(
        f.data(),
        &f.store,
        "acme",
        Imported {
            cert: &made.join("issuing.crt"),
            key: ImportedKey::File(&made.join("issuing.key")),
            chain: Some(&made.join("root.crt")),
        },
        None,
        "test",
    )
    .unwrap()
    .0;
    assert_eq!(first.root_dir, None);

    let pending = f.rotate("acme");
    let csr = pending.csr.expect("a CSR for the external root");
    let signer = pending.signer;
    assert_eq!(signer.state, SignerState::Pending);
    assert!(signer.issuer.is_none());
    // The current signer stays until the certificate arrives.
    assert_eq!(
        f.store.current_signer("acme").unwrap().unwrap().id,
        first.id
    );
    assert_eq!(
        IssuingCa::pending_request(&f.data().join(&signer.key_dir)).unwrap(),
        csr
    );
    let csr_file = f.data().join("new.csr");
    std::fs::write(&csr_file, &csr).unwrap();
    let verified = openssl(&[
        "req",
        "-in",
        csr_file.to_str().unwrap(),
        "-noout",
        "-verify",
    ]);
    assert!(verified.status.success(), "{verified:?}");

    // The root signs it as a CA with openssl.
    let issued = sign_as_root(
        &csr_file,
        &made,
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );

    // A certificate for another key is refused and changes nothing.
    let wrong = std::fs::read_to_string(made.join("issuing.crt")).unwrap();
    assert!(install(f.data(), &f.store, &signer, &wrong, None, "test").is_err());
    assert_eq!(
        f.store.signer(&signer.id).unwrap().unwrap().state,
        SignerState::Pending
    );

    let with_chain = format!(
        "{}{}",
        std::fs::read_to_string(&issued).unwrap(),
        std::fs::read_to_string(made.join("root.crt")).unwrap()
    );
    let active = install(f.data(), &f.store, &signer, &with_chain, None, "test").unwrap();
    assert_eq!(active.state, SignerState::Active);
    assert_eq!(
        f.store.signer(&first.id).unwrap().unwrap().state,
        SignerState::Retired
    );
    assert!(!f.data().join(&active.key_dir).join("issuing.csr").exists());
    let loaded = Signers::load(f.data(), &f.store, None).unwrap();
    assert_eq!(loaded.current("acme").unwrap().row.id, active.id);
    assert_eq!(loaded.current("acme").unwrap().ca.chain_der().len(), 2);

    // Renewing with an external root hands out a CSR for the same key.
    let renewal = renew(f.data(), &f.store, &active, None, None, "test").unwrap();
    let again = renewal.csr.expect("renewal CSR");
    let key_of = |pem: &str| {
        let path = f.data().join("k.csr");
        std::fs::write(&path, pem).unwrap();
        openssl(&["req", "-in", path.to_str().unwrap(), "-noout", "-pubkey"]).stdout
    };
    assert_eq!(key_of(&again), key_of(&csr));
}

#[test]
fn a_new_issuer_for_an_external_root_starts_pending_with_a_csr() {
    let f = fixture();
    let options = CaInitOptions {
        organization: "Acme Devices".to_owned(),
        ..CaInitOptions::default()
    };
    let done = request_issuer(f.data(), &f.store, "acme", &options, "test").unwrap();
    let signer = done.signer;
    assert_eq!(signer.state, SignerState::Pending);
    assert_eq!(signer.name, "Acme Devices Issuing CA 1");
    assert_eq!(signer.root_dir, None);
    assert!(f.data().join("issuers/acme/issuing.key").exists());
    // Nothing signs for it yet, and it cannot be made twice.
    let signers = Signers::load(f.data(), &f.store, None).unwrap();
    assert!(signers.current("acme").is_none());
    assert!(matches!(
        request_issuer(f.data(), &f.store, "acme", &options, "test"),
        Err(SignerError::IssuerExists(_))
    ));
    let csr = f.data().join("acme.csr");
    std::fs::write(&csr, done.csr.expect("CSR")).unwrap();
    let subject = openssl(&["req", "-in", csr.to_str().unwrap(), "-noout", "-subject"]);
    let subject = String::from_utf8_lossy(&subject.stdout).into_owned();
    assert!(
        subject.contains("O = Acme Devices") && subject.contains("CN = Acme Devices Issuing CA 1"),
        "{subject}"
    );

    // The maker's root (made here with certmill for the test) signs it with openssl.
    let root = tempfile::tempdir().unwrap();
    IssuingCa::init(root.path(), &CaInitOptions::default()).unwrap();
    let root = root.path().join("ca");
    // Without subjectKeyIdentifier: certmill derives the key id itself (RFC 5280 method 1).
    let issued = sign_as_root(
        &csr,
        &root,
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    );
    let pem = format!(
        "{}{}",
        std::fs::read_to_string(&issued).unwrap(),
        std::fs::read_to_string(root.join("root.crt")).unwrap()
    );
    let active = install(f.data(), &f.store, &signer, &pem, None, "test").unwrap();
    assert_eq!(active.state, SignerState::Active);
    let signers = Signers::load(f.data(), &f.store, None).unwrap();
    let current = signers.current("acme").expect("current after install");
    assert_eq!(current.ca.chain_der().len(), 2);
    // A rotation of an issuer without a local root asks the root again.
    let next = f.rotate("acme");
    assert!(next.csr.is_some());
    assert_eq!(next.signer.state, SignerState::Pending);
}
