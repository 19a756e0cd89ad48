//! Revocation: revocation reasons, X.509 v2 CRLs and an OCSP responder, per issuer.
//!
//! The store keeps what is revoked (`revocations`, one row per issuer and serial) and the CRL
//! numbers; this module turns that into signed DER. [`crl`] streams a CRL from the store's
//! entries to a file without holding the entries in memory, and [`ocsp`] parses OCSP requests
//! and builds signed OCSP responses (RFC 6960 with the RFC 5019 lightweight profile), signed by
//! a delegated responder certificate. [`service`] ties them to a data directory: when to issue
//! a CRL, where it lives on disk, and the OCSP responder's key, certificate and response cache.
//!
//! It does not decide who may revoke (the API and CLI do) and it never touches the CA key
//! directly: CRLs and responder certificates are signed through [`crate::ca::IssuingCa`].

pub mod crl;
pub mod ocsp;
pub mod service;

use std::fmt;

/// CRLReason (RFC 5280 section 5.3.1), as a revocation records it.
///
/// ```text
/// CRLReason ::= ENUMERATED {
///      unspecified             (0),
///      keyCompromise           (1),
///      cACompromise            (2),
///      affiliationChanged      (3),
///      superseded              (4),
///      cessationOfOperation    (5),
///      certificateHold         (6),
///           -- value 7 is not used
///      removeFromCRL           (8),
///      privilegeWithdrawn      (9),
///      aACompromise           (10) }
/// ```
///
/// The variants follow the standard's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// `unspecified` (0).
    Unspecified,
    /// `keyCompromise` (1).
    KeyCompromise,
    /// `cACompromise` (2).
    CaCompromise,
    /// `affiliationChanged` (3).
    AffiliationChanged,
    /// `superseded` (4).
    Superseded,
    /// `cessationOfOperation` (5).
    CessationOfOperation,
    /// `certificateHold` (6).
    CertificateHold,
    /// `removeFromCRL` (8): only ever a request to release a certificate on hold; it is never
    /// recorded or published (RFC 5280 section 5.3.1: it appears only in delta CRLs).
    RemoveFromCrl,
    /// `privilegeWithdrawn` (9).
    PrivilegeWithdrawn,
    /// `aACompromise` (10).
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, by code.
    pub const ALL: [RevocationReason; 10] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// The reason with this code; `None` for 7 (unused by RFC 5280) and above 10.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::RemoveFromCrl => 8,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }

    /// The ASN.1 name (`keyCompromise`), as the CLI takes it and OpenSSL prints it (OpenSSL
    /// prints "Key Compromise"; see [`RevocationReason::openssl_text`]).
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::RemoveFromCrl => "removeFromCRL",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            RevocationReason::AaCompromise => "aACompromise",
        }
    }

    /// How `openssl crl -text` and `openssl ocsp` print the reason.
    pub fn openssl_text(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "Unspecified",
            RevocationReason::KeyCompromise => "Key Compromise",
            RevocationReason::CaCompromise => "CA Compromise",
            RevocationReason::AffiliationChanged => "Affiliation Changed",
            RevocationReason::Superseded => "Superseded",
            RevocationReason::CessationOfOperation => "Cessation Of Operation",
            RevocationReason::CertificateHold => "Certificate Hold",
            RevocationReason::RemoveFromCrl => "Remove From CRL",
            RevocationReason::PrivilegeWithdrawn => "Privilege Withdrawn",
            RevocationReason::AaCompromise => "AA Compromise",
        }
    }

    /// Parses a reason given by name (case-insensitive, `keyCompromise`, `key-compromise` and
    /// `key_compromise` alike) or by code (`1`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(code) = text.parse::<u8>() {
            return Self::from_code(code);
        }
        let folded: String = text
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .collect::<String>()
            .to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| r.name().to_ascii_lowercase() == folded)
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One revoked certificate, as a CRL lists it and OCSP reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number: big-endian magnitude octets, no leading zero octet, not empty.
    pub serial: Vec<u8>,
    /// Revocation date, Unix seconds.
    pub revoked_at: i64,
    /// Why it was revoked.
    pub reason: RevocationReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_by_code_and_name_and_seven_is_refused() {
        for reason in RevocationReason::ALL {
            assert_eq!(RevocationReason::from_code(reason.code()), Some(reason));
            assert_eq!(RevocationReason::parse(reason.name()), Some(reason));
            assert_eq!(
                RevocationReason::parse(&reason.code().to_string()),
                Some(reason)
            );
        }
        assert_eq!(RevocationReason::from_code(7), None);
        assert_eq!(RevocationReason::from_code(11), None);
        assert_eq!(RevocationReason::parse("7"), None);
        assert_eq!(
            RevocationReason::parse("key-compromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            RevocationReason::parse("KEYCOMPROMISE"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(RevocationReason::parse("stolen"), None);
    }
}
