//! HS512 JSON Web Tokens (RFC 7519) in seed 001's shape: the header is exactly
//! `{"alg":"HS512"}` and the claims carry `sub`, `Authorities`, `exp`, `iat`.
//!
//! Only HS512 is accepted: `none`, HS256, RS256 and every other `alg` are refused before the
//! signature is looked at. Expiry is checked against the injected clock, not the system's.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;

/// The authority of a refresh token (seed 001 sample refresh token).
pub const ROLE_REFRESH_TOKEN: &str = "ROLE_REFRESH_TOKEN";

/// The claims of both token kinds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The username.
    pub(crate) sub: String,
    /// `ROLE_USER`, ... for an access token; [`ROLE_REFRESH_TOKEN`] alone for a refresh token.
    #[serde(rename = "Authorities")]
    pub(crate) authorities: Vec<String>,
    /// Expiry, unix seconds.
    pub(crate) exp: i64,
    /// Issue time, unix seconds.
    pub(crate) iat: i64,
    /// The user's store id.
    pub(crate) uid: i64,
    /// The user's organization id (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) org: Option<i64>,
    /// Token id, 128 random bits in hex (refresh tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) jti: Option<String>,
    /// Rotation family, 128 random bits in hex (refresh tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) family: Option<String>,
    /// Secret generation of an API client (its access tokens only).
    #[serde(default, rename = "gen", skip_serializing_if = "Option::is_none")]
    pub(crate) generation: Option<i64>,
    /// The batch a download ticket opens (download tickets only).
    #[serde(default, rename = "dl", skip_serializing_if = "Option::is_none")]
    pub(crate) download: Option<i64>,
}

/// Which kind of token a caller expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Access,
    Refresh,
    /// A short-lived ticket in a download link: one batch's ZIP, nothing else.
    Download,
}

impl Claims {
    /// The kind these claims make: a refresh token has exactly [`ROLE_REFRESH_TOKEN`] and both
    /// `jti` and `family`; an access token has neither that authority nor those claims; a
    /// download ticket is an access token's claims plus `dl`, the batch.
    fn kind(&self) -> Option<Kind> {
        let refresh_authority = self.authorities.iter().any(|a| a == ROLE_REFRESH_TOKEN);
        match (refresh_authority, &self.jti, &self.family, self.download) {
            (true, Some(_), Some(_), None) if self.authorities.len() == 1 => Some(Kind::Refresh),
            (false, None, None, None) => Some(Kind::Access),
            (false, None, None, Some(_)) => Some(Kind::Download),
            _ => None,
        }
    }
}

/// Signs and checks tokens with the installation's secret.
pub(crate) struct Codec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Codec {
    pub(crate) fn new(secret: &[u8]) -> Codec {
        let mut validation = Validation::new(Algorithm::HS512);
        // Expiry is checked in `decode` against the injected clock; `exp` must still be there.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Codec {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The compact serialization of `claims`, header `{"alg":"HS512"}`.
    pub(crate) fn encode(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::HS512);
        header.typ = None;
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(AuthError::TokenEncoding)
    }

    /// The claims of `token` if it is an HS512 token signed with our secret, of kind `kind`,
    /// and not expired at `now`.
    pub(crate) fn decode(&self, token: &str, kind: Kind, now: i64) -> Result<Claims, AuthError> {
        let claims = jsonwebtoken::decode::<Claims>(token.trim(), &self.decoding, &self.validation)
            .map_err(|error| AuthError::InvalidToken(refusal(error.kind()).to_owned()))?
            .claims;
        if claims.kind() != Some(kind) {
            return Err(AuthError::InvalidToken(
                match kind {
                    Kind::Access => "not an access token",
                    Kind::Refresh => "not a refresh token",
                    Kind::Download => "not a download ticket",
                }
                .to_owned(),
            ));
        }
        if now >= claims.exp {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }
}

/// Why a token was refused, without any part of the token.
fn refusal(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not accepted",
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
            "missing or malformed claim"
        }
        _ => "malformed token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64UrlUnpadded, Encoding};
    use hmac::{Hmac, Mac};
    use sha2::{Sha256, Sha512};

    const SECRET: &[u8; 64] = &[7; 64];
    const NOW: i64 = 1_550_851_428;

    /// The first segment of every token in seed 001.
    const SEED_HEADER: &str = "eyJhbGciOiJIUzUxMiJ9";

    fn access_claims() -> Claims {
        Claims {
            sub: "airone".to_owned(),
            authorities: vec!["ROLE_USER".to_owned()],
            exp: NOW + 600,
            iat: NOW,
            uid: 1,
            org: Some(1),
            jti: None,
            family: None,
            generation: None,
            download: None,
        }
    }

    fn refresh_claims() -> Claims {
        Claims {
            authorities: vec![ROLE_REFRESH_TOKEN.to_owned()],
            org: None,
            jti: Some("0".repeat(32)),
            family: Some("f".repeat(32)),
            ..access_claims()
        }
    }

