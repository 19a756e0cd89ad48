//! The command-line shell: parse ([`args`]), resolve into engine calls, render. No business rule
//! lives here; errors are `anyhow` and `main` maps them to the documented exit codes.

pub mod args;
pub mod bench;
mod ca;
mod identity;
mod lifecycle;
mod revocation;

/// Days a finished batch's ZIP is kept (`CERTMILL_ZIP_RETENTION_DAYS`).
pub const DEFAULT_RETENTION_DAYS: u64 = 30;

/// Runs on every start: marks batches a dead process left unfinished Broken and removes their
/// partial ZIPs (`batch::recovery`), then deletes ZIPs past their retention.
fn housekeeping(data: &Path) -> Result<()> {
    for recovered in crate::batch::recovery::recover(data)? {
        eprintln!(
            "note: batch {} was interrupted and is now Broken: {}",
            recovered.batch, recovered.reason
        );
    }
    let days = match std::env::var("CERTMILL_ZIP_RETENTION_DAYS") {
        Ok(v) => v.parse::<u64>().map_err(|_| {
            InvalidInput(format!(
                "CERTMILL_ZIP_RETENTION_DAYS={v:?} is not a number of days"
            ))
        })?,
        Err(_) => DEFAULT_RETENTION_DAYS,
    };
    for expired in
        crate::batch::recovery::expire_zips(data, std::time::Duration::from_secs(days * 86_400))?
    {
        eprintln!(
            "note: batch {expired}: ZIP removed after {days} days (Zip removed after expiration)"
        );
    }
    Ok(())
}

use crate::batch::{self, BatchError, BatchInput, BatchOptions, ProgressStyle};
use crate::ca::{CaInitOptions, CaPassphrase};
use crate::csr::CsrBundle;
use crate::generator::{GeneratorKind, Sequence};
use crate::keys::{KeyAlgorithm, SignatureAlgorithm};
use crate::pkcs12::{Pkcs12Encryption, Pkcs12Options, Pkcs12Password};
use crate::profile::{CompileOptions, Profile, ProfileError};
use crate::signers::{LoadedSigner, Signers};
use crate::store::Store;
use anyhow::{anyhow, bail, Context, Result};
use args::{AuditCommand, CertsCommand, Cli, Command, ProfileCommand};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Exit code: the input (profile, CSV, parameters) was refused; nothing was issued.
pub const EXIT_INVALID_INPUT: i32 = 3;
/// Exit code: any other failure.
pub const EXIT_FAILURE: i32 = 1;

/// An error that means "the input was refused" (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let compile = CompileOptions {
        base_url: cli.base_url.clone(),
        max_bytes: cli.max_profile_bytes,
        max_depth: cli.max_profile_depth,
    };
    match cli.store.as_deref().filter(|url| !url.is_empty()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains("host=") => {
            crate::store::use_postgres(url);
        }
        Some(other) => bail!(InvalidInput(format!(
            "--store {other:?}: give a PostgreSQL URL (postgres://user@host:port/db); without --store the store is the data directory's SQLite file"
        ))),
        None => {}
    }
    if matches!(
        cli.command,
        Command::Demo(_) | Command::Issue(_) | Command::Bench(_) | Command::Serve(_)
    ) {
        crate::keys::warm_random();
    }
    housekeeping(&cli.data)?;
    match cli.command {
        Command::Demo(a) => demo(&cli.data, &compile, a.devices, a.threads),
        Command::Issue(a) => issue(&cli.data, &compile, a),
        Command::Preview(a) => preview(&compile, a),
        Command::Generators => {
            let all: Vec<_> = GeneratorKind::ALL.iter().map(|g| g.info()).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
            Ok(())
        }
        Command::Ca(c) => ca::ca(&cli.data, c),
        Command::Profile(ProfileCommand::Check { file, json }) => {
            profile_check(&cli.data, &file, &compile, json)
        }
        Command::Profile(ProfileCommand::List) => {
            for (name, _) in crate::profile::SHIPPED {
                println!("{name}");
            }
            Ok(())
        }
        Command::Certs(CertsCommand::Find { cn, serial, pem }) => {
            certs_find(&cli.data, cn, serial, pem)
        }
        Command::Batches(command) => lifecycle::batches(&cli.data, command),
        Command::Authorities(command) => lifecycle::authorities(&cli.data, &compile, command),
        Command::Audit(AuditCommand::Verify) => lifecycle::audit_verify(&cli.data),
        Command::Revoke(a) => revocation::revoke(&cli.data, a),
        Command::Crl(command) => revocation::crl(&cli.data, &compile, command),
        Command::Ocsp(command) => revocation::ocsp(&cli.data, command),
        Command::Bench(a) => bench::bench(&compile, a),
        Command::Serve(a) => serve(&cli.data, compile, a),
        Command::Users(command) => identity::users(&cli.data, command),
        Command::Orgs(command) => identity::orgs(&cli.data, command),
    }
}

