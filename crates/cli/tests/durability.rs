//! Kill -9 at any moment loses no acknowledged change and leaves nothing half-applied.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Platform;

const WRITERS: usize = 8;

/// Each writer owns an app with `start` releases and sets COUNTER to the version it expects
/// next; returns how many writes were acknowledged.
async fn write_until_stopped(
    client: spread_client::Client,
    app: String,
    start: u64,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut acked = 0;
    while !stop.load(Ordering::Relaxed) {
        let next = start + acked + 1;
        let patch = BTreeMap::from([("COUNTER".to_owned(), Some(next.to_string()))]);
        match client.update_config(&app, &patch).await {
            Ok(release) => {
                assert_eq!(
                    release.version, next,
                    "versions follow the acknowledged writes"
                );
                acked += 1;
            }
            // The server died mid-request: that write was never acknowledged. Anything else is
            // a real failure, not the kill.
            Err(spread_client::ClientError::Unreachable { .. }) => break,
            Err(e) => panic!("{app}: write {next} failed: {e}"),
        }
    }
    acked
}

#[test]
fn acknowledged_writes_survive_kill_9_at_any_moment() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut p = Platform::start_with(&["--snapshot-every", "200"]);
    let apps: Vec<String> = (0..WRITERS).map(|i| format!("app-{i}")).collect();
    for app in &apps {
        p.ok(&["apps", "create", app]);
    }
    let mut acked_total: BTreeMap<String, u64> = apps.iter().map(|a| (a.clone(), 0)).collect();

    // Kill at a different moment each round; writers resume from what survived.
    for (round, run_for) in [150u64, 700, 1300].into_iter().enumerate() {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = apps
            .iter()
            .map(|app| {
                let client = p.client();
                runtime.spawn(write_until_stopped(
                    client,
                    app.clone(),
                    acked_total[app],
                    stop.clone(),
                ))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(run_for));
        p.kill9();
        stop.store(true, Ordering::Relaxed);
        let acked: Vec<u64> = runtime.block_on(futures_join(writers));
        p.restart();

        let client = p.client();
        for (app, acked) in apps.iter().zip(acked) {
            let releases = runtime.block_on(client.releases(app)).unwrap();
            let config = runtime.block_on(client.config(app)).unwrap();
            let kept = releases.len() as u64;
            let before = acked_total[app];
            assert!(
                kept >= before + acked,
                "round {round}: {app} kept {kept} releases but {} were acknowledged",
                before + acked
            );
            assert!(
                kept <= before + acked + 1,
                "round {round}: {app} kept more than the one write in flight"
            );
            // A write in flight at the kill may or may not have landed, but nothing is half-applied:
            // releases are dense and each one's config is the one its write asked for.
            for (i, release) in releases.iter().enumerate() {
                assert_eq!(release.version, i as u64 + 1);
                assert_eq!(release.config["COUNTER"], release.version.to_string());
            }
            assert_eq!(
                config.get("COUNTER").cloned(),
                releases.last().map(|r| r.config["COUNTER"].clone())
            );
            acked_total.insert(app.clone(), kept);
        }
    }
    assert!(
        acked_total.values().sum::<u64>() > 0,
        "the writers made progress"
    );
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<u64>>) -> Vec<u64> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