    /// A token built by hand: header JSON, claims JSON, HMAC with `sign`.
    fn forge(header: &str, claims: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.as_bytes()),
            Base64UrlUnpadded::encode_string(claims.as_bytes())
        );
        let signature = sign(input.as_bytes());
        format!("{input}.{}", Base64UrlUnpadded::encode_string(&signature))
    }

    fn hs512(key: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
        move |input| {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
    }

    fn claims_json(claims: &Claims) -> String {
        serde_json::to_string(claims).expect("json")
    }

    #[test]
    fn tokens_round_trip_in_the_seed_shape() {
        let codec = Codec::new(SECRET);
        let token = codec.encode(&access_claims()).expect("encode");
        assert_eq!(token.split('.').next(), Some(SEED_HEADER));
        let payload = token.split('.').nth(1).expect("payload");
        let json: serde_json::Value =
            serde_json::from_slice(&Base64UrlUnpadded::decode_vec(payload).expect("base64"))
                .expect("json");
        assert_eq!(json["sub"], "airone");
        assert_eq!(json["Authorities"], serde_json::json!(["ROLE_USER"]));
        assert_eq!(
            (json["exp"].as_i64(), json["iat"].as_i64()),
            (Some(NOW + 600), Some(NOW))
        );
        assert_eq!(
            codec.decode(&token, Kind::Access, NOW).expect("decode"),
            access_claims()
        );
    }

    #[test]
    fn an_independent_hmac_sha512_verifies() {
        // The token is plain RFC 7519 HS512: a hand-made HMAC over the same input is accepted,
        // and ours verifies with a hand-made HMAC.
        let codec = Codec::new(SECRET);
        let forged = forge(
            r#"{"alg":"HS512"}"#,
            &claims_json(&access_claims()),
            hs512(SECRET),
        );
        assert_eq!(forged.split('.').next(), Some(SEED_HEADER));
        assert_eq!(
            codec.decode(&forged, Kind::Access, NOW).expect("decode"),
            access_claims()
        );
        let ours = codec.encode(&access_claims()).expect("encode");
        let (input, signature) = ours.rsplit_once('.').expect("three parts");
        assert_eq!(
            Base64UrlUnpadded::decode_vec(signature).expect("base64"),
            hs512(SECRET)(input.as_bytes())
        );
    }

    #[test]
    fn the_seed_sample_token_is_refused_under_another_secret() {
        let seed = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJhaXJvbmUiLCJBdXRob3JpdGllcyI6WyJST0xFX1VTRVIiXSwiZXhwIjoxNTUwODUyMDI4LCJpYXQiOjE1NTA4NTE0Mjh9.cLPBNj7I0txdx1OCjNg6my4-6LvdBo2rGLzDMA9WGQQvkBVMjlCrsPKOB_DyMfz4VlU4_GAjiYaeuH0XV_TvhA";
        let error = Codec::new(SECRET)
            .decode(seed, Kind::Access, NOW)
            .expect_err("not our secret");
        assert!(matches!(&error, AuthError::InvalidToken(reason) if reason == "bad signature"));
        assert!(!error.to_string().contains("eyJ"));
    }

    #[test]
    fn only_hs512_is_accepted() {
        let codec = Codec::new(SECRET);
        let claims = claims_json(&access_claims());
        let none = forge(r#"{"alg":"none"}"#, &claims, |_| Vec::new());
        let hs256 = forge(r#"{"alg":"HS256"}"#, &claims, |input| {
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("key");
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        });
        // RS256 "signed" with the secret as if it were a public key (the classic confusion).
        let rs256 = forge(r#"{"alg":"RS256"}"#, &claims, hs512(SECRET));
        let es256 = forge(r#"{"alg":"ES256","typ":"JWT"}"#, &claims, hs512(SECRET));
        for token in [none, hs256, rs256, es256] {
            assert!(
                matches!(
                    codec.decode(&token, Kind::Access, NOW),
                    Err(AuthError::InvalidToken(_))
                ),
                "accepted {token}"
            );
        }
    }

    #[test]
    fn tampered_and_malformed_tokens_are_refused() {
        let codec = Codec::new(SECRET);
        let token = codec.encode(&access_claims()).expect("encode");
        // Another payload under the original signature.
        let mut promoted = access_claims();
        promoted.authorities.push("ROLE_ADMIN".to_owned());
        let signature = token.rsplit('.').next().expect("signature");
        let header = token.split('.').next().expect("header");
        let swapped = format!(
            "{header}.{}.{signature}",
            Base64UrlUnpadded::encode_string(claims_json(&promoted).as_bytes())
        );
        // One flipped signature character.
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        let other_key = Codec::new(&[8; 64])
            .encode(&access_claims())
            .expect("encode");
        for bad in [
            swapped.as_str(),
            flipped.as_str(),
            other_key.as_str(),
            "",
            "abc",
            "a.b.c",
            &token[..token.len() - 10],
        ] {
            assert!(
                matches!(
                    codec.decode(bad, Kind::Access, NOW),
                    Err(AuthError::InvalidToken(_))
                ),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn expiry_follows_the_given_clock() {
        let codec = Codec::new(SECRET);
        let token = codec.encode(&access_claims()).expect("encode");
        assert!(codec.decode(&token, Kind::Access, NOW + 599).is_ok());
        assert!(matches!(
            codec.decode(&token, Kind::Access, NOW + 600),
            Err(AuthError::Expired)
        ));
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let codec = Codec::new(SECRET);
        let access = codec.encode(&access_claims()).expect("encode");
        let refresh = codec.encode(&refresh_claims()).expect("encode");
        assert!(codec.decode(&refresh, Kind::Refresh, NOW).is_ok());
        assert!(matches!(
            codec.decode(&access, Kind::Refresh, NOW),
            Err(AuthError::InvalidToken(_))
        ));
        assert!(matches!(
            codec.decode(&refresh, Kind::Access, NOW),
            Err(AuthError::InvalidToken(_))
        ));
        // An access token that also claims ROLE_REFRESH_TOKEN is neither kind.
        let mut mixed = access_claims();
        mixed.authorities.push(ROLE_REFRESH_TOKEN.to_owned());
        let mixed = codec.encode(&mixed).expect("encode");
        for kind in [Kind::Access, Kind::Refresh] {
            assert!(codec.decode(&mixed, kind, NOW).is_err());
        }
    }
}
