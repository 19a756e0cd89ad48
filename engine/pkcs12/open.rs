//! Opening PKCS#12 files (RFC 7292): MAC check, bag decryption, and the check that the private
//! key belongs to the leaf certificate.
//!
//! [`open`] reads what [`build`](super::build) writes and what `openssl pkcs12 -export` of
//! OpenSSL 3 writes by default or with `-keypbe`/`-certpbe` `AES-128-CBC` or `PBE-SHA1-3DES`
//! and `-macalg sha1`: password integrity mode with an HMAC-SHA256 or HMAC-SHA1 MAC keyed by
//! the PKCS#12 KDF, bags encrypted with PBES2 (PBKDF2-HMAC-SHA256 with AES-256-CBC or
//! AES-128-CBC) or pbeWithSHAAnd3-KeyTripleDES-CBC. The MAC is checked before anything is
//! decrypted.
//!
//! It reads DER only: BER (indefinite lengths, constructed OCTET STRINGs, as some Java and
//! Windows versions write) is reported as malformed. Public-key integrity or privacy mode,
//! PBMAC1, RC2, RC4, PBKDF2 with a PRF other than HMAC-SHA256, other MAC digests and keys other
//! than P-256, P-384 and RSA are reported as unsupported algorithms. CRL, secret and nested
//! SafeContents bags and non-X.509 certificate bags are skipped. Every structure is parsed with
//! the `der` crate, errors name the structure and carry a byte offset, and hostile input gives
//! an error, never a panic; iteration counts above [`MAX_ITERATIONS`] are refused before any
//! key derivation runs.

use core::num::NonZeroU32;

use aws_lc_rs::signature::KeyPair as _;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, ErrorKind, Length, Reader, SliceReader, Tag, TagNumber, Tagged};
use hmac::digest::generic_array::GenericArray;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{kdf, oids, MacKey, Pkcs12Error, Pkcs12Password};

/// Highest iteration count [`open`] accepts, for the MAC and for each bag: about 5000 times
/// OpenSSL 3's 2048, a few seconds of key derivation. It bounds the work a hostile file can
/// demand before its MAC can even be checked.
pub(crate) const MAX_ITERATIONS: u32 = 10_000_000;

/// Object identifiers read but not written by [`build`](super::build).
mod read_oids {
    use der::asn1::ObjectIdentifier as Oid;

    /// `keyBag` (RFC 7292 §4.2.1): an unencrypted PKCS#8 PrivateKeyInfo.
    pub(super) const KEY_BAG: Oid = Oid::new_unwrap("1.2.840.113549.1.12.10.1.1");
    /// `aes128-CBC` (NIST).
    pub(super) const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
    /// `id-hmacWithSHA1` (RFC 8018 B.1.1), the default PBKDF2 PRF.
    pub(super) const HMAC_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.2.7");
    /// `id-ecPublicKey` (RFC 5480 §2.1.1).
    pub(super) const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    /// `secp256r1` (RFC 5480 §2.1.1.1).
    pub(super) const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    /// `secp384r1` (RFC 5480 §2.1.1.1).
    pub(super) const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
    /// `rsaEncryption` (RFC 8017 Appendix C).
    pub(super) const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
}

/// What a PKCS#12 holds, after its MAC has been checked and its bags decrypted.
pub struct OpenedPkcs12 {
    /// The private key as PKCS#8 PrivateKeyInfo DER, exactly as it was in its bag.
    pub private_key_pkcs8: Zeroizing<Vec<u8>>,
    /// The certificates as DER, leaf first: the one whose localKeyId matches the key bag's, or
    /// else the one whose public key is the key's; then the others in file order.
    pub certificates: Vec<Vec<u8>>,
    /// The key bag's friendlyName, or else the leaf certificate bag's; `None` if neither has
    /// one.
    pub friendly_name: Option<String>,
}

impl core::fmt::Debug for OpenedPkcs12 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedPkcs12")
            .field("private_key_pkcs8", &"<redacted>")
            .field(
                "certificates",
                &format_args!("{} DER certificates", self.certificates.len()),
            )
            .field("friendly_name", &self.friendly_name)
            .finish()
    }
}

/// Opens a PFX: verifies the MAC (HMAC-SHA256 with the PKCS#12 KDF ID=3 over the BMPString
/// password, or HMAC-SHA1 for legacy files), decrypts PBES2 (PBKDF2-HMAC-SHA256 +
/// AES-256-CBC / AES-128-CBC) and pbeWithSHAAnd3-KeyTripleDES-CBC bags, collects the
/// pkcs8ShroudedKeyBag / keyBag and certBags (x509Certificate), and checks that the private key
/// belongs to the leaf certificate.
///
/// The file must hold exactly one private key ([`Pkcs12Error::NoPrivateKey`],
/// [`Pkcs12Error::MultiplePrivateKeys`]) and at least one certificate
/// ([`Pkcs12Error::NoCertificateBag`]). A wrong password and an altered file both give
/// [`Pkcs12Error::MacMismatch`]; a key that is not the leaf's gives
/// [`Pkcs12Error::KeyMismatch`]. The PBES2 password is the UTF-8 password, as OpenSSL 3 uses it.
pub fn open(pfx_der: &[u8], password: &Pkcs12Password) -> Result<OpenedPkcs12, Pkcs12Error> {
    let pfx = parse_pfx(pfx_der)?;

    // Unencrypted SafeContents are parsed now; encrypted ones wait for the MAC check. `slots`
    // keeps the authSafe order, which is the order of the certificates after the leaf.
    let mut slots = Vec::new();
    let mut auth_safe = Der::nested_in(pfx.auth_safe, "authSafe");
    let mut content_infos = auth_safe.sequence("AuthenticatedSafe")?;
    auth_safe.finish()?;
    while !content_infos.is_finished() {
        slots.push(parse_content_info(&mut content_infos)?);
    }

    // Key derivation, then the MAC check, before any decryption.
    let mut keys = Keys::new(password);
    let pending_pbes2: Vec<&Scheme> = slots
        .iter()
        .flat_map(|slot| match slot {
            Slot::Bags(bags) => bags
                .iter()
                .filter_map(|bag| match &bag.kind {
                    BagKind::ShroudedKey(sealed) => Some(&sealed.scheme),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Slot::Encrypted(sealed) => vec![&sealed.scheme],
        })
        .collect();
    let mac_key = keys.mac_key(&pfx.mac, &pending_pbes2);
    if !mac_matches(&mac_key, pfx.auth_safe.bytes, pfx.mac.tag) {
        return Err(Pkcs12Error::MacMismatch);
    }

    let mut bags = Vec::new();
    for slot in slots {
        match slot {
            Slot::Bags(plain) => bags.extend(plain),
            Slot::Encrypted(sealed) => {
                let plaintext = keys.decrypt(&sealed, "encrypted SafeContents")?;
                let mut contents = Der::new(&plaintext, "decrypted SafeContents");
                parse_safe_contents(&mut contents, &mut bags)?;
                contents.finish()?;
            }
        }
    }

    let mut key = None;
    let mut key_count = 0usize;
    let mut certs = Vec::new();
    for bag in bags {
        match bag.kind {
            BagKind::Cert(der) => certs.push((der, bag.attributes)),
            BagKind::Key(pkcs8) => {
                key_count += 1;
                key = Some((pkcs8, bag.attributes));
            }
            BagKind::ShroudedKey(sealed) => {
                key_count += 1;
                // Only the first key is decrypted: a second one is an error anyway.
                if key.is_none() {
                    let pkcs8 = keys.decrypt(&sealed, "pkcs8ShroudedKeyBag")?;
                    key = Some((pkcs8, bag.attributes));
                }
            }
        }
    }
    if key_count > 1 {
        return Err(Pkcs12Error::MultiplePrivateKeys { count: key_count });
    }
    let Some((private_key_pkcs8, key_attributes)) = key else {
        return Err(Pkcs12Error::NoPrivateKey);
    };
    if certs.is_empty() {
        return Err(Pkcs12Error::NoCertificateBag);
    }

    let key_public = public_key(&private_key_pkcs8)?;
    let leaf = leaf_index(&key_public, key_attributes.local_key_id.as_deref(), &certs)?;
    let friendly_name = key_attributes
        .friendly_name
        .or_else(|| certs[leaf].1.friendly_name.clone());
    let leaf_der = certs.remove(leaf).0;
    let mut certificates = Vec::with_capacity(certs.len() + 1);
    certificates.push(leaf_der);
    certificates.extend(certs.into_iter().map(|(der, _)| der));
    Ok(OpenedPkcs12 {
        private_key_pkcs8,
        certificates,
        friendly_name,
    })
}

// ---------------------------------------------------------------------------------------------
// DER reading.

/// A DER reader over a run of encoded values (a constructed value's contents), which knows
/// where that run starts in the outermost buffer (the file, or a decrypted plaintext), so that
/// errors carry offsets into that buffer.
struct Der<'a> {
    bytes: &'a [u8],
    /// How many bytes of `bytes` have been read.
    read: usize,
    /// Offset of `bytes[0]` in the outermost buffer.
    base: usize,
    /// The structure being read, for error messages.
    what: &'static str,
}

/// The contents of one value and where they start in the outermost buffer.
#[derive(Clone, Copy)]
struct Contents<'a> {
    bytes: &'a [u8],
    base: usize,
}

