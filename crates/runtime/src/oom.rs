//! Whether the kernel's OOM killer struck inside a container: Docker's `State.OOMKilled`.
//!
//! Read from the container's memory cgroup when its init has exited and before the cgroup
//! is deleted; the counters cover the cgroup and everything below it, so a child killed
//! while init survived counts too, as Docker's event-based flag does.

use std::path::{Path, PathBuf};

/// The OOM kills the kernel counted in cgroup `cgroups_path` (the spec's `cgroupsPath`,
/// e.g. `/berth/<id>`): `memory.events` on cgroup v2, `memory.oom_control` on v1 (Linux
/// 4.13+ counts kills there). 0 when neither file can be read.
pub(crate) fn oom_kills(cgroups_path: &Path) -> u64 {
    candidates(Path::new("/sys/fs/cgroup"), cgroups_path)
        .into_iter()
        .find_map(|file| std::fs::read_to_string(file).ok())
        .and_then(|text| field(&text, "oom_kill"))
        .unwrap_or(0)
}

/// The files that may hold the count, in order: the unified hierarchy mounted at `base`
/// (a v2 host), the v1 memory hierarchy, then the v2 hierarchy of a hybrid host.
fn candidates(base: &Path, cgroups_path: &Path) -> Vec<PathBuf> {
    let rel = cgroups_path.strip_prefix("/").unwrap_or(cgroups_path);
    if base.join("cgroup.controllers").exists() {
        return vec![base.join(rel).join("memory.events")];
    }
    vec![
        base.join("memory").join(rel).join("memory.oom_control"),
        base.join("unified").join(rel).join("memory.events"),
    ]
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_v2_events_and_v1_oom_control() {
        let v2 = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(field(v2, "oom_kill"), Some(2));
        assert_eq!(field(v2, "oom"), Some(3));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        assert_eq!(field(v1, "oom_kill"), Some(1));
        assert_eq!(field("under_oom 0\n", "oom_kill"), None);
    }

    #[test]
    fn a_v2_host_reads_memory_events_and_a_v1_host_the_memory_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        let path = Path::new("/berth/abc");
        assert_eq!(
            candidates(dir.path(), path),
            vec![
                dir.path().join("memory/berth/abc/memory.oom_control"),
                dir.path().join("unified/berth/abc/memory.events"),
            ]
        );
        std::fs::write(dir.path().join("cgroup.controllers"), "memory pids\n").unwrap();
        assert_eq!(
            candidates(dir.path(), path),
            vec![dir.path().join("berth/abc/memory.events")]
        );
    }
}
