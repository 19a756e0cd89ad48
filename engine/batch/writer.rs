//! The one writer of a batch: owns the streaming ZIP, the manifest and the store transactions.
//! Workers hand it finished devices in chunks through a bounded channel; nothing else touches
//! the output file or the store while a batch runs.

use super::zipstream::ZipStream;
use super::{BatchError, Counts, IssuedDevice, Outcome};
use crate::store::{BatchId, CertificateRecord, DeviceFailure, Store};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};

/// Bits of the name filter: 64 Mi bits = 8 MiB, allocated zeroed (pages are only touched as
/// names land on them), whatever the batch size.
const NAME_FILTER_BITS: usize = 1 << 26;

/// A Bloom filter of the entry names written so far: memory is fixed, not per device. It never
/// answers "new" for a name already written, so names stay unique; a false "seen" (about 1 in
/// 90,000 names at 1,000,000 devices) only gives that device the `-<row>` suffix.
struct NameFilter {
    bits: Vec<u64>,
    hasher: RandomState,
}

impl NameFilter {
    fn new() -> NameFilter {
        NameFilter {
            bits: vec![0u64; NAME_FILTER_BITS / 64],
            hasher: RandomState::new(),
        }
    }

    /// Adds `name`; returns false when it may have been added before.
    fn insert(&mut self, name: &str) -> bool {
        // Four positions by double hashing (Kirsch-Mitzenmacher) from one 64-bit hash.
        let hash = self.hasher.hash_one(name);
        let (h1, h2) = (hash as u32 as usize, (hash >> 32) as usize | 1);
        let mut new = false;
        for i in 0..4 {
            let bit = h1.wrapping_add(i * h2) % NAME_FILTER_BITS;
            let (word, mask) = (bit / 64, 1u64 << (bit % 64));
            new |= self.bits[word] & mask == 0;
            self.bits[word] |= mask;
        }
        new
    }
}
use std::io::{BufWriter, Write};

/// Names a batch's ZIP entries, in row order: unique within the batch, with flat memory.
pub struct EntryNamer {
    names: NameFilter,
    extension: &'static str,
}

impl EntryNamer {
    /// A namer for entries ending in `.<extension>`.
    pub fn new(extension: &'static str) -> EntryNamer {
        EntryNamer {
            names: NameFilter::new(),
            extension,
        }
    }

    /// The entry name a device named `common_name` (or the stem given for a device without
    /// one) gets when nothing before it took it: [`default_entry_name`].
    pub fn default_name(&self, common_name: &str) -> String {
        default_entry_name(common_name, self.extension)
    }

    /// A safe, unique entry name derived from the common name (or the stem given for a device
    /// without one): characters outside `[A-Za-z0-9._-]` become `-` (MAC colons included), and
    /// a repeat gets `-<row>`.
    pub fn name(&mut self, common_name: &str, row: u64) -> String {
        let stem = file_stem(common_name);
        let mut name = format!("{stem}.{}", self.extension);
        let mut attempt = 0u32;
        while !self.names.insert(&name) {
            attempt += 1;
            name = if attempt == 1 {
                format!("{stem}-{row}.{}", self.extension)
            } else {
                format!("{stem}-{row}-{attempt}.{}", self.extension)
            };
        }
        name
    }
}

/// `<stem>.<extension>`: the name of a device's entry unless an earlier device of the batch
/// took it.
pub fn default_entry_name(common_name: &str, extension: &str) -> String {
    format!("{}.{extension}", file_stem(common_name))
}
use std::path::{Path, PathBuf};

/// The store's record of an issued device whose ZIP entry is `file_name`.
pub(super) fn record_of(device: IssuedDevice, file_name: String) -> CertificateRecord {
    CertificateRecord {
        device_id: device.device_id,
        row: device.row,
        common_name: device.common_name,
        serial: device.serial,
        not_before: device.not_before,
        not_after: device.not_after,
        der: device.certificate,
        file_name,
    }
}

/// Header of `manifest.csv`.
pub const MANIFEST_HEADER: [&str; 10] = [
    "row",
    "device_id",
    "common_name",
    "serial_hex",
    "not_before",
    "not_after",
    "file_name",
    "sha256",
    "status",
    "reason",
];

