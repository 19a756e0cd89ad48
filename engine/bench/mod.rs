//! The benchmark harness behind `certmill bench`: issues a synthetic batch end to end (inputs
//! generated into a temporary directory, a temporary data directory with its own development
//! CA, the ZIP written there), once per thread count, and reports devices a second, the time
//! per stage (measured on a sample, see [`stages`]), peak memory, and the ceiling this machine's
//! OpenSSL primitives allow ([`ceiling`]), with the ratio achieved ÷ ceiling. A sweep of thread
//! counts can be drawn as an SVG ([`svg`]).
//!
//! It does not touch the user's data directory, and it asserts nothing about speed: it
//! measures and reports.

pub mod ceiling;
pub mod inputs;
pub mod stages;
pub mod svg;

pub use inputs::InputKind;

use crate::batch::{self, BatchInput, BatchOptions, ProgressStyle};
use crate::ca::{CaInitOptions, IssuingCa};
use crate::keys::{KeyAlgorithm, KeypairQueue, SignatureAlgorithm};
use crate::pkcs12::{Pkcs12Options, Pkcs12Password};
use crate::profile::Profile;
use crate::template::Template;
use ceiling::{Ceiling, Primitives};
use serde::Serialize;
use stages::StageTimes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The batch itself failed.
    #[error("the benchmark batch ({threads} threads): {source}")]
    Batch {
        /// Worker threads of the failed run.
        threads: usize,
        /// The cause.
        source: batch::BatchError,
    },
    /// The temporary CA could not be created.
    #[error("creating the benchmark CA: {source}")]
    Ca {
        /// The cause.
        source: crate::ca::CaError,
    },
    /// A synthetic CSR could not be read back.
    #[error("synthetic CSR: {source}")]
    Csr {
        /// The cause.
        source: crate::csr::CsrError,
    },
    /// rcgen could not generate a synthetic CSR.
    #[error("generating a synthetic CSR: {source}")]
    CsrGeneration {
        /// The cause.
        source: rcgen::Error,
    },
    /// The device count is out of range.
    #[error("--devices {devices}: expected 1 to 16,777,216")]
    Devices {
        /// The count given.
        devices: u64,
    },
    /// The synthetic generator sequence was refused.
    #[error("synthetic generator sequence: {source}")]
    Generator {
        /// The cause.
        source: crate::generator::GeneratorError,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Key generation failed in the stage sample.
    #[error("stage sample, key generation: {source}")]
    Key {
        /// The cause.
        source: crate::keys::KeyError,
    },
    /// The PKCS#12 password was refused.
    #[error("benchmark PKCS#12 password: {message}")]
    Password {
        /// Why.
        message: String,
    },
    /// PKCS#12 build failed in the stage sample.
    #[error("stage sample, PKCS#12: {source}")]
    Pkcs12 {
        /// The cause.
        source: crate::pkcs12::Pkcs12Error,
    },
    /// The `--pool` keypair pool could not be started.
    #[error("keypair pool: {source}")]
    Pool {
        /// The cause.
        source: crate::keys::KeyError,
    },
    /// Signing failed in the stage sample.
    #[error("stage sample, signing: {source}")]
    Sign {
        /// The cause.
        source: crate::ca::CaError,
    },
    /// `openssl` could not be started.
    #[error("running `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The stage sample's store refused a record.
    #[error("stage sample, store: {source}")]
    Store {
        /// The cause.
        #[from]
        source: crate::store::StoreError,
    },
    /// The template could not be bound to the CA.
    #[error("template: {source}")]
    Template {
        /// The cause.
        source: crate::template::TemplateError,
    },
    /// `openssl` failed.
    #[error("`{command}` failed: {status}")]
    Tool {
        /// The command line.
        command: String,
        /// Its exit status or what went wrong.
        status: String,
    },
    /// A thread count of 0.
    #[error("--threads: 0 is not a number of worker threads")]
    ZeroThreads,
    /// A state the code rules out.
    #[error("internal error: {0}")]
    Unreachable(&'static str),
    /// `openssl speed` printed something the parser does not recognise.
    #[error("`{command}`: no figure found in its output (ends: {excerpt})")]
    UnparsedOutput {
        /// The command line.
        command: String,
        /// The last lines of its output.
        excerpt: String,
    },
    /// The profile needs per-device values the harness cannot make up.
    #[error("profile {profile}: not supported by the benchmark: {reason}")]
    UnsupportedProfile {
        /// The profile's name.
        profile: String,
        /// Why.
        reason: String,
    },
    /// A synthetic device was refused by the template in the stage sample.
    #[error("stage sample, device {device}: {message}")]
    Value {
        /// Index of the device in the sample.
        device: usize,
        /// The template's message.
        message: String,
    },
}

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Devices per batch.
    pub devices: u64,
    /// Where they come from.
    pub kind: InputKind,
    /// Worker threads of each run, in order (one batch per entry).
    pub threads: Vec<usize>,
    /// Devices in the stage sample (at most `devices`).
    pub sample: usize,
    /// Measure the ceiling with `openssl speed` (skipped when false).
    pub ceiling: bool,
    /// `--pool N`: before each batch, fill a keypair pool of N keys of the profile's key
    /// algorithm (idle-time work, timed apart), then issue from it (none: keys generated as
    /// the devices are issued).
    pub pool: Option<usize>,
    /// Rounds (at least 1): each measures its own ceiling, runs every thread count's batch and
    /// its own stage sample, so each round's ratios compare figures taken within seconds of
    /// each other; the headline figures are the medians over the rounds, and the report gives
    /// their range (the machine's noise).
    pub rounds: usize,
}

