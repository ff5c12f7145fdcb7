//! `berth-runc` / `berth runtime`: runc's command line on raw OCI bundles, as containerd's
//! shim and dockerd drive it. Bundles are a busybox-static root filesystem and the spec
//! `berth-runc spec` writes; every test has its own `--root` and container IDs.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::Run;

/// A state root, a bundle and the `berth-runc` symlink to the binary under test.
struct Runc {
    dir: tempfile::TempDir,
}

/// A container ID unique to this test process and `name`.
fn cid(name: &str) -> String {
    format!("runc-{}-{name}", std::process::id())
}

impl Runc {
    fn new() -> Runc {
        let dir = tempfile::Builder::new()
            .prefix("berth-runc-it-")
            .tempdir()
            .unwrap();
        symlink(env!("CARGO_BIN_EXE_berth"), dir.path().join("berth-runc")).unwrap();
        let r = Runc { dir };
        r.make_bundle(&r.bundle());
        r
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    /// A busybox-static rootfs and a default spec (terminal off) in `bundle`.
    fn make_bundle(&self, bundle: &Path) {
        let bin = bundle.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for tool in [
            "sh", "echo", "sleep", "cat", "true", "false", "id", "ls", "kill",
        ] {
            symlink("busybox", bin.join(tool)).unwrap();
        }
        self.run(&["spec", "--bundle", bundle.to_str().unwrap()])
            .ok();
        self.edit_spec(bundle, |s| {
            s["process"]["terminal"] = false.into();
            s["process"]["args"] = serde_json::json!(["sleep", "100"]);
        });
    }

    fn edit_spec(&self, bundle: &Path, f: impl FnOnce(&mut Value)) {
        let path = bundle.join("config.json");
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut spec);
        std::fs::write(&path, spec.to_string()).unwrap();
    }

    fn set_args(&self, args: &[&str]) {
        self.edit_spec(&self.bundle(), |s| {
            s["process"]["args"] = serde_json::json!(args)
        });
    }

    /// `berth-runc --root STATE ARGS`.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.dir.path().join("berth-runc"));
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        self.cmd(args).output().expect("run berth-runc").into()
    }

    /// Runs a command whose container keeps its stdio (`create`, `run -d`): with pipes,
    /// reading them would wait for the container, so stdout and stderr go to files.
    fn run_keeping_stdio(&self, args: &[&str]) -> Run {
        let out = self.dir.path().join("out.txt");
        let err = self.dir.path().join("err.txt");
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .expect("run berth-runc");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(out).unwrap(),
            stderr: std::fs::read_to_string(err).unwrap(),
        }
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(self.run(&["state", id]).ok()).unwrap()
    }

    /// `create` with the bundle and a pid file, returning the pid file's PID.
    fn create(&self, id: &str) -> i32 {
        let pid_file = self.dir.path().join(format!("{id}.pid"));
        self.run_keeping_stdio(&[
            "create",
            "--bundle",
            self.bundle().to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            id,
        ])
        .ok();
        std::fs::read_to_string(pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits up to 5 s for the container's status to become `want`.
    fn wait_status(&self, id: &str, want: &str) {
        for _ in 0..100 {
            if self.state(id)["status"] == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{id} never became {want}: {}", self.state(id));
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        // Leave no containers behind if an assertion failed midway.
        let ids = self.run(&["list", "-q"]).stdout;
        for id in ids.lines() {
            let _ = self.run(&["delete", "--force", id]);
        }
    }
}

/// Cgroup directories named after `id` anywhere in the hierarchy's first levels.
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    let out = Command::new("find")
        .args(["/sys/fs/cgroup", "-maxdepth", "4", "-type", "d", "-name"])
        .arg(format!("*{id}*"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    let r = Runc::new();
    let id = cid("life");
    let pid = r.create(&id);
    let s = r.state(&id);
    assert_eq!(s["status"], "created", "{s}");
    assert_eq!(s["pid"], pid);
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["bundle"], r.bundle().to_str().unwrap());
    assert!(s["ociVersion"].as_str().unwrap().starts_with("1."));
    assert!(s["annotations"].is_object());

    r.run(&["start", &id]).ok();
    r.wait_status(&id, "running");
    // The init is the container's sleep, in its own PID namespace.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"sleep\x00100"), "{cmdline:?}");

    // list: table, json, quiet.
    let table = r.run(&["list"]).ok().to_string();
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&id) && table.contains("running"), "{table}");
    let json: Value = serde_json::from_str(r.run(&["list", "--format", "json"]).ok()).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(r.run(&["list", "-q"]).ok().trim(), id);

    // ps: the init's PID.
    let pids: Vec<i32> =
        serde_json::from_str(r.run(&["ps", "--format", "json", &id]).ok()).unwrap();
    assert_eq!(pids, vec![pid]);
    let ps = r.run(&["ps", &id]).ok().to_string();
    assert!(ps.lines().next().unwrap().contains("PID"), "{ps}");
    assert!(ps.contains("sleep 100"), "{ps}");

    // delete refuses a running container without --force.
    r.run(&["delete", &id])
        .fails(1, &["cannot delete container", "not stopped"]);

    r.run(&["kill", &id, "KILL"]).ok();
    r.wait_status(&id, "stopped");
    assert_eq!(r.state(&id)["pid"], 0);
    r.run(&["kill", &id, "TERM"])
        .fails(1, &["container not running"]);
    r.run(&["delete", &id]).ok();
    r.run(&["state", &id])
        .fails(1, &["container does not exist"]);
    assert!(!r.root().join(&id).exists());
    assert!(cgroups_of(&id).is_empty(), "{:?}", cgroups_of(&id));
}

