//! `--user` and executables, resolved inside the container's root filesystem.
//!
//! Every path is opened with `openat2(RESOLVE_IN_ROOT)`, so an image whose `/etc/passwd` is a
//! symlink to `/etc/shadow` reads the image's own file (or nothing), never the host's, and no
//! container code runs to find out who a user is.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::Error;

/// A user as the runtime needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Supplementary groups from `/etc/group`.
    pub additional_gids: Vec<u32>,
    /// Home directory (`HOME`).
    pub home: String,
}

fn open_in_root(rootfs: &Path, path: &str, flags: OFlags) -> Option<OwnedFd> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let relative = path.trim_start_matches('/');
    rustix::fs::openat2(
        &root,
        if relative.is_empty() { "." } else { relative },
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()
}

/// Opens a directory of the container (as `O_PATH`) without leaving its root.
pub(crate) fn open_dir_in_root(rootfs: &Path, path: &str) -> Option<OwnedFd> {
    open_in_root(rootfs, path, OFlags::PATH | OFlags::DIRECTORY)
}

/// Reads a file of the container (small files only: passwd, group).
pub fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    let fd = open_in_root(rootfs, path, OFlags::RDONLY)?;
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// Resolves `user[:group]` (names or numbers) the way Docker does.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser, Error> {
    let passwd = read_in_root(rootfs, "/etc/passwd").unwrap_or_default();
    let group = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let found = entries
        .iter()
        .find(|f| f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user));
    let (uid, mut gid, home, name) = match (found, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[5].to_string(),
            Some(f[0].to_string()),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => {
            return Err(Error::Invalid(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )))
        }
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = grp {
        gid = match groups.iter().find(|f| f[0] == g) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                Error::Invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (&name, grp) {
        for f in &groups {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid && !additional_gids.contains(&g) {
                        additional_gids.push(g);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Checks that `program` names an executable file in the container, searching `path` (the
/// container's `PATH`) for a bare name, so a missing command fails with Docker's 127 and an
/// unexecutable one with 126 before the container is made.
pub fn check_executable(rootfs: &Path, program: &str, path: &str, cwd: &str) -> Result<(), Error> {
    let candidates: Vec<String> = if program.contains('/') {
        if program.starts_with('/') {
            vec![program.to_string()]
        } else {
            vec![format!("{}/{program}", cwd.trim_end_matches('/'))]
        }
    } else {
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
            .collect()
    };
    let mut seen_unexecutable = false;
    for c in &candidates {
        let Some(fd) = open_in_root(rootfs, c, OFlags::PATH) else {
            continue;
        };
        let Ok(st) = rustix::fs::fstat(&fd) else {
            continue;
        };
        let is_file =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
        if is_file && st.st_mode & 0o111 != 0 {
            return Ok(());
        }
        seen_unexecutable = true;
        if program.contains('/') {
            break;
        }
    }
    if seen_unexecutable {
        Err(Error::NotExecutable(program.to_string()))
    } else {
        Err(Error::NotFound(program.to_string()))
    }
}

/// Creates `path` (and its parents) inside the root filesystem, as Docker creates a missing
/// WORKDIR; each component is resolved inside the root, never through a link out of it.
pub fn create_dir_in_root(rootfs: &Path, path: &str) -> Result<(), Error> {
    let mut sofar = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        sofar.push('/');
        sofar.push_str(comp);
        if open_in_root(rootfs, &sofar, OFlags::PATH).is_some() {
            continue;
        }
        let parent = sofar.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let parent = if parent.is_empty() { "/" } else { parent };
        let dirfd =
            open_in_root(rootfs, parent, OFlags::PATH | OFlags::DIRECTORY).ok_or_else(|| {
                Error::Invalid(format!(
                    "cannot create working directory {path}: {parent} is not a directory"
                ))
            })?;
        rustix::fs::mkdirat(&dirfd, comp, Mode::from_raw_mode(0o755))
            .map_err(|e| Error::io(format!("creating working directory {path}"))(e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
        )
        .unwrap();
        d
    }

    fn check(spec: &str, expected: &str) {
        let d = rootfs();
        let got = match resolve(d.path(), spec) {
            Ok(u) => format!("{}:{} {:?} {}", u.uid, u.gid, u.additional_gids, u.home),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{spec}");
    }

    #[test]
    fn users_resolve_like_docker() {
        check("", "0:0 [] /root");
        check("app", "1000:1000 [10] /home/app");
        check("1000", "1000:1000 [10] /home/app");
        check("4242", "4242:0 [] /");
        check("app:wheel", "1000:10 [] /home/app");
        check("app:55", "1000:55 [] /home/app");
        check(
            "nosuch",
            "error: unable to find user nosuch: no matching entries in passwd file",
        );
        check(
            "app:nogroup",
            "error: unable to find group nogroup: no matching entries in group file",
        );
    }

    #[test]
    fn passwd_symlinked_out_of_the_root_reads_nothing_of_the_host() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", d.path().join("etc/passwd")).unwrap();
        // Resolved inside the root, /etc/shadow does not exist there.
        check_user_missing(d.path());
    }

    fn check_user_missing(root: &Path) {
        let e = resolve(root, "root").unwrap_err().to_string();
        assert!(e.contains("unable to find user root"), "{e}");
    }

    #[test]
    fn executables_are_found_on_path() {
        use std::os::unix::fs::PermissionsExt;
        let d = rootfs();
        let sh = d.path().join("bin/sh");
        std::fs::write(&sh, "").unwrap();
        std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.path().join("bin/data"), "").unwrap();
        assert!(check_executable(d.path(), "sh", "/usr/bin:/bin", "/").is_ok());
        assert!(check_executable(d.path(), "/bin/sh", "", "/").is_ok());
        assert!(matches!(
            check_executable(d.path(), "nosuch", "/bin", "/"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            check_executable(d.path(), "data", "/bin", "/"),
            Err(Error::NotExecutable(_))
        ));
        assert!(matches!(
            check_executable(d.path(), "/bin", "", "/"),
            Err(Error::NotExecutable(_))
        ));
    }
}
