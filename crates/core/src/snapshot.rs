//! The persisted form of the state, with a schema version and migrations from older versions.

use serde::{Deserialize, Serialize};

use crate::state::State;

/// Version of the persisted state layout. Bump it when the layout changes, and add a migration
/// from the previous version to `decode_snapshot`, with a fixture test of old bytes.
///
/// - 1: the first layout.
/// - 2: releases record the ID of the token that made them (`created_by_token`).
/// - 3: releases hold an image and process commands; formations hold memory and CPU limits.
/// - 4: releases have a status (rollouts); apps have custom domains and a health check; the
///   state says whether rollouts are enabled.
pub const SCHEMA_VERSION: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "state snapshot has schema version {found}, newer than this binary's {SCHEMA_VERSION}; upgrade spread"
    )]
    TooNew { found: u32 },
    #[error("state snapshot has schema version 0, which never existed")]
    NoSuchVersion,
    #[error("state snapshot is not valid: {0}")]
    Malformed(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Envelope<'a> {
    schema_version: u32,
    state: &'a State,
}

/// The envelope with the state left unparsed, so its version is known before the state is read,
/// and the state is parsed once, straight into the layout of that version.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    schema_version: u32,
    #[serde(borrow)]
    state: &'a serde_json::value::RawValue,
}

/// Serializes the state. Equal states give equal bytes.
pub fn encode_snapshot(state: &State) -> Vec<u8> {
    // Serializing a tree of maps, strings and numbers cannot fail.
    serde_json::to_vec(&Envelope {
        schema_version: SCHEMA_VERSION,
        state,
    })
    .expect("state serializes to JSON")
}

/// Reads a snapshot of this or any earlier schema version.
pub fn decode_snapshot(bytes: &[u8]) -> Result<State, SnapshotError> {
    let raw: RawEnvelope<'_> = serde_json::from_slice(bytes)?;
    match raw.schema_version {
        SCHEMA_VERSION => Ok(serde_json::from_str(raw.state.get())?),
        found if found > SCHEMA_VERSION => Err(SnapshotError::TooNew { found }),
        0 => Err(SnapshotError::NoSuchVersion),
        old => {
            // Older layouts are rare (once per upgrade), so they take the slower road through a
            // JSON tree, one migration step per version.
            let mut state: serde_json::Value = serde_json::from_str(raw.state.get())?;
            for migrate in &MIGRATIONS[old as usize - 1..] {
                migrate(&mut state);
            }
            Ok(serde_json::from_value(state)?)
        }
    }
}

/// `MIGRATIONS[n]` rewrites a state of schema version `n + 1` into version `n + 2`; one entry is
/// added with every bump of `SCHEMA_VERSION`.
const MIGRATIONS: [fn(&mut serde_json::Value); SCHEMA_VERSION as usize - 1] =
    [v1_to_v2, v2_to_v3, v3_to_v4];

/// Every app of a state in any layout.
fn apps(state: &mut serde_json::Value) -> impl Iterator<Item = &mut serde_json::Value> {
    state["apps"]
        .as_object_mut()
        .into_iter()
        .flat_map(|a| a.values_mut())
}

/// Version 2 records the token that made each release; version 1 did not know it.
fn v1_to_v2(state: &mut serde_json::Value) {
    for app in apps(state) {
        for release in app["releases"].as_array_mut().into_iter().flatten() {
            release["created_by_token"] = serde_json::Value::Null;
        }
    }
}

/// Version 3 adds images and process commands to releases (none before: nothing ran) and
/// limits to formations (none set).
fn v2_to_v3(state: &mut serde_json::Value) {
    for app in apps(state) {
        for release in app["releases"].as_array_mut().into_iter().flatten() {
            release["image"] = serde_json::Value::Null;
            release["processes"] = serde_json::json!({});
        }
        let formations = app["formation"]
            .as_object_mut()
            .into_iter()
            .flat_map(|f| f.values_mut());
        for formation in formations {
            formation["memory_bytes"] = serde_json::Value::Null;
            formation["cpu_millis"] = serde_json::Value::Null;
        }
    }
}

