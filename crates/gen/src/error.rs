//! The generator's error type.

use std::io;

/// Result alias using [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why building frames, loading the program or sending failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-supplied value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// libbpf could not open or load the embedded object.
    #[error("cannot load the generator's XDP program: {0}")]
    Load(#[source] libbpf_rs::Error),
    /// A map read failed.
    #[error("cannot read map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// A system call failed.
    #[error("{what}: {source}{}", hint(.source))]
    Sys {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => "; needs root (CAP_BPF, CAP_NET_ADMIN)",
        Some(libc::EINVAL) => {
            "; live frames (BPF_F_TEST_XDP_LIVE_FRAMES) need Linux 5.18 or later, and a frame of at most a page"
        }
        Some(libc::ENODEV) => "; no such interface in this network namespace",
        _ => "",
    }
}

impl Error {
    pub(crate) fn sys(what: impl Into<String>, source: io::Error) -> Self {
        Error::Sys {
            what: what.into(),
            source,
        }
    }
}

/// A libbpf-style negative return as an `io::Error`.
pub(crate) fn errno(ret: i32) -> io::Error {
    io::Error::from_raw_os_error(-ret)
}
