//! `certmill serve`: seed 001's HTTP API over the engine.
//!
//! The layer is thin. Handlers authenticate (`auth_api::Caller`), check the caller may see
//! the object (another organization's batch is 404, so ids cannot be probed), parse the
//! request and hand it to the engine: the store, the batch pipeline, the profile compiler.
//! Every store call and every CPU-heavy step runs on blocking threads (`spawn_blocking`, or the
//! batch's own thread and rayon pool), never on tokio's workers.
//!
//! Routes live in one table (`api::ROUTES`) that builds both the router and the OpenAPI
//! document, so the two cannot drift.

mod api;
mod auth_api;
mod batches;
mod catalog;
pub mod cluster;
mod connections;
mod console;
mod credentials_api;
mod ecosystems_api;
mod error;
mod metrics;
mod organizations_api;
mod revocation_api;
mod signers_api;
mod users_api;

pub use connections::{ConnectionLimits, DEFAULT_MAX_CONNECTIONS};
pub use error::ApiError;

use crate::auth::Auth;
use crate::ca::CaPassphrase;
use crate::keys::{KeyAlgorithm, KeypairQueue};
use crate::profile::{CompileOptions, Profile};
use crate::signers::{LoadedSigner, Signers};
use crate::store::{OrganizationId, Store};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Request body limits (bytes). A request above its limit is answered 413 before its body is
/// read when it declares a Content-Length, and cut off at the limit when it streams.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// JSON and text bodies (`CERTMILL_MAX_JSON_BYTES`, default 1 MiB).
    pub json: u64,
    /// Multipart uploads of CSV and CSR files (`CERTMILL_MAX_UPLOAD_BYTES`, default 512 MiB).
    pub upload: u64,
    /// Bounds on each batch's input (devices, CSV fields and records, CSR bundles).
    pub input: crate::batch::InputLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            json: 1 << 20,
            upload: 512 << 20,
            input: crate::batch::InputLimits::default(),
        }
    }
}

/// Balance of each default-organization authority created on first use
/// (`CERTMILL_DEFAULT_BALANCE`).
pub const DEFAULT_BALANCE: u64 = 1_000_000;

/// How `certmill serve` runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// The data directory: store, CA, batch ZIPs.
    pub data: PathBuf,
    /// Profile compilation (base URL).
    pub compile: CompileOptions,
    /// Extra profile directory (besides the shipped profiles and `<data>/profiles`).
    pub profiles_dir: Option<PathBuf>,
    /// Body limits.
    pub limits: Limits,
    /// Header, idle and body timeouts; the connection cap.
    pub connections: ConnectionLimits,
    /// Balance of the default organization's authorities on first start.
    pub default_balance: u64,
    /// How often the janitor expires old ZIPs.
    pub janitor_interval: Duration,
    /// How long a batch's ZIP is kept.
    pub zip_retention: Duration,
    /// The keypair pool (`CERTMILL_KEYPAIR_QUEUE`): `None` for the default
    /// ([`default_keypair_queue`]), an empty list for no pool.
    pub keypair_queue: Option<Vec<(KeyAlgorithm, usize)>>,
    /// The SMTP relay for password reset mail (`--smtp-url`); `None`: no password reset.
    pub smtp_url: Option<String>,
    /// The sender of that mail (`--mail-from`).
    pub mail_from: String,
    /// This server as one node of several (`--objects`); `None`: batches are issued here into
    /// ZIPs in the data directory.
    pub cluster: Option<cluster::ClusterConfig>,
}

/// Keys per RSA algorithm the default keypair pool holds.
pub const DEFAULT_RSA_POOL_CAPACITY: usize = 64;

