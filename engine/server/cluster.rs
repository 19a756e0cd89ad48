//! This server as one node of several sharing a store and an object store (`--objects`):
//! batches are ordered here and issued in chunks by every node's worker
//! ([`crate::batch::chunked`]).

use super::AppState;
use crate::batch::chunked::{self, ChunkTools, Node, Sealer};
use crate::batch::BatchError;
use crate::objects::{ObjectError, ObjectStore};
use crate::revocation::service::{self, IssuedCrl};
use crate::store::{BatchId, ChunkKind, ClaimedChunk, Finished, IssuerId, Store};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a node takes part in chunked batches.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The object store's URL (`s3://bucket/prefix?endpoint=…`, `file:///dir`).
    pub objects: String,
    /// This node's name in the chunk queue (unique per node).
    pub node: String,
    /// Devices per chunk of the batches this node orders.
    pub chunk_size: u64,
    /// Seconds a claimed chunk stays this node's without renewal.
    pub lease_secs: u64,
    /// Longest wait between two looks at the queue when it is empty.
    pub poll: Duration,
}

/// The object key of an issuer's CRL.
fn crl_key(issuer: IssuerId, number: u64) -> String {
    format!("crl/issuer-{}/{number}.crl", issuer.0)
}

/// A node's name when none is given: host name and process id.
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".into());
    format!("{host}-{}", std::process::id())
}

/// The running cluster side of a server.
pub struct Cluster {
    pub(super) config: ClusterConfig,
    pub(super) objects: ObjectStore,
    pub(super) sealer: Sealer,
    /// Raised at shutdown: the worker gives its chunk back and stops.
    stop: AtomicBool,
}

impl Cluster {
    /// Opens the object store and derives the sealing key.
    pub fn open(
        config: ClusterConfig,
        data: &Path,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<Cluster> {
        let objects = ObjectStore::open(&config.objects, runtime)?;
        let sealer = Sealer::open(data)?;
        Ok(Cluster {
            config,
            objects,
            sealer,
            stop: AtomicBool::new(false),
        })
    }

    /// The node description the batch module takes.
    pub(super) fn node<'a>(&'a self, data: &'a Path) -> Node<'a> {
        Node {
            data_dir: data,
            objects: &self.objects,
            sealer: &self.sealer,
            chunk_size: self.config.chunk_size,
        }
    }

    /// Puts a CRL this node issued where the other nodes take it from (they have their own
    /// data directories): `crl/issuer-<id>/<number>.crl`, and deletes the one before it. A
    /// failure is logged; the other nodes keep their CRL until the next one.
    pub fn share_crl(&self, issuer: IssuerId, crl: &IssuedCrl) {
        let objects = self.objects.blocking();
        if let Err(e) = objects.put_file(&crl_key(issuer, crl.number), &crl.path) {
            eprintln!(
                "revocation: sharing CRL {} of issuer {}: {e}",
                crl.number, issuer.0
            );
            return;
        }
        if let Some(previous) = crl.number.checked_sub(1) {
            let _ = objects.delete(&crl_key(issuer, previous));
        }
    }

    /// Takes CRL `number` of `issuer` from the object store into `path` (written beside it,
    /// then renamed into place), unless `path` already holds it. Not there yet (the issuing
    /// node is still putting it) is not an error: the next round looks again.
    pub fn take_crl(&self, issuer: IssuerId, number: u64, path: &Path) {
        if service::read_crl(path).is_ok_and(|crl| crl.number == number) {
            return;
        }
        let key = crl_key(issuer, number);
        let objects = self.objects.blocking();
        let bytes = match objects
            .size(&key)
            .and_then(|size| objects.read_range(&key, 0..size))
        {
            Ok(bytes) => bytes,
            Err(ObjectError::NotFound { .. }) => return,
            Err(e) => {
                eprintln!(
                    "revocation: taking CRL {number} of issuer {}: {e}",
                    issuer.0
                );
                return;
            }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::NamedTempFile::new_in(dir))
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, &bytes)?;
                file.persist(path).map_err(|e| e.error)?;
                Ok(())
            });
        if let Err(e) = written {
            eprintln!(
                "revocation: writing CRL {number} to {}: {e}",
                path.display()
            );
        }
    }

    /// Asks the worker to stop (at shutdown).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the node's worker thread: it claims chunks of any node's batches until shutdown.