#[test]
fn run_exits_with_the_containers_status() {
    let r = Runc::new();
    r.set_args(&["sh", "-c", "echo hello from $(cat /proc/self/comm); exit 7"]);
    let id = cid("run");
    let out = r.run(&["run", "--bundle", r.bundle().to_str().unwrap(), &id]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(out.stdout, "hello from cat\n");
    // Deleted after the foreground run.
    assert!(!r.root().join(&id).exists());
    r.set_args(&["true"]);
    let out = r.run(&["run", "-b", r.bundle().to_str().unwrap(), &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Output to /dev/null works (libcontainer's reopen bug is worked around).
    r.set_args(&["sh", "-c", "echo discarded && exit 3"]);
    let status = r
        .cmd(&["run", "-b", r.bundle().to_str().unwrap(), &id])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
}

#[test]
fn run_detached_then_exec_pause_resume_update_events() {
    let r = Runc::new();
    let id = cid("exec");
    let pid_file = r.dir.path().join("run.pid");
    r.run_keeping_stdio(&[
        "run",
        "-d",
        "-b",
        r.bundle().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ])
    .ok();
    r.wait_status(&id, "running");

    // exec, flag form: environment, cwd, user, exit status.
    let out = r.run(&[
        "exec",
        "-e",
        "GREETING=hi",
        "--cwd",
        "/bin",
        "-u",
        "1000:1001",
        &id,
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -u):$(id -g); exit 5",
    ]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(out.stdout, "hi /bin 1000:1001\n");

    // exec --process, detached with a pid file.
    let process = r.dir.path().join("process.json");
    std::fs::write(
        &process,
        serde_json::json!({
            "args": ["sleep", "50"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0}, "terminal": false
        })
        .to_string(),
    )
    .unwrap();
    let exec_pid = r.dir.path().join("exec.pid");
    r.run_keeping_stdio(&[
        "exec",
        "--process",
        process.to_str().unwrap(),
        "--detach",
        "--pid-file",
        exec_pid.to_str().unwrap(),
        &id,
    ])
    .ok();
    let exec_pid: i32 = std::fs::read_to_string(&exec_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pids: Vec<i32> = serde_json::from_str(r.run(&["ps", "-f", "json", &id]).ok()).unwrap();
    assert!(pids.contains(&exec_pid), "{pids:?} lacks {exec_pid}");
    assert_eq!(pids.len(), 2, "{pids:?}");

    // pause / resume.
    r.run(&["pause", &id]).ok();
    assert_eq!(r.state(&id)["status"], "paused");
    r.run(&["exec", &id, "true"]).fails(1, &["paused"]);
    r.run(&["resume", &id]).ok();
    assert_eq!(r.state(&id)["status"], "running");

    // update: a pids limit through the cgroup manager; events --stats shows it.
    r.run(&["update", "--pids-limit", "77", &id]).ok();
    let ev: Value = serde_json::from_str(r.run(&["events", "--stats", &id]).ok()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    assert_eq!(ev["data"]["pids"]["limit"], 77, "{ev}");
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 2, "{ev}");

    // kill --all reaches the exec'd process too.
    r.run(&["kill", "--all", &id, "9"]).ok();
    r.wait_status(&id, "stopped");
    r.run(&["delete", &id]).ok();
    assert!(cgroups_of(&id).is_empty(), "{:?}", cgroups_of(&id));
}

#[test]
fn bad_inputs_get_runcs_messages_and_leave_nothing() {
    let r = Runc::new();
    let bundle = r.bundle();
    let b = bundle.to_str().unwrap();

    // Unknown container.
    for args in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope"],
        vec!["delete", "nope"],
        vec!["pause", "nope"],
        vec!["exec", "nope", "true"],
    ] {
        r.run(&args).fails(1, &["container does not exist"]);
    }
    r.run(&["delete", "--force", "nope"]).ok();

    // Malformed config.json.
    let id = cid("bad");
    let good = std::fs::read(bundle.join("config.json")).unwrap();
    std::fs::write(bundle.join("config.json"), b"{\"ociVersion\": \"1.0.2\", ").unwrap();
    r.run(&["create", "-b", b, &id])
        .fails(1, &["config.json", "invalid runtime spec"]);
    // A version this runtime does not implement.
    std::fs::write(bundle.join("config.json"), &good).unwrap();
    r.edit_spec(&bundle, |s| s["ociVersion"] = "2.0.0".into());
    r.run(&["create", "-b", b, &id])
        .fails(1, &["unsupported runtime spec version", "2.0.0"]);
    // A missing rootfs.
    std::fs::write(bundle.join("config.json"), &good).unwrap();
    r.edit_spec(&bundle, |s| s["root"]["path"] = "missing".into());
    r.run(&["create", "-b", b, &id])
        .fails(1, &["rootfs", "does not exist"]);
    // No config.json at all.
    r.run(&["create", "-b", r.dir.path().to_str().unwrap(), &id])
        .fails(1, &["JSON specification file", "not found"]);
    // A process that cannot start: create fails and cleans up after itself.
    std::fs::write(bundle.join("config.json"), &good).unwrap();
    r.set_args(&["/no/such/program"]);
    let out = r.run_keeping_stdio(&["create", "-b", b, &id]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!r.root().join(&id).exists());
    assert!(cgroups_of(&id).is_empty(), "{:?}", cgroups_of(&id));
    assert_eq!(r.run(&["list", "-q"]).ok(), "");

    // A second create with the same ID.
    r.set_args(&["sleep", "100"]);
    r.create(&id);
    r.run_keeping_stdio(&["create", "-b", b, &id])
        .fails(1, &[&format!("container with id exists: {id}")]);
    // An unknown signal.
    r.run(&["kill", &id, "SIGFOO"])
        .fails(1, &["unknown signal", "SIGFOO"]);
    r.run(&["delete", &id]).ok();
    assert!(cgroups_of(&id).is_empty(), "{:?}", cgroups_of(&id));

    // Unsupported verbs say so.
    r.run(&["checkpoint", &id]).fails(1, &["not supported"]);
    r.run(&["spec", "--bundle", b])
        .fails(1, &["config.json exists"]);
}

#[test]
fn json_log_lines_for_the_shim() {
    let r = Runc::new();
    let log = r.dir.path().join("log.json");
    let out = r.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "ghost",
    ]);
    out.fails(1, &["container does not exist"]);
    let line: Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], "container does not exist");
    assert!(line["time"].as_str().unwrap().contains('T'));
    // Without --log, logrus' text line on stderr.
    let out = r.run(&["state", "ghost"]);
    out.fails(1, &["level=error msg=\"container does not exist\""]);
}

