//! Layer apply: one layer tar unpacked into its own snapshot directory, and nothing outside it.
//!
//! Each layer is unpacked into a fresh, empty directory that later becomes one overlayfs lower
//! layer (Docker's overlay2 layout), so layers can be unpacked in parallel as they download and
//! whiteouts are stored the way overlayfs reads them: `.wh.NAME` becomes a 0:0 character
//! device `NAME`, and `.wh..wh..opq` becomes the `trusted.overlay.opaque=y` xattr.
//!
//! # Safety design
//!
//! A layer tar is untrusted input: a registry, a mirror or a `docker load` file may hand us an
//! archive written to escape the directory it is unpacked into. Three rules keep every write
//! inside `root`:
//!
//! 1. **Names are normalised lexically before anything touches the disk.** Leading `/` and
//!    `.` components are dropped and `..` pops the previous component; a `..` that would
//!    climb above the root rejects the whole layer, naming the entry (as Docker does). The
//!    same goes for hardlink targets. Because `..` is resolved on the name, the kernel never
//!    resolves a `..` on our behalf.
//! 2. **No symlink is ever followed.** Parent directories are reached from a directory fd of
//!    the root, one component at a time, with `openat(O_DIRECTORY | O_NOFOLLOW)` (or in one go
//!    with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it, falling back
//!    to the component walk for diagnosis and for creating missing parents). A parent that is
//!    a symlink, even one the same layer created a moment earlier, rejects the layer.
//! 3. **Every change is an `*at()` call on a single name relative to that verified parent
//!    fd**, with the no-follow form of each call: files are created `O_CREAT | O_EXCL |
//!    O_NOFOLLOW`, hardlinks with `linkat(…, 0)`, ownership and times with
//!    `AT_SYMLINK_NOFOLLOW`, modes with `fchmod` on an fd we opened. An existing name is removed
//!    with `unlinkat` (a symlink is unlinked, never followed) before it is replaced.
//!
//! Symlink *targets* are stored verbatim: they may point anywhere, because berth never follows
//! them while unpacking; inside a container they resolve against the container's root.
//!
//! Special files (symlinks, devices, fifos) cannot be opened safely, so their xattrs go through
//! `/proc/self/fd/<parent fd>/<name>` with `lsetxattr` (the parent is a verified fd and the final
//! name is not followed), and device/fifo modes use `fchmodat` on a name this unpacker created
//! a moment before in a directory only it writes to.
//!
//! # Speed
//!
//! This is the hot path of `berth pull`. File data is copied straight from the tar stream with
//! one 256 KiB buffer, the fd of the last parent directory is cached (layers list a directory's
//! files together, and a directory just created is usually the next parent), and nothing is
//! fsynced here: the caller syncs the finished snapshot once with `syncfs`.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

/// What an unpacked layer holds, recorded with its snapshot.
///
/// `size` is what `docker images`/`docker history` report for a layer: the sum of the regular
/// files' sizes, not the tar's size nor the disk usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Tar entries applied, whiteouts included (PAX and GNU long-name headers are not counted).
    pub entries: u64,
    /// Sum of the sizes of the regular files written.
    pub size: u64,
}

/// Why a layer could not be unpacked. Every variant names the entry as it is spelled in the tar,
/// so a bad layer can be found with `tar -tvf`.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The entry's name has a `..` that climbs above the layer root (a "breakout" entry).
    #[error("layer entry {path:?} climbs out of the layer root; a layer may only write below it")]
    Breakout {
        /// The entry's name as written in the tar.
        path: String,
    },
    /// A hardlink's target has a `..` that climbs above the layer root.
    #[error(
        "layer entry {path:?} is a hardlink to {target:?}, which climbs out of the layer root"
    )]
    LinkBreakout {
        /// The entry's name as written in the tar.
        path: String,
        /// The hardlink target as written in the tar.
        target: String,
    },
    /// A parent directory of the entry is a symlink; following it could write anywhere.
    #[error(
        "layer entry {path:?} passes through symlink {component:?}; berth never follows \
         symlinks while unpacking a layer, so the layer is rejected"
    )]
    ThroughSymlink {
        /// The entry's name as written in the tar.
        path: String,
        /// The normalised path of the symlink in the layer.
        component: String,
    },
    /// A hardlink's target lies behind a symlink.
    #[error(
        "layer entry {path:?} is a hardlink to {target:?}, which passes through symlink \
         {component:?}; berth never follows symlinks while unpacking a layer"
    )]
    LinkThroughSymlink {
        /// The entry's name as written in the tar.
        path: String,
        /// The hardlink target as written in the tar.
        target: String,
        /// The normalised path of the symlink in the layer.
        component: String,
    },
    /// A parent of the entry exists but is not a directory (an earlier entry put a file there).
    #[error(
        "layer entry {path:?} needs {component:?} to be a directory, but an earlier entry of \
         the layer made it something else"
    )]
    NotADirectory {
        /// The entry's name as written in the tar.
        path: String,
        /// The normalised path of the offending parent.
        component: String,
    },
    /// A hardlink's target is not (or no longer) a non-directory entry of this layer.
    #[error(
        "layer entry {path:?} is a hardlink to {target:?}, which is not an earlier file of \
         this layer (hardlinks may only point at files the same layer already holds)"
    )]
    LinkTargetMissing {
        /// The entry's name as written in the tar.
        path: String,
        /// The hardlink target as written in the tar.
        target: String,
    },
    /// A non-directory entry names the layer root itself (e.g. a file called `./`).
    #[error("layer entry {path:?} would replace the layer root with a non-directory")]
    ReplacesRoot {
        /// The entry's name as written in the tar.
        path: String,
    },
    /// A whiteout whose hidden name is empty, `.` or `..`.
    #[error("layer entry {path:?} is a whiteout for an invalid name")]
    BadWhiteout {
        /// The entry's name as written in the tar.
        path: String,
    },
    /// An entry type a container filesystem cannot hold (e.g. a GNU volume label).
    #[error("layer entry {path:?} has tar type {kind:?}, which berth cannot unpack into a layer")]
    Unsupported {
        /// The entry's name as written in the tar.
        path: String,
        /// The tar type flag.
        kind: char,
    },
    /// A header field could not be read or is out of range (for example a uid of 2^32).
    #[error("layer entry {path:?} has an invalid tar header: {source}")]
    BadHeader {
        /// The entry's name as written in the tar.
        path: String,
        /// What is wrong with it.
        source: io::Error,
    },
    /// The tar stream itself is corrupt, truncated or unreadable.
    #[error("the layer tar is corrupt, truncated or unreadable after {entries} entries: {source}")]
    Tar {
        /// Entries successfully applied before the failure.
        entries: u64,
        /// The underlying read or format error.
        source: io::Error,
    },
    /// The destination directory could not be opened.
    #[error("cannot open the layer directory {root}: {source}")]
    Root {
        /// The directory passed to [`apply_layer`].
        root: PathBuf,
        /// Why it could not be opened.
        source: io::Error,
    },
    /// A system call on the entry failed.
    #[error("layer entry {path:?}: {op} failed: {source}")]
    Io {
        /// The entry's name as written in the tar.
        path: String,
        /// What berth was doing, e.g. "writing file data".
        op: &'static str,
        /// The error from the kernel or the tar stream.
        source: io::Error,
    },
}

/// Unpacks one uncompressed layer tar into `root`, an existing empty directory that will be
/// used as one overlayfs lower layer.
///
/// Layers are unpacked independently of each other (each into its own directory), so this
/// can run for several layers at once while they download. Nothing is ever created, changed
/// or removed outside `root` whatever the tar holds; see the [module docs](self) for how.
/// The stream is read to its end, so a digesting reader sees every byte of the blob. Pass a
/// buffered or decompressing reader: the tar is read in 512-byte headers and file-sized
/// chunks. The caller is responsible for syncing `root` (e.g. with `syncfs`) afterwards.
pub fn apply_layer(root: &Path, tar: impl Read) -> Result<ApplyStats, ApplyError> {
    let root_fd = rfs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ApplyError::Root {
        root: root.to_path_buf(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker::new(root_fd);
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|source| ApplyError::Tar { entries: 0, source })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| ApplyError::Tar {
            entries: unpacker.stats.entries,
            source,
        })?;
        unpacker.entry(&mut entry)?;
    }
    let stats = unpacker.finish()?;
    // Drain the end-of-archive padding so a digest computed while reading covers the blob.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|source| ApplyError::Tar {
        entries: stats.entries,
        source,
    })?;
    Ok(stats)
}

/// Flags for every directory fd: readable (so `fsetxattr`/`fchmod` work on it), never a symlink.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// The size of the buffer file data is copied through.
const COPY_BUF: usize = 256 * 1024;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const XATTR_PAX_PREFIX: &[u8] = b"SCHILY.xattr.";

