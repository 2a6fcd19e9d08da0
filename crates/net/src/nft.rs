//! Spread's nftables tables as nft JSON: egress masquerade and no way to the host's API.

use std::fmt;

use serde_json::{Value, json};

use crate::NodeSubnet;

/// The address family of an nftables table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NftFamily {
    Ip,
    Inet,
}

impl fmt::Display for NftFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NftFamily::Ip => "ip",
            NftFamily::Inet => "inet",
        })
    }
}

/// One of Spread's nftables tables.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NftTable {
    pub family: NftFamily,
    pub name: String,
}

impl fmt::Display for NftTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.family, self.name)
    }
}

/// What the rules are made of.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub nat: &'a NftTable,
    pub filter: &'a NftTable,
    pub bridge: &'a str,
    pub subnet: NodeSubnet,
    pub protected_ports: &'a [u16],
}

/// The complete ruleset for Spread's two tables, for one `nft -j -f -` run. Each table is
/// added, deleted and added again, so the run replaces it whether or not it existed, and nft
/// applies the whole batch atomically: there is no moment without the rules.
///
/// - `ip <nat>`: traffic from the node subnet leaving through any interface but the bridge
///   is masqueraded (egress NAT).
/// - `inet <filter>`: traffic to the host itself (the input hook sees only that) on a
///   protected TCP port is dropped when it comes in through the bridge (IPv6 link-local
///   included) or from the node subnet; everything else is accepted.
pub fn ruleset(rules: Rules<'_>) -> Value {
    let subnet = rules.subnet.cidr();
    let from_subnet = json!({"match": {
        "op": "==",
        "left": {"payload": {"protocol": "ip", "field": "saddr"}},
        "right": {"prefix": {"addr": subnet.addr().to_string(), "len": subnet.prefix()}},
    }});
    let mut commands = replace_table(rules.nat);
    commands.push(base_chain(rules.nat, "postrouting", "nat", 100));
    commands.push(rule(
        rules.nat,
        "postrouting",
        vec![
            from_subnet.clone(),
            json!({"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": rules.bridge}}),
            json!({"masquerade": null}),
        ],
    ));
    commands.extend(replace_table(rules.filter));
    commands.push(base_chain(rules.filter, "input", "filter", 0));
    if let Some(ports) = port_match(rules.protected_ports) {
        let via_bridge = json!({"match": {
            "op": "==", "left": {"meta": {"key": "iifname"}}, "right": rules.bridge,
        }});
        for from in [via_bridge, from_subnet] {
            let expr = vec![from, ports.clone(), json!({"drop": null})];
            commands.push(rule(rules.filter, "input", expr));
        }
    }
    json!({ "nftables": commands })
}

/// Deletes `tables` in one atomic run; tables that do not exist are not an error.
pub fn delete_tables(tables: &[NftTable]) -> Value {
    let commands: Vec<Value> = tables
        .iter()
        .flat_map(|t| [json!({"add": table(t)}), json!({"delete": table(t)})])
        .collect();
    json!({ "nftables": commands })
}

fn table(t: &NftTable) -> Value {
    json!({"table": {"family": t.family.to_string(), "name": t.name}})
}

fn replace_table(t: &NftTable) -> Vec<Value> {
    vec![
        json!({"add": table(t)}),
        json!({"delete": table(t)}),
        json!({"add": table(t)}),
    ]
}

fn base_chain(t: &NftTable, hook: &str, kind: &str, prio: i32) -> Value {
    json!({"add": {"chain": {
        "family": t.family.to_string(), "table": t.name, "name": hook,
        "type": kind, "hook": hook, "prio": prio, "policy": "accept",
    }}})
}

fn rule(t: &NftTable, chain: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {
        "family": t.family.to_string(), "table": t.name, "chain": chain, "expr": expr,
    }}})
}

/// `tcp dport P` or `tcp dport { P, Q }`; `None` when no port is protected.
fn port_match(ports: &[u16]) -> Option<Value> {
    let mut ports = ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    let right = match ports.as_slice() {
        [] => return None,
        [one] => json!(one),
        many => json!({"set": many}),
    };
    Some(json!({"match": {
        "op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": right,
    }}))
}
