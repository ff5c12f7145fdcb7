//! `build`: the tutorial end to end, and the Dockerfile steps around it, against the real
//! fixture mirror (the python stand-in) and PyPI through the bridge's NAT.

use std::time::Duration;

use crate::common::{http_get, Berth};

mod bad_input;

/// Builds the Dockerfile `df` in the context `ctx` as `bad`: it must fail (exit 1) naming
/// every one of `needles`, and tag nothing.
fn fails_untagged(b: &Berth, ctx: &std::path::Path, df: &str, needles: &[&str]) {
    std::fs::write(ctx.join("Dockerfile"), df).unwrap();
    b.run(&["build", "-t", "bad", ctx.to_str().unwrap()])
        .fails(1, needles);
    b.run(&["image", "inspect", "bad"])
        .fails(1, &["No such image"]);
}

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
    // Two containers of the image at once, on the tutorial's port and the next one.
    let (first, second) = tutorial_ports();
    let mut ids = Vec::new();
    for (name, port) in [("tutorial", first), ("tutorial-2", second)] {
        let id = b
            .run(&[
                "run",
                "-d",
                "--name",
                name,
                "--publish",
                &format!("{port}:5000"),
                "fintechexplained-python-docker",
            ])
            .ok()
            .trim()
            .to_string();
        ids.push((id, port));
    }
    for (_, port) in &ids {
        let mut answer = None;
        for _ in 0..100 {
            answer = http_get(&format!("http://127.0.0.1:{port}/"));
            if answer.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(answer.as_deref(), Some("[1,2,3]"), "port {port}");
    }
    let ps = b.run(&["ps"]).ok().to_string();
    for (name, port) in [("tutorial", first), ("tutorial-2", second)] {
        let line = ps
            .lines()
            .find(|l| l.trim_end().ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} is not in ps:\n{ps}"));
        assert!(
            line.contains(&format!("0.0.0.0:{port}->5000/tcp")),
            "{line}"
        );
    }
    b.run(&["stop", "tutorial", "tutorial-2"]).ok();
    b.run(&["rm", "tutorial", "tutorial-2"]).ok();
    // Nothing is left: no container (nor an intermediate one), veth, namespace or port rule.
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
    let ports = std::process::Command::new("nft")
        .args(["list", "map", "ip", "berth", "ports"])
        .output()
        .unwrap();
    let ports = String::from_utf8_lossy(&ports.stdout);
    for (id, port) in &ids {
        let short = &id[..12];
        assert!(
            !std::path::Path::new(&format!("/sys/class/net/vb{}", &short[..11])).exists(),
            "the veth of {short} is left"
        );
        assert!(
            !std::path::Path::new(&format!("/run/netns/berth-{short}")).exists(),
            "the netns of {short} is left"
        );
        assert!(!ports.contains(&format!(" {port} : ")), "{ports}");
        assert_eq!(http_get(&format!("http://127.0.0.1:{port}/")), None);
    }
}

