//! Tests of `State::apply`: examples first, then properties over random command sequences.

use proptest::prelude::*;

use super::*;
use crate::snapshot::encode_snapshot;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

fn admin() -> Actor {
    Actor {
        token: TokenId("t1".into()),
        name: "admin".into(),
    }
}

fn name(s: &str) -> AppName {
    AppName::parse(s).unwrap()
}

fn key(s: &str) -> ConfigKey {
    ConfigKey::parse(s).unwrap()
}

fn version(outcome: Outcome) -> u64 {
    match outcome {
        Outcome::ReleaseCreated { release, .. } => release.version,
        other => panic!("expected a release, got {other:?}"),
    }
}

fn create(s: &str, id: u128) -> Command {
    Command::CreateApp {
        id: AppId(uuid::Uuid::from_u128(id)),
        name: name(s),
        at: at(0),
    }
}

fn set(app: &str, pairs: &[(&str, &str)]) -> Command {
    Command::UpdateConfig {
        app: name(app),
        set: pairs.iter().map(|(k, v)| (key(k), v.to_string())).collect(),
        unset: BTreeSet::new(),
        by: admin(),
        at: at(1),
    }
}

fn unset(app: &str, keys: &[&str]) -> Command {
    Command::UpdateConfig {
        app: name(app),
        set: BTreeMap::new(),
        unset: keys.iter().map(|k| key(k)).collect(),
        by: admin(),
        at: at(2),
    }
}

#[test]
fn a_new_app_has_no_releases_and_one_web_instance() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    let app = state.app(&name("shop")).unwrap();
    assert!(app.releases.is_empty());
    assert_eq!(app.formation[&ProcessType::web()].quantity, 1);
}

#[test]
fn creating_an_app_twice_is_rejected() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    assert_eq!(
        state.apply(create("shop", 2)),
        Err(Rejection::AppExists { name: name("shop") })
    );
}

#[test]
fn every_config_change_makes_a_release_with_the_whole_config() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    let v1 = state
        .apply(set("shop", &[("FOO", "1"), ("BAR", "2")]))
        .unwrap();
    let v2 = state.apply(unset("shop", &["FOO"])).unwrap();
    assert_eq!(version(v1), 1);
    assert_eq!(version(v2), 2);
    let app = state.app(&name("shop")).unwrap();
    assert_eq!(app.releases[0].description, "Set BAR, FOO");
    assert_eq!(app.releases[0].config.len(), 2);
    assert_eq!(app.releases[1].description, "Unset FOO");
    assert_eq!(
        app.releases[1].config,
        BTreeMap::from([(key("BAR"), "2".to_owned())])
    );
    assert_eq!(app.releases[1].created_by, "admin");
    assert_eq!(app.config, app.releases[1].config);
}

#[test]
fn config_limits_are_enforced_and_leave_the_state_unchanged() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    let before = state.clone();
    let big = "x".repeat(Limits::CONFIG_VALUE_BYTES + 1);
    let err = state.apply(set("shop", &[("BIG", &big)])).unwrap_err();
    assert_eq!(err.code(), "config_value_too_large");
    assert_eq!(state, before);

    let value = "x".repeat(Limits::CONFIG_VALUE_BYTES);
    for i in 0..7 {
        state
            .apply(set("shop", &[(&format!("K{i}"), &value)]))
            .unwrap();
    }
    let err = state
        .apply(set("shop", &[("K7", &value), ("K8", &value)]))
        .unwrap_err();
    assert_eq!(err.code(), "config_too_large");
    assert_eq!(state.app(&name("shop")).unwrap().releases.len(), 7);
}

fn image(reference: &str) -> ReleaseImage {
    ReleaseImage {
        reference: reference.to_owned(),
        digest: format!("sha256:{}", "a".repeat(64)),
        env: vec!["PATH=/usr/bin".to_owned()],
        working_dir: Some("/app".to_owned()),
        user: None,
    }
}

