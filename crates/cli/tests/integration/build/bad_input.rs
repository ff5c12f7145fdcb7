//! `build` on bad input: each mistake gets one clear error naming the Dockerfile's file and
//! line, Docker's exit code, and leaves nothing behind (no image tagged, no container, no
//! mount, no scratch folder); an interrupted build (Ctrl-C or `kill -9`) too, and the next
//! build works.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{registries, Berth};

/// A context with `dockerfile` and an `a.txt`.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("a.txt"), "a\n").unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// Builds `dockerfile` as `bad`; asserts exit `code` with every one of `needles` on stderr
/// and that nothing was left behind.
#[track_caller]
fn refused(b: &Berth, dockerfile: &str, needles: &[&str]) {
    let ctx = context(dockerfile);
    b.run(&["build", "-t", "bad", ctx.path().to_str().unwrap()])
        .fails(1, needles);
    assert_nothing_left(b);
    b.run(&["image", "inspect", "bad"])
        .fails(1, &["No such image"]);
}

/// No container, no mount under the store, no build scratch folder.
#[track_caller]
fn assert_nothing_left(b: &Berth) {
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "", "a container is left");
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new(), "mounts left");
    let scratch: Vec<String> = std::fs::read_dir(b.root().join("tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("build-"))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(scratch, Vec::<String>::new(), "scratch folders left");
}

/// Mount points at or under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(String::from)
        .collect()
}

fn with_busybox() -> Berth {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    b
}

#[test]
fn a_dockerfile_without_from_is_refused() {
    let b = with_busybox();
    refused(
        &b,
        "# no base\nRUN echo hi\n",
        &["Dockerfile:2: ", "no FROM instruction", " 2 | RUN echo hi"],
    );
}

#[test]
fn a_bad_instruction_flag_is_named() {
    let b = with_busybox();
    refused(
        &b,
        "FROM busybox\nCOPY --bogus=1 a.txt /a\n",
        &["Dockerfile:2:6: unknown flag: bogus (for COPY)"],
    );
}

#[test]
fn unterminated_quotes_and_heredocs_are_named() {
    let b = with_busybox();
    refused(
        &b,
        "FROM busybox\nENV A=\"unterminated\n",
        &[
            "Dockerfile:2: ",
            "unexpected end of statement while looking for matching double-quote",
        ],
    );
    refused(
        &b,
        "FROM busybox\nRUN <<EOF\necho never ends\n",
        &["Dockerfile:2:1: unterminated heredoc EOF"],
    );
    // In RUN's shell form the quote is the shell's business, as in Docker: it fails there.
    refused(
        &b,
        "FROM busybox\nRUN echo \"unterminated\n",
        &["The command '/bin/sh -c echo \"unterminated' returned a non-zero code: 2"],
    );
}

#[test]
fn copy_sources_missing_or_outside_the_context_are_named() {
    let b = with_busybox();
    refused(
        &b,
        "FROM busybox\nCOPY missing.txt /x\n",
        &[
            "Dockerfile:2: COPY failed: file not found in build context",
            "missing.txt",
        ],
    );
    refused(
        &b,
        "FROM busybox\nCOPY ../a.txt /x\n",
        &["Dockerfile:2: COPY failed: forbidden path outside the build context: ../a.txt"],
    );
    refused(
        &b,
        "FROM busybox\nWORKDIR /w\nCOPY sub/../../a.txt /x\n",
        &["Dockerfile:3: ", "forbidden path outside the build context"],
    );
}

/// BuildKit's rule: a link in the context is never followed out of it. One inside a copied
/// folder is copied as a link; one named as the source is resolved with the context as root.
#[test]
fn symlinks_never_lead_out_of_the_context() {
    let b = with_busybox();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "host secret\n").unwrap();
    let ctx = context("FROM busybox\n");
    let p = |f: &str| ctx.path().join(f);
    let up = "../".repeat(20);
    std::os::unix::fs::symlink(&secret, p("abs_out")).unwrap();
    std::os::unix::fs::symlink(format!("{up}{}", secret.display()), p("rel_out")).unwrap();
    std::os::unix::fs::symlink("/", p("root")).unwrap();
    std::fs::create_dir(p("dir")).unwrap();
    std::fs::write(p("dir/f"), "f\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), p("dir/inner")).unwrap();
    let secret_rel = secret.display().to_string();
    for (source, shown) in [
        ("abs_out", "abs_out".to_string()),
        ("rel_out", "rel_out".to_string()),
        (&*format!("root{secret_rel}"), format!("root{secret_rel}")),
    ] {
        std::fs::write(p("Dockerfile"), format!("FROM busybox\nCOPY {source} /x\n")).unwrap();
        b.run(&["build", "-t", "links", ctx.path().to_str().unwrap()])
            .fails(
                1,
                &["Dockerfile:2: ", "file not found in build context", &shown],
            );
    }
    std::fs::write(
        p("Dockerfile"),
        "FROM busybox\nCOPY dir /d\nCOPY *_out /w/\nRUN --mount=type=bind,source=dir,target=/m ls -l /m > /mounted\n",
    )
    .unwrap();
    b.run(&["build", "-q", "-t", "links", ctx.path().to_str().unwrap()])
        .ok();
    let out = b
        .run(&[
            "run",
            "--rm",
            "links",
            "sh",
            "-c",
            "for l in /d/inner /w/abs_out /w/rel_out; do readlink $l; done; cat /d/inner/secret /w/abs_out 2>&1; cat /mounted",
        ])
        .ok()
        .to_string();
    let outside_s = outside.path().display().to_string();
    assert!(
        out.starts_with(&format!("{outside_s}\n{secret_rel}\n{up}")),
        "{out}"
    );
    assert!(!out.contains("host secret"), "{out}");
    assert!(out.contains("inner -> "), "{out}");
    assert_nothing_left(&b);
}

