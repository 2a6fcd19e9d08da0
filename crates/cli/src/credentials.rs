//! The CLI's stored login: `credentials.toml` under the user's config dir, readable only by them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::env;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub token: String,
}

pub fn path() -> Result<PathBuf> {
    let base = match env::var(env::XDG_CONFIG_HOME) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            env::var(env::HOME).context("HOME is not set; cannot find the config dir")?,
        )
        .join(".config"),
    };
    Ok(base.join("spread").join("credentials.toml"))
}

pub fn save(credentials: &Credentials) -> Result<PathBuf> {
    let path = path()?;
    let dir = path.parent().expect("credentials path has a parent");
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict permissions of {}", dir.display()))?;
    let text = toml::to_string(credentials).context("cannot encode credentials")?;
    // Write a new file and rename it over the old one, so a crash never leaves half a file.
    let tmp = path.with_extension("toml.tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn load() -> Result<Option<Credentials>> {
    let path = path()?;
    match fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map(Some).with_context(|| {
            format!(
                "{} is not valid; log in again with `spread login URL --token TOKEN`",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The URL and token to use: `SPREAD_URL` and `SPREAD_TOKEN` win over the stored login.
pub fn resolve() -> Result<Credentials> {
    let stored = load()?;
    let url = env::var(env::URL).or_else(|| stored.as_ref().map(|c| c.url.clone()));
    let token = env::var(env::TOKEN).or_else(|| stored.as_ref().map(|c| c.token.clone()));
    match (url, token) {
        (Some(url), Some(token)) => Ok(Credentials { url, token }),
        _ => bail!(
            "not logged in: run `spread login URL --token TOKEN` (the token was printed by the first `spread up`), \
             or set {} and {}",
            env::URL,
            env::TOKEN
        ),
    }
}
