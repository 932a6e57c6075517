//! A real headless Chromium driven through WebDriver, for the tests of the web console.
//!
//! [`Browser::start`] runs Debian's `chromedriver` on a free loopback port, waits until its
//! `/status` says ready, and opens a session (with [fantoccini]) in a headless Chromium that has a
//! fresh, empty profile and every flag that keeps it off the network. The browser and the driver
//! die with the [`Browser`] (its drop kills their process group) or, for the driver, with the
//! test process. `scripts/ensure-browser` installs both programs; without them this panics, as a
//! missing dependency must not turn into a skipped test.
//!
//! The helpers take CSS selectors, wait up to [`Browser::timeout`] (10 s) for what they need and
//! panic with what was awaited and what the page showed, so a page test reads as a script:
//!
//! ```ignore
//! let browser = Browser::start().await;
//! browser.goto(&format!("{}/ui/login", hub.base_url)).await;
//! browser.fill("#token", &hub.token).await;
//! browser.click("button[type=submit]").await;
//! browser.wait_for_text("h1", "Users").await;
//! browser.screenshot("users-page").await;
//! ```
//!
//! Dialogs: [`Browser::accept_confirm`] answers a `window.confirm`; a console that uses an HTML
//! `<dialog>` element needs nothing special (its buttons are ordinary elements to [`Browser::click`]).

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The flags without which Chromium fails here or reaches for the network (which is closed).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// The WebDriver server: `$PROVISIO_CHROMEDRIVER`, else Debian's.
pub fn chromedriver_path() -> PathBuf {
    std::env::var_os("PROVISIO_CHROMEDRIVER").map_or_else(|| "/usr/bin/chromedriver".into(), PathBuf::from)
}

/// The browser: `$PROVISIO_CHROMIUM`, else Debian's real binary (not the `/usr/bin/chromium`
/// shell wrapper, which adds flags of its own from /etc/chromium.d).
pub fn chromium_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PROVISIO_CHROMIUM") {
        return path.into();
    }
    let real = Path::new("/usr/lib/chromium/chromium");
    if real.exists() {
        real.into()
    } else {
        "/usr/bin/chromium".into()
    }
}

/// Where [`Browser::screenshot`] saves: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots")
}

/// One cookie as the browser holds it, with the flags that cookie tests check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserCookie {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub http_only: bool,
    pub secure: bool,
    /// `"Strict"`, `"Lax"` or `"None"`; `None` when the cookie did not say.
    pub same_site: Option<String>,
}

/// A headless Chromium session and the chromedriver serving it.
pub struct Browser {
    client: Client,
    /// How long the helpers wait for an element, a text or a dialog. 10 s unless changed.
    pub timeout: Duration,
    _driver: Driver,
}

