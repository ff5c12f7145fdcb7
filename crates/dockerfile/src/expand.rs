//! Docker's variable substitution and word splitting.
//!
//! This follows BuildKit's `frontend/dockerfile/shell` lexer rather than a real
//! shell: quotes and the escape character are processed, `$NAME` and
//! `${NAME...}` are replaced, and nothing is executed. The build engine calls
//! [`expand_word`] / [`expand_words`] on the arguments of the instructions for
//! which [`crate::Keyword::expands_variables`] is true.
//!
//! Known approximations: Go's `unicode.IsLetter`/`IsDigit` are approximated by
//! Rust's `is_alphabetic`/`is_numeric`, and the `#`, `%` and `/` pattern
//! operators pick the globally shortest/longest match instead of Go's
//! regexp backtracking order (identical for patterns with at most one `*`).

use crate::error::{ExpandError, ExpandErrorKind};

/// Expands variables and removes quotes and escapes, keeping the result as one word.
///
/// `lookup` returns `None` for an unset variable and `Some("")` for one set to
/// empty; the difference matters to `${V-x}` versus `${V:-x}`.
pub fn expand_word<F>(word: &str, escape: char, lookup: F) -> Result<String, ExpandError>
where
    F: Fn(&str) -> Option<String>,
{
    Lexer::new(word, escape, &lookup).run().map(|(w, _)| w)
}

/// Expands like [`expand_word`], then splits on unquoted whitespace.
///
/// Whitespace that came from an unquoted variable splits too, as in a shell;
/// whitespace inside quotes does not. Empty words are dropped.
pub fn expand_words<F>(word: &str, escape: char, lookup: F) -> Result<Vec<String>, ExpandError>
where
    F: Fn(&str) -> Option<String>,
{
    Lexer::new(word, escape, &lookup).run().map(|(_, ws)| ws)
}

/// Expands variables in a heredoc body (`COPY <<EOF` with an unquoted delimiter): quotes and
/// escape characters stay as written, since the body is file content, not a word.
pub fn expand_heredoc<F>(body: &str, escape: char, lookup: F) -> Result<String, ExpandError>
where
    F: Fn(&str) -> Option<String>,
{
    let mut lx = Lexer::new(body, escape, &lookup);
    lx.raw_quotes = true;
    lx.raw_escapes = true;
    lx.run().map(|(w, _)| w)
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The lexer with BuildKit's knobs; the heredoc detector needs the raw modes.
pub(crate) struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    /// Keep quote characters in the output.
    pub(crate) raw_quotes: bool,
    /// Keep escape characters in the output.
    pub(crate) raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub(crate) skip_unset: bool,
    lookup: Lookup<'a>,
}

