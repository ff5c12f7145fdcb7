//! `run` in the foreground: Docker's isolation defaults, flags and exit codes.

use crate::common::Berth;

/// `inspect` of one container.
fn container(b: &Berth, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(b.run(&["inspect", name]).ok()).unwrap();
    v[0].clone()
}

fn mounts_under(path: &std::path::Path) -> usize {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(1)
                .is_some_and(|m| m.starts_with(path.to_str().unwrap()))
        })
        .count()
}

#[test]
fn run_pulls_runs_and_reports_exit_codes() {
    let b = Berth::new();
    let out = b.run(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(out.ok(), "hello\n");
    assert!(
        out.stderr
            .contains("Unable to find image 'busybox:latest' locally"),
        "{}",
        out.stderr
    );
    assert_eq!(
        b.run(&["run", "--rm", "busybox", "sh", "-c", "exit 3"])
            .code,
        3
    );
    b.run(&["run", "--rm", "busybox", "nosuch"]).fails(
        127,
        &["exec: \"nosuch\": executable file not found in $PATH"],
    );
    b.run(&["run", "--rm", "busybox", "/etc/passwd"])
        .fails(126, &["permission denied"]);
    b.run(&["run", "--rm", "-u", "nosuch", "busybox", "true"])
        .fails(125, &["unable to find user nosuch"]);
    b.run(&["run", "--rm", "nosuch-image-xyz:1", "true"])
        .fails(125, &[]);
    // Nothing is left by --rm, whatever the outcome.
    assert_eq!(b.count("containers"), 0);
    assert_eq!(mounts_under(&b.root()), 0);
}

#[test]
fn an_image_without_a_command_is_refused() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let fs = b.lowerdirs("busybox")[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("rootfs.tar");
    crate::common::tar_dir(&fs, &tarball);
    b.run(&["import", tarball.to_str().unwrap(), "nocmd:1"])
        .ok();
    b.run(&["run", "--rm", "nocmd:1"])
        .fails(125, &["no command specified"]);
    assert_eq!(
        b.run(&["run", "--rm", "nocmd:1", "/bin/echo", "ok"]).ok(),
        "ok\n"
    );
}

#[test]
fn containers_get_dockers_isolation_defaults() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let script = r#"
grep CapEff /proc/self/status
hostname
ps -o pid | wc -l
echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-ro
touch /sys/x 2>/dev/null && echo sys-writable || echo sys-ro
mkdir /sys/fs/cgroup/x 2>/dev/null && echo cgroup-writable || echo cgroup-ro
stat -c %t,%T /proc/keys
echo "$HOME $PATH"
cat /etc/hostname
grep Seccomp: /proc/self/status
mount -t tmpfs x /mnt 2>/dev/null && echo mount-allowed || echo mount-refused
unshare -n true 2>/dev/null && echo unshare-allowed || echo unshare-refused
reboot -f 2>/dev/null; echo reboot=$?
"#;
    let out = b.run(&["run", "--rm", "busybox", "sh", "-c", script]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines[0], "CapEff:\t00000000a80425fb");
    let host = lines[1];
    assert!(
        host.len() == 12 && host.bytes().all(|c| c.is_ascii_hexdigit()),
        "{host}"
    );
    assert!(
        lines[2].trim().parse::<u32>().unwrap() <= 4,
        "host processes are visible: {}",
        lines[2]
    );
    assert_eq!(&lines[3..6], ["sysrq-ro", "sys-ro", "cgroup-ro"]);
    assert_eq!(lines[6], "1,3", "/proc/keys is masked with /dev/null");
    assert_eq!(
        lines[7],
        "/root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(lines[8], host);
    assert_eq!(lines[9], "Seccomp:\t2");
    assert_eq!(
        &lines[10..13],
        ["mount-refused", "unshare-refused", "reboot=1"]
    );
}

/// Docker's /sys/fs/cgroup: the container's own cgroups, where runtimes such as the JVM's
/// read their limits, and read-only all the way down (libcontainer leaves every part of it
/// writable; berth seals it before the container starts) unless privileged.
#[test]
fn the_containers_cgroups_are_visible_and_read_only() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let script = r#"
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then f=/sys/fs/cgroup/memory.max; else f=/sys/fs/cgroup/memory/memory.limit_in_bytes; fi
cat $f
echo 1 > $f 2>/dev/null && echo limit-writable || echo limit-ro
mkdir $(dirname $f)/x 2>/dev/null && echo mkdir-allowed || echo mkdir-refused
awk '$2 ~ "^/sys/fs/cgroup" {split($4, o, ","); print o[1]}' /proc/mounts | sort -u
"#;
    let out = b.run(&[
        "run", "--rm", "--memory", "64m", "busybox", "sh", "-c", script,
    ]);
    assert_eq!(out.ok(), "67108864\nlimit-ro\nmkdir-refused\nro\n");
    let privileged = b.run(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "awk '$2 ~ \"^/sys/fs/cgroup\" {split($4, o, \",\"); print o[1]}' /proc/mounts | sort -u",
    ]);
    assert_eq!(privileged.ok(), "rw\n");
    // A user's mount there takes the tree over, writable as the user asked.
    let own = b.run(&[
        "run",
        "--rm",
        "--tmpfs",
        "/sys/fs/cgroup",
        "busybox",
        "sh",
        "-c",
        "touch /sys/fs/cgroup/mine && ls /sys/fs/cgroup",
    ]);
    assert_eq!(own.ok(), "mine\n");
}

