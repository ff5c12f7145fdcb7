//! Layer diff: a directory (an overlayfs upper dir, or a snapshot) written out as a layer tar.
//!
//! This is [`apply`](crate::apply) in reverse, and what `berth commit` and every `RUN`/`COPY`
//! step of `berth build` use to turn a container's changes into a layer. The output is the
//! format Docker writes: paths relative to the layer root without a leading `./` (`etc/`,
//! `etc/passwd`), overlay whiteouts (0:0 character devices) turned back into `.wh.NAME`
//! entries, opaque directories (`trusted.overlay.opaque=y`) followed by a `.wh..wh..opq`
//! entry, files seen before under another name (same device and inode) written as hardlinks,
//! and xattrs as PAX `SCHILY.xattr.*` records.
//!
//! # Safety and determinism
//!
//! The directory may have been filled by a hostile container, so nothing here follows a
//! symlink, not even one swapped in while the layer is being written: the tree is walked with
//! directory fds, each name is examined with `fstatat(AT_SYMLINK_NOFOLLOW)` relative to its
//! parent's fd, directories and files are opened with `O_NOFOLLOW` relative to that fd and
//! checked to be the inode that was examined, and symlinks are read with `readlinkat`, never
//! resolved. A host file can therefore never end up in a layer. Entries are written in a fixed
//! order (names sorted bytewise, a directory before its contents) with mtimes in whole seconds
//! and no user or group names, so the same tree always gives the same tar and therefore the
//! same diff ID, which build caching relies on.
//!
//! overlayfs' own attributes (`trusted.overlay.*`: origin, impure, redirect, metacopy) are not
//! copied: they describe this host's overlay, not the layer. The upper dir must come from a
//! mount without `redirect_dir` or `metacopy`, whose upper dirs do not hold whole files.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use tar::{EntryType, Header};

/// What a written layer holds; the same figures [`apply`](crate::apply) reports when the
/// layer is unpacked again, so a build can record them without re-reading its own output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Entries written, whiteouts and opaque markers included (PAX headers are not counted).
    pub entries: u64,
    /// Sum of the sizes of the regular files written (hardlinks count once).
    pub size: u64,
}

