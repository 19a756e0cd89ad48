//! A ZIP writer for stored (uncompressed) entries whose memory does not grow with the number of
//! entries.
//!
//! The `zip` crate's streaming writer keeps every entry's metadata in memory until it writes the
//! central directory at the end: about 220 bytes a device, so some 220 MB for a million-device
//! batch. This writer appends each entry's central directory record to an unlinked temporary
//! file (the spool) as soon as the entry is written, and copies the spool to the output when the
//! archive is finished. Its own state is a few counters and the spool's fixed buffer, whatever
//! the number of entries.
//!
//! Every entry is complete when its local header is written: [`ZipStream::add`] takes the data
//! in memory, [`ZipStream::add_file`] reads a file twice (CRC-32 and size, then the copy), so
//! that an entry of any size costs a fixed buffer. No entry has a data descriptor (flag bit 3):
//! streaming readers such as Java's `ZipInputStream` cannot read a stored entry that has one.
//!
//! The layout follows PKWARE's APPNOTE.TXT 6.3.x (the section numbers below are its own):
//! method 0 (stored) only, UTF-8 names (flag bit 11), CRC-32 and sizes in the local header, and
//! ZIP64 extra fields and end records once a size, an offset or the entry count outgrows the
//! classic fields.
//!
//! It does not compress, encrypt, write entry comments or directory entries, or check for duplicate
//! names (the caller's job). After a failed write the archive is incomplete: the writer refuses
//! any further call, and the caller discards the partial output.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// 4.3.7 local file header signature.
pub(crate) const LOCAL_FILE_HEADER: u32 = 0x0403_4b50;
/// 4.3.12 central directory file header signature.
const CENTRAL_FILE_HEADER: u32 = 0x0201_4b50;
/// 4.3.14 ZIP64 end of central directory record signature.
const ZIP64_END_OF_CENTRAL_DIRECTORY: u32 = 0x0606_4b50;
/// 4.3.15 ZIP64 end of central directory locator signature.
const ZIP64_END_LOCATOR: u32 = 0x0706_4b50;
/// 4.3.16 end of central directory record signature.
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
/// 4.5.3 ZIP64 extended information extra field header id.
const ZIP64_EXTRA_FIELD: u16 = 0x0001;

/// 4.4.4 bit 11 (language encoding flag): the name is UTF-8.
const FLAG_UTF8: u16 = 1 << 11;
/// 4.4.5 compression method 0: stored.
const METHOD_STORED: u16 = 0;
/// 4.4.3.2: 2.0 is what most writers put for stored entries (1.0 would do).
const VERSION_NEEDED_DEFAULT: u16 = 20;
/// 4.4.3.2: 4.5, ZIP64 format extensions.
const VERSION_NEEDED_ZIP64: u16 = 45;
/// 4.4.2: upper byte 3 = UNIX (so readers apply the external attributes' mode), lower byte 63 =
/// APPNOTE 6.3, the version that defined the language encoding flag we set.
const VERSION_MADE_BY: u16 = 3 << 8 | 63;
/// 4.4.15: on UNIX the upper 16 bits hold `st_mode`: a regular file, read-write for its owner.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_600 << 16;

/// 4.4.8, 4.4.9, 4.4.16, 4.4.23, 4.4.24: a 4-byte size or offset at or above this value moves to ZIP64
/// (the value itself is the marker, so it cannot be stored as is).
pub(crate) const ZIP64_FROM_U32: u64 = 0xFFFF_FFFF;
/// 4.4.21, 4.4.22: the same for the 2-byte entry counts of the end of central directory record.
const ZIP64_FROM_U16: u64 = 0xFFFF;
/// 4.4.10: a name's length is a 2-byte field.
const MAX_NAME_LEN: usize = 0xFFFF;
/// Buffer of the central directory spool.
const SPOOL_BUFFER: usize = 64 * 1024;
/// Buffer of [`ZipStream::add_file`]'s two passes over the file.
const FILE_BUFFER: usize = 256 * 1024;

/// Why [`ZipStream`] refused a call. It travels inside an [`io::Error`], as the writer's interface
/// is `io::Result`; [`io::Error::get_ref`] and `downcast` give it back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ZipStreamError {
    /// A name that a ZIP must not hold (4.4.17.1) or that could escape the extraction directory.
    #[error("ZIP entry name {}: {defect}", ShortName(name))]
    BadName {
        /// The refused name.
        name: String,
        /// What is wrong with it.
        defect: NameDefect,
    },
    /// An earlier write failed, so the archive is incomplete.
    #[error("the ZIP archive is incomplete after an earlier write error")]
    Broken,
    /// The file given to `add_file` changed between its two passes: the local header already
    /// holds the first pass's CRC-32 and size, so the archive is incomplete.
    #[error(
        "the file for ZIP entry {} changed while it was copied: {expected} bytes with CRC-32 \
         {expected_crc32:08x} in the header, {copied} bytes with CRC-32 {copied_crc32:08x} \
         copied{}",
        ShortName(name),
        if *grew { ", and more followed" } else { "" }
    )]
    FileChanged {
        /// The entry's name.
        name: String,
        /// Size read by the first pass, written in the headers.
        expected: u64,
        /// CRC-32 computed by the first pass, written in the headers.
        expected_crc32: u32,
        /// Bytes copied by the second pass (at most `expected`).
        copied: u64,
        /// CRC-32 of the copied bytes.
        copied_crc32: u32,
        /// The file had more than `expected` bytes on the second pass.
        grew: bool,
    },
    /// The spool did not give back what was written to it.
    #[error("the central directory spool holds {copied} bytes, {expected} were written")]
    SpoolLength {
        /// Bytes written to the spool.
        expected: u64,
        /// Bytes copied back from it.
        copied: u64,
    },
}

