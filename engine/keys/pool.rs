//! The keypair pool: device key pairs generated ahead of time, in idle time, so that a burst of
//! RSA devices does not wait ~115 ms per key on the critical path.
//!
//! A [`KeypairQueue`] (named after the profile's key source `KeypairQueue.der_spki`) holds one
//! bounded queue per configured [`KeyAlgorithm`]. Background filler threads, at the lowest OS
//! priority (nice 19 on Linux, per thread), generate keys while a queue is below its capacity
//! and sleep on a condition variable when every queue is full. [`KeypairQueue::take`] pops a
//! ready key, or generates one inline when none is ready: a batch never waits for a filler.
//!
//! Keys live only in this process's memory: they are never written to disk or logged, each is
//! handed out exactly once (popped under the lock), and those still queued are zeroized when the
//! queue is dropped ([`GeneratedKey`] zeroizes on drop). It does not decide which algorithms to
//! pool or how many keys: the caller passes that in (`certmill serve` from
//! `CERTMILL_KEYPAIR_QUEUE`, `certmill bench --pool`).

use super::{generate, GeneratedKey, KeyAlgorithm, KeyError};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest capacity of one queue: 65,536 RSA-4096 keys are about 230 MiB of memory.
pub const MAX_CAPACITY: usize = 65_536;

/// How long a filler waits before trying again after the backend failed to generate a key.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// A pool of pre-generated device key pairs, one bounded queue per key algorithm.
///
/// Dropping it stops the fillers: each finishes the key it is generating (at most one RSA key
/// generation, ~0.1 s for RSA-2048) and exits; the drop waits for them, then zeroizes the keys
/// still queued.
pub struct KeypairQueue {
    shared: Arc<Shared>,
    fillers: Vec<JoinHandle<()>>,
}

/// What the fillers and the takers share.
struct Shared {
    state: Mutex<State>,
    /// Fillers wait here for room in a queue (after a take) or for the stop.
    room: Condvar,
    /// [`KeypairQueue::wait_until_full`] waits here for keys.
    filled: Condvar,
}

struct State {
    lanes: Vec<Lane>,
    /// Takes of algorithms without a queue (generated inline).
    unpooled_inline: u64,
    stopping: bool,
}

/// One algorithm's queue and counters.
struct Lane {
    algorithm: KeyAlgorithm,
    capacity: usize,
    ready: VecDeque<GeneratedKey>,
    /// Keys fillers are generating right now: counted against the capacity, so the fillers
    /// together never overshoot it.
    in_progress: usize,
    served_from_pool: u64,
    generated_inline: u64,
    generated_by_fillers: u64,
    filler_failures: u64,
}

impl Lane {
    fn has_room(&self) -> bool {
        self.ready.len() + self.in_progress < self.capacity
    }

    fn is_full(&self) -> bool {
        self.ready.len() >= self.capacity
    }
}

/// Counters of one algorithm's queue (a snapshot; [`KeypairQueue::stats`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LaneStats {
    /// The algorithm.
    #[serde(serialize_with = "serialize_algorithm")]
    pub algorithm: KeyAlgorithm,
    /// Keys the queue holds when full.
    pub capacity: usize,
    /// Keys ready now.
    pub ready: usize,
    /// Keys [`KeypairQueue::take`] handed out from the queue.
    pub served_from_pool: u64,
    /// Keys [`KeypairQueue::take`] generated on the caller's thread because none was ready.
    pub generated_inline: u64,
    /// Keys the fillers generated.
    pub generated_by_fillers: u64,
    /// Times a filler's key generation failed (it retries after a second).
    pub filler_failures: u64,
}

fn serialize_algorithm<S: serde::Serializer>(a: &KeyAlgorithm, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.syntax())
}

/// Counters of the whole pool: one entry per configured algorithm, in configuration order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    /// Per algorithm.
    pub lanes: Vec<LaneStats>,
    /// Keys taken for algorithms the pool has no queue for (always generated inline).
    pub unpooled_inline: u64,
}

impl PoolStats {
    /// Keys handed out from the queues, all algorithms.
    pub fn served_from_pool(&self) -> u64 {
        self.lanes.iter().map(|l| l.served_from_pool).sum()
    }