/// The keypair pool `certmill serve` starts without `CERTMILL_KEYPAIR_QUEUE`: a queue of
/// [`DEFAULT_RSA_POOL_CAPACITY`] keys for each RSA algorithm a served profile generates keys
/// with (`RSA:2048=64` for the shipped profiles). EC keys take ~15 µs and are not pooled.
pub fn default_keypair_queue(profiles: &[ServedProfile]) -> Vec<(KeyAlgorithm, usize)> {
    let mut config: Vec<(KeyAlgorithm, usize)> = Vec::new();
    for p in profiles {
        let algorithm = p.profile.key_algorithm();
        if p.profile.allows_server_keys()
            && !algorithm.is_ec()
            && !config.iter().any(|(a, _)| *a == algorithm)
        {
            config.push((algorithm, DEFAULT_RSA_POOL_CAPACITY));
        }
    }
    config
}

/// A profile the server offers, with its API id (1-based, in load order).
pub struct ServedProfile {
    /// `profileId`.
    pub id: u64,
    /// The shipped profile's key (`ecc-device`) or the file stem: accepted for `profileId`.
    pub key: String,
    /// The compiled profile.
    pub profile: Profile,
}

/// Shared by every request.
pub struct AppState {
    data: PathBuf,
    auth: Auth,
    /// The signers of every issuer, replaced whole when one changes.
    signers: RwLock<Arc<Signers>>,
    /// The store's signers epoch the loaded signers reflect.
    signers_epoch: AtomicI64,
    /// Serializes reloads of the signers.
    reload: Mutex<()>,
    /// Decrypts CA key files of signers loaded after the start.
    passphrase: Option<CaPassphrase>,
    /// Balance of a default-organization authority made when a profile's issuer gets its
    /// first signer while the server runs.
    default_balance: u64,
    profiles: Vec<ServedProfile>,
    limits: Limits,
    connections: ConnectionLimits,
    metrics: metrics::Metrics,
    running: batches::Running,
    /// Pre-generated device keys, shared by every batch.
    keypairs: Option<Arc<KeypairQueue>>,
    /// CRLs and the OCSP responders of the signers.
    revocation: revocation_api::Revocation,
    /// Password reset mail; `None` without `--smtp-url`.
    outbox: Option<crate::mail::Outbox>,
    /// Where users reach this server (the profiles' `{baseUrl}`), for links in mail.
    public_url: String,
    /// This server as a node of a cluster (`--objects`): batches are issued in chunks.
    cluster: Option<cluster::Cluster>,
}

type Shared = Arc<AppState>;

impl AppState {
    /// Runs `f` with a store connection on a blocking thread.
    async fn store<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    {
        let data = self.data.clone();
        tokio::task::spawn_blocking(move || {
            let store = Store::open(&data)?;
            f(&store)
        })
        .await?
    }

    /// The profile with API id or name `key`, if the caller may use it; 404 otherwise.
    fn profile(
        &self,
        key: &str,
        caller: &crate::auth::Principal,
    ) -> Result<&ServedProfile, ApiError> {
        self.profiles
            .iter()
            .find(|p| p.id.to_string() == key || p.key == key || p.profile.name() == key)
            .filter(|p| caller.may_use_profile(p.profile.name()))
            .ok_or_else(|| ApiError::not_found(format!("no profile {key}")))
    }

