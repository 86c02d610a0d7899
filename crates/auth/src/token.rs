//! Registry tokens: what `GetAuthorizationToken` hands out and `/v2/` accepts as the Basic-auth
//! password of user `AWS` (`docker login --username AWS`).
//!
//! A token names its principal, account and expiry and carries an HMAC-SHA256 over them under
//! the server's token key, so any node that holds the key can verify it and nobody without the
//! key can make or alter one. Format: `base64url(payload) "." base64url(mac)`, where payload is
//! `<expires unix seconds>:<account>:<principal ARN>`.

use std::fmt;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long a token is valid: ECR's 12 hours.
pub const TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a signed download URL (`GetDownloadUrlForLayer`) works.
pub const URL_TTL: Duration = Duration::from_secs(3600);
const CONTEXT: &[u8] = b"berth registry token v1\n";

/// The server's secret for registry tokens. Never printed.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

impl TokenKey {
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        TokenKey(bytes)
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// When the system's random source cannot be read.
    pub fn generate() -> std::io::Result<Self> {
        let mut b = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
        Ok(TokenKey(b))
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn mac(&self, payload: &[u8]) -> [u8; 32] {
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(CONTEXT);
        m.update(payload);
        m.finalize().into_bytes().into()
    }

    /// A token for `principal` in `account`, valid until `expires`.
    #[must_use]
    pub fn mint(&self, account: &str, principal: &str, expires: SystemTime) -> String {
        let secs = expires.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let payload = format!("{secs}:{account}:{principal}");
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes())))
    }

    /// The claims of a token this key made, if it has not expired at `now`.
    ///
    /// # Errors
    /// `Invalid` for anything this key did not make (or that was altered), `Expired` after its
    /// expiry.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<TokenClaims, TokenError> {
        let (p, m) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| TokenError::Invalid)?;
        let mac = URL_SAFE_NO_PAD.decode(m).map_err(|_| TokenError::Invalid)?;
        if !bool::from(self.mac(&payload).ct_eq(mac.as_slice())) {
            return Err(TokenError::Invalid);
        }
        let text = String::from_utf8(payload).map_err(|_| TokenError::Invalid)?;
        let mut parts = text.splitn(3, ':');
        let (Some(secs), Some(account), Some(principal)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Invalid);
        };
        let expires = UNIX_EPOCH + Duration::from_secs(secs.parse().map_err(|_| TokenError::Invalid)?);
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok(TokenClaims { account: account.to_owned(), principal: principal.to_owned(), expires })
    }
}

const URL_CONTEXT: &[u8] = b"berth download url v1\n";

/// Query parameters of a signed download URL.
pub const URL_CREDENTIAL: &str = "X-Berth-Credential";
pub const URL_EXPIRES: &str = "X-Berth-Expires";
pub const URL_SIGNATURE: &str = "X-Berth-Signature";

impl TokenKey {
    fn url_mac(&self, path: &str, expires: u64, credential: &str) -> [u8; 32] {
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(URL_CONTEXT);
        m.update(format!("{path}\n{expires}\n{credential}").as_bytes());
        m.finalize().into_bytes().into()
    }

    /// The query string that lets anyone `GET` exactly `path` until `expires`, acting as
    /// `principal` (ECR's `GetDownloadUrlForLayer`). `path` is the URL path as sent.
    #[must_use]
    pub fn sign_url(&self, path: &str, account: &str, principal: &str, expires: SystemTime) -> String {
        let secs = expires.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let credential = URL_SAFE_NO_PAD.encode(format!("{account}:{principal}"));
        let mac = URL_SAFE_NO_PAD.encode(self.url_mac(path, secs, &credential));
        format!("{URL_CREDENTIAL}={credential}&{URL_EXPIRES}={secs}&{URL_SIGNATURE}={mac}")
    }

