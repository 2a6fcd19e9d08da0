//! The HTTP API, called through the router without sockets.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Api, FakeNode, api, api_with, assert_error};
use proptest::prelude::*;
use serde_json::json;
use spread_server::NoBuilder;
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

// === domains ===

#[tokio::test]
async fn custom_domains_are_added_listed_and_removed() {
    let api = api().await;
    api.create("shop").await;
    let (status, domains) = api.call(Method::GET, "/v1/apps/shop/domains", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        domains,
        json!({ "default": "shop.localhost", "custom": [] })
    );

    let (status, domains) = add_domain(&api, "shop", "WWW.Example.com.").await;
    assert_eq!(status, StatusCode::CREATED, "{domains}");
    assert_eq!(
        domains,
        json!({ "default": "shop.localhost", "custom": ["www.example.com"] }),
        "stored in its canonical spelling"
    );
    add_domain(&api, "shop", "example.com").await;
    let (_, domains) = api.call(Method::GET, "/v1/apps/shop/domains", None).await;
    assert_eq!(domains["custom"], json!(["example.com", "www.example.com"]));
    let (_, app) = api.call(Method::GET, "/v1/apps/shop", None).await;
    assert_eq!(app["domains"], json!(["example.com", "www.example.com"]));

    let (status, domains) = api
        .call(
            Method::DELETE,
            "/v1/apps/shop/domains/www.example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{domains}");
    assert_eq!(domains["custom"], json!(["example.com"]));
    let (status, body) = api
        .call(
            Method::DELETE,
            "/v1/apps/shop/domains/www.example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "domain_not_found");
    assert_eq!(body["field"], "domain");
}

#[tokio::test]
async fn domains_of_an_unknown_app_are_404() {
    let api = api().await;
    let (status, body) = api.call(Method::GET, "/v1/apps/ghost/domains", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");
    let (status, body) = add_domain(&api, "ghost", "www.example.com").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");
    let (status, body) = api
        .call(
            Method::DELETE,
            "/v1/apps/ghost/domains/www.example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");
}

#[tokio::test]
async fn invalid_domains_are_refused_naming_the_field_and_the_rule() {
    let api = api().await;
    api.create("shop").await;
    for (bad, rule) in [
        ("exa mple.com", "each label"),
        ("10.0.0.1", "an IP address is not a domain"),
        ("*.example.com", "each label"),
        ("", "1 to 253 characters"),
    ] {
        let (status, body) = add_domain(&api, "shop", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_error(&body, "invalid_domain");
        assert_eq!(body["field"], "domain");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("invalid domain") && message.contains(rule),
            "{bad}: {message}"
        );
    }
    let (status, body) = api
        .call(Method::DELETE, "/v1/apps/shop/domains/a_b.com", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_domain");
}

#[tokio::test]
async fn a_domain_another_app_serves_is_409() {
    let api = api().await;
    api.create("shop").await;
    api.create("blog").await;
    let (status, _) = add_domain(&api, "shop", "www.example.com").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = add_domain(&api, "blog", "WWW.example.com").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "domain_taken");
    assert!(
        body["message"].as_str().unwrap().contains("app `shop`"),
        "{body}"
    );
    let (_, domains) = api.call(Method::GET, "/v1/apps/blog/domains", None).await;
    assert_eq!(domains["custom"], json!([]));
}

#[tokio::test]
async fn domains_under_the_nodes_own_domain_are_refused() {
    let api = api().await;
    api.create("shop").await;
    let (status, body) = add_domain(&api, "shop", "foo.localhost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "domain_reserved");
    assert_eq!(body["field"], "domain");
    assert!(
        body["message"].as_str().unwrap().contains("shop.localhost"),
        "{body}"
    );

    let api = api_with(
        Arc::new(FakeNode::default()),
        Arc::new(NoBuilder),
        |config| config.domain = "apps.example.com".to_owned(),
    )
    .await;
    api.create("shop").await;
    for reserved in [
        "apps.example.com",
        "x.apps.example.com",
        "a.b.APPS.example.com",
    ] {
        let (status, body) = add_domain(&api, "shop", reserved).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reserved}");
        assert_error(&body, "domain_reserved");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("shop.apps.example.com"),
            "{body}"
        );
    }
    let (status, domains) = add_domain(&api, "shop", "example.com").await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the parent domain is not the node's"
    );
    assert_eq!(domains["default"], "shop.apps.example.com");
}

// === health checks ===

