//! Unpacked layers, one directory each, ready to be overlayfs lower layers.
//!
//! Vocabulary (containerd's): a snapshot is *prepared* under a temporary key while a layer is
//! unpacked into it, then *committed* under its name, the layer's chain ID. Prepared and
//! committed never turn into each other in place: commit is a rename, so a committed
//! snapshot is always whole, and a prepared one that was never committed (the process was
//! killed) is swept away later.
//!
//! Walk-through: pulling `python` unpacks layer 1 into a prepared snapshot and commits it as
//! `chain(1) = diff(1)`; layer 2 is unpacked in parallel into its own directory and committed
//! as `chain(2) = sha256(chain(1) + " " + diff(2))` with parent `chain(1)`. Running a
//! container asks [`Snapshots::lowerdirs`] for `chain(2)` and gets `[chain(2), chain(1)]`
//! (top first), which the runtime mounts as overlayfs `lowerdir=`, with an upper directory of
//! its own. Each layer is unpacked independently (as Docker's overlay2 does), which is what
//! lets layers unpack while they download.
//!
//! On disk: `snapshots/<chain hex>/fs/` is the layer's tree (overlay whiteouts and opaque
//! markers included) and `snapshots/<chain hex>/snapshot.json` its [`SnapshotInfo`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::validate_digest;
use crate::Error;

const META: &str = "snapshot.json";
const TMP_PREFIX: &str = ".tmp-";
const TRASH_PREFIX: &str = ".trash-";

/// What a committed snapshot records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The chain ID that names it.
    pub chain_id: String,
    /// The chain ID of the snapshot beneath, if any.
    pub parent: Option<String>,
    /// The uncompressed digest of the layer it holds.
    pub diff_id: String,
    /// Bytes of regular files in the layer (Docker's layer size).
    pub size: u64,
}

/// The snapshot half of the store.
#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
}

/// A snapshot being filled. Dropped without commit, its directory is removed.
pub struct Prepared {
    dir: PathBuf,
    committed: bool,
}

impl Prepared {
    /// The directory to unpack the layer into.
    pub fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Snapshots {
    /// Opens (creating) the snapshot store under `root`.
    pub fn open(root: &Path) -> Result<Snapshots, Error> {
        let root = root.join("snapshots");
        std::fs::create_dir_all(&root)
            .map_err(Error::io(format!("creating {}", root.display())))?;
        Ok(Snapshots { root })
    }

    fn dir(&self, chain_id: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join(validate_digest(chain_id)?))
    }

    /// The committed snapshot named `chain_id`, if present.
    pub fn stat(&self, chain_id: &str) -> Result<Option<SnapshotInfo>, Error> {
        let meta = self.dir(chain_id)?.join(META);
        match std::fs::read(&meta) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::malformed(meta.display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", meta.display()))(e)),
        }
    }

    /// Makes an empty directory to unpack a layer into; `label` (a digest, usually the chain
    /// ID to be) only names the directory while it is being filled.
    pub fn prepare(&self, label: &str) -> Result<Prepared, Error> {
        let hex: String = label
            .trim_start_matches("sha256:")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .chain(std::iter::repeat('0'))
            .take(12)
            .collect();
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.root.join(format!(
            "{TMP_PREFIX}{}-{}-{n}-{}",
            std::process::id(),
            hex,
            nanos()
        ));
        std::fs::create_dir_all(dir.join("fs"))
            .map_err(Error::io(format!("preparing snapshot {}", dir.display())))?;
        Ok(Prepared {
            dir,
            committed: false,
        })
    }

    /// Records `info` and renames the prepared directory to its name. If another process
    /// committed the same chain ID meanwhile, theirs is kept and ours discarded.
    pub fn commit(&self, mut prepared: Prepared, info: &SnapshotInfo) -> Result<(), Error> {
        let target = self.dir(&info.chain_id)?;
        let meta = serde_json::to_vec(info).expect("snapshot info serialises");
        std::fs::write(prepared.dir.join(META), meta)
            .map_err(Error::io(format!("writing {META} for {}", info.chain_id)))?;
        match std::fs::rename(&prepared.dir, &target) {
            Ok(()) => {
                prepared.committed = true;
                Ok(())
            }
            Err(_) if self.stat(&info.chain_id)?.is_some() => Ok(()),
            Err(e) => Err(Error::io(format!("committing snapshot {}", info.chain_id))(
                e,
            )),
        }
    }

    /// The overlay lower directories for a snapshot and its ancestors, top first.
    pub fn lowerdirs(&self, chain_id: &str) -> Result<Vec<PathBuf>, Error> {
        let mut out = Vec::new();
        let mut cur = Some(chain_id.to_string());
        while let Some(id) = cur {
            let info = self.stat(&id)?.ok_or_else(|| Error::NoSuchImage {
                name: format!("snapshot {id}"),
            })?;
            out.push(self.dir(&id)?.join("fs"));
            cur = info.parent;
        }
        Ok(out)
    }

    /// The tree of a committed snapshot.
    pub fn fs_path(&self, chain_id: &str) -> Result<PathBuf, Error> {
        Ok(self.dir(chain_id)?.join("fs"))
    }

    /// Removes a committed snapshot: renamed aside first, so it vanishes at once even if the
    /// recursive delete is interrupted.
    pub fn remove(&self, chain_id: &str) -> Result<(), Error> {
        let dir = self.dir(chain_id)?;
        let trash = self.root.join(format!(
            "{TRASH_PREFIX}{}-{}",
            validate_digest(chain_id)?,
            nanos()
        ));
        match std::fs::rename(&dir, &trash) {
            Ok(()) => std::fs::remove_dir_all(&trash)
                .map_err(Error::io(format!("removing snapshot {chain_id}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing snapshot {chain_id}"))(e)),
        }
    }

    /// Every committed snapshot.
    pub fn walk(&self) -> Result<Vec<SnapshotInfo>, Error> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.root).map_err(Error::io("listing snapshots"))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Ok(Some(info)) = self.stat(&format!("sha256:{name}")) {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// Deletes prepared snapshots whose process is gone and interrupted removals.
    pub fn clean_stale(&self) {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let stale = if let Some(rest) = name.strip_prefix(TMP_PREFIX) {
                let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
                pid.is_none_or(|p| !Path::new(&format!("/proc/{p}")).exists())
            } else {
                name.starts_with(TRASH_PREFIX)
            };
            if stale {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