impl<'a> Der<'a> {
    /// A reader over a whole buffer.
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self {
            bytes,
            read: 0,
            base: 0,
            what,
        }
    }

    /// A reader over contents found earlier.
    fn nested_in(contents: Contents<'a>, what: &'static str) -> Self {
        Self {
            bytes: contents.bytes,
            read: 0,
            base: contents.base,
            what,
        }
    }

    /// `defect` (positioned relative to the unread part) as an error at its place in the
    /// outermost buffer.
    fn malformed(&self, defect: der::Error) -> Pkcs12Error {
        let relative = defect
            .position()
            .and_then(|position| usize::try_from(position).ok())
            .unwrap_or(0);
        let absolute = self.base.saturating_add(self.read).saturating_add(relative);
        Pkcs12Error::Malformed {
            what: self.what,
            defect: defect
                .kind()
                .at(Length::try_from(absolute).unwrap_or(Length::MAX)),
        }
    }

    /// An error of `kind` at the next unread byte.
    fn error(&self, kind: ErrorKind) -> Pkcs12Error {
        self.malformed(kind.at(Length::ZERO))
    }

    /// Decodes one value of type `T`.
    fn decode<T: Decode<'a>>(&mut self) -> Result<T, Pkcs12Error> {
        let rest = self.bytes.get(self.read..).unwrap_or_default();
        let mut reader = SliceReader::new(rest).map_err(|defect| self.malformed(defect))?;
        let value = T::decode(&mut reader).map_err(|defect| self.malformed(defect))?;
        let consumed =
            usize::try_from(reader.position()).map_err(|defect| self.malformed(defect))?;
        self.read = self.read.saturating_add(consumed);
        Ok(value)
    }

    /// Reads one value with tag `tag`; returns its whole encoding and its contents.
    fn tagged(&mut self, tag: Tag) -> Result<(&'a [u8], Contents<'a>), Pkcs12Error> {
        let start = self.read;
        let any: AnyRef<'a> = self.decode()?;
        if any.tag() != tag {
            self.read = start;
            return Err(self.error(ErrorKind::TagUnexpected {
                expected: Some(tag),
                actual: any.tag(),
            }));
        }
        let encoding = self.bytes.get(start..self.read).unwrap_or_default();
        let contents_start = self.read.saturating_sub(any.value().len());
        Ok((
            encoding,
            Contents {
                bytes: any.value(),
                base: self.base.saturating_add(contents_start),
            },
        ))
    }

    /// Reads one value with tag `tag` and returns a reader over its contents.
    fn nested(&mut self, tag: Tag, what: &'static str) -> Result<Der<'a>, Pkcs12Error> {
        let (_, contents) = self.tagged(tag)?;
        Ok(Der::nested_in(contents, what))
    }

    fn sequence(&mut self, what: &'static str) -> Result<Der<'a>, Pkcs12Error> {
        self.nested(Tag::Sequence, what)
    }

    /// Reads `[number] EXPLICIT`.
    fn explicit(&mut self, number: TagNumber, what: &'static str) -> Result<Der<'a>, Pkcs12Error> {
        self.nested(
            Tag::ContextSpecific {
                constructed: true,
                number,
            },
            what,
        )
    }

    fn octet_string(&mut self) -> Result<&'a [u8], Pkcs12Error> {
        Ok(self.decode::<OctetStringRef<'a>>()?.as_bytes())
    }

    fn oid(&mut self) -> Result<ObjectIdentifier, Pkcs12Error> {
        self.decode()
    }

    /// Reads an iteration count: an INTEGER from 1 to [`MAX_ITERATIONS`].
    fn iterations(&mut self, what: &'static str) -> Result<NonZeroU32, Pkcs12Error> {
        let start = self.read;
        let count: u32 = self.decode()?;
        let Some(count) = NonZeroU32::new(count) else {
            self.read = start;
            return Err(self.error(ErrorKind::Value { tag: Tag::Integer }));
        };
        if count.get() > MAX_ITERATIONS {
            return Err(Pkcs12Error::IterationsAboveLimit {
                what,
                iterations: count.get(),
                limit: MAX_ITERATIONS,
            });
        }
        Ok(count)
    }

    /// Reads `AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }`;
    /// returns the OID and a reader over the parameters, for the caller to read and finish.
    fn algorithm(
        &mut self,
        what: &'static str,
    ) -> Result<(ObjectIdentifier, Der<'a>), Pkcs12Error> {
        let mut sequence = self.sequence(what)?;
        let oid = sequence.oid()?;
        Ok((oid, sequence))
    }

    /// Accepts absent or NULL parameters and nothing else.
    fn null_or_absent(mut self) -> Result<(), Pkcs12Error> {
        if !self.is_finished() {
            self.decode::<der::asn1::Null>()?;
        }
        self.finish()
    }

    fn peek_tag(&self) -> Option<Tag> {
        self.bytes
            .get(self.read)
            .and_then(|&byte| Tag::try_from(byte).ok())
    }

    fn is_finished(&self) -> bool {
        self.read >= self.bytes.len()
    }

    /// Checks that nothing is left.
    fn finish(self) -> Result<(), Pkcs12Error> {
        if self.is_finished() {
            return Ok(());
        }
        let decoded = Length::try_from(self.read).unwrap_or(Length::MAX);
        let remaining =
            Length::try_from(self.bytes.len().saturating_sub(self.read)).unwrap_or(Length::MAX);
        Err(self.error(ErrorKind::TrailingData { decoded, remaining }))
    }
}

// ---------------------------------------------------------------------------------------------
// The PFX structure.

/// The parts of `PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, macData
/// MacData OPTIONAL }` (RFC 7292 §4) that [`open`] uses.
struct Pfx<'a> {
    /// The content octets of the authSafe `Data`: the DER of the AuthenticatedSafe, which is
    /// what the MAC covers.
    auth_safe: Contents<'a>,
    mac: MacData<'a>,
}

/// `MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }`.
struct MacData<'a> {
    digest: MacDigest,
    tag: &'a [u8],
    salt: &'a [u8],
    iterations: NonZeroU32,
}

