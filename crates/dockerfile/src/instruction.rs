//! Instructions and their typed arguments.
//!
//! Arguments are kept as written (quotes and escapes intact) wherever Docker
//! expands them later, because expansion needs the build-time environment; the
//! build engine runs them through [`crate::expand`]. Only the instruction
//! shape (exec vs shell form, `key=value` pairs, `name[=default]`) is decided here.

use std::fmt;

use crate::error::{Diagnostic, DiagnosticKind, Span};
use crate::flags::{self, Flag};
use crate::heredoc::Heredoc;
use crate::json::{self, JsonArray};
use crate::lines::{is_token_space, LogicalLine};

/// The 18 Dockerfile instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    /// Starts a stage from a base image.
    From,
    /// Runs a command in a new layer.
    Run,
    /// Sets the default command.
    Cmd,
    /// Adds image metadata.
    Label,
    /// Deprecated author field (kept so old files still parse).
    Maintainer,
    /// Documents listening ports.
    Expose,
    /// Sets environment variables for later instructions and the image.
    Env,
    /// Copies files, URLs, git repositories or archives.
    Add,
    /// Copies files from the context or another stage.
    Copy,
    /// Sets the executable the container runs.
    Entrypoint,
    /// Declares mount points.
    Volume,
    /// Sets the user for later instructions and the image.
    User,
    /// Sets the working directory.
    Workdir,
    /// Declares build arguments.
    Arg,
    /// Registers a trigger to run in builds that use this image.
    Onbuild,
    /// Sets the signal that stops the container.
    StopSignal,
    /// Configures or disables the health check.
    Healthcheck,
    /// Sets the shell used by shell-form commands.
    Shell,
}

impl Keyword {
    /// Every instruction, for callers that list or suggest keywords.
    pub const ALL: [Keyword; 18] = [
        Keyword::From,
        Keyword::Run,
        Keyword::Cmd,
        Keyword::Label,
        Keyword::Maintainer,
        Keyword::Expose,
        Keyword::Env,
        Keyword::Add,
        Keyword::Copy,
        Keyword::Entrypoint,
        Keyword::Volume,
        Keyword::User,
        Keyword::Workdir,
        Keyword::Arg,
        Keyword::Onbuild,
        Keyword::StopSignal,
        Keyword::Healthcheck,
        Keyword::Shell,
    ];

    /// Recognises a keyword case-insensitively, as Docker does.
    pub fn parse(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }

    /// The canonical upper-case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::From => "FROM",
            Keyword::Run => "RUN",
            Keyword::Cmd => "CMD",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Expose => "EXPOSE",
            Keyword::Env => "ENV",
            Keyword::Add => "ADD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Volume => "VOLUME",
            Keyword::User => "USER",
            Keyword::Workdir => "WORKDIR",
            Keyword::Arg => "ARG",
            Keyword::Onbuild => "ONBUILD",
            Keyword::StopSignal => "STOPSIGNAL",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Shell => "SHELL",
        }
    }

    /// Whether the builder substitutes `$VARS` in this instruction's arguments.
    ///
    /// BuildKit's list: ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER,
    /// VOLUME, WORKDIR and ARG. RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are
    /// left to the container's shell; ONBUILD triggers are expanded when they
    /// run in the child build, not where they are declared. FROM sees only the
    /// ARGs declared before the first stage.
    pub fn expands_variables(self) -> bool {
        matches!(
            self,
            Keyword::Add
                | Keyword::Copy
                | Keyword::Env
                | Keyword::Expose
                | Keyword::From
                | Keyword::Label
                | Keyword::StopSignal
                | Keyword::User
                | Keyword::Volume
                | Keyword::Workdir
                | Keyword::Arg
        )
    }

    /// Whether heredoc markers in this instruction read bodies (RUN, COPY, ADD).
    pub fn takes_heredocs(self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command for RUN, CMD, ENTRYPOINT, SHELL or HEALTHCHECK CMD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// A JSON array of strings: run directly, no shell, no expansion.
    Exec(Vec<String>),
    /// Anything else: handed to the configured shell as one string.
    Shell(String),
}

