//! The one accept loop, shared by every listener: connection admission, optional TLS, HTTP/1.1
//! keep-alive with a header-read timeout (slow clients), and graceful shutdown that drains
//! in-flight requests for a bounded time.
//!
//! Admission keeps the listener open to clients under a flood of idle connections: a connection
//! that sends nothing within `first_byte_timeout` is closed, and when fewer than a twentieth of
//! `max_connections` are free, each new connection sheds the one that has been idle longest (no
//! request in progress, no bytes moved). Only when every connection is busy does accepting wait.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio_rustls::TlsAcceptor;

/// What a handler learns about the connection a request came on.
#[derive(Debug)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// The TLS peer's certificate, when the connection is TLS and the peer presented one.
    pub peer_cert: Option<CertificateDer<'static>>,
    /// The intermediate CA certificates the peer sent after its own.
    pub peer_intermediates: Vec<CertificateDer<'static>>,
    /// Until when the peer's certificates were last proven good (OCSP, Unix seconds): later
    /// requests on this connection need not prove it again before then.
    pub status_good_until: std::sync::atomic::AtomicI64,
    pub tls: bool,
}

pub type Response = http::Response<crate::body::Body>;

#[derive(Clone, Debug)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub max_headers: usize,
    pub header_read_timeout: Duration,
    /// A new connection that sends nothing this long is closed.
    pub first_byte_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Counters of one listener, for `/metrics`.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub open: AtomicUsize,
    /// Idle connections closed to make room for new ones.
    pub shed: AtomicU64,
    /// Connections closed for sending nothing within the first-byte timeout.
    pub silent: AtomicU64,
}

/// One open connection as admission sees it.
#[derive(Debug)]
struct Tracked {
    /// Requests being handled.
    busy: AtomicUsize,
    /// Milliseconds since the listener started, when bytes last moved either way.
    last_active: AtomicU64,
    /// Asked to close; not picked again.
    shedding: AtomicBool,
    close: Notify,
}

struct Admission {
    slots: Arc<Semaphore>,
    /// Shedding starts when fewer slots than this are free.
    reserve: usize,
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    stats: Arc<ListenerStats>,
}

