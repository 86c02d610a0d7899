//! What the metadata store answers when a command cannot be done.
//!
//! A miss or a clash names the thing it is about, so the core maps a `meta::Error` to its own
//! domain error in one place (`Missing::Repository` is `RepositoryNotFound`, `Missing::Upload`
//! is `UploadNotFound`, ...) instead of catching `NotFound` call by call.

use berth_types::{Digest, RepositoryKey, UploadId};

use crate::BoxError;

/// What a command needed and did not find. A point read (`get_repository`, `get_image`,
/// `resolve`, ...) answers a miss with `None` instead: there the absence is the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The repository does not exist (and the command may not create it).
    Repository(RepositoryKey),
    /// No upload session has this id.
    Upload(UploadId),
    /// The repository holds no image of this digest.
    Image(RepositoryKey, Digest),
    /// The repository has no lifecycle-policy preview.
    Preview(RepositoryKey),
    /// No account has this id.
    Account(String),
    /// The account has no user of this name.
    User { account: String, name: String },
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Repository(k) => write!(f, "repository {k}"),
            Missing::Upload(id) => write!(f, "upload {id}"),
            Missing::Image(k, d) => write!(f, "image {d} in {k}"),
            Missing::Preview(k) => write!(f, "lifecycle preview of {k}"),
            Missing::Account(a) => write!(f, "account {a}"),
            Missing::User { account, name } => write!(f, "user {name} of account {account}"),
        }
    }
}

/// What a command clashed with. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// A repository with this key exists already.
    RepositoryExists(RepositoryKey),
    /// Another append moved the upload session first.
    UploadMoved(UploadId),
    /// The store holds as many sessions without bytes as it will.
    TooManyUploads,
    /// An account with this id exists already.
    AccountExists(String),
    /// The account has a user of this name already.
    UserExists { account: String, name: String },
    /// An access key with this id exists already.
    AccessKeyExists(String),
    /// A uniqueness rule of the backend, not otherwise named.
    Other(String),
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::RepositoryExists(k) => write!(f, "repository {k} exists"),
            Conflict::UploadMoved(id) => write!(f, "upload {id} moved concurrently"),
            Conflict::TooManyUploads => f.write_str("too many upload sessions in progress"),
            Conflict::AccountExists(a) => write!(f, "account {a} exists"),
            Conflict::UserExists { account, name } => write!(f, "user {name} of account {account} exists"),
            Conflict::AccessKeyExists(id) => write!(f, "access key {id} exists"),
            Conflict::Other(why) => f.write_str(why),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(Missing),
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The database has no room left; the write was not made.
    #[error("metadata storage is full: {0}")]
    StorageFull(String),
    /// The database cannot be reached or did not answer in time; nothing is known to have been
    /// written (a write either committed whole or not at all), and the request may be retried.
    #[error("metadata database is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    #[error("metadata backend failed: {0}")]
    Backend(#[source] BoxError),
}

impl Error {
    /// `NotFound(Missing::Repository(key))`.
    #[must_use]
    pub fn no_repository(key: &RepositoryKey) -> Self {
        Error::NotFound(Missing::Repository(key.clone()))
    }

    /// What was missing, if this is a miss.
    #[must_use]
    pub fn missing(&self) -> Option<&Missing> {
        match self {
            Error::NotFound(m) => Some(m),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_stay_small() {
        // One `Result` is returned by every call: keep the error within clippy's
        // `result_large_err` bound (128 bytes) without boxing what a caller matches on.
        assert!(std::mem::size_of::<Error>() <= 128, "{}", std::mem::size_of::<Error>());
    }

    #[test]
    fn messages_name_what_was_missing() {
        let key = RepositoryKey::new(
            berth_types::AccountId::parse("111122223333").unwrap(),
            berth_types::RepositoryName::parse("team/app").unwrap(),
        );
        assert_eq!(Error::no_repository(&key).to_string(), "not found: repository 111122223333/team/app");
        assert_eq!(
            Error::Conflict(Conflict::RepositoryExists(key)).to_string(),
            "conflict: repository 111122223333/team/app exists"
        );
    }
}
