//! Throwaway network labs for `xdpwall demo`, the lab tests and the benchmarks.
//!
//! * [`Netns`] — an RAII network namespace (`ip netns add`), deleted on drop,
//!   also while a panic unwinds. Closures run inside it with [`Netns::run`].
//! * [`Lab`] — two namespaces `a` and `b` joined by a veth pair with fixed
//!   IPv4/IPv6 addresses and static neighbour entries.
//! * [`traffic`] — bounded real traffic (UDP, TCP connects, ICMP echo) from one
//!   namespace to its peer, and counting listeners to prove what arrived.
//!
//! Everything here needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for `setns`,
//! CAP_NET_RAW for ping). Tests should start with [`require_root`].
//!
//! Namespaces are named `xw-<pid>-<counter>-<tag>`; [`sweep_stale`] (also run
//! whenever a namespace is created) deletes those left behind by dead
//! processes, e.g. a test run killed with SIGKILL.
#![deny(missing_docs)]

mod error;
mod lab;
mod netns;
pub mod traffic;

pub use error::{Error, Result};
pub use lab::{Host, Lab, LabOptions, IFNAME_A, IFNAME_B};
pub use netns::{sweep_stale, Netns};

/// True when the effective user id is 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Gate for privileged tests: returns true when running as root.
///
/// When not root it prints `skipping <test_name>: needs root` and returns
/// false, unless the environment variable `CI` is `true`: then it panics,
/// because privileged tests must fail under CI instead of silently skipping.
pub fn require_root(test_name: &str) -> bool {
    let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
    decide_root(is_root(), ci, test_name)
}

fn decide_root(root: bool, ci: bool, test_name: &str) -> bool {
    if root {
        return true;
    }
    if ci {
        panic!("{test_name}: needs root (CAP_NET_ADMIN), and CI=true forbids skipping privileged tests");
    }
    eprintln!("skipping {test_name}: needs root");
    false
}

#[cfg(test)]
mod tests {
    use super::decide_root;

    #[test]
    fn root_gate() {
        assert!(decide_root(true, false, "t"));
        assert!(decide_root(true, true, "t"));
        assert!(!decide_root(false, false, "t"));
        let r = std::panic::catch_unwind(|| decide_root(false, true, "t"));
        assert!(r.is_err(), "must panic under CI when not root");
    }
}
