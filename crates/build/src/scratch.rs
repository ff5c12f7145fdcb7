//! A build's scratch folder, and the cleanup of builds that died without removing theirs.
//!
//! Every build keeps what it makes on the side (layer tars, heredoc bodies, copies for bind
//! mounts, an unpacked tar context, read-only overlay views of other stages) in one folder
//! `<root>/tmp/build-XXXXXX`, which it holds under an exclusive `flock` for as long as it
//! runs. Its RUN containers carry the folder's name in the [`OWNER_LABEL`] label. A build
//! killed with `-9` cannot clean up, but the kernel drops its lock: the next build (or
//! `system prune`) finds the folder unlocked, kills and removes the containers that name it,
//! unmounts the views under it and deletes it. The lock, not a PID, tells a live build from a
//! dead one, so a reused PID cannot fool it.
//!
//! So that a killed build leaves nothing even when no other build comes, a build that starts
//! a RUN container or mounts a view first starts a reaper ([`Scratch::watch`]): a fresh
//! `berth build-reaper` process, detached, that blocks on the same lock and, when it gets
//! it while the folder is still there (its build died), does the cleanup at once. A build
//! that ends normally removes the folder first, and its reaper just exits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_engine::{Engine, State};
use rustix::fs::FlockOperation;

use crate::Error;

/// The container label naming the scratch folder of the build that runs the container.
pub const OWNER_LABEL: &str = "berth.build.scratch";

/// Names of scratch folders start with this.
const PREFIX: &str = "build-";

/// A locked scratch folder under the store; unmounted and removed when dropped.
pub struct Scratch {
    dir: PathBuf,
    _lock: std::fs::File,
    next: usize,
    /// The reaper, once started; left to run (it exits when this build does).
    reaper: Option<std::process::Child>,
}

