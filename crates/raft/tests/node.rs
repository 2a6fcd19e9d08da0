//! `RaftNode` end to end: proposing, reading, restarting, compacting and concurrent writers.

use std::collections::BTreeMap;

use spread_core::{AppId, ConfigKey, Outcome, Rejection, State, encode_snapshot};
use spread_raft::{ProposeError, RaftConfig, RaftNode};
use tempfile::TempDir;

mod common;
use common::{app_name, create_app, open, set_var};

fn state_bytes(node: &RaftNode) -> Vec<u8> {
    node.read(encode_snapshot)
}

fn release_of(outcome: Outcome) -> spread_core::Release {
    match outcome {
        Outcome::ReleaseCreated { release, .. } => *release,
        other => panic!("expected a release, got {other:?}"),
    }
}

fn release_versions(state: &State, n: usize) -> Vec<u64> {
    state
        .app(&app_name(n))
        .unwrap()
        .releases
        .iter()
        .map(|r| r.version)
        .collect()
}

#[tokio::test]
async fn a_new_node_leads_a_cluster_of_itself() {
    let dir = TempDir::new().unwrap();
    let node = open(dir.path()).await;
    let status = node.status();
    assert_eq!(status.node_id, 1);
    assert_eq!(status.role, "leader");
    assert_eq!(status.leader, Some(1));
    assert_eq!(status.voters, vec![1]);
    assert_eq!(status.last_applied, status.last_log_index);
    node.shutdown().await.unwrap();
    assert_eq!(node.status().role, "shutdown");
}

