//! Advisory file locks: concurrent `berth` processes share the store through these, not luck.

use std::fs::File;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

/// An exclusive `flock` held until dropped (the kernel also drops it if the process dies).
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock on `path` (created if missing) is ours.
    pub(crate) fn exclusive(path: &Path) -> std::io::Result<FileLock> {
        let file = open(path)?;
        flock(&file, FlockOperation::LockExclusive)?;
        Ok(FileLock { _file: file })
    }

    /// Takes the lock on an already open file (an ingest's partial file).
    pub(crate) fn on(file: File) -> std::io::Result<(FileLock, bool)> {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok((FileLock { _file: file }, true)),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                flock(&file, FlockOperation::LockExclusive)?;
                Ok((FileLock { _file: file }, false))
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}
