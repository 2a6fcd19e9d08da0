//! API tokens: `spread_<id>_<secret>`. The id finds the token's record; only an argon2id hash of
//! the secret is stored. A verified secret is remembered in memory (as a SHA-256) so that the
//! slow hash runs once per token per process, not once per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use spread_core::{Actor, Command, TokenId};
use spread_raft::RaftNode;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::{AppState, ServerError};

const PREFIX: &str = "spread_";

/// A token split into its public id and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    pub id: TokenId,
    pub secret: String,
}

impl ParsedToken {
    /// Makes a new random token.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut id)?;
        getrandom::fill(&mut secret)?;
        Ok(Self {
            id: TokenId(hex(&id)),
            secret: hex(&secret),
        })
    }

    pub fn parse(token: &str) -> Option<Self> {
        let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
        let is_hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        (is_hex(id, 16) && is_hex(secret, 64)).then(|| Self {
            id: TokenId(id.to_owned()),
            secret: secret.to_owned(),
        })
    }

    /// The token as the user types it.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}_{}", self.id, self.secret)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes a token secret for storage (argon2id, PHC string). Slow on purpose: call it off the
/// async executor.
pub fn hash_secret(secret: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Creates an admin token when the state has none, or when `always` asks for another one.
/// Returns the token to show once.
pub(crate) async fn bootstrap_admin_token(
    raft: &RaftNode,
    always: bool,
) -> Result<Option<String>, ServerError> {
    if !always && raft.read(|s| s.tokens().next().is_some()) {
        return Ok(None);
    }
    let token = ParsedToken::generate().map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    let secret = token.secret.clone();
    let secret_hash = tokio::task::spawn_blocking(move || hash_secret(&secret))
        .await
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?
        .map_err(ServerError::Bootstrap)?;
    let command = Command::CreateToken {
        id: token.id.clone(),
        name: "admin".to_owned(),
        secret_hash,
        at: jiff::Timestamp::now(),
    };
    raft.propose(command)
        .await
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    Ok(Some(token.reveal()))
}

/// Checks presented tokens against the stored hashes.
pub(crate) struct Verifier {
    /// SHA-256 of secrets that passed the argon2 check, by token id.
    verified: Mutex<HashMap<TokenId, [u8; 32]>>,
    /// Bounds concurrent argon2 runs, so a flood of wrong tokens cannot use up CPU and memory.
    /// The permit travels into the blocking task, so a client that hangs up frees it only when
    /// the hash is done.
    slow_checks: Arc<Semaphore>,
}

/// How long a request waits for a turn at the slow check before it is turned away.
const SLOW_CHECK_WAIT: Duration = Duration::from_secs(10);

impl Default for Verifier {
    fn default() -> Self {
        Self {
            verified: Mutex::default(),
            slow_checks: Arc::new(Semaphore::new(2)),
        }
    }
}

/// A hash to check unknown token ids against, so that a wrong id takes as long as a wrong
/// secret and timing does not tell which ids exist.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_secret("not a real token").unwrap_or_default())
}

impl Verifier {
    /// Returns who the token belongs to, or `Unauthorized` without saying why.
    pub(crate) async fn verify(&self, raft: &RaftNode, presented: &str) -> Result<Actor, ApiError> {
        let token = ParsedToken::parse(presented).ok_or(ApiError::Unauthorized)?;
        let found = raft.read(|s| {
            s.token(&token.id)
                .map(|t| (t.name.clone(), t.secret_hash.clone()))
        });
        let digest: [u8; 32] = Sha256::digest(token.secret.as_bytes()).into();
        let cached = self
            .verified
            .lock()
            .expect("verifier lock")
            .get(&token.id)
            .copied();
        if let Some((name, _)) = &found
            && cached.is_some_and(|k| constant_time_eq(&k, &digest))
        {
            return Ok(Actor {
                token: token.id,
                name: name.clone(),
            });
        }
        let stored_hash = match &found {
            Some((_, hash)) => hash.clone(),
            None => tokio::task::spawn_blocking(|| dummy_hash().to_owned())
                .await
                .map_err(|_| ApiError::Unauthorized)?,
        };
        let permit =
            tokio::time::timeout(SLOW_CHECK_WAIT, self.slow_checks.clone().acquire_owned())
                .await
                .map_err(|_| ApiError::Unavailable("too many token checks at once".to_owned()))?
                .map_err(|_| ApiError::Unauthorized)?;
        let secret = token.secret.clone();
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Argon2::default()
                .verify_password(secret.as_bytes(), stored_hash.as_str())
                .is_ok()
        })
        .await
        .unwrap_or(false);
        match found {
            Some((name, _)) if matches => {
                self.verified
                    .lock()
                    .expect("verifier lock")
                    .insert(token.id.clone(), digest);
                Ok(Actor {
                    token: token.id,
                    name,
                })
            }
            _ => Err(ApiError::Unauthorized),
        }
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: rejects requests without a valid bearer token and hands the `Actor` on.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or(ApiError::Unauthorized)?;
    let actor = state.auth.verify(&state.raft, presented.trim()).await?;
    req.extensions_mut().insert(actor);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn generated_tokens_parse_back() {
        let token = ParsedToken::generate().unwrap();
        assert_eq!(ParsedToken::parse(&token.reveal()), Some(token));
    }

    #[test]
    fn hashes_verify_only_the_right_secret() {
        let hash = hash_secret("right").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            Argon2::default()
                .verify_password(b"right", hash.as_str())
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", hash.as_str())
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_tokens_never_panics(s in ".*") {
            let _ = ParsedToken::parse(&s);
        }
    }
}
