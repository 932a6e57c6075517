//! A private OpenLDAP server for one test, as the directory source a hub reads users and groups
//! from: Debian's `slapd` (the binary `PROVISIO_SLAPD` names, else /usr/sbin/slapd) on a free
//! 127.0.0.1 port, configured from a generated classic `slapd.conf` in a temporary directory, over
//! an mdb database. Entries go in as plain LDIF through ldap-utils' `ldapadd` and `ldapmodify`
//! (found on PATH). `scripts/ensure-slapd` installs both packages.
//!
//! What a test finds in the directory:
//!
//! - [`BASE_DN`] (`dcObject`, `organization`) with [`PEOPLE_DN`] and [`GROUPS_DN`] below it;
//! - [`ROOT_DN`] / [`ROOT_PASSWORD`]: slapd's root DN, which no ACL or limit applies to;
//! - [`READER_DN`] / [`READER_PASSWORD`]: a service account that reads everything (passwords
//!   included) and writes nothing, as a hub's LDAP source binds; anonymous clients read only
//!   the root DSE and the schema, and a wrong password is refused with invalidCredentials (49);
//! - a search by anyone but the root DN returns at most [`SIZE_LIMIT`] entries (then result 4,
//!   sizeLimitExceeded), while a paged search (RFC 2696, any page size) goes through any number:
//!   a client that does not page sees only part of a directory of more than 500 entries;
//! - `entryUUID`, `createTimestamp` and `modifyTimestamp` (slapd's own) and `memberOf` (the
//!   memberof overlay's, on each member of a `groupOfNames`) are operational attributes: a search
//!   returns them only when asked for by name, or with `+`.

use super::{drain, tied_to_test};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The directory's suffix.
pub const BASE_DN: &str = "dc=example,dc=org";
/// Where [`person_ldif`] puts people.
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
/// Where [`group_ldif`] puts groups.
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=org";
/// slapd's root DN (`rootdn`): every right, no size limit. [`Slapd::add`] and [`Slapd::modify`] bind as it.
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
/// The root DN's clear-text password (`rootpw`).
pub const ROOT_PASSWORD: &str = "admin-secret";
/// The read-only service account (`organizationalRole` + `simpleSecurityObject`).
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
/// The reader's clear-text password (its `userPassword`).
pub const READER_PASSWORD: &str = "reader-secret";
/// The most entries one search returns to anyone but the root DN, unless it pages.
pub const SIZE_LIMIT: usize = 500;
/// The `member` value of a group with no members (the empty DN, which names no entry):
/// `groupOfNames` requires at least one `member`.
pub const EMPTY_MEMBER: &str = "";

/// Debian's schema files.
const SCHEMA_DIR: &str = "/etc/ldap/schema";
/// Debian's slapd modules: back_mdb and the memberof overlay are modules there, not built in.
const MODULE_DIR: &str = "/usr/lib/ldap";
/// How long slapd may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A private slapd: started by [`Slapd::start`], killed and deleted (data and all) when dropped.
pub struct Slapd {
    port: u16,
    /// The `ldaps://` port, when the server was started with TLS.
    tls_port: Option<u16>,
    process: Option<Running>,
    dir: tempfile::TempDir,
}

/// The slapd process and the reader of its stderr.
struct Running {
    child: Child,
    stderr: JoinHandle<String>,
}

/// The slapd binary: `PROVISIO_SLAPD`, else Debian's.
fn slapd_binary() -> PathBuf {
    std::env::var_os("PROVISIO_SLAPD")
        .filter(|path| !path.is_empty())
        .map_or_else(|| PathBuf::from("/usr/sbin/slapd"), PathBuf::from)
}

