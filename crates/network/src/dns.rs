//! The DNS server of a user-defined network, Docker's embedded DNS done daemonless (as
//! Podman's aardvark-dns): one small process per network, listening on the bridge's address,
//! port 53 (the containers' `nameserver`). It answers the names, aliases and short IDs of
//! the containers on the asking container's networks (this one and any other it is
//! connected to, as Docker's DNS does) from the networks' leases, read again for every
//! question so that joins and leaves show at once, and passes every other question on to the host's own
//! resolvers (so `127.0.0.53` and other loopback resolvers work from containers too). It
//! ends by itself a few seconds after the network has no container left.
//!
//! The wire format is written here rather than taken from a DNS crate: the server reads one
//! question and writes A records, a few dozen lines, and forwards everything else untouched.

use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Bridge, Error};

/// Held (flock) by the network's DNS server for its life; holds its PID.
const LOCK: &str = "dns.lock";
/// Docker's embedded DNS gives its answers this TTL.
const TTL: u32 = 600;
/// How long the server stays once the network is empty.
const IDLE: Duration = Duration::from_secs(3);
/// How long a forwarded question waits for each upstream server.
const UPSTREAM_WAIT: Duration = Duration::from_secs(3);
/// Questions passed upstream at once, at most (a thread each); more are dropped, and the
/// client asks again.
const MAX_FORWARDS: usize = 64;
/// Left in the network's folder when another program holds port 53 on the gateway: the
/// network's containers then use the host's resolvers, and no start waits for a server.
const UNAVAILABLE: &str = "dns.unavailable";

/// Whether a DNS server holds the lock in the network directory `dir`.
pub(crate) fn running(dir: &Path) -> bool {
    let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))
    else {
        return false;
    };
    // Taken: someone serves. Free: the lock goes again with `f`.
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err()
}

/// Whether a server could not listen on this network before (see [`UNAVAILABLE`]).
pub(crate) fn unavailable(dir: &Path) -> bool {
    dir.join(UNAVAILABLE).exists()
}

/// Stops the network's DNS server, if one runs (the network is being removed).
pub(crate) fn stop(dir: &Path) {
    if !running(dir) {
        return;
    }
    let pid = std::fs::read_to_string(dir.join(LOCK))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// Serves `bridge`'s names until the network has been empty for a few seconds or is
/// removed; `ready` is called once the socket listens. Returns at once if another server
/// holds the network's lock.
pub(crate) fn serve(bridge: &Bridge, ready: impl FnOnce()) -> Result<(), Error> {
    let io = |context: String| move |source| Error::Io { context, source };
    let dir = bridge.lease_dir();
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let mut lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))
        .map_err(io(format!("opening {}", dir.join(LOCK).display())))?;
    // [`running`] takes the lock for an instant to look: a moment's retry tells that from
    // another server holding it.
    let deadline = Instant::now() + Duration::from_millis(300);
    while rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        if Instant::now() > deadline {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = lock.set_len(0);
    let _ = write!(lock, "{}", std::process::id());
    let address = SocketAddr::from((bridge.gateway(), 53));
    let socket = match bind(address) {
        Ok(s) => s,
        Err(e) => {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                let _ = std::fs::write(dir.join(UNAVAILABLE), format!("{e}\n"));
            }
            return Err(io(format!("listening on {address}"))(e));
        }
    };
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(io("setting a timeout".into()))?;
    ready();
    let upstream = upstream_servers(
        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        bridge.gateway(),
    );
    let mut buf = [0u8; 4096];
    let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut last_member = Instant::now();
    let mut last_check = Instant::now();
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, client)) => {
                let query = &buf[..n];
                // The network's own containers only: the socket is on a host address, and
                // neither the names nor the relay are anyone else's.
                let member = match client {
                    SocketAddr::V4(a) if bridge.subnet().contains(*a.ip()) => Some(*a.ip()),
                    _ => None,
                };
                if let (Some(ip), Some(_)) = (member, question(query)) {
                    match answer(query, &bridge.names_seen_from(ip)) {
                        Some(reply) => {
                            let _ = socket.send_to(&reply, client);
                        }
                        None => forward(&socket, query, client, &upstream, &in_flight),
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(format!("reading from {address}"))(e)),
        }
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = Instant::now();
            if !dir.exists() {
                return Ok(());
            }
            if !bridge.members().is_empty() {
                last_member = Instant::now();
            } else if last_member.elapsed() >= IDLE {
                if bridge.leave_dns_if_empty(&lock) {
                    return Ok(());
                }
                // Someone joined meanwhile: stay.
                last_member = Instant::now();
            }
        }
    }
}