    /// The signers loaded now.
    fn signers(&self) -> Arc<Signers> {
        match self.signers.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current signer of the issuer `profile` names; 409 when it has none.
    fn signer_for(&self, profile: &Profile) -> Result<LoadedSigner, ApiError> {
        self.signers()
            .current(profile.issuer_name())
            .cloned()
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "issuer {} of profile {} has no current signer",
                    profile.issuer_name(),
                    profile.name()
                ))
            })
    }

    /// Reloads the signers from the store when its signers epoch moved (or `force`): new
    /// batches then use the new current signers, OCSP and CRLs serve the new set, every
    /// profile's authorities follow its issuer's current signer, and a profile whose issuer
    /// got its first signer gets its default-organization authority. Blocking.
    fn reload_signers(&self, store: &Store, force: bool) -> anyhow::Result<bool> {
        let _guard = match self.reload.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let epoch = store.signers_epoch()?;
        if !force && epoch == self.signers_epoch.load(Ordering::Acquire) {
            return Ok(false);
        }
        let signers = Arc::new(Signers::load(&self.data, store, self.passphrase.as_ref())?);
        self.revocation.sync(store, &signers)?;
        ensure_default_authorities(
            store,
            store.default_organization()?,
            &signers,
            self.profiles.iter().map(|p| &p.profile),
            self.default_balance,
        )?;
        match self.signers.write() {
            Ok(mut guard) => *guard = signers,
            Err(poisoned) => *poisoned.into_inner() = signers,
        }
        self.signers_epoch.store(epoch, Ordering::Release);
        Ok(true)
    }

    /// The served profile named `name`.
    fn profile_named(&self, name: &str) -> Option<&ServedProfile> {
        self.profiles.iter().find(|p| p.profile.name() == name)
    }
}

/// Loads the shipped profiles, then `<data>/profiles/*.json` and `extra/*.json` (sorted by
/// file name); ids follow that order. A profile that does not compile stops the start with
/// its error and file name: a server must not silently drop a profile its users expect. A
/// file over the size limit is refused from its metadata, unread, so a huge or endless file
/// costs neither memory nor time.
pub fn load_profiles(
    data: &Path,
    extra: Option<&Path>,
    compile: &CompileOptions,
) -> anyhow::Result<Vec<ServedProfile>> {
    use anyhow::Context as _;
    let mut profiles: Vec<(String, Profile)> = Vec::new();
    for (name, json) in crate::profile::SHIPPED {
        profiles.push((name.to_string(), Profile::from_json(json, name, compile)?));
    }
    for dir in [Some(data.join("profiles")), extra.map(Path::to_path_buf)]
        .into_iter()
        .flatten()
    {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let profile = Profile::load(&path.display().to_string(), compile)
                .with_context(|| format!("profile {}", path.display()))?;
            if profiles.iter().any(|(_, p)| p.name() == profile.name()) {
                anyhow::bail!(
                    "profile {} ({}) has the name of a profile already loaded",
                    profile.name(),
                    path.display()
                );
            }
            let key = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            profiles.push((key, profile));
        }
    }
    Ok(profiles
        .into_iter()
        .enumerate()
        .map(|(i, (key, profile))| ServedProfile {
            id: i as u64 + 1,
            key,
            profile,
        })
        .collect())
}

/// First start: the admin user, the default organization and its authorities.
///
/// Returns the generated admin password when one was generated (printed once by the caller).
pub fn bootstrap(
    data: &Path,
    signers: &Signers,
    profiles: &[ServedProfile],
    default_balance: u64,
) -> anyhow::Result<Option<String>> {
    let generated = crate::auth::bootstrap_admin(data)?;
    let store = Store::open(data)?;
    let organization = store.default_organization()?;
    ensure_default_authorities(
        &store,
        organization,
        signers,
        profiles.iter().map(|p| &p.profile),
        default_balance,
    )?;
    Ok(generated)
}

/// Gives the default organization an authority for every profile that never had one (an
/// administrator's removal stands), signed by the current signer of the profile's issuer, with
/// `balance` units (a profile whose issuer has no signer gets none yet). Existing authorities
/// keep their balance and follow their profile's current signer.
pub fn ensure_default_authorities<'a>(
    store: &Store,
    organization: OrganizationId,
    signers: &Signers,
    profiles: impl Iterator<Item = &'a Profile> + Clone,
    balance: u64,
) -> anyhow::Result<()> {
    // An authority an administrator removed is not created again.
    let existing = store.authorities_including_removed(organization)?;
    for profile in profiles.clone() {
        let Some(signer) = signers.current(profile.issuer_name()) else {
            continue;
        };
        if !existing.iter().any(|a| a.profile_name == profile.name()) {
            store.create_authority(organization, profile.name(), signer.issuer(), balance)?;
        }
    }
    ensure_authorities_follow(store, signers, profiles)
}

