//! CSV batch input as seed 001 "Upload CSV file" describes it: a header row (names
//! case-insensitive, any order), comma-separated, ASCII or UTF-8 (a BOM is tolerated), every
//! record with the same fields. The file is streamed, never loaded whole.

use super::{BatchError, InputLimits};
use crate::profile::{CsvColumn, Lookup, Profile};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Read-ahead of the reader stack (our buffer, then the csv crate's own 8 KiB one): how far
/// past the end of the last record the file may have been read.
const READ_AHEAD: u64 = (1 << 16) + (8 << 10);

/// Maps the profile's request parameter names to CSV column indexes.
#[derive(Clone, Debug)]
pub struct CsvLayout {
    path: PathBuf,
    limits: InputLimits,
    /// (parameter name as the profile spells it, column index)
    columns: Vec<(String, usize)>,
}

/// One data record with its layout: a [`Lookup`] for the profile's `Request.<name>` sources.
pub struct CsvRow<'a> {
    layout: &'a CsvLayout,
    record: &'a csv::StringRecord,
}

impl Lookup for CsvRow<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        let index = self.layout.columns.iter().find(|(n, _)| n == name)?.1;
        self.record.get(index)
    }
}

/// A record and its 1-based data row number (the header is row 0).
pub struct Record {
    /// Data row number, 1 = first record after the header.
    pub row: u64,
    /// The fields.
    pub fields: csv::StringRecord,
}

