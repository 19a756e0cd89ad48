//! `RawProfile`: the rawProfileConfig JSON of seed 001, as written, with serde.
//!
//! Field names are the seed's (`SerialNumber`, `SubjectPublicKeyInfo`, `distributionPointURLs`
//! ...). Unknown keys are refused (`deny_unknown_fields`) so a typo never silently drops a rule;
//! the compiler in `compile.rs` turns this into a checked [`super::Profile`].

use serde::Deserialize;
use std::collections::BTreeMap;

/// One value or a list of them: the seed writes `"source": "System.Clock"` in some places and
/// `"source": ["Request.years", "Batch.years"]` in others.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single string.
    One(String),
    /// A list of strings.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a slice-like vector.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A scalar default: the seed writes strings, integers are accepted too.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A string value.
    Text(String),
    /// An integer value.
    Integer(i64),
}

impl Scalar {
    /// The value as text.
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Integer(i) => i.to_string(),
        }
    }
}

/// The whole rawProfileConfig object.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// certmill addition: name, id and profile-level values (`Profile.<name>` sources).
    #[serde(rename = "Profile")]
    pub profile: Option<RawProfileMeta>,
    /// `"v3"`.
    #[serde(rename = "Version")]
    pub version: Option<String>,
    /// Serial number length and generator.
    #[serde(rename = "SerialNumber")]
    pub serial_number: RawSerialNumber,
    /// Signature algorithm of the issued certificates.
    #[serde(rename = "SignatureAlgorithm")]
    pub signature_algorithm: RawSignatureAlgorithm,
    /// Where the subject public key comes from and which algorithm it must have.
    #[serde(rename = "SubjectPublicKeyInfo")]
    pub subject_public_key_info: RawField,
    /// Where the issuer name comes from, and which issuer signs.
    #[serde(rename = "Issuer")]
    pub issuer: RawIssuer,
    /// The subject distinguished name.
    #[serde(rename = "Subject")]
    pub subject: RawSubject,
    /// Validity period.
    #[serde(rename = "Validity")]
    pub validity: RawValidity,
    /// X.509 v3 extensions.
    #[serde(rename = "Extensions", default)]
    pub extensions: RawExtensions,
    /// PKCS#12 packaging of server-generated keys.
    #[serde(rename = "PKCS12")]
    pub pkcs12: Option<RawPkcs12>,
}

/// certmill's optional profile metadata block.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfileMeta {
    /// Display name ("ECC Device Certificate").
    pub name: Option<String>,
    /// Numeric id as the API exposes it.
    pub id: Option<u64>,
    /// Values for `Profile.<name>` sources.
    #[serde(default)]
    pub values: BTreeMap<String, Scalar>,
}

/// `SerialNumber`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSerialNumber {
    /// Length in bytes.
    pub length: u32,
    /// `"CSPRNG"`.
    pub generator: String,
}

/// `SignatureAlgorithm`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignatureAlgorithm {
    /// Algorithm name, e.g. `ecdsa-with-SHA256`.
    pub name: String,
}

/// `Issuer`: the source of the issuer name, and (certmill addition) the name of the issuer
/// whose current signer signs (`default` when absent).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// Where the value comes from.
    pub source: OneOrMany,
    /// The issuer (`certmill ca list`).
    pub name: Option<String>,
}

/// An object with only a `source`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSourceOnly {
    /// Where the value comes from.
    pub source: OneOrMany,
}

/// A value-bearing field: the common shape of attributes, parameters and general names.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    /// The field's type (attribute type, parameter input type, general name type).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Sources, first that yields a value wins.
    pub source: Option<OneOrMany>,
    /// Validation syntax.
    pub syntax: Option<String>,
    /// Value of the `Default` source.
    pub default: Option<Scalar>,
    /// Whether the field may be absent.
    pub optional: Option<bool>,
    /// Human description (parameter title).
    pub description: Option<String>,
}

/// `Subject`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubject {
    /// Attributes, in DN order.
    pub attributes: Vec<RawField>,
}

/// `Validity`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidity {
    /// The period parameter (years).
    pub period: Option<RawField>,
    /// The default period.
    pub default: Option<RawValidityDefault>,
    /// Where notBefore comes from.
    #[serde(rename = "notBefore")]
    pub not_before: Option<RawSourceOnly>,
}

