//! Accounts, users and access keys: the administration `berth admin` drives, the bootstrap of
//! the first administrator, and the credential lookup behind every signed request.
//!
//! Administration methods take no [`Caller`](crate::Caller): they are reached only by an
//! operator holding the data directory (or database), never through an API.

use std::sync::Arc;
use std::time::Duration;

use berth_auth::{Credential, SealKey};
use berth_meta::{AccessKeyRecord, AccountRecord, UserRecord};
use berth_policy::iam::{Policy, PolicyKind, managed};
use berth_types::now_ms;

use crate::authz::{Action, Caller, Target};
use crate::ttl::TtlCache;
use crate::{Error, Result, service};

service! {
    /// Accounts, users, access keys and identity policies, for `berth admin`.
    Identity
}

service! {
    /// Credentials: the secret behind an access key (SigV4), and registry tokens
    /// (`GetAuthorizationToken`).
    Tokens
}

/// A registry token for `docker login`, and when it expires.
#[derive(Debug, Clone)]
pub struct AuthorizationToken {
    /// The password for user `AWS`.
    pub password: String,
    pub expires: std::time::SystemTime,
}

/// The administrator every registry starts with, in its default account.
pub const ADMIN_USER: &str = "berth-admin";

/// How long a looked-up credential or policy set is trusted before it is read again, so that
/// changes from `berth admin` or another node are seen.
pub(crate) const IDENTITY_TTL: Duration = Duration::from_secs(5);

/// Credentials by access key id (`None`: no such key), plus the key sealing secrets.
pub(crate) struct Keys {
    pub(crate) seal: SealKey,
    pub(crate) cache: TtlCache<String, Option<Credential>>,
}

impl Keys {
    pub(crate) fn new(seal: SealKey, ttl: Duration) -> Self {
        Keys { seal, cache: TtlCache::new(ttl, 100_000) }
    }
}

/// The IAM ARN of a user.
#[must_use]
pub fn user_arn(account: &str, user: &str) -> String {
    match berth_types::AccountId::parse(account) {
        Ok(account) => berth_types::Arn::iam_user(&account, user).to_string(),
        // Only reached for an account id that was never valid: no principal has this ARN.
        Err(_) => format!("arn:aws:iam::{account}:user/{user}"),
    }
}

/// IAM's user name rule: 1 to 64 of letters, digits and `+=,.@_-`.
fn check_user_name(name: &str) -> Result<()> {
    let ok =
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "user name {name:?} must be 1 to 64 letters, digits or characters of +=,.@_-"
        )))
    }
}

/// Printable random characters drawn from `alphabet`.
fn random_string(alphabet: &[u8], len: usize) -> Result<String> {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let bytes: [u8; 64] = berth_auth::random_bytes().map_err(|e| Error::Internal(Box::new(e)))?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % alphabet.len();
        for b in bytes.iter().map(|&b| usize::from(b)).filter(|&b| b < limit) {
            if out.len() == len {
                break;
            }
            out.push(char::from(alphabet[b % alphabet.len()]));
        }
    }
    Ok(out)
}

impl Identity {
    /// Creates an account with `id` (12 digits) or a fresh one.
    ///
    /// # Errors
    /// `InvalidParameter` for a malformed id, `EntityAlreadyExists`.
    pub async fn create_account(&self, id: Option<&str>, name: &str) -> Result<AccountRecord> {
        let id = match id {
            Some(id) if berth_types::AccountId::parse(id).is_ok() => id.to_owned(),
            Some(id) => return Err(Error::InvalidParameter(format!("account id {id:?} must be 12 digits"))),
            // Account ids do not start with 0.
            None => format!("{}{}", random_string(b"123456789", 1)?, random_string(b"0123456789", 11)?),
        };
        let record = AccountRecord { id: id.clone(), name: name.to_owned(), created_at: now_ms() };
        self.meta.create_account(&record).await?;
        Ok(record)
    }

    /// Creates account `id` unless it exists.
    ///
    /// # Errors
    /// `InvalidParameter` for a malformed id, storage failures.
    async fn ensure_account(&self, id: &str, name: &str) -> Result<()> {
        match self.create_account(Some(id), name).await {
            Ok(_) | Err(Error::EntityAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// # Errors
    /// Storage failures.
    pub async fn accounts(&self) -> Result<Vec<AccountRecord>> {
        Ok(self.meta.list_accounts().await?)
    }

    /// # Errors
    /// `InvalidParameter`, `EntityNotFound` (the account), `EntityAlreadyExists`.
    pub async fn create_user(&self, account: &str, name: &str) -> Result<UserRecord> {
        check_user_name(name)?;
        let record = UserRecord { account: account.to_owned(), name: name.to_owned(), created_at: now_ms() };
        self.meta.create_user(&record).await?;
        // Callers of a user deleted earlier are refused through a cached "no such user".
        self.forget_identity(&user_arn(account, name));
        Ok(record)
    }

    /// Deletes a user with its access keys and policies.
    ///
    /// # Errors
    /// `EntityNotFound`.
    pub async fn delete_user(&self, account: &str, name: &str) -> Result<()> {
        if !self.meta.delete_user(account, name).await? {
            return Err(Error::EntityNotFound(format!("user {}", user_arn(account, name))));
        }
        self.authz.keys.cache.clear();
        self.forget_identity(&user_arn(account, name));
        Ok(())
    }

    /// # Errors
    /// Storage failures.
    pub async fn users(&self, account: &str) -> Result<Vec<UserRecord>> {
        Ok(self.meta.list_users(account).await?)
    }

    /// Makes a new access key for a user and returns `(access key id, secret access key)`.
    /// The secret is shown only here; it is stored sealed.
    ///
    /// # Errors
    /// `EntityNotFound` (the user).
    pub async fn create_access_key(&self, account: &str, user: &str) -> Result<(String, String)> {
        let id = format!("AKIA{}", random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)?);
        let secret = random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)?;
        self.store_access_key(account, user, &id, &secret, false).await?;
        Ok((id, secret))
    }

    async fn store_access_key(&self, account: &str, user: &str, id: &str, secret: &str, replace: bool) -> Result<()> {
        let sealed_secret =
            self.authz.keys.seal.seal(secret.as_bytes(), id.as_bytes()).map_err(|e| Error::Internal(Box::new(e)))?;
        let record = AccessKeyRecord {
            id: id.to_owned(),
            account: account.to_owned(),
            user: user.to_owned(),
            sealed_secret,
            created_at: now_ms(),
        };
        self.meta.put_access_key(&record, replace).await?;
        self.authz.keys.cache.remove(&id.to_owned());
        Ok(())
    }

    /// # Errors
    /// `EntityNotFound`.
    pub async fn delete_access_key(&self, id: &str) -> Result<()> {
        if !self.meta.delete_access_key(id).await? {
            return Err(Error::EntityNotFound(format!("access key {id}")));
        }
        self.authz.keys.cache.remove(&id.to_owned());
        Ok(())
    }

    /// Access key ids of a user, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn access_keys(&self, account: &str, user: &str) -> Result<Vec<String>> {
        Ok(self.meta.list_access_keys(account, user).await?.into_iter().map(|k| k.id).collect())
    }