fn deploy(app: &str, image: ReleaseImage, web: &[&str]) -> Command {
    Command::DeployImage {
        app: name(app),
        image,
        processes: BTreeMap::from([(
            ProcessType::web(),
            web.iter().map(|s| s.to_string()).collect(),
        )]),
        by: admin(),
        at: at(7),
    }
}

#[test]
fn a_deploy_makes_a_release_with_the_image_the_processes_and_the_current_config() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    state.apply(set("shop", &[("A", "1")])).unwrap();
    let outcome = state
        .apply(deploy("shop", image("r.example/shop:1"), &["/app/server"]))
        .unwrap();
    let Outcome::ReleaseCreated { release, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(release.version, 2);
    assert_eq!(release.description, "Deploy r.example/shop:1");
    assert_eq!(release.image, Some(image("r.example/shop:1")));
    assert_eq!(release.processes[&ProcessType::web()], ["/app/server"]);
    assert_eq!(release.config, BTreeMap::from([(key("A"), "1".to_owned())]));
}

#[test]
fn a_config_change_keeps_the_image_and_processes_of_the_current_release() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    state
        .apply(deploy("shop", image("r.example/shop:1"), &["/app/server"]))
        .unwrap();
    state.apply(set("shop", &[("A", "2")])).unwrap();
    let app = state.app(&name("shop")).unwrap();
    assert_eq!(app.releases[1].image, app.releases[0].image);
    assert_eq!(app.releases[1].processes, app.releases[0].processes);
}

#[test]
fn deploys_with_bad_images_or_commands_are_refused() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    let mut bad_digest = image("r/shop:1");
    bad_digest.digest = "sha256:xyz".to_owned();
    let cases = [
        (deploy("shop", bad_digest, &["/app"]), "invalid_image"),
        (deploy("shop", image(""), &["/app"]), "invalid_image"),
        (deploy("shop", image("r/shop:1"), &[]), "invalid_process"),
        (
            deploy("shop", image("r/shop:1"), &["/app", "a\0b"]),
            "invalid_process",
        ),
    ];
    for (command, code) in cases {
        assert_eq!(state.apply(command).unwrap_err().code(), code);
    }
    let empty = Command::DeployImage {
        app: name("shop"),
        image: image("r/shop:1"),
        processes: BTreeMap::new(),
        by: admin(),
        at: at(1),
    };
    assert_eq!(state.apply(empty).unwrap_err().code(), "no_processes");
    assert!(state.app(&name("shop")).unwrap().releases.is_empty());
}

#[test]
fn resources_are_set_per_process_type_within_limits() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    let resources = |memory, cpu| Command::SetResources {
        app: name("shop"),
        process: ProcessType::web(),
        memory_bytes: memory,
        cpu_millis: cpu,
        at: at(1),
    };
    state.apply(resources(Some(512 << 20), Some(500))).unwrap();
    let web = state.app(&name("shop")).unwrap().formation[&ProcessType::web()];
    assert_eq!(
        (web.quantity, web.memory_bytes, web.cpu_millis),
        (1, Some(512 << 20), Some(500))
    );
    assert_eq!(
        state
            .apply(resources(Some(1 << 20), None))
            .unwrap_err()
            .code(),
        "memory_out_of_range"
    );
    assert_eq!(
        state.apply(resources(None, Some(1))).unwrap_err().code(),
        "cpu_out_of_range"
    );
    // Scaling keeps the limits.
    let scale = Command::Scale {
        app: name("shop"),
        quantities: BTreeMap::from([(ProcessType::web(), 3)]),
        at: at(2),
    };
    state.apply(scale).unwrap();
    let web = state.app(&name("shop")).unwrap().formation[&ProcessType::web()];
    assert_eq!((web.quantity, web.memory_bytes), (3, Some(512 << 20)));
}

#[test]
fn config_values_with_nul_bytes_are_refused() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    let err = state.apply(set("shop", &[("A", "x\0y")])).unwrap_err();
    assert_eq!(err.code(), "config_value_has_nul");
    assert!(err.to_string().contains("`A`"), "{err}");
}

