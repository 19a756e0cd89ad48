//! Password-based key derivation for PKCS#12 files: PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) and the
//! PKCS#12 KDF (RFC 7292 Appendix B).
//!
//! The three 2048-iteration chains of one OpenSSL-3-style PKCS#12 (the PBKDF2 keys of the key bag
//! and of the certificate bag, and the SHA-256 MAC key) are about 90% of the cost of a device, so
//! [`derive_openssl3_keys`] computes all three in one loop: per iteration the two HMAC inner
//! compressions and the MAC-KDF compression, then the two HMAC outer compressions. Independent
//! chains fill the SHA unit that one chain, always waiting on its own previous result, leaves
//! idle (see `docs/research/kdf-limit.md`). On x86_64 with SHA-NI the loop runs on intrinsics
//! (module `sha_ni`, the only `unsafe` in the crate); elsewhere it runs on `sha2::compress256`
//! with the HMAC pads precomputed. Both paths are tested byte for byte against the `pbkdf2` crate,
//! a naive PKCS#12 KDF and vectors produced by `openssl kdf`.
//!
//! It does not choose salts or iteration counts and knows nothing of ASN.1: the caller does.
//! The general [`pkcs12_kdf`] (any digest, any output length) serves the legacy SHA-1 format and
//! is not optimised.

use core::num::NonZeroU32;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::digest::core_api::BlockSizeUser;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// SHA-256 initial hash value (FIPS 180-4 §5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// SHA-256 block size in bytes, which is also the PKCS#12 KDF's `v` for SHA-256 and SHA-1.
const BLOCK: usize = 64;

/// Bit length of an HMAC inner or outer message in the iteration loop: one pad block plus a
/// 32-byte digest.
const HMAC_MESSAGE_BITS: u32 = (64 + 32) * 8;

/// Bit length of a PKCS#12 KDF iteration message: one 32-byte digest.
const DIGEST_MESSAGE_BITS: u32 = 32 * 8;

/// What one OpenSSL-3-style PKCS#12 needs derived: the password in both encodings and the
/// three salts. The same iteration count applies to all three chains.
pub(crate) struct Openssl3KdfInput<'a> {
    /// The password as UTF-8 bytes: the PBES2/PBKDF2 password, as OpenSSL 3 uses it.
    pub(crate) password_utf8: &'a [u8],
    /// The password as a BMPString with its two-byte terminator (see [`bmp_password`]): the
    /// PKCS#12 KDF password.
    pub(crate) password_bmp: &'a [u8],
    /// PBKDF2 salt of the shrouded key bag.
    pub(crate) key_bag_salt: &'a [u8],
    /// PBKDF2 salt of the encrypted certificate SafeContents.
    pub(crate) cert_bag_salt: &'a [u8],
    /// MacData salt.
    pub(crate) mac_salt: &'a [u8],
    /// Iteration count of all three chains.
    pub(crate) iterations: NonZeroU32,
}

/// The three 32-byte secrets of one OpenSSL-3-style PKCS#12. Zeroized on drop, redacted in
/// `Debug`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Openssl3Keys {
    /// AES-256 key of the shrouded key bag (PBKDF2-HMAC-SHA256, dkLen 32).
    pub(crate) key_bag_key: [u8; 32],
    /// AES-256 key of the certificate EncryptedData (PBKDF2-HMAC-SHA256, dkLen 32).
    pub(crate) cert_bag_key: [u8; 32],
    /// HMAC-SHA256 key of the MacData (PKCS#12 KDF, ID 3, SHA-256, 32 bytes).
    pub(crate) mac_key: [u8; 32],
}

impl core::fmt::Debug for Openssl3Keys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Openssl3Keys(<redacted>)")
    }
}

/// Which implementation of the lockstep loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `sha2::compress256` per compression (itself SHA-NI-accelerated when available).
    Portable,
    /// Three chains interleaved on x86_64 SHA-NI intrinsics.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    ShaNi,
}

impl Backend {
    /// The fastest backend this CPU supports. `is_x86_feature_detected!` caches its answer in
    /// a static after the first call, so this is one relaxed atomic load per PKCS#12.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("sha")
                && std::arch::is_x86_feature_detected!("sse2")
                && std::arch::is_x86_feature_detected!("ssse3")
                && std::arch::is_x86_feature_detected!("sse4.1")
            {
                return Self::ShaNi;
            }
        }
        Self::Portable
    }
}

/// Derives the three secrets of one OpenSSL-3-style PKCS#12 on the fastest backend.
pub(crate) fn derive_openssl3_keys(input: &Openssl3KdfInput<'_>) -> Openssl3Keys {
    derive_openssl3_keys_with(input, Backend::detect())
}

/// Derives the three secrets on the given backend. Asking for [`Backend::ShaNi`] on a CPU
/// without it falls back to the portable loop (the answer is the same either way).
pub(crate) fn derive_openssl3_keys_with(
    input: &Openssl3KdfInput<'_>,
    backend: Backend,
) -> Openssl3Keys {
    let setup = Setup::new(input);
    let rounds = input.iterations.get() - 1;
    let mut out = Openssl3Keys {
        key_bag_key: [0; 32],
        cert_bag_key: [0; 32],
        mac_key: [0; 32],
    };
    let mut words = ChainWords::default();
    let ran_sha_ni = match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::ShaNi => sha_ni::lockstep_if_supported(&setup, rounds, &mut words),
        _ => false,
    };
    if !ran_sha_ni {
        portable_lockstep(&setup, rounds, &mut words);
    }
    words_to_bytes(&words.key_bag, &mut out.key_bag_key);
    words_to_bytes(&words.cert_bag, &mut out.cert_bag_key);
    words_to_bytes(&words.mac, &mut out.mac_key);
    out
}

