//! What the database's answers mean for a caller: `meta::Error` for a command, `OpenError` for
//! opening the store.

use std::error::Error as _;

use berth_meta::{Conflict, Error};
use tokio_postgres::error::SqlState;

/// Why `PgMeta::open` failed. Its `Display` is one line that says what is wrong, for the log of a
/// node that will not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("metadata.url is not a valid PostgreSQL URL: {0}")]
    InvalidUrl(String),
    #[error("PostgreSQL at {address} is unreachable: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("PostgreSQL at {address} refused user {user:?}: authentication failed ({reason})")]
    AuthenticationFailed { address: String, user: String, reason: String },
    #[error("PostgreSQL at {address} has no database {database:?} (create it first: CREATE DATABASE {database})")]
    NoDatabase { address: String, database: String },
    #[error("this database serves default account {stored}, but this node is configured with {configured}")]
    AccountMismatch { stored: String, configured: String },
    #[error("the database's schema is version {found}, newer than this berth knows ({known}): upgrade berth")]
    SchemaTooNew { found: i32, known: i32 },
    #[error("PostgreSQL at {address}: {reason}")]
    Database { address: String, reason: String },
}

/// The SQLSTATE of a database error, if the server sent one.
fn code(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

/// A database error whose message says what happened (`tokio_postgres::Error` alone says only
/// "db error" for whatever the server answered).
#[derive(Debug)]
pub(crate) struct PgError(tokio_postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Whether the server gave up on the transaction because it could not be serialized with
/// concurrent ones (40001) or was chosen as a deadlock victim (40P01): running it again from the
/// start is correct and may succeed.
pub(crate) fn is_retryable(e: &Error) -> bool {
    let Error::Unavailable(source) = e else { return false };
    source
        .downcast_ref::<PgError>()
        .and_then(|e| code(&e.0))
        .is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// Whether the server or the path to it is the problem, rather than the command: the command
/// may work when retried later.
fn transient(e: &tokio_postgres::Error) -> bool {
    if let Some(db) = e.as_db_error() {
        let c = db.code();
        let class = &c.code()[..2];
        return class == "08" // connection exception
            || class == "40" // transaction rollback: serialization failure, deadlock
            || class == "53" && *c != SqlState::DISK_FULL // insufficient resources (too many connections, out of memory)
            || class == "57" // operator intervention: statement timeout / cancel, admin or crash shutdown, cannot connect now
            || class == "58" // system error (I/O error on the server)
            || *c == SqlState::LOCK_NOT_AVAILABLE
            || *c == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT;
    }
    // No answer from the server: the connection closed, an I/O error, or a timeout. What is left
    // (a value that does not convert, a wrong column) is this crate's own mistake.
    e.is_closed()
        || e.source().is_some_and(|s| s.is::<std::io::Error>())
        || e.to_string().starts_with("timeout")
        || e.to_string().starts_with("error connecting")
}

/// A database error as `meta::Error`. A miss is never inferred here: each command says what it
/// looked for and did not find. A unique violation is a `Conflict` that commands rename to what
/// the trait calls it.
pub(crate) fn db(e: tokio_postgres::Error) -> Error {
    match code(&e) {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
            let why = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned());
            Error::Conflict(Conflict::Other(why))
        }
        Some(c) if *c == SqlState::DISK_FULL => Error::StorageFull(describe(&e)),
        _ if transient(&e) => Error::Unavailable(Box::new(PgError(e))),
        _ => Error::Backend(Box::new(PgError(e))),
    }
}

/// A pool's failure to hand out a connection: it timed out waiting or connecting, the pool was
/// closed, or connecting failed.
pub(crate) fn pool(e: deadpool_postgres::PoolError) -> Error {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => match db(e) {
            // Whatever the server said, a connection that cannot be made leaves the store
            // unavailable, not the command wrong.
            Error::Backend(e) => Error::Unavailable(e),
            other => other,
        },
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            Error::Unavailable("every database connection stayed busy for the pool's wait timeout".into())
        }
        PoolError::Timeout(_) => Error::Unavailable("connecting to the database timed out".into()),
        PoolError::Closed => Error::Unavailable("the metadata store is closed".into()),
        other => Error::Unavailable(other.to_string().into()),
    }
}

