//! The admin API's OpenAPI document is valid OpenAPI 3.1, as judged by an independent validator
//! (openapi-spec-validator from PyPI, installed into the referee venv by `scripts/setup-referees`),
//! so that client generators accept it.

mod common;

use common::referee::referee_venv;
use serde_json::Value;
use std::process::Command;

#[test]
fn openapi_document_is_valid_openapi_3_1() {
    let document: Value = serde_json::to_value(provisio::api::openapi()).expect("the document serialises");
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3.1"),
        "the document is OpenAPI {version:?}, not 3.1"
    );

    let validator = referee_venv().join("bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "openapi-spec-validator is not installed at {}: run scripts/setup-referees",
        validator.display()
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&document).expect("json")).expect("write the document");

    let output = Command::new(&validator)
        .args(["--schema", "3.1", "--validation-errors", "all"])
        .arg(&path)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        output.status.success(),
        "openapi-spec-validator rejects the document ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
