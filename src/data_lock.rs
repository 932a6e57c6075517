//! The lock a hub holds on its data directory while it runs (`provisio.lock`, an advisory
//! `flock`): a restore refuses a directory a hub runs on, and the kernel lets go of the lock when
//! the process ends however it ends.

use crate::domain::{Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// The lock file's name in a data directory.
const LOCK_FILE: &str = "provisio.lock";

/// An exclusive lock on a data directory, held until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of `data_dir`, or says which process may hold it.
    pub fn acquire(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Config(format!("cannot open {}: {e}", path.display())))?;
        // SAFETY: flock on a descriptor this function owns; it reads or writes no memory.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if taken != 0 {
            let error = std::io::Error::last_os_error();
            return Err(Error::Config(if error.kind() == std::io::ErrorKind::WouldBlock {
                format!(
                    "a Provisio hub is running on {} (it holds {LOCK_FILE}): stop it first",
                    data_dir.display()
                )
            } else {
                format!("cannot lock {}: {error}", path.display())
            }));
        }
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let refused = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(refused.to_string().contains("is running on"), "{refused}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
