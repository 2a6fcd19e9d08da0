//! Closures on this machine's own root and on small roots made from its files: interpreters and
//! libraries with every symlink on the way, `$ORIGIN` search paths, ld.so.conf, confinement to
//! the root, and clear errors. Programs are built with `gcc`, which every machine that builds
//! Rust has.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::process::Command;

use proptest::prelude::*;

use super::*;

fn host_closure(objects: &[&str]) -> BTreeSet<PathBuf> {
    let objects: Vec<PathBuf> = objects.iter().map(PathBuf::from).collect();
    closure(Path::new("/"), &objects).unwrap()
}

/// Copies each absolute host path into `root` at the same place, links as links.
fn copy_from_host<'a>(root: &Path, paths: impl IntoIterator<Item = &'a PathBuf>) {
    for path in paths {
        let dest = root.join(path.strip_prefix("/").unwrap());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if fs::symlink_metadata(path).unwrap().is_symlink() {
            symlink(fs::read_link(path).unwrap(), &dest).unwrap();
        } else {
            fs::copy(path, &dest).unwrap();
        }
    }
}

/// The libc file itself (not a link to it) in a closure.
fn real_libc(closure: &BTreeSet<PathBuf>) -> PathBuf {
    closure
        .iter()
        .find(|p| p.ends_with("libc.so.6") && !fs::symlink_metadata(p).unwrap().is_symlink())
        .expect("a closure with libc")
        .clone()
}

fn interpreter_of(path: &Path) -> PathBuf {
    let object = read_object(&File::open(path).unwrap()).unwrap();
    object.interpreter.unwrap()
}

fn gcc(args: &[&str]) {
    let status = Command::new("gcc")
        .args(args)
        .status()
        .expect("gcc runs: every machine that builds Rust has it");
    assert!(status.success(), "gcc {args:?} failed");
}

fn is_root_user() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// Runs `command` in `root` with chroot, when this test runs as root; `None` otherwise.
fn run_chrooted(root: &Path, command: &[&str]) -> Option<bool> {
    let chroot = Path::new("/usr/sbin/chroot");
    if !is_root_user() || !chroot.exists() {
        eprintln!("not root or no chroot: {command:?} not run in its root");
        return None;
    }
    let output = Command::new(chroot)
        .arg(root)
        .args(command)
        .output()
        .unwrap();
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    Some(output.status.success())
}

/// A tiny app in `dir/app`: `lib/libdemo.so`, and programs in `bin` that need it and exit 0
/// when it answers: `demo` (DT_RUNPATH `$ORIGIN/../lib`), `demo-rpath` (DT_RPATH
/// `${ORIGIN}/../lib`) and `demo-plain` (no search path).
fn build_demo_app(dir: &Path) -> PathBuf {
    let app = dir.join("app");
    fs::create_dir_all(app.join("lib")).unwrap();
    fs::create_dir_all(app.join("bin")).unwrap();
    let lib_c = dir.join("demo.c");
    let main_c = dir.join("main.c");
    fs::write(
        &lib_c,
        "#include <unistd.h>\nint demo(void) { return getpid() > 0 ? 42 : 0; }\n",
    )
    .unwrap();
    fs::write(
        &main_c,
        "int demo(void);\nint main(void) { return demo() == 42 ? 0 : 1; }\n",
    )
    .unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let lib = app.join("lib/libdemo.so");
    gcc(&["-shared", "-fPIC", "-o", &s(&lib), &s(&lib_c)]);
    let link = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "-o".to_owned(),
            s(&app.join("bin").join(name)),
            s(&main_c),
            format!("-L{}", s(&app.join("lib"))),
            "-ldemo".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        gcc(&args.iter().map(String::as_str).collect::<Vec<_>>());
    };
    link(
        "demo",
        &["-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"],
    );
    link(
        "demo-rpath",
        &["-Wl,--disable-new-dtags", "-Wl,-rpath,${ORIGIN}/../lib"],
    );
    link("demo-plain", &[]);
    app
}