/// Accumulates split words the way BuildKit does, including its quirk that
/// an empty quoted string produces no word.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(word: &str, escape: char, lookup: Lookup<'a>) -> Self {
        Lexer {
            chars: word.chars().collect(),
            pos: 0,
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            lookup,
        }
    }

    /// Processes the whole input, returning the single word and the split words.
    pub(crate) fn run(mut self) -> Result<(String, Vec<String>), ExpandError> {
        let raw = self.raw_escapes;
        self.stop_on(None, raw)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn fail(&self, at: usize, kind: ExpandErrorKind) -> ExpandError {
        ExpandError {
            column: at + 1,
            kind,
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_string(&s);
                }
                '\'' => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                _ => {
                    self.pos += 1;
                    let mut ch = ch;
                    if ch == self.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        match self.next() {
                            // A trailing escape is dropped.
                            None => break,
                            Some(c) => {
                                ch = c;
                                words.add_raw_char(c);
                            }
                        }
                    } else {
                        words.add_char(ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(self.fail(self.pos, ExpandErrorKind::UnexpectedEnd(stop)));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        if self.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(self.fail(start, ExpandErrorKind::UnterminatedSingleQuote)),
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        if self.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(self.fail(start, ExpandErrorKind::UnterminatedDoubleQuote)),
                Some('"') => {
                    self.pos += 1;
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let s = self.dollar()?;
                    out.push_str(&s);
                }
                Some(c) => {
                    self.pos += 1;
                    let mut ch = c;
                    if c == self.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                ch = n;
                                self.pos += 1;
                            }
                            // Other escapes stay literal inside double quotes.
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.pos += 1;
                return ch.to_string();
            }
            if !(ch.is_alphabetic() || ch.is_numeric() || ch == '_') {
                break;
            }
            self.pos += 1;
            name.push(ch);
        }
        name
    }

    /// Runs `stop_on(stop)` and turns "ran out of input" into `eof_kind`.
    fn section(
        &mut self,
        stop: char,
        raw: bool,
        start: usize,
        eof_kind: ExpandErrorKind,
    ) -> Result<String, ExpandError> {
        match self.stop_on(Some(stop), raw) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(self.fail(start, eof_kind)),
            Err(e) => Err(e),
        }
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        let start = self.pos;
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get(&name) {
                Some(v) => v,
                None if self.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(self.fail(start, ExpandErrorKind::MissingBrace)),
            Some('{' | '}' | ':') => {
                return Err(self.fail(start, ExpandErrorKind::BadSubstitution));
            }
            _ => {}
        }
        let name = self.name();
        let ch = self.next();
        match ch {
            None => Err(self.fail(start, ExpandErrorKind::MissingBrace)),
            Some('}') => Ok(match self.get(&name) {
                Some(v) => v,
                None if self.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut chs = ch.map(String::from).unwrap_or_default();
                let null_is_unset = ch == Some(':');
                let op = if null_is_unset {
                    let op = self.next();
                    chs.extend(op);
                    op
                } else {
                    ch
                };
                let raw = matches!(op, Some('#' | '%'));
                let word = self.section('}', raw, start, ExpandErrorKind::MissingBrace)?;
                let value = self.get(&name);
                if self.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let unset = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match op {
                    Some('-') => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if unset { String::new() } else { word }),
                    Some('?') => {
                        if unset {
                            let message = if !word.is_empty() {
                                word
                            } else if value.is_none() {
                                "is not allowed to be unset".to_string()
                            } else {
                                "is not allowed to be empty".to_string()
                            };
                            return Err(
                                self.fail(start, ExpandErrorKind::Required { name, message })
                            );
                        }
                        Ok(value.unwrap_or_default())
                    }
                    Some(op @ ('#' | '%')) => {
                        let value = value.unwrap_or_default();
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(p) => (true, p.to_string()),
                            None => (false, word),
                        };
                        let toks = compile(&pattern).map_err(|reason| {
                            self.fail(start, ExpandErrorKind::InvalidPattern { pattern, reason })
                        })?;
                        Ok(if op == '#' {
                            trim_prefix(&value, &toks, greedy)
                        } else {
                            trim_suffix(&value, &toks, greedy)
                        })
                    }
                    _ => Err(self.fail(start, ExpandErrorKind::UnsupportedModifier(chs))),
                }
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = self.section('/', true, start, ExpandErrorKind::MissingSlash)?;
                let replacement = self.section('}', true, start, ExpandErrorKind::MissingBrace)?;
                let value = self.get(&name);
                if self.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let toks = compile(&pattern).map_err(|reason| {
                    self.fail(start, ExpandErrorKind::InvalidPattern { pattern, reason })
                })?;
                Ok(replace(
                    &value.unwrap_or_default(),
                    &toks,
                    &replacement,
                    all,
                ))
            }
            Some(c) => Err(self.fail(start, ExpandErrorKind::UnsupportedModifier(c.to_string()))),
        }
    }
}

/// One element of a shell pattern (no bracket expressions, as in BuildKit).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

fn compile(pattern: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        match cs[i] {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '\\' => match cs.get(i + 1) {
                // `\}` and `\/` only protect the ${} syntax; the backslash is not part of the pattern.
                Some('}' | '/') => {}
                Some(&c @ ('*' | '?' | '\\')) => {
                    out.push(Tok::Lit(c));
                    i += 1;
                }
                Some(c) => return Err(format!("invalid escape '\\{c}'")),
                None => return Err("invalid escape at end of pattern".to_string()),
            },
            c => out.push(Tok::Lit(c)),
        }
        i += 1;
    }
    Ok(out)
}

