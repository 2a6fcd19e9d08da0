//! Snapshots of what people read: the CLI's tables, with times redacted.

mod common;

use common::Platform;

#[test]
fn tables_read_like_this() {
    let p = Platform::start();
    p.ok(&["apps", "create", "shop"]);
    p.ok(&["apps", "create", "blog"]);
    p.ok(&[
        "config",
        "set",
        "DATABASE_URL=postgres://db/shop",
        "GREETING=hello",
        "-a",
        "shop",
    ]);
    p.ok(&["config", "unset", "GREETING", "-a", "shop"]);
    p.ok(&["domains", "add", "www.example.com", "-a", "shop"]);
    p.ok(&["health", "set", "/up", "--timeout", "30s", "-a", "shop"]);
    let outputs = [
        ("apps list", p.ok(&["apps", "list"])),
        ("apps info", p.ok(&["apps", "info", "shop"])),
        ("config", p.ok(&["config", "-a", "shop"])),
        ("releases", p.ok(&["releases", "-a", "shop"])),
        ("scale", p.ok(&["scale", "web=2", "worker=1", "-a", "shop"])),
        (
            "scale web --memory 512M --cpu 0.5",
            p.ok(&[
                "scale", "web", "--memory", "512M", "--cpu", "0.5", "-a", "shop",
            ]),
        ),
        ("ps", p.ok(&["ps", "-a", "shop"])),
        ("domains", p.ok(&["domains", "-a", "shop"])),
        ("domains (none)", p.ok(&["domains", "-a", "blog"])),
        ("health", p.ok(&["health", "-a", "shop"])),
    ];
    let mut all = String::new();
    for (command, out) in outputs {
        all.push_str(&format!("$ spread {command}\n{out}\n"));
    }
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "[TIME]");
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[ID]",
    );
    settings.bind(|| insta::assert_snapshot!(all));
}
