//! Runs BuildKit's word-expansion vectors (`tests/data/envVarTest`, `tests/data/wordsTest`).
//!
//! The data files come from moby/buildkit `frontend/dockerfile/shell/` (Apache-2.0, see
//! `tests/data/LICENSE` and `tests/data/NOTICE`); `tests/data/README.md` gives their format.
//! Every vector runs and all failures are reported together.

use berth_dockerfile::expand::{expand_word, expand_words};
use std::collections::HashMap;

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn report(name: &str, ran: usize, failures: &[String]) {
    eprintln!("{name}: {ran} vectors run, {} failed", failures.len());
    assert!(ran > 0, "{name}: no vectors found");
    assert!(
        failures.is_empty(),
        "{name} failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn env_var_test() {
    let env: HashMap<&str, &str> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .into_iter()
    .collect();
    let lookup = |n: &str| env.get(n).map(|v| v.to_string());
    let (mut ran, mut failures) = (0, Vec::new());
    for (no, line) in data("envVarTest").lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(fields.len(), 3, "envVarTest line {}: {line:?}", no + 1);
        let (platform, input, expected) = (fields[0], fields[1], fields[2]);
        if platform == "W" {
            continue;
        }
        ran += 1;
        let got = expand_word(input, '\\', lookup);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(s), exp) => exp != "error" && s == exp,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} -> {got:?}, want {expected:?}",
                no + 1
            ));
        }
    }
    report("envVarTest", ran, &failures);
}

#[test]
fn words_test() {
    let mut env: HashMap<String, String> = HashMap::new();
    let (mut ran, mut failures) = (0, Vec::new());
    for (no, line) in data("wordsTest").lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(assign) = line.strip_prefix("ENV ") {
            let (k, v) = assign.split_once('=').expect("ENV NAME=VALUE");
            env.insert(k.to_string(), v.to_string());
            continue;
        }
        let Some((input, expected)) = line.split_once('|') else {
            continue;
        };
        let (input, expected) = (input.trim(), expected.trim_start());
        ran += 1;
        let got = expand_words(input, '\\', |n: &str| env.get(n).cloned());
        let ok = match &got {
            Err(_) => expected == "error",
            Ok(words) => expected != "error" && *words == expected.split(',').collect::<Vec<_>>(),
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} -> {got:?}, want {expected:?}",
                no + 1
            ));
        }
    }
    report("wordsTest", ran, &failures);
}
