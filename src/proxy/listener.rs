//! Accept loop shared by every listener: connection cap, optional TLS, HTTP/1.1 keep-alive with a
//! header-read timeout (slow clients), and graceful shutdown that drains in-flight requests for a
//! bounded time.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

/// What a handler learns about the connection a request came on.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// The TLS peer's certificate, when the connection is TLS and the peer presented one.
    pub peer_cert: Option<CertificateDer<'static>>,
    pub tls: bool,
}

pub type Response = http::Response<super::body::Body>;

#[derive(Clone, Debug)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub max_headers: usize,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Serves `listener` until `shutdown` flips to true, then drains for at most `shutdown_grace`.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ListenerLimits,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(http::Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (conn_done_tx, mut conn_done_rx) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let permit = tokio::select! {
            _ = shutdown.changed() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, remote) = tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let handler = handler.clone();
        let limits = limits.clone();
        let mut shutdown = shutdown.clone();
        let done = conn_done_tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _done = done;
            match tls {
                None => {
                    let info = Arc::new(ConnInfo {
                        remote,
                        peer_cert: None,
                        tls: false,
                    });
                    serve_conn(TokioIo::new(tcp), info, &limits, &mut shutdown, handler).await
                }
                Some(acceptor) => {
                    let accepted =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp))
                            .await;
                    let stream = match accepted {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let peer_cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| c.clone().into_owned());
                    let info = Arc::new(ConnInfo {
                        remote,
                        peer_cert,
                        tls: true,
                    });
                    serve_conn(TokioIo::new(stream), info, &limits, &mut shutdown, handler).await
                }
            }
        });
    }
    drop(listener);
    drop(conn_done_tx);
    // Every connection task holds a sender; recv() returns None once all have finished.
    let _ = tokio::time::timeout(limits.shutdown_grace, conn_done_rx.recv()).await;
}

async fn serve_conn<I, H, F>(
    io: TokioIo<I>,
    info: Arc<ConnInfo>,
    limits: &ListenerLimits,
    shutdown: &mut watch::Receiver<bool>,
    handler: H,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(http::Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let service = service_fn(move |req| {
        let fut = handler(req, info.clone());
        async move { Ok::<_, std::convert::Infallible>(fut.await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            // Finish the request in progress, then close.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Binds `addr`, turning the error into a sentence that names the address.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
