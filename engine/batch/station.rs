//! A warm issuing station: one open batch that issues devices one at a time, each handed back
//! to the caller as soon as it is signed, packed and recorded. This is the factory line's
//! flashing station: the device on the jig needs its PKCS#12 now, not after a batch of
//! thousands.
//!
//! Opening a station does once what a batch does once (compile the template, record the batch
//! and reserve `capacity` units of the authority's balance, take the batch lock, open the ZIP
//! and a store connection). Each [`Station::issue`] then costs one device's cryptography
//! (key, signature, PKCS#12), one small store transaction (the certificate; WAL, no fsync; a
//! background thread checkpoints) and a buffered ZIP entry. Serial intents are recorded
//! [`RESERVE_AHEAD`] devices at a time, always before those serials sign anything; the ones a
//! closing station has not used end WASTED, never reused.
//!
//! One device uses two cores: the calling thread derives the PKCS#12's keys from the password
//! (the three key-derivation chains, nearly all of a device's cost, and independent of the
//! device) while a helper thread generates the key, signs the certificate and records it. The
//! helper stays awake for [`WARM_WINDOW`] after each device, so back-to-back devices do not
//! wait for a sleeping vCPU to wake. [`Station::close`]
//! appends the manifest, fsyncs and renames the ZIP and ends the batch like any other (Ready
//! For Download, or Batch Issued Partly when a device failed); the units not used return to
//! the authority. A station that is dropped without closing (a crash) leaves a Pending Issue
//! batch that recovery ends at the next start.
//!
//! The certificates' notBefore is the station's opening time, as for every device of a batch:
//! open one station per shift, not one per month.

use super::writer::{record_of, BatchWriter};
use super::{
    check_parameters, pack_device, record_batch, recovery, reserve_chunk, server_key_password,
    sign_device, BatchError, BatchInput, BatchOptions, DeviceError, DeviceInput, FailedDevice, Job,
    Outcome, Reserved, Sealing,
};
use crate::ca::IssuingCa;
use crate::pkcs12;
use crate::profile::{Inputs, Profile};
use crate::store::{BatchId, BatchStatus, Checkpointer, IssuerId, Store, CHECKPOINT_INTERVAL};
use crate::template::Template;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serial intents a station records per transaction, ahead of the devices that use them; the
/// next ones are recorded when half are used.
pub const RESERVE_AHEAD: u64 = 32;

/// The jobs whose serial intents a station reserves: `count` rows from `first`.
fn intent_jobs(first: u64, count: u64) -> Vec<Job> {
    (first..first + count)
        .map(|row| Job {
            row,
            location: format!("device {row}"),
            input: DeviceInput::Values(BTreeMap::new()),
        })
        .collect()
}

/// The manifest and store outcome of a station device that failed with `error`.
fn failed_outcome(row: u64, device_id: [u8; 16], error: &BatchError) -> Outcome {
    Outcome::Failed(FailedDevice {
        row,
        device_id,
        location: format!("device {row}"),
        reason: error.to_string(),
    })
}

/// How long the helper stays awake after a device, waiting for the next one, before it sleeps.
/// An idle vCPU of this project's VM takes 0.2–0.4 ms to wake: with the helper asleep between
/// devices, its start was 0.01 ms at the median but 0.22 ms at p90 and 0.35 ms at p99, which
/// made it the tail. A station issuing back to back keeps it awake; one idle for longer than
/// this lets it sleep, and the next device pays one wake-up.
pub const WARM_WINDOW: Duration = Duration::from_millis(2);

/// Keeps the helper thread awake after its job, for up to [`WARM_WINDOW`] or until dropped.
///
/// The wait is spawned from inside the helper's job, onto that thread's own queue, so it runs
/// the moment the job ends: a wait spawned from the caller after the device arrives too late
/// (rayon's idle worker sleeps within some 30 µs, and Linux then wakes it on the caller's
/// core, behind the caller's key derivation: measured, 5–8% of devices started their helper
/// half only after it). The loop polls a flag and the clock without `spin_loop`: under KVM a
/// PAUSE loop is taken for a lock waiter and the vCPU is descheduled (measured: worse than
/// sleeping).
struct KeepWarm(Arc<AtomicBool>);

