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
        Ok(deleted)
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
