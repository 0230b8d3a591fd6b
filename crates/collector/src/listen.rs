//! Both listeners' doors: how many connections may be open, from one
//! address and in all, and how long one may stay open saying nothing.
//!
//! A [`Gate`] admits a connection (or refuses it, logged and counted) and
//! wraps it in a [`Guarded`] stream that closes it when its deadline
//! passes: on the gRPC listener, a connection that has not sent a valid
//! hello by `collector.hello_timeout`; on the HTTP listener, one with
//! nothing read or written for the idle time (an idle keep-alive, a
//! stalled body). Without this, sockets that send nothing are held until
//! the file-descriptor limit locks agents and operators out. A shared leaf.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::time::Clock;

/// Refusals are logged at most this often per listener.
const LOG_EVERY_MS: i64 = 10_000;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address has `per_address` open already.
    PerAddress,
    /// The listener has `total` open already.
    Total,
}

/// One listener's admission and counts.
pub struct Gate {
    name: &'static str,
    per_address: usize,
    total: usize,
    clock: Arc<dyn Clock>,
    by_address: Mutex<HashMap<IpAddr, usize>>,
    open: AtomicUsize,
    refused_per_address: AtomicU64,
    refused_total: AtomicU64,
    timed_out: AtomicU64,
    last_log_ms: AtomicI64,
}

impl Gate {
    /// The gate of listener `name` (`grpc`, `http`).
    pub fn new(name: &'static str, per_address: usize, total: usize, clock: Arc<dyn Clock>) -> Arc<Gate> {
        Arc::new(Gate {
            name,
            per_address,
            total,
            clock,
            by_address: Mutex::default(),
            open: AtomicUsize::new(0),
            refused_per_address: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            last_log_ms: AtomicI64::new(i64::MIN),
        })
    }

    /// Admits a connection from `peer`, or says why not (logged, counted).
    pub fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Slot, Refusal> {
        let ip = peer.ip();
        let mut by = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let refusal = if self.open.load(Ordering::Relaxed) >= self.total {
            Some(Refusal::Total)
        } else if by.get(&ip).copied().unwrap_or(0) >= self.per_address {
            Some(Refusal::PerAddress)
        } else {
            None
        };
        if let Some(r) = refusal {
            drop(by);
            let (counter, why) = match r {
                Refusal::Total => (
                    &self.refused_total,
                    format!("{} connections open (collector.max_connections)", self.total),
                ),
                Refusal::PerAddress => (
                    &self.refused_per_address,
                    format!(
                        "{} connections open from {ip} (collector.max_connections_per_address)",
                        self.per_address
                    ),
                ),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let now = self.clock.now_ms();
            let last = self.last_log_ms.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= LOG_EVERY_MS
                && self
                    .last_log_ms
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(listener = self.name, peer = %peer, reason = %why, "connection refused");
            }
            return Err(r);
        }
        *by.entry(ip).or_insert(0) += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            gate: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Its counters in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let l = self.name;
        let _ = writeln!(
            out,
            "watchpost_connections_open{{listener=\"{l}\"}} {}\n\
             watchpost_connections_refused_total{{listener=\"{l}\",reason=\"per_address\"}} {}\n\
             watchpost_connections_refused_total{{listener=\"{l}\",reason=\"total\"}} {}\n\
             watchpost_connections_timed_out_total{{listener=\"{l}\"}} {}",
            self.open(),
            self.refused_per_address.load(Ordering::Relaxed),
            self.refused_total.load(Ordering::Relaxed),
            self.timed_out.load(Ordering::Relaxed),
        );
    }
}

/// The `# HELP` and `# TYPE` lines of the gates' metrics.
pub const METRICS_HELP: &str = "# HELP watchpost_connections_open Connections open now, per listener.\n\
# TYPE watchpost_connections_open gauge\n\
# HELP watchpost_connections_refused_total Connections refused at a cap (per address, in total).\n\
# TYPE watchpost_connections_refused_total counter\n\
# HELP watchpost_connections_timed_out_total Connections closed for saying nothing (no hello, idle).\n\
# TYPE watchpost_connections_timed_out_total counter\n";

/// An admitted connection's place; given back when dropped.
pub struct Slot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut by = self.gate.by_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = by.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by.remove(&self.ip);
            }
        }
        self.gate.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// When a guarded connection is closed for saying nothing.
#[derive(Debug, Clone)]
pub enum Deadline {
    /// After this, unless `hello` was set first (gRPC: a valid hello).
    Hello {
        /// How long it has.
        within: Duration,
        /// Set by the session on a valid hello.
        hello: Arc<AtomicBool>,
    },
    /// HTTP: the first bytes within `first`, then never `then` long with
    /// nothing read or written.
    Idle {
        /// For the first bytes (the header timeout).
        first: Duration,
        /// Between any two reads or writes after that.
        then: Duration,
    },
}

/// What the gRPC service learns of its connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer.
    pub remote: SocketAddr,
    /// Set on a valid hello: the connection's deadline is lifted.
    pub hello: Option<Arc<AtomicBool>>,
}

