//! `filter=` expressions of list endpoints: the OData 4.0 subset seed 002 describes, compiled
//! into a parameterised SQL condition.
//!
//! ```text
//! username eq 'user@example.com' and (createdAt gt '2020-09-21T14:19:09' or not active eq true)
//! name in ['a', 'b']      2020 in createdAt      contains(name, 'line')
//! ```
//!
//! Comparisons `eq ne gt ge lt le` (and `neq`, which the seed's own example spells), `in` with a
//! list, the seed's special `<literal> in <property>` (the property's text contains the
//! literal), the functions `contains`, `startswith` and `endswith`, `and`, `or`, `not` and
//! parentheses. Literals: 'strings' (`''` is a quote), integers, decimals, RFC 3339 timestamps
//! (quoted or bare; without an offset they are UTC), `true`, `false`, `null` (equal to itself
//! only, never greater or less than anything).
//!
//! Each endpoint names the properties it filters on and the column behind each ([`Field`]); the
//! SQL this module writes contains only those column names, operators and `?` placeholders.
//! Every value the caller wrote is a bound parameter, so a filter cannot change the statement.
//! An error names the character position (1-based) where the filter is wrong.

#[cfg(test)]
mod tests;

use rusqlite::types::Value;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 32;
/// Most comparisons and function calls in one filter.
pub const MAX_TERMS: usize = 64;
/// Most literals in one `in [...]` list.
pub const MAX_LIST: usize = 100;

/// What a property holds, which decides the literals it compares with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// Text, compared as strings (case-sensitive).
    Text,
    /// A whole number.
    Integer,
    /// A time stored as unix seconds, compared with RFC 3339 literals.
    Timestamp,
    /// `true` or `false`, stored as 1 or 0.
    Boolean,
}

/// A property a list endpoint filters on.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The API's name (`username`, `createdAt`).
    pub name: &'static str,
    /// The SQL column expression behind it (never user input).
    pub column: &'static str,
    /// What it holds.
    pub kind: FieldType,
}

impl Field {
    /// The property `name` over the SQL `column`, holding `kind`.
    pub const fn new(name: &'static str, column: &'static str, kind: FieldType) -> Field {
        Field { name, column, kind }
    }
}

/// A compiled filter: a condition for a `WHERE` clause and its parameters, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct SqlFilter {
    /// The condition, with `?` placeholders.
    pub sql: String,
    /// The values of the placeholders, in order.
    pub values: Vec<Value>,
}

impl SqlFilter {
    /// The filter that keeps every row (an empty `filter=`).
    pub fn all() -> SqlFilter {
        SqlFilter {
            sql: "1".to_owned(),
            values: Vec::new(),
        }
    }
}

/// Why a filter was refused: where (a 1-based character position) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("filter: position {position}: {message}")]
pub struct FilterError {
    /// 1-based character position of the offending token.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(String),
    /// A bare RFC 3339 timestamp.
    Time(String),
    Open,
    Close,
    OpenList,
    CloseList,
    Comma,
    End,
}

/// A token and the 1-based character position it starts at.
#[derive(Clone, Debug)]
struct Spanned {
    token: Token,
    position: usize,
}

fn error(position: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        position,
        message: message.into(),
    }
}

fn tokenize(input: &str) -> Result<Vec<Spanned>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let token = match c {
            '(' => Token::Open,
            ')' => Token::Close,
            '[' => Token::OpenList,
            ']' => Token::CloseList,
            ',' => Token::Comma,
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(error(position, "string literal without its closing quote"))
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => break,
                        Some(&other) if other.is_control() => {
                            return Err(error(i + 1, "control character in a string literal"))
                        }
                        Some(&other) => {
                            text.push(other);
                            i += 1;
                        }
                    }
                }
                Token::Str(text)
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || ".:-+".contains(chars[i]))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let token = if text.contains('T') || text.contains(':') {
                    Token::Time(text)
                } else {
                    Token::Number(text)
                };
                tokens.push(Spanned { token, position });
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_/".contains(chars[i]))
                {
                    i += 1;
                }
                tokens.push(Spanned {
                    token: Token::Ident(chars[start..i].iter().collect()),
                    position,
                });
                continue;
            }
            other => return Err(error(position, format!("unexpected character {other:?}"))),
        };
        tokens.push(Spanned { token, position });
        i += 1;
    }
    tokens.push(Spanned {
        token: Token::End,
        position: chars.len() + 1,
    });
    Ok(tokens)
}

