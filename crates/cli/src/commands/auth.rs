//! `login` and `logout`, sharing `~/.docker/config.json` with the Docker CLI.

use std::io::{BufRead, IsTerminal, Write};

use berth_registry::auth::{self, Credentials};
use clap::Args;

use crate::app::App;
use crate::Failure;

#[derive(Args)]
pub struct LoginArgs {
    /// Registry host (default docker.io).
    pub server: Option<String>,
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `https://host/` and `host` name the same registry.
fn server_host(server: Option<&str>) -> String {
    let s = server.unwrap_or(berth_registry::DEFAULT_DOMAIN);
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let s = s.strip_suffix("/v1").or(s.strip_suffix("/v2")).unwrap_or(s);
    match s {
        "index.docker.io" | "registry-1.docker.io" => berth_registry::DEFAULT_DOMAIN.into(),
        other => other.to_string(),
    }
}

/// Asks for one line on the terminal, as `docker login` does; refuses without a terminal.
fn prompt(label: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::usage(
            "Error: Cannot perform an interactive login from a non TTY device",
        ));
    }
    print!("{label}: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(app: &App, args: LoginArgs) -> Result<(), Failure> {
    let host = server_host(args.server.as_deref());
    if args.password.is_some() && args.password_stdin {
        return Err(Failure::usage(
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username")?.trim().to_string(),
    };
    let password = match (args.password, args.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut line)
                .map_err(|e| Failure::usage(e.to_string()))?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt("Password")?,
    };
    if username.is_empty() || password.is_empty() {
        return Err(Failure::usage("Error: Username and password are required"));
    }
    let creds = Credentials { username, password };
    app.registry()?.login(&host, &creds)?;
    let path = App::registry_options()?.auth_path();
    auth::store(&path, &host, Some(&creds))?;
    println!("Login Succeeded");
    Ok(())
}

#[derive(Args)]
pub struct LogoutArgs {
    /// Registry host (default docker.io).
    pub server: Option<String>,
}

pub fn logout(_app: &App, args: LogoutArgs) -> Result<(), Failure> {
    let host = server_host(args.server.as_deref());
    let path = App::registry_options()?.auth_path();
    let key = auth::auth_key(&host);
    if auth::store(&path, &host, None)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(())
}