    /// Keys generated on the caller's thread, all algorithms (pooled or not).
    pub fn generated_inline(&self) -> u64 {
        self.lanes.iter().map(|l| l.generated_inline).sum::<u64>() + self.unpooled_inline
    }

    /// Keys ready now, all algorithms.
    pub fn ready(&self) -> usize {
        self.lanes.iter().map(|l| l.ready).sum()
    }
}

impl KeypairQueue {
    /// Starts a pool with one queue of `capacity` keys per `(algorithm, capacity)` entry and
    /// `fillers` background threads, which begin filling at once.
    ///
    /// Entries with capacity 0 are left out; a later entry for the same algorithm replaces an
    /// earlier one; capacities above [`MAX_CAPACITY`] are clamped to it. With 0 fillers nothing
    /// is generated ahead and every [`take`](Self::take) generates inline.
    pub fn start(
        config: &[(KeyAlgorithm, usize)],
        fillers: usize,
    ) -> Result<Arc<KeypairQueue>, KeyError> {
        let mut lanes: Vec<Lane> = Vec::new();
        for &(algorithm, capacity) in config {
            lanes.retain(|l| l.algorithm != algorithm);
            if capacity == 0 {
                continue;
            }
            let capacity = capacity.min(MAX_CAPACITY);
            lanes.push(Lane {
                algorithm,
                capacity,
                ready: VecDeque::with_capacity(capacity),
                in_progress: 0,
                served_from_pool: 0,
                generated_inline: 0,
                generated_by_fillers: 0,
                filler_failures: 0,
            });
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                lanes,
                unpooled_inline: 0,
                stopping: false,
            }),
            room: Condvar::new(),
            filled: Condvar::new(),
        });
        let mut queue = KeypairQueue {
            shared,
            fillers: Vec::with_capacity(fillers),
        };
        for index in 0..fillers {
            let shared = Arc::clone(&queue.shared);
            let handle = std::thread::Builder::new()
                .name(format!("certmill-keypair-{index}"))
                .spawn(move || fill(&shared))
                // On failure `queue` is dropped here, which stops the fillers already started.
                .map_err(|source| KeyError::FillerThread { source })?;
            queue.fillers.push(handle);
        }
        Ok(Arc::new(queue))
    }

    /// A key of `algorithm`: a pooled one if one is ready, else one generated now on the
    /// caller's thread. Never waits for a filler. The key is handed out once and belongs to the
    /// caller from then on.
    pub fn take(&self, algorithm: KeyAlgorithm) -> Result<GeneratedKey, KeyError> {
        {
            let mut state = self.shared.lock();
            match state.lanes.iter_mut().find(|l| l.algorithm == algorithm) {
                Some(lane) => match lane.ready.pop_front() {
                    Some(key) => {
                        lane.served_from_pool += 1;
                        drop(state);
                        // There is room again: wake one sleeping filler.
                        self.shared.room.notify_one();
                        return Ok(key);
                    }
                    None => lane.generated_inline += 1,
                },
                None => state.unpooled_inline += 1,
            }
        }
        generate(algorithm)
    }

    /// Waits until every queue is full or `timeout` has passed; returns whether every queue
    /// was full. For benchmarks and tests: issuing never needs to wait.
    pub fn wait_until_full(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if state.lanes.iter().all(Lane::is_full) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || state.stopping {
                return false;
            }
            state = match self.shared.filled.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PoolStats {
        let state = self.shared.lock();
        PoolStats {
            lanes: state
                .lanes
                .iter()
                .map(|l| LaneStats {
                    algorithm: l.algorithm,
                    capacity: l.capacity,
                    ready: l.ready.len(),
                    served_from_pool: l.served_from_pool,
                    generated_inline: l.generated_inline,
                    generated_by_fillers: l.generated_by_fillers,
                    filler_failures: l.filler_failures,
                })
                .collect(),
            unpooled_inline: state.unpooled_inline,
        }
    }

    /// The configured algorithms and capacities, in configuration order.
    pub fn config(&self) -> Vec<(KeyAlgorithm, usize)> {
        let state = self.shared.lock();
        state
            .lanes
            .iter()
            .map(|l| (l.algorithm, l.capacity))
            .collect()
    }
}

impl Drop for KeypairQueue {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.room.notify_all();
        self.shared.filled.notify_all();
        for filler in self.fillers.drain(..) {
            // A filler that panicked has nothing left to clean up; its keys are in the lanes.
            let _ = filler.join();
        }
    }
}

