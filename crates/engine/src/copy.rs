//! `cp`: files between a container and the host, both ways, without ever following a link
//! of the container's out of it (CVE-2018-15664, CVE-2019-14271).
//!
//! The container side is always reached through a directory fd: the container's root (its
//! mount namespace's view through `/proc/<pid>/root` while it runs, so volumes are seen;
//! its overlay, mounted for the copy, when it does not), and every path under it is
//! resolved with `openat2(RESOLVE_IN_ROOT)`. Copying out writes the tree as a tar with
//! `berth-image`'s layer writer, which walks by fds and never follows a symlink; copying in
//! unpacks a tar made from the host files with its layer applier, which refuses to create
//! anything outside the target. No code of the container runs, and no library of it is
//! loaded.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::rootfs::Layout;
use crate::{ContainerRecord, Engine, Error};

/// The container's root directory, opened for the copy; unmounts what it mounted.
struct Root {
    fd: OwnedFd,
    mounted: Option<Layout>,
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Some(layout) = &self.mounted {
            let _ = layout.unmount();
        }
    }
}

/// A path of this process's to an fd (for APIs that take paths; opening it reaches exactly
/// the inode the fd names, whatever happened to the names since).
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn open_in(root: &OwnedFd, path: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let relative = path.trim_start_matches('/');
    rustix::fs::openat2(
        root,
        if relative.is_empty() { "." } else { relative },
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

fn not_found(record: &ContainerRecord, path: &str) -> Error {
    Error::Invalid(format!(
        "Could not find the file {path} in container {}",
        record.name
    ))
}

/// Splits `/a/b/c` into (`/a/b`, `c`); `/` has no name.
fn split(path: &str) -> (String, Option<String>) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((parent, name)) if !name.is_empty() && name != "." => (
            if parent.is_empty() {
                "/".into()
            } else {
                parent.into()
            },
            Some(name.into()),
        ),
        _ => (
            if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.into()
            },
            None,
        ),
    }
}

