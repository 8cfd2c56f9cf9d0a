//! Peer XDP programs timed in the same BPF_PROG_TEST_RUN harness as xdpwall:
//! a bare `XDP_DROP` (the ceiling) and xdp-filter's own objects from
//! Debian's `xdp-tools`/`libxdp1`, their maps filled for an equivalent
//! address/port filter.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, MapCore, MapFlags, Object, ObjectBuilder};

/// A loaded peer program.
pub enum Peer {
    /// A program built from raw instructions.
    Raw(OwnedFd),
    /// A program from an object file, with its maps.
    Object(Box<Object>, OwnedFd),
}

impl Peer {
    /// The program, for BPF_PROG_TEST_RUN.
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Peer::Raw(fd) | Peer::Object(_, fd) => fd.as_fd(),
        }
    }
}

/// `r0 = XDP_DROP; exit`: the least any XDP program can cost.
///
/// # Errors
/// The kernel refuses it (no privilege).
pub fn bare_drop() -> Result<Peer> {
    // BPF_ALU64 | BPF_MOV | BPF_K, dst r0, imm 1; then BPF_JMP | BPF_EXIT.
    let insns = [
        libbpf_sys::bpf_insn {
            code: 0xb7,
            _bitfield_align_1: [],
            _bitfield_1: libbpf_sys::bpf_insn::new_bitfield_1(0, 0),
            off: 0,
            imm: 1,
        },
        libbpf_sys::bpf_insn {
            code: 0x95,
            _bitfield_align_1: [],
            _bitfield_1: libbpf_sys::bpf_insn::new_bitfield_1(0, 0),
            off: 0,
            imm: 0,
        },
    ];
    // SAFETY: the name and license are NUL-terminated literals, insns is
    // valid for its length, NULL opts are allowed.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_XDP,
            c"bare_drop".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            std::ptr::null_mut(),
        )
    };
    if fd < 0 {
        bail!(
            "cannot load a bare XDP_DROP program: {}",
            std::io::Error::from_raw_os_error(-fd)
        );
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(Peer::Raw(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Where Debian installs xdp-filter's objects.
const XDP_FILTER_DIRS: [&str; 2] = ["/usr/lib/x86_64-linux-gnu/bpf", "/usr/lib/bpf"];

/// The path of xdp-filter object `name` (e.g. `xdpfilt_alw_all`), if installed.
#[must_use]
pub fn xdp_filter_object(name: &str) -> Option<PathBuf> {
    XDP_FILTER_DIRS
        .iter()
        .map(|d| Path::new(d).join(format!("{name}.o")))
        .find(|p| p.exists())
}

// xdp-filter's map value flags (its common_kern_user.h).
const MAP_FLAG_SRC: u64 = 1 << 0;
const MAP_FLAG_DST: u64 = 1 << 1;
const MAP_FLAG_TCP: u64 = 1 << 2;
const MAP_FLAG_UDP: u64 = 1 << 3;

/// What to put into xdp-filter's maps.
pub struct FilterFill {
    /// IPv4 addresses denied as sources (at most the map's 10,000).
    pub src4: Vec<Ipv4Addr>,
    /// UDP and TCP destination ports denied.
    pub dports: Vec<u16>,
}

/// Writes flags `v` under `key`, on every CPU for per-CPU maps (xdp-filter
/// keeps its hit counters per CPU in the same values).
fn put(map: &libbpf_rs::Map<'_>, key: &[u8], v: u64) -> Result<()> {
    if map.map_type().is_percpu() {
        let n = libbpf_rs::num_possible_cpus()?;
        map.update_percpu(key, &vec![v.to_ne_bytes().to_vec(); n], MapFlags::ANY)?;
    } else {
        map.update(key, &v.to_ne_bytes(), MapFlags::ANY)?;
    }
    Ok(())
}

/// Loads xdp-filter object `path` (in its default "allow" mode objects,
/// listed packets are dropped) and fills its maps as `xdp-filter ip` and
/// `xdp-filter port` would.
///
/// # Errors
/// The object cannot be opened, loaded or filled.
pub fn xdp_filter(path: &Path, fill: &FilterFill) -> Result<Peer> {
    let mut open = ObjectBuilder::default()
        .open_file(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // Its maps ask to be pinned by name under /sys/fs/bpf; this harness
    // needs no pins (and bpffs may not be mounted).
    for m in open.maps_mut() {
        // SAFETY: the map pointer is valid while `open` lives; NULL clears.
        let rc = unsafe {
            libbpf_sys::bpf_map__set_pin_path(m.as_libbpf_object().as_ptr(), std::ptr::null())
        };
        if rc != 0 {
            bail!("cannot unpin map {:?} of {}", m.name(), path.display());
        }
    }
    let obj = open
        .load()
        .with_context(|| format!("loading {}", path.display()))?;
    let find = |name: &str| {
        obj.maps()
            .find(|m| m.name() == name)
            .with_context(|| format!("{} has no map {name}", path.display()))
    };
    // Objects built without a feature lack its map: fill only what is asked.
    if !fill.src4.is_empty() {
        let ipv4 = find("filter_ipv4")?;
        for a in &fill.src4 {
            // Keys in network order, as the program reads them from the header.
            let key = u32::from(*a).to_be().to_ne_bytes();
            put(&ipv4, &key, MAP_FLAG_SRC).context("filling filter_ipv4")?;
        }
    }
    if !fill.dports.is_empty() {
        let ports = find("filter_ports")?;
        for &p in &fill.dports {
            // The program reads the port from the header (network order) into
            // a u32 key, as `xdp-filter port` writes it.
            let key = u32::from(u16::from_ne_bytes(p.to_be_bytes())).to_ne_bytes();
            let flags = MAP_FLAG_DST | MAP_FLAG_TCP | MAP_FLAG_UDP;
            put(&ports, &key, flags).context("filling filter_ports")?;
        }
    }
    let prog = obj
        .progs()
        .next()
        .with_context(|| format!("{} has no program", path.display()))?;
    let fd = prog
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating the program fd")?;
    Ok(Peer::Object(Box::new(obj), fd))
}
