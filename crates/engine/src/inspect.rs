//! A container as Docker's `inspect` shows it (`GET /containers/{id}/json`): the one JSON
//! shape both `berth inspect` and the Engine API print, so the two cannot drift apart.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::options::MountKind;
use crate::{ContainerRecord, Engine, State};

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `HostConfig.PortBindings` / `NetworkSettings.Ports` keys: `80/tcp`.
fn port_key(m: &berth_network::PortMapping) -> String {
    format!("{}/{}", m.container_port, m.protocol.as_str())
}

/// `NetworkSettings.Ports`: every exposed or published port, with its host bindings while
/// the container runs.
pub fn ports(record: &ContainerRecord, exposed: &[String]) -> Value {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for e in exposed {
        out.insert(e.clone(), Value::Null);
    }
    for m in &record.options.publish {
        out.entry(port_key(m)).or_insert(Value::Null);
    }
    if record.is_running() {
        for m in &record.ports {
            let binding = json!({
                "HostIp": m.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                "HostPort": m.host_port.to_string(),
            });
            match out.entry(port_key(m)).or_insert(Value::Null) {
                Value::Array(a) => a.push(binding),
                slot => *slot = json!([binding]),
            }
        }
    }
    json!(out)
}

impl Engine {
    /// Docker's inspect JSON of one container.
    pub fn inspect(&self, r: &ContainerRecord) -> Value {
        let o = &r.options;
        let image = self
            .images
            .info(&r.image_id)
            .ok()
            .and_then(|i| i.config.config().clone())
            .unwrap_or_default();
        let exposed: Vec<String> = image.exposed_ports().clone().unwrap_or_default();
        let mut labels: BTreeMap<String, String> = image
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        labels.extend(o.labels.clone());
        let status = r.status();
        let running = matches!(status, "running" | "paused");
        let dir = self.dir(&r.id);
        let volumes = self.volumes();
        let mounts: Vec<Value> = o
            .mounts
            .iter()
            .map(|m| match m.kind {
                MountKind::Bind => json!({
                    "Type": "bind", "Source": m.source, "Destination": m.target,
                    "Mode": if m.read_only { "ro" } else { "" }, "RW": !m.read_only,
                    "Propagation": "rprivate",
                }),
                MountKind::Volume => json!({
                    "Type": "volume", "Name": m.source,
                    "Source": volumes.data(&m.source), "Destination": m.target,
                    "Driver": "local", "Mode": if m.read_only { "ro" } else { "z" },
                    "RW": !m.read_only, "Propagation": "",
                }),
            })
            .collect();
        let binds: Vec<String> = o
            .mounts
            .iter()
            .filter(|m| {
                m.kind == MountKind::Bind || !volumes.get(&m.source).is_ok_and(|v| v.anonymous)
            })
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.source,
                    m.target,
                    if m.read_only { ":ro" } else { "" }
                )
            })
            .collect();
        let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for m in &o.publish {
            bindings.entry(port_key(m)).or_default().push(json!({
                "HostIp": m.host_ip.clone().unwrap_or_default(),
                "HostPort": if m.host_port == 0 { String::new() } else { m.host_port.to_string() },
            }));
        }
        let tmpfs: BTreeMap<String, String> = o
            .tmpfs
            .iter()
            .map(|t| {
                let (p, opts) = t.split_once(':').unwrap_or((t, ""));
                (p.to_string(), opts.to_string())
            })
            .collect();
        let network_mode = o.network.clone().unwrap_or_else(|| "bridge".into());
        let ip = r.ip.clone().filter(|_| running).unwrap_or_default();
        let hostname = o.hostname.clone().unwrap_or_else(|| r.id[..12].to_string());
        let env = crate::spec::environment_for_inspect(&image, o);
        let (path, args) = r
            .args
            .split_first()
            .map_or((String::new(), Vec::new()), |(p, a)| {
                (p.clone(), a.to_vec())
            });
        let ulimits: Vec<Value> = o
            .ulimits
            .iter()
            .map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard}))
            .collect();
        let mut networks = serde_json::Map::new();
        for e in r.endpoints() {
            let def = self.network(&e.network).ok();
            let ip = e.ip.clone().filter(|_| running).unwrap_or_default();
            let (gateway, prefix) = match def.as_ref().map(|d| self.network_bridge(d)) {
                Some(Ok(b)) if !ip.is_empty() => (b.gateway().to_string(), b.subnet().prefix),
                _ => (String::new(), 0),
            };
            networks.insert(
                e.network.clone(),
                json!({
                    "IPAddress": ip, "Gateway": gateway, "IPPrefixLen": prefix,
                    "MacAddress": "", "NetworkID": def.map(|d| d.id).unwrap_or_default(),
                    "EndpointID": "",
                    "Aliases": if e.aliases.is_empty() { Value::Null } else { json!(e.aliases) },
                    "DNSNames": if e.network == "bridge" { Value::Null } else {
                        json!(crate::networks::endpoint_names(r, &e))
                    },
                    "Links": null,
                }),
            );
        }
        if network_mode == "host" || network_mode == "none" {
            networks.insert(
                network_mode.clone(),
                json!({"IPAddress": "", "Gateway": ""}),
            );
        }
        let primary = networks
            .values()
            .next()
            .cloned()
            .unwrap_or_else(|| json!({}));
        let gateway = primary["Gateway"].as_str().unwrap_or_default().to_string();
        json!({
            "Id": r.id,
            "Created": r.created,
            "Path": path,
            "Args": args,
            "State": {
                "Status": status,
                "Running": running || status == "restarting",
                "Paused": status == "paused",
                "Restarting": status == "restarting",
                "OOMKilled": r.oom_killed,
                "Dead": false,
                "Pid": if running { r.pid.unwrap_or(0) } else { 0 },
                "ExitCode": if r.state == State::Created || running { 0 } else { r.exit_code.unwrap_or(0) },
                "Error": r.error.clone().unwrap_or_default(),
                "StartedAt": r.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
                "FinishedAt": r.finished_at.clone().filter(|_| !running).unwrap_or_else(|| ZERO_TIME.into()),
            },
            "Image": format!("sha256:{}", r.image_id.trim_start_matches("sha256:")),
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": self.log_path(&r.id),
            "Name": format!("/{}", r.name),
            "RestartCount": r.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "HostConfig": {
                "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
                "NetworkMode": network_mode,
                "PortBindings": bindings,
                "RestartPolicy": {"Name": o.restart.display_name(), "MaximumRetryCount": o.restart.max_retries},
                "AutoRemove": o.rm,
                "CapAdd": if o.cap_add.is_empty() { Value::Null } else { json!(o.cap_add) },
                "CapDrop": if o.cap_drop.is_empty() { Value::Null } else { json!(o.cap_drop) },
                "ExtraHosts": if o.add_hosts.is_empty() { Value::Null } else { json!(o.add_hosts) },
                "Privileged": o.privileged,
                "PublishAllPorts": o.publish_all,
                "ReadonlyRootfs": o.read_only,
                "SecurityOpt": if o.no_new_privileges { json!(["no-new-privileges"]) } else { Value::Null },
                "Tmpfs": if tmpfs.is_empty() { Value::Null } else { json!(tmpfs) },
                "Memory": o.resources.memory.unwrap_or(0),
                "MemorySwap": o.resources.memory_swap.unwrap_or(0),
                "NanoCpus": o.resources.nano_cpus.unwrap_or(0),
                "CpuShares": o.resources.cpu_shares.unwrap_or(0),
                "PidsLimit": o.resources.pids_limit,
                "Ulimits": ulimits,
                "Init": o.init,
                "LogConfig": {"Type": "json-file", "Config": {}},
                "ShmSize": 67108864,
            },
            "Mounts": mounts,
            "Config": {
                "Hostname": hostname,
                "Domainname": "",
                "User": o.user.clone().or_else(|| image.user().clone()).unwrap_or_default(),
                "AttachStdin": o.attach.stdin,
                "AttachStdout": o.attach.stdout,
                "AttachStderr": o.attach.stderr,
                "ExposedPorts": exposed.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
                "Tty": o.tty,
                "OpenStdin": o.interactive,
                "StdinOnce": false,
                "Env": env,
                "Cmd": if o.cmd.is_empty() { json!(image.cmd()) } else { json!(o.cmd) },
                "Image": o.image,
                "Volumes": null,
                "WorkingDir": o.workdir.clone().or_else(|| image.working_dir().clone()).unwrap_or_default(),
                "Entrypoint": match &o.entrypoint { Some(e) if e.is_empty() => Value::Null, Some(e) => json!([e]), None => json!(image.entrypoint()) },
                "Labels": labels,
                "StopSignal": r.stop_signal(),
                "StopTimeout": o.stop_timeout,
            },
            "NetworkSettings": {
                "Ports": ports(r, &exposed),
                "IPAddress": ip,
                "Gateway": gateway,
                "IPPrefixLen": primary["IPPrefixLen"].clone(),
                "MacAddress": "",
                "Networks": networks,
            },
        })
    }
}
