//! CSR bundles on disk: a PEM text file of many requests, or a ZIP of one request per entry.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::pem::{self, PemDefect, ScanError, Scanner};
use super::{CsrError, CsrLimits, ParsedCsr};

/// ZIP local file header signature: every non-empty ZIP starts with it.
const ZIP_LOCAL_HEADER: &[u8; 4] = b"PK\x03\x04";
/// ZIP end of central directory signature: an empty ZIP is only this record.
const ZIP_END_OF_DIRECTORY: &[u8; 4] = b"PK\x05\x06";
/// Extensions of the ZIP entries that hold CSRs (compared case-insensitively).
const CSR_EXTENSIONS: [&str; 3] = ["csr", "pem", "der"];
/// Read buffer of a PEM bundle: a bundle is read twice, start to end, and 8 KiB reads (the
/// default) were a read call every 20 requests.
const PEM_READ_BUFFER: usize = 64 * 1024;

/// One CSR of a bundle, not yet parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrEntry {
    /// The ZIP entry name, or `#<n>` (1-based position) in a PEM bundle.
    pub name: String,
    /// The request's DER.
    pub der: Vec<u8>,
}

impl CsrEntry {
    /// Parses and verifies the request ([`ParsedCsr::from_der`]); an error names the entry
    /// ([`CsrError::Entry`]).
    pub fn parse(&self) -> Result<ParsedCsr, CsrError> {
        ParsedCsr::from_der(&self.der).map_err(|source| CsrError::Entry {
            entry: self.name.clone(),
            source: Box::new(source),
        })
    }
}

/// A bundle of CSRs on disk, its limits checked.
///
/// Either one PEM text file with many `CERTIFICATE REQUEST` (or `NEW CERTIFICATE REQUEST`)
/// blocks, text between them ignored; or a ZIP (recognised by its magic) with one CSR, PEM or
/// DER, per `.csr`/`.pem`/`.der` entry, directories ignored and any other file refused.
#[derive(Debug)]
pub struct CsrBundle {
    path: PathBuf,
    limits: CsrLimits,
    format: Format,
    count: usize,
}

#[derive(Debug)]
enum Format {
    Pem {
        /// File size at open, to notice a file replaced between passes.
        file_len: u64,
    },
    Zip {
        /// Central directory entries at open (directories included).
        archive_len: usize,
        /// The CSR entries in archive order.
        items: Vec<ZipItem>,
    },
}

#[derive(Debug)]
struct ZipItem {
    index: usize,
    name: String,
    /// Declared uncompressed size, at most [`CsrLimits::max_csr_bytes`].
    size: u64,
}

impl CsrBundle {
    /// The bundle's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a bundle and checks every limit before any request is read.
    ///
    /// ZIP: entry count, then per entry (from the central directory) its compression ratio and
    /// size, the running total, and that it is a `.csr`/`.pem`/`.der` file. PEM: the file size
    /// against [`CsrLimits::max_total_bytes`], then one pass over the text that counts blocks
    /// (up to [`CsrLimits::max_entries`]), bounds each block and checks its base64.
    pub fn open(path: &Path, limits: &CsrLimits) -> Result<CsrBundle, CsrError> {
        let io = |source| CsrError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut magic = Vec::with_capacity(4);
        (&mut file).take(4).read_to_end(&mut magic).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let (format, count) =
            if magic.as_slice() == ZIP_LOCAL_HEADER || magic.as_slice() == ZIP_END_OF_DIRECTORY {
                open_zip(file, limits)?
            } else {
                (
                    Format::Pem { file_len },
                    count_pem(path, file, file_len, limits)?,
                )
            };
        if count == 0 {
            return Err(CsrError::Empty);
        }
        Ok(CsrBundle {
            path: path.to_owned(),
            limits: *limits,
            format,
            count,
        })
    }

    /// Number of CSRs in the bundle.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether [`CsrBundle::open`] already read and decoded every entry, so reading them
    /// again refuses nothing new unless the file changes: true for a PEM bundle (its blocks
    /// are counted by decoding them), false for a ZIP (entries are decompressed and checked
    /// only when read).
    pub fn entries_checked_at_open(&self) -> bool {
        matches!(self.format, Format::Pem { .. })
    }