#[test]
fn user_workdir_env_entrypoint_and_names() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    std::env::set_var("BERTH_IT_FROM_CALLER", "inherited");
    let out = b
        .cmd(&[
            "run",
            "--rm",
            "-u",
            "nobody",
            "-w",
            "/app/sub",
            "-e",
            "A=1",
            "-e",
            "BERTH_IT_FROM_CALLER",
            "-h",
            "myhost",
            "busybox",
            "sh",
            "-c",
            "id -u; pwd; echo $A $BERTH_IT_FROM_CALLER; hostname",
        ])
        .env("BERTH_IT_FROM_CALLER", "inherited")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "65534\n/app/sub\n1 inherited\nmyhost\n"
    );
    let out = b.run(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "via",
        "entrypoint",
    ]);
    assert_eq!(out.ok(), "via entrypoint\n");
    // Without --rm the container stays, under its name; the name cannot be reused.
    b.run(&["run", "--name", "keeper", "busybox", "true"]).ok();
    assert_eq!(b.count("containers"), 1);
    b.run(&["run", "--name", "keeper", "busybox", "true"])
        .fails(
            125,
            &["Conflict. The container name \"/keeper\" is already in use"],
        );
    b.run(&["run", "--name", "-bad", "busybox", "true"])
        .fails(125, &["Invalid container name"]);
    assert_eq!(
        mounts_under(&b.root()),
        0,
        "the root filesystem is unmounted after exit"
    );
}

