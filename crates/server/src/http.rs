//! The listener: accepts connections, serves HTTP/1.1 and h2c with hyper, gives each HTTP/1
//! connection a `SendfileSlot` so blob pulls go out with `sendfile`, and on shutdown stops
//! accepting and lets in-flight requests finish.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use berth_http_util::SendfileIo;
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::Service;

/// How long shutdown waits for in-flight requests.
const DRAIN: Duration = Duration::from_secs(30);

pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let builder = Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (io, slot) = SendfileIo::new(stream);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(slot.clone());
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let mut app = app.clone();
            async move { app.call(req).await }
        });
        let conn = graceful.watch(builder.serve_connection_with_upgrades(io, service).into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("in-flight requests did not finish in time"),
    }
}
