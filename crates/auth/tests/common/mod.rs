//! What the test files share: a request held by value, as a server receives it.

use std::time::SystemTime;

use berth_auth::{CredentialStore, Request, Verified, Verifier, canonical::sha256_hex};

#[derive(Debug, Clone)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    /// The headers in the borrowed form the verifier and the canonical functions take.
    pub fn borrowed_headers(&self) -> Vec<(&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect()
    }

    /// Verifies the request as a server would, hashing the body itself.
    pub fn verify_with<S: CredentialStore + ?Sized>(
        &self,
        verifier: &Verifier,
        store: &S,
        now: SystemTime,
    ) -> berth_auth::Result<Verified> {
        let headers = self.borrowed_headers();
        let body_sha256 = sha256_hex(&self.body);
        let req = Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body_sha256: &body_sha256,
        };
        verifier.verify(store, &req, now)
    }
}
