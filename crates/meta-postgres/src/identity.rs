//! Accounts, users, access keys and policy documents.

use async_trait::async_trait;
use berth_meta::{
    AccessKeyRecord, AccountRecord, Conflict, Error, Expiration, IdentityMeta, Missing, PolicyMeta,
    RepositoryPolicyKind, Result, UserRecord,
};
use berth_types::{AccountId, RepositoryKey};
use tokio_postgres::Row;

use crate::db::{Client, exec, row, rows};
use crate::{PgMeta, digest, get, repository_key, to_limit};

/// A database error, with a uniqueness clash named as `conflict`.
fn clash(e: Error, conflict: impl FnOnce() -> Conflict) -> Error {
    match e {
        Error::Conflict(_) => Error::Conflict(conflict()),
        other => other,
    }
}

fn no_user(account: &str, name: &str) -> Error {
    Error::NotFound(Missing::User { account: account.to_owned(), name: name.to_owned() })
}

async fn user_exists(c: &Client, account: &str, user: &str) -> Result<bool> {
    Ok(row(c, "SELECT 1 FROM users WHERE account_id = $1 AND name = $2", &[&account, &user]).await?.is_some())
}

const KEY_COLUMNS: &str = "id, account_id, user_name, sealed_secret, created_at";

fn access_key(r: &Row) -> Result<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        id: get(r, 0)?,
        account: get(r, 1)?,
        user: get(r, 2)?,
        sealed_secret: get(r, 3)?,
        created_at: get(r, 4)?,
    })
}

#[async_trait]
impl IdentityMeta for PgMeta {
    async fn create_account(&self, account: &AccountRecord) -> Result<()> {
        let a = account;
        self.write(async move |c: &Client| {
            exec(c, "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)", &[&a.id, &a.name, &a.created_at])
                .await
                .map(drop)
                .map_err(|e| clash(e, || Conflict::AccountExists(a.id.clone())))
        })
        .await
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>> {
        let found = self
            .read(async |c: &Client| rows(c, "SELECT id, name, created_at FROM accounts ORDER BY id", &[]).await)
            .await?;
        found.iter().map(|r| Ok(AccountRecord { id: get(r, 0)?, name: get(r, 1)?, created_at: get(r, 2)? })).collect()
    }

    async fn create_user(&self, user: &UserRecord) -> Result<()> {
        let u = user;
        self.write(async move |c: &Client| {
            if row(c, "SELECT 1 FROM accounts WHERE id = $1", &[&u.account]).await?.is_none() {
                return Err(Error::NotFound(Missing::Account(u.account.clone())));
            }
            exec(
                c,
                "INSERT INTO users (account_id, name, created_at) VALUES ($1, $2, $3)",
                &[&u.account, &u.name, &u.created_at],
            )
            .await
            .map(drop)
            .map_err(|e| clash(e, || Conflict::UserExists { account: u.account.clone(), name: u.name.clone() }))
        })
        .await
    }

    async fn delete_user(&self, account: &str, name: &str) -> Result<bool> {
        self.write(async move |c: &Client| {
            exec(c, "DELETE FROM users WHERE account_id = $1 AND name = $2", &[&account, &name]).await.map(|n| n > 0)
        })
        .await
    }

    async fn list_users(&self, account: &str) -> Result<Vec<UserRecord>> {
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT account_id, name, created_at FROM users WHERE account_id = $1 ORDER BY name",
                    &[&account],
                )
                .await
            })
            .await?;
        found.iter().map(|r| Ok(UserRecord { account: get(r, 0)?, name: get(r, 1)?, created_at: get(r, 2)? })).collect()
    }

    async fn put_access_key(&self, key: &AccessKeyRecord, replace: bool) -> Result<()> {
        let k = key;
        self.write(async move |c: &Client| {
            if !user_exists(c, &k.account, &k.user).await? {
                return Err(no_user(&k.account, &k.user));
            }
            let sql = if replace {
                "INSERT INTO access_keys (id, account_id, user_name, sealed_secret, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id, user_name = excluded.user_name,
                     sealed_secret = excluded.sealed_secret, created_at = excluded.created_at"
            } else {
                "INSERT INTO access_keys (id, account_id, user_name, sealed_secret, created_at)
                 VALUES ($1, $2, $3, $4, $5)"
            };
            exec(c, sql, &[&k.id, &k.account, &k.user, &k.sealed_secret, &k.created_at])
                .await
                .map(drop)
                .map_err(|e| clash(e, || Conflict::AccessKeyExists(k.id.clone())))
        })
        .await
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>> {
        let found = self
            .read(async |c: &Client| {
                row(c, &format!("SELECT {KEY_COLUMNS} FROM access_keys WHERE id = $1"), &[&id]).await
            })
            .await?;
        found.map(|r| access_key(&r)).transpose()
    }

    async fn list_access_keys(&self, account: &str, user: &str) -> Result<Vec<AccessKeyRecord>> {
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    &format!(
                        "SELECT {KEY_COLUMNS} FROM access_keys WHERE account_id = $1 AND user_name = $2
                         ORDER BY created_at, id"
                    ),
                    &[&account, &user],
                )
                .await
            })
            .await?;
        found.iter().map(access_key).collect()
    }

    async fn delete_access_key(&self, id: &str) -> Result<bool> {
        self.write(async move |c: &Client| {
            exec(c, "DELETE FROM access_keys WHERE id = $1", &[&id]).await.map(|n| n > 0)
        })
        .await
    }

    async fn put_user_policy(&self, account: &str, user: &str, name: &str, document: &str) -> Result<()> {
        self.write(async move |c: &Client| {
            if !user_exists(c, account, user).await? {
                return Err(no_user(account, user));
            }
            exec(
                c,
                "INSERT INTO user_policies (account_id, user_name, name, document) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (account_id, user_name, name) DO UPDATE SET document = excluded.document",
                &[&account, &user, &name, &document],
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn delete_user_policy(&self, account: &str, user: &str, name: &str) -> Result<bool> {
        self.write(async move |c: &Client| {
            exec(
                c,
                "DELETE FROM user_policies WHERE account_id = $1 AND user_name = $2 AND name = $3",
                &[&account, &user, &name],
            )
            .await
            .map(|n| n > 0)
        })
        .await
    }

    async fn user_policies(&self, account: &str, user: &str) -> Result<Vec<(String, String)>> {
        let found = self
            .read(async |c: &Client| {
                rows(
                    c,
                    "SELECT name, document FROM user_policies WHERE account_id = $1 AND user_name = $2 ORDER BY name",
                    &[&account, &user],
                )
                .await
            })
            .await?;
        found.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?))).collect()
    }
}