    /// Checks a signed URL's parameters for `path`.
    ///
    /// # Errors
    /// `Invalid` unless this key signed exactly this path, expiry and credential; `Expired` after.
    pub fn verify_url(
        &self,
        path: &str,
        credential: &str,
        expires: &str,
        signature: &str,
        now: SystemTime,
    ) -> Result<TokenClaims, TokenError> {
        let secs: u64 = expires.parse().map_err(|_| TokenError::Invalid)?;
        // Only the spelling `sign_url` writes: the MAC covers the number, so `+N` or `0N` would
        // otherwise be other valid URLs for the same grant (found by fuzz/registry_token).
        if secs.to_string() != expires {
            return Err(TokenError::Invalid);
        }
        let mac = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Invalid)?;
        if !bool::from(self.url_mac(path, secs, credential).ct_eq(mac.as_slice())) {
            return Err(TokenError::Invalid);
        }
        let expires = UNIX_EPOCH + Duration::from_secs(secs);
        if now >= expires {
            return Err(TokenError::Expired);
        }
        let text = URL_SAFE_NO_PAD
            .decode(credential)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(TokenError::Invalid)?;
        let (account, principal) = text.split_once(':').ok_or(TokenError::Invalid)?;
        Ok(TokenClaims { account: account.to_owned(), principal: principal.to_owned(), expires })
    }
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub account: String,
    pub principal: String,
    pub expires: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the registry token is not valid")]
    Invalid,
    #[error("the registry token has expired")]
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_expiry_and_forgery() {
        let key = TokenKey::from_bytes([7; 32]);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t = key.mint("123456789012", "arn:aws:iam::123456789012:user/a:b", now + TOKEN_TTL);
        let c = key.verify(&t, now).unwrap();
        assert_eq!(c.account, "123456789012");
        assert_eq!(c.principal, "arn:aws:iam::123456789012:user/a:b");
        assert_eq!(key.verify(&t, now + TOKEN_TTL), Err(TokenError::Expired));
        assert_eq!(TokenKey::from_bytes([8; 32]).verify(&t, now), Err(TokenError::Invalid), "another key");
        // Any change to the payload (a longer expiry, another principal) breaks the MAC.
        let (p, m) = t.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode("9999999999:123456789012:arn:aws:iam::123456789012:user/a:b");
        assert_eq!(key.verify(&format!("{forged}.{m}"), now), Err(TokenError::Invalid));
        for bad in ["", ".", "x.y", &format!("{p}."), &format!("{p}.{p}")] {
            assert_eq!(key.verify(bad, now), Err(TokenError::Invalid), "{bad:?}");
        }
        assert_eq!(format!("{key:?}"), "TokenKey(***)");
    }

    #[test]
    fn a_signed_url_has_one_spelling() {
        let key = TokenKey::from_bytes([9; 32]);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let q = key.sign_url("/v2/a/blobs/sha256:1", "123456789012", "arn:aws:iam::1:user/u", now + TOKEN_TTL);
        let p: std::collections::HashMap<&str, &str> = q.split('&').filter_map(|kv| kv.split_once('=')).collect();
        let (c, e, s) = (p[URL_CREDENTIAL], p[URL_EXPIRES], p[URL_SIGNATURE]);
        assert!(key.verify_url("/v2/a/blobs/sha256:1", c, e, s, now).is_ok());
        for other in [format!("+{e}"), format!("0{e}"), format!("00{e}")] {
            assert_eq!(key.verify_url("/v2/a/blobs/sha256:1", c, &other, s, now), Err(TokenError::Invalid), "{other}");
        }
    }

    #[test]
    fn signed_urls_bind_path_expiry_and_credential() {
        let key = TokenKey::from_bytes([9; 32]);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let q = key.sign_url("/v2/a/b/blobs/sha256:1", "123456789012", "arn:aws:iam::1:user/u", now + TOKEN_TTL);
        let p: std::collections::HashMap<&str, &str> = q.split('&').filter_map(|kv| kv.split_once('=')).collect();
        let (c, e, s) = (p[URL_CREDENTIAL], p[URL_EXPIRES], p[URL_SIGNATURE]);
        let claims = key.verify_url("/v2/a/b/blobs/sha256:1", c, e, s, now).unwrap();
        assert_eq!((claims.account.as_str(), claims.principal.as_str()), ("123456789012", "arn:aws:iam::1:user/u"));
        assert_eq!(key.verify_url("/v2/a/b/blobs/sha256:2", c, e, s, now), Err(TokenError::Invalid), "other path");
        assert_eq!(key.verify_url("/v2/a/b/blobs/sha256:1", c, "9999999999", s, now), Err(TokenError::Invalid));
        let other = URL_SAFE_NO_PAD.encode("999999999999:arn:aws:iam::9:user/x");
        assert_eq!(key.verify_url("/v2/a/b/blobs/sha256:1", &other, e, s, now), Err(TokenError::Invalid));
        assert_eq!(key.verify_url("/v2/a/b/blobs/sha256:1", c, e, s, now + TOKEN_TTL), Err(TokenError::Expired));
    }
}
