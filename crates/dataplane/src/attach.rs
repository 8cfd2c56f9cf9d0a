//! Attaching to and detaching from an interface, and finding what runs there.
//!
//! Attachment goes through netlink (not a bpf_link), so the program stays in
//! force when the process that attached it exits — even by `kill -9`.

use std::os::fd::AsRawFd;

use libbpf_rs::libbpf_sys;
use xdpwall_rules::Mode;

use crate::error::{errno, Error, Result};
use crate::instance::{ifindex, prog_info, prog_name, Instance, PROG_NAME};

/// The mode a program is attached in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// Driver (native) XDP.
    Native,
    /// Generic (skb) XDP.
    Generic,
}

impl AttachMode {
    /// Name as shown to users.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        }
    }

    fn flags(self) -> u32 {
        match self {
            AttachMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            AttachMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
        }
    }

    /// Code stored in `xw_info.mode`.
    #[must_use]
    pub fn code(self) -> u32 {
        match self {
            AttachMode::Native => 1,
            AttachMode::Generic => 2,
        }
    }

    /// From `xw_info.mode`.
    #[must_use]
    pub fn from_code(c: u32) -> Option<Self> {
        match c {
            1 => Some(AttachMode::Native),
            2 => Some(AttachMode::Generic),
            _ => None,
        }
    }
}

/// What runs on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// Program id.
    pub prog_id: u32,
    /// Program name.
    pub name: String,
    /// Mode.
    pub mode: AttachMode,
}

impl Current {
    /// Whether it is xdpwall's program.
    #[must_use]
    pub fn is_ours(&self) -> bool {
        self.name == PROG_NAME
    }
}

/// The XDP program attached to `ifindex`, if any.
///
/// # Errors
/// The netlink query fails.
pub fn current(ifindex: u32) -> Result<Option<Current>> {
    // SAFETY: zeroed opts with sz set, as libbpf's OPTS convention requires.
    let mut opts: libbpf_sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _;
    // SAFETY: opts is a valid, sized struct.
    let ret = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if ret < 0 {
        return Err(Error::Sys {
            what: format!("query XDP on ifindex {ifindex}"),
            source: errno(ret),
        });
    }
    let (id, mode) = if opts.drv_prog_id != 0 {
        (opts.drv_prog_id, AttachMode::Native)
    } else if opts.skb_prog_id != 0 {
        (opts.skb_prog_id, AttachMode::Generic)
    } else {
        return Ok(None);
    };
    // SAFETY: plain syscall wrapper.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    let name = if fd >= 0 {
        // SAFETY: fd is ours to close.
        let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        prog_info(std::os::fd::AsFd::as_fd(&owned))
            .map(|i| prog_name(&i))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Some(Current {
        prog_id: id,
        name,
        mode,
    }))
}

/// Result of an attach.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Mode in force.
    pub mode: AttachMode,
    /// A warning for the user (e.g. fell back to generic).
    pub warning: Option<String>,
    /// The program this one replaced atomically: id and name.
    pub replaced: Option<(u32, String)>,
}

fn xdp_attach(ifindex: u32, fd: i32, flags: u32, old_fd: Option<i32>) -> std::io::Result<()> {
    // SAFETY: zeroed opts with sz set.
    let mut opts: libbpf_sys::bpf_xdp_attach_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as _;
    let mut flags = flags;
    if let Some(old) = old_fd {
        opts.old_prog_fd = old;
        flags |= libbpf_sys::XDP_FLAGS_REPLACE;
    }
    // SAFETY: valid fds and opts.
    let ret = unsafe { libbpf_sys::bpf_xdp_attach(ifindex as i32, fd, flags, &opts) };
    if ret < 0 {
        Err(errno(ret))
    } else {
        Ok(())
    }
}

fn hint(mode: AttachMode, e: &std::io::Error) -> String {
    match (mode, e.raw_os_error()) {
        (AttachMode::Native, Some(libc::EOPNOTSUPP)) => {
            "; the driver has no native XDP support: use --mode generic (or auto)".into()
        }
        (_, Some(libc::EPERM)) => "; needs root (CAP_BPF and CAP_NET_ADMIN)".into(),
        (_, Some(libc::EBUSY | libc::EEXIST)) => {
            "; another XDP program is attached in another mode: detach it first".into()
        }
        (AttachMode::Native, Some(libc::EINVAL)) => {
            "; the driver refused the program (MTU too large for native XDP on this device?): try --mode generic".into()
        }
        _ => String::new(),
    }
}

