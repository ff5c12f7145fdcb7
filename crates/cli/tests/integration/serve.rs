//! `berth serve` judged by real clients: the `docker` CLI (28.x, installed as a client only)
//! and Debian's docker-py, on a socket of the test's own; raw HTTP for the bad requests no
//! client would send.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{free_port, http_get, Berth};

#[test]
fn docker_cli_runs_containers_through_berth_serve() {
    let b = Berth::new();
    let s = b.serve();
    let version = s.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(version.ok().trim(), "1.45");
    // Foreground, with the pull the CLI does itself on a 404 from create.
    let hi = s.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(hi.ok(), "hi\n", "{}", hi.stderr);
    assert_eq!(
        s.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"])
            .code,
        3
    );
    s.docker(&["run", "--rm", "busybox", "no-such-command"])
        .fails(127, &["executable file not found"]);
    // Detached, published, and seen by both CLIs (one store).
    let port = free_port();
    let id = s
        .docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sh",
            "-c",
            "echo booted; echo oops >&2; exec httpd -f -p 80 -h /etc",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answer = None;
    while answer.is_none() && Instant::now() < deadline {
        answer = http_get(&format!("http://127.0.0.1:{port}/hostname"));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(answer.as_deref(), Some(format!("{}\n", &id[..12]).as_str()));
    let ps = s.docker(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert_eq!(ps.ok(), format!("web 0.0.0.0:{port}->80/tcp\n"));
    assert!(b
        .run(&["ps", "--format", "{{.Names}}"])
        .ok()
        .contains("web"));
    let logs = s.docker(&["logs", "web"]);
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("booted\n", "oops\n")
    );
    let exec = s.docker(&["exec", "web", "sh", "-c", "cat /etc/hostname; exit 4"]);
    assert_eq!(
        (exec.code, exec.stdout.as_str()),
        (4, format!("{}\n", &id[..12]).as_str())
    );
    let inspect = s.docker(&["inspect", "-f", "{{.State.Running}} {{.Name}}", "web"]);
    assert_eq!(inspect.ok(), "true /web\n");
    // A container made by the CLI shows through the API.
    b.run(&[
        "run",
        "-d",
        "--name",
        "made-by-cli",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    assert!(s
        .docker(&["ps", "--format", "{{.Names}}"])
        .ok()
        .contains("made-by-cli"));
    s.docker(&["stop", "-t", "1", "web", "made-by-cli"]).ok();
    assert_eq!(s.docker(&["ps", "-q"]).ok(), "");
    s.docker(&["rm", "web", "made-by-cli"]).ok();
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
    // Errors read as Docker's.
    s.docker(&["stop", "nope"])
        .fails(1, &["No such container: nope"]);
    s.docker(&["run", "--name", "twice", "-d", "busybox", "sleep", "300"])
        .ok();
    s.docker(&["run", "--name", "twice", "-d", "busybox", "true"])
        .fails(125, &["Conflict", "twice"]);
    s.docker(&["rm", "twice"])
        .fails(1, &["cannot remove container", "force"]);
    s.docker(&["rm", "-f", "twice"]).ok();
}

#[test]
fn ctrl_c_stops_a_foreground_container() {
    let b = Berth::new();
    let s = b.serve();
    s.docker(&["pull", "-q", "busybox"]).ok();
    let mut child = s
        .client(
            "docker",
            &[
                "run",
                "--rm",
                "--name",
                "sig",
                "busybox",
                "sh",
                "-c",
                "trap 'echo got-int; exit 130' INT; echo ready; sleep 100 & wait",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    // As a user's Ctrl-C comes: not in the very instant the output appears (the docker CLI
    // sets its signal forwarding up around the start, and a loaded machine can delay that).
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest, "got-int\n");
    assert_eq!(child.wait().unwrap().code(), Some(130));
    // --rm: gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.run(&["ps", "-aq"]).ok().is_empty() {
        assert!(Instant::now() < deadline, "the --rm container stayed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn docker_py_drives_containers() {
    let b = Berth::new();
    let s = b.serve();
    b.run(&["pull", "-q", "busybox"]).ok();
    let script = r#"
import docker, time
c = docker.from_env()
assert c.containers.run("busybox", "echo hello-py", remove=True) == b"hello-py\n"
ct = c.containers.run("busybox", ["sh", "-c", "echo started; sleep 300"], detach=True, name="pyc")
for _ in range(100):
    if ct.logs() == b"started\n": break
    time.sleep(0.05)
assert ct.logs() == b"started\n", ct.logs()
r = ct.exec_run(["sh", "-c", "echo ex; exit 3"])
assert (r.exit_code, r.output) == (3, b"ex\n"), r
ct.reload()
assert ct.status == "running", ct.status
assert [x.name for x in c.containers.list()] == ["pyc"]
ct.stop(timeout=1)
ct.reload()
assert ct.status == "exited" and ct.attrs["State"]["ExitCode"] == 137, ct.attrs["State"]
ct.remove()
try:
    c.containers.run("busybox", ["sh", "-c", "exit 2"], remove=True)
    raise SystemExit("no ContainerError")
except docker.errors.ContainerError as e:
    assert e.exit_status == 2
try:
    c.containers.get("nope")
    raise SystemExit("no NotFound")
except docker.errors.NotFound:
    pass
print("ok")
"#;
    let out = s.python(script);
    assert_eq!(out.ok(), "ok\n", "{}", out.stderr);
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
}

#[test]
fn bad_requests_get_docker_errors_and_the_server_keeps_serving() {
    let b = Berth::new();
    let s = b.serve();
    let check = |(status, body): (u16, String), want: u16, needle: &str| {
        assert_eq!(status, want, "{body}");
        let v: serde_json::Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    };
    check(
        s.request("POST", "/containers/create", b"{not json"),
        400,
        "invalid JSON",
    );
    check(
        s.request("GET", "/no/such/endpoint", b""),
        404,
        "page not found",
    );
    check(s.request("GET", "/v1.99/info", b""), 400, "too new");
    check(s.request("GET", "/v1.12/info", b""), 400, "too old");
    check(
        s.request("GET", "/containers/nope/json", b""),
        404,
        "No such container: nope",
    );
    check(
        s.request(
            "POST",
            "/containers/create",
            br#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#,
        ),
        400,
        "restart policy",
    );
    check(
        s.request(
            "POST",
            "/containers/create",
            br#"{"Image":"no-such-image-here"}"#,
        ),
        404,
        "No such image",
    );
    check(
        s.request("POST", "/containers/x/wait?condition=whenever", b""),
        404,
        "No such container",
    );
    // A body over the bound is refused without being read whole.
    let big = vec![b'x'; 5 << 20];
    let (status, _) = s.request("POST", "/containers/create", &big);
    assert_eq!(status, 413);
    // Versioned and unversioned paths, GET and HEAD ping.
    assert_eq!(s.request("GET", "/_ping", b"").0, 200);
    assert_eq!(s.request("HEAD", "/v1.24/_ping", b"").0, 200);
    let (status, body) = s.request("GET", "/v1.41/version", b"");
    assert_eq!(status, 200);
    assert!(body.contains("\"ApiVersion\":\"1.45\""), "{body}");
}

/// Clients that hang up mid-stream and twenty clients at once: no error, and nothing left
/// behind (containers, the server's file descriptors and threads back to where they were).
#[test]
fn disconnects_and_concurrent_clients_leak_nothing() {
    let b = Berth::new();
    let s = b.serve();
    b.run(&["pull", "-q", "busybox"]).ok();
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/{}/{what}", s.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let settle = || std::thread::sleep(Duration::from_millis(500));
    settle();
    let (fds, threads) = (count("fd"), count("task"));
    b.run(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.1; done",
    ])
    .ok();
    for args in [
        vec!["logs", "-f", "chatty"],
        vec!["attach", "chatty"],
        vec!["stats", "chatty"],
    ] {
        let mut c = s
            .client("docker", &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let _ = c.kill();
        let _ = c.wait();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    let name = format!("many{i}");
                    s.docker(&["run", "-d", "--name", &name, "busybox", "sleep", "300"])
                        .ok();
                    s.docker(&["rm", "-f", &name]).ok();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    s.docker(&["rm", "-f", "chatty"]).ok();
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
    settle();
    assert_eq!(s.request("GET", "/_ping", b"").0, 200);
    let (fds_after, threads_after) = (count("fd"), count("task"));
    assert!(
        fds_after <= fds + 2,
        "file descriptors: {fds} before, {fds_after} after"
    );
    assert!(
        threads_after <= threads + 4,
        "threads: {threads} before, {threads_after} after"
    );
}

/// docker-compose 1.29 (Debian's): two services on the project's network, one reaching the
/// other by its service name, one port published, a named volume; `down -v` leaves nothing.
#[test]
fn docker_compose_up_ps_logs_down() {
    let b = Berth::new();
    let s = b.serve();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!(
            r#"version: "3"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello-from-web > /www/index.html; exec httpd -f -p 80 -h /www"]
    ports: ["{port}:80"]
    volumes: ["www:/www"]
  client:
    image: busybox
    command: ["sh", "-c", "until wget -qO- http://web/index.html; do sleep 0.2; done; exec sleep 300"]
    depends_on: [web]
volumes:
  www: {{}}
"#
        ),
    )
    .unwrap();
    let compose = |args: &[&str]| {
        let out = s
            .client("docker-compose", &[&["-p", "berthtest"], args].concat())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        crate::common::Run::from(out)
    };
    let up = compose(&["up", "-d"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answer = None;
    while answer.is_none() && Instant::now() < deadline {
        answer = http_get(&format!("http://127.0.0.1:{port}/index.html"));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(answer.as_deref(), Some("hello-from-web\n"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = compose(&["logs", "--no-color", "client"]);
        if logs.stdout.contains("hello-from-web") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "client never reached web:\n{}{}",
            logs.stdout,
            logs.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let ps = compose(&["ps"]);
    assert!(ps.ok().contains("berthtest_web_1"), "{}", ps.stdout);
    assert!(
        ps.stdout.contains(&format!("0.0.0.0:{port}->80/tcp")),
        "{}",
        ps.stdout
    );
    let down = compose(&["down", "-v"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
    assert!(!b.run(&["network", "ls"]).ok().contains("berthtest"));
    assert!(!b.run(&["volume", "ls", "-q"]).ok().contains("berthtest"));
}

/// testcontainers (PyPI, installed by scripts/packages.sh) starts a container and reads its
/// mapped port; its reaper container would come from Docker Hub, so it is turned off.
#[test]
fn testcontainers_reads_a_mapped_port() {
    let b = Berth::new();
    let s = b.serve();
    b.run(&["pull", "-q", "busybox"]).ok();
    let script = r#"
import urllib.request
from testcontainers.core.container import DockerContainer
with DockerContainer("busybox").with_command("sh -c 'echo tc-ok > /tmp/i; exec httpd -f -p 80 -h /tmp'").with_exposed_ports(80) as c:
    port = c.get_exposed_port(80)
    host = c.get_container_host_ip()
    import time
    for _ in range(100):
        try:
            print(urllib.request.urlopen(f"http://{host}:{port}/i", timeout=2).read().decode(), end="")
            break
        except Exception:
            time.sleep(0.1)
"#;
    let out = s
        .client("/usr/bin/python3", &["-c", script])
        .env("PYTHONPATH", "/var/cache/berth-fixtures/python")
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = crate::common::Run::from(out);
    assert_eq!(out.ok(), "tc-ok\n", "{}", out.stderr);
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
}

/// The tutorial typed with the real `docker` CLI (the classic builder, as no buildx is
/// installed) against `berth serve`: build, run published, `[1,2,3]`; `docker cp` both
/// ways; and a server stopped with SIGTERM leaves the container running.
#[test]
fn the_tutorial_through_the_docker_cli() {
    let b = Berth::new();
    let s = b.serve();
    let context =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/python-flask");
    let built = s.docker(&[
        "build",
        "--tag",
        "fintechexplained-python-docker",
        context.to_str().unwrap(),
    ]);
    let text = built.ok();
    assert!(
        text.contains("Step 1/8 : FROM python:3.8-slim-buster"),
        "{text}"
    );
    assert!(
        text.contains("Successfully tagged fintechexplained-python-docker:latest"),
        "{text}"
    );
    let port = if std::net::TcpListener::bind("0.0.0.0:5000").is_ok() {
        5000
    } else {
        free_port()
    };
    s.docker(&[
        "run",
        "-d",
        "--name",
        "tutorial",
        "--publish",
        &format!("{port}:5000"),
        "fintechexplained-python-docker",
    ])
    .ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answer = None;
    while answer.is_none() && Instant::now() < deadline {
        answer = http_get(&format!("http://127.0.0.1:{port}/"));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(answer.as_deref().map(str::trim), Some("[1,2,3]"));
    // docker cp in and out (the archive endpoints).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("note.txt"), "copied in\n").unwrap();
    s.docker(&[
        "cp",
        dir.path().join("note.txt").to_str().unwrap(),
        "tutorial:/tmp/note.txt",
    ])
    .ok();
    assert_eq!(
        s.docker(&["exec", "tutorial", "cat", "/tmp/note.txt"]).ok(),
        "copied in\n"
    );
    let out = dir.path().join("main.py");
    s.docker(&["cp", "tutorial:/src/main.py", out.to_str().unwrap()])
        .ok();
    assert!(std::fs::read_to_string(&out).unwrap().contains("[1,2,3]"));
    // SIGTERM stops the server, not the containers its clients made.
    drop(s);
    assert_eq!(
        b.run(&["inspect", "-f", "{{.State.Running}}", "tutorial"])
            .ok(),
        "true\n"
    );
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}/"))
            .as_deref()
            .map(str::trim),
        Some("[1,2,3]")
    );
    b.run(&["rm", "-f", "tutorial"]).ok();
}

/// docker-py beyond containers: images (pull, build, list), networks and volumes.
#[test]
fn docker_py_drives_images_networks_and_volumes() {
    let b = Berth::new();
    let s = b.serve();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox\nRUN echo built-by-py > /made\nCMD [\"cat\", \"/made\"]\n",
    )
    .unwrap();
    let script = format!(
        r#"
import docker
c = docker.from_env()
img = c.images.pull("busybox", tag="latest")
assert "busybox:latest" in img.tags, img.tags
built, logs = c.images.build(path="{}", tag="pybuilt:1")
assert "pybuilt:1" in built.tags, built.tags
assert any("Step 2/3" in l.get("stream", "") for l in logs)
names = sorted(t for i in c.images.list() for t in i.tags)
assert "busybox:latest" in names and "pybuilt:1" in names, names
assert c.containers.run("pybuilt:1", remove=True) == b"built-by-py\n"
net = c.networks.create("pynet", labels={{"made": "py"}})
vol = c.volumes.create("pyvol")
ct = c.containers.run("busybox", ["sh", "-c", "echo on-volume > /v/x; echo written; sleep 300"],
                      detach=True, network="pynet",
                      volumes={{"pyvol": {{"bind": "/v", "mode": "rw"}}}}, name="pyweb")
import time
for _ in range(100):
    if b"written" in ct.logs():
        break
    time.sleep(0.05)
net.reload()
assert [x.name for x in net.containers] == ["pyweb"], net.containers
assert [n.name for n in c.networks.list(filters={{"label": "made=py"}})] == ["pynet"]
ct.remove(force=True)
net.remove()
assert c.containers.run("busybox", ["cat", "/v/x"], volumes={{"pyvol": {{"bind": "/v"}}}}, remove=True) == b"on-volume\n"
vol.remove()
assert "pyvol" not in [v.name for v in c.volumes.list()]
print("ok")
"#,
        dir.path().display()
    );
    let out = s.python(&script);
    assert_eq!(out.ok(), "ok\n", "{}", out.stderr);
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
}

/// A hijacked attach as docker-py makes it: stdin goes in, output comes back raw for a
/// terminal, and Ctrl-P Ctrl-Q (or the client's `detachKeys`) detaches, leaving the
/// container running. Piped stdin reaches a non-terminal container and its output follows.
#[test]
fn attach_streams_stdin_and_detaches_on_the_sequence() {
    use std::io::{Read, Write};
    let b = Berth::new();
    let s = b.serve();
    b.run(&["pull", "-q", "busybox"]).ok();
    let mut echoed = s
        .client(
            "docker",
            &["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo end"],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = echoed.stdin.take().unwrap();
    stdin.write_all(b"piped in\n").unwrap();
    drop(stdin);
    let out = echoed.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped in\nend\n");

    let id = b
        .run(&["create", "-it", "--name", "term", "busybox", "sh"])
        .ok()
        .trim()
        .to_string();
    let mut conn = std::os::unix::net::UnixStream::connect(&s.socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a,x HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert_eq!(
        s.request("POST", &format!("/containers/{id}/start"), b"").0,
        204
    );
    conn.write_all(b"echo typed-$((6*7))\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("typed-42") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "output ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // The client's sequence (Ctrl-A, x) detaches: the connection ends, the shell runs on.
    conn.write_all(&[1, b'x']).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => assert!(Instant::now() < deadline, "not detached"),
            Err(e) => panic!("not detached: {e}"),
        }
    }
    assert_eq!(
        b.run(&["inspect", "-f", "{{.State.Running}}", "term"]).ok(),
        "true\n"
    );
    b.run(&["rm", "-f", "term"]).ok();
}

/// `docker events` sees a container's life, whoever drives it (here the berth CLI), and
/// `--until` ends the stream.
#[test]
fn events_report_a_containers_life() {
    let b = Berth::new();
    let s = b.serve();
    b.run(&["pull", "-q", "busybox"]).ok();
    let watcher = s
        .client(
            "docker",
            &[
                "events",
                "--filter",
                "type=container",
                "--filter",
                "container=evented",
                "--format",
                "{{.Action}} {{.Actor.Attributes.name}}",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    b.run(&[
        "run", "--rm", "--name", "evented", "busybox", "sh", "-c", "exit 3",
    ])
    .fails(3, &[]);
    b.run(&["run", "--rm", "--name", "other", "busybox", "true"])
        .ok();
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &watcher.id().to_string()])
        .status();
    let out = watcher.wait_with_output().unwrap();
    let seen = String::from_utf8_lossy(&out.stdout).into_owned();
    let actions: Vec<&str> = seen.lines().collect();
    // A short container may be created and started between two looks: both are reported.
    assert_eq!(
        actions,
        [
            "create evented",
            "start evented",
            "die evented",
            "destroy evented"
        ],
        "{seen}"
    );
    let until = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .timestamp()
        .to_string();
    let started = Instant::now();
    s.docker(&["events", "--until", &until]).ok();
    assert!(started.elapsed() < Duration::from_secs(5));
}
