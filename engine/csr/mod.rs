//! The input side of CSR batches (seed 001 "Upload CSR file"): bundles of PKCS#10 requests on
//! disk, each request parsed and its self-signature verified.
//!
//! A [`CsrBundle`] is one PEM text file with many requests, or a ZIP with one request per
//! `.csr`/`.pem`/`.der` entry. [`CsrBundle::open`] checks every [`CsrLimits`] bound before any
//! request is read, so a hostile upload (a ZIP bomb, a million tiny entries, a gigabyte of PEM)
//! is refused up front; [`CsrBundle::entries`] then streams the requests one at a time, as often
//! as the caller needs (a validation pass, then an issuing pass). [`ParsedCsr`] is one request
//! with its proof of possession checked; it answers the profile's `CSR.<path>` sources through
//! [`crate::profile::Lookup`].
//!
//! This module does not decide what goes into a certificate (that is the profile and the
//! template), does not check subject names against any policy, and never writes to disk.

mod bundle;
mod parse;
mod pem;
#[cfg(test)]
mod tests;

pub use bundle::{CsrBundle, CsrEntries, CsrEntry};
pub use parse::{ParsedCsr, RejectedKey};
pub use pem::PemDefect;

use der::oid::ObjectIdentifier;
use std::path::PathBuf;

use crate::keys::KeyAlgorithm;

/// Bounds against hostile uploads, all checked by [`CsrBundle::open`] before any work starts.
#[derive(Clone, Copy, Debug)]
pub struct CsrLimits {
    /// Most CSRs in one bundle (default 1,000,000).
    pub max_entries: usize,
    /// Largest single CSR, PEM text or DER (default 64 KiB). A 4096-bit RSA request with a long
    /// SAN list is under 4 KiB, so this leaves ample room and still bounds the memory per entry.
    pub max_csr_bytes: usize,
    /// Largest total uncompressed size: the PEM file, or the sum of the ZIP entries (default
    /// 1 GiB).
    pub max_total_bytes: u64,
    /// Largest uncompressed/compressed ratio of one ZIP entry (default 100). DER and PEM CSRs
    /// compress by less than 2:1, so anything far beyond is a bomb, not a request.
    pub max_compression_ratio: u64,
}

impl Default for CsrLimits {
    fn default() -> Self {
        CsrLimits {
            max_entries: 1_000_000,
            max_csr_bytes: 64 * 1024,
            max_total_bytes: 1 << 30,
            max_compression_ratio: 100,
        }
    }
}

