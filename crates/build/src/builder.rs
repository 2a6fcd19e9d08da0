//! `Builder`: one build from an uploaded tarball to an image in the blob store.
//!
//! The source is unpacked with spread-image's hostile-archive checks, detected, and built by
//! its stack's [`Recipe`]: the steps run in containers through the narrow [`Sandbox`] trait
//! (the node agent runs them with runc in the app's own id range and network). The image gets
//! three layers: the runtime taken from the builder root (an ELF closure, the language's
//! standard library, CA certificates, tzdata, a minimal `/etc`), the dependencies (reused
//! while the lockfile is unchanged) and the app. Layers are deterministic, so an unchanged
//! layer keeps its digest and is stored once. Blocking: run it on a thread of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use spread_image::{BlobStore, Compression, Digest, UnpackOptions, unpack_layer};

use crate::detect::{APP_DIR, detect};
use crate::dir::DirProject;
use crate::elf;
use crate::image::{ImageSpec, write_image};
use crate::layer::{Layer, LayerBuilder};
use crate::recipe::{self, CA_BUNDLE, CACHE_DIR, Recipe, Step};
use crate::roots::{BUILD_UID, Roots};

/// How long a build may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A host path bound into a build container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxBind {
    pub source: PathBuf,
    pub destination: PathBuf,
    pub readonly: bool,
}

/// One build step for the sandbox to run: `argv` in `cwd` as the build user (uid and gid
/// [`BUILD_UID`]), on a read-only `root` with `binds`, with network access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStep {
    /// Unique among running containers; letters, digits and `-`.
    pub name: String,
    pub root: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub binds: Vec<SandboxBind>,
    /// The host id that id 0 in the container maps to (the app's range).
    pub host_id_start: u32,
    /// When the step is stopped if it still runs.
    pub deadline: Instant,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepExit {
    Exited(i32),
    TimedOut,
}

/// Runs build steps in containers. Blocking.
pub trait Sandbox {
    /// Runs `step` to its end, giving each line it prints to `output`; an error means it could
    /// not run at all.
    fn run(&self, step: &SandboxStep, output: &mut dyn FnMut(String)) -> Result<StepExit, String>;
}

/// What a build reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Step(String),
    Output(String),
}

/// Where a builder keeps things, and its limits.
#[derive(Debug, Clone)]
pub struct BuilderConfig {
    pub roots: Roots,
    /// Per-build work dirs, removed after each build.
    pub work_dir: PathBuf,
    /// Per-app package caches and the records of reusable layers.
    pub cache_dir: PathBuf,
    pub timeout: Duration,
    /// The host's CA bundle, given to build steps so package registries are trusted as the
    /// host trusts them.
    pub host_ca_bundle: Option<PathBuf>,
}

/// One build.
#[derive(Debug, Clone)]
pub struct Job {
    /// Unique; names the work dir and containers.
    pub id: String,
    /// The app's id: its caches are its own.
    pub app: String,
    /// The uploaded gzip tarball.
    pub source: PathBuf,
    /// The first host id of the app's id range.
    pub host_id_start: u32,
}

/// A built image and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub digest: Digest,
    pub spec: ImageSpec,
    pub processes: BTreeMap<String, Vec<String>>,
    pub release: Option<Vec<String>>,
}

/// Why a build failed, for the person who deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub step: Option<String>,
    pub exit_code: Option<i32>,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            step: None,
            exit_code: None,
        }
    }
}

/// A layer recorded for reuse.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    digest: String,
    diff_id: String,
    size: u64,
}

pub struct Builder {
    config: BuilderConfig,
    blobs: BlobStore,
}

impl Builder {
    pub fn new(config: BuilderConfig, blobs: BlobStore) -> Self {
        Self { config, blobs }
    }

    pub fn config(&self) -> &BuilderConfig {
        &self.config
    }