impl Engine {
    fn open_root(&self, record: &ContainerRecord) -> Result<Root, Error> {
        if record.is_running() {
            if let Some(pid) = record.pid {
                let path = format!("/proc/{pid}/root");
                let fd = rustix::fs::open(
                    path.as_str(),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::io(format!("opening {path}"))(e.into()))?;
                // The PID must still be the container's (in its cgroup), checked after the
                // root was opened: a reused PID would otherwise give the host's root.
                let cgroup =
                    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
                if !cgroup.contains(&record.id) {
                    return Err(Error::NotRunning(record.id.clone()));
                }
                return Ok(Root { fd, mounted: None });
            }
        }
        let info = self.images.info(&record.image_id)?;
        let layout = Layout::new(&self.dir(&record.id));
        layout.mount(&self.images.snapshots.lowerdirs(&info.top_chain_id)?, false)?;
        let fd = rustix::fs::open(
            &layout.rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("opening the container's root filesystem")(e.into()));
        let root = Root {
            fd: match fd {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = layout.unmount();
                    return Err(e);
                }
            },
            mounted: Some(layout),
        };
        Ok(root)
    }

    /// Writes `path` of the container as a tar to `out` (`docker cp CONTAINER:PATH -`), its
    /// entries under the path's last name; with `PATH/.`, a directory's entries at the top.
    pub fn copy_out_tar(
        &self,
        record: &ContainerRecord,
        path: &str,
        out: impl Write,
    ) -> Result<(), Error> {
        let prefix = if path.ends_with("/.") {
            None
        } else {
            Some(split(path).1.unwrap_or_else(|| ".".into()))
        };
        self.write_tar(record, path, prefix.as_deref(), out)
    }

    /// The tar of `path`: entries under `prefix` (the top file or directory renamed to it),
    /// or a directory's entries at the top when `None`.
    fn write_tar(
        &self,
        record: &ContainerRecord,
        path: &str,
        prefix: Option<&str>,
        out: impl Write,
    ) -> Result<(), Error> {
        let root = self.open_root(record)?;
        // The last component is taken as it is (a link copies as a link, as in Docker)
        // unless the path ends in `/` or `/.`.
        let follow = path.ends_with('/') || path.ends_with("/.");
        let flags = if follow {
            OFlags::PATH
        } else {
            OFlags::PATH | OFlags::NOFOLLOW
        };
        let src = open_in(&root.fd, path, flags).map_err(|_| not_found(record, path))?;
        let stat = rustix::fs::fstat(&src).map_err(|e| Error::io("stat")(e.into()))?;
        let is_dir = rustix::fs::FileType::from_raw_mode(stat.st_mode).is_dir();
        let contents_only = prefix.is_none();
        let name = prefix.unwrap_or(".").to_string();
        let mut builder = tar::Builder::new(out);
        if is_dir {
            // The layer writer's entries are relative to the directory; prefix them.
            let dir = open_in(&root.fd, path, OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(|_| not_found(record, path))?;
            let mut layer = Vec::new();
            berth_image::diff::write_layer(&fd_path(&dir), &mut layer)
                .map_err(|e| Error::Invalid(format!("copying {path}: {e}")))?;
            let mut header = tar::Header::new_gnu();
            if !contents_only {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(stat.st_mode & 0o7777);
                header.set_uid(stat.st_uid.into());
                header.set_gid(stat.st_gid.into());
                header.set_mtime(stat.st_mtime as u64);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{name}/"), std::io::empty())
                    .map_err(Error::io("writing the tar"))?;
            }
            let mut archive = tar::Archive::new(layer.as_slice());
            for entry in archive.entries().map_err(Error::io("reading the copy"))? {
                let mut entry = entry.map_err(Error::io("reading the copy"))?;
                let mut header = entry.header().clone();
                let inner = entry
                    .path()
                    .map_err(Error::io("reading the copy"))?
                    .into_owned();
                let full = if contents_only {
                    inner.clone()
                } else {
                    Path::new(&name).join(&inner)
                };
                match header.entry_type() {
                    tar::EntryType::Link | tar::EntryType::Symlink => {
                        let target = entry
                            .link_name()
                            .map_err(Error::io("reading the copy"))?
                            .unwrap_or_default()
                            .into_owned();
                        let target =
                            if header.entry_type() == tar::EntryType::Link && !contents_only {
                                Path::new(&name).join(target)
                            } else {
                                target
                            };
                        builder
                            .append_link(&mut header, &full, &target)
                            .map_err(Error::io("writing the tar"))?;
                    }
                    _ => builder
                        .append_data(&mut header, &full, &mut entry)
                        .map_err(Error::io("writing the tar"))?,
                }
            }
        } else {
            let mut header = tar::Header::new_gnu();
            header.set_mode(stat.st_mode & 0o7777);
            header.set_uid(stat.st_uid.into());
            header.set_gid(stat.st_gid.into());
            header.set_mtime(stat.st_mtime as u64);
            if rustix::fs::FileType::from_raw_mode(stat.st_mode).is_symlink() {
                let target = rustix::fs::readlinkat(&src, "", Vec::new())
                    .map_err(|e| Error::io(format!("reading link {path}"))(e.into()))?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder
                    .append_link(&mut header, &name, target.to_string_lossy().as_ref())
                    .map_err(Error::io("writing the tar"))?;
            } else {
                let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
                match kind {
                    rustix::fs::FileType::RegularFile => {
                        // Opened without blocking (a FIFO swapped in cannot hang us) and
                        // checked to be the inode examined above; exactly its size is
                        // copied, so a file that grows cannot add entries to the tar.
                        let file = open_in(
                            &root.fd,
                            path,
                            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK,
                        )
                        .map_err(|_| not_found(record, path))?;
                        let now =
                            rustix::fs::fstat(&file).map_err(|e| Error::io("stat")(e.into()))?;
                        if (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino)
                            || !rustix::fs::FileType::from_raw_mode(now.st_mode).is_file()
                        {
                            return Err(Error::Invalid(format!(
                                "{path} changed while it was copied"
                            )));
                        }
                        header.set_size(stat.st_size as u64);
                        let exact = Exact {
                            inner: std::fs::File::from(file),
                            left: stat.st_size as u64,
                        };
                        builder
                            .append_data(&mut header, &name, exact)
                            .map_err(Error::io(format!("copying {path}")))?;
                    }
                    rustix::fs::FileType::Fifo
                    | rustix::fs::FileType::CharacterDevice
                    | rustix::fs::FileType::BlockDevice => {
                        // The node, never its contents.
                        header.set_entry_type(match kind {
                            rustix::fs::FileType::Fifo => tar::EntryType::Fifo,
                            rustix::fs::FileType::CharacterDevice => tar::EntryType::Char,
                            _ => tar::EntryType::Block,
                        });
                        header.set_size(0);
                        let _ = header.set_device_major(rustix::fs::major(stat.st_rdev));
                        let _ = header.set_device_minor(rustix::fs::minor(stat.st_rdev));
                        builder
                            .append_data(&mut header, &name, std::io::empty())
                            .map_err(Error::io("writing the tar"))?;
                    }
                    _ => return Err(Error::Invalid(format!("{path}: cannot copy a socket"))),
                }
            }
        }
        builder.finish().map_err(Error::io("writing the tar"))?;
        Ok(())
    }

    /// `docker cp CONTAINER:PATH HOSTPATH`, with Docker's rules for where things land: into
    /// an existing directory under the source's name (its contents for `PATH/.`), else as
    /// the destination's name.
    pub fn copy_out(&self, record: &ContainerRecord, path: &str, dest: &Path) -> Result<(), Error> {
        let (target_dir, prefix) = if dest.is_dir() {
            let prefix = if path.ends_with("/.") {
                None
            } else {
                Some(split(path).1.unwrap_or_else(|| ".".into()))
            };
            (dest.to_path_buf(), prefix)
        } else {
            let parent = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(Error::Invalid(format!(
                    "invalid output path: directory {} does not exist",
                    parent.display()
                )));
            }
            let name = dest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Error::Invalid(format!("invalid output path {}", dest.display())))?;
            (parent.to_path_buf(), Some(name))
        };
        let mut tar = Vec::new();
        self.write_tar(record, path, prefix.as_deref(), &mut tar)?;
        let mut archive = tar::Archive::new(tar.as_slice());
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_overwrite(true);
        // The entries came from a walk that never leaves the container's tree, and tar's
        // unpack refuses `..` and writes through no symlink it unpacked.
        archive
            .unpack(&target_dir)
            .map_err(Error::io(format!("writing into {}", target_dir.display())))?;
        make_special_files(&tar, &target_dir)
    }

    /// `docker cp HOSTPATH CONTAINER:PATH` (and `-` for a tar on stdin): unpacks safely
    /// into the container, owned by root as Docker does.
    pub fn copy_in_tar(
        &self,
        record: &ContainerRecord,
        path: &str,
        tar: impl Read,
    ) -> Result<(), Error> {
        let root = self.open_root(record)?;
        let dir = open_in(&root.fd, path, OFlags::RDONLY | OFlags::DIRECTORY).map_err(|e| {
            if e == rustix::io::Errno::NOTDIR {
                Error::Invalid(format!(
                    "extraction point is not a directory: {path} in container {}",
                    record.name
                ))
            } else {
                not_found(record, path)
            }
        })?;
        berth_image::apply::apply_layer(&fd_path(&dir), tar)
            .map_err(|e| Error::Invalid(format!("copying into {path}: {e}")))?;
        Ok(())
    }

    /// `docker cp HOSTPATH CONTAINER:PATH`.
    pub fn copy_in(&self, record: &ContainerRecord, src: &Path, path: &str) -> Result<(), Error> {
        let meta = std::fs::symlink_metadata(src)
            .map_err(Error::io(format!("lstat {}", src.display())))?;
        let contents_only = src.to_string_lossy().ends_with("/.");
        // Where it lands: into PATH if PATH is a directory there, else as PATH.
        let root = self.open_root(record)?;
        let target_is_dir = open_in(&root.fd, path, OFlags::PATH | OFlags::DIRECTORY).is_ok();
        let exists = open_in(&root.fd, path, OFlags::PATH).is_ok();
        drop(root);
        let (dir, name) = if target_is_dir {
            let name = if contents_only {
                None
            } else {
                src.file_name().map(|n| n.to_string_lossy().into_owned())
            };
            (path.to_string(), name)
        } else {
            if exists && meta.is_dir() {
                return Err(Error::Invalid(format!(
                    "cannot copy directory to a file: {path}"
                )));
            }
            let (parent, name) = split(path);
            (parent, name)
        };
        let mut tar = tar::Builder::new(Vec::new());
        append_tree(&mut tar, src, name.as_deref().map(Path::new))?;
        let bytes = tar.into_inner().map_err(Error::io("packing the copy"))?;
        self.copy_in_tar(record, &dir, bytes.as_slice())
    }
}

