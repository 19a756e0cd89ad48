//! Generators: the per-device sequences of "batch serialization" (seed 001 "Get generator
//! parameters", "Create batch", "Batches Preview").
//!
//! A generator turns its parameters (`startValue`, `increment`, ...) and a batch size into a
//! sequence of values, one per device, computed on demand from the index (nothing is held per
//! device). [`device_values`] applies a value to the batch's profile parameters the way the
//! seed's preview shows: prefixed to free-text parameters ("0name"), or in place of a `{seq}`
//! placeholder. Every overflow is refused before the batch starts: a MAC counter never wraps
//! past FF:FF:FF:FF:FF:FF.

use crate::profile::Profile;
use serde::Serialize;
use std::collections::BTreeMap;

/// The placeholder replaced by the sequence value.
pub const PLACEHOLDER: &str = "{seq}";

/// Errors of generator parameters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GeneratorError {
    /// No generator by that id or name.
    #[error("unknown generator {0:?} (known: 0 or decimal, 1 or hex, 2 or mac)")]
    Unknown(String),
    /// A required parameter is missing.
    #[error("generator parameter {0} is required")]
    Missing(&'static str),
    /// A parameter is not one the generator declares.
    #[error("generator {generator} has no parameter {name:?} (it takes {known})")]
    UnknownParameter {
        /// Generator name.
        generator: &'static str,
        /// The parameter.
        name: String,
        /// What it takes.
        known: String,
    },
    /// A parameter broke its validator.
    #[error("generator parameter {name} = {value:?}: {message}")]
    Invalid {
        /// Parameter name.
        name: &'static str,
        /// Value given.
        value: String,
        /// The parameter's message.
        message: &'static str,
    },
    /// The sequence would overflow its range within the batch.
    #[error("{count} devices from {start} in steps of {increment} would pass {limit}: the sequence does not wrap")]
    Overflow {
        /// Batch size.
        count: u64,
        /// First value.
        start: String,
        /// Step.
        increment: u64,
        /// The largest value.
        limit: String,
    },
    /// The batch size is zero.
    #[error("the batch size must be at least 1")]
    EmptyBatch,
}

/// Which sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorKind {
    /// Decimal counter: 0, 1, 2 ...
    Decimal,
    /// Hexadecimal counter of fixed width: 00FF, 0100 ...
    Hex,
    /// MAC address counter: 00:1A:2B:00:00:FF, 00:1A:2B:00:01:00 ...
    Mac,
}

/// A generator parameter in the shape of seed 001 "Get generator parameters".
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorParameter {
    /// Id.
    pub generator_parameter_id: u32,
    /// Name (the key in `generatorParams`).
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// Type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Required.
    pub required: bool,
    /// Regex a value must match.
    pub validator: &'static str,
    /// Message when it does not.
    pub message: &'static str,
    /// Default value.
    pub value: Option<&'static str>,
}

/// A generator in the shape of seed 001 "Get generator parameters".
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorInfo {
    /// Id.
    pub generator_id: u32,
    /// Name.
    pub name: &'static str,
    /// Parameters.
    pub parameters: Vec<GeneratorParameter>,
}

const INCREMENT: GeneratorParameter = GeneratorParameter {
    generator_parameter_id: 2,
    name: "increment",
    label: "Increment",
    kind: "Integer",
    required: false,
    validator: "^[1-9][0-9]{0,8}$",
    message: "Increment: a whole number from 1 to 999999999",
    value: Some("1"),
};

impl GeneratorKind {
    /// Every generator.
    pub const ALL: [GeneratorKind; 3] = [
        GeneratorKind::Decimal,
        GeneratorKind::Hex,
        GeneratorKind::Mac,
    ];

    /// Finds a generator by id ("0") or name ("decimal", "hex", "mac").
    pub fn find(text: &str) -> Result<GeneratorKind, GeneratorError> {
        GeneratorKind::ALL
            .into_iter()
            .find(|g| g.id().to_string() == text || g.short_name().eq_ignore_ascii_case(text))
            .ok_or_else(|| GeneratorError::Unknown(text.to_owned()))
    }

    /// Numeric id.
    pub fn id(self) -> u32 {
        match self {
            GeneratorKind::Decimal => 0,
            GeneratorKind::Hex => 1,
            GeneratorKind::Mac => 2,
        }
    }