/// Version 4 adds release statuses (every earlier release went live at once), custom domains
/// (none), health checks (the default) and the rollouts switch (off: the log after the
/// snapshot was written by a binary without rollouts).
fn v3_to_v4(state: &mut serde_json::Value) {
    state["rollouts"] = serde_json::Value::Bool(false);
    for app in apps(state) {
        for release in app["releases"].as_array_mut().into_iter().flatten() {
            release["status"] = serde_json::json!({"state": "deployed"});
        }
        app["domains"] = serde_json::json!([]);
        app["health"] = serde_json::json!({"path": null, "timeout_secs": 60});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes written by schema version 1; they must always decode.
    const V1_FIXTURE: &str = r#"{"schema_version":1,"state":{"apps":{"shop":{"id":"0192f0c1-0000-7000-8000-000000000001","name":"shop","created_at":"2026-11-23T10:00:00Z","config":{"FOO":"bar"},"releases":[{"version":1,"description":"Set FOO","config":{"FOO":"bar"},"created_at":"2026-11-23T10:01:00Z","created_by":"admin"}],"formation":{"web":{"quantity":1}}}},"tokens":{}}}"#;

    /// Bytes written by schema version 2; they must always decode.
    const V2_FIXTURE: &str = r#"{"schema_version":2,"state":{"apps":{"shop":{"id":"0192f0c1-0000-7000-8000-000000000001","name":"shop","created_at":"2026-11-23T10:00:00Z","config":{"FOO":"bar"},"releases":[{"version":1,"description":"Set FOO","config":{"FOO":"bar"},"created_at":"2026-11-23T10:01:00Z","created_by":"admin","created_by_token":"0123456789abcdef"}],"formation":{"web":{"quantity":1}}}},"tokens":{}}}"#;

    /// Bytes written by schema version 3; they must always decode.
    const V3_FIXTURE: &str = r#"{"schema_version":3,"state":{"apps":{"shop":{"id":"0192f0c1-0000-7000-8000-000000000001","name":"shop","created_at":"2026-11-23T10:00:00Z","config":{"FOO":"bar"},"releases":[{"version":1,"description":"Set FOO","config":{"FOO":"bar"},"created_at":"2026-11-23T10:01:00Z","created_by":"admin","created_by_token":"0123456789abcdef","image":null,"processes":{}}],"formation":{"web":{"quantity":1,"memory_bytes":null,"cpu_millis":null}}}},"tokens":{}}}"#;

    /// Bytes written by schema version 4; they must always decode.
    const V4_FIXTURE: &str = r#"{"schema_version":4,"state":{"apps":{"shop":{"id":"0192f0c1-0000-7000-8000-000000000001","name":"shop","created_at":"2026-11-23T10:00:00Z","config":{"FOO":"bar"},"releases":[{"version":1,"description":"Set FOO","config":{"FOO":"bar"},"created_at":"2026-11-23T10:01:00Z","created_by":"admin","created_by_token":"0123456789abcdef","image":null,"processes":{},"status":{"state":"deployed"}}],"formation":{"web":{"quantity":1,"memory_bytes":null,"cpu_millis":null}},"domains":[],"health":{"path":null,"timeout_secs":60}}},"tokens":{},"rollouts":false}}"#;

    fn encoded(bytes: &str) -> String {
        String::from_utf8(encode_snapshot(&decode_snapshot(bytes.as_bytes()).unwrap())).unwrap()
    }

    #[test]
    fn version_1_snapshots_are_migrated_to_the_current_layout() {
        let state = decode_snapshot(V1_FIXTURE.as_bytes()).unwrap();
        let shop = state.app(&"shop".parse().unwrap()).unwrap();
        assert_eq!(shop.releases[0].created_by, "admin");
        assert_eq!(
            shop.releases[0].created_by_token, None,
            "v1 did not record the token"
        );
        assert_eq!(shop.config.get(&"FOO".parse().unwrap()).unwrap(), "bar");
        let expected = V4_FIXTURE.replace(r#""0123456789abcdef""#, "null");
        assert_eq!(encoded(V1_FIXTURE), expected);
    }

    #[test]
    fn version_2_snapshots_are_migrated_to_the_current_layout() {
        assert_eq!(encoded(V2_FIXTURE), V4_FIXTURE);
    }

    #[test]
    fn version_3_snapshots_are_migrated_to_the_current_layout() {
        let state = decode_snapshot(V3_FIXTURE.as_bytes()).unwrap();
        let shop = state.app(&"shop".parse().unwrap()).unwrap();
        assert_eq!(
            shop.releases[0].status,
            crate::model::ReleaseStatus::Deployed
        );
        assert_eq!(shop.health, crate::model::HealthCheck::default());
        assert_eq!(encoded(V3_FIXTURE), V4_FIXTURE);
    }

    #[test]
    fn version_4_snapshots_decode_and_encode_to_the_same_bytes() {
        let state = decode_snapshot(V4_FIXTURE.as_bytes()).unwrap();
        let release = &state.app(&"shop".parse().unwrap()).unwrap().releases[0];
        assert_eq!(
            release.created_by_token.as_ref().unwrap().0,
            "0123456789abcdef"
        );
        assert_eq!(encode_snapshot(&state), V4_FIXTURE.as_bytes());
    }

    #[test]
    fn snapshots_from_a_newer_binary_are_refused_with_a_clear_error() {
        let err = decode_snapshot(br#"{"schema_version":99,"state":{}}"#).unwrap_err();
        assert!(err.to_string().contains("upgrade spread"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_snapshot(b"\x00\x01not json").is_err());
        assert!(decode_snapshot(br#"{"schema_version":1,"state":{"apps":{"Bad":{}}}}"#).is_err());
    }
}
