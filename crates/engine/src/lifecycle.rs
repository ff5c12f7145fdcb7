//! Verbs on an existing container: start (spawning its monitor), stop, kill, pause, unpause,
//! and the markers they leave for the monitor.
//!
//! The monitor owns a running container's state fields; other commands talk to it through
//! marker files in the container directory rather than by rewriting its record:
//! `stop-requested` (set by `stop`/`kill`, so the restart policy leaves the container down;
//! cleared by the next `start`) and `paused`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{ContainerRecord, Engine, Error, State};

/// Marker: the user stopped or killed the container.
pub(crate) const STOP_REQUESTED: &str = "stop-requested";
/// Marker: the container's cgroup is frozen.
pub(crate) const PAUSED: &str = "paused";

/// How a started monitor connects to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Detached: output goes to the json-file log; the monitor outlives the caller.
    Detached,
    /// Foreground: the monitor shares the caller's stdio (`run` without `-d`).
    Foreground,
}

impl Engine {
    /// Whether `stop`/`kill` asked this container to stay down.
    pub fn stop_requested(&self, id: &str) -> bool {
        self.dir(id).join(STOP_REQUESTED).exists()
    }

    fn mark(&self, id: &str, marker: &str, on: bool) {
        let p = self.dir(id).join(marker);
        if on {
            let _ = std::fs::write(p, b"");
        } else {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Forgets a `pause` (the monitor calls this when the container ends).
    pub fn clear_paused(&self, id: &str) {
        self.mark(id, PAUSED, false);
    }

    /// Starts the monitor of a created or exited container: a fresh re-exec of this binary
    /// (`container-monitor`), so the runtime clones from a single-threaded process whatever
    /// the caller is (CLI with registry threads, API server). Returns the monitor process.
    ///
    /// `console`: where the caller waits for the pty master of a foreground `-t` container.
    pub fn spawn_monitor(
        &self,
        id: &str,
        attach: Attach,
        console: Option<&std::path::Path>,
    ) -> Result<Child, Error> {
        use std::os::unix::process::CommandExt;
        self.mark(id, STOP_REQUESTED, false);
        let exe = std::env::current_exe().map_err(Error::io("finding the berth binary"))?;
        let mut monitor = Command::new(exe);
        monitor
            .arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("container-monitor");
        if let Some(c) = console {
            monitor.arg("--console-socket").arg(c);
        }
        if attach == Attach::Detached {
            monitor
                .arg("--detached")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        // Its own process group: the terminal's Ctrl-C reaches the container once, through
        // the caller's signal proxy, and a detached monitor outlives the caller.
        monitor
            .arg(id)
            .process_group(0)
            .spawn()
            .map_err(Error::io("starting the container monitor"))
    }

    /// `start` of a detached container: spawns its monitor and waits until the record says
    /// it runs, or why it could not (the error, with `docker run`'s exit code).
    pub fn start_detached(&self, id: &str) -> Result<ContainerRecord, Error> {
        let before = self.load(id)?;
        if before.is_running() || before.status() == "restarting" {
            return Ok(before);
        }
        // A fresh start: the previous run's outcome must not be read as this one's.
        self.update(id, |r| {
            r.state = State::Created;
            r.error = None;
            r.restart_count = 0;
        })?;
        let mut child = self.spawn_monitor(id, Attach::Detached, None)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.load(id)?;
            if r.state != State::Created {
                if let Some(e) = &r.error {
                    return Err(Error::StartFailed {
                        message: e.clone(),
                        code: r.exit_code.unwrap_or(125),
                    });
                }
                // Reap the monitor's zombie later: it is our child only for the CLI's life.
                std::thread::spawn(move || child.wait());
                return Ok(r);
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Died before writing anything (killed, or could not open the store).
                let r = self.load(id)?;
                if r.state == State::Created {
                    return Err(Error::StartFailed {
                        message: format!("container monitor exited with {status}"),
                        code: 125,
                    });
                }
                continue;
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Invalid(format!(
                    "container {id} did not start within 60 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends `signal`, waits up to `grace`, then SIGKILL, as `docker stop` does; the restart
    /// policy leaves it stopped. A container that is not running is left as it is.
    pub fn stop(
        &self,
        record: &ContainerRecord,
        signal: i32,
        grace: Duration,
    ) -> Result<(), Error> {
        if !record.monitor_alive() {
            return Ok(());
        }
        self.mark(&record.id, STOP_REQUESTED, true);
        if record.paused {
            let _ = self.unpause(record);
        }
        let _ = self.signal(record, signal);
        if self.wait_stopped(&record.id, grace)?.is_none() {
            if let Ok(r) = self.load(&record.id) {
                let _ = self.signal(&r, 9);
            }
            self.wait_stopped(&record.id, Duration::from_secs(30))?;
        }
        Ok(())
    }

    /// `kill -s`: signals the init; the restart policy leaves the container stopped.
    pub fn kill(&self, record: &ContainerRecord, signal: i32) -> Result<(), Error> {
        if !record.is_running() {
            return Err(Error::NotRunning(record.id.clone()));
        }
        self.mark(&record.id, STOP_REQUESTED, true);
        self.signal(record, signal)
    }

    /// Freezes every process of the container (cgroup freezer).
    pub fn pause(&self, record: &ContainerRecord) -> Result<(), Error> {
        if !record.is_running() {
            return Err(Error::NotRunning(record.id.clone()));
        }
        if record.paused {
            return Err(Error::Invalid(format!(
                "container {} is already paused",
                record.id
            )));
        }
        berth_runtime::Runtime::new(self.runtime_root()).pause(&record.id)?;
        self.mark(&record.id, PAUSED, true);
        Ok(())
    }

    /// Thaws a paused container.
    pub fn unpause(&self, record: &ContainerRecord) -> Result<(), Error> {
        if !record.paused {
            return Err(Error::Invalid(format!(
                "container {} is not paused",
                record.id
            )));
        }
        berth_runtime::Runtime::new(self.runtime_root()).resume(&record.id)?;
        self.mark(&record.id, PAUSED, false);
        Ok(())
    }

    /// Host PIDs of every process in the container (its cgroup's members), for `top`.
    pub fn processes(&self, record: &ContainerRecord) -> Result<Vec<i32>, Error> {
        if !record.is_running() {
            return Err(Error::NotRunning(record.id.clone()));
        }
        let base = std::path::Path::new("/sys/fs/cgroup");
        let rel = format!("berth/{}/cgroup.procs", record.id);
        let candidates = [
            base.join(&rel),
            base.join("pids").join(&rel),
            base.join("memory").join(&rel),
            base.join("devices").join(&rel),
            base.join("freezer").join(&rel),
        ];
        for c in candidates {
            if let Ok(text) = std::fs::read_to_string(&c) {
                return Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect());
            }
        }
        Ok(record.pid.into_iter().collect())
    }
}
