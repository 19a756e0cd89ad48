//! X.509 v2 CRLs (RFC 5280 section 5), streamed: entries are encoded as they come, the
//! signature is over a digest computed in pieces, and memory stays flat however many entries
//! there are.
//!
//! ```text
//! CertificateList  ::=  SEQUENCE  {
//!      tbsCertList          TBSCertList,
//!      signatureAlgorithm   AlgorithmIdentifier,
//!      signatureValue       BIT STRING  }
//!
//! TBSCertList  ::=  SEQUENCE  {
//!      version                 Version OPTIONAL, -- if present, MUST be v2
//!      signature               AlgorithmIdentifier,
//!      issuer                  Name,
//!      thisUpdate              Time,
//!      nextUpdate              Time OPTIONAL,
//!      revokedCertificates     SEQUENCE OF SEQUENCE  {
//!           userCertificate         CertificateSerialNumber,
//!           revocationDate          Time,
//!           crlEntryExtensions      Extensions OPTIONAL } OPTIONAL,
//!      crlExtensions           [0]  EXPLICIT Extensions OPTIONAL }
//! ```
//!
//! [`CrlBuilder::push`] encodes each revokedCertificates entry into a spool file (a temporary
//! file in the CRL's folder); [`CrlBuilder::finish`] then knows the list's length, hashes the
//! small TBS header, the spooled entries and the extensions in turn, has the caller sign the
//! digest, and writes the CRL to a temporary file that is fsynced and renamed into place. It
//! builds only what a CA publishes: full CRLs, no delta CRLs, no indirect CRLs.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{RevocationReason, RevokedEntry};
use crate::asn1;
use crate::ca::CaError;
use crate::keys::SignatureAlgorithm;

/// Longest serial number, in octets (RFC 5280 section 4.1.2.2).
const MAX_SERIAL_OCTETS: usize = 20;

/// `id-ce-cRLReasons` (2.5.29.21), DER content octets.
const OID_CRL_REASON: &[u8] = &[0x55, 0x1d, 0x15];
/// `id-ce-authorityKeyIdentifier` (2.5.29.35).
const OID_AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x23];
/// `id-ce-cRLNumber` (2.5.29.20).
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
/// DER tag of ENUMERATED.
const ENUMERATED: u8 = 0x0a;

/// Errors of the CRL encoder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// cRLNumber must be a positive integer of at most 20 octets (RFC 5280 section 5.2.3); 0
    /// is refused so the first CRL is number 1.
    #[error("CRL number {number} is out of range (1 to 2^159)")]
    CrlNumber {
        /// The number given.
        number: u64,
    },
    /// A revoked entry cannot be listed.
    #[error("revoked serial {serial_hex}: {reason}")]
    InvalidEntry {
        /// The serial, lower-case hex.
        serial_hex: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (or folder for the spool).
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// nextUpdate must come after thisUpdate (RFC 5280 section 5.1.2.5).
    #[error("nextUpdate {next_update} is not after thisUpdate {this_update}")]
    NextUpdateNotAfterThisUpdate {
        /// thisUpdate, unix seconds.
        this_update: i64,
        /// nextUpdate, unix seconds.
        next_update: i64,
    },
    /// The CA could not sign; no file was written.
    #[error("signing the CRL failed: {0}")]
    Signing(#[from] CaError),
    /// A time cannot be encoded (before year 0 or after 9999).
    #[error("time {unix_seconds} cannot be encoded in a CRL")]
    TimeOutOfRange {
        /// The time, unix seconds.
        unix_seconds: i64,
    },
}

/// What a CRL says besides its entries.
#[derive(Clone, Copy, Debug)]
pub struct CrlParams<'a> {
    /// The issuer's Name, the exact DER of the CA certificate's subject.
    pub issuer_name_der: &'a [u8],
    /// keyIdentifier of the authorityKeyIdentifier extension: the CA's subjectKeyIdentifier.
    pub authority_key_identifier: &'a [u8],
    /// cRLNumber.
    pub crl_number: u64,
    /// thisUpdate, unix seconds.
    pub this_update: i64,
    /// nextUpdate, unix seconds; after `this_update`.
    pub next_update: i64,
    /// Signature algorithm (the CA key's).
    pub algorithm: SignatureAlgorithm,
}

/// What [`CrlBuilder::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSummary {
    /// Revoked entries listed.
    pub entries: u64,
    /// Size of the CRL file.
    pub bytes: u64,
    /// SHA-256 of the CRL file (its HTTP ETag).
    pub sha256: [u8; 32],
}

