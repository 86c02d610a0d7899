//! `VulnDb`: a published database, read-only, shared by the scanner's threads.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use berth_scanner::advisory::BoxError;
use berth_scanner::{Advisory, AdvisorySource, Affected, Event, Range, RangeKind, SeverityScore};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::osv::{StoredEvent, StoredRange, StoredSeverity, lookup_name};
use crate::{APPLICATION_ID, Error, FORMAT, OpenError};

/// What a database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub advisories: u64,
    /// Package rows: one per (advisory, ecosystem, package).
    pub affected: u64,
    /// Advisories per ecosystem, sorted by ecosystem.
    pub ecosystems: Vec<(String, u64)>,
    /// The newest `modified` of the imported records (RFC 3339, UTC).
    pub source_updated_at: Option<String>,
    /// When the import finished writing (RFC 3339, UTC).
    pub imported_at: String,
    pub format: u32,
}

/// A published vulnerability database, opened read-only.
///
/// It keeps a fixed set of connections, all opened by [`VulnDb::open`], so that every lookup
/// reads the same file even if another one is published at the same path later; a lookup
/// takes one (waiting while all are busy). Share it behind an `Arc`.
pub struct VulnDb {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl std::fmt::Debug for VulnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VulnDb").field("path", &self.path).finish_non_exhaustive()
    }
}

const LOOKUP: &str = "SELECT a.id, a.modified, a.published, a.summary, a.details, a.aliases, a.upstream, a.severity,
        a.refs, f.ecosystem, f.package, f.ranges, f.versions, f.vendor_severity
    FROM affected f JOIN advisories a ON a.key = f.advisory
    WHERE f.ecosystem = ?1 AND f.name = ?2
    ORDER BY a.id";

fn count(c: &Connection, sql: &str) -> rusqlite::Result<u64> {
    let n: i64 = c.query_row(sql, [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Advisories, package rows, and advisories per ecosystem.
pub(crate) struct Counts {
    pub advisories: u64,
    pub affected: u64,
    pub ecosystems: Vec<(String, u64)>,
}

pub(crate) fn counts(c: &Connection) -> rusqlite::Result<Counts> {
    let ecosystems = c
        .prepare_cached("SELECT ecosystem, advisories FROM ecosystems ORDER BY ecosystem")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0))))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Counts {
        advisories: count(c, "SELECT COUNT(*) FROM advisories")?,
        affected: count(c, "SELECT COUNT(*) FROM affected")?,
        ecosystems,
    })
}

/// Checks one connection and returns the database's `imported_at`.
fn check(conn: &Connection, path: &Path) -> Result<String, OpenError> {
    let not_ours = |reason: String| OpenError::NotVulnDb { path: path.into(), reason };
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(|e| not_ours(e.to_string()))?;
    if app != APPLICATION_ID {
        return Err(not_ours(format!("application id {app:#x}")));
    }
    let mut meta =
        conn.prepare("SELECT value FROM meta WHERE key = ?1").map_err(|e| not_ours(format!("no meta table: {e}")))?;
    let mut get = |key: &str| -> Result<Option<String>, OpenError> {
        meta.query_row([key], |r| r.get(0)).optional().map_err(|e| not_ours(e.to_string()))
    };
    let format = get("format")?;
    if format.as_deref() != Some(FORMAT.to_string().as_str()) {
        if format.is_none() && get("complete")?.is_none() {
            return Err(OpenError::Incomplete { path: path.into() });
        }
        return Err(OpenError::Format {
            path: path.into(),
            found: format.unwrap_or_else(|| "(none)".into()),
            expected: FORMAT,
        });
    }
    if get("complete")?.as_deref() != Some("true") {
        return Err(OpenError::Incomplete { path: path.into() });
    }
    get("imported_at")?.ok_or_else(|| not_ours("no imported_at".into()))
}

/// `file:` URI of `path` with `immutable=1`: a published database never changes (the next
/// import writes another file), so SQLite may skip file locks and change checks on every
/// query. Relative paths stay relative.
fn immutable_uri(path: &Path) -> String {
    use std::fmt::Write;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri.push_str("?immutable=1");
    uri
}

fn connect(path: &Path) -> Result<Connection, OpenError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let not_ours = |e: rusqlite::Error| OpenError::NotVulnDb { path: path.into(), reason: e.to_string() };
    let conn = Connection::open_with_flags(immutable_uri(path), flags).map_err(not_ours)?;
    // Pages are read through a shared mapping rather than copied into each connection's cache.
    conn.pragma_update(None, "mmap_size", 1_i64 << 30).map_err(not_ours)?;
    Ok(conn)
}