fn ca_passphrase() -> Result<Option<CaPassphrase>> {
    match std::env::var("CERTMILL_CA_PASSPHRASE") {
        Ok(p) if !p.is_empty() => Ok(Some(
            CaPassphrase::new(p).context("CERTMILL_CA_PASSPHRASE")?,
        )),
        _ => Ok(None),
    }
}

/// The current signer of the issuer `profile` names. When that issuer has no signer at all, a
/// development issuer whose key fits the profile is created first (a note says so).
fn signer_for(data: &Path, profile: &Profile) -> Result<LoadedSigner> {
    let passphrase = ca_passphrase()?;
    let store = Store::open(data)?;
    let loaded = Signers::load(data, &store, passphrase.as_ref())
        .with_context(|| format!("loading the signers in {}", data.display()))?;
    let issuer = profile.issuer_name();
    if let Some(current) = loaded.current(issuer) {
        return Ok(current.clone());
    }
    if !store.signers(Some(issuer))?.is_empty() {
        bail!(crate::signers::SignerError::NoCurrentSigner(
            issuer.to_owned()
        ));
    }
    let algorithm = match profile.signature_algorithm() {
        SignatureAlgorithm::EcdsaWithSha256 => KeyAlgorithm::EcP256,
        SignatureAlgorithm::EcdsaWithSha384 => KeyAlgorithm::EcP384,
        SignatureAlgorithm::Sha256WithRsaEncryption
        | SignatureAlgorithm::Sha384WithRsaEncryption => KeyAlgorithm::Rsa3072,
    };
    let options = CaInitOptions {
        algorithm,
        passphrase,
        ..CaInitOptions::default()
    };
    let (row, ca) = crate::signers::init_issuer(data, &store, issuer, &options, "cli")
        .with_context(|| format!("creating issuer {issuer} in {}", data.display()))?;
    eprintln!(
        "note: {} had no issuer {issuer}; created a DEVELOPMENT CA ({}). Use `certmill ca import --name {issuer}` for a production issuing CA.",
        data.display(),
        ca.describe()
    );
    LoadedSigner::new(row, std::sync::Arc::new(ca))
        .ok_or_else(|| anyhow!("issuer {issuer}: its new signer has no registered certificate"))
}

fn load_profile(name_or_path: &str, compile: &CompileOptions) -> Result<Profile> {
    Profile::load(name_or_path, compile).map_err(|e| match e {
        ProfileError::Io { .. } => anyhow!(e),
        other => anyhow!(InvalidInput(format!("profile {name_or_path}: {other}"))),
    })
}

fn parse_params(params: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in params {
        let (name, value) = p
            .split_once('=')
            .ok_or_else(|| InvalidInput(format!("--param {p:?}: expected NAME=VALUE")))?;
        if out
            .insert(name.trim().to_owned(), value.to_owned())
            .is_some()
        {
            return Err(InvalidInput(format!("--param {name} given twice")).into());
        }
    }
    Ok(out)
}

/// The PKCS#12 password: --password-file, CERTMILL_PKCS12_PASSWORD, or a prompt.
fn read_password(
    file: Option<&Path>,
    profile: &Profile,
    params: &mut BTreeMap<String, String>,
) -> Result<Pkcs12Password> {
    let parameter = profile
        .password_parameter()
        .unwrap_or("pkcs12Password")
        .to_owned();
    let text = if let Some(value) = params.remove(&parameter) {
        eprintln!("warning: a password given with --param is visible in the process list; prefer --password-file");
        value
    } else if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the password file {}", file.display()))?;
        text.lines().next().unwrap_or("").to_owned()
    } else if let Ok(value) = std::env::var("CERTMILL_PKCS12_PASSWORD") {
        value
    } else if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password("PKCS#12 password: ").context("reading the password")?;
        let second = rpassword::prompt_password("again: ").context("reading the password")?;
        if first != second {
            bail!(InvalidInput("the passwords differ".into()));
        }
        first
    } else {
        bail!(InvalidInput("a PKCS#12 password is required: --password-file FILE, CERTMILL_PKCS12_PASSWORD, or run on a terminal for a prompt".into()));
    };
    Pkcs12Password::new(text).map_err(|e| anyhow!(InvalidInput(format!("PKCS#12 password: {e}"))))
}

