//! Typed client for Spread's HTTP API, used by the CLI and the tests.

mod upload;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Once;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use spread_api::{
    AddDomainRequest, AppInfo, AppSummary, ConfigPatch, ConfigVars, CreateAppRequest,
    DeployRequest, Domains, ErrorBody, FormationPatch, HealthCheck, Instance, LogLine,
    ProcessFormation, PushImageRequest, PushedImage, Release, RollbackRequest, SetHealthCheck,
    Status,
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
    #[error("cannot read {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
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

    /// A request to `url` with the token.
    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.to_string(),
            source,
        }
    }

    /// The error an answer that is not a success stands for.
    fn failure(url: &Url, status: StatusCode, bytes: &[u8]) -> ClientError {
        match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) => ClientError::Api { status, body },
            Err(_) => ClientError::Unexpected {
                url: url.to_string(),
                status,
                detail: String::from_utf8_lossy(bytes).chars().take(200).collect(),
            },
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Option<T>> {
        let url = self.url(segments);
        let mut request = self.request(method, url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(Self::failure(&url, status, &bytes));
        }
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClientError::Unexpected {
                url: url.to_string(),
                status,
                detail: e.to_string(),
            })
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

    /// Pushes a release's image (the newest with one, unless `request.release` says) from the
    /// platform to a registry.
    pub async fn push_image(&self, app: &str, request: &PushImageRequest) -> Result<PushedImage> {
        let body = self
            .send(
                Method::POST,
                &["v1", "apps", app, "images", "push"],
                Some(request),
            )
            .await?;
        self.expect_body(body)
    }

    pub async fn releases(&self, app: &str) -> Result<Vec<Release>> {
        self.get(&["v1", "apps", app, "releases"]).await
    }

    /// One release, e.g. to see whether its rollout has finished.
    pub async fn release(&self, app: &str, version: u64) -> Result<Release> {
        self.get(&["v1", "apps", app, "releases", &version.to_string()])
            .await
    }

    /// Makes a new release from an earlier one's image, commands and config: `version`, or
    /// without one the deployed release before the live one. The new release rolls out.
    pub async fn rollback(&self, app: &str, version: Option<u64>) -> Result<Release> {
        let req = RollbackRequest { version };
        let body = self
            .send(Method::POST, &["v1", "apps", app, "rollback"], Some(&req))
            .await?;
        self.expect_body(body)
    }

    /// Where the app is served: its default host and its custom domains.
    pub async fn domains(&self, app: &str) -> Result<Domains> {
        self.get(&["v1", "apps", app, "domains"]).await
    }

    pub async fn add_domain(&self, app: &str, domain: &str) -> Result<Domains> {
        let req = AddDomainRequest {
            domain: domain.to_owned(),
        };
        let body = self
            .send(Method::POST, &["v1", "apps", app, "domains"], Some(&req))
            .await?;
        self.expect_body(body)
    }

    pub async fn remove_domain(&self, app: &str, domain: &str) -> Result<Domains> {
        let body = self
            .send(
                Method::DELETE,
                &["v1", "apps", app, "domains", domain],
                None::<&()>,
            )
            .await?;
        self.expect_body(body)
    }

    pub async fn health(&self, app: &str) -> Result<HealthCheck> {
        self.get(&["v1", "apps", app, "health"]).await
    }

    /// Replaces the app's health check: `GET path` (or, without one, a TCP connect to
    /// `$PORT`), waited for `timeout_seconds` (or the server's default, 60).
    pub async fn set_health(
        &self,
        app: &str,
        path: Option<&str>,
        timeout_seconds: Option<u32>,
    ) -> Result<HealthCheck> {
        let req = SetHealthCheck {
            path: path.map(str::to_owned),
            timeout_seconds,
        };
        let body = self
            .send(Method::PUT, &["v1", "apps", app, "health"], Some(&req))
            .await?;
        self.expect_body(body)
    }

    /// Back to the default check: a TCP connect to `$PORT`, waited for 60 seconds.
    pub async fn reset_health(&self, app: &str) -> Result<HealthCheck> {
        let body = self
            .send(Method::DELETE, &["v1", "apps", app, "health"], None::<&()>)
            .await?;
        self.expect_body(body)
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

    /// The app's instances on the platform's node, with their state and usage.
    pub async fn instances(&self, app: &str) -> Result<Vec<Instance>> {
        self.get(&["v1", "apps", app, "instances"]).await
    }

    /// What the gateway saw of the app's requests since the platform started.
    pub async fn router(&self, app: &str) -> Result<spread_api::RouterSummary> {
        self.get(&["v1", "apps", app, "router"]).await
    }

    /// Calls `on_line` with each line the app's instances wrote, oldest first. With
    /// `query.follow` it goes on with lines as they are written, until `on_line` breaks or the
    /// server ends the answer.
    pub async fn logs(
        &self,
        app: &str,
        query: &LogsQuery,
        mut on_line: impl FnMut(LogLine) -> ControlFlow<()>,
    ) -> Result<()> {
        let mut url = self.url(&["v1", "apps", app, "logs"]);
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(lines) = query.lines {
                pairs.append_pair("lines", &lines.to_string());
            }
            if let Some(process) = &query.process {
                pairs.append_pair("process", process);
            }
            if query.follow {
                pairs.append_pair("follow", "true");
            }
            if let Some(source) = &query.source {
                pairs.append_pair("source", source);
            }
        }
        let mut response = self
            .request(Method::GET, url.clone())
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
            return Err(Self::failure(&url, status, &bytes));
        }
        let mut lines = NdjsonLines::default();
        let parse = |line: &[u8]| {
            serde_json::from_slice::<LogLine>(line).map_err(|e| ClientError::Unexpected {
                url: url.to_string(),
                status,
                detail: format!("a log line is not JSON: {e}"),
            })
        };
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unreachable(e))? {
            for line in lines.push(&chunk) {
                if on_line(parse(&line)?).is_break() {
                    return Ok(());
                }
            }
        }
        if let Some(line) = lines.finish() {
            let _ = on_line(parse(&line)?);
        }
        Ok(())
    }
}

