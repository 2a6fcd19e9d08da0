//! Tests of `desired_instances`: which instances a state asks for, their IDs, environment and
//! expanded commands.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::command::{Actor, Command};
use crate::model::{ReleaseImage, TokenId};
use crate::name::ConfigKey;

fn at() -> crate::Timestamp {
    crate::Timestamp::from_second(1_800_000_000).unwrap()
}

fn actor() -> Actor {
    Actor {
        token: TokenId("t".into()),
        name: "admin".into(),
    }
}

fn name(s: &str) -> AppName {
    AppName::parse(s).unwrap()
}

fn app_with_image(state: &mut State, app: &str, id: u128, processes: &[(&str, &[&str])]) {
    state
        .apply(Command::CreateApp {
            id: AppId(uuid::Uuid::from_u128(id)),
            name: name(app),
            at: at(),
        })
        .unwrap();
    deploy(state, app, processes);
}

fn deploy(state: &mut State, app: &str, processes: &[(&str, &[&str])]) {
    let image = ReleaseImage {
        reference: "r/x:1".into(),
        digest: format!("sha256:{}", "b".repeat(64)),
        env: vec!["PATH=/usr/bin".into(), "GREETING=from-image".into()],
        working_dir: Some("/app".into()),
        user: None,
    };
    let processes = processes
        .iter()
        .map(|(t, argv)| {
            (
                ProcessType::parse(t).unwrap(),
                argv.iter().map(|a| a.to_string()).collect(),
            )
        })
        .collect();
    state
        .apply(Command::DeployImage {
            app: name(app),
            image,
            processes,
            by: actor(),
            at: at(),
        })
        .unwrap();
}

fn scale(state: &mut State, app: &str, process: &str, quantity: u32) {
    let quantities = BTreeMap::from([(ProcessType::parse(process).unwrap(), quantity)]);
    state
        .apply(Command::Scale {
            app: name(app),
            quantities,
            at: at(),
        })
        .unwrap();
}

fn set(state: &mut State, app: &str, key: &str, value: &str) {
    let set = BTreeMap::from([(ConfigKey::parse(key).unwrap(), value.to_owned())]);
    let command = Command::UpdateConfig {
        app: name(app),
        set,
        unset: BTreeSet::new(),
        by: actor(),
        at: at(),
    };
    state.apply(command).unwrap();
}

