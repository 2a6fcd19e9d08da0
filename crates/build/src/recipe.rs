//! What building each stack means, as data: the toolchain, the steps run in the build
//! container, the dependency cache, what the runtime layer takes from the builder root, the
//! image's environment and what the app layer leaves out. Pure, so it is tested without a build.

use crate::detect::{APP_DIR, BuildPlan, Project, Stack};
use crate::roots::{self, Toolchain};

/// The container path of the app's per-stack cache (pip, npm, Go), kept between builds.
pub const CACHE_DIR: &str = "/cache";

/// The CA bundle path in Debian, where build steps find the host's bundle and images Debian's.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// One command run in the build container, in `/app`, as the build user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the build output shows, e.g. `Installing dependencies with pip`.
    pub name: String,
    pub argv: Vec<String>,
    /// `KEY=value` entries on top of the common build environment.
    pub env: Vec<String>,
}

impl Step {
    fn new(name: impl Into<String>, argv: &[&str]) -> Self {
        Self {
            name: name.into(),
            argv: argv.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, env: &[&str]) -> Self {
        self.env = env.iter().map(|e| (*e).to_owned()).collect();
        self
    }
}

/// The dependencies: installed by `steps` into `dir` (relative to the app), shipped as their
/// own layer, and reused without running the steps while the files in `key_files` are
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deps {
    pub dir: String,
    pub key_files: Vec<String>,
    /// Whether a cached layer may replace running the steps (false when later steps need the
    /// installed files on disk, or the install includes the app's own code).
    pub cacheable: bool,
    pub steps: Vec<Step>,
}

/// What the runtime layer takes from the builder root, beyond what every image has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runtime {
    /// Executables and libraries (absolute in-root paths) whose ELF closure is included too.
    pub objects: Vec<String>,
    /// Directory trees copied whole, with the in-root names of subtrees to leave out.
    pub trees: Vec<(String, Vec<String>)>,
    /// Directories whose ELF files (shared objects) join the closure, e.g. `lib-dynload`.
    pub object_dirs: Vec<String>,
    /// Single files or links copied as they are.
    pub files: Vec<String>,
    /// Links made in the image: path and target.
    pub links: Vec<(String, String)>,
}

/// How one plan is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub toolchain: Toolchain,
    pub deps: Option<Deps>,
    /// Steps after the dependencies, run on every build (compiling the app, a build script).
    pub steps: Vec<Step>,
    pub runtime: Runtime,
    /// Files made by the build to ship in the app layer even when `app_excludes` would drop
    /// them, e.g. the Go binary.
    pub app_excludes: Vec<AppExclude>,
    /// The image's environment.
    pub env: Vec<String>,
}

/// Paths the app layer leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppExclude {
    /// This path relative to the app (a file or a whole directory).
    Path(String),
    /// Files whose name ends with this, at any depth.
    Suffix(String),
}

impl AppExclude {
    /// Whether the app-relative `path` is left out.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            AppExclude::Path(p) => path == p,
            AppExclude::Suffix(s) => path.ends_with(s.as_str()),
        }
    }
}

/// The common environment of build steps.
pub fn build_env() -> Vec<String> {
    let mut env: Vec<String> = [
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "HOME=/tmp",
        "LANG=C.UTF-8",
    ]
    .iter()
    .map(|e| (*e).to_owned())
    .collect();
    // Every tool trusts the bundle the host's is bound over.
    for tool in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "PIP_CERT"] {
        env.push(format!("{tool}={CA_BUNDLE}"));
    }
    env
}

const PYTHON_VERSION: &str = "python3.11";

/// The recipe for a plan. `project` is read for details the plan leaves open.
pub fn recipe(plan: &BuildPlan, project: &impl Project) -> Recipe {
    let path_env = "PATH=/usr/local/bin:/usr/bin:/bin".to_owned();
    match &plan.stack {
        Stack::Python { requirements } => python(*requirements),
        Stack::Node { build_script } => node(*build_script, project),
        Stack::Go { binary } => Recipe {
            toolchain: roots::GO,
            deps: None,
            steps: vec![
                Step::new(
                    "Compiling with go build",
                    &[
                        "go",
                        "build",
                        "-trimpath",
                        "-ldflags=-s -w",
                        "-o",
                        &format!("{APP_DIR}/bin/{binary}"),
                        ".",
                    ],
                )
                .with_env(&[
                    "CGO_ENABLED=0",
                    "GOPATH=/cache/go",
                    "GOCACHE=/cache/go/build",
                    "GOMODCACHE=/cache/go/mod",
                    "GOFLAGS=-mod=mod",
                    "GOTOOLCHAIN=local",
                ]),
            ],
            runtime: Runtime::default(),
            app_excludes: vec![
                AppExclude::Suffix(".go".to_owned()),
                AppExclude::Path("go.mod".to_owned()),
                AppExclude::Path("go.sum".to_owned()),
            ],
            env: vec![path_env],
        },
        // Served by Python's http.server (see `STATIC_SERVER`): the Python runtime, no steps.
        Stack::Static { .. } => Recipe {
            deps: None,
            app_excludes: Vec::new(),
            ..python(false)
        },
        Stack::Binary { path } => Recipe {
            toolchain: roots::BASE,
            deps: None,
            steps: Vec::new(),
            runtime: Runtime {
                objects: vec![format!("{APP_DIR}/{path}")],
                ..Runtime::default()
            },
            app_excludes: Vec::new(),
            env: vec![path_env],
        },
    }
}

