//! openraft's own storage conformance suite, run against the redb store.

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;
use crate::store;
use crate::types::TypeConfig;

/// Opens a fresh store in its own temporary directory, removed when the guard drops.
struct FreshStore;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for FreshStore {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<u64>> {
        let dir = TempDir::new().expect("temporary directory");
        let stores = store::open_stores(&store::file_in(dir.path())).expect("fresh store opens");
        Ok((dir, stores.log, stores.state_machine))
    }
}

#[test]
fn the_redb_store_passes_the_openraft_storage_suite() {
    Suite::test_all(FreshStore).unwrap();
}
