use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;
use sha2::digest::common::hazmat::{SerializableState, SerializedState};

/// Digest algorithms the registry accepts (OCI image-spec "registered algorithms").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest must have the form <algorithm>:<encoded>")]
    Malformed,
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("digest encoding must be {0} lowercase hex characters")]
    BadEncoding(usize),
}

/// A content digest such as `sha256:<64 hex>`. Always lowercase and well-formed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// # Errors
    /// When `s` is not `sha256:<64 hex>` or `sha512:<128 hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let (alg, enc) = s.split_once(':').ok_or(DigestError::Malformed)?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => {
                // The grammar allows other algorithms; we refuse them clearly.
                let well_formed = !other.is_empty()
                    && other.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
                return Err(if well_formed {
                    DigestError::UnsupportedAlgorithm(other.to_owned())
                } else {
                    DigestError::Malformed
                });
            }
        };
        let n = algorithm.hex_len();
        if enc.len() != n || !enc.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(DigestError::BadEncoding(n));
        }
        Ok(Digest(s.to_owned()))
    }

    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        if self.0.starts_with("sha512:") { Algorithm::Sha512 } else { Algorithm::Sha256 }
    }

    /// The encoded (hex) part after the colon.
    #[must_use]
    pub fn hex(&self) -> &str {
        &self.0[self.0.find(':').map_or(0, |i| i + 1)..]
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digest of a byte slice with the given algorithm.
    #[must_use]
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}
impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

/// A running hash whose state can be saved with an upload session and resumed after a restart.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    #[must_use]
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }
    #[must_use]
    pub fn finish(self) -> Digest {
        let (alg, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest(format!("{}:{hex}", alg.as_str()))
    }
    /// Serialized state: one algorithm byte, then the hash's own state.
    #[must_use]
    pub fn save(&self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => [&[1u8][..], h.serialize().as_slice()].concat(),
            Hasher::Sha512(h) => [&[2u8][..], h.serialize().as_slice()].concat(),
        }
    }
    /// Restores a state made by [`Hasher::save`] at the start of `saved`, returning it and the
    /// bytes after it; `None` if it is damaged.
    #[must_use]
    pub fn restore_prefix(saved: &[u8]) -> Option<(Self, &[u8])> {
        let len = match saved.first()? {
            1 => 1 + SerializedState::<sha2::Sha256>::default().len(),
            2 => 1 + SerializedState::<sha2::Sha512>::default().len(),
            _ => return None,
        };
        let (state, rest) = saved.split_at_checked(len)?;
        Some((Self::restore(state)?, rest))
    }
    /// Restores a state made by [`Hasher::save`]; `None` if it is damaged.
    #[must_use]
    pub fn restore(saved: &[u8]) -> Option<Self> {
        let (tag, rest) = saved.split_first()?;
        match tag {
            1 => {
                let st = SerializedState::<sha2::Sha256>::try_from(rest).ok()?;
                sha2::Sha256::deserialize(&st).ok().map(Hasher::Sha256)
            }
            2 => {
                let st = SerializedState::<sha2::Sha512>::try_from(rest).ok()?;
                sha2::Sha512::deserialize(&st).ok().map(Hasher::Sha512)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_rejects() {
        assert_eq!(Digest::parse(EMPTY).unwrap().hex().len(), 64);
        assert_eq!(Digest::parse("sha256:abc"), Err(DigestError::BadEncoding(64)));
        assert_eq!(Digest::parse(&EMPTY.to_uppercase()), Err(DigestError::Malformed));
        assert_eq!(Digest::parse("nocolon"), Err(DigestError::Malformed));
        assert_eq!(Digest::parse("md5:abcd"), Err(DigestError::UnsupportedAlgorithm("md5".into())));
        assert_eq!(Digest::parse(&EMPTY.replace('e', "E")), Err(DigestError::BadEncoding(64)));
        let s512 = Digest::of(Algorithm::Sha512, b"x");
        assert_eq!(Digest::parse(s512.as_str()).unwrap().algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn empty_digest_and_resume() {
        assert_eq!(Digest::of(Algorithm::Sha256, b"").as_str(), EMPTY);
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
            let mut h = Hasher::new(alg);
            h.update(&data[..3333]);
            let saved = h.save();
            let mut resumed = Hasher::restore(&saved).unwrap();
            resumed.update(&data[3333..]);
            assert_eq!(resumed.finish(), Digest::of(alg, &data));
        }
        assert!(Hasher::restore(&[1, 2, 3]).is_none());
        assert!(Hasher::restore(&[]).is_none());
    }
}
