//! `certmill bench`: a small end-to-end run writes a JSON report with sane fields. No timing
//! assertions: only that the figures exist and are positive.

#[test]
fn bench_writes_a_json_report() {
    let f = fixture!();
    let json = f.path("out.json");
    f.certmill_ok(&[
        "bench",
        "--devices",
        "50",
        "--sample",
        "20",
        "--json",
        json.to_str().unwrap(),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("out.json")).expect("JSON");
    assert_eq!(report["devices"], 50);
    assert_eq!(report["kind"], "csv");
    let rate = report["devices_per_second"]
        .as_f64()
        .expect("devices_per_second");
    assert!(rate > 0.0, "{rate}");
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["devices"], 50);
    assert_eq!(runs[0]["failed"], 0);
    let stages = &report["stages"];
    for stage in [
        "key_generation_us",
        "template_fill_us",
        "sign_us",
        "pkcs12_us",
        "zip_write_us",
        "store_us",
    ] {
        let value = stages[stage].as_f64().unwrap_or_else(|| panic!("{stage}"));
        assert!(value > 0.0, "{stage} = {value}");
    }
    assert!(stages["method"].as_str().unwrap().contains("sample"));
    assert!(report["peak_rss_kib"].as_u64().unwrap() > 0);
    // The ceiling is present when openssl runs here, and its absence is explained otherwise.
    let ceiling = &report["ceiling"];
    match ceiling["ceiling"]["devices_per_second"].as_f64() {
        Some(c) => {
            assert!(c > 0.0);
            assert!(report["ratio_to_ceiling"].as_f64().unwrap() > 0.0);
        }
        None => assert!(ceiling["missing"].as_str().is_some()),
    }
    // The stage limit: C ÷ the sum of the stages, and the achieved rate's ratio to it.
    let limit = report["stage_limit_devices_per_second"]
        .as_f64()
        .expect("stage_limit_devices_per_second");
    let sum: f64 = stages
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.ends_with("_us"))
        .filter_map(|(_, v)| v.as_f64())
        .sum();
    let cores = report["cores"].as_f64().unwrap();
    assert!(
        (limit - cores * 1e6 / sum).abs() < 1e-6 * limit,
        "{limit} against {cores} cores and {sum} µs"
    );
    let ratio = report["ratio_to_stage_limit"].as_f64().unwrap();
    assert!((ratio - rate / limit).abs() < 1e-9, "{ratio}");
    // With openssl and several cores, the machine's own scaling is measured next to the
    // ceiling: C processes of `openssl speed -multi` against one.
    if ceiling["ceiling"].is_object() && cores > 1.0 {
        let scaling = &ceiling["scaling"];
        assert_eq!(scaling["primitive"], "sha256", "{scaling}");
        assert_eq!(scaling["processes"].as_f64(), Some(cores), "{scaling}");
        let (one, all) = (
            scaling["one"].as_f64().unwrap(),
            scaling["all"].as_f64().unwrap(),
        );
        assert!(one > 0.0 && all > 0.0, "{scaling}");
        assert!((scaling["ratio"].as_f64().unwrap() - all / one).abs() < 1e-9);
    }
    // The benchmark works in a temporary directory of its own, not in --data.
    assert!(!f.data().join("ca").exists());
}

/// `--pool`: the pool is filled before the batch and every key comes from it.
#[test]
fn bench_with_a_warm_pool_reports_the_pool() {
    let f = fixture!();
    let json = f.path("pool.json");
    let text = f.certmill_ok(&[
        "bench",
        "--devices",
        "20",
        "--pool",
        "20",
        "--sample",
        "5",
        "--no-ceiling",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(text.contains("burst throughput with a warm pool"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("pool.json")).expect("JSON");
    let pool = &report["runs"][0]["pool"];
    assert_eq!(pool["capacity"], 20);
    assert_eq!(pool["full"], true);
    assert!(pool["fill_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(pool["served_from_pool"], 20, "{pool}");
    assert_eq!(pool["generated_inline"], 0, "{pool}");
    assert_eq!(report["runs"][0]["failed"], 0);
}
