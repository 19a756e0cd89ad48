//! `RawProfile` → `Profile`: resolve names, compile syntaxes, refuse contradictions.
//!
//! Every check records a [`Problem`] with the JSON path and carries on, so one run reports
//! all errors of a profile. Policy limits cite the clause they come from.

use super::names::{self, attribute_type};
use super::raw::{OneOrMany, RawField, RawProfile};
use super::{
    CrlSpec, ExtensionsSpec, Field, GeneralNameKind, GeneralNameSpec, KeyUsageBits, Problem,
    Profile, ProfileError, Rule, Source, SubjectAttribute,
};
use crate::keys::{KeyAlgorithm, SignatureAlgorithm};
use std::collections::BTreeMap;
use std::time::Duration;

/// Settings applied while compiling.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Replaces `{baseUrl}` in OCSP, CA issuers and CRL URLs: where certmill serves them.
    pub base_url: String,
    /// Largest profile text accepted, in bytes ([`super::DEFAULT_MAX_PROFILE_BYTES`]).
    pub max_bytes: usize,
    /// Deepest nesting of objects and arrays accepted, the top-level object being 1
    /// ([`super::DEFAULT_MAX_PROFILE_DEPTH`]).
    pub max_depth: usize,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            base_url: "http://127.0.0.1:8080".into(),
            max_bytes: super::DEFAULT_MAX_PROFILE_BYTES,
            max_depth: super::DEFAULT_MAX_PROFILE_DEPTH,
        }
    }
}

/// Key usage bit names in RFC 5280 4.2.1.3 order (bit 0 first).
const KEY_USAGE_BITS: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

struct Compiler {
    problems: Vec<Problem>,
}

impl Compiler {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn sources(&mut self, path: &str, list: Option<&OneOrMany>) -> Vec<Source> {
        let Some(list) = list else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, text) in list.to_vec().iter().enumerate() {
            let item_path = source_path(path, list, i);
            match Source::parse(text) {
                Some(source) => out.push(source),
                None => self.problem(
                    item_path,
                    format!(
                        "unknown source `{text}` (expected Default, Request.<name>, Batch.<name>, \
                         Profile.<name>, CSR.<path>, KeypairQueue.der_spki, System.Clock or \
                         IssuerCertificate.<what>)"
                    ),
                ),
            }
        }
        out
    }

    /// Compiles a value-bearing field. `value_sources_only`: sources that cannot yield a
    /// value for this kind of field are refused.
    fn field(&mut self, path: &str, label: &str, input_type: &str, raw: &RawField) -> Field {
        let mut sources = self.sources(path, raw.source.as_ref());
        if raw.source.is_none() {
            // No source list: the default is the value.
            sources.push(Source::Default);
        }
        for (i, source) in sources.iter().enumerate() {
            if matches!(
                source,
                Source::KeypairQueue | Source::SystemClock | Source::IssuerCertificate(_)
            ) {
                // Unknown sources are dropped from `sources`, so `i` is only the JSON index when
                // all parsed; the path then names the list.
                let all_parsed =
                    raw.source.as_ref().map_or(0, |l| l.to_vec().len()) == sources.len();
                let item_path = match raw.source.as_ref() {
                    Some(list) if all_parsed => source_path(path, list, i),
                    _ => format!("{path}/source"),
                };
                self.problem(
                    item_path,
                    format!("source {source:?} cannot give a value to {label}"),
                );
            }
        }
        let default = raw.default.as_ref().map(|d| d.as_text());
        if sources.contains(&Source::Default) && default.is_none() && raw.source.is_some() {
            self.problem(
                format!("{path}/default"),
                "source `Default` is listed but no `default` value is given",
            );
        }
        if sources.is_empty() && raw.source.is_some() {
            self.problem(format!("{path}/source"), "empty source list");
        }
        let rule = raw
            .syntax
            .as_ref()
            .and_then(|syntax| match Rule::parse(syntax) {
                Ok(rule) => Some(rule),
                Err(reason) => {
                    self.problem(format!("{path}/syntax"), reason);
                    None
                }
            });
        if let (Some(rule), Some(default)) = (&rule, &default) {
            if !rule.accepts(default) {
                self.problem(
                    format!("{path}/default"),
                    format!(
                        "default {default:?} breaks the field's own syntax: {}",
                        rule.message()
                    ),
                );
            }
        }
        Field {
            path: path.to_owned(),
            label: label.to_owned(),
            input_type: raw.kind.clone().unwrap_or_else(|| label.to_owned()),
            sources,
            default,
            optional: raw.optional.unwrap_or(false),
            rule,
            description: raw.description.clone(),
        }
        .with_input_type(input_type)
    }

    fn url(&mut self, path: String, url: &str, options: &super::CompileOptions) -> Option<String> {
        let url = url.replace("{baseUrl}", options.base_url.trim_end_matches('/'));
        // RFC 5280 4.2.1.6: a URI in a certificate is an IA5String with a scheme; certmill only
        // serves OCSP and CRLs over http (RFC 5280 4.2.2.1 / 4.2.1.13: https would loop).
        let valid = url.is_ascii()
            && (url.starts_with("http://") || url.starts_with("ldap://"))
            && url.len() > "http://".len()
            && !url
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
        if valid {
            Some(url)
        } else {
            self.problem(
                path,
                format!("{url:?} is not an http:// or ldap:// URL in ASCII"),
            );
            None
        }
    }
}