fn progress_style() -> ProgressStyle {
    if std::io::stderr().is_terminal() {
        ProgressStyle::Bar
    } else {
        ProgressStyle::Lines
    }
}

fn batch_error(e: BatchError) -> anyhow::Error {
    match e {
        BatchError::Csv { .. }
        | BatchError::InvalidRows { .. }
        | BatchError::Empty
        | BatchError::TooManyDevices { .. }
        | BatchError::MissingInput(_)
        | BatchError::UnknownParameter { .. }
        | BatchError::Csr { .. }
        | BatchError::Generator(_)
        | BatchError::Template(_)
        | BatchError::Store(crate::store::StoreError::InsufficientBalance { .. }) => {
            anyhow!(InvalidInput(e.to_string()))
        }
        other => anyhow!(other),
    }
}

/// Splits `--param` values into the generator's own parameters and the profile's.
fn split_generator_params(
    kind: GeneratorKind,
    params: BTreeMap<String, String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let own: Vec<&str> = kind.parameters().iter().map(|p| p.name).collect();
    params
        .into_iter()
        .partition(|(name, _)| own.contains(&name.as_str()))
}

fn generator_error(e: crate::generator::GeneratorError) -> anyhow::Error {
    anyhow!(InvalidInput(e.to_string()))
}

