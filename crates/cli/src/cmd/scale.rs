//! `spread scale web=2 worker=1 [--memory 512M] [--cpu 0.5] -a APP`.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use clap::Args;
use spread_api::{FormationPatch, LimitsPatch, ProcessFormation};

use super::Context;
use crate::{output, units};

#[derive(Args)]
pub struct ScaleArgs {
    /// New quantities, e.g. `web=2 worker=1`; a bare `TYPE` changes only its limits. Without
    /// any, shows the formation.
    #[arg(value_name = "TYPE[=N]")]
    changes: Vec<String>,
    /// Memory limit of each instance of the types named, e.g. `512M`, `1.5G`, or `none`.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// CPU limit of each instance of the types named, in cores (`0.5`, `2`), thousandths of
    /// a core (`500m`), or `none`.
    #[arg(long, value_name = "CORES")]
    cpu: Option<String>,
}

pub async fn run(ctx: &Context, args: ScaleArgs) -> Result<()> {
    let app = ctx.app()?;
    let patch = patch(&args.changes, args.memory.as_deref(), args.cpu.as_deref())?;
    let client = ctx.client()?;
    let formation = match patch {
        None => client.formation(&app).await?,
        Some(patch) => client.scale(&app, &patch).await?,
    };
    if ctx.json {
        println!("{}", output::json(&formation));
    } else {
        println!("{}", table(&formation));
    }
    Ok(())
}

/// The formation change the arguments ask for, or `None` to show the formation.
pub fn patch(
    changes: &[String],
    memory: Option<&str>,
    cpu: Option<&str>,
) -> Result<Option<FormationPatch>> {
    let limits = LimitsPatch {
        memory_bytes: memory.map(units::parse_memory).transpose()?,
        cpu_millis: cpu.map(units::parse_cpu).transpose()?,
    };
    let has_limits = limits != LimitsPatch::default();
    if changes.is_empty() {
        if has_limits {
            bail!(
                "--memory and --cpu apply to the process types named; name them, \
                 e.g. `spread scale web --memory 512M`"
            );
        }
        return Ok(None);
    }
    let mut patch = FormationPatch::default();
    let mut named = BTreeSet::new();
    for change in changes {
        let (process, quantity) = parse_change(change)?;
        if !named.insert(process.clone()) {
            bail!("process type `{process}` is named twice; name each type once");
        }
        match quantity {
            Some(quantity) => {
                patch.quantities.insert(process.clone(), quantity);
            }
            None if !has_limits => bail!(
                "`{change}` changes nothing: give a quantity (`{change}=2`) or a limit \
                 (`--memory 512M`, `--cpu 0.5`)"
            ),
            None => {}
        }
        if has_limits {
            patch.limits.insert(process, limits.clone());
        }
    }
    Ok(Some(patch))
}

/// `TYPE=N` or a bare `TYPE`.
fn parse_change(change: &str) -> Result<(String, Option<u32>)> {
    let example = "write it as e.g. `web=2`, or `web` with --memory or --cpu";
    let (process, quantity) = match change.split_once('=') {
        Some((process, quantity)) => match quantity.trim().parse::<u32>() {
            Ok(quantity) => (process, Some(quantity)),
            Err(_) => bail!("`{change}` is not TYPE=N: {example}"),
        },
        None => (change, None),
    };
    let process = process.trim();
    if process.is_empty() {
        bail!("`{change}` is not TYPE=N: {example}");
    }
    Ok((process.to_owned(), quantity))
}

/// TYPE, QUANTITY and the limits of each instance.
pub fn table(formation: &[ProcessFormation]) -> String {
    let rows = formation.iter().map(|f| {
        [
            f.process_type.clone(),
            f.quantity.to_string(),
            f.memory_bytes.map_or_else(|| "-".to_owned(), units::bytes),
            f.cpu_millis.map_or_else(|| "-".to_owned(), units::cores),
        ]
    });
    output::table(["TYPE", "QUANTITY", "MEMORY", "CPU"], rows)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn args(changes: &[&str]) -> Vec<String> {
        changes.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn quantities_alone_change_only_quantities() {
        let patch = patch(&args(&["web=2", "worker=1"]), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            patch.quantities,
            BTreeMap::from([("web".to_owned(), 2), ("worker".to_owned(), 1)])
        );
        assert!(patch.limits.is_empty());
    }

    #[test]
    fn limits_apply_to_every_type_named() {
        let patch = patch(&args(&["web=2", "worker"]), Some("512M"), Some("0.5"))
            .unwrap()
            .unwrap();
        assert_eq!(patch.quantities, BTreeMap::from([("web".to_owned(), 2)]));
        let limits = LimitsPatch {
            memory_bytes: Some(Some(512 << 20)),
            cpu_millis: Some(Some(500)),
        };
        assert_eq!(
            patch.limits,
            BTreeMap::from([
                ("web".to_owned(), limits.clone()),
                ("worker".to_owned(), limits)
            ])
        );
    }

    #[test]
    fn none_removes_a_limit_and_an_absent_flag_keeps_it() {
        let patch = patch(&args(&["web"]), Some("none"), None).unwrap().unwrap();
        assert_eq!(
            patch.limits["web"],
            LimitsPatch {
                memory_bytes: Some(None),
                cpu_millis: None,
            }
        );
    }

    #[test]
    fn no_arguments_show_the_formation() {
        assert_eq!(patch(&[], None, None).unwrap(), None);
    }

    #[test]
    fn mistakes_are_refused_with_an_example() {
        let refused = |changes: &[&str], memory: Option<&str>, expected: &str| {
            let message = patch(&args(changes), memory, None).unwrap_err().to_string();
            assert!(message.contains(expected), "{changes:?}: {message}");
        };
        refused(&["web=lots"], None, "is not TYPE=N");
        refused(&["=2"], None, "is not TYPE=N");
        refused(&["web=-1"], None, "`web=2`");
        refused(&["web"], None, "`web` changes nothing");
        refused(&[], Some("512M"), "spread scale web --memory 512M");
        refused(&["web=1", "web=2"], None, "named twice");
        refused(&["web"], Some("lots"), "`lots`");
    }

    #[test]
    fn the_table_shows_limits_or_a_dash() {
        let formation = [
            ProcessFormation {
                process_type: "web".to_owned(),
                quantity: 2,
                memory_bytes: Some(512 << 20),
                cpu_millis: Some(500),
            },
            ProcessFormation {
                process_type: "worker".to_owned(),
                quantity: 1,
                memory_bytes: None,
                cpu_millis: None,
            },
        ];
        insta::assert_snapshot!(table(&formation));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(
            changes in proptest::collection::vec(".{0,12}", 0..4),
            memory in proptest::option::of(".{0,12}"),
            cpu in proptest::option::of(".{0,12}"),
        ) {
            let _ = patch(&changes, memory.as_deref(), cpu.as_deref());
        }
    }
}