impl fmt::Debug for KeypairQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counters only: never the keys.
        f.debug_struct("KeypairQueue")
            .field("stats", &self.stats())
            .field("fillers", &self.fillers.len())
            .finish()
    }
}

impl Shared {
    /// The state, even after a panic in another holder: the state is counters and a queue of
    /// whole keys, each update a single push or pop, so it is consistent whenever unlocked.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A filler thread: lowers its priority, then generates keys for the emptiest queue while any
/// has room, and sleeps on `room` while none has.
fn fill(shared: &Shared) {
    lower_thread_priority();
    let mut state = shared.lock();
    loop {
        if state.stopping {
            return;
        }
        // The queue with the smallest fill ratio goes first, so a small RSA-3072 queue is not
        // starved behind a large RSA-2048 one.
        let next = state
            .lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.has_room())
            .min_by_key(|(_, l)| {
                // ready+in_progress over capacity, compared as fractions without floats.
                ((l.ready.len() + l.in_progress) as u128 * 1_000_000) / l.capacity as u128
            })
            .map(|(i, l)| (i, l.algorithm));
        let Some((index, algorithm)) = next else {
            state = match shared.room.wait(state) {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            continue;
        };
        state.lanes[index].in_progress += 1;
        drop(state);
        let generated = generate(algorithm);
        state = shared.lock();
        let stopping = state.stopping;
        let lane = &mut state.lanes[index];
        lane.in_progress -= 1;
        match generated {
            Ok(key) => {
                lane.generated_by_fillers += 1;
                if !stopping {
                    lane.ready.push_back(key);
                }
                shared.filled.notify_all();
            }
            Err(_) => {
                // The backend's failure is not a key and not the caller's error: count it and
                // back off, so a broken RNG does not turn the filler into a busy loop. Takers
                // still generate inline and see the error themselves.
                lane.filler_failures += 1;
                state = match shared.room.wait_timeout(state, RETRY_AFTER_FAILURE) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
        }
    }
}

/// Puts the calling thread at nice 19, the lowest priority, so fillers run only on CPU time
/// nothing else wants. On Linux, `setpriority(PRIO_PROCESS, tid, ...)` changes one thread (the
/// nice value is per thread there), not the whole process. Elsewhere it does nothing. Failure
/// is ignored: the pool still works at normal priority.
///
/// The crate's one foreign call outside the KDF: two plain syscalls, no memory shared.
#[allow(unsafe_code)]
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid(2) takes no arguments, touches no memory and cannot fail.
        let tid = unsafe { libc::gettid() };
        // SAFETY: setpriority(2) takes plain integers and touches no memory of ours; a bad id
        // or a refused value only makes it return -1, which is ignored (see above).
        // `id_t` is unsigned and a thread id is positive, so the cast keeps the value.
        #[allow(clippy::cast_sign_loss)]
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) };
    }
}

/// Parses a pool configuration: comma-separated `ALGORITHM=CAPACITY` entries in the profile key
/// syntax, such as `RSA:2048=200,RSA:3072=20`. An empty string or `0` means no pool (an empty
/// list); entries of capacity 0 are left out.
pub fn parse_config(text: &str) -> Result<Vec<(KeyAlgorithm, usize)>, KeyError> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok(Vec::new());
    }
    let mut config: Vec<(KeyAlgorithm, usize)> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let bad = |reason| KeyError::PoolConfig {
            entry: entry.to_owned(),
            reason,
        };
        let (algorithm, capacity) = entry
            .split_once('=')
            .ok_or_else(|| bad(PoolConfigDefect::NotAnAssignment))?;
        let algorithm = KeyAlgorithm::from_syntax(algorithm.trim())
            .ok_or_else(|| bad(PoolConfigDefect::UnknownAlgorithm))?;
        let capacity: usize = capacity
            .trim()
            .parse()
            .map_err(|_| bad(PoolConfigDefect::BadCapacity))?;
        if capacity > MAX_CAPACITY {
            return Err(bad(PoolConfigDefect::BadCapacity));
        }
        if config.iter().any(|(a, _)| *a == algorithm) {
            return Err(bad(PoolConfigDefect::Duplicate));
        }
        config.push((algorithm, capacity));
    }
    config.retain(|(_, capacity)| *capacity > 0);
    Ok(config)
}

