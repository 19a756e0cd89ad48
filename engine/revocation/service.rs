//! The revocation service of a data directory: issuing an issuer's CRL to
//! `<data>/crl/issuer-<id>.crl` on schedule, and answering OCSP requests with a delegated
//! responder and a response cache.
//!
//! The schedule comes from the profiles that sign with the issuer ([`CrlSchedule`]): each CRL
//! is valid for the shortest `validityPeriod` and re-issued after the shortest
//! `issuanceFrequency`, or as soon as a revocation changed the issuer's entries. OCSP responses
//! follow the same schedule: a response is valid for `validityPeriod` and re-signed after
//! `issuanceFrequency`, and a revocation drops the cached answers at once.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::crl::{CrlBuilder, CrlError, CrlParams};
use super::ocsp::{
    self, CertStatus, IssuerKeyHashes, OcspError, ParsedRequest, Responder, ResponderKey,
    ResponseStatus, SingleResponse,
};
use super::RevocationReason;
use crate::ca::{CaError, IssuingCa};
use crate::profile::Profile;
use crate::store::{IssuerId, SerialStatus, Store, StoreError};

/// CRL validity when no profile of the issuer states one (RFC 5280 leaves it to the CA; the
/// shipped profiles say 4 days).
pub const DEFAULT_CRL_VALIDITY: Duration = Duration::from_secs(4 * 86_400);
/// CRL issuance interval when no profile of the issuer states one (the shipped profiles say 12
/// hours).
pub const DEFAULT_CRL_FREQUENCY: Duration = Duration::from_secs(12 * 3_600);
/// Folder of the CRLs inside the data directory.
pub const CRL_DIR: &str = "crl";

/// Errors of the revocation service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The CA could not sign (a CRL or a responder certificate).
    #[error("signing failed: {0}")]
    Ca(#[from] CaError),
    /// The CRL could not be built or written.
    #[error(transparent)]
    Crl(#[from] CrlError),
    /// A file or folder of the service could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An OCSP response could not be built or signed.
    #[error(transparent)]
    Ocsp(#[from] OcspError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The system clock is before 1970 or beyond what certificates can encode.
    #[error("the system clock is out of range")]
    Clock,
}

/// When an issuer's CRLs and OCSP responses are made and how long they are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrlSchedule {
    /// How long a CRL (and an OCSP response) is valid: nextUpdate - thisUpdate.
    pub validity: Duration,
    /// How often a CRL is issued (and an OCSP response re-signed) when nothing changed.
    pub frequency: Duration,
}

impl Default for CrlSchedule {
    fn default() -> Self {
        CrlSchedule {
            validity: DEFAULT_CRL_VALIDITY,
            frequency: DEFAULT_CRL_FREQUENCY,
        }
    }
}

impl CrlSchedule {
    /// The strictest schedule of these profiles (shortest validity, shortest interval), or the
    /// defaults where none says; the interval never exceeds the validity.
    pub fn from_profiles<'a>(profiles: impl IntoIterator<Item = &'a Profile>) -> CrlSchedule {
        let mut validity: Option<Duration> = None;
        let mut frequency: Option<Duration> = None;
        for crl in profiles.into_iter().filter_map(Profile::crl) {
            if let Some(v) = crl.validity_period {
                validity = Some(validity.map_or(v, |current| current.min(v)));
            }
            if let Some(f) = crl.issuance_frequency {
                frequency = Some(frequency.map_or(f, |current| current.min(f)));
            }
        }
        let validity = validity.unwrap_or(DEFAULT_CRL_VALIDITY);
        CrlSchedule {
            validity,
            frequency: frequency.unwrap_or(DEFAULT_CRL_FREQUENCY).min(validity),
        }
    }

    fn validity_secs(&self) -> i64 {
        i64::try_from(self.validity.as_secs()).unwrap_or(i64::MAX / 4)
    }

    fn frequency_secs(&self) -> i64 {
        i64::try_from(self.frequency.as_secs()).unwrap_or(i64::MAX / 4)
    }

    /// Whether the issuer needs a new CRL at `now`: none yet, revocations changed since the
    /// last one, its file is gone, or the interval has passed.
    pub fn crl_due(&self, state: &crate::store::CrlState, file: &Path, now: i64) -> bool {
        state.is_stale()
            || state
                .this_update
                .is_none_or(|this| now >= this.saturating_add(self.frequency_secs()))
            || !file.exists()
    }
}

/// Where `issuer`'s CRL is kept.
pub fn crl_path(data: &Path, issuer: IssuerId) -> PathBuf {
    data.join(CRL_DIR).join(format!("issuer-{}.crl", issuer.0))
}

