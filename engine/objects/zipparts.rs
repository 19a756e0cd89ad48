//! One ZIP archive stitched from parts written by several nodes, served without copying them.
//!
//! A batch issued in chunks leaves one object per chunk, a **part**: the stored ZIP local
//! entries (local header + data, no central directory) of that chunk's devices, written by
//! [`PartWriter`]. The archive a client downloads is the concatenation of
//!
//! 1. the **head**: small entries kept in memory (`chain.pem`), built by [`Head::new`];
//! 2. the parts, in chunk order, as they are in object storage;
//! 3. the **tail**: the `manifest.csv` entry, the central directory of every entry, and the end
//!    records (ZIP64 ones when the count or an offset needs them), written once by
//!    [`TailWriter`] when the batch completes, to a file that is then stored as one more object.
//!
//! [`Stitched`] is that layout: its length, and [`Stitched::segments`], which maps any byte range
//! of the archive onto in-memory bytes and (object key, offset, length) reads, so a download can
//! answer an HTTP `Range` by reading only those pieces.
//!
//! The records are zipstream's (PKWARE APPNOTE 6.3.x: stored entries, UTF-8 names, CRC-32 and
//! sizes in the local header, no data descriptor), and so are the name checks and the DOS time.
//! Every head, part and tail of one archive must be written with the same `modified` time.
//!
//! One difference with zipstream: a part is written before anyone knows where it will land in
//! the archive, so its local headers say "version needed 2.0" even when the central directory
//! moves the entry's offset past 4 GiB into a ZIP64 field and says 4.5 there (zipstream knows
//! the offset and writes 4.5 in both). The local header has no offset field, so nothing else
//! differs; readers take the version from the central directory (tested with the `zip` crate,
//! Python's `zipfile` and Info-ZIP past 4 GiB).
//!
//! It does not read or write object storage itself (see [`super::ObjectStore`]), compress, or
//! check names for duplicates (the caller's job, as for zipstream).

pub use crate::batch::zipstream::NameDefect;
use crate::batch::zipstream::{
    central_header, end_records, local_header, DosDateTime, EntryMeta, ZipStreamError,
    ZIP64_FROM_U32,
};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;

/// zipstream's name check, its error as ours.
fn check_name(name: &str) -> Result<u16, ZipPartsError> {
    crate::batch::zipstream::check_name(name).map_err(|error| match error {
        ZipStreamError::BadName { name, defect } => ZipPartsError::Name { name, defect },
        _ => ZipPartsError::Unreachable("zipstream's name check gave another error than BadName"),
    })
}

/// Fixed part of a local file header (APPNOTE 4.3.7).
const LOCAL_HEADER_FIXED: u64 = 30;
/// The ZIP64 extra field of a local header whose entry is 4 GiB or more (4.5.3: id, size, both
/// sizes).
const LOCAL_ZIP64_EXTRA: u64 = 20;
/// Offset of the CRC-32 inside a local file header (4.3.7).
const LOCAL_HEADER_CRC32_AT: u64 = 14;
/// Buffer for copying the manifest into the tail.
const COPY_BUFFER: usize = 256 * 1024;

