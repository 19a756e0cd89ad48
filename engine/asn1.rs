//! A minimal DER writer for the hot path: tag-length-value framing over byte slices.
//!
//! Constant structures are encoded once (with `der`/`x509-cert` types or with these helpers)
//! and per-device structures are framed here around pre-encoded pieces, which is what makes
//! the certificate template and the PKCS#12 builder cheap. It does not parse and it does not
//! validate content: callers hand it content that is already valid DER for the tag they name.
//! Every structure built with it is tested by parsing the result back with `der`/`x509-cert`
//! or with OpenSSL.

/// `SEQUENCE` (constructed).
pub(crate) const SEQUENCE: u8 = 0x30;
/// `SET` (constructed).
pub(crate) const SET: u8 = 0x31;
/// `INTEGER`.
pub(crate) const INTEGER: u8 = 0x02;
/// `BIT STRING`.
pub(crate) const BIT_STRING: u8 = 0x03;
/// `OCTET STRING`.
pub(crate) const OCTET_STRING: u8 = 0x04;
/// `NULL`.
pub(crate) const NULL: u8 = 0x05;
/// `OBJECT IDENTIFIER`.
pub(crate) const OBJECT_IDENTIFIER: u8 = 0x06;
/// `UTF8String`.
pub(crate) const UTF8_STRING: u8 = 0x0c;
/// `PrintableString`.
pub(crate) const PRINTABLE_STRING: u8 = 0x13;
/// `IA5String`.
pub(crate) const IA5_STRING: u8 = 0x16;
/// `UTCTime`.
pub(crate) const UTC_TIME: u8 = 0x17;
/// `GeneralizedTime`.
pub(crate) const GENERALIZED_TIME: u8 = 0x18;
/// `BMPString`.
pub(crate) const BMP_STRING: u8 = 0x1e;
/// `BOOLEAN`.
pub(crate) const BOOLEAN: u8 = 0x01;

/// Context-specific constructed tag `[n]` (EXPLICIT, or IMPLICIT over a constructed type).
pub(crate) const fn context_constructed(n: u8) -> u8 {
    0xa0 | n
}

/// Context-specific primitive tag `[n]` (IMPLICIT over a primitive type).
pub(crate) const fn context_primitive(n: u8) -> u8 {
    0x80 | n
}

/// Number of bytes the DER length field takes for `len`.
pub(crate) const fn length_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else if len <= 0xff {
        2
    } else if len <= 0xffff {
        3
    } else if len <= 0xff_ffff {
        4
    } else {
        5
    }
}

/// Total size of a TLV whose content is `content_len` bytes (single-byte tags only).
pub(crate) const fn tlv_len(content_len: usize) -> usize {
    1 + length_len(content_len) + content_len
}

/// Appends a tag and a DER length.
pub(crate) fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    let n = length_len(len);
    if n == 1 {
        // Short form: `len < 0x80`, so the cast cannot truncate.
        out.push(len as u8);
    } else {
        // Long form: 0x80 | number of length bytes (at most 4 here, so it fits in a byte),
        // then the length big-endian without leading zeros.
        let bytes = (len as u64).to_be_bytes();
        let count = n - 1;
        out.push(0x80 | count as u8);
        out.extend_from_slice(&bytes[8 - count..]);
    }
}

/// Appends `tag`, the length of `content`, and `content`.
pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    push_header(out, tag, content.len());
    out.extend_from_slice(content);
}

/// Returns a new TLV.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tlv_len(content.len()));
    push_tlv(&mut out, tag, content);
    out
}

