//! Lifecycle policies: stored per repository, applied by a worker on a schedule (and on demand
//! by `berth admin`), and previewed. The preview and a real run call the same
//! [`Registry::lifecycle_plan`], which feeds every image of the repository to the pure
//! evaluator in `berth_policy::lifecycle`, so a preview shows exactly what a run at that moment
//! would expire.

use std::collections::HashMap;

use berth_meta::{Expiration, PreviewRow, RepositoryPolicyKind};
use berth_policy::lifecycle::{Candidate, LifecyclePolicy};
use berth_types::{Page, PageRequest, Reference, RepositoryKey, now_ms};

use crate::authz::{Action, Caller, Target};
use crate::core::Core;
use crate::{Error, ImageId, ImageRecord, PolicyKindName, Result, TagStatus, service};

service! {
    /// Lifecycle policies: `PutLifecyclePolicy`, `GetLifecyclePolicy`,
    /// `DeleteLifecyclePolicy`, the previews, and the runs the worker and `berth admin` make.
    Lifecycle
}

/// Which part of a preview `GetLifecyclePolicyPreview` asks for.
#[derive(Debug, Clone, Default)]
pub struct PreviewQuery {
    pub status: TagStatus,
    /// Only these images (then no paging).
    pub ids: Option<Vec<ImageId>>,
    pub page: PageRequest,
}

/// One page of a preview.
#[derive(Debug, Clone)]
pub struct PreviewPage {
    pub policy_text: String,
    pub items: Vec<PreviewRow>,
    pub next: Option<String>,
    /// Images the whole preview expires.
    pub total: usize,
}

/// Longest lifecycle policy text ECR accepts.
pub const MAX_LIFECYCLE_TEXT: usize = 30_720;

/// An image a policy expires, with the rule that expires it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedExpiry {
    pub image: ImageRecord,
    pub rule_priority: u32,
}

fn parse(text: &str) -> Result<LifecyclePolicy> {
    if text.len() > MAX_LIFECYCLE_TEXT {
        return Err(Error::InvalidParameter(format!(
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Member must have length less \
             than or equal to {MAX_LIFECYCLE_TEXT}'"
        )));
    }
    LifecyclePolicy::parse(text).map_err(|e| Error::InvalidParameter(e.invalid_parameter_message()))
}

impl Lifecycle {
    /// Sets a repository's lifecycle policy after validating it.
    ///
    /// # Errors
    /// `InvalidParameter` with ECR's reason, `RepositoryNotFound`.
    pub async fn put(&self, caller: &Caller, repo: &RepositoryKey, text: &str) -> Result<()> {
        self.authorize(caller, Action::PutLifecyclePolicy, Target::Repository(repo), &[]).await?;
        parse(text)?;
        self.meta.set_repository_policy(repo, RepositoryPolicyKind::Lifecycle, Some(text)).await?;
        Ok(())
    }

    /// A repository's lifecycle policy and when it was last evaluated (ms; 0: never, which
    /// ECR gives as the epoch).
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn get(&self, caller: &Caller, repo: &RepositoryKey) -> Result<(String, i64)> {
        self.authorize(caller, Action::GetLifecyclePolicy, Target::Repository(repo), &[]).await?;
        let text = self.stored_lifecycle_policy(repo).await?;
        Ok((text, self.meta.lifecycle_evaluated_at(repo).await?.unwrap_or(0)))
    }

