//! Schema migrations, run when a node opens the store, and the default account the database
//! serves.
//!
//! Several nodes may start at once against one database. Each runs the pending migrations in
//! one transaction that first takes a transaction-scoped advisory lock: the nodes queue on the
//! lock, the first applies every pending migration and records each in
//! `berth_schema_migrations`, and the others, once it has committed, find nothing left to do.
//! A migration that fails rolls back whole, its record with it, and the next start runs it
//! again. The same transaction records the default account at the first open and refuses a
//! node configured with another one.

use berth_types::AccountId;
use tokio_postgres::Client;

use crate::error::{OpenError, describe};

/// The advisory lock of migrations (any constant that nothing else in the database uses:
/// "berthmig" in ASCII).
const MIGRATION_LOCK: i64 = 0x6265_7274_686d_6967;

/// Migrations by version, in order. Never edit one that has been released: add another.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "schema", include_str!("../migrations/0001_schema.sql")),
    (2, "scan", include_str!("../migrations/0002_scan.sql")),
];

/// The newest schema this build knows.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// How long one node waits for another's migrations (and runs its own) before giving up.
const MIGRATION_TIMEOUT: &str = "300s";

const BOOTSTRAP: &str = "
    CREATE TABLE IF NOT EXISTS berth_schema_migrations (
        version    INTEGER PRIMARY KEY,
        name       TEXT    NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS berth_settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );";

/// Runs the pending migrations and checks the default account, in one transaction. Returns
/// the versions this call applied.
pub(crate) async fn migrate(
    client: &mut Client,
    default_account: &AccountId,
    address: &str,
) -> Result<Vec<i32>, OpenError> {
    let failed = |e: tokio_postgres::Error| OpenError::Database { address: address.to_owned(), reason: describe(&e) };
    let tx = client.transaction().await.map_err(failed)?;
    tx.batch_execute(&format!("SET LOCAL statement_timeout = '{MIGRATION_TIMEOUT}'")).await.map_err(failed)?;
    // Held until this transaction ends: no two nodes migrate at once, and none reads the
    // version table while another is changing it.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(failed)?;
    tx.batch_execute(BOOTSTRAP).await.map_err(failed)?;
    let done: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM berth_schema_migrations", &[])
        .await
        .map_err(failed)?
        .get(0);
    if done > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew { found: done, known: SCHEMA_VERSION });
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, ..)| *v > done) {
        tx.batch_execute(sql).await.map_err(|e| OpenError::Database {
            address: address.to_owned(),
            reason: format!("migration {version} ({name}) failed: {}", describe(&e)),
        })?;
        tx.execute("INSERT INTO berth_schema_migrations (version, name) VALUES ($1, $2)", &[version, name])
            .await
            .map_err(failed)?;
        applied.push(*version);
    }
    // The first node to open the database decides which account it serves by default; a node
    // configured with another would place unowned repositories in the wrong registry.
    let stored: String = tx
        .query_one(
            "WITH ins AS (INSERT INTO berth_settings (key, value) VALUES ('default_account', $1)
                          ON CONFLICT (key) DO NOTHING RETURNING value)
             SELECT value FROM ins UNION ALL SELECT value FROM berth_settings WHERE key = 'default_account'",
            &[&default_account.as_str()],
        )
        .await
        .map_err(failed)?
        .get(0);
    if stored != default_account.as_str() {
        return Err(OpenError::AccountMismatch { stored, configured: default_account.to_string() });
    }
    tx.commit().await.map_err(failed)?;
    Ok(applied)
}
