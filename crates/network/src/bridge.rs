//! The bridge driver: Docker's default network (`berth0` on 10.89.0.0/16) and user-defined
//! networks (`br-<id>`), each a Linux bridge with a veth pair per attached container.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use crate::ipam::{Ipam, Lease, Leases};
use crate::{firewall, Error, PortMapping, Protocol, Subnet};

/// Name of berth's default bridge.
pub const BRIDGE: &str = "berth0";

/// The line after which a container's `/etc/hosts` lists its peers on user networks.
const PEERS_MARK: &str = "# berth: containers on the same networks";

/// A bridge network.
pub struct Bridge {
    /// The network's name (`bridge` for the default one).
    name: String,
    /// The bridge device.
    ifname: String,
    ipam: Ipam,
    /// `<runroot>/networks`, where every network keeps its leases.
    networks_dir: PathBuf,
    /// Marks (on a tmpfs) that bridge, sysctls and firewall were set up since boot.
    ready_marker: PathBuf,
    /// Containers find each other by name (user-defined networks; not the default bridge,
    /// as in Docker).
    resolves_names: bool,
}

/// A container's attachment.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Its address.
    pub ip: Ipv4Addr,
    /// The gateway (the bridge).
    pub gateway: Ipv4Addr,
    /// The network namespace to run it in.
    pub netns: PathBuf,
    /// Its published ports, with a host port picked for each one asked as 0 (`-P`, `-p 80`).
    pub ports: Vec<PortMapping>,
    /// The DNS server that answers the network's names (user networks: the gateway, where
    /// [`Bridge::serve_dns`] listens), for the container's `resolv.conf`.
    pub dns: Option<Ipv4Addr>,
}

/// What attaching one container to one network needs.
#[derive(Debug, Clone, Default)]
pub struct Endpoint<'a> {
    /// The container ID.
    pub id: &'a str,
    /// The interface inside (`eth0` for the first network, `eth1`…).
    pub ifname: &'a str,
    /// Ports to publish (first network only).
    pub ports: &'a [PortMapping],
    /// Names peers resolve it by: container name, aliases, short ID.
    pub names: Vec<String>,
    /// Its `/etc/hosts` on the host, kept listing its peers on user networks.
    pub hosts_file: Option<PathBuf>,
    /// Route through this network by default (the first network).
    pub default_route: bool,
}

/// The network namespace of a container, named as iproute2 names them.
pub fn namespace_name(id: &str) -> String {
    format!("berth-{}", short(id))
}

/// Whether container `id` has a network namespace: before its monitor attaches it, only
/// the leftover of a monitor that was killed.
pub fn namespace_exists(id: &str) -> bool {
    Path::new(&format!("/run/netns/{}", namespace_name(id))).exists()
}

/// Deletes a container's network namespace once no network holds it (its interfaces go
/// with it); a missing one is not an error.
///
/// Done here rather than by `ip netns del`, which does the same two steps (detach the bind
/// mount that keeps the namespace alive, remove the file) at the cost of a process start.
pub fn remove_namespace(id: &str) -> Result<(), Error> {
    let path = format!("/run/netns/{}", namespace_name(id));
    if !Path::new(&path).exists() {
        return Ok(());
    }
    let io = |what: &str| {
        let context = format!("{what} {path}");
        move |e: rustix::io::Errno| Error::Io {
            context,
            source: e.into(),
        }
    };
    match rustix::mount::unmount(path.as_str(), rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) => {}
        Err(e) => return Err(io("unmounting")(e)),
    }
    match rustix::fs::unlink(path.as_str()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(io("removing")(e)),
    }
}

/// The range Docker picks random host ports from (Linux's default ephemeral range).
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

