//! `berth serve` driven by the real `docker` CLI: images (pull from the fixture mirror,
//! list, inspect, tag, rmi, save/load), the classic builder, networks and volumes, and the
//! errors Docker gives for bad requests.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Berth, Run, Served};

/// A test store and its `berth serve` (dropped first, so the server stops before the store
/// goes).
struct Api {
    served: Served,
    berth: Berth,
}

impl Api {
    fn start() -> Api {
        let berth = Berth::new();
        let served = berth.serve();
        Api { served, berth }
    }

    /// `docker ARGS` against this server, in `dir`.
    fn docker_in(&self, dir: Option<&std::path::Path>, args: &[&str]) -> Run {
        let mut c = self.served.client("docker", args);
        c.stdin(Stdio::null());
        if let Some(d) = dir {
            c.current_dir(d);
        }
        c.output().expect("run docker").into()
    }

    fn docker(&self, args: &[&str]) -> Run {
        self.served.docker(args)
    }
}

#[test]
fn images_pull_list_inspect_tag_rmi_save_load() {
    let api = Api::start();
    let pulled = api.docker(&["pull", "busybox"]);
    let out = pulled.ok();
    assert!(out.contains("Pulling from library/busybox"), "{out}");
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert!(out.contains("Digest: sha256:"), "{out}");
    let again = api.docker(&["pull", "busybox"]);
    assert!(
        again
            .ok()
            .contains("Status: Image is up to date for busybox:latest"),
        "{}",
        again.stdout
    );

    // The same store: berth sees what the API pulled.
    assert!(api.berth.run(&["images"]).ok().contains("busybox"));
    let listed = api.docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(listed.ok().contains("busybox:latest"), "{}", listed.stdout);

    let inspected: Value =
        serde_json::from_str(api.docker(&["image", "inspect", "busybox"]).ok()).unwrap();
    let id = inspected[0]["Id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sha256:"), "{inspected}");
    assert_eq!(inspected[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(inspected, {
        let b = api.berth.run(&["image", "inspect", "busybox"]);
        serde_json::from_str::<Value>(b.ok()).unwrap()
    });
    assert!(api
        .docker(&["history", "busybox"])
        .ok()
        .contains(&id[7..19]));

    api.docker(&["tag", "busybox", "mybox:1"]).ok();
    let filtered = api.docker(&["images", "--filter", "reference=mybox", "-q"]);
    assert_eq!(filtered.ok().trim(), &id[7..19]);
    assert!(api
        .docker(&["rmi", "mybox:1"])
        .ok()
        .contains("Untagged: mybox:1"));
    api.docker(&["image", "inspect", "mybox:1"])
        .fails(1, &["No such image: mybox:1"]);

    // save, remove, load back.
    let tar = api.berth.dir.path().join("busybox.tar");
    api.docker(&["save", "-o", tar.to_str().unwrap(), "busybox"])
        .ok();
    let removed = api.docker(&["rmi", "busybox"]);
    assert!(
        removed.ok().contains("Deleted: sha256:"),
        "{}",
        removed.stdout
    );
    let loaded = api.docker(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        loaded.ok().contains("Loaded image: busybox:latest"),
        "{}",
        loaded.stdout
    );

    // Bad inputs, with Docker's words.
    api.docker(&["pull", "nosuchimage-berth"]).fails(
        1,
        &[
            "Error response from daemon",
            "nosuchimage-berth",
            "not found",
        ],
    );
    api.docker(&["rmi", "nosuchimage-berth"])
        .fails(1, &["No such image: nosuchimage-berth"]);
    api.docker(&["create", "--name", "user", "busybox", "true"])
        .ok();
    api.docker(&["rmi", "busybox"])
        .fails(1, &["conflict", "being used by a container"]);
    api.docker(&["rm", "user"]).ok();
    assert!(
        api.served.log().is_empty() || !api.served.log().contains("panicked"),
        "{}",
        api.served.log()
    );
}

#[test]
fn build_with_the_classic_builder_then_run() {
    let api = Api::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo run-step-says-hi && echo built > /built.txt\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    std::fs::write(ctx.path().join("hello.txt"), "hello from the context\n").unwrap();
    let built = api.docker_in(
        Some(ctx.path()),
        &["build", "-t", "apibuilt", "-t", "apibuilt:v2", "."],
    );
    let out = built.ok();
    assert!(out.contains("Step 1/3 : FROM busybox"), "{out}");
    assert!(
        out.contains("run-step-says-hi"),
        "RUN output streams:\n{out}"
    );
    assert!(out.contains("Successfully built"), "{out}");
    assert!(out.contains("Successfully tagged apibuilt:latest"), "{out}");
    assert!(out.contains("Successfully tagged apibuilt:v2"), "{out}");
    let ran = api.docker(&[
        "run",
        "--rm",
        "apibuilt:v2",
        "cat",
        "/hello.txt",
        "/built.txt",
    ]);
    assert_eq!(ran.ok(), "hello from the context\nbuilt\n");
    assert!(api.berth.run(&["images"]).ok().contains("apibuilt"));

    // -q prints the ID only.
    let quiet = api.docker_in(Some(ctx.path()), &["build", "-q", "."]);
    assert!(quiet.ok().trim().starts_with("sha256:"), "{}", quiet.stdout);

    // A failing RUN: Docker's message and exit code, and no scratch left behind.
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nRUN exit 3\n").unwrap();
    api.docker_in(Some(ctx.path()), &["build", "-t", "broken", "."])
        .fails(1, &["returned a non-zero code: 3"]);
    let leftovers: Vec<_> = std::fs::read_dir(api.berth.root().join("tmp"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("api-build-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A Dockerfile outside the context is refused.
    api.docker_in(Some(ctx.path()), &["build", "-f", "../../etc/passwd", "."])
        .fails(1, &[]);
}

#[test]
fn networks_create_list_inspect_remove() {
    let api = Api::start();
    let id = api
        .docker(&["network", "create", "--label", "com.example=yes", "apinet"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let ls = api.docker(&[
        "network",
        "ls",
        "--filter",
        "label=com.example=yes",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ls.ok().trim(), "apinet");
    let all = api.docker(&["network", "ls"]);
    for n in ["bridge", "host", "none", "apinet"] {
        assert!(all.ok().contains(n), "{}", all.stdout);
    }
    let v: Value =
        serde_json::from_str(api.docker(&["network", "inspect", "apinet"]).ok()).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["Labels"]["com.example"], "yes");
    assert!(v[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .contains('/'));

    api.docker(&["network", "create", "apinet"])
        .fails(1, &["network with name apinet already exists"]);
    api.docker(&["network", "rm", "bridge"])
        .fails(1, &["pre-defined network"]);
    assert_eq!(
        api.docker(&["network", "rm", "apinet"]).ok().trim(),
        "apinet"
    );
    api.docker(&["network", "inspect", "apinet"])
        .fails(1, &["network apinet not found"]);
    api.docker(&["network", "rm", "apinet"])
        .fails(1, &["not found"]);
}

#[test]
fn volumes_create_list_inspect_remove_prune() {
    let api = Api::start();
    assert_eq!(
        api.docker(&["volume", "create", "--label", "a=b", "apivol"])
            .ok()
            .trim(),
        "apivol"
    );
    let ls = api.docker(&["volume", "ls", "--filter", "label=a=b", "-q"]);
    assert_eq!(ls.ok().trim(), "apivol");
    let v: Value = serde_json::from_str(api.docker(&["volume", "inspect", "apivol"]).ok()).unwrap();
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Labels"]["a"], "b");
    let mountpoint = PathBuf::from(v[0]["Mountpoint"].as_str().unwrap());
    assert!(mountpoint.starts_with(api.berth.root()), "{mountpoint:?}");
    assert!(api.berth.run(&["volume", "ls"]).ok().contains("apivol"));

    // Creating it again answers the same volume.
    api.docker(&["volume", "create", "apivol"]).ok();

    // In use: 409.
    api.docker(&["pull", "busybox"]).ok();
    api.docker(&[
        "create",
        "--name",
        "user",
        "-v",
        "apivol:/data",
        "busybox",
        "true",
    ])
    .ok();
    api.docker(&["volume", "rm", "apivol"])
        .fails(1, &["volume is in use"]);
    api.docker(&["rm", "user"]).ok();
    assert_eq!(
        api.docker(&["volume", "rm", "apivol"]).ok().trim(),
        "apivol"
    );
    api.docker(&["volume", "inspect", "apivol"])
        .fails(1, &["no such volume"]);

    // Prune takes anonymous volumes, and named ones only with --all.
    let anon = api.docker(&["volume", "create"]).ok().trim().to_string();
    api.docker(&["volume", "create", "named"]).ok();
    let pruned = api.docker(&["volume", "prune", "-f"]);
    assert!(pruned.ok().contains(&anon), "{}", pruned.stdout);
    assert!(!pruned.stdout.contains("named"), "{}", pruned.stdout);
    let pruned = api.docker(&["volume", "prune", "-f", "--all"]);
    assert!(pruned.ok().contains("named"), "{}", pruned.stdout);
    assert_eq!(api.docker(&["volume", "ls", "-q"]).ok().trim(), "");
}

#[test]
fn push_with_the_clients_credentials() {
    use base64::Engine as _;
    let api = Api::start();
    let regs = crate::common::registries();
    api.docker(&["pull", "busybox"]).ok();
    let target = format!("{}/apipush:1", regs.basic);
    api.docker(&["tag", "busybox", &target]).ok();
    // No credentials: the registry's refusal, as an error line after the 200.
    api.docker(&["push", &target]).fails(1, &[&regs.basic]);
    // The CLI sends its stored login as X-Registry-Auth; berth's own logins stay unused.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        crate::common::USER,
        crate::common::PASSWORD
    ));
    std::fs::write(
        api.berth.dir.path().join("docker/config.json"),
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, regs.basic),
    )
    .unwrap();
    let pushed = api.docker(&["push", &target]);
    let out = pushed.ok();
    assert!(out.contains("1: digest: sha256:"), "{out}");
    // And back: pulled by another store through the berth CLI with the same login.
    let other = Berth::new();
    other
        .run_with_input(
            &[
                "login",
                "-u",
                crate::common::USER,
                "--password-stdin",
                &regs.basic,
            ],
            crate::common::PASSWORD.as_bytes(),
        )
        .ok();
    other.run(&["pull", &target]).ok();

    let missing = api.docker(&["pull", "nosuchimage-berth"]);
    eprintln!("pull of a missing image: {}", missing.stderr);
    let nothing = api.docker(&["push", "nosuchimage-berth"]);
    nothing.fails(1, &["An image does not exist locally with the tag"]);
}

#[test]
fn build_client_that_disconnects_ends_the_build() {
    use std::io::BufRead;
    let api = Api::start();
    api.docker(&["pull", "busybox"]).ok();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo ready-$((1+1)) && sleep 600\n",
    )
    .unwrap();
    let tar = api.berth.dir.path().join("ctx.tar");
    crate::common::tar_dir(ctx.path(), &tar);
    let mut curl = Command::new("curl")
        .args(["-sN", "--unix-socket"])
        .arg(&api.served.socket)
        .args([
            "-X",
            "POST",
            "-H",
            "Content-Type: application/x-tar",
            "--data-binary",
        ])
        .arg(format!("@{}", tar.display()))
        .arg("http://localhost/v1.45/build?t=forever")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(curl.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        if line.contains("ready-2") {
            break;
        }
    }
    assert!(seen.contains("Running in"), "{seen}");
    curl.kill().unwrap();
    curl.wait().unwrap();
    drop(lines);
    // The step's container is killed, the build fails and cleans up after itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ps = api.berth.run(&["ps", "-aq"]).stdout;
        let scratch = std::fs::read_dir(api.berth.root().join("tmp"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("api-build-"));
        if ps.trim().is_empty() && !scratch {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "build still going 30 s after the client left: ps {ps:?}, scratch {scratch}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    api.docker(&["image", "inspect", "forever"])
        .fails(1, &["No such image"]);
}