/// The MAC's digest algorithm.
#[derive(Clone, Copy)]
enum MacDigest {
    Sha1,
    Sha256,
}

fn parse_pfx(pfx_der: &[u8]) -> Result<Pfx<'_>, Pkcs12Error> {
    let mut file = Der::new(pfx_der, "PFX");
    let mut pfx = file.sequence("PFX")?;
    file.finish()?;
    let version_at = pfx.read;
    let version: u8 = pfx.decode()?;
    if version != 3 {
        pfx.read = version_at;
        return Err(pfx.error(ErrorKind::Value { tag: Tag::Integer }));
    }

    // authSafe ContentInfo ::= { id-data, [0] EXPLICIT OCTET STRING } in password integrity
    // mode; id-signedData would be public-key integrity mode.
    let (content_type, mut content) = content_info(&mut pfx, "authSafe ContentInfo")?;
    if content_type != oids::DATA {
        return Err(Pkcs12Error::UnsupportedAlgorithm {
            what: "authSafe content type (public-key integrity mode?)",
            oid: content_type,
        });
    }
    let (_, auth_safe) = content.tagged(Tag::OctetString)?;
    content.finish()?;

    if pfx.is_finished() {
        return Err(pfx.error(ErrorKind::Incomplete {
            expected_len: Length::ONE,
            actual_len: Length::ZERO,
        }));
    }
    let mut mac_data = pfx.sequence("macData")?;
    pfx.finish()?;
    let mut digest_info = mac_data.sequence("macData DigestInfo")?;
    let (digest_oid, parameters) = digest_info.algorithm("macData digest algorithm")?;
    parameters.null_or_absent()?;
    let digest = if digest_oid == oids::SHA256 {
        MacDigest::Sha256
    } else if digest_oid == oids::SHA1 {
        MacDigest::Sha1
    } else {
        return Err(Pkcs12Error::UnsupportedAlgorithm {
            what: "MAC digest",
            oid: digest_oid,
        });
    };
    let tag = digest_info.octet_string()?;
    digest_info.finish()?;
    let salt = mac_data.octet_string()?;
    let iterations = if mac_data.is_finished() {
        NonZeroU32::MIN
    } else {
        mac_data.iterations("MAC")?
    };
    mac_data.finish()?;
    Ok(Pfx {
        auth_safe,
        mac: MacData {
            digest,
            tag,
            salt,
            iterations,
        },
    })
}

/// Reads `ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }` and returns
/// the type and a reader over the content.
fn content_info<'a>(
    der: &mut Der<'a>,
    what: &'static str,
) -> Result<(ObjectIdentifier, Der<'a>), Pkcs12Error> {
    let mut info = der.sequence(what)?;
    let content_type = info.oid()?;
    let content = info.explicit(TagNumber::N0, what)?;
    info.finish()?;
    Ok((content_type, content))
}

/// One ContentInfo of the AuthenticatedSafe.
enum Slot {
    /// A `Data` SafeContents, already parsed.
    Bags(Vec<Bag>),
    /// An `EncryptedData` SafeContents, not yet decrypted.
    Encrypted(Sealed),
}