/// The tutorial's ports, 5000 and 5001, unless something on this host holds one of them
/// (another store's container, a local service): then two free ones, said on stderr.
fn tutorial_ports() -> (u16, u16) {
    let mapped = std::process::Command::new("nft")
        .args(["list", "map", "ip", "berth", "ports"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let free = |port: u16| {
        !mapped.contains(&format!(" {port} : "))
            && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
    };
    if free(5000) && free(5001) {
        return (5000, 5001);
    }
    let any = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let ports = (any(), any());
    eprintln!("ports 5000/5001 are taken on this host; the tutorial test uses {ports:?}");
    ports
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

/// A context folder with `files` ((path, content)) and a Dockerfile.
fn context_with(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = ctx.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// `sh -c SCRIPT` in a fresh container of `image`; its output.
fn sh(b: &Berth, image: &str, script: &str) -> String {
    b.run(&["run", "--rm", "--entrypoint", "sh", image, "-c", script])
        .ok()
        .to_string()
}

#[test]
fn multi_stage_builds_copy_from_stages_and_images_and_skip_the_rest() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let ctx = context_with(
        "FROM busybox AS unused\nRUN echo never-built; exit 7\n\
         FROM busybox AS Builder\nRUN mkdir -p /out && echo built > /out/result && ln -s /out/result /out/link && ln -s ../../../../etc/nothing-here /out/evil && chown 1234:5678 /out/result\n\
         FROM builder AS second\nRUN echo second > /second\n\
         FROM busybox\nCOPY --from=builder /out/result /r1\nCOPY --from=1 /out/link /r2\nCOPY --from=second /second /s\nCOPY --from=busybox /bin/busybox /bb\n",
        &[],
    );
    let dir = ctx.path().to_str().unwrap();
    let out = b.run(&["build", "-t", "multi", dir]).ok().to_string();
    // The unused stage was never built (its failing RUN would have failed the build).
    assert!(!out.contains("never-built"), "{out}");
    assert_eq!(
        sh(
            &b,
            "multi",
            "cat /r1 /r2 /s; stat -c %u:%g /r1; test -x /bb && echo bb"
        ),
        "built\nbuilt\nsecond\n1234:5678\nbb\n"
    );
    // --target stops at a stage (and builds only what it needs).
    let out = b
        .run(&["build", "-t", "upto", "--target", "second", dir])
        .ok()
        .to_string();
    assert!(!out.contains("COPY --from"), "{out}");
    assert_eq!(sh(&b, "upto", "cat /second /out/result"), "second\nbuilt\n");
    // A link in a stage that climbs out of it resolves inside the stage, not on the host.
    let bad = |df: &str, needles: &[&str]| fails_untagged(&b, ctx.path(), df, needles);
    bad(
        "FROM busybox AS a\nRUN ln -s ../../../../etc/passwd-nothing /evil\nFROM busybox\nCOPY --from=a /evil /e\n",
        &["file not found", "/evil"],
    );
    bad(
        "FROM busybox\nCOPY --from=nosuchstage /x /x\n",
        &["--from=nosuchstage", "no earlier build stage"],
    );
    bad(
        "FROM busybox AS a\nFROM busybox\nCOPY --from=5 /x /x\n",
        &["invalid stage index 5"],
    );
    bad(
        "FROM busybox\nCOPY --from=busybox /no/such/file /x\n",
        &["file not found", "/no/such/file"],
    );
    b.run(&["build", "--target", "nope", dir])
        .fails(1, &["failed to reach build target nope"]);
}

#[test]
fn heredocs_in_run_and_copy() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let df = "FROM busybox\nARG NAME=world\n\
RUN <<EOF\necho \"hello $NAME\" > /greeting\necho second >> /greeting\nEOF\n\
RUN <<-EOF\n\t\techo tabbed > /tabbed\n\tEOF\n\
RUN cat <<'EOF' > /quoted\n$NAME stays\nEOF\n\
COPY <<EOF /etc/motd\nmotd for ${NAME}\nEOF\n\
COPY <<one <<\"two\" /docs/\nfirst\none\nsecond $NAME\ntwo\n\
RUN <<EOF\n#!/bin/sh -e\necho \"script $0\" > /script\nEOF\n";
    let ctx = context_with(df, &[]);
    let dir = ctx.path().to_str().unwrap();
    b.run(&["build", "-q", "-t", "docs", dir]).ok();
    assert_eq!(
        sh(
            &b,
            "docs",
            "cat /greeting /tabbed /quoted /etc/motd /docs/one /docs/two /script"
        ),
        "hello world\nsecond\ntabbed\n$NAME stays\nmotd for world\nfirst\nsecond $NAME\nscript /dev/pipes/EOF\n"
    );
    // The bodies are in the cache key: an edited body runs again, the rest comes from cache.
    let again = b.run(&["build", "-t", "docs", dir]).ok().to_string();
    assert!(!again.contains("Running in"), "{again}");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        df.replace("echo second", "echo changed"),
    )
    .unwrap();
    let changed = b.run(&["build", "-t", "docs", dir]).ok().to_string();
    assert!(changed.contains("Running in"), "{changed}");
    assert_eq!(sh(&b, "docs", "cat /greeting"), "hello world\nchanged\n");
    // A shebang runs the body with its interpreter (python in the tutorial's image).
    let py = context_with(
        "FROM python:3.8-slim-buster\nRUN <<EOF\n#!/usr/bin/env python3\nimport sys\nopen('/py', 'w').write('python %d\\n' % sys.version_info[0])\nEOF\n",
        &[],
    );
    b.run(&["build", "-q", "-t", "py", py.path().to_str().unwrap()])
        .ok();
    assert_eq!(sh(&b, "py", "cat /py"), "python 3\n");
}

/// A `python3 -m http.server` on loopback serving `dir`; killed on drop.
struct Server(std::process::Child, u16);

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Server(child, port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn copy_and_add_flags_archives_and_urls() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let ctx = context_with(
        "",
        &[
            ("app.sh", "#!/bin/sh\necho app\n"),
            ("a.txt", "a\n"),
            ("tree/inner/x", "x\n"),
        ],
    );
    let p = |f: &str| ctx.path().join(f);
    crate::common::tar_dir(&p("tree"), &p("files.tar.gz"));
    crate::common::tar_dir(&p("tree"), &p("plain.tar"));
    crate::common::tar_dir(&p("tree"), &p("files.tar.bz2"));
    crate::common::tar_dir(&p("tree"), &p("files.tar.xz"));
    let served = tempfile::tempdir().unwrap();
    std::fs::write(served.path().join("data.bin"), "downloaded\n").unwrap();
    let digest = crate::common::sha256_file(&served.path().join("data.bin"));
    let server = Server::start(served.path());
    let url = format!("http://127.0.0.1:{}/data.bin", server.1);
    std::fs::write(
        p("Dockerfile"),
        format!(
            "FROM busybox\nCOPY --chmod=755 app.sh /app.sh\nADD --chmod=0600 a.txt /a.txt\nCOPY --link a.txt /linked\nADD --chown=nobody a.txt /owned\n\
             ADD files.tar.gz /unpacked/\nADD plain.tar /plain\nCOPY files.tar.gz /kept/\nADD --checksum=sha256:{digest} {url} /dl/\n\
             ADD files.tar.bz2 /bz2/\nADD files.tar.xz /xz/\n"
        ),
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();
    b.run(&["build", "-q", "-t", "flags", dir]).ok();
    assert_eq!(
        sh(
            &b,
            "flags",
            "/app.sh; stat -c '%a %U' /app.sh /a.txt /linked /owned; cat /unpacked/inner/x /plain/inner/x; ls /kept; cat /dl/data.bin; stat -c %a /dl/data.bin; cat /bz2/inner/x /xz/inner/x"
        ),
        "app\n755 root\n600 root\n644 root\n644 nobody\nx\nx\nfiles.tar.gz\ndownloaded\n600\nx\nx\n"
    );
    let bad = |df: String, needles: &[&str]| fails_untagged(&b, ctx.path(), &df, needles);
    bad(
        "FROM busybox\nCOPY --chmod=abc a.txt /\n".into(),
        &["invalid --chmod=abc"],
    );
    bad(
        format!(
            "FROM busybox\nADD --checksum=sha256:{} {url} /\n",
            "0".repeat(64)
        ),
        &["checksum mismatch", &digest],
    );
    bad(
        format!(
            "FROM busybox\nADD http://127.0.0.1:{}/missing /\n",
            server.1
        ),
        &["404"],
    );
    // An archive entry that climbs out of the destination is refused.
    let ok = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import tarfile, io\nt = tarfile.open('{}', 'w')\ni = tarfile.TarInfo('../../evil')\ni.size = 4\nt.addfile(i, io.BytesIO(b'evil'))\nt.close()",
            p("evil.tar").display()
        ))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    bad(
        "FROM busybox\nADD evil.tar /x/\n".into(),
        &["points outside the destination"],
    );
}

