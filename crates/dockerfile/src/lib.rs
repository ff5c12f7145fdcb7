//! Dockerfile text to a syntax tree with line/column spans, for the berth build engine.
//!
//! [`parse`] reads parser directives (`# syntax=`, `# escape=`, `# check=`), joins
//! continuation lines, splits each instruction into keyword, `--flags` and typed
//! arguments (exec vs shell form, `key=value` pairs, ARG defaults, ONBUILD triggers,
//! HEALTHCHECK), and attaches heredoc bodies. [`expand`] implements Docker's variable
//! substitution and word splitting, which the build engine applies to the instructions
//! for which [`Keyword::expands_variables`] holds. Behaviour follows BuildKit's
//! Dockerfile frontend 1.x, and the expansion code passes BuildKit's own test vectors.
//!
//! ```
//! use berth_dockerfile::{parse, Command, CommandLine, expand::expand_word};
//!
//! let df = parse("FROM alpine AS base\nRUN [\"echo\", \"hi\"]\nCOPY --chown=app <<EOF /etc/motd\nhello\nEOF\nFOO bar\n");
//! assert!(matches!(&df.instructions[1].command, Command::Run(CommandLine::Exec(v)) if v == &["echo", "hi"]));
//! assert_eq!(df.instructions[2].heredocs[0].body, "hello\n");
//! assert_eq!(df.instructions[2].flag("chown"), Some(Some("app")));
//! // Unknown instructions are reported, with a location, instead of stopping the parse.
//! assert_eq!(df.diagnostics[0].render(""), "Dockerfile:6:1: unknown instruction: FOO");
//!
//! let home = expand_word("${HOME:-/root}/bin", '\\', |_| None).unwrap();
//! assert_eq!(home, "/root/bin");
//! ```
//!
//! # Design
//!
//! - **No I/O, no processes.** The crate maps `&str` to data. `# syntax=` is recorded,
//!   never fetched; file reading, image pulls and running commands belong to the build
//!   engine. This keeps the parser deterministic, cheap to unit-test and safe to fuzz.
//! - **Tree plus diagnostics, not the first error.** [`parse`] always returns a
//!   [`Dockerfile`] and a list of [`Diagnostic`]s with line/column spans. An editor or
//!   linter wants every problem at once; the build engine decides which are fatal
//!   (BuildKit treats some as warnings, and `# check=` can change that).
//! - **Arguments stay as written** where Docker expands them later, because expansion
//!   depends on build-time ARG/ENV values this crate cannot know.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod directives;
mod dockerfile;
mod error;
pub mod expand;
mod flags;
mod heredoc;
mod instruction;
mod json;
mod lines;

pub use directives::{Directive, Directives};
pub use dockerfile::{parse, Dockerfile};
pub use error::{
    Diagnostic, DiagnosticKind, ExpandError, ExpandErrorKind, Position, Severity, Span,
};
pub use flags::{go_duration_nanos, Flag};
pub use heredoc::Heredoc;
pub use instruction::{
    ArgDecl, Command, CommandLine, From, Healthcheck, Instruction, KeyValue, Keyword, PathList,
};