/// `FROM image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The image reference, unexpanded.
    pub image: String,
    /// The stage name after `AS`.
    pub alias: Option<String>,
}

/// One `key=value` of ENV or LABEL; both parts unexpanded, quotes intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key as written.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// True for the deprecated `ENV key value` form, whose value is the rest of the line.
    pub legacy: bool,
}

/// One `name[=default]` of ARG; the default is unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The argument name.
    pub name: String,
    /// The default value as written, if any (`name=` gives `Some("")`).
    pub default: Option<String>,
}

/// Paths of COPY, ADD or VOLUME, in either JSON or whitespace form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathList {
    /// Whether the JSON array form was used (needed for paths with spaces; disables heredocs).
    pub json: bool,
    /// The paths; for COPY/ADD the last is the destination.
    pub paths: Vec<String>,
}

/// HEALTHCHECK's two forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [flags] CMD ...`.
    Cmd(CommandLine),
}

/// The typed arguments of an instruction.
///
/// When the arguments are malformed a best-effort value is still built and a
/// diagnostic explains the problem, so tools can keep going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// FROM image [AS name].
    From(From),
    /// RUN in exec or shell form (heredoc markers stay in the shell text).
    Run(CommandLine),
    /// CMD in exec or shell form.
    Cmd(CommandLine),
    /// ENTRYPOINT in exec or shell form.
    Entrypoint(CommandLine),
    /// SHELL; only the exec form is valid.
    Shell(CommandLine),
    /// LABEL pairs.
    Label(Vec<KeyValue>),
    /// ENV pairs.
    Env(Vec<KeyValue>),
    /// MAINTAINER text.
    Maintainer(String),
    /// EXPOSE ports, unexpanded.
    Expose(Vec<String>),
    /// ADD sources and destination.
    Add(PathList),
    /// COPY sources and destination.
    Copy(PathList),
    /// VOLUME paths.
    Volume(PathList),
    /// USER text, unexpanded.
    User(String),
    /// WORKDIR path, unexpanded.
    Workdir(String),
    /// STOPSIGNAL text, unexpanded.
    StopSignal(String),
    /// ARG declarations.
    Arg(Vec<ArgDecl>),
    /// The trigger instruction; `None` if ONBUILD had no arguments.
    Onbuild(Option<Box<Instruction>>),
    /// HEALTHCHECK NONE or CMD.
    Healthcheck(Healthcheck),
    /// Not a Dockerfile instruction (reported as `unknown instruction`).
    Unknown {
        /// The keyword as written.
        name: String,
    },
}

/// One instruction with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The keyword as written (case preserved).
    pub name: String,
    /// The typed arguments.
    pub command: Command,
    /// The flags before the arguments.
    pub flags: Vec<Flag>,
    /// The arguments after the flags, as written (continuations joined, trimmed).
    pub args: String,
    /// From the keyword to the end of the last line used, heredoc bodies included.
    pub span: Span,
    /// The keyword.
    pub keyword_span: Span,
    /// The arguments after the flags.
    pub args_span: Span,
    /// Heredoc bodies used by this instruction, in marker order.
    pub heredocs: Vec<Heredoc>,
    /// The whole logical line, as BuildKit keeps it for ONBUILD triggers and messages.
    pub original: String,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

impl Instruction {
    /// The instruction's keyword, or `None` for an unknown instruction.
    pub fn keyword(&self) -> Option<Keyword> {
        Keyword::parse(&self.name)
    }