/// Everything the iteration loop starts from, as SHA-256 words.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Setup {
    /// HMAC state after compressing `key ^ ipad`.
    inner: [u32; 8],
    /// HMAC state after compressing `key ^ opad`.
    outer: [u32; 8],
    /// U_1 of the key-bag PBKDF2.
    key_bag_u1: [u32; 8],
    /// U_1 of the certificate PBKDF2.
    cert_bag_u1: [u32; 8],
    /// A_1 = H(D || I) of the MAC KDF.
    mac_a1: [u32; 8],
}

impl Setup {
    fn new(input: &Openssl3KdfInput<'_>) -> Self {
        // RFC 2104: a key longer than the block is replaced by its hash.
        let mut key = Zeroizing::new([0u8; BLOCK]);
        if input.password_utf8.len() > BLOCK {
            let hashed: Zeroizing<[u8; 32]> =
                Zeroizing::new(Sha256::digest(input.password_utf8).into());
            key[..32].copy_from_slice(&hashed[..]);
        } else {
            key[..input.password_utf8.len()].copy_from_slice(input.password_utf8);
        }
        let mut pad = Zeroizing::new([0u8; BLOCK]);
        let mut inner = SHA256_IV;
        let mut outer = SHA256_IV;
        for (p, k) in pad.iter_mut().zip(key.iter()) {
            *p = k ^ 0x36;
        }
        sha2::compress256(&mut inner, &[*GenericArray::from_slice(&pad[..])]);
        for (p, k) in pad.iter_mut().zip(key.iter()) {
            *p = k ^ 0x5c;
        }
        sha2::compress256(&mut outer, &[*GenericArray::from_slice(&pad[..])]);

        let first_pbkdf2_block = |salt: &[u8]| -> [u32; 8] {
            // RFC 8018 §5.2: U_1 = PRF(P, S || INT(1)); dkLen 32 needs only block 1.
            // `key` is the HMAC key already reduced and zero-padded to one block, which is the
            // form the infallible `KeyInit::new` takes.
            let mut mac = <Hmac<Sha256> as KeyInit>::new(GenericArray::from_slice(&key[..]));
            mac.update(salt);
            mac.update(&1u32.to_be_bytes());
            let digest = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
            bytes_to_words(&digest)
        };

        let mut mac_first = Zeroizing::new([0u8; 32]);
        pkcs12_kdf_first_hash::<Sha256>(
            input.password_bmp,
            input.mac_salt,
            Pkcs12KdfId::Mac,
            &mut mac_first[..],
        );

        Self {
            inner,
            outer,
            key_bag_u1: first_pbkdf2_block(input.key_bag_salt),
            cert_bag_u1: first_pbkdf2_block(input.cert_bag_salt),
            mac_a1: bytes_to_words(&mac_first),
        }
    }
}

/// The loop's results as SHA-256 words: the two PBKDF2 accumulators `T_1` and `A_r` of the
/// MAC KDF.
#[derive(Default, Zeroize, ZeroizeOnDrop)]
struct ChainWords {
    key_bag: [u32; 8],
    cert_bag: [u32; 8],
    mac: [u32; 8],
}

/// The lockstep loop on `sha2::compress256`.
fn portable_lockstep(setup: &Setup, rounds: u32, out: &mut ChainWords) {
    /// A one-block message: a 32-byte digest, then SHA-256 padding for `bits` of message.
    fn template(bits: u32) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        block[32] = 0x80;
        block[60..].copy_from_slice(&bits.to_be_bytes());
        block
    }
    fn compress(state: &[u32; 8], block: &mut [u8; BLOCK], message: &[u32; 8]) -> [u32; 8] {
        for (chunk, word) in block[..32].chunks_exact_mut(4).zip(message) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        let mut next = *state;
        sha2::compress256(&mut next, &[*GenericArray::from_slice(&block[..])]);
        next
    }

    let mut hmac_block = Zeroizing::new(template(HMAC_MESSAGE_BITS));
    let mut mac_block = Zeroizing::new(template(DIGEST_MESSAGE_BITS));
    let mut u_key = Zeroizing::new(setup.key_bag_u1);
    let mut u_cert = Zeroizing::new(setup.cert_bag_u1);
    out.key_bag = setup.key_bag_u1;
    out.cert_bag = setup.cert_bag_u1;
    out.mac = setup.mac_a1;
    for _ in 0..rounds {
        let inner_key = Zeroizing::new(compress(&setup.inner, &mut hmac_block, &u_key));
        let inner_cert = Zeroizing::new(compress(&setup.inner, &mut hmac_block, &u_cert));
        out.mac = compress(&SHA256_IV, &mut mac_block, &out.mac);
        *u_key = compress(&setup.outer, &mut hmac_block, &inner_key);
        *u_cert = compress(&setup.outer, &mut hmac_block, &inner_cert);
        for (t, u) in out.key_bag.iter_mut().zip(u_key.iter()) {
            *t ^= u;
        }
        for (t, u) in out.cert_bag.iter_mut().zip(u_cert.iter()) {
            *t ^= u;
        }
    }
}

