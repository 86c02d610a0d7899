//! The registry's default account, the server key, and the bootstrap administrator's key pair
//! (which `serve` then records, sealed, in the metadata store with the other users' keys).
//!
//! The administrator is `auth.admin_access_key_id` / `auth.admin_secret_access_key` of the
//! configuration when both are set. Otherwise the first start creates a key pair and writes it to `<data>/credentials`
//! in AWS shared-credentials format, readable by the owner only; later starts read it back.
//! The secret is never logged or printed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};

use crate::config::Secret;

pub struct Identity {
    pub account: String,
    /// The server key, kept in `<data>/token.key`: registry tokens are made and checked with
    /// it, and secrets are sealed under a key derived from it.
    pub token_key: berth_auth::TokenKey,
    /// The administrator's access key id and secret.
    pub admin: (String, Secret),
    /// Set when this start created the credentials file.
    pub created_file: Option<std::path::PathBuf>,
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::new();
    while out.len() < bytes * 2 {
        out.push_str(&hex_upper(uuid::Uuid::new_v4().as_bytes()));
    }
    out.truncate(bytes * 2);
    out
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The account id: configured, else kept in `<data>/account-id`, else made up once.
pub fn account(data: &Path, configured: Option<&str>) -> anyhow::Result<String> {
    let valid = |a: &str| berth_types::AccountId::parse(a).is_ok();
    if let Some(a) = configured {
        if !valid(a) {
            bail!("account must be 12 digits, not {a:?}");
        }
        return Ok(a.to_owned());
    }
    let path = data.join("account-id");
    if let Ok(a) = fs::read_to_string(&path) {
        let a = a.trim();
        if valid(a) {
            return Ok(a.to_owned());
        }
        bail!("{} does not hold a 12-digit account id", path.display());
    }
    let digits: String = uuid::Uuid::new_v4().as_bytes().iter().map(|b| char::from(b'0' + b % 10)).take(12).collect();
    // Account ids do not start with 0.
    let a = match digits.strip_prefix('0') {
        Some(rest) => format!("1{rest}"),
        None => digits,
    };
    fs::write(&path, format!("{a}\n")).with_context(|| format!("writing {}", path.display()))?;
    Ok(a)
}

fn parse_credentials_file(text: &str) -> Option<(String, String)> {
    let mut id = None;
    let mut secret = None;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    Some((id?, secret?))
}

/// Loads (or on first start creates) the account, the administrator and the server key.
/// `admin` is the configured key pair, if any; `token_key_file` where the server key is kept.
pub fn load(
    data: &Path,
    configured_account: Option<&str>,
    admin: Option<(String, Secret)>,
    token_key_file: &Path,
) -> anyhow::Result<Identity> {
    let account = account(data, configured_account)?;
    let path = data.join("credentials");
    let mut created_file = None;
    let (id, secret) = match admin {
        Some(pair) => pair,
        _ => match fs::read_to_string(&path) {
            Ok(text) => parse_credentials_file(&text)
                .map(|(id, secret)| (id, Secret::from(secret)))
                .with_context(|| format!("{} has no aws_access_key_id / aws_secret_access_key", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = format!("AKIA{}", random_hex(8));
                let secret = random_hex(20);
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                writeln!(f, "[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}")?;
                f.sync_all()?;
                created_file = Some(path.clone());
                (id, Secret::from(secret))
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        },
    };
    let token_key = token_key(token_key_file)?;
    Ok(Identity { account, token_key, admin: (id, secret), created_file })
}

/// The server key: read from `path` (`<data>/token.key` by default), or made there once
/// (mode 0600).
pub fn token_key(path: &Path) -> anyhow::Result<berth_auth::TokenKey> {
    match fs::read(path) {
        Ok(bytes) => {
            let bytes: [u8; 32] =
                bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))?;
            Ok(berth_auth::TokenKey::from_bytes(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = berth_auth::TokenKey::generate()?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(key.as_bytes())?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn creates_once_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("token.key");
        let first = load(dir.path(), None, None, &key).unwrap();
        let path = first.created_file.clone().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = load(dir.path(), None, None, &key).unwrap();
        assert!(again.created_file.is_none());
        assert_eq!(again.account, first.account);
        assert_eq!(again.admin, first.admin);
        assert_eq!(again.token_key.as_bytes(), first.token_key.as_bytes());
        assert_eq!(first.account.len(), 12);
        assert!(load(dir.path(), Some("12345"), None, &key).is_err());
        let admin = Some(("AKIAFROMENV".to_owned(), Secret::from("s".to_owned())));
        let configured = load(dir.path(), None, admin, &key).unwrap();
        assert!(configured.admin.0 == "AKIAFROMENV" && configured.created_file.is_none());
    }
}
