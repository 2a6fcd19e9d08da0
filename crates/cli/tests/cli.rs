//! The CLI against a real `spread up`: the tour from the README, errors, login and overrides.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Platform;
use serde_json::Value;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn first_start_logs_the_cli_in_and_later_starts_print_no_token() {
    let mut p = Platform::start();
    assert!(p.token.starts_with("spread_"), "{}", p.token);
    let creds = p.home().join(".config/spread/credentials.toml");
    let mode = std::fs::metadata(&creds).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "credentials are readable only by their owner"
    );
    let stored = std::fs::read_to_string(&creds).unwrap();
    assert!(
        stored.contains(&p.token) && stored.contains(&p.url),
        "{stored}"
    );

    p.ok(&["apps", "create", "shop"]);
    let out = p.stop();
    assert!(out.status.success(), "SIGTERM shuts down cleanly");
    assert_eq!(
        p.restart(),
        None,
        "the token is shown only on the first start"
    );
    assert!(p.ok(&["apps", "list"]).contains("shop"));
    let raw = std::fs::read(p.data_dir().join("raft.redb")).unwrap();
    let needle = p.token.rsplit('_').next().unwrap().as_bytes();
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle),
        "the token secret is not stored in plain text"
    );
}

#[test]
fn a_lost_admin_token_is_replaced_with_new_admin_token() {
    let mut p = Platform::start();
    p.stop();
    let again = p
        .restart_with(&["--new-admin-token"])
        .expect("a new admin token is printed");
    assert_ne!(again, p.token);
    for token in [&again, &p.token] {
        let out = p
            .command(&["apps", "list"])
            .env("SPREAD_TOKEN", token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "both tokens work: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_first_start_that_cannot_listen_makes_no_token() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .args([
            "up",
            "--api-listen",
            &addr,
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(
        !dir.path().join("data/raft.redb").exists(),
        "no state, so the next start makes the token"
    );
}

#[test]
fn the_readme_tour_works() {
    let p = Platform::start();
    let out = p.ok(&["apps", "create", "shop"]);
    assert!(out.contains("http://shop.localhost/"), "{out}");
    assert!(p.ok(&["apps", "list"]).contains("shop"));

    let out = p.ok(&[
        "config",
        "set",
        "FOO=bar",
        "GREETING=hello world",
        "-a",
        "shop",
    ]);
    assert!(
        out.contains("Set FOO, GREETING on shop: release v1"),
        "{out}"
    );
    let out = p.ok(&["config", "unset", "FOO", "-a", "shop"]);
    assert!(out.contains("Unset FOO on shop: release v2"), "{out}");
    assert_eq!(
        p.ok(&["config", "-a", "shop"]).trim(),
        "GREETING  hello world"
    );

    let releases = p.ok(&["releases", "-a", "shop"]);
    let lines: Vec<&str> = releases.lines().collect();
    assert!(
        lines[0].starts_with("VERSION")
            && lines[0].contains("STATUS")
            && lines[0].contains("DESCRIPTION")
            && lines[0].contains("BY"),
        "{releases}"
    );
    assert!(
        lines[1].starts_with("v2")
            && lines[1].contains("deployed (live)")
            && lines[1].contains("Unset FOO")
            && lines[1].contains("admin"),
        "{releases}"
    );
    assert!(
        lines[2].starts_with("v1")
            && lines[2].contains("Set FOO, GREETING")
            && !lines[2].contains("(live)"),
        "{releases}"
    );

    let out = p.ok(&["scale", "web=2", "worker=1", "-a", "shop"]);
    assert!(
        out.contains("web") && out.contains('2') && out.contains("worker"),
        "{out}"
    );
    let info = json(&p.ok(&["apps", "info", "shop", "--json"]));
    assert_eq!(info["release"], 2);
    assert_eq!(info["formation"][0]["quantity"], 2);
    assert_eq!(info["formation"][1]["type"], "worker");

    let status = p.ok(&["status"]);
    assert!(
        status.contains("leader") && status.contains("term"),
        "{status}"
    );
    let status = json(&p.ok(&["status", "--json"]));
    assert_eq!(status["raft"]["role"], "leader");
    assert_eq!(status["data_dir"], p.data_dir().display().to_string());

    let err = p.fails(&["apps", "destroy", "shop"]);
    assert!(err.contains("--confirm shop"), "{err}");
    p.ok(&["apps", "destroy", "shop", "--confirm", "shop"]);
    assert!(p.ok(&["apps", "list"]).contains("No apps yet"));
}

#[test]
fn every_read_command_speaks_json() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    p.ok(&["config", "set", "A=1", "-a", "shop"]);
    for args in [
        &["apps", "list", "--json"][..],
        &["apps", "info", "shop", "--json"],
        &["config", "-a", "shop", "--json"],
        &["releases", "-a", "shop", "--json"],
        &["scale", "-a", "shop", "--json"],
        &["ps", "-a", "shop", "--json"],
        &["domains", "-a", "shop", "--json"],
        &["health", "-a", "shop", "--json"],
        &["status", "--json"],
    ] {
        json(&p.ok(args));
    }
}

#[test]
fn errors_say_what_was_wrong_and_exit_non_zero() {
    let p = Platform::start();
    let err = p.fails(&["apps", "create", "Not_Valid"]);
    assert!(
        err.contains("invalid app name `Not_Valid`") && err.contains("a-z, 0-9"),
        "{err}"
    );
    let err = p.fails(&["config", "-a", "ghost"]);
    assert!(err.contains("app `ghost` does not exist"), "{err}");
    p.ok(&["apps", "create", "shop"]);
    let err = p.fails(&["apps", "create", "shop"]);
    assert!(err.contains("already exists"), "{err}");
    let err = p.fails(&["config", "set", "NOEQUALS", "-a", "shop"]);
    assert!(err.contains("is not KEY=VALUE"), "{err}");
    let err = p.fails(&["config", "set", "9LIVES=x", "-a", "shop"]);
    assert!(err.contains("invalid config key `9LIVES`"), "{err}");
    let err = p.fails(&["scale", "web=lots", "-a", "shop"]);
    assert!(err.contains("is not TYPE=N"), "{err}");
    let err = p.fails(&["scale", "web", "--memory", "lots", "-a", "shop"]);
    assert!(
        err.contains("invalid memory limit `lots`") && err.contains("`512M`"),
        "{err}"
    );
    let err = p.fails(&["scale", "web", "--memory", "1M", "-a", "shop"]);
    assert!(err.contains("out of range"), "{err}");
    let err = p.fails(&["logs", "-n", "0", "-a", "shop"]);
    assert!(err.contains("`lines`"), "{err}");
    let err = p.fails(&["ps", "-a", "ghost"]);
    assert!(err.contains("app `ghost` does not exist"), "{err}");
    let err = p.fails(&["releases"]);
    assert!(err.contains("pass -a APP"), "{err}");
}

#[test]
fn the_app_can_come_from_spread_toml() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    std::fs::write(p.dir.path().join("spread.toml"), "app = \"shop\"\n").unwrap();
    assert!(p.ok(&["config", "set", "A=1"]).contains("on shop"));
}

