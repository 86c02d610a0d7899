//! Amazon Resource Names: `arn:<partition>:<service>:<region>:<account>:<resource>`.
//!
//! [`Arn`] is the one place Berth parses and formats them: ECR repositories
//! (`arn:aws:ecr:<region>:<account>:repository/<name>`) and IAM users and account roots
//! (`arn:aws:iam::<account>:user/<name>`, `arn:aws:iam::<account>:root`).

use std::fmt;

use crate::{AccountId, Region, RepositoryKey, RepositoryName};

/// The partition Berth names its own resources in.
pub const PARTITION: &str = "aws";

/// A parsed ARN. The region and account may be empty (IAM ARNs have no region); the resource
/// may itself contain `:` and `/`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Arn {
    text: String,
    /// Byte offsets of the five colons that separate the six components.
    colons: [usize; 5],
}

/// Why a string is not an ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an ARN: {why}")]
pub struct ArnError {
    pub text: String,
    pub why: &'static str,
}

impl Arn {
    /// The longest ARN accepted (IAM's limit on ARNs in policies).
    pub const MAX_LEN: usize = 2048;

    /// Parses `arn:partition:service:region:account:resource`.
    ///
    /// # Errors
    /// When the text does not start with `arn:`, has fewer than six components, names no
    /// partition, service or resource, contains control characters or is longer than
    /// [`Arn::MAX_LEN`].
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        let err = |why| Err(ArnError { text: s.chars().take(128).collect(), why });
        if s.len() > Self::MAX_LEN {
            return err("longer than 2048 bytes");
        }
        if s.chars().any(char::is_control) {
            return err("contains control characters");
        }
        if !s.starts_with("arn:") {
            return err("does not start with \"arn:\"");
        }
        let mut colons = [0usize; 5];
        let mut found = s.match_indices(':').map(|(i, _)| i);
        for slot in &mut colons {
            match found.next() {
                Some(i) => *slot = i,
                None => return err("needs six components arn:partition:service:region:account:resource"),
            }
        }
        let arn = Arn { text: s.to_owned(), colons };
        let token =
            |c: &str| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !token(arn.partition()) {
            return err("the partition must be lower-case letters, digits and '-'");
        }
        if !token(arn.service()) {
            return err("the service must be lower-case letters, digits and '-'");
        }
        if arn.resource().is_empty() {
            return err("the resource is empty");
        }
        Ok(arn)
    }

    fn from_parts(service: &str, region: &str, account: &str, resource: &str) -> Self {
        let text = format!("arn:{PARTITION}:{service}:{region}:{account}:{resource}");
        let mut colons = [0usize; 5];
        for (slot, (i, _)) in colons.iter_mut().zip(text.match_indices(':')) {
            *slot = i;
        }
        Arn { text, colons }
    }

    /// `arn:aws:ecr:<region>:<account>:repository/<name>`.
    #[must_use]
    pub fn ecr_repository(region: &Region, account: &AccountId, name: &RepositoryName) -> Self {
        Self::from_parts("ecr", region.as_str(), account.as_str(), &format!("repository/{name}"))
    }

    /// `arn:aws:iam::<account>:user/<name>`. The name is not checked here.
    #[must_use]
    pub fn iam_user(account: &AccountId, name: &str) -> Self {
        Self::from_parts("iam", "", account.as_str(), &format!("user/{name}"))
    }

    /// `arn:aws:iam::<account>:root`, the account itself as a principal.
    #[must_use]
    pub fn iam_root(account: &AccountId) -> Self {
        Self::from_parts("iam", "", account.as_str(), "root")
    }

    /// The whole ARN.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn component(&self, n: usize) -> &str {
        let start = self.colons[n - 1] + 1;
        let end = self.colons.get(n).copied().unwrap_or(self.text.len());
        &self.text[start..end]
    }

    /// `aws`, `aws-cn`, …
    #[must_use]
    pub fn partition(&self) -> &str {
        self.component(1)
    }

    /// `ecr`, `iam`, …
    #[must_use]
    pub fn service(&self) -> &str {
        self.component(2)
    }

    /// The region component, possibly empty.
    #[must_use]
    pub fn region(&self) -> &str {
        self.component(3)
    }

    /// The account component, possibly empty (and not necessarily an account id: AWS managed
    /// policies have `aws` there).
    #[must_use]
    pub fn account(&self) -> &str {
        self.component(4)
    }

    /// The account component, when it is a 12-digit account id.
    #[must_use]
    pub fn account_id(&self) -> Option<AccountId> {
        AccountId::parse(self.account()).ok()
    }

    /// Everything after the fifth colon: `repository/team/app`, `user/alice`, `root`.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.text[self.colons[4] + 1..]
    }

    /// The repository an ECR repository ARN names: service `ecr`, a 12-digit account and a
    /// `repository/<name>` resource with a valid name. The region is not checked; compare
    /// [`Arn::region`] with the server's.
    #[must_use]
    pub fn ecr_repository_key(&self) -> Option<RepositoryKey> {
        if self.service() != "ecr" {
            return None;
        }
        let name = RepositoryName::parse(self.resource().strip_prefix("repository/")?).ok()?;
        Some(RepositoryKey::new(self.account_id()?, name))
    }

    /// Whether this is an IAM account-root ARN (`arn:<partition>:iam::<account>:root`) of a
    /// 12-digit account, and which.
    #[must_use]
    pub fn iam_root_account(&self) -> Option<AccountId> {
        (self.service() == "iam" && self.resource() == "root").then(|| self.account_id()).flatten()
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Arn({:?})", self.text)
    }
}

