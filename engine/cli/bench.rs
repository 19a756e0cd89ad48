//! `certmill bench`: parse the arguments, run [`crate::bench`], render the report as text, and
//! write the JSON and (for a thread sweep) the SVG plot.

use super::{load_profile, InvalidInput};
use crate::bench::{self, svg, BenchConfig, BenchReport, InputKind};
use crate::profile::CompileOptions;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// `certmill bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Profile: a JSON file or a shipped profile name.
    #[arg(long, default_value = "ecc-device")]
    pub profile: String,
    /// Devices per batch.
    #[arg(long, default_value_t = 20_000)]
    pub devices: u64,
    /// Where the devices come from.
    #[arg(long, value_enum, default_value_t = KindArg::Csv)]
    pub kind: KindArg,
    /// Worker threads; a list (1,2,4) runs one batch per entry and plots them (default: all
    /// cores).
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Write the report as JSON to this file (and the sweep's SVG next to it).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Devices in the per-stage sample.
    #[arg(long, default_value_t = 1000)]
    pub sample: usize,
    /// Skip the `openssl speed` ceiling measurement.
    #[arg(long)]
    pub no_ceiling: bool,
    /// Fill a keypair pool of N keys of the profile's key algorithm before each batch (timed
    /// apart, as idle-time work), then issue from it: the burst throughput with a warm pool.
    #[arg(long, value_name = "N")]
    pub pool: Option<usize>,
    /// Rounds: each measures its own ceiling, runs the batches and its own stage sample; the
    /// figures are the medians over the rounds, given with their range (use 3 or more on a
    /// machine whose speed drifts).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub rounds: usize,
}

/// Most `--rounds`.
const MAX_ROUNDS: usize = 20;

/// `--kind`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KindArg {
    /// A CSV of device identities; keys generated.
    Csv,
    /// A PEM bundle of P-256 CSRs generated up front.
    Csr,
    /// A generator sequence; keys generated.
    Generator,
}

impl From<KindArg> for InputKind {
    fn from(k: KindArg) -> InputKind {
        match k {
            KindArg::Csv => InputKind::Csv,
            KindArg::Csr => InputKind::Csr,
            KindArg::Generator => InputKind::Generator,
        }
    }
}

/// Runs `certmill bench`.
pub fn bench(compile: &CompileOptions, a: BenchArgs) -> Result<()> {
    if a.devices == 0 || a.devices > bench::inputs::MAX_DEVICES {
        bail!(InvalidInput(format!(
            "--devices {}: expected 1 to {}",
            a.devices,
            bench::inputs::MAX_DEVICES
        )));
    }
    if a.threads.contains(&0) {
        bail!(InvalidInput("--threads: 0 is not a thread count".into()));
    }
    if a.pool.is_some_and(|n| n > crate::keys::MAX_POOL_CAPACITY) {
        bail!(InvalidInput(format!(
            "--pool: at most {} keys",
            crate::keys::MAX_POOL_CAPACITY
        )));
    }
    if a.rounds == 0 || a.rounds > MAX_ROUNDS {
        bail!(InvalidInput(format!(
            "--rounds {}: expected 1 to {MAX_ROUNDS}",
            a.rounds
        )));
    }
    let profile = load_profile(&a.profile, compile)?;
    let threads = if a.threads.is_empty() {
        vec![bench::cores()]
    } else {
        a.threads.clone()
    };
    let config = BenchConfig {
        devices: a.devices,
        kind: a.kind.into(),
        threads,
        sample: a.sample.max(1),
        ceiling: !a.no_ceiling,
        pool: a.pool.filter(|&n| n > 0),
        rounds: a.rounds,
    };
    eprintln!(
        "bench: {} devices, profile {}, kind {}, threads {:?}, {} round(s) (each: ceiling and stage sample, the batches, stage sample and ceiling again)",
        config.devices,
        profile.name(),
        config.kind.as_str(),
        config.threads,
        config.rounds
    );
    let report = bench::run(&profile, &config).context("certmill bench")?;
    print!("{}", render(&report));
    if let Some(json) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(json, format!("{text}\n"))
            .with_context(|| format!("writing {}", json.display()))?;
        println!("json:      {}", json.display());
    }
    if report
        .runs
        .iter()
        .any(|r| r.threads != report.runs[0].threads)
    {
        let path = svg_path(a.json.as_deref());
        let title = format!(
            "certmill bench: {}, {} {} devices, {} cores",
            report.profile,
            report.devices,
            report.kind.as_str(),
            report.cores
        );
        // One point a thread count: the median over the rounds.
        let mut threads: Vec<usize> = report.runs.iter().map(|r| r.threads).collect();
        threads.sort_unstable();
        threads.dedup();
        let points: Vec<(usize, f64)> = threads
            .into_iter()
            .filter_map(|t| {
                bench::median(
                    report
                        .runs
                        .iter()
                        .filter(|r| r.threads == t)
                        .map(|r| r.devices_per_second),
                )
                .map(|rate| (t, rate))
            })
            .collect();
        let plot = svg::Plot {
            title: &title,
            points: &points,
            ceiling: report
                .ceiling
                .ceiling
                .as_ref()
                .map(|c| c.devices_per_second),
        };
        std::fs::write(&path, svg::render(&plot))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("svg:       {}", path.display());
    }
    Ok(())
}

