//! IAM-style policy documents and their evaluation.
//!
//! [`Policy::parse`] reads an identity-based or resource-based policy (the AWS IAM JSON grammar:
//! `Version`, `Id`, `Statement` with `Sid`, `Effect`, `Action`/`NotAction`,
//! `Resource`/`NotResource`, `Principal`/`NotPrincipal` and `Condition`), rejects anything AWS
//! would reject with a precise [`PolicyError`], and compiles it so that [`Policy::evaluate`] does
//! not allocate. [`authorize`] combines the caller's identity policies with the resource's
//! policies the way AWS does for one account and across accounts.
//!
//! Matching rules:
//! - actions: ASCII case-insensitive, `*` and `?` wildcards;
//! - resources: case-sensitive, `*` and `?` wildcards over the whole ARN; an omitted `Resource`
//!   in a resource-based policy means "the resource this policy is attached to" (any resource);
//! - principals: see [`PrincipalRef`]; `Service`, `Federated` and `CanonicalUser` principals
//!   parse but never match a caller;
//! - conditions: operators and keys are combined with AND, the values of one key with OR. On a
//!   key absent from the [`Context`], positive operators are false and negated operators
//!   (`StringNotEquals`, `NotIpAddress`, ...) are true, as the AWS condition-operator reference
//!   documents; `...IfExists` is true; `Null` tests presence. `ForAnyValue:` is false and
//!   `ForAllValues:` true on an absent key. Details are in the `condition` submodule.
//!
//! Policy variables (`${aws:username}`) are not substituted: they are matched literally.

mod condition;
pub mod managed;
mod net;
mod pattern;
mod time;

#[cfg(test)]
mod tests;

use berth_types::{AccountId, Arn};
use serde_json::{Map, Value};

use self::condition::{Condition, kind_of};
use self::pattern::{Wildcard, wildcard};

/// Which grammar a policy document follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a user, group or role: `Principal`/`NotPrincipal` are forbidden and each
    /// statement needs exactly one of `Resource`/`NotResource`.
    Identity,
    /// Attached to a resource (a repository or registry policy): each statement needs exactly one
    /// of `Principal`/`NotPrincipal`; `Resource`/`NotResource` are optional.
    Resource,
}

/// Why a policy document was rejected. The message is meant for users (it is returned in
/// `InvalidParameterException`) and names the statement, e.g.
/// `Statement[1]: Effect must be "Allow" or "Deny", not "allow"`. Statement indices start at 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// One policy's verdict on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No statement matched.
    NotApplicable,
    /// An `Allow` statement matched and no `Deny` statement did.
    Allow,
    /// An explicit `Deny` statement matched.
    Deny,
}

/// The caller. `account` is the 12-digit account id, `arn` the principal's ARN, e.g.
/// `arn:aws:iam::111122223333:user/bob`, or `arn:aws:iam::111122223333:root` for an account root.
///
/// A policy principal given as an account id (`"111122223333"`) or as the account's root ARN
/// matches every principal of that account; any other ARN matches only that exact ARN. Naming an
/// account is a delegation to it, not a grant to its users: see [`authorize`].
#[derive(Debug, Clone, Copy)]
pub struct PrincipalRef<'a> {
    pub account: &'a str,
    pub arn: &'a str,
}

/// Condition keys and their values for one request. Key lookup ignores case; a key may hold
/// several values (e.g. `aws:TagKeys`).
#[derive(Debug, Clone, Default)]
pub struct Context {
    entries: Vec<ContextEntry>,
}

#[derive(Debug, Clone)]
struct ContextEntry {
    /// The key as first inserted.
    key: String,
    /// The key case-folded (see [`fold_case`]), for allocation-free lookups during evaluation.
    folded: String,
    values: Vec<String>,
}

impl Context {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `value` to the values of `key` (creating the key if needed).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        let folded = fold_case(key);
        match self.entries.iter_mut().find(|e| e.folded == folded) {
            Some(e) => e.values.push(value),
            None => self.entries.push(ContextEntry { key: key.to_owned(), folded, values: vec![value] }),
        }
    }

    /// Builder form of [`Context::insert`].
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// The values of `key`, if it is present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries.iter().find(|e| eq_ignore_case(&e.folded, key)).map(|e| e.values.as_slice())
    }

    /// Lookup by an already case-folded key: a plain comparison, used by evaluation.
    pub(crate) fn get_folded(&self, folded: &str) -> Option<&[String]> {
        self.entries.iter().find(|e| e.folded == folded).map(|e| e.values.as_slice())
    }

    /// Removes `key` and all its values.
    pub fn remove(&mut self, key: &str) {
        let folded = fold_case(key);
        self.entries.retain(|e| e.folded != folded);
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All keys (as first inserted) and their values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.iter().map(|e| (e.key.as_str(), e.values.as_slice()))
    }
}

