//! The registry's default account, the server key, and the bootstrap administrator's key pair
//! (which `serve` then records, sealed, in the metadata store with the other users' keys).
//!
//! The administrator is `BERTH_ADMIN_ACCESS_KEY_ID` / `BERTH_ADMIN_SECRET_ACCESS_KEY` when both
//! are set. Otherwise the first start creates a key pair and writes it to `<data>/credentials`
//! in AWS shared-credentials format, readable by the owner only; later starts read it back.
//! The secret is never logged or printed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};

pub struct Identity {
    pub account: String,
    /// The server key, kept in `<data>/token.key`: registry tokens are made and checked with
    /// it, and secrets are sealed under a key derived from it.
    pub token_key: berth_auth::TokenKey,
    /// The administrator's access key id and secret.
    pub admin: (String, String),
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
    let valid = |a: &str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
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

/// The administrator key pair from the environment (`BERTH_ADMIN_ACCESS_KEY_ID`,
/// `BERTH_ADMIN_SECRET_ACCESS_KEY`), if set.
pub fn admin_from_env() -> (Option<String>, Option<String>) {
    (std::env::var("BERTH_ADMIN_ACCESS_KEY_ID").ok(), std::env::var("BERTH_ADMIN_SECRET_ACCESS_KEY").ok())
}

/// Loads (or on first start creates) the account and the administrator. `env` is the key pair
/// from [`admin_from_env`].
pub fn load(
    data: &Path,
    configured_account: Option<&str>,
    env: (Option<String>, Option<String>),
) -> anyhow::Result<Identity> {
    let account = account(data, configured_account)?;
    let path = data.join("credentials");
    let mut created_file = None;
    let (id, secret) = match env {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => (id, secret),
        (Some(_), None) | (None, Some(_)) => {
            bail!("set both BERTH_ADMIN_ACCESS_KEY_ID and BERTH_ADMIN_SECRET_ACCESS_KEY, or neither")
        }
        _ => match fs::read_to_string(&path) {
            Ok(text) => parse_credentials_file(&text)
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
                (id, secret)
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        },
    };
    let token_key = token_key(data)?;
    Ok(Identity { account, token_key, admin: (id, secret), created_file })
}

/// The server key: read from `<data>/token.key`, or made once (mode 0600).
pub fn token_key(data: &Path) -> anyhow::Result<berth_auth::TokenKey> {
    let path = data.join("token.key");
    match fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; 32] =
                bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))?;
            Ok(berth_auth::TokenKey::from_bytes(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = berth_auth::TokenKey::generate()?;
            let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
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
        let first = load(dir.path(), None, (None, None)).unwrap();
        let path = first.created_file.clone().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = load(dir.path(), None, (None, None)).unwrap();
        assert!(again.created_file.is_none());
        assert_eq!(again.account, first.account);
        assert_eq!(again.admin, first.admin);
        assert_eq!(first.account.len(), 12);
        assert!(load(dir.path(), Some("12345"), (None, None)).is_err());
        assert!(load(dir.path(), None, (Some("AKIAONLYID".into()), None)).is_err(), "both or neither");
        let env = load(dir.path(), None, (Some("AKIAFROMENV".into()), Some("s".into()))).unwrap();
        assert!(env.admin.0 == "AKIAFROMENV" && env.created_file.is_none());
    }
}