/// Reads one ContentInfo of the AuthenticatedSafe: `Data` (parsed at once) or `EncryptedData`
/// (`SEQUENCE { version INTEGER, encryptedContentInfo SEQUENCE { contentType id-data,
/// contentEncryptionAlgorithm, encryptedContent [0] IMPLICIT OCTET STRING } }`).
fn parse_content_info(der: &mut Der<'_>) -> Result<Slot, Pkcs12Error> {
    let (content_type, mut content) = content_info(der, "AuthenticatedSafe ContentInfo")?;
    if content_type == oids::DATA {
        let mut safe_contents = content.nested(Tag::OctetString, "SafeContents")?;
        content.finish()?;
        let mut bags = Vec::new();
        parse_safe_contents(&mut safe_contents, &mut bags)?;
        safe_contents.finish()?;
        Ok(Slot::Bags(bags))
    } else if content_type == oids::ENCRYPTED_DATA {
        let mut encrypted_data = content.sequence("EncryptedData")?;
        content.finish()?;
        // Version 0 (RFC 7292 uses no unprotected attributes, which would make it 2).
        let version_at = encrypted_data.read;
        let version: u8 = encrypted_data.decode()?;
        if version != 0 {
            encrypted_data.read = version_at;
            return Err(encrypted_data.error(ErrorKind::Value { tag: Tag::Integer }));
        }
        let mut info = encrypted_data.sequence("EncryptedContentInfo")?;
        encrypted_data.finish()?;
        let inner_type = info.oid()?;
        if inner_type != oids::DATA {
            return Err(Pkcs12Error::UnsupportedAlgorithm {
                what: "EncryptedData content type",
                oid: inner_type,
            });
        }
        let scheme = parse_scheme(&mut info)?;
        let (_, ciphertext) = info.tagged(Tag::ContextSpecific {
            constructed: false,
            number: TagNumber::N0,
        })?;
        info.finish()?;
        Ok(Slot::Encrypted(Sealed {
            scheme,
            ciphertext: ciphertext.bytes.to_vec(),
        }))
    } else {
        Err(Pkcs12Error::UnsupportedAlgorithm {
            what: "AuthenticatedSafe content type (public-key privacy mode?)",
            oid: content_type,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Bags.

/// One SafeBag [`open`] keeps.
struct Bag {
    kind: BagKind,
    attributes: Attributes,
}

enum BagKind {
    /// A certBag holding an X.509 certificate (DER).
    Cert(Vec<u8>),
    /// A keyBag: an unencrypted PKCS#8 PrivateKeyInfo.
    Key(Zeroizing<Vec<u8>>),
    /// A pkcs8ShroudedKeyBag: an EncryptedPrivateKeyInfo.
    ShroudedKey(Sealed),
}

/// The bag attributes [`open`] reads.
#[derive(Default)]
struct Attributes {
    local_key_id: Option<Vec<u8>>,
    friendly_name: Option<String>,
}

/// Reads `SafeContents ::= SEQUENCE OF SafeBag` and appends the bags it keeps to `bags`.
fn parse_safe_contents(der: &mut Der<'_>, bags: &mut Vec<Bag>) -> Result<(), Pkcs12Error> {
    let mut list = der.sequence("SafeContents")?;
    while !list.is_finished() {
        // SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT, bagAttributes SET OF OPTIONAL }
        let mut bag = list.sequence("SafeBag")?;
        let bag_id = bag.oid()?;
        let mut value = bag.explicit(TagNumber::N0, "SafeBag value")?;
        let attributes = if bag.is_finished() {
            Attributes::default()
        } else {
            parse_attributes(bag.nested(Tag::Set, "bag attributes")?)?
        };
        bag.finish()?;

        let kind = if bag_id == read_oids::KEY_BAG {
            let (pkcs8, _) = value.tagged(Tag::Sequence)?;
            value.finish()?;
            BagKind::Key(Zeroizing::new(pkcs8.to_vec()))
        } else if bag_id == oids::SHROUDED_KEY_BAG {
            // EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm,
            //     encryptedData OCTET STRING }
            let mut info = value.sequence("EncryptedPrivateKeyInfo")?;
            value.finish()?;
            let scheme = parse_scheme(&mut info)?;
            let ciphertext = info.octet_string()?.to_vec();
            info.finish()?;
            BagKind::ShroudedKey(Sealed { scheme, ciphertext })
        } else if bag_id == oids::CERT_BAG {
            // CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT ANY }
            let mut cert_bag = value.sequence("CertBag")?;
            value.finish()?;
            let cert_type = cert_bag.oid()?;
            let mut cert_value = cert_bag.explicit(TagNumber::N0, "CertBag value")?;
            cert_bag.finish()?;
            if cert_type != oids::X509_CERTIFICATE {
                continue;
            }
            let cert = cert_value.octet_string()?.to_vec();
            cert_value.finish()?;
            BagKind::Cert(cert)
        } else {
            // crlBag, secretBag, safeContentsBag or unknown: not what `open` returns.
            continue;
        };
        bags.push(Bag { kind, attributes });
    }
    list.finish()
}

/// Reads `SET OF PKCS12Attribute`, `PKCS12Attribute ::= SEQUENCE { attrId OID, attrValues SET
/// OF ANY }`, keeping the first value of localKeyId and friendlyName.
fn parse_attributes(mut set: Der<'_>) -> Result<Attributes, Pkcs12Error> {
    let mut attributes = Attributes::default();
    while !set.is_finished() {
        let mut attribute = set.sequence("bag attribute")?;
        let id = attribute.oid()?;
        let mut values = attribute.nested(Tag::Set, "bag attribute values")?;
        attribute.finish()?;
        if id == oids::LOCAL_KEY_ID && attributes.local_key_id.is_none() {
            attributes.local_key_id = Some(values.octet_string()?.to_vec());
        } else if id == oids::FRIENDLY_NAME && attributes.friendly_name.is_none() {
            values.what = "friendlyName";
            let start = values.read;
            let (_, name) = values.tagged(Tag::BmpString)?;
            let units = name.bytes.chunks_exact(2);
            let decoded = if units.remainder().is_empty() {
                char::decode_utf16(units.map(|unit| u16::from_be_bytes([unit[0], unit[1]])))
                    .collect::<Result<String, _>>()
                    .ok()
            } else {
                None
            };
            let Some(decoded) = decoded else {
                values.read = start;
                return Err(values.error(ErrorKind::Value {
                    tag: Tag::BmpString,
                }));
            };
            attributes.friendly_name = Some(decoded);
        }
    }
    set.finish()?;
    Ok(attributes)
}

// ---------------------------------------------------------------------------------------------
// Encryption schemes and keys.

/// Ciphertext and how it was encrypted.
struct Sealed {
    scheme: Scheme,
    ciphertext: Vec<u8>,
}

/// A supported password-based encryption scheme with its parameters.
enum Scheme {
    /// PBES2 (RFC 8018 §6.2) with PBKDF2-HMAC-SHA256 and AES-CBC.
    Pbes2 {
        salt: Vec<u8>,
        iterations: NonZeroU32,
        cipher: AesCbc,
        iv: [u8; 16],
    },
    /// pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix C).
    Sha1TripleDes {
        salt: Vec<u8>,
        iterations: NonZeroU32,
    },
}

/// The AES variant of a PBES2 scheme.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AesCbc {
    Aes128,
    Aes256,
}

impl AesCbc {
    fn key_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }
}

/// Reads an encryption AlgorithmIdentifier: PBES2 or pbeWithSHAAnd3-KeyTripleDES-CBC.
fn parse_scheme(der: &mut Der<'_>) -> Result<Scheme, Pkcs12Error> {
    let (oid, mut parameters) = der.algorithm("encryption algorithm")?;
    let scheme = if oid == oids::PBES2 {
        parse_pbes2(&mut parameters)?
    } else if oid == oids::PBE_SHA1_3DES {
        // pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }
        let mut pbe = parameters.sequence("pkcs-12PbeParams")?;
        let salt = pbe.octet_string()?.to_vec();
        let iterations = pbe.iterations("pbeWithSHAAnd3-KeyTripleDES-CBC")?;
        pbe.finish()?;
        Scheme::Sha1TripleDes { salt, iterations }
    } else {
        return Err(Pkcs12Error::UnsupportedAlgorithm {
            what: "bag encryption",
            oid,
        });
    };
    parameters.finish()?;
    Ok(scheme)
}

/// Reads `PBES2-params ::= SEQUENCE { keyDerivationFunc, encryptionScheme }` (RFC 8018 A.4)
/// with `PBKDF2-params ::= SEQUENCE { salt OCTET STRING, iterationCount INTEGER, keyLength
/// INTEGER OPTIONAL, prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }` (A.2).
fn parse_pbes2(parameters: &mut Der<'_>) -> Result<Scheme, Pkcs12Error> {
    let mut pbes2 = parameters.sequence("PBES2 parameters")?;
    let (kdf_oid, mut kdf_parameters) = pbes2.algorithm("PBES2 key derivation")?;
    if kdf_oid != oids::PBKDF2 {
        return Err(Pkcs12Error::UnsupportedAlgorithm {
            what: "PBES2 key derivation",
            oid: kdf_oid,
        });
    }
    let mut pbkdf2 = kdf_parameters.sequence("PBKDF2 parameters")?;
    kdf_parameters.finish()?;
    // A salt of the `otherSource` choice is not an OCTET STRING and fails here as malformed.
    let salt = pbkdf2.octet_string()?.to_vec();
    let iterations = pbkdf2.iterations("PBKDF2")?;
    // keyLength, if present, must be the cipher's, which comes later; the error is made here,
    // where it points at the INTEGER.
    let key_length = if pbkdf2.peek_tag() == Some(Tag::Integer) {
        let defect = pbkdf2.error(ErrorKind::Value { tag: Tag::Integer });
        Some((pbkdf2.decode::<u32>()?, defect))
    } else {
        None
    };
    let prf = if pbkdf2.is_finished() {
        read_oids::HMAC_WITH_SHA1
    } else {
        let (prf, prf_parameters) = pbkdf2.algorithm("PBKDF2 PRF")?;
        prf_parameters.null_or_absent()?;
        prf
    };
    pbkdf2.finish()?;
    if prf != oids::HMAC_WITH_SHA256 {
        return Err(Pkcs12Error::UnsupportedAlgorithm {
            what: "PBKDF2 PRF",
            oid: prf,
        });
    }

    let (cipher_oid, mut cipher_parameters) = pbes2.algorithm("PBES2 encryption scheme")?;
    pbes2.finish()?;
    let cipher = if cipher_oid == oids::AES256_CBC {
        AesCbc::Aes256
    } else if cipher_oid == read_oids::AES128_CBC {
        AesCbc::Aes128
    } else {
        return Err(Pkcs12Error::UnsupportedAlgorithm {
            what: "PBES2 encryption scheme",
            oid: cipher_oid,
        });
    };
    let iv_at = cipher_parameters.read;
    let iv = cipher_parameters.octet_string()?;
    let Ok(iv) = <[u8; 16]>::try_from(iv) else {
        cipher_parameters.read = iv_at;
        return Err(cipher_parameters.error(ErrorKind::Length {
            tag: Tag::OctetString,
        }));
    };
    cipher_parameters.finish()?;
    if let Some((length, defect)) = key_length {
        if usize::try_from(length).ok() != Some(cipher.key_len()) {
            return Err(defect);
        }
    }
    Ok(Scheme::Pbes2 {
        salt,
        iterations,
        cipher,
        iv,
    })
}

/// The password in both encodings and the PBKDF2 keys derived so far, so that each
/// (salt, iterations) is derived once.
struct Keys<'p> {
    password: &'p Pkcs12Password,
    /// The PKCS#12 KDF password: BMPString with terminator.
    bmp: Zeroizing<Vec<u8>>,
    pbkdf2: Vec<DerivedKey>,
}

/// A PBKDF2-HMAC-SHA256 output (dkLen 32; AES-128 takes its first 16 bytes, which is PBKDF2
/// with dkLen 16).
struct DerivedKey {
    salt: Vec<u8>,
    iterations: NonZeroU32,
    key: Zeroizing<[u8; 32]>,
}

impl<'p> Keys<'p> {
    fn new(password: &'p Pkcs12Password) -> Self {
        Self {
            password,
            bmp: kdf::bmp_password(password.as_str()),
            pbkdf2: Vec::new(),
        }
    }

    /// The MAC key. A SHA-256 MAC key is derived in the lockstep loop of
    /// `kdf::derive_openssl3_keys` together with up to two PBES2 keys of `pending` that share
    /// its iteration count (in files of `build` and OpenSSL 3, exactly the key bag's and the
    /// certificates' keys), which are kept for [`Keys::decrypt`].
    fn mac_key(&mut self, mac: &MacData<'_>, pending: &[&Scheme]) -> MacKey {
        match mac.digest {
            MacDigest::Sha1 => {
                let mut key = Zeroizing::new([0u8; 20]);
                kdf::pkcs12_kdf::<Sha1>(
                    &self.bmp,
                    mac.salt,
                    kdf::Pkcs12KdfId::Mac,
                    mac.iterations,
                    &mut key[..],
                );
                MacKey::Sha1(key)
            }
            MacDigest::Sha256 => {
                let mut salts = pending.iter().filter_map(|scheme| match scheme {
                    Scheme::Pbes2 {
                        salt, iterations, ..
                    } if *iterations == mac.iterations => Some(salt.as_slice()),
                    _ => None,
                });
                let Some(first) = salts.next() else {
                    let mut key = Zeroizing::new([0u8; 32]);
                    kdf::pkcs12_kdf::<Sha256>(
                        &self.bmp,
                        mac.salt,
                        kdf::Pkcs12KdfId::Mac,
                        mac.iterations,
                        &mut key[..],
                    );
                    return MacKey::Sha256(key);
                };
                let second = salts.find(|salt| *salt != first).unwrap_or(first);
                let keys = kdf::derive_openssl3_keys(&kdf::Openssl3KdfInput {
                    password_utf8: self.password.as_str().as_bytes(),
                    password_bmp: &self.bmp,
                    key_bag_salt: first,
                    cert_bag_salt: second,
                    mac_salt: mac.salt,
                    iterations: mac.iterations,
                });
                self.remember(first, mac.iterations, &keys.key_bag_key);
                if second != first {
                    self.remember(second, mac.iterations, &keys.cert_bag_key);
                }
                MacKey::Sha256(Zeroizing::new(keys.mac_key))
            }
        }
    }

    fn remember(&mut self, salt: &[u8], iterations: NonZeroU32, key: &[u8; 32]) {
        self.pbkdf2.push(DerivedKey {
            salt: salt.to_vec(),
            iterations,
            key: Zeroizing::new(*key),
        });
    }

    /// PBKDF2-HMAC-SHA256 with the UTF-8 password, dkLen 32.
    fn pbkdf2(&mut self, salt: &[u8], iterations: NonZeroU32) -> Zeroizing<[u8; 32]> {
        if let Some(derived) = self
            .pbkdf2
            .iter()
            .find(|derived| derived.salt == salt && derived.iterations == iterations)
        {
            return Zeroizing::new(*derived.key);
        }
        // The lockstep loop is the crate's one PBKDF2; for a single salt it runs the same chain
        // twice and a MAC chain for nothing, which only files unlike ours and OpenSSL's pay.
        let keys = kdf::derive_openssl3_keys(&kdf::Openssl3KdfInput {
            password_utf8: self.password.as_str().as_bytes(),
            password_bmp: &self.bmp,
            key_bag_salt: salt,
            cert_bag_salt: salt,
            mac_salt: salt,
            iterations,
        });
        self.remember(salt, iterations, &keys.key_bag_key);
        Zeroizing::new(keys.key_bag_key)
    }

    /// Decrypts `sealed`; `what` names it in the error.
    fn decrypt(
        &mut self,
        sealed: &Sealed,
        what: &'static str,
    ) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
        match &sealed.scheme {
            Scheme::Pbes2 {
                salt,
                iterations,
                cipher,
                iv,
            } => {
                let key = self.pbkdf2(salt, *iterations);
                match cipher {
                    AesCbc::Aes128 => cbc_decrypt::<cbc::Decryptor<aes::Aes128>>(
                        &key[..16],
                        iv,
                        &sealed.ciphertext,
                        what,
                    ),
                    AesCbc::Aes256 => cbc_decrypt::<cbc::Decryptor<aes::Aes256>>(
                        &key[..],
                        iv,
                        &sealed.ciphertext,
                        what,
                    ),
                }
            }
            Scheme::Sha1TripleDes { salt, iterations } => {
                // RFC 7292 Appendix B.3: key ID 1 (24 bytes), IV ID 2 (8 bytes), SHA-1.
                let mut key = Zeroizing::new([0u8; 24]);
                let mut iv = [0u8; 8];
                let id = kdf::Pkcs12KdfId::Key;
                kdf::pkcs12_kdf::<Sha1>(&self.bmp, salt, id, *iterations, &mut key[..]);
                let id = kdf::Pkcs12KdfId::Iv;
                kdf::pkcs12_kdf::<Sha1>(&self.bmp, salt, id, *iterations, &mut iv);
                cbc_decrypt::<cbc::Decryptor<des::TdesEde3>>(
                    &key[..],
                    &iv,
                    &sealed.ciphertext,
                    what,
                )
            }
        }
    }
}

