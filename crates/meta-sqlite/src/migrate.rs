//! Schema migrations and the database file's upkeep settings.
//!
//! Migrations run in order, all of those pending in one transaction, with foreign keys off (a
//! step may rebuild a table, which SQLite's own procedure for a changed table requires) and
//! every foreign key checked before the commit. `PRAGMA user_version` records how many ran.

use berth_meta::{Error, Result};
use berth_types::AccountId;
use rusqlite::Connection;

use crate::backend;

/// One migration: a script, or a script that takes the default account as `?1`.
enum Step {
    Sql(&'static str),
    WithDefaultAccount(&'static str),
}

const MIGRATIONS: &[Step] = &[
    Step::Sql(include_str!("schema.sql")),
    Step::Sql(include_str!("schema2.sql")),
    Step::Sql(include_str!("schema3.sql")),
    Step::Sql(include_str!("schema4.sql")),
    Step::Sql(include_str!("schema5.sql")),
    Step::WithDefaultAccount(include_str!("schema6.sql")),
    Step::Sql(include_str!("schema7.sql")),
];

/// A database up to this size is converted to incremental auto-vacuum when opened (a one-time
/// `VACUUM`, which rewrites the file and briefly needs as much free disk again). A larger one
/// keeps its mode, and `reclaim` gives nothing back, until converted offline:
/// `sqlite3 meta.db 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'` with the server stopped.
pub(crate) const VACUUM_AT_OPEN_MAX_BYTES: i64 = 256 << 20;

/// Runs the pending migrations.
pub(crate) fn migrate(conn: &Connection, default_account: &AccountId) -> Result<()> {
    migrate_to(conn, default_account, MIGRATIONS.len())
}

/// Runs migrations up to `target` (tests build databases as older releases left them).
pub(crate) fn migrate_to(conn: &Connection, default_account: &AccountId, target: usize) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
    let done = usize::try_from(version).unwrap_or(0);
    if done > MIGRATIONS.len() {
        return Err(Error::Backend("database schema is newer than this berth".into()));
    }
    if done >= target {
        return Ok(());
    }
    // `foreign_keys` cannot change inside a transaction.
    conn.execute_batch("PRAGMA foreign_keys = OFF").map_err(backend)?;
    let result = (|| -> rusqlite::Result<()> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for step in &MIGRATIONS[done..target] {
            match step {
                Step::Sql(sql) => conn.execute_batch(sql)?,
                Step::WithDefaultAccount(sql) => run_with_account(conn, sql, default_account)?,
            }
        }
        let broken: Option<String> =
            conn.query_row("PRAGMA foreign_key_check", [], |r| r.get(0)).map(Some).or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if let Some(table) = broken {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                Some(format!("migration left a dangling reference in {table}")),
            ));
        }
        conn.execute_batch(&format!("PRAGMA user_version = {target}; COMMIT;"))
    })();
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let on = conn.execute_batch("PRAGMA foreign_keys = ON");
    result.and(on).map_err(backend)
}

/// Runs `sql` with `?1` standing for the account. The account id is twelve ASCII digits (its
/// type checks that), so it is written into the script as a literal.
fn run_with_account(conn: &Connection, sql: &str, account: &AccountId) -> rusqlite::Result<()> {
    debug_assert!(account.as_str().bytes().all(|b| b.is_ascii_digit()));
    conn.execute_batch(&sql.replace("?1", &format!("'{}'", account.as_str())))
}

/// Turns on incremental auto-vacuum, so `reclaim` can give free pages back. A new database
/// gets it before its first table; an existing small one is rewritten once (`VACUUM`).
pub(crate) fn incremental_vacuum(conn: &Connection) -> Result<()> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).map_err(backend)?;
    if mode == 2 {
        return Ok(());
    }
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL").map_err(backend)?;
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).map_err(backend)?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).map_err(backend)?;
    if mode == 2 && tables == 0 {
        return Ok(());
    }
    let bytes: i64 = conn
        .query_row("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()", [], |r| r.get(0))
        .map_err(backend)?;
    if tables == 0 || bytes <= VACUUM_AT_OPEN_MAX_BYTES {
        // Best effort: another process holding the file (a `berth admin` run) only postpones
        // the conversion to a later open.
        let _ = conn.execute_batch("VACUUM");
    }
    Ok(())
}