    /// Whether the bundle holds no CSR (never true: [`CsrBundle::open`] refuses empty
    /// bundles).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Streams the entries in order, one in memory at a time; can be called again for another
    /// pass. Stops after the first error.
    pub fn entries(&self) -> Result<CsrEntries<'_>, CsrError> {
        let io = |source| CsrError::Io {
            path: self.path.clone(),
            source,
        };
        let file = File::open(&self.path).map_err(io)?;
        let changed = || CsrError::Changed {
            path: self.path.clone(),
        };
        let source = match &self.format {
            Format::Pem { file_len } => {
                if file.metadata().map_err(io)?.len() != *file_len {
                    return Err(changed());
                }
                Source::Pem(Scanner::new(
                    BufReader::with_capacity(PEM_READ_BUFFER, file),
                    self.limits.max_csr_bytes,
                ))
            }
            Format::Zip { archive_len, .. } => {
                let archive =
                    ZipArchive::new(BufReader::new(file)).map_err(|source| CsrError::Zip {
                        entry: None,
                        source,
                    })?;
                if archive.len() != *archive_len {
                    return Err(changed());
                }
                Source::Zip { archive, next: 0 }
            }
        };
        Ok(CsrEntries {
            bundle: self,
            source,
            done: false,
        })
    }
}

/// The entries of a [`CsrBundle`], in order; fused after the first error.
pub struct CsrEntries<'a> {
    bundle: &'a CsrBundle,
    source: Source,
    done: bool,
}

enum Source {
    Pem(Scanner<BufReader<File>>),
    Zip {
        archive: ZipArchive<BufReader<File>>,
        next: usize,
    },
}

impl Iterator for CsrEntries<'_> {
    type Item = Result<CsrEntry, CsrError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let bundle = self.bundle;
        let result = match &mut self.source {
            Source::Pem(scanner) => match scanner.next_block() {
                Ok(Some(block)) => Some(Ok(CsrEntry {
                    name: pem_entry_name(block.number),
                    der: block.der,
                })),
                Ok(None) => None,
                Err(e) => Some(Err(scan_error(e, &bundle.path, &bundle.limits, None))),
            },
            Source::Zip { archive, next } => {
                let Format::Zip { items, .. } = &bundle.format else {
                    // `entries` builds a ZIP source only for a ZIP bundle.
                    return None;
                };
                items.get(*next).map(|item| {
                    *next += 1;
                    read_zip_item(archive, item, bundle)
                })
            }
        };
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        result
    }
}

fn pem_entry_name(number: usize) -> String {
    format!("#{number}")
}

/// Turns a scanner failure into an error naming the block (`#<n>`) or the ZIP entry.
fn scan_error(error: ScanError, path: &Path, limits: &CsrLimits, entry: Option<&str>) -> CsrError {
    let name = |number| entry.map_or_else(|| pem_entry_name(number), str::to_owned);
    match error {
        ScanError::Io(source) => CsrError::Io {
            path: path.to_owned(),
            source,
        },
        ScanError::Defect {
            number,
            line,
            defect,
        } => CsrError::Pem {
            entry: name(number),
            line,
            defect,
        },
        ScanError::TooLarge { number, bytes } => CsrError::TooLarge {
            entry: name(number),
            bytes,
            limit: limits.max_csr_bytes as u64,
        },
    }
}

/// The pass over a PEM bundle at open: counts and checks every block.
fn count_pem(
    path: &Path,
    file: File,
    file_len: u64,
    limits: &CsrLimits,
) -> Result<usize, CsrError> {
    if file_len > limits.max_total_bytes {
        return Err(CsrError::TotalTooLarge {
            bytes: file_len,
            limit: limits.max_total_bytes,
        });
    }
    let mut scanner = Scanner::new(
        BufReader::with_capacity(PEM_READ_BUFFER, file),
        limits.max_csr_bytes,
    );
    let mut count = 0usize;
    while let Some(block) = scanner
        .next_block()
        .map_err(|e| scan_error(e, path, limits, None))?
    {
        count = block.number;
        if count > limits.max_entries {
            return Err(CsrError::TooManyEntries {
                count,
                limit: limits.max_entries,
            });
        }
    }
    // PEM blocks, none of them a request: say what they are rather than "empty".
    if let (0, Some((label, line))) = (count, scanner.other_block()) {
        return Err(CsrError::Pem {
            entry: pem_entry_name(1),
            line,
            defect: PemDefect::WrongLabel(label.to_owned()),
        });
    }
    Ok(count)
}

