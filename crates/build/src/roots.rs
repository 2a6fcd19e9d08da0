//! Builder root filesystems: Debian made by `debootstrap` on first use, plus a toolchain per
//! stack from Debian's packages, each cached under a name that carries its recipe's hash.
//!
//! A root is made in a temp dir beside its final place and renamed there when complete, under
//! a lock file, so concurrent builds (or test processes) wait for one maker and never see half a
//! root. Making one runs as root on the host (debootstrap, `chroot apt-get`), like a package
//! install; only Debian's own packages run then. App code never does: build steps run in
//! containers.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest as _, Sha256};

/// The Debian release builder roots are made from.
pub const SUITE: &str = "bookworm";

/// The uid and gid build steps run as; `build` in the root's `/etc/passwd`.
pub const BUILD_UID: u32 = 1000;

/// Packages of the base root on top of debootstrap's minbase: what every image takes from it.
const BASE_PACKAGES: &[&str] = &["ca-certificates", "tzdata"];

/// Bumped whenever the way roots are made changes, so old caches are not reused.
const RECIPE_VERSION: u32 = 1;

/// A language toolchain: Debian packages installed into the base root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toolchain {
    pub name: &'static str,
    pub packages: &'static [&'static str],
    /// Commands run in the root after the install.
    pub setup: &'static [&'static [&'static str]],
}

pub const PYTHON: Toolchain = Toolchain {
    name: "python",
    packages: &["python3", "python3-venv", "python3-pip"],
    // Images have a read-only root: bytecode checked by hash, not by the mtimes layers reset.
    setup: &[&[
        "python3",
        "-m",
        "compileall",
        "-q",
        "-f",
        "-j0",
        "--invalidation-mode",
        "unchecked-hash",
        "/usr/lib/python3.11",
    ]],
};
pub const NODE: Toolchain = Toolchain {
    name: "node",
    packages: &["nodejs", "npm"],
    setup: &[],
};
pub const GO: Toolchain = Toolchain {
    name: "go",
    packages: &["golang-go"],
    setup: &[],
};
/// The base root alone: for stacks that build nothing (static sites, prebuilt executables).
pub const BASE: Toolchain = Toolchain {
    name: "base",
    packages: &[],
    setup: &[],
};

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}); its last lines:\n{tail}")]
    Command {
        command: String,
        status: String,
        tail: String,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RootError {
    let path = path.to_owned();
    move |source| RootError::Io { what, path, source }
}

/// The cache of builder roots in one directory.
#[derive(Debug, Clone)]
pub struct Roots {
    dir: PathBuf,
    mirror: String,
}

impl Roots {
    /// Roots cached in `dir`, made from the Debian mirror `mirror`
    /// (e.g. `http://deb.debian.org/debian`).
    pub fn new(dir: impl Into<PathBuf>, mirror: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            mirror: mirror.into(),
        }
    }

    /// The directory of the root for `toolchain` (its `rootfs/` holds the files), whether or
    /// not it is made yet.
    pub fn path(&self, toolchain: &Toolchain) -> PathBuf {
        self.dir
            .join(format!("{}-{}", toolchain.name, recipe_hash(toolchain)))
    }

    /// The root filesystem for `toolchain`, made first if it is not cached. `progress` gets
    /// each line the tools print. Blocking, and slow the first time (a minute or two).
    pub fn ensure(
        &self,
        toolchain: &Toolchain,
        progress: &mut dyn FnMut(&str),
    ) -> Result<PathBuf, RootError> {
        let rootfs = self.path(toolchain).join("rootfs");
        if ready(&self.path(toolchain)) {
            return mount_points(rootfs);
        }
        std::fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let lock_path = self.path(toolchain).with_extension("lock");
        let lock = File::create(&lock_path).map_err(io("create", &lock_path))?;
        lock.lock().map_err(io("lock", &lock_path))?;
        if ready(&self.path(toolchain)) {
            return mount_points(rootfs);
        }
        let base = if toolchain.packages.is_empty() {
            None
        } else {
            Some(self.ensure(&BASE, progress)?)
        };
        let final_dir = self.path(toolchain);
        let temp = final_dir.with_extension(format!("tmp-{}", std::process::id()));
        remove_dir(&temp)?;
        remove_dir(&final_dir)?;
        std::fs::create_dir_all(&temp).map_err(io("create", &temp))?;
        let made = match &base {
            None => self.debootstrap(&temp.join("rootfs"), progress),
            Some(base) => install_toolchain(base, &temp.join("rootfs"), toolchain, progress),
        };
        if let Err(e) = made {
            let _ = remove_dir(&temp);
            return Err(e);
        }
        std::fs::write(temp.join("ready"), recipe(toolchain)).map_err(io("write", &temp))?;
        std::fs::rename(&temp, &final_dir).map_err(io("rename", &temp))?;
        drop(lock);
        mount_points(rootfs)
    }

    fn debootstrap(&self, rootfs: &Path, progress: &mut dyn FnMut(&str)) -> Result<(), RootError> {
        progress(&format!(
            "Making the builder's Debian {SUITE} root with debootstrap (once per machine)"
        ));
        let include = format!("--include={}", BASE_PACKAGES.join(","));
        let mut command = Command::new("debootstrap");
        command
            .args(["--variant=minbase", &include, SUITE])
            .arg(rootfs)
            .arg(&self.mirror);
        run(command, progress)?;
        finish_root(rootfs, progress)
    }
}