fn python(requirements: bool) -> Recipe {
    let venv = format!("{APP_DIR}/.venv");
    let python = format!("{venv}/bin/python");
    let install_from: &[&str] = if requirements {
        &["-r", "requirements.txt"]
    } else {
        &["."]
    };
    let mut install = vec![
        "python3",
        "-m",
        "pip",
        "--python",
        &python,
        "install",
        "--no-compile",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "--cache-dir",
        "/cache/pip",
    ];
    install.extend(install_from);
    let stdlib = format!("/usr/lib/{PYTHON_VERSION}");
    Recipe {
        toolchain: roots::PYTHON,
        deps: Some(Deps {
            dir: ".venv".to_owned(),
            key_files: if requirements {
                vec!["requirements.txt".to_owned()]
            } else {
                vec!["pyproject.toml".to_owned()]
            },
            // `pip install .` puts the app's own code into the venv.
            cacheable: requirements,
            steps: vec![
                Step::new(
                    "Creating a virtual environment",
                    &["python3", "-m", "venv", "--without-pip", &venv],
                ),
                Step::new("Installing dependencies with pip", &install),
                Step::new(
                    "Compiling the dependencies to bytecode",
                    &[
                        &python,
                        "-m",
                        "compileall",
                        "-q",
                        "-j0",
                        "--invalidation-mode",
                        "unchecked-hash",
                        &venv,
                    ],
                ),
            ],
        }),
        steps: Vec::new(),
        runtime: Runtime {
            objects: vec![format!("/usr/bin/{PYTHON_VERSION}")],
            trees: vec![(
                stdlib.clone(),
                [
                    "test",
                    "idlelib",
                    "tkinter",
                    "turtledemo",
                    "ensurepip",
                    "lib2to3",
                    "pydoc_data",
                    "config-3.11-x86_64-linux-gnu",
                    "venv",
                    "distutils",
                    "site-packages",
                    "dist-packages",
                ]
                .iter()
                .map(|name| format!("{stdlib}/{name}"))
                .collect(),
            )],
            object_dirs: vec![format!("{stdlib}/lib-dynload")],
            files: vec!["/usr/bin/python3".to_owned()],
            links: vec![
                ("/usr/lib/ssl/certs".to_owned(), "/etc/ssl/certs".to_owned()),
                ("/usr/lib/ssl/cert.pem".to_owned(), CA_BUNDLE.to_owned()),
            ],
        },
        app_excludes: vec![
            AppExclude::Path(".venv".to_owned()),
            AppExclude::Path("__pycache__".to_owned()),
        ],
        env: vec![
            format!("PATH={venv}/bin:/usr/local/bin:/usr/bin:/bin"),
            format!("VIRTUAL_ENV={venv}"),
            "PYTHONUNBUFFERED=1".to_owned(),
            "PYTHONDONTWRITEBYTECODE=1".to_owned(),
            "LANG=C.UTF-8".to_owned(),
        ],
    }
}

