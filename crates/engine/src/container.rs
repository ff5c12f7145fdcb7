//! Container records: one directory per container under `<root>/containers/<id>`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_image::Store;
use serde::{Deserialize, Serialize};

use crate::options::{MountKind, RunOptions};
use crate::Error;

const RECORD: &str = "container.json";

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Made, never started.
    Created,
    /// Its monitor runs it.
    Running,
    /// It ended.
    Exited,
    /// It ended and its restart policy will start it again.
    Restarting,
}

/// One container as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex characters.
    pub id: String,
    /// Unique name (Docker's random `adjective_name` unless given).
    pub name: String,
    /// Image ID it was created from.
    pub image_id: String,
    /// The options it was created with.
    pub options: RunOptions,
    /// RFC 3339 creation time.
    pub created: String,
    /// Current state.
    pub state: State,
    /// Exit code once exited.
    pub exit_code: Option<i32>,
    /// Whether the OOM killer struck during the last run (Docker's `State.OOMKilled`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// The monitor's process ID while running.
    pub monitor_pid: Option<u32>,
    /// The container init's host PID while running.
    #[serde(default)]
    pub pid: Option<i32>,
    /// When it started (RFC 3339).
    #[serde(default)]
    pub started_at: Option<String>,
    /// When it ended (RFC 3339).
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Why it could not start, in Docker's words.
    #[serde(default)]
    pub error: Option<String>,
    /// The image's STOPSIGNAL, kept so `stop` need not open the image.
    #[serde(default)]
    pub image_stop_signal: Option<String>,
    /// The process it runs (entrypoint + cmd), fixed at creation as in Docker.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its address on the bridge network while running.
    #[serde(default)]
    pub ip: Option<String>,
    /// The ports published while it runs, with random host ports picked.
    #[serde(default)]
    pub ports: Vec<berth_network::PortMapping>,
    /// How often the restart policy started it again.
    #[serde(default)]
    pub restart_count: u32,
    /// The networks it is attached to, first one first (its `eth0` and default route).
    #[serde(default)]
    pub networks: Vec<crate::networks::NetworkEndpoint>,
    /// Frozen by `pause` (read from a marker file, not stored: the monitor owns the record's
    /// state fields, `pause` must not race it).
    #[serde(skip)]
    pub paused: bool,
    /// `network disconnect` took it off every network: it starts with none (its
    /// `--network` stays what it was, so it may be connected again, as with Docker).
    #[serde(default)]
    pub networks_cleared: bool,
}

impl ContainerRecord {
    /// The networks it is on; records from before user networks existed name none and
    /// mean the default bridge unless `--network host|none`.
    pub fn endpoints(&self) -> Vec<crate::networks::NetworkEndpoint> {
        if !self.networks.is_empty() {
            return self.networks.clone();
        }
        if self.networks_cleared {
            return Vec::new();
        }
        match self.options.network.as_deref() {
            None | Some("bridge") | Some("default") => vec![crate::networks::NetworkEndpoint {
                network: "bridge".into(),
                aliases: Vec::new(),
                ifname: "eth0".into(),
                ip: self.ip.clone(),
            }],
            _ => Vec::new(),
        }
    }

    /// Whether it runs: recorded as running and its monitor is alive. A monitor killed with
    /// -9 leaves a record saying "running"; this reads it as ended.
    pub fn is_running(&self) -> bool {
        self.state == State::Running && self.monitor_alive()
    }

    /// Whether its monitor process lives (it may be between two runs of a restart policy).
    pub fn monitor_alive(&self) -> bool {
        self.monitor_pid.is_some_and(|p| monitor_alive(p, &self.id))
    }

