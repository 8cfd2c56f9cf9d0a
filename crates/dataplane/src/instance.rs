//! A loaded xdpwall program and its maps, owned by fds: made by `load`, or
//! found from an interface's attached program id — which is how `stats` and
//! `detach` reach an instance started by another process, from any mount
//! namespace (no bpffs needed).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::error::{errno, Error, Result};
use crate::pod::{bytes_of, from_bytes};
use crate::skel::{types, XdpwallSkel};

/// Instructions the kernel's verifier processes at most for one program
/// (`BPF_COMPLEXITY_LIMIT_INSNS`); past it, the load fails with E2BIG.
pub const VERIFIER_LIMIT: u32 = 1_000_000;

/// Kernel name of the field tables' map: the global `xw_tables` in section
/// `.bss.xw_tables`, which libbpf makes a one-entry array of its own.
pub(crate) const TABLES_MAP: &str = ".bss.xw_tables";
/// Kernel name of the capture tap's switch (the global `xw_tap_ctl`).
pub(crate) const TAP_MAP: &str = ".bss.xw_tap";

/// Name of our XDP function (the kernel keeps the first 15 bytes).
pub const PROG_NAME: &str = "xdpwall_main";

/// Handles to every map of the program.
#[derive(Debug)]
pub struct Maps {
    /// Source IPv4 exact-match table (prefixes over /16).
    pub src4: MapHandle,
    /// Destination IPv4 exact-match table (prefixes over /16).
    pub dst4: MapHandle,
    /// Source IPv6 trie.
    pub src6: MapHandle,
    /// Destination IPv6 trie.
    pub dst6: MapHandle,
    /// Source IPv4 /24 trie nodes (both generations).
    pub src4_n24: MapHandle,
    /// Source IPv4 /32 trie nodes.
    pub src4_n32: MapHandle,
    /// Destination IPv4 /24 trie nodes.
    pub dst4_n24: MapHandle,
    /// Destination IPv4 /32 trie nodes.
    pub dst4_n32: MapHandle,
    /// Source IPv4 lone prefixes (one per /16 holding a single longer one).
    pub src4_lone: MapHandle,
    /// Destination IPv4 lone prefixes.
    pub dst4_lone: MapHandle,
    /// Field tables and address directories (one value, `struct xw_tables`).
    pub tables: MapHandle,
    /// Class bitmaps and candidates.
    pub classes: MapHandle,
    /// Rules (action, name).
    pub rules: MapHandle,
    /// Per-rule and default counters (per CPU).
    pub stats: MapHandle,
    /// Malformed counters (per CPU).
    pub malformed: MapHandle,
    /// Instance facts.
    pub info: MapHandle,
    /// Last verdict (replay).
    pub trace: MapHandle,
    /// Event ring buffer.
    pub ring: MapHandle,
    /// Event perf buffers.
    pub perf: MapHandle,
    /// Event counters (per CPU).
    pub evstats: MapHandle,
    /// Capture tap switch.
    pub tap_ctl: MapHandle,
    /// Capture tap ring buffer.
    pub tap_ring: MapHandle,
    /// Capture tap perf buffers.
    pub tap_perf: MapHandle,
    /// XDP errors the kernel reported (per CPU; see `xdperr`).
    pub xdp_errors: MapHandle,
    /// Per-rule rate-limit buckets (`by = "rule"`).
    pub rl_rule: MapHandle,
    /// Per-source rate-limit buckets (`by = "src"`, LRU).
    pub rl_src: MapHandle,
    /// Redirect targets (devmap, by rule id).
    pub redirect: MapHandle,
    /// Per-rule over-limit and redirect-error counters (per CPU).
    pub actstats: MapHandle,
}

/// A loaded program and its maps.
#[derive(Debug)]
pub struct Instance {
    /// The program.
    pub prog: OwnedFd,
    /// Its kernel id.
    pub prog_id: u32,
    /// Its maps.
    pub maps: Maps,
}

fn dup(map: &libbpf_rs::MapMut<'_>, name: &'static str) -> Result<MapHandle> {
    MapHandle::try_from(map).map_err(|source| Error::Map {
        op: "duplicate",
        map: name,
        source,
    })
}

