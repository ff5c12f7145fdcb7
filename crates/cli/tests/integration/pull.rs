//! `pull`: mirrors, references, platforms, formats, layer contents.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::common::{registries, sha256_file, Berth};

#[test]
fn pull_through_the_docker_io_mirror() {
    let b = Berth::new();
    let out = b.run(&["pull", "busybox"]);
    let stdout = out.ok();
    assert!(
        stdout.starts_with("Using default tag: latest\nlatest: Pulling from library/busybox\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Pull complete"), "{stdout}");
    assert!(
        stdout.contains("Status: Downloaded newer image for busybox:latest"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("docker.io/library/busybox:latest"),
        "{stdout}"
    );
    let images = b.run(&["images"]);
    let lines: Vec<&str> = images.ok().lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("busybox      latest    "),
        "{}",
        lines[1]
    );
    // The layer is unpacked, ready as an overlay lower dir.
    let lower = b.lowerdirs("busybox");
    assert_eq!(lower.len(), 1);
    assert!(lower[0].join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(lower[0].join("bin/sh"))
            .unwrap()
            .to_str()
            .unwrap(),
        "busybox"
    );
    // A second pull finds everything in place.
    let again = b.run(&["pull", "busybox:latest"]);
    assert!(again.ok().contains("Already exists"), "{}", again.stdout);
    assert!(again
        .stdout
        .contains("Status: Image is up to date for busybox:latest"));
    // -q prints only the reference.
    assert_eq!(
        b.run(&["pull", "-q", "busybox"]).ok(),
        "docker.io/library/busybox:latest\n"
    );
}

