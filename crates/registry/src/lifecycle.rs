//! Lifecycle policies: stored per repository, applied by a worker on a schedule (and on demand
//! by `berth admin`), and previewed. The preview and a real run call the same
//! [`Registry::lifecycle_plan`], which feeds every image of the repository to the pure
//! evaluator in `berth_policy::lifecycle`, so a preview shows exactly what a run at that moment
//! would expire.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_meta::{Expiration, RepositoryPolicyKind};
use berth_policy::lifecycle::{Candidate, LifecyclePolicy};
use berth_types::{PageRequest, RepositoryName, now_ms};

use crate::authz::{Action, Caller, Target};
use crate::{Error, ImageRecord, PolicyKindName, Registry, Result, TagStatus};

/// Longest lifecycle policy text ECR accepts.
pub const MAX_LIFECYCLE_TEXT: usize = 30_720;

/// An image a policy expires, with the rule that expires it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedExpiry {
    pub image: ImageRecord,
    pub rule_priority: u32,
}

/// A completed preview of a repository.
#[derive(Debug, Clone)]
pub struct Preview {
    pub policy_text: String,
    pub expiring: Vec<PlannedExpiry>,
}

/// Previews by repository. Computed when started, so always complete when read; kept on the
/// node that computed it.
#[derive(Default)]
pub(crate) struct Previews(Mutex<HashMap<RepositoryName, Preview>>);

fn parse(text: &str) -> Result<LifecyclePolicy> {
    if text.len() > MAX_LIFECYCLE_TEXT {
        return Err(Error::InvalidParameter(format!(
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Member must have length less \
             than or equal to {MAX_LIFECYCLE_TEXT}'"
        )));
    }
    LifecyclePolicy::parse(text).map_err(|e| Error::InvalidParameter(e.invalid_parameter_message()))
}

impl Registry {
    /// Sets a repository's lifecycle policy after validating it.
    ///
    /// # Errors
    /// `InvalidParameter` with ECR's reason, `RepositoryNotFound`.
    pub async fn lifecycle_policy_put(&self, caller: &Caller, repo: &RepositoryName, text: &str) -> Result<()> {
        self.authorize(caller, Action::PutLifecyclePolicy, Target::Repository(repo), &[]).await?;
        parse(text)?;
        self.meta
            .set_repository_policy(repo, RepositoryPolicyKind::Lifecycle, Some(text))
            .await
            .map_err(Self::missing_repo(repo))?;
        Ok(())
    }

