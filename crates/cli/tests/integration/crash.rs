//! Crash safety: `kill -9` of a pull at any point leaves a store the next pull completes;
//! concurrent pulls of one image both succeed and share blobs.

use std::time::Duration;

use crate::common::Berth;

#[test]
fn killed_pulls_leave_a_usable_store() {
    let b = Berth::new();
    for delay_ms in [50, 300, 700, 1200, 2000] {
        let mut child = b
            .cmd(&["pull", "-q", "python:3.8-slim-buster"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Between kills the store is always consistent: either the image is complete or absent.
        let listed = b.run(&["images", "-q"]);
        listed.ok();
    }
    b.run(&["pull", "-q", "python:3.8-slim-buster"]).ok();
    assert_eq!(
        b.run(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .ok(),
        "python:3.8-slim-buster\n"
    );
    let fs = &b.lowerdirs("python:3.8-slim-buster")[0];
    assert!(fs.join("usr/bin/python3").exists());
    // Nothing half-made is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(b.root().join("snapshots"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn concurrent_pulls_share_blobs() {
    let b = Berth::new();
    let spawn = || {
        b.cmd(&["pull", "-q", "python:3.8-slim-buster"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (x, y) = (spawn(), spawn());
    for out in [x.wait_with_output().unwrap(), y.wait_with_output().unwrap()] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(b.run(&["images", "-q"]).ok().lines().count(), 1);
    // One layer, one config, one manifest: shared, not duplicated.
    assert_eq!(b.count("blobs/sha256"), 3);
    assert_eq!(b.count("snapshots"), 1);
}

/// `kill -9` of a container's monitor at any step of its start, or of the CLI, leaves a
/// container that `ps -a` lists and `rm -f` removes with every mount, namespace and veth.
#[test]
fn killed_monitors_and_clis_leave_nothing_rm_cannot_clean() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let exe = env!("CARGO_BIN_EXE_berth");
    let mut ids = Vec::new();
    for (i, delay_ms) in [0u64, 2, 5, 10, 20, 40, 80].iter().enumerate() {
        let name = format!("victim{i}");
        let mut cli = b
            .cmd(&[
                "run", "-d", "--name", &name, "-p", "0:80", "busybox", "sleep", "300",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay_ms));
        // The monitor of this store (matched by its command line), then the CLI.
        let root = b.root();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.starts_with(exe)
                && cmdline.contains("container-monitor")
                && cmdline.contains(root.to_str().unwrap())
            {
                let pid = entry.file_name().to_string_lossy().into_owned();
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid])
                    .status();
            }
        }
        let _ = cli.kill();
        let _ = cli.wait();
        // Whatever step it died at, the container (if it was made) is listed and removable.
        let listed = b.run(&["ps", "-a", "--format", "{{.Names}}"]);
        if listed.ok().contains(&name) {
            ids.push(
                b.run(&["inspect", "--format", "{{.Id}}", &name])
                    .ok()
                    .trim()
                    .to_string(),
            );
            b.run(&["rm", "-f", &name]).ok();
        }
    }
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
    // A folder whose record a power loss tore (or a create killed before writing it) is
    // listed by nothing; prune removes it once it is old enough not to be a create under way.
    let torn = b.root().join("containers").join("ab".repeat(32));
    std::fs::create_dir_all(torn.join("upper/etc")).unwrap();
    std::fs::write(torn.join("container.json"), "").unwrap();
    let young = b.root().join("containers").join("cd".repeat(32));
    std::fs::create_dir_all(&young).unwrap();
    let status = std::process::Command::new("touch")
        .args(["-d", "2 minutes ago"])
        .arg(&torn)
        .status()
        .unwrap();
    assert!(status.success());
    b.run(&["container", "prune", "-f"]).ok();
    assert!(!torn.exists(), "a folder with a torn record was left");
    assert!(young.exists(), "a create under way lost its folder");
    std::fs::remove_dir(&young).unwrap();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(b.root().to_str().unwrap()),
        "a root filesystem stayed mounted"
    );
    let containers = std::fs::read_dir(b.root().join("containers"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(containers, 0, "container directories left");
    let leases =
        std::fs::read_to_string("/run/berth/networks/bridge/ipam.json").unwrap_or_default();
    for id in &ids {
        assert!(!leases.contains(id.as_str()), "the lease of {id} was left");
        let ns = format!("/run/netns/berth-{}", &id[..12]);
        assert!(!std::path::Path::new(&ns).exists(), "{ns} was left");
    }
    assert_eq!(b.run(&["system", "prune", "-f"]).code, 0);
}

/// A `--rm` container's filesystem is thrown away, so its overlay is `volatile` (never synced,
/// so neither its writes nor its unmount flush the host's disk); a kept container's is not.
#[test]
fn throwaway_filesystems_are_never_synced() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let options = |id: &str| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.contains(id) && l.contains(" overlay "))
            .map(String::from)
    };
    let kept = b
        .run(&["run", "-d", "--network", "none", "busybox", "sleep", "300"])
        .ok()
        .trim()
        .to_string();
    let line = options(&kept).expect("the kept container's root is mounted");
    assert!(!line.contains("volatile"), "{line}");
    let thrown = b
        .run(&[
            "run",
            "-d",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sleep",
            "300",
        ])
        .ok()
        .trim()
        .to_string();
    let line = options(&thrown).expect("the --rm container's root is mounted");
    assert!(line.contains("volatile"), "{line}");
    b.run(&["rm", "-f", &kept, &thrown]).ok();
}

/// The binary is linked without PIE (see crates/cli/build.rs): each resident monitor then
/// shares its relocated data with the others instead of holding a private copy.
#[test]
fn berth_is_a_position_dependent_executable() {
    let header = std::fs::read(env!("CARGO_BIN_EXE_berth")).unwrap();
    // ELF e_type at offset 16: 2 = ET_EXEC, 3 = ET_DYN (a PIE).
    assert_eq!(u16::from_le_bytes([header[16], header[17]]), 2);
}
