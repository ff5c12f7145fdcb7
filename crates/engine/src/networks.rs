//! Networks as Docker lists them: the predefined `bridge`, `host` and `none`, and
//! user-defined bridge networks (`network create`), kept in `<root>/networks.json`
//! (rewritten atomically under `networks.lock`). The plumbing is `berth-network`'s; this
//! module owns definitions, subnets, and which containers are on which network.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use berth_network::{Bridge, Subnet};
use serde::{Deserialize, Serialize};

use crate::{ContainerRecord, Engine, Error};

/// Networks every engine has; they cannot be created or removed.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// One network's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDef {
    /// 64 hex characters.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// Its IPv4 subnet (empty for host and none).
    pub subnet: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// `--label`s.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl NetworkDef {
    /// Whether `network rm` may remove it.
    pub fn predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }
}

/// A container's place on one network, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkEndpoint {
    /// The network's name.
    pub network: String,
    /// `--network-alias` / `network connect --alias`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The interface inside (`eth0`, `eth1`…).
    pub ifname: String,
    /// Its address while running.
    #[serde(default)]
    pub ip: Option<String>,
}

fn predefined(name: &str) -> NetworkDef {
    use sha2::Digest;
    NetworkDef {
        id: hex::encode(sha2::Sha256::digest(format!("berth-network-{name}"))),
        name: name.into(),
        driver: match name {
            "bridge" => "bridge",
            "host" => "host",
            _ => "null",
        }
        .into(),
        subnet: if name == "bridge" {
            "10.89.0.0/16".into()
        } else {
            String::new()
        },
        created: "0001-01-01T00:00:00Z".into(),
        labels: BTreeMap::new(),
    }
}

impl Engine {
    fn networks_file(&self) -> PathBuf {
        self.root.join("networks.json")
    }

