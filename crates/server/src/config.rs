//! Configuration: one tree nested by concern, read from defaults, then a TOML file, then
//! `BERTH_*` environment variables, then command-line flags; validated at start.
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:5000"
//! registry_domain = "registry.example.com"   # <account-id>.registry.example.com
//! [storage]
//! kind = "fs"
//! path = "/var/lib/berth"
//! [gc]
//! grace_secs = 3600
//! ```
//!
//! An environment variable names a key by its path, sections joined by `__`:
//! `BERTH_SERVER__LISTEN`, `BERTH_GC__GRACE_SECS`. Any key may be read from a file by adding
//! `_FILE` to its variable (`BERTH_AUTH__ADMIN_SECRET_ACCESS_KEY_FILE=/run/secrets/berth`),
//! which is how secrets are best given. `BERTH_*` variables that name no key are ignored
//! (with a warning); unknown keys in the file, or under a known section in the environment,
//! are errors.
//!
//! The flat keys of earlier releases (`gc_grace_secs`, `BERTH_LISTEN`, ...) still work, in the
//! file and in the environment, as deprecated aliases of their new keys ([`ALIASES`]): each
//! use is logged at start with the key to write instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, bail};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use crate::throttle::ThrottleRate;

/// Prefix of the environment variables read.
pub const ENV_PREFIX: &str = "BERTH_";

/// The flat keys of earlier releases and the keys that replace them.
pub const ALIASES: &[(&str, &str)] = &[
    ("listen", "server.listen"),
    ("public_address", "server.public_address"),
    ("region", "server.region"),
    ("log", "server.log"),
    ("tls_cert", "server.tls.cert"),
    ("tls_key", "server.tls.key"),
    ("header_timeout_secs", "server.header_timeout_secs"),
    ("idle_timeout_secs", "server.idle_timeout_secs"),
    ("body_timeout_secs", "server.body_timeout_secs"),
    ("max_connections_per_ip", "server.max_connections_per_ip"),
    ("ecr_body_memory_bytes", "server.ecr_body_memory_bytes"),
    ("data", "storage.path"),
    ("anonymous", "auth.anonymous"),
    ("account", "auth.default_account"),
    ("admin_access_key_id", "auth.admin_access_key_id"),
    ("admin_secret_access_key", "auth.admin_secret_access_key"),
    ("create_on_push", "registry.create_on_push"),
    ("max_manifest_bytes", "registry.max_manifest_bytes"),
    ("manifest_cache_entries", "registry.manifest_cache_entries"),
    ("upload_expiry_secs", "uploads.expiry_secs"),
    ("upload_empty_expiry_secs", "uploads.empty_expiry_secs"),
    ("upload_sessions_per_principal", "uploads.sessions_per_principal"),
    ("upload_sessions_per_account", "uploads.sessions_per_account"),
    ("sweep_interval_secs", "uploads.sweep_interval_secs"),
    ("pull_flush_secs", "pulls.flush_interval_secs"),
    ("gc_interval_secs", "gc.interval_secs"),
    ("gc_grace_secs", "gc.grace_secs"),
    ("lifecycle_interval_secs", "lifecycle.interval_secs"),
    ("scrub_interval_secs", "scrub.interval_secs"),
    ("scrub_bytes_per_sec", "scrub.bytes_per_sec"),
];

/// Keys whose environment values are taken as text as they are (never as numbers or lists).
const TEXT_KEYS: &[&str] =
    &["auth.admin_access_key_id", "auth.admin_secret_access_key", "auth.default_account", "server.region"];

/// Text that is never printed: `Debug`, `Display` and `Serialize` all give `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub metadata: MetadataConfig,
    pub auth: AuthConfig,
    pub registry: RegistryConfig,
    pub uploads: UploadsConfig,
    pub pulls: PullsConfig,
    pub gc: GcConfig,
    pub lifecycle: LifecycleConfig,
    pub scrub: ScrubConfig,
    pub scanning: ScanningConfig,
    /// Request rates per account and ECR operation, `[throttle] BatchGetImage = { rate = 2000,
    /// burst = 4000 }` (see `throttle.rs`); none by default.
    pub throttle: BTreeMap<String, ThrottleRate>,
}

