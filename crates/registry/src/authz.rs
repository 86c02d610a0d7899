//! The one enforcement point: every service method asks `Core::authorize` before it
//! touches storage. Actions are the IAM actions Amazon ECR uses, whichever API a request came
//! through, and they are decided the way AWS decides them: the caller's identity policies
//! together with the resource's policies (the repository policy and the owning account's
//! registry policy), explicit Deny first, default deny, and across accounts both sides must
//! allow. A resource policy that names an account (its root ARN or id) delegates to that
//! account: within it, only a resource policy naming the caller itself grants without an
//! identity policy (see [`berth_policy::iam::authorize`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_auth::SealKey;
use berth_policy::iam::{self, Context, Decision, Policy, PolicyKind, PrincipalRef, Request};
use berth_types::{AccountId, Region, RepositoryKey};

pub use crate::action::Action;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::identity::{IDENTITY_TTL, Keys, PolicySet};
use crate::ttl::TtlCache;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    /// An authenticated identity (a verified SigV4 signature or registry token).
    Principal(Principal),
}

/// An authenticated identity: its account and ARN, and where its request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: AccountId,
    pub arn: String,
    pub origin: Origin,
    /// For a registry token or signed URL: when it was made (ms). One made before its user
    /// was (re)created is refused as unauthenticated: a user deleted and made again under the
    /// same name does not inherit the old user's tokens.
    pub issued_at_ms: Option<i64>,
}

impl Principal {
    /// The principal an IAM ARN names (`arn:aws:iam::<account>:user/<name>`, or any other
    /// `arn:<partition>:iam::<account>:…`); `None` if it is not such an ARN.
    #[must_use]
    pub fn from_arn(arn: &str, origin: Origin) -> Option<Principal> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(_), Some("iam"), Some(""), Some(account), Some(_)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let account = AccountId::parse(account).ok()?;
        Some(Principal { account, arn: arn.to_owned(), origin, issued_at_ms: None })
    }

    /// The user name, for a user principal.
    fn user(&self) -> Option<&str> {
        self.arn.rsplit_once(":user/").map(|(_, u)| u.rsplit('/').next().unwrap_or(u))
    }
}

/// Where a request came from, for `aws:SourceIp` and `aws:SecureTransport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub secure: bool,
}

/// What an action is asked on.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A repository of a registry (which may not exist yet).
    Repository(&'a RepositoryKey),
    /// The caller's own registry as a whole (resource `*`, as ECR's registry-level actions).
    Registry,
}

/// What authorization knows about a repository: its policy and resource tags.
#[derive(Clone)]
pub(crate) struct RepoAuth {
    policy: Option<Arc<Policy>>,
    tags: Arc<Vec<(String, String)>>,
}

/// Authorization settings and the caches behind them.
pub struct Authorizer {
    allow_anonymous: bool,
    region: Region,
    default_account: AccountId,
    pub(crate) keys: Keys,
    /// The key registry tokens and signed download URLs are made with.
    pub(crate) tokens: berth_auth::TokenKey,
    /// Per principal ARN: when its user was created (`None`: no such user) and its policies.
    identities: TtlCache<String, (Option<i64>, PolicySet)>,
    repos: TtlCache<RepositoryKey, RepoAuth>,
    registries: TtlCache<AccountId, Option<Arc<Policy>>>,
}

impl Authorizer {
    /// `server_key` is the key registry tokens are made with; secrets are sealed under a key
    /// derived from it.
    #[must_use]
    pub fn new(
        allow_anonymous: bool,
        region: &Region,
        default_account: &AccountId,
        server_key: &berth_auth::TokenKey,
    ) -> Self {
        Self::with_cache_ttl(allow_anonymous, region, default_account, server_key, IDENTITY_TTL)
    }

