//! The profile language (seed 001's `rawProfileConfig`) and its compiler.
//!
//! A profile says what a certificate looks like and where each value comes from. [`Profile::
//! from_json`] parses it into [`raw::RawProfile`] (unknown keys and wrong types are errors with
//! their JSON path) and compiles it into a [`Profile`]: every name resolved, every syntax turned
//! into a [`Rule`], every contradiction refused with its path. The profile knows nothing about
//! the issuing CA; `template` binds a profile to a CA and pre-encodes the DER. This module does
//! no cryptography and no I/O beyond reading the profile file.

mod compile;
mod limits;
mod names;
pub mod raw;
mod syntax;

pub use compile::CompileOptions;
pub use limits::{DEFAULT_MAX_PROFILE_BYTES, DEFAULT_MAX_PROFILE_DEPTH};
pub use names::{
    is_printable_string, AttributeType, DirectoryString, CERTMILL_ARC, OTHER_NAME_ALIASES,
};
pub use syntax::Rule;

use crate::keys::{KeyAlgorithm, SignatureAlgorithm};
use serde::Serialize;
use serde_path_to_error::Segment;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Errors of loading and compiling a profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The profile parsed but breaks one or more rules.
    #[error("{}", Problems(.0))]
    Invalid(Vec<Problem>),
    /// The file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The JSON is malformed (or not UTF-8), has an unknown key, lacks a required one or has a
    /// value of the wrong type.
    #[error("profile JSON at {path} (line {line}, column {column}): {message}")]
    Json {
        /// JSON path of the offending value (`/Extensions/KeyUsage/bits/0`); for a missing
        /// key, the path the key would have; `/` for text outside any value.
        path: String,
        /// Line of the error.
        line: usize,
        /// Column of the error (bytes from the start of the line, from 1).
        column: usize,
        /// What serde said, without its own position suffix.
        message: String,
    },
    /// Objects and arrays nest deeper than [`CompileOptions::max_depth`].
    #[error("profile nesting deeper than {limit} at {path} (line {line}, column {column})")]
    TooDeep {
        /// JSON path of the value that opens the level past the limit.
        path: String,
        /// Line of its opening bracket.
        line: usize,
        /// Column of its opening bracket.
        column: usize,
        /// The limit.
        limit: usize,
    },
    /// The text is longer than [`CompileOptions::max_bytes`]; nothing of it was parsed.
    #[error("profile is {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// Size of the text or file (for a file, as the file system reports it).
        bytes: u64,
        /// The limit.
        limit: usize,
    },
}

/// One compile error: where and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path (`/Subject/attributes/5/syntax`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "profile has {} error(s):", self.0.len())?;
        for p in self.0 {
            write!(f, "\n  {}: {}", p.path, p.message)?;
        }
        Ok(())
    }
}

/// Where a value comes from (seed 001 `source` strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A batch parameter (`Batch.<name>`).
    Batch(String),
    /// A value taken from the device's CSR (`CSR.<path>`).
    Csr(String),
    /// The field's `default`.
    Default,
    /// Something of the issuing CA certificate (`IssuerCertificate.<what>`).
    IssuerCertificate(String),
    /// A server-generated key pair (`KeypairQueue.der_spki`).
    KeypairQueue,
    /// A profile-level value (`Profile.<name>`).
    Profile(String),
    /// A per-device value (`Request.<name>`): a CSV column, a generator value.
    Request(String),
    /// The clock (`System.Clock`).
    SystemClock,
}

