//! Which stack a project is and how its processes start, read from its marker files.
//!
//! Order: a `Procfile` gives the process commands (and `release:`); the stack is the first of
//! Python (`requirements.txt` or `pyproject.toml`), Node (`package.json`), Go (`go.mod`), a
//! static site (`public/` or `index.html`), and a prebuilt Linux executable the Procfile names.
//! Without a Procfile, Node, Go and static sites get a derived `web` command.

use std::collections::BTreeMap;

use spread_core::{ProcessType, split_command_line};

use crate::procfile::{ProcfileError, parse_procfile};

/// The largest marker file read (`package.json`, `Procfile`, …).
pub const MAX_MARKER_BYTES: usize = 1 << 20;

/// The static file server of static sites, before the directory it serves: Python's
/// threaded `http.server` on `$PORT`, so a static image is the Python runtime plus the files.
pub const STATIC_SERVER: &[&str] = &["python3", "-m", "http.server", "--bind", "0.0.0.0"];

/// The directory the app's files are in, inside the image.
pub const APP_DIR: &str = "/app";

/// Read access to a project's files, by path relative to its root (`/`-separated, no `..`).
pub trait Project {
    /// The contents of the regular file at `path`, if there is one of at most
    /// [`MAX_MARKER_BYTES`]; links are not followed.
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    /// The first `len` bytes (fewer if it is shorter) of the regular file at `path`.
    fn head(&self, path: &str, len: usize) -> Option<Vec<u8>>;
    /// Whether `path` is a directory (links are not followed).
    fn is_dir(&self, path: &str) -> bool;
    /// Whether `path` is a regular file (links are not followed).
    fn is_file(&self, path: &str) -> bool;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stack {
    /// Dependencies from `requirements.txt`, else installed from `pyproject.toml`.
    Python { requirements: bool },
    /// `npm ci` from the lockfile, then the `build` script when there is one.
    Node { build_script: bool },
    /// `go build` of the main package at the root into `bin/<name>`.
    Go { binary: String },
    /// Files served from `root` (`public` or `.`).
    Static { root: String },
    /// A prebuilt Linux executable, shipped as it is.
    Binary { path: String },
}

impl Stack {
    /// The stack's name, as the build output shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Stack::Python { .. } => "python",
            Stack::Node { .. } => "node",
            Stack::Go { .. } => "go",
            Stack::Static { .. } => "static",
            Stack::Binary { .. } => "binary",
        }
    }
}

/// What to build and how its processes start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub stack: Stack,
    pub processes: BTreeMap<ProcessType, Vec<String>>,
    /// Run once per release, before its instances start.
    pub release: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Procfile(#[from] ProcfileError),
    #[error("{file} is not valid: {reason}")]
    BadMarker { file: &'static str, reason: String },
    #[error(
        "package.json has no lockfile beside it; run `npm install` to make package-lock.json and deploy it too, so builds install the same versions every time"
    )]
    NoLockfile,
    #[error("{0}")]
    NoStartCommand(String),
    #[error("the Procfile's `web` command runs `{path}`, which is not a file in the project{hint}")]
    MissingExecutable { path: String, hint: &'static str },
    #[error(
        "`{path}` is not a Linux executable (ELF); images have no shell, so scripts cannot be commands: use the files of a supported language, or a compiled program"
    )]
    NotElf { path: String },
    #[error(
        "cannot tell what kind of project this is. Spread builds:\n\
         \x20 - Python: requirements.txt or pyproject.toml\n\
         \x20 - Node: package.json with package-lock.json\n\
         \x20 - Go: go.mod\n\
         \x20 - a static site: index.html or a public/ directory\n\
         \x20 - a prebuilt Linux executable named in a Procfile\n\
         A Procfile names each process type and its command, for example:\n\
         \x20 web: python3 app.py\n\
         \x20 worker: python3 worker.py\n\
         \x20 release: python3 manage.py migrate"
    )]
    Unknown,
}

/// Reads the project's markers and decides how to build and start it.
pub fn detect(project: &impl Project) -> Result<BuildPlan, DetectError> {
    let procfile = match project.read("Procfile") {
        Some(bytes) => Some(parse_procfile(&String::from_utf8_lossy(&bytes))?),
        None => None,
    };
    let (stack, derived) = stack_of(project, procfile.as_ref().map(|p| &p.processes))?;
    let (processes, release) = match procfile {
        Some(p) => (p.processes, p.release),
        None => {
            let web =
                derived.ok_or_else(|| DetectError::NoStartCommand(no_start(&stack, project)))?;
            (BTreeMap::from([(ProcessType::web(), web)]), None)
        }
    };
    Ok(BuildPlan {
        stack,
        processes,
        release,
    })
}

