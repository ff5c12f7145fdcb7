//! What `docker run`/`docker create` asks for, and the parsers of Docker's flag syntax.
//!
//! The parsers live here rather than in `cli` because the Engine API (`berth serve`) gets the
//! same values as strings (`Binds`, `Tmpfs`, `RestartPolicy`, …) and must refuse them with the
//! same words. Each parser returns [`Error::Invalid`] with Docker's message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

/// What `docker run`/`create` was asked for, as the engine needs it. Every field has a
/// default so records written by older berths still load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOptions {
    /// The image reference or ID as given.
    pub image: String,
    /// Arguments after the image (replace the image's CMD).
    pub cmd: Vec<String>,
    /// `--entrypoint` (an empty string clears the image's).
    pub entrypoint: Option<String>,
    /// `-e KEY=VALUE` and `--env-file` lines, already resolved against the caller's
    /// environment.
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u user[:group]`.
    pub user: Option<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--rm`.
    pub rm: bool,
    /// `--network`: `bridge` (the default), `none` or `host`.
    pub network: Option<String>,
    /// `--network-alias`: more names on its (user-defined) network.
    pub network_aliases: Vec<String>,
    /// `-p`: published ports (host port 0: one picked when the container starts).
    pub publish: Vec<berth_network::PortMapping>,
    /// `-P`: publish every port the image exposes on a random host port.
    pub publish_all: bool,
    /// `--label` and `--label-file`.
    pub labels: BTreeMap<String, String>,
    /// `--add-host NAME:IP` (IP may be `host-gateway`).
    pub add_hosts: Vec<String>,
    /// `-v`: bind mounts and volumes.
    pub mounts: Vec<MountSpec>,
    /// `--tmpfs PATH[:OPTIONS]`.
    pub tmpfs: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--cap-add` (normalised to `CAP_X`, or `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop` (normalised to `CAP_X`, or `ALL`).
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--stop-signal` (overrides the image's STOPSIGNAL).
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds (default 10).
    pub stop_timeout: Option<i64>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--pids-limit`.
    pub resources: Resources,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--init`: run Docker's tiny init (tini) as PID 1.
    pub init: bool,
    /// `-i`: keep stdin open.
    pub interactive: bool,
    /// `-t`: give the container a pseudo-terminal.
    pub tty: bool,
    /// `-a`: the streams a foreground `run` connects to its caller.
    pub attach: AttachStreams,
    /// The container's filesystem is thrown away (or read once) when it ends, as a build
    /// step's: like `--rm`, its overlay is mounted `volatile`, never synced to disk.
    pub transient: bool,
}

/// The streams a foreground `run` connects to its caller (Docker's `Config.AttachStdin`,
/// `AttachStdout` and `AttachStderr`); the others go to the log alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachStreams {
    /// The caller's input reaches the container (with `-i`).
    pub stdin: bool,
    /// The container's stdout reaches the caller.
    pub stdout: bool,
    /// The container's stderr reaches the caller.
    pub stderr: bool,
}

impl AttachStreams {
    /// Docker's rule: the streams named by `-a` (any case), or else stdout and stderr; stdin
    /// with `-i` either way; none when detached.
    pub fn parse(values: &[String], interactive: bool, detached: bool) -> Result<Self, Error> {
        if values.is_empty() {
            return Ok(AttachStreams {
                stdin: interactive && !detached,
                stdout: !detached,
                stderr: !detached,
            });
        }
        if detached {
            return Err(invalid("Conflicting options: -a and -d"));
        }
        // `-i` attaches stdin whatever `-a` names, as Docker's CLI does.
        let mut a = AttachStreams {
            stdin: interactive,
            ..Default::default()
        };
        for v in values {
            match v.to_ascii_lowercase().as_str() {
                "stdin" => a.stdin = true,
                "stdout" => a.stdout = true,
                "stderr" => a.stderr = true,
                _ => {
                    return Err(invalid(format!(
                        "invalid argument {v:?} for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
                    )))
                }
            }
        }
        Ok(a)
    }
}

