//! `MonitorConfig`: what one monitor process is told, as the JSON file it is started with.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MonitorError;
use super::layout::StateDir;
use crate::ContainerId;

/// The version of the config and record files; a reader refuses versions it does not know.
pub const SCHEMA: u32 = 1;

/// Everything a monitor needs to run and watch one container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorConfig {
    #[serde(default = "schema")]
    pub schema: u32,
    #[serde(serialize_with = "id_to_str", deserialize_with = "id_from_str")]
    pub id: ContainerId,
    pub bundle: PathBuf,
    pub runc_binary: PathBuf,
    /// runc's state directory (`runc --root`).
    pub runc_root: PathBuf,
    /// The instance's own directory: the config, pid file, records and logs live here.
    pub state_dir: PathBuf,
    #[serde(default)]
    pub log: LogLimits,
    /// Where the cgroup hierarchies are mounted, normally `/sys/fs/cgroup`.
    pub cgroup_mount: PathBuf,
    /// The container's `linux.cgroupsPath`, where the OOM kill count is read.
    pub cgroups_path: String,
}

/// How much log a container may keep: `files` files of at most `max_file_bytes` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimits {
    pub max_file_bytes: u64,
    /// The current file plus `files - 1` rotated ones.
    pub files: u32,
}

impl LogLimits {
    /// The smallest file size accepted, so that a split line and its header always fit.
    pub const MIN_FILE_BYTES: u64 = 4096;
    /// Longer lines are split, like Docker splits at 16 KiB.
    const MAX_LINE_BYTES: u64 = 16 << 10;

    /// The longest piece of a line written as one record. A quarter of the file size leaves
    /// room for the header and for invalid bytes that grow threefold when replaced by U+FFFD.
    pub fn max_line_bytes(&self) -> usize {
        let bytes = (self.max_file_bytes / 4).min(Self::MAX_LINE_BYTES);
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }
}

impl Default for LogLimits {
    /// 10 MiB per file, 3 files.
    fn default() -> Self {
        Self {
            max_file_bytes: 10 << 20,
            files: 3,
        }
    }
}

impl MonitorConfig {
    /// A config with the default log limits and the standard cgroup mount.
    pub fn new(
        id: ContainerId,
        bundle: impl Into<PathBuf>,
        runc_binary: impl Into<PathBuf>,
        runc_root: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        cgroups_path: impl Into<String>,
    ) -> Self {
        Self {
            schema: SCHEMA,
            id,
            bundle: bundle.into(),
            runc_binary: runc_binary.into(),
            runc_root: runc_root.into(),
            state_dir: state_dir.into(),
            log: LogLimits::default(),
            cgroup_mount: PathBuf::from("/sys/fs/cgroup"),
            cgroups_path: cgroups_path.into(),
        }
    }

    /// Refuses what the monitor could not honour; called by both `load` and `write`.
    pub fn validate(&self) -> Result<(), MonitorError> {
        let invalid = |reason: String| MonitorError::InvalidConfig {
            id: self.id.clone(),
            reason,
        };
        if self.schema != SCHEMA {
            return Err(invalid(format!("schema {} is not {SCHEMA}", self.schema)));
        }
        if self.log.max_file_bytes < LogLimits::MIN_FILE_BYTES {
            return Err(invalid(format!(
                "log.max_file_bytes {} is below {}",
                self.log.max_file_bytes,
                LogLimits::MIN_FILE_BYTES
            )));
        }
        if self.log.files == 0 {
            return Err(invalid(
                "log.files is 0; at least the current file is kept".into(),
            ));
        }
        for (name, path) in [
            ("bundle", &self.bundle),
            ("state_dir", &self.state_dir),
            ("runc_root", &self.runc_root),
        ] {
            if !path.is_absolute() {
                return Err(invalid(format!(
                    "{name} {} is not absolute",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, MonitorError> {
        let text = std::fs::read(path).map_err(|source| MonitorError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Self = serde_json::from_slice(&text).map_err(|source| MonitorError::Parse {
            path: path.to_owned(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Writes the config into its state dir (made if missing), atomically, and returns the path.
    pub fn write(&self) -> Result<PathBuf, MonitorError> {
        self.validate()?;
        let dir = StateDir::new(&self.state_dir);
        dir.create()?;
        let path = dir.config();
        let json = serde_json::to_vec_pretty(self).expect("a config always serialises");
        super::records::write_atomic(&path, &json)?;
        Ok(path)
    }
}

fn schema() -> u32 {
    SCHEMA
}

fn id_to_str<S: Serializer>(id: &ContainerId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(id.as_str())
}

fn id_from_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ContainerId, D::Error> {
    let text = String::deserialize(deserializer)?;
    ContainerId::parse(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> MonitorConfig {
        let id = ContainerId::parse("web-1").unwrap();
        MonitorConfig::new(id, "/b", "/usr/sbin/runc", "/run/r", dir, "/spread/web-1")
    }

    #[test]
    fn a_written_config_loads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir.path().join("web-1"));
        let path = config.write().unwrap();
        assert_eq!(path, dir.path().join("web-1/monitor.json"));
        assert_eq!(MonitorConfig::load(&path).unwrap(), config);
    }

    #[test]
    fn missing_log_limits_take_the_defaults_of_10_mib_and_3_files() {
        let json = r#"{"id":"web-1","bundle":"/b","runc_binary":"/r","runc_root":"/rr",
            "state_dir":"/s","cgroup_mount":"/sys/fs/cgroup","cgroups_path":"/x"}"#;
        let config: MonitorConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.log.max_file_bytes, 10 << 20);
        assert_eq!(config.log.files, 3);
        assert_eq!(config.schema, SCHEMA);
    }

    #[test]
    fn a_bad_id_tiny_files_zero_files_and_relative_paths_are_refused() {
        let json = r#"{"id":"Web/1","bundle":"/b","runc_binary":"/r","runc_root":"/rr",
            "state_dir":"/s","cgroup_mount":"/m","cgroups_path":"/x"}"#;
        let err = serde_json::from_str::<MonitorConfig>(json).unwrap_err();
        assert!(err.to_string().contains("Web/1"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        type Breakage = fn(&mut MonitorConfig);
        let cases: [(&str, Breakage); 4] = [
            ("max_file_bytes 100", |c| c.log.max_file_bytes = 100),
            ("log.files is 0", |c| c.log.files = 0),
            ("bundle b is not absolute", |c| c.bundle = "b".into()),
            ("schema 9", |c| c.schema = 9),
        ];
        for (want, break_it) in cases {
            let mut config = config(dir.path());
            break_it(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("web-1"), "{err}");
        }
    }

    #[test]
    fn lines_are_split_at_a_quarter_of_the_file_size_or_16_kib() {
        let limits = |max_file_bytes| LogLimits {
            max_file_bytes,
            files: 2,
        };
        assert_eq!(limits(4096).max_line_bytes(), 1024);
        assert_eq!(LogLimits::default().max_line_bytes(), 16 << 10);
    }
}
