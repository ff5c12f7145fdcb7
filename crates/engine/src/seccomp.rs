//! The seccomp filter every container gets by default.
//!
//! Docker's default profile is an allowlist of about 350 system calls with EPERM for the
//! rest, plus exceptions keyed on capabilities. berth states the same policy from the other
//! side: everything is allowed except the calls Docker's profile keeps from an unprivileged
//! container (kernel modules, keyrings, mounts, namespaces, clocks, reboot, swap, BPF, perf,
//! ptrace-like memory access of other processes, …), which fail with EPERM, and `clone3`,
//! which fails with ENOSYS exactly as in Docker's profile so that libc falls back to `clone`,
//! whose flags the kernel checks against the dropped CAP_SYS_ADMIN. A denylist keeps calls
//! newer than the list working, where an allowlist written here would silently lag the
//! kernel; the cost is that a dangerous call added to a future kernel is allowed until it is
//! listed.

use serde_json::{json, Value};

/// Calls refused with EPERM (Docker's profile refuses them to containers without the
/// matching capability, which default containers never have).
pub const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "_sysctl",
    "sysfs",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// Calls Docker's profile gives back to a container granted a capability (`--cap-add`).
const UNLOCKED_BY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setns",
            "umount",
            "umount2",
            "unshare",
            "clone3",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &["kcmp", "process_vm_readv", "process_vm_writev"],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
    ),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// The OCI `linux.seccomp` section for a container with capabilities `caps`: Docker's
/// refusals, less those the capabilities unlock in Docker's profile (so `--cap-add
/// SYS_ADMIN` can mount, as with Docker).
pub fn default_profile(caps: &[String]) -> Value {
    let unlocked: Vec<&str> = UNLOCKED_BY
        .iter()
        .filter(|(cap, _)| caps.iter().any(|c| c == cap))
        .flat_map(|(_, calls)| calls.iter().copied())
        .collect();
    let denied: Vec<&str> = DENIED
        .iter()
        .copied()
        .filter(|c| !unlocked.contains(c))
        .collect();
    let mut rules = vec![json!({"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1})];
    if !unlocked.contains(&"clone3") {
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}
