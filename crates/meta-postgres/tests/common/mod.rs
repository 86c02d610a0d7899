//! A fresh database per test on the server `TEST_DATABASE_URL` names (a server URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the test ends, so tests run in
//! parallel. Without the variable, tests say they were skipped and pass.

#![allow(dead_code)] // each test binary uses its own part

use berth_meta_postgres::{PgMeta, PgOptions};
use berth_types::AccountId;

/// The account test nodes serve by default.
pub fn default_account() -> AccountId {
    AccountId::parse("999988887777").unwrap()
}

/// Options of a test node: a few connections (tests run in parallel against one server).
pub fn options() -> PgOptions {
    PgOptions { max_connections: 4, ..PgOptions::default() }
}

/// A database of its own, dropped (with every connection to it) when this is.
pub struct TestDb {
    /// The URL of the database.
    pub url: String,
    server: String,
    name: String,
}

impl TestDb {
    /// A fresh, empty database, or `None` (after saying so) when no server is configured.
    pub async fn create(test: &str) -> Option<TestDb> {
        let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("skipped {test}: TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!("berth_test_{}", uuid_like());
        admin(&server, &format!("CREATE DATABASE {name}")).await;
        Some(TestDb { url: with_database(&server, &name), server, name })
    }

    /// Opens a node on this database.
    pub async fn open(&self) -> PgMeta {
        PgMeta::open(&self.url, &default_account(), options()).await.unwrap()
    }

    /// A plain client on this database, for checks the traits do not offer.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) =
            self.url.parse::<tokio_postgres::Config>().unwrap().connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside any runtime's async context, possibly while a test unwinds.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(admin(&server, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")));
        })
        .join();
    }
}

/// Runs one statement on the server's own database.
async fn admin(server: &str, sql: &str) {
    let (client, conn) =
        server.parse::<tokio_postgres::Config>().unwrap().connect(tokio_postgres::NoTls).await.unwrap();
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("TEST_DATABASE_URL is a postgres:// URL");
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{name}{query}")
}

/// A random lower-case name part.
fn uuid_like() -> String {
    format!("{:016x}", fastrand::u64(..))
}
