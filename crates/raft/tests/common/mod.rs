//! Command builders shared by the Raft integration tests.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use spread_core::{Actor, AppId, AppName, Command, ConfigKey, TokenId};
use spread_raft::{RaftConfig, RaftNode};

pub fn at() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000).unwrap()
}

pub fn app_name(n: usize) -> AppName {
    AppName::parse(&format!("app-{n}")).unwrap()
}

pub fn create_app(n: usize) -> Command {
    Command::CreateApp {
        id: AppId(uuid::Uuid::from_u128(n as u128 + 1)),
        name: app_name(n),
        at: at(),
    }
}

/// Sets one config var of app `n`, which records a new release.
pub fn set_var(n: usize, value: usize) -> Command {
    Command::UpdateConfig {
        app: app_name(n),
        set: BTreeMap::from([(ConfigKey::parse("COUNTER").unwrap(), value.to_string())]),
        unset: BTreeSet::new(),
        by: Actor {
            token: TokenId("t1".into()),
            name: "admin".into(),
        },
        at: at(),
    }
}

pub async fn open(dir: &Path) -> RaftNode {
    RaftNode::open(RaftConfig::new(dir)).await.unwrap()
}