/// Errors of reading CSR bundles and parsing CSRs. Messages name the entry (entry
/// `dev-7.csr`, entry `#3`) or the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// The request's signature does not verify with its own public key: no proof of
    /// possession of the private key (RFC 2986 section 3).
    #[error("the CSR signature does not verify with its public key")]
    BadSignature,
    /// The bundle changed on disk between [`CsrBundle::open`] and a later pass.
    #[error("{}: the file changed on disk after it was opened", .path.display())]
    Changed {
        /// The bundle file.
        path: PathBuf,
    },
    /// A ZIP entry's declared uncompressed size is more than `limit` times its compressed
    /// size: a decompression bomb.
    #[error("entry `{}`: compression ratio {ratio}:1 exceeds the limit of {limit}:1", .entry.escape_debug())]
    CompressionRatio {
        /// ZIP entry name.
        entry: String,
        /// Declared uncompressed size divided by compressed size (rounded down;
        /// `u64::MAX` when the compressed size is 0).
        ratio: u64,
        /// [`CsrLimits::max_compression_ratio`].
        limit: u64,
    },
    /// The ZIP's central directory names some file more than once, so entries would be
    /// ambiguous.
    #[error("the ZIP holds two or more entries with the same name")]
    DuplicateNames,
    /// The bundle holds no CSR at all.
    #[error("the bundle holds no certificate request")]
    Empty,
    /// An error about one entry of a bundle, from [`CsrEntry::parse`].
    #[error("entry `{}`: {source}", .entry.escape_debug())]
    Entry {
        /// ZIP entry name, or `#<n>` (1-based) in a PEM bundle.
        entry: String,
        /// What is wrong with it.
        source: Box<CsrError>,
    },
    /// A ZIP entry inflated to more bytes than its central directory entry declared.
    #[error("entry `{}`: inflates beyond its declared size of {declared} bytes", .entry.escape_debug())]
    InflatesBeyondDeclared {
        /// ZIP entry name.
        entry: String,
        /// Size declared in the central directory.
        declared: u64,
    },
    /// The bundle could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The bundle file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The signature algorithm does not fit the key (an ECDSA signature with an RSA key, ...).
    #[error("signature algorithm {signature} does not fit a {key} key")]
    KeyMismatch {
        /// The request's signature algorithm.
        signature: ObjectIdentifier,
        /// The request's key.
        key: KeyAlgorithm,
    },
    /// The request is not a DER `CertificationRequest` (RFC 2986 section 4), or a part of it
    /// (an extension request, a subjectAltName) is malformed.
    #[error("malformed CSR: {defect}")]
    Malformed {
        /// What `der` found, with its byte position.
        defect: der::Error,
    },
    /// A ZIP entry is itself a ZIP archive. Nested archives are not opened (each level would
    /// multiply the decompression a small upload can demand).
    #[error("entry `{}`: a ZIP inside the ZIP; put the requests in one archive", .entry.escape_debug())]
    NestedZip {
        /// ZIP entry name.
        entry: String,
    },
    /// A PEM block is broken.
    #[error("entry `{}` (line {line}): {defect}", .entry.escape_debug())]
    Pem {
        /// `#<n>` (1-based block number) in a PEM bundle, or the ZIP entry name.
        entry: String,
        /// 1-based line of the defect.
        line: u64,
        /// What is wrong.
        defect: PemDefect,
    },
    /// One CSR is larger than [`CsrLimits::max_csr_bytes`].
    #[error("entry `{}`: {bytes} bytes exceed the limit of {limit} bytes per CSR", .entry.escape_debug())]
    TooLarge {
        /// ZIP entry name, or `#<n>` in a PEM bundle.
        entry: String,
        /// Its size (for a PEM block: the bytes read when the limit was crossed).
        bytes: u64,
        /// [`CsrLimits::max_csr_bytes`].
        limit: u64,
    },
    /// The ZIP's end record declares more than twice [`CsrLimits::max_entries`] entries
    /// (files and folders), refused before its central directory is parsed.
    #[error(
        "the ZIP declares {declared} entries, more than twice the limit of {limit} CSRs per bundle"
    )]
    DirectoryTooLarge {
        /// Entries the end of central directory record declares.
        declared: u64,
        /// [`CsrLimits::max_entries`].
        limit: usize,
    },
    /// The bundle holds more than [`CsrLimits::max_entries`] CSRs.
    #[error("{count} CSRs exceed the limit of {limit} per bundle")]
    TooManyEntries {
        /// CSRs counted (a PEM bundle stops counting at `limit + 1`).
        count: usize,
        /// [`CsrLimits::max_entries`].
        limit: usize,
    },
    /// The bundle's total uncompressed size exceeds [`CsrLimits::max_total_bytes`].
    #[error("{bytes} bytes in total exceed the limit of {limit} bytes per bundle")]
    TotalTooLarge {
        /// Total size (for a ZIP: declared sizes summed up to the entry that crossed the limit).
        bytes: u64,
        /// [`CsrLimits::max_total_bytes`].
        limit: u64,
    },
    /// The ZIP holds files other than `.csr`, `.pem` and `.der` (directories are fine).
    #[error("the ZIP holds entries that are not .csr/.pem/.der files: {}", EntryList(.names))]
    UnexpectedEntries {
        /// Their names.
        names: Vec<String>,
    },
    /// A ZIP entry's name could be a path outside an extraction folder or fool a reader:
    /// `..` as a component, an absolute path or drive letter, a backslash, or a control
    /// character. certmill never extracts entries to disk, but refuses such archives by name.
    #[error("ZIP entry {entry:?}: {reason}")]
    UnsafeEntryName {
        /// The name as stored.
        entry: String,
        /// Which rule.
        reason: &'static str,
    },
    /// The request's public key is not one certmill issues for ([`KeyAlgorithm`]).
    #[error("unsupported public key: {key}")]
    UnsupportedKey {
        /// What was found.
        key: RejectedKey,
    },
    /// The request is signed with an algorithm certmill does not verify (ECDSA with SHA-256/384
    /// and RSA PKCS#1 v1.5 with SHA-256/384/512 are supported).
    #[error("unsupported signature algorithm {oid}")]
    UnsupportedSignatureAlgorithm {
        /// The algorithm's OID.
        oid: ObjectIdentifier,
    },
    /// The ZIP structure is broken, or an entry uses an unsupported compression method or
    /// encryption.
    #[error("{}ZIP: {source}", .entry.as_ref().map(|e| format!("entry `{}`: ", e.escape_debug())).unwrap_or_default())]
    Zip {
        /// The entry concerned, when the error is about one.
        entry: Option<String>,
        /// What the zip crate said.
        source: zip::result::ZipError,
    },
}

/// Displays entry names as `` `a.txt`, `b.exe` ``.
struct EntryList<'a>(&'a [String]);

impl std::fmt::Display for EntryList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{}`", name.escape_debug())?;
        }
        Ok(())
    }
}

impl From<der::Error> for CsrError {
    fn from(defect: der::Error) -> Self {
        CsrError::Malformed { defect }
    }
}
