//! The README's short tour, run as written: its shell blocks, in order, against a real
//! `provisio serve` and a real scim2-server, with only the ports, the binary's path and the
//! temporary files moved to where this test put them. Then what the tour says happened is checked.

mod common;

use common::referee::ScimTarget;
use common::{HubProcess, eventually};
use std::process::Command;

/// The ```sh blocks of the README section that starts with `heading`, in order.
fn shell_blocks(readme: &str, heading: &str) -> Vec<String> {
    let start = readme.find(heading).expect("the tour section");
    let rest = &readme[start + heading.len()..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut blocks = Vec::new();
    let mut inside: Option<String> = None;
    for line in section.lines() {
        match (&mut inside, line.trim_end()) {
            (None, "```sh") => inside = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                inside = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_tour_runs_as_written() {
    provisio::install_crypto_provider();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let blocks = shell_blocks(&readme, "## A short tour");
    assert_eq!(blocks.len(), 4, "the tour's shell blocks: {blocks:?}");
    let referee = "scim2-server --hostname 127.0.0.1 --port 9000 --bearer-token t";
    assert!(blocks[2].contains(referee), "the referee block: {}", blocks[2]);

    // The hub of the first command, with its data in ./provisio-data of a fresh directory.
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("provisio-data");
    let hub = HubProcess::spawn(
        &["--data-dir".to_owned(), data.display().to_string()],
        &data.join("secret.key"),
        &[],
    )
    .await;
    let hub_address = hub.base_url.trim_start_matches("http://").to_owned();
    // The referee in its own shell: the same command, on a free port.
    let target = ScimTarget::start_with_token("t").await;
    let target_address = target
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches("/v2")
        .to_owned();

    let mut script = String::from("set -euo pipefail\nshopt -s expand_aliases\n");
    for (index, block) in blocks.iter().enumerate() {
        if index != 2 {
            script.push_str(block);
        }
    }
    let script = script
        .replace("./target/release/provisio", env!("CARGO_BIN_EXE_provisio"))
        .replace("127.0.0.1:8080", &hub_address)
        .replace("127.0.0.1:9000", &target_address)
        .replace("/tmp/app-token", &work.path().join("app-token").display().to_string());
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the tour failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("\"error\""), "a curl call was refused:\n{stdout}");

    // What the tour says happened.
    assert!(stdout.contains("alice"), "{stdout}");
    assert!(stdout.contains("TARGET"), "the mapping table: {stdout}");
    eventually(30, "alice's account in the app", || async {
        target.user("alice").await
    })
    .await;
    let alice = target.user("alice").await.unwrap();
    assert_eq!(alice["title"], "Engineer");
    assert!(target.user("bob").await.is_none(), "bob is not in Engineering");
    assert!(hub.stop().success());
}
