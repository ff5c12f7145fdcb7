//! `GET /events`: container lifecycle events as Docker sends them (`create`, `start`, `die`,
//! `destroy`, plus `pause`/`unpause`), for clients that watch (`docker events`, compose).
//!
//! berth has no daemon to see things happen, so the server watches the container records
//! (every 20 ms, per client) and reports each change of state it sees, whoever caused it:
//! the API, the CLI or a monitor. Events from before the request are not kept (`since`
//! only bounds what is reported from now on).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use berth_engine::{ContainerRecord, Engine};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::{stream, Reply};
use crate::router::Ctx;

/// What the watcher remembers of a container between two looks.
#[derive(Clone, PartialEq)]
struct Seen {
    state: &'static str,
    started_at: Option<String>,
    finished_at: Option<String>,
}

fn seen(r: &ContainerRecord) -> Seen {
    Seen {
        state: r.status(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
    }
}

/// The events between two looks at one container (`None`: absent).
fn changes(
    before: Option<&Seen>,
    after: Option<&Seen>,
    exit_code: Option<i32>,
) -> Vec<(&'static str, Option<i32>)> {
    let mut out = Vec::new();
    match (before, after) {
        (None, Some(a)) => {
            out.push(("create", None));
            if a.started_at.is_some() {
                out.push(("start", None));
            }
            if a.state == "exited" && a.finished_at.is_some() {
                out.push(("die", exit_code));
            }
        }
        (Some(b), Some(a)) => {
            if a.started_at != b.started_at && a.started_at.is_some() {
                out.push(("start", None));
            }
            if b.state == "paused" && a.state == "running" {
                out.push(("unpause", None));
            }
            if a.state == "paused" && b.state != "paused" {
                out.push(("pause", None));
            }
            if a.finished_at != b.finished_at && a.finished_at.is_some() {
                out.push(("die", exit_code));
            }
        }
        (Some(b), None) => {
            // Seen only as created, gone with an exit code left behind (`--rm`): it ran
            // between two looks.
            if b.state == "created" && exit_code.is_some() {
                out.push(("start", None));
            }
            if b.state == "running"
                || b.state == "paused"
                || b.state == "created" && exit_code.is_some()
            {
                out.push(("die", exit_code));
            }
            out.push(("destroy", None));
        }
        (None, None) => {}
    }
    out
}

/// One event in Docker's JSON (both the old and the typed fields, as Docker sends them).
fn event(
    action: &str,
    id: &str,
    name: &str,
    image: &str,
    exit_code: Option<i32>,
    labels: &HashMap<String, String>,
) -> Value {
    let now = chrono::Utc::now();
    let mut attributes: serde_json::Map<String, Value> =
        labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    attributes.insert("name".into(), json!(name));
    attributes.insert("image".into(), json!(image));
    if let Some(c) = exit_code {
        attributes.insert("exitCode".into(), json!(c.to_string()));
    }
    json!({
        "status": action,
        "id": id,
        "from": image,
        "Type": "container",
        "Action": action,
        "Actor": { "ID": id, "Attributes": attributes },
        "scope": "local",
        "time": now.timestamp(),
        "timeNano": now.timestamp_nanos_opt().unwrap_or(0),
    })
}

/// Whether an event passes the client's `filters` (type, event, container, image, label).
fn wanted(filters: &HashMap<String, Vec<String>>, ev: &Value) -> bool {
    let attr = |k: &str| {
        ev["Actor"]["Attributes"][k]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    filters.iter().all(|(key, values)| {
        values.is_empty()
            || values.iter().any(|v| match key.as_str() {
                "type" => v == "container",
                "event" => ev["Action"] == v.as_str(),
                "container" => {
                    ev["id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with(v.as_str()))
                        || attr("name") == *v
                }
                "image" => attr("image") == *v,
                "label" => match v.split_once('=') {
                    Some((k, val)) => attr(k) == val,
                    None => ev["Actor"]["Attributes"].get(v.as_str()).is_some(),
                },
                _ => true,
            })
    })
}

fn snapshot(engine: &Engine) -> HashMap<String, (Seen, ContainerRecord)> {
    engine
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.id.clone(), (seen(&r), r)))
        .collect()
}

/// `GET /events?since=&until=&filters=`.
pub async fn events(ctx: Ctx) -> Reply {
    let filters = ctx.query.filters()?;
    let until = match ctx.query.get("until").filter(|u| !u.is_empty()) {
        None => None,
        Some(u) => Some(
            berth_engine::logs::parse_time(u, chrono::Utc::now())
                .map_err(|e| ApiError::bad(format!("invalid until: {e}")))?,
        ),
    };
    let (reply, tx) = stream(StatusCode::OK, "application/json");
    let engine = ctx.engine();
    std::thread::spawn(move || {
        // A removed container's record is the last one seen, for `destroy`'s name and image.
        let mut before = snapshot(&engine);
        loop {
            if tx.is_closed() || until.is_some_and(|u| chrono::Utc::now() >= u) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
            let after = snapshot(&engine);
            let ids: HashSet<&String> = before.keys().chain(after.keys()).collect();
            let mut out = Vec::new();
            for id in ids {
                let (b, a) = (before.get(id), after.get(id));
                let record = a.or(b).map(|(_, r)| r).expect("one of the two");
                // A removed container's end is what its monitor left behind (`--rm`), if any.
                let exit_code = match a {
                    Some((_, r)) => r.exit_code,
                    None if record.state == berth_engine::State::Exited => record.exit_code,
                    None => engine.last_exit_code(id),
                };
                for (action, code) in changes(b.map(|(s, _)| s), a.map(|(s, _)| s), exit_code) {
                    let labels: HashMap<String, String> =
                        record.options.labels.clone().into_iter().collect();
                    let ev = event(
                        action,
                        id,
                        &record.name,
                        &record.options.image,
                        code,
                        &labels,
                    );
                    if wanted(&filters, &ev) {
                        out.push(ev);
                    }
                }
            }
            for ev in out {
                if tx.blocking_send(Bytes::from(format!("{ev}\n"))).is_err() {
                    return;
                }
            }
            before = after;
        }
    });
    reply
}

#[cfg(test)]
mod tests {
    use super::{changes, Seen};

    fn s(state: &'static str, started: bool, finished: Option<&str>) -> Seen {
        Seen {
            state,
            started_at: started.then(|| "t1".into()),
            finished_at: finished.map(String::from),
        }
    }

    #[test]
    fn state_changes_become_docker_actions() {
        let created = s("created", false, None);
        let running = s("running", true, None);
        let exited = s("exited", true, Some("t2"));
        assert_eq!(changes(None, Some(&created), None), vec![("create", None)]);
        assert_eq!(
            changes(Some(&created), Some(&running), None),
            vec![("start", None)]
        );
        assert_eq!(
            changes(Some(&running), Some(&exited), Some(3)),
            vec![("die", Some(3))]
        );
        assert_eq!(
            changes(Some(&exited), None, Some(3)),
            vec![("destroy", None)]
        );
        assert_eq!(
            changes(Some(&created), None, Some(3)),
            vec![("start", None), ("die", Some(3)), ("destroy", None)]
        );
        assert_eq!(changes(Some(&created), None, None), vec![("destroy", None)]);
        assert_eq!(
            changes(Some(&running), None, Some(0)),
            vec![("die", Some(0)), ("destroy", None)]
        );
        assert_eq!(
            changes(Some(&running), Some(&s("paused", true, None)), None),
            vec![("pause", None)]
        );
    }
}