impl Source {
    /// Parses a source string.
    pub fn parse(text: &str) -> Option<Source> {
        let named = |prefix: &str| {
            text.strip_prefix(prefix)
                .filter(|n| {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
                .map(str::to_owned)
        };
        match text {
            "Default" => return Some(Source::Default),
            "KeypairQueue.der_spki" => return Some(Source::KeypairQueue),
            "System.Clock" => return Some(Source::SystemClock),
            _ => {}
        }
        if let Some(n) = named("Request.") {
            return Some(Source::Request(n));
        }
        if let Some(n) = named("Batch.") {
            return Some(Source::Batch(n));
        }
        if let Some(n) = named("Profile.") {
            return Some(Source::Profile(n));
        }
        if let Some(rest) = text.strip_prefix("CSR.").filter(|r| !r.is_empty()) {
            return Some(Source::Csr(rest.to_owned()));
        }
        if let Some(rest) = text
            .strip_prefix("IssuerCertificate.")
            .filter(|r| !r.is_empty())
        {
            return Some(Source::IssuerCertificate(rest.to_owned()));
        }
        None
    }
}

/// A value-bearing field of the profile, compiled.
#[derive(Clone, Debug)]
pub struct Field {
    pub(crate) path: String,
    pub(crate) label: String,
    pub(crate) input_type: String,
    pub(crate) sources: Vec<Source>,
    pub(crate) default: Option<String>,
    pub(crate) optional: bool,
    pub(crate) rule: Option<Rule>,
    pub(crate) description: Option<String>,
}

impl Field {
    /// JSON path of the field in the profile (`/Subject/attributes/5`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Human label (`commonName`, `validityPeriod`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether the field may stay empty.
    pub fn is_optional(&self) -> bool {
        self.optional
    }

    /// Sources in order.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Resolves the value from the inputs: the first source in the list that yields a
    /// non-empty value wins. `Ok(None)` when an optional field has no value.
    pub fn resolve(&self, inputs: &Inputs<'_>) -> Result<Option<String>, ValueError> {
        for source in &self.sources {
            let found = match source {
                Source::Default => self.default.clone(),
                Source::Request(name) => inputs
                    .request
                    .and_then(|r| r.lookup(name))
                    .map(str::to_owned),
                Source::Batch(name) => inputs.batch.get(name).cloned(),
                Source::Profile(name) => inputs.profile.get(name).cloned(),
                Source::Csr(path) => inputs.csr.and_then(|c| c.lookup(path)).map(str::to_owned),
                Source::KeypairQueue | Source::SystemClock | Source::IssuerCertificate(_) => None,
            };
            if let Some(value) = found.filter(|v| !v.is_empty()) {
                let refusal = match &self.rule {
                    Some(rule) => (!rule.accepts(&value)).then(|| rule.message().to_owned()),
                    // Without a syntax, the caller's text must not look like a spreadsheet
                    // formula: certmill escapes what it writes, but a value also travels on in
                    // the certificate to other tools' exports.
                    None if matches!(source, Source::Request(_) | Source::Batch(_)) => {
                        formula_start(&value).map(|c| {
                            format!(
                                "starts with {c:?} as a spreadsheet formula does; a field \
                                 without a syntax refuses such values (give the field a \
                                 syntax in the profile that allows them)"
                            )
                        })
                    }
                    None => None,
                };
                if let Some(message) = refusal {
                    return Err(ValueError::Refused {
                        field: self.label.clone(),
                        origin: describe_source(source),
                        value,
                        message,
                    });
                }
                return Ok(Some(value));
            }
        }
        if self.optional {
            Ok(None)
        } else {
            Err(ValueError::Missing {
                field: self.label.clone(),
                sources: self.source_list(),
            })
        }
    }

    fn source_list(&self) -> String {
        self.sources
            .iter()
            .map(describe_source)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The first character of `value` if it is one that starts a formula in spreadsheets
/// (`=`, `+`, `-`, `@`, tab, carriage return; OWASP's CSV injection list).
pub fn formula_start(value: &str) -> Option<char> {
    value
        .chars()
        .next()
        .filter(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'))
}

fn describe_source(source: &Source) -> String {
    match source {
        Source::Batch(n) => format!("batch parameter `{n}`"),
        Source::Csr(p) => format!("CSR {p}"),
        Source::Default => "the profile default".into(),
        Source::IssuerCertificate(w) => format!("issuer certificate {w}"),
        Source::KeypairQueue => "server-generated key".into(),
        Source::Profile(n) => format!("profile value `{n}`"),
        Source::Request(n) => format!("column `{n}`"),
        Source::SystemClock => "the clock".into(),
    }
}

/// A value refused or missing while resolving a device's fields. The caller adds the row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Every subject attribute came out empty and the certificate has no critical
    /// subjectAltName, which RFC 5280 4.1.2.6 requires of a certificate with an empty subject.
    #[error(
        "subject: every attribute is empty and the certificate {} (RFC 5280 4.1.2.6 allows an \
         empty subject only with a critical subjectAltName)",
        san_wording(.san_present)
    )]
    EmptySubject {
        /// Whether a (non-critical) subjectAltName would be present.
        san_present: bool,
    },
    /// A required field found no value in any of its sources.
    #[error("{field}: no value (looked in {sources})")]
    Missing {
        /// Field label.
        field: String,
        /// Sources tried.
        sources: String,
    },
    /// A value broke the field's syntax rule.
    #[error("{field}: value {value:?} from {origin} refused: {message}")]
    Refused {
        /// Field label.
        field: String,
        /// Where the value came from.
        origin: String,
        /// The value.
        value: String,
        /// The rule's message.
        message: String,
    },
    /// A value does not fit the attribute's encoding or length bound.
    #[error("{field}: value {value:?} {reason}")]
    Unencodable {
        /// Field label.
        field: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
}

fn san_wording(san_present: &bool) -> &'static str {
    if *san_present {
        "has only a non-critical subjectAltName"
    } else {
        "has no subjectAltName"
    }
}

/// Named per-device values (a CSV row, a generated sequence value, a CSR).
pub trait Lookup {
    /// The value of `name`, if present.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Everything a field can resolve from.
pub struct Inputs<'a> {
    /// Per-device request values.
    pub request: Option<&'a dyn Lookup>,
    /// Batch parameters.
    pub batch: &'a BTreeMap<String, String>,
    /// Profile-level values.
    pub profile: &'a BTreeMap<String, String>,
    /// Values from the device's CSR.
    pub csr: Option<&'a dyn Lookup>,
}

/// A DN attribute of the subject.
#[derive(Clone, Debug)]
pub struct SubjectAttribute {
    pub(crate) attribute: &'static AttributeType,
    pub(crate) field: Field,
}

/// What kind of general name a SAN entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeneralNameKind {
    /// `dNSName`.
    DnsName,
    /// `iPAddress`.
    IpAddress,
    /// `otherName` with the DER of its type-id OID and the text it was named by.
    OtherName {
        /// The OID TLV.
        oid_der: Vec<u8>,
        /// Dotted OID.
        oid: String,
    },
    /// `rfc822Name`.
    Rfc822Name,
    /// `uniformResourceIdentifier`.
    Uri,
}

/// A SAN entry.
#[derive(Clone, Debug)]
pub struct GeneralNameSpec {
    pub(crate) kind: GeneralNameKind,
    pub(crate) field: Field,
}

/// Which certificates a PKCS#12 holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertBag {
    /// The leaf only.
    Leaf,
    /// Leaf and issuing CA.
    LeafIssuer,
    /// Leaf, issuing CA and the rest of the chain up to the root.
    LeafIssuerRoot,
}