/// Copies the base root and installs the toolchain's packages into the copy.
fn install_toolchain(
    base: &Path,
    rootfs: &Path,
    toolchain: &Toolchain,
    progress: &mut dyn FnMut(&str),
) -> Result<(), RootError> {
    progress(&format!(
        "Installing the {} toolchain ({}) into a builder root (once per machine)",
        toolchain.name,
        toolchain.packages.join(", ")
    ));
    let mut copy = Command::new("cp");
    copy.args(["-a", "--reflink=auto"]).arg(base).arg(rootfs);
    run(copy, progress)?;
    let chroot = |args: &[&str]| {
        let mut command = Command::new("chroot");
        command
            .arg(rootfs)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LANG", "C.UTF-8");
        command
    };
    run(chroot(&["apt-get", "-q", "update"]), progress)?;
    let mut install = vec!["apt-get", "-q", "-y", "--no-install-recommends", "install"];
    install.extend(toolchain.packages);
    run(chroot(&install), progress)?;
    for command in toolchain.setup {
        run(chroot(command), progress)?;
    }
    finish_root(rootfs, progress)
}

/// What every root gets after its packages: no package caches, the build user, and the files
/// that containers bind-mount over.
fn finish_root(rootfs: &Path, progress: &mut dyn FnMut(&str)) -> Result<(), RootError> {
    let mut clean = Command::new("chroot");
    clean
        .arg(rootfs)
        .args(["apt-get", "clean"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    run(clean, progress)?;
    let lists = rootfs.join("var/lib/apt/lists");
    for entry in std::fs::read_dir(&lists)
        .map_err(io("read", &lists))?
        .flatten()
    {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let etc = rootfs.join("etc");
    append_line(
        &etc.join("passwd"),
        "build:x:1000:1000::/tmp:/usr/sbin/nologin",
        "build:",
    )?;
    append_line(&etc.join("group"), "build:x:1000:", "build:")?;
    for file in ["hosts", "resolv.conf"] {
        let path = etc.join(file);
        if std::fs::symlink_metadata(&path).is_err() {
            std::fs::write(&path, b"").map_err(io("write", &path))?;
        }
    }
    Ok(())
}

fn append_line(path: &Path, line: &str, prefix: &str) -> Result<(), RootError> {
    let text = std::fs::read_to_string(path).map_err(io("read", path))?;
    if text.lines().any(|l| l.starts_with(prefix)) {
        return Ok(());
    }
    let mut text = text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    std::fs::write(path, text).map_err(io("write", path))
}

/// Runs `command`, giving each line of its output (stdout and stderr) to `progress`.
fn run(mut command: Command, progress: &mut dyn FnMut(&str)) -> Result<(), RootError> {
    let shown = format!("{command:?}").replace('"', "");
    let (reader, writer) = std::io::pipe().map_err(io("pipe for", Path::new("output")))?;
    let writer2 = writer
        .try_clone()
        .map_err(io("pipe for", Path::new("output")))?;
    command.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let mut child = command
        .spawn()
        .map_err(io("run", Path::new(command.get_program())))?;
    drop(command);
    let mut tail: Vec<String> = Vec::new();
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        progress(&line);
        tail.push(line);
        if tail.len() > 20 {
            tail.remove(0);
        }
    }
    let status = child.wait().map_err(io("wait for", Path::new(&shown)))?;
    if status.success() {
        Ok(())
    } else {
        Err(RootError::Command {
            command: shown,
            status: status.to_string(),
            tail: tail.join("\n"),
        })
    }
}

/// Where build containers bind the app and its caches; roots are read-only in containers.
fn mount_points(rootfs: PathBuf) -> Result<PathBuf, RootError> {
    for dir in ["app", "cache"] {
        let path = rootfs.join(dir);
        std::fs::create_dir_all(&path).map_err(io("create", &path))?;
    }
    Ok(rootfs)
}

fn ready(dir: &Path) -> bool {
    dir.join("ready").is_file()
}

fn remove_dir(dir: &Path) -> Result<(), RootError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RootError::Io {
            what: "remove",
            path: dir.to_owned(),
            source: e,
        }),
    }
}

