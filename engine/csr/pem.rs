//! PEM certificate-request blocks (RFC 7468 section 7), read line by line with bounded memory.
//!
//! Text outside `-----BEGIN CERTIFICATE REQUEST-----` / `-----BEGIN NEW CERTIFICATE
//! REQUEST-----` blocks is ignored; inside a block only base64 lines are allowed (RFC 7468's
//! strict grammar: no headers). Lines may end in LF or CRLF and may be of any width.

use std::fmt;
use std::io::BufRead;

/// What is wrong with a PEM block.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemDefect {
    /// A line inside the block is not base64, or the base64 does not decode (bad padding, bad
    /// length).
    BadBase64,
    /// The block holds no data.
    EmptyBlock,
    /// The END line's label differs from the BEGIN line's.
    MismatchedEnd,
    /// A ZIP entry holds more than one CSR block.
    MultipleBlocks,
    /// A ZIP entry looks like PEM but holds no CSR block.
    NoBlock,
    /// The block has no END line (the file ends, or another BEGIN line comes first).
    Unterminated,
    /// A private key block (`PRIVATE KEY`, `EC PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, ...):
    /// private keys never belong in a CSR upload, so the whole upload is refused.
    PrivateKey,
    /// The text holds PEM blocks but none is a certificate request; the first one's label.
    WrongLabel(String),
}

impl fmt::Display for PemDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PemDefect::BadBase64 => "bad base64 in PEM block",
            PemDefect::EmptyBlock => "empty PEM block",
            PemDefect::MismatchedEnd => "END line does not match the BEGIN line",
            PemDefect::MultipleBlocks => "more than one CERTIFICATE REQUEST block",
            PemDefect::NoBlock => "no CERTIFICATE REQUEST block",
            PemDefect::Unterminated => "PEM block has no END line",
            PemDefect::PrivateKey => {
                "a PRIVATE KEY block: private keys never belong in a CSR upload (send the \
                 certificate request only, and keep the key on the device)"
            }
            PemDefect::WrongLabel(label) => {
                return write!(
                    f,
                    "a {} block, not a CERTIFICATE REQUEST",
                    label.escape_debug()
                )
            }
        })
    }
}

const LABELS: [&[u8]; 2] = [b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"];

/// A decoded block.
pub(super) struct Block {
    /// 1-based block number in the text.
    pub(super) number: usize,
    /// The DER.
    pub(super) der: Vec<u8>,
}

/// A failure while scanning.
pub(super) enum ScanError {
    /// Reading failed.
    Io(std::io::Error),
    /// Block `number` breaks at `line`.
    Defect {
        number: usize,
        line: u64,
        defect: PemDefect,
    },
    /// Block `number` grew beyond the per-CSR limit after `bytes` bytes.
    TooLarge { number: usize, bytes: u64 },
}

/// Streams CSR blocks out of text, one line in memory at a time.
pub(super) struct Scanner<R> {
    reader: R,
    /// Longest block, in bytes of PEM text (BEGIN and END lines included).
    max_block_bytes: usize,
    line: u64,
    blocks: usize,
    /// The first block of another label (not a CSR, not a key) and its line.
    other: Option<(String, u64)>,
    buf: Vec<u8>,
}

impl<R: BufRead> Scanner<R> {
    pub(super) fn new(reader: R, max_block_bytes: usize) -> Self {
        Scanner {
            reader,
            max_block_bytes,
            line: 0,
            blocks: 0,
            other: None,
            buf: Vec::new(),
        }
    }

    /// The first skipped block that was not a certificate request: its label and line.
    pub(super) fn other_block(&self) -> Option<(&str, u64)> {
        self.other
            .as_ref()
            .map(|(label, line)| (label.as_str(), *line))
    }

    /// 1-based number of the last line read.
    pub(super) fn line(&self) -> u64 {
        self.line
    }

    /// The next block, `None` at the end of the text.
    pub(super) fn next_block(&mut self) -> Result<Option<Block>, ScanError> {
        // Outside a block: look for a BEGIN line, skipping everything else.
        let label = loop {
            match self.read_line()? {
                None => return Ok(None),
                Some(false) => continue, // overlong junk line
                Some(true) => {}
            }
            if let Some(label) = marker(trim(&self.buf), b"BEGIN") {
                if LABELS.contains(&label) {
                    break label.to_vec();
                }
                if label.ends_with(b"PRIVATE KEY") {
                    return Err(ScanError::Defect {
                        number: self.blocks + 1,
                        line: self.line,
                        defect: PemDefect::PrivateKey,
                    });
                }
                if self.other.is_none() {
                    let label = String::from_utf8_lossy(&label[..label.len().min(64)]);
                    self.other = Some((label.into_owned(), self.line));
                }
            }
        };
        self.blocks += 1;
        let number = self.blocks;
        let begin_line = self.line;
        let mut bytes = self.buf.len() as u64;
        let mut base64 = Vec::new();
        loop {
            match self.read_line()? {
                None => {
                    return Err(ScanError::Defect {
                        number,
                        line: begin_line,
                        defect: PemDefect::Unterminated,
                    })
                }
                Some(false) => {
                    // A line longer than the whole limit: the block is at least that large.
                    return Err(ScanError::TooLarge {
                        number,
                        bytes: bytes.saturating_add(self.max_block_bytes as u64 + 1),
                    });
                }
                Some(true) => {}
            }
            bytes = bytes.saturating_add(self.buf.len() as u64);
            if bytes > self.max_block_bytes as u64 {
                return Err(ScanError::TooLarge { number, bytes });
            }
            let line = trim(&self.buf);
            let defect = |defect| ScanError::Defect {
                number,
                line: self.line,
                defect,
            };
            if marker(line, b"BEGIN").is_some() {
                return Err(ScanError::Defect {
                    number,
                    line: begin_line,
                    defect: PemDefect::Unterminated,
                });
            }
            if let Some(end) = marker(line, b"END") {
                if end != label.as_slice() {
                    return Err(defect(PemDefect::MismatchedEnd));
                }
                if base64.is_empty() {
                    return Err(defect(PemDefect::EmptyBlock));
                }
                let der = decode_base64(&base64).ok_or_else(|| defect(PemDefect::BadBase64))?;
                return Ok(Some(Block { number, der }));
            }
            if !line.iter().all(|&b| is_base64_symbol(b)) {
                return Err(defect(PemDefect::BadBase64));
            }
            base64.extend_from_slice(line);
        }
    }

    /// Reads one line into `buf` (without its terminator). `Some(false)`: the line was longer
    /// than the block limit and was skipped without being kept; `None`: end of text.
    fn read_line(&mut self) -> Result<Option<bool>, ScanError> {
        self.buf.clear();
        let mut kept = true;
        let mut any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ScanError::Io(e)),
            };
            if available.is_empty() {
                break;
            }
            any = true;
            let (chunk, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], i + 1),
                None => (available, available.len()),
            };
            if kept && self.buf.len() + chunk.len() <= self.max_block_bytes {
                self.buf.extend_from_slice(chunk);
            } else {
                kept = false;
                self.buf.clear();
            }
            let newline = done > chunk.len();
            self.reader.consume(done);
            if newline {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line += 1;
        Ok(Some(kept))
    }
}

