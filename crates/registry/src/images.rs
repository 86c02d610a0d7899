//! Images: manifests, their tags and referrers, read and written through either door.

use std::sync::Arc;

use berth_blobstore::ByteStream;
use berth_meta::{ManifestRecord, NewManifest, PutOutcome, Referrer};
use berth_types::{
    Algorithm, Digest, ManifestError, Page, PageRequest, ParsedManifest, Reference, RepositoryKey, Tag, now_ms,
};
use bytes::Bytes;

use crate::authz::{Action, Caller, Target};
use crate::core::{Core, collect_limited, verify};
use crate::{Error, ImageId, ImageRecord, Manifest, Result, TagStatus, service};

service! {
    /// Images: `/v2` manifests, tags and referrers; ECR's `BatchGetImage`, `PutImage`,
    /// `BatchDeleteImage`, `ListImages` and `DescribeImages`.
    Images
}

/// A stored manifest after a successful `/v2` put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// An image stored by ECR's `PutImage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub digest: Digest,
    pub media_type: String,
}

/// Why one image id of a batch found nothing (the batch goes on with the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageMiss {
    NotFound,
    /// The id's tag names another image than its digest.
    TagDoesNotMatchDigest,
    /// The image is of this media type, which the request does not accept.
    UnsupportedType(String),
}

impl ImageId {
    fn reference(&self) -> Reference {
        match self {
            ImageId::Digest(d) | ImageId::Both(d, _) => Reference::Digest(d.clone()),
            ImageId::Tag(t) => Reference::Tag(t.clone()),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            ImageId::Digest(d) => d.to_string(),
            ImageId::Tag(t) => t.to_string(),
            ImageId::Both(d, t) => format!("{t}@{d}"),
        }
    }
}

/// A manifest as the metadata store keeps it, parsed once here for a push and for a copy
/// (`migrate`) alike: the blobs and child manifests it references, its subject, artifact type
/// and annotations. `digest` must already be checked against `payload`.
pub(crate) fn new_manifest(
    repo: &RepositoryKey,
    digest: Digest,
    content_type: Option<&str>,
    payload: Vec<u8>,
    tag: Option<Tag>,
) -> std::result::Result<NewManifest, ManifestError> {
    let parsed = ParsedManifest::parse(content_type, &payload)?;
    Ok(NewManifest {
        repository: repo.clone(),
        digest,
        media_type: parsed.media_type,
        payload,
        artifact_type: parsed.artifact_type,
        subject: parsed.subject,
        annotations: parsed.annotations.map(|a| serde_json::Value::Object(a).to_string()),
        blobs: parsed.blobs,
        children: parsed.children,
        tag,
    })
}

impl Core {
    /// A manifest by reference, through the node's cache; records the pull.
    async fn manifest(&self, repo: &RepositoryKey, reference: &Reference) -> Result<Option<Arc<Manifest>>> {
        let generation = match self.local.manifests.get(repo, reference) {
            Ok(hit) => {
                self.note_pull(repo, &hit.digest);
                return Ok(Some(hit));
            }
            Err(generation) => generation,
        };
        let Some(record) = self.meta.resolve(repo, reference).await? else { return Ok(None) };
        let m = self.keep(repo, reference, generation, record);
        self.note_pull(repo, &m.digest);
        Ok(Some(m))
    }

    /// A manifest read from the store, handed out and kept in the cache (when no write came
    /// since `generation` was noted).
    fn keep(
        &self,
        repo: &RepositoryKey,
        reference: &Reference,
        generation: u64,
        record: ManifestRecord,
    ) -> Arc<Manifest> {
        let m = Arc::new(Manifest {
            digest: record.digest,
            media_type: record.media_type,
            payload: Bytes::from(record.payload),
        });
        self.local.manifests.fill(repo, reference, generation, &m);
        m
    }

    fn note_pull(&self, repo: &RepositoryKey, digest: &Digest) {
        let mut pulls = self.local.pulls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pulls.insert((repo.clone(), digest.clone()), now_ms());
    }

    /// Whether the tag of an image id naming both a digest and a tag names that digest's image.
    async fn pair_holds(&self, repo: &RepositoryKey, id: &ImageId) -> Result<bool> {
        let ImageId::Both(d, t) = id else { return Ok(true) };
        Ok(self.meta.resolve(repo, &Reference::Tag(t.clone())).await?.is_some_and(|m| &m.digest == d))
    }