/// Why writing a part, a head or a tail, or mapping a range, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZipPartsError {
    /// An earlier write failed, so the part or tail is incomplete.
    #[error("the ZIP part is incomplete after an earlier write error")]
    Broken,
    /// The archive comment does not fit its 2-byte length field (APPNOTE 4.3.16).
    #[error("ZIP comment of {0} bytes, more than 65,535")]
    CommentTooLong(usize),
    /// A central directory entry given to [`TailWriter::entry`] names a part that does not exist.
    #[error("ZIP entry {name:?}: part {part} does not exist (the archive has {parts} parts)")]
    EntryPart {
        /// The entry's name.
        name: String,
        /// The part index given.
        part: usize,
        /// The number of parts.
        parts: usize,
    },
    /// Entries must be given in archive order: by part, then by offset, without overlapping.
    #[error(
        "ZIP entry {name:?} at offset {offset} of part {part} comes before the end of the \
         previous entry ({previous_end} in part {previous_part})"
    )]
    EntryOrder {
        /// The entry's name.
        name: String,
        /// Its part.
        part: usize,
        /// Its local header's offset inside the part.
        offset: u64,
        /// The previous entry's part.
        previous_part: usize,
        /// Where the previous entry's data ends inside its part.
        previous_end: u64,
    },
    /// An entry's local header and data run past the end of its part.
    #[error(
        "ZIP entry {name:?} ends at byte {end} of part {part}, which is {part_len} bytes long"
    )]
    EntryOutsidePart {
        /// The entry's name.
        name: String,
        /// Its part.
        part: usize,
        /// Where its data ends inside the part.
        end: u64,
        /// The part's length.
        part_len: u64,
    },
    /// Writing failed.
    #[error("ZIP entry {entry:?}: {source}")]
    Io {
        /// The entry being written (or `central directory`).
        entry: String,
        /// The error.
        source: io::Error,
    },
    /// The manifest reader did not give the announced number of bytes.
    #[error("ZIP entry {name:?}: {expected} bytes announced, {read} read{}",
        if *longer { " and more followed" } else { "" })]
    Length {
        /// The entry's name.
        name: String,
        /// The length given.
        expected: u64,
        /// The bytes read (at most `expected`).
        read: u64,
        /// The reader had more than `expected` bytes.
        longer: bool,
    },
    /// A name that a ZIP must not hold or that could escape the extraction directory
    /// (zipstream's checks).
    #[error("ZIP entry name {name:?} {defect}")]
    Name {
        /// The refused name.
        name: String,
        /// What is wrong with it.
        defect: NameDefect,
    },
    /// A byte range that is empty-reversed or runs past the archive.
    #[error("byte range {start}..{end} is outside the archive of {len} bytes")]
    Range {
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The archive's length.
        len: u64,
    },
    /// A state the code rules out (a bug), instead of a panic.
    #[error("internal error: {0}")]
    Unreachable(&'static str),
}

/// What the central directory and the manifest need about one entry written by
/// [`PartWriter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartEntry {
    /// The entry's name in the archive.
    pub name: String,
    /// Offset of its local header inside the part (or the head).
    pub offset: u64,
    /// Its data's length (stored, so compressed and uncompressed alike).
    pub size: u64,
    /// CRC-32 of its data.
    pub crc32: u32,
    /// SHA-256 of its data: the manifest's `sha256` column.
    pub sha256: [u8; 32],
}

impl PartEntry {
    /// Length of the local header, name and data: where the entry ends, from its offset.
    fn span(&self) -> u64 {
        let extra = if self.size >= ZIP64_FROM_U32 {
            LOCAL_ZIP64_EXTRA
        } else {
            0
        };
        LOCAL_HEADER_FIXED + self.name.len() as u64 + extra + self.size
    }
}

/// Writes the stored local entries of one part (no central directory), and returns what the
/// central directory will need about each.
pub struct PartWriter<W: Write> {
    inner: W,
    /// Bytes written: the offset of the next local header inside the part.
    offset: u64,
    modified: DosDateTime,
    broken: bool,
}

impl<W: Write> PartWriter<W> {
    /// Starts a part on `inner`, with `modified` as every entry's date (the batch's, the same for
    /// every part of an archive; clamped to 1980..=2107 as zipstream does).
    pub fn new(inner: W, modified: time::OffsetDateTime) -> PartWriter<W> {
        PartWriter {
            inner,
            offset: 0,
            modified: DosDateTime::new(modified),
            broken: false,
        }
    }

