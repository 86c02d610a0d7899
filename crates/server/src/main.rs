//! `berth`: the composition root. The only place that names concrete backends.

mod admin;
mod backends;
mod config;
mod http;
mod identity;
mod migrate;
mod throttle;
mod tls;
mod workers;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_registry::{Authorizer, Options, Registry};
use clap::{Parser, Subcommand};

use crate::config::{Config, Loaded, Overrides};

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
        /// Data directory [default: ./berth-data]. May follow the subcommand.
        #[arg(long, global = true)]
        data: Option<PathBuf>,
        /// TOML configuration file. May follow the subcommand.
        #[arg(long, global = true)]
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
            let loaded = Config::load(config.as_deref(), std::env::vars(), &flags).context("configuration")?;
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(loaded))
        }
        Command::Admin { data, config, command } => {
            let flags = Overrides { data, ..Overrides::default() };
            let loaded = Config::load(config.as_deref(), std::env::vars(), &flags).context("configuration")?;
            for w in &loaded.warnings {
                eprintln!("berth: configuration: {w}");
            }
            let cfg = loaded.config;
            let data = &cfg.storage.path;
            if let admin::AdminCommand::Workers = command {
                return admin::workers(&workers::status_file(data));
            }
            if let admin::AdminCommand::Scan { command: admin::ScanCommand::Stats } = command {
                return admin::scan_stats(&workers::scan_stats_dir(data));
            }
            if let admin::AdminCommand::Migrate { from, from_account, from_token_key } = &command {
                // Before anything below makes the destination's identity files: they must be
                // the source's.
                return tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(migrate::run(
                    &cfg,
                    from,
                    from_account.as_deref(),
                    from_token_key.as_deref(),
                ));
            }
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
                std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
                let account = identity::account(data, cfg.auth.default_account.as_deref())?;
                let token_key = identity::token_key(&cfg.token_key_file())?;
                let (registry, stores) = open(&cfg, &account, &token_key).await?;
                let result = admin::run(&registry, &account, command).await;
                stores.close().await;
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
) -> anyhow::Result<(Arc<Registry>, backends::Backends)> {
    let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let account = berth_types::AccountId::parse(account).context("the default account")?;
    let stores = backends::Backends::open(cfg, &account).await?;
    let opts = Options {
        create_on_push: cfg.registry.create_on_push,
        max_manifest_bytes: cfg.registry.max_manifest_bytes,
        upload_expiry_ms: ms(cfg.uploads.expiry_secs),
        // Another node's stale entry could serve a tag that has moved: no manifest cache when
        // nodes share the metadata.
        manifest_cache_entries: if stores.shared { 0 } else { cfg.registry.manifest_cache_entries },
        gc_grace_ms: ms(cfg.gc.grace_secs),
        upload_limits: berth_registry::UploadLimits {
            per_principal: cfg.uploads.sessions_per_principal,
            per_account: cfg.uploads.sessions_per_account,
            empty_expiry_ms: ms(cfg.uploads.empty_expiry_secs),
        },
        throttle: throttle::limits(&cfg.throttle).map_err(|e| anyhow::anyhow!("configuration: {e}"))?,
        redirect_blobs: cfg.storage.s3.redirect,
        scan_dir: Some(cfg.scanning.dir(&cfg.storage.path)),
        rescan_ms: i64::try_from(cfg.scanning.rescan_days.saturating_mul(24 * 3600 * 1000)).unwrap_or(i64::MAX),
        scan_lease_ms: i64::try_from(cfg.scanning.lease_ms.max(100)).unwrap_or(i64::MAX),
    };
    let region = berth_types::Region::parse(&cfg.server.region).context("server.region")?;
    let authz = if stores.shared {
        Authorizer::with_cache_ttl(cfg.auth.anonymous, &region, &account, server_key, backends::CLUSTER_CACHE_TTL)
    } else {
        Authorizer::new(cfg.auth.anonymous, &region, &account, server_key)
    };
    let registry = Arc::new(Registry::new(Arc::clone(&stores.blobs), Arc::clone(&stores.meta), authz, opts));
    registry.identity.bootstrap(None).await.context("recording the default account")?;
    Ok((registry, stores))
}

async fn serve(loaded: Loaded) -> anyhow::Result<()> {
    let Loaded { config: cfg, warnings } = loaded;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.server.log))
        .context("log filter")?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    for w in &warnings {
        tracing::warn!("configuration: {w}");
    }
    // Secrets print as [redacted].
    tracing::info!(config = ?cfg, "starting");
    raise_open_files_limit();

    if cfg.auth.anonymous {
        tracing::warn!("anonymous access is on: anyone who can reach this port may pull and push through /v2");
    }
    let data = &cfg.storage.path;
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let identity = identity::load(data, cfg.auth.default_account.as_deref(), cfg.admin(), &cfg.token_key_file())?;
    let (registry, stores) = open(&cfg, &identity.account, &identity.token_key).await?;
    let (id, secret) = &identity.admin;
    registry.identity.bootstrap(Some((id, secret.expose()))).await.context("recording the administrator")?;

    if let Some(path) = &identity.created_file {
        eprintln!(
            "berth: created administrator credentials in {path} (mode 0600). Use them with\n  \
             AWS_SHARED_CREDENTIALS_FILE={path} aws ecr describe-repositories --endpoint-url http://<address> --region {region}",
            path = path.display(),
            region = cfg.server.region
        );
    }
    let (tls, tls_reloader) = match (&cfg.server.tls.cert, &cfg.server.tls.key) {
        (Some(cert), Some(key)) => {
            let (acceptor, reloader) = tls::start(cert, key).context("TLS")?;
            (Some(acceptor), Some(reloader))
        }
        _ => (None, None),
    };
    let listen = cfg.server.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let workers = workers::start(&registry, &stores, &cfg, tls_reloader);
    let ecr = berth_api_ecr::EcrApi {
        registry: Arc::clone(&registry),
        region: cfg.server.region.clone(),
        registry_host: cfg.server.public_address.clone().unwrap_or_else(|| addr.to_string()),
        registry_domain: cfg.server.registry_domain.clone(),
        tls: tls.is_some(),
        token_key: identity.token_key.clone(),
        intake: berth_api_ecr::intake::Intake::new(
            cfg.server.ecr_body_memory_bytes,
            Duration::from_secs(cfg.server.body_timeout_secs),
        ),
    };
    let oci = berth_api_oci::OciApi {
        registry,
        token_key: identity.token_key,
        registry_domain: cfg.server.registry_domain.clone(),
    };
    let app = berth_api_oci::router(Arc::new(oci)).merge(berth_api_ecr::router(Arc::new(ecr)));
    tracing::info!(%addr, registry_domain = ?cfg.server.registry_domain, "listening");
    {
        let mut out = std::io::stdout().lock();
        let scheme = if tls.is_some() { "https" } else { "http" };
        writeln!(out, "berth: listening on {scheme}://{addr}")?;
        out.flush()?;
    }
    let limits = http::Limits {
        header_timeout: Duration::from_secs(cfg.server.header_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(cfg.server.idle_timeout_secs.max(1)),
        body_timeout: Duration::from_secs(cfg.server.body_timeout_secs.max(1)),
        max_connections_per_ip: cfg.server.max_connections_per_ip,
    };
    http::serve(listener, app, limits, tls, shutdown_signal()).await;
    // In-flight requests are done: stop the workers (a step in flight finishes, and pull times
    // buffered since the last flush are written), then close the store.
    workers.stop().await;
    stores.close().await;
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
