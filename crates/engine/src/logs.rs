//! Docker's json-file log: one JSON object per line of output,
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-25T17:40:00.123456789Z"}`, so tools that
//! read Docker's logs read berth's.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
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

/// Copies a stream of the container into the log, one record per line, until EOF, and
/// passes every chunk on to the attached clients as it comes.
pub fn copy_stream(
    mut from: impl Read,
    stream: &'static str,
    log: Arc<Mutex<File>>,
    hub: Option<Arc<crate::attach::Hub>>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let flush = |line: &[u8]| {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: stream.to_string(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        let mut text = serde_json::to_vec(&entry).expect("entry serialises");
        text.push(b'\n');
        if let Ok(mut f) = log.lock() {
            let _ = f.write_all(&text);
        }
    };
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(hub) = &hub {
            let kind = if stream == "stderr" {
                crate::attach::STDERR
            } else {
                crate::attach::STDOUT
            };
            hub.broadcast(kind, &buf[..n]);
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            flush(&line);
        }
    }
    if !pending.is_empty() {
        flush(&pending);
    }
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
mod tests {
    use super::*;

    #[test]
    fn lines_become_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let log = Arc::new(Mutex::new(File::create(&path).unwrap()));
        copy_stream(&b"one\ntwo\nthree"[..], "stdout", log, None);
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
