//! Configuration and where credentials come from.

use std::path::{Path, PathBuf};

/// Where an S3 blob store keeps its bytes and how it signs in.
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket, so several stores (or test runs) can share one bucket.
    pub prefix: Option<String>,
    /// The S3 endpoint URL, `http://` allowed (loopback test servers); `None` means AWS.
    pub endpoint: Option<String>,
    /// Signing region (`us-east-1` by default, and when empty).
    pub region: String,
    /// Path-style requests (`<endpoint>/<bucket>/<key>`) rather than virtual-hosted ones
    /// (`<bucket>.<host>/<key>`). Most S3-compatible servers want path style.
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

pub(crate) const DEFAULT_REGION: &str = "us-east-1";

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            prefix: None,
            endpoint: None,
            region: DEFAULT_REGION.to_owned(),
            path_style: false,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
        }
    }
}

impl S3Config {
    pub(crate) fn region(&self) -> &str {
        if self.region.is_empty() { DEFAULT_REGION } else { &self.region }
    }

    /// The endpoint as messages name it.
    pub(crate) fn endpoint_display(&self) -> String {
        match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_owned(),
            None => format!("https://s3.{}.amazonaws.com", self.region()),
        }
    }

    /// The URL the client is built with: a custom endpoint with virtual-hosted requests has
    /// the bucket in its host (object_store takes such an endpoint as the bucket's URL).
    pub(crate) fn client_endpoint(&self) -> Option<String> {
        let e = self.endpoint.as_deref()?.trim_end_matches('/');
        if self.path_style {
            return Some(e.to_owned());
        }
        Some(match e.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://{}.{rest}", self.bucket),
            None => format!("{}.{e}", self.bucket),
        })
    }
}

/// Static credentials: an access key, its secret and maybe a session token.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub key_id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Where credentials were looked for and what went wrong, in one line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialsError {
    #[error("S3 access_key_id is set without secret_access_key (or the other way round)")]
    Partial,
    #[error("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY (or the other way round)")]
    PartialEnv,
    #[error("cannot read AWS credentials file {}: {source}", path.display())]
    File { path: PathBuf, source: ini::Error },
    #[error("AWS profile '{profile}' in {} has no aws_access_key_id and aws_secret_access_key", path.display())]
    Profile { profile: String, path: PathBuf },
}

