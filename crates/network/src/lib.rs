//! Container networking: Docker's default `bridge` network and user-defined bridge networks,
//! each a Linux bridge with a veth pair per container, addresses from a small IPAM, NAT out,
//! published ports by nftables DNAT, and, on user networks, containers that find each other
//! by name.
//!
//! ```no_run
//! use berth_network::{Bridge, PortMapping, Protocol};
//! let bridge = Bridge::default_network("/run/berth".into());
//! let port = PortMapping { host_ip: None, host_port: 5000, container_port: 5000, protocol: Protocol::Tcp };
//! let ports = [port];
//! let endpoint = berth_network::Endpoint { id: "0123456789ab", ifname: "eth0", ports: &ports, default_route: true, ..Default::default() };
//! let attached = bridge.setup(&endpoint)?;
//! println!("container at {} in {}", attached.ip, attached.netns.display());
//! bridge.teardown("0123456789ab")?;
//! berth_network::remove_namespace("0123456789ab")?;
//! # Ok::<(), berth_network::Error>(())
//! ```
//!
//! **Design.** Only two verbs, `setup` and `teardown`; teardown keeps going past failures
//! and reports them all, so `rm` after a `kill -9` still removes every veth, address and
//! rule. Published ports live in one nftables map (`protocol . port → address . port`), so a
//! container's ports are added and removed as map elements, never by finding rule handles,
//! and traffic goes kernel to kernel, with no userland proxy: from other hosts, from the host's
//! own addresses and from 127.0.0.1 (with `route_localnet` on the bridge). What every
//! container start does (its namespace, veth pair, address, routes) is spoken to the kernel
//! over rtnetlink in-process (`netlink`); rarer work (bridges) uses iproute2, and rules `nft`,
//! the tools every distribution ships, in their documented syntax.
//!
//! **Names.** On user-defined networks a container's peers are listed, by name and alias, in
//! a section of its `/etc/hosts` that this crate rewrites in place whenever a container
//! joins or leaves, and a DNS server per network (`dns`, a process of its own started with
//! the network's first container, as Podman's aardvark-dns) answers the same names at the
//! gateway, which is the containers' `nameserver`, and passes other questions to the host's
//! resolvers: Docker's embedded DNS without a daemon, for programs that ask DNS directly.
//!
//! **Architecture invariant:** knows nothing of images or containers' contents; it is handed
//! a container ID and port mappings and hands back a namespace path and an address.
#![deny(missing_docs)]

mod bridge;
mod dns;
mod firewall;
mod ipam;
mod netlink;
mod ports;
mod subnet;
mod tool;

pub use bridge::{namespace_exists, namespace_name, remove_namespace, Attached, Bridge, Endpoint};
pub use ports::{parse_publish, PortMapping, Protocol};
pub use subnet::Subnet;

/// What went wrong setting up or tearing down networking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command (`ip`, `nft`) failed.
    #[error("{command}: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed.
        stderr: String,
    },
    /// A file of the network state could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The address pool is used up.
    #[error("no free address left in {0}")]
    Exhausted(String),
    /// A host port is taken (Docker's wording).
    #[error("driver failed programming external connectivity on endpoint: Bind for {ip}:{port} failed: port is already allocated")]
    PortInUse {
        /// Host address.
        ip: String,
        /// Host port.
        port: u16,
    },
    /// A `--subnet` value is malformed.
    #[error("{0}")]
    InvalidSubnet(String),
    /// A `-p` value is malformed.
    #[error("{0}")]
    InvalidPort(String),
    /// Teardown went on past several failures; here they all are.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<Error>),
}
