//! One call shape over the store's two backends: an embedded SQLite file (rusqlite) or a shared
//! PostgreSQL server (the synchronous `postgres` client).
//!
//! The shape is rusqlite's (`prepare_cached`, `execute`, `query_row`, `query_map`, `optional`,
//! `execute_batch`, transactions), so the store's SQL and call sites are written once. SQL uses
//! `?N` (or `?`) placeholders; the PostgreSQL side rewrites them to `$N` once per statement and
//! caches the prepared statement per connection, as rusqlite's statement cache does. Values
//! cross as [`Value`]: null, 64-bit integer, text, blob (and a real, which only `filter=`
//! literals produce). On PostgreSQL a value adapts to the type the server inferred for its
//! placeholder (`INT2/4/8`, `BOOL`, `TEXT`/`VARCHAR`, `BYTEA`), and a column reads back into the
//! store's types whatever integer or boolean type the server gives it (a boolean expression
//! reads as 0 or 1, a `sum` of integers as an integer).
//!
//! It does not hide the dialects' SQL differences: the store's SQL is kept to forms both
//! accept, and [`Connection::dialect`] lets the few statements without a common form choose.
//! On SQLite the hot path binds straight through to rusqlite (no [`Value`] is built).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use postgres::types::{FromSql, IsNull, ToSql, Type};

/// The key of the one PostgreSQL advisory lock every write transaction takes: the shared
/// database's equivalent of SQLite's single writer (`BEGIN IMMEDIATE`). Any constant works as
/// long as every certmill node uses the same one ("certmill" in ASCII).
pub const WRITE_LOCK_KEY: i64 = 0x6365_7274_6d69_6c6c;

/// The key of the advisory lock under which a node creates the PostgreSQL schema.
pub const SCHEMA_LOCK_KEY: i64 = 0x6365_7274_6d69_6c73;

/// Rows per statement of [`Connection::insert_rows`]. Past about a hundred rows a longer
/// statement saves nothing measurable; 128 rows of the widest table (11 columns) stay far
/// below both backends' parameter limits (SQLite 32,766, PostgreSQL 65,535).
pub const ROWS_PER_INSERT: usize = 128;

/// The result of every operation of this module.
pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// Which SQL dialect a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL (shared by several nodes).
    Postgres,
    /// SQLite (the embedded default).
    Sqlite,
}

/// A database error from either backend, or from this layer's conversions.
#[derive(Debug)]
#[non_exhaustive]
pub enum DbError {
    /// A column's value does not convert to the type the store reads.
    Conversion {
        /// The column, 0-based.
        column: usize,
        /// The type the store wanted.
        expected: &'static str,
        /// What the database held (boxed: keeps the error, and every error holding it, small).
        found: Box<str>,
    },
    /// A statement was given a different number of values than it has placeholders.
    ParameterCount {
        /// Placeholders in the statement.
        expected: usize,
        /// Values given.
        given: usize,
    },
    /// The PostgreSQL client's error (connection, protocol or a server error with SQLSTATE).
    Postgres(postgres::Error),
    /// A single-row query returned no row (see [`OptionalExtension::optional`]).
    QueryReturnedNoRows,
    /// rusqlite's error (boxed, so every error that holds a store error stays small).
    Sqlite(Box<rusqlite::Error>),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Conversion {
                column,
                expected,
                found,
            } => write!(f, "column {column}: expected {expected}, found {found}"),
            DbError::ParameterCount { expected, given } => {
                write!(f, "statement has {expected} parameters, {given} given")
            }
            DbError::Postgres(error) => match error.as_db_error() {
                // The server's own message; the client's Display says only "db error".
                Some(db) => write!(f, "PostgreSQL {}: {}", db.code().code(), db.message()),
                None => write!(f, "PostgreSQL: {error}"),
            },
            DbError::QueryReturnedNoRows => f.write_str("query returned no rows"),
            DbError::Sqlite(error) => write!(f, "SQLite: {error}"),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Postgres(error) => Some(error),
            DbError::Sqlite(error) => Some(&**error),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> DbError {
        match error {
            rusqlite::Error::QueryReturnedNoRows => DbError::QueryReturnedNoRows,
            other => DbError::Sqlite(Box::new(other)),
        }
    }
}

impl From<postgres::Error> for DbError {
    fn from(error: postgres::Error) -> DbError {
        DbError::Postgres(error)
    }
}

/// A constraint the database refused a write for, the same for both backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// CHECK (SQLite `SQLITE_CONSTRAINT_CHECK`, PostgreSQL 23514).
    Check,
    /// FOREIGN KEY (SQLite `SQLITE_CONSTRAINT_FOREIGNKEY`, PostgreSQL 23503).
    ForeignKey,
    /// NOT NULL (SQLite `SQLITE_CONSTRAINT_NOTNULL`, PostgreSQL 23502).
    NotNull,
    /// An append-only or registry trigger (SQLite `RAISE(ABORT)`, PostgreSQL [`TRIGGER_SQLSTATE`]).
    Trigger,
    /// PRIMARY KEY or UNIQUE (SQLite `SQLITE_CONSTRAINT_PRIMARYKEY`/`_UNIQUE`, PostgreSQL 23505).
    Unique,
}

/// The SQLSTATE the PostgreSQL schema's triggers raise (class 23, integrity constraint
/// violation; `P0001` would be any plpgsql `RAISE`).
pub const TRIGGER_SQLSTATE: &str = "23C00";