/// A reader of exactly `left` bytes: fewer from the file is an error (it shrank while it was
/// copied), more are never read.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while it was copied",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// tar's unpack writes FIFOs and device nodes as empty regular files: each is made again as
/// what it is, as `docker cp` copies it, in place of the file unpack left (at a path it
/// judged inside `target_dir`).
fn make_special_files(tar: &[u8], target_dir: &Path) -> Result<(), Error> {
    use rustix::fs::{AtFlags, FileType};
    let ctx = || Error::io(format!("writing into {}", target_dir.display()));
    let mut archive = tar::Archive::new(tar);
    let mut target = None;
    for entry in archive.entries().map_err(ctx())? {
        let entry = entry.map_err(ctx())?;
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Fifo => FileType::Fifo,
            tar::EntryType::Char => FileType::CharacterDevice,
            tar::EntryType::Block => FileType::BlockDevice,
            _ => continue,
        };
        let path = entry.path().map_err(ctx())?.into_owned();
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        if target.is_none() {
            target = Some(
                rustix::fs::open(
                    target_dir,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ctx()(e.into()))?,
            );
        }
        let Some(target) = &target else { continue };
        // The parent as unpack left it, reached without following any link (a directory
        // swapped for one since cannot send the node elsewhere).
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let Ok(dir) = rustix::fs::openat2(
            target,
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) else {
            continue;
        };
        let is_file = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode).is_file());
        if !is_file {
            continue;
        }
        let made = |e: rustix::io::Errno| Error::io(format!("making {}", path.display()))(e.into());
        rustix::fs::unlinkat(&dir, name, AtFlags::empty()).map_err(made)?;
        let dev = rustix::fs::makedev(
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        );
        let mode = Mode::from_raw_mode(header.mode().unwrap_or(0o644) & 0o7777);
        rustix::fs::mknodat(&dir, name, kind, mode, dev).map_err(made)?;
    }
    Ok(())
}

