//! The systemd unit in `deploy/` is one systemd accepts: `systemd-analyze verify` reads it with
//! the real binary in place of `/usr/local/bin/provisio`, and the settings file it names holds
//! only variables `provisio serve` knows.

use std::process::Command;

#[test]
fn the_systemd_unit_verifies() {
    let root = env!("CARGO_MANIFEST_DIR");
    let unit = std::fs::read_to_string(format!("{root}/deploy/provisio.service")).expect("the unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/provisio serve"));
    let dir = tempfile::tempdir().expect("directory");
    let path = dir.path().join("provisio.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/provisio", env!("CARGO_BIN_EXE_provisio")),
    )
    .expect("write the unit");
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (scripts/test installs systemd when it is missing)");
    let said = String::from_utf8_lossy(&output.stderr);
    // Warnings about the machine the test runs on (no provisio user here) are not about the unit.
    let about_the_unit: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("provisio.service") && !line.contains("User") && !line.contains("Group"))
        .collect();
    assert!(output.status.success() && about_the_unit.is_empty(), "{said}");
}

#[test]
fn the_settings_file_names_only_known_variables() {
    let root = env!("CARGO_MANIFEST_DIR");
    let env = std::fs::read_to_string(format!("{root}/deploy/provisio.env")).expect("the settings file");
    let help = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["serve", "--help"])
        .output()
        .expect("serve --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let mut named = 0;
    for line in env.lines() {
        let line = line.trim_start_matches('#');
        if let Some((name, _)) = line.split_once('=')
            && name.starts_with("PROVISIO_")
            && !name.contains(' ')
        {
            named += 1;
            assert!(help.contains(name), "{name} is not a variable of provisio serve");
        }
    }
    assert!(named >= 8, "the settings file shows the main settings ({named})");
}
