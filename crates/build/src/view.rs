//! Read-only views of an image's filesystem (another stage's, or a pulled image's), for
//! `COPY --from` and `RUN --mount=type=bind,from=`: its snapshots stacked as a read-only
//! overlay, so whiteouts and opaque directories mean what they mean in a container.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use crate::Error;

/// A mounted view; unmounted when dropped.
pub(crate) struct View {
    root: PathBuf,
    mounted: bool,
}

impl View {
    /// Mounts `lower` (snapshots, top first) at `dir/root`; an empty stack is an empty folder.
    pub fn mount(dir: &Path, lower: &[PathBuf]) -> Result<View, Error> {
        let root = dir.join("root");
        let empty = dir.join("empty");
        for d in [&root, &empty] {
            std::fs::create_dir_all(d).map_err(Error::io(format!("creating {}", d.display())))?;
        }
        if lower.is_empty() {
            return Ok(View {
                root,
                mounted: false,
            });
        }
        // A read-only overlay needs two lower layers at least; an empty one costs nothing.
        let mut dirs: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
        dirs.push(empty.display().to_string());
        let data = CString::new(format!("lowerdir={}", dirs.join(":")))
            .map_err(|_| Error::Invalid("a layer path holds a NUL byte".into()))?;
        rustix::mount::mount(
            "overlay",
            &root,
            "overlay",
            MountFlags::RDONLY | MountFlags::NODEV | MountFlags::NOSUID,
            data.as_c_str(),
        )
        .map_err(|e| {
            Error::io(format!("mounting a view of an image at {}", root.display()))(e.into())
        })?;
        Ok(View {
            root,
            mounted: true,
        })
    }

    /// The view's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.root, UnmountFlags::DETACH);
        }
    }
}
