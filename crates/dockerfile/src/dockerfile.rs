//! The whole file: directives, instructions and diagnostics.

use crate::directives::{self, Directives};
use crate::error::{Diagnostic, DiagnosticKind, Position, Span};
use crate::heredoc;
use crate::instruction::{self, Instruction};
use crate::lines::{trim_newline, Lines};

/// A parsed Dockerfile.
///
/// Always produced, even for broken input: `diagnostics` says what is wrong
/// and the tree holds everything that could be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives from the top of the file.
    pub directives: Directives,
    /// Instructions in file order (ONBUILD triggers nested inside theirs).
    pub instructions: Vec<Instruction>,
    /// Every problem found, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Dockerfile {
    /// Whether any diagnostic is an error (BuildKit would refuse the file).
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == crate::Severity::Error)
    }
}

/// Parses Dockerfile text. Never fails: problems become diagnostics.
pub fn parse(source: &str) -> Dockerfile {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let raw_lines: Vec<&str> = source.split_inclusive('\n').collect();
    let mut diagnostics = Vec::new();
    let (directives, directive_lines) = directives::parse(&raw_lines, &mut diagnostics);
    let escape = directives.escape;
    let mut lines = Lines::new(raw_lines, directive_lines);
    let mut instructions = Vec::new();

    while let Some(ll) = lines.next_logical(escape) {
        if let Some(at) = ll.empty_continuation {
            diagnostics.push(Diagnostic::new(
                DiagnosticKind::EmptyContinuationLine,
                Span::new(at, at),
            ));
        }
        let chars: Vec<char> = ll.text.chars().collect();
        let mut inst = instruction::parse(&ll, &chars, 0, escape, &mut diagnostics);
        inst.comments = ll.comments.clone();
        let mut end = ll.end;
        if let Some(host) = inst.heredoc_host() {
            for mut doc in heredoc::markers(&ll.text) {
                let start = Position::new(end.line + 1, 1);
                let mut terminated = false;
                while let Some((number, raw)) = lines.next_raw() {
                    end = Position::new(number, trim_newline(raw).chars().count() + 1);
                    if heredoc::is_terminator(&doc, raw) {
                        terminated = true;
                        break;
                    }
                    doc.body.push_str(raw);
                }
                doc.span = Span::new(start, end);
                if !terminated {
                    diagnostics.push(Diagnostic::new(
                        DiagnosticKind::UnterminatedHeredoc(doc.name.clone()),
                        host.span,
                    ));
                }
                host.span.end = end;
                host.heredocs.push(doc);
            }
        }
        inst.span.end = end;
        instructions.push(inst);
    }
    if instructions.is_empty() {
        let at = Position::new(source.lines().count().max(1), 1);
        diagnostics.push(Diagnostic::new(
            DiagnosticKind::NoInstructions,
            Span::new(at, at),
        ));
    }
    diagnostics.sort_by_key(|d| d.span.start);
    Dockerfile {
        directives,
        instructions,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruction::Command;

    fn dump_instruction(i: &Instruction) -> String {
        let mut s = format!("{}@{}-{}", i.name, i.span.start, i.span.end.line);
        for f in &i.flags {
            s.push_str(&format!(" --{}", f.name));
            if let Some(v) = &f.value {
                s.push_str(&format!("={v}"));
            }
        }
        match &i.command {
            Command::Onbuild(Some(inner)) => {
                s.push_str(&format!(" Onbuild({})", dump_instruction(inner)))
            }
            c => s.push_str(&format!(" {c:?}")),
        }
        for h in &i.heredocs {
            let chomp = if h.chomp { "-" } else { "" };
            let raw = if h.expand { "" } else { "(raw)" };
            s.push_str(&format!(" <<{chomp}{}{raw} {:?}", h.name, h.body));
        }
        s
    }

    /// `expected`: one line per instruction (`NAME@line:col-endline flags command heredocs`),
    /// then one `! line:col message` line per diagnostic.
    fn check(input: &str, expected: &str) {
        let df = parse(input);
        let mut got: Vec<String> = df.instructions.iter().map(dump_instruction).collect();
        got.extend(
            df.diagnostics
                .iter()
                .map(|d| format!("! {} {}", d.span.start, d.kind)),
        );
        let expected: Vec<&str> = expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(got, expected, "input:\n{input}");
    }

    #[test]
    fn escape_directive_changes_continuation() {
        check(
            "# escape=`\nFROM x\nRUN dir c:\\ `\n  /b\n",
            r#"FROM@2:1-2 From(From { image: "x", alias: None })
               RUN@3:1-4 Run(Shell("dir c:\\   /b"))"#,
        );
        check(
            "# syntax=docker/dockerfile:1\nFROM x\nRUN a \\\n b\n",
            r#"FROM@2:1-2 From(From { image: "x", alias: None })
               RUN@3:1-4 Run(Shell("a  b"))"#,
        );
    }

    #[test]
    fn continuation_with_comments() {
        check(
            "FROM x\n# top\nRUN apt-get update \\\n  # a comment \\\n\n  && apt-get install -y \\\n     curl\n",
            r#"FROM@1:1-1 From(From { image: "x", alias: None })
               RUN@3:1-7 Run(Shell("apt-get update   && apt-get install -y      curl"))
               ! 5:1 empty continuation line"#,
        );
    }

    #[test]
    fn exec_and_shell_forms() {
        check(
            "FROM x\nCMD [\"a\", \"b c\"]\nENTRYPOINT [\"a\" \"b\"]\nRUN [ 'single' ]\nSHELL [\"/bin/sh\", \"-c\"]\nRUN [\"a\", 1]\nSHELL sh -c\nVOLUME [\"/a b\"]\nVOLUME /c /d\n",
            r#"FROM@1:1-1 From(From { image: "x", alias: None })
               CMD@2:1-2 Cmd(Exec(["a", "b c"]))
               ENTRYPOINT@3:1-3 Entrypoint(Shell("[\"a\" \"b\"]"))
               RUN@4:1-4 Run(Shell("[ 'single' ]"))
               SHELL@5:1-5 Shell(Exec(["/bin/sh", "-c"]))
               RUN@6:1-6 Run(Shell("[\"a\", 1]"))
               SHELL@7:1-7 Shell(Shell("sh -c"))
               VOLUME@8:1-8 Volume(PathList { json: true, paths: ["/a b"] })
               VOLUME@9:1-9 Volume(PathList { json: false, paths: ["/c", "/d"] })
               ! 6:5 when using JSON array syntax, arrays must be comprised of strings only
               ! 7:7 SHELL requires the arguments to be in JSON form"#,
        );
    }

    #[test]
    fn heredocs() {
        check(
            "FROM x\nRUN <<EOF\necho $HOME\nEOF\nCOPY <<one <<'two' /dest/\nfirst\none\nsecond\ntwo\nRUN <<-\"END\" cat\n\t\tindented\n\tEND\nRUN [\"echo\", \"<<EOF\"]\nCMD done\n",
            r#"FROM@1:1-1 From(From { image: "x", alias: None })
               RUN@2:1-4 Run(Shell("<<EOF")) <<EOF "echo $HOME\n"
               COPY@5:1-9 Copy(PathList { json: false, paths: ["<<one", "<<'two'", "/dest/"] }) <<one "first\n" <<two(raw) "second\n"
               RUN@10:1-12 Run(Shell("<<-\"END\" cat")) <<-END(raw) "\t\tindented\n"
               RUN@13:1-13 Run(Exec(["echo", "<<EOF"]))
               CMD@14:1-14 Cmd(Shell("done"))"#,
        );
        check(
            "FROM x\nRUN <<EOF\nnever ends\n",
            r#"FROM@1:1-1 From(From { image: "x", alias: None })
               RUN@2:1-3 Run(Shell("<<EOF")) <<EOF "never ends\n"
               ! 2:1 unterminated heredoc EOF"#,
        );
    }

    #[test]
    fn env_label_arg() {
        check(
            "ARG A B=1 C=\"x y\" D=\nFROM x\nENV a=1 b=\"two words\" c=x\\ y\nENV legacy value with  spaces\nLABEL \"com.x\"=\"v\" k=v\nENV k\nENV =v\nARG =x\n",
            r#"ARG@1:1-1 Arg([ArgDecl { name: "A", default: None }, ArgDecl { name: "B", default: Some("1") }, ArgDecl { name: "C", default: Some("\"x y\"") }, ArgDecl { name: "D", default: Some("") }])
               FROM@2:1-2 From(From { image: "x", alias: None })
               ENV@3:1-3 Env([KeyValue { key: "a", value: "1", legacy: false }, KeyValue { key: "b", value: "\"two words\"", legacy: false }, KeyValue { key: "c", value: "x\\ y", legacy: false }])
               ENV@4:1-4 Env([KeyValue { key: "legacy", value: "value with  spaces", legacy: true }])
               LABEL@5:1-5 Label([KeyValue { key: "\"com.x\"", value: "\"v\"", legacy: false }, KeyValue { key: "k", value: "v", legacy: false }])
               ENV@6:1-6 Env([])
               ENV@7:1-7 Env([KeyValue { key: "", value: "v", legacy: false }])
               ARG@8:1-8 Arg([ArgDecl { name: "", default: Some("x") }])
               ! 4:5 legacy key/value format with whitespace separator should be replaced with ENV key=value
               ! 6:5 ENV must have two arguments
               ! 7:5 ENV names can not be blank
               ! 8:5 ARG names can not be blank"#,
        );
        check(
            "FROM x\nLABEL a=1 b\n",
            r#"FROM@1:1-1 From(From { image: "x", alias: None })
               LABEL@2:1-2 Label([KeyValue { key: "a", value: "1", legacy: false }])
               ! 2:7 Syntax error - can't find = in "b". Must be of the form: name=value"#,
        );
    }

    #[test]
    fn flags() {
        check(
            "FROM --platform=$BUILDPLATFORM golang AS build\nRUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=\"a b\" --network=none go build\nCOPY --from=build --chown=1:1 --link --chmod=755 /out /bin/\nADD --checksum=sha256:abc --keep-git-dir=true -- --weird /x\nCOPY --bogus --from a b\nCOPY --from=a --from=b --link=maybe x y\n",
            r#"FROM@1:1-1 --platform=$BUILDPLATFORM From(From { image: "golang", alias: Some("build") })
               RUN@2:1-2 --mount=type=cache,target=/root/.cache --mount=type=secret,id=a b --network=none Run(Shell("go build"))
               COPY@3:1-3 --from=build --chown=1:1 --link --chmod=755 Copy(PathList { json: false, paths: ["/out", "/bin/"] })
               ADD@4:1-4 --checksum=sha256:abc --keep-git-dir=true Add(PathList { json: false, paths: ["--weird", "/x"] })
               COPY@5:1-5 --bogus --from Copy(PathList { json: false, paths: ["a", "b"] })
               COPY@6:1-6 --from=a --from=b --link=maybe Copy(PathList { json: false, paths: ["x", "y"] })
               ! 5:6 unknown flag: bogus (for COPY)
               ! 5:14 missing a value on flag: from
               ! 6:15 duplicate flag specified: from
               ! 6:24 expecting boolean value for flag link, not: maybe"#,
        );
    }

    #[test]
    fn onbuild() {
        check(
            "FROM x\nONBUILD RUN make\nonbuild copy --from=a <<EOF /f\nbody\nEOF\nONBUILD ONBUILD RUN x\nONBUILD FROM y\nONBUILD\n",
            r#"FROM@1:1-1 From(From { image: "x", alias: None })
               ONBUILD@2:1-2 Onbuild(RUN@2:9-2 Run(Shell("make")))
               onbuild@3:1-5 Onbuild(copy@3:9-5 --from=a Copy(PathList { json: false, paths: ["<<EOF", "/f"] }) <<EOF "body\n")
               ONBUILD@6:1-6 Onbuild(ONBUILD@6:9-6 Onbuild(RUN@6:17-6 Run(Shell("x"))))
               ONBUILD@7:1-7 Onbuild(FROM@7:9-7 From(From { image: "y", alias: None }))
               ONBUILD@8:1-8 Onbuild(None)
               ! 6:9 Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed
               ! 7:9 FROM isn't allowed as an ONBUILD trigger
               ! 8:1 ONBUILD requires at least one argument"#,
        );
    }

    #[test]
    fn healthcheck_and_simple_instructions() {
        check(
            "FROM x\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/\nHEALTHCHECK NONE\nHEALTHCHECK CMD [\"true\"]\nHEALTHCHECK NONE extra\nHEALTHCHECK SOMETIMES x\nHEALTHCHECK --interval=1m30.5s --timeout=0 --start-period=10 --start-interval=1us --retries=-1 CMD x\nMAINTAINER me <me@x>\nEXPOSE 80/tcp 443\nUSER app:app\nWORKDIR /srv\nSTOPSIGNAL SIGTERM\n",
            r#"FROM@1:1-1 From(From { image: "x", alias: None })
               HEALTHCHECK@2:1-2 --interval=5s --retries=3 Healthcheck(Cmd(Shell("curl -f http://localhost/")))
               HEALTHCHECK@3:1-3 Healthcheck(None)
               HEALTHCHECK@4:1-4 Healthcheck(Cmd(Exec(["true"])))
               HEALTHCHECK@5:1-5 Healthcheck(None)
               HEALTHCHECK@6:1-6 Healthcheck(None)
               HEALTHCHECK@7:1-7 --interval=1m30.5s --timeout=0 --start-period=10 --start-interval=1us --retries=-1 Healthcheck(Cmd(Shell("x")))
               MAINTAINER@8:1-8 Maintainer("me <me@x>")
               EXPOSE@9:1-9 Expose(["80/tcp", "443"])
               USER@10:1-10 User("app:app")
               WORKDIR@11:1-11 Workdir("/srv")
               STOPSIGNAL@12:1-12 StopSignal("SIGTERM")
               ! 5:13 HEALTHCHECK NONE takes no arguments
               ! 6:13 Unknown type "SOMETIMES" in HEALTHCHECK (try CMD)
               ! 7:44 invalid value for flag start-period: time: invalid duration "10"
               ! 7:62 invalid value for flag start-interval: Interval "--start-interval" cannot be less than 1ms
               ! 7:83 invalid value for flag retries: --retries cannot be negative (-1)"#,
        );
    }

    #[test]
    fn unknown_instruction_and_arity() {
        check(
            "FROM a b\n  FOO bar\nCOPY only\nFROM x as y\n",
            r#"FROM@1:1-1 From(From { image: "a", alias: None })
               FOO@2:3-2 Unknown { name: "FOO" }
               COPY@3:1-3 Copy(PathList { json: false, paths: ["only"] })
               FROM@4:1-4 From(From { image: "x", alias: Some("y") })
               ! 1:6 FROM requires either one or three arguments
               ! 2:3 unknown instruction: FOO
               ! 3:6 COPY requires at least two arguments"#,
        );
        check("# just a comment\n\n", "! 2:1 file with no instructions");
    }

    #[test]
    fn render_points_at_line_and_column() {
        let src = "FROM x\nRUN a \\\n\tFOO=1\nCOPY --nope a b\n";
        let df = parse(src);
        let d = df
            .diagnostics
            .iter()
            .find(|d| matches!(d.kind, DiagnosticKind::UnknownFlag { .. }))
            .unwrap();
        assert_eq!(
            d.render(src),
            "Dockerfile:4:6: unknown flag: nope (for COPY)\n 4 | COPY --nope a b\n   |      ^"
        );
        let df = parse("FROM x\n\tBAD thing\n");
        assert_eq!(
            df.diagnostics[0].render_as("ctx/Dockerfile.dev", "FROM x\n\tBAD thing\n"),
            "ctx/Dockerfile.dev:2:2: unknown instruction: BAD\n 2 | \tBAD thing\n   | \t^"
        );
        assert_eq!(
            df.diagnostics[0].to_string(),
            "2:2: unknown instruction: BAD"
        );
        assert!(df.has_errors());
    }

    #[test]
    fn spans_follow_continuations() {
        let df = parse("FROM x\nRUN --mount=a \\\n  --network=none \\\n  echo hi\n");
        let run = &df.instructions[1];
        assert_eq!(
            run.flags[1].span,
            Span::new(Position::new(3, 3), Position::new(3, 17))
        );
        assert_eq!(
            run.args_span,
            Span::new(Position::new(4, 3), Position::new(4, 10))
        );
        assert_eq!(
            run.keyword_span,
            Span::new(Position::new(2, 1), Position::new(2, 4))
        );
        assert_eq!(run.span.end, Position::new(4, 10));
        assert_eq!(df.directives.escape, '\\');
    }

    /// Cheap deterministic fuzzing: odd fragment soups must never panic.
    #[test]
    fn never_panics() {
        const FRAGMENTS: [&str; 28] = [
            "FROM x",
            "RUN ",
            "COPY ",
            "<<EOF",
            "<<-'E'",
            "\\",
            "`",
            "\n",
            "\"",
            "'",
            "[",
            "]",
            "\t",
            "#",
            " ",
            "--mount=",
            "ONBUILD ",
            "HEALTHCHECK ",
            "ENV ",
            "a=b",
            "${",
            "}",
            "é",
            "\r\n",
            "EOF",
            "# escape=`\n",
            "3<<",
            "$",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut text = String::new();
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            for _ in 0..(seed >> 60) + 1 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(FRAGMENTS[(seed >> 33) as usize % FRAGMENTS.len()]);
            }
            let df = parse(&text);
            for d in &df.diagnostics {
                let _ = d.render(&text);
            }
            let _ = crate::expand::expand_words(&text, '`', |_| Some("v".into()));
            let _ = crate::expand::expand_word(&text, '\\', |_| None);
        }
    }
}
