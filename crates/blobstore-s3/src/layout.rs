//! Key layout inside the bucket, below the store's prefix (documented here and nowhere else):
//! - `blobs/<algorithm>/<first two hex>/<hex>`: committed blobs, content-addressed;
//! - `uploads/<uuid>/<offset as 20 digits>-<32 hex nonce>`: one object per append of an upload
//!   session, written whole (PutObject, or a multipart upload completed at the end);
//! - `quarantine/<algorithm>-<hex>-<ms>`: bytes found not to hash to their name, kept aside.
//!
//! A part's name (what the core records) is only the last segment, `<offset>-<nonce>`; the
//! store puts it under its own upload's directory after checking its form, so a recorded name
//! can never point at another upload or outside `uploads/`.

use berth_types::{Digest, UploadId};

pub(crate) const BLOBS: &str = "blobs";
pub(crate) const UPLOADS: &str = "uploads";
pub(crate) const QUARANTINE: &str = "quarantine";

/// `blobs/<alg>/<2hex>/<hex>`.
pub(crate) fn blob_key(d: &Digest) -> String {
    let hex = d.hex();
    format!("{BLOBS}/{}/{}/{hex}", d.algorithm().as_str(), &hex[..2])
}

/// The digest a key below `blobs/` names, or `None` for a key that is not a blob's.
pub(crate) fn parse_blob_key(rel: &str) -> Option<Digest> {
    let mut it = rel.split('/');
    let (Some(BLOBS), Some(alg), Some(fan), Some(hex), None) = (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    let d = Digest::parse(&format!("{alg}:{hex}")).ok()?;
    (d.hex().get(..2) == Some(fan)).then_some(d)
}

/// `uploads/<id>`: the directory holding an upload's parts.
pub(crate) fn upload_dir(id: &UploadId) -> String {
    format!("{UPLOADS}/{id}")
}

/// The upload a key below `uploads/` belongs to.
pub(crate) fn parse_upload_key(rel: &str) -> Option<UploadId> {
    let mut it = rel.split('/');
    let (Some(UPLOADS), Some(id), Some(_part), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return None;
    };
    UploadId::parse(id).ok()
}

/// `quarantine/<alg>-<hex>-<ms>`.
pub(crate) fn quarantine_key(d: &Digest, ms: u128) -> String {
    format!("{QUARANTINE}/{}-{}-{ms}", d.algorithm().as_str(), d.hex())
}

const OFFSET_DIGITS: usize = 20;
const NONCE_HEX: usize = 32;

/// The name of one append's part: its offset in the upload and a random nonce, so two appends
/// at one offset never share a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartName {
    pub at: u64,
    name: String,
}

impl PartName {
    /// A new name for an append at `at`.
    pub(crate) fn generate(at: u64) -> Self {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        PartName { at, name: format!("{at:0OFFSET_DIGITS$}-{nonce}") }
    }

    /// A recorded name, if it has exactly the form `generate` gives.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (at, nonce) = s.split_once('-')?;
        let well_formed = at.len() == OFFSET_DIGITS
            && at.bytes().all(|b| b.is_ascii_digit())
            && nonce.len() == NONCE_HEX
            && nonce.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return None;
        }
        Some(PartName { at: at.parse().ok()?, name: s.to_owned() })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }

    /// `uploads/<id>/<name>`.
    pub(crate) fn key(&self, id: &UploadId) -> String {
        format!("{}/{}", upload_dir(id), self.name)
    }
}

/// Joins the store's prefix (already trimmed of slashes, possibly empty) and a relative key.
pub(crate) fn join(prefix: &str, rel: &str) -> String {
    if prefix.is_empty() { rel.to_owned() } else { format!("{prefix}/{rel}") }
}

/// A prefix as configured (`"a/b/"`, `"/a/b"`, `""`) in the form `join` takes (`"a/b"`).
pub(crate) fn normalize_prefix(p: Option<&str>) -> String {
    p.unwrap_or("").trim_matches('/').to_owned()
}

