//! A database that stops, hangs or is too busy answers `Unavailable` within the bounds of
//! `PgOptions`, never hangs a caller. The node talks to the server through a small TCP proxy in
//! the test, which can drop every connection (a stopped server) or stop passing bytes (a hung
//! one).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_meta::{Error, ImageMeta, RepoMeta};
use berth_meta_postgres::{PgMeta, PgOptions};
use berth_types::{AccountId, Reference, RepositoryKey, RepositoryName};
use common::{TestDb, default_account};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Forwards connections to the server until stopped; while frozen it passes no bytes.
struct Proxy {
    addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        let flag = Arc::clone(&frozen);
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else { continue };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                connections.spawn(pipe(cr, sw, Arc::clone(&flag)));
                connections.spawn(pipe(sr, cw, Arc::clone(&flag)));
            }
        });
        Proxy { addr, frozen, tasks }
    }

    /// Drops every connection and stops listening, as a stopped server would.
    fn stop(&mut self) {
        self.tasks.abort_all();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The test database's URL through a proxy, and the proxy.
async fn through_proxy(db: &TestDb) -> (String, Proxy) {
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(_) => panic!("TEST_DATABASE_URL must name a TCP host"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port)).await.unwrap().next().unwrap();
    let proxy = Proxy::start(upstream).await;
    let url = db.url.replacen(&format!("{host}:{port}"), &proxy.addr.to_string(), 1);
    assert_ne!(url, db.url, "TEST_DATABASE_URL must name host:port");
    (url, proxy)
}

fn key(name: &str) -> RepositoryKey {
    RepositoryKey::new(AccountId::parse("111111111111").unwrap(), RepositoryName::parse(name).unwrap())
}

fn unavailable<T: std::fmt::Debug>(r: berth_meta::Result<T>) -> String {
    match r {
        Err(e @ Error::Unavailable(_)) => {
            eprintln!("{e}");
            e.to_string()
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_server_is_unavailable_at_once() {
    let Some(db) = TestDb::create("a_stopped_server_is_unavailable_at_once").await else { return };
    let (url, mut proxy) = through_proxy(&db).await;
    let opts = PgOptions { max_connections: 2, ..PgOptions::default() };
    let store = PgMeta::open(&url, &default_account(), opts).await.unwrap();
    assert!(store.create_repository(&key("before/stop")).await.unwrap());
    proxy.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let why = unavailable(store.create_repository(&key("after/stop")).await);
        assert!(started.elapsed() < Duration::from_secs(6), "{:?}: {why}", started.elapsed());
        let why = unavailable(store.resolve(&key("before/stop"), &Reference::parse("v1").unwrap()).await);
        assert!(why.starts_with("metadata database is unavailable"), "{why}");
    }
    store.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_server_is_unavailable_within_the_deadline() {
    let Some(db) = TestDb::create("a_hung_server_is_unavailable_within_the_deadline").await else { return };
    let (url, proxy) = through_proxy(&db).await;
    let opts = PgOptions {
        max_connections: 2,
        connect_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
        pool_wait_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_secs(2),
    };
    let store = PgMeta::open(&url, &default_account(), opts).await.unwrap();
    assert!(store.create_repository(&key("before/hang")).await.unwrap());
    proxy.frozen.store(true, Ordering::Relaxed);
    for name in ["during/hang/one", "during/hang/two", "during/hang/three"] {
        let started = Instant::now();
        unavailable(store.create_repository(&key(name)).await);
        unavailable(store.repository_exists(&key(name)).await);
        // Two commands of at most `operation_timeout` (2 s) each, with room for a slow machine.
        assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    }
    // Once the server answers again, so does the store: the stuck connections were dropped.
    proxy.frozen.store(false, Ordering::Relaxed);
    assert!(store.repository_exists(&key("before/hang")).await.unwrap());
    store.close();
}

/// A statement that waits past `statement_timeout` (here on a lock another session holds) is
/// cancelled by the server, and a command that finds every connection busy gives up after
/// `pool_wait_timeout`: both are `Unavailable`, and nothing was written.
#[tokio::test(flavor = "multi_thread")]
async fn statement_and_pool_timeouts_are_unavailable() {
    let Some(db) = TestDb::create("statement_and_pool_timeouts_are_unavailable").await else { return };
    let opts = PgOptions {
        max_connections: 1,
        statement_timeout: Duration::from_millis(600),
        pool_wait_timeout: Duration::from_millis(100),
        ..PgOptions::default()
    };
    let store = Arc::new(PgMeta::open(&db.url, &default_account(), opts).await.unwrap());
    let mut locker = db.client().await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE repositories IN ACCESS EXCLUSIVE MODE").await.unwrap();

    let blocked = tokio::spawn({
        let store = Arc::clone(&store);
        async move {
            let started = Instant::now();
            (store.create_repository(&key("locked/out")).await, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let why = unavailable(store.repository_exists(&key("locked/out")).await);
    assert!(why.contains("busy"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(3), "pool wait: {:?} {why}", started.elapsed());
    let (result, took) = blocked.await.unwrap();
    let why = unavailable(result);
    assert!(why.contains("statement timeout"), "{why}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    tx.rollback().await.unwrap();
    assert!(!store.repository_exists(&key("locked/out")).await.unwrap(), "nothing was written");
    assert!(store.create_repository(&key("locked/out")).await.unwrap());
    store.close();
}
