//! Registry tokens (`docker login` passwords) and signed download URLs: nothing verifies that
//! the key did not make, byte for byte.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use berth_auth::TokenKey;
use libfuzzer_sys::fuzz_target;

/// The seeds were minted with this key, expiring in 2100; verification is at 2024-01-01.
const KEY: [u8; 32] = [7; 32];
const NOW: u64 = 1_704_067_200;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let key = TokenKey::from_bytes(KEY);
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    if let Ok(c) = key.verify(text, now) {
        assert!(c.expires > now);
        assert_eq!(key.mint(&c.account, &c.principal, c.expires), text, "a verified token is the one minted");
    }
    // A signed URL as four lines: path, credential, expiry, signature.
    let mut lines = text.split('\n');
    if let (Some(path), Some(credential), Some(expires), Some(signature)) =
        (lines.next(), lines.next(), lines.next(), lines.next())
        && let Ok(c) = key.verify_url(path, credential, expires, signature, now)
    {
        assert!(c.expires > now);
        let query = key.sign_url(path, &c.account, &c.principal, c.expires);
        let expected = format!(
            "{}={credential}&{}={expires}&{}={signature}",
            berth_auth::URL_CREDENTIAL,
            berth_auth::URL_EXPIRES,
            berth_auth::URL_SIGNATURE
        );
        assert_eq!(query, expected, "a verified URL is the one signed");
    }
});
