//! runc's error and debug output: logrus lines (`time="…" level=error msg="…"`), or JSON
//! objects with `--log-format json`, in the `--log` file or on standard error. When the log
//! is a file, an error is also printed plainly on standard error, as runc's `fatal` does.

use std::fs::File;
use std::io::Write;

use super::args::{Global, LogFormat};
use super::Error;

/// Where log lines go.
pub struct Logger {
    file: Option<File>,
    format: LogFormat,
    debug: bool,
}

impl Logger {
    /// Opens (appends to) `--log`, creating it.
    pub fn open(g: &Global) -> Result<Logger, Error> {
        let file = match &g.log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| Error::Io {
                        what: "opening log file",
                        path: path.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        Ok(Logger {
            file,
            format: g.log_format,
            debug: g.debug,
        })
    }

    /// A debug line, with `--debug` only.
    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    /// An error: in the log, and on standard error if the log is a file.
    pub fn error(&self, msg: &str) {
        self.write("error", msg);
        if self.file.is_some() {
            eprintln!("{msg}");
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let line = format_line(self.format, level, msg, &now());
        match &self.file {
            Some(f) => {
                let mut f: &File = f;
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// One log line, newline-terminated.
fn format_line(format: LogFormat, level: &str, msg: &str, time: &str) -> String {
    match format {
        LogFormat::Json => {
            let v = serde_json::json!({"level": level, "msg": msg, "time": time});
            format!("{v}\n")
        }
        LogFormat::Text => {
            let quoted = serde_json::Value::String(msg.to_string());
            format!("time=\"{time}\" level={level} msg={quoted}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_logrus() {
        assert_eq!(
            format_line(LogFormat::Json, "error", "container does not exist", "T"),
            "{\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"T\"}\n"
        );
        assert_eq!(
            format_line(LogFormat::Text, "error", "unknown signal \"X\"", "T"),
            "time=\"T\" level=error msg=\"unknown signal \\\"X\\\"\"\n"
        );
    }
}
