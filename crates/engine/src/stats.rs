//! Resource usage of a running container, read from its cgroup (v1 or v2) and its network
//! namespace, for `stats`.

use std::path::{Path, PathBuf};

use crate::{ContainerRecord, Engine, Error};

/// One reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used so far, nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, less the inactive page cache (as Docker counts it).
    pub memory: u64,
    /// The memory limit, or the host's memory when there is none.
    pub memory_limit: u64,
    /// Processes in the cgroup.
    pub pids: u64,
    /// Bytes received and sent on the container's interfaces.
    pub net: (u64, u64),
    /// Bytes read from and written to block devices.
    pub block: (u64, u64),
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_field(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

impl Engine {
    /// Reads the container's usage now (it must run).
    pub fn sample(&self, record: &ContainerRecord) -> Result<Sample, Error> {
        if !record.is_running() {
            return Err(Error::NotRunning(record.id.clone()));
        }
        let base = Path::new("/sys/fs/cgroup");
        let rel = PathBuf::from("berth").join(&record.id);
        let v2 = base.join(&rel);
        let mut s = Sample::default();
        if v2.join("cgroup.procs").exists() && base.join("cgroup.controllers").exists() {
            s.cpu_ns = stat_field(&v2.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000;
            let inactive = stat_field(&v2.join("memory.stat"), "inactive_file").unwrap_or(0);
            s.memory = read_u64(&v2.join("memory.current"))
                .unwrap_or(0)
                .saturating_sub(inactive);
            s.memory_limit = read_u64(&v2.join("memory.max")).unwrap_or(0);
            s.pids = read_u64(&v2.join("pids.current")).unwrap_or(0);
            if let Ok(io) = std::fs::read_to_string(v2.join("io.stat")) {
                for field in io.split_whitespace() {
                    if let Some(v) = field.strip_prefix("rbytes=") {
                        s.block.0 += v.parse().unwrap_or(0);
                    } else if let Some(v) = field.strip_prefix("wbytes=") {
                        s.block.1 += v.parse().unwrap_or(0);
                    }
                }
            }
        } else {
            s.cpu_ns =
                read_u64(&base.join("cpuacct").join(&rel).join("cpuacct.usage")).unwrap_or(0);
            let memory = base.join("memory").join(&rel);
            let inactive =
                stat_field(&memory.join("memory.stat"), "total_inactive_file").unwrap_or(0);
            s.memory = read_u64(&memory.join("memory.usage_in_bytes"))
                .unwrap_or(0)
                .saturating_sub(inactive);
            s.memory_limit = read_u64(&memory.join("memory.limit_in_bytes")).unwrap_or(0);
            s.pids = read_u64(&base.join("pids").join(&rel).join("pids.current")).unwrap_or(0);
            let blkio = base
                .join("blkio")
                .join(&rel)
                .join("blkio.throttle.io_service_bytes");
            if let Ok(text) = std::fs::read_to_string(blkio) {
                for l in text.lines() {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    match f.as_slice() {
                        [_, "Read", v] => s.block.0 += v.parse().unwrap_or(0),
                        [_, "Write", v] => s.block.1 += v.parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
        }
        let host = host_memory();
        if s.memory_limit == 0 || s.memory_limit > host {
            s.memory_limit = host;
        }
        if let Some(pid) = record.pid {
            if let Ok(dev) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) {
                for l in dev.lines().skip(2) {
                    let Some((name, rest)) = l.split_once(':') else {
                        continue;
                    };
                    if name.trim() == "lo" {
                        continue;
                    }
                    let f: Vec<u64> = rest
                        .split_whitespace()
                        .filter_map(|v| v.parse().ok())
                        .collect();
                    if f.len() >= 9 {
                        s.net.0 += f[0];
                        s.net.1 += f[8];
                    }
                }
            }
        }
        Ok(s)
    }
}