#[test]
fn ls_needs_its_interpreter_and_libraries_with_every_link_on_the_way() {
    let ls = Path::new("/usr/bin/ls");
    let needed = host_closure(&["/usr/bin/ls"]);

    assert!(needed.contains(ls), "{needed:#?}");
    let interpreter = interpreter_of(ls);
    assert!(
        needed.contains(&fs::canonicalize(&interpreter).unwrap()),
        "{needed:#?}"
    );
    for name in ["libc.so.6", "libselinux.so.1"] {
        assert!(
            needed.iter().any(|p| p.file_name().unwrap() == name),
            "{name} missing from {needed:#?}"
        );
    }
    // Debian 12 has merged /usr: the loader reaches its files through these links.
    for link in ["/lib", "/lib64"] {
        if fs::symlink_metadata(link).unwrap().is_symlink() {
            assert!(needed.contains(Path::new(link)), "{link} missing");
        }
    }
    for path in &needed {
        let parent = path.parent().unwrap();
        assert_eq!(
            fs::canonicalize(parent).unwrap(),
            parent,
            "{} has a symlink among its parents",
            path.display()
        );
        let meta = fs::symlink_metadata(path).unwrap();
        let target = fs::canonicalize(path).unwrap();
        if meta.is_symlink() && target.is_file() {
            assert!(
                needed.contains(&target),
                "{} leads to {}, which is missing",
                path.display(),
                target.display()
            );
        }
    }
}

#[test]
fn a_root_made_of_a_closure_gives_the_same_closure_and_runs_the_program() {
    let host = host_closure(&["/usr/bin/ls"]);
    let root = tempfile::tempdir().unwrap();
    copy_from_host(root.path(), &host);

    let inside = closure(root.path(), &[PathBuf::from("/usr/bin/ls")]).unwrap();

    assert_eq!(inside, host);
    if let Some(ran) = run_chrooted(root.path(), &["/usr/bin/ls", "/"]) {
        assert!(ran, "ls did not run in a root made of its closure");
    }
}

#[test]
fn absolute_and_dot_dot_links_resolve_inside_the_root_only() {
    let host = host_closure(&["/usr/bin/true"]);
    let libc = real_libc(&host);
    // A libc outside the root, at a path that exists on the host.
    let outside = tempfile::tempdir().unwrap();
    let outside_libc = outside.path().join("libc.so.6");
    fs::copy(&libc, &outside_libc).unwrap();
    let escaping = [
        outside_libc.clone(),
        Path::new("../../../../../../../../..").join(outside_libc.strip_prefix("/").unwrap()),
    ];
    for target in escaping {
        let root = tempfile::tempdir().unwrap();
        copy_from_host(root.path(), &host);
        let in_root = root.path().join(libc.strip_prefix("/").unwrap());
        fs::remove_file(&in_root).unwrap();
        symlink(&target, &in_root).unwrap();

        let err = closure(root.path(), &[PathBuf::from("/usr/bin/true")]).unwrap_err();

        assert!(
            matches!(&err, ElfError::MissingLibrary { library, .. } if library == "libc.so.6"),
            "through {}: {err}",
            target.display()
        );
        let message = err.to_string();
        assert!(message.contains("/usr/bin/true"), "{message}");
    }
}

#[test]
fn a_symlink_loop_is_an_error() {
    let host = host_closure(&["/usr/bin/true"]);
    let root = tempfile::tempdir().unwrap();
    copy_from_host(root.path(), &host);
    let libc = root
        .path()
        .join(real_libc(&host).strip_prefix("/").unwrap());
    fs::remove_file(&libc).unwrap();
    symlink("libc.so.6.again", &libc).unwrap();
    symlink("libc.so.6", libc.with_file_name("libc.so.6.again")).unwrap();

    let err = closure(root.path(), &[PathBuf::from("/usr/bin/true")]).unwrap_err();

    assert!(matches!(err, ElfError::TooManyLinks { .. }), "{err}");
    assert!(err.to_string().contains("libc.so.6"), "{err}");
}

