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
        "--threads",
        "1,2",
        "--rounds",
        "2",
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
    assert_eq!(runs.len(), 4);
    for run in runs {
        assert_eq!(run["devices"], 50, "{run}");
        assert_eq!(run["failed"], 0, "{run}");
    }
    let rounds = report["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2);
    // Each round's stage sum and ceiling come from measurements on both sides of its
    // batches: the mean of the sums, the harmonic mean of the ceilings' rates.
    for round in rounds {
        let sum = |field: &str| round[field].as_f64().unwrap_or_else(|| panic!("{field}"));
        let (before, after) = (sum("stage_sum_before_us"), sum("stage_sum_after_us"));
        assert!(before > 0.0 && after > 0.0, "{round}");
        assert!(
            (sum("stage_sum_us") - (before + after) / 2.0).abs() < 1e-9,
            "{round}"
        );
        let rates = (
            round["ceiling_before_devices_per_second"].as_f64(),
            round["ceiling_after_devices_per_second"].as_f64(),
        );
        if let (Some(before), Some(after)) = rates {
            let ceiling = sum("ceiling_devices_per_second");
            assert!(
                (ceiling - 2.0 / (1.0 / before + 1.0 / after)).abs() < 1e-6 * ceiling,
                "{round}"
            );
            let ratio = sum("ratio_to_ceiling");
            assert!(
                (ratio - sum("devices_per_second") / ceiling).abs() < 1e-9,
                "{round}"
            );
        }
    }
    // The process's CPU over each batch, both passes (Linux): per device, and as a share of
    // the cores; each round's CPU efficiency is its stage sum over its 2-thread run's CPU.
    if std::path::Path::new("/proc/self/stat").exists() {
        for round in rounds {
            let two = runs
                .iter()
                .find(|r| r["round"] == round["round"] && r["threads"] == 2)
                .expect("the round's 2-thread run");
            let cpu = two["cpu_us_per_device"]
                .as_f64()
                .expect("cpu_us_per_device");
            let busy = two["core_utilization"].as_f64().expect("core_utilization");
            // Where the rest of the machine's CPU time went: shares that fit in what the
            // batch left.
            let machine = &two["machine"];
            let share = |field: &str| machine[field].as_f64().unwrap_or_else(|| panic!("{two}"));
            let rest = share("idle") + share("other_processes") + share("steal");
            assert!(
                ["idle", "other_processes", "steal"]
                    .iter()
                    .all(|f| (0.0..=1.0).contains(&share(f))),
                "{two}"
            );
            assert!(rest <= 1.0 + 1e-9, "{two}");
            let wall = two["issuing_seconds"].as_f64().unwrap()
                + two["validation_seconds"].as_f64().unwrap();
            let cores = report["cores"].as_f64().unwrap();
            assert!(
                (busy - cpu * 50.0 / 1e6 / (cores * wall)).abs() < 1e-9,
                "{two}"
            );
            // The clock ticks every 10 ms: a fast machine may see no tick at all, and then no
            // efficiency is claimed.
            if cpu == 0.0 {
                assert!(round["cpu_efficiency"].is_null(), "{round}");
                continue;
            }
            let efficiency = round["cpu_efficiency"].as_f64().expect("cpu_efficiency");
            let sum = round["stage_sum_us"].as_f64().unwrap();
            assert!((efficiency - sum / cpu).abs() < 1e-9, "{round}");
            // And the same against the round's 1-thread run, which has a core to itself.
            let one = runs
                .iter()
                .find(|r| r["round"] == round["round"] && r["threads"] == 1)
                .expect("the round's 1-thread run");
            match one["cpu_us_per_device"].as_f64() {
                Some(cpu) if cpu > 0.0 => {
                    let alone = round["one_thread_cpu_efficiency"]
                        .as_f64()
                        .expect("one_thread_cpu_efficiency");
                    assert!((alone - sum / cpu).abs() < 1e-9, "{round}");
                }
                _ => assert!(round["one_thread_cpu_efficiency"].is_null(), "{round}"),
            }
        }
        if rounds
            .iter()
            .all(|r| r["one_thread_cpu_efficiency"].is_f64())
        {
            assert!(report["one_thread_cpu_efficiency"].as_f64().unwrap() > 0.0);
        }
    }
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
    // The stage limit: C ÷ the sum of the stages, and the achieved rate's ratio to it (the
    // first round's stage table is the report's).
    let first = &rounds[0];
    let limit = first["stage_limit_devices_per_second"]
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
    let ratio = first["ratio_to_stage_limit"].as_f64().unwrap();
    let first_rate = first["devices_per_second"].as_f64().unwrap();
    assert!((ratio - first_rate / limit).abs() < 1e-9, "{ratio}");
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
        // Every round measures it again, and sets its own figures against it: the thread
        // scaling against the machine's, and the stage limit with the cores counted as the
        // machine scaled them.
        let mut against = Vec::new();
        for round in rounds {
            let machine = round["machine_scaling"]["ratio"]
                .as_f64()
                .unwrap_or_else(|| panic!("machine scaling in {round}"));
            assert!(machine > 0.0, "{round}");
            let threads = round["thread_scaling"].as_f64().unwrap();
            let value = round["scaling_against_machine"].as_f64().unwrap();
            assert!((value - threads / machine).abs() < 1e-9, "{round}");
            against.push(value);
            let stage_limit = round["stage_limit_devices_per_second"].as_f64().unwrap();
            let on_machine = round["ratio_to_machine_stage_limit"].as_f64().unwrap();
            let expected =
                round["devices_per_second"].as_f64().unwrap() / (stage_limit * machine / cores);
            assert!((on_machine - expected).abs() < 1e-9, "{round}");
        }
        let headline = report["scaling_against_machine"].as_f64().unwrap();
        assert!(
            (headline - (against[0] + against[1]) / 2.0).abs() < 1e-9,
            "the median of two rounds is their mean: {headline}"
        );
    } else {
        assert!(report["scaling_against_machine"].is_null(), "{report}");
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

/// `--rounds`: every round runs each thread count and its own stage sample; the headline
/// figures are the medians of the rounds' figures, and each round's thread scaling pairs its
/// own runs.
#[test]
fn bench_rounds_report_each_round_and_their_medians() {
    let f = fixture!();
    let json = f.path("rounds.json");
    let text = f.certmill_ok(&[
        "bench",
        "--devices",
        "30",
        "--threads",
        "1,2",
        "--rounds",
        "3",
        "--sample",
        "5",
        "--no-ceiling",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(text.contains("round 3 of 3:"), "{text}");
    assert!(text.contains("over 3 rounds"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("rounds.json")).expect("JSON");
    let runs = report["runs"].as_array().expect("runs");
    let rounds = report["rounds"].as_array().expect("rounds");
    assert_eq!((runs.len(), rounds.len()), (6, 3));
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[1]
    };
    for (i, round) in rounds.iter().enumerate() {
        assert_eq!(round["round"], i + 1);
        let of_round: Vec<&serde_json::Value> =
            runs.iter().filter(|r| r["round"] == i + 1).collect();
        assert_eq!(of_round.len(), 2, "{round}");
        let rate = |threads: u64| {
            of_round
                .iter()
                .find(|r| r["threads"] == threads)
                .and_then(|r| r["devices_per_second"].as_f64())
                .unwrap()
        };
        assert_eq!(round["devices_per_second"].as_f64(), Some(rate(2)));
        let scaling = round["thread_scaling"].as_f64().unwrap();
        assert!((scaling - rate(2) / rate(1)).abs() < 1e-9, "{round}");
        assert!(round["stage_sum_us"].as_f64().unwrap() > 0.0);
        assert!(round["ratio_to_ceiling"].is_null(), "no ceiling measured");
    }
    let of_rounds =
        |field: &str| median(rounds.iter().map(|r| r[field].as_f64().unwrap()).collect());
    for field in [
        "devices_per_second",
        "thread_scaling",
        "ratio_to_stage_limit",
    ] {
        let headline = report[field].as_f64().unwrap();
        assert!((headline - of_rounds(field)).abs() < 1e-9, "{field}");
    }
    for bad in ["0", "21"] {
        let out = f.certmill(&["bench", "--devices", "5", "--rounds", bad]);
        assert_eq!(out.status.code(), Some(3), "--rounds {bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--rounds"), "{stderr}");
    }
}