impl DbError {
    /// The constraint violated, if this is a constraint error.
    pub fn violation(&self) -> Option<Violation> {
        match self {
            DbError::Sqlite(error) => {
                use rusqlite::ffi;
                match error.sqlite_error()?.extended_code {
                    ffi::SQLITE_CONSTRAINT_CHECK => Some(Violation::Check),
                    ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Violation::ForeignKey),
                    ffi::SQLITE_CONSTRAINT_NOTNULL => Some(Violation::NotNull),
                    ffi::SQLITE_CONSTRAINT_TRIGGER => Some(Violation::Trigger),
                    ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => {
                        Some(Violation::Unique)
                    }
                    _ => None,
                }
            }
            DbError::Postgres(error) => match error.as_db_error()?.code().code() {
                "23514" => Some(Violation::Check),
                "23503" => Some(Violation::ForeignKey),
                "23502" => Some(Violation::NotNull),
                "23505" => Some(Violation::Unique),
                TRIGGER_SQLSTATE => Some(Violation::Trigger),
                _ => None,
            },
            _ => None,
        }
    }

    /// The name of the violated constraint or index, where the backend says (PostgreSQL).
    pub fn constraint(&self) -> Option<&str> {
        match self {
            DbError::Postgres(error) => error.as_db_error()?.constraint(),
            _ => None,
        }
    }
}

/// `Ok(None)` instead of [`DbError::QueryReturnedNoRows`], as rusqlite's `optional()`.
pub trait OptionalExtension<T> {
    /// The row, or `None` when the query returned none.
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(DbError::QueryReturnedNoRows) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// An owned SQL value: what `filter=` conditions bind, and what PostgreSQL values pass through.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (also booleans, as 0 and 1).
    Integer(i64),
    /// A floating point number (only `filter=` timestamps with fractions of a second).
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Octets.
    Blob(Vec<u8>),
}

/// A borrowed SQL value, as bound on PostgreSQL.
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A floating point number.
    Real(f64),
    /// UTF-8 text.
    Text(&'a str),
    /// Octets.
    Blob(&'a [u8]),
}

/// Something the store binds to a placeholder: bound straight through on SQLite, as a
/// [`ValueRef`] on PostgreSQL.
pub trait Param {
    /// The value for rusqlite.
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>>;
    /// The value for PostgreSQL.
    fn value(&self) -> ValueRef<'_>;
}

macro_rules! param_integer {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                rusqlite::ToSql::to_sql(self)
            }
            fn value(&self) -> ValueRef<'_> {
                ValueRef::Integer(i64::from(*self))
            }
        }
    )*};
}
param_integer!(i64, i32, u32, u16, u8, bool);

impl Param for str {
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        rusqlite::ToSql::to_sql(self)
    }
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl Param for String {
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        rusqlite::ToSql::to_sql(self)
    }
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl Param for [u8] {
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        rusqlite::ToSql::to_sql(self)
    }
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl Param for Vec<u8> {
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        rusqlite::ToSql::to_sql(self)
    }
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<const N: usize> Param for [u8; N] {
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        rusqlite::ToSql::to_sql(self)
    }
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl<T: Param + rusqlite::ToSql> Param for Option<T> {
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        rusqlite::ToSql::to_sql(self)
    }
    fn value(&self) -> ValueRef<'_> {
        match self {
            Some(value) => value.value(),
            None => ValueRef::Null,
        }
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        (**self).sqlite()
    }
    fn value(&self) -> ValueRef<'_> {
        (**self).value()
    }
}

impl Param for rusqlite::types::Value {
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        rusqlite::ToSql::to_sql(self)
    }
    fn value(&self) -> ValueRef<'_> {
        match self {
            rusqlite::types::Value::Null => ValueRef::Null,
            rusqlite::types::Value::Integer(n) => ValueRef::Integer(*n),
            rusqlite::types::Value::Real(x) => ValueRef::Real(*x),
            rusqlite::types::Value::Text(text) => ValueRef::Text(text),
            rusqlite::types::Value::Blob(octets) => ValueRef::Blob(octets),
        }
    }
}

impl Param for Value {
    fn sqlite(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        rusqlite::ToSql::to_sql(self)
    }
    fn value(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(n) => ValueRef::Integer(*n),
            Value::Real(x) => ValueRef::Real(*x),
            Value::Text(text) => ValueRef::Text(text),
            Value::Blob(octets) => ValueRef::Blob(octets),
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef as R;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self {
            Value::Null => R::Null,
            Value::Integer(n) => R::Integer(*n),
            Value::Real(x) => R::Real(*x),
            Value::Text(text) => R::Text(text.as_bytes()),
            Value::Blob(octets) => R::Blob(octets),
        }))
    }
}

/// The values of one statement's placeholders, in order.
pub trait Params {
    /// Calls `f` with the values as a slice.
    fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R;
}

impl Params for &[&dyn Param] {
    fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        f(self)
    }
}

impl Params for [&dyn Param; 0] {
    fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        f(&[])
    }
}

macro_rules! params_array {
    ($($n:literal),*) => {$(
        impl<T: Param> Params for [T; $n] {
            fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
                let refs: [&dyn Param; $n] = std::array::from_fn(|i| &self[i] as &dyn Param);
                f(&refs)
            }
        }
        impl<T: Param> Params for &[T; $n] {
            fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
                let refs: [&dyn Param; $n] = std::array::from_fn(|i| &self[i] as &dyn Param);
                f(&refs)
            }
        }
    )*};
}
params_array!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);