/// Gives every mapping with host port 0 a free port: one no container holds and no program
/// listens on, tried from a pseudo-random start so concurrent containers rarely collide.
fn pick_ports(
    leases: &crate::ipam::Leases,
    ports: &[PortMapping],
) -> Result<Vec<PortMapping>, Error> {
    let mut out: Vec<PortMapping> = Vec::with_capacity(ports.len());
    let span = (EPHEMERAL.end() - EPHEMERAL.start()) as u32 + 1;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id();
    for m in ports {
        if m.host_port != 0 {
            out.push(m.clone());
            continue;
        }
        let mut found = None;
        for i in 0..span {
            let port = EPHEMERAL.start() + ((seed.wrapping_add(i)) % span) as u16;
            let candidate = PortMapping {
                host_port: port,
                ..m.clone()
            };
            let clash = out
                .iter()
                .any(|o| o.host_port == port && o.protocol == m.protocol);
            if !clash && Bridge::check_ports(leases, std::slice::from_ref(&candidate)).is_ok() {
                found = Some(candidate);
                break;
            }
        }
        out.push(found.ok_or_else(|| Error::PortInUse {
            ip: m.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
            port: 0,
        })?);
    }
    Ok(out)
}

/// Runs `ip ARGS`, feeding `batch` on stdin when given (`ip -batch -`).
fn ip(args: &[&str], batch: Option<&str>) -> Result<(), Error> {
    crate::tool::run("ip", "iproute2", args, batch)
}