impl CertBag {
    /// Parses the profile value.
    pub fn parse(text: &str) -> Option<CertBag> {
        match text {
            "leaf" => Some(CertBag::Leaf),
            "leaf+issuer" => Some(CertBag::LeafIssuer),
            "leaf+issuer+root" => Some(CertBag::LeafIssuerRoot),
            _ => None,
        }
    }
}

/// Key usage bits (RFC 5280 4.2.1.3), as a 9-bit mask, bit 0 = digitalSignature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUsageBits(pub u16);

/// Compiled extensions.
#[derive(Clone, Debug, Default)]
pub struct ExtensionsSpec {
    pub(crate) key_usage: Option<(KeyUsageBits, bool)>,
    pub(crate) extended_key_usage: Option<(Vec<String>, bool)>,
    pub(crate) basic_constraints: Option<bool>,
    pub(crate) subject_key_identifier: Option<bool>,
    pub(crate) authority_key_identifier: Option<bool>,
    pub(crate) ocsp_urls: Vec<String>,
    pub(crate) ca_issuers_urls: Vec<String>,
    pub(crate) crl: Option<CrlSpec>,
    pub(crate) subject_alternative_name: Option<(Vec<GeneralNameSpec>, bool)>,
}

/// CRL distribution points and the CRL schedule kept for the revocation work.
#[derive(Clone, Debug)]
pub struct CrlSpec {
    pub(crate) urls: Vec<String>,
    pub(crate) critical: bool,
    /// How long each CRL is valid.
    pub validity_period: Option<std::time::Duration>,
    /// How often a CRL is issued.
    pub issuance_frequency: Option<std::time::Duration>,
}