/// Values of any number of placeholders, e.g. a compiled filter's.
pub struct ParamsFromIter<'a>(Vec<&'a dyn Param>);

impl Params for ParamsFromIter<'_> {
    fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        f(&self.0)
    }
}

/// The values of an iterator, bound in order.
pub fn params_from_iter<'a, T: Param + 'a>(
    values: impl IntoIterator<Item = &'a T>,
) -> ParamsFromIter<'a> {
    ParamsFromIter(values.into_iter().map(|v| v as &dyn Param).collect())
}

/// The values of a statement's placeholders, in order: `params![a, b, c]`.
#[macro_export]
#[doc(hidden)]
macro_rules! __store_params {
    () => {
        [] as [&dyn $crate::store::db::Param; 0]
    };
    ($($value:expr),+ $(,)?) => {
        [$(&$value as &dyn $crate::store::db::Param),+]
    };
}
pub use crate::__store_params as params;

/// A type the store reads from a column.
pub trait FromColumn: Sized {
    /// Reads column `index` of a SQLite row.
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self>;
    /// Converts a PostgreSQL column's value.
    fn from_value(value: Value, index: usize) -> Result<Self>;
}

fn mismatch<T>(index: usize, expected: &'static str, found: &Value) -> Result<T> {
    Err(DbError::Conversion {
        column: index,
        expected,
        found: match found {
            Value::Null => "NULL".to_owned(),
            Value::Integer(n) => format!("integer {n}"),
            Value::Real(x) => format!("real {x}"),
            Value::Text(text) => format!("text {text:?}"),
            Value::Blob(octets) => format!("blob of {} octets", octets.len()),
        }
        .into_boxed_str(),
    })
}

macro_rules! from_column {
    ($t:ty, $expected:literal, $value:ident => $convert:expr) => {
        impl FromColumn for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
                row.get(index).map_err(DbError::from)
            }
            fn from_value($value: Value, index: usize) -> Result<Self> {
                match $convert {
                    Some(converted) => Ok(converted),
                    None => mismatch(index, $expected, &$value),
                }
            }
        }
    };
}

from_column!(i64, "integer", value => match value {
    Value::Integer(n) => Some(n),
    _ => None,
});
from_column!(Option<i64>, "integer or NULL", value => match value {
    Value::Integer(n) => Some(Some(n)),
    Value::Null => Some(None),
    _ => None,
});
from_column!(u32, "32-bit unsigned integer", value => match value {
    Value::Integer(n) => u32::try_from(n).ok(),
    _ => None,
});
from_column!(bool, "boolean", value => match value {
    Value::Integer(n) => Some(n != 0),
    _ => None,
});
from_column!(f64, "real", value => match value {
    #[allow(clippy::cast_precision_loss)]
    Value::Integer(n) => Some(n as f64),
    Value::Real(x) => Some(x),
    _ => None,
});
from_column!(String, "text", value => match &value {
    Value::Text(text) => Some(text.clone()),
    _ => None,
});
from_column!(Option<String>, "text or NULL", value => match &value {
    Value::Text(text) => Some(Some(text.clone())),
    Value::Null => Some(None),
    _ => None,
});
from_column!(Vec<u8>, "blob", value => match &value {
    Value::Blob(octets) => Some(octets.clone()),
    _ => None,
});
from_column!(Option<Vec<u8>>, "blob or NULL", value => match &value {
    Value::Blob(octets) => Some(Some(octets.clone())),
    Value::Null => Some(None),
    _ => None,
});

impl FromColumn for Value {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
        let value: rusqlite::types::Value = row.get(index)?;
        Ok(match value {
            rusqlite::types::Value::Null => Value::Null,
            rusqlite::types::Value::Integer(n) => Value::Integer(n),
            rusqlite::types::Value::Real(x) => Value::Real(x),
            rusqlite::types::Value::Text(text) => Value::Text(text),
            rusqlite::types::Value::Blob(octets) => Value::Blob(octets),
        })
    }
    fn from_value(value: Value, _index: usize) -> Result<Self> {
        Ok(value)
    }
}

/// One row of a result, from either backend.
#[derive(Clone, Copy)]
pub enum Row<'a> {
    /// A PostgreSQL row.
    Postgres(&'a postgres::Row),
    /// A SQLite row.
    Sqlite(&'a rusqlite::Row<'a>),
}

/// A column position (rusqlite's `get` is generic over it; the store uses numbers).
pub trait ColumnIndex {
    /// The 0-based position.
    fn position(self) -> usize;
}

impl ColumnIndex for usize {
    fn position(self) -> usize {
        self
    }
}

impl Row<'_> {
    /// Column `index` as `T`.
    pub fn get<I: ColumnIndex, T: FromColumn>(&self, index: I) -> Result<T> {
        let index = index.position();
        match self {
            Row::Sqlite(row) => T::from_sqlite(row, index),
            Row::Postgres(row) => {
                let value: Value = row.try_get(index)?;
                T::from_value(value, index)
            }
        }
    }
}