/// The keypair pool of one run (`--pool`).
#[derive(Clone, Debug, Serialize)]
pub struct PoolRun {
    /// Keys the pool holds when full.
    pub capacity: usize,
    /// Filler threads.
    pub fillers: usize,
    /// Seconds the fillers took to fill it before the batch (idle-time work, not counted in
    /// the batch's figures).
    pub fill_seconds: f64,
    /// Whether it was full when the batch started (false: the fill timed out).
    pub full: bool,
    /// Keys the batch took from the pool.
    pub served_from_pool: u64,
    /// Keys the batch generated inline because the pool was empty.
    pub generated_inline: u64,
}

/// Longest wait for a `--pool` fill (fillers run at the lowest priority, so a busy machine
/// slows them down); the batch then starts with what is ready.
const POOL_FILL_TIMEOUT: Duration = Duration::from_secs(600);

/// One batch run.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// The round it ran in (1-based, see [`BenchConfig::rounds`]).
    pub round: usize,
    /// Worker threads.
    pub threads: usize,
    /// Devices issued.
    pub devices: u64,
    /// Devices that failed (0 expected).
    pub failed: u64,
    /// Validation pass, seconds (only opening the input when `one_pass`).
    pub validation_seconds: f64,
    /// Whether each request was verified as it was signed, in one pass (a PEM CSR bundle:
    /// docs/ISSUANCE.md); the issuing pass is then the whole batch.
    pub one_pass: bool,
    /// Issuing pass (keys, signatures, PKCS#12, ZIP, store, rename), seconds.
    pub issuing_seconds: f64,
    /// Devices ÷ (validation + issuing): end to end.
    pub devices_per_second: f64,
    /// Devices ÷ issuing pass only.
    pub issuing_devices_per_second: f64,
    /// `devices_per_second` ÷ the ceiling of its round.
    pub ratio_to_ceiling: Option<f64>,
    /// CPU time of the whole process over the batch (validation and issuing passes), all
    /// threads, µs per device (Linux; `/proc/self/stat`, 10 ms ticks).
    pub cpu_us_per_device: Option<f64>,
    /// That CPU time ÷ (C × the batch's end-to-end wall time): the share of the machine's cores
    /// the batch kept busy. With fewer threads than cores the writer and reserver still run on
    /// the idle core.
    pub core_utilization: Option<f64>,
    /// Where the rest of the machine's cores went over the batch, as shares of all its CPU
    /// time (Linux `/proc/stat`): idle (nothing to run), other processes (the machine busy
    /// beyond `core_utilization`), and steal (the hypervisor ran another guest while this one
    /// had work). A run that misses its ratio with its cores idle lost time in its own serial
    /// parts; with steal, the machine took the cores away.
    pub machine: Option<MachineShares>,
    /// The keypair pool the batch drew from (`--pool`); its figures are then the burst
    /// throughput with a warm pool.
    pub pool: Option<PoolRun>,
}

/// Shares of the machine's CPU time over one batch ([`Run::machine`]).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MachineShares {
    /// Idle, waiting for I/O included.
    pub idle: f64,
    /// Busy with other processes (the machine's busy share less the batch's own, at least 0).
    pub other_processes: f64,
    /// Taken by the hypervisor.
    pub steal: f64,
}