#[test]
fn origin_search_paths_find_the_apps_own_libraries() {
    let work = tempfile::tempdir().unwrap();
    let app = build_demo_app(work.path());
    for program in ["demo", "demo-rpath"] {
        let status = Command::new(app.join("bin").join(program))
            .status()
            .unwrap();
        assert!(status.success(), "{program} does not run on the host");
    }
    // On the host's own root, `$ORIGIN` is wherever the temporary directory is.
    let programs = [app.join("bin/demo"), app.join("bin/demo-rpath")];
    let on_host = closure(Path::new("/"), &programs).unwrap();
    assert!(
        on_host.contains(&app.join("lib/libdemo.so")),
        "{on_host:#?}"
    );

    // In a root of its own, at /app.
    let root = tempfile::tempdir().unwrap();
    copy_from_host(
        root.path(),
        on_host.iter().filter(|p| !p.starts_with(work.path())),
    );
    let programs = [
        PathBuf::from("/app/bin/demo"),
        PathBuf::from("/app/bin/demo-rpath"),
    ];
    let with_app = closure_with_app(root.path(), &app, &programs).unwrap();
    assert!(with_app.contains(Path::new("/app/lib/libdemo.so")));
    assert!(with_app.contains(Path::new("/app/bin/demo-rpath")));

    // A link in the app that leads into the root.
    let libc = real_libc(&on_host);
    symlink(&libc, app.join("bin/libc-link")).unwrap();
    let link = [PathBuf::from("/app/bin/libc-link")];
    let through_link = closure_with_app(root.path(), &app, &link).unwrap();
    assert!(through_link.contains(&link[0]) && through_link.contains(&libc));
    fs::remove_file(app.join("bin/libc-link")).unwrap();

    copy_dir(&app, &root.path().join("app"));
    let inside = closure(root.path(), &programs).unwrap();
    assert_eq!(inside, with_app);
    // Through its interpreter: the chroot has no /proc, where ld.so finds the `$ORIGIN` of a
    // program the kernel started, but it takes the path it is given.
    let interpreter = interpreter_of(&app.join("bin/demo"));
    let command = [interpreter.to_str().unwrap(), "/app/bin/demo"];
    if let Some(ran) = run_chrooted(root.path(), &command) {
        assert!(ran, "demo did not run in a root made of its closure");
    }

    fs::remove_file(root.path().join("app/lib/libdemo.so")).unwrap();
    let err = closure(root.path(), &programs[..1]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("library libdemo.so"), "{message}");
    assert!(message.contains("needed by /app/bin/demo"), "{message}");
    assert!(message.contains("/app/bin/../lib"), "{message}");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn ld_so_conf_directories_are_searched_and_other_machines_libraries_passed_over() {
    let work = tempfile::tempdir().unwrap();
    let app = build_demo_app(work.path());
    let root = tempfile::tempdir().unwrap();
    copy_from_host(root.path(), &host_closure(&["/usr/bin/true"]));
    let r = |path: &str| root.path().join(path);
    fs::create_dir_all(r("app/bin")).unwrap();
    fs::copy(app.join("bin/demo-plain"), r("app/bin/demo-plain")).unwrap();
    // The first directory listed holds a libdemo.so for another machine.
    fs::create_dir_all(r("opt/wrong")).unwrap();
    fs::create_dir_all(r("opt/demo")).unwrap();
    let other_machine = if cfg!(target_arch = "aarch64") {
        EM_X86_64
    } else {
        EM_AARCH64
    };
    let mut foreign = fs::read(app.join("lib/libdemo.so")).unwrap();
    // e_machine, little-endian on both machines.
    foreign[18..20].copy_from_slice(&other_machine.to_le_bytes());
    fs::write(r("opt/wrong/libdemo.so"), foreign).unwrap();
    fs::copy(app.join("lib/libdemo.so"), r("opt/demo/libdemo.so")).unwrap();
    fs::create_dir_all(r("etc/spread.d")).unwrap();
    fs::write(r("etc/ld.so.conf"), "include spread.d/*.conf # relative\n").unwrap();
    fs::write(
        r("etc/spread.d/demo.conf"),
        "# demo\n/opt/wrong\n\n/opt/demo\n",
    )
    .unwrap();

    let needed = closure(root.path(), &[PathBuf::from("/app/bin/demo-plain")]).unwrap();

    assert!(
        needed.contains(Path::new("/opt/demo/libdemo.so")),
        "{needed:#?}"
    );
    assert!(!needed.contains(Path::new("/opt/wrong/libdemo.so")));
}

#[test]
fn a_static_program_needs_only_itself() {
    let work = tempfile::tempdir().unwrap();
    let main_c = work.path().join("main.c");
    fs::write(&main_c, "int main(void) { return 0; }\n").unwrap();
    let program = work.path().join("static");
    gcc(&[
        "-static",
        "-o",
        program.to_str().unwrap(),
        main_c.to_str().unwrap(),
    ]);

    let needed = closure(Path::new("/"), std::slice::from_ref(&program)).unwrap();

    assert_eq!(needed, BTreeSet::from([program]));
}

#[test]
fn shared_objects_are_taken_as_inputs() {
    let work = tempfile::tempdir().unwrap();
    let app = build_demo_app(work.path());
    let lib = app.join("lib/libdemo.so");

    let needed = closure(Path::new("/"), std::slice::from_ref(&lib)).unwrap();

    assert!(needed.contains(&lib));
    assert!(
        needed.iter().any(|p| p.ends_with("libc.so.6")),
        "{needed:#?}"
    );
    assert!(is_elf(&lib));
}

#[test]
fn inputs_that_are_not_elf_files_are_errors_naming_them() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("app")).unwrap();
    fs::write(root.path().join("app/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::write(root.path().join("app/short"), b"\x7fELF\x02").unwrap();
    let check = |path: &str, expected: &str| {
        let err = closure(root.path(), &[PathBuf::from(path)]).unwrap_err();
        assert_eq!(err.to_string(), expected);
    };

    check("/app/run.sh", "/app/run.sh is not an ELF file");
    check("/app", "/app is not an ELF file");
    check(
        "/app/missing",
        &format!(
            "/app/missing does not exist in the root {}",
            root.path().display()
        ),
    );
    check(
        "app/run.sh",
        "app/run.sh must be an absolute path inside the root",
    );
    let err = closure(root.path(), &[PathBuf::from("/app/short")]).unwrap_err();
    assert!(matches!(err, ElfError::Malformed { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("/app/short is not a valid ELF file: ")
    );

    assert!(!is_elf(&root.path().join("app/run.sh")));
    assert!(!is_elf(&root.path().join("app")));
    assert!(is_elf(Path::new("/usr/bin/true")));
}

#[test]
fn links_resolve_within_the_root_and_record_every_hop() {
    let root = tempfile::tempdir().unwrap();
    let r = |path: &str| root.path().join(path);
    fs::create_dir_all(r("usr/lib")).unwrap();
    fs::write(r("usr/lib/libx.so"), "x").unwrap();
    symlink("usr/lib", r("lib")).unwrap();
    symlink("/lib/libx.so", r("usr/lib/liby.so")).unwrap();
    symlink("../../../../lib", r("usr/up")).unwrap();
    let root = Root::new(root.path());

    let found = root.resolve(Path::new("/usr/up/liby.so")).unwrap().unwrap();

    assert_eq!(found.path, Path::new("/usr/lib/libx.so"));
    assert_eq!(
        found.links,
        [
            PathBuf::from("/usr/up"),
            PathBuf::from("/lib"),
            PathBuf::from("/usr/lib/liby.so"),
            PathBuf::from("/lib"),
        ]
    );
    assert!(
        root.resolve(Path::new("/lib/libx.so/more"))
            .unwrap()
            .is_none()
    );
    assert!(root.resolve(Path::new("/nowhere")).unwrap().is_none());
}

#[test]
fn origin_is_expanded_and_other_tokens_skip_the_entry() {
    let one = |entry: &str| expand_origin(entry.as_bytes(), b"/app/bin");

    assert_eq!(
        one("$ORIGIN/../lib"),
        Some(PathBuf::from("/app/bin/../lib"))
    );
    assert_eq!(one("${ORIGIN}/x"), Some(PathBuf::from("/app/bin/x")));
    assert_eq!(one("/opt/lib"), Some(PathBuf::from("/opt/lib")));
    assert_eq!(one("$ORIGINAL/lib"), None);
    assert_eq!(one("/usr/$LIB"), None);
    assert_eq!(one("lib"), None);
    let lists = [OsString::from("$ORIGIN/a::/b"), OsString::from("/c")];
    assert_eq!(
        expand(&lists, Path::new("/o")),
        [
            PathBuf::from("/o/a"),
            PathBuf::from("/b"),
            PathBuf::from("/c")
        ]
    );
}

/// Where the loader's data lies in `bytes`: the headers, PT_DYNAMIC and the dynamic strings.
fn loader_regions(bytes: &[u8]) -> [std::ops::Range<usize>; 3] {
    let elf = goblin::elf::Elf::parse(bytes).unwrap();
    let dynamic = elf
        .program_headers
        .iter()
        .find(|ph| ph.p_type == goblin::elf::program_header::PT_DYNAMIC)
        .unwrap();
    let info = &elf.dynamic.as_ref().unwrap().info;
    let dynamic_start = dynamic.p_offset as usize;
    [
        0..1024,
        dynamic_start..dynamic_start + dynamic.p_filesz as usize,
        info.strtab..info.strtab + info.strsz,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Damaged ELF files are untrusted input: they give errors, never a panic.
    #[test]
    fn damaged_elf_files_never_panic(
        edits in proptest::collection::vec((0usize..3, any::<usize>(), any::<u8>()), 1..12),
    ) {
        let mut bytes = fs::read("/usr/bin/true").unwrap();
        let regions = loader_regions(&bytes);
        for (region, at, byte) in edits {
            let region = &regions[region];
            bytes[region.start + at % region.len()] = byte;
        }
        let root = tempfile::tempdir().unwrap();
        copy_from_host(root.path(), &host_closure(&["/usr/bin/true"]));
        fs::create_dir_all(root.path().join("bin")).unwrap();
        fs::write(root.path().join("bin/damaged"), &bytes).unwrap();

        let _ = closure(root.path(), &[PathBuf::from("/bin/damaged")]);
    }
}