/// One request to authorize.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: PrincipalRef<'a>,
    /// The IAM action, e.g. `ecr:BatchGetImage`.
    pub action: &'a str,
    /// The resource ARN, e.g. `arn:aws:ecr:us-east-1:111122223333:repository/team/app`, or `*`
    /// for actions without a resource (`ecr:GetAuthorizationToken`).
    pub resource: &'a str,
    pub context: &'a Context,
}

/// A parsed and compiled policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    kind: PolicyKind,
    version: Option<Box<str>>,
    id: Option<Box<str>>,
    statements: Box<[Statement]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
struct Statement {
    sid: Option<Box<str>>,
    effect: Effect,
    actions: Patterns,
    /// `None`: no `Resource`/`NotResource` (resource policies only): any resource.
    resources: Option<Patterns>,
    /// `None`: identity policy (the principal is the policy's holder).
    principal: Option<PrincipalSpec>,
    condition: Condition,
}

/// `Action`/`NotAction` or `Resource`/`NotResource`.
#[derive(Debug, Clone)]
struct Patterns {
    not: bool,
    any: bool,
    list: Box<[Wildcard]>,
}

impl Patterns {
    fn new(values: &[&str], not: bool, fold: bool) -> Self {
        let list: Box<[Wildcard]> = values.iter().map(|v| wildcard(v, fold)).collect();
        let any = list.iter().any(Wildcard::is_any);
        Self { not, any, list }
    }

    fn applies_to(&self, s: &str) -> bool {
        let hit = self.any || self.list.iter().any(|p| p.matches(s));
        hit != self.not
    }
}

/// `Principal`/`NotPrincipal`.
#[derive(Debug, Clone)]
struct PrincipalSpec {
    not: bool,
    any: bool,
    accounts: Box<[Box<str>]>,
    arns: Box<[Box<str>]>,
}

/// How a matching statement reached the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Only through the caller's account (its id or root ARN): a delegation to that account.
    Account,
    /// The caller itself: its own ARN, `*`, a `NotPrincipal` that leaves it out, or (for an
    /// account root) its account; an identity policy always reaches its holder this way.
    Principal,
}

/// A policy's verdict, with how an `Allow` reached the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    NotApplicable,
    Allow(Reach),
    Deny,
}

impl PrincipalSpec {
    fn reach(&self, p: &PrincipalRef<'_>) -> Option<Reach> {
        let by_arn = self.any || self.arns.iter().any(|a| **a == *p.arn);
        let by_account = self.accounts.iter().any(|a| **a == *p.account);
        if self.not {
            return (!by_arn && !by_account).then_some(Reach::Principal);
        }
        if by_arn || (by_account && is_account_root(p)) {
            Some(Reach::Principal)
        } else if by_account {
            Some(Reach::Account)
        } else {
            None
        }
    }
}

/// Whether the caller is its account's root (`arn:<partition>:iam::<account>:root`).
fn is_account_root(p: &PrincipalRef<'_>) -> bool {
    p.arn
        .strip_suffix(":root")
        .and_then(|rest| rest.strip_suffix(p.account))
        .and_then(|rest| rest.strip_suffix(":iam::"))
        .is_some_and(|partition| partition.strip_prefix("arn:").is_some_and(|p| !p.is_empty() && !p.contains(':')))
}

impl Statement {
    /// Whether this statement applies to `req`, and how it reached the caller.
    fn reach(&self, req: &Request<'_>) -> Option<Reach> {
        if !(self.actions.applies_to(req.action) && self.resources.as_ref().is_none_or(|r| r.applies_to(req.resource)))
        {
            return None;
        }
        let reach = match &self.principal {
            None => Reach::Principal,
            Some(p) => p.reach(&req.principal)?,
        };
        self.condition.holds(req.context).then_some(reach)
    }
}

