//! Configuration: defaults, then a TOML file, then `BERTH_*` environment variables, then flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::throttle::ThrottleRate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: blobs, uploads and the metadata database.
    pub data: PathBuf,
    /// Serve without authentication.
    pub anonymous: bool,
    /// Whether a `/v2` push may create the repository it names. Off by default, as in ECR:
    /// repositories are created with `CreateRepository`.
    pub create_on_push: bool,
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// Idle upload sessions older than this are removed, in seconds.
    pub upload_expiry_secs: u64,
    /// Upload sessions that received no byte this long after they were opened are removed,
    /// in seconds.
    pub upload_empty_expiry_secs: u64,
    /// Upload sessions one principal may have open at once (429 `TOOMANYREQUESTS` /
    /// `LimitExceededException` beyond).
    pub upload_sessions_per_principal: usize,
    /// Upload sessions one account's principals may have open at once, together.
    pub upload_sessions_per_account: usize,
    /// How often every stored blob is read back and checked against its digest, in seconds
    /// (0: never; `berth admin verify` checks at once).
    pub scrub_interval_secs: u64,
    /// How fast the scrubber reads, in bytes per second (0: unthrottled).
    pub scrub_bytes_per_sec: u64,
    /// How often abandoned uploads are swept, in seconds.
    pub sweep_interval_secs: u64,
    /// Resolved manifests kept in memory (0 turns the cache off).
    pub manifest_cache_entries: usize,
    /// How often pull times are written to the metadata store, in seconds (they show as
    /// `lastRecordedPullTime` and drive `sinceImagePulled` lifecycle rules).
    pub pull_flush_secs: u64,
    /// How often lifecycle policies are applied, in seconds (ECR applies them within 24 hours).
    pub lifecycle_interval_secs: u64,
    /// How often garbage collection runs, in seconds (0: continuously, for tests and
    /// benchmarks).
    pub gc_interval_secs: u64,
    /// How long a blob no manifest references is kept after it was last touched (uploaded,
    /// checked, mounted, or its last referencing manifest deleted), in seconds.
    pub gc_grace_secs: u64,
    /// Log filter (`RUST_LOG` syntax), overridden by `RUST_LOG`.
    pub log: String,
    /// The AWS region this registry answers as.
    pub region: String,
    /// The 12-digit account id of the registry; generated on first start when unset.
    #[serde(deserialize_with = "account_id")]
    pub account: Option<String>,
    /// `host:port` clients use to reach this server (for `repositoryUri`); the listen address
    /// when unset.
    pub public_address: Option<String>,
    /// Request rates per account and ECR operation, `[throttle] BatchGetImage = { rate = 2000,
    /// burst = 4000 }` (see `throttle.rs`); none by default. File only.
    pub throttle: BTreeMap<String, ThrottleRate>,
    /// A new connection must send its first request head within this many seconds of being
    /// accepted (TLS handshake included), and a later head within this of its first byte.
    pub header_timeout_secs: u64,
    /// A connection with no request in flight for this many seconds is closed.
    pub idle_timeout_secs: u64,
    /// A request body that makes no progress for this many seconds fails (an upload keeps
    /// nothing of that chunk). Inactivity, not a deadline: big layers stream as long as they flow.
    pub body_timeout_secs: u64,
    /// Open connections allowed from one IP address; a new one over it is closed at once (0: no cap).
    pub max_connections_per_ip: usize,
    /// Bytes of ECR request bodies held in memory at once, server-wide. A request that would
    /// exceed it waits up to 1 s, then is refused with `ThrottlingException` (the aws CLI and
    /// SDKs retry it).
    pub ecr_body_memory_bytes: usize,
    /// PEM certificate chain; with `tls_key`, the listener speaks TLS only (HTTP/2 by ALPN).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`. Both files are reloaded when they change.
    pub tls_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data: PathBuf::from("./berth-data"),
            anonymous: false,
            create_on_push: false,
            max_manifest_bytes: 4 * 1024 * 1024,
            upload_expiry_secs: 24 * 3600,
            upload_empty_expiry_secs: 600,
            upload_sessions_per_principal: 1_000,
            upload_sessions_per_account: 10_000,
            scrub_interval_secs: 7 * 24 * 3600,
            scrub_bytes_per_sec: 32 * 1024 * 1024,
            sweep_interval_secs: 600,
            manifest_cache_entries: 10_000,
            pull_flush_secs: 60,
            lifecycle_interval_secs: 3600,
            gc_interval_secs: 3600,
            gc_grace_secs: 24 * 3600,
            log: "info".into(),
            region: "us-east-1".into(),
            account: None,
            public_address: None,
            throttle: BTreeMap::new(),
            header_timeout_secs: 20,
            idle_timeout_secs: 90,
            body_timeout_secs: 60,
            max_connections_per_ip: 256,
            ecr_body_memory_bytes: 64 * 1024 * 1024,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// An account id as text, also when a layer read it as a number (`BERTH_ACCOUNT=123456789012`
