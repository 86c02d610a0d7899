//! Accounts, users, access keys and policy documents.

use async_trait::async_trait;
use berth_meta::{
    AccessKeyRecord, AccountRecord, Conflict, Error, Expiration, IdentityMeta, Missing, PolicyMeta,
    RepositoryPolicyKind, Result, UserRecord,
};
use berth_types::{AccountId, Digest, RepositoryKey};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{SqliteMeta, backend, repository_key};

/// A backend error, with a uniqueness clash named as `conflict`.
fn clash(e: rusqlite::Error, conflict: impl FnOnce() -> Conflict) -> Error {
    match backend(e) {
        Error::Conflict(_) => Error::Conflict(conflict()),
        other => other,
    }
}

fn no_user(account: &str, name: &str) -> Error {
    Error::NotFound(Missing::User { account: account.to_owned(), name: name.to_owned() })
}

fn collect<T>(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(backend)?;
    let rows = stmt.query_map(args, map).map_err(backend)?;
    rows.map(|r| r.map_err(backend)).collect()
}

fn user_exists(c: &Connection, account: &str, user: &str) -> Result<bool> {
    c.prepare_cached("SELECT 1 FROM users WHERE account_id = ?1 AND name = ?2")
        .and_then(|mut s| s.query_row([account, user], |_| Ok(())).optional())
        .map(|r| r.is_some())
        .map_err(backend)
}

fn access_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        id: r.get(0)?,
        account: r.get(1)?,
        user: r.get(2)?,
        sealed_secret: r.get(3)?,
        created_at: r.get(4)?,
    })
}

const KEY_COLUMNS: &str = "id, account_id, user_name, sealed_secret, created_at";

#[async_trait]
impl IdentityMeta for SqliteMeta {
    async fn create_account(&self, account: &AccountRecord) -> Result<()> {
        let a = account.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached("INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![a.id, a.name, a.created_at]))
                    .map(drop)
                    .map_err(|e| clash(e, || Conflict::AccountExists(a.id.clone())))
            })
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>> {
        self.readers
            .read(|c| {
                collect(c, "SELECT id, name, created_at FROM accounts ORDER BY id", [], |r| {
                    Ok(AccountRecord { id: r.get(0)?, name: r.get(1)?, created_at: r.get(2)? })
                })
            })
            .await
    }

