//! The ceiling: how many devices a second this machine could issue if every core did nothing
//! but the job's public-key and hash primitives at the speed OpenSSL reaches, measured in the
//! same run by spawning `openssl speed` (a tool we did not write).
//!
//! The formulas, with C cores:
//! - ECC device batch (P-256 key, sign, PKCS#12, ZIP): C ÷ (t_keygen + t_sign + 10,240 × t_c),
//!   where t_keygen is one ECDH P-256 operation (one scalar multiplication, as a key
//!   generation is), and 10,240 SHA-256 compressions are the three 2,048-iteration KDF chains
//!   of a PKCS#12 with OpenSSL 3 defaults (2 × PBKDF2 at 2 compressions per iteration, plus the
//!   PKCS#12 MAC KDF at about 1).
//! - CSR batch: C ÷ (t_verify + t_sign).
//! - RSA-2048 device batch: C × the key generation rate of `openssl genpkey`, timed over a loop
//!   of runs less the process start-up (timed over as many `openssl version` runs).
//!
//! t_c = 64 bytes ÷ the SHA-256 throughput of `openssl speed -bytes 16384 sha256`.

use super::BenchError;
use serde::Serialize;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// SHA-256 compressions in one PKCS#12 with OpenSSL 3 defaults (see the module comment).
pub const PKCS12_COMPRESSIONS: f64 = 10_240.0;
/// `openssl genpkey` runs timed for the RSA key generation rate (and `openssl version` runs
/// for the start-up subtracted from them).
pub const RSA_KEYGEN_RUNS: u32 = 20;

/// Which formula applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// CSRs of P-256 keys verified and signed by a P-256 CA.
    CsrP256,
    /// Server-generated P-256 keys, signed, packed into PKCS#12 files.
    EccDeviceP256,
    /// Server-generated RSA-2048 keys (key generation dominates).
    RsaDevice2048,
}

impl Job {
    /// The formula as printed next to the figure.
    pub fn formula(self) -> &'static str {
        match self {
            Job::CsrP256 => "C / (t_verify + t_sign)",
            Job::EccDeviceP256 => "C / (t_keygen + t_sign + 10240 * t_c)",
            Job::RsaDevice2048 => "C * RSA-2048 keygen/s of openssl genpkey",
        }
    }
}

/// One primitive's cost as OpenSSL reached it on this machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Primitives {
    /// ECDSA P-256 signatures a second (`openssl speed ecdsap256`).
    pub ecdsa_p256_sign_per_second: Option<f64>,
    /// ECDSA P-256 verifications a second.
    pub ecdsa_p256_verify_per_second: Option<f64>,
    /// ECDH P-256 operations a second (`openssl speed ecdhp256`): about one key generation.
    pub ecdh_p256_per_second: Option<f64>,
    /// SHA-256 throughput on 16 KiB blocks, bytes a second.
    pub sha256_bytes_per_second: Option<f64>,
    /// One SHA-256 compression, nanoseconds (64 bytes ÷ the throughput).
    pub sha256_compression_ns: Option<f64>,
    /// RSA-2048 key generations a second of `openssl genpkey`, start-up subtracted.
    pub rsa2048_keygen_per_second: Option<f64>,
    /// Start-up of one `openssl` process, milliseconds (subtracted from the genpkey loop).
    pub openssl_startup_ms: Option<f64>,
}

/// The ceiling of one job on this machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ceiling {
    /// The job.
    pub job: Job,
    /// Its formula.
    pub formula: &'static str,
    /// C: the cores (`std::thread::available_parallelism`).
    pub cores: usize,
    /// Seconds of one core per device under the formula (inverse of the per-core rate).
    pub seconds_per_device_per_core: f64,
    /// Devices a second on all cores.
    pub devices_per_second: f64,
}

impl Ceiling {
    /// The ceiling from the mean of this measurement's and `after`'s per-device cost (the
    /// same job measured later): a harmonic mean of the two rates.
    pub fn bracketed(&self, after: &Ceiling) -> Ceiling {
        ceiling(
            self.job,
            self.cores,
            (self.seconds_per_device_per_core + after.seconds_per_device_per_core) / 2.0,
        )
    }
}

