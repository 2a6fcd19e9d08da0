//! The generated config.json, snapshot-tested, and the refusals of unsafe options.

use proptest::prelude::*;

use super::*;

const HOST: HostLimits = HostLimits { nofile_hard: 4096 };

fn options() -> SpecOptions {
    let mut opts = SpecOptions::new(
        vec!["/app/web".into(), "--port".into(), "8080".into()],
        "web-1",
        200_000,
        "/spread/web-1",
    );
    opts.env.push("PORT=8080".into());
    opts.memory_bytes = Some(256 << 20);
    opts.cpu_millis = Some(500);
    opts
}

#[test]
fn the_config_json_of_a_web_instance_matches_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options();
    opts.netns_path = Some(dir.path().join("netns/web-1"));
    opts.resolv_conf = Some(dir.path().join("resolv.conf"));
    opts.hosts = Some(dir.path().join("hosts"));
    let spec = opts.to_spec(&HOST).unwrap();
    let path = write_bundle(dir.path(), &spec).unwrap();
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let temp = regex_escape(&dir.path().display().to_string());
    // The seccomp rules have their own one-line-per-rule snapshot in seccomp.rs.
    insta::with_settings!({ filters => vec![(temp.as_str(), "[TEMP]")] }, {
        insta::assert_json_snapshot!("web_instance_config", written, {
            ".linux.seccomp.syscalls" => "[default_seccomp rules]",
        });
    });
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escape = !c.is_ascii_alphanumeric() && c != '/';
            escape.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

#[test]
fn the_spec_written_to_a_bundle_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let spec = options().to_spec(&HOST).unwrap();
    let path = write_bundle(dir.path(), &spec).unwrap();
    assert_eq!(Spec::load(&path).unwrap(), spec);
    assert!(!dir.path().join(".config.json.partial").exists());
}

#[test]
fn writing_into_a_missing_directory_names_the_path() {
    let spec = options().to_spec(&HOST).unwrap();
    let err = write_bundle(Path::new("/nonexistent/bundle"), &spec).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/bundle/config.json"),
        "{err}"
    );
}

#[test]
fn memory_swap_equals_the_limit_and_cpu_millis_become_a_quota_per_100ms() {
    let spec = options().to_spec(&HOST).unwrap();
    let resources = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    let memory = resources.memory().unwrap();
    assert_eq!(
        (memory.limit(), memory.swap()),
        (Some(256 << 20), Some(256 << 20))
    );
    let cpu = resources.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
    assert_eq!(resources.pids().unwrap().limit(), 1024);
}

#[test]
fn without_a_netns_path_the_container_gets_a_new_network_namespace() {
    let spec = options().to_spec(&HOST).unwrap();
    let namespaces = spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap();
    let net = namespaces
        .iter()
        .find(|ns| ns.typ() == LinuxNamespaceType::Network)
        .unwrap();
    assert_eq!(net.path(), &None);
    assert_eq!(namespaces.len(), 7);
    // A network namespace of its own lets the container mount a sysfs of its own.
    let sys = spec
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/sys"));
    assert_eq!(sys.unwrap().typ().as_deref(), Some("sysfs"));
}

#[test]
fn unsafe_or_malformed_options_are_refused_naming_the_field() {
    type Change = fn(&mut SpecOptions);
    let cases: Vec<(Change, &str)> = vec![
        (|o| o.args.clear(), "args is empty"),
        (|o| o.env.push("NOEQUALS".into()), "\"NOEQUALS\""),
        (|o| o.hostname = "web_1".into(), "hostname \"web_1\""),
        (|o| o.hostname = String::new(), "is empty"),
        (
            |o| o.uid_map_host_start = 0,
            "container root would be host root",
        ),
        (
            |o| o.uid_map_host_start = u32::MAX - 10,
            "runs past the largest uid",
        ),
        (|o| o.id_range = 0, "no ids would be mapped"),
        (|o| o.cwd = "app".into(), "cwd app"),
        (
            |o| o.hosts = Some("/etc/../etc/hosts".into()),
            "hosts /etc/../etc/hosts",
        ),
        (
            |o| o.cgroups_path = "spread/web".into(),
            "must start with '/'",
        ),
        (
            |o| o.cgroups_path = "/spread/../web".into(),
            "cgroups_path \"/spread/../web\"",
        ),
        (
            |o| o.cgroups_path = "/system.slice:spread:web".into(),
            "cgroups_path",
        ),
        (|o| o.memory_bytes = Some(4096), "memory_bytes 4096"),
        (|o| o.cpu_millis = Some(5), "cpu_millis 5"),
        (|o| o.pids_limit = -1, "pids_limit -1"),
        (|o| o.tmp_size_bytes = 0, "tmp_size_bytes 0"),
        (
            |o| o.rootfs = Some("builder/root".into()),
            "rootfs builder/root",
        ),
        (
            |o| {
                o.binds.push(Bind {
                    source: "/srv/../etc".into(),
                    destination: "/app".into(),
                    readonly: false,
                })
            },
            "bind source /srv/../etc",
        ),
        (
            |o| {
                o.binds.push(Bind {
                    source: "/srv/app".into(),
                    destination: "app".into(),
                    readonly: false,
                })
            },
            "bind destination app",
        ),
    ];
    for (change, expected) in cases {
        let mut opts = options();
        change(&mut opts);
        let err = opts.to_spec(&HOST).unwrap_err().to_string();
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
    }
}