    /// Writes one stored entry (local header with CRC-32 and sizes, then the data) and returns
    /// its metadata, SHA-256 included.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<PartEntry, ZipPartsError> {
        self.add_hashed(
            name,
            data,
            crc32fast::hash(data),
            Sha256::digest(data).into(),
        )
    }

    /// [`PartWriter::add`] of an entry whose CRC-32 and SHA-256 were computed where it was
    /// made (on a worker).
    pub fn add_file_entry(
        &mut self,
        name: &str,
        file: &crate::batch::EntryFile,
    ) -> Result<PartEntry, ZipPartsError> {
        self.add_hashed(name, file.bytes(), file.crc32(), *file.sha256())
    }

    fn add_hashed(
        &mut self,
        name: &str,
        data: &[u8],
        crc32: u32,
        sha256: [u8; 32],
    ) -> Result<PartEntry, ZipPartsError> {
        if self.broken {
            return Err(ZipPartsError::Broken);
        }
        let name_len = check_name(name)?;
        let meta = EntryMeta {
            crc32,
            size: data.len() as u64,
            local_header_offset: self.offset,
        };
        let (fixed, extra) = local_header(&meta, name_len, self.modified);
        let written = [fixed.as_bytes(), name.as_bytes(), extra.as_bytes(), data]
            .iter()
            .try_for_each(|bytes| self.inner.write_all(bytes));
        if let Err(source) = written {
            self.broken = true;
            return Err(ZipPartsError::Io {
                entry: name.to_owned(),
                source,
            });
        }
        let entry = PartEntry {
            name: name.to_owned(),
            offset: self.offset,
            size: meta.size,
            crc32: meta.crc32,
            sha256,
        };
        self.offset += entry.span();
        Ok(entry)
    }

    /// Bytes written so far: the part's length once finished.
    pub fn len(&self) -> u64 {
        self.offset
    }

    /// Whether no entry was written (an empty chunk's part is an empty object).
    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// Flushes and returns the writer and the part's length.
    pub fn finish(mut self) -> Result<(W, u64), ZipPartsError> {
        if self.broken {
            return Err(ZipPartsError::Broken);
        }
        self.inner.flush().map_err(|source| ZipPartsError::Io {
            entry: "end of part".to_owned(),
            source,
        })?;
        Ok((self.inner, self.offset))
    }
}

/// The head of a stitched archive: small entries kept in memory, first in the archive.
#[derive(Clone, Debug)]
pub struct Head {
    bytes: Bytes,
    entries: Vec<PartEntry>,
}

impl Head {
    /// Builds the head's local entries from `(name, data)` pairs, in order. The same inputs and
    /// time give the same bytes, so a node can rebuild the head of any batch.
    pub fn new(
        files: &[(&str, &[u8])],
        modified: time::OffsetDateTime,
    ) -> Result<Head, ZipPartsError> {
        let mut writer = PartWriter::new(Vec::new(), modified);
        let entries = files
            .iter()
            .map(|(name, data)| writer.add(name, data))
            .collect::<Result<Vec<_>, _>>()?;
        let (bytes, _) = writer.finish()?;
        Ok(Head {
            bytes: bytes.into(),
            entries,
        })
    }

    /// The head's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The head's entries (offsets from the archive's start).
    pub fn entries(&self) -> &[PartEntry] {
        &self.entries
    }
}

/// A piece of the archive stored as an object: a part or the tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceObject {
    /// The object's key.
    pub key: String,
    /// The object's length in bytes.
    pub len: u64,
}

/// What [`TailWriter::finish`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailSummary {
    /// The tail's length in bytes.
    pub len: u64,
    /// Entries in the central directory: head, parts and manifest.
    pub entries: u64,
    /// Whether the end records are ZIP64 ones.
    pub zip64: bool,
}

/// Writes the tail of a stitched archive: the manifest's local entry, then the central directory
/// (head entries, part entries as given, the manifest last) and the end records. Only counters
/// are kept, however many entries there are: the caller streams the part entries in (from the
/// store, for instance).
pub struct TailWriter<W: Write + Seek> {
    out: W,
    /// Where each part starts in the archive, and its length.
    parts: Vec<(u64, u64)>,
    /// Where the central directory starts in the archive.
    central_directory_offset: u64,
    /// Bytes of central directory written so far.
    central_directory_len: u64,
    entries: u64,
    modified: DosDateTime,
    manifest_name: String,
    manifest_meta: EntryMeta,
    /// The last part entry given: its part and where it ends inside that part.
    previous: Option<(usize, u64)>,
    broken: bool,
}