impl Instance {
    pub(crate) fn from_loaded(skel: &XdpwallSkel<'_>) -> Result<Self> {
        let m = &skel.maps;
        let maps = Maps {
            src4: dup(&m.xw_src4, "xw_src4")?,
            dst4: dup(&m.xw_dst4, "xw_dst4")?,
            src6: dup(&m.xw_src6, "xw_src6")?,
            dst6: dup(&m.xw_dst6, "xw_dst6")?,
            src4_n24: dup(&m.xw_src4_n24, "xw_src4_n24")?,
            src4_n32: dup(&m.xw_src4_n32, "xw_src4_n32")?,
            dst4_n24: dup(&m.xw_dst4_n24, "xw_dst4_n24")?,
            dst4_n32: dup(&m.xw_dst4_n32, "xw_dst4_n32")?,
            src4_lone: dup(&m.xw_src4_lone, "xw_src4_lone")?,
            dst4_lone: dup(&m.xw_dst4_lone, "xw_dst4_lone")?,
            tables: dup(&m.bss_xw_tables, TABLES_MAP)?,
            classes: dup(&m.xw_classes, "xw_classes")?,
            rules: dup(&m.xw_rules, "xw_rules")?,
            stats: dup(&m.xw_stats, "xw_stats")?,
            malformed: dup(&m.xw_malformed, "xw_malformed")?,
            info: dup(&m.xw_info, "xw_info")?,
            trace: dup(&m.xw_trace, "xw_trace")?,
            ring: dup(&m.xw_ring, "xw_ring")?,
            perf: dup(&m.xw_perf, "xw_perf")?,
            evstats: dup(&m.xw_evstats, "xw_evstats")?,
            tap_ctl: dup(&m.bss_xw_tap, TAP_MAP)?,
            tap_ring: dup(&m.xw_tap_ring, "xw_tap_ring")?,
            tap_perf: dup(&m.xw_tap_perf, "xw_tap_perf")?,
            xdp_errors: dup(&m.xw_xdp_errors, "xw_xdp_errors")?,
            rl_rule: dup(&m.xw_rl_rule, "xw_rl_rule")?,
            rl_src: dup(&m.xw_rl_src, "xw_rl_src")?,
            redirect: dup(&m.xw_redirect, "xw_redirect")?,
            actstats: dup(&m.xw_actstats, "xw_actstats")?,
        };
        let prog = skel
            .progs
            .xdpwall_main
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::Sys {
                what: "duplicate program fd".into(),
                source,
            })?;
        let info = prog_info(prog.as_fd())?;
        Ok(Self {
            prog,
            prog_id: info.id,
            maps,
        })
    }

    /// Opens the program with kernel id `id` and its maps; `iface` is for messages.
    ///
    /// # Errors
    /// The program is gone, is not xdpwall's, or lacks a map.
    pub fn from_prog_id(id: u32, iface: &str) -> Result<Self> {
        // SAFETY: plain syscall wrapper; returns a new fd or a negative errno.
        let fd = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            return Err(Error::Sys {
                what: format!("open XDP program id {id}"),
                source: errno(fd),
            });
        }
        // SAFETY: fd was just returned to us and is owned by nobody else.
        let prog = unsafe { OwnedFd::from_raw_fd(fd) };
        let info = prog_info(prog.as_fd())?;
        let name = prog_name(&info);
        if name != PROG_NAME {
            return Err(Error::Foreign {
                iface: iface.to_string(),
                name,
                id,
            });
        }
        let ids = map_ids(prog.as_fd(), info.nr_map_ids)?;
        let mut handles: Vec<(String, MapHandle)> = Vec::new();
        for mid in ids {
            let h = MapHandle::from_map_id(mid).map_err(|source| Error::Map {
                op: "open by id",
                map: "(program map)",
                source,
            })?;
            let n = h.name().to_string_lossy().into_owned();
            handles.push((n, h));
        }
        let mut take = |name: &'static str| -> Result<MapHandle> {
            let pos = handles.iter().position(|(n, _)| n == name);
            pos.map(|p| handles.swap_remove(p).1)
                .ok_or(Error::MissingMap {
                    iface: iface.to_string(),
                    map: name,
                })
        };
        let maps = Maps {
            src4: take("xw_src4")?,
            dst4: take("xw_dst4")?,
            src6: take("xw_src6")?,
            dst6: take("xw_dst6")?,
            src4_n24: take("xw_src4_n24")?,
            src4_n32: take("xw_src4_n32")?,
            dst4_n24: take("xw_dst4_n24")?,
            dst4_n32: take("xw_dst4_n32")?,
            src4_lone: take("xw_src4_lone")?,
            dst4_lone: take("xw_dst4_lone")?,
            tables: take(TABLES_MAP)?,
            classes: take("xw_classes")?,
            rules: take("xw_rules")?,
            stats: take("xw_stats")?,
            malformed: take("xw_malformed")?,
            info: take("xw_info")?,
            trace: take("xw_trace")?,
            ring: take("xw_ring")?,
            perf: take("xw_perf")?,
            evstats: take("xw_evstats")?,
            tap_ctl: take(TAP_MAP)?,
            tap_ring: take("xw_tap_ring")?,
            tap_perf: take("xw_tap_perf")?,
            xdp_errors: take("xw_xdp_errors")?,
            rl_rule: take("xw_rl_rule")?,
            rl_src: take("xw_rl_src")?,
            redirect: take("xw_redirect")?,
            actstats: take("xw_actstats")?,
        };
        Ok(Self {
            prog,
            prog_id: id,
            maps,
        })
    }

    /// The program fd.
    #[must_use]
    pub fn prog_fd(&self) -> BorrowedFd<'_> {
        self.prog.as_fd()
    }

    /// Instructions the verifier processed to load the program: how close a
    /// rule set's shape took it to [`VERIFIER_LIMIT`].
    ///
    /// # Errors
    /// The program's info cannot be read.
    pub fn verified_insns(&self) -> Result<u32> {
        Ok(prog_info(self.prog.as_fd())?.verified_insns)
    }

    /// Reads the instance facts (`xw_info[0]`).
    ///
    /// # Errors
    /// The map cannot be read.
    pub fn info(&self) -> Result<types::xw_info> {
        let v = self
            .maps
            .info
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| Error::Map {
                op: "read",
                map: "xw_info",
                source,
            })?;
        Ok(v.and_then(|b| from_bytes(&b)).unwrap_or_default())
    }

    /// Reads the capture tap's switch.
    ///
    /// # Errors
    /// The map cannot be read.
    pub fn tap(&self) -> Result<types::xw_tap> {
        let v = self
            .maps
            .tap_ctl
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| Error::Map {
                op: "read",
                map: TAP_MAP,
                source,
            })?;
        Ok(v.and_then(|b| from_bytes(&b)).unwrap_or_default())
    }

    /// Switches the capture tap (the global `xw_tap_ctl`).
    ///
    /// # Errors
    /// The map cannot be written.
    pub fn set_tap(&self, tap: &types::xw_tap) -> Result<()> {
        self.maps
            .tap_ctl
            .update(&0u32.to_ne_bytes(), bytes_of(tap), MapFlags::ANY)
            .map_err(|source| Error::Map {
                op: "write",
                map: TAP_MAP,
                source,
            })
    }

    /// Writes the instance facts.
    ///
    /// # Errors
    /// The map cannot be written.
    pub fn set_info(&self, info: &types::xw_info) -> Result<()> {
        self.maps
            .info
            .update(&0u32.to_ne_bytes(), bytes_of(info), MapFlags::ANY)
            .map_err(|source| Error::Map {
                op: "write",
                map: "xw_info",
                source,
            })
    }
}