fn issue(data: &Path, compile: &CompileOptions, a: args::IssueArgs) -> Result<()> {
    let profile = load_profile(&a.profile, compile)?;
    let mut parameters = parse_params(&a.params)?;
    let mut sequence = None;
    if let Some(generator) = &a.source.generator {
        let kind = GeneratorKind::find(generator).map_err(generator_error)?;
        let (own, rest) = split_generator_params(kind, parameters);
        parameters = rest;
        let count = a
            .count
            .ok_or_else(|| InvalidInput("--generator needs --count".into()))?;
        sequence = Some(Sequence::new(kind, &own, count).map_err(generator_error)?);
    } else if a.count.is_some() {
        bail!(InvalidInput("--count is for --generator batches".into()));
    }
    let limits = a.limits.limits();
    let bundle = match &a.source.csr {
        Some(path) => Some(
            CsrBundle::open(path, &limits.csr)
                .map_err(|e| anyhow!(InvalidInput(format!("{}: {e}", path.display()))))?,
        ),
        None => None,
    };
    let input = if let Some(csv) = &a.source.csv {
        BatchInput::Csv(csv)
    } else if let Some(bundle) = &bundle {
        BatchInput::Csr(bundle)
    } else if let Some(sequence) = &sequence {
        BatchInput::Generator(sequence)
    } else {
        BatchInput::Single
    };
    let password = if input.has_csr() {
        if a.password_file.is_some() {
            eprintln!(
                "note: a CSR batch has no private keys and no PKCS#12: --password-file is not used"
            );
        }
        None
    } else {
        Some(read_password(
            a.password_file.as_deref(),
            &profile,
            &mut parameters,
        )?)
    };
    let signer = signer_for(data, &profile)?;
    let ca = signer.ca.as_ref();
    let pkcs12 = Pkcs12Options {
        encryption: if a.legacy_pkcs12 {
            Pkcs12Encryption::LegacyTripleDesSha1
        } else {
            Pkcs12Encryption::Aes256Pbes2
        },
        iterations: a.pkcs12_iterations,
    };
    let options = BatchOptions {
        parameters,
        password,
        pkcs12,
        batch_name: a.batch_name.unwrap_or_else(|| {
            a.out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        out: a.out,
        threads: a.threads,
        progress: progress_style(),
        authority: Some(match a.authority {
            Some(id) => crate::store::AuthorityId(id),
            None => default_authority(data, &profile)?,
        }),
        user: None,
        issuer: Some(signer.issuer()),
        on_created: None,
        keypairs: None,
        limits,
    };
    let report = batch::issue(data, ca, &profile, &input, &options).map_err(batch_error)?;
    println!(
        "batch {}: {} devices in {:.2} s ({:.0} devices/s) -> {}",
        report.batch_id,
        report.devices,
        report.elapsed.as_secs_f64(),
        report.devices_per_second(),
        report.out.display()
    );
    print_store_share(&report);
    if report.failed > 0 {
        eprintln!(
            "warning: {} device(s) failed; the batch is {} and manifest.csv lists each with its reason",
            report.failed,
            report.status.as_str()
        );
    }
    Ok(())
}

fn preview(compile: &CompileOptions, a: args::PreviewArgs) -> Result<()> {
    let profile = load_profile(&a.profile, compile)?;
    let kind = GeneratorKind::find(&a.generator).map_err(generator_error)?;
    let (own, rest) = split_generator_params(kind, parse_params(&a.params)?);
    let sequence = Sequence::new(kind, &own, a.count).map_err(generator_error)?;
    let shown = crate::generator::preview(&profile, &rest, &sequence);
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// Writes `contents` to a new file readable by the owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn demo(data: &Path, compile: &CompileOptions, devices: u64, threads: Option<usize>) -> Result<()> {
    if devices == 0 {
        bail!(InvalidInput("--devices must be at least 1".into()));
    }
    let profile = load_profile("ecc-device", compile)?;
    let signer = signer_for(data, &profile)?;
    let ca = signer.ca.as_ref();
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let dir = data.join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut suffix = 0;
    let (csv, out) = loop {
        let tag = if suffix == 0 {
            format!("{stamp}")
        } else {
            format!("{stamp}-{suffix}")
        };
        let out = dir.join(format!("batch-{tag}.zip"));
        if !out.exists() {
            break (dir.join(format!("devices-{tag}.csv")), out);
        }
        suffix += 1;
    };

    // Unique, locally administered MAC addresses: 02:<2 random bytes>:<3-byte counter>.
    let mut prefix = [0u8; 2];
    crate::keys::random_bytes(&mut prefix)?;
    if devices > 1 << 24 {
        bail!(InvalidInput(
            "--devices is limited to 16,777,216 in the demo".into()
        ));
    }
    {
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(&csv).with_context(|| format!("creating {}", csv.display()))?,
        );
        writeln!(w, "macAddress")?;
        for i in 0..devices {
            writeln!(
                w,
                "02:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
                prefix[0],
                prefix[1],
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                i & 0xff
            )?;
        }
        w.flush()?;
    }

    let mut random = [0u8; 18];
    crate::keys::random_bytes(&mut random)?;
    let password_text = crate::batch::hex(&random);
    let password_file = PathBuf::from(format!("{}.password", out.display()));
    write_private(&password_file, format!("{password_text}\n").as_bytes())?;
    let password = Pkcs12Password::new(password_text).map_err(|e| anyhow!("demo password: {e}"))?;

    let mut parameters = BTreeMap::new();
    parameters.insert("deviceClass".to_owned(), "Surface Vehicle".to_owned());
    parameters.insert("years".to_owned(), "1".to_owned());
    let options = BatchOptions {
        parameters,
        password: Some(password),
        pkcs12: Pkcs12Options::default(),
        out: out.clone(),
        batch_name: format!("demo-{stamp}"),
        threads,
        progress: progress_style(),
        authority: Some(default_authority(data, &profile)?),
        user: None,
        issuer: Some(signer.issuer()),
        on_created: None,
        keypairs: None,
        limits: Default::default(),
    };
    let report = batch::issue_csv(data, ca, &profile, &csv, &options).map_err(batch_error)?;

    // Open one PKCS#12 in-process: MAC, decryption, and that the key belongs to the certificate.
    let check_password =
        Pkcs12Password::new(std::fs::read_to_string(&password_file)?.trim().to_owned())
            .map_err(|e| anyhow!("{e}"))?;
    let checked = check_one_pkcs12(&out, &check_password)?;

    let chain = data.join(&signer.row.key_dir).join("chain.pem");
    println!(
        "issued {} devices in {:.2} s: {:.0} devices/s",
        report.devices,
        report.elapsed.as_secs_f64(),
        report.devices_per_second()
    );
    print_store_share(&report);
    println!("  zip:       {}", out.display());
    println!("  chain:     {}", chain.display());
    println!("  password:  {} (mode 0600)", password_file.display());
    println!("  devices:   {}", csv.display());
    println!("  checked:   {checked}");
    Ok(())
}

/// The default organization's authority for `profile`, created with
/// `CERTMILL_DEFAULT_BALANCE` units (default 1,000,000) if it has none: CLI batches without
/// `--authority` draw on the same balance as the HTTP API's default organization.
fn default_authority(data: &Path, profile: &Profile) -> Result<crate::store::AuthorityId> {
    let balance = match std::env::var("CERTMILL_DEFAULT_BALANCE") {
        Ok(v) => v
            .parse::<u64>()
            .map_err(|_| InvalidInput(format!("CERTMILL_DEFAULT_BALANCE={v:?} is not a number")))?,
        Err(_) => crate::server::DEFAULT_BALANCE,
    };
    let store = crate::store::Store::open(data)?;
    let organization = store.default_organization()?;
    let signers = Signers::load(data, &store, ca_passphrase()?.as_ref())?;
    crate::server::ensure_default_authorities(
        &store,
        organization,
        &signers,
        std::iter::once(profile),
        balance,
    )?;
    store
        .authorities_for(organization)?
        .into_iter()
        .find(|a| a.profile_name == profile.name())
        .map(|a| a.id)
        .ok_or_else(|| {
            anyhow!(
                "the default organization has no authority for {}",
                profile.name()
            )
        })
}

/// `certmill serve`: the CA is loaded (or a development CA created) before the first request.
fn serve(data: &Path, compile: CompileOptions, a: args::ServeArgs) -> Result<()> {
    let first = Profile::from_json(
        crate::profile::SHIPPED[0].1,
        crate::profile::SHIPPED[0].0,
        &compile,
    )?;
    let keypair_queue = a
        .keypair_queue
        .as_deref()
        .map(crate::keys::parse_pool_config)
        .transpose()
        .map_err(|e| InvalidInput(format!("--keypair-queue / CERTMILL_KEYPAIR_QUEUE: {e}")))?;
    // A fresh data directory gets its development CA before the server starts.
    signer_for(data, &first)?;
    let retention_days: u64 = std::env::var("CERTMILL_ZIP_RETENTION_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RETENTION_DAYS);
    crate::server::serve(
        crate::server::ServeConfig {
            listen: a.listen,
            data: data.to_owned(),
            compile,
            profiles_dir: a.profiles,
            limits: crate::server::Limits {
                json: a.max_json_bytes,
                upload: a.max_upload_bytes,
                input: a.input_limits.limits(),
            },
            connections: crate::server::ConnectionLimits {
                header: std::time::Duration::from_secs(a.header_timeout_secs.max(1)),
                body: std::time::Duration::from_secs(a.body_timeout_secs.max(1)),
                max_connections: a.max_connections.max(1),
            },
            default_balance: a.default_balance,
            janitor_interval: std::time::Duration::from_secs(a.janitor_interval_secs.max(1)),
            zip_retention: std::time::Duration::from_secs(retention_days.saturating_mul(86_400)),
            keypair_queue,
            smtp_url: a.smtp_url.filter(|url| !url.is_empty()),
            mail_from: a.mail_from,
            cluster: a.objects.filter(|url| !url.is_empty()).map(|objects| {
                crate::server::cluster::ClusterConfig {
                    objects,
                    node: a
                        .node
                        .unwrap_or_else(crate::server::cluster::default_node_name),
                    chunk_size: a.chunk_size.max(1),
                    lease_secs: a.lease_secs.max(3),
                    poll: std::time::Duration::from_secs(1),
                }
            }),
        },
        ca_passphrase()?,
    )
}

/// The store's CPU share of the batch (Linux), the cost of recording every device.
fn print_store_share(report: &batch::BatchReport) {
    if let Some(share) = report.store_share() {
        println!(
            "  store:     {:.0} ms CPU, {:.1}% of the batch's CPU time",
            report.store_cpu.as_secs_f64() * 1e3,
            share * 100.0
        );
    }
}

/// Opens the first PKCS#12 of a batch ZIP and checks it; returns a one-line description.
fn check_one_pkcs12(zip_path: &Path, password: &Pkcs12Password) -> Result<String> {
    let file =
        std::fs::File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?;
    let mut archive = zip::ZipArchive::new(file).context("reading the batch ZIP")?;
    let mut found = None;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        let name = entry.name()?.into_owned();
        if name.ends_with(".p12") {
            let mut der = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut der)?;
            found = Some((name, der));
            break;
        }
    }
    let (name, der) = found.ok_or_else(|| anyhow!("the ZIP holds no .p12"))?;
    let opened = crate::pkcs12::open(&der, password).with_context(|| format!("opening {name}"))?;
    Ok(format!(
        "{name} opens with the password: MAC valid, key matches its certificate, {} certificate(s)",
        opened.certificates.len()
    ))
}