/// Points every authority of each profile at the current signer of the profile's issuer (a
/// profile moved to another issuer; a rotation already moves them in its transaction).
fn ensure_authorities_follow<'a>(
    store: &Store,
    signers: &Signers,
    profiles: impl Iterator<Item = &'a Profile>,
) -> anyhow::Result<()> {
    for profile in profiles {
        if let Some(signer) = signers.current(profile.issuer_name()) {
            store.repoint_authorities(profile.name(), signer.issuer())?;
        }
    }
    Ok(())
}

/// Runs the server until SIGINT or SIGTERM; running batches then finish before it returns.
///
/// Serves every ACTIVE and RETIRED signer in the data directory (`passphrase` decrypts their
/// key files).
pub fn serve(config: ServeConfig, passphrase: Option<CaPassphrase>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("certmill-http")
        .build()?;
    runtime.block_on(run(config, passphrase))
}

/// Everything `run` needs before it listens: profiles, signers, the first start's bootstrap,
/// the keypair pool, revocation, mail and the cluster side.
fn start_state(config: &ServeConfig, passphrase: Option<CaPassphrase>) -> anyhow::Result<Shared> {
    let profiles = load_profiles(
        &config.data,
        config.profiles_dir.as_deref(),
        &config.compile,
    )?;
    let (signers, epoch) = {
        let store = Store::open(&config.data)?;
        let signers = Signers::load(&config.data, &store, passphrase.as_ref())?;
        (signers, store.signers_epoch()?)
    };
    for served in &profiles {
        let issuer = served.profile.issuer_name();
        if signers.current(issuer).is_none() {
            println!(
                "note: profile {:?} names issuer {issuer:?}, which has no current signer; its \
                 batches are refused until `certmill ca init --name {issuer}` (or import)",
                served.profile.name()
            );
        }
    }
    if let Some(password) = bootstrap(&config.data, &signers, &profiles, config.default_balance)? {
        let user = std::env::var("CERTMILL_ADMIN_USER").unwrap_or_else(|_| "admin".into());
        // Printed once, on the first start only; never stored in clear or logged again.
        println!("created user {user:?} with the generated password: {password}");
        println!("(set CERTMILL_ADMIN_PASSWORD before the first start to choose it; `certmill users passwd {user}` changes it)");
    }
    let auth = Auth::open(&config.data)?;
    let pool_config = config
        .keypair_queue
        .clone()
        .unwrap_or_else(|| default_keypair_queue(&profiles));
    let keypairs = if pool_config.is_empty() {
        None
    } else {
        let fillers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let queue = KeypairQueue::start(&pool_config, fillers)?;
        let described: Vec<String> = pool_config
            .iter()
            .map(|(a, n)| format!("{a}={n}"))
            .collect();
        println!(
            "keypair pool: {} ({fillers} filler thread(s) at the lowest priority)",
            described.join(",")
        );
        Some(queue)
    };
    let revocation = start_revocation(&config.data, &signers, &profiles)?;
    let outbox = match &config.smtp_url {
        Some(url) => {
            let mailer = crate::mail::Mailer::new(url, &config.mail_from)?;
            println!("password reset mail: via SMTP, from {}", config.mail_from);
            Some(crate::mail::Outbox::start(mailer)?)
        }
        None => None,
    };
    let cluster = match config.cluster.clone() {
        Some(cluster_config) => {
            let cluster = cluster::Cluster::open(
                cluster_config,
                &config.data,
                tokio::runtime::Handle::current(),
            )?;
            println!(
                "cluster node {:?}: chunks of {} devices, {} s leases, objects in {}",
                cluster.config.node,
                cluster.config.chunk_size,
                cluster.config.lease_secs,
                cluster.objects.describe()
            );
            Some(cluster)
        }
        None => None,
    };
    let state = Arc::new(AppState {
        data: config.data.clone(),
        auth,
        signers: RwLock::new(Arc::new(signers)),
        signers_epoch: AtomicI64::new(epoch),
        reload: Mutex::new(()),
        passphrase,
        default_balance: config.default_balance,
        profiles,
        limits: config.limits,
        connections: config.connections,
        metrics: metrics::Metrics::default(),
        running: batches::Running::default(),
        keypairs,
        revocation,
        outbox,
        public_url: config.compile.base_url.trim_end_matches('/').to_owned(),
        cluster,
    });
    Ok(state)
}