impl From<ZipStreamError> for io::Error {
    fn from(error: ZipStreamError) -> io::Error {
        let kind = match error {
            ZipStreamError::BadName { .. } => io::ErrorKind::InvalidInput,
            ZipStreamError::FileChanged { .. } => io::ErrorKind::InvalidData,
            ZipStreamError::Broken | ZipStreamError::SpoolLength { .. } => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

/// What is wrong with an entry name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameDefect {
    /// Starts with `/` or a drive letter (4.4.17.1).
    #[error("is absolute")]
    Absolute,
    /// Holds a `\` (4.4.17.1: all slashes are forward slashes).
    #[error("contains a backslash")]
    Backslash,
    /// Ends with `/`, which names a directory; this writer writes files only.
    #[error("names a directory")]
    Directory,
    /// Empty.
    #[error("is empty")]
    Empty,
    /// Holds a NUL byte.
    #[error("contains a NUL byte")]
    Nul,
    /// Has a `..` component.
    #[error("contains a '..' component")]
    ParentComponent,
    /// Longer than the 2-byte length field allows (4.4.10).
    #[error("is {0} bytes long, more than 65535")]
    TooLong(usize),
}

/// A name in a message: at most 64 characters of it, so that a 64 KiB name stays readable.
struct ShortName<'a>(&'a str);

impl fmt::Display for ShortName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(64) {
            Some((end, _)) => write!(f, "{:?}... ({} bytes)", &self.0[..end], self.0.len()),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// Checks a name against 4.4.17.1 and the extraction hazards; returns its length for the header.
pub(crate) fn check_name(name: &str) -> Result<u16, ZipStreamError> {
    let bytes = name.as_bytes();
    let defect = if name.is_empty() {
        Some(NameDefect::Empty)
    } else if name.len() > MAX_NAME_LEN {
        Some(NameDefect::TooLong(name.len()))
    } else if bytes.contains(&0) {
        Some(NameDefect::Nul)
    } else if bytes.contains(&b'\\') {
        Some(NameDefect::Backslash)
    } else if bytes[0] == b'/'
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
    {
        Some(NameDefect::Absolute)
    } else if name.split('/').any(|component| component == "..") {
        Some(NameDefect::ParentComponent)
    } else if name.ends_with('/') {
        Some(NameDefect::Directory)
    } else {
        None
    };
    match (defect, u16::try_from(name.len())) {
        (None, Ok(len)) => Ok(len),
        (Some(defect), _) => Err(ZipStreamError::BadName {
            name: name.to_owned(),
            defect,
        }),
        // Unreachable: lengths above 65535 were refused as TooLong just above.
        (None, Err(_)) => Err(ZipStreamError::BadName {
            name: name.to_owned(),
            defect: NameDefect::TooLong(name.len()),
        }),
    }
}

/// 4.4.6 MS-DOS date and time, the modification stamp of every entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DosDateTime {
    date: u16,
    time: u16,
}

impl DosDateTime {
    /// Takes the fields as given (the caller passes UTC), clamped to the years 1980..=2107 that
    /// the 7-bit year field counts; seconds are rounded down to even ones.
    pub(crate) fn new(modified: time::OffsetDateTime) -> DosDateTime {
        let (year, month, day, hour, minute, second) = match modified.year() {
            year if year < 1980 => (0, 1, 1, 0, 0, 0),
            year if year > 2107 => (127, 12, 31, 23, 59, 58),
            year => (
                // 0..=127 inside this arm.
                u16::try_from(year - 1980).unwrap_or(0),
                u8::from(modified.month()),
                modified.day(),
                modified.hour(),
                modified.minute(),
                modified.second(),
            ),
        };
        DosDateTime {
            date: year << 9 | u16::from(month) << 5 | u16::from(day),
            time: u16::from(hour) << 11 | u16::from(minute) << 5 | u16::from(second / 2),
        }
    }
}

/// A little-endian record built on the stack. `N` is the largest record of its kind; every
/// builder below writes at most `N` bytes (checked by the tests at the maximum), so `put` never
/// runs past the array.
#[derive(Clone, Copy)]
pub(crate) struct Record<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Record<N> {
    fn new() -> Self {
        Record {
            bytes: [0; N],
            len: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self
    }

    fn u16(&mut self, value: u16) -> &mut Self {
        self.put(&value.to_le_bytes())
    }

    fn u32(&mut self, value: u32) -> &mut Self {
        self.put(&value.to_le_bytes())
    }

    fn u64(&mut self, value: u64) -> &mut Self {
        self.put(&value.to_le_bytes())
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The length for a 2-byte length field; `N` stays well below 65536 for every record here.
    fn len_u16(&self) -> u16 {
        u16::try_from(self.len).unwrap_or(u16::MAX)
    }
}

/// A size or offset for a 4-byte field, or the ZIP64 marker when it does not fit.
fn u32_or_marker(value: u64) -> u32 {
    if value >= ZIP64_FROM_U32 {
        u32::MAX
    } else {
        // Below 0xFFFFFFFF here.
        u32::try_from(value).unwrap_or(u32::MAX)
    }
}

/// What the headers record about one stored entry (so compressed size = uncompressed size). Its
/// general purpose flags are always [`FLAG_UTF8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryMeta {
    pub(crate) crc32: u32,
    pub(crate) size: u64,
    pub(crate) local_header_offset: u64,
}

impl EntryMeta {
    /// 4.5.3: a ZIP64 extra field is needed once the size or the offset reaches the marker.
    fn uses_zip64(&self) -> bool {
        self.size >= ZIP64_FROM_U32 || self.local_header_offset >= ZIP64_FROM_U32
    }

    fn version_needed(&self) -> u16 {
        if self.uses_zip64() {
            VERSION_NEEDED_ZIP64
        } else {
            VERSION_NEEDED_DEFAULT
        }
    }
}

/// 4.3.7 local file header (fixed part, 30 bytes) and its extra field; the name goes between.
///
/// CRC-32 and sizes are always here (no data descriptor). An entry of 0xFFFFFFFF bytes or more
/// has the marker in both size fields and a ZIP64 field with both sizes, uncompressed first
/// (4.5.3: "This entry in the Local header MUST include BOTH original and compressed file size
/// fields"). The local header has no offset field, so an entry that is ZIP64 only by its offset
/// has no ZIP64 field here, but its version needed is 4.5 like in the central directory.
pub(crate) fn local_header(
    meta: &EntryMeta,
    name_len: u16,
    modified: DosDateTime,
) -> (Record<30>, Record<20>) {
    let mut extra = Record::<20>::new();
    if meta.size >= ZIP64_FROM_U32 {
        extra
            .u16(ZIP64_EXTRA_FIELD)
            .u16(16)
            .u64(meta.size) // uncompressed size
            .u64(meta.size); // compressed size
    }
    let size = u32_or_marker(meta.size);
    let mut fixed = Record::<30>::new();
    fixed
        .u32(LOCAL_FILE_HEADER)
        .u16(meta.version_needed())
        .u16(FLAG_UTF8)
        .u16(METHOD_STORED)
        .u16(modified.time)
        .u16(modified.date)
        .u32(meta.crc32)
        .u32(size) // compressed size
        .u32(size) // uncompressed size
        .u16(name_len)
        .u16(extra.len_u16());
    (fixed, extra)
}

/// 4.3.12 central directory file header (fixed part, 46 bytes) and its extra field; the name
/// goes between. The ZIP64 field holds only the fields that overflow, in the order of 4.5.3:
/// uncompressed size, compressed size, local header offset.
pub(crate) fn central_header(
    meta: &EntryMeta,
    name_len: u16,
    modified: DosDateTime,
) -> (Record<46>, Record<28>) {
    let mut zip64 = Record::<24>::new();
    if meta.size >= ZIP64_FROM_U32 {
        zip64.u64(meta.size).u64(meta.size);
    }
    if meta.local_header_offset >= ZIP64_FROM_U32 {
        zip64.u64(meta.local_header_offset);
    }
    let mut extra = Record::<28>::new();
    if zip64.len > 0 {
        extra
            .u16(ZIP64_EXTRA_FIELD)
            .u16(zip64.len_u16())
            .put(zip64.as_bytes());
    }
    let mut fixed = Record::<46>::new();
    fixed
        .u32(CENTRAL_FILE_HEADER)
        .u16(VERSION_MADE_BY)
        .u16(meta.version_needed())
        .u16(FLAG_UTF8)
        .u16(METHOD_STORED)
        .u16(modified.time)
        .u16(modified.date)
        .u32(meta.crc32)
        .u32(u32_or_marker(meta.size)) // compressed size
        .u32(u32_or_marker(meta.size)) // uncompressed size
        .u16(name_len)
        .u16(extra.len_u16())
        .u16(0) // file comment length
        .u16(0) // disk number start
        .u16(0) // internal file attributes
        .u32(EXTERNAL_ATTRIBUTES)
        .u32(u32_or_marker(meta.local_header_offset));
    (fixed, extra)
}

/// The end records after a central directory of `entries` records, `size` bytes long, starting
/// at `offset`: the 4.3.14 ZIP64 record and 4.3.15 locator when a count or a field outgrows the
/// classic 4.3.16 record, then that record, with 0xFFFF / 0xFFFFFFFF in the fields that do not
/// fit (4.4.1.4).
///
/// ZIP64 starts at 0xFFFF entries, not above it: 0xFFFF itself is the marker, and a reader seeing
/// it looks for the ZIP64 record.
pub(crate) fn end_records(entries: u64, offset: u64, size: u64, comment_len: u16) -> Record<98> {
    let mut record = Record::<98>::new();
    if entries >= ZIP64_FROM_U16 || offset >= ZIP64_FROM_U32 || size >= ZIP64_FROM_U32 {
        let zip64_end_offset = offset + size;
        record
            .u32(ZIP64_END_OF_CENTRAL_DIRECTORY)
            .u64(44) // 4.3.14.1: size of the record less its leading 12 bytes
            .u16(VERSION_MADE_BY)
            .u16(VERSION_NEEDED_ZIP64)
            .u32(0) // number of this disk
            .u32(0) // disk where the central directory starts
            .u64(entries) // entries on this disk
            .u64(entries) // entries in all
            .u64(size)
            .u64(offset);
        record
            .u32(ZIP64_END_LOCATOR)
            .u32(0) // disk holding the ZIP64 end record
            .u64(zip64_end_offset)
            .u32(1); // total number of disks
    }
    let entries = u16::try_from(entries)
        .ok()
        .filter(|&count| u64::from(count) < ZIP64_FROM_U16)
        .unwrap_or(u16::MAX);
    record
        .u32(END_OF_CENTRAL_DIRECTORY)
        .u16(0) // number of this disk
        .u16(0) // disk where the central directory starts
        .u16(entries) // entries on this disk
        .u16(entries) // entries in all
        .u32(u32_or_marker(size))
        .u32(u32_or_marker(offset))
        .u16(comment_len); // 4.3.16: .ZIP file comment length
    record
}

/// The central directory, written ahead to an unlinked temporary file.
struct Spool {
    writer: BufWriter<File>,
    /// Bytes written so far: the central directory's size.
    len: u64,
}

impl Spool {
    fn append(
        &mut self,
        meta: &EntryMeta,
        name: &str,
        name_len: u16,
        modified: DosDateTime,
    ) -> io::Result<()> {
        let (fixed, extra) = central_header(meta, name_len, modified);
        self.writer.write_all(fixed.as_bytes())?;
        self.writer.write_all(name.as_bytes())?;
        self.writer.write_all(extra.as_bytes())?;
        self.len += (fixed.len + name.len() + extra.len) as u64;
        Ok(())
    }
}

/// A ZIP writer for stored (uncompressed) entries whose memory does not grow with the number of
/// entries.
pub(crate) struct ZipStream<W: Write> {
    inner: W,
    /// Bytes written to `inner`: the offset of the next local header.
    offset: u64,
    spool: Spool,
    entries: u64,
    modified: DosDateTime,
    /// A write failed: the archive is incomplete.
    broken: bool,
}

impl<W: Write> ZipStream<W> {
    /// Starts an archive on `inner`, with the central directory spooled to a temporary file in
    /// `spool_dir` and `modified` as every entry's date (clamped to 1980..=2107).
    pub(crate) fn new(
        inner: W,
        spool_dir: &Path,
        modified: time::OffsetDateTime,
    ) -> io::Result<Self> {
        let spool = tempfile::tempfile_in(spool_dir)?;
        Ok(ZipStream {
            inner,
            offset: 0,
            spool: Spool {
                writer: BufWriter::with_capacity(SPOOL_BUFFER, spool),
                len: 0,
            },
            entries: 0,
            modified: DosDateTime::new(modified),
            broken: false,
        })
    }

