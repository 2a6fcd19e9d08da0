//! Control plane: the HTTP API, authentication and the replicated state behind them.
//!
//! [`Server::open`] opens the Raft store, creates the first admin token on a fresh data dir and
//! binds the API listener; [`Server::serve`] answers requests until the shutdown future resolves.

mod api;
mod auth;
mod builds;
mod config;
mod error;
mod extract;
mod instances;
mod logs;
mod metrics;
mod rollouts;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use auth::{ParsedToken, hash_secret};
pub use builds::{
    BuildEvents, BuildFailure, BuildFuture, BuildRequest, BuiltImage, NoBuilder, NodeBuilder,
    TaskFuture,
};
pub use config::{DEFAULT_MAX_UPLOAD_BYTES, ServerConfig};
pub use error::ApiError;
pub use instances::{LogSource, NoInstances, NodeInstances};
use spread_raft::{RaftConfig, RaftNode};
use tokio::net::TcpListener;

/// What every request handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    raft: RaftNode,
    auth: Arc<auth::Verifier>,
    /// This node's image blob store.
    images: Arc<spread_image::BlobStore>,
    config: Arc<ServerConfig>,
    /// This node's instances, as its agent reports them.
    instances: Arc<dyn NodeInstances>,
    /// This node's builder, for deploys from source.
    builder: Arc<dyn NodeBuilder>,
    /// Set when the server begins to stop, so endless answers (followed logs) end.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
    started: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the replicated state: {0}")]
    Raft(spread_raft::RaftError),
    #[error("cannot listen on {addr} for the API: {source}; is another spread already running?")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the image store: {0}")]
    Images(spread_image::StoreError),
    #[error("cannot create the first admin token: {0}")]
    Bootstrap(String),
    #[error("cannot record that releases roll out from now on: {0}")]
    EnableRollouts(String),
    #[error("the API server failed: {0}")]
    Serve(std::io::Error),
}

/// A control plane that is ready to serve.
pub struct Server {
    state: AppState,
    listener: TcpListener,
    admin_token: Option<String>,
    /// Whether the rollout controller runs (it starts with the first router).
    controlling: std::sync::atomic::AtomicBool,
}

impl Server {
    pub async fn open(config: ServerConfig) -> Result<Self, ServerError> {
        // Bind first: a first start that cannot serve must not make a token nobody sees.
        let listener = TcpListener::bind(config.api_listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.api_listen,
                source,
            })?;
        let raft = RaftNode::open(RaftConfig {
            data_dir: config.data_dir.clone(),
            snapshot_every: config.snapshot_every,
        })
        .await
        .map_err(ServerError::Raft)?;
        let admin_token = auth::bootstrap_admin_token(&raft, config.new_admin_token).await?;
        // Commands logged by a binary without rollouts keep their meaning (a release live at
        // once); from here on, releases roll out.
        if !raft.read(spread_core::State::rollouts_enabled) {
            let enable = spread_core::Command::EnableRollouts {
                at: jiff::Timestamp::now(),
            };
            raft.propose(enable)
                .await
                .map_err(|e| ServerError::EnableRollouts(e.to_string()))?;
        }
        let images_dir = config.data_dir.join("images");
        let images = spread_image::BlobStore::open(&images_dir).map_err(ServerError::Images)?;
        // Uploads whose builds a previous run did not finish.
        let uploads = config.uploads_dir();
        if let Err(e) = std::fs::remove_dir_all(&uploads)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %uploads.display(), error = %e, "cannot remove old uploads");
        }
        let state = AppState {
            raft,
            auth: Arc::new(auth::Verifier::default()),
            images: Arc::new(images),
            config: Arc::new(config),
            instances: Arc::new(NoInstances),
            builder: Arc::new(NoBuilder),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            started: Instant::now(),
        };
        Ok(Self {
            state,
            listener,
            admin_token,
            controlling: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The address the API listens on (useful when the configured port was 0).
    pub fn api_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The admin token created by this start, if the data dir was new or a new one was asked
    /// for. It exists nowhere else in plain text: show it once.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// The replicated state, for the node agent that runs what it asks for.
    pub fn raft(&self) -> &RaftNode {
        &self.state.raft
    }

    /// Lets the API show this node's instances and their logs (`spread ps`, `spread logs`).
    pub fn set_instances(&mut self, instances: Arc<dyn NodeInstances>) {
        self.state.instances = instances;
    }

    /// Lets the API build uploaded source into images (`spread deploy DIR`).
    pub fn set_builder(&mut self, builder: Arc<dyn NodeBuilder>) {
        self.state.builder = builder;
    }

    /// The API as a router, for tests that call it without a socket. The rollout controller
    /// starts with it, so set the node's instances first.
    pub fn router(&self) -> axum::Router {
        self.control();
        api::router(self.state.clone())
    }

    /// Starts the rollout controller, once.
    fn control(&self) {
        if self
            .controlling
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        tokio::spawn(rollouts::run(
            self.state.raft.clone(),
            self.state.instances.clone(),
            self.state.stopping.subscribe(),
        ));
    }

    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let router = self.router();
        let stopping = self.state.stopping.clone();
        let shutdown = async move {
            shutdown.await;
            // Graceful shutdown waits for every answer to end; followed logs never would.
            stopping.send_replace(true);
        };
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Err(e) = self.state.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
        served.map_err(ServerError::Serve)
    }
}