    fn user_networks(&self) -> BTreeMap<String, NetworkDef> {
        std::fs::read(self.networks_file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Rewrites the user networks under their lock.
    fn update_networks<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, NetworkDef>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("networks.lock"))
            .map_err(Error::io("opening networks.lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io("locking networks.lock")(e.into()))?;
        let mut all = self.user_networks();
        let out = f(&mut all)?;
        let tmp = self
            .root
            .join(format!(".networks.json.{}", std::process::id()));
        let ctx = || "writing networks.json".to_string();
        let mut file = std::fs::File::create(&tmp).map_err(Error::io(ctx()))?;
        file.write_all(&serde_json::to_vec_pretty(&all).expect("networks serialise"))
            .map_err(Error::io(ctx()))?;
        file.sync_all().map_err(Error::io(ctx()))?;
        std::fs::rename(&tmp, self.networks_file()).map_err(Error::io(ctx()))?;
        Ok(out)
    }

    /// Every network: the predefined three, then the user's by name.
    pub fn networks(&self) -> Vec<NetworkDef> {
        PREDEFINED
            .iter()
            .map(|n| predefined(n))
            .chain(self.user_networks().into_values())
            .collect()
    }

    /// A network by name, full ID or unambiguous ID prefix.
    pub fn network(&self, name_or_id: &str) -> Result<NetworkDef, Error> {
        let all = self.networks();
        if let Some(n) = all
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
        {
            return Ok(n.clone());
        }
        let matches: Vec<&NetworkDef> = all
            .iter()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(Error::NoSuchNetwork(name_or_id.into())),
        }
    }

    /// `network create`: a bridge network with `subnet`, or the first free 10.90.N.0/24.
    /// The bridge is made at once (as Docker does), so its route tells other stores on this
    /// machine that the subnet is taken.
    pub fn create_network(
        &self,
        name: &str,
        subnet: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<NetworkDef, Error> {
        let def = self.define_network(name, subnet, labels)?;
        if let Err(e) = self.network_bridge(&def).and_then(|b| Ok(b.create()?)) {
            let _ = self.remove_network(&def.name);
            return Err(e);
        }
        Ok(def)
    }

    fn define_network(
        &self,
        name: &str,
        subnet: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<NetworkDef, Error> {
        if !crate::options::valid_name(name) {
            return Err(Error::Invalid(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let subnet = subnet.map(Subnet::parse).transpose()?;
        let id = crate::container::random_id()?;
        self.update_networks(|all| {
            if PREDEFINED.contains(&name) || all.contains_key(name) {
                return Err(Error::Invalid(format!("network with name {name} already exists")));
            }
            let taken: Vec<Subnet> = self
                .networks()
                .iter()
                .filter_map(|n| Subnet::parse(&n.subnet).ok())
                .chain(all.values().filter_map(|n| Subnet::parse(&n.subnet).ok()))
                .chain(host_routes())
                .collect();
            let subnet = match subnet {
                Some(s) => {
                    if taken.iter().any(|t| t.overlaps(&s)) {
                        return Err(Error::Invalid(format!(
                            "invalid pool request: Pool overlaps with other one on this address space ({s})"
                        )));
                    }
                    s
                }
                // 10.90.0.0/24 to 10.127.255.0/24, then Docker's 172.18–31 and 192.168 pools.
                None => (0u32..38 * 256)
                    .map(|n| Subnet {
                        base: std::net::Ipv4Addr::new(10, 90 + (n / 256) as u8, (n % 256) as u8, 0),
                        prefix: 24,
                    })
                    .chain((18u8..=31).map(|b| Subnet {
                        base: std::net::Ipv4Addr::new(172, b, 0, 0),
                        prefix: 16,
                    }))
                    .chain((0u32..16).map(|n| Subnet {
                        base: std::net::Ipv4Addr::new(192, 168, (n * 16) as u8, 0),
                        prefix: 20,
                    }))
                    .find(|s| !taken.iter().any(|t| t.overlaps(s)))
                    .ok_or_else(|| {
                        Error::Invalid("no free subnet left for a new network".into())
                    })?,
            };
            let def = NetworkDef {
                id: id.clone(),
                name: name.into(),
                driver: "bridge".into(),
                subnet: subnet.to_string(),
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                labels,
            };
            all.insert(name.into(), def.clone());
            Ok(def)
        })
    }

    /// Starts the DNS server of a user network unless one runs (a container is joining
    /// it): `berth network-dns ID`, detached, waited for (2 s at most) until it listens, so
    /// the container's first question finds it. Says whether a server runs now.
    pub(crate) fn ensure_dns(&self, def: &NetworkDef, bridge: &Bridge) -> Result<bool, Error> {
        use std::os::unix::process::CommandExt;
        if !bridge.dns_wanted() {
            return Ok(false);
        }
        if bridge.dns_running() {
            return Ok(true);
        }
        let exe = std::env::current_exe().map_err(Error::io("finding the berth binary"))?;
        let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or(p.to_path_buf());
        let (ready_r, ready_w) =
            std::io::pipe().map_err(Error::io("making the DNS server's pipe"))?;
        let mut server = std::process::Command::new(exe)
            .arg("--root")
            .arg(absolute(self.root()))
            .arg("--runroot")
            .arg(absolute(&self.runroot))
            .arg("network-dns")
            .arg(&def.id)
            // It outlives the caller: it must keep no folder of the caller's busy.
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(ready_w)
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(Error::io("starting the network's DNS server"))?;
        // It forks away at once (so nothing here keeps a zombie); the server holds the pipe
        // and writes a byte once it listens, or closes it.
        let _ = server.wait();
        let mut fds = [rustix::event::PollFd::new(
            &ready_r,
            rustix::event::PollFlags::IN,
        )];
        let wait = rustix::event::Timespec {
            tv_sec: 2,
            tv_nsec: 0,
        };
        let _ = rustix::event::poll(&mut fds, Some(&wait));
        Ok(bridge.dns_running())
    }

    /// The `network-dns` command: leaves its caller (the caller reaps the parent at once,
    /// the server lives on in a session of its own) and serves the network's names until
    /// it is empty. Its stdout is the starter's pipe: one byte once it listens; stdout
    /// itself becomes /dev/null.
    pub fn serve_dns(&self, network: &str) -> Result<(), Error> {
        use std::os::fd::AsFd;
        let def = self.network(network)?;
        let bridge = self.network_bridge(&def)?;
        // Nothing the starter left open stays open for the server's life.
        // SAFETY: closes descriptors 3 and up, none of which this process uses yet (the
        // command has opened only what it closed again: records were read and dropped).
        unsafe {
            libc::close_range(3, u32::MAX, 0);
        }
        let ready = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .map_err(Error::io("taking the readiness pipe"))?;
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(Error::io("opening /dev/null"))?;
        rustix::stdio::dup2_stdout(&null).map_err(|e| Error::io("redirecting stdout")(e.into()))?;
        drop(null);
        // SAFETY: the hidden command calls this before starting any thread, so the child
        // is a full copy of a single-threaded process; the parent leaves at once through
        // _exit, running no destructor that the child's copies would also run.
        match unsafe { libc::fork() } {
            -1 => {
                return Err(Error::io("detaching the DNS server")(
                    std::io::Error::last_os_error(),
                ))
            }
            0 => {}
            // SAFETY: as above; _exit ends this process without running anything else.
            _ => unsafe { libc::_exit(0) },
        }
        let _ = rustix::process::setsid();
        bridge.serve_dns(ready)?;
        Ok(())
    }

    /// The bridge of a bridge network.
    pub fn network_bridge(&self, def: &NetworkDef) -> Result<Bridge, Error> {
        if def.name == "bridge" {
            return Ok(self.bridge());
        }
        if def.driver != "bridge" {
            return Err(Error::Invalid(format!(
                "network {} has no bridge (driver {})",
                def.name, def.driver
            )));
        }
        Ok(Bridge::user_network(
            self.runroot.clone(),
            &def.name,
            &def.id,
            Subnet::parse(&def.subnet)?,
        ))
    }

    /// Containers (any state) whose record names network `name`.
    pub fn network_users(&self, name: &str) -> Result<Vec<ContainerRecord>, Error> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|c| c.networks.iter().any(|e| e.network == name))
            .collect())
    }

    /// `network rm`: refused while a running container is attached, as in Docker.
    pub fn remove_network(&self, name_or_id: &str) -> Result<(), Error> {
        let def = self.network(name_or_id)?;
        if def.predefined() {
            return Err(Error::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                def.name
            )));
        }
        if self
            .network_users(&def.name)?
            .iter()
            .any(|c| c.monitor_alive())
        {
            return Err(Error::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                def.name, def.id
            )));
        }
        self.network_bridge(&def)?.remove()?;
        self.update_networks(|all| {
            all.remove(&def.name);
            Ok(())
        })
    }

    /// `network connect`: records the network for the container and, if it runs, attaches
    /// it now (a new interface in its namespace).
    pub fn connect(
        &self,
        network: &str,
        container: &str,
        aliases: Vec<String>,
    ) -> Result<(), Error> {
        let def = self.network(network)?;
        let record = self.find(container)?;
        if matches!(
            record.options.network.as_deref(),
            Some("host") | Some("none")
        ) {
            return Err(Error::Forbidden(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (it uses --network {})",
                record.options.network.as_deref().unwrap_or_default()
            )));
        }
        for a in &aliases {
            if !crate::options::valid_name(a) {
                return Err(Error::Invalid(format!("invalid alias {a:?}")));
            }
        }
        if def.driver != "bridge" {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        if record.networks.iter().any(|e| e.network == def.name) {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                record.name, def.name
            )));
        }
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !record.networks.iter().any(|e| &e.ifname == n))
            .expect("a free interface name");
        let mut endpoint = NetworkEndpoint {
            network: def.name.clone(),
            aliases,
            ifname,
            ip: None,
        };
        if record.is_running() {
            let bridge = self.network_bridge(&def)?;
            let attached = bridge.setup(&berth_network::Endpoint {
                id: &record.id,
                ifname: &endpoint.ifname,
                ports: &[],
                names: resolvable_names(&record, &endpoint),
                hosts_file: Some(self.dir(&record.id).join("hosts")),
                default_route: record.networks.is_empty(),
            })?;
            endpoint.ip = Some(attached.ip.to_string());
        }
        self.update(&record.id, |r| {
            r.networks = r.endpoints();
            r.networks.push(endpoint);
            r.networks_cleared = false;
        })?;
        Ok(())
    }

    /// `network disconnect`: detaches a running container and forgets the network.
    pub fn disconnect(&self, network: &str, container: &str) -> Result<(), Error> {
        let def = self.network(network)?;
        let record = self.find(container)?;
        if !record.networks.iter().any(|e| e.network == def.name) {
            return Err(Error::Forbidden(format!(
                "container {} is not connected to network {}",
                record.id, def.name
            )));
        }
        if record.is_running() {
            self.network_bridge(&def)?.teardown(&record.id)?;
        }
        self.update(&record.id, |r| {
            r.networks = r.endpoints();
            r.networks.retain(|e| e.network != def.name);
            // No network left: it has none, not the default bridge again at its next start.
            r.networks_cleared = r.networks.is_empty();
        })?;
        Ok(())
    }
}

