//! The verbs on containers: create, start, run, state, kill, delete, list, ps, pause,
//! resume and exec, each a few libcontainer calls with runc's checks and messages around
//! them.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::args::{Create, Delete, Exec, Format, Global, Kill, List, Ps, Run};
use super::Error;

/// The state directory of container `id`, after checking the ID is a plain name.
fn container_dir(g: &Global, id: &str) -> Result<PathBuf, Error> {
    let valid = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if !valid {
        return Err(Error::InvalidId(id.to_string()));
    }
    Ok(g.root.join(id))
}

/// Loads container `id`, or runc's "container does not exist".
pub(super) fn load(g: &Global, id: &str) -> Result<Container, Error> {
    let dir = container_dir(g, id)?;
    if !dir.join("state.json").exists() {
        return Err(Error::NotExist);
    }
    Container::load(dir).map_err(Error::runtime("loading container state"))
}

/// `--root`, made private to root if missing.
fn ensure_root(g: &Global) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&g.root)
        .map_err(|source| Error::Io {
            what: "creating state root",
            path: g.root.clone(),
            source,
        })
}

/// A relative path made absolute against the current directory (libcontainer records
/// paths as given, and runc's are relative to where it was called).
fn absolute(p: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(p).map_err(|source| Error::Io {
        what: "resolving",
        path: p.to_path_buf(),
        source,
    })
}

/// Checks the bundle the way runc reports problems, before libcontainer makes anything
/// (so a bad bundle leaves nothing behind): config.json present and a runtime spec of
/// version 1.x, root.path present. Returns the bundle's absolute path.
/// Returns the bundle's absolute path and the spec's read-only cgroup mounts.
fn check_bundle(bundle: &Path) -> Result<(PathBuf, Vec<PathBuf>), Error> {
    let bundle = absolute(bundle)?;
    let path = bundle.join("config.json");
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NoSpec(path)),
        Err(source) => {
            return Err(Error::Io {
                what: "reading",
                path,
                source,
            })
        }
    };
    let spec: libcontainer::oci_spec::runtime::Spec =
        serde_json::from_slice(&text).map_err(|source| Error::BadSpec {
            path: path.clone(),
            source,
        })?;
    if !spec.version().starts_with("1.") {
        return Err(Error::Version {
            path,
            version: spec.version().clone(),
        });
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::Invalid(format!("{}: no root in the spec", path.display())))?;
    let rootfs = bundle.join(root.path());
    if !rootfs.is_dir() {
        return Err(Error::NoRootfs(rootfs));
    }
    Ok((bundle, crate::seal::read_only_cgroup_mounts(&spec)))
}

/// Applies the spec's read-only cgroup mounts to a just-created container (see
/// [`crate::seal`]); on failure the container goes, so nothing half-made stays.
fn seal(mut container: Container, read_only: &[PathBuf]) -> Result<Container, Error> {
    let Some(pid) = container.pid() else {
        return Ok(container);
    };
    match crate::seal::read_only_in(pid.as_raw(), read_only) {
        Ok(()) => Ok(container),
        Err(e) => {
            let _ = container.delete(true);
            Err(Error::Runtime {
                op: "create",
                message: format!("making the cgroup mount read-only: {e}"),
            })
        }
    }
}

/// libcontainer's builder for `id` under `--root`, with runc's create/exec flags.
fn builder(
    g: &Global,
    id: &str,
    pid_file: Option<&Path>,
    console_socket: Option<&Path>,
    preserve_fds: i32,
) -> Result<ContainerBuilder, Error> {
    ensure_root(g)?;
    crate::signals::default_for_children();
    let pid_file = pid_file.map(absolute).transpose()?;
    let console_socket = console_socket.map(absolute).transpose()?;
    ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(&g.root)
        .and_then(|b| b.with_pid_file(pid_file))
        .map(|b| {
            b.with_console_socket(console_socket)
                .with_preserved_fds(preserve_fds)
        })
        .map_err(Error::runtime("create"))
}

/// Creates the container of `a` (its init waits for `start`); `detach` as libcontainer
/// means it (a console socket requires it).
fn create_container(g: &Global, a: &Create, detach: bool) -> Result<Container, Error> {
    let dir = container_dir(g, &a.id)?;
    if dir.exists() {
        return Err(Error::Exists(a.id.clone()));
    }
    let (bundle, read_only) = check_bundle(&a.bundle)?;
    let container = builder(
        g,
        &a.id,
        a.pid_file.as_deref(),
        a.console_socket.as_deref(),
        a.preserve_fds,
    )?
    .as_init(&bundle)
    .with_systemd(false)
    .with_detach(detach)
    .with_no_pivot(a.no_pivot)
    .build()
    .map_err(|e| match e {
        LibcontainerError::Exist => Error::Exists(a.id.clone()),
        e => Error::runtime("create")(e),
    })?;
    seal(container, &read_only)
}