#[tokio::test]
async fn health_checks_are_shown_set_and_reset() {
    let api = api().await;
    api.create("shop").await;
    let default = json!({ "path": null, "timeout_seconds": 60 });
    let (status, health) = api.call(Method::GET, "/v1/apps/shop/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health, default);

    let (status, health) = set_health(&api, json!({ "path": "/up", "timeout_seconds": 30 })).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health, json!({ "path": "/up", "timeout_seconds": 30 }));
    let (_, shown) = api.call(Method::GET, "/v1/apps/shop/health", None).await;
    assert_eq!(shown, health);

    let (_, health) = set_health(&api, json!({ "path": "/ready" })).await;
    assert_eq!(
        health,
        json!({ "path": "/ready", "timeout_seconds": 60 }),
        "a missing timeout is the default"
    );
    let (_, health) = set_health(&api, json!({ "timeout_seconds": 120 })).await;
    assert_eq!(
        health,
        json!({ "path": null, "timeout_seconds": 120 }),
        "a missing path is the TCP check"
    );

    let (status, health) = api.call(Method::DELETE, "/v1/apps/shop/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health, default);
    let (_, shown) = api.call(Method::GET, "/v1/apps/shop/health", None).await;
    assert_eq!(shown, default);
}

#[tokio::test]
async fn invalid_health_checks_are_refused_and_change_nothing() {
    let api = api().await;
    api.create("shop").await;
    set_health(&api, json!({ "path": "/up" })).await;
    for (bad, rule) in [
        (json!({ "path": "up" }), "starts with '/'"),
        (json!({ "path": "" }), "starts with '/'"),
        (json!({ "path": "/a b" }), "printable ASCII"),
        (json!({ "timeout_seconds": 0 }), "1 to 600 seconds"),
        (json!({ "timeout_seconds": 601 }), "1 to 600 seconds"),
    ] {
        let (status, body) = set_health(&api, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_error(&body, "invalid_health_check");
        assert!(
            body["message"].as_str().unwrap().contains(rule),
            "{bad}: {body}"
        );
    }
    let (status, body) = set_health(&api, json!({ "timeout_seconds": -1 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "malformed_json");
    let (_, shown) = api.call(Method::GET, "/v1/apps/shop/health", None).await;
    assert_eq!(shown, json!({ "path": "/up", "timeout_seconds": 60 }));
}

#[tokio::test]
async fn health_checks_of_an_unknown_app_are_404() {
    let api = api().await;
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({ "path": "/up" }))),
        (Method::DELETE, None),
    ] {
        let (status, body) = api
            .call(method.clone(), "/v1/apps/ghost/health", body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_error(&body, "app_not_found");
    }
}

/// `POST /v1/apps/{app}/domains` with `domain`.
async fn add_domain(api: &Api, app: &str, domain: &str) -> (StatusCode, serde_json::Value) {
    let body = json!({ "domain": domain });
    api.call(Method::POST, &format!("/v1/apps/{app}/domains"), Some(body))
        .await
}

/// `PUT /v1/apps/shop/health` with `body`.
async fn set_health(api: &Api, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    api.call(Method::PUT, "/v1/apps/shop/health", Some(body))
        .await
}

// === no input makes the server fail ===

fn arb_path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/v1/apps".to_owned()),
        "[a-z0-9-]{0,70}".prop_map(|a| format!("/v1/apps/{a}")),
        "[a-zA-Z0-9%._-]{0,20}".prop_map(|a| format!("/v1/apps/{a}/config")),
        "[a-z]{1,5}".prop_map(|a| format!("/v1/apps/{a}/formation")),
        "[a-z]{1,5}".prop_map(|a| format!("/v1/apps/{a}/instances")),
        "[a-z]{1,5}".prop_map(|a| format!("/v1/apps/{a}/domains")),
        ("[a-z]{1,5}", "[a-zA-Z0-9%._-]{0,20}")
            .prop_map(|(a, d)| format!("/v1/apps/{a}/domains/{d}")),
        "[a-z]{1,5}".prop_map(|a| format!("/v1/apps/{a}/health")),
        "[a-z]{1,5}".prop_map(|a| format!("/v1/apps/{a}/rollback")),
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
        (".{0,12}").prop_map(|d| serde_json::to_vec(&json!({ "domain": d })).unwrap()),
        (proptest::option::of(".{0,12}"), any::<Option<i64>>()).prop_map(|(p, t)| {
            serde_json::to_vec(&json!({ "path": p, "timeout_seconds": t })).unwrap()
        }),
        any::<Option<i64>>().prop_map(|v| serde_json::to_vec(&json!({ "version": v })).unwrap()),
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
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ];
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(path in arb_path(), body in arb_body(), m in 0usize..5)| {
        let (status, value) = runtime.block_on(api.raw(methods[m].clone(), &path, Some(&api.token), Body::from(body)));
        prop_assert!(!status.is_server_error(), "{} {} -> {} {}", methods[m], path, status, value);
        if !status.is_success() {
            prop_assert!(value["code"].is_string(), "{} {} -> {} {}", methods[m], path, status, value);
        }
    });
}
