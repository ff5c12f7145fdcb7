//! Image config + run options → an OCI runtime spec with Docker's defaults.
//!
//! The spec is written as the JSON the OCI runtime-spec documents, so each default can be
//! checked against Docker's (`moby/oci/defaults.go`) line by line, and is then parsed into
//! `oci_spec` types, which validates its shape.

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::user::ResolvedUser;
use crate::{Error, RunOptions};

/// Docker's default capabilities (CapEff 0x00000000a80425fb).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths Docker hides from containers (bind-mounted over with nothing).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's PATH when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process a container runs: entrypoint + cmd with `--entrypoint` and arguments applied.
pub fn process_args(
    config: &ImageConfiguration,
    options: &RunOptions,
) -> Result<Vec<String>, Error> {
    let image = config.config().clone().unwrap_or_default();
    let entrypoint: Vec<String> = match &options.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => image.entrypoint().clone().unwrap_or_default(),
    };
    // Docker drops the image's CMD when --entrypoint is given.
    let cmd: Vec<String> = if !options.cmd.is_empty() {
        options.cmd.clone()
    } else if options.entrypoint.is_some() {
        Vec::new()
    } else {
        image.cmd().clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::Invalid(
            "no command specified: the image has neither CMD nor ENTRYPOINT, give a command after the image name".into(),
        ));
    }
    Ok(args)
}

/// The environment: image env, then `-e`, with PATH, HOSTNAME and HOME as Docker sets them.
pub fn environment(
    config: &ImageConfiguration,
    options: &RunOptions,
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or_default().to_string();
        match env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(slot) => *slot = kv,
            None => env.push(kv),
        }
    };
    set(format!("PATH={DEFAULT_PATH}"));
    set(format!("HOSTNAME={hostname}"));
    let image_env = config
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    for e in image_env.into_iter().chain(options.env.iter().cloned()) {
        set(e);
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    if options.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    env
}

/// `Config.Env` as `inspect` shows it: the image's environment, then `-e` (no HOSTNAME or
/// HOME, which the runtime adds).
pub fn environment_for_inspect(
    image: &oci_spec::image::Config,
    options: &RunOptions,
) -> Vec<String> {
    let mut env: Vec<String> = image.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    for e in &options.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    env
}

/// Everything the spec needs besides the image config and options.
pub struct SpecInputs<'a> {
    /// Container ID.
    pub id: &'a str,
    /// Hostname (short ID unless `--hostname`).
    pub hostname: &'a str,
    /// Resolved user.
    pub user: &'a ResolvedUser,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: &'a str,
    /// The container directory holding hosts/hostname/resolv.conf.
    pub dir: &'a Path,
    /// A network namespace prepared by `berth-network` to join, if any.
    pub netns: Option<&'a Path>,
    /// Bind mounts and volumes, with host paths resolved: (source, target, read-only).
    pub mounts: Vec<(std::path::PathBuf, String, bool)>,
    /// The host's tini for `--init`, bound read-only at `/sbin/docker-init`.
    pub init: Option<&'a Path>,
}

/// Where the container sees its own cgroups, read-only unless privileged.
pub const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// Where Docker's `--init` binary is mounted in the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Builds the spec.
pub fn build(options: &RunOptions, inputs: &SpecInputs) -> Result<Spec, Error> {
    let host_network = options.network.as_deref() == Some("host");
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match (host_network, inputs.netns) {
        (true, _) => {}
        (false, Some(path)) => namespaces.push(json!({"type": "network", "path": path})),
        (false, None) => namespaces.push(json!({"type": "network"})),
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let cap_list = crate::options::capabilities(options);
    let caps = json!(cap_list);
    let nosuid_noexec_nodev = json!(["nosuid", "noexec", "nodev"]);
    let bind = |name: &str, target: &str| {
        json!({
            "destination": target,
            "type": "bind",
            "source": inputs.dir.join(name),
            "options": ["rbind", "rprivate"],
        })
    };
    let sys_options = if options.privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    // Docker's: the container's own cgroups (its cgroup namespace's root on v2), where
    // runtimes such as the JVM's read their limits; read-only unless privileged.
    let cgroup_options = match sys_options.as_array() {
        Some(o) => json!(o),
        None => json!([]),
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": nosuid_noexec_nodev}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options}),
        json!({"destination": CGROUP_MOUNT, "type": "cgroup", "source": "cgroup", "options": cgroup_options}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nosuid_noexec_nodev}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
        bind("resolv.conf", "/etc/resolv.conf"),
        bind("hostname", "/etc/hostname"),
        bind("hosts", "/etc/hosts"),
    ];
    // A user's mount at or below /sys/fs/cgroup (`-v /sys/fs/cgroup:/sys/fs/cgroup`, as for
    // systemd in a container) takes that tree over: Docker's own mount (and its seal) goes.
    let under_cgroup = |t: &str| Path::new(t).starts_with(CGROUP_MOUNT);
    let tmpfs = options
        .tmpfs
        .iter()
        .map(|t| crate::options::parse_tmpfs(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut user_targets = inputs.mounts.iter().map(|(_, t, _)| t.as_str());
    if user_targets.any(under_cgroup) || tmpfs.iter().any(|(t, _)| under_cgroup(t)) {
        mounts.retain(|m| m["destination"] != CGROUP_MOUNT);
    }
    for (source, target, read_only) in &inputs.mounts {
        let mut o = vec!["rbind", "rprivate"];
        if *read_only {
            o.push("ro");
        }
        mounts.push(json!({"destination": target, "type": "bind", "source": source, "options": o}));
    }
    for (path, o) in tmpfs {
        mounts.push(json!({"destination": path, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    let mut args = inputs.args.clone();
    if let Some(init) = inputs.init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "rprivate", "ro"]}));
        args = [INIT_PATH.to_string(), "--".to_string()]
            .into_iter()
            .chain(args)
            .collect();
    }
    let rlimits: Vec<Value> = options
        .ulimits
        .iter()
        .map(|u| {
            json!({
                "type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
                "soft": u.soft as u64,
                "hard": u.hard as u64,
            })
        })
        .collect();
    let cgroups_path = format!("/berth/{}", inputs.id);
    let mut process = json!({
        "terminal": options.tty,
        "user": {
            "uid": inputs.user.uid,
            "gid": inputs.user.gid,
            "additionalGids": inputs.user.additional_gids,
        },
        "args": args,
        "env": inputs.env,
        "cwd": inputs.cwd,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "rlimits": rlimits,
        "oomScoreAdj": 0,
    });
    // Left out rather than false: libcontainer 0.7 loads seccomp before dropping
    // capabilities only when the field is absent, and a filter loaded after the drop,
    // without no_new_privs, is refused by the kernel.
    if options.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path,
        "resources": resources(options),
    });
    if options.privileged {
        linux["devices"] = json!(host_devices());
    } else {
        linux["seccomp"] = crate::seccomp::default_profile(&cap_list);
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    let spec: Value = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": options.read_only},
        "hostname": if host_network { Value::Null } else { json!(inputs.hostname) },
        "mounts": mounts,
        "linux": linux,
    });
    serde_json::from_value(spec)
        .map_err(|e| Error::Invalid(format!("internal error building the OCI spec: {e}")))
}