/// Why a directory could not be written as a layer. Variants name the file involved.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The path given to [`write_layer`] is not a directory.
    #[error("{path} is not a directory; only a directory can be written as a layer")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// A file in the directory could not be read.
    #[error("cannot write {path} into the layer: {op} failed: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// What berth was doing, e.g. "listing the directory".
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The tar could not be written to the output.
    #[error("writing the layer tar failed at {path}: {source}")]
    Write {
        /// The file being written when the output failed.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Writes `dir` as an uncompressed layer tar: overlay whiteouts (char dev 0:0) become
/// `.wh.NAME`, dirs with xattr `trusted.overlay.opaque=y` get a `.wh..wh..opq` entry,
/// hardlinked files (same dev+ino seen before) become hardlink entries, xattrs (except
/// `trusted.overlay.*`) become `SCHILY.xattr` PAX records, uid/gid/mode/mtime are preserved,
/// the order is deterministic (sorted names, parent before children), paths are relative
/// without a leading `./` (Docker style: `etc/`, `etc/passwd`), and the root dir itself is not
/// emitted.
///
/// Determinism matters because the layer's digest is its identity: writing the same tree twice
/// must give the same bytes. Sockets are skipped, as Docker does. `dir` should not change while
/// it is written (stop or pause the container first); a file that is swapped or shrinks
/// meanwhile is an error rather than a corrupt tar or a followed symlink.
pub fn write_layer(dir: &Path, out: impl Write) -> Result<DiffStats, DiffError> {
    write_layer_clamped(dir, out, None)
}

/// [`write_layer`], with every mtime later than `max_mtime` (seconds since the epoch) set to
/// it: a build with `SOURCE_DATE_EPOCH` gets the same layer bytes however late it runs.
pub fn write_layer_clamped(
    dir: &Path,
    out: impl Write,
    max_mtime: Option<i64>,
) -> Result<DiffStats, DiffError> {
    let root = rfs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOTDIR => DiffError::NotADirectory {
            path: dir.to_path_buf(),
        },
        e => read_err(dir.to_path_buf(), "opening the directory")(e.into()),
    })?;
    let mut writer = LayerWriter {
        dir,
        builder: tar::Builder::new(out),
        stats: DiffStats::default(),
        links: HashMap::new(),
        pax: Vec::new(),
        list: vec![0; XATTR_MAX],
        value: vec![0; XATTR_MAX],
        proc_path: Vec::new(),
        buf: Vec::new(),
        max_mtime,
    };

    /// A directory being written: its fd, its path in the layer and its sorted entries.
    struct Frame {
        fd: OwnedFd,
        rel: Vec<u8>,
        names: Vec<Vec<u8>>,
        next: usize,
    }
    // An explicit stack rather than recursion: a container can nest directories deeper than
    // any thread's stack. It holds one fd per level of the directory being written.
    let names = writer.sorted_names(root.as_fd(), b"")?;
    let mut stack = vec![Frame {
        fd: root,
        rel: Vec::new(),
        names,
        next: 0,
    }];
    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.names.get_mut(frame.next).map(std::mem::take) else {
            stack.pop();
            continue;
        };
        frame.next += 1;
        let mut rel = Vec::with_capacity(frame.rel.len() + 1 + name.len());
        rel.extend_from_slice(&frame.rel);
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&name);
        if let Some(fd) = writer.entry(frame.fd.as_fd(), &frame.rel, &name, &rel)? {
            let names = writer.sorted_names(fd.as_fd(), &rel)?;
            stack.push(Frame {
                fd,
                rel,
                names,
                next: 0,
            });
        }
    }
    let mut out = writer
        .builder
        .into_inner()
        .map_err(write_err(dir.to_path_buf()))?;
    out.flush().map_err(write_err(dir.to_path_buf()))?;
    Ok(writer.stats)
}

/// Largest xattr name list and value Linux allows (XATTR_LIST_MAX, XATTR_SIZE_MAX).
const XATTR_MAX: usize = 64 * 1024;
/// The size of the buffer file data is copied through.
const COPY_BUF: usize = 256 * 1024;
/// Largest values the octal ustar fields hold; beyond them a PAX record carries the value.
const USTAR_ID_MAX: u64 = 0o7_777_777;
const USTAR_TIME_MAX: i64 = 0o77_777_777_777;
/// Directories are opened readable (for listing and xattrs) and never through a symlink.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// The fields of `struct stat` the layer needs, in one width on every architecture.
struct Info {
    file_type: FileType,
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    size: u64,
    mtime: i64,
    nlink: u64,
    dev: u64,
    ino: u64,
}

impl From<Stat> for Info {
    // `struct stat`'s field widths differ between architectures; the conversions that are
    // no-ops on x86_64 are not on others.
    #[allow(clippy::useless_conversion)]
    fn from(st: Stat) -> Info {
        Info {
            file_type: FileType::from_raw_mode(st.st_mode),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: u64::from(st.st_rdev),
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: i64::from(st.st_mtime),
            nlink: u64::from(st.st_nlink),
            dev: u64::from(st.st_dev),
            ino: u64::from(st.st_ino),
        }
    }
}

/// Where to read a file's xattrs from: its own fd, or its name below a directory fd.
enum XattrSource<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a [u8]),
}

struct LayerWriter<'d, W: Write> {
    /// The directory being written, for messages.
    dir: &'d Path,
    builder: tar::Builder<W>,
    stats: DiffStats,
    /// (dev, ino) of multiply-linked files already written, and the layer path they got.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// PAX records for the entry being written.
    pax: Vec<u8>,
    list: Vec<u8>,
    value: Vec<u8>,
    proc_path: Vec<u8>,
    buf: Vec<u8>,
    /// `SOURCE_DATE_EPOCH`: no mtime in the layer is later.
    max_mtime: Option<i64>,
}