    /// The error for an image that was not found: the repository's, when it is missing too.
    pub(crate) async fn image_missing(&self, repo: &RepositoryKey, reference: String) -> Error {
        match self.meta.repository_exists(repo).await {
            Ok(true) => Error::ImageNotFound { repository: repo.clone(), reference },
            Ok(false) => Error::RepositoryNotFound(repo.clone()),
            Err(e) => e.into(),
        }
    }

    /// Stores a manifest once the caller was authorized to put it: checks it parses, matches
    /// the digest it is put under, and references only what the repository holds.
    async fn store_manifest(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        reference: &Reference,
        content_type: Option<&str>,
        payload: Bytes,
    ) -> Result<(PutManifest, String)> {
        let (digest, tag) = match reference {
            Reference::Digest(d) => {
                let actual = Digest::of(d.algorithm(), &payload);
                verify(&actual, d)?;
                (actual, None)
            }
            Reference::Tag(t) => (Digest::of(Algorithm::Sha256, &payload), Some(t.clone())),
        };
        let m = new_manifest(repo, digest.clone(), content_type, payload.to_vec(), tag)
            .map_err(|e| Error::ManifestInvalid(e.to_string()))?;
        self.create_on_push(caller, repo).await?;
        match self.meta.put_manifest(&m, crate::core::NO_CREATE).await? {
            PutOutcome::Stored => {
                self.local.manifests.invalidate(repo);
                self.scan_on_push(repo, &digest, &m.media_type, &m.payload).await;
                Ok((PutManifest { digest, subject: m.subject }, m.media_type))
            }
            PutOutcome::MissingReferences(missing) => Err(Error::ManifestBlobUnknown(missing)),
            PutOutcome::TagImmutable { .. } => Err(Error::TagImmutable {
                repository: repo.clone(),
                tag: m.tag.as_ref().map(ToString::to_string).unwrap_or_default(),
            }),
        }
    }
}

impl Images {
    /// A manifest by tag or digest (`/v2` GET and HEAD).
    ///
    /// # Errors
    /// `ImageNotFound`.
    pub async fn get(&self, caller: &Caller, repo: &RepositoryKey, reference: &Reference) -> Result<Arc<Manifest>> {
        self.authorize(caller, Action::BatchGetImage, Target::Repository(repo), &[]).await?;
        self.manifest(repo, reference)
            .await?
            .ok_or_else(|| Error::ImageNotFound { repository: repo.clone(), reference: reference.to_string() })
    }

    /// A read of a manifest under `raw`, which is no tag or digest: no manifest can be stored
    /// under it, so the answer, once the caller may read the repository, is that it is not
    /// found (the distribution-spec conformance suite requires that).
    ///
    /// # Errors
    /// Always: `ImageNotFound` (`RepositoryNotFound` when the repository is missing too), or
    /// why the caller may not read.
    pub async fn get_unnamed(&self, caller: &Caller, repo: &RepositoryKey, raw: &str) -> Result<Arc<Manifest>> {
        self.authorize(caller, Action::BatchGetImage, Target::Repository(repo), &[]).await?;
        Err(self.image_missing(repo, format!("{raw:?} (not a valid tag)")).await)
    }