impl CsvLayout {
    /// Reads the header, matches it against the profile's columns and the batch parameters.
    pub fn open(
        path: &Path,
        profile: &Profile,
        batch: &BTreeMap<String, String>,
        limits: &InputLimits,
    ) -> Result<(CsvLayout, RecordReader), BatchError> {
        let mut reader = RecordReader::open(path, limits)?;
        let headers = reader
            .inner
            .headers()
            .map_err(|e| csv_error(path, e, limits))?
            .clone();
        if headers.is_empty() || (headers.len() == 1 && headers.get(0) == Some("")) {
            return Err(BatchError::Csv {
                path: path.display().to_string(),
                row: None,
                message: "no header row: the first record must name the columns".into(),
            });
        }
        let known: Vec<CsvColumn> = profile.csv_columns();
        let mut columns: Vec<(String, usize)> = Vec::new();
        let mut problems = Vec::new();
        if headers.iter().any(|h| h.contains('\0')) {
            return Err(BatchError::Csv {
                path: path.display().to_string(),
                row: None,
                message: "header: holds NUL characters (is the file UTF-16? save it as UTF-8)"
                    .into(),
            });
        }
        // One column whose name holds another delimiter: the file is not comma-separated.
        if let [only] = headers.iter().collect::<Vec<_>>()[..] {
            let other = [';', '\t', '|'].into_iter().find(|d| only.contains(*d));
            if let Some(delimiter) = other {
                return Err(BatchError::Csv {
                    path: path.display().to_string(),
                    row: None,
                    message: format!(
                        "header: the file seems separated by {delimiter:?}; certmill reads \
                         comma-separated values (RFC 4180), so save or export it with commas"
                    ),
                });
            }
        }
        for (index, header) in headers.iter().enumerate() {
            let header = header.trim();
            match known.iter().find(|c| c.name.eq_ignore_ascii_case(header)) {
                Some(column) if columns.iter().any(|(n, _)| n == &column.name) => {
                    problems.push(format!(
                        "column {} {header:?} repeats column {:?}",
                        index + 1,
                        column.name
                    ));
                }
                Some(column) => columns.push((column.name.clone(), index)),
                None => problems.push(format!(
                    "column {} {header:?} is not a parameter of profile {:?} (allowed: {})",
                    index + 1,
                    profile.name(),
                    known
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        for column in &known {
            let present = columns.iter().any(|(n, _)| n == &column.name);
            let needed = column.required
                || column
                    .required_unless_batch_parameter
                    .as_ref()
                    .is_some_and(|b| !batch.contains_key(b));
            if needed && !present {
                let hint = match &column.required_unless_batch_parameter {
                    Some(b) => format!(" (or give batch parameter {b})"),
                    None => String::new(),
                };
                problems.push(format!(
                    "required column {:?} is missing{hint}",
                    column.name
                ));
            }
        }
        if !problems.is_empty() {
            return Err(BatchError::Csv {
                path: path.display().to_string(),
                row: None,
                message: format!("header: {}", problems.join("; ")),
            });
        }
        Ok((
            CsvLayout {
                path: path.to_owned(),
                limits: *limits,
                columns,
            },
            reader,
        ))
    }

    /// A lookup over one record.
    pub fn row<'a>(&'a self, record: &'a csv::StringRecord) -> CsvRow<'a> {
        CsvRow {
            layout: self,
            record,
        }
    }

    /// Reopens the file positioned after the header, for the issuing pass.
    pub fn reopen(&self) -> Result<RecordReader, BatchError> {
        let mut reader = RecordReader::open(&self.path, &self.limits)?;
        reader
            .inner
            .headers()
            .map_err(|e| csv_error(&self.path, e, &self.limits))?;
        Ok(reader)
    }
}

/// Where each chunk of a CSV file starts, so a node issuing one chunk fetches only the header
/// and the chunk's bytes instead of the whole file ([`chunk_index`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CsvChunkIndex {
    /// File offset just past the header row (a byte order mark included).
    pub header_end: u64,
    /// Per chunk: the file offset where its first record (or the blank lines before it)
    /// begins, and the row number before it.
    pub starts: Vec<CsvChunkStart>,
    /// The file's size: the end of the last chunk.
    pub size: u64,
}

/// One chunk's start in a [`CsvChunkIndex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CsvChunkStart {
    /// File offset.
    pub offset: u64,
    /// Rows read before it (the header is row 0).
    pub row: u64,
}

impl CsvChunkIndex {
    /// The byte range of chunk `idx` in the file, and the row number before it.
    pub fn chunk(&self, idx: usize) -> Option<(std::ops::Range<u64>, u64)> {
        let start = self.starts.get(idx)?;
        let end = self
            .starts
            .get(idx + 1)
            .map_or(self.size, |next| next.offset);
        Some((start.offset..end, start.row))
    }
}

/// Reads `path` with the batch's own reader (the same limits, byte order mark and blank-line
/// rules) and notes where every `every`-th record starts: records 1, every + 1, 2 × every + 1,
/// …, the first of each chunk. Call it on a file already validated.
pub fn chunk_index(
    path: &Path,
    limits: &InputLimits,
    every: u64,
) -> Result<CsvChunkIndex, BatchError> {
    let every = every.max(1);
    let mut reader = RecordReader::open(path, limits)?;
    reader
        .inner
        .headers()
        .map_err(|e| csv_error(path, e, limits))?;
    let header_end = reader.offset();
    let mut starts = Vec::new();
    let mut records = 0u64;
    loop {
        let before = CsvChunkStart {
            offset: reader.offset(),
            row: reader.row,
        };
        if reader.next_record()?.is_none() {
            break;
        }
        if records.is_multiple_of(every) {
            starts.push(before);
        }
        records += 1;
    }
    let size = std::fs::metadata(path)
        .map_err(|source| BatchError::Io {
            path: path.display().to_string(),
            source,
        })?
        .len();
    Ok(CsvChunkIndex {
        header_end,
        starts,
        size,
    })
}

/// Streams records.
pub struct RecordReader {
    path: PathBuf,
    inner: csv::Reader<BufReader<Bounded>>,
    /// Shared with the [`Bounded`] file under `inner`: how far it may read.
    read_limit: Rc<Cell<u64>>,
    limits: InputLimits,
    /// Bytes before the first record's field data (a byte order mark).
    skipped: u64,
    row: u64,
    record: csv::StringRecord,
}

/// The file under the CSV reader, refusing to read further than the end of the last record plus
/// [`InputLimits::max_csv_record_bytes`] and the read-ahead: a record longer than the limit
/// (a file without line ends, an unclosed quote) is refused when it has cost that much memory,
/// not when it has filled all of it.
struct Bounded {
    file: File,
    read: u64,
    limit: Rc<Cell<u64>>,
}

/// The error [`Bounded`] gives when a record runs past its limit.
#[derive(Debug)]
struct RecordTooLong;

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record too long")
    }
}