impl<W: Write> LayerWriter<'_, W> {
    /// The on-disk path of a layer path, for messages.
    fn shown(&self, rel: &[u8]) -> PathBuf {
        self.dir.join(OsStr::from_bytes(rel))
    }

    /// The names in a directory, sorted bytewise so the layer is the same on every run.
    fn sorted_names(&self, dir: BorrowedFd<'_>, rel: &[u8]) -> Result<Vec<Vec<u8>>, DiffError> {
        let fail = |e: Errno| read_err(self.shown(rel), "listing the directory")(e.into());
        let mut names = Vec::new();
        let mut entries = rfs::Dir::read_from(dir).map_err(fail)?;
        while let Some(entry) = entries.read() {
            let name = entry.map_err(fail)?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(name);
            }
        }
        names.sort_unstable();
        Ok(names)
    }

    /// Writes the file `name` below `parent` (layer path `rel`, its parent `parent_rel`).
    /// Returns the fd of a directory, whose contents come next.
    fn entry(
        &mut self,
        parent: BorrowedFd<'_>,
        parent_rel: &[u8],
        name: &[u8],
        rel: &[u8],
    ) -> Result<Option<OwnedFd>, DiffError> {
        let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| read_err(self.shown(rel), "inspecting the file")(e.into()))?;
        let mut info = Info::from(st);
        if let Some(max) = self.max_mtime {
            info.mtime = info.mtime.min(max);
        }
        let mut header = Header::new_ustar();
        header.set_mode(info.mode);
        header.set_uid(info.uid.into());
        header.set_gid(info.gid.into());
        header.set_mtime(info.mtime.clamp(0, USTAR_TIME_MAX) as u64);
        header.set_size(0);
        self.pax.clear();

        match info.file_type {
            FileType::CharacterDevice if info.rdev == 0 => {
                // An overlay whiteout: Docker writes it as an empty 0600 file named `.wh.NAME`.
                // (Checked before hardlinks: overlayfs shares one whiteout inode among many.)
                let mut path = Vec::with_capacity(rel.len() + 4);
                path.extend_from_slice(parent_rel);
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(b".wh.");
                path.extend_from_slice(name);
                header.set_mode(0o600);
                header.set_entry_type(EntryType::Regular);
                self.append(rel, &path, header, &info, None)?;
                Ok(None)
            }
            FileType::Socket | FileType::Unknown => {
                log::debug!("skipping socket {}", self.shown(rel).display());
                Ok(None)
            }
            FileType::Directory => {
                let fd = self.open(parent, name, rel, DIR_FLAGS, &info)?;
                let opaque = self.read_xattrs(XattrSource::Fd(fd.as_fd()), rel)?;
                let mut path = rel.to_vec();
                path.push(b'/');
                header.set_entry_type(EntryType::Directory);
                self.append(rel, &path, header.clone(), &info, None)?;
                if opaque {
                    // Docker's marker: an empty file carrying the directory's permissions.
                    path.extend_from_slice(b".wh..wh..opq");
                    header.set_mode(info.mode & 0o777);
                    header.set_entry_type(EntryType::Regular);
                    self.pax.clear();
                    self.append(rel, &path, header, &info, None)?;
                }
                Ok(Some(fd))
            }
            _ if info.nlink > 1 && self.links.contains_key(&(info.dev, info.ino)) => {
                let first = self.links[&(info.dev, info.ino)].clone();
                self.read_xattrs(XattrSource::At(parent, name), rel)?;
                header.set_entry_type(EntryType::Link);
                self.append(rel, rel, header, &info, Some(&first))?;
                Ok(None)
            }
            file_type => {
                if info.nlink > 1 {
                    self.links.insert((info.dev, info.ino), rel.to_vec());
                }
                match file_type {
                    FileType::RegularFile => {
                        let flags = OFlags::RDONLY
                            | OFlags::NOFOLLOW
                            | OFlags::NONBLOCK
                            | OFlags::NOCTTY
                            | OFlags::CLOEXEC;
                        let fd = self.open(parent, name, rel, flags, &info)?;
                        self.read_xattrs(XattrSource::Fd(fd.as_fd()), rel)?;
                        header.set_entry_type(EntryType::Regular);
                        header.set_size(info.size);
                        self.append(rel, rel, header, &info, None)?;
                        self.copy_data(File::from(fd), rel, info.size)?;
                    }
                    FileType::Symlink => {
                        let target = rfs::readlinkat(parent, name, Vec::new()).map_err(|e| {
                            read_err(self.shown(rel), "reading the symlink")(e.into())
                        })?;
                        self.read_xattrs(XattrSource::At(parent, name), rel)?;
                        header.set_entry_type(EntryType::Symlink);
                        self.append(rel, rel, header, &info, Some(target.as_bytes()))?;
                    }
                    _ => {
                        let kind = match file_type {
                            FileType::CharacterDevice => EntryType::Char,
                            FileType::BlockDevice => EntryType::Block,
                            _ => EntryType::Fifo,
                        };
                        self.read_xattrs(XattrSource::At(parent, name), rel)?;
                        header.set_entry_type(kind);
                        if kind != EntryType::Fifo {
                            let device = header
                                .set_device_major(rfs::major(info.rdev))
                                .and_then(|()| header.set_device_minor(rfs::minor(info.rdev)));
                            device.map_err(read_err(self.shown(rel), "recording the device"))?;
                        }
                        self.append(rel, rel, header, &info, None)?;
                    }
                }
                Ok(None)
            }
        }
    }

    /// Opens `name` below `parent` without following a symlink, and checks it is still the
    /// inode that was examined (a container may swap files while it runs).
    fn open(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        rel: &[u8],
        flags: OFlags,
        info: &Info,
    ) -> Result<OwnedFd, DiffError> {
        let fd = rfs::openat(parent, name, flags, Mode::empty())
            .map_err(|e| read_err(self.shown(rel), "opening the file")(e.into()))?;
        let now = rfs::fstat(&fd)
            .map(Info::from)
            .map_err(|e| read_err(self.shown(rel), "inspecting the file")(e.into()))?;
        if now.ino != info.ino || now.dev != info.dev {
            return Err(DiffError::Read {
                path: self.shown(rel),
                op: "opening the file",
                source: io::Error::other("it was replaced while the layer was being written"),
            });
        }
        Ok(fd)
    }

    /// Collects xattrs as PAX records; returns whether the directory is an opaque one.
    fn read_xattrs(&mut self, source: XattrSource<'_>, rel: &[u8]) -> Result<bool, DiffError> {
        if let XattrSource::At(dir, name) = source {
            // Symlinks and devices cannot be opened; name them through the parent's fd
            // (l*xattr do not follow the final component).
            self.proc_path.clear();
            self.proc_path
                .extend_from_slice(format!("/proc/self/fd/{}/", dir.as_raw_fd()).as_bytes());
            self.proc_path.extend_from_slice(name);
        }
        let Self {
            list,
            value,
            pax,
            proc_path,
            ..
        } = self;
        let listed = match source {
            XattrSource::Fd(fd) => rfs::flistxattr(fd, &mut list[..]),
            XattrSource::At(..) => rfs::llistxattr(proc_path.as_slice(), &mut list[..]),
        };
        let len = match listed {
            Ok(len) => len,
            Err(Errno::OPNOTSUPP) => return Ok(false),
            Err(e) => {
                return Err(read_err(self.shown(rel), "listing xattrs")(e.into()));
            }
        };
        let mut opaque = false;
        for name in list[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
            let got = match source {
                XattrSource::Fd(fd) => rfs::fgetxattr(fd, name, &mut value[..]),
                XattrSource::At(..) => rfs::lgetxattr(proc_path.as_slice(), name, &mut value[..]),
            };
            let n = match got {
                Ok(n) => n,
                // Removed between listing and reading: nothing to record.
                Err(Errno::NODATA) => continue,
                Err(e) => {
                    let path = self.dir.join(OsStr::from_bytes(rel));
                    return Err(read_err(path, "reading an xattr")(e.into()));
                }
            };
            if name.starts_with(b"trusted.overlay.") {
                opaque |= name == b"trusted.overlay.opaque" && &value[..n] == b"y";
                continue;
            }
            pax_record(pax, &[b"SCHILY.xattr.", name], &value[..n]);
        }
        Ok(opaque)
    }

    /// Copies exactly `size` bytes of file data after its header (the builder would copy
    /// through 8 KiB), padded to the 512-byte block as the builder would.
    fn copy_data(&mut self, mut file: File, rel: &[u8], size: u64) -> Result<(), DiffError> {
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUF];
        }
        let mut left = size;
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(DiffError::Read {
                        path: self.shown(rel),
                        op: "reading the file",
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "it shrank while the layer was being written",
                        ),
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(self.shown(rel), "reading the file")(e)),
            };
            self.builder
                .get_mut()
                .write_all(&self.buf[..n])
                .map_err(write_err(self.shown(rel)))?;
            left -= n as u64;
        }
        let pad = (512 - size % 512) % 512;
        self.builder
            .get_mut()
            .write_all(&[0; 512][..pad as usize])
            .map_err(write_err(self.shown(rel)))?;
        self.stats.size += size;
        Ok(())
    }

    /// Writes a header named `path` (after a PAX header when needed) with no data; a regular
    /// file's data follows from [`Self::copy_data`].
    fn append(
        &mut self,
        rel: &[u8],
        path: &[u8],
        mut header: Header,
        info: &Info,
        link: Option<&[u8]>,
    ) -> Result<(), DiffError> {
        let old = header.as_old_mut();
        if path.len() > old.name.len() {
            pax_record(&mut self.pax, &[b"path"], path);
        }
        let n = path.len().min(old.name.len());
        old.name[..n].copy_from_slice(&path[..n]);
        if let Some(link) = link {
            if link.len() > old.linkname.len() {
                pax_record(&mut self.pax, &[b"linkpath"], link);
            }
            let n = link.len().min(old.linkname.len());
            old.linkname[..n].copy_from_slice(&link[..n]);
        }
        if u64::from(info.uid) > USTAR_ID_MAX {
            pax_record(&mut self.pax, &[b"uid"], info.uid.to_string().as_bytes());
            header.set_uid(0);
        }
        if u64::from(info.gid) > USTAR_ID_MAX {
            pax_record(&mut self.pax, &[b"gid"], info.gid.to_string().as_bytes());
            header.set_gid(0);
        }
        if !(0..=USTAR_TIME_MAX).contains(&info.mtime) {
            pax_record(
                &mut self.pax,
                &[b"mtime"],
                info.mtime.to_string().as_bytes(),
            );
        }
        if !self.pax.is_empty() {
            let mut pax_header = Header::new_ustar();
            let name = b"PaxHeader";
            pax_header.as_old_mut().name[..name.len()].copy_from_slice(name);
            pax_header.set_mode(0o644);
            pax_header.set_size(self.pax.len() as u64);
            pax_header.set_entry_type(EntryType::XHeader);
            pax_header.set_cksum();
            self.builder
                .append(&pax_header, &self.pax[..])
                .map_err(write_err(self.shown(rel)))?;
        }
        header.set_cksum();
        self.builder
            .append(&header, io::empty())
            .map_err(write_err(self.shown(rel)))?;
        self.stats.entries += 1;
        Ok(())
    }
}

