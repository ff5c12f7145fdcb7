//! The bridge driver: Docker's default network, `berth0` on 10.89.0.0/16.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;

use crate::ipam::{Ipam, Lease};
use crate::{firewall, Error, PortMapping, Protocol};

/// Name of berth's default bridge.
pub const BRIDGE: &str = "berth0";

/// A bridge network.
pub struct Bridge {
    name: String,
    ipam: Ipam,
    /// Marks (on a tmpfs) that bridge, sysctls and firewall table were set up since boot.
    ready_marker: PathBuf,
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
        Bridge {
            ready_marker: runroot.join("networks").join(format!("{BRIDGE}.ready")),
            name: BRIDGE.into(),
            ipam: Ipam {
                dir: runroot.join("networks").join("bridge"),
                prefix: (10, 89),
            },
        }
    }

    fn subnet(&self) -> String {
        format!("{}.{}.0.0/16", self.ipam.prefix.0, self.ipam.prefix.1)
    }

    fn netns_name(id: &str) -> String {
        format!("berth-{}", short(id))
    }

    fn veth_name(id: &str) -> String {
        format!("vb{}", &short(id)[..11.min(short(id).len())])
    }

    /// Creates the bridge, its address, forwarding and the firewall table, once.
    fn ensure(&self) -> Result<(), Error> {
        // Checking the firewall costs an `nft` run; the marker (gone after a reboot) and the
        // bridge's presence are enough to know it was all done.
        let exists = std::path::Path::new(&format!("/sys/class/net/{}", self.name)).exists();
        if exists && self.ready_marker.exists() {
            return Ok(());
        }
        if !exists {
            let gw = format!("{}/16", self.ipam.gateway());
            let created = ip(&["link", "add", &self.name, "type", "bridge"], None);
            // Another berth may have created it at the same moment.
            if created.is_err()
                && !std::path::Path::new(&format!("/sys/class/net/{}", self.name)).exists()
            {
                created?;
            }
            let _ = ip(&["addr", "add", &gw, "dev", &self.name], None);
            ip(&["link", "set", &self.name, "up"], None)?;
        }
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        // Lets DNAT send 127.0.0.1 traffic to containers: published ports answer on loopback.
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", self.name),
            "1",
        )?;
        firewall::ensure(&self.name, &self.subnet())
    }

    /// Refuses ports another container published or another program listens on.
    fn check_ports(leases: &crate::ipam::Leases, ports: &[PortMapping]) -> Result<(), Error> {
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

    /// Attaches container `id`: address, namespace with `eth0` and `lo`, default route,
    /// published ports. On failure, whatever was made is taken down again.
    pub fn setup(&self, id: &str, ports: &[PortMapping]) -> Result<Attached, Error> {
        self.ensure()?;
        let prefix = self.ipam.prefix;
        let (addr, ports) = self.ipam.update(|leases| {
            let ports = pick_ports(leases, ports)?;
            Self::check_ports(leases, &ports)?;
            let addr = Ipam::allocate(leases, prefix)?;
            leases.insert(
                addr,
                Lease {
                    container: id.to_string(),
                    ports: ports.clone(),
                },
            );
            Ok((addr, ports))
        })?;
        match self.plumb(id, addr, &ports) {
            Ok(a) => Ok(a),
            Err(e) => {
                let _ = self.teardown(id);
                Err(e)
            }
        }
    }

    fn plumb(&self, id: &str, addr: Ipv4Addr, ports: &[PortMapping]) -> Result<Attached, Error> {
        let ns = Self::netns_name(id);
        let veth = Self::veth_name(id);
        ip(&["netns", "add", &ns], None)?;
        ip(
            &["-batch", "-"],
            Some(&format!(
                "link add {veth} type veth peer name eth0 netns {ns}\nlink set {veth} master {} up\n",
                self.name
            )),
        )?;
        ip(
            &["-n", &ns, "-batch", "-"],
            Some(&format!(
                "addr add {addr}/16 dev eth0\nlink set eth0 up\nlink set lo up\nroute add default via {}\n",
                self.ipam.gateway()
            )),
        )?;
        firewall::add_ports(ports, addr)?;
        Ok(Attached {
            ip: addr,
            gateway: self.ipam.gateway(),
            netns: PathBuf::from(format!("/run/netns/{ns}")),
            ports: ports.to_vec(),
        })
    }

    /// Detaches container `id`: ports, veth, namespace, address. Goes on past failures and
    /// reports them all; missing pieces are not failures.
    pub fn teardown(&self, id: &str) -> Result<(), Error> {
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
        match lease {
            Ok(Some((addr, l))) => errors.extend(firewall::remove_ports(&l.ports, addr)),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
        // Deleting the namespace destroys eth0 and with it its veth peer on the bridge; the
        // explicit delete is for a veth whose namespace is already gone.
        let ns = Self::netns_name(id);
        if std::path::Path::new(&format!("/run/netns/{ns}")).exists() {
            if let Err(e) = ip(&["netns", "del", &ns], None) {
                errors.push(e);
            }
        }
        let veth = Self::veth_name(id);
        if std::path::Path::new(&format!("/sys/class/net/{veth}")).exists() {
            if let Err(e) = ip(&["link", "del", &veth], None) {
                // Already going away with its namespace.
                if std::path::Path::new(&format!("/sys/class/net/{veth}")).exists() {
                    errors.push(e);
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.pop().expect("one")),
            _ => Err(Error::Many(errors)),
        }
    }
}