/// CBC decryption with PKCS#7 padding, in a buffer that is zeroized whatever happens.
fn cbc_decrypt<C: BlockDecryptMut + KeyIvInit>(
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    // Key and IV lengths are fixed by the callers (and the IV length checked when parsed), so
    // this cannot fail; an error is still an error, not a panic.
    let decryptor =
        C::new_from_slices(key, iv).map_err(|_| Pkcs12Error::DecryptionFailed { what })?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let length = decryptor
        .decrypt_padded_mut::<Pkcs7>(&mut buffer)
        .map_err(|_| Pkcs12Error::DecryptionFailed { what })?
        .len();
    buffer.truncate(length);
    Ok(buffer)
}

/// Checks the HMAC over the AuthenticatedSafe in constant time (`Mac::verify_slice`).
fn mac_matches(key: &MacKey, auth_safe: &[u8], tag: &[u8]) -> bool {
    match key {
        MacKey::Sha1(key) => hmac_matches::<Hmac<Sha1>, 20>(key, auth_safe, tag),
        MacKey::Sha256(key) => hmac_matches::<Hmac<Sha256>, 32>(key, auth_safe, tag),
    }
}

/// HMAC check with an `N`-byte key, `N` at most the 64-byte block of SHA-1 and SHA-256.
fn hmac_matches<M: Mac + KeyInit, const N: usize>(
    key: &[u8; N],
    message: &[u8],
    tag: &[u8],
) -> bool {
    const { assert!(N <= 64, "HMAC key longer than the SHA-1/SHA-256 block") };
    // As in `build`: the zero-padded 64-byte block is the same HMAC key (RFC 2104) and goes
    // through the infallible `KeyInit::new`.
    let mut block = Zeroizing::new([0u8; 64]);
    block[..N].copy_from_slice(key);
    let mut mac = <M as KeyInit>::new(GenericArray::from_slice(&block[..]));
    mac.update(message);
    mac.verify_slice(tag).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Key and leaf certificate.

/// A public key as a certificate's SubjectPublicKeyInfo holds it.
#[derive(PartialEq, Eq)]
struct PublicKeyBits {
    /// `id-ecPublicKey` or `rsaEncryption`.
    algorithm: ObjectIdentifier,
    /// The subjectPublicKey BIT STRING contents: the uncompressed point for EC, the
    /// `RSAPublicKey` DER for RSA.
    bits: Vec<u8>,
}

/// Derives the public key of a PKCS#8 private key with aws-lc-rs, which also checks that an
/// EC key's embedded public key, if any, belongs to it.
fn public_key(pkcs8: &[u8]) -> Result<PublicKeyBits, Pkcs12Error> {
    let info = pkcs8::PrivateKeyInfo::from_der(pkcs8).map_err(|defect| Pkcs12Error::Malformed {
        what: "private key (PKCS#8 PrivateKeyInfo)",
        defect,
    })?;
    let algorithm = info.algorithm.oid;
    let bits = if algorithm == read_oids::EC_PUBLIC_KEY {
        let curve = info
            .algorithm
            .parameters
            .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
        let signing = match curve {
            Some(curve) if curve == read_oids::SECP256R1 => {
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING
            }
            Some(curve) if curve == read_oids::SECP384R1 => {
                &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING
            }
            // Explicit curve parameters or another named curve.
            other => {
                return Err(Pkcs12Error::UnsupportedAlgorithm {
                    what: "EC private key curve",
                    oid: other.unwrap_or(algorithm),
                })
            }
        };
        let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8)
            .map_err(Pkcs12Error::RejectedPrivateKey)?;
        pair.public_key().as_ref().to_vec()
    } else if algorithm == read_oids::RSA_ENCRYPTION {
        let pair =
            aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(Pkcs12Error::RejectedPrivateKey)?;
        pair.public_key().as_ref().to_vec()
    } else {
        return Err(Pkcs12Error::UnsupportedAlgorithm {
            what: "private key algorithm",
            oid: algorithm,
        });
    };
    Ok(PublicKeyBits { algorithm, bits })
}