/// Writes a batch's ZIP to a temporary file beside `out` and renames it into place on success.
pub struct BatchWriter {
    out: PathBuf,
    temp: tempfile::NamedTempFile,
    zip: Option<ZipStream<BufWriter<File>>>,
    manifest: csv::Writer<BufWriter<File>>,
    manifest_file: File,
    names: EntryNamer,
    store: Store,
    batch: BatchId,
    zip_comment: String,
    counts: Counts,
    /// The last notBefore and notAfter written, as text: a batch's devices share them, and
    /// formatting a date per device was a tenth of the writer's own work.
    dates: [DateText; 2],
    /// Entry bytes written since the kernel was last asked to start writing the ZIP out.
    unsent: usize,
    /// Whether to add the store's CPU time to `counts` (two `/proc` reads per chunk).
    timed: bool,
}

impl BatchWriter {
    /// Starts the ZIP with `chain.pem`.
    pub fn create(
        out: &Path,
        chain_pem: &str,
        store: Store,
        batch: BatchId,
        modified: time::OffsetDateTime,
        extension: &'static str,
        zip_comment: String,
    ) -> Result<BatchWriter, BatchError> {
        let io = |source| BatchError::Io {
            path: out.display().to_string(),
            source,
        };
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let temp = tempfile::Builder::new()
            .prefix(&super::recovery::temp_prefix(batch))
            .suffix(".zip.part")
            .tempfile_in(&dir)
            .map_err(io)?;
        let file = temp.as_file().try_clone().map_err(io)?;
        // Stored entries: PKCS#12 files are encrypted, so compression only costs time
        // (research/crates-measured.md: deflate 8-22x slower, output no smaller). Our own
        // writer spools the central directory to a file, so memory stays flat.
        let mut zip =
            ZipStream::new(BufWriter::with_capacity(1 << 20, file), &dir, modified).map_err(io)?;
        zip.add("chain.pem", chain_pem.as_bytes()).map_err(io)?;
        let manifest_file = tempfile::tempfile_in(&dir).map_err(io)?;
        let mut manifest =
            csv::Writer::from_writer(BufWriter::new(manifest_file.try_clone().map_err(io)?));
        manifest
            .write_record(MANIFEST_HEADER)
            .map_err(|e| BatchError::Io {
                path: out.display().to_string(),
                source: e.into(),
            })?;
        Ok(BatchWriter {
            out: out.to_owned(),
            temp,
            zip: Some(zip),
            manifest,
            manifest_file,
            names: EntryNamer::new(extension),
            store,
            batch,
            zip_comment,
            counts: Counts::default(),
            dates: Default::default(),
            unsent: 0,
            timed: true,
        })
    }

    /// Stops timing the store's CPU (`Counts::store_cpu` stays zero): for one-device chunks,
    /// where the two `/proc` reads would cost more than the store's share they measure.
    pub fn untimed(mut self) -> BatchWriter {
        self.timed = false;
        self
    }

    /// The writer's store connection, for the caller's other writes on the same thread (one
    /// connection keeps its page cache instead of re-reading what another one committed).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A safe, unique entry name derived from the common name ([`EntryNamer::name`]).
    pub(super) fn entry_name(&mut self, common_name: &str, row: u64) -> String {
        self.names.name(common_name, row)
    }

