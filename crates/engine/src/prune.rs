//! `prune`: what `container prune`, `network prune`, `volume prune` and `system prune`
//! remove, in one place so the four agree.

use crate::{ContainerRecord, Engine, Error, State};

/// Whether a record's labels match a `label=KEY[=VALUE]` filter value.
pub fn label_matches(record: &ContainerRecord, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => record.options.labels.get(k).is_some_and(|x| x == v),
        None => record.options.labels.contains_key(filter),
    }
}

impl Engine {
    /// Removes every container that does not run (created, exited, or left behind by a
    /// monitor killed with -9, which is cleaned up first) and carries all `labels`
    /// (`KEY` or `KEY=VALUE`); returns their IDs.
    pub fn prune_containers(&self, labels: &[String]) -> Result<Vec<String>, Error> {
        let mut deleted = Vec::new();
        for r in self.list()? {
            if r.monitor_alive() || !labels.iter().all(|l| label_matches(&r, l)) {
                continue;
            }
            if r.state != State::Exited && r.monitor_pid.is_some() {
                self.reap_orphan(&r)?;
            }
            self.remove(&r.id)?;
            deleted.push(r.id);
        }
        self.sweep_unreadable();
        Ok(deleted)
    }

    /// Removes container folders without a readable record that are over a minute old: a
    /// `create` killed between making the folder and writing the record, or a record (of a
    /// `--rm` container, written without a disk flush) torn by a power loss. No command can
    /// name them, so without this they would stay for good. Younger ones may be a `create`
    /// under way.
    fn sweep_unreadable(&self) {
        let Ok(rd) = std::fs::read_dir(self.containers_dir()) else {
            return;
        };
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().to_string();
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60));
            if !old || self.load(&id).is_ok() {
                continue;
            }
            let dir = e.path();
            // Its root filesystem, should it still be mounted, goes first: removing through
            // the mount would only whiteout the image's files in the upper layer.
            let _ = rustix::mount::unmount(
                dir.join("bundle/rootfs"),
                rustix::mount::UnmountFlags::DETACH,
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// Removes user networks no container names; returns their names.
    pub fn prune_networks(&self) -> Result<Vec<String>, Error> {
        let mut deleted = Vec::new();
        for n in self.networks() {
            if !n.predefined() && self.network_users(&n.name)?.is_empty() {
                self.remove_network(&n.name)?;
                deleted.push(n.name);
            }
        }
        Ok(deleted)
    }

    /// Removes volumes no container names: anonymous ones, or all with `all`; returns their
    /// names.
    pub fn prune_volumes(&self, all: bool) -> Result<Vec<String>, Error> {
        let mut deleted = Vec::new();
        for v in self.volumes().list() {
            if (all || v.anonymous) && self.volume_users(&v.name)?.is_empty() {
                self.remove_volume(&v.name, false)?;
                deleted.push(v.name);
            }
        }
        Ok(deleted)
    }
}
