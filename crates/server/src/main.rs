//! `berth`: the composition root. The only place that names concrete backends.

mod admin;
mod config;
mod http;
mod identity;
mod throttle;
mod tls;
mod workers;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_blobstore_fs::FsBlobStore;
use berth_meta_sqlite::SqliteMeta;
use berth_registry::{Authorizer, Options, Registry};
use clap::{Parser, Subcommand};
use figment::providers::Env;

use crate::config::{Config, Overrides};

#[derive(Parser)]
#[command(name = "berth", version, about = "A container registry with the Amazon ECR API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve {
        /// Address to listen on [default: 127.0.0.1:5000].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Data directory [default: ./berth-data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve without authentication (every caller may pull and push).
        #[arg(long)]
        anonymous: bool,
        /// PEM certificate chain: serve HTTPS (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Manage accounts, users, access keys and identity policies, on the data directory (or
    /// database) a registry uses. Works whether or not the server runs; a running server sees
    /// changes within seconds.
    Admin {
        /// Data directory [default: ./berth-data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { listen, data, config, anonymous, tls_cert, tls_key } => {
            let flags = Overrides { listen, data, anonymous: anonymous.then_some(true), tls_cert, tls_key };
            let cfg = Config::load(config.as_deref(), Env::prefixed("BERTH_"), &flags)
                .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(cfg))
        }
        Command::Admin { data, config, command } => {
            let flags = Overrides { data, ..Overrides::default() };
            let cfg = Config::load(config.as_deref(), Env::prefixed("BERTH_"), &flags)
                .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
                std::fs::create_dir_all(&cfg.data).with_context(|| format!("creating {}", cfg.data.display()))?;
                let account = identity::account(&cfg.data, cfg.account.as_deref())?;
                let token_key = identity::token_key(&cfg.data)?;
                let (registry, meta) = open(&cfg, &account, &token_key).await?;
                let result = admin::run(&registry, &account, command).await;
                meta.close().await;
                result
            })
        }
    }
}