#[test]
fn releases_record_the_token_that_made_them() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    state.apply(set("shop", &[("A", "1")])).unwrap();
    let release = &state.app(&name("shop")).unwrap().releases[0];
    assert_eq!(release.created_by, "admin");
    assert_eq!(release.created_by_token, Some(TokenId("t1".into())));
}

#[test]
fn unknown_apps_are_rejected_by_every_command() {
    let mut state = State::default();
    let missing = Rejection::AppNotFound { name: name("nope") };
    assert_eq!(
        state.apply(set("nope", &[("A", "1")])),
        Err(missing.clone())
    );
    assert_eq!(
        state.apply(Command::DestroyApp {
            name: name("nope"),
            at: at(0)
        }),
        Err(missing.clone())
    );
    let scale = Command::Scale {
        app: name("nope"),
        quantities: BTreeMap::from([(ProcessType::web(), 2)]),
        at: at(0),
    };
    assert_eq!(state.apply(scale), Err(missing));
}

#[test]
fn scaling_sets_only_the_named_process_types() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    let worker = ProcessType::parse("worker").unwrap();
    let cmd = |q| Command::Scale {
        app: name("shop"),
        quantities: BTreeMap::from([(worker.clone(), q)]),
        at: at(3),
    };
    state.apply(cmd(3)).unwrap();
    let app = state.app(&name("shop")).unwrap();
    assert_eq!(app.formation[&worker].quantity, 3);
    assert_eq!(app.formation[&ProcessType::web()].quantity, 1);
    assert_eq!(
        state
            .apply(cmd(Limits::MAX_QUANTITY + 1))
            .unwrap_err()
            .code(),
        "quantity_too_large"
    );
}

#[test]
fn a_destroyed_name_can_be_reused_and_starts_at_v1() {
    let mut state = State::default();
    state.apply(create("shop", 1)).unwrap();
    state.apply(set("shop", &[("A", "1")])).unwrap();
    state
        .apply(Command::DestroyApp {
            name: name("shop"),
            at: at(5),
        })
        .unwrap();
    state.apply(create("shop", 2)).unwrap();
    assert_eq!(version(state.apply(set("shop", &[("A", "1")])).unwrap()), 1);
}

// === properties ===

fn arb_name() -> impl Strategy<Value = AppName> {
    prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(name)
}

fn arb_key() -> impl Strategy<Value = ConfigKey> {
    prop_oneof![Just("A"), Just("B"), Just("C"), Just("PORT")].prop_map(key)
}

fn arb_value() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => ".{0,8}",
        1 => Just("v".repeat(Limits::CONFIG_VALUE_BYTES)),
        1 => Just("v".repeat(Limits::CONFIG_VALUE_BYTES + 1)),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (arb_name(), any::<u128>(), 0i64..1000).prop_map(|(name, id, s)| Command::CreateApp {
            id: AppId(uuid::Uuid::from_u128(id)),
            name,
            at: at(s)
        }),
        (arb_name(), 0i64..1000).prop_map(|(name, s)| Command::DestroyApp { name, at: at(s) }),
        (
            arb_name(),
            proptest::collection::btree_map(arb_key(), arb_value(), 0..3),
            proptest::collection::btree_set(arb_key(), 0..2),
            0i64..1000
        )
            .prop_map(|(app, set, unset, s)| Command::UpdateConfig {
                app,
                set,
                unset,
                by: admin(),
                at: at(s)
            }),
        (
            arb_name(),
            proptest::collection::btree_map(
                prop_oneof![Just("web"), Just("worker")]
                    .prop_map(|p| ProcessType::parse(p).unwrap()),
                0u32..150,
                0..3,
            ),
            0i64..1000
        )
            .prop_map(|(app, quantities, s)| Command::Scale {
                app,
                quantities,
                at: at(s)
            }),
        (
            arb_name(),
            prop_oneof![Just("r/x:1"), Just("")],
            proptest::collection::vec("[a-z/]{0,4}", 0..3)
        )
            .prop_map(|(app, reference, argv)| Command::DeployImage {
                app,
                image: image(reference),
                processes: BTreeMap::from([(ProcessType::web(), argv)]),
                by: admin(),
                at: at(9),
            }),
        (
            arb_name(),
            proptest::option::of(0u64..(1 << 37)),
            proptest::option::of(0u32..70_000)
        )
            .prop_map(|(app, memory_bytes, cpu_millis)| Command::SetResources {
                app,
                process: ProcessType::web(),
                memory_bytes,
                cpu_millis,
                at: at(9),
            }),
        ("[a-c]", ".{0,4}").prop_map(|(id, name)| Command::CreateToken {
            id: TokenId(id),
            name,
            secret_hash: "hash".into(),
            at: at(0),
        }),
    ]
}