/// comes through the environment layer as an integer, and one with a leading zero loses it).
fn account_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(match Option::<Id>::deserialize(d)? {
        None => None,
        Some(Id::Text(s)) => Some(s),
        Some(Id::Number(n)) => Some(format!("{n:012}")),
    })
}

const KEYS: &[&str] = &[
    "listen",
    "data",
    "anonymous",
    "create_on_push",
    "max_manifest_bytes",
    "upload_expiry_secs",
    "upload_empty_expiry_secs",
    "upload_sessions_per_principal",
    "upload_sessions_per_account",
    "scrub_interval_secs",
    "scrub_bytes_per_sec",
    "sweep_interval_secs",
    "manifest_cache_entries",
    "pull_flush_secs",
    "lifecycle_interval_secs",
    "gc_interval_secs",
    "gc_grace_secs",
    "log",
    "region",
    "account",
    "public_address",
    "header_timeout_secs",
    "idle_timeout_secs",
    "body_timeout_secs",
    "max_connections_per_ip",
    "ecr_body_memory_bytes",
    "tls_cert",
    "tls_key",
];

/// Flags given on the command line, which win over every other layer.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// Loads the layers in order.
    ///
    /// # Errors
    /// When a layer holds an unknown key or a value of the wrong type.
    pub fn load(file: Option<&Path>, env: Env, flags: &Overrides) -> Result<Self, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        fig.merge(env.filter(|k| KEYS.iter().any(|known| k.as_str().eq_ignore_ascii_case(known))))
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns figment::Error
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("berth.toml", "listen = \"127.0.0.1:6000\"\ndata = \"/from/toml\"\nlog = \"debug\"")?;
            jail.set_env("BERTH_DATA", "/from/env");
            jail.set_env("BERTH_ADMIN_ACCESS_KEY_ID", "ignored-here");
            let flags = Overrides { anonymous: Some(true), ..Overrides::default() };
            let c = Config::load(Some(Path::new("berth.toml")), Env::prefixed("BERTH_"), &flags)
                .map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 6000);
            assert_eq!(c.data, PathBuf::from("/from/env"));
            assert!(c.anonymous);
            assert_eq!(c.log, "debug");
            let flags = Overrides { data: Some("/from/flag".into()), ..Overrides::default() };
            let c = Config::load(Some(Path::new("berth.toml")), Env::prefixed("BERTH_"), &flags)
                .map_err(|e| e.to_string())?;
            assert_eq!(c.data, PathBuf::from("/from/flag"));
            jail.set_env("BERTH_ACCOUNT", "012345678901");
            let c = Config::load(None, Env::prefixed("BERTH_"), &flags).map_err(|e| e.to_string())?;
            assert_eq!(c.account.as_deref(), Some("012345678901"), "digits stay an id");
            jail.create_file("bad.toml", "listne = \"x\"")?;
            assert!(Config::load(Some(Path::new("bad.toml")), Env::prefixed("BERTH_"), &flags).is_err());
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns figment::Error
    fn garbage_collection_keys() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None, Env::prefixed("BERTH_"), &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!((c.gc_interval_secs, c.gc_grace_secs), (3600, 86400));
            jail.set_env("BERTH_GC_INTERVAL_SECS", "5");
            jail.create_file("gc.toml", "gc_grace_secs = 60")?;
            let c = Config::load(Some(Path::new("gc.toml")), Env::prefixed("BERTH_"), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!((c.gc_interval_secs, c.gc_grace_secs), (5, 60));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns figment::Error
    fn transport_keys() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None, Env::prefixed("BERTH_"), &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!((c.header_timeout_secs, c.idle_timeout_secs, c.body_timeout_secs), (20, 90, 60));
            assert_eq!(c.max_connections_per_ip, 256);
            assert!(c.tls_cert.is_none() && c.tls_key.is_none());
            jail.set_env("BERTH_HEADER_TIMEOUT_SECS", "3");
            jail.set_env("BERTH_TLS_KEY", "/from/env.key");
            jail.create_file("t.toml", "max_connections_per_ip = 8\ntls_cert = \"/from/toml.pem\"")?;
            let flags = Overrides { tls_cert: Some("/from/flag.pem".into()), ..Overrides::default() };
            let c =
                Config::load(Some(Path::new("t.toml")), Env::prefixed("BERTH_"), &flags).map_err(|e| e.to_string())?;
            assert_eq!((c.header_timeout_secs, c.max_connections_per_ip), (3, 8));
            assert_eq!(c.tls_cert, Some(PathBuf::from("/from/flag.pem")));
            assert_eq!(c.tls_key, Some(PathBuf::from("/from/env.key")));
            Ok(())
        });
    }
}
