//! Tests of rollouts (when they finish and why) and of the routes each app gets.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::command::{Actor, Command};
use crate::model::{AppId, HealthCheck, ReleaseImage, ReleaseStatus, TokenId};
use crate::plan::desired_instances;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

fn name(s: &str) -> AppName {
    AppName::parse(s).unwrap()
}

fn actor() -> Actor {
    Actor {
        token: TokenId("t".into()),
        name: "admin".into(),
    }
}

fn deploy(state: &mut State, app: &str, digest: char, second: i64) -> u64 {
    let image = ReleaseImage {
        reference: format!("r/{app}:{digest}"),
        digest: format!("sha256:{}", digest.to_string().repeat(64)),
        env: vec![],
        working_dir: None,
        user: None,
    };
    let processes = BTreeMap::from([
        (ProcessType::web(), vec!["serve".to_owned()]),
        (
            ProcessType::parse("worker").unwrap(),
            vec!["work".to_owned()],
        ),
    ]);
    let outcome = state
        .apply(Command::DeployImage {
            app: name(app),
            image,
            processes,
            by: actor(),
            at: at(second),
        })
        .unwrap();
    match outcome {
        crate::Outcome::ReleaseCreated { release, .. } => release.version,
        other => panic!("unexpected {other:?}"),
    }
}

fn shop() -> State {
    let mut state = State::default();
    state.apply(Command::EnableRollouts { at: at(0) }).unwrap();
    state
        .apply(Command::CreateApp {
            id: AppId(uuid::Uuid::from_u128(7)),
            name: name("shop"),
            at: at(0),
        })
        .unwrap();
    state
        .apply(Command::Scale {
            app: name("shop"),
            quantities: BTreeMap::from([
                (ProcessType::web(), 2),
                (ProcessType::parse("worker").unwrap(), 1),
            ]),
            at: at(0),
        })
        .unwrap();
    state
}

fn ids_of(state: &State, version: u64) -> Vec<String> {
    desired_instances(state)
        .into_iter()
        .filter(|i| i.release == version)
        .map(|i| i.id)
        .collect()
}

fn all(state: &State, version: u64, observed: Observed) -> BTreeMap<String, Observed> {
    ids_of(state, version)
        .into_iter()
        .map(|id| (id, observed.clone()))
        .collect()
}

fn finish(state: &mut State, commands: Vec<Command>) {
    for command in commands {
        state.apply(command).unwrap();
    }
}

/// Every instance of `version` is healthy at `second`: its rollout succeeds.
fn go_live(state: &mut State, version: u64, second: i64) {
    let observed = all(state, version, Observed::Healthy);
    let commands = finished_rollouts(state, &observed, at(second));
    assert_eq!(commands.len(), 1, "{commands:?}");
    finish(state, commands);
}

fn status(state: &State, version: u64) -> ReleaseStatus {
    state
        .app(&name("shop"))
        .unwrap()
        .release(version)
        .unwrap()
        .status
        .clone()
}

#[test]
fn a_deploy_runs_the_new_release_beside_the_live_one_until_it_is_healthy() {
    let mut state = shop();
    let v1 = deploy(&mut state, "shop", 'a', 0);
    let healthy = all(&state, v1, Observed::Healthy);
    go_live(&mut state, v1, 1);
    assert_eq!(status(&state, v1), ReleaseStatus::Deployed);

    let v2 = deploy(&mut state, "shop", 'b', 10);
    assert_eq!(status(&state, v2), ReleaseStatus::RollingOut);
    assert_eq!(
        ids_of(&state, v1).len(),
        3,
        "the live release keeps running"
    );
    assert_eq!(ids_of(&state, v2).len(), 3, "the new one starts beside it");

    // One new instance is healthy, the others still start: nothing is decided.
    let mut observed = healthy.clone();
    observed.insert(ids_of(&state, v2)[0].clone(), Observed::Healthy);
    assert!(finished_rollouts(&state, &observed, at(20)).is_empty());

    observed.extend(all(&state, v2, Observed::Healthy));
    let commands = finished_rollouts(&state, &observed, at(21));
    assert_eq!(
        commands,
        vec![Command::FinishRollout {
            app: name("shop"),
            version: v2,
            failure: None,
            at: at(21),
        }]
    );
    finish(&mut state, commands);
    assert_eq!(status(&state, v2), ReleaseStatus::Deployed);
    assert!(ids_of(&state, v1).is_empty(), "the old release goes away");
    assert_eq!(ids_of(&state, v2).len(), 3);
}

