//! The listener: accepts connections, serves HTTP/1.1 and h2c (or, with TLS, HTTP/1.1 and h2 by
//! ALPN) with hyper, gives each plain HTTP/1 connection a `SendfileSlot` so blob pulls go out
//! with `sendfile`, and on shutdown stops accepting and lets in-flight requests finish.
//!
//! Hostile clients meet these limits (issue 9), each set in the configuration:
//! - **Header timeout**: a new connection must deliver its first request's head within
//!   `header_timeout_secs` of being accepted (a TLS handshake included), and on a kept-alive
//!   HTTP/1 connection a request head must be complete within that time of its first byte.
//!   Silent sockets and slowloris dribblers are closed.
//! - **Idle timeout**: a connection with no request in flight (request read and response fully
//!   sent) for `idle_timeout_secs` is closed; HTTP/2 gets a GOAWAY first, and keep-alive pings
//!   find dead HTTP/2 peers while streams are open.
//! - **Body timeout**: a request body that makes no progress for `body_timeout_secs` fails
//!   ([`IdleTimeoutBody`]); the upload path treats that as a failed chunk and keeps nothing of
//!   it. It is an inactivity limit, so multi-GiB layers stream for as long as they flow.
//! - **Connections per address**: over `max_connections_per_ip` open connections from one IP
//!   address, a new one is closed at once, before any byte is read.
//! - Refusals and accept errors are logged at most once per [`LOG_EVERY`], with a count of the
//!   ones not logged, so an attack cannot flood the log.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use berth_http_util::{IdleTimeoutBody, SendfileIo, SendfileSlot, Tls};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::Service;

use crate::tls::TlsAcceptor;

/// How long shutdown waits for in-flight requests.
const DRAIN: Duration = Duration::from_secs(30);
/// At most one log line per kind of refusal (over the per-address cap, accept errors) per this.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// After an idle connection is asked to close (HTTP/2 GOAWAY), how long it has to do so.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Largest HTTP/2 header list accepted (hyper's default is 16 MiB); HTTP/1 heads are bounded by
/// hyper's read buffer (about 400 KiB) and 100 headers. Over either, the answer is 431.
const H2_MAX_HEADER_LIST: u32 = 64 * 1024;

/// The limits every connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    /// 0: no cap.
    pub max_connections_per_ip: usize,
}

pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    // The watchdog below times request heads and idle time itself (hyper's h1 header timer
    // also runs while a kept-alive connection is idle, which would make the two one limit).
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .keep_alive_interval(Some(limits.idle_timeout.min(Duration::from_secs(30))))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let per_ip = Arc::new(PerIp::new(limits.max_connections_per_ip));
    let over_cap_log = Throttled::new(LOG_EVERY);
    let accept_log = Throttled::new(LOG_EVERY);
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    if let Some(skipped) = accept_log.note() {
                        tracing::warn!(error = %e, not_logged_since = skipped, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(permit) = per_ip.acquire(peer.ip()) else {
            if let Some(skipped) = over_cap_log.note() {
                tracing::warn!(
                    %peer,
                    cap = limits.max_connections_per_ip,
                    refused_not_logged = skipped,
                    "too many connections from one address: closing new ones"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn { app: app.clone(), builder: Arc::clone(&builder), limits, peer, stopped: stopped.clone() };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            conn.run(stream, tls).await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // `closed` waits for every receiver: the connections' clones, and this one.
    drop(stopped);
    tokio::select! {
        () = stop.closed() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("in-flight requests did not finish in time"),
    }
}

/// One accepted connection and what serving it needs.
struct Conn {
    app: Router,
    builder: Arc<Builder<TokioExecutor>>,
    limits: Limits,
    peer: SocketAddr,
    /// Becomes true when the server shuts down; all clones dropped means all connections ended.
    stopped: watch::Receiver<bool>,
}

impl Conn {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let activity = Arc::new(Activity::new());
        match tls {
            None => {
                let spare = spare_handle(stream);
                let Some((stream, spare)) = spare else { return };
                let (io, slot) = SendfileIo::new(stream);
                self.serve(Watched { io, activity: Arc::clone(&activity) }, Some(slot), activity).await;
                if let Some(spare) = spare {
                    linger(spare).await;
                }
            }
            Some(acceptor) => {
                // The handshake counts against the header timeout: a silent TLS client is a
                // silent socket.
                match tokio::time::timeout(self.limits.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        let io = TokioIo::new(tls_stream);
                        self.serve(Watched { io, activity: Arc::clone(&activity) }, None, activity).await;
                    }
                    Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn serve<I>(mut self, io: Watched<I>, slot: Option<SendfileSlot>, activity: Arc<Activity>)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let secure = slot.is_none();
        let (app, peer, body_timeout) = (self.app.clone(), self.peer, self.limits.body_timeout);
        let act = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let guard = act.begin(req.version());
            let mut req = req.map(|b| Body::new(IdleTimeoutBody::new(b, body_timeout)));
            if let Some(slot) = &slot {
                req.extensions_mut().insert(slot.clone());
            }
            if secure {
                req.extensions_mut().insert(Tls);
            }
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                let resp = app.call(req).await?;
                Ok::<_, std::convert::Infallible>(resp.map(|inner| Guarded { inner, _guard: guard }))
            }
        });
        let conn = self.builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);
        let limits = self.limits;
        let stopping = async {
            let _ = self.stopped.wait_for(|s| *s).await;
        };
        tokio::select! {
            r = conn.as_mut() => return log_end(r),
            () = activity.expired(&limits) => {}
            () = stopping => {
                // Server shutdown: let the request in flight finish (the server bounds the drain).
                conn.as_mut().graceful_shutdown();
                return log_end(conn.await);
            }
        }
        // Idle too long, or a request head too slow: ask nicely (HTTP/2 GOAWAY; an idle
        // HTTP/1 connection closes at once), then drop it.
        conn.as_mut().graceful_shutdown();
        if let Ok(r) = tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await {
            log_end(r);
        }
    }
}

/// The longest a closed connection's unread input is drained, and the most bytes read so.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 8 * 1024 * 1024;

/// The stream and a second handle on its socket, which keeps the socket open after the
/// connection's own handle is dropped (see [`linger`]).
fn spare_handle(stream: TcpStream) -> Option<(TcpStream, Option<std::net::TcpStream>)> {
    let std = stream.into_std().ok()?;
    let spare = std.try_clone().ok();
    Some((TcpStream::from_std(std).ok()?, spare))
}

/// Drains what the client still sends after the connection ended, briefly, before the socket
/// is closed. A refusal sent before the request's body was read (a chunk for a busy upload, no
/// credentials) ends the connection with that body unread; closing a socket with unread input
/// makes the kernel send a reset, which can destroy the answer on its way, and a proxy in front
/// (HAProxy, a cloud load balancer) then reports no answer at all. The answer was written and
/// the sending side shut down first, so the client has it; this only lets the socket close
/// cleanly (RFC 9112 §9.6, "lingering close").
async fn linger(spare: std::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = TcpStream::from_std(spare) else { return };
    let _ = s.shutdown().await;
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0usize;
    let _ = tokio::time::timeout(LINGER, async {
        while seen < LINGER_BYTES {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen += n,
            }
        }
    })
    .await;
}

