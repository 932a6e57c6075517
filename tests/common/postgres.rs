//! A PostgreSQL server of a test's own: a fresh cluster (`initdb`) on a free loopback port, which
//! the test may stop and start at will without touching the server other tests share. Uses the
//! server binaries of the machine's PostgreSQL packages (`scripts/ensure-postgres` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private PostgreSQL cluster, stopped and deleted when dropped.
pub struct PrivatePostgres {
    root: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

/// The newest PostgreSQL server binaries installed.
fn server_binaries() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server packages are installed under /usr/lib/postgresql (scripts/ensure-postgres)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/*/bin").1
}

/// Runs a server tool as the `postgres` user when the tests run as root (PostgreSQL refuses root).
fn as_postgres(tool: &Path) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

impl PrivatePostgres {
    /// Creates the cluster and starts the server.
    pub fn start() -> Self {
        let bin = server_binaries();
        let root = tempfile::Builder::new()
            .prefix("provisio-pg-")
            .tempdir()
            .expect("cluster directory");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(root.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the cluster directory");
        }
        let output = as_postgres(&bin.join("initdb"))
            .args([
                "--auth=trust",
                "--username=postgres",
                "--no-sync",
                "--encoding=UTF8",
                "-D",
            ])
            .arg(root.path().join("data"))
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let server = PrivatePostgres { root, bin, port };
        server.start_server();
        server
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.root.path().display()
        );
        let output = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.root.path().join("data"))
            .arg("-l")
            .arg(self.root.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(
            output.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the server (fast shutdown: sessions are ended, as in a real restart).
    pub fn stop_server(&self) {
        let output = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.root.path().join("data"))
            .args(["-w", "-m", "fast", "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(
            output.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.root.path().join("data"))
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}
