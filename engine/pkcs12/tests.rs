//! Tests of the PKCS#12 builder: input checks, the DER layout walked and decrypted with
//! independent code (the `pbkdf2` crate, the general PKCS#12 KDF), and OpenSSL 3 reading the
//! files without `-legacy`.

use std::path::PathBuf;
use std::process::Command;

use cbc::cipher::BlockDecryptMut;

use super::*;

const LEAF: &[u8] = include_bytes!("testdata/leaf.der");
const INTERMEDIATE: &[u8] = include_bytes!("testdata/intermediate.der");
const ROOT: &[u8] = include_bytes!("testdata/root.der");
const LEAF_KEY: &[u8] = include_bytes!("testdata/leaf.pk8.der");

const PASSWORD: &str = "correct horse battery staple";
const NON_ASCII_PASSWORD: &str = "pässwörd €";

fn password(text: &str) -> Pkcs12Password {
    Pkcs12Password::new(text.to_string()).expect("test passwords are valid")
}

fn options(encryption: Pkcs12Encryption, iterations: u32) -> Pkcs12Options {
    Pkcs12Options {
        encryption,
        iterations,
    }
}

fn chain() -> [&'static [u8]; 3] {
    [LEAF, INTERMEDIATE, ROOT]
}

// ---------------------------------------------------------------------------------------------
// A minimal DER reader for walking the output (the crate under test only writes).

/// One TLV: tag, content.
#[derive(Clone, Copy, Debug)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Splits `bytes` into consecutive TLVs (single-byte tags, definite lengths).
fn tlvs(mut bytes: &[u8]) -> Vec<Tlv<'_>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let tag = bytes[0];
        let (len, header) = match bytes[1] {
            n if n < 0x80 => (usize::from(n), 2),
            n => {
                let count = usize::from(n & 0x7f);
                let len = bytes[2..2 + count]
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                (len, 2 + count)
            }
        };
        out.push(Tlv {
            tag,
            content: &bytes[header..header + len],
        });
        bytes = &bytes[header + len..];
    }
    out
}

/// The single TLV `bytes` holds.
fn one(bytes: &[u8]) -> Tlv<'_> {
    let all = tlvs(bytes);
    assert_eq!(all.len(), 1, "expected exactly one TLV");
    all[0]
}

fn oid_tlv(oid: &ObjectIdentifier) -> Vec<u8> {
    oid_const(oid)
}

/// Asserts `t` is an OBJECT IDENTIFIER equal to `oid`.
fn assert_oid(t: Tlv<'_>, oid: &ObjectIdentifier) {
    assert_eq!(t.tag, crate::asn1::OBJECT_IDENTIFIER);
    assert_eq!(tlv(t.tag, t.content), oid_tlv(oid), "expected OID {oid}");
}

