//! `import`: a root filesystem tarball → a one-layer image, with Dockerfile-style `--change`s.

use std::io::{Read, Write};

use berth_registry::media_types;
use berth_registry::{Platform, Reference};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::snapshot::SnapshotInfo;
use crate::store::{now_rfc3339, ImageRecord};
use crate::unpack::Unpacker;
use crate::{Error, Store};

/// How to describe the imported image.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Dockerfile instructions applied to the config (`CMD ["sh"]`, `ENV A=b`, …).
    pub changes: Vec<String>,
    /// The history comment (`-m`).
    pub message: Option<String>,
    /// Where the tarball came from, for the history ("-" for stdin).
    pub source: String,
    /// The platform recorded in the config.
    pub platform: Platform,
}

/// Instructions `--change` accepts, as in Docker.
const CHANGE_KEYS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

impl Store {
    /// Imports a tarball (plain, gzip or zstd) as a new image and tags it; returns its ID.
    pub fn import(
        &self,
        input: impl Read + Send,
        options: &ImportOptions,
        tag: Option<&Reference>,
    ) -> Result<String, Error> {
        // Validate the changes before reading a byte of input.
        let mut container_config = Map::new();
        for change in &options.changes {
            apply_change(&mut container_config, change)?;
        }
        let tar = crate::compress::decompress(input).map_err(Error::io("reading the tarball"))?;
        let layer = self.add_layer(None, tar)?;
        let created = now_rfc3339();
        let mut history =
            json!({"created": created, "comment": format!("Imported from {}", options.source)});
        if let Some(m) = &options.message {
            history["comment"] = Value::String(m.clone());
        }
        let mut config = json!({
            "architecture": options.platform.architecture,
            "os": options.platform.os,
            "created": created,
            "config": container_config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [history],
        });
        if let Some(v) = &options.platform.variant {
            config["variant"] = Value::String(v.clone());
        }
        self.write_image(&config, &[layer], tag)
    }

    /// Adds one layer (an uncompressed tar) on top of the snapshot `parent` (a chain ID;
    /// `None` for a base layer): unpacked safely into its own snapshot, and kept gzipped as
    /// a blob. Used by `import` and by every filesystem step of a build.
    pub fn add_layer(
        &self,
        parent: Option<&str>,
        mut tar: impl Read + Send,
    ) -> Result<NewLayer, Error> {
        let mut unpacker = Unpacker::start(&self.snapshots, "layer", "layer", None)?;
        let mut blob = self.content.temp_blob()?;
        let mut diff_hasher = Sha256::new();
        {
            // Level 1: this is interactive; a push can afford better compression later.
            let mut gz = flate2::write::GzEncoder::new(&mut blob, flate2::Compression::fast());
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = tar.read(&mut buf).map_err(Error::io("reading the layer"))?;
                if n == 0 {
                    break;
                }
                diff_hasher.update(&buf[..n]);
                unpacker.feed(&buf[..n]);
                gz.write_all(&buf[..n])
                    .map_err(Error::io("compressing the layer"))?;
            }
            gz.finish().map_err(Error::io("compressing the layer"))?;
        }
        let diff_id = format!("sha256:{}", hex::encode(diff_hasher.finalize()));
        let (_, stats) = unpacker.join()?;
        let (digest, size) = blob.finish()?;
        let chain_id = match parent {
            None => diff_id.clone(),
            Some(p) => format!(
                "sha256:{}",
                crate::sha256_hex(format!("{p} {diff_id}").as_bytes())
            ),
        };
        if self.snapshots.stat(&chain_id)?.is_none() {
            let prepared = unpacker.take_prepared().expect("prepared once");
            self.snapshots.commit(
                prepared,
                &SnapshotInfo {
                    chain_id: chain_id.clone(),
                    parent: parent.map(str::to_string),
                    diff_id: diff_id.clone(),
                    size: stats.size,
                },
            )?;
        }
        Ok(NewLayer {
            diff_id,
            chain_id,
            digest,
            size,
            media_type: media_types::OCI_LAYER_GZIP.into(),
        })
    }

    /// Writes an image config and its OCI manifest over `layers` (the config's diff IDs must
    /// be theirs, in order), records it and tags it; returns its ID.
    pub fn write_image(
        &self,
        config: &Value,
        layers: &[NewLayer],
        tag: Option<&Reference>,
    ) -> Result<String, Error> {
        let config_bytes = serde_json::to_vec(config).expect("JSON serialises");
        let config_digest = self.content.write_bytes(&config_bytes)?;
        let layer_descs: Vec<Value> = layers
            .iter()
            .map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": {"mediaType": media_types::OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
            "layers": layer_descs,
        });
        let manifest_digest = self
            .content
            .write_bytes(&serde_json::to_vec(&manifest).expect("JSON serialises"))?;
        self.record(
            &config_digest,
            ImageRecord {
                manifest: manifest_digest,
                manifest_media_type: media_types::OCI_MANIFEST.into(),
                index: None,
                repo_digests: Vec::new(),
                last_tag_time: None,
            },
            tag,
        )?;
        Ok(config_digest)
    }
}

