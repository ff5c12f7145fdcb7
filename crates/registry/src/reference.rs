//! Image references: Docker's grammar and normalisation.
//!
//! `python:3.8` and `docker.io/library/python:3.8` must name the same image, exactly as the
//! `docker` CLI decides, because users copy references between the two tools. The grammar is
//! distribution's `reference` package: `[domain/]path[:tag][@digest]`, where the first component
//! is a domain only when it has a `.` or `:` or is `localhost`.

use std::fmt;

/// The registry that unqualified references point at.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag a reference without tag or digest means.
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_MAX: usize = 255;

/// A parsed, normalised image reference (`docker.io/library/busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not a valid reference; the text follows Docker's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not match the grammar at all.
    #[error("invalid reference format: {input:?} is not of the form [host[:port]/]name[:tag][@sha256:digest]")]
    Format {
        /// What the user typed.
        input: String,
    },
    /// Repository names are lowercase in Docker's grammar.
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    Uppercase {
        /// The repository name as normalised so far.
        name: String,
    },
    /// The repository name is longer than 255 characters.
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    TooLong,
    /// The digest is not `algorithm:hex` of the right length.
    #[error("invalid reference format: digest {digest:?} is not sha256:<64 hex characters>")]
    Digest {
        /// The digest part of the input.
        digest: String,
    },
    /// The tag has characters or length Docker rejects.
    #[error(
        "invalid reference format: tag {tag:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
    )]
    Tag {
        /// The tag part of the input.
        tag: String,
    },
}

impl Reference {
    /// Parses and normalises a reference the way `docker pull` does.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let format = || ReferenceError::Format {
            input: input.to_string(),
        };
        if input.is_empty() || input.trim() != input {
            return Err(format());
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (input, None),
        };
        if let Some(d) = digest {
            if !valid_digest(d) {
                return Err(ReferenceError::Digest {
                    digest: d.to_string(),
                });
            }
        }
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag { tag: t.to_string() });
            }
        }
        let (domain, path) = split_domain(name);
        if domain.is_empty() || path.is_empty() || !valid_domain(&domain) {
            return Err(format());
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase { name: path });
        }
        if !path.split('/').all(valid_path_component) {
            return Err(format());
        }
        if domain.len() + 1 + path.len() > NAME_MAX {
            return Err(ReferenceError::TooLong);
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// Like [`Reference::parse`], adding `:latest` when neither tag nor digest is given.
    pub fn parse_with_default_tag(input: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// Repository path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    /// The digest (`sha256:…`), if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
    /// `domain/path`, the repository's full name.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
    /// The name as Docker prints it: `busybox` for `docker.io/library/busybox`.
    pub fn familiar_name(&self) -> String {
        familiar(&self.domain, &self.path)
    }
    /// The same reference with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
    /// The same repository pinned to a digest, without tag (`name@sha256:…`).
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn manifest_selector(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Docker's short form of a repository name.
pub fn familiar(domain: &str, path: &str) -> String {
    if domain == DEFAULT_DOMAIN {
        path.strip_prefix(OFFICIAL_PREFIX)
            .filter(|p| !p.contains('/'))
            .unwrap_or(path)
            .to_string()
    } else {
        format!("{domain}/{path}")
    }
}

fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_PREFIX}{path}");
    }
    (domain, path)
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let s = &c[sep..i];
        let ok = s == "." || s == "_" || s == "__" || s.bytes().all(|x| x == b'-');
        if !ok || i == b.len() {
            return false;
        }
    }
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') {
        return host.ends_with(']') && host.len() > 2;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        Some(("sha512", hex)) => {
            hex.len() == 128
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        _ => false,
    }
}

/// Whether a registry host is on this machine, which Docker treats as insecure by default.
pub fn is_loopback_host(domain: &str) -> bool {
    let host = match domain.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => domain,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One helper for every case, so the API can change without touching the table.
    fn check(input: &str, expected: &str) {
        let got = match Reference::parse_with_default_tag(input) {
            Ok(r) => r.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "input {input:?}");
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_like_docker() {
        check("busybox", "docker.io/library/busybox:latest");
        check(
            "python:3.8-slim-buster",
            "docker.io/library/python:3.8-slim-buster",
        );
        check("user/app:v1", "docker.io/user/app:v1");
        check("docker.io/busybox", "docker.io/library/busybox:latest");
        check(
            "index.docker.io/library/busybox:1",
            "docker.io/library/busybox:1",
        );
        check(
            "127.0.0.1:5000/test/busybox:zstd",
            "127.0.0.1:5000/test/busybox:zstd",
        );
        check("localhost/app", "localhost/app:latest");
        check("localhost:5000/a/b/c", "localhost:5000/a/b/c:latest");
        check("[::1]:5000/app:1", "[::1]:5000/app:1");
        check(
            &format!("busybox@{D}"),
            &format!("docker.io/library/busybox@{D}"),
        );
        check(
            &format!("busybox:1@{D}"),
            &format!("docker.io/library/busybox:1@{D}"),
        );
        check(
            "a__b/c-d.e_f--g:T_1.0-x",
            "docker.io/a__b/c-d.e_f--g:T_1.0-x",
        );
    }

    #[test]
    fn rejects_bad_syntax_with_docker_words() {
        check(
            "Busybox",
            "error: invalid reference format: repository name (library/Busybox) must be lowercase",
        );
        check("", "error: invalid reference format: \"\" is not of the form [host[:port]/]name[:tag][@sha256:digest]");
        check("busybox:", "error: invalid reference format: tag \"\" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
        check("busybox@sha256:abc", "error: invalid reference format: digest \"sha256:abc\" is not sha256:<64 hex characters>");
        check("bad//name", "error: invalid reference format: \"bad//name\" is not of the form [host[:port]/]name[:tag][@sha256:digest]");
        check("-start", "error: invalid reference format: \"-start\" is not of the form [host[:port]/]name[:tag][@sha256:digest]");
        check("a/b_-c", "error: invalid reference format: \"a/b_-c\" is not of the form [host[:port]/]name[:tag][@sha256:digest]");
        check("host:port/x", "error: invalid reference format: \"host:port/x\" is not of the form [host[:port]/]name[:tag][@sha256:digest]");
    }

    #[test]
    fn familiar_names() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar_name();
        assert_eq!(f("docker.io/library/busybox"), "busybox");
        assert_eq!(f("docker.io/user/app"), "user/app");
        assert_eq!(
            f("127.0.0.1:5000/library/busybox"),
            "127.0.0.1:5000/library/busybox"
        );
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("docker.io"));
        assert!(!is_loopback_host("10.0.0.1:5000"));
    }
}