impl ToSql for ValueRef<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Integer(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
                Type::BOOL => (n != 0).to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)]
                Type::FLOAT8 => (n as f64).to_sql(ty, out),
                Type::NUMERIC => numeric_to_sql(n, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    n.to_string().as_str().to_sql(&Type::TEXT, out)
                }
                _ => Err(format!("cannot bind an integer to a parameter of type {ty}").into()),
            },
            ValueRef::Real(x) => match *ty {
                Type::FLOAT8 => x.to_sql(ty, out),
                #[allow(clippy::cast_possible_truncation)]
                Type::FLOAT4 => (x as f32).to_sql(ty, out),
                _ => Err(format!("cannot bind a real to a parameter of type {ty}").into()),
            },
            ValueRef::Text(text) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    text.to_sql(&Type::TEXT, out)
                }
                _ => Err(format!("cannot bind text to a parameter of type {ty}").into()),
            },
            ValueRef::Blob(octets) => match *ty {
                Type::BYTEA => octets.to_sql(ty, out),
                _ => Err(format!("cannot bind a blob to a parameter of type {ty}").into()),
            },
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// An integer as a NUMERIC in binary form (base-10000 digits).
fn numeric_to_sql(
    n: i64,
    out: &mut bytes::BytesMut,
) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
    use bytes::BufMut;
    let mut magnitude = n.unsigned_abs();
    let mut digits = Vec::new();
    while magnitude > 0 {
        digits.push(u16::try_from(magnitude % 10_000)?);
        magnitude /= 10_000;
    }
    digits.reverse();
    let count = i16::try_from(digits.len())?;
    out.put_i16(count);
    out.put_i16(count.saturating_sub(1).max(0));
    out.put_u16(if n < 0 { 0x4000 } else { 0 });
    out.put_u16(0);
    for digit in digits {
        out.put_u16(digit);
    }
    Ok(IsNull::No)
}

/// A NUMERIC with no fractional part (a `sum` of integers), as an i64.
fn numeric_from_sql(
    raw: &[u8],
) -> std::result::Result<i64, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> std::result::Result<u16, Box<dyn std::error::Error + Sync + Send>> {
        raw.get(i * 2..i * 2 + 2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .ok_or_else(|| "short NUMERIC".into())
    };
    let count = usize::from(word(0)?);
    let weight = i32::from(i16::from_be_bytes(word(1)?.to_be_bytes()));
    let sign = word(2)?;
    if sign == 0xC000 {
        return Err("NUMERIC NaN".into());
    }
    let mut value: i64 = 0;
    for i in 0..count {
        let position = weight - i32::try_from(i)?;
        if position < 0 {
            if word(4 + i)? != 0 {
                return Err("NUMERIC with a fraction where an integer was expected".into());
            }
            continue;
        }
        let mut digit = i64::from(word(4 + i)?);
        for _ in 0..position {
            digit = digit.checked_mul(10_000).ok_or("NUMERIC out of range")?;
        }
        value = value.checked_add(digit).ok_or("NUMERIC out of range")?;
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::NUMERIC => Value::Integer(numeric_from_sql(raw)?),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            _ => Value::Text(<String as FromSql>::from_sql(&Type::TEXT, raw)?),
        })
    }

    fn from_sql_null(
        _ty: &Type,
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// A PostgreSQL connection with its statement cache.
struct Postgres {
    /// Added to the advisory lock keys: 0, or a hash of the test schema so parallel tests in
    /// their own schemas do not queue on each other's locks.
    lock_salt: i64,
    client: RefCell<postgres::Client>,
    /// Prepared statements by the store's SQL text (before placeholder rewriting).
    statements: RefCell<HashMap<String, postgres::Statement>>,
}

impl Postgres {
    fn prepare(&self, sql: &str, cache: bool) -> Result<postgres::Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.borrow_mut().prepare(&placeholders(sql))?;
        if cache {
            self.statements
                .borrow_mut()
                .insert(sql.to_owned(), statement.clone());
        }
        Ok(statement)
    }
}

enum Backend {
    /// Boxed: the client is ten times a rusqlite connection's size.
    Postgres(Box<Postgres>),
    Sqlite(rusqlite::Connection),
}

/// One connection to the store's database.
pub struct Connection {
    backend: Backend,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Postgres(_) => f.write_str("Connection(PostgreSQL)"),
            Backend::Sqlite(connection) => f.debug_tuple("Connection").field(connection).finish(),
        }
    }
}

impl Connection {
    /// Wraps an open SQLite connection.
    pub fn from_sqlite(connection: rusqlite::Connection) -> Connection {
        Connection {
            backend: Backend::Sqlite(connection),
        }
    }