/// The server's message with its code, or the client's error with its cause, on one line.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => match e.source() {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

/// Classifies a failure to connect while opening the store.
pub(crate) fn open_error(e: &tokio_postgres::Error, config: &tokio_postgres::Config) -> OpenError {
    let address = address(config);
    match code(e) {
        Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            OpenError::AuthenticationFailed {
                address,
                user: config.get_user().unwrap_or("").to_owned(),
                reason: describe(e),
            }
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => {
            OpenError::NoDatabase { address, database: database(config) }
        }
        Some(_) => OpenError::Database { address, reason: describe(e) },
        None if e.to_string() == "authentication error" => OpenError::AuthenticationFailed {
            address,
            user: config.get_user().unwrap_or("").to_owned(),
            reason: describe(e),
        },
        None if transient(e) => OpenError::Unreachable { address, reason: describe(e) },
        None => OpenError::Database { address, reason: describe(e) },
    }
}

/// `host:port` of every host the configuration names (or the socket directory).
pub(crate) fn address(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let ports = config.get_ports();
    let port = |i: usize| ports.get(i).or_else(|| ports.first()).copied().unwrap_or(5432);
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| match h {
            Host::Tcp(name) => format!("{name}:{}", port(i)),
            Host::Unix(path) => format!("{}/.s.PGSQL.{}", path.display(), port(i)),
        })
        .collect();
    if hosts.is_empty() { format!("localhost:{}", port(0)) } else { hosts.join(",") }
}

/// The database a configuration names (PostgreSQL defaults it to the user's name).
pub(crate) fn database(config: &tokio_postgres::Config) -> String {
    config.get_dbname().or(config.get_user()).unwrap_or("postgres").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_open_error_is_one_line_that_says_what_is_wrong() {
        let address = "db.example:5432".to_owned();
        let cases = [
            (
                OpenError::Unreachable { address: address.clone(), reason: "Connection refused (os error 111)".into() },
                "PostgreSQL at db.example:5432 is unreachable: Connection refused (os error 111)",
            ),
            (
                OpenError::AuthenticationFailed {
                    address: address.clone(),
                    user: "berth".into(),
                    reason: "password authentication failed for user \"berth\" (28P01)".into(),
                },
                "PostgreSQL at db.example:5432 refused user \"berth\": authentication failed \
                 (password authentication failed for user \"berth\" (28P01))",
            ),
            (
                OpenError::NoDatabase { address: address.clone(), database: "berth".into() },
                "PostgreSQL at db.example:5432 has no database \"berth\" (create it first: CREATE DATABASE berth)",
            ),
            (
                OpenError::AccountMismatch { stored: "111122223333".into(), configured: "444455556666".into() },
                "this database serves default account 111122223333, but this node is configured with 444455556666",
            ),
            (
                OpenError::SchemaTooNew { found: 9, known: 1 },
                "the database's schema is version 9, newer than this berth knows (1): upgrade berth",
            ),
        ];
        for (err, line) in cases {
            assert_eq!(err.to_string(), line);
        }
    }

    #[test]
    fn addresses_name_every_host_with_its_port() {
        let config: tokio_postgres::Config = "postgres://u@a:1,b/db".parse().unwrap();
        assert_eq!(address(&config), "a:1,b:5432");
        let config: tokio_postgres::Config = "postgres://u@h/db".parse().unwrap();
        assert_eq!((address(&config), database(&config)), ("h:5432".into(), "db".into()));
        let config: tokio_postgres::Config = "host=/run/postgresql user=berth".parse().unwrap();
        assert_eq!((address(&config), database(&config)), ("/run/postgresql/.s.PGSQL.5432".into(), "berth".into()));
    }
}
