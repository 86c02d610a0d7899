//! `berth admin migrate --from <data dir>`: moving up. An embedded data directory (filesystem
//! blobs and SQLite) is copied into the stores the configuration names: PostgreSQL and S3, or
//! another data directory. A user who outgrows one machine keeps everything. The copy itself is
//! `berth_registry::migrate`, written against the store traits; this module opens the stores,
//! settles the identity files and prints.
//!
//! # Identity files
//! Access keys' secrets are sealed under the server key, and the registry a bare address
//! serves is the default account's. The destination must therefore have the source's server
//! key and default account. Both are checked before anything is written:
//! - the server key (`auth.token_key_file`, default `<data>/token.key`): if the destination has
//!   one, it must hold the source's bytes, and the command refuses otherwise. If it has none,
//!   the source's is copied there (mode 0600).
//! - the default account (`auth.default_account`, else `<data>/account-id`): the same rule. If
//!   it is configured, it must be the source's. If `<data>/account-id` exists, it must name the
//!   source's. If neither, the source's file is copied.
//! - the administrator's credentials file (`<data>/credentials`): copied when the destination
//!   has none and configures no administrator, so the same key keeps working. Otherwise the
//!   destination's administrator stays, and the source's administrator key comes across as one
//!   access key among the others.
//!
//! Every node of a cluster must share these files (see `config::StorageConfig::path`).
//!
//! # Output
//! Progress goes to stderr, one line per step, and a JSON summary goes to stdout. The exit
//! status is 1 when anything failed verification or clashed with the destination; the summary
//! lists what and why. A run stopped by a failing store exits 1 too, and a later run resumes.
//! Stop the server on the source first: a server still writing there may add what this run
//! misses, and a later run picks that up.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use berth_blobstore_fs::FsBlobStore;
use berth_meta_sqlite::SqliteMeta;
use berth_registry::migrate::{MigrateReport, Stores, Tally};
use berth_types::AccountId;
use serde_json::json;

use crate::config::Config;
use crate::{backends, workers};

/// The source data directory's identity, as read from its files or given on the command line.
struct Source {
    dir: PathBuf,
    account: AccountId,
    token_key: Vec<u8>,
    token_key_file: PathBuf,
}

fn say(line: &str) {
    eprintln!("berth: migrate: {line}");
}

/// Reads the source's account and server key: `--from-account` / `--from-token-key`, else its
/// `account-id` and `token.key`.
fn source(from: &Path, account: Option<&str>, token_key: Option<&Path>) -> anyhow::Result<Source> {
    if !from.join("meta.db").is_file() {
        bail!("{} is not a Berth data directory (it has no meta.db)", from.display());
    }
    let account = match account {
        Some(a) => a.to_owned(),
        None => {
            let path = from.join("account-id");
            fs::read_to_string(&path)
                .with_context(|| {
                    format!(
                        "reading {} (when the source's server configured auth.default_account, give it as --from-account)",
                        path.display()
                    )
                })?
                .trim()
                .to_owned()
        }
    };
    let account = AccountId::parse(&account).map_err(|e| anyhow::anyhow!("the source's account {account:?}: {e}"))?;
    let token_key_file = token_key.map_or_else(|| from.join("token.key"), Path::to_path_buf);
    let token_key = fs::read(&token_key_file).with_context(|| {
        format!(
            "reading the source's server key {} (when it was kept elsewhere, give it as --from-token-key)",
            token_key_file.display()
        )
    })?;
    if token_key.len() != 32 {
        bail!("{} must hold 32 bytes", token_key_file.display());
    }
    Ok(Source { dir: from.to_owned(), account, token_key, token_key_file })
}