    /// A repository's lifecycle policy and when it was last evaluated.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn lifecycle_policy_get(&self, caller: &Caller, repo: &RepositoryName) -> Result<(String, Option<i64>)> {
        self.authorize(caller, Action::GetLifecyclePolicy, Target::Repository(repo), &[]).await?;
        let text = self.stored_lifecycle_policy(repo).await?;
        Ok((text, self.meta.lifecycle_evaluated_at(repo).await.map_err(Self::missing_repo(repo))?))
    }

    /// Deletes a repository's lifecycle policy, returning it and when it was last evaluated.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn lifecycle_policy_delete(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
    ) -> Result<(String, Option<i64>)> {
        self.authorize(caller, Action::DeleteLifecyclePolicy, Target::Repository(repo), &[]).await?;
        let previous = self
            .meta
            .set_repository_policy(repo, RepositoryPolicyKind::Lifecycle, None)
            .await
            .map_err(Self::missing_repo(repo))?
            .ok_or_else(|| Error::PolicyNotFound { kind: PolicyKindName::Lifecycle, scope: repo.to_string() })?;
        Ok((previous, self.meta.lifecycle_evaluated_at(repo).await.map_err(Self::missing_repo(repo))?))
    }

    async fn stored_lifecycle_policy(&self, repo: &RepositoryName) -> Result<String> {
        self.meta
            .repository_policy(repo, RepositoryPolicyKind::Lifecycle)
            .await
            .map_err(Self::missing_repo(repo))?
            .ok_or_else(|| Error::PolicyNotFound { kind: PolicyKindName::Lifecycle, scope: repo.to_string() })
    }

    /// What `policy` would expire in `repo` now: the one function behind previews and runs.
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn lifecycle_plan(&self, repo: &RepositoryName, policy: &LifecyclePolicy) -> Result<Vec<PlannedExpiry>> {
        let mut images = Vec::new();
        let mut page = PageRequest { limit: Some(1000), after: None };
        loop {
            let found = self.meta.list_images(repo, TagStatus::Any, &page).await.map_err(Self::missing_repo(repo))?;
            images.extend(found.items);
            match found.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        let candidates: Vec<Candidate> = images
            .iter()
            .map(|i| Candidate {
                digest: i.digest.to_string(),
                tags: i.tags.iter().map(ToString::to_string).collect(),
                pushed_at_ms: i.pushed_at,
                last_pulled_ms: i.last_pulled_at,
            })
            .collect();
        let by_digest: HashMap<String, &ImageRecord> = images.iter().map(|i| (i.digest.to_string(), i)).collect();
        Ok(policy
            .evaluate(&candidates, now_ms())
            .into_iter()
            .filter_map(|e| {
                by_digest.get(&e.digest).map(|i| PlannedExpiry { image: (*i).clone(), rule_priority: e.rule_priority })
            })
            .collect())
    }

    /// Starts (and, here, completes) a preview of `text`, or of the stored policy.
    ///
    /// # Errors
    /// `InvalidParameter`, `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn lifecycle_preview_start(
        &self,
        caller: &Caller,
        repo: &RepositoryName,
        text: Option<&str>,
    ) -> Result<String> {
        self.authorize(caller, Action::StartLifecyclePolicyPreview, Target::Repository(repo), &[]).await?;
        let text = match text {
            Some(t) => t.to_owned(),
            None => self.stored_lifecycle_policy(repo).await?,
        };
        let expiring = self.lifecycle_plan(repo, &parse(&text)?).await?;
        let preview = Preview { policy_text: text.clone(), expiring };
        self.previews.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(repo.clone(), preview);
        Ok(text)
    }

    /// The last preview of a repository.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound` (no preview was started).
    pub async fn lifecycle_preview_get(&self, caller: &Caller, repo: &RepositoryName) -> Result<Preview> {
        self.authorize(caller, Action::GetLifecyclePolicyPreview, Target::Repository(repo), &[]).await?;
        if !self.meta.repository_exists(repo).await? {
            return Err(Error::RepositoryNotFound(repo.clone()));
        }
        let previews = self.previews.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        previews
            .get(repo)
            .cloned()
            .ok_or_else(|| Error::PolicyNotFound { kind: PolicyKindName::LifecyclePreview, scope: repo.to_string() })
    }

    /// Applies a repository's lifecycle policy now: deletes what it expires and records it.
    /// Returns the expirations (none without a policy). Reached by the worker and `berth admin`.
    ///
    /// # Errors
    /// `RepositoryNotFound`, storage failures.
    pub async fn lifecycle_run(&self, repo: &RepositoryName) -> Result<Vec<Expiration>> {
        let text = match self.stored_lifecycle_policy(repo).await {
            Ok(t) => t,
            Err(Error::PolicyNotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let policy = match LifecyclePolicy::parse(&text) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(repository = %repo, error = %e, "stored lifecycle policy does not parse; skipped");
                return Ok(Vec::new());
            }
        };
        let at = now_ms();
        let mut expired = Vec::new();
        for e in self.lifecycle_plan(repo, &policy).await? {
            // Pushed again or deleted since the plan was made: the delete says which.
            if self.meta.delete_manifest(repo, &e.image.digest).await? {
                expired.push(Expiration {
                    repository: repo.clone(),
                    digest: e.image.digest,
                    tags: e.image.tags.iter().map(ToString::to_string).collect(),
                    pushed_at: e.image.pushed_at,
                    rule_priority: e.rule_priority,
                    expired_at: at,
                });
            }
        }
        self.manifests.invalidate(repo);
        self.meta.record_lifecycle_run(repo, at, &expired).await?;
        if !expired.is_empty() {
            tracing::info!(repository = %repo, expired = expired.len(), "lifecycle policy expired images");
        }
        Ok(expired)
    }

    /// Applies every repository's lifecycle policy; returns what was expired.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn lifecycle_run_all(&self) -> Result<Vec<Expiration>> {
        let mut all = Vec::new();
        let mut page = PageRequest { limit: Some(1000), after: None };
        loop {
            let found = self.meta.list_repositories(&page).await?;
            for repo in &found.items {
                match self.lifecycle_run(repo).await {
                    Ok(mut e) => all.append(&mut e),
                    // Deleted while the run went on.
                    Err(Error::RepositoryNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            match found.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        Ok(all)
    }

    /// Recorded expirations, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn lifecycle_history(&self, repo: Option<&RepositoryName>, limit: usize) -> Result<Vec<Expiration>> {
        Ok(self.meta.lifecycle_history(repo, limit).await?)
    }
}