/// What a root is made from, as text: its hash names the root.
fn recipe(toolchain: &Toolchain) -> String {
    let mut text = format!(
        "spread builder root {RECIPE_VERSION}\nsuite {SUITE}\nvariant minbase\nbase {}\nbuild uid {BUILD_UID}\n",
        BASE_PACKAGES.join(" ")
    );
    if !toolchain.packages.is_empty() {
        text.push_str(&format!("toolchain {}\n", toolchain.packages.join(" ")));
    }
    for command in toolchain.setup {
        text.push_str(&format!("setup {}\n", command.join(" ")));
    }
    text
}

fn recipe_hash(toolchain: &Toolchain) -> String {
    let digest = Sha256::digest(recipe(toolchain).as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The Debian mirror the host's apt uses (its first `deb` source), so builder roots come from
/// the same place; Debian's redirector when none is found.
pub fn host_mirror() -> String {
    let sources = [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ];
    for path in sources {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        if let Some(mirror) = mirror_in(&text) {
            return mirror;
        }
    }
    "http://deb.debian.org/debian".to_owned()
}

/// The first Debian (not security) mirror in an apt sources file, in either format.
fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .flat_map(|line| {
            let words: Vec<&str> = match line.strip_prefix("URIs:") {
                Some(rest) => rest.split_whitespace().collect(),
                None => line
                    .strip_prefix("deb ")
                    .map(|rest| {
                        rest.split_whitespace()
                            .filter(|w| !w.starts_with('['))
                            .take(1)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            words.into_iter().map(str::to_owned).collect::<Vec<_>>()
        })
        .find(|uri| uri.starts_with("http") && !uri.contains("security"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_read_from_both_source_formats_skipping_security() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let classic = "# comment\ndeb [arch=amd64] http://ftp.de.debian.org/debian bookworm main\n";
        assert_eq!(
            mirror_in(classic).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        assert_eq!(mirror_in("deb cdrom:/ bookworm main\n"), None);
    }

    #[test]
    fn each_toolchain_has_its_own_recipe_hash_and_the_base_differs_from_all() {
        let hashes: std::collections::BTreeSet<String> =
            [BASE, PYTHON, NODE, GO].iter().map(recipe_hash).collect();
        assert_eq!(hashes.len(), 4);
        let roots = Roots::new("/cache", "http://deb.debian.org/debian");
        assert!(roots.path(&PYTHON).starts_with("/cache"));
        assert!(
            roots
                .path(&PYTHON)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("python-")
        );
    }
}