/// A CRL being built: the TBS fields before and after the entries are kept in memory (a few
/// hundred bytes), the entries in a spool file.
pub struct CrlBuilder {
    /// version, signature, issuer, thisUpdate, nextUpdate: the TBSCertList content before the
    /// entries.
    head: Vec<u8>,
    /// `[0] EXPLICIT Extensions`: the TBSCertList content after the entries.
    tail: Vec<u8>,
    algorithm: SignatureAlgorithm,
    spool: BufWriter<File>,
    spool_dir: PathBuf,
    entries: u64,
    entries_len: u64,
    /// One entry's encoding, reused.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for CrlBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlBuilder")
            .field("entries", &self.entries)
            .field("entries_len", &self.entries_len)
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> CrlError + '_ {
    move |source| CrlError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// RFC 5280 section 5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050, both in UTC
/// with seconds and `Z`.
fn push_time(out: &mut Vec<u8>, unix: i64) -> Result<(), CrlError> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|_| CrlError::TimeOutOfRange { unix_seconds: unix })?;
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return Err(CrlError::TimeOutOfRange { unix_seconds: unix });
    }
    let rest = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if (1950..2050).contains(&year) {
        asn1::push_tlv(
            out,
            asn1::UTC_TIME,
            format!("{:02}{rest}", year % 100).as_bytes(),
        );
    } else {
        asn1::push_tlv(
            out,
            asn1::GENERALIZED_TIME,
            format!("{year:04}{rest}").as_bytes(),
        );
    }
    Ok(())
}

/// `Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }`, not
/// critical (every extension a CRL of certmill carries is non-critical, RFC 5280 5.2 / 5.3).
fn extension(oid: &[u8], value: &[u8]) -> Vec<u8> {
    let oid = asn1::tlv(asn1::OBJECT_IDENTIFIER, oid);
    let value = asn1::tlv(asn1::OCTET_STRING, value);
    asn1::tlv_parts(asn1::SEQUENCE, &[&oid, &value])
}

fn serial_hex(serial: &[u8]) -> String {
    serial.iter().map(|b| format!("{b:02x}")).collect()
}

impl CrlBuilder {
    /// Starts a CRL whose entries spool to an anonymous temporary file in `spool_dir`.
    pub fn new(params: CrlParams<'_>, spool_dir: &Path) -> Result<CrlBuilder, CrlError> {
        if params.next_update <= params.this_update {
            return Err(CrlError::NextUpdateNotAfterThisUpdate {
                this_update: params.this_update,
                next_update: params.next_update,
            });
        }
        if params.crl_number == 0 {
            return Err(CrlError::CrlNumber {
                number: params.crl_number,
            });
        }
        let mut head = Vec::with_capacity(256 + params.issuer_name_der.len());
        // version v2 (INTEGER 1): required when the CRL has extensions (5.1.2.1).
        asn1::push_tlv(&mut head, asn1::INTEGER, &[1]);
        head.extend_from_slice(params.algorithm.algorithm_identifier_der());
        head.extend_from_slice(params.issuer_name_der);
        push_time(&mut head, params.this_update)?;
        push_time(&mut head, params.next_update)?;

        // authorityKeyIdentifier (5.2.1, MUST) with its keyIdentifier [0] IMPLICIT, and
        // cRLNumber (5.2.3, MUST), both non-critical.
        let key_id = asn1::tlv(asn1::context_primitive(0), params.authority_key_identifier);
        let aki = extension(
            OID_AUTHORITY_KEY_IDENTIFIER,
            &asn1::tlv(asn1::SEQUENCE, &key_id),
        );
        let number = extension(
            OID_CRL_NUMBER,
            &asn1::unsigned_integer(&params.crl_number.to_be_bytes()),
        );
        let extensions = asn1::tlv_parts(asn1::SEQUENCE, &[&aki, &number]);
        let tail = asn1::tlv(asn1::context_constructed(0), &extensions);

        let spool = tempfile::tempfile_in(spool_dir).map_err(io_error(spool_dir))?;
        Ok(CrlBuilder {
            head,
            tail,
            algorithm: params.algorithm,
            spool: BufWriter::with_capacity(1 << 20, spool),
            spool_dir: spool_dir.to_path_buf(),
            entries: 0,
            entries_len: 0,
            scratch: Vec::with_capacity(96),
        })
    }

    /// Appends one revokedCertificates entry.
    pub fn push(&mut self, entry: &RevokedEntry) -> Result<(), CrlError> {
        let invalid = |reason| CrlError::InvalidEntry {
            serial_hex: serial_hex(&entry.serial),
            reason,
        };
        let serial = match entry.serial.iter().position(|&b| b != 0) {
            Some(first) => &entry.serial[first..],
            None => return Err(invalid("a serial number must be positive")),
        };
        if serial.len() > MAX_SERIAL_OCTETS {
            return Err(invalid("a serial number has at most 20 octets"));
        }
        if entry.reason == RevocationReason::RemoveFromCrl {
            // 5.3.1: removeFromCRL only appears in delta CRLs.
            return Err(invalid("removeFromCRL cannot be listed in a full CRL"));
        }
        let mut content = Vec::with_capacity(64);
        content.extend_from_slice(&asn1::unsigned_integer(serial));
        push_time(&mut content, entry.revoked_at)?;
        if entry.reason != RevocationReason::Unspecified {
            // 5.3.1: "the reason code unspecified SHOULD be absent"; the others are
            // ENUMERATED in a non-critical reasonCode entry extension.
            let reason = asn1::tlv(ENUMERATED, &[entry.reason.code()]);
            let extensions = extension(OID_CRL_REASON, &reason);
            asn1::push_tlv(&mut content, asn1::SEQUENCE, &extensions);
        }
        self.scratch.clear();
        asn1::push_tlv(&mut self.scratch, asn1::SEQUENCE, &content);
        self.spool
            .write_all(&self.scratch)
            .map_err(io_error(&self.spool_dir))?;
        self.entries += 1;
        self.entries_len += self.scratch.len() as u64;
        Ok(())
    }

