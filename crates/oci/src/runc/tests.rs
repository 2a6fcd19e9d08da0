//! Unit tests of how runc's output is read; tests/runc.rs runs the real binary.

use super::*;

#[test]
fn the_version_of_debian_12s_runc_is_parsed() {
    let text = "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n\
                go: go1.19.8\nlibseccomp: 2.5.4\n";
    let version = parse_version(text).unwrap();
    assert_eq!(version.version, "1.1.5+ds1");
    assert_eq!(version.semver, (1, 1, 5));
    assert_eq!(version.commit.as_deref(), Some("1.1.5+ds1-1+deb12u1"));
    assert_eq!(version.spec.as_deref(), Some("1.0.2-dev"));
    assert_eq!(version.libseccomp.as_deref(), Some("2.5.4"));
}

#[test]
fn output_without_a_version_line_is_not_a_version() {
    assert_eq!(parse_version("usage: runc [options]\n"), None);
    assert_eq!(parse_version("runc version dev\n"), None);
}

#[test]
fn a_created_container_state_has_its_pid_and_bundle() {
    let json = br#"{"ociVersion":"1.0.2-dev","id":"web-1","pid":26330,"status":"created",
        "bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00Z","owner":""}"#;
    let state = parse_state(json).unwrap();
    assert_eq!(state.id.as_str(), "web-1");
    assert_eq!(state.status, Status::Created);
    assert_eq!(state.pid, Some(26330));
    assert_eq!(state.bundle, PathBuf::from("/b"));
}

#[test]
fn a_stopped_container_has_no_pid_even_if_runc_still_prints_the_old_one() {
    let json = br#"{"id":"web-1","pid":26330,"status":"stopped","bundle":"/b"}"#;
    let state = parse_state(json).unwrap();
    assert_eq!((state.status, state.pid), (Status::Stopped, None));
}

#[test]
fn an_unknown_status_is_reported_rather_than_guessed() {
    let json = br#"{"id":"web-1","pid":1,"status":"exploded","bundle":"/b"}"#;
    assert!(parse_state(json).unwrap_err().contains("exploded"));
    assert!(parse_state(b"not json").unwrap_err().contains("state json"));
}

#[test]
fn error_lines_of_a_json_log_are_joined_and_other_levels_dropped() {
    let log = "{\"level\":\"warning\",\"msg\":\"cgroup v1 is deprecated\",\"time\":\"t\"}\n\
               {\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"t\"}\n";
    assert_eq!(error_messages(log), "container does not exist");
}

#[test]
fn a_log_that_is_not_json_is_kept_as_it_is() {
    let text = "time=\"t\" level=error msg=\"container not running\"\n";
    assert_eq!(error_messages(text), text.trim());
}