impl Engine {
    /// Docker's `network inspect` JSON of `def` (the CLI prints it, the Engine API sends it):
    /// its IPAM, labels and the running containers on it with their addresses.
    pub fn network_json(&self, def: &NetworkDef) -> Result<serde_json::Value, Error> {
        use serde_json::json;
        let mut containers = serde_json::Map::new();
        let prefix = def.subnet.split('/').nth(1).unwrap_or("16");
        for c in self.network_users(&def.name)? {
            if !c.is_running() {
                continue;
            }
            let ip = c
                .networks
                .iter()
                .find(|e| e.network == def.name)
                .and_then(|e| e.ip.clone())
                .unwrap_or_default();
            containers.insert(
                c.id.clone(),
                json!({
                    "Name": c.name,
                    "EndpointID": "",
                    "MacAddress": "",
                    "IPv4Address": if ip.is_empty() { String::new() } else { format!("{ip}/{prefix}") },
                    "IPv6Address": "",
                }),
            );
        }
        let config = match (def.driver.as_str(), self.network_bridge(def)) {
            ("bridge", Ok(b)) => {
                json!([{"Subnet": def.subnet, "Gateway": b.gateway().to_string()}])
            }
            _ => json!([]),
        };
        Ok(json!({
            "Name": def.name,
            "Id": def.id,
            "Created": def.created,
            "Scope": "local",
            "Driver": def.driver,
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": {}, "Config": config},
            "Internal": false,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": {},
            "Labels": def.labels,
        }))
    }
}