/// `Validity.default`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidityDefault {
    /// Years.
    pub years: u32,
}

/// `Extensions`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtensions {
    /// keyUsage.
    #[serde(rename = "KeyUsage")]
    pub key_usage: Option<RawKeyUsage>,
    /// extKeyUsage.
    #[serde(rename = "ExtendedKeyUsage")]
    pub extended_key_usage: Option<RawExtendedKeyUsage>,
    /// authorityInfoAccess.
    #[serde(rename = "AuthorityInfoAccess")]
    pub authority_info_access: Option<RawAuthorityInfoAccess>,
    /// cRLDistributionPoints.
    #[serde(rename = "CRLDistributionPoints")]
    pub crl_distribution_points: Option<RawCrlDistributionPoints>,
    /// authorityKeyIdentifier.
    #[serde(rename = "AuthorityKeyIdentifier")]
    pub authority_key_identifier: Option<RawAuthorityKeyIdentifier>,
    /// subjectKeyIdentifier.
    #[serde(rename = "SubjectKeyIdentifier")]
    pub subject_key_identifier: Option<RawCriticalOnly>,
    /// basicConstraints.
    #[serde(rename = "BasicConstraints")]
    pub basic_constraints: Option<RawBasicConstraints>,
    /// subjectAltName.
    #[serde(rename = "SubjectAlternativeName")]
    pub subject_alternative_name: Option<RawSubjectAlternativeName>,
}

/// `KeyUsage`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyUsage {
    /// Named bits.
    pub bits: Vec<String>,
    /// Criticality.
    #[serde(default)]
    pub critical: bool,
}

/// `ExtendedKeyUsage`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtendedKeyUsage {
    /// Purposes (`id-kp-clientAuth` or dotted OIDs).
    pub purposes: Vec<String>,
    /// Criticality.
    #[serde(default)]
    pub critical: bool,
}

/// `AuthorityInfoAccess`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorityInfoAccess {
    /// OCSP responder URLs.
    #[serde(rename = "ocspURLs", default)]
    pub ocsp_urls: Vec<String>,
    /// CA issuers URLs.
    #[serde(rename = "caIssuersURLs", default)]
    pub ca_issuers_urls: Vec<String>,
    /// Criticality (must be false, RFC 5280 4.2.2.1).
    #[serde(default)]
    pub critical: bool,
}

/// `CRLDistributionPoints`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCrlDistributionPoints {
    /// Distribution point URLs.
    #[serde(rename = "distributionPointURLs")]
    pub distribution_point_urls: Vec<String>,
    /// How long a CRL stays valid ("4 days").
    #[serde(rename = "validityPeriod")]
    pub validity_period: Option<String>,
    /// How often a CRL is issued ("12 hours").
    #[serde(rename = "issuanceFrequency")]
    pub issuance_frequency: Option<String>,
    /// Criticality.
    #[serde(default)]
    pub critical: bool,
}

/// `AuthorityKeyIdentifier`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorityKeyIdentifier {
    /// Where the key identifier comes from.
    #[serde(rename = "keyIdentifier")]
    pub key_identifier: Option<RawSourceOnly>,
    /// Criticality (must be false, RFC 5280 4.2.1.1).
    #[serde(default)]
    pub critical: bool,
}

/// An extension with only a criticality flag.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCriticalOnly {
    /// Criticality.
    #[serde(default)]
    pub critical: bool,
}

/// `BasicConstraints`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicConstraints {
    /// Must be false for leaves.
    #[serde(rename = "CA", alias = "ca", default)]
    pub ca: bool,
    /// Criticality.
    #[serde(default)]
    pub critical: bool,
}

/// `SubjectAlternativeName`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubjectAlternativeName {
    /// The general names.
    #[serde(rename = "generalNames")]
    pub general_names: Vec<RawField>,
    /// Criticality.
    #[serde(default)]
    pub critical: bool,
}

/// `PKCS12`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPkcs12 {
    /// Which certificates go in the file.
    #[serde(rename = "CertBag")]
    pub cert_bag: Option<RawField>,
    /// Where the password comes from.
    #[serde(rename = "Password")]
    pub password: Option<RawField>,
}
