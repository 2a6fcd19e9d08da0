//! The real runc, as root: the conformance suite and the sandbox the generated spec builds.

mod support;

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use spread_oci::testing::conformance_suite;
use spread_oci::{
    ContainerId, ContainerIo, RunExit, Runtime, RuntimeError, Signal, SpecOptions, Status,
};
use support::{Lines, Sandbox, host_ids, report};

#[tokio::test]
async fn runc_passes_the_conformance_suite() {
    conformance_suite(|| {
        let sandbox = Sandbox::new();
        (sandbox.runc.clone(), sandbox)
    })
    .await;
}

#[tokio::test]
async fn the_installed_runc_reports_its_version() {
    let version = Sandbox::new().runc.version().await.unwrap();
    assert!(version.semver >= (1, 0, 0), "{version:?}");
    assert!(version.spec.is_some(), "{version:?}");
}

/// A running probe that has printed its report; it sleeps until the sandbox is dropped.
struct Probed {
    report: HashMap<String, String>,
    host_pid: u32,
    opts: SpecOptions,
    sandbox: Sandbox,
}

async fn probe_with(args: &[&str], configure: impl FnOnce(&Sandbox, &mut SpecOptions)) -> Probed {
    let sandbox = Sandbox::new();
    let id = sandbox.id("probe");
    let mut opts = sandbox.options(&id, args);
    configure(&sandbox, &mut opts);
    let bundle = sandbox.bundle(&id, &opts);
    let (reader, writer) = std::io::pipe().unwrap();
    let io = ContainerIo::null()
        .with_stdout(writer.try_clone().unwrap())
        .with_stderr(writer);
    let lines = Lines::new(reader);
    sandbox.runc.create(&id, &bundle, io).await.unwrap();
    sandbox.runc.start(&id).await.unwrap();
    let report = report(&lines.until("end-of-report"));
    let state = sandbox.runc.state(&id).await.unwrap();
    assert_eq!(
        state.status,
        Status::Running,
        "the probe sleeps after its report"
    );
    Probed {
        report,
        host_pid: state.pid.unwrap(),
        opts,
        sandbox,
    }
}

async fn probe() -> Probed {
    probe_with(&["report", "sleep"], |_, _| {}).await
}

fn field<'a>(probed: &'a Probed, key: &str) -> &'a str {
    probed
        .report
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", probed.report))
}

#[tokio::test]
async fn root_inside_the_container_is_an_unprivileged_mapped_uid_on_the_host() {
    let probed = probe().await;
    assert_eq!((field(&probed, "uid"), field(&probed, "gid")), ("0", "0"));
    let host_uid = probed.sandbox.uid_start;
    assert_ne!(host_uid, 0);
    assert_eq!(host_ids(probed.host_pid, "Uid:"), vec![host_uid; 4]);
    assert_eq!(host_ids(probed.host_pid, "Gid:"), vec![host_uid; 4]);
}

#[tokio::test]
async fn the_process_has_no_capabilities_and_sees_only_its_own_pid_namespace() {
    let probed = probe().await;
    assert_eq!(field(&probed, "capeff"), "0000000000000000");
    assert_eq!(field(&probed, "pid"), "1");
    let visible: u32 = field(&probed, "proc_pids").parse().unwrap();
    assert!(visible <= 2, "{visible} processes visible in /proc");
}

#[tokio::test]
async fn the_root_filesystem_and_sys_are_read_only_and_there_is_no_shell_but_tmp_is_writable() {
    let args = [
        "mountopts",
        "/",
        "mountopts",
        "/sys",
        "mountopts",
        "/tmp",
        "report",
        "sleep",
    ];
    let probed = probe_with(&args, |_, _| {}).await;
    assert!(field(&probed, "mountopts /").starts_with("ro,"));
    assert!(field(&probed, "mountopts /sys").starts_with("ro,"));
    assert!(field(&probed, "mountopts /tmp").starts_with("rw,nosuid,nodev"));
    assert_eq!(field(&probed, "root_write"), "EROFS");
    assert_eq!(field(&probed, "bin_sh"), "absent");
    assert_eq!(field(&probed, "tmp_write"), "ok");
}

#[tokio::test]
async fn mount_unshare_and_namespace_clones_are_refused_and_personality_is_limited() {
    let probed = probe().await;
    assert_eq!(field(&probed, "mount"), "EPERM");
    assert_eq!(field(&probed, "unshare_user"), "EPERM");
    assert_eq!(field(&probed, "clone_newns"), "EPERM");
    assert_eq!(
        field(&probed, "clone_plain"),
        "ok",
        "plain fork still works"
    );
    assert_eq!(field(&probed, "personality_query"), "ok");
    assert_eq!(field(&probed, "personality_no_randomize"), "EPERM");
}

#[tokio::test]
async fn the_hostname_is_the_instance_id_and_open_files_are_capped_at_the_hosts_hard_limit() {
    let probed = probe_with(&["report", "sleep"], |_, opts| opts.nofile = u64::MAX).await;
    assert!(field(&probed, "hostname").starts_with("probe-"));
    let hard = spread_oci::HostLimits::read().unwrap().nofile_hard;
    assert_eq!(field(&probed, "nofile"), format!("{hard}/{hard}"));
}