#[test]
fn environment_variables_override_stored_credentials() {
    let p = Platform::start();
    let out = p
        .command(&["apps", "list"])
        .env("SPREAD_TOKEN", "spread_wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing or invalid API token"), "{err}");
    let out = p
        .command(&["apps", "list"])
        .env("SPREAD_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot reach the Spread API"),
        "{err}"
    );
}

#[test]
fn login_checks_the_token_before_storing_it() {
    let p = Platform::start();
    let creds = p.home().join(".config/spread/credentials.toml");
    std::fs::remove_file(&creds).unwrap();
    let err = p.fails(&["apps", "list"]);
    assert!(err.contains("not logged in"), "{err}");
    let bad = common::wrong_secret(&p.token);
    let err = p.fails(&["login", &p.url, "--token", &bad]);
    assert!(err.contains("refused this token"), "{err}");
    assert!(!creds.exists());
    p.ok(&["login", &p.url, "--token", &p.token]);
    assert!(creds.exists());
    p.ok(&["apps", "list"]);
}

#[test]
fn ps_and_logs_of_an_app_with_no_instances_say_what_to_do() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let out = p.ok(&["ps", "-a", "shop"]);
    assert!(
        out.contains("No instances of shop") && out.contains("spread deploy --image REF -a shop"),
        "{out}"
    );
    let out = p.spread(&["logs", "-a", "shop", "-n", "5", "--process", "web"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("No logs from shop"), "{err}");
}