/// The lockstep loop on SHA-NI. The only `unsafe` code of the crate: `#[target_feature]`
/// functions, entered once per PKCS#12 after a run-time CPU check. No raw memory is touched;
/// words move in and out through `_mm_set_epi32` and `_mm_extract_epi32`.
///
/// The bodies are `unsafe fn` bodies without inner `unsafe` blocks: under edition 2021 that
/// compiles both where the intrinsics are `unsafe fn`s (Rust < 1.87) and where they are safe
/// inside a matching `#[target_feature]` function (Rust >= 1.87), with no `unused_unsafe`.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod sha_ni {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_extract_epi32, _mm_set_epi32,
        _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi32,
        _mm_xor_si128,
    };

    use super::{ChainWords, Setup, DIGEST_MESSAGE_BITS, HMAC_MESSAGE_BITS, SHA256_IV};

    /// SHA-256 round constants (FIPS 180-4 §4.2.2).
    #[rustfmt::skip]
    const K: [u32; 64] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1,
        0x923f_82a4, 0xab1c_5ed5, 0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3,
        0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174, 0xe49b_69c1, 0xefbe_4786,
        0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147,
        0x06ca_6351, 0x1429_2967, 0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13,
        0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85, 0xa2bf_e8a1, 0xa81a_664b,
        0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a,
        0x5b9c_ca4f, 0x682e_6ff3, 0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208,
        0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ];

    /// A SHA-256 state in the SHA-NI register layout (ABEF, CDGH).
    #[derive(Clone, Copy)]
    struct State {
        abef: __m128i,
        cdgh: __m128i,
    }

    /// Eight words in message order: lane `i` of `lo` is word `i`, lane `i` of `hi` word `4 + i`.
    /// A digest in this form is the first half of the next message block.
    #[derive(Clone, Copy)]
    struct Words {
        lo: __m128i,
        hi: __m128i,
    }

    /// Loads eight words.
    ///
    /// # Safety
    /// The CPU must support SSE2 (always true on x86_64).
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn load(w: &[u32; 8]) -> Words {
        // `as i32` reinterprets the bits, which is what the intrinsic wants.
        #[allow(clippy::cast_possible_wrap)]
        Words {
            lo: _mm_set_epi32(w[3] as i32, w[2] as i32, w[1] as i32, w[0] as i32),
            hi: _mm_set_epi32(w[7] as i32, w[6] as i32, w[5] as i32, w[4] as i32),
        }
    }

    /// Stores eight words.
    ///
    /// # Safety
    /// The CPU must support SSE4.1.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn store(w: Words, out: &mut [u32; 8]) {
        #[allow(clippy::cast_sign_loss)]
        {
            *out = [
                _mm_extract_epi32(w.lo, 0) as u32,
                _mm_extract_epi32(w.lo, 1) as u32,
                _mm_extract_epi32(w.lo, 2) as u32,
                _mm_extract_epi32(w.lo, 3) as u32,
                _mm_extract_epi32(w.hi, 0) as u32,
                _mm_extract_epi32(w.hi, 1) as u32,
                _mm_extract_epi32(w.hi, 2) as u32,
                _mm_extract_epi32(w.hi, 3) as u32,
            ];
        }
    }

    /// Message order to register layout (the shuffle of Intel's SHA-NI reference code).
    ///
    /// # Safety
    /// The CPU must support SSSE3 and SSE4.1.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn to_state(w: Words) -> State {
        let cdab = _mm_shuffle_epi32(w.lo, 0xB1);
        let efgh = _mm_shuffle_epi32(w.hi, 0x1B);
        State {
            abef: _mm_alignr_epi8(cdab, efgh, 8),
            cdgh: _mm_blend_epi16(efgh, cdab, 0xF0),
        }
    }

    /// Register layout to message order.
    ///
    /// # Safety
    /// The CPU must support SSSE3 and SSE4.1.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn to_words(s: State) -> Words {
        let feba = _mm_shuffle_epi32(s.abef, 0x1B);
        let dchg = _mm_shuffle_epi32(s.cdgh, 0xB1);
        Words {
            lo: _mm_blend_epi16(feba, dchg, 0xF0),
            hi: _mm_alignr_epi8(dchg, feba, 8),
        }
    }

    /// Round constants `K[4g..4g+4]`, lane `i` holding `K[4g+i]`.
    ///
    /// # Safety
    /// The CPU must support SSE2.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn round_constants(g: usize) -> __m128i {
        #[allow(clippy::cast_possible_wrap)]
        _mm_set_epi32(
            K[4 * g + 3] as i32,
            K[4 * g + 2] as i32,
            K[4 * g + 1] as i32,
            K[4 * g] as i32,
        )
    }

    /// Four rounds: two `sha256rnds2`, each taking two words of `m + k`.
    ///
    /// # Safety
    /// The CPU must support SHA and SSE2.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn rounds4(abef: &mut __m128i, cdgh: &mut __m128i, m: __m128i, k: __m128i) {
        let wk = _mm_add_epi32(m, k);
        *cdgh = _mm_sha256rnds2_epu32(*cdgh, *abef, wk);
        *abef = _mm_sha256rnds2_epu32(*abef, *cdgh, _mm_shuffle_epi32(wk, 0x0E));
    }

    /// Compresses one block per lane, the lanes interleaved group of four rounds by group of
    /// four rounds so that their independent SHA instructions overlap. Each block is a
    /// 32-byte digest followed by SHA-256 padding for a message of `bits` bits.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn compress<const N: usize>(
        states: [State; N],
        digests: [Words; N],
        bits: [u32; N],
    ) -> [Words; N] {
        // Words 8..16 of every block: 0x80 terminator, zeros, then the bit length.
        #[allow(clippy::cast_possible_wrap)]
        let pad = _mm_set_epi32(0, 0, 0, 0x8000_0000_u32 as i32);
        let mut abef = [states[0].abef; N];
        let mut cdgh = [states[0].cdgh; N];
        let mut w = [[pad; 4]; N];
        for lane in 0..N {
            abef[lane] = states[lane].abef;
            cdgh[lane] = states[lane].cdgh;
            #[allow(clippy::cast_possible_wrap)]
            let len = _mm_set_epi32(bits[lane] as i32, 0, 0, 0);
            w[lane] = [digests[lane].lo, digests[lane].hi, pad, len];
        }
        // The sixteen groups are written out (not looped) so that every index below is a
        // constant and the message ring and states stay in registers.
        macro_rules! group {
            // Groups 0..4 use the block's words as they are.
            ($g:literal) => {{
                let k = round_constants($g);
                for lane in 0..N {
                    let m = w[lane][$g];
                    rounds4(&mut abef[lane], &mut cdgh[lane], m, k);
                }
            }};
            // Later groups: W[g] from W[g-4], W[g-3], W[g-2], W[g-1], kept in a ring of four
            // where slot `$s0` (= g % 4) holds W[g-4] and is overwritten with W[g].
            ($g:literal, $s0:literal, $s1:literal, $s2:literal, $s3:literal) => {{
                let k = round_constants($g);
                for lane in 0..N {
                    let t = _mm_add_epi32(
                        _mm_sha256msg1_epu32(w[lane][$s0], w[lane][$s1]),
                        _mm_alignr_epi8(w[lane][$s3], w[lane][$s2], 4),
                    );
                    let m = _mm_sha256msg2_epu32(t, w[lane][$s3]);
                    w[lane][$s0] = m;
                    rounds4(&mut abef[lane], &mut cdgh[lane], m, k);
                }
            }};
        }
        group!(0);
        group!(1);
        group!(2);
        group!(3);
        group!(4, 0, 1, 2, 3);
        group!(5, 1, 2, 3, 0);
        group!(6, 2, 3, 0, 1);
        group!(7, 3, 0, 1, 2);
        group!(8, 0, 1, 2, 3);
        group!(9, 1, 2, 3, 0);
        group!(10, 2, 3, 0, 1);
        group!(11, 3, 0, 1, 2);
        group!(12, 0, 1, 2, 3);
        group!(13, 1, 2, 3, 0);
        group!(14, 2, 3, 0, 1);
        group!(15, 3, 0, 1, 2);
        let mut out = digests;
        for lane in 0..N {
            out[lane] = to_words(State {
                abef: _mm_add_epi32(abef[lane], states[lane].abef),
                cdgh: _mm_add_epi32(cdgh[lane], states[lane].cdgh),
            });
        }
        out
    }

    /// Runs the lockstep loop on SHA-NI if this CPU has it, and says whether it did.
    pub(super) fn lockstep_if_supported(setup: &Setup, rounds: u32, out: &mut ChainWords) -> bool {
        if super::Backend::detect() != super::Backend::ShaNi {
            return false;
        }
        // SAFETY: `Backend::detect()` just confirmed at run time that this CPU has the SHA,
        // SSE2, SSSE3 and SSE4.1 extensions `lockstep` is compiled for, which is its only
        // precondition: it touches no raw memory.
        unsafe { lockstep(setup, rounds, out) };
        true
    }

    /// Runs `rounds` iterations of the three chains from `setup` and writes the results.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE2, SSSE3 and SSE4.1 (checked by `Backend::detect`).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn lockstep(setup: &Setup, rounds: u32, out: &mut ChainWords) {
        let inner = to_state(load(&setup.inner));
        let outer = to_state(load(&setup.outer));
        let iv = to_state(load(&SHA256_IV));
        let mut u_key = load(&setup.key_bag_u1);
        let mut u_cert = load(&setup.cert_bag_u1);
        let mut a_mac = load(&setup.mac_a1);
        let mut t_key = u_key;
        let mut t_cert = u_cert;
        for _ in 0..rounds {
            let [h_key, h_cert, a] = compress::<3>(
                [inner, inner, iv],
                [u_key, u_cert, a_mac],
                [HMAC_MESSAGE_BITS, HMAC_MESSAGE_BITS, DIGEST_MESSAGE_BITS],
            );
            a_mac = a;
            [u_key, u_cert] = compress::<2>(
                [outer, outer],
                [h_key, h_cert],
                [HMAC_MESSAGE_BITS, HMAC_MESSAGE_BITS],
            );
            t_key = Words {
                lo: _mm_xor_si128(t_key.lo, u_key.lo),
                hi: _mm_xor_si128(t_key.hi, u_key.hi),
            };
            t_cert = Words {
                lo: _mm_xor_si128(t_cert.lo, u_cert.lo),
                hi: _mm_xor_si128(t_cert.hi, u_cert.hi),
            };
        }
        store(t_key, &mut out.key_bag);
        store(t_cert, &mut out.cert_bag);
        store(a_mac, &mut out.mac);
    }
}

