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
        ..CompileOptions::default()
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
        (
            "/Subject/attributes/5/source",
            serde_json::json!("System.Clock"),
            "/Subject/attributes/5/source",
        ),
        (
            "/Subject/attributes/5/source",
            serde_json::json!(["Request.macAddress", "KeypairQueue.der_spki"]),
            "/Subject/attributes/5/source/1",
        ),
        (
            "/SubjectPublicKeyInfo/source",
            serde_json::json!("Request.key"),
            "/SubjectPublicKeyInfo/source",
        ),
        (
            "/SubjectPublicKeyInfo/source",
            serde_json::json!(["KeypairQueue.der_spki", "CSR.Subject.commonName"]),
            "/SubjectPublicKeyInfo/source/1",
        ),
        (
            "/Subject/attributes",
            serde_json::json!([]),
            "/Subject/attributes",
        ),
        (
            "/Validity/default/years",
            serde_json::json!(101),
            "/Validity/default/years",
        ),
        (
            "/Validity/notBefore/source",
            serde_json::json!("Request.start"),
            "/Validity/notBefore/source",
        ),
        (
            "/Extensions/KeyUsage/bits",
            serde_json::json!([]),
            "/Extensions/KeyUsage/bits",
        ),
        (
            "/Extensions/KeyUsage/bits",
            serde_json::json!(["digitalSignature", "digitalSignature"]),
            "/Extensions/KeyUsage/bits/1",
        ),
        (
            "/Extensions/KeyUsage/bits",
            serde_json::json!(["digitalSignature", "encipherOnly"]),
            "/Extensions/KeyUsage/bits",
        ),
        (
            "/Extensions/ExtendedKeyUsage/purposes",
            serde_json::json!([]),
            "/Extensions/ExtendedKeyUsage/purposes",
        ),
        (
            "/Extensions/AuthorityInfoAccess/ocspURLs",
            serde_json::json!([]),
            "/Extensions/AuthorityInfoAccess",
        ),
        (
            "/Extensions/CRLDistributionPoints/issuanceFrequency",
            serde_json::json!("5 days"),
            "/Extensions/CRLDistributionPoints/issuanceFrequency",
        ),
        (
            "/Extensions/AuthorityKeyIdentifier/keyIdentifier/source",
            serde_json::json!("Request.keyId"),
            "/Extensions/AuthorityKeyIdentifier/keyIdentifier/source",
        ),
        (
            "/Extensions/SubjectAlternativeName/generalNames",
            serde_json::json!([]),
            "/Extensions/SubjectAlternativeName/generalNames",
        ),
        (
            "/Extensions/SubjectAlternativeName/generalNames/0/type",
            serde_json::json!("x400Address"),
            "/Extensions/SubjectAlternativeName/generalNames/0/type",
        ),
        (
            "/PKCS12/CertBag/default",
            serde_json::json!("everything"),
            "/PKCS12/CertBag/default",
        ),
        (
            "/PKCS12/Password/source",
            serde_json::json!(["Request.password"]),
            "/PKCS12/Password/source",
        ),
        (
            "/Issuer/source",
            serde_json::json!("Request.issuer"),
            "/Issuer/source",
        ),
        (
            "/SerialNumber/generator",
            serde_json::json!("counter"),
            "/SerialNumber/generator",
        ),
        (
            "/Subject/attributes/4/source",
            serde_json::json!(["Default"]),
            "/Subject/attributes/4/default",
        ),
        (
            "/Subject/attributes/4/source",
            serde_json::json!([]),
            "/Subject/attributes/4/source",
        ),
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