    /// Connects to PostgreSQL (`host=… user=…` or `postgres://…`, no TLS) and, when `schema` is
    /// given, makes it the connection's search path (creating it if missing).
    pub fn open_postgres(url: &str, schema: Option<&str>) -> Result<Connection> {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        // Warnings and notices (e.g. "relation already exists, skipping") are not errors.
        client.batch_execute("SET client_min_messages = WARNING")?;
        if let Some(schema) = schema {
            let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
            client.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {quoted}; SET search_path TO {quoted}"
            ))?;
        }
        Ok(Connection {
            backend: Backend::Postgres(Box::new(Postgres {
                lock_salt: schema.map_or(0, |schema| {
                    schema.bytes().fold(0i64, |hash, byte| {
                        hash.wrapping_mul(31).wrapping_add(i64::from(byte))
                    })
                }),
                client: RefCell::new(client),
                statements: RefCell::new(HashMap::new()),
            })),
        })
    }

    /// The dialect this connection speaks.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Postgres(_) => Dialect::Postgres,
            Backend::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, WAL checkpoints).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(connection) => Some(connection),
            Backend::Postgres(_) => None,
        }
    }

    /// A statement from the connection's cache (prepared on first use).
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement {
            inner: match &self.backend {
                Backend::Sqlite(connection) => {
                    StatementInner::SqliteCached(connection.prepare_cached(sql)?)
                }
                Backend::Postgres(pg) => StatementInner::Postgres {
                    pg,
                    statement: pg.prepare(sql, true)?,
                },
            },
        })
    }

    /// A statement prepared for this use only (SQL text that varies, e.g. with a filter).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement {
            inner: match &self.backend {
                Backend::Sqlite(connection) => StatementInner::Sqlite(connection.prepare(sql)?),
                Backend::Postgres(pg) => StatementInner::Postgres {
                    pg,
                    statement: pg.prepare(sql, false)?,
                },
            },
        })
    }

    /// Runs one statement, returning the rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Runs a single-row query.
    pub fn query_row<P: Params, T>(
        &self,
        sql: &str,
        params: P,
        read: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, read)
    }

    /// Runs several statements without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(connection) => Ok(connection.execute_batch(sql)?),
            Backend::Postgres(pg) => Ok(pg.client.borrow_mut().batch_execute(sql)?),
        }
    }

    /// Starts the store's write transaction: SQLite `BEGIN IMMEDIATE` (the database's one write
    /// lock), PostgreSQL `BEGIN` and the advisory lock [`WRITE_LOCK_KEY`], held to the end of
    /// the transaction, so writers queue one at a time across every node.
    pub fn write_transaction(&self) -> Result<Transaction<'_>> {
        self.locked_transaction(WRITE_LOCK_KEY)
    }

    /// A transaction for work guarded by row locks alone: PostgreSQL `BEGIN` without the
    /// store's write lock, so it does not queue behind other nodes' writes (its statements lock
    /// the rows they change, e.g. `FOR UPDATE SKIP LOCKED`); SQLite `BEGIN IMMEDIATE`, as every
    /// write, since SQLite has only the one lock.
    pub fn row_lock_transaction(&self) -> Result<Transaction<'_>> {
        match &self.backend {
            Backend::Sqlite(connection) => connection.execute_batch("BEGIN IMMEDIATE")?,
            Backend::Postgres(pg) => pg.client.borrow_mut().batch_execute("BEGIN")?,
        }
        Ok(Transaction {
            connection: self,
            open: true,
        })
    }

    /// Inside a [`Connection::row_lock_transaction`], takes the store's write lock now, to the
    /// end of the transaction: PostgreSQL's advisory lock [`WRITE_LOCK_KEY`]. SQLite's
    /// transaction holds its one lock from the start, so there it does nothing. The work done
    /// before it (inserts that keys alone keep consistent) does not hold up other nodes.
    pub fn take_write_lock(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(pg) => Ok(pg.client.borrow_mut().batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({})",
                WRITE_LOCK_KEY.wrapping_add(pg.lock_salt)
            ))?),
        }
    }

    /// Runs `attempt` inside a savepoint of the open transaction. When it fails, what it did is
    /// undone and the transaction goes on, so the caller can take a slower path (PostgreSQL
    /// would otherwise refuse every later statement of a transaction with a failed one).
    pub fn savepoint<T>(&self, attempt: impl FnOnce() -> Result<T>) -> Result<T> {
        self.execute_batch("SAVEPOINT certmill_attempt")?;
        match attempt() {
            Ok(value) => {
                self.execute_batch("RELEASE certmill_attempt")?;
                Ok(value)
            }
            Err(error) => {
                self.execute_batch("ROLLBACK TO certmill_attempt; RELEASE certmill_attempt")?;
                Err(error)
            }
        }
    }

    /// Inserts rows with multi-row `INSERT … VALUES (…), (…)` statements, returning how many it
    /// inserted. `head` is the statement up to `VALUES`; `values` are the rows' values in
    /// order, `columns` to a row. Groups of [`ROWS_PER_INSERT`] rows share one cached
    /// statement; the rest goes in one statement of its own. One statement per group instead of
    /// one per row is what makes recording a chunk cheap on PostgreSQL, where every statement
    /// is a round trip to the server.
    pub fn insert_rows(&self, head: &str, columns: usize, values: &[&dyn Param]) -> Result<usize> {
        if columns == 0 || !values.len().is_multiple_of(columns) {
            return Err(DbError::ParameterCount {
                expected: if columns == 0 {
                    0
                } else {
                    values.len().next_multiple_of(columns)
                },
                given: values.len(),
            });
        }
        let tuple = format!("({})", vec!["?"; columns].join(", "));
        let statement =
            |rows: usize| format!("{head} VALUES {}", vec![tuple.as_str(); rows].join(", "));
        let mut groups = values.chunks_exact(columns * ROWS_PER_INSERT);
        let mut inserted = 0;
        if groups.len() > 0 {
            let mut insert = self.prepare_cached(&statement(ROWS_PER_INSERT))?;
            for group in groups.by_ref() {
                inserted += insert.execute(group)?;
            }
        }
        let rest = groups.remainder();
        if !rest.is_empty() {
            inserted += self
                .prepare(&statement(rest.len() / columns))?
                .execute(rest)?;
        }
        Ok(inserted)
    }

    /// SQLite `BEGIN IMMEDIATE`; PostgreSQL `BEGIN` and the advisory lock `key` (salted), held
    /// to the end of the transaction.
    fn locked_transaction(&self, key: i64) -> Result<Transaction<'_>> {
        match &self.backend {
            Backend::Sqlite(connection) => connection.execute_batch("BEGIN IMMEDIATE")?,
            Backend::Postgres(pg) => {
                let mut client = pg.client.borrow_mut();
                let begun = client.batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({})",
                    key.wrapping_add(pg.lock_salt)
                ));
                if let Err(error) = begun {
                    // Do not leave the connection inside a transaction that never got its lock.
                    let _ = client.batch_execute("ROLLBACK");
                    return Err(error.into());
                }
            }
        }
        Ok(Transaction {
            connection: self,
            open: true,
        })
    }

    /// PostgreSQL only: a transaction holding the schema creation lock [`SCHEMA_LOCK_KEY`].
    pub fn schema_transaction(&self) -> Result<Transaction<'_>> {
        self.locked_transaction(SCHEMA_LOCK_KEY)
    }
}

