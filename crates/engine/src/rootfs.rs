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
    ///
    /// `volatile` is for a filesystem nobody keeps (`--rm`, build steps): overlayfs then
    /// never syncs the upper layer, and unmounting does not flush the whole host
    /// filesystem, which costs from 1 to 100 ms a container when the disk is busy.
    pub fn mount(&self, lowerdirs: &[PathBuf], volatile: bool) -> Result<(), Error> {
        // A volatile mount leaves a marker in the work dir that makes overlayfs refuse the
        // next mount (its upper may have missed a crash); the work dir holds no data, so a
        // fresh one lets a container whose monitor was killed start again.
        if self.work.join("work/incompat/volatile").exists() {
            std::fs::remove_dir_all(&self.work)
                .map_err(Error::io(format!("clearing {}", self.work.display())))?;
        }
        for d in [&self.rootfs, &self.upper, &self.work] {
            std::fs::create_dir_all(d).map_err(Error::io(format!("creating {}", d.display())))?;
        }
        let lower: Vec<String> = lowerdirs.iter().map(|p| p.display().to_string()).collect();
        // No redirect_dir or metacopy: the upper dir must stay a complete layer diff.
        let mut data = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        );
        if volatile {
            data.push_str(",volatile");
        }
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
/// mounts them over the image's files. `dns` is the user network's DNS server (the
/// container's only nameserver then, as Docker's 127.0.0.11 is); otherwise the host's
/// `resolv.conf` is the container's.
pub fn write_etc_files(
    dir: &Path,
    hostname: &str,
    host_network: bool,
    ip: Option<std::net::Ipv4Addr>,
    dns: Option<std::net::Ipv4Addr>,
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
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write(
        "resolv.conf",
        match dns {
            Some(server) => network_resolv_conf(&host, server),
            None => host,
        },
    )
}

/// A user network container's `resolv.conf`: the network's server, the host's search
/// domains and options, and `ndots:0` (names without dots are asked as they are first),
/// as Docker writes it.
fn network_resolv_conf(host: &str, server: std::net::Ipv4Addr) -> String {
    let mut text = format!("nameserver {server}\n");
    for line in host.lines() {
        let l = line.trim_start();
        if l.starts_with("search") || l.starts_with("domain") || l.starts_with("options") {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str("options ndots:0\n");
    text
}

#[cfg(test)]
mod tests {
    use super::Layout;

    #[test]
    fn a_user_networks_resolv_conf_names_its_server_only() {
        let host = "# generated\nnameserver 127.0.0.53\nsearch lan corp\noptions edns0\n";
        assert_eq!(
            super::network_resolv_conf(host, std::net::Ipv4Addr::new(10, 90, 1, 1)),
            "nameserver 10.90.1.1\nsearch lan corp\noptions edns0\noptions ndots:0\n"
        );
    }

    /// A volatile mount leaves a marker that makes overlayfs refuse the next mount of the
    /// same upper dir; `mount` clears it, so a container whose monitor died starts again.
    #[test]
    fn a_volatile_mount_can_be_mounted_again() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let lower = tmp.path().join("lower");
        std::fs::create_dir_all(&lower).unwrap();
        std::fs::write(lower.join("f"), "x").unwrap();
        let layout = Layout::new(&tmp.path().join("c"));
        for volatile in [true, true, false] {
            layout
                .mount(std::slice::from_ref(&lower), volatile)
                .unwrap();
            assert_eq!(
                std::fs::read_to_string(layout.rootfs.join("f")).unwrap(),
                "x"
            );
            std::fs::write(layout.rootfs.join("g"), "y").unwrap();
            layout.unmount().unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("c/upper/g")).unwrap(),
            "y"
        );
    }
}
