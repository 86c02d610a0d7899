//! How an ECR request body is let in: never before its size and its signature's form are
//! known, and never more bytes at once, server-wide, than the memory set aside for it.
//!
//! The order, cheapest check first (issue 9: 40 unauthenticated 16 MiB bodies used to cost
//! 650 MiB):
//! 1. `Content-Length` is required (every AWS SDK and the CLI send it) and at most [`MAX_BODY`]:
//!    411 / 413 with `SerializationException`, before a byte of the body is read;
//! 2. the signature's form, scope (date, region, service), clock skew and access key are
//!    checked from the headers alone (`lib.rs`, `preauthenticate`); only the final signature
//!    check needs the body's hash;
//! 3. the body's length is reserved from a server-wide budget of bytes. When the budget is
//!    spent, the request waits up to [`QUEUE_WAIT`], then is answered `ThrottlingException`
//!    (status 400, as AWS does; the CLI and SDKs retry it with back-off);
//! 4. the body must then arrive: a stall longer than the server's body timeout fails it, and so
//!    does a trickle slower than [`MIN_RATE`] (after the body timeout's grace), with 408
//!    `RequestTimeoutException`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use http::{StatusCode, header};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::EcrError;

/// Largest request body accepted (PutImage carries a manifest of up to 4 MiB, JSON-escaped).
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long a request waits for room in the body budget before it is throttled.
pub const QUEUE_WAIT: Duration = Duration::from_secs(1);
/// Slowest body accepted on average, in bytes per second.
pub const MIN_RATE: u64 = 1024 * 1024;

/// The server-wide budget for ECR bodies in memory, and how long a body may take.
pub struct Intake {
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    body_timeout: Duration,
}

/// A body read in full, and its place in the budget (released when dropped).
pub struct Admitted {
    pub bytes: Bytes,
    _reserved: OwnedSemaphorePermit,
}

impl Intake {
    /// `budget_bytes` is raised to [`MAX_BODY`] if below it, so the largest body always fits.
    #[must_use]
    pub fn new(budget_bytes: usize, body_timeout: Duration) -> Self {
        let budget_bytes = budget_bytes.clamp(MAX_BODY, u32::MAX as usize);
        Intake { budget: Arc::new(Semaphore::new(budget_bytes)), budget_bytes, body_timeout }
    }

    /// The body's declared length, refused when missing or over [`MAX_BODY`].
    ///
    /// # Errors
    /// `SerializationException` with 411 or 413.
    pub fn declared_length(headers: &http::HeaderMap) -> Result<usize, EcrError> {
        let Some(v) = headers.get(header::CONTENT_LENGTH) else {
            return Err(EcrError {
                status: StatusCode::LENGTH_REQUIRED,
                ..EcrError::new("SerializationException", "a Content-Length header is required")
            });
        };
        let len = v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| EcrError::new("SerializationException", "the Content-Length header is not a number"))?;
        match usize::try_from(len) {
            Ok(n) if n <= MAX_BODY => Ok(n),
            _ => Err(EcrError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                ..EcrError::new(
                    "SerializationException",
                    format!("request body of {len} bytes is over the limit of {MAX_BODY} bytes"),
                )
            }),
        }
    }

    /// Reserves `len` bytes of the budget and reads the body into them.
    ///
    /// # Errors
    /// `ThrottlingException` when the budget stays spent, `RequestTimeoutException` (408) when
    /// the body stalls or trickles, `SerializationException` when it cannot be read.
    pub async fn admit(&self, len: usize, body: Body) -> Result<Admitted, EcrError> {
        let permits = u32::try_from(len).unwrap_or(u32::MAX);
        let reserved =
            match tokio::time::timeout(QUEUE_WAIT, Arc::clone(&self.budget).acquire_many_owned(permits)).await {
                Ok(Ok(p)) => p,
                _ => {
                    tracing::debug!(len, budget = self.budget_bytes, "ECR body budget spent: throttled");
                    return Err(EcrError::new(
                        "ThrottlingException",
                        "too many request bodies in flight on this server; retry with back-off",
                    ));
                }
            };
        let allowed = self.body_timeout + Duration::from_secs(len as u64 / MIN_RATE);
        let timed_out = |what: String| EcrError {
            status: StatusCode::REQUEST_TIMEOUT,
            ..EcrError::new("RequestTimeoutException", what)
        };
        match tokio::time::timeout(allowed, to_bytes(body, len)).await {
            Ok(Ok(bytes)) => Ok(Admitted { bytes, _reserved: reserved }),
            Ok(Err(e)) if berth_http_util::is_body_timeout(&e) => Err(timed_out(e.to_string())),
            Ok(Err(e)) => Err(EcrError::new("SerializationException", format!("request body could not be read: {e}"))),
            Err(_) => {
                Err(timed_out(format!("request body of {len} bytes not received within {} s", allowed.as_secs())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(len: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(l) = len {
            h.insert(header::CONTENT_LENGTH, l.parse().unwrap());
        }
        h
    }

    #[test]
    fn declared_length_is_required_and_bounded() {
        assert_eq!(Intake::declared_length(&headers(Some("12"))).unwrap(), 12);
        assert_eq!(Intake::declared_length(&headers(Some(&MAX_BODY.to_string()))).unwrap(), MAX_BODY);
        let e = Intake::declared_length(&headers(Some(&(MAX_BODY + 1).to_string()))).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::PAYLOAD_TOO_LARGE, "SerializationException"));
        let e = Intake::declared_length(&headers(Some("99999999999999999999999"))).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = Intake::declared_length(&headers(None)).unwrap_err();
        assert_eq!(e.status, StatusCode::LENGTH_REQUIRED);
    }

    #[tokio::test]
    async fn the_budget_throttles_and_is_given_back() {
        let intake = Intake::new(0, Duration::from_secs(5));
        assert_eq!(intake.budget_bytes, MAX_BODY, "the largest body always fits");
        let held = intake.admit(MAX_BODY - 10, Body::from(vec![7u8; MAX_BODY - 10])).await.unwrap();
        assert_eq!(held.bytes.len(), MAX_BODY - 10);
        let started = std::time::Instant::now();
        let e = intake.admit(100, Body::from(vec![1u8; 100])).await.err().unwrap();
        assert_eq!(e.code, "ThrottlingException");
        assert!(started.elapsed() < QUEUE_WAIT * 3, "throttled quickly");
        assert!(intake.admit(10, Body::from(vec![1u8; 10])).await.is_ok(), "what is left still fits");
        drop(held);
        assert!(intake.admit(100, Body::from(vec![1u8; 100])).await.is_ok(), "released with the body");
    }
}