pub fn start_worker(state: Arc<AppState>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("certmill-chunks".into())
        .spawn(move || worker(&state))
}

fn worker(state: &AppState) {
    let Some(cluster) = state.cluster.as_ref() else {
        return;
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("certmill-chunk-worker-{i}"))
        .build()
    {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("chunk worker: cannot start its thread pool: {e}");
            return;
        }
    };
    let mut idle = Duration::from_millis(50);
    // Batches this node found it cannot work on, and since when: passed over for
    // SKIP_UNFIT_BATCH, then tried again (the operator may have fixed the node meanwhile).
    let mut unfit: HashMap<BatchId, Instant> = HashMap::new();
    while !cluster.stop.load(Ordering::Relaxed) {
        unfit.retain(|_, since| since.elapsed() < SKIP_UNFIT_BATCH);
        let skipped: Vec<BatchId> = unfit.keys().copied().collect();
        let claimed = Store::open(&state.data).and_then(|store| {
            store.claim_chunk_except(&cluster.config.node, cluster.config.lease_secs, &skipped)
        });
        match claimed {
            Ok(Some(claimed)) => {
                idle = Duration::from_millis(50);
                if let Unfit::Yes = work_on(state, cluster, &pool, &claimed) {
                    unfit.insert(claimed.lease.batch, Instant::now());
                }
            }
            Ok(None) => {
                std::thread::sleep(idle);
                idle = (idle * 2).min(cluster.config.poll);
            }
            Err(e) => {
                eprintln!("chunk worker: {e}");
                std::thread::sleep(cluster.config.poll);
            }
        }
    }
}

/// How long a node passes over a batch it found it cannot work on.
const SKIP_UNFIT_BATCH: Duration = Duration::from_secs(60);

/// Whether the node found it cannot work on a chunk's batch at all.
enum Unfit {
    Yes,
    No,
}

/// Works on one claimed chunk, renewing its lease meanwhile; a failure of the node's own work
/// gives the chunk back to the queue. A node that cannot work on the batch at all (another key,
/// profile or signer than the ordering node's) gives it back without spending an attempt, so a
/// misconfigured node never breaks a batch the others can issue.
fn work_on(
    state: &AppState,
    cluster: &Cluster,
    pool: &rayon::ThreadPool,
    claimed: &ClaimedChunk,
) -> Unfit {
    let lost = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let lease = &claimed.lease;
    let result = std::thread::scope(|scope| {
        scope.spawn(|| renew(state, cluster, claimed, &lost, &done));
        let stop = StopEither(&lost, &cluster.stop);
        let result = run_chunk(state, cluster, pool, claimed, &stop);
        done.store(true, Ordering::Relaxed);
        result
    });
    match result {
        Ok(Finished::Done) => {
            println!(
                "node {}: batch {} chunk {} done (attempt {})",
                lease.node, lease.batch, lease.idx, lease.attempt
            );
        }
        Ok(Finished::Lost) if cluster.stop.load(Ordering::Relaxed) => {
            release(state, claimed, "the node shut down");
        }
        Ok(Finished::Lost) => {
            eprintln!(
                "node {}: batch {} chunk {}: lease lost to another node; its work is dropped",
                lease.node, lease.batch, lease.idx
            );
        }
        Err(e @ BatchError::NotForThisNode(_)) => {
            eprintln!(
                "node {}: batch {} chunk {}: {e}; given back to the other nodes, and this node \
                 passes over the batch for {} s",
                lease.node,
                lease.batch,
                lease.idx,
                SKIP_UNFIT_BATCH.as_secs()
            );
            if let Err(e) = Store::open(&state.data).and_then(|store| store.give_back_chunk(lease))
            {
                eprintln!(
                    "chunk worker: giving back batch {} chunk {}: {e}",
                    lease.batch, lease.idx
                );
            }
            return Unfit::Yes;
        }
        Err(e) => {
            eprintln!(
                "node {}: batch {} chunk {} attempt {} failed: {e}",
                lease.node, lease.batch, lease.idx, lease.attempt
            );
            release(state, claimed, &e.to_string());
        }
    }
    Unfit::No
}