/// The owner, mode, time and xattrs a tar header asks for.
struct Meta {
    mode: u32,
    uid: Uid,
    gid: Gid,
    mtime: Timespec,
}

impl Meta {
    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

/// Per-layer state: the walker plus buffers reused across entries to spare allocations.
struct Unpacker {
    walker: Walker,
    stats: ApplyStats,
    buf: Vec<u8>,
    /// The entry name as written in the tar (for messages).
    raw: Vec<u8>,
    /// The normalised entry path, relative to the root, without leading or trailing `/`.
    path: Vec<u8>,
    /// The hardlink or symlink target as written in the tar.
    raw_link: Vec<u8>,
    /// The normalised hardlink target.
    link: Vec<u8>,
    /// `SCHILY.xattr.*` records of the current entry; the first `nxattrs` slots are live.
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    nxattrs: usize,
    /// `/proc/self/fd/N/name`, for xattrs on files that cannot be opened.
    proc_path: Vec<u8>,
    /// Directory mtimes, applied once every child has been written.
    dir_times: Vec<(Vec<u8>, Timespec)>,
}

impl Unpacker {
    fn new(root: OwnedFd) -> Self {
        Unpacker {
            walker: Walker {
                root,
                cache: None,
                openat2: Cell::new(true),
            },
            stats: ApplyStats::default(),
            buf: vec![0; COPY_BUF],
            raw: Vec::new(),
            path: Vec::new(),
            raw_link: Vec::new(),
            link: Vec::new(),
            xattrs: Vec::new(),
            nxattrs: 0,
            proc_path: Vec::new(),
            dir_times: Vec::new(),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ApplyError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        self.stats.entries += 1;
        self.raw.clear();
        self.raw.extend_from_slice(&entry.path_bytes());
        self.raw_link.clear();
        if let Some(link) = entry.link_name_bytes() {
            self.raw_link.extend_from_slice(&link);
        }
        // A V7 tar marks directories only by a trailing slash on a type-NUL entry.
        let is_dir =
            kind.is_dir() || (entry.header().as_old().linkflag[0] == 0 && self.raw.ends_with(b"/"));
        let meta = self.read_meta(entry)?;
        if !normalise(&self.raw, &mut self.path) {
            return Err(ApplyError::Breakout {
                path: shown(&self.raw),
            });
        }
        let (parent, name) = split(&self.path);

        if self.path.is_empty() {
            if !is_dir {
                return Err(ApplyError::ReplacesRoot {
                    path: shown(&self.raw),
                });
            }
            let root = self.walker.root.as_fd();
            set_meta_fd(root, &meta, &self.xattrs[..self.nxattrs])
                .map_err(|(op, e)| io_err(&self.raw, op, e))?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(());
        }

        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let walker = &mut self.walker;
            walker
                .enter(parent, true)
                .map_err(|e| walk_err(&self.raw, parent, e))?;
            let dir = walker.current(parent);
            if name == OPAQUE_MARKER {
                return rfs::fsetxattr(dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(|e| io_err(&self.raw, "marking the directory opaque", e));
            }
            if hidden.starts_with(WHITEOUT_PREFIX) {
                // Other `.wh..wh.*` names are aufs bookkeeping (`.wh..wh.plnk`, …), not content.
                log::debug!("skipping aufs metadata entry {:?}", shown(&self.raw));
                return Ok(());
            }
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(ApplyError::BadWhiteout {
                    path: shown(&self.raw),
                });
            }
            let mut removed = false;
            replacing(dir, hidden, &mut removed, "creating the whiteout", || {
                rfs::mknodat(dir, hidden, FileType::CharacterDevice, Mode::empty(), 0)
            })
            .and_then(|()| {
                rfs::chownat(
                    dir,
                    hidden,
                    Some(meta.uid),
                    Some(meta.gid),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| ("setting the whiteout's owner", e))
            })
            .and_then(|()| {
                rfs::utimensat(dir, hidden, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| ("setting the whiteout's times", e))
            })
            .map_err(|(op, e)| io_err(&self.raw, op, e))?;
            if removed {
                walker.invalidate();
            }
            return Ok(());
        }

        if is_dir {
            return self.directory(&meta);
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, &meta)
            }
            EntryType::Symlink => self.symlink(&meta),
            EntryType::Link => self.hardlink(&meta),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let header = entry.header();
                let dev = match kind {
                    EntryType::Fifo => 0,
                    _ => {
                        let major = header.device_major().map_err(|e| self.bad_header(e))?;
                        let minor = header.device_minor().map_err(|e| self.bad_header(e))?;
                        rfs::makedev(major.unwrap_or(0), minor.unwrap_or(0))
                    }
                };
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.special(file_type, dev, &meta)
            }
            other => Err(ApplyError::Unsupported {
                path: shown(&self.raw),
                kind: char::from(other.as_byte()),
            }),
        }
    }

    /// Reads owner, mode and mtime from the header and xattrs (and a precise mtime) from PAX.
    fn read_meta<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<Meta, ApplyError> {
        let header = entry.header();
        let mode = header.mode().map_err(|e| self.bad_header(e))? & 0o7777;
        // PAX uid/gid records are already folded into the header by the tar crate.
        let uid = header.uid().map_err(|e| self.bad_header(e))?;
        let gid = header.gid().map_err(|e| self.bad_header(e))?;
        let id = |v: u64, what: &str| match u32::try_from(v) {
            Ok(v) if v != u32::MAX => Ok(v),
            _ => Err(self.bad_header(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} {v} is out of range"),
            ))),
        };
        let uid = Uid::from_raw(id(uid, "uid")?);
        let gid = Gid::from_raw(id(gid, "gid")?);
        let secs = header.mtime().map_err(|e| self.bad_header(e))?;
        let mut mtime = Timespec {
            tv_sec: i64::try_from(secs).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };

        self.nxattrs = 0;
        let raw = &self.raw;
        let bad = |e| ApplyError::BadHeader {
            path: shown(raw),
            source: e,
        };
        if let Some(extensions) = entry.pax_extensions().map_err(bad)? {
            for extension in extensions {
                let extension = extension.map_err(bad)?;
                let key = extension.key_bytes();
                if key == b"mtime" {
                    if let Some(t) = parse_pax_time(extension.value_bytes()) {
                        mtime = t;
                    }
                } else if let Some(name) = key.strip_prefix(XATTR_PAX_PREFIX) {
                    if name.starts_with(b"trusted.overlay.") {
                        // Overlay's own attributes (redirect, metacopy, origin, …) steer how the
                        // kernel resolves the merged tree; a layer only gets them via whiteouts.
                        log::warn!(
                            "layer entry {:?}: ignoring overlayfs xattr {:?}",
                            shown(raw),
                            shown(name)
                        );
                        continue;
                    }
                    if self.nxattrs == self.xattrs.len() {
                        self.xattrs.push((Vec::new(), Vec::new()));
                    }
                    let (k, v) = &mut self.xattrs[self.nxattrs];
                    k.clear();
                    k.extend_from_slice(name);
                    v.clear();
                    v.extend_from_slice(extension.value_bytes());
                    self.nxattrs += 1;
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
        })
    }

    fn bad_header(&self, source: io::Error) -> ApplyError {
        ApplyError::BadHeader {
            path: shown(&self.raw),
            source,
        }
    }

    fn directory(&mut self, meta: &Meta) -> Result<(), ApplyError> {
        let (parent, name) = split(&self.path);
        let raw = &self.raw;
        let walker = &mut self.walker;
        walker
            .enter(parent, true)
            .map_err(|e| walk_err(raw, parent, e))?;
        let dir = walker.current(parent);
        let mut replaced = false;
        let fd =
            open_or_make_dir(dir, name, &mut replaced).map_err(|(op, e)| io_err(raw, op, e))?;
        set_meta_fd(fd.as_fd(), meta, &self.xattrs[..self.nxattrs])
            .map_err(|(op, e)| io_err(raw, op, e))?;
        self.dir_times.push((self.path.clone(), meta.mtime));
        if replaced {
            walker.invalidate();
        }
        // The directory just made is most likely the parent of the next entries.
        walker.seed(&self.path, fd);
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        meta: &Meta,
    ) -> Result<(), ApplyError> {
        let (parent, name) = split(&self.path);
        let raw = &self.raw;
        let walker = &mut self.walker;
        walker
            .enter(parent, true)
            .map_err(|e| walk_err(raw, parent, e))?;
        let dir = walker.current(parent);
        let mut removed = false;
        let fd = replacing(dir, name, &mut removed, "creating the file", || {
            rfs::openat(
                dir,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        })
        .map_err(|(op, e)| io_err(raw, op, e))?;
        let mut file = File::from(fd);
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ApplyError::Io {
                        path: shown(raw),
                        op: "reading file data from the layer",
                        source,
                    })
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(|source| ApplyError::Io {
                    path: shown(raw),
                    op: "writing file data",
                    source,
                })?;
            written += n as u64;
        }
        if written != entry.size() {
            // The tar crate reports a short stream as a clean end of the entry.
            return Err(ApplyError::Io {
                path: shown(raw),
                op: "reading file data from the layer",
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the layer ends after {written} of the file's {} bytes",
                        entry.size()
                    ),
                ),
            });
        }
        self.stats.size += written;
        set_meta_fd(file.as_fd(), meta, &self.xattrs[..self.nxattrs])
            .and_then(|()| {
                rfs::futimens(&file, &meta.times()).map_err(|e| ("setting the file's times", e))
            })
            .map_err(|(op, e)| io_err(raw, op, e))?;
        if removed {
            walker.invalidate();
        }
        Ok(())
    }

    fn symlink(&mut self, meta: &Meta) -> Result<(), ApplyError> {
        let (parent, name) = split(&self.path);
        let raw = &self.raw;
        let walker = &mut self.walker;
        walker
            .enter(parent, true)
            .map_err(|e| walk_err(raw, parent, e))?;
        let dir = walker.current(parent);
        let mut removed = false;
        // The target is stored as written: it may point anywhere, since nobody follows it here.
        let target = &self.raw_link[..];
        replacing(dir, name, &mut removed, "creating the symlink", || {
            rfs::symlinkat(target, dir, name)
        })
        .and_then(|()| {
            set_meta_at(
                dir,
                name,
                meta,
                &self.xattrs[..self.nxattrs],
                false,
                &mut self.proc_path,
            )
        })
        .map_err(|(op, e)| io_err(raw, op, e))?;
        if removed {
            walker.invalidate();
        }
        Ok(())
    }

    fn hardlink(&mut self, meta: &Meta) -> Result<(), ApplyError> {
        let (parent, name) = split(&self.path);
        let raw = &self.raw;
        let raw_link = &self.raw_link;
        let missing = || ApplyError::LinkTargetMissing {
            path: shown(raw),
            target: shown(raw_link),
        };
        if !normalise(raw_link, &mut self.link) {
            return Err(ApplyError::LinkBreakout {
                path: shown(raw),
                target: shown(raw_link),
            });
        }
        if self.link.is_empty() {
            return Err(missing());
        }
        let (link_parent, link_name) = split(&self.link);
        let walker = &mut self.walker;
        walker
            .enter(parent, true)
            .map_err(|e| walk_err(raw, parent, e))?;
        let target_dir = walker.lookup(link_parent).map_err(|e| match e.failure {
            Failure::Symlink => ApplyError::LinkThroughSymlink {
                path: shown(raw),
                target: shown(raw_link),
                component: shown(&link_parent[..e.end]),
            },
            Failure::Io(op, e) => io_err(raw, op, e),
            Failure::Missing | Failure::NotDir => missing(),
        })?;
        let dir = walker.current(parent);
        let mut removed = false;
        if self.link != self.path {
            // Flags 0: a symlink target is linked itself, never followed.
            match replacing(dir, name, &mut removed, "creating the hardlink", || {
                rfs::linkat(target_dir.as_fd(), link_name, dir, name, AtFlags::empty())
            }) {
                Ok(()) => {}
                Err((_, Errno::NOENT | Errno::PERM)) => return Err(missing()),
                Err((op, e)) => return Err(io_err(raw, op, e)),
            }
        }
        // Like Docker and containerd, the link's header metadata applies to the shared inode.
        let is_symlink = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
            .map_err(|e| match e {
                // Only when an entry names itself as its target and nothing is there yet.
                Errno::NOENT => missing(),
                e => io_err(raw, "inspecting the hardlink", e),
            })?;
        set_meta_at(
            dir,
            name,
            meta,
            &self.xattrs[..self.nxattrs],
            !is_symlink,
            &mut self.proc_path,
        )
        .map_err(|(op, e)| io_err(raw, op, e))?;
        drop(target_dir);
        if removed {
            walker.invalidate();
        }
        Ok(())
    }

    fn special(&mut self, file_type: FileType, dev: u64, meta: &Meta) -> Result<(), ApplyError> {
        let (parent, name) = split(&self.path);
        let raw = &self.raw;
        let walker = &mut self.walker;
        walker
            .enter(parent, true)
            .map_err(|e| walk_err(raw, parent, e))?;
        let dir = walker.current(parent);
        let mut removed = false;
        replacing(dir, name, &mut removed, "creating the device node", || {
            rfs::mknodat(dir, name, file_type, Mode::empty(), dev)
        })
        .and_then(|()| {
            set_meta_at(
                dir,
                name,
                meta,
                &self.xattrs[..self.nxattrs],
                true,
                &mut self.proc_path,
            )
        })
        .map_err(|(op, e)| io_err(raw, op, e))?;
        if removed {
            walker.invalidate();
        }
        Ok(())
    }

    /// Sets directory mtimes last: creating a child would have bumped them.
    fn finish(mut self) -> Result<ApplyStats, ApplyError> {
        let times = std::mem::take(&mut self.dir_times);
        for (path, mtime) in &times {
            let ts = Timestamps {
                last_access: *mtime,
                last_modification: *mtime,
            };
            // A later entry may have replaced or removed the directory; then it has no mtime
            // of its own to restore.
            if self.walker.enter(path, false).is_err() {
                log::debug!(
                    "directory {:?} vanished before its mtime was set",
                    shown(path)
                );
                continue;
            }
            rfs::futimens(self.walker.current(path), &ts)
                .map_err(|e| io_err(path, "setting the directory's times", e))?;
        }
        Ok(self.stats)
    }
}

