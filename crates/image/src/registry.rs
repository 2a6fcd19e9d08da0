//! Talking to OCI registries: credentials, the https-only rule, and what went wrong remotely.

use std::fmt;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};

use crate::errors::RemoteError;
use crate::manifest::Platform;
use crate::reference::ImageReference;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Credentials for a registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum RegistryAuth {
    #[default]
    Anonymous,
    Basic {
        user: String,
        password: String,
    },
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: <hidden> }}"),
        }
    }
}

impl RegistryAuth {
    pub(crate) fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            Self::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
            Self::Basic { user, password } => {
                oci_client::secrets::RegistryAuth::Basic(user.clone(), password.clone())
            }
        }
    }
}

/// How [`pull`](crate::pull) reaches the registry and which image of an index it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOptions {
    /// Allow plain http to a registry that is not on this machine (`--insecure-registry`).
    pub insecure: bool,
    /// The platform picked from a multi-platform index.
    pub platform: Platform,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            insecure: false,
            platform: Platform::host(),
        }
    }
}

/// How [`push`](crate::push) reaches the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// Allow plain http to a registry that is not on this machine (`--insecure-registry`).
    pub insecure: bool,
}

/// The scheme used to reach a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Https,
    Http,
}

impl Transport {
    /// Plain http only for registries on this machine or ones the user marked insecure;
    /// https for everything else.
    pub fn for_registry(reference: &ImageReference, insecure: bool) -> Self {
        if insecure || reference.is_loopback() {
            Self::Http
        } else {
            Self::Https
        }
    }
}

/// A registry client for `reference`'s registry, over the scheme the https-only rule allows.
pub(crate) fn client_for(
    reference: &ImageReference,
    insecure: bool,
) -> Result<(oci_client::Client, Transport), RemoteError> {
    // reqwest needs a process-wide rustls provider; whoever installs it first wins.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let transport = Transport::for_registry(reference, insecure);
    let config = ClientConfig {
        protocol: match transport {
            Transport::Https => ClientProtocol::Https,
            Transport::Http => ClientProtocol::Http,
        },
        // Spread resolves indexes itself, so the client never needs to guess a platform.
        platform_resolver: None,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        ..ClientConfig::default()
    };
    let client =
        oci_client::Client::try_from(config).map_err(|e| RemoteError::Client(error_chain(&e)))?;
    Ok((client, transport))
}

pub(crate) fn oci_reference(reference: &ImageReference) -> oci_client::Reference {
    let registry = reference.registry().to_owned();
    let repository = reference.repository().to_owned();
    match (reference.tag(), reference.digest()) {
        (_, Some(digest)) => {
            oci_client::Reference::with_digest(registry, repository, digest.to_string())
        }
        (Some(tag), None) => oci_client::Reference::with_tag(registry, repository, tag.into()),
        (None, None) => unreachable!("a parsed reference has a tag or a digest"),
    }
}

/// What an `oci-client` error means for Spread.
#[derive(Debug)]
pub(crate) enum Failure {
    NotFound,
    DigestMismatch { expected: String, actual: String },
    Remote(RemoteError),
}

pub(crate) fn classify(
    err: OciDistributionError,
    reference: &ImageReference,
    transport: Transport,
) -> Failure {
    let registry = reference.registry().to_owned();
    let unauthorized = || {
        Failure::Remote(RemoteError::Unauthorized {
            registry: reference.registry().to_owned(),
            reference: reference.to_string(),
        })
    };
    match err {
        OciDistributionError::RequestError(e)
            if e.is_connect() || e.is_timeout() || e.is_request() =>
        {
            let reason = error_chain(&e);
            Failure::Remote(match transport {
                Transport::Https => RemoteError::HttpsFailed { registry, reason },
                Transport::Http => RemoteError::Unreachable { registry, reason },
            })
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
        // `blob_exists` reports statuses as plain reqwest errors.
        OciDistributionError::RequestError(e)
            if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) =>
        {
            unauthorized()
        }
        OciDistributionError::RequestError(e) if e.status().map(|s| s.as_u16()) == Some(404) => {
            Failure::NotFound
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
        {
            unauthorized()
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) =>
        {
            Failure::NotFound
        }
        OciDistributionError::ServerError { code: 404, .. }
        | OciDistributionError::ImageManifestNotFoundError(_) => Failure::NotFound,
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => Failure::DigestMismatch { expected, actual },
        other => Failure::Remote(RemoteError::Failed {
            registry,
            reference: reference.to_string(),
            reason: error_chain(&other),
        }),
    }
}

/// An error and its sources on one line; reqwest hides the useful part in the sources.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}
