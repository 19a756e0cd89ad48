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
