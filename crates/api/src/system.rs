//! `/version`, `/info`, `/events`, `/system/df`: what clients ask to learn about the server.

use serde_json::json;

use crate::http::{blocking, ok, Reply};
use crate::router::Ctx;
use crate::server::{API_VERSION, MIN_API_VERSION};

/// berth's version, reported where Docker reports the engine's.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /version` (docker-py reads `ApiVersion` here to negotiate).
pub fn version() -> Reply {
    let build_time = chrono::Utc::now().to_rfc3339();
    ok(json!({
        "Platform": { "Name": "berth" },
        "Components": [{
            "Name": "Engine",
            "Version": ENGINE_VERSION,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": arch(),
                "KernelVersion": kernel(),
            }
        }],
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": kernel(),
        "BuildTime": build_time,
    }))
}

/// `GET /info`.
pub async fn info(ctx: Ctx) -> Reply {
    let engine = ctx.engine();
    let (containers, images) = blocking(move || {
        let containers = engine.list()?;
        let images = engine.images.list()?.len();
        Ok((containers, images))
    })
    .await?;
    let running = containers
        .iter()
        .filter(|c| c.status() == "running")
        .count();
    let paused = containers.iter().filter(|c| c.status() == "paused").count();
    let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    ok(json!({
        "ID": "berth",
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": containers.len() - running - paused,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": { "Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["json-file"] },
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "KernelVersion": kernel(),
        "OperatingSystem": "berth",
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": { "IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": [] },
        "DockerRootDir": ctx.engine().root(),
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": { "runc": { "path": "berth" } },
        "DefaultRuntime": "runc",
        "Swarm": { "LocalNodeState": "inactive", "ControlAvailable": false, "NodeID": "", "NodeAddr": "" },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "docker-init",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    }))
}

/// `GET /system/df`.
pub async fn df(ctx: Ctx) -> Reply {
    let engine = ctx.engine();
    let (images, containers) = blocking(move || {
        let images: Vec<_> = engine
            .images
            .list()?
            .into_iter()
            .map(|i| json!({ "Id": i.id, "RepoTags": i.tags, "Size": i.size, "SharedSize": -1, "Containers": -1 }))
            .collect();
        let containers: Vec<_> = engine
            .list()?
            .into_iter()
            .map(|c| json!({ "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.options.image, "State": c.status(), "SizeRw": 0 }))
            .collect();
        Ok((images, containers))
    })
    .await?;
    let layers_size: i64 = images.iter().filter_map(|i| i["Size"].as_i64()).sum();
    ok(json!({
        "LayersSize": layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": [],
        "BuildCache": [],
    }))
}