impl std::error::Error for RecordTooLong {}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.limit.get().saturating_sub(self.read);
        if left == 0 {
            return Err(std::io::Error::other(RecordTooLong));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        self.read += n as u64;
        Ok(n)
    }
}

impl RecordReader {
    fn open(path: &Path, limits: &InputLimits) -> Result<RecordReader, BatchError> {
        let file = File::open(path).map_err(|source| BatchError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let read_limit = Rc::new(Cell::new(limits.max_csv_record_bytes + READ_AHEAD));
        let bounded = Bounded {
            file,
            read: 0,
            limit: Rc::clone(&read_limit),
        };
        let mut buffered = BufReader::with_capacity(1 << 16, bounded);
        // A UTF-8 byte order mark is tolerated (seed: ASCII or UTF-8).
        let has_bom = buffered
            .fill_buf()
            .map_err(|source| BatchError::Io {
                path: path.display().to_string(),
                source,
            })?
            .starts_with(b"\xEF\xBB\xBF");
        if has_bom {
            buffered.consume(3);
        }
        let inner = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(buffered);
        Ok(RecordReader {
            path: path.to_owned(),
            inner,
            read_limit,
            limits: *limits,
            skipped: if has_bom { 3 } else { 0 },
            row: 0,
            record: csv::StringRecord::new(),
        })
    }

    fn row_error(&self, message: String) -> BatchError {
        BatchError::Csv {
            path: self.path.display().to_string(),
            row: Some(self.row),
            message,
        }
    }

    /// The file offset of the reader's position: the next record (or what precedes it).
    fn offset(&self) -> u64 {
        self.skipped + self.inner.position().byte()
    }

    /// Numbers the records that follow as if `row` rows came before them: a chunk's file
    /// holds the header and the chunk's own rows ([`CsvChunkIndex`]).
    pub fn continue_from_row(&mut self, row: u64) {
        self.row = row;
    }

    /// Lets the file be read up to one more record past the current position.
    fn extend_read_limit(&self) {
        let end = self.skipped + self.inner.position().byte();
        self.read_limit
            .set(end + self.limits.max_csv_record_bytes + READ_AHEAD);
    }

    /// The record's fields against the field limit and the NUL rule, naming the column.
    fn check_fields(&mut self) -> Result<(), String> {
        let max = self.limits.max_csv_field_bytes;
        let bad = self.record.iter().enumerate().find_map(|(i, field)| {
            if field.len() > max {
                Some((i, format!("{} bytes, over the limit of {max}", field.len())))
            } else if field.contains('\0') {
                Some((
                    i,
                    "holds a NUL character (is the file UTF-16? save it as UTF-8)".to_owned(),
                ))
            } else {
                None
            }
        });
        let Some((index, problem)) = bad else {
            return Ok(());
        };
        let name = self
            .inner
            .headers()
            .ok()
            .and_then(|h| h.get(index))
            .map(|h| format!(" ({:?})", h.trim()))
            .unwrap_or_default();
        Err(format!("column {}{name}: {problem}", index + 1))
    }

    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record>, BatchError> {
        // A loop, not a recursion: a file of a million blank lines must not exhaust the stack.
        loop {
            self.extend_read_limit();
            let read = self.inner.read_record(&mut self.record);
            self.row += 1;
            match read {
                Ok(false) => return Ok(None),
                Ok(true) => {
                    if let Err(message) = self.check_fields() {
                        return Err(self.row_error(message));
                    }
                    // A blank line is not a device.
                    if self.record.len() == 1 && self.record.get(0) == Some("") {
                        continue;
                    }
                    return Ok(Some(Record {
                        row: self.row,
                        fields: self.record.clone(),
                    }));
                }
                Err(e) => return Err(self.row_error(describe_csv_error(&e, &self.limits))),
            }
        }
    }
}

fn describe_csv_error(e: &csv::Error, limits: &InputLimits) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<RecordTooLong>()) =>
        {
            format!(
                "the record is longer than the limit of {} bytes (a missing line end or an \
                 unclosed quote?)",
                limits.max_csv_record_bytes
            )
        }
        csv::ErrorKind::UnequalLengths {
            expected_len,
            len,
            pos,
        } => format!(
            "record has {len} fields but the header has {expected_len}{}",
            pos.as_ref()
                .map(|p| format!(" (line {})", p.line()))
                .unwrap_or_default()
        ),
        csv::ErrorKind::Utf8 { pos, .. } => format!(
            "not valid UTF-8{}",
            pos.as_ref()
                .map(|p| format!(" (line {})", p.line()))
                .unwrap_or_default()
        ),
        _ => e.to_string(),
    }
}

