//! Memory sizes and CPU amounts as people write and read them: `512M`, `1.5G`, `0.5` cores,
//! `500m`.

use anyhow::{Result, bail};

const MEMORY_EXAMPLE: &str =
    "write a size such as `512M`, `1.5G`, `300MiB` or `536870912` (bytes), or `none`";
const CPU_EXAMPLE: &str =
    "write cores such as `0.5` or `2`, thousandths of a core such as `500m`, or `none`";

/// A memory limit in bytes, or `None` for `none`. Units are binary whatever their spelling
/// (`M`, `MB` and `MiB` are all 2^20 bytes), as for `docker run --memory`.
pub fn parse_memory(input: &str) -> Result<Option<u64>> {
    let text = input.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => bail!("invalid memory limit `{input}`: unknown unit; {MEMORY_EXAMPLE}"),
    };
    let Some(bytes) = scaled(number, 1u128 << shift) else {
        bail!("invalid memory limit `{input}`: {MEMORY_EXAMPLE}");
    };
    match u64::try_from(bytes) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(_) => bail!("invalid memory limit `{input}`: too large; {MEMORY_EXAMPLE}"),
    }
}

/// A CPU limit in thousandths of a core, or `None` for `none`.
pub fn parse_cpu(input: &str) -> Result<Option<u32>> {
    let text = input.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let millis = match text.strip_suffix('m') {
        Some(millis) if !millis.contains('.') => scaled(millis, 1),
        Some(_) => None,
        None => {
            let fraction = text.split_once('.').map_or("", |(_, f)| f);
            if fraction.len() > 3 {
                bail!(
                    "invalid CPU limit `{input}`: the finest step is a thousandth of a core \
                     (`0.001` or `1m`)"
                );
            }
            scaled(text, 1000)
        }
    };
    let Some(millis) = millis else {
        bail!("invalid CPU limit `{input}`: {CPU_EXAMPLE}");
    };
    match u32::try_from(millis) {
        Ok(millis) => Ok(Some(millis)),
        Err(_) => bail!("invalid CPU limit `{input}`: too large; {CPU_EXAMPLE}"),
    }
}

/// `digits[.digits]` times `unit`, rounded down; `None` unless `number` has that shape.
fn scaled(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
        return None;
    }
    // More digits than this cannot make a value that fits, and would overflow u128.
    if whole.len() > 20 || fraction.len() > 20 {
        return None;
    }
    let whole: u128 = whole.parse().ok()?;
    let mut value = whole.checked_mul(unit)?;
    if !fraction.is_empty() {
        let numerator: u128 = fraction.parse().ok()?;
        let denominator = 10u128.pow(u32::try_from(fraction.len()).ok()?);
        value = value.checked_add(numerator.checked_mul(unit)? / denominator)?;
    }
    Some(value)
}

/// `512 MiB`, `1.5 GiB`, `34.2 MiB`: the largest binary unit it has at least one of, with at
/// most one decimal.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && n >> (10 * (unit + 1)) > 0 {
        unit += 1;
    }
    if unit == 0 {
        return format!("{n} B");
    }
    let value = n as f64 / (1u64 << (10 * unit)) as f64;
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

/// Thousandths of a core as cores: `0.5`, `2`, `1.25`.
pub fn cores(millis: u32) -> String {
    let (whole, fraction) = (millis / 1000, millis % 1000);
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:03}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn memory_is_read_in_binary_units() {
        for (input, bytes) in [
            ("512M", 512 * MIB),
            ("512m", 512 * MIB),
            ("512MB", 512 * MIB),
            ("300MiB", 300 * MIB),
            ("300 MiB", 300 * MIB),
            ("1G", 1024 * MIB),
            ("1.5G", 1536 * MIB),
            ("0.5g", 512 * MIB),
            ("64K", 64 * 1024),
            ("536870912", 512 * MIB),
            ("100b", 100),
            ("1T", 1 << 40),
        ] {
            assert_eq!(parse_memory(input).unwrap(), Some(bytes), "{input}");
        }
        assert_eq!(parse_memory("none").unwrap(), None);
        assert_eq!(parse_memory("NONE").unwrap(), None);
    }

    #[test]
    fn bad_memory_is_refused_naming_it_with_an_example() {
        for input in [
            "",
            "M",
            "lots",
            "512X",
            "1.5.5G",
            ".5G",
            "5.G",
            "-1G",
            "1e9",
            "1G2",
            "99999999999T",
        ] {
            let message = parse_memory(input).unwrap_err().to_string();
            assert!(message.contains(&format!("`{input}`")), "{message}");
            assert!(message.contains("`512M`"), "{message}");
        }
    }

    #[test]
    fn cpu_is_read_as_cores_or_thousandths() {
        for (input, millis) in [
            ("0.5", 500),
            ("2", 2000),
            ("1.25", 1250),
            ("0.001", 1),
            ("500m", 500),
            ("10m", 10),
        ] {
            assert_eq!(parse_cpu(input).unwrap(), Some(millis), "{input}");
        }
        assert_eq!(parse_cpu("none").unwrap(), None);
    }

    #[test]
    fn bad_cpu_is_refused_naming_it_with_an_example() {
        for input in ["", "half", "0.5m", "500M", "-1", "1.", "5000000", "m"] {
            let message = parse_cpu(input).unwrap_err().to_string();
            assert!(message.contains(&format!("`{input}`")), "{message}");
            assert!(message.contains("`0.5`"), "{message}");
        }
        let message = parse_cpu("0.0001").unwrap_err().to_string();
        assert!(message.contains("thousandth"), "{message}");
    }

    #[test]
    fn sizes_and_cores_read_short() {
        assert_eq!(bytes(512 * MIB), "512 MiB");
        assert_eq!(bytes(1536 * MIB), "1.5 GiB");
        assert_eq!(bytes(35_861_709), "34.2 MiB");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(64 << 30), "64 GiB");
        assert_eq!(cores(500), "0.5");
        assert_eq!(cores(2000), "2");
        assert_eq!(cores(1250), "1.25");
        assert_eq!(cores(10), "0.01");
    }

    proptest! {
        #[test]
        fn parsing_never_panics(input in ".{0,24}") {
            let _ = parse_memory(&input);
            let _ = parse_cpu(&input);
        }

        #[test]
        fn shown_sizes_parse_back_close(n in 0u64..(1 << 40)) {
            let shown = bytes(n).replace(' ', "");
            let back = parse_memory(&shown).unwrap().unwrap();
            prop_assert!(back.abs_diff(n) <= n / 20 + 1, "{n} -> {shown} -> {back}");
        }

        #[test]
        fn shown_cores_parse_back_exactly(millis in 0u32..1_000_000) {
            prop_assert_eq!(parse_cpu(&cores(millis)).unwrap(), Some(millis));
        }
    }
}
