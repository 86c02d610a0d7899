//! Moving up (`berth admin migrate`): copies everything one pair of stores holds into another.
//! It is written only against the store traits, so the destination may be whatever the
//! configuration names: PostgreSQL and S3, or another data directory.
//!
//! It lives in the core because it follows the core's rules, not the stores': blobs are hashed
//! on their way as every upload is (`core::hashing`) and placed under garbage collection's
//! reservation (`gc::reserve_token`, then `link_reserved`), so a destination server's collector
//! running meanwhile never takes them. Manifests are parsed by the function a push uses
//! (`images::new_manifest`). The server only opens the stores, checks the identity files and
//! prints.
//!
//! # What is copied, in order
//! 1. Accounts, their users, the users' access keys and identity policies. Secrets stay sealed,
//!    so the destination must open them with the same server key (the caller checks it).
//! 2. Each repository of every registry:
//!    - its settings (tag mutability with its exclusion filters, scan on push, encryption),
//!      creation time, resource tags and access policy;
//!    - its images, each with the blobs it references (linked into the repository), its push
//!      and last pull times, and every tag naming it. Image manifests go first, then indexes
//!      once their child manifests are in. A referrer needs no order, since its subject is not
//!      a reference;
//!    - its lifecycle policy, last, so that a destination server's lifecycle worker never judges
//!      images whose push times are not restored yet; then its lifecycle-policy preview.
//! 3. Registry policies, the lifecycle history (oldest first, so the destination lists it in
//!    the same order) and when each repository's lifecycle policy was last evaluated.
//!
//! # Verification
//! Every blob is read from the source and streamed through a hasher of its digest's algorithm
//! into the destination's upload area, so memory holds one chunk at a time, never a whole
//! layer. A blob of up to 1 MiB is put in one step. A blob is committed under its digest only
//! when its bytes hash to it and have the size the source recorded. A blob that fails this is
//! reported and not copied, and neither is any image that needs it. Damaged bytes fail it, and
//! so do missing ones: a quarantined blob has none. Every manifest is hashed against its digest
//! before it is stored.
//!
//! # Resuming
//! Each step asks the destination first and writes only what it lacks or holds otherwise. Each
//! write is one transaction of the destination's store. A run cut short anywhere (kill -9)
//! leaves whole records, plus at worst bytes in the upload area, which the destination server
//! sweeps like any abandoned upload. The next run skips what is in place and finishes the rest.
//! A run over a destination that already holds everything writes nothing, and its report says
//! so ([`MigrateReport::changed`]).
//!
//! # Not copied
//! - upload sessions in progress (their clients start over);
//! - blobs that no manifest references: uploaded layers whose manifest never came, which
//!   garbage collection takes anyway. The report counts them;
//! - garbage collection's marks and tombstones;
//! - the lifecycle history of repositories that no longer exist, since a store records history
//!   only against a repository. The report counts it.
//!
//! A run adds and updates. It never deletes what the destination holds beyond the source.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use berth_blobstore::{BlobStore, Error as BlobError};
use berth_meta::{
    CreateRepo, Error as MetaError, Expiration, ImageRecord, LinkTarget, MetaStore, Missing, NewManifest, PreviewRow,
    PreviewSummary, PutOutcome, RepositoryPolicyKind, RepositoryRecord, RepositorySettingsChange, TagStatus,
};
use berth_types::{AccountId, Digest, Hasher, PageRequest, Reference, RepositoryKey, UploadId, media_types};
use bytes::BytesMut;
use futures_util::StreamExt;

use crate::core::{hashing, take};
use crate::error::{Error, Result};
use crate::gc::reserve_token;
use crate::images::new_manifest;

/// Records read per page of a listing.
const PAGE: usize = 256;

/// Largest blob put in one step (read into memory whole); larger ones are streamed.
const SMALL_BLOB: u64 = 1 << 20;

/// A pair of stores: where records and bytes are copied from, or to.
#[derive(Clone)]
pub struct Stores {
    pub blobs: Arc<dyn BlobStore>,
    pub meta: Arc<dyn MetaStore>,
}

/// How many things of one kind a run wrote to the destination, and how many it found there
/// already as the source holds them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub copied: u64,
    pub present: u64,
}

impl Tally {
    fn add(&mut self, copied: bool) {
        if copied {
            self.copied += 1;
        } else {
            self.present += 1;
        }
    }
}

