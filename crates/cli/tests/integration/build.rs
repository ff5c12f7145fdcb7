//! `build`: the tutorial end to end, and the Dockerfile steps around it, against the real
//! fixture mirror (the python stand-in) and PyPI through the bridge's NAT.

use std::time::Duration;

use crate::common::{http_get, Berth};

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_tutorial_builds_and_answers() {
    let b = Berth::new();
    let context = repo().join("examples/python-flask");
    let out = b.run(&[
        "build",
        "--tag",
        "fintechexplained-python-docker",
        context.to_str().unwrap(),
    ]);
    let text = out.ok();
    assert!(
        text.contains("Step 1/8 : FROM python:3.8-slim-buster"),
        "{text}"
    );
    assert!(
        text.contains("Successfully tagged fintechexplained-python-docker:latest"),
        "{text}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    b.run(&[
        "run",
        "-d",
        "--name",
        "tutorial",
        "--publish",
        &format!("{port}:5000"),
        "fintechexplained-python-docker",
    ])
    .ok();
    let mut answer = None;
    for _ in 0..100 {
        answer = http_get(&format!("http://127.0.0.1:{port}/"));
        if answer.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(answer.as_deref(), Some("[1,2,3]"));
    b.run(&["rm", "-f", "tutorial"]).ok();
    // No intermediate container is left.
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
}

/// Copies a folder (the example) so a test may change it.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn rebuilds_use_the_cache_and_contents_decide() {
    let b = Berth::new();
    let ctx = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("examples/python-flask"), ctx.path());
    let build = || {
        let out = b.run(&["build", "-t", "cached", ctx.path().to_str().unwrap()]);
        out.ok().to_string()
    };
    let first = build();
    let id_of = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("Successfully built "))
            .unwrap()
            .to_string()
    };
    // Nothing changed: every step from the cache (no RUN), the same image.
    let second = build();
    assert_eq!(second.matches(" ---> Using cache").count(), 7, "{second}");
    assert!(!second.contains("Running in"), "{second}");
    assert_eq!(id_of(&first), id_of(&second));
    // Same size and mtime, other bytes: the COPY of src/ misses, pip's RUN before it hits.
    let main = ctx.path().join("src/main.py");
    let meta = std::fs::metadata(&main).unwrap();
    let text = std::fs::read_to_string(&main)
        .unwrap()
        .replace("[1,2,3]", "[3,2,1]");
    std::fs::write(&main, text).unwrap();
    let ok = std::process::Command::new("touch")
        .arg("-d")
        .arg(format!(
            "@{}",
            meta.modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        ))
        .arg(&main)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let third = build();
    assert_eq!(third.matches(" ---> Using cache").count(), 3, "{third}");
    assert_ne!(id_of(&first), id_of(&third));
    // --no-cache runs everything again.
    let fourth = b.run(&["build", "--no-cache", "-q", ctx.path().to_str().unwrap()]);
    assert!(fourth.ok().starts_with("sha256:"));
}

#[test]
fn dockerfile_steps_and_failures() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let ctx = tempfile::tempdir().unwrap();
    let p = |f: &str| ctx.path().join(f);
    std::fs::create_dir_all(p("app/sub")).unwrap();
    std::fs::write(p("app/a.txt"), "a\n").unwrap();
    std::fs::write(p("app/sub/b.txt"), "b\n").unwrap();
    std::fs::write(p("app/skip.log"), "no\n").unwrap();
    std::fs::write(p("secret"), "hidden\n").unwrap();
    std::fs::write(p(".dockerignore"), "secret\n**/*.log\n").unwrap();
    std::fs::write(
        p("Dockerfile"),
        "ARG BASE=busybox\nFROM ${BASE}\nARG GREETING=hi\nENV DIR=/opt/app WHO=berth\nWORKDIR $DIR\nCOPY app/ ./\nCOPY --chown=nobody app/a.txt /owned/\nRUN echo \"$GREETING $WHO\" > greeting && ls > listing\nLABEL team=infra\nUSER nobody\nEXPOSE 8080/tcp 9000\nENTRYPOINT [\"cat\"]\nCMD [\"greeting\"]\n",
    )
    .unwrap();
    let out = b.run(&[
        "build",
        "-q",
        "-t",
        "steps",
        "--build-arg",
        "GREETING=hello",
        "--label",
        "built=yes",
        ctx.path().to_str().unwrap(),
    ]);
    let id = out.ok().trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    // CMD and ENTRYPOINT, ENV, WORKDIR and USER as the image says; ARG reached RUN.
    assert_eq!(b.run(&["run", "--rm", "steps"]).ok(), "hello berth\n");
    assert_eq!(
        b.run(&["run", "--rm", "--entrypoint", "ls", "steps", "-a"])
            .ok(),
        ".\n..\na.txt\ngreeting\nlisting\nsub\n"
    );
    assert_eq!(
        b.run(&[
            "run",
            "--rm",
            "--entrypoint",
            "stat",
            "steps",
            "-c",
            "%U",
            "/owned/a.txt"
        ])
        .ok(),
        "nobody\n"
    );
    let v = b.inspect("steps");
    assert_eq!(v["Config"]["Labels"]["team"], "infra");
    assert_eq!(v["Config"]["Labels"]["built"], "yes");
    assert_eq!(v["Config"]["User"], "nobody");
    assert_eq!(v["Config"]["WorkingDir"], "/opt/app");
    assert!(v["Config"]["ExposedPorts"]["9000/tcp"].is_object());
    // .dockerignore kept the secret and the log out.
    assert_eq!(
        b.run(&[
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            "steps",
            "-c",
            "ls /opt/app/sub; test -e /opt/app/skip.log || echo no-log"
        ])
        .ok(),
        "b.txt\nno-log\n"
    );
    // A failing RUN: Docker's message, exit 1, nothing tagged, no container left.
    std::fs::write(p("Dockerfile"), "FROM busybox\nRUN echo working; exit 3\n").unwrap();
    b.run(&["build", "-t", "broken", ctx.path().to_str().unwrap()])
        .fails(
            1,
            &["The command '/bin/sh -c echo working; exit 3' returned a non-zero code: 3"],
        );
    b.run(&["image", "inspect", "broken"])
        .fails(1, &["No such image"]);
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
    // Sources outside the context or ignored, and bad Dockerfiles, are named.
    std::fs::write(p("Dockerfile"), "FROM busybox\nCOPY secret /\n").unwrap();
    b.run(&["build", ctx.path().to_str().unwrap()]).fails(
        1,
        &[
            "file not found in build context or excluded by .dockerignore",
            "secret",
        ],
    );
    std::fs::write(p("Dockerfile"), "FROM busybox\nBOGUS x\n").unwrap();
    b.run(&["build", ctx.path().to_str().unwrap()])
        .fails(1, &["Dockerfile:2:1: unknown instruction: BOGUS"]);
    std::fs::write(
        p("Dockerfile"),
        "FROM busybox\nCOPY app/a.txt app/sub/b.txt dest\n",
    )
    .unwrap();
    b.run(&["build", ctx.path().to_str().unwrap()])
        .fails(1, &["the destination must be a directory and end with a /"]);
    b.run(&["build", "/nonexistent-context"])
        .fails(1, &["not found"]);
}
