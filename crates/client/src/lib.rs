//! Typed client for Spread's HTTP API, used by the CLI and the tests.

use std::sync::Once;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use spread_api::{
    AppInfo, AppSummary, ConfigPatch, ConfigVars, CreateAppRequest, DeployRequest, ErrorBody,
    FormationPatch, ProcessFormation, Release, Status,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid API URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot reach the Spread API at {url}: {source}; is `spread up` running there?")]
    Unreachable { url: String, source: reqwest::Error },
    /// The server answered with an error body.
    #[error("{}", body.message)]
    Api { status: StatusCode, body: ErrorBody },
    #[error("unexpected answer from {url} (HTTP {status}): {detail}")]
    Unexpected {
        url: String,
        status: StatusCode,
        detail: String,
    },
}

impl ClientError {
    /// The API's error code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { body, .. } => Some(&body.code),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self> {
        static PROVIDER: Once = Once::new();
        // reqwest is built without a default crypto provider: use ring, once per process.
        PROVIDER.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let base = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid(
                "use an http:// or https:// URL such as http://127.0.0.1:7070".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("spread/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self { http, base, token })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Builds `base/segments...`, percent-encoding each segment so no input can change the path.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("base URL was checked")
            .pop_if_empty()
            .extend(segments);
        url
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Option<T>> {
        let url = self.url(segments);
        let mut request = self.http.request(method, url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |source| ClientError::Unreachable {
            url: self.base.to_string(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        let unexpected = |detail: String| ClientError::Unexpected {
            url: url.to_string(),
            status,
            detail,
        };
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => ClientError::Api { status, body },
                Err(_) => unexpected(String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            });
        }
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| unexpected(e.to_string()))
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        self.expect_body(self.send(Method::GET, segments, None::<&()>).await?)
    }

    fn expect_body<T>(&self, body: Option<T>) -> Result<T> {
        body.ok_or_else(|| ClientError::Unexpected {
            url: self.base.to_string(),
            status: StatusCode::NO_CONTENT,
            detail: "the answer had no body".into(),
        })
    }

    pub async fn status(&self) -> Result<Status> {
        self.get(&["v1", "status"]).await
    }

    pub async fn apps(&self) -> Result<Vec<AppSummary>> {
        self.get(&["v1", "apps"]).await
    }

    pub async fn create_app(&self, name: &str) -> Result<AppInfo> {
        let req = CreateAppRequest {
            name: name.to_owned(),
        };
        self.expect_body(self.send(Method::POST, &["v1", "apps"], Some(&req)).await?)
    }

    pub async fn app(&self, name: &str) -> Result<AppInfo> {
        self.get(&["v1", "apps", name]).await
    }

    pub async fn destroy_app(&self, name: &str) -> Result<()> {
        self.send::<serde_json::Value>(Method::DELETE, &["v1", "apps", name], None::<&()>)
            .await?;
        Ok(())
    }

    pub async fn config(&self, app: &str) -> Result<ConfigVars> {
        self.get(&["v1", "apps", app, "config"]).await
    }

    /// Sets (`Some`) and unsets (`None`) config vars; returns the release this made.
    pub async fn update_config(&self, app: &str, patch: &ConfigPatch) -> Result<Release> {
        let body = self
            .send(Method::PATCH, &["v1", "apps", app, "config"], Some(patch))
            .await?;
        self.expect_body(body)
    }

    /// Pulls an image into the platform and releases it; returns the release.
    pub async fn deploy(&self, app: &str, request: &DeployRequest) -> Result<Release> {
        let body = self
            .send(Method::POST, &["v1", "apps", app, "deploys"], Some(request))
            .await?;
        self.expect_body(body)
    }

    pub async fn releases(&self, app: &str) -> Result<Vec<Release>> {
        self.get(&["v1", "apps", app, "releases"]).await
    }

    pub async fn formation(&self, app: &str) -> Result<Vec<ProcessFormation>> {
        self.get(&["v1", "apps", app, "formation"]).await
    }

    pub async fn scale(&self, app: &str, patch: &FormationPatch) -> Result<Vec<ProcessFormation>> {
        let body = self
            .send(
                Method::PATCH,
                &["v1", "apps", app, "formation"],
                Some(patch),
            )
            .await?;
        self.expect_body(body)
    }
}
