//! A small file system that tests fill up: a tmpfs of a few megabytes mounted on a temporary
//! directory (the test suite runs as root, as CI does on this machine kind), and a ballast file
//! that takes every free byte and gives it back.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A mounted tmpfs, unmounted when dropped.
pub struct SmallDisk {
    dir: tempfile::TempDir,
    ballast: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `megabytes` MiB. Fails the test with the reason when mounting is not
    /// possible (mounting needs root, which the suite and CI have here).
    pub fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a {megabytes} MiB tmpfs failed ({status}): the full-disk tests need root (CI runs as root)"
        );
        let ballast = dir.path().join("ballast");
        SmallDisk { dir, ballast }
    }

    /// Where the file system is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the ballast file until the file system has no byte left.
    pub fn fill(&self) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.ballast)
            .expect("ballast");
        let chunk = vec![0xA5u8; 64 * 1024];
        let mut small = [0xA5u8; 512];
        while file.write_all(&chunk).is_ok() {}
        // The last bytes, in small pieces.
        while file.write_all(&small).is_ok() {
            small[0] = small[0].wrapping_add(1);
        }
        let _ = file.sync_all();
    }

    /// Deletes the ballast: the space is free again.
    pub fn free(&self) {
        std::fs::remove_file(&self.ballast).expect("remove ballast");
    }

    /// Free bytes on the file system.
    pub fn available(&self) -> u64 {
        let output = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .expect("df");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df output")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a process that still has a file open there does not keep the mount.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