    /// Builds `job` into an image. The work dir is removed whatever happens.
    pub fn build(
        &self,
        job: &Job,
        sandbox: &dyn Sandbox,
        events: &mut dyn FnMut(Event),
    ) -> Result<Built, Failure> {
        let work = self.config.work_dir.join(&job.id);
        let built = self.build_in(&work, job, sandbox, events);
        if let Err(e) = std::fs::remove_dir_all(&work)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %work.display(), error = %e, "could not remove a build's work dir");
        }
        built
    }

    fn build_in(
        &self,
        work: &Path,
        job: &Job,
        sandbox: &dyn Sandbox,
        events: &mut dyn FnMut(Event),
    ) -> Result<Built, Failure> {
        let app = work.join("app");
        let build_ids = job.host_id_start + BUILD_UID;
        make_dir(&app, build_ids)?;
        let files = unpack_source(&job.source, &app, build_ids)?;
        let project = DirProject::new(&app);
        let plan = detect(&project).map_err(|e| Failure::new(e.to_string()))?;
        events(Event::Step(format!(
            "{} app detected ({files} files)",
            title(plan.stack.name())
        )));
        let recipe = recipe::recipe(&plan, &project);

        events(Event::Step(format!(
            "Preparing the {} builder",
            recipe.toolchain.name
        )));
        let root = self
            .config
            .roots
            .ensure(&recipe.toolchain, &mut |line| {
                events(Event::Output(line.to_owned()))
            })
            .map_err(|e| Failure::new(format!("cannot make the builder root: {e}")))?;

        // The time limit is for the build steps; making a root is the platform's own work.
        let deadline = Instant::now() + self.config.timeout;
        let cache = self
            .config
            .cache_dir
            .join("apps")
            .join(&job.app)
            .join(recipe.toolchain.name);
        make_dir(&cache, build_ids)?;
        let run = Runner {
            job,
            root: &root,
            app: &app,
            cache: &cache,
            deadline,
            ca_bundle: self.config.host_ca_bundle.as_deref(),
            sandbox,
        };

        // Runtime objects come from the root or the upload, so they are known before any step.
        let runtime_files = runtime_files(&root, &app, &recipe)?;
        let deps = match &recipe.deps {
            Some(deps) => Some(self.dependencies(&run, &runtime_files, deps, events)?),
            None => None,
        };
        for step in &recipe.steps {
            run.step(step, events)?;
        }

        events(Event::Step("Assembling the image".to_owned()));
        let runtime = self.runtime_layer(&root, &runtime_files, &recipe)?;
        let app_layer = app_layer(&app, &recipe, &self.blobs)?;
        let mut layers = vec![runtime.clone()];
        layers.extend(deps.clone());
        layers.push(app_layer.clone());
        let cmd = plan
            .processes
            .get(&spread_core::ProcessType::web())
            .or(plan.processes.values().next())
            .cloned()
            .unwrap_or_default();
        let spec = ImageSpec {
            env: recipe.env.clone(),
            cmd,
            working_dir: Some(APP_DIR.to_owned()),
            user: Some("app".to_owned()),
        };
        let digest = write_image(&self.blobs, &layers, &spec)
            .map_err(|e| Failure::new(format!("cannot store the image: {e}")))?;
        let mut sizes = vec![format!("runtime {}", mib(runtime.size))];
        if let Some(deps) = &deps {
            sizes.push(format!("dependencies {}", mib(deps.size)));
        }
        sizes.push(format!("app {}", mib(app_layer.size)));
        events(Event::Output(format!(
            "Image {} ({}; compressed)",
            short(&digest),
            sizes.join(", ")
        )));
        Ok(Built {
            digest,
            spec,
            processes: plan
                .processes
                .iter()
                .map(|(t, argv)| (t.to_string(), argv.clone()))
                .collect(),
            release: plan.release.clone(),
        })
    }

    /// The dependency layer: reused when recorded for the same lockfile, else installed.
    fn dependencies(
        &self,
        run: &Runner<'_>,
        runtime: &BTreeSet<PathBuf>,
        deps: &recipe::Deps,
        events: &mut dyn FnMut(Event),
    ) -> Result<Layer, Failure> {
        let mut key = Sha256::new();
        key.update(run.root.to_string_lossy().as_bytes());
        for step in &deps.steps {
            key.update(format!("{:?}{:?}\0", step.argv, step.env).as_bytes());
        }
        for file in &deps.key_files {
            let bytes = std::fs::read(run.app.join(file)).unwrap_or_default();
            key.update(file.as_bytes());
            key.update(Sha256::digest(&bytes));
        }
        let key = hex(&key.finalize()[..16]);
        let record_path = run.cache.join(format!("deps-{key}.json"));
        if deps.cacheable
            && let Some(layer) = self.recorded(&record_path)
        {
            events(Event::Step(format!(
                "Reusing the dependencies installed for this {}",
                deps.key_files.join(", ")
            )));
            return Ok(layer);
        }
        for step in &deps.steps {
            run.step(step, events)?;
        }
        let dir = run.app.join(&deps.dir);
        let mut layer = LayerBuilder::new();
        let image_dir = format!("{}/{}", &APP_DIR[1..], deps.dir);
        if dir.is_dir() {
            layer
                .add_tree(&image_dir, &dir, |_| false)
                .map_err(|e| Failure::new(format!("cannot read the dependencies: {e}")))?;
            // Native extensions may need system libraries the runtime layer lacks.
            let objects = elf_files(&dir, &format!("/{image_dir}"));
            let needed = elf::closure_with_app(run.root, run.app, &objects)
                .map_err(|e| Failure::new(format!("dependencies: {e}")))?;
            for path in needed {
                if path.starts_with(APP_DIR) || runtime.contains(&path) {
                    continue;
                }
                add_from_root(&mut layer, run.root, &path)?;
            }
        }
        let written = layer
            .write(&self.blobs)
            .map_err(|e| Failure::new(format!("cannot store the dependency layer: {e}")))?;
        if deps.cacheable {
            self.record(&record_path, &written);
        }
        Ok(written)
    }

    /// The runtime layer, reused when the same files were written before.
    fn runtime_layer(
        &self,
        root: &Path,
        files: &BTreeSet<PathBuf>,
        recipe: &Recipe,
    ) -> Result<Layer, Failure> {
        let mut key = Sha256::new();
        key.update(root.to_string_lossy().as_bytes());
        key.update(format!(
            "{files:?}{:?}{:?}",
            recipe.runtime.trees, recipe.runtime.links
        ));
        let record_path = self
            .config
            .cache_dir
            .join(format!("runtime-{}.json", hex(&key.finalize()[..16])));
        if let Some(layer) = self.recorded(&record_path) {
            return Ok(layer);
        }
        let mut layer = LayerBuilder::new();
        base_files(&mut layer, root)?;
        for path in files {
            add_from_root(&mut layer, root, path)?;
        }
        for (tree, excluded) in &recipe.runtime.trees {
            let host = in_root(root, tree);
            let excluded: BTreeSet<PathBuf> = excluded
                .iter()
                .map(|e| {
                    PathBuf::from(
                        e.strip_prefix(tree.as_str())
                            .unwrap_or(e)
                            .trim_start_matches('/'),
                    )
                })
                .collect();
            layer
                .add_tree(&tree[1..], &host, |relative| excluded.contains(relative))
                .map_err(|e| {
                    Failure::new(format!("cannot read {tree} in the builder root: {e}"))
                })?;
        }
        for (path, target) in &recipe.runtime.links {
            layer
                .add_symlink(&path[1..], target)
                .map_err(|e| Failure::new(e.to_string()))?;
        }
        let written = layer
            .write(&self.blobs)
            .map_err(|e| Failure::new(format!("cannot store the runtime layer: {e}")))?;
        self.record(&record_path, &written);
        Ok(written)
    }

    fn recorded(&self, path: &Path) -> Option<Layer> {
        let record: Record = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let layer = Layer {
            digest: record.digest.parse().ok()?,
            diff_id: record.diff_id.parse().ok()?,
            size: record.size,
        };
        // The blob may have been collected since.
        self.blobs.has(&layer.digest).then_some(layer)
    }

    fn record(&self, path: &Path, layer: &Layer) {
        let record = Record {
            digest: layer.digest.to_string(),
            diff_id: layer.diff_id.to_string(),
            size: layer.size,
        };
        let json = serde_json::to_vec(&record).unwrap_or_default();
        let temp = path.with_extension("tmp");
        if std::fs::write(&temp, json)
            .and_then(|()| std::fs::rename(&temp, path))
            .is_err()
        {
            tracing::warn!(path = %path.display(), "could not record a layer for reuse");
        }
    }
}