/// A connection with a deadline and a slot at its gate.
pub struct Guarded<IO> {
    io: IO,
    slot: Slot,
    remote: SocketAddr,
    deadline: Deadline,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<IO> Guarded<IO> {
    /// Wraps `io`, admitted as `slot`, from `remote`.
    pub fn new(io: IO, slot: Slot, remote: SocketAddr, deadline: Deadline) -> Guarded<IO> {
        let within = match &deadline {
            Deadline::Hello { within, .. } => *within,
            Deadline::Idle { first, .. } => *first,
        };
        Guarded {
            io,
            slot,
            remote,
            deadline,
            timer: Some(Box::pin(tokio::time::sleep(within))),
        }
    }

    /// The peer and the hello flag, for the service.
    pub fn info(&self) -> ConnInfo {
        ConnInfo {
            remote: self.remote,
            hello: match &self.deadline {
                Deadline::Hello { hello, .. } => Some(hello.clone()),
                Deadline::Idle { .. } => None,
            },
        }
    }

    /// Fails once the deadline has passed (registering for it otherwise).
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Deadline::Hello { hello, .. } = &self.deadline
            && hello.load(Ordering::Relaxed)
        {
            self.timer = None;
        }
        if let Some(t) = self.timer.as_mut()
            && t.as_mut().poll(cx).is_ready()
        {
            self.timer = None;
            self.slot.gate.timed_out.fetch_add(1, Ordering::Relaxed);
            let what = match self.deadline {
                Deadline::Hello { within, .. } => format!("no valid hello within {within:?}"),
                Deadline::Idle { then, .. } => {
                    format!("nothing read or written in time ({then:?} when idle)")
                }
            };
            tracing::debug!(listener = self.slot.gate.name, peer = %self.remote, reason = %what, "connection closed");
            // Poisoned: every later call fails too.
            self.timer = Some(Box::pin(tokio::time::sleep(Duration::ZERO)));
            return Err(io::Error::new(io::ErrorKind::TimedOut, what));
        }
        Ok(())
    }

    /// Something moved: an idle deadline starts again.
    fn progressed(&mut self) {
        if let (Deadline::Idle { then, .. }, Some(t)) = (&self.deadline, self.timer.as_mut()) {
            t.as_mut().reset(Instant::now() + *then);
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.progressed();
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        let r = Pin::new(&mut this.io).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.progressed();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static> tonic::transport::server::Connected
    for Guarded<IO>
{
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info()
    }
}

/// A connection that could not be accepted (out of file descriptors):
/// wait this long before the next attempt instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

async fn accept(listener: &tokio::net::TcpListener, what: &str) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(a) => return a,
            Err(e) => {
                tracing::warn!(listener = what, error = %e, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Pending connections the kernel queues for accept (the kernel caps it at
/// `net.core.somaxconn`): ten thousand agents reconnecting after a restart
/// arrive faster than one accept loop on a busy machine takes them, and a
/// full queue drops SYNs, which costs each dropped agent a 1 s retransmit.
const ACCEPT_QUEUE: u32 = 4096;

/// Binds a listener with a deep accept queue.
pub fn bind(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_QUEUE)
}

/// Raises the soft limit on open files to the hard limit (one descriptor
/// per agent stream and HTTP client); returns the limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "cannot raise the open-file limit to its hard limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The gRPC listener's connections, admitted by `gate`, each closed if it
/// has not said a valid hello within `hello_within`: the incoming stream
/// for tonic.
pub fn grpc_incoming(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate>,
    hello_within: Duration,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Guarded<tokio::net::TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                a = accept(&listener, "grpc") => a,
                _ = tx.closed() => return,
            };
            let Ok(slot) = gate.admit(peer) else {
                continue; // dropped: closed at once
            };
            let _ = tcp.set_nodelay(true);
            let deadline = Deadline::Hello {
                within: hello_within,
                hello: Arc::default(),
            };
            if tx
                .send(Ok(Guarded::new(tcp, slot, peer, deadline)))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Serves `app` (HTTP/1, over TLS when `acceptor` is given) until `stop`:
/// connections admitted by `gate`, the request head within
/// `limits.header_timeout`, closed after `limits.http_idle` with nothing
/// read or written; a body must arrive whole within `limits.body_timeout`.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    gate: Arc<Gate>,
    limits: crate::config::ConnectionLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_timeout,
    ));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            a = accept(&listener, "http") => a,
        };
        let Ok(slot) = gate.admit(peer) else {
            continue;
        };
        let deadline = Deadline::Idle {
            first: limits.header_timeout,
            then: limits.http_idle,
        };
        let io = Guarded::new(tcp, slot, peer, deadline);
        let (acceptor, stop) = (acceptor.clone(), stop.clone());
        let app = app
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(io, app, limits, stop).await,
                Some(acceptor) => {
                    // A client that never finishes its handshake holds nothing for long.
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(io)).await {
                        Ok(Ok(tls)) => serve_connection(tls, app, limits, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "no TLS handshake in time"),
                    }
                }
            }
        });
    }
}

async fn serve_connection<IO>(
    io: IO,
    app: axum::Router,
    limits: crate::config::ConnectionLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SystemClock;

    #[test]
    fn caps_per_address_and_in_total_and_slots_come_back() {
        let g = Gate::new("test", 2, 3, Arc::new(SystemClock));
        let a: SocketAddr = "127.0.0.2:1000".parse().expect("addr");
        let b: SocketAddr = "127.0.0.3:1000".parse().expect("addr");
        let s1 = g.admit(a).expect("first");
        let _s2 = g.admit(a).expect("second");
        assert_eq!(g.admit(a).err(), Some(Refusal::PerAddress));
        let _s3 = g.admit(b).expect("another address");
        assert_eq!(g.admit(b).err(), Some(Refusal::Total));
        drop(s1);
        assert!(g.admit(a).is_ok(), "a slot came back");
        let mut text = String::new();
        g.render_metrics(&mut text);
        assert!(text.contains("reason=\"per_address\"} 1"), "{text}");
        assert!(text.contains("reason=\"total\"} 1"), "{text}");
    }
}
