//! Container ids: the only names `runc` and the fake accept.

use std::fmt;
use std::str::FromStr;

/// The longest id accepted; runc allows more, but ids also become cgroup and file names.
pub const MAX_ID_LEN: usize = 64;

/// A container id: 1 to 64 characters of `a-z`, `0-9`, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId(String);

/// Why a string is not a valid container id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("container id is empty")]
    Empty,
    #[error("container id {id:?} is {len} characters long, the limit is {MAX_ID_LEN}")]
    TooLong { id: String, len: usize },
    #[error("container id {id:?} contains {ch:?}; only a-z, 0-9, '_' and '-' are allowed")]
    BadChar { id: String, ch: char },
}

impl ContainerId {
    /// Parses `id`, refusing anything runc, cgroup paths or file names could misread.
    pub fn parse(id: &str) -> Result<Self, IdError> {
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        let len = id.chars().count();
        if len > MAX_ID_LEN {
            return Err(IdError::TooLong {
                id: id.to_owned(),
                len,
            });
        }
        if let Some(ch) = id
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
        {
            return Err(IdError::BadChar {
                id: id.to_owned(),
                ch,
            });
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ContainerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lower_case_letters_digits_dashes_and_underscores_are_accepted() {
        let id = ContainerId::parse("web-1_a9").unwrap();
        assert_eq!(id.as_str(), "web-1_a9");
        assert_eq!(id.to_string(), "web-1_a9");
    }

    #[test]
    fn an_empty_id_is_refused() {
        assert_eq!(ContainerId::parse(""), Err(IdError::Empty));
    }

    #[test]
    fn an_id_of_65_characters_is_refused_and_64_is_accepted() {
        assert!(ContainerId::parse(&"a".repeat(64)).is_ok());
        let err = ContainerId::parse(&"a".repeat(65)).unwrap_err();
        assert!(matches!(err, IdError::TooLong { len: 65, .. }));
    }

    #[test]
    fn upper_case_slashes_dots_and_spaces_are_refused_with_the_offending_character() {
        for (bad, ch) in [("Web", 'W'), ("a/b", '/'), ("..", '.'), ("a b", ' ')] {
            let err = ContainerId::parse(bad).unwrap_err();
            assert_eq!(err, IdError::BadChar { id: bad.into(), ch });
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    proptest! {
        #[test]
        fn every_accepted_id_is_safe_as_a_file_name(s in "\\PC{0,80}") {
            if let Ok(id) = ContainerId::parse(&s) {
                prop_assert!(!id.as_str().is_empty() && id.as_str().len() <= MAX_ID_LEN);
                prop_assert!(!id.as_str().contains('/') && !id.as_str().contains('.'));
            }
        }
    }
}
