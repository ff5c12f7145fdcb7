//! The body of `POST /containers/create` (Docker's `Config` with `HostConfig` and
//! `NetworkingConfig` inside) turned into the engine's [`RunOptions`], checked with the same
//! parsers as the CLI's flags so both refuse the same values in the same words.

use std::collections::BTreeMap;

use berth_engine::options::{self as opts, MountKind, MountSpec, Resources, Ulimit};
use berth_engine::RunOptions;
use serde_json::Value;

use crate::error::ApiError;

/// A string list as Docker's `StrSlice` accepts it: an array, a single string, or null.
fn str_slice(v: &Value, field: &str) -> Result<Option<Vec<String>>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(vec![s.clone()])),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| ApiError::bad(format!("{field}: expected strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(ApiError::bad(format!(
            "{field}: expected a list of strings"
        ))),
    }
}

fn string(v: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::bad(format!("{field}: expected a string"))),
    }
}

fn boolean(v: &Value) -> bool {
    v.as_bool().unwrap_or(false)
}

fn int(v: &Value, field: &str) -> Result<Option<i64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::bad(format!("{field}: expected an integer"))),
        _ => Err(ApiError::bad(format!("{field}: expected an integer"))),
    }
}

/// The engine's options for a create request named `name`.
pub fn run_options(body: &Value, name: Option<&str>) -> Result<RunOptions, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad(
            "config cannot be empty in order to create a container",
        ));
    }
    let host = &body["HostConfig"];
    let image = string(&body["Image"], "Image")?
        .ok_or_else(|| ApiError::bad("no image specified: Image is required"))?;
    let mut cmd = str_slice(&body["Cmd"], "Cmd")?.unwrap_or_default();
    // The engine takes one entrypoint word (as `--entrypoint`); the rest of a longer one goes
    // before the command, which gives the same process. An empty one clears the image's.
    let entrypoint = match str_slice(&body["Entrypoint"], "Entrypoint")? {
        None => None,
        Some(e) if e.is_empty() || (e.len() == 1 && e[0].is_empty()) => Some(String::new()),
        Some(e) => {
            let mut rest = e[1..].to_vec();
            rest.append(&mut cmd);
            cmd = rest;
            Some(e[0].clone())
        }
    };
    let env = str_slice(&body["Env"], "Env")?
        .unwrap_or_default()
        .into_iter()
        // `KEY` without a value unsets it in Docker; the engine has nothing to unset.
        .filter(|e| e.contains('='))
        .collect();
    let labels: BTreeMap<String, String> = match &body["Labels"] {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let name = name
        .filter(|n| !n.is_empty())
        .map(|n| n.trim_start_matches('/').to_string());
    if let Some(n) = &name {
        if !opts::valid_name(n) {
            return Err(ApiError::bad(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
    }

    let (network, network_aliases) = network(body, host)?;
    let mut publish = Vec::new();
    if let Value::Object(bindings) = &host["PortBindings"] {
        for (port, binds) in bindings {
            let binds = binds.as_array().cloned().unwrap_or_default();
            let binds = if binds.is_empty() {
                vec![Value::Null]
            } else {
                binds
            };
            for b in binds {
                let ip = string(&b["HostIp"], "HostIp")?;
                let host_port = string(&b["HostPort"], "HostPort")?.unwrap_or_default();
                let spec = match &ip {
                    Some(ip) => format!("{ip}:{host_port}:{port}"),
                    None if host_port.is_empty() => port.clone(),
                    None => format!("{host_port}:{port}"),
                };
                let mapped = berth_network::parse_publish(&spec)
                    .map_err(|e| ApiError::bad(format!("invalid port binding {port}: {e}")))?;
                publish.extend(mapped);
            }
        }
    }
    let publish_all = boolean(&host["PublishAllPorts"]);
    if (!publish.is_empty() || publish_all)
        && matches!(network.as_deref(), Some("none") | Some("host"))
    {
        return Err(ApiError::bad(format!(
            "published ports are discarded when using --network {}",
            network.as_deref().unwrap_or_default()
        )));
    }

    let mut mounts: Vec<MountSpec> = str_slice(&host["Binds"], "Binds")?
        .unwrap_or_default()
        .iter()
        .map(|b| opts::parse_volume(b))
        .collect::<Result<_, _>>()?;
    let mut tmpfs = Vec::new();
    if let Value::Array(ms) = &host["Mounts"] {
        for m in ms {
            let kind = m["Type"].as_str().unwrap_or("volume");
            let target = string(&m["Target"], "Mounts.Target")?
                .ok_or_else(|| ApiError::bad("Mounts: a Target is required"))?;
            let source = string(&m["Source"], "Mounts.Source")?.unwrap_or_default();
            let read_only = boolean(&m["ReadOnly"]);
            match kind {
                "bind" => mounts.push(MountSpec {
                    kind: MountKind::Bind,
                    source,
                    target,
                    read_only,
                }),
                "volume" => mounts.push(MountSpec {
                    kind: MountKind::Volume,
                    source,
                    target,
                    read_only,
                }),
                "tmpfs" => {
                    let size = int(&m["TmpfsOptions"]["SizeBytes"], "SizeBytes")?;
                    tmpfs.push(match size {
                        Some(s) => format!("{target}:size={s}"),
                        None => target,
                    });
                }
                other => {
                    return Err(ApiError::bad(format!(
                        "mount type {other:?} is not supported (bind, volume, tmpfs)"
                    )))
                }
            }
        }
    }
    if let Value::Object(vols) = &body["Volumes"] {
        for target in vols.keys() {
            if !mounts.iter().any(|m| &m.target == target) {
                mounts.push(MountSpec {
                    kind: MountKind::Volume,
                    source: String::new(),
                    target: target.clone(),
                    read_only: false,
                });
            }
        }
    }
    if let Value::Object(t) = &host["Tmpfs"] {
        for (path, options) in t {
            let options = options.as_str().unwrap_or_default();
            tmpfs.push(if options.is_empty() {
                path.clone()
            } else {
                format!("{path}:{options}")
            });
        }
    }
    for t in &tmpfs {
        opts::parse_tmpfs(t)?;
    }
    let caps = |field: &str| -> Result<Vec<String>, ApiError> {
        Ok(str_slice(&host[field], field)?
            .unwrap_or_default()
            .iter()
            .map(|c| opts::parse_capability(c, field))
            .collect::<Result<_, _>>()?)
    };
    let mut no_new_privileges = false;
    for s in str_slice(&host["SecurityOpt"], "SecurityOpt")?.unwrap_or_default() {
        match s.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                no_new_privileges = true
            }
            "no-new-privileges:false" | "no-new-privileges=false" => no_new_privileges = false,
            // Docker's own defaults, spelled out by some clients.
            "seccomp=unconfined" | "apparmor=unconfined" | "label=disable" => {}
            _ => {
                return Err(ApiError::bad(format!(
                    "invalid --security-opt: {s:?} (berth supports no-new-privileges)"
                )))
            }
        }
    }
    let stop_signal = string(&body["StopSignal"], "StopSignal")?;
    if let Some(s) = &stop_signal {
        opts::parse_signal(s)?;
    }
    let mut ulimits = Vec::new();
    if let Value::Array(us) = &host["Ulimits"] {
        for u in us {
            let name = string(&u["Name"], "Ulimits.Name")?
                .ok_or_else(|| ApiError::bad("Ulimits: a Name is required"))?;
            let soft = int(&u["Soft"], "Ulimits.Soft")?.unwrap_or(0);
            let hard = int(&u["Hard"], "Ulimits.Hard")?.unwrap_or(soft);
            // The same checks as `--ulimit NAME=SOFT:HARD`.
            let Ulimit { name, soft, hard } = opts::parse_ulimit(&format!("{name}={soft}:{hard}"))?;
            ulimits.push(Ulimit { name, soft, hard });
        }
    }
    let positive = |v: Option<i64>| v.filter(|n| *n != 0);
    let resources = Resources {
        memory: positive(int(&host["Memory"], "Memory")?),
        memory_swap: positive(int(&host["MemorySwap"], "MemorySwap")?),
        nano_cpus: positive(int(&host["NanoCpus"], "NanoCpus")?),
        cpu_shares: positive(int(&host["CpuShares"], "CpuShares")?).map(|n| n.max(0) as u64),
        pids_limit: positive(int(&host["PidsLimit"], "PidsLimit")?),
    };
    let restart = match &host["RestartPolicy"]["Name"] {
        Value::String(n) if !n.is_empty() && n != "no" => {
            let count = int(
                &host["RestartPolicy"]["MaximumRetryCount"],
                "MaximumRetryCount",
            )?
            .unwrap_or(0);
            let spec = if n == "on-failure" && count > 0 {
                format!("{n}:{count}")
            } else {
                n.clone()
            };
            opts::parse_restart(&spec)?
        }
        _ => Default::default(),
    };
    let add_hosts = str_slice(&host["ExtraHosts"], "ExtraHosts")?.unwrap_or_default();
    for h in &add_hosts {
        opts::parse_add_host(h)?;
    }
    Ok(RunOptions {
        image,
        cmd,
        entrypoint,
        env,
        workdir: string(&body["WorkingDir"], "WorkingDir")?,
        user: string(&body["User"], "User")?,
        name,
        hostname: string(&body["Hostname"], "Hostname")?,
        rm: boolean(&host["AutoRemove"]),
        network,
        network_aliases,
        publish,
        publish_all,
        labels,
        add_hosts,
        mounts,
        tmpfs,
        read_only: boolean(&host["ReadonlyRootfs"]),
        cap_add: caps("CapAdd")?,
        cap_drop: caps("CapDrop")?,
        privileged: boolean(&host["Privileged"]),
        no_new_privileges,
        stop_signal,
        stop_timeout: int(&body["StopTimeout"], "StopTimeout")?,
        ulimits,
        resources,
        restart,
        init: boolean(&host["Init"]),
        interactive: boolean(&body["OpenStdin"]),
        tty: boolean(&body["Tty"]),
        attach: berth_engine::options::AttachStreams {
            stdin: boolean(&body["AttachStdin"]),
            stdout: boolean(&body["AttachStdout"]),
            stderr: boolean(&body["AttachStderr"]),
        },
        transient: false,
    })
}

/// The network (`HostConfig.NetworkMode`, or the one network of `NetworkingConfig` as
/// compose sends it) and the container's aliases on it.
fn network(body: &Value, host: &Value) -> Result<(Option<String>, Vec<String>), ApiError> {
    let mode = string(&host["NetworkMode"], "NetworkMode")?;
    let endpoints = match &body["NetworkingConfig"]["EndpointsConfig"] {
        Value::Object(m) => m.clone(),
        _ => Default::default(),
    };
    let mode = match mode.as_deref() {
        None | Some("default") => endpoints.keys().next().cloned(),
        Some(m) if m.starts_with("container:") => {
            return Err(ApiError::bad(
                "--network container:<name> is not supported by berth yet",
            ))
        }
        Some(m) => Some(m.to_string()),
    };
    let aliases = mode
        .as_ref()
        .and_then(|m| endpoints.get(m))
        .map(|e| str_slice(&e["Aliases"], "Aliases"))
        .transpose()?
        .flatten()
        .unwrap_or_default()
        .into_iter()
        // compose lists the short ID too; it is a name of the container already.
        .filter(|a| !a.is_empty())
        .collect();
    let mode = match mode.as_deref() {
        Some("bridge") | Some("default") | None => None,
        Some(m) => Some(m.to_string()),
    };
    Ok((mode, aliases))
}

#[cfg(test)]
mod tests {
    use super::run_options;
    use serde_json::json;

    #[test]
    fn a_docker_run_body_becomes_run_options() {
        let body = json!({
            "Image": "busybox",
            "Cmd": ["sleep", "5"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Env": ["A=1", "UNSET"],
            "Tty": true,
            "OpenStdin": true,
            "Labels": {"com.docker.compose.project": "p"},
            "HostConfig": {
                "PortBindings": {"5000/tcp": [{"HostIp": "", "HostPort": "5001"}], "53/udp": []},
                "AutoRemove": true,
                "Binds": ["/tmp:/host:ro"],
                "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
                "Memory": 0,
                "NetworkMode": "default"
            },
            "NetworkingConfig": {"EndpointsConfig": {"p_default": {"Aliases": ["web"]}}}
        });
        let o = run_options(&body, Some("/web1")).unwrap();
        assert_eq!(o.entrypoint.as_deref(), Some("/bin/sh"));
        assert_eq!(o.cmd, ["-c", "sleep", "5"]);
        assert_eq!(o.env, ["A=1"]);
        assert!(o.tty && o.interactive && o.rm);
        assert_eq!(o.name.as_deref(), Some("web1"));
        assert_eq!(o.publish.len(), 2);
        assert_eq!(o.publish[0].host_port, 5001);
        assert_eq!(o.mounts[0].target, "/host");
        assert!(o.mounts[0].read_only);
        assert_eq!(o.network.as_deref(), Some("p_default"));
        assert_eq!(o.network_aliases, ["web"]);
        assert_eq!(o.resources.memory, None);
    }

    #[test]
    fn bad_bodies_are_400s() {
        for body in [
            json!([]),
            json!({}),
            json!({"Image": 5}),
            json!({"Image": "busybox", "Cmd": {"a": 1}}),
            json!({"Image": "busybox", "HostConfig": {"PortBindings": {"x/tcp": []}}}),
            json!({"Image": "busybox", "HostConfig": {"NetworkMode": "container:x"}}),
            json!({"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}),
        ] {
            let e = run_options(&body, None).unwrap_err();
            assert_eq!(
                e.status,
                hyper::StatusCode::BAD_REQUEST,
                "{body}: {}",
                e.message
            );
        }
    }
}