    /// Docker's state word: created, running, paused, restarting or exited.
    pub fn status(&self) -> &'static str {
        match self.state {
            State::Created => "created",
            State::Running if self.is_running() && self.paused => "paused",
            State::Running if self.is_running() => "running",
            State::Restarting if self.monitor_alive() => "restarting",
            _ => "exited",
        }
    }

    /// `docker ps`'s STATUS: "Up 5 minutes", "Exited (0) 2 hours ago", "Created", …
    pub fn status_text(&self) -> String {
        let since = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds())
                .unwrap_or(0)
        };
        match self.status() {
            "running" => return format!("Up {}", human_duration(since(&self.started_at))),
            "paused" => return format!("Up {} (Paused)", human_duration(since(&self.started_at))),
            "restarting" => {
                return format!(
                    "Restarting ({}) {} ago",
                    self.exit_code.unwrap_or(-1),
                    human_duration(since(&self.finished_at))
                )
            }
            _ => {}
        }
        if self.state == State::Created {
            "Created".into()
        } else {
            format!(
                "Exited ({}) {} ago",
                self.exit_code.unwrap_or(-1),
                human_duration(since(&self.finished_at))
            )
        }
    }

    /// The signal `stop` sends: `--stop-signal`, else the image's STOPSIGNAL, else SIGTERM.
    pub fn stop_signal(&self) -> String {
        self.options
            .stop_signal
            .clone()
            .or_else(|| self.image_stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into())
    }

    /// Seconds `stop` waits before SIGKILL: `--stop-timeout`, else 10.
    pub fn stop_timeout(&self) -> i64 {
        self.options.stop_timeout.unwrap_or(10)
    }
}

/// The container half of berth: records under `<root>/containers`, runtime state under
/// `<runroot>`, images from the image store.
pub struct Engine {
    pub(crate) root: PathBuf,
    pub(crate) runroot: PathBuf,
    /// The image store containers are made from.
    pub images: Store,
}

impl Engine {
    /// Opens the engine over an image store at `root`.
    pub fn open(root: PathBuf, runroot: PathBuf) -> Result<Engine, Error> {
        let images = Store::open(&root)?;
        let engine = Engine {
            root,
            runroot,
            images,
        };
        std::fs::create_dir_all(engine.containers_dir())
            .map_err(Error::io("creating the containers directory"))?;
        Ok(engine)
    }

    pub(crate) fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// The directory of one container.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// Where the runtime keeps its per-container state.
    pub fn runtime_root(&self) -> PathBuf {
        self.runroot.join("runtime")
    }