/// The in-root paths the runtime layer takes (besides what every image has).
fn runtime_files(root: &Path, app: &Path, recipe: &Recipe) -> Result<BTreeSet<PathBuf>, Failure> {
    let runtime = &recipe.runtime;
    let mut objects: Vec<PathBuf> = runtime.objects.iter().map(PathBuf::from).collect();
    for dir in &runtime.object_dirs {
        objects.extend(elf_files(&in_root(root, dir), dir));
    }
    let mut files = elf::closure_with_app(root, app, &objects)
        .map_err(|e| Failure::new(format!("cannot find the libraries the app needs: {e}")))?;
    files.retain(|p| !p.starts_with(APP_DIR));
    files.extend(runtime.files.iter().map(PathBuf::from));
    Ok(files)
}

/// What a step needs to run in the sandbox.
struct Runner<'a> {
    job: &'a Job,
    root: &'a Path,
    app: &'a Path,
    cache: &'a Path,
    deadline: Instant,
    ca_bundle: Option<&'a Path>,
    sandbox: &'a dyn Sandbox,
}

impl Runner<'_> {
    fn step(&self, step: &Step, events: &mut dyn FnMut(Event)) -> Result<(), Failure> {
        events(Event::Step(step.name.clone()));
        let mut binds = vec![
            SandboxBind {
                source: self.app.to_owned(),
                destination: PathBuf::from(APP_DIR),
                readonly: false,
            },
            SandboxBind {
                source: self.cache.to_owned(),
                destination: PathBuf::from(CACHE_DIR),
                readonly: false,
            },
        ];
        if let Some(bundle) = self.ca_bundle {
            binds.push(SandboxBind {
                source: bundle.to_owned(),
                destination: PathBuf::from(CA_BUNDLE),
                readonly: true,
            });
        }
        let mut env = recipe::build_env();
        env.extend(step.env.iter().cloned());
        let sandboxed = SandboxStep {
            name: format!("build-{}", self.job.id),
            root: self.root.to_owned(),
            argv: step.argv.clone(),
            env,
            cwd: PathBuf::from(APP_DIR),
            binds,
            host_id_start: self.job.host_id_start,
            deadline: self.deadline,
        };
        let exit = self
            .sandbox
            .run(&sandboxed, &mut |line| events(Event::Output(line)))
            .map_err(|e| Failure {
                message: format!("could not run the step: {e}"),
                step: Some(step.name.clone()),
                exit_code: None,
            })?;
        match exit {
            StepExit::Exited(0) => Ok(()),
            StepExit::Exited(code) => Err(Failure {
                message: format!(
                    "`{}` failed with exit code {code}; its output is above",
                    step.argv.join(" ")
                ),
                step: Some(step.name.clone()),
                exit_code: Some(code),
            }),
            StepExit::TimedOut => Err(Failure {
                message: "the build ran past its time limit and was stopped".to_owned(),
                step: Some(step.name.clone()),
                exit_code: None,
            }),
        }
    }
}

