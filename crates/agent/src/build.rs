//! Builds on this node: spread-build's `Builder`, with each build step run as a foreground
//! runc container in the app's own id range, on the node network (so package registries are
//! reachable through the node's NAT), with memory, pid and time limits.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;

use spread_build::{Built, Event, Failure, Job, Sandbox, SandboxStep, StepExit};
use spread_core::AppId;
use spread_oci::{Bind, ContainerId, ContainerIo, RunExit, SpecOptions, write_bundle};

use crate::agent::Agent;
use crate::executor::Executor;
use crate::uids;

/// What a build step may use.
const BUILD_PIDS: i64 = 4096;
const BUILD_TMP_BYTES: u64 = 512 << 20;

impl Agent {
    /// Builds the uploaded tarball `source` for `app` into an image in this node's store,
    /// reporting steps and output to `events` as they happen.
    pub async fn build(
        &self,
        app: AppId,
        id: String,
        source: PathBuf,
        events: impl FnMut(Event) + Send + 'static,
    ) -> Result<Built, Failure> {
        let executor = self.executor();
        let host_id_start = executor.host_id_start(app).map_err(|e| Failure {
            message: format!("cannot give the app an id range: {e}"),
            step: None,
            exit_code: None,
        })?;
        let job = Job {
            id,
            app: app.to_string(),
            source,
            host_id_start,
        };
        let handle = tokio::runtime::Handle::current();
        let mut events = events;
        tokio::task::spawn_blocking(move || {
            let sandbox = RuncSandbox {
                executor: executor.clone(),
                handle,
            };
            executor.builder().build(&job, &sandbox, &mut events)
        })
        .await
        .unwrap_or_else(|e| {
            Err(Failure {
                message: format!("the build stopped unexpectedly: {e}"),
                step: None,
                exit_code: None,
            })
        })
    }
}

/// Build steps as runc containers, run from the builder's blocking thread.
struct RuncSandbox {
    executor: Arc<Executor>,
    handle: tokio::runtime::Handle,
}

impl Sandbox for RuncSandbox {
    fn run(&self, step: &SandboxStep, output: &mut dyn FnMut(String)) -> Result<StepExit, String> {
        let (reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let writer2 = writer.try_clone().map_err(|e| format!("pipe: {e}"))?;
        let io = ContainerIo::null().with_stdout(writer).with_stderr(writer2);
        let executor = self.executor.clone();
        let owned = step.clone();
        let running = self
            .handle
            .spawn(async move { executor.run_build_step(&owned, io).await });
        // The pipe ends when every process of the step is gone (or it never started).
        for line in BufReader::new(reader).split(b'\n') {
            let Ok(line) = line else { break };
            output(
                String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_owned(),
            );
        }
        self.handle
            .block_on(running)
            .map_err(|e| format!("the step's task failed: {e}"))?
    }
}

impl Executor {
    /// Runs one build step to its end in a container of its own.
    pub(crate) async fn run_build_step(
        &self,
        step: &SandboxStep,
        io: ContainerIo,
    ) -> Result<StepExit, String> {
        let id = ContainerId::parse(&step.name).map_err(|e| e.to_string())?;
        let net = spread_net::InstanceId::parse(&step.name).map_err(|e| e.to_string())?;
        let dir = self.config().builds_dir().join("steps").join(&step.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let result = self.run_step_in(step, &id, &net, &dir, io).await;
        if let Err(e) = self.detach_network(&net).await {
            tracing::warn!(step = %step.name, error = %e, "could not detach a build step's network");
        }
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    async fn run_step_in(
        &self,
        step: &SandboxStep,
        id: &ContainerId,
        net: &spread_net::InstanceId,
        dir: &std::path::Path,
        io: ContainerIo,
    ) -> Result<StepExit, String> {
        let attachment = self.attach_network(net).await?;
        let hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{}\n",
            attachment.address, step.name
        );
        let (hosts_path, resolv_path) = (dir.join("hosts"), dir.join("resolv.conf"));
        for (path, text) in [
            (&hosts_path, hosts.as_str()),
            (&resolv_path, self.resolv_conf()),
        ] {
            uids::write_atomic(path, text.as_bytes())
                .map_err(|e| format!("write {}: {e}", path.display()))?;
        }
        let cgroups_path = self.config().cgroups_path(&step.name);
        let mut options = SpecOptions::new(
            step.argv.clone(),
            &step.name,
            step.host_id_start,
            &cgroups_path,
        );
        options.env = step.env.clone();
        options.cwd = step.cwd.clone();
        options.uid = spread_build::BUILD_UID;
        options.gid = spread_build::BUILD_UID;
        options.memory_bytes = Some(self.config().build_memory_bytes);
        options.pids_limit = BUILD_PIDS;
        options.tmp_size_bytes = BUILD_TMP_BYTES;
        options.netns_path = Some(attachment.netns_path.clone());
        options.resolv_conf = Some(resolv_path);
        options.hosts = Some(hosts_path);
        options.rootfs = Some(step.root.clone());
        options.binds = step
            .binds
            .iter()
            .map(|b| Bind {
                source: b.source.clone(),
                destination: b.destination.clone(),
                readonly: b.readonly,
            })
            .collect();
        let spec = options
            .to_spec(self.host_limits())
            .map_err(|e| format!("container config: {e}"))?;
        write_bundle(dir, &spec).map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::from_std(step.deadline);
        let exit = self
            .runc()
            .run_to_exit(id, dir, io, deadline)
            .await
            .map_err(|e| e.to_string())?;
        Ok(match exit {
            RunExit::Exited(code) => StepExit::Exited(code),
            RunExit::TimedOut => StepExit::TimedOut,
        })
    }
}