fn policy_column(kind: RepositoryPolicyKind) -> &'static str {
    match kind {
        RepositoryPolicyKind::Access => "policy",
        RepositoryPolicyKind::Lifecycle => "lifecycle_policy",
    }
}

/// A repository's policy of one kind; `NotFound(Repository)` without the repository.
async fn repository_policy(c: &Client, repo: &RepositoryKey, kind: RepositoryPolicyKind) -> Result<Option<String>> {
    let sql = format!("SELECT {} FROM repositories WHERE registry = $1 AND name = $2", policy_column(kind));
    let found = row(c, &sql, &[&repo.registry.as_str(), &repo.name.as_str()]).await?;
    found.ok_or_else(|| Error::no_repository(repo)).and_then(|r| get(&r, 0))
}

#[async_trait]
impl PolicyMeta for PgMeta {
    async fn repository_policy(&self, repo: &RepositoryKey, kind: RepositoryPolicyKind) -> Result<Option<String>> {
        self.read(async |c: &Client| repository_policy(c, repo, kind).await).await
    }

    async fn set_repository_policy(
        &self,
        repo: &RepositoryKey,
        kind: RepositoryPolicyKind,
        document: Option<&str>,
    ) -> Result<Option<String>> {
        self.write(async move |c: &Client| {
            let previous = repository_policy(c, repo, kind).await?;
            let sql = format!("UPDATE repositories SET {} = $1 WHERE registry = $2 AND name = $3", policy_column(kind));
            exec(c, &sql, &[&document, &repo.registry.as_str(), &repo.name.as_str()]).await?;
            Ok(previous)
        })
        .await
    }

    async fn registry_policy(&self, registry: &AccountId) -> Result<Option<String>> {
        let found = self
            .read(async |c: &Client| {
                row(c, "SELECT document FROM registry_policies WHERE account_id = $1", &[&registry.as_str()]).await
            })
            .await?;
        found.map(|r| get(&r, 0)).transpose()
    }

