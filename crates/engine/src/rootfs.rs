//! A container's root filesystem: image snapshots as overlayfs lower layers under a writable
//! upper layer of its own, and the three `/etc` files Docker generates.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use crate::Error;

/// The directories of a container's filesystem, all inside its container directory.
pub struct Layout {
    /// The OCI bundle (holds `config.json`).
    pub bundle: PathBuf,
    /// The overlay mount point, the bundle's `rootfs`.
    pub rootfs: PathBuf,
    upper: PathBuf,
    work: PathBuf,
}

impl Layout {
    /// The layout of the container whose directory is `dir`.
    pub fn new(dir: &Path) -> Layout {
        Layout {
            bundle: dir.join("bundle"),
            rootfs: dir.join("bundle/rootfs"),
            upper: dir.join("upper"),
            work: dir.join("work"),
        }
    }

    /// Mounts the overlay (lower dirs top first, as the image store gives them).
    pub fn mount(&self, lowerdirs: &[PathBuf]) -> Result<(), Error> {
        for d in [&self.rootfs, &self.upper, &self.work] {
            std::fs::create_dir_all(d).map_err(Error::io(format!("creating {}", d.display())))?;
        }
        let lower: Vec<String> = lowerdirs.iter().map(|p| p.display().to_string()).collect();
        // No redirect_dir or metacopy: the upper dir must stay a complete layer diff.
        let data = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        );
        let data = CString::new(data)
            .map_err(|_| Error::Invalid("a layer path holds a NUL byte".into()))?;
        rustix::mount::mount(
            "overlay",
            &self.rootfs,
            "overlay",
            MountFlags::empty(),
            data.as_c_str(),
        )
        .map_err(|e| {
            Error::io(format!(
                "mounting the root filesystem at {}",
                self.rootfs.display()
            ))(e.into())
        })
    }

    /// Unmounts the overlay if mounted (lazily, so a stray process cannot block removal).
    pub fn unmount(&self) -> Result<(), Error> {
        match rustix::mount::unmount(&self.rootfs, UnmountFlags::DETACH) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::io(format!("unmounting {}", self.rootfs.display()))(
                e.into(),
            )),
        }
    }
}

/// Writes `hostname`, `hosts` and `resolv.conf` into the container directory; the spec bind
/// mounts them over the image's files.
pub fn write_etc_files(
    dir: &Path,
    hostname: &str,
    host_network: bool,
    ip: Option<std::net::Ipv4Addr>,
    extra_hosts: &[(String, String)],
) -> Result<(), Error> {
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(Error::io(format!("writing {}", p.display())))
    };
    write("hostname", format!("{hostname}\n"))?;
    let hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else if let Some(ip) = ip {
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{ip}\t{hostname}\n")
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string()
    };
    let mut hosts = hosts;
    for (name, addr) in extra_hosts {
        hosts.push_str(&format!("{addr}\t{name}\n"));
    }
    write("hosts", hosts)?;
    write(
        "resolv.conf",
        std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    )
}