#[test]
fn pull_python_stand_in_carries_python_and_the_host_ca_bundle() {
    let b = Berth::new();
    b.run(&["pull", "-q", "python:3.8-slim-buster"]).ok();
    let lower = b.lowerdirs("python:3.8-slim-buster");
    let fs = &lower[0];
    assert!(fs.join("usr/bin/python3").exists());
    let bundle = "etc/ssl/certs/ca-certificates.crt";
    assert_eq!(
        sha256_file(&fs.join(bundle)),
        sha256_file(&std::path::Path::new("/").join(bundle))
    );
    let env = b.inspect("python:3.8-slim-buster")["Config"]["Env"].to_string();
    assert!(env.contains("PIP_BREAK_SYSTEM_PACKAGES=1"), "{env}");
    let images = b.run(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"]);
    assert!(
        images.ok().starts_with("python:3.8-slim-buster 2"),
        "{}",
        images.stdout
    );
}

#[test]
fn pull_every_layer_format_from_a_loopback_registry() {
    let regs = registries();
    let b = Berth::bare();
    for tag in ["zstd", "uncompressed", "v2s2"] {
        let r = format!("{}/test/busybox:{tag}", regs.plain);
        b.run(&["pull", &r]).ok();
        assert!(b.lowerdirs(&r)[0].join("bin/busybox").is_file(), "{tag}");
    }
    // Same rootfs, so the same snapshot, whatever the compression.
    let l = |t: &str| b.lowerdirs(&format!("{}/test/busybox:{t}", regs.plain));
    assert_eq!(l("zstd"), l("uncompressed"));
    assert_eq!(b.count("snapshots"), 1);
}

#[test]
fn pull_by_digest_pins_the_manifest() {
    let regs = registries();
    let b = Berth::bare();
    let r = format!("{}/library/busybox", regs.plain);
    let out = b.run(&["pull", &r]);
    let digest = out
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap()
        .to_string();
    let pinned = format!("{r}@{digest}");
    let out = b.run(&["pull", &pinned]);
    assert!(out.ok().trim_end().ends_with(&pinned), "{}", out.stdout);
    let digests = b.run(&["images", "--digests"]);
    assert!(digests.ok().contains(&digest), "{}", digests.stdout);
    assert!(
        digests.stdout.starts_with("REPOSITORY"),
        "{}",
        digests.stdout
    );
    // A digest the registry does not have.
    let missing = format!("{r}@sha256:{}", "0".repeat(64));
    b.run(&["pull", &missing]).fails(1, &["not found"]);
}

#[test]
fn platform_selection_from_an_index() {
    let regs = registries();
    let r = format!("{}/library/busybox:multi", regs.plain);
    let b = Berth::bare();
    b.run(&["pull", &r]).ok();
    assert_eq!(
        std::fs::read_to_string(b.lowerdirs(&r)[0].join("platform")).unwrap(),
        "amd64\n"
    );
    assert_eq!(b.inspect(&r)["Architecture"], "amd64");
    let b = Berth::bare();
    b.run(&["pull", "--platform", "linux/arm64/v8", &r]).ok();
    assert_eq!(
        std::fs::read_to_string(b.lowerdirs(&r)[0].join("platform")).unwrap(),
        "arm64\n"
    );
    assert_eq!(b.inspect(&r)["Architecture"], "arm64");
    b.run(&["pull", "--platform", "linux/s390x", &r]).fails(
        1,
        &[
            "no matching manifest for linux/s390x",
            "linux/amd64",
            "linux/arm64",
        ],
    );
    b.run(&["pull", "--platform", "linux", &r])
        .fails(1, &["invalid platform"]);
}

#[test]
fn layers_keep_whiteouts_links_owners_modes_and_xattrs() {
    let regs = registries();
    let b = Berth::bare();
    let r = format!("{}/test/layers:latest", regs.plain);
    b.run(&["pull", &r]).ok();
    let lower = b.lowerdirs(&r);
    assert_eq!(lower.len(), 3);
    let (top, mid) = (&lower[0], &lower[1]);
    // Layer 3: b.txt deleted (overlay whiteout: char device 0:0), sub made opaque.
    let wh = std::fs::symlink_metadata(top.join("data/b.txt")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    let mut opaque = [0u8; 4];
    let n = getxattr(&top.join("data/sub"), "trusted.overlay.opaque", &mut opaque);
    assert_eq!(&opaque[..n], b"y");
    assert!(top.join("data/sub/new.txt").is_file());
    // Layer 2: hardlink, symlink, owner and mode, xattr, fifo.
    let a = std::fs::metadata(mid.join("data/a.txt")).unwrap();
    let hard = std::fs::metadata(mid.join("data/hard")).unwrap();
    assert_eq!(a.ino(), hard.ino());
    assert_eq!(
        std::fs::read_link(mid.join("data/link")).unwrap().to_str(),
        Some("a.txt")
    );
    let owned = std::fs::metadata(mid.join("data/owned.txt")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
    assert_eq!(owned.permissions().mode() & 0o7777, 0o640);
    let mut v = [0u8; 8];
    let n = getxattr(&mid.join("data/xattr.txt"), "user.berth", &mut v);
    assert_eq!(&v[..n], b"yes");
    assert!(std::fs::symlink_metadata(mid.join("data/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
}

fn getxattr(path: &std::path::Path, name: &str, buf: &mut [u8]) -> usize {
    let out = std::process::Command::new("getfattr")
        .args(["--only-values", "-h", "-n", name])
        .arg(path)
        .output()
        .expect("getfattr (package attr)");
    assert!(
        out.status.success(),
        "getfattr {name} on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let n = out.stdout.len().min(buf.len());
    buf[..n].copy_from_slice(&out.stdout[..n]);
    n
}

#[test]
fn progress_bars_on_a_terminal() {
    let b = Berth::new();
    // Big enough that the bars get drawn before the pull ends.
    let r = "python:3.8-slim-buster";
    // `script` gives berth a pseudo-terminal, as a user's shell would.
    let berth = env!("CARGO_BIN_EXE_berth");
    let line = format!("{berth} pull {r}");
    let out = b
        .cmd(&[])
        .get_envs()
        .fold(std::process::Command::new("script"), |mut c, (k, v)| {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
            c
        })
        .args(["-qec", &line, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Pull complete"), "{text}");
    assert!(
        text.contains("\u{1b}["),
        "a terminal gets redrawn bars: {text:?}"
    );
    // Without a terminal: plain lines, no escape codes.
    let plain = b.run(&["pull", "busybox"]);
    assert!(!plain.ok().contains('\u{1b}'), "{}", plain.stdout);
}