fn integer(t: Tlv<'_>) -> u64 {
    assert_eq!(t.tag, INTEGER);
    t.content
        .iter()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// What the walk of one PFX found, decrypted with code independent of the lockstep KDF.
struct Opened {
    key: Vec<u8>,
    certs: Vec<Vec<u8>>,
    /// Encoded bag attribute SETs of each cert bag, then of the key bag.
    cert_attributes: Vec<Option<Vec<u8>>>,
    key_attributes: Option<Vec<u8>>,
    mac_salt_len: usize,
    mac_iterations: Option<u64>,
    bag_salt_lens: Vec<usize>,
}

/// Decrypts one bag: `algorithm` is the AlgorithmIdentifier content.
fn decrypt(
    algorithm: &[u8],
    ciphertext: &[u8],
    password: &str,
    salt_lens: &mut Vec<usize>,
) -> Vec<u8> {
    let parts = tlvs(algorithm);
    let bmp = kdf::bmp_password(password);
    if tlv(parts[0].tag, parts[0].content) == oid_tlv(&oids::PBES2) {
        let params = tlvs(parts[1].content);
        let kdf_parts = tlvs(params[0].content);
        assert_oid(kdf_parts[0], &oids::PBKDF2);
        let pbkdf2_params = tlvs(kdf_parts[1].content);
        assert_eq!(
            pbkdf2_params.len(),
            3,
            "salt, iterationCount, prf; no keyLength"
        );
        let salt = pbkdf2_params[0].content;
        salt_lens.push(salt.len());
        let iterations = u32::try_from(integer(pbkdf2_params[1])).expect("small count");
        let prf = tlvs(pbkdf2_params[2].content);
        assert_oid(prf[0], &oids::HMAC_WITH_SHA256);
        assert_eq!((prf[1].tag, prf[1].content.len()), (NULL, 0));
        let scheme = tlvs(params[1].content);
        assert_oid(scheme[0], &oids::AES256_CBC);
        let iv = scheme[1].content;
        assert_eq!(iv.len(), 16);
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut key);
        cbc::Decryptor::<aes::Aes256>::new(&key.into(), iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .expect("AES-256-CBC padding")
    } else {
        assert_oid(parts[0], &oids::PBE_SHA1_3DES);
        let params = tlvs(parts[1].content);
        let salt = params[0].content;
        salt_lens.push(salt.len());
        let n = NonZeroU32::new(u32::try_from(integer(params[1])).expect("small")).expect("> 0");
        let mut key = [0u8; 24];
        let mut iv = [0u8; 8];
        kdf::pkcs12_kdf::<Sha1>(&bmp, salt, kdf::Pkcs12KdfId::Key, n, &mut key);
        kdf::pkcs12_kdf::<Sha1>(&bmp, salt, kdf::Pkcs12KdfId::Iv, n, &mut iv);
        cbc::Decryptor::<des::TdesEde3>::new(&key.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .expect("3DES-CBC padding")
    }
}

/// Walks a PFX the way RFC 7292 lays it out, checks the MAC and decrypts both bags.
fn open(pfx: &[u8], password: &str) -> Opened {
    let top = tlvs(one(pfx).content);
    assert_eq!(top.len(), 3, "version, authSafe, macData");
    assert_eq!(integer(top[0]), 3);

    // authSafe ContentInfo { data, [0] { OCTET STRING } }.
    let auth_safe_info = tlvs(top[1].content);
    assert_oid(auth_safe_info[0], &oids::DATA);
    assert_eq!(auth_safe_info[1].tag, 0xa0);
    let octets = one(auth_safe_info[1].content);
    assert_eq!(octets.tag, OCTET_STRING);
    let auth_safe = octets.content;

    // MacData.
    let mac_data = tlvs(top[2].content);
    let digest_info = tlvs(mac_data[0].content);
    let digest_algorithm = tlvs(digest_info[0].content);
    assert_eq!(
        (digest_algorithm[1].tag, digest_algorithm[1].content.len()),
        (NULL, 0)
    );
    let mac_salt = mac_data[1].content;
    let mac_iterations = mac_data.get(2).map(|t| integer(*t));
    let n =
        NonZeroU32::new(u32::try_from(mac_iterations.unwrap_or(1)).expect("small")).expect("> 0");
    let bmp = kdf::bmp_password(password);
    let expected_mac =
        if tlv(digest_algorithm[0].tag, digest_algorithm[0].content) == oid_tlv(&oids::SHA256) {
            let mut key = [0u8; 32];
            kdf::pkcs12_kdf::<Sha256>(&bmp, mac_salt, kdf::Pkcs12KdfId::Mac, n, &mut key);
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
            mac.update(auth_safe);
            mac.finalize().into_bytes().to_vec()
        } else {
            assert_oid(digest_algorithm[0], &oids::SHA1);
            let mut key = [0u8; 20];
            kdf::pkcs12_kdf::<Sha1>(&bmp, mac_salt, kdf::Pkcs12KdfId::Mac, n, &mut key);
            let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&key).expect("any key length");
            mac.update(auth_safe);
            mac.finalize().into_bytes().to_vec()
        };
    assert_eq!(digest_info[1].content, &expected_mac[..], "MAC");

    // AuthenticatedSafe: [ EncryptedData(certs), Data(key) ].
    let infos = tlvs(one(auth_safe).content);
    assert_eq!(infos.len(), 2);
    let mut bag_salt_lens = Vec::new();

    let encrypted = tlvs(infos[0].content);
    assert_oid(encrypted[0], &oids::ENCRYPTED_DATA);
    let encrypted_data = tlvs(one(encrypted[1].content).content);
    assert_eq!(integer(encrypted_data[0]), 0);
    let content_info = tlvs(encrypted_data[1].content);
    assert_oid(content_info[0], &oids::DATA);
    assert_eq!(content_info[2].tag, 0x80, "[0] IMPLICIT OCTET STRING");
    let cert_safe_contents = decrypt(
        content_info[1].content,
        content_info[2].content,
        password,
        &mut bag_salt_lens,
    );
    let mut certs = Vec::new();
    let mut cert_attributes = Vec::new();
    for bag in tlvs(one(&cert_safe_contents).content) {
        let parts = tlvs(bag.content);
        assert_oid(parts[0], &oids::CERT_BAG);
        let cert_bag = tlvs(one(parts[1].content).content);
        assert_oid(cert_bag[0], &oids::X509_CERTIFICATE);
        let value = one(cert_bag[1].content);
        assert_eq!(value.tag, OCTET_STRING);
        certs.push(value.content.to_vec());
        cert_attributes.push(parts.get(2).map(|t| tlv(t.tag, t.content)));
    }

    let data = tlvs(infos[1].content);
    assert_oid(data[0], &oids::DATA);
    let key_safe_contents = one(one(data[1].content).content);
    assert_eq!(key_safe_contents.tag, SEQUENCE);
    let key_bag = one(key_safe_contents.content);
    let parts = tlvs(key_bag.content);
    assert_oid(parts[0], &oids::SHROUDED_KEY_BAG);
    let epki = tlvs(one(parts[1].content).content);
    let key = decrypt(
        epki[0].content,
        epki[1].content,
        password,
        &mut bag_salt_lens,
    );
    Opened {
        key,
        certs,
        cert_attributes,
        key_attributes: parts.get(2).map(|t| tlv(t.tag, t.content)),
        mac_salt_len: mac_salt.len(),
        mac_iterations,
        bag_salt_lens,
    }
}

// ---------------------------------------------------------------------------------------------
// Passwords and inputs.

#[test]
fn password_rejects_empty_long_and_control_characters() {
    let defect = |text: &str| match Pkcs12Password::new(text.to_string()) {
        Err(Pkcs12Error::InvalidPassword(defect)) => Some(defect),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => None,
    };
    assert_eq!(defect(""), Some(PasswordDefect::Empty));
    assert_eq!(defect(&"a".repeat(1024)), None);
    assert_eq!(
        defect(&"a".repeat(1025)),
        Some(PasswordDefect::TooLong { bytes: 1025 })
    );
    // 342 three-byte characters = 1026 bytes, although only 342 characters.
    assert_eq!(
        defect(&"€".repeat(342)),
        Some(PasswordDefect::TooLong { bytes: 1026 })
    );
    assert_eq!(
        defect("ab\0c"),
        Some(PasswordDefect::ControlCharacter { index: 2 })
    );
    assert_eq!(
        defect("é\ttab"),
        Some(PasswordDefect::ControlCharacter { index: 1 })
    );
    assert_eq!(
        defect("del\u{7f}"),
        Some(PasswordDefect::ControlCharacter { index: 3 })
    );
    assert_eq!(
        defect("c1\u{85}"),
        Some(PasswordDefect::ControlCharacter { index: 2 })
    );
    assert_eq!(defect("pässwörd € with spaces"), None);
}

#[test]
fn password_is_redacted_everywhere() {
    let secret = "hunter2-very-secret";
    assert_eq!(
        format!("{:?}", password(secret)),
        "Pkcs12Password(<redacted>)"
    );
    let err = Pkcs12Password::new(format!("{secret}\u{1}")).expect_err("control character");
    assert!(
        !format!("{err} {err:?}").contains("hunter2"),
        "error shows no password"
    );
}

#[test]
fn build_rejects_bad_inputs() {
    let pw = password(PASSWORD);
    let opts = Pkcs12Options::default();
    let err = build(
        LEAF_KEY,
        &chain(),
        "n",
        &pw,
        &options(Pkcs12Encryption::Aes256Pbes2, 0),
    );
    assert!(matches!(err, Err(Pkcs12Error::ZeroIterations)), "{err:?}");
    let err = build(LEAF_KEY, &[], "n", &pw, &opts);
    assert!(matches!(err, Err(Pkcs12Error::NoCertificates)), "{err:?}");
    let err = build(&[OCTET_STRING, 0], &chain(), "n", &pw, &opts);
    assert!(
        matches!(err, Err(Pkcs12Error::InvalidPrivateKey { .. })),
        "{err:?}"
    );
    let key_with_trailing_byte = [LEAF_KEY, &[0]].concat();
    let err = build(&key_with_trailing_byte, &chain(), "n", &pw, &opts);
    assert!(
        matches!(err, Err(Pkcs12Error::InvalidPrivateKey { .. })),
        "{err:?}"
    );
    let truncated_intermediate = &INTERMEDIATE[..INTERMEDIATE.len() - 1];
    let err = build(LEAF_KEY, &[LEAF, truncated_intermediate], "n", &pw, &opts);
    assert!(
        matches!(err, Err(Pkcs12Error::InvalidCertificate { index: 1, .. })),
        "{err:?}"
    );
    let message = err.map(|_| ()).expect_err("checked above").to_string();
    assert!(message.contains("certificate 1"), "{message}");
    let err = build(LEAF_KEY, &chain(), "bad\nname", &pw, &opts);
    assert!(
        matches!(
            err,
            Err(Pkcs12Error::InvalidFriendlyName(
                FriendlyNameDefect::ControlCharacter { index: 3 }
            ))
        ),
        "{err:?}"
    );
    let err = build(LEAF_KEY, &chain(), "a😀", &pw, &opts);
    assert!(
        matches!(
            err,
            Err(Pkcs12Error::InvalidFriendlyName(
                FriendlyNameDefect::OutsideBmp { index: 1 }
            ))
        ),
        "{err:?}"
    );
    let err = build(LEAF_KEY, &chain(), &"n".repeat(1025), &pw, &opts);
    assert!(
        matches!(
            err,
            Err(Pkcs12Error::InvalidFriendlyName(
                FriendlyNameDefect::TooLong { chars: 1025 }
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn default_options_are_openssl3_defaults() {
    let opts = Pkcs12Options::default();
    assert_eq!(opts.encryption, Pkcs12Encryption::Aes256Pbes2);
    assert_eq!(opts.iterations, 2048);
}

// ---------------------------------------------------------------------------------------------
// Layout, decrypted with independent code.

/// The bag attributes the leaf cert bag and the key bag must carry.
fn expected_attributes(friendly_name: &str) -> Vec<u8> {
    let local_key_id: [u8; 20] = Sha1::digest(LEAF).into();
    let mut attrs = vec![attribute(
        &oids::LOCAL_KEY_ID,
        &tlv(OCTET_STRING, &local_key_id),
    )];
    if !friendly_name.is_empty() {
        let bmp: Vec<u8> = friendly_name
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        attrs.push(attribute(&oids::FRIENDLY_NAME, &tlv(BMP_STRING, &bmp)));
    }
    attrs.sort();
    tlv(SET, &attrs.concat())
}

#[test]
fn default_layout_decrypts_with_independent_code() {
    let pfx = build(
        LEAF_KEY,
        &chain(),
        "device-0001",
        &password(PASSWORD),
        &Pkcs12Options::default(),
    )
    .expect("build");
    let opened = open(&pfx, PASSWORD);
    assert_eq!(opened.key, LEAF_KEY);
    assert_eq!(
        opened.certs,
        vec![LEAF.to_vec(), INTERMEDIATE.to_vec(), ROOT.to_vec()]
    );
    let attrs = expected_attributes("device-0001");
    assert_eq!(
        opened.cert_attributes,
        vec![Some(attrs.clone()), None, None]
    );
    assert_eq!(opened.key_attributes, Some(attrs));
    assert_eq!(opened.mac_salt_len, 8);
    assert_eq!(opened.mac_iterations, Some(2048));
    assert_eq!(opened.bag_salt_lens, vec![16, 16]);
}

#[test]
fn legacy_layout_decrypts_with_independent_code() {
    let opts = options(Pkcs12Encryption::LegacyTripleDesSha1, 2048);
    let pfx = build(
        LEAF_KEY,
        &chain(),
        "device-0001",
        &password(NON_ASCII_PASSWORD),
        &opts,
    )
    .expect("build");
    let opened = open(&pfx, NON_ASCII_PASSWORD);
    assert_eq!(opened.key, LEAF_KEY);
    assert_eq!(opened.certs.len(), 3);
    assert_eq!(opened.mac_salt_len, 8);
    assert_eq!(opened.bag_salt_lens, vec![8, 8]);
}

#[test]
fn one_iteration_omits_the_default_mac_iterations_and_empty_name_omits_friendly_name() {
    let opts = options(Pkcs12Encryption::Aes256Pbes2, 1);
    let pfx = build(LEAF_KEY, &[LEAF], "", &password(PASSWORD), &opts).expect("build");
    let opened = open(&pfx, PASSWORD);
    assert_eq!(
        opened.mac_iterations, None,
        "DER omits iterations DEFAULT 1"
    );
    assert_eq!(opened.key_attributes, Some(expected_attributes("")));
    assert_eq!(opened.certs, vec![LEAF.to_vec()]);
}

#[test]
fn a_seal_derived_on_another_thread_builds_the_same_layout_in_both_formats() {
    for (encryption, salt_len) in [
        (Pkcs12Encryption::Aes256Pbes2, 16),
        (Pkcs12Encryption::LegacyTripleDesSha1, 8),
    ] {
        let opts = options(encryption, 64);
        let pw = password(NON_ASCII_PASSWORD);
        // The station derives the seal on a helper thread while it signs: the seal is Send.
        let seal = std::thread::scope(|scope| {
            scope
                .spawn(|| Pkcs12Seal::derive(&pw, &opts))
                .join()
                .expect("thread")
        })
        .expect("derive");
        let pfx = build_sealed(seal, LEAF_KEY, &chain(), "device-0002").expect("build");
        let opened = open(&pfx, NON_ASCII_PASSWORD);
        assert_eq!(opened.key, LEAF_KEY, "{encryption:?}");
        assert_eq!(opened.certs.len(), 3);
        assert_eq!(opened.mac_iterations, Some(64));
        assert_eq!(opened.bag_salt_lens, vec![salt_len, salt_len]);
        assert_eq!(
            opened.key_attributes,
            Some(expected_attributes("device-0002"))
        );
    }
}

#[test]
fn a_seal_refuses_zero_iterations_and_redacts_its_keys() {
    let pw = password(PASSWORD);
    assert!(matches!(
        Pkcs12Seal::derive(&pw, &options(Pkcs12Encryption::Aes256Pbes2, 0)),
        Err(Pkcs12Error::ZeroIterations)
    ));
    let seal = Pkcs12Seal::derive(&pw, &options(Pkcs12Encryption::Aes256Pbes2, 1)).expect("seal");
    assert_eq!(format!("{seal:?}"), "Pkcs12Seal(Aes256Pbes2, <redacted>)");
    // A bad certificate is refused by the sealed build too, naming it.
    assert!(matches!(
        build_sealed(seal, LEAF_KEY, &[LEAF, b"\x04\x00"], "n"),
        Err(Pkcs12Error::InvalidCertificate { index: 1, .. })
    ));
}

#[test]
fn salts_and_ivs_are_fresh_per_call() {
    let pw = password(PASSWORD);
    let opts = options(Pkcs12Encryption::Aes256Pbes2, 1);
    let a = build(LEAF_KEY, &chain(), "n", &pw, &opts).expect("build");
    let b = build(LEAF_KEY, &chain(), "n", &pw, &opts).expect("build");
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b);
}

#[test]
fn output_is_one_der_sequence_for_the_der_crate() {
    use der::{Decode, Tagged};
    let pfx = build(
        LEAF_KEY,
        &chain(),
        "device-0001",
        &password(PASSWORD),
        &Pkcs12Options::default(),
    )
    .expect("build");
    let any = der::asn1::AnyRef::from_der(&pfx).expect("DER");
    assert_eq!(any.tag(), der::Tag::Sequence);
}

// ---------------------------------------------------------------------------------------------
// OpenSSL 3 reads the files (no -legacy).

/// A file in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        // Unique per call: tests run in parallel threads of one process, and two of them may
        // write a file of the same name (same encryption, different passwords).
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("certmill-p12-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("write temp file");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `openssl` with `args`; `None` (with a printed note) when the binary is absent.
fn openssl(args: &[&str]) -> Option<String> {
    match Command::new("openssl").args(args).output() {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
            Some(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("note: no `openssl` binary; skipping the OpenSSL check");
            None
        }
        Err(e) => panic!("running openssl: {e}"),
    }
}

/// The DER of every PEM block labelled `label` in `text`, in order.
fn pem_blocks(text: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let stop = rest[start..].find(&end).expect("PEM end line") + start + end.len();
        let (found_label, der) = der::pem::decode_vec(&rest.as_bytes()[start..stop]).expect("PEM");
        assert_eq!(found_label, label);
        out.push(der);
        rest = &rest[stop..];
    }
    out
}

fn openssl_round_trip(encryption: Pkcs12Encryption, password_text: &str, expected_info: &[&str]) {
    let pfx = build(
        LEAF_KEY,
        &chain(),
        "device-0001",
        &password(password_text),
        &options(encryption, 2048),
    )
    .expect("build");
    let file = TempFile::new(&format!("{encryption:?}.p12"), &pfx);
    let path = file.0.to_str().expect("UTF-8 temp path");
    let pass = format!("pass:{password_text}");
    let Some(text) = openssl(&["pkcs12", "-in", path, "-nodes", "-passin", &pass]) else {
        return;
    };
    assert_eq!(
        pem_blocks(&text, "PRIVATE KEY"),
        vec![LEAF_KEY.to_vec()],
        "{text}"
    );
    assert_eq!(
        pem_blocks(&text, "CERTIFICATE"),
        vec![LEAF.to_vec(), INTERMEDIATE.to_vec(), ROOT.to_vec()],
        "{text}"
    );
    let local_key_id: String = Sha1::digest(LEAF)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        text.matches(&format!("localKeyID: {local_key_id}")).count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches("friendlyName: device-0001").count(),
        2,
        "{text}"
    );

    let info = openssl(&["pkcs12", "-info", "-noout", "-in", path, "-passin", &pass])
        .expect("openssl was found above");
    for line in expected_info {
        assert!(info.contains(line), "missing {line:?} in:\n{info}");
    }
    assert_eq!(info.matches("Certificate bag").count(), 3, "{info}");
}

#[test]
fn openssl_reads_default_file() {
    openssl_round_trip(
        Pkcs12Encryption::Aes256Pbes2,
        PASSWORD,
        &[
            "MAC: sha256, Iteration 2048",
            "MAC length: 32, salt length: 8",
            "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256",
            "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256",
        ],
    );
}

#[test]
fn openssl_reads_default_file_with_non_ascii_password() {
    openssl_round_trip(
        Pkcs12Encryption::Aes256Pbes2,
        NON_ASCII_PASSWORD,
        &["MAC: sha256, Iteration 2048", "Shrouded Keybag: PBES2"],
    );
}

#[test]
fn openssl_reads_legacy_file_without_legacy_provider() {
    openssl_round_trip(
        Pkcs12Encryption::LegacyTripleDesSha1,
        PASSWORD,
        &[
            "MAC: sha1, Iteration 2048",
            "MAC length: 20, salt length: 8",
            "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048",
            "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048",
        ],
    );
}

#[test]
fn openssl_rejects_a_wrong_password() {
    let pfx = build(
        LEAF_KEY,
        &chain(),
        "n",
        &password(PASSWORD),
        &Pkcs12Options::default(),
    )
    .expect("build");
    let file = TempFile::new("wrong-password.p12", &pfx);
    let path = file.0.to_str().expect("UTF-8 temp path");
    match Command::new("openssl")
        .args(["pkcs12", "-in", path, "-nodes", "-passin", "pass:wrong"])
        .output()
    {
        Ok(out) => assert!(!out.status.success(), "MAC must not verify"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("note: no `openssl` binary; skipping the OpenSSL check");
        }
        Err(e) => panic!("running openssl: {e}"),
    }
}

/// Writes sample files for checking with other tools by hand:
/// `CERTMILL_P12_OUT=/tmp/x cargo test -- --ignored write_sample_files`.
#[test]
#[ignore = "writes files for manual checks with keytool and Python"]
fn write_sample_files() {
    let dir = PathBuf::from(std::env::var("CERTMILL_P12_OUT").unwrap_or_else(|_| "/tmp".into()));
    for (name, encryption, pw) in [
        ("default.p12", Pkcs12Encryption::Aes256Pbes2, PASSWORD),
        (
            "default-nonascii.p12",
            Pkcs12Encryption::Aes256Pbes2,
            NON_ASCII_PASSWORD,
        ),
        (
            "legacy.p12",
            Pkcs12Encryption::LegacyTripleDesSha1,
            PASSWORD,
        ),
    ] {
        let pfx = build(
            LEAF_KEY,
            &chain(),
            "device-0001",
            &password(pw),
            &options(encryption, 2048),
        )
        .expect("build");
        std::fs::write(dir.join(name), pfx).expect("write");
    }
}

/// Manual timing: `cargo test --release -- --ignored --nocapture build_timing`.
#[test]
#[ignore = "timing, run by hand in release mode"]
fn build_timing() {
    use std::hint::black_box;
    use std::time::Instant;
    let pw = password(PASSWORD);
    let certs = chain();
    for (label, opts) in [
        ("default (2048)", Pkcs12Options::default()),
        (
            "default, 1 iteration (cost outside the KDFs)",
            options(Pkcs12Encryption::Aes256Pbes2, 1),
        ),
        (
            "legacy 3DES/SHA-1 (2048)",
            options(Pkcs12Encryption::LegacyTripleDesSha1, 2048),
        ),
    ] {
        let per = if opts.encryption == Pkcs12Encryption::LegacyTripleDesSha1 {
            50
        } else {
            300
        };
        let mut samples = Vec::new();
        for _ in 0..7 {
            let start = Instant::now();
            for _ in 0..per {
                black_box(
                    build(black_box(LEAF_KEY), &certs, "device-0001", &pw, &opts).expect("build"),
                );
            }
            samples.push(start.elapsed().as_secs_f64() * 1e6 / f64::from(per));
        }
        samples.sort_by(f64::total_cmp);
        println!(
            "build() {label}: median {:.1} µs (min {:.1}, max {:.1})",
            samples[3], samples[0], samples[6]
        );
    }
}

#[test]
fn public_kdf_paths_agree_with_each_other_and_the_pbkdf2_crate() {
    let password = Pkcs12Password::new("factory line 7".into()).expect("password");
    let iterations = core::num::NonZeroU32::new(2048).expect("non-zero");
    let (key_salt, cert_salt, mac_salt) = ([9u8; 16], [8u8; 16], [7u8; 8]);
    let derive = |path| {
        super::derive_openssl3_keys(
            path, &password, &key_salt, &cert_salt, &mac_salt, iterations,
        )
    };
    let portable = derive(super::KdfPath::Portable);
    let sha_ni = derive(super::KdfPath::ShaNi);
    assert_eq!(*portable, *sha_ni);
    for (salt, key) in [(&key_salt, portable[0]), (&cert_salt, portable[1])] {
        let mut expected = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"factory line 7", salt, 2048, &mut expected);
        assert_eq!(key, expected);
    }
    assert_ne!(
        portable[2], portable[0],
        "the MAC key comes from its own chain"
    );
}
