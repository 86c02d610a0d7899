use std::fmt;

use crate::digest::{Digest, DigestError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name must be 2 to 256 characters long")]
    NameLength,
    #[error(
        "repository name must be lowercase path components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/'"
    )]
    NameGrammar,
    #[error("tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    TagGrammar,
    #[error("invalid digest: {0}")]
    Digest(#[from] DigestError),
    #[error("upload id is not a valid upload id")]
    UploadId,
}

/// A repository name: the OCI distribution-spec grammar, within ECR's 2..=256 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    /// # Errors
    /// When `s` breaks the grammar or the length limits.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.len() < 2 || s.len() > 256 {
            return Err(NameError::NameLength);
        }
        if s.split('/').all(valid_component) { Ok(RepositoryName(s.to_owned())) } else { Err(NameError::NameGrammar) }
    }
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Repo({})", self.0)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// # Errors
    /// When `s` breaks the tag grammar.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..].iter().all(|&x| x.is_ascii_alphanumeric() || b"._-".contains(&x));
        if ok { Ok(Tag(s.to_owned())) } else { Err(NameError::TagGrammar) }
    }
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

/// What a manifest URL names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    /// A reference containing ':' is a digest, anything else a tag.
    ///
    /// # Errors
    /// When it is neither a valid digest nor a valid tag.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.contains(':') { Ok(Reference::Digest(Digest::parse(s)?)) } else { Ok(Reference::Tag(Tag::parse(s)?)) }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// An upload session id: a UUID, so it can never carry a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    #[must_use]
    pub fn generate() -> Self {
        UploadId(uuid::Uuid::now_v7().hyphenated().to_string())
    }
    /// # Errors
    /// When `s` is not a UUID.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let u = uuid::Uuid::try_parse(s).map_err(|_| NameError::UploadId)?;
        Ok(UploadId(u.hyphenated().to_string()))
    }
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["ab", "team/app/api", "a.b_c__d---e/f0", "0x/1y", &"a".repeat(256)] {
            assert!(RepositoryName::parse(ok).is_ok(), "{ok}");
        }
        for (bad, err) in [
            ("a", NameError::NameLength),
            (&"a".repeat(257) as &str, NameError::NameLength),
            ("Upper", NameError::NameGrammar),
            ("a//b", NameError::NameGrammar),
            ("ab/", NameError::NameGrammar),
            ("/ab", NameError::NameGrammar),
            ("a___b", NameError::NameGrammar),
            ("a..b", NameError::NameGrammar),
            ("a.-b", NameError::NameGrammar),
            ("-ab", NameError::NameGrammar),
            ("ab-", NameError::NameGrammar),
            ("a b", NameError::NameGrammar),
            ("../etc", NameError::NameGrammar),
        ] {
            assert_eq!(RepositoryName::parse(bad), Err(err), "{bad}");
        }
    }

    #[test]
    fn tags_and_references() {
        for ok in ["latest", "_x", "v1.2.3-rc_1", &"a".repeat(128)] {
            assert!(Tag::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(Reference::parse("v1"), Ok(Reference::Tag(_))));
        assert!(matches!(Reference::parse("sha256:zz"), Err(NameError::Digest(_))));
    }

    #[test]
    fn upload_ids() {
        let id = UploadId::generate();
        assert_eq!(UploadId::parse(id.as_str()).unwrap(), id);
        assert!(UploadId::parse("../../etc/passwd").is_err());
    }
}
