use super::*;

fn compile(json: &str) -> Result<Profile, ProfileError> {
    Profile::from_json(json, "test", &CompileOptions::default())
}

fn problems(json: &str) -> Vec<Problem> {
    match compile(json) {
        Err(ProfileError::Invalid(p)) => p,
        other => panic!("expected compile problems, got {other:?}"),
    }
}

fn ecc_device() -> serde_json::Value {
    serde_json::from_str(SHIPPED[0].1).unwrap()
}

fn with(mut value: serde_json::Value, pointer: &str, new: serde_json::Value) -> String {
    *value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer}")) = new;
    value.to_string()
}

#[test]
fn the_seed_config_compiles_exactly_as_written() {
    let seed = include_str!("seed-ecc-device.json");
    let profile = compile(seed).unwrap();
    assert_eq!(profile.key_algorithm(), KeyAlgorithm::EcP256);
    assert_eq!(
        profile.signature_algorithm(),
        SignatureAlgorithm::EcdsaWithSha256
    );
    assert_eq!(profile.serial_length, 16);
    assert!(profile.allows_server_keys());
    let order: Vec<&str> = profile.subject.iter().map(|a| a.attribute.name).collect();
    assert_eq!(
        order,
        [
            "countryName",
            "stateOrProvinceName",
            "localityName",
            "organizationName",
            "organizationalUnitName",
            "commonName"
        ]
    );
    let (names, critical) = profile
        .extensions
        .subject_alternative_name
        .as_ref()
        .unwrap();
    assert!(!critical);
    assert_eq!(names.len(), 1);
    assert_eq!(
        names[0].kind,
        GeneralNameKind::OtherName {
            oid: format!("{CERTMILL_ARC}.1.1"),
            oid_der: crate::asn1::oid_big(&format!("{CERTMILL_ARC}.1.1")).unwrap()
        }
    );
    let crl = profile.crl().unwrap();
    assert_eq!(
        crl.validity_period,
        Some(std::time::Duration::from_secs(4 * 86_400))
    );
    assert_eq!(
        crl.issuance_frequency,
        Some(std::time::Duration::from_secs(12 * 3600))
    );
    // The seed's own URLs are kept when the config says so.
    assert_eq!(
        profile.extensions.ocsp_urls,
        ["http://ocsp.demo.iot.comodoca.com"]
    );
}

#[test]
fn every_shipped_profile_compiles_and_points_at_the_base_url() {
    let options = CompileOptions {
        base_url: "http://ca.example.test:9000/".into(),
    };
    for (name, json) in SHIPPED {
        let profile =
            Profile::from_json(json, name, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            profile.extensions.ocsp_urls,
            ["http://ca.example.test:9000/ocsp"],
            "{name}"
        );
        assert_eq!(
            profile.crl().unwrap().urls,
            ["http://ca.example.test:9000/crl/{issuerKeyId}.crl"],
            "{name}"
        );
        assert!(profile.id().is_some(), "{name}");
    }
}