impl Policy {
    /// Parses and compiles a policy document of the given kind.
    ///
    /// # Errors
    /// A [`PolicyError`] naming the first problem found: invalid JSON (with serde's message),
    /// an unknown element, a missing or duplicated element, a malformed action, resource,
    /// principal or condition value, an unknown condition operator, or a duplicate `Sid` in an
    /// identity policy.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| PolicyError(format!("Policy is not valid JSON: {e}")))?;
        let Value::Object(top) = doc else {
            return Err(PolicyError(format!("Policy must be a JSON object, not {}", kind_of(&doc))));
        };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError(format!(
                    "Policy has an unknown element \"{key}\" (allowed: Version, Id, Statement)"
                )));
            }
        }
        let version = match top.get("Version") {
            None => None,
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => Some(v.as_str().into()),
            Some(Value::String(v)) => {
                return Err(PolicyError(format!("Version must be \"2012-10-17\" or \"2008-10-17\", not \"{v}\"")));
            }
            Some(v) => return Err(PolicyError(format!("Version must be a string, not {}", kind_of(v)))),
        };
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(v)) => Some(v.as_str().into()),
            Some(v) => return Err(PolicyError(format!("Id must be a string, not {}", kind_of(v)))),
        };
        let raw: Vec<&Value> = match top.get("Statement") {
            None => return Err(PolicyError("Policy has no Statement".to_owned())),
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(PolicyError("Statement must contain at least one statement".to_owned()));
            }
            Some(Value::Array(items)) => items.iter().collect(),
            Some(v @ Value::Object(_)) => vec![v],
            Some(v) => {
                return Err(PolicyError(format!(
                    "Statement must be an object or an array of objects, not {}",
                    kind_of(v)
                )));
            }
        };
        let mut statements = Vec::with_capacity(raw.len());
        for (i, value) in raw.into_iter().enumerate() {
            let at = format!("Statement[{i}]");
            let Value::Object(obj) = value else {
                return Err(PolicyError(format!("{at}: a statement must be an object, not {}", kind_of(value))));
            };
            let st = parse_statement(obj, &at, kind)?;
            // IAM refuses a repeated Sid in an identity policy; ECR accepts one in a repository
            // or registry policy.
            if kind == PolicyKind::Identity
                && let Some(sid) = &st.sid
                && statements.iter().any(|s: &Statement| s.sid.as_deref() == Some(&**sid))
            {
                return Err(PolicyError(format!("{at}: Sid \"{sid}\" is used by an earlier statement")));
            }
            statements.push(st);
        }
        Ok(Policy { kind, version, id, statements: statements.into() })
    }

    /// This policy's verdict on `req`: `Deny` if a matching `Deny` statement exists, else
    /// `Allow` if a matching `Allow` statement exists, else `NotApplicable`. Does not allocate.
    #[must_use]
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        match self.verdict(req) {
            Verdict::NotApplicable => Decision::NotApplicable,
            Verdict::Allow(_) => Decision::Allow,
            Verdict::Deny => Decision::Deny,
        }
    }

    /// [`Policy::evaluate`], telling an `Allow` that reached the caller itself from one that
    /// reached only its account. Does not allocate.
    fn verdict(&self, req: &Request<'_>) -> Verdict {
        let mut allowed: Option<Reach> = None;
        for st in &self.statements {
            if st.effect == Effect::Allow && allowed == Some(Reach::Principal) {
                continue;
            }
            if let Some(reach) = st.reach(req) {
                match st.effect {
                    Effect::Deny => return Verdict::Deny,
                    Effect::Allow if allowed.is_none() || reach == Reach::Principal => allowed = Some(reach),
                    Effect::Allow => {}
                }
            }
        }
        allowed.map_or(Verdict::NotApplicable, Verdict::Allow)
    }

    #[must_use]
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The document's `Version`, if it had one.
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The document's `Id`, if it had one.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Number of statements.
    #[must_use]
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// The statements' `Sid`s, in order (`None` for statements without one).
    pub fn sids(&self) -> impl Iterator<Item = Option<&str>> {
        self.statements.iter().map(|s| s.sid.as_deref())
    }
}

/// AWS's combined decision for one request: identity policies of the caller plus resource-based
/// policies of the resource (repository policy and registry policy). `resource_account` owns the
/// resource.
///
/// Explicit Deny anywhere wins. Same account (`principal.account == resource_account`): Allow if
/// an identity policy allows, or a resource policy allows the caller itself (its ARN, `*`, or a
/// `NotPrincipal` that leaves it out). A resource policy that names only the caller's account
/// (its id or root ARN) delegates to the account and grants nothing on its own: the account's
/// identity policies decide. Cross-account: Allow only if an identity policy allows AND a
/// resource policy allows (naming the caller or its account). Otherwise Deny (default deny).
/// Returns only Allow or Deny.
#[must_use]
pub fn authorize(identity: &[&Policy], resource: &[&Policy], resource_account: &str, req: &Request<'_>) -> Decision {
    let mut identity_allows = false;
    for p in identity {
        match p.verdict(req) {
            Verdict::Deny => return Decision::Deny,
            Verdict::Allow(_) => identity_allows = true,
            Verdict::NotApplicable => {}
        }
    }
    let mut resource_allows: Option<Reach> = None;
    for p in resource {
        match p.verdict(req) {
            Verdict::Deny => return Decision::Deny,
            Verdict::Allow(reach) if resource_allows != Some(Reach::Principal) => resource_allows = Some(reach),
            Verdict::Allow(_) | Verdict::NotApplicable => {}
        }
    }
    let same_account = req.principal.account == resource_account;
    let allowed = if same_account {
        identity_allows || resource_allows == Some(Reach::Principal)
    } else {
        identity_allows && resource_allows.is_some()
    };
    if allowed { Decision::Allow } else { Decision::Deny }
}

