//! Counting the XDP errors the kernel reports for a running instance: the
//! `xdp:xdp_exception` and `xdp:xdp_redirect_err` tracepoints, through
//! BTF-typed raw tracepoint programs (`bpf/xdperr.bpf.c`; no tracefs).
//!
//! The counters live in the instance's own map `xw_xdp_errors`, so any
//! process finds them with the instance and they last as long as the XDP
//! program. The tracepoint programs are held by bpf_links owned by the
//! [`XdpErrorCounter`]: they count while it lives (in `run`) and stop with
//! it; a restarted `run` attaches new ones.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore};
use xdpwall_rules::compile::abi;

use crate::error::{Error, Result};
use crate::instance::{map_ids, prog_info, Instance};
use crate::xdperr_skel::XdperrSkelBuilder;

/// Live tracepoint programs counting one instance's XDP errors.
pub struct XdpErrorCounter {
    // The programs stay loaded while their links hold them.
    _links: Vec<Link>,
}

impl std::fmt::Debug for XdpErrorCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpErrorCounter").finish_non_exhaustive()
    }
}

impl XdpErrorCounter {
    /// Loads the tracepoint programs for `inst` attached to `ifindex` and
    /// attaches them; they count into `inst`'s `xw_xdp_errors`.
    ///
    /// # Errors
    /// The kernel refuses the programs (no BTF, no tp_btf support) or the
    /// attach fails.
    pub fn attach(inst: &Instance, ifindex: u32) -> Result<Self> {
        crate::load::start_log();
        let mut storage = MaybeUninit::uninit();
        let mut open = XdperrSkelBuilder::default()
            .open(&mut storage)
            .map_err(Error::Open)?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.target_ifindex = ifindex;
            ro.target_prog_id = inst.prog_id;
        }
        open.maps
            .xw_xdp_errors
            .reuse_fd(inst.maps.xdp_errors.as_fd())
            .map_err(|source| Error::Map {
                op: "share",
                map: "xw_xdp_errors",
                source,
            })?;
        let mut skel = open.load().map_err(|source| Error::Tracepoints {
            source,
            log: crate::load::log_tail(),
        })?;
        skel.attach().map_err(|source| Error::Tracepoints {
            source,
            log: String::new(),
        })?;
        let links = [
            skel.links.xw_xdp_exception.take(),
            skel.links.xw_xdp_redirect_err.take(),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(Self { _links: links })
    }
}

/// Ids of the loaded tracepoint programs counting into `inst`'s
/// `xw_xdp_errors` (two while a `run` serves it; none when nobody counts).
/// Walks every program of the machine: for `stats`, not hot paths.
///
/// # Errors
/// The map's id cannot be read.
pub fn counting_programs(inst: &Instance) -> Result<Vec<u32>> {
    let map_id = inst
        .maps
        .xdp_errors
        .info()
        .map_err(|source| Error::Map {
            op: "read the id of",
            map: "xw_xdp_errors",
            source,
        })?
        .info
        .id;
    let mut out = Vec::new();
    let mut id = 0u32;
    loop {
        // SAFETY: plain syscall wrappers; `id` is a valid out-pointer.
        if unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_next_id(id, &mut id) } < 0 {
            break;
        }
        // SAFETY: as above; a program gone meanwhile just fails.
        let fd = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            continue;
        }
        // SAFETY: fd was just returned to us and is owned by nobody else.
        let prog = unsafe { <OwnedFd as FromRawFd>::from_raw_fd(fd) };
        let Ok(info) = prog_info(prog.as_fd()) else {
            continue;
        };
        if info.type_ != libbpf_rs::libbpf_sys::BPF_PROG_TYPE_TRACING {
            continue;
        }
        if map_ids(prog.as_fd(), info.nr_map_ids).is_ok_and(|ids| ids.contains(&map_id)) {
            out.push(id);
        }
    }
    Ok(out)
}

/// XDP errors of an instance, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpErrors {
    /// `xdp_exception` by XDP action: aborted, drop, pass, tx, redirect,
    /// and an action the kernel does not know.
    pub exceptions: [u64; 6],
    /// `xdp_redirect_err` of a plain redirect (to an ifindex).
    pub redirect_err: u64,
    /// `xdp_redirect_err` of a map redirect (devmap, cpumap, xskmap).
    pub redirect_map_err: u64,
}

/// Names of [`XdpErrors::exceptions`]'s slots.
pub const EXCEPTION_ACTIONS: [&str; 6] = ["aborted", "drop", "pass", "tx", "redirect", "invalid"];

impl XdpErrors {
    /// All exceptions.
    #[must_use]
    pub fn exception_total(&self) -> u64 {
        self.exceptions.iter().sum()
    }

    /// All redirect errors.
    #[must_use]
    pub fn redirect_total(&self) -> u64 {
        self.redirect_err + self.redirect_map_err
    }

    /// Every error.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.exception_total() + self.redirect_total()
    }

    /// Counts by kind, with the names of `stats --json` and the metrics.
    #[must_use]
    pub fn by_kind(&self) -> [(&'static str, u64); 3] {
        [
            ("exception", self.exception_total()),
            ("redirect_err", self.redirect_err),
            ("redirect_map_err", self.redirect_map_err),
        ]
    }

    /// Exceptions by the XDP action that caused them.
    pub fn by_action(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        EXCEPTION_ACTIONS.iter().copied().zip(self.exceptions)
    }
}

fn slot(inst: &Instance, key: u32) -> Result<u64> {
    crate::stats::percpu_u64(&inst.maps.xdp_errors, "xw_xdp_errors", key)
}

/// Reads the XDP error counters of `inst`.
///
/// # Errors
/// The map cannot be read.
pub fn read(inst: &Instance) -> Result<XdpErrors> {
    let mut e = XdpErrors::default();
    for (i, v) in e.exceptions.iter_mut().enumerate() {
        *v = slot(inst, i as u32)?;
    }
    e.redirect_err = slot(inst, abi::XERR_REDIRECT)?;
    e.redirect_map_err = slot(inst, abi::XERR_REDIRECT_MAP)?;
    Ok(e)
}