/// How a walk to a directory failed.
#[derive(Debug)]
enum Failure {
    Symlink,
    NotDir,
    Missing,
    Io(&'static str, Errno),
}

/// A failed walk: `end` is where the offending component ends in the path being walked.
#[derive(Debug)]
struct WalkError {
    end: usize,
    failure: Failure,
}

/// Resolves directories below the root without following symlinks, remembering the last one.
struct Walker {
    root: OwnedFd,
    /// The last directory entered: its normalised path and an fd that was reached safely.
    cache: Option<(Vec<u8>, OwnedFd)>,
    /// Whether to try `openat2`; cleared once the kernel says it does not have it.
    openat2: Cell<bool>,
}

/// An fd that is either borrowed from the walker or freshly opened.
enum DirFd<'a> {
    Borrowed(BorrowedFd<'a>),
    Owned(OwnedFd),
}

impl DirFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            DirFd::Borrowed(fd) => *fd,
            DirFd::Owned(fd) => fd.as_fd(),
        }
    }
}

impl Walker {
    /// Makes `rel` the cached directory, creating missing directories (0755) when `create`.
    fn enter(&mut self, rel: &[u8], create: bool) -> Result<(), WalkError> {
        if rel.is_empty() {
            return Ok(());
        }
        let skip = match &self.cache {
            Some((key, _)) if key == rel => return Ok(()),
            Some((key, _)) if is_ancestor(key, rel) => key.len() + 1,
            _ => 0,
        };
        let cached = self.cache.take();
        let start = match &cached {
            Some((_, fd)) if skip > 0 => fd.as_fd(),
            _ => self.root.as_fd(),
        };
        let fd = self.walk(start, rel, skip, create)?;
        let mut key = cached.map(|(key, _)| key).unwrap_or_default();
        key.clear();
        key.extend_from_slice(rel);
        self.cache = Some((key, fd));
        Ok(())
    }

