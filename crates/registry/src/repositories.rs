//! Repositories of each account's registry: creation, settings, resource tags, listings.

use berth_meta::{DeleteRepository, RepositorySettingsChange};
use berth_types::{AccountId, Page, PageRequest, RepositoryKey, RepositoryName, TagMutability};

use crate::authz::{Action, Caller, Target};
use crate::paging::{self, Listing};
use crate::{Error, MAX_RESOURCE_TAGS, RepositoryRecord, RepositorySettings, Result, service};

service! {
    /// Repositories: `CreateRepository`, `DescribeRepositories`, `DeleteRepository`, the
    /// repository settings and resource tags, and `/v2/_catalog`.
    Repositories
}

/// Which repositories a `DescribeRepositories` asks for.
#[derive(Debug, Clone)]
pub enum RepositoryListing<'a> {
    /// These, each of which must exist.
    Named(&'a [RepositoryName]),
    /// A page of all of the registry's repositories the caller may describe.
    Page(&'a PageRequest),
}

fn marker_invalid() -> Error {
    Error::InvalidParameter("Invalid parameter at 'nextToken'".to_owned())
}

impl Repositories {
    /// Creates a repository with `settings` and resource `tags`.
    ///
    /// # Errors
    /// `RepositoryAlreadyExists`, `TooManyTags`, `InvalidParameter`.
    pub async fn create(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        settings: &RepositorySettings,
        tags: &[(String, String)],
    ) -> Result<RepositoryRecord> {
        self.authorize(caller, Action::CreateRepository, Target::Repository(repo), tags).await?;
        if !tags.is_empty() {
            self.authorize(caller, Action::TagResource, Target::Repository(repo), tags).await?;
        }
        if tags.len() > MAX_RESOURCE_TAGS {
            return Err(Error::TooManyTags(MAX_RESOURCE_TAGS));
        }
        let mut settings = settings.clone();
        if settings.encryption_type == "KMS" && settings.kms_key.is_none() {
            // ECR encrypts with the account's AWS-managed key for ECR when none is named, and
            // reports it.
            settings.kms_key = Some(format!("arn:aws:kms:{}:{}:alias/aws/ecr", self.authz.region(), repo.registry));
        }
        let mut record = match self.meta.create_repository_with(repo, &settings).await {
            Ok(r) => r,
            Err(berth_meta::Error::Conflict(_)) => return Err(Error::RepositoryAlreadyExists(repo.clone())),
            Err(e) => return Err(e.into()),
        };
        self.forget_repository(repo);
        if !tags.is_empty() {
            record.tags = self.meta.update_repository_tags(repo, tags, &[]).await?.unwrap_or_default();
        }
        Ok(record)
    }

    /// The named repositories of a registry (each must exist), or a page of those the caller
    /// may describe. A page's `next` is an opaque marker (the `paging` module). Describing
    /// another account's registry finds nothing but what its policies let the caller see, and
    /// is refused when they let it see nothing.
    ///
    /// # Errors
    /// `RepositoryNotFound` for a named repository that does not exist, `InvalidParameter` for
    /// a marker this server did not make for this registry's listing, `AccessDenied`.
    pub async fn describe(
        &self,
        caller: &Caller,
        registry: &AccountId,
        which: RepositoryListing<'_>,
    ) -> Result<Page<RepositoryRecord>> {
        let page = match which {
            RepositoryListing::Page(page) => page,
            RepositoryListing::Named(names) => {
                let mut items = Vec::with_capacity(names.len());
                for name in names {
                    let key = RepositoryKey::new(registry.clone(), name.clone());
                    self.authorize(caller, Action::DescribeRepositories, Target::Repository(&key), &[]).await?;
                    items.push(self.meta.get_repository(&key).await?.ok_or(Error::RepositoryNotFound(key))?);
                }
                return Ok(Page { items, next: None });
            }
        };
        let listing = Listing::Repositories(registry.as_str());
        let after = match page.after.as_deref() {
            None => None,
            Some(marker) => {
                Some(paging::open_marker(&self.authz.keys.seal, listing, marker).ok_or_else(marker_invalid)?)
            }
        };
        let filter = self.filter_for(caller, registry).await?;
        let want = page.limit.unwrap_or(usize::MAX);
        let (items, next) = paging::filtered(&*self.meta, &self.authz.keys.seal, listing, registry, after, want, |r| {
            filter.allows(r, &[Action::DescribeRepositories])
        })
        .await?;
        let foreign = matches!(caller, Caller::Principal(p) if &p.account != registry);
        if foreign && items.is_empty() && next.is_none() && page.after.is_none() {
            // Nothing of another account's registry is visible: refused, as ECR does.
            return Err(Error::AccessDenied {
                action: Action::DescribeRepositories,
                resource: format!("arn:aws:ecr:{}:{registry}:repository/*", self.authz.region()),
                principal: match caller {
                    Caller::Principal(p) => p.arn.clone(),
                    Caller::Anonymous => "anonymous".into(),
                },
                reason: "because no resource-based policy allows the ecr:DescribeRepositories action".into(),
            });
        }
        Ok(Page { items, next })
    }

    /// Deletes a repository; with `force`, also its images.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `RepositoryNotEmpty`.
    pub async fn delete(&self, caller: &Caller, repo: &RepositoryKey, force: bool) -> Result<RepositoryRecord> {
        self.authorize(caller, Action::DeleteRepository, Target::Repository(repo), &[]).await?;
        let outcome = self.meta.delete_repository(repo, force).await?;
        self.local.manifests.invalidate(repo);
        self.forget_repository(repo);
        match outcome {
            DeleteRepository::Deleted(r) => Ok(r),
            DeleteRepository::NotFound => Err(Error::RepositoryNotFound(repo.clone())),
            DeleteRepository::NotEmpty => Err(Error::RepositoryNotEmpty(repo.clone())),
        }
    }

    /// Sets whether a repository's tags may be moved (with the exclusion filters of the
    /// `..._WITH_EXCLUSION` modes).
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn set_tag_mutability(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        mutability: TagMutability,
    ) -> Result<RepositoryRecord> {
        self.authorize(caller, Action::PutImageTagMutability, Target::Repository(repo), &[]).await?;
        let change =
            RepositorySettingsChange { tag_mutability: Some(mutability), ..RepositorySettingsChange::default() };
        self.change(repo, &change).await
    }

    /// Sets whether images are scanned on push.
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn set_scan_on_push(&self, caller: &Caller, repo: &RepositoryKey, on: bool) -> Result<RepositoryRecord> {
        self.authorize(caller, Action::PutImageScanningConfiguration, Target::Repository(repo), &[]).await?;
        let change = RepositorySettingsChange { scan_on_push: Some(on), ..RepositorySettingsChange::default() };
        self.change(repo, &change).await
    }

    async fn change(&self, repo: &RepositoryKey, change: &RepositorySettingsChange) -> Result<RepositoryRecord> {
        self.meta.update_repository(repo, change).await?.ok_or_else(|| Error::RepositoryNotFound(repo.clone()))
    }

    /// Changes a repository's resource tags (`set`, then `remove`) and returns them; with no
    /// change, lists them. At most [`MAX_RESOURCE_TAGS`] tags.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `TooManyTags`.
    pub async fn tags(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<Vec<(String, String)>> {
        let action = match (set.is_empty(), remove.is_empty()) {
            (true, true) => Action::ListTagsForResource,
            (false, _) => Action::TagResource,
            (true, false) => Action::UntagResource,
        };
        self.authorize(caller, action, Target::Repository(repo), set).await?;
        let missing = || Error::RepositoryNotFound(repo.clone());
        if !set.is_empty() {
            let current = self.meta.update_repository_tags(repo, &[], &[]).await?.ok_or_else(missing)?;
            let mut keys: std::collections::BTreeSet<&str> = current.iter().map(|(k, _)| k.as_str()).collect();
            keys.extend(set.iter().map(|(k, _)| k.as_str()));
            for k in remove {
                keys.remove(k.as_str());
            }
            if keys.len() > MAX_RESOURCE_TAGS {
                return Err(Error::TooManyTags(MAX_RESOURCE_TAGS));
            }
        }
        let tags = self.meta.update_repository_tags(repo, set, remove).await?.ok_or_else(missing)?;
        self.forget_repository(repo);
        Ok(tags)
    }

    /// Names of a registry's repositories the caller may see (describe or pull), in byte
    /// order. A page's `next` is an opaque marker (the `paging` module), given whenever rows
    /// remain, even after a page that holds fewer than `page.limit` names because it ran out of
    /// its scan budget.
    ///
    /// # Errors
    /// Authorization or storage failures.
    pub async fn catalog(
        &self,
        caller: &Caller,
        registry: &AccountId,
        page: &PageRequest,
    ) -> Result<Page<RepositoryName>> {
        let filter = self.filter_for(caller, registry).await?;
        let want = page.limit.unwrap_or(usize::MAX);
        if want == 0 {
            return Ok(Page { items: Vec::new(), next: None });
        }
        let listing = Listing::Catalog(registry.as_str());
        // `last` is a marker this listing made, or a name the client chose (the docker registry
        // API allows it; names after it are filtered like any others).
        let after = page
            .after
            .as_deref()
            .map(|a| paging::open_marker(&self.authz.keys.seal, listing, a).unwrap_or_else(|| a.to_owned()));
        let (items, next) = paging::filtered(&*self.meta, &self.authz.keys.seal, listing, registry, after, want, |r| {
            filter.allows(r, &[Action::DescribeRepositories, Action::BatchGetImage])
        })
        .await?;
        Ok(Page { items: items.into_iter().map(|r| r.key.name).collect(), next })
    }

    /// The caller's own registry, for a caller allowed to describe it.
    ///
    /// # Errors
    /// Authorization failures.
    pub async fn describe_registry(&self, caller: &Caller) -> Result<AccountId> {
        self.authorize(caller, Action::DescribeRegistry, Target::Registry, &[]).await?;
        Ok(self.account_of(caller).clone())
    }
}
