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
    fn keys_order_by_registry_then_name() {
        let k = |a: &str, n: &str| RepositoryKey::new(AccountId::parse(a).unwrap(), RepositoryName::parse(n).unwrap());
        assert!(k("111111111111", "zz") < k("222222222222", "aa"));
        assert_eq!(k("111111111111", "team/app").to_string(), "111111111111/team/app");
    }
}