    /// The fd of `rel`, which must be the root or the directory last passed to `enter`.
    fn current(&self, rel: &[u8]) -> BorrowedFd<'_> {
        match &self.cache {
            _ if rel.is_empty() => self.root.as_fd(),
            Some((key, fd)) if key == rel => fd.as_fd(),
            _ => unreachable!("Walker::current without a matching Walker::enter"),
        }
    }

    /// Opens an existing directory without creating anything or disturbing the cache.
    fn lookup(&self, rel: &[u8]) -> Result<DirFd<'_>, WalkError> {
        if rel.is_empty() {
            return Ok(DirFd::Borrowed(self.root.as_fd()));
        }
        match &self.cache {
            Some((key, fd)) if key == rel => Ok(DirFd::Borrowed(fd.as_fd())),
            Some((key, fd)) if is_ancestor(key, rel) => self
                .walk(fd.as_fd(), rel, key.len() + 1, false)
                .map(DirFd::Owned),
            _ => self
                .walk(self.root.as_fd(), rel, 0, false)
                .map(DirFd::Owned),
        }
    }

    /// Remembers `fd` as the directory `rel`, which the caller reached safely.
    fn seed(&mut self, rel: &[u8], fd: OwnedFd) {
        let mut key = self.cache.take().map(|(key, _)| key).unwrap_or_default();
        key.clear();
        key.extend_from_slice(rel);
        self.cache = Some((key, fd));
    }

    /// Forgets the cached directory after an entry removed something that might lie on its
    /// path (the fd would then name a deleted directory).
    fn invalidate(&mut self) {
        self.cache = None;
    }

    /// Opens `rel[skip..]` below `start`, one component at a time, never following symlinks.
    fn walk(
        &self,
        start: BorrowedFd<'_>,
        rel: &[u8],
        skip: usize,
        create: bool,
    ) -> Result<OwnedFd, WalkError> {
        let rest = &rel[skip..];
        if skip == 0 && self.openat2.get() && rest.contains(&b'/') {
            // One syscall for the whole path in the common case. Any failure (a missing
            // parent, a symlink, EAGAIN) falls through to the component walk, which is the
            // authority: it creates parents and names the offending component.
            match rfs::openat2(
                start,
                rest,
                DIR_FLAGS,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => return Ok(fd),
                Err(Errno::NOSYS) => self.openat2.set(false),
                Err(_) => {}
            }
        }
        let mut current: Option<OwnedFd> = None;
        let mut end = skip;
        for component in rest.split(|&b| b == b'/') {
            end += component.len();
            let dir = current.as_ref().map_or(start, |fd| fd.as_fd());
            let fd = open_component(dir, component, create)
                .map_err(|failure| WalkError { end, failure })?;
            current = Some(fd);
            end += 1;
        }
        current.ok_or(WalkError {
            end: 0,
            failure: Failure::Missing,
        })
    }
}

/// Opens (and when `create`, first makes) one directory component below `dir`.
fn open_component(dir: BorrowedFd<'_>, name: &[u8], create: bool) -> Result<OwnedFd, Failure> {
    match rfs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) if create => {}
        Err(e) => return Err(classify(dir, name, e)),
    }
    let made = match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(Failure::Io("creating a parent directory", e)),
    };
    let fd =
        rfs::openat(dir, name, DIR_FLAGS, Mode::empty()).map_err(|e| classify(dir, name, e))?;
    if made {
        // Whatever the umask, implied parents are 0755, as in Docker.
        rfs::fchmod(&fd, Mode::from_raw_mode(0o755))
            .map_err(|e| Failure::Io("creating a parent directory", e))?;
    }
    Ok(fd)
}

/// Explains a failed `openat(O_DIRECTORY | O_NOFOLLOW)` of a parent component.
fn classify(dir: BorrowedFd<'_>, name: &[u8], e: Errno) -> Failure {
    match e {
        Errno::NOENT => Failure::Missing,
        Errno::LOOP | Errno::NOTDIR => match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Failure::Symlink,
            _ => Failure::NotDir,
        },
        e => Failure::Io("opening a parent directory", e),
    }
}

/// Creates the directory `name` or reuses the one there; a non-directory there (a symlink
/// included) is unlinked first, never followed. Sets `replaced` if something was removed.
fn open_or_make_dir(
    dir: BorrowedFd<'_>,
    name: &[u8],
    replaced: &mut bool,
) -> Result<OwnedFd, (&'static str, Errno)> {
    let mkdir = || match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(("creating the directory", e)),
    };
    mkdir()?;
    match rfs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOTDIR | Errno::LOOP) => {}
        Err(e) => return Err(("opening the directory", e)),
    }
    rfs::unlinkat(dir, name, AtFlags::empty())
        .map_err(|e| ("removing the earlier entry it replaces", e))?;
    *replaced = true;
    mkdir()?;
    rfs::openat(dir, name, DIR_FLAGS, Mode::empty()).map_err(|e| ("opening the directory", e))
}

/// Runs `create`; if the name is taken, removes what holds it (never following a symlink,
/// removing a directory with its contents, as a later tar entry replaces an earlier one) and
/// runs it once more. Sets `removed` if anything was removed.
fn replacing<T>(
    dir: BorrowedFd<'_>,
    name: &[u8],
    removed: &mut bool,
    op: &'static str,
    mut create: impl FnMut() -> rustix::io::Result<T>,
) -> Result<T, (&'static str, Errno)> {
    match create() {
        Err(Errno::EXIST) => {}
        result => return result.map_err(|e| (op, e)),
    }
    remove_any(dir, name).map_err(|e| ("removing the earlier entry it replaces", e))?;
    *removed = true;
    create().map_err(|e| (op, e))
}

/// Removes `name` below `dir` whatever it is, without following symlinks.
fn remove_any(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<()> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => remove_tree(dir, name),
        Err(e) => Err(e),
    }
}

/// Removes the directory `name` below `parent` with everything in it. Iterative, so a
/// hostile depth cannot exhaust the stack; symlinks inside are unlinked, never entered.
fn remove_tree(parent: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<()> {
    let top = rfs::openat(parent, name, DIR_FLAGS, Mode::empty())?;
    let mut stack: Vec<(OwnedFd, Vec<u8>)> = vec![(top, name.to_vec())];
    while let Some((fd, _)) = stack.last() {
        let mut subdir = None;
        let mut entries = rfs::Dir::read_from(fd)?;
        while let Some(entry) = entries.read() {
            let entry = entry?;
            let child = entry.file_name();
            if child == c"." || child == c".." {
                continue;
            }
            match rfs::unlinkat(fd, child, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(Errno::ISDIR) => {
                    subdir = Some(child.to_bytes().to_vec());
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(child) = subdir {
            let child_fd = rfs::openat(fd, child.as_slice(), DIR_FLAGS, Mode::empty())?;
            stack.push((child_fd, child));
            continue;
        }
        let Some((_, done)) = stack.pop() else { break };
        let up = stack.last().map_or(parent, |(fd, _)| fd.as_fd());
        rfs::unlinkat(up, done.as_slice(), AtFlags::REMOVEDIR)?;
    }
    Ok(())
}

/// Sets owner, xattrs and mode through an fd, in that order: chown clears setuid/setgid, and
/// a later chmod restores them.
fn set_meta_fd(
    fd: BorrowedFd<'_>,
    meta: &Meta,
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> Result<(), (&'static str, Errno)> {
    rfs::fchown(fd, Some(meta.uid), Some(meta.gid)).map_err(|e| ("setting the owner", e))?;
    for (name, value) in xattrs {
        let result = rfs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty());
        xattr_result(name, result)?;
    }
    rfs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(|e| ("setting the mode", e))
}

/// Sets owner, xattrs, mode (when `chmod`) and times on `name` below `dir`, for entries that
/// must not be opened (symlinks, devices, fifos, hardlinks to them).
fn set_meta_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    meta: &Meta,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    chmod: bool,
    proc_path: &mut Vec<u8>,
) -> Result<(), (&'static str, Errno)> {
    rfs::chownat(
        dir,
        name,
        Some(meta.uid),
        Some(meta.gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| ("setting the owner", e))?;
    if !xattrs.is_empty() {
        // No *xattrat() before Linux 6.13: name the entry through the verified parent fd;
        // lsetxattr does not follow the final component.
        proc_path.clear();
        proc_path.extend_from_slice(format!("/proc/self/fd/{}/", dir.as_raw_fd()).as_bytes());
        proc_path.extend_from_slice(name);
        for (xname, value) in xattrs {
            let result = rfs::lsetxattr(
                proc_path.as_slice(),
                xname.as_slice(),
                value,
                XattrFlags::empty(),
            );
            xattr_result(xname, result)?;
        }
    }
    if chmod {
        // fchmodat follows a final symlink (Linux has no lchmod), so this is only called on
        // names known not to be symlinks: a node mknodat just made, or a checked hardlink.
        rfs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
            .map_err(|e| ("setting the mode", e))?;
    }
    rfs::utimensat(dir, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| ("setting the times", e))
}

/// A filesystem without xattr support is worth a warning, not a failed pull; any other error
/// (a value the kernel rejects, a namespace not allowed on this file type) fails the layer.
fn xattr_result(name: &[u8], result: rustix::io::Result<()>) -> Result<(), (&'static str, Errno)> {
    match result {
        Ok(()) => Ok(()),
        Err(Errno::OPNOTSUPP) => {
            log::warn!(
                "the snapshot filesystem does not support xattr {:?}; dropping it",
                shown(name)
            );
            Ok(())
        }
        Err(e) => Err(("setting an xattr", e)),
    }
}

/// Normalises a tar name into `out`: no leading `/`, no `.` or empty components, `..` applied.
/// Returns false if a `..` would climb above the root.
fn normalise(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return false;
                }
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(component);
            }
        }
    }
    true
}