    /// Writes a chunk of devices: ZIP entries, manifest rows and one store transaction.
    /// Returns the entry names of the issued devices, in order.
    pub fn write_chunk(&mut self, outcomes: Vec<Outcome>) -> Result<Vec<String>, BatchError> {
        let mut records = Vec::with_capacity(outcomes.len());
        let mut names = Vec::with_capacity(outcomes.len());
        let mut failures = Vec::new();
        for outcome in outcomes {
            let device = match outcome {
                Outcome::Issued(device) => device,
                Outcome::Failed(failed) => {
                    let device_id = uuid::Uuid::from_bytes(failed.device_id)
                        .hyphenated()
                        .to_string();
                    let reason = format!("{}: {}", failed.location, failed.reason);
                    self.manifest_row(&[
                        &failed.row.to_string(),
                        &device_id,
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "FAILED",
                        &reason,
                    ])?;
                    failures.push(DeviceFailure {
                        row: failed.row,
                        device_id: failed.device_id,
                        reason,
                    });
                    continue;
                }
            };
            let name = self.entry_name(&device.file_stem, device.row);
            self.write_entry(&name, &device)?;
            names.push(name.clone());
            records.push(record_of(device, name));
        }
        self.counts.issued += records.len() as u64;
        self.counts.failed += failures.len() as u64;
        let (store, batch) = (&mut self.store, self.batch);
        let mut record = || {
            if !records.is_empty() {
                store.insert_certificates(batch, &records)?;
            }
            if !failures.is_empty() {
                store.record_failures(batch, &failures)?;
            }
            Ok::<(), BatchError>(())
        };
        if self.timed {
            super::cputime::measure(&mut self.counts.store_cpu, record)?;
        } else {
            record()?;
        }
        if self.unsent >= WRITEBACK_BYTES {
            start_writeback(self.temp.as_file());
            self.unsent = 0;
        }
        Ok(names)
    }

    /// Writes an issued device's ZIP entry (`name`, from [`BatchWriter::entry_name`]) and its
    /// manifest row; the store is not touched (see [`BatchWriter::write_chunk`]).
    pub(super) fn write_entry(
        &mut self,
        name: &str,
        device: &IssuedDevice,
    ) -> Result<(), BatchError> {
        let zip = self
            .zip
            .as_mut()
            .ok_or(BatchError::Unreachable("zip writer used after finish"))?;
        zip.add_file_entry(name, &device.file)
            .map_err(|source| BatchError::Io {
                path: self.out.display().to_string(),
                source,
            })?;
        self.unsent += device.file.bytes().len();
        let mut id = uuid::Uuid::encode_buffer();
        let [not_before, not_after] = &mut self.dates;
        write_manifest_row(
            &mut self.manifest,
            &self.out,
            &[
                &device.row.to_string(),
                uuid::Uuid::from_bytes(device.device_id)
                    .hyphenated()
                    .encode_lower(&mut id),
                &device.common_name,
                &hex(&device.serial),
                not_before.text(device.not_before),
                not_after.text(device.not_after),
                name,
                &hex(device.file.sha256()),
                "ISSUED",
                "",
            ],
        )
    }

    /// The writer's store connection, to record on another thread while this one works.
    pub(super) fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    fn manifest_row(&mut self, fields: &[&str]) -> Result<(), BatchError> {
        write_manifest_row(&mut self.manifest, &self.out, fields)
    }

    /// Appends `manifest.csv`, closes the ZIP and renames it to its final name.
    pub fn finish(mut self) -> Result<(Counts, Store), BatchError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| BatchError::Io { path, source }
        };
        self.manifest.flush().map_err(io(&self.out))?;
        drop(self.manifest);
        let mut zip = self
            .zip
            .take()
            .ok_or(BatchError::Unreachable("zip writer finished twice"))?;
        zip.add_file("manifest.csv", &mut self.manifest_file)
            .map_err(io(&self.out))?;
        let mut inner = zip
            .finish_with_comment(self.zip_comment.as_bytes())
            .map_err(io(&self.out))?;
        inner.flush().map_err(io(&self.out))?;
        inner.get_ref().sync_all().map_err(io(&self.out))?;
        drop(inner);
        self.temp.persist(&self.out).map_err(|e| BatchError::Io {
            path: self.out.display().to_string(),
            source: e.error,
        })?;
        Ok((self.counts, self.store))
    }
}

pub use crate::store::hex;

/// ZIP bytes between two [`start_writeback`] calls: a few calls per batch second, none per
/// device of a station's one-device chunks.
const WRITEBACK_BYTES: usize = 4 << 20;

/// Asks the kernel to start writing `file`'s dirty pages to disk now, without waiting, so the
/// `fsync` that ends the batch finds little left to write (it took 25-45 ms for a ZIP of
/// 40-50 MB, with both cores idle). Durability still comes from that `fsync`; where the call
/// does not exist, or fails, the pages are written then.
#[allow(unsafe_code)]
fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `file` keeps the descriptor open during the call, which reads no memory of
        // ours; offset 0 and length 0 mean the whole file.
        let _ =
            unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Appends one row to the manifest of the ZIP at `out`.