#[test]
fn berth_runtime_subcommand_and_features() {
    let r = Runc::new();
    let out: Run = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["runtime", "--root"])
        .arg(r.root())
        .arg("features")
        .output()
        .unwrap()
        .into();
    let f: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["linux"]["namespaces"].as_array().unwrap().len() >= 6);
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    let spec: Value =
        serde_json::from_slice(&std::fs::read(r.bundle().join("config.json")).unwrap()).unwrap();
    assert!(spec["ociVersion"].as_str().unwrap().starts_with("1."));
    assert_eq!(spec["root"]["path"], "rootfs");
    r.run(&["spec", "--rootless", "-b", "/tmp"])
        .fails(1, &["not supported"]);
}

#[test]
fn terminal_goes_over_the_console_socket() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::net::UnixListener;
    let r = Runc::new();
    r.edit_spec(&r.bundle(), |s| {
        s["process"]["terminal"] = true.into();
        s["process"]["args"] = serde_json::json!(["sh", "-c", "tty; sleep 100"]);
    });
    let id = cid("tty");
    // Without a console socket, a terminal container cannot be created detached.
    r.run_keeping_stdio(&["create", "-b", r.bundle().to_str().unwrap(), &id])
        .fails(1, &["console"]);
    assert!(!r.root().join(&id).exists());

    let sock = r.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(r) = c {
                fds.extend(r);
            }
        }
        assert_eq!(fds.len(), 1, "one fd over SCM_RIGHTS");
        // SAFETY: the fd was just received and is owned by nothing else.
        unsafe { OwnedFd::from_raw_fd(fds[0]) }
    });
    r.run_keeping_stdio(&[
        "create",
        "-b",
        r.bundle().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ])
    .ok();
    let master = receiver.join().unwrap();
    r.run(&["start", &id]).ok();
    let mut tty = std::fs::File::from(master);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    use std::io::Read;
    while !String::from_utf8_lossy(&got).contains('\n') {
        let n = tty.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&got).starts_with("/dev/pts/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    r.run(&["delete", "--force", &id]).ok();
}

