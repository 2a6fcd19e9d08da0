//! Detection on in-memory projects: each stack, derived commands and every refusal.

use std::collections::BTreeMap;

use super::*;

/// A project in memory: files by path; directories are implied by the paths below them.
#[derive(Default)]
struct Files(BTreeMap<String, Vec<u8>>);

impl Files {
    fn with(files: &[(&str, &str)]) -> Self {
        Self(
            files
                .iter()
                .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
                .collect(),
        )
    }
}

impl Project for Files {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.0
            .get(path)
            .filter(|c| c.len() <= MAX_MARKER_BYTES)
            .cloned()
    }
    fn head(&self, path: &str, len: usize) -> Option<Vec<u8>> {
        self.0.get(path).map(|c| c[..c.len().min(len)].to_vec())
    }
    fn is_dir(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.0.keys().any(|p| p.starts_with(&prefix))
    }
    fn is_file(&self, path: &str) -> bool {
        self.0.contains_key(path)
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn web(plan: &BuildPlan) -> &[String] {
    &plan.processes[&ProcessType::web()]
}

#[test]
fn python_takes_its_commands_and_release_from_the_procfile() {
    let plan = detect(&Files::with(&[
        ("requirements.txt", "flask==3.0\n"),
        (
            "Procfile",
            "web: python3 app.py\nrelease: python3 migrate.py\n",
        ),
        ("app.py", ""),
    ]))
    .unwrap();
    assert_eq!(plan.stack, Stack::Python { requirements: true });
    assert_eq!(web(&plan), argv(&["python3", "app.py"]));
    assert_eq!(plan.release, Some(argv(&["python3", "migrate.py"])));
}

#[test]
fn python_without_a_procfile_is_told_which_line_to_add() {
    let err = detect(&Files::with(&[("pyproject.toml", ""), ("main.py", "")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a Procfile"), "{err}");
    assert!(err.contains("web: python3 main.py"), "{err}");
}

#[test]
fn node_derives_its_start_from_a_node_start_script_or_main() {
    let lock = ("package-lock.json", "{}");
    let plan = detect(&Files::with(&[
        (
            "package.json",
            r#"{"scripts":{"start":"node server.js --port $PORT","build":"vite build"}}"#,
        ),
        lock,
    ]))
    .unwrap();
    assert_eq!(plan.stack, Stack::Node { build_script: true });
    assert_eq!(web(&plan), argv(&["node", "server.js", "--port", "$PORT"]));

    let plan = detect(&Files::with(&[
        ("package.json", r#"{"main":"index.js"}"#),
        lock,
    ]))
    .unwrap();
    assert_eq!(
        plan.stack,
        Stack::Node {
            build_script: false
        }
    );
    assert_eq!(web(&plan), argv(&["node", "index.js"]));
}

#[test]
fn node_refuses_a_start_script_it_cannot_run_without_a_shell_and_a_missing_lockfile() {
    let lock = ("package-lock.json", "{}");
    let err = detect(&Files::with(&[
        (
            "package.json",
            r#"{"scripts":{"start":"npm run serve && echo"}}"#,
        ),
        lock,
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("neither a `start` script of the form `node FILE`"),
        "{err}"
    );
    assert!(err.contains("web: node server.js"), "{err}");

    let err = detect(&Files::with(&[("package.json", "{}")])).unwrap_err();
    assert_eq!(err, DetectError::NoLockfile);

    let err = detect(&Files::with(&[("package.json", "[1,"), lock]))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("package.json is not valid:"), "{err}");
}

#[test]
fn go_builds_a_binary_named_after_the_module() {
    let plan = detect(&Files::with(&[(
        "go.mod",
        "module example.com/shop/api\n\ngo 1.19\n",
    )]))
    .unwrap();
    assert_eq!(
        plan.stack,
        Stack::Go {
            binary: "api".to_owned()
        }
    );
    assert_eq!(web(&plan), argv(&["/app/bin/api"]));

    let err = detect(&Files::with(&[("go.mod", "go 1.19\n")]))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "go.mod is not valid: it has no `module` line");
}

#[test]
fn static_sites_serve_public_or_the_root() {
    let plan = detect(&Files::with(&[("public/index.html", "<h1>hi</h1>")])).unwrap();
    assert_eq!(
        plan.stack,
        Stack::Static {
            root: "public".to_owned()
        }
    );
    let expected: Vec<&str> = [STATIC_SERVER, &["--directory", "/app/public", "$PORT"]].concat();
    assert_eq!(web(&plan), argv(&expected));

    let plan = detect(&Files::with(&[("index.html", "<h1>hi</h1>")])).unwrap();
    assert_eq!(
        plan.stack,
        Stack::Static {
            root: ".".to_owned()
        }
    );
    let expected: Vec<&str> = [STATIC_SERVER, &["--directory", "/app", "$PORT"]].concat();
    assert_eq!(web(&plan), argv(&expected));
}

#[test]
fn a_prebuilt_executable_named_in_the_procfile_is_a_binary_project() {
    let plan = detect(&Files::with(&[
        ("Procfile", "web: ./bin/server --port $PORT\n"),
        ("bin/server", "\x7fELF\x02\x01\x01"),
    ]))
    .unwrap();
    assert_eq!(
        plan.stack,
        Stack::Binary {
            path: "bin/server".to_owned()
        }
    );

    let err = detect(&Files::with(&[
        ("Procfile", "web: ./run.sh\n"),
        ("run.sh", "#!/bin/sh\n"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("`run.sh` is not a Linux executable"), "{err}");

    let err = detect(&Files::with(&[("Procfile", "web: server\n")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`server`, which is not a file in the project"),
        "{err}"
    );
    assert!(err.contains("e.g. `web: ./server`"), "{err}");
}

#[test]
fn the_first_matching_stack_wins_and_a_procfile_overrides_derived_commands() {
    let plan = detect(&Files::with(&[
        ("requirements.txt", ""),
        ("package.json", "{}"),
        ("Procfile", "web: gunicorn app:app"),
    ]))
    .unwrap();
    assert_eq!(plan.stack.name(), "python");

    let plan = detect(&Files::with(&[
        ("go.mod", "module shop"),
        (
            "Procfile",
            "web: /app/bin/shop --verbose\nworker: /app/bin/shop --work",
        ),
    ]))
    .unwrap();
    assert_eq!(web(&plan), argv(&["/app/bin/shop", "--verbose"]));
    assert_eq!(plan.processes.len(), 2);
}

#[test]
fn an_unknown_project_lists_what_is_supported_with_a_procfile_example() {
    let err = detect(&Files::with(&[("README.md", "hello")]))
        .unwrap_err()
        .to_string();
    for expected in [
        "Python: requirements.txt",
        "Node: package.json",
        "Go: go.mod",
        "static site",
        "web: python3 app.py",
    ] {
        assert!(err.contains(expected), "{expected}: {err}");
    }
    let err = detect(&Files::default()).unwrap_err();
    assert_eq!(err, DetectError::Unknown);
}

#[test]
fn a_bad_procfile_is_reported_before_anything_else() {
    let err = detect(&Files::with(&[
        ("requirements.txt", ""),
        ("Procfile", "web python3 app.py"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("Procfile line 1:"), "{err}");
}