/// The stack, and the `web` command it implies when there is no Procfile.
fn stack_of(
    project: &impl Project,
    procfile: Option<&BTreeMap<ProcessType, Vec<String>>>,
) -> Result<(Stack, Option<Vec<String>>), DetectError> {
    if project.is_file("requirements.txt") || project.is_file("pyproject.toml") {
        let requirements = project.is_file("requirements.txt");
        return Ok((Stack::Python { requirements }, None));
    }
    if let Some(bytes) = project.read("package.json") {
        return node(project, &bytes);
    }
    if let Some(bytes) = project.read("go.mod") {
        let binary = go_binary_name(&String::from_utf8_lossy(&bytes))?;
        let web = vec![format!("{APP_DIR}/bin/{binary}")];
        return Ok((Stack::Go { binary }, Some(web)));
    }
    for root in ["public", "."] {
        let index = if root == "." {
            "index.html".to_owned()
        } else {
            format!("{root}/index.html")
        };
        if (root == "public" && project.is_dir(root)) || project.is_file(&index) {
            let dir = if root == "." {
                APP_DIR.to_owned()
            } else {
                format!("{APP_DIR}/{root}")
            };
            let root = root.to_owned();
            let mut web: Vec<String> = STATIC_SERVER.iter().map(|a| (*a).to_owned()).collect();
            web.extend(["--directory".to_owned(), dir, "$PORT".to_owned()]);
            return Ok((Stack::Static { root }, Some(web)));
        }
    }
    if let Some(web) = procfile.and_then(|p| p.get(&ProcessType::web()).or(p.values().next())) {
        return binary(project, &web[0]).map(|stack| (stack, None));
    }
    Err(DetectError::Unknown)
}

fn node(
    project: &impl Project,
    package_json: &[u8],
) -> Result<(Stack, Option<Vec<String>>), DetectError> {
    let bad = |reason: String| DetectError::BadMarker {
        file: "package.json",
        reason,
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(package_json).map_err(|e| bad(e.to_string()))?;
    if !manifest.is_object() {
        return Err(bad("it is not a JSON object".to_owned()));
    }
    if !project.is_file("package-lock.json") && !project.is_file("npm-shrinkwrap.json") {
        return Err(DetectError::NoLockfile);
    }
    let scripts = &manifest["scripts"];
    let build_script = scripts["build"].is_string();
    let web = match (scripts["start"].as_str(), manifest["main"].as_str()) {
        (Some(start), _) => split_command_line(start)
            .ok()
            .filter(|argv| argv.len() >= 2 && argv[0] == "node"),
        (None, Some(main)) => Some(vec!["node".to_owned(), main.to_owned()]),
        (None, None) if project.is_file("server.js") => {
            Some(vec!["node".to_owned(), "server.js".to_owned()])
        }
        (None, None) => None,
    };
    Ok((Stack::Node { build_script }, web))
}

/// The last element of the module path, as a file name: `example.com/shop/api` → `api`.
fn go_binary_name(go_mod: &str) -> Result<String, DetectError> {
    let module = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("module "))
        .map(|m| m.trim().trim_matches('"'))
        .ok_or_else(|| DetectError::BadMarker {
            file: "go.mod",
            reason: "it has no `module` line".to_owned(),
        })?;
    let last = module.rsplit('/').next().unwrap_or_default();
    let name: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    Ok(if name.is_empty() || name.starts_with('.') {
        "app".to_owned()
    } else {
        name
    })
}

/// A prebuilt executable: the command's program must be an ELF file in the project.
fn binary(project: &impl Project, program: &str) -> Result<Stack, DetectError> {
    let path = program
        .strip_prefix(APP_DIR)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(program)
        .trim_start_matches("./")
        .to_owned();
    let Some(head) = project.head(&path, 4) else {
        let hint = if program.contains('/') {
            ""
        } else {
            "; name a program in the project by its path, e.g. `web: ./server`, or add the files of a supported language"
        };
        return Err(DetectError::MissingExecutable {
            path: program.to_owned(),
            hint,
        });
    };
    if head != b"\x7fELF" {
        return Err(DetectError::NotElf { path });
    }
    Ok(Stack::Binary { path })
}

/// Why there is no start command, and the Procfile line that would give one.
fn no_start(stack: &Stack, project: &impl Project) -> String {
    match stack {
        Stack::Python { .. } => {
            let guess = ["app.py", "main.py", "server.py", "wsgi.py"]
                .into_iter()
                .find(|f| project.is_file(f))
                .unwrap_or("app.py");
            format!(
                "a Python app needs a Procfile that says how it starts, for example:\n  web: python3 {guess}"
            )
        }
        Stack::Node { .. } => "package.json has neither a `start` script of the form `node FILE` nor a `main` file; add one, or a Procfile such as:\n  web: node server.js".to_owned(),
        _ => "add a Procfile that says how the app starts, for example:\n  web: ./server".to_owned(),
    }
}

#[cfg(test)]
mod tests;