#[test]
fn run_mounts_cache_bind_tmpfs_and_secrets() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let ctx = context_with(
        "FROM busybox AS builder\nRUN mkdir /out && echo from-stage > /out/result\n\
         FROM busybox\n\
         RUN --mount=type=cache,target=/cache,id=counter sh -c 'echo run >> /cache/log; wc -l < /cache/log > /count'\n\
         RUN --mount=type=bind,source=app,target=/src cp /src/a.txt /from-bind && (touch /src/new 2>/dev/null && echo writable || echo read-only) > /bindmode && (test -e /src/skip.log && echo ignored-file-visible || echo ignored-file-hidden) >> /bindmode\n\
         RUN --mount=type=bind,from=builder,source=/out,target=/o cp /o/result /from-stage\n\
         RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/t && ls /scratch > /tmpfs-ls'\n\
         RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /secret-ok\n\
         RUN --mount=type=secret,id=absent echo optional > /optional\n",
        &[
            ("app/a.txt", "from-context\n"),
            ("app/skip.log", "no\n"),
            (".dockerignore", "**/*.log\n"),
        ],
    );
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "s3cr3t-value").unwrap();
    let dir = ctx.path().to_str().unwrap();
    let src = format!("id=tok,src={}", secret.path().display());
    let build = || {
        b.run(&[
            "build",
            "-q",
            "--no-cache",
            "--secret",
            &src,
            "-t",
            "mounts",
            dir,
        ])
        .ok()
        .to_string()
    };
    build();
    assert_eq!(
        sh(
            &b,
            "mounts",
            "cat /count /from-bind /bindmode /from-stage /tmpfs-ls /secret-ok /optional; \
             for p in /cache /src /o /scratch /run/secrets; do test -e $p && echo left $p; done; true"
        ),
        "1\nfrom-context\nread-only\nignored-file-hidden\nfrom-stage\nt\n12\noptional\n"
    );
    // The cache mount outlives the build; the secret is in no layer, snapshot or cache entry.
    build();
    assert_eq!(sh(&b, "mounts", "cat /count"), "2\n");
    let grep = std::process::Command::new("grep")
        .args(["-r", "-l", "s3cr3t-value"])
        .arg(b.root())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&grep.stdout), "");
    let bad = |df: &str, needles: &[&str]| fails_untagged(&b, ctx.path(), df, needles);
    bad(
        "FROM busybox\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n",
        &[
            "the secret is required but was not given",
            "--secret id=tok",
        ],
    );
    bad(
        "FROM busybox\nRUN --mount=type=cache,target=/c,colour=red true\n",
        &[
            "--mount=type=cache,target=/c,colour=red",
            "unknown key \"colour\"",
        ],
    );
    bad(
        "FROM busybox\nRUN --mount=type=cache true\n",
        &["target is required"],
    );
    b.run(&["build", "--secret", "tok", dir])
        .fails(125, &["--secret", "use id=NAME,src=FILE"]);
}

