//! Basic and bearer-token auth, `login`/`logout` in Docker's config.json format.

use crate::common::{registries, Berth, PASSWORD, USER};

#[test]
fn basic_auth_registry() {
    let regs = registries();
    let b = Berth::bare();
    let r = format!("{}/library/busybox:latest", regs.basic);
    b.run(&["pull", &r]).fails(1, &[&regs.basic, "berth login"]);
    b.run(&["login", "-u", USER, "-p", "wrong", &regs.basic])
        .fails(1, &["login to", "incorrect username or password"]);
    assert!(!b.docker_config().exists(), "failed login stores nothing");
    let out = b.run_with_input(
        &["login", "-u", USER, "--password-stdin", &regs.basic],
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert_eq!(out.ok(), "Login Succeeded\n");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.docker_config()).unwrap()).unwrap();
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    assert_eq!(config["auths"][&regs.basic]["auth"], expected.as_str());
    b.run(&["pull", &r]).ok();
    let out = b.run(&["logout", &regs.basic]);
    assert_eq!(
        out.ok(),
        format!("Removing login credentials for {}\n", regs.basic)
    );
    assert_eq!(
        b.run(&["logout", &regs.basic]).ok(),
        format!("Not logged in to {}\n", regs.basic)
    );
    let fresh = Berth::bare();
    fresh.run(&["pull", &r]).fails(1, &["berth login"]);
}

#[test]
fn token_auth_registry() {
    let regs = registries();
    let b = Berth::bare();
    // Anonymous users get pull-only tokens.
    let r = format!("{}/library/busybox:latest", regs.token);
    b.run(&["pull", &r]).ok();
    let target = format!("{}/test/pushed:latest", regs.token);
    b.run(&["tag", &r, &target]).ok();
    b.run(&["push", &target]).fails(1, &[&regs.token]);
    b.run(&["login", "-u", USER, "-p", "nope", &regs.token])
        .fails(1, &["incorrect username or password"]);
    b.run(&["login", "-u", USER, "-p", PASSWORD, &regs.token])
        .ok();
    let out = b.run(&["push", &target]);
    assert!(
        out.ok().contains("latest: digest: sha256:"),
        "{}",
        out.stdout
    );
    let fresh = Berth::bare();
    fresh.run(&["pull", &target]).ok();
}
