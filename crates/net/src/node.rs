//! `NodeNetwork`: one node's bridge, rules and instance attachments, carried out through a `Host`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::host::perform;
use crate::{
    Attachment, CONTAINER_IFNAME, ConfigError, Host, HostError, HostOp, InstanceId, IpamError,
    NetConfig, NodeSubnet, Planner,
};

/// What a node network operation failed with; each names the step and the instance.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("node network config: {0}")]
    Config(#[from] ConfigError),
    #[error("attach instance {instance}: {source}")]
    Address {
        instance: InstanceId,
        #[source]
        source: IpamError,
    },
    #[error("{step}: {source}")]
    Host {
        step: String,
        #[source]
        source: HostError,
    },
}

/// What `recover` found in the netns dir.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Instances whose namespace has its address: attached again, as they were.
    pub attached: Vec<InstanceId>,
    /// Instances whose attach never finished (no usable address inside): removed.
    pub removed: Vec<InstanceId>,
    /// Files that are not named like an instance: left alone.
    pub ignored: Vec<String>,
}

/// A node's network: the bridge, the nftables tables, and one attachment per instance. The
/// in-memory view of attachments is rebuilt from the host by `recover` after a restart.
#[derive(Debug)]
pub struct NodeNetwork<H> {
    planner: Planner,
    host: H,
    attachments: BTreeMap<InstanceId, Attachment>,
    /// The address handed out last, so the next search starts after it.
    last: Option<Ipv4Addr>,
}

impl<H: Host> NodeNetwork<H> {
    pub fn new(config: NetConfig, host: H) -> Result<Self, NetError> {
        Ok(Self {
            planner: Planner::new(config)?,
            host,
            attachments: BTreeMap::new(),
            last: None,
        })
    }

    pub fn config(&self) -> &NetConfig {
        self.planner.config()
    }

    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    pub fn subnet(&self) -> NodeSubnet {
        self.planner.subnet()
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    pub fn attachment(&self, instance: &InstanceId) -> Option<&Attachment> {
        self.attachments.get(instance)
    }

    pub fn attachments(&self) -> impl Iterator<Item = &Attachment> {
        self.attachments.values()
    }

    /// Brings the bridge up with the gateway address, turns forwarding on and replaces
    /// Spread's nftables tables. Safe to repeat.
    pub async fn setup(&self) -> Result<(), NetError> {
        self.run("set up node network", &self.planner.setup()).await
    }

    /// Gives `instance` a network namespace with an address, joined to the bridge. Attaching
    /// an attached instance returns its attachment. A failed attach removes what it made.
    pub async fn attach(&mut self, instance: &InstanceId) -> Result<Attachment, NetError> {
        if let Some(existing) = self.attachments.get(instance) {
            return Ok(existing.clone());
        }
        let used: BTreeSet<Ipv4Addr> = self.attachments.values().map(|a| a.address).collect();
        let address =
            self.subnet()
                .allocate(&used, self.last)
                .map_err(|source| NetError::Address {
                    instance: instance.clone(),
                    source,
                })?;
        let attachment = self.planner.attachment(instance, address);
        let step = format!("attach instance {instance}");
        if let Err(e) = self.run(&step, &self.planner.attach(&attachment)).await {
            if let Err(cleanup) = self.run(&step, &self.planner.detach(instance)).await {
                tracing::warn!(%instance, error = %cleanup, "could not undo a failed attach");
            }
            return Err(e);
        }
        tracing::info!(%instance, %address, "attached instance");
        self.last = Some(address);
        self.attachments
            .insert(instance.clone(), attachment.clone());
        Ok(attachment)
    }

    /// Removes `instance`'s veth pair and namespace and frees its address. Detaching an
    /// instance that is not attached succeeds (and still removes leftovers by their names).
    pub async fn detach(&mut self, instance: &InstanceId) -> Result<(), NetError> {
        let step = format!("detach instance {instance}");
        self.run(&step, &self.planner.detach(instance)).await?;
        self.attachments.remove(instance);
        Ok(())
    }

    /// Removes everything Spread made on this node: every instance namespace in the netns
    /// dir (known or not), the bridge and the nftables tables. Goes on past failures and
    /// reports the first.
    pub async fn teardown(&mut self) -> Result<(), NetError> {
        let mut instances: BTreeSet<InstanceId> = self.attachments.keys().cloned().collect();
        let names = self.list_netns("tear down node network").await?;
        instances.extend(names.iter().filter_map(|n| InstanceId::parse(n).ok()));
        let mut first = None;
        for op in self.planner.down(&instances) {
            if let Err(source) = perform(&self.host, &op).await {
                tracing::warn!(%op, error = %source, "tear down node network");
                first.get_or_insert(NetError::Host {
                    step: format!("tear down node network: {op}"),
                    source,
                });
            }
        }
        self.attachments.clear();
        self.last = None;
        first.map_or(Ok(()), Err)
    }

    /// Rebuilds the view of attachments from the namespaces in the netns dir, after a
    /// restart. A namespace without a usable address is what a crash during attach leaves;
    /// it is removed, so the instance can be attached again.
    pub async fn recover(&mut self) -> Result<Recovery, NetError> {
        let subnet = self.subnet();
        let mut recovery = Recovery::default();
        let mut found: BTreeMap<InstanceId, Attachment> = BTreeMap::new();
        for name in self.list_netns("recover node network").await? {
            let Ok(instance) = InstanceId::parse(&name) else {
                tracing::warn!(name, "not an instance namespace; left alone");
                recovery.ignored.push(name);
                continue;
            };
            let path = self.planner.netns_path(&instance);
            let inside = self.host.netns_address(&path, CONTAINER_IFNAME).await;
            let taken = |a: Ipv4Addr| found.values().any(|f| f.address == a);
            match inside {
                Ok(Some(cidr))
                    if subnet.is_instance_address(cidr.addr())
                        && cidr.prefix() == subnet.cidr().prefix()
                        && !taken(cidr.addr()) =>
                {
                    let attachment = self.planner.attachment(&instance, cidr.addr());
                    found.insert(instance.clone(), attachment);
                    recovery.attached.push(instance);
                }
                inside => {
                    tracing::warn!(%instance, ?inside, "incomplete attachment; removing it");
                    let step = format!("recover instance {instance}");
                    self.run(&step, &self.planner.detach(&instance)).await?;
                    recovery.removed.push(instance);
                }
            }
        }
        self.last = found.values().map(|a| a.address).max();
        self.attachments = found;
        Ok(recovery)
    }

    async fn list_netns(&self, step: &str) -> Result<Vec<String>, NetError> {
        let dir = &self.config().netns_dir;
        self.host
            .list_netns(dir)
            .await
            .map_err(|source| NetError::Host {
                step: step.to_owned(),
                source,
            })
    }

    async fn run(&self, step: &str, ops: &[HostOp]) -> Result<(), NetError> {
        for op in ops {
            tracing::debug!(%op, "{step}");
            perform(&self.host, op)
                .await
                .map_err(|source| NetError::Host {
                    step: step.to_owned(),
                    source,
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
