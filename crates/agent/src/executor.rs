//! The executor: carries out the machine's actions on this node with real things: image layers
//! from the blob store, an overlay root, a network namespace, a hardened runc bundle and a
//! monitor process per container.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use spread_core::AppId;
use spread_image::{BlobStore, Digest, LayerCache, UnpackOptions, local_blobs, local_layers};
use spread_net::{InstanceId, LinuxHost, NodeNetwork};
use spread_oci::monitor::{
    self, MonitorConfig, StartedRecord, Stream, monitor_alive, read_exit, read_started,
};
use spread_oci::{
    CgroupUsage, CgroupVersion, ContainerId, HostLimits, Runc, Runtime, Signal, SpecOptions,
    cgroup_usage, write_bundle,
};

use crate::config::{AgentConfig, InstanceDir};
use crate::machine::{Exit, InstanceSpec};
use crate::uids::{self, UidRanges};
use crate::{resolv, rootfs, user};

/// How often a running instance's monitor records are looked at for its exit.
const EXIT_POLL: Duration = Duration::from_millis(25);

/// Why the agent could not start on this node.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the image store: {0}")]
    Images(#[from] spread_image::StoreError),
    #[error("cannot open the layer cache: {0}")]
    Layers(#[from] spread_image::LayerError),
    #[error("node network: {0}")]
    Net(#[from] spread_net::NetError),
    #[error("host limits: {0}")]
    Host(#[from] spread_oci::SpecError),
}

/// An instance that was found running when the agent started.
#[derive(Debug, Clone)]
pub struct Running {
    pub spec: InstanceSpec,
    pub started: StartedRecord,
}

/// What a successful start gives.
#[derive(Debug, Clone)]
pub struct Started {
    pub pid: u32,
    pub started_at: Timestamp,
}

pub struct Executor {
    config: AgentConfig,
    blobs: BlobStore,
    layers: LayerCache,
    runc: Runc,
    net: tokio::sync::Mutex<NodeNetwork<LinuxHost>>,
    addresses: Mutex<BTreeMap<String, Ipv4Addr>>,
    uids: Mutex<UidRanges>,
    host_limits: HostLimits,
    cgroup_version: CgroupVersion,
    resolv_conf: String,
    builder: spread_build::Builder,
}

impl Executor {
    /// Sets up the node network and finds what earlier runs left: running instances are
    /// returned to be supervised again; anything else (an instance that exited or lost its
    /// monitor while the agent was away, a half-made attachment) is cleaned up.
    pub async fn open(config: AgentConfig) -> Result<(Self, Vec<Running>), AgentError> {
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| AgentError::Io { what, path, source }
        };
        for dir in [config.instances_dir(), config.runc_root()] {
            std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        }
        let blobs = BlobStore::open(config.images_dir())?;
        let layers = LayerCache::open(config.layers_dir())?;
        let uid_file = config.uid_ranges_file();
        let uids = UidRanges::open(&uid_file, config.uid_base).map_err(io("read", &uid_file))?;
        let mut net = NodeNetwork::new(config.net.clone(), LinuxHost::new())?;
        net.setup().await?;
        net.recover().await?;
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let (resolv_conf, fallback) = resolv::for_containers(&host_resolv);
        if fallback {
            tracing::warn!(
                "the host's /etc/resolv.conf lists only loopback name servers, which containers cannot reach; they use public resolvers"
            );
        }
        let builder = spread_build::Builder::new(
            spread_build::BuilderConfig {
                roots: spread_build::Roots::new(&config.builder_roots, &config.builder_mirror),
                work_dir: config.builds_dir().join("work"),
                cache_dir: config.builds_dir().join("cache"),
                timeout: config.build_timeout,
                host_ca_bundle: Some(PathBuf::from(spread_build::CA_BUNDLE))
                    .filter(|path| path.is_file()),
            },
            blobs.clone(),
        );
        let executor = Self {
            builder,
            runc: Runc::new(&config.runc_binary, config.runc_root()),
            cgroup_version: CgroupVersion::detect_at(&config.cgroup_mount),
            host_limits: HostLimits::read()?,
            config,
            blobs,
            layers,
            net: tokio::sync::Mutex::new(net),
            addresses: Mutex::default(),
            uids: Mutex::new(uids),
            resolv_conf,
        };
        let running = executor.recover().await;
        Ok((executor, running))
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    pub(crate) fn builder(&self) -> &spread_build::Builder {
        &self.builder
    }

    pub(crate) fn runc(&self) -> &Runc {
        &self.runc
    }

    pub(crate) fn host_limits(&self) -> &HostLimits {
        &self.host_limits
    }

    /// The `resolv.conf` containers get.
    pub(crate) fn resolv_conf(&self) -> &str {
        &self.resolv_conf
    }

    /// The first host id of the app's id range, given it on first use.
    pub(crate) fn host_id_start(&self, app: AppId) -> Result<u32, String> {
        self.uids
            .lock()
            .unwrap()
            .host_start(app)
            .map_err(|e| e.to_string())
    }

    /// Attaches a network namespace to the node network for `id`.
    pub(crate) async fn attach_network(
        &self,
        id: &InstanceId,
    ) -> Result<spread_net::Attachment, String> {
        self.net
            .lock()
            .await
            .attach(id)
            .await
            .map_err(|e| format!("network: {e}"))
    }

    pub(crate) async fn detach_network(&self, id: &InstanceId) -> Result<(), String> {
        self.net
            .lock()
            .await
            .detach(id)
            .await
            .map_err(|e| e.to_string())
    }

    async fn recover(&self) -> Vec<Running> {
        let mut running = Vec::new();
        for (spec, dir) in self.known_instances() {
            if dir.removed().exists() {
                continue;
            }
            let state = dir.monitor();
            let started = read_started(&state).ok().flatten();
            let exited = read_exit(&state).ok().flatten().is_some();
            match started {
                Some(started) if !exited && monitor_alive(&state) => {
                    tracing::info!(instance = %spec.id, pid = started.pid, "still running; supervising it again");
                    let attachment = self.net.lock().await.attachment(&net_id(&spec.id)).cloned();
                    if let Some(a) = attachment {
                        self.addresses
                            .lock()
                            .unwrap()
                            .insert(spec.id.clone(), a.address);
                    }
                    running.push(Running { spec, started });
                }
                _ => {
                    tracing::info!(instance = %spec.id, "ended while the agent was away; cleaning up");
                    if let Err(e) = self.remove(&spec).await {
                        tracing::warn!(instance = %spec.id, error = %e, "could not clean up");
                    }
                }
            }
        }
        // Namespaces of instances nobody knows (a crash between attach and spec.json).
        let known: Vec<String> = running.iter().map(|r| r.spec.id.clone()).collect();
        let mut net = self.net.lock().await;
        let strays: Vec<InstanceId> = net
            .attachments()
            .map(|a| a.instance.clone())
            .filter(|i| !known.iter().any(|k| k == i.as_str()))
            .collect();
        for instance in strays {
            if let Err(e) = net.detach(&instance).await {
                tracing::warn!(%instance, error = %e, "could not remove a stray attachment");
            }
        }
        running
    }

    /// Every instance with a spec on disk, running, stopped or removed.
    pub fn known_instances(&self) -> Vec<(InstanceSpec, InstanceDir)> {
        let Ok(entries) = std::fs::read_dir(self.config.instances_dir()) else {
            return Vec::new();
        };
        let mut found: Vec<(InstanceSpec, InstanceDir)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let dir = self.config.instance(e.file_name().to_str()?);
                let spec = std::fs::read(dir.spec()).ok()?;
                Some((serde_json::from_slice(&spec).ok()?, dir))
            })
            .collect();
        found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        found
    }

    /// Prepares everything the instance needs and starts its monitor, which starts the
    /// container. Returns once the process runs.
    pub async fn start(&self, spec: &InstanceSpec) -> Result<Started, String> {
        let dir = self.config.instance(&spec.id);
        let host_start = self
            .uids
            .lock()
            .unwrap()
            .host_start(spec.app_id)
            .map_err(|e| format!("give the app an id range: {e}"))?;
        for path in [dir.bundle(), dir.monitor()] {
            std::fs::create_dir_all(&path)
                .map_err(|e| format!("create {}: {e}", path.display()))?;
        }
        let _ = std::fs::remove_file(dir.removed());
        let spec_json = serde_json::to_vec_pretty(spec).map_err(|e| e.to_string())?;
        uids::write_atomic(&dir.spec(), &spec_json)
            .map_err(|e| format!("write {}: {e}", dir.spec().display()))?;

        let (blobs, cache, image) = (
            self.blobs.clone(),
            self.layers.clone(),
            spec.image_digest.clone(),
        );
        let layers =
            tokio::task::spawn_blocking(move || layers_of(&blobs, &cache, &image, host_start))
                .await
                .map_err(|e| e.to_string())??;
        let rootfs = dir.rootfs();
        let overlay = dir.overlay();
        let mount_at = rootfs.clone();
        tokio::task::spawn_blocking(move || {
            rootfs::mount(&layers, &overlay, &mount_at, host_start)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("prepare the root filesystem: {e}"))?;
        let (uid, gid) = user::resolve(spec.user.as_deref(), &rootfs)?;

        let attachment = self
            .net
            .lock()
            .await
            .attach(&net_id(&spec.id))
            .await
            .map_err(|e| format!("network: {e}"))?;
        self.addresses
            .lock()
            .unwrap()
            .insert(spec.id.clone(), attachment.address);
        let hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{}\n",
            attachment.address, spec.id
        );
        for (path, text) in [
            (dir.hosts(), hosts.as_str()),
            (dir.resolv_conf(), &self.resolv_conf),
        ] {
            uids::write_atomic(&path, text.as_bytes())
                .map_err(|e| format!("write {}: {e}", path.display()))?;
        }

        let cgroups_path = self.config.cgroups_path(&spec.id);
        let mut options = SpecOptions::new(spec.argv.clone(), &spec.id, host_start, &cgroups_path);
        options.env = environment(spec);
        options.cwd = spec
            .working_dir
            .as_deref()
            .filter(|d| d.starts_with('/'))
            .map_or_else(|| PathBuf::from("/"), PathBuf::from);
        options.uid = uid;
        options.gid = gid;
        options.memory_bytes = spec.memory_bytes;
        options.cpu_millis = spec.cpu_millis;
        options.netns_path = Some(attachment.netns_path.clone());
        options.resolv_conf = Some(dir.resolv_conf());
        options.hosts = Some(dir.hosts());
        let runtime_spec = options
            .to_spec(&self.host_limits)
            .map_err(|e| format!("container config: {e}"))?;
        write_bundle(&dir.bundle(), &runtime_spec).map_err(|e| e.to_string())?;

        let id = container_id(&spec.id)?;
        let mut monitor_config = MonitorConfig::new(
            id,
            dir.bundle(),
            &self.config.runc_binary,
            self.config.runc_root(),
            dir.monitor(),
            cgroups_path,
        );
        monitor_config.log = self.config.log;
        monitor_config.cgroup_mount = self.config.cgroup_mount.clone();
        let spawned = monitor::spawn(&self.config.spread_binary, &monitor_config)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Started {
            pid: spawned.started.pid,
            started_at: spawned.started.started_at,
        })
    }

    /// Unpacks the image's layers for `app`'s id range, so that starting it is quick, or says
    /// why it cannot run. Blocking.
    pub fn prepare_image(&self, app: spread_core::AppId, image: &str) -> Result<(), String> {
        let host_start = self
            .uids
            .lock()
            .unwrap()
            .host_start(app)
            .map_err(|e| format!("give the app an id range: {e}"))?;
        layers_of(&self.blobs, &self.layers, image, host_start).map(drop)
    }

    /// SIGTERM, then SIGKILL if the process is still there after `grace`.
    pub async fn stop(&self, id: &str, grace: Duration) {
        let Ok(container) = container_id(id) else {
            return;
        };
        let state = self.config.instance(id).monitor();
        if let Err(e) = self.runc.kill(&container, Signal::TERM).await {
            tracing::debug!(instance = id, error = %e, "SIGTERM");
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if ended(&state) {
                return;
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
        tracing::info!(
            instance = id,
            "still running {grace:?} after SIGTERM; killing it"
        );
        if let Err(e) = self.runc.kill(&container, Signal::KILL).await {
            tracing::debug!(instance = id, error = %e, "SIGKILL");
        }
    }

    /// Waits until the instance's process has ended and says how. A monitor that died
    /// without recording an exit lost its container, which is then removed.
    pub async fn wait_exit(&self, id: &str) -> Exit {
        let state = self.config.instance(id).monitor();
        loop {
            if let Some(exit) = read_exit(&state).ok().flatten() {
                return Exit {
                    code: exit.code,
                    signal: exit.signal,
                    oom_killed: exit.oom_killed,
                };
            }
            if !monitor_alive(&state) && read_exit(&state).ok().flatten().is_none() {
                tracing::warn!(
                    instance = id,
                    "its monitor is gone without a record; removing the container"
                );
                if let Ok(container) = container_id(id) {
                    let _ = self.runc.delete(&container, true).await;
                }
                return Exit {
                    code: None,
                    signal: None,
                    oom_killed: false,
                };
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
    }

    /// Frees what the instance held: container, root filesystem, network, bundle. Its spec
    /// and logs stay (marked removed) until pruned.
    pub async fn remove(&self, spec: &InstanceSpec) -> Result<(), String> {
        let dir = self.config.instance(&spec.id);
        if let Ok(container) = container_id(&spec.id)
            && let Err(e) = self.runc.delete(&container, true).await
        {
            tracing::warn!(instance = %spec.id, error = %e, "runc delete");
        }
        let rootfs = dir.rootfs();
        let mut first_error = None;
        if let Err(e) = rootfs::unmount(&rootfs) {
            first_error.get_or_insert(e.to_string());
        }
        if let Err(e) = self.net.lock().await.detach(&net_id(&spec.id)).await {
            first_error.get_or_insert(e.to_string());
        }
        self.addresses.lock().unwrap().remove(&spec.id);
        for path in [dir.bundle(), dir.overlay()] {
            if let Err(e) = std::fs::remove_dir_all(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                first_error.get_or_insert(format!("remove {}: {e}", path.display()));
            }
        }
        for path in [dir.hosts(), dir.resolv_conf()] {
            let _ = std::fs::remove_file(path);
        }
        if let Err(e) = std::fs::write(dir.removed(), b"") {
            first_error.get_or_insert(format!("mark {} removed: {e}", dir.path().display()));
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes the logs of stopped instances beyond the newest `kept_logs_per_app` per app,
    /// and everything of apps not in `apps`; frees the id ranges of apps with nothing left.
    /// Instances in `busy` (the agent is starting, running or removing them) are left alone.
    pub fn prune(
        &self,
        apps: &std::collections::BTreeSet<spread_core::AppId>,
        busy: &std::collections::BTreeSet<String>,
    ) {
        let mut removed: BTreeMap<spread_core::AppId, Vec<(std::time::SystemTime, InstanceDir)>> =
            BTreeMap::new();
        let mut present = std::collections::BTreeSet::new();
        for (spec, dir) in self.known_instances() {
            if busy.contains(&spec.id) {
                present.insert(spec.app_id);
                continue;
            }
            let marker = std::fs::metadata(dir.removed()).and_then(|m| m.modified());
            match marker {
                Ok(_) if !apps.contains(&spec.app_id) => delete_dir(&dir),
                Ok(at) => removed.entry(spec.app_id).or_default().push((at, dir)),
                Err(_) => {
                    present.insert(spec.app_id);
                }
            }
        }
        for (app, mut dirs) in removed {
            dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
            for (_, dir) in dirs.iter().skip(self.config.kept_logs_per_app) {
                delete_dir(dir);
            }
            present.insert(app);
        }
        let mut uids = self.uids.lock().unwrap();
        let gone: Vec<spread_core::AppId> = uids
            .apps()
            .filter(|app| !present.contains(app) && !apps.contains(app))
            .collect();
        for app in gone {
            if let Err(e) = uids.release(&app) {
                tracing::warn!(%app, error = %e, "could not free the app's id range");
            }
        }
    }

    /// The instance's address on the node network, while it has one.
    /// Appends the platform's `lines` to the instance's events log; a failure is only logged,
    /// the instance runs on regardless.
    pub fn note(&self, id: &str, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let dir = self.config.instance(id).events();
        if let Err(e) = monitor::append_lines(&dir, self.config.log, Stream::Platform, lines) {
            tracing::warn!(instance = id, error = %e, "could not write platform log lines");
        }
    }

    pub fn address(&self, id: &str) -> Option<Ipv4Addr> {
        self.addresses.lock().unwrap().get(id).copied()
    }

    /// Removes the image blobs and unpacked layers that no release of an existing app refers
    /// to (`images`: app and image manifest digest), no instance still present uses, and that
    /// were not used within the grace period. Skipped when a referenced image cannot be read, so that nothing it needs is
    /// taken for garbage. Blocking.
    pub fn collect_garbage(&self, images: &BTreeSet<(AppId, String)>) {
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        // Instances not yet removed (of an app just destroyed, say) still have their layers
        // mounted.
        let mut images = images.clone();
        for (spec, dir) in self.known_instances() {
            if !dir.removed().exists() {
                images.insert((spec.app_id, spec.image_digest));
            }
        }
        for (app, image) in &images {
            let shift = self.uids.lock().unwrap().get(app);
            let read = Digest::parse(image)
                .map_err(|e| e.to_string())
                .and_then(|manifest| {
                    let all = local_blobs(&self.blobs, &manifest).map_err(|e| e.to_string())?;
                    let unpacked =
                        local_layers(&self.blobs, &manifest).map_err(|e| e.to_string())?;
                    Ok((all, unpacked))
                });
            match read {
                Ok((all, unpacked)) => {
                    blobs.extend(all);
                    if let Some(shift) = shift {
                        layers.extend(unpacked.into_iter().map(|(digest, _)| (digest, shift)));
                    }
                }
                Err(e) => {
                    tracing::warn!(%app, image, error = %e, "image unreadable; no garbage collected");
                    return;
                }
            }
        }
        let grace = self.config.gc_grace;
        if let Err(e) = self.layers.remove_unused(&layers, grace) {
            tracing::warn!(error = %e, "could not remove unused layers");
        }
        if let Err(e) = self.blobs.gc(&blobs, grace) {
            tracing::warn!(error = %e, "could not remove unused image blobs");
        }
    }

    /// What the instance's cgroup uses now, if it has one.
    pub fn usage(&self, id: &str) -> Option<CgroupUsage> {
        cgroup_usage(
            &self.config.cgroup_mount,
            self.cgroup_version,
            &self.config.cgroups_path(id),
        )
        .ok()
    }
}

/// The image's layers unpacked for the id range starting at `host_start`, bottom first.
fn layers_of(
    blobs: &BlobStore,
    cache: &LayerCache,
    image: &str,
    host_start: u32,
) -> Result<Vec<PathBuf>, String> {
    let manifest = Digest::parse(image).map_err(|e| format!("image digest {image:?}: {e}"))?;
    let options = UnpackOptions {
        id_shift: host_start,
        ..UnpackOptions::default()
    };
    let mut paths = Vec::new();
    for (digest, compression) in local_layers(blobs, &manifest).map_err(|e| e.to_string())? {
        paths.push(
            cache
                .ensure(blobs, &digest, compression, &options)
                .map_err(|e| e.to_string())?,
        );
    }
    if paths.is_empty() {
        // overlayfs needs a lower dir; an image without layers runs on an empty one.
        let empty = cache.root().join(format!("empty-{host_start}"));
        std::fs::create_dir_all(&empty).map_err(|e| e.to_string())?;
        std::os::unix::fs::lchown(&empty, Some(host_start), Some(host_start))
            .map_err(|e| e.to_string())?;
        paths.push(empty);
    }
    Ok(paths)
}

fn delete_dir(dir: &InstanceDir) {
    if let Err(e) = std::fs::remove_dir_all(dir.path()) {
        tracing::warn!(dir = %dir.path().display(), error = %e, "could not delete old logs");
    }
}

fn ended(state: &Path) -> bool {
    read_exit(state).ok().flatten().is_some() || !monitor_alive(state)
}

fn net_id(id: &str) -> InstanceId {
    InstanceId::parse(id).expect("instance ids from the plan are valid interface-safe names")
}

fn container_id(id: &str) -> Result<ContainerId, String> {
    ContainerId::parse(id).map_err(|e| e.to_string())
}

/// `KEY=value` entries, with a standard `PATH` first unless the instance sets one.
fn environment(spec: &InstanceSpec) -> Vec<String> {
    let mut env = Vec::with_capacity(spec.env.len() + 1);
    if !spec.env.iter().any(|(k, _)| k == "PATH") {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned());
    }
    env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    env
}
