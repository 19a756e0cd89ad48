use super::*;
use crate::profile::{CompileOptions, Profile};

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn validators_compile_and_accept_their_defaults() {
    for kind in GeneratorKind::ALL {
        for p in kind.parameters() {
            let regex = regex::Regex::new(p.validator).unwrap();
            if let Some(v) = p.value {
                assert!(regex.is_match(v), "{} {}", kind.name(), p.name);
            }
        }
        assert_eq!(GeneratorKind::find(&kind.id().to_string()).unwrap(), kind);
        assert_eq!(GeneratorKind::find(kind.short_name()).unwrap(), kind);
    }
    assert!(GeneratorKind::find("uuid").is_err());
    let json = serde_json::to_value(GeneratorKind::Mac.info()).unwrap();
    assert_eq!(json["generatorId"], 2);
    for key in [
        "generatorParameterId",
        "name",
        "label",
        "type",
        "required",
        "validator",
        "message",
        "value",
    ] {
        assert!(json["parameters"][0].get(key).is_some(), "{key}");
    }
}

#[test]
fn decimal_counter() {
    let s = Sequence::new(
        GeneratorKind::Decimal,
        &params(&[("startValue", "0"), ("increment", "1")]),
        3,
    )
    .unwrap();
    assert_eq!(
        (0..3).map(|i| s.value(i)).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    let s = Sequence::new(
        GeneratorKind::Decimal,
        &params(&[("startValue", "998"), ("increment", "7")]),
        2,
    )
    .unwrap();
    assert_eq!(s.value(1), "1005");
    let max = u64::MAX.to_string();
    assert!(
        Sequence::new(GeneratorKind::Decimal, &params(&[("startValue", &max)]), 1).is_err(),
        "20 digits refused by the validator"
    );
    let near = (u64::MAX - 1).to_string();
    let near = &near[..19];
    assert!(Sequence::new(GeneratorKind::Decimal, &params(&[("startValue", near)]), 2).is_ok());
}

#[test]
fn hex_counter_has_fixed_width_and_keeps_case() {
    let s = Sequence::new(
        GeneratorKind::Hex,
        &params(&[("startValue", "00fe"), ("width", "4")]),
        3,
    )
    .unwrap();
    assert_eq!(
        (0..3).map(|i| s.value(i)).collect::<Vec<_>>(),
        ["00fe", "00ff", "0100"]
    );
    let s = Sequence::new(
        GeneratorKind::Hex,
        &params(&[("startValue", "FFFE"), ("width", "4")]),
        2,
    )
    .unwrap();
    assert_eq!(s.value(1), "FFFF");
    let err = Sequence::new(
        GeneratorKind::Hex,
        &params(&[("startValue", "FFFE"), ("width", "4")]),
        3,
    )
    .unwrap_err();
    assert!(
        matches!(&err, GeneratorError::Overflow { limit, .. } if limit == "FFFF"),
        "{err}"
    );
    assert!(Sequence::new(
        GeneratorKind::Hex,
        &params(&[("startValue", "12345"), ("width", "4")]),
        1
    )
    .is_err());
    assert!(Sequence::new(GeneratorKind::Hex, &params(&[("startValue", "xyz")]), 1).is_err());
}

#[test]
fn mac_counter_carries_across_bytes_and_never_wraps() {
    let s = Sequence::new(
        GeneratorKind::Mac,
        &params(&[("startValue", "00:1A:2B:00:00:FE"), ("increment", "1")]),
        3,
    )
    .unwrap();
    assert_eq!(
        (0..3).map(|i| s.value(i)).collect::<Vec<_>>(),
        [
            "00:1A:2B:00:00:FE",
            "00:1A:2B:00:00:FF",
            "00:1A:2B:00:01:00"
        ]
    );
    let s = Sequence::new(
        GeneratorKind::Mac,
        &params(&[("startValue", "00-1a-2b-ff-ff-ff")]),
        2,
    )
    .unwrap();
    assert_eq!(
        s.value(1),
        "00-1a-2c-00-00-00",
        "carry across three bytes, separator and case kept"
    );
    let s = Sequence::new(
        GeneratorKind::Mac,
        &params(&[("startValue", "00:1A:2B:00:00:00"), ("increment", "256")]),
        2,
    )
    .unwrap();
    assert_eq!(s.value(1), "00:1A:2B:00:01:00");
    assert!(Sequence::new(
        GeneratorKind::Mac,
        &params(&[("startValue", "FF:FF:FF:FF:FF:FE")]),
        2
    )
    .is_ok());
    let err = Sequence::new(
        GeneratorKind::Mac,
        &params(&[("startValue", "FF:FF:FF:FF:FF:FE")]),
        3,
    )
    .unwrap_err();
    assert!(err.to_string().contains("FF:FF:FF:FF:FF:FF"), "{err}");
    assert!(
        Sequence::new(GeneratorKind::Mac, &params(&[("increment", "1")]), 1).is_err(),
        "startValue required"
    );
    assert!(Sequence::new(
        GeneratorKind::Mac,
        &params(&[("startValue", "00:1A:2B:00:00:00"), ("increment", "0")]),
        1
    )
    .is_err());
    assert!(Sequence::new(
        GeneratorKind::Mac,
        &params(&[("startValue", "00:1A:2B:00:00:00"), ("colour", "red")]),
        1
    )
    .is_err());
    assert_eq!(
        Sequence::new(
            GeneratorKind::Mac,
            &params(&[("startValue", "00:1A:2B:00:00:00")]),
            0
        )
        .unwrap_err(),
        GeneratorError::EmptyBatch
    );
}

#[test]
fn a_million_devices_fit_without_holding_them() {
    let s = Sequence::new(
        GeneratorKind::Mac,
        &params(&[("startValue", "02:00:00:00:00:00")]),
        1_000_000,
    )
    .unwrap();
    assert_eq!(s.value(999_999), "02:00:00:0F:42:3F");
    assert_eq!(std::mem::size_of::<Sequence>(), std::mem::size_of_val(&s));
}

#[test]
fn preview_matches_the_seed_example() {
    // The seed's server-style profile parameters: commonName, additionalInformation, dNSName.
    let mut profile: serde_json::Value =
        serde_json::from_str(include_str!("../../profiles/ecc-server.json")).unwrap();
    profile["Subject"]["attributes"][2]["source"] = serde_json::json!(["Request.commonName"]);
    profile["Subject"]["attributes"][2]["syntax"] = serde_json::Value::Null;
    profile["Subject"]["attributes"].as_array_mut().unwrap().insert(
        2,
        serde_json::json!({"type": "organizationalUnitName", "source": ["Request.additionalInformation"], "optional": true}),
    );
    profile["Extensions"]["SubjectAlternativeName"]["generalNames"][0]["source"] =
        serde_json::json!(["Request.dNSName"]);
    profile["Validity"] = serde_json::json!({"period": {"type": "validityPeriod", "source": ["Request.years"], "syntax": "Integer:1,2,3", "optional": true}, "default": {"years": 1}});
    let profile = Profile::from_json(
        &profile.to_string(),
        "seed-like",
        &CompileOptions::default(),
    )
    .unwrap();
    let batch = params(&[
        ("commonName", "name"),
        ("additionalInformation", "name"),
        ("dNSName", "name.name"),
        ("pkcs12Password", "1"),
        ("years", "1"),
    ]);
    let s = Sequence::new(
        GeneratorKind::Decimal,
        &params(&[("increment", "1"), ("startValue", "0")]),
        1,
    )
    .unwrap();
    let shown = preview(&profile, &batch, &s);
    let expected = params(&[
        ("commonName", "0name"),
        ("additionalInformation", "0name"),
        ("dNSName", "0name.name"),
        ("years", "1"),
        ("serials", "0"),
    ]);
    assert_eq!(
        shown, expected,
        "the seed's preview, without echoing the password"
    );
}

#[test]
fn placeholder_and_missing_required_parameters() {
    let profile = Profile::load("ecc-device", &CompileOptions::default()).unwrap();
    let batch = params(&[
        ("deviceClass", "Aircraft"),
        ("additionalInformation", "line-{seq}-A"),
    ]);
    let values = device_values(&profile, &batch, "00:1A:2B:00:00:07");
    assert_eq!(
        values["macAddress"], "00:1A:2B:00:00:07",
        "the required column is the value itself"
    );
    assert_eq!(values["additionalInformation"], "line-00:1A:2B:00:00:07-A");
    assert_eq!(
        values["deviceClass"], "Aircraft",
        "enumerated values are kept"
    );
}