#[test]
fn before_rollouts_are_enabled_a_release_is_live_at_once_as_old_log_entries_meant() {
    let mut state = State::default();
    state
        .apply(Command::CreateApp {
            id: AppId(uuid::Uuid::from_u128(7)),
            name: name("shop"),
            at: at(0),
        })
        .unwrap();
    let v1 = deploy(&mut state, "shop", 'a', 0);
    assert_eq!(status(&state, v1), ReleaseStatus::Deployed);
    assert!(!state.rollouts_enabled());
    assert_eq!(
        state.apply(Command::EnableRollouts { at: at(1) }),
        Ok(crate::Outcome::RolloutsEnabled)
    );
    let v2 = deploy(&mut state, "shop", 'b', 2);
    assert_eq!(status(&state, v2), ReleaseStatus::RollingOut);
}

#[test]
fn a_new_instance_that_fails_aborts_the_rollout_and_the_old_release_keeps_serving() {
    let mut state = shop();
    let v1 = deploy(&mut state, "shop", 'a', 0);
    go_live(&mut state, v1, 1);
    let v2 = deploy(&mut state, "shop", 'b', 10);
    let mut observed = all(&state, v1, Observed::Healthy);
    let worker = desired_instances(&state)
        .into_iter()
        .find(|i| i.release == v2 && i.process.as_str() == "worker")
        .unwrap();
    observed.insert(
        worker.id,
        Observed::Failed {
            reason: "exited with code 3".into(),
        },
    );
    let commands = finished_rollouts(&state, &observed, at(12));
    finish(&mut state, commands);
    assert_eq!(
        status(&state, v2),
        ReleaseStatus::Failed {
            reason: "worker.1 exited with code 3 before it became healthy".into()
        }
    );
    assert!(ids_of(&state, v2).is_empty(), "the failed release stops");
    assert_eq!(ids_of(&state, v1).len(), 3, "the live release still runs");
    assert_eq!(
        state
            .app(&name("shop"))
            .unwrap()
            .live_release()
            .unwrap()
            .version,
        v1
    );
}