/// Binds `profile` to its issuer's current signer when the data directory has one (it never
/// creates one): what `Template::new` refuses when a batch starts (a validity outliving the
/// CA, a signature its key cannot make) is refused here too. `None` when there is no such
/// signer to bind to.
fn bind_to_issuer(data: &Path, profile: &Profile) -> Result<Option<String>> {
    if !data.join(crate::store::DATABASE_FILE).exists() {
        return Ok(None);
    }
    let store = Store::open(data)?;
    let loaded = Signers::load(data, &store, ca_passphrase()?.as_ref())
        .with_context(|| format!("loading the signers in {}", data.display()))?;
    let issuer = profile.issuer_name();
    let Some(current) = loaded.current(issuer) else {
        return Ok(None);
    };
    crate::template::Template::new(profile, &current.ca, time::OffsetDateTime::now_utc()).map_err(
        |e| {
            anyhow!(InvalidInput(format!(
                "profile {:?} against issuer {issuer}: {e}",
                profile.name()
            )))
        },
    )?;
    Ok(Some(format!("{issuer}: {}", current.ca.describe())))
}

fn profile_check(data: &Path, file: &str, compile: &CompileOptions, json: bool) -> Result<()> {
    let profile = load_profile(file, compile)?;
    let issuer = bind_to_issuer(data, &profile)?;
    if json {
        let out = serde_json::json!({
            "profileName": profile.name(),
            "profileId": profile.id(),
            "keyAlgorithmInfo": profile.key_algorithm().syntax(),
            "signatureAlgorithm": profile.signature_algorithm().name(),
            "dn": profile.subject_summary(),
            "parameters": profile.parameters(),
            "csvColumns": profile.csv_columns(),
            "issuer": issuer,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("profile {:?}: OK", profile.name());
    println!("  key:        {}", profile.key_algorithm().syntax());
    println!("  signature:  {}", profile.signature_algorithm().name());
    println!("  subject:    {}", profile.subject_summary());
    match &issuer {
        Some(issuer) => println!("  issuer:     {issuer}: the profile fits it"),
        None => println!(
            "  issuer:     {}: no signer in {} (not checked against a CA)",
            profile.issuer_name(),
            data.display()
        ),
    }
    println!("  parameters:");
    for p in profile.parameters() {
        println!(
            "    {:<22} {:<9} scopes {:<20} {}{}",
            p.name,
            if p.required { "required" } else { "optional" },
            p.scopes.join(","),
            p.message.as_deref().unwrap_or(""),
            p.title
                .as_deref()
                .map(|t| format!("  ({t})"))
                .unwrap_or_default()
        );
    }
    println!("  CSV columns:");
    for c in profile.csv_columns() {
        let need = match (&c.required, &c.required_unless_batch_parameter) {
            (true, _) => "required".to_owned(),
            (false, Some(b)) => format!("required unless batch parameter {b} is given"),
            (false, None) => "optional".to_owned(),
        };
        println!("    {:<22} {need}", c.name);
    }
    Ok(())
}

fn certs_find(data: &Path, cn: Option<String>, serial: Option<String>, pem: bool) -> Result<()> {
    if cn.is_none() && serial.is_none() {
        bail!(InvalidInput("give --cn and/or --serial".into()));
    }
    let store = Store::open(data)?;
    let rows = store.find_certificates(cn.as_deref(), serial.as_deref())?;
    if rows.is_empty() {
        eprintln!("no certificate found");
        std::process::exit(EXIT_FAILURE);
    }
    for r in rows {
        println!(
            "{}  batch {}  row {}  serial {}  cn {:?}  {}  valid {} .. {}  file {}",
            r.device_id,
            r.batch_id,
            r.row,
            r.serial_hex,
            r.common_name,
            r.status.as_str(),
            crate::batch::rfc3339(r.not_before),
            crate::batch::rfc3339(r.not_after),
            r.file_name
        );
        if pem {
            let block = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &r.der)
                .map_err(|e| anyhow!("PEM: {e}"))?;
            print!("{block}");
        }
    }
    Ok(())
}

fn batches_list(data: &Path) -> Result<()> {
    let store = Store::open(data)?;
    for b in store.batches()? {
        println!(
            "{:>5}  {:<22} {:<24} {:<5} {:>8}/{:<8} {}  {}",
            b.id.0,
            b.status.as_str(),
            b.profile_name,
            b.kind,
            b.issued,
            b.size,
            crate::batch::rfc3339(b.created_at),
            b.output_path
        );
    }
    Ok(())
}