/// One `-v` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// A host path (`bind`) or a volume (`volume`).
    pub kind: MountKind,
    /// Host path or volume name; empty for an anonymous volume until `create` names it.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    /// `:ro`.
    pub read_only: bool,
}

/// What a mount's source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host directory or file.
    Bind,
    /// A volume in berth's store.
    Volume,
}

/// One `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// `nofile`, `nproc`, … (without `RLIMIT_`).
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// Resource limits, in Docker's units (bytes, billionths of a CPU).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--memory-swap` in bytes (memory + swap; -1 unlimited).
    pub memory_swap: Option<i64>,
    /// `--cpus` × 10⁹.
    pub nano_cpus: Option<i64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--pids-limit` (≤ 0: unlimited).
    pub pids_limit: Option<i64>,
}

/// `--restart`: what the monitor does when the container ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    /// `no` (empty), `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    /// For `on-failure:N`: at most N restarts (0: no limit).
    pub max_retries: u32,
}

impl RestartPolicy {
    /// Whether the container starts again after ending with `code`, having restarted
    /// `count` times already, unless the user stopped it.
    pub fn restarts(&self, code: i32, count: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.max_retries == 0 || count < self.max_retries),
            _ => false,
        }
    }

    /// The name Docker shows (`no` when none).
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            "no"
        } else {
            &self.name
        }
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

/// Parses `--restart` (`no`, `always`, `unless-stopped`, `on-failure[:N]`).
pub fn parse_restart(s: &str) -> Result<RestartPolicy, Error> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let max_retries = match count {
        None => 0,
        Some(c) => c.parse::<u32>().map_err(|_| {
            invalid(format!(
                "invalid restart policy format: maximum retry count must be an integer: {s:?}"
            ))
        })?,
    };
    match name {
        "" | "no" if count.is_none() => Ok(RestartPolicy::default()),
        "always" | "unless-stopped" if count.is_none() => Ok(RestartPolicy {
            name: name.into(),
            max_retries: 0,
        }),
        "always" | "unless-stopped" | "no" => Err(invalid(format!(
            "invalid restart policy: maximum retry count can only be used with 'on-failure': {s:?}"
        ))),
        "on-failure" => Ok(RestartPolicy {
            name: name.into(),
            max_retries,
        }),
        _ => Err(invalid(format!(
            "invalid restart policy {name:?}: use no, always, unless-stopped or on-failure[:max-retries]"
        ))),
    }
}

/// Parses a size as Docker's `RAMInBytes`: a number with an optional unit
/// (`b`, `k`, `m`, `g`, `t`, `p`, binary multiples, any case, optional trailing `b`/`ib`).
pub fn parse_bytes(s: &str) -> Result<i64, Error> {
    let bad = || invalid(format!("invalid size: '{s}'"));
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    if num < 0.0 {
        return Err(bad());
    }
    Ok((num * mult) as i64)
}

/// Checks resource flags as Docker's daemon does and fills in its defaults.
pub fn check_resources(r: &Resources, host_cpus: usize) -> Result<(), Error> {
    if let Some(m) = r.memory {
        if m != 0 && m < 6 * 1024 * 1024 {
            return Err(invalid("Minimum memory limit allowed is 6MB"));
        }
    }
    if let Some(s) = r.memory_swap.filter(|s| *s > 0) {
        match r.memory {
            None | Some(0) => {
                return Err(invalid(
                    "You should always set the Memory limit when using Memoryswap limit, see usage",
                ))
            }
            Some(m) if s < m => {
                return Err(invalid(
                    "Minimum memoryswap limit should be larger than memory limit, see usage",
                ))
            }
            _ => {}
        }
    }
    if let Some(n) = r.nano_cpus {
        if n < 0 || n > host_cpus as i64 * 1_000_000_000 {
            return Err(invalid(format!(
                "Range of CPUs is from 0.01 to {host_cpus}.00, as there are only {host_cpus} CPUs available"
            )));
        }
    }
    Ok(())
}

