//! The default bridge network: addresses, published ports without a userland proxy, port
//! conflicts, and teardown that leaves nothing behind. Traffic goes only to 127.0.0.1, the
//! bridge and the tests' own containers.

use std::process::Command;

use crate::common::{free_port, http_get, Berth};

fn leftovers(id: &str, port: u16) -> (bool, bool, bool) {
    let short = &id[..12];
    let veth = std::path::Path::new(&format!("/sys/class/net/vb{}", &short[..11])).exists();
    let netns = std::path::Path::new(&format!("/run/netns/berth-{short}")).exists();
    let rules = Command::new("nft")
        .args(["list", "map", "ip", "berth", "ports"])
        .output()
        .unwrap();
    let rule = String::from_utf8_lossy(&rules.stdout).contains(&format!(" {port} : "));
    (veth, netns, rule)
}

const SERVE: &str =
    "mkdir -p /www && echo '[1,2,3]' > /www/index.html && exec httpd -f -p 8080 -h /www";

#[test]
fn published_ports_answer_and_vanish_with_the_container() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let port = free_port();
    let publish = format!("{port}:8080");
    let id = b
        .run(&["run", "-d", "-p", &publish, "busybox", "sh", "-c", SERVE])
        .ok()
        .trim()
        .to_string();
    assert_eq!(
        leftovers(&id, port),
        (true, true, true),
        "the container is plumbed"
    );
    let url = format!("http://127.0.0.1:{port}/index.html");
    let mut body = None;
    for _ in 0..50 {
        body = http_get(&url);
        if body.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        body.as_deref(),
        Some("[1,2,3]\n"),
        "127.0.0.1:{port} answers"
    );
    // From another container, through the bridge's address.
    let via_bridge = format!("http://10.89.0.1:{port}/index.html");
    assert_eq!(
        b.run(&["run", "--rm", "busybox", "wget", "-qO-", &via_bridge])
            .ok(),
        "[1,2,3]\n"
    );
    // Its own address and name.
    let out = b.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; tail -1 /etc/hosts; hostname",
    ]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert!(lines[0].contains("inet 10.89."), "{}", lines[0]);
    assert!(
        lines[1].starts_with("10.89.") && lines[1].ends_with(lines[2]),
        "{}",
        lines[1]
    );
    // Its MAC is Docker's, derived from its address (02:42 then the four bytes), so the
    // host's neighbour entry stays right when a later container gets the same address.
    let mac = b.run(&[
        "run", "--rm", "busybox", "sh", "-c",
        "ip -4 -o addr show eth0 | sed 's/.*inet \\([0-9.]*\\).*/\\1/'; cat /sys/class/net/eth0/address",
    ]);
    let mac_lines: Vec<&str> = mac.ok().lines().collect();
    let ip: std::net::Ipv4Addr = mac_lines[0].parse().unwrap();
    let o = ip.octets();
    assert_eq!(
        mac_lines[1],
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    );
    // The port is taken now: Docker's message, exit 125, nothing left by the refused one.
    b.run(&["run", "--rm", "-p", &publish, "busybox", "true"])
        .fails(
            125,
            &[&format!(
                "Bind for 0.0.0.0:{port} failed: port is already allocated"
            )],
        );
    assert_eq!(b.run(&["ps", "-q"]).ok().lines().count(), 1);
    b.run(&["rm", "-f", &id]).ok();
    assert_eq!(
        leftovers(&id, port),
        (false, false, false),
        "veth, netns and port rule are gone"
    );
    assert_eq!(http_get(&url), None);
}

#[test]
fn ports_in_use_by_other_programs_and_bad_specs_are_refused() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    b.run(&[
        "run",
        "--rm",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "true",
    ])
    .fails(125, &["port is already allocated"]);
    b.run(&["run", "--rm", "-p", "x:80", "busybox", "true"])
        .fails(
            125,
            &["invalid argument \"x:80\" for \"-p, --publish\" flag"],
        );
    b.run(&["run", "--rm", "--network", "nosuch", "busybox", "true"])
        .fails(125, &["network nosuch not found"]);
    // --network none: loopback only; host: the host's interfaces.
    let none = b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(none.ok(), "lo\n");
    assert_eq!(b.count("containers"), 0);
}

