//! The generator's BPF object: loading the generator program configured for
//! a frame and its ranges, and the counting receivers (`XDP_DROP`, `XDP_PASS`).

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::error::{errno, Error, Result};
use crate::frame::{FrameSpec, Proto};
use crate::range::{AddrRange, PortRange};
use crate::skel::{types, GenSkelBuilder};

/// XDP_DROP
pub const XDP_DROP: u32 = 1;
/// XDP_PASS
pub const XDP_PASS: u32 = 2;
/// XDP_TX
pub const XDP_TX: u32 = 3;

/// Frames and bytes, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Frames.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Which of the object's programs to keep.
#[derive(Clone, Copy)]
enum Which {
    Gen,
    Drop,
    Pass,
}

/// A loaded program of the object and its counter map.
#[derive(Debug)]
struct Loaded {
    prog: OwnedFd,
    counter: MapHandle,
    counter_name: &'static str,
}

fn load(which: Which, cfg: Option<types::gen_cfg>) -> Result<Loaded> {
    let mut storage = MaybeUninit::uninit();
    let mut open = GenSkelBuilder::default()
        .open(&mut storage)
        .map_err(Error::Load)?;
    if let (Some(ro), Some(cfg)) = (open.maps.rodata_data.as_deref_mut(), cfg) {
        ro.cfg = cfg;
    }
    // Only the wanted program is loaded: the others cost a verification each.
    let p = &mut open.progs;
    p.xw_gen.set_autoload(matches!(which, Which::Gen));
    p.xw_rx_drop.set_autoload(matches!(which, Which::Drop));
    p.xw_rx_pass.set_autoload(matches!(which, Which::Pass));
    let skel = open.load().map_err(Error::Load)?;
    let (prog, counter, counter_name) = match which {
        Which::Gen => (&skel.progs.xw_gen, &skel.maps.gen_count, "gen_count"),
        Which::Drop => (&skel.progs.xw_rx_drop, &skel.maps.rx_count, "rx_count"),
        Which::Pass => (&skel.progs.xw_rx_pass, &skel.maps.rx_count, "rx_count"),
    };
    let prog = prog
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::sys("duplicating the program fd", e))?;
    let counter = MapHandle::try_from(counter).map_err(|source| Error::Map {
        map: counter_name,
        source,
    })?;
    Ok(Loaded {
        prog,
        counter,
        counter_name,
    })
}

fn read_counter(l: &Loaded) -> Result<Vec<types::gen_counter>> {
    let vals = l
        .counter
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(|source| Error::Map {
            map: l.counter_name,
            source,
        })?
        .unwrap_or_default();
    Ok(vals
        .iter()
        .map(|v| {
            let mut c = types::gen_counter::default();
            let n = std::mem::size_of::<types::gen_counter>().min(v.len());
            // SAFETY: gen_counter is plain old data (three u64s); at most its
            // size is copied from the kernel's per-CPU value.
            unsafe {
                std::ptr::copy_nonoverlapping(v.as_ptr(), (&raw mut c).cast::<u8>(), n);
            }
            c
        })
        .collect())
}

/// The number of possible CPUs (the per-CPU maps' width).
///
/// # Errors
/// libbpf cannot read it.
pub fn possible_cpus() -> Result<u32> {
    libbpf_rs::num_possible_cpus()
        .map(|n| n as u32)
        .map_err(|e| {
            Error::sys(
                "reading the possible CPUs",
                std::io::Error::other(e.to_string()),
            )
        })
}

/// The generator program, configured for one frame template and its ranges.
#[derive(Debug)]
pub struct GenProgram {
    loaded: Loaded,
}

impl GenProgram {
    /// Loads the program for `spec` with sources from `src` and source ports
    /// from `sport`, returning `action` (XDP_TX to send).
    ///
    /// # Errors
    /// The ranges do not fit the spec, or the kernel refuses the program.
    pub fn load(spec: &FrameSpec, src: &AddrRange, sport: &PortRange, action: u32) -> Result<Self> {
        if src.is_v6() != spec.dst.is_ipv6() {
            return Err(Error::Invalid(format!(
                "source range {} and destination {} are of different families",
                src.first, spec.dst
            )));
        }
        if sport.count == 0 || u32::from(sport.first) + sport.count > 65536 {
            return Err(Error::Invalid("source port range leaves 0-65535".into()));
        }
        let cfg = types::gen_cfg {
            ipv6: u32::from(spec.src.is_ipv6()),
            tcp: u32::from(spec.proto == Proto::TcpSyn),
            l4_off: spec.l4_offset() as u32,
            cpus: possible_cpus()?,
            src_base: src.base(),
            src_count: src.count,
            src_step: src.step,
            sport_base: u32::from(sport.first),
            sport_count: sport.count,
            action,
        };
        Ok(GenProgram {
            loaded: load(Which::Gen, Some(cfg))?,
        })
    }

