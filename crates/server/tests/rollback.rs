//! `POST /v1/apps/{app}/rollback` and the status of releases, over a node whose instances never
//! become healthy, so each rollout goes on until the test ends it as the rollout controller
//! would.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::assert_error;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use spread_core::{
    Actor, AppId, AppName, Command, DesiredInstance, Observed, ProcessType, ReleaseImage, TokenId,
};
use spread_server::{LogSource, NodeInstances, Server, ServerConfig};
use tower::ServiceExt;

/// A server with app `shop`, and the Raft node behind it for what only the platform does.
struct Shop {
    router: Router,
    token: String,
    server: Server,
    _dir: tempfile::TempDir,
}

async fn shop() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::new(dir.path().to_owned(), "127.0.0.1:0".parse().unwrap());
    let mut server = Server::open(config).await.unwrap();
    server.set_instances(Arc::new(NeverHealthy));
    let shop = Shop {
        router: server.router(),
        token: server.admin_token().unwrap().to_owned(),
        server,
        _dir: dir,
    };
    let (status, body) = shop
        .call(Method::POST, "/v1/apps", Some(json!({ "name": "shop" })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    shop
}

impl Shop {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.token))
            .body(body)
            .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    async fn rollback(&self, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/v1/apps/shop/rollback", Some(body))
            .await
    }

    /// Releases an image whose digest is `digit` 64 times, as a deploy does; returns its
    /// version. Its rollout goes on until `finish`.
    async fn deploy(&self, digit: char) -> u64 {
        let command = Command::DeployImage {
            app: app(),
            image: ReleaseImage {
                reference: format!("registry.example.com/shop:{digit}"),
                digest: digest(digit),
                env: Vec::new(),
                working_dir: None,
                user: None,
            },
            processes: BTreeMap::from([(ProcessType::web(), vec!["/bin/shop".to_owned()])]),
            by: Actor {
                token: TokenId("test".to_owned()),
                name: "test".to_owned(),
            },
            at: jiff::Timestamp::now(),
        };
        match self.server.raft().propose(command).await.unwrap() {
            spread_core::Outcome::ReleaseCreated { release, .. } => release.version,
            other => panic!("{other:?}"),
        }
    }

    /// Ends the rollout of `version`: deployed, or failed with `failure`.
    async fn finish(&self, version: u64, failure: Option<&str>) {
        let command = Command::FinishRollout {
            app: app(),
            version,
            failure: failure.map(str::to_owned),
            at: jiff::Timestamp::now(),
        };
        self.server.raft().propose(command).await.unwrap();
    }

    /// `(version, status, failure)` of every release, oldest first.
    async fn statuses(&self) -> Vec<(u64, String, Value)> {
        let (status, releases) = self.call(Method::GET, "/v1/apps/shop/releases", None).await;
        assert_eq!(status, StatusCode::OK);
        releases
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["version"].as_u64().unwrap(),
                    r["status"].as_str().unwrap().to_owned(),
                    r["failure"].clone(),
                )
            })
            .collect()
    }
}

/// A node that has started none of the instances a rollout waits for (its health timeout, 60
/// seconds, is longer than any test here).
struct NeverHealthy;

impl NodeInstances for NeverHealthy {
    fn instances(&self, _app: &AppId) -> Vec<spread_api::Instance> {
        Vec::new()
    }

    fn log_sources(&self, _app: &AppId) -> Vec<LogSource> {
        Vec::new()
    }

    fn prepare_image(&self, _app: &AppId, _manifest: &str) -> Result<(), String> {
        Ok(())
    }

    fn observe(&self, _wanted: &[DesiredInstance]) -> BTreeMap<String, Observed> {
        BTreeMap::new()
    }
}

fn app() -> AppName {
    AppName::parse("shop").unwrap()
}

fn digest(digit: char) -> String {
    format!("sha256:{}", digit.to_string().repeat(64))
}

