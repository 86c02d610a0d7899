//! What the core's tests share: the default account, its repositories, and the embedded stores
//! in a tempdir.

#![allow(dead_code)] // each test binary uses its own part

use std::path::Path;
use std::sync::Arc;

use berth_meta_sqlite::SqliteMeta;
use berth_registry::Authorizer;
use berth_types::{AccountId, Region, RepositoryKey, RepositoryName};

/// The registry's default account.
pub fn acct() -> AccountId {
    AccountId::parse("111122223333").unwrap()
}

/// A repository of the default account's registry.
pub fn key(name: &str) -> RepositoryKey {
    RepositoryKey::new(acct(), RepositoryName::parse(name).unwrap())
}

/// Authorization in `us-east-1` for the default account, anonymous callers allowed or not.
pub fn authz(anonymous: bool) -> Authorizer {
    Authorizer::new(
        anonymous,
        &Region::parse("us-east-1").unwrap(),
        &acct(),
        &berth_auth::TokenKey::from_bytes([1; 32]),
    )
}

/// The SQLite metadata store in `dir`.
pub async fn meta(dir: &Path) -> Arc<SqliteMeta> {
    Arc::new(SqliteMeta::open(&dir.join("meta.db"), &acct()).await.unwrap())
}