/// Returns a TLV whose content is the concatenation of `parts`, allocating once.
pub(crate) fn tlv_parts(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(tlv_len(len));
    push_header(&mut out, tag, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Appends a TLV whose content is the concatenation of `parts`.
pub(crate) fn push_tlv_parts(out: &mut Vec<u8>, tag: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    push_header(out, tag, len);
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// DER `INTEGER` for a non-negative number given big-endian (leading zeros are stripped and a
/// 0x00 is prepended when the top bit is set, so the value stays positive).
pub(crate) fn unsigned_integer(be: &[u8]) -> Vec<u8> {
    let first = be
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(be.len().saturating_sub(1));
    let digits = if be.is_empty() {
        &[0u8][..]
    } else {
        &be[first..]
    };
    if digits[0] & 0x80 != 0 {
        tlv_parts(INTEGER, &[&[0], digits])
    } else {
        tlv(INTEGER, digits)
    }
}

/// DER `INTEGER` for a small non-negative number.
pub(crate) fn small_integer(value: u64) -> Vec<u8> {
    unsigned_integer(&value.to_be_bytes())
}

/// DER `OBJECT IDENTIFIER` from its dotted form, for constants known at compile time of a
/// profile (never per device). Returns `None` when the text is not a valid OID.
pub(crate) fn oid(dotted: &str) -> Option<Vec<u8>> {
    let parsed = der::asn1::ObjectIdentifier::new(dotted).ok()?;
    Some(tlv(OBJECT_IDENTIFIER, parsed.as_bytes()))
}

/// DER `OBJECT IDENTIFIER` from its dotted form, allowing arcs up to 128 bits (`der` 0.7 stops at
/// 32): certmill's `2.25.<UUID>` arc needs them. Returns `None` when the text is not an OID.
pub(crate) fn oid_big(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u128> = dotted
        .split('.')
        .map(|arc| {
            let canonical = !arc.is_empty() && (arc == "0" || !arc.starts_with('0'));
            if canonical && arc.bytes().all(|b| b.is_ascii_digit()) {
                arc.parse::<u128>().ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    if arcs.len() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) {
        return None;
    }
    let mut body = Vec::new();
    let first = arcs[0].checked_mul(40)?.checked_add(arcs[1])?;
    for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
        // Base-128, most significant group first, high bit set on all but the last byte.
        let mut groups = [0u8; 19];
        let mut n = 0;
        let mut value = arc;
        loop {
            groups[n] = (value & 0x7f) as u8;
            n += 1;
            value >>= 7;
            if value == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            body.push(groups[i] | if i == 0 { 0 } else { 0x80 });
        }
    }
    Some(tlv(OBJECT_IDENTIFIER, &body))
}

/// DER `OBJECT IDENTIFIER` for an OID constant that is known to be valid.
pub(crate) fn oid_const(value: &der::asn1::ObjectIdentifier) -> Vec<u8> {
    tlv(OBJECT_IDENTIFIER, value.as_bytes())
}

/// `der` as a PEM `CERTIFICATE` block (RFC 7468: 64-character lines, LF line ends), byte for
/// byte what `der::pem::encode_string("CERTIFICATE", LineEnding::LF, der)` gives (tested), with
/// the variable-time `base64` encoder: a certificate is public, and the constant-time one cost
/// about 2 µs of a CSR batch's device.
pub(crate) fn pem_certificate(der: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----\n";
    const END: &[u8] = b"-----END CERTIFICATE-----\n";
    let encoded = der.len().div_ceil(3) * 4;
    let mut out = Vec::with_capacity(BEGIN.len() + encoded + encoded.div_ceil(64) + END.len());
    out.extend_from_slice(BEGIN);
    // 48 octets are one 64-character line. Encoding each line into a stack buffer skips the
    // crate's `String` sink (a chunk buffer and a UTF-8 check a call): 0.7 against 1.1 µs for
    // a 719-octet certificate.
    let mut line = [0u8; 64];
    for octets in der.chunks(48) {
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(octets, &mut line)
            .expect("48 octets encode to 64 symbols");
        out.extend_from_slice(&line[..written]);
        out.push(b'\n');
    }
    out.extend_from_slice(END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn pem_certificate_matches_the_der_crate() {
        for len in [1usize, 2, 3, 47, 48, 49, 95, 96, 97, 300, 511, 512, 1_000] {
            let der: Vec<u8> = (0..len).map(|i| (i * 131 + len) as u8).collect();
            let theirs =
                der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der).unwrap();
            assert_eq!(
                String::from_utf8(pem_certificate(&der)).unwrap(),
                theirs,
                "{len} octets"
            );
        }
    }

    #[test]
    fn lengths_match_der_crate() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536, 1 << 20] {
            let content = vec![0x41u8; len];
            let ours = tlv(OCTET_STRING, &content);
            let theirs = der::asn1::OctetString::new(content.clone())
                .unwrap()
                .to_der()
                .unwrap();
            assert_eq!(ours, theirs, "length {len}");
            assert_eq!(ours.len(), tlv_len(len));
        }
    }

    #[test]
    fn integers_match_der_crate() {
        for value in [0u64, 1, 127, 128, 255, 256, 0x7fff_ffff, u64::MAX] {
            let ours = small_integer(value);
            let theirs = value.to_der().unwrap();
            assert_eq!(ours, theirs, "value {value}");
        }
        let with_leading_zeros = unsigned_integer(&[0, 0, 0x80, 1]);
        assert_eq!(with_leading_zeros, vec![INTEGER, 3, 0, 0x80, 1]);
        let decoded = der::asn1::UintRef::from_der(&with_leading_zeros).unwrap();
        assert_eq!(decoded.as_bytes(), &[0x80, 1]);
    }

    #[test]
    fn big_oids_match_der_crate_where_it_can_and_openssl_form_beyond() {
        for dotted in [
            "1.2.840.113549.1.9.22.1",
            "2.5.4.3",
            "0.9.2342.19200300.100.1.25",
        ] {
            assert_eq!(oid_big(dotted), oid(dotted), "{dotted}");
        }
        // X.690 8.19.4: the first two arcs merge as 40 * 2 + 999 = 1079 = 0x437.
        assert_eq!(
            oid_big("2.999.1").unwrap(),
            vec![OBJECT_IDENTIFIER, 3, 0x88, 0x37, 0x01]
        );
        // 2.25.<UUID> from X.667 (the standard's example UUID). Expected bytes: what
        // `openssl asn1parse` prints back as the same dotted text.
        let encoded = oid_big("2.25.329800735698586629295641978511506172918").unwrap();
        let expected = [
            0x06, 0x14, 0x69, 0x83, 0xf0, 0x9d, 0xa7, 0xeb, 0xcf, 0xde, 0xe0, 0xc7, 0xa1, 0xa7,
            0xb2, 0xc0, 0x94, 0x8c, 0xc8, 0xf9, 0xd7, 0x76,
        ];
        assert_eq!(encoded, expected);
        for bad in ["", "1", "3.1", "1.40", "1.2.03", "1..2", "1.2.x"] {
            assert!(oid_big(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn oid_rejects_garbage() {
        assert!(oid("1.2.840.113549.1.9.22.1").is_some());
        assert!(oid("not an oid").is_none());
        assert!(oid("").is_none());
    }
}