/// The chromedriver process, leader of a process group that Chromium joins; killed on drop.
struct Driver {
    child: Child,
    url: String,
    /// Its log, Chromium's profile and config home (crash reports land there, not in `$HOME`).
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium session (window 1280×900).
    pub async fn start() -> Self {
        let (driver_path, chromium) = (chromedriver_path(), chromium_path());
        for path in [&driver_path, &chromium] {
            assert!(
                path.exists(),
                "{} is missing: the browser tests need Chromium and chromedriver; run scripts/ensure-browser",
                path.display()
            );
        }
        provisio::install_crypto_provider(); // reqwest asks chromedriver's /status
        let driver = Driver::start(&driver_path).await;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            driver.dir.path().join("profile").display()
        ));
        args.push("--window-size=1280,900".into());
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            // Leave a window.confirm open until the test answers it (the default dismisses it).
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not open a Chromium session: {e}\n{}", driver.log()));
        Browser {
            client,
            timeout: Duration::from_secs(10),
            _driver: driver,
        }
    }

    /// The fantoccini client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The current page's URL.
    pub async fn url(&self) -> String {
        self.client.current_url().await.expect("current URL").to_string()
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.wait_for(css).await
    }

    /// Waits until an element matches `css` and returns it; panics after the timeout.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.poll(&format!("an element matching `{css}`"), || async {
            self.client.find(Locator::Css(css)).await.ok()
        })
        .await
    }

    /// Waits until the element matching `css` shows a text that contains `text`; returns its text.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> String {
        self.poll(&format!("`{css}` to show {text:?}"), || async {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            let shown = element.text().await.ok()?;
            shown.contains(text).then_some(shown)
        })
        .await
    }

    /// The visible text of the element matching `css` (waiting for the element).
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        element.text().await.unwrap_or_else(|e| panic!("text of `{css}`: {e}"))
    }

    /// Clears the field matching `css`, then types `text` into it. A field that a page load
    /// replaced meanwhile (a stale element) is found again and filled from the start.
    pub async fn fill(&self, css: &str, text: &str) {
        self.poll(&format!("to clear `{css}` and type {text:?} into it"), || async {
            let field = self.client.find(Locator::Css(css)).await.ok()?;
            field.clear().await.ok()?;
            field.send_keys(text).await.ok()
        })
        .await
    }

    /// Waits until the current URL contains `part` (a form submitted, a link followed).
    pub async fn wait_for_url(&self, part: &str) -> String {
        self.poll(&format!("the URL to contain {part:?}"), || async {
            let url = self.client.current_url().await.ok()?.to_string();
            url.contains(part).then_some(url)
        })
        .await
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        element.click().await.unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Chooses the option whose `value` attribute is `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        let element = self.find(css).await;
        element
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value:?} in `{css}`: {e}"));
    }

    /// The page's current HTML (the DOM as it is now, not as it was served).
    pub async fn page_source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Saves a PNG of the viewport to `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Resizes the window (the viewport is a little smaller), e.g. to a phone's width.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.expect("window size");
    }

    /// Every cookie the browser sends to the current page.
    pub async fn cookies(&self) -> Vec<BrowserCookie> {
        let cookies = self.client.get_all_cookies().await.expect("cookies");
        cookies
            .iter()
            .map(|c| BrowserCookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                path: c.path().map(str::to_owned),
                http_only: c.http_only().unwrap_or(false),
                secure: c.secure().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()),
            })
            .collect()
    }

    /// The cookie called `name`, if the browser holds one for the current page.
    pub async fn cookie(&self, name: &str) -> Option<BrowserCookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// Waits for a `window.confirm` (or `alert`) dialog, accepts it (OK) and returns its message.
    pub async fn accept_confirm(&self) -> String {
        let message = self
            .poll("a confirm dialog", || async { self.client.get_alert_text().await.ok() })
            .await;
        self.client.accept_alert().await.expect("accept the dialog");
        message
    }

    /// Waits for a `window.confirm` dialog, dismisses it (Cancel) and returns its message.
    pub async fn dismiss_confirm(&self) -> String {
        let message = self
            .poll("a confirm dialog", || async { self.client.get_alert_text().await.ok() })
            .await;
        self.client.dismiss_alert().await.expect("dismiss the dialog");
        message
    }

    /// Ends the session cleanly (the drop would kill it anyway).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Polls `check` every 100 ms until it gives a value; after the timeout, panics with `what`
    /// was awaited and what the page showed.
    async fn poll<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if Instant::now() >= deadline {
                panic!("waited {:?} for {what}; {}", self.timeout, self.describe_page().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current URL and visible text, for failure messages.
    async fn describe_page(&self) -> String {
        if let Ok(text) = self.client.get_alert_text().await {
            return format!("a dialog is open: {text:?}");
        }
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let text: String = text.chars().take(2000).collect();
        format!("the page at {url} showed:\n{text}")
    }
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits until its `/status` says ready.
    async fn start(program: &Path) -> Self {
        let mut last_log = String::new();
        // The port is free when picked but may be taken before chromedriver binds it: try again.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("browser directory");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let log = std::fs::File::create(dir.path().join("chromedriver.log")).expect("driver log");
            let mut command = Command::new(program);
            super::tied_to_test(&mut command)
                // Without --allowed-ips, chromedriver listens on the loopback interface only.
                .arg(format!("--port={port}"))
                .env("XDG_CONFIG_HOME", dir.path().join("config"))
                .env("XDG_CACHE_HOME", dir.path().join("cache"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("driver log"))
                .stderr(log);
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}; run scripts/ensure-browser", program.display()));
            let mut driver = Driver {
                child,
                url: format!("http://127.0.0.1:{port}"),
                dir,
            };
            if driver.ready().await {
                return driver;
            }
            last_log = driver.log();
        }
        panic!("chromedriver did not become ready; {last_log}");
    }

    /// Waits up to 10 s for `/status` to answer `ready: true`; false when the driver exits or never says so.
    async fn ready(&mut self) -> bool {
        let http = reqwest::Client::builder().no_proxy().build().expect("HTTP client");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if let Ok(answer) = http.get(format!("{}/status", self.url)).send().await
                && let Ok(status) = answer.json::<serde_json::Value>().await
                && status["value"]["ready"] == true
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// The end of chromedriver's log, for failure messages.
    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let start = log.floor_char_boundary(log.len().saturating_sub(4000));
        format!("chromedriver's log (end):\n{}", &log[start..])
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium runs in chromedriver's process group and would outlive chromedriver alone.
        // SAFETY: kill(2) on a negative pid signals that process group; it touches no memory.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