fn json_error(json: &str) -> (String, usize, usize, String) {
    match compile(json) {
        Err(ProfileError::Json {
            path,
            line,
            column,
            message,
        }) => (path, line, column, message),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

/// Pretty-printed, so that errors land on distinct lines.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

#[test]
fn an_oversized_profile_is_refused_before_parsing() {
    // Valid JSON padded with whitespace to exactly 300,000 bytes: the size alone refuses it.
    let json = SHIPPED[0].1;
    let padded = format!("{json}{}", " ".repeat(300_000 - json.len()));
    let err = compile(&padded).unwrap_err();
    assert!(
        matches!(
            err,
            ProfileError::TooLarge {
                bytes: 300_000,
                limit: 262_144
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "profile is 300000 bytes, over the limit of 262144"
    );
    // Garbage of that size is refused the same way: serde never sees it.
    let garbage = "{".repeat(300_000);
    assert!(matches!(
        compile(&garbage),
        Err(ProfileError::TooLarge { .. })
    ));
    // The limit is an option: a shipped profile under a 1 KiB limit is refused, and the padded
    // one compiles under a larger limit.
    let small = CompileOptions {
        max_bytes: 1024,
        ..CompileOptions::default()
    };
    assert!(matches!(
        Profile::from_json(json, "t", &small),
        Err(ProfileError::TooLarge { limit: 1024, .. })
    ));
    let large = CompileOptions {
        max_bytes: 512 * 1024,
        ..CompileOptions::default()
    };
    assert!(Profile::from_json(&padded, "t", &large).is_ok());
}

#[test]
fn deep_nesting_is_refused_with_its_path_line_and_column() {
    // 40 nested arrays where KeyUsage.bits should be: the root object, Extensions, KeyUsage
    // and 29 arrays make 32 levels; the 30th array crosses the limit.
    let deep = format!("{}\"digitalSignature\"{}", "[".repeat(40), "]".repeat(40));
    let json =
        pretty(&ecc_device()).replacen("\"bits\": [", &format!("\"bits\": {deep}, \"x\": ["), 1);
    let bits_line = json.lines().position(|l| l.contains("\"bits\"")).unwrap() + 1;
    let bits_column = json.lines().nth(bits_line - 1).unwrap().find('[').unwrap() + 1;
    match compile(&json) {
        Err(ProfileError::TooDeep {
            path,
            line,
            column,
            limit,
        }) => {
            assert_eq!(
                path,
                format!("/Extensions/KeyUsage/bits{}", "/0".repeat(29))
            );
            assert_eq!(limit, 32);
            assert_eq!(line, bits_line);
            assert_eq!(column, bits_column + 29);
        }
        other => panic!("{other:?}"),
    }
    let err = compile(&json).unwrap_err().to_string();
    assert!(
        err.starts_with("profile nesting deeper than 32 at /Extensions/KeyUsage/bits/0/0/"),
        "{err}"
    );
    // Under a limit of 64 the text reaches serde, which refuses the nested array as a key
    // usage name, at the first array element.
    let deep_ok = CompileOptions {
        max_depth: 64,
        ..CompileOptions::default()
    };
    match Profile::from_json(&json, "t", &deep_ok) {
        Err(ProfileError::Json { path, .. }) => assert_eq!(path, "/Extensions/KeyUsage/bits/0"),
        other => panic!("{other:?}"),
    }
    // Every shipped profile fits well inside the defaults.
    for (name, json) in SHIPPED {
        let tight = CompileOptions {
            max_depth: 6,
            max_bytes: 8 * 1024,
            ..CompileOptions::default()
        };
        Profile::from_json(json, name, &tight).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_huge_profile_file_is_refused_unread_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    // Sparse: 4 GiB that would take minutes and all the memory to read.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    match Profile::from_file(&path, &CompileOptions::default()) {
        Err(ProfileError::TooLarge { bytes, limit }) => {
            assert_eq!(bytes, 4 << 30);
            assert_eq!(limit, DEFAULT_MAX_PROFILE_BYTES);
        }
        other => panic!("{other:?}"),
    }
    // A file within the limit still loads, by path.
    let small = dir.path().join("small.json");
    std::fs::write(&small, SHIPPED[0].1).unwrap();
    let profile = Profile::load(small.to_str().unwrap(), &CompileOptions::default()).unwrap();
    assert_eq!(profile.name(), "ECC Device Certificate");
}

#[test]
fn a_profile_file_that_is_not_utf8_names_the_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.json");
    let mut bytes = b"{\n  \"Profile\": {\"name\": \"Caf".to_vec();
    bytes.push(0xe9); // é in Latin-1
    bytes.extend_from_slice(b"\"}\n}");
    std::fs::write(&path, bytes).unwrap();
    match Profile::from_file(&path, &CompileOptions::default()) {
        Err(ProfileError::Json {
            path,
            line,
            column,
            message,
        }) => {
            assert_eq!(path, "/");
            assert_eq!((line, column), (2, 27));
            assert!(message.contains("UTF-8"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// Found by the profile_json fuzz target: an error inside a key still being read gave the
/// path `/?`; the path now ends at the key's object.
#[test]
fn a_broken_key_is_reported_at_its_object() {
    let (path, line, _, message) = json_error("{\"KS\n");
    assert_eq!(path, "/");
    assert_eq!(line, 2);
    assert!(message.starts_with("control character"), "{message}");
    let (path, _, _, _) = json_error("{\"Subject\": {\"attr\u{1}");
    assert_eq!(path, "/Subject");
}

#[test]
fn serde_errors_name_the_path_inside_arrays_and_maps() {
    let base = ecc_device();

    // A wrong type inside an array element.
    let json = pretty(&{
        let mut v = base.clone();
        v["Subject"]["attributes"][4]["optional"] = serde_json::json!("yes");
        v
    });
    let (path, line, column, message) = json_error(&json);
    assert_eq!(path, "/Subject/attributes/4/optional");
    let expected_line = json
        .lines()
        .position(|l| l.contains("\"optional\": \"yes\""))
        .unwrap()
        + 1;
    assert_eq!(line, expected_line);
    assert!(column > 1);
    assert!(
        message.starts_with("invalid type: string \"yes\""),
        "{message}"
    );
    assert!(
        !message.contains(" at line "),
        "position only once: {message}"
    );

    // An unknown key inside an array element.
    let json = pretty(&{
        let mut v = base.clone();
        v["Extensions"]["SubjectAlternativeName"]["generalNames"][0]["colour"] =
            serde_json::json!("blue");
        v
    });
    assert_eq!(
        json_error(&json).0,
        "/Extensions/SubjectAlternativeName/generalNames/0/colour"
    );

    // A missing key is named at the path it should have.
    let json = pretty(&{
        let mut v = base.clone();
        v["SerialNumber"]
            .as_object_mut()
            .unwrap()
            .remove("generator");
        v
    });
    let (path, _, _, message) = json_error(&json);
    assert_eq!(path, "/SerialNumber/generator");
    assert_eq!(message, "missing field `generator`");
    let json = pretty(&{
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove("Validity");
        v
    });
    assert_eq!(json_error(&json).0, "/Validity");

    // A value in a map, under a key that needs escaping in a JSON pointer.
    let json = pretty(&{
        let mut v = base.clone();
        v["Profile"]["values"] = serde_json::json!({"a/b~c": [1]});
        v
    });
    let (path, _, _, message) = json_error(&json);
    assert_eq!(path, "/Profile/values/a~1b~0c");
    assert!(message.contains("untagged enum Scalar"), "{message}");

    // A source list with a number in it (the untagged one-or-many shape).
    let json = pretty(&{
        let mut v = base.clone();
        v["Subject"]["attributes"][5]["source"] = serde_json::json!(["Request.macAddress", 7]);
        v
    });
    assert_eq!(json_error(&json).0, "/Subject/attributes/5/source");

    // A lone surrogate in a \u escape, in a string value and in a map key.
    let json = pretty(&base).replacen("\"MAC Address\"", "\"MAC \\ud800 Address\"", 1);
    let (path, line, _, message) = json_error(&json);
    assert_eq!(path, "/Subject/attributes/5/description");
    assert_eq!(message, "unexpected end of hex escape");
    assert!(line > 1);
    let json = pretty(&base).replacen("\"id\": 11", "\"id\": 11, \"\\udead\": 1", 1);
    let (path, _, _, message) = json_error(&json);
    assert!(path.starts_with("/Profile"), "{path}");
    assert!(message.contains("escape"), "{message}");
    // An escape that is not one at all.
    let json = pretty(&base).replacen("\"MAC Address\"", "\"MAC \\q\"", 1);
    let (path, _, _, message) = json_error(&json);
    assert_eq!(path, "/Subject/attributes/5/description");
    assert_eq!(message, "invalid escape");

    // Trailing characters after the profile: the whole text, with the position.
    let json = format!("{}\n}}", pretty(&base));
    let (path, line, column, message) = json_error(&json);
    assert_eq!(path, "/");
    assert_eq!((line, column), (json.lines().count(), 1));
    assert!(message.contains("trailing characters"), "{message}");

    // Not an object at all: the whole text. (serde reads a struct from an array too, so an
    // array is refused at its first element.)
    let (path, _, _, message) = json_error("\"a profile\"");
    assert_eq!(path, "/");
    assert!(message.contains("expected struct RawProfile"), "{message}");
    assert_eq!(json_error("[1, 2]").0, "/0");
}

fn with_extension(name: &str, value: serde_json::Value) -> serde_json::Value {
    let mut v = ecc_device();
    v["Extensions"][name] = value;
    v
}

#[test]
fn a_ca_true_leaf_is_refused() {
    let json = with_extension(
        "BasicConstraints",
        serde_json::json!({"CA": true, "critical": true}),
    )
    .to_string();
    let found = problems(&json);
    assert!(
        found
            .iter()
            .any(|p| p.path == "/Extensions/BasicConstraints/CA"
                && p.message.contains("CA must be false")),
        "{found:?}"
    );
    let json = with_extension(
        "BasicConstraints",
        serde_json::json!({"CA": false, "critical": true}),
    )
    .to_string();
    assert!(compile(&json).is_ok());
}

#[test]
fn an_empty_subject_without_a_critical_san_is_refused() {
    // No attributes at all.
    let json = with(ecc_device(), "/Subject/attributes", serde_json::json!([]));
    assert!(problems(&json)
        .iter()
        .any(|p| p.path == "/Subject/attributes" && p.message.contains("no attributes")));

    // Every attribute optional and sourced from input: a device can get an empty subject.
    let optional_subject = serde_json::json!([
        {"type": "organizationalUnitName", "source": ["Request.unit"], "optional": true},
        {"type": "commonName", "source": ["CSR.Subject.commonName", "Request.name"], "optional": true}
    ]);
    let json = with(
        ecc_device(),
        "/Subject/attributes",
        optional_subject.clone(),
    );
    let found = problems(&json);
    assert!(
        found
            .iter()
            .any(|p| p.path == "/Subject/attributes" && p.message.contains("RFC 5280 4.1.2.6")),
        "{found:?}"
    );

    // The same subject with a critical SAN is what RFC 5280 allows: it compiles (and the
    // template refuses the device that ends up with neither, see template tests).
    let mut value = ecc_device();
    value["Subject"]["attributes"] = optional_subject.clone();
    value["Extensions"]["SubjectAlternativeName"]["critical"] = serde_json::json!(true);
    assert!(compile(&value.to_string()).is_ok());

    // An optional attribute with a fixed fallback always has a value: no SAN needed.
    let mut value = ecc_device();
    value["Subject"]["attributes"] = optional_subject;
    value["Subject"]["attributes"][1]["source"] =
        serde_json::json!(["Request.name", "Profile.fallbackName"]);
    value["Profile"]["values"] = serde_json::json!({"fallbackName": "unnamed device"});
    assert!(compile(&value.to_string()).is_ok());
    value["Profile"]["values"] = serde_json::json!({});
    assert!(problems(&value.to_string())
        .iter()
        .any(|p| p.path == "/Subject/attributes"));
    value["Subject"]["attributes"][1]["source"] = serde_json::json!(["Request.name", "Default"]);
    value["Subject"]["attributes"][1]["default"] = serde_json::json!("unnamed device");
    assert!(compile(&value.to_string()).is_ok());
}

#[test]
fn key_usage_is_checked_against_the_pinned_key_type_when_keys_come_from_csrs() {
    // CSR keys only: the profile still pins the key type, so the contradiction is found at
    // compile time (a CSR with another key type is refused per entry, tests/kinds.rs).
    let mut ec = ecc_device();
    ec["SubjectPublicKeyInfo"]["source"] = serde_json::json!(["CSR.SubjectPublicKeyInfo"]);
    assert!(compile(&ec.to_string()).is_ok());
    ec["Extensions"]["KeyUsage"]["bits"] =
        serde_json::json!(["digitalSignature", "keyEncipherment"]);
    let found = problems(&ec.to_string());
    assert!(
        found.iter().any(|p| p.path == "/Extensions/KeyUsage/bits"
            && p.message.contains("not valid for EC keys")),
        "{found:?}"
    );

    let mut rsa: serde_json::Value = serde_json::from_str(SHIPPED[2].1).unwrap();
    rsa["SubjectPublicKeyInfo"]["source"] = serde_json::json!("CSR.SubjectPublicKeyInfo");
    rsa["Extensions"]["KeyUsage"]["bits"] = serde_json::json!(["digitalSignature", "keyAgreement"]);
    let found = problems(&rsa.to_string());
    assert!(
        found.iter().any(|p| p.path == "/Extensions/KeyUsage/bits"
            && p.message.contains("not valid for RSA keys")),
        "{found:?}"
    );

    // Without a key type there is nothing to check key usage against: refused.
    ec["SubjectPublicKeyInfo"]
        .as_object_mut()
        .unwrap()
        .remove("syntax");
    assert!(problems(&ec.to_string())
        .iter()
        .any(|p| p.path == "/SubjectPublicKeyInfo/syntax"));
}

#[test]
fn fixed_and_shortest_validity() {
    let profile = compile(SHIPPED[0].1).unwrap();
    assert_eq!(profile.fixed_years(), None, "Request.years can choose");
    assert_eq!(profile.shortest_years(), 1, "Integer:1,2,3");
    assert_eq!(profile.validity_path(), "/Validity/period");

    let mut value = ecc_device();
    value["Validity"].as_object_mut().unwrap().remove("period");
    value["Validity"]["default"]["years"] = serde_json::json!(5);
    let profile = compile(&value.to_string()).unwrap();
    assert_eq!(profile.fixed_years(), Some(5));
    assert_eq!(profile.shortest_years(), 5);
    assert_eq!(profile.validity_path(), "/Validity");

    let mut value = ecc_device();
    value["Validity"]["period"]["source"] = serde_json::json!(["Profile.years"]);
    value["Validity"]["period"]["syntax"] = serde_json::json!("Integer:2,4");
    value["Profile"]["values"] = serde_json::json!({"years": 4});
    let profile = compile(&value.to_string()).unwrap();
    assert_eq!(
        profile.fixed_years(),
        Some(4),
        "only the profile's own value"
    );
    value["Validity"]["period"]["source"] = serde_json::json!(["Batch.years"]);
    value["Validity"]["default"]["years"] = serde_json::json!(2);
    let profile = compile(&value.to_string()).unwrap();
    assert_eq!(profile.fixed_years(), None);
    assert_eq!(profile.shortest_years(), 2, "the smallest enumerated value");
}

#[test]
fn the_remaining_compile_rules_name_their_paths() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 8] = [
        (
            |v| v["Issuer"]["name"] = serde_json::json!("Not A Name"),
            "/Issuer/name",
        ),
        (
            |v| v["Extensions"]["SubjectKeyIdentifier"] = serde_json::json!({"critical": true}),
            "/Extensions/SubjectKeyIdentifier/critical",
        ),
        (
            |v| {
                v["Extensions"]["CRLDistributionPoints"]["distributionPointURLs"] =
                    serde_json::json!([])
            },
            "/Extensions/CRLDistributionPoints/distributionPointURLs",
        ),
        (
            |v| {
                v["Extensions"]["AuthorityInfoAccess"]["caIssuersURLs"] =
                    serde_json::json!(["https://ca.example/ca.crt"])
            },
            "/Extensions/AuthorityInfoAccess/caIssuersURLs/0",
        ),
        (
            |v| {
                v["Subject"]["attributes"][2]
                    .as_object_mut()
                    .unwrap()
                    .remove("type");
            },
            "/Subject/attributes/2/type",
        ),
        (
            |v| {
                v["Extensions"]["SubjectAlternativeName"]["generalNames"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("type");
            },
            "/Extensions/SubjectAlternativeName/generalNames/0/type",
        ),
        (|v| v["Validity"] = serde_json::json!({}), "/Validity"),
        (
            |v| v["Validity"]["period"]["default"] = serde_json::json!(4),
            "/Validity/period/default",
        ),
    ];
    for (edit, expected) in cases {
        let mut value = ecc_device();
        edit(&mut value);
        let found = problems(&value.to_string());
        assert!(
            found.iter().any(|p| p.path == expected),
            "expected a problem at {expected}, got {found:?}"
        );
    }
}
