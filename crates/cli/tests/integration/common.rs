//! The harness every integration test goes through: fixture images and real registries
//! (started once per test binary), and a `berth` with a store of its own per test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The registries of `tests/fixtures/fixtures.py serve`, seeded with the fixture images.
pub struct Registries {
    /// Plain HTTP registry, also the docker.io mirror.
    pub plain: String,
    /// Registry behind htpasswd basic auth.
    pub basic: String,
    /// Registry behind bearer-token auth.
    pub token: String,
    /// Storage directories by registry kind.
    pub storage: HashMap<String, PathBuf>,
    _serve: Mutex<(Child, ChildStdin)>,
}

pub const USER: &str = "testuser";
pub const PASSWORD: &str = "testpassword";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures_py() -> PathBuf {
    repo_root().join("tests/fixtures/fixtures.py")
}

/// Starts (once) and returns the registries.
pub fn registries() -> &'static Registries {
    static R: OnceLock<Registries> = OnceLock::new();
    R.get_or_init(start_registries)
}

fn start_registries() -> Registries {
    let out = Command::new("/usr/bin/python3")
        .arg(fixtures_py())
        .arg("build")
        .stderr(Stdio::inherit())
        .output()
        .expect("run fixtures.py build");
    assert!(out.status.success(), "fixtures.py build failed");
    let _: HashMap<String, PathBuf> = serde_json::from_slice(&out.stdout).expect("build JSON");
    let state = std::env::temp_dir().join(format!("berth-it-registries-{}", std::process::id()));
    std::fs::create_dir_all(&state).unwrap();
    let ready = state.join("ready.json");
    // serve runs until its stdin closes, which happens when this test process exits.
    let mut child = Command::new("/usr/bin/python3")
        .arg(fixtures_py())
        .args(["serve", "--state-dir"])
        .arg(&state)
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fixtures.py serve");
    let stdin = child.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            Instant::now() < deadline,
            "registries did not start in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let info: Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    let s = |k: &str| info[k].as_str().unwrap().to_string();
    let storage = info["storage"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), PathBuf::from(v.as_str().unwrap())))
        .collect();
    let regs = Registries {
        plain: s("plain"),
        basic: s("basic"),
        token: s("token"),
        storage,
        _serve: Mutex::new((child, stdin)),
    };
    seed(&regs.plain, None, None);
    let creds = format!("{USER}:{PASSWORD}");
    seed(&regs.basic, Some(&creds), Some("busybox"));
    seed(&regs.token, Some(&creds), Some("busybox"));
    regs
}

fn seed(registry: &str, creds: Option<&str>, only: Option<&str>) {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(fixtures_py())
        .args(["seed", "--registry", registry])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    if let Some(o) = only {
        cmd.args(["--only", o]);
    }
    assert!(cmd.status().unwrap().success(), "seeding {registry} failed");
}

/// A `berth` with its own store, config and credentials, pointed at the fixture mirror.
pub struct Berth {
    pub dir: tempfile::TempDir,
}

/// What a command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts exit code `code` and that stderr mentions every one of `needles`.
    #[track_caller]
    pub fn fails(&self, code: i32, needles: &[&str]) -> &str {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr lacks {n:?}:\n{}",
                self.stderr
            );
        }
        &self.stderr
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Berth {
    /// A fresh store whose daemon.json names the fixture registry as docker.io mirror.
    pub fn new() -> Berth {
        let regs = registries();
        let b = Berth::bare();
        b.write_config(&format!(
            r#"{{"registry-mirrors": ["http://{}"]}}"#,
            regs.plain
        ));
        b
    }

    /// A fresh store with no daemon.json at all.
    pub fn bare() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        Berth { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("daemon.json")
    }

    pub fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker/config.json")
    }

    pub fn write_config(&self, json: &str) {
        std::fs::write(self.config_path(), json).unwrap();
    }

    /// A `berth` command with this store's environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.args(args)
            .env("BERTH_ROOT", self.root())
            .env("BERTH_CONFIG", self.config_path())
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env_remove("DOCKER_DEFAULT_PLATFORM")
            .stdin(Stdio::null());
        c
    }

    /// Runs `berth ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd(args).output().expect("run berth").into()
    }

    /// Runs `berth ARGS` with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out.into()
    }

    /// `inspect` of one image as JSON.
    pub fn inspect(&self, name: &str) -> Value {
        let out = self.run(&["image", "inspect", name]);
        let v: Value = serde_json::from_str(out.ok()).unwrap();
        v[0].clone()
    }

    /// The top (first) lower directory of an image: its last layer's tree.
    pub fn lowerdirs(&self, name: &str) -> Vec<PathBuf> {
        let v = self.inspect(name);
        v["GraphDriver"]["Data"]["LowerDir"]
            .as_str()
            .unwrap()
            .split(':')
            .map(PathBuf::from)
            .collect()
    }

    /// Number of files in a store directory (`blobs/sha256`, `snapshots`).
    pub fn count(&self, sub: &str) -> usize {
        std::fs::read_dir(self.root().join(sub))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// A test that fails leaves no container running: its store is about to be deleted, and
/// its containers' namespaces, leases and published ports would outlive it.
impl Drop for Berth {
    fn drop(&mut self) {
        if !self.root().join("containers").exists() {
            return;
        }
        let ids = self.run(&["ps", "-aq", "--no-trunc"]).stdout;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            self.run(&args);
        }
        if self.root().join("networks.json").exists() {
            self.run(&["network", "prune", "-f"]);
        }
    }
}

/// Packs a directory into a tarball with GNU tar (`-z` when the name ends in `.gz`).
pub fn tar_dir(dir: &Path, tarball: &Path) {
    let flags = match tarball.extension().and_then(|e| e.to_str()) {
        Some("gz") => "-czf",
        Some("bz2") => "-cjf",
        Some("xz") => "-cJf",
        _ => "-cf",
    };
    let ok = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg(flags)
        .arg(tarball)
        .arg(".")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar of {}", dir.display());
}

/// sha256 of a file's bytes, hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// The body of an HTTP GET with curl (5 s at most), `None` if it failed.
/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn http_get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `berth serve` of a test's store on a socket of its own, and the real clients pointed at
/// it (`DOCKER_HOST`). Stopped (SIGTERM) when dropped.
pub struct Served {
    child: Child,
    /// The API socket.
    pub socket: PathBuf,
    log: PathBuf,
    docker_config: PathBuf,
}

impl Berth {
    /// Starts `berth serve` on this store and waits for its socket.
    pub fn serve(&self) -> Served {
        let socket = self.dir.path().join("api.sock");
        let log = self.dir.path().join("serve.log");
        let child = self
            .cmd(&["serve", "-H", &format!("unix://{}", socket.display())])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start berth serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "berth serve did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Served {
            child,
            socket,
            log,
            docker_config: self.dir.path().join("docker"),
        }
    }
}

impl Served {
    /// `DOCKER_HOST` for this server.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A client command (`docker`, `python3`, `docker-compose`) aimed at this server.
    pub fn client(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CLI_HINTS", "false")
            .env("COMPOSE_DOCKER_CLI_BUILD", "0");
        c
    }

    /// Runs the real `docker` CLI against this server.
    pub fn docker(&self, args: &[&str]) -> Run {
        self.client("docker", args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
            .into()
    }

    /// Runs a Python script with Debian's docker-py (`import docker`) against this server.
    pub fn python(&self, script: &str) -> Run {
        self.client("/usr/bin/python3", &["-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("run python3")
            .into()
    }

    /// One raw HTTP/1.1 request on the socket: (status, body).
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(body);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// What the server printed (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