#[test]
fn parameters_have_the_seed_shape() {
    let profile = compile(SHIPPED[0].1).unwrap();
    let parameters = profile.parameters();
    let years = parameters.iter().find(|p| p.name == "years").unwrap();
    assert_eq!(years.input_type, "validityPeriod");
    assert!(!years.required);
    assert_eq!(years.validation_pattern.as_deref(), Some("^(1|2|3){1}$"));
    assert_eq!(
        years.message.as_deref(),
        Some("Valid integer values: 1,2,3")
    );
    assert_eq!(
        years.title.as_deref(),
        Some("Certificate validity period (in years; default = 1 year)")
    );
    assert_eq!(years.scopes, ["REQUEST", "BATCH"]);
    assert!(years.dynamic);
    let json = serde_json::to_value(years).unwrap();
    for key in [
        "name",
        "inputType",
        "required",
        "placeholder",
        "validationPattern",
        "message",
        "value",
        "title",
        "scopes",
        "dynamic",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let mac = parameters.iter().find(|p| p.name == "macAddress").unwrap();
    assert!(mac.required);
    assert_eq!(mac.scopes, ["REQUEST", "CSR"]);
    let password = parameters
        .iter()
        .find(|p| p.name == "pkcs12Password")
        .unwrap();
    assert_eq!(password.scopes, ["BATCH"]);
    assert!(!password.dynamic);
}

#[test]
fn csv_columns_follow_the_sources() {
    let profile = compile(SHIPPED[0].1).unwrap();
    let columns = profile.csv_columns();
    let find = |n: &str| columns.iter().find(|c| c.name == n).unwrap().clone();
    assert!(find("macAddress").required);
    assert_eq!(
        find("deviceClass")
            .required_unless_batch_parameter
            .as_deref(),
        Some("deviceClass")
    );
    assert!(!find("years").required);
    assert!(!find("additionalInformation").required);
    assert_eq!(columns.len(), 4);
}

#[test]
fn resolution_takes_the_first_source_with_a_value() {
    let profile = compile(SHIPPED[0].1).unwrap();
    let mut batch = BTreeMap::new();
    batch.insert("years".to_owned(), "2".to_owned());
    let mut request = BTreeMap::new();
    let empty = BTreeMap::new();
    let inputs = |r: &BTreeMap<String, String>| -> u32 {
        profile
            .resolve_years(&Inputs {
                request: Some(r),
                batch: &batch,
                profile: &empty,
                csr: None,
            })
            .unwrap()
    };
    assert_eq!(inputs(&request), 2, "batch value when the row has none");
    request.insert("years".to_owned(), "3".to_owned());
    assert_eq!(inputs(&request), 3, "row value first");
    request.insert("years".to_owned(), String::new());
    assert_eq!(inputs(&request), 2, "an empty cell is no value");
    let none = BTreeMap::new();
    let years = profile
        .resolve_years(&Inputs {
            request: Some(&none),
            batch: &none,
            profile: &empty,
            csr: None,
        })
        .unwrap();
    assert_eq!(years, 1, "Validity.default.years");
    request.insert("years".to_owned(), "4".to_owned());
    let err = profile
        .resolve_years(&Inputs {
            request: Some(&request),
            batch: &batch,
            profile: &empty,
            csr: None,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("Valid integer values: 1,2,3"),
        "{err}"
    );
}

#[test]
fn a_missing_required_value_names_the_field() {
    let profile = compile(SHIPPED[0].1).unwrap();
    let empty = BTreeMap::new();
    let cn = &profile
        .subject
        .iter()
        .find(|a| a.attribute.name == "commonName")
        .unwrap()
        .field;
    let err = cn
        .resolve(&Inputs {
            request: Some(&empty),
            batch: &empty,
            profile: &empty,
            csr: None,
        })
        .unwrap_err();
    assert!(
        matches!(&err, ValueError::Missing { field, .. } if field == "commonName"),
        "{err}"
    );
    assert!(err.to_string().contains("column `macAddress`"), "{err}");
}

#[test]
fn unknown_keys_and_wrong_types_give_the_json_path() {
    let json = with(
        ecc_device(),
        "/Extensions/KeyUsage",
        serde_json::json!({"bits": ["digitalSignature"], "critcal": true}),
    );
    match compile(&json) {
        Err(ProfileError::Json { path, message, .. }) => {
            assert_eq!(path, "/Extensions/KeyUsage/critcal");
            assert!(message.contains("critcal"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let json = with(
        ecc_device(),
        "/SerialNumber/length",
        serde_json::json!("sixteen"),
    );
    match compile(&json) {
        Err(ProfileError::Json { path, .. }) => assert_eq!(path, "/SerialNumber/length"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn contradictions_are_compile_errors_with_paths() {
    let cases = [
        (
            "/SerialNumber/length",
            serde_json::json!(8),
            "/SerialNumber/length",
        ),
        (
            "/SerialNumber/length",
            serde_json::json!(21),
            "/SerialNumber/length",
        ),
        (
            "/SignatureAlgorithm/name",
            serde_json::json!("md5WithRSAEncryption"),
            "/SignatureAlgorithm/name",
        ),
        (
            "/SubjectPublicKeyInfo/syntax",
            serde_json::json!("EC:P-521"),
            "/SubjectPublicKeyInfo/syntax",
        ),
        (
            "/Extensions/KeyUsage/bits",
            serde_json::json!(["digitalSignature", "keyEncipherment"]),
            "/Extensions/KeyUsage/bits",
        ),
        (
            "/Extensions/KeyUsage/bits",
            serde_json::json!(["digitalSignature", "keyCertSign"]),
            "/Extensions/KeyUsage/bits",
        ),
        (
            "/Extensions/KeyUsage/bits/1",
            serde_json::json!("keyAgreemnt"),
            "/Extensions/KeyUsage/bits/1",
        ),
        (
            "/Extensions/AuthorityInfoAccess/critical",
            serde_json::json!(true),
            "/Extensions/AuthorityInfoAccess/critical",
        ),
        (
            "/Extensions/AuthorityKeyIdentifier/critical",
            serde_json::json!(true),
            "/Extensions/AuthorityKeyIdentifier/critical",
        ),
        (
            "/Extensions/ExtendedKeyUsage/purposes/0",
            serde_json::json!("id-kp-teleport"),
            "/Extensions/ExtendedKeyUsage/purposes/0",
        ),
        (
            "/Extensions/SubjectAlternativeName/generalNames/0/type",
            serde_json::json!("otherName:NoSuchAlias"),
            "/Extensions/SubjectAlternativeName/generalNames/0/type",
        ),
        (
            "/Subject/attributes/0/type",
            serde_json::json!("favouriteColour"),
            "/Subject/attributes/0/type",
        ),
        (
            "/Subject/attributes/0/default",
            serde_json::json!("GBR"),
            "/Subject/attributes/0/default",
        ),
        (
            "/Subject/attributes/5/syntax",
            serde_json::json!("Integer:1,x"),
            "/Subject/attributes/5/syntax",
        ),
        (
            "/Subject/attributes/5/source/1",
            serde_json::json!("Request.mac-address"),
            "/Subject/attributes/5/source/1",
        ),
        (
            "/Validity/period/syntax",
            serde_json::json!("Float"),
            "/Validity/period/syntax",
        ),
        (
            "/Extensions/CRLDistributionPoints/validityPeriod",
            serde_json::json!("4 fortnights"),
            "/Extensions/CRLDistributionPoints/validityPeriod",
        ),
        (
            "/Extensions/CRLDistributionPoints/distributionPointURLs/0",
            serde_json::json!("ftp://x/crl"),
            "/Extensions/CRLDistributionPoints/distributionPointURLs/0",
        ),
        ("/Version", serde_json::json!("v1"), "/Version"),
    ];
    for (pointer, value, expected_path) in cases {
        let found = problems(&with(ecc_device(), pointer, value.clone()));
        assert!(
            found.iter().any(|p| p.path == expected_path),
            "{pointer} = {value}: expected a problem at {expected_path}, got {found:?}"
        );
    }
}

#[test]
fn rsa_key_usage_rules() {
    let mut rsa: serde_json::Value = serde_json::from_str(SHIPPED[2].1).unwrap();
    assert!(compile(&rsa.to_string()).is_ok());
    *rsa.pointer_mut("/Extensions/KeyUsage/bits").unwrap() =
        serde_json::json!(["digitalSignature", "keyAgreement"]);
    assert!(problems(&rsa.to_string())
        .iter()
        .any(|p| p.message.contains("RSA")));
}

#[test]
fn explicit_other_name_oids_work() {
    let json = with(
        ecc_device(),
        "/Extensions/SubjectAlternativeName/generalNames/0/type",
        serde_json::json!("otherName:1.3.6.1.4.1.99999.1"),
    );
    let profile = compile(&json).unwrap();
    let (names, _) = profile
        .extensions
        .subject_alternative_name
        .as_ref()
        .unwrap();
    assert!(
        matches!(&names[0].kind, GeneralNameKind::OtherName { oid, .. } if oid == "1.3.6.1.4.1.99999.1")
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let mut value = ecc_device();
    *value.pointer_mut("/SerialNumber/length").unwrap() = serde_json::json!(4);
    *value.pointer_mut("/Version").unwrap() = serde_json::json!("v2");
    assert!(problems(&value.to_string()).len() >= 2);
}

#[test]
fn load_finds_shipped_profiles_by_name() {
    let profile = Profile::load("ecc-device", &CompileOptions::default()).unwrap();
    assert_eq!(profile.name(), "ECC Device Certificate");
    let profile = Profile::load("profiles/rsa-server.json", &CompileOptions::default()).unwrap();
    assert_eq!(profile.name(), "RSA Server Certificate");
    assert!(matches!(
        Profile::load("nope", &CompileOptions::default()),
        Err(ProfileError::Io { .. })
    ));
}