impl KeepWarm {
    fn new() -> Self {
        Self(Arc::new(AtomicBool::new(false)))
    }

    /// Queues the wait on the current rayon thread; called from the helper's job.
    fn wait_after_this_job(&self) {
        let released = Arc::clone(&self.0);
        rayon::spawn(move || spin_until(&released, WARM_WINDOW));
    }
}

impl Drop for KeepWarm {
    /// Lets the helper go: to the job queued next, or to sleep.
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Busy-waits until `flag` is set or `limit` has passed, without PAUSE (see [`KeepWarm`]).
fn spin_until(flag: &AtomicBool, limit: Duration) {
    let started = Instant::now();
    while !flag.load(Ordering::Acquire) && started.elapsed() < limit {}
}

/// Sets its flag when dropped, so a job holding it reports its end, panics included.
struct SetOnDrop<'f>(&'f AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// One device a station issued, handed to the caller.
#[derive(Debug)]
pub struct StationDevice {
    /// The device's position in the station's batch (1-based).
    pub row: u64,
    /// Device id (UUID), as the manifest and the API show it.
    pub device_id: String,
    /// Subject commonName (empty when the subject has none).
    pub common_name: String,
    /// Serial, lower-case hex.
    pub serial_hex: String,
    /// The entry name in the batch ZIP.
    pub file_name: String,
    /// Certificate DER.
    pub certificate: Vec<u8>,
    /// The PKCS#12 (the device's private key lives only here).
    pub pkcs12: Vec<u8>,
}

/// An open station; see the module documentation.
pub struct Station<'a> {
    /// Signs and records each certificate while the calling thread derives its PKCS#12 keys.
    helper: rayon::ThreadPool,
    /// The helper's wait for the next device, from the end of the last one.
    warm: Option<KeepWarm>,
    template: Template,
    ca: &'a IssuingCa,
    options: BatchOptions,
    batch: BatchId,
    issuer: IssuerId,
    capacity: u64,
    issued: u64,
    failed: u64,
    /// Serials (and device ids) recorded as intents for the next rows, in row order.
    ahead: VecDeque<(u64, Reserved)>,
    writer: Option<BatchWriter>,
    /// Takes the WAL checkpoints of the writer's connection, off `issue`'s path
    /// (with auto-checkpoint, one device in about a hundred waited 15–20 ms for an fsync).
    /// Declared after them: dropped after them, with a last checkpoint.
    _checkpointer: Checkpointer,
    _lock: recovery::BatchLock,
}