/// Packs a host file or tree into `tar` under `name` (its contents at the top when `None`),
/// owned by root, links kept as links.
fn append_tree(
    tar: &mut tar::Builder<Vec<u8>>,
    src: &Path,
    name: Option<&Path>,
) -> Result<(), Error> {
    let meta =
        std::fs::symlink_metadata(src).map_err(Error::io(format!("lstat {}", src.display())))?;
    let mut header = tar::Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(meta.mtime().max(0) as u64);
    let ctx = || Error::io(format!("packing {}", src.display()));
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(src).map_err(ctx())?;
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        let name = name.unwrap_or(Path::new("."));
        tar.append_link(&mut header, name, target).map_err(ctx())?;
    } else if meta.is_dir() {
        if let Some(n) = name {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, n, std::io::empty())
                .map_err(ctx())?;
        }
        let mut entries: Vec<_> = std::fs::read_dir(src)
            .map_err(ctx())?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for e in entries {
            let child = name.map_or_else(|| PathBuf::from(&e), |n| n.join(&e));
            append_tree(tar, &src.join(&e), Some(&child))?;
        }
    } else if meta.is_file() {
        let file = std::fs::File::open(src).map_err(ctx())?;
        header.set_size(meta.len());
        let name = name.ok_or_else(|| Error::Invalid(format!("{} is a file", src.display())))?;
        tar.append_data(&mut header, name, file).map_err(ctx())?;
    } else {
        // FIFOs and device nodes go as themselves, as `docker cp` copies them.
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        let entry = if kind.is_fifo() {
            tar::EntryType::Fifo
        } else if kind.is_char_device() {
            tar::EntryType::Char
        } else if kind.is_block_device() {
            tar::EntryType::Block
        } else {
            return Ok(()); // a socket: nothing a copy can carry
        };
        let name = name.ok_or_else(|| Error::Invalid(format!("{} is a file", src.display())))?;
        header.set_entry_type(entry);
        header.set_size(0);
        let rdev = meta.rdev();
        header
            .set_device_major(rustix::fs::major(rdev))
            .map_err(ctx())?;
        header
            .set_device_minor(rustix::fs::minor(rdev))
            .map_err(ctx())?;
        tar.append_data(&mut header, name, std::io::empty())
            .map_err(ctx())?;
    }
    Ok(())
}