    async fn record_lifecycle_run(&self, repo: &RepositoryKey, at: i64, expired: &[Expiration]) -> Result<()> {
        let registries: Vec<&str> = expired.iter().map(|e| e.repository.registry.as_str()).collect();
        let names: Vec<&str> = expired.iter().map(|e| e.repository.name.as_str()).collect();
        let digests: Vec<&str> = expired.iter().map(|e| e.digest.as_str()).collect();
        // A list of tags per row: arrays of arrays must be rectangular, so each row's tags go as
        // one text joined by newlines (tags hold none) and are split in the statement.
        let tags: Vec<String> = expired.iter().map(|e| e.tags.join("\n")).collect();
        let pushed: Vec<i64> = expired.iter().map(|e| e.pushed_at).collect();
        let priorities: Vec<i32> = expired.iter().map(|e| i32::try_from(e.rule_priority).unwrap_or(i32::MAX)).collect();
        let times: Vec<i64> = expired.iter().map(|e| e.expired_at).collect();
        self.write(async move |c: &Client| {
            let n = exec(
                c,
                "UPDATE repositories SET lifecycle_evaluated_at = $1 WHERE registry = $2 AND name = $3",
                &[&at, &repo.registry.as_str(), &repo.name.as_str()],
            )
            .await?;
            if n == 0 {
                return Err(Error::no_repository(repo));
            }
            if !registries.is_empty() {
                exec(
                    c,
                    "INSERT INTO lifecycle_expirations
                     (registry, repository, digest, tags, pushed_at, rule_priority, expired_at)
                     SELECT x.registry, x.repository, x.digest,
                            CASE WHEN x.tags = '' THEN '{}'::text[] ELSE string_to_array(x.tags, E'\\n') END,
                            x.pushed_at, x.rule_priority, x.expired_at
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[], $7::bigint[])
                          WITH ORDINALITY AS x(registry, repository, digest, tags, pushed_at, rule_priority, expired_at, i)
                     ORDER BY x.i",
                    &[&registries, &names, &digests, &tags, &pushed, &priorities, &times],
                )
                .await?;
            }
            Ok(())
        })
        .await
    }

    async fn lifecycle_evaluated_at(&self, repo: &RepositoryKey) -> Result<Option<i64>> {
        let found = self
            .read(async |c: &Client| {
                row(
                    c,
                    "SELECT lifecycle_evaluated_at FROM repositories WHERE registry = $1 AND name = $2",
                    &[&repo.registry.as_str(), &repo.name.as_str()],
                )
                .await
            })
            .await?;
        found.ok_or_else(|| Error::no_repository(repo)).and_then(|r| get(&r, 0))
    }

    async fn lifecycle_history(&self, repo: Option<&RepositoryKey>, limit: usize) -> Result<Vec<Expiration>> {
        const COLUMNS: &str = "registry, repository, digest, tags, pushed_at, rule_priority, expired_at";
        let limit = to_limit(limit);
        let found = self
            .read(async |c: &Client| match repo {
                // Separate statements, so each reads through its own index.
                Some(k) => {
                    rows(
                        c,
                        &format!(
                            "SELECT {COLUMNS} FROM lifecycle_expirations WHERE registry = $1 AND repository = $2
                             ORDER BY id DESC LIMIT $3"
                        ),
                        &[&k.registry.as_str(), &k.name.as_str(), &limit],
                    )
                    .await
                }
                None => {
                    rows(
                        c,
                        &format!("SELECT {COLUMNS} FROM lifecycle_expirations ORDER BY id DESC LIMIT $1"),
                        &[&limit],
                    )
                    .await
                }
            })
            .await?;
        found
            .iter()
            .map(|r| {
                Ok(Expiration {
                    repository: repository_key(get(r, 0)?, get(r, 1)?)?,
                    digest: digest(get(r, 2)?)?,
                    tags: get(r, 3)?,
                    pushed_at: get(r, 4)?,
                    rule_priority: u32::try_from(get::<i32>(r, 5)?).unwrap_or(0),
                    expired_at: get(r, 6)?,
                })
            })
            .collect()
    }

    async fn set_registry_policy(&self, registry: &AccountId, document: Option<&str>) -> Result<Option<String>> {
        let account = registry.as_str();
        self.write(async move |c: &Client| {
            let previous = row(c, "SELECT document FROM registry_policies WHERE account_id = $1", &[&account])
                .await?
                .map(|r| get(&r, 0))
                .transpose()?;
            match document {
                Some(d) => {
                    exec(
                        c,
                        "INSERT INTO registry_policies (account_id, document) VALUES ($1, $2)
                         ON CONFLICT (account_id) DO UPDATE SET document = excluded.document",
                        &[&account, &d],
                    )
                    .await?
                }
                None => exec(c, "DELETE FROM registry_policies WHERE account_id = $1", &[&account]).await?,
            };
            Ok(previous)
        })
        .await
    }
}