#[test]
fn foreground_signals_reach_the_container_and_nothing_is_orphaned() {
    use std::os::unix::process::CommandExt;
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let script = "trap 'echo got TERM; exit 7' TERM; trap 'echo got INT; exit 5' INT; echo ready; while true; do sleep 0.1; done";
    let wait_ready = |child: &mut std::process::Child| {
        use std::io::BufRead;
        let mut line = String::new();
        let out = child.stdout.as_mut().unwrap();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
    };
    // `kill CLI-PID`: TERM is passed down to the container, whose exit code comes back.
    let mut child = b
        .cmd(&["run", "--rm", "busybox", "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    // Ctrl-C: SIGINT to the whole foreground process group; berth survives it and reports.
    let mut child = b
        .cmd(&["run", "--rm", "busybox", "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    let group = format!("-{}", child.id());
    assert!(std::process::Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        b.count("containers"),
        0,
        "--rm ran: the monitor survived the signal"
    );
    assert_eq!(mounts_under(&b.root()), 0);
}

/// A foreground run's output goes through pipes as Docker's does: the container never sees
/// the caller's terminal without -t, the json-file log keeps it for `logs`, and `-a` picks
/// the streams that reach the caller.
#[test]
fn foreground_output_is_piped_logged_and_attached_by_a() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    // On a terminal (script(1) gives the CLI one), the container still writes to a pipe.
    let berth = env!("CARGO_BIN_EXE_berth");
    let line = format!(
        "BERTH_ROOT={} BERTH_CONFIG={} {berth} run --rm busybox sh -c '[ -t 1 ] && echo tty || echo pipe'",
        b.root().display(),
        b.config_path().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("script(1), from bsdutils");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains("pipe") && !seen.contains("tty"), "{seen:?}");

    let both = b.run(&[
        "run",
        "--name",
        "both",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 4",
    ]);
    assert_eq!(
        (both.code, both.stdout.as_str(), both.stderr.as_str()),
        (4, "out\n", "err\n")
    );
    let logs = b.run(&["logs", "both"]);
    assert_eq!((logs.ok(), logs.stderr.as_str()), ("out\n", "err\n"));
    let only_out = b.run(&[
        "run",
        "--name",
        "only",
        "-a",
        "STDOUT",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!((only_out.ok(), only_out.stderr.as_str()), ("out\n", ""));
    assert_eq!(b.run(&["logs", "only"]).stderr, "err\n");
    let only_err = b.run(&[
        "run",
        "--rm",
        "-a",
        "stderr",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!((only_err.ok(), only_err.stderr.as_str()), ("", "err\n"));
    // Docker's Config says what was attached.
    let attached = |name: &str| {
        let v = container(&b, name);
        let c = &v["Config"];
        (
            c["AttachStdin"].as_bool(),
            c["AttachStdout"].as_bool(),
            c["AttachStderr"].as_bool(),
        )
    };
    assert_eq!(attached("both"), (Some(false), Some(true), Some(true)));
    assert_eq!(attached("only"), (Some(false), Some(true), Some(false)));
    b.run(&["run", "-d", "--name", "bg", "busybox", "true"])
        .ok();
    assert_eq!(attached("bg"), (Some(false), Some(false), Some(false)));

    // With -i the caller's input still reaches the container, whatever -a names.
    let echo = b.run_with_input(&["run", "--rm", "-i", "busybox", "cat"], b"fed\n");
    assert_eq!(echo.ok(), "fed\n");
    let echo = b.run_with_input(
        &["run", "--rm", "-i", "-a", "stdout", "busybox", "cat"],
        b"fed\n",
    );
    assert_eq!(echo.ok(), "fed\n");

    // A reader that goes away ends the container's writes, as in a pipeline of its own.
    let started = std::time::Instant::now();
    let piped = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{berth} run --rm busybox yes | head -2"))
        .env("BERTH_ROOT", b.root())
        .env("BERTH_CONFIG", b.config_path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "y\ny\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    b.run(&["run", "-a", "stdin", "-a", "bogus", "busybox", "true"]).fails(
        125,
        &["invalid argument \"bogus\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"],
    );
    b.run(&["run", "-d", "-a", "stdout", "busybox", "true"])
        .fails(125, &["Conflicting options: -a and -d"]);
    b.run(&["rm", "-f", "both", "only", "bg"]).ok();
    assert_eq!(b.count("containers"), 0);
}

/// The OOM killer's work shows as Docker shows it: exit 137 and `State.OOMKilled`.
#[test]
fn an_oom_kill_is_recorded() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let hog = b.run(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "24m",
        "--memory-swap",
        "24m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(hog.code, 137, "{hog:?}");
    assert!(!hog.stdout.contains("survived"));
    assert_eq!(container(&b, "hog")["State"]["OOMKilled"], true);
    b.run(&[
        "run", "--name", "calm", "--memory", "24m", "busybox", "true",
    ])
    .ok();
    assert_eq!(container(&b, "calm")["State"]["OOMKilled"], false);
    b.run(&["rm", "-f", "hog", "calm"]).ok();
}
