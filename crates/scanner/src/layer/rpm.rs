//! rpm's SQLite database (`rpmdb.sqlite`): one header blob per package in `Packages.blob`.
//!
//! The header parser is ours (about 100 lines): the `rpmdb` crate ports go-rpmdb but pins
//! rusqlite ^0.37, which clashes with the workspace's 0.39 (both link `sqlite3`).
//!
//! A header blob as stored: `il` (u32 BE, index entries), `dl` (u32 BE, data bytes), `il`
//! entries of 16 bytes (tag, type, offset, count; u32 BE each), then `dl` bytes of data.

use rusqlite::{Connection, MAIN_DB, OpenFlags};

use crate::inventory::{Package, PackageManager};

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own sanity limits on a header (`hdrchkTags`, `hdrchkData`).
const MAX_TAGS: usize = 0xffff;
const MAX_DATA: usize = 256 * 1024 * 1024;
/// Rows read from one database; an rpmdb with more packages than this is not real.
const MAX_ROWS: usize = 200_000;

/// The magic some writers put in front of a header (`8e ad e8 01` + 4 reserved bytes).
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The fields detection reads from one header.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub name: Option<String>,
    pub version: Option<String>,
    pub release: Option<String>,
    pub epoch: Option<u32>,
    pub arch: Option<String>,
    pub source_rpm: Option<String>,
}

/// Parses a header blob; every offset is checked against the data store.
///
/// # Errors
/// Why the blob is not a header.
pub fn parse_header(blob: &[u8]) -> Result<Header, String> {
    let blob = match blob.get(..4) {
        Some(m) if m == HEADER_MAGIC => blob.get(8..).ok_or("truncated header magic")?,
        _ => blob,
    };
    let il = be32(blob, 0).ok_or("header shorter than 8 bytes")? as usize;
    let dl = be32(blob, 4).ok_or("header shorter than 8 bytes")? as usize;
    if il == 0 || il > MAX_TAGS || dl > MAX_DATA {
        return Err(format!("header with {il} tags and {dl} data bytes is not plausible"));
    }
    let index_end = 8 + il * 16;
    let data = blob.get(index_end..index_end + dl).ok_or("header shorter than its index says")?;
    let string_at = |offset: usize| -> Option<String> {
        let s = data.get(offset..)?;
        let end = s.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&s[..end]).into_owned())
    };
    let mut h = Header::default();
    for i in 0..il {
        let at = 8 + i * 16;
        let (Some(tag), Some(kind), Some(offset), Some(count)) =
            (be32(blob, at), be32(blob, at + 4), be32(blob, at + 8), be32(blob, at + 12))
        else {
            return Err("truncated index entry".into());
        };
        let offset = offset as usize;
        let text = || match kind {
            TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING if count >= 1 => string_at(offset),
            _ => None,
        };
        match tag {
            TAG_NAME => h.name = text(),
            TAG_VERSION => h.version = text(),
            TAG_RELEASE => h.release = text(),
            TAG_ARCH => h.arch = text(),
            TAG_SOURCERPM => h.source_rpm = text(),
            TAG_EPOCH if kind == TYPE_INT32 && count >= 1 => h.epoch = be32(data, offset),
            _ => {}
        }
    }
    Ok(h)
}