/// What `Client::logs` asks for; `None` leaves the choice to the server (100 lines, every
/// process type).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsQuery {
    pub lines: Option<u32>,
    pub process: Option<String>,
    pub follow: bool,
    /// `app`, `spread` or `router`: only the lines that one wrote.
    pub source: Option<String>,
}

/// Splits a body that arrives in chunks into its lines, whichever way the chunks cut it.
#[derive(Debug, Default)]
struct NdjsonLines {
    partial: Vec<u8>,
}

impl NdjsonLines {
    /// The lines `chunk` completes, without their newlines; blank lines are skipped.
    fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.partial.extend_from_slice(chunk);
        let Some(last) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(last + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        complete
            .split(|&b| b == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// A last line the body did not end with a newline.
    fn finish(self) -> Option<Vec<u8>> {
        (!self.partial.trim_ascii().is_empty()).then_some(self.partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_however_the_chunks_cut_them() {
        let body = b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}\n{\"d\":4}";
        for cut in 0..body.len() {
            let mut lines = NdjsonLines::default();
            let mut seen = lines.push(&body[..cut]);
            seen.extend(lines.push(&body[cut..]));
            seen.extend(lines.finish());
            let seen: Vec<&[u8]> = seen.iter().map(Vec::as_slice).collect();
            assert_eq!(
                seen,
                [&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\":3}", b"{\"d\":4}"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_chunk_without_a_newline_completes_no_line() {
        let mut lines = NdjsonLines::default();
        assert!(lines.push(b"{\"a\":").is_empty());
        assert!(lines.push(b"1}").is_empty());
        assert_eq!(lines.push(b"\n"), [b"{\"a\":1}".to_vec()]);
        assert_eq!(lines.finish(), None);
    }
}