/// The registry over the configured backends, acting for `account` by default.
async fn open(
    cfg: &Config,
    account: &str,
    server_key: &berth_auth::TokenKey,
) -> anyhow::Result<(Arc<Registry>, Arc<SqliteMeta>)> {
    let blobs = FsBlobStore::open(&cfg.data).context("opening blob store")?;
    let meta = SqliteMeta::open(&cfg.data.join("meta.db")).await.context("opening metadata database")?;
    let meta = Arc::new(meta);
    let opts = Options {
        create_on_push: cfg.create_on_push,
        max_manifest_bytes: cfg.max_manifest_bytes,
        upload_expiry_ms: i64::try_from(cfg.upload_expiry_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        manifest_cache_entries: cfg.manifest_cache_entries,
        gc_grace_ms: i64::try_from(cfg.gc_grace_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        upload_limits: berth_registry::UploadLimits {
            per_principal: cfg.upload_sessions_per_principal,
            per_account: cfg.upload_sessions_per_account,
            empty_expiry_ms: i64::try_from(cfg.upload_empty_expiry_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        },
        throttle: throttle::limits(&cfg.throttle).map_err(|e| anyhow::anyhow!("configuration: {e}"))?,
    };
    let authz = Authorizer::new(cfg.anonymous, &cfg.region, account, server_key);
    let registry = Arc::new(Registry::new(Arc::new(blobs), meta.clone(), authz, opts));
    registry.ensure_account(account, "default").await.context("recording the default account")?;
    Ok((registry, meta))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log))
        .context("log filter")?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    tracing::info!(config = ?cfg, "starting");
    raise_open_files_limit();

    if cfg.anonymous {
        tracing::warn!("anonymous access is on: anyone who can reach this port may pull and push through /v2");
    }
    std::fs::create_dir_all(&cfg.data).with_context(|| format!("creating {}", cfg.data.display()))?;
    let identity = identity::load(&cfg.data, cfg.account.as_deref(), identity::admin_from_env())?;
    let (registry, meta) = open(&cfg, &identity.account, &identity.token_key).await?;
    let (id, secret) = &identity.admin;
    registry.bootstrap_admin(&identity.account, id, secret).await.context("recording the administrator")?;
    let workers = workers::start(Arc::clone(&registry), &cfg);

    let sweeper = {
        let registry = Arc::clone(&registry);
        // Often enough that sessions which never received a byte go soon after their expiry.
        let every = Duration::from_secs(cfg.sweep_interval_secs.min(cfg.upload_empty_expiry_secs / 2).max(1));
        tokio::spawn(async move {
            loop {
                match registry.sweep_uploads().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "swept abandoned uploads"),
                    Err(e) => tracing::warn!(error = %e, "upload sweep failed"),
                }
                tokio::time::sleep(every).await;
            }
        })
    };

    if let Some(path) = &identity.created_file {
        eprintln!(
            "berth: created administrator credentials in {path} (mode 0600). Use them with\n  \
             AWS_SHARED_CREDENTIALS_FILE={path} aws ecr describe-repositories --endpoint-url http://<address> --region {region}",
            path = path.display(),
            region = cfg.region
        );
    }
    let lifecycle = {
        let registry = Arc::clone(&registry);
        let every = Duration::from_secs(cfg.lifecycle_interval_secs.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // Pull times first, so sinceImagePulled rules see the latest.
                if let Err(e) = registry.flush_pulls().await {
                    tracing::warn!(error = %e, "recording pull times failed");
                }
                if let Err(e) = registry.lifecycle_run_all().await {
                    tracing::warn!(error = %e, "applying lifecycle policies failed");
                }
            }
        })
    };
    let flush_registry = Arc::clone(&registry);
    let pull_flusher = {
        let registry = Arc::clone(&registry);
        let every = Duration::from_secs(cfg.pull_flush_secs.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = registry.flush_pulls().await {
                    tracing::warn!(error = %e, "recording pull times failed");
                }
            }
        })
    };
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => Some(tls::start(cert, key).context("TLS")?),
        (None, None) => None,
        _ => anyhow::bail!("configuration: tls_cert and tls_key go together"),
    };
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let ecr = berth_api_ecr::EcrApi {
        registry: Arc::clone(&registry),
        region: cfg.region.clone(),
        account: identity.account,
        registry_host: cfg.public_address.clone().unwrap_or_else(|| addr.to_string()),
        token_key: identity.token_key.clone(),
        intake: berth_api_ecr::intake::Intake::new(
            cfg.ecr_body_memory_bytes,
            Duration::from_secs(cfg.body_timeout_secs),
        ),
    };
    let oci = berth_api_oci::OciApi { registry, token_key: identity.token_key };
    let app = berth_api_oci::router(Arc::new(oci)).merge(berth_api_ecr::router(Arc::new(ecr)));
    tracing::info!(%addr, "listening");
    {
        let mut out = std::io::stdout().lock();
        let scheme = if tls.is_some() { "https" } else { "http" };
        writeln!(out, "berth: listening on {scheme}://{addr}")?;
        out.flush()?;
    }
    let limits = http::Limits {
        header_timeout: Duration::from_secs(cfg.header_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(cfg.idle_timeout_secs.max(1)),
        body_timeout: Duration::from_secs(cfg.body_timeout_secs.max(1)),
        max_connections_per_ip: cfg.max_connections_per_ip,
    };
    http::serve(listener, app, limits, tls, shutdown_signal()).await;
    sweeper.abort();
    pull_flusher.abort();
    lifecycle.abort();
    if let Err(e) = flush_registry.flush_pulls().await {
        tracing::warn!(error = %e, "recording pull times failed");
    }
    workers.stop().await;
    meta.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft limit on open files to the hard limit: the common default of 1,024 is
/// what a few hundred idle clients exhaust, after which nobody can connect.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(limit = n, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
