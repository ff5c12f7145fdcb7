//! Hostile layers: nothing may be created, changed or deleted outside the snapshot root.

use std::path::Path;

use crate::common::{registries, sha256_file, Berth};

fn pull_hostile(suffix: &str) -> (Berth, crate::common::Run) {
    let regs = registries();
    let b = Berth::bare();
    let r = format!("{}/test/hostile:{suffix}", regs.plain);
    let out = b.run(&["pull", &r]);
    (b, out)
}

fn assert_host_untouched(passwd_before: &str) {
    for f in [
        "/tmp/berth-escape-dotdot",
        "/tmp/berth-escape-abs",
        "/tmp/berth-escape-symlink",
        "/tmp/berth-escape-chain",
        "/tmp/berth-escape-file",
    ] {
        assert!(!Path::new(f).exists(), "{f} was created on the host");
    }
    assert_eq!(
        sha256_file(Path::new("/etc/passwd")),
        passwd_before,
        "/etc/passwd changed"
    );
}

#[test]
fn hostile_layers_never_escape() {
    let passwd = sha256_file(Path::new("/etc/passwd"));
    let victim = Path::new("/tmp/berth-victim");
    std::fs::write(victim, "keep me").unwrap();

    let (_, out) = pull_hostile("dotdot");
    out.fails(1, &["../../../../tmp/berth-escape-dotdot"]);
    assert_host_untouched(&passwd);

    // Absolute paths are taken relative to the layer root, as Docker does.
    let (b, out) = pull_hostile("abs");
    out.ok();
    let r = format!("{}/test/hostile:abs", registries().plain);
    assert!(b.lowerdirs(&r)[0].join("tmp/berth-escape-abs").is_file());
    assert_host_untouched(&passwd);

    let (_, out) = pull_hostile("symlink-dir");
    out.fails(1, &["evil/berth-escape-symlink", "symlink"]);
    assert_host_untouched(&passwd);

    // Through a symlink of an earlier layer: each layer unpacks into its own directory, so
    // `evil` is a plain directory in layer 2's snapshot and the host is not touched.
    let (b, out) = pull_hostile("symlink-chain");
    out.ok();
    let r = format!("{}/test/hostile:symlink-chain", registries().plain);
    let lower = b.lowerdirs(&r);
    assert!(lower[0].join("evil/berth-escape-chain").is_file());
    assert!(std::fs::symlink_metadata(lower[1].join("evil"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_host_untouched(&passwd);

    let (b, out) = pull_hostile("hardlink");
    out.fails(1, &["passwd-link"]);
    assert_host_untouched(&passwd);
    assert_eq!(b.count("snapshots"), 0);

    let (_, out) = pull_hostile("whiteout");
    out.ok();
    assert_eq!(std::fs::read_to_string(victim).unwrap(), "keep me");
    assert_host_untouched(&passwd);

    let (b, out) = pull_hostile("symlink-then-write-via-link");
    out.ok();
    let r = format!(
        "{}/test/hostile:symlink-then-write-via-link",
        registries().plain
    );
    let evil = b.lowerdirs(&r)[0].join("evil");
    assert!(
        std::fs::symlink_metadata(&evil).unwrap().is_file(),
        "the file replaced the link"
    );
    assert_host_untouched(&passwd);
    std::fs::remove_file(victim).unwrap();
}