proptest! {
    #[test]
    fn random_command_sequences_keep_the_invariants(commands in proptest::collection::vec(arb_command(), 0..60)) {
        let mut state = State::default();
        for command in commands {
            let before = state.clone();
            let versions_before: BTreeMap<AppId, u64> =
                state.apps().map(|a| (a.id, a.next_version() - 1)).collect();
            match state.apply(command) {
                Err(_) => prop_assert_eq!(&state, &before, "a rejected command changed the state"),
                Ok(Outcome::ReleaseCreated { app, release }) => {
                    let expected = versions_before.get(&app).map_or(1, |v| v + 1);
                    prop_assert_eq!(release.version, expected, "the release follows the app's last one");
                    let app = state.apps().find(|a| a.id == app).expect("the app that got the release exists");
                    prop_assert_eq!(app.releases.last(), Some(&*release));
                    prop_assert_eq!(&app.config, &release.config, "the newest release holds the app's config");
                }
                Ok(_) => {}
            }
            for (app_name, app) in &state.apps {
                prop_assert_eq!(app_name, &app.name, "an app is stored under its own name");
                let versions: Vec<u64> = app.releases.iter().map(|r| r.version).collect();
                let expected: Vec<u64> = (1..=versions.len() as u64).collect();
                prop_assert_eq!(versions, expected, "release versions are 1, 2, 3, …");
                let size: usize = app.config.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
                prop_assert!(size <= Limits::CONFIG_TOTAL_BYTES);
                prop_assert!(app.formation.values().all(|f| f.quantity <= Limits::MAX_QUANTITY));
                prop_assert!(app.formation.values().filter_map(|f| f.memory_bytes).all(|m| (Limits::MIN_MEMORY_BYTES..=Limits::MAX_MEMORY_BYTES).contains(&m)));
                prop_assert!(app.releases.iter().all(|r| r.image.is_none() || !r.processes.is_empty()), "a release with an image says what to run");
            }
        }
    }

    #[test]
    fn apply_is_deterministic(commands in proptest::collection::vec(arb_command(), 0..60)) {
        let mut a = State::default();
        let mut b = State::default();
        let results_a: Vec<_> = commands.iter().cloned().map(|c| a.apply(c)).collect();
        let results_b: Vec<_> = commands.into_iter().map(|c| b.apply(c)).collect();
        prop_assert_eq!(results_a, results_b);
        prop_assert_eq!(encode_snapshot(&a), encode_snapshot(&b));
    }

    #[test]
    fn snapshots_round_trip(commands in proptest::collection::vec(arb_command(), 0..40)) {
        let mut state = State::default();
        for c in commands {
            let _ = state.apply(c);
        }
        let bytes = encode_snapshot(&state);
        prop_assert_eq!(crate::snapshot::decode_snapshot(&bytes).unwrap(), state);
    }

    #[test]
    fn commands_survive_a_trip_through_the_log_encoding(command in arb_command()) {
        let bytes = serde_json::to_vec(&command).unwrap();
        prop_assert_eq!(serde_json::from_slice::<Command>(&bytes).unwrap(), command);
    }
}
