//! TCP_NODELAY on the PostgreSQL connections. The database driver (sqlx 0.9.0) opens its TCP
//! sockets without it, so a statement whose message does not fit in one segment waits for the
//! server's delayed acknowledgement: about 40 ms per multi-row statement on this project's
//! benchmarks. The driver offers no hook on its socket, so each new connection sets the option on
//! every TCP socket of this process (all of which want it: the HTTP server and client set it
//! themselves); other descriptors refuse the option, which is ignored.

/// Sets TCP_NODELAY on every TCP socket this process holds.
#[cfg(target_os = "linux")]
pub(super) fn set_on_tcp_sockets() {
    use std::os::fd::RawFd;
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .map(|target| target.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        let Some(fd) = entry.file_name().to_str().and_then(|name| name.parse::<RawFd>().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local. The descriptor
        // is only a number to the kernel: if it was closed or reused meanwhile, the call fails
        // (EBADF, ENOTSOCK, ENOPROTOOPT) and nothing else happens.
        let _ = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw const on).cast::<libc::c_void>(),
                libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4),
            )
        };
    }
}

/// Elsewhere the option stays as the driver leaves it.
#[cfg(not(target_os = "linux"))]
pub(super) fn set_on_tcp_sockets() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn every_tcp_socket_of_the_process_gets_nodelay() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let client = std::net::TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        client.set_nodelay(false).expect("clear");
        server.set_nodelay(false).expect("clear");
        super::set_on_tcp_sockets();
        assert!(client.nodelay().expect("read"));
        assert!(server.nodelay().expect("read"));
    }
}
