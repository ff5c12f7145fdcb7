//! COPY and ADD: sources from the context, another stage or image (`--from`), heredocs
//! (`COPY <<EOF /file`), URLs and local archives (ADD), with `--chown`, `--chmod` and
//! `--link` (accepted; every COPY is already its own layer), written as one layer tar.

use std::io::Write;
use std::path::PathBuf;

use berth_dockerfile::{Heredoc, Instruction};

use crate::context::{self, Context, CopyMeta, Source};
use crate::{add, exists, exists_dir, resolve_in_image, Builder, Error};

/// Where one source's files come from.
enum From {
    /// A file tree (the context, a view of a stage, a folder of heredoc bodies or downloads).
    Tree(Context, Source),
    /// A local tar archive ADD unpacks (a host path).
    Archive(PathBuf, String),
}

/// The heredoc a COPY/ADD source word stands for (`<<EOF`, `<<-"EOF"`), if it is one.
pub(crate) fn heredoc_source<'i>(ins: &'i Instruction, word: &str) -> Option<&'i Heredoc> {
    let rest = word.strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    ins.heredocs.iter().find(|d| d.name == name)
}

/// `--chmod`: an octal mode (`755`, `0644`).
pub(crate) fn parse_chmod(value: &str) -> Result<u32, Error> {
    match u32::from_str_radix(value, 8) {
        Ok(m) if !value.is_empty() && m <= 0o7777 => Ok(m),
        _ => Err(Error::Invalid(format!(
            "invalid --chmod={value}: give an octal mode such as 755 or 0644"
        ))),
    }
}

