//! `save`, `load`, `import`: archives other tools read and write.

use std::process::Command;

use crate::common::{registries, Berth};

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn save_is_read_by_skopeo_and_loads_back() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let id = b.inspect("busybox")["Id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let docker_tar = dir.path().join("busybox.tar");
    b.run(&["save", "-o", docker_tar.to_str().unwrap(), "busybox"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", docker_tar.display()),
    ]))
    .unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    let oci_tar = dir.path().join("busybox-oci.tar");
    b.run(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci_tar.to_str().unwrap(),
        "busybox",
    ])
    .ok();
    skopeo(&["inspect", &format!("oci-archive:{}", oci_tar.display())]);

    for archive in [&docker_tar, &oci_tar] {
        let fresh = Berth::bare();
        let out = fresh.run(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(
            out.ok(),
            "Loaded image: busybox:latest\n",
            "{}",
            archive.display()
        );
        assert_eq!(fresh.inspect("busybox")["Id"], id.as_str());
        assert!(fresh.lowerdirs("busybox")[0].join("bin/busybox").is_file());
    }
    // From stdin, as `docker save | docker load` does.
    let fresh = Berth::bare();
    let bytes = std::fs::read(&docker_tar).unwrap();
    fresh.run_with_input(&["load"], &bytes).ok();
    assert_eq!(fresh.inspect("busybox:latest")["Id"], id.as_str());
}

#[test]
fn load_archives_made_by_other_tools() {
    let regs = registries();
    let dir = tempfile::tempdir().unwrap();
    let src = format!("docker://{}/test/layers:latest", regs.plain);
    // docker-archive as `docker save` writes it (uncompressed layers), and an OCI archive as
    // `podman save --format oci-archive` writes it.
    let docker_tar = dir.path().join("d.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &src,
        &format!("docker-archive:{}:layers:v1", docker_tar.display()),
    ]);
    let oci_tar = dir.path().join("o.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &src,
        &format!(
            "oci-archive:{}:docker.io/library/layers:v2",
            oci_tar.display()
        ),
    ]);
    let b = Berth::bare();
    assert_eq!(
        b.run(&["load", "-i", docker_tar.to_str().unwrap()]).ok(),
        "Loaded image: layers:v1\n"
    );
    assert_eq!(
        b.run(&["load", "-i", oci_tar.to_str().unwrap()]).ok(),
        "Loaded image: layers:v2\n"
    );
    assert_eq!(b.inspect("layers:v1")["Id"], b.inspect("layers:v2")["Id"]);
    let lower = b.lowerdirs("layers:v1");
    assert_eq!(lower.len(), 3);
    assert!(lower[0].join("data/sub/new.txt").is_file());
}

#[test]
fn bad_archives_are_refused() {
    let b = Berth::bare();
    b.run_with_input(&["load"], b"this is not a tar archive at all, just some text padding it out..............................................................................................................................................................................................................................................................................................................................................................................................................................................................")
        .fails(1, &["archive"]);
    let dir = tempfile::tempdir().unwrap();
    let empty_tar = dir.path().join("empty.tar");
    assert!(Command::new("tar")
        .args(["-cf"])
        .arg(&empty_tar)
        .args(["-T", "/dev/null"])
        .status()
        .unwrap()
        .success());
    b.run(&["load", "-i", empty_tar.to_str().unwrap()])
        .fails(1, &["neither manifest.json nor index.json"]);
    b.run(&["load", "-i", "/nonexistent.tar"])
        .fails(1, &["/nonexistent.tar"]);
    b.run(&[
        "save",
        "-o",
        dir.path().join("x.tar").to_str().unwrap(),
        "nosuch",
    ])
    .fails(1, &["No such image: nosuch:latest"]);
    assert!(
        !dir.path().join("x.tar").exists(),
        "a failed save leaves no file"
    );
}

#[test]
fn import_a_rootfs_tarball() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let fs = b.lowerdirs("busybox")[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("rootfs.tar.gz");
    crate::common::tar_dir(&fs, &tarball);
    let out = b.run(&[
        "import",
        "--change",
        r#"CMD ["sh", "-c", "echo hi"]"#,
        "-c",
        "ENV A=1",
        tarball.to_str().unwrap(),
        "imported:v1",
    ]);
    let id = out.ok().trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let v = b.inspect("imported:v1");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(
        v["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "echo hi"])
    );
    assert_eq!(v["Config"]["Env"], serde_json::json!(["A=1"]));
    assert!(b.lowerdirs("imported:v1")[0].join("bin/busybox").is_file());
    let history = b.run(&["history", "--format", "{{.Comment}}", "imported:v1"]);
    assert_eq!(
        history.ok().trim(),
        format!("Imported from {}", tarball.display())
    );
    // From stdin.
    let bytes = std::fs::read(&tarball).unwrap();
    let out = b.run_with_input(&["import", "-", "imported:v2"], &bytes);
    out.ok();
    assert!(b.lowerdirs("imported:v2")[0].join("bin/busybox").is_file());
    b.run(&["import", "--change", "RUN ls", tarball.to_str().unwrap()])
        .fails(1, &["RUN is not a valid change command"]);
    b.run(&["import", "/nonexistent.tar"])
        .fails(1, &["/nonexistent.tar"]);
}

/// Runs podman with a store of its own.
fn podman(root: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("podman")
        .arg("--root")
        .arg(root.join("root"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args(["--storage-driver", "vfs", "--events-backend", "none"])
        .args(args)
        .output()
        .expect("podman (Debian package podman)");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn podman_reads_our_archives_and_we_read_podmans() {
    let regs = registries();
    let dir = tempfile::tempdir().unwrap();
    let src = format!("{}/test/layers:latest", regs.plain);
    podman(dir.path(), &["pull", "-q", "--tls-verify=false", &src]);
    let podman_id = podman(
        dir.path(),
        &["image", "inspect", "--format", "{{.Id}}", &src],
    )
    .trim()
    .to_string();
    for (format, file) in [
        ("docker-archive", "p-docker.tar"),
        ("oci-archive", "p-oci.tar"),
    ] {
        let path = dir.path().join(file);
        podman(
            dir.path(),
            &[
                "save",
                "--format",
                format,
                "-o",
                path.to_str().unwrap(),
                &src,
            ],
        );
        let b = Berth::bare();
        let out = b.run(&["load", "-i", path.to_str().unwrap()]);
        assert!(
            out.ok().starts_with("Loaded image"),
            "{format}: {}",
            out.stdout
        );
        let id = b
            .run(&["images", "-q", "--no-trunc"])
            .ok()
            .trim()
            .to_string();
        assert_eq!(id, format!("sha256:{podman_id}"), "{format}");
        assert_eq!(b.lowerdirs(&id).len(), 3);
    }
    // And the other way: podman loads what berth saves.
    let b = Berth::bare();
    b.run(&["pull", "-q", &src]).ok();
    let saved = dir.path().join("berth.tar");
    b.run(&["save", "-o", saved.to_str().unwrap(), &src]).ok();
    let fresh = tempfile::tempdir().unwrap();
    let out = podman(fresh.path(), &["load", "-i", saved.to_str().unwrap()]);
    assert!(out.contains(&src), "{out}");
    let loaded = podman(
        fresh.path(),
        &["image", "inspect", "--format", "{{.Id}}", &src],
    );
    assert_eq!(loaded.trim(), podman_id);
}
