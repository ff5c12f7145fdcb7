//! `docker image inspect`'s JSON for one image, built in one place so that `berth image
//! inspect` and the Engine API's `GET /images/{name}/json` print the same document.

use serde_json::{json, Value};

use crate::{display_ref, ImageInfo, Store};

/// Docker's container-config defaults, so `inspect` shows every field Docker shows even
/// when the image's config leaves them out.
pub fn container_config(raw: Option<&Value>) -> Value {
    let mut c = json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
        "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
        "StdinOnce": false, "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    if let Some(Value::Object(m)) = raw {
        for (k, v) in m {
            c[k] = v.clone();
        }
    }
    c
}

/// `docker image inspect` JSON for `image` (an entry of [`Store::list`] or
/// [`Store::info`]); `store` gives the overlay lower directories shown as `GraphDriver`.
pub fn image_json(store: &Store, image: &ImageInfo) -> Value {
    let raw: Value = serde_json::from_slice(&image.config_bytes).unwrap_or(Value::Null);
    let lower: Vec<String> = store
        .snapshots
        .lowerdirs(&image.top_chain_id)
        .map(|v| v.iter().map(|p| p.display().to_string()).collect())
        .unwrap_or_default();
    let mut v = json!({
        "Id": image.id,
        "RepoTags": image.tags.iter().map(|t| display_ref(t)).collect::<Vec<_>>(),
        "RepoDigests": image.record.repo_digests.iter().map(|t| display_ref(t)).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": raw.pointer("/history/0/comment").cloned().unwrap_or(json!("")),
        "Created": raw.get("created").cloned().unwrap_or(json!("")),
        "DockerVersion": raw.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": raw.get("author").cloned().unwrap_or(json!("")),
        "Config": container_config(raw.get("config")),
        "Architecture": raw.get("architecture").cloned().unwrap_or(json!("")),
        "Os": raw.get("os").cloned().unwrap_or(json!("")),
        "Size": image.size,
        "GraphDriver": {
            "Data": {"LowerDir": lower.join(":")},
            "Name": "overlay2",
        },
        "RootFS": {
            "Type": "layers",
            "Layers": raw.pointer("/rootfs/diff_ids").cloned().unwrap_or(json!([])),
        },
        "Metadata": {
            "LastTagTime": image.record.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
    });
    if let Some(variant) = raw.get("variant") {
        v["Variant"] = variant.clone();
    }
    v
}
