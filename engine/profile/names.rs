//! Name tables of the profile language: DN attribute types, extended key usage purposes and
//! otherName aliases, each mapped to its OID and encoding rules.

/// How a DN attribute value is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryString {
    /// `IA5String` (domainComponent, emailAddress).
    Ia5,
    /// `PrintableString` (countryName, serialNumber, dnQualifier: X.520 fixes it).
    Printable,
    /// `UTF8String` (RFC 5280 4.1.2.6: MUST for new certificates, other than the exceptions).
    Utf8,
}

/// A DN attribute type the profile language knows.
#[derive(Clone, Copy, Debug)]
pub struct AttributeType {
    /// Name in the profile (`commonName`).
    pub name: &'static str,
    /// Short name for display (`CN`).
    pub short: &'static str,
    /// Dotted OID.
    pub oid: &'static str,
    /// Encoding.
    pub encoding: DirectoryString,
    /// Upper bound on the length in characters (RFC 5280 Appendix A.1 `ub-*`).
    pub max_len: usize,
    /// Exact length, when X.520 fixes one (countryName: 2).
    pub exact_len: Option<usize>,
}

/// Attribute types (RFC 5280 4.1.2.4 and Appendix A.1, RFC 4519, RFC 4524).
pub const ATTRIBUTE_TYPES: &[AttributeType] = &[
    at(
        "businessCategory",
        "businessCategory",
        "2.5.4.15",
        DirectoryString::Utf8,
        128,
    ),
    at("commonName", "CN", "2.5.4.3", DirectoryString::Utf8, 64),
    AttributeType {
        exact_len: Some(2),
        ..at("countryName", "C", "2.5.4.6", DirectoryString::Printable, 2)
    },
    at(
        "dnQualifier",
        "dnQualifier",
        "2.5.4.46",
        DirectoryString::Printable,
        64,
    ),
    at(
        "domainComponent",
        "DC",
        "0.9.2342.19200300.100.1.25",
        DirectoryString::Ia5,
        63,
    ),
    at(
        "emailAddress",
        "emailAddress",
        "1.2.840.113549.1.9.1",
        DirectoryString::Ia5,
        255,
    ),
    at(
        "generationQualifier",
        "generationQualifier",
        "2.5.4.44",
        DirectoryString::Utf8,
        64,
    ),
    at("givenName", "GN", "2.5.4.42", DirectoryString::Utf8, 64),
    at(
        "initials",
        "initials",
        "2.5.4.43",
        DirectoryString::Utf8,
        64,
    ),
    at("localityName", "L", "2.5.4.7", DirectoryString::Utf8, 128),
    at(
        "organizationIdentifier",
        "organizationIdentifier",
        "2.5.4.97",
        DirectoryString::Utf8,
        64,
    ),
    at(
        "organizationName",
        "O",
        "2.5.4.10",
        DirectoryString::Utf8,
        64,
    ),
    at(
        "organizationalUnitName",
        "OU",
        "2.5.4.11",
        DirectoryString::Utf8,
        64,
    ),
    at(
        "postalCode",
        "postalCode",
        "2.5.4.17",
        DirectoryString::Utf8,
        40,
    ),
    at(
        "pseudonym",
        "pseudonym",
        "2.5.4.65",
        DirectoryString::Utf8,
        128,
    ),
    at(
        "serialNumber",
        "serialNumber",
        "2.5.4.5",
        DirectoryString::Printable,
        64,
    ),
    at(
        "stateOrProvinceName",
        "ST",
        "2.5.4.8",
        DirectoryString::Utf8,
        128,
    ),
    at(
        "streetAddress",
        "street",
        "2.5.4.9",
        DirectoryString::Utf8,
        128,
    ),
    at("surname", "SN", "2.5.4.4", DirectoryString::Utf8, 64),
    at("title", "title", "2.5.4.12", DirectoryString::Utf8, 64),
    at(
        "userId",
        "UID",
        "0.9.2342.19200300.100.1.1",
        DirectoryString::Utf8,
        256,
    ),
];