    /// Attaches an identity policy to a user under `name`: a managed policy's name
    /// (`AmazonEC2ContainerRegistryReadOnly`, …) with `document` `None`, or a document.
    ///
    /// # Errors
    /// `InvalidParameter` for an unknown managed policy or a malformed document, `EntityNotFound`.
    pub async fn attach_user_policy(
        &self,
        account: &str,
        user: &str,
        name: &str,
        document: Option<&str>,
    ) -> Result<()> {
        let document = match document {
            Some(d) => d,
            None => managed::by_name(name)
                .ok_or_else(|| Error::InvalidParameter(format!("{name:?} is not a managed policy")))?,
        };
        Policy::parse(document, PolicyKind::Identity).map_err(|e| Error::InvalidParameter(e.0))?;
        self.meta.put_user_policy(account, user, name, document).await?;
        self.forget_identity(&user_arn(account, user));
        Ok(())
    }

    /// # Errors
    /// `EntityNotFound`.
    pub async fn detach_user_policy(&self, account: &str, user: &str, name: &str) -> Result<()> {
        if !self.meta.delete_user_policy(account, user, name).await? {
            return Err(Error::EntityNotFound(format!("policy {name} of user {}", user_arn(account, user))));
        }
        self.forget_identity(&user_arn(account, user));
        Ok(())
    }

    /// A user's policies as `(name, document)`.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn user_policies(&self, account: &str, user: &str) -> Result<Vec<(String, String)>> {
        Ok(self.meta.user_policies(account, user).await?)
    }

    /// Makes sure the default account exists and, given an administrator key, that its
    /// administrator (with `AdministratorAccess`) and the key `id` with `secret` exist,
    /// replacing a key of the same id.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn bootstrap(&self, admin_key: Option<(&str, &str)>) -> Result<()> {
        let account = self.authz.default_account().as_str();
        self.ensure_account(account, "default").await?;
        let Some((id, secret)) = admin_key else { return Ok(()) };
        match self.create_user(account, ADMIN_USER).await {
            Ok(_) | Err(Error::EntityAlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
        self.attach_user_policy(account, ADMIN_USER, "AdministratorAccess", None).await?;
        self.store_access_key(account, ADMIN_USER, id, secret, true).await
    }
}

impl Tokens {
    /// The credential of an access key, for verifying a signature; `None` for an unknown key or
    /// one whose sealed secret does not open under this server's key.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn credential(&self, access_key_id: &str) -> Result<Option<Credential>> {
        let id = access_key_id.to_owned();
        if let Some(hit) = self.authz.keys.cache.get(&id) {
            return Ok(hit);
        }
        let read_at = std::time::Instant::now();
        let found = self.meta.access_key(&id).await?.and_then(|k| {
            let secret = self.authz.keys.seal.open(&k.sealed_secret, k.id.as_bytes());
            if secret.is_none() {
                tracing::warn!(access_key = %k.id, "stored secret does not open under this server's key");
            }
            let secret = String::from_utf8(secret?).ok()?;
            Some(Credential::new(secret, user_arn(&k.account, &k.user)))
        });
        self.authz.keys.cache.insert(id, found.clone(), read_at);
        Ok(found)
    }

    /// A registry token for the caller (`GetAuthorizationToken`): it speaks for the caller and
    /// carries its rights, no more.
    ///
    /// # Errors
    /// `Unauthenticated` for an anonymous caller, authorization failures.
    pub async fn authorization_token(&self, caller: &Caller) -> Result<AuthorizationToken> {
        self.authorize(caller, Action::GetAuthorizationToken, Target::Registry, &[]).await?;
        let Caller::Principal(p) = caller else { return Err(Error::Unauthenticated) };
        let expires = std::time::SystemTime::now() + berth_auth::TOKEN_TTL;
        Ok(AuthorizationToken { password: self.authz.tokens.mint(p.account.as_str(), &p.arn, expires), expires })
    }
}

/// Shared handle so tests and callers can hold parsed policies cheaply.
pub(crate) type PolicySet = Arc<Vec<Arc<Policy>>>;
