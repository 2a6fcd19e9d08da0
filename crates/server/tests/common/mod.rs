//! A server in a temp dir called through its router without sockets, and a fake node whose
//! instances and log dirs the tests choose.

#![allow(dead_code)]

pub mod builder;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use spread_core::{AppId, DesiredInstance, Observed};
use spread_image::BlobStore;
use spread_server::{LogSource, NoBuilder, NodeBuilder, NodeInstances, Server, ServerConfig};
use tower::ServiceExt;

pub struct Api {
    pub router: Router,
    pub token: String,
    dir: tempfile::TempDir,
    _server: Server,
}

pub async fn api() -> Api {
    api_on(Arc::new(FakeNode::default())).await
}

/// A server whose node has the instances and logs of `node`.
pub async fn api_on(node: Arc<FakeNode>) -> Api {
    api_with(node, Arc::new(NoBuilder), |_| {}).await
}

/// A server whose node has `node`'s instances and `builder`, with its config changed by
/// `configure`.
pub async fn api_with(
    node: Arc<FakeNode>,
    builder: Arc<dyn NodeBuilder>,
    configure: impl FnOnce(&mut ServerConfig),
) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path().to_owned(), "127.0.0.1:0".parse().unwrap());
    configure(&mut config);
    let mut server = Server::open(config).await.unwrap();
    server.set_instances(node);
    server.set_builder(builder);
    let token = server
        .admin_token()
        .expect("a new data dir makes an admin token")
        .to_owned();
    Api {
        router: server.router(),
        token,
        dir,
        _server: server,
    }
}

impl Api {
    /// The server's data dir.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// This node's image store, as the server sees it.
    pub fn images(&self) -> BlobStore {
        BlobStore::open(self.data_dir().join("images")).unwrap()
    }

    /// The files waiting in the uploads dir (none once every build is over).
    pub fn uploads(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.data_dir().join("builds/uploads")) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.raw(method, path, Some(&self.token), body).await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> (StatusCode, Value) {
        let response = self.response(method, path, token, body).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    /// The response with its body unread, for answers that stream.
    pub async fn response(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> Response {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        self.router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap()
    }

    /// `PATCH /v1/apps/shop/config` with `patch`.
    pub async fn set_config(&self, patch: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, "/v1/apps/shop/config", Some(patch))
            .await
    }

    /// `PATCH /v1/apps/shop/formation` with `patch`.
    pub async fn scale(&self, patch: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, "/v1/apps/shop/formation", Some(patch))
            .await
    }

    pub async fn create(&self, name: &str) -> (StatusCode, Value) {
        self.call(Method::POST, "/v1/apps", Some(json!({ "name": name })))
            .await
    }

    /// Creates the app and returns its ID.
    pub async fn create_app(&self, name: &str) -> AppId {
        let (status, app) = self.create(name).await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        AppId(app["id"].as_str().unwrap().parse().unwrap())
    }
}

pub fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body.get("field").is_some(),
        "every error has a field key: {body}"
    );
}

/// A node whose instances and log sources are whatever the test says, per app.
#[derive(Default)]
pub struct FakeNode {
    instances: Mutex<BTreeMap<AppId, Vec<spread_api::Instance>>>,
    sources: Mutex<BTreeMap<AppId, Vec<LogSource>>>,
    /// Why images are refused, if they are.
    refusal: Mutex<Option<String>>,
    /// Why instances fail, if they do.
    failure: Mutex<Option<String>>,
}

impl FakeNode {
    /// From now on every instance fails before it is healthy, saying `reason`, so rollouts
    /// fail; until then every instance is healthy at once.
    pub fn fail_instances(&self, reason: &str) {
        *self.failure.lock().unwrap() = Some(reason.to_owned());
    }

    /// Makes `prepare_image` refuse every image with `reason`.
    pub fn refuse_images(&self, reason: &str) {
        *self.refusal.lock().unwrap() = Some(reason.to_owned());
    }

    pub fn add_instance(&self, app: AppId, instance: spread_api::Instance) {
        self.instances
            .lock()
            .unwrap()
            .entry(app)
            .or_default()
            .push(instance);
    }

    /// Lists a log dir for `instance` of `app`; the dir need not exist.
    pub fn add_source(&self, app: AppId, instance: &str, process_type: &str, dir: &Path) {
        self.sources
            .lock()
            .unwrap()
            .entry(app)
            .or_default()
            .push(LogSource {
                instance: instance.to_owned(),
                process_type: process_type.to_owned(),
                dir: dir.to_owned(),
            });
    }
}

impl NodeInstances for FakeNode {
    fn instances(&self, app: &AppId) -> Vec<spread_api::Instance> {
        let all = self.instances.lock().unwrap();
        all.get(app).cloned().unwrap_or_default()
    }

    fn log_sources(&self, app: &AppId) -> Vec<LogSource> {
        let all = self.sources.lock().unwrap();
        all.get(app).cloned().unwrap_or_default()
    }

    fn prepare_image(&self, _app: &AppId, _manifest: &str) -> Result<(), String> {
        match self.refusal.lock().unwrap().clone() {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    fn observe(&self, wanted: &[DesiredInstance]) -> BTreeMap<String, Observed> {
        let failure = self.failure.lock().unwrap().clone();
        wanted
            .iter()
            .map(|i| {
                let seen = match &failure {
                    Some(reason) => Observed::Failed {
                        reason: reason.clone(),
                    },
                    None => Observed::Healthy,
                };
                (i.id.clone(), seen)
            })
            .collect()
    }
}

/// An instance's monitor state dir, with lines written as the monitor writes them.
pub struct LogDir(pub PathBuf);

impl LogDir {
    pub fn new(root: &Path, instance: &str) -> Self {
        Self(root.join(instance))
    }

    /// Appends `<time> <stream> <text>` lines to `logs/current.log`, making it if needed.
    /// `at` is seconds after a fixed moment, so tests can interleave instances.
    pub fn write(&self, lines: &[(i64, &str, &str)]) {
        let logs = self.0.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join("current.log"))
            .unwrap();
        for (at, stream, text) in lines {
            writeln!(file, "{:.3} {stream} {text}", moment(*at)).unwrap();
        }
    }
}

/// `seconds` after 2026-11-23T10:00:00Z.
pub fn moment(seconds: i64) -> jiff::Timestamp {
    let base: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
    base + jiff::SignedDuration::from_secs(seconds)
}