    /// Writes one complete stored entry: local header with CRC-32 and sizes, data, and its
    /// central directory record to the spool.
    pub(crate) fn add(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.add_hashed(name, data, crc32fast::hash(data))
    }

    /// [`ZipStream::add`] of an entry whose CRC-32 was computed where it was made.
    pub(crate) fn add_file_entry(&mut self, name: &str, file: &super::EntryFile) -> io::Result<()> {
        self.add_hashed(name, file.bytes(), file.crc32())
    }

    fn add_hashed(&mut self, name: &str, data: &[u8], crc32: u32) -> io::Result<()> {
        self.check_usable()?;
        let name_len = check_name(name)?;
        let meta = EntryMeta {
            crc32,
            size: data.len() as u64,
            local_header_offset: self.offset,
        };
        self.guard(|this| {
            this.emit_local_header(&meta, name, name_len)?;
            this.emit(data)?;
            this.spool.append(&meta, name, name_len, this.modified)?;
            this.entries += 1;
            Ok(())
        })
    }

    /// Writes one complete stored entry from a file (or any seekable reader), read twice from
    /// its start: CRC-32 and size first, then the copy. So the local header carries the CRC-32
    /// and sizes (with a ZIP64 field from 0xFFFFFFFF bytes on), no data descriptor is needed,
    /// and memory stays at one fixed buffer however large the file is. Streaming readers that
    /// cannot handle a data descriptor on a stored entry (Java's `ZipInputStream`) read it too.
    ///
    /// The file must not change between the two passes: the copy is checked against the first
    /// pass, and a different size or CRC-32 is a [`ZipStreamError::FileChanged`] error after
    /// which the archive is incomplete. An error of the first pass writes nothing and leaves
    /// the writer usable.
    pub(crate) fn add_file<R: Read + Seek>(&mut self, name: &str, file: &mut R) -> io::Result<()> {
        self.check_usable()?;
        let name_len = check_name(name)?;
        let mut buffer = vec![0; FILE_BUFFER];
        file.seek(SeekFrom::Start(0))?;
        let (crc32, size) = read_through(file, u64::MAX, &mut buffer, |_| Ok(()))?;
        file.seek(SeekFrom::Start(0))?;
        let meta = EntryMeta {
            crc32,
            size,
            local_header_offset: self.offset,
        };
        self.guard(|this| {
            this.emit_local_header(&meta, name, name_len)?;
            let (copied_crc32, copied) =
                read_through(file, size, &mut buffer, |chunk| this.emit(chunk))?;
            let grew = copied == size && read_through(file, 1, &mut buffer, |_| Ok(()))?.1 > 0;
            if copied != size || copied_crc32 != crc32 || grew {
                return Err(ZipStreamError::FileChanged {
                    name: name.to_owned(),
                    expected: size,
                    expected_crc32: crc32,
                    copied,
                    copied_crc32,
                    grew,
                }
                .into());
            }
            this.spool.append(&meta, name, name_len, this.modified)?;
            this.entries += 1;
            Ok(())
        })
    }

    /// Copies the spooled central directory to the output, then the end records (ZIP64 ones
    /// when needed), flushes and returns the inner writer.
    #[cfg(test)]
    pub(crate) fn finish(self) -> io::Result<W> {
        self.finish_with_comment(b"")
    }

    /// [`finish`](Self::finish) with an archive comment (4.3.16): the last bytes of the file,
    /// after their 2-byte length, so a reader finds them without parsing the archive.
    pub(crate) fn finish_with_comment(mut self, comment: &[u8]) -> io::Result<W> {
        self.check_usable()?;
        let comment_len = u16::try_from(comment.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "ZIP comment over 65,535 bytes")
        })?;
        let central_directory_offset = self.offset;
        let central_directory_size = self.spool.len;
        let mut spool = self
            .spool
            .writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        spool.seek(SeekFrom::Start(0))?;
        let copied = io::copy(&mut spool.take(central_directory_size), &mut self.inner)?;
        if copied != central_directory_size {
            return Err(ZipStreamError::SpoolLength {
                expected: central_directory_size,
                copied,
            }
            .into());
        }
        let end = end_records(
            self.entries,
            central_directory_offset,
            central_directory_size,
            comment_len,
        );
        self.inner.write_all(end.as_bytes())?;
        self.inner.write_all(comment)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn emit_local_header(&mut self, meta: &EntryMeta, name: &str, name_len: u16) -> io::Result<()> {
        let (fixed, extra) = local_header(meta, name_len, self.modified);
        self.emit(fixed.as_bytes())?;
        self.emit(name.as_bytes())?;
        self.emit(extra.as_bytes())
    }

    /// Runs a step that writes; if it fails, the archive is incomplete and the writer refuses
    /// any further call.
    fn guard(&mut self, step: impl FnOnce(&mut Self) -> io::Result<()>) -> io::Result<()> {
        let result = step(self);
        self.broken |= result.is_err();
        result
    }

    fn check_usable(&self) -> io::Result<()> {
        if self.broken {
            return Err(ZipStreamError::Broken.into());
        }
        Ok(())
    }

    /// Heap bytes the writer holds itself: fixed whatever the number of entries.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.spool.writer.capacity()
    }
}

