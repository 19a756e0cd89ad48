//! Passwords: the policy, argon2id hashing and verification, generated passwords.
//!
//! A password exists only as `&str` borrowed from the caller or as a [`Zeroizing`] string this
//! module generated; it is never formatted into an error, a log line or a `Debug` output.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::AuthError;

/// Fewest characters a new password may have (NIST SP 800-63B §5.1.1.2: "at least 8
/// characters in length").
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Most bytes a new password may have: longer input only costs hashing time.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Characters of a generated password (first admin): 20 of 62 symbols, about 119 bits.
pub const GENERATED_PASSWORD_CHARS: usize = 20;

/// Octets of a password hash's salt (RFC 9106 §3.1 recommends 16).
const SALT_OCTETS: usize = 16;

/// Symbols of a generated password: letters and digits, safe in shells and files.
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The hasher for new passwords: argon2id, m = 19456 KiB, t = 2, p = 1 (OWASP Password Storage
/// Cheat Sheet, first argon2id configuration; also the `argon2` crate's default).
pub(crate) fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Checks a new password against the policy: [`MIN_PASSWORD_CHARS`] characters, at most
/// [`MAX_PASSWORD_BYTES`] bytes. Composition rules are left out on purpose (NIST SP 800-63B
/// §5.1.1.2 "SHOULD NOT impose other composition rules").
pub fn check_password_policy(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::InvalidPassword {
            reason: "it must have at least 8 characters",
        });
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::InvalidPassword {
            reason: "it must have at most 1024 bytes",
        });
    }
    Ok(())
}

/// Checks a new password against the policy and returns its argon2id PHC string.
///
/// Blocking: one argon2id computation (tens of milliseconds).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    check_password_policy(password)?;
    hash_unchecked(password)
}

/// The argon2id PHC string of `password` with a fresh random salt, no policy check.
pub(crate) fn hash_unchecked(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; SALT_OCTETS];
    crate::keys::random_bytes(&mut salt).map_err(AuthError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(AuthError::PasswordHash)?;
    let hash = hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(AuthError::PasswordHash)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`, with the parameters the string records.
///
/// A stored string that does not parse is an error, not a mismatch: it means the store was
/// altered, and the caller should fail closed and loudly.
pub(crate) fn verify(phc: &str, password: &str) -> Result<bool, AuthError> {
    let hash = PasswordHash::new(phc).map_err(AuthError::PasswordHash)?;
    // Without these the verifier answers "mismatch" at once; a stored hash always has both.
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(AuthError::PasswordHash(
            argon2::password_hash::Error::PhcStringField,
        ));
    }
    match hasher().verify_password(password.as_bytes(), &hash) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(other) => Err(AuthError::PasswordHash(other)),
    }
}

/// Whether a stored hash was made with other parameters than [`hasher`]'s and should be
/// replaced at the next successful login.
pub(crate) fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    hash.algorithm != argon2::ARGON2ID_IDENT
        || Params::try_from(&hash).map_or(true, |params| {
            (params.m_cost(), params.t_cost(), params.p_cost())
                != (
                    Params::DEFAULT_M_COST,
                    Params::DEFAULT_T_COST,
                    Params::DEFAULT_P_COST,
                )
        })
}

/// A random password of [`GENERATED_PASSWORD_CHARS`] letters and digits.
pub(crate) fn generate_password() -> Result<Zeroizing<String>, AuthError> {
    let mut password = Zeroizing::new(String::with_capacity(GENERATED_PASSWORD_CHARS));
    let mut pool = Zeroizing::new([0u8; 64]);
    while password.len() < GENERATED_PASSWORD_CHARS {
        crate::keys::random_bytes(&mut pool[..]).map_err(AuthError::Random)?;
        // Rejection sampling: 248 = 4 * 62, so the octets kept map uniformly onto the alphabet.
        for &octet in pool.iter().filter(|&&octet| octet < 248) {
            if password.len() == GENERATED_PASSWORD_CHARS {
                break;
            }
            password.push(char::from(ALPHABET[usize::from(octet % 62)]));
        }
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_hashes_are_argon2id_with_the_owasp_parameters() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!needs_rehash(&phc));
        assert!(verify(&phc, "correct horse").expect("verify"));
        assert!(!verify(&phc, "correct horsf").expect("verify"));
        // Two hashes of one password differ by their salt.
        assert_ne!(phc, hash_password("correct horse").expect("hash"));
    }

    #[test]
    fn weaker_hashes_are_verified_and_flagged_for_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).expect("params"),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let phc = weak
            .hash_password(b"old password", &salt)
            .expect("hash")
            .to_string();
        assert!(verify(&phc, "old password").expect("verify"));
        assert!(needs_rehash(&phc));
    }

    #[test]
    fn a_corrupt_stored_hash_is_an_error_not_a_mismatch() {
        assert!(matches!(
            verify("$argon2id$garbage", "whatever1"),
            Err(AuthError::PasswordHash(_))
        ));
    }

    #[test]
    fn the_policy_counts_characters_and_bounds_bytes() {
        assert!(check_password_policy("short12").is_err());
        assert!(check_password_policy("éééééééé").is_ok());
        assert!(check_password_policy(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        let error = hash_password("secret1").expect_err("too short");
        assert!(!error.to_string().contains("secret1"));
    }

    #[test]
    fn generated_passwords_are_20_alphanumerics_and_differ() {
        let a = generate_password().expect("generate");
        let b = generate_password().expect("generate");
        assert_eq!(a.len(), GENERATED_PASSWORD_CHARS);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(*a, *b);
        check_password_policy(&a).expect("a generated password passes the policy");
    }
}
