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
    /// A CRL file (taken over from another node) is not a CRL with a number and both times.
    #[error("{}: not a CRL certmill can serve: {reason}", path.display())]
    NotACrl {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The system's random generator failed (drawing a responder certificate's serial).
    #[error("drawing a serial number failed: {0}")]
    Random(#[from] crate::keys::KeyError),
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

/// id-ce-cRLNumber (RFC 5280 section 5.2.3).
const ID_CE_CRL_NUMBER: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.29.20");

/// What a CRL file says of itself: its number, times and SHA-256, for a node that serves a
/// CRL another node (or an earlier run) issued.
pub fn read_crl(path: &Path) -> Result<IssuedCrl, ServiceError> {
    use der::Decode;
    let bytes = fs::read(path).map_err(|source| ServiceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let not_a_crl = |reason: String| ServiceError::NotACrl {
        path: path.to_path_buf(),
        reason,
    };
    let list =
        x509_cert::crl::CertificateList::from_der(&bytes).map_err(|e| not_a_crl(e.to_string()))?;
    let tbs = &list.tbs_cert_list;
    let number = tbs
        .crl_extensions
        .iter()
        .flatten()
        .find(|extension| extension.extn_id == ID_CE_CRL_NUMBER)
        .and_then(|extension| der::asn1::UintRef::from_der(extension.extn_value.as_bytes()).ok())
        .and_then(|number| {
            let octets = number.as_bytes();
            (octets.len() <= 8).then(|| {
                octets
                    .iter()
                    .fold(0u64, |value, octet| value << 8 | u64::from(*octet))
            })
        })
        .ok_or_else(|| not_a_crl("no cRLNumber of at most 64 bits".into()))?;
    let unix = |time: &x509_cert::time::Time| {
        i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
    };
    let next_update = tbs
        .next_update
        .as_ref()
        .map(unix)
        .ok_or_else(|| not_a_crl("no nextUpdate".into()))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    Ok(IssuedCrl {
        path: path.to_path_buf(),
        number,
        this_update: unix(&tbs.this_update),
        next_update,
        entries: tbs
            .revoked_certificates
            .as_ref()
            .map_or(0, |r| r.len() as u64),
        bytes: bytes.len() as u64,
        sha256: digest
            .as_ref()
            .try_into()
            .map_err(|_| not_a_crl("SHA-256 is 32 octets".into()))?,
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
        store: &Store,
        ca: &IssuingCa,
        issuer: IssuerId,
        schedule: CrlSchedule,
    ) -> Result<OcspService, ServiceError> {
        let active = new_responder(store, ca, issuer, &schedule, now_unix())?;
        let epoch = store.revocation_epoch()?;
        Ok(OcspService {
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

    /// Whether this responder answers for the request: its first CertID names this issuer
    /// (a request for several issuers is then refused by [`OcspService::answer`]).
    pub fn serves(&self, request: &ParsedRequest) -> bool {
        request
            .certs
            .first()
            .is_some_and(|cert| self.hashes.matches(cert))
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
    /// be cached. Blocking (store read, signature): run it off async threads, after
    /// [`OcspService::cached`] found nothing.
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
        let generation = self.generation.load(Ordering::Acquire);
        let active = self.current();
        let next_update = now
            .saturating_add(self.schedule.validity_secs())
            .min(active.not_after);
        let mut statuses = Vec::with_capacity(request.certs.len());
        let mut extended_revoke = false;
        // HTTP caches may keep an answer without a nonce; this cache keeps single answers.
        let mut http_cacheable = request.nonce.is_none();
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
                    // Its certificate may be signed any moment: nobody may cache "unknown".
                    http_cacheable = false;
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
        if http_cacheable && request.certs.len() == 1 {
            self.insert(&request.certs[0], &response, generation);
        }
        Ok(OcspAnswer::Signed {
            response,
            cacheable: http_cacheable,
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
}

fn etag_of(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    crate::batch::hex(&digest.as_ref()[..16])
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
    let serial = crate::batch::draw_serial(20)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asn1;
    use crate::ca::CaInitOptions;
    use crate::store::{BatchStatus, CertificateRecord, NewBatch};
    use der::Decode;

    struct Setup {
        dir: tempfile::TempDir,
        store: Store,
        ca: IssuingCa,
        issuer: IssuerId,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = IssuingCa::init(dir.path(), &CaInitOptions::default()).expect("CA");
        let store = Store::open(dir.path()).expect("store");
        let issuer = store
            .register_issuer(ca.certificate_der(), &ca.describe())
            .expect("issuer");
        Setup {
            dir,
            store,
            ca,
            issuer,
        }
    }

    fn serial(row: u64) -> Vec<u8> {
        let mut s = vec![0x11; 8];
        s.extend_from_slice(&row.to_be_bytes());
        s
    }

    /// A finished batch of `n` recorded certificates (rows 0..n) plus one serial reserved for
    /// row `n` and never used; returns the batch.
    fn issue(s: &mut Setup, n: u64) -> crate::store::BatchId {
        issue_kind(s, n, "GENERATOR")
    }

    /// [`issue`] with a batch of `kind`.
    fn issue_kind(s: &mut Setup, n: u64, kind: &'static str) -> crate::store::BatchId {
        let batch = s
            .store
            .create_batch(&NewBatch {
                batch_name: "t",
                profile_name: "ecc-device",
                kind,
                size: n + 1,
                issuer: s.issuer,
                parameters_json: "{}",
                output_path: "/dev/null",
            })
            .expect("batch");
        let unused = serial(n);
        s.store
            .reserve_serials(batch, s.issuer, &[(n, &unused)])
            .expect("reserve");
        let now = now_unix();
        let records: Vec<CertificateRecord> = (0..n)
            .map(|row| CertificateRecord {
                device_id: {
                    let mut id = [7u8; 16];
                    id[8..].copy_from_slice(&row.to_be_bytes());
                    id
                },
                row,
                common_name: format!("d{row}"),
                serial: serial(row),
                not_before: now,
                not_after: now + 86_400,
                der: vec![0x30, 0x00],
                file_name: format!("d{row}.p12"),
            })
            .collect();
        s.store
            .insert_certificates(batch, &records)
            .expect("record");
        batch
    }

    /// An OCSPRequest for `serials` of the setup's CA (SHA-1 CertIDs), with a nonce if given.
    fn request(s: &Setup, serials: &[Vec<u8>], nonce: Option<&[u8]>) -> ParsedRequest {
        let sha1 = |data: &[u8]| {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
                .as_ref()
                .to_vec()
        };
        let algorithm = asn1::tlv_parts(
            asn1::SEQUENCE,
            &[&[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a], &[0x05, 0x00]],
        );
        let name_hash = asn1::tlv(asn1::OCTET_STRING, &sha1(s.ca.subject_der()));
        let key_hash = asn1::tlv(asn1::OCTET_STRING, &sha1(s.ca.public_key_bits()));
        let mut list = Vec::new();
        for serial in serials {
            let cert_id = asn1::tlv_parts(
                asn1::SEQUENCE,
                &[
                    &algorithm,
                    &name_hash,
                    &key_hash,
                    &asn1::unsigned_integer(serial),
                ],
            );
            list.extend(asn1::tlv(asn1::SEQUENCE, &cert_id));
        }
        let list = asn1::tlv(asn1::SEQUENCE, &list);
        let mut tbs = list;
        if let Some(nonce) = nonce {
            let value = asn1::tlv(asn1::OCTET_STRING, &asn1::tlv(asn1::OCTET_STRING, nonce));
            let oid = [
                0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02,
            ];
            let extension = asn1::tlv_parts(asn1::SEQUENCE, &[&oid, &value]);
            let extensions = asn1::tlv(asn1::SEQUENCE, &extension);
            tbs.extend(asn1::tlv(asn1::context_constructed(2), &extensions));
        }
        let der = asn1::tlv(asn1::SEQUENCE, &asn1::tlv(asn1::SEQUENCE, &tbs));
        ocsp::parse_request(&der).expect("parse our own request")
    }

    /// The status of the single response, as x509-ocsp decodes it: "Good", "Revoked" or
    /// "Unknown".
    fn status_of(answer: &OcspAnswer) -> String {
        let OcspAnswer::Signed { response, .. } = answer else {
            panic!("not signed: {answer:?}");
        };
        let outer = x509_ocsp::OcspResponse::from_der(&response.der).expect("OCSPResponse");
        let bytes = outer.response_bytes.expect("responseBytes");
        let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes())
            .expect("BasicOCSPResponse");
        let status = format!("{:?}", basic.tbs_response_data.responses[0].cert_status);
        status.split('(').next().unwrap_or_default().to_owned()
    }

    fn der_of(answer: &OcspAnswer) -> Vec<u8> {
        match answer {
            OcspAnswer::Signed { response, .. } => response.der.to_vec(),
            OcspAnswer::Status(_, der) => der.to_vec(),
        }
    }

    #[test]
    fn answers_are_cached_until_a_revocation_and_the_store_is_the_truth() {
        let mut s = setup();
        let batch = issue(&mut s, 3);
        s.store
            .finish_batch(batch, BatchStatus::BatchIssuedPartly)
            .expect("finish");
        let service =
            OcspService::start(&s.store, &s.ca, s.issuer, CrlSchedule::default()).expect("service");
        let good = request(&s, &[serial(0)], None);
        assert!(service.cached(&good, now_unix()).is_none());
        let first = service.answer(&s.store, &good).expect("answer");
        assert_eq!(status_of(&first), "Good");
        let hit = service
            .cached(&good, now_unix())
            .expect("cached after the first answer");
        assert_eq!(*hit.der, *der_of(&first));

        // A revocation in the store: the epoch moves and the cache goes.
        s.store
            .revoke_serial(
                s.issuer,
                &serial(0),
                RevocationReason::KeyCompromise,
                "test",
            )
            .expect("revoke");
        assert!(service.sync_with_store(&s.store).expect("sync"));
        assert!(service.cached(&good, now_unix()).is_none());
        assert!(!service.sync_with_store(&s.store).expect("sync again"));
        assert_eq!(
            status_of(&service.answer(&s.store, &good).expect("answer")),
            "Revoked"
        );

        // A nonce is answered afresh, echoed, and never cached.
        let with_nonce = request(&s, &[serial(1)], Some(&[9; 16]));
        let answer = service.answer(&s.store, &with_nonce).expect("answer");
        assert!(matches!(
            answer,
            OcspAnswer::Signed {
                cacheable: false,
                ..
            }
        ));
        assert!(der_of(&answer).windows(16).any(|w| w == [9; 16]));
        assert!(service
            .cached(&request(&s, &[serial(1)], None), now_unix())
            .is_none());
    }

    #[test]
    fn unknown_pending_voided_and_foreign_serials() {
        let mut s = setup();
        let batch = issue_kind(&mut s, 1, "CSR");
        let service =
            OcspService::start(&s.store, &s.ca, s.issuer, CrlSchedule::default()).expect("service");
        // Reserved for a batch still issuing: unknown, and nobody may cache it.
        let pending = request(&s, &[serial(1)], None);
        let answer = service.answer(&s.store, &pending).expect("answer");
        assert_eq!(status_of(&answer), "Unknown");
        assert!(matches!(
            answer,
            OcspAnswer::Signed {
                cacheable: false,
                ..
            }
        ));
        assert!(service.cached(&pending, now_unix()).is_none());
        // Recorded, but its CSR batch has not finished (nor been voided): unknown, uncached.
        let recorded = request(&s, &[serial(0)], None);
        let answer = service.answer(&s.store, &recorded).expect("answer");
        assert_eq!(status_of(&answer), "Unknown");
        assert!(service.cached(&recorded, now_unix()).is_none());
        // The batch ends without it: never issued, "revoked" since 1970 (RFC 6960 2.2).
        s.store
            .finish_batch(batch, BatchStatus::BatchIssuedPartly)
            .expect("finish");
        let answer = service.answer(&s.store, &pending).expect("answer");
        assert_eq!(status_of(&answer), "Revoked");
        let extended_revoke = [
            0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x09,
        ];
        assert!(der_of(&answer).windows(11).any(|w| w == extended_revoke));
        // Never assigned.
        let unknown = request(&s, &[vec![0x55; 12]], None);
        assert_eq!(
            status_of(&service.answer(&s.store, &unknown).expect("answer")),
            "Unknown"
        );
        // Another CA's CertID: unauthorized (RFC 5019 2.2.3).
        let other = setup();
        let foreign = request(&other, &[serial(0)], None);
        assert!(matches!(
            service.answer(&s.store, &foreign).expect("answer"),
            OcspAnswer::Status(ResponseStatus::Unauthorized, _)
        ));
    }

    #[test]
    fn an_answer_read_before_an_invalidation_is_not_cached() {
        let mut s = setup();
        issue(&mut s, 1);
        let service =
            OcspService::start(&s.store, &s.ca, s.issuer, CrlSchedule::default()).expect("service");
        let good = request(&s, &[serial(0)], None);
        let OcspAnswer::Signed { response, .. } = service.answer(&s.store, &good).expect("answer")
        else {
            panic!("signed");
        };
        service.invalidate_all();
        let stale_generation = service.generation.load(Ordering::Acquire) - 1;
        service.insert(&good.certs[0], &response, stale_generation);
        assert!(service.cached(&good, now_unix()).is_none());
    }

    #[test]
    fn the_responder_rotates_before_its_responses_could_outlive_it() {
        let s = setup();
        let schedule = CrlSchedule {
            validity: Duration::from_secs(3_600),
            frequency: Duration::from_secs(600),
        };
        let service = OcspService::start(&s.store, &s.ca, s.issuer, schedule).expect("service");
        let first = service.responder_certificate();
        assert!(!service.rotate_if_due(&s.store, &s.ca).expect("not due"));
        // Four lifetimes of validity, rotated when two remain: make it due.
        match service.active.write() {
            Ok(mut guard) => {
                let responder = Responder {
                    key: ResponderKey::generate().expect("key"),
                    certificate_der: guard.responder.certificate_der.clone(),
                };
                *guard = Arc::new(ActiveResponder {
                    responder,
                    not_after: now_unix() + 3_600,
                });
            }
            Err(_) => panic!("lock"),
        }
        assert!(service.rotate_if_due(&s.store, &s.ca).expect("due"));
        assert_ne!(service.responder_certificate(), first);
    }

    #[test]
    fn crls_are_issued_with_increasing_numbers_when_due() {
        let mut s = setup();
        let batch = issue(&mut s, 2);
        let schedule = CrlSchedule::default();
        let path = crl_path(s.dir.path(), s.issuer);
        let now = now_unix();
        assert!(schedule.crl_due(&s.store.crl_state(s.issuer).unwrap(), &path, now));
        let first =
            issue_crl(s.dir.path(), &s.store, &s.ca, s.issuer, &schedule, now).expect("CRL");
        assert_eq!((first.number, first.entries), (1, 0));
        assert!(!schedule.crl_due(&s.store.crl_state(s.issuer).unwrap(), &path, now));
        let frequency = i64::try_from(schedule.frequency.as_secs()).unwrap();
        assert!(schedule.crl_due(
            &s.store.crl_state(s.issuer).unwrap(),
            &path,
            now + frequency
        ));
        s.store
            .finish_batch(batch, BatchStatus::ReadyForDownload)
            .expect("finish");
        s.store
            .revoke_serial(s.issuer, &serial(1), RevocationReason::Superseded, "test")
            .expect("revoke");
        assert!(schedule.crl_due(&s.store.crl_state(s.issuer).unwrap(), &path, now));
        let second =
            issue_crl(s.dir.path(), &s.store, &s.ca, s.issuer, &schedule, now).expect("CRL");
        assert_eq!((second.number, second.entries), (2, 1));
        let bytes = std::fs::read(&path).expect("file");
        let list = x509_cert::crl::CertificateList::from_der(&bytes).expect("CRL");
        let revoked = list.tbs_cert_list.revoked_certificates.expect("entries");
        assert_eq!(revoked[0].serial_number.as_bytes(), serial(1).as_slice());
        // What another node reads back from the file is what this one issued.
        assert_eq!(read_crl(&path).expect("read back"), second);
        std::fs::write(&path, b"not a CRL").unwrap();
        assert!(matches!(read_crl(&path), Err(ServiceError::NotACrl { .. })));
        std::fs::remove_file(&path).unwrap();
        assert!(schedule.crl_due(&s.store.crl_state(s.issuer).unwrap(), &path, now));
    }

    #[test]
    fn the_schedule_is_the_strictest_of_the_profiles() {
        let profiles: Vec<Profile> = crate::profile::SHIPPED
            .iter()
            .map(|(name, json)| {
                Profile::from_json(json, name, &crate::profile::CompileOptions::default())
                    .expect("profile")
            })
            .collect();
        let schedule = CrlSchedule::from_profiles(&profiles);
        assert_eq!(schedule.validity, Duration::from_secs(4 * 86_400));
        assert_eq!(schedule.frequency, Duration::from_secs(12 * 3_600));
        assert_eq!(CrlSchedule::from_profiles(&[]), CrlSchedule::default());
    }
}