/// SHA-256 words from big-endian bytes.
fn bytes_to_words(bytes: &[u8; 32]) -> [u32; 8] {
    let mut words = [0u32; 8];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    words
}

/// Big-endian bytes from SHA-256 words.
fn words_to_bytes(words: &[u32; 8], out: &mut [u8; 32]) {
    for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

/// The password as the PKCS#12 KDF wants it (RFC 7292 Appendix B.1): a BMPString, that is
/// UTF-16 big-endian, followed by two zero bytes. Characters outside the BMP become surrogate
/// pairs, as OpenSSL's `OPENSSL_utf82uni` writes them.
pub(crate) fn bmp_password(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(2 * password.len() + 2));
    for unit in password.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// The purpose byte `ID` of the PKCS#12 KDF (RFC 7292 Appendix B.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pkcs12KdfId {
    /// 1: key material for encryption or decryption.
    Key = 1,
    /// 2: an initialisation vector.
    Iv = 2,
    /// 3: an integrity (MAC) key.
    Mac = 3,
}

/// Fills `I = S || P` (RFC 7292 Appendix B.2 steps 2 to 4): salt and password each repeated to
/// a whole number of `v`-byte blocks.
fn pkcs12_kdf_i(password_bmp: &[u8], salt: &[u8], v: usize) -> Zeroizing<Vec<u8>> {
    let s_len = v * salt.len().div_ceil(v);
    let p_len = v * password_bmp.len().div_ceil(v);
    let mut i = Zeroizing::new(Vec::with_capacity(s_len + p_len));
    i.extend(salt.iter().cycle().take(s_len));
    i.extend(password_bmp.iter().cycle().take(p_len));
    i
}

