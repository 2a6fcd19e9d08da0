//! The conformance suite every `Runtime` must pass; run against `FakeRuntime` and real runc.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{ContainerId, ContainerIo, Runtime, RuntimeError, Signal, Status};

/// How long a case may wait for a container to reach a status before it is called stuck.
const PATIENCE: Duration = Duration::from_secs(30);

/// Makes bundles for the suite; the runc tests build real root filesystems here.
pub trait BundleFactory: Send + Sync {
    /// A bundle for `id` whose process runs until it is signalled.
    fn long_running(&self, id: &ContainerId) -> PathBuf;
}

/// Runs every case, each with a fresh runtime and bundle factory from `make`, and panics
/// listing the cases that failed. Containers a case made are force-deleted after it, pass or
/// fail, before the runtime and factory are dropped.
pub async fn conformance_suite<R: Runtime, F: BundleFactory>(make: impl Fn() -> (R, F)) {
    let mut failures: Vec<String> = Vec::new();
    macro_rules! run {
        ($($case:ident),* $(,)?) => {$({
            let (runtime, bundles) = make();
            let mut cx = Cx { runtime: &runtime, bundles: &bundles, made: Vec::new() };
            let outcome = match tokio::time::timeout(PATIENCE * 4, $case(&mut cx)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("did not finish within {:?}", PATIENCE * 4)),
            };
            if let Err(why) = outcome {
                failures.push(format!("{}: {why}", stringify!($case)));
            }
            for id in std::mem::take(&mut cx.made) {
                if let Err(e) = runtime.delete(&id, true).await {
                    failures.push(format!("{}: cleanup: {e}", stringify!($case)));
                }
            }
        })*};
    }
    run!(
        a_container_goes_from_created_to_running_to_stopped_and_is_then_gone,
        creating_an_id_twice_fails_with_already_exists,
        starting_twice_fails_with_invalid_state,
        deleting_a_running_container_without_force_is_refused_and_it_keeps_running,
        force_deleting_a_running_container_removes_it,
        every_operation_on_an_unknown_id_is_not_found_except_force_delete,
        a_stopped_container_can_be_neither_started_nor_signalled,
        a_created_container_can_be_deleted_without_being_started,
        killing_a_created_container_stops_it,
        run_creates_and_starts_in_one_step,
        running_an_existing_id_fails_with_already_exists_and_leaves_it_alone,
    );
    assert!(
        failures.is_empty(),
        "conformance failures:\n  {}",
        failures.join("\n  ")
    );
}

type Outcome = Result<(), String>;

struct Cx<'a, R> {
    runtime: &'a R,
    bundles: &'a dyn BundleFactory,
    made: Vec<ContainerId>,
}

impl<R: Runtime> Cx<'_, R> {
    /// A fresh id, unique in this process, remembered for cleanup.
    fn id(&mut self, name: &str) -> ContainerId {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = ContainerId::parse(&format!("{name}-{}-{n}", std::process::id())).unwrap();
        self.made.push(id.clone());
        id
    }

    async fn create(&mut self, name: &str) -> Result<ContainerId, String> {
        let id = self.id(name);
        let bundle = self.bundles.long_running(&id);
        self.runtime
            .create(&id, &bundle, ContainerIo::null())
            .await
            .map_err(|e| e.to_string())?;
        Ok(id)
    }

    async fn running(&mut self, name: &str) -> Result<ContainerId, String> {
        let id = self.create(name).await?;
        self.runtime.start(&id).await.map_err(|e| e.to_string())?;
        self.wait_for(&id, Status::Running).await?;
        Ok(id)
    }

    /// Polls `state` until `id` reports `want`; a process takes a moment to die after a signal.
    async fn wait_for(&self, id: &ContainerId, want: Status) -> Outcome {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let state = self.runtime.state(id).await.map_err(|e| e.to_string())?;
            if state.status == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{id} stayed {} instead of becoming {want}",
                    state.status
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Checks that `result` failed the way `expected` describes.
fn expect_err<T: std::fmt::Debug>(
    result: Result<T, RuntimeError>,
    expected: &str,
    matches: impl Fn(&RuntimeError) -> bool,
) -> Outcome {
    match result {
        Err(e) if matches(&e) => Ok(()),
        Err(e) => Err(format!("expected {expected}, got error {e:?}")),
        Ok(value) => Err(format!("expected {expected}, got Ok({value:?})")),
    }
}

fn not_found(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::NotFound { .. })
}

fn invalid_state(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::InvalidState { .. })
}

async fn a_container_goes_from_created_to_running_to_stopped_and_is_then_gone<R: Runtime>(
    cx: &mut Cx<'_, R>,
) -> Outcome {
    let id = cx.create("lifecycle").await?;
    let state = cx.runtime.state(&id).await.map_err(|e| e.to_string())?;
    if state.status != Status::Created || state.pid.is_none() || state.id != id {
        return Err(format!("after create: {state:?}"));
    }
    cx.runtime.start(&id).await.map_err(|e| e.to_string())?;
    cx.wait_for(&id, Status::Running).await?;
    cx.runtime
        .kill(&id, Signal::KILL)
        .await
        .map_err(|e| e.to_string())?;
    cx.wait_for(&id, Status::Stopped).await?;
    let state = cx.runtime.state(&id).await.map_err(|e| e.to_string())?;
    if state.pid.is_some() {
        return Err(format!("a stopped container still has a pid: {state:?}"));
    }
    cx.runtime
        .delete(&id, false)
        .await
        .map_err(|e| e.to_string())?;
    expect_err(
        cx.runtime.state(&id).await,
        "NotFound after delete",
        not_found,
    )
}