    /// Short name for the CLI.
    pub fn short_name(self) -> &'static str {
        match self {
            GeneratorKind::Decimal => "decimal",
            GeneratorKind::Hex => "hex",
            GeneratorKind::Mac => "mac",
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            GeneratorKind::Decimal => "Decimal counter",
            GeneratorKind::Hex => "Hexadecimal counter",
            GeneratorKind::Mac => "MAC address counter",
        }
    }

    /// The declared parameters.
    pub fn parameters(self) -> Vec<GeneratorParameter> {
        match self {
            GeneratorKind::Decimal => vec![
                GeneratorParameter {
                    generator_parameter_id: 1,
                    name: "startValue",
                    label: "Start value",
                    kind: "Integer",
                    required: true,
                    validator: "^[0-9]{1,19}$",
                    message: "Start value: a whole number of up to 19 digits",
                    value: Some("0"),
                },
                INCREMENT,
            ],
            GeneratorKind::Hex => vec![
                GeneratorParameter {
                    generator_parameter_id: 1,
                    name: "startValue",
                    label: "Start value",
                    kind: "Hex",
                    required: true,
                    validator: "^[0-9A-Fa-f]{1,16}$",
                    message: "Start value: 1 to 16 hexadecimal digits",
                    value: Some("0"),
                },
                INCREMENT,
                GeneratorParameter {
                    generator_parameter_id: 3,
                    name: "width",
                    label: "Width (digits)",
                    kind: "Integer",
                    required: false,
                    validator: "^([1-9]|1[0-6])$",
                    message: "Width: 1 to 16 digits, zero-padded",
                    value: Some("8"),
                },
            ],
            GeneratorKind::Mac => vec![
                GeneratorParameter {
                    generator_parameter_id: 1,
                    name: "startValue",
                    label: "First MAC address",
                    kind: "MACAddress",
                    required: true,
                    validator: "^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$",
                    message: "First MAC address: six hexadecimal octets separated by ':' or '-'",
                    value: None,
                },
                INCREMENT,
            ],
        }
    }

    /// The seed's "Get generator parameters" entry.
    pub fn info(self) -> GeneratorInfo {
        GeneratorInfo {
            generator_id: self.id(),
            name: self.name(),
            parameters: self.parameters(),
        }
    }
}

/// A validated sequence for a batch of `count` devices.
#[derive(Clone, Debug)]
pub struct Sequence {
    kind: GeneratorKind,
    start: u64,
    increment: u64,
    count: u64,
    width: usize,
    separator: char,
    lower_case: bool,
    /// The parameters as given (validated), for the batch record.
    given: BTreeMap<String, String>,
}

fn parameter(
    kind: GeneratorKind,
    params: &BTreeMap<String, String>,
    name: &'static str,
) -> Result<Option<String>, GeneratorError> {
    let declared = kind.parameters();
    let Some(spec) = declared.iter().find(|p| p.name == name) else {
        return Ok(None);
    };
    let value = params
        .get(name)
        .map(|v| v.trim().to_owned())
        .or_else(|| spec.value.map(str::to_owned));
    let Some(value) = value else {
        return if spec.required {
            Err(GeneratorError::Missing(name))
        } else {
            Ok(None)
        };
    };
    // The validators are constants of this file, tested to compile.
    let valid = regex::Regex::new(spec.validator)
        .map(|r| r.is_match(&value))
        .unwrap_or(false);
    if !valid {
        return Err(GeneratorError::Invalid {
            name,
            value,
            message: spec.message,
        });
    }
    Ok(Some(value))
}