/// `create`: the init process is left waiting for `start`.
pub fn create(g: &Global, a: &Create) -> Result<(), Error> {
    create_container(g, a, true).map(drop)
}

/// `start`.
pub fn start(g: &Global, id: &str) -> Result<(), Error> {
    let mut c = load(g, id)?;
    match c.status() {
        ContainerStatus::Created => c.start().map_err(Error::runtime("start")),
        ContainerStatus::Stopped => Err(Error::State(
            "cannot start a container that has stopped".into(),
        )),
        _ => Err(Error::State(
            "cannot start an already running container".into(),
        )),
    }
}

/// `run`: create + start; without `--detach`, wait (forwarding signals), delete, and exit
/// with the container's status.
pub fn run(g: &Global, a: &Run) -> Result<(), Error> {
    let c = &a.create;
    let mut stdio = crate::Stdio::default();
    let discarded = if a.detach {
        Vec::new()
    } else {
        crate::discard_pipes(&mut stdio)
    };
    // discard_pipes only fills the slots whose stream is the null device.
    let container = (|| {
        let dir = container_dir(g, &c.id)?;
        if dir.exists() {
            return Err(Error::Exists(c.id.clone()));
        }
        let (bundle, read_only) = check_bundle(&c.bundle)?;
        let mut b = builder(
            g,
            &c.id,
            c.pid_file.as_deref(),
            c.console_socket.as_deref(),
            c.preserve_fds,
        )?;
        if let Some(fd) = stdio.stdout.take() {
            b = b.with_stdout(fd);
        }
        if let Some(fd) = stdio.stderr.take() {
            b = b.with_stderr(fd);
        }
        let container = b
            .as_init(&bundle)
            .with_systemd(false)
            .with_detach(a.detach || c.console_socket.is_some())
            .with_no_pivot(c.no_pivot)
            .build()
            .map_err(Error::runtime("create"))?;
        seal(container, &read_only)
    })()?;
    let mut container = container;
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(Error::runtime("start")(e));
    }
    if a.detach {
        return Ok(());
    }
    let pid = container.pid();
    let code = match pid {
        Some(pid) => wait_forwarding(pid, discarded),
        None => Ok(0),
    };
    let deleted = container.delete(true).map_err(Error::runtime("delete"));
    let code = code?;
    deleted?;
    Err(Error::Exit(code))
}

/// Waits for `pid`, a child of this process, passing on the signals a shell or supervisor
/// sends us; returns its status as a shell reports it (128+N for signal N). The signals
/// are blocked before `drain`'s threads start so that only this thread takes them.
fn wait_forwarding(pid: Pid, discarded: Vec<std::io::PipeReader>) -> Result<i32, Error> {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    let _ = set.thread_block();
    crate::drain(discarded);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => {
                return Err(Error::Runtime {
                    op: "waiting for the container",
                    message: e.to_string(),
                })
            }
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = nix::sys::signal::kill(pid, sig);
            }
        }
    }
}