/// Something that was not copied because it failed verification or clashed with what the
/// destination holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What: `blob <digest>`, `image <repository>@<digest>`, `tag <repository>:<tag>`, ...
    pub item: String,
    pub reason: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    pub accounts: Tally,
    pub users: Tally,
    pub access_keys: Tally,
    pub user_policies: Tally,
    pub registry_policies: Tally,
    /// Repositories created, or brought in line: settings, creation time, resource tags,
    /// access and lifecycle policies.
    pub repositories: Tally,
    /// Images stored, or brought in line: push and pull times.
    pub images: Tally,
    pub tags: Tally,
    /// Distinct blobs whose bytes were stored, or found in place.
    pub blobs: Tally,
    /// Blobs linked into a repository.
    pub blob_links: Tally,
    /// Bytes of the blobs stored.
    pub bytes_copied: u64,
    pub lifecycle_history: Tally,
    pub previews: Tally,
    /// Blobs the source records that none of its manifests references, not copied.
    pub unreferenced_blobs: u64,
    /// Lifecycle history of repositories that no longer exist, not copied.
    pub history_left: u64,
    /// What was not copied, and why.
    pub failures: Vec<Failure>,
}

impl MigrateReport {
    /// Whether the run wrote anything to the destination.
    #[must_use]
    pub fn changed(&self) -> bool {
        [
            self.accounts,
            self.users,
            self.access_keys,
            self.user_policies,
            self.registry_policies,
            self.repositories,
            self.images,
            self.tags,
            self.blobs,
            self.blob_links,
            self.lifecycle_history,
            self.previews,
        ]
        .iter()
        .any(|t| t.copied > 0)
    }
}

/// Copies everything `from` holds into `to` (see the module documentation), telling `progress`
/// a line at each step. Items that fail verification are in the report's failures; the run
/// goes on without them.
///
/// # Errors
/// A store that fails (other than by holding damaged or missing bytes in the source): the run
/// stops there, and a later run resumes.
pub async fn migrate(from: &Stores, to: &Stores, progress: &(dyn Fn(&str) + Sync)) -> Result<MigrateReport> {
    let mut run = Run {
        from,
        to,
        progress,
        report: MigrateReport::default(),
        blobs: HashMap::new(),
        referenced: HashSet::new(),
        registries: BTreeSet::new(),
        evaluated: BTreeMap::new(),
    };
    run.identity().await?;
    run.repositories().await?;
    run.registry_policies().await?;
    run.history().await?;
    run.unreferenced().await?;
    Ok(run.report)
}

/// What a run knows of a blob it has handled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BlobState {
    /// In the destination's blob store with this size.
    Placed(u64),
    /// Failed verification (reported once).
    Failed,
}

struct Run<'a> {
    from: &'a Stores,
    to: &'a Stores,
    progress: &'a (dyn Fn(&str) + Sync),
    report: MigrateReport,
    blobs: HashMap<Digest, BlobState>,
    /// Blobs some manifest of the source references.
    referenced: HashSet<Digest>,
    /// Registries seen (accounts and the registries of repositories).
    registries: BTreeSet<AccountId>,
    /// When each repository's lifecycle policy was last evaluated, in the source.
    evaluated: BTreeMap<RepositoryKey, i64>,
}