/// A key with the store's prefix taken off, or `None` when it is not below the prefix.
pub(crate) fn strip_prefix<'a>(prefix: &str, key: &'a str) -> Option<&'a str> {
    if prefix.is_empty() { Some(key) } else { key.strip_prefix(prefix)?.strip_prefix('/') }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::Algorithm;

    #[test]
    fn blob_keys_round_trip() {
        let d = Digest::of(Algorithm::Sha256, b"x");
        let key = blob_key(&d);
        assert_eq!(key, format!("blobs/sha256/{}/{}", &d.hex()[..2], d.hex()));
        assert_eq!(parse_blob_key(&key), Some(d));
        let d = Digest::of(Algorithm::Sha512, b"x");
        assert_eq!(parse_blob_key(&blob_key(&d)), Some(d));
    }

    #[test]
    fn foreign_blob_keys_are_skipped() {
        let d = Digest::of(Algorithm::Sha256, b"x");
        let hex = d.hex();
        for bad in [
            format!("blobs/sha256/00/{hex}"),      // wrong fan-out directory
            format!("blobs/sha256/{hex}"),         // no fan-out
            format!("blobs/sha256/ab/{hex}/data"), // too deep
            format!("blobs/md5/{}/{hex}", &hex[..2]),
            format!("blobs/sha256/{}/{}", &hex[..2], hex.to_uppercase()),
            format!("uploads/sha256/{}/{hex}", &hex[..2]),
            "blobs/sha256/ab/abc".to_owned(),
        ] {
            assert_eq!(parse_blob_key(&bad), None, "{bad}");
        }
    }

    #[test]
    fn upload_keys() {
        let id = UploadId::generate();
        let part = PartName::generate(1234);
        let key = part.key(&id);
        assert!(key.starts_with(&format!("uploads/{id}/00000000000000001234-")), "{key}");
        assert_eq!(parse_upload_key(&key), Some(id.clone()));
        assert_eq!(parse_upload_key(&upload_dir(&id)), None);
        assert_eq!(parse_upload_key("uploads/not-a-uuid/x"), None);
        assert_eq!(parse_upload_key(&format!("blobs/{id}/x")), None);
    }

    #[test]
    fn part_names() {
        let p = PartName::generate(u64::MAX);
        assert_eq!(p.at, u64::MAX);
        assert_eq!(PartName::parse(p.as_str()), Some(p.clone()));
        assert_ne!(PartName::generate(0), PartName::generate(0));
        let nonce = "0123456789abcdef0123456789abcdef";
        assert_eq!(PartName::parse(&format!("00000000000000000007-{nonce}")).map(|p| p.at), Some(7));
        for bad in [
            format!("7-{nonce}"),
            format!("0000000000000000000a-{nonce}"),
            format!("00000000000000000007-{}", nonce.to_uppercase()),
            format!("00000000000000000007-{nonce}0"),
            format!("00000000000000000007-../../blobs/{}", &nonce[..22]),
            format!("99999999999999999999-{nonce}"), // past u64::MAX
            "00000000000000000007".to_owned(),
            String::new(),
        ] {
            assert_eq!(PartName::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix(None), "");
        assert_eq!(normalize_prefix(Some("/a/b/")), "a/b");
        assert_eq!(join("", "blobs"), "blobs");
        assert_eq!(join("a/b", "blobs"), "a/b/blobs");
        assert_eq!(strip_prefix("a/b", "a/b/blobs/x"), Some("blobs/x"));
        assert_eq!(strip_prefix("a/b", "a/bc/blobs/x"), None);
        assert_eq!(strip_prefix("", "blobs/x"), Some("blobs/x"));
        let q = quarantine_key(&Digest::of(Algorithm::Sha256, b"x"), 5);
        assert!(q.starts_with("quarantine/sha256-") && q.ends_with("-5"), "{q}");
    }
}