/// `linux.resources`: the device rule and the limits of `--memory`, `--cpus`, … in the
/// runtime spec's units.
fn resources(options: &RunOptions) -> Value {
    let r = &options.resources;
    let devices = if options.privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        json!([{"allow": false, "access": "rwm"}])
    };
    let mut out = json!({"devices": devices});
    if let Some(m) = r.memory.filter(|m| *m > 0) {
        let mut memory = json!({"limit": m});
        if swap_accounting() {
            // Docker's default: as much swap as memory (memory + swap = 2 × memory).
            let swap = match r.memory_swap {
                Some(s) if s != 0 => s,
                _ => m * 2,
            };
            memory["swap"] = json!(swap);
        }
        out["memory"] = memory;
    }
    let mut cpu = serde_json::Map::new();
    if let Some(n) = r.nano_cpus.filter(|n| *n > 0) {
        let period: i64 = 100_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(n * period / 1_000_000_000));
    }
    if let Some(s) = r.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if !cpu.is_empty() {
        out["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = r.pids_limit {
        out["pids"] = json!({"limit": if p > 0 { p } else { -1 }});
    }
    out
}

/// Whether the kernel accounts swap per cgroup (Docker drops the swap limit, with a
/// warning, where it does not).
pub fn swap_accounting() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || (Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
            && std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
                .is_ok_and(|c| c.contains("memory")))
}

/// The host's device nodes (top level of `/dev`), which `--privileged` gives the container.
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/dev") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let kind = if m.file_type().is_char_device() {
            "c"
        } else if m.file_type().is_block_device() {
            "b"
        } else {
            continue;
        };
        let name = e.file_name().to_string_lossy().into_owned();
        // The runtime makes these itself, and /dev/console belongs to the terminal.
        if [
            "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        let rdev = m.rdev();
        out.push(json!({
            "path": format!("/dev/{name}"),
            "type": kind,
            "major": rustix::fs::major(rdev),
            "minor": rustix::fs::minor(rdev),
            "fileMode": m.mode() & 0o7777,
            "uid": m.uid(),
            "gid": m.gid(),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> ImageConfiguration {
        serde_json::from_str(json).unwrap()
    }

    fn check(image: &str, options: RunOptions, expected: &str) {
        let got = match process_args(&config(image), &options) {
            Ok(a) => a.join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected);
    }

    const BASE: &str = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Entrypoint":["/ep"],"Cmd":["a","b"]}}"#;
    const NONE: &str =
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

    #[test]
    fn args_follow_docker() {
        check(BASE, RunOptions::default(), "/ep a b");
        check(
            BASE,
            RunOptions {
                cmd: vec!["x".into()],
                ..Default::default()
            },
            "/ep x",
        );
        check(
            BASE,
            RunOptions {
                entrypoint: Some("sh".into()),
                ..Default::default()
            },
            "sh",
        );
        check(
            BASE,
            RunOptions {
                entrypoint: Some(String::new()),
                cmd: vec!["ls".into()],
                ..Default::default()
            },
            "ls",
        );
        check(NONE, RunOptions::default(), "error: no command specified: the image has neither CMD nor ENTRYPOINT, give a command after the image name");
    }

    #[test]
    fn environment_layers_image_then_flags() {
        let c = config(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":["PATH=/x","A=1"]}}"#,
        );
        let o = RunOptions {
            env: vec!["A=2".into(), "B=3".into()],
            ..Default::default()
        };
        assert_eq!(
            environment(&c, &o, "abc", "/root"),
            ["PATH=/x", "HOSTNAME=abc", "A=2", "B=3", "HOME=/root"]
        );
    }
}