impl Scratch {
    /// Makes and locks a fresh scratch folder under `<store_root>/tmp`.
    pub fn new(store_root: &Path) -> Result<Scratch, Error> {
        let tmp = store_root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(Error::io(format!("creating {}", tmp.display())))?;
        // Made under a name cleanup ignores, locked, then renamed: cleanup never sees it
        // unlocked.
        let fresh = tempfile::Builder::new()
            .prefix(".new-build-")
            .tempdir_in(&tmp)
            .map_err(Error::io("making the build's scratch folder"))?;
        let lock = std::fs::File::open(fresh.path())
            .map_err(Error::io("opening the build's scratch folder"))?;
        rustix::fs::flock(&lock, FlockOperation::LockExclusive)
            .map_err(|e| Error::io("locking the build's scratch folder")(e.into()))?;
        let suffix = fresh
            .path()
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_start_matches(".new-build-")
                    .to_string()
            })
            .unwrap_or_default();
        let dir = tmp.join(format!("{PREFIX}{suffix}"));
        std::fs::rename(fresh.path(), &dir)
            .map_err(Error::io("naming the build's scratch folder"))?;
        // Renamed away: the TempDir has nothing left to delete.
        let _ = fresh.keep();
        Ok(Scratch {
            dir,
            _lock: lock,
            next: 0,
            reaper: None,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The folder's name, as [`OWNER_LABEL`] records it.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// A fresh path in the folder for a file (not created).
    pub fn file(&mut self, what: &str) -> PathBuf {
        self.next += 1;
        self.dir.join(format!("{}-{what}", self.next))
    }

    /// Starts the reaper of this build unless it runs already: `berth build-reaper` (this
    /// very binary, as the engine starts its monitors) in a process group of its own, so
    /// neither Ctrl-C nor `kill -9` of the build reaches it.
    pub fn watch(&mut self, engine: &Engine) -> Result<(), Error> {
        use std::os::unix::process::CommandExt;
        if self.reaper.is_some() {
            return Ok(());
        }
        let exe = std::env::current_exe().map_err(Error::io("finding the berth binary"))?;
        let runtime = engine.runtime_root();
        let runroot = runtime.parent().unwrap_or(&runtime);
        let child = std::process::Command::new(exe)
            .arg("--root")
            .arg(engine.root())
            .arg("--runroot")
            .arg(runroot)
            .arg("build-reaper")
            .arg(self.name())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(Error::io("starting the build's reaper"))?;
        self.reaper = Some(child);
        Ok(())
    }

    /// A fresh, empty sub-folder.
    pub fn dir(&mut self, what: &str) -> Result<PathBuf, Error> {
        let path = self.file(what);
        std::fs::create_dir_all(&path)
            .map_err(Error::io(format!("creating {}", path.display())))?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The reaper's work (`berth build-reaper NAME`): waits until the build that holds the
/// scratch folder `name` ends; if it died without removing the folder, cleans up after it.
pub fn reap_when_done(engine: &Engine, name: &str) -> Result<(), Error> {
    if !name.starts_with(PREFIX) || name.contains('/') {
        return Err(Error::Invalid(format!(
            "{name:?} is not a build's scratch folder"
        )));
    }
    let path = engine.root().join("tmp").join(name);
    let Ok(dir) = std::fs::File::open(&path) else {
        // The build is over already.
        return Ok(());
    };
    rustix::fs::flock(&dir, FlockOperation::LockExclusive)
        .map_err(|e| Error::io("waiting for the build to end")(e.into()))?;
    drop(dir);
    if path.exists() {
        clean_stale(engine)?;
    }
    Ok(())
}

/// Whether the scratch folder `name` belongs to a build that still runs.
fn alive(tmp: &Path, name: &str) -> bool {
    let Ok(dir) = std::fs::File::open(tmp.join(name)) else {
        return false;
    };
    // A live build holds the lock; taking it means its build is gone.
    rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_err()
}

/// Cleans up after builds that died without doing so (`kill -9`, a crash, a power cut):
/// kills and removes their RUN containers, unmounts their views, deletes their scratch
/// folders. Returns the IDs of the containers it removed, for `system prune` to show.
pub fn clean_stale(engine: &Engine) -> Result<Vec<String>, Error> {
    let tmp = engine.root().join("tmp");
    let mut removed = Vec::new();
    for record in engine.list()? {
        let Some(owner) = record.options.labels.get(OWNER_LABEL) else {
            continue;
        };
        if alive(&tmp, owner) {
            continue;
        }
        if record.monitor_alive() {
            engine.stop(&record, 9, Duration::ZERO)?;
        }
        let record = engine.load(&record.id)?;
        if record.state != State::Exited && record.monitor_pid.is_some() {
            engine.reap_orphan(&record)?;
        }
        engine.remove(&record.id)?;
        removed.push(record.id);
    }
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return Ok(removed);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PREFIX) || !e.path().is_dir() || alive(&tmp, &name) {
            continue;
        }
        unmount_under(&e.path());
        std::fs::remove_dir_all(e.path())
            .map_err(Error::io(format!("removing {}", e.path().display())))?;
    }
    Ok(removed)
}

/// Unmounts (lazily, deepest first) whatever is mounted at or below `dir`.
fn unmount_under(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else {
        return;
    };
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(&dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for p in points {
        let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
    }
}

/// A mountinfo path with its octal escapes (`\040` for a space) decoded.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(n) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b/c"), "/a b/c");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\"), "/end\\");
    }

    #[test]
    fn a_locked_folder_is_alive_and_a_dropped_one_is_gone() {
        let root = tempfile::tempdir().unwrap();
        let s = Scratch::new(root.path()).unwrap();
        let tmp = root.path().join("tmp");
        assert!(alive(&tmp, &s.name()));
        let path = s.path().to_path_buf();
        drop(s);
        assert!(!path.exists());
        // A folder whose build died: not locked by anyone.
        std::fs::create_dir_all(tmp.join("build-dead")).unwrap();
        assert!(!alive(&tmp, "build-dead"));
    }
}
