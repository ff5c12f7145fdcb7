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
}

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
    let caps = json!(DEFAULT_CAPABILITIES);
    let nosuid_noexec_nodev = json!(["nosuid", "noexec", "nodev"]);
    let bind = |name: &str, target: &str| {
        json!({
            "destination": target,
            "type": "bind",
            "source": inputs.dir.join(name),
            "options": ["rbind", "rprivate"],
        })
    };
    let mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": nosuid_noexec_nodev}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nosuid_noexec_nodev}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
        bind("resolv.conf", "/etc/resolv.conf"),
        bind("hostname", "/etc/hostname"),
        bind("hosts", "/etc/hosts"),
    ];
    let cgroups_path = format!("/berth/{}", inputs.id);
    let spec: Value = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {
                "uid": inputs.user.uid,
                "gid": inputs.user.gid,
                "additionalGids": inputs.user.additional_gids,
            },
            "args": inputs.args,
            "env": inputs.env,
            "cwd": inputs.cwd,
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
            },
            // Left out rather than false: libcontainer 0.7 loads seccomp before dropping
            // capabilities only when the field is absent, and a filter loaded after the
            // drop, without no_new_privs, is refused by the kernel.
            "oomScoreAdj": 0,
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": if host_network { Value::Null } else { json!(inputs.hostname) },
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": cgroups_path,
            "seccomp": crate::seccomp::default_profile(),
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "resources": {
                "devices": [{"allow": false, "access": "rwm"}],
            },
        },
    });
    serde_json::from_value(spec)
        .map_err(|e| Error::Invalid(format!("internal error building the OCI spec: {e}")))
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