impl std::str::FromStr for Arn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Arn {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }

    #[test]
    fn formats_berths_arns() {
        let region = Region::parse("eu-west-1").unwrap();
        let name = RepositoryName::parse("team/app").unwrap();
        let repo = Arn::ecr_repository(&region, &acct("111122223333"), &name);
        assert_eq!(repo.as_str(), "arn:aws:ecr:eu-west-1:111122223333:repository/team/app");
        assert_eq!(repo.ecr_repository_key(), Some(RepositoryKey::new(acct("111122223333"), name)));
        assert_eq!(repo.region(), "eu-west-1");

        let user = Arn::iam_user(&acct("111122223333"), "alice");
        assert_eq!(user.to_string(), "arn:aws:iam::111122223333:user/alice");
        assert_eq!((user.service(), user.region(), user.resource()), ("iam", "", "user/alice"));
        assert_eq!(user.iam_root_account(), None);

        let root = Arn::iam_root(&acct("111122223333"));
        assert_eq!(root.as_str(), "arn:aws:iam::111122223333:root");
        assert_eq!(root.iam_root_account(), Some(acct("111122223333")));
        for arn in [repo, user, root] {
            assert_eq!(Arn::parse(arn.as_str()).unwrap(), arn, "round trip");
        }
    }

    #[test]
    fn parses_components() {
        let a = Arn::parse("arn:aws-cn:ecr:cn-north-1:123456789012:repository/a:b/c").unwrap();
        assert_eq!(
            (a.partition(), a.service(), a.region(), a.account(), a.resource()),
            ("aws-cn", "ecr", "cn-north-1", "123456789012", "repository/a:b/c")
        );
        let managed = Arn::parse("arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly").unwrap();
        assert_eq!((managed.account(), managed.account_id()), ("aws", None));
        let s3 = Arn::parse("arn:aws:s3:::bucket/key with space").unwrap();
        assert_eq!((s3.region(), s3.account(), s3.resource()), ("", "", "bucket/key with space"));
    }

    #[test]
    fn refuses_non_arns() {
        for bad in [
            "",
            "arn",
            "arn:aws:ecr:us-east-1:123456789012",
            "arn:aws:ecr:us-east-1:123456789012:",
            "ARN:aws:ecr:us-east-1:123456789012:repository/x",
            "arn::ecr:us-east-1:123456789012:repository/x",
            "arn:aws::us-east-1:123456789012:repository/x",
            "arn:AWS:ecr:us-east-1:123456789012:repository/x",
            "arn:aws:ecr:us-east-1:123456789012:repository/x\n",
            "123456789012",
        ] {
            assert!(Arn::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Arn::parse(&format!("arn:aws:ecr:r:1:{}", "x".repeat(Arn::MAX_LEN))).is_err());
    }

    #[test]
    fn repository_keys_need_ecr_an_account_and_a_name() {
        for not in [
            "arn:aws:iam::111122223333:repository/x",
            "arn:aws:ecr:us-east-1:1111:repository/x",
            "arn:aws:ecr:us-east-1:111122223333:repository/",
            "arn:aws:ecr:us-east-1:111122223333:repository/UPPER",
            "arn:aws:ecr:us-east-1:111122223333:registry/x",
        ] {
            assert_eq!(Arn::parse(not).unwrap().ecr_repository_key(), None, "{not}");
        }
    }
}
