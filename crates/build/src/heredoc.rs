//! `RUN` with heredocs, as BuildKit runs them: a RUN that is one heredoc and nothing else
//! runs its body as the script (a body starting with `#!` becomes an executable file, so its
//! interpreter runs it); any other RUN with heredocs gives the shell the command line with
//! the bodies and terminators after it, so the shell does the redirection, `<<-` tab
//! stripping and (for a quoted delimiter) the absence of expansion itself.

use berth_dockerfile::{CommandLine, Heredoc};

use crate::Error;

/// What a RUN executes.
pub(crate) struct RunCommand {
    /// The process's arguments.
    pub args: Vec<String>,
    /// A script file to provide at `/dev/pipes/<name>`: (name, body).
    pub script: Option<(String, String)>,
}

/// Where a script file is mounted in the RUN container (BuildKit's place).
pub(crate) const PIPES: &str = "/dev/pipes";

/// The command of a RUN with `shell` as the stage's SHELL.
pub(crate) fn command(
    line: &CommandLine,
    heredocs: &[Heredoc],
    shell: &[String],
) -> Result<RunCommand, Error> {
    let text = match line {
        CommandLine::Exec(v) if heredocs.is_empty() => {
            return Ok(RunCommand {
                args: v.clone(),
                script: None,
            })
        }
        CommandLine::Exec(_) => {
            return Err(Error::Invalid(
                "RUN in exec (JSON) form can't take a heredoc; write it in shell form".into(),
            ))
        }
        CommandLine::Shell(s) => s,
    };
    let with_shell = |script: String| shell.iter().cloned().chain([script]).collect();
    if heredocs.is_empty() {
        return Ok(RunCommand {
            args: with_shell(text.clone()),
            script: None,
        });
    }
    if let [doc] = heredocs {
        if is_only_marker(text.trim(), doc) {
            let body = doc.content();
            if body.starts_with("#!") {
                if doc.name.contains('/') || doc.name == "." || doc.name == ".." {
                    return Err(Error::Invalid(format!(
                        "heredoc name {:?} can't be a file name",
                        doc.name
                    )));
                }
                return Ok(RunCommand {
                    args: vec![format!("{PIPES}/{}", doc.name)],
                    script: Some((doc.name.clone(), body)),
                });
            }
            return Ok(RunCommand {
                args: with_shell(body),
                script: None,
            });
        }
    }
    let mut script = text.clone();
    for doc in heredocs {
        script.push('\n');
        script.push_str(&doc.body);
        if !doc.body.is_empty() && !doc.body.ends_with('\n') {
            script.push('\n');
        }
        script.push_str(&doc.name);
    }
    Ok(RunCommand {
        args: with_shell(script),
        script: None,
    })
}

/// Whether `text` is just the heredoc's marker (`<<EOF`, `<<-"EOF"`).
fn is_only_marker(text: &str, doc: &Heredoc) -> bool {
    let Some(rest) = text.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    name == doc.name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, body: &str, chomp: bool) -> Heredoc {
        let df = berth_dockerfile::parse(&format!(
            "FROM x\nRUN <<{}{name}\n{body}{name}\n",
            if chomp { "-" } else { "" }
        ));
        let mut d = df.instructions[1].heredocs[0].clone();
        d.body = body.to_string();
        d
    }

    #[test]
    fn one_heredoc_is_the_script() {
        let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
        let d = doc("EOF", "echo a\necho b\n", false);
        let c = command(&CommandLine::Shell("<<EOF".into()), &[d], &sh).unwrap();
        assert_eq!(c.args, ["/bin/sh", "-c", "echo a\necho b\n"]);
        let d = doc("PY", "#!/usr/bin/env python3\nprint(1)\n", false);
        let c = command(&CommandLine::Shell("<<PY".into()), &[d], &sh).unwrap();
        assert_eq!(c.args, ["/dev/pipes/PY"]);
        assert!(c.script.is_some());
        let d = doc("EOF", "\techo a\n", true);
        let c = command(&CommandLine::Shell("<<-EOF".into()), &[d], &sh).unwrap();
        assert_eq!(c.args[2], "echo a\n");
    }

    #[test]
    fn other_heredocs_go_to_the_shell() {
        let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
        let d = doc("EOF", "hi\n", false);
        let c = command(&CommandLine::Shell("cat <<EOF > /x".into()), &[d], &sh).unwrap();
        assert_eq!(c.args[2], "cat <<EOF > /x\nhi\nEOF");
        assert!(command(
            &CommandLine::Exec(vec!["a".into()]),
            &[doc("E", "", false)],
            &sh
        )
        .is_err());
    }
}
