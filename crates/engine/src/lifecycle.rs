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
    /// Detached: output goes to the json-file log and attach clients; the monitor outlives
    /// the caller.
    Detached,
    /// Detached, but the container starts once a client attached (`run -it`, `start -a`).
    DetachedAfterAttach,
    /// Foreground: the monitor copies the output to the caller's stdio (`run` without `-d`
    /// or `-t`); a build step's container writes to it directly.
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

    /// The containers that `start --all` starts: every one that ran before, whose monitor
    /// is gone and whose restart policy is among `policies` (any policy when empty), except
    /// those with `unless-stopped` that a user stopped. (Docker's daemon also restarts an
    /// `on-failure` container whose last run failed; the boot unit leaves those out.) With `always` and `unless-stopped` this is what
    /// Docker's daemon brings back when it starts with the machine; berth has no daemon,
    /// so a boot-time unit runs it (`contrib/systemd/berth-restart.service`).
    pub fn startable(&self, policies: &[String]) -> Result<Vec<ContainerRecord>, Error> {
        let mut all = self.list()?;
        all.retain(|r| {
            let policy = match r.options.restart.name.as_str() {
                "" => "no",
                p => p,
            };
            // Never started (Docker's daemon only brings back what ran before) and build
            // steps' containers are not for it.
            !r.monitor_alive()
                && r.started_at.is_some()
                && !r.options.transient
                && (policies.is_empty() || policies.iter().any(|p| p == policy))
                && !(policy == "unless-stopped" && self.stop_requested(&r.id))
        });
        all.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(all)
    }

    /// Forgets a `pause` (the monitor calls this when the container ends).
    pub fn clear_paused(&self, id: &str) {
        self.mark(id, PAUSED, false);
    }

    /// Starts the monitor of a created or exited container: a fresh re-exec of this binary
    /// (`container-monitor`), so the runtime clones from a single-threaded process whatever
    /// the caller is (CLI with registry threads, API server). Returns the monitor process.
    pub fn spawn_monitor(&self, id: &str, attach: Attach) -> Result<Child, Error> {
        self.spawn_monitor_telling(id, attach, None)
    }

    /// As [`spawn_monitor`](Self::spawn_monitor); a detached monitor given `started` writes
    /// a byte to it once the record says the container runs (see [`crate::monitor`]).
    fn spawn_monitor_telling(
        &self,
        id: &str,
        attach: Attach,
        started: Option<std::io::PipeWriter>,
    ) -> Result<Child, Error> {
        use std::os::unix::process::CommandExt;
        self.mark(id, STOP_REQUESTED, false);
        // The monitor's runtime will move the container into its cgroups; the kernel's
        // first migration after a pause waits out an RCU grace period, which then runs
        // while the monitor starts and mounts.
        berth_runtime::warm_cgroup_lock();
        let exe = std::env::current_exe().map_err(Error::io("finding the berth binary"))?;
        let mut monitor = Command::new(exe);
        monitor
            .arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("container-monitor")
            .env_remove("BERTH_RESTART_DELAY_MS");
        if attach == Attach::DetachedAfterAttach {
            monitor.arg("--wait-attach");
        }
        match attach {
            Attach::Detached => {
                let stdout = match started {
                    Some(w) => Stdio::from(w),
                    None => Stdio::null(),
                };
                monitor
                    .arg("--detached")
                    .stdin(Stdio::null())
                    .stdout(stdout)
                    .stderr(Stdio::null());
            }
            // The caller waits for it: a failure to start is printed where the user sees it.
            Attach::DetachedAfterAttach => {
                monitor
                    .arg("--detached")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null());
            }
            Attach::Foreground => {}
        }
        // Its own process group: the terminal's Ctrl-C reaches the container once, through
        // the caller's signal proxy, and a detached monitor outlives the caller.
        monitor
            .arg(id)
            .process_group(0)
            .spawn()
            .map_err(Error::io("starting the container monitor"))
    }

    /// Checks, under the containers lock, that no monitor runs the container (returning its
    /// record if one does) and resets the record for a fresh start: the previous run's
    /// outcome must not be read as this one's.
    fn claim_start(&self, id: &str) -> Result<Option<ContainerRecord>, Error> {
        let _lock = self.lock()?;
        let mut r = self.load(id)?;
        if r.monitor_alive() {
            return Ok(Some(r));
        }
        // A monitor that died while its container ran (kill -9, a power loss) left the
        // container's processes, mount, network and runtime state behind: they go first,
        // under the lock, so that no start racing this one sets up what the reaping removes.
        if matches!(r.state, State::Running | State::Restarting) {
            self.reap_orphan(&r)?;
            self.clear_paused(id);
        }
        r.state = State::Created;
        r.error = None;
        r.restart_count = 0;
        r.monitor_pid = None;
        r.pid = None;
        self.save(&r)?;
        Ok(None)
    }

    /// The monitor that takes a restarting container over: detached, waiting `delay` first
    /// (the `stop-requested` marker is kept: a stop meanwhile must hold).
    pub fn spawn_restart(&self, id: &str, delay: Duration) -> Result<Child, Error> {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().map_err(Error::io("finding the berth binary"))?;
        Command::new(exe)
            .arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("container-monitor")
            .arg("--detached")
            .arg(id)
            .env("BERTH_RESTART_DELAY_MS", delay.as_millis().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(Error::io("starting the container monitor"))
    }

    /// `start` of a detached container: spawns its monitor and waits until the record says
    /// it runs, or why it could not (the error, with `docker run`'s exit code).
    pub fn start_detached(&self, id: &str) -> Result<ContainerRecord, Error> {
        if let Some(live) = self.claim_start(id)? {
            return Ok(live);
        }
        let before = self.load(id)?;
        let (mut started, tell) =
            std::io::pipe().map_err(Error::io("making the monitor's start pipe"))?;
        let mut child = self.spawn_monitor_telling(id, Attach::Detached, Some(tell))?;
        // Blocks until the monitor says the container runs, or it (and every process that
        // inherited the pipe) is gone; the record then says which. No polling meanwhile.
        let _ = std::io::Read::read(&mut started, &mut [0u8; 1]);
        let result = self.await_start(id, before, || child.try_wait().ok().flatten());
        // Reap the monitor's zombie later: it is our child only for the CLI's life.
        std::thread::spawn(move || child.wait());
        result
    }

    /// After a monitor was spawned for container `id` (whose record was `before`), waits
    /// until its record says how the start went: the running record, or why it could not
    /// start (`docker run`'s exit code with it). `exited` tells whether the monitor is gone
    /// (killed, or unable to open the store) before it wrote anything. A `--rm` container
    /// may be gone already: what its monitor left behind tells.
    pub fn await_start(
        &self,
        id: &str,
        before: ContainerRecord,
        mut exited: impl FnMut() -> Option<std::process::ExitStatus>,
    ) -> Result<ContainerRecord, Error> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = match self.load(id) {
                Ok(r) => r,
                Err(Error::NoSuchContainer(_)) => {
                    return match self.last_exit(id) {
                        Some((code, Some(message))) => Err(Error::StartFailed { message, code }),
                        _ => Ok(before),
                    };
                }
                Err(e) => return Err(e),
            };
            if r.state != State::Created {
                if let Some(e) = &r.error {
                    return Err(Error::StartFailed {
                        message: e.clone(),
                        code: r.exit_code.unwrap_or(125),
                    });
                }
                return Ok(r);
            }
            if let Some(status) = exited() {
                // Died before writing anything; look once more in case it just did. A
                // monitor of a start racing this one may run it instead: wait for that one.
                if self
                    .load(id)
                    .is_ok_and(|r| r.state == State::Created && !r.monitor_alive())
                {
                    return Err(Error::StartFailed {
                        message: format!("container monitor exited with {status}"),
                        code: 125,
                    });
                }
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Invalid(format!(
                    "container {id} did not start within 60 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `start -a`, `run -it`: starts the container's monitor, which waits for this caller to
    /// attach before starting the container, then streams until the container ends (its
    /// exit code) or the user detaches (`None`).
    pub fn start_attached(&self, id: &str, stdin: bool) -> Result<Option<i32>, Error> {
        if self.claim_start(id)?.is_some() {
            return Err(Error::Invalid(format!(
                "container {id} is already running: use attach"
            )));
        }
        let record = self.load(id)?;
        let mut child = self.spawn_monitor(id, Attach::DetachedAfterAttach)?;
        let attached = crate::attach::attach(&self.runroot, id, stdin, record.options.tty, || {
            !matches!(child.try_wait(), Ok(Some(_)))
        });
        if let Ok(crate::attach::Ended::Detached) = attached {
            std::thread::spawn(move || child.wait());
            return Ok(None);
        }
        // The monitor exits with the container's code, or `docker run`'s for a failed start
        // (having printed why on the stderr it shares with us); `--rm` may have taken the
        // record already.
        let status = child
            .wait()
            .map_err(Error::io("waiting for the container monitor"))?;
        Ok(Some(status.code().unwrap_or(125)))
    }

    /// `start` for a caller that attaches clients of its own (the Engine API, which gets
    /// attach requests before the start): the monitor waits for the first client on the
    /// container's attach socket ([`crate::attach::socket_path`]) before it starts the
    /// container. Returns the monitor, which exits with the container.
    pub fn start_for_attach(&self, id: &str) -> Result<Child, Error> {
        if self.claim_start(id)?.is_some() {
            return Err(Error::Conflict(format!(
                "container {id} is already running"
            )));
        }
        self.spawn_monitor(id, Attach::DetachedAfterAttach)
    }

    /// `attach`: streams a running container until it ends (its exit code) or the user
    /// detaches (`None`).
    pub fn attach(&self, record: &ContainerRecord, stdin: bool) -> Result<Option<i32>, Error> {
        if record.status() == "restarting" {
            return Err(Error::Invalid(
                "You cannot attach to a restarting container, wait until it is running".into(),
            ));
        }
        if !record.is_running() {
            return Err(Error::Invalid(
                "You cannot attach to a stopped container, start it first".into(),
            ));
        }
        if !crate::attach::socket_path(&self.runroot, &record.id).exists() {
            return Err(Error::Invalid(format!(
                "container {} runs in the foreground of another berth command and cannot be attached to",
                record.id
            )));
        }
        let id = record.id.clone();
        let ended = crate::attach::attach(&self.runroot, &id, stdin, record.options.tty, || {
            self.load(&id).is_ok_and(|r| r.monitor_alive())
        })?;
        if ended == crate::attach::Ended::Detached {
            return Ok(None);
        }
        // The monitor records the end right after hanging up.
        for _ in 0..1000 {
            let r = self.load(&id)?;
            if r.state != State::Running || !r.monitor_alive() {
                return Ok(Some(r.exit_code.unwrap_or(0)));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Some(self.load(&id)?.exit_code.unwrap_or(0)))
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
            if self
                .wait_stopped(&record.id, Duration::from_secs(30))?
                .is_none()
            {
                return Err(Error::Invalid(format!(
                    "cannot stop container: {}: tried to kill container, but did not receive an exit event",
                    record.id
                )));
            }
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
