//! Config errors: every problem found in `rules.toml` (or in a set file it
//! names) as `path:line:col: message`.

use std::fmt;
use std::path::PathBuf;

/// One problem at one place: `path:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in (the config, or a set file it names).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// Lowercase message saying what is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file itself could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The config path as given.
        path: PathBuf,
        /// What went wrong.
        error: crate::input::InputError,
    },
    /// The config was read but is invalid; one entry per problem, in order.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// The diagnostics of an invalid config (empty for an I/O error).
    #[must_use]
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid(diags) => diags,
            ConfigError::Io { .. } => &[],
        }
    }
}

/// An I/O error's message without the trailing ` (os error N)`.
pub(crate) fn io_message(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

fn join_lines(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(line: usize, col: usize, message: &str) -> Diagnostic {
        Diagnostic {
            path: PathBuf::from("rules.toml"),
            line,
            col,
            message: message.into(),
        }
    }

    #[test]
    fn invalid_displays_one_diagnostic_per_line() {
        let err = ConfigError::Invalid(vec![
            diag(3, 9, "dport: 70000 is out of range 0-65535"),
            diag(7, 1, "unknown key `foo` in [xdp]"),
        ]);
        assert_eq!(
            err.to_string(),
            "rules.toml:3:9: dport: 70000 is out of range 0-65535\n\
             rules.toml:7:1: unknown key `foo` in [xdp]"
        );
        assert_eq!(err.diagnostics().len(), 2);
    }

    #[test]
    fn io_error_has_no_os_error_suffix() {
        let error = crate::input::InputError::Io(std::io::Error::from_raw_os_error(2));
        let err = ConfigError::Io {
            path: PathBuf::from("rules.toml"),
            error,
        };
        assert_eq!(
            err.to_string(),
            "cannot read rules.toml: No such file or directory"
        );
        assert!(err.diagnostics().is_empty());
    }
}
