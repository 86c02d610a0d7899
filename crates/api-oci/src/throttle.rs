//! Request-rate limits on `/v2`: each endpoint counts against the ECR operation it maps to
//! (the core's `throttle`), and a refused request is `429 TOOMANYREQUESTS` with `Retry-After`.

use berth_registry::{Caller, Registry, Throttled};
use http::{Method, header};

use crate::endpoint::OciEndpoint;
use crate::error::{self, OciError};

/// The ECR operation a `/v2` request counts as: the one whose IAM action the core checks for
/// it (a manifest GET is `BatchGetImage`, a blob GET `GetDownloadUrlForLayer`, ...).
#[must_use]
pub fn operation(ep: &OciEndpoint, method: &Method) -> &'static str {
    match (ep, method) {
        (OciEndpoint::Catalog, _) => "DescribeRepositories",
        (OciEndpoint::TagsList { .. }, _) => "ListImages",
        (OciEndpoint::Manifest { .. }, &Method::PUT) => "PutImage",
        (OciEndpoint::Manifest { .. } | OciEndpoint::Blob { .. }, &Method::DELETE) => "BatchDeleteImage",
        (OciEndpoint::Manifest { .. } | OciEndpoint::Referrers { .. }, _) => "BatchGetImage",
        (OciEndpoint::Blob { .. }, &Method::HEAD) => "BatchCheckLayerAvailability",
        (OciEndpoint::Blob { .. }, _) => "GetDownloadUrlForLayer",
        (OciEndpoint::UploadStart { .. }, _) => "InitiateLayerUpload",
        (OciEndpoint::Upload { .. }, &Method::PUT) => "CompleteLayerUpload",
        (OciEndpoint::Upload { .. }, _) => "UploadLayerPart",
    }
}

pub(crate) fn admit(reg: &Registry, who: &Caller, ep: &OciEndpoint, method: &Method) -> Result<(), OciError> {
    reg.throttle(who, operation(ep, method)).map_err(|t| too_many_requests(&t))
}

fn too_many_requests(t: &Throttled) -> OciError {
    OciError::new(error::TOOMANYREQUESTS, t.to_string())
        .with_header(header::RETRY_AFTER, t.retry_after_secs().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_counts_as_the_operation_whose_action_it_needs() {
        let repo = || "team/app".to_owned();
        let digest = || format!("sha256:{}", "a".repeat(64));
        let cases = [
            (OciEndpoint::Catalog, Method::GET, "DescribeRepositories"),
            (OciEndpoint::TagsList { repo: repo() }, Method::GET, "ListImages"),
            (OciEndpoint::Manifest { repo: repo(), reference: "v1".into() }, Method::GET, "BatchGetImage"),
            (OciEndpoint::Manifest { repo: repo(), reference: "v1".into() }, Method::HEAD, "BatchGetImage"),
            (OciEndpoint::Manifest { repo: repo(), reference: "v1".into() }, Method::PUT, "PutImage"),
            (OciEndpoint::Manifest { repo: repo(), reference: "v1".into() }, Method::DELETE, "BatchDeleteImage"),
            (OciEndpoint::Blob { repo: repo(), digest: digest() }, Method::HEAD, "BatchCheckLayerAvailability"),
            (OciEndpoint::Blob { repo: repo(), digest: digest() }, Method::GET, "GetDownloadUrlForLayer"),
            (OciEndpoint::Blob { repo: repo(), digest: digest() }, Method::DELETE, "BatchDeleteImage"),
            (OciEndpoint::UploadStart { repo: repo() }, Method::POST, "InitiateLayerUpload"),
            (OciEndpoint::Upload { repo: repo(), id: "u".into() }, Method::PATCH, "UploadLayerPart"),
            (OciEndpoint::Upload { repo: repo(), id: "u".into() }, Method::GET, "UploadLayerPart"),
            (OciEndpoint::Upload { repo: repo(), id: "u".into() }, Method::DELETE, "UploadLayerPart"),
            (OciEndpoint::Upload { repo: repo(), id: "u".into() }, Method::PUT, "CompleteLayerUpload"),
            (OciEndpoint::Referrers { repo: repo(), digest: digest() }, Method::GET, "BatchGetImage"),
        ];
        for (ep, method, op) in cases {
            assert_eq!(operation(&ep, &method), op, "{} {method}", ep.name());
        }
    }

    #[test]
    fn a_refusal_is_429_with_retry_after_in_whole_seconds() {
        let t = Throttled { operation: "BatchGetImage".into(), retry_after: std::time::Duration::from_millis(1200) };
        let e = too_many_requests(&t);
        assert_eq!(e.code.status, http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.code.value, "TOOMANYREQUESTS");
        assert_eq!(e.headers, vec![(header::RETRY_AFTER, "2".to_owned())]);
        assert!(e.message.contains("BatchGetImage"), "{}", e.message);
    }
}