const fn at(
    name: &'static str,
    short: &'static str,
    oid: &'static str,
    encoding: DirectoryString,
    max_len: usize,
) -> AttributeType {
    AttributeType {
        name,
        short,
        oid,
        encoding,
        max_len,
        exact_len: None,
    }
}

/// Looks an attribute type up by its profile name.
pub fn attribute_type(name: &str) -> Option<&'static AttributeType> {
    ATTRIBUTE_TYPES.iter().find(|a| a.name == name)
}

/// Extended key usage purposes by name (RFC 5280 4.2.1.12, RFC 9336 for documentSigning).
pub const KEY_PURPOSES: &[(&str, &str)] = &[
    ("id-kp-clientAuth", "1.3.6.1.5.5.7.3.2"),
    ("id-kp-codeSigning", "1.3.6.1.5.5.7.3.3"),
    ("id-kp-documentSigning", "1.3.6.1.5.5.7.3.36"),
    ("id-kp-emailProtection", "1.3.6.1.5.5.7.3.4"),
    ("id-kp-OCSPSigning", "1.3.6.1.5.5.7.3.9"),
    ("id-kp-serverAuth", "1.3.6.1.5.5.7.3.1"),
    ("id-kp-timeStamping", "1.3.6.1.5.5.7.3.8"),
];

/// certmill's own OID arc: `2.25.<UUID>` (ITU-T X.667 / ISO/IEC 9834-8), owned without
/// registration by whoever generated the UUID. UUID e6a6e795-78e7-4be6-9673-526ef7007b7a.
pub const CERTMILL_ARC: &str = "2.25.306589057388079911789436758635699010426";

/// otherName aliases the profile language knows, with the OID each maps to.
///
/// `AeroMACS_DeviceClass`: the AeroMACS device classes (Aircraft, Surface Vehicle, Video Sensor,
/// Ground Critical, Ground Default) are defined by ARINC 842 and the WiMAX Forum AeroMACS PKI
/// certificate policy, but no OID for carrying the class in an otherName could be found in any
/// published document. Rather than invent one in someone else's arc, certmill maps the alias to
/// `<CERTMILL_ARC>.1.1` (`.1` = certmill otherName types). A profile that needs an OID from the
/// AeroMACS PKI CP can name it explicitly with `otherName:<dotted OID>`.
pub const OTHER_NAME_ALIASES: &[(&str, &str)] = &[(
    "AeroMACS_DeviceClass",
    "2.25.306589057388079911789436758635699010426.1.1",
)];

/// Looks an otherName alias up.
pub fn other_name_oid(alias: &str) -> Option<&'static str> {
    OTHER_NAME_ALIASES
        .iter()
        .find(|(name, _)| *name == alias)
        .map(|(_, oid)| *oid)
}

/// Whether `value` fits `PrintableString` (X.680 41.4).
pub fn is_printable_string(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_valid_oids_and_unique_names() {
        for attribute in ATTRIBUTE_TYPES {
            assert!(
                crate::asn1::oid(attribute.oid).is_some(),
                "{}",
                attribute.name
            );
            assert_eq!(attribute_type(attribute.name).unwrap().oid, attribute.oid);
        }
        for (name, oid) in KEY_PURPOSES {
            assert!(crate::asn1::oid(oid).is_some(), "{name}");
        }
        for (name, oid) in OTHER_NAME_ALIASES {
            assert!(crate::asn1::oid_big(oid).is_some(), "{name}");
            assert!(oid.starts_with(CERTMILL_ARC));
        }
    }

    #[test]
    fn printable_string_charset() {
        assert!(is_printable_string("GB"));
        assert!(is_printable_string("Serial 12-34/5"));
        assert!(!is_printable_string("a@b"));
        assert!(!is_printable_string("Zoë"));
    }
}