#[test]
fn a_rollout_that_never_becomes_healthy_fails_at_the_timeout_naming_what_waited() {
    let mut state = shop();
    state
        .apply(Command::SetHealthCheck {
            app: name("shop"),
            health: HealthCheck {
                path: Some("/up".into()),
                timeout_secs: 30,
            },
            at: at(0),
        })
        .unwrap();
    let v1 = deploy(&mut state, "shop", 'a', 100);
    let nothing = BTreeMap::new();
    assert!(finished_rollouts(&state, &nothing, at(129)).is_empty());
    let commands = finished_rollouts(&state, &nothing, at(130));
    finish(&mut state, commands);
    let ReleaseStatus::Failed { reason } = status(&state, v1) else {
        panic!("the rollout should have failed");
    };
    assert!(
        reason.starts_with(
            "web.1 (port 8080), web.2 (port 8080), worker.1 did not become healthy within 30 s"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("GET /up never answered 2xx or 3xx"),
        "{reason}"
    );
    assert!(
        desired_instances(&state).is_empty(),
        "nothing was ever live"
    );
}

#[test]
fn a_deploy_during_a_rollout_supersedes_it() {
    let mut state = shop();
    let v1 = deploy(&mut state, "shop", 'a', 0);
    let v2 = deploy(&mut state, "shop", 'b', 1);
    assert_eq!(status(&state, v1), ReleaseStatus::Superseded);
    assert_eq!(status(&state, v2), ReleaseStatus::RollingOut);
    assert!(ids_of(&state, v1).is_empty());
    // A late finish of the superseded rollout is refused.
    let late = Command::FinishRollout {
        app: name("shop"),
        version: v1,
        failure: None,
        at: at(2),
    };
    assert_eq!(
        state.apply(late),
        Err(crate::Rejection::NotRollingOut { version: v1 })
    );
}

#[test]
fn scaled_to_zero_a_rollout_has_nothing_to_wait_for() {
    let mut state = shop();
    state
        .apply(Command::Scale {
            app: name("shop"),
            quantities: BTreeMap::from([
                (ProcessType::web(), 0),
                (ProcessType::parse("worker").unwrap(), 0),
            ]),
            at: at(0),
        })
        .unwrap();
    let v1 = deploy(&mut state, "shop", 'a', 0);
    let commands = finished_rollouts(&state, &BTreeMap::new(), at(0));
    finish(&mut state, commands);
    assert_eq!(status(&state, v1), ReleaseStatus::Deployed);
}

#[test]
fn routes_serve_the_healthy_web_instances_of_the_live_release_only() {
    let mut state = shop();
    let v1 = deploy(&mut state, "shop", 'a', 0);
    state
        .apply(Command::AddDomain {
            app: name("shop"),
            domain: "www.shop.example".parse().unwrap(),
            at: at(0),
        })
        .unwrap();
    // Nothing is live yet: the app has a route with no backend (503, not 404).
    let routes_now = routes(&state, "localhost", |_| true);
    assert_eq!(routes_now[0].hosts, ["shop.localhost", "www.shop.example"]);
    assert!(routes_now[0].backends.is_empty());

    go_live(&mut state, v1, 1);
    let v2 = deploy(&mut state, "shop", 'b', 2);
    let v1_ids: BTreeSet<String> = ids_of(&state, v1).into_iter().collect();
    let first_web = v1_ids.iter().next().unwrap().clone();
    let routes_now = routes(&state, "localhost", |id| id != first_web);
    let backends = &routes_now[0].backends;
    assert_eq!(
        backends.len(),
        1,
        "one healthy web instance of v1: {backends:?}"
    );
    assert!(v1_ids.contains(&backends[0].instance));
    assert!(backends[0].label.starts_with("web."));
    assert_eq!(backends[0].port, 8080);
    assert!(
        !ids_of(&state, v2).contains(&backends[0].instance),
        "the rolling-out release gets no traffic"
    );
}

#[test]
fn rollback_makes_a_new_release_with_the_old_image_and_config() {
    let mut state = shop();
    let v1 = deploy(&mut state, "shop", 'a', 0);
    go_live(&mut state, v1, 1);
    state
        .apply(Command::UpdateConfig {
            app: name("shop"),
            set: BTreeMap::from([("MODE".parse().unwrap(), "new".to_owned())]),
            unset: BTreeSet::new(),
            by: actor(),
            at: at(2),
        })
        .unwrap();
    let v2 = 2;
    go_live(&mut state, v2, 3);
    let v3 = deploy(&mut state, "shop", 'c', 4);
    go_live(&mut state, v3, 5);

    // Without a version: the release deployed before the live one.
    state
        .apply(Command::Rollback {
            app: name("shop"),
            version: None,
            by: actor(),
            at: at(6),
        })
        .unwrap();
    let app = state.app(&name("shop")).unwrap();
    let v4 = app.latest_release().unwrap();
    assert_eq!(v4.description, "Rollback to v2");
    assert_eq!(v4.image, app.release(v2).unwrap().image);
    assert_eq!(v4.status, ReleaseStatus::RollingOut);

    state
        .apply(Command::Rollback {
            app: name("shop"),
            version: Some(v1),
            by: actor(),
            at: at(7),
        })
        .unwrap();
    let app = state.app(&name("shop")).unwrap();
    assert!(app.config.is_empty(), "v1's config came back");
    assert_eq!(
        state.apply(Command::Rollback {
            app: name("shop"),
            version: Some(99),
            by: actor(),
            at: at(8),
        }),
        Err(crate::Rejection::ReleaseNotFound { version: 99 })
    );
}

#[test]
fn a_domain_belongs_to_one_app() {
    let mut state = shop();
    state
        .apply(Command::CreateApp {
            id: AppId(uuid::Uuid::from_u128(8)),
            name: name("blog"),
            at: at(0),
        })
        .unwrap();
    let domain: crate::DomainName = "example.com".parse().unwrap();
    let add = |app: &str| Command::AddDomain {
        app: name(app),
        domain: domain.clone(),
        at: at(0),
    };
    state.apply(add("shop")).unwrap();
    assert_eq!(
        state.apply(add("blog")),
        Err(crate::Rejection::DomainTaken {
            domain: domain.clone(),
            app: name("shop")
        })
    );
    let remove = |app: &str| Command::RemoveDomain {
        app: name(app),
        domain: domain.clone(),
        at: at(0),
    };
    assert_eq!(
        state.apply(remove("blog")),
        Err(crate::Rejection::DomainNotFound {
            domain: domain.clone()
        })
    );
    state.apply(remove("shop")).unwrap();
    state.apply(add("blog")).unwrap();
}

#[test]
fn health_checks_are_validated() {
    let mut state = shop();
    for (path, timeout_secs) in [
        (Some("health"), 60),
        (Some("/a b"), 60),
        (Some("/ok"), 0),
        (None, 601),
    ] {
        let command = Command::SetHealthCheck {
            app: name("shop"),
            health: HealthCheck {
                path: path.map(str::to_owned),
                timeout_secs,
            },
            at: at(0),
        };
        assert!(
            matches!(
                state.apply(command),
                Err(crate::Rejection::InvalidHealthCheck { .. })
            ),
            "{path:?} {timeout_secs}"
        );
    }
    assert_eq!(
        state.app(&name("shop")).unwrap().health,
        HealthCheck::default()
    );
}