fn node(build_script: bool, project: &impl Project) -> Recipe {
    let npm_env = [
        "npm_config_cache=/cache/npm",
        "npm_config_update_notifier=false",
    ];
    let mut ci = vec!["npm", "ci", "--no-audit", "--no-fund"];
    if !build_script {
        ci.push("--omit=dev");
    }
    let lockfile = if project.is_file("npm-shrinkwrap.json") {
        "npm-shrinkwrap.json"
    } else {
        "package-lock.json"
    };
    let mut steps = Vec::new();
    if build_script {
        steps.push(
            Step::new("Running the build script", &["npm", "run", "build"]).with_env(&npm_env),
        );
    }
    let shared = "/usr/share/nodejs";
    Recipe {
        toolchain: roots::NODE,
        deps: Some(Deps {
            dir: "node_modules".to_owned(),
            key_files: vec![lockfile.to_owned()],
            // The build script needs node_modules on disk.
            cacheable: !build_script,
            steps: vec![Step::new("Installing dependencies with npm ci", &ci).with_env(&npm_env)],
        }),
        steps,
        runtime: Runtime {
            objects: vec!["/usr/bin/nodejs".to_owned()],
            // Debian's Node loads these from outside its binary.
            trees: ["acorn", "acorn-walk", "cjs-module-lexer", "undici"]
                .iter()
                .map(|name| (format!("{shared}/{name}"), Vec::new()))
                .collect(),
            object_dirs: Vec::new(),
            files: vec!["/usr/bin/node".to_owned()],
            links: Vec::new(),
        },
        app_excludes: vec![AppExclude::Path("node_modules".to_owned())],
        env: vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
            "NODE_ENV=production".to_owned(),
            "LANG=C.UTF-8".to_owned(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Files(BTreeMap<&'static str, &'static str>);

    impl Project for Files {
        fn read(&self, path: &str) -> Option<Vec<u8>> {
            self.0.get(path).map(|s| s.as_bytes().to_vec())
        }
        fn head(&self, path: &str, len: usize) -> Option<Vec<u8>> {
            self.read(path).map(|b| b[..len.min(b.len())].to_vec())
        }
        fn is_dir(&self, _path: &str) -> bool {
            false
        }
        fn is_file(&self, path: &str) -> bool {
            self.0.contains_key(path)
        }
    }

    fn plan(stack: Stack) -> BuildPlan {
        BuildPlan {
            stack,
            processes: BTreeMap::new(),
            release: None,
        }
    }

    #[test]
    fn python_with_requirements_caches_its_venv_by_the_requirements_file() {
        let r = recipe(
            &plan(Stack::Python { requirements: true }),
            &Files(BTreeMap::new()),
        );
        let deps = r.deps.unwrap();
        assert_eq!(deps.dir, ".venv");
        assert_eq!(deps.key_files, ["requirements.txt"]);
        assert!(deps.cacheable);
        let install = &deps.steps[1].argv;
        assert!(install.ends_with(&["-r".to_owned(), "requirements.txt".to_owned()]));
        assert!(r.env.iter().any(|e| e.starts_with("PATH=/app/.venv/bin:")));
        assert!(r.app_excludes.iter().any(|e| e.matches(".venv")));
    }

    #[test]
    fn a_pyproject_install_holds_the_app_itself_so_it_is_never_reused() {
        let r = recipe(
            &plan(Stack::Python {
                requirements: false,
            }),
            &Files(BTreeMap::new()),
        );
        let deps = r.deps.unwrap();
        assert!(!deps.cacheable);
        assert_eq!(deps.steps[1].argv.last().unwrap(), ".");
    }

    #[test]
    fn node_omits_dev_dependencies_unless_a_build_script_needs_them() {
        let files = Files(BTreeMap::from([("package-lock.json", "{}")]));
        let plain = recipe(
            &plan(Stack::Node {
                build_script: false,
            }),
            &files,
        );
        let deps = plain.deps.unwrap();
        assert!(deps.steps[0].argv.contains(&"--omit=dev".to_owned()));
        assert!(deps.cacheable);
        assert!(plain.steps.is_empty());
        let built = recipe(&plan(Stack::Node { build_script: true }), &files);
        assert!(
            !built.deps.as_ref().unwrap().steps[0]
                .argv
                .contains(&"--omit=dev".to_owned())
        );
        assert!(!built.deps.unwrap().cacheable);
        assert_eq!(built.steps[0].argv, ["npm", "run", "build"]);
    }

    #[test]
    fn go_builds_a_static_binary_and_ships_no_sources() {
        let r = recipe(
            &plan(Stack::Go {
                binary: "shop".to_owned(),
            }),
            &Files(BTreeMap::new()),
        );
        let step = &r.steps[0];
        assert!(step.argv.contains(&"/app/bin/shop".to_owned()));
        assert!(step.env.contains(&"CGO_ENABLED=0".to_owned()));
        assert!(r.app_excludes.iter().any(|e| e.matches("main.go")));
        assert!(
            r.app_excludes
                .iter()
                .any(|e| e.matches("internal/shop/cart.go"))
        );
        assert!(
            !r.app_excludes
                .iter()
                .any(|e| e.matches("templates/index.html"))
        );
        assert!(r.app_excludes.iter().any(|e| e.matches("go.sum")));
    }

    #[test]
    fn a_prebuilt_executable_brings_its_library_closure() {
        let r = recipe(
            &plan(Stack::Binary {
                path: "bin/server".to_owned(),
            }),
            &Files(BTreeMap::new()),
        );
        assert_eq!(r.runtime.objects, ["/app/bin/server"]);
        assert!(r.steps.is_empty() && r.deps.is_none());
    }
}