fn write_sysctl(path: &str, value: &str) -> Result<(), Error> {
    std::fs::write(path, value).map_err(|e| Error::Io {
        context: format!("setting {path}"),
        source: e,
    })
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

impl Bridge {
    /// Docker's default `bridge` network. Its leases live under `runroot`, not with an image
    /// store: the bridge is one per machine, shared by every store (`--root`) on it, and
    /// its leases die with the containers at reboot.
    pub fn default_network(runroot: PathBuf) -> Bridge {
        let subnet = Subnet {
            base: Ipv4Addr::new(10, 89, 0, 0),
            prefix: 16,
        };
        Bridge::new(runroot, "bridge", "bridge", BRIDGE.into(), subnet, false)
    }

    /// A user-defined network: bridge `br-<first 12 of id>`, its own subnet, and name
    /// resolution between its containers.
    pub fn user_network(runroot: PathBuf, name: &str, id: &str, subnet: Subnet) -> Bridge {
        // Leases by ID: runroot is machine-wide, and two stores may both have an "appnet".
        Bridge::new(runroot, name, id, format!("br-{}", short(id)), subnet, true)
    }

    fn new(
        runroot: PathBuf,
        name: &str,
        dir: &str,
        ifname: String,
        subnet: Subnet,
        names: bool,
    ) -> Bridge {
        let networks_dir = runroot.join("networks");
        Bridge {
            ready_marker: networks_dir.join(format!("{ifname}.ready")),
            ipam: Ipam {
                dir: networks_dir.join(dir),
                subnet,
            },
            name: name.into(),
            ifname,
            networks_dir,
            resolves_names: names,
        }
    }

    /// The bridge device's name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The network's subnet.
    pub fn subnet(&self) -> Subnet {
        self.ipam.subnet
    }

    /// The bridge's own address, the containers' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.ipam.subnet.gateway()
    }

    /// Where the network keeps its leases (and its DNS server's lock).
    pub(crate) fn lease_dir(&self) -> &Path {
        &self.ipam.dir
    }

    /// The names the container at `client` (a member of this network) can reach, as
    /// Docker's DNS answers them: this network's members, then the members of every other
    /// network that container is on (their leases name it too).
    pub(crate) fn names_seen_from(&self, client: Ipv4Addr) -> Vec<(Ipv4Addr, Vec<String>)> {
        let own = self.ipam.peek();
        let Some(container) = own.get(&client).map(|l| l.container.clone()) else {
            return Vec::new();
        };
        let mut names: Vec<(Ipv4Addr, Vec<String>)> =
            own.into_iter().map(|(ip, l)| (ip, l.names)).collect();
        for other in self.other_networks_leases() {
            if other.values().any(|l| l.container == container) {
                names.extend(other.into_iter().map(|(ip, l)| (ip, l.names)));
            }
        }
        names
    }

    /// The leases of every other network on this machine (read without their locks).
    fn other_networks_leases(&self) -> Vec<Leases> {
        let Ok(rd) = std::fs::read_dir(&self.networks_dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.path() != self.ipam.dir && e.path().is_dir())
            .map(|e| {
                Ipam {
                    dir: e.path(),
                    subnet: self.ipam.subnet,
                }
                .peek()
            })
            .collect()
    }

    /// Whether the network's DNS server runs (see [`crate::dns`]).
    pub fn dns_running(&self) -> bool {
        crate::dns::running(&self.ipam.dir)
    }

    /// Whether the network has a DNS server or should start one: not when another program
    /// held its port before.
    pub fn dns_wanted(&self) -> bool {
        self.resolves_names && !crate::dns::unavailable(&self.ipam.dir)
    }

    /// For a DNS server about to end: under the leases' lock, lets go of `dns_lock` if the
    /// network is empty, so that a container joining at this moment is either seen (and
    /// the server stays) or finds no server and starts one.
    pub(crate) fn leave_dns_if_empty(&self, dns_lock: &std::fs::File) -> bool {
        if !self.ipam.dir.exists() {
            return true;
        }
        self.ipam
            .update(|leases| {
                let empty = leases.is_empty();
                if empty {
                    let _ = rustix::fs::flock(dns_lock, rustix::fs::FlockOperation::Unlock);
                }
                Ok(empty)
            })
            .unwrap_or(true)
    }

    /// Runs the network's DNS server in this process until the network has been empty for
    /// a few seconds (the hidden `berth network-dns` command). `ready` is written one byte
    /// once it listens; returns at once if another server runs.
    pub fn serve_dns(&self, ready: std::fs::File) -> Result<(), Error> {
        crate::dns::serve(self, || crate::dns::tell_ready(ready))
    }

    /// Container IDs attached now, with their addresses.
    pub fn members(&self) -> Vec<(String, Ipv4Addr)> {
        self.ipam
            .peek()
            .into_iter()
            .map(|(ip, l)| (l.container, ip))
            .collect()
    }

    fn veth_name(id: &str, ifname: &str) -> String {
        let n = ifname.trim_start_matches("eth");
        if n == "0" {
            format!("vb{}", &short(id)[..11.min(short(id).len())])
        } else {
            // Another prefix: `vb` + 10 characters + "1" could be the eth0 name of the same ID.
            format!("vn{}{n}", &short(id)[..10.min(short(id).len())])
        }
    }

    /// Makes the bridge, its address and firewall elements now (`network create`); attaching
    /// a container does it too when needed (after a reboot).
    pub fn create(&self) -> Result<(), Error> {
        self.ensure()
    }

    /// Creates the bridge, its address, forwarding and the firewall's elements, once.
    fn ensure(&self) -> Result<(), Error> {
        // Checking the firewall costs an `nft` run; the marker (gone after a reboot) and the
        // bridge's presence are enough to know it was all done.
        let exists = Path::new(&format!("/sys/class/net/{}", self.ifname)).exists();
        if exists && self.ready_marker.exists() {
            return Ok(());
        }
        if !exists {
            let gw = format!("{}/{}", self.gateway(), self.ipam.subnet.prefix);
            let created = ip(&["link", "add", &self.ifname, "type", "bridge"], None);
            // Another berth may have created it at the same moment.
            if created.is_err() && !Path::new(&format!("/sys/class/net/{}", self.ifname)).exists() {
                created?;
            }
            let _ = ip(&["addr", "add", &gw, "dev", &self.ifname], None);
            ip(&["link", "set", &self.ifname, "up"], None)?;
        }
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        // Lets DNAT send 127.0.0.1 traffic to containers: published ports answer on loopback.
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", self.ifname),
            "1",
        )?;
        firewall::ensure(&self.ifname, &self.ipam.subnet.to_string())?;
        if let Some(dir) = self.ready_marker.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&self.ready_marker, b"");
        Ok(())
    }

    /// Every network's leases on this machine: published ports are one namespace.
    fn all_leases(&self, own: &Leases) -> Leases {
        let mut all = own.clone();
        for other in self.other_networks_leases() {
            all.extend(other);
        }
        all
    }

    /// Refuses ports another container published or another program listens on.
    fn check_ports(leases: &Leases, ports: &[PortMapping]) -> Result<(), Error> {
        for m in ports {
            let taken_by_container = leases.values().flat_map(|l| &l.ports).any(|p| {
                p.host_port == m.host_port
                    && p.protocol == m.protocol
                    && (p.host_ip.is_none() || m.host_ip.is_none() || p.host_ip == m.host_ip)
            });
            let host = m.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into());
            let addr = format!("{host}:{}", m.host_port);
            let free = match m.protocol {
                Protocol::Tcp => TcpListener::bind(&addr).is_ok(),
                Protocol::Udp => UdpSocket::bind(&addr).is_ok(),
            };
            if taken_by_container || !free {
                return Err(Error::PortInUse {
                    ip: host,
                    port: m.host_port,
                });
            }
        }
        Ok(())
    }

    /// Attaches a container: address, namespace (made by the first network) with the
    /// interface and `lo`, default route, published ports, and its name for its peers. On
    /// failure, whatever was made is taken down again.
    pub fn setup(&self, endpoint: &Endpoint) -> Result<Attached, Error> {
        self.ensure()?;
        let id = endpoint.id;
        let (addr, ports) = self.ipam.update(|leases| {
            let all = self.all_leases(leases);
            let ports = pick_ports(&all, endpoint.ports)?;
            Self::check_ports(&all, &ports)?;
            let addr = self.ipam.allocate(leases)?;
            leases.insert(
                addr,
                Lease {
                    container: id.to_string(),
                    ports: ports.clone(),
                    names: endpoint.names.clone(),
                    hosts_file: endpoint.hosts_file.clone(),
                    ifname: endpoint.ifname.to_string(),
                },
            );
            Ok((addr, ports))
        })?;
        match self.plumb(endpoint, addr, &ports) {
            Ok(a) => {
                self.refresh_names();
                Ok(a)
            }
            Err(e) => {
                let _ = self.teardown(id);
                Err(e)
            }
        }
    }

    fn plumb(
        &self,
        endpoint: &Endpoint,
        addr: Ipv4Addr,
        ports: &[PortMapping],
    ) -> Result<Attached, Error> {
        let ns = namespace_name(endpoint.id);
        let veth = Self::veth_name(endpoint.id, endpoint.ifname);
        let ns_path = PathBuf::from(format!("/run/netns/{ns}"));
        let (mut inside, ns_fd) = crate::netlink::open_in_namespace(&ns_path)?;
        let mut host = crate::netlink::Netlink::open().map_err(|source| Error::Io {
            context: "opening netlink".into(),
            source,
        })?;
        let bridge = host.index(&self.ifname).map_err(|source| Error::Io {
            context: format!("finding the bridge {}", self.ifname),
            source,
        })?;
        host.add_veth(&veth, endpoint.ifname, addr, &ns_fd, bridge)?;
        inside.add_address(endpoint.ifname, addr, self.ipam.subnet.prefix)?;
        // The peer cannot come up with the pair (veth refuses while its other end is not
        // registered yet): one request inside.
        inside.set_up(endpoint.ifname)?;
        inside.set_up("lo")?;
        if endpoint.default_route {
            inside.add_default_route(self.gateway())?;
        }
        firewall::add_ports(ports, addr)?;
        Ok(Attached {
            ip: addr,
            gateway: self.gateway(),
            netns: PathBuf::from(format!("/run/netns/{ns}")),
            ports: ports.to_vec(),
            dns: self.resolves_names.then(|| self.gateway()),
        })
    }

    /// Rewrites the peers section of every member's `/etc/hosts` (user networks only): each
    /// lists the others of every network it shares with them, by name and alias. Call it
    /// again after rewriting a member's hosts file.
    pub fn refresh_names(&self) {
        if !self.resolves_names {
            return;
        }
        let _ = self.ipam.update(|leases| {
            for lease in leases.values() {
                let Some(hosts) = &lease.hosts_file else {
                    continue;
                };
                // Itself included: its aliases resolve inside it too, as with Docker's DNS.
                let peers: Vec<(Ipv4Addr, &[String])> = leases
                    .iter()
                    .map(|(ip, l)| (*ip, l.names.as_slice()))
                    .collect();
                let _ = write_peers(hosts, &self.name, &peers);
            }
            Ok(())
        });
    }

    /// Detaches container `id` from this network: ports, veth, address, and its name from
    /// its peers' hosts files. Goes on past failures and reports them all; missing pieces
    /// are not failures. The namespace stays (see [`remove_namespace`]).
    pub fn teardown(&self, id: &str) -> Result<(), Error> {
        self.detach(id, true)
    }

    /// As [`teardown`](Self::teardown), but leaves the veth to the namespace's removal
    /// (which destroys it): the cheap path when a container leaves all its networks at once.
    pub fn release(&self, id: &str) -> Result<(), Error> {
        self.detach(id, false)
    }

    fn detach(&self, id: &str, delete_veth: bool) -> Result<(), Error> {
        let mut errors = Vec::new();
        let lease = self.ipam.update(|leases| {
            let found = leases
                .iter()
                .find(|(_, l)| l.container == id)
                .map(|(a, l)| (*a, l.clone()));
            if let Some((a, _)) = &found {
                leases.remove(a);
            }
            Ok(found)
        });
        let mut ifname = "eth0".to_string();
        match lease {
            Ok(Some((addr, l))) => {
                errors.extend(firewall::remove_ports(&l.ports, addr));
                if let Some(hosts) = &l.hosts_file {
                    let _ = write_peers(hosts, &self.name, &[]);
                }
                ifname = l.ifname;
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
        // Deleting the host end of the veth takes the container's end with it.
        let veth = Self::veth_name(id, &ifname);
        if delete_veth && Path::new(&format!("/sys/class/net/{veth}")).exists() {
            let deleted = crate::netlink::Netlink::open()
                .map_err(|source| Error::Io {
                    context: "opening netlink".into(),
                    source,
                })
                .and_then(|mut n| n.delete_link(&veth));
            if let Err(e) = deleted {
                // Already going away with its namespace.
                if Path::new(&format!("/sys/class/net/{veth}")).exists() {
                    errors.push(e);
                }
            }
        }
        self.refresh_names();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.pop().expect("one")),
            _ => Err(Error::Many(errors)),
        }
    }

    /// Deletes the network's bridge, firewall elements and leases (`network rm`; the caller
    /// checks no container uses it).
    pub fn remove(&self) -> Result<(), Error> {
        crate::dns::stop(&self.ipam.dir);
        let mut errors = firewall::forget(&self.ifname, &self.ipam.subnet.to_string());
        if Path::new(&format!("/sys/class/net/{}", self.ifname)).exists() {
            if let Err(e) = ip(&["link", "del", &self.ifname], None) {
                errors.push(e);
            }
        }
        let _ = std::fs::remove_file(&self.ready_marker);
        let _ = std::fs::remove_dir_all(&self.ipam.dir);
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.pop().expect("one")),
            _ => Err(Error::Many(errors)),
        }
    }
}

