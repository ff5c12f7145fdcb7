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

/// The OCI `linux.seccomp` section.
pub fn default_profile() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        ],
    })
}