/// What is wrong with one entry of a pool configuration ([`parse_config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolConfigDefect {
    /// The capacity is not a whole number from 0 to [`MAX_CAPACITY`].
    #[error("the capacity is not a whole number from 0 to 65536")]
    BadCapacity,
    /// The algorithm appears twice.
    #[error("the algorithm appears twice")]
    Duplicate,
    /// No `=` between algorithm and capacity.
    #[error("expected ALGORITHM=CAPACITY, such as RSA:2048=64")]
    NotAnAssignment,
    /// The algorithm is not in the profile key syntax.
    #[error("unknown algorithm (expected EC:P-256, EC:P-384, RSA:2048, RSA:3072 or RSA:4096)")]
    UnknownAlgorithm,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const WAIT: Duration = Duration::from_secs(60);

    #[test]
    fn fills_to_capacity_and_stops() {
        let queue = KeypairQueue::start(&[(KeyAlgorithm::EcP256, 8)], 2).unwrap();
        assert!(queue.wait_until_full(WAIT));
        // Give the fillers the chance to overshoot, were they able to.
        std::thread::sleep(Duration::from_millis(50));
        let stats = queue.stats();
        assert_eq!(stats.lanes.len(), 1);
        let lane = &stats.lanes[0];
        assert_eq!(lane.ready, 8);
        assert_eq!(lane.capacity, 8);
        assert_eq!(
            lane.generated_by_fillers, 8,
            "fillers generated past the capacity"
        );
        assert_eq!(lane.served_from_pool, 0);
        assert_eq!(lane.generated_inline, 0);
    }

    #[test]
    fn takes_are_served_from_the_pool_then_inline_and_the_pool_refills() {
        let queue = KeypairQueue::start(&[(KeyAlgorithm::EcP256, 4)], 1).unwrap();
        assert!(queue.wait_until_full(WAIT));
        for _ in 0..3 {
            let key = queue.take(KeyAlgorithm::EcP256).unwrap();
            assert_eq!(key.algorithm(), KeyAlgorithm::EcP256);
        }
        let stats = queue.stats();
        assert_eq!(stats.served_from_pool(), 3);
        assert_eq!(stats.generated_inline(), 0);
        // Refills after the takes: 4 + 3 generated in all, 4 ready.
        assert!(queue.wait_until_full(WAIT));
        let lane = &queue.stats().lanes[0];
        assert_eq!(lane.ready, 4);
        assert_eq!(lane.generated_by_fillers, 7);
    }

    #[test]
    fn an_empty_pool_generates_inline() {
        // No fillers: nothing is ever ready, every take generates on the caller's thread.
        let queue = KeypairQueue::start(&[(KeyAlgorithm::EcP256, 4)], 0).unwrap();
        assert!(!queue.wait_until_full(Duration::from_millis(10)));
        let a = queue.take(KeyAlgorithm::EcP256).unwrap();
        let b = queue.take(KeyAlgorithm::EcP256).unwrap();
        assert_ne!(a.spki_der(), b.spki_der());
        // An algorithm without a queue is generated inline too, and counted apart.
        let c = queue.take(KeyAlgorithm::EcP384).unwrap();
        assert_eq!(c.algorithm(), KeyAlgorithm::EcP384);
        let stats = queue.stats();
        assert_eq!(stats.lanes[0].generated_inline, 2);
        assert_eq!(stats.lanes[0].served_from_pool, 0);
        assert_eq!(stats.unpooled_inline, 1);
        assert_eq!(stats.generated_inline(), 3);
        assert_eq!(stats.ready(), 0);
    }

    /// Several threads take at once, from a pool being refilled: no key is handed out twice,
    /// and every take is counted exactly once.
    #[test]
    fn each_key_is_handed_out_once() {
        let queue = KeypairQueue::start(&[(KeyAlgorithm::EcP256, 16)], 2).unwrap();
        assert!(queue.wait_until_full(WAIT));
        let takers = 4;
        let per_taker = 40;
        let keys: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..takers)
                .map(|_| {
                    scope.spawn(|| {
                        (0..per_taker)
                            .map(|_| {
                                let key = queue.take(KeyAlgorithm::EcP256).unwrap();
                                // The private key identifies the pair; checked apart below.
                                key.pkcs8_der().to_vec()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(keys.len(), takers * per_taker);
        let unique: HashSet<&Vec<u8>> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "a key was handed out twice");
        let stats = queue.stats();
        assert_eq!(
            stats.served_from_pool() + stats.generated_inline(),
            (takers * per_taker) as u64
        );
        assert!(stats.served_from_pool() >= 16, "{stats:?}");
    }

    #[test]
    fn drop_stops_the_fillers() {
        let queue = KeypairQueue::start(&[(KeyAlgorithm::EcP256, MAX_CAPACITY)], 2).unwrap();
        let shared = Arc::downgrade(&queue.shared);
        // Let them work a little; the queue is far from full when it is dropped.
        std::thread::sleep(Duration::from_millis(20));
        drop(queue);
        // Every filler held a reference to the shared state: none is left, so all exited.
        assert!(shared.upgrade().is_none(), "a filler outlived the queue");
    }

    #[test]
    fn several_algorithms_each_get_their_queue() {
        let queue = KeypairQueue::start(
            &[
                (KeyAlgorithm::EcP256, 3),
                (KeyAlgorithm::EcP384, 2),
                (KeyAlgorithm::Rsa2048, 0),
            ],
            1,
        )
        .unwrap();
        assert_eq!(
            queue.config(),
            [(KeyAlgorithm::EcP256, 3), (KeyAlgorithm::EcP384, 2)]
        );
        assert!(queue.wait_until_full(WAIT));
        let key = queue.take(KeyAlgorithm::EcP384).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcP384);
        let stats = queue.stats();
        assert_eq!(stats.lanes[1].served_from_pool, 1);
        assert_eq!(stats.lanes[0].served_from_pool, 0);
    }

    /// A pooled RSA key is a whole, consistent key pair: its PKCS#8 yields its SPKI.
    #[test]
    fn pooled_rsa_key_is_consistent() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::KeyPair;
        let queue = KeypairQueue::start(&[(KeyAlgorithm::Rsa2048, 1)], 1).unwrap();
        assert!(queue.wait_until_full(WAIT));
        let key = queue.take(KeyAlgorithm::Rsa2048).unwrap();
        assert_eq!(queue.stats().served_from_pool(), 1);
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(key.pkcs8_der()).unwrap();
        assert_eq!(pair.public_modulus_len(), 256);
        assert_eq!(pair.public_key().as_der().unwrap().as_ref(), key.spki_der());
    }

    #[test]
    fn debug_shows_counters_only() {
        let queue = KeypairQueue::start(&[(KeyAlgorithm::EcP256, 1)], 1).unwrap();
        assert!(queue.wait_until_full(WAIT));
        let shown = format!("{queue:?}");
        assert!(shown.contains("ready: 1"), "{shown}");
        assert!(!shown.contains("pkcs8"), "{shown}");
    }

    #[test]
    fn parses_the_configuration_syntax() {
        use KeyAlgorithm::*;
        assert_eq!(
            parse_config("RSA:2048=200,RSA:3072=20").unwrap(),
            [(Rsa2048, 200), (Rsa3072, 20)]
        );
        assert_eq!(
            parse_config(" EC:P-256 = 5 , RSA:4096=0").unwrap(),
            [(EcP256, 5)]
        );
        assert_eq!(parse_config("").unwrap(), []);
        assert_eq!(parse_config("0").unwrap(), []);
        let defect = |text| match parse_config(text) {
            Err(KeyError::PoolConfig { reason, .. }) => reason,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(defect("RSA:2048"), PoolConfigDefect::NotAnAssignment);
        assert_eq!(defect("RSA:1024=5"), PoolConfigDefect::UnknownAlgorithm);
        assert_eq!(defect("rsa:2048=5"), PoolConfigDefect::UnknownAlgorithm);
        assert_eq!(defect("RSA:2048=-1"), PoolConfigDefect::BadCapacity);
        assert_eq!(defect("RSA:2048=65537"), PoolConfigDefect::BadCapacity);
        assert_eq!(defect("RSA:2048=1,RSA:2048=2"), PoolConfigDefect::Duplicate);
        let message = parse_config("RSA:2048=x").unwrap_err().to_string();
        assert!(message.contains("RSA:2048=x"), "{message}");
    }
}