    /// The value of the last occurrence of a flag (`Some(None)` if given without value).
    pub fn flag(&self, name: &str) -> Option<Option<&str>> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .map(|f| f.value.as_deref())
    }

    /// The instruction that owns heredoc bodies: itself, or an ONBUILD trigger.
    pub(crate) fn heredoc_host(&mut self) -> Option<&mut Instruction> {
        let own = match &self.command {
            Command::Run(cl) => !matches!(cl, CommandLine::Exec(_)),
            Command::Add(p) | Command::Copy(p) => !p.json,
            Command::Onbuild(Some(_)) => false,
            _ => return None,
        };
        if own {
            return Some(self);
        }
        match &mut self.command {
            Command::Onbuild(Some(inner)) => inner.heredoc_host(),
            _ => None,
        }
    }
}

/// Splits on BuildKit's `[\t\v\f\r ]+`.
fn split_ws(args: &str) -> Vec<String> {
    args.split(is_token_space)
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// BuildKit's `parseWords`: splits on whitespace outside quotes, keeping quotes and escapes.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let cs: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut phase = Phase::Spaces;
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let Some(&c) = cs.get(pos) else {
            if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            return words;
        };
        pos += 1;
        match phase {
            Phase::Spaces if c.is_whitespace() => continue,
            Phase::Word | Phase::Spaces if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                phase = Phase::Spaces;
                continue;
            }
            Phase::Word | Phase::Spaces => {
                phase = Phase::Word;
                if c == '\'' || c == '"' {
                    phase = Phase::Quote(c);
                    blank_ok = true;
                }
            }
            Phase::Quote(q) => {
                if c == q {
                    phase = Phase::Word;
                }
            }
        }
        let escapes = match phase {
            Phase::Quote('\'') => false,
            Phase::Quote(_) => true,
            _ => c == escape,
        };
        if c == escape && escapes {
            if pos == cs.len() {
                // A trailing escape is dropped.
                if let Phase::Quote(_) = phase {
                    phase = Phase::Word;
                }
                continue;
            }
            word.push(c);
            word.push(cs[pos]);
            pos += 1;
            continue;
        }
        word.push(c);
    }
}

/// Parses the instruction starting at character `start` of the logical line.
pub(crate) fn parse(
    ll: &LogicalLine,
    chars: &[char],
    start: usize,
    escape: char,
    diags: &mut Vec<Diagnostic>,
) -> Instruction {
    let mut i = start;
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    let kw_start = i;
    while chars.get(i).is_some_and(|&c| !is_token_space(c)) {
        i += 1;
    }
    let name: String = chars[kw_start..i].iter().collect();
    let keyword_span = Span::new(ll.position(kw_start), ll.position(i));
    let keyword = Keyword::parse(&name);
    let (flags, args_start) = flags::extract(ll, chars, i, keyword, diags);
    let rest: String = chars[args_start..].iter().collect();
    let args = rest.trim_end().to_string();
    let args_end = args_start + args.chars().count();
    let args_span = Span::new(ll.position(args_start), ll.position(args_end));
    let mut p = Args {
        diags,
        // Point at the arguments, or at the keyword when there are none.
        span: if args.is_empty() {
            keyword_span
        } else {
            args_span
        },
        escape,
    };
    let command = match keyword {
        None => {
            let kind = DiagnosticKind::UnknownInstruction(name.clone());
            p.diags.push(Diagnostic::new(kind, keyword_span));
            Command::Unknown { name: name.clone() }
        }
        Some(kw) => p.command(kw, &args, ll, chars, args_start),
    };
    Instruction {
        name,
        command,
        flags,
        args,
        span: Span::new(ll.position(kw_start), ll.end),
        keyword_span,
        args_span,
        heredocs: Vec::new(),
        original: chars[kw_start..]
            .iter()
            .collect::<String>()
            .trim_end()
            .to_string(),
        comments: Vec::new(),
    }
}

/// Per-instruction argument parsing with a place to report problems.
struct Args<'d> {
    diags: &'d mut Vec<Diagnostic>,
    span: Span,
    escape: char,
}