/// runc's status word.
fn status_word(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

/// The spec's root filesystem path, absolute (runc's state shows it).
fn rootfs_of(bundle: &Path) -> PathBuf {
    let root = fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .and_then(|v| v["root"]["path"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    bundle.join(root)
}

/// The user name of `uid` from /etc/passwd, else `#uid` (runc's `list` shows owners so).
fn owner_name(uid: Option<u32>) -> String {
    let uid = uid.unwrap_or(0);
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// runc's `state` object (runtime-spec state plus rootfs, created and owner).
fn state_json(c: &Container) -> serde_json::Value {
    let status = c.status();
    let pid = match status {
        ContainerStatus::Stopped => 0,
        _ => c.pid().map_or(0, |p| p.as_raw()),
    };
    serde_json::json!({
        "ociVersion": libcontainer::oci_spec::runtime::VERSION,
        "id": c.id(),
        "pid": pid,
        "status": status_word(status),
        "bundle": c.bundle(),
        "rootfs": rootfs_of(c.bundle()),
        "created": c.created().map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
        "owner": "",
        "annotations": c.state.annotations.clone().unwrap_or_default(),
    })
}

/// `state`.
pub fn state(g: &Global, id: &str) -> Result<(), Error> {
    let c = load(g, id)?;
    let text = serde_json::to_string_pretty(&state_json(&c)).expect("JSON values serialise");
    println!("{text}");
    Ok(())
}

/// A signal as runc parses one: a number, or a name with or without `SIG`, any case.
pub(super) fn parse_signal(raw: &str) -> Result<Signal, Error> {
    if let Ok(n) = raw.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::UnknownSignal(raw.to_string()));
    }
    let upper = raw.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::UnknownSignal(raw.to_string()))
}

/// `kill`.
pub fn kill(g: &Global, a: &Kill) -> Result<(), Error> {
    let signal = parse_signal(&a.signal)?;
    let mut c = load(g, &a.id)?;
    c.kill(signal, a.all).map_err(|e| match e {
        LibcontainerError::IncorrectStatus(_) => Error::State("container not running".into()),
        e => Error::runtime("kill")(e),
    })
}

/// `delete`.
pub fn delete(g: &Global, a: &Delete) -> Result<(), Error> {
    let mut c = match load(g, &a.id) {
        Ok(c) => c,
        Err(Error::NotExist) => {
            // An aborted create can leave a directory without state.json: remove it, as runc.
            let dir = container_dir(g, &a.id)?;
            let _ = fs::remove_dir_all(dir);
            return if a.force {
                Ok(())
            } else {
                Err(Error::NotExist)
            };
        }
        Err(e) => return Err(e),
    };
    c.delete(a.force).map_err(|e| match e {
        LibcontainerError::IncorrectStatus(s) => Error::State(format!(
            "cannot delete container {} that is not stopped: {}",
            a.id,
            status_word(s)
        )),
        e => Error::runtime("delete")(e),
    })
}

/// Every container under `--root`, sorted by ID (directories without state are skipped).
fn all(g: &Global) -> Vec<Container> {
    let Ok(entries) = fs::read_dir(&g.root) else {
        return Vec::new();
    };
    let mut out: Vec<Container> = entries
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| Container::load(e.path()).ok())
        .collect();
    out.sort_by(|a, b| a.id().cmp(b.id()));
    out
}