#[test]
fn a_given_root_and_binds_appear_in_the_spec_after_the_standard_mounts() {
    let mut opts = options();
    opts.rootfs = Some("/var/cache/spread/builder/python".into());
    opts.binds = vec![
        Bind {
            source: "/srv/build/app".into(),
            destination: "/app".into(),
            readonly: false,
        },
        Bind {
            source: "/etc/ssl/certs/ca-certificates.crt".into(),
            destination: "/etc/ssl/certs/ca-certificates.crt".into(),
            readonly: true,
        },
    ];
    let spec = opts.to_spec(&HOST).unwrap();
    let root = spec.root().as_ref().unwrap();
    assert_eq!(root.path(), Path::new("/var/cache/spread/builder/python"));
    let mounts = spec.mounts().as_ref().unwrap();
    let [.., app, certs] = mounts.as_slice() else {
        panic!("too few mounts: {mounts:?}");
    };
    assert_eq!(app.destination(), Path::new("/app"));
    assert_eq!(app.source().as_deref(), Some(Path::new("/srv/build/app")));
    let app_options = app.options().as_ref().unwrap();
    assert!(app_options.contains(&"rbind".to_owned()) && !app_options.contains(&"ro".to_owned()));
    assert!(certs.options().as_ref().unwrap().contains(&"ro".to_owned()));
}

#[test]
fn host_limits_are_read_from_a_proc_limits_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits");
    std::fs::write(
        &path,
        "Limit                     Soft Limit           Hard Limit           Units     \n\
         Max processes             95421                95421                processes \n\
         Max open files            1024                 20000                files     \n",
    )
    .unwrap();
    assert_eq!(
        HostLimits::read_from(&path).unwrap(),
        HostLimits {
            nofile_hard: 20_000
        }
    );
    std::fs::write(&path, "Max open files  unlimited  unlimited  files\n").unwrap();
    assert_eq!(HostLimits::read_from(&path).unwrap().nofile_hard, u64::MAX);
    std::fs::write(&path, "Max processes 1 1 processes\n").unwrap();
    assert!(
        HostLimits::read_from(&path)
            .unwrap_err()
            .to_string()
            .contains("Max open files")
    );
}

#[test]
fn this_hosts_limits_can_be_read() {
    assert!(HostLimits::read().unwrap().nofile_hard > 0);
}

proptest! {
    #[test]
    fn the_open_file_limit_never_exceeds_the_hosts_hard_limit(
        wanted in 1u64..=u64::MAX,
        hard in 1u64..=u64::MAX,
    ) {
        let mut opts = options();
        opts.nofile = wanted;
        let spec = opts.to_spec(&HostLimits { nofile_hard: hard }).unwrap();
        let rlimits = spec.process().as_ref().unwrap().rlimits().as_ref().unwrap();
        prop_assert_eq!(rlimits.len(), 1);
        prop_assert_eq!(rlimits[0].typ(), PosixRlimitType::RlimitNofile);
        prop_assert!(rlimits[0].hard() <= hard && rlimits[0].soft() <= rlimits[0].hard());
        prop_assert_eq!(rlimits[0].hard(), wanted.min(hard));
    }
}
