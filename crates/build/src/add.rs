//! What ADD does beyond COPY: a local tar archive (plain, gzip, zstd, bzip2 or xz) is unpacked into the
//! destination, and an http(s) URL is fetched (once per build), saved under the name its
//! path ends with, mode 0600, its `Last-Modified` as mtime, and checked against
//! `--checksum=sha256:…` when given.
//!
//! Archive entries are renamed under the destination in a new layer tar, and one whose name
//! climbs out (`../x`) is refused; the layer is then unpacked by the image crate, which never
//! writes outside the snapshot.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_dockerfile::Instruction;
use sha2::Digest;

use crate::context::CopyMeta;
use crate::{Builder, Error};

/// A URL ADD fetched.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// The folder holding the file.
    pub dir: PathBuf,
    /// The file's name (from the URL).
    pub name: String,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
}

/// Whether an ADD source is a URL to fetch.
pub(crate) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The name a fetched URL is saved under: its path's last segment (Docker's rule).
fn url_name(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.split_once('/').map(|(_, p)| p).unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or("");
    match path.rsplit('/').next() {
        Some(n) if !n.is_empty() && n != "." && n != ".." => n.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// Whether a 512-byte block is a tar header (its checksum adds up).
fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|b| *b == 0) {
        return false;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == Some(sum)
}

/// Whether a local file is a tar archive ADD unpacks (plain, gzip, zstd, bzip2 or xz).
pub(crate) fn is_archive(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(mut r) = berth_image::compress::decompress_archive(f) else {
        return false;
    };
    let mut block = [0u8; 512];
    let mut got = 0;
    while got < 512 {
        match r.read(&mut block[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got == 512 && is_tar_header(&block)
}

/// Whether `bytes` (a whole file) are a tar archive, plain, gzip or zstd.
pub fn is_tar(bytes: &[u8]) -> bool {
    let Ok(mut r) = berth_image::compress::decompress_archive(bytes) else {
        return false;
    };
    let mut block = [0u8; 512];
    r.read_exact(&mut block).is_ok() && is_tar_header(&block)
}

/// `name` (an archive entry) cleaned and put under `target`; `None` if it climbs out.
fn under(target: &str, name: &str) -> Option<String> {
    let mut parts: Vec<&str> = target.split('/').filter(|c| !c.is_empty()).collect();
    let floor = parts.len();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.len() == floor => return None,
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Appends the entries of the archive at `host` (named `shown` in messages) to a layer,
/// under `target`.
pub(crate) fn append_archive(
    tar: &mut tar::Builder<impl Write>,
    host: &Path,
    shown: &str,
    target: &str,
    meta: CopyMeta,
) -> Result<(), Error> {
    let ctx = || Error::io(format!("unpacking {shown}"));
    let f = std::fs::File::open(host).map_err(ctx())?;
    let mut archive =
        tar::Archive::new(berth_image::compress::decompress_archive(f).map_err(ctx())?);
    for entry in archive.entries().map_err(ctx())? {
        let mut entry = entry.map_err(ctx())?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let old = entry.header().clone();
        let kind = old.entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName
        ) {
            continue;
        }
        let path = under(target, &name).ok_or_else(|| {
            Error::Invalid(format!(
                "ADD {shown}: the archive entry {name:?} points outside the destination"
            ))
        })?;
        if path.is_empty() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        let mode = old.mode().map_err(ctx())? & 0o7777;
        h.set_mode(match (meta.mode, kind) {
            (_, tar::EntryType::Symlink) => 0o777,
            (Some(m), _) => m,
            (None, _) => mode,
        });
        let (uid, gid) = match meta.owner {
            Some(o) => o,
            None => (
                old.uid().map_err(ctx())? as u32,
                old.gid().map_err(ctx())? as u32,
            ),
        };
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        let mtime = old.mtime().map_err(ctx())? as i64;
        h.set_mtime(meta.max_mtime.map_or(mtime, |m| mtime.min(m)).max(0) as u64);
        if let (Ok(Some(major)), Ok(Some(minor))) = (old.device_major(), old.device_minor()) {
            let _ = h.set_device_major(major);
            let _ = h.set_device_minor(minor);
        }
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let link = if kind == tar::EntryType::Link {
                    under(target, &link).ok_or_else(|| {
                        Error::Invalid(format!(
                            "ADD {shown}: the archive entry {name:?} links to {link:?}, outside the destination"
                        ))
                    })?
                } else {
                    link
                };
                h.set_size(0);
                tar.append_link(&mut h, &path, &link).map_err(ctx())?;
            }
            tar::EntryType::Directory => {
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .map_err(ctx())?;
            }
            _ => {
                h.set_size(entry.size());
                tar.append_data(&mut h, &path, &mut entry).map_err(ctx())?;
            }
        }
    }
    Ok(())
}

impl Builder<'_> {
    /// Fetches an ADD URL (once per build) into a scratch folder and checks `--checksum`.
    pub(crate) fn fetch(&mut self, url: &str, ins: &Instruction) -> Result<Fetched, Error> {
        let checksum = match ins.flag("checksum") {
            Some(Some(c)) => Some(self.expand(c)?),
            _ => None,
        };
        if let Some(c) = &checksum {
            let hex = c.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::Invalid(format!(
                    "ADD --checksum={c}: give sha256:<64 hex digits>"
                )));
            }
        }
        let fetched = match self.fetched.get(url) {
            Some(f) => f.clone(),
            None => {
                self.say(&format!("Downloading {url}"));
                let dir = self.scratch_dir("add-url")?;
                let name = url_name(url);
                let digest = download(url, &dir.join(&name))?;
                let f = Fetched { dir, name, digest };
                self.fetched.insert(url.to_string(), f.clone());
                f
            }
        };
        if let Some(c) = checksum {
            if !c.eq_ignore_ascii_case(&fetched.digest) {
                return Err(Error::Invalid(format!(
                    "ADD {url}: checksum mismatch: expected {c}, the download is {}",
                    fetched.digest
                )));
            }
        }
        Ok(fetched)
    }
}

/// Downloads `url` to `path` (mode 0600, mtime from `Last-Modified`); returns its digest.
fn download(url: &str, path: &Path) -> Result<String, Error> {
    let fail = |e: String| Error::Invalid(format!("ADD {url}: {e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("starting the HTTP client: {e}")))?;
    let mut file =
        std::fs::File::create(path).map_err(Error::io(format!("writing {}", path.display())))?;
    let mut hasher = sha2::Sha256::new();
    let modified = rt.block_on(async {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(format!("fetching failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(fail(format!("the server answered {}", resp.status())));
        }
        let modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok());
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| fail(format!("reading the body: {e}")))?
        {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .map_err(Error::io(format!("writing {}", path.display())))?;
        }
        Ok(modified)
    })?;
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(Error::io(format!("writing {}", path.display())))?;
    if let Some(m) = modified {
        let _ = file.set_modified(m.into());
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        assert_eq!(url_name("http://h:8/a/b/file.tar.gz?x=1"), "file.tar.gz");
        assert_eq!(url_name("https://h/"), "__unnamed__");
        assert_eq!(url_name("https://h"), "__unnamed__");
    }

    #[test]
    fn entries_stay_under_the_destination() {
        assert_eq!(under("opt/x", "./a/b").as_deref(), Some("opt/x/a/b"));
        assert_eq!(under("opt/x", "a/../b").as_deref(), Some("opt/x/b"));
        assert_eq!(under("opt/x", "../etc/passwd"), None);
        assert_eq!(under("", "/abs/file").as_deref(), Some("abs/file"));
        assert_eq!(under("", "a/../../b"), None);
    }
}