/// Parses `openssl speed ecdsap256` (OpenSSL 1.1 and 3 table): (sign/s, verify/s).
pub fn parse_ecdsa(output: &str, curve: &str) -> Option<(f64, f64)> {
    // ` 256 bits ecdsa (nistp256)   0.0000s   0.0001s  39352.8  13714.1`
    let line = output
        .lines()
        .find(|l| l.contains("ecdsa") && l.contains(&format!("({curve})")))?;
    let numbers = trailing_numbers(line, 2)?;
    Some((numbers[0], numbers[1]))
}

/// Parses `openssl speed ecdhp256`: op/s.
pub fn parse_ecdh(output: &str, curve: &str) -> Option<f64> {
    // ` 256 bits ecdh (nistp256)   0.0001s  18801.1`
    let line = output
        .lines()
        .find(|l| l.contains("ecdh") && l.contains(&format!("({curve})")))?;
    trailing_numbers(line, 1).map(|n| n[0])
}

/// Parses `openssl speed -bytes 16384 sha256`: bytes a second (the table is in 1000s of bytes a
/// second, with a `k` suffix).
pub fn parse_sha256(output: &str) -> Option<f64> {
    // `sha256         1503733.30k`
    let line = output.lines().find(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some("sha256") && words.next().is_some()
    })?;
    let last = line.split_whitespace().last()?;
    let kilobytes: f64 = last.strip_suffix('k').unwrap_or(last).parse().ok()?;
    (kilobytes > 0.0).then_some(kilobytes * 1000.0)
}

/// The last `count` whitespace-separated words of `line` as positive numbers.
fn trailing_numbers(line: &str, count: usize) -> Option<Vec<f64>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let tail = words.get(words.len().checked_sub(count)?..)?;
    let numbers: Vec<f64> = tail
        .iter()
        .map(|w| w.parse::<f64>().ok().filter(|v| *v > 0.0 && v.is_finite()))
        .collect::<Option<_>>()?;
    Some(numbers)
}

/// One SHA-256 compression in seconds, from a throughput in bytes a second.
pub fn compression_seconds(sha256_bytes_per_second: f64) -> f64 {
    64.0 / sha256_bytes_per_second
}

/// ECC device ceiling: C ÷ (t_keygen + t_sign + 10,240 × t_c), rates in operations a second.
pub fn ecc_device(cores: usize, keygen_per_second: f64, sign_per_second: f64, t_c: f64) -> Ceiling {
    let per_device = 1.0 / keygen_per_second + 1.0 / sign_per_second + PKCS12_COMPRESSIONS * t_c;
    ceiling(Job::EccDeviceP256, cores, per_device)
}

/// CSR ceiling: C ÷ (t_verify + t_sign).
pub fn csr(cores: usize, verify_per_second: f64, sign_per_second: f64) -> Ceiling {
    ceiling(
        Job::CsrP256,
        cores,
        1.0 / verify_per_second + 1.0 / sign_per_second,
    )
}

/// RSA-2048 device ceiling: C × the key generation rate.
pub fn rsa_device(cores: usize, keygen_per_second: f64) -> Ceiling {
    ceiling(Job::RsaDevice2048, cores, 1.0 / keygen_per_second)
}

fn ceiling(job: Job, cores: usize, seconds_per_device_per_core: f64) -> Ceiling {
    Ceiling {
        job,
        formula: job.formula(),
        cores,
        seconds_per_device_per_core,
        devices_per_second: cores as f64 / seconds_per_device_per_core,
    }
}

/// The `openssl` binary to spawn (`CERTMILL_OPENSSL`, else `openssl` on the PATH).
fn openssl() -> String {
    std::env::var("CERTMILL_OPENSSL").unwrap_or_else(|_| "openssl".to_owned())
}