impl Args<'_> {
    fn error(&mut self, kind: DiagnosticKind) {
        self.diags.push(Diagnostic::new(kind, self.span));
    }

    fn bad(&mut self, message: String) {
        self.error(DiagnosticKind::BadArguments(message));
    }

    fn command(
        &mut self,
        kw: Keyword,
        args: &str,
        ll: &LogicalLine,
        chars: &[char],
        args_start: usize,
    ) -> Command {
        match kw {
            Keyword::From => Command::From(self.from(args)),
            Keyword::Run => Command::Run(self.command_line(args)),
            Keyword::Cmd => Command::Cmd(self.command_line(args)),
            Keyword::Entrypoint => Command::Entrypoint(self.command_line(args)),
            Keyword::Shell => {
                let cl = self.command_line(args);
                match &cl {
                    CommandLine::Shell(_) => {
                        self.bad("SHELL requires the arguments to be in JSON form".into())
                    }
                    CommandLine::Exec(v) if v.is_empty() => {
                        self.bad("SHELL requires at least one argument".into())
                    }
                    CommandLine::Exec(_) => {}
                }
                Command::Shell(cl)
            }
            Keyword::Env => Command::Env(self.key_values(kw, args)),
            Keyword::Label => Command::Label(self.key_values(kw, args)),
            Keyword::Arg => Command::Arg(self.arg(args)),
            Keyword::Expose => {
                let ports = split_ws(args);
                if ports.is_empty() {
                    self.bad("EXPOSE requires at least one argument".into());
                }
                Command::Expose(ports)
            }
            Keyword::Add | Keyword::Copy | Keyword::Volume => {
                let list = self.path_list(args);
                let min = if kw == Keyword::Volume { 1 } else { 2 };
                if list.paths.len() < min {
                    let what = if min == 1 {
                        "one argument"
                    } else {
                        "two arguments"
                    };
                    self.bad(format!("{kw} requires at least {what}"));
                }
                match kw {
                    Keyword::Add => Command::Add(list),
                    Keyword::Copy => Command::Copy(list),
                    _ => Command::Volume(list),
                }
            }
            Keyword::Maintainer | Keyword::User | Keyword::Workdir | Keyword::StopSignal => {
                if args.is_empty() {
                    self.bad(format!("{kw} requires exactly one argument"));
                }
                let s = args.to_string();
                match kw {
                    Keyword::Maintainer => Command::Maintainer(s),
                    Keyword::User => Command::User(s),
                    Keyword::Workdir => Command::Workdir(s),
                    _ => Command::StopSignal(s),
                }
            }
            Keyword::Healthcheck => Command::Healthcheck(self.healthcheck(args)),
            Keyword::Onbuild => {
                if args.is_empty() {
                    self.bad("ONBUILD requires at least one argument".into());
                    return Command::Onbuild(None);
                }
                let inner = parse(ll, chars, args_start, self.escape, self.diags);
                match inner.keyword() {
                    Some(Keyword::Onbuild) => {
                        self.bad("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                    }
                    Some(k @ (Keyword::From | Keyword::Maintainer)) => {
                        self.bad(format!("{k} isn't allowed as an ONBUILD trigger"))
                    }
                    _ => {}
                }
                Command::Onbuild(Some(Box::new(inner)))
            }
        }
    }

    fn from(&mut self, args: &str) -> From {
        let words = split_ws(args);
        let ok = match words.len() {
            1 => true,
            3 => words[1].eq_ignore_ascii_case("as"),
            _ => false,
        };
        if !ok {
            self.bad("FROM requires either one or three arguments".into());
        }
        From {
            image: words.first().cloned().unwrap_or_default(),
            alias: if words.len() == 3 {
                Some(words[2].clone())
            } else {
                None
            },
        }
    }

    fn command_line(&mut self, args: &str) -> CommandLine {
        if args.is_empty() {
            return CommandLine::Shell(String::new());
        }
        match json::parse_array(args) {
            JsonArray::Strings(v) => CommandLine::Exec(v),
            JsonArray::NotStrings => {
                self.error(DiagnosticKind::NotStringArray);
                CommandLine::Shell(args.to_string())
            }
            JsonArray::Invalid => CommandLine::Shell(args.to_string()),
        }
    }

    fn path_list(&mut self, args: &str) -> PathList {
        match json::parse_array(args) {
            JsonArray::Strings(paths) => PathList { json: true, paths },
            JsonArray::NotStrings => {
                self.error(DiagnosticKind::NotStringArray);
                PathList {
                    json: true,
                    paths: Vec::new(),
                }
            }
            JsonArray::Invalid => PathList {
                json: false,
                paths: split_ws(args),
            },
        }
    }

    fn key_values(&mut self, kw: Keyword, args: &str) -> Vec<KeyValue> {
        let words = parse_words(args, self.escape);
        let Some(first) = words.first() else {
            self.bad(format!("{kw} requires at least one argument"));
            return Vec::new();
        };
        if !first.contains('=') {
            // Legacy `KEY name value`: the value is the rest of the line, verbatim.
            let Some((key, value)) = args.split_once(is_token_space) else {
                self.bad(format!("{kw} must have two arguments"));
                return Vec::new();
            };
            self.error(DiagnosticKind::LegacyKeyValueFormat(kw.to_string()));
            let value = value.trim_start_matches(is_token_space);
            return vec![KeyValue {
                key: key.to_string(),
                value: value.to_string(),
                legacy: true,
            }];
        }
        let mut out = Vec::new();
        for word in words {
            match word.split_once('=') {
                Some((k, v)) => {
                    if k.is_empty() {
                        self.bad(format!("{kw} names can not be blank"));
                    }
                    out.push(KeyValue {
                        key: k.to_string(),
                        value: v.to_string(),
                        legacy: false,
                    });
                }
                None => self.error(DiagnosticKind::MissingEquals(word)),
            }
        }
        out
    }

    fn arg(&mut self, args: &str) -> Vec<ArgDecl> {
        let words = parse_words(args, self.escape);
        if words.is_empty() {
            self.bad("ARG requires at least one argument".into());
        }
        let mut out = Vec::new();
        for word in words {
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (word, None),
            };
            if name.is_empty() {
                self.bad("ARG names can not be blank".into());
            }
            out.push(ArgDecl { name, default });
        }
        out
    }

    fn healthcheck(&mut self, args: &str) -> Healthcheck {
        let (typ, rest) = args
            .split_once(char::is_whitespace)
            .map_or((args, ""), |(t, r)| (t, r.trim_start()));
        match typ.to_ascii_uppercase().as_str() {
            "NONE" => {
                if !rest.is_empty() {
                    self.bad("HEALTHCHECK NONE takes no arguments".into());
                }
                Healthcheck::None
            }
            "CMD" => {
                if rest.is_empty() {
                    self.bad("Missing command after HEALTHCHECK CMD".into());
                }
                Healthcheck::Cmd(self.command_line(rest))
            }
            "" => {
                self.bad("HEALTHCHECK requires an argument".into());
                Healthcheck::None
            }
            other => {
                self.bad(format!("Unknown type {other:?} in HEALTHCHECK (try CMD)"));
                Healthcheck::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, escape: char, expected: &[&str]) {
        assert_eq!(parse_words(input, escape), expected, "input {input:?}");
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        check(
            "a=1  b=\"x y\" c='p q'",
            '\\',
            &["a=1", "b=\"x y\"", "c='p q'"],
        );
        check("a=x\\ y b", '\\', &["a=x\\ y", "b"]);
        check("a=\"q \\\" r\" b=''", '\\', &["a=\"q \\\" r\"", "b=''"]);
        check("a='\\' b", '\\', &["a='\\'", "b"]);
        check("a=`\" b\"", '`', &["a=`\"", "b\""]);
        check("k=v\\", '\\', &["k=v"]);
        check("\"\"", '\\', &["\"\""]);
    }
}