#[test]
fn a_base_image_that_does_not_exist_is_named() {
    let b = Berth::new();
    let missing = format!("{}/nosuch/image:1.0", registries().plain);
    refused(
        &b,
        &format!("FROM {missing}\nRUN true\n"),
        &[
            "Dockerfile:1: ",
            &format!("manifest for {missing} not found: manifest unknown"),
        ],
    );
}

/// The Dockerfile the interrupted builds run: a stage another one copies from (so a view
/// of it is mounted) and a RUN that takes long enough to be interrupted.
const SLOW: &str = "FROM busybox AS first\nRUN echo one > /one\nFROM busybox\nCOPY --from=first /one /one\nRUN sleep 60\n";

/// Starts `berth build` of `ctx` and waits until its `sleep` RUN runs.
fn start_slow_build(b: &Berth, ctx: &Path) -> std::process::Child {
    let child = b
        .cmd(&[
            "build",
            "--no-cache",
            "-t",
            "interrupted",
            ctx.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ps = b.run(&["ps", "--no-trunc"]).stdout;
        if ps.contains("sleep 60") {
            break;
        }
        assert!(Instant::now() < deadline, "the RUN never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !mounts_under(&b.root().join("tmp")).is_empty(),
        "the view of the first stage should be mounted"
    );
    child
}

fn kill(child: &std::process::Child, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// After an interrupted build, the next one works and gives a good image.
#[track_caller]
fn next_build_works(b: &Berth, ctx: &Path) {
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n",
    )
    .unwrap();
    b.run(&["build", "-q", "-t", "next", ctx.to_str().unwrap()])
        .ok();
    assert_eq!(b.run(&["run", "--rm", "next", "cat", "/b.txt"]).ok(), "a\n");
    assert_nothing_left(b);
    b.run(&["image", "inspect", "interrupted"])
        .fails(1, &["No such image"]);
}

#[test]
fn ctrl_c_stops_a_build_and_leaves_nothing() {
    let b = with_busybox();
    let ctx = context(SLOW);
    let mut child = start_slow_build(&b, ctx.path());
    let started = Instant::now();
    kill(&child, "-INT");
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "slow to stop");
    assert_eq!(status.code(), Some(130));
    // Cleaned up by the build itself, before the next one.
    assert_nothing_left(&b);
    b.run(&["image", "inspect", "interrupted"])
        .fails(1, &["No such image"]);
    next_build_works(&b, ctx.path());
}

/// Whether nothing is left: no container, no mount under the store, no scratch folder.
fn nothing_left(b: &Berth) -> bool {
    let scratch = std::fs::read_dir(b.root().join("tmp"))
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().contains("build-"))
        })
        .unwrap_or(false);
    b.run(&["ps", "-aq"]).ok().is_empty() && mounts_under(&b.root()).is_empty() && !scratch
}

#[test]
fn kill_9_during_a_run_leaves_nothing_and_the_next_build_works() {
    let b = with_busybox();
    let ctx = context(SLOW);
    let mut child = start_slow_build(&b, ctx.path());
    kill(&child, "-KILL");
    child.wait().unwrap();
    // The build's reaper kills and removes its RUN container and unmounts its view.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !nothing_left(&b) {
        assert!(
            Instant::now() < deadline,
            "the killed build's leftovers stay"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_nothing_left(&b);
    next_build_works(&b, ctx.path());
    // `system prune` cleans up too (here, nothing is left to clean).
    b.run(&["system", "prune", "-f"]).ok();
    assert_nothing_left(&b);
}

/// What a build that died with its reaper (a crash, a power cut) left: a running container
/// labelled with its scratch folder, a mount in that folder. `system prune` removes it all,
/// and so would the next build.
#[test]
fn system_prune_cleans_up_after_a_build_that_died_with_its_reaper() {
    let b = with_busybox();
    let scratch = b.root().join("tmp/build-dead");
    std::fs::create_dir_all(scratch.join("view")).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(scratch.join("view"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    b.run(&[
        "run",
        "-d",
        "--label",
        "berth.build.scratch=build-dead",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    // A container of a user's own is not the dead build's: it stays.
    let mine = b
        .run(&["run", "-d", "busybox", "sleep", "60"])
        .ok()
        .trim()
        .to_string();
    let pruned = b.run(&["system", "prune", "-f"]).ok().to_string();
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert_eq!(b.run(&["ps", "-aq", "--no-trunc"]).ok().trim(), mine);
    b.run(&["rm", "-f", &mine]).ok();
    assert_nothing_left(&b);
}

#[test]
fn a_bad_progress_mode_is_a_usage_error() {
    let b = Berth::new();
    let ctx = context("FROM scratch\nLABEL a=b\n");
    b.run(&["build", "--progress", "fancy", ctx.path().to_str().unwrap()])
        .fails(125, &["invalid argument \"fancy\" for \"--progress\" flag"]);
    let id = b
        .run(&["build", "--progress", "quiet", ctx.path().to_str().unwrap()])
        .ok()
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
}