    /// Makes a container record for `options` (the image must be in the store); returns
    /// its ID. Volumes it names are created, anonymous ones (`-v /path`, the image's
    /// VOLUMEs) given names, missing bind sources made, and `-P` turned into ports.
    pub fn create(&self, options: &RunOptions) -> Result<String, Error> {
        let mut options = options.clone();
        if options.rm && !options.restart.name.is_empty() {
            return Err(Error::Invalid(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        crate::options::check_resources(&options.resources, cpus)?;
        if let Some(n) = &options.name {
            validate_name(n)?;
        }
        let image_id = self.images.lookup(&options.image)?;
        let info = self.images.info(&image_id)?;
        let args = crate::spec::process_args(&info.config, &options)?;
        let image = info.config.config().clone().unwrap_or_default();
        if options.publish_all {
            for p in image.exposed_ports().clone().unwrap_or_default() {
                let mut mapping = berth_network::parse_publish(&p)
                    .map_err(|e| Error::Invalid(format!("the image exposes {p:?}: {e}")))?;
                mapping.retain(|m| {
                    !options
                        .publish
                        .iter()
                        .any(|o| o.container_port == m.container_port && o.protocol == m.protocol)
                });
                options.publish.extend(mapping);
            }
        }
        for v in image.volumes().clone().unwrap_or_default() {
            let target = crate::options::parse_volume(&v)
                .map(|m| m.target)
                .unwrap_or(v);
            if !options.mounts.iter().any(|m| m.target == target) {
                options.mounts.push(crate::options::MountSpec {
                    kind: MountKind::Volume,
                    source: String::new(),
                    target,
                    read_only: false,
                });
            }
        }
        let volumes = self.volumes();
        for m in &mut options.mounts {
            match m.kind {
                MountKind::Volume => {
                    let anonymous = m.source.is_empty();
                    if anonymous {
                        m.source = random_id()?;
                    }
                    volumes.create(&m.source, Default::default(), anonymous)?;
                }
                MountKind::Bind => {
                    // `-v` makes a missing host directory, as Docker does.
                    if std::fs::symlink_metadata(&m.source).is_err() {
                        std::fs::create_dir_all(&m.source).map_err(Error::io(format!(
                            "creating the bind mount source {}",
                            m.source
                        )))?;
                    }
                }
            }
        }
        let networks = match options.network.as_deref() {
            Some("host") | Some("none") => Vec::new(),
            other => {
                let name = match other {
                    None | Some("default") => "bridge",
                    Some(n) => n,
                };
                let def = self.network(name)?;
                if def.name == "bridge" && !options.network_aliases.is_empty() {
                    return Err(Error::Invalid(
                        "network-scoped aliases are only supported for user-defined networks"
                            .into(),
                    ));
                }
                for a in &options.network_aliases {
                    if !crate::options::valid_name(a) {
                        return Err(Error::Invalid(format!("invalid alias {a:?}")));
                    }
                }
                vec![crate::networks::NetworkEndpoint {
                    network: def.name,
                    aliases: options.network_aliases.clone(),
                    ifname: "eth0".into(),
                    ip: None,
                }]
            }
        };
        let id = random_id()?;
        let _lock = self.lock()?;
        let existing = self.list()?;
        let name = match &options.name {
            Some(n) => {
                if let Some(c) = existing.iter().find(|c| &c.name == n) {
                    return Err(Error::NameConflict {
                        name: n.clone(),
                        id: c.id.clone(),
                    });
                }
                n.clone()
            }
            None => loop {
                let n = random_name(&id);
                if !existing.iter().any(|c| c.name == n) {
                    break n;
                }
            },
        };
        let record = ContainerRecord {
            id: id.clone(),
            name,
            image_id,
            options,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            state: State::Created,
            exit_code: None,
            oom_killed: false,
            monitor_pid: None,
            pid: None,
            started_at: None,
            finished_at: None,
            error: None,
            image_stop_signal: image.stop_signal().clone(),
            args,
            ip: None,
            ports: Vec::new(),
            restart_count: 0,
            networks,
            paused: false,
            networks_cleared: false,
        };
        let dir = self.dir(&id);
        std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        // The container itself (what `create` was asked) outlives a power loss, as Docker's;
        // a `--rm` one does not (it is gone when its process is), so it costs no disk flush.
        self.write_record(&record, !record.options.rm)?;
        Ok(id)
    }

    /// The volumes of this store.
    pub fn volumes(&self) -> crate::volume::Volumes {
        crate::volume::Volumes::new(&self.root)
    }

    /// The containers that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|c| {
                c.options
                    .mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source == name)
            })
            .map(|c| c.id)
            .collect())
    }

    /// Removes a volume no container uses.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<(), Error> {
        self.volumes().get(name)?;
        let users = self.volume_users(name)?;
        if !users.is_empty() && !force {
            return Err(Error::VolumeInUse {
                name: name.into(),
                containers: users.join(", "),
            });
        }
        self.volumes().remove(name)
    }

    /// Renames a container (names stay unique).
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<(), Error> {
        validate_name(new_name)?;
        let _lock = self.lock()?;
        let mut record = self.find(name_or_id)?;
        if record.name == new_name {
            return Err(Error::Invalid(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        if let Some(c) = self.list()?.iter().find(|c| c.name == new_name) {
            return Err(Error::NameConflict {
                name: new_name.into(),
                id: c.id.clone(),
            });
        }
        record.name = new_name.into();
        self.save(&record)?;
        Ok(())
    }

    pub(crate) fn lock(&self) -> Result<std::fs::File, Error> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("containers.lock"))
            .map_err(Error::io("opening containers.lock"))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io("locking containers.lock")(e.into()))?;
        Ok(f)
    }

    /// Writes a record atomically (temp file, rename): a killed writer leaves the old
    /// record or the new one, never a torn one. State changes are not fsynced — they
    /// describe processes a power loss ends anyway, and a record that still says "running"
    /// then reads as exited — which saves a disk flush per start and per exit.
    pub fn save(&self, record: &ContainerRecord) -> Result<(), Error> {
        self.write_record(record, false)
    }

    fn write_record(&self, record: &ContainerRecord, durable: bool) -> Result<(), Error> {
        let dir = self.dir(&record.id);
        let tmp = dir.join(format!(".{RECORD}.{}", std::process::id()));
        let ctx = || format!("writing the record of container {}", record.id);
        let mut f = std::fs::File::create(&tmp).map_err(Error::io(ctx()))?;
        f.write_all(&serde_json::to_vec_pretty(record).expect("record serialises"))
            .map_err(Error::io(ctx()))?;
        if durable {
            f.sync_all().map_err(Error::io(ctx()))?;
        }
        std::fs::rename(&tmp, dir.join(RECORD)).map_err(Error::io(ctx()))
    }

    /// Loads a record by full ID.
    pub fn load(&self, id: &str) -> Result<ContainerRecord, Error> {
        let path = self.dir(id).join(RECORD);
        let bytes = std::fs::read(&path).map_err(|_| Error::NoSuchContainer(id.to_string()))?;
        let mut record: ContainerRecord =
            serde_json::from_slice(&bytes).map_err(|e| Error::Io {
                context: format!("reading {}", path.display()),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
        record.paused = self.dir(id).join(crate::lifecycle::PAUSED).exists();
        Ok(record)
    }

    /// Changes a record under the containers lock: load, apply `f`, save. Every writer
    /// that may run beside the monitor (rename, the monitor itself) goes through here, so no
    /// one writes back a stale copy.
    pub fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord, Error> {
        let _lock = self.lock()?;
        let mut record = self.load(id)?;
        f(&mut record);
        self.save(&record)?;
        Ok(record)
    }

    /// Every container with a readable record.
    pub fn list(&self) -> Result<Vec<ContainerRecord>, Error> {
        let mut out = Vec::new();
        let rd =
            std::fs::read_dir(self.containers_dir()).map_err(Error::io("listing containers"))?;
        for e in rd.flatten() {
            if let Ok(r) = self.load(&e.file_name().to_string_lossy()) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Finds a container by name, full ID or unambiguous ID prefix.
    pub fn find(&self, name_or_id: &str) -> Result<ContainerRecord, Error> {
        let all = self.list()?;
        if let Some(c) = all
            .iter()
            .find(|c| c.name == name_or_id || c.id == name_or_id)
        {
            return Ok(c.clone());
        }
        let prefixed: Vec<_> = all
            .iter()
            .filter(|c| c.id.starts_with(name_or_id))
            .collect();
        match prefixed.as_slice() {
            [one] if !name_or_id.is_empty() => Ok((*one).clone()),
            _ => Err(Error::NoSuchContainer(name_or_id.to_string())),
        }
    }

    /// Deletes a stopped container's directory (its root filesystem must be unmounted) and
    /// its anonymous volumes (`rm -v`, `--rm`).
    pub fn remove_with_volumes(&self, id: &str) -> Result<(), Error> {
        let record = self.load(id)?;
        self.remove(id)?;
        let volumes = self.volumes();
        for m in &record.options.mounts {
            if m.kind == MountKind::Volume
                && volumes.get(&m.source).is_ok_and(|v| v.anonymous)
                && self.volume_users(&m.source)?.is_empty()
            {
                volumes.remove(&m.source)?;
            }
        }
        Ok(())
    }

    /// Where what dies with a reboot lives (sockets, pids, network state).
    pub fn runroot(&self) -> &Path {
        &self.runroot
    }

    /// How a `--rm` container ended, as its monitor left it behind when it removed the
    /// container: the exit code, and why it could not start if it could not (for a
    /// waiter or starter that could not read the record before it went).
    pub fn last_exit(&self, id: &str) -> Option<(i32, Option<String>)> {
        let text = std::fs::read_to_string(self.runroot.join("exits").join(id)).ok()?;
        let (code, error) = match text.split_once('\n') {
            Some((c, e)) => (c, Some(e.to_string()).filter(|e| !e.is_empty())),
            None => (text.as_str(), None),
        };
        Some((code.trim().parse().ok()?, error))
    }

    /// The exit code part of [`last_exit`](Self::last_exit).
    pub fn last_exit_code(&self, id: &str) -> Option<i32> {
        self.last_exit(id).map(|(code, _)| code)
    }

    /// Keeps how a `--rm` container ended before it is removed, for
    /// [`last_exit`](Self::last_exit); what is older than ten minutes is forgotten.
    pub fn keep_exit(&self, id: &str, code: i32, error: Option<&str>) {
        let dir = self.runroot.join("exits");
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let tmp = dir.join(format!(".{id}"));
        let text = format!("{code}\n{}", error.unwrap_or_default());
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join(id));
        }
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < old)
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// `docker rm [-f] [-v]` of one container: a running one only with `force` (killed
    /// first), a half-started one (its monitor killed) cleaned up after, a `--rm` one that
    /// is already gone accepted.
    pub fn remove_container(
        &self,
        r: &ContainerRecord,
        force: bool,
        volumes: bool,
    ) -> Result<(), Error> {
        if r.is_running() || r.status() == "restarting" {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
                    r.name,
                    if r.status() == "restarting" { "restarting" } else { "running" }
                )));
            }
            self.stop(r, 9, std::time::Duration::ZERO)?;
        } else if r.state != State::Exited && r.monitor_pid.is_some() {
            // A monitor was at work and is gone (killed at any step): clean up after it.
            self.reap_orphan(r)?;
        }
        // A --rm container is already gone once its monitor finished.
        if self.dir(&r.id).exists() {
            if volumes {
                self.remove_with_volumes(&r.id)?;
            } else {
                self.remove(&r.id)?;
            }
        }
        Ok(())
    }

    /// Deletes a stopped container's directory (its root filesystem must be unmounted).
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        let dir = self.dir(id);
        // Rename first, so a half-deleted container never looks like a container.
        let trash = self.containers_dir().join(format!(".trash-{id}"));
        std::fs::rename(&dir, &trash).map_err(Error::io(format!("removing container {id}")))?;
        std::fs::remove_dir_all(&trash).map_err(Error::io(format!("removing container {id}")))
    }

    /// Waits (polling the record) until the container is no longer running; returns its
    /// final record, or `None` on timeout.
    pub fn wait_stopped(
        &self,
        id: &str,
        timeout: std::time::Duration,
    ) -> Result<Option<ContainerRecord>, Error> {
        let deadline = std::time::Instant::now() + timeout;
        let mut last = self.load(id)?;
        loop {
            let r = match self.load(id) {
                Ok(r) => r,
                // Removed meanwhile (`--rm`): it ended, as the last record seen says.
                Err(Error::NoSuchContainer(_)) => {
                    last.state = State::Exited;
                    return Ok(Some(last));
                }
                Err(e) => return Err(e),
            };
            if r.state == State::Exited || (r.state != State::Created && !r.monitor_alive()) {
                return Ok(Some(r));
            }
            last = r;
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Sends a signal to the container's init process.
    pub fn signal(&self, record: &ContainerRecord, signal: i32) -> Result<(), Error> {
        let pid = record
            .pid
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| Error::Invalid(format!("container {} is not running", record.id)))?;
        let sig = rustix::process::Signal::from_named_raw(signal)
            .ok_or_else(|| Error::Invalid(format!("invalid signal: {signal}")))?;
        rustix::process::kill_process(pid, sig)
            .map_err(|e| Error::io(format!("signalling container {}", record.id))(e.into()))
    }

    /// Cleans up after a container whose monitor died (`kill -9`): kills what is left of
    /// the container, unmounts its root filesystem, and drops the runtime's state and
    /// cgroups, so `rm -f` always leaves nothing behind.
    pub fn reap_orphan(&self, record: &ContainerRecord) -> Result<(), Error> {
        // The recorded PID is the container's only while it is in the container's cgroup:
        // after a reboot it may be any process's.
        let in_container = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.contains(&record.id))
        };
        // A frozen (paused) task does not die of SIGKILL: thaw first (v1 freezer, v2).
        let cgroups = Path::new("/sys/fs/cgroup");
        let _ = std::fs::write(
            cgroups
                .join("freezer/berth")
                .join(&record.id)
                .join("freezer.state"),
            "THAWED",
        );
        let _ = std::fs::write(
            cgroups.join("berth").join(&record.id).join("cgroup.freeze"),
            "0",
        );
        if let Some(pid) = record
            .pid
            .filter(|p| in_container(*p))
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            // The init is not our child: wait for it to vanish from /proc.
            for _ in 0..200 {
                if process_state(pid.as_raw_nonzero().get() as u32).is_none() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        crate::rootfs::Layout::new(&self.dir(&record.id)).unmount()?;
        self.teardown_networks(record);
        let _ = std::fs::remove_dir_all(self.runtime_root().join(&record.id));
        let mut dirs = vec![cgroups.join("berth").join(&record.id)];
        if let Ok(rd) = std::fs::read_dir(cgroups) {
            dirs.extend(
                rd.flatten()
                    .map(|c| c.path().join("berth").join(&record.id)),
            );
        }
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
        Ok(())
    }

    /// Takes a container off every network it is on and deletes its namespace; goes on past
    /// failures and reports the first.
    pub fn detach_networks(&self, record: &ContainerRecord) -> Result<(), Error> {
        let mut first = None;
        for e in record.endpoints() {
            let bridge = self
                .network(&e.network)
                .and_then(|d| self.network_bridge(&d));
            // Their veths go with the namespace, removed below.
            if let Err(err) = bridge.and_then(|b| Ok(b.release(&record.id)?)) {
                first.get_or_insert(err);
            }
        }
        if let Err(err) = berth_network::remove_namespace(&record.id) {
            first.get_or_insert(err.into());
        }
        first.map_or(Ok(()), Err)
    }

    /// Removes what a killed monitor left of the container's networking (namespace, veths,
    /// leases, port rules), so that a new start can make them again; nothing when it left
    /// nothing (one stat).
    pub fn clear_stale_networks(&self, record: &ContainerRecord) {
        if berth_network::namespace_exists(&record.id) {
            self.teardown_networks(record);
        }
    }

    /// Takes the container off its networks deleting each veth itself (the namespace's end,
    /// which destroys them too, is asynchronous in the kernel: a new start could find them),
    /// then the namespace; best effort.
    fn teardown_networks(&self, record: &ContainerRecord) {
        for e in record.endpoints() {
            if let Ok(bridge) = self
                .network(&e.network)
                .and_then(|d| self.network_bridge(&d))
            {
                let _ = bridge.teardown(&record.id);
            }
        }
        let _ = berth_network::remove_namespace(&record.id);
    }

    /// Docker's default bridge network, with its state in this store.
    pub fn bridge(&self) -> berth_network::Bridge {
        berth_network::Bridge::default_network(self.runroot.clone())
    }

    /// The json-file log of a container.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    /// The path of a container's file.
    pub fn path(&self, id: &str, file: &str) -> PathBuf {
        self.dir(id).join(file)
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The container init's PID as recorded under `root`, read without opening the store (for a
/// signal-forwarding thread that polls it).
pub fn recorded_pid(root: &Path, id: &str) -> Option<i32> {
    let bytes = std::fs::read(root.join("containers").join(id).join(RECORD)).ok()?;
    serde_json::from_slice::<ContainerRecord>(&bytes).ok()?.pid
}

/// Whether `pid` is this container's monitor and alive: not a zombie, and not another
/// process that reused the PID.
fn monitor_alive(pid: u32, id: &str) -> bool {
    if process_state(pid).is_none() {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains("container-monitor") && c.contains(id)
        })
        .unwrap_or(false)
}

