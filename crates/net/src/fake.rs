//! `FakeHost`: a `Host` kept in memory that records every operation and can be told to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::{Host, HostError, HostOp, Ipv4Cidr, NftTable, Veth};

type Matcher = Box<dyn Fn(&HostOp) -> bool + Send>;

/// An in-memory host with the real one's rules: names are unique, a veth needs its bridge
/// and namespace, deleting a namespace takes its veth pair along, removals are idempotent.
///
/// Clones share their state, so a test keeps one clone to look in while the code under test
/// owns another.
#[derive(Clone, Default)]
pub struct FakeHost {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    ops: Vec<HostOp>,
    failures: Vec<Matcher>,
    bridges: BTreeMap<String, Ipv4Cidr>,
    /// Host ends of veth pairs and the namespace their peer is in.
    veths: BTreeMap<String, PathBuf>,
    /// Namespaces and the address of the interface inside, once a veth put one there.
    netns: BTreeMap<PathBuf, Option<(String, Ipv4Cidr)>>,
    tables: BTreeSet<String>,
    ip_forward: bool,
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHost").finish_non_exhaustive()
    }
}

impl FakeHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next operation matching `matches` fail (after it is recorded).
    pub fn fail_next(&self, matches: impl Fn(&HostOp) -> bool + Send + 'static) {
        self.lock().failures.push(Box::new(matches));
    }

    /// Every operation asked of this host so far, failed ones included, in order.
    pub fn ops(&self) -> Vec<HostOp> {
        self.lock().ops.clone()
    }

    pub fn take_ops(&self) -> Vec<HostOp> {
        std::mem::take(&mut self.lock().ops)
    }

    /// Bridges and veth host ends, sorted.
    pub fn links(&self) -> Vec<String> {
        let inner = self.lock();
        let mut links: Vec<String> = inner
            .bridges
            .keys()
            .chain(inner.veths.keys())
            .cloned()
            .collect();
        links.sort();
        links
    }

    pub fn netns(&self) -> Vec<PathBuf> {
        self.lock().netns.keys().cloned().collect()
    }

    /// Tables as `family name`, sorted.
    pub fn tables(&self) -> Vec<String> {
        self.lock().tables.iter().cloned().collect()
    }

    pub fn ip_forward(&self) -> bool {
        self.lock().ip_forward
    }

    pub fn bridge_address(&self, name: &str) -> Option<Ipv4Cidr> {
        self.lock().bridges.get(name).copied()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `op`, fails it if asked to, else changes the state with `change`.
    fn perform<T>(
        &self,
        op: HostOp,
        change: impl FnOnce(&mut Inner) -> Result<T, HostError>,
    ) -> Result<T, HostError> {
        let mut inner = self.lock();
        let failure = inner.failures.iter().position(|m| m(&op));
        inner.ops.push(op.clone());
        if let Some(i) = failure {
            drop(inner.failures.remove(i));
            return Err(failed(&op, "injected failure"));
        }
        change(&mut inner)
    }
}

fn failed(op: &HostOp, why: &str) -> HostError {
    HostError::Failed {
        command: op.to_string(),
        stderr: why.to_owned(),
    }
}

impl Host for FakeHost {
    async fn ensure_bridge(&self, name: &str, gateway: Ipv4Cidr) -> Result<(), HostError> {
        let op = HostOp::EnsureBridge {
            name: name.to_owned(),
            gateway,
        };
        self.perform(op.clone(), |inner| {
            if inner.veths.contains_key(name) {
                return Err(HostError::NotABridge {
                    name: name.to_owned(),
                    kind: "veth".to_owned(),
                });
            }
            inner.bridges.insert(name.to_owned(), gateway);
            Ok(())
        })
    }

    async fn set_ip_forward(&self) -> Result<(), HostError> {
        self.perform(HostOp::SetIpForward, |inner| {
            inner.ip_forward = true;
            Ok(())
        })
    }