#[tokio::test]
async fn releases_show_their_status_and_why_a_rollout_failed() {
    let shop = shop().await;
    let (_, release) = shop
        .call(
            Method::PATCH,
            "/v1/apps/shop/config",
            Some(json!({ "A": "1" })),
        )
        .await;
    assert_eq!(
        release["status"], "deployed",
        "nothing to roll out before the first deploy"
    );
    let v2 = shop.deploy('a').await;
    shop.finish(v2, None).await;
    let v3 = shop.deploy('b').await;
    shop.finish(v3, Some("web.1 did not pass its health check within 60s"))
        .await;
    shop.deploy('c').await;
    shop.deploy('d').await;
    let failed = json!("web.1 did not pass its health check within 60s");
    assert_eq!(
        shop.statuses().await,
        vec![
            (1, "deployed".to_owned(), Value::Null),
            (2, "deployed".to_owned(), Value::Null),
            (3, "failed".to_owned(), failed),
            (4, "superseded".to_owned(), Value::Null),
            (5, "rolling-out".to_owned(), Value::Null),
        ]
    );
    let (_, one) = shop
        .call(Method::GET, "/v1/apps/shop/releases/v3", None)
        .await;
    assert_eq!(one["status"], "failed");

    let (_, app) = shop.call(Method::GET, "/v1/apps/shop", None).await;
    assert_eq!(
        app["release"], 2,
        "the app's release is the one that serves"
    );
    let (_, apps) = shop.call(Method::GET, "/v1/apps", None).await;
    assert_eq!(apps[0]["release"], 2);
}

#[tokio::test]
async fn a_rollback_releases_the_deployed_release_before_the_live_one() {
    let shop = shop().await;
    let v1 = shop.deploy('a').await;
    shop.finish(v1, None).await;
    shop.call(
        Method::PATCH,
        "/v1/apps/shop/config",
        Some(json!({ "A": "1" })),
    )
    .await;
    shop.finish(2, None).await;
    let v3 = shop.deploy('b').await;
    shop.finish(v3, None).await;

    let (status, release) = shop.rollback(json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{release}");
    assert_eq!(release["version"], 4);
    assert_eq!(release["description"], "Rollback to v2");
    assert_eq!(release["status"], "rolling-out");
    assert_eq!(release["image"]["digest"], digest('a'));
    assert_eq!(release["config"], json!({ "A": "1" }));
    assert_eq!(release["created_by"], "admin", "made by the caller's token");
}

#[tokio::test]
async fn a_rollback_to_a_named_version_takes_its_image_and_config() {
    let shop = shop().await;
    let v1 = shop.deploy('a').await;
    shop.finish(v1, None).await;
    shop.call(
        Method::PATCH,
        "/v1/apps/shop/config",
        Some(json!({ "A": "1" })),
    )
    .await;
    let (status, release) = shop.rollback(json!({ "version": 1 })).await;
    assert_eq!(status, StatusCode::CREATED, "{release}");
    assert_eq!(release["description"], "Rollback to v1");
    assert_eq!(release["image"]["digest"], digest('a'));
    assert_eq!(release["config"], json!({}), "the config comes back too");
    let (_, config) = shop.call(Method::GET, "/v1/apps/shop/config", None).await;
    assert_eq!(config, json!({}));
    assert_eq!(
        shop.statuses().await.last().unwrap().1,
        "rolling-out",
        "it rolls out like a deploy"
    );
}

#[tokio::test]
async fn a_rollback_to_an_unknown_version_is_404() {
    let shop = shop().await;
    shop.deploy('a').await;
    let (status, body) = shop.rollback(json!({ "version": 9 })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "release_not_found");
    assert_eq!(body["field"], "version");
    assert!(body["message"].as_str().unwrap().contains("v9"), "{body}");
}

#[tokio::test]
async fn with_nothing_to_roll_back_to_the_error_says_to_name_a_version() {
    let shop = shop().await;
    let (status, body) = shop.rollback(json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "nothing_to_roll_back_to");
    let v1 = shop.deploy('a').await;
    shop.finish(v1, None).await;
    let (status, body) = shop.rollback(json!({})).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "only the live release is deployed"
    );
    assert_error(&body, "nothing_to_roll_back_to");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spread rollback vN"),
        "{body}"
    );
    assert_eq!(shop.statuses().await.len(), 1, "nothing was released");
}

#[tokio::test]
async fn a_release_without_an_image_cannot_be_rolled_back_to() {
    let shop = shop().await;
    shop.call(
        Method::PATCH,
        "/v1/apps/shop/config",
        Some(json!({ "A": "1" })),
    )
    .await;
    let (status, body) = shop.rollback(json!({ "version": 1 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "release_has_no_image");
}

#[tokio::test]
async fn rollback_of_an_unknown_app_is_404_and_a_bad_body_400() {
    let shop = shop().await;
    let (status, body) = shop
        .call(
            Method::POST,
            "/v1/apps/ghost/rollback",
            Some(json!({ "version": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");
    let (status, body) = shop.rollback(json!({ "version": "v1" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "malformed_json");
}