/// The listener and how the server presents itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `host:port` clients use to reach this server (for `repositoryUri`); the listen address
    /// when unset. It serves the default account's registry.
    pub public_address: Option<String>,
    /// A DNS domain under which each account's registry is addressed by host,
    /// `<account-id>.<registry_domain>[:port]`, as ECR does; unset: one host for all.
    pub registry_domain: Option<String>,
    /// The AWS region this registry answers as.
    pub region: String,
    /// Log filter (`RUST_LOG` syntax), overridden by `RUST_LOG`.
    pub log: String,
    pub tls: TlsConfig,
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            public_address: None,
            registry_domain: None,
            region: "us-east-1".into(),
            log: "info".into(),
            tls: TlsConfig::default(),
            header_timeout_secs: 20,
            idle_timeout_secs: 90,
            body_timeout_secs: 60,
            max_connections_per_ip: 256,
            ecr_body_memory_bytes: 64 * 1024 * 1024,
        }
    }
}

/// With both set, the listener speaks TLS only (HTTP/2 by ALPN); both files are reloaded when
/// they change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

/// Where blobs and uploads are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub kind: StorageKind,
    /// The data directory: blobs and uploads (with `kind = "fs"`) and, unless configured
    /// elsewhere, the metadata database, the server key, the default account's id and the
    /// administrator's credentials file. With `kind = "s3"` and PostgreSQL it holds only those
    /// three identity files, which every node of a cluster must share.
    pub path: PathBuf,
    /// The bucket, with `kind = "s3"`.
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { kind: StorageKind::Fs, path: PathBuf::from("./berth-data"), s3: S3Config::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A local filesystem directory.
    Fs,
    /// An S3-compatible object store.
    S3,
}

/// An S3-compatible bucket. Credentials not given here come from the usual AWS variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or the shared
/// credentials file's profile (`AWS_PROFILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: Option<String>,
    /// Keys go under this prefix inside the bucket.
    pub prefix: Option<String>,
    /// `http(s)://host:port` of an S3-compatible server; AWS when unset.
    pub endpoint: Option<String>,
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most self-hosted servers need.
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    /// Blob GETs answer 307 to a presigned URL of the bucket (and ECR's download URLs are
    /// such URLs), as ECR does with S3: the bytes then do not pass through Berth.
    pub redirect: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: None,
            prefix: None,
            endpoint: None,
            region: "us-east-1".into(),
            path_style: false,
            access_key_id: None,
            secret_access_key: None,
            redirect: false,
        }
    }
}

/// Where the metadata (repositories, images, identities, policies) is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// `sqlite:///abs/path/meta.db` or `sqlite://relative/meta.db`; `sqlite://<storage.path>/meta.db`
    /// when unset. Or `postgres://user:password@host:port/database` (PostgreSQL 15 or later),
    /// which several nodes share. Never logged: it may hold a password.
    pub url: Option<Secret>,
    /// Connections each node keeps to PostgreSQL at most.
    pub max_connections: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig { url: None, max_connections: 16 }
    }
}

/// Who may do what, and the keys that prove it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Serve without authentication.
    pub anonymous: bool,
    /// The 12-digit id of the default account (the one the bare `public_address` serves);
    /// generated on first start into `<storage.path>/account-id` when unset.
    #[serde(deserialize_with = "account_id")]
    pub default_account: Option<String>,
    /// The bootstrap administrator's access key id; with its secret, instead of the
    /// credentials file made on first start.
    pub admin_access_key_id: Option<String>,
    pub admin_secret_access_key: Option<Secret>,
    /// The server key (registry tokens, sealed secrets): `<storage.path>/token.key` when unset,
    /// made there on first start.
    pub token_key_file: Option<PathBuf>,
}

/// How the core treats repositories and manifests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Whether a `/v2` push may create the repository it names. Off by default, as in ECR:
    /// repositories are created with `CreateRepository`.
    pub create_on_push: bool,
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// Resolved manifests kept in memory (0 turns the cache off).
    pub manifest_cache_entries: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig { create_on_push: false, max_manifest_bytes: 4 * 1024 * 1024, manifest_cache_entries: 10_000 }
    }
}

/// Upload sessions: limits and the sweeper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// Idle upload sessions older than this are removed, in seconds.
    pub expiry_secs: u64,
    /// Sessions that received no byte this long after they were opened are removed, in seconds.
    pub empty_expiry_secs: u64,
    /// Sessions one principal may have open at once (429 `TOOMANYREQUESTS` /
    /// `LimitExceededException` beyond).
    pub sessions_per_principal: usize,
    /// Sessions one account's principals may have open at once, together.
    pub sessions_per_account: usize,
    /// How often abandoned sessions are swept, in seconds (at least twice per `empty_expiry_secs`).
    pub sweep_interval_secs: u64,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        UploadsConfig {
            expiry_secs: 24 * 3600,
            empty_expiry_secs: 600,
            sessions_per_principal: 1_000,
            sessions_per_account: 10_000,
            sweep_interval_secs: 600,
        }
    }
}