async fn run(config: ServeConfig, passphrase: Option<CaPassphrase>) -> anyhow::Result<()> {
    // The start-up uses the store synchronously (a PostgreSQL store's client drives a runtime
    // of its own, which tokio refuses inside this one): off the async context.
    let state = tokio::task::block_in_place(|| start_state(&config, passphrase))?;
    // The first CRL (or the one on disk) is published before the first request.
    let first = state.clone();
    tokio::task::spawn_blocking(move || revocation_round(&first)).await?;
    let app = api::router(state.clone())
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            connections::body_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let local = listener.local_addr()?;
    println!("certmill listening on http://{local}");
    tokio::spawn(janitor(
        state.clone(),
        config.janitor_interval,
        config.zip_retention,
    ));
    tokio::spawn(revocation_worker(state.clone()));
    let chunk_worker = match state.cluster {
        Some(_) => Some(cluster::start_worker(state.clone())?),
        None => None,
    };
    let limits = config.connections;
    println!(
        "connections: at most {}; headers within {} s, no body pause over {} s",
        limits.max_connections,
        limits.header.as_secs(),
        limits.body.as_secs()
    );
    connections::serve(listener, app, limits, shutdown_signal()).await;
    if let (Some(cluster), Some(worker)) = (&state.cluster, chunk_worker) {
        cluster.stop();
        tokio::task::spawn_blocking(move || worker.join())
            .await?
            .ok();
    }
    let waiting = state.running.count();
    if waiting > 0 {
        println!("shutting down: waiting for {waiting} running batch(es) to finish");
    }
    let running = state.clone();
    tokio::task::spawn_blocking(move || running.running.wait_all()).await?;
    println!("certmill stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    println!("certmill: signal received, no new requests accepted");
}

/// Expires ZIPs past their retention now and every `interval`; on a node of a cluster, also
/// the objects of expired chunked batches.
async fn janitor(state: Shared, interval: Duration, retention: Duration) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        let state = state.clone();
        let result = tokio::task::spawn_blocking(move || {
            let expired = crate::batch::recovery::expire_zips(&state.data, retention)?;
            if let Some(cluster) = &state.cluster {
                let objects = cluster.objects.blocking();
                for batch in &expired {
                    let prefix = format!("batches/{batch}/");
                    for key in objects.list(&prefix).unwrap_or_default() {
                        if let Err(e) = objects.delete(&key) {
                            eprintln!("janitor: {e}");
                        }
                    }
                }
            }
            Ok::<_, crate::batch::BatchError>(expired)
        })
        .await;
        match result {
            Ok(Ok(expired)) if !expired.is_empty() => {
                println!(
                    "janitor: removed the ZIPs of {} expired batch(es)",
                    expired.len()
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("janitor: {e}"),
            Err(e) => eprintln!("janitor: {e}"),
        }
    }
}

/// How often the revocation worker looks for revocations made elsewhere (CLI, other
/// servers), CRLs due and a responder certificate to rotate: revocations made through this
/// server's API reach the CRL within this time (coalesced), and OCSP at once.
const REVOCATION_TICK: Duration = Duration::from_secs(1);

/// The revocation side of the server: the schedule from the served profiles, an OCSP
/// responder per signer, and the fixed CRL file names the profiles' distribution points name.
fn start_revocation(
    data: &Path,
    signers: &Signers,
    profiles: &[ServedProfile],
) -> anyhow::Result<revocation_api::Revocation> {
    let store = Store::open(data)?;
    let schedule =
        crate::revocation::service::CrlSchedule::from_profiles(profiles.iter().map(|p| &p.profile));
    let mut crl_names: Vec<(String, String)> = Vec::new();
    for served in profiles {
        let issuer = served.profile.issuer_name();
        for url in served.profile.crl_urls() {
            match served_path(url).and_then(|path| path.strip_prefix("/crl/").map(str::to_owned)) {
                // `{issuerKeyId}.crl`: every signer's CRL is served under its key id.
                Some(name) if name.contains(crate::template::ISSUER_KEY_ID) => {}
                Some(name) if !name.is_empty() && !name.contains('/') => {
                    match crl_names.iter().find(|(n, _)| *n == name) {
                        None => crl_names.push((name, issuer.to_owned())),
                        Some((_, other)) if !other.eq_ignore_ascii_case(issuer) => println!(
                            "note: profile {:?} names the CRL URL {url}, which already serves \
                             issuer {other:?}; use {{issuerKeyId}} in the URL instead",
                            served.profile.name()
                        ),
                        Some(_) => {}
                    }
                }
                _ => println!(
                    "note: profile {:?} names the CRL URL {url}; certmill serves CRLs at \
                     /crl/<name>, so that URL needs a proxy in front",
                    served.profile.name()
                ),
            }
        }
        for url in served.profile.ocsp_urls() {
            if served_path(url).is_none_or(|path| path != "/ocsp") {
                println!(
                    "note: profile {:?} names the OCSP URL {url}; certmill answers OCSP at \
                     /ocsp, so that URL needs a proxy in front",
                    served.profile.name()
                );
            }
        }
    }
    let revocation = revocation_api::Revocation {
        schedule,
        crl_names,
        signers: RwLock::new(Arc::new(Vec::new())),
    };
    revocation.sync(&store, signers)?;
    Ok(revocation)
}

/// The path of an `http://host[:port]/path` URL.
fn served_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    rest.find('/').map(|i| &rest[i..])
}

