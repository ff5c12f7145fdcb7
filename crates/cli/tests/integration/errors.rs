//! Bad input: each a one-line error naming the thing and the cause, exit 1, nothing stored.

use std::process::Command;

use crate::common::{registries, Berth};

#[test]
fn unknown_repository_and_tag() {
    let regs = registries();
    let b = Berth::bare();
    let r = format!("{}/library/busybox:nosuchtag", regs.plain);
    let e = b
        .run(&["pull", &r])
        .fails(1, &["manifest for", "nosuchtag", "not found"])
        .to_string();
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    let r = format!("{}/nobody/nothing", regs.plain);
    b.run(&["pull", &r])
        .fails(1, &["nobody/nothing", "not found"]);
    assert_eq!(b.run(&["images", "-q"]).ok(), "");
}

#[test]
fn unreachable_registry() {
    let b = Berth::bare();
    b.run(&["pull", "127.0.0.1:1/library/busybox"]).fails(
        1,
        &["cannot reach registry 127.0.0.1:1", "onnection refused"],
    );
}

#[test]
fn invalid_references() {
    let b = Berth::bare();
    b.run(&["pull", "Busybox"])
        .fails(1, &["invalid reference format", "must be lowercase"]);
    b.run(&["pull", "bad//name"])
        .fails(1, &["invalid reference format"]);
    b.run(&["pull", "busybox@sha256:abc"])
        .fails(1, &["invalid reference format", "digest"]);
    b.run(&["tag", "busybox", "x:"])
        .fails(1, &["invalid reference format"]);
}

#[test]
fn invalid_daemon_json_names_the_file() {
    let b = Berth::bare();
    b.write_config("{ not json");
    b.run(&["pull", "busybox"])
        .fails(1, &["daemon.json", "invalid daemon.json"]);
    b.write_config(r#"{"registry-mirrors": ["127.0.0.1:5000"]}"#);
    b.run(&["pull", "busybox"])
        .fails(1, &["must start with http://"]);
}

/// Uploads a blob to a registry with curl; returns its digest.
fn upload(registry: &str, repo: &str, bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("blob");
    std::fs::write(&f, bytes).unwrap();
    let out = Command::new("curl")
        .args(["-sSf", "-X", "POST", "-D", "-", "-o", "/dev/null"])
        .arg(format!("http://{registry}/v2/{repo}/blobs/uploads/"))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout);
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .unwrap()
        .trim()
        .to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = if location.starts_with("http") {
        location
    } else {
        format!("http://{registry}{location}")
    };
    let st = Command::new("curl")
        .args([
            "-sSf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", f.display()))
        .arg(format!("{url}{sep}digest={digest}"))
        .status()
        .unwrap();
    assert!(st.success());
    digest
}

fn put_manifest(registry: &str, repo: &str, tag: &str, manifest: &str) {
    let st = Command::new("curl")
        .args([
            "-sSf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            manifest,
        ])
        .arg(format!("http://{registry}/v2/{repo}/manifests/{tag}"))
        .status()
        .unwrap();
    assert!(st.success(), "registry refused the manifest");
}

/// An OCI manifest with one config and one 14-byte plain layer.
fn oci_manifest(config: &str, config_size: usize, layer: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":14}}]}}"#
    )
}

#[test]
fn malformed_manifest_and_config() {
    let regs = registries();
    let reg = &regs.plain;
    // A config that is not an image config.
    let bad_config = upload(reg, "test/malformed", br#"{"hello": "world"}"#);
    let layer = upload(reg, "test/malformed", b"not even a tar");
    let m = oci_manifest(&bad_config, 18, &layer);
    put_manifest(reg, "test/malformed", "badconfig", &m);
    let b = Berth::bare();
    b.run(&["pull", &format!("{reg}/test/malformed:badconfig")])
        .fails(
            1,
            &[
                "malformed manifest for",
                "test/malformed:badconfig",
                "image config",
            ],
        );
    // A valid config whose diff_ids do not match the layer count.
    let cfg = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config = upload(reg, "test/malformed", cfg);
    let m = oci_manifest(&config, cfg.len(), &layer);
    put_manifest(reg, "test/malformed", "mismatch", &m);
    b.run(&["pull", &format!("{reg}/test/malformed:mismatch")])
        .fails(1, &["1 layers but the config has 0 diff_ids"]);
    // A "layer" that is no tar: the diff ID cannot match.
    let diff = format!("sha256:{}", "1".repeat(64));
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    );
    let config = upload(reg, "test/malformed", cfg.as_bytes());
    let m = oci_manifest(&config, cfg.len(), &layer);
    put_manifest(reg, "test/malformed", "notar", &m);
    b.run(&["pull", &format!("{reg}/test/malformed:notar")])
        .fails(1, &[&layer[..19]]);
    assert_eq!(b.run(&["images", "-q"]).ok(), "");
    assert_eq!(b.count("snapshots"), 0, "no half-unpacked snapshot is left");
}

#[test]
fn corrupted_blob_in_the_registry_is_refused() {
    let regs = registries();
    // A unique image, so corrupting its layer touches no other test.
    let b = Berth::bare();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let unique = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    std::fs::write(rootfs.join("unique.txt"), unique.repeat(1000)).unwrap();
    let tarball = dir.path().join("rootfs.tar");
    crate::common::tar_dir(&rootfs, &tarball);
    let target = format!("{}/test/corrupt:latest", regs.plain);
    b.run(&["import", tarball.to_str().unwrap(), &target]).ok();
    b.run(&["push", &target]).ok();
    let layer = b.inspect(&target);
    let id = layer["Id"].as_str().unwrap().to_string();
    // Find the layer blob: the one in the manifest that is not the config.
    let manifest_digest = b
        .run(&["images", "--digests", "--format", "{{.Digest}}", &target])
        .ok()
        .trim()
        .to_string();
    let storage = &regs.storage["plain"];
    let blob_path = |d: &str| {
        let hex = d.trim_start_matches("sha256:");
        storage.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(&manifest_digest)).unwrap()).unwrap();
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(layer_digest, id);
    let path = blob_path(&layer_digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let fresh = Berth::bare();
    let e = fresh
        .run(&["pull", &target])
        .fails(1, &[&layer_digest, "failed verification"])
        .to_string();
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert_eq!(fresh.run(&["images", "-q"]).ok(), "");
    assert_eq!(
        fresh.count("blobs/sha256"),
        0,
        "the corrupt blob was not kept"
    );
}