    /// As [`Authorizer::new`], trusting looked-up credentials, policies and repository
    /// settings for `ttl`: a change made through another node applies here within it. Nodes
    /// of a cluster use a short one (the server's `cluster_cache_ttl`); 0 caches nothing.
    #[must_use]
    pub fn with_cache_ttl(
        allow_anonymous: bool,
        region: &Region,
        default_account: &AccountId,
        server_key: &berth_auth::TokenKey,
        ttl: std::time::Duration,
    ) -> Self {
        Authorizer {
            allow_anonymous,
            region: region.clone(),
            default_account: default_account.clone(),
            keys: Keys::new(SealKey::derive(server_key), ttl),
            tokens: server_key.clone(),
            identities: TtlCache::new(ttl, 100_000),
            repos: TtlCache::new(ttl, 100_000),
            registries: TtlCache::new(ttl, 10_000),
        }
    }

    #[must_use]
    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    #[must_use]
    pub fn region(&self) -> &str {
        self.region.as_str()
    }

    #[must_use]
    pub fn default_account(&self) -> &AccountId {
        &self.default_account
    }

    /// The ARN of a repository.
    #[must_use]
    pub fn repository_arn(&self, repo: &RepositoryKey) -> String {
        berth_types::Arn::ecr_repository(&self.region, &repo.registry, &repo.name).to_string()
    }
}

fn parse_all<'a>(docs: impl IntoIterator<Item = &'a str>, kind: PolicyKind, whose: &str) -> Vec<Arc<Policy>> {
    docs.into_iter()
        .filter_map(|d| match Policy::parse(d, kind) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                // Documents are validated on write; one that no longer parses grants nothing.
                tracing::warn!(%whose, error = %e, "stored policy does not parse; ignored");
                None
            }
        })
        .collect()
}

/// What an action is decided on: a repository (with what authorization knows of it) or the
/// registry as a whole, and the registry's policy.
struct On<'a> {
    repo: Option<(&'a RepositoryKey, &'a RepoAuth)>,
    registry: &'a AccountId,
    registry_policy: Option<&'a Policy>,
}

/// Decides `action` for `p`: identity policies together with the resource's policies.
fn decide(
    authz: &Authorizer,
    p: &Principal,
    identity: &[Arc<Policy>],
    action: Action,
    on: &On<'_>,
    request_tags: &[(String, String)],
) -> Result<()> {
    let resource = on.repo.map_or_else(|| "*".to_owned(), |(key, _)| authz.repository_arn(key));
    let mut resource_policies: Vec<&Policy> = Vec::with_capacity(2);
    resource_policies.extend(on.repo.and_then(|(_, r)| r.policy.as_deref()));
    resource_policies.extend(on.registry_policy);
    let identity_refs: Vec<&Policy> = identity.iter().map(AsRef::as_ref).collect();

    let mut context = Context::new();
    context.insert("aws:PrincipalAccount", p.account.as_str());
    context.insert("aws:PrincipalArn", p.arn.as_str());
    context.insert("aws:SecureTransport", if p.origin.secure { "true" } else { "false" });
    if let Some(ip) = p.origin.ip {
        context.insert("aws:SourceIp", ip.to_string());
    }
    let now = SystemTime::now();
    context.insert("aws:EpochTime", now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs().to_string());
    context.insert("aws:CurrentTime", berth_auth::iso8601(now));
    if let Some((_, repo)) = on.repo {
        for (k, v) in repo.tags.iter() {
            context.insert(&format!("ecr:ResourceTag/{k}"), v.as_str());
            context.insert(&format!("aws:ResourceTag/{k}"), v.as_str());
        }
    }
    for (k, v) in request_tags {
        context.insert(&format!("aws:RequestTag/{k}"), v.as_str());
        context.insert("aws:TagKeys", k.as_str());
    }
    let request = Request {
        principal: PrincipalRef { account: p.account.as_str(), arn: &p.arn },
        action: action.iam_name(),
        resource: &resource,
        context: &context,
    };
    match iam::authorize(&identity_refs, &resource_policies, on.registry.as_str(), &request) {
        Decision::Allow => Ok(()),
        Decision::Deny | Decision::NotApplicable => {
            // Why, in AWS's words (worked out only on this path).
            let denies = |ps: &[&Policy]| ps.iter().any(|x| x.evaluate(&request) == Decision::Deny);
            let reason = if denies(&identity_refs) {
                "with an explicit deny in an identity-based policy".to_owned()
            } else if denies(&resource_policies) {
                "with an explicit deny in a resource-based policy".to_owned()
            } else if &p.account == on.registry || identity_refs.iter().all(|x| x.evaluate(&request) != Decision::Allow)
            {
                format!("because no identity-based policy allows the {action} action")
            } else {
                format!("because no resource-based policy allows the {action} action")
            };
            Err(Error::AccessDenied { action, resource, principal: p.arn.clone(), reason })
        }
    }
}

