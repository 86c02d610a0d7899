//! Repository and registry policies: validated on write, stored, and read back by
//! authorization on every request (through its caches, which a write here refreshes).

use berth_meta::RepositoryPolicyKind;
use berth_policy::iam::{Policy, PolicyKind};
use berth_types::RepositoryName;

use crate::authz::{Action, Caller, Target};
use crate::{Error, PolicyKindName, Registry, Result};

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

impl Registry {
    /// Sets a repository's access policy after validating it.
    ///
    /// # Errors
    /// `InvalidParameter` with the reason, `RepositoryNotFound`.
    pub async fn repository_policy_set(&self, caller: &Caller, repo: &RepositoryName, text: &str) -> Result<()> {
        self.authorize(caller, Action::SetRepositoryPolicy, Target::Repository(repo), &[]).await?;
        validate(text)?;
        self.meta
            .set_repository_policy(repo, RepositoryPolicyKind::Access, Some(text))
            .await
            .map_err(Self::missing_repo(repo))?;
        self.forget_repository(repo);
        Ok(())
    }

    /// A repository's access policy.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn repository_policy_get(&self, caller: &Caller, repo: &RepositoryName) -> Result<String> {
        self.authorize(caller, Action::GetRepositoryPolicy, Target::Repository(repo), &[]).await?;
        self.meta
            .repository_policy(repo, RepositoryPolicyKind::Access)
            .await
            .map_err(Self::missing_repo(repo))?
            .ok_or_else(|| Error::PolicyNotFound { kind: PolicyKindName::Repository, scope: repo.to_string() })
    }

    /// Deletes a repository's access policy, returning it.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn repository_policy_delete(&self, caller: &Caller, repo: &RepositoryName) -> Result<String> {
        self.authorize(caller, Action::DeleteRepositoryPolicy, Target::Repository(repo), &[]).await?;
        let previous = self
            .meta
            .set_repository_policy(repo, RepositoryPolicyKind::Access, None)
            .await
            .map_err(Self::missing_repo(repo))?;
        self.forget_repository(repo);
        previous.ok_or_else(|| Error::PolicyNotFound { kind: PolicyKindName::Repository, scope: repo.to_string() })
    }

    /// Sets the caller's account's registry policy after validating it; returns the account.
    ///
    /// # Errors
    /// `InvalidParameter` with the reason.
    pub async fn registry_policy_put(&self, caller: &Caller, text: &str) -> Result<String> {
        self.authorize(caller, Action::PutRegistryPolicy, Target::Registry, &[]).await?;
        validate(text)?;
        let account = self.account_of(caller).to_owned();
        self.meta.set_registry_policy(&account, Some(text)).await?;
        self.forget_registry(&account);
        Ok(account)
    }

    /// The caller's account's registry policy and the account.
    ///
    /// # Errors
    /// `PolicyNotFound`.
    pub async fn registry_policy_get(&self, caller: &Caller) -> Result<(String, String)> {
        self.authorize(caller, Action::GetRegistryPolicy, Target::Registry, &[]).await?;
        let account = self.account_of(caller).to_owned();
        let text = self
            .meta
            .registry_policy(&account)
            .await?
            .ok_or_else(|| Error::PolicyNotFound { kind: PolicyKindName::Registry, scope: account.clone() })?;
        Ok((text, account))
    }

    /// Deletes the caller's account's registry policy, returning it and the account.
    ///
    /// # Errors
    /// `PolicyNotFound`.
    pub async fn registry_policy_delete(&self, caller: &Caller) -> Result<(String, String)> {
        self.authorize(caller, Action::DeleteRegistryPolicy, Target::Registry, &[]).await?;
        let account = self.account_of(caller).to_owned();
        let previous = self.meta.set_registry_policy(&account, None).await?;
        self.forget_registry(&account);
        let text =
            previous.ok_or_else(|| Error::PolicyNotFound { kind: PolicyKindName::Registry, scope: account.clone() })?;
        Ok((text, account))
    }
}
