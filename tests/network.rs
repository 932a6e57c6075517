//! How the hub faces the network, with the real listener: 2,000 half-open connections against a
//! hub limited to 1,024 open files, the rate limit per token, HTTPS with a certificate the test
//! makes (and swaps on disk), and forwarded headers believed only from trusted proxies.

mod common;

use common::{Backend, HubProcess, TestDatabase, TestHub, eventually};
use provisio::api::rate_limit::RateLimit;
use provisio::listener::proxy::TrustedProxies;
use provisio::listener::tls::TlsFiles;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::io::Read;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The tests of this file run one at a time: the half-open connection test times answers in
/// milliseconds, and the others would share its two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `provisio serve` with its open-file limit at 1,024 (soft and hard), on a free port, with an
/// admin token.
struct LimitedHub {
    process: HubProcess,
    base_url: String,
    port: u16,
    token: String,
    _db: TestDatabase,
    _keys: tempfile::TempDir,
}

impl LimitedHub {
    async fn start(extra: &[&str]) -> Self {
        let db = TestDatabase::new(Backend::Sqlite).await;
        let keys = tempfile::tempdir().expect("key directory");
        let process =
            HubProcess::spawn_with_file_limit(&db.flags(), &keys.path().join("secret.key"), extra, 1024).await;
        let base_url = process.base_url.clone();
        let port = base_url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        LimitedHub {
            token: db.admin_token(),
            process,
            base_url,
            port,
            _db: db,
            _keys: keys,
        }
    }