impl MachineShares {
    /// The shares of `ticks` (one batch's), given the batch's own share of the cores.
    fn of(ticks: batch::cputime::MachineTicks, own: f64) -> Option<MachineShares> {
        let total = ticks.total();
        (total > 0).then(|| {
            let share = |t: u64| t as f64 / total as f64;
            MachineShares {
                idle: share(ticks.idle),
                other_processes: (share(ticks.busy) - own).max(0.0),
                steal: share(ticks.steal),
            }
        })
    }
}

/// The ceiling section of the report.
#[derive(Clone, Debug, Serialize)]
pub struct CeilingReport {
    /// `openssl version`, or `None` when openssl could not be run.
    pub openssl: Option<String>,
    /// The primitives measured.
    pub primitives: Primitives,
    /// The ceiling, when the job has a formula and openssl was measured.
    pub ceiling: Option<Ceiling>,
    /// Why there is no ceiling, when there is none.
    pub missing: Option<String>,
    /// How the machine's own cores scale (`openssl speed -multi`), measured with the ceiling.
    pub scaling: Option<ceiling::MachineScaling>,
}

/// One round's figures: its batches against the ceiling and the stage sample measured in the
/// same round.
#[derive(Clone, Debug, Serialize)]
pub struct Round {
    /// 1-based.
    pub round: usize,
    /// End-to-end devices a second of the round's run with the most threads.
    pub devices_per_second: f64,
    /// The round's ceiling, devices a second: from the mean of the per-device costs measured
    /// just before and just after the round's batches, so a machine whose speed drifts
    /// during the round weighs on both sides of the ratio alike.
    pub ceiling_devices_per_second: Option<f64>,
    /// The ceiling measured just before the batches, devices a second.
    pub ceiling_before_devices_per_second: Option<f64>,
    /// The ceiling measured just after the batches, devices a second.
    pub ceiling_after_devices_per_second: Option<f64>,
    /// `devices_per_second` ÷ the round's ceiling.
    pub ratio_to_ceiling: Option<f64>,
    /// The round's primitives (`openssl speed`, the measurement before the batches).
    pub primitives: Primitives,
    /// The round's stage sum, µs per device on one core: the mean of the samples taken just
    /// before and just after the round's batches.
    pub stage_sum_us: f64,
    /// The stage sample's sum before the batches, µs.
    pub stage_sum_before_us: f64,
    /// The stage sample's sum after the batches, µs.
    pub stage_sum_after_us: f64,
    /// C ÷ the round's stage sum.
    pub stage_limit_devices_per_second: Option<f64>,
    /// `devices_per_second` ÷ the round's stage limit.
    pub ratio_to_stage_limit: Option<f64>,
    /// The round's run with the most threads ÷ its 1-thread run, when both ran.
    pub thread_scaling: Option<f64>,
    /// The machine's own scaling measured in this round (`openssl speed -multi C` against one
    /// process, just after the round's ceiling), when openssl ran and C > 1.
    pub machine_scaling: Option<ceiling::MachineScaling>,
    /// `thread_scaling` ÷ the machine's scaling: how much of what this round's cores gave
    /// independent processes the batch's threads got (1.0 = all of it).
    pub scaling_against_machine: Option<f64>,
    /// The stage sum ÷ the CPU time the run with the most threads spent per device: how much
    /// of the batch's CPU went to the stages (below 1: the pipeline's own work, and the cores
    /// running slower when all are busy). The ratio to the stage limit is this × that run's
    /// core utilization.
    pub cpu_efficiency: Option<f64>,
    /// The stage sum ÷ the CPU time the round's 1-thread run spent per device, when the round
    /// also ran more threads. That run's pipeline threads are counted too, but its worker has
    /// a core to itself: set against [`Round::cpu_efficiency`], it tells the pipeline's own
    /// work (both figures) from the cores slowing each other when all are busy (only the
    /// C-thread figure).
    pub one_thread_cpu_efficiency: Option<f64>,
    /// `devices_per_second` ÷ (the machine's scaling × 1,000,000 ÷ the stage sum): the ratio to
    /// the stage limit counting the cores as the machine scaled them in this round instead of
    /// as C whole cores.
    pub ratio_to_machine_stage_limit: Option<f64>,
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// The smallest and the largest of `values`; `None` when empty.
pub fn range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Everything `certmill bench` reports (and writes as JSON).
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Profile name.
    pub profile: String,
    /// Input kind.
    pub kind: InputKind,
    /// Devices per batch.
    pub devices: u64,
    /// Cores (`std::thread::available_parallelism`).
    pub cores: usize,
    /// End-to-end devices a second of the run with the most threads (the median over the
    /// rounds).
    pub devices_per_second: f64,
    /// Its ratio to the ceiling (the median of the rounds' ratios).
    pub ratio_to_ceiling: Option<f64>,
    /// Seconds spent making the synthetic inputs (not part of any figure).
    pub input_preparation_seconds: f64,
    /// Each batch run.
    pub runs: Vec<Run>,
    /// Time per stage, on a sample (the first round's).
    pub stages: StageTimes,
    /// Peak resident memory of the process (VmHWM), KiB.
    pub peak_rss_kib: Option<u64>,
    /// The ceiling and the primitives behind it (the first round's, with the machine scaling).
    pub ceiling: CeilingReport,
    /// C ÷ the sum of the stages: what C cores would reach if each spent on a device exactly
    /// the stages' one-core cost, without the pipeline's overlap or the cores slowing each
    /// other (none when the sum is zero).
    pub stage_limit_devices_per_second: Option<f64>,
    /// `devices_per_second` ÷ `stage_limit_devices_per_second` (the median of the rounds'
    /// ratios, like the two figures above).
    pub ratio_to_stage_limit: Option<f64>,
    /// Devices/s of the run with the most threads ÷ that of the 1-thread run of the same round,
    /// when both ran (the median over the rounds).
    pub thread_scaling: Option<f64>,
    /// The machine's scaling (`openssl speed -multi C` ÷ one process), the median of the
    /// rounds' measurements.
    pub machine_scaling: Option<f64>,
    /// `thread_scaling` ÷ the machine's scaling, the median of the rounds' ratios.
    pub scaling_against_machine: Option<f64>,
    /// The ratio to the stage limit with the cores counted as the machine scaled them, the
    /// median of the rounds' ratios (see [`Round::ratio_to_machine_stage_limit`]).
    pub ratio_to_machine_stage_limit: Option<f64>,
    /// The stage sum ÷ the CPU per device, the median of the rounds' (see
    /// [`Round::cpu_efficiency`]).
    pub cpu_efficiency: Option<f64>,
    /// The same for the 1-thread runs, the median of the rounds' (see
    /// [`Round::one_thread_cpu_efficiency`]).
    pub one_thread_cpu_efficiency: Option<f64>,
    /// Each round's figures (one entry without `--rounds`).
    pub rounds: Vec<Round>,
}

