//! Page markers for listings filtered by permission (`_catalog`, DescribeRepositories).
//!
//! Such a listing scans rows in name order and keeps those the caller may see, so where a page
//! stops may be a row the caller may not see. Its marker is therefore opaque: the position
//! (a repository name) padded to the longest name and sealed (AES-256-GCM under the server's
//! seal key, bound to the listing it belongs to), so a caller can neither read a hidden name
//! nor its length from it, nor make one. Each request examines at most [`SCAN_BUDGET`] rows; a
//! page that ends there carries a marker even when it holds fewer than the items asked for.

use berth_auth::SealKey;
use berth_meta::{MetaStore, RepositoryRecord};
use berth_types::{AccountId, PageRequest};

use crate::{Error, Result};

/// Rows examined at most by one request of a filtered listing.
pub(crate) const SCAN_BUDGET: usize = 5_000;
/// Rows read from metadata at a time while filtering.
pub(crate) const SCAN_BATCH: usize = 500;

/// Marks a sealed marker: `~` is in no repository name, so a marker is never taken for one.
const PREFIX: char = '~';
/// Positions are padded to this many bytes (the longest repository name) before sealing.
const PADDED: usize = 256;
const CONTEXT: &str = "berth page marker v1\n";

/// Which listing a marker belongs to (a marker of one is refused by another).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Listing<'a> {
    /// `/v2/_catalog` of one registry (account).
    Catalog(&'a str),
    /// DescribeRepositories of one registry (account).
    Repositories(&'a str),
}

impl Listing<'_> {
    fn context(self) -> String {
        match self {
            Listing::Catalog(account) => format!("{CONTEXT}catalog\n{account}"),
            Listing::Repositories(account) => format!("{CONTEXT}repositories\n{account}"),
        }
    }
}

/// One page of a registry's repositories, in name order, keeping those `keep` accepts: reads
/// rows in batches after `after` until the page is full, the rows run out, or
/// [`SCAN_BUDGET`] rows were examined. Returns the page and, when rows may remain, the sealed
/// marker to continue with. `keep` decides from the record alone (no storage access), so a
/// page costs what it reads.
pub(crate) async fn filtered(
    meta: &dyn MetaStore,
    seal: &SealKey,
    listing: Listing<'_>,
    registry: &AccountId,
    mut after: Option<String>,
    want: usize,
    keep: impl Fn(&RepositoryRecord) -> bool,
) -> Result<(Vec<RepositoryRecord>, Option<String>)> {
    let (mut items, mut examined) = (Vec::new(), 0);
    let more = loop {
        if items.len() >= want || examined >= SCAN_BUDGET {
            break true;
        }
        let limit = (want - items.len()).clamp(16, SCAN_BATCH).min(SCAN_BUDGET - examined);
        let found =
            meta.list_repository_records(registry, &PageRequest { limit: Some(limit), after: after.clone() }).await?;
        let (rows, exhausted) = (found.items.len(), found.next.is_none());
        let mut used = 0;
        for r in found.items {
            used += 1;
            examined += 1;
            after = Some(r.key.name.to_string());
            if keep(&r) {
                items.push(r);
                if items.len() >= want {
                    break;
                }
            }
        }
        if used == rows && exhausted {
            break false;
        }
    };
    let next = match after {
        Some(position) if more => Some(seal_marker(seal, listing, &position)?),
        _ => None,
    };
    Ok((items, next))
}

/// The opaque marker for continuing `listing` after `position`.
pub(crate) fn seal_marker(seal: &SealKey, listing: Listing<'_>, position: &str) -> Result<String> {
    let mut padded = position.as_bytes().to_vec();
    padded.resize(padded.len().max(PADDED), 0);
    let sealed = seal.seal(&padded, listing.context().as_bytes()).map_err(|e| Error::Internal(Box::new(e)))?;
    Ok(format!("{PREFIX}{}", hex::encode(sealed)))
}

/// The position a marker of `listing` holds; `None` for anything not sealed under `seal` for
/// that listing.
pub(crate) fn open_marker(seal: &SealKey, listing: Listing<'_>, marker: &str) -> Option<String> {
    let sealed = hex::decode(marker.strip_prefix(PREFIX)?).ok()?;
    let mut padded = seal.open(&sealed, listing.context().as_bytes())?;
    let len = padded.iter().position(|&b| b == 0).unwrap_or(padded.len());
    padded.truncate(len);
    String::from_utf8(padded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SealKey {
        SealKey::derive(&berth_auth::TokenKey::from_bytes([b; 32]))
    }

    #[test]
    fn markers_are_opaque_bound_and_unforgeable() {
        let k = key(3);
        let a = seal_marker(&k, Listing::Catalog("111122223333"), "team/secret-app").unwrap();
        let b = seal_marker(&k, Listing::Catalog("111122223333"), "x1").unwrap();
        assert!(a.starts_with('~') && !a.contains("secret"), "{a}");
        assert!(!String::from_utf8_lossy(&hex::decode(&a[1..]).unwrap()).contains("secret"));
        assert_eq!(a.len(), b.len(), "the length of the name does not show");
        assert_ne!(a, seal_marker(&k, Listing::Catalog("111122223333"), "team/secret-app").unwrap(), "fresh nonces");
        assert_eq!(open_marker(&k, Listing::Catalog("111122223333"), &a).as_deref(), Some("team/secret-app"));
        assert_eq!(open_marker(&k, Listing::Repositories("111122223333"), &a), None, "another listing");
        let r = seal_marker(&k, Listing::Repositories("111122223333"), "team/app").unwrap();
        assert_eq!(open_marker(&k, Listing::Repositories("444455556666"), &r), None, "another registry");
        assert_eq!(open_marker(&k, Listing::Repositories("111122223333"), &r).as_deref(), Some("team/app"));
        // Altered, truncated, unprefixed or made up: refused.
        let mut altered = a.clone().into_bytes();
        altered[20] = if altered[20] == b'0' { b'1' } else { b'0' };
        for bad in [String::from_utf8(altered).unwrap(), a[..a.len() - 2].to_owned(), a[1..].to_owned()] {
            assert_eq!(open_marker(&k, Listing::Catalog("111122223333"), &bad), None, "{bad}");
        }
        for bad in ["", "~", "~zz", "team/app", &format!("~{}", hex::encode(b"team/app"))] {
            assert_eq!(open_marker(&k, Listing::Catalog("111122223333"), bad), None, "{bad}");
        }
        assert_eq!(open_marker(&key(4), Listing::Catalog("111122223333"), &a), None, "another server key");
    }
}
