//! Code-shape rules for the whole workspace, checked by `cargo test` so CI needs nothing else:
//! every Rust file opens with a `//!` line saying what it holds, and no debugging leftovers.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn workspace_sources() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(crates).unwrap() {
        let krate = krate.unwrap().path();
        for sub in ["src", "tests", "benches"] {
            if krate.join(sub).is_dir() {
                rust_files(&krate.join(sub), &mut files);
            }
        }
    }
    assert!(
        files.len() > 20,
        "found only {} files; is the walk broken?",
        files.len()
    );
    files
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let missing: Vec<_> = workspace_sources()
        .into_iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with("#!"))
                .unwrap_or("");
            !first.starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` first line: {missing:#?}"
    );
}

#[test]
fn no_debugging_leftovers() {
    let needles = [
        concat!("dbg", "!("),
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
    ];
    let found: Vec<_> = workspace_sources()
        .into_iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            needles.iter().any(|n| text.contains(n))
        })
        .collect();
    assert!(found.is_empty(), "debugging leftovers in: {found:#?}");
}
