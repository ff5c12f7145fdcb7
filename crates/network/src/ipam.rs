//! Address allocation on a bridge network: `<runroot>/networks/<name>/ipam.json` maps
//! addresses to container IDs (with their published ports and names), rewritten atomically
//! under a lock.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, PortMapping, Subnet};

/// One container's place on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub container: String,
    pub ports: Vec<PortMapping>,
    /// Names it answers to on this network (container name, aliases, short ID).
    #[serde(default)]
    pub names: Vec<String>,
    /// Its `/etc/hosts` on the host, which lists its peers on this network.
    #[serde(default)]
    pub hosts_file: Option<PathBuf>,
    /// Its interface inside (`eth0`, `eth1`…), which names the veth.
    #[serde(default = "eth0")]
    pub ifname: String,
}

fn eth0() -> String {
    "eth0".into()
}

pub(crate) struct Ipam {
    pub dir: PathBuf,
    pub subnet: Subnet,
}

pub(crate) type Leases = BTreeMap<Ipv4Addr, Lease>;

impl Ipam {
    fn file(&self) -> PathBuf {
        self.dir.join("ipam.json")
    }

    /// The leases as they are now, without the lock (for checks across networks).
    pub fn peek(&self) -> Leases {
        std::fs::read(self.file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Runs `f` on the leases under the network's lock and saves the result, atomically
    /// (temporary file, rename) but without a disk flush: leases describe running
    /// containers, which a power loss ends along with them (a torn file reads as no leases),
    /// and a flush on every attach and detach cost a millisecond each.
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
        let mut leases = self.peek();
        let out = f(&mut leases)?;
        let tmp = self.dir.join(format!(".ipam.json.{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp).map_err(io("writing ipam.json"))?;
        file.write_all(&serde_json::to_vec(&leases).expect("leases serialise"))
            .map_err(io("writing ipam.json"))?;
        std::fs::rename(&tmp, self.file()).map_err(io("writing ipam.json"))?;
        Ok(out)
    }

    /// The lowest free address (the network, gateway and broadcast addresses excluded).
    pub fn allocate(&self, leases: &Leases) -> Result<Ipv4Addr, Error> {
        let gateway = self.subnet.gateway();
        self.subnet
            .hosts()
            .find(|ip| *ip != gateway && !leases.contains_key(ip))
            .ok_or_else(|| Error::Exhausted(self.subnet.to_string()))
    }
}