async fn creating_an_id_twice_fails_with_already_exists<R: Runtime>(cx: &mut Cx<'_, R>) -> Outcome {
    let id = cx.create("twice").await?;
    let bundle = cx.bundles.long_running(&id);
    let again = cx.runtime.create(&id, &bundle, ContainerIo::null()).await;
    refused_as_existing(cx, &id, again, "the second create").await
}

/// `attempt` on the existing, created `id` failed with AlreadyExists and left it created.
async fn refused_as_existing<R: Runtime>(
    cx: &Cx<'_, R>,
    id: &ContainerId,
    attempt: Result<(), RuntimeError>,
    what: &str,
) -> Outcome {
    expect_err(attempt, "AlreadyExists", |e| {
        matches!(e, RuntimeError::AlreadyExists { .. })
    })?;
    let state = cx.runtime.state(id).await.map_err(|e| e.to_string())?;
    match state.status {
        Status::Created => Ok(()),
        other => Err(format!("the first container became {other} after {what}")),
    }
}

async fn starting_twice_fails_with_invalid_state<R: Runtime>(cx: &mut Cx<'_, R>) -> Outcome {
    let id = cx.running("start-twice").await?;
    expect_err(cx.runtime.start(&id).await, "InvalidState", invalid_state)
}

async fn deleting_a_running_container_without_force_is_refused_and_it_keeps_running<R: Runtime>(
    cx: &mut Cx<'_, R>,
) -> Outcome {
    let id = cx.running("delete-running").await?;
    expect_err(
        cx.runtime.delete(&id, false).await,
        "InvalidState",
        invalid_state,
    )?;
    cx.wait_for(&id, Status::Running).await
}

async fn force_deleting_a_running_container_removes_it<R: Runtime>(cx: &mut Cx<'_, R>) -> Outcome {
    let id = cx.running("force-delete").await?;
    cx.runtime
        .delete(&id, true)
        .await
        .map_err(|e| e.to_string())?;
    expect_err(
        cx.runtime.state(&id).await,
        "NotFound after force delete",
        not_found,
    )
}

async fn every_operation_on_an_unknown_id_is_not_found_except_force_delete<R: Runtime>(
    cx: &mut Cx<'_, R>,
) -> Outcome {
    let id = cx.id("unknown");
    expect_err(
        cx.runtime.state(&id).await,
        "NotFound from state",
        not_found,
    )?;
    expect_err(
        cx.runtime.start(&id).await,
        "NotFound from start",
        not_found,
    )?;
    expect_err(
        cx.runtime.kill(&id, Signal::TERM).await,
        "NotFound from kill",
        not_found,
    )?;
    expect_err(
        cx.runtime.delete(&id, false).await,
        "NotFound from delete",
        not_found,
    )?;
    cx.runtime
        .delete(&id, true)
        .await
        .map_err(|e| format!("force delete: {e}"))
}

async fn a_stopped_container_can_be_neither_started_nor_signalled<R: Runtime>(
    cx: &mut Cx<'_, R>,
) -> Outcome {
    let id = cx.running("stopped").await?;
    cx.runtime
        .kill(&id, Signal::KILL)
        .await
        .map_err(|e| e.to_string())?;
    cx.wait_for(&id, Status::Stopped).await?;
    expect_err(
        cx.runtime.start(&id).await,
        "InvalidState from start",
        invalid_state,
    )?;
    expect_err(
        cx.runtime.kill(&id, Signal::KILL).await,
        "InvalidState from kill",
        invalid_state,
    )
}

async fn a_created_container_can_be_deleted_without_being_started<R: Runtime>(
    cx: &mut Cx<'_, R>,
) -> Outcome {
    let id = cx.create("delete-created").await?;
    cx.runtime
        .delete(&id, false)
        .await
        .map_err(|e| e.to_string())?;
    expect_err(
        cx.runtime.state(&id).await,
        "NotFound after delete",
        not_found,
    )
}

async fn killing_a_created_container_stops_it<R: Runtime>(cx: &mut Cx<'_, R>) -> Outcome {
    let id = cx.create("kill-created").await?;
    cx.runtime
        .kill(&id, Signal::KILL)
        .await
        .map_err(|e| e.to_string())?;
    cx.wait_for(&id, Status::Stopped).await
}

async fn run_creates_and_starts_in_one_step<R: Runtime>(cx: &mut Cx<'_, R>) -> Outcome {
    let id = cx.id("run");
    let bundle = cx.bundles.long_running(&id);
    cx.runtime
        .run(&id, &bundle, ContainerIo::null())
        .await
        .map_err(|e| e.to_string())?;
    let state = cx.runtime.state(&id).await.map_err(|e| e.to_string())?;
    if state.status != Status::Running || state.pid.is_none() {
        return Err(format!("after run: {state:?}"));
    }
    cx.runtime
        .kill(&id, Signal::KILL)
        .await
        .map_err(|e| e.to_string())?;
    cx.wait_for(&id, Status::Stopped).await
}

async fn running_an_existing_id_fails_with_already_exists_and_leaves_it_alone<R: Runtime>(
    cx: &mut Cx<'_, R>,
) -> Outcome {
    let id = cx.create("run-twice").await?;
    let bundle = cx.bundles.long_running(&id);
    let again = cx.runtime.run(&id, &bundle, ContainerIo::null()).await;
    refused_as_existing(cx, &id, again, "run").await
}