/// Binds `address`; a server of a network just removed and made again may still hold it
/// for a moment, so a busy address is tried again, briefly.
fn bind(address: SocketAddr) -> std::io::Result<UdpSocket> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match UdpSocket::bind(address) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// The host's resolvers from its `resolv.conf`, the server's own address left out.
fn upstream_servers(resolv_conf: &str, own: Ipv4Addr) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .filter(|a| *a != std::net::IpAddr::V4(own))
        .map(|a| SocketAddr::new(a, 53))
        .collect()
}

/// Passes a question the network cannot answer to the host's resolvers, on a thread (an
/// upstream that is slow must not hold the network's own names up), and relays the first
/// answer; SERVFAIL when none answers.
fn forward(
    socket: &UdpSocket,
    query: &[u8],
    client: SocketAddr,
    upstream: &[SocketAddr],
    in_flight: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_FORWARDS {
        in_flight.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let Ok(reply_socket) = socket.try_clone() else {
        in_flight.fetch_sub(1, Ordering::SeqCst);
        return;
    };
    let (query, upstream, counter) = (query.to_vec(), upstream.to_vec(), in_flight.clone());
    let spawned = std::thread::Builder::new().spawn(move || {
        relay(&reply_socket, &query, client, &upstream);
        counter.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Asks each upstream server in turn and sends the client the first answer, whole (up to
/// UDP's limit: the client's EDNS size is the upstream's to honour).
fn relay(reply_socket: &UdpSocket, query: &[u8], client: SocketAddr, upstream: &[SocketAddr]) {
    let mut buf = vec![0u8; 65535];
    for server in upstream {
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(out) = UdpSocket::bind(bind) else {
            continue;
        };
        let _ = out.set_read_timeout(Some(UPSTREAM_WAIT));
        if out.connect(server).and_then(|()| out.send(query)).is_err() {
            continue;
        }
        if let Ok(n) = out.recv(&mut buf) {
            let _ = reply_socket.send_to(&buf[..n], client);
            return;
        }
    }
    if let Some(reply) = failure(query) {
        let _ = reply_socket.send_to(&reply, client);
    }
}

/// One question of a query: the name (lower case, no final dot), its type and class, and
/// where the question ends.
struct Question {
    name: String,
    qtype: u16,
    qclass: u16,
    end: usize,
}

const TYPE_A: u16 = 1;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
const NXDOMAIN: u16 = 3;
const SERVFAIL: u16 = 2;

fn question(query: &[u8]) -> Option<Question> {
    if query.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([query[2], query[3]]);
    let questions = u16::from_be_bytes([query[4], query[5]]);
    // A standard query (QR 0, opcode 0) with one question.
    if flags & 0xf800 != 0 || questions != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers and extended labels have no place in a question.
        if len > 63 {
            return None;
        }
        let label = query.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let fixed = query.get(at..at + 4)?;
    Some(Question {
        name: labels.join("."),
        qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
        end: at + 4,
    })
}

/// The answer to `query` when it asks for a name on the network (`names`: each member's
/// address and names) or a single label that is none of them; `None` when it is for the
/// host's resolvers.
fn answer(query: &[u8], names: &[(Ipv4Addr, Vec<String>)]) -> Option<Vec<u8>> {
    let q = question(query)?;
    if q.qclass != CLASS_IN || q.name.is_empty() {
        return None;
    }
    let found: Vec<Ipv4Addr> = names
        .iter()
        .filter(|(_, n)| n.iter().any(|n| n.eq_ignore_ascii_case(&q.name)))
        .map(|(ip, _)| *ip)
        .collect();
    if found.is_empty() {
        // A single label that is no member's is no one's: public DNS has no such names, so
        // it is not asked (the resolver goes on to its search domains).
        if !q.name.contains('.') {
            let mut reply = header(query, NXDOMAIN, 0, true);
            reply.extend_from_slice(&query[12..q.end]);
            return Some(reply);
        }
        return None;
    }
    // A name of the network that has no record of the type asked (AAAA): no data, and no
    // question to anyone else, as Docker's DNS does for IPv4-only networks.
    let ips: &[Ipv4Addr] = if matches!(q.qtype, TYPE_A | TYPE_ANY) {
        &found
    } else {
        &[]
    };
    let mut reply = header(query, 0, ips.len() as u16, true);
    reply.extend_from_slice(&query[12..q.end]);
    for ip in ips {
        // The name by a pointer to the question's (offset 12).
        reply.extend_from_slice(&[0xc0, 12]);
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&CLASS_IN.to_be_bytes());
        reply.extend_from_slice(&TTL.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&ip.octets());
    }
    Some(reply)
}

/// SERVFAIL for `query`, echoing its question.
fn failure(query: &[u8]) -> Option<Vec<u8>> {
    let q = question(query)?;
    let mut reply = header(query, SERVFAIL, 0, false);
    reply.extend_from_slice(&query[12..q.end]);
    Some(reply)
}

/// A response header to `query`: its ID, recursion desired as asked, recursion available,
/// `rcode`, one question and `answers` answers.
fn header(query: &[u8], rcode: u16, answers: u16, authoritative: bool) -> Vec<u8> {
    let asked = u16::from_be_bytes([query[2], query[3]]);
    let flags = 0x8000 | (asked & 0x0100) | 0x0080 | if authoritative { 0x0400 } else { 0 } | rcode;
    let mut h = Vec::with_capacity(512);
    h.extend_from_slice(&query[..2]);
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&1u16.to_be_bytes());
    h.extend_from_slice(&answers.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// The server's side of readiness: one byte on `to`, then let it go.
pub(crate) fn tell_ready(mut to: File) {
    let _ = to.write_all(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query as `nslookup` sends it: ID, RD set, one question.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    fn members() -> Vec<(Ipv4Addr, Vec<String>)> {
        vec![
            (
                Ipv4Addr::new(10, 90, 1, 2),
                vec!["web".into(), "www".into()],
            ),
            (Ipv4Addr::new(10, 90, 1, 3), vec!["db".into()]),
        ]
    }

    #[test]
    fn members_names_get_a_records() {
        let q = query("WWW", TYPE_A);
        let r = answer(&q, &members()).unwrap();
        // ID, flags (response, authoritative, RD and RA), counts.
        assert_eq!(&r[..12], &[0x12, 0x34, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
        assert_eq!(&r[12..q.len()], &q[12..]);
        assert_eq!(
            &r[q.len()..],
            &[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x02, 0x58, 0, 4, 10, 90, 1, 2]
        );
    }

    #[test]
    fn other_types_of_a_member_have_no_data_and_other_names_go_upstream() {
        let r = answer(&query("db", 28), &members()).unwrap();
        assert_eq!(&r[6..8], &[0, 0]);
        assert_eq!(r[3] & 0x0f, 0);
        assert!(answer(&query("example.org", TYPE_A), &members()).is_none());
        let nx = answer(&query("nosuch", TYPE_A), &members()).unwrap();
        assert_eq!((nx[3] & 0x0f, &nx[6..8]), (3, &[0u8, 0][..]));
        // Not a standard one-question query: passed on as it is.
        let mut response = query("web", TYPE_A);
        response[2] |= 0x80;
        assert!(answer(&response, &members()).is_none());
        assert!(answer(&[1, 2, 3], &members()).is_none());
        let mut truncated = query("web", TYPE_A);
        truncated.truncate(16);
        assert!(answer(&truncated, &members()).is_none());
        let fail = failure(&query("example.org", TYPE_A)).unwrap();
        assert_eq!(fail[3] & 0x0f, 2);
    }

    #[test]
    fn upstream_is_the_hosts_resolvers_but_not_the_server() {
        let conf = "# x\nnameserver 127.0.0.53\nnameserver 10.90.1.1\nsearch lan\nnameserver ::1\n";
        assert_eq!(
            upstream_servers(conf, Ipv4Addr::new(10, 90, 1, 1)),
            vec![
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