/// A CRL just issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCrl {
    /// Its file.
    pub path: PathBuf,
    /// cRLNumber.
    pub number: u64,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// Revoked certificates listed.
    pub entries: u64,
    /// Size of the DER file.
    pub bytes: u64,
    /// SHA-256 of the file (its ETag).
    pub sha256: [u8; 32],
}

/// Issues `issuer`'s CRL now: takes the next CRL number, streams the issuer's revocations from
/// the store into the CRL (entries of certificates expired longer than one CRL validity ago are
/// left out: RFC 5280 section 5 keeps an entry until it appeared on one CRL issued after the
/// certificate expired), has the CA sign it and renames it into place, then records it.
///
/// Writers are serialised by a lock file, so a CLI `crl issue` and a server never interleave;
/// the file on disk always holds a complete CRL.
pub fn issue_crl(
    data: &Path,
    store: &Store,
    ca: &IssuingCa,
    issuer: IssuerId,
    schedule: &CrlSchedule,
    now: i64,
) -> Result<IssuedCrl, ServiceError> {
    let dir = data.join(CRL_DIR);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServiceError::Io { path, source }
    };
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let lock_path = dir.join(".lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;

    let (number, version) = store.next_crl_number(issuer)?;
    let this_update = now;
    let next_update = now.saturating_add(schedule.validity_secs());
    let algorithm = ca.default_signature_algorithm();
    let mut builder = CrlBuilder::new(
        CrlParams {
            issuer_name_der: ca.subject_der(),
            authority_key_identifier: ca.subject_key_identifier(),
            crl_number: number,
            this_update,
            next_update,
            algorithm,
        },
        &dir,
    )?;
    store.for_each_revocation(
        issuer,
        now.saturating_sub(schedule.validity_secs()),
        |entry| builder.push(&entry),
    )??;
    let path = crl_path(data, issuer);
    let summary = builder.finish(|digest| ca.sign_digest(algorithm, digest), &path)?;
    store.record_crl(issuer, number, this_update, next_update, version)?;
    drop(lock);
    Ok(IssuedCrl {
        path,
        number,
        this_update,
        next_update,
        entries: summary.entries,
        bytes: summary.bytes,
        sha256: summary.sha256,
    })
}

/// The current unix time.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// How many cached OCSP responses the responder keeps before it starts over.
pub const OCSP_CACHE_CAPACITY: usize = 1 << 20;

/// Shards of the response cache, so concurrent requests rarely wait on one lock.
const CACHE_SHARDS: usize = 16;

/// A signed OCSP response kept for its serial.
#[derive(Clone, Debug)]
pub struct CachedResponse {
    /// The OCSPResponse DER.
    pub der: Arc<[u8]>,
    /// thisUpdate of its single response, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds.
    pub next_update: i64,
    /// After this the response is re-signed, unix seconds.
    pub refresh_at: i64,
    /// A strong ETag: hex of the first 16 octets of its SHA-256.
    pub etag: String,
}

/// A cached response with the CertID it answers.
#[derive(Clone, Debug)]
struct CacheEntry {
    cert_id: Arc<[u8]>,
    response: CachedResponse,
}

/// What the responder answers a request with.
#[derive(Clone, Debug)]
pub enum OcspAnswer {
    /// A signed successful response; `cacheable` when HTTP caches may keep it (no nonce).
    Signed {
        /// The response and its times.
        response: CachedResponse,
        /// Whether HTTP caches may keep it.
        cacheable: bool,
    },
    /// An unsuccessful response with only a status (malformedRequest, unauthorized, ...).
    Status(ResponseStatus, Arc<[u8]>),
}

/// The delegated responder currently signing, with its certificate's validity.
struct ActiveResponder {
    responder: Responder,
    not_after: i64,
}

/// An OCSP responder for one issuer: a delegated responder certificate (id-kp-OCSPSigning,
/// ocsp-nocheck) whose key lives in memory only, rotated before it expires, and a cache of
/// signed responses per serial (RFC 5019: responses without a nonce are pre-producible and
/// cacheable).
pub struct OcspService {
    data: PathBuf,
    issuer: IssuerId,
    hashes: IssuerKeyHashes,
    schedule: CrlSchedule,
    active: RwLock<Arc<ActiveResponder>>,
    shards: Vec<Mutex<HashMap<Vec<u8>, CacheEntry>>>,
    /// Bumped by every invalidation; a response computed under an older generation is not
    /// cached (it may predate the revocation that caused the invalidation).
    generation: AtomicU64,
    /// The store's revocation epoch last seen.
    epoch: Mutex<i64>,
}

