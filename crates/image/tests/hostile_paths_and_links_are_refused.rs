//! Hostile paths and links: each is refused with a clear error and writes nothing outside dest.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::{Entry, Sandbox, pax_record, refusal, tarball, without_root};
use spread_image::{LinkProblem, PathProblem, Refusal};
use tar::EntryType;

#[test]
fn absolute_path_is_refused() {
    let sandbox = Sandbox::new();
    let canary = sandbox.outside("pwned");
    let layer = tarball(&[Entry::file(canary.to_str().unwrap(), "owned")]);
    let (path, rule, message) = refusal(sandbox.unpack(&layer));
    assert_eq!(path, canary.to_str().unwrap());
    assert_eq!(rule, Refusal::Path(PathProblem::Absolute));
    assert_eq!(
        message,
        format!(
            "layer entry {:?} escapes the layer root: absolute paths are not allowed",
            path
        )
    );
    assert!(!canary.exists());
    sandbox.assert_nothing_outside_dest(&[]);
}

#[test]
fn parent_directory_escape_is_refused() {
    for evil in ["../pwned", "a/../../pwned", "./../pwned"] {
        let sandbox = Sandbox::new();
        let layer = tarball(&[Entry::dir("a"), Entry::file(evil, "owned")]);
        let (_, rule, message) = refusal(sandbox.unpack(&layer));
        assert_eq!(rule, Refusal::Path(PathProblem::ParentComponent));
        assert_eq!(
            message,
            format!("layer entry {evil:?} escapes the layer root: \"..\" is not allowed")
        );
        assert!(!sandbox.outside("pwned").exists());
        sandbox.assert_nothing_outside_dest(&[]);
    }
}

#[test]
fn file_through_an_absolute_symlink_is_refused() {
    let sandbox = Sandbox::new();
    let outside = sandbox.outside("outside");
    fs::create_dir(&outside).unwrap();
    let layer = tarball(&[
        Entry::symlink("evil", outside.to_str().unwrap()),
        Entry::file("evil/pwned", "owned"),
    ]);
    let (path, rule, message) = refusal(sandbox.unpack(&layer));
    assert_eq!(path, "evil/pwned");
    assert_eq!(
        rule,
        Refusal::ThroughSymlink {
            component: "evil".into()
        }
    );
    assert!(
        message.contains("would be written through the symlink \"evil\""),
        "{message}"
    );
    assert!(!outside.join("pwned").exists());
    sandbox.assert_nothing_outside_dest(&["outside"]);
}

#[test]
fn file_through_a_symlink_to_the_filesystem_root_is_refused() {
    let sandbox = Sandbox::new();
    let canary = sandbox.outside("pwned");
    let layer = tarball(&[
        Entry::symlink("evil", "/"),
        Entry::file(format!("evil/{}", without_root(&canary)), "owned"),
    ]);
    let (_, rule, _) = refusal(sandbox.unpack(&layer));
    assert_eq!(
        rule,
        Refusal::ThroughSymlink {
            component: "evil".into()
        }
    );
    assert!(!canary.exists());
    sandbox.assert_nothing_outside_dest(&[]);
}

#[test]
fn file_and_directory_through_a_parent_symlink_are_refused() {
    for second in [
        Entry::file("sub/evil/pwned", "owned"),
        Entry::dir("sub/evil/pwned"),
    ] {
        let sandbox = Sandbox::new();
        let layer = tarball(&[
            Entry::dir("sub"),
            Entry::symlink("sub/evil", "../.."),
            second,
        ]);
        let (_, rule, _) = refusal(sandbox.unpack(&layer));
        assert_eq!(
            rule,
            Refusal::ThroughSymlink {
                component: "sub/evil".into()
            }
        );
        assert!(!sandbox.outside("pwned").exists());
        sandbox.assert_nothing_outside_dest(&[]);
    }
}

#[test]
fn whiteout_and_opaque_marker_through_a_symlink_are_refused() {
    for marker in ["evil/.wh.victim", "evil/.wh..wh..opq"] {
        let sandbox = Sandbox::new();
        let outside = sandbox.outside("outside");
        fs::create_dir(&outside).unwrap();
        let layer = tarball(&[
            Entry::symlink("evil", outside.to_str().unwrap()),
            Entry::file(marker, ""),
        ]);
        let (_, rule, _) = refusal(sandbox.unpack(&layer));
        assert_eq!(
            rule,
            Refusal::ThroughSymlink {
                component: "evil".into()
            }
        );
        assert!(!outside.join("victim").exists());
        assert!(!spread_image::whiteout::is_opaque(&outside).unwrap());
        sandbox.assert_nothing_outside_dest(&["outside"]);
    }
}