/// JSON path of item `i` of a `source` that may be one string or a list.
fn source_path(path: &str, list: &OneOrMany, i: usize) -> String {
    match list {
        OneOrMany::One(_) => format!("{path}/source"),
        OneOrMany::Many(_) => format!("{path}/source/{i}"),
    }
}

impl Field {
    /// Whether resolving the field always yields a value or an error, never "no value": it
    /// is required, or one of its sources is fixed by the profile itself.
    fn always_has_value(&self, values: &BTreeMap<String, String>) -> bool {
        !self.optional
            || self.sources.iter().any(|source| match source {
                Source::Default => self.default.as_ref().is_some_and(|d| !d.is_empty()),
                Source::Profile(name) => values.get(name).is_some_and(|v| !v.is_empty()),
                _ => false,
            })
    }

    fn with_input_type(mut self, fallback: &str) -> Self {
        if self.input_type.is_empty() {
            self.input_type = fallback.to_owned();
        }
        self
    }
}

pub(super) fn compile(
    raw: RawProfile,
    json: &str,
    fallback_name: &str,
    options: &super::CompileOptions,
) -> Result<Profile, ProfileError> {
    let mut c = Compiler {
        problems: Vec::new(),
    };

    if let Some(version) = &raw.version {
        if version != "v3" {
            // Extensions need v3 (RFC 5280 4.1.2.1).
            c.problem(
                "/Version",
                format!("version {version:?} is not supported: certmill issues v3 only"),
            );
        }
    }

    // RFC 5280 4.1.2.2: at most 20 octets. CA/Browser Forum BR 7.1: at least 64 bits from a
    // CSPRNG; with the sign bit cleared that needs 9 octets.
    let serial_length = raw.serial_number.length as usize;
    if !(9..=20).contains(&serial_length) {
        c.problem("/SerialNumber/length", format!("length {serial_length} must be 9..=20 bytes (64 bits of randomness, RFC 5280 limit of 20 octets)"));
    }
    if raw.serial_number.generator != "CSPRNG" {
        c.problem(
            "/SerialNumber/generator",
            format!(
                "generator {:?} is not supported (CSPRNG)",
                raw.serial_number.generator
            ),
        );
    }

    let signature_algorithm = SignatureAlgorithm::from_name(&raw.signature_algorithm.name);
    if signature_algorithm.is_none() {
        c.problem("/SignatureAlgorithm/name", format!("unknown signature algorithm {:?} (ecdsa-with-SHA256, ecdsa-with-SHA384, sha256WithRSAEncryption, sha384WithRSAEncryption)", raw.signature_algorithm.name));
    }

    let spki = &raw.subject_public_key_info;
    let key_algorithm = spki.syntax.as_deref().and_then(KeyAlgorithm::from_syntax);
    if key_algorithm.is_none() {
        c.problem(
            "/SubjectPublicKeyInfo/syntax",
            format!(
                "key syntax {:?} is not one of EC:P-256, EC:P-384, RSA:2048, RSA:3072, RSA:4096",
                spki.syntax.as_deref().unwrap_or("")
            ),
        );
    }
    let key_sources = c.sources("/SubjectPublicKeyInfo", spki.source.as_ref());
    let key_sources_parsed =
        spki.source.as_ref().map_or(0, |l| l.to_vec().len()) == key_sources.len();
    for (i, source) in key_sources.iter().enumerate() {
        let ok = matches!(source, Source::KeypairQueue)
            || matches!(source, Source::Csr(p) if p == "SubjectPublicKeyInfo");
        if !ok {
            c.problem(
                match spki.source.as_ref() {
                    Some(list) if key_sources_parsed => {
                        source_path("/SubjectPublicKeyInfo", list, i)
                    }
                    _ => "/SubjectPublicKeyInfo/source".into(),
                },
                "a subject public key comes from CSR.SubjectPublicKeyInfo or KeypairQueue.der_spki",
            );
        }
    }
    if key_sources.is_empty() {
        c.problem(
            "/SubjectPublicKeyInfo/source",
            "no key source: give CSR.SubjectPublicKeyInfo and/or KeypairQueue.der_spki",
        );
    }

    match raw.issuer.source.to_vec().as_slice() {
        [one] if one == "IssuerCertificate.Subject" => {}
        other => c.problem(
            "/Issuer/source",
            format!("issuer source {other:?} is not supported (IssuerCertificate.Subject)"),
        ),
    }
    let issuer = match raw.issuer.name.as_deref() {
        None => crate::signers::DEFAULT_ISSUER.to_owned(),
        Some(name) => {
            if crate::signers::check_issuer_name(name).is_err() {
                c.problem(
                    "/Issuer/name",
                    format!(
                        "issuer name {name:?}: use 1 to 64 characters a-z, 0-9, '.', '_', '-', \
                         starting with a letter or digit"
                    ),
                );
            }
            name.to_owned()
        }
    };

    let mut subject = Vec::new();
    for (i, attribute) in raw.subject.attributes.iter().enumerate() {
        let path = format!("/Subject/attributes/{i}");
        let Some(kind) = attribute.kind.as_deref() else {
            c.problem(format!("{path}/type"), "attribute without a type");
            continue;
        };
        let Some(attribute_type) = attribute_type(kind) else {
            let known: Vec<&str> = names::ATTRIBUTE_TYPES.iter().map(|a| a.name).collect();
            c.problem(
                format!("{path}/type"),
                format!(
                    "unknown attribute type {kind:?} (known: {})",
                    known.join(", ")
                ),
            );
            continue;
        };
        let field = c.field(&path, kind, kind, attribute);
        if let Some(default) = &field.default {
            if let Err(reason) = crate::template::check_attribute_value(attribute_type, default) {
                c.problem(
                    format!("{path}/default"),
                    format!("default {default:?} {reason}"),
                );
            }
        }
        subject.push(SubjectAttribute {
            attribute: attribute_type,
            field,
        });
    }
    if subject.is_empty() {
        c.problem("/Subject/attributes", "the subject has no attributes (an empty subject needs a critical SAN; certmill profiles name the device in the subject)");
    }

    let validity = match &raw.validity.period {
        Some(period) => {
            let mut field = c.field(
                "/Validity/period",
                "validityPeriod",
                "validityPeriod",
                period,
            );
            field.default = raw
                .validity
                .default
                .as_ref()
                .map(|d| d.years.to_string())
                .or(field.default);
            if !field.sources.contains(&Source::Default) {
                // Validity.default is the last fallback (seed: "default = 1 year").
                field.sources.push(Source::Default);
            }
            field
        }
        None => Field {
            path: "/Validity".into(),
            label: "validityPeriod".into(),
            input_type: "validityPeriod".into(),
            sources: vec![Source::Default],
            default: raw.validity.default.as_ref().map(|d| d.years.to_string()),
            optional: false,
            rule: None,
            description: None,
        },
    };
    if validity.default.is_none() && raw.validity.period.is_none() {
        c.problem("/Validity", "no period and no default: a profile must state the validity (no open-ended certificates)");
    }
    if let Some(default) = &raw.validity.default {
        if !(1..=100).contains(&default.years) {
            c.problem("/Validity/default/years", "must be 1..=100");
        }
    }
    if let Some(not_before) = &raw.validity.not_before {
        if not_before.source.to_vec() != ["System.Clock"] {
            c.problem(
                "/Validity/notBefore/source",
                "notBefore comes from System.Clock",
            );
        }
    }

    let extensions = compile_extensions(&mut c, &raw, key_algorithm, options);

    let (cert_bag, password) = match &raw.pkcs12 {
        Some(p) => (
            p.cert_bag
                .as_ref()
                .map(|f| c.field("/PKCS12/CertBag", "pkcs12CertBag", "pkcs12CertBag", f)),
            p.password
                .as_ref()
                .map(|f| c.field("/PKCS12/Password", "pkcs12Password", "pkcs12Password", f)),
        ),
        None => (None, None),
    };
    let cert_bag = cert_bag.unwrap_or_else(|| Field {
        path: "/PKCS12/CertBag".into(),
        label: "pkcs12CertBag".into(),
        input_type: "pkcs12CertBag".into(),
        sources: vec![Source::Default],
        default: Some("leaf+issuer+root".into()),
        optional: true,
        rule: None,
        description: None,
    });
    if let Some(default) = &cert_bag.default {
        if super::CertBag::parse(default).is_none() {
            c.problem(
                "/PKCS12/CertBag/default",
                format!("{default:?} is not leaf, leaf+issuer or leaf+issuer+root"),
            );
        }
    }
    let password = password.unwrap_or_else(|| Field {
        path: "/PKCS12/Password".into(),
        label: "pkcs12Password".into(),
        input_type: "pkcs12Password".into(),
        sources: vec![Source::Batch("pkcs12Password".into())],
        default: None,
        optional: true,
        rule: None,
        description: None,
    });
    if password
        .sources
        .iter()
        .any(|s| !matches!(s, Source::Batch(_)))
    {
        // Passwords are never stored, so they can only be batch parameters.
        c.problem(
            "/PKCS12/Password/source",
            "a PKCS#12 password comes only from a Batch.<name> parameter",
        );
    }

    let (name, id, values) = match &raw.profile {
        Some(meta) => (
            meta.name
                .clone()
                .unwrap_or_else(|| fallback_name.to_owned()),
            meta.id,
            meta.values
                .iter()
                .map(|(k, v)| (k.clone(), v.as_text()))
                .collect(),
        ),
        None => (fallback_name.to_owned(), None, BTreeMap::new()),
    };

    // RFC 5280 4.1.2.6: an empty subject is only allowed when the subjectAltName is present
    // and critical. A subject whose every attribute is optional and input-sourced can come out
    // empty for a device, so it needs a critical SAN; with one, a device that leaves both the
    // subject and the SAN empty is still refused by name when its values are filled in
    // (`Template::prepare`).
    let san_critical = extensions
        .subject_alternative_name
        .as_ref()
        .is_some_and(|(_, critical)| *critical);
    if !subject.is_empty()
        && !subject.iter().any(|a| a.field.always_has_value(&values))
        && !san_critical
    {
        c.problem(
            "/Subject/attributes",
            "every attribute is optional with no fixed value, so a device can get an empty \
             subject, which RFC 5280 4.1.2.6 allows only with a critical subjectAltName: make \
             one attribute required, give it a default, or mark SubjectAlternativeName critical",
        );
    }

    if !c.problems.is_empty() {
        return Err(ProfileError::Invalid(c.problems));
    }
    let (Some(signature_algorithm), Some(key_algorithm)) = (signature_algorithm, key_algorithm)
    else {
        return Err(ProfileError::Invalid(vec![Problem {
            path: "/".into(),
            message: "unreachable: algorithms missing without a problem".into(),
        }]));
    };
    Ok(Profile {
        name,
        id,
        issuer,
        serial_length,
        signature_algorithm,
        key_algorithm,
        key_sources,
        subject,
        validity,
        extensions,
        cert_bag,
        password,
        values,
        raw_json: json.to_owned(),
    })
}

