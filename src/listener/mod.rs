//! The HTTP listener: accepts connections (plain or TLS) and serves each with hyper's HTTP/1.1,
//! with the limits a hub that faces the internet needs.
//!
//! - A new connection must deliver its first request head (after the TLS handshake, if any)
//!   within the header timeout, or it is closed. A kept-alive connection must start its next
//!   request within the idle timeout (hyper's header-read timer, restarted after each response).
//! - A request body must keep arriving (`body.rs`): a wait of more than the header timeout
//!   between two of its parts ends the request with an error that says so, and so does a body
//!   arriving slower on average than 1 KB per second once the header timeout's grace is spent.
//! - At most `max_connections` are open. When one more arrives, the connection idle longest (no
//!   request in hand: one that has not yet sent a request head, or a kept-alive one between
//!   requests) is closed to make room, so that half-open or parked connections can never lock out
//!   real clients; when every open connection has a request in hand, the newcomer is closed
//!   instead.
//! - Forwarded headers are trusted only from the configured proxies (`proxy.rs`), and a TLS
//!   connection says so itself.
//! - On shutdown, no connection is accepted and each open one finishes its request in hand.

pub mod body;
pub mod proxy;
pub mod tls;

use axum::Router;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use proxy::TrustedProxies;
use std::collections::{BTreeMap, HashMap};
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

/// Connections the kernel may hold for the hub before it accepts them (it caps this at its own
/// `somaxconn`): deep enough that a burst of connections does not drop a real client's.
const ACCEPT_BACKLOG: u32 = 4096;

/// Listens on `address` with a deep accept queue.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
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
    let grace = limits.header_timeout;
    let app = app.layer(axum::middleware::map_request(
        move |request: axum::extract::Request| async move {
            request.map(|body| axum::body::Body::new(body::PacedBody::new(body, grace)))
        },
    ));
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
            // Every open connection has a request in hand: this one is closed at once.
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
        let activity = slot.activity();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // In hand from its head until its answer's body is sent or dropped: meanwhile the
            // connection is not idle and is never closed to make room.
            let in_hand = activity.begin();
            proxy::sanitize(request.headers_mut(), peer.ip(), over_tls, &trusted);
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = app.clone().oneshot(request);
            async move {
                let response = answer.await?;
                Ok::<_, std::convert::Infallible>(response.map(move |body| {
                    body.map_frame(move |frame| {
                        let _ = &in_hand;
                        frame
                    })
                }))
            }
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
                () = slot.evicted.cancelled() => {
                    tracing::debug!(peer = %peer, "closed to make room: no request in hand");
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

/// The open connections: how many, and those idle (no request in hand), longest idle first,
/// each with the token that closes it.
struct Registry {
    max: usize,
    state: Mutex<RegistryState>,
}

#[derive(Default)]
struct RegistryState {
    open: usize,
    next_id: u64,
    next_idle: u64,
    connections: HashMap<u64, Activity>,
    /// Idle order -> connection id.
    idle: BTreeMap<u64, u64>,
}

/// What a connection is doing.
struct Activity {
    in_hand: usize,
    started: bool,
    idle_key: Option<u64>,
    evicted: CancellationToken,
}

impl RegistryState {
    /// Puts connection `id` at the end of the idle order.
    fn make_idle(&mut self, id: u64) {
        let key = self.next_idle;
        self.next_idle += 1;
        if let Some(activity) = self.connections.get_mut(&id) {
            activity.idle_key = Some(key);
            self.idle.insert(key, id);
        }
    }
}

impl Registry {
    fn new(max: usize) -> Self {
        Registry {
            max: max.max(1),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new connection: when all are taken, the connection idle longest is closed
    /// for it; None when every open connection has a request in hand.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut state = self.lock();
        if state.open >= self.max {
            let (_, oldest) = state.idle.pop_first()?;
            if let Some(activity) = state.connections.get_mut(&oldest) {
                activity.idle_key = None;
                activity.evicted.cancel();
            }
        }
        state.open += 1;
        state.next_id += 1;
        let id = state.next_id;
        let evicted = CancellationToken::new();
        state.connections.insert(
            id,
            Activity {
                in_hand: 0,
                started: false,
                idle_key: None,
                evicted: evicted.clone(),
            },
        );
        state.make_idle(id);
        Some(Slot {
            id,
            registry: self.clone(),
            evicted,
            opened: Instant::now(),
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
}

impl Slot {
    fn activity(&self) -> ActivityHandle {
        ActivityHandle {
            id: self.id,
            registry: self.registry.clone(),
        }
    }

    /// Whether the connection has delivered a request head.
    fn has_started(&self) -> bool {
        self.registry
            .lock()
            .connections
            .get(&self.id)
            .is_some_and(|activity| activity.started)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.registry.lock();
        state.open = state.open.saturating_sub(1);
        if let Some(activity) = state.connections.remove(&self.id)
            && let Some(key) = activity.idle_key
        {
            state.idle.remove(&key);
        }
    }
}

/// Counts the requests a connection has in hand; cloned into its service.
#[derive(Clone)]
struct ActivityHandle {
    id: u64,
    registry: Arc<Registry>,
}

impl ActivityHandle {
    /// A request's head has arrived: the connection is no longer idle until the returned guard
    /// is dropped (with the answer's body).
    fn begin(&self) -> InHand {
        let mut state = self.registry.lock();
        if let Some(activity) = state.connections.get_mut(&self.id) {
            activity.started = true;
            activity.in_hand += 1;
            if let Some(key) = activity.idle_key.take() {
                state.idle.remove(&key);
            }
        }
        InHand(self.clone())
    }
}

/// A request in hand; its drop makes the connection idle again when it was the last.
struct InHand(ActivityHandle);

impl Drop for InHand {
    fn drop(&mut self) {
        let mut state = self.0.registry.lock();
        let idle_now = match state.connections.get_mut(&self.0.id) {
            Some(activity) => {
                activity.in_hand = activity.in_hand.saturating_sub(1);
                activity.in_hand == 0 && !activity.evicted.is_cancelled()
            }
            None => false,
        };
        if idle_now {
            state.make_idle(self.0.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_registry_closes_the_connection_idle_longest_for_a_new_one() {
        let registry = Arc::new(Registry::new(2));
        let first = registry.admit().unwrap();
        let second = registry.admit().unwrap();
        let second_request = second.activity().begin();
        // Full: the idle one (the first, no request yet) is closed for the third.
        let third = registry.admit().unwrap();
        assert!(first.evicted.is_cancelled());
        assert!(!second.evicted.is_cancelled());
        drop(first);
        // The second's request is answered: it is idle again, after the third.
        drop(second_request);
        assert!(second.has_started());
        let _fourth = registry.admit().unwrap();
        assert!(third.evicted.is_cancelled(), "the third has been idle longest");
        assert!(!second.evicted.is_cancelled());
        drop(third);
        // Both open connections have a request in hand: a fifth is refused.
        let _in_hand = (second.activity().begin(), _fourth.activity().begin());
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