/// A layer added to the store: what an image config and manifest name it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayer {
    /// Digest of the uncompressed tar (the config's diff ID).
    pub diff_id: String,
    /// Its snapshot's chain ID (with the layers under it).
    pub chain_id: String,
    /// Digest of the gzipped blob.
    pub digest: String,
    /// Size of the gzipped blob.
    pub size: u64,
    /// The blob's OCI media type (gzip for layers berth writes).
    pub media_type: String,
}

impl Store {
    /// The layers of a stored image, described as [`write_image`](Store::write_image) takes
    /// them, so a build can stack new layers on them. Docker media types are named by their
    /// OCI equivalents (the bytes are the same).
    pub fn image_layers(&self, info: &crate::ImageInfo) -> Vec<NewLayer> {
        let diff_ids: Vec<String> = info.config.rootfs().diff_ids().clone();
        let chains = crate::chain_ids(&diff_ids);
        info.manifest
            .layers()
            .iter()
            .zip(diff_ids.iter().zip(chains))
            .map(|(d, (diff_id, chain_id))| {
                let mt = d.media_type().to_string();
                let media_type = if mt.ends_with("gzip") {
                    media_types::OCI_LAYER_GZIP.to_string()
                } else if mt.ends_with("zstd") {
                    "application/vnd.oci.image.layer.v1.tar+zstd".to_string()
                } else if mt.ends_with(".tar") || mt.ends_with("diff.tar") {
                    "application/vnd.oci.image.layer.v1.tar".to_string()
                } else {
                    mt
                };
                NewLayer {
                    diff_id: diff_id.clone(),
                    chain_id,
                    digest: d.digest().to_string(),
                    size: d.size(),
                    media_type,
                }
            })
            .collect()
    }
}