#[test]
fn user_networks_resolve_names_and_aliases_and_leave_nothing() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    let net_id = b
        .run(&["network", "create", "appnet"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(net_id.len(), 64);
    b.run(&["network", "create", "appnet"])
        .fails(1, &["network with name appnet already exists"]);
    b.run(&["network", "create", "--subnet", "10.89.3.0/24", "clash"])
        .fails(1, &["Pool overlaps"]);
    b.run(&["network", "create", "--subnet", "10.99.7.0/24", "other"])
        .ok();
    let ls = b.run(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(
        ls.ok(),
        "bridge bridge\nhost host\nnone null\nappnet bridge\nother bridge\n"
    );
    let port = free_port();
    b.run(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "appnet",
        "--network-alias",
        "database",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let web = b
        .run(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "appnet",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "busybox",
            "sh",
            "-c",
            SERVE,
        ])
        .ok()
        .trim()
        .to_string();
    // By name and by alias, both ways; and the published port answers on the host. The
    // server in `web` listens a moment after `run -d` returns: asked until it answers.
    let mut fetched = b.run(&["exec", "db", "wget", "-qO-", "http://web:8080/"]);
    for _ in 0..50 {
        if fetched.code == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        fetched = b.run(&["exec", "db", "wget", "-qO-", "http://web:8080/"]);
    }
    assert_eq!(fetched.ok(), "[1,2,3]\n");
    b.run(&["exec", "web", "ping", "-c1", "-W2", "database"])
        .ok();
    // Docker's embedded DNS: the network's server at the gateway answers the same names
    // (busybox's nslookup asks the nameserver itself, never /etc/hosts).
    let ip_of = |name: &str| {
        b.run(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.Networks.appnet.IPAddress}}",
            name,
        ])
        .ok()
        .trim()
        .to_string()
    };
    let (db_ip, web_ip) = (ip_of("db"), ip_of("web"));
    let resolv = b
        .run(&["exec", "db", "cat", "/etc/resolv.conf"])
        .ok()
        .to_string();
    let gateway = format!("{}.1", web_ip.rsplit_once('.').unwrap().0);
    assert!(
        resolv.starts_with(&format!("nameserver {gateway}\n")) && resolv.contains("ndots:0"),
        "{resolv}"
    );
    // Docker's `name.network` form too, for names and aliases.
    for (name, ip) in [
        ("web", &web_ip),
        ("database", &db_ip),
        ("DB", &db_ip),
        ("web.appnet", &web_ip),
        ("database.appnet", &db_ip),
    ] {
        let looked = b.run(&["exec", "db", "nslookup", "-type=a", name, &gateway]);
        assert!(
            looked.stdout.contains(&format!("Address: {ip}")),
            "{name}: {} {}",
            looked.stdout,
            looked.stderr
        );
    }
    let unknown = b.run(&["exec", "db", "nslookup", "-type=a", "nosuchname", &gateway]);
    assert!(
        unknown.code != 0 && !unknown.stdout.contains("Address: 10."),
        "{}",
        unknown.stdout
    );
    let mut answer = None;
    for _ in 0..50 {
        answer = http_get(&format!("http://127.0.0.1:{port}/"));
        if answer.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(answer.as_deref(), Some("[1,2,3]\n"));
    // Another network does not see them; connecting it does, and disconnecting undoes it.
    b.run(&[
        "run",
        "-d",
        "--name",
        "lone",
        "--network",
        "other",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    b.run(&["exec", "lone", "ping", "-c1", "-W1", "db"])
        .fails(1, &["bad address 'db'"]);
    // appnet's DNS server answers appnet's containers only.
    let asked = b.run(&[
        "exec",
        "lone",
        "nslookup",
        "-type=a",
        "-timeout=1",
        "-retry=1",
        "web",
        &gateway,
    ]);
    assert!(
        asked.code != 0 && !asked.stdout.contains(&web_ip),
        "{}",
        asked.stdout
    );
    b.run(&["network", "connect", "--alias", "loner", "appnet", "lone"])
        .ok();
    b.run(&["exec", "lone", "ping", "-c1", "-W2", "db"]).ok();
    // Its nameserver is its first network's (other's) server, which answers for every
    // network it is on, as Docker's DNS does.
    let asked = b.run(&["exec", "lone", "nslookup", "-type=a", "db", "10.99.7.1"]);
    assert!(
        asked.stdout.contains(&format!("Address: {db_ip}")),
        "{} {}",
        asked.stdout,
        asked.stderr
    );
    b.run(&["exec", "db", "ping", "-c1", "-W2", "loner"]).ok();
    let v: serde_json::Value = serde_json::from_str(b.run(&["inspect", "lone"]).ok()).unwrap();
    let nets = v[0]["NetworkSettings"]["Networks"].as_object().unwrap();
    assert!(
        nets.contains_key("appnet") && nets.contains_key("other"),
        "{nets:?}"
    );
    b.run(&["network", "disconnect", "appnet", "lone"]).ok();
    b.run(&["exec", "db", "ping", "-c1", "-W1", "loner"])
        .fails(1, &["bad address 'loner'"]);
    let inspect = b.run(&[
        "network",
        "inspect",
        "appnet",
        "--format",
        "{{json .IPAM.Config}}",
    ]);
    assert!(inspect.ok().contains("\"Subnet\""), "{}", inspect.stdout);
    b.run(&["network", "rm", "appnet"])
        .fails(1, &["has active endpoints"]);
    // A container on `--network none` (or host) cannot join a network.
    b.run(&[
        "create",
        "--name",
        "isolated",
        "--network",
        "none",
        "busybox",
        "true",
    ])
    .ok();
    b.run(&["network", "connect", "appnet", "isolated"])
        .fails(1, &["cannot be connected to any other network"]);
    b.run(&["network", "connect", "--alias", "bad alias", "appnet", "db"])
        .fails(1, &["invalid alias"]);
    b.run(&["rm", "isolated"]).ok();
    b.run(&["network", "rm", "bridge"])
        .fails(1, &["pre-defined network and cannot be removed"]);
    b.run(&["run", "--rm", "--network", "nosuch", "busybox", "true"])
        .fails(125, &["network nosuch not found"]);
    b.run(&["rm", "-f", "db", "web", "lone"]).ok();
    assert_eq!(
        b.run(&["network", "rm", "appnet", "other"]).ok(),
        "appnet\nother\n"
    );
    // Nothing left: no bridge, veth, namespace, port rule or DNS server.
    let bridge = format!("/sys/class/net/br-{}", &net_id[..12]);
    let dns_server = || {
        std::process::Command::new("pgrep")
            .args(["-f", &format!("network-dns {net_id}")])
            .output()
            .unwrap()
            .status
            .success()
    };
    for _ in 0..50 {
        if !dns_server() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!dns_server(), "the network's DNS server outlived it");
    assert!(!std::path::Path::new(&bridge).exists());
    assert_eq!(leftovers(&web, port), (false, false, false));
}

#[test]
fn udp_ports_are_published_too() {
    // busybox's nc has no UDP: the python stand-in answers instead.
    let b = Berth::new();
    b.run(&["pull", "-q", "python:3.8-slim-buster"]).ok();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    b.run(&[
        "run", "-d", "--name", "udp", "-p", &format!("{port}:9000/udp"),
        "python:3.8-slim-buster", "python", "-c",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('', 9000))\nwhile True:\n    d, a = s.recvfrom(100)\n    s.sendto(d.upper(), a)",
    ])
    .ok();
    assert_eq!(
        b.run(&["port", "udp"]).ok(),
        format!("9000/udp -> 0.0.0.0:{port}\n")
    );
    // Python may take a while to start on a busy machine: wait until it listens (9000 is
    // 0x2328 in /proc/net/udp) before sending, so no packet is lost to timing.
    for _ in 0..300 {
        if b.run(&["exec", "udp", "cat", "/proc/net/udp"])
            .stdout
            .contains(":2328 ")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut answer = Vec::new();
    for _ in 0..50 {
        // A fresh source port each try: a conntrack entry made by a packet that raced the
        // container's start cannot keep later ones from being forwarded.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        socket.send_to(b"over udp", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 100];
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            answer = buf[..n].to_vec();
            break;
        }
    }
    if answer != b"OVER UDP" {
        let nft = Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .unwrap();
        panic!(
            "no answer on {port}/udp\nps: {}\nlogs: {}{}\nudp: {}\nnft: {}",
            b.run(&["ps", "-a"]).stdout,
            b.run(&["logs", "udp"]).stdout,
            b.run(&["logs", "udp"]).stderr,
            b.run(&["exec", "udp", "cat", "/proc/net/udp"]).stdout,
            String::from_utf8_lossy(&nft.stdout)
        );
    }
    b.run(&["rm", "-f", "udp"]).ok();
}

/// When another program holds port 53 on a network's gateway, its containers keep the
/// host's resolvers (names still resolve through /etc/hosts), and starts do not wait for a
/// server that cannot listen.
#[test]
fn a_taken_dns_port_falls_back_to_the_hosts_resolvers() {
    let b = Berth::new();
    b.run(&["pull", "-q", "busybox"]).ok();
    b.run(&["network", "create", "--subnet", "10.99.9.0/24", "busy53"])
        .ok();
    // The bridge (and its address) comes with the first container.
    b.run(&["run", "--rm", "--network", "busy53", "busybox", "true"])
        .ok();
    b.run(&["network", "rm", "busy53"]).ok();
    b.run(&["network", "create", "--subnet", "10.99.9.0/24", "busy53"])
        .ok();
    b.run(&["run", "--rm", "--network", "busy53", "busybox", "true"])
        .ok();
    // The previous server may still be leaving: wait until the port can be taken.
    let mut taken = None;
    for _ in 0..100 {
        match std::net::UdpSocket::bind("10.99.9.1:53") {
            Ok(s) => {
                taken = Some(s);
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    let _taken = taken.expect("the gateway's port 53 never came free");
    let started = std::time::Instant::now();
    b.run(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "busy53",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let resolv = b
        .run(&["exec", "peer", "cat", "/etc/resolv.conf"])
        .ok()
        .to_string();
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    assert_eq!(resolv, host);
    b.run(&[
        "run",
        "--rm",
        "--network",
        "busy53",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "peer",
    ])
    .ok();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "starts waited for a server that cannot listen: {:?}",
        started.elapsed()
    );
    b.run(&["rm", "-f", "peer"]).ok();
    b.run(&["network", "rm", "busy53"]).ok();
}
