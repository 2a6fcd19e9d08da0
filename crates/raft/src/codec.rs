//! The on-disk encoding of log entries and store metadata: JSON behind a one-byte format version.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Format of every value this crate writes to redb. Bump it when the encoding changes, and teach
/// `decode` to read the previous version.
pub(crate) const FORMAT_VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("stored value is empty")]
    Empty,
    #[error(
        "stored value has format version {0}, this binary reads only {FORMAT_VERSION}; upgrade spread"
    )]
    UnknownVersion(u8),
    #[error("stored value is not valid: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Encodes a value as the version byte followed by its JSON.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = vec![FORMAT_VERSION];
    // Entries, votes and log ids are trees of structs, strings and numbers, and every map in a
    // `Command` is keyed by a string newtype, so serializing cannot fail.
    serde_json::to_writer(&mut bytes, value).expect("raft values serialize to JSON");
    bytes
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&FORMAT_VERSION, json)) => Ok(serde_json::from_slice(json)?),
        Some((&version, _)) => Err(DecodeError::UnknownVersion(version)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_behind_the_version_byte() {
        let bytes = encode(&vec![1u64, 2, 3]);
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Vec<u64>>(&bytes).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn an_unknown_version_is_an_error_not_a_panic() {
        let err = decode::<Vec<u64>>(b"\x09[1]").unwrap_err();
        assert!(matches!(err, DecodeError::UnknownVersion(9)), "{err}");
        assert!(matches!(decode::<Vec<u64>>(b""), Err(DecodeError::Empty)));
        assert!(matches!(
            decode::<Vec<u64>>(b"\x01{"),
            Err(DecodeError::Malformed(_))
        ));
    }
}