impl Builder<'_> {
    pub(crate) fn copy(&mut self, ins: &Instruction, paths: &[String]) -> Result<(), Error> {
        let keyword = ins.name.to_uppercase();
        let is_add = keyword == "ADD";
        if paths.len() < 2 {
            return Err(Error::Invalid(format!(
                "{keyword} requires at least two arguments, but got {}",
                paths.len()
            )));
        }
        for flag in ["parents", "exclude", "keep-git-dir", "unpack"] {
            if ins.flag(flag).is_some() {
                // Ignoring it would build something other than Docker does.
                return Err(Error::Unsupported(format!(
                    "{keyword} --{flag} is not supported yet by berth build"
                )));
            }
        }
        let (srcs, dest) = paths.split_at(paths.len() - 1);
        let dest = self.expand(&dest[0])?;
        let tree = match ins.flag("from") {
            Some(Some(f)) if !f.is_empty() => {
                let f = self.expand(f)?;
                Some(Context::plain(&self.source_view(&f, &keyword)?))
            }
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "{keyword} --from needs a value: a stage name, a stage index or an image"
                )))
            }
            None => None,
        };
        let from_other = tree.is_some();
        let tree = tree.unwrap_or_else(|| self.context.clone());
        let mode = match ins.flag("chmod") {
            Some(Some(v)) => Some(parse_chmod(&self.expand(v)?)?),
            Some(None) => return Err(parse_chmod("").expect_err("empty is invalid")),
            None => None,
        };
        let owner = match ins.flag("chown") {
            Some(Some(spec)) => Some(self.owner(spec)?),
            // Files from another stage or image keep their owners; the context's are root's.
            _ if from_other => None,
            _ => Some((0, 0)),
        };
        let meta = CopyMeta {
            owner,
            mode,
            max_mtime: self.source_date_epoch(),
        };
        let checksum = match ins.flag("checksum") {
            Some(Some(c)) => Some(self.expand(c)?),
            _ => None,
        };
        let mut sources = Vec::new();
        let mut heredoc_dir: Option<PathBuf> = None;
        for s in srcs {
            if let Some(doc) = heredoc_source(ins, s) {
                let dir = match &heredoc_dir {
                    Some(d) => d.clone(),
                    None => {
                        let d = self.scratch_dir("heredoc")?;
                        heredoc_dir = Some(d.clone());
                        d
                    }
                };
                let name = self.write_heredoc(&dir, doc)?;
                sources.push(From::Tree(
                    Context::plain(&dir),
                    Source {
                        path: name.clone(),
                        name,
                    },
                ));
                continue;
            }
            let s = self.expand(s)?;
            if add::is_url(&s) {
                if !is_add {
                    return Err(Error::Invalid(format!(
                        "COPY {s}: a source can't be a URL for COPY (use ADD)"
                    )));
                }
                let f = self.fetch(&s, ins)?;
                sources.push(From::Tree(
                    Context::plain(&f.dir),
                    Source {
                        path: f.name.clone(),
                        name: f.name.clone(),
                    },
                ));
                continue;
            }
            if checksum.is_some() {
                return Err(Error::Invalid(format!(
                    "ADD --checksum: {s} is not a URL; a checksum can only be given for an http(s) source"
                )));
            }
            for src in tree.sources(&s)? {
                let host = tree.host_path(&src.path);
                if is_add && !from_other && host.is_file() && add::is_archive(&host) {
                    sources.push(From::Archive(host, src.path));
                } else {
                    sources.push(From::Tree(tree.clone(), src));
                }
            }
        }
        let stage = self.stages.last().expect("FROM ran");
        let workdir = stage.config["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("/")
            .to_string();
        let absolute = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{}/{dest}", workdir.trim_end_matches('/'))
        };
        let lower = self.lowerdirs()?;
        // Links in the image along the way are followed inside it (as Docker does), so COPY
        // to /bin/x on a merged-/usr image lands in /usr/bin, not in a new /bin directory.
        let target = resolve_in_image(&lower, &context::clean(&absolute));
        let archives_only = sources.iter().all(|s| matches!(s, From::Archive(..)));
        let into_dir = dest.ends_with('/')
            || dest == "."
            || sources.len() > 1
            || archives_only
            || exists_dir(&lower, &target);
        if sources.len() > 1 && !dest.ends_with('/') {
            return Err(Error::Invalid(format!(
                "When using {keyword} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let file = self.scratch("copy.tar")?;
        let mut shown = Vec::new();
        {
            let out = std::fs::File::create(&file).map_err(Error::io("writing the COPY layer"))?;
            let mut tar = tar::Builder::new(std::io::BufWriter::new(out));
            // Parents the image lacks are made, root-owned 0755 as in Docker.
            let parent_of_all = if into_dir {
                target.clone()
            } else {
                target
                    .rsplit_once('/')
                    .map(|(p, _)| p.to_string())
                    .unwrap_or_default()
            };
            let mut sofar = String::new();
            for c in parent_of_all.split('/').filter(|c| !c.is_empty()) {
                sofar = if sofar.is_empty() {
                    c.to_string()
                } else {
                    format!("{sofar}/{c}")
                };
                if !exists(&lower, &sofar) {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_uid(0);
                    h.set_gid(0);
                    h.set_mtime(0);
                    h.set_size(0);
                    tar.append_data(&mut h, format!("{sofar}/"), std::io::empty())
                        .map_err(Error::io("writing the COPY layer"))?;
                }
            }
            for src in &sources {
                match src {
                    From::Archive(host, rel) => {
                        shown.push(rel.clone());
                        add::append_archive(&mut tar, host, rel, &target, meta)?;
                    }
                    From::Tree(tree, src) => {
                        shown.push(src.path.clone());
                        let to = if tree.is_dir(&src.path) {
                            // A folder's contents, not the folder.
                            target.clone()
                        } else if into_dir {
                            if target.is_empty() {
                                src.name.clone()
                            } else {
                                format!("{target}/{}", src.name)
                            }
                        } else {
                            target.clone()
                        };
                        tree.append(&mut tar, &src.path, &to, meta)?;
                    }
                }
            }
            tar.into_inner()
                .map_err(Error::io("writing the COPY layer"))?
                .flush()
                .map_err(Error::io("writing the COPY layer"))?;
        }
        self.stack_layer(
            &file,
            format!(
                "/bin/sh -c #(nop) {keyword} {} in /{target} ",
                shown.join(" ")
            ),
        )
    }

    /// Writes a COPY heredoc's body (expanded unless its delimiter was quoted) into `dir`
    /// under the heredoc's name; returns the name.
    fn write_heredoc(&self, dir: &std::path::Path, doc: &Heredoc) -> Result<String, Error> {
        let name = doc.name.clone();
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::Invalid(format!(
                "heredoc name {name:?} can't be a file name"
            )));
        }
        let body = if doc.expand {
            let stage = self.stages.last().expect("FROM ran");
            berth_dockerfile::expand::expand_heredoc(&doc.content(), self.escape, |n| {
                stage.lookup(n)
            })
            .map_err(|e| Error::Invalid(format!("heredoc {name}: {e}")))?
        } else {
            doc.content()
        };
        let path = dir.join(&name);
        std::fs::write(&path, body).map_err(Error::io(format!("writing {}", path.display())))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(Error::io(format!("writing {}", path.display())))?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_values() {
        assert_eq!(parse_chmod("755").unwrap(), 0o755);
        assert_eq!(parse_chmod("0644").unwrap(), 0o644);
        assert!(parse_chmod("abc").is_err());
        assert!(parse_chmod("999").is_err());
        assert!(parse_chmod("77777").is_err());
        assert!(parse_chmod("").is_err());
    }
}