/// Case folding for condition key names: Unicode lowercase, character by character (the same
/// mapping [`eq_ignore_case`] applies).
pub(crate) fn fold_case(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Case-insensitive comparison for condition key names: ASCII fast path, Unicode lowercase
/// otherwise. Never allocates.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.len() == b.len() && a.eq_ignore_ascii_case(b) {
        return true;
    }
    if a.is_ascii() && b.is_ascii() {
        return false;
    }
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

const STATEMENT_KEYS: &[&str] =
    &["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition"];

fn parse_statement(obj: &Map<String, Value>, at: &str, kind: PolicyKind) -> Result<Statement, PolicyError> {
    let fail = |msg: String| Err(PolicyError(format!("{at}: {msg}")));
    for key in obj.keys() {
        if !STATEMENT_KEYS.contains(&key.as_str()) {
            let hint = STATEMENT_KEYS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(key))
                .map(|k| format!(" (did you mean \"{k}\"?)"))
                .unwrap_or_default();
            return fail(format!("unknown element \"{key}\"{hint}"));
        }
    }

    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str().into()),
        Some(v) => return fail(format!("Sid must be a string, not {}", kind_of(v))),
    };

    let effect = match obj.get("Effect") {
        None => return fail("Effect is required".to_owned()),
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(Value::String(s)) => return fail(format!("Effect must be \"Allow\" or \"Deny\", not \"{s}\"")),
        Some(v) => return fail(format!("Effect must be \"Allow\" or \"Deny\", not {}", kind_of(v))),
    };

    let actions = match (obj.get("Action"), obj.get("NotAction")) {
        (Some(_), Some(_)) | (None, None) => return fail("must contain exactly one of Action or NotAction".to_owned()),
        (Some(v), None) => (v, "Action", false),
        (None, Some(v)) => (v, "NotAction", true),
    };
    let (value, name, not) = actions;
    let list = one_or_more(value, at, name)?;
    for a in &list {
        check_action(a).map_err(|why| PolicyError(format!("{at}: {name} \"{a}\" {why}")))?;
    }
    let actions = Patterns::new(&list, not, true);

    let resources = match (obj.get("Resource"), obj.get("NotResource")) {
        (Some(_), Some(_)) => return fail("must not contain both Resource and NotResource".to_owned()),
        (None, None) if kind == PolicyKind::Identity => {
            return fail("an identity-based policy statement must contain Resource or NotResource".to_owned());
        }
        (None, None) => None,
        (Some(v), None) => Some(resource_patterns(v, at, "Resource", false)?),
        (None, Some(v)) => Some(resource_patterns(v, at, "NotResource", true)?),
    };

    let principal = match (kind, obj.get("Principal"), obj.get("NotPrincipal")) {
        (PolicyKind::Identity, None, None) => None,
        (PolicyKind::Identity, Some(_), _) => {
            return fail("Principal is not allowed in an identity-based policy".to_owned());
        }
        (PolicyKind::Identity, _, Some(_)) => {
            return fail("NotPrincipal is not allowed in an identity-based policy".to_owned());
        }
        (PolicyKind::Resource, Some(_), Some(_)) | (PolicyKind::Resource, None, None) => {
            return fail(
                "a resource-based policy statement must contain exactly one of Principal or NotPrincipal".to_owned(),
            );
        }
        (PolicyKind::Resource, Some(v), None) => Some(parse_principal(v, at, "Principal", false)?),
        (PolicyKind::Resource, None, Some(v)) => Some(parse_principal(v, at, "NotPrincipal", true)?),
    };

    let condition = match obj.get("Condition") {
        None => Condition::default(),
        Some(v) => Condition::parse(v, at)?,
    };

    Ok(Statement { sid, effect, actions, resources, principal, condition })
}

