//! The crate's error type.

use std::io;
use std::process::Command;

/// Result alias using [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a lab operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An external command (`ip`, …) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}{}", root_hint(.needs_root))]
    Command {
        /// The command line that failed.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
        /// The failure looks like a missing privilege (EPERM/EACCES).
        needs_root: bool,
    },
    /// An external command could not be started at all.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The error from `fork`/`exec`.
        #[source]
        source: io::Error,
    },
    /// A system call failed.
    #[error("{context}: {source}{}", root_hint(.needs_root))]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
        /// The error is EPERM/EACCES.
        needs_root: bool,
    },
    /// An argument was out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

fn root_hint(needs_root: &bool) -> &'static str {
    if *needs_root {
        "; needs root (CAP_NET_ADMIN)"
    } else {
        ""
    }
}

impl Error {
    /// Wraps an OS error with context; EPERM/EACCES get the root hint.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        let needs_root = matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES));
        Error::Io {
            context: context.into(),
            source,
            needs_root,
        }
    }

    /// True when the error looks like a missing privilege.
    pub fn needs_root(&self) -> bool {
        match self {
            Error::Command { needs_root, .. } | Error::Io { needs_root, .. } => *needs_root,
            Error::Spawn { source, .. } => source.kind() == io::ErrorKind::PermissionDenied,
            Error::InvalidArgument(_) => false,
        }
    }
}

/// Renders a command line for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command to completion; returns stdout, or a typed error naming the
/// command and its stderr.
pub(crate) fn run_cmd(cmd: &mut Command) -> Result<String> {
    let command = describe(cmd);
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let needs_root =
        stderr.contains("Operation not permitted") || stderr.contains("Permission denied");
    Err(Error::Command {
        command,
        status: out.status.to_string(),
        stderr,
        needs_root,
    })
}