impl Sequence {
    /// Validates `params` for `kind` and checks the whole batch fits the value range.
    pub fn new(
        kind: GeneratorKind,
        params: &BTreeMap<String, String>,
        count: u64,
    ) -> Result<Sequence, GeneratorError> {
        if count == 0 {
            return Err(GeneratorError::EmptyBatch);
        }
        let declared = kind.parameters();
        for name in params.keys() {
            if !declared.iter().any(|p| p.name == name) {
                return Err(GeneratorError::UnknownParameter {
                    generator: kind.name(),
                    name: name.clone(),
                    known: declared
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let start_text =
            parameter(kind, params, "startValue")?.ok_or(GeneratorError::Missing("startValue"))?;
        let increment: u64 = parameter(kind, params, "increment")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut sequence = Sequence {
            kind,
            start: 0,
            increment,
            count,
            width: 0,
            separator: ':',
            lower_case: false,
            given: params.clone(),
        };
        let limit: u64 = match kind {
            GeneratorKind::Decimal => {
                sequence.start = start_text.parse().map_err(|_| GeneratorError::Invalid {
                    name: "startValue",
                    value: start_text.clone(),
                    message: "Start value: a whole number of up to 19 digits",
                })?;
                u64::MAX
            }
            GeneratorKind::Hex => {
                let width: usize = parameter(kind, params, "width")?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(8);
                if start_text.len() > width {
                    return Err(GeneratorError::Invalid {
                        name: "startValue",
                        value: start_text,
                        message: "Start value: more digits than the width",
                    });
                }
                sequence.width = width;
                sequence.lower_case = start_text.bytes().any(|b| b.is_ascii_lowercase());
                // Validated as 1..=16 hex digits above.
                sequence.start = u64::from_str_radix(&start_text, 16).unwrap_or(0);
                if width == 16 {
                    u64::MAX
                } else {
                    (1u64 << (4 * width)) - 1
                }
            }
            GeneratorKind::Mac => {
                sequence.separator = if start_text.contains('-') { '-' } else { ':' };
                sequence.lower_case = start_text.bytes().any(|b| b.is_ascii_lowercase());
                let hex: String = start_text.chars().filter(char::is_ascii_hexdigit).collect();
                sequence.start = u64::from_str_radix(&hex, 16).unwrap_or(0);
                (1u64 << 48) - 1
            }
        };
        let last = (count - 1)
            .checked_mul(increment)
            .and_then(|span| sequence.start.checked_add(span));
        if last.is_none_or(|last| last > limit) {
            return Err(GeneratorError::Overflow {
                count,
                start: sequence.format(sequence.start),
                increment,
                limit: sequence.format(limit),
            });
        }
        Ok(sequence)
    }

    /// The generator's parameters as given, with `generatorId` (the batch record's
    /// `generatorParametersValues`).
    pub fn recorded_parameters(&self) -> BTreeMap<String, String> {
        let mut out = self.given.clone();
        out.insert("generatorId".to_owned(), self.kind.id().to_string());
        out
    }

    /// Number of devices.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the sequence is empty (never: `new` refuses 0).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The generator.
    pub fn kind(&self) -> GeneratorKind {
        self.kind
    }

    /// The value of device `index` (0-based). `index < len()`: checked in `new` not to overflow.
    pub fn value(&self, index: u64) -> String {
        self.format(
            self.start
                .saturating_add(index.saturating_mul(self.increment)),
        )
    }

    fn format(&self, value: u64) -> String {
        match self.kind {
            GeneratorKind::Decimal => value.to_string(),
            GeneratorKind::Hex if self.lower_case => {
                format!("{value:0width$x}", width = self.width)
            }
            GeneratorKind::Hex => format!("{value:0width$X}", width = self.width),
            GeneratorKind::Mac => {
                let bytes = value.to_be_bytes();
                let octets: Vec<String> = bytes[2..]
                    .iter()
                    .map(|b| {
                        if self.lower_case {
                            format!("{b:02x}")
                        } else {
                            format!("{b:02X}")
                        }
                    })
                    .collect();
                octets.join(&self.separator.to_string())
            }
        }
    }
}

/// The per-device request values for sequence value `value`, from the batch's profile
/// parameters (seed "Batches Preview"):
/// - a parameter containing `{seq}` gets the value in place of each placeholder;
/// - a free-text parameter the profile reads per device (`Request.<name>`, no enumerated
///   syntax such as `Integer:1,2,3`) gets the value as a prefix: commonName "name" → "0name";
/// - enumerated parameters (years, deviceClass) and the PKCS#12 password are taken as given;
/// - a required per-device parameter that is not given at all (macAddress for a MAC counter)
///   is the value itself.
pub fn device_values(
    profile: &Profile,
    params: &BTreeMap<String, String>,
    value: &str,
) -> BTreeMap<String, String> {
    let password = profile.password_parameter();
    let columns = profile.csv_columns();
    let mut out = BTreeMap::new();
    for (name, given) in params {
        if Some(name.as_str()) == password {
            continue;
        }
        let per_device = columns.iter().any(|c| &c.name == name);
        let text = if given.contains(PLACEHOLDER) {
            given.replace(PLACEHOLDER, value)
        } else if per_device && !profile.is_enumerated(name) {
            format!("{value}{given}")
        } else {
            given.clone()
        };
        out.insert(name.clone(), text);
    }
    for column in columns {
        let needed = column.required
            || column
                .required_unless_batch_parameter
                .as_ref()
                .is_some_and(|b| !params.contains_key(b));
        if needed && !out.contains_key(&column.name) {
            out.insert(column.name.clone(), value.to_owned());
        }
    }
    out
}

/// The seed's "Batches Preview" response: the values the first device would get, plus
/// `serials` (its sequence value). The PKCS#12 password is never echoed.
pub fn preview(
    profile: &Profile,
    params: &BTreeMap<String, String>,
    sequence: &Sequence,
) -> BTreeMap<String, String> {
    let value = sequence.value(0);
    let mut out = device_values(profile, params, &value);
    out.insert("serials".to_owned(), value);
    out
}

#[cfg(test)]
mod tests;