    /// The hub's open-file limit, as the kernel reports it.
    fn file_limit(&self) -> String {
        let mut limits = String::new();
        std::fs::File::open(format!("/proc/{}/limits", self.process.pid()))
            .and_then(|mut f| f.read_to_string(&mut limits))
            .expect("read the hub's limits");
        limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap_or_default()
            .split_whitespace()
            .nth(3)
            .unwrap_or_default()
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_never_lock_out_real_clients() {
    let _alone = ONE_AT_A_TIME.lock().await;
    provisio::install_crypto_provider();
    // 2,000 client sockets: this process's soft open-file limit goes up to its hard limit.
    provisio::listener::raise_open_file_limit();
    let hub = LimitedHub::start(&[]).await;
    assert_eq!(hub.file_limit(), "1024", "the hub runs with 1,024 open files");

    // 2,000 connections that send part of a request head and then nothing.
    let opening = Instant::now();
    let mut opening_tasks = Vec::new();
    for _ in 0..16 {
        let port = hub.port;
        opening_tasks.push(tokio::spawn(async move {
            let mut streams = Vec::with_capacity(125);
            for _ in 0..125 {
                let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .expect("connect");
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    .await
                    .expect("write part of a head");
                streams.push(stream);
            }
            streams
        }));
    }
    // Meanwhile, and after, real clients on new connections are answered at once.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let prober = {
        let (client, base, token) = (client.clone(), hub.base_url.clone(), hub.token.clone());
        tokio::spawn(async move {
            let mut times = Vec::new();
            for round in 0..40 {
                let path = if round % 2 == 0 { "/healthz" } else { "/api/v1/users" };
                let started = Instant::now();
                let response = client
                    .get(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("answered");
                assert_eq!(response.status(), StatusCode::OK, "{path}");
                response.bytes().await.expect("body");
                times.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            times
        })
    };
    let mut held = Vec::with_capacity(2000);
    for task in opening_tasks {
        held.extend(task.await.expect("opening"));
    }
    eprintln!("2,000 half-open connections opened in {:?}", opening.elapsed());
    let mut times = prober.await.expect("prober");
    for round in 0..20 {
        let path = if round % 2 == 0 { "/healthz" } else { "/api/v1/users" };
        let started = Instant::now();
        let response = client
            .get(format!("{}{path}", hub.base_url))
            .bearer_auth(&hub.token)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.bytes().await.expect("body");
        times.push(started.elapsed());
    }
    let slowest = times.iter().copied().max().unwrap_or_default();
    eprintln!(
        "slowest of {} answers while and after 2,000 half-open connections were opened: {slowest:?}",
        times.len()
    );
    assert!(slowest < Duration::from_millis(100), "slowest answer {slowest:?}");

    // Every held connection is closed by the hub: to make room, or at the header timeout.
    // (The default header timeout, 10 s, is longer than opening them takes, so the timeout alone
    // could not have made room for the clients above.)
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut closed = 0;
    for stream in &mut held {
        let mut buffer = [0u8; 256];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(n)) => panic!(
                "a half-open connection got an answer: {:?}",
                String::from_utf8_lossy(&buffer[..n])
            ),
            Err(_) => break,
        }
    }
    assert_eq!(closed, held.len(), "every half-open connection is closed");
    // And the hub still answers.
    let response = client
        .get(format!("{}/healthz", hub.base_url))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_answers_429_with_retry_after_then_serves_again() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let hub = TestHub::start_configured(Backend::Sqlite, |config| {
        config.network.rate_limit = RateLimit {
            per_second: 1,
            burst: 3,
        };
    })
    .await;
    let issued = hub.post("/api/v1/scim-tokens", json!({"name": "okta"})).await;
    let scim_token = issued["secret"].as_str().expect("secret").to_owned();
    // The admin token spent one request on the line above: two more, then 429.
    for _ in 0..2 {
        let (status, body) = hub.call(Method::GET, "/api/v1/users", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = hub
        .http
        .get(format!("{}/api/v1/users", hub.base_url))
        .bearer_auth(&hub.token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");

    // The SCIM token has a bucket of its own; once spent, it is told in an RFC 7644 body.
    let scim = |token: String| {
        let http = hub.http.clone();
        let url = format!("{}/scim/v2/Users", hub.base_url);
        async move { http.get(url).bearer_auth(token).send().await.expect("request") }
    };
    for _ in 0..3 {
        assert_eq!(scim(scim_token.clone()).await.status(), StatusCode::OK);
    }
    let limited = scim(scim_token.clone()).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: serde_json::Value = limited.json().await.expect("json");
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    assert_eq!(body["status"], "429");

    // After the wait it is served again; requests without a token were never counted.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, body) = hub.call(Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let health = hub
        .http
        .get(format!("{}/healthz", hub.base_url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    hub.stop().await;
}

/// A client that trusts only the CA in `dir`.
fn trusting(dir: &std::path::Path) -> reqwest::Client {
    let ca = std::fs::read(dir.join("ca.pem")).expect("ca.pem");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_certificate_on_disk_and_follows_a_swap() {
    let _alone = ONE_AT_A_TIME.lock().await;
    provisio::install_crypto_provider();
    let first = tempfile::tempdir().expect("first certificates");
    let second = tempfile::tempdir().expect("second certificates");
    common::slapd::make_certificates(first.path());
    common::slapd::make_certificates(second.path());
    let served = tempfile::tempdir().expect("served files");
    let cert = served.path().join("hub.pem");
    let key = served.path().join("hub.key");
    std::fs::copy(first.path().join("server.pem"), &cert).expect("cert");
    std::fs::copy(first.path().join("server.key"), &key).expect("key");
    let files = TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
    };
    let hub = TestHub::start_configured(Backend::Sqlite, move |config| {
        config.network.tls = Some(files);
    })
    .await;
    let https = hub.base_url.replace("http://", "https://");

    // A client that trusts the first CA is served; one that trusts only the second is refused.
    let answer = trusting(first.path())
        .get(format!("{https}/healthz"))
        .send()
        .await
        .expect("served over TLS");
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        trusting(second.path())
            .get(format!("{https}/healthz"))
            .send()
            .await
            .is_err(),
        "a certificate from another CA is not accepted"
    );
    // Plain HTTP on the TLS port gets no answer.
    assert!(
        hub.http.get(format!("{}/healthz", hub.base_url)).send().await.is_err(),
        "plain HTTP on the TLS port fails"
    );
    // The admin API over TLS, with the token.
    let users = trusting(first.path())
        .get(format!("{https}/api/v1/users"))
        .bearer_auth(&hub.token)
        .send()
        .await
        .expect("served");
    assert_eq!(users.status(), StatusCode::OK);

    // The second pair, written over the files: served without a restart.
    std::fs::copy(second.path().join("server.key"), &key).expect("key");
    std::fs::copy(second.path().join("server.pem"), &cert).expect("cert");
    let second_client = trusting(second.path());
    eventually(15, "the swapped certificate to be served", || async {
        let response = second_client.get(format!("{https}/healthz")).send().await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(
        trusting(first.path())
            .get(format!("{https}/healthz"))
            .send()
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let _alone = ONE_AT_A_TIME.lock().await;
    for trusted in [true, false] {
        let hub = TestHub::start_configured(Backend::Sqlite, move |config| {
            if trusted {
                config.network.trusted_proxies = TrustedProxies::new(vec!["127.0.0.0/8".parse().expect("network")]);
            }
        })
        .await;
        let issued = hub.post("/api/v1/scim-tokens", json!({"name": "okta"})).await;
        let scim_token = issued["secret"].as_str().expect("secret").to_owned();
        let created = hub
            .http
            .post(format!("{}/scim/v2/Users", hub.base_url))
            .bearer_auth(&scim_token)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "hub.example.com")
            .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann"}))
            .send()
            .await
            .expect("create");
        assert_eq!(created.status(), StatusCode::CREATED);
        let location = created.headers()["location"].to_str().expect("text").to_owned();
        let login = hub
            .http
            .get(format!("{}/console/login", hub.base_url))
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .expect("login page");
        let cookie = login.headers()["set-cookie"].to_str().expect("text").to_owned();
        if trusted {
            assert!(
                location.starts_with("https://hub.example.com/scim/v2/Users/"),
                "{location}"
            );
            assert!(cookie.contains("; Secure"), "{cookie}");
        } else {
            assert!(
                location.starts_with(&format!("{}/scim/v2/Users/", hub.base_url)),
                "{location}"
            );
            assert!(!cookie.contains("Secure"), "{cookie}");
        }
        hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let hub = TestHub::start_configured(Backend::Sqlite, |config| {
        config.network.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let address = hub.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let mut answer = Vec::new();
    for _ in 0..2 {
        stream
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
            .await
            .expect("request");
        let mut buffer = [0u8; 1024];
        let n = stream.read(&mut buffer).await.expect("answer");
        answer.extend_from_slice(&buffer[..n]);
    }
    // Two answers on one connection: it is kept alive between requests.
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    // Then, left idle, it is closed after the idle timeout (and not long before).
    let idle = Instant::now();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("closed within 10 s");
    assert!(matches!(read, Ok(0) | Err(_)), "closed, not answered: {read:?}");
    let waited = idle.elapsed();
    assert!(waited >= Duration::from_millis(900), "closed after {waited:?}");
    hub.stop().await;
}

/// Sends `GET /healthz` on a new connection; the status, or None when the connection was closed
/// without an answer.
async fn healthz_once(port: u16) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_connections_make_room_and_a_stalled_body_ends_in_time() {
    let _alone = ONE_AT_A_TIME.lock().await;
    provisio::install_crypto_provider();
    let hub = LimitedHub::start(&["--max-connections", "20", "--header-timeout", "2"]).await;

    // 20 kept-alive connections, each answered once and then parked: the cap is full.
    let mut parked = Vec::new();
    for _ in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", hub.port))
            .await
            .expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("request");
        let mut buffer = [0u8; 512];
        let n = stream.read(&mut buffer).await.expect("answer");
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
        parked.push(stream);
    }
    // A new client is served: a parked connection is closed to make room.
    assert_eq!(healthz_once(hub.port).await, Some(200));

    // 20 requests whose bodies never come hold every place: a newcomer is closed at once ...
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", hub.port))
            .await
            .expect("connect");
        stream
            .write_all(
                format!(
                    "POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
                    hub.token
                )
                .as_bytes(),
            )
            .await
            .expect("head");
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(healthz_once(hub.port).await, None, "every place has a request in hand");
    // ... until the stalled bodies time out and their places free up.
    let started = Instant::now();
    for stream in &mut stalled {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            (text.starts_with("HTTP/1.1 408") || text.starts_with("HTTP/1.1 400"))
                && text.contains("not received within"),
            "a stalled body ends with an error that says so: {text}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5), "within the header timeout");
    eventually(10, "the hub to serve newcomers again", || async {
        (healthz_once(hub.port).await == Some(200)).then_some(())
    })
    .await;
}

/// Sends `head` and then a body a byte at a time, one every 500 ms (never pausing as long as the
/// header timeout); returns the answer and how long it took.
async fn trickle(port: u16, head: String) -> (String, Duration) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    writer.write_all(head.as_bytes()).await.expect("head");
    let trickling = tokio::spawn(async move {
        for _ in 0..60 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut answer)).await;
    trickling.abort();
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_a_byte_at_a_time_is_cut_off_once_its_grace_is_spent() {
    let _alone = ONE_AT_A_TIME.lock().await;
    provisio::install_crypto_provider();
    let hub = LimitedHub::start(&["--header-timeout", "2"]).await;
    let issued: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v1/scim-tokens", hub.base_url))
        .bearer_auth(&hub.token)
        .json(&json!({"name": "okta"}))
        .send()
        .await
        .expect("issue a SCIM token")
        .json()
        .await
        .expect("token JSON");
    let scim_token = issued["secret"].as_str().expect("secret").to_owned();
    for (path, token, content_type) in [
        ("/api/v1/users", hub.token.as_str(), "application/json"),
        ("/scim/v2/Users", scim_token.as_str(), "application/scim+json"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n"
        );
        let (answer, took) = trickle(hub.port, head).await;
        // Without the pace rule, 1,000 bytes at 2 per second would hold the connection 500 s.
        assert!(
            answer.starts_with("HTTP/1.1 400") && answer.contains("not received within"),
            "{path}: a trickled body ends with an error that says so: {answer}"
        );
        assert!(
            answer.contains("bytes per second"),
            "{path}: the pace rule, not the pause rule, ended it: {answer}"
        );
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(6),
            "{path}: cut off after the 2 s grace and the few bytes' allowance, not later: {took:?}"
        );
    }
    // The hub serves on.
    assert_eq!(healthz_once(hub.port).await, Some(200));
}
