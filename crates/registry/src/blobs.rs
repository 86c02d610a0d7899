//! Blobs a repository holds: existence checks, reads, signed download links, mounts.

use std::time::SystemTime;

use berth_blobstore::{BlobBody, BlobRead, ByteRange};
use berth_types::{Digest, RepositoryKey};

use crate::authz::{Action, Caller, Target};
use crate::core::{Core, NO_CREATE};
use crate::{Error, Result, service};

service! {
    /// Blobs: `/v2` blob HEAD, GET, DELETE and cross-repository mounts; ECR's
    /// `BatchCheckLayerAvailability` and `GetDownloadUrlForLayer`.
    Blobs
}

/// How long a presigned URL of the blob store, given in a redirect or as ECR's download URL,
/// stays valid.
const REDIRECT_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A link to a blob: its `/v2` path and the signed query that authorizes a GET of it, or, when
/// blobs are served by redirect, the blob store's own presigned URL (as ECR hands out S3 URLs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadLink {
    Registry { path: String, query: String },
    Store(String),
}

impl Core {
    /// The size of a blob the repository holds, checked against its stored bytes: missing or
    /// cut short, the client is told to push it again, which stores it anew.
    async fn held(&self, repo: &RepositoryKey, digest: &Digest) -> Result<Option<u64>> {
        let Some(size) = self.meta.blob_in_repository(repo, digest).await? else { return Ok(None) };
        if self.blobs.stat(digest).await? != Some(size) {
            return Err(Self::damaged(digest, "missing or of the wrong size"));
        }
        // A client that finds the blob skips its upload and references it soon.
        self.touch(digest).await;
        Ok(Some(size))
    }
}

impl Blobs {
    /// Size of a blob the repository holds (`/v2` HEAD).
    ///
    /// # Errors
    /// `BlobNotFound` when the repository does not hold it, `BlobDamaged`.
    pub async fn stat(&self, caller: &Caller, repo: &RepositoryKey, digest: &Digest) -> Result<u64> {
        self.authorize(caller, Action::BatchCheckLayerAvailability, Target::Repository(repo), &[]).await?;
        self.held(repo, digest).await?.ok_or_else(|| Error::BlobNotFound(digest.clone()))
    }

    /// ECR's `BatchCheckLayerAvailability`: each digest's size, `None` when the repository
    /// does not hold it intact.
    ///
    /// # Errors
    /// `RepositoryNotFound`, authorization and storage failures.
    pub async fn check_many(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        digests: &[Digest],
    ) -> Result<Vec<Option<u64>>> {
        self.authorize(caller, Action::BatchCheckLayerAvailability, Target::Repository(repo), &[]).await?;
        if !self.meta.repository_exists(repo).await? {
            return Err(Error::RepositoryNotFound(repo.clone()));
        }
        let mut out = Vec::with_capacity(digests.len());
        for d in digests {
            out.push(match self.held(repo, d).await {
                Ok(size) => size,
                Err(Error::BlobDamaged(_)) => None,
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }

    /// Streams a blob, or the inclusive range of it that `range` picks once the blob's size is
    /// known.
    ///
    /// # Errors
    /// `BlobNotFound`, `RangeNotSatisfiable`, `BlobDamaged`, or what `range` returns.
    pub async fn read(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        digest: &Digest,
        range: impl FnOnce(u64) -> Result<Option<ByteRange>>,
    ) -> Result<BlobRead> {
        self.authorize(caller, Action::GetDownloadUrlForLayer, Target::Repository(repo), &[]).await?;
        let size =
            self.meta.blob_in_repository(repo, digest).await?.ok_or_else(|| Error::BlobNotFound(digest.clone()))?;
        if self.opts.redirect_blobs
            && let Some(url) = self.blobs.presigned_url(digest, REDIRECT_TTL).await?
        {
            return Ok(BlobRead { size, range: None, body: BlobBody::Redirect(url) });
        }
        match self.blobs.read(digest, range(size)?).await {
            Ok(r) if r.size == size => Ok(r),
            Ok(_) => Err(Core::damaged(digest, "of the wrong size")),
            Err(berth_blobstore::Error::NotFound) => Err(Core::damaged(digest, "missing")),
            Err(berth_blobstore::Error::InvalidRange) => match self.blobs.stat(digest).await? {
                Some(held) if held != size => Err(Core::damaged(digest, "of the wrong size")),
                _ => Err(Error::RangeNotSatisfiable { size }),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// ECR's `GetDownloadUrlForLayer`: a link that lets the caller (and only as the caller)
    /// read the blob for a while, without other credentials.
    ///
    /// # Errors
    /// `RepositoryNotFound`, `BlobNotFound` (ECR's `LayersNotFoundException`), and
    /// `Unauthenticated` for an anonymous caller.
    pub async fn download_link(&self, caller: &Caller, repo: &RepositoryKey, digest: &Digest) -> Result<DownloadLink> {
        self.authorize(caller, Action::GetDownloadUrlForLayer, Target::Repository(repo), &[]).await?;
        let Caller::Principal(p) = caller else { return Err(Error::Unauthenticated) };
        if self.meta.blob_in_repository(repo, digest).await?.is_none() {
            if !self.meta.repository_exists(repo).await? {
                return Err(Error::RepositoryNotFound(repo.clone()));
            }
            return Err(Error::BlobNotFound(digest.clone()));
        }
        if self.opts.redirect_blobs
            && let Some(url) = self.blobs.presigned_url(digest, REDIRECT_TTL).await?
        {
            return Ok(DownloadLink::Store(url));
        }
        let path = format!("/v2/{}/blobs/{digest}", repo.name);
        let expires = SystemTime::now() + berth_auth::URL_TTL;
        let query = self.authz.tokens.sign_url(&path, p.account.as_str(), &p.arn, expires);
        Ok(DownloadLink::Registry { path, query })
    }

    /// Removes a blob from a repository (its bytes go when nothing references them).
    ///
    /// # Errors
    /// `BlobNotFound` when the repository does not hold it.
    pub async fn delete(&self, caller: &Caller, repo: &RepositoryKey, digest: &Digest) -> Result<()> {
        self.authorize(caller, Action::BatchDeleteImage, Target::Repository(repo), &[]).await?;
        if self.meta.unlink_blob(repo, digest).await? { Ok(()) } else { Err(Error::BlobNotFound(digest.clone())) }
    }

    /// Links a blob held by `from` into `to`. `None` when `from` does not hold it (or may not be
    /// read), in which case the client falls back to uploading.
    ///
    /// # Errors
    /// Authorization or storage failures.
    pub async fn mount(
        &self,
        caller: &Caller,
        to: &RepositoryKey,
        from: &RepositoryKey,
        digest: &Digest,
    ) -> Result<Option<Digest>> {
        self.authorize(caller, Action::CompleteLayerUpload, Target::Repository(to), &[]).await?;
        if self.authorize(caller, Action::GetDownloadUrlForLayer, Target::Repository(from), &[]).await.is_err() {
            return Ok(None);
        }
        self.create_on_push(caller, to).await?;
        let mounted = self.meta.mount_blob(from, to, digest, NO_CREATE).await?;
        if mounted {
            self.touch(digest).await;
        }
        Ok(mounted.then(|| digest.clone()))
    }
}
