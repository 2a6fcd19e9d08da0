//! Hostile layers, part two: forbidden entry types, resource limits, ids and broken streams.

mod common;

use std::fs;

use common::{Entry, Sandbox, gzip, refusal, tarball};
use spread_image::{Compression, MAX_HEADER_BYTES, Refusal, UnpackError, UnpackOptions};
use tar::EntryType;

#[test]
fn device_nodes_and_fifos_are_refused() {
    let cases = [
        (
            EntryType::Char,
            Refusal::DeviceNode { kind: "character" },
            "is a character device",
        ),
        (
            EntryType::Block,
            Refusal::DeviceNode { kind: "block" },
            "is a block device",
        ),
        (EntryType::Fifo, Refusal::Fifo, "is a FIFO"),
    ];
    for (kind, expected, words) in cases {
        let sandbox = Sandbox::new();
        let layer = tarball(&[Entry::new(kind, "dev/sda")]);
        let (path, rule, message) = refusal(sandbox.unpack(&layer));
        assert_eq!((path.as_str(), rule), ("dev/sda", expected));
        assert!(message.contains(words), "{message}");
        assert!(!sandbox.dest.join("dev/sda").exists());
        sandbox.assert_nothing_outside_dest(&[]);
    }
}

#[test]
fn file_over_the_per_file_limit_is_refused_before_it_is_written() {
    let sandbox = Sandbox::new();
    let opts = UnpackOptions {
        max_file_bytes: 1024,
        ..UnpackOptions::default()
    };
    let layer = tarball(&[Entry::file("big", vec![7u8; 1025])]);
    let (_, rule, message) = refusal(sandbox.unpack_with(&layer, Compression::None, &opts));
    assert_eq!(
        rule,
        Refusal::FileTooLarge {
            size: 1025,
            max: 1024
        }
    );
    assert_eq!(
        message,
        "layer entry \"big\" is 1025 bytes, over the limit of 1024 bytes per file"
    );
    assert!(!sandbox.dest.join("big").exists());
    sandbox.assert_nothing_outside_dest(&[]);
}

#[test]
fn gzip_bomb_stops_at_the_total_size_limit() {
    let sandbox = Sandbox::new();
    let file_size = 256 << 10;
    let entries: Vec<Entry> = (0..64)
        .map(|i| Entry::file(format!("zeros-{i}"), vec![0u8; file_size]))
        .collect();
    let bomb = gzip(&tarball(&entries));
    assert!(
        bomb.len() < file_size / 8,
        "a 16 MiB layer compresses to {} bytes",
        bomb.len()
    );
    let max_total_bytes = 8 * file_size as u64;
    let opts = UnpackOptions {
        max_file_bytes: file_size as u64,
        max_total_bytes,
        ..UnpackOptions::default()
    };
    let (path, rule, _) = refusal(sandbox.unpack_with(&bomb, Compression::Gzip, &opts));
    assert_eq!(path, "zeros-8");
    assert_eq!(
        rule,
        Refusal::LayerTooLarge {
            max: max_total_bytes
        }
    );
    assert_eq!(fs::read_dir(&sandbox.dest).unwrap().count(), 8);
    sandbox.assert_nothing_outside_dest(&[]);
}

#[test]
fn data_hidden_in_non_file_entries_stops_at_the_stream_limit() {
    let sandbox = Sandbox::new();
    let mut padded_dir = Entry::dir("padded");
    padded_dir.data = vec![0u8; 8 << 20];
    let bomb = gzip(&tarball(&[padded_dir]));
    let opts = UnpackOptions {
        max_total_bytes: 1 << 20,
        max_entries: 4,
        ..UnpackOptions::default()
    };
    let err = sandbox
        .unpack_with(&bomb, Compression::Gzip, &opts)
        .unwrap_err();
    let limit = opts.stream_limit();
    assert!(
        matches!(err, UnpackError::StreamTooLarge { limit: l } if l == limit),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("layer stream is over the limit of {limit} uncompressed bytes")
    );
    sandbox.assert_nothing_outside_dest(&[]);
}

