//! Containers beyond `run`: create/start/attach, exec, pause, top, port, rename, prune,
//! inspect, volumes and binds, restart policies, and the security and resource flags.

use std::time::Duration;

use serde_json::Value;

use crate::common::{http_get, Berth};

fn busybox() -> Berth {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    b
}

fn inspect(b: &Berth, name: &str) -> Value {
    let v: Value = serde_json::from_str(b.run(&["inspect", name]).ok()).unwrap();
    v[0].clone()
}

#[test]
fn create_start_attach_rename_and_prune() {
    let b = busybox();
    let id = b
        .run(&[
            "create",
            "--name",
            "job",
            "-e",
            "WHO=berth",
            "-l",
            "team=infra",
            "busybox",
            "sh",
            "-c",
            "echo hello $WHO; echo oops >&2; exit 3",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(
        b.run(&["ps", "-a", "--format", "{{.Names}} {{.Status}} {{.Labels}}"])
            .ok(),
        "job Created team=infra\n"
    );
    let v = inspect(&b, "job");
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["Name"], "/job");
    assert_eq!(v["Config"]["Labels"]["team"], "infra");
    // start -a streams the output, keeping stdout and stderr apart, and exits with the code.
    let run = b.run(&["start", "-a", "job"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "hello berth\n");
    assert_eq!(run.stderr, "oops\n");
    assert_eq!(inspect(&b, "job")["State"]["ExitCode"], 3);
    b.run(&["attach", "job"]).fails(
        1,
        &["You cannot attach to a stopped container, start it first"],
    );
    // A second start runs it again and appends to the same log.
    assert_eq!(b.run(&["start", "job"]).ok(), "job\n");
    assert_eq!(b.run(&["wait", "job"]).ok(), "3\n");
    assert_eq!(b.run(&["logs", "job"]).stdout, "hello berth\nhello berth\n");
    // --since/--until: times, dates and durations as Docker reads them.
    assert_eq!(
        b.run(&["logs", "--since", "1h", "job"]).stdout,
        "hello berth\nhello berth\n"
    );
    assert_eq!(b.run(&["logs", "--until", "2000-01-01", "job"]).stdout, "");
    assert_eq!(
        b.run(&["logs", "--since", "2999-01-01T00:00:00Z", "job"])
            .stdout,
        ""
    );
    b.run(&["logs", "--since", "soon", "job"])
        .fails(1, &["invalid value for \"since\""]);
    b.run(&["rename", "job", "task"]).ok();
    b.run(&["inspect", "job"])
        .fails(1, &["No such object: job"]);
    b.run(&["create", "--name", "other", "busybox", "true"])
        .ok();
    b.run(&["rename", "other", "task"])
        .fails(1, &["Conflict", "\"/task\" is already in use"]);
    b.run(&["rename", "other", "a/b"])
        .fails(1, &["Invalid container name (a/b)"]);
    b.run(&["run", "-d", "--name", "alive", "busybox", "sleep", "300"])
        .ok();
    let pruned = b.run(&["container", "prune", "-f"]);
    assert!(
        pruned.ok().starts_with("Deleted Containers:\n"),
        "{}",
        pruned.stdout
    );
    assert!(pruned.stdout.contains(&id));
    assert_eq!(
        b.run(&["container", "ls", "-a", "--format", "{{.Names}}"])
            .ok(),
        "alive\n"
    );
    b.run(&["start", "nosuch"])
        .fails(1, &["No such container: nosuch"]);
    b.run(&["rm", "-f", "alive"]).ok();
}

#[test]
fn exec_port_top_pause() {
    let b = busybox();
    b.run(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1::8080",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo '[1,2,3]' > /www/index.html && exec httpd -f -p 8080 -h /www",
    ])
    .ok();
    // `-p 127.0.0.1::8080` picks a free host port, as Docker does.
    let port = b.run(&["port", "web", "8080"]);
    let addr = port.ok().trim().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_eq!(
        b.run(&["port", "web"]).ok(),
        format!("8080/tcp -> {addr}\n")
    );
    let mut answer = None;
    for _ in 0..50 {
        answer = http_get(&format!("http://{addr}/"));
        if answer.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(answer.as_deref(), Some("[1,2,3]\n"));
    let v = inspect(&b, "web");
    let host_port = addr.rsplit(':').next().unwrap();
    assert_eq!(
        v["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"],
        host_port
    );
    // exec: the container's environment and working directory, plus -e, -w and -u.
    assert_eq!(
        b.run(&["exec", "web", "sh", "-c", "echo $A $B $(pwd) $(id -u)"])
            .ok(),
        "1 /tmp 0\n"
    );
    assert_eq!(
        b.run(&[
            "exec",
            "-e",
            "B=2",
            "-w",
            "/www",
            "-u",
            "nobody",
            "web",
            "sh",
            "-c",
            "echo $A $B $(pwd) $(id -un)"
        ])
        .ok(),
        "1 2 /www nobody\n"
    );
    assert_eq!(b.run(&["exec", "web", "sh", "-c", "exit 7"]).code, 7);
    // -d: returns at once, holding none of the caller's pipes.
    let started = std::time::Instant::now();
    b.run(&["exec", "-d", "web", "sleep", "5"]).ok();
    assert!(started.elapsed() < Duration::from_secs(3));
    // stdin is passed with -i only.
    let piped = b.run_with_input(&["exec", "-i", "web", "cat"], b"through stdin");
    assert_eq!(piped.ok(), "through stdin");
    b.run(&["exec", "web", "nosuch"])
        .fails(126, &["executable file not found in $PATH"]);
    // The exec'd process shares the container's PID namespace: PID 1 is httpd.
    assert!(b
        .run(&["exec", "web", "cat", "/proc/1/cmdline"])
        .ok()
        .starts_with("httpd"));
    let top = b.run(&["top", "web"]);
    assert!(
        top.ok().lines().next().unwrap().contains("PID"),
        "{}",
        top.stdout
    );
    assert!(top.stdout.contains("httpd -f -p 8080"), "{}", top.stdout);
    b.run(&["pause", "web"]).ok();
    assert_eq!(b.run(&["ps", "--format", "{{.State}}"]).ok(), "paused\n");
    assert!(b.run(&["ps"]).ok().contains("(Paused)"));
    b.run(&["exec", "web", "true"]).fails(1, &["is paused"]);
    b.run(&["pause", "web"]).fails(1, &["already paused"]);
    b.run(&["unpause", "web"]).ok();
    assert_eq!(b.run(&["exec", "web", "echo", "back"]).ok(), "back\n");
    b.run(&["stop", "-t", "1", "web"]).ok();
    b.run(&["exec", "web", "true"])
        .fails(1, &["is not running"]);
    b.run(&["port", "web", "8080"])
        .fails(1, &["No public port '8080/tcp'"]);
    b.run(&["rm", "web"]).ok();
}

#[test]
fn volumes_binds_tmpfs_and_read_only() {
    let b = busybox();
    // A named volume's first mount copies in what the image has there.
    b.run(&[
        "run",
        "--rm",
        "-v",
        "tools:/bin",
        "busybox",
        "sh",
        "-c",
        "echo mine > /bin/note",
    ])
    .ok();
    let listing = b.run(&["run", "--rm", "-v", "tools:/d", "busybox", "ls", "/d"]);
    assert!(listing.ok().contains("busybox"), "{}", listing.stdout);
    assert!(listing.stdout.contains("note"));
    assert_eq!(b.run(&["volume", "ls", "-q"]).ok(), "tools\n");
    let v: Value = serde_json::from_str(b.run(&["volume", "inspect", "tools"]).ok()).unwrap();
    let mountpoint = v[0]["Mountpoint"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(format!("{mountpoint}/note")).unwrap(),
        "mine\n"
    );
    // In use by a container (even stopped): refused.
    b.run(&[
        "create", "--name", "user", "-v", "tools:/t", "busybox", "true",
    ])
    .ok();
    b.run(&["volume", "rm", "tools"])
        .fails(1, &["volume is in use"]);
    b.run(&["rm", "user"]).ok();
    assert_eq!(b.run(&["volume", "rm", "tools"]).ok(), "tools\n");
    b.run(&["volume", "inspect", "tools"])
        .fails(1, &["no such volume"]);
    // Bind mounts, read-only.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "from host\n").unwrap();
    let spec = format!("{}:/h:ro", host.path().display());
    let out = b.run(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /h/in; touch /h/new",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "from host\n");
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    assert!(!host.path().join("new").exists());
    let spec = format!("{}:/h", host.path().display());
    b.run(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "echo back > /h/out",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "back\n"
    );
    // Anonymous volumes go with `rm -v`.
    b.run(&[
        "run", "--name", "anon", "-v", "/data", "busybox", "touch", "/data/x",
    ])
    .ok();
    let anon = b.run(&["volume", "ls", "-q"]).ok().trim().to_string();
    assert_eq!(anon.len(), 64, "{anon}");
    b.run(&["rm", "-v", "anon"]).ok();
    assert_eq!(b.run(&["volume", "ls", "-q"]).ok(), "");
    // --read-only with a writable --tmpfs.
    let out = b.run(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        "busybox",
        "sh",
        "-c",
        "touch /scratch/ok && echo ok; touch /nope",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "ok\n");
    assert!(out.stderr.contains("Read-only file system"));
    b.run(&["volume", "create", "--label", "a=b", "named"]).ok();
    assert_eq!(
        b.run(&[
            "volume",
            "ls",
            "--filter",
            "label=a=b",
            "--format",
            "{{.Name}} {{.Labels}}"
        ])
        .ok(),
        "named a=b\n"
    );
    let pruned = b.run(&["volume", "prune", "-f", "-a"]);
    assert!(pruned.ok().contains("named"), "{}", pruned.stdout);
    // --mount: the same mounts in Docker's key=value form.
    let out = b.run(&[
        "run", "--rm", "--mount", "type=volume,src=mvol,dst=/m", "--mount",
        &format!("type=bind,src={},dst=/h,readonly", host.path().display()),
        "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "busybox", "sh", "-c",
        "echo v > /m/f && cat /h/in && touch /t/ok && ! touch /h/no 2>/dev/null && grep -c ' /t tmpfs' /proc/mounts",
    ]);
    assert_eq!(out.ok(), "from host\n1\n");
    assert_eq!(
        std::fs::read_to_string(b.root().join("volumes/mvol/_data/f")).unwrap(),
        "v\n"
    );
    b.run(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,src=/nonexistent-berth,dst=/x",
        "busybox",
        "true",
    ])
    .fails(125, &["bind source path does not exist"]);
    b.run(&["volume", "rm", "mvol"]).ok();
    // Bad specifications: Docker's words, exit 125, nothing made.
    b.run(&["run", "--rm", "-v", "data:relative", "busybox", "true"])
        .fails(
            125,
            &[
                "invalid volume specification",
                "mount path must be absolute",
            ],
        );
    b.run(&["run", "--rm", "-v", "/a:/b:bogus", "busybox", "true"])
        .fails(125, &["unknown option 'bogus'"]);
    b.run(&["run", "--rm", "--tmpfs", "rel", "busybox", "true"])
        .fails(125, &["invalid tmpfs specification"]);
    b.run(&["volume", "create", "bad name"])
        .fails(1, &["includes invalid characters for a local volume name"]);
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
}

/// The container's cgroup file `file` of controller `v1` (cgroup v1) or the unified tree.
fn cgroup_value(id: &str, v1: &str, file_v1: &str, file_v2: &str) -> String {
    let v2 = format!("/sys/fs/cgroup/berth/{id}/{file_v2}");
    let v1 = format!("/sys/fs/cgroup/{v1}/berth/{id}/{file_v1}");
    std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .unwrap_or_else(|_| panic!("neither {v1} nor {v2}"))
        .trim()
        .to_string()
}

#[test]
fn security_and_resource_flags() {
    let b = busybox();
    let caps = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend([
            "busybox",
            "grep",
            "-E",
            "^(CapEff|Seccomp|NoNewPrivs):",
            "/proc/self/status",
        ]);
        b.run(&a).ok().to_string()
    };
    // NET_ADMIN is bit 12 (0x1000); CHOWN bit 0.
    assert!(caps(&[
        "--cap-drop",
        "ALL",
        "--cap-add",
        "net_admin",
        "--cap-add",
        "CAP_CHOWN"
    ])
    .contains("CapEff:\t0000000000001001"));
    let default = caps(&[]);
    assert!(default.contains("CapEff:\t00000000a80425fb"), "{default}");
    assert!(default.contains("Seccomp:\t2") && default.contains("NoNewPrivs:\t0"));
    assert!(caps(&["--cap-drop", "NET_RAW"]).contains("CapEff:\t00000000a80405fb"));
    assert!(caps(&["--security-opt", "no-new-privileges"]).contains("NoNewPrivs:\t1"));
    let privileged = caps(&["--privileged"]);
    assert!(privileged.contains("Seccomp:\t0"), "{privileged}");
    assert!(!privileged.contains("a80425fb"));
    // Docker's profile gives mount back with CAP_SYS_ADMIN, and only then.
    let mount = "mkdir /m && mount -t tmpfs t /m && echo mounted";
    assert_eq!(
        b.run(&[
            "run",
            "--rm",
            "--cap-add",
            "SYS_ADMIN",
            "busybox",
            "sh",
            "-c",
            mount
        ])
        .ok(),
        "mounted\n"
    );
    b.run(&["run", "--rm", "busybox", "sh", "-c", mount])
        .fails(1, &["permission denied"]);
    b.run(&["run", "--rm", "--cap-add", "bogus", "busybox", "true"])
        .fails(125, &["unknown capability: \"CAP_BOGUS\""]);
    assert_eq!(
        b.run(&[
            "run",
            "--rm",
            "--ulimit",
            "nofile=512:1024",
            "busybox",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn"
        ])
        .ok(),
        "512\n1024\n"
    );
    b.run(&["run", "--rm", "--ulimit", "bogus=1", "busybox", "true"])
        .fails(125, &["invalid ulimit type: bogus"]);
    // Limits land in the container's cgroup (v1 here, v2 on most users' machines).
    let id = b
        .run(&[
            "run",
            "-d",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "--cpu-shares",
            "512",
            "busybox",
            "sleep",
            "300",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(
        cgroup_value(&id, "memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(cgroup_value(&id, "pids", "pids.max", "pids.max"), "50");
    let quota = cgroup_value(&id, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota == "50000" || quota == "50000 100000", "{quota}");
    let v = inspect(&b, &id);
    assert_eq!(v["HostConfig"]["Memory"], 67108864);
    assert_eq!(v["HostConfig"]["NanoCpus"], 500000000);
    assert_eq!(v["HostConfig"]["PidsLimit"], 50);
    // A fork bomb stops at the pids limit.
    b.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in $(seq 80); do sleep 30 >/dev/null 2>&1 & done 2>/dev/null; true",
    ]);
    let n: u32 = cgroup_value(&id, "pids", "pids.current", "pids.current")
        .parse()
        .unwrap();
    assert!((40..=50).contains(&n), "{n} processes under a limit of 50");
    b.run(&["rm", "-f", &id]).ok();
    b.run(&["run", "--rm", "-m", "1k", "busybox", "true"])
        .fails(125, &["Minimum memory limit allowed is 6MB"]);
    b.run(&["run", "--rm", "--cpus", "99", "busybox", "true"])
        .fails(125, &["Range of CPUs is from 0.01 to"]);
    b.run(&["run", "--rm", "--memory-swap", "1g", "busybox", "true"])
        .fails(
            125,
            &["You should always set the Memory limit when using Memoryswap limit"],
        );
    b.run(&["run", "--rm", "--restart", "always", "busybox", "true"])
        .fails(125, &["Conflicting options: --restart and --rm"]);
    b.run(&["run", "--restart", "sometimes", "busybox", "true"])
        .fails(125, &["invalid restart policy"]);
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
}

/// After a power loss (monitors and containers killed, records left saying "running"),
/// `start --all --filter restart-policy=…` — what `contrib/systemd/berth-restart.service`
/// runs at boot — brings back what Docker's daemon would: `always`, and `unless-stopped`
/// unless a user stopped it; not `no`, not the running ones.
#[test]
fn start_all_brings_back_restart_policies_after_a_reboot() {
    let b = busybox();
    let run = |name: &str, policy: &str| {
        b.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "busybox",
            "sleep",
            "300",
        ])
        .ok()
        .trim()
        .to_string()
    };
    let always = run("boot-always", "always");
    let unless = run("boot-unless", "unless-stopped");
    run("boot-stopped", "unless-stopped");
    run("boot-no", "no");
    b.run(&["stop", "-t", "0", "boot-stopped"]).ok();
    let mut pids = Vec::new();
    for name in ["boot-always", "boot-unless", "boot-no"] {
        pids.push(
            inspect(&b, name)["State"]["Pid"]
                .as_i64()
                .unwrap()
                .to_string(),
        );
    }
    let monitors = std::process::Command::new("pgrep")
        .args(["-f", "container-monitor"])
        .output()
        .unwrap();
    for m in String::from_utf8_lossy(&monitors.stdout).lines() {
        let cmdline = std::fs::read_to_string(format!("/proc/{m}/cmdline")).unwrap_or_default();
        if [&always, &unless]
            .iter()
            .any(|id| cmdline.contains(id.as_str()))
            || cmdline.contains(b.root().to_str().unwrap())
        {
            pids.push(m.to_string());
        }
    }
    let killed = std::process::Command::new("kill")
        .arg("-9")
        .args(&pids)
        .status()
        .unwrap();
    assert!(killed.success());
    for _ in 0..100 {
        if b.run(&["ps", "-q"]).ok().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(b.run(&["ps", "-q"]).ok(), "");
    let started = b.run(&[
        "start",
        "--all",
        "--filter",
        "restart-policy=always",
        "--filter",
        "restart-policy=unless-stopped",
    ]);
    assert_eq!(started.ok(), "boot-always\nboot-unless\n");
    let running = b.run(&["ps", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = running.ok().lines().collect();
    names.sort();
    assert_eq!(names, ["boot-always", "boot-unless"]);
    // Nothing is started twice; a bad filter is refused.
    assert_eq!(
        b.run(&["start", "--all", "--filter", "restart-policy=always"])
            .ok(),
        ""
    );
    b.run(&["start", "--all", "--filter", "status=exited"])
        .fails(125, &["invalid filter"]);
    b.run(&["start", "--all", "-a"])
        .fails(125, &["'--all' cannot be used with '--attach'"]);
    // Two starts at once (the boot unit and a user): one monitor runs the container, and
    // neither start tears down what the other set up.
    let racers: Vec<_> = (0..2)
        .map(|_| b.cmd(&["start", "boot-no"]).spawn().unwrap())
        .collect();
    for mut r in racers {
        assert!(r.wait().unwrap().success());
    }
    let no_id = inspect(&b, "boot-no")["Id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let monitors = std::process::Command::new("pgrep")
        .args(["-fc", &format!("container-monitor.*{no_id}")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&monitors.stdout).trim(), "1");
    assert_eq!(b.run(&["exec", "boot-no", "echo", "up"]).ok(), "up\n");
    b.run(&[
        "rm",
        "-f",
        "boot-always",
        "boot-unless",
        "boot-stopped",
        "boot-no",
    ])
    .ok();
}

#[test]
fn restart_policies() {
    let b = busybox();
    b.run(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 1",
    ])
    .ok();
    let mut v = inspect(&b, "flaky");
    for _ in 0..100 {
        if v["State"]["Status"] == "exited" && v["RestartCount"] == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        v = inspect(&b, "flaky");
    }
    assert_eq!(v["RestartCount"], 2, "{v}");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 1);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(b.run(&["logs", "flaky"]).stdout, "try\ntry\ntry\n");
    // `always` restarts a container that exits 0, until the user stops it.
    b.run(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "0.1",
    ])
    .ok();
    let mut count = 0;
    for _ in 0..100 {
        count = inspect(&b, "loop")["RestartCount"].as_u64().unwrap();
        if count >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(count >= 2, "restarted {count} times");
    // In the foreground the command returns with the first run's code, as Docker's does,
    // and the policy goes on in the background.
    let started = std::time::Instant::now();
    let fg = b.run(&[
        "run",
        "--name",
        "fg",
        "--restart",
        "on-failure:2",
        "busybox",
        "false",
    ]);
    assert_eq!(fg.code, 1, "{}", fg.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut v = inspect(&b, "fg");
    for _ in 0..100 {
        if v["State"]["Status"] == "exited" && v["RestartCount"] == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        v = inspect(&b, "fg");
    }
    assert_eq!(v["RestartCount"], 2, "{v}");
    b.run(&["stop", "loop"]).ok();
    std::thread::sleep(Duration::from_millis(500));
    let v = inspect(&b, "loop");
    assert_eq!(v["State"]["Status"], "exited");
    let after = v["RestartCount"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&b, "loop")["RestartCount"].as_u64().unwrap(), after);
    // start clears the stop: the policy applies again.
    b.run(&["start", "loop"]).ok();
    std::thread::sleep(Duration::from_millis(800));
    assert!(inspect(&b, "loop")["RestartCount"].as_u64().unwrap() >= 1);
    b.run(&["rm", "-f", "loop", "flaky", "fg"]).ok();
    assert_eq!(b.run(&["ps", "-aq"]).ok(), "");
}

#[test]
fn init_hosts_env_file_and_publish_all() {
    let b = busybox();
    assert!(b
        .run(&["run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"])
        .ok()
        .starts_with("/sbin/docker-init"));
    let hosts = b.run(&[
        "run",
        "--rm",
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.ok().contains("10.1.2.3\tdb\n"), "{}", hosts.stdout);
    assert!(hosts.stdout.contains("10.89.0.1\tgw\n"), "{}", hosts.stdout);
    b.run(&["run", "--rm", "--add-host", "db:nope", "busybox", "true"])
        .fails(125, &["invalid IP address in add-host"]);
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# comment\nA=1\n\nFROM_HOST\n").unwrap();
    let out = b
        .cmd(&[
            "run",
            "--rm",
            "--env-file",
            env_file.to_str().unwrap(),
            "busybox",
            "sh",
            "-c",
            "echo $A $FROM_HOST",
        ])
        .env("FROM_HOST", "yes")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 yes\n");
    b.run(&[
        "run",
        "--rm",
        "--env-file",
        "/nonexistent",
        "busybox",
        "true",
    ])
    .fails(125, &["/nonexistent"]);
    // -P publishes what the image exposes; busybox exposes nothing, so a -p without a host
    // port is what gets a random one.
    b.run(&[
        "run", "-d", "--name", "pp", "-P", "-p", "9000", "busybox", "sleep", "300",
    ])
    .ok();
    let mapping = b.run(&["port", "pp"]);
    assert!(
        mapping.ok().starts_with("9000/tcp -> 0.0.0.0:"),
        "{}",
        mapping.stdout
    );
    b.run(&["rm", "-f", "pp"]).ok();
}

/// Runs a shell command under `script`, which gives it a terminal of the given size.
fn in_terminal(b: &Berth, command: &str) -> (i32, String) {
    typing(b, command, "true")
}

/// Runs a berth command under `script` with `keys` (a shell `printf`/`sleep` list) typed
/// at its terminal.
fn typing(b: &Berth, command: &str, keys: &str) -> (i32, String) {
    let berth = env!("CARGO_BIN_EXE_berth");
    let inner = format!("stty cols 91 rows 23; {berth} {command}").replace('\'', "'\\''");
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("({keys}) | script -eqc '{inner}' /dev/null")])
        .env("BERTH_ROOT", b.root())
        .env("BERTH_CONFIG", b.config_path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn pseudo_terminals() {
    let b = busybox();
    // -t alone: a pty for the container, output with the pty's line endings.
    let out = b.run(&[
        "run",
        "--rm",
        "-t",
        "busybox",
        "sh",
        "-c",
        "tty; echo $TERM",
    ]);
    assert_eq!(out.ok(), "/dev/pts/0\r\nxterm\r\n");
    // -it from a terminal: the size follows the caller's, the exit code passes through.
    // The size is set once the runtime hands the pty over, and the process told by SIGWINCH
    // (as after a resize); a shell that asks at once may see 0 0, as with a fast resize.
    let (code, text) = in_terminal(
        &b,
        "run --rm -it busybox sh -c 'sleep 0.5; stty size; exit 4'",
    );
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("23 91"), "{text:?}");
    // -it without a terminal: Docker's refusal.
    b.run(&["run", "--rm", "-it", "busybox", "true"])
        .fails(1, &["the input device is not a TTY"]);
    // -dt: the terminal's output lands in the log.
    b.run(&[
        "run",
        "-dt",
        "--name",
        "tt",
        "busybox",
        "sh",
        "-c",
        "tty; exec sleep 300",
    ])
    .ok();
    let mut logs = String::new();
    for _ in 0..50 {
        logs = b.run(&["logs", "tt"]).stdout;
        if !logs.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(logs, "/dev/pts/0\r\n");
    let (code, text) = in_terminal(&b, "exec -it tt sh -c 'tty; sleep 0.5; stty size; exit 5'");
    assert_eq!(code, 5, "{text}");
    assert!(
        text.contains("/dev/pts/1") && text.contains("23 91"),
        "{text:?}"
    );
    assert_eq!(b.run(&["exec", "-t", "tt", "echo", "hi"]).ok(), "hi\r\n");
    b.run(&["rm", "-f", "tt"]).ok();
    // attach to a -dit shell, type, then Ctrl-P Ctrl-Q: the shell goes on.
    b.run(&["run", "-dit", "--name", "shell", "busybox", "sh"])
        .ok();
    let (code, text) = typing(
        &b,
        "attach shell",
        r"sleep 0.5; printf 'echo sum-$((40+2))\n'; sleep 0.5; printf '\020\021'; sleep 0.3",
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("sum-42"), "{text:?}");
    assert_eq!(b.run(&["ps", "--format", "{{.Names}}"]).ok(), "shell\n");
    assert!(b.run(&["logs", "shell"]).ok().contains("sum-42"));
    b.run(&["rm", "-f", "shell"]).ok();
    // run -it: typed input reaches the shell, its exit code comes back.
    let (code, text) = typing(
        &b,
        "run -it --rm busybox sh",
        r"sleep 0.5; printf 'exit 3\n'",
    );
    assert_eq!(code, 3, "{text}");
    // start -ai: stdin piped to a created -i container.
    b.run(&["create", "-i", "--name", "cat", "busybox", "cat"])
        .ok();
    let out = b.run_with_input(&["start", "-ai", "cat"], b"piped\n");
    assert_eq!(out.ok(), "piped\n");
    b.run(&["rm", "cat"]).ok();
    // Nothing of the consoles is left behind.
    let leftover: Vec<_> = std::fs::read_dir("/run/berth/tty")
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !leftover
            .iter()
            .any(|n| n.to_string_lossy().starts_with("exec-")),
        "{leftover:?}"
    );
}

#[test]
fn cp_both_ways_never_leaves_the_container() {
    let b = busybox();
    b.run(&[
        "run", "-d", "--name", "box", "busybox", "sh", "-c",
        "mkdir -p /data/sub && echo inside > /data/f && echo deep > /data/sub/g && ln -s / /escape && exec sleep 300",
    ])
    .ok();
    for _ in 0..50 {
        if b.run(&["exec", "box", "test", "-L", "/escape"]).code == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let host = tempfile::tempdir().unwrap();
    let h = |p: &str| host.path().join(p);
    // Out: a directory under a new name, a file, the contents of a directory.
    b.run(&["cp", "box:/data", h("copy").to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(h("copy/f")).unwrap(), "inside\n");
    assert_eq!(std::fs::read_to_string(h("copy/sub/g")).unwrap(), "deep\n");
    std::fs::create_dir(h("into")).unwrap();
    b.run(&["cp", "box:/data", h("into").to_str().unwrap()])
        .ok();
    assert!(h("into/data/f").exists());
    b.run(&["cp", "box:/data/f", h("file").to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(h("file")).unwrap(), "inside\n");
    // A symlink to / inside the container is resolved inside it (CVE-2018-15664): this
    // is the container's /etc/hostname, not the host's.
    b.run(&["cp", "box:/escape/etc/hostname", h("hn").to_str().unwrap()])
        .ok();
    let id = inspect(&b, "box")["Id"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(h("hn")).unwrap(),
        format!("{}\n", &id[..12])
    );
    // In: a tree with a symlink, owned by root, and never through the container's links.
    std::fs::create_dir_all(h("src/sub")).unwrap();
    std::fs::write(h("src/a"), "one\n").unwrap();
    std::os::unix::fs::symlink("a", h("src/link")).unwrap();
    b.run(&["cp", h("src").to_str().unwrap(), "box:/data/"])
        .ok();
    assert_eq!(
        b.run(&[
            "exec",
            "box",
            "sh",
            "-c",
            "cat /data/src/link; stat -c %u /data/src/a"
        ])
        .ok(),
        "one\n0\n"
    );
    let marker = format!("berth-cp-escape-{}", std::process::id());
    b.run(&[
        "cp",
        h("src/a").to_str().unwrap(),
        &format!("box:/escape/tmp/{marker}"),
    ])
    .ok();
    assert!(!std::path::Path::new(&format!("/tmp/{marker}")).exists());
    assert_eq!(
        b.run(&["exec", "box", "cat", &format!("/tmp/{marker}")])
            .ok(),
        "one\n"
    );
    // A link is copied as a link; a FIFO is never read (it would block the copy).
    b.run(&[
        "exec",
        "box",
        "sh",
        "-c",
        "ln -s /etc/passwd /data/pw && mkfifo /data/pipe",
    ])
    .ok();
    b.run(&["cp", "box:/data/pw", h("pw").to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read_link(h("pw")).unwrap(),
        std::path::Path::new("/etc/passwd")
    );
    let started = std::time::Instant::now();
    b.run(&["cp", "box:/data/pipe", h("pipe").to_str().unwrap()])
        .ok();
    assert!(started.elapsed() < Duration::from_secs(5));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(h("pipe"))
        .unwrap()
        .file_type()
        .is_fifo());
    // FIFOs and device nodes go in as themselves too.
    std::fs::create_dir(h("special")).unwrap();
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mkfifo {0}/fifo && mknod {0}/null c 1 3",
            h("special").display()
        ))
        .status()
        .unwrap();
    assert!(made.success());
    b.run(&["cp", h("special").to_str().unwrap(), "box:/data/"])
        .ok();
    assert_eq!(
        b.run(&[
            "exec",
            "box",
            "sh",
            "-c",
            "test -p /data/special/fifo && stat -c '%F %t:%T' /data/special/null"
        ])
        .ok(),
        "character special file 1:3\n"
    );
    // A tar on stdout.
    let tar = b.run(&["cp", "box:/data/f", "-"]);
    assert!(
        tar.ok().starts_with('f'),
        "{:?}",
        &tar.stdout[..20.min(tar.stdout.len())]
    );
    b.run(&["cp", "box:/nope", h("x").to_str().unwrap()])
        .fails(1, &["Could not find the file /nope in container box"]);
    b.run(&["cp", h("a-missing").to_str().unwrap(), "box:/tmp"])
        .fails(1, &["a-missing"]);
    // A stopped container's files are there too, and nothing stays mounted.
    b.run(&["stop", "-t", "0", "box"]).ok();
    b.run(&["cp", "box:/data/f", h("after").to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(h("after")).unwrap(), "inside\n");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(b.root().to_str().unwrap()));
    b.run(&["rm", "box"]).ok();
}

#[test]
fn stats_and_escapes_through_file_descriptors() {
    let b = busybox();
    b.run(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "100m",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ])
    .ok();
    let out = b.run(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
    ]);
    let line = out.ok().trim().to_string();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[0], "busy", "{line}");
    let cpu: f64 = f[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 20.0, "a busy loop uses a CPU: {line}");
    assert_eq!(f[4], "100MiB", "{line}");
    assert_eq!(f[5], "1", "{line}");
    let table = b.run(&["stats", "--no-stream"]);
    assert!(
        table.ok().starts_with("CONTAINER ID   NAME"),
        "{}",
        table.stdout
    );
    b.run(&["rm", "-f", "busy"]).ok();
    // CVE-2024-21626: a working directory through a leaked fd must not land on the host.
    let host_name = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    b.run(&["run", "-d", "--name", "fdc", "busybox", "sleep", "300"])
        .ok();
    for n in 3..10 {
        let wd = format!("/proc/self/fd/{n}");
        for args in [
            vec![
                "run",
                "--rm",
                "-w",
                &wd,
                "busybox",
                "cat",
                "../../../../../etc/hostname",
            ],
            vec![
                "exec",
                "-w",
                &wd,
                "fdc",
                "cat",
                "../../../../../etc/hostname",
            ],
        ] {
            let r = b.run(&args);
            assert!(
                host_name.is_empty() || !r.stdout.contains(host_name.trim()),
                "{args:?} read the host's hostname"
            );
        }
    }
    // CVE-2019-5736: processes of the container try to write to every /proc/PID/exe they
    // can see while berth execs into it; the host's berth binary stays as it is.
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth"));
    let before = std::fs::metadata(exe).unwrap();
    b.run(&[
        "run", "-d", "--name", "evil", "busybox", "sh", "-c",
        "while true; do for p in /proc/[0-9]*; do echo pwned 2>/dev/null >> $p/exe && echo WROTE $p; done; done",
    ])
    .ok();
    for _ in 0..20 {
        b.run(&["exec", "evil", "true"]);
    }
    let logs = b.run(&["logs", "evil"]);
    assert!(!logs.stdout.contains("WROTE"), "{}", logs.stdout);
    let after = std::fs::metadata(exe).unwrap();
    assert_eq!(
        (before.len(), before.modified().unwrap()),
        (after.len(), after.modified().unwrap())
    );
    b.run(&["rm", "-f", "evil"]).ok();
    // And no host descriptor beyond stdio is open in an exec'd process.
    let fds = b.run(&["exec", "fdc", "ls", "/proc/self/fd"]);
    let n: Vec<&str> = fds.ok().split_whitespace().collect();
    assert!(n.len() <= 4, "{n:?}");
    b.run(&["rm", "-f", "fdc"]).ok();
}

#[test]
fn system_prune_cleans_after_a_killed_monitor() {
    let b = busybox();
    b.run(&["network", "create", "prunenet"]).ok();
    b.run(&["volume", "create", "keepme"]).ok();
    b.run(&["create", "--name", "made", "-v", "/anon", "busybox", "true"])
        .ok();
    let id = b
        .run(&["run", "-d", "busybox", "sleep", "300"])
        .ok()
        .trim()
        .to_string();
    let keep = b
        .run(&["run", "-d", "--name", "keep", "busybox", "sleep", "300"])
        .ok()
        .trim()
        .to_string();
    let record: Value = serde_json::from_slice(
        &std::fs::read(b.root().join(format!("containers/{id}/container.json"))).unwrap(),
    )
    .unwrap();
    let monitor = record["monitor_pid"].as_u64().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let out = b.run(&["system", "prune", "-f", "--volumes"]);
    let text = out.ok();
    assert!(
        text.contains("Deleted Containers:") && text.contains(&id),
        "{text}"
    );
    assert!(text.contains("Deleted Networks:\nprunenet"), "{text}");
    assert!(text.contains("Deleted Volumes:"), "{text}");
    assert!(text.contains("Total reclaimed space:"), "{text}");
    assert_eq!(b.run(&["ps", "-aq", "--no-trunc"]).ok().trim(), keep);
    assert_eq!(b.run(&["volume", "ls", "-q"]).ok(), "keepme\n");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&format!("containers/{id}")));
    assert!(!std::path::Path::new(&format!("/run/netns/berth-{}", &id[..12])).exists());
    b.run(&["rm", "-f", "keep"]).ok();
}