/// Credentials in the usual order: the configured ones, then `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, then the profile `AWS_PROFILE` (or `default`)
/// in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`).
/// `Ok(None)` when none is found; a profile named by `AWS_PROFILE` must exist.
pub(crate) fn resolve(
    cfg: &S3Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>, CredentialsError> {
    match (&cfg.access_key_id, &cfg.secret_access_key) {
        (Some(key_id), Some(secret)) => {
            return Ok(Some(Credentials {
                key_id: key_id.clone(),
                secret: secret.clone(),
                token: cfg.session_token.clone(),
            }));
        }
        (None, None) => {}
        _ => return Err(CredentialsError::Partial),
    }
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(key_id), Some(secret)) => {
            return Ok(Some(Credentials { key_id, secret, token: var("AWS_SESSION_TOKEN") }));
        }
        (None, None) => {}
        _ => return Err(CredentialsError::PartialEnv),
    }
    let path = match var("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => PathBuf::from(p),
        None => match var("HOME") {
            Some(home) => Path::new(&home).join(".aws").join("credentials"),
            None => return Ok(None),
        },
    };
    let named = var("AWS_PROFILE");
    let profile = named.clone().unwrap_or_else(|| "default".to_owned());
    let ini = match ini::Ini::load_from_file(&path) {
        Ok(ini) => ini,
        Err(ini::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && named.is_none() => return Ok(None),
        Err(source) => return Err(CredentialsError::File { path, source }),
    };
    let Some(section) = ini.section(Some(profile.as_str())) else {
        return if named.is_some() { Err(CredentialsError::Profile { profile, path }) } else { Ok(None) };
    };
    let get = |k: &str| section.get(k).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(key_id), Some(secret)) => Ok(Some(Credentials { key_id, secret, token: get("aws_session_token") })),
        _ => Err(CredentialsError::Profile { profile, path }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| map.get(k).cloned()
    }

    fn creds(key_id: &str, secret: &str, token: Option<&str>) -> Option<Credentials> {
        Some(Credentials { key_id: key_id.into(), secret: secret.into(), token: token.map(Into::into) })
    }

    #[test]
    fn explicit_then_environment_then_profile() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "# comment\n[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n\n\
             [ci]\naws_access_key_id=CI\naws_secret_access_key=cisecret\naws_session_token=citoken\n\
             [empty]\nregion = eu-west-1\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let explicit = S3Config {
            access_key_id: Some("EXP".into()),
            secret_access_key: Some("expsecret".into()),
            session_token: Some("tok".into()),
            ..S3Config::default()
        };
        let all = env(&[
            ("AWS_ACCESS_KEY_ID", "ENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SHARED_CREDENTIALS_FILE", file),
        ]);
        let none = S3Config::default();
        assert_eq!(resolve(&explicit, &all).unwrap(), creds("EXP", "expsecret", Some("tok")));
        assert_eq!(resolve(&none, &all).unwrap(), creds("ENV", "envsecret", None));
        let profile_only = env(&[("AWS_SHARED_CREDENTIALS_FILE", file)]);
        assert_eq!(resolve(&none, &profile_only).unwrap(), creds("DEF", "defsecret", None));
        let ci = env(&[("AWS_SHARED_CREDENTIALS_FILE", file), ("AWS_PROFILE", "ci")]);
        assert_eq!(resolve(&none, &ci).unwrap(), creds("CI", "cisecret", Some("citoken")));
        let missing = env(&[("AWS_SHARED_CREDENTIALS_FILE", file), ("AWS_PROFILE", "nope")]);
        assert!(matches!(resolve(&none, &missing), Err(CredentialsError::Profile { .. })));
        let keyless = env(&[("AWS_SHARED_CREDENTIALS_FILE", file), ("AWS_PROFILE", "empty")]);
        assert!(matches!(resolve(&none, &keyless), Err(CredentialsError::Profile { .. })));
    }

    #[test]
    fn nothing_found_or_half_set() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let none = S3Config::default();
        assert_eq!(resolve(&none, &env(&[("HOME", home)])).unwrap(), None);
        assert_eq!(resolve(&none, &env(&[])).unwrap(), None);
        let half = S3Config { access_key_id: Some("A".into()), ..S3Config::default() };
        assert!(matches!(resolve(&half, &env(&[])), Err(CredentialsError::Partial)));
        assert!(matches!(resolve(&none, &env(&[("AWS_ACCESS_KEY_ID", "A")])), Err(CredentialsError::PartialEnv)));
        // A profile asked for by name must be there.
        let named = env(&[("HOME", home), ("AWS_PROFILE", "prod")]);
        assert!(matches!(resolve(&none, &named), Err(CredentialsError::File { .. })));
    }

    #[test]
    fn endpoints() {
        let mut cfg = S3Config {
            bucket: "b".into(),
            endpoint: Some("http://127.0.0.1:7490/".into()),
            path_style: true,
            ..S3Config::default()
        };
        assert_eq!(cfg.client_endpoint().as_deref(), Some("http://127.0.0.1:7490"));
        assert_eq!(cfg.endpoint_display(), "http://127.0.0.1:7490");
        cfg.path_style = false;
        cfg.endpoint = Some("https://s3.example.test".into());
        assert_eq!(cfg.client_endpoint().as_deref(), Some("https://b.s3.example.test"));
        cfg.endpoint = None;
        assert_eq!(cfg.client_endpoint(), None);
        assert_eq!(cfg.endpoint_display(), "https://s3.us-east-1.amazonaws.com");
        cfg.region = "eu-west-3".into();
        assert_eq!(cfg.endpoint_display(), "https://s3.eu-west-3.amazonaws.com");
        let shown = format!("{:?}", S3Config { secret_access_key: Some("hunter2".into()), ..S3Config::default() });
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
