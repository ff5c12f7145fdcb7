//! Parser directives: `# syntax=`, `# escape=`, `# check=` at the top of the file.
//!
//! Directives must be read before anything else because `escape` changes how
//! every later line is split. As in BuildKit they are only recognised in the
//! leading run of `# key=value` comment lines: the first line that is not one
//! (a blank line, another comment, an instruction, an unknown key) ends the run.

use crate::error::{Diagnostic, DiagnosticKind, Position, Span};

/// One recognised directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased key: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value with surrounding whitespace removed.
    pub value: String,
    /// The whole directive line.
    pub span: Span,
}

/// The directives in effect for the file.
///
/// `syntax` is recorded but never acted on: fetching a frontend image is the
/// build engine's decision, and this crate does no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` unless `# escape=` said `` ` ``.
    pub escape: char,
    /// Every recognised directive, in file order.
    pub list: Vec<Directive>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            list: Vec::new(),
        }
    }
}

impl Directives {
    /// The directive with this (lower-case) name, if given.
    pub fn get(&self, name: &str) -> Option<&Directive> {
        self.list.iter().find(|d| d.name == name)
    }

    /// The `# syntax=` frontend reference, which callers may want to honour or reject.
    pub fn syntax(&self) -> Option<&str> {
        self.get("syntax").map(|d| d.value.as_str())
    }

    /// The `# check=` lint configuration, unparsed.
    pub fn check(&self) -> Option<&str> {
        self.get("check").map(|d| d.value.as_str())
    }
}

const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// Splits `# key = value` into key and value, as BuildKit's directive regex does.
fn match_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((key, value))
}

/// Reads the leading directives. Returns them and how many lines they occupy.
pub(crate) fn parse(lines: &[&str], diags: &mut Vec<Diagnostic>) -> (Directives, usize) {
    let mut out = Directives::default();
    let mut count = 0;
    for (i, raw) in lines.iter().enumerate() {
        let text = raw.trim_end_matches(['\r', '\n']);
        let trimmed = text.trim_start();
        let Some((key, value)) = match_directive(trimmed) else {
            break;
        };
        let name = key.to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            break;
        }
        count = i + 1;
        let lead = text.chars().count() - trimmed.chars().count();
        let span = Span::new(
            Position::new(i + 1, lead + 1),
            Position::new(i + 1, text.chars().count() + 1),
        );
        if out.get(&name).is_some() {
            diags.push(Diagnostic::new(
                DiagnosticKind::DuplicateDirective(name),
                span,
            ));
            continue;
        }
        if name == "escape" {
            match value {
                "\\" => out.escape = '\\',
                "`" => out.escape = '`',
                other => diags.push(Diagnostic::new(
                    DiagnosticKind::InvalidEscapeToken(other.to_string()),
                    span,
                )),
            }
        }
        out.list.push(Directive {
            name,
            value: value.to_string(),
            span,
        });
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected`: (escape, [(name, value)], number of directive lines, diagnostic messages).
    fn check(input: &str, expected: (char, &[(&str, &str)], usize, &[&str])) {
        let lines: Vec<&str> = input.split_inclusive('\n').collect();
        let mut diags = Vec::new();
        let (d, n) = parse(&lines, &mut diags);
        let got: Vec<(&str, &str)> = d
            .list
            .iter()
            .map(|d| (d.name.as_str(), d.value.as_str()))
            .collect();
        let msgs: Vec<String> = diags.iter().map(|d| d.kind.to_string()).collect();
        let msgs: Vec<&str> = msgs.iter().map(String::as_str).collect();
        assert_eq!(
            (d.escape, got.as_slice(), n, msgs.as_slice()),
            expected,
            "input {input:?}"
        );
    }

    #[test]
    fn directives() {
        check(
            "# syntax=docker/dockerfile:1\nFROM x\n",
            ('\\', &[("syntax", "docker/dockerfile:1")], 1, &[]),
        );
        check(
            "#ESCAPE = `\n# Syntax=a b \n",
            ('`', &[("escape", "`"), ("syntax", "a b")], 2, &[]),
        );
        check(
            "  # check=skip=all;error=true\n",
            ('\\', &[("check", "skip=all;error=true")], 1, &[]),
        );
        // A blank line, another comment or an unknown key ends the directive block.
        check("\n# escape=`\n", ('\\', &[], 0, &[]));
        check("# hello\n# escape=`\n", ('\\', &[], 0, &[]));
        check("# foo=bar\n# escape=`\n", ('\\', &[], 0, &[]));
        check("FROM x\n# escape=`\n", ('\\', &[], 0, &[]));
        check("# escape=\n", ('\\', &[], 0, &[]));
        check(
            "# escape=`\n# escape=\\\n",
            (
                '`',
                &[("escape", "`")],
                2,
                &["only one escape parser directive can be used"],
            ),
        );
        check(
            "# escape=x\n",
            (
                '\\',
                &[("escape", "x")],
                1,
                &["invalid escape token 'x' does not match ` or \\"],
            ),
        );
    }
}