/// Unpacks the upload into `app`, owned by the build user, refusing what could escape it.
fn unpack_source(source: &Path, app: &Path, build_ids: u32) -> Result<u64, Failure> {
    let file =
        File::open(source).map_err(|e| Failure::new(format!("cannot read the upload: {e}")))?;
    let options = UnpackOptions {
        id_shift: build_ids,
        max_file_bytes: 2 << 30,
        max_total_bytes: 4 << 30,
        max_entries: 500_000,
    };
    let stats = unpack_layer(file, Compression::Gzip, app, &options)
        .map_err(|e| Failure::new(format!("the uploaded source was refused: {e}")))?;
    check_links(app, app)?;
    Ok(stats.files)
}

/// Refuses links whose target is absolute or leaves the project through `..`.
fn check_links(root: &Path, dir: &Path) -> Result<(), Failure> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Failure::new(format!("cannot read the source: {e}")))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let relative = path.strip_prefix(root).unwrap_or(&path);
        if kind.is_dir() {
            check_links(root, &path)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path).unwrap_or_default();
            if !link_stays_inside(relative, &target) {
                return Err(Failure::new(format!(
                    "the uploaded source was refused: the link {} points to {}, outside the project; replace it with the file itself",
                    relative.display(),
                    target.display()
                )));
            }
        }
    }
    Ok(())
}

