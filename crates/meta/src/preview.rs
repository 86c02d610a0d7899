//! Lifecycle-policy previews, stored with their repository: a preview is computed once and then
//! read page by page, each page costing what it returns (not the size of the preview), and it
//! outlives a restart and is seen by every node.

use async_trait::async_trait;
use berth_types::{Digest, RepositoryKey, Tag};

use crate::{Result, TagStatus};

/// An image a preview would expire, with the rule that expires it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewRow {
    pub digest: Digest,
    /// The image's tags when the preview was made, in byte order; empty: untagged.
    pub tags: Vec<Tag>,
    pub pushed_at: i64,
    pub rule_priority: u32,
}

/// What a preview is of, whatever page is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewSummary {
    pub policy_text: String,
    pub created_at: i64,
    /// Every image the preview expires, whatever a page's filter (ECR's
    /// `expiringImageTotalCount`).
    pub expiring_total: u64,
}

/// Rows of a preview, with their positions in the preview's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewPage {
    pub summary: PreviewSummary,
    /// `(position, row)`, by position.
    pub rows: Vec<(u64, PreviewRow)>,
    /// The position to continue after, when more rows pass the filter.
    pub next: Option<u64>,
}

#[async_trait]
pub trait PreviewMeta: Send + Sync {
    /// Stores the preview of `repo`'s lifecycle policy `policy_text`, replacing any earlier one,
    /// in one transaction. A row's position is its index in `rows`. `NotFound(Repository)`
    /// without the repository. The preview goes with its repository.
    async fn put_preview(
        &self,
        repo: &RepositoryKey,
        policy_text: &str,
        rows: &[PreviewRow],
        created_at: i64,
    ) -> Result<()>;
    /// Up to `limit` rows after position `after` that pass `filter` (tagged or untagged),
    /// in position order. `NotFound(Preview)` if the repository has none (`NotFound(Repository)`
    /// if it does not exist).
    async fn get_preview_page(
        &self,
        repo: &RepositoryKey,
        filter: TagStatus,
        after: Option<u64>,
        limit: usize,
    ) -> Result<PreviewPage>;
    /// The rows of the preview for the given digests (ECR's `imageIds`), by position; digests
    /// it does not expire are left out. Misses as `get_preview_page`.
    async fn get_preview_rows(&self, repo: &RepositoryKey, digests: &[Digest]) -> Result<PreviewPage>;
    /// Deletes the preview of `repo`; `false` if there was none, `NotFound(Repository)` without
    /// the repository.
    async fn delete_preview(&self, repo: &RepositoryKey) -> Result<bool>;
}
