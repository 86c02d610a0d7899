//! Lifecycle-policy previews (`PreviewMeta`): a header per repository and its rows by position.
//! A page is a range of `(repository_id, position)`, or of `(repository_id, tagged, position)`
//! when filtered, so it reads what it returns.

use async_trait::async_trait;
use berth_meta::{Error, Missing, PreviewMeta, PreviewPage, PreviewRow, PreviewSummary, Result, TagStatus};
use berth_types::{Digest, RepositoryKey, Tag};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{SqliteMeta, backend, corrupt, repo_id, to_i64, to_u64};

pub(crate) const PREVIEW_SQL: &str =
    "SELECT policy_text, created_at, expiring_total FROM lifecycle_previews WHERE repository_id = ?1";
pub(crate) const PREVIEW_PAGE_SQL: &str = "SELECT position, digest, tags, pushed_at, rule_priority
    FROM lifecycle_preview_rows WHERE repository_id = ?1 AND position > ?2 ORDER BY position LIMIT ?3";
pub(crate) const PREVIEW_FILTERED_PAGE_SQL: &str = "SELECT position, digest, tags, pushed_at, rule_priority
    FROM lifecycle_preview_rows WHERE repository_id = ?1 AND tagged = ?4 AND position > ?2
    ORDER BY position LIMIT ?3";
pub(crate) const PREVIEW_DIGEST_SQL: &str = "SELECT position, digest, tags, pushed_at, rule_priority
    FROM lifecycle_preview_rows WHERE repository_id = ?1 AND digest = ?2";

type RawRow = (i64, String, String, i64, u32);

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_row((position, digest, tags, pushed_at, rule_priority): RawRow) -> Result<(u64, PreviewRow)> {
    let tags = tags
        .split('\n')
        .filter(|t| !t.is_empty())
        .map(|t| Tag::parse(t).map_err(|_| corrupt("tag")))
        .collect::<Result<Vec<_>>>()?;
    let digest = Digest::parse(&digest).map_err(|_| corrupt("digest"))?;
    Ok((to_u64(position), PreviewRow { digest, tags, pushed_at, rule_priority }))
}

/// The repository's id and its preview's header; misses name the repository or the preview.
fn header(c: &Connection, repo: &RepositoryKey) -> Result<(i64, PreviewSummary)> {
    let id = repo_id(c, repo)?.ok_or_else(|| Error::no_repository(repo))?;
    let summary = c
        .prepare_cached(PREVIEW_SQL)
        .and_then(|mut s| {
            s.query_row([id], |r| {
                Ok(PreviewSummary { policy_text: r.get(0)?, created_at: r.get(1)?, expiring_total: to_u64(r.get(2)?) })
            })
            .optional()
        })
        .map_err(backend)?
        .ok_or_else(|| Error::NotFound(Missing::Preview(repo.clone())))?;
    Ok((id, summary))
}

#[async_trait]
impl PreviewMeta for SqliteMeta {
    async fn put_preview(
        &self,
        repo: &RepositoryKey,
        policy_text: &str,
        rows: &[PreviewRow],
        created_at: i64,
    ) -> Result<()> {
        let (repo, policy_text, rows) = (repo.clone(), policy_text.to_owned(), rows.to_vec());
        self.writer
            .write(move |c| {
                let id = repo_id(c, &repo)?.ok_or_else(|| Error::no_repository(&repo))?;
                // The old rows go with their header (ON DELETE CASCADE).
                c.prepare_cached("DELETE FROM lifecycle_previews WHERE repository_id = ?1")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(backend)?;
                c.prepare_cached(
                    "INSERT INTO lifecycle_previews (repository_id, policy_text, created_at, expiring_total)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![id, policy_text, created_at, to_i64(rows.len() as u64)]))
                .map_err(backend)?;
                let mut insert = c
                    .prepare_cached(
                        "INSERT INTO lifecycle_preview_rows
                         (repository_id, position, tagged, digest, tags, pushed_at, rule_priority)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(backend)?;
                for (position, row) in rows.iter().enumerate() {
                    let tags = row.tags.iter().map(Tag::as_str).collect::<Vec<_>>().join("\n");
                    insert
                        .execute(params![
                            id,
                            to_i64(position as u64),
                            !row.tags.is_empty(),
                            row.digest.as_str(),
                            tags,
                            row.pushed_at,
                            row.rule_priority
                        ])
                        .map_err(backend)?;
                }
                Ok(())
            })
            .await
    }

    async fn get_preview_page(
        &self,
        repo: &RepositoryKey,
        filter: TagStatus,
        after: Option<u64>,
        limit: usize,
    ) -> Result<PreviewPage> {
        let repo = repo.clone();
        self.readers
            .read(move |c| {
                let (id, summary) = header(c, &repo)?;
                let after = after.map_or(-1, to_i64);
                // One more than asked, to know whether another page follows.
                let take = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
                let raw: Vec<RawRow> = match filter {
                    TagStatus::Any => c
                        .prepare_cached(PREVIEW_PAGE_SQL)
                        .and_then(|mut s| s.query_map(params![id, after, take], raw_row)?.collect()),
                    TagStatus::Tagged | TagStatus::Untagged => {
                        let tagged = filter == TagStatus::Tagged;
                        c.prepare_cached(PREVIEW_FILTERED_PAGE_SQL)
                            .and_then(|mut s| s.query_map(params![id, after, take, tagged], raw_row)?.collect())
                    }
                }
                .map_err(backend)?;
                let mut rows = raw.into_iter().map(to_row).collect::<Result<Vec<_>>>()?;
                let next = if rows.len() > limit {
                    rows.truncate(limit);
                    rows.last().map(|(p, _)| *p)
                } else {
                    None
                };
                Ok(PreviewPage { summary, rows, next })
            })
            .await
    }

    async fn get_preview_rows(&self, repo: &RepositoryKey, digests: &[Digest]) -> Result<PreviewPage> {
        let (repo, digests) = (repo.clone(), digests.to_vec());
        self.readers
            .read(move |c| {
                let (id, summary) = header(c, &repo)?;
                let mut stmt = c.prepare_cached(PREVIEW_DIGEST_SQL).map_err(backend)?;
                let mut rows = Vec::new();
                for d in &digests {
                    if let Some(raw) = stmt.query_row(params![id, d.as_str()], raw_row).optional().map_err(backend)? {
                        rows.push(to_row(raw)?);
                    }
                }
                rows.sort_by_key(|(p, _)| *p);
                rows.dedup_by_key(|(p, _)| *p);
                Ok(PreviewPage { summary, rows, next: None })
            })
            .await
    }

    async fn delete_preview(&self, repo: &RepositoryKey) -> Result<bool> {
        let repo = repo.clone();
        self.writer
            .write(move |c| {
                let id = repo_id(c, &repo)?.ok_or_else(|| Error::no_repository(&repo))?;
                c.prepare_cached("DELETE FROM lifecycle_previews WHERE repository_id = ?1")
                    .and_then(|mut s| s.execute([id]))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }
}
