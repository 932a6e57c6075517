//! Proves the browser harness (tests/common/browser.rs): a real headless Chromium, through
//! chromedriver, opens pages of a real hub, and every helper the console's page tests use works.
//! Needs Chromium and chromedriver (scripts/ensure-browser, which scripts/test runs); without them
//! these tests fail, they do not skip.

mod common;

use common::browser::Browser;
use common::{Backend, TestHub};
use std::time::Duration;

/// Width and height from a PNG's header, after checking its signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_opens_the_hubs_pages() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let browser = Browser::start().await;

    browser.goto(&format!("{}/healthz", hub.base_url)).await;
    assert_eq!(browser.text("body").await, "ok");

    browser.goto(&format!("{}/api/v1/openapi.json", hub.base_url)).await;
    let text = browser.wait_for_text("pre", "\"openapi\"").await;
    let spec: serde_json::Value = serde_json::from_str(&text).expect("the page shows the OpenAPI JSON");
    assert!(spec["paths"]["/api/v1/users"].is_object(), "{text}");
    assert!(browser.page_source().await.contains("/api/v1/users"));
    assert!(browser.url().await.ends_with("/api/v1/openapi.json"));

    let path = browser.screenshot("smoke-openapi").await;
    let png = std::fs::read(&path).expect("the screenshot file");
    assert!(png.len() > 5_000, "{} is only {} bytes", path.display(), png.len());
    let (width, height) = png_size(&png);
    assert!(width >= 1000 && height >= 600, "viewport {width}×{height}");
    browser.set_window_size(400, 800).await;
    let (narrow, _) = png_size(&std::fs::read(browser.screenshot("smoke-narrow").await).expect("screenshot"));
    assert!(
        narrow <= 400,
        "after resizing the window, the viewport is {narrow} wide"
    );

    // Cookies of the hub's origin, with their flags (this one is set by script, so not HttpOnly).
    let script = "document.cookie = 'probe=42; SameSite=Strict; path=/'";
    browser.client().execute(script, vec![]).await.expect("set a cookie");
    let cookie = browser.cookie("probe").await.expect("the cookie");
    assert_eq!(
        (cookie.value.as_str(), cookie.same_site.as_deref()),
        ("42", Some("Strict"))
    );
    assert!(!cookie.http_only && !cookie.secure, "{cookie:?}");

    // A window.confirm, answered OK.
    let script = "setTimeout(() => { window.answer = confirm('Remove Staff?'); }, 50)";
    browser.client().execute(script, vec![]).await.expect("open a confirm");
    assert_eq!(browser.accept_confirm().await, "Remove Staff?");
    let answer = browser
        .client()
        .execute("return window.answer", vec![])
        .await
        .expect("answer");
    assert_eq!(answer, serde_json::json!(true));

    browser.close().await;
    hub.stop().await;
}

const FORM: &str = r#"<!doctype html><title>form</title>
<form onsubmit="event.preventDefault();
  document.querySelector('#out').textContent = 'saved ' + document.getElementById('name').value
  + ' as ' + document.getElementById('role').value">
  <input id="name" value="old"> <select id="role"><option value="viewer">Viewer</option>
  <option value="admin">Admin</option></select> <button id="save">Save</button></form>
<p id="out"></p>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helpers_fill_select_click_and_wait() {
    let mut browser = Browser::start().await;
    browser
        .goto(&format!("data:text/html,{}", FORM.replace('#', "%23")))
        .await;
    browser.fill("#name", "Ada").await;
    browser.select("#role", "admin").await;
    browser.click("#save").await;
    assert_eq!(browser.wait_for_text("#out", "saved").await, "saved Ada as admin");

    // A wait that times out says what it waited for and what the page showed.
    browser.timeout = Duration::from_millis(500);
    let failed = tokio::spawn(async move { browser.wait_for_text("#out", "deleted").await }).await;
    let panic = failed.expect_err("the wait must fail").into_panic();
    let message = panic.downcast_ref::<String>().expect("a panic message");
    assert!(message.contains("`#out` to show \"deleted\""), "{message}");
    assert!(message.contains("saved Ada as admin"), "{message}");
}
