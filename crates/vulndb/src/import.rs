//! `import`: OSV JSON from files, directories and zip files into a new database file.
//!
//! Memory stays bounded: documents are read one at a time, each up to [`MAX_DOCUMENT_BYTES`],
//! and written as they are read. A zip file is read through its central directory, one entry at
//! a time, without an index of all entries in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::value::RawValue;

use crate::osv::{self, Record};
use crate::{APPLICATION_ID, DbError, FORMAT, ImportError, Location};

/// The largest JSON document (a file, or an entry of a zip file) an import reads: 64 MiB.
pub const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

/// The largest single record: 8 MiB. A record is validated as a `serde_json::Value`, which can
/// take some 16 times the text's size; real OSV records are far smaller.
pub const MAX_RECORD_BYTES: usize = 8 << 20;

/// What an import read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Advisories in the new database (records kept, after withdrawn ones and duplicates).
    pub advisories: u64,
    /// Package rows: one per (advisory, ecosystem, package).
    pub affected: u64,
    /// Withdrawn records read (none of them is kept, and a withdrawn record newer than another
    /// record with its id removes that one too).
    pub withdrawn_skipped: u64,
    /// Records whose id had been read before; of each id the record with the newest
    /// `modified` is kept (on a tie, the first read).
    pub duplicates_replaced: u64,
    /// Advisories per ecosystem (ecosystem strings exactly as written), sorted by ecosystem.
    pub ecosystems: Vec<(String, u64)>,
    /// The newest `modified` of all records read, RFC 3339 in UTC.
    pub source_updated_at: Option<String>,
    /// JSON documents read: files, and entries of zip files.
    pub files: u64,
}

/// Reads every source (an osv.dev `all.zip` dump, a directory searched recursively for `*.json`
/// and `*.zip`, or one `.json` file holding one record or an array of records), validates every
/// record, and writes a complete new database to `out`, a path that must not exist yet.
///
/// In a directory, symbolic links to files are followed and those to directories are not;
/// other files are ignored. A source named directly is read as a zip file when it starts like
/// one, else as JSON.
///
/// # Errors
/// Any unreadable source, invalid document or record (named by file, zip entry and record id),
/// an existing `out`, no records at all, or a database failure. Nothing is left at `out` then.
pub fn import(sources: &[PathBuf], out: &Path) -> Result<ImportReport, ImportError> {
    match OpenOptions::new().write(true).create_new(true).open(out) {
        Ok(f) => drop(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(ImportError::OutputExists(out.into())),
        Err(source) => return Err(ImportError::Io { path: out.into(), source }),
    }
    let mut partial = Partial(Some(out));
    let report = build(sources, out)?;
    partial.0 = None;
    Ok(report)
}

/// Removes the file it names when dropped (an import that failed or panicked).
struct Partial<'a>(Option<&'a Path>);

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

fn build(sources: &[PathBuf], out: &Path) -> Result<ImportReport, ImportError> {
    let mut w = Writer::create(out)?;
    for s in sources {
        source(s, &mut w)?;
    }
    if w.records == 0 {
        return Err(ImportError::NoRecords);
    }
    w.finish(out)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImportError + '_ {
    move |source| ImportError::Io { path: path.into(), source }
}

fn source(path: &Path, w: &mut Writer) -> Result<(), ImportError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if meta.is_dir() {
        return directory(path, w);
    }
    let mut magic = [0u8; 4];
    let n = File::open(path).and_then(|mut f| f.read(&mut magic)).map_err(io_err(path))?;
    if n == 4 && (magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06") { zip_file(path, w) } else { json_file(path, w) }
}

fn has_ext(name: &str, ext: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, e)| e.eq_ignore_ascii_case(ext))
}