/// A digest cut to its algorithm and 12 hex digits, for progress lines.
fn short(d: &Digest) -> &str {
    let s = d.as_str();
    let end = s.find(':').map_or(s.len(), |i| (i + 13).min(s.len()));
    &s[..end]
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl Run<'_> {
    fn fail(&mut self, item: String, reason: String) {
        (self.progress)(&format!("FAILED {item}: {reason}"));
        self.report.failures.push(Failure { item, reason });
    }

    async fn identity(&mut self) -> Result<()> {
        let (from, to) = (&self.from.meta, &self.to.meta);
        let have: HashSet<String> = to.list_accounts().await?.into_iter().map(|a| a.id).collect();
        let accounts = from.list_accounts().await?;
        for a in &accounts {
            if let Ok(id) = AccountId::parse(&a.id) {
                self.registries.insert(id);
            }
            let copied = !have.contains(&a.id) && absent(to.create_account(a).await)?;
            self.report.accounts.add(copied);
            let users: HashSet<String> = to.list_users(&a.id).await?.into_iter().map(|u| u.name).collect();
            for u in from.list_users(&a.id).await? {
                let copied = !users.contains(&u.name) && absent(to.create_user(&u).await)?;
                self.report.users.add(copied);
                for k in from.list_access_keys(&a.id, &u.name).await? {
                    match to.access_key(&k.id).await? {
                        Some(d) if d.account == k.account && d.user == k.user => self.report.access_keys.add(false),
                        Some(d) => self.fail(
                            format!("access key {}", k.id),
                            format!("the destination holds it for user {} of account {}", d.user, d.account),
                        ),
                        None => {
                            to.put_access_key(&k, false).await?;
                            self.report.access_keys.add(true);
                        }
                    }
                }
                let policies: HashMap<String, String> = to.user_policies(&a.id, &u.name).await?.into_iter().collect();
                for (name, document) in from.user_policies(&a.id, &u.name).await? {
                    let copied = policies.get(&name) != Some(&document);
                    if copied {
                        to.put_user_policy(&a.id, &u.name, &name, &document).await?;
                    }
                    self.report.user_policies.add(copied);
                }
            }
        }
        let r = &self.report;
        (self.progress)(&format!(
            "identity: {} accounts, {} users, {} access keys, {} user policies ({} written)",
            accounts.len(),
            r.users.copied + r.users.present,
            r.access_keys.copied + r.access_keys.present,
            r.user_policies.copied + r.user_policies.present,
            r.accounts.copied + r.users.copied + r.access_keys.copied + r.user_policies.copied,
        ));
        Ok(())
    }

    async fn repositories(&mut self) -> Result<()> {
        let mut after: Option<RepositoryKey> = None;
        loop {
            let page = self.from.meta.list_all_repositories(after.as_ref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.clone());
            for key in page {
                self.repository(&key).await?;
            }
        }
        Ok(())
    }

    async fn repository(&mut self, key: &RepositoryKey) -> Result<()> {
        let Some(src) = self.from.meta.get_repository(key).await? else { return Ok(()) };
        self.registries.insert(key.registry.clone());
        let mut wrote = self.repository_record(&src).await?;
        let before = (self.report.images, self.report.tags, self.report.failures.len());
        self.images(key).await?;
        let (from, to) = (&self.from.meta, &self.to.meta);
        let lifecycle = from.repository_policy(key, RepositoryPolicyKind::Lifecycle).await?;
        if lifecycle.is_some() && to.repository_policy(key, RepositoryPolicyKind::Lifecycle).await? != lifecycle {
            to.set_repository_policy(key, RepositoryPolicyKind::Lifecycle, lifecycle.as_deref()).await?;
            wrote = true;
        }
        if let Some(at) = from.lifecycle_evaluated_at(key).await? {
            self.evaluated.insert(key.clone(), at);
            // A later evaluation is the destination's own (its server ran meanwhile).
            if to.lifecycle_evaluated_at(key).await?.is_none_or(|t| t < at) {
                to.record_lifecycle_run(key, at, &[]).await?;
                wrote = true;
            }
        }
        self.preview(key).await?;
        self.report.repositories.add(wrote);
        let (images, tags) = (self.report.images, self.report.tags);
        let count = |t: Tally, b: Tally| (t.copied + t.present - b.copied - b.present, t.copied - b.copied);
        let ((ni, ci), (nt, ct)) = (count(images, before.0), count(tags, before.1));
        let failed = self.report.failures.len() - before.2;
        (self.progress)(&format!(
            "repository {key}: {ni} images ({ci} written), {nt} tags ({ct} written){}",
            if failed > 0 { format!(", {failed} failures") } else { String::new() }
        ));
        Ok(())
    }

    /// Creates the repository or brings its record in line; whether anything was written.
    async fn repository_record(&mut self, src: &RepositoryRecord) -> Result<bool> {
        let (key, to) = (&src.key, &self.to.meta);
        let mut wrote = false;
        let dest = match to.get_repository(key).await? {
            Some(d) => d,
            None => {
                wrote = true;
                match to.create_repository_with(key, &src.settings).await {
                    Ok(d) => d,
                    // Created meanwhile (by a server on the destination).
                    Err(MetaError::Conflict(_)) => {
                        to.get_repository(key).await?.ok_or_else(|| Error::RepositoryNotFound(key.clone()))?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let (s, d) = (&src.settings, &dest.settings);
        if s.tag_mutability != d.tag_mutability || s.scan_on_push != d.scan_on_push {
            let change = RepositorySettingsChange {
                tag_mutability: (s.tag_mutability != d.tag_mutability).then(|| s.tag_mutability.clone()),
                scan_on_push: (s.scan_on_push != d.scan_on_push).then_some(s.scan_on_push),
            };
            to.update_repository(key, &change).await?;
            wrote = true;
        }
        if (&s.encryption_type, &s.kms_key) != (&d.encryption_type, &d.kms_key) {
            self.fail(
                format!("repository {key}"),
                format!(
                    "its encryption is {} {:?} in the source but {} {:?} in the destination, where it was \
                     created before (encryption is set only at creation)",
                    s.encryption_type, s.kms_key, d.encryption_type, d.kms_key
                ),
            );
        }
        if dest.created_at != src.created_at {
            to.restore_repository_created_at(key, src.created_at).await?;
            wrote = true;
        }
        let lacking: Vec<(String, String)> = src.tags.iter().filter(|t| !dest.tags.contains(t)).cloned().collect();
        if !lacking.is_empty() {
            to.update_repository_tags(key, &lacking, &[]).await?;
            wrote = true;
        }
        if src.policy.is_some() && dest.policy != src.policy {
            to.set_repository_policy(key, RepositoryPolicyKind::Access, src.policy.as_deref()).await?;
            wrote = true;
        }
        Ok(wrote)
    }

    async fn images(&mut self, key: &RepositoryKey) -> Result<()> {
        let mut records = Vec::new();
        let mut after = None;
        loop {
            let page = PageRequest { limit: Some(PAGE), after };
            let p = self.from.meta.list_images(key, TagStatus::Any, &page).await?;
            records.extend(p.items);
            match p.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let listed: HashSet<Digest> = records.iter().map(|r| r.digest.clone()).collect();
        let (indexes, images): (Vec<_>, Vec<_>) =
            records.into_iter().partition(|r| media_types::is_index(&r.media_type));
        let mut done = HashSet::new();
        for rec in images {
            if let Some(m) = self.prepare(key, &rec).await?
                && self.image(key, &rec, m).await?
            {
                done.insert(rec.digest);
            }
        }
        // Indexes once their children are in (an index may hold indexes).
        let mut pending = Vec::new();
        for rec in indexes {
            if let Some(m) = self.prepare(key, &rec).await? {
                pending.push((rec, m));
            }
        }
        loop {
            let before = pending.len();
            let mut waiting = Vec::new();
            for (rec, m) in pending {
                if m.children.iter().all(|c| done.contains(c)) {
                    if self.image(key, &rec, m).await? {
                        done.insert(rec.digest);
                    }
                } else {
                    waiting.push((rec, m));
                }
            }
            pending = waiting;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for (rec, m) in pending {
            let missing: Vec<String> =
                m.children
                    .iter()
                    .filter(|c| !done.contains(*c))
                    .map(|c| {
                        if listed.contains(c) {
                            format!("{c} (not copied)")
                        } else {
                            format!("{c} (not in the source)")
                        }
                    })
                    .collect();
            self.fail(
                format!("image {key}@{}", rec.digest),
                format!("child manifests missing: {}", missing.join(", ")),
            );
        }
        Ok(())
    }

    /// The source's manifest of an image, checked against its digest and parsed; `None`
    /// (reported) when it fails either.
    async fn prepare(&mut self, key: &RepositoryKey, rec: &ImageRecord) -> Result<Option<NewManifest>> {
        let item = || format!("image {key}@{}", rec.digest);
        let Some(m) = self.from.meta.resolve(key, &Reference::Digest(rec.digest.clone())).await? else {
            self.fail(item(), "it vanished from the source while being copied".into());
            return Ok(None);
        };
        let actual = Digest::of(rec.digest.algorithm(), &m.payload);
        if actual != rec.digest {
            self.fail(item(), format!("its manifest in the source hashes to {actual}; not copied"));
            return Ok(None);
        }
        match new_manifest(key, rec.digest.clone(), Some(&m.media_type), m.payload, None) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                self.fail(item(), format!("its manifest in the source does not parse: {e}"));
                Ok(None)
            }
        }
    }

    /// Copies one image with its blobs, times and tags; whether the destination now holds it.
    async fn image(&mut self, key: &RepositoryKey, rec: &ImageRecord, m: NewManifest) -> Result<bool> {
        let item = format!("image {key}@{}", rec.digest);
        self.referenced.extend(m.blobs.iter().cloned());
        let mut blobs_ok = true;
        for b in &m.blobs {
            blobs_ok &= self.blob(key, b).await?;
        }
        if !blobs_ok {
            self.fail(item, "blobs it references were not copied".into());
            return Ok(false);
        }
        let to = &self.to.meta;
        let digest = Reference::Digest(rec.digest.clone());
        let mut wrote = false;
        match to.resolve(key, &digest).await? {
            Some(there) if there.payload == m.payload => {}
            Some(_) => {
                self.fail(item, "the destination holds other bytes under its digest".into());
                return Ok(false);
            }
            None => match to.put_manifest(&m, CreateRepo::No).await? {
                PutOutcome::Stored => wrote = true,
                PutOutcome::MissingReferences(missing) => {
                    let missing: Vec<&str> = missing.iter().map(Digest::as_str).collect();
                    self.fail(item, format!("the destination lacks {}", missing.join(", ")));
                    return Ok(false);
                }
                PutOutcome::TagImmutable { existing } => {
                    self.fail(item, format!("refused as a move of a tag naming {existing}"));
                    return Ok(false);
                }
            },
        }
        let Some(there) = to.get_image(key, &rec.digest).await? else {
            self.fail(item, "it vanished from the destination while being copied".into());
            return Ok(false);
        };
        if there.pushed_at != rec.pushed_at {
            to.restore_pushed_at(key, &rec.digest, rec.pushed_at).await?;
            wrote = true;
        }
        if let Some(at) = rec.last_pulled_at
            && there.last_pulled_at.is_none_or(|t| t < at)
        {
            to.record_pulls(&[(key.clone(), rec.digest.clone(), at)]).await?;
            wrote = true;
        }
        self.report.images.add(wrote);
        for tag in &rec.tags {
            let here = to.resolve(key, &Reference::Tag(tag.clone())).await?;
            if here.is_some_and(|h| h.digest == rec.digest) {
                self.report.tags.add(false);
                continue;
            }
            let tagged = NewManifest { tag: Some(tag.clone()), ..m.clone() };
            match to.put_manifest(&tagged, CreateRepo::No).await? {
                PutOutcome::Stored => self.report.tags.add(true),
                PutOutcome::TagImmutable { existing } => self.fail(
                    format!("tag {key}:{tag}"),
                    format!("it names {existing} in the destination, where the repository's tags are immutable"),
                ),
                PutOutcome::MissingReferences(missing) => {
                    let missing: Vec<&str> = missing.iter().map(Digest::as_str).collect();
                    self.fail(format!("tag {key}:{tag}"), format!("the destination lacks {}", missing.join(", ")));
                }
            }
        }
        Ok(true)
    }

    /// Places a blob's bytes in the destination (unless there already) and links it into the
    /// repository; whether the repository now holds it.
    async fn blob(&mut self, key: &RepositoryKey, digest: &Digest) -> Result<bool> {
        let item = || format!("blob {digest}");
        let Some(size) = self.from.meta.blob_in_repository(key, digest).await? else {
            self.fail(item(), format!("the source's repository {key} does not hold it"));
            return Ok(false);
        };
        let known = self.blobs.get(digest).copied();
        if known == Some(BlobState::Failed) {
            return Ok(false);
        }
        let linked = self.to.meta.blob_in_repository(key, digest).await?;
        if let Some(other) = linked.filter(|n| *n != size) {
            self.fail(item(), format!("the destination records {other} bytes for it, the source {size}"));
            return Ok(false);
        }
        if linked.is_some() {
            let in_place = match known {
                Some(BlobState::Placed(n)) => n == size,
                _ => self.to.blobs.stat(digest).await? == Some(size),
            };
            if in_place {
                if known.is_none() {
                    self.report.blobs.add(false);
                    self.blobs.insert(digest.clone(), BlobState::Placed(size));
                }
                self.report.blob_links.add(false);
                return Ok(true);
            }
        }
        let target = LinkTarget::Repository(key.clone(), CreateRepo::No);
        // Twice at most: a destination server's collector may take the digest between the
        // reservation and the link (only if the copy outlasts its grace).
        for _ in 0..2 {
            let token = reserve_token(self.to.meta.as_ref(), digest).await?;
            // Asked after the reservation: from here on the bytes stay until the link.
            if self.to.blobs.stat(digest).await? == Some(size) {
                if known.is_none() {
                    self.report.blobs.add(false);
                }
            } else {
                if let Err(reason) = self.copy_bytes(digest, size).await? {
                    self.blobs.insert(digest.clone(), BlobState::Failed);
                    self.fail(item(), reason);
                    return Ok(false);
                }
                if known.is_none() {
                    self.report.blobs.add(true);
                }
                self.report.bytes_copied += size;
            }
            self.blobs.insert(digest.clone(), BlobState::Placed(size));
            if self.to.meta.link_reserved(&target, digest, size, token).await? {
                self.report.blob_links.add(true);
                return Ok(true);
            }
        }
        Err(Error::Internal(format!("blob {digest} was garbage-collected twice while it was being copied").into()))
    }

    /// Streams a blob from the source into the destination's blob store, committing it only if
    /// its bytes hash to `digest` and number `size`. The inner error says why it was not.
    async fn copy_bytes(&self, digest: &Digest, size: u64) -> Result<Result<(), String>> {
        let read = match self.from.blobs.read(digest, None).await {
            Ok(r) => r,
            Err(BlobError::NotFound) => {
                return Ok(Err("the source holds no bytes for it (missing, or moved aside as damaged)".into()));
            }
            Err(e) => return Ok(Err(format!("reading it from the source failed: {e}"))),
        };
        if read.size != size {
            return Ok(Err(format!("the source holds {} bytes for it, its record says {size}", read.size)));
        }
        let mismatch = |actual: &Digest, seen: u64| {
            format!(
                "its bytes in the source hash to {actual} ({seen} bytes, {size} recorded), not to its digest; not \
                 copied"
            )
        };
        let body = read.body.into_stream();
        if size <= SMALL_BLOB {
            let mut body = body;
            let mut data = BytesMut::new();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) if (data.len() + c.len()) as u64 <= size => data.extend_from_slice(&c),
                    Ok(_) => return Ok(Err(format!("the source holds more than the {size} bytes recorded"))),
                    Err(e) => return Ok(Err(format!("reading it from the source failed: {e}"))),
                }
            }
            let actual = Digest::of(digest.algorithm(), &data);
            if actual != *digest || data.len() as u64 != size {
                return Ok(Err(mismatch(&actual, data.len() as u64)));
            }
            self.to.blobs.put_small(digest, data.freeze()).await?;
        } else {
            (self.progress)(&format!("blob {} ({}): copying", short(digest), mib(size)));
            let id = UploadId::generate();
            let (body, state) = hashing(body, Hasher::new(digest.algorithm()));
            let appended = self.to.blobs.upload_append(&id, 0, body).await;
            let (hasher, seen) = take(state);
            let part = match appended {
                Ok(a) => {
                    let actual = hasher.finish();
                    if actual != *digest || a.len != size || seen != size {
                        self.discard(&id).await;
                        return Ok(Err(mismatch(&actual, seen)));
                    }
                    a.part
                }
                Err(BlobError::Body(e)) => {
                    self.discard(&id).await;
                    return Ok(Err(format!("reading it from the source failed: {e}")));
                }
                Err(e) => {
                    self.discard(&id).await;
                    return Err(e.into());
                }
            };
            if let Err(e) = self.to.blobs.upload_commit(&id, &Vec::from_iter(part), digest).await {
                self.discard(&id).await;
                return Err(e.into());
            }
            (self.progress)(&format!("blob {} ({}): copied", short(digest), mib(size)));
        }
        Ok(Ok(()))
    }

    async fn discard(&self, id: &UploadId) {
        if let Err(e) = self.to.blobs.upload_abort(id).await {
            tracing::warn!(upload = %id, error = %e, "could not remove upload bytes; the sweeper will");
        }
    }

    /// The lifecycle-policy preview of a repository, copied whole when the destination's
    /// differs.
    async fn preview(&mut self, key: &RepositoryKey) -> Result<()> {
        let Some((summary, rows)) = read_preview(self.from.meta.as_ref(), key).await? else { return Ok(()) };
        let same = read_preview(self.to.meta.as_ref(), key).await?.is_some_and(|(s, r)| {
            (&s.policy_text, s.created_at, &r) == (&summary.policy_text, summary.created_at, &rows)
        });
        if !same {
            self.to.meta.put_preview(key, &summary.policy_text, &rows, summary.created_at).await?;
        }
        self.report.previews.add(!same);
        Ok(())
    }

    async fn registry_policies(&mut self) -> Result<()> {
        for registry in std::mem::take(&mut self.registries) {
            let Some(document) = self.from.meta.registry_policy(&registry).await? else { continue };
            let copied = self.to.meta.registry_policy(&registry).await?.as_deref() != Some(document.as_str());
            if copied {
                self.to.meta.set_registry_policy(&registry, Some(&document)).await?;
            }
            self.report.registry_policies.add(copied);
        }
        Ok(())
    }

    /// Lifecycle history, oldest first, each expiration the destination lacks recorded as a run
    /// of its own at the time the source last evaluated the policy.
    async fn history(&mut self) -> Result<()> {
        let mut all = self.from.meta.lifecycle_history(None, usize::MAX).await?;
        all.reverse();
        let mut lacking: HashMap<RepositoryKey, Option<HashMap<ExpirationKey, usize>>> = HashMap::new();
        for e in &all {
            if !lacking.contains_key(&e.repository) {
                // Without the repository in the destination (gone from the source too) there
                // is nowhere to record it.
                let there = if self.to.meta.repository_exists(&e.repository).await? {
                    let mut counts: HashMap<ExpirationKey, usize> = HashMap::new();
                    for x in all.iter().filter(|x| x.repository == e.repository) {
                        *counts.entry(ExpirationKey::of(x)).or_insert(0) += 1;
                    }
                    for x in self.to.meta.lifecycle_history(Some(&e.repository), usize::MAX).await? {
                        if let Some(n) = counts.get_mut(&ExpirationKey::of(&x)) {
                            *n = n.saturating_sub(1);
                        }
                    }
                    Some(counts)
                } else {
                    None
                };
                lacking.insert(e.repository.clone(), there);
            }
            let Some(counts) = lacking.get_mut(&e.repository).and_then(Option::as_mut) else {
                self.report.history_left += 1;
                continue;
            };
            let n = counts.get_mut(&ExpirationKey::of(e)).filter(|n| **n > 0);
            let copied = if let Some(n) = n {
                *n -= 1;
                let at = self.evaluated.get(&e.repository).copied().unwrap_or(e.expired_at);
                self.to.meta.record_lifecycle_run(&e.repository, at, std::slice::from_ref(e)).await?;
                true
            } else {
                false
            };
            self.report.lifecycle_history.add(copied);
        }
        if !all.is_empty() {
            let h = self.report.lifecycle_history;
            (self.progress)(&format!(
                "lifecycle history: {} expirations ({} written, {} of repositories that no longer exist left)",
                h.copied + h.present,
                h.copied,
                self.report.history_left
            ));
        }
        Ok(())
    }

    /// Counts recorded blobs of the source that no manifest references (left behind).
    async fn unreferenced(&mut self) -> Result<()> {
        let mut after: Option<Digest> = None;
        loop {
            let page = self.from.meta.recorded_blobs(after.as_ref(), PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            self.report.unreferenced_blobs += page.iter().filter(|(d, _)| !self.referenced.contains(d)).count() as u64;
        }
        Ok(())
    }
}

/// A failed create that found the thing there already is as good as present: `Ok(true)` when
/// it was created, `Ok(false)` when it existed.
fn absent(r: berth_meta::Result<()>) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(MetaError::Conflict(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The whole preview of a repository, or `None` when it has none.
async fn read_preview(meta: &dyn MetaStore, key: &RepositoryKey) -> Result<Option<(PreviewSummary, Vec<PreviewRow>)>> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = match meta.get_preview_page(key, TagStatus::Any, after, PAGE).await {
            Ok(p) => p,
            Err(MetaError::NotFound(Missing::Preview(_))) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        rows.extend(page.rows.into_iter().map(|(_, r)| r));
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(Some((page.summary, rows))),
        }
    }
}

/// An expiration as compared between the stores.
#[derive(PartialEq, Eq, Hash)]
struct ExpirationKey(String, Vec<String>, i64, u32, i64);

impl ExpirationKey {
    fn of(e: &Expiration) -> Self {
        ExpirationKey(e.digest.to_string(), e.tags.clone(), e.pushed_at, e.rule_priority, e.expired_at)
    }
}
