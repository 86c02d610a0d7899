//! `OciEndpoint::parse`: the distribution-spec routes as one table, matched from the right so
//! repository names of any depth work.

use http::Method;

/// A distribution-spec endpoint, before its path parts are validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciEndpoint {
    Catalog,
    TagsList { repo: String },
    Manifest { repo: String, reference: String },
    Blob { repo: String, digest: String },
    UploadStart { repo: String },
    Upload { repo: String, id: String },
    Referrers { repo: String, digest: String },
}

/// Why a path/method pair names no endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed,
}

impl OciEndpoint {
    /// The endpoint's name, used for spans and metrics.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            OciEndpoint::Catalog => "catalog",
            OciEndpoint::TagsList { .. } => "tags_list",
            OciEndpoint::Manifest { .. } => "manifest",
            OciEndpoint::Blob { .. } => "blob",
            OciEndpoint::UploadStart { .. } => "upload_start",
            OciEndpoint::Upload { .. } => "upload",
            OciEndpoint::Referrers { .. } => "referrers",
        }
    }

    /// Parses `rest`, the path after `/v2/`.
    ///
    /// # Errors
    /// `NotFound` when the path names no endpoint, `MethodNotAllowed` when the endpoint exists
    /// but not for `method`.
    pub fn parse(method: &Method, rest: &str) -> Result<Self, RouteError> {
        let (ep, allowed): (OciEndpoint, &[Method]) = Self::route(rest).ok_or(RouteError::NotFound)?;
        if allowed.contains(method) { Ok(ep) } else { Err(RouteError::MethodNotAllowed) }
    }

    fn route(rest: &str) -> Option<(OciEndpoint, &'static [Method])> {
        const READ: &[Method] = &[Method::GET, Method::HEAD];
        const MANIFEST: &[Method] = &[Method::GET, Method::HEAD, Method::PUT, Method::DELETE];
        const BLOB: &[Method] = &[Method::GET, Method::HEAD, Method::DELETE];
        const UPLOAD: &[Method] = &[Method::GET, Method::PATCH, Method::PUT, Method::DELETE];
        if rest == "_catalog" {
            return Some((OciEndpoint::Catalog, READ));
        }
        if let Some(repo) = rest.strip_suffix("/tags/list") {
            return Some((OciEndpoint::TagsList { repo: repo.to_owned() }, READ));
        }
        let trimmed = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(repo) = trimmed.strip_suffix("/blobs/uploads") {
            return Some((OciEndpoint::UploadStart { repo: repo.to_owned() }, &[Method::POST]));
        }
        let (head, last) = rest.rsplit_once('/')?;
        let (head, kind) = head.rsplit_once('/')?;
        if last.is_empty() || head.is_empty() {
            return None;
        }
        let (repo, last) = (head.to_owned(), last.to_owned());
        match kind {
            "manifests" => Some((OciEndpoint::Manifest { repo, reference: last }, MANIFEST)),
            "referrers" => Some((OciEndpoint::Referrers { repo, digest: last }, READ)),
            "uploads" => {
                let repo = head.strip_suffix("/blobs")?.to_owned();
                Some((OciEndpoint::Upload { repo, id: last }, UPLOAD))
            }
            "blobs" => Some((OciEndpoint::Blob { repo, digest: last }, BLOB)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(m: Method, rest: &str) -> Result<OciEndpoint, RouteError> {
        OciEndpoint::parse(&m, rest)
    }
    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn every_spec_route() {
        use OciEndpoint::*;
        let d = "sha256:abc";
        let cases: Vec<(Method, &str, OciEndpoint)> = vec![
            (Method::GET, "_catalog", Catalog),
            (Method::GET, "a/b/tags/list", TagsList { repo: s("a/b") }),
            (Method::GET, "team/app/api/manifests/v1", Manifest { repo: s("team/app/api"), reference: s("v1") }),
            (Method::HEAD, "x/manifests/sha256:abc", Manifest { repo: s("x"), reference: s(d) }),
            (Method::PUT, "x/manifests/v1", Manifest { repo: s("x"), reference: s("v1") }),
            (Method::DELETE, "x/manifests/v1", Manifest { repo: s("x"), reference: s("v1") }),
            (Method::GET, "x/y/blobs/sha256:abc", Blob { repo: s("x/y"), digest: s(d) }),
            (Method::HEAD, "x/blobs/sha256:abc", Blob { repo: s("x"), digest: s(d) }),
            (Method::DELETE, "x/blobs/sha256:abc", Blob { repo: s("x"), digest: s(d) }),
            (Method::POST, "x/y/blobs/uploads/", UploadStart { repo: s("x/y") }),
            (Method::POST, "x/y/blobs/uploads", UploadStart { repo: s("x/y") }),
            (Method::PATCH, "x/y/blobs/uploads/u1", Upload { repo: s("x/y"), id: s("u1") }),
            (Method::PUT, "x/blobs/uploads/u1", Upload { repo: s("x"), id: s("u1") }),
            (Method::GET, "x/blobs/uploads/u1", Upload { repo: s("x"), id: s("u1") }),
            (Method::DELETE, "x/blobs/uploads/u1", Upload { repo: s("x"), id: s("u1") }),
            (Method::GET, "x/referrers/sha256:abc", Referrers { repo: s("x"), digest: s(d) }),
            // Repository components that look like endpoint words still parse from the right.
            (Method::GET, "blobs/manifests/manifests/v1", Manifest { repo: s("blobs/manifests"), reference: s("v1") }),
            (Method::GET, "tags/blobs/blobs/sha256:abc", Blob { repo: s("tags/blobs"), digest: s(d) }),
        ];
        for (m, rest, want) in cases {
            assert_eq!(p(m.clone(), rest), Ok(want), "{m} {rest}");
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(p(Method::POST, "x/manifests/v1"), Err(RouteError::MethodNotAllowed));
        assert_eq!(p(Method::PUT, "x/blobs/sha256:abc"), Err(RouteError::MethodNotAllowed));
        assert_eq!(p(Method::GET, "x/blobs/uploads/"), Err(RouteError::MethodNotAllowed));
        assert_eq!(p(Method::DELETE, "_catalog"), Err(RouteError::MethodNotAllowed));
        for bad in ["", "x", "x/other/y", "/manifests/v1", "x/manifests/", "x/blobs/uploads/u1/extra"] {
            assert_eq!(p(Method::GET, bad), Err(RouteError::NotFound), "{bad}");
        }
    }
}
