//! Credentials and challenges: `~/.docker/config.json` and `WWW-Authenticate`.
//!
//! Credentials are stored exactly as the Docker CLI stores them (`auths.<host>.auth` =
//! base64 of `user:password`, docker.io under `https://index.docker.io/v1/`), so `docker login`
//! and `berth login` share one file. Other keys of that file are preserved on write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value};

use crate::Error;

/// The key Docker uses for docker.io in `auths`.
pub const DOCKER_IO_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or identity token) for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker").join("config.json")
}

/// The `auths` key for a registry host, as the Docker CLI writes it.
pub fn auth_key(host: &str) -> String {
    if host == crate::DEFAULT_DOMAIN || host == "index.docker.io" || host == "registry-1.docker.io"
    {
        DOCKER_IO_AUTH_KEY.to_string()
    } else {
        host.to_string()
    }
}

fn read_config(path: &Path) -> Result<Map<String, Value>, Error> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(Error::Config {
                path: path.display().to_string(),
                cause: "not a JSON object; fix or remove the file".into(),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(Error::Config {
            path: path.display().to_string(),
            cause: e.to_string(),
        }),
    }
}

/// Looks up the stored credentials for `host`, if any.
pub fn lookup(path: &Path, host: &str) -> Result<Option<Credentials>, Error> {
    let config = read_config(path)?;
    let Some(Value::Object(auths)) = config.get("auths") else {
        return Ok(None);
    };
    let key = auth_key(host);
    let entry = auths.get(&key).or_else(|| {
        auths.iter().find_map(|(k, v)| {
            let bare = k
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .trim_end_matches("/v2");
            (bare == host).then_some(v)
        })
    });
    let Some(Value::Object(entry)) = entry else {
        return Ok(None);
    };
    if let Some(Value::String(encoded)) = entry.get("auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((u, p)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
        return Err(Error::Config {
            path: path.display().to_string(),
            cause: format!("auths.{key}.auth is not base64 of user:password"),
        });
    }
    match (entry.get("username"), entry.get("password")) {
        (Some(Value::String(u)), Some(Value::String(p))) => Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// Stores (`Some`) or removes (`None`) credentials for `host`; returns whether an entry existed.
pub fn store(path: &Path, host: &str, creds: Option<&Credentials>) -> Result<bool, Error> {
    let mut config = read_config(path)?;
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("made an object above");
    let key = auth_key(host);
    let existed = auths.remove(&key).is_some();
    if let Some(c) = creds {
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.username, c.password));
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(encoded));
        auths.insert(key, Value::Object(entry));
    }
    let err = |e: std::io::Error| Error::Config {
        path: path.display().to_string(),
        cause: e.to_string(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let text = serde_json::to_string_pretty(&Value::Object(config)).expect("JSON values serialise");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.write_all(b"\n").map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(existed)
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`
    Basic,
    /// `Bearer realm=…,service=…,scope=…`
    Bearer(BTreeMap<String, String>),
}

/// Parses a `WWW-Authenticate` header value; `None` for schemes berth does not speak.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer(parse_params(rest))),
        _ => None,
    }
}

fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg, 1",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        let Challenge::Bearer(p) = c else { panic!() };
        assert_eq!(p["realm"], "http://127.0.0.1:1/token");
        assert_eq!(p["service"], "reg, 1");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate x"), None);
    }

    #[test]
    fn credentials_round_trip_in_docker_format() {
        let dir = std::env::temp_dir().join(format!("berth-auth-{}", std::process::id()));
        let path = dir.join("config.json");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, r#"{"credsStore":"","proxies":{"x":1}}"#).unwrap();
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        assert!(!store(&path, "docker.io", Some(&c)).unwrap());
        let raw: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["auths"][DOCKER_IO_AUTH_KEY]["auth"], "dTpwOnc=");
        assert_eq!(raw["proxies"]["x"], 1, "other keys survive");
        assert_eq!(lookup(&path, "docker.io").unwrap(), Some(c));
        assert_eq!(lookup(&path, "127.0.0.1:5000").unwrap(), None);
        assert!(store(&path, "docker.io", None).unwrap());
        assert_eq!(lookup(&path, "docker.io").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