#[test]
fn tar_and_stdin_contexts() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let ctx = context_with(
        "FROM busybox\nCOPY a.txt /a.txt\n",
        &[("a.txt", "from-tar\n")],
    );
    let tars = tempfile::tempdir().unwrap();
    let plain = tars.path().join("ctx.tar");
    let gz = tars.path().join("ctx.tar.gz");
    crate::common::tar_dir(ctx.path(), &plain);
    crate::common::tar_dir(ctx.path(), &gz);
    b.run(&["build", "-q", "-t", "fromtar", plain.to_str().unwrap()])
        .ok();
    assert_eq!(sh(&b, "fromtar", "cat /a.txt"), "from-tar\n");
    b.run_with_input(
        &["build", "-q", "-t", "fromstdin", "-"],
        &std::fs::read(&gz).unwrap(),
    )
    .ok();
    assert_eq!(sh(&b, "fromstdin", "cat /a.txt"), "from-tar\n");
    // A Dockerfile on stdin: an empty context.
    b.run_with_input(
        &["build", "-q", "-t", "dfstdin", "-"],
        b"FROM busybox\nRUN echo from-stdin > /s\n",
    )
    .ok();
    assert_eq!(sh(&b, "dfstdin", "cat /s"), "from-stdin\n");
    b.run_with_input(&["build", "-"], b"FROM busybox\nCOPY a.txt /\n")
        .fails(1, &["file not found in build context", "a.txt"]);
    // A context tar with an entry climbing out of it is refused, and nothing is written there.
    let evil = tars.path().join("evil.tar");
    let ok = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import tarfile, io\nt = tarfile.open('{}', 'w')\nfor n, d in [('Dockerfile', b'FROM busybox\\n'), ('../../escaped', b'x')]:\n    i = tarfile.TarInfo(n)\n    i.size = len(d)\n    t.addfile(i, io.BytesIO(d))\nt.close()",
            evil.display()
        ))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    b.run(&["build", "-t", "bad", evil.to_str().unwrap()])
        .fails(1, &["unpacking the build context", "../../escaped"]);
    b.run(&["image", "inspect", "bad"])
        .fails(1, &["No such image"]);
}