/// A literal as written.
#[derive(Clone, Debug)]
enum Literal {
    Str(String),
    Number(String),
    Time(String),
    Bool(bool),
    Null,
}

impl Literal {
    fn describe(&self) -> &'static str {
        match self {
            Literal::Str(_) => "a string",
            Literal::Number(_) => "a number",
            Literal::Time(_) => "a timestamp",
            Literal::Bool(_) => "a boolean",
            Literal::Null => "null",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Comparison {
    fn parse(word: &str) -> Option<Comparison> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Comparison::Eq,
            "ne" | "neq" => Comparison::Ne,
            "gt" => Comparison::Gt,
            "ge" => Comparison::Ge,
            "lt" => Comparison::Lt,
            "le" => Comparison::Le,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            Comparison::Eq => "=",
            Comparison::Ne => "<>",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
        }
    }
}

struct Parser<'a> {
    tokens: Vec<Spanned>,
    next: usize,
    fields: &'a [Field],
    sql: String,
    values: Vec<Value>,
    terms: usize,
}

fn keyword(token: &Token, word: &str) -> bool {
    matches!(token, Token::Ident(w) if w.eq_ignore_ascii_case(word))
}

impl Parser<'_> {
    fn peek(&self) -> &Spanned {
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Spanned {
        let token = self.peek().clone();
        if self.next < self.tokens.len() - 1 {
            self.next += 1;
        }
        token
    }

    fn expect(&mut self, wanted: &Token, what: &str) -> Result<(), FilterError> {
        let got = self.bump();
        if got.token == *wanted {
            Ok(())
        } else {
            Err(error(got.position, format!("expected {what}")))
        }
    }

    fn expression(&mut self, depth: usize) -> Result<(), FilterError> {
        self.conjunction(depth)?;
        while keyword(&self.peek().token, "or") {
            self.bump();
            self.sql.push_str(" OR ");
            self.conjunction(depth)?;
        }
        Ok(())
    }

    fn conjunction(&mut self, depth: usize) -> Result<(), FilterError> {
        self.unary(depth)?;
        while keyword(&self.peek().token, "and") {
            self.bump();
            self.sql.push_str(" AND ");
            self.unary(depth)?;
        }
        Ok(())
    }

    fn unary(&mut self, depth: usize) -> Result<(), FilterError> {
        let at = self.peek().position;
        if depth >= MAX_DEPTH {
            return Err(error(at, format!("nested more than {MAX_DEPTH} deep")));
        }
        if keyword(&self.peek().token, "not") {
            self.bump();
            self.sql.push_str("NOT ");
            return self.unary(depth + 1);
        }
        if self.peek().token == Token::Open {
            self.bump();
            self.sql.push('(');
            self.expression(depth + 1)?;
            self.expect(&Token::Close, "')'")?;
            self.sql.push(')');
            return Ok(());
        }
        self.term()
    }

    fn field(&self, name: &str, position: usize) -> Result<Field, FilterError> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .copied()
            .ok_or_else(|| {
                let known: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
                error(
                    position,
                    format!("unknown property {name:?} (one of {})", known.join(", ")),
                )
            })
    }

    fn literal(&mut self) -> Result<(Literal, usize), FilterError> {
        let got = self.bump();
        let literal = match got.token {
            Token::Str(s) => Literal::Str(s),
            Token::Number(n) => Literal::Number(n),
            Token::Time(t) => Literal::Time(t),
            Token::Ident(w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Token::Ident(w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Token::Ident(w) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => {
                return Err(error(
                    got.position,
                    "expected a literal: 'string', number, timestamp, true, false or null",
                ))
            }
        };
        Ok((literal, got.position))
    }

    fn term(&mut self) -> Result<(), FilterError> {
        self.terms += 1;
        let start = self.peek().position;
        if self.terms > MAX_TERMS {
            return Err(error(start, format!("more than {MAX_TERMS} conditions")));
        }
        let first = self.peek().clone();
        match &first.token {
            Token::Ident(word)
                if ["contains", "startswith", "endswith"]
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(word))
                    && self.tokens.get(self.next + 1).map(|t| &t.token) == Some(&Token::Open) =>
            {
                let function = word.to_ascii_lowercase();
                self.bump();
                self.bump();
                let name = self.bump();
                let Token::Ident(name_text) = &name.token else {
                    return Err(error(name.position, "expected a property name"));
                };
                let field = self.field(name_text, name.position)?;
                self.expect(&Token::Comma, "','")?;
                let (literal, at) = self.literal()?;
                self.expect(&Token::Close, "')'")?;
                let Literal::Str(needle) = literal else {
                    return Err(error(
                        at,
                        format!("{function} takes a string, not {}", literal.describe()),
                    ));
                };
                if field.kind != FieldType::Text {
                    return Err(error(
                        name.position,
                        format!(
                            "{function} applies to text properties; {} is not one",
                            field.name
                        ),
                    ));
                }
                self.function(&function, field, needle);
                Ok(())
            }
            Token::Ident(word)
                if !["true", "false", "null"]
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(word)) =>
            {
                let name = word.clone();
                self.bump();
                let field = self.field(&name, first.position)?;
                let operator = self.bump();
                if keyword(&operator.token, "in") {
                    return self.in_list(field);
                }
                let comparison = match &operator.token {
                    Token::Ident(w) => Comparison::parse(w),
                    _ => None,
                }
                .ok_or_else(|| {
                    error(
                        operator.position,
                        "expected an operator: eq, ne, gt, ge, lt, le or in",
                    )
                })?;
                let (literal, at) = self.literal()?;
                self.comparison(field, comparison, literal, at)
            }
            _ => {
                // `<literal> in <property>`: the property's text contains the literal.
                let (literal, at) = self.literal()?;
                let operator = self.bump();
                if !keyword(&operator.token, "in") {
                    return Err(error(
                        operator.position,
                        "a literal on the left takes 'in' and a property",
                    ));
                }
                let name = self.bump();
                let Token::Ident(name_text) = &name.token else {
                    return Err(error(name.position, "expected a property name"));
                };
                let field = self.field(name_text, name.position)?;
                let needle = match literal {
                    Literal::Str(s) | Literal::Number(s) | Literal::Time(s) => s,
                    other => {
                        return Err(error(
                            at,
                            format!("{} cannot be contained in a property", other.describe()),
                        ))
                    }
                };
                let text = match field.kind {
                    FieldType::Timestamp => format!(
                        "strftime('%Y-%m-%dT%H:%M:%SZ', {}, 'unixepoch')",
                        field.column
                    ),
                    FieldType::Integer | FieldType::Boolean => {
                        format!("CAST({} AS TEXT)", field.column)
                    }
                    FieldType::Text => field.column.to_owned(),
                };
                self.sql.push_str(&format!("instr({text}, ?) > 0"));
                self.values.push(Value::Text(needle));
                Ok(())
            }
        }
    }

    fn function(&mut self, function: &str, field: Field, needle: String) {
        let column = field.column;
        if needle.is_empty() {
            // Every string contains, starts and ends with the empty string.
            self.sql.push_str(&format!("({column} IS NOT NULL)"));
            return;
        }
        match function {
            "contains" => {
                self.sql.push_str(&format!("instr({column}, ?) > 0"));
                self.values.push(Value::Text(needle));
            }
            "startswith" => {
                self.sql
                    .push_str(&format!("substr({column}, 1, length(?)) = ?"));
                self.values.push(Value::Text(needle.clone()));
                self.values.push(Value::Text(needle));
            }
            _ => {
                // Not `substr(x, -n)`: PostgreSQL counts a negative start from the left. A
                // needle longer than the text gives a start below 1 and a shorter substring on
                // both, so no match.
                self.sql.push_str(&format!(
                    "substr({column}, length({column}) - length(?) + 1) = ?"
                ));
                self.values.push(Value::Text(needle.clone()));
                self.values.push(Value::Text(needle));
            }
        }
    }

    fn in_list(&mut self, field: Field) -> Result<(), FilterError> {
        self.expect(&Token::OpenList, "'[' and a list of literals")?;
        let mut values = Vec::new();
        loop {
            let (literal, at) = self.literal()?;
            if values.len() == MAX_LIST {
                return Err(error(
                    at,
                    format!("more than {MAX_LIST} values in one list"),
                ));
            }
            match literal {
                // Null equals nothing in a list; it only matches through `eq null`.
                Literal::Null => {}
                other => values.push(value_for(field, other, at)?),
            }
            let separator = self.bump();
            match separator.token {
                Token::Comma => continue,
                Token::CloseList => break,
                _ => return Err(error(separator.position, "expected ',' or ']'")),
            }
        }
        if values.is_empty() {
            self.sql.push('0');
            return Ok(());
        }
        let placeholders = vec!["?"; values.len()].join(", ");
        self.sql
            .push_str(&format!("{} IN ({placeholders})", field.column));
        self.values.extend(values);
        Ok(())
    }

    fn comparison(
        &mut self,
        field: Field,
        comparison: Comparison,
        literal: Literal,
        at: usize,
    ) -> Result<(), FilterError> {
        let column = field.column;
        if let Literal::Null = literal {
            // Null equals itself only and is neither greater nor less than anything.
            match comparison {
                Comparison::Eq => self.sql.push_str(&format!("{column} IS NULL")),
                Comparison::Ne => self.sql.push_str(&format!("{column} IS NOT NULL")),
                _ => self.sql.push('0'),
            }
            return Ok(());
        }
        let value = value_for(field, literal, at)?;
        self.sql
            .push_str(&format!("{column} {} ?", comparison.sql()));
        self.values.push(value);
        Ok(())
    }
}