/// Kernel info of a program.
pub(crate) fn prog_info(fd: BorrowedFd<'_>) -> Result<libbpf_rs::libbpf_sys::bpf_prog_info> {
    // SAFETY: bpf_prog_info is a plain C struct; all-zero is valid input.
    let mut info: libbpf_rs::libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: info/len describe a writable buffer of the right size.
    let ret = unsafe {
        libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len)
    };
    if ret < 0 {
        return Err(Error::Sys {
            what: "read XDP program info".into(),
            source: errno(ret),
        });
    }
    Ok(info)
}

pub(crate) fn prog_name(info: &libbpf_rs::libbpf_sys::bpf_prog_info) -> String {
    let bytes: Vec<u8> = info.name.iter().map(|&c| c as u8).collect();
    CStr::from_bytes_until_nul(&bytes)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn map_ids(fd: BorrowedFd<'_>, n: u32) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; n as usize];
    // SAFETY: zeroed C struct.
    let mut info: libbpf_rs::libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_map_ids = n;
    info.map_ids = ids.as_mut_ptr() as u64;
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: map_ids points to n writable u32s, as nr_map_ids says.
    let ret = unsafe {
        libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len)
    };
    if ret < 0 {
        return Err(Error::Sys {
            what: "list the XDP program's maps".into(),
            source: errno(ret),
        });
    }
    ids.truncate(info.nr_map_ids.min(n) as usize);
    Ok(ids)
}

/// Resolves an interface name in this network namespace.
///
/// # Errors
/// No such interface.
pub fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| Error::NoInterface(name.to_string()))?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENODEV) || e.raw_os_error() == Some(libc::ENXIO) {
            return Err(Error::NoInterface(name.to_string()));
        }
        return Err(Error::NoInterface(name.to_string()));
    }
    Ok(idx)
}