/// Whether a link at the project-relative `link`, pointing to `target`, stays in the project.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth = link.components().count().saturating_sub(1) as i64;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// The app layer: the project's files (with what the build made), minus the dependency dir and
/// the stack's exclusions, at `/app`.
fn app_layer(app: &Path, recipe: &Recipe, blobs: &BlobStore) -> Result<Layer, Failure> {
    let mut layer = LayerBuilder::new();
    let deps_dir = recipe.deps.as_ref().map(|d| PathBuf::from(&d.dir));
    let excludes = recipe.app_excludes.clone();
    layer
        .add_tree(&APP_DIR[1..], app, |relative| {
            deps_dir.as_deref() == Some(relative)
                || excludes
                    .iter()
                    .any(|e| e.matches(&relative.to_string_lossy()))
        })
        .map_err(|e| Failure::new(format!("cannot read the app: {e}")))?;
    layer
        .write(blobs)
        .map_err(|e| Failure::new(format!("cannot store the app layer: {e}")))
}

/// What every image has: `/etc` files for users, names and time zones, CA certificates, and
/// the mount points of the container.
fn base_files(layer: &mut LayerBuilder, root: &Path) -> Result<(), Failure> {
    let failed =
        |e: crate::layer::LayerError| Failure::new(format!("cannot assemble the base files: {e}"));
    let text = |s: &str| s.as_bytes().to_vec();
    layer
        .add_bytes(
            "etc/passwd",
            text("root:x:0:0:root:/root:/usr/sbin/nologin\napp:x:1000:1000:app:/app:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
            0o644,
        )
        .map_err(failed)?;
    layer
        .add_bytes(
            "etc/group",
            text("root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"),
            0o644,
        )
        .map_err(failed)?;
    layer
        .add_bytes(
            "etc/nsswitch.conf",
            text("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"),
            0o644,
        )
        .map_err(failed)?;
    for file in ["etc/hosts", "etc/resolv.conf"] {
        layer.add_bytes(file, Vec::new(), 0o644).map_err(failed)?;
    }
    for dir in ["proc", "sys", "dev", "app", "root"] {
        layer.add_dir(dir, 0o755).map_err(failed)?;
    }
    layer.add_dir("tmp", 0o1777).map_err(failed)?;
    add_from_root(layer, root, Path::new(CA_BUNDLE))?;
    layer
        .add_symlink("etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
        .map_err(failed)?;
    let zoneinfo = in_root(root, "/usr/share/zoneinfo");
    layer
        .add_tree("usr/share/zoneinfo", &zoneinfo, |relative| {
            relative == Path::new("right") || relative == Path::new("posix")
        })
        .map_err(failed)?;
    Ok(())
}

/// Adds the in-root `path` (a file or link) at the same place in the image.
fn add_from_root(layer: &mut LayerBuilder, root: &Path, path: &Path) -> Result<(), Failure> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    layer
        .add_path(relative, root.join(relative))
        .map_err(|e| Failure::new(format!("cannot add {}: {e}", path.display())))
}

fn in_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// The ELF files under `host_dir`, as paths under `image_dir`, never following links.
fn elf_files(host_dir: &Path, image_dir: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![(host_dir.to_owned(), PathBuf::from(image_dir))];
    while let Some((host, image)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&host) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let (host_path, image_path) = (entry.path(), image.join(entry.file_name()));
            if kind.is_dir() {
                pending.push((host_path, image_path));
            } else if kind.is_file() && elf::is_elf(&host_path) {
                found.push(image_path);
            }
        }
    }
    found.sort();
    found
}