/// Idle PostgreSQL connections kept for the next [`PooledConnection::take_idle`] of the same
/// server and schema, at most this many.
const MAX_IDLE: usize = 32;

/// An idle connection unused this long is checked with a round trip before it is handed out
/// (the server may have restarted or closed it meanwhile).
const REVALIDATE_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// Which server and schema an idle connection talks to.
type PoolKey = (String, Option<String>);

struct Idle {
    key: PoolKey,
    connection: Connection,
    since: std::time::Instant,
}

/// The idle PostgreSQL connections of this process.
static IDLE: std::sync::Mutex<Vec<Idle>> = std::sync::Mutex::new(Vec::new());

/// A store's connection. A pooled PostgreSQL connection goes back to the process's idle list
/// when dropped, so the next store opened for the same server and schema skips the connect
/// (a new server process, authentication, settings) and the schema check: a few ms per
/// request. SQLite connections are not pooled (opening the file costs microseconds). Derefs
/// to its [`Connection`].
pub struct PooledConnection {
    connection: Option<Connection>,
    key: Option<PoolKey>,
}

impl PooledConnection {
    /// A connection that closes when dropped.
    pub fn unpooled(connection: Connection) -> PooledConnection {
        PooledConnection {
            connection: Some(connection),
            key: None,
        }
    }

    /// From now on the connection goes back to the idle list when dropped: call it once the
    /// connection is known good for `url` and `schema` (its schema checked).
    pub fn pool_as(&mut self, url: &str, schema: Option<&str>) {
        self.key = Some((url.to_owned(), schema.map(str::to_owned)));
    }

    /// Closes the connection instead of keeping it idle.
    pub fn discard(mut self) {
        self.key = None;
    }

    /// An idle connection to `url` and `schema`, if one is left and still works.
    pub fn take_idle(url: &str, schema: Option<&str>) -> Option<PooledConnection> {
        loop {
            let idle = {
                let mut idle = IDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let at = idle
                    .iter()
                    .rposition(|i| i.key.0 == url && i.key.1.as_deref() == schema)?;
                idle.swap_remove(at)
            };
            let usable = match &idle.connection.backend {
                Backend::Postgres(pg) => {
                    let mut client = pg.client.borrow_mut();
                    !client.is_closed()
                        && (idle.since.elapsed() < REVALIDATE_AFTER
                            || client.is_valid(std::time::Duration::from_secs(5)).is_ok())
                }
                Backend::Sqlite(_) => false,
            };
            if usable {
                return Some(PooledConnection {
                    connection: Some(idle.connection),
                    key: Some(idle.key),
                });
            }
        }
    }
}

impl std::ops::Deref for PooledConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match &self.connection {
            Some(connection) => connection,
            None => unreachable!("a PooledConnection holds its connection until dropped"),
        }
    }
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let (Some(key), Some(connection)) = (self.key.take(), self.connection.take()) else {
            return;
        };
        // Never inside a transaction here: a Transaction borrows the connection and ends it
        // (commit or rollback) when dropped.
        let open = match &connection.backend {
            Backend::Postgres(pg) => !pg.client.borrow().is_closed(),
            Backend::Sqlite(_) => false,
        };
        if !open {
            return;
        }
        let mut idle = IDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() >= MAX_IDLE {
            // The longest idle goes (its server process with it).
            idle.remove(0);
        }
        idle.push(Idle {
            key,
            connection,
            since: std::time::Instant::now(),
        });
    }
}

/// A transaction, rolled back unless committed. Derefs to its connection.
pub struct Transaction<'c> {
    connection: &'c Connection,
    open: bool,
}

impl Transaction<'_> {
    /// Commits.
    pub fn commit(mut self) -> Result<()> {
        // A failed COMMIT (SQLite busy) leaves the transaction open: drop rolls it back, as
        // rusqlite's transaction does.
        let result = self.connection.execute_batch("COMMIT");
        if result.is_ok() {
            self.open = false;
        }
        result
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // SQLite may have rolled back already (some errors end the transaction).
        if let Backend::Sqlite(connection) = &self.connection.backend {
            if connection.is_autocommit() {
                return;
            }
        }
        let _ = self.connection.execute_batch("ROLLBACK");
    }
}

