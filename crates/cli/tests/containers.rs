//! Apps in real containers: a tiny static image pushed to a local registry, deployed with
//! `spread deploy --image` and run by the node agent with runc, watched by monitors, on a
//! network of the test's own. Needs root, runc, iproute2, nftables and docker-registry.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Platform;
use serde_json::Value;
use spread_image::{BlobStore, PushOptions, RegistryAuth, push};
use spread_net::InstanceId;
use spread_testkit::images::{escaping_layer, put_app_image, put_layer_image};
use spread_testkit::registry::LocalRegistry;
use spread_testkit::runc::static_binary;

/// A registry on loopback holding `probe:1`, whose entrypoint is the app probe
/// (tests/fixtures/app_probe.c), and its reference.
struct Image {
    reference: String,
    _registry: LocalRegistry,
    _store: tempfile::TempDir,
}

fn probe_image() -> Image {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/app_probe.c");
    let binary = std::fs::read(static_binary(&source, "spread-app-probe")).unwrap();
    pushed(|store| put_app_image(store, &binary, &["PATH=/", "GREETING=from-the-image"]))
}

/// Pushes the image `put` writes into a fresh store to a fresh local registry as `probe:1`.
fn pushed(put: impl FnOnce(&BlobStore) -> spread_testkit::images::BuiltImage) -> Image {
    let registry = LocalRegistry::start();
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(store_dir.path()).unwrap();
    let image = put(&store);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(push(
            &store,
            &image.manifest,
            &registry.reference("probe:1"),
            &RegistryAuth::Anonymous,
            &PushOptions { insecure: false },
        ))
        .unwrap();
    Image {
        reference: format!("127.0.0.1:{}/probe:1", registry.port()),
        _registry: registry,
        _store: store_dir,
    }
}

/// A platform running containers with app `probe` created, `config` set, and the probe image
/// deployed.
fn deployed(config: &[&str]) -> (Platform, Image) {
    let image = probe_image();
    let p = Platform::with_agent();
    p.ok(&["apps", "create", "probe"]);
    if !config.is_empty() {
        let mut args = vec!["config", "set"];
        args.extend(config);
        args.extend(["-a", "probe"]);
        p.ok(&args);
    }
    p.ok(&["deploy", "--image", &image.reference, "-a", "probe"]);
    (p, image)
}

fn ps(p: &Platform) -> Vec<Value> {
    serde_json::from_str(&p.ok(&["ps", "-a", "probe", "--json"])).unwrap()
}

