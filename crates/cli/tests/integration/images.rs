//! `images`, `tag`, `rmi`, `inspect`, `history`, `image prune`.

use crate::common::{registries, Berth};

#[test]
fn listing_tagging_inspecting_and_removing() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let id = b.inspect("busybox")["Id"].as_str().unwrap().to_string();
    let short = &id[7..19];
    assert_eq!(b.run(&["images", "-q"]).ok(), format!("{short}\n"));
    assert_eq!(
        b.run(&["images", "-q", "--no-trunc"]).ok(),
        format!("{id}\n")
    );

    b.run(&["tag", "busybox", "mine/box:v1"]).ok();
    b.run(&["tag", short, "other:v2"]).ok();
    let rows = b.run(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut rows: Vec<&str> = rows.ok().lines().collect();
    rows.sort();
    assert_eq!(rows, ["busybox:latest", "mine/box:v1", "other:v2"]);
    assert_eq!(b.run(&["images", "mine/box"]).ok().lines().count(), 2);
    assert_eq!(
        b.run(&["images", "--filter", "reference=mine/*", "-q"])
            .ok(),
        format!("{short}\n")
    );
    assert_eq!(
        b.run(&["images", "--filter", "dangling=true", "-q"]).ok(),
        ""
    );
    b.run(&["images", "--filter", "bogus=1"])
        .fails(1, &["invalid filter 'bogus'"]);
    let table = b.run(&["images", "--format", "table {{.Repository}}\t{{.ID}}"]);
    assert!(
        table.ok().starts_with("REPOSITORY   IMAGE ID\n"),
        "{}",
        table.stdout
    );
    let json = b.run(&["images", "--format", "json"]);
    let first: serde_json::Value = serde_json::from_str(json.ok().lines().next().unwrap()).unwrap();
    assert_eq!(first["ID"], short);

    // inspect: Docker's field names, -f templates, and a clear miss.
    let v = b.inspect("mine/box:v1");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(v["Os"], "linux");
    assert!(v["RepoTags"]
        .as_array()
        .unwrap()
        .contains(&"busybox:latest".into()));
    assert!(v["RepoDigests"][0]
        .as_str()
        .unwrap()
        .starts_with("busybox@sha256:"));
    assert_eq!(
        b.run(&[
            "inspect",
            "-f",
            "{{.Config.Cmd}} {{.Architecture}}",
            "busybox"
        ])
        .ok(),
        "[sh] amd64\n"
    );
    b.run(&["inspect", "nosuch"])
        .fails(1, &["Error: No such object: nosuch"]);

    let history = b.run(&["history", "busybox"]);
    let lines: Vec<&str> = history.ok().lines().collect();
    assert!(
        lines[0].starts_with("IMAGE          CREATED"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with(short), "{}", lines[1]);

    // rmi: untag while other tags remain; refuse an ambiguous ID; delete on the last tag.
    assert_eq!(b.run(&["rmi", "other:v2"]).ok(), "Untagged: other:v2\n");
    b.run(&["rmi", short])
        .fails(1, &["conflict: unable to delete", "must be forced"]);
    b.run(&["rmi", "nosuch"])
        .fails(1, &["No such image: nosuch:latest"]);
    let out = b.run(&["rmi", "-f", short]);
    let stdout = out.ok();
    assert!(stdout.contains("Untagged: busybox:latest"), "{stdout}");
    assert!(stdout.contains("Untagged: mine/box:v1"), "{stdout}");
    assert!(stdout.contains(&format!("Deleted: {id}")), "{stdout}");
    assert_eq!(b.run(&["images", "-q"]).ok(), "");
    assert_eq!(b.count("blobs/sha256"), 0, "every blob is gone");
    assert_eq!(b.count("snapshots"), 0, "every snapshot is gone");
}

#[test]
fn prune_removes_dangling_images_only_unless_all() {
    let regs = registries();
    let b = Berth::bare();
    let r = format!("{}/test/busybox:zstd", regs.plain);
    let layers = format!("{}/test/layers:latest", regs.plain);
    b.run(&["pull", "-q", &r]).ok();
    b.run(&["pull", "-q", &layers]).ok();
    // Re-point the zstd tag at another image: the old one becomes dangling.
    b.run(&["tag", &layers, &r]).ok();
    let dangling = b.run(&[
        "images",
        "--filter",
        "dangling=true",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(dangling.ok(), "<none>:<none>\n");
    let out = b.run(&["image", "prune", "-f"]);
    assert!(out.ok().starts_with("Deleted Images:\n"), "{}", out.stdout);
    assert!(out.stdout.contains("Total reclaimed space:"));
    assert_eq!(b.run(&["images", "-q"]).ok().lines().count(), 1);
    let out = b.run(&["image", "prune", "-a", "-f"]);
    assert!(out.ok().contains("deleted: sha256:"), "{}", out.stdout);
    assert_eq!(b.run(&["images", "-q"]).ok(), "");
    assert_eq!(b.count("snapshots"), 0);
}