fn write_manifest_row(
    manifest: &mut csv::Writer<BufWriter<File>>,
    out: &Path,
    fields: &[&str],
) -> Result<(), BatchError> {
    manifest
        .write_record(fields.iter().map(|field| spreadsheet_safe(field)))
        .map_err(|e| BatchError::Io {
            path: out.display().to_string(),
            source: e.into(),
        })
}

/// The RFC 3339 text of the last Unix time asked for.
#[derive(Default)]
struct DateText {
    last: Option<(i64, String)>,
}

impl DateText {
    /// [`rfc3339`] of `unix`, formatted again only when it differs from the last one.
    fn text(&mut self, unix: i64) -> &str {
        if self.last.as_ref().is_none_or(|(last, _)| *last != unix) {
            self.last = Some((unix, rfc3339(unix)));
        }
        self.last.as_ref().map_or("", |(_, text)| text)
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-11-23T05:28:15Z`), or the number if out of range.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// The ZIP entry stem for a device named `common_name`: at most 96 characters of letters,
/// digits, `.`, `_` and `-` (anything else becomes `-`), never empty and never starting with
/// `.` (hidden files) or `-` (read as an option by command-line tools, as a formula by
/// spreadsheets): those get the prefix `device`.
fn file_stem(common_name: &str) -> String {
    let mut stem: String = common_name
        .chars()
        .take(96)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if stem.is_empty() || stem.starts_with('.') || stem.starts_with('-') {
        stem.insert_str(0, "device");
    }
    stem
}

/// A manifest cell that a spreadsheet will not run (CSV injection, OWASP): a value starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, which spreadsheets
/// read as "text". The csv writer still quotes what needs quoting. Only values from the input
/// (common names, failure reasons naming an entry) can start so; the certificate and the
/// store keep the value unchanged.
pub(super) fn spreadsheet_safe(field: &str) -> std::borrow::Cow<'_, [u8]> {
    match crate::profile::formula_start(field) {
        Some(_) => std::borrow::Cow::Owned(format!("'{field}").into_bytes()),
        None => std::borrow::Cow::Borrowed(field.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::{file_stem, spreadsheet_safe, NameFilter};

    #[test]
    fn manifest_cells_never_start_a_formula() {
        for (value, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("sensor-0001", "sensor-0001"),
            ("2026-12-04T10:00:00Z", "2026-12-04T10:00:00Z"),
            ("", ""),
        ] {
            assert_eq!(
                &spreadsheet_safe(value)[..],
                written.as_bytes(),
                "{value:?}"
            );
        }
        // Through the csv writer: quoted where needed, the formula still inert.
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(["=1+1", "a,b"].iter().map(|f| spreadsheet_safe(f)))
            .expect("write");
        let text = String::from_utf8(out.into_inner().expect("flush")).expect("utf8");
        assert_eq!(text, "'=1+1,\"a,b\"\n");
    }

    #[test]
    fn file_stems_are_plain_names() {
        assert_eq!(file_stem("02:00:00:00:00:01"), "02-00-00-00-00-01");
        assert_eq!(file_stem("=HYPERLINK(x)"), "device-HYPERLINK-x-");
        assert_eq!(file_stem("-rf"), "device-rf");
        assert_eq!(file_stem("../../etc/passwd"), "device..-..-etc-passwd");
        assert_eq!(file_stem(""), "device");
        assert_eq!(file_stem(&"a".repeat(200)).len(), 96);
    }

    #[test]
    fn the_name_filter_never_forgets_a_name() {
        let mut filter = NameFilter::new();
        let names: Vec<String> = (0..200_000)
            .map(|i| format!("02-00-00-{i:06X}.p12"))
            .collect();
        let mut first_time_new = 0;
        for name in &names {
            first_time_new += usize::from(filter.insert(name));
        }
        // False "seen" answers are rare at this size...
        assert!(first_time_new > names.len() - 20, "{first_time_new}");
        // ...and a name already added is never reported new.
        assert!(names.iter().all(|n| !filter.insert(n)));
    }
}