    /// ECR's `BatchGetImage`: each id's manifest, or why it has none, in the order given.
    /// With `accepted`, only manifests of those media types are given.
    ///
    /// # Errors
    /// `RepositoryNotFound`, authorization and storage failures.
    pub async fn get_many(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        ids: &[ImageId],
        accepted: Option<&[String]>,
    ) -> Result<Vec<Result<Arc<Manifest>, ImageMiss>>> {
        self.authorize(caller, Action::BatchGetImage, Target::Repository(repo), &[]).await?;
        // What the cache holds, then one read of the store for the rest (and for the tags of ids
        // naming a digest and a tag both, which must name that digest).
        let cached: Vec<Result<Arc<Manifest>, u64>> =
            ids.iter().map(|id| self.local.manifests.get(repo, &id.reference())).collect();
        let mut asked = Vec::new();
        for (id, hit) in ids.iter().zip(&cached) {
            if hit.is_err() {
                asked.push(id.reference());
            }
            if let ImageId::Both(_, t) = id {
                asked.push(Reference::Tag(t.clone()));
            }
        }
        let mut found = self.meta.resolve_many(repo, &asked).await?.into_iter();
        let mut out = Vec::with_capacity(ids.len());
        for (id, hit) in ids.iter().zip(cached) {
            let manifest = match hit {
                Ok(m) => Some(m),
                Err(generation) => {
                    found.next().flatten().map(|record| self.keep(repo, &id.reference(), generation, record))
                }
            };
            let pair_holds = match id {
                ImageId::Both(d, _) => found.next().flatten().is_some_and(|tagged| &tagged.digest == d),
                _ => true,
            };
            let Some(m) = manifest else {
                out.push(Err(ImageMiss::NotFound));
                continue;
            };
            self.note_pull(repo, &m.digest);
            if !pair_holds {
                out.push(Err(ImageMiss::TagDoesNotMatchDigest));
            } else if accepted.is_some_and(|a| !a.iter().any(|t| t == &m.media_type)) {
                out.push(Err(ImageMiss::UnsupportedType(m.media_type.clone())));
            } else {
                out.push(Ok(m));
            }
        }
        let all_missed = !ids.is_empty() && out.iter().all(|r| r.as_ref().err() == Some(&ImageMiss::NotFound));
        if all_missed && !self.meta.repository_exists(repo).await? {
            return Err(Error::RepositoryNotFound(repo.clone()));
        }
        Ok(out)
    }

    /// Stores a manifest under a tag or its digest (`/v2` PUT).
    ///
    /// # Errors
    /// `ManifestInvalid`, `ManifestTooLarge`, `DigestInvalid`, `ManifestBlobUnknown`,
    /// `TagImmutable`.
    pub async fn put(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        reference: &Reference,
        content_type: Option<&str>,
        body: ByteStream,
    ) -> Result<PutManifest> {
        self.authorize(caller, Action::PutImage, Target::Repository(repo), &[]).await?;
        let payload = collect_limited(body, self.opts.max_manifest_bytes).await?;
        Ok(self.store_manifest(caller, repo, reference, content_type, payload).await?.0)
    }

    /// ECR's `PutImage`: stores a manifest given whole, under a tag or only its digest. Unlike
    /// a `/v2` push, putting the same image under the same tag again is refused, and so is a
    /// manifest whose type neither its own `mediaType` nor `media_type` gives.
    ///
    /// # Errors
    /// `ImageAlreadyExists`, `ImageDigestMismatch`, `InvalidParameter`, and those of `put`.
    pub async fn put_image(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        manifest: Bytes,
        media_type: Option<&str>,
        tag: Option<&Tag>,
        digest: Option<&str>,
    ) -> Result<StoredImage> {
        self.authorize(caller, Action::PutImage, Target::Repository(repo), &[]).await?;
        if manifest.len() > self.opts.max_manifest_bytes {
            return Err(Error::ManifestTooLarge(self.opts.max_manifest_bytes));
        }
        let algorithm = digest.and_then(|d| Digest::parse(d).ok()).map_or(Algorithm::Sha256, |d| d.algorithm());
        let actual = Digest::of(algorithm, &manifest);
        if let Some(expected) = digest
            && expected != actual.as_str()
        {
            return Err(Error::ImageDigestMismatch { expected: expected.to_owned(), actual });
        }
        if media_type.is_none()
            && !serde_json::from_slice::<serde_json::Value>(&manifest)
                .is_ok_and(|m| m.get("mediaType").is_some_and(serde_json::Value::is_string))
        {
            return Err(Error::InvalidParameter(
                "Invalid parameter at 'imageManifest': the manifest has no mediaType, and no \
                 imageManifestMediaType was given"
                    .into(),
            ));
        }
        if let Some(t) = tag
            && self.meta.resolve(repo, &Reference::Tag(t.clone())).await?.is_some_and(|m| m.digest == actual)
        {
            return Err(Error::ImageAlreadyExists { repository: repo.clone(), digest: actual, tag: t.to_string() });
        }
        let reference = tag.map_or_else(|| Reference::Digest(actual.clone()), |t| Reference::Tag(t.clone()));
        let (put, media_type) = self.store_manifest(caller, repo, &reference, media_type, manifest).await?;
        Ok(StoredImage { digest: put.digest, media_type })
    }