enum StatementInner<'c> {
    Postgres {
        pg: &'c Postgres,
        statement: postgres::Statement,
    },
    Sqlite(rusqlite::Statement<'c>),
    SqliteCached(rusqlite::CachedStatement<'c>),
}

/// A prepared statement.
pub struct Statement<'c> {
    inner: StatementInner<'c>,
}

/// Binds `values` to a SQLite statement.
fn bind(statement: &mut rusqlite::Statement<'_>, values: &[&dyn Param]) -> Result<()> {
    let expected = statement.parameter_count();
    if expected != values.len() {
        return Err(DbError::ParameterCount {
            expected,
            given: values.len(),
        });
    }
    for (index, value) in values.iter().enumerate() {
        statement.raw_bind_parameter(index + 1, value.sqlite()?)?;
    }
    Ok(())
}

/// The PostgreSQL forms of `values`.
fn pg_values<'v>(values: &'v [&dyn Param]) -> Vec<ValueRef<'v>> {
    values.iter().map(|value| value.value()).collect()
}

impl<'c> Statement<'c> {
    fn sqlite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match &mut self.inner {
            StatementInner::Sqlite(statement) => Some(statement),
            StatementInner::SqliteCached(statement) => Some(statement),
            StatementInner::Postgres { .. } => None,
        }
    }

    fn pg_query(&self, values: &[&dyn Param]) -> Result<Vec<postgres::Row>> {
        let StatementInner::Postgres { pg, statement } = &self.inner else {
            unreachable!("called for PostgreSQL statements only")
        };
        let values = pg_values(values);
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        Ok(pg.client.borrow_mut().query(statement, &refs)?)
    }

    /// Runs the statement, returning the rows it changed.
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        params.with(|values| {
            if let Some(statement) = self.sqlite() {
                bind(statement, values)?;
                return Ok(statement.raw_execute()?);
            }
            let StatementInner::Postgres { pg, statement } = &self.inner else {
                unreachable!("not SQLite")
            };
            let values = pg_values(values);
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            let changed = pg.client.borrow_mut().execute(statement, &refs)?;
            Ok(usize::try_from(changed).unwrap_or(usize::MAX))
        })
    }

    /// The first row, read by `read`; [`DbError::QueryReturnedNoRows`] when there is none.
    pub fn query_row<P: Params, T>(
        &mut self,
        params: P,
        read: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        params.with(|values| {
            if let Some(statement) = self.sqlite() {
                bind(statement, values)?;
                let mut rows = statement.raw_query();
                return match rows.next()? {
                    Some(row) => read(&Row::Sqlite(row)),
                    None => Err(DbError::QueryReturnedNoRows),
                };
            }
            let rows = self.pg_query(values)?;
            match rows.first() {
                Some(row) => read(&Row::Postgres(row)),
                None => Err(DbError::QueryReturnedNoRows),
            }
        })
    }

    /// Whether the query returns a row.
    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool> {
        params.with(|values| {
            if let Some(statement) = self.sqlite() {
                bind(statement, values)?;
                let mut rows = statement.raw_query();
                return Ok(rows.next()?.is_some());
            }
            Ok(!self.pg_query(values)?.is_empty())
        })
    }

    /// Every row, each read by `read`.
    pub fn query_map<P: Params, T, F: FnMut(&Row<'_>) -> Result<T>>(
        &mut self,
        params: P,
        read: F,
    ) -> Result<MappedRows<'_, F>> {
        let mut rows = self.query(params)?;
        // Keep the closure with the rows; `MappedRows` calls it per row.
        let inner = std::mem::replace(&mut rows.inner, RowsInner::Done);
        Ok(MappedRows { inner, read })
    }

    /// Every row, read one at a time with [`Rows::next`]. On PostgreSQL the rows are fetched
    /// at once.
    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        params.with(|values| {
            if self.sqlite().is_some() {
                // Borrow again to tie the rows to `self`.
                let statement = match &mut self.inner {
                    StatementInner::Sqlite(statement) => statement,
                    StatementInner::SqliteCached(statement) => &mut **statement,
                    StatementInner::Postgres { .. } => unreachable!("SQLite"),
                };
                bind(statement, values)?;
                return Ok(Rows {
                    inner: RowsInner::Sqlite(statement.raw_query()),
                });
            }
            let rows = self.pg_query(values)?;
            Ok(Rows {
                inner: RowsInner::Postgres(rows.into_iter(), None),
            })
        })
    }
}

enum RowsInner<'s> {
    Done,
    Postgres(std::vec::IntoIter<postgres::Row>, Option<postgres::Row>),
    Sqlite(rusqlite::Rows<'s>),
}

/// The rows of a query, in order.
pub struct Rows<'s> {
    inner: RowsInner<'s>,
}

impl Rows<'_> {
    /// The next row, or `None` after the last.
    // Not `Iterator`: the row borrows the cursor (rusqlite's `Rows::next` has the same shape).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match &mut self.inner {
            RowsInner::Done => Ok(None),
            RowsInner::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            RowsInner::Postgres(rows, current) => {
                *current = rows.next();
                Ok(current.as_ref().map(Row::Postgres))
            }
        }
    }
}

/// The rows of a query, each read by the caller's closure.
pub struct MappedRows<'s, F> {
    inner: RowsInner<'s>,
    read: F,
}

