//! Physical lines to logical lines: continuations, comments and positions.
//!
//! A logical line is one instruction's text with continuation characters
//! removed. It remembers where each piece came from so that any character in it
//! can be mapped back to a line and column of the source.

use crate::error::Position;

/// Whitespace that separates an instruction's keyword from its arguments
/// (BuildKit's `[\t\v\f\r ]`; newlines never occur inside a line).
pub(crate) fn is_token_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

pub(crate) fn trim_newline(raw: &str) -> &str {
    raw.trim_end_matches(['\r', '\n'])
}

/// Strips a trailing continuation character (and blanks after it).
///
/// Returns the remaining text and whether the line continues. An escaped
/// escape character (`\\` at the end) is not a continuation, as in BuildKit.
pub(crate) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, true);
        }
    }
    (line, false)
}

/// Where a piece of a logical line starts in the source.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Character offset in the logical text.
    offset: usize,
    line: usize,
    column: usize,
}

/// One instruction's text, joined from its physical lines.
#[derive(Debug, Clone)]
pub(crate) struct LogicalLine {
    pub text: String,
    segments: Vec<Segment>,
    /// Last physical line used, and the column just past its end.
    pub end: Position,
    /// Comments directly above the instruction (text after `#`, trimmed).
    pub comments: Vec<String>,
    /// Position of the first blank line inside the continuation, if any.
    pub empty_continuation: Option<Position>,
}

impl LogicalLine {
    /// Maps a character offset in `text` back to the source.
    pub fn position(&self, offset: usize) -> Position {
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.offset <= offset)
            .unwrap_or(&self.segments[0]);
        Position::new(seg.line, seg.column + (offset - seg.offset))
    }
}

/// A cursor over the source's physical lines.
pub(crate) struct Lines<'a> {
    lines: Vec<&'a str>,
    next: usize,
    /// Lines taken by parser directives; not reported as comments.
    directive_lines: usize,
}

impl<'a> Lines<'a> {
    pub fn new(lines: Vec<&'a str>, directive_lines: usize) -> Self {
        Lines {
            lines,
            next: 0,
            directive_lines,
        }
    }

    /// The next raw line (newline included) and its 1-based number.
    pub fn next_raw(&mut self) -> Option<(usize, &'a str)> {
        let raw = *self.lines.get(self.next)?;
        self.next += 1;
        Some((self.next, raw))
    }

    /// Assembles the next instruction's logical line, skipping blanks and comments.
    pub fn next_logical(&mut self, escape: char) -> Option<LogicalLine> {
        let mut comments = Vec::new();
        loop {
            let (number, raw) = self.next_raw()?;
            let text = trim_newline(raw);
            let trimmed = text.trim_start();
            if let Some(comment) = trimmed.strip_prefix('#') {
                if number > self.directive_lines {
                    comments.push(comment.trim().to_string());
                }
                continue;
            }
            let (first, mut continues) = trim_continuation(trimmed, escape);
            if !continues && first.is_empty() {
                continue;
            }
            let lead = text.chars().count() - trimmed.chars().count();
            let mut ll = LogicalLine {
                text: first.to_string(),
                segments: vec![Segment {
                    offset: 0,
                    line: number,
                    column: lead + 1,
                }],
                end: Position::new(number, text.chars().count() + 1),
                comments,
                empty_continuation: None,
            };
            while continues {
                let Some((number, raw)) = self.next_raw() else {
                    break;
                };
                let text = trim_newline(raw);
                ll.end = Position::new(number, text.chars().count() + 1);
                let trimmed = text.trim_start();
                if trimmed.starts_with('#') {
                    continue;
                }
                if trimmed.is_empty() {
                    ll.empty_continuation
                        .get_or_insert(Position::new(number, 1));
                    continue;
                }
                let (piece, more) = trim_continuation(text, escape);
                ll.segments.push(Segment {
                    offset: ll.text.chars().count(),
                    line: number,
                    column: 1,
                });
                ll.text.push_str(piece);
                continues = more;
            }
            return Some(ll);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected`: each logical line's text and the position of its last character.
    fn check(input: &str, escape: char, expected: &[(&str, (usize, usize))]) {
        let mut lines = Lines::new(input.split_inclusive('\n').collect(), 0);
        let mut got = Vec::new();
        while let Some(ll) = lines.next_logical(escape) {
            let last = ll.text.chars().count().saturating_sub(1);
            let p = ll.position(last);
            got.push((ll.text.clone(), (p.line, p.column)));
        }
        let got: Vec<(&str, (usize, usize))> = got.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn continuations() {
        check("RUN a \\\n  b\n", '\\', &[("RUN a   b", (2, 3))]);
        check("RUN a \\  \t\nb", '\\', &[("RUN a b", (2, 1))]);
        // Comments and blank lines inside a continuation are skipped.
        check(
            "RUN a \\\n# note \\\n\n   \n  # indented\nb \\\nc\nCMD d",
            '\\',
            &[("RUN a b c", (7, 1)), ("CMD d", (8, 5))],
        );
        // An escaped escape character does not continue the line.
        check(
            "RUN a \\\\\nCMD b",
            '\\',
            &[("RUN a \\\\", (1, 8)), ("CMD b", (2, 5))],
        );
        // With the backtick escape, a backslash is ordinary.
        check(
            "RUN a \\\nRUN b `\n c",
            '`',
            &[("RUN a \\", (1, 7)), ("RUN b  c", (3, 2))],
        );
        check("  # c\n\n\tFROM x\r\n", '\\', &[("FROM x", (3, 7))]);
        check("RUN a \\", '\\', &[("RUN a ", (1, 6))]);
    }

    #[test]
    fn blank_continuation_and_comments_recorded() {
        let mut lines = Lines::new(
            "# one\n#two\nRUN a \\\n\nb\n"
                .split_inclusive('\n')
                .collect(),
            1,
        );
        let ll = lines.next_logical('\\').unwrap();
        assert_eq!(ll.comments, vec!["two"]);
        assert_eq!(ll.empty_continuation, Some(Position::new(4, 1)));
        assert_eq!(ll.end, Position::new(5, 2));
    }
}
