//! The HTTP API, called through the router without sockets.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{api, assert_error};
use proptest::prelude::*;
use serde_json::json;
use tower::ServiceExt;

#[tokio::test]
async fn apps_are_created_listed_shown_and_destroyed() {
    let api = api().await;
    let (status, app) = api.create("shop").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(app["name"], "shop");
    assert_eq!(app["url"], "http://shop.localhost/");
    assert_eq!(
        app["formation"],
        json!([{ "type": "web", "quantity": 1, "memory_bytes": null, "cpu_millis": null }])
    );

    let (status, list) = api.call(Method::GET, "/v1/apps", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (status, _) = api.call(Method::DELETE, "/v1/apps/shop", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.call(Method::GET, "/v1/apps/shop", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");
}

#[tokio::test]
async fn duplicate_and_invalid_names_are_refused_with_the_rule() {
    let api = api().await;
    api.create("shop").await;
    let (status, body) = api.create("shop").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "app_exists");

    let (status, body) = api.create("Bad_Name").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_name");
    assert_eq!(body["field"], "Bad_Name");
    assert!(
        body["message"].as_str().unwrap().contains("a-z, 0-9"),
        "{body}"
    );
}

#[tokio::test]
async fn config_changes_make_releases_with_descriptions_and_author() {
    let api = api().await;
    api.create("shop").await;
    let (status, release) = api.set_config(json!({ "FOO": "1", "BAR": "2" })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(release["version"], 1);
    assert_eq!(release["description"], "Set BAR, FOO");
    assert_eq!(release["created_by"], "admin");
    let token_id = api.token.split('_').nth(1).unwrap();
    assert_eq!(release["created_by_token"], token_id);

    let (_, release) = api.set_config(json!({ "FOO": null })).await;
    assert_eq!(release["description"], "Unset FOO");
    assert_eq!(release["config"], json!({ "BAR": "2" }));

    let (_, config) = api.call(Method::GET, "/v1/apps/shop/config", None).await;
    assert_eq!(config, json!({ "BAR": "2" }));
    let (_, releases) = api.call(Method::GET, "/v1/apps/shop/releases", None).await;
    let versions: Vec<_> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].clone())
        .collect();
    assert_eq!(versions, vec![json!(1), json!(2)]);
    let (status, v1) = api
        .call(Method::GET, "/v1/apps/shop/releases/v1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v1["config"], json!({ "BAR": "2", "FOO": "1" }));
    let (status, body) = api
        .call(Method::GET, "/v1/apps/shop/releases/v9", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
}

#[tokio::test]
async fn bad_config_keys_and_values_are_refused() {
    let api = api().await;
    api.create("shop").await;
    let (status, body) = api.set_config(json!({ "1BAD": "x" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "1BAD");
    let big = "x".repeat(32 * 1024 + 1);
    let (status, body) = api.set_config(json!({ "BIG": big })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "config_value_too_large");
    let (_, releases) = api.call(Method::GET, "/v1/apps/shop/releases", None).await;
    assert_eq!(releases, json!([]), "nothing of a refused change is kept");
}

#[tokio::test]
async fn scaling_stores_the_formation() {
    let api = api().await;
    api.create("shop").await;
    let patch = json!({ "quantities": { "web": 3, "worker": 2 } });
    let (status, formation) = api
        .call(Method::PATCH, "/v1/apps/shop/formation", Some(patch))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        formation,
        json!([
            { "type": "web", "quantity": 3, "memory_bytes": null, "cpu_millis": null },
            { "type": "worker", "quantity": 2, "memory_bytes": null, "cpu_millis": null }
        ])
    );
    let patch = json!({ "quantities": { "web": 1000 } });
    let (status, body) = api
        .call(Method::PATCH, "/v1/apps/shop/formation", Some(patch))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "quantity_too_large");
}

#[tokio::test]
async fn malformed_json_is_refused_saying_where() {
    let api = api().await;
    let (status, body) = api
        .raw(
            Method::POST,
            "/v1/apps",
            Some(&api.token.clone()),
            Body::from("{\"name\": "),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "malformed_json");
    assert!(
        body["message"].as_str().unwrap().contains("line 1 column"),
        "{body}"
    );
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let api = api().await;
    let body = Body::from(vec![b' '; 2 * 1024 * 1024]);
    let (status, body) = api
        .raw(Method::POST, "/v1/apps", Some(&api.token.clone()), body)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "body_too_large");
}

#[tokio::test]
async fn missing_or_wrong_tokens_get_401_and_nothing_else() {
    let api = api().await;
    api.create("secret-app").await;
    let (head, last) = api.token.split_at(api.token.len() - 1);
    let wrong_secret = format!("{head}{}", if last == "0" { "1" } else { "0" });
    let unknown_id = "spread_0000000000000000_".to_owned() + &"a".repeat(64);
    let mut bodies = std::collections::BTreeSet::new();
    for token in [
        None,
        Some("nonsense"),
        Some(wrong_secret.as_str()),
        Some(unknown_id.as_str()),
    ] {
        for path in [
            "/v1/apps",
            "/v1/apps/secret-app",
            "/v1/apps/no-such-app",
            "/v1/status",
            "/metrics",
        ] {
            let (status, body) = api.raw(Method::GET, path, token, Body::empty()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {token:?}");
            assert_error(&body, "unauthorized");
            bodies.insert(body.to_string());
        }
    }
    assert_eq!(bodies.len(), 1, "every refusal looks the same: {bodies:?}");
    let (status, _) = api.raw(Method::GET, "/healthz", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let api = api().await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let req = Request::get("/v1/apps")
            .header("authorization", format!("{scheme} {}", api.token))
            .body(Body::empty())
            .unwrap();
        let response = api.router.clone().oneshot(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn path_segments_that_are_not_utf8_are_refused_in_the_error_shape() {
    let api = api().await;
    let (status, body) = api
        .call(Method::PATCH, "/v1/apps/%aa/config", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_path");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413() {
    let api = api().await;
    let chunks = chunked_body(3 * 512 * 1024);
    let (status, body) = api
        .raw(Method::POST, "/v1/apps", Some(&api.token.clone()), chunks)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "body_too_large");
}

/// A body of `len` bytes sent in chunks with no Content-Length, as a streaming client would.
fn chunked_body(len: usize) -> Body {
    let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
    let chunks = (0..len / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    Body::from_stream(stream_of(chunks))
}

fn stream_of<I: Iterator + Send + Unpin + 'static>(
    iter: I,
) -> impl futures_core::Stream<Item = I::Item> + Send {
    struct Iter<I>(I);
    impl<I: Iterator + Unpin> futures_core::Stream for Iter<I> {
        type Item = I::Item;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<I::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(iter)
}

#[tokio::test]
async fn the_whole_config_is_limited_to_256_kib() {
    let api = api().await;
    api.create("shop").await;
    let value = "x".repeat(32 * 1024);
    for i in 0..7 {
        let (status, _) = api.set_config(json!({ format!("K{i}"): value })).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, body) = api.set_config(json!({ "K7": value, "K8": value })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "config_too_large");
}

#[tokio::test]
async fn nul_bytes_in_config_values_are_refused() {
    let api = api().await;
    api.create("shop").await;
    let (status, body) = api.set_config(json!({ "A": "x\0y" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "config_value_has_nul");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_error_shape() {
    let api = api().await;
    let (status, body) = api.call(Method::GET, "/v1/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let (status, body) = api.call(Method::PUT, "/v1/apps", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "method_not_allowed");
}

#[tokio::test]
async fn status_and_metrics_report_the_raft_node() {
    let api = api().await;
    let (status, body) = api.call(Method::GET, "/v1/status", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["raft"]["role"], "leader");
    assert_eq!(body["raft"]["voters"], json!([1]));
    let (status, body) = api.call(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(text.contains("spread_raft_is_leader 1"), "{text}");
    assert!(text.contains("spread_api_requests_total"), "{text}");
}

// === no input makes the server fail ===

fn arb_path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/v1/apps".to_owned()),
        "[a-z0-9-]{0,70}".prop_map(|a| format!("/v1/apps/{a}")),
        "[a-zA-Z0-9%._-]{0,20}".prop_map(|a| format!("/v1/apps/{a}/config")),
        "[a-z]{1,5}".prop_map(|a| format!("/v1/apps/{a}/formation")),
        "[a-z]{1,5}".prop_map(|a| format!("/v1/apps/{a}/instances")),
        // A followed log never ends, so it is left out here.
        ("[a-z]{1,5}", "[a-z0-9=&-]{0,20}")
            .prop_map(|(a, q)| format!("/v1/apps/{a}/logs?{}", q.replace("follow=true", ""))),
        ("[a-z]{1,5}", ".{0,6}").prop_map(|(a, v)| format!(
            "/v1/apps/{a}/releases/{}",
            v.replace(|c: char| !c.is_ascii_alphanumeric(), "")
        )),
    ]
}

fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        ".{0,64}".prop_map(String::into_bytes),
        proptest::collection::btree_map(".{0,12}", proptest::option::of(".{0,12}"), 0..4)
            .prop_map(|m| serde_json::to_vec(&m).unwrap()),
        (".{0,12}").prop_map(|n| serde_json::to_vec(&json!({ "name": n })).unwrap()),
        proptest::collection::btree_map(".{0,8}", any::<i64>(), 0..3)
            .prop_map(|m| serde_json::to_vec(&json!({ "quantities": m })).unwrap()),
        (".{0,8}", any::<Option<i64>>(), any::<Option<u64>>()).prop_map(|(t, m, c)| {
            serde_json::to_vec(&json!({ "limits": { t: { "memory_bytes": m, "cpu_millis": c } } }))
                .unwrap()
        }),
    ]
}

#[test]
fn no_request_makes_the_server_fail() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime.block_on(api());
    runtime.block_on(api.create("a"));
    let methods = [Method::GET, Method::POST, Method::PATCH, Method::DELETE];
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(path in arb_path(), body in arb_body(), m in 0usize..4)| {
        let (status, value) = runtime.block_on(api.raw(methods[m].clone(), &path, Some(&api.token), Body::from(body)));
        prop_assert!(!status.is_server_error(), "{} {} -> {} {}", methods[m], path, status, value);
        if !status.is_success() {
            prop_assert!(value["code"].is_string(), "{} {} -> {} {}", methods[m], path, status, value);
        }
    });
}
