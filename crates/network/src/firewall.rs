//! NAT and published ports with nftables, in one table of berth's own (`ip berth`).

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::{Error, PortMapping};

/// Runs `nft -f -` with a script (one atomic transaction).
fn nft(script: &str) -> Result<(), Error> {
    crate::tool::run("nft", "nftables", &["-f", "-"], Some(script))
}

/// Whether berth's table exists in its current shape (with the set of bridges).
fn table_ready() -> bool {
    Command::new("nft")
        .args(["list", "set", "ip", "berth", "bridges"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a table of berth's exists at all.
fn table_exists() -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Creates the table once: masquerade out of every network's subnet, forwarding for every
/// bridge, and DNAT of published ports for traffic from outside (prerouting) and from the
/// host itself (output), through two maps (address-specific ports first, then ports on
/// every address); then adds this bridge and subnet to the sets the rules match on, so
/// networks come and go as set elements, never as rules found by handle.
pub(crate) fn ensure(bridge: &str, subnet: &str) -> Result<(), Error> {
    if !table_ready() {
        // A table from an older berth (rules naming one bridge) is replaced.
        let reset = if table_exists() {
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
        // Another berth may have made it meanwhile.
        if created.is_err() && !table_ready() {
            created?;
        }
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