fn csv_error(path: &Path, e: csv::Error, limits: &InputLimits) -> BatchError {
    BatchError::Csv {
        path: path.display().to_string(),
        row: None,
        message: describe_csv_error(&e, limits),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{validate_csv, BatchError, InputLimits};
    use crate::ca::IssuingCa;
    use crate::profile::Profile;
    use crate::template::Template;
    use std::collections::BTreeMap;

    struct Fixture {
        dir: tempfile::TempDir,
        template: Template,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ca = IssuingCa::init(dir.path(), &Default::default()).unwrap();
        let profile = Profile::load("ecc-device", &Default::default()).unwrap();
        let template = Template::new(&profile, &ca, time::OffsetDateTime::now_utc()).unwrap();
        Fixture { dir, template }
    }

    impl Fixture {
        fn validate(&self, csv: &[u8], limits: &InputLimits) -> Result<u64, BatchError> {
            let path = self.dir.path().join("input.csv");
            std::fs::write(&path, csv).unwrap();
            validate_csv(&self.template, &path, &BTreeMap::new(), limits)
        }

        /// The row and message of a refused file.
        fn refused(&self, csv: &[u8], limits: &InputLimits) -> (Option<u64>, String) {
            match self.validate(csv, limits) {
                Err(BatchError::Csv { row, message, .. }) => (row, message),
                other => panic!("expected a CSV error, got {other:?}"),
            }
        }
    }

    /// Every record of `path` as (row, fields), read from row `base` on.
    fn all_records(path: &std::path::Path, base: u64) -> Vec<(u64, Vec<String>)> {
        let limits = InputLimits::default();
        let mut reader = super::RecordReader::open(path, &limits).expect("open");
        reader.inner.headers().expect("header");
        reader.continue_from_row(base);
        let mut out = Vec::new();
        while let Some(record) = reader.next_record().expect("record") {
            out.push((
                record.row,
                record.fields.iter().map(str::to_owned).collect(),
            ));
        }
        out
    }

    #[test]
    fn chunks_cut_at_the_index_read_the_same_records_as_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.csv");
        // A BOM, CRLF and LF line ends, blank lines (also at the end), quoted fields with
        // commas, quotes and line ends.
        let mut csv = String::from("\u{feff}macAddress,deviceClass,note\r\n");
        for i in 1..=13 {
            match i % 4 {
                0 => csv.push_str(&format!(
                    "02:00:00:00:00:{i:02},Aircraft,\"a, \"\"b\"\"\"\r\n"
                )),
                1 => csv.push_str(&format!("02:00:00:00:00:{i:02},Aircraft,plain\n\r\n")),
                2 => csv.push_str(&format!(
                    "02:00:00:00:00:{i:02},Aircraft,\"two\r\nlines\"\n"
                )),
                _ => csv.push_str(&format!("02:00:00:00:00:{i:02},Aircraft,\r\n\r\n")),
            }
        }
        std::fs::write(&whole, &csv).unwrap();
        let expected = all_records(&whole, 0);
        assert_eq!(expected.len(), 13);
        let bytes = std::fs::read(&whole).unwrap();
        for every in 1..=6u64 {
            let index = super::chunk_index(&whole, &InputLimits::default(), every).expect("index");
            assert_eq!(
                index.starts.len() as u64,
                13u64.div_ceil(every),
                "every {every}"
            );
            assert_eq!(index.size, bytes.len() as u64);
            let mut read = Vec::new();
            for idx in 0..index.starts.len() {
                let (range, row) = index.chunk(idx).expect("chunk");
                let part = dir.path().join(format!("chunk-{every}-{idx}.csv"));
                let mut content = bytes[..index.header_end as usize].to_vec();
                content.extend_from_slice(&bytes[range.start as usize..range.end as usize]);
                std::fs::write(&part, content).unwrap();
                let records = all_records(&part, row);
                assert!(
                    records.len() as u64 <= every,
                    "chunk {idx} of {every} holds {} records",
                    records.len()
                );
                read.extend(records);
            }
            assert_eq!(read, expected, "chunks of {every}");
        }
        assert!(index_of_nothing_is_empty(dir.path()));
    }

    /// A file with a header and no record has no chunk.
    fn index_of_nothing_is_empty(dir: &std::path::Path) -> bool {
        let path = dir.join("empty.csv");
        std::fs::write(&path, "macAddress,deviceClass\n\n").unwrap();
        let index = super::chunk_index(&path, &InputLimits::default(), 3).expect("index");
        index.starts.is_empty() && index.chunk(0).is_none()
    }

    const GOOD_ROW: &str = "02:00:00:00:00:01,Aircraft\n";

    #[test]
    fn a_field_over_the_limit_is_refused_by_row_and_column() {
        let f = fixture();
        let limits = InputLimits {
            max_csv_field_bytes: 50,
            ..Default::default()
        };
        let csv = format!(
            "macAddress,deviceClass,additionalInformation\n{}02:00:00:00:00:02,Aircraft,{}\n",
            GOOD_ROW.replace('\n', ",ok\n"),
            "x".repeat(51)
        );
        let (row, message) = f.refused(csv.as_bytes(), &limits);
        assert_eq!(row, Some(2));
        assert_eq!(
            message,
            "column 3 (\"additionalInformation\"): 51 bytes, over the limit of 50"
        );
        // At the limit it passes.
        let csv = csv.replace(&"x".repeat(51), &"x".repeat(50));
        assert_eq!(f.validate(csv.as_bytes(), &limits).unwrap(), 2);
    }

    #[test]
    fn a_nul_is_refused_with_a_utf16_hint() {
        let f = fixture();
        let (row, message) = f.refused(
            b"macAddress,deviceClass\n02:00:00:00:00:01,Air\0craft\n",
            &InputLimits::default(),
        );
        assert_eq!(row, Some(1));
        assert!(
            message.starts_with("column 2 (\"deviceClass\"): holds a NUL character"),
            "{message}"
        );
        // A UTF-16 file is all NULs between ASCII letters.
        let utf16: Vec<u8> = "macAddress,deviceClass\n02:00:00:00:00:01,Aircraft\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let error = f.validate(&utf16, &InputLimits::default()).unwrap_err();
        assert!(error.to_string().contains("NUL"), "{error}");
    }

    #[test]
    fn a_record_over_the_limit_is_refused_before_it_fills_memory() {
        let f = fixture();
        let limits = InputLimits {
            max_csv_record_bytes: 1 << 10,
            ..Default::default()
        };
        // An unclosed quote swallows the rest of a 4 MiB file into one record.
        let mut csv = format!("macAddress,deviceClass\n{GOOD_ROW}\"02:00").into_bytes();
        csv.resize(4 << 20, b'a');
        let (row, message) = f.refused(&csv, &limits);
        assert_eq!(row, Some(2));
        assert_eq!(
            message,
            "the record is longer than the limit of 1024 bytes (a missing line end or an \
             unclosed quote?)"
        );
        // Many records each under the limit pass, however long the file.
        let mut csv = String::from("macAddress,deviceClass\n");
        for i in 0..2_000 {
            csv.push_str(&format!(
                "02:00:00:00:{:02X}:{:02X},Aircraft\n",
                i >> 8,
                i & 0xff
            ));
        }
        assert_eq!(f.validate(csv.as_bytes(), &limits).unwrap(), 2_000);
    }

    #[test]
    fn another_delimiter_is_named() {
        let f = fixture();
        for (delimiter, shown) in [(';', "';'"), ('\t', "'\\t'"), ('|', "'|'")] {
            let csv =
                format!("macAddress{delimiter}deviceClass\n02:00:00:00:00:01{delimiter}Aircraft\n");
            let (row, message) = f.refused(csv.as_bytes(), &InputLimits::default());
            assert_eq!(row, None);
            assert!(
                message.starts_with(&format!("header: the file seems separated by {shown}")),
                "{message}"
            );
        }
    }

    #[test]
    fn more_devices_than_the_limit_are_refused() {
        let f = fixture();
        let limits = InputLimits {
            max_devices: 2,
            ..Default::default()
        };
        let mut csv = String::from("macAddress,deviceClass\n");
        for i in 1..=3 {
            csv.push_str(&format!("02:00:00:00:00:0{i},Aircraft\n"));
        }
        assert!(matches!(
            f.validate(csv.as_bytes(), &limits),
            Err(BatchError::TooManyDevices { limit: 2 })
        ));
        // Blank lines are not devices.
        let two = csv.replace("02:00:00:00:00:03,Aircraft\n", "\n\n");
        assert_eq!(f.validate(two.as_bytes(), &limits).unwrap(), 2);
    }

    /// Blank records used to be skipped by recursion: 300,000 of them overflowed the stack.
    #[test]
    fn many_blank_lines_do_not_exhaust_the_stack() {
        let f = fixture();
        let mut csv = String::from("macAddress\n");
        csv.push_str(&" \n".repeat(300_000));
        let limits = InputLimits::default();
        let batch = BTreeMap::from([("deviceClass".to_owned(), "Aircraft".to_owned())]);
        csv.push_str("02:00:00:00:00:01\n");
        let path = f.dir.path().join("blank.csv");
        std::fs::write(&path, csv).unwrap();
        assert_eq!(
            validate_csv(&f.template, &path, &batch, &limits).unwrap(),
            1
        );
    }

    /// Formula-looking values are decided by the field's syntax: refused in a field without
    /// one, decided by the rule where there is one.
    #[test]
    fn formula_looking_values_follow_the_field_syntax() {
        let f = fixture();
        for value in ["=HYPERLINK(\"http://x\")", "+1-555", "-2+3", "@SUM(A1)"] {
            let csv = format!(
                "macAddress,deviceClass,additionalInformation\n02:00:00:00:00:01,Aircraft,\"{}\"\n",
                value.replace('"', "\"\"")
            );
            match f.validate(csv.as_bytes(), &InputLimits::default()) {
                Err(BatchError::InvalidRows { errors, total: 1 }) => {
                    let message = errors[0].error.to_string();
                    assert_eq!(errors[0].row, 1);
                    assert!(
                        message.contains("organizationalUnitName")
                            && message.contains("spreadsheet formula"),
                        "{message}"
                    );
                }
                other => panic!("{value}: expected row 1 refused, got {other:?}"),
            }
        }
        // deviceClass has a syntax (String:Aircraft,...): it decides, and says what it allows.
        let csv = "macAddress,deviceClass\n02:00:00:00:00:01,=Aircraft\n";
        match f.validate(csv.as_bytes(), &InputLimits::default()) {
            Err(BatchError::InvalidRows { errors, .. }) => {
                let message = errors[0].error.to_string();
                assert!(message.contains("Valid values: Aircraft"), "{message}");
            }
            other => panic!("expected row 1 refused, got {other:?}"),
        }
        // A value with a formula character inside, not first, is plain text.
        let csv = "macAddress,deviceClass,additionalInformation\n02:00:00:00:00:01,Aircraft,line-3 @plant=2\n";
        assert_eq!(
            f.validate(csv.as_bytes(), &InputLimits::default()).unwrap(),
            1
        );
    }
}
