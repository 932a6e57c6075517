//! The HTTP listener: accepts connections (plain or TLS) and serves each with hyper's HTTP/1.1,
//! with the limits a hub that faces the internet needs.
//!
//! - A new connection must deliver its first request head (after the TLS handshake, if any)
//!   within the header timeout, or it is closed. A kept-alive connection must start its next
//!   request within the idle timeout (hyper's header-read timer, restarted after each response).
//! - At most `max_connections` are open. When one more arrives, the oldest connection that has
//!   not yet sent a request head is closed to make room, so that half-open connections can never
//!   lock out real clients; when every open connection is busy with requests, the newcomer is
//!   closed instead.
//! - Forwarded headers are trusted only from the configured proxies (`proxy.rs`), and a TLS
//!   connection says so itself.
//! - On shutdown, no connection is accepted and each open one finishes its request in hand.

pub mod proxy;
pub mod tls;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use proxy::TrustedProxies;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Connections the hub keeps for itself below the open-file limit: the database pool, files,
/// connections to apps and LDAP servers.
const RESERVED_FILES: u64 = 256;

/// How the listener treats connections.
#[derive(Debug, Clone)]
pub struct ListenerLimits {
    /// Time a new connection has to deliver its first request head (and finish a TLS handshake).
    pub header_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request (and send its head).
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Raises this process's soft limit on open files to its hard limit, and returns the limit now
/// in force (None when it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// The connection cap that fits an open-file limit: what is left after the files the hub keeps
/// for itself, at least 64 and at most 65,536.
pub fn connections_for_file_limit(limit: Option<u64>) -> usize {
    let usable = limit.unwrap_or(1024).saturating_sub(RESERVED_FILES);
    usize::try_from(usable.clamp(64, 65_536)).unwrap_or(65_536)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then waits for the open
/// connections to finish the requests in hand.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    trusted: TrustedProxies,
    limits: ListenerLimits,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let registry = Arc::new(Registry::new(limits.max_connections));
    let trusted = Arc::new(trusted);
    let mut refusals_logged_at: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken: wait
                    // a moment rather than spin, and say so at most once a minute.
                    if refusals_logged_at.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(error = %e, "cannot accept a connection");
                        refusals_logged_at = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Some(slot) = registry.admit() else {
            // Every open connection is at work: this one is closed at once.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            app: app.clone(),
            trusted: trusted.clone(),
            limits: limits.clone(),
            slot,
            shutdown: shutdown.clone(),
        };
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => connection.serve(stream, false).await,
                Some(acceptor) => connection.handshake_then_serve(acceptor, stream).await,
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// One accepted connection and what serving it needs.
struct Connection {
    peer: SocketAddr,
    app: Router,
    trusted: Arc<TrustedProxies>,
    limits: ListenerLimits,
    slot: Slot,
    shutdown: CancellationToken,
}

impl Connection {
    async fn handshake_then_serve(self, acceptor: tokio_rustls::TlsAcceptor, stream: tokio::net::TcpStream) {
        let deadline = self.slot.opened + self.limits.header_timeout;
        let handshake = tokio::select! {
            done = tokio::time::timeout_at(deadline, acceptor.accept(stream)) => done,
            () = self.slot.evicted.cancelled() => return,
            () = self.shutdown.cancelled() => return,
        };
        match handshake {
            Ok(Ok(stream)) => self.serve(stream, true).await,
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn serve<I>(self, io: I, over_tls: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            peer,
            app,
            trusted,
            limits,
            slot,
            shutdown,
        } = self;
        let started = slot.started_flag();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            started.mark();
            proxy::sanitize(request.headers_mut(), peer.ip(), over_tls, &trusted);
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.idle_timeout)
            .keep_alive(true);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut first_head = Some(slot.opened + limits.header_timeout);
        let mut closing = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = tokio::time::sleep_until(first_head.unwrap_or_else(Instant::now)), if first_head.is_some() => {
                    if slot.has_started() {
                        first_head = None;
                    } else {
                        tracing::debug!(peer = %peer, "no request head within the header timeout; closing");
                        break;
                    }
                }
                () = slot.evicted.cancelled(), if first_head.is_some() => {
                    tracing::debug!(peer = %peer, "closed to make room: no request head yet");
                    break;
                }
                () = shutdown.cancelled(), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The open connections: how many, and those still waiting for their first request head, oldest
/// first, with the token that closes each.
struct Registry {
    max: usize,
    state: Mutex<RegistryState>,
}

#[derive(Default)]
struct RegistryState {
    open: usize,
    next_id: u64,
    waiting: BTreeMap<u64, CancellationToken>,
}

impl Registry {
    fn new(max: usize) -> Self {
        Registry {
            max: max.max(1),
            state: Mutex::default(),
        }
    }

    /// A place for a new connection: when all are taken, the oldest connection without a request
    /// head yet is closed for it; None when every open connection is at work.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.open >= self.max {
            let (_, oldest) = state.waiting.pop_first()?;
            oldest.cancel();
        }
        state.open += 1;
        state.next_id += 1;
        let id = state.next_id;
        let evicted = CancellationToken::new();
        state.waiting.insert(id, evicted.clone());
        Some(Slot {
            id,
            registry: self.clone(),
            evicted,
            opened: Instant::now(),
            started: Arc::new(Started::default()),
        })
    }
}

/// A connection's place in the registry; dropping it frees the place.
struct Slot {
    id: u64,
    registry: Arc<Registry>,
    /// Cancelled when the connection is closed to make room.
    evicted: CancellationToken,
    opened: Instant,
    started: Arc<Started>,
}

impl Slot {
    fn started_flag(&self) -> StartedFlag {
        StartedFlag {
            id: self.id,
            registry: self.registry.clone(),
            started: self.started.clone(),
        }
    }

    fn has_started(&self) -> bool {
        self.started.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.registry.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.open = state.open.saturating_sub(1);
        state.waiting.remove(&self.id);
    }
}

/// Whether a connection has delivered a request head.
#[derive(Default)]
struct Started(std::sync::atomic::AtomicBool);

/// Marks its connection as started (it can no longer be closed to make room); cloned into the
/// connection's service.
#[derive(Clone)]
struct StartedFlag {
    id: u64,
    registry: Arc<Registry>,
    started: Arc<Started>,
}

impl StartedFlag {
    fn mark(&self) {
        if !self.started.0.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let mut state = self.registry.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.waiting.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_registry_closes_the_oldest_waiting_connection_for_a_new_one() {
        let registry = Arc::new(Registry::new(2));
        let first = registry.admit().unwrap();
        let second = registry.admit().unwrap();
        second.started_flag().mark();
        // Full: the oldest waiting one (the first) is closed for the third.
        let third = registry.admit().unwrap();
        assert!(first.evicted.is_cancelled());
        assert!(!second.evicted.is_cancelled());
        drop(first);
        // Full again, and only the third waits: it goes for the fourth.
        let _fourth = registry.admit().unwrap();
        assert!(third.evicted.is_cancelled());
        drop(third);
        // Both open connections are at work now: a fifth is refused.
        let fourth_started = registry
            .state
            .lock()
            .unwrap()
            .waiting
            .keys()
            .copied()
            .collect::<Vec<_>>();
        assert_eq!(fourth_started.len(), 1);
        _fourth.started_flag().mark();
        assert!(registry.admit().is_none());
        drop(second);
        assert!(registry.admit().is_some());
    }

    #[test]
    fn the_cap_leaves_room_below_the_file_limit() {
        assert_eq!(connections_for_file_limit(Some(1024)), 768);
        assert_eq!(connections_for_file_limit(Some(100)), 64);
        assert_eq!(connections_for_file_limit(Some(u64::MAX)), 65_536);
        assert_eq!(connections_for_file_limit(None), 768);
    }
}