#[test]
fn file_over_an_existing_symlink_replaces_the_link_not_its_target() {
    let sandbox = Sandbox::new();
    let secret = sandbox.outside("secret");
    fs::write(&secret, "untouched").unwrap();
    let layer = tarball(&[
        Entry::symlink("evil", secret.to_str().unwrap()),
        Entry::file("evil", "in the layer"),
    ]);
    sandbox.unpack(&layer).unwrap();
    assert_eq!(fs::read_to_string(&secret).unwrap(), "untouched");
    let evil = sandbox.dest.join("evil");
    assert!(fs::symlink_metadata(&evil).unwrap().is_file());
    assert_eq!(fs::read_to_string(evil).unwrap(), "in the layer");
    sandbox.assert_nothing_outside_dest(&["secret"]);
}

#[test]
fn hard_links_leaving_the_layer_are_refused() {
    let sandbox = Sandbox::new();
    let secret = sandbox.outside("secret");
    fs::write(&secret, "secret").unwrap();
    let cases = [
        ("../secret".to_owned(), PathProblem::ParentComponent),
        (secret.to_str().unwrap().to_owned(), PathProblem::Absolute),
        ("/etc/passwd".to_owned(), PathProblem::Absolute),
    ];
    for (target, problem) in cases {
        let layer = tarball(&[Entry::hard_link("evil", &target)]);
        let (path, rule, message) = refusal(sandbox.unpack(&layer));
        assert_eq!(path, "evil");
        let problem = LinkProblem::Path(problem);
        assert_eq!(
            rule,
            Refusal::HardLink {
                target: target.clone(),
                problem
            }
        );
        let start = format!("layer entry \"evil\" is a hard link to {target:?}, which escapes");
        assert!(message.starts_with(&start), "{message}");
        assert!(!sandbox.dest.join("evil").exists());
    }
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
    sandbox.assert_nothing_outside_dest(&["secret"]);
}

#[test]
fn hard_links_to_or_through_symlinks_or_to_missing_files_are_refused() {
    let sandbox = Sandbox::new();
    let secret = sandbox.outside("secret");
    fs::write(&secret, "secret").unwrap();
    let tmp = sandbox.tmp.path().to_str().unwrap();
    let cases = [
        (
            "lnk/secret",
            LinkProblem::ThroughSymlink {
                component: "lnk".into(),
            },
        ),
        ("lnk", LinkProblem::Symlink),
        ("nowhere", LinkProblem::Missing),
        ("h", LinkProblem::Itself),
        ("dir", LinkProblem::NotRegularFile),
    ];
    for (target, problem) in cases {
        let layer = tarball(&[
            Entry::symlink("lnk", tmp),
            Entry::dir("dir"),
            Entry::hard_link("h", target),
        ]);
        let (_, rule, _) = refusal(sandbox.unpack(&layer));
        assert_eq!(
            rule,
            Refusal::HardLink {
                target: target.into(),
                problem
            }
        );
        assert!(!sandbox.dest.join("h").exists());
    }
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
    sandbox.assert_nothing_outside_dest(&["secret"]);
}

#[test]
fn escapes_hidden_in_long_names_and_pax_records_are_refused() {
    let long_name = Entry {
        data: b"../pwned\0".to_vec(),
        ..Entry::new(EntryType::GNULongName, "././@LongLink")
    };
    let pax_path = Entry {
        data: pax_record("path", "../pwned"),
        ..Entry::new(EntryType::XHeader, "PaxHeaders/innocent")
    };
    for header in [long_name, pax_path] {
        let sandbox = Sandbox::new();
        let layer = tarball(&[header, Entry::file("innocent", "owned")]);
        let (path, rule, _) = refusal(sandbox.unpack(&layer));
        assert_eq!(path, "../pwned");
        assert_eq!(rule, Refusal::Path(PathProblem::ParentComponent));
        assert!(!sandbox.outside("pwned").exists());
        assert!(!sandbox.dest.join("innocent").exists());
        sandbox.assert_nothing_outside_dest(&[]);
    }
}

#[test]
fn hard_link_escape_hidden_in_a_pax_linkpath_is_refused() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.outside("secret"), "secret").unwrap();
    let pax = Entry {
        data: pax_record("linkpath", "../secret"),
        ..Entry::new(EntryType::XHeader, "PaxHeaders/evil")
    };
    let layer = tarball(&[pax, Entry::hard_link("evil", "harmless")]);
    let (_, rule, _) = refusal(sandbox.unpack(&layer));
    let problem = LinkProblem::Path(PathProblem::ParentComponent);
    assert_eq!(
        rule,
        Refusal::HardLink {
            target: "../secret".into(),
            problem
        }
    );
    assert_eq!(fs::metadata(sandbox.outside("secret")).unwrap().nlink(), 1);
    sandbox.assert_nothing_outside_dest(&["secret"]);
}
