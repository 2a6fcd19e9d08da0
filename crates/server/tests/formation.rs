//! `PATCH /v1/apps/{app}/formation`: quantities and per-type limits, set together or apart.

mod common;

use axum::http::{Method, StatusCode};
use common::{api, assert_error};
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;

/// The formation entry of `process` in a formation list.
fn entry<'a>(formation: &'a Value, process: &str) -> &'a Value {
    formation
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == process)
        .unwrap_or_else(|| panic!("no `{process}` in {formation}"))
}

#[tokio::test]
async fn limits_are_set_and_an_absent_field_keeps_its_limit() {
    let api = api().await;
    api.create("shop").await;
    let (status, formation) = api
        .scale(json!({ "limits": { "web": { "memory_bytes": 512 * MIB, "cpu_millis": 500 } } }))
        .await;
    assert_eq!(status, StatusCode::OK, "{formation}");
    assert_eq!(
        entry(&formation, "web"),
        &json!({ "type": "web", "quantity": 1, "memory_bytes": 512 * MIB, "cpu_millis": 500 })
    );

    let (status, formation) = api
        .scale(json!({ "limits": { "web": { "cpu_millis": 2000 } } }))
        .await;
    assert_eq!(status, StatusCode::OK, "{formation}");
    let web = entry(&formation, "web");
    assert_eq!(web["memory_bytes"], 512 * MIB, "memory was not named: kept");
    assert_eq!(web["cpu_millis"], 2000);

    let (_, formation) = api.scale(json!({ "quantities": { "web": 3 } })).await;
    let web = entry(&formation, "web");
    assert_eq!(web["quantity"], 3);
    assert_eq!(web["memory_bytes"], 512 * MIB, "scaling keeps the limits");
    assert_eq!(web["cpu_millis"], 2000);
}

#[tokio::test]
async fn null_removes_a_limit() {
    let api = api().await;
    api.create("shop").await;
    api.scale(json!({ "limits": { "web": { "memory_bytes": 256 * MIB, "cpu_millis": 500 } } }))
        .await;
    let (status, formation) = api
        .scale(json!({ "limits": { "web": { "memory_bytes": null } } }))
        .await;
    assert_eq!(status, StatusCode::OK, "{formation}");
    let web = entry(&formation, "web");
    assert_eq!(web["memory_bytes"], Value::Null);
    assert_eq!(web["cpu_millis"], 500);
}

#[tokio::test]
async fn quantities_and_limits_change_in_one_patch() {
    let api = api().await;
    api.create("shop").await;
    let (status, formation) = api
        .scale(json!({
            "quantities": { "web": 2, "worker": 1 },
            "limits": {
                "web": { "memory_bytes": 128 * MIB },
                "worker": { "memory_bytes": 128 * MIB }
            }
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{formation}");
    assert_eq!(
        formation,
        json!([
            { "type": "web", "quantity": 2, "memory_bytes": 128 * MIB, "cpu_millis": null },
            { "type": "worker", "quantity": 1, "memory_bytes": 128 * MIB, "cpu_millis": null }
        ])
    );
}

#[tokio::test]
async fn limits_of_a_type_not_yet_running_make_it_with_no_instances() {
    let api = api().await;
    api.create("shop").await;
    let (status, formation) = api
        .scale(json!({ "limits": { "worker": { "cpu_millis": 250 } } }))
        .await;
    assert_eq!(status, StatusCode::OK, "{formation}");
    assert_eq!(
        entry(&formation, "worker"),
        &json!({ "type": "worker", "quantity": 0, "memory_bytes": null, "cpu_millis": 250 })
    );
}

#[tokio::test]
async fn out_of_range_limits_are_refused_and_change_nothing() {
    let api = api().await;
    api.create("shop").await;
    let (status, body) = api
        .scale(json!({ "quantities": { "web": 3 }, "limits": { "web": { "memory_bytes": 1 } } }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "memory_out_of_range");
    assert_eq!(body["field"], "memory");
    assert!(body["message"].as_str().unwrap().contains("MiB"), "{body}");

    let (status, body) = api
        .scale(json!({ "limits": { "web": { "cpu_millis": 1_000_000 } } }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "cpu_out_of_range");

    let (_, formation) = api.call(Method::GET, "/v1/apps/shop/formation", None).await;
    assert_eq!(
        formation,
        json!([{ "type": "web", "quantity": 1, "memory_bytes": null, "cpu_millis": null }])
    );
}

#[tokio::test]
async fn a_refused_quantity_sets_no_limit_either() {
    let api = api().await;
    api.create("shop").await;
    let (status, body) = api
        .scale(json!({
            "quantities": { "web": 1000 },
            "limits": { "web": { "memory_bytes": 512 * MIB } }
        }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "quantity_too_large");
    let (_, formation) = api.call(Method::GET, "/v1/apps/shop/formation", None).await;
    assert_eq!(entry(&formation, "web")["memory_bytes"], Value::Null);
}

#[tokio::test]
async fn a_patch_with_neither_quantities_nor_limits_is_refused() {
    let api = api().await;
    api.create("shop").await;
    for patch in [
        json!({}),
        json!({ "quantities": {} }),
        json!({ "quantities": {}, "limits": {} }),
    ] {
        let (status, body) = api.scale(patch.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}");
        assert_error(&body, "empty_scale");
    }
}

#[tokio::test]
async fn limits_for_an_unknown_app_or_type_name_are_refused() {
    let api = api().await;
    let patch = json!({ "limits": { "web": { "cpu_millis": 500 } } });
    let (status, body) = api
        .call(Method::PATCH, "/v1/apps/ghost/formation", Some(patch))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");

    api.create("shop").await;
    let (status, body) = api
        .scale(json!({ "limits": { "Web!": { "cpu_millis": 500 } } }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_name");
}
