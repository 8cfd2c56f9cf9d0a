//! Driving the generator: one thread per chosen CPU, each pinned there and
//! looping BPF_PROG_TEST_RUN with live frames on the transmit interface,
//! paced against the clock when a rate is asked for.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use libbpf_rs::libbpf_sys;

use crate::error::{errno, Error, Result};
use crate::netdev::link_stats;
use crate::prog::{Count, GenProgram};

/// The kernel's largest live-frames batch (TEST_XDP_MAX_BATCH).
pub const MAX_BATCH: u32 = 256;
/// Frames per BPF_PROG_TEST_RUN call when sending as fast as possible:
/// a few milliseconds of work, so a deadline or Ctrl-C is noticed quickly.
const UNPACED_CALL: u64 = 16_384;

/// How to send.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Interface index to transmit on, in `netns` (or the caller's namespace).
    pub ifindex: u32,
    /// A network namespace file (`/run/netns/NAME`) the sending threads
    /// enter first; the interface index is resolved there.
    pub netns: Option<PathBuf>,
    /// One sending thread per entry, pinned to that CPU.
    pub cpus: Vec<usize>,
    /// Frames the kernel runs per batch inside one call (1..=256).
    pub batch: u32,
    /// Total frames per second over all threads; `None`: as fast as possible.
    pub rate: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many frames in total (split evenly over the threads).
    pub count: Option<u64>,
}

/// What was sent, from the program's own per-CPU counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Frames and bytes over all CPUs.
    pub sent: Count,
    /// Per sending CPU: (cpu, frames and bytes).
    pub per_cpu: Vec<(usize, Count)>,
    /// From the threads' common start to the last thread's end.
    pub elapsed: Duration,
    /// Frames the transmit interface dropped during the run (its
    /// `tx_dropped`; a veth counts there the frames its peer had no room
    /// for). Sent minus these is what left the interface.
    pub tx_dropped: u64,
}