/// The public key of a certificate, parsed with x509-cert.
fn certificate_public_key(der: &[u8]) -> Result<PublicKeyBits, Pkcs12Error> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|defect| Pkcs12Error::Malformed {
        what: "certificate",
        defect,
    })?;
    let spki = cert.tbs_certificate.subject_public_key_info;
    Ok(PublicKeyBits {
        algorithm: spki.algorithm.oid,
        bits: spki.subject_public_key.raw_bytes().to_vec(),
    })
}

/// Index in `certs` of the leaf: the certificate whose localKeyId is the key's, or else the
/// first whose public key is the key's. Every certificate must parse.
fn leaf_index(
    key: &PublicKeyBits,
    key_local_id: Option<&[u8]>,
    certs: &[(Vec<u8>, Attributes)],
) -> Result<usize, Pkcs12Error> {
    let public_keys = certs
        .iter()
        .map(|(der, _)| certificate_public_key(der))
        .collect::<Result<Vec<_>, _>>()?;
    let by_id = key_local_id.and_then(|id| {
        certs
            .iter()
            .position(|(_, attributes)| attributes.local_key_id.as_deref() == Some(id))
    });
    let leaf = match by_id {
        Some(index) => Some(index).filter(|&index| public_keys[index] == *key),
        None => public_keys.iter().position(|public| public == key),
    };
    leaf.ok_or(Pkcs12Error::KeyMismatch)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::super::{
        bag_attributes, build, cert_bag, data_content_info, hmac_tag, oid_const, safe_bag,
        small_integer, tlv, tlv_parts, Pkcs12Encryption, Pkcs12Options, NULL, OCTET_STRING,
        SEQUENCE,
    };
    use super::*;
    use crate::keys::{self, KeyAlgorithm};

    const LEAF: &[u8] = include_bytes!("testdata/leaf.der");
    const INTERMEDIATE: &[u8] = include_bytes!("testdata/intermediate.der");
    const ROOT: &[u8] = include_bytes!("testdata/root.der");
    const LEAF_KEY: &[u8] = include_bytes!("testdata/leaf.pk8.der");

    const PASSWORD: &str = "correct horse battery staple";

    fn password(text: &str) -> Pkcs12Password {
        Pkcs12Password::new(text.to_string()).expect("test passwords are valid")
    }

    fn options(encryption: Pkcs12Encryption, iterations: u32) -> Pkcs12Options {
        Pkcs12Options {
            encryption,
            iterations,
        }
    }

    const BOTH: [Pkcs12Encryption; 2] = [
        Pkcs12Encryption::Aes256Pbes2,
        Pkcs12Encryption::LegacyTripleDesSha1,
    ];

    #[test]
    fn build_output_round_trips() {
        for encryption in BOTH {
            let pfx = build(
                LEAF_KEY,
                &[LEAF, INTERMEDIATE, ROOT],
                "device-0001",
                &password(PASSWORD),
                &options(encryption, 2048),
            )
            .unwrap();
            let opened = open(&pfx, &password(PASSWORD)).unwrap();
            assert_eq!(&opened.private_key_pkcs8[..], LEAF_KEY, "{encryption:?}");
            assert_eq!(
                opened.certificates,
                vec![LEAF.to_vec(), INTERMEDIATE.to_vec(), ROOT.to_vec()],
                "{encryption:?}"
            );
            assert_eq!(opened.friendly_name.as_deref(), Some("device-0001"));
        }
    }

    #[test]
    fn empty_friendly_name_and_non_ascii_password_round_trip() {
        for encryption in BOTH {
            let text = "pässwörd €";
            let pfx = build(
                LEAF_KEY,
                &[LEAF],
                "",
                &password(text),
                &options(encryption, 3),
            )
            .unwrap();
            let opened = open(&pfx, &password(text)).unwrap();
            assert_eq!(&opened.private_key_pkcs8[..], LEAF_KEY);
            assert_eq!(opened.certificates, vec![LEAF.to_vec()]);
            assert_eq!(opened.friendly_name, None);
        }
    }

    #[test]
    fn one_iteration_without_mac_iterations_field_opens() {
        for encryption in BOTH {
            let pfx = build(
                LEAF_KEY,
                &[LEAF],
                "x",
                &password(PASSWORD),
                &options(encryption, 1),
            )
            .unwrap();
            let opened = open(&pfx, &password(PASSWORD)).unwrap();
            assert_eq!(&opened.private_key_pkcs8[..], LEAF_KEY);
        }
    }

    #[test]
    fn wrong_password_is_a_mac_mismatch() {
        for encryption in BOTH {
            let pfx = build(
                LEAF_KEY,
                &[LEAF],
                "x",
                &password(PASSWORD),
                &options(encryption, 16),
            )
            .unwrap();
            let error = open(&pfx, &password("Correct horse battery staple")).unwrap_err();
            assert!(matches!(error, Pkcs12Error::MacMismatch), "{error:?}");
        }
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_an_error() {
        for encryption in BOTH {
            let pfx = build(
                LEAF_KEY,
                &[LEAF],
                "d",
                &password(PASSWORD),
                &options(encryption, 2),
            )
            .unwrap();
            for position in 0..pfx.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut damaged = pfx.clone();
                    damaged[position] ^= flip;
                    assert!(
                        open(&damaged, &password(PASSWORD)).is_err(),
                        "{encryption:?}: byte {position} ^ {flip:#04x} still opens"
                    );
                }
            }
            for length in 0..pfx.len() {
                assert!(open(&pfx[..length], &password(PASSWORD)).is_err());
            }
            let mut longer = pfx.clone();
            longer.push(0);
            assert!(matches!(
                open(&longer, &password(PASSWORD)),
                Err(Pkcs12Error::Malformed { what: "PFX", .. })
            ));
        }
    }

    #[test]
    fn malformed_errors_carry_the_file_offset() {
        let pfx = build(
            LEAF_KEY,
            &[LEAF],
            "d",
            &password(PASSWORD),
            &options(Pkcs12Encryption::Aes256Pbes2, 2),
        )
        .unwrap();
        // The version INTEGER is at offset 4 (30 82 LL LL 02 01 03).
        let mut damaged = pfx.clone();
        damaged[6] = 4;
        match open(&damaged, &password(PASSWORD)) {
            Err(Pkcs12Error::Malformed {
                what: "PFX",
                defect,
            }) => {
                assert_eq!(defect.position(), Some(Length::new(4)), "{defect}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn key_of_another_leaf_is_a_key_mismatch() {
        let other = keys::generate(KeyAlgorithm::EcP256).unwrap();
        for encryption in BOTH {
            let pfx = build(
                other.pkcs8_der(),
                &[LEAF, INTERMEDIATE],
                "d",
                &password(PASSWORD),
                &options(encryption, 4),
            )
            .unwrap();
            let error = open(&pfx, &password(PASSWORD)).unwrap_err();
            assert!(matches!(error, Pkcs12Error::KeyMismatch), "{error:?}");
        }
    }

    /// A self-signed certificate for `key`, made with rcgen.
    fn self_signed(key: &keys::GeneratedKey) -> Vec<u8> {
        let pair = rcgen::KeyPair::try_from(key.pkcs8_der()).unwrap();
        rcgen::CertificateParams::new(vec!["device.example".to_string()])
            .unwrap()
            .self_signed(&pair)
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn p384_and_rsa_keys_round_trip_and_mismatch() {
        let p384 = keys::generate(KeyAlgorithm::EcP384).unwrap();
        let rsa = keys::generate(KeyAlgorithm::Rsa2048).unwrap();
        let p384_cert = self_signed(&p384);
        let rsa_cert = self_signed(&rsa);
        for (key, cert) in [(&p384, &p384_cert), (&rsa, &rsa_cert)] {
            let pfx = build(
                key.pkcs8_der(),
                &[cert, ROOT],
                "d",
                &password(PASSWORD),
                &Pkcs12Options::default(),
            )
            .unwrap();
            let opened = open(&pfx, &password(PASSWORD)).unwrap();
            assert_eq!(&opened.private_key_pkcs8[..], key.pkcs8_der());
            assert_eq!(opened.certificates, vec![cert.clone(), ROOT.to_vec()]);
        }
        for (key, cert) in [(&p384, &rsa_cert), (&rsa, &p384_cert)] {
            let pfx = build(
                key.pkcs8_der(),
                &[cert],
                "d",
                &password(PASSWORD),
                &options(Pkcs12Encryption::Aes256Pbes2, 2),
            )
            .unwrap();
            let error = open(&pfx, &password(PASSWORD)).unwrap_err();
            assert!(matches!(error, Pkcs12Error::KeyMismatch), "{error:?}");
        }
    }

    #[test]
    fn opened_debug_redacts_the_key() {
        let pfx = build(
            LEAF_KEY,
            &[LEAF],
            "device-0001",
            &password(PASSWORD),
            &options(Pkcs12Encryption::Aes256Pbes2, 2),
        )
        .unwrap();
        let opened = open(&pfx, &password(PASSWORD)).unwrap();
        let debug = format!("{opened:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(debug.contains("device-0001"), "{debug}");
        let key_hex: String = LEAF_KEY.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!debug.contains(&key_hex[key_hex.len() - 16..]));
        assert!(!debug.contains(&format!("{:?}", &LEAF_KEY[LEAF_KEY.len() - 8..])));
    }

    // -----------------------------------------------------------------------------------------
    // Hand-made files: unencrypted SafeContents only, SHA-256 MAC.

    /// A PFX whose authSafe holds one `Data` ContentInfo per element of `safe_contents` (each a
    /// list of encoded SafeBags), with a correct HMAC-SHA256 over `PASSWORD`.
    fn assemble(safe_contents: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let infos: Vec<Vec<u8>> = safe_contents
            .iter()
            .map(|bags| {
                let refs: Vec<&[u8]> = bags.iter().map(Vec::as_slice).collect();
                data_content_info(&tlv_parts(SEQUENCE, &refs))
            })
            .collect();
        let refs: Vec<&[u8]> = infos.iter().map(Vec::as_slice).collect();
        let auth_safe = tlv_parts(SEQUENCE, &refs);
        let salt = [7u8; 8];
        let iterations = NonZeroU32::new(3).unwrap();
        let mut key = [0u8; 32];
        let bmp = kdf::bmp_password(PASSWORD);
        kdf::pkcs12_kdf::<Sha256>(&bmp, &salt, kdf::Pkcs12KdfId::Mac, iterations, &mut key);
        let mac = hmac_tag::<Hmac<Sha256>, 32>(&key, &auth_safe);
        pfx_with_mac(&auth_safe, &mac, &salt, 3)
    }

    fn pfx_with_mac(auth_safe: &[u8], mac: &[u8], salt: &[u8], iterations: u64) -> Vec<u8> {
        let algorithm = tlv_parts(SEQUENCE, &[&oid_const(&oids::SHA256), &[NULL, 0]]);
        let digest_info = tlv_parts(SEQUENCE, &[&algorithm, &tlv(OCTET_STRING, mac)]);
        let mac_data = tlv_parts(
            SEQUENCE,
            &[
                &digest_info,
                &tlv(OCTET_STRING, salt),
                &small_integer(iterations),
            ],
        );
        tlv_parts(
            SEQUENCE,
            &[&[2, 1, 3], &data_content_info(auth_safe), &mac_data],
        )
    }

    fn leaf_attributes(name: &str) -> Vec<u8> {
        use sha1::Digest;
        let id: [u8; 20] = Sha1::digest(LEAF).into();
        let name: Vec<u8> = name.encode_utf16().flat_map(u16::to_be_bytes).collect();
        bag_attributes(&id, Some(&name))
    }

    fn key_bag(attributes: Option<&[u8]>) -> Vec<u8> {
        safe_bag(&read_oids::KEY_BAG, LEAF_KEY, attributes)
    }

    #[test]
    fn plain_key_bag_opens_and_leaf_is_found_by_public_key() {
        // No localKeyId anywhere: the leaf is the certificate holding the key's public key,
        // and it moves to the front; the key bag has no name, so the leaf bag's is used.
        let pfx = assemble(&[
            vec![
                cert_bag(ROOT, None),
                cert_bag(LEAF, Some(&leaf_attributes("leaf"))),
            ],
            vec![key_bag(None)],
        ]);
        let opened = open(&pfx, &password(PASSWORD)).unwrap();
        assert_eq!(&opened.private_key_pkcs8[..], LEAF_KEY);
        assert_eq!(opened.certificates, vec![LEAF.to_vec(), ROOT.to_vec()]);
        assert_eq!(opened.friendly_name.as_deref(), Some("leaf"));
    }

    #[test]
    fn local_key_id_pointing_at_another_certificate_is_a_key_mismatch() {
        use sha1::Digest;
        let id: [u8; 20] = Sha1::digest(ROOT).into();
        let attributes = bag_attributes(&id, None);
        let pfx = assemble(&[vec![
            cert_bag(LEAF, None),
            cert_bag(ROOT, Some(&attributes)),
            key_bag(Some(&attributes)),
        ]]);
        let error = open(&pfx, &password(PASSWORD)).unwrap_err();
        assert!(matches!(error, Pkcs12Error::KeyMismatch), "{error:?}");
    }

    #[test]
    fn missing_or_extra_bags_are_reported() {
        let attributes = leaf_attributes("d");
        let opened = |contents: &[Vec<Vec<u8>>]| open(&assemble(contents), &password(PASSWORD));
        let error = opened(&[vec![cert_bag(LEAF, None)]]).unwrap_err();
        assert!(matches!(error, Pkcs12Error::NoPrivateKey), "{error:?}");
        let error = opened(&[vec![key_bag(Some(&attributes))]]).unwrap_err();
        assert!(matches!(error, Pkcs12Error::NoCertificateBag), "{error:?}");
        let error = opened(&[
            vec![cert_bag(LEAF, None), key_bag(None)],
            vec![key_bag(None)],
        ])
        .unwrap_err();
        assert!(
            matches!(error, Pkcs12Error::MultiplePrivateKeys { count: 2 }),
            "{error:?}"
        );
    }

    #[test]
    fn unknown_bags_are_skipped() {
        const SECRET_BAG: ObjectIdentifier =
            ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.5");
        let pfx = assemble(&[vec![
            safe_bag(&SECRET_BAG, &tlv(OCTET_STRING, b"opaque"), None),
            cert_bag(LEAF, None),
            key_bag(None),
        ]]);
        let opened = open(&pfx, &password(PASSWORD)).unwrap();
        assert_eq!(opened.certificates, vec![LEAF.to_vec()]);
    }

    #[test]
    fn iteration_counts_above_the_limit_are_refused_before_deriving() {
        let auth_safe = tlv(SEQUENCE, &[]);
        let pfx = pfx_with_mac(&auth_safe, &[0; 32], &[1; 8], u64::from(MAX_ITERATIONS) + 1);
        let error = open(&pfx, &password(PASSWORD)).unwrap_err();
        assert!(
            matches!(
                error,
                Pkcs12Error::IterationsAboveLimit {
                    what: "MAC",
                    iterations,
                    ..
                } if iterations == MAX_ITERATIONS + 1
            ),
            "{error:?}"
        );
        // A count too large for u32 is malformed, not truncated.
        let pfx = pfx_with_mac(&auth_safe, &[0; 32], &[1; 8], 1 << 40);
        let error = open(&pfx, &password(PASSWORD)).unwrap_err();
        assert!(matches!(error, Pkcs12Error::Malformed { .. }), "{error:?}");
    }

    // -----------------------------------------------------------------------------------------
    // Files written by OpenSSL.

    /// Runs `openssl pkcs12 -export` with `extra` options on the test leaf, key and chain;
    /// `None` (with a note) when openssl is not installed.
    fn openssl_export(extra: &[&str]) -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let pem = |label: &str, der: &[u8]| {
            der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap()
        };
        let key = dir.path().join("leaf.key");
        let cert = dir.path().join("leaf.pem");
        let chain = dir.path().join("chain.pem");
        let out = dir.path().join("out.p12");
        std::fs::write(&key, pem("PRIVATE KEY", LEAF_KEY)).unwrap();
        std::fs::write(&cert, pem("CERTIFICATE", LEAF)).unwrap();
        std::fs::write(
            &chain,
            pem("CERTIFICATE", INTERMEDIATE) + &pem("CERTIFICATE", ROOT),
        )
        .unwrap();
        let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
        let mut args = vec![
            "pkcs12".to_string(),
            "-export".into(),
            "-inkey".into(),
            path(&key),
            "-in".into(),
            path(&cert),
            "-certfile".into(),
            path(&chain),
            "-name".into(),
            "device-0001".into(),
            "-passout".into(),
            format!("pass:{PASSWORD}"),
            "-out".into(),
            path(&out),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let output = match Command::new("openssl").args(&args).output() {
            Ok(output) => output,
            Err(error) => {
                eprintln!("note: openssl not runnable ({error}); skipping the OpenSSL test");
                return None;
            }
        };
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(std::fs::read(&out).unwrap())
    }

    fn assert_opens_openssl_file(pfx: &[u8]) {
        let opened = open(pfx, &password(PASSWORD)).unwrap();
        assert_eq!(&opened.private_key_pkcs8[..], LEAF_KEY);
        assert_eq!(opened.certificates.first().map(Vec::as_slice), Some(LEAF));
        let mut chain = opened.certificates[1..].to_vec();
        chain.sort();
        let mut expected = vec![INTERMEDIATE.to_vec(), ROOT.to_vec()];
        expected.sort();
        assert_eq!(chain, expected);
        assert_eq!(opened.friendly_name.as_deref(), Some("device-0001"));
    }

    #[test]
    fn openssl3_default_export_opens() {
        let Some(pfx) = openssl_export(&[]) else {
            return;
        };
        assert_opens_openssl_file(&pfx);
        let error = open(&pfx, &password("wrong")).unwrap_err();
        assert!(matches!(error, Pkcs12Error::MacMismatch), "{error:?}");
    }

    #[test]
    fn openssl_aes128_and_triple_des_exports_open() {
        for extra in [
            &["-keypbe", "AES-128-CBC", "-certpbe", "AES-128-CBC"][..],
            &[
                "-keypbe",
                "PBE-SHA1-3DES",
                "-certpbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ][..],
            // MAC iteration count 1, bags 1000: no lockstep sharing with the MAC.
            &["-iter", "1000", "-nomaciter"][..],
        ] {
            let Some(pfx) = openssl_export(extra) else {
                return;
            };
            assert_opens_openssl_file(&pfx);
        }
    }

    #[test]
    fn openssl_sha512_mac_is_unsupported() {
        let Some(pfx) = openssl_export(&["-macalg", "sha512"]) else {
            return;
        };
        let error = open(&pfx, &password(PASSWORD)).unwrap_err();
        assert!(
            matches!(
                error,
                Pkcs12Error::UnsupportedAlgorithm {
                    what: "MAC digest",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