impl Admission {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn register(&self) -> (u64, Arc<Tracked>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let t = Arc::new(Tracked {
            busy: AtomicUsize::new(0),
            last_active: AtomicU64::new(self.now_ms()),
            shedding: AtomicBool::new(false),
            close: Notify::new(),
        });
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, t.clone());
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        (id, t)
    }

    fn unregister(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Asks the connection idle longest to close; none when every connection is busy.
    fn shed_one(&self) {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let victim = conns
            .values()
            .filter(|t| t.busy.load(Ordering::Relaxed) == 0 && !t.shedding.load(Ordering::Relaxed))
            .min_by_key(|t| t.last_active.load(Ordering::Relaxed));
        if let Some(t) = victim {
            t.shedding.store(true, Ordering::Relaxed);
            // Stored, so a connection that has not yet started waiting still sees it.
            t.close.notify_one();
            self.stats.shed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Serves `listener` until `shutdown` flips to true, then drains for at most `shutdown_grace`.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ListenerLimits,
    stats: Arc<ListenerStats>,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(http::Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let admission = Arc::new(Admission {
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        reserve: (limits.max_connections / 20).max(1),
        epoch: Instant::now(),
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        stats,
    });
    let (conn_done_tx, mut conn_done_rx) = tokio::sync::mpsc::channel::<()>(1);
    loop {
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
        let permit = match admission.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Full: make room by shedding an idle connection, else wait for a busy one.
                admission.shed_one();
                tokio::select! {
                    _ = shutdown.changed() => break,
                    p = admission.slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        if admission.slots.available_permits() < admission.reserve {
            admission.shed_one();
        }
        let _ = tcp.set_nodelay(true);
        let (id, tracked) = admission.register();
        let io = Activity {
            inner: tcp,
            tracked: tracked.clone(),
            epoch: admission.epoch,
        };
        let tls = tls.clone();
        let handler = handler.clone();
        let limits = limits.clone();
        let mut shutdown = shutdown.clone();
        let done = conn_done_tx.clone();
        let admission = admission.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _done = done;
            let conn = Conn {
                tracked: &tracked,
                limits: &limits,
                stats: &admission.stats,
            };
            let _registered = Registered(&admission, id);
            conn.serve(io, remote, tls, &mut shutdown, handler).await;
        });
    }
    drop(listener);
    drop(conn_done_tx);
    // Every connection task holds a sender; recv() returns None once all have finished.
    let _ = tokio::time::timeout(limits.shutdown_grace, conn_done_rx.recv()).await;
}

struct Conn<'a> {
    tracked: &'a Arc<Tracked>,
    limits: &'a ListenerLimits,
    stats: &'a ListenerStats,
}

impl Conn<'_> {
    async fn serve<H, F>(
        &self,
        io: Activity<tokio::net::TcpStream>,
        remote: SocketAddr,
        tls: Option<TlsAcceptor>,
        shutdown: &mut watch::Receiver<bool>,
        handler: H,
    ) where
        H: Fn(http::Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        // Nothing is allocated for a connection (no TLS state, no HTTP buffers) until it sends
        // its first byte; one that stays silent is closed.
        // `peek` waits for data (`readable` may wake early); 0 bytes is the peer closing.
        let mut first = [0u8; 1];
        tokio::select! {
            r = io.inner.peek(&mut first) => if !matches!(r, Ok(1..)) { return },
            _ = tokio::time::sleep(self.limits.first_byte_timeout) => {
                self.stats.silent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ = self.tracked.close.notified() => return,
            _ = shutdown.changed() => return,
        }
        let Some(acceptor) = tls else {
            let info = Arc::new(ConnInfo {
                remote,
                peer_cert: None,
                peer_intermediates: Vec::new(),
                status_good_until: Default::default(),
                tls: false,
            });
            // Boxed, as the handshake below: a waiting connection's task holds only small state.
            return Box::pin(self.http(TokioIo::new(io), info, shutdown, handler)).await;
        };
        let handshake = async {
            tokio::time::timeout(
                self.limits.header_read_timeout,
                Box::pin(acceptor.accept(io)),
            )
            .await
        };
        let accepted = tokio::select! {
            r = handshake => r,
            _ = self.tracked.close.notified() => return,
        };
        let stream = match accepted {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        };
        let presented = stream.get_ref().1.peer_certificates().unwrap_or_default();
        let info = Arc::new(ConnInfo {
            remote,
            peer_cert: presented.first().map(|c| c.clone().into_owned()),
            peer_intermediates: presented
                .iter()
                .skip(1)
                .map(|c| c.clone().into_owned())
                .collect(),
            status_good_until: Default::default(),
            tls: true,
        });
        Box::pin(self.http(TokioIo::new(stream), info, shutdown, handler)).await
    }

    async fn http<I, H, F>(
        &self,
        io: TokioIo<I>,
        info: Arc<ConnInfo>,
        shutdown: &mut watch::Receiver<bool>,
        handler: H,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        H: Fn(http::Request<Incoming>, Arc<ConnInfo>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        let tracked = self.tracked.clone();
        let service = service_fn(move |req| {
            let busy = Busy::start(&tracked);
            let fut = handler(req, info.clone());
            async move {
                let resp = fut.await;
                drop(busy);
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_headers(self.limits.max_headers)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = self.shed() => {}
            _ = shutdown.changed() => {
                // Finish the request in progress, then close.
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }

    /// Resolves when admission asks this connection to make room and it is still idle.
    async fn shed(&self) {
        loop {
            self.tracked.close.notified().await;
            if self.tracked.busy.load(Ordering::Relaxed) == 0 {
                return;
            }
            // A request started meanwhile: it is served, and the connection may be picked again.
            self.tracked.shedding.store(false, Ordering::Relaxed);
        }
    }
}

/// Takes a connection out of admission's view when its task ends, however it ends.
struct Registered<'a>(&'a Admission, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.unregister(self.1);
    }
}

/// Marks a connection busy while one of its requests is handled.
struct Busy(Arc<Tracked>);

impl Busy {
    fn start(t: &Arc<Tracked>) -> Busy {
        t.busy.fetch_add(1, Ordering::Relaxed);
        Busy(t.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's stream that records when bytes last moved.
struct Activity<S> {
    inner: S,
    tracked: Arc<Tracked>,
    epoch: Instant,
}

impl<S> Activity<S> {
    fn touch(&self) {
        self.tracked
            .last_active
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Binds `addr` with a listen backlog of `backlog`, turning the error into a sentence that names
/// the address.
pub async fn bind(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
    let sock_addr = tokio::net::lookup_host(addr)
        .await
        .map_err(named)?
        .next()
        .ok_or_else(|| named(std::io::Error::other("no address")))?;
    let socket = if sock_addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(named)?;
    socket.set_reuseaddr(true).map_err(named)?;
    socket.bind(sock_addr).map_err(named)?;
    socket.listen(backlog).map_err(named)
}

/// Takes a listener bound elsewhere (tests bind port 0 first) with the configured backlog.
pub fn adopt(l: std::net::TcpListener, backlog: u32) -> std::io::Result<TcpListener> {
    l.set_nonblocking(true)?;
    // listen() again on a listening socket only changes its backlog.
    socket2::SockRef::from(&l).listen(backlog.min(i32::MAX as u32) as i32)?;
    TcpListener::from_std(l)
}

/// Whether every address `addr` names is a loopback address (`127.0.0.1:8080`, `[::1]:8080`,
/// `localhost:8080`).
pub fn is_loopback(addr: &str) -> bool {
    match addr.parse::<SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => addr
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}
