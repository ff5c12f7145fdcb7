//! `run` in the foreground: Docker's isolation defaults, flags and exit codes.

use crate::common::Berth;

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