/// Appends one PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts itself.
fn pax_record(buf: &mut Vec<u8>, key: &[&[u8]], value: &[u8]) {
    let key_len: usize = key.iter().map(|k| k.len()).sum();
    let rest = key_len + value.len() + 3; // space, '=', newline
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    buf.extend_from_slice(len.to_string().as_bytes());
    buf.push(b' ');
    for part in key {
        buf.extend_from_slice(part);
    }
    buf.push(b'=');
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

fn read_err(path: PathBuf, op: &'static str) -> impl FnOnce(io::Error) -> DiffError {
    move |source| DiffError::Read { path, op, source }
}

fn write_err(path: PathBuf) -> impl FnOnce(io::Error) -> DiffError {
    move |source| DiffError::Write { path, source }
}

#[cfg(test)]
mod tests {
    //! Layers go through [`check`]: entries are unpacked with `apply`, written back with
    //! [`write_layer`], the tar is listed and compared, and then unpacked again to show the
    //! round trip loses nothing.

    use super::*;
    use crate::apply::apply_layer;
    use crate::apply::tests::{
        blockdev, build, chardev, dedent, dir, fifo, file, hardlink, listing, symlink, Sandbox, E,
        MTIME,
    };
    use std::fs;

    /// Lists a layer tar: `d MODE UID:GID path`, `f MODE UID:GID path "data"`,
    /// `h path => target`, `l UID:GID path -> target`, `c/b MODE UID:GID path MAJ,MIN`,
    /// `p MODE UID:GID path`, then ` xattr=value` and ` @mtime` when not [`MTIME`].
    fn tar_listing(tar: &[u8]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut out = String::new();
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut xattrs = Vec::new();
            if let Some(extensions) = entry.pax_extensions().unwrap() {
                for extension in extensions {
                    let extension = extension.unwrap();
                    if let Some(name) = extension.key().unwrap().strip_prefix("SCHILY.xattr.") {
                        let value = String::from_utf8_lossy(extension.value_bytes());
                        xattrs.push(format!(" {name}={value:?}"));
                    }
                }
            }
            let header = entry.header().clone();
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            let owner = format!("{}:{}", header.uid().unwrap(), header.gid().unwrap());
            let mode = header.mode().unwrap() & 0o7777;
            let device = || {
                let major = header.device_major().unwrap().unwrap();
                let minor = header.device_minor().unwrap().unwrap();
                format!("{major},{minor}")
            };
            let mut line = match header.entry_type() {
                EntryType::Directory => format!("d {mode:04o} {owner} {path}"),
                EntryType::Regular => {
                    let mut data = Vec::new();
                    entry.read_to_end(&mut data).unwrap();
                    let data = String::from_utf8_lossy(&data);
                    format!("f {mode:04o} {owner} {path} {data:?}")
                }
                EntryType::Link => format!("h {path} => {link}"),
                EntryType::Symlink => format!("l {owner} {path} -> {link}"),
                EntryType::Char => format!("c {mode:04o} {owner} {path} {}", device()),
                EntryType::Block => format!("b {mode:04o} {owner} {path} {}", device()),
                EntryType::Fifo => format!("p {mode:04o} {owner} {path}"),
                other => format!("? {other:?} {path}"),
            };
            xattrs.sort();
            line.extend(xattrs);
            let mtime = header.mtime().unwrap();
            if now.abs_diff(mtime) < 86_400 {
                line.push_str(" @now");
            } else if mtime != MTIME {
                line.push_str(&format!(" @{mtime}"));
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Unpacks `entries`, writes the result back as a layer and compares the layer's listing
    /// with `expected`; then checks the layer is deterministic, unpacks it into a second root
    /// and checks that tree is the first one again.
    #[track_caller]
    fn check(entries: &[E], expected: &str) {
        let first = Sandbox::new();
        let tar = build(entries, &first.outside);
        let applied = apply_layer(&first.root, &tar[..]).unwrap();
        let mut layer = Vec::new();
        let stats = write_layer(&first.root, &mut layer).unwrap();
        assert_eq!(tar_listing(&layer), dedent(expected));
        assert_eq!(
            stats.size, applied.size,
            "file bytes differ after the round trip"
        );

        let mut again = Vec::new();
        write_layer(&first.root, &mut again).unwrap();
        assert!(
            layer == again,
            "writing the same tree twice gave different tars"
        );

        let second = Sandbox::new();
        let reapplied = apply_layer(&second.root, &layer[..]).unwrap();
        assert_eq!(
            (reapplied.entries, reapplied.size),
            (stats.entries, stats.size),
            "apply and diff count differently"
        );
        assert_eq!(
            listing(&second.root, &second.outside, false),
            listing(&first.root, &first.outside, false),
            "the tree changed in the round trip"
        );
    }

    #[test]
    fn a_layer_round_trips() {
        let long = format!(
            "{}/{}/{}",
            "a".repeat(100),
            "b".repeat(100),
            "c".repeat(100)
        );
        let expected = format!(
            r#"
            d 0755 0:0 {a}/ @now
            d 0755 0:0 {a}/{b}/ @now
            f 0644 0:0 {long} "long"
            l 0:0 {a}/{b}/link -> {long}
            d 0750 1000:1000 data/
            f 0640 1000:1000 data/a.txt "a\n" user.mime_type="text/plain"
            f 0644 3000000:3000001 data/big-ids ""
            f 0644 0:0 data/empty ""
            f 0600 0:0 data/.wh.gone "" @1500000000
            h data/hard => data/a.txt user.mime_type="text/plain"
            l 1000:1000 data/link -> a.txt trusted.l="1"
            d 0755 0:0 dev/ @now
            b 0660 0:6 dev/loop0 7,0
            c 0666 0:0 dev/null 1,3
            p 0600 0:0 dev/pipe @1234567890
            d 0700 0:0 etc/ user.dir="d"
            f 0700 0:0 etc/.wh..wh..opq ""
            f 0644 0:0 etc/hosts "h"
            d 0755 0:0 usr/ @now
            d 0755 0:0 usr/bin/ @now
            f 4755 0:0 usr/bin/sudo "su"
            "#,
            a = "a".repeat(100),
            b = "b".repeat(100),
        );
        check(
            &[
                dir("data").mode(0o750).owner(1000, 1000),
                file("data/a.txt", "a\n")
                    .mode(0o640)
                    .owner(1000, 1000)
                    .xattr("user.mime_type", "text/plain"),
                hardlink("data/hard", "data/a.txt")
                    .mode(0o640)
                    .owner(1000, 1000),
                file("data/empty", ""),
                file("data/big-ids", "")
                    .pax("uid", "3000000")
                    .pax("gid", "3000001"),
                file("data/.wh.gone", "").mtime(1_500_000_000),
                symlink("data/link", "a.txt")
                    .owner(1000, 1000)
                    .xattr("trusted.l", "1"),
                chardev("dev/null", 1, 3),
                blockdev("dev/loop0", 7, 0).owner(0, 6),
                fifo("dev/pipe").mtime(1_234_567_890),
                dir("etc").mode(0o700).xattr("user.dir", "d"),
                file("etc/.wh..wh..opq", ""),
                file("etc/hosts", "h"),
                file("usr/bin/sudo", "su").mode(0o4755),
                file(&long, "long"),
                symlink(
                    &format!("{}/{}/link", "a".repeat(100), "b".repeat(100)),
                    &long,
                ),
            ],
            &expected,
        );
    }

    #[test]
    fn an_empty_directory_is_an_empty_layer() {
        let sandbox = Sandbox::new();
        let mut layer = Vec::new();
        let stats = write_layer(&sandbox.root, &mut layer).unwrap();
        assert_eq!(stats, DiffStats::default());
        assert_eq!(layer, vec![0; 1024]);
    }

    #[test]
    fn sockets_are_skipped_and_files_must_be_directories() {
        let sandbox = Sandbox::new();
        let _listener = std::os::unix::net::UnixListener::bind(sandbox.root.join("sock")).unwrap();
        fs::write(sandbox.root.join("f"), "f").unwrap();
        let mut layer = Vec::new();
        write_layer(&sandbox.root, &mut layer).unwrap();
        let names: Vec<_> = tar_listing(&layer).lines().map(str::to_owned).collect();
        assert_eq!(names, [r#"f 0644 0:0 f "f" @now"#]);

        let err = write_layer(&sandbox.root.join("f"), io::sink()).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        let err = write_layer(&sandbox.root.join("missing"), io::sink()).unwrap_err();
        assert!(
            err.to_string().contains("opening the directory failed"),
            "{err}"
        );
    }

    #[test]
    fn symlinks_are_written_as_links_and_never_followed() {
        let sandbox = Sandbox::new();
        std::os::unix::fs::symlink(&sandbox.outside, sandbox.root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../outside", sandbox.root.join("rel")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", sandbox.root.join("passwd")).unwrap();
        let mut layer = Vec::new();
        write_layer(&sandbox.root, &mut layer).unwrap();
        let listed = tar_listing(&layer).replace(sandbox.outside.to_str().unwrap(), "{outside}");
        assert_eq!(
            listed,
            dedent(
                r#"
                l 0:0 abs -> {outside} @now
                l 0:0 passwd -> /etc/passwd @now
                l 0:0 rel -> ../outside @now
                "#
            )
        );
    }

    #[test]
    fn an_overlay_upper_dir_becomes_a_layer() {
        // The real kernel writes the whiteouts and opaque markers here, not a test helper.
        let base = tempfile::tempdir().unwrap();
        let [lower, upper, work, merged] =
            ["lower", "upper", "work", "merged"].map(|d| base.path().join(d));
        for d in [&lower, &upper, &work, &merged] {
            fs::create_dir(d).unwrap();
        }
        fs::create_dir_all(lower.join("etc/old")).unwrap();
        fs::write(lower.join("etc/old/x"), "x").unwrap();
        fs::write(lower.join("etc/a"), "a").unwrap();
        fs::write(lower.join("etc/b"), "b").unwrap();
        fs::write(lower.join("keep"), "k").unwrap();
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        let status = std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&merged)
            .status()
            .unwrap();
        assert!(status.success(), "mounting overlayfs (tests run as root)");
        let changes = (|| -> io::Result<()> {
            fs::remove_file(merged.join("etc/a"))?;
            fs::remove_file(merged.join("etc/b"))?;
            fs::remove_dir_all(merged.join("etc/old"))?;
            fs::create_dir(merged.join("etc/old"))?;
            fs::write(merged.join("etc/old/y"), "y")?;
            fs::write(merged.join("new"), "n")?;
            Ok(())
        })();
        let status = std::process::Command::new("umount")
            .arg(&merged)
            .status()
            .unwrap();
        changes.unwrap();
        assert!(status.success());

        let mut layer = Vec::new();
        write_layer(&upper, &mut layer).unwrap();
        let listed = tar_listing(&layer);
        let expected = dedent(
            r#"
            d 0755 0:0 etc/ @now
            f 0600 0:0 etc/.wh.a "" @now
            f 0600 0:0 etc/.wh.b "" @now
            d 0755 0:0 etc/old/ @now
            f 0755 0:0 etc/old/.wh..wh..opq "" @now
            f 0644 0:0 etc/old/y "y" @now
            f 0644 0:0 new "n" @now
            "#,
        );
        assert_eq!(listed, expected);
    }
}