#[test]
fn custom_domains_are_added_listed_and_removed() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let out = p.ok(&["domains", "-a", "shop"]);
    assert!(
        out.contains("shop.localhost") && out.contains("default"),
        "{out}"
    );
    assert!(
        out.contains("spread domains add"),
        "says how to add one: {out}"
    );

    let out = p.ok(&["domains", "add", "WWW.Example.com", "-a", "shop"]);
    assert!(
        out.contains("Added www.example.com to shop") && out.contains("A record"),
        "{out}"
    );
    let out = p.ok(&["domains", "-a", "shop"]);
    let custom = out.lines().find(|l| l.starts_with("www.example.com"));
    assert!(custom.is_some_and(|l| l.contains("custom")), "{out}");
    let listed = json(&p.ok(&["domains", "-a", "shop", "--json"]));
    assert_eq!(listed["default"], "shop.localhost");
    assert_eq!(listed["custom"][0], "www.example.com");
    let info = json(&p.ok(&["apps", "info", "shop", "--json"]));
    assert_eq!(info["domains"][0], "www.example.com");

    p.ok(&["apps", "create", "blog"]);
    let err = p.fails(&["domains", "add", "www.example.com", "-a", "blog"]);
    assert!(err.contains("already served by app `shop`"), "{err}");
    let err = p.fails(&["domains", "add", "blog.localhost", "-a", "blog"]);
    assert!(err.contains("already served at <app>.localhost"), "{err}");
    let err = p.fails(&["domains", "add", "not a domain", "-a", "blog"]);
    assert!(err.contains("invalid domain `not a domain`"), "{err}");

    let out = p.ok(&["domains", "remove", "www.example.com", "-a", "shop"]);
    assert!(out.contains("Removed www.example.com from shop"), "{out}");
    let err = p.fails(&["domains", "remove", "www.example.com", "-a", "shop"]);
    assert!(err.contains("has no domain `www.example.com`"), "{err}");
    let out = p.ok(&["domains", "-a", "shop"]);
    assert!(!out.contains("custom"), "{out}");
}

#[test]
fn health_checks_are_set_shown_and_reset() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let out = p.ok(&["health", "-a", "shop"]);
    assert!(
        out.contains("TCP connect to $PORT") && out.contains("60s"),
        "{out}"
    );

    let out = p.ok(&["health", "set", "/up", "--timeout", "2m", "-a", "shop"]);
    assert!(out.contains("GET /up") && out.contains("120s"), "{out}");
    let out = p.ok(&["health", "-a", "shop"]);
    assert!(
        out.contains("GET /up on $PORT, expecting 2xx or 3xx") && out.contains("120s"),
        "{out}"
    );
    let shown = json(&p.ok(&["health", "-a", "shop", "--json"]));
    assert_eq!(shown["path"], "/up");
    assert_eq!(shown["timeout_seconds"], 120);

    let out = p.ok(&["health", "set", "--timeout", "30", "-a", "shop"]);
    assert!(
        out.contains("TCP connect to $PORT") && out.contains("30s"),
        "no path is the TCP check: {out}"
    );

    let err = p.fails(&["health", "set", "up", "-a", "shop"]);
    assert!(err.contains("must start with '/'"), "{err}");
    let err = p.fails(&["health", "set", "/up", "--timeout", "0", "-a", "shop"]);
    assert!(err.contains("1 to 600 seconds"), "{err}");
    let err = p.fails(&["health", "set", "/up", "--timeout", "soon", "-a", "shop"]);
    assert!(err.contains("like 30s, 90 or 2m"), "{err}");
    let err = p.fails(&["health", "-a", "ghost"]);
    assert!(err.contains("app `ghost` does not exist"), "{err}");

    let out = p.ok(&["health", "reset", "-a", "shop"]);
    assert!(
        out.contains("back to the default") && out.contains("TCP connect"),
        "{out}"
    );
    let shown = json(&p.ok(&["health", "-a", "shop", "--json"]));
    assert_eq!(shown["path"], serde_json::Value::Null);
    assert_eq!(shown["timeout_seconds"], 60);
}

#[test]
fn rollback_errors_say_what_to_do() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    let err = p.fails(&["rollback", "-a", "shop"]);
    assert!(
        err.contains("no earlier deployed release") && err.contains("spread rollback vN"),
        "{err}"
    );
    let err = p.fails(&["rollback", "v9", "-a", "shop"]);
    assert!(err.contains("release v9 does not exist"), "{err}");
    let err = p.fails(&["rollback", "nine", "-a", "shop"]);
    assert!(err.contains("like v3 or 3"), "{err}");
    p.ok(&["config", "set", "A=1", "-a", "shop"]);
    let err = p.fails(&["rollback", "1", "-a", "shop"]);
    assert!(err.contains("v1 has no image to roll back to"), "{err}");
    let err = p.fails(&["rollback", "-a", "ghost"]);
    assert!(err.contains("app `ghost` does not exist"), "{err}");
}
