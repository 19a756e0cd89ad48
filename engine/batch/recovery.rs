//! Crash recovery: what a batch left behind when its process died (kill -9, power loss).
//!
//! A running batch holds an exclusive lock on `<data>/locks/batch-<id>.lock`; the operating
//! system releases it when the process dies, however it dies. [`recover`] runs when certmill
//! starts: every batch the store still has as Pending Creation or Pending Issue whose lock can be
//! taken belongs to a dead process. Its partial ZIP (`.certmill-<id>-*.zip.part` beside the
//! output) is deleted, so no half-written ZIP is ever visible, and the batch is marked Broken
//! with the reason; the store returns its unissued reservation to the authority's balance and
//! keeps its unused serial intents as wasted, so no serial is ever used twice.
//!
//! One moment is different: the ZIP is renamed into place (all devices recorded, file synced)
//! just before the store marks the batch finished. A process that dies between the two left a
//! complete ZIP. To tell it from any other file at that path, the running batch writes a random
//! token into its lock file and ends its ZIP with the archive comment `certmill batch <token>`;
//! recovery finds that comment and finishes the batch as the process would have.
//!
//! Batches are not resumed: a batch with server-generated keys cannot be, because its PKCS#12
//! password is never stored (a resumed batch would need the same password for the rest of its
//! devices), and a CSR batch's input file is not kept by certmill, so it may have changed or be
//! gone. The devices are issued again in a new batch. The certificates a device batch already
//! recorded stay recorded (they were signed; their keys went with the partial ZIP). A CSR
//! batch's are voided ([`Store::abandon_batch`]): a CSR batch delivers nothing before it
//! finishes, and one verified as it is signed may have signed requests of a bundle that is not
//! valid as a whole, so its serials end WASTED, OCSP answers them revoked, and their units
//! return to the authority.

use super::BatchError;
use crate::store::{BatchId, Store};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The prefix of a batch's temporary ZIP file.
pub fn temp_prefix(batch: BatchId) -> String {
    format!(".certmill-{}-", batch.0)
}

fn lock_path(data_dir: &Path, batch: BatchId) -> PathBuf {
    data_dir
        .join("locks")
        .join(format!("batch-{}.lock", batch.0))
}

/// The lock a running batch holds; released when dropped or when the process dies.
#[derive(Debug)]
pub struct BatchLock {
    file: File,
    path: PathBuf,
    token: String,
}

impl BatchLock {
    /// The archive comment that ends this batch's ZIP (see the module documentation).
    pub fn zip_comment(&self) -> String {
        zip_comment(&self.token)
    }
}

fn zip_comment(token: &str) -> String {
    format!("certmill batch {token}")
}

/// Whether the file at `path` ends with `comment` as its ZIP archive comment.
fn ends_with_comment(path: &Path, comment: &str) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let mut expected = (comment.len() as u16).to_le_bytes().to_vec();
    expected.extend_from_slice(comment.as_bytes());
    let mut tail = vec![0; expected.len()];
    file.seek(SeekFrom::End(-(expected.len() as i64))).is_ok()
        && file.read_exact(&mut tail).is_ok()
        && tail == expected
}

impl Drop for BatchLock {
    fn drop(&mut self) {
        // Remove the file first, then unlock: a recovery that opens the path afterwards finds
        // nothing; one that opened it before sees the batch finished in the store.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn open_lock(data_dir: &Path, batch: BatchId) -> Result<(File, PathBuf), BatchError> {
    let path = lock_path(data_dir, batch);
    let io = |source| BatchError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    Ok((file, path))
}

/// Takes the lock of a batch that is starting and writes its token into it.
pub fn lock_batch(data_dir: &Path, batch: BatchId) -> Result<BatchLock, BatchError> {
    use std::io::Write as _;
    let (mut file, path) = open_lock(data_dir, batch)?;
    file.try_lock()
        .map_err(|_| BatchError::Unreachable("a new batch's lock is already held"))?;
    let mut random = [0u8; 16];
    crate::keys::random_bytes(&mut random)
        .map_err(|_| BatchError::Unreachable("the system random generator failed"))?;
    let token = super::writer::hex(&random);
    file.set_len(0)
        .and_then(|()| file.write_all(token.as_bytes()))
        .and_then(|()| file.sync_data())
        .map_err(|source| BatchError::Io {
            path: path.display().to_string(),
            source,
        })?;
    Ok(BatchLock { file, path, token })
}

/// Whether there is a store to look at without creating one: PostgreSQL, or the data
/// directory's SQLite file.
fn has_store(data_dir: &Path) -> bool {
    crate::store::uses_postgres() || data_dir.join(crate::store::DATABASE_FILE).exists()
}

/// What recovery did to one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The batch.
    pub batch: BatchId,
    /// Why it is now Broken.
    pub reason: String,
    /// Partial files deleted.
    pub removed: Vec<PathBuf>,
}