impl<T, F: FnMut(&Row<'_>) -> Result<T>> Iterator for MappedRows<'_, F> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        match &mut self.inner {
            RowsInner::Done => None,
            RowsInner::Sqlite(rows) => match rows.next() {
                Ok(Some(row)) => Some((self.read)(&Row::Sqlite(row))),
                Ok(None) => None,
                Err(error) => Some(Err(error.into())),
            },
            RowsInner::Postgres(rows, _) => {
                rows.next().map(|row| (self.read)(&Row::Postgres(&row)))
            }
        }
    }
}

/// The store's SQL with `?N` and `?` placeholders as PostgreSQL's `$N`.
///
/// A bare `?` takes the number after the largest used so far, as SQLite numbers it. Question
/// marks inside string literals, quoted identifiers and comments are left alone.
pub fn placeholders(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut largest = 0u32;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'?' => {
                out.push_str(&sql[copied..i]);
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                let number = if end > start {
                    sql[start..end].parse::<u32>().unwrap_or(0)
                } else {
                    largest + 1
                };
                largest = largest.max(number);
                out.push('$');
                out.push_str(&number.to_string());
                i = end;
                copied = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers_outside_literals() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?' AND d = ?2 -- ?\n AND e = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2 -- ?\n AND e = $3"
        );
        assert_eq!(placeholders("x = ? AND y = ?"), "x = $1 AND y = $2");
        assert_eq!(placeholders("\"a?\" = ?10"), "\"a?\" = $10");
    }

    /// A connection for these tests: SQLite in memory, or the `CERTMILL_TEST_POSTGRES` server
    /// in a schema of `schema`'s own (dropped first).
    fn connection(schema: &str) -> Connection {
        match crate::store::test_postgres() {
            Some(url) => {
                let connection = Connection::open_postgres(&url, None).expect("connect");
                connection
                    .execute_batch(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .expect("drop schema");
                Connection::open_postgres(&url, Some(schema)).expect("connect")
            }
            None => Connection::from_sqlite(rusqlite::Connection::open_in_memory().expect("open")),
        }
    }

    #[test]
    fn insert_rows_inserts_full_groups_and_the_rest_in_order() {
        let connection = connection("certmill_test_db_insert_rows");
        connection
            .execute_batch("CREATE TABLE t (n BIGINT PRIMARY KEY, name TEXT, blob BYTEA)")
            .expect("create");
        let rows = 2 * ROWS_PER_INSERT + 44;
        let numbers: Vec<i64> = (0..rows as i64).collect();
        let names: Vec<String> = numbers.iter().map(|n| format!("row {n}")).collect();
        let blobs: Vec<Option<Vec<u8>>> = numbers
            .iter()
            .map(|n| (n % 3 != 0).then(|| n.to_be_bytes().to_vec()))
            .collect();
        let mut values: Vec<&dyn Param> = Vec::new();
        for i in 0..rows {
            values.extend([&numbers[i] as &dyn Param, &names[i], &blobs[i]]);
        }
        let inserted = connection
            .insert_rows("INSERT INTO t (n, name, blob)", 3, &values)
            .expect("insert");
        assert_eq!(inserted, rows);
        let read: Vec<(i64, String, Option<Vec<u8>>)> = connection
            .prepare("SELECT n, name, blob FROM t ORDER BY n")
            .expect("prepare")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("query")
            .collect::<Result<_>>()
            .expect("rows");
        let expected: Vec<(i64, String, Option<Vec<u8>>)> = numbers
            .iter()
            .zip(names.iter().cloned())
            .zip(blobs.iter().cloned())
            .map(|((n, name), blob)| (*n, name, blob))
            .collect();
        assert_eq!(read, expected);
        // Values that do not fill whole rows are refused before anything runs.
        assert!(matches!(
            connection.insert_rows("INSERT INTO t (n, name, blob)", 3, &values[..4]),
            Err(DbError::ParameterCount {
                expected: 6,
                given: 4
            })
        ));
    }

    #[test]
    fn a_failed_savepoint_undoes_only_its_own_work() {
        let connection = connection("certmill_test_db_savepoint");
        connection
            .execute_batch("CREATE TABLE t (n BIGINT PRIMARY KEY)")
            .expect("create");
        let tx = connection.write_transaction().expect("begin");
        tx.execute("INSERT INTO t (n) VALUES (?1)", [1i64])
            .expect("before");
        // The second row of the attempt collides: the attempt's first row goes too.
        let attempt = tx.savepoint(|| {
            tx.execute("INSERT INTO t (n) VALUES (?1)", [2i64])?;
            tx.execute("INSERT INTO t (n) VALUES (?1)", [1i64])
        });
        assert_eq!(
            attempt.expect_err("duplicate key").violation(),
            Some(Violation::Unique)
        );
        // The transaction goes on (PostgreSQL would refuse it without the savepoint).
        tx.execute("INSERT INTO t (n) VALUES (?1)", [3i64])
            .expect("after");
        tx.commit().expect("commit");
        let read: Vec<i64> = connection
            .prepare("SELECT n FROM t ORDER BY n")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_>>()
            .expect("rows");
        assert_eq!(read, [1, 3]);
    }

    #[test]
    fn numeric_integers_round_trip() {
        for n in [
            0i64,
            1,
            -1,
            9_999,
            10_000,
            123_456_789,
            -98_765_432_100,
            i64::MAX / 3,
        ] {
            let mut out = bytes::BytesMut::new();
            numeric_to_sql(n, &mut out).expect("encode");
            assert_eq!(numeric_from_sql(&out).expect("decode"), n, "{n}");
        }
    }
}
