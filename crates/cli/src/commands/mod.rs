//! One module per group of Docker commands; each function takes parsed flags and the `App`.

pub mod archive;
pub mod auth;
pub mod build;
pub mod container;
pub mod image;
pub mod inspect;
pub mod lifecycle;
pub mod network;
pub mod serve;
pub mod transfer;
pub mod volume;

/// Asks Docker's prune question on stdout; true for `y`/`yes`.
pub fn confirm(question: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{question}");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