/// Checks revocations, CRL and responder now and every [`REVOCATION_TICK`].
async fn revocation_worker(state: Shared) {
    let mut ticks = tokio::time::interval(REVOCATION_TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let round = state.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || revocation_round(&round)).await {
            eprintln!("revocation: {e}");
        }
    }
}

/// One round of the revocation worker: picks up signer changes made elsewhere, then for each
/// signer drops stale OCSP answers, issues the CRL when due and rotates the responder
/// certificate when due. Errors are logged; the next round retries.
fn revocation_round(state: &AppState) {
    use crate::revocation::service;
    // A round runs on a blocking thread: it uses that thread's store connection, as OCSP does.
    let changed = revocation_api::with_reader(&state.data, |store| Ok(store.signers_epoch()?))
        .map(|epoch| epoch != state.signers_epoch.load(Ordering::Acquire));
    if matches!(changed, Ok(true)) {
        let reloaded = Store::open(&state.data)
            .map_err(anyhow::Error::from)
            .and_then(|store| state.reload_signers(&store, false));
        match reloaded {
            Ok(true) => println!("signers: reloaded after a change"),
            Ok(false) => {}
            Err(e) => eprintln!("signers: {e:#}"),
        }
    }
    let signers = state.signers();
    for revocation in state.revocation.signers().iter() {
        let Some(signer) = signers.by_issuer(revocation.issuer) else {
            continue;
        };
        let ca = &signer.ca;
        let result = revocation_api::with_reader(&state.data, |store| {
            revocation.ocsp.sync_with_store(store)?;
            if revocation.ocsp.rotate_if_due(store, ca)? {
                println!(
                    "revocation: OCSP responder certificate of signer {} rotated",
                    signer.row.id
                );
            }
            let path = service::crl_path(&state.data, revocation.issuer);
            let now = service::now_unix();
            let crl_state = store.crl_state(revocation.issuer)?;
            let schedule = &state.revocation.schedule;
            if schedule.crl_due(&crl_state, &path, now) {
                let issued =
                    service::issue_crl(&state.data, store, ca, revocation.issuer, schedule, now)?;
                if let Some(cluster) = &state.cluster {
                    cluster.share_crl(revocation.issuer, &issued);
                }
                revocation.publish(revocation_api::PublishedCrl::from(issued));
            } else if revocation.published().map(|crl| crl.number) != Some(crl_state.crl_number) {
                // Another node issued the store's current CRL (or this node restarted): take
                // it from the object store when this node has none of its own, then serve the
                // file if it is that CRL.
                if let Some(cluster) = &state.cluster {
                    cluster.take_crl(revocation.issuer, crl_state.crl_number, &path);
                }
                if path.exists() {
                    let on_disk = service::read_crl(&path)?;
                    if revocation.published().map(|crl| crl.number) != Some(on_disk.number) {
                        revocation.publish(revocation_api::PublishedCrl::from(on_disk));
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("revocation: signer {}: {e}", signer.row.id);
        }
    }
}

/// Enforces the body limits for every extractor: 413 up front for a declared Content-Length
/// above the limit, and a body that streams past it is cut off with an error.
async fn limit_body(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let upload = request.uri().path().starts_with("/api/v1/batches/upload");
    let limit = if upload {
        state.limits.upload
    } else {
        state.limits.json
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return too_large(limit);
    }
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::new(limited)))
        .await;
    response
}

/// Rewrites the plain-text rejections of axum's extractors (a malformed JSON body, a missing
/// Content-Type, a bad path or query parameter) into the API's JSON error shape, and a body
/// that parses but does not fit the request type (axum's 422) into the 400 of a validation
/// error.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 << 10).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let (status, code) = match parts.status {
        StatusCode::UNPROCESSABLE_ENTITY => (StatusCode::BAD_REQUEST, "invalid_request"),
        StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        StatusCode::METHOD_NOT_ALLOWED => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        StatusCode::NOT_FOUND => (StatusCode::NOT_FOUND, "not_found"),
        s if s.is_server_error() => (s, "server_error"),
        s => (s, "invalid_request"),
    };
    let description = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text.trim().to_owned()
    };
    ApiError::new(status, code, description).into_response()
}