/// Pull times, buffered in memory and written in batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullsConfig {
    /// How often pull times are written to the metadata store, in seconds (they show as
    /// `lastRecordedPullTime` and drive `sinceImagePulled` lifecycle rules).
    pub flush_interval_secs: u64,
}

impl Default for PullsConfig {
    fn default() -> Self {
        PullsConfig { flush_interval_secs: 60 }
    }
}

/// Garbage collection of blobs no manifest references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// How often it runs, in seconds (0: continuously, for tests and benchmarks).
    pub interval_secs: u64,
    /// How long an unreferenced blob is kept after it was last touched (uploaded, checked,
    /// mounted, or its last referencing manifest deleted), in seconds.
    pub grace_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig { interval_secs: 3600, grace_secs: 24 * 3600 }
    }
}

/// Lifecycle policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// How often they are applied, in seconds (ECR applies them within 24 hours).
    pub interval_secs: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig { interval_secs: 3600 }
    }
}

/// The scrubber, which reads every stored blob back and checks it against its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrubConfig {
    /// How often, in seconds (0: never; `berth admin verify` checks at once).
    pub interval_secs: u64,
    /// How fast it reads, in bytes per second (0: unthrottled).
    pub bytes_per_sec: u64,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig { interval_secs: 7 * 24 * 3600, bytes_per_sec: 32 * 1024 * 1024 }
    }
}

/// Vulnerability scanning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanningConfig {
    /// Where this node keeps vulnerability database files [default: `<storage.path>/vulndb`].
    pub dir: Option<PathBuf>,
    /// Enhanced scanning re-matches an image while it was pushed or pulled within this many
    /// days (ECR's re-scan duration); older images become SCAN_ELIGIBILITY_EXPIRED.
    pub rescan_days: u64,
    /// How often an idle node looks for queued scans, in milliseconds.
    pub poll_ms: u64,
    /// How long a node's claim on a scan lasts unless renewed, in milliseconds: after a crash,
    /// the scan it was running is taken up again this long after.
    pub lease_ms: u64,
}

impl Default for ScanningConfig {
    fn default() -> Self {
        ScanningConfig { dir: None, rescan_days: 30, poll_ms: 500, lease_ms: 30_000 }
    }
}

impl ScanningConfig {
    /// The directory of vulnerability database files.
    #[must_use]
    pub fn dir(&self, data: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data.join("vulndb"))
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

/// Flags given on the command line, which win over every other layer.
#[derive(Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    pub anonymous: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Overrides {
    fn provider(&self) -> Serialized<Dict> {
        let mut dict = Dict::new();
        let mut set = |path: &str, v: Value| insert(&mut dict, path, v).expect("flag paths are distinct");
        if let Some(a) = self.listen {
            set("server.listen", a.to_string().into());
        }
        if let Some(d) = &self.data {
            set("storage.path", d.display().to_string().into());
        }
        if let Some(a) = self.anonymous {
            set("auth.anonymous", a.into());
        }
        if let Some(c) = &self.tls_cert {
            set("server.tls.cert", c.display().to_string().into());
        }
        if let Some(k) = &self.tls_key {
            set("server.tls.key", k.display().to_string().into());
        }
        Serialized::defaults(dict)
    }
}