/// The `slapd.conf` of a server whose files live in `dir`.
fn config(dir: &Path) -> String {
    let data = dir.join("data");
    format!(
        r#"# A private slapd for one test (tests/common/slapd.rs).
include {SCHEMA_DIR}/core.schema
include {SCHEMA_DIR}/cosine.schema
include {SCHEMA_DIR}/inetorgperson.schema
include {SCHEMA_DIR}/nis.schema

modulepath {MODULE_DIR}
moduleload back_mdb
moduleload memberof

# Nothing to syslog; configuration errors still reach stderr (-d none).
loglevel none

database mdb
suffix "{BASE_DN}"
rootdn "{ROOT_DN}"
rootpw "{ROOT_PASSWORD}"
directory "{data}"
maxsize 1073741824
# No fsync per write: a test's data need not survive a power cut.
dbnosync

index objectClass eq
index entryUUID eq

# The root DN is unlimited; everyone else gets {SIZE_LIMIT} entries per search, except that a
# paged search may page through any number (size.prtotal; by default it stops at the hard limit).
limits dn.exact="{ROOT_DN}" size=unlimited time=unlimited
sizelimit size.soft={SIZE_LIMIT} size.hard={SIZE_LIMIT} size.prtotal=unlimited

access to attrs=userPassword
  by self write
  by dn.exact="{READER_DN}" read
  by anonymous auth
  by * none
access to *
  by dn.exact="{READER_DN}" read
  by self read
  by * none

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
"#,
        data = data.display(),
    )
}

/// Makes `ca.pem` (a CA for this server alone) and `server.pem` / `server.key` (127.0.0.1 and
/// localhost, signed by it) in `dir` with the `openssl` command.
pub fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run openssl (scripts/ensure-slapd installs it): {e}"));
        assert!(
            output.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("certificate extensions");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Provisio test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

/// The suffix, the two organizational units and the reader.
fn base_ldif() -> String {
    format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: reader\ndescription: Read-only service account\nuserPassword: {READER_PASSWORD}\n\n"
    )
}

impl Slapd {
    /// Configures and starts a server on a free port, waits until it accepts connections and
    /// adds the base entries and the reader. Start (and restart) it on the test's own thread or
    /// a runtime worker, not in `spawn_blocking`: slapd dies with the thread that started it
    /// ([`tied_to_test`]).
    pub fn start() -> Self {
        Self::start_configured(false)
    }

    /// Like [`Slapd::start`], with TLS as well: a CA and a server certificate for 127.0.0.1
    /// made with `openssl` for this server alone; StartTLS on [`Slapd::url`] and TLS from the
    /// start on [`Slapd::ldaps_url`]. [`Slapd::ca_pem`] is the CA a client must trust.
    pub fn start_with_tls() -> Self {
        Self::start_configured(true)
    }

    fn start_configured(tls: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("provisio-slapd-")
            .tempdir()
            .expect("slapd directory");
        std::fs::create_dir(dir.path().join("data")).expect("slapd data directory");
        let mut conf = String::new();
        if tls {
            make_certificates(dir.path());
            conf.push_str(&format!(
                "TLSCACertificateFile {0}/ca.pem\nTLSCertificateFile {0}/server.pem\nTLSCertificateKeyFile {0}/server.key\n",
                dir.path().display()
            ));
        }
        conf.push_str(&config(dir.path()));
        std::fs::write(dir.path().join("slapd.conf"), conf).expect("write slapd.conf");
        let free_port = || {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .expect("bind a free port")
                .local_addr()
                .expect("local address")
                .port()
        };
        let mut slapd = Slapd {
            port: free_port(),
            tls_port: tls.then(free_port),
            process: None,
            dir,
        };
        slapd.launch();
        slapd.add(&base_ldif());
        slapd
    }

    /// The server's `ldaps://` URL (started with [`Slapd::start_with_tls`] only).
    pub fn ldaps_url(&self) -> String {
        format!(
            "ldaps://127.0.0.1:{}",
            self.tls_port.expect("a server started with TLS")
        )
    }

