//! Repository and registry policies: validated on write, stored, and read back by
//! authorization on every request (through its caches, which a write here refreshes).

use berth_meta::RepositoryPolicyKind;
use berth_policy::iam::{Policy, PolicyKind};
use berth_types::{AccountId, RepositoryKey};

use crate::authz::{Action, Caller, Target};
use crate::{Error, PolicyKindName, Result, service};

service! {
    /// Resource policies: repository policies (`SetRepositoryPolicy`, …) and registry policies
    /// (`PutRegistryPolicy`, …). Authorization reads them through its caches, which a write
    /// here refreshes.
    Policies
}

/// Longest policy text ECR accepts.
pub const MAX_POLICY_TEXT: usize = 10_240;

fn validate(text: &str) -> Result<()> {
    if text.len() > MAX_POLICY_TEXT {
        return Err(Error::InvalidParameter(format!(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Member must have length less than or \
             equal to {MAX_POLICY_TEXT}'"
        )));
    }
    Policy::parse(text, PolicyKind::Resource).map(drop).map_err(|e| {
        Error::InvalidParameter(format!("Invalid parameter at 'PolicyText' failed to satisfy constraint: '{e}'"))
    })
}

impl Policies {
    /// Sets a repository's access policy after validating it.
    ///
    /// # Errors
    /// `InvalidParameter` with the reason, `RepositoryNotFound`.
    pub async fn set_repository(&self, caller: &Caller, repo: &RepositoryKey, text: &str) -> Result<()> {
        self.authorize(caller, Action::SetRepositoryPolicy, Target::Repository(repo), &[]).await?;
        validate(text)?;
        self.meta.set_repository_policy(repo, RepositoryPolicyKind::Access, Some(text)).await?;
        self.forget_repository(repo);
        Ok(())
    }

    /// A repository's access policy.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn repository(&self, caller: &Caller, repo: &RepositoryKey) -> Result<String> {
        self.authorize(caller, Action::GetRepositoryPolicy, Target::Repository(repo), &[]).await?;
        self.meta
            .repository_policy(repo, RepositoryPolicyKind::Access)
            .await?
            .ok_or_else(|| Error::policy_not_found(PolicyKindName::Repository, repo))
    }

    /// Deletes a repository's access policy, returning it.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn delete_repository(&self, caller: &Caller, repo: &RepositoryKey) -> Result<String> {
        self.authorize(caller, Action::DeleteRepositoryPolicy, Target::Repository(repo), &[]).await?;
        let previous = self.meta.set_repository_policy(repo, RepositoryPolicyKind::Access, None).await?;
        self.forget_repository(repo);
        previous.ok_or_else(|| Error::policy_not_found(PolicyKindName::Repository, repo))
    }

    /// Sets the caller's account's registry policy after validating it; returns the account.
    ///
    /// # Errors
    /// `InvalidParameter` with the reason.
    pub async fn put_registry(&self, caller: &Caller, text: &str) -> Result<AccountId> {
        self.authorize(caller, Action::PutRegistryPolicy, Target::Registry, &[]).await?;
        validate(text)?;
        let account = self.account_of(caller).clone();
        self.meta.set_registry_policy(&account, Some(text)).await?;
        self.forget_registry(&account);
        Ok(account)
    }

    /// The caller's account's registry policy and the account.
    ///
    /// # Errors
    /// `PolicyNotFound`.
    pub async fn registry(&self, caller: &Caller) -> Result<(String, AccountId)> {
        self.authorize(caller, Action::GetRegistryPolicy, Target::Registry, &[]).await?;
        let account = self.account_of(caller).clone();
        let text = self.meta.registry_policy(&account).await?.ok_or_else(|| Error::PolicyNotFound {
            kind: PolicyKindName::Registry,
            registry: account.clone(),
            repository: None,
        })?;
        Ok((text, account))
    }

    /// Deletes the caller's account's registry policy, returning it and the account.
    ///
    /// # Errors
    /// `PolicyNotFound`.
    pub async fn delete_registry(&self, caller: &Caller) -> Result<(String, AccountId)> {
        self.authorize(caller, Action::DeleteRegistryPolicy, Target::Registry, &[]).await?;
        let account = self.account_of(caller).clone();
        let previous = self.meta.set_registry_policy(&account, None).await?;
        self.forget_registry(&account);
        let text = previous.ok_or_else(|| Error::PolicyNotFound {
            kind: PolicyKindName::Registry,
            registry: account.clone(),
            repository: None,
        })?;
        Ok((text, account))
    }
}