#[test]
fn platform_args_and_reproducible_builds() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let ctx = context_with(
        "ARG TARGETOS\nFROM ${TARGETOS:+busybox} AS base\nARG TARGETPLATFORM\nARG TARGETARCH\nARG BUILDPLATFORM\n\
         RUN echo \"$TARGETPLATFORM $TARGETARCH $BUILDPLATFORM\" > /plat && echo made > /made && mkdir /d\n\
         COPY a.txt /\nFROM base\nRUN echo \"[$TARGETARCH]\" > /unset\n",
        &[("a.txt", "a\n")],
    );
    let dir = ctx.path().to_str().unwrap();
    b.run(&["build", "-q", "-t", "plat", dir]).ok();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(
        sh(&b, "plat", "cat /plat /unset"),
        format!("linux/{arch} {arch} linux/{arch}\n[]\n")
    );
    b.run(&["build", "--platform", "linux/s390x", dir])
        .fails(1, &["linux/s390x", "host platform only"]);
    b.run(&["build", "-q", "--platform", &format!("linux/{arch}"), dir])
        .ok();
    // SOURCE_DATE_EPOCH: two builds without cache give the same image.
    let epoch_build = || {
        b.run(&[
            "build",
            "-q",
            "--no-cache",
            "--build-arg",
            "SOURCE_DATE_EPOCH=1700000000",
            "-t",
            "repro",
            dir,
        ])
        .ok()
        .trim()
        .to_string()
    };
    let first = epoch_build();
    std::thread::sleep(Duration::from_millis(1100));
    let second = epoch_build();
    assert_eq!(first, second);
    let v = b.inspect("repro");
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        sh(&b, "repro", "stat -c %Y /made /d /a.txt"),
        "1700000000\n1700000000\n1700000000\n"
    );
    b.run(&["build", "--build-arg", "SOURCE_DATE_EPOCH=yesterday", dir])
        .fails(1, &["invalid SOURCE_DATE_EPOCH"]);
}

#[test]
fn onbuild_triggers_fire_in_the_child() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let ctx = context_with(
        "FROM busybox\nONBUILD RUN echo triggered > /t\nONBUILD COPY a.txt /onb/\n",
        &[("a.txt", "child-context\n")],
    );
    let dir = ctx.path().to_str().unwrap();
    b.run(&["build", "-q", "-t", "onbase", dir]).ok();
    assert_eq!(sh(&b, "onbase", "test -e /t || echo not-yet"), "not-yet\n");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM onbase\nRUN cat /t /onb/a.txt > /both\n",
    )
    .unwrap();
    let out = b.run(&["build", "-t", "onchild", dir]).ok().to_string();
    assert!(out.contains("Executing 2 build triggers"), "{out}");
    assert_eq!(sh(&b, "onchild", "cat /both"), "triggered\nchild-context\n");
    // Triggers are not inherited by grandchildren.
    assert!(b.inspect("onchild")["Config"]["OnBuild"].is_null());
}

/// Stages the target needs that do not need each other are built at the same time; when one
/// fails, the other's RUN is stopped and nothing is left.
#[test]
fn independent_stages_build_at_the_same_time() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let ctx = context_with(
        "FROM busybox AS a\nRUN sleep 3; echo a > /a\nFROM busybox AS b\nRUN sleep 3; echo b > /b\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN cat /a /b > /ab\n",
        &[],
    );
    let started = std::time::Instant::now();
    let out = b.run(&["build", "-t", "together", ctx.path().to_str().unwrap()]);
    let text = out.ok().to_string();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "took {took:?}:\n{text}");
    assert!(
        text.contains("[a] Step 2/8 : RUN sleep 3; echo a > /a"),
        "{text}"
    );
    assert!(
        text.contains("[b] Step 4/8 : RUN sleep 3; echo b > /b"),
        "{text}"
    );
    assert_eq!(sh(&b, "together", "cat /ab"), "a\nb\n");
    // One fails: the build says why at once, the other's RUN is killed, nothing is left.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox AS a\nRUN exit 4\nFROM busybox AS b\nRUN sleep 60\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    b.run(&["build", "-t", "broken", ctx.path().to_str().unwrap()])
        .fails(
            1,
            &["Dockerfile:2: The command '/bin/sh -c exit 4' returned a non-zero code: 4"],
        );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
    let scratch = std::fs::read_dir(b.root().join("tmp"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(scratch, 0, "scratch folders are left");
}

/// `berth build . >/dev/null 2>&1` works: a RUN that writes must not fail for it.
#[test]
fn a_build_whose_output_is_thrown_away_still_runs() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let ctx = context_with(
        "FROM busybox\nRUN echo out; echo err >&2; echo done > /done\n",
        &[],
    );
    let status = b
        .cmd(&["build", "-t", "quietly", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(sh(&b, "quietly", "cat /done"), "done\n");
}