fn env_of(instance: &DesiredInstance, key: &str) -> Option<String> {
    instance
        .env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

#[test]
fn apps_without_a_deployed_image_run_nothing() {
    let mut state = State::default();
    state
        .apply(Command::CreateApp {
            id: AppId(uuid::Uuid::from_u128(1)),
            name: name("shop"),
            at: at(),
        })
        .unwrap();
    set(&mut state, "shop", "A", "1");
    assert!(desired_instances(&state).is_empty());
}

#[test]
fn the_formation_decides_how_many_instances_of_each_process_run() {
    let mut state = State::default();
    app_with_image(
        &mut state,
        "shop",
        1,
        &[
            ("web", &["/srv"]),
            ("worker", &["/work"]),
            ("clock", &["/tick"]),
        ],
    );
    scale(&mut state, "shop", "web", 2);
    scale(&mut state, "shop", "worker", 1);
    let instances = desired_instances(&state);
    let names: Vec<String> = instances
        .iter()
        .map(|i| format!("{}.{}", i.process, i.index))
        .collect();
    assert_eq!(
        names,
        ["web.1", "web.2", "worker.1"],
        "clock has no formation, so it does not run"
    );
    assert!(
        instances
            .iter()
            .all(|i| i.release == 1 && i.image_digest.ends_with(&"b".repeat(64)))
    );
}

#[test]
fn the_environment_layers_image_port_config_and_spread_variables() {
    let mut state = State::default();
    app_with_image(&mut state, "shop", 1, &[("web", &["/srv"])]);
    set(&mut state, "shop", "GREETING", "from-config");
    let web = &desired_instances(&state)[0];
    assert_eq!(env_of(web, "PATH").as_deref(), Some("/usr/bin"));
    assert_eq!(
        env_of(web, "GREETING").as_deref(),
        Some("from-config"),
        "config beats the image"
    );
    assert_eq!(env_of(web, "PORT").as_deref(), Some("8080"));
    assert_eq!(env_of(web, "SPREAD_APP").as_deref(), Some("shop"));
    assert_eq!(env_of(web, "SPREAD_RELEASE").as_deref(), Some("v2"));
    assert_eq!(env_of(web, "SPREAD_PROCESS").as_deref(), Some("web"));
    assert_eq!(
        env_of(web, "SPREAD_INSTANCE").as_deref(),
        Some(web.id.as_str())
    );
    set(&mut state, "shop", "PORT", "5000");
    assert_eq!(
        env_of(&desired_instances(&state)[0], "PORT").as_deref(),
        Some("5000")
    );
}

#[test]
fn variables_in_commands_are_expanded_by_spread() {
    let mut state = State::default();
    app_with_image(
        &mut state,
        "shop",
        1,
        &[(
            "web",
            &["/srv", "--port=$PORT", "${GREETING}!", "$NOPE.", "$1", "a$"],
        )],
    );
    assert_eq!(
        desired_instances(&state)[0].argv,
        ["/srv", "--port=8080", "from-image!", ".", "$1", "a$"]
    );
}

#[test]
fn instance_ids_are_stable_and_change_with_the_release() {
    let mut state = State::default();
    app_with_image(&mut state, "shop", 1, &[("web", &["/srv"])]);
    let first = desired_instances(&state)[0].id.clone();
    assert!(first.starts_with("shop-web-1-"), "{first}");
    assert_eq!(
        desired_instances(&state)[0].id,
        first,
        "the same state gives the same ID"
    );
    set(&mut state, "shop", "A", "1");
    assert_ne!(
        desired_instances(&state)[0].id,
        first,
        "a new release runs new instances"
    );
}

#[test]
fn ids_of_long_names_fit_a_container_name() {
    let mut state = State::default();
    let long = "a".repeat(63);
    app_with_image(&mut state, &long, 1, &[(&"w".repeat(63), &["/srv"])]);
    scale(&mut state, &long, &"w".repeat(63), 1);
    for instance in desired_instances(&state) {
        assert!(instance.id.len() <= 64, "{}", instance.id);
    }
}

proptest! {
    #[test]
    fn ids_are_unique_valid_and_count_what_the_formations_ask(
        apps in proptest::collection::btree_map("[a-z]{1,3}", (0u32..4, 0u32..4), 1..5)
    ) {
        let mut state = State::default();
        let mut expected = 0;
        for (n, (app, (web, worker))) in apps.iter().enumerate() {
            app_with_image(&mut state, app, n as u128, &[("web", &["/srv"]), ("worker", &["/w"])]);
            scale(&mut state, app, "web", *web);
            scale(&mut state, app, "worker", *worker);
            expected += web + worker;
        }
        let instances = desired_instances(&state);
        prop_assert_eq!(instances.len() as u32, expected);
        let ids: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
        prop_assert_eq!(ids.len(), instances.len(), "IDs are unique");
        for id in ids {
            prop_assert!(id.len() <= 64 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{}", id);
        }
    }

    #[test]
    fn expanding_arbitrary_text_never_panics(s in ".*") {
        let env = BTreeMap::from([("A", "1")]);
        let _ = expand(&s, &env);
    }
}

#[test]
fn a_release_task_gets_the_environment_of_the_release_to_be() {
    let mut state = State::default();
    app_with_image(&mut state, "shop", 1, &[("web", &["serve"])]);
    set(&mut state, "shop", "DATABASE_URL", "postgres://db/shop");
    let app = state.app(&name("shop")).unwrap();
    let image = app.latest_release().unwrap().image.clone().unwrap();
    let task = release_task(
        app,
        image,
        vec!["migrate".into(), "$DATABASE_URL".into()],
        "build-1",
    );
    assert_eq!(task.process.as_str(), "release");
    assert_eq!(task.argv, ["migrate", "postgres://db/shop"]);
    assert_eq!(task.release, 3, "the version the release will get");
    assert!(task.id.starts_with("shop-release-"), "{}", task.id);
    assert!(task.id.len() <= 64);
    let instance = task
        .env
        .iter()
        .find(|(k, _)| k == "SPREAD_INSTANCE")
        .unwrap();
    assert_eq!(instance.1, task.id);
    let named = release_task(
        app,
        task_image(app),
        vec!["$SPREAD_INSTANCE".into()],
        "build-1",
    );
    assert_eq!(
        named.argv,
        std::slice::from_ref(&named.id),
        "the task's own ID, not a throwaway one"
    );
    let other = release_task(app, task_image(app), vec!["migrate".into()], "build-2");
    assert_ne!(other.id, task.id, "each build's task has its own ID");
    let long = "a".repeat(63);
    app_with_image(&mut state, &long, 2, &[("web", &["serve"])]);
    let app = state.app(&name(&long)).unwrap();
    let task = release_task(app, task_image(app), vec!["migrate".into()], "b");
    let again = release_task(app, task_image(app), vec!["migrate".into()], "c");
    assert!(task.id.len() <= 64, "{}", task.id);
    assert_ne!(
        task.id, again.id,
        "a long name keeps the hash that tells tasks apart"
    );
}

fn task_image(app: &App) -> ReleaseImage {
    app.latest_release().unwrap().image.clone().unwrap()
}