/// Replaces the peers section of a hosts file, in place: it is bind-mounted into the
/// container, so a new file (rename) would not be seen.
fn write_peers(
    hosts: &Path,
    network: &str,
    peers: &[(Ipv4Addr, &[String])],
) -> std::io::Result<()> {
    let text = std::fs::read_to_string(hosts)?;
    let mut sections: Vec<String> = Vec::new();
    let (base, rest) = match text.find(PEERS_MARK) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text.as_str(), ""),
    };
    // Keep the other networks' sections: one per network, headed by the mark and its name.
    let header = format!("{PEERS_MARK} ({network})");
    for section in rest
        .split_inclusive('\n')
        .fold(Vec::<String>::new(), |mut acc, line| {
            if line.starts_with(PEERS_MARK) {
                acc.push(String::new());
            }
            if let Some(last) = acc.last_mut() {
                last.push_str(line);
            }
            acc
        })
    {
        if !section.starts_with(&header) {
            sections.push(section);
        }
    }
    if !peers.is_empty() {
        let mut mine = format!("{header}\n");
        for (ip, names) in peers {
            if !names.is_empty() {
                mine.push_str(&format!("{ip}\t{}\n", names.join(" ")));
            }
        }
        sections.push(mine);
    }
    let mut out = base.to_string();
    for s in sections {
        out.push_str(&s);
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(hosts)?;
    f.write_all(out.as_bytes())
}
