//! Volumes: directories in the store that outlive containers (`<root>/volumes/<name>/_data`,
//! Docker's `local` driver layout), named by the user or anonymous (64 hex characters).
//!
//! A volume's record (`volume.json`) is written atomically after its `_data` directory, so
//! a half-made volume has no record and is not listed; `remove` renames before deleting.
//! A volume is "in use" while any container record names it, running or not, as in Docker.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

const RECORD: &str = "volume.json";

/// One volume as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// `--label`s.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image's VOLUME): `rm -v` and prune take it.
    #[serde(default)]
    pub anonymous: bool,
    /// Whether a container has mounted it yet (the first mount copies the image's files in).
    #[serde(default)]
    pub populated: bool,
}

/// The volumes of one store.
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    /// The volumes under `<root>/volumes`.
    pub fn new(root: &Path) -> Volumes {
        Volumes {
            dir: root.join("volumes"),
        }
    }

    /// The directory containers mount.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Creates a volume, or returns the existing one of that name (as `docker volume create`
    /// does).
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume, Error> {
        if !crate::options::valid_name(name) {
            return Err(Error::Invalid(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        if let Ok(v) = self.get(name) {
            return Ok(v);
        }
        let data = self.data(name);
        std::fs::create_dir_all(&data).map_err(Error::io(format!("creating volume {name}")))?;
        let v = Volume {
            name: name.into(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            anonymous,
            populated: false,
        };
        self.save(&v)?;
        Ok(v)
    }

    /// Rewrites a volume's record atomically.
    pub fn save(&self, v: &Volume) -> Result<(), Error> {
        let dir = self.dir.join(&v.name);
        let tmp = dir.join(format!(".{RECORD}.{}", std::process::id()));
        let ctx = || format!("writing the record of volume {}", v.name);
        let mut f = std::fs::File::create(&tmp).map_err(Error::io(ctx()))?;
        f.write_all(&serde_json::to_vec_pretty(v).expect("volume serialises"))
            .map_err(Error::io(ctx()))?;
        f.sync_all().map_err(Error::io(ctx()))?;
        std::fs::rename(&tmp, dir.join(RECORD)).map_err(Error::io(ctx()))
    }

    /// One volume by name.
    pub fn get(&self, name: &str) -> Result<Volume, Error> {
        let bytes = std::fs::read(self.dir.join(name).join(RECORD))
            .map_err(|_| Error::NoSuchVolume(name.into()))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Io {
            context: format!("reading volume {name}"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    /// Every volume with a readable record, by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Deletes a volume (the caller checks it is unused).
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        self.get(name)?;
        let trash = self
            .dir
            .join(format!(".trash-{name}-{}", std::process::id()));
        std::fs::rename(self.dir.join(name), &trash)
            .map_err(Error::io(format!("removing volume {name}")))?;
        std::fs::remove_dir_all(&trash).map_err(Error::io(format!("removing volume {name}")))
    }

    /// The path `docker volume inspect` shows as Mountpoint.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.data(name)
    }
}

/// Copies what the image has at `target` into an empty volume on its first mount, as Docker
/// does, so `-v data:/var/lib/app` starts with the image's files. The source is opened with
/// `RESOLVE_IN_ROOT`, so a symlink in the image cannot make this copy host files; `cp -a`
/// then copies links as links.
pub fn copy_up(rootfs: &Path, target: &str, data: &Path) -> Result<(), Error> {
    let empty = std::fs::read_dir(data)
        .map(|mut rd| rd.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let Some(fd) = crate::user::open_dir_in_root(rootfs, target) else {
        return Ok(());
    };
    use std::os::fd::AsRawFd;
    // Through our own /proc entry: the fd is close-on-exec, and cp runs as root.
    let src = format!("/proc/{}/fd/{}/.", std::process::id(), fd.as_raw_fd());
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(data)
        .status()
        .map_err(Error::io("running cp for a volume's first mount"))?;
    drop(fd);
    if !status.success() {
        return Err(Error::Invalid(format!(
            "copying the image's {target} into volume {}: cp failed",
            data.display()
        )));
    }
    Ok(())
}