    /// Deletes a manifest by digest (with its tags), or just a tag (`/v2` DELETE).
    ///
    /// # Errors
    /// `ImageNotFound`.
    pub async fn delete(&self, caller: &Caller, repo: &RepositoryKey, reference: &Reference) -> Result<()> {
        self.authorize(caller, Action::BatchDeleteImage, Target::Repository(repo), &[]).await?;
        let deleted = match reference {
            Reference::Digest(d) => self.meta.delete_manifest(repo, d).await?,
            Reference::Tag(t) => self.meta.delete_tag(repo, t, false).await?.is_some(),
        };
        self.local.manifests.invalidate(repo);
        if deleted {
            Ok(())
        } else {
            Err(Error::ImageNotFound { repository: repo.clone(), reference: reference.to_string() })
        }
    }

    /// ECR's `BatchDeleteImage`: by digest, the image and its tags; by tag, the tag, and the
    /// image too when that was its last tag; with both, nothing unless the tag names that
    /// image. Each id's deleted digest, or why nothing was deleted, in the order given.
    ///
    /// # Errors
    /// `RepositoryNotFound`, authorization and storage failures.
    pub async fn delete_many(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        ids: &[ImageId],
    ) -> Result<Vec<Result<Digest, ImageMiss>>> {
        self.authorize(caller, Action::BatchDeleteImage, Target::Repository(repo), &[]).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let deleted = if !self.pair_holds(repo, id).await? {
                None
            } else {
                match id {
                    ImageId::Digest(d) | ImageId::Both(d, _) => {
                        self.meta.delete_manifest(repo, d).await?.then(|| d.clone())
                    }
                    ImageId::Tag(t) => self.meta.delete_tag(repo, t, true).await?,
                }
            };
            out.push(deleted.ok_or(ImageMiss::NotFound));
        }
        self.local.manifests.invalidate(repo);
        if out.iter().any(Result::is_err) && !self.meta.repository_exists(repo).await? {
            return Err(Error::RepositoryNotFound(repo.clone()));
        }
        Ok(out)
    }

    /// ECR's `DescribeImages` with image ids: each one's image.
    ///
    /// # Errors
    /// `RepositoryNotFound`; `ImageNotFound` naming the first id that names no image.
    pub async fn describe(&self, caller: &Caller, repo: &RepositoryKey, ids: &[ImageId]) -> Result<Vec<ImageRecord>> {
        self.authorize(caller, Action::DescribeImages, Target::Repository(repo), &[]).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let digest = match id {
                _ if !self.pair_holds(repo, id).await? => None,
                ImageId::Digest(d) | ImageId::Both(d, _) => Some(d.clone()),
                ImageId::Tag(t) => self.meta.resolve(repo, &Reference::Tag(t.clone())).await?.map(|m| m.digest),
            };
            let found = match digest {
                Some(d) => self.meta.get_image(repo, &d).await?,
                None => None,
            };
            match found {
                Some(image) => out.push(image),
                None => return Err(self.image_missing(repo, id.describe()).await),
            }
        }
        Ok(out)
    }

    /// A page of a repository's images as ECR lists them, in digest order (`ListImages` and
    /// `DescribeImages`, which `action` names).
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn list(
        &self,
        caller: &Caller,
        action: Action,
        repo: &RepositoryKey,
        status: TagStatus,
        page: &PageRequest,
    ) -> Result<Page<ImageRecord>> {
        self.authorize(caller, action, Target::Repository(repo), &[]).await?;
        Ok(self.meta.list_images(repo, status, page).await?)
    }

    /// Tags of a repository, in byte order (`/v2/<name>/tags/list`).
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn tags(&self, caller: &Caller, repo: &RepositoryKey, page: &PageRequest) -> Result<Page<Tag>> {
        self.authorize(caller, Action::ListImages, Target::Repository(repo), &[]).await?;
        Ok(self.meta.list_tags(repo, page).await?)
    }

    /// Manifests whose subject is `subject`, optionally of one artifact type.
    ///
    /// # Errors
    /// `RepositoryNotFound`.
    pub async fn referrers(
        &self,
        caller: &Caller,
        repo: &RepositoryKey,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        self.authorize(caller, Action::BatchGetImage, Target::Repository(repo), &[]).await?;
        if !self.meta.repository_exists(repo).await? {
            return Err(Error::RepositoryNotFound(repo.clone()));
        }
        Ok(self.meta.referrers(repo, subject, artifact_type).await?)
    }
}
