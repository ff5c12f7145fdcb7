//! The build context: a folder, its `.dockerignore` (Docker's pattern rules: `*`, `?`, `**`,
//! `!` exceptions, later lines winning, a matched directory taking its contents along), and
//! the layer a COPY of some of its files makes.

use std::path::{Path, PathBuf};

use crate::Error;

/// One `.dockerignore` line.
#[derive(Debug, Clone)]
struct Pattern {
    glob: Vec<String>,
    exclude: bool,
}

/// The files a build may use: the context folder, or another root COPY reads from (a view of
/// a stage, heredoc bodies), which has no `.dockerignore`.
#[derive(Clone)]
pub struct Context {
    root: PathBuf,
    patterns: Vec<Pattern>,
}

/// Cleans a relative path as Go's `filepath.Clean` does, without a leading `/` or `./`.
pub use berth_image::clean_path as clean;

/// Matches one path component against a glob component (`*`, `?`, `[...]` classes).
fn component_matches(glob: &str, name: &str) -> bool {
    fn go(g: &[char], n: &[char]) -> bool {
        match (g.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&g[1..], n) || (!n.is_empty() && go(g, &n[1..])),
            (Some('?'), Some(_)) => go(&g[1..], &n[1..]),
            (Some('['), Some(c)) => match g.iter().position(|&x| x == ']') {
                Some(end) if end > 1 => {
                    let class = &g[1..end];
                    let (negate, class) = match class.first() {
                        Some('^') | Some('!') => (true, &class[1..]),
                        _ => (false, class),
                    };
                    let mut hit = false;
                    let mut i = 0;
                    while i < class.len() {
                        if i + 2 < class.len() && class[i + 1] == '-' {
                            hit |= class[i] <= *c && *c <= class[i + 2];
                            i += 3;
                        } else {
                            hit |= class[i] == *c;
                            i += 1;
                        }
                    }
                    hit != negate && go(&g[end + 1..], &n[1..])
                }
                _ => false,
            },
            (Some('\\'), Some(c)) if g.len() > 1 => g[1] == *c && go(&g[2..], &n[1..]),
            (Some(a), Some(b)) => a == b && go(&g[1..], &n[1..]),
            _ => false,
        }
    }
    let g: Vec<char> = glob.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&g, &n)
}

/// Matches a path (components) against a pattern (components, `**` spanning any number).
fn path_matches(glob: &[String], path: &[&str]) -> bool {
    match glob.first() {
        None => path.is_empty(),
        Some(g) if g == "**" => (0..=path.len()).any(|i| path_matches(&glob[1..], &path[i..])),
        Some(g) => {
            !path.is_empty()
                && component_matches(g, path[0])
                && path_matches(&glob[1..], &path[1..])
        }
    }
}

/// The names in a directory, sorted (so layers and cache keys do not depend on readdir order).
fn sorted_names(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(Error::io(format!("reading {}", dir.display())))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// One source a COPY names.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its path in the tree with every link resolved inside it (no component is a link,
    /// except for a wildcard match, which is copied as what it is).
    pub path: String,
    /// The name it gets when copied into a directory: its last component as written.
    pub name: String,
}

/// What COPY changes on the files it writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyMeta {
    /// `--chown` (the files' own owners when `None`).
    pub owner: Option<(u32, u32)>,
    /// `--chmod`.
    pub mode: Option<u32>,
    /// `SOURCE_DATE_EPOCH`: no mtime later than this.
    pub max_mtime: Option<i64>,
}

/// `path` (relative) with every link along it replaced by its target, `link_at` telling the
/// target of a link at a relative path (`None`: not a link). Absolute targets restart at the
/// root and `..` stops at it, as in a chroot, so the result never leaves the root. `None`
/// after 40 links, as the kernel's ELOOP.
pub(crate) fn resolve_links(
    path: &str,
    link_at: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .rev()
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(c);
        let Some(target) = link_at(&done.join("/")) else {
            continue;
        };
        hops += 1;
        if hops > 40 {
            return None;
        }
        done.pop();
        if target.starts_with('/') {
            done.clear();
        }
        todo.extend(
            target
                .split('/')
                .filter(|p| !p.is_empty())
                .rev()
                .map(String::from),
        );
    }
    Some(done.join("/"))
}

/// The target of `p` if it is a symlink.
pub(crate) fn link_target(p: &Path) -> Option<String> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => std::fs::read_link(p)
            .ok()
            .map(|t| t.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// `path` (relative, cleaned) with every symlink along it resolved inside `root`; links
/// that climb above the root stop at it, as in a chroot.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<String, Error> {
    resolve_links(path, |rel| link_target(&root.join(rel)))
        .ok_or_else(|| Error::Invalid(format!("{path}: too many levels of symbolic links")))
}

