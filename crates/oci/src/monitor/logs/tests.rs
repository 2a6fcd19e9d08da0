//! Reading back what `LogWriter` wrote, across rotations.

use super::*;
use crate::monitor::LogLimits;
use crate::monitor::writer::LogWriter;

fn setup(max_file_bytes: u64, files: u32) -> (tempfile::TempDir, LogWriter) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    dir.create().unwrap();
    let limits = LogLimits {
        max_file_bytes,
        files,
    };
    let writer = LogWriter::open(&dir, limits).unwrap();
    (tmp, writer)
}

fn write(writer: &mut LogWriter, range: std::ops::Range<u32>) {
    for n in range {
        let stream = if n % 2 == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        let text = format!("line {n:04}");
        writer
            .write(Timestamp::now(), stream, text.as_bytes())
            .unwrap();
    }
    writer.flush().unwrap();
}

fn texts(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(|l| l.text.clone()).collect()
}

fn numbered(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| format!("line {n:04}")).collect()
}

#[test]
fn a_record_parses_into_its_time_stream_and_text_and_junk_does_not() {
    let line = LogLine::parse("2026-03-01T12:00:00.123Z stderr a  b ").unwrap();
    assert_eq!(line.at.to_string(), "2026-03-01T12:00:00.123Z");
    assert_eq!((line.stream, line.text.as_str()), (Stream::Stderr, "a  b "));
    assert_eq!(
        LogLine::parse("2026-03-01T12:00:00.123Z stdout ")
            .unwrap()
            .text,
        ""
    );
    assert_eq!(LogLine::parse("2026-03-01T12:00:00.123Z stdin x"), None);
    assert_eq!(LogLine::parse("yesterday stdout x"), None);
}

#[test]
fn the_last_lines_come_from_the_rotated_files_and_current_in_order() {
    let (tmp, mut writer) = setup(4096, 3);
    write(&mut writer, 0..500);
    assert!(
        StateDir::new(tmp.path()).log_file(2).exists(),
        "rotated twice"
    );
    let all = read_logs(tmp.path(), usize::MAX).unwrap();
    let first: u32 = all[0].text[5..].parse().unwrap();
    assert!(first > 0, "the oldest lines were rotated out");
    assert_eq!(texts(&all), numbered(first..500));
    assert_eq!(
        texts(&read_logs(tmp.path(), 150).unwrap()),
        numbered(350..500)
    );
    for line in &all {
        let odd = line.text.ends_with(['1', '3', '5', '7', '9']);
        assert_eq!(line.stream == Stream::Stderr, odd, "{line:?}");
    }
}

#[test]
fn no_logs_yet_is_no_lines() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(read_logs(tmp.path(), 10).unwrap().is_empty());
    let (lines, position) = follow(tmp.path(), Position::start()).unwrap();
    assert!(lines.is_empty());
    assert_eq!(position, Position::start());
}

#[test]
fn following_from_the_tail_returns_each_new_line_once_across_rotations() {
    let (tmp, mut writer) = setup(4096, 3);
    write(&mut writer, 0..10);
    let (lines, mut position) = tail(tmp.path(), 3).unwrap();
    assert_eq!(texts(&lines), numbered(7..10));
    let mut seen = Vec::new();
    for batch in [10..15, 15..150, 150..151, 151..151, 151..250] {
        write(&mut writer, batch);
        let (lines, next) = follow(tmp.path(), position).unwrap();
        seen.extend(texts(&lines));
        position = next;
    }
    assert_eq!(seen, numbered(10..250));
}

#[test]
fn a_half_written_last_line_is_left_for_the_next_poll() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    dir.create().unwrap();
    let whole = "2026-03-01T12:00:00.000Z stdout one\n";
    std::fs::write(
        dir.log_file(0),
        format!("{whole}2026-03-01T12:00:00.001Z std"),
    )
    .unwrap();
    let (lines, position) = follow(tmp.path(), Position::start()).unwrap();
    assert_eq!(texts(&lines), ["one"]);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.log_file(0))
        .unwrap();
    std::io::Write::write_all(&mut file, b"out two\n").unwrap();
    let (lines, _) = follow(tmp.path(), position).unwrap();
    assert_eq!(texts(&lines), ["two"]);
}