/// A loaded configuration with the notes to log once logging is set up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Deprecated keys used, and `BERTH_*` variables that name no key.
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads the layers in order and validates the result. `env` is the process environment
    /// (`std::env::vars()`); only `BERTH_*` variables are read.
    ///
    /// # Errors
    /// A layer holds an unknown key or a value of the wrong type, a deprecated key and its
    /// replacement are both set in one layer, a `_FILE` cannot be read, or a value is not valid
    /// ([`Config::validate`]).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> anyhow::Result<Loaded> {
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let known = known_keys();
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            fig = fig.merge(Aliased { inner: Toml::file_exact(f), warnings: Arc::clone(&warnings) });
        }
        let env = EnvLayer::read(env, &known)?;
        let config: Config = fig.merge(&env).merge(flags.provider()).extract().map_err(|e| anyhow::anyhow!("{e}"))?;
        config.validate()?;
        let mut warnings = std::mem::take(&mut *warnings.lock().unwrap_or_else(PoisonError::into_inner));
        warnings.extend(env.warnings);
        Ok(Loaded { config, warnings })
    }

    /// Checks what the types do not.
    ///
    /// # Errors
    /// The first value that is not usable, named by its key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let s = &self.server;
        if let Some(d) = &s.registry_domain {
            check_domain(d).with_context(|| format!("server.registry_domain {d:?}"))?;
        }
        if let Some(a) = &s.public_address
            && (a.is_empty() || a.contains("://") || a.contains('/') || a.chars().any(char::is_whitespace))
        {
            bail!("server.public_address {a:?}: give host[:port], without a scheme or path");
        }
        if s.region.is_empty() || !s.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            bail!("server.region {:?}: an AWS region name, such as us-east-1", s.region);
        }
        tracing_subscriber::EnvFilter::try_new(&s.log).with_context(|| format!("server.log {:?}", s.log))?;
        if s.tls.cert.is_some() != s.tls.key.is_some() {
            bail!("server.tls.cert and server.tls.key go together (--tls-cert and --tls-key)");
        }
        if self.storage.path.as_os_str().is_empty() {
            bail!("storage.path is empty");
        }
        if let Some(url) = &self.metadata.url {
            match url.expose().split_once("://") {
                Some(("sqlite", path)) if !path.is_empty() => {}
                Some(("sqlite", _)) => bail!("metadata.url: name the database file, sqlite://PATH"),
                Some(("postgres" | "postgresql", rest)) if !rest.is_empty() => {}
                _ => bail!("metadata.url: give sqlite://PATH or postgres://user:password@host:port/database"),
            }
        }
        if self.metadata.max_connections == 0 {
            bail!("metadata.max_connections must be above 0");
        }
        if self.storage.kind == StorageKind::S3 {
            let s3 = &self.storage.s3;
            if s3.bucket.as_deref().is_none_or(str::is_empty) {
                bail!("storage.s3.bucket: name the bucket (BERTH_STORAGE__S3__BUCKET) when storage.kind is s3");
            }
            if let Some(e) = &s3.endpoint
                && !(e.starts_with("http://") || e.starts_with("https://"))
            {
                bail!("storage.s3.endpoint {e:?}: give http(s)://host[:port]");
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                bail!("storage.s3.access_key_id and storage.s3.secret_access_key go together");
            }
        } else if self.storage.s3.redirect {
            bail!("storage.s3.redirect needs storage.kind = \"s3\"");
        }
        let a = &self.auth;
        if let Some(id) = &a.default_account
            && (id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            bail!("auth.default_account {id:?}: an account id is 12 digits");
        }
        if self.admin().is_none()
            && (a.admin_access_key_id.as_ref().is_some_and(|id| !id.is_empty())
                || a.admin_secret_access_key.as_ref().is_some_and(|s| !s.expose().is_empty()))
        {
            bail!(
                "auth.admin_access_key_id and auth.admin_secret_access_key go together, both non-empty \
                 (BERTH_AUTH__ADMIN_ACCESS_KEY_ID, BERTH_AUTH__ADMIN_SECRET_ACCESS_KEY[_FILE])"
            );
        }
        if self.registry.max_manifest_bytes == 0 {
            bail!("registry.max_manifest_bytes must be above 0");
        }
        crate::throttle::limits(&self.throttle).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// The configured administrator key pair; both empty counts as unset.
    #[must_use]
    pub fn admin(&self) -> Option<(String, Secret)> {
        let id = self.auth.admin_access_key_id.clone().filter(|id| !id.is_empty())?;
        let secret = self.auth.admin_secret_access_key.clone().filter(|s| !s.expose().is_empty())?;
        Some((id, secret))
    }

    /// The PostgreSQL URL, when the metadata is kept there.
    #[must_use]
    pub fn postgres_url(&self) -> Option<&str> {
        let url = self.metadata.url.as_ref()?.expose();
        (url.starts_with("postgres://") || url.starts_with("postgresql://")).then_some(url)
    }

    /// The metadata database file.
    #[must_use]
    pub fn sqlite_path(&self) -> PathBuf {
        match self.metadata.url.as_ref().and_then(|u| u.expose().strip_prefix("sqlite://")) {
            Some(path) => PathBuf::from(path),
            None => self.storage.path.join("meta.db"),
        }
    }

    /// The server key's file.
    #[must_use]
    pub fn token_key_file(&self) -> PathBuf {
        self.auth.token_key_file.clone().unwrap_or_else(|| self.storage.path.join("token.key"))
    }
}

/// A DNS name under which `<12 digits>.` still fits: lowercase labels of letters, digits and
/// inner hyphens, not an IP address, no port.
fn check_domain(d: &str) -> anyhow::Result<()> {
    if d.len() > 240 {
        bail!("longer than 240 characters");
    }
    if d.contains(':') {
        bail!("a domain only: the port is the one clients connect to");
    }
    for label in d.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            bail!("{label:?} is not a DNS label (lowercase letters, digits and inner hyphens, 1 to 63)");
        }
    }
    if d.rsplit('.').next().is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit())) {
        bail!("an IP address cannot have account subdomains");
    }
    Ok(())
}