    /// The program fd (for BPF_PROG_TEST_RUN).
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.loaded.prog.as_fd()
    }

    /// Frames and bytes the program has handed out, per possible CPU.
    ///
    /// # Errors
    /// The map cannot be read.
    pub fn sent_per_cpu(&self) -> Result<Vec<Count>> {
        Ok(read_counter(&self.loaded)?
            .into_iter()
            .map(|c| Count {
                packets: c.packets,
                bytes: c.bytes,
            })
            .collect())
    }

    /// Sets, per CPU, the absolute frame count at which it stops sending
    /// (`None`: no limit) and the pacing gap between its frames (0: none).
    /// CPUs not listed keep theirs. Call only while nothing runs the program.
    ///
    /// # Errors
    /// The map cannot be read or written.
    pub fn set_controls(&self, controls: &[(usize, Option<u64>, u64)]) -> Result<()> {
        let mut vals = read_counter(&self.loaded)?;
        for &(cpu, limit, gap) in controls {
            let v = vals
                .get_mut(cpu)
                .ok_or_else(|| Error::Invalid(format!("CPU {cpu} is not a possible CPU")))?;
            v.limit = limit.unwrap_or(0);
            v.gap_ns = gap;
            v.next_ns = 0;
        }
        let raw: Vec<Vec<u8>> = vals
            .iter()
            .map(|v| {
                let mut b = vec![0u8; std::mem::size_of::<types::gen_counter>()];
                // SAFETY: gen_counter is plain old data; b has its size.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        (v as *const types::gen_counter).cast::<u8>(),
                        b.as_mut_ptr(),
                        b.len(),
                    );
                }
                b
            })
            .collect();
        self.loaded
            .counter
            .update_percpu(&0u32.to_ne_bytes(), &raw, MapFlags::ANY)
            .map_err(|source| Error::Map {
                map: self.loaded.counter_name,
                source,
            })
    }

    /// Runs the program once on `frame` without live frames (no transmit)
    /// and returns its verdict and the frame as the program left it.
    ///
    /// # Errors
    /// The kernel refuses the run.
    pub fn run_once(&self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        let mut out = vec![0u8; frame.len() + 256];
        // SAFETY: zeroed opts with sz set, as libbpf's OPTS convention requires.
        let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
        opts.data_in = frame.as_ptr().cast();
        opts.data_size_in = frame.len() as u32;
        opts.data_out = out.as_mut_ptr().cast();
        opts.data_size_out = out.len() as u32;
        opts.repeat = 1;
        // SAFETY: the buffers outlive the call and their sizes are given.
        let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.fd().as_raw_fd(), &mut opts) };
        if ret < 0 {
            return Err(Error::sys("BPF_PROG_TEST_RUN of the generator", errno(ret)));
        }
        out.truncate(opts.data_size_out as usize);
        Ok((opts.retval, out))
    }
}

/// A receiver program that counts every frame and then drops or passes it.
#[derive(Debug)]
pub struct Receiver {
    loaded: Loaded,
    verdict: u32,
}

impl Receiver {
    /// Loads the counting `XDP_DROP` receiver (the ceiling of any XDP filter).
    ///
    /// # Errors
    /// The kernel refuses the program.
    pub fn drop_all() -> Result<Self> {
        Ok(Receiver {
            loaded: load(Which::Drop, None)?,
            verdict: XDP_DROP,
        })
    }

    /// Loads the counting `XDP_PASS` receiver.
    ///
    /// # Errors
    /// The kernel refuses the program.
    pub fn pass_all() -> Result<Self> {
        Ok(Receiver {
            loaded: load(Which::Pass, None)?,
            verdict: XDP_PASS,
        })
    }

    /// The verdict it returns for every frame.
    #[must_use]
    pub fn verdict(&self) -> u32 {
        self.verdict
    }

    /// The program fd.
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.loaded.prog.as_fd()
    }

    /// Attaches it in native (driver) mode to `ifindex` of the calling
    /// thread's network namespace; replaces nothing.
    ///
    /// # Errors
    /// Something is attached there already, or the driver has no native XDP.
    pub fn attach(&self, ifindex: u32) -> Result<()> {
        // SAFETY: zeroed opts with sz set.
        let mut opts: libbpf_sys::bpf_xdp_attach_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as _;
        let flags = libbpf_sys::XDP_FLAGS_DRV_MODE | libbpf_sys::XDP_FLAGS_UPDATE_IF_NOEXIST;
        // SAFETY: valid fd and opts.
        let ret = unsafe {
            libbpf_sys::bpf_xdp_attach(ifindex as i32, self.fd().as_raw_fd(), flags, &opts)
        };
        if ret < 0 {
            return Err(Error::sys(
                format!("attaching the receiver to ifindex {ifindex} (native mode)"),
                errno(ret),
            ));
        }
        Ok(())
    }

    /// Detaches it from `ifindex` (only if it is still the one attached).
    ///
    /// # Errors
    /// Netlink fails or another program is attached.
    pub fn detach(&self, ifindex: u32) -> Result<()> {
        // SAFETY: zeroed opts with sz set.
        let mut opts: libbpf_sys::bpf_xdp_attach_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as _;
        opts.old_prog_fd = self.fd().as_raw_fd();
        let flags = libbpf_sys::XDP_FLAGS_DRV_MODE | libbpf_sys::XDP_FLAGS_REPLACE;
        // SAFETY: valid opts; fd -1 detaches.
        let ret = unsafe { libbpf_sys::bpf_xdp_attach(ifindex as i32, -1, flags, &opts) };
        if ret < 0 {
            return Err(Error::sys(
                format!("detaching the receiver from ifindex {ifindex}"),
                errno(ret),
            ));
        }
        Ok(())
    }

    /// Frames and bytes it has seen, summed over CPUs.
    ///
    /// # Errors
    /// The map cannot be read.
    pub fn count(&self) -> Result<Count> {
        Ok(read_counter(&self.loaded)?
            .into_iter()
            .fold(Count::default(), |a, c| Count {
                packets: a.packets + c.packets,
                bytes: a.bytes + c.bytes,
            }))
    }
}