/// `list`: runc's table, `--format json` or `-q`.
pub fn list(g: &Global, a: &List) -> Result<(), Error> {
    let containers = all(g);
    if a.quiet {
        for c in &containers {
            println!("{}", c.id());
        }
        return Ok(());
    }
    if a.format == Format::Json {
        let items: Vec<serde_json::Value> = containers
            .iter()
            .map(|c| {
                let mut v = state_json(c);
                v["owner"] = owner_name(c.state.creator).into();
                v
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
        return Ok(());
    }
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for c in &containers {
        let v = state_json(c);
        rows.push([
            c.id().to_string(),
            v["pid"].to_string(),
            status_word(c.status()).to_string(),
            c.bundle().display().to_string(),
            v["created"].as_str().unwrap_or("").to_string(),
            owner_name(c.state.creator),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// Columns padded like Go's tabwriter with runc's settings (minwidth 12, padding 3).
fn table(rows: &[[String; 6]]) -> String {
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(9) + 3)
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i == 5 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

/// The PIDs in container `c`'s cgroup.
pub(super) fn cgroup_manager(c: &Container) -> Result<libcgroups::common::AnyCgroupManager, Error> {
    let config = c
        .spec()
        .map_err(Error::runtime("reading container config"))?;
    libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: false,
        container_name: c.id().to_string(),
    })
    .map_err(|e| Error::Runtime {
        op: "opening the container's cgroup",
        message: super::chain(&e),
    })
}

/// `ps`: the container's PIDs as JSON, or ps(1)'s lines for them.
pub fn ps(g: &Global, a: &Ps) -> Result<(), Error> {
    use libcgroups::common::CgroupManager;
    let c = load(g, &a.id)?;
    let pids: Vec<i32> = cgroup_manager(&c)?
        .get_all_pids()
        .map_err(|e| Error::Runtime {
            op: "listing the container's processes",
            message: super::chain(&e),
        })?
        .into_iter()
        .map(|p| p.as_raw())
        .collect();
    if a.format == Format::Json {
        println!("{}", serde_json::json!(pids));
        return Ok(());
    }
    let ps_args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|source| Error::Io {
            what: "running",
            path: "ps".into(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::Invalid("couldn't find PID field in ps output".into()))?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

/// `pause`.
pub fn pause(g: &Global, id: &str) -> Result<(), Error> {
    let mut c = load(g, id)?;
    c.pause().map_err(|e| match e {
        LibcontainerError::IncorrectStatus(_) => Error::State("container not running".into()),
        e => Error::runtime("pause")(e),
    })
}

/// `resume`.
pub fn resume(g: &Global, id: &str) -> Result<(), Error> {
    let mut c = load(g, id)?;
    c.resume().map_err(|e| match e {
        LibcontainerError::IncorrectStatus(_) => Error::State("container not paused".into()),
        e => Error::runtime("resume")(e),
    })
}

/// The `process` object for `exec`'s flag form: the container's own process (from its
/// bundle) with the command, terminal, environment, directory and user replaced.
fn exec_process(c: &Container, a: &Exec) -> Result<serde_json::Value, Error> {
    if a.command.is_empty() {
        return Err(Error::Invalid(
            "exec: a command is required (or --process FILE)".into(),
        ));
    }
    let config = c.bundle().join("config.json");
    let spec: serde_json::Value = fs::read(&config)
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default();
    let mut p = spec["process"].clone();
    if !p.is_object() {
        p = serde_json::json!({"user": {"uid": 0, "gid": 0}, "cwd": "/"});
    }
    p["args"] = serde_json::json!(a.command);
    p["terminal"] = a.tty.into();
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p["env"] = serde_json::json!(env);
    if let Some(cwd) = &a.cwd {
        p["cwd"] = cwd.clone().into();
    }
    if let Some(user) = &a.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let bad = || Error::Invalid(format!("invalid --user {user:?}: want UID[:GID]"));
        p["user"]["uid"] = uid.parse::<u32>().map_err(|_| bad())?.into();
        p["user"]["gid"] = match gid {
            Some(g) => g.parse::<u32>().map_err(|_| bad())?,
            None => 0,
        }
        .into();
    }
    if !a.additional_gids.is_empty() {
        p["user"]["additionalGids"] = serde_json::json!(a.additional_gids);
    }
    Ok(p)
}

/// `exec`: a tenant process in the container's namespaces, cgroup, capabilities and
/// seccomp filter; without `--detach`, waits and exits with its status.
pub fn exec(g: &Global, a: &Exec) -> Result<(), Error> {
    let c = load(g, &a.id)?;
    match c.status() {
        ContainerStatus::Running | ContainerStatus::Created => {}
        ContainerStatus::Paused => {
            return Err(Error::State("cannot exec in a paused container".into()))
        }
        _ => return Err(Error::State("cannot exec in a stopped container".into())),
    }
    // The flag form's process goes to a private file in the container's state directory.
    let written = match &a.process {
        Some(_) => None,
        None => {
            let p = exec_process(&c, a)?;
            let path = container_dir(g, &a.id)?.join(format!("exec-{}.json", std::process::id()));
            fs::write(&path, p.to_string()).map_err(|source| Error::Io {
                what: "writing",
                path: path.clone(),
                source,
            })?;
            Some(path)
        }
    };
    let process = a.process.clone().or_else(|| written.clone());
    let mut stdio = crate::Stdio::default();
    let discarded = if a.detach {
        Vec::new()
    } else {
        crate::discard_pipes(&mut stdio)
    };
    let built = builder(
        g,
        &a.id,
        a.pid_file.as_deref(),
        a.console_socket.as_deref(),
        a.preserve_fds,
    )
    .and_then(|mut b| {
        if let Some(fd) = stdio.stdout.take() {
            b = b.with_stdout(fd);
        }
        if let Some(fd) = stdio.stderr.take() {
            b = b.with_stderr(fd);
        }
        b.as_tenant()
            .with_process(process.as_deref())
            .with_detach(a.detach || a.console_socket.is_some())
            .build()
            .map_err(Error::runtime("exec"))
    });
    if let Some(path) = written {
        let _ = fs::remove_file(path);
    }
    let pid = built?;
    if a.detach {
        return Ok(());
    }
    Err(Error::Exit(wait_forwarding(pid, discarded)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_runc() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert_eq!(
            parse_signal("SIGFOO").unwrap_err().to_string(),
            "unknown signal \"SIGFOO\""
        );
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn table_pads_columns() {
        let rows = [
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from),
            ["c1", "42", "running", "/b", "T", "root"].map(String::from),
        ];
        let t = table(&rows);
        assert!(t.starts_with("ID          PID         STATUS      BUNDLE"));
        assert!(t.lines().nth(1).unwrap().starts_with("c1          42 "));
    }
}