impl Context {
    /// A tree without `.dockerignore`: a view of a stage or image, heredoc bodies.
    pub fn plain(root: &Path) -> Context {
        Context {
            root: root.to_path_buf(),
            patterns: Vec::new(),
        }
    }

    /// The context at `root`, with `<dockerfile>.dockerignore` next to the Dockerfile if
    /// there is one, else `.dockerignore` at its top.
    pub fn open(root: &Path, dockerfile: &Path) -> Result<Context, Error> {
        if !root.is_dir() {
            return Err(Error::Invalid(format!(
                "unable to prepare context: path {:?} not found",
                root.display().to_string()
            )));
        }
        let specific = PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
        let file = if specific.is_file() {
            specific
        } else {
            root.join(".dockerignore")
        };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (exclude, p) = match l.strip_prefix('!') {
                    Some(rest) => (false, rest.trim()),
                    None => (true, l),
                };
                Pattern {
                    glob: clean(p).split('/').map(str::to_string).collect(),
                    exclude,
                }
            })
            .collect();
        Ok(Context {
            root: root.to_path_buf(),
            patterns,
        })
    }

    /// Whether `.dockerignore` leaves `rel` (a cleaned relative path) out: the last
    /// pattern matching it or one of its parents decides.
    pub fn ignored(&self, rel: &str) -> bool {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        let mut ignored = false;
        for p in &self.patterns {
            let hit = (1..=parts.len()).any(|n| path_matches(&p.glob, &parts[..n]));
            if hit {
                ignored = p.exclude;
            }
        }
        ignored
    }

    /// The sources a COPY names: each pattern (wildcards allowed) matched against the
    /// context, `.dockerignore`d files left out; relative paths, in order.
    pub fn sources(&self, pattern: &str) -> Result<Vec<Source>, Error> {
        if climbs_out(pattern) {
            // Docker's legacy builder refuses it; BuildKit would quietly read `x` of the
            // context for `../x`, which surprises more than it helps.
            return Err(Error::OutsideContext(pattern.to_string()));
        }
        let cleaned = clean(pattern);
        let wild = cleaned.contains(['*', '?', '[']);
        if !wild {
            // Links along the path are followed inside the tree, the last one too.
            let path = resolve_in_root(&self.root, &cleaned)?;
            if std::fs::symlink_metadata(self.root.join(&path)).is_err()
                || (!cleaned.is_empty() && (self.ignored(&cleaned) || self.ignored(&path)))
            {
                return Err(Error::NotInContext(
                    pattern.trim_start_matches("./").to_string(),
                ));
            }
            let name = cleaned.rsplit('/').next().unwrap_or_default().to_string();
            return Ok(vec![Source { path, name }]);
        }
        let glob: Vec<String> = cleaned.split('/').map(str::to_string).collect();
        let mut out = Vec::new();
        self.walk("", &mut |rel| {
            let parts: Vec<&str> = rel.split('/').collect();
            if parts.len() == glob.len() && path_matches(&glob, &parts) && !self.ignored(rel) {
                out.push(Source {
                    path: rel.to_string(),
                    name: parts.last().copied().unwrap_or_default().to_string(),
                });
            }
        })?;
        if out.is_empty() {
            return Err(Error::Invalid(format!(
                "COPY failed: no source files were specified (nothing matches {pattern})"
            )));
        }
        Ok(out)
    }

    /// Calls `f` with every path under `rel` (depth first, sorted).
    fn walk(&self, rel: &str, f: &mut dyn FnMut(&str)) -> Result<(), Error> {
        for n in sorted_names(&self.root.join(rel))? {
            let child = if rel.is_empty() {
                n
            } else {
                format!("{rel}/{n}")
            };
            f(&child);
            if self.root.join(&child).is_dir() && !self.root.join(&child).is_symlink() {
                self.walk(&child, f)?;
            }
        }
        Ok(())
    }

    /// Appends `src` (a path in the tree) to a layer as `dest` (a path in the image, no
    /// leading slash): a directory's contents go under `dest`, with `meta` applied, links
    /// kept as links, ignored files left out.
    pub fn append(
        &self,
        tar: &mut tar::Builder<impl std::io::Write>,
        src: &str,
        dest: &str,
        meta: CopyMeta,
    ) -> Result<(), Error> {
        let copy = meta;
        let path = self.root.join(src);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        let ctx = || Error::io(format!("adding {src} to the layer"));
        let mut header = tar::Header::new_gnu();
        {
            use std::os::unix::fs::MetadataExt;
            header.set_mode(copy.mode.unwrap_or(meta.mode() & 0o7777));
            let mtime = meta.mtime().max(0);
            let mtime = copy.max_mtime.map_or(mtime, |m| mtime.min(m));
            header.set_mtime(mtime as u64);
            let (uid, gid) = copy.owner.unwrap_or((meta.uid(), meta.gid()));
            header.set_uid(uid.into());
            header.set_gid(gid.into());
        }
        if meta.file_type().is_symlink() {
            header.set_mode(0o777);
            let target = std::fs::read_link(&path).map_err(ctx())?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            tar.append_link(&mut header, dest, target).map_err(ctx())?;
        } else if meta.is_dir() {
            if !dest.is_empty() {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, format!("{dest}/"), std::io::empty())
                    .map_err(ctx())?;
            }
            for n in sorted_names(&path)? {
                let child = if src.is_empty() {
                    n.clone()
                } else {
                    format!("{src}/{n}")
                };
                if self.ignored(&child) {
                    continue;
                }
                let to = if dest.is_empty() {
                    n
                } else {
                    format!("{dest}/{n}")
                };
                self.append(tar, &child, &to, copy)?;
            }
        } else if meta.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = std::fs::File::open(&path).map_err(ctx())?;
            tar.append_data(&mut header, dest, file).map_err(ctx())?;
        }
        Ok(())
    }

    /// Feeds what a COPY of `src` depends on into a cache key: every name, mode and link
    /// target under it, and every file's bytes (not its mtime: an edit that keeps size and
    /// time still misses).
    pub fn hash(&self, key: &mut crate::cache::Key, src: &str) -> Result<(), Error> {
        use std::os::unix::fs::MetadataExt;
        let path = self.root.join(src);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        key.add(src.as_bytes());
        key.add(&meta.mode().to_le_bytes());
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)
                .map_err(Error::io(format!("reading {}", path.display())))?;
            key.add(target.to_string_lossy().as_bytes());
        } else if meta.is_dir() {
            for n in sorted_names(&path)? {
                let child = if src.is_empty() {
                    n
                } else {
                    format!("{src}/{n}")
                };
                if !self.ignored(&child) {
                    self.hash(key, &child)?;
                }
            }
        } else if meta.is_file() {
            key.add(&meta.len().to_le_bytes());
            key.add_file(&path)?;
        }
        Ok(())
    }

    /// The host path of `rel`, a path [`Context::sources`] returned.
    pub fn host_path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Whether `rel` is a directory of the context.
    pub fn is_dir(&self, rel: &str) -> bool {
        let p = self.root.join(rel);
        p.is_dir() && !p.is_symlink()
    }
}

