//! How results are shown: plain-column tables for people, JSON for machines.

use comfy_table::{Table, presets};
use serde::Serialize;

/// A table with a header and no borders, like `ps` or `heroku apps`.
pub fn table<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_header(header);
    for row in rows {
        table.add_row(row);
    }
    // comfy-table pads every line to the table width and indents by one space; trim both.
    table
        .lines()
        .map(|l| l.trim().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).expect("API types serialize to JSON")
}

pub fn time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn release(version: Option<u64>) -> String {
    version.map_or_else(|| "-".to_owned(), |v| format!("v{v}"))
}

/// `45s`, `2m 5s`, `3h 12m`, `2d 4h`: two units at most.
pub fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}