/// The text of every logged line of the app, oldest first.
fn log_texts(p: &Platform) -> Vec<String> {
    log_lines(p)
        .iter()
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Every logged line of the app as the API gives it, oldest first.
fn log_lines(p: &Platform) -> Vec<Value> {
    p.ok(&["logs", "-a", "probe", "-n", "10000", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

/// Waits until the app has `n` running instances and returns them.
fn running(p: &Platform, n: usize) -> Vec<Value> {
    p.wait_until(&format!("{n} running instances"), || {
        let all = ps(p);
        let up: Vec<Value> = all
            .into_iter()
            .filter(|i| i["state"] == "running")
            .collect();
        (up.len() == n).then_some(up)
    })
}

/// The host pids in the instance's cgroup (its process and any children).
fn pids_of(p: &Platform, instance: &str) -> Vec<u32> {
    let relative = format!(
        "{}/{instance}",
        p.sandbox().cgroup_parent.trim_start_matches('/')
    );
    let candidates = [
        PathBuf::from("/sys/fs/cgroup/pids").join(&relative),
        PathBuf::from("/sys/fs/cgroup").join(&relative),
    ];
    for dir in candidates {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            return text.lines().filter_map(|l| l.parse().ok()).collect();
        }
    }
    Vec::new()
}

fn the_pid(p: &Platform, instance: &str) -> u32 {
    p.wait_until("the instance's process in its cgroup", || {
        let pids = pids_of(p, instance);
        (pids.len() == 1).then(|| pids[0])
    })
}

/// Waits until `ps` shows the app's one instance running again after `restarts` restarts.
fn restarted(p: &Platform, restarts: u64) {
    p.wait_until("ps counting the restart", || {
        let all = ps(p);
        (all[0]["restarts"] == restarts && all[0]["state"] == "running").then_some(())
    });
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(19).unwrap().parse().unwrap()
}

fn status_field(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap()
}

fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_deployed_image_runs_hardened_with_its_environment_and_answers_on_its_port() {
    let (p, _image) = deployed(&["GREETING=hi"]);
    let instance = running(&p, 1).remove(0);
    let id = instance["id"].as_str().unwrap().to_owned();
    let texts = p.wait_until("the probe's report in the logs", || {
        let texts = log_texts(&p);
        texts
            .iter()
            .any(|t| t.starts_with("listening on 8080"))
            .then_some(texts)
    });
    let report = texts.iter().find(|t| t.starts_with("report ")).unwrap();
    assert!(
        report.contains(&format!("instance={id} process=web app=probe"))
            && report.contains("port=8080 greeting=hi"),
        "{report}"
    );
    let sandbox = texts.iter().find(|t| t.starts_with("sandbox ")).unwrap();
    assert!(
        sandbox
            .contains("uid=0 capeff=0000000000000000 root_ro=1 tmp_rw=1 bin_sh=0 pids=1 mypid=1"),
        "root inside, no capabilities, read-only root, writable /tmp, no shell, alone: {sandbox}"
    );
    assert!(texts.iter().any(|t| t == "started on stderr"), "{texts:?}");

    // On the host it is an unprivileged uid of the app's range, with no capabilities.
    let pid = the_pid(&p, &id);
    let uid: u32 = status_field(pid, "Uid")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(uid >= p.sandbox().uid_base && uid != 0, "host uid {uid}");
    assert_eq!(status_field(pid, "CapEff"), "0000000000000000");

    // It has an address on the node network and answers there.
    let address: std::net::Ipv4Addr = instance["address"].as_str().unwrap().parse().unwrap();
    let reply = p.wait_until("an answer on the instance's port", || {
        use std::io::Read;
        let mut stream =
            std::net::TcpStream::connect_timeout(&(address, 8080).into(), Duration::from_secs(2))
                .ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).ok()?;
        Some(reply)
    });
    assert!(reply.ends_with("ok\n"), "{reply}");
}

#[test]
fn a_killed_process_is_restarted_and_a_restarted_daemon_supervises_without_restarting() {
    let (mut p, _image) = deployed(&[]);
    let id = running(&p, 1)[0]["id"].as_str().unwrap().to_owned();
    let first = the_pid(&p, &id);

    kill9(first);
    // Read the pid once the restart is reported: while runc starts a container, its cgroup
    // briefly holds runc's own setup processes too.
    restarted(&p, 1);
    let second = the_pid(&p, &id);
    assert_ne!(second, first);

    // SIGKILL the daemon: the container keeps running, and the next daemon leaves it be.
    let started = start_time(second);
    p.kill9();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        pids_of(&p, &id),
        [second],
        "the container outlives the daemon"
    );
    p.restart();
    running(&p, 1);
    assert_eq!(pids_of(&p, &id), [second], "not restarted");
    assert_eq!(start_time(second), started);

    // It is supervised again: a crash now is noticed and the process restarted.
    kill9(second);
    // Restarts are counted by the agent that saw them: the new one starts from zero.
    restarted(&p, 1);
    assert_ne!(the_pid(&p, &id), second, "restarted by the new daemon");

    // The logs hold every run: before and after both restarts.
    let texts = p.wait_until("three reports in the logs", || {
        let texts = log_texts(&p);
        (texts.iter().filter(|t| t.starts_with("report ")).count() == 3).then_some(texts)
    });
    assert!(texts.iter().any(|t| t == "started on stderr"));
    let resumed =
        format!("Still running (pid {second}) after the agent restarted; supervised again");
    assert!(texts.contains(&resumed), "{texts:#?}");
}

#[test]
fn a_crash_loop_backs_off_and_shows_in_ps_and_logs() {
    // It serves long enough to go live, then crashes: a crash loop of the live release.
    let (p, _image) = deployed(&["MODE=crash", "AFTER_MS=3000"]);
    let lines = p.wait_until("five crashes", || {
        let lines = log_lines(&p);
        let starts: Vec<Value> = lines
            .into_iter()
            .filter(|l| l["text"].as_str().unwrap().starts_with("report "))
            .collect();
        (starts.len() >= 5).then_some(starts)
    });
    // Each start comes at least the backoff after the crash before it: 0.1 s doubling.
    let times: Vec<jiff::Timestamp> = lines
        .iter()
        .map(|l| l["at"].as_str().unwrap().parse().unwrap())
        .collect();
    for (n, pair) in times.windows(2).enumerate().take(4) {
        let gap = pair[1].duration_since(pair[0]).unsigned_abs();
        let backoff = Duration::from_millis(100 << n);
        assert!(
            gap >= backoff,
            "restart {} came {gap:?} after the crash before it, less than the backoff {backoff:?}",
            n + 1
        );
    }
    let instance = ps(&p).remove(0);
    assert!(instance["restarts"].as_u64().unwrap() >= 4, "{instance}");
    assert_eq!(instance["last_exit"]["code"], 3, "{instance}");
    let human = p.ok(&["ps", "-a", "probe"]);
    assert!(human.contains("exit 3"), "{human}");
    assert!(log_texts(&p).iter().any(|t| t == "crashing on purpose"));

    // The platform's own lines tell the story in `spread logs` too.
    let platform = platform_texts(&p);
    for expected in [
        "Process exited with status 3",
        "State changed from running to crashed",
        "State changed from crashed to starting",
    ] {
        assert!(
            platform.iter().any(|t| t == expected),
            "{expected}: {platform:#?}"
        );
    }
    assert!(
        platform.iter().any(|t| t.starts_with("Restarting in ")),
        "{platform:#?}"
    );
    let human = p.ok(&["logs", "-a", "probe", "-n", "10000"]);
    assert!(
        human.contains(" spread[web.1]: State changed from running to crashed"),
        "{human}"
    );
}

/// The text of every line the platform wrote about the app's instances, oldest first.
fn platform_texts(p: &Platform) -> Vec<String> {
    log_lines(p)
        .iter()
        .filter(|v| v["stream"] == "spread")
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn exceeding_the_memory_limit_is_reported_as_oom_killed() {
    let image = probe_image();
    let p = Platform::with_agent();
    p.ok(&["apps", "create", "probe"]);
    // It serves long enough to go live, then eats memory.
    p.ok(&["config", "set", "MODE=oom", "AFTER_MS=3000", "-a", "probe"]);
    p.ok(&["scale", "web", "--memory", "32M", "-a", "probe"]);
    p.ok(&["deploy", "--image", &image.reference, "-a", "probe"]);
    let instance = p.wait_until("an OOM kill", || {
        ps(&p)
            .into_iter()
            .find(|i| i["last_exit"]["oom_killed"] == true)
    });
    assert_eq!(instance["memory_limit_bytes"], 32 << 20, "{instance}");
    let human = p.wait_until("oom-killed in ps", || {
        let out = p.ok(&["ps", "-a", "probe"]);
        out.contains("oom").then_some(out)
    });
    assert!(human.contains("oom"), "{human}");
    let platform = platform_texts(&p);
    let expected = "Process killed: out of memory (limit 32 MiB); raise it with `spread scale TYPE=N --memory SIZE`";
    assert!(platform.iter().any(|t| t == expected), "{platform:#?}");
    assert!(
        platform
            .iter()
            .any(|t| t == "State changed from running to oom-killed"),
        "{platform:#?}"
    );
}

#[test]
fn destroying_an_app_leaves_nothing_behind() {
    let (p, _image) = deployed(&[]);
    p.ok(&["scale", "web=2", "-a", "probe"]);
    let instances = running(&p, 2);
    let ids: Vec<String> = instances
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let data = p.data_dir();
    let sandbox = p.sandbox();
    assert_eq!(sandbox.net.netns_files().len(), 2);
    assert!(!sandbox.cgroups().is_empty());
    assert!(!sandbox.mounts(&data).is_empty());
    let tables_before = sandbox.net.own_tables();

    p.ok(&["apps", "destroy", "probe", "--confirm", "probe"]);
    let mut left = String::new();
    p.wait_until("everything of the app gone", || {
        let veths: Vec<String> = ids
            .iter()
            .map(|id| InstanceId::parse(id).unwrap().veth_host_name())
            .collect();
        let links = std::process::Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .unwrap();
        let links = String::from_utf8_lossy(&links.stdout).into_owned();
        let now = format!(
            "netns {:?}, veths {:?}, mounts {:?}, cgroups {:?}, processes {:?}, dirs {:?}",
            sandbox.net.netns_files(),
            veths
                .iter()
                .filter(|v| links.contains(v.as_str()))
                .collect::<Vec<_>>(),
            sandbox.mounts(&data),
            sandbox.cgroups(),
            sandbox.processes(&data),
            ids.iter()
                .filter(|id| data.join("instances").join(id).exists())
                .collect::<Vec<_>>(),
        );
        if now != left {
            eprintln!("left: {now}");
            left = now;
        }
        let gone = left == "netns [], veths [], mounts [], cgroups [], processes [], dirs []";
        gone.then_some(())
    });
    // The node's own bridge and tables stay for the next app; they hold nothing of this one.
    assert_eq!(sandbox.net.own_tables(), tables_before);
}

#[test]
fn an_image_with_a_hostile_layer_is_refused_at_deploy_and_writes_nothing_outside() {
    let good = probe_image();
    let p = Platform::with_agent();
    p.ok(&["apps", "create", "probe"]);
    p.ok(&["deploy", "--image", &good.reference, "-a", "probe"]);
    let before = running(&p, 1)[0]["id"].as_str().unwrap().to_owned();
    let releases = || -> Vec<Value> {
        serde_json::from_str(&p.ok(&["releases", "-a", "probe", "--json"])).unwrap()
    };
    let released = releases().len();

    let target = tempfile::tempdir().unwrap();
    let file = format!("pwned-{:x}", spread_testkit::runc::random());
    let dir = target.path().display().to_string();
    let hostile = pushed(|store| put_layer_image(store, escaping_layer(&dir, &file), &[]));
    let out = p.fails(&["deploy", "--image", &hostile.reference, "-a", "probe"]);
    assert!(
        out.contains("cannot run here") && out.contains("nothing was released"),
        "{out}"
    );
    assert!(
        !target.path().join(&file).exists(),
        "the layer wrote outside its root"
    );
    assert_eq!(
        releases().len(),
        released,
        "no release for the refused image"
    );
    assert_eq!(
        running(&p, 1)[0]["id"],
        before.as_str(),
        "the app runs as before"
    );
}

/// The names in `dir`, sorted, without temporary entries.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with(".tmp") && !n.starts_with("empty-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn blobs_and_layers_no_release_refers_to_are_garbage_collected() {
    let image = probe_image();
    let p = Platform::with_agent_args(&["--gc-grace", "0"]);
    for app in ["probe", "other"] {
        p.ok(&["apps", "create", app]);
        p.ok(&["deploy", "--image", &image.reference, "-a", app]);
    }
    let blobs_dir = p.data_dir().join("images/blobs/sha256");
    let layers_dir = p.data_dir().join("layers");
    let blobs = names_in(&blobs_dir);
    assert_eq!(blobs.len(), 3, "manifest, config and one layer: {blobs:?}");
    // One layer, unpacked once per app: each app has its own id range.
    let layers = names_in(&layers_dir);
    assert_eq!(layers.len(), 2, "{layers:?}");

    // The other app's copy of the layer goes with it; the blobs stay for probe.
    p.ok(&["apps", "destroy", "other", "--confirm", "other"]);
    p.wait_until("the other app's layer to be collected", || {
        (names_in(&layers_dir).len() == 1).then_some(())
    });
    assert_eq!(names_in(&blobs_dir), blobs);
    assert!(layers.contains(&names_in(&layers_dir)[0]));

    // With no app left, nothing of the image is kept.
    p.ok(&["apps", "destroy", "probe", "--confirm", "probe"]);
    p.wait_until("every blob and layer to be collected", || {
        (names_in(&blobs_dir).is_empty() && names_in(&layers_dir).is_empty()).then_some(())
    });
}

#[test]
fn a_release_whose_instances_crash_at_once_fails_its_rollout_and_stops_them() {
    let image = probe_image();
    let p = Platform::with_agent();
    p.ok(&["apps", "create", "probe"]);
    p.ok(&["config", "set", "MODE=crash", "-a", "probe"]);
    let err = p.fails(&["deploy", "--image", &image.reference, "-a", "probe"]);
    assert!(
        err.contains("v2 failed to roll out: web.1 exited with code 3 before it became healthy"),
        "{err}"
    );
    p.wait_until("the failed release's instance gone", || {
        ps(&p).is_empty().then_some(())
    });
    let releases: Value =
        serde_json::from_str(&p.ok(&["releases", "-a", "probe", "--json"])).unwrap();
    assert_eq!(releases[0]["status"], "failed", "{releases}");
    let out = p.ok(&["releases", "-a", "probe"]);
    assert!(
        out.contains("exited with code 3"),
        "the reason is shown: {out}"
    );
}
