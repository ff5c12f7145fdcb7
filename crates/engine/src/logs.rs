//! Docker's json-file log: one JSON object per line of output,
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-25T17:40:00.123456789Z"}`, so tools that
//! read Docker's logs read berth's.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The text, with its newline.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
}

/// The longest log record; longer output is split, as by Docker's json-file driver.
const MAX_LINE: usize = 16 * 1024;

/// One stream of the container (stdout, stderr, or a pty's output) on its way into the log,
/// one record per line, and to the attached clients as each chunk comes (and, for a
/// foreground `run`, to the caller's own stdout or stderr). The monitor feeds it from its
/// single waiting loop ([`crate::pump`]).
pub struct StreamLog {
    stream: &'static str,
    log: Arc<Mutex<File>>,
    hub: Option<Arc<crate::attach::Hub>>,
    /// The foreground caller's stream, written as each chunk comes.
    echo: Option<File>,
    /// Output since the last newline.
    pending: Vec<u8>,
}

impl StreamLog {
    /// `stream` is `stdout` or `stderr`, as the records and the attach frames name it.
    pub fn new(
        stream: &'static str,
        log: Arc<Mutex<File>>,
        hub: Option<Arc<crate::attach::Hub>>,
    ) -> StreamLog {
        StreamLog {
            stream,
            log,
            hub,
            echo: None,
            pending: Vec::new(),
        }
    }

    /// Also writes the output to `to` (a foreground `run`'s own stdout or stderr), as the
    /// Docker CLI prints what it reads from an attached container. The write blocks the
    /// monitor's loop while the reader does not read, as a pipe would block the container
    /// (`berth run … | sleep 100` holds the container's output too). Where Docker's CLI
    /// would die of the reader going away and leave the container running, the stream is
    /// closed, so the container sees EPIPE, as in a pipeline of its own; another write
    /// error (a terminal hung up) only ends the echo.
    pub fn echo(mut self, to: Option<File>) -> StreamLog {
        self.echo = to;
        self
    }

    /// Takes one chunk of output: to the caller and the clients now, to the log line by
    /// line. Returns false once the caller's end of the echo is closed (`berth run … |
    /// head -1`): the stream should then be closed too, so that the container's next write
    /// fails as it would in a pipeline of its own.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        let mut open = true;
        if let Some(echo) = &mut self.echo {
            if let Err(e) = echo.write_all(bytes) {
                open = e.kind() != std::io::ErrorKind::BrokenPipe;
                self.echo = None;
            }
        }
        if let Some(hub) = &self.hub {
            let kind = if self.stream == "stderr" {
                crate::attach::STDERR
            } else {
                crate::attach::STDOUT
            };
            hub.broadcast(kind, bytes);
        }
        self.pending.extend_from_slice(bytes);
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            self.record(&line);
        }
        // Docker splits what has no newline at 16 KiB: a container printing without end of
        // line cannot grow the monitor's memory (which lies outside its cgroup).
        while self.pending.len() >= MAX_LINE {
            let part: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            self.record(&part);
        }
        open
    }

    /// The stream ended: what came after the last newline becomes a record too.
    pub fn finish(mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.record(&rest);
        }
    }

    fn record(&self, line: &[u8]) {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: self.stream.to_string(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        let mut text = serde_json::to_vec(&entry).expect("entry serialises");
        text.push(b'\n');
        if let Ok(mut f) = self.log.lock() {
            let _ = f.write_all(&text);
        }
    }
}

/// Parses `logs --since/--until` as Docker does: an RFC 3339 time (`2026-12-02T10:00:00Z`,
/// a date, or a time without zone, read as UTC), Unix seconds (`1764669600.5`), or a Go
/// duration before `now` (`42m`, `1h30m`, `10s`).
pub fn parse_time(
    s: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, crate::Error> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    let bad = || {
        crate::Error::Invalid(format!(
            "invalid value for \"since\"/\"until\": {s:?}: use an RFC 3339 time, Unix seconds or a duration such as 10m"
        ))
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).ok_or_else(bad)?));
    }
    if let Ok(secs) = s.parse::<f64>() {
        let nanos = (secs * 1e9) as i64;
        return Ok(Utc.timestamp_nanos(nanos));
    }
    // A Go duration: numbers with h, m, s, ms units, in sequence.
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Ok(now - chrono::Duration::milliseconds((total * 1000.0) as i64))
}

/// Reads the records of a log file (missing file: none).
pub fn read(path: &Path) -> Vec<Entry> {
    let Ok(f) = File::open(path) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

#[cfg(test)]
mod time_tests {
    use super::parse_time;

    fn check(s: &str, expected: &str) {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let got = match parse_time(s, now) {
            Ok(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{s}");
    }

    #[test]
    fn since_and_until() {
        check("2026-12-02T09:00:00Z", "2026-12-02T09:00:00Z");
        check("2026-12-02T09:00:00+01:00", "2026-12-02T08:00:00Z");
        check("2026-12-01", "2026-12-01T00:00:00Z");
        check("1764669600", "2025-12-02T10:00:00Z");
        check("10m", "2026-12-02T09:50:00Z");
        check("1h30m", "2026-12-02T08:30:00Z");
        check(
            "soon",
            "error: invalid value for \"since\"/\"until\": \"soon\": use an RFC 3339 time, Unix seconds or a duration such as 10m",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let log = Arc::new(Mutex::new(File::create(&path).unwrap()));
        let mut stream = StreamLog::new("stdout", log, None);
        stream.feed(b"one\ntw");
        stream.feed(b"o\nthree");
        stream.finish();
        let got: Vec<(String, String)> =
            read(&path).into_iter().map(|e| (e.log, e.stream)).collect();
        assert_eq!(
            got,
            [
                ("one\n".to_string(), "stdout".to_string()),
                ("two\n".into(), "stdout".into()),
                ("three".into(), "stdout".into())
            ]
        );
    }
}