/// Attaches `inst` to `iface`. An xdpwall program already there is replaced
/// atomically (no unfiltered window); anyone else's only with `force`.
///
/// # Errors
/// Unknown interface, a foreign program without `force`, or the kernel refuses.
pub fn attach(inst: &Instance, iface: &str, mode: Mode, force: bool) -> Result<Attached> {
    let idx = ifindex(iface)?;
    let fd = inst.prog.as_raw_fd();
    if let Some(cur) = current(idx)? {
        if !cur.is_ours() && !force {
            return Err(Error::Foreign {
                iface: iface.into(),
                name: cur.name,
                id: cur.prog_id,
            });
        }
        let wanted = match mode {
            Mode::Auto => cur.mode,
            Mode::Native => AttachMode::Native,
            Mode::Generic => AttachMode::Generic,
        };
        if wanted != cur.mode {
            return Err(Error::Attach {
                iface: iface.into(),
                mode: wanted.name(),
                source: std::io::Error::from_raw_os_error(libc::EBUSY),
                hint: format!(
                    "; the program there runs in {} mode: `xdpwall detach --iface {iface}` first",
                    cur.mode.name()
                ),
            });
        }
        // SAFETY: plain syscall wrapper.
        let old = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(cur.prog_id) };
        if old < 0 {
            return Err(Error::Sys {
                what: "open the attached program".into(),
                source: errno(old),
            });
        }
        // SAFETY: old is ours to close.
        let old_owned =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(old) };
        xdp_attach(idx, fd, cur.mode.flags(), Some(old_owned.as_raw_fd())).map_err(|source| {
            Error::Attach {
                iface: iface.into(),
                mode: cur.mode.name(),
                hint: hint(cur.mode, &source),
                source,
            }
        })?;
        return Ok(Attached {
            mode: cur.mode,
            warning: None,
            replaced: Some((cur.prog_id, cur.name)),
        });
    }

    let fresh = |m: AttachMode| {
        xdp_attach(
            idx,
            fd,
            m.flags() | libbpf_sys::XDP_FLAGS_UPDATE_IF_NOEXIST,
            None,
        )
    };
    match mode {
        Mode::Native | Mode::Generic => {
            let m = if mode == Mode::Native {
                AttachMode::Native
            } else {
                AttachMode::Generic
            };
            fresh(m).map_err(|source| Error::Attach {
                iface: iface.into(),
                mode: m.name(),
                hint: hint(m, &source),
                source,
            })?;
            Ok(Attached {
                mode: m,
                warning: None,
                replaced: None,
            })
        }
        Mode::Auto => match fresh(AttachMode::Native) {
            Ok(()) => Ok(Attached {
                mode: AttachMode::Native,
                warning: None,
                replaced: None,
            }),
            Err(native_err) => {
                fresh(AttachMode::Generic).map_err(|source| Error::Attach {
                    iface: iface.into(),
                    mode: "generic",
                    hint: hint(AttachMode::Generic, &source),
                    source,
                })?;
                Ok(Attached {
                    mode: AttachMode::Generic,
                    warning: Some(format!(
                        "native XDP failed on {iface} ({native_err}); running in generic mode, which is slower"
                    )),
                    replaced: None,
                })
            }
        },
    }
}

/// Finds the xdpwall instance on `iface` in this network namespace.
///
/// # Errors
/// Nothing or something else runs there.
pub fn find(iface: &str) -> Result<Instance> {
    let idx = ifindex(iface)?;
    match current(idx)? {
        None => Err(Error::NotRunning(iface.into())),
        Some(cur) if !cur.is_ours() => Err(Error::NotRunning(format!(
            "{iface} (it runs XDP program `{}`, id {})",
            cur.name, cur.prog_id
        ))),
        Some(cur) => Instance::from_prog_id(cur.prog_id, iface),
    }
}

/// Detaches xdpwall from `iface`; returns the detached program id. Refuses
/// to remove another program unless `force`.
///
/// # Errors
/// Nothing is attached, a foreign program without `force`, or netlink fails.
pub fn detach(iface: &str, force: bool) -> Result<u32> {
    let idx = ifindex(iface)?;
    let Some(cur) = current(idx)? else {
        return Err(Error::NotRunning(iface.into()));
    };
    if !cur.is_ours() && !force {
        return Err(Error::Foreign {
            iface: iface.into(),
            name: cur.name,
            id: cur.prog_id,
        });
    }
    // SAFETY: plain syscall wrapper.
    let old = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(cur.prog_id) };
    if old < 0 {
        return Err(Error::Sys {
            what: "open the attached program".into(),
            source: errno(old),
        });
    }
    // SAFETY: old is ours to close.
    let old_owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(old) };
    // Detach only if it is still the program we looked at (REPLACE with -1).
    xdp_attach(idx, -1, cur.mode.flags(), Some(old_owned.as_raw_fd())).map_err(|source| {
        Error::Attach {
            iface: iface.into(),
            mode: cur.mode.name(),
            hint: hint(cur.mode, &source),
            source,
        }
    })?;
    Ok(cur.prog_id)
}