/// Reads `reader` to its end or to `limit` bytes, whichever comes first, through `buffer`, and
/// hands each chunk to `sink`; returns the CRC-32 and the length of what was read.
fn read_through(
    reader: &mut impl Read,
    limit: u64,
    buffer: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<(u32, u64)> {
    let mut hasher = crc32fast::Hasher::new();
    let mut read = 0u64;
    while read < limit {
        let want =
            usize::try_from(limit - read).map_or(buffer.len(), |left| left.min(buffer.len()));
        let n = match reader.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        sink(&buffer[..n])?;
        read += n as u64;
    }
    Ok((hasher.finalize(), read))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::io::Cursor;
    use std::process::Command;
    use time::macros::datetime;

    /// Stamp of the test archives; DOS time keeps even seconds, so it reads back as :30.
    const MODIFIED: time::OffsetDateTime = datetime!(2024-05-17 13:45:31 UTC);
    const MODIFIED_READ_BACK: (u16, u8, u8, u8, u8, u8) = (2024, 5, 17, 13, 45, 30);

    /// Deterministic bytes that look like a PKCS#12 to a compressor (that is, random).
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[3]
            })
            .collect()
    }

    fn sample_entries() -> Vec<(String, Vec<u8>)> {
        let mut entries = vec![(
            "chain.pem".to_owned(),
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec(),
        )];
        for i in 0..8u64 {
            entries.push((format!("devices/sensor-{i:04}.p12"), noise(i, 2500)));
        }
        entries.push(("devices/capteur-é-ü-日本.p12".to_owned(), noise(99, 2600)));
        entries.push(("empty.txt".to_owned(), Vec::new()));
        entries
    }

    fn write_archive(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let spool = tempfile::tempdir().unwrap();
        let mut zip = ZipStream::new(Vec::new(), spool.path(), MODIFIED).unwrap();
        for (name, data) in entries {
            zip.add(name, data).unwrap();
        }
        zip.finish().unwrap()
    }

    fn le16(bytes: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
    }

    fn le32(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    fn le64(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    /// Runs an outside tool, or returns None (after saying so) when it is not installed.
    fn run_tool(program: &str, args: &[&str]) -> Option<std::process::Output> {
        match Command::new(program)
            .args(args)
            .env("PYTHONIOENCODING", "utf-8")
            .output()
        {
            Ok(output) => Some(output),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                println!("skipped: {program} is not installed");
                None
            }
            Err(e) => panic!("{program}: {e}"),
        }
    }

    /// Python's `zipfile`: `testzip()` (reads every member, checks every CRC), then one line per
    /// member: name, length, CRC, mode, date, flags, method, and the members' SHA-256.
    const PYTHON_CHECK: &str = r#"
import hashlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    assert bad is None, bad
    for i in z.infolist():
        data = z.read(i)
        print(i.filename, len(data), "%08x" % i.CRC, "%o" % (i.external_attr >> 16),
              "%d-%d-%d %d:%d:%d" % i.date_time, i.flag_bits, i.compress_type,
              hashlib.sha256(data).hexdigest(), sep="\t")
"#;

    fn sha256_hex(data: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(data)
            .iter()
            .fold(String::new(), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }

    /// The line `PYTHON_CHECK` prints for an entry: flags 0x0800 (UTF-8, no data descriptor).
    fn python_line(name: &str, data: &[u8]) -> String {
        format!(
            "{name}\t{}\t{:08x}\t100600\t2024-5-17 13:45:30\t2048\t0\t{}",
            data.len(),
            crc32fast::hash(data),
            sha256_hex(data)
        )
    }

    /// An entry whose hashes were made by [`EntryFile::new`] on a worker is written byte for
    /// byte as [`ZipStream::add`] writes the bare bytes, and the hashes are the crates' own.
    #[test]
    fn hashed_entry_files_write_the_same_archive() {
        use sha2::{Digest, Sha256};
        let entries = sample_entries();
        let spool = tempfile::tempdir().unwrap();
        let mut zip = ZipStream::new(Vec::new(), spool.path(), MODIFIED).unwrap();
        for (name, data) in &entries {
            let file = super::super::EntryFile::new(data.clone());
            assert_eq!(file.crc32(), crc32fast::hash(data), "{name}");
            assert_eq!(file.sha256()[..], Sha256::digest(data)[..], "{name}");
            assert_eq!(file.bytes(), data.as_slice());
            zip.add_file_entry(name, &file).unwrap();
        }
        assert_eq!(zip.finish().unwrap(), write_archive(&entries));
        let empty = super::super::EntryFile::default();
        let hashed = super::super::EntryFile::new(Vec::new());
        assert_eq!(
            (empty.bytes(), empty.crc32(), empty.sha256()),
            (hashed.bytes(), hashed.crc32(), hashed.sha256())
        );
    }

    #[test]
    fn round_trip_through_the_zip_crate() {
        let entries = sample_entries();
        let bytes = write_archive(&entries);
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
        assert_eq!(archive.len(), entries.len());
        for (index, (name, data)) in entries.iter().enumerate() {
            let mut file = archive.by_index(index).unwrap();
            assert_eq!(file.name().unwrap(), name.as_str());
            assert_eq!(file.compression(), zip::CompressionMethod::Stored);
            assert_eq!(file.size(), data.len() as u64);
            assert_eq!(file.compressed_size(), data.len() as u64);
            assert_eq!(file.crc32(), crc32fast::hash(data));
            assert_eq!(file.unix_mode(), Some(0o100_600));
            assert_eq!(file.version_made_by(), (6, 3));
            // The zip crate derives `version_needed()` rather than reading it: check the bytes.
            let central = usize::try_from(file.central_header_start()).unwrap();
            let local = usize::try_from(file.header_start()).unwrap();
            assert_eq!(le16(&bytes, central + 6), 20);
            assert_eq!(le16(&bytes, local + 4), 20);
            let modified = file.last_modified().unwrap();
            assert_eq!(
                (
                    modified.year(),
                    modified.month(),
                    modified.day(),
                    modified.hour(),
                    modified.minute(),
                    modified.second()
                ),
                MODIFIED_READ_BACK
            );
            let mut read = Vec::new();
            // The zip crate checks the CRC-32 when the entry is read to its end.
            file.read_to_end(&mut read).unwrap();
            assert_eq!(&read, data, "{name}");
        }
    }

    #[test]
    fn zip_crate_catches_a_corrupted_byte() {
        let bytes = write_archive(&[("a.bin".to_owned(), noise(1, 100))]);
        let mut corrupted = bytes.clone();
        // Data starts after the 30-byte local header and the 5-byte name.
        corrupted[30 + 5 + 10] ^= 1;
        let mut archive = zip::ZipArchive::new(Cursor::new(corrupted)).unwrap();
        let mut file = archive.by_index(0).unwrap();
        assert!(file.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn empty_archive_is_valid() {
        let bytes = write_archive(&[]);
        assert_eq!(bytes.len(), 22);
        assert_eq!(zip::ZipArchive::new(Cursor::new(bytes)).unwrap().len(), 0);
    }

    #[test]
    fn python_zipfile_and_info_zip_accept_the_archive() {
        let entries = sample_entries();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batch.zip");
        std::fs::write(&path, write_archive(&entries)).unwrap();
        let path = path.to_str().unwrap();

        if let Some(output) = run_tool("python3", &["-c", PYTHON_CHECK, path]) {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let expected: Vec<String> = entries
                .iter()
                .map(|(name, data)| python_line(name, data))
                .collect();
            let stdout = String::from_utf8(output.stdout).unwrap();
            assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
        }
        if let Some(output) = run_tool("unzip", &["-t", path]) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{stdout}");
            assert!(stdout.contains("No errors detected"), "{stdout}");
            assert_eq!(stdout.matches("  OK").count(), entries.len(), "{stdout}");
        }
        if let Some(output) = run_tool("zipinfo", &[path]) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{stdout}");
            // zipinfo -s: mode, "made by" version and host, version needed, method.
            let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('-')).collect();
            assert_eq!(lines.len(), entries.len(), "{stdout}");
            for line in lines {
                assert!(line.starts_with("-rw-------  6.3 unx"), "{line}");
                assert!(line.contains(" stor 24-May-17 13:45 "), "{line}");
            }
        }
    }

    #[test]
    fn zip64_by_entry_count() {
        const COUNT: u64 = 70_000;
        let spool = tempfile::tempdir().unwrap();
        let mut zip = ZipStream::new(Vec::new(), spool.path(), MODIFIED).unwrap();
        let mut name = String::new();
        let mut data = String::new();
        for i in 0..COUNT {
            name.clear();
            data.clear();
            write!(name, "d/{i:05}.p12").unwrap();
            write!(data, "device {i}").unwrap();
            zip.add(&name, data.as_bytes()).unwrap();
        }
        let bytes = zip.finish().unwrap();

        // End records, by hand: EOCD with the count marker, locator, ZIP64 record.
        let eocd = bytes.len() - 22;
        assert_eq!(le32(&bytes, eocd), END_OF_CENTRAL_DIRECTORY);
        assert_eq!(le16(&bytes, eocd + 8), 0xFFFF);
        assert_eq!(le16(&bytes, eocd + 10), 0xFFFF);
        let locator = eocd - 20;
        assert_eq!(le32(&bytes, locator), ZIP64_END_LOCATOR);
        let zip64_end = usize::try_from(le64(&bytes, locator + 8)).unwrap();
        assert_eq!(zip64_end, locator - 56);
        assert_eq!(le32(&bytes, zip64_end), ZIP64_END_OF_CENTRAL_DIRECTORY);
        assert_eq!(le64(&bytes, zip64_end + 24), COUNT);
        assert_eq!(le64(&bytes, zip64_end + 32), COUNT);
        let cd_size = le64(&bytes, zip64_end + 40);
        let cd_offset = le64(&bytes, zip64_end + 48);
        assert_eq!(cd_offset + cd_size, zip64_end as u64);
        // Size and offset fit, so the classic record holds them as they are.
        assert_eq!(u64::from(le32(&bytes, eocd + 12)), cd_size);
        assert_eq!(u64::from(le32(&bytes, eocd + 16)), cd_offset);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("many.zip");
        std::fs::write(&path, &bytes).unwrap();
        let path = path.to_str().unwrap();

        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len() as u64, COUNT);
        for (index, expected_name, expected_data) in [
            (0, "d/00000.p12", "device 0"),
            (69_999, "d/69999.p12", "device 69999"),
        ] {
            let mut file = archive.by_index(index).unwrap();
            assert_eq!(file.name().unwrap(), expected_name);
            let mut read = String::new();
            file.read_to_string(&mut read).unwrap();
            assert_eq!(read, expected_data);
        }

        let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = z.namelist()
    first, last = names[0], names[-1]
    print(len(names), first, z.read(first).decode(), last, z.read(last).decode(), sep="\t")
"#;
        if let Some(output) = run_tool("python3", &["-c", script, path]) {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                String::from_utf8(output.stdout).unwrap().trim_end(),
                "70000\td/00000.p12\tdevice 0\td/69999.p12\tdevice 69999"
            );
        }
        if let Some(output) = run_tool("unzip", &["-tq", path]) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{stdout}");
            assert!(stdout.contains("No errors detected"), "{stdout}");
        }
    }

    /// A temporary file holding `data`, left positioned at its end (as the batch writer leaves
    /// its manifest), so that `add_file` has to seek back to the start.
    fn temp_file_with(dir: &Path, data: &[u8]) -> File {
        let mut file = tempfile::tempfile_in(dir).unwrap();
        file.write_all(data).unwrap();
        file
    }

    /// Reads the archive front to back through its local headers only, as Java's
    /// `ZipInputStream` does: this fails on a stored entry with a data descriptor.
    fn read_as_a_stream(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut reader = bytes;
        let mut entries = Vec::new();
        while let Some(mut file) = zip::read::read_zipfile_from_stream(&mut reader).unwrap() {
            let name = file.name().unwrap().into_owned();
            let mut data = Vec::new();
            file.read_to_end(&mut data).unwrap();
            entries.push((name, data));
        }
        entries
    }

    #[test]
    fn add_file_entry_reads_back_identical() {
        let mut manifest = String::new();
        for i in 0..40_000u32 {
            writeln!(manifest, "{i},device-{i:06},{:064x}", u64::from(i) * 7919).unwrap();
        }
        let manifest = manifest.into_bytes();
        assert!(manifest.len() > 3_000_000);
        let chain = b"chain".to_vec();
        let after = noise(5, 2500);

        let dir = tempfile::tempdir().unwrap();
        let mut file = temp_file_with(dir.path(), &manifest);
        let mut zip = ZipStream::new(Vec::new(), dir.path(), MODIFIED).unwrap();
        zip.add("chain.pem", &chain).unwrap();
        zip.add_file("manifest.csv", &mut file).unwrap();
        // An entry after the file lands at the right offset.
        zip.add("after.p12", &after).unwrap();
        let bytes = zip.finish().unwrap();

        // The local header, by hand (4.3.7): CRC-32 and sizes, flag bit 3 clear, no extra field,
        // and the data followed directly by the next local header (no data descriptor).
        let header = 30 + "chain.pem".len() + chain.len();
        assert_eq!(le32(&bytes, header), LOCAL_FILE_HEADER);
        assert_eq!(le16(&bytes, header + 4), 20);
        assert_eq!(le16(&bytes, header + 6), FLAG_UTF8);
        assert_eq!(le16(&bytes, header + 6) & 1 << 3, 0);
        assert_eq!(le32(&bytes, header + 14), crc32fast::hash(&manifest));
        assert_eq!(le32(&bytes, header + 18) as usize, manifest.len());
        assert_eq!(le32(&bytes, header + 22) as usize, manifest.len());
        assert_eq!(
            (le16(&bytes, header + 26), le16(&bytes, header + 28)),
            (12, 0)
        );
        let data = header + 30 + "manifest.csv".len();
        assert_eq!(&bytes[data..data + manifest.len()], manifest.as_slice());
        assert_eq!(le32(&bytes, data + manifest.len()), LOCAL_FILE_HEADER);

        let expected = [
            ("chain.pem", &chain),
            ("manifest.csv", &manifest),
            ("after.p12", &after),
        ];
        let streamed = read_as_a_stream(&bytes);
        assert_eq!(streamed.len(), expected.len());
        for ((name, data), (expected_name, expected_data)) in streamed.iter().zip(expected) {
            assert_eq!(name, expected_name);
            assert!(data == expected_data, "{name}");
        }

        let path = dir.path().join("manifest.zip");
        std::fs::write(&path, &bytes).unwrap();
        let path = path.to_str().unwrap();

        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), expected.len());
        for (name, data) in expected {
            let mut file = archive.by_name(name).unwrap();
            assert_eq!(file.crc32(), crc32fast::hash(data));
            let mut read = Vec::new();
            file.read_to_end(&mut read).unwrap();
            assert!(read == *data, "{name}");
        }

        if let Some(output) = run_tool("python3", &["-c", PYTHON_CHECK, path]) {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let expected: Vec<String> = expected
                .iter()
                .map(|(name, data)| python_line(name, data))
                .collect();
            let stdout = String::from_utf8(output.stdout).unwrap();
            assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
        }
        if let Some(output) = run_tool("unzip", &["-t", path]) {
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{stdout}");
            assert!(stdout.contains("No errors detected"), "{stdout}");
            assert_eq!(stdout.matches("  OK").count(), 3, "{stdout}");
        }
    }

    #[test]
    fn the_archive_comment_ends_the_file_and_the_zip_crate_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut zip = ZipStream::new(Vec::new(), dir.path(), MODIFIED).unwrap();
        zip.add("a.txt", b"a").unwrap();
        let bytes = zip.finish_with_comment(b"certmill batch 42").unwrap();
        assert!(bytes.ends_with(b"\x11\x00certmill batch 42"));
        let archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.comment(), b"certmill batch 42");
        assert_eq!(archive.len(), 1);
    }

    #[test]
    fn add_file_of_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut empty = tempfile::tempfile_in(dir.path()).unwrap();
        let mut zip = ZipStream::new(Vec::new(), dir.path(), MODIFIED).unwrap();
        zip.add_file("empty.csv", &mut empty).unwrap();
        zip.add("after.txt", b"after").unwrap();
        let bytes = zip.finish().unwrap();

        // CRC-32 and sizes all zero, flag bit 3 clear, the next header right after the name.
        assert_eq!(le16(&bytes, 6), FLAG_UTF8);
        assert_eq!(&bytes[14..26], &[0; 12]);
        assert_eq!(le16(&bytes, 28), 0);
        assert_eq!(le32(&bytes, 30 + "empty.csv".len()), LOCAL_FILE_HEADER);
        assert_eq!(
            read_as_a_stream(&bytes),
            [
                ("empty.csv".to_owned(), Vec::new()),
                ("after.txt".to_owned(), b"after".to_vec())
            ]
        );
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut file = archive.by_name("empty.csv").unwrap();
        assert_eq!((file.size(), file.crc32()), (0, 0));
        let mut read = Vec::new();
        file.read_to_end(&mut read).unwrap();
        assert!(read.is_empty());
    }

    /// A file rewritten between `add_file`'s passes: each seek to the start moves on to the next
    /// content.
    struct ChangingFile {
        contents: std::collections::VecDeque<Vec<u8>>,
        current: Cursor<Vec<u8>>,
    }

    impl ChangingFile {
        fn new(first: &[u8], second: &[u8]) -> ChangingFile {
            ChangingFile {
                contents: [first.to_vec(), second.to_vec()].into(),
                current: Cursor::new(Vec::new()),
            }
        }
    }

    impl Read for ChangingFile {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.current.read(buf)
        }
    }

    impl Seek for ChangingFile {
        fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
            if position == SeekFrom::Start(0) {
                if let Some(next) = self.contents.pop_front() {
                    self.current = Cursor::new(next);
                }
            }
            self.current.seek(position)
        }
    }

    #[test]
    fn add_file_refuses_a_file_that_changed_between_passes() {
        let first = noise(11, 100_000);
        let mut grown = first.clone();
        grown.extend_from_slice(b"one more row\n");
        let mut rewritten = first.clone();
        rewritten[77_777] ^= 0x20;
        let cases = [
            // (second pass, bytes copied, grew)
            (grown.as_slice(), 100_000, true),
            (&first[..60_000], 60_000, false),
            (rewritten.as_slice(), 100_000, false),
        ];
        let spool = tempfile::tempdir().unwrap();
        for (second, expected_copied, expected_grew) in cases {
            let mut zip = ZipStream::new(Vec::new(), spool.path(), MODIFIED).unwrap();
            zip.add("chain.pem", b"chain").unwrap();
            let mut file = ChangingFile::new(&first, second);
            let error = zip.add_file("manifest.csv", &mut file).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(
                error.to_string().contains("\"manifest.csv\" changed"),
                "{error}"
            );
            match error
                .get_ref()
                .and_then(|e| e.downcast_ref::<ZipStreamError>())
            {
                Some(ZipStreamError::FileChanged {
                    name,
                    expected,
                    expected_crc32,
                    copied,
                    copied_crc32,
                    grew,
                }) => {
                    assert_eq!(name, "manifest.csv");
                    assert_eq!(
                        (*expected, *expected_crc32),
                        (100_000, crc32fast::hash(&first))
                    );
                    let copied_data = &second[..usize::try_from(*copied).unwrap()];
                    assert_eq!(
                        (*copied, *copied_crc32, *grew),
                        (expected_copied, crc32fast::hash(copied_data), expected_grew)
                    );
                }
                other => panic!("{other:?}"),
            }
            // The local header promised the first pass: the archive is incomplete.
            assert!(matches!(
                zip.add("after.txt", b"")
                    .unwrap_err()
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<ZipStreamError>()),
                Some(ZipStreamError::Broken)
            ));
            assert!(zip.finish().is_err());
        }
    }

    /// Fails every read, or, if `flaky`, interrupts every other read and returns at most 1000
    /// bytes from the others.
    struct AwkwardFile {
        data: Cursor<Vec<u8>>,
        flaky: bool,
        reads: u32,
    }

    impl Read for AwkwardFile {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if !self.flaky {
                return Err(io::Error::other("input/output error"));
            }
            if self.reads % 2 == 1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let len = buf.len().min(1000);
            self.data.read(&mut buf[..len])
        }
    }

    impl Seek for AwkwardFile {
        fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
            self.data.seek(position)
        }
    }

    #[test]
    fn add_file_retries_interrupted_reads_and_survives_a_failed_first_pass() {
        let data = noise(12, 10_000);
        let spool = tempfile::tempdir().unwrap();
        let mut zip = ZipStream::new(Vec::new(), spool.path(), MODIFIED).unwrap();
        let mut failing = AwkwardFile {
            data: Cursor::new(data.clone()),
            flaky: false,
            reads: 0,
        };
        let error = zip.add_file("lost.csv", &mut failing).unwrap_err();
        assert_eq!(error.to_string(), "input/output error");
        // The first pass writes nothing, so the writer is still usable.
        assert_eq!((zip.offset, zip.entries, zip.spool.len), (0, 0, 0));
        let mut flaky = AwkwardFile {
            data: Cursor::new(data.clone()),
            flaky: true,
            reads: 0,
        };
        zip.add_file("flaky.csv", &mut flaky).unwrap();
        assert!(flaky.reads > 40);
        let bytes = zip.finish().unwrap();
        assert_eq!(read_as_a_stream(&bytes), [("flaky.csv".to_owned(), data)]);
    }

    #[test]
    fn bad_names_are_refused() {
        let too_long = "x".repeat(65_536);
        let refused = [
            ("", NameDefect::Empty),
            ("/etc/passwd", NameDefect::Absolute),
            ("C:/Windows/x.p12", NameDefect::Absolute),
            ("..", NameDefect::ParentComponent),
            ("../x.p12", NameDefect::ParentComponent),
            ("devices/../../x.p12", NameDefect::ParentComponent),
            ("devices/..", NameDefect::ParentComponent),
            ("devices\\x.p12", NameDefect::Backslash),
            ("x\0.p12", NameDefect::Nul),
            ("devices/", NameDefect::Directory),
            (too_long.as_str(), NameDefect::TooLong(65_536)),
        ];
        let spool = tempfile::tempdir().unwrap();
        let mut zip = ZipStream::new(Vec::new(), spool.path(), MODIFIED).unwrap();
        for (name, defect) in refused {
            for error in [
                zip.add(name, b"data").unwrap_err(),
                zip.add_file(name, &mut Cursor::new(b"data")).unwrap_err(),
            ] {
                assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{name:?}");
                match error
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<ZipStreamError>())
                {
                    Some(ZipStreamError::BadName {
                        name: got,
                        defect: d,
                    }) => {
                        assert_eq!((got.as_str(), *d), (name, defect));
                    }
                    other => panic!("{name:?}: {other:?}"),
                }
            }
        }
        // A long name is shortened in the message.
        let message = zip.add(&too_long, b"").unwrap_err().to_string();
        assert!(
            message.len() < 200 && message.contains("65536 bytes"),
            "{message}"
        );

        // Nothing was written, and the writer is still usable.
        assert_eq!((zip.offset, zip.entries, zip.spool.len), (0, 0, 0));
        let accepted = ["..a", "a..", "a/b..c/d", "dir/file.p12", "é/ü.p12"];
        let longest = "y".repeat(65_535);
        for name in accepted.iter().copied().chain([longest.as_str()]) {
            zip.add(name, name.as_bytes()).unwrap();
        }
        let bytes = zip.finish().unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), accepted.len() + 1);
        assert_eq!(archive.by_index(5).unwrap().name().unwrap().len(), 65_535);
    }

    /// A writer that fails after `budget` bytes.
    struct FailingWriter {
        budget: usize,
    }

    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.budget {
                return Err(io::Error::other("disk full"));
            }
            self.budget -= buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn is_broken(result: io::Result<()>) -> bool {
        matches!(
            result
                .unwrap_err()
                .get_ref()
                .and_then(|e| e.downcast_ref::<ZipStreamError>()),
            Some(ZipStreamError::Broken)
        )
    }

    #[test]
    fn a_failed_write_breaks_the_writer() {
        let spool = tempfile::tempdir().unwrap();
        let mut zip =
            ZipStream::new(FailingWriter { budget: 100 }, spool.path(), MODIFIED).unwrap();
        zip.add("a", &[1; 10]).unwrap();
        assert_eq!(
            zip.add("b", &[2; 100]).unwrap_err().to_string(),
            "disk full"
        );
        assert!(is_broken(zip.add("c", b"")));
        assert!(is_broken(zip.add_file("d", &mut Cursor::new(b"d"))));
        assert!(zip.finish().is_err());
    }

    #[test]
    fn a_failed_write_in_add_file_breaks_the_writer() {
        let spool = tempfile::tempdir().unwrap();
        let mut zip =
            ZipStream::new(FailingWriter { budget: 100 }, spool.path(), MODIFIED).unwrap();
        zip.add("a", &[1; 10]).unwrap();
        // The header fits in the budget, the data does not.
        let error = zip
            .add_file("b.csv", &mut Cursor::new(vec![2; 100]))
            .unwrap_err();
        assert_eq!(error.to_string(), "disk full");
        assert!(is_broken(zip.add_file("c", &mut Cursor::new(b"c"))));
        assert!(is_broken(zip.add("d", b"")));
        assert!(zip.finish().is_err());
    }

    #[test]
    fn writer_state_does_not_grow_with_entries() {
        let spool = tempfile::tempdir().unwrap();
        let mut zip = ZipStream::new(io::sink(), spool.path(), MODIFIED).unwrap();
        let data = noise(7, 2500);
        let heap = zip.heap_bytes();
        zip.add_file("manifest.csv", &mut Cursor::new(b"row\n"))
            .unwrap();
        let mut name = String::new();
        let mut central_directory = 46 + "manifest.csv".len() as u64;
        for i in 0..200_000 {
            name.clear();
            write!(name, "devices/{i:06}.p12").unwrap();
            zip.add(&name, &data).unwrap();
            central_directory += 46 + name.len() as u64;
        }
        assert_eq!(zip.entries, 200_001);
        // Per-entry state lives in the spool file only.
        assert_eq!(zip.heap_bytes(), heap);
        assert_eq!(zip.spool.len, central_directory);
        assert!(size_of::<ZipStream<io::Sink>>() <= 256);
        zip.finish().unwrap();
    }

    #[test]
    fn dos_date_time_is_clamped_to_its_range() {
        let dos = DosDateTime::new(MODIFIED);
        assert_eq!(dos.date, (2024 - 1980) << 9 | 5 << 5 | 17);
        assert_eq!(dos.time, 13 << 11 | 45 << 5 | 15);
        let earliest = DosDateTime::new(datetime!(1970-01-01 00:00:00 UTC));
        assert_eq!((earliest.date, earliest.time), (1 << 5 | 1, 0));
        assert_eq!(
            DosDateTime::new(datetime!(1980-01-01 00:00:00 UTC)),
            earliest
        );
        let latest = DosDateTime::new(datetime!(2200-06-01 12:00:00 UTC));
        assert_eq!(
            (latest.date, latest.time),
            (127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29)
        );
        assert_eq!(DosDateTime::new(datetime!(2107-12-31 23:59:59 UTC)), latest);
    }

    fn meta(size: u64, local_header_offset: u64) -> EntryMeta {
        EntryMeta {
            crc32: 0x1234_5678,
            size,
            local_header_offset,
        }
    }

    fn zip64_field(values: &[u64]) -> Vec<u8> {
        let mut field = vec![1, 0];
        field.extend_from_slice(&u16::try_from(8 * values.len()).unwrap().to_le_bytes());
        for value in values {
            field.extend_from_slice(&value.to_le_bytes());
        }
        field
    }

    #[test]
    fn central_header_moves_only_overflowing_fields_to_zip64() {
        let modified = DosDateTime::new(MODIFIED);
        let cases = [
            // (size, offset, version needed, size field, offset field, ZIP64 values)
            (2500, 0xFFFF_FFFE, 20, 2500, 0xFFFF_FFFE, vec![]),
            (2500, 0xFFFF_FFFF, 45, 2500, u32::MAX, vec![0xFFFF_FFFF]),
            (2500, 5 << 30, 45, 2500, u32::MAX, vec![5 << 30]),
            (
                0xFFFF_FFFF,
                100,
                45,
                u32::MAX,
                100,
                vec![0xFFFF_FFFF, 0xFFFF_FFFF],
            ),
            (
                (4 << 30) + 7,
                6 << 30,
                45,
                u32::MAX,
                u32::MAX,
                vec![(4 << 30) + 7, (4 << 30) + 7, 6 << 30],
            ),
        ];
        for (size, offset, version, size_field, offset_field, zip64) in cases {
            let (fixed, extra) = central_header(&meta(size, offset), 9, modified);
            let f = fixed.as_bytes();
            assert_eq!(f.len(), 46);
            assert_eq!(le32(f, 0), CENTRAL_FILE_HEADER);
            assert_eq!(le16(f, 4), 3 << 8 | 63);
            assert_eq!(le16(f, 6), version, "{size} {offset}");
            assert_eq!(le16(f, 8), FLAG_UTF8);
            assert_eq!(le16(f, 10), 0);
            assert_eq!((le16(f, 12), le16(f, 14)), (modified.time, modified.date));
            assert_eq!(le32(f, 16), 0x1234_5678);
            assert_eq!((le32(f, 20), le32(f, 24)), (size_field, size_field));
            assert_eq!(le16(f, 28), 9);
            assert_eq!(usize::from(le16(f, 30)), extra.as_bytes().len());
            assert_eq!((le16(f, 32), le16(f, 34), le16(f, 36)), (0, 0, 0));
            assert_eq!(le32(f, 38), 0o100_600 << 16);
            assert_eq!(le32(f, 42), offset_field);
            let expected = if zip64.is_empty() {
                Vec::new()
            } else {
                zip64_field(&zip64)
            };
            assert_eq!(extra.as_bytes(), expected.as_slice(), "{size} {offset}");
        }
    }

    #[test]
    fn local_header_layouts() {
        let modified = DosDateTime::new(MODIFIED);
        // (size, offset, version needed, size fields, ZIP64 values)
        let big = (4 << 30) + (64 << 20);
        let cases = [
            (2500, 0, 20, 2500, vec![]),
            (0, 0, 20, 0, vec![]),
            (0xFFFF_FFFE, 0, 20, 0xFFFF_FFFE, vec![]),
            // Offset past 4 GiB: nothing in the local header overflows, but the entry is ZIP64
            // as a whole.
            (2500, 5 << 30, 45, 2500, vec![]),
            // From 0xFFFFFFFF bytes on, both sizes in the ZIP64 field (4.5.3), whatever the
            // offset (the local header has none).
            (0xFFFF_FFFF, 0, 45, u32::MAX, vec![0xFFFF_FFFF, 0xFFFF_FFFF]),
            (big, 0, 45, u32::MAX, vec![big, big]),
            (big, 6 << 30, 45, u32::MAX, vec![big, big]),
            (u64::MAX, u64::MAX, 45, u32::MAX, vec![u64::MAX, u64::MAX]),
        ];
        for (size, offset, version, size_field, zip64) in cases {
            let (fixed, extra) = local_header(&meta(size, offset), 4, modified);
            let f = fixed.as_bytes();
            assert_eq!(f.len(), 30);
            assert_eq!(le32(f, 0), LOCAL_FILE_HEADER);
            assert_eq!(le16(f, 4), version, "{size} {offset}");
            // Flag bit 11 (UTF-8) only: bit 3 (data descriptor) is clear.
            assert_eq!(le16(f, 6), 0x0800);
            assert_eq!(le16(f, 8), 0);
            assert_eq!((le16(f, 10), le16(f, 12)), (modified.time, modified.date));
            assert_eq!(le32(f, 14), 0x1234_5678);
            assert_eq!((le32(f, 18), le32(f, 22)), (size_field, size_field));
            assert_eq!(le16(f, 26), 4);
            assert_eq!(usize::from(le16(f, 28)), extra.as_bytes().len());
            let expected = if zip64.is_empty() {
                Vec::new()
            } else {
                zip64_field(&zip64)
            };
            assert_eq!(extra.as_bytes(), expected.as_slice(), "{size} {offset}");
        }
    }

    #[test]
    fn end_records_layouts() {
        // Classic only.
        for (entries, offset, size) in [(0, 0, 0), (0xFFFE, 0xFFFF_FFFE, 1000)] {
            let record = end_records(entries, offset, size, 0);
            let r = record.as_bytes();
            assert_eq!(r.len(), 22);
            assert_eq!(le32(r, 0), END_OF_CENTRAL_DIRECTORY);
            assert_eq!((le16(r, 4), le16(r, 6)), (0, 0));
            assert_eq!(u64::from(le16(r, 8)), entries);
            assert_eq!(u64::from(le16(r, 10)), entries);
            assert_eq!(u64::from(le32(r, 12)), size);
            assert_eq!(u64::from(le32(r, 16)), offset);
            assert_eq!(le16(r, 20), 0);
        }
        // (entries, offset, size, and the classic fields: entries, size, offset)
        let cases = [
            (0xFFFF, 1000, 2000, 0xFFFF, 2000, 1000),
            (3, 5 << 30, 200, 3, 200, u32::MAX),
            (3, 1000, 0xFFFF_FFFF, 3, u32::MAX, 1000),
            (1_000_000, 9 << 30, 70_000_000, 0xFFFF, 70_000_000, u32::MAX),
        ];
        for (entries, offset, size, classic_entries, classic_size, classic_offset) in cases {
            let record = end_records(entries, offset, size, 0);
            let r = record.as_bytes();
            assert_eq!(r.len(), 98);
            assert_eq!(le32(r, 0), ZIP64_END_OF_CENTRAL_DIRECTORY);
            assert_eq!(le64(r, 4), 44);
            assert_eq!((le16(r, 12), le16(r, 14)), (3 << 8 | 63, 45));
            assert_eq!((le32(r, 16), le32(r, 20)), (0, 0));
            assert_eq!((le64(r, 24), le64(r, 32)), (entries, entries));
            assert_eq!((le64(r, 40), le64(r, 48)), (size, offset));
            assert_eq!(le32(r, 56), ZIP64_END_LOCATOR);
            assert_eq!(le32(r, 60), 0);
            assert_eq!(le64(r, 64), offset + size);
            assert_eq!(le32(r, 72), 1);
            assert_eq!(le32(r, 76), END_OF_CENTRAL_DIRECTORY);
            assert_eq!(
                (le16(r, 84), le16(r, 86)),
                (classic_entries, classic_entries)
            );
            assert_eq!((le32(r, 88), le32(r, 92)), (classic_size, classic_offset));
            assert_eq!(le16(r, 96), 0);
        }
    }

    /// Turns writes of 64 KiB or more of zeros into holes, so that a ZIP64 archive past 4 GiB
    /// costs little disk and time.
    struct SparseFile(File);

    impl Write for SparseFile {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            const PAGE: [u8; 4096] = [0; 4096];
            if buf.len() >= 64 << 10 && buf.chunks(PAGE.len()).all(|c| c == &PAGE[..c.len()]) {
                self.0
                    .seek(SeekFrom::Current(i64::try_from(buf.len()).unwrap()))?;
                Ok(buf.len())
            } else {
                self.0.write(buf)
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    /// `len` zero bytes that read and seek like a file. A sparse file would do, but reading 4 GiB
    /// of holes twice costs the kernel some 5-10 s (it fills the page cache with zero pages);
    /// this costs a memset.
    struct Zeros {
        len: u64,
        position: u64,
    }

    impl Read for Zeros {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let left = self.len.saturating_sub(self.position);
            let n = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
            buf[..n].fill(0);
            self.position += n as u64;
            Ok(n)
        }
    }

    impl Seek for Zeros {
        fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
            match position {
                SeekFrom::Start(position) => self.position = position,
                _ => return Err(io::ErrorKind::Unsupported.into()),
            }
            Ok(self.position)
        }
    }

    #[test]
    fn zip64_by_size_and_offset_in_a_sparse_file() {
        const GIB: u64 = 1 << 30;
        const BLOCK: usize = 64 << 20;
        let zeros = vec![0u8; BLOCK];
        let dir = tempfile::tempdir().unwrap();
        // 65 × 64 MiB (4.06 GiB) of zeros, for add_file.
        let huge = 65 * BLOCK as u64;
        let mut huge_file = Zeros {
            len: huge,
            position: huge,
        };
        let mut huge_crc32 = crc32fast::Hasher::new();
        let block_crc32 =
            crc32fast::Hasher::new_with_initial_len(crc32fast::hash(&zeros), BLOCK as u64);
        for _ in 0..65 {
            huge_crc32.combine(&block_crc32);
        }
        let huge_crc32 = huge_crc32.finalize();

        let path = dir.path().join("large.zip");
        let file = SparseFile(File::create(&path).unwrap());
        let mut zip = ZipStream::new(file, dir.path(), MODIFIED).unwrap();
        // 64 entries of 64 MiB: 4 GiB of entries, so what follows starts past 4 GiB.
        for i in 0..64 {
            zip.add(&format!("zeros/{i:02}.bin"), &zeros).unwrap();
        }
        zip.add("after.txt", b"past the 4 GiB mark").unwrap();
        // A file larger than 4 GiB: ZIP64 sizes in the local header, ZIP64 sizes and offset in
        // the central directory.
        zip.add_file("huge.csv", &mut huge_file).unwrap();
        zip.add("last.txt", b"the end").unwrap();
        drop(zip.finish().unwrap());
        let length = std::fs::metadata(&path).unwrap().len();
        assert!(length > 8 * GIB);

        let header = 64 * (30 + 12 + BLOCK as u64) + (30 + 9 + 19);
        let mut archive = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(archive.len(), 67);
        {
            let huge_entry = archive.by_name("huge.csv").unwrap();
            assert_eq!(huge_entry.header_start(), header);
            assert_eq!(huge_entry.size(), huge);
            assert_eq!(huge_entry.compressed_size(), huge);
            assert_eq!(huge_entry.crc32(), huge_crc32);
            assert_eq!(huge_entry.data_start(), Some(header + 30 + 8 + 20));
        }
        for (name, content) in [
            ("after.txt", "past the 4 GiB mark"),
            ("last.txt", "the end"),
        ] {
            let mut entry = archive.by_name(name).unwrap();
            assert!(entry.header_start() > 4 * GIB);
            let mut read = String::new();
            entry.read_to_string(&mut read).unwrap();
            assert_eq!(read, content);
        }
        drop(archive);

        // The local header of the huge entry, by hand: markers in the size fields, both sizes in
        // the ZIP64 field (4.5.3), no data descriptor; the next header right after the data.
        let mut file = File::open(&path).unwrap();
        file.seek(SeekFrom::Start(header)).unwrap();
        let mut bytes = [0; 30 + 8 + 20];
        file.read_exact(&mut bytes).unwrap();
        assert_eq!(le32(&bytes, 0), LOCAL_FILE_HEADER);
        assert_eq!((le16(&bytes, 4), le16(&bytes, 6)), (45, FLAG_UTF8));
        assert_eq!(le32(&bytes, 14), huge_crc32);
        assert_eq!((le32(&bytes, 18), le32(&bytes, 22)), (u32::MAX, u32::MAX));
        assert_eq!((le16(&bytes, 26), le16(&bytes, 28)), (8, 20));
        assert_eq!(&bytes[30..38], b"huge.csv");
        assert_eq!(&bytes[38..], zip64_field(&[huge, huge]).as_slice());
        file.seek(SeekFrom::Start(header + 58 + huge)).unwrap();
        let mut next = [0; 4];
        file.read_exact(&mut next).unwrap();
        assert_eq!(u32::from_le_bytes(next), LOCAL_FILE_HEADER);
        // A streaming reader takes the size from that local header (given the header alone, as
        // it would drain the 4 GiB of data when the entry is dropped).
        let mut header_only = &bytes[..];
        let entry = zip::read::read_zipfile_from_stream(&mut header_only)
            .unwrap()
            .unwrap();
        assert_eq!(entry.name().unwrap(), "huge.csv");
        assert_eq!((entry.size(), entry.compressed_size()), (huge, huge));
        drop(entry);

        let path = path.to_str().unwrap();
        let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    huge = z.getinfo("huge.csv")
    print(len(z.infolist()), huge.file_size, huge.compress_size, "%08x" % huge.CRC,
          huge.header_offset, huge.flag_bits, z.read("after.txt").decode(),
          z.read("last.txt").decode(), sep="\t")
"#;
        if let Some(output) = run_tool("python3", &["-c", script, path]) {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                String::from_utf8(output.stdout).unwrap().trim_end(),
                format!(
                    "67\t{huge}\t{huge}\t{huge_crc32:08x}\t{header}\t2048\tpast the 4 GiB mark\tthe end"
                )
            );
        }
        if let Some(output) = run_tool("unzip", &["-p", path, "after.txt", "last.txt"]) {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(output.stdout, b"past the 4 GiB markthe end");
        }
    }

    /// Per-entry cost of `add` for a 2.5 KB entry. Run with
    /// `cargo test --release --lib zipstream::tests::time_per_entry -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, for release builds; prints to /tmp/zipstream-timing.txt"]
    fn time_per_entry() {
        const COUNT: usize = 200_000;
        let data = noise(3, 2500);
        let names: Vec<String> = (0..COUNT)
            .map(|i| format!("devices/{i:07}-7f3c1a2e-58d4-4b8e-9f0a-0c1d2e3f4a5b.p12"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut report = String::new();
        for target in ["sink", "file"] {
            let inner: Box<dyn Write> = match target {
                "sink" => Box::new(io::sink()),
                _ => Box::new(File::create(dir.path().join("timing.zip")).unwrap()),
            };
            let mut zip = ZipStream::new(
                BufWriter::with_capacity(1 << 20, inner),
                dir.path(),
                MODIFIED,
            )
            .unwrap();
            let started = std::time::Instant::now();
            for name in &names {
                zip.add(name, &data).unwrap();
            }
            let adds = started.elapsed();
            zip.finish().unwrap();
            let total = started.elapsed();
            writeln!(
                report,
                "{target}: {:.3} us per 2.5 KB entry in add, {:.3} us with finish ({COUNT})",
                adds.as_secs_f64() * 1e6 / COUNT as f64,
                total.as_secs_f64() * 1e6 / COUNT as f64,
            )
            .unwrap();
        }
        print!("{report}");
        std::fs::write("/tmp/zipstream-timing.txt", report).unwrap();
    }
}