#[tokio::test]
async fn dns_files_are_bind_mounted_read_only_in_the_given_network_namespace() {
    let args = [
        "cat",
        "/etc/resolv.conf",
        "cat",
        "/etc/hosts",
        "write",
        "/etc/resolv.conf",
        "mountopts",
        "/sys",
        "mountopts",
        "/etc/hosts",
        "report",
        "sleep",
    ];
    let probed = probe_with(&args, |sandbox, opts| {
        let resolv = sandbox.path().join("resolv.conf");
        let hosts = sandbox.path().join("hosts");
        std::fs::write(&resolv, "nameserver 10.99.0.1\n").unwrap();
        std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
        // World-writable on the host, so only the read-only mount can refuse the write.
        std::fs::set_permissions(&resolv, std::fs::Permissions::from_mode(0o666)).unwrap();
        opts.resolv_conf = Some(resolv);
        opts.hosts = Some(hosts);
        opts.netns_path = Some(sandbox.netns());
    })
    .await;
    assert_eq!(
        field(&probed, "cat /etc/resolv.conf"),
        "nameserver 10.99.0.1"
    );
    assert_eq!(field(&probed, "cat /etc/hosts"), "127.0.0.1 localhost");
    assert_eq!(field(&probed, "write /etc/resolv.conf"), "EROFS");
    assert!(field(&probed, "mountopts /etc/hosts").starts_with("ro,"));
    // The host's /sys, bound read-only: a fresh sysfs is refused in a netns made by the host.
    assert!(field(&probed, "mountopts /sys").starts_with("ro,"));
    let container_net = std::fs::metadata(format!("/proc/{}/ns/net", probed.host_pid)).unwrap();
    let given = std::fs::metadata(probed.opts.netns_path.as_ref().unwrap()).unwrap();
    assert_eq!(
        container_net.ino(),
        given.ino(),
        "the container joined the given netns"
    );
}

#[tokio::test]
async fn a_program_missing_from_the_rootfs_fails_create_with_runcs_reason() {
    let sandbox = Sandbox::new();
    let id = sandbox.id("missing");
    let mut opts = sandbox.options(&id, &[]);
    opts.args = vec!["/no-such-program".into()];
    let bundle = sandbox.bundle(&id, &opts);
    let err = sandbox
        .runc
        .create(&id, &bundle, ContainerIo::null())
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Failed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("create container {id}: ")),
        "{text}"
    );
    assert!(text.contains("/no-such-program"), "{text}");
    // A failed create leaves nothing behind to delete.
    let state = sandbox.runc.state(&id).await;
    assert!(
        matches!(state, Err(RuntimeError::NotFound { .. })),
        "{state:?}"
    );
    let leftover: Vec<_> = sandbox
        .cgroup_dirs_of(&id)
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    assert!(
        leftover.is_empty(),
        "cgroups left by a failed create: {leftover:?}"
    );
}

#[tokio::test]
async fn the_probes_output_reaches_the_pipe_and_ends_when_it_exits() {
    let sandbox = Sandbox::new();
    let id: ContainerId = sandbox.id("exits");
    let bundle = sandbox.bundle(&id, &sandbox.options(&id, &["cat", "/proc/self/comm"]));
    let (reader, writer) = std::io::pipe().unwrap();
    let lines = Lines::new(reader);
    let io = ContainerIo::null().with_stdout(writer);
    sandbox.runc.create(&id, &bundle, io).await.unwrap();
    sandbox.runc.start(&id).await.unwrap();
    assert_eq!(
        lines.to_end(),
        vec!["cat /proc/self/comm=probe".to_string()]
    );
    let _ = sandbox.runc.kill(&id, Signal::KILL).await;
    sandbox.runc.delete(&id, true).await.unwrap();
}

#[tokio::test]
async fn a_foreground_run_streams_the_output_and_answers_the_exit_code() {
    let sandbox = Sandbox::new();
    let id: ContainerId = sandbox.id("step");
    let args = ["cat", "/proc/self/comm", "exit", "3"];
    let bundle = sandbox.bundle(&id, &sandbox.options(&id, &args));
    let (reader, writer) = std::io::pipe().unwrap();
    let lines = Lines::new(reader);
    let io = ContainerIo::null().with_stdout(writer);
    let deadline = tokio::time::Instant::now() + spread_testkit::runc::PATIENCE;
    let exit = sandbox.runc.run_to_exit(&id, &bundle, io, deadline).await;
    assert_eq!(exit.unwrap(), RunExit::Exited(3));
    assert_eq!(
        lines.to_end(),
        vec!["cat /proc/self/comm=probe".to_string()]
    );
    assert_eq!(sandbox.state(&id), None, "runc removes what exited");
}

#[tokio::test]
async fn a_foreground_run_past_its_deadline_is_killed_and_removed() {
    let sandbox = Sandbox::new();
    let id: ContainerId = sandbox.id("slow");
    let bundle = sandbox.bundle(&id, &sandbox.options(&id, &["sleep"]));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(500);
    let exit = sandbox
        .runc
        .run_to_exit(&id, &bundle, ContainerIo::null(), deadline)
        .await;
    assert_eq!(exit.unwrap(), RunExit::TimedOut);
    assert_eq!(sandbox.state(&id), None, "runc removes what it killed");
}

#[tokio::test]
async fn a_foreground_run_that_cannot_start_reports_runcs_reason() {
    let sandbox = Sandbox::new();
    let id: ContainerId = sandbox.id("missing");
    let mut opts = sandbox.options(&id, &[]);
    opts.args = vec!["/no-such-program".into()];
    let bundle = sandbox.bundle(&id, &opts);
    let deadline = tokio::time::Instant::now() + spread_testkit::runc::PATIENCE;
    let err = sandbox
        .runc
        .run_to_exit(&id, &bundle, ContainerIo::null(), deadline)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-program"), "{err}");
}