impl std::fmt::Debug for Station<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Station")
            .field("batch", &self.batch)
            .field("capacity", &self.capacity)
            .field("issued", &self.issued)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<'a> Station<'a> {
    /// Opens a station for up to `capacity` devices of `profile`, with the batch parameters,
    /// password, authority and output ZIP of `options` (its `threads` and `progress` are not
    /// used: a station issues on the calling thread and one helper thread).
    pub fn open(
        data_dir: &Path,
        ca: &'a IssuingCa,
        profile: &Profile,
        capacity: u64,
        options: BatchOptions,
    ) -> Result<Station<'a>, BatchError> {
        if capacity == 0 {
            return Err(BatchError::Empty);
        }
        check_parameters(profile, &options.parameters, &BatchInput::Single)?;
        server_key_password(profile, &BatchInput::Single, &options)?;
        let template = Template::new(profile, ca, time::OffsetDateTime::now_utc())?;
        let helper = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "certmill-station-helper".into())
            .build()
            .map_err(|_| BatchError::Unreachable("cannot start the station's helper thread"))?;
        let store = Store::open(data_dir)?;
        let (issuer, batch) =
            record_batch(&store, ca, profile, &BatchInput::Single, &options, capacity)?;
        let opened = (|| {
            let lock = recovery::lock_batch(data_dir, batch)?;
            let checkpointer = Checkpointer::start(data_dir, CHECKPOINT_INTERVAL)?;
            let writer = BatchWriter::create(
                &options.out,
                &ca.chain_pem(),
                store
                    .for_pipeline()?
                    .checkpoint_in_background(&checkpointer)?,
                batch,
                template.not_before(),
                "p12",
                lock.zip_comment(),
            )?;
            Ok::<_, BatchError>((lock, checkpointer, writer.untimed()))
        })();
        let (lock, checkpointer, writer) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                Store::open(data_dir)?.abandon_batch(batch, &e.to_string())?;
                return Err(e);
            }
        };
        Ok(Station {
            helper,
            warm: None,
            template,
            ca,
            options,
            batch,
            issuer,
            capacity,
            issued: 0,
            failed: 0,
            ahead: VecDeque::new(),
            writer: Some(writer),
            _checkpointer: checkpointer,
            _lock: lock,
        })
    }

    /// The station's batch.
    pub fn batch(&self) -> BatchId {
        self.batch
    }

    /// Devices issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Devices left before the station is full.
    pub fn remaining(&self) -> u64 {
        self.capacity - self.issued - self.failed
    }

    /// Issues one device from its request values (`Request.<name>`: what one CSV row would
    /// hold). A value the profile refuses is an error naming the field, and costs nothing: no
    /// serial is drawn and the device is not counted. A device the cryptography or the store
    /// refuses after its serial was reserved is recorded as FAILED (the manifest and the
    /// device audit log give the reason) and its unit returns to the authority at close.
    pub fn issue(
        &mut self,
        values: &BTreeMap<String, String>,
    ) -> Result<StationDevice, BatchError> {
        if self.remaining() == 0 {
            return Err(BatchError::MissingInput(format!(
                "the station is full: its {} devices are used; close it and open another",
                self.capacity
            )));
        }
        let row = self.issued + self.failed + 1;
        let profile = self.template.profile();
        let prepared = self
            .template
            .prepare(&Inputs {
                request: Some(values),
                batch: &self.options.parameters,
                profile: profile.values(),
                csr: None,
            })
            .map_err(|error| BatchError::InvalidRows {
                errors: vec![super::RowError {
                    row,
                    location: "the request".into(),
                    error: DeviceError::Value(error),
                }],
                total: 1,
            })?;
        let reserved = self.next_reserved(row)?;
        let device_id = reserved.device_id;
        let password = self
            .options
            .password
            .as_ref()
            .ok_or(BatchError::Unreachable(
                "a station without a PKCS#12 password",
            ))?;
        let writer = self
            .writer
            .as_mut()
            .ok_or(BatchError::Unreachable("station used after close"))?;
        // When half the intents reserved ahead are used, the helper reserves the next rows
        // too, after the record: off the caller's path like it.
        let last = self.ahead.back().map_or(row, |(last, _)| *last);
        let refill = if (self.ahead.len() as u64) < RESERVE_AHEAD / 2 && last < self.capacity {
            intent_jobs(last + 1, RESERVE_AHEAD.min(self.capacity - last))
        } else {
            Vec::new()
        };
        // The entry name, known before signing (the same stem `sign_device` takes): it goes
        // into the record.
        let name_hint = format!("device-{row}");
        let name = writer.entry_name(prepared.common_name.as_deref().unwrap_or(&name_hint), row);
        let (template, ca, batch, issuer) = (&self.template, self.ca, self.batch, self.issuer);
        let (keypairs, pkcs12_options) = (self.options.keypairs.as_deref(), &self.options.pkcs12);
        let serial_length = template.profile().serial_length;
        let store = writer.store_mut();
        let (mut signed, mut recorded, mut refilled) = (None, None, None);
        // The helper, still awake from the last device, takes the job below at once.
        self.warm = None;
        let warm = KeepWarm::new();
        let helper_done = AtomicBool::new(false);
        // Two halves at once: this thread derives the PKCS#12's keys from the password (about
        // 0.23 ms, nearly all of a device's cost, and independent of the device), while the
        // helper generates the key, signs the certificate and records it (about 0.13 ms). The
        // device is packed when both are done.
        let seal = self.helper.in_place_scope(|scope| {
            scope.spawn(|_| {
                let _done = SetOnDrop(&helper_done);
                warm.wait_after_this_job();
                let result = sign_device(
                    template, ca, row, &name_hint, reserved, prepared, None, keypairs,
                )
                // Refused here what the PKCS#12 would refuse after the record: once recorded,
                // a certificate stands.
                .and_then(|signed| {
                    pkcs12::check_friendly_name(&signed.device.file_stem)
                        .map(|()| signed)
                        .map_err(|source| BatchError::Pkcs12 { row, source })
                });
                if let Ok(signed) = &result {
                    let record = record_of(signed.device.clone(), name.clone());
                    recorded =
                        Some(store.insert_certificates(batch, std::slice::from_ref(&record)));
                }
                signed = Some(result);
                if !refill.is_empty() {
                    refilled = Some(reserve_chunk(store, batch, issuer, &refill, serial_length));
                }
            });
            let seal = pkcs12::Pkcs12Seal::derive(password, pkcs12_options);
            // Waits for the helper here, awake, rather than asleep in rayon's latch: a sleeping
            // caller may be woken on the helper's core, behind the helper's own wait.
            spin_until(&helper_done, WARM_WINDOW);
            seal
        });
        self.warm = Some(warm);
        // A refill that failed rolled back; the next device tries again, and `next_reserved`
        // reports the error if the intents run out.
        if let Some(Ok(more)) = refilled {
            self.ahead
                .extend(refill.iter().map(|job| job.row).zip(more));
        }
        let signed = match signed.ok_or(BatchError::Unreachable("the helper did not run"))? {
            Ok(signed) => signed,
            Err(error) => {
                // The row is used either way: its intent has left the queue.
                self.failed += 1;
                writer.write_chunk(vec![failed_outcome(row, device_id, &error)])?;
                return Err(error);
            }
        };
        // Not recorded: not issued. The row is used (its intent has left the queue and ends
        // WASTED at close) and counts as failed; the failure is recorded if the store takes it,
        // and the store's error is the one returned either way.
        if let Err(error) = recorded.ok_or(BatchError::Unreachable("the helper did not record"))? {
            let error = BatchError::from(error);
            self.failed += 1;
            let _ = writer.write_chunk(vec![failed_outcome(row, device_id, &error)]);
            return Err(error);
        }
        self.issued += 1;
        let serial_hex = super::writer::hex(&signed.device.serial);
        let device = seal
            .map_err(|source| BatchError::Pkcs12 { row, source })
            .and_then(|seal| pack_device(signed, self.ca, Sealing::Sealed(seal)))
            .map_err(|error| {
                BatchError::MissingInput(format!(
                    "device {row}: certificate serial {serial_hex} is recorded but its PKCS#12 \
                     could not be built ({error}); its key is gone: revoke the certificate"
                ))
            })?;
        writer.write_entry(&name, &device)?;
        Ok(StationDevice {
            row,
            device_id: uuid::Uuid::from_bytes(device_id).hyphenated().to_string(),
            common_name: device.common_name,
            serial_hex,
            file_name: name,
            certificate: device.certificate,
            pkcs12: device.file.into_bytes(),
        })
    }

    /// The serial and device id reserved for `row`. When none is left (the first device, or
    /// after a failed refill), records the next [`RESERVE_AHEAD`] rows' intents (at most up to
    /// the capacity) in one transaction first.
    fn next_reserved(&mut self, row: u64) -> Result<Reserved, BatchError> {
        if self.ahead.is_empty() {
            let jobs = intent_jobs(row, RESERVE_AHEAD.min(self.capacity - row + 1));
            let writer = self
                .writer
                .as_ref()
                .ok_or(BatchError::Unreachable("station used after close"))?;
            let reserved = reserve_chunk(
                writer.store(),
                self.batch,
                self.issuer,
                &jobs,
                self.template.profile().serial_length,
            )?;
            self.ahead = (row..).zip(reserved).collect();
        }
        match self.ahead.pop_front() {
            Some((reserved_row, reserved)) if reserved_row == row => Ok(reserved),
            _ => Err(BatchError::Unreachable(
                "station rows out of step with its intents",
            )),
        }
    }

    /// Ends the station: the ZIP is completed and renamed into place, the batch ends Ready For
    /// Download (Batch Issued Partly when a device failed), and the unused units return to the
    /// authority. A station that issued nothing ends Broken, with that reason.
    pub fn close(mut self, data_dir: &Path) -> Result<BatchStatus, BatchError> {
        self.warm = None;
        let writer = self
            .writer
            .take()
            .ok_or(BatchError::Unreachable("station closed twice"))?;
        let store = Store::open(data_dir)?;
        if self.issued == 0 && self.failed == 0 {
            drop(writer); // the temporary ZIP is deleted
            store.abandon_batch(self.batch, "the station closed before issuing any device")?;
            return Ok(BatchStatus::Broken);
        }
        if let Err(e) = writer.finish() {
            store.abandon_batch(self.batch, &e.to_string())?;
            return Err(e);
        }
        let status = if self.failed == 0 {
            BatchStatus::ReadyForDownload
        } else if self.issued > 0 {
            BatchStatus::BatchIssuedPartly
        } else {
            BatchStatus::Broken
        };
        store.finish_batch(self.batch, status)?;
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::Station;
    use crate::batch::{BatchOptions, ProgressStyle};
    use crate::ca::{CaInitOptions, IssuingCa};
    use crate::pkcs12::{Pkcs12Options, Pkcs12Password};
    use crate::profile::{CompileOptions, Profile};
    use crate::store::{BatchStatus, IntentState, Store};
    use std::collections::BTreeMap;

    fn device(mac: &str) -> BTreeMap<String, String> {
        [
            ("macAddress", mac),
            ("deviceClass", "Surface Vehicle"),
            ("years", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// A data directory with a development CA, and the ECC device profile.
    fn fixture() -> (tempfile::TempDir, IssuingCa, Profile) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = IssuingCa::init(dir.path(), &CaInitOptions::default()).expect("CA");
        let profile = Profile::load("ecc-device", &CompileOptions::default()).expect("profile");
        (dir, ca, profile)
    }

    fn options(out: std::path::PathBuf, name: &str) -> BatchOptions {
        BatchOptions {
            parameters: BTreeMap::new(),
            password: Some(Pkcs12Password::new("line-password".into()).expect("password")),
            pkcs12: Pkcs12Options::default(),
            out,
            batch_name: name.into(),
            threads: None,
            progress: ProgressStyle::Quiet,
            authority: None,
            user: None,
            issuer: None,
            on_created: None,
            keypairs: None,
            limits: Default::default(),
        }
    }

    #[test]
    fn a_station_issues_one_device_at_a_time_and_ends_like_a_batch() {
        let (dir, ca, profile) = fixture();
        let out = dir.path().join("line-1.zip");
        let options = options(out.clone(), "line 1");
        let mut station = Station::open(dir.path(), &ca, &profile, 3, options).expect("open");
        let first = station.issue(&device("02:00:00:00:00:01")).expect("first");
        assert_eq!(first.row, 1);
        assert!(!first.pkcs12.is_empty() && !first.certificate.is_empty());
        assert_eq!(first.file_name, "02-00-00-00-00-01.p12");
        // A refused value names the field and uses nothing.
        let refused = station
            .issue(&device("not a MAC"))
            .expect_err("bad MAC")
            .to_string();
        assert!(refused.contains("the request"), "{refused}");
        assert_eq!(station.remaining(), 2);
        let second = station.issue(&device("02:00:00:00:00:02")).expect("second");
        assert_eq!(second.row, 2);
        assert_ne!(first.serial_hex, second.serial_hex);
        let batch = station.batch();
        // Not downloadable while open.
        assert!(!out.exists());
        assert_eq!(
            station.close(dir.path()).expect("close"),
            BatchStatus::ReadyForDownload
        );
        let store = Store::open(dir.path()).expect("store");
        assert_eq!(store.certificate_count(batch).expect("count"), 2);
        let row = store.batch(batch).expect("batch").expect("recorded");
        assert_eq!(row.status, BatchStatus::ReadyForDownload);
        let zip = zip::ZipArchive::new(std::fs::File::open(&out).expect("zip")).expect("zip");
        let names: Vec<String> = zip
            .file_names()
            .map(|n| n.expect("entry name").into_owned())
            .collect();
        for name in [
            "chain.pem",
            "02-00-00-00-00-01.p12",
            "02-00-00-00-00-02.p12",
            "manifest.csv",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
    }

    #[test]
    fn a_full_station_refuses_more_devices() {
        let (dir, ca, profile) = fixture();
        let options = options(dir.path().join("line-2.zip"), "line 2");
        let mut station = Station::open(dir.path(), &ca, &profile, 1, options).expect("open");
        station.issue(&device("02:00:00:00:00:01")).expect("first");
        let full = station
            .issue(&device("02:00:00:00:00:02"))
            .expect_err("full")
            .to_string();
        assert!(full.contains("full"), "{full}");
        assert_eq!(station.issued(), 1);
    }

    #[test]
    fn a_zero_pkcs12_iteration_count_is_refused_before_anything_is_recorded() {
        let (dir, ca, profile) = fixture();
        let mut options = options(dir.path().join("line-0.zip"), "line 0");
        options.pkcs12.iterations = 0;
        let error = Station::open(dir.path(), &ca, &profile, 2, options)
            .expect_err("zero iterations")
            .to_string();
        assert!(error.contains("iteration count is 0"), "{error}");
        let batches = Store::open(dir.path())
            .expect("store")
            .batches()
            .expect("batches");
        assert!(batches.is_empty(), "{batches:?}");
    }

    #[test]
    fn intents_are_refilled_ahead_when_half_are_used() {
        let (dir, ca, profile) = fixture();
        let out = dir.path().join("line-4.zip");
        let mut station =
            Station::open(dir.path(), &ca, &profile, 100, options(out, "line 4")).expect("open");
        let batch = station.batch();
        let store = Store::open(dir.path()).expect("store");
        let pending_rows = || -> Vec<u64> {
            store
                .serial_intents(batch)
                .expect("intents")
                .iter()
                .map(|i| i.row)
                .collect()
        };
        let half = super::RESERVE_AHEAD / 2;
        for i in 0..=half {
            station
                .issue(&device(&format!("02:00:00:00:01:{i:02X}")))
                .expect("issue");
        }
        // Row 17 left 15 reserved (18..=32): its helper reserved 33..=64 as well.
        let expected: Vec<u64> = (half + 2..=3 * super::RESERVE_AHEAD / 2 + half).collect();
        assert_eq!(pending_rows(), expected);
        assert_eq!(
            station.close(dir.path()).expect("close"),
            BatchStatus::ReadyForDownload
        );
        assert_eq!(store.certificate_count(batch).expect("count"), half + 1);
    }

    #[test]
    fn intents_reserved_ahead_and_unused_end_wasted_at_close() {
        let (dir, ca, profile) = fixture();
        let out = dir.path().join("line-3.zip");
        let mut station =
            Station::open(dir.path(), &ca, &profile, 5, options(out, "line 3")).expect("open");
        let batch = station.batch();
        let first = station.issue(&device("02:00:00:00:00:01")).expect("first");
        // One transaction reserved every row up to the capacity, before anything was signed.
        let store = Store::open(dir.path()).expect("store");
        let pending = store.serial_intents(batch).expect("intents");
        assert_eq!(
            pending.iter().map(|i| i.row).collect::<Vec<_>>(),
            vec![2, 3, 4, 5]
        );
        assert!(pending.iter().all(|i| i.state == IntentState::Reserved));
        assert!(pending.iter().all(|i| i.serial_hex != first.serial_hex));
        let second = station.issue(&device("02:00:00:00:00:02")).expect("second");
        assert_eq!(
            second.serial_hex, pending[0].serial_hex,
            "row 2 signs its intent"
        );
        station.close(dir.path()).expect("close");
        let left = store.serial_intents(batch).expect("intents");
        assert_eq!(
            left.iter().map(|i| i.row).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert!(
            left.iter().all(|i| i.state == IntentState::Wasted),
            "{left:?}"
        );
        assert_eq!(store.certificate_count(batch).expect("count"), 2);
    }
}
