//! Accounts, users, access keys and policy documents.

use async_trait::async_trait;
use berth_meta::{
    AccessKeyRecord, AccountRecord, Error, Expiration, IdentityMeta, PolicyMeta, RepositoryPolicyKind, Result,
    UserRecord,
};
use berth_types::{Digest, RepositoryName};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{SqliteMeta, backend};

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
                    .map_err(backend)
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
                    return Err(Error::NotFound);
                }
                c.prepare_cached("INSERT INTO users (account_id, name, created_at) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![u.account, u.name, u.created_at]))
                    .map(drop)
                    .map_err(backend)
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
                    return Err(Error::NotFound);
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
                    .map_err(backend)
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
                    return Err(Error::NotFound);
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

fn repository_policy(c: &Connection, repo: &RepositoryName, kind: RepositoryPolicyKind) -> Result<Option<String>> {
    let column = policy_column(kind);
    c.prepare_cached(&format!("SELECT {column} FROM repositories WHERE name = ?1"))
        .and_then(|mut s| s.query_row([repo.as_str()], |r| r.get::<_, Option<String>>(0)).optional())
        .map_err(backend)?
        .ok_or(Error::NotFound)
}

#[async_trait]
impl PolicyMeta for SqliteMeta {
    async fn repository_policy(&self, repo: &RepositoryName, kind: RepositoryPolicyKind) -> Result<Option<String>> {
        let repo = repo.clone();
        self.readers.read(move |c| repository_policy(c, &repo, kind)).await
    }

    async fn set_repository_policy(
        &self,
        repo: &RepositoryName,
        kind: RepositoryPolicyKind,
        document: Option<&str>,
    ) -> Result<Option<String>> {
        let (repo, document) = (repo.clone(), document.map(str::to_owned));
        self.writer
            .write(move |c| {
                let previous = repository_policy(c, &repo, kind)?;
                let column = policy_column(kind);
                c.prepare_cached(&format!("UPDATE repositories SET {column} = ?1 WHERE name = ?2"))
                    .and_then(|mut s| s.execute(params![document, repo.as_str()]))
                    .map_err(backend)?;
                Ok(previous)
            })
            .await
    }

    async fn registry_policy(&self, account: &str) -> Result<Option<String>> {
        let account = account.to_owned();
        self.readers
            .read(move |c| {
                c.prepare_cached("SELECT document FROM registry_policies WHERE account_id = ?1")
                    .and_then(|mut s| s.query_row([&account], |r| r.get(0)).optional())
                    .map_err(backend)
            })
            .await
    }

    async fn record_lifecycle_run(&self, repo: &RepositoryName, at: i64, expired: &[Expiration]) -> Result<()> {
        let (repo, expired) = (repo.clone(), expired.to_vec());
        self.writer
            .write(move |c| {
                c.prepare_cached("UPDATE repositories SET lifecycle_evaluated_at = ?1 WHERE name = ?2")
                    .and_then(|mut s| s.execute(params![at, repo.as_str()]))
                    .map_err(backend)?;
                let mut stmt = c
                    .prepare_cached(
                        "INSERT INTO lifecycle_expirations
                         (repository, digest, tags, pushed_at, rule_priority, expired_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(backend)?;
                for e in &expired {
                    stmt.execute(params![
                        e.repository.as_str(),
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

    async fn lifecycle_evaluated_at(&self, repo: &RepositoryName) -> Result<Option<i64>> {
        let repo = repo.clone();
        self.readers
            .read(move |c| {
                c.prepare_cached("SELECT lifecycle_evaluated_at FROM repositories WHERE name = ?1")
                    .and_then(|mut s| s.query_row([repo.as_str()], |r| r.get::<_, Option<i64>>(0)).optional())
                    .map_err(backend)?
                    .ok_or(Error::NotFound)
            })
            .await
    }

    async fn lifecycle_history(&self, repo: Option<&RepositoryName>, limit: usize) -> Result<Vec<Expiration>> {
        let repo = repo.map(|r| r.as_str().to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.readers
            .read(move |c| {
                let rows = collect(
                    c,
                    "SELECT repository, digest, tags, pushed_at, rule_priority, expired_at FROM lifecycle_expirations
                     WHERE ?1 IS NULL OR repository = ?1 ORDER BY id DESC LIMIT ?2",
                    params![repo, limit],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, u32>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    },
                )?;
                rows.into_iter()
                    .map(|(repo, digest, tags, pushed_at, rule_priority, expired_at)| {
                        Ok(Expiration {
                            repository: RepositoryName::parse(&repo).map_err(|_| crate::corrupt("repository name"))?,
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

    async fn set_registry_policy(&self, account: &str, document: Option<&str>) -> Result<Option<String>> {
        let (account, document) = (account.to_owned(), document.map(str::to_owned));
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
