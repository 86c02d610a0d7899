//! Zero-copy blob responses on HTTP/1.1 connections.
//!
//! hyper only sends bodies it is given as bytes, so a file cannot reach the socket through it
//! with `sendfile`. This crate bridges that. The connection's IO object, [`SendfileIo`], owns a
//! [`SendfileSlot`] that the request carries as an extension. A handler that wants to send part
//! of a file puts the file in the slot and answers with [`SendfileSlot::body`]: placeholder
//! chunks of the right total length that all point into one static buffer. hyper queues body
//! chunks without copying them (its vectored write strategy, chosen because `SendfileIo` says
//! it writes vectored), so every placeholder reaches `SendfileIo` by address. There it is
//! recognised and replaced by `sendfile` of as many bytes of the file, in order. hyper counts
//! the bytes exactly as if it had written the placeholders.
//!
//! Safety net: a placeholder with no file in the slot, or more placeholder bytes than the file
//! range holds, is an IO error that closes the connection. Placeholder bytes are never sent.
//! Use it only on HTTP/1.x requests that carry the slot (HTTP/2 frames its own data). TLS
//! connections get no slot (the bytes must pass through the cipher), so their blob bodies stream.
//!
//! [`transport`] holds what the listener tells the doors about a connection ([`Tls`]) and the
//! request-body inactivity limit ([`IdleTimeoutBody`]).

pub mod early;
pub mod transport;

use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::Stream;
use hyper_util::rt::TokioIo;
use tokio::io::Interest;
use tokio::net::TcpStream;
pub use transport::{BodyTimedOut, IdleTimeoutBody, Tls, is_body_timeout};

/// Size of one placeholder chunk.
const CHUNK: usize = 1 << 20;
static PLACEHOLDER: [u8; CHUNK] = [0; CHUNK];

fn is_placeholder(buf: &[u8]) -> bool {
    let base = PLACEHOLDER.as_ptr() as usize;
    let start = buf.as_ptr() as usize;
    !buf.is_empty() && start >= base && start + buf.len() <= base + CHUNK
}

struct Pending {
    file: File,
    offset: u64,
    remaining: u64,
}

/// The file a connection is sending, shared by the connection's IO and its current request.
#[derive(Clone, Default)]
pub struct SendfileSlot(Arc<Mutex<Option<Pending>>>);

impl SendfileSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers `len` bytes of `file` from `offset` and returns the body that sends them.
    pub fn body(&self, file: File, offset: u64, len: u64) -> impl Stream<Item = io::Result<Bytes>> + Send + use<> {
        *self.lock() = Some(Pending { file, offset, remaining: len });
        let chunk = CHUNK as u64;
        futures_util::stream::iter((0..len.div_ceil(chunk)).map(move |i| {
            let n = usize::try_from((len - i * chunk).min(chunk)).unwrap_or(CHUNK);
            Ok(Bytes::from_static(&PLACEHOLDER[..n]))
        }))
    }
}

/// A TCP connection's IO for hyper that turns placeholder chunks into `sendfile`.
pub struct SendfileIo {
    io: TokioIo<TcpStream>,
    slot: SendfileSlot,
}

impl SendfileIo {
    #[must_use]
    pub fn new(stream: TcpStream) -> (Self, SendfileSlot) {
        let slot = SendfileSlot::default();
        (SendfileIo { io: TokioIo::new(stream), slot: slot.clone() }, slot)
    }

    fn poll_sendfile(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let stream: &TcpStream = self.io.inner();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            let mut guard = self.slot.lock();
            let Some(p) = guard.as_mut() else {
                return Poll::Ready(Err(io::Error::other("placeholder body without a file to send")));
            };
            let n = usize::try_from(p.remaining).unwrap_or(usize::MAX).min(want);
            if n == 0 {
                return Poll::Ready(Err(io::Error::other("placeholder body longer than its file range")));
            }
            let sent = stream.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(stream, &p.file, Some(&mut p.offset), n).map_err(io::Error::from)
            });
            match sent {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Ok(k) => {
                    p.remaining -= k as u64;
                    if p.remaining == 0 {
                        *guard = None;
                    }
                    return Poll::Ready(Ok(k));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl hyper::rt::Read for SendfileIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SendfileIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if is_placeholder(buf) { self.poll_sendfile(cx, buf.len()) } else { Pin::new(&mut self.io).poll_write(cx, buf) }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs.iter().position(|b| is_placeholder(b)) {
            None => Pin::new(&mut self.io).poll_write_vectored(cx, bufs),
            Some(0) => self.poll_sendfile(cx, bufs[0].len()),
            // Write what precedes the first placeholder; hyper calls again for the rest.
            Some(i) => Pin::new(&mut self.io).poll_write_vectored(cx, &bufs[..i]),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use http_body_util::BodyExt;
    use hyper::body::Incoming;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    use super::*;

    /// A real hyper HTTP/1.1 server on loopback answers with placeholder bodies; a real hyper
    /// client must receive the file's exact bytes, for whole files and ranges, over one
    /// keep-alive connection.
    #[tokio::test]
    async fn placeholders_become_file_bytes() {
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&data).unwrap();
        let path = tmp.path().to_owned();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (io, slot) = SendfileIo::new(stream);
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let slot = slot.clone();
                let path = path.clone();
                async move {
                    let (offset, len): (u64, u64) = match req.uri().path() {
                        "/whole" => (0, 3_500_000),
                        _ => (1_048_570, 2_000_000),
                    };
                    let file = File::open(path).unwrap();
                    let body = http_body_util::StreamBody::new(futures_util::StreamExt::map(
                        slot.body(file, offset, len),
                        |r| r.map(hyper::body::Frame::data),
                    ));
                    Ok::<_, io::Error>(Response::builder().header("content-length", len).body(body).unwrap())
                }
            });
            hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await.unwrap();
        });

        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        for (path, want) in [("/whole", &data[..]), ("/range", &data[1_048_570..3_048_570]), ("/whole", &data[..])] {
            let req = Request::get(path).header("host", "x").body(http_body_util::Empty::<Bytes>::new()).unwrap();
            let resp = sender.send_request(req).await.unwrap();
            let got = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(got.len(), want.len(), "{path}");
            assert!(got[..] == *want, "{path}: bytes differ");
        }
    }

    #[test]
    fn only_the_static_buffer_is_a_placeholder() {
        assert!(is_placeholder(&PLACEHOLDER[..10]));
        assert!(is_placeholder(&PLACEHOLDER[CHUNK - 1..]));
        assert!(!is_placeholder(&PLACEHOLDER[..0]));
        let zeros = vec![0u8; 10];
        assert!(!is_placeholder(&zeros));
    }
}