/// Splits a normalised path into its parent and final name.
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Whether `dir` is a proper ancestor of `path` (both normalised).
fn is_ancestor(dir: &[u8], path: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// Parses a PAX time (`1700000000.123456789`, possibly negative) into a timespec.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let digits = frac.as_bytes();
    let nanos = (0..9).fold(0i64, |n, i| {
        n * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'))
    });
    Some(match (negative, nanos) {
        (false, _) => Timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        },
        (true, 0) => Timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        },
        (true, _) => Timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - nanos,
        },
    })
}

/// A tar name for messages: lossy UTF-8, quoted by the `{:?}` in the error formats.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn io_err(raw: &[u8], op: &'static str, e: Errno) -> ApplyError {
    ApplyError::Io {
        path: shown(raw),
        op,
        source: e.into(),
    }
}

/// Turns a failed walk to `walked` (the entry's normalised parent) into an error on the entry.
fn walk_err(raw: &[u8], walked: &[u8], e: WalkError) -> ApplyError {
    let component = shown(&walked[..e.end.min(walked.len())]);
    match e.failure {
        Failure::Symlink => ApplyError::ThroughSymlink {
            path: shown(raw),
            component,
        },
        Failure::NotDir => ApplyError::NotADirectory {
            path: shown(raw),
            component,
        },
        Failure::Missing => io_err(raw, "opening a parent directory", Errno::NOENT),
        Failure::Io(op, e) => io_err(raw, op, e),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Every test goes through [`check`]: a list of tar entries in, a listing of the unpacked
    //! tree (or an error) out, with the directory next to the root checked to be untouched.

    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use tar::Header;

    /// The mtime test entries get unless they say otherwise; listings leave it out.
    pub(crate) const MTIME: u64 = 1_600_000_000;

    /// One tar entry of a test layer. `{outside}` in a name or link target stands for the
    /// absolute path of the directory beside the root.
    #[derive(Clone)]
    pub(crate) struct E {
        kind: u8,
        name: String,
        link: String,
        data: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        dev: (u32, u32),
        pax: Vec<(String, Vec<u8>)>,
        /// Long names as PAX `path`/`linkpath` records rather than GNU `L`/`K` entries.
        pax_names: bool,
    }

    fn entry(kind: u8, name: &str, mode: u32) -> E {
        E {
            kind,
            name: name.into(),
            link: String::new(),
            data: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            mtime: MTIME,
            dev: (0, 0),
            pax: Vec::new(),
            pax_names: false,
        }
    }
    pub(crate) fn file(name: &str, data: &str) -> E {
        E {
            data: data.as_bytes().to_vec(),
            ..entry(b'0', name, 0o644)
        }
    }
    pub(crate) fn dir(name: &str) -> E {
        entry(b'5', name, 0o755)
    }
    pub(crate) fn symlink(name: &str, target: &str) -> E {
        E {
            link: target.into(),
            ..entry(b'2', name, 0o777)
        }
    }
    pub(crate) fn hardlink(name: &str, target: &str) -> E {
        E {
            link: target.into(),
            ..entry(b'1', name, 0o644)
        }
    }
    pub(crate) fn chardev(name: &str, major: u32, minor: u32) -> E {
        E {
            dev: (major, minor),
            ..entry(b'3', name, 0o666)
        }
    }
    pub(crate) fn blockdev(name: &str, major: u32, minor: u32) -> E {
        E {
            dev: (major, minor),
            ..entry(b'4', name, 0o660)
        }
    }
    pub(crate) fn fifo(name: &str) -> E {
        entry(b'6', name, 0o600)
    }
    fn raw(kind: u8, name: &str) -> E {
        entry(kind, name, 0o644)
    }

    impl E {
        pub(crate) fn mode(self, mode: u32) -> E {
            E { mode, ..self }
        }
        pub(crate) fn owner(self, uid: u64, gid: u64) -> E {
            E { uid, gid, ..self }
        }
        pub(crate) fn mtime(self, mtime: u64) -> E {
            E { mtime, ..self }
        }
        pub(crate) fn xattr(self, name: &str, value: &str) -> E {
            self.pax(&format!("SCHILY.xattr.{name}"), value)
        }
        pub(crate) fn pax(mut self, key: &str, value: &str) -> E {
            self.pax.push((key.into(), value.as_bytes().to_vec()));
            self
        }
        pub(crate) fn pax_names(self) -> E {
            E {
                pax_names: true,
                ..self
            }
        }
    }

    /// Copies a name into a header field byte for byte, bypassing the tar crate's checks
    /// (which refuse `..`), so hostile names reach the unpacker as an attacker writes them.
    fn put(field: &mut [u8], value: &[u8]) {
        let n = value.len().min(field.len());
        field[..n].copy_from_slice(&value[..n]);
    }

    fn gnu_long(builder: &mut tar::Builder<Vec<u8>>, kind: u8, value: &[u8]) {
        let mut header = Header::new_gnu();
        put(&mut header.as_old_mut().name, b"././@LongLink");
        header.set_entry_type(EntryType::new(kind));
        header.set_size(value.len() as u64 + 1);
        header.set_cksum();
        let mut data = value.to_vec();
        data.push(0);
        builder.append(&header, &data[..]).unwrap();
    }

    /// Builds an uncompressed layer tar from test entries.
    pub(crate) fn build(entries: &[E], outside: &Path) -> Vec<u8> {
        let outside = outside.to_str().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        for e in entries {
            let name = e.name.replace("{outside}", outside).into_bytes();
            let link = e.link.replace("{outside}", outside).into_bytes();
            let mut pax = e.pax.clone();
            if e.pax_names && name.len() > 100 {
                pax.push(("path".into(), name.clone()));
            }
            if e.pax_names && link.len() > 100 {
                pax.push(("linkpath".into(), link.clone()));
            }
            if !pax.is_empty() {
                builder
                    .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                    .unwrap();
            }
            if !e.pax_names && name.len() > 100 {
                gnu_long(&mut builder, b'L', &name);
            }
            if !e.pax_names && link.len() > 100 {
                gnu_long(&mut builder, b'K', &link);
            }
            let mut header = Header::new_gnu();
            put(&mut header.as_old_mut().name, &name);
            put(&mut header.as_old_mut().linkname, &link);
            header.set_mode(e.mode);
            header.set_uid(e.uid);
            header.set_gid(e.gid);
            header.set_mtime(e.mtime);
            header.set_size(e.data.len() as u64);
            header.set_entry_type(EntryType::new(e.kind));
            header.as_old_mut().linkflag[0] = e.kind;
            header.set_device_major(e.dev.0).unwrap();
            header.set_device_minor(e.dev.1).unwrap();
            header.set_cksum();
            builder.append(&header, &e.data[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// A root to unpack into and, beside it, a directory that must never change.
    pub(crate) struct Sandbox {
        _base: tempfile::TempDir,
        pub(crate) root: PathBuf,
        pub(crate) outside: PathBuf,
    }

    impl Sandbox {
        pub(crate) fn new() -> Sandbox {
            let base = tempfile::tempdir().unwrap();
            let root = base.path().join("root");
            let outside = base.path().join("outside");
            fs::create_dir(&root).unwrap();
            fs::create_dir(&outside).unwrap();
            fs::create_dir(outside.join("sub")).unwrap();
            fs::write(outside.join("secret"), "secret").unwrap();
            Sandbox {
                _base: base,
                root,
                outside,
            }
        }
    }
    use std::fs;

    /// Lists a tree, one line per file, sorted, for comparing with expectations:
    /// `d MODE UID:GID path/`, `f MODE UID:GID path "content"`, `l UID:GID path -> target`,
    /// `h path => first name`, `c/b MODE UID:GID path MAJ,MIN`, `p MODE UID:GID path`,
    /// `w UID:GID path` (a whiteout), then ` opaque`, ` xattr=value` and ` @mtime` when the
    /// mtime is not [`MTIME`] (`@now` for one set by the clock). With `exact`, the root is
    /// listed too and every line carries the exact mtime and the link count.
    pub(crate) fn listing(root: &Path, outside: &Path, exact: bool) -> String {
        let mut out = String::new();
        if exact {
            let meta = fs::symlink_metadata(root).unwrap();
            out += &line(root, "./", &meta, outside, exact);
        }
        list_into(root, "", outside, exact, &mut HashMap::new(), &mut out);
        out
    }

    /// Lists `dir` depth first in sorted order, the order a layer tar has.
    fn list_into(
        dir: &Path,
        rel: &str,
        outside: &Path,
        exact: bool,
        inodes: &mut HashMap<(u64, u64), String>,
        out: &mut String,
    ) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path).unwrap();
            let mut shown = format!("{rel}{}", name.to_string_lossy());
            if meta.is_dir() {
                shown.push('/');
                out.push_str(&line(&path, &shown, &meta, outside, exact));
                list_into(&path, &shown, outside, exact, inodes, out);
                continue;
            }
            let key = (meta.dev(), meta.ino());
            match inodes.get(&key) {
                Some(first) if meta.nlink() > 1 => {
                    out.push_str(&format!("h {shown} => {first}\n"));
                }
                _ => {
                    inodes.insert(key, shown.clone());
                    out.push_str(&line(&path, &shown, &meta, outside, exact));
                }
            }
        }
    }

    fn line(path: &Path, shown: &str, meta: &fs::Metadata, outside: &Path, exact: bool) -> String {
        let ft = meta.file_type();
        let owner = format!("{}:{}", meta.uid(), meta.gid());
        let mode = meta.mode() & 0o7777;
        let mut text = if ft.is_dir() {
            format!("d {mode:04o} {owner} {shown}")
        } else if ft.is_file() {
            let data = fs::read(path).unwrap();
            format!(
                "f {mode:04o} {owner} {shown} {:?}",
                String::from_utf8_lossy(&data)
            )
        } else if ft.is_symlink() {
            let target = fs::read_link(path).unwrap();
            let target = target
                .to_string_lossy()
                .replace(outside.to_str().unwrap(), "{outside}");
            format!("l {owner} {shown} -> {target}")
        } else if ft.is_char_device() && meta.rdev() == 0 {
            format!("w {owner} {shown}")
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() { 'c' } else { 'b' };
            let (major, minor) = (rfs::major(meta.rdev()), rfs::minor(meta.rdev()));
            format!("{kind} {mode:04o} {owner} {shown} {major},{minor}")
        } else if ft.is_fifo() {
            format!("p {mode:04o} {owner} {shown}")
        } else {
            format!("? {shown}")
        };
        for (name, value) in xattrs(path) {
            match name.as_str() {
                "trusted.overlay.opaque" if value == b"y" => text.push_str(" opaque"),
                "security.selinux" => {}
                _ => text.push_str(&format!(" {name}={:?}", String::from_utf8_lossy(&value))),
            }
        }
        let (secs, nanos) = (meta.mtime(), meta.mtime_nsec());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if exact {
            text.push_str(&format!(" @{secs}.{nanos:09} n{}", meta.nlink()));
        } else if (now - secs).abs() < 86_400 {
            text.push_str(" @now");
        } else if nanos != 0 {
            text.push_str(&format!(" @{secs}.{nanos:09}"));
        } else if secs != MTIME as i64 {
            text.push_str(&format!(" @{secs}"));
        }
        text + "\n"
    }

    fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
        let mut list = vec![0u8; 65536];
        let n = rfs::llistxattr(path, &mut list[..]).unwrap();
        let mut out = Vec::new();
        for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
            let mut value = vec![0u8; 65536];
            let len = rfs::lgetxattr(path, name, &mut value[..]).unwrap();
            value.truncate(len);
            out.push((String::from_utf8_lossy(name).into_owned(), value));
        }
        out.sort();
        out
    }

    /// Strips the indentation of an expected listing.
    pub(crate) fn dedent(text: &str) -> String {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Unpacks `entries` into a fresh root and compares the tree with `expected`, or, when
    /// `expected` starts with `error: `, checks the error message contains the rest. Either
    /// way the directory beside the root (which hostile entries aim at) must be unchanged.
    #[track_caller]
    fn check(entries: &[E], expected: &str) -> Sandbox {
        let sandbox = Sandbox::new();
        let tar = build(entries, &sandbox.outside);
        let before = listing(&sandbox.outside, &sandbox.outside, true);
        let result = apply_layer(&sandbox.root, &tar[..]);
        let after = listing(&sandbox.outside, &sandbox.outside, true);
        assert_eq!(before, after, "the directory outside the root changed");
        match expected.trim().strip_prefix("error: ") {
            Some(message) => match result {
                Ok(_) => panic!(
                    "expected an error containing {message:?}, but the layer applied:\n{}",
                    listing(&sandbox.root, &sandbox.outside, false)
                ),
                Err(e) => assert!(
                    e.to_string().contains(message),
                    "expected an error containing {message:?}, got: {e}"
                ),
            },
            None => {
                if let Err(e) = result {
                    panic!("unexpected error: {e}");
                }
                assert_eq!(
                    listing(&sandbox.root, &sandbox.outside, false),
                    dedent(expected)
                );
            }
        }
        sandbox
    }

    #[test]
    fn files_and_directories_with_owner_and_mode() {
        check(
            &[
                dir("data/").mode(0o750).owner(1000, 1000),
                file("data/a.txt", "a\n").mode(0o640).owner(1000, 1000),
                file("data/empty", ""),
                file("usr/bin/sudo", "su").mode(0o4755).owner(0, 0),
                file("usr/bin/wall", "w").mode(0o2755).owner(0, 5),
                dir("tmp").mode(0o1777),
                dir("srv/shared").mode(0o2775).owner(0, 50),
                file("big-ids", "x")
                    .owner(0, 0)
                    .pax("uid", "3000000")
                    .pax("gid", "70000"),
            ],
            r#"
            f 0644 3000000:70000 big-ids "x"
            d 0750 1000:1000 data/
            f 0640 1000:1000 data/a.txt "a\n"
            f 0644 0:0 data/empty ""
            d 0755 0:0 srv/ @now
            d 2775 0:50 srv/shared/
            d 1777 0:0 tmp/
            d 0755 0:0 usr/ @now
            d 0755 0:0 usr/bin/ @now
            f 4755 0:0 usr/bin/sudo "su"
            f 2755 0:5 usr/bin/wall "w"
            "#,
        );
    }

    #[test]
    fn setuid_survives_a_non_root_owner() {
        // chown clears setuid/setgid; the mode must be applied after it.
        check(
            &[file("ping", "p").mode(0o6755).owner(1000, 1000)],
            r#"f 6755 1000:1000 ping "p""#,
        );
    }

    #[test]
    fn symlinks_are_stored_verbatim() {
        check(
            &[
                symlink("abs", "/etc/passwd").owner(1000, 1001),
                symlink("rel", "../../../outside/secret"),
                symlink("dangling", "nowhere"),
                symlink("dir/self", ".").mtime(1_234_567_890),
            ],
            r#"
            l 1000:1001 abs -> /etc/passwd
            l 0:0 dangling -> nowhere
            d 0755 0:0 dir/ @now
            l 0:0 dir/self -> . @1234567890
            l 0:0 rel -> ../../../outside/secret
            "#,
        );
    }

    #[test]
    fn hardlinks_share_the_inode() {
        check(
            &[
                file("bin/perl5.36", "perl").mode(0o755),
                hardlink("bin/perl", "bin/perl5.36").mode(0o755),
                hardlink("usr/perl", "/bin/perl5.36").mode(0o755),
                hardlink("./bin/./x/../perl2", "./bin/perl").mode(0o755),
            ],
            r#"
            d 0755 0:0 bin/ @now
            f 0755 0:0 bin/perl "perl"
            h bin/perl2 => bin/perl
            h bin/perl5.36 => bin/perl
            d 0755 0:0 usr/ @now
            h usr/perl => bin/perl
            "#,
        );
    }

    #[test]
    fn devices_and_fifos() {
        check(
            &[
                chardev("dev/null", 1, 3),
                blockdev("dev/loop0", 7, 0).owner(0, 6),
                fifo("run/initctl").mode(0o600),
                chardev("dev/tty", 5, 0).mode(0o4666).owner(1000, 5),
            ],
            r#"
            d 0755 0:0 dev/ @now
            b 0660 0:6 dev/loop0 7,0
            c 0666 0:0 dev/null 1,3
            c 4666 1000:5 dev/tty 5,0
            d 0755 0:0 run/ @now
            p 0600 0:0 run/initctl
            "#,
        );
    }

    #[test]
    fn mtimes_are_set_on_everything_and_directories_last() {
        check(
            &[
                dir("d").mtime(1_000_000_000),
                file("d/f", "").mtime(1_100_000_000),
                dir("d/sub").mtime(1_200_000_000),
                symlink("d/sub/l", "f").mtime(1_300_000_000),
                chardev("d/sub/c", 1, 3).mtime(1_400_000_000),
                file("d/.wh.gone", "").mtime(1_500_000_000),
                file("precise", "").pax("mtime", "1700000000.123456789"),
                file("negative", "").pax("mtime", "-1.5"),
            ],
            r#"
            d 0755 0:0 d/ @1000000000
            f 0644 0:0 d/f "" @1100000000
            w 0:0 d/gone @1500000000
            d 0755 0:0 d/sub/ @1200000000
            c 0666 0:0 d/sub/c 1,3 @1400000000
            l 0:0 d/sub/l -> f @1300000000
            f 0644 0:0 negative "" @-2.500000000
            f 0644 0:0 precise "" @1700000000.123456789
            "#,
        );
    }

    #[test]
    fn root_entry_sets_the_roots_metadata() {
        for name in ["./", ".", "/", "a/.."] {
            let sandbox = check(
                &[dir(name).mode(0o750).owner(1000, 1000).mtime(1_000_000_000)],
                "",
            );
            let meta = fs::symlink_metadata(&sandbox.root).unwrap();
            assert_eq!(
                (meta.mode() & 0o7777, meta.uid(), meta.gid(), meta.mtime()),
                (0o750, 1000, 1000, 1_000_000_000),
                "{name}"
            );
        }
        check(
            &[file("./", "x")],
            r#"error: layer entry "./" would replace the layer root with a non-directory"#,
        );
    }

    #[test]
    fn xattrs_from_pax_records() {
        check(
            &[
                dir("d").xattr("user.dir", "1"),
                file("d/f", "x")
                    .xattr("user.mime_type", "text/plain")
                    .xattr("trusted.md5", "abc"),
                file("d/cap", "").mode(0o4755).xattr(
                    "security.capability",
                    "\u{1}\0\0\u{2}\u{20}\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                ),
                symlink("d/l", "f").xattr("trusted.link", "yes"),
                fifo("d/p").xattr("trusted.fifo", "yes"),
                // overlayfs' own attributes are never taken from a layer.
                dir("r").xattr("trusted.overlay.redirect", "/etc"),
            ],
            r#"
            d 0755 0:0 d/ user.dir="1"
            f 4755 0:0 d/cap "" security.capability="\u{1}\0\0\u{2} \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
            f 0644 0:0 d/f "x" trusted.md5="abc" user.mime_type="text/plain"
            l 0:0 d/l -> f trusted.link="yes"
            p 0600 0:0 d/p trusted.fifo="yes"
            d 0755 0:0 r/
            "#,
        );
    }

    #[test]
    fn whiteouts_and_opaque_directories() {
        check(
            &[
                dir("data"),
                file("data/.wh.gone", "").owner(1000, 1000),
                file("etc/.wh..wh..opq", ""),
                file("etc/hosts", "h"),
                file(".wh..wh.plnk", ""),
                dir(".wh..wh.orph"),
                file(".wh.top", ""),
                file("data/.wh.gone2", "").mtime(5),
            ],
            r#"
            d 0755 0:0 data/
            w 1000:1000 data/gone
            w 0:0 data/gone2 @5
            d 0755 0:0 etc/ opaque @now
            f 0644 0:0 etc/hosts "h"
            w 0:0 top
            "#,
        );
        check(
            &[file("a/.wh..", "")],
            r#"error: layer entry "a/.wh.." is a whiteout for an invalid name"#,
        );
    }

    #[test]
    fn whiteout_replaces_an_entry_of_the_same_layer() {
        check(
            &[
                file("a/x", "x"),
                file("a/y/z", "z"),
                file("a/.wh.x", ""),
                file("a/.wh.y", ""),
            ],
            r#"
            d 0755 0:0 a/ @now
            w 0:0 a/x
            w 0:0 a/y
            "#,
        );
    }

    #[test]
    fn long_names_in_gnu_and_pax_form() {
        let deep = format!("{}/{}", "d".repeat(120), "f".repeat(130));
        let target = format!("/{}", "t".repeat(150));
        let expected = format!(
            "d 0755 0:0 {d}/ @now\nf 0644 0:0 {deep} \"gnu\"\nl 0:0 {d}/gnu-link -> {target}\n\
             h {d}/hard => {deep}\nl 0:0 {d}/pax-link -> {target}\nd 0755 0:0 {d}/x/ @now\n\
             f 0644 0:0 {d}/x/{f} \"pax\"\n",
            d = "d".repeat(120),
            f = "f".repeat(130),
        );
        check(
            &[
                file(&deep, "gnu"),
                file(&format!("{}/x/{}", "d".repeat(120), "f".repeat(130)), "pax").pax_names(),
                symlink(&format!("{}/gnu-link", "d".repeat(120)), &target),
                symlink(&format!("{}/pax-link", "d".repeat(120)), &target).pax_names(),
                hardlink(&format!("{}/hard", "d".repeat(120)), &deep).pax_names(),
            ],
            &expected,
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        check(
            &[
                file("f", "one"),
                file("f", "two").mode(0o600),
                file("d", "file first"),
                dir("d").mode(0o700),
                file("d/inside", "i"),
                dir("tree/a/b"),
                file("tree/a/b/c", "c"),
                file("tree", "now a file"),
                dir("kept").mode(0o700).owner(1, 1),
                file("kept/x", "x"),
                dir("kept").mode(0o755).owner(2, 2),
                dir("s"),
                symlink("s", "elsewhere"),
                fifo("p"),
                chardev("p", 1, 3),
            ],
            r#"
            d 0700 0:0 d/
            f 0644 0:0 d/inside "i"
            f 0600 0:0 f "two"
            d 0755 2:2 kept/
            f 0644 0:0 kept/x "x"
            c 0666 0:0 p 1,3
            l 0:0 s -> elsewhere
            f 0644 0:0 tree "now a file"
            "#,
        );
    }

    #[test]
    fn replacing_a_directory_forgets_the_cached_parent() {
        // `a/b` is the cached parent when `a` is replaced; files after must land in the new
        // `a/b`, not in the deleted directory the stale fd would name.
        check(
            &[
                file("a/b/c/f", "1"),
                file("a/b/g", "2"),
                file("a", "file"),
                file("a", "again"),
                dir("a"),
                file("a/b/h", "3"),
            ],
            r#"
            d 0755 0:0 a/
            d 0755 0:0 a/b/ @now
            f 0644 0:0 a/b/h "3"
            "#,
        );
        // With a stale cache these would try to write into the deleted `a/b`.
        check(
            &[file("a/b/g", "2"), file("a", "file"), file("a/b/h", "3")],
            r#"error: layer entry "a/b/h" needs "a" to be a directory"#,
        );
        check(
            &[file("a/b/g", "2"), file(".wh.a", ""), file("a/b/h", "3")],
            r#"error: layer entry "a/b/h" needs "a" to be a directory"#,
        );
        check(
            &[
                file("a/b/g", "2"),
                symlink("a", "{outside}"),
                file("a/b/h", "3"),
            ],
            r#"error: layer entry "a/b/h" passes through symlink "a""#,
        );
    }

    #[test]
    fn file_over_symlink_replaces_the_link_not_its_target() {
        check(
            &[symlink("link", "{outside}/secret"), file("link", "new")],
            r#"f 0644 0:0 link "new""#,
        );
        check(
            &[
                symlink("link", "../outside/secret"),
                hardlink("x", "link"),
                file("x", "new"),
            ],
            r#"
            l 0:0 link -> ../outside/secret
            f 0644 0:0 x "new"
            "#,
        );
    }

    #[test]
    fn directory_over_symlink_replaces_the_link_not_its_target() {
        check(
            &[
                symlink("d", "{outside}"),
                dir("d").mode(0o700).owner(5, 5),
                file("d/f", "f"),
            ],
            r#"
            d 0700 5:5 d/
            f 0644 0:0 d/f "f"
            "#,
        );
    }

    #[test]
    fn dotdot_that_climbs_out_is_rejected() {
        for name in [
            "../x",
            "a/../../x",
            "./../x",
            "/../x",
            "a/b/../../../outside/secret",
        ] {
            check(
                &[file(name, "evil")],
                &format!("error: layer entry {name:?} climbs out of the layer root"),
            );
        }
        check(
            &[dir("..")],
            r#"error: layer entry ".." climbs out of the layer root"#,
        );
    }

    #[test]
    fn dotdot_inside_the_root_is_resolved_by_name() {
        check(
            &[
                symlink("a", "{outside}"),
                file("a/../b", "b"),
                file("x/y/../../c", "c"),
            ],
            r#"
            l 0:0 a -> {outside}
            f 0644 0:0 b "b"
            f 0644 0:0 c "c"
            "#,
        );
    }

    #[test]
    fn absolute_paths_land_inside_the_root() {
        check(
            &[file("/tmp/x", "x"), file("//etc///hosts", "h"), dir("/")],
            r#"
            d 0755 0:0 etc/ @now
            f 0644 0:0 etc/hosts "h"
            d 0755 0:0 tmp/ @now
            f 0644 0:0 tmp/x "x"
            "#,
        );
    }

    #[test]
    fn paths_through_a_symlink_are_rejected() {
        for target in ["{outside}", "../outside", "/"] {
            check(
                &[symlink("evil", target), file("evil/secret", "pwned")],
                r#"error: layer entry "evil/secret" passes through symlink "evil""#,
            );
            check(
                &[symlink("evil", target), dir("evil/sub")],
                r#"error: layer entry "evil/sub" passes through symlink "evil""#,
            );
            check(
                &[symlink("evil", target), symlink("evil/l", "x")],
                r#"error: layer entry "evil/l" passes through symlink "evil""#,
            );
            check(
                &[symlink("evil", target), fifo("evil/p")],
                r#"error: layer entry "evil/p" passes through symlink "evil""#,
            );
        }
        check(
            &[
                dir("a"),
                symlink("a/evil", "{outside}"),
                file("a/evil/sub/f", "x"),
            ],
            r#"error: layer entry "a/evil/sub/f" passes through symlink "a/evil""#,
        );
        // The cached parent must not let a later symlink slip through either.
        check(
            &[
                file("a/b/f", "1"),
                symlink("a/b", "{outside}"),
                file("a/b/secret", "x"),
            ],
            r#"error: layer entry "a/b/secret" passes through symlink "a/b""#,
        );
    }

    #[test]
    fn whiteouts_through_a_symlink_are_rejected() {
        check(
            &[symlink("evil", "{outside}"), file("evil/.wh.secret", "")],
            r#"error: layer entry "evil/.wh.secret" passes through symlink "evil""#,
        );
        check(
            &[symlink("evil", "{outside}"), file("evil/.wh..wh..opq", "")],
            r#"error: layer entry "evil/.wh..wh..opq" passes through symlink "evil""#,
        );
    }

    #[test]
    fn hardlink_that_climbs_out_is_rejected() {
        check(
            &[hardlink("h", "../../outside/secret")],
            r#"error: layer entry "h" is a hardlink to "../../outside/secret", which climbs out"#,
        );
        check(
            &[hardlink("h", "../outside/secret")],
            r#"error: which climbs out of the layer root"#,
        );
    }

    #[test]
    fn hardlink_to_a_host_path_resolves_inside_the_root() {
        let passwd = fs::metadata("/etc/passwd").unwrap();
        let sandbox = check(
            &[hardlink("h", "/etc/passwd")],
            r#"error: layer entry "h" is a hardlink to "/etc/passwd", which is not an earlier file of this layer"#,
        );
        assert!(fs::symlink_metadata(sandbox.root.join("h")).is_err());
        let sandbox = check(
            &[hardlink("h", "{outside}/secret")],
            "error: which is not an earlier file of this layer",
        );
        assert!(fs::symlink_metadata(sandbox.root.join("h")).is_err());
        assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), passwd.nlink());
        check(
            &[
                file("etc/passwd", "root:x:0:0"),
                hardlink("h", "/etc/passwd"),
            ],
            r#"
            d 0755 0:0 etc/ @now
            f 0644 0:0 etc/passwd "root:x:0:0"
            h h => etc/passwd
            "#,
        );
    }

    #[test]
    fn hardlink_through_a_symlinked_directory_is_rejected() {
        check(
            &[symlink("evil", "{outside}"), hardlink("h", "evil/secret")],
            r#"error: layer entry "h" is a hardlink to "evil/secret", which passes through symlink "evil""#,
        );
        check(
            &[symlink("evil", "/etc"), hardlink("h", "evil/passwd")],
            r#"error: passes through symlink "evil""#,
        );
    }

    #[test]
    fn hardlink_to_a_symlink_links_the_symlink_itself() {
        check(
            &[
                symlink("l", "{outside}/secret"),
                hardlink("h", "l").mode(0o600).owner(7, 7),
            ],
            r#"
            l 7:7 h -> {outside}/secret
            h l => h
            "#,
        );
    }

    #[test]
    fn hardlink_to_a_missing_or_directory_target_is_rejected() {
        check(
            &[hardlink("h", "nothing")],
            r#"error: layer entry "h" is a hardlink to "nothing", which is not an earlier file"#,
        );
        check(
            &[dir("d"), hardlink("h", "d")],
            "error: which is not an earlier file",
        );
        check(
            &[file("f", ""), hardlink("h", "f/x")],
            "error: which is not an earlier file",
        );
        check(&[hardlink("h", "/")], "error: which is not an earlier file");
        check(
            &[hardlink("h", "./h")],
            "error: which is not an earlier file",
        );
        check(&[file("h", "x"), hardlink("h", "h")], r#"f 0644 0:0 h "x""#);
    }

    #[test]
    fn a_file_where_a_parent_should_be_is_rejected() {
        check(
            &[file("a", "x"), file("a/b", "y")],
            r#"error: layer entry "a/b" needs "a" to be a directory"#,
        );
    }

    #[test]
    fn v7_directories_and_contiguous_files() {
        check(
            &[
                raw(0, "olddir/").mode(0o755),
                raw(0, "olddir/f"),
                raw(b'7', "contig"),
            ],
            r#"
            f 0644 0:0 contig ""
            d 0755 0:0 olddir/
            f 0644 0:0 olddir/f ""
            "#,
        );
    }

    #[test]
    fn unsupported_and_corrupt_tars_are_errors() {
        check(
            &[raw(b'V', "volume-label")],
            r#"error: layer entry "volume-label" has tar type 'V'"#,
        );
        let sandbox = Sandbox::new();
        let mut tar = build(
            &[file("a", "1234"), file("b", &"x".repeat(2000))],
            &sandbox.outside,
        );
        tar.truncate(1536);
        let err = apply_layer(&sandbox.root, &tar[..]).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"layer entry "b": reading file data from the layer"#),
            "{err}"
        );
        let mut tar = build(&[file("a", "1234")], &sandbox.outside);
        tar[0] ^= 1; // breaks the header checksum
        let err = apply_layer(&sandbox.root, &tar[..]).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        let err = apply_layer(&sandbox.root.join("missing"), &[][..]).unwrap_err();
        assert!(
            err.to_string().contains("cannot open the layer directory"),
            "{err}"
        );
    }

    #[test]
    fn stats_and_the_whole_stream_is_read() {
        struct Counting<'a>(&'a [u8], usize);
        impl Read for Counting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.read(buf)?;
                self.1 += n;
                Ok(n)
            }
        }
        let sandbox = Sandbox::new();
        let mut tar = build(
            &[
                dir("d"),
                file("d/a", "12345"),
                file("d/b", &"x".repeat(1000)),
                hardlink("d/c", "d/a"),
                file("d/.wh.e", ""),
                symlink("d/l", "a"),
            ],
            &sandbox.outside,
        );
        tar.extend_from_slice(&[0; 10240]); // end-of-archive and block padding
        let mut reader = Counting(&tar, 0);
        let stats = apply_layer(&sandbox.root, &mut reader).unwrap();
        assert_eq!(
            stats,
            ApplyStats {
                entries: 6,
                size: 1005
            }
        );
        assert_eq!(reader.1, tar.len());
    }

    #[test]
    fn names_are_normalised_lexically() {
        for (raw, expected) in [
            ("a/b", Some("a/b")),
            ("./a//b/", Some("a/b")),
            ("/a/./b", Some("a/b")),
            ("a/../b", Some("b")),
            ("a/b/../..", Some("")),
            ("./", Some("")),
            ("..", None),
            ("a/../../b", None),
            ("/../b", None),
            ("...", Some("...")),
        ] {
            let mut out = Vec::new();
            let ok = normalise(raw.as_bytes(), &mut out);
            let got = ok.then(|| String::from_utf8(out).unwrap());
            assert_eq!(got.as_deref(), expected, "{raw}");
        }
    }

    #[test]
    fn pax_times() {
        for (text, expected) in [
            ("1700000000", Some((1_700_000_000, 0))),
            ("1.5", Some((1, 500_000_000))),
            ("1.0000000019", Some((1, 1))),
            ("-1.25", Some((-2, 750_000_000))),
            ("-3", Some((-3, 0))),
            ("x", None),
            ("", None),
            ("1.2x", None),
        ] {
            let got = parse_pax_time(text.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
            assert_eq!(got, expected, "{text}");
        }
    }

    /// `BERTH_BENCH_TAR=/tmp/x.tar cargo test --release -p berth-image --lib apply::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_apply_big_tar() {
        let Ok(path) = std::env::var("BERTH_BENCH_TAR") else {
            eprintln!("set BERTH_BENCH_TAR to an uncompressed tar");
            return;
        };
        let tar = fs::read(&path).unwrap();
        for _ in 0..3 {
            let sandbox = Sandbox::new();
            let start = std::time::Instant::now();
            let stats = apply_layer(&sandbox.root, &tar[..]).unwrap();
            let elapsed = start.elapsed();
            eprintln!(
                "{} entries, {} MB of files in {:?}: {:.0} MB/s of tar",
                stats.entries,
                stats.size / 1_000_000,
                elapsed,
                tar.len() as f64 / 1e6 / elapsed.as_secs_f64()
            );
        }
    }
}