#[tokio::test]
async fn proposed_commands_are_applied_and_visible_to_reads() {
    let dir = TempDir::new().unwrap();
    let node = open(dir.path()).await;
    let outcome = node.propose(create_app(0)).await.unwrap();
    let Outcome::AppCreated { app } = outcome else {
        panic!("expected an app, got {outcome:?}")
    };
    assert_eq!(app.id, AppId(uuid::Uuid::from_u128(1)));
    assert_eq!(
        release_of(node.propose(set_var(0, 7)).await.unwrap()).version,
        1
    );
    let config = node.read(|s| s.app(&app_name(0)).unwrap().config.clone());
    assert_eq!(
        config.get(&ConfigKey::parse("COUNTER").unwrap()).unwrap(),
        "7"
    );
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn watchers_learn_of_each_applied_change_and_of_shutdown() {
    let dir = TempDir::new().unwrap();
    let node = open(dir.path()).await;
    let seen = node.applied_after(None).await;
    assert!(
        seen.is_some(),
        "a started node has applied its first entries"
    );
    let waiter = {
        let node = node.clone();
        tokio::spawn(async move {
            let next = node.applied_after(seen).await;
            (next, node.read(|s| s.apps().count()))
        })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "nothing new was applied yet");
    node.propose(create_app(0)).await.unwrap();
    let (next, apps) = waiter.await.unwrap();
    assert!(next > seen, "{next:?} after {seen:?}");
    assert_eq!(apps, 1, "the state read after the wake-up holds the change");

    let after_shutdown = {
        let node = node.clone();
        tokio::spawn(async move { node.applied_after(next).await })
    };
    node.shutdown().await.unwrap();
    assert_eq!(after_shutdown.await.unwrap(), None);
}

#[tokio::test]
async fn a_rejected_command_comes_back_as_rejected_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let node = open(dir.path()).await;
    node.propose(create_app(0)).await.unwrap();
    let before = state_bytes(&node);
    let err = node.propose(create_app(0)).await.unwrap_err();
    assert!(
        matches!(&err, ProposeError::Rejected(Rejection::AppExists { name }) if *name == app_name(0)),
        "{err:?}"
    );
    let err = node.propose(set_var(9, 1)).await.unwrap_err();
    assert!(
        matches!(err, ProposeError::Rejected(Rejection::AppNotFound { .. })),
        "{err:?}"
    );
    assert_eq!(state_bytes(&node), before);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn proposals_after_shutdown_are_unavailable() {
    let dir = TempDir::new().unwrap();
    let node = open(dir.path()).await;
    node.shutdown().await.unwrap();
    let err = node.propose(create_app(0)).await.unwrap_err();
    assert!(matches!(err, ProposeError::Unavailable(_)), "{err:?}");
    // Shutting down twice is harmless.
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reopened_node_has_the_same_state_and_leads_again() {
    let dir = TempDir::new().unwrap();
    let node = open(dir.path()).await;
    node.propose(create_app(0)).await.unwrap();
    for i in 0..299 {
        node.propose(set_var(0, i)).await.unwrap();
    }
    let before = state_bytes(&node);
    node.shutdown().await.unwrap();
    drop(node);

    let node = open(dir.path()).await;
    assert_eq!(state_bytes(&node), before);
    assert_eq!(node.status().role, "leader");
    // The log goes on where it stopped.
    assert_eq!(
        release_of(node.propose(set_var(0, 1)).await.unwrap()).version,
        300
    );
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_bound_the_stored_log_and_survive_a_restart() {
    let dir = TempDir::new().unwrap();
    let config = RaftConfig {
        snapshot_every: 100,
        ..RaftConfig::new(dir.path())
    };
    let node = RaftNode::open(config.clone()).await.unwrap();
    for n in 0..16 {
        node.propose(create_app(n)).await.unwrap();
    }
    let writers: Vec<_> = (0..16)
        .map(|n| {
            let node = node.clone();
            tokio::spawn(async move {
                for i in 0..63 {
                    node.propose(set_var(n, i)).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    // Concurrent proposals share log entries; one at a time, each makes its own, so the log
    // surely grows well past the bound checked below.
    for i in 0..500 {
        node.propose(set_var(0, i)).await.unwrap();
    }

    let status = node.status();
    assert!(status.snapshot_index.is_some(), "{status:?}");
    assert!(status.last_log_index.unwrap() > 500, "{status:?}");
    // About one interval not yet snapshotted, one kept behind the snapshot, and some slack for
    // a snapshot still being built.
    let stored = node.stored_log_len().await.unwrap();
    assert!(stored <= 3 * 100, "{stored} log entries stored");
    let before = state_bytes(&node);
    node.shutdown().await.unwrap();

    let node = RaftNode::open(config).await.unwrap();
    assert_eq!(state_bytes(&node), before);
    assert!(node.status().snapshot_index.is_some());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sixty_four_concurrent_writers_all_succeed_with_dense_release_versions() {
    const APPS: usize = 8;
    let dir = TempDir::new().unwrap();
    let node = open(dir.path()).await;
    for n in 0..APPS {
        node.propose(create_app(n)).await.unwrap();
    }
    let writers: Vec<_> = (0..64)
        .map(|w| {
            let node = node.clone();
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for i in 0..50 {
                    let release = release_of(node.propose(set_var(w % APPS, i)).await.unwrap());
                    // The answer is the release this writer's own command made.
                    let value = &release.config[&ConfigKey::parse("COUNTER").unwrap()];
                    assert_eq!(
                        value,
                        &i.to_string(),
                        "writer {w} got someone else's answer"
                    );
                    versions.push(release.version);
                }
                (w % APPS, versions)
            })
        })
        .collect();
    let per_app = 64 / APPS * 50;
    let mut answered: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for writer in writers {
        let (app, versions) = writer.await.unwrap();
        answered.entry(app).or_default().extend(versions);
    }
    for (app, versions) in &mut answered {
        versions.sort();
        let expected: Vec<u64> = (1..=per_app as u64).collect();
        assert_eq!(
            versions, &expected,
            "app {app}: each version answered exactly once"
        );
    }

    node.read(|state| {
        for n in 0..APPS {
            let expected: Vec<u64> = (1..=per_app as u64).collect();
            assert_eq!(release_versions(state, n), expected, "app {n}");
        }
    });
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_an_error_naming_its_path() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("raft.redb"), b"not a database").unwrap();
    let err = RaftNode::open(RaftConfig::new(dir.path()))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("raft.redb"), "{err}");
}