#[test]
fn too_many_entries_are_refused() {
    let sandbox = Sandbox::new();
    let entries: Vec<Entry> = (0..11).map(|i| Entry::dir(format!("d{i}"))).collect();
    let opts = UnpackOptions {
        max_entries: 10,
        ..UnpackOptions::default()
    };
    let (path, rule, _) =
        refusal(sandbox.unpack_with(&tarball(&entries), Compression::None, &opts));
    assert_eq!(
        (path.as_str(), rule),
        ("d10", Refusal::TooManyEntries { max: 10 })
    );
    assert!(!sandbox.dest.join("d10").exists());
    sandbox.assert_nothing_outside_dest(&[]);
}

#[test]
fn ids_outside_the_shiftable_range_are_refused() {
    let cases = [
        (
            Entry::file("f", "x").owner(65536, 0),
            Refusal::IdOutOfRange {
                which: "uid",
                id: 65536,
            },
        ),
        (
            Entry::file("f", "x").owner(0, 70000),
            Refusal::IdOutOfRange {
                which: "gid",
                id: 70000,
            },
        ),
    ];
    for (entry, expected) in cases {
        let sandbox = Sandbox::new();
        let (_, rule, message) = refusal(sandbox.unpack(&tarball(&[entry])));
        assert_eq!(rule, expected);
        assert!(
            message.contains("only ids below 65536 can be shifted"),
            "{message}"
        );
        assert!(!sandbox.dest.join("f").exists());
    }
}

#[test]
fn shift_that_would_overflow_an_id_is_refused() {
    let sandbox = Sandbox::new();
    let opts = UnpackOptions {
        id_shift: u32::MAX - 10,
        ..UnpackOptions::default()
    };
    let layer = tarball(&[Entry::file("f", "x").owner(11, 0)]);
    let (_, rule, _) = refusal(sandbox.unpack_with(&layer, Compression::None, &opts));
    assert_eq!(
        rule,
        Refusal::IdShiftOverflow {
            which: "uid",
            id: 11,
            shift: u32::MAX - 10
        }
    );
}

#[test]
fn truncated_and_garbage_streams_fail_cleanly() {
    let sandbox = Sandbox::new();
    let layer = tarball(&[Entry::file("f", vec![1u8; 4096])]);
    let err = sandbox.unpack(&layer[..1024]).unwrap_err();
    assert!(err.to_string().contains("\"f\""), "{err}");
    let err = sandbox.unpack_with(
        b"not gzip at all",
        Compression::Gzip,
        &UnpackOptions::default(),
    );
    assert!(matches!(err, Err(UnpackError::Malformed(_))), "{err:?}");
    sandbox.assert_nothing_outside_dest(&[]);
}

#[test]
fn oversized_long_names_and_pax_records_stop_before_they_fill_memory() {
    for kind in [EntryType::GNULongName, EntryType::XHeader] {
        let sandbox = Sandbox::new();
        let mut header = Entry::new(kind, "././@LongLink");
        header.data = vec![b'a'; 4 << 20];
        let layer = gzip(&tarball(&[
            Entry::file("first", "x"),
            header,
            Entry::file("next", "y"),
        ]));
        let opts = UnpackOptions::default();
        let err = sandbox
            .unpack_with(&layer, Compression::Gzip, &opts)
            .unwrap_err();
        let expected_after = Some("first".to_owned());
        assert!(
            matches!(&err, UnpackError::HeadersTooLarge { after, limit }
                if *after == expected_after && *limit == MAX_HEADER_BYTES),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "layer has over {MAX_HEADER_BYTES} bytes of tar headers \
                 (long names or PAX records) after entry \"first\""
            )
        );
        assert!(!sandbox.dest.join("next").exists());
        sandbox.assert_nothing_outside_dest(&[]);
    }
}

#[test]
fn long_names_within_the_limit_still_unpack() {
    let sandbox = Sandbox::new();
    let long = format!("{}/file", "d".repeat(200));
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(2);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    builder.append_data(&mut header, &long, &b"ok"[..]).unwrap();
    sandbox.unpack(&builder.into_inner().unwrap()).unwrap();
    assert_eq!(fs::read_to_string(sandbox.dest.join(&long)).unwrap(), "ok");
}
