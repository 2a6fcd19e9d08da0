//! Validated names: app names, process types and config keys. Parsing is the only way to make
//! one, so a value of these types is always valid.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name was refused. The message names the input and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{input}`: {rule}")]
pub struct NameError {
    pub what: &'static str,
    pub input: String,
    pub rule: &'static str,
}

/// Checks a DNS label: 1–63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`.
fn check_dns_label(what: &'static str, input: &str) -> Result<(), NameError> {
    const RULE: &str =
        "use 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit";
    let fail = || NameError {
        what,
        input: input.to_owned(),
        rule: RULE,
    };
    if input.is_empty() || input.len() > 63 || input.starts_with('-') || input.ends_with('-') {
        return Err(fail());
    }
    if !input
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(fail());
    }
    Ok(())
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }
    };
}

string_newtype!(
    /// An app name: a DNS label, because it becomes the host name `<app>.<domain>`.
    AppName
);

impl AppName {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        check_dns_label("app name", input)?;
        Ok(Self(input.to_owned()))
    }
}

string_newtype!(
    /// A process type from a Procfile (`web`, `worker`, …): a DNS label, because instance names
    /// are built from it.
    ProcessType
);

impl ProcessType {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        check_dns_label("process type", input)?;
        Ok(Self(input.to_owned()))
    }

    pub fn web() -> Self {
        Self("web".to_owned())
    }
}

string_newtype!(
    /// A config var name: a valid environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
    ConfigKey
);

impl ConfigKey {
    /// Longest accepted key, in bytes.
    pub const MAX_LEN: usize = 255;

    pub fn parse(input: &str) -> Result<Self, NameError> {
        let fail = |rule| {
            Err(NameError {
                what: "config key",
                input: input.to_owned(),
                rule,
            })
        };
        let mut bytes = input.bytes();
        match bytes.next() {
            None => return fail("a config key cannot be empty"),
            Some(b) if !(b.is_ascii_alphabetic() || b == b'_') => {
                return fail("a config key must start with a letter or '_'");
            }
            Some(_) => {}
        }
        if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return fail("a config key may contain only letters, digits and '_'");
        }
        if input.len() > Self::MAX_LEN {
            return fail("a config key may be at most 255 characters long");
        }
        if input.starts_with("SPREAD_") {
            return fail("names starting with SPREAD_ are set by Spread itself");
        }
        Ok(Self(input.to_owned()))
    }
}

string_newtype!(
    /// A custom domain an app is served at, e.g. `www.example.com`: lowercase, without a port
    /// or a trailing dot, at least two DNS labels, and not an IP address.
    DomainName
);

impl DomainName {
    /// Longest accepted domain, in bytes (DNS's limit).
    pub const MAX_LEN: usize = 253;

    /// Accepts the usual spellings (`WWW.Example.com.`) and keeps the one canonical form.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let fail = |rule| NameError {
            what: "domain",
            input: input.to_owned(),
            rule,
        };
        let domain = input
            .strip_suffix('.')
            .unwrap_or(input)
            .to_ascii_lowercase();
        if domain.is_empty() || domain.len() > Self::MAX_LEN {
            return Err(fail("a domain is 1 to 253 characters long"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(fail(
                "a domain has at least two labels, like example.com; apps are already served at <app>.<domain>",
            ));
        }
        if labels.iter().any(|l| check_dns_label("domain", l).is_err()) {
            return Err(fail(
                "each label between dots is 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit",
            ));
        }
        if labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(fail(
                "an IP address is not a domain; use a name that resolves to this server",
            ));
        }
        Ok(Self(domain))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn app_names_follow_the_dns_label_rule() {
        for ok in ["a", "shop", "shop-2", "0", &"a".repeat(63)] {
            assert!(AppName::parse(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "",
            "-shop",
            "shop-",
            "Shop",
            "sh_op",
            "shop.x",
            "ü",
            &"a".repeat(64),
        ] {
            let err = AppName::parse(bad).unwrap_err();
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains("a-z, 0-9"), "{err}");
        }
    }

    #[test]
    fn config_keys_are_environment_variable_names() {
        for ok in ["A", "_", "DATABASE_URL", "a1", "PORT"] {
            assert!(ConfigKey::parse(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "SPREAD_APP", "É"] {
            assert!(ConfigKey::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(ConfigKey::parse(&"A".repeat(256)).is_err());
    }

    #[test]
    fn invalid_names_cannot_be_deserialized() {
        assert!(serde_json::from_str::<AppName>("\"Bad Name\"").is_err());
        assert_eq!(
            serde_json::from_str::<AppName>("\"good\"")
                .unwrap()
                .as_str(),
            "good"
        );
    }

    #[test]
    fn domains_are_canonical_host_names() {
        for (input, canonical) in [
            ("example.com", "example.com"),
            ("WWW.Example.COM.", "www.example.com"),
            ("a-b.c0.io", "a-b.c0.io"),
        ] {
            assert_eq!(DomainName::parse(input).unwrap().as_str(), canonical);
        }
        for bad in [
            "",
            ".",
            "localhost",
            "example..com",
            "-a.com",
            "a_b.com",
            "a.com:80",
            "10.0.0.1",
            "exa mple.com",
            "*.example.com",
            "ü.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            let err = DomainName::parse(bad).unwrap_err();
            assert_eq!(err.input, bad, "{bad} should be refused");
        }
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_strings_never_panics(s in ".*") {
            let _ = DomainName::parse(&s);
            let _ = AppName::parse(&s);
            let _ = ConfigKey::parse(&s);
            let _ = ProcessType::parse(&s);
        }

        #[test]
        fn accepted_app_names_round_trip(s in "[a-z0-9][a-z0-9-]{0,61}[a-z0-9]") {
            let name = AppName::parse(&s).unwrap();
            prop_assert_eq!(name.as_str(), s.as_str());
        }
    }
}