impl<W: Write + Seek> TailWriter<W> {
    /// Starts the tail on `out` (a file: the manifest's CRC-32 is filled in after its data, by
    /// seeking back). Writes the manifest entry, `manifest_len` bytes read from `manifest`, then
    /// the head's central directory records. `parts` are the archive's parts in order.
    pub fn new(
        mut out: W,
        head: &Head,
        parts: &[PieceObject],
        manifest_name: &str,
        manifest: &mut impl Read,
        manifest_len: u64,
        modified: time::OffsetDateTime,
    ) -> Result<TailWriter<W>, ZipPartsError> {
        let name_len = check_name(manifest_name)?;
        let io = |source| ZipPartsError::Io {
            entry: manifest_name.to_owned(),
            source,
        };
        let mut start = head.bytes.len() as u64;
        let parts: Vec<(u64, u64)> = parts
            .iter()
            .map(|part| {
                let at = start;
                start += part.len;
                (at, part.len)
            })
            .collect();
        let modified = DosDateTime::new(modified);
        let mut meta = EntryMeta {
            crc32: 0,
            size: manifest_len,
            local_header_offset: start,
        };
        let header_at = out.stream_position().map_err(io)?;
        let (fixed, extra) = local_header(&meta, name_len, modified);
        for bytes in [fixed.as_bytes(), manifest_name.as_bytes(), extra.as_bytes()] {
            out.write_all(bytes).map_err(io)?;
        }
        let mut hasher = crc32fast::Hasher::new();
        let mut buffer = vec![0; COPY_BUFFER];
        let mut read = 0u64;
        let mut longer = false;
        loop {
            let n = match manifest.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            let fits = usize::try_from(manifest_len - read).map_or(n, |left| left.min(n));
            hasher.update(&buffer[..fits]);
            out.write_all(&buffer[..fits]).map_err(io)?;
            read += fits as u64;
            if fits < n {
                longer = true;
                break;
            }
        }
        if read != manifest_len || longer {
            return Err(ZipPartsError::Length {
                name: manifest_name.to_owned(),
                expected: manifest_len,
                read,
                longer,
            });
        }
        meta.crc32 = hasher.finalize();
        let end = out.stream_position().map_err(io)?;
        out.seek(SeekFrom::Start(header_at + LOCAL_HEADER_CRC32_AT))
            .map_err(io)?;
        out.write_all(&meta.crc32.to_le_bytes()).map_err(io)?;
        out.seek(SeekFrom::Start(end)).map_err(io)?;

        let mut tail = TailWriter {
            out,
            parts,
            central_directory_offset: start + (end - header_at),
            central_directory_len: 0,
            entries: 0,
            modified,
            manifest_name: manifest_name.to_owned(),
            manifest_meta: meta,
            previous: None,
            broken: false,
        };
        for entry in &head.entries {
            tail.central_record(entry, entry.offset)?;
        }
        Ok(tail)
    }

    /// Adds the central directory record of an entry of part `part` (an index into the parts
    /// given to [`TailWriter::new`]). Entries come in archive order: by part, then by offset.
    pub fn entry(&mut self, part: usize, entry: &PartEntry) -> Result<(), ZipPartsError> {
        let Some(&(part_start, part_len)) = self.parts.get(part) else {
            return Err(ZipPartsError::EntryPart {
                name: entry.name.clone(),
                part,
                parts: self.parts.len(),
            });
        };
        if let Some((previous_part, previous_end)) = self.previous {
            if part < previous_part || (part == previous_part && entry.offset < previous_end) {
                return Err(ZipPartsError::EntryOrder {
                    name: entry.name.clone(),
                    part,
                    offset: entry.offset,
                    previous_part,
                    previous_end,
                });
            }
        }
        let end = entry.offset.saturating_add(entry.span());
        if end > part_len {
            return Err(ZipPartsError::EntryOutsidePart {
                name: entry.name.clone(),
                part,
                end,
                part_len,
            });
        }
        self.central_record(entry, part_start + entry.offset)?;
        self.previous = Some((part, end));
        Ok(())
    }

    /// Writes the manifest's central directory record, the end records and `comment` (the last
    /// bytes of the archive, as zipstream's `finish_with_comment`); flushes and returns the
    /// writer.
    pub fn finish(mut self, comment: &[u8]) -> Result<(W, TailSummary), ZipPartsError> {
        let comment_len = u16::try_from(comment.len())
            .map_err(|_| ZipPartsError::CommentTooLong(comment.len()))?;
        let name_len = check_name(&self.manifest_name)?;
        let (meta, name) = (self.manifest_meta, std::mem::take(&mut self.manifest_name));
        self.write_central(&meta, name_len, &name)?;
        let end = end_records(
            self.entries,
            self.central_directory_offset,
            self.central_directory_len,
            comment_len,
        );
        let io = |source| ZipPartsError::Io {
            entry: "end of central directory".to_owned(),
            source,
        };
        self.out.write_all(end.as_bytes()).map_err(io)?;
        self.out.write_all(comment).map_err(io)?;
        self.out.flush().map_err(io)?;
        let len = self.central_directory_offset - self.tail_start()
            + self.central_directory_len
            + end.as_bytes().len() as u64
            + comment.len() as u64;
        // The classic end record alone is 22 bytes; ZIP64 adds its record and locator.
        let zip64 = end.as_bytes().len() > 22;
        Ok((
            self.out,
            TailSummary {
                len,
                entries: self.entries,
                zip64,
            },
        ))
    }

