//! `run -d`, `ps`, `logs`, `stop`, `kill`, `rm`, `wait`, and a killed monitor.

use crate::common::Berth;

/// A container that prints, then exits 0 on SIGTERM.
const SERVICE: &str = "echo started; echo warning >&2; trap 'echo stopping; exit 0' TERM; while true; do sleep 0.1; done";

#[test]
fn detached_containers_live_and_are_stopped() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let id = b
        .run(&["run", "-d", "--name", "svc", "busybox", "sh", "-c", SERVICE])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let ps = b.run(&["ps"]);
    let lines: Vec<&str> = ps.ok().lines().collect();
    assert!(lines[0].starts_with("CONTAINER ID   IMAGE"), "{}", lines[0]);
    assert!(
        lines[1].starts_with(&id[..12]) && lines[1].contains("Up ") && lines[1].ends_with("svc"),
        "{}",
        lines[1]
    );
    assert_eq!(b.run(&["ps", "-q", "--no-trunc"]).ok().trim(), id);
    // Logs: Docker's json-file, stdout and stderr kept apart.
    let mut logs = b.run(&["logs", "svc"]);
    for _ in 0..50 {
        if logs.stdout.contains("started") && logs.stderr.contains("warning") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        logs = b.run(&["logs", "svc"]);
    }
    assert_eq!(logs.stdout, "started\n");
    assert_eq!(logs.stderr, "warning\n");
    let raw =
        std::fs::read_to_string(b.root().join(format!("containers/{id}/{id}-json.log"))).unwrap();
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    b.run(&["rm", "svc"])
        .fails(1, &["container is running", "force remove"]);
    assert_eq!(b.run(&["stop", "-t", "5", "svc"]).ok(), "svc\n");
    let ps = b.run(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.ok().starts_with("svc Exited (0)"), "{}", ps.stdout);
    assert_eq!(b.run(&["ps", "-q"]).ok(), "");
    assert!(b.run(&["logs", "svc"]).ok().contains("stopping"));
    assert_eq!(b.run(&["wait", "svc"]).ok(), "0\n");
    assert_eq!(b.run(&["rm", "svc"]).ok(), "svc\n");
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
    b.run(&["stop", "svc"])
        .fails(1, &["No such container: svc"]);
}

#[test]
fn kill_rm_force_and_failed_starts() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    b.run(&["run", "-d", "--name", "kk", "busybox", "sleep", "300"])
        .ok();
    assert_eq!(b.run(&["kill", "-s", "TERM", "kk"]).ok(), "kk\n");
    // sleep as PID 1 ignores TERM, like in Docker; KILL ends it.
    b.run(&["kill", "kk"]).ok();
    assert_eq!(b.run(&["wait", "kk"]).ok(), "137\n");
    b.run(&["kill", "kk"]).fails(1, &["is not running"]);
    b.run(&["run", "-d", "--name", "ff", "busybox", "sleep", "300"])
        .ok();
    assert_eq!(b.run(&["rm", "-f", "ff", "kk"]).ok(), "ff\nkk\n");
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
    b.run(&["run", "-d", "busybox", "nosuch"])
        .fails(127, &["executable file not found"]);
    // A --rm container is gone by the time `run -d` looks: its end is still reported.
    b.run(&["run", "-d", "--rm", "busybox", "nosuch"])
        .fails(127, &["executable file not found"]);
    assert_eq!(
        b.run(&["run", "-d", "--rm", "busybox", "true"])
            .ok()
            .trim()
            .len(),
        64
    );
    b.run(&["kill", "-s", "BOGUS", "x"])
        .fails(1, &["Invalid signal: BOGUS"]);
}

#[test]
fn a_killed_monitor_leaves_a_state_rm_cleans() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let id = b
        .run(&["run", "-d", "busybox", "sleep", "300"])
        .ok()
        .trim()
        .to_string();
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.root().join(format!("containers/{id}/container.json"))).unwrap(),
    )
    .unwrap();
    let monitor = record["monitor_pid"].as_u64().unwrap();
    let init = record["pid"].as_u64().unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    let ps = b.run(&["ps", "-a", "--format", "{{.State}}"]);
    assert_eq!(ps.ok(), "exited\n");
    b.run(&["rm", "-f", &id]).ok();
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .map(|(_, r)| r.trim_start().chars().next().unwrap_or('?'));
    assert!(
        matches!(state, None | Some('Z')),
        "the container process was killed: {stat}"
    );
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(b.root().to_str().unwrap()),
        "the root filesystem was unmounted"
    );
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
}

/// Output sent to the caller's /dev/null is discarded, not refused (youki's runtime used to
/// reopen it read-only, so every write failed with EBADF).
#[test]
fn output_to_dev_null_is_discarded() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let quiet = |args: &[&str]| {
        b.cmd(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(
        quiet(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out && echo err >&2"
        ]),
        Some(0)
    );
    b.run(&["run", "-d", "--name", "quiet", "busybox", "sleep", "300"])
        .ok();
    assert_eq!(
        quiet(&["exec", "quiet", "sh", "-c", "echo out && echo err >&2"]),
        Some(0)
    );
    b.run(&["rm", "-f", "quiet"]).ok();
}