/// A string or a non-empty array of strings.
fn one_or_more<'v>(value: &'v Value, at: &str, name: &str) -> Result<Vec<&'v str>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) if items.is_empty() => Err(PolicyError(format!("{at}: {name} must not be an empty list"))),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(PolicyError(format!("{at}: {name} entries must be strings, not {}", kind_of(other)))),
            })
            .collect(),
        other => {
            Err(PolicyError(format!("{at}: {name} must be a string or an array of strings, not {}", kind_of(other))))
        }
    }
}

/// `*` or `<service>:<action pattern>`.
fn check_action(a: &str) -> Result<(), &'static str> {
    if a == "*" {
        return Ok(());
    }
    let Some((service, name)) = a.split_once(':') else {
        return Err("must be \"*\" or \"<service>:<action>\" with a service prefix (e.g. \"ecr:BatchGetImage\")");
    };
    if service.is_empty() || !service.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'*' | b'?')) {
        return Err("has an invalid service prefix");
    }
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err("has an invalid action name");
    }
    Ok(())
}

fn resource_patterns(value: &Value, at: &str, name: &str, not: bool) -> Result<Patterns, PolicyError> {
    let list = one_or_more(value, at, name)?;
    for r in &list {
        if *r != "*" && !r.starts_with("arn:") {
            return Err(PolicyError(format!("{at}: {name} \"{r}\" must be \"*\" or an ARN (\"arn:...\")")));
        }
    }
    Ok(Patterns::new(&list, not, false))
}

fn parse_principal(value: &Value, at: &str, name: &str, not: bool) -> Result<PrincipalSpec, PolicyError> {
    let mut spec = PrincipalSpec { not, any: false, accounts: Box::default(), arns: Box::default() };
    let map = match value {
        Value::String(s) if s == "*" => {
            spec.any = true;
            return Ok(spec);
        }
        Value::Object(map) if map.is_empty() => {
            return Err(PolicyError(format!("{at}: {name} must not be an empty object")));
        }
        Value::Object(map) => map,
        Value::String(s) => {
            return Err(PolicyError(format!(
                "{at}: {name} must be \"*\" or an object such as {{\"AWS\": \"111122223333\"}}, not \"{s}\""
            )));
        }
        other => {
            return Err(PolicyError(format!(
                "{at}: {name} must be \"*\" or an object such as {{\"AWS\": \"111122223333\"}}, not {}",
                kind_of(other)
            )));
        }
    };
    let mut accounts = Vec::new();
    let mut arns = Vec::new();
    for (ptype, v) in map {
        let field = format!("{name}.{ptype}");
        let list = one_or_more(v, at, &field)?;
        match ptype.as_str() {
            "AWS" => {
                for p in list {
                    match classify_aws_principal(p) {
                        Ok(AwsPrincipal::Any) => spec.any = true,
                        Ok(AwsPrincipal::Account(a)) => accounts.push(Box::from(a.as_str())),
                        Ok(AwsPrincipal::Arn(a)) => arns.push(Box::from(a)),
                        Err(why) => return Err(PolicyError(format!("{at}: {field} \"{p}\" {why}"))),
                    }
                }
            }
            // Parsed but never matching a caller of this registry.
            "Service" | "Federated" | "CanonicalUser" => {
                if let Some(empty) = list.iter().find(|s| s.trim().is_empty()) {
                    return Err(PolicyError(format!("{at}: {field} \"{empty}\" must not be empty")));
                }
            }
            other => {
                return Err(PolicyError(format!(
                    "{at}: {name} has an unknown principal type \"{other}\" (allowed: AWS, Service, Federated, CanonicalUser)"
                )));
            }
        }
    }
    spec.accounts = accounts.into();
    spec.arns = arns.into();
    Ok(spec)
}

enum AwsPrincipal<'a> {
    Any,
    Account(AccountId),
    Arn(&'a str),
}

fn classify_aws_principal(p: &str) -> Result<AwsPrincipal<'_>, &'static str> {
    const WHAT: &str = "must be \"*\", a 12-digit account id or an ARN";
    if p == "*" {
        return Ok(AwsPrincipal::Any);
    }
    if let Ok(account) = AccountId::parse(p) {
        return Ok(AwsPrincipal::Account(account));
    }
    let arn = Arn::parse(p).map_err(|_| WHAT)?;
    if p.contains(['*', '?']) {
        return Err("must not contain wildcards; use \"*\" with a condition on aws:PrincipalArn instead");
    }
    if arn.service() == "iam" && arn.resource() == "root" {
        return arn
            .iam_root_account()
            .map(AwsPrincipal::Account)
            .ok_or("is not a valid account root ARN (the account id must be 12 digits)");
    }
    Ok(AwsPrincipal::Arn(p))
}