/// Whole-string glob match by dynamic programming over (pattern, text) prefixes.
fn glob_match(p: &[Tok], s: &[char]) -> bool {
    let mut row = vec![false; s.len() + 1];
    row[0] = true;
    for tok in p {
        let mut next = vec![false; s.len() + 1];
        for j in 0..=s.len() {
            next[j] = match tok {
                Tok::Star => row[j] || (j > 0 && next[j - 1]),
                Tok::Any => j > 0 && row[j - 1],
                Tok::Lit(c) => j > 0 && row[j - 1] && s[j - 1] == *c,
            };
        }
        row = next;
    }
    row[s.len()]
}

fn trim_prefix(value: &str, p: &[Tok], greedy: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let mut lens: Vec<usize> = (0..=v.len()).collect();
    if greedy {
        lens.reverse();
    }
    match lens.into_iter().find(|&l| glob_match(p, &v[..l])) {
        Some(l) => v[l..].iter().collect(),
        None => value.to_string(),
    }
}

fn trim_suffix(value: &str, p: &[Tok], greedy: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let mut starts: Vec<usize> = (0..=v.len()).collect();
    if !greedy {
        starts.reverse();
    }
    match starts.into_iter().find(|&s| glob_match(p, &v[s..])) {
        Some(s) => v[..s].iter().collect(),
        None => value.to_string(),
    }
}

/// Replaces the leftmost (longest) match, or every non-overlapping match.
fn replace(value: &str, p: &[Tok], replacement: &str, all: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut prev_end: Option<usize> = None;
    let mut replaced = false;
    while i <= v.len() {
        let end = if replaced && !all {
            None
        } else {
            (i..=v.len()).rev().find(|&e| glob_match(p, &v[i..e]))
        };
        match end {
            Some(e) if !(e == i && prev_end == Some(i)) => {
                out.push_str(replacement);
                replaced = true;
                prev_end = Some(e);
                if e == i {
                    out.extend(v.get(i));
                    i += 1;
                } else {
                    i = e;
                }
            }
            _ => {
                out.extend(v.get(i));
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PWD" => Some("/home".into()),
            "FILE" => Some("dir/archive.tar.gz".into()),
            "EMPTY" => Some(String::new()),
            "SPACE" => Some("a  b".into()),
            _ => None,
        }
    }

    fn check(input: &str, expected: Result<&str, ()>) {
        let got = expand_word(input, '\\', env).map_err(|_| ());
        assert_eq!(got.as_deref(), expected.as_deref(), "input {input:?}");
    }

    #[test]
    fn patterns_and_operators() {
        check("${FILE#*/}", Ok("archive.tar.gz"));
        check("${FILE##*.}", Ok("gz"));
        check("${FILE%.*}", Ok("dir/archive.tar"));
        check("${FILE%%.*}", Ok("dir/archive"));
        check("${FILE/a/A}", Ok("dir/Archive.tar.gz"));
        check("${FILE//a/A}", Ok("dir/Archive.tAr.gz"));
        check("${FILE/x/y}", Ok("dir/archive.tar.gz"));
        check("${FILE/a", Err(()));
        check("${EMPTY-x}", Ok(""));
        check("${EMPTY:-x}", Ok("x"));
        check("${EMPTY?}", Ok(""));
        check("${EMPTY:?custom}", Err(()));
        check("${PWD:=x}", Err(()));
        check("`$PWD", Ok("`/home"));
    }

    #[test]
    fn backtick_escape() {
        let got = expand_word("a`$PWD` b", '`', env).unwrap();
        assert_eq!(got, "a$PWD b");
        let got = expand_words("$SPACE \"$SPACE\"", '`', env).unwrap();
        assert_eq!(got, vec!["a", "b", "a  b"]);
    }

    #[test]
    fn error_carries_column() {
        let err = expand_word("ab${x", '\\', env).unwrap_err();
        assert_eq!(err.column, 3);
        assert_eq!(err.kind, ExpandErrorKind::MissingBrace);
        let err = expand_word("x ${N:?must set}", '\\', env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to process word at column 3: N: must set"
        );
    }
}
