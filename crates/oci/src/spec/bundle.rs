//! Writing a bundle's `config.json`, atomically so a runtime never reads half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// A `config.json` that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("write bundle config {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("serialise bundle config {}: {source}", path.display())]
    Serialise {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Writes `spec` as `dir/config.json` (the directory must exist) and returns that path.
pub fn write_bundle(dir: &Path, spec: &Spec) -> Result<PathBuf, BundleError> {
    let path = dir.join("config.json");
    let json = serde_json::to_vec_pretty(spec).map_err(|source| BundleError::Serialise {
        path: path.clone(),
        source,
    })?;
    let partial = dir.join(".config.json.partial");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)
    };
    write().map_err(|source| BundleError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
