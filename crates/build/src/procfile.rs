//! `Procfile`: one `type: command` per line, as Heroku reads it. Commands are split into argv
//! here, because images have no shell; `release` is the command run once per release.

use std::collections::BTreeMap;

use spread_core::{ProcessType, split_command_line};

/// The process types of a Procfile with their commands, and the `release` command if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Procfile {
    pub processes: BTreeMap<ProcessType, Vec<String>>,
    pub release: Option<Vec<String>>,
}

/// A Procfile line that cannot be used; `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {
    #[error(
        "Procfile line {line}: `{text}` is not `type: command`; write e.g. `web: python3 app.py`"
    )]
    NotAnEntry { line: usize, text: String },
    #[error("Procfile line {line}: {reason}")]
    BadType { line: usize, reason: String },
    #[error("Procfile line {line}: `{name}` has no command")]
    Empty { line: usize, name: String },
    #[error("Procfile line {line}: `{name}` appears twice (first on line {first})")]
    Duplicate {
        line: usize,
        first: usize,
        name: String,
    },
    #[error("Procfile line {line}: {reason}")]
    BadCommand { line: usize, reason: String },
    #[error("the Procfile has no process types; add a line such as `web: python3 app.py`")]
    NoProcesses,
}

/// Parses a Procfile. Blank lines and lines starting with `#` are skipped.
pub fn parse_procfile(text: &str) -> Result<Procfile, ProcfileError> {
    let mut procfile = Procfile::default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let entry = raw.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let Some((name, command)) = entry.split_once(':') else {
            return Err(ProcfileError::NotAnEntry {
                line,
                text: entry.to_owned(),
            });
        };
        let (name, command) = (name.trim(), command.trim());
        if let Some(&first) = seen.get(name) {
            return Err(ProcfileError::Duplicate {
                line,
                first,
                name: name.to_owned(),
            });
        }
        seen.insert(name.to_owned(), line);
        if command.is_empty() {
            return Err(ProcfileError::Empty {
                line,
                name: name.to_owned(),
            });
        }
        let argv = split_command_line(command).map_err(|e| ProcfileError::BadCommand {
            line,
            reason: e.to_string(),
        })?;
        if name == "release" {
            procfile.release = Some(argv);
            continue;
        }
        let process = ProcessType::parse(name).map_err(|e| ProcfileError::BadType {
            line,
            reason: e.to_string(),
        })?;
        procfile.processes.insert(process, argv);
    }
    if procfile.processes.is_empty() {
        return Err(ProcfileError::NoProcesses);
    }
    Ok(procfile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn process_types_and_the_release_command_are_read_with_comments_skipped() {
        let procfile = parse_procfile(
            "# the web server\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n\n\
             worker:   python3 worker.py  \nrelease: python3 manage.py migrate\n",
        )
        .unwrap();
        assert_eq!(
            procfile.processes[&ProcessType::web()],
            argv(&["gunicorn", "app:app", "--bind", "0.0.0.0:$PORT"])
        );
        assert_eq!(
            procfile.processes[&ProcessType::parse("worker").unwrap()],
            argv(&["python3", "worker.py"])
        );
        assert_eq!(
            procfile.release,
            Some(argv(&["python3", "manage.py", "migrate"]))
        );
        assert_eq!(procfile.processes.len(), 2);
    }

    #[test]
    fn each_bad_line_is_named_with_what_to_do() {
        let cases = [
            (
                "web python3 app.py",
                "line 1: `web python3 app.py` is not `type: command`",
            ),
            (
                "web: a\nweb: b",
                "line 2: `web` appears twice (first on line 1)",
            ),
            ("web:", "line 1: `web` has no command"),
            ("Web_1: app", "line 1: "),
            ("web: python3 app.py | tee log", "images have no shell"),
            ("# nothing\n", "has no process types"),
            ("release: migrate", "has no process types"),
        ];
        for (text, expected) in cases {
            let err = parse_procfile(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in ".{0,200}") {
            let _ = parse_procfile(&text);
        }
    }
}
