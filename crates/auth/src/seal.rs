//! Sealing secrets at rest: AES-256-GCM under a key derived from the server's key, so a copy of
//! the metadata database alone reveals no secret access key.
//!
//! Sealed form: `version (1 byte) || nonce (12 bytes) || ciphertext+tag`. The caller passes
//! associated data (the access key id) so a sealed secret cannot be moved to another key's row.

use std::fmt;
use std::io::Read;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::TokenKey;

const VERSION: u8 = 1;
const NONCE: usize = 12;

/// Fills `N` bytes from the system's random source.
///
/// # Errors
/// When `/dev/urandom` cannot be read.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// The key secrets are sealed with. Never printed.
#[derive(Clone)]
pub struct SealKey(Aes256Gcm);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(***)")
    }
}

impl SealKey {
    /// Derives the sealing key from the server key (HMAC-SHA256 with a fixed label), so one key
    /// file serves tokens and sealing without reusing the same bytes for both.
    #[must_use]
    pub fn derive(server: &TokenKey) -> Self {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(server.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"berth secret sealing v1");
        let derived = mac.finalize().into_bytes();
        SealKey(Aes256Gcm::new_from_slice(&derived).unwrap_or_else(|_| unreachable!("HMAC-SHA256 gives 32 bytes")))
    }

    /// Seals `secret`, bound to `context`.
    ///
    /// # Errors
    /// When no random nonce can be read.
    pub fn seal(&self, secret: &[u8], context: &[u8]) -> std::io::Result<Vec<u8>> {
        let nonce: [u8; NONCE] = random_bytes()?;
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad: context })
            .map_err(|_| std::io::Error::other("sealing failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`SealKey::seal`] made with the same `context`; `None` if it was altered,
    /// sealed under another key or for another context.
    #[must_use]
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION || rest.len() < NONCE {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE);
        self.0.decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: context }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = SealKey::derive(&TokenKey::from_bytes([7; 32]));
        let sealed = key.seal(b"wJalrXUtnFEMI/K7MDENG", b"AKIA1").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"wJalr"), "no plaintext in the sealed form");
        assert_eq!(key.open(&sealed, b"AKIA1").unwrap(), b"wJalrXUtnFEMI/K7MDENG");
        assert_eq!(key.open(&sealed, b"AKIA2"), None, "bound to its context");
        let other = SealKey::derive(&TokenKey::from_bytes([8; 32]));
        assert_eq!(other.open(&sealed, b"AKIA1"), None, "another server key");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(key.open(&bad, b"AKIA1"), None, "byte {i} altered");
        }
        assert_eq!(key.open(&[], b""), None);
        assert_eq!(key.open(&[1, 2, 3], b""), None);
        assert_ne!(key.seal(b"s", b"c").unwrap(), key.seal(b"s", b"c").unwrap(), "fresh nonces");
    }
}
