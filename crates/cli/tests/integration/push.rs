//! `push`: blobs the registry has are skipped; blobs of a sibling repository are mounted.

use std::process::Command;

use crate::common::{registries, Berth};

#[test]
fn push_skips_and_mounts_and_round_trips() {
    let regs = registries();
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let unique = format!("test/pushed-{}", std::process::id());
    let target = format!("{}/{unique}:v1", regs.plain);
    b.run(&["tag", "busybox", &target]).ok();
    // The first push from a docker.io image: the registry is another host, so the layer is
    // uploaded (or found, since the mirror and this registry share storage).
    let out = b.run(&["push", &target]);
    let stdout = out.ok();
    assert!(
        stdout.starts_with(&format!(
            "The push refers to repository [{}/{unique}]",
            regs.plain
        )),
        "{stdout}"
    );
    let digest_line = stdout.lines().last().unwrap();
    assert!(
        digest_line.starts_with("v1: digest: sha256:"),
        "{digest_line}"
    );
    // Pushing again: everything is already there.
    let again = b.run(&["push", &target]);
    assert!(
        again.ok().contains("Layer already exists"),
        "{}",
        again.stdout
    );
    // A second repository on the same registry: the layer is mounted, not uploaded.
    let sibling = format!("{}/{unique}-copy:v1", regs.plain);
    b.run(&["pull", "-q", &target]).ok();
    b.run(&["tag", &target, &sibling]).ok();
    let out = b.run(&["push", &sibling]);
    assert!(
        out.ok().contains(&format!("Mounted from {unique}")),
        "{}",
        out.stdout
    );
    // A real client reads what was pushed.
    let inspect = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{sibling}"),
        ])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    // Pushing an image the store lacks.
    b.run(&["push", &format!("{}/nothing:here", regs.plain)])
        .fails(1, &["No such image"]);
}
