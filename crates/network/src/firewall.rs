//! NAT and published ports with nftables, in one table of berth's own (`ip berth`).

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::{Error, PortMapping};

/// Runs `nft -f -` with a script (one atomic transaction).
fn nft(script: &str) -> Result<(), Error> {
    crate::tool::run("nft", "nftables", &["-f", "-"], Some(script))
}

/// What `nft list table ip berth` says of berth's table.
#[derive(Debug, PartialEq, Eq)]
enum Table {
    /// In its current shape (with the set of bridges).
    Ready,
    /// From an older berth (rules naming one bridge): to be replaced.
    Old,
    /// Not there.
    Missing,
    /// The listing failed otherwise (a dump interrupted by a concurrent change): ask again,
    /// never act on it — deleting a table that is there would drop every published port.
    Unknown,
}

fn table() -> Table {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            if String::from_utf8_lossy(&o.stdout).contains("set bridges") {
                Table::Ready
            } else {
                Table::Old
            }
        }
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No such file or directory") => {
            Table::Missing
        }
        _ => Table::Unknown,
    }
}

/// Serialises table creation between berth processes (the table is machine-wide).
fn lock() -> Option<std::fs::File> {
    let dir = std::path::Path::new("/run/lock");
    let _ = std::fs::create_dir_all(dir);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("berth-nftables.lock"))
        .ok()?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).ok()?;
    Some(f)
}

/// Creates the table once: masquerade out of every network's subnet, forwarding for every
/// bridge, and DNAT of published ports for traffic from outside (prerouting) and from the
/// host itself (output), through two maps (address-specific ports first, then ports on
/// every address); then adds this bridge and subnet to the sets the rules match on, so
/// networks come and go as set elements, never as rules found by handle.
pub(crate) fn ensure(bridge: &str, subnet: &str) -> Result<(), Error> {
    let _lock = lock();
    let mut state = table();
    for _ in 0..20 {
        if state != Table::Unknown {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        state = table();
    }
    if state == Table::Unknown {
        return Err(Error::Command {
            command: "nft list table ip berth".into(),
            stderr: "the firewall table could not be read".into(),
        });
    }
    if state != Table::Ready {
        // A table from an older berth (rules naming one bridge) is replaced.
        let reset = if state == Table::Old {
            "delete table ip berth\n"
        } else {
            ""
        };
        let dnat = "fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @host_ports\n        fib daddr type local dnat ip to meta l4proto . th dport map @ports";
        let created = nft(&format!(
            r#"{reset}table ip berth {{
    set bridges {{ type ifname; }}
    set subnets {{ type ipv4_addr; flags interval; }}
    map ports {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
    map host_ports {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
    chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
        {dnat}
    }}
    chain output {{ type nat hook output priority -100; policy accept;
        {dnat}
    }}
    chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;
        ip saddr @subnets oifname != @bridges masquerade
        oifname @bridges ip saddr 127.0.0.0/8 masquerade
        oifname @bridges ct status dnat ip saddr @subnets masquerade
    }}
    chain forward {{ type filter hook forward priority filter; policy accept;
        iifname @bridges accept
        oifname @bridges accept
    }}
}}
"#
        ));
        created?;
    }
    nft(&format!(
        "add element ip berth bridges {{ \"{bridge}\" }}\nadd element ip berth subnets {{ {subnet} }}\n"
    ))
}

/// Takes a removed network's bridge and subnet out of the sets.
pub(crate) fn forget(bridge: &str, subnet: &str) -> Vec<Error> {
    [
        format!("delete element ip berth bridges {{ \"{bridge}\" }}\n"),
        format!("delete element ip berth subnets {{ {subnet} }}\n"),
    ]
    .iter()
    .filter_map(|script| nft(script).err())
    .collect()
}

fn element(m: &PortMapping, ip: Ipv4Addr) -> (String, String) {
    let value = format!("{ip} . {}", m.container_port);
    match &m.host_ip {
        Some(h) => (
            "host_ports".into(),
            format!("{h} . {} . {} : {value}", m.protocol.as_str(), m.host_port),
        ),
        None => (
            "ports".into(),
            format!("{} . {} : {value}", m.protocol.as_str(), m.host_port),
        ),
    }
}

/// Publishes ports (one atomic nft transaction).
pub(crate) fn add_ports(ports: &[PortMapping], ip: Ipv4Addr) -> Result<(), Error> {
    if ports.is_empty() {
        return Ok(());
    }
    let script: String = ports
        .iter()
        .map(|m| {
            let (map, el) = element(m, ip);
            format!("add element ip berth {map} {{ {el} }}\n")
        })
        .collect();
    nft(&script)
}

/// Withdraws ports; each separately, so one already gone does not keep the others.
pub(crate) fn remove_ports(ports: &[PortMapping], ip: Ipv4Addr) -> Vec<Error> {
    ports
        .iter()
        .filter_map(|m| {
            let (map, el) = element(m, ip);
            let key = el.split(" : ").next().unwrap_or_default().to_string();
            nft(&format!("delete element ip berth {map} {{ {key} }}\n")).err()
        })
        .collect()
}
