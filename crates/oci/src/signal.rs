//! Signals a container's process can be sent, by number, named like `kill -l` does.

use std::fmt;

/// A signal number between 1 and 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signal(i32);

/// A number that is not a signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signal number {0} is outside 1..=64")]
pub struct SignalError(pub i32);

const NAMES: [(i32, &str); 7] = [
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGTERM, "SIGTERM"),
];

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    pub const TERM: Signal = Signal(libc::SIGTERM);

    pub fn new(number: i32) -> Result<Self, SignalError> {
        if (1..=64).contains(&number) {
            Ok(Self(number))
        } else {
            Err(SignalError(number))
        }
    }

    pub fn number(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMES.iter().find(|(n, _)| *n == self.0) {
            Some((_, name)) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_signals_print_their_names_and_others_their_number() {
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(Signal::KILL.number(), 9);
        assert_eq!(Signal::new(40).unwrap().to_string(), "signal 40");
    }

    #[test]
    fn zero_and_numbers_above_64_are_not_signals() {
        assert_eq!(Signal::new(0), Err(SignalError(0)));
        assert_eq!(Signal::new(65), Err(SignalError(65)));
    }
}
