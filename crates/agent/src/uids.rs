//! Host id ranges for apps: container ids 0..65536 of each app map to a range of their own, so
//! no two apps share a host uid, and none is a host user's.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use spread_core::AppId;

/// Ids mapped per app, container ids 0 to 65535.
pub const RANGE: u32 = 65_536;
/// The first host id of the first app's range by default: far above the ids of host users and
/// of the ranges `/etc/subuid` hands out.
pub const DEFAULT_BASE: u32 = 0x4000_0000;

/// Which app has which range, kept in a small JSON file so ranges survive restarts (the
/// unpacked layers on disk are owned by them).
#[derive(Debug)]
pub struct UidRanges {
    path: PathBuf,
    base: u32,
    slots: BTreeMap<AppId, u32>,
}

impl UidRanges {
    pub fn open(path: impl Into<PathBuf>, base: u32) -> io::Result<Self> {
        let path = path.into();
        let slots = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a uid range table: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { path, base, slots })
    }

    /// The first host id of `app`'s range, giving it the lowest free range if it has none.
    pub fn host_start(&mut self, app: AppId) -> io::Result<u32> {
        if let Some(&slot) = self.slots.get(&app) {
            return Ok(self.start_of(slot));
        }
        let capacity = (u32::MAX - self.base) / RANGE;
        let mut used: Vec<u32> = self.slots.values().copied().collect();
        used.sort_unstable();
        let slot = (0..capacity)
            .zip(used.iter().copied().chain(std::iter::repeat(u32::MAX)))
            .find(|(free, taken)| free != taken)
            .map(|(free, _)| free)
            .ok_or_else(|| io::Error::other("every uid range is taken"))?;
        self.slots.insert(app, slot);
        self.save()?;
        Ok(self.start_of(slot))
    }

    /// The first host id of `app`'s range, if it has one.
    pub fn get(&self, app: &AppId) -> Option<u32> {
        self.slots.get(app).map(|&slot| self.start_of(slot))
    }

    /// Frees `app`'s range once nothing of it is left on the node.
    pub fn release(&mut self, app: &AppId) -> io::Result<()> {
        if self.slots.remove(app).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// The apps that have a range.
    pub fn apps(&self) -> impl Iterator<Item = AppId> + '_ {
        self.slots.keys().copied()
    }

    fn start_of(&self, slot: u32) -> u32 {
        self.base + slot * RANGE
    }

    fn save(&self) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(&self.slots).map_err(io::Error::other)?;
        write_atomic(&self.path, &json)
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it and renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    spread_oci::monitor::write_atomic(path, bytes).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(n: u128) -> AppId {
        AppId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn apps_get_distinct_ranges_that_survive_a_reopen_and_are_reused_once_freed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uids.json");
        let mut ranges = UidRanges::open(&path, DEFAULT_BASE).unwrap();
        assert_eq!(ranges.host_start(app(1)).unwrap(), DEFAULT_BASE);
        assert_eq!(ranges.host_start(app(2)).unwrap(), DEFAULT_BASE + RANGE);
        assert_eq!(ranges.host_start(app(1)).unwrap(), DEFAULT_BASE);

        let mut reopened = UidRanges::open(&path, DEFAULT_BASE).unwrap();
        assert_eq!(reopened.host_start(app(2)).unwrap(), DEFAULT_BASE + RANGE);
        reopened.release(&app(1)).unwrap();
        assert_eq!(reopened.host_start(app(3)).unwrap(), DEFAULT_BASE);
        assert_eq!(
            reopened.host_start(app(4)).unwrap(),
            DEFAULT_BASE + 2 * RANGE
        );
    }

    #[test]
    fn ranges_end_before_the_last_host_id() {
        let dir = tempfile::tempdir().unwrap();
        let base = u32::MAX - 2 * RANGE;
        let mut ranges = UidRanges::open(dir.path().join("u.json"), base).unwrap();
        assert!(ranges.host_start(app(1)).is_ok());
        assert!(ranges.host_start(app(2)).is_ok());
        let err = ranges.host_start(app(3)).unwrap_err();
        assert!(
            err.to_string().contains("every uid range is taken"),
            "{err}"
        );
    }
}
