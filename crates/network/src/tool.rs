//! Running the system tools networking is done with (`ip`, `nft`).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::Error;

/// Runs `program args…`, feeding `input` on stdin when given; its stderr becomes the error.
pub(crate) fn run(
    program: &str,
    package: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<(), Error> {
    let shown = || {
        let mut c = format!("{program} {}", args.join(" "));
        if let Some(i) = input {
            c.push_str(" <<< ");
            c.push_str(&i.trim().replace('\n', "; "));
        }
        c
    };
    // Straight to the system's copy: no PATH walk, and no other `ip` earlier in PATH.
    let path = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| program.into());
    let mut child = Command::new(path)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command {
            command: shown(),
            stderr: format!("{e} (is the {package} package installed?)"),
        })?;
    if let Some(i) = input {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(i.as_bytes())
            .map_err(|e| Error::Io {
                context: format!("writing to {program}"),
                source: e,
            })?;
    }
    let out = child.wait_with_output().map_err(|e| Error::Io {
        context: format!("waiting for {program}"),
        source: e,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: shown(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