/// The names a container answers to on a network: its name, aliases and short ID.
pub fn endpoint_names(record: &ContainerRecord, endpoint: &NetworkEndpoint) -> Vec<String> {
    let mut names = vec![record.name.clone()];
    names.extend(endpoint.aliases.iter().cloned());
    names.push(record.id[..12].to_string());
    names
}

/// The names a container is found by on a network: [`endpoint_names`], and each of them
/// followed by the network's name (`web.backend`), which Docker's embedded DNS answers too.
pub fn resolvable_names(record: &ContainerRecord, endpoint: &NetworkEndpoint) -> Vec<String> {
    let names = endpoint_names(record, endpoint);
    let qualified: Vec<String> = names
        .iter()
        .map(|n| format!("{n}.{}", endpoint.network))
        .collect();
    names.into_iter().chain(qualified).collect()
}

/// Subnets the host already routes (its own networks), which a new network must avoid.
fn host_routes() -> Vec<Subnet> {
    let mut text = String::new();
    if std::fs::File::open("/proc/net/route")
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return Vec::new();
    }
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None;
            }
            let prefix = u32::from_be(mask).leading_ones() as u8;
            Some(Subnet {
                base: std::net::Ipv4Addr::from(u32::from_be(dest)),
                prefix,
            })
        })
        .collect()
}