/// Whether a relative path written in a Dockerfile leads above its root (`../x`, `a/../../x`).
fn climbs_out(path: &str) -> bool {
    let mut depth = 0i32;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Unpacks a tar context (plain, gzip, zstd, bzip2 or xz) into `dir` (a scratch folder), with the image
/// crate's layer extraction, which refuses any entry that would land outside it.
pub fn unpack_tar(dir: &Path, file: &Path) -> Result<(), Error> {
    let f = std::fs::File::open(file).map_err(Error::io(format!("reading {}", file.display())))?;
    let tar = berth_image::compress::decompress_archive(f)
        .map_err(Error::io(format!("reading {}", file.display())))?;
    berth_image::apply::apply_layer(dir, tar).map_err(|e| {
        Error::Invalid(format!(
            "unpacking the build context {}: {e}",
            file.display()
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(patterns: &str, path: &str, expected: bool) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), patterns).unwrap();
        let c = Context::open(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        assert_eq!(c.ignored(path), expected, "{patterns:?} on {path}");
    }

    #[test]
    fn dockerignore_rules() {
        check("*.pyc", "a.pyc", true);
        check("*.pyc", "src/a.pyc", false);
        check("**/*.pyc", "src/deep/a.pyc", true);
        check("**/*.pyc", "a.pyc", true);
        check("build", "build/x/y", true);
        check("*.md\n!README.md", "README.md", false);
        check("*.md\n!README.md", "CHANGES.md", true);
        check("/tmp/", "tmp/x", true);
        check("./secret", "secret", true);
        check("a?c", "abc", true);
        check("[a-c]x", "bx", true);
        check("[a-c]x", "dx", false);
        check("# comment\n", "# comment", false);
    }

    #[test]
    fn paths_that_climb_out() {
        assert!(climbs_out("../x"));
        assert!(climbs_out("a/../../x"));
        assert!(climbs_out(".."));
        assert!(!climbs_out("a/../x"));
        assert!(!climbs_out("/x"));
        assert!(!climbs_out("./x/.."));
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/"), "");
    }
}