    /// The PEM of the CA that signed the server's certificate (started with TLS only).
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).expect("the test CA")
    }

    /// The server's URL, `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory's suffix, [`BASE_DN`].
    pub fn base_dn(&self) -> &'static str {
        BASE_DN
    }

    /// Adds the entries of `ldif` (`ldapadd` as the root DN, LDIF on stdin); panics with the
    /// tool's error and the entry it stopped at when one fails.
    pub fn add(&self, ldif: &str) {
        run(self.client("ldapadd"), "ldapadd", Some(ldif));
    }

    /// Applies the change records of `ldif` (`ldapmodify` as the root DN, LDIF on stdin):
    /// `changetype: modify`, but also `add`, `delete` and `modrdn`; panics as [`Slapd::add`] does.
    pub fn modify(&self, ldif: &str) {
        run(self.client("ldapmodify"), "ldapmodify", Some(ldif));
    }

    /// Adds many entries at once: the LDIF goes to a file that one `ldapadd -f` reads, over one
    /// connection (10,000 people of [`person_ldif`] take about 2 s). Through the server, not
    /// `slapadd`, so that the memberof overlay sees the groups.
    pub fn add_bulk(&self, ldif: &str) {
        let mut file = tempfile::Builder::new()
            .prefix("bulk-")
            .suffix(".ldif")
            .tempfile_in(self.dir.path())
            .expect("bulk LDIF file");
        file.write_all(ldif.as_bytes()).expect("write the bulk LDIF");
        file.flush().expect("flush the bulk LDIF");
        let mut command = self.client("ldapadd");
        command.arg("-f").arg(file.path());
        run(command, "ldapadd", None);
    }

    /// Kills the server (SIGKILL, as in a crash; mdb keeps every committed write), so that
    /// clients find nothing listening; [`Slapd::restart`] brings it back. Does nothing when it
    /// is stopped already.
    pub fn stop(&mut self) {
        if let Some(Running { mut child, stderr }) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = stderr.join();
        }
    }

    /// Starts the server again, stopping it first if it runs, on the same port and over the same
    /// data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Spawns slapd in the foreground and waits until it accepts connections.
    fn launch(&mut self) {
        let binary = slapd_binary();
        let mut command = Command::new(&binary);
        tied_to_test(&mut command)
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(match self.tls_port {
                Some(tls) => format!("ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{tls}/", self.port),
                None => format!("ldap://127.0.0.1:{}/", self.port),
            })
            // Any -d keeps slapd in the foreground, our child; level `none` shows only what is
            // logged at every level, such as configuration errors.
            .args(["-d", "none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "start {} (scripts/ensure-slapd installs it; PROVISIO_SLAPD names another): {e}",
                binary.display()
            )
        });
        let stderr = drain(child.stderr.take().expect("slapd's stderr"));
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("poll slapd") {
                panic!(
                    "slapd exited at start ({status}): {}",
                    stderr.join().unwrap_or_default()
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "slapd did not accept connections on {address} within {START_TIMEOUT:?}: {}",
                    stderr.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.process = Some(Running { child, stderr });
    }

    /// An ldap-utils client bound as the root DN to this server.
    fn client(&self, tool: &str) -> Command {
        let mut command = Command::new(tool);
        tied_to_test(&mut command)
            // No ldap.conf or .ldaprc of the machine or the user: only these flags count.
            .env("LDAPNOINIT", "1")
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD]);
        command
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(Running { mut child, .. }) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs an ldap-utils client with `input` on stdin, and panics when it fails.
fn run(mut command: Command, tool: &str, input: Option<&str>) {
    command
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("run {tool} (ldap-utils, on PATH): {e}"));
    let stdout = drain(child.stdout.take().expect("client's stdout"));
    let stderr = drain(child.stderr.take().expect("client's stderr"));
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("client's stdin");
        // A failed write means the client stopped reading: its status and stderr say why.
        let _ = stdin.write_all(text.as_bytes());
    }
    let status = child.wait().expect("wait for the client");
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        // Only stdout names the entry the client was at ("adding new entry ...").
        let at = stdout
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("(no entry yet)");
        panic!("{tool} failed ({status}) at {at}: {}", stderr.trim());
    }
}