/// Applies one `--change` instruction to a container config (Docker's key names).
pub fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<(), Error> {
    let bad = |cause: String| Error::malformed(format!("--change {change:?}"), cause);
    let change = change.trim();
    let (key, rest) = change
        .split_once(char::is_whitespace)
        .map(|(k, r)| (k, r.trim()))
        .unwrap_or((change, ""));
    let key = key.to_ascii_uppercase();
    if !CHANGE_KEYS.contains(&key.as_str()) {
        return Err(bad(format!(
            "{key} is not a valid change command; use one of {}",
            CHANGE_KEYS.join(", ")
        )));
    }
    if rest.is_empty() {
        return Err(bad(format!("{key} requires at least one argument")));
    }
    let exec_form = |shell: bool| -> Result<Value, Error> {
        if rest.starts_with('[') {
            let v: Vec<String> =
                serde_json::from_str(rest).map_err(|e| bad(format!("invalid JSON array: {e}")))?;
            Ok(json!(v))
        } else if shell {
            Ok(json!(["/bin/sh", "-c", rest]))
        } else {
            Ok(json!(rest.split_whitespace().collect::<Vec<_>>()))
        }
    };
    match key.as_str() {
        "CMD" => {
            config.insert("Cmd".into(), exec_form(true)?);
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), exec_form(true)?);
        }
        "VOLUME" => {
            let vols = exec_form(false)?;
            let map = config
                .entry("Volumes")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("Volumes is an object");
            for v in vols.as_array().expect("array") {
                map.insert(v.as_str().unwrap_or_default().to_string(), json!({}));
            }
        }
        "ENV" | "LABEL" => {
            let pairs = parse_pairs(rest).map_err(bad)?;
            if key == "ENV" {
                let env = config
                    .entry("Env")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("Env is an array");
                for (k, v) in pairs {
                    let prefix = format!("{k}=");
                    env.retain(|e| !e.as_str().unwrap_or_default().starts_with(&prefix));
                    env.push(json!(format!("{k}={v}")));
                }
            } else {
                let labels = config
                    .entry("Labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("Labels is an object");
                for (k, v) in pairs {
                    labels.insert(k, json!(v));
                }
            }
        }
        "EXPOSE" => {
            let ports = config
                .entry("ExposedPorts")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("ExposedPorts is an object");
            for p in rest.split_whitespace() {
                let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                if num.parse::<u16>().is_err() || !["tcp", "udp", "sctp"].contains(&proto) {
                    return Err(bad(format!("invalid port {p:?}")));
                }
                ports.insert(format!("{num}/{proto}"), json!({}));
            }
        }
        "USER" => {
            config.insert("User".into(), json!(rest));
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), json!(rest));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), json!(rest));
        }
        "ONBUILD" => {
            config
                .entry("OnBuild")
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("OnBuild is an array")
                .push(json!(rest));
        }
        _ => unreachable!("checked against CHANGE_KEYS"),
    }
    Ok(())
}

/// `k=v k2="v 2"` or the legacy single `k v`.
fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    if !s.split_whitespace().next().unwrap_or("").contains('=') {
        let (k, v) = s
            .split_once(char::is_whitespace)
            .ok_or("expected KEY=VALUE")?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        let mut value = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, '\\') => {
                    chars.next();
                    if let Some(n) = chars.peek() {
                        value.push(*n);
                    }
                }
                _ => value.push(c),
            }
            chars.next();
        }
        if key.is_empty() || quote.is_some() {
            return Err(format!("cannot parse {s:?} as KEY=VALUE pairs"));
        }
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(changes: &[&str], expected: &str) {
        let mut c = Map::new();
        let got = changes
            .iter()
            .try_for_each(|ch| apply_change(&mut c, ch))
            .map(|_| Value::Object(c).to_string())
            .unwrap_or_else(|e| format!("error: {e}"));
        assert_eq!(got, expected);
    }

    #[test]
    fn changes_follow_dockerfile_forms() {
        check(&[r#"CMD ["sh"]"#], r#"{"Cmd":["sh"]}"#);
        check(&["CMD echo hi"], r#"{"Cmd":["/bin/sh","-c","echo hi"]}"#);
        check(
            &["ENV A=1 B=\"two words\"", "ENV A 3"],
            r#"{"Env":["B=two words","A=3"]}"#,
        );
        check(
            &["EXPOSE 80 53/udp"],
            r#"{"ExposedPorts":{"53/udp":{},"80/tcp":{}}}"#,
        );
        check(
            &["WORKDIR /app", "USER 1000"],
            r#"{"User":"1000","WorkingDir":"/app"}"#,
        );
        check(&["LABEL a=b"], r#"{"Labels":{"a":"b"}}"#);
    }

    #[test]
    fn bad_changes_are_named() {
        check(&["RUN ls"], "error: --change \"RUN ls\": RUN is not a valid change command; use one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR");
        check(
            &["CMD [oops"],
            "error: --change \"CMD [oops\": invalid JSON array: expected value at line 1 column 2",
        );
        check(
            &["EXPOSE http"],
            "error: --change \"EXPOSE http\": invalid port \"http\"",
        );
        check(
            &["CMD"],
            "error: --change \"CMD\": CMD requires at least one argument",
        );
    }
}