impl std::fmt::Debug for OcspService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspService")
            .field("issuer", &self.issuer)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

impl OcspService {
    /// Starts the responder for `ca` (registered in the store as `issuer`): a fresh responder
    /// key and certificate.
    pub fn start(
        data: &Path,
        store: &Store,
        ca: &IssuingCa,
        issuer: IssuerId,
        schedule: CrlSchedule,
    ) -> Result<OcspService, ServiceError> {
        let active = new_responder(store, ca, issuer, &schedule, now_unix())?;
        let epoch = store.revocation_epoch()?;
        Ok(OcspService {
            data: data.to_path_buf(),
            issuer,
            hashes: IssuerKeyHashes::new(ca.subject_der(), ca.public_key_bits()),
            schedule,
            active: RwLock::new(Arc::new(active)),
            shards: (0..CACHE_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            generation: AtomicU64::new(0),
            epoch: Mutex::new(epoch),
        })
    }

    /// The issuer this responder answers for.
    pub fn issuer(&self) -> IssuerId {
        self.issuer
    }

    /// The schedule of its responses.
    pub fn schedule(&self) -> CrlSchedule {
        self.schedule
    }

    /// The delegated responder certificate now in use, DER.
    pub fn responder_certificate(&self) -> Vec<u8> {
        self.current().responder.certificate_der.clone()
    }

    fn current(&self) -> Arc<ActiveResponder> {
        match self.active.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the responder certificate when less than two response lifetimes remain, so
    /// every response it signed stays verifiable until its nextUpdate. Returns whether it
    /// rotated.
    pub fn rotate_if_due(&self, store: &Store, ca: &IssuingCa) -> Result<bool, ServiceError> {
        let now = now_unix();
        let margin = self.schedule.validity_secs().saturating_mul(2);
        if self.current().not_after.saturating_sub(now) > margin {
            return Ok(false);
        }
        let next = new_responder(store, ca, self.issuer, &self.schedule, now)?;
        match self.active.write() {
            Ok(mut guard) => *guard = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        self.invalidate_all();
        Ok(true)
    }

    fn shard(&self, serial: &[u8]) -> &Mutex<HashMap<Vec<u8>, CacheEntry>> {
        let index = serial.last().map_or(0, |&b| usize::from(b)) % CACHE_SHARDS;
        &self.shards[index]
    }

    /// The cached answer for a request, if it can be served without the store or a signature:
    /// one CertID of this issuer, no nonce, a cached response not yet due for refresh.
    pub fn cached(&self, request: &ParsedRequest, now: i64) -> Option<CachedResponse> {
        if request.nonce.is_some() || request.certs.len() != 1 {
            return None;
        }
        let cert = &request.certs[0];
        if !self.hashes.matches(cert) {
            return None;
        }
        let shard = match self.shard(&cert.serial).lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        shard
            .get(&cert.serial)
            // The cached bytes echo the CertID they were signed for: another hash algorithm's
            // CertID for the same serial must not get them.
            .filter(|entry| *entry.cert_id == *cert.cert_id_der)
            .map(|entry| &entry.response)
            .filter(|cached| cached.refresh_at > now && cached.next_update > now)
            .cloned()
    }

    /// Answers a parsed request: looks each serial up in the store, signs, and caches what may
    /// be cached. Blocking (store read, signature): run it off async threads.
    pub fn answer(
        &self,
        store: &Store,
        request: &ParsedRequest,
    ) -> Result<OcspAnswer, ServiceError> {
        let now = now_unix();
        if request.certs.iter().any(|cert| !self.hashes.matches(cert)) {
            // RFC 5019 section 2.2.3 / RFC 6960 section 2.3: not a CA this responder serves.
            return Ok(OcspAnswer::Status(
                ResponseStatus::Unauthorized,
                ocsp::error_response(ResponseStatus::Unauthorized).into(),
            ));
        }
        if let Some(response) = self.cached(request, now) {
            return Ok(OcspAnswer::Signed {
                response,
                cacheable: true,
            });
        }
        let generation = self.generation.load(Ordering::Acquire);
        let active = self.current();
        let next_update = now
            .saturating_add(self.schedule.validity_secs())
            .min(active.not_after);
        let mut statuses = Vec::with_capacity(request.certs.len());
        let mut extended_revoke = false;
        let mut cacheable = request.nonce.is_none() && request.certs.len() == 1;
        for cert in &request.certs {
            let status = match store.serial_status(self.issuer, &cert.serial)? {
                SerialStatus::Good { .. } => CertStatus::Good,
                SerialStatus::Revoked {
                    revoked_at, reason, ..
                } => CertStatus::Revoked {
                    revoked_at,
                    // RFC 5280 section 5.3.1: unspecified is better absent; the CRL omits it too.
                    reason: (reason != RevocationReason::Unspecified).then_some(reason),
                },
                SerialStatus::Voided => {
                    // RFC 6960 section 2.2: a serial reserved but never used for a certificate
                    // is "revoked" with certificateHold since 1970-01-01, with the
                    // extended-revoke extension in the response.
                    extended_revoke = true;
                    CertStatus::Revoked {
                        revoked_at: 0,
                        reason: Some(RevocationReason::CertificateHold),
                    }
                }
                SerialStatus::Pending => {
                    // Its certificate may be signed any moment: do not cache "unknown".
                    cacheable = false;
                    CertStatus::Unknown
                }
                SerialStatus::Unknown => CertStatus::Unknown,
            };
            statuses.push(status);
        }
        let singles: Vec<SingleResponse<'_>> = request
            .certs
            .iter()
            .zip(&statuses)
            .map(|(cert, status)| SingleResponse {
                cert_id_der: &cert.cert_id_der,
                status: *status,
                this_update: now,
                next_update: Some(next_update),
            })
            .collect();
        let der = ocsp::build_response(
            &active.responder,
            now,
            &singles,
            request.nonce.as_deref(),
            extended_revoke,
        )?;
        let response = CachedResponse {
            etag: etag_of(&der),
            der: der.into(),
            this_update: now,
            next_update,
            refresh_at: now
                .saturating_add(self.schedule.frequency_secs())
                .min(next_update),
        };
        if cacheable {
            self.insert(&request.certs[0], &response, generation);
        }
        Ok(OcspAnswer::Signed {
            response,
            cacheable: request.nonce.is_none(),
        })
    }

    fn insert(&self, cert: &ocsp::CertIdRequest, response: &CachedResponse, generation: u64) {
        let mut shard = match self.shard(&cert.serial).lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Checked under the shard lock: an invalidation between the store read and here
        // bumped the generation, and this answer may predate its revocation.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if shard.len() >= OCSP_CACHE_CAPACITY / CACHE_SHARDS {
            shard.clear();
        }
        shard.insert(
            cert.serial.clone(),
            CacheEntry {
                cert_id: cert.cert_id_der.clone().into(),
                response: response.clone(),
            },
        );
    }

    /// Drops every cached response (after a revocation, or a responder rotation).
    pub fn invalidate_all(&self) {
        for shard in &self.shards {
            let mut shard = match shard.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            // Bumped while holding each lock, so an insert that checks the generation under
            // the lock cannot slip an old answer in after this shard is cleared.
            self.generation.fetch_add(1, Ordering::AcqRel);
            shard.clear();
        }
    }

    /// Drops the cache when the store's revocation epoch moved (a revocation by another
    /// process, the CLI say). Returns whether it did.
    pub fn sync_with_store(&self, store: &Store) -> Result<bool, ServiceError> {
        let epoch = store.revocation_epoch()?;
        let mut seen = match self.epoch.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *seen == epoch {
            return Ok(false);
        }
        *seen = epoch;
        drop(seen);
        self.invalidate_all();
        Ok(true)
    }

    /// The data directory it serves.
    pub fn data(&self) -> &Path {
        &self.data
    }
}

fn etag_of(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new delegated responder: a fresh key, a certificate from `ca` valid for four response
/// lifetimes (rotated after two, see [`OcspService::rotate_if_due`]), recorded in the store
/// before it is signed so its serial never meets a device's.
fn new_responder(
    store: &Store,
    ca: &IssuingCa,
    issuer: IssuerId,
    schedule: &CrlSchedule,
    now: i64,
) -> Result<ActiveResponder, ServiceError> {
    let key = ResponderKey::generate()?;
    // One hour back for relying parties whose clocks are behind, as for the CA certificates.
    let not_before = now - 3_600;
    let not_after = now
        .saturating_add(schedule.validity_secs().saturating_mul(4))
        .min(ca.not_after_unix());
    let serial = crate::batch::draw_serial(20).map_err(|_| ServiceError::Clock)?;
    let certificate_der =
        ca.issue_ocsp_responder(key.spki_der(), &serial, not_before, not_after)?;
    store.record_ocsp_responder(issuer, &serial, not_before, not_after, &certificate_der)?;
    Ok(ActiveResponder {
        responder: Responder {
            key,
            certificate_der,
        },
        not_after,
    })
}