/// `openssl-3.0.7-24.el9.src.rpm` → `openssl`: the source RPM's name, without version and
/// release (the last two `-` fields).
#[must_use]
pub fn source_name(source_rpm: &str) -> Option<&str> {
    let stem = source_rpm.strip_suffix(".src.rpm").or_else(|| source_rpm.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = stem.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    (!name.is_empty()).then_some(name)
}

fn to_package(h: Header, path: &str) -> Option<Package> {
    let name = h.name.filter(|n| !n.is_empty())?;
    // Imported signing keys are headers too, not packages.
    if name == "gpg-pubkey" {
        return None;
    }
    let version = h.version.filter(|v| !v.is_empty())?;
    let full = match (&h.epoch, &h.release) {
        (Some(e), Some(r)) => format!("{e}:{version}-{r}"),
        (None, Some(r)) => format!("{version}-{r}"),
        (Some(e), None) => format!("{e}:{version}"),
        (None, None) => version.clone(),
    };
    let mut p = super::package(PackageManager::Os, &name, &full, path);
    p.source_name = h.source_rpm.as_deref().and_then(source_name).map(str::to_owned).or(Some(name));
    p.arch = h.arch.filter(|a| !a.is_empty() && a != "(none)");
    p.epoch = h.epoch;
    p.release = h.release;
    Some(p)
}

/// Opens the database from memory (never a file), read-only and defensive, and reads every
/// header. A blob that is not a header is passed over; a file that is not an rpm database is
/// an `Err` with why (recorded as skipped by the walk).
///
/// # Errors
/// Why the file could not be read as an rpm database.
pub fn scan_sqlite(body: &[u8], path: &str) -> Result<Vec<Package>, String> {
    let fail = |e: rusqlite::Error| format!("rpmdb.sqlite could not be read: {e}");
    let mut conn =
        Connection::open_in_memory_with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(fail)?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true).map_err(fail)?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false).map_err(fail)?;
    // rpm keeps its database in WAL mode (header bytes 18 and 19 are 2), which an in-memory
    // database cannot open; the same bytes read in rollback-journal mode (1) give the same
    // pages. rpm checkpoints on close, so the main file holds every committed package.
    let mut head = body[..body.len().min(100)].to_vec();
    for b in head.iter_mut().skip(18).take(2) {
        if *b == 2 {
            *b = 1;
        }
    }
    let reader = std::io::Read::chain(head.as_slice(), &body[head.len()..]);
    conn.deserialize_read_exact(MAIN_DB, reader, body.len(), true).map_err(fail)?;
    // A view or virtual table named Packages could compute rows without end; a table cannot.
    let kind: Option<String> =
        conn.query_row("SELECT type FROM sqlite_master WHERE name = 'Packages'", [], |r| r.get(0)).map_err(fail).ok();
    if kind.as_deref() != Some("table") {
        return Err("rpmdb.sqlite has no Packages table".to_owned());
    }
    let mut stmt = conn.prepare("SELECT blob FROM Packages").map_err(fail)?;
    let mut rows = stmt.query([]).map_err(fail)?;
    let mut out = Vec::new();
    let mut seen = 0usize;
    while let Some(row) = rows.next().map_err(fail)? {
        seen += 1;
        if seen > MAX_ROWS {
            return Err(format!("rpmdb.sqlite has more than {MAX_ROWS} rows"));
        }
        let Ok(blob) = row.get_ref(0).and_then(|v| v.as_blob().map_err(Into::into)) else { continue };
        if let Some(p) = parse_header(blob).ok().and_then(|h| to_package(h, path)) {
            out.push(p);
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header blob from (tag, type, payload) triples; strings get their NUL here.
    pub(crate) fn header(entries: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, payload) in entries {
            if *kind == TYPE_INT32 {
                while !data.len().is_multiple_of(4) {
                    data.push(0);
                }
            }
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(payload);
            if *kind != TYPE_INT32 {
                data.push(0);
            }
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&u32::try_from(entries.len()).unwrap().to_be_bytes());
        blob.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&data);
        blob
    }

    #[test]
    fn parses_a_header() {
        let blob = header(&[
            (TAG_NAME, TYPE_STRING, b"openssl-libs"),
            (TAG_VERSION, TYPE_STRING, b"3.0.7"),
            (TAG_RELEASE, TYPE_STRING, b"24.el9"),
            (TAG_EPOCH, TYPE_INT32, &1u32.to_be_bytes()),
            (TAG_ARCH, TYPE_STRING, b"x86_64"),
            (TAG_SOURCERPM, TYPE_STRING, b"openssl-3.0.7-24.el9.src.rpm"),
        ]);
        let p = to_package(parse_header(&blob).unwrap(), "var/lib/rpm/rpmdb.sqlite").unwrap();
        assert_eq!(p.name, "openssl-libs");
        assert_eq!(p.version, "1:3.0.7-24.el9");
        assert_eq!(p.epoch, Some(1));
        assert_eq!(p.release.as_deref(), Some("24.el9"));
        assert_eq!(p.arch.as_deref(), Some("x86_64"));
        assert_eq!(p.source_name.as_deref(), Some("openssl"));
        // With the magic in front, the same.
        let mut magic = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
        magic.extend_from_slice(&blob);
        assert_eq!(parse_header(&magic).unwrap(), parse_header(&blob).unwrap());
    }

    #[test]
    fn source_names() {
        assert_eq!(source_name("foo-1.2-3.src.rpm"), Some("foo"));
        assert_eq!(source_name("python3.11-3.11.5-1.el9.src.rpm"), Some("python3.11"));
        assert_eq!(source_name("foo.src.rpm"), None);
        assert_eq!(source_name("foo-1.2-3.x86_64.rpm"), None);
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        let good = header(&[(TAG_NAME, TYPE_STRING, b"x"), (TAG_VERSION, TYPE_STRING, b"1")]);
        for cut in 0..good.len() {
            let _ = parse_header(&good[..cut]);
        }
        // Offsets past the data, an unterminated string, absurd counts.
        let mut bad = good.clone();
        bad[8 + 8..8 + 12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse_header(&bad).unwrap().name, None);
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header(&bad).is_err());
        let mut bad = good;
        let n = bad.len();
        bad[n - 1] = b'z';
        assert_eq!(parse_header(&bad).unwrap().version, None);
        // gpg-pubkey headers are not packages.
        let key = header(&[(TAG_NAME, TYPE_STRING, b"gpg-pubkey"), (TAG_VERSION, TYPE_STRING, b"fd431d51")]);
        assert_eq!(to_package(parse_header(&key).unwrap(), "p"), None);
    }

    #[test]
    fn not_a_database() {
        assert!(scan_sqlite(b"definitely not sqlite", "p").is_err());
        assert!(scan_sqlite(b"", "p").is_err());
    }
}