/// The DN of the person `uid` under [`PEOPLE_DN`].
pub fn person_dn(uid: &str) -> String {
    format!("uid={},{PEOPLE_DN}", escape_rdn_value(uid))
}

/// The DN of the group `cn` under [`GROUPS_DN`].
pub fn group_dn(cn: &str) -> String {
    format!("cn={},{GROUPS_DN}", escape_rdn_value(cn))
}

/// An `inetOrgPerson` at [`person_dn`]`(uid)` with `cn` "given sn"; an empty `given` or `mail`
/// leaves the attribute out (LDAP has no empty values). Ends with a blank line, so that
/// entries concatenate into one LDIF.
pub fn person_ldif(uid: &str, given: &str, sn: &str, mail: &str) -> String {
    let mut ldif = String::new();
    push_line(&mut ldif, "dn", &person_dn(uid));
    push_line(&mut ldif, "objectClass", "inetOrgPerson");
    push_line(&mut ldif, "uid", uid);
    let cn = [given, sn]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    push_line(&mut ldif, "cn", &cn);
    if !given.is_empty() {
        push_line(&mut ldif, "givenName", given);
    }
    push_line(&mut ldif, "sn", sn);
    if !mail.is_empty() {
        push_line(&mut ldif, "mail", mail);
    }
    ldif.push('\n');
    ldif
}

/// A `groupOfNames` at [`group_dn`]`(cn)` with `member_dns` as its members. `groupOfNames`
/// requires a member, so a group without any gets the single member [`EMPTY_MEMBER`] (the empty
/// DN, which slapd accepts and the memberof overlay ignores): a reader should skip that value,
/// and a test adding the first real member should also delete it. Ends with a blank line.
///
/// The overlay cannot take a deleted person out of a group it was the only member of (the group
/// would be left without a `member`): that group keeps the dangling DN.
pub fn group_ldif(cn: &str, member_dns: &[String]) -> String {
    let mut ldif = String::new();
    push_line(&mut ldif, "dn", &group_dn(cn));
    push_line(&mut ldif, "objectClass", "groupOfNames");
    push_line(&mut ldif, "cn", cn);
    if member_dns.is_empty() {
        push_line(&mut ldif, "member", EMPTY_MEMBER);
    }
    for member in member_dns {
        push_line(&mut ldif, "member", member);
    }
    ldif.push('\n');
    ldif
}

/// Appends `attribute: value`, or `attribute:: base64` when the value is not an LDIF
/// SAFE-STRING (RFC 2849: non-ASCII, a line break, a leading space, colon or `<`, a trailing space).
fn push_line(ldif: &mut String, attribute: &str, value: &str) {
    let safe = value
        .bytes()
        .all(|b| b.is_ascii() && !matches!(b, b'\0' | b'\n' | b'\r'))
        && !matches!(value.as_bytes().first(), Some(b' ' | b':' | b'<'))
        && !value.ends_with(' ');
    ldif.push_str(attribute);
    if !safe {
        ldif.push_str(":: ");
        ldif.push_str(&base64(value.as_bytes()));
    } else if value.is_empty() {
        ldif.push(':');
    } else {
        ldif.push_str(": ");
        ldif.push_str(value);
    }
    ldif.push('\n');
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let group = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(ALPHABET[((group >> (18 - 6 * i)) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// Escapes an RDN value (RFC 4514): `"+,;<>\`, a leading `#` or space, a trailing space, NUL.
fn escape_rdn_value(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut escaped = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.push_str("\\00"),
            ' ' if i == 0 || i == last => escaped.push_str("\\ "),
            '#' if i == 0 => escaped.push_str("\\#"),
            _ => escaped.push(c),
        }
    }
    escaped
}