/// Finds batches left unfinished by a dead process and marks them Broken (see the module
/// documentation). Batches still running in a live process are left alone.
pub fn recover(data_dir: &Path) -> Result<Vec<Recovered>, BatchError> {
    if !has_store(data_dir) {
        return Ok(Vec::new());
    }
    let store = Store::open(data_dir)?;
    let mut recovered = Vec::new();
    for batch in store.unfinished_batches()? {
        if store.is_chunked(batch.id)? {
            continue; // issued in chunks by the nodes' workers, whose leases recover it
        }
        if crate::store::uses_postgres() && !lock_path(data_dir, batch.id).exists() {
            continue; // another node's batch: the store is shared, its data directory is not
        }
        let (file, path) = open_lock(data_dir, batch.id)?;
        if file.try_lock().is_err() {
            continue; // a live process is issuing it
        }
        let token = std::fs::read_to_string(&path).unwrap_or_default();
        let lock = BatchLock { file, path, token };
        let output = Path::new(&batch.output_path);
        if !lock.token.is_empty() && ends_with_comment(output, &lock.zip_comment()) {
            // Died between renaming the complete ZIP into place and recording the end.
            if let Some(status) = finished_status(&batch) {
                store.finish_batch(batch.id, status)?;
                continue;
            }
            // Our ZIP, yet the counts disagree: it cannot be trusted.
            let _ = std::fs::remove_file(output);
        }
        let removed = remove_partial_files(batch.id, output);
        let (why, voided) = match batch.kind.as_str() {
            "CSR" => (
                "certmill does not keep a CSR batch's input, which may have changed or be gone",
                "; the certificates it signed were voided, never delivered",
            ),
            _ => ("the PKCS#12 password of its server-generated keys is never stored, so the rest of its devices cannot be packed under the same password", ""),
        };
        let reason = format!(
            "interrupted: the process stopped after {} of {} devices; not resumed because {why}{voided}; issue the devices again in a new batch",
            batch.issued, batch.size
        );
        store.abandon_batch(batch.id, &reason)?;
        drop(lock);
        recovered.push(Recovered {
            batch: batch.id,
            reason,
            removed,
        });
    }
    Ok(recovered)
}

/// The status a batch whose ZIP is complete ends in, if its records account for every device.
fn finished_status(batch: &crate::store::BatchRow) -> Option<crate::store::BatchStatus> {
    use crate::store::BatchStatus;
    if batch.issued + batch.failed != batch.size {
        return None;
    }
    Some(if batch.failed == 0 {
        BatchStatus::ReadyForDownload
    } else if batch.issued > 0 {
        BatchStatus::BatchIssuedPartly
    } else {
        BatchStatus::Broken
    })
}

fn remove_partial_files(batch: BatchId, output: &Path) -> Vec<PathBuf> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let prefix = temp_prefix(batch);
    let mut removed = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix)
                && name.ends_with(".zip.part")
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed.push(entry.path());
            }
        }
    }
    removed
}

/// The janitor: deletes the ZIP of every downloadable batch created more than `retention` ago
/// and marks the batch Zip removed after expiration. Returns the batches it expired.
pub fn expire_zips(
    data_dir: &Path,
    retention: std::time::Duration,
) -> Result<Vec<BatchId>, BatchError> {
    if !has_store(data_dir) {
        return Ok(Vec::new());
    }
    let store = Store::open(data_dir)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let cutoff = now.saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
    let mut expired = Vec::new();
    for batch in store.batches()? {
        if !batch.downloadable || batch.created_at > cutoff {
            continue;
        }
        match std::fs::remove_file(&batch.output_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BatchError::Io {
                    path: batch.output_path.clone(),
                    source,
                })
            }
        }
        store.set_batch_status(
            batch.id,
            crate::store::BatchStatus::ZipRemovedAfterExpiration,
            Some("ZIP retention period ended"),
        )?;
        expired.push(batch.id);
    }
    Ok(expired)
}