/// The sweep's SVG: next to the JSON (same name, `.svg`), else `certmill-bench.svg`.
fn svg_path(json: Option<&Path>) -> PathBuf {
    match json {
        Some(json) => json.with_extension("svg"),
        None => PathBuf::from("certmill-bench.svg"),
    }
}

fn optional(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} {unit}"))
}

/// The text report.
fn render(r: &BenchReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        "profile {}, kind {}, {} devices, {} cores",
        r.profile,
        r.kind.as_str(),
        r.devices,
        r.cores
    );
    let _ = writeln!(
        s,
        "inputs prepared in {:.2} s (not counted)",
        r.input_preparation_seconds
    );
    let several = r.rounds.len() > 1;
    for run in &r.runs {
        if several && r.runs.first().map(|f| f.threads) == Some(run.threads) {
            let _ = writeln!(s, "round {} of {}:", run.round, r.rounds.len());
        }
        if let Some(pool) = &run.pool {
            let _ = writeln!(
                s,
                "  keypair pool of {} keys filled in {:.2} s by {} filler(s) (idle-time work, not counted){}",
                pool.capacity,
                pool.fill_seconds,
                pool.fillers,
                if pool.full { "" } else { ", NOT FULL: the fill timed out" }
            );
        }
        let _ = writeln!(
            s,
            "  {} thread(s): {:.0} devices/s end to end ({}){}{}{}{}",
            run.threads,
            run.devices_per_second,
            if run.one_pass {
                format!(
                    "one pass, each request verified as it is signed: {:.2} s",
                    run.validation_seconds + run.issuing_seconds
                )
            } else {
                format!(
                    "{:.2} s validation + {:.2} s issuing; issuing pass {:.0}/s",
                    run.validation_seconds, run.issuing_seconds, run.issuing_devices_per_second
                )
            },
            run.ratio_to_ceiling
                .map(|x| format!(", {x:.2}x ceiling"))
                .unwrap_or_default(),
            run.cpu_us_per_device
                .zip(run.core_utilization)
                .map(|(cpu, busy)| format!(
                    "; {cpu:.0} µs CPU a device, cores {:.0}% busy",
                    busy * 100.0
                ))
                .unwrap_or_default(),
            run.machine
                .map(|m| format!(
                    " (machine: idle {:.1}%, other processes {:.1}%, steal {:.1}%)",
                    m.idle * 100.0,
                    m.other_processes * 100.0,
                    m.steal * 100.0
                ))
                .unwrap_or_default(),
            if run.failed > 0 {
                format!(", {} FAILED", run.failed)
            } else {
                String::new()
            }
        );
        if let Some(pool) = &run.pool {
            let _ = writeln!(
                s,
                "    burst throughput with a warm pool: {:.1} devices/s; keys served from the pool {}, generated inline {}",
                run.devices_per_second, pool.served_from_pool, pool.generated_inline
            );
        }
    }
    let st = &r.stages;
    let _ = writeln!(
        s,
        "per stage, µs per device on one core ({} devices; {}){}:",
        st.sample,
        st.method,
        if several { "; the first round's" } else { "" }
    );
    let _ = writeln!(
        s,
        "  key generation   {}{}",
        optional(st.key_generation_us, "µs"),
        if st.key_generation_us.is_some() && st.keys_generated < st.sample {
            format!(" ({} keys)", st.keys_generated)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "  CSR parse+verify {}",
        optional(st.csr_parse_verify_us, "µs")
    );
    let _ = writeln!(s, "  template fill    {:.1} µs", st.template_fill_us);
    let _ = writeln!(s, "  signing          {:.1} µs", st.sign_us);
    let _ = writeln!(s, "  PKCS#12          {}", optional(st.pkcs12_us, "µs"));
    let _ = writeln!(s, "  ZIP write        {:.1} µs", st.zip_write_us);
    let _ = writeln!(s, "  store            {:.1} µs", st.store_us);
    let _ = writeln!(s, "  sum              {:.1} µs", st.total_us());
    if several {
        let sums: Vec<String> = r
            .rounds
            .iter()
            .map(|round| format!("{:.1}", round.stage_sum_us))
            .collect();
        let _ = writeln!(s, "  sum each round    {} µs", sums.join(" / "));
    }
    if let Some(first) = r.rounds.first() {
        let _ = writeln!(
            s,
            "  (each round's sum is the mean of a sample before its batches and one after: {:.1} and {:.1} µs in the first)",
            first.stage_sum_before_us, first.stage_sum_after_us
        );
    }
    if let (Some(limit), Some(ratio)) = (r.stage_limit_devices_per_second, r.ratio_to_stage_limit) {
        let _ = writeln!(
            s,
            "stage limit: {limit:.0} devices/s = C ÷ sum of stages (C = {}); achieved {:.0} devices/s = {ratio:.2}x",
            r.cores, r.devices_per_second
        );
    }
    if let Some(efficiency) = r.cpu_efficiency {
        let _ = writeln!(
            s,
            "CPU efficiency: sum of stages ÷ CPU a device of the run with the most threads = {efficiency:.2}{}",
            if several { " (median of the rounds)" } else { "" }
        );
    }
    if let Some(efficiency) = r.one_thread_cpu_efficiency {
        let _ = writeln!(
            s,
            "  and of the 1-thread run = {efficiency:.2}{} (its pipeline threads counted, its worker alone on a core: what is lost only with more threads is the cores slowing each other)",
            if several { " (median of the rounds)" } else { "" }
        );
    }
    if let Some(threads) = r.thread_scaling {
        let most = r.runs.iter().map(|run| run.threads).max().unwrap_or(1);
        let _ = writeln!(s, "thread scaling: {most} threads = {threads:.2}x 1 thread");
    }
    let _ = writeln!(
        s,
        "peak memory (VmHWM): {}",
        r.peak_rss_kib.map_or_else(
            || "unknown".to_owned(),
            |k| format!("{:.1} MiB", k as f64 / 1024.0)
        )
    );
    let c = &r.ceiling;
    let p = &c.primitives;
    let _ = writeln!(
        s,
        "openssl: {}",
        c.openssl.as_deref().unwrap_or("not available")
    );
    let rows = [
        ("ECDSA P-256 sign", p.ecdsa_p256_sign_per_second, "/s"),
        ("ECDSA P-256 verify", p.ecdsa_p256_verify_per_second, "/s"),
        ("ECDH P-256 (keygen)", p.ecdh_p256_per_second, "/s"),
        ("SHA-256 compression", p.sha256_compression_ns, "ns"),
        ("RSA-2048 genpkey", p.rsa2048_keygen_per_second, "/s"),
        ("openssl start-up", p.openssl_startup_ms, "ms"),
    ];
    for (name, value, unit) in rows {
        if let Some(v) = value {
            let _ = writeln!(s, "  {name:<21} {v:.1} {unit}");
        }
    }
    if let Some(m) = &c.scaling {
        let _ = writeln!(
            s,
            "machine scaling: {} openssl processes ({} -multi {}) = {:.2}x one",
            m.processes, m.primitive, m.processes, m.ratio
        );
        if let (Some(against), false) = (r.scaling_against_machine, several) {
            let _ = writeln!(
                s,
                "thread scaling against the machine's: {against:.2} (1.00 = the batch's threads scale as {} independent processes do)",
                m.processes
            );
        }
        if let (Some(ratio), false) = (r.ratio_to_machine_stage_limit, several) {
            let _ = writeln!(
                s,
                "stage limit on this machine's cores: {:.2} x 1,000,000 ÷ sum of stages; achieved {ratio:.2}x",
                m.ratio
            );
        }
    }
    match (&c.ceiling, &c.missing) {
        (Some(ceiling), _) => {
            let _ = writeln!(
                s,
                "ceiling: {:.0} devices/s = {} (C = {}, {:.1} µs per device per core){}",
                ceiling.devices_per_second,
                ceiling.formula,
                ceiling.cores,
                ceiling.seconds_per_device_per_core * 1e6,
                r.rounds
                    .first()
                    .and_then(|first| first
                        .ceiling_before_devices_per_second
                        .zip(first.ceiling_after_devices_per_second))
                    .map(|(before, after)| format!(
                        "; the first round's, from {before:.0} measured before its batches and {after:.0} after"
                    ))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                s,
                "achieved: {:.0} devices/s = {:.2}x the ceiling{}",
                r.devices_per_second,
                r.ratio_to_ceiling.unwrap_or(0.0),
                if several {
                    " (medians of the rounds, each against its own ceiling)"
                } else {
                    ""
                }
            );
        }
        (None, Some(why)) => {
            let _ = writeln!(s, "ceiling: none ({why})");
            let _ = writeln!(s, "achieved: {:.0} devices/s", r.devices_per_second);
        }
        (None, None) => {
            let _ = writeln!(s, "achieved: {:.0} devices/s", r.devices_per_second);
        }
    }
    if several {
        let _ = writeln!(
            s,
            "over {} rounds (median, range; each round's ratio against its own ceiling and stage sample):",
            r.rounds.len()
        );
        // Each figure read from every round (a round without it, e.g. no ceiling, is skipped).
        type Figure = (&'static str, fn(&bench::Round) -> Option<f64>, &'static str);
        let figures: [Figure; 9] = [
            ("devices/s", |x| Some(x.devices_per_second), ""),
            ("ratio to ceiling", |x| x.ratio_to_ceiling, "x"),
            ("ratio to stage limit", |x| x.ratio_to_stage_limit, "x"),
            ("CPU efficiency", |x| x.cpu_efficiency, ""),
            ("  at 1 thread", |x| x.one_thread_cpu_efficiency, ""),
            ("thread scaling", |x| x.thread_scaling, "x"),
            (
                "machine scaling",
                |x| x.machine_scaling.as_ref().map(|m| m.ratio),
                "x",
            ),
            ("scaling vs machine", |x| x.scaling_against_machine, ""),
            (
                "ratio to machine limit",
                |x| x.ratio_to_machine_stage_limit,
                "x",
            ),
        ];
        for (name, figure, unit) in figures {
            let values: Vec<f64> = r.rounds.iter().filter_map(figure).collect();
            let precision = if name == "devices/s" { 0 } else { 2 };
            if let (Some(mid), Some((lo, hi))) = (
                bench::median(values.iter().copied()),
                bench::range(values.iter().copied()),
            ) {
                let _ = writeln!(
                    s,
                    "  {name:<22} {mid:.precision$}{unit} ({lo:.precision$}{unit} to {hi:.precision$}{unit})"
                );
            }
        }
    }
    s
}