/// The bound value of `literal` for `field`, or why they do not compare.
fn value_for(field: Field, literal: Literal, at: usize) -> Result<Value, FilterError> {
    let mismatch = |literal: &Literal| {
        error(
            at,
            format!(
                "{} is {}, not {}",
                field.name,
                match field.kind {
                    FieldType::Text => "text",
                    FieldType::Integer => "a whole number",
                    FieldType::Timestamp => "a timestamp",
                    FieldType::Boolean => "true or false",
                },
                literal.describe()
            ),
        )
    };
    match (field.kind, literal) {
        (FieldType::Text, Literal::Str(s)) => Ok(Value::Text(s)),
        (FieldType::Integer, Literal::Number(n)) => n
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| error(at, format!("{n:?} is not a whole number of 64 bits"))),
        (FieldType::Boolean, Literal::Bool(b)) => Ok(Value::Integer(i64::from(b))),
        (FieldType::Timestamp, Literal::Str(t) | Literal::Time(t)) => timestamp(&t)
            .map(|seconds| {
                if seconds.fract() == 0.0 {
                    // Whole seconds compare as integers, exactly.
                    Value::Integer(seconds as i64)
                } else {
                    Value::Real(seconds)
                }
            })
            .ok_or_else(|| {
                error(
                    at,
                    format!("{t:?} is not an RFC 3339 timestamp such as 2020-09-21T14:19:09Z"),
                )
            }),
        (_, other) => Err(mismatch(&other)),
    }
}