/// Parses `--cpus` (a decimal number of CPUs) into billionths.
pub fn parse_cpus(s: &str) -> Result<i64, Error> {
    let v: f64 = s
        .parse()
        .map_err(|_| invalid(format!("invalid argument \"{s}\" for \"--cpus\" flag: failed to parse {s} as a rational number")))?;
    Ok((v * 1e9).round() as i64)
}

const ULIMITS: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Parses `--ulimit name=soft[:hard]`.
pub fn parse_ulimit(s: &str) -> Result<Ulimit, Error> {
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| invalid(format!("invalid ulimit argument: {s}")))?;
    if !ULIMITS.contains(&name) {
        return Err(invalid(format!("invalid ulimit type: {name}")));
    }
    let num = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| invalid(format!("invalid ulimit value {v:?} in {s:?}: use a number")))
    };
    let (soft, hard) = match values.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(values)?, num(values)?),
    };
    if soft > hard && hard >= 0 {
        return Err(invalid(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(Ulimit {
        name: name.into(),
        soft,
        hard,
    })
}

/// Docker's rule for volume and container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

/// The options `-v` takes after the target.
const MOUNT_OPTIONS: [&str; 11] = [
    "ro", "rw", "z", "Z", "private", "rprivate", "shared", "rshared", "slave", "rslave", "nocopy",
];

/// Parses `-v SRC:DST[:OPTS]`, `-v NAME:DST`, or `-v DST` (an anonymous volume).
pub fn parse_volume(s: &str) -> Result<MountSpec, Error> {
    let bad = |why: &str| invalid(format!("invalid volume specification: '{s}': {why}"));
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [t] => ("", *t, ""),
        // A destination and a mode only (`/data:ro`) is not a volume (Docker's rule).
        [_, o] if o.split(',').all(|x| MOUNT_OPTIONS.contains(&x)) => {
            return Err(bad("a mode needs a source: use SOURCE:DESTINATION:MODE"))
        }
        [a, b] => (*a, *b, ""),
        [a, b, o] => (*a, *b, *o),
        _ => return Err(bad("too many colons")),
    };
    if !target.starts_with('/') {
        return Err(bad(&format!(
            "invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    let target = clean_path(target);
    if target == "/" {
        return Err(bad("invalid mount path: '/' cannot be a mount point"));
    }
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            o if MOUNT_OPTIONS.contains(&o) => {}
            _ => return Err(bad(&format!("unknown option '{o}'"))),
        }
    }
    let kind = if source.is_empty() {
        MountKind::Volume
    } else if source.starts_with('/') {
        MountKind::Bind
    } else if valid_name(source) {
        MountKind::Volume
    } else {
        return Err(invalid(format!(
            "create {source}: \"{source}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    };
    Ok(MountSpec {
        kind,
        source: source.into(),
        target,
        read_only,
    })
}

/// `/a//b/./c/..` → `/a/b` (Docker cleans mount targets as Go's `filepath.Clean`).
fn clean_path(p: &str) -> String {
    format!("/{}", berth_image::clean_path(p))
}

/// What one `--mount` gives: a bind or volume mount, or a tmpfs (`PATH[:OPTIONS]`, as
/// `--tmpfs` takes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// `type=bind` or `type=volume`.
    Mount(MountSpec),
    /// `type=tmpfs`.
    Tmpfs(String),
}

/// Parses `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…]`
/// (Docker's keys and their aliases: `src`, `dst`/`destination`, `ro`).
pub fn parse_mount(s: &str) -> Result<Mount, Error> {
    let bad = |why: String| {
        invalid(format!(
            "invalid argument \"{s}\" for \"--mount\" flag: {why}"
        ))
    };
    let (mut kind, mut source, mut target) = ("volume".to_string(), String::new(), String::new());
    let mut read_only = false;
    let mut tmpfs_opts: Vec<String> = Vec::new();
    for field in s.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (field.trim(), None),
        };
        match (k, v) {
            ("type", Some(v)) => kind = v.to_string(),
            ("source" | "src", Some(v)) => source = v.to_string(),
            ("target" | "dst" | "destination", Some(v)) => target = v.to_string(),
            ("readonly" | "ro", None) => read_only = true,
            ("readonly" | "ro", Some(v)) => {
                read_only = match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(format!("invalid value for {k}: {v}"))),
                }
            }
            ("tmpfs-size", Some(v)) => tmpfs_opts.push(format!("size={v}")),
            ("tmpfs-mode", Some(v)) => tmpfs_opts.push(format!("mode={v}")),
            ("bind-propagation" | "volume-nocopy" | "consistency", _) => {}
            _ => return Err(bad(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if target.is_empty() {
        return Err(bad("target is required".into()));
    }
    match kind.as_str() {
        "tmpfs" => {
            if !source.is_empty() {
                return Err(bad("source is not allowed for tmpfs mounts".into()));
            }
            let spec = if tmpfs_opts.is_empty() {
                target
            } else {
                format!("{target}:{}", tmpfs_opts.join(","))
            };
            parse_tmpfs(&spec)?;
            Ok(Mount::Tmpfs(spec))
        }
        "bind" => {
            if source.is_empty() {
                return Err(bad("source is required when specifying bind mount".into()));
            }
            // Unlike -v, --mount does not make a missing host path (Docker's rule).
            if std::fs::symlink_metadata(&source).is_err() {
                return Err(bad(format!("bind source path does not exist: {source}")));
            }
            let mut m = parse_volume(&format!("{source}:{target}"))?;
            m.read_only = read_only;
            Ok(Mount::Mount(m))
        }
        "volume" => {
            let spec = if source.is_empty() {
                target
            } else {
                format!("{source}:{target}")
            };
            let mut m = parse_volume(&spec)?;
            m.read_only = read_only;
            Ok(Mount::Mount(m))
        }
        other => Err(bad(format!(
            "invalid mount type {other:?}: use bind, volume or tmpfs"
        ))),
    }
}

/// Parses `--tmpfs PATH[:OPTIONS]` into the path and mount options.
pub fn parse_tmpfs(s: &str) -> Result<(String, Vec<String>), Error> {
    let (path, opts) = s.split_once(':').unwrap_or((s, ""));
    if !path.starts_with('/') {
        return Err(invalid(format!(
            "invalid tmpfs specification: '{s}': mount path must be absolute"
        )));
    }
    let mut options: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let key = o.split('=').next().unwrap_or_default();
        let known = [
            "size",
            "mode",
            "uid",
            "gid",
            "nr_inodes",
            "nr_blocks",
            "ro",
            "rw",
            "exec",
            "noexec",
            "suid",
            "nosuid",
            "dev",
            "nodev",
            "atime",
            "noatime",
            "relatime",
            "strictatime",
            "nodiratime",
            "diratime",
        ];
        if !known.contains(&key) {
            return Err(invalid(format!(
                "invalid tmpfs specification: '{s}': unknown option '{o}'"
            )));
        }
        // A later exec/suid/dev replaces the default no-.
        let opposite = match o {
            "exec" => Some("noexec"),
            "suid" => Some("nosuid"),
            "dev" => Some("nodev"),
            _ => None,
        };
        if let Some(no) = opposite {
            options.retain(|x| x != no);
        }
        options.push(o.into());
    }
    Ok((clean_path(path), options))
}

/// Parses `--add-host NAME:IP` (also `NAME=IP`, as Docker 25+ accepts).
pub fn parse_add_host(s: &str) -> Result<(String, String), Error> {
    let (name, ip) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| invalid(format!("bad format for add-host: {s:?}")))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err()) {
        return Err(invalid(format!("invalid IP address in add-host: {ip:?}")));
    }
    Ok((name.into(), ip.into()))
}

/// Every capability the kernel may know, as Docker's `--cap-add ALL` grants them.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Normalises a `--cap-add`/`--cap-drop` value (`net_admin` → `CAP_NET_ADMIN`), refusing
/// names the kernel does not have, in Docker's words.
pub fn parse_capability(s: &str, flag: &str) -> Result<String, Error> {
    let upper = s.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(invalid(format!(
            "invalid {flag}: unknown capability: \"{name}\""
        )))
    }
}

/// The capabilities this process may hand on (its bounding set): a container can get no
/// more, and asking the kernel for more fails the whole start. Index = capability number.
fn grantable() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The capability set of a container: Docker's defaults, then drops, then adds; with
/// `--privileged` or `ALL`, every capability this host can grant.
pub fn capabilities(options: &RunOptions) -> Vec<String> {
    let bounding = grantable();
    let grantable = |c: &str| {
        ALL_CAPABILITIES
            .iter()
            .position(|x| *x == c)
            .is_some_and(|i| bounding & (1u64 << i) != 0)
    };
    if options.privileged {
        return ALL_CAPABILITIES
            .iter()
            .filter(|c| grantable(c))
            .map(|c| c.to_string())
            .collect();
    }
    let has = |list: &[String], c: &str| list.iter().any(|x| x == "ALL" || x == c);
    let mut caps: Vec<String> = ALL_CAPABILITIES
        .iter()
        .filter(|c| {
            let default = crate::spec::DEFAULT_CAPABILITIES.contains(c);
            let added = has(&options.cap_add, c);
            let dropped = options.cap_drop.iter().any(|x| x == *c)
                || (options.cap_drop.iter().any(|x| x == "ALL")
                    && !options.cap_add.iter().any(|x| x == *c));
            (default || added) && !dropped && grantable(c)
        })
        .map(|c| c.to_string())
        .collect();
    caps.sort();
    caps
}

/// Parses `--env-file` content: `KEY=VALUE` lines, `KEY` alone taken from `lookup`,
/// blank lines and `#` comments skipped.
pub fn parse_env_file(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| match l.split_once('=') {
            Some(_) => Some(l.to_string()),
            None => lookup(l.trim_end()).map(|v| format!("{}={v}", l.trim_end())),
        })
        .collect()
}

/// Parses `--label KEY[=VALUE]` (and `--label-file` lines).
pub fn parse_label(s: &str) -> (String, String) {
    match s.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// A signal as `docker kill -s` and `--stop-signal` take it: a number, or a name with or
/// without `SIG`, in any case.
pub fn parse_signal(s: &str) -> Result<i32, Error> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(invalid(format!("Invalid signal: {s}")));
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return Err(invalid(format!("Invalid signal: {s}"))),
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: std::fmt::Debug>(got: Result<T, Error>, expected: &str) {
        let got = match got {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn restart_policies() {
        check(
            parse_restart("no").map(|p| p.display_name().to_string()),
            "\"no\"",
        );
        check(parse_restart("on-failure:3").map(|p| p.max_retries), "3");
        check(
            parse_restart("always:2"),
            "error: invalid restart policy: maximum retry count can only be used with 'on-failure': \"always:2\"",
        );
        check(
            parse_restart("sometimes"),
            "error: invalid restart policy \"sometimes\": use no, always, unless-stopped or on-failure[:max-retries]",
        );
        let p = parse_restart("on-failure:2").unwrap();
        assert!(p.restarts(1, 1, false) && !p.restarts(1, 2, false) && !p.restarts(0, 0, false));
        assert!(!parse_restart("always").unwrap().restarts(0, 9, true));
    }

    #[test]
    fn sizes() {
        check(parse_bytes("512m"), "536870912");
        check(parse_bytes("1g"), "1073741824");
        check(parse_bytes("64MB"), "67108864");
        check(parse_bytes("100"), "100");
        check(parse_bytes("1.5k"), "1536");
        check(parse_bytes("12x"), "error: invalid size: '12x'");
        check(parse_cpus("0.5"), "500000000");
        let r = Resources {
            memory: Some(1024),
            ..Default::default()
        };
        check(
            check_resources(&r, 2),
            "error: Minimum memory limit allowed is 6MB",
        );
        let r = Resources {
            memory_swap: Some(1 << 30),
            ..Default::default()
        };
        check(
            check_resources(&r, 2),
            "error: You should always set the Memory limit when using Memoryswap limit, see usage",
        );
        let r = Resources {
            nano_cpus: Some(3_000_000_000),
            ..Default::default()
        };
        check(
            check_resources(&r, 2),
            "error: Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        );
    }

    #[test]
    fn ulimits() {
        check(
            parse_ulimit("nofile=1024:2048"),
            "Ulimit { name: \"nofile\", soft: 1024, hard: 2048 }",
        );
        check(parse_ulimit("bogus=1"), "error: invalid ulimit type: bogus");
        check(
            parse_ulimit("nofile=10:5"),
            "error: ulimit soft limit must be less than or equal to hard limit: 10 > 5",
        );
    }

    #[test]
    fn volumes() {
        let v = |s| {
            parse_volume(s)
                .map(|m| format!("{:?} {} {} {}", m.kind, m.source, m.target, m.read_only))
        };
        check(v("/host:/data:ro"), "\"Bind /host /data true\"");
        check(v("cache:/var/cache/"), "\"Volume cache /var/cache false\"");
        check(v("/data"), "\"Volume  /data false\"");
        check(
            v("data:rel"),
            "error: invalid volume specification: 'data:rel': invalid mount path: 'rel' mount path must be absolute",
        );
        check(
            v("/a:/b:bogus"),
            "error: invalid volume specification: '/a:/b:bogus': unknown option 'bogus'",
        );
        check(
            v("/data:ro"),
            "error: invalid volume specification: '/data:ro': a mode needs a source: use SOURCE:DESTINATION:MODE",
        );
        check(
            v("xy:/a/.."),
            "error: invalid volume specification: 'xy:/a/..': invalid mount path: '/' cannot be a mount point",
        );
        check(
            v("a b:/x"),
            "error: create a b: \"a b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
        );
    }

    #[test]
    fn mount_flag() {
        let m = |s| parse_mount(s).map(|m| format!("{m:?}"));
        check(
            m("type=volume,source=data,target=/d,readonly"),
            "\"Mount(MountSpec { kind: Volume, source: \\\"data\\\", target: \\\"/d\\\", read_only: true })\"",
        );
        check(
            m("type=tmpfs,dst=/t,tmpfs-size=1m"),
            "\"Tmpfs(\\\"/t:size=1m\\\")\"",
        );
        check(
            m("type=bind,src=/nonexistent-berth,dst=/x"),
            "error: invalid argument \"type=bind,src=/nonexistent-berth,dst=/x\" for \"--mount\" flag: bind source path does not exist: /nonexistent-berth",
        );
        check(
            m("type=volume,src=x1"),
            "error: invalid argument \"type=volume,src=x1\" for \"--mount\" flag: target is required",
        );
        check(
            m("type=nfs,dst=/x"),
            "error: invalid argument \"type=nfs,dst=/x\" for \"--mount\" flag: invalid mount type \"nfs\": use bind, volume or tmpfs",
        );
    }

    #[test]
    fn tmpfs_hosts_caps_env() {
        check(
            parse_tmpfs("/run:size=1m,exec"),
            "(\"/run\", [\"nosuid\", \"nodev\", \"size=1m\", \"exec\"])",
        );
        check(
            parse_tmpfs("run"),
            "error: invalid tmpfs specification: 'run': mount path must be absolute",
        );
        check(parse_add_host("db:10.0.0.2"), "(\"db\", \"10.0.0.2\")");
        check(
            parse_add_host("db:nope"),
            "error: invalid IP address in add-host: \"nope\"",
        );
        check(parse_capability("net_admin", "CapAdd"), "\"CAP_NET_ADMIN\"");
        check(
            parse_capability("bogus", "CapAdd"),
            "error: invalid CapAdd: unknown capability: \"CAP_BOGUS\"",
        );
        let o = RunOptions {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["CAP_CHOWN".into()],
            ..Default::default()
        };
        assert_eq!(capabilities(&o), ["CAP_CHOWN"]);
        let o = RunOptions {
            cap_drop: vec!["CAP_NET_RAW".into()],
            cap_add: vec!["CAP_NET_ADMIN".into()],
            ..Default::default()
        };
        let caps = capabilities(&o);
        assert_eq!(caps.len(), 14);
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert_eq!(
            parse_env_file("# c\nA=1\n\nB\nC\n", |k| (k == "B").then(|| "x".into())),
            ["A=1", "B=x"]
        );
    }
}
