//! Who owns what: account ids, and repositories named within an account's registry.

use std::fmt;

use crate::RepositoryName;

/// A 12-digit AWS account id. Each account owns one registry (ECR's `registryId`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

/// Why a string is not an account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an account id is 12 digits, not {0:?}")]
pub struct AccountIdError(pub String);

impl AccountId {
    /// # Errors
    /// When `s` is not exactly 12 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, AccountIdError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(AccountIdError(s.chars().take(64).collect()))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for AccountId {
    type Err = AccountIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for AccountId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An AWS region name such as `us-east-1`, `us-gov-west-1` or `eusc-de-east-1`: lower-case words
/// joined by `-`, the first of at least two letters, ending in a number of one or two digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(String);

/// Why a string is not a region name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a region name (such as us-east-1)")]
pub struct RegionError(pub String);

impl Region {
    /// The longest region name accepted (the longest AWS has is 14 characters).
    pub const MAX_LEN: usize = 32;

    /// # Errors
    /// When `s` is not a region name of the form described on [`Region`].
    pub fn parse(s: &str) -> Result<Self, RegionError> {
        let words: Vec<&str> = s.split('-').collect();
        let ok = s.len() <= Self::MAX_LEN
            && words.len() >= 3
            && words.split_last().is_some_and(|(number, names)| {
                (1..=2).contains(&number.len())
                    && number.bytes().all(|b| b.is_ascii_digit())
                    && names[0].len() >= 2
                    && names.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
            });
        if ok { Ok(Region(s.to_owned())) } else { Err(RegionError(s.chars().take(64).collect())) }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Region {
    type Err = RegionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Region {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A repository in one account's registry: two accounts may each have `team/app`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepositoryKey {
    pub registry: AccountId,
    pub name: RepositoryName,
}

impl RepositoryKey {
    #[must_use]
    pub fn new(registry: AccountId, name: RepositoryName) -> Self {
        RepositoryKey { registry, name }
    }
}

/// `<account>/<name>`, for logs only (never parsed back).
impl fmt::Display for RepositoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        for ok in ["000000000000", "123456789012"] {
            assert_eq!(AccountId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "12345678901", "1234567890123", "12345678901a", "١٢٣٤٥٦٧٨٩٠١٢", " 23456789012"] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn regions() {
        for ok in ["us-east-1", "us-gov-west-1", "us-isob-east-1", "ap-southeast-2", "eusc-de-east-1", "me-central-12"]
        {
            assert_eq!(ok.parse::<Region>().unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "us",
            "us-east",
            "us-east-",
            "useast1",
            "us-east-123",
            "US-EAST-1",
            "u-east-1",
            "us--east-1",
            "-us-east-1",
            "us-east-1 ",
            "us-east-1a",
            "us-eäst-1",
            "us-east-east-east-east-east-east-1",
        ] {
            assert!(Region::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_order_by_registry_then_name() {
        let k = |a: &str, n: &str| RepositoryKey::new(AccountId::parse(a).unwrap(), RepositoryName::parse(n).unwrap());
        assert!(k("111111111111", "zz") < k("222222222222", "aa"));
        assert_eq!(k("111111111111", "team/app").to_string(), "111111111111/team/app");
    }
}
