//! Positions, diagnostics and expansion errors.
//!
//! Every problem carries a line and column so that the build engine can point
//! at the offending text, whether it decides to stop or merely warn.

use std::fmt;

/// A place in the Dockerfile text.
///
/// Lines and columns are 1-based and columns count characters (not bytes),
/// because that is what an editor shows and what a caret under the line needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub column: usize,
}

impl Position {
    /// Builds a position; a shorthand used throughout tests and callers.
    pub fn new(line: usize, column: usize) -> Self {
        Position { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A range of text: `start` is the first character, `end` the position just after the last.
///
/// Instructions that span continuation lines or heredoc bodies have `end` on a
/// later line than `start`, so callers can show or cite the whole construct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First character of the range.
    pub start: Position,
    /// Position just after the last character.
    pub end: Position,
}

impl Span {
    /// Builds a span from two positions.
    pub fn new(start: Position, end: Position) -> Self {
        Span { start, end }
    }
}

/// How bad a diagnostic is, as the parser sees it.
///
/// The build engine may promote or ignore them (for example under a `# check=` directive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// BuildKit would refuse the Dockerfile.
    Error,
    /// BuildKit accepts it but warns (deprecated or suspicious syntax).
    Warning,
}

/// What went wrong, with Docker's wording where Docker has one so users can search for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiagnosticKind {
    /// The keyword is none of the 18 Dockerfile instructions.
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// A `--flag` that the instruction does not take.
    #[error("unknown flag: {flag} (for {instruction})")]
    UnknownFlag {
        /// The instruction keyword, upper case.
        instruction: String,
        /// The flag name without leading dashes.
        flag: String,
    },
    /// A flag that may appear only once appeared again.
    #[error("duplicate flag specified: {0}")]
    DuplicateFlag(String),
    /// A flag that needs `=value` had none.
    #[error("missing a value on flag: {0}")]
    MissingFlagValue(String),
    /// A boolean flag with a value other than true/false.
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    InvalidBoolFlag {
        /// The flag name.
        flag: String,
        /// The value given.
        value: String,
    },
    /// A flag value of the wrong shape (HEALTHCHECK durations and retries).
    #[error("invalid value for flag {flag}: {reason}")]
    InvalidFlagValue {
        /// The flag name.
        flag: String,
        /// BuildKit's complaint.
        reason: String,
    },
    /// A parser directive given twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// `# escape=` with something other than a backslash or backtick.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscapeToken(String),
    /// A JSON array holding something other than strings (Docker refuses, it does not fall back).
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// Wrong number or shape of arguments; the message names the instruction.
    #[error("{0}")]
    BadArguments(String),
    /// A `key=value` list with a word lacking `=`.
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    MissingEquals(String),
    /// A heredoc whose terminator line never came.
    #[error("unterminated heredoc {0}")]
    UnterminatedHeredoc(String),
    /// A blank line inside a continued instruction (BuildKit warns; may become an error).
    #[error("empty continuation line")]
    EmptyContinuationLine,
    /// `ENV key value` / `LABEL key value` instead of `key=value`.
    #[error(
        "legacy key/value format with whitespace separator should be replaced with {0} key=value"
    )]
    LegacyKeyValueFormat(String),
    /// The file holds no instruction at all.
    #[error("file with no instructions")]
    NoInstructions,
    /// Variable expansion failed; produced by callers of [`crate::expand`], not the parser.
    #[error("{0}")]
    Expansion(ExpandErrorKind),
}

impl DiagnosticKind {
    /// The severity BuildKit gives this kind of problem.
    pub fn severity(&self) -> Severity {
        match self {
            DiagnosticKind::EmptyContinuationLine | DiagnosticKind::LegacyKeyValueFormat(_) => {
                Severity::Warning
            }
            _ => Severity::Error,
        }
    }
}

/// A problem found while parsing, located in the source.
///
/// The parser collects these instead of stopping, so one run reports every problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {kind}", span.start)]
pub struct Diagnostic {
    /// Whether BuildKit would refuse or merely warn.
    pub severity: Severity,
    /// Where the problem is.
    pub span: Span,
    /// What the problem is.
    pub kind: DiagnosticKind,
}

impl Diagnostic {
    /// Builds a diagnostic with the kind's default severity.
    pub fn new(kind: DiagnosticKind, span: Span) -> Self {
        Diagnostic {
            severity: kind.severity(),
            span,
            kind,
        }
    }

    /// Formats the diagnostic for a file named `Dockerfile`; see [`Diagnostic::render_as`].
    pub fn render(&self, source: &str) -> String {
        self.render_as("Dockerfile", source)
    }

    /// Formats the diagnostic as `name:line:col: message`, then the offending line and a caret.
    ///
    /// Tabs before the caret are kept so the caret lines up in a terminal.
    pub fn render_as(&self, name: &str, source: &str) -> String {
        let Position { line, column } = self.span.start;
        let mut out = format!("{name}:{line}:{column}: {}", self.kind);
        if let Some(text) = source.lines().nth(line.saturating_sub(1)) {
            let text = text.trim_end_matches('\r');
            let gutter = line.to_string();
            let pad: String = text
                .chars()
                .take(column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "\n {gutter} | {text}\n {} | {pad}^",
                " ".repeat(gutter.len())
            ));
        }
        out
    }
}

/// Why a variable expansion failed.
///
/// Messages follow BuildKit's shell lexer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    /// `'` without its closing quote.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// `"` without its closing quote.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// A `${...}` part ended before its terminator.
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
    /// `${` without `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${name/pattern` without the second `/`.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${{x}`, `${:x}` and friends.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${name<op>...}` with an operator Docker does not support (such as `:=`).
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${name?msg}` / `${name:?msg}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The user's message, or Docker's default.
        message: String,
    },
    /// A bad pattern in `${name#pat}`, `${name%pat}` or `${name/pat/rep}`.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern text.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A failed expansion of one word.
///
/// The column is relative to the word (1-based characters); callers add the
/// word's own position, for example with [`ExpandError::to_diagnostic`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process word at column {column}: {kind}")]
pub struct ExpandError {
    /// Column inside the word where the offending construct starts.
    pub column: usize,
    /// What went wrong.
    pub kind: ExpandErrorKind,
}

impl ExpandError {
    /// Places the error in the Dockerfile, given where the expanded word starts.
    pub fn to_diagnostic(&self, word_start: Position) -> Diagnostic {
        let at = Position::new(word_start.line, word_start.column + self.column - 1);
        Diagnostic::new(
            DiagnosticKind::Expansion(self.kind.clone()),
            Span::new(at, at),
        )
    }
}
