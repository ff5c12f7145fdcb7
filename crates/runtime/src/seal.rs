//! Read-only cgroup mounts, as the spec asks and libcontainer does not do.
//!
//! libcontainer 0.7 mounts a spec's `cgroup` mount (Docker's `/sys/fs/cgroup`, `ro`) with
//! every part writable: on cgroup v1 the tmpfs and each controller's bind of the container's
//! own cgroup, so a container's root could raise its own memory limit or make cgroups that
//! block the container's removal. Between create and start (the init waits, no container
//! code has run), a short-lived thread enters the container's mount namespace and makes the
//! whole tree read-only with one recursive `mount_setattr`.

use std::ffi::CString;
use std::path::Path;

use nix::libc;
use nix::sched::{setns, unshare, CloneFlags};

use libcontainer::oci_spec::runtime::Spec;

/// The destinations of the spec's `cgroup` mounts that ask to be read-only.
pub fn read_only_cgroup_mounts(spec: &Spec) -> Vec<std::path::PathBuf> {
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() == Some("cgroup"))
        .filter(|m| m.options().iter().flatten().any(|o| o == "ro"))
        .map(|m| m.destination().clone())
        .collect()
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
#[derive(Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// Makes `paths` (and every mount below them) read-only in the mount namespace of `pid`,
/// a created container's waiting init.
pub(crate) fn read_only_in(pid: i32, paths: &[std::path::PathBuf]) -> std::io::Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("cgroup-seal".into())
            .spawn_scoped(s, || -> std::io::Result<()> {
                // A thread may change mount namespace once it no longer shares its root and
                // cwd with the process; the process's own namespace is untouched.
                unshare(CloneFlags::CLONE_FS)?;
                setns(&ns, CloneFlags::CLONE_NEWNS)?;
                for p in paths {
                    read_only_tree(p)?;
                }
                Ok(())
            })?
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("sealing thread panicked")))
    })
}

fn read_only_tree(path: &Path) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    // SAFETY: mount_setattr reads a NUL-terminated path and a mount_attr of the size given;
    // both live across the call. The path is resolved in the container's namespace, under a
    // sysfs or cgroup mount the runtime just made, which no container code has touched.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            (libc::AT_RECURSIVE | libc::AT_SYMLINK_NOFOLLOW) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