    /// Where the tail starts in the archive (the manifest's local header).
    fn tail_start(&self) -> u64 {
        self.manifest_meta.local_header_offset
    }

    fn central_record(&mut self, entry: &PartEntry, offset: u64) -> Result<(), ZipPartsError> {
        let name_len = check_name(&entry.name)?;
        let meta = EntryMeta {
            crc32: entry.crc32,
            size: entry.size,
            local_header_offset: offset,
        };
        self.write_central(&meta, name_len, &entry.name)
    }

    fn write_central(
        &mut self,
        meta: &EntryMeta,
        name_len: u16,
        name: &str,
    ) -> Result<(), ZipPartsError> {
        if self.broken {
            return Err(ZipPartsError::Broken);
        }
        let (fixed, extra) = central_header(meta, name_len, self.modified);
        let written = [fixed.as_bytes(), name.as_bytes(), extra.as_bytes()]
            .iter()
            .try_for_each(|bytes| self.out.write_all(bytes));
        if let Err(source) = written {
            self.broken = true;
            return Err(ZipPartsError::Io {
                entry: name.to_owned(),
                source,
            });
        }
        self.central_directory_len +=
            (fixed.as_bytes().len() + name.len() + extra.as_bytes().len()) as u64;
        self.entries += 1;
        Ok(())
    }
}

/// One piece of a byte range of a stitched archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Bytes held in memory (a slice of the head).
    Bytes(Bytes),
    /// `len` bytes of object `key` from `offset`.
    Object {
        /// The object's key.
        key: &'a str,
        /// First byte inside the object.
        offset: u64,
        /// Number of bytes.
        len: u64,
    },
}

/// The layout of an archive stitched from a head, parts and a tail.
#[derive(Clone, Debug)]
pub struct Stitched {
    head: Bytes,
    /// The parts in order, then the tail.
    pieces: Vec<PieceObject>,
    /// Where each piece starts in the archive.
    starts: Vec<u64>,
    len: u64,
}

impl Stitched {
    /// The archive made of `head`, `parts` in order and `tail` (the object holding what
    /// [`TailWriter`] wrote for the same head and parts).
    pub fn new(head: &Head, parts: Vec<PieceObject>, tail: PieceObject) -> Stitched {
        let mut pieces = parts;
        pieces.push(tail);
        let mut at = head.bytes.len() as u64;
        let starts = pieces
            .iter()
            .map(|piece| {
                let start = at;
                at += piece.len;
                start
            })
            .collect();
        Stitched {
            head: head.bytes.clone(),
            pieces,
            starts,
            len: at,
        }
    }

    /// The archive's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the archive has no bytes (never, once a tail is in it: its end record alone is
    /// 22 bytes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces to read, in order, for bytes `range` of the archive (`start..end`, end
    /// excluded, as HTTP's `bytes=start-(end-1)`). An empty range gives no segment; a range
    /// past the end is an error.
    pub fn segments(&self, range: Range<u64>) -> Result<Vec<Segment<'_>>, ZipPartsError> {
        if range.start > range.end || range.end > self.len {
            return Err(ZipPartsError::Range {
                start: range.start,
                end: range.end,
                len: self.len,
            });
        }
        let mut segments = Vec::new();
        if range.is_empty() {
            return Ok(segments);
        }
        let head_len = self.head.len() as u64;
        if range.start < head_len {
            // Both ends are at most head_len here, which is a usize.
            let start = usize::try_from(range.start).unwrap_or(usize::MAX);
            let end = usize::try_from(range.end.min(head_len)).unwrap_or(usize::MAX);
            segments.push(Segment::Bytes(self.head.slice(start..end)));
        }
        // The first piece that ends after range.start.
        let first = self
            .starts
            .partition_point(|&start| start <= range.start)
            .saturating_sub(1);
        for (piece, &start) in self.pieces.iter().zip(&self.starts).skip(first) {
            if start >= range.end {
                break;
            }
            let from = range.start.max(start);
            let to = range.end.min(start + piece.len);
            if from < to {
                segments.push(Segment::Object {
                    key: &piece.key,
                    offset: from - start,
                    len: to - from,
                });
            }
        }
        Ok(segments)
    }
}

#[cfg(test)]
mod tests;
