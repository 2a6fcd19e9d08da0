//! The fake passes the conformance suite, and its scripting does what tests will rely on.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use tempfile::TempDir;

use super::*;
use crate::testing::{BundleFactory, conformance_suite};

/// Bundles that are a directory with an empty config.json: all the fake looks at.
struct EmptyBundles(Arc<TempDir>);

impl EmptyBundles {
    fn new() -> Self {
        Self(Arc::new(tempfile::tempdir().unwrap()))
    }
}

impl BundleFactory for EmptyBundles {
    fn long_running(&self, id: &ContainerId) -> PathBuf {
        let dir = self.0.path().join(id.as_str());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        dir
    }
}

fn id(name: &str) -> ContainerId {
    ContainerId::parse(name).unwrap()
}

async fn running(fake: &FakeRuntime, bundles: &EmptyBundles, name: &str) -> ContainerId {
    let id = id(name);
    fake.create(&id, &bundles.long_running(&id), ContainerIo::null())
        .await
        .unwrap();
    fake.start(&id).await.unwrap();
    id
}

#[tokio::test]
async fn the_fake_passes_the_conformance_suite() {
    conformance_suite(|| (FakeRuntime::new(), EmptyBundles::new())).await;
}

#[tokio::test]
async fn a_bundle_without_config_json_is_refused_like_runc_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = FakeRuntime::new()
        .create(&id("a"), dir.path(), ContainerIo::null())
        .await;
    assert!(
        matches!(err, Err(RuntimeError::Failed { op: Op::Create, .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_scripted_exit_stops_the_container_with_its_code() {
    let (fake, bundles) = (FakeRuntime::new(), EmptyBundles::new());
    let id = running(&fake, &bundles, "web").await;
    fake.exit(&id, 3).unwrap();
    assert_eq!(fake.state(&id).await.unwrap().status, Status::Stopped);
    assert_eq!(fake.exit_of(&id), Some(Exit::Code(3)));
}

#[tokio::test]
async fn a_container_scripted_to_crash_on_start_is_stopped_right_after_start() {
    let (fake, bundles) = (FakeRuntime::new(), EmptyBundles::new());
    let id = id("crasher");
    fake.exit_on_start(&id, 1);
    fake.create(&id, &bundles.long_running(&id), ContainerIo::null())
        .await
        .unwrap();
    assert_eq!(fake.state(&id).await.unwrap().status, Status::Created);
    fake.start(&id).await.unwrap();
    assert_eq!(fake.state(&id).await.unwrap().status, Status::Stopped);
    assert_eq!(fake.exit_of(&id), Some(Exit::Code(1)));
}

#[tokio::test]
async fn kill_records_the_signal_and_an_ignored_term_leaves_it_running_until_kill() {
    let (fake, bundles) = (FakeRuntime::new(), EmptyBundles::new());
    let id = running(&fake, &bundles, "stubborn").await;
    fake.ignore_signal(&id, Signal::TERM).unwrap();
    fake.kill(&id, Signal::TERM).await.unwrap();
    assert_eq!(fake.state(&id).await.unwrap().status, Status::Running);
    fake.kill(&id, Signal::KILL).await.unwrap();
    assert_eq!(fake.state(&id).await.unwrap().status, Status::Stopped);
    assert_eq!(fake.signals(&id), vec![Signal::TERM, Signal::KILL]);
    assert_eq!(fake.exit_of(&id), Some(Exit::Signal(Signal::KILL)));
}

#[tokio::test]
async fn an_injected_failure_fails_only_the_next_call_of_that_operation() {
    let (fake, bundles) = (FakeRuntime::new(), EmptyBundles::new());
    let id = id("flaky");
    fake.fail_next(Op::Start, "cgroup busy");
    fake.create(&id, &bundles.long_running(&id), ContainerIo::null())
        .await
        .unwrap();
    let err = fake.start(&id).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "start container flaky: runtime failed: cgroup busy"
    );
    fake.start(&id).await.unwrap();
}

#[tokio::test]
async fn the_containers_stdout_is_closed_when_its_process_ends() {
    let (fake, bundles) = (FakeRuntime::new(), EmptyBundles::new());
    let (mut reader, writer) = std::io::pipe().unwrap();
    let id = id("piped");
    let io = ContainerIo::null().with_stdout(writer);
    fake.create(&id, &bundles.long_running(&id), io)
        .await
        .unwrap();
    fake.start(&id).await.unwrap();
    fake.kill(&id, Signal::TERM).await.unwrap();
    let mut out = Vec::new();
    assert_eq!(reader.read_to_end(&mut out).unwrap(), 0, "EOF, not a hang");
}

#[tokio::test]
async fn clones_share_their_containers_and_deleted_ones_are_forgotten() {
    let (fake, bundles) = (FakeRuntime::new(), EmptyBundles::new());
    let other = fake.clone();
    let id = running(&fake, &bundles, "shared").await;
    assert_eq!(other.ids(), vec![id.clone()]);
    other.delete(&id, true).await.unwrap();
    assert!(fake.ids().is_empty());
}