fn directory(root: &Path, w: &mut Writer) -> Result<(), ImportError> {
    // Depth first, names sorted, so that a given tree always imports in the same order.
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let ty = e.file_type().map_err(io_err(&e.path()))?;
            entries.push((e.path(), ty));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (path, ty) in entries {
            let is_file = if ty.is_symlink() {
                // Followed to files only: a link to a directory could make a cycle.
                fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false)
            } else {
                ty.is_file()
            };
            if ty.is_dir() {
                subdirs.push(path);
            } else if is_file {
                let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
                if has_ext(&name, "json") {
                    json_file(&path, w)?;
                } else if has_ext(&name, "zip") {
                    zip_file(&path, w)?;
                }
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

/// Reads at most [`MAX_DOCUMENT_BYTES`] from `r`; more is an error.
fn read_capped(r: impl Read, location: impl FnOnce() -> Location) -> Result<Result<Vec<u8>, io::Error>, ImportError> {
    let mut buf = Vec::new();
    match r.take(MAX_DOCUMENT_BYTES + 1).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 > MAX_DOCUMENT_BYTES => {
            Err(ImportError::TooLarge { location: location(), limit: MAX_DOCUMENT_BYTES })
        }
        Ok(_) => Ok(Ok(buf)),
        Err(e) => Ok(Err(e)),
    }
}

fn json_file(path: &Path, w: &mut Writer) -> Result<(), ImportError> {
    let file = File::open(path).map_err(io_err(path))?;
    let location = || Location { file: path.into(), entry: None };
    let bytes = read_capped(file, location)?.map_err(io_err(path))?;
    w.document(&bytes, &location())
}

fn zip_file(path: &Path, w: &mut Writer) -> Result<(), ImportError> {
    let zip_err = |entry: Option<String>, e: &dyn std::fmt::Display| ImportError::Zip {
        location: Location { file: path.into(), entry },
        message: e.to_string(),
    };
    let open = || File::open(path).map(BufReader::new).map_err(io_err(path));
    // `ZipIterable` walks the central directory entry by entry; `ZipArchive` would index every
    // entry in memory first (about 210 bytes each, measured: 63 MB for 300,000 entries).
    let mut archive = zip::unstable::read::ZipIterable::try_new(open()?, zip::read::Config::default())
        .map_err(|e| zip_err(None, &e))?;
    let mut entries = archive.files_with_reader(open()?, zip::ZipReadOptions::new()).map_err(|e| zip_err(None, &e))?;
    let mut i = 0usize;
    while let Some(entry) = entries.next() {
        let at = format!("#{i}");
        i += 1;
        let entry = entry.map_err(|e| zip_err(Some(at.clone()), &e))?;
        let name = entry.name().map_err(|e| zip_err(Some(at), &e))?.into_owned();
        if entry.is_dir() || !has_ext(&name, "json") {
            continue;
        }
        let location = || Location { file: path.into(), entry: Some(name.clone()) };
        if entry.size() > MAX_DOCUMENT_BYTES {
            return Err(ImportError::TooLarge { location: location(), limit: MAX_DOCUMENT_BYTES });
        }
        let bytes = read_capped(entry, location)?.map_err(|e| zip_err(Some(name.clone()), &e))?;
        w.document(&bytes, &location())?;
    }
    Ok(())
}

/// Feeds the elements of a JSON array to [`Writer::record`] as they are parsed.
struct Records<'a> {
    writer: &'a mut Writer,
    location: &'a Location,
    /// Why the walk stopped, when a record (not the JSON) was at fault.
    failure: &'a mut Option<ImportError>,
}

impl<'de> serde::de::Visitor<'de> for Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of OSV records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if let Err(e) = self.writer.record(item.get(), Some(index), self.location) {
                *self.failure = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
            index += 1;
        }
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Vectors of strings and of plain structs of strings: serialising cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

struct Writer {
    conn: Connection,
    records: u64,
    files: u64,
    withdrawn: u64,
    duplicates: u64,
    newest: Option<jiff::Timestamp>,
    advisory_index: bool,
}

fn db(e: rusqlite::Error) -> ImportError {
    ImportError::Db(DbError(e))
}

impl Writer {
    fn create(out: &Path) -> Result<Writer, ImportError> {
        let conn =
            Connection::open_with_flags(out, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(db)?;
        // Nothing reads this file until the caller publishes it, and a failed import removes
        // it: no journal, no syncs while building (one fsync at the end).
        let mode: String = conn.query_row("PRAGMA journal_mode = OFF", [], |r| r.get(0)).map_err(db)?;
        if !mode.eq_ignore_ascii_case("off") {
            return Err(db(rusqlite::Error::InvalidQuery));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE; PRAGMA cache_size = -32768;
             PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {FORMAT};"
        ))
        .map_err(db)?;
        conn.execute_batch("BEGIN").map_err(db)?;
        conn.execute_batch(include_str!("schema.sql")).map_err(db)?;
        Ok(Writer { conn, records: 0, files: 0, withdrawn: 0, duplicates: 0, newest: None, advisory_index: false })
    }

    /// One JSON document: a record, or an array of records.
    fn document(&mut self, bytes: &[u8], location: &Location) -> Result<(), ImportError> {
        self.files += 1;
        let invalid = |record: Option<usize>, id: Option<String>, message: String| ImportError::Invalid {
            location: location.clone(),
            record,
            id,
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| invalid(None, None, format!("not UTF-8: {e}")))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let raw: &RawValue =
            serde_json::from_str(text).map_err(|e| invalid(None, None, format!("not valid JSON: {e}")))?;
        match raw.get().as_bytes().first() {
            Some(b'{') => self.record(raw.get(), None, location),
            Some(b'[') => {
                // Element by element: an array of many small records costs no list of them.
                let mut failure = None;
                let visitor = Records { writer: self, location, failure: &mut failure };
                let parsed =
                    serde::Deserializer::deserialize_seq(&mut serde_json::Deserializer::from_str(raw.get()), visitor);
                match (failure, parsed) {
                    (Some(e), _) => Err(e),
                    (None, Err(e)) => Err(invalid(None, None, format!("not valid JSON: {e}"))),
                    (None, Ok(())) => Ok(()),
                }
            }
            _ => Err(invalid(None, None, "expected an OSV record (an object) or an array of records".into())),
        }
    }