/// The label of a `-----<kind> <label>-----` line.
fn marker<'a>(line: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(b"-----")?.strip_prefix(kind)?;
    let rest = rest.strip_prefix(b" ")?;
    rest.strip_suffix(b"-----")
}

fn trim(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

/// The symbols of standard base64 and its padding, as a table (a CSR's block is checked line
/// by line before it is decoded, so a bad line is named).
const BASE64_SYMBOLS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=';
        b += 1;
    }
    table
};

fn is_base64_symbol(b: u8) -> bool {
    BASE64_SYMBOLS[usize::from(b)]
}

/// Decodes padded standard base64 (RFC 4648 section 4), strictly: missing or misplaced
/// padding and non-canonical trailing bits are refused. Variable time (`base64`): a CSR is
/// public, and the constant-time `base64ct` took 6 ns a byte, a third of reading a bundle.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if text.is_empty() {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Whether `content` is to be read as PEM text rather than DER: a DER request starts with a
/// SEQUENCE tag, which no PEM text (with or without leading notes) does.
pub(super) fn looks_like_pem(content: &[u8]) -> bool {
    content.first() != Some(&0x30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        assert_eq!(decode_base64(b"TWFu").unwrap(), b"Man");
        assert_eq!(decode_base64(b"TWE=").unwrap(), b"Ma");
        assert_eq!(decode_base64(b"TQ==").unwrap(), b"M");
        assert_eq!(decode_base64(b"TWFuTQ==").unwrap(), b"ManM");
        for bad in [
            &b""[..],
            b"TWF",
            b"TQ=A",
            b"T===",
            b"TQ==TWFu",
            b"TR==",
            b"TWF=",
            b"TW-u",
        ] {
            assert_eq!(decode_base64(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn base64_decoding_agrees_with_the_constant_time_crate() {
        use base64ct::Encoding;
        // Every string of up to 6 of these symbols: valid ones, padding in every place, a
        // symbol outside the alphabet, and symbols with non-zero trailing bits (Q, T, g, /).
        const ALPHABET: &[u8] = b"AQTg/=-";
        let mut text = Vec::new();
        for len in 1..=6u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                let theirs = base64ct::Base64::decode_vec(std::str::from_utf8(&text).unwrap());
                assert_eq!(
                    decode_base64(&text),
                    theirs.ok(),
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }

    #[test]
    fn overlong_junk_lines_are_skipped_but_overlong_blocks_are_refused() {
        let mut text = vec![b'x'; 10_000];
        text.extend_from_slice(b"\n-----BEGIN CERTIFICATE REQUEST-----\nTWFu\n");
        text.extend_from_slice(b"-----END CERTIFICATE REQUEST-----\n");
        let mut scanner = Scanner::new(&text[..], 100);
        let block = scanner.next_block().ok().flatten().unwrap();
        assert_eq!((block.number, block.der.as_slice()), (1, &b"Man"[..]));
        assert!(matches!(scanner.next_block(), Ok(None)));

        let mut text = b"-----BEGIN CERTIFICATE REQUEST-----\n".to_vec();
        text.extend(std::iter::repeat_n(b'A', 10_000));
        let mut scanner = Scanner::new(&text[..], 100);
        assert!(matches!(
            scanner.next_block(),
            Err(ScanError::TooLarge { number: 1, .. })
        ));
    }
}
