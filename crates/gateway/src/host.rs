//! Host normalisation: the form of a `Host` header or URI authority that route lookups use.

use std::borrow::Cow;

/// Lowercases `raw`, strips a port and one trailing dot, and checks what is left is a plausible
/// host name or IP literal. Returns `None` for anything else (empty, spaces, stray colons, bytes
/// no host name has), which the gateway answers with 400.
///
/// Borrows when nothing needs lowercasing, which is the usual case.
pub(crate) fn normalize_host(raw: &str) -> Option<Cow<'_, str>> {
    let name = strip_port(raw)?;
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 255 || name.ends_with('.') {
        return None;
    }
    let bracketed = name.starts_with('[');
    let valid = if bracketed {
        // An IPv6 literal: `[` hex digits, colons and dots (an embedded IPv4) `]`.
        name.len() > 2
            && name.ends_with(']')
            && name[1..name.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    if !valid {
        return None;
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(name.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(name))
    }
}

/// Splits off `:port` (digits, possibly none). A bracketed IPv6 literal keeps its colons.
fn strip_port(raw: &str) -> Option<&str> {
    let (name, port) = if raw.starts_with('[') {
        let end = raw.find(']')?;
        let (name, rest) = raw.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (name, port),
            None if rest.is_empty() => (name, ""),
            None => return None,
        }
    } else {
        match raw.split_once(':') {
            Some((name, port)) => (name, port),
            None => (raw, ""),
        }
    };
    (port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::normalize_host;
    use proptest::prelude::*;

    fn norm(raw: &str) -> Option<String> {
        normalize_host(raw).map(|h| h.into_owned())
    }

    #[test]
    fn port_case_and_trailing_dot_are_ignored() {
        assert_eq!(
            norm("Shop.Example.COM:8080").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(
            norm("shop.example.com.").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(
            norm("shop.example.com.:443").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(norm("127.0.0.1:9104").as_deref(), Some("127.0.0.1"));
        assert_eq!(norm("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(norm("[FE80::1]").as_deref(), Some("[fe80::1]"));
        assert_eq!(norm("localhost:").as_deref(), Some("localhost"));
    }

    #[test]
    fn malformed_hosts_are_refused() {
        for raw in [
            "", ":80", ".", "a..", "a b", "a:b", "a:80:90", "[::1", "[::1]x", "[]", "<x>", "a/b",
        ] {
            assert_eq!(norm(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn already_normal_hosts_are_borrowed() {
        assert!(matches!(
            normalize_host("shop.localhost:9104"),
            Some(std::borrow::Cow::Borrowed("shop.localhost"))
        ));
    }

    proptest! {
        #[test]
        fn normalised_hosts_are_lowercase_portless_and_stable(raw in "\\PC{0,40}") {
            if let Some(host) = normalize_host(&raw) {
                prop_assert!(!host.is_empty());
                prop_assert!(!host.bytes().any(|b| b.is_ascii_uppercase()));
                prop_assert!(!host.ends_with('.'));
                prop_assert!(host.starts_with('[') || !host.contains(':'));
                prop_assert!(host.bytes().all(|b| b.is_ascii_graphic()));
                // Normalising again changes nothing.
                let again = normalize_host(&host);
                prop_assert_eq!(again.as_deref(), Some(&*host));
            }
        }

        #[test]
        fn any_port_and_case_reach_the_same_host(
            name in "[a-zA-Z0-9][a-zA-Z0-9.-]{0,30}[a-zA-Z0-9]",
            port in proptest::option::of(0u16..),
        ) {
            let raw = match port {
                Some(port) => format!("{name}:{port}"),
                None => name.clone(),
            };
            prop_assert_eq!(norm(&raw), Some(name.to_ascii_lowercase()));
        }
    }
}