fn too_large(limit: u64) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than the limit of {limit} bytes"),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keypair_queue_pools_the_rsa_algorithms_served() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = load_profiles(dir.path(), None, &CompileOptions::default()).unwrap();
        // The shipped profiles: two EC (not pooled) and two RSA-2048 (one queue).
        assert_eq!(
            default_keypair_queue(&profiles),
            [(KeyAlgorithm::Rsa2048, DEFAULT_RSA_POOL_CAPACITY)]
        );
        let ec_only: Vec<ServedProfile> = profiles
            .into_iter()
            .filter(|p| p.profile.key_algorithm().is_ec())
            .collect();
        assert!(!ec_only.is_empty());
        assert_eq!(default_keypair_queue(&ec_only), []);
    }

    #[test]
    fn a_huge_file_in_the_profile_directory_is_refused_by_name_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = dir.path().join("profiles");
        std::fs::create_dir(&profiles).unwrap();
        // Sparse, 8 GiB: reading it would exhaust the memory of a small server.
        let huge = profiles.join("huge.json");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(8 << 30)
            .unwrap();
        let err = match load_profiles(dir.path(), None, &CompileOptions::default()) {
            Err(err) => format!("{err:#}"),
            Ok(_) => panic!("a profile over the size limit must be refused"),
        };
        assert!(err.contains(&huge.display().to_string()), "{err}");
        assert!(
            err.contains("profile is 8589934592 bytes, over the limit of 262144"),
            "{err}"
        );
    }
}
