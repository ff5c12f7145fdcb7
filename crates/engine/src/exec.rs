//! `exec`: one more process in a running container, joining its namespaces, cgroup,
//! capabilities and seccomp filter (a runtime "tenant").
//!
//! The process description is written as an OCI `process` object and handed to the runtime,
//! which takes the container's capabilities and filter from its bundle. Like starting a
//! container, it clones, so the caller must be single-threaded: the CLI is at that point; the
//! API server will go through a re-exec as it does for the monitor.

use std::io::Read;

use serde_json::json;

use crate::rootfs::Layout;
use crate::user::{check_executable, resolve};
use crate::{ContainerRecord, Engine, Error};

/// What `docker exec` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// `-e KEY=VALUE`, added to the container's environment.
    pub env: Vec<String>,
    /// `-u user[:group]` (the container's user when `None`).
    pub user: Option<String>,
    /// `-w` (the container's working directory when `None`).
    pub workdir: Option<String>,
    /// `-i`: pass stdin through (otherwise the process reads /dev/null).
    pub interactive: bool,
    /// `-d`: start it and return at once.
    pub detach: bool,
    /// `-t`: a pseudo-terminal, proxied to the caller's terminal.
    pub tty: bool,
}

/// Why an exec could not start, with the exit code `docker exec` gives (126, as Docker does
/// for every start failure of an exec).
fn exec_failed(e: Error) -> Error {
    let why = match &e {
        Error::NotFound(p) => format!("exec: \"{p}\": executable file not found in $PATH"),
        Error::NotExecutable(p) => format!("exec: \"{p}\": permission denied"),
        other => other.to_string(),
    };
    Error::StartFailed {
        message: format!(
            "OCI runtime exec failed: exec failed: unable to start container process: {why}: unknown"
        ),
        code: 126,
    }
}

impl Engine {
    /// Runs `options.cmd` in the running container and returns its exit code (0 at once with
    /// `detach`).
    pub fn exec(&self, record: &ContainerRecord, options: &ExecOptions) -> Result<i32, Error> {
        if !record.is_running() {
            return Err(Error::NotRunning(record.id.clone()));
        }
        if record.paused {
            return Err(Error::Invalid(format!(
                "Container {} is paused, unpause the container before exec",
                record.id
            )));
        }
        if options.cmd.is_empty() {
            return Err(Error::Invalid("No exec command specified".into()));
        }
        let dir = self.dir(&record.id);
        let layout = Layout::new(&dir);
        // Users and the command are looked up in the container's own view (its volumes and
        // binds included), through its init's root.
        let root = record
            .pid
            .map(|p| std::path::PathBuf::from(format!("/proc/{p}/root")))
            .unwrap_or_else(|| layout.rootfs.clone());
        let config_path = layout.bundle.join("config.json");
        let mut text = String::new();
        std::fs::File::open(&config_path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(Error::io(format!("reading {}", config_path.display())))?;
        let spec: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("reading {}: {e}", config_path.display())))?;
        let process = &spec["process"];
        let mut env: Vec<String> = process["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if options.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        for e in &options.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        let cwd = options
            .workdir
            .clone()
            .unwrap_or_else(|| process["cwd"].as_str().unwrap_or("/").to_string());
        let user = match &options.user {
            Some(u) => {
                let u = resolve(&root, u).map_err(exec_failed)?;
                json!({"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids})
            }
            None => process["user"].clone(),
        };
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(crate::spec::DEFAULT_PATH)
            .to_string();
        check_executable(&root, &options.cmd[0], &path, &cwd).map_err(exec_failed)?;
        // Detached, the process must not hold the caller's terminal or pipes: it outlives
        // the command (and a pty nobody reads would hang it up).
        let tty = options.tty && !options.detach;
        let mut exec_process = json!({
            "terminal": tty,
            "user": user,
            "args": options.cmd,
            "env": env,
            "cwd": cwd,
            "capabilities": process["capabilities"],
            "rlimits": process["rlimits"],
        });
        if process.get("noNewPrivileges").is_some() {
            exec_process["noNewPrivileges"] = process["noNewPrivileges"].clone();
        }
        let (file, name) = tempfile_in(&dir)?;
        let console = if tty {
            Some(crate::tty::ConsoleSocket::bind(&self.runroot, &name)?)
        } else {
            None
        };
        std::fs::write(&file, exec_process.to_string())
            .map_err(Error::io(format!("writing {}", file.display())))?;
        let null = || -> Result<std::os::fd::OwnedFd, Error> {
            Ok(std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(Error::io("opening /dev/null"))?
                .into())
        };
        let (stdin, stdout, stderr) = if options.detach {
            (Some(null()?), Some(null()?), Some(null()?))
        } else if options.interactive || tty {
            (None, None, None)
        } else {
            (Some(null()?), None, None)
        };
        // Caught from before the clone, so a Ctrl-C meanwhile is not lost; passed on after.
        let proxy = crate::signals::install().map_err(Error::io("installing signal forwarding"))?;
        let started = berth_runtime::Runtime::new(self.runtime_root()).exec(
            &record.id,
            &file,
            berth_runtime::Stdio {
                stdin,
                stdout,
                stderr,
                console: console.as_ref().map(|c| c.path().to_path_buf()),
            },
        );
        let _ = std::fs::remove_file(&file);
        let pid = started.map_err(|e| exec_failed(e.into()))?;
        // The runtime sent the pty while starting the process: it is in the backlog.
        let master = match &console {
            Some(c) => c.receive(|| true)?,
            None => None,
        };
        drop(console);
        if options.detach {
            return Ok(0);
        }
        proxy.forward_to(pid);
        if let Some(master) = master {
            let raw = if options.interactive {
                crate::tty::RawTerminal::enter().ok()
            } else {
                None
            };
            let proxied = crate::tty::proxy(master, options.interactive, move || Some(pid));
            drop(raw);
            proxied?;
        }
        Ok(berth_runtime::wait_pid(pid)?)
    }
}

/// A fresh file name in `dir` for one exec's process description, and its random part.
fn tempfile_in(dir: &std::path::Path) -> Result<(std::path::PathBuf, String), Error> {
    let name = format!("exec-{}", &crate::container::random_id()?[..16]);
    Ok((dir.join(format!(".{name}.json")), name))
}
