//! Accounts, users, access keys and the policy documents attached to users, repositories and
//! registries. Secrets arrive here already sealed by the core; this layer never sees plaintext.

use async_trait::async_trait;
use berth_types::records::Expiration;
use berth_types::{AccountId, RepositoryKey};

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Twelve digits.
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub account: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub id: String,
    pub account: String,
    pub user: String,
    /// The secret access key, sealed by the core (never stored in plaintext).
    pub sealed_secret: Vec<u8>,
    pub created_at: i64,
}

/// Accounts, their users and the users' access keys and identity policies.
#[async_trait]
pub trait IdentityMeta: Send + Sync {
    /// Creates an account; `Conflict(AccountExists)` if the id is taken.
    async fn create_account(&self, account: &AccountRecord) -> Result<()>;
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>>;
    /// Creates a user; `NotFound(Account)` without its account, `Conflict(UserExists)` if it
    /// exists.
    async fn create_user(&self, user: &UserRecord) -> Result<()>;
    /// Deletes a user with its keys and policies; `false` if there was none.
    async fn delete_user(&self, account: &str, name: &str) -> Result<bool>;
    /// Users of an account in name order.
    async fn list_users(&self, account: &str) -> Result<Vec<UserRecord>>;
    /// Stores an access key, replacing one with the same id when `replace` is set (otherwise
    /// `Conflict(AccessKeyExists)`); `NotFound(User)` without its user.
    async fn put_access_key(&self, key: &AccessKeyRecord, replace: bool) -> Result<()>;
    async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>>;
    /// Keys of one user, oldest first.
    async fn list_access_keys(&self, account: &str, user: &str) -> Result<Vec<AccessKeyRecord>>;
    /// `false` if there was no such key.
    async fn delete_access_key(&self, id: &str) -> Result<bool>;
    /// Attaches (or replaces) a named policy document to a user; `NotFound(User)` without the
    /// user.
    async fn put_user_policy(&self, account: &str, user: &str, name: &str, document: &str) -> Result<()>;
    /// `false` if the user had no policy of that name.
    async fn delete_user_policy(&self, account: &str, user: &str, name: &str) -> Result<bool>;
    /// The user's policies as `(name, document)` in name order.
    async fn user_policies(&self, account: &str, user: &str) -> Result<Vec<(String, String)>>;
}

/// Which resource policy of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepositoryPolicyKind {
    /// Who may do what (SetRepositoryPolicy).
    Access,
    /// What expires (PutLifecyclePolicy).
    Lifecycle,
}

/// Resource-based policy documents of repositories and registries.
#[async_trait]
pub trait PolicyMeta: Send + Sync {
    /// `Ok(None)` when the repository has no such policy; `NotFound(Repository)` without the
    /// repository.
    async fn repository_policy(&self, repo: &RepositoryKey, kind: RepositoryPolicyKind) -> Result<Option<String>>;
    /// Sets (`Some`) or removes (`None`) a policy, returning the previous one;
    /// `NotFound(Repository)` without the repository.
    async fn set_repository_policy(
        &self,
        repo: &RepositoryKey,
        kind: RepositoryPolicyKind,
        document: Option<&str>,
    ) -> Result<Option<String>>;
    async fn registry_policy(&self, registry: &AccountId) -> Result<Option<String>>;
    /// Records a lifecycle run on a repository at `at`: what it expired (the images themselves
    /// are deleted by the caller) and when the policy was last evaluated. `NotFound(Repository)`
    /// without the repository.
    async fn record_lifecycle_run(&self, repo: &RepositoryKey, at: i64, expired: &[Expiration]) -> Result<()>;
    /// When a repository's lifecycle policy was last evaluated; `NotFound(Repository)` without
    /// the repository.
    async fn lifecycle_evaluated_at(&self, repo: &RepositoryKey) -> Result<Option<i64>>;
    /// Expirations recorded, newest first, of one repository or all (of every registry). The
    /// history of a repository outlives it.
    async fn lifecycle_history(&self, repo: Option<&RepositoryKey>, limit: usize) -> Result<Vec<Expiration>>;
    /// Sets or removes a registry's policy, returning the previous one.
    async fn set_registry_policy(&self, registry: &AccountId, document: Option<&str>) -> Result<Option<String>>;
}