/// How many entries (files and folders) the ZIP's end of central directory record declares,
/// or the ZIP64 record's when the classic one says 0xFFFF; `None` without an end record.
/// Reads only the file's tail (the record, its comment of at most 64 KiB, the ZIP64 locator)
/// and, for ZIP64, the 56-byte ZIP64 record.
fn declared_entries(file: &mut File) -> std::io::Result<Option<u64>> {
    const RECORD: usize = 22;
    const LOCATOR: usize = 20;
    let len = file.metadata()?.len();
    let tail_len = len.min((RECORD + 0xFFFF + LOCATOR) as u64);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0; tail_len as usize];
    file.read_exact(&mut tail)?;
    if tail.len() < RECORD {
        return Ok(None);
    }
    let Some(at) = (0..=tail.len() - RECORD)
        .rev()
        .find(|&i| tail[i..].starts_with(ZIP_END_OF_DIRECTORY))
    else {
        return Ok(None);
    };
    let count = u16::from_le_bytes([tail[at + 10], tail[at + 11]]);
    if count != 0xFFFF || at < LOCATOR || !tail[at - LOCATOR..].starts_with(b"PK\x06\x07") {
        return Ok(Some(count.into()));
    }
    let locator = &tail[at - LOCATOR..at];
    let offset = u64::from_le_bytes(locator[8..16].try_into().unwrap_or_default());
    file.seek(SeekFrom::Start(offset))?;
    let mut record = [0u8; 56];
    file.read_exact(&mut record)?;
    if !record.starts_with(b"PK\x06\x06") {
        return Ok(Some(count.into()));
    }
    Ok(Some(u64::from_le_bytes(
        record[32..40].try_into().unwrap_or_default(),
    )))
}

/// Reads the central directory and checks the limits; reads no entry data.
/// Why a ZIP entry name is refused, if it is: it must be a relative path of plain components
/// (the "zip slip" names: `..`, `/etc/x`, `C:\\x`, `a\\..\\b`, and names hiding control
/// characters).
fn unsafe_entry_name(name: &str) -> Option<&'static str> {
    if name.chars().any(char::is_control) {
        Some("control characters in the name")
    } else if name.contains('\\') {
        Some("a backslash in the name (a Windows path)")
    } else if name.starts_with('/') {
        Some("an absolute path")
    } else if name.as_bytes().get(1) == Some(&b':') {
        Some("a drive letter")
    } else if name.split('/').any(|part| part == "..") {
        Some("a '..' path component")
    } else {
        None
    }
}

