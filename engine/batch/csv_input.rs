//! CSV batch input as seed 001 "Upload CSV file" describes it: a header row (names
//! case-insensitive, any order), comma-separated, ASCII or UTF-8 (a BOM is tolerated), every
//! record with the same fields. The file is streamed, never loaded whole.

use super::BatchError;
use crate::profile::{CsvColumn, Lookup, Profile};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Maps the profile's request parameter names to CSV column indexes.
#[derive(Clone, Debug)]
pub struct CsvLayout {
    path: PathBuf,
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
    ) -> Result<(CsvLayout, RecordReader), BatchError> {
        let mut reader = RecordReader::open(path)?;
        let headers = reader
            .inner
            .headers()
            .map_err(|e| csv_error(path, e))?
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
        let mut reader = RecordReader::open(&self.path)?;
        reader
            .inner
            .headers()
            .map_err(|e| csv_error(&self.path, e))?;
        Ok(reader)
    }
}

/// Streams records.
pub struct RecordReader {
    path: PathBuf,
    inner: csv::Reader<BufReader<File>>,
    row: u64,
    record: csv::StringRecord,
}

impl RecordReader {
    fn open(path: &Path) -> Result<RecordReader, BatchError> {
        let file = File::open(path).map_err(|source| BatchError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut buffered = BufReader::with_capacity(1 << 16, file);
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
            row: 0,
            record: csv::StringRecord::new(),
        })
    }

    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record>, BatchError> {
        match self.inner.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.row += 1;
                // A blank line is not a device.
                if self.record.len() == 1 && self.record.get(0) == Some("") {
                    return self.next_record();
                }
                Ok(Some(Record {
                    row: self.row,
                    fields: self.record.clone(),
                }))
            }
            Err(e) => {
                self.row += 1;
                Err(BatchError::Csv {
                    path: self.path.display().to_string(),
                    row: Some(self.row),
                    message: describe_csv_error(&e),
                })
            }
        }
    }
}

fn describe_csv_error(e: &csv::Error) -> String {
    match e.kind() {
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

fn csv_error(path: &Path, e: csv::Error) -> BatchError {
    BatchError::Csv {
        path: path.display().to_string(),
        row: None,
        message: describe_csv_error(&e),
    }
}