fn make_dir(path: &Path, owner: u32) -> Result<(), Failure> {
    std::fs::create_dir_all(path)
        .and_then(|()| std::os::unix::fs::chown(path, Some(owner), Some(owner)))
        .map_err(|e| Failure::new(format!("cannot make {}: {e}", path.display())))
}

/// The first letter upper-case: `python` → `Python`.
fn title(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn short(digest: &Digest) -> String {
    let text = digest.to_string();
    text.get(..19).unwrap_or(&text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_may_point_anywhere_inside_the_project_and_nowhere_else() {
        let inside = [
            ("a", "b"),
            ("dir/a", "../b"),
            ("dir/sub/a", "../../b"),
            ("dir/a", "./b"),
            ("a", "dir/../b"),
        ];
        for (link, target) in inside {
            assert!(
                link_stays_inside(Path::new(link), Path::new(target)),
                "{link} -> {target}"
            );
        }
        let outside = [
            ("a", "/etc/passwd"),
            ("a", "../b"),
            ("dir/a", "../../b"),
            ("a", "dir/../../b"),
        ];
        for (link, target) in outside {
            assert!(
                !link_stays_inside(Path::new(link), Path::new(target)),
                "{link} -> {target}"
            );
        }
    }

    struct NoSandbox;

    impl Sandbox for NoSandbox {
        fn run(&self, step: &SandboxStep, _: &mut dyn FnMut(String)) -> Result<StepExit, String> {
            panic!("nothing may run for a refused upload: {step:?}");
        }
    }

    fn gzip_tar(name: &[u8], link: Option<&str>) -> Vec<u8> {
        let mut raw = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(0o644);
        header.set_size(0);
        // Written by hand so `..` and absolute names reach the unpacker as they are.
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        match link {
            Some(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_link_name(target).unwrap();
            }
            None => header.set_entry_type(tar::EntryType::Regular),
        }
        header.set_cksum();
        raw.append(&header, std::io::empty()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }

    fn build_upload(tarball: Vec<u8>) -> Failure {
        let dir = tempfile::tempdir().unwrap();
        let upload = dir.path().join("upload.tar.gz");
        std::fs::write(&upload, tarball).unwrap();
        let builder = Builder::new(
            BuilderConfig {
                roots: Roots::new(dir.path().join("roots"), "http://deb.debian.org/debian"),
                work_dir: dir.path().join("work"),
                cache_dir: dir.path().join("cache"),
                timeout: DEFAULT_TIMEOUT,
                host_ca_bundle: None,
            },
            BlobStore::open(dir.path().join("images")).unwrap(),
        );
        let job = Job {
            id: "b1".to_owned(),
            app: "app1".to_owned(),
            source: upload,
            host_id_start: owner(dir.path()),
        };
        let failure = builder
            .build(&job, &NoSandbox, &mut |_| {})
            .expect_err("a hostile upload is refused");
        assert!(
            !dir.path().join("work/b1").exists(),
            "the work dir is removed"
        );
        assert!(
            !dir.path().join("roots").exists(),
            "no builder root was made"
        );
        failure
    }

    /// The owner of `path`, so the test needs no root to unpack as "the build user".
    fn owner(path: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .unwrap()
            .uid()
            .saturating_sub(BUILD_UID)
    }

    #[test]
    fn uploads_with_paths_or_links_out_of_the_tree_are_refused_before_anything_runs() {
        for (name, link) in [
            (&b"../escape.py"[..], None),
            (&b"/etc/cron.d/evil"[..], None),
            (&b"app.py"[..], Some("/etc/passwd")),
            (&b"app.py"[..], Some("../../outside")),
        ] {
            let failure = build_upload(gzip_tar(name, link));
            assert!(
                failure
                    .message
                    .starts_with("the uploaded source was refused"),
                "{name:?} -> {link:?}: {}",
                failure.message
            );
        }
    }

    #[test]
    fn an_upload_that_is_not_a_gzip_tarball_is_refused() {
        let failure = build_upload(b"PK\x03\x04 a zip file".to_vec());
        assert!(
            failure
                .message
                .starts_with("the uploaded source was refused"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn titles_capitalise_the_stack_name() {
        assert_eq!(title("python"), "Python");
        assert_eq!(title(""), "");
    }
}