/// `A_1`'s first hash `H(D || I)` of the PKCS#12 KDF, into `out` (one digest long).
fn pkcs12_kdf_first_hash<H: Digest + BlockSizeUser>(
    password_bmp: &[u8],
    salt: &[u8],
    id: Pkcs12KdfId,
    out: &mut [u8],
) {
    let v = H::block_size();
    let i = pkcs12_kdf_i(password_bmp, salt, v);
    let mut hasher = H::new();
    for _ in 0..v {
        hasher.update([id as u8]);
    }
    hasher.update(&i[..]);
    let digest = Zeroizing::new(hasher.finalize().to_vec());
    out.copy_from_slice(&digest);
}

/// The PKCS#12 KDF (RFC 7292 Appendix B.2) with digest `H`, filling `out`.
///
/// `password_bmp` is the BMPString password with its terminator ([`bmp_password`]). This is
/// the general, unoptimised form, used for the legacy SHA-1 format and as the reference of the
/// lockstep loop; the SHA-256 MAC key of the default format comes from
/// [`derive_openssl3_keys`].
pub(crate) fn pkcs12_kdf<H: Digest + BlockSizeUser>(
    password_bmp: &[u8],
    salt: &[u8],
    id: Pkcs12KdfId,
    iterations: NonZeroU32,
    out: &mut [u8],
) {
    let u = <H as Digest>::output_size();
    let v = H::block_size();
    // Step 1: D = v copies of ID; steps 2-4: I = S || P.
    let d = vec![id as u8; v];
    let mut i = pkcs12_kdf_i(password_bmp, salt, v);
    let mut a = Zeroizing::new(vec![0u8; u]);
    let mut b = Zeroizing::new(vec![0u8; v]);
    let more_than_one_block = out.len() > u;
    for chunk in out.chunks_mut(u) {
        // Step 6a: A_i = H^r(D || I).
        let mut hasher = H::new();
        hasher.update(&d);
        hasher.update(&i[..]);
        a.copy_from_slice(&hasher.finalize());
        for _ in 1..iterations.get() {
            let next = H::digest(&a[..]);
            a.copy_from_slice(&next);
        }
        chunk.copy_from_slice(&a[..chunk.len()]);
        // Steps 6b-6c, needed only when another block follows: B = A_i repeated to v bytes,
        // then every v-byte block I_j of I becomes (I_j + B + 1) mod 2^(8v).
        if chunk.len() == u && more_than_one_block {
            for (dst, src) in b.iter_mut().zip(a.iter().cycle()) {
                *dst = *src;
            }
            for block in i.chunks_exact_mut(v) {
                let mut carry = 1u16;
                for (x, y) in block.iter_mut().zip(b.iter()).rev() {
                    let sum = u16::from(*x) + u16::from(*y) + carry;
                    // Keep the low byte; the high byte is the carry.
                    *x = sum.to_le_bytes()[0];
                    carry = sum >> 8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::Sha1;

    const SALT_16: [u8; 16] = [
        0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f,
        0x90,
    ];
    const SALT_8: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
    const LONG_PASSWORD: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

    /// `openssl kdf` (OpenSSL 3.0.19) outputs: (password, iterations, PBKDF2-HMAC-SHA256 with salt
    /// `SALT_16`, PBKDF2-HMAC-SHA256 with salt `SALT_8`, PKCS12KDF SHA-256 ID 3 with salt `SALT_8`
    /// over the BMPString password given as `hexpass`).
    const OPENSSL_VECTORS: &[(&str, u32, &str, &str, &str)] = &[
        (
            "abc",
            1,
            "d4dfe971ba36057344e013498b1bb9e058b6009bf26e4702ef18cac8c668af04",
            "110466e1688c6cc1fc6a6ac7102950701e8e7249ae79051e8c828cc73a746723",
            "547f8951c9eea956ece127c6588acd8aba28a87986b55760eccf8344660a6343",
        ),
        (
            "abc",
            2,
            "38b5059572a8f5227e5bab550bd3df1d316e49465ceb0c3cdbdd3bfac50c3114",
            "36290bed87a11801a68824f8b9bbd3be33a21839953f7204443829b2ba0260eb",
            "0be8fb3164b08da0289b63eb057f9c19793885e692cc1d527763c2471a00525b",
        ),
        (
            "abc",
            3,
            "016f04815f9e6f7158d10c72af33150ffcc4860430213aaba20dd0ee60a3a095",
            "e0d725f0a11b8af0c742960952c072be4822e35c92cff780f4f31dbce88b4518",
            "fb73d34e61a7ab106ab98df5b85dd0db60d8bd5e564b16b8b36c2d07d0552bd7",
        ),
        (
            "abc",
            2048,
            "f0321ebfea4f0eec307b64b6f5cf3d37ce11c0fdc37746300f9b66f84773d79c",
            "93ff2c2bf8cd9bf426b8bd00b90c99d5147ceaa3b326293cd507adf1f4886798",
            "44a5fd150cc6ec76dcbc086dd0a6b45a10837558233e9a247af10fc24ba1f314",
        ),
        (
            "abc",
            2049,
            "09cab3cf5917a7bd157855810f5808a029efc4cf2ba6dd1c30238b829c748f16",
            "176b6f54ee8883df67dea1e9499b544c5d053cc131d218fc9a9f9a2f316eebc4",
            "b9dd6e977aa17a14e8926a61a943775a0f99dd2e839923e185cc00f4380a6565",
        ),
        (
            "correct horse battery staple",
            1,
            "01673cb1073ada69a60068a414d8872d267ecaf130e4f109ad28fba92037d820",
            "86d83942006a7582484007220e656e4a20aa965159cc737338eaa0f54ef097bd",
            "67257370576eb49a2390f583f3de67369957fbc4d3ea3207ffc37ec85ec211cc",
        ),
        (
            "correct horse battery staple",
            2,
            "483c8f81de2c8a7d7b074597dcdaf441272fd283671d8a87647907d50eb20a9a",
            "3315454a9f513e48741906cde7c19364e14d98478251e9a0eb4bd8119a391d6f",
            "c9833113db3f0518296b6a2f208b56bea1b9d72e49de6ebbaad286dd83e02311",
        ),
        (
            "correct horse battery staple",
            3,
            "15bcdcd790d58a35b237d242e3717fca72233e6776a4a20cab4e704a9df0bb13",
            "b65e793235ae4414dadb3c3f8fdd55140d7119beb3ed9cd4b84aa3dbee2d75a7",
            "418162d0b465974ff4311e8371f03ddb646bc1d70434ab9d18dfc11b708be594",
        ),
        (
            "correct horse battery staple",
            2048,
            "2177bfcb2d6e79990a0772da24dbed09254484fdcd44885ee94fcec9dee86763",
            "9feb10115b6f662fe18c478f2913d1ba52f96e310cf77536f08e37484607ae84",
            "6a2706ced06d6d667f1ba7dab7b5bd106c6377cc5a281936ee793a70ea70b39d",
        ),
        (
            "correct horse battery staple",
            2049,
            "53019dc1105b5bb61c146c4c672020eb83983d770392990eecfecb2c61107b8f",
            "ca78a42f751ca2bc21dfbbdbdd5a6455ffa79452b006f7b2d24f6216680c8f40",
            "52fd659faa4579cd548113609c6e2be2004dbb180a0207c9aa149104fc08beff",
        ),
        (
            "pässwörd €",
            1,
            "d5f402f6539e956118efe56f93e47040b7a8a5db87a7c0e507b029dc652623cc",
            "6fb6e3c61af4e969f9680bd07d159bebb8cd3e7f827c54acb7cd8c9e41ce1220",
            "8f75d49effb80deddea704970d8185f119f66f51541614d1820da18b560405ba",
        ),
        (
            "pässwörd €",
            2,
            "f7bd4c6789d405693a886595e2fca9cec3f8775d86d9412f2c65899e56b5b77c",
            "a9ad152e406b45272152417f26175dc2032c7c28e73a0d30ef3239ebadb19ecc",
            "a5f459a04c4fa660c5bf7b99b406d4046bd29bbbdf0af892c4b8148c92e50360",
        ),
        (
            "pässwörd €",
            3,
            "69fc8fb1dd4f59bbfd79a3fcd2316e299212ea86321fa9311296539ef9b9a827",
            "02e41149c9c5f4ae462890a6d88f83f2103bf83fb3d708459f8c84ac4634858d",
            "f3346a122f8f5f7df9c10115d1ac965703eeebc5b929988fb59dc9362c0e781a",
        ),
        (
            "pässwörd €",
            2048,
            "9f18adadb7523fac70883fbeb50bf47caa7d20f19cfd0010fe0e14104fe89baf",
            "58cfeb6423f2c0c926aca332dbb3daab1de572bc18dbfa7ce7cf25cf5b4c313e",
            "136b8185c8b9ea388eb0fee00fc33dc9e04d0636185f675aee25c352684cc537",
        ),
        (
            "pässwörd €",
            2049,
            "0b1f032a484bdc13abdfedcd3ec0726c489681a2c1b0c972478ab939752daf40",
            "7e73d008358681692b2f5eb6ede5cf0c56b5003b5afaf8bab13a3b1cd28bbd39",
            "f504e1d13d8a559038b43f905fd339065a9cd7abba9b5fc85e365e988df6998e",
        ),
        (
            LONG_PASSWORD,
            1,
            "501e9f6f591744441da66f051a98fa41692f56bac77ae62a5c6264bf5df57093",
            "fbc5e8d4e158f79407fadb6f74679a6e2f7918dd66ee9fdb432024438ee200bf",
            "44ede9641f62ee38707f33738ba1f88543b5b8590d068d773e68db0bf41ccd3b",
        ),
        (
            LONG_PASSWORD,
            2,
            "2c11b5560489acebc88a18b01d5447ef60cb4808fe7424fb04e40874cddc43b5",
            "654f31ee4c5de162ee43676a7210656ff80d39c611b2354c8dea37e9fe293a49",
            "84843f3ad133524fce062c29b7b861358216c3d768ecb7df7e8b83f21c4bcf98",
        ),
        (
            LONG_PASSWORD,
            3,
            "adf6966615a0f3967682584b254371fc51e106f344d5c7e6706dd355e7288547",
            "3663d61514886a91da728330abb23848e493144f2ba47ac8fcf7c4e77b52f658",
            "c35c73ac29e9bc09534fcd07d9756874bb7274289e67ee48c0c659c6a3989f17",
        ),
        (
            LONG_PASSWORD,
            2048,
            "8b5744e132a48e7e0ab6b5be87319e34f5382368de6047f45ecb8cd211fc0f72",
            "c9cab8021413631dcae9fd369ab5a30a848d20163d1329e2510a49e11b1de980",
            "af19c40225c564b7987d50c739a0bf8f60a3eff26632d433272b2e1ba26db5e2",
        ),
        (
            LONG_PASSWORD,
            2049,
            "17d09e075381f5410292bea7d03ac641253d70640a3bcfc8978155a0ef5e41a9",
            "86ec068598a75d7d080397d4da18bb48ff423ec940cab8adc5aba49219c24e83",
            "899e25ec2b483f0cb4d9d027f3b44f902d686ce00d4ba93cf37d1c3fd3911556",
        ),
    ];

    /// `openssl kdf -kdfopt digest:SHA1 ... -kdfopt hexsalt:0102030405060708 -kdfopt iter:2048
    /// PKCS12KDF` over the BMPString password: (password, ID, output).
    const OPENSSL_SHA1_VECTORS: &[(&str, Pkcs12KdfId, &str)] = &[
        (
            "abc",
            Pkcs12KdfId::Key,
            "cb34d13e2cb623132eee249b71d7553b56a3341146ce4cf4",
        ),
        ("abc", Pkcs12KdfId::Iv, "7f94f4e450e752af"),
        (
            "abc",
            Pkcs12KdfId::Mac,
            "261f7d0140067ca42ecd686c8ec693f8b024b58e",
        ),
        (
            "pässwörd €",
            Pkcs12KdfId::Key,
            "a697f0ce0c2d12948db3a1e5b513c877b0149e02d9bb1836",
        ),
        ("pässwörd €", Pkcs12KdfId::Iv, "88f61061b4f0e99b"),
        (
            "pässwörd €",
            Pkcs12KdfId::Mac,
            "19cce2a1fc6ee3abed089ecf3b486317cb518494",
        ),
    ];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn iterations(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("test iteration counts are positive")
    }

    /// The backends to test: always the portable one, and SHA-NI where the CPU has it.
    fn backends() -> Vec<Backend> {
        if Backend::detect() == Backend::ShaNi {
            vec![Backend::Portable, Backend::ShaNi]
        } else {
            println!("note: this CPU has no SHA-NI; only the portable backend is tested");
            vec![Backend::Portable]
        }
    }

    /// RFC 7292 Appendix B.2 written out as plainly as possible, independent of `pkcs12_kdf`.
    fn naive_pkcs12_kdf<H: Digest + BlockSizeUser>(
        password_bmp: &[u8],
        salt: &[u8],
        id: u8,
        r: u32,
        n: usize,
    ) -> Vec<u8> {
        let u = <H as Digest>::output_size();
        let v = H::block_size();
        let d: Vec<u8> = vec![id; v];
        let mut s = Vec::new();
        if !salt.is_empty() {
            while s.len() < v * salt.len().div_ceil(v) {
                s.push(salt[s.len() % salt.len()]);
            }
        }
        let mut p = Vec::new();
        if !password_bmp.is_empty() {
            while p.len() < v * password_bmp.len().div_ceil(v) {
                p.push(password_bmp[p.len() % password_bmp.len()]);
            }
        }
        let mut i = [s, p].concat();
        let c = n.div_ceil(u);
        let mut a_all = Vec::new();
        for _ in 0..c {
            let mut a = H::digest([d.clone(), i.clone()].concat()).to_vec();
            for _ in 1..r {
                a = H::digest(&a).to_vec();
            }
            let b: Vec<u8> = (0..v).map(|k| a[k % u]).collect();
            for j in 0..i.len() / v {
                // I_j = (I_j + B + 1) mod 2^(8v), big-endian, least significant byte last.
                let mut carry: u32 = 1;
                for k in (0..v).rev() {
                    let sum = u32::from(i[j * v + k]) + u32::from(b[k]) + carry;
                    i[j * v + k] = (sum & 0xff) as u8;
                    carry = sum >> 8;
                }
            }
            a_all.extend_from_slice(&a);
        }
        a_all.truncate(n);
        a_all
    }

    fn pbkdf2_reference(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out);
        out
    }

    #[test]
    fn lockstep_matches_pbkdf2_crate_and_naive_kdf_on_both_backends() {
        let passwords = [
            "a".to_string(),
            "abc".to_string(),
            "pässwörd €".to_string(),
            "emoji 😀 outside the BMP".to_string(),
            "y".repeat(63),
            "y".repeat(64),
            "y".repeat(65),
            "z".repeat(1024),
        ];
        let salts: [&[u8]; 4] = [&[], &SALT_8, &SALT_16, &[0x5a; 70]];
        for backend in backends() {
            for password in &passwords {
                let bmp = bmp_password(password);
                for (k, &n) in [1u32, 2, 3, 7, 64, 1000, 2048, 2049].iter().enumerate() {
                    let key_salt = salts[k % salts.len()];
                    let cert_salt = salts[(k + 1) % salts.len()];
                    let mac_salt = salts[(k + 2) % salts.len()];
                    let keys = derive_openssl3_keys_with(
                        &Openssl3KdfInput {
                            password_utf8: password.as_bytes(),
                            password_bmp: &bmp,
                            key_bag_salt: key_salt,
                            cert_bag_salt: cert_salt,
                            mac_salt,
                            iterations: iterations(n),
                        },
                        backend,
                    );
                    let what = format!("{backend:?}, password {password:?}, {n} iterations");
                    assert_eq!(
                        keys.key_bag_key,
                        pbkdf2_reference(password.as_bytes(), key_salt, n),
                        "key bag, {what}"
                    );
                    assert_eq!(
                        keys.cert_bag_key,
                        pbkdf2_reference(password.as_bytes(), cert_salt, n),
                        "cert bag, {what}"
                    );
                    assert_eq!(
                        keys.mac_key.to_vec(),
                        naive_pkcs12_kdf::<Sha256>(&bmp, mac_salt, 3, n, 32),
                        "MAC key, {what}"
                    );
                }
            }
        }
    }

    #[test]
    fn lockstep_matches_openssl_kdf_on_both_backends() {
        for backend in backends() {
            for &(password, n, key_hex, cert_hex, mac_hex) in OPENSSL_VECTORS {
                let bmp = bmp_password(password);
                let keys = derive_openssl3_keys_with(
                    &Openssl3KdfInput {
                        password_utf8: password.as_bytes(),
                        password_bmp: &bmp,
                        key_bag_salt: &SALT_16,
                        cert_bag_salt: &SALT_8,
                        mac_salt: &SALT_8,
                        iterations: iterations(n),
                    },
                    backend,
                );
                let what = format!("{backend:?}, password {password:?}, {n} iterations");
                assert_eq!(hex(&keys.key_bag_key), key_hex, "key bag, {what}");
                assert_eq!(hex(&keys.cert_bag_key), cert_hex, "cert bag, {what}");
                assert_eq!(hex(&keys.mac_key), mac_hex, "MAC key, {what}");
            }
        }
    }

    #[test]
    fn default_backend_is_sha_ni_where_available() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("sha") {
            assert_eq!(Backend::detect(), Backend::ShaNi);
        }
        // And the dispatching entry point agrees with the portable loop.
        let bmp = bmp_password("abc");
        let input = Openssl3KdfInput {
            password_utf8: b"abc",
            password_bmp: &bmp,
            key_bag_salt: &SALT_16,
            cert_bag_salt: &SALT_8,
            mac_salt: &SALT_8,
            iterations: iterations(2048),
        };
        let fast = derive_openssl3_keys(&input);
        let portable = derive_openssl3_keys_with(&input, Backend::Portable);
        assert_eq!(fast.key_bag_key, portable.key_bag_key);
        assert_eq!(fast.cert_bag_key, portable.cert_bag_key);
        assert_eq!(fast.mac_key, portable.mac_key);
    }

    #[test]
    fn pkcs12_kdf_matches_naive_reference() {
        let passwords = ["", "abc", "pässwörd €", "😀", &"q".repeat(40)];
        let salts: [&[u8]; 4] = [&[], &SALT_8, &SALT_16, &[0xff; 65]];
        for password in passwords {
            let bmp = bmp_password(password);
            for salt in salts {
                for id in [Pkcs12KdfId::Key, Pkcs12KdfId::Iv, Pkcs12KdfId::Mac] {
                    for n in [1u32, 2, 5, 100] {
                        for len in [8usize, 20, 24, 32, 40, 64, 70] {
                            let mut ours = vec![0u8; len];
                            pkcs12_kdf::<Sha1>(&bmp, salt, id, iterations(n), &mut ours);
                            let want = naive_pkcs12_kdf::<Sha1>(&bmp, salt, id as u8, n, len);
                            assert_eq!(ours, want, "SHA-1 {password:?} {id:?} {n} {len}");
                            pkcs12_kdf::<Sha256>(&bmp, salt, id, iterations(n), &mut ours);
                            let want = naive_pkcs12_kdf::<Sha256>(&bmp, salt, id as u8, n, len);
                            assert_eq!(ours, want, "SHA-256 {password:?} {id:?} {n} {len}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pkcs12_kdf_matches_openssl_kdf() {
        for &(password, id, want) in OPENSSL_SHA1_VECTORS {
            let mut out = vec![0u8; want.len() / 2];
            pkcs12_kdf::<Sha1>(
                &bmp_password(password),
                &SALT_8,
                id,
                iterations(2048),
                &mut out,
            );
            assert_eq!(hex(&out), want, "{password:?} {id:?}");
        }
        for &(password, n, _, _, mac_hex) in OPENSSL_VECTORS {
            let mut out = [0u8; 32];
            let id = Pkcs12KdfId::Mac;
            pkcs12_kdf::<Sha256>(
                &bmp_password(password),
                &SALT_8,
                id,
                iterations(n),
                &mut out,
            );
            assert_eq!(hex(&out), mac_hex, "{password:?} {n}");
        }
    }

    #[test]
    fn bmp_password_is_utf16be_with_terminator() {
        assert_eq!(&bmp_password("ab")[..], &[0, b'a', 0, b'b', 0, 0]);
        assert_eq!(&bmp_password("€")[..], &[0x20, 0xac, 0, 0]);
        // U+1F600 as the surrogate pair D83D DE00, as OpenSSL's OPENSSL_utf82uni writes it.
        assert_eq!(&bmp_password("😀")[..], &[0xd8, 0x3d, 0xde, 0x00, 0, 0]);
        assert_eq!(&bmp_password("")[..], &[0, 0]);
    }

    #[test]
    fn derived_keys_are_redacted_in_debug() {
        let keys = Openssl3Keys {
            key_bag_key: [0xab; 32],
            cert_bag_key: [0xab; 32],
            mac_key: [0xab; 32],
        };
        let shown = format!("{keys:?}");
        assert_eq!(shown, "Openssl3Keys(<redacted>)");
    }

    /// Manual timing: `cargo test --release -- --ignored --nocapture kdf_timing`.
    #[test]
    #[ignore = "timing, run by hand in release mode"]
    fn kdf_timing() {
        use std::hint::black_box;
        use std::time::Instant;
        let bmp = bmp_password("correct horse battery staple");
        let input = Openssl3KdfInput {
            password_utf8: b"correct horse battery staple",
            password_bmp: &bmp,
            key_bag_salt: &SALT_16,
            cert_bag_salt: &[7; 16],
            mac_salt: &SALT_8,
            iterations: iterations(2048),
        };
        let crates = || {
            let mut a = [0u8; 32];
            let mut b = [0u8; 32];
            let mut c = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(input.password_utf8, input.key_bag_salt, 2048, &mut a);
            pbkdf2::pbkdf2_hmac::<Sha256>(input.password_utf8, input.cert_bag_salt, 2048, &mut b);
            pkcs12_kdf::<Sha256>(&bmp, &SALT_8, Pkcs12KdfId::Mac, iterations(2048), &mut c);
            black_box((a, b, c));
        };
        let per = 200;
        let mut samples: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for _round in 0..9 {
            for (k, samples) in samples.iter_mut().enumerate() {
                let start = Instant::now();
                for _ in 0..per {
                    match k {
                        0 => crates(),
                        1 => drop(black_box(derive_openssl3_keys_with(
                            black_box(&input),
                            Backend::Portable,
                        ))),
                        _ => drop(black_box(derive_openssl3_keys_with(
                            black_box(&input),
                            Backend::ShaNi,
                        ))),
                    }
                }
                samples.push(start.elapsed().as_secs_f64() * 1e6 / f64::from(per));
            }
        }
        for (name, mut s) in [
            "crates (pbkdf2 x2 + pkcs12_kdf)",
            "portable lockstep",
            "SHA-NI lockstep",
        ]
        .into_iter()
        .zip(samples)
        {
            s.sort_by(f64::total_cmp);
            println!(
                "{name}: median {:.1} µs per KDF triple (min {:.1}, max {:.1})",
                s[s.len() / 2],
                s[0],
                s[s.len() - 1]
            );
        }
    }
}
