//! An interface's packet counters from `/proc/thread-self/net/dev`, read by
//! a thread inside the interface's network namespace. No tool needed, and
//! the counters are the kernel's own (for a veth: frames its NAPI loop
//! processed, and frames the peer's ring had no room for).

use std::path::Path;

use crate::error::{Error, Result};

/// Counters of one interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames received (veth: every frame taken off its ring, whatever its verdict).
    pub rx_packets: u64,
    /// Frames dropped on receive (veth: also frames the peer could not queue).
    pub rx_dropped: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Frames dropped on transmit (veth: also XDP frames the peer's ring refused).
    pub tx_dropped: u64,
}

impl LinkStats {
    /// `self - earlier`, counter by counter.
    #[must_use]
    pub fn since(&self, earlier: &LinkStats) -> LinkStats {
        LinkStats {
            rx_packets: self.rx_packets.wrapping_sub(earlier.rx_packets),
            rx_dropped: self.rx_dropped.wrapping_sub(earlier.rx_dropped),
            tx_packets: self.tx_packets.wrapping_sub(earlier.tx_packets),
            tx_dropped: self.tx_dropped.wrapping_sub(earlier.tx_dropped),
        }
    }
}

/// Parses the line of `ifname` out of a `/proc/net/dev` text.
fn parse(text: &str, ifname: &str) -> Option<LinkStats> {
    text.lines().skip(2).find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name.trim() != ifname {
            return None;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop …
        (v.len() >= 16).then(|| LinkStats {
            rx_packets: v[1],
            rx_dropped: v[3],
            tx_packets: v[9],
            tx_dropped: v[11],
        })
    })
}

fn read_here(ifindex: u32) -> Result<LinkStats> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return Err(Error::sys(
            format!("no interface with index {ifindex}"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name into buf.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string("/proc/thread-self/net/dev")
        .map_err(|e| Error::sys("reading /proc/thread-self/net/dev", e))?;
    parse(&text, &name)
        .ok_or_else(|| Error::Invalid(format!("interface {name} not in /proc/net/dev")))
}

/// Counters of `ifindex` in the network namespace at `netns` (or this thread's).
///
/// # Errors
/// The namespace cannot be entered or the interface is not there.
pub fn link_stats(netns: Option<&Path>, ifindex: u32) -> Result<LinkStats> {
    match netns {
        None => read_here(ifindex),
        Some(ns) => std::thread::scope(|s| {
            s.spawn(|| {
                crate::run::enter_netns(ns)?;
                read_here(ifindex)
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("the counter reader panicked".into())))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
 lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n   \
 xwb: 6400000  100000    0    7    0     0          0         0      840      12    0    3    0     0       0          0\n";
        let s = parse(text, "xwb").unwrap_or_default();
        assert_eq!(
            s,
            LinkStats {
                rx_packets: 100_000,
                rx_dropped: 7,
                tx_packets: 12,
                tx_dropped: 3
            }
        );
        assert_eq!(parse(text, "xwa"), None);
        let later = LinkStats {
            rx_packets: 100_010,
            ..s
        };
        assert_eq!(later.since(&s).rx_packets, 10);
    }
}