/// A containerd of the test's own (Debian's 1.6, its own root, state and socket), stopped
/// when dropped.
struct Containerd {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-ctd-")
            .tempdir()
            .unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("config.toml"),
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{0}/ctd.sock\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n",
                p.display()
            ),
        )
        .unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(p.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p.join("containerd.log")).unwrap())
            .spawn()
            .expect("start containerd (Debian package containerd)");
        let c = Containerd { child, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !c.ctr(&["version"]).code.eq(&0) {
            assert!(
                std::time::Instant::now() < deadline,
                "containerd did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        c
    }

    fn ctr(&self, args: &[&str]) -> Run {
        Command::new("ctr")
            .arg("-a")
            .arg(self.dir.path().join("ctd.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Shims outlive containerd: they go with their tasks, which the test removed.
    }
}

/// The proof with a real peer: containerd's runc shim drives `berth-runc` (its
/// `--runc-binary`) for run, exit codes, exec, pause/resume, metrics and kill.
#[test]
fn containerd_runs_containers_through_berth_runc() {
    let b = crate::common::Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let r = Runc::new();
    let c = Containerd::start();
    let archive = r.dir.path().join("busybox.tar");
    b.run(&["save", "-o", archive.to_str().unwrap(), "busybox"])
        .ok();
    c.ctr(&["image", "import", archive.to_str().unwrap()]).ok();
    let runc = r.dir.path().join("berth-runc");
    let runc = runc.to_str().unwrap();
    let image = "docker.io/library/busybox:latest";
    let task = |name: &str| format!("ctd-{}-{name}", std::process::id());
    let hi = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        runc,
        image,
        &task("hi"),
        "echo",
        "hi",
    ]);
    assert_eq!(hi.ok(), "hi\n");
    let code = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        runc,
        image,
        &task("code"),
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(code.code, 7, "{}", code.stderr);
    // A terminal (the shim asks for a console socket), driven through a pty by `script`.
    let tty = Command::new("script")
        .arg("-eqc")
        .arg(format!(
            "ctr -a {} run --rm -t --runc-binary {runc} {image} {} sh -c 'tty; exit 3'",
            c.dir.path().join("ctd.sock").display(),
            task("tty")
        ))
        .arg("/dev/null")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        tty.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&tty.stderr)
    );
    assert!(String::from_utf8_lossy(&tty.stdout).contains("/dev/pts/"));
    let bg = task("bg");
    c.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        runc,
        image,
        &bg,
        "sleep",
        "300",
    ])
    .ok();
    let exec = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &bg,
        "sh",
        "-c",
        "echo in-exec; exit 4",
    ]);
    assert_eq!((exec.code, exec.stdout.as_str()), (4, "in-exec\n"));
    c.ctr(&["task", "pause", &bg]).ok();
    assert!(c.ctr(&["task", "ls"]).ok().contains("PAUSED"));
    c.ctr(&["task", "resume", &bg]).ok();
    assert!(c
        .ctr(&["task", "metrics", &bg])
        .ok()
        .contains("memory.usage_in_bytes"));
    c.ctr(&["task", "kill", "-s", "KILL", &bg]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c.ctr(&["task", "ls"]).ok().contains("RUNNING") {
        assert!(
            std::time::Instant::now() < deadline,
            "the task did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    c.ctr(&["task", "rm", &bg]).ok();
    c.ctr(&["container", "rm", &bg]).ok();
}

/// The test dockerd's bridge address: a subnet none of berth's networks takes.
const DOCKERD_BRIDGE: &str = "10.213.7.1/24";

/// Debian's dockerd (20.10) with `--add-runtime berth=<berth-runc>`, on a socket, data root
/// and exec root of the test's own, with a bridge of the test's own (no iptables:
/// published ports go through docker-proxy, so the host's firewall is untouched):
/// `docker run --runtime berth` for output, exit codes, `-d -p` with a server answering on
/// the published port (dockerd's network hook runs under berth-runc), exec, logs, stats and
/// stop; and the same capability and seccomp lines as under `--runtime runc`.
#[test]
fn dockerd_runs_containers_through_berth_runc() {
    let b = crate::common::Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let r = Runc::new();
    let d = r.dir.path();
    let archive = d.join("busybox.tar");
    b.run(&["save", "-o", archive.to_str().unwrap(), "busybox"])
        .ok();
    let socket = d.join("docker.sock");
    // Its own bridge, never the host's docker0 (a Docker installed here keeps its own).
    let bridge = format!("bdk{}", std::process::id() % 1_000_000);
    for args in [
        vec!["link", "add", &bridge, "type", "bridge"],
        vec!["addr", "add", DOCKERD_BRIDGE, "dev", &bridge],
        vec!["link", "set", &bridge, "up"],
    ] {
        assert!(Command::new("ip").args(&args).status().unwrap().success());
    }
    let mut dockerd = Command::new("dockerd")
        .args(["--iptables=false", "--bridge", &bridge, "--add-runtime"])
        .arg(format!("berth={}", d.join("berth-runc").display()))
        .arg("--data-root")
        .arg(d.join("data"))
        .arg("--exec-root")
        .arg(d.join("exec"))
        .arg("--pidfile")
        .arg(d.join("docker.pid"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("dockerd.log")).unwrap())
        .spawn()
        .expect("start dockerd (Debian package docker.io)");
    let docker = |args: &[&str]| -> Run {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .env("DOCKER_CONFIG", d.join("docker-cli"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while docker(&["info"]).code != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "dockerd did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        docker(&["load", "-i", archive.to_str().unwrap()]).ok();
        let run = |args: &[&str]| docker(&[&["run", "--runtime", "berth", "--rm"], args].concat());
        assert_eq!(run(&["busybox", "echo", "hi"]).ok(), "hi\n");
        assert_eq!(run(&["busybox", "sh", "-c", "exit 5"]).code, 5);
        let status = |runtime: &str| {
            docker(&[
                "run",
                "--runtime",
                runtime,
                "--rm",
                "busybox",
                "grep",
                "-E",
                "^(CapEff|CapBnd|Seccomp):",
                "/proc/self/status",
            ])
            .ok()
            .to_string()
        };
        assert_eq!(status("berth"), status("runc"));
        // -it through a pty (`script`), as a user at a terminal.
        let tty = Command::new("script")
            .arg("-eqc")
            .arg("docker run --runtime berth --rm -it busybox sh -c 'tty; exit 2'")
            .arg("/dev/null")
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .env("DOCKER_CONFIG", d.join("docker-cli"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            tty.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&tty.stderr)
        );
        assert!(String::from_utf8_lossy(&tty.stdout).contains("/dev/pts/"));
        let port = crate::common::free_port().to_string();
        docker(&[
            "run",
            "--runtime",
            "berth",
            "-d",
            "--name",
            "web",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "busybox",
            "sh",
            "-c",
            "echo served > /tmp/i; echo started; exec httpd -f -p 80 -h /tmp",
        ])
        .ok();
        assert!(docker(&["port", "web"])
            .ok()
            .contains(&format!("127.0.0.1:{port}")));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut answer = None;
        while answer.is_none() && std::time::Instant::now() < deadline {
            answer = crate::common::http_get(&format!("http://127.0.0.1:{port}/i"));
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(answer.as_deref(), Some("served\n"));
        assert_eq!(docker(&["logs", "web"]).ok(), "started\n");
        let exec = docker(&["exec", "web", "sh", "-c", "echo in-exec; exit 6"]);
        assert_eq!((exec.code, exec.stdout.as_str()), (6, "in-exec\n"));
        assert!(docker(&["stats", "--no-stream", "web"])
            .ok()
            .contains("web"));
        docker(&["stop", "-t", "1", "web"]).ok();
        docker(&["rm", "web"]).ok();
    }));
    let _ = Command::new("kill")
        .args(["-TERM", &dockerd.id().to_string()])
        .status();
    let _ = dockerd.wait();
    let _ = Command::new("ip").args(["link", "del", &bridge]).status();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

/// The known escapes, against the runc command line itself (the same runtime code as
/// `berth run`): a working directory through a leaked descriptor (CVE-2024-21626) reads
/// nothing of the host, processes inside cannot write the host's binary through
/// /proc/PID/exe while it execs into them (CVE-2019-5736), and an exec'd process holds no
/// descriptor beyond its stdio.
#[test]
fn runc_mode_keeps_the_known_escapes_closed() {
    let r = Runc::new();
    let host_name = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    for n in 3..10 {
        let id = cid(&format!("fd{n}"));
        r.edit_spec(&r.bundle(), |s| {
            s["process"]["cwd"] = format!("/proc/self/fd/{n}").into();
            s["process"]["args"] = serde_json::json!(["cat", "../../../../../etc/hostname"]);
        });
        let out = r.run(&["run", "--bundle", r.bundle().to_str().unwrap(), &id]);
        assert!(
            host_name.trim().is_empty() || !out.stdout.contains(host_name.trim()),
            "cwd /proc/self/fd/{n} read the host's hostname"
        );
        let _ = r.run(&["delete", "--force", &id]);
    }
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth"));
    let before = std::fs::metadata(exe).unwrap();
    let id = cid("evil");
    r.edit_spec(&r.bundle(), |s| {
        s["root"]["readonly"] = false.into();
        s["process"]["cwd"] = "/".into();
        s["process"]["args"] = serde_json::json!([
            "sh", "-c",
            "while true; do for p in /proc/[0-9]*; do echo pwned 2>/dev/null >> $p/exe && echo WROTE $p >> /wrote; done; done"
        ]);
    });
    r.run_keeping_stdio(&["run", "-d", "--bundle", r.bundle().to_str().unwrap(), &id])
        .ok();
    for _ in 0..20 {
        r.run(&["exec", &id, "true"]).ok();
    }
    // The loop does run and can write where it may.
    r.run(&["exec", &id, "sh", "-c", "echo probe > /probe && cat /probe"])
        .ok();
    let wrote = r.run(&["exec", &id, "sh", "-c", "cat /wrote 2>/dev/null; true"]);
    assert_eq!(wrote.ok(), "", "a process wrote through /proc/PID/exe");
    let fds = r.run(&["exec", &id, "ls", "/proc/self/fd"]);
    let n: Vec<&str> = fds.ok().split_whitespace().collect();
    assert!(n.len() <= 4, "{n:?}");
    let after = std::fs::metadata(exe).unwrap();
    assert_eq!(
        (before.len(), before.modified().unwrap()),
        (after.len(), after.modified().unwrap())
    );
    r.run(&["delete", "--force", &id]).ok();
}

/// CVE-2021-30465: every mount destination is resolved inside the root filesystem. The
/// image's `/evil` and `/evil2` are symlinks out of it (absolute, and by `..`) to paths that
/// exist inside the root but not on the host; mounts at `/evil/inside` and `/evil2` must
/// land inside the container (where they show), and nothing may be made at the host paths
/// the links name. Through a dangling link, the start is refused or stays inside too.
#[test]
fn mount_destinations_resolve_inside_the_root() {
    let r = Runc::new();
    let outside = tempfile::Builder::new()
        .prefix("berth-30465-")
        .tempdir()
        .unwrap();
    // Host paths that must never appear; the same paths exist inside the root.
    let host_a = outside.path().join("a");
    let host_b = outside.path().join("b");
    let rootfs = r.bundle().join("rootfs");
    let in_root = |p: &Path| rootfs.join(p.strip_prefix("/").unwrap());
    std::fs::create_dir_all(in_root(&host_a)).unwrap();
    std::fs::create_dir_all(in_root(&host_b)).unwrap();
    symlink(&host_a, rootfs.join("evil")).unwrap();
    let relative = format!(
        "{}{}",
        "../".repeat(12),
        host_b.display().to_string().trim_start_matches('/')
    );
    symlink(&relative, rootfs.join("evil2")).unwrap();
    let source = r.dir.path().join("bind-source");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("marker"), "from the bind\n").unwrap();
    r.edit_spec(&r.bundle(), |s| {
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts.push(serde_json::json!({
            "destination": "/evil/inside", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev"]
        }));
        mounts.push(serde_json::json!({
            "destination": "/evil2", "type": "bind", "source": source.to_str().unwrap(),
            "options": ["rbind", "ro"]
        }));
    });
    r.set_args(&[
        "sh",
        "-c",
        &format!(
            "grep -c ' {}/inside tmpfs ' /proc/self/mounts; cat {}/marker",
            host_a.display(),
            host_b.display()
        ),
    ]);
    let bundle = r.bundle();
    let out = r.run_keeping_stdio(&["run", "--bundle", bundle.to_str().unwrap(), &cid("30465")]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "1\nfrom the bind\n"),
        "{}",
        out.stderr
    );
    assert!(in_root(&host_a).join("inside").is_dir());
    // Dangling inside the root: nothing to mount on but what would be made.
    std::fs::remove_dir_all(in_root(&host_b)).unwrap();
    let out = r.run_keeping_stdio(&["run", "--bundle", bundle.to_str().unwrap(), &cid("30465b")]);
    assert!(
        out.code != 0 || out.stdout == "1\nfrom the bind\n",
        "{out:?}"
    );
    assert!(!host_a.exists(), "a mount destination was made on the host");
    assert!(!host_b.exists(), "a mount destination was made on the host");
    assert_eq!(r.run(&["list", "-q"]).ok(), "");
}

/// CVE-2025-31133: masked files are covered with a verified `/dev/null`. A bundle whose
/// `/dev` is the image's own (no tmpfs) with `/dev/null` a symlink to the kernel's
/// core_pattern must not get core_pattern bound over `/proc/kcore` (writable from inside, an
/// escape): the runtime refuses to start it, or masks with a real null device.
#[test]
fn masked_paths_refuse_a_fake_dev_null() {
    let r = Runc::new();
    let rootfs = r.bundle().join("rootfs");
    std::fs::create_dir_all(rootfs.join("dev")).unwrap();
    symlink("/proc/sys/kernel/core_pattern", rootfs.join("dev/null")).unwrap();
    r.edit_spec(&r.bundle(), |s| {
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/dev");
        s["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]);
    });
    r.set_args(&["sh", "-c", "cat /proc/kcore; echo end"]);
    let id = cid("31133");
    let out = r.run_keeping_stdio(&["run", "--bundle", r.bundle().to_str().unwrap(), &id]);
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert!(
        !out.stdout.contains(pattern.trim()),
        "core_pattern was bound over /proc/kcore: {out:?}"
    );
    assert!(
        out.code != 0 || out.stdout == "end\n",
        "neither refused nor masked with a null device: {out:?}"
    );
    // Refused or run, it leaves nothing behind.
    assert_eq!(r.run(&["list", "-q"]).ok(), "");
}