/// `openssl version`, or `None` when openssl cannot be run.
pub fn openssl_version() -> Option<String> {
    let out = Command::new(openssl())
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `openssl ARGS` and returns its standard output.
fn run_openssl(args: &[&str]) -> Result<String, BenchError> {
    let command = format!("openssl {}", args.join(" "));
    let out = Command::new(openssl())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|source| BenchError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(BenchError::Tool {
            command,
            status: out.status.to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Measures the P-256 and SHA-256 primitives with `openssl speed` (about 4 s).
pub fn measure_ecc(primitives: &mut Primitives, with_keygen: bool) -> Result<(), BenchError> {
    let ecdsa_args = ["speed", "-seconds", "1", "ecdsap256"];
    let ecdsa = run_openssl(&ecdsa_args)?;
    let (sign, verify) =
        parse_ecdsa(&ecdsa, "nistp256").ok_or_else(|| unparsed(&ecdsa_args, &ecdsa))?;
    primitives.ecdsa_p256_sign_per_second = Some(sign);
    primitives.ecdsa_p256_verify_per_second = Some(verify);
    if with_keygen {
        let ecdh_args = ["speed", "-seconds", "1", "ecdhp256"];
        let ecdh = run_openssl(&ecdh_args)?;
        primitives.ecdh_p256_per_second =
            Some(parse_ecdh(&ecdh, "nistp256").ok_or_else(|| unparsed(&ecdh_args, &ecdh))?);
        let sha_args = ["speed", "-seconds", "1", "-bytes", "16384", "sha256"];
        let sha = run_openssl(&sha_args)?;
        let throughput = parse_sha256(&sha).ok_or_else(|| unparsed(&sha_args, &sha))?;
        primitives.sha256_bytes_per_second = Some(throughput);
        primitives.sha256_compression_ns = Some(compression_seconds(throughput) * 1e9);
    }
    Ok(())
}

/// How the machine itself scales across its cores: one primitive's rate in `openssl speed
/// -multi C` (C processes that share nothing) against one process. A
/// C-thread batch cannot be expected to beat its 1-thread run by more than the machine lets
/// C independent processes beat one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MachineScaling {
    /// The primitive (`sha256` on 16 KiB blocks, or `ecdsap256` signing).
    pub primitive: &'static str,
    /// C: the processes.
    pub processes: usize,
    /// Rate of one process (bytes/s for sha256, signatures/s for ecdsap256).
    pub one: f64,
    /// Rate of the C processes together.
    pub all: f64,
    /// `all ÷ one`.
    pub ratio: f64,
}

/// [`MachineScaling`] of the primitive that dominates `job`, against its one-process rate the
/// ceiling measured just before in `primitives` (about 1 s more for sha256, 2 s for
/// ecdsap256); `None` for one core, a job without one (RSA key generation), or a primitive not
/// measured.
pub fn measure_scaling(
    job: Job,
    cores: usize,
    primitives: &Primitives,
) -> Result<Option<MachineScaling>, BenchError> {
    if cores < 2 {
        return Ok(None);
    }
    let multi = cores.to_string();
    let (primitive, one, all) = match job {
        Job::EccDeviceP256 => {
            let Some(one) = primitives.sha256_bytes_per_second else {
                return Ok(None);
            };
            let args = [
                "speed", "-seconds", "1", "-multi", &multi, "-bytes", "16384", "sha256",
            ];
            let all = run_openssl(&args)?;
            (
                "sha256",
                one,
                parse_sha256(&all).ok_or_else(|| unparsed(&args, &all))?,
            )
        }
        Job::CsrP256 => {
            let Some(one) = primitives.ecdsa_p256_sign_per_second else {
                return Ok(None);
            };
            let args = ["speed", "-seconds", "1", "-multi", &multi, "ecdsap256"];
            let all = run_openssl(&args)?;
            let (sign, _) = parse_ecdsa(&all, "nistp256").ok_or_else(|| unparsed(&args, &all))?;
            ("ecdsap256", one, sign)
        }
        Job::RsaDevice2048 => return Ok(None),
    };
    Ok(Some(MachineScaling {
        primitive,
        processes: cores,
        one,
        all,
        ratio: all / one,
    }))
}

/// Times `runs` RSA-2048 `openssl genpkey` runs and as many `openssl version` runs (about
/// 0.1–0.3 s per key on this class of machine).
pub fn measure_rsa(primitives: &mut Primitives, runs: u32) -> Result<(), BenchError> {
    let genpkey = [
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
    ];
    let startup = time_runs(&["version"], runs)?;
    let generating = time_runs(&genpkey, runs)?;
    let per_key = generating.saturating_sub(startup).as_secs_f64() / f64::from(runs);
    if per_key <= 0.0 {
        return Err(BenchError::Tool {
            command: genpkey.join(" "),
            status: "key generation took no longer than `openssl version`".into(),
        });
    }
    primitives.openssl_startup_ms = Some(startup.as_secs_f64() * 1e3 / f64::from(runs));
    primitives.rsa2048_keygen_per_second = Some(1.0 / per_key);
    Ok(())
}

fn time_runs(args: &[&str], runs: u32) -> Result<Duration, BenchError> {
    let started = Instant::now();
    for _ in 0..runs {
        run_openssl(args)?;
    }
    Ok(started.elapsed())
}

fn unparsed(args: &[&str], output: &str) -> BenchError {
    BenchError::UnparsedOutput {
        command: format!("openssl {}", args.join(" ")),
        excerpt: output.lines().rev().take(3).collect::<Vec<_>>().join(" | "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECDSA: &str = include_str!("testdata/openssl3-ecdsap256.txt");
    const ECDH: &str = include_str!("testdata/openssl3-ecdhp256.txt");
    const SHA256: &str = include_str!("testdata/openssl3-sha256.txt");
    /// Standard error and output together (`2>&1`): the "Doing ..." progress lines come first.
    const ECDSA_WITH_STDERR: &str = include_str!("testdata/openssl3-ecdsap256-with-stderr.txt");

    #[test]
    fn parses_openssl3_ecdsa_table() {
        assert_eq!(parse_ecdsa(ECDSA, "nistp256"), Some((39352.8, 13714.1)));
        assert_eq!(parse_ecdsa(ECDSA, "nistp384"), None);
    }

    #[test]
    fn ignores_the_progress_lines_of_standard_error() {
        assert_eq!(
            parse_ecdsa(ECDSA_WITH_STDERR, "nistp256"),
            Some((38805.2, 13294.4))
        );
    }

    #[test]
    fn parses_openssl3_ecdh_table() {
        assert_eq!(parse_ecdh(ECDH, "nistp256"), Some(18801.1));
        assert_eq!(parse_ecdh(ECDSA, "nistp256"), None);
    }

    #[test]
    fn parses_openssl3_sha256_table_in_kilobytes() {
        assert_eq!(parse_sha256(SHA256), Some(1_503_733_300.0));
        // The header line ("type 16384 bytes") and the version block are not the figure.
        assert_eq!(parse_sha256("type          16384 bytes\n"), None);
    }

    #[test]
    fn refuses_garbage_and_non_positive_numbers() {
        assert_eq!(parse_ecdsa("", "nistp256"), None);
        assert_eq!(
            parse_ecdsa(" 256 bits ecdsa (nistp256) 0.0s 0.0s 0.0 12.0", "nistp256"),
            None
        );
        assert_eq!(
            parse_ecdh(" 256 bits ecdh (nistp256) 0.0001s nan", "nistp256"),
            None
        );
        assert_eq!(parse_sha256("sha256 fast\n"), None);
    }

    #[test]
    fn ecc_device_ceiling_arithmetic() {
        // 20,000 keygen/s (50 µs), 40,000 sign/s (25 µs), 1.6 GB/s SHA-256 (t_c = 40 ns):
        // 50 + 25 + 10,240 × 0.04 = 484.6 µs per device per core; 2 cores → 4,127.1/s.
        let t_c = compression_seconds(1.6e9);
        assert!((t_c - 40e-9).abs() < 1e-15);
        let c = ecc_device(2, 20_000.0, 40_000.0, t_c);
        assert!((c.seconds_per_device_per_core - 484.6e-6).abs() < 1e-12);
        assert!((c.devices_per_second - 2.0 / 484.6e-6).abs() < 1e-6);
        assert_eq!(c.job, Job::EccDeviceP256);
    }

    #[test]
    fn a_bracketed_ceiling_averages_the_cost_per_device() {
        // 100 µs before and 150 µs after: 125 µs, 2 cores → 16,000/s (the rates' harmonic
        // mean, not their 16,666/s arithmetic mean).
        let before = csr(2, 10_000.0, 1e12);
        let after = csr(2, 1e6 / 150.0, 1e12);
        let both = before.bracketed(&after);
        assert!((both.seconds_per_device_per_core - 125e-6).abs() < 1e-9);
        assert!((both.devices_per_second - 16_000.0).abs() < 1e-3);
        assert_eq!((both.job, both.cores), (Job::CsrP256, 2));
    }

    #[test]
    fn csr_and_rsa_ceiling_arithmetic() {
        // 10,000 verify/s (100 µs) + 40,000 sign/s (25 µs) = 125 µs → 2 cores: 16,000/s.
        let c = csr(2, 10_000.0, 40_000.0);
        assert!((c.devices_per_second - 16_000.0).abs() < 1e-6);
        // 12.5 keys/s per core, 2 cores: 25/s.
        let r = rsa_device(2, 12.5);
        assert!((r.devices_per_second - 25.0).abs() < 1e-9);
        assert!((r.seconds_per_device_per_core - 0.08).abs() < 1e-12);
    }
}
