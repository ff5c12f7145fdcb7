//! Warming the kernel's cgroup migration lock while the caller prepares a container.
//!
//! Moving a process into a cgroup (the runtime writes the container's init PID to
//! `cgroup.procs`) takes the kernel's global `cgroup_threadgroup_rwsem` for writing. When
//! that lock has been idle, taking it waits for a full RCU grace period: 5 to 40 ms on this
//! kind of machine, the largest single cost of starting a container on cgroup v1, which has
//! no `CLONE_INTO_CGROUP`. Once a writer has passed, the lock stays in its fast mode for
//! another grace period. So the caller starts a no-op migration (this process into the
//! cgroup it is already in) on a thread *before* it spends its own milliseconds mounting the
//! root filesystem and writing the spec: the grace period runs alongside that work instead
//! of after it, and the runtime's own migration finds the lock warm.

use std::io::Write;

/// Starts the no-op migration on a background thread and returns at once. Failures are
/// ignored: this only saves time, and the runtime's own write reports real problems.
pub fn warm_cgroup_lock() {
    let Some(procs) = own_cgroup_procs() else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("cgroup-warm".into())
        .spawn(move || {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&procs) {
                let _ = f.write_all(std::process::id().to_string().as_bytes());
            }
        });
}

/// The `cgroup.procs` file of the cgroup this process is in, in a v1 hierarchy if there is
/// one (any hierarchy takes the same lock), else in the v2 one.
fn own_cgroup_procs() -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    procs_path(&text, |p| p.exists())
}

fn procs_path(
    proc_self_cgroup: &str,
    exists: impl Fn(&std::path::Path) -> bool,
) -> Option<std::path::PathBuf> {
    let mut v2 = None;
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            v2 = Some(std::path::Path::new("/sys/fs/cgroup").join(path));
            continue;
        }
        // A named hierarchy (name=systemd) has no directory named after a controller.
        let Some(controller) = controllers.split(',').find(|c| !c.starts_with("name=")) else {
            continue;
        };
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(path);
        if exists(&dir) {
            return Some(dir.join("cgroup.procs"));
        }
    }
    let v2 = v2?;
    // On a hybrid host the v2 hierarchy lives at /sys/fs/cgroup/unified.
    if exists(&v2.join("cgroup.procs")) {
        return Some(v2.join("cgroup.procs"));
    }
    let hybrid = std::path::Path::new("/sys/fs/cgroup/unified").join(
        v2.strip_prefix("/sys/fs/cgroup")
            .unwrap_or(std::path::Path::new("")),
    );
    exists(&hybrid.join("cgroup.procs")).then(|| hybrid.join("cgroup.procs"))
}

#[cfg(test)]
mod tests {
    use super::procs_path;
    use std::path::{Path, PathBuf};

    #[test]
    fn picks_a_v1_controller_then_v2() {
        let hybrid = "10:pids:/user.slice\n1:name=systemd:/init.scope\n0::/init.scope\n";
        assert_eq!(
            procs_path(hybrid, |_| true),
            Some(PathBuf::from("/sys/fs/cgroup/pids/user.slice/cgroup.procs"))
        );
        let v2 = "0::/user.slice/session-1.scope\n";
        assert_eq!(
            procs_path(v2, |p| p.starts_with("/sys/fs/cgroup/user.slice")),
            Some(PathBuf::from(
                "/sys/fs/cgroup/user.slice/session-1.scope/cgroup.procs"
            ))
        );
        let only_unified = "1:name=systemd:/\n0::/\n";
        assert_eq!(
            procs_path(only_unified, |p| p
                == Path::new("/sys/fs/cgroup/unified/cgroup.procs")),
            Some(PathBuf::from("/sys/fs/cgroup/unified/cgroup.procs"))
        );
        assert_eq!(procs_path("garbage", |_| true), None);
    }
}