    async fn apply_nft(&self, ruleset: &Value) -> Result<(), HostError> {
        let op = HostOp::ApplyNft {
            ruleset: ruleset.clone(),
        };
        self.perform(op, |inner| {
            let commands = ruleset["nftables"].as_array().into_iter().flatten();
            for (verb, body) in commands.filter_map(|c| c.as_object()?.iter().next()) {
                let Some(table) = body.get("table") else {
                    continue;
                };
                let name = format!(
                    "{} {}",
                    table["family"].as_str().unwrap_or(""),
                    table["name"].as_str().unwrap_or("")
                );
                if verb == "delete" {
                    inner.tables.remove(&name);
                } else {
                    inner.tables.insert(name);
                }
            }
            Ok(())
        })
    }

    async fn delete_nft_tables(&self, tables: &[NftTable]) -> Result<(), HostError> {
        let op = HostOp::DeleteNftTables {
            tables: tables.to_vec(),
        };
        self.perform(op, |inner| {
            for table in tables {
                inner.tables.remove(&table.to_string());
            }
            Ok(())
        })
    }

    async fn create_netns(&self, path: &Path) -> Result<(), HostError> {
        let op = HostOp::CreateNetns {
            path: path.to_owned(),
        };
        self.perform(op, |inner| {
            if inner.netns.contains_key(path) {
                return Err(HostError::Io {
                    action: "create netns file",
                    path: path.to_owned(),
                    source: io::Error::from(io::ErrorKind::AlreadyExists),
                });
            }
            inner.netns.insert(path.to_owned(), None);
            Ok(())
        })
    }

    async fn delete_netns(&self, path: &Path) -> Result<(), HostError> {
        let op = HostOp::DeleteNetns {
            path: path.to_owned(),
        };
        self.perform(op, |inner| {
            inner.netns.remove(path);
            inner.veths.retain(|_, netns| netns != path);
            Ok(())
        })
    }

    async fn create_veth(&self, veth: &Veth) -> Result<(), HostError> {
        let op = HostOp::CreateVeth(veth.clone());
        self.perform(op.clone(), |inner| {
            if inner.veths.contains_key(&veth.host_end)
                || inner.bridges.contains_key(&veth.host_end)
            {
                return Err(failed(&op, "RTNETLINK answers: File exists"));
            }
            if !inner.bridges.contains_key(&veth.bridge) {
                return Err(failed(&op, "Cannot find device"));
            }
            let Some(inside) = inner.netns.get_mut(&veth.netns) else {
                return Err(failed(&op, "Invalid \"netns\" value"));
            };
            *inside = Some((veth.container_end.clone(), veth.address));
            inner
                .veths
                .insert(veth.host_end.clone(), veth.netns.clone());
            Ok(())
        })
    }

    async fn delete_link(&self, name: &str) -> Result<(), HostError> {
        let op = HostOp::DeleteLink {
            name: name.to_owned(),
        };
        self.perform(op, |inner| {
            inner.bridges.remove(name);
            if let Some(netns) = inner.veths.remove(name) {
                // The peer goes with it, and with it the address inside.
                if let Some(inside) = inner.netns.get_mut(&netns) {
                    *inside = None;
                }
            }
            Ok(())
        })
    }

    async fn list_netns(&self, dir: &Path) -> Result<Vec<String>, HostError> {
        let inner = self.lock();
        let names = inner.netns.keys().filter(|p| p.parent() == Some(dir));
        Ok(names
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
            .collect())
    }

    async fn netns_address(
        &self,
        netns: &Path,
        ifname: &str,
    ) -> Result<Option<Ipv4Cidr>, HostError> {
        let inner = self.lock();
        match inner.netns.get(netns) {
            None => Err(HostError::Failed {
                command: format!(
                    "nsenter --net={} ip -j -4 addr show dev {ifname}",
                    netns.display()
                ),
                stderr: "Invalid argument".to_owned(),
            }),
            Some(inside) => Ok(inside
                .as_ref()
                .filter(|(name, _)| name == ifname)
                .map(|(_, address)| *address)),
        }
    }
}
