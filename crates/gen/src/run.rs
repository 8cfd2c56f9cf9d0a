//! Driving the generator: one thread per chosen CPU, each pinned there and
//! looping BPF_PROG_TEST_RUN with live frames on the transmit interface,
//! paced against the clock when a rate is asked for.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use libbpf_rs::libbpf_sys;

use crate::error::{errno, Error, Result};
use crate::netdev::link_stats;
use crate::prog::{Count, GenProgram};

/// The kernel's largest live-frames batch (TEST_XDP_MAX_BATCH).
pub const MAX_BATCH: u32 = 256;

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
    /// Nice value for the sending threads (e.g. -20 on a busy machine, so
    /// the senders, and the receiver work that runs in their softirq, keep
    /// their CPU); `None` leaves it.
    pub nice: Option<i32>,
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

pub(crate) fn renice(nice: i32) -> Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority on this thread's id.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) } != 0 {
        return Err(Error::sys(
            format!("setting nice {nice} on a sender"),
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

/// The signal that interrupts a sender's BPF_PROG_TEST_RUN call (the
/// kernel ends a live-frames run when a signal is pending). A no-op handler
/// is installed for it, once, if it has none.
const WAKE_SIGNAL: libc::c_int = libc::SIGURG;

extern "C" fn on_wake(_: libc::c_int) {}

fn install_wake_handler() -> Result<()> {
    // SAFETY: reading the current disposition into a zeroed sigaction.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries.
    if unsafe { libc::sigaction(WAKE_SIGNAL, std::ptr::null(), &mut old) } != 0 {
        return Err(Error::sys("sigaction", std::io::Error::last_os_error()));
    }
    if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
        return Ok(()); // someone's handler: it interrupts the call just as well
    }
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask; no
    // SA_RESTART, so the interrupted call returns EINTR.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_wake as extern "C" fn(libc::c_int) as usize;
    // SAFETY: sa is valid.
    if unsafe { libc::sigaction(WAKE_SIGNAL, &sa, std::ptr::null_mut()) } != 0 {
        return Err(Error::sys("sigaction", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// One sender thread's loop: as few calls as possible, each as long as
/// possible (setting up and tearing down a live-frames run costs about an
/// RCU grace period, ~20 ms here), until its limit or until stopped.
fn send(
    prog: i32,
    frame: &[u8],
    opts: &GenOptions,
    quota: Option<u64>,
    paced: bool,
    sent: impl Fn() -> u64,
    stop: &AtomicBool,
) -> Result<()> {
    let start = sent();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let done = sent() - start;
        // Unpaced with a quota: exactly the frames still due, no spinning.
        // Otherwise the program holds back what is over the limit or ahead
        // of the pace, and the call runs until interrupted.
        let n = match quota {
            Some(q) if done >= q => return Ok(()),
            Some(q) if !paced => q - done,
            _ => i32::MAX as u64,
        };
        match live_run(prog, frame, opts.ifindex, n, opts.batch) {
            // A whole call that sent nothing: the program refuses the
            // frame (shorter than the template it was loaded for).
            Ok(()) if !paced && quota.is_some() && sent() - start == done => {
                return Err(Error::Invalid(
                    "the generator program sent none of the frames: the frame does not match the template it was loaded for".into(),
                ));
            }
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => {
                return Err(Error::sys(
                    format!(
                        "BPF_PROG_TEST_RUN with live frames on ifindex {}",
                        opts.ifindex
                    ),
                    e,
                ))
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
/// run early (e.g. on Ctrl-C). `tick` is called about every 2 ms with the
/// time since the start while the senders run (to sample counters).
///
/// # Errors
/// Bad options, a thread cannot enter the namespace or be pinned, or the
/// kernel refuses the test run (e.g. no such interface).
pub fn run_with(
    prog: &GenProgram,
    frame: &[u8],
    opts: &GenOptions,
    stop: &AtomicBool,
    tick: &mut dyn FnMut(Duration),
) -> Result<Report> {
    check(opts, &allowed_cpus()?)?;
    install_wake_handler()?;
    let before = prog.sent_per_cpu()?;
    let link_before = link_stats(opts.netns.as_deref(), opts.ifindex)?;
    let n = opts.cpus.len() as u64;
    let quotas: Vec<Option<u64>> = (0..n)
        .map(|i| opts.count.map(|c| c / n + u64::from(i < c % n)))
        .collect();
    let gap = opts
        .rate
        .map_or(0, |r| (1e9 * n as f64 / r as f64).round().max(1.0) as u64);
    let controls: Vec<(usize, Option<u64>, u64)> = opts
        .cpus
        .iter()
        .zip(&quotas)
        .map(|(&cpu, q)| {
            (
                cpu,
                q.map(|q| before.get(cpu).map_or(0, |c| c.packets) + q),
                gap,
            )
        })
        .collect();
    prog.set_controls(&controls)?;
    let sent_on = |cpu: usize| {
        move || {
            prog.sent_per_cpu()
                .ok()
                .and_then(|v| v.get(cpu).map(|c| c.packets))
                .unwrap_or(0)
        }
    };
    let fd = prog.fd().as_raw_fd();
    let barrier = Barrier::new(opts.cpus.len() + 1);
    let halt = AtomicBool::new(false);
    let threads: Vec<(AtomicU64, AtomicBool)> = opts
        .cpus
        .iter()
        .map(|_| (AtomicU64::new(0), AtomicBool::new(false)))
        .collect();
    let (start, elapsed, results) = std::thread::scope(|s| {
        let handles: Vec<_> = opts
            .cpus
            .iter()
            .zip(&quotas)
            .zip(&threads)
            .map(|((&cpu, &quota), (tid, finished))| {
                let (barrier, halt) = (&barrier, &halt);
                let sent = sent_on(cpu);
                s.spawn(move || -> Result<()> {
                    // SAFETY: pthread_self has no preconditions.
                    tid.store(unsafe { libc::pthread_self() } as u64, Ordering::SeqCst);
                    let ready = opts
                        .netns
                        .as_deref()
                        .map_or(Ok(()), enter_netns)
                        .and_then(|()| pin(cpu))
                        .and_then(|()| opts.nice.map_or(Ok(()), renice));
                    // Everyone reaches the barrier, ready or not, so nobody waits forever.
                    barrier.wait();
                    let r = ready.and_then(|()| send(fd, frame, opts, quota, gap > 0, sent, halt));
                    if r.is_err() {
                        // One sender failed: stop the others too.
                        halt.store(true, Ordering::SeqCst);
                    }
                    finished.store(true, Ordering::SeqCst);
                    r
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let deadline = opts.duration.map(|d| start + d);
        let mut elapsed = None;
        // Watch: deadline, Ctrl-C, limits reached; then interrupt the calls
        // until every sender has left (a signal can land just before a call).
        while !threads.iter().all(|t| t.1.load(Ordering::SeqCst)) {
            let now = Instant::now();
            let limits_done = opts.count.is_some()
                && controls
                    .iter()
                    .all(|&(cpu, lim, _)| lim.is_none_or(|l| sent_on(cpu)() >= l));
            if !halt.load(Ordering::SeqCst)
                && (stop.load(Ordering::Relaxed)
                    || deadline.is_some_and(|d| now >= d)
                    || limits_done)
            {
                halt.store(true, Ordering::SeqCst);
                elapsed = Some(now - start);
            }
            if halt.load(Ordering::SeqCst) {
                for (tid, finished) in &threads {
                    if !finished.load(Ordering::SeqCst) {
                        // SAFETY: the thread is alive (not finished) and its id was stored before the barrier.
                        unsafe {
                            libc::pthread_kill(
                                tid.load(Ordering::SeqCst) as libc::pthread_t,
                                WAKE_SIGNAL,
                            )
                        };
                    }
                }
            } else {
                tick(now - start);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let results: Vec<Result<()>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Invalid("a sender thread panicked".into())))
            })
            .collect();
        (start, elapsed, results)
    });
    let elapsed = elapsed.unwrap_or_else(|| start.elapsed());
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

/// [`run_with`] without a tick.
///
/// # Errors
/// As [`run_with`].
pub fn run(
    prog: &GenProgram,
    frame: &[u8],
    opts: &GenOptions,
    stop: &AtomicBool,
) -> Result<Report> {
    run_with(prog, frame, opts, stop, &mut |_| {})
}