/// Returns its connection to the pool when dropped, also on unwinding.
struct Lease<'a> {
    db: &'a VulnDb,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.db.lock().push(c);
            self.db.returned.notify_one();
        }
    }
}

impl VulnDb {
    /// Opens a published database read-only. The number of connections follows the machine's
    /// parallelism (2 to 8).
    ///
    /// # Errors
    /// The file is missing or unreadable, is not a Berth vulnerability database, has another
    /// format, was not completed by its import, or was replaced while being opened.
    pub fn open(path: &Path) -> Result<VulnDb, OpenError> {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        VulnDb::open_with(path, n)
    }

    /// [`VulnDb::open`] with `connections` connections (at least one).
    ///
    /// # Errors
    /// As [`VulnDb::open`].
    pub fn open_with(path: &Path, connections: usize) -> Result<VulnDb, OpenError> {
        // SQLite would report a missing file as "unable to open": say what it is.
        std::fs::metadata(path).map_err(|source| OpenError::Io { path: path.into(), source })?;
        let first = connect(path)?;
        let imported_at = check(&first, path)?;
        let mut conns = vec![first];
        for _ in 1..connections.max(1) {
            let c = connect(path)?;
            if check(&c, path)? != imported_at {
                return Err(OpenError::Changed { path: path.into() });
            }
            conns.push(c);
        }
        Ok(VulnDb { path: path.into(), idle: Mutex::new(conns), returned: Condvar::new() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lease(&self) -> Lease<'_> {
        let mut idle = self.lock();
        loop {
            if let Some(conn) = idle.pop() {
                return Lease { db: self, conn: Some(conn) };
            }
            idle = self.returned.wait(idle).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        let lease = self.lease();
        match &lease.conn {
            Some(c) => f(c),
            None => Err(Error::Corrupt("no connection".into())),
        }
    }

    /// What the database holds.
    ///
    /// # Errors
    /// The database could not be read.
    pub fn status(&self) -> Result<Status, Error> {
        self.with_conn(|c| {
            let Counts { advisories, affected, ecosystems } = counts(c)?;
            let mut meta = c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?;
            let mut get =
                |key: &str| -> rusqlite::Result<Option<String>> { meta.query_row([key], |r| r.get(0)).optional() };
            let source_updated_at = get("source_updated_at")?;
            let imported_at = get("imported_at")?.unwrap_or_default();
            let format = get("format")?.and_then(|f| f.parse().ok()).unwrap_or_default();
            Ok(Status { advisories, affected, ecosystems, source_updated_at, imported_at, format })
        })
    }

    /// Every advisory naming `package` in `ecosystem` (exact; PyPI names PEP 503 normalised on
    /// both sides), ordered by id.
    ///
    /// # Errors
    /// The database could not be read, or holds a malformed value.
    pub fn lookup(&self, ecosystem: &str, package: &str) -> Result<Vec<Advisory>, Error> {
        let key = lookup_name(ecosystem, package);
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(LOOKUP)?;
            let mut rows = stmt.query(params![ecosystem, key])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(advisory(r)?);
            }
            Ok(out)
        })
    }

