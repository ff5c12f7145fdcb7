//! `-p/--publish` values: `[ip:][hostport:]containerport[/tcp|udp]`, with ranges.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to answer on (all when `None`).
    pub host_ip: Option<String>,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

fn port_range(s: &str, what: &str, spec: &str) -> Result<(u16, u16), Error> {
    let bad = || Error::InvalidPort(format!("invalid {what} port {s:?} in {spec:?}"));
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parses one `-p` value into mappings (several for a range). A missing host port is 0:
/// the bridge picks a free one when the container starts, as Docker does.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, Error> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, Protocol::Tcp),
        Some((r, "udp")) => (r, Protocol::Udp),
        Some((_, p)) => {
            return Err(Error::InvalidPort(format!(
                "invalid proto {p:?} in {spec:?}: use tcp or udp"
            )))
        }
        None => (spec, Protocol::Tcp),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [ip, h, c] => (Some(*ip), Some(*h).filter(|h| !h.is_empty()), *c),
        _ => {
            return Err(Error::InvalidPort(format!(
                "invalid port specification: {spec:?}"
            )))
        }
    };
    if let Some(ip) = ip {
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(Error::InvalidPort(format!(
                "invalid IP address {ip:?} in {spec:?}"
            )));
        }
    }
    let (c0, c1) = port_range(container, "container", spec)?;
    let (h0, h1) = match host {
        Some(h) => port_range(h, "host", spec)?,
        None => (0, 0),
    };
    if (h0, h1) != (0, 0) && h1 - h0 != c1 - c0 {
        return Err(Error::InvalidPort(format!(
            "invalid ranges in {spec:?}: host and container ranges must have the same length"
        )));
    }
    Ok((0..=(c1 - c0))
        .map(|i| PortMapping {
            host_ip: ip.map(str::to_string).filter(|i| i != "0.0.0.0"),
            host_port: if h0 == 0 { 0 } else { h0 + i },
            container_port: c0 + i,
            protocol,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expected: &str) {
        let got = match parse_publish(spec) {
            Ok(v) => v
                .iter()
                .map(|m| {
                    format!(
                        "{}:{}->{}/{}",
                        m.host_ip.as_deref().unwrap_or("*"),
                        m.host_port,
                        m.container_port,
                        m.protocol.as_str()
                    )
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{spec}");
    }

    #[test]
    fn publish_specs() {
        check("5000:5000", "*:5000->5000/tcp");
        check("127.0.0.1:8080:80/udp", "127.0.0.1:8080->80/udp");
        check("0.0.0.0:8080:80", "*:8080->80/tcp");
        check("7000-7001:8000-8001", "*:7000->8000/tcp *:7001->8001/tcp");
        check("80", "*:0->80/tcp");
        check("127.0.0.1::80", "127.0.0.1:0->80/tcp");
        check("x:80", "error: invalid host port \"x\" in \"x:80\"");
        check(
            "80:80/sctp",
            "error: invalid proto \"sctp\" in \"80:80/sctp\": use tcp or udp",
        );
        check("1-3:1-2", "error: invalid ranges in \"1-3:1-2\": host and container ranges must have the same length");
        check(
            "300.1.1.1:80:80",
            "error: invalid IP address \"300.1.1.1\" in \"300.1.1.1:80:80\"",
        );
        check(
            "70000:80",
            "error: invalid host port \"70000\" in \"70000:80\"",
        );
    }
}