/// Unix seconds of an RFC 3339 timestamp; without an offset it is UTC (the seed's examples
/// omit it).
fn timestamp(text: &str) -> Option<f64> {
    use time::format_description::well_known::Rfc3339;
    let parsed = time::OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
        .ok()?;
    let nanos = parsed.unix_timestamp_nanos();
    Some(nanos as f64 / 1e9)
}

/// Compiles `filter` for a list whose filterable properties are `fields`. An empty or blank
/// filter is no condition (`1`).
pub fn compile(filter: &str, fields: &[Field]) -> Result<SqlFilter, FilterError> {
    if filter.len() > MAX_FILTER_LEN {
        return Err(error(
            MAX_FILTER_LEN + 1,
            format!("longer than {MAX_FILTER_LEN} bytes"),
        ));
    }
    if filter.trim().is_empty() {
        return Ok(SqlFilter::all());
    }
    let mut parser = Parser {
        tokens: tokenize(filter)?,
        next: 0,
        fields,
        sql: String::new(),
        values: Vec::new(),
        terms: 0,
    };
    parser.sql.push('(');
    parser.expression(0)?;
    parser.sql.push(')');
    let rest = parser.peek().clone();
    if rest.token != Token::End {
        return Err(error(
            rest.position,
            "expected 'and', 'or' or the end of the filter",
        ));
    }
    Ok(SqlFilter {
        sql: parser.sql,
        values: parser.values,
    })
}
