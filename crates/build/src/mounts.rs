//! `RUN --mount`: what each mount type means and where its files come from.
//!
//! - `type=cache` — a folder under `<root>/build-mounts/` that outlives the build, keyed by
//!   `id` (default: the target), created with `mode`/`uid`/`gid`; `sharing=locked` holds an
//!   exclusive lock on it for the RUN.
//! - `type=bind` (the default) — `source` (default the root) of the context, or of an earlier
//!   stage or an image with `from=`; read-only unless `rw`, and then writes go to a scratch
//!   copy, never back.
//! - `type=tmpfs` — a tmpfs (`size=` optional).
//! - `type=secret` — the file given with `--secret id=…,src=…`, at `/run/secrets/<id>` unless
//!   `target` says otherwise; skipped when not given unless `required`.
//!
//! Every mount lies outside the container's upper directory, so nothing of it reaches the
//! layer; the empty mount points the runtime had to create are removed before the layer is
//! written (BuildKit does the same).

use crate::Error;

/// One parsed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mount {
    /// `type=bind`.
    Bind {
        target: String,
        source: String,
        from: Option<String>,
        rw: bool,
    },
    /// `type=cache`.
    Cache {
        target: String,
        id: String,
        locked: bool,
        read_only: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
    /// `type=tmpfs`.
    Tmpfs {
        target: String,
        size: Option<String>,
    },
    /// `type=secret`.
    Secret {
        id: String,
        target: String,
        required: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
}

fn bad(spec: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("RUN --mount={spec}: {why}"))
}

/// Parses one `--mount` value (`type=cache,target=/root/.cache,sharing=locked`).
pub(crate) fn parse(spec: &str) -> Result<Mount, Error> {
    let mut kind = "bind".to_string();
    let mut target = None;
    let mut source = None;
    let mut from = None;
    let mut id = None;
    let mut rw = false;
    let mut ro = false;
    let mut required = false;
    let mut sharing = "shared".to_string();
    let mut uid = 0u32;
    let mut gid = 0u32;
    let mut mode = None;
    let mut size = None;
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim().to_string())),
            None => (field.trim().to_lowercase(), None),
        };
        let flag = |v: &Option<String>| -> Result<bool, Error> {
            match v.as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(other) => Err(bad(spec, format!("{k}={other}: expected true or false"))),
            }
        };
        let value = |v: Option<String>| -> Result<String, Error> {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| bad(spec, format!("{k} needs a value")))
        };
        let number = |v: Option<String>, radix: u32| -> Result<u32, Error> {
            let s = value(v)?;
            u32::from_str_radix(&s, radix)
                .map_err(|_| bad(spec, format!("{k}={s} is not a valid number")))
        };
        match k.as_str() {
            "type" => kind = value(v)?,
            "target" | "dst" | "destination" => target = Some(value(v)?),
            "source" | "src" => source = Some(value(v)?),
            "from" => from = Some(value(v)?),
            "id" => id = Some(value(v)?),
            "rw" | "readwrite" => rw = flag(&v)?,
            "ro" | "readonly" => ro = flag(&v)?,
            "required" => required = flag(&v)?,
            "sharing" => sharing = value(v)?,
            "uid" => uid = number(v, 10)?,
            "gid" => gid = number(v, 10)?,
            "mode" => mode = Some(number(v, 8)?),
            "size" => size = Some(value(v)?),
            _ => return Err(bad(spec, format!("unknown key {k:?}"))),
        }
    }
    let need_target = |t: Option<String>| t.ok_or_else(|| bad(spec, "target is required"));
    match kind.as_str() {
        "bind" => Ok(Mount::Bind {
            target: need_target(target)?,
            source: source.unwrap_or_default(),
            from,
            rw: rw && !ro,
        }),
        "cache" => {
            if !matches!(sharing.as_str(), "shared" | "private" | "locked") {
                return Err(bad(
                    spec,
                    format!("sharing={sharing}: expected shared, private or locked"),
                ));
            }
            if from.is_some() || source.is_some() {
                return Err(bad(
                    spec,
                    "a cache seeded from a stage (from=/source=) is not supported by berth",
                ));
            }
            let target = need_target(target)?;
            Ok(Mount::Cache {
                id: id.unwrap_or_else(|| target.clone()),
                target,
                locked: sharing == "locked",
                read_only: ro,
                uid,
                gid,
                mode: mode.unwrap_or(0o755),
            })
        }
        "tmpfs" => Ok(Mount::Tmpfs {
            target: need_target(target)?,
            size,
        }),
        "secret" => {
            let id = match (id, &target) {
                (Some(id), _) => id,
                (None, Some(t)) => t.rsplit('/').next().unwrap_or_default().to_string(),
                (None, None) => return Err(bad(spec, "a secret needs an id or a target")),
            };
            Ok(Mount::Secret {
                target: target.unwrap_or_else(|| format!("/run/secrets/{id}")),
                id,
                required,
                uid,
                gid,
                mode: mode.unwrap_or(0o400),
            })
        }
        "ssh" => Err(bad(spec, "type=ssh is not supported by berth build")),
        other => Err(bad(
            spec,
            format!("unknown mount type {other:?} (bind, cache, tmpfs or secret)"),
        )),
    }
}

/// The folder name of a cache mount's ID under `build-mounts/`.
pub(crate) fn cache_dir_name(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !id.starts_with('.');
    if plain {
        id.to_string()
    } else {
        berth_image::sha256_hex(id.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_specs() {
        assert_eq!(
            parse("type=cache,target=/root/.cache,sharing=locked,mode=0700").unwrap(),
            Mount::Cache {
                target: "/root/.cache".into(),
                id: "/root/.cache".into(),
                locked: true,
                read_only: false,
                uid: 0,
                gid: 0,
                mode: 0o700
            }
        );
        assert_eq!(
            parse("target=/src,rw").unwrap(),
            Mount::Bind {
                target: "/src".into(),
                source: String::new(),
                from: None,
                rw: true
            }
        );
        assert!(matches!(
            parse("type=secret,id=tok").unwrap(),
            Mount::Secret { target, mode: 0o400, .. } if target == "/run/secrets/tok"
        ));
        assert!(parse("type=cache").is_err());
        assert!(parse("type=bogus,target=/x").is_err());
        assert!(parse("type=cache,target=/x,colour=red").is_err());
        assert!(parse("type=cache,target=/x,uid=abc").is_err());
        assert_eq!(cache_dir_name("pip"), "pip");
        assert_eq!(cache_dir_name("/root/.cache").len(), 64);
    }
}
