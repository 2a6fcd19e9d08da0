//! Checks on `SpecOptions` before a spec is built, each naming the field and value it refuses.

use std::path::{Component, Path, PathBuf};

use oci_spec::OciSpecError;

use super::SpecOptions;

/// Options that cannot become a safe spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("args is empty: the container needs a program to run")]
    NoArgs,
    #[error("env entry {0:?} has no '='")]
    Env(String),
    #[error("hostname {hostname:?} {reason}")]
    Hostname {
        hostname: String,
        reason: &'static str,
    },
    #[error("uid_map_host_start {start} with id_range {range}: {reason}")]
    IdMapping {
        start: u32,
        range: u32,
        reason: &'static str,
    },
    #[error("{field} {} must be an absolute path without '..'", path.display())]
    Path { field: &'static str, path: PathBuf },
    #[error("cgroups_path {path:?} {reason}")]
    CgroupsPath { path: String, reason: &'static str },
    #[error("{field} {value} is out of range: {reason}")]
    Limit {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("read host limits from {}: {reason}", path.display())]
    HostLimits { path: PathBuf, reason: String },
    #[error("building the spec: {0}")]
    Build(#[from] OciSpecError),
}

fn limit(field: &'static str, value: impl ToString, reason: &'static str) -> SpecError {
    SpecError::Limit {
        field,
        value: value.to_string(),
        reason,
    }
}

fn absolute(field: &'static str, path: &Path) -> Result<(), SpecError> {
    let clean = path.is_absolute() && !path.components().any(|c| c == Component::ParentDir);
    if clean {
        Ok(())
    } else {
        Err(SpecError::Path {
            field,
            path: path.to_owned(),
        })
    }
}

impl SpecOptions {
    pub(super) fn validate(&self) -> Result<(), SpecError> {
        if self.args.is_empty() {
            return Err(SpecError::NoArgs);
        }
        if let Some(entry) = self.env.iter().find(|entry| !entry.contains('=')) {
            return Err(SpecError::Env(entry.clone()));
        }
        self.validate_hostname()?;
        self.validate_ids()?;
        absolute("cwd", &self.cwd)?;
        for (field, path) in [
            ("netns_path", &self.netns_path),
            ("resolv_conf", &self.resolv_conf),
            ("hosts", &self.hosts),
            ("rootfs", &self.rootfs),
        ] {
            if let Some(path) = path {
                absolute(field, path)?;
            }
        }
        for bind in &self.binds {
            absolute("bind source", &bind.source)?;
            absolute("bind destination", &bind.destination)?;
        }
        self.validate_cgroups_path()?;
        self.validate_limits()
    }

    fn validate_hostname(&self) -> Result<(), SpecError> {
        let hostname = &self.hostname;
        let reason = if hostname.is_empty() {
            Some("is empty")
        } else if hostname.len() > 64 {
            Some("is longer than 64 bytes")
        } else if !hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            Some("may hold only letters, digits, '-' and '.'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(SpecError::Hostname {
                hostname: hostname.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    fn validate_ids(&self) -> Result<(), SpecError> {
        let (start, range) = (self.uid_map_host_start, self.id_range);
        let reason = if start == 0 {
            Some("container root would be host root")
        } else if range == 0 {
            Some("no ids would be mapped")
        } else if start.checked_add(range).is_none() {
            Some("the range runs past the largest uid")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(SpecError::IdMapping {
                start,
                range,
                reason,
            }),
            None => Ok(()),
        }
    }

    fn validate_cgroups_path(&self) -> Result<(), SpecError> {
        let path = &self.cgroups_path;
        let mut parts = path.strip_prefix('/').map(|rest| rest.split('/'));
        let reason = match &mut parts {
            None => Some("must start with '/' (a cgroupfs path)"),
            Some(parts) => {
                let ok = |part: &str| {
                    !part.is_empty()
                        && part != "."
                        && part != ".."
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                };
                if parts.all(ok) {
                    None
                } else {
                    Some("must be non-empty names of letters, digits, '_', '-' and '.'")
                }
            }
        };
        match reason {
            Some(reason) => Err(SpecError::CgroupsPath {
                path: path.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    fn validate_limits(&self) -> Result<(), SpecError> {
        if let Some(bytes) = self.memory_bytes
            && (bytes < 1 << 20 || i64::try_from(bytes).is_err())
        {
            return Err(limit(
                "memory_bytes",
                bytes,
                "must be from 1 MiB to 2^63-1 bytes",
            ));
        }
        if let Some(millis) = self.cpu_millis
            && millis < 10
        {
            return Err(limit(
                "cpu_millis",
                millis,
                "the kernel needs a quota of 1 ms",
            ));
        }
        if self.pids_limit < 1 {
            return Err(limit("pids_limit", self.pids_limit, "must be at least 1"));
        }
        if self.tmp_size_bytes == 0 {
            return Err(limit(
                "tmp_size_bytes",
                0,
                "a size of 0 means unlimited to tmpfs",
            ));
        }
        if self.nofile == 0 {
            return Err(limit("nofile", 0, "a process needs at least one file"));
        }
        Ok(())
    }
}