/// Every key the tree has, as dotted paths, taken from the defaults (so the list cannot drift
/// from the types). Tables of the user's own keys (`throttle`) are one entry.
fn known_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, dict: &Dict, out: &mut BTreeSet<String>) {
        for (k, v) in dict {
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                Value::Dict(_, inner) if !inner.is_empty() => walk(&path, inner, out),
                _ => {
                    out.insert(path);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    if let Ok(Value::Dict(_, dict)) = Value::serialize(Config::default()) {
        walk("", &dict, &mut out);
    }
    out
}

/// Sets `path` (dotted) in `dict`, making the tables on the way.
fn insert(dict: &mut Dict, path: &str, value: Value) -> Result<(), String> {
    match path.split_once('.') {
        None => {
            dict.insert(path.to_owned(), value);
            Ok(())
        }
        Some((head, rest)) => {
            let entry = dict.entry(head.to_owned()).or_insert_with(|| Value::from(Dict::new()));
            match entry {
                Value::Dict(_, inner) => insert(inner, rest, value),
                _ => Err(format!("{head} is a value, not a table")),
            }
        }
    }
}

fn contains(dict: &Dict, path: &str) -> bool {
    match path.split_once('.') {
        None => dict.contains_key(path),
        Some((head, rest)) => matches!(dict.get(head), Some(Value::Dict(_, inner)) if contains(inner, rest)),
    }
}

/// A layer whose deprecated flat keys are moved to their new place, with a warning each.
struct Aliased<P> {
    inner: P,
    warnings: Arc<Mutex<Vec<String>>>,
}

impl<P: Provider> Provider for Aliased<P> {
    fn metadata(&self) -> Metadata {
        self.inner.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let meta = self.inner.metadata();
        let source = meta.source.map_or_else(|| meta.name.to_string(), |s| s.to_string());
        let mut data = self.inner.data()?;
        for dict in data.values_mut() {
            for (old, new) in ALIASES {
                let Some(value) = dict.remove(*old) else { continue };
                if contains(dict, new) {
                    return Err(format!(
                        "{old} and {new} are both set in {source}: {old} is the old name of {new}; keep {new}"
                    )
                    .into());
                }
                insert(dict, new, value).map_err(|e| format!("setting {new} (from {old}) in {source}: {e}"))?;
                let env = format!("{ENV_PREFIX}{}", new.replace('.', "__").to_uppercase());
                self.warnings
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!("{old} (in {source}) is deprecated: use {new} (environment: {env})"));
            }
        }
        Ok(data)
    }
}

/// The `BERTH_*` variables as a layer: `__` nests, `_FILE` reads the value from a file, and the
/// flat names of earlier releases are moved to their new keys.
struct EnvLayer {
    dict: Dict,
    /// Deprecated names used, and variables that name no key.
    warnings: Vec<String>,
}

impl EnvLayer {
    fn read(vars: impl IntoIterator<Item = (String, String)>, known: &BTreeSet<String>) -> anyhow::Result<Self> {
        let sections: BTreeSet<&str> = known.iter().filter_map(|k| k.split_once('.').map(|(s, _)| s)).collect();
        let alias = |path: &str| ALIASES.iter().find(|(old, _)| *old == path).map(|(_, new)| *new);
        let key = |path: &str| known.contains(path) || alias(path).is_some();
        let mut dict = Dict::new();
        let mut warnings = Vec::new();
        let mut ignored = Vec::new();
        let mut vars: Vec<_> = vars.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        vars.sort();
        for (var, raw) in vars {
            let path = var[ENV_PREFIX.len()..].to_ascii_lowercase().replace("__", ".");
            let (path, from_file) = if key(&path) {
                (path, false)
            } else if let Some(base) = path.strip_suffix("_file").filter(|b| key(b)) {
                (base.to_owned(), true)
            } else if path.split_once('.').is_some_and(|(s, _)| sections.contains(s) || s == "throttle") {
                // Under a section: the tree accepts it or refuses it by name.
                (path, false)
            } else {
                ignored.push(format!("{var} names no configuration key; ignored"));
                continue;
            };
            let path = match alias(&path) {
                Some(new) => {
                    let suffix = if from_file { "_FILE" } else { "" };
                    let env = format!("{ENV_PREFIX}{}{suffix}", new.replace('.', "__").to_uppercase());
                    warnings.push(format!("{var} is deprecated: use {env} ({new})"));
                    new.to_owned()
                }
                None => path,
            };
            let text = if from_file {
                let text = std::fs::read_to_string(&raw).with_context(|| format!("{var}: reading {raw}"))?;
                text.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                raw
            };
            // Secrets, ids and names stay text; other values are read as figment reads them
            // (`true`, `5`, `[a, b]`), and a value from a file is always text.
            let value = if from_file || TEXT_KEYS.contains(&path.as_str()) {
                Value::from(text)
            } else {
                text.parse::<Value>().unwrap_or_else(|never| match never {})
            };
            if contains(&dict, &path) {
                bail!("{var} sets {path}, which another BERTH_ variable sets too");
            }
            insert(&mut dict, &path, value).map_err(|e| anyhow::anyhow!("{var}: {e}"))?;
        }
        warnings.extend(ignored);
        Ok(EnvLayer { dict, warnings })
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("`{ENV_PREFIX}` environment variable(s)"))
            .interpolater(|_: &Profile, keys: &[&str]| format!("{ENV_PREFIX}{}", keys.join("__").to_uppercase()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn toml(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn load(
        file: Option<&tempfile::NamedTempFile>,
        vars: &[(&str, &str)],
        flags: &Overrides,
    ) -> anyhow::Result<Loaded> {
        Config::load(file.map(tempfile::NamedTempFile::path), env(vars), flags)
    }

    #[test]
    fn defaults_are_valid_and_keys_come_from_the_tree() {
        let c = load(None, &[], &Overrides::default()).unwrap();
        assert_eq!(c.config, Config::default());
        assert!(c.warnings.is_empty());
        assert_eq!((c.config.gc.interval_secs, c.config.gc.grace_secs), (3600, 86400));
        assert_eq!(c.config.sqlite_path(), PathBuf::from("./berth-data/meta.db"));
        let known = known_keys();
        for key in ["server.listen", "server.tls.cert", "auth.admin_secret_access_key", "metadata.url", "throttle"] {
            assert!(known.contains(key), "{key} in {known:?}");
        }
        for (_, new) in ALIASES {
            assert!(known.contains(*new), "alias target {new} is a key");
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let file = toml("[server]\nlisten = \"127.0.0.1:6000\"\nlog = \"debug\"\n[storage]\npath = \"/from/toml\"\n");
        let flags = Overrides { anonymous: Some(true), ..Overrides::default() };
        let c = load(Some(&file), &[("BERTH_STORAGE__PATH", "/from/env")], &flags).unwrap().config;
        assert_eq!(c.server.listen.port(), 6000);
        assert_eq!(c.storage.path, PathBuf::from("/from/env"));
        assert!(c.auth.anonymous);
        assert_eq!(c.server.log, "debug");
        let flags =
            Overrides { data: Some("/from/flag".into()), tls_cert: Some("/c.pem".into()), ..Overrides::default() };
        let c =
            load(Some(&file), &[("BERTH_STORAGE__PATH", "/from/env"), ("BERTH_SERVER__TLS__KEY", "/k.pem")], &flags)
                .unwrap()
                .config;
        assert_eq!(c.storage.path, PathBuf::from("/from/flag"));
        assert_eq!((c.server.tls.cert, c.server.tls.key), (Some("/c.pem".into()), Some("/k.pem".into())));
    }

    #[test]
    fn environment_nests_with_double_underscores() {
        let vars = [
            ("BERTH_GC__INTERVAL_SECS", "5"),
            ("BERTH_SERVER__REGISTRY_DOMAIN", "registry.example.com"),
            ("BERTH_AUTH__DEFAULT_ACCOUNT", "012345678901"),
            ("BERTH_METADATA__URL", "sqlite:///var/lib/berth/meta.db"),
            ("BERTH_SERVER__REGION", "eu-west-3"),
            ("BERTH_BIN", "/not/ours"),
            ("OTHER", "x"),
        ];
        let l = load(None, &vars, &Overrides::default()).unwrap();
        let c = l.config;
        assert_eq!(c.gc.interval_secs, 5);
        assert_eq!(c.server.registry_domain.as_deref(), Some("registry.example.com"));
        assert_eq!(c.auth.default_account.as_deref(), Some("012345678901"), "digits stay an id");
        assert_eq!(c.sqlite_path(), PathBuf::from("/var/lib/berth/meta.db"));
        assert_eq!(c.server.region, "eu-west-3");
        assert_eq!(l.warnings, vec!["BERTH_BIN names no configuration key; ignored"]);
        let e = load(None, &[("BERTH_SERVER__LISTN", "1.2.3.4:5")], &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
    }

    #[test]
    fn old_flat_keys_still_work_with_a_warning_naming_the_new_key() {
        let file = toml(
            "gc_grace_secs = 60\nlisten = \"127.0.0.1:7000\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\nlog = \"warn\"\n",
        );
        let vars = [
            ("BERTH_GC_INTERVAL_SECS", "5"),
            ("BERTH_CREATE_ON_PUSH", "true"),
            ("BERTH_DATA", "/from/env"),
            ("BERTH_ACCOUNT", "012345678901"),
            ("BERTH_ADMIN_ACCESS_KEY_ID", "AKIAOLD"),
            ("BERTH_ADMIN_SECRET_ACCESS_KEY", "12345"),
            ("BERTH_HEADER_TIMEOUT_SECS", "3"),
            ("BERTH_PULL_FLUSH_SECS", "1"),
        ];
        let l = load(Some(&file), &vars, &Overrides::default()).unwrap();
        let c = &l.config;
        assert_eq!((c.gc.interval_secs, c.gc.grace_secs), (5, 60));
        assert_eq!(c.server.listen.port(), 7000);
        assert_eq!(c.server.tls.cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(c.server.log, "warn");
        assert!(c.registry.create_on_push);
        assert_eq!(c.storage.path, PathBuf::from("/from/env"));
        assert_eq!(c.auth.default_account.as_deref(), Some("012345678901"));
        assert_eq!(c.auth.admin_access_key_id.as_deref(), Some("AKIAOLD"));
        assert_eq!(c.auth.admin_secret_access_key.as_ref().map(Secret::expose), Some("12345"), "a secret stays text");
        assert_eq!(c.server.header_timeout_secs, 3);
        assert_eq!(c.pulls.flush_interval_secs, 1);
        let all = l.warnings.join("\n");
        for (old, new) in [("gc_grace_secs", "gc.grace_secs"), ("tls_cert", "server.tls.cert")] {
            let file = file.path().display();
            assert!(all.contains(&format!("{old} (in {file}) is deprecated: use {new} ")), "{old}: {all}");
        }
        for (old, new) in [
            ("BERTH_GC_INTERVAL_SECS", "BERTH_GC__INTERVAL_SECS (gc.interval_secs)"),
            ("BERTH_DATA", "BERTH_STORAGE__PATH (storage.path)"),
            ("BERTH_ADMIN_SECRET_ACCESS_KEY", "BERTH_AUTH__ADMIN_SECRET_ACCESS_KEY (auth.admin_secret_access_key)"),
        ] {
            assert!(all.contains(&format!("{old} is deprecated: use {new}")), "{old}: {all}");
        }
        // An old variable and its new name together: which one was meant is unclear.
        let e = load(None, &[("BERTH_GC_GRACE_SECS", "1"), ("BERTH_GC__GRACE_SECS", "2")], &Overrides::default());
        assert!(e.unwrap_err().to_string().contains("gc.grace_secs"));
        // An old key and its new name in one layer: which one was meant is unclear.
        let both = toml("gc_grace_secs = 60\n[gc]\ngrace_secs = 70\n");
        let e = load(Some(&both), &[], &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("gc_grace_secs") && e.contains("gc.grace_secs"), "{e}");
        // Across layers, the later one wins as always.
        let l = load(Some(&toml("[gc]\ngrace_secs = 70\n")), &[("BERTH_GC_GRACE_SECS", "80")], &Overrides::default());
        assert_eq!(l.unwrap().config.gc.grace_secs, 80);
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        for (text, name) in [
            ("listne = \"x\"\n", "listne"),
            ("no_such_key = 1\n", "no_such_key"),
            ("[server]\nlisten_on = \"x\"\n", "listen_on"),
            ("[gc]\ngrace = 1\n", "grace"),
        ] {
            let e = load(Some(&toml(text)), &[], &Overrides::default()).unwrap_err().to_string();
            assert!(e.contains(name), "{text:?} -> {e}");
        }
        let e = load(Some(&toml("[storage]\nkind = \"s3\"\n")), &[], &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("s3"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, "s3cr3t-from-file\n").unwrap();
        let vars = [
            ("BERTH_AUTH__ADMIN_ACCESS_KEY_ID", "AKIAFILE"),
            ("BERTH_AUTH__ADMIN_SECRET_ACCESS_KEY_FILE", secret_file.to_str().unwrap()),
        ];
        let c = load(None, &vars, &Overrides::default()).unwrap().config;
        let secret = c.auth.admin_secret_access_key.as_ref().unwrap();
        assert_eq!(secret.expose(), "s3cr3t-from-file", "read from the file, newline trimmed");
        for shown in [format!("{c:?}"), format!("{c:#?}"), format!("{secret}"), serde_json::to_string(&c).unwrap()] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        assert!(format!("{c:?}").contains("[redacted]"));
        let old = [
            ("BERTH_ADMIN_ACCESS_KEY_ID", "AKIAFILE"),
            ("BERTH_ADMIN_SECRET_ACCESS_KEY_FILE", secret_file.to_str().unwrap()),
        ];
        let c = load(None, &old, &Overrides::default()).unwrap().config;
        assert_eq!(c.auth.admin_secret_access_key.unwrap().expose(), "s3cr3t-from-file");
        let e = load(None, &[("BERTH_AUTH__ADMIN_SECRET_ACCESS_KEY_FILE", "/no/such/file")], &Overrides::default());
        assert!(e.unwrap_err().to_string().contains("/no/such/file"));
    }

    #[test]
    fn values_are_validated_at_start() {
        let refused = |vars: &[(&str, &str)], needle: &str| {
            let e = load(None, vars, &Overrides::default()).expect_err(needle);
            assert!(format!("{e:#}").contains(needle), "{vars:?}: {e:#}");
        };
        refused(&[("BERTH_SERVER__REGISTRY_DOMAIN", "Registry.Example.com")], "server.registry_domain");
        refused(&[("BERTH_SERVER__REGISTRY_DOMAIN", "registry.example.com:5000")], "server.registry_domain");
        refused(&[("BERTH_SERVER__REGISTRY_DOMAIN", "10.0.0.1")], "server.registry_domain");
        refused(&[("BERTH_SERVER__REGISTRY_DOMAIN", "-bad.example")], "server.registry_domain");
        refused(&[("BERTH_SERVER__PUBLIC_ADDRESS", "http://x:5000")], "server.public_address");
        refused(&[("BERTH_ACCOUNT", "12345")], "auth.default_account");
        refused(&[("BERTH_AUTH__ADMIN_ACCESS_KEY_ID", "AKIAONLY")], "auth.admin_secret_access_key");
        refused(
            &[("BERTH_ADMIN_ACCESS_KEY_ID", "AKIAONLY"), ("BERTH_ADMIN_SECRET_ACCESS_KEY", "")],
            "auth.admin_secret_access_key",
        );
        let unset = [("BERTH_ADMIN_ACCESS_KEY_ID", ""), ("BERTH_ADMIN_SECRET_ACCESS_KEY", "")];
        assert!(load(None, &unset, &Overrides::default()).unwrap().config.admin().is_none(), "both empty: unset");
        refused(&[("BERTH_SERVER__TLS__CERT", "/c.pem")], "server.tls.key");
        refused(&[("BERTH_METADATA__URL", "mysql://db/berth")], "metadata.url");
        let pg =
            load(None, &[("BERTH_METADATA__URL", "postgres://u:hunter2@db/berth")], &Overrides::default()).unwrap();
        assert_eq!(pg.config.postgres_url(), Some("postgres://u:hunter2@db/berth"));
        assert!(!format!("{:?}", pg.config).contains("hunter2"), "the database password is never printed");
        refused(&[("BERTH_STORAGE__KIND", "s3")], "storage.s3.bucket");
        refused(&[("BERTH_STORAGE__S3__REDIRECT", "true")], "storage.s3.redirect");
        let s3 = load(
            None,
            &[
                ("BERTH_STORAGE__KIND", "s3"),
                ("BERTH_STORAGE__S3__BUCKET", "b"),
                ("BERTH_STORAGE__S3__ENDPOINT", "http://127.0.0.1:7480"),
                ("BERTH_STORAGE__S3__PATH_STYLE", "true"),
            ],
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(s3.config.storage.kind, StorageKind::S3);
        assert!(s3.config.storage.s3.path_style);
        refused(&[("BERTH_SERVER__LOG", "info,[bad")], "server.log");
        refused(&[("BERTH_SERVER__REGION", "")], "server.region");
        let e = load(Some(&toml("[throttle]\nNoSuchOp = { rate = 1 }\n")), &[], &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("NoSuchOp"), "{e}");
        for ok in ["localhost", "registry.example.com", "r-1.example"] {
            assert!(check_domain(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn throttle_table_is_read_from_the_file() {
        let c = load(Some(&toml("[throttle]\nBatchGetImage = { rate = 2, burst = 3 }\n")), &[], &Overrides::default())
            .unwrap()
            .config;
        assert_eq!(c.throttle["BatchGetImage"].burst, Some(3));
    }
}