impl Report {
    /// Frames per second.
    #[must_use]
    pub fn pps(&self) -> f64 {
        self.sent.packets as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Bits per second on the wire, counting the Ethernet FCS, preamble and gap (24 bytes a frame).
    #[must_use]
    pub fn wire_bps(&self) -> f64 {
        (self.sent.bytes + 24 * self.sent.packets) as f64 * 8.0
            / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The CPUs this process may run on, in order.
///
/// # Errors
/// `sched_getaffinity` fails.
pub fn allowed_cpus() -> Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is valid and its size is passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(Error::sys(
            "sched_getaffinity",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: CPU_ISSET reads the set within its bounds.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

fn pin(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes within the set for cpu < CPU_SETSIZE (checked by the caller).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: set is valid and its size is passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(Error::sys(
            format!("pinning a sender to CPU {cpu}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

pub(crate) fn enter_netns(path: &std::path::Path) -> Result<()> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::sys(format!("opening {}", path.display()), e))?;
    // SAFETY: the fd is valid for the call; setns changes only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::sys(
            format!("entering network namespace {}", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// One BPF_PROG_TEST_RUN call with live frames: `repeat` frames out of `ifindex`.
fn live_run(prog: i32, frame: &[u8], ifindex: u32, repeat: u64, batch: u32) -> std::io::Result<()> {
    let ctx = libbpf_sys::xdp_md {
        data: 0,
        data_end: frame.len() as u32,
        data_meta: 0,
        ingress_ifindex: ifindex,
        rx_queue_index: 0,
        egress_ifindex: 0,
    };
    // SAFETY: zeroed opts with sz set, as libbpf's OPTS convention requires.
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    opts.data_in = frame.as_ptr().cast();
    opts.data_size_in = frame.len() as u32;
    opts.ctx_in = (&raw const ctx).cast();
    opts.ctx_size_in = std::mem::size_of::<libbpf_sys::xdp_md>() as u32;
    opts.repeat = i32::try_from(repeat).unwrap_or(i32::MAX);
    opts.flags = libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES;
    opts.batch_size = batch;
    // SAFETY: frame and ctx outlive the call; no output buffers (live mode forbids them).
    let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog, &mut opts) };
    if ret < 0 {
        Err(errno(ret))
    } else {
        Ok(())
    }
}

/// One sender: sends its share until quota, deadline or stop; returns when done.
struct Sender<'a> {
    prog: i32,
    frame: &'a [u8],
    opts: &'a GenOptions,
    quota: Option<u64>,
    rate: Option<f64>,
}

impl Sender<'_> {
    fn run(&self, start: Instant, stop: &AtomicBool) -> Result<()> {
        let deadline = self.opts.duration.map(|d| start + d);
        let per_call = match self.rate {
            // About a millisecond of frames per call, so pacing is smooth.
            Some(r) => ((r / 1000.0) as u64).clamp(1, UNPACED_CALL),
            None => UNPACED_CALL,
        };
        let mut done = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(());
            }
            let left = self.quota.map_or(u64::MAX, |q| q - done);
            if left == 0 {
                return Ok(());
            }
            if let Some(r) = self.rate {
                let due = start + Duration::from_secs_f64(done as f64 / r);
                if due > now {
                    let wake = deadline.map_or(due, |d| due.min(d));
                    std::thread::sleep(wake - now);
                    continue;
                }
            }
            let n = per_call.min(left);
            match live_run(self.prog, self.frame, self.opts.ifindex, n, self.opts.batch) {
                Ok(()) => done += n,
                // A signal interrupted the call part-way; the program's
                // counters still say what was sent. Stop if asked to.
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                    if self.quota.is_some() {
                        return Err(Error::sys(
                            "BPF_PROG_TEST_RUN interrupted by a signal: the frame count is not exact",
                            e,
                        ));
                    }
                }
                Err(e) => {
                    return Err(Error::sys(
                        format!(
                            "BPF_PROG_TEST_RUN with live frames on ifindex {}",
                            self.opts.ifindex
                        ),
                        e,
                    ))
                }
            }
        }
    }
}

fn check(opts: &GenOptions, allowed: &[usize]) -> Result<()> {
    if opts.cpus.is_empty() {
        return Err(Error::Invalid("no CPU to send from".into()));
    }
    for c in &opts.cpus {
        if !allowed.contains(c) {
            return Err(Error::Invalid(format!(
                "CPU {c} is not available to this process (allowed: {allowed:?})"
            )));
        }
    }
    let mut sorted = opts.cpus.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != opts.cpus.len() {
        return Err(Error::Invalid(
            "a CPU is listed twice: the counters are per CPU".into(),
        ));
    }
    if !(1..=MAX_BATCH).contains(&opts.batch) {
        return Err(Error::Invalid(format!(
            "batch {} not in 1..={MAX_BATCH}",
            opts.batch
        )));
    }
    if opts.rate == Some(0) {
        return Err(Error::Invalid("rate must be above 0 (or `max`)".into()));
    }
    if opts.duration.is_none() && opts.count.is_none() {
        return Err(Error::Invalid(
            "give a duration or a frame count, or both".into(),
        ));
    }
    Ok(())
}

/// Sends `frame` through `prog` as `opts` says and reports what the
/// program's counters saw (the difference across the run). `stop` ends the
/// run early (e.g. on Ctrl-C).
///
/// # Errors
/// Bad options, a thread cannot enter the namespace or be pinned, or the
/// kernel refuses the test run (e.g. no such interface).
pub fn run(
    prog: &GenProgram,
    frame: &[u8],
    opts: &GenOptions,
    stop: &AtomicBool,
) -> Result<Report> {
    check(opts, &allowed_cpus()?)?;
    let before = prog.sent_per_cpu()?;
    let link_before = link_stats(opts.netns.as_deref(), opts.ifindex)?;
    let n = opts.cpus.len() as u64;
    let fd = prog.fd().as_raw_fd();
    let barrier = Barrier::new(opts.cpus.len() + 1);
    let (start, results) = std::thread::scope(|s| {
        let handles: Vec<_> = opts
            .cpus
            .iter()
            .enumerate()
            .map(|(i, &cpu)| {
                let i = i as u64;
                let sender = Sender {
                    prog: fd,
                    frame,
                    opts,
                    quota: opts.count.map(|c| c / n + u64::from(i < c % n)),
                    rate: opts.rate.map(|r| r as f64 / n as f64),
                };
                let barrier = &barrier;
                s.spawn(move || -> Result<()> {
                    let ready = opts
                        .netns
                        .as_deref()
                        .map_or(Ok(()), enter_netns)
                        .and_then(|()| pin(cpu));
                    // Everyone reaches the barrier, ready or not, so nobody waits forever.
                    barrier.wait();
                    ready?;
                    let start = Instant::now();
                    sender.run(start, stop)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<Result<()>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Invalid("a sender thread panicked".into())))
            })
            .collect();
        (start, results)
    });
    let elapsed = start.elapsed();
    let after = prog.sent_per_cpu()?;
    let tx_dropped = link_stats(opts.netns.as_deref(), opts.ifindex)?
        .since(&link_before)
        .tx_dropped;
    let mut per_cpu = Vec::new();
    let mut sent = Count::default();
    for &cpu in &opts.cpus {
        let (b, a) = (
            before.get(cpu).copied().unwrap_or_default(),
            after.get(cpu).copied().unwrap_or_default(),
        );
        let c = Count {
            packets: a.packets - b.packets,
            bytes: a.bytes - b.bytes,
        };
        sent.packets += c.packets;
        sent.bytes += c.bytes;
        per_cpu.push((cpu, c));
    }
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(Report {
        sent,
        per_cpu,
        elapsed,
        tx_dropped,
    })
}
