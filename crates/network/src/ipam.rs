//! Address allocation on a bridge network: `<root>/networks/<name>/ipam.json` maps addresses
//! to container IDs (with their published ports), rewritten atomically under a lock.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, PortMapping};

/// One container's place on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub container: String,
    pub ports: Vec<PortMapping>,
}

pub(crate) struct Ipam {
    pub dir: PathBuf,
    /// First three octets are fixed per /16: (a, b).
    pub prefix: (u8, u8),
}

pub(crate) type Leases = BTreeMap<Ipv4Addr, Lease>;

impl Ipam {
    fn file(&self) -> PathBuf {
        self.dir.join("ipam.json")
    }

    /// Runs `f` on the leases under the network's lock and saves the result.
    pub fn update<T>(&self, f: impl FnOnce(&mut Leases) -> Result<T, Error>) -> Result<T, Error> {
        let io = |context: &str| {
            let context = context.to_string();
            move |source| Error::Io { context, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io("creating the network directory"))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("ipam.lock"))
            .map_err(io("opening ipam.lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io("locking ipam.lock")(e.into()))?;
        let mut leases: Leases = match std::fs::read(self.file()) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => Leases::new(),
        };
        let out = f(&mut leases)?;
        let tmp = self.dir.join(format!(".ipam.json.{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp).map_err(io("writing ipam.json"))?;
        file.write_all(&serde_json::to_vec(&leases).expect("leases serialise"))
            .map_err(io("writing ipam.json"))?;
        file.sync_all().map_err(io("writing ipam.json"))?;
        std::fs::rename(&tmp, self.file()).map_err(io("writing ipam.json"))?;
        Ok(out)
    }

    /// The gateway (the bridge's own address).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.prefix.0, self.prefix.1, 0, 1)
    }

    /// The lowest free address.
    pub fn allocate(leases: &Leases, prefix: (u8, u8)) -> Result<Ipv4Addr, Error> {
        (2u32..65535)
            .map(|n| Ipv4Addr::new(prefix.0, prefix.1, (n >> 8) as u8, n as u8))
            .find(|ip| !leases.contains_key(ip) && ip.octets()[3] != 0 && ip.octets()[3] != 255)
            .ok_or_else(|| Error::Exhausted(format!("{}.{}.0.0/16", prefix.0, prefix.1)))
    }
}