/// The machine's cores, as the ceiling counts them.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Peak resident set size (VmHWM) of this process in KiB, from `/proc/self/status`.
pub fn peak_rss_kib() -> Option<u64> {
    parse_vm_hwm(&std::fs::read_to_string("/proc/self/status").ok()?)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    // `VmHWM:	   12345 kB`
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

/// Which ceiling formula fits this profile and input kind.
fn job_of(profile: &Profile, kind: InputKind) -> Result<ceiling::Job, String> {
    let signature = profile.signature_algorithm();
    match (kind, profile.key_algorithm()) {
        (InputKind::Csr, _) if signature == SignatureAlgorithm::EcdsaWithSha256 => {
            Ok(ceiling::Job::CsrP256)
        }
        (InputKind::Csr, _) => Err(format!(
            "no ceiling formula for CSR batches signed with {}",
            signature.name()
        )),
        (_, KeyAlgorithm::EcP256) if signature == SignatureAlgorithm::EcdsaWithSha256 => {
            Ok(ceiling::Job::EccDeviceP256)
        }
        (_, KeyAlgorithm::Rsa2048) => Ok(ceiling::Job::RsaDevice2048),
        (_, key) => Err(format!(
            "no ceiling formula for {} keys signed with {}",
            key.syntax(),
            signature.name()
        )),
    }
}

/// Measures the ceiling, and the machine's scaling with it when `with_scaling`; a missing or
/// failing openssl is reported, not an error.
fn measure_ceiling(
    job: Result<ceiling::Job, String>,
    cores: usize,
    with_scaling: bool,
) -> CeilingReport {
    let mut report = CeilingReport {
        openssl: ceiling::openssl_version(),
        primitives: Primitives::default(),
        ceiling: None,
        missing: None,
        scaling: None,
    };
    let job = match (job, &report.openssl) {
        (Err(why), _) => {
            report.missing = Some(why);
            return report;
        }
        (Ok(_), None) => {
            report.missing =
                Some("openssl could not be run (not installed or not on the PATH)".into());
            return report;
        }
        (Ok(job), Some(_)) => job,
    };
    let p = &mut report.primitives;
    let measured = match job {
        ceiling::Job::EccDeviceP256 => ceiling::measure_ecc(p, true).and_then(|()| {
            match (
                p.ecdh_p256_per_second,
                p.ecdsa_p256_sign_per_second,
                p.sha256_bytes_per_second,
            ) {
                (Some(keygen), Some(sign), Some(sha)) => Ok(ceiling::ecc_device(
                    cores,
                    keygen,
                    sign,
                    ceiling::compression_seconds(sha),
                )),
                _ => Err(BenchError::Unreachable(
                    "ECC primitives measured but absent",
                )),
            }
        }),
        ceiling::Job::CsrP256 => ceiling::measure_ecc(p, false).and_then(|()| {
            match (p.ecdsa_p256_verify_per_second, p.ecdsa_p256_sign_per_second) {
                (Some(verify), Some(sign)) => Ok(ceiling::csr(cores, verify, sign)),
                _ => Err(BenchError::Unreachable(
                    "ECDSA primitives measured but absent",
                )),
            }
        }),
        ceiling::Job::RsaDevice2048 => {
            ceiling::measure_rsa(p, ceiling::RSA_KEYGEN_RUNS).and_then(|()| {
                p.rsa2048_keygen_per_second
                    .map(|rate| ceiling::rsa_device(cores, rate))
                    .ok_or(BenchError::Unreachable("RSA rate measured but absent"))
            })
        }
    };
    match measured {
        Ok(c) => report.ceiling = Some(c),
        Err(e) => report.missing = Some(e.to_string()),
    }
    if with_scaling {
        // A failed scaling measurement leaves the ceiling standing; the report says none.
        report.scaling = ceiling::measure_scaling(job, cores, &report.primitives)
            .ok()
            .flatten();
    }
    report
}

/// The development CA key that signs `profile`'s certificates (as `certmill issue` creates).
fn ca_algorithm(profile: &Profile) -> KeyAlgorithm {
    match profile.signature_algorithm() {
        SignatureAlgorithm::EcdsaWithSha256 => KeyAlgorithm::EcP256,
        SignatureAlgorithm::EcdsaWithSha384 => KeyAlgorithm::EcP384,
        SignatureAlgorithm::Sha256WithRsaEncryption
        | SignatureAlgorithm::Sha384WithRsaEncryption => KeyAlgorithm::Rsa3072,
    }
}

/// Runs the benchmark: the synthetic inputs, then each round: the ceiling (on an idle machine),
/// one batch per thread count, the stage sample.
pub fn run(profile: &Profile, config: &BenchConfig) -> Result<BenchReport, BenchError> {
    if config.threads.contains(&0) {
        return Err(BenchError::ZeroThreads);
    }
    let cores = cores();
    let dir = tempfile::Builder::new()
        .prefix("certmill-bench-")
        .tempdir()
        .map_err(|source| BenchError::Io {
            path: std::env::temp_dir().display().to_string(),
            source,
        })?;
    let data = dir.path().join("data");
    let ca = IssuingCa::init(
        &data,
        &CaInitOptions {
            algorithm: ca_algorithm(profile),
            ..CaInitOptions::default()
        },
    )
    .map_err(|source| BenchError::Ca { source })?;
    let sample = config.sample.clamp(1, config.devices.max(1) as usize);
    let started = Instant::now();
    let synthetic = inputs::build(profile, config.kind, config.devices, sample, dir.path())?;
    let input_preparation_seconds = started.elapsed().as_secs_f64();
    let input = match (&synthetic.csv, &synthetic.bundle, &synthetic.sequence) {
        (Some(csv), _, _) => BatchInput::Csv(csv),
        (_, Some(bundle), _) => BatchInput::Csr(bundle),
        (_, _, Some(sequence)) => BatchInput::Generator(sequence),
        _ => return Err(BenchError::Unreachable("synthetic inputs of no kind")),
    };
    let password = bench_password()?;
    let template = Template::new(profile, &ca, time::OffsetDateTime::now_utc())
        .map_err(|source| BenchError::Template { source })?;
    let keys = if profile.key_algorithm().is_ec() {
        sample
    } else {
        RSA_SAMPLE_KEYS
    };
    let most_threads = config
        .threads
        .iter()
        .copied()
        .max()
        .ok_or(BenchError::Unreachable("no thread count"))?;

    let mut runs = Vec::with_capacity(config.threads.len() * config.rounds.max(1));
    let mut rounds = Vec::with_capacity(config.rounds.max(1));
    let mut first: Option<(CeilingReport, StageTimes)> = None;
    for round in 1..=config.rounds.max(1) {
        let unmeasured = || CeilingReport {
            openssl: None,
            primitives: Primitives::default(),
            ceiling: None,
            missing: Some("not measured (--no-ceiling)".into()),
            scaling: None,
        };
        let mut ceiling = if config.ceiling {
            // The machine's scaling in every round, beside the ceiling: the rounds' ratios
            // against it pair figures taken seconds apart.
            measure_ceiling(job_of(profile, config.kind), cores, true)
        } else {
            unmeasured()
        };
        // A scratch directory a round: each sample records its devices in a store of its own.
        let scratch = dir.path().join(format!("stages-{round}"));
        let sample = |side: &str| -> Result<StageTimes, BenchError> {
            let scratch = scratch.join(side);
            std::fs::create_dir_all(&scratch).map_err(|source| BenchError::Io {
                path: scratch.display().to_string(),
                source,
            })?;
            stages::measure(&stages::Sample {
                template: &template,
                ca: &ca,
                parameters: &synthetic.parameters,
                values: &synthetic.sample_values,
                csrs: &synthetic.sample_csrs,
                keys,
                password: &password,
                dir: &scratch,
            })
        };
        // The ceiling and the stage sample are taken on both sides of the batches: the VM's
        // speed drifts by 10-30% within a minute, and one side alone put that drift into
        // every ratio.
        let stages_before = sample("before")?;
        let round_start = runs.len();
        for (index, &threads) in config.threads.iter().enumerate() {
            let out = dir
                .path()
                .join(format!("batch-{round}-{index}-{threads}t.zip"));
            let pool = match config.pool.filter(|&n| n > 0) {
                Some(capacity) => Some(fill_pool(profile.key_algorithm(), capacity, cores)?),
                None => None,
            };
            let options = BatchOptions {
                parameters: synthetic.parameters.clone(),
                password: if input.has_csr() {
                    None
                } else {
                    Some(bench_password()?)
                },
                pkcs12: Pkcs12Options::default(),
                out: out.clone(),
                batch_name: format!("bench round {round}, {threads} threads"),
                threads: Some(threads),
                progress: ProgressStyle::Quiet,
                authority: None,
                user: None,
                issuer: None,
                on_created: None,
                keypairs: pool.as_ref().map(|(queue, _)| Arc::clone(queue)),
                limits: Default::default(),
            };
            let machine_before = batch::cputime::machine();
            let cpu_before = batch::cputime::process();
            let report = batch::issue(&data, &ca, profile, &input, &options)
                .map_err(|source| BenchError::Batch { threads, source })?;
            // Both passes (or the one pass of a PEM CSR bundle, verified as it is signed).
            let cpu = batch::cputime::process()
                .zip(cpu_before)
                .map(|(after, before)| after.saturating_sub(before).as_secs_f64());
            let machine_ticks = batch::cputime::machine()
                .zip(machine_before)
                .map(|(after, before)| after.since(before));
            drop(options);
            let pool = pool.map(|(queue, mut run)| {
                let stats = queue.stats();
                run.served_from_pool = stats.served_from_pool();
                run.generated_inline = stats.generated_inline();
                // Dropping the queue stops its fillers before the next run.
                drop(queue);
                run
            });
            let validation = report.validation.as_secs_f64();
            let issuing = report.elapsed.as_secs_f64();
            let end_to_end = report.devices as f64 / (validation + issuing).max(1e-9);
            let core_utilization = cpu
                .filter(|_| validation + issuing > 0.0)
                .map(|cpu| cpu / (cores as f64 * (validation + issuing)));
            runs.push(Run {
                round,
                threads,
                devices: report.devices,
                failed: report.failed,
                validation_seconds: validation,
                one_pass: report.one_pass,
                issuing_seconds: issuing,
                devices_per_second: end_to_end,
                issuing_devices_per_second: report.devices_per_second(),
                // Set once the ceiling after the batches is measured too.
                ratio_to_ceiling: None,
                cpu_us_per_device: cpu
                    .filter(|_| report.devices > 0)
                    .map(|cpu| cpu * 1e6 / report.devices as f64),
                core_utilization,
                machine: machine_ticks
                    .zip(core_utilization)
                    .and_then(|(ticks, own)| MachineShares::of(ticks, own)),
                pool,
            });
            // The ZIPs are not kept; removing each keeps the temporary directory small.
            std::fs::remove_file(&out).map_err(|source| BenchError::Io {
                path: out.display().to_string(),
                source,
            })?;
        }
        let stages_after = sample("after")?;
        let stages = stages_before.mean(&stages_after);
        let ceiling_before = ceiling.ceiling.clone();
        let ceiling_after = if config.ceiling && ceiling_before.is_some() {
            measure_ceiling(job_of(profile, config.kind), cores, false).ceiling
        } else {
            None
        };
        // An "after" measurement that failed leaves the "before" one as the round's ceiling.
        ceiling.ceiling = match (&ceiling_before, &ceiling_after) {
            (Some(before), Some(after)) => Some(before.bracketed(after)),
            _ => ceiling_before.clone(),
        };
        let ceiling_rate = ceiling.ceiling.as_ref().map(|c| c.devices_per_second);
        for run in &mut runs[round_start..] {
            run.ratio_to_ceiling = ceiling_rate.map(|c| run.devices_per_second / c);
        }
        let this_round = &runs[round_start..];
        let headline = this_round
            .iter()
            .find(|r| r.threads == most_threads)
            .ok_or(BenchError::Unreachable("no run with the most threads"))?;
        let stage_limit = (stages.total_us() > 0.0).then(|| cores as f64 * 1e6 / stages.total_us());
        let one_thread = this_round
            .iter()
            .find(|r| r.threads == 1)
            .filter(|_| most_threads > 1);
        let thread_scaling =
            one_thread.map(|one| headline.devices_per_second / one.devices_per_second);
        let efficiency = |run: &Run| {
            run.cpu_us_per_device
                .filter(|&cpu| cpu > 0.0 && stages.total_us() > 0.0)
                .map(|cpu| stages.total_us() / cpu)
        };
        let machine = ceiling.scaling.as_ref().filter(|m| m.ratio > 0.0);
        rounds.push(Round {
            round,
            devices_per_second: headline.devices_per_second,
            ceiling_devices_per_second: ceiling_rate,
            ceiling_before_devices_per_second: ceiling_before.map(|c| c.devices_per_second),
            ceiling_after_devices_per_second: ceiling_after.map(|c| c.devices_per_second),
            ratio_to_ceiling: headline.ratio_to_ceiling,
            primitives: ceiling.primitives.clone(),
            stage_sum_us: stages.total_us(),
            stage_sum_before_us: stages_before.total_us(),
            stage_sum_after_us: stages_after.total_us(),
            stage_limit_devices_per_second: stage_limit,
            ratio_to_stage_limit: stage_limit.map(|limit| headline.devices_per_second / limit),
            thread_scaling,
            scaling_against_machine: thread_scaling
                .zip(machine)
                .map(|(threads, m)| threads / m.ratio),
            ratio_to_machine_stage_limit: stage_limit
                .zip(machine)
                .map(|(limit, m)| headline.devices_per_second / (limit * m.ratio / cores as f64)),
            machine_scaling: machine.cloned(),
            cpu_efficiency: efficiency(headline),
            one_thread_cpu_efficiency: one_thread.and_then(efficiency),
        });
        if first.is_none() {
            first = Some((ceiling, stages));
        }
    }
    let (ceiling, stages) = first.ok_or(BenchError::Unreachable("no round"))?;
    let devices = runs
        .iter()
        .find(|r| r.threads == most_threads)
        .map_or(0, |r| r.devices);
    Ok(BenchReport {
        stage_limit_devices_per_second: median(
            rounds
                .iter()
                .filter_map(|r| r.stage_limit_devices_per_second),
        ),
        ratio_to_stage_limit: median(rounds.iter().filter_map(|r| r.ratio_to_stage_limit)),
        thread_scaling: median(rounds.iter().filter_map(|r| r.thread_scaling)),
        machine_scaling: median(
            rounds
                .iter()
                .filter_map(|r| r.machine_scaling.as_ref().map(|m| m.ratio)),
        ),
        scaling_against_machine: median(rounds.iter().filter_map(|r| r.scaling_against_machine)),
        ratio_to_machine_stage_limit: median(
            rounds.iter().filter_map(|r| r.ratio_to_machine_stage_limit),
        ),
        cpu_efficiency: median(rounds.iter().filter_map(|r| r.cpu_efficiency)),
        one_thread_cpu_efficiency: median(
            rounds.iter().filter_map(|r| r.one_thread_cpu_efficiency),
        ),
        profile: profile.name().to_owned(),
        kind: config.kind,
        devices,
        cores,
        devices_per_second: median(rounds.iter().map(|r| r.devices_per_second)).unwrap_or(0.0),
        ratio_to_ceiling: median(rounds.iter().filter_map(|r| r.ratio_to_ceiling)),
        input_preparation_seconds,
        stages,
        peak_rss_kib: peak_rss_kib(),
        ceiling,
        runs,
        rounds,
    })
}

/// Starts a keypair pool of `capacity` keys of `algorithm` with one filler per core and waits
/// until it is full (or [`POOL_FILL_TIMEOUT`] has passed).
fn fill_pool(
    algorithm: KeyAlgorithm,
    capacity: usize,
    fillers: usize,
) -> Result<(Arc<KeypairQueue>, PoolRun), BenchError> {
    let started = Instant::now();
    let queue = KeypairQueue::start(&[(algorithm, capacity)], fillers)
        .map_err(|source| BenchError::Pool { source })?;
    let full = queue.wait_until_full(POOL_FILL_TIMEOUT);
    let fill_seconds = started.elapsed().as_secs_f64();
    let capacity = queue.config().first().map_or(0, |&(_, n)| n);
    Ok((
        queue,
        PoolRun {
            capacity,
            fillers,
            fill_seconds,
            full,
            served_from_pool: 0,
            generated_inline: 0,
        },
    ))
}

/// The synthetic batches' PKCS#12 password.
fn bench_password() -> Result<Pkcs12Password, BenchError> {
    Pkcs12Password::new("certmill-bench".into()).map_err(|e| BenchError::Password {
        message: e.to_string(),
    })
}

/// RSA keys generated in the stage sample (each takes tens of milliseconds).
const RSA_SAMPLE_KEYS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges() {
        assert_eq!(median([]), None);
        assert_eq!(median([0.7]), Some(0.7));
        assert_eq!(median([0.9, 0.5, 0.7]), Some(0.7));
        assert_eq!(median([4.0, 1.0, 5.0, 2.0]), Some(3.0));
        assert_eq!(range([]), None);
        assert_eq!(range([0.7, 0.5, 0.9, 0.6]), Some((0.5, 0.9)));
    }

    #[test]
    fn machine_shares_split_what_the_batch_left() {
        use batch::cputime::MachineTicks;
        let ticks = MachineTicks {
            busy: 900,
            idle: 60,
            steal: 40,
        };
        // The batch itself kept 85% of the cores busy: 5% went to other processes.
        let m = MachineShares::of(ticks, 0.85).expect("shares");
        assert!((m.idle - 0.06).abs() < 1e-12, "{m:?}");
        assert!((m.steal - 0.04).abs() < 1e-12, "{m:?}");
        assert!((m.other_processes - 0.05).abs() < 1e-12, "{m:?}");
        // Tick granularity can put the batch above the machine's busy share: never negative.
        assert_eq!(MachineShares::of(ticks, 0.95).unwrap().other_processes, 0.0);
        assert!(MachineShares::of(MachineTicks::default(), 0.5).is_none());
    }

    #[test]
    fn reads_vm_hwm_in_kib() {
        let status =
            "Name:\tcertmill\nVmPeak:\t  200000 kB\nVmHWM:\t   53124 kB\nVmRSS:\t   50000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(53_124));
        assert_eq!(parse_vm_hwm("VmRSS:\t 1 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t 1 MB\n"), None);
    }

    #[test]
    fn this_process_has_a_peak_rss() {
        assert!(peak_rss_kib().is_some_and(|k| k > 0));
    }

    #[test]
    fn jobs_of_the_shipped_profiles() {
        let options = crate::profile::CompileOptions::default();
        let load = |name| Profile::load(name, &options).expect(name);
        assert_eq!(
            job_of(&load("ecc-device"), InputKind::Csv),
            Ok(ceiling::Job::EccDeviceP256)
        );
        assert_eq!(
            job_of(&load("ecc-device"), InputKind::Csr),
            Ok(ceiling::Job::CsrP256)
        );
        assert_eq!(
            job_of(&load("rsa-device"), InputKind::Generator),
            Ok(ceiling::Job::RsaDevice2048)
        );
        assert!(job_of(&load("rsa-server"), InputKind::Csr).is_err());
    }
}