    /// One record of a document (`index` within an array).
    fn record(&mut self, text: &str, index: Option<usize>, location: &Location) -> Result<(), ImportError> {
        let invalid = |id: Option<String>, message: String| ImportError::Invalid {
            location: location.clone(),
            record: index,
            id,
            message,
        };
        if text.len() > MAX_RECORD_BYTES {
            return Err(invalid(
                None,
                format!("a record of {} bytes is larger than the limit of {MAX_RECORD_BYTES} bytes", text.len()),
            ));
        }
        let rec = osv::parse_record(text).map_err(|e| invalid(e.id, e.message))?;
        self.add(rec).map_err(db)
    }

    fn add(&mut self, rec: Record) -> rusqlite::Result<()> {
        self.records += 1;
        if self.newest.is_none_or(|n| n < rec.modified_at) {
            self.newest = Some(rec.modified_at);
        }
        if rec.withdrawn {
            self.withdrawn += 1;
        }
        let c = &self.conn;
        let existing: Option<(i64, String)> = c
            .prepare_cached("SELECT key, modified FROM advisories WHERE id = ?1")?
            .query_row([&rec.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((key, old)) = existing {
            self.duplicates += 1;
            // Written by this import from a valid timestamp.
            if osv::parse_timestamp(&old).is_some_and(|old| old >= rec.modified_at) {
                return Ok(());
            }
            if !self.advisory_index {
                // Duplicates are rare: index the column only once one needs removing.
                c.execute_batch("CREATE INDEX affected_advisory ON affected (advisory)")?;
                self.advisory_index = true;
            }
            c.prepare_cached("DELETE FROM affected WHERE advisory = ?1")?.execute([key])?;
            c.prepare_cached("DELETE FROM advisories WHERE key = ?1")?.execute([key])?;
        }
        c.prepare_cached(
            "INSERT INTO advisories (id, modified, published, summary, details, aliases, upstream, severity, refs, withdrawn)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            rec.id,
            rec.modified,
            rec.published,
            rec.summary,
            rec.details,
            to_json(&rec.aliases),
            to_json(&rec.upstream),
            to_json(&rec.severity),
            to_json(&rec.references),
            rec.withdrawn,
        ])?;
        if rec.withdrawn {
            return Ok(());
        }
        let key = c.last_insert_rowid();
        let mut insert = c.prepare_cached(
            "INSERT INTO affected (ecosystem, name, advisory, package, ranges, versions, vendor_severity)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for p in &rec.packages {
            insert.execute(params![
                p.ecosystem,
                p.key,
                key,
                p.name,
                to_json(&p.ranges),
                to_json(&p.versions),
                p.vendor_severity
            ])?;
        }
        Ok(())
    }

    fn finish(self, out: &Path) -> Result<ImportReport, ImportError> {
        let c = &self.conn;
        let source_updated_at = self.newest.map(|t| t.to_string());
        let imported_at = jiff::Timestamp::now().to_string();
        let step = || -> rusqlite::Result<crate::db::Counts> {
            c.execute_batch(
                "DELETE FROM advisories WHERE withdrawn = 1;
                 INSERT INTO ecosystems (ecosystem, advisories)
                     SELECT ecosystem, COUNT(DISTINCT advisory) FROM affected GROUP BY ecosystem;",
            )?;
            let mut meta = c.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?;
            meta.execute(params!["format", FORMAT.to_string()])?;
            meta.execute(params!["imported_at", imported_at])?;
            if let Some(s) = &source_updated_at {
                meta.execute(params!["source_updated_at", s])?;
            }
            let counts = crate::db::counts(c)?;
            c.execute_batch("COMMIT")?;
            Ok(counts)
        };
        let crate::db::Counts { advisories, affected, ecosystems } = step().map_err(db)?;
        // The data is on disk before the marker that says so is written.
        let sync = || File::open(out).and_then(|f| f.sync_all()).map_err(io_err(out));
        sync()?;
        c.execute("INSERT INTO meta (key, value) VALUES ('complete', 'true')", []).map_err(db)?;
        self.conn.close().map_err(|(_, e)| db(e))?;
        sync()?;
        Ok(ImportReport {
            advisories,
            affected,
            withdrawn_skipped: self.withdrawn,
            duplicates_replaced: self.duplicates,
            ecosystems,
            source_updated_at,
            files: self.files,
        })
    }
}
