//! The input errors every layer shares: a value that did not parse (`BadValue`, the bare
//! reason from a parser) and a bad or missing input named by its flag (`ConfigError`).
//!
//! Each error knows its own exit code (`exit_code`), so `main` never has to guess it by
//! looking inside an error chain: bad input is always 2, before any traffic is sent.
//!
//! A leaf: imports nothing from the crate. Used by `units`, `pacer`, `stream`, `serve`,
//! `engine::plan`, `report::threshold` and `cli`.

/// The exit code for bad input (a usage error).
pub const EXIT_USAGE: i32 = 2;
/// The exit code for a failure at run time (e.g. the target was never reachable).
pub const EXIT_RUNTIME: i32 = 1;
/// The exit code for a threshold that did not hold.
pub const EXIT_THRESHOLD: i32 = 99;

/// Why a value did not parse, with an example of one that works; the caller adds the
/// flag's name (`invalid`). Fix: type the value as the example shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

impl From<String> for BadValue {
    fn from(s: String) -> Self {
        BadValue(s)
    }
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        BadValue(s.to_string())
    }
}

/// A bad command-line value or input file; the message names the flag and shows a value
/// that works.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag's value did not parse or is out of range: fix the value as the message shows.
    #[error("{flag} {value:?}: {reason}")]
    Invalid {
        /// The flag, e.g. `--rate`.
        flag: &'static str,
        /// The value as typed.
        value: String,
        /// What is wrong and what would work.
        reason: String,
    },
    /// A required input is missing, or two inputs conflict: add or change one as the
    /// message says.
    #[error("{0}")]
    Missing(String),
}

impl ConfigError {
    /// Bad input is a usage error: exit 2.
    pub fn exit_code(&self) -> i32 {
        EXIT_USAGE
    }
}

/// The error for `flag`'s value `value`, with the reason and what would work.
pub fn invalid(flag: &'static str, value: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}