/// A compiled profile: checked, with every name resolved. Independent of the issuing CA.
#[derive(Clone, Debug)]
pub struct Profile {
    pub(crate) name: String,
    pub(crate) id: Option<u64>,
    pub(crate) issuer: String,
    pub(crate) serial_length: usize,
    pub(crate) signature_algorithm: SignatureAlgorithm,
    pub(crate) key_algorithm: KeyAlgorithm,
    pub(crate) key_sources: Vec<Source>,
    pub(crate) subject: Vec<SubjectAttribute>,
    pub(crate) validity: Field,
    pub(crate) extensions: ExtensionsSpec,
    pub(crate) cert_bag: Field,
    pub(crate) password: Field,
    pub(crate) values: BTreeMap<String, String>,
    pub(crate) raw_json: String,
}

/// A profile parameter in the shape of seed 001 "Get Profile Parameters".
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProfileParameter {
    /// Parameter name (the `<name>` of `Request.<name>` / `Batch.<name>`).
    pub name: String,
    /// The field type (`validityPeriod`, `commonName`, ...).
    pub input_type: String,
    /// Whether a value is required.
    pub required: bool,
    /// Placeholder (always null).
    pub placeholder: Option<String>,
    /// Regex of valid values.
    pub validation_pattern: Option<String>,
    /// Message when a value is refused.
    pub message: Option<String>,
    /// Default value.
    pub value: Option<String>,
    /// Description.
    pub title: Option<String>,
    /// Where it may be given: REQUEST, BATCH, CSR, CSR_SUBJECT.
    pub scopes: Vec<String>,
    /// Whether it varies per device.
    pub dynamic: bool,
}

/// Whether a CSV column must be present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CsvColumn {
    /// Column name (case-insensitive in files).
    pub name: String,
    /// Required in every file.
    pub required: bool,
    /// Required unless this batch parameter is given.
    pub required_unless_batch_parameter: Option<String>,
}