fn compile_extensions(
    c: &mut Compiler,
    raw: &RawProfile,
    key_algorithm: Option<KeyAlgorithm>,
    options: &super::CompileOptions,
) -> ExtensionsSpec {
    let e = &raw.extensions;
    let mut out = ExtensionsSpec::default();

    let is_ca = e.basic_constraints.as_ref().is_some_and(|b| b.ca);
    if is_ca {
        c.problem(
            "/Extensions/BasicConstraints/CA",
            "certmill profiles issue end-entity certificates: CA must be false",
        );
    }
    out.basic_constraints = e.basic_constraints.as_ref().map(|b| b.critical);

    if let Some(ku) = &e.key_usage {
        let mut mask = 0u16;
        for (i, bit) in ku.bits.iter().enumerate() {
            let path = format!("/Extensions/KeyUsage/bits/{i}");
            let alias = if bit == "contentCommitment" {
                "nonRepudiation"
            } else {
                bit.as_str()
            };
            match KEY_USAGE_BITS.iter().position(|b| *b == alias) {
                Some(n) => {
                    if mask & (1 << n) != 0 {
                        c.problem(path, format!("{bit} listed twice"));
                    }
                    mask |= 1 << n;
                }
                None => c.problem(
                    path,
                    format!(
                        "unknown key usage {bit:?} (known: {})",
                        KEY_USAGE_BITS.join(", ")
                    ),
                ),
            }
        }
        let has = |name: &str| {
            KEY_USAGE_BITS
                .iter()
                .position(|b| *b == name)
                .is_some_and(|n| mask & (1 << n) != 0)
        };
        if mask == 0 {
            // RFC 5280 4.2.1.3: when present, at least one bit MUST be set.
            c.problem(
                "/Extensions/KeyUsage/bits",
                "no bits: leave KeyUsage out instead (RFC 5280 4.2.1.3)",
            );
        }
        if has("keyCertSign") || has("cRLSign") {
            c.problem("/Extensions/KeyUsage/bits", "keyCertSign/cRLSign are for CA certificates; certmill issues end-entity certificates");
        }
        if (has("encipherOnly") || has("decipherOnly")) && !has("keyAgreement") {
            c.problem(
                "/Extensions/KeyUsage/bits",
                "encipherOnly/decipherOnly need keyAgreement (RFC 5280 4.2.1.3)",
            );
        }
        match key_algorithm {
            // RFC 5480 3: id-ecPublicKey allows digitalSignature, nonRepudiation, keyAgreement,
            // keyCertSign, cRLSign, encipherOnly, decipherOnly; never key/data encipherment.
            Some(k) if k.is_ec() && (has("keyEncipherment") || has("dataEncipherment")) => c.problem(
                "/Extensions/KeyUsage/bits",
                "keyEncipherment/dataEncipherment are not valid for EC keys (RFC 5480 section 3)",
            ),
            // RFC 4055 1.2 / RFC 3279 2.3.1: rsaEncryption allows no keyAgreement.
            Some(k) if !k.is_ec() && (has("keyAgreement") || has("encipherOnly") || has("decipherOnly")) => c.problem(
                "/Extensions/KeyUsage/bits",
                "keyAgreement/encipherOnly/decipherOnly are not valid for RSA keys (RFC 3279 2.3.1)",
            ),
            _ => {}
        }
        out.key_usage = Some((KeyUsageBits(mask), ku.critical));
    }

    if let Some(eku) = &e.extended_key_usage {
        let mut oids = Vec::new();
        for (i, purpose) in eku.purposes.iter().enumerate() {
            let path = format!("/Extensions/ExtendedKeyUsage/purposes/{i}");
            let oid = names::KEY_PURPOSES
                .iter()
                .find(|(name, _)| name == purpose)
                .map(|(_, oid)| (*oid).to_owned())
                .or_else(|| crate::asn1::oid_big(purpose).map(|_| purpose.clone()));
            match oid {
                Some(oid) if oids.contains(&oid) => {
                    c.problem(path, format!("{purpose} listed twice"))
                }
                Some(oid) => oids.push(oid),
                None => {
                    let known: Vec<&str> = names::KEY_PURPOSES.iter().map(|(n, _)| *n).collect();
                    c.problem(
                        path,
                        format!(
                            "unknown purpose {purpose:?} (known: {}, or a dotted OID)",
                            known.join(", ")
                        ),
                    )
                }
            }
        }
        if oids.is_empty() {
            c.problem(
                "/Extensions/ExtendedKeyUsage/purposes",
                "no purposes: leave ExtendedKeyUsage out instead",
            );
        }
        out.extended_key_usage = Some((oids, eku.critical));
    }

    if let Some(aia) = &e.authority_info_access {
        if aia.critical {
            c.problem(
                "/Extensions/AuthorityInfoAccess/critical",
                "must be non-critical (RFC 5280 4.2.2.1)",
            );
        }
        for (i, url) in aia.ocsp_urls.iter().enumerate() {
            if let Some(url) = c.url(
                format!("/Extensions/AuthorityInfoAccess/ocspURLs/{i}"),
                url,
                options,
            ) {
                out.ocsp_urls.push(url);
            }
        }
        for (i, url) in aia.ca_issuers_urls.iter().enumerate() {
            if let Some(url) = c.url(
                format!("/Extensions/AuthorityInfoAccess/caIssuersURLs/{i}"),
                url,
                options,
            ) {
                out.ca_issuers_urls.push(url);
            }
        }
        if aia.ocsp_urls.is_empty() && aia.ca_issuers_urls.is_empty() {
            c.problem(
                "/Extensions/AuthorityInfoAccess",
                "no ocspURLs and no caIssuersURLs",
            );
        }
    }

    if let Some(crl) = &e.crl_distribution_points {
        let mut urls = Vec::new();
        for (i, url) in crl.distribution_point_urls.iter().enumerate() {
            if let Some(url) = c.url(
                format!("/Extensions/CRLDistributionPoints/distributionPointURLs/{i}"),
                url,
                options,
            ) {
                urls.push(url);
            }
        }
        if crl.distribution_point_urls.is_empty() {
            c.problem(
                "/Extensions/CRLDistributionPoints/distributionPointURLs",
                "no URLs",
            );
        }
        let validity_period = crl.validity_period.as_deref().and_then(|text| {
            parse_duration(text).or_else(|| {
                c.problem(
                    "/Extensions/CRLDistributionPoints/validityPeriod",
                    format!("{text:?} is not a duration like \"4 days\" or \"12 hours\""),
                );
                None
            })
        });
        let issuance_frequency = crl.issuance_frequency.as_deref().and_then(|text| {
            parse_duration(text).or_else(|| {
                c.problem(
                    "/Extensions/CRLDistributionPoints/issuanceFrequency",
                    format!("{text:?} is not a duration like \"4 days\" or \"12 hours\""),
                );
                None
            })
        });
        if let (Some(v), Some(f)) = (validity_period, issuance_frequency) {
            if f > v {
                c.problem(
                    "/Extensions/CRLDistributionPoints/issuanceFrequency",
                    "CRLs issued less often than they stay valid would leave gaps",
                );
            }
        }
        out.crl = Some(CrlSpec {
            urls,
            critical: crl.critical,
            validity_period,
            issuance_frequency,
        });
    }

    if let Some(aki) = &e.authority_key_identifier {
        if aki.critical {
            c.problem(
                "/Extensions/AuthorityKeyIdentifier/critical",
                "must be non-critical (RFC 5280 4.2.1.1)",
            );
        }
        if let Some(source) = &aki.key_identifier {
            if source.source.to_vec() != ["IssuerCertificate.SubjectKeyIdentifier"] {
                c.problem(
                    "/Extensions/AuthorityKeyIdentifier/keyIdentifier/source",
                    "the key identifier comes from IssuerCertificate.SubjectKeyIdentifier",
                );
            }
        }
        out.authority_key_identifier = Some(aki.critical);
    }

    if let Some(ski) = &e.subject_key_identifier {
        if ski.critical {
            c.problem(
                "/Extensions/SubjectKeyIdentifier/critical",
                "must be non-critical (RFC 5280 4.2.1.2)",
            );
        }
        out.subject_key_identifier = Some(ski.critical);
    }

    if let Some(san) = &e.subject_alternative_name {
        let mut specs = Vec::new();
        for (i, name) in san.general_names.iter().enumerate() {
            let path = format!("/Extensions/SubjectAlternativeName/generalNames/{i}");
            let Some(kind_text) = name.kind.as_deref() else {
                c.problem(format!("{path}/type"), "general name without a type");
                continue;
            };
            let kind = match kind_text {
                "dNSName" => Some(GeneralNameKind::DnsName),
                "iPAddress" => Some(GeneralNameKind::IpAddress),
                "rfc822Name" => Some(GeneralNameKind::Rfc822Name),
                "uniformResourceIdentifier" => Some(GeneralNameKind::Uri),
                other => match other.strip_prefix("otherName:") {
                    Some(alias) => {
                        let oid = names::other_name_oid(alias).map(str::to_owned).or_else(|| {
                            // An explicit dotted OID works too.
                            alias.contains('.').then(|| alias.to_owned())
                        });
                        match oid
                            .as_deref()
                            .and_then(|o| crate::asn1::oid_big(o).map(|der| (o.to_owned(), der)))
                        {
                            Some((oid, oid_der)) => {
                                Some(GeneralNameKind::OtherName { oid_der, oid })
                            }
                            None => {
                                let known: Vec<&str> =
                                    names::OTHER_NAME_ALIASES.iter().map(|(n, _)| *n).collect();
                                c.problem(format!("{path}/type"), format!("unknown otherName {alias:?} (known aliases: {}; or otherName:<dotted OID>)", known.join(", ")));
                                None
                            }
                        }
                    }
                    None => {
                        c.problem(format!("{path}/type"), format!("unknown general name type {other:?} (dNSName, iPAddress, rfc822Name, uniformResourceIdentifier, otherName:<alias or OID>)"));
                        None
                    }
                },
            };
            let field = c.field(&path, kind_text, kind_text, name);
            if let Some(kind) = kind {
                specs.push(GeneralNameSpec { kind, field });
            }
        }
        if san.general_names.is_empty() {
            c.problem(
                "/Extensions/SubjectAlternativeName/generalNames",
                "no general names: leave SubjectAlternativeName out instead",
            );
        }
        out.subject_alternative_name = Some((specs, san.critical));
    }
    out
}

/// Parses "4 days", "12 hours", "30 minutes", "1 week".
fn parse_duration(text: &str) -> Option<Duration> {
    let mut parts = text.split_whitespace();
    let count: u64 = parts.next()?.parse().ok()?;
    let unit = parts.next()?;
    if parts.next().is_some() || count == 0 {
        return None;
    }
    let seconds = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 604_800,
        _ => return None,
    };
    Some(Duration::from_secs(count.checked_mul(seconds)?))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("4 days"),
            Some(Duration::from_secs(4 * 86_400))
        );
        assert_eq!(
            parse_duration("12 hours"),
            Some(Duration::from_secs(12 * 3600))
        );
        assert_eq!(parse_duration("1 day"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0 days"), None);
        assert_eq!(parse_duration("4 fortnights"), None);
        assert_eq!(parse_duration("days"), None);
    }
}
