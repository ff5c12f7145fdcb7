//! The commands that are not a container's lifecycle: `spec`, `features`, `update` and
//! `events --stats`.

use std::io::Read;

use libcgroups::common::{CgroupManager, ControllerOpt};
use libcontainer::container::ContainerStatus;
use libcontainer::oci_spec::runtime::{LinuxResources, Spec};

use super::args::{Events, Global, Update};
use super::lifecycle::{cgroup_manager, load};
use super::Error;

/// `spec`: a default config.json (runc's: `sh` on a terminal, the usual namespaces, masked
/// and read-only paths) in the bundle directory; refuses to overwrite one.
pub fn spec(a: &super::args::Spec) -> Result<(), Error> {
    if a.rootless {
        return Err(Error::Unsupported("rootless containers"));
    }
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(Error::Invalid(
            "File config.json exists. Remove it first".into(),
        ));
    }
    let mut spec = Spec::default();
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(true));
    }
    let text = serde_json::to_string_pretty(&spec).expect("a spec serialises");
    std::fs::write(&path, text + "\n").map_err(|source| Error::Io {
        what: "writing",
        path,
        source,
    })
}

/// `features`: what this runtime understands, in runc's `features` shape.
pub fn features() -> Result<(), Error> {
    let caps: Vec<String> = caps_names();
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": libcontainer::oci_spec::runtime::VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync",
                         "exec", "mand", "noatime", "nodev", "nodiratime", "noexec",
                         "nomand", "norelatime", "nostrictatime", "nosuid", "rbind",
                         "relatime", "remount", "ro", "rprivate", "rshared", "rslave",
                         "runbindable", "rw", "shared", "slave", "strictatime", "suid",
                         "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                            "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                              "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.berth.runtime": "libcontainer"
        }
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&v).expect("JSON values serialise")
    );
    Ok(())
}

/// The capability names the kernel headers know (CAP_CHOWN … CAP_CHECKPOINT_RESTORE).
fn caps_names() -> Vec<String> {
    [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
    .iter()
    .map(|c| format!("CAP_{c}"))
    .collect()
}

/// The resources `update` applies: the `-r` JSON (file or `-` for stdin), then the flags.
fn update_resources(a: &Update) -> Result<LinuxResources, Error> {
    let mut v: serde_json::Value = match &a.resources {
        Some(path) => {
            let mut text = String::new();
            let read = if path.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)
            } else {
                std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
            };
            read.map_err(|source| Error::Io {
                what: "reading",
                path: path.clone(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|e| {
                Error::Invalid(format!("{}: invalid resources JSON: {e}", path.display()))
            })?
        }
        None => serde_json::json!({}),
    };
    if !v.is_object() {
        return Err(Error::Invalid("resources must be a JSON object".into()));
    }
    if let Some(m) = a.memory {
        v["memory"]["limit"] = m.into();
    }
    if let Some(p) = a.pids_limit {
        v["pids"]["limit"] = p.into();
    }
    if let Some(q) = a.cpu_quota {
        v["cpu"]["quota"] = q.into();
    }
    if let Some(p) = a.cpu_period {
        v["cpu"]["period"] = p.into();
    }
    if let Some(s) = a.cpu_share {
        v["cpu"]["shares"] = s.into();
    }
    serde_json::from_value(v).map_err(|e| Error::Invalid(format!("invalid resources: {e}")))
}

/// `update`: the new limits through libcgroups' manager for the container's cgroup.
pub fn update(g: &Global, a: &Update) -> Result<(), Error> {
    let resources = update_resources(a)?;
    let c = load(g, &a.id)?;
    if c.status() == ContainerStatus::Stopped {
        return Err(Error::State("container not running".into()));
    }
    cgroup_manager(&c)?
        .apply(&ControllerOpt {
            resources: &resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| Error::Runtime {
            op: "update",
            message: super::chain(&e),
        })
}

/// `events --stats`: one `{"type":"stats","id":…,"data":…}` object.
pub fn events(g: &Global, a: &Events) -> Result<(), Error> {
    if !a.stats {
        return Err(Error::Unsupported("events without --stats (a stream)"));
    }
    let c = load(g, &a.id)?;
    if c.status() == ContainerStatus::Stopped {
        return Err(Error::State("container not running".into()));
    }
    let stats = cgroup_manager(&c)?.stats().map_err(|e| Error::Runtime {
        op: "events",
        message: super::chain(&e),
    })?;
    let v = serde_json::json!({"type": "stats", "id": c.id(), "data": stats});
    println!("{v}");
    Ok(())
}
