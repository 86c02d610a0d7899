//! Lifecycle-policy previews (`PreviewMeta`): a header per repository and its rows by position.
//! A page is a range of `(repository_id, position)`, or of `(repository_id, tagged, position)`
//! when filtered, so it reads what it returns. The header and the page are read by one
//! statement, so they always belong to the same preview.

use async_trait::async_trait;
use berth_meta::{Error, Missing, PreviewMeta, PreviewPage, PreviewRow, PreviewSummary, Result, TagStatus};
use berth_types::{Digest, RepositoryKey, Tag};
use tokio_postgres::Row;

use crate::db::{Client, exec, rows};
use crate::{PgMeta, corrupt, digest, get, repo_id, to_i64, to_u64};

/// The repository (no row: none), its preview's header (NULLs: none) and the rows picked by
/// `$rows` (NULLs: none), one result row per preview row.
macro_rules! preview_sql {
    ($rows:literal) => {
        concat!(
            "SELECT p.policy_text, p.created_at, p.expiring_total,
                    x.position, x.digest, x.tags, x.pushed_at, x.rule_priority
             FROM repositories r
             LEFT JOIN lifecycle_previews p ON p.repository_id = r.id
             LEFT JOIN LATERAL (SELECT position, digest, tags, pushed_at, rule_priority
                                FROM lifecycle_preview_rows WHERE repository_id = p.repository_id AND ",
            $rows,
            ") x ON true WHERE r.registry = $1 AND r.name = $2"
        )
    };
}

const PAGE_SQL: &str = preview_sql!("position > $3 ORDER BY position LIMIT $4");
const FILTERED_PAGE_SQL: &str = preview_sql!("tagged = $5 AND position > $3 ORDER BY position LIMIT $4");
const DIGESTS_SQL: &str = preview_sql!("digest = ANY($3) ORDER BY position");

/// The summary and rows of a preview read, or what was missing.
fn page_of(repo: &RepositoryKey, found: &[Row]) -> Result<(PreviewSummary, Vec<(u64, PreviewRow)>)> {
    let first = found.first().ok_or_else(|| Error::no_repository(repo))?;
    let Some(policy_text) = get::<Option<String>>(first, 0)? else {
        return Err(Error::NotFound(Missing::Preview(repo.clone())));
    };
    let summary = PreviewSummary { policy_text, created_at: get(first, 1)?, expiring_total: to_u64(get(first, 2)?) };
    let mut rows = Vec::with_capacity(found.len());
    for r in found {
        let Some(position) = get::<Option<i64>>(r, 3)? else { continue };
        let tags: Vec<String> = get(r, 5)?;
        rows.push((
            to_u64(position),
            PreviewRow {
                digest: digest(get(r, 4)?)?,
                tags: tags.iter().map(|t| Tag::parse(t).map_err(|_| corrupt("tag"))).collect::<Result<_>>()?,
                pushed_at: get(r, 6)?,
                rule_priority: u32::try_from(get::<i32>(r, 7)?).unwrap_or(0),
            },
        ));
    }
    Ok((summary, rows))
}

#[async_trait]
impl PreviewMeta for PgMeta {
    async fn put_preview(
        &self,
        repo: &RepositoryKey,
        policy_text: &str,
        rows: &[PreviewRow],
        created_at: i64,
    ) -> Result<()> {
        let positions: Vec<i64> = (0..rows.len()).map(|i| to_i64(i as u64)).collect();
        let tagged: Vec<bool> = rows.iter().map(|r| !r.tags.is_empty()).collect();
        let digests: Vec<&str> = rows.iter().map(|r| r.digest.as_str()).collect();
        // Arrays of arrays must be rectangular: each row's tags go as one text joined by
        // newlines (tags hold none) and are split in the statement.
        let tags: Vec<String> =
            rows.iter().map(|r| r.tags.iter().map(Tag::as_str).collect::<Vec<_>>().join("\n")).collect();
        let pushed: Vec<i64> = rows.iter().map(|r| r.pushed_at).collect();
        let priorities: Vec<i32> = rows.iter().map(|r| i32::try_from(r.rule_priority).unwrap_or(i32::MAX)).collect();
        let total = to_i64(rows.len() as u64);
        self.write(async move |c: &Client| {
            let id = repo_id(c, repo).await?.ok_or_else(|| Error::no_repository(repo))?;
            // The old rows go with their header (ON DELETE CASCADE).
            exec(c, "DELETE FROM lifecycle_previews WHERE repository_id = $1", &[&id]).await?;
            exec(
                c,
                "INSERT INTO lifecycle_previews (repository_id, policy_text, created_at, expiring_total)
                 VALUES ($1, $2, $3, $4)",
                &[&id, &policy_text, &created_at, &total],
            )
            .await?;
            if !positions.is_empty() {
                exec(
                    c,
                    "INSERT INTO lifecycle_preview_rows
                     (repository_id, position, tagged, digest, tags, pushed_at, rule_priority)
                     SELECT $1, x.position, x.tagged, x.digest,
                            CASE WHEN x.tags = '' THEN '{}'::text[] ELSE string_to_array(x.tags, E'\\n') END,
                            x.pushed_at, x.rule_priority
                     FROM unnest($2::bigint[], $3::bool[], $4::text[], $5::text[], $6::bigint[], $7::int[])
                          AS x(position, tagged, digest, tags, pushed_at, rule_priority)",
                    &[&id, &positions, &tagged, &digests, &tags, &pushed, &priorities],
                )
                .await?;
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
        let after = after.map_or(-1, to_i64);
        // One more than asked, to know whether another page follows.
        let take = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let found = self
            .read(async |c: &Client| {
                let (registry, name) = (repo.registry.as_str(), repo.name.as_str());
                match filter {
                    TagStatus::Any => rows(c, PAGE_SQL, &[&registry, &name, &after, &take]).await,
                    TagStatus::Tagged | TagStatus::Untagged => {
                        let tagged = filter == TagStatus::Tagged;
                        rows(c, FILTERED_PAGE_SQL, &[&registry, &name, &after, &take, &tagged]).await
                    }
                }
            })
            .await?;
        let (summary, mut rows) = page_of(repo, &found)?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|(p, _)| *p)
        } else {
            None
        };
        Ok(PreviewPage { summary, rows, next })
    }

    async fn get_preview_rows(&self, repo: &RepositoryKey, digests: &[Digest]) -> Result<PreviewPage> {
        let digests: Vec<&str> = digests.iter().map(Digest::as_str).collect();
        let found = self
            .read(async |c: &Client| {
                rows(c, DIGESTS_SQL, &[&repo.registry.as_str(), &repo.name.as_str(), &digests]).await
            })
            .await?;
        let (summary, mut rows) = page_of(repo, &found)?;
        rows.dedup_by_key(|(p, _)| *p);
        Ok(PreviewPage { summary, rows, next: None })
    }

    async fn delete_preview(&self, repo: &RepositoryKey) -> Result<bool> {
        self.write(async move |c: &Client| {
            let id = repo_id(c, repo).await?.ok_or_else(|| Error::no_repository(repo))?;
            exec(c, "DELETE FROM lifecycle_previews WHERE repository_id = $1", &[&id]).await.map(|n| n > 0)
        })
        .await
    }
}