fn open_zip(mut file: File, limits: &CsrLimits) -> Result<(Format, usize), CsrError> {
    // The zip crate keeps every directory entry it parses in memory: the declared count is
    // checked first, so a directory of ten million tiny entries costs nothing.
    let bound = limits.max_entries.saturating_mul(2) as u64;
    match declared_entries(&mut file) {
        Ok(Some(declared)) if declared > bound => {
            return Err(CsrError::DirectoryTooLarge {
                declared,
                limit: limits.max_entries,
            })
        }
        // No readable end record: the zip crate names what is wrong.
        Ok(_) | Err(_) => {}
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| CsrError::Zip {
        entry: None,
        source: ZipError::Io(e),
    })?;
    let archive = ZipArchive::new(BufReader::new(file)).map_err(|source| CsrError::Zip {
        entry: None,
        source,
    })?;
    if archive.has_duplicate_names() {
        return Err(CsrError::DuplicateNames);
    }
    let archive_error = |source| CsrError::Zip {
        entry: None,
        source,
    };
    let mut files = 0usize;
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(archive_error)?;
        if !entry.is_dir() {
            files += 1;
        }
    }
    if files > limits.max_entries {
        return Err(CsrError::TooManyEntries {
            count: files,
            limit: limits.max_entries,
        });
    }

    let mut items = Vec::with_capacity(files);
    let mut unexpected = Vec::new();
    let mut total = 0u64;
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(archive_error)?;
        let name = entry.name().map_err(archive_error)?.into_owned();
        if let Some(reason) = unsafe_entry_name(&name) {
            return Err(CsrError::UnsafeEntryName {
                entry: name,
                reason,
            });
        }
        if entry.is_dir() {
            continue;
        }
        let extension = name
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .filter(|ext| !ext.contains('/'));
        if !extension.is_some_and(|ext| CSR_EXTENSIONS.contains(&ext.as_str())) {
            unexpected.push(name);
            continue;
        }
        let size = entry.size();
        let compressed = entry.compressed_size();
        let ratio = match (size, compressed) {
            (0, _) => 0,
            (_, 0) => u64::MAX,
            _ => size / compressed,
        };
        if ratio > limits.max_compression_ratio {
            return Err(CsrError::CompressionRatio {
                entry: name,
                ratio,
                limit: limits.max_compression_ratio,
            });
        }
        if size > limits.max_csr_bytes as u64 {
            return Err(CsrError::TooLarge {
                entry: name,
                bytes: size,
                limit: limits.max_csr_bytes as u64,
            });
        }
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(CsrError::TotalTooLarge {
                bytes: total,
                limit: limits.max_total_bytes,
            });
        }
        if !matches!(
            entry.compression(),
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(CsrError::Zip {
                entry: Some(name),
                source: ZipError::UnsupportedArchive(
                    "compression method other than Stored and Deflated",
                ),
            });
        }
        items.push(ZipItem { index, name, size });
    }
    if !unexpected.is_empty() {
        return Err(CsrError::UnexpectedEntries { names: unexpected });
    }
    let count = items.len();
    Ok((
        Format::Zip {
            archive_len: archive.len(),
            items,
        },
        count,
    ))
}

/// Reads one ZIP entry, never more than its declared size plus one byte, and unwraps PEM.
fn read_zip_item(
    archive: &mut ZipArchive<BufReader<File>>,
    item: &ZipItem,
    bundle: &CsrBundle,
) -> Result<CsrEntry, CsrError> {
    let zip_error = |source| CsrError::Zip {
        entry: Some(item.name.clone()),
        source,
    };
    let mut file = archive.by_index(item.index).map_err(zip_error)?;
    let same = file.name().is_ok_and(|name| name == item.name.as_str());
    if !same || file.size() != item.size {
        return Err(CsrError::Changed {
            path: bundle.path.clone(),
        });
    }
    // `size` was checked against `max_csr_bytes` (a usize) at open, so it fits.
    let mut content = Vec::with_capacity(usize::try_from(item.size).unwrap_or(0));
    (&mut file)
        .take(item.size.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(|e| zip_error(ZipError::Io(e)))?;
    if content.len() as u64 > item.size {
        return Err(CsrError::InflatesBeyondDeclared {
            entry: item.name.clone(),
            declared: item.size,
        });
    }
    if content.starts_with(ZIP_LOCAL_HEADER) || content.starts_with(ZIP_END_OF_DIRECTORY) {
        return Err(CsrError::NestedZip {
            entry: item.name.clone(),
        });
    }
    let der = if pem::looks_like_pem(&content) {
        let error = |line, defect| CsrError::Pem {
            entry: item.name.clone(),
            line,
            defect,
        };
        let limits = &bundle.limits;
        let mut scanner = Scanner::new(content.as_slice(), limits.max_csr_bytes);
        let scan = |e| scan_error(e, &bundle.path, limits, Some(&item.name));
        let block = scanner
            .next_block()
            .map_err(scan)?
            .ok_or_else(|| error(scanner.line(), PemDefect::NoBlock))?;
        if scanner.next_block().map_err(scan)?.is_some() {
            return Err(error(scanner.line(), PemDefect::MultipleBlocks));
        }
        block.der
    } else {
        content
    };
    Ok(CsrEntry {
        name: item.name.clone(),
        der,
    })
}
