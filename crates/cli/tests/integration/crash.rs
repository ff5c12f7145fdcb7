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
