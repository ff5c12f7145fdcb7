//! The per-container plumbing spoken directly to the kernel over rtnetlink: a network
//! namespace, a veth pair with one end in it, its address, `lo` and the default route.
//!
//! This is the path every `run` takes, so it is done in-process: two `ip` runs cost about
//! 8 ms a container here (process start and dynamic loading of iproute2), the same requests
//! over a netlink socket well under one. The messages are the ones `ip` sends
//! (`netlink-packet-route`, the crate netavark and youki build on, encodes them); rarer
//! operations (making a bridge, deleting one) stay with `ip` in [`crate::tool`].

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::Socket;

/// The size of `struct nlmsghdr`; an answer's payload starts after it.
const NLMSG_HEADER_LEN: usize = 16;
/// `NLMSG_ERROR`: an error or acknowledgement, `struct nlmsgerr` (errno first).
const NLMSG_ERROR: u16 = 2;
/// `RTM_NEWLINK`: a link, `struct ifinfomsg` (family, pad, type, then the index at 4).
const RTM_NEWLINK: u16 = 16;

/// A route netlink socket, bound to the network namespace it was opened in.
pub(crate) struct Netlink {
    socket: Socket,
    seq: u32,
}

/// An error of one request, with what was being done.
fn failed(what: String) -> impl FnOnce(std::io::Error) -> crate::Error {
    move |source| crate::Error::Io {
        context: what,
        source,
    }
}

impl Netlink {
    /// A socket in this thread's network namespace.
    pub(crate) fn open() -> std::io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// Sends one request and waits for the kernel's acknowledgement.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> std::io::Result<()> {
        let mut req = NetlinkMessage::from(message);
        self.seq += 1;
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        req.header.sequence_number = self.seq;
        req.finalize();
        let mut buf = vec![0; req.buffer_len()];
        req.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let mut reply = vec![0u8; 8192];
        loop {
            let n = self.socket.recv(&mut &mut reply[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply[offset..n])
                    .map_err(|e| std::io::Error::other(format!("bad netlink answer: {e}")))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == self.seq {
                    if let NetlinkPayload::Error(e) = msg.payload {
                        return match e.code {
                            None => Ok(()),
                            Some(code) => Err(std::io::Error::from_raw_os_error(-code.get())),
                        };
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }

    /// The index of interface `name`.
    pub(crate) fn index(&mut self, name: &str) -> std::io::Result<u32> {
        // The socket's namespace is not necessarily this thread's: ask the kernel through it.
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetLink(msg));
        self.seq += 1;
        req.header.flags = NLM_F_REQUEST;
        req.header.sequence_number = self.seq;
        req.finalize();
        let mut buf = vec![0; req.buffer_len()];
        req.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let mut reply = vec![0u8; 16384];
        loop {
            let n = self.socket.recv(&mut &mut reply[..], 0)?;
            // Only the header and the index are read: decoding the whole answer (every
            // attribute and statistic of the link) allocated and formatted kilobytes, which
            // fragmented the heap of the monitor that stays resident.
            let field = |at: usize| -> Option<[u8; 4]> { reply.get(at..at + 4)?.try_into().ok() };
            let (Some(kind), Some(seq), Some(value)) = (
                reply.get(4..6).filter(|_| n >= 24),
                field(8),
                field(NLMSG_HEADER_LEN + 4),
            ) else {
                return Err(std::io::Error::other("short netlink answer"));
            };
            if u32::from_ne_bytes(seq) != self.seq {
                continue;
            }
            return match u16::from_ne_bytes([kind[0], kind[1]]) {
                RTM_NEWLINK => Ok(u32::from_ne_bytes(value)),
                NLMSG_ERROR => match field(NLMSG_HEADER_LEN).map(i32::from_ne_bytes) {
                    Some(code) if code < 0 => Err(std::io::Error::from_raw_os_error(-code)),
                    _ => Err(std::io::ErrorKind::NotFound.into()),
                },
                _ => Err(std::io::Error::other("unexpected netlink answer")),
            };
        }
    }

    /// Creates the veth pair `host`/`peer`, the peer in the namespace `netns` with the MAC
    /// address Docker derives from its IP (`02:42:` then the address's four bytes), the host
    /// end enslaved to `bridge` and up (`ip link add HOST master BRIDGE up type veth peer
    /// name PEER netns NS address MAC`). A derived MAC keeps the host's neighbour entry for
    /// a reused address right: with a random one, traffic to a new container that got a
    /// departed one's address went to the old MAC until the entry expired.
    pub(crate) fn add_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_ip: Ipv4Addr,
        netns: &OwnedFd,
        bridge: u32,
    ) -> Result<(), crate::Error> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        let ip = peer_ip.octets();
        peer_msg.attributes.push(LinkAttribute::Address(vec![
            0x02, 0x42, ip[0], ip[1], ip[2], ip[3],
        ]));
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Controller(bridge));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(failed(format!("creating the veth pair {host}/{peer}")))
    }

    /// Brings interface `name` up; the kernel finds it by name (index 0), which saves a
    /// round trip.
    pub(crate) fn set_up(&mut self, name: &str) -> Result<(), crate::Error> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(failed(format!("bringing {name} up")))
    }

    /// Gives interface `name` the address `addr/prefix`.
    pub(crate) fn add_address(
        &mut self,
        name: &str,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), crate::Error> {
        let index = self
            .index(name)
            .map_err(failed(format!("finding interface {name}")))?;
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr.into()));
        msg.attributes.push(AddressAttribute::Address(addr.into()));
        // The broadcast address, as `ip addr add` leaves it unset but Docker sets it.
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        msg.attributes
            .push(AddressAttribute::Broadcast(Ipv4Addr::from(
                u32::from(addr) | !mask,
            )));
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map_err(failed(format!("adding address {addr}/{prefix} to {name}")))
    }

    /// Routes everything not on a local network through `gateway`.
    pub(crate) fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), crate::Error> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map_err(failed(format!("adding the default route via {gateway}")))
    }

    /// Deletes interface `name` (and with a veth, its peer).
    pub(crate) fn delete_link(&mut self, name: &str) -> Result<(), crate::Error> {
        let index = self
            .index(name)
            .map_err(failed(format!("finding interface {name}")))?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(msg), 0)
            .map_err(failed(format!("deleting interface {name}")))
    }
}

