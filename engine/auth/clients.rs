//! Tokens for API clients (seed 002): a factory station exchanges its client id and secret for
//! an access token (OAuth 2.0 client credentials grant, RFC 6749 §4.4).
//!
//! A client's token is an ordinary access token (15 minutes, no refresh token: the station
//! simply asks again) that also names the client's secret generation, so resetting the secret
//! voids the tokens issued for the old one at once ([`Auth::verify_access`]).

use std::net::IpAddr;

use zeroize::Zeroizing;

use super::token::Claims;
use super::{access_claims, Auth, AuthError, Principal, ACCESS_TOKEN_LIFETIME_SECS};

/// Hex digits of a generated client secret (256 random bits).
pub const CLIENT_SECRET_CHARS: usize = 64;

/// A client's access token (RFC 6749 §5.1 `access_token`, `expires_in`). `Debug` redacts it.
pub struct ClientToken {
    /// The access token, for `Authorization: Bearer`.
    pub access_token: String,
    /// Seconds it is valid for ([`ACCESS_TOKEN_LIFETIME_SECS`]).
    pub expires_in: u64,
}

impl std::fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientToken")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A new client secret: 256 random bits as lower-case hex, shown once.
pub fn new_client_secret() -> Result<Zeroizing<String>, AuthError> {
    let mut bits = Zeroizing::new([0u8; CLIENT_SECRET_CHARS / 2]);
    crate::keys::random_bytes(&mut bits[..]).map_err(AuthError::Random)?;
    let mut secret = Zeroizing::new(String::with_capacity(CLIENT_SECRET_CHARS));
    for octet in bits.iter() {
        secret.push_str(&format!("{octet:02x}"));
    }
    Ok(secret)
}

impl Auth {
    /// An access token for the API client `client_id` holding `secret`.
    ///
    /// Blocking (one argon2id verification): call it in `spawn_blocking`. Unknown clients,
    /// wrong secrets, locked clients and people's usernames all cost one verification and all
    /// answer [`AuthError::InvalidCredentials`]; failures are throttled like password logins.
    pub fn client_token(
        &self,
        client_id: &str,
        secret: &str,
        client: IpAddr,
    ) -> Result<ClientToken, AuthError> {
        let now = (self.clock)();
        let row = self.verify_secret(client_id, secret, true, client, now)?;
        let principal = Principal::from_row(&row)?;
        let claims = Claims {
            generation: Some(row.generation),
            ..access_claims(&principal, now)
        };
        Ok(ClientToken {
            access_token: self.codec.encode(&claims)?,
            expires_in: ACCESS_TOKEN_LIFETIME_SECS,
        })
    }
}
