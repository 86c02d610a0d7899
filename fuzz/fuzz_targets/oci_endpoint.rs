//! `/v2` request lines: the method (first byte), the path after `/v2/` and the query string.
#![no_main]

use berth_api_oci::{OciEndpoint, form_decode};
use http::Method;
use libfuzzer_sys::fuzz_target;

const METHODS: [Method; 7] =
    [Method::GET, Method::HEAD, Method::PUT, Method::PATCH, Method::POST, Method::DELETE, Method::OPTIONS];

fuzz_target!(|data: &[u8]| {
    let Some((m, rest)) = data.split_first() else { return };
    let Ok(rest) = std::str::from_utf8(rest) else { return };
    let method = &METHODS[usize::from(*m) % METHODS.len()];
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Ok(ep) = OciEndpoint::parse(method, path) {
        // What an endpoint names comes from the path, in order: the repository first, the
        // reference, digest or upload id last.
        let (repo, last) = match &ep {
            OciEndpoint::Catalog => {
                assert_eq!(path, "_catalog");
                (None, None)
            }
            OciEndpoint::TagsList { repo } | OciEndpoint::UploadStart { repo } => (Some(repo), None),
            OciEndpoint::Manifest { repo, reference: l }
            | OciEndpoint::Blob { repo, digest: l }
            | OciEndpoint::Upload { repo, id: l }
            | OciEndpoint::Referrers { repo, digest: l } => (Some(repo), Some(l)),
        };
        if let Some(repo) = repo {
            assert!(path.starts_with(repo.as_str()), "{path:?} does not start with {repo:?}");
        }
        if let Some(last) = last {
            assert!(path.ends_with(last.as_str()), "{path:?} does not end with {last:?}");
        }
        assert!(!ep.name().is_empty());
    }
    let pairs = form_decode(query);
    assert!(pairs.len() <= query.split('&').count());
});
