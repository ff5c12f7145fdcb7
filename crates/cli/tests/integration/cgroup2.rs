//! cgroup v2, on a machine that has it alone: the resource flags, the cgroup namespace, the
//! read-only cgroup mount, OOM kills, the freezer, `stats`/`top`/`exec`, and cleanup, run
//! in a qemu guest (`tests/fixtures/vm.py`) because this host binds every controller to a
//! v1 hierarchy. The guest runs this very `berth` binary (the host's root is its root,
//! read-only) with a store on its own tmpfs; each step's output comes back through a
//! shared folder and is asserted here.

use std::path::Path;
use std::process::Command;

use crate::common::{Berth, Run};

/// What one guest step printed and returned.
fn step(results: &Path, name: &str) -> Run {
    let read = |ext: &str| std::fs::read_to_string(results.join(format!("{name}.{ext}")));
    Run {
        code: read("rc")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("the guest did not run step {name}")),
        stdout: read("out").unwrap_or_default(),
        stderr: read("err").unwrap_or_default(),
    }
}

/// The guest's script: `r NAME CMD…` runs one step and keeps its output for the asserts.
const GUEST: &str = r#"
B="$BERTH --root /run/vm-store"
mkdir -p /run/vm-share/r
r() { n=$1; shift; "$@" > /run/vm-share/r/$n.out 2> /run/vm-share/r/$n.err; echo $? > /run/vm-share/r/$n.rc; }
cat /proc/self/cgroup > /run/vm-share/r/session.cgroup
r load $B load -i /run/vm-share/busybox.tar
r limits $B run --rm --network none --memory 64m --memory-swap 96m --cpus 1.5 --cpu-shares 512 \
  --pids-limit 50 busybox sh -c 'cd /sys/fs/cgroup && cat memory.max memory.swap.max cpu.max cpu.weight pids.max /proc/self/cgroup'
r defaults $B run --rm --network none busybox sh -c \
  'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; mkdir /sys/fs/cgroup/x'
r pids $B run --rm --network none --pids-limit 4 busybox sh -c \
  'for i in 1 2 3 4 5 6; do sleep 20 & done; echo done'
r oom $B run --network none --name hog --memory 24m --memory-swap 24m busybox sh -c \
  'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived'
r oom_state $B inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' hog
r calm $B run --network none --name calm busybox true
r calm_state $B inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' calm
r detached $B run -d --network none --name svc --memory 48m --cpus 0.5 busybox sleep 300
ID=$(cat /run/vm-share/r/detached.out)
r host_view sh -c "cd /sys/fs/cgroup/berth/$ID && cat memory.max cpu.max"
r exec $B exec svc cat /proc/self/cgroup
r top $B top svc
r stats $B stats --no-stream --format '{{.MemUsage}}' svc
r pause $B pause svc
r frozen cat /sys/fs/cgroup/berth/$ID/cgroup.freeze
r paused_state $B inspect -f '{{.State.Status}}' svc
r unpause $B unpause svc
r thawed cat /sys/fs/cgroup/berth/$ID/cgroup.freeze
r rm $B rm -f svc
r gone test ! -e /sys/fs/cgroup/berth/$ID
r orphan $B run -d --network none --name orphan busybox sleep 300
ORPHAN=$(cat /run/vm-share/r/orphan.out)
pkill -9 -f "container-monitor.*$ORPHAN"
r orphan_alive grep -q . /sys/fs/cgroup/berth/$ORPHAN/cgroup.procs
r orphan_rm $B rm -f orphan
r orphan_gone test ! -e /sys/fs/cgroup/berth/$ORPHAN
r cleanup $B rm hog calm
r ps $B ps -a -q
"#;

/// Every cgroup-facing behaviour of `run` and its neighbours on a cgroup-v2-only machine.
#[test]
fn cgroup_v2_limits_namespace_oom_freezer_and_cleanup() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let share = tempfile::Builder::new()
        .prefix("berth-vm-")
        .tempdir()
        .unwrap();
    let tar = share.path().join("busybox.tar");
    b.run(&["save", "-o", tar.to_str().unwrap(), "busybox"])
        .ok();
    let script = format!("BERTH={}\n{GUEST}", env!("CARGO_BIN_EXE_berth"));
    std::fs::write(share.path().join("guest.sh"), script).unwrap();
    let vm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vm.py");
    let status = Command::new("python3")
        .arg(vm)
        .args(["run", share.path().to_str().unwrap(), "--timeout", "900"])
        .status()
        .expect("run tests/fixtures/vm.py");
    let console = std::fs::read_to_string(share.path().join("console.log")).unwrap_or_default();
    let out = std::fs::read_to_string(share.path().join("guest.out")).unwrap_or_default();
    assert!(
        status.success(),
        "the guest failed ({status})\nconsole:\n{console}\nguest:\n{out}"
    );
    let r = share.path().join("r");

    // The CLI runs in a session's leaf cgroup, as on a systemd machine.
    let session = std::fs::read_to_string(r.join("session.cgroup")).unwrap();
    assert_eq!(session.trim(), "0::/user.slice/session-1.scope");
    step(&r, "load").ok();

    // Docker's flag → file mapping; the container sees its own cgroup as the root.
    let limits = step(&r, "limits");
    assert_eq!(
        limits.ok().lines().collect::<Vec<_>>(),
        [
            "67108864",      // --memory 64m
            "33554432",      // --memory-swap 96m: swap beyond the memory
            "150000 100000", // --cpus 1.5
            "59",            // --cpu-shares 512: runc's (and crun's) mapping, 1024 → 100
            "50",            // --pids-limit
            "0::/",          // cgroup namespace
        ]
    );
    let defaults = step(&r, "defaults");
    assert_eq!(defaults.code, 1, "{defaults:?}");
    assert_eq!(defaults.stdout, "max\nmax\n");
    assert!(
        defaults.stderr.contains("Read-only file system"),
        "{defaults:?}"
    );

    let pids = step(&r, "pids");
    assert!(pids.stderr.contains("can't fork"), "{pids:?}");

    let oom = step(&r, "oom");
    assert_eq!(oom.code, 137, "{oom:?}");
    assert!(!oom.stdout.contains("survived"));
    assert_eq!(step(&r, "oom_state").ok().trim(), "true 137");
    step(&r, "calm").ok();
    assert_eq!(step(&r, "calm_state").ok().trim(), "false 0");

    let id = step(&r, "detached").ok().trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(step(&r, "host_view").ok(), "50331648\n50000 100000\n");
    assert_eq!(step(&r, "exec").ok(), "0::/\n");
    assert!(step(&r, "top").ok().contains("sleep 300"));
    let stats = step(&r, "stats");
    assert!(stats.ok().trim().ends_with("/ 48MiB"), "{stats:?}");
    step(&r, "pause").ok();
    assert_eq!(step(&r, "frozen").ok(), "1\n");
    assert_eq!(step(&r, "paused_state").ok(), "paused\n");
    step(&r, "unpause").ok();
    assert_eq!(step(&r, "thawed").ok(), "0\n");
    step(&r, "rm").ok();
    step(&r, "gone").ok();

    // A monitor killed with -9 leaves a live cgroup that `rm -f` still empties and removes.
    step(&r, "orphan").ok();
    step(&r, "orphan_alive").ok();
    step(&r, "orphan_rm").ok();
    step(&r, "orphan_gone").ok();
    step(&r, "cleanup").ok();
    assert_eq!(step(&r, "ps").ok(), "");
}