/// The state letter of a live process; `None` if it is gone or a zombie (a process whose
/// parent died may stay a zombie for a while where PID 1 reaps slowly).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may itself hold spaces.
    let state = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()?;
    (!matches!(state, 'Z' | 'X')).then_some(state)
}

/// 64 random hex characters: container IDs, anonymous volume names, network IDs.
pub fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(Error::io("reading /dev/urandom"))?;
    Ok(hex::encode(bytes))
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn validate_name(name: &str) -> Result<(), Error> {
    if crate::options::valid_name(name) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "brave",
    "clever",
    "dazzling",
    "eager",
    "focused",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "modest",
    "nifty",
    "optimistic",
    "pensive",
    "quirky",
    "relaxed",
    "serene",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "youthful",
    "zealous",
];
const SURNAMES: &[&str] = &[
    "agnesi",
    "babbage",
    "curie",
    "dijkstra",
    "euler",
    "fermi",
    "galois",
    "hopper",
    "johnson",
    "kepler",
    "lovelace",
    "meitner",
    "noether",
    "pascal",
    "ramanujan",
    "shannon",
    "turing",
    "volta",
    "wiles",
    "yalow",
    "zuse",
    "hamilton",
    "knuth",
    "lamport",
];

/// Docker-style `adjective_surname`, drawn from the container's random ID.
fn random_name(id: &str) -> String {
    let n = u64::from_str_radix(&id[..12], 16).unwrap_or(0);
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let n = n ^ salt;
    format!(
        "{}_{}",
        ADJECTIVES[(n % ADJECTIVES.len() as u64) as usize],
        SURNAMES[((n / 97) % SURNAMES.len() as u64) as usize]
    )
}

/// Go's `units.HumanDuration`, which Docker uses for "Up 5 minutes" and "2 hours ago".
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let hours = ((secs as f64) / 3600.0 + 0.5) as i64;
    let minutes = secs / 60;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        assert!(validate_name("web-1.a_b").is_ok());
        let e = validate_name("-bad").unwrap_err().to_string();
        assert_eq!(
            e,
            "Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert!(validate_name("a").is_err());
        let n = random_name(&"ab".repeat(32));
        let (adj, sur) = n.split_once('_').unwrap();
        assert!(ADJECTIVES.contains(&adj) && SURNAMES.contains(&sur), "{n}");
    }
}
