//! What the listener tells the doors about a connection, and the request-body inactivity limit.
//!
//! [`Tls`] rides as a request extension on every request that came over TLS (policy's
//! `aws:SecureTransport`). [`IdleTimeoutBody`] wraps a request body so that a client which
//! stops sending fails the body with [`BodyTimedOut`] instead of holding the request forever.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Request extension: the request arrived over TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tls;

/// A request body made no progress for the configured time.
#[derive(Debug)]
pub struct BodyTimedOut(pub Duration);

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request body made no progress for {} s", self.0.as_secs())
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether `e` or one of its sources is a [`BodyTimedOut`].
#[must_use]
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        cur = err.source();
    }
    false
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that fails with [`BodyTimedOut`] when the client sends nothing for `limit`
/// while the handler waits for it.
///
/// The clock runs only while the handler is waiting on the client: it starts when a poll finds
/// no data and stops when data comes. Time the handler spends elsewhere between reads (writing
/// to disk, say) never counts against the client. It is an inactivity limit, not a deadline:
/// a 5 GiB layer that keeps flowing streams for as long as it takes.
pub struct IdleTimeoutBody<B> {
    inner: B,
    limit: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<B> IdleTimeoutBody<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        IdleTimeoutBody { inner, limit, waiting: None }
    }
}

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = None;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let limit = this.limit;
        let sleep = this.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.waiting = None;
                Poll::Ready(Some(Err(Box::new(BodyTimedOut(limit)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    /// A real hyper connection on loopback: a client that sends half a body and stops makes the
    /// server's body read fail with `BodyTimedOut` within the limit; one that keeps sending
    /// slowly (each gap under the limit) is read in full.
    #[tokio::test]
    async fn stalled_body_fails_and_slow_body_completes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limit = Duration::from_millis(300);
        tokio::spawn(async move {
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.unwrap();
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = IdleTimeoutBody::new(req.into_body(), limit);
                    let text = match body.collect().await {
                        Ok(c) => format!("ok {}", c.to_bytes().len()),
                        Err(e) if is_body_timeout(&*e) => "timeout".to_owned(),
                        Err(e) => format!("error {e}"),
                    };
                    Ok::<_, std::io::Error>(hyper::Response::new(http_body_util::Full::new(Bytes::from(text))))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc),
                );
            }
        });
        let head = "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\nconnection: close\r\n\r\n";
        for (gaps, want) in [(&[Duration::from_secs(3)][..], "timeout"), (&[Duration::from_millis(150); 3][..], "ok 6")]
        {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            let started = std::time::Instant::now();
            let mut reply = Vec::new();
            for gap in gaps {
                s.write_all(b"ab").await.unwrap();
                let read = tokio::time::timeout(*gap, s.read_to_end(&mut reply)).await;
                if read.is_ok() {
                    break;
                }
            }
            if reply.is_empty() {
                tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut reply)).await.unwrap().unwrap();
            }
            let reply = String::from_utf8_lossy(&reply);
            assert!(reply.ends_with(want), "{want}: got {reply}");
            if want == "timeout" {
                assert!(started.elapsed() < Duration::from_secs(2), "cut after {:?}", started.elapsed());
            }
        }
    }
}