    async fn create_user(&self, user: &UserRecord) -> Result<()> {
        let u = user.clone();
        self.writer
            .write(move |c| {
                let account: Option<()> = c
                    .prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")
                    .and_then(|mut s| s.query_row([&u.account], |_| Ok(())).optional())
                    .map_err(backend)?;
                if account.is_none() {
                    return Err(Error::NotFound(Missing::Account(u.account.clone())));
                }
                c.prepare_cached("INSERT INTO users (account_id, name, created_at) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![u.account, u.name, u.created_at]))
                    .map(drop)
                    .map_err(|e| clash(e, || Conflict::UserExists { account: u.account.clone(), name: u.name.clone() }))
            })
            .await
    }

    async fn delete_user(&self, account: &str, name: &str) -> Result<bool> {
        let (account, name) = (account.to_owned(), name.to_owned());
        self.writer
            .write(move |c| {
                c.prepare_cached("DELETE FROM users WHERE account_id = ?1 AND name = ?2")
                    .and_then(|mut s| s.execute([&account, &name]))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    async fn list_users(&self, account: &str) -> Result<Vec<UserRecord>> {
        let account = account.to_owned();
        self.readers
            .read(move |c| {
                collect(
                    c,
                    "SELECT account_id, name, created_at FROM users WHERE account_id = ?1 ORDER BY name",
                    [&account],
                    |r| Ok(UserRecord { account: r.get(0)?, name: r.get(1)?, created_at: r.get(2)? }),
                )
            })
            .await
    }

    async fn put_access_key(&self, key: &AccessKeyRecord, replace: bool) -> Result<()> {
        let k = key.clone();
        self.writer
            .write(move |c| {
                if !user_exists(c, &k.account, &k.user)? {
                    return Err(no_user(&k.account, &k.user));
                }
                let sql = if replace {
                    "INSERT OR REPLACE INTO access_keys (id, account_id, user_name, sealed_secret, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)"
                } else {
                    "INSERT INTO access_keys (id, account_id, user_name, sealed_secret, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)"
                };
                c.prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![k.id, k.account, k.user, k.sealed_secret, k.created_at]))
                    .map(drop)
                    .map_err(|e| clash(e, || Conflict::AccessKeyExists(k.id.clone())))
            })
            .await
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>> {
        let id = id.to_owned();
        self.readers
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM access_keys WHERE id = ?1"))
                    .and_then(|mut s| s.query_row([&id], access_key_row).optional())
                    .map_err(backend)
            })
            .await
    }

    async fn list_access_keys(&self, account: &str, user: &str) -> Result<Vec<AccessKeyRecord>> {
        let (account, user) = (account.to_owned(), user.to_owned());
        self.readers
            .read(move |c| {
                collect(
                    c,
                    &format!(
                        "SELECT {KEY_COLUMNS} FROM access_keys WHERE account_id = ?1 AND user_name = ?2
                         ORDER BY created_at, id"
                    ),
                    [&account, &user],
                    access_key_row,
                )
            })
            .await
    }

    async fn delete_access_key(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.writer
            .write(move |c| {
                c.prepare_cached("DELETE FROM access_keys WHERE id = ?1")
                    .and_then(|mut s| s.execute([&id]))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    async fn put_user_policy(&self, account: &str, user: &str, name: &str, document: &str) -> Result<()> {
        let (account, user, name, document) =
            (account.to_owned(), user.to_owned(), name.to_owned(), document.to_owned());
        self.writer
            .write(move |c| {
                if !user_exists(c, &account, &user)? {
                    return Err(no_user(&account, &user));
                }
                c.prepare_cached(
                    "INSERT INTO user_policies (account_id, user_name, name, document) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account_id, user_name, name) DO UPDATE SET document = excluded.document",
                )
                .and_then(|mut s| s.execute([&account, &user, &name, &document]))
                .map(drop)
                .map_err(backend)
            })
            .await
    }

    async fn delete_user_policy(&self, account: &str, user: &str, name: &str) -> Result<bool> {
        let (account, user, name) = (account.to_owned(), user.to_owned(), name.to_owned());
        self.writer
            .write(move |c| {
                c.prepare_cached("DELETE FROM user_policies WHERE account_id = ?1 AND user_name = ?2 AND name = ?3")
                    .and_then(|mut s| s.execute([&account, &user, &name]))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    async fn user_policies(&self, account: &str, user: &str) -> Result<Vec<(String, String)>> {
        let (account, user) = (account.to_owned(), user.to_owned());
        self.readers
            .read(move |c| {
                collect(
                    c,
                    "SELECT name, document FROM user_policies WHERE account_id = ?1 AND user_name = ?2 ORDER BY name",
                    [&account, &user],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }
}

fn policy_column(kind: RepositoryPolicyKind) -> &'static str {
    match kind {
        RepositoryPolicyKind::Access => "policy",
        RepositoryPolicyKind::Lifecycle => "lifecycle_policy",
    }
}

/// A repository's policy of one kind (a point query on `UNIQUE (registry, name)`).
pub(crate) fn repository_policy_sql(kind: RepositoryPolicyKind) -> String {
    format!("SELECT {} FROM repositories WHERE registry = ?1 AND name = ?2", policy_column(kind))
}

pub(crate) const REGISTRY_POLICY_SQL: &str = "SELECT document FROM registry_policies WHERE account_id = ?1";

fn repository_policy(c: &Connection, repo: &RepositoryKey, kind: RepositoryPolicyKind) -> Result<Option<String>> {
    c.prepare_cached(&repository_policy_sql(kind))
        .and_then(|mut s| {
            s.query_row([repo.registry.as_str(), repo.name.as_str()], |r| r.get::<_, Option<String>>(0)).optional()
        })
        .map_err(backend)?
        .ok_or_else(|| Error::no_repository(repo))
}

#[async_trait]
impl PolicyMeta for SqliteMeta {
    async fn repository_policy(&self, repo: &RepositoryKey, kind: RepositoryPolicyKind) -> Result<Option<String>> {
        let repo = repo.clone();
        self.readers.read(move |c| repository_policy(c, &repo, kind)).await
    }

    async fn set_repository_policy(
        &self,
        repo: &RepositoryKey,
        kind: RepositoryPolicyKind,
        document: Option<&str>,
    ) -> Result<Option<String>> {
        let (repo, document) = (repo.clone(), document.map(str::to_owned));
        self.writer
            .write(move |c| {
                let previous = repository_policy(c, &repo, kind)?;
                let column = policy_column(kind);
                c.prepare_cached(&format!("UPDATE repositories SET {column} = ?1 WHERE registry = ?2 AND name = ?3"))
                    .and_then(|mut s| s.execute(params![document, repo.registry.as_str(), repo.name.as_str()]))
                    .map_err(backend)?;
                Ok(previous)
            })
            .await
    }

    async fn registry_policy(&self, registry: &AccountId) -> Result<Option<String>> {
        let account = registry.clone();
        self.readers
            .read(move |c| {
                c.prepare_cached(REGISTRY_POLICY_SQL)
                    .and_then(|mut s| s.query_row([account.as_str()], |r| r.get(0)).optional())
                    .map_err(backend)
            })
            .await
    }

    async fn record_lifecycle_run(&self, repo: &RepositoryKey, at: i64, expired: &[Expiration]) -> Result<()> {
        let (repo, expired) = (repo.clone(), expired.to_vec());
        self.writer
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE repositories SET lifecycle_evaluated_at = ?1 WHERE registry = ?2 AND name = ?3",
                    )
                    .and_then(|mut s| s.execute(params![at, repo.registry.as_str(), repo.name.as_str()]))
                    .map_err(backend)?;
                if n == 0 {
                    return Err(Error::no_repository(&repo));
                }
                let mut stmt = c
                    .prepare_cached(
                        "INSERT INTO lifecycle_expirations
                         (registry, repository, digest, tags, pushed_at, rule_priority, expired_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(backend)?;
                for e in &expired {
                    stmt.execute(params![
                        e.repository.registry.as_str(),
                        e.repository.name.as_str(),
                        e.digest.as_str(),
                        e.tags.join("\n"),
                        e.pushed_at,
                        e.rule_priority,
                        e.expired_at
                    ])
                    .map_err(backend)?;
                }
                Ok(())
            })
            .await
    }

    async fn lifecycle_evaluated_at(&self, repo: &RepositoryKey) -> Result<Option<i64>> {
        let repo = repo.clone();
        self.readers
            .read(move |c| {
                c.prepare_cached("SELECT lifecycle_evaluated_at FROM repositories WHERE registry = ?1 AND name = ?2")
                    .and_then(|mut s| {
                        s.query_row([repo.registry.as_str(), repo.name.as_str()], |r| r.get::<_, Option<i64>>(0))
                            .optional()
                    })
                    .map_err(backend)?
                    .ok_or_else(|| Error::no_repository(&repo))
            })
            .await
    }

    async fn lifecycle_history(&self, repo: Option<&RepositoryKey>, limit: usize) -> Result<Vec<Expiration>> {
        let repo = repo.cloned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.readers
            .read(move |c| {
                let columns = "registry, repository, digest, tags, pushed_at, rule_priority, expired_at";
                let row = |r: &rusqlite::Row<'_>| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, u32>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                };
                let rows = match &repo {
                    // Separate statements, so each reads through its own index.
                    Some(k) => collect(
                        c,
                        &format!(
                            "SELECT {columns} FROM lifecycle_expirations WHERE registry = ?1 AND repository = ?2
                             ORDER BY id DESC LIMIT ?3"
                        ),
                        params![k.registry.as_str(), k.name.as_str(), limit],
                        row,
                    )?,
                    None => collect(
                        c,
                        &format!("SELECT {columns} FROM lifecycle_expirations ORDER BY id DESC LIMIT ?1"),
                        params![limit],
                        row,
                    )?,
                };
                rows.into_iter()
                    .map(|(registry, repo, digest, tags, pushed_at, rule_priority, expired_at)| {
                        Ok(Expiration {
                            repository: repository_key(&registry, &repo)?,
                            digest: Digest::parse(&digest).map_err(|_| crate::corrupt("digest"))?,
                            tags: tags.split('\n').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
                            pushed_at,
                            rule_priority,
                            expired_at,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn set_registry_policy(&self, registry: &AccountId, document: Option<&str>) -> Result<Option<String>> {
        let (account, document) = (registry.to_string(), document.map(str::to_owned));
        self.writer
            .write(move |c| {
                let previous: Option<String> = c
                    .prepare_cached("SELECT document FROM registry_policies WHERE account_id = ?1")
                    .and_then(|mut s| s.query_row([&account], |r| r.get(0)).optional())
                    .map_err(backend)?;
                match &document {
                    Some(d) => c
                        .prepare_cached(
                            "INSERT INTO registry_policies (account_id, document) VALUES (?1, ?2)
                             ON CONFLICT (account_id) DO UPDATE SET document = excluded.document",
                        )
                        .and_then(|mut s| s.execute([&account, d])),
                    None => c
                        .prepare_cached("DELETE FROM registry_policies WHERE account_id = ?1")
                        .and_then(|mut s| s.execute([&account])),
                }
                .map_err(backend)?;
                Ok(previous)
            })
            .await
    }
}