fn log_end(r: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = r {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// What a connection is doing, for its watchdog. Times are milliseconds since it was accepted.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// When the last request in flight ended (its response fully sent), or 0.
    idle_since: AtomicU64,
    /// When the first byte after `idle_since` arrived (the next request's head), or `NONE`.
    first_byte: AtomicU64,
    served: AtomicBool,
    h2: AtomicBool,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(NONE),
            served: AtomicBool::new(false),
            h2: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn begin(self: &Arc<Self>, version: http::Version) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served.store(true, Ordering::Relaxed);
        if version == http::Version::HTTP_2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        InFlight(Arc::clone(self))
    }

    fn watching_for_head(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && self.first_byte.load(Ordering::Relaxed) == NONE
            && !self.h2.load(Ordering::Relaxed)
    }

    fn read_some(&self) {
        if self.in_flight.load(Ordering::SeqCst) == 0 && self.first_byte.load(Ordering::Relaxed) == NONE {
            self.first_byte.store(self.now(), Ordering::Relaxed);
        }
    }

    /// When the connection is to be closed if nothing changes; `None` while a request is in
    /// flight (its body has its own limit).
    fn deadline(&self, l: &Limits) -> Option<u64> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE / 2);
        let idle_since = self.idle_since.load(Ordering::SeqCst);
        if !self.served.load(Ordering::Relaxed) {
            return Some(ms(l.header_timeout));
        }
        let first = self.first_byte.load(Ordering::Relaxed);
        if first != NONE && !self.h2.load(Ordering::Relaxed) {
            return Some(first.saturating_add(ms(l.header_timeout)));
        }
        Some(idle_since.saturating_add(ms(l.idle_timeout)))
    }

    /// Completes when the connection has been idle, or slow to send a head, for too long.
    async fn expired(&self, l: &Limits) {
        let recheck = l.header_timeout.min(l.idle_timeout).max(Duration::from_millis(100));
        loop {
            let wait = match self.deadline(l) {
                None => recheck,
                Some(at) => {
                    let now = self.now();
                    if now >= at {
                        return;
                    }
                    Duration::from_millis(at - now)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request in flight; dropped with its response body (fully sent, or the connection gone).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        if a.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            a.first_byte.store(NONE, Ordering::Relaxed);
            a.idle_since.store(a.now(), Ordering::SeqCst);
        }
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct Guarded {
    inner: Body,
    _guard: InFlight,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's IO that tells its [`Activity`] when bytes arrive.
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        // While the connection waits for a request head, the bytes pass through a small
        // buffer so their arrival can be seen (hyper's cursor does not say how much a read
        // filled); everything else (bodies, HTTP/2 frames) is read straight through.
        if !self.activity.watching_for_head() || buf.remaining() == 0 {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let mut scratch = [0u8; 4096];
        let n = buf.remaining().min(scratch.len());
        let mut staged = hyper::rt::ReadBuf::new(&mut scratch[..n]);
        ready!(Pin::new(&mut self.io).poll_read(cx, staged.unfilled()))?;
        let got = staged.filled();
        if !got.is_empty() {
            self.activity.read_some();
            buf.put_slice(got);
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Open connections per client address.
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    fn new(max: usize) -> Self {
        PerIp { max, open: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        let mut open = self.lock();
        let n = open.entry(ip).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpPermit { table: Arc::clone(self), ip })
    }
}

struct IpPermit {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut open = self.table.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Lets one log line through per interval and counts the ones held back.
struct Throttled {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttled {
    fn new(every: Duration) -> Self {
        Throttled { every, state: Mutex::new((None, 0)) }
    }

    /// `Some(held back since the last line)` when a line may be written now.
    fn note(&self) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if s.0.is_some_and(|last| now.duration_since(last) < self.every) {
            s.1 += 1;
            return None;
        }
        s.0 = Some(now);
        Some(std::mem::take(&mut s.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_cap_counts_and_releases() {
        let t = Arc::new(PerIp::new(2));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let p1 = t.acquire(a).unwrap();
        let _p2 = t.acquire(a).unwrap();
        assert!(t.acquire(a).is_none(), "third from one address is refused");
        let _q = t.acquire(b).expect("another address still gets in");
        drop(p1);
        assert!(t.acquire(a).is_some(), "a closed connection frees its place");
        assert!(Arc::new(PerIp::new(0)).acquire(a).is_some(), "0 means no cap");
    }

    #[test]
    fn throttled_log_lets_one_line_through_per_interval() {
        let t = Throttled::new(Duration::from_secs(3600));
        assert_eq!(t.note(), Some(0));
        for _ in 0..1000 {
            assert_eq!(t.note(), None);
        }
        let t = Throttled::new(Duration::ZERO);
        assert_eq!(t.note(), Some(0));
        assert_eq!(t.note(), Some(0));
    }

    #[test]
    fn deadlines_follow_the_connection_state() {
        let l = Limits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections_per_ip: 0,
        };
        let a = Arc::new(Activity::new());
        assert_eq!(a.deadline(&l), Some(5_000), "a new connection has the header timeout");
        a.read_some();
        assert_eq!(a.deadline(&l), Some(5_000), "from accept, however the bytes dribble");
        let g = a.begin(http::Version::HTTP_11);
        assert_eq!(a.deadline(&l), None, "no limit while a request is in flight");
        drop(g);
        let idle = a.idle_since.load(Ordering::SeqCst);
        assert_eq!(a.deadline(&l), Some(idle + 60_000), "kept alive: the idle timeout");
        a.read_some();
        let first = a.first_byte.load(Ordering::Relaxed);
        assert_eq!(a.deadline(&l), Some(first + 5_000), "a new head has the header timeout");
        let h2 = Arc::new(Activity::new());
        drop(h2.begin(http::Version::HTTP_2));
        h2.read_some();
        let idle = h2.idle_since.load(Ordering::SeqCst);
        assert_eq!(h2.deadline(&l), Some(idle + 60_000), "HTTP/2 pings do not start a head");
    }
}
