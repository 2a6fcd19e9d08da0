//! Splits a process command line into argv, as a shell would split words, because images have
//! no shell to do it. Shell syntax that needs a shell (pipes, `&&`, redirects, substitutions) is
//! refused with a reason, not passed on as literal arguments.

/// Why a command line cannot be run without a shell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "command `{input}` {problem}; images have no shell, so write one program and its arguments{hint}"
)]
pub struct CommandLineError {
    pub input: String,
    pub problem: String,
    hint: &'static str,
}

/// Splits `input` into words: whitespace separates, single quotes keep everything literally,
/// double quotes keep spaces (with `\"` and `\\` escapes), a backslash outside quotes escapes
/// the next character.
pub fn split_command_line(input: &str) -> Result<Vec<String>, CommandLineError> {
    let fail = |problem: String, hint: &'static str| {
        Err(CommandLineError {
            input: input.to_owned(),
            problem,
            hint,
        })
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return fail("has an unclosed single quote".into(), ""),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\')) => {
                            word.push(chars.next().expect("peeked"));
                        }
                        Some('`') => return fail("uses a command substitution (`)".into(), ""),
                        Some('$') if chars.peek() == Some(&'(') => {
                            return fail("uses a command substitution ($(...))".into(), "");
                        }
                        Some(c) => word.push(c),
                        None => return fail("has an unclosed double quote".into(), ""),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return fail("ends with a lone backslash".into(), ""),
            },
            '|' | '&' | ';' | '<' | '>' => {
                let hint = " (for several programs, use several process types)";
                return fail(format!("uses the shell operator `{c}`"), hint);
            }
            '`' => return fail("uses a command substitution (`)".into(), ""),
            '$' if chars.peek() == Some(&'(') => {
                return fail("uses a command substitution ($(...))".into(), "");
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return fail("is empty".into(), "");
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_command_line(s).unwrap()
    }

    #[test]
    fn words_are_split_like_a_shell_splits_them() {
        assert_eq!(
            split("python app.py --port 8080"),
            ["python", "app.py", "--port", "8080"]
        );
        assert_eq!(split("  a   b  "), ["a", "b"]);
        assert_eq!(
            split(r#"echo "hello world" 'it''s' a\ b"#),
            ["echo", "hello world", "its", "a b"]
        );
        assert_eq!(
            split(r#"say "a \"quoted\" word""#),
            ["say", r#"a "quoted" word"#]
        );
        assert_eq!(split("run ''"), ["run", ""]);
        assert_eq!(
            split("serve --port=$PORT"),
            ["serve", "--port=$PORT"],
            "variables stay for Spread to expand"
        );
    }

    #[test]
    fn shell_syntax_is_refused_with_the_reason() {
        for (input, problem) in [
            ("a | b", "operator `|`"),
            ("a && b", "operator `&`"),
            ("a > log", "operator `>`"),
            ("a; b", "operator `;`"),
            ("echo `id`", "substitution"),
            ("echo $(id)", "substitution"),
            ("echo \"$(id)\"", "substitution"),
            ("'open", "unclosed single quote"),
            ("\"open", "unclosed double quote"),
            ("", "is empty"),
            ("a \\", "lone backslash"),
        ] {
            let err = split_command_line(input).unwrap_err().to_string();
            assert!(
                err.contains(problem) && err.contains("no shell"),
                "{input:?}: {err}"
            );
        }
        assert_eq!(
            split("'a | b'"),
            ["a | b"],
            "quoted operators are plain text"
        );
    }

    proptest! {
        #[test]
        fn splitting_arbitrary_text_never_panics(s in ".*") {
            let _ = split_command_line(&s);
        }

        #[test]
        fn plain_words_come_back_unchanged(words in proptest::collection::vec("[a-zA-Z0-9_./=:-]{1,8}", 1..6)) {
            prop_assert_eq!(split_command_line(&words.join(" ")).unwrap(), words);
        }
    }
}
