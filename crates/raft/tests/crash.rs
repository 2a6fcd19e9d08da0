//! A writer process killed with SIGKILL loses no acknowledged write and leaves nothing half-applied.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};

use spread_core::{AppId, Command, ConfigKey, Outcome};
use spread_raft::{RaftConfig, RaftNode};
use tempfile::TempDir;

mod common;
use common::{app_name, at, set_var};

const CHILD_DIR_VAR: &str = "SPREAD_RAFT_CRASH_CHILD_DIR";
const CHILD_TEST: &str = "a_child_process_proposes_until_killed";
const APPS: usize = 4;

fn config(dir: &Path) -> RaftConfig {
    // Snapshot often, so the kill also lands during snapshots and purges.
    RaftConfig {
        snapshot_every: 50,
        ..RaftConfig::new(dir)
    }
}

#[test]
#[ignore = "run as a child process by acknowledged_writes_survive_kill_9"]
fn a_child_process_proposes_until_killed() {
    let dir = std::env::var(CHILD_DIR_VAR).expect("the parent test names the data directory");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let node = RaftNode::open(config(Path::new(&dir))).await.unwrap();
        for n in 0..APPS {
            let id = AppId(uuid::Uuid::from_u128(n as u128 + 1));
            node.propose(Command::CreateApp {
                id,
                name: app_name(n),
                at: at(),
            })
            .await
            .unwrap();
        }
        let writers: Vec<_> = (0..16)
            .map(|w| {
                let node = node.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        let app = w % APPS;
                        if let Outcome::ReleaseCreated { release, .. } =
                            node.propose(set_var(app, i)).await.unwrap()
                        {
                            println!("ack {app} {} {i}", release.version);
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = TempDir::new().unwrap();
    let mut child = Process::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            CHILD_TEST,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // The highest acknowledged release version per app, and the value each release was given.
    let mut acked: BTreeMap<usize, u64> = BTreeMap::new();
    let mut values: BTreeMap<(usize, u64), String> = BTreeMap::new();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        let Some(ack) = line.strip_prefix("ack ") else {
            continue;
        };
        let mut fields = ack.split(' ');
        let mut next = || fields.next().unwrap();
        let (app, version): (usize, u64) = (next().parse().unwrap(), next().parse().unwrap());
        values.insert((app, version), next().to_owned());
        let highest = acked.entry(app).or_default();
        *highest = (*highest).max(version);
        if acked.values().sum::<u64>() >= 600 {
            break;
        }
    }
    assert!(
        acked.values().sum::<u64>() >= 600,
        "the child stopped early: {acked:?}"
    );
    // `Child::kill` sends SIGKILL: no destructor, flush or shutdown runs in the child.
    child.kill().unwrap();
    child.wait().unwrap();

    let node = RaftNode::open(config(dir.path())).await.unwrap();
    node.read(|state| {
        for (&app, &highest) in &acked {
            let versions: Vec<u64> = state
                .app(&app_name(app))
                .unwrap()
                .releases
                .iter()
                .map(|r| r.version)
                .collect();
            let dense: Vec<u64> = (1..=versions.len() as u64).collect();
            let releases = &state.app(&app_name(app)).unwrap().releases;
            let counter = ConfigKey::parse("COUNTER").unwrap();
            for ((_, version), value) in values.range((app, 0)..=(app, u64::MAX)) {
                let release = &releases[*version as usize - 1];
                assert_eq!(
                    &release.config[&counter], value,
                    "app {app} v{version} holds what its write asked for"
                );
            }
            assert_eq!(versions, dense, "app {app} has a gap in its releases");
            assert!(
                versions.len() as u64 >= highest,
                "app {app} lost acknowledged release {highest}"
            );
        }
    });
    node.shutdown().await.unwrap();
}