    /// The (ecosystem, lookup name) pairs whose advisories differ between `previous` and this
    /// database: named by an advisory in only one of them, or by one whose `modified`, ranges,
    /// versions or vendor severity differ. After an import these are the packages to match
    /// again. Sorted; both databases are read in key order, one package at a time.
    ///
    /// # Errors
    /// Either database could not be read.
    pub fn changed_packages(&self, previous: &VulnDb) -> Result<Vec<(String, String)>, Error> {
        if std::ptr::eq(self, previous) {
            return Ok(Vec::new());
        }
        let (new, old) = (self.lease(), previous.lease());
        let (Some(new), Some(old)) = (&new.conn, &old.conn) else {
            return Err(Error::Corrupt("no connection".into()));
        };
        let (mut new_stmt, mut old_stmt) = (new.prepare(DIFF)?, old.prepare(DIFF)?);
        let mut new = Groups { rows: new_stmt.query([])?, pending: None };
        let mut old = Groups { rows: old_stmt.query([])?, pending: None };
        let (mut a, mut b) = (new.next_group()?, old.next_group()?);
        let mut changed = Vec::new();
        loop {
            let order = match (&a, &b) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => x.0.cmp(&y.0),
            };
            match order {
                std::cmp::Ordering::Less => {
                    changed.extend(a.map(|g| g.0));
                    a = new.next_group()?;
                }
                std::cmp::Ordering::Greater => {
                    changed.extend(b.map(|g| g.0));
                    b = old.next_group()?;
                }
                std::cmp::Ordering::Equal => {
                    if let (Some(x), Some(y)) = (a, b)
                        && x.1 != y.1
                    {
                        changed.push(x.0);
                    }
                    a = new.next_group()?;
                    b = old.next_group()?;
                }
            }
        }
        Ok(changed)
    }

    /// Whether any advisory names a package of `ecosystem` (exact string).
    ///
    /// # Errors
    /// The database could not be read.
    pub fn has_ecosystem(&self, ecosystem: &str) -> Result<bool, Error> {
        self.with_conn(|c| {
            Ok(c.prepare_cached("SELECT 1 FROM ecosystems WHERE ecosystem = ?1")?
                .query_row([ecosystem], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }
}

const DIFF: &str = "SELECT f.ecosystem, f.name, a.id, a.modified, f.ranges, f.versions, f.vendor_severity
    FROM affected f JOIN advisories a ON a.key = f.advisory
    ORDER BY f.ecosystem, f.name";

/// What decides whether a package's advisories changed: `modified` covers every other field.
type DiffRow = (String, String, String, String, Option<String>);
type Group = ((String, String), Vec<DiffRow>);

/// The rows of [`DIFF`] gathered per (ecosystem, name), each group sorted by advisory id.
struct Groups<'s> {
    rows: rusqlite::Rows<'s>,
    pending: Option<((String, String), DiffRow)>,
}

impl Groups<'_> {
    fn read(&mut self) -> rusqlite::Result<Option<((String, String), DiffRow)>> {
        Ok(match self.rows.next()? {
            None => None,
            Some(r) => Some(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))),
        })
    }

    fn next_group(&mut self) -> rusqlite::Result<Option<Group>> {
        let Some((key, first)) = self.pending.take().map_or_else(|| self.read(), |p| Ok(Some(p)))? else {
            return Ok(None);
        };
        let mut rows = vec![first];
        while let Some((k, row)) = self.read()? {
            if k != key {
                self.pending = Some((k, row));
                break;
            }
            rows.push(row);
        }
        rows.sort();
        Ok(Some((key, rows)))
    }
}

fn decode<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

fn advisory(r: &rusqlite::Row<'_>) -> Result<Advisory, Error> {
    let id: String = r.get(0)?;
    let text = |i: usize| -> Result<String, Error> { Ok(r.get::<_, String>(i)?) };
    let severity: Vec<StoredSeverity> = decode(&text(7)?, "severity")?;
    let ranges: Vec<StoredRange> = decode(&text(11)?, "ranges")?;
    let ranges = ranges
        .into_iter()
        .map(|s| {
            let kind = match s.kind.as_str() {
                "ECOSYSTEM" => RangeKind::Ecosystem,
                "SEMVER" => RangeKind::Semver,
                "GIT" => RangeKind::Git,
                other => return Err(Error::Corrupt(format!("range type {other:?} in {id}"))),
            };
            let events = s
                .events
                .into_iter()
                .map(|e| match e {
                    StoredEvent::Introduced(v) => Event::Introduced(v),
                    StoredEvent::Fixed(v) => Event::Fixed(v),
                    StoredEvent::LastAffected(v) => Event::LastAffected(v),
                    StoredEvent::Limit(v) => Event::Limit(v),
                })
                .collect();
            Ok(Range { kind, events })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Advisory {
        modified: r.get(1)?,
        published: r.get(2)?,
        summary: r.get(3)?,
        details: r.get(4)?,
        aliases: decode(&text(5)?, "aliases")?,
        upstream: decode(&text(6)?, "upstream")?,
        severity: severity.into_iter().map(|s| SeverityScore { kind: s.kind, score: s.score }).collect(),
        references: decode(&text(8)?, "references")?,
        ecosystem: r.get(9)?,
        package: r.get(10)?,
        affected: Affected { ranges, versions: decode(&text(12)?, "versions")? },
        vendor_severity: r.get(13)?,
        id,
    })
}

impl AdvisorySource for VulnDb {
    fn advisories(&self, ecosystem: &str, package: &str) -> Result<Vec<Advisory>, BoxError> {
        Ok(self.lookup(ecosystem, package)?)
    }

    fn has_ecosystem(&self, ecosystem: &str) -> Result<bool, BoxError> {
        Ok(VulnDb::has_ecosystem(self, ecosystem)?)
    }
}
