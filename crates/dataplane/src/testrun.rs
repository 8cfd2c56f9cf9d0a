//! Running packets through the loaded program with BPF_PROG_TEST_RUN.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use libbpf_rs::libbpf_sys;
use libbpf_rs::{MapCore, MapFlags};
use xdpwall_rules::compile::abi;

use crate::error::{errno, Error, Result};
use crate::instance::Instance;
use crate::pod::from_bytes;
use crate::skel::types;

/// Shortest frame the kernel runs an XDP program on (an Ethernet header).
pub const MIN_FRAME: usize = 14;

/// XDP verdict codes.
pub const XDP_ABORTED: u32 = 0;
/// XDP_DROP
pub const XDP_DROP: u32 = 1;
/// XDP_PASS
pub const XDP_PASS: u32 = 2;
/// XDP_TX
pub const XDP_TX: u32 = 3;
/// XDP_REDIRECT
pub const XDP_REDIRECT: u32 = 4;

/// What the program decided for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// XDP return code.
    pub xdp: u32,
    /// Matching terminal rule id (None: default action or malformed).
    pub rule: Option<u32>,
    /// Malformed reason index, when parsing stopped early.
    pub malformed: Option<u32>,
    /// A `rate_limit` rule dropped the packet: over the limit.
    pub limited: bool,
    /// A `redirect` rule had no target and dropped the packet.
    pub redirect_err: bool,
}

fn run(inst: &Instance, pkt: &[u8], repeat: u32) -> Result<(u32, Duration)> {
    time_fd(inst.prog.as_fd(), pkt, repeat)
}

/// Runs `pkt` `repeat` times through any XDP program (a peer's, for
/// comparison): its verdict and the kernel-measured time per run.
///
/// # Errors
/// The kernel refuses the run.
pub fn time_fd(prog: BorrowedFd<'_>, pkt: &[u8], repeat: u32) -> Result<(u32, Duration)> {
    // SAFETY: zeroed opts with sz set.
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    opts.data_in = pkt.as_ptr().cast();
    opts.data_size_in = pkt.len() as u32;
    opts.repeat = i32::try_from(repeat).unwrap_or(i32::MAX);
    // SAFETY: data_in points to pkt, valid for the call; no output buffers.
    let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    if ret < 0 {
        return Err(Error::TestRun {
            len: pkt.len(),
            source: errno(ret),
        });
    }
    Ok((opts.retval, Duration::from_nanos(u64::from(opts.duration))))
}

impl Instance {
    /// Runs one packet; needs a program loaded with `trace` to report the rule.
    ///
    /// # Errors
    /// The kernel refuses the run (e.g. a frame shorter than [`MIN_FRAME`]).
    pub fn test_run(&self, pkt: &[u8]) -> Result<Verdict> {
        let (xdp, _) = run(self, pkt, 1)?;
        let t = self
            .maps
            .trace
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| Error::Map {
                op: "read",
                map: "xw_trace",
                source,
            })?
            .and_then(|b| from_bytes::<types::xw_trace>(&b))
            .unwrap_or_default();
        Ok(Verdict {
            xdp,
            rule: (t.rule != u32::MAX).then_some(t.rule),
            malformed: t.malformed.checked_sub(1),
            limited: t.flags & abi::TRACE_LIMITED != 0,
            redirect_err: t.flags & abi::TRACE_REDIRECT_ERR != 0,
        })
    }

    /// Average run time per packet over `repeat` runs (kernel-measured).
    ///
    /// # Errors
    /// The kernel refuses the run.
    pub fn time_run(&self, pkt: &[u8], repeat: u32) -> Result<(u32, Duration)> {
        run(self, pkt, repeat)
    }
}