    /// Signs and writes the CRL to `out` atomically (temporary file in `out`'s folder, fsync,
    /// rename; mode 0644). `sign_digest` gets the digest of the TBSCertList, of
    /// [`SignatureAlgorithm::digest_algorithm`]. When it fails nothing is written.
    pub fn finish(
        self,
        sign_digest: impl FnOnce(&aws_lc_rs::digest::Digest) -> Result<Vec<u8>, CaError>,
        out: &Path,
    ) -> Result<CrlSummary, CrlError> {
        let CrlBuilder {
            head,
            tail,
            algorithm,
            spool,
            spool_dir,
            entries,
            entries_len,
            ..
        } = self;
        let mut spool = spool
            .into_inner()
            .map_err(|e| io_error(&spool_dir)(e.into_error()))?;
        let entries_len = usize::try_from(entries_len).map_err(|_| CrlError::Io {
            path: spool_dir.clone(),
            source: io::Error::other("the CRL is too large for this platform"),
        })?;

        // 5.1.2.6: "When there are no revoked certificates, the revoked certificates list MUST
        // be absent."
        let mut list_header = Vec::with_capacity(6);
        if entries > 0 {
            asn1::push_header(&mut list_header, asn1::SEQUENCE, entries_len);
        }
        let tbs_len = head.len() + list_header.len() + entries_len + tail.len();
        let mut tbs_header = Vec::with_capacity(6);
        asn1::push_header(&mut tbs_header, asn1::SEQUENCE, tbs_len);

        let mut context = aws_lc_rs::digest::Context::new(algorithm.digest_algorithm());
        context.update(&tbs_header);
        context.update(&head);
        context.update(&list_header);
        spool
            .seek(SeekFrom::Start(0))
            .map_err(io_error(&spool_dir))?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = spool.read(&mut buffer).map_err(io_error(&spool_dir))?;
            if n == 0 {
                break;
            }
            context.update(&buffer[..n]);
        }
        context.update(&tail);
        let signature = sign_digest(&context.finish())?;

        let mut signature_bits = Vec::with_capacity(signature.len() + 1);
        signature_bits.push(0);
        signature_bits.extend_from_slice(&signature);
        let signature_value = asn1::tlv(asn1::BIT_STRING, &signature_bits);
        let algorithm_der = algorithm.algorithm_identifier_der();
        let total_content =
            tbs_header.len() + tbs_len + algorithm_der.len() + signature_value.len();
        let mut outer = Vec::with_capacity(6);
        asn1::push_header(&mut outer, asn1::SEQUENCE, total_content);

        let dir = out.parent().unwrap_or_else(|| Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io_error(dir))?;
        let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        {
            let mut writer = HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file.as_file_mut()),
                hasher: &mut hasher,
            };
            let write = |w: &mut HashingWriter<'_, _>, bytes: &[u8]| w.write_all(bytes);
            let failed = io_error(out);
            for piece in [outer.as_slice(), &tbs_header, &head, &list_header] {
                write(&mut writer, piece).map_err(&failed)?;
            }
            spool
                .seek(SeekFrom::Start(0))
                .map_err(io_error(&spool_dir))?;
            loop {
                let n = spool.read(&mut buffer).map_err(io_error(&spool_dir))?;
                if n == 0 {
                    break;
                }
                write(&mut writer, &buffer[..n]).map_err(&failed)?;
            }
            for piece in [tail.as_slice(), algorithm_der, &signature_value] {
                write(&mut writer, piece).map_err(&failed)?;
            }
            writer.inner.flush().map_err(&failed)?;
        }
        let bytes = (outer.len() + total_content) as u64;
        set_public_mode(file.as_file()).map_err(io_error(out))?;
        file.as_file().sync_all().map_err(io_error(out))?;
        file.persist(out).map_err(|e| io_error(out)(e.error))?;
        // The rename is durable once the folder is synced.
        if let Ok(folder) = File::open(dir) {
            let _ = folder.sync_all();
        }
        let digest = hasher.finish();
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(digest.as_ref());
        Ok(CrlSummary {
            entries,
            bytes,
            sha256,
        })
    }
}

/// A CRL is public: readable by the web server or CDN that may publish it.
fn set_public_mode(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o644))
}

/// Writes through and hashes what it writes (the file's ETag without reading it back).
struct HashingWriter<'a, W: Write> {
    inner: W,
    hasher: &'a mut aws_lc_rs::digest::Context,
}

impl<W: Write> HashingWriter<'_, W> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.inner.write_all(bytes)
    }
}

#[cfg(test)]
mod tests;