/// One caller's decisions over the repositories of one registry (see `Core::filter_for`).
pub(crate) struct RepoFilter<'a> {
    /// `None`: an anonymous caller where anonymous access is on (it sees everything).
    who: Option<(Principal, PolicySet, Option<Arc<Policy>>)>,
    authz: &'a Authorizer,
}

impl RepoFilter<'_> {
    /// Whether the caller may do any of `actions` on the repository `record` describes.
    pub(crate) fn allows(&self, record: &berth_meta::RepositoryRecord, actions: &[Action]) -> bool {
        let Some((p, identity, registry_policy)) = &self.who else { return true };
        let repo = match self.authz.repos.get(&record.key) {
            Some(hit) => hit,
            None => Core::repo_auth_of(record),
        };
        let on = On {
            repo: Some((&record.key, &repo)),
            registry: &record.key.registry,
            registry_policy: registry_policy.as_deref(),
        };
        actions.iter().any(|a| decide(self.authz, p, identity, *a, &on, &[]).is_ok())
    }
}

impl Core {
    /// Allows or refuses `action` on `target` for `caller`. `request_tags` are the tags a
    /// request sets (for `aws:RequestTag/…` and `aws:TagKeys`).
    ///
    /// # Errors
    /// `Unauthenticated` for an anonymous caller where anonymous access is not configured, and
    /// for a user that no longer exists (or was made again after the caller's token or signed
    /// URL); `AccessDenied` naming the action and resource.
    pub(crate) async fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        target: Target<'_>,
        request_tags: &[(String, String)],
    ) -> Result<()> {
        let p = match caller {
            Caller::Anonymous if self.authz.allow_anonymous => return Ok(()),
            Caller::Anonymous => return Err(Error::Unauthenticated),
            Caller::Principal(p) => p,
        };
        let identity = self.identity_policies(p).await?;
        match target {
            Target::Repository(key) => {
                let registry_policy = self.registry_policy_cached(&key.registry).await?;
                let repo = self.repo_auth(key).await?;
                let on = On {
                    repo: Some((key, &repo)),
                    registry: &key.registry,
                    registry_policy: registry_policy.as_deref(),
                };
                decide(&self.authz, p, &identity, action, &on, request_tags)
            }
            Target::Registry => {
                let registry_policy = self.registry_policy_cached(&p.account).await?;
                let on = On { repo: None, registry: &p.account, registry_policy: registry_policy.as_deref() };
                decide(&self.authz, p, &identity, action, &on, request_tags)
            }
        }
    }

    /// A decision for many repositories of one registry at once (listings filtered by
    /// permission): everything but the repository itself is looked up once, and each
    /// repository is then decided from its record, with no further storage access.
    pub(crate) async fn filter_for(&self, caller: &Caller, registry: &AccountId) -> Result<RepoFilter<'_>> {
        let p = match caller {
            Caller::Anonymous if self.authz.allow_anonymous => return Ok(RepoFilter { who: None, authz: &self.authz }),
            Caller::Anonymous => return Err(Error::Unauthenticated),
            Caller::Principal(p) => p.clone(),
        };
        let identity = self.identity_policies(&p).await?;
        let registry_policy = self.registry_policy_cached(registry).await?;
        Ok(RepoFilter { who: Some((p, identity, registry_policy)), authz: &self.authz })
    }

    /// The caller's identity policies, parsed.
    ///
    /// # Errors
    /// `Unauthenticated` when the caller is a user that does not exist (any more), or its token
    /// or signed URL was made before its user was (re)created: whatever a resource policy
    /// names, nobody speaks for a deleted user. Seen within [`IDENTITY_TTL`] of a deletion made
    /// elsewhere (`berth admin`, another node), at once for one made through this registry.
    pub(crate) async fn identity_policies(&self, p: &crate::Principal) -> Result<PolicySet> {
        let (created, policies) = match self.authz.identities.get(&p.arn) {
            Some(hit) => hit,
            None => {
                let read_at = std::time::Instant::now();
                let (created, docs) = match p.user() {
                    Some(user) => {
                        let users = self.meta.list_users(p.account.as_str()).await?;
                        let created = users.iter().find(|u| u.name == user).map(|u| u.created_at);
                        (created, self.meta.user_policies(p.account.as_str(), user).await?)
                    }
                    None => (None, Vec::new()),
                };
                let parsed = Arc::new(parse_all(docs.iter().map(|(_, d)| d.as_str()), PolicyKind::Identity, &p.arn));
                self.authz.identities.insert(p.arn.clone(), (created, Arc::clone(&parsed)), read_at);
                (created, parsed)
            }
        };
        if p.user().is_some() && created.is_none() {
            return Err(Error::Unauthenticated);
        }
        // Tokens carry whole seconds: compare in seconds, so a token made in the second its
        // user was created still works.
        match (p.issued_at_ms, created) {
            (Some(issued), Some(created)) if issued.div_euclid(1000) < created.div_euclid(1000) => {
                Err(Error::Unauthenticated)
            }
            _ => Ok(policies),
        }
    }

    /// Policy and tags of a repository; a missing repository has neither.
    async fn repo_auth(&self, key: &RepositoryKey) -> Result<RepoAuth> {
        if let Some(hit) = self.authz.repos.get(key) {
            return Ok(hit);
        }
        let read_at = std::time::Instant::now();
        let Some(record) = self.meta.get_repository(key).await? else {
            // Not cached: creating it changes the answer.
            return Ok(RepoAuth { policy: None, tags: Arc::default() });
        };
        let auth = Self::repo_auth_of(&record);
        self.authz.repos.insert(key.clone(), auth.clone(), read_at);
        Ok(auth)
    }

    /// What authorization needs of a repository, from its record.
    pub(crate) fn repo_auth_of(record: &berth_meta::RepositoryRecord) -> RepoAuth {
        let policy = parse_all(record.policy.as_deref(), PolicyKind::Resource, record.key.name.as_str()).pop();
        RepoAuth { policy, tags: Arc::new(record.tags.clone()) }
    }

    async fn registry_policy_cached(&self, account: &AccountId) -> Result<Option<Arc<Policy>>> {
        if let Some(hit) = self.authz.registries.get(account) {
            return Ok(hit);
        }
        let read_at = std::time::Instant::now();
        let doc = self.meta.registry_policy(account).await?;
        let policy = parse_all(doc.as_deref(), PolicyKind::Resource, account.as_str()).pop();
        self.authz.registries.insert(account.clone(), policy.clone(), read_at);
        Ok(policy)
    }

    /// Forgets what authorization cached about a repository (after its policy, tags or
    /// existence changed on this node).
    pub(crate) fn forget_repository(&self, key: &RepositoryKey) {
        self.authz.repos.remove(key);
    }

    pub(crate) fn forget_registry(&self, account: &AccountId) {
        self.authz.registries.remove(account);
    }

    pub(crate) fn forget_identity(&self, arn: &str) {
        self.authz.identities.remove(&arn.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_from_arns() {
        let p = Principal::from_arn("arn:aws:iam::111122223333:user/bob", Origin::default()).unwrap();
        assert_eq!((p.account.as_str(), p.user()), ("111122223333", Some("bob")));
        assert!(Principal::from_arn("arn:aws:iam::1234:user/bob", Origin::default()).is_none());
        let p = Principal::from_arn("arn:aws:iam::111122223333:user/path/to/alice", Origin::default()).unwrap();
        assert_eq!(p.user(), Some("alice"));
        assert_eq!(Principal::from_arn("arn:aws:iam::111122223333:root", Origin::default()).unwrap().user(), None);
        assert!(Principal::from_arn("arn:aws:ecr:us-east-1:111122223333:repository/x", Origin::default()).is_none());
        assert!(Principal::from_arn("bob", Origin::default()).is_none());
        assert_eq!(Action::GetDownloadUrlForLayer.iam_name(), "ecr:GetDownloadUrlForLayer");
    }
}
