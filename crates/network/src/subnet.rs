//! IPv4 subnets (`10.89.0.0/16`): parsing, the gateway, the host addresses.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// An IPv4 network: base address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub base: Ipv4Addr,
    /// Prefix length, 8 to 30.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n`, refusing host bits and prefixes outside 8..=30.
    pub fn parse(s: &str) -> Result<Subnet, Error> {
        let bad = |why: &str| Error::InvalidSubnet(format!("invalid subnet {s:?}: {why}"));
        let (addr, len) = s.split_once('/').ok_or_else(|| bad("use CIDR notation"))?;
        let base: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = len.parse().map_err(|_| bad("bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be between 8 and 30"));
        }
        let subnet = Subnet { base, prefix };
        if u32::from(base) & !subnet.mask() != 0 {
            return Err(bad("host bits are set"));
        }
        Ok(subnet)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    /// The first host address, which berth gives the bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    /// Whether `ip` lies inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.base)
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.base) || other.contains(self.base)
    }

    /// Every host address (not the network or broadcast address).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let base = u32::from(self.base);
        let size = 1u32 << (32 - self.prefix);
        (1..size - 1).map(move |i| Ipv4Addr::from(base + i))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str, expected: &str) {
        let got = match Subnet::parse(s) {
            Ok(n) => format!("{n} gw {} hosts {}", n.gateway(), n.hosts().count()),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn subnets() {
        check("10.90.3.0/24", "10.90.3.0/24 gw 10.90.3.1 hosts 254");
        check("10.89.0.0/16", "10.89.0.0/16 gw 10.89.0.1 hosts 65534");
        check(
            "10.90.3.1/24",
            "error: invalid subnet \"10.90.3.1/24\": host bits are set",
        );
        check(
            "10.90.3.0",
            "error: invalid subnet \"10.90.3.0\": use CIDR notation",
        );
        check(
            "10.0.0.0/31",
            "error: invalid subnet \"10.0.0.0/31\": the prefix length must be between 8 and 30",
        );
        let a = Subnet::parse("10.90.0.0/16").unwrap();
        assert!(a.overlaps(&Subnet::parse("10.90.7.0/24").unwrap()));
        assert!(!a.overlaps(&Subnet::parse("10.91.0.0/24").unwrap()));
    }
}
