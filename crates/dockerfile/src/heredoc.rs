//! Heredocs: `RUN <<EOF`, `COPY <<-"EOF" /dst`, several per line.
//!
//! Markers are found the way BuildKit finds them: the instruction line is
//! split into raw words (quotes and escapes kept, always with `\` as escape),
//! and each word of the form `[fd]<<[-]NAME` opens a heredoc. Quoting any part
//! of NAME turns expansion of the body off. Bodies are read from the lines
//! that follow the instruction, in marker order.

use crate::error::Span;
use crate::expand::Lexer;

/// One heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word, quotes removed.
    pub name: String,
    /// File descriptor written before `<<` (as in `3<<EOF`), if any.
    pub fd: Option<u32>,
    /// Whether variables in the body are expanded (false when NAME was quoted).
    pub expand: bool,
    /// Whether leading tabs are stripped (`<<-`).
    pub chomp: bool,
    /// The body exactly as written, line endings included, leading tabs kept.
    ///
    /// Kept raw because BuildKit strips tabs only when it uses the body; use
    /// [`Heredoc::content`] for the text to run or write.
    pub body: String,
    /// The body lines plus the terminator line.
    pub span: Span,
}

impl Heredoc {
    /// The body as the build uses it: leading tabs removed from each line when `chomp`.
    pub fn content(&self) -> String {
        if !self.chomp {
            return self.body.clone();
        }
        self.body
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Parses one raw word as a heredoc marker (`^(\d*)<<(-?)([^<]*)$`).
fn marker(word: &str) -> Option<Heredoc> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let words = |raw_quotes: bool| {
        let mut lx = Lexer::new(rest, '\\', &no_env);
        lx.raw_quotes = raw_quotes;
        lx.skip_unset = true;
        lx.run().ok().map(|(_, w)| w)
    };
    let plain = words(false)?;
    let [name] = plain.as_slice() else {
        return None;
    };
    let raw = words(true)?;
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = raw.len() == 1 && quotes(name) == quotes(&raw[0]);
    Some(Heredoc {
        name: name.clone(),
        fd: word[..digits].parse().ok(),
        expand,
        chomp,
        body: String::new(),
        span: Span::default(),
    })
}

/// The heredoc markers in an instruction's logical line, bodies still empty.
pub(crate) fn markers(line: &str) -> Vec<Heredoc> {
    let mut lx = Lexer::new(line, '\\', &no_env);
    lx.raw_quotes = true;
    lx.raw_escapes = true;
    lx.skip_unset = true;
    match lx.run() {
        Ok((_, words)) => words.iter().filter_map(|w| marker(w)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether a physical line (newline included) ends the heredoc.
pub(crate) fn is_terminator(doc: &Heredoc, raw: &str) -> bool {
    let line = crate::lines::trim_newline(raw);
    let line = if doc.chomp {
        line.trim_start_matches('\t')
    } else {
        line
    };
    line == doc.name
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected`: (name, fd, expand, chomp) for each marker.
    fn check(input: &str, expected: &[(&str, Option<u32>, bool, bool)]) {
        let got: Vec<_> = markers(input)
            .into_iter()
            .map(|h| (h.name, h.fd, h.expand, h.chomp))
            .collect();
        let got: Vec<_> = got
            .iter()
            .map(|(n, f, e, c)| (n.as_str(), *f, *e, *c))
            .collect();
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn markers_found() {
        check("RUN <<EOF", &[("EOF", None, true, false)]);
        check("RUN <<-EOF", &[("EOF", None, true, true)]);
        check("RUN <<'EOF'", &[("EOF", None, false, false)]);
        check("RUN <<-\"E\"OF", &[("EOF", None, false, true)]);
        check("RUN 3<<EOF cat", &[("EOF", Some(3), true, false)]);
        check(
            "COPY <<one <<\"two\" /dest/",
            &[("one", None, true, false), ("two", None, false, false)],
        );
        check(
            "RUN cat <<EOF > /x && cat <<-END",
            &[("EOF", None, true, false), ("END", None, true, true)],
        );
        // Not markers: quoted as a whole, empty name, `<<<`, unbalanced quote in the line.
        check("RUN echo \"<<EOF\"", &[]);
        check("RUN echo <<", &[]);
        check("RUN cat <<<EOF", &[]);
        check("RUN echo 'x <<EOF", &[]);
    }

    #[test]
    fn chomped_content() {
        let doc = Heredoc {
            name: "E".into(),
            fd: None,
            expand: true,
            chomp: true,
            body: "\t\ta\n\t b\nc\n".into(),
            span: Span::default(),
        };
        assert_eq!(doc.content(), "a\n b\nc\n");
        assert!(is_terminator(&doc, "\t\tE\r\n"));
        assert!(!is_terminator(&doc, " E\n"));
    }
}