impl Profile {
    /// Reads and compiles a profile file. A file over [`CompileOptions::max_bytes`] is refused
    /// from its metadata, before any of it is read, and the read itself stops one byte past the
    /// limit (a file that grows, a device file): a huge file costs no memory.
    pub fn from_file(path: &Path, options: &CompileOptions) -> Result<Profile, ProfileError> {
        use std::io::Read as _;
        let io = |source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        limits::check_size(file.metadata().map_err(io)?.len(), options.max_bytes)?;
        let mut bytes = Vec::new();
        file.take((options.max_bytes as u64).saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io)?;
        limits::check_size(bytes.len() as u64, options.max_bytes)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let (line, column) = line_column(bytes, at);
            ProfileError::Json {
                path: "/".into(),
                line,
                column,
                message: "invalid UTF-8 (RFC 8259 section 8.1: JSON text is UTF-8)".into(),
            }
        })?;
        let fallback_name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "profile".into());
        Profile::from_json(&text, &fallback_name, options)
    }

    /// Parses and compiles profile JSON. `fallback_name` names a profile without a
    /// `Profile.name`. The size and nesting limits of `options` are checked first, on the
    /// text, before serde parses it.
    pub fn from_json(
        json: &str,
        fallback_name: &str,
        options: &CompileOptions,
    ) -> Result<Profile, ProfileError> {
        limits::check_size(json.len() as u64, options.max_bytes)?;
        limits::check_depth(json, options.max_depth)?;
        let raw = parse_raw(json)?;
        compile::compile(raw, json, fallback_name, options)
    }

    /// Display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The issuer whose current signer signs this profile's certificates (`Issuer.name`,
    /// [`crate::signers::DEFAULT_ISSUER`] when absent).
    pub fn issuer_name(&self) -> &str {
        &self.issuer
    }

    /// Numeric id, when the profile declares one.
    pub fn id(&self) -> Option<u64> {
        self.id
    }

    /// Subject key algorithm.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key_algorithm
    }

    /// Signature algorithm.
    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.signature_algorithm
    }

    /// Whether the subject key may be server-generated (`KeypairQueue.der_spki`).
    pub fn allows_server_keys(&self) -> bool {
        self.key_sources.contains(&Source::KeypairQueue)
    }

    /// Whether the subject key may come from a CSR (`CSR.SubjectPublicKeyInfo`).
    pub fn allows_csr_keys(&self) -> bool {
        self.key_sources.iter().any(|s| matches!(s, Source::Csr(_)))
    }

    /// The profile JSON as given (the API's `rawProfileConfig`).
    pub fn raw_json(&self) -> &str {
        &self.raw_json
    }

    /// Profile-level values (`Profile.<name>`).
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// The CRL schedule, if the profile has distribution points.
    pub fn crl(&self) -> Option<&CrlSpec> {
        self.extensions.crl.as_ref()
    }

    /// The OCSP responder URLs the profile's certificates name (AuthorityInfoAccess), with
    /// `{baseUrl}` resolved.
    pub fn ocsp_urls(&self) -> &[String] {
        &self.extensions.ocsp_urls
    }

    /// The CRL distribution point URLs the profile's certificates name, with `{baseUrl}`
    /// resolved.
    pub fn crl_urls(&self) -> &[String] {
        self.extensions.crl.as_ref().map_or(&[], |crl| &crl.urls)
    }

    /// Fields in resolution order, with their scope-relevant data.
    fn fields(&self) -> impl Iterator<Item = &Field> {
        self.subject
            .iter()
            .map(|a| &a.field)
            .chain(std::iter::once(&self.validity))
            .chain(
                self.extensions
                    .subject_alternative_name
                    .iter()
                    .flat_map(|(names, _)| names.iter().map(|n| &n.field)),
            )
            .chain([&self.cert_bag, &self.password])
    }

    /// Parameters in the shape of seed 001 "Get Profile Parameters", one per parameter name.
    pub fn parameters(&self) -> Vec<ProfileParameter> {
        let mut out: Vec<ProfileParameter> = Vec::new();
        for field in self.fields() {
            let has_csr = field.sources.iter().any(|s| matches!(s, Source::Csr(_)));
            let has_default = field.sources.contains(&Source::Default) && field.default.is_some();
            for source in &field.sources {
                let (name, scope) = match source {
                    Source::Request(n) => (n, "REQUEST"),
                    Source::Batch(n) => (n, "BATCH"),
                    _ => continue,
                };
                let index = match out.iter().position(|p| &p.name == name) {
                    Some(i) => i,
                    None => {
                        out.push(ProfileParameter {
                            name: name.clone(),
                            input_type: field.input_type.clone(),
                            required: !field.optional && !has_default,
                            placeholder: None,
                            validation_pattern: field.rule.as_ref().map(|r| r.pattern().to_owned()),
                            message: field.rule.as_ref().map(|r| r.message().to_owned()),
                            value: field.default.clone(),
                            title: field.description.clone(),
                            scopes: Vec::new(),
                            dynamic: false,
                        });
                        out.len() - 1
                    }
                };
                let parameter = &mut out[index];
                if !parameter.scopes.iter().any(|s| s == scope) {
                    parameter.scopes.push(scope.to_owned());
                }
                if has_csr && !parameter.scopes.iter().any(|s| s == "CSR") {
                    parameter.scopes.push("CSR".to_owned());
                }
                parameter.dynamic |= scope == "REQUEST";
            }
        }
        out
    }

    /// The CSV columns this profile allows (the `Request.<name>` sources), and which are
    /// required.
    pub fn csv_columns(&self) -> Vec<CsvColumn> {
        let mut out: Vec<CsvColumn> = Vec::new();
        for field in self.fields() {
            let has_default = field.sources.contains(&Source::Default) && field.default.is_some();
            let required_field = !field.optional && !has_default;
            let batch_fallback = field.sources.iter().find_map(|s| match s {
                Source::Batch(n) => Some(n.clone()),
                _ => None,
            });
            let profile_fallback = field
                .sources
                .iter()
                .any(|s| matches!(s, Source::Profile(n) if self.values.contains_key(n)));
            for source in &field.sources {
                let Source::Request(name) = source else {
                    continue;
                };
                if out.iter().any(|c| &c.name == name) {
                    continue;
                }
                let (required, unless) = if !required_field || profile_fallback {
                    (false, None)
                } else if let Some(batch) = &batch_fallback {
                    (false, Some(batch.clone()))
                } else {
                    (true, None)
                };
                out.push(CsvColumn {
                    name: name.clone(),
                    required,
                    required_unless_batch_parameter: unless,
                });
            }
        }
        out
    }

    /// Resolves the validity period in years for one device.
    pub fn resolve_years(&self, inputs: &Inputs<'_>) -> Result<u32, ValueError> {
        let text = self.validity.resolve(inputs)?;
        let text = text
            .or_else(|| self.validity.default.clone())
            .unwrap_or_else(|| "1".into());
        text.parse::<u32>()
            .ok()
            .filter(|y| (1..=100).contains(y))
            .ok_or(ValueError::Unencodable {
                field: self.validity.label.clone(),
                value: text,
                reason: "is not a number of years between 1 and 100".into(),
            })
    }

    /// The validity in years when no device can change it: every source of the period is
    /// the profile's own (`Default`, `Profile.<name>`). `None` when a request, batch or CSR
    /// value can choose it.
    pub fn fixed_years(&self) -> Option<u32> {
        let fixed = self
            .validity
            .sources
            .iter()
            .all(|s| matches!(s, Source::Default | Source::Profile(_)));
        if !fixed {
            return None;
        }
        let empty = BTreeMap::new();
        self.resolve_years(&Inputs {
            request: None,
            batch: &empty,
            profile: &self.values,
            csr: None,
        })
        .ok()
    }

    /// The shortest validity in years any device of this profile can get: the fixed one, the
    /// smallest value an enumerated syntax (`Integer:1,2,3`) allows, or else 1.
    pub fn shortest_years(&self) -> u32 {
        if let Some(years) = self.fixed_years() {
            return years;
        }
        self.validity
            .rule
            .as_ref()
            .and_then(Rule::allowed_values)
            .and_then(|values| {
                values
                    .iter()
                    .filter_map(|v| v.parse::<u32>().ok())
                    .filter(|y| (1..=100).contains(y))
                    .min()
            })
            .unwrap_or(1)
    }

    /// JSON path of the validity period (`/Validity/period`, or `/Validity` when the profile
    /// gives only `Validity.default`).
    pub fn validity_path(&self) -> &str {
        &self.validity.path
    }

    /// Resolves which certificates go in the PKCS#12.
    pub fn resolve_cert_bag(&self, inputs: &Inputs<'_>) -> Result<CertBag, ValueError> {
        let text = self
            .cert_bag
            .resolve(inputs)?
            .unwrap_or_else(|| "leaf+issuer+root".into());
        CertBag::parse(&text).ok_or(ValueError::Unencodable {
            field: self.cert_bag.label.clone(),
            value: text,
            reason: "is not one of leaf, leaf+issuer, leaf+issuer+root".into(),
        })
    }

    /// Names of the batch parameters the profile reads (`Batch.<name>`).
    pub fn batch_parameter_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for field in self.fields() {
            for source in &field.sources {
                if let Source::Batch(n) = source {
                    if !names.contains(n) {
                        names.push(n.clone());
                    }
                }
            }
        }
        names
    }

    /// Whether parameter `name` is read by a field with an enumerated syntax
    /// (`Integer:1,2,3`, `String:a,b`): such values are chosen, never generated.
    pub fn is_enumerated(&self, name: &str) -> bool {
        self.fields().any(|f| {
            f.sources
                .iter()
                .any(|s| matches!(s, Source::Request(n) | Source::Batch(n) if n == name))
                && f.rule
                    .as_ref()
                    .is_some_and(|r| r.allowed_values().is_some())
        })
    }

    /// The batch parameter that carries the PKCS#12 password (`pkcs12Password` in the seed).
    pub fn password_parameter(&self) -> Option<&str> {
        self.password.sources.iter().find_map(|s| match s {
            Source::Batch(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// A human summary of the subject template (`C=GB, ST=..., CN=<macAddress>`), the API's
    /// profile DN.
    pub fn subject_summary(&self) -> String {
        self.subject_template()
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The subject template in profile order: each attribute's short name (`CN`) with its
    /// fixed value, or `<source list>` when the value comes from the request (the API's
    /// "Get Profile Subject DN").
    pub fn subject_template(&self) -> Vec<(String, String)> {
        self.subject
            .iter()
            .map(|a| {
                let value = match a.field.sources.first() {
                    Some(Source::Default) => a.field.default.clone().unwrap_or_default(),
                    _ => format!("<{}>", a.field.source_list()),
                };
                (a.attribute.short.to_string(), value)
            })
            .collect()
    }
}

/// The profiles shipped in `profiles/`, embedded in the binary: (name, JSON).
pub const SHIPPED: &[(&str, &str)] = &[
    ("ecc-device", include_str!("../../profiles/ecc-device.json")),
    ("ecc-server", include_str!("../../profiles/ecc-server.json")),
    ("rsa-device", include_str!("../../profiles/rsa-device.json")),
    ("rsa-server", include_str!("../../profiles/rsa-server.json")),
];

impl Profile {
    /// Loads a profile from a file path, or by the name of a shipped profile when no such
    /// file exists.
    pub fn load(name_or_path: &str, options: &CompileOptions) -> Result<Profile, ProfileError> {
        let path = Path::new(name_or_path);
        if path.exists() {
            return Profile::from_file(path, options);
        }
        let bare = name_or_path.trim_end_matches(".json");
        let bare = bare.rsplit('/').next().unwrap_or(bare);
        match SHIPPED.iter().find(|(name, _)| *name == bare) {
            Some((name, json)) => Profile::from_json(json, name, options),
            None => Err(ProfileError::Io {
                path: name_or_path.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "no such file, and not a shipped profile ({})",
                        SHIPPED
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }),
        }
    }
}

fn parse_raw(json: &str) -> Result<raw::RawProfile, ProfileError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let raw: raw::RawProfile =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let mut path = String::new();
            for segment in e.path() {
                let name = match segment {
                    Segment::Seq { index } => index.to_string(),
                    Segment::Map { key } => limits::escape(key),
                    Segment::Enum { variant } => limits::escape(variant),
                    // A key still being read (a broken string): the path ends at its object.
                    Segment::Unknown => break,
                };
                path.push('/');
                path.push_str(&name);
            }
            json_error(path, &e.into_inner())
        })?;
    deserializer
        .end()
        .map_err(|e| json_error(String::new(), &e))?;
    Ok(raw)
}

/// A serde_json error at `path` (a JSON pointer, empty for the whole text).
fn json_error(mut path: String, error: &serde_json::Error) -> ProfileError {
    let (line, column) = (error.line(), error.column());
    let text = error.to_string();
    // serde_json appends the position, which the variant carries in its own fields.
    let message = text
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&text)
        .to_owned();
    // A missing key is reported at its object; the path it should have is more useful. The
    // wording is serde's own (`de::Error::missing_field`), stable since serde 1.0.
    if let Some(key) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        path.push('/');
        path.push_str(&limits::escape(key));
    }
    if path.is_empty() {
        path.push('/');
    }
    ProfileError::Json {
        path,
        line,
        column,
        message,
    }
}

/// Line and column (from 1, in bytes) of byte offset `at`.
fn line_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |n| n + 1);
    (line, at - line_start + 1)
}

#[cfg(test)]
mod tests;