/// Writes a new file readable by its owner only, durably.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Checks the destination's identity files against the source's, refusing a mismatch before
/// anything is written, then copies those the destination lacks (see the module documentation).
fn settle_identity(cfg: &Config, src: &Source) -> anyhow::Result<()> {
    let data = &cfg.storage.path;
    let key_file = cfg.token_key_file();
    let copy_key = match fs::read(&key_file) {
        Ok(bytes) if bytes == src.token_key => false,
        Ok(_) => bail!(
            "the destination's server key {} differs from the source's {}. Access keys' secrets are sealed under \
             the source's key and would not open at the destination. Give the destination the source's key (copy \
             the file, or point auth.token_key_file at it) and run again",
            key_file.display(),
            src.token_key_file.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e).with_context(|| format!("reading {}", key_file.display())),
    };
    let account_file = data.join("account-id");
    let copy_account = match &cfg.auth.default_account {
        Some(a) if a != src.account.as_str() => bail!(
            "the destination's default account (auth.default_account) is {a}, the source's is {}. The registry a \
             bare address serves would change: configure {} and run again",
            src.account,
            src.account
        ),
        Some(_) => false,
        None => match fs::read_to_string(&account_file) {
            Ok(a) if a.trim() == src.account.as_str() => false,
            Ok(a) => bail!(
                "the destination's default account ({}) is {}, the source's is {}. The registry a bare address serves \
                 would change: migrate into a data directory without an account-id, or one naming {}",
                account_file.display(),
                a.trim(),
                src.account,
                src.account
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(e).with_context(|| format!("reading {}", account_file.display())),
        },
    };
    if copy_key {
        write_private(&key_file, &src.token_key)?;
        say(&format!("copied the server key to {}", key_file.display()));
    }
    if copy_account {
        write_private(&account_file, format!("{}\n", src.account).as_bytes())?;
        say(&format!("copied the default account's id to {}", account_file.display()));
    }
    let credentials = data.join("credentials");
    let source_credentials = src.dir.join("credentials");
    if cfg.admin().is_none() && !credentials.exists() && source_credentials.is_file() {
        let bytes =
            fs::read(&source_credentials).with_context(|| format!("reading {}", source_credentials.display()))?;
        write_private(&credentials, &bytes)?;
        say(&format!("copied the administrator's credentials to {}", credentials.display()));
    }
    Ok(())
}

/// Whether the destination is the source itself (the same directory or database file).
fn same_place(cfg: &Config, from: &Path) -> bool {
    let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let from = canon(from);
    from == canon(&cfg.storage.path) || canon(&from.join("meta.db")) == canon(&cfg.sqlite_path())
}

fn tally(t: Tally) -> serde_json::Value {
    json!({ "Copied": t.copied, "AlreadyThere": t.present })
}

fn summary(from: &Path, r: &MigrateReport) -> serde_json::Value {
    json!({
        "Source": from.display().to_string(),
        "Changed": r.changed(),
        "Accounts": tally(r.accounts),
        "Users": tally(r.users),
        "AccessKeys": tally(r.access_keys),
        "UserPolicies": tally(r.user_policies),
        "RegistryPolicies": tally(r.registry_policies),
        "Repositories": tally(r.repositories),
        "Images": tally(r.images),
        "Tags": tally(r.tags),
        "Blobs": tally(r.blobs),
        "BlobLinks": tally(r.blob_links),
        "BytesCopied": r.bytes_copied,
        "LifecycleHistory": tally(r.lifecycle_history),
        "LifecyclePreviews": tally(r.previews),
        "UnreferencedBlobsLeft": r.unreferenced_blobs,
        "LifecycleHistoryLeft": r.history_left,
        "Failures": r.failures.iter().map(|f| json!({ "Item": f.item, "Reason": f.reason })).collect::<Vec<_>>(),
    })
}

/// Runs `berth admin migrate`.
pub async fn run(
    cfg: &Config,
    from: &Path,
    from_account: Option<&str>,
    from_token_key: Option<&Path>,
) -> anyhow::Result<()> {
    if same_place(cfg, from) {
        bail!("the source {} is the destination itself", from.display());
    }
    let src = source(from, from_account, from_token_key)?;
    if let Ok(status) = berth_workers::StatusFile::read(&workers::status_file(from))
        && status.running
        && Path::new(&format!("/proc/{}", status.pid)).exists()
    {
        say(&format!(
            "a server (pid {}) seems to run on {}: what it writes during the copy may be missed; stop it and run \
             again to catch up",
            status.pid,
            from.display()
        ));
    }
    settle_identity(cfg, &src)?;

    let source_meta =
        Arc::new(SqliteMeta::open(&from.join("meta.db"), &src.account).await.context("opening the source's metadata")?);
    let source_blobs = FsBlobStore::open(from).context("opening the source's blobs")?;
    let dest = backends::Backends::open(cfg, &src.account).await.context("opening the destination")?;
    say(&format!("from {} into the configured stores", from.display()));
    let result = berth_registry::migrate::migrate(
        &Stores { blobs: Arc::new(source_blobs), meta: source_meta.clone() },
        &Stores { blobs: Arc::clone(&dest.blobs), meta: Arc::clone(&dest.meta) },
        &say,
    )
    .await;
    // Pull times are written lazily; closing the stores writes them.
    dest.close().await;
    source_meta.close().await;
    let report = result.context("the copy stopped; run the command again to resume")?;
    println!("{}", serde_json::to_string_pretty(&summary(from, &report))?);
    let (b, i, r) = (report.blobs, report.images, report.repositories);
    if !report.changed() {
        say("nothing to copy: the destination already holds everything");
    } else {
        say(&format!(
            "done: {} repositories, {} images and {} blobs ({} bytes) written; {} repositories, {} images and {} blobs \
             were there already",
            r.copied, i.copied, b.copied, report.bytes_copied, r.present, i.present, b.present
        ));
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} items were not copied (listed under Failures). Repair them in the source (a push of a damaged \
             blob stores it again) and run again",
            report.failures.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const ACCOUNT: &str = "111122223333";

    /// A source data directory with its identity files, and a configuration whose data
    /// directory is `dest`.
    fn setup() -> (tempfile::TempDir, Source, Config) {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("src");
        fs::create_dir_all(&from).unwrap();
        fs::write(from.join("meta.db"), b"").unwrap();
        fs::write(from.join("account-id"), format!("{ACCOUNT}\n")).unwrap();
        fs::write(from.join("token.key"), [7u8; 32]).unwrap();
        fs::write(from.join("credentials"), "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s\n")
            .unwrap();
        let src = source(&from, None, None).unwrap();
        let mut cfg = Config::default();
        cfg.storage.path = dir.path().join("dest");
        (dir, src, cfg)
    }

    #[test]
    fn a_new_destination_gets_the_sources_identity_files() {
        let (_dir, src, cfg) = setup();
        settle_identity(&cfg, &src).unwrap();
        let data = &cfg.storage.path;
        assert_eq!(fs::read(data.join("token.key")).unwrap(), [7u8; 32]);
        assert_eq!(fs::read_to_string(data.join("account-id")).unwrap().trim(), ACCOUNT);
        assert_eq!(fs::read(data.join("credentials")).unwrap(), fs::read(src.dir.join("credentials")).unwrap());
        let mode = fs::metadata(data.join("token.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Once they are there, a second run finds them right.
        settle_identity(&cfg, &src).unwrap();
    }

    #[test]
    fn another_server_key_or_account_is_refused_before_anything_is_written() {
        let (_dir, src, mut cfg) = setup();
        let data = cfg.storage.path.clone();
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("token.key"), [8u8; 32]).unwrap();
        let e = settle_identity(&cfg, &src).unwrap_err().to_string();
        assert!(e.contains("server key") && e.contains("differs"), "{e}");
        assert!(!data.join("account-id").exists() && !data.join("credentials").exists());

        fs::write(data.join("token.key"), [7u8; 32]).unwrap();
        fs::write(data.join("account-id"), "999988887777\n").unwrap();
        let e = settle_identity(&cfg, &src).unwrap_err().to_string();
        assert!(e.contains("999988887777") && e.contains(ACCOUNT), "{e}");
        fs::remove_file(data.join("account-id")).unwrap();
        cfg.auth.default_account = Some("999988887777".into());
        assert!(settle_identity(&cfg, &src).is_err());
        cfg.auth.default_account = Some(ACCOUNT.into());
        settle_identity(&cfg, &src).unwrap();
        assert!(!data.join("account-id").exists(), "a configured account needs no file");
    }

    #[test]
    fn the_source_must_be_a_data_directory_other_than_the_destination() {
        let (dir, src, mut cfg) = setup();
        assert!(source(&dir.path().join("nothing"), None, None).err().unwrap().to_string().contains("no meta.db"));
        let e = source(&src.dir, Some("12"), None).err().unwrap().to_string();
        assert!(e.contains("account"), "{e}");
        assert!(!same_place(&cfg, &src.dir));
        cfg.storage.path.clone_from(&src.dir);
        assert!(same_place(&cfg, &src.dir));
    }
}