fn release(state: &AppState, claimed: &ClaimedChunk, why: &str) {
    if let Err(e) =
        Store::open(&state.data).and_then(|store| store.release_chunk(&claimed.lease, why))
    {
        eprintln!(
            "chunk worker: releasing batch {} chunk {}: {e}",
            claimed.lease.batch, claimed.lease.idx
        );
    }
}

/// Raised when either flag is: the lease was lost, or the node is shutting down.
struct StopEither<'a>(&'a AtomicBool, &'a AtomicBool);

impl StopEither<'_> {
    fn raised(&self) -> bool {
        self.0.load(Ordering::Relaxed) || self.1.load(Ordering::Relaxed)
    }
}

/// Renews the lease every third of its length until the chunk is done; raises `lost` when the
/// store says another node holds it now.
fn renew(
    state: &AppState,
    cluster: &Cluster,
    claimed: &ClaimedChunk,
    lost: &AtomicBool,
    done: &AtomicBool,
) {
    let every = Duration::from_millis(cluster.config.lease_secs.max(1) * 1000 / 3);
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        waited += step;
        if waited < every {
            continue;
        }
        waited = Duration::ZERO;
        match Store::open(&state.data)
            .and_then(|store| store.renew_lease(&claimed.lease, cluster.config.lease_secs))
        {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::Relaxed);
                return;
            }
            // A store hiccup: try again at the next round; the lease has two more thirds.
            Err(e) => eprintln!("chunk worker: renewing a lease: {e}"),
        }
    }
}

fn run_chunk(
    state: &AppState,
    cluster: &Cluster,
    pool: &rayon::ThreadPool,
    claimed: &ClaimedChunk,
    stop: &StopEither<'_>,
) -> Result<Finished, BatchError> {
    let node = cluster.node(&state.data);
    if claimed.kind == ChunkKind::Assemble {
        return chunked::assemble(&node, claimed);
    }
    let spec = chunked::work_spec(claimed)?;
    let profile = state
        .profiles
        .iter()
        .find(|p| p.profile.name() == spec.profile)
        .ok_or_else(|| {
            BatchError::NotForThisNode(format!(
                "this node does not serve profile {:?}",
                spec.profile
            ))
        })?;
    let signers = state.signers();
    let signer = match signers.by_issuer(IssuerId(spec.issuer)) {
        Some(signer) => signer.clone(),
        None => {
            // Loaded after this node started (another node's `ca init` or rotation).
            let store = Store::open(&state.data)?;
            state
                .reload_signers(&store, false)
                .map_err(|e| BatchError::Cluster(e.to_string()))?;
            state
                .signers()
                .by_issuer(IssuerId(spec.issuer))
                .cloned()
                .ok_or_else(|| {
                    BatchError::NotForThisNode(format!(
                        "this node has no signer for issuer {} (copy its key into the data directory)",
                        spec.issuer
                    ))
                })?
        }
    };
    let tools = ChunkTools {
        ca: &signer.ca,
        profile: &profile.profile,
        pool,
        keypairs: state.keypairs.as_deref(),
        limits: &state.limits.input,
    };
    chunked::issue_chunk(&node, &tools, claimed, &|| stop.raised())
}