/// A netlink socket inside the named network namespace `path` (a bind mount as iproute2
/// keeps them), making the namespace first if there is none; also returns the namespace.
///
/// The namespace switch happens on a short-lived thread, so the caller's own namespace never
/// changes (the monitor clones the container later and must be where it started).
pub(crate) fn open_in_namespace(path: &Path) -> Result<(Netlink, OwnedFd), crate::Error> {
    let path = path.to_path_buf();
    std::thread::spawn(move || -> Result<(Netlink, OwnedFd), crate::Error> {
        let io = |what: &str| failed(format!("{what} {}", path.display()));
        if path.exists() {
            let ns: OwnedFd = std::fs::File::open(&path)
                .map_err(io("opening the network namespace"))?
                .into();
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(|e| io("entering the network namespace")(e.into()))?;
            let socket = Netlink::open().map_err(io("opening netlink in"))?;
            return Ok((socket, ns));
        }
        prepare_netns_dir()?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io("creating"))?;
        let made = (|| -> Result<(Netlink, OwnedFd), crate::Error> {
            // SAFETY: a new network namespace for this thread alone; it shares no memory,
            // file table or filesystem state the rest of the process relies on.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                .map_err(|e| io("making the network namespace")(e.into()))?;
            // Pinned by a bind mount of this thread's namespace onto the file, as `ip netns
            // add` does, so it outlives this thread and any process in it.
            rustix::mount::mount_bind("/proc/thread-self/ns/net", &path)
                .map_err(|e| io("pinning the network namespace at")(e.into()))?;
            let ns: OwnedFd = std::fs::File::open(&path)
                .map_err(io("opening the network namespace"))?
                .into();
            let socket = Netlink::open().map_err(io("opening netlink in"))?;
            Ok((socket, ns))
        })();
        if made.is_err() {
            let _ = rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH);
            let _ = std::fs::remove_file(&path);
        }
        made
    })
    .join()
    .unwrap_or_else(|_| {
        Err(crate::Error::Io {
            context: "making the network namespace".into(),
            source: std::io::Error::other("the namespace thread panicked"),
        })
    })
}

/// Makes `/run/netns` a shared mount point of its own, as `ip netns add` does the first time,
/// so that unmounting a namespace there reaches every mount namespace that copied it (a
/// copy would otherwise keep the namespace and its interfaces alive).
fn prepare_netns_dir() -> Result<(), crate::Error> {
    use rustix::mount::{MountPropagationFlags, UnmountFlags};
    let dir = Path::new("/run/netns");
    let io = |what: &'static str| {
        move |e: rustix::io::Errno| crate::Error::Io {
            context: format!("{what} /run/netns"),
            source: e.into(),
        }
    };
    std::fs::create_dir_all(dir).map_err(failed("creating /run/netns".into()))?;
    match rustix::mount::mount_change(
        dir,
        MountPropagationFlags::SHARED | MountPropagationFlags::REC,
    ) {
        Ok(()) => return Ok(()),
        // Not a mount point yet: make it one.
        Err(rustix::io::Errno::INVAL) => {}
        Err(e) => return Err(io("sharing")(e)),
    }
    rustix::mount::mount_bind_recursive(dir, dir).map_err(io("bind-mounting"))?;
    if let Err(e) = rustix::mount::mount_change(
        dir,
        MountPropagationFlags::SHARED | MountPropagationFlags::REC,
    ) {
        let _ = rustix::mount::unmount(dir, UnmountFlags::DETACH);
        return Err(io("sharing")(e));
    }
    Ok(())
}
