//! Berth's vulnerability database: OSV records imported into a SQLite file, read by the
//! scanner's matcher through [`berth_scanner::AdvisorySource`].
//!
//! Berth ships no vulnerability data (see `shared/notes/scanning.md` §1): the operator imports
//! OSV JSON (osv.dev's `<ECOSYSTEM>/all.zip`, a directory of `*.json`, or one file). [`import`]
//! writes a complete new database to a path that does not exist yet; the caller publishes it
//! (atomically) and opens it with [`VulnDb::open`]. A database is never changed after import:
//! the next import writes the next file.

mod db;
mod import;
mod osv;

pub use db::{Status, VulnDb};
pub use import::{ImportReport, MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES, import};
pub use osv::lookup_name;

use std::fmt;
use std::path::PathBuf;

/// The database layout this crate writes and reads (`meta.format`, also `PRAGMA user_version`).
pub const FORMAT: u32 = 1;

/// `PRAGMA application_id` of a Berth vulnerability database ("BVDB").
const APPLICATION_ID: i32 = 0x4256_4442;

/// A SQLite failure, kept opaque so that `rusqlite` stays out of the public signatures.
#[derive(Debug)]
pub struct DbError(rusqlite::Error);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError(e)
    }
}

/// Where a document came from: a file, or an entry of a zip file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub entry: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry {
            None => write!(f, "{}", self.file.display()),
            Some(e) => write!(f, "{} (entry {e})", self.file.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0} already exists")]
    OutputExists(PathBuf),
    #[error("no OSV JSON found in the sources")]
    NoRecords,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: not a readable zip file: {message}")]
    Zip { location: Location, message: String },
    #[error("{location}: larger than the limit of {limit} bytes")]
    TooLarge { location: Location, limit: u64 },
    /// A document or record that is not valid OSV. `record` is the index of the record in a
    /// document holding an array, `id` the record's id when it could be read.
    #[error("{location}{}{}: {message}",
        record.map(|i| format!(", record {i}")).unwrap_or_default(),
        id.as_ref().map(|i| format!(", id {i}")).unwrap_or_default())]
    Invalid { location: Location, record: Option<usize>, id: Option<String>, message: String },
    #[error("writing the database: {0}")]
    Db(#[from] DbError),
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a Berth vulnerability database ({reason})")]
    NotVulnDb { path: PathBuf, reason: String },
    #[error("{path}: database format {found}, this build reads format {expected}")]
    Format { path: PathBuf, found: String, expected: u32 },
    #[error("{path}: the import that wrote this database did not finish")]
    Incomplete { path: PathBuf },
    #[error("{path}: the file was replaced while it was being opened")]
    Changed { path: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the vulnerability database: {0}")]
    Db(#[from] DbError),
    #[error("the vulnerability database holds a malformed value: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Db(DbError(e))
    }
}

/// Validates one OSV record as the import does, without storing it: for fuzzing.
///
/// # Errors
/// What the import would report about the record.
#[doc(hidden)]
pub fn check_record(text: &str) -> Result<(), String> {
    osv::parse_record(text).map(drop).map_err(|e| format!("{e:?}"))
}
