//! Builder flags (`--name=value`, `--name`) between the keyword and the arguments.
//!
//! Flags are taken off the front of the arguments until the first word that
//! does not start with `--` (a lone `--` ends the flags and is dropped). Quotes
//! and backslashes inside flag words are removed, as BuildKit does, because
//! values such as `--mount=type=secret,id="a b"` are common.

use crate::error::{Diagnostic, DiagnosticKind, Span};
use crate::instruction::Keyword;
use crate::lines::LogicalLine;

/// One `--name[=value]` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Name without the leading `--`.
    pub name: String,
    /// `None` for `--name`, `Some("")` for `--name=`.
    pub value: Option<String>,
    /// The flag word in the source.
    pub span: Span,
}

/// Splits leading flag words off `args` (which starts at character `base` of the
/// logical line). Returns (flag text, char offset, char length) and the char
/// offset where the remaining arguments start.
fn split(args: &[char], base: usize) -> (Vec<(String, usize, usize)>, usize) {
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < args.len() && args[i].is_whitespace() {
            i += 1;
        }
        if i + 1 >= args.len() || args[i] != '-' || args[i + 1] != '-' {
            return (flags, base + i);
        }
        let start = i;
        let mut word = String::new();
        let mut quote = None;
        while i < args.len() {
            let c = args[i];
            match quote {
                None if c.is_whitespace() => break,
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if let Some(&n) = args.get(i + 1) {
                        word.push(n);
                        i += 1;
                    }
                }
                _ => word.push(c),
            }
            i += 1;
        }
        if word == "--" {
            return (flags, base + i);
        }
        flags.push((word, base + start, i - start));
    }
}

/// Which flags each instruction takes: (name, kind).
fn allowed(keyword: Keyword) -> &'static [(&'static str, Kind)] {
    use Kind::*;
    match keyword {
        Keyword::From => &[("platform", Value)],
        Keyword::Run => &[
            ("mount", Repeat),
            ("network", Value),
            ("security", Value),
            ("device", Repeat),
        ],
        Keyword::Copy => &[
            ("from", Value),
            ("chown", Value),
            ("chmod", Value),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Repeat),
        ],
        Keyword::Add => &[
            ("chown", Value),
            ("chmod", Value),
            ("link", Bool),
            ("checksum", Value),
            ("keep-git-dir", Bool),
            ("exclude", Repeat),
            ("unpack", Bool),
        ],
        Keyword::Healthcheck => &[
            ("interval", Duration),
            ("timeout", Duration),
            ("start-period", Duration),
            ("start-interval", Duration),
            ("retries", Count),
        ],
        _ => &[],
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Needs a value, at most once.
    Value,
    /// Needs a value, may repeat.
    Repeat,
    /// Optional true/false value, at most once.
    Bool,
    /// A Go duration (`30s`, `1m30s`) of at least 1ms, or 0; at most once.
    Duration,
    /// A non-negative integer; at most once.
    Count,
}

/// Parses Go's `time.ParseDuration` syntax into nanoseconds (HEALTHCHECK timings): the
/// parser checks flag values with it, and the builder turns them into the image config's.
pub fn go_duration_nanos(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..n];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Some(if neg { -total } else { total })
}

/// Checks a HEALTHCHECK value, returning BuildKit's complaint if it is bad.
fn value_problem(kind: Kind, name: &str, value: &str) -> Option<String> {
    match kind {
        Kind::Duration => match go_duration_nanos(value) {
            None => Some(format!("time: invalid duration {value:?}")),
            Some(ns) if ns != 0.0 && ns < 1e6 => {
                Some(format!("Interval \"--{name}\" cannot be less than 1ms"))
            }
            Some(_) => None,
        },
        Kind::Count => match value.parse::<i64>() {
            Err(_) => Some(format!("invalid integer {value:?}")),
            Ok(n) if n < 0 => Some(format!("--retries cannot be negative ({n})")),
            Ok(_) => None,
        },
        _ => None,
    }
}

/// Extracts the flags from `ll.text[base..]`, validating them against `keyword`
/// (if known). Returns the flags and the char offset where the arguments start.
pub(crate) fn extract(
    ll: &LogicalLine,
    chars: &[char],
    base: usize,
    keyword: Option<Keyword>,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<Flag>, usize) {
    let (raw, rest) = split(&chars[base..], base);
    let mut flags: Vec<Flag> = Vec::new();
    for (word, at, len) in raw {
        let span = Span::new(ll.position(at), ll.position(at + len));
        let body = word.strip_prefix("--").unwrap_or(&word);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        if let Some(kw) = keyword {
            let kind = allowed(kw)
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, k)| *k);
            let problem = match kind {
                None => Some(DiagnosticKind::UnknownFlag {
                    instruction: kw.as_str().to_string(),
                    flag: name.clone(),
                }),
                Some(k) if k != Kind::Repeat && flags.iter().any(|f| f.name == name) => {
                    Some(DiagnosticKind::DuplicateFlag(name.clone()))
                }
                Some(Kind::Bool) => match value.as_deref().map(str::to_ascii_lowercase) {
                    None => None,
                    Some(v) if v.is_empty() || v == "true" || v == "false" => None,
                    Some(_) => Some(DiagnosticKind::InvalidBoolFlag {
                        flag: name.clone(),
                        value: value.clone().unwrap_or_default(),
                    }),
                },
                Some(_) if value.is_none() => Some(DiagnosticKind::MissingFlagValue(name.clone())),
                Some(k) => {
                    value_problem(k, &name, value.as_deref().unwrap_or_default()).map(|reason| {
                        DiagnosticKind::InvalidFlagValue {
                            flag: name.clone(),
                            reason,
                        }
                    })
                }
            };
            diags.extend(problem.map(|k| Diagnostic::new(k, span)));
        }
        flags.push(Flag { name, value, span });
    }
    (flags, rest)
}