    /// Deletes a repository's lifecycle policy, returning it and when it was last evaluated.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn delete(&self, caller: &Caller, repo: &RepositoryKey) -> Result<(String, i64)> {
        self.authorize(caller, Action::DeleteLifecyclePolicy, Target::Repository(repo), &[]).await?;
        let previous = self
            .meta
            .set_repository_policy(repo, RepositoryPolicyKind::Lifecycle, None)
            .await?
            .ok_or_else(|| Error::policy_not_found(PolicyKindName::Lifecycle, repo))?;
        Ok((previous, self.meta.lifecycle_evaluated_at(repo).await?.unwrap_or(0)))
    }

    /// Starts (and, here, completes) a preview of `text`, or of the stored policy, and stores
    /// it in place of the repository's last one; returns the policy text previewed.
    ///
    /// # Errors
    /// `InvalidParameter`, `RepositoryNotFound`, `PolicyNotFound`.
    pub async fn preview_start(&self, caller: &Caller, repo: &RepositoryKey, text: Option<&str>) -> Result<String> {
        self.authorize(caller, Action::StartLifecyclePolicyPreview, Target::Repository(repo), &[]).await?;
        let text = match text {
            Some(t) => t.to_owned(),
            None => self.stored_lifecycle_policy(repo).await?,
        };
        let rows: Vec<PreviewRow> = self
            .lifecycle_plan(repo, &parse(&text)?)
            .await?
            .into_iter()
            .map(|e| PreviewRow {
                digest: e.image.digest,
                tags: e.image.tags,
                pushed_at: e.image.pushed_at,
                rule_priority: e.rule_priority,
            })
            .collect();
        self.meta.put_preview(repo, &text, &rows, now_ms()).await?;
        Ok(text)
    }

    /// A page of the last preview of a repository: the images it expires, in the preview's
    /// order, that `query` selects. A page's `next` is the position to go on from; a page
    /// costs what it returns.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `PolicyNotFound` (no preview was started), `InvalidParameter` for
    /// a `next` this listing did not give.
    pub async fn preview_page(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        query: &PreviewQuery,
    ) -> Result<PreviewPage> {
        self.authorize(caller, Action::GetLifecyclePolicyPreview, Target::Repository(repo), &[]).await?;
        let page = match &query.ids {
            Some(ids) => {
                // Tags name the image they name now.
                let mut digests = Vec::with_capacity(ids.len());
                for id in ids {
                    match id {
                        ImageId::Digest(d) | ImageId::Both(d, _) => digests.push(d.clone()),
                        ImageId::Tag(t) => {
                            if let Some(m) = self.meta.resolve(repo, &Reference::Tag(t.clone())).await? {
                                digests.push(m.digest);
                            }
                        }
                    }
                }
                self.meta.get_preview_rows(repo, &digests).await?
            }
            None => {
                let after = match &query.page.after {
                    Some(t) => Some(
                        t.parse::<u64>()
                            .map_err(|_| Error::InvalidParameter("Invalid parameter at 'nextToken'".into()))?,
                    ),
                    None => None,
                };
                let limit = query.page.limit.unwrap_or(100).clamp(1, 1000);
                self.meta.get_preview_page(repo, query.status, after, limit).await?
            }
        };
        Ok(PreviewPage {
            policy_text: page.summary.policy_text,
            items: page.rows.into_iter().map(|(_, row)| row).collect(),
            next: page.next.map(|n| n.to_string()),
            total: usize::try_from(page.summary.expiring_total).unwrap_or(usize::MAX),
        })
    }

    /// Applies a repository's lifecycle policy now: deletes what it expires and records it.
    /// Returns the expirations (none without a policy). Reached by the worker and `berth admin`.
    ///
    /// # Errors
    /// `RepositoryNotFound`, storage failures.
    pub async fn run(&self, repo: &RepositoryKey) -> Result<Vec<Expiration>> {
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
        self.local.manifests.invalidate(repo);
        self.meta.record_lifecycle_run(repo, at, &expired).await?;
        if !expired.is_empty() {
            tracing::info!(repository = %repo, expired = expired.len(), "lifecycle policy expired images");
        }
        Ok(expired)
    }

    /// Applies the lifecycle policy of every repository of every registry; returns what was
    /// expired.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn run_all(&self) -> Result<Vec<Expiration>> {
        let mut all = Vec::new();
        let mut after: Option<RepositoryKey> = None;
        loop {
            let found = self.meta.list_all_repositories(after.as_ref(), 1000).await?;
            for repo in &found {
                match self.run(repo).await {
                    Ok(mut e) => all.append(&mut e),
                    // Deleted while the run went on.
                    Err(Error::RepositoryNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            match found.last() {
                Some(last) if found.len() == 1000 => after = Some(last.clone()),
                _ => break,
            }
        }
        Ok(all)
    }

    /// Recorded expirations, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn history(&self, repo: Option<&RepositoryKey>, limit: usize) -> Result<Vec<Expiration>> {
        Ok(self.meta.lifecycle_history(repo, limit).await?)
    }
}

impl Core {
    async fn stored_lifecycle_policy(&self, repo: &RepositoryKey) -> Result<String> {
        self.meta
            .repository_policy(repo, RepositoryPolicyKind::Lifecycle)
            .await?
            .ok_or_else(|| Error::policy_not_found(PolicyKindName::Lifecycle, repo))
    }

    /// What `policy` would expire in `repo` now: the one function behind previews and runs.
    async fn lifecycle_plan(&self, repo: &RepositoryKey, policy: &LifecyclePolicy) -> Result<Vec<PlannedExpiry>> {
        let mut images = Vec::new();
        let mut page = PageRequest { limit: Some(1000), after: None };
        loop {
            let found: Page<ImageRecord> = self.meta.list_images(repo, TagStatus::Any, &page).await?;
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
}
