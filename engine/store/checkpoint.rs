//! WAL checkpoints off the committing threads.
//!
//! With SQLite's default auto-checkpoint, the commit that pushes the WAL past 1,000 pages
//! copies the WAL into the database and fsyncs both, inside that commit: 15–20 ms on this
//! machine's disk. A warm station writes about ten pages per device, so one device in about a
//! hundred waited for a checkpoint (that was the single-device p99). A [`Checkpointer`] runs
//! `PRAGMA wal_checkpoint(PASSIVE)` on its own connection and thread every interval;
//! connections handed to it with [`Store::checkpoint_in_background`] stop checkpointing in
//! their commits. A passive checkpoint never blocks writers or readers, and a busy or failed
//! one leaves the WAL as it is for the next round (or for SQLite's own checkpoint when the
//! last connection closes): it never loses a committed transaction.

use super::{db, Store, StoreError};
use crossbeam_channel::{RecvTimeoutError, Sender};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the background checkpoint runs by default.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// A thread checkpointing the store's WAL every interval until dropped (with a last
/// checkpoint on the way out).
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on a connection of its own to `<data_dir>/certmill.db`.
    pub fn start(data_dir: &Path, interval: Duration) -> Result<Checkpointer, StoreError> {
        let store = Store::open(data_dir)?;
        if store.connection.sqlite().is_none() {
            // PostgreSQL: nothing to checkpoint, no thread.
            return Ok(Checkpointer {
                stop: None,
                thread: None,
            });
        }
        // Room for one message, so [`Checkpointer::finish_soon`] never waits for a round.
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("certmill-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    // Busy (a reader holds an old snapshot) is retried next round.
                    let _ = store.checkpoint_passive();
                }
                let _ = store.checkpoint_passive();
            })
            .map_err(|source| StoreError::Thread {
                action: "the WAL checkpoints",
                source,
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Checkpointer {
    /// Starts the last checkpoint now, without waiting for it: for a caller whose writes are
    /// done and who has other work before it drops the checkpointer (a batch's ZIP is still
    /// being closed and synced while the store's WAL is copied and synced). Connections that
    /// write after this call leave their frames in the WAL for the next checkpoint.
    pub fn finish_soon(&self) {
        if let Some(stop) = &self.stop {
            let _ = stop.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Store {
    /// Hands this connection's WAL checkpoints to `checkpointer`: its commits no longer
    /// checkpoint (`wal_autocheckpoint=0`). Keep the checkpointer alive as long as the
    /// connection writes.
    pub fn checkpoint_in_background(
        self,
        _checkpointer: &Checkpointer,
    ) -> Result<Store, StoreError> {
        // PostgreSQL checkpoints on its own.
        if let Some(connection) = self.connection.sqlite() {
            connection
                .pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(|source| StoreError::Database {
                    action: "handing checkpoints to the background thread",
                    source: source.into(),
                })?;
        }
        Ok(self)
    }

    /// One `PRAGMA wal_checkpoint(PASSIVE)`: copies what it can without waiting.
    pub fn checkpoint_passive(&self) -> Result<(), StoreError> {
        if self.connection.sqlite().is_none() {
            return Ok(());
        }
        self.connection
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(db("checkpointing the WAL"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::skip_on_postgres;
    use super::*;

    fn size(dir: &Path, file: &str) -> u64 {
        std::fs::metadata(dir.join(file)).map_or(0, |m| m.len())
    }

    /// A checkpointer every `interval`, and a connection handed to it.
    fn handed(dir: &Path, interval: Duration) -> (Checkpointer, Store) {
        let checkpointer = Checkpointer::start(dir, interval).unwrap();
        let store = Store::open(dir)
            .unwrap()
            .checkpoint_in_background(&checkpointer)
            .unwrap();
        (checkpointer, store)
    }

    /// Waits (bounded, no timing asserted) until a checkpoint copied `rows` filler rows into
    /// the database file; fails with `why` after 30 s.
    fn wait_until_copied(dir: &Path, rows: u64, why: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while size(dir, "certmill.db") < rows * 4000 {
            assert!(std::time::Instant::now() < deadline, "{why} in 30 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A table of `rows` blobs of 4,000 bytes, one transaction each.
    fn fill(store: &Store, rows: usize) {
        store
            .connection
            .execute_batch("CREATE TABLE filler (x BLOB) STRICT")
            .unwrap();
        for _ in 0..rows {
            store
                .connection
                .execute("INSERT INTO filler VALUES (zeroblob(4000))", [])
                .unwrap();
        }
    }

    #[test]
    fn handed_connections_stop_checkpointing_and_the_thread_does_it() {
        if skip_on_postgres("WAL checkpoints") {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        // A long interval: only the checkpointer's last round runs, at drop.
        let (checkpointer, store) = handed(dir.path(), Duration::from_secs(3600));
        let autocheckpoint: i64 = store
            .connection
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 0);
        // 1,200 pages and more, past the default 1,000-page threshold: with auto-checkpoint a
        // commit would have copied them into the database file and restarted the WAL.
        fill(&store, 1200);
        assert!(size(dir.path(), "certmill.db") < 1_000_000);
        assert!(size(dir.path(), "certmill.db-wal") > 1200 * 4096);
        // Dropping the checkpointer runs its last round: the pages reach the database file.
        drop(checkpointer);
        assert!(size(dir.path(), "certmill.db") > 1200 * 4000);
        let rows: i64 = Store::open(dir.path())
            .unwrap()
            .connection
            .query_row("SELECT count(*) FROM filler", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1200);
    }

    #[test]
    fn the_thread_checkpoints_every_interval() {
        if skip_on_postgres("WAL checkpoints") {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let (checkpointer, store) = handed(dir.path(), Duration::from_millis(10));
        fill(&store, 20);
        wait_until_copied(dir.path(), 20, "no background checkpoint");
        drop(checkpointer);
    }

    #[test]
    fn finish_soon_runs_the_last_round_before_the_drop() {
        if skip_on_postgres("WAL checkpoints") {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        // A long interval: no periodic round runs during the test.
        let (checkpointer, store) = handed(dir.path(), Duration::from_secs(3600));
        fill(&store, 50);
        assert!(size(dir.path(), "certmill.db") < 50 * 4000);
        checkpointer.finish_soon();
        // Called twice (a second caller): it neither blocks nor fails.
        checkpointer.finish_soon();
        wait_until_copied(dir.path(), 50, "finish_soon did not checkpoint");
        // The checkpointer still drops cleanly after its last round.
        drop(checkpointer);
    }
}
