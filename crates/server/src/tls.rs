//! TLS on the listener: a PEM certificate chain and key, HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2
//! and 1.3 only, and the pair reloaded without a restart when its files change.
//!
//! The crypto provider is `ring`: it builds with a C compiler alone, where `aws-lc-rs` also
//! wants cmake (not on the project machines) and takes several times longer to compile.
//!
//! Reload: every [`CHECK_EVERY`] (a [`Reloader`] job on the worker manager) the files' modification times and sizes are compared with the
//! pair in use. When they changed, the new pair is loaded and checked (the key must match the
//! certificate); a pair that does not load is logged once and the old one stays in service
//! until the files change again. Handshakes always read the pair in use, lock-free apart from
//! one read lock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use berth_workers::{CancellationToken, Counts, Job, Scope};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;

/// How often the certificate files are checked for changes.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Accepts TLS connections with the certificate currently in service.
#[derive(Clone)]
pub struct TlsAcceptor(tokio_rustls::TlsAcceptor);

impl TlsAcceptor {
    pub fn accept(&self, stream: TcpStream) -> tokio_rustls::Accept<TcpStream> {
        self.0.accept(stream)
    }
}

/// Loads the pair (failing when it does not load); the [`Reloader`] watches the files.
///
/// # Errors
/// When the files cannot be read, hold no certificate or key, or the key does not match.
pub fn start(cert: &Path, key: &Path) -> anyhow::Result<(TlsAcceptor, Reloader)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let files = Files { cert: cert.to_owned(), key: key.to_owned() };
    let stamp = files.stamp();
    let first = files.load(&provider)?;
    let resolver = Arc::new(Current(RwLock::new(Arc::new(first))));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let reloader = Reloader { files, seen: Mutex::new(stamp), provider, current: resolver };
    Ok((TlsAcceptor(tokio_rustls::TlsAcceptor::from(Arc::new(config))), reloader))
}

struct Files {
    cert: PathBuf,
    key: PathBuf,
}

/// What identifies a version of the files: modification time and size of each.
type Stamp = [Option<(SystemTime, u64)>; 2];

impl Files {
    fn stamp(&self) -> Stamp {
        let one = |p: &Path| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        [one(&self.cert), one(&self.key)]
    }

    fn load(&self, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .with_context(|| format!("reading certificates from {}", self.cert.display()))?;
        anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", self.cert.display());
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .with_context(|| format!("reading the private key from {}", self.key.display()))?;
        let certified = CertifiedKey::from_der(chain, key, provider)
            .with_context(|| format!("{} and {} do not make a pair", self.cert.display(), self.key.display()))?;
        Ok(certified)
    }
}

/// The pair in service.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }
}

/// Loads the pair again when its files changed (a node-local job: each node has its files).
pub struct Reloader {
    files: Files,
    seen: Mutex<Stamp>,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
}

#[async_trait::async_trait]
impl Job for Reloader {
    fn name(&self) -> &'static str {
        "tls-reload"
    }

    fn scope(&self) -> Scope {
        Scope::Node
    }

    async fn run(&self, _stop: &CancellationToken) -> anyhow::Result<Counts> {
        let now = self.files.stamp();
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if now == *seen {
                return Ok(vec![("reloaded", 0)]);
            }
            *seen = now;
        }
        match self.files.load(&self.provider) {
            Ok(pair) => {
                *self.current.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(pair);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                Ok(vec![("reloaded", 1)])
            }
            Err(e) => {
                // Logged once per change of the files, and the run counts as done: the old pair
                // stays in service until the files change again.
                tracing::warn!(error = format!("{e:#}"), "TLS certificate not reloaded: keeping the one in service");
                Ok(vec![("reloaded", 0)])
            }
        }
    }
}
