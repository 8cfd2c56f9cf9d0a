//! Transport benchmark: the event path from the XDP program to user space,
//! ring buffer against perf buffer, measured in one run on this machine.
//!
//! Producers are threads pinned to CPU 0 (and CPU 1) that run the real
//! program with `BPF_PROG_TEST_RUN` on a logged UDP frame; every run emits
//! one event. The consumer is [`xdpwall_events::Consumer`] on the calling
//! thread, pinned to the last allowed CPU (with two producers it shares that
//! CPU with the second one). Each cell loads its own program (transport,
//! wake-up policy and snaplen are load-time constants), produces a fixed
//! number of events, waits until the producers are done and the consumer
//! has drained, and then requires `produced == delivered + lost` exactly.
//! The drains ([`drain`]) then measure each consumer's own cost a record on
//! a buffer filled while nobody reads.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::stats;
use xdpwall_events::clock::WallClock;
use xdpwall_events::record::HEADER;
use xdpwall_events::{Consumer, ConsumerOptions, Poll};
use xdpwall_rules::compile::{abi, compile};
use xdpwall_rules::parse_config;

mod chart;
mod drain;
mod targets;

pub use chart::{delivered_bars, order_bars, order_svg_path, svg};
pub use drain::{drain_markdown, DrainRow};
pub use targets::{
    default_wakeup, targets, targets_markdown, RingVsPerf, RustVsC, Targets, REORDER_GOAL,
    RUST_VS_C_GOAL,
};

/// Event transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One BPF ring buffer shared by all CPUs.
    Ringbuf,
    /// Per-CPU perf buffers.
    Perfbuf,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::Ringbuf => "ringbuf",
            Self::Perfbuf => "perfbuf",
        }
    }

    fn abi(self) -> u32 {
        match self {
            Self::Ringbuf => abi::TRANSPORT_RINGBUF,
            Self::Perfbuf => abi::TRANSPORT_PERFBUF,
        }
    }
}

/// Ring-buffer wake-up policy (`[events] wakeup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wakeup {
    /// A forced wake-up per record.
    Every,
    /// One wake-up per N records (per CPU).
    Batch(u32),
    /// Watermark or timer (the program's default policy).
    Adaptive,
}

impl Wakeup {
    fn toml(self) -> String {
        match self {
            Self::Every => "\"every\"".into(),
            Self::Batch(n) => n.to_string(),
            Self::Adaptive => "\"adaptive\"".into(),
        }
    }

    fn label(self) -> String {
        match self {
            Self::Every => "every".into(),
            Self::Batch(n) => format!("batch {n}"),
            Self::Adaptive => "adaptive".into(),
        }
    }

    /// The perf buffer's records per wake-up for this policy (adaptive has
    /// no perf form: 64).
    fn perf_per_wakeup(self) -> u32 {
        match self {
            Self::Every => 1,
            Self::Batch(n) => n,
            Self::Adaptive => 64,
        }
    }
}

/// The map `t` reads in `inst`.
fn transport_map(inst: &xdpwall_dataplane::Instance, t: Transport) -> &libbpf_rs::MapHandle {
    match t {
        Transport::Ringbuf => &inst.maps.ring,
        Transport::Perfbuf => &inst.maps.perf,
    }
}

/// xdpwall's consumer on `inst`, doing per record what the C consumer does:
/// the time after decoding, into `seen`.
fn open_consumer<'a>(
    inst: &'a xdpwall_dataplane::Instance,
    t: Transport,
    copts: ConsumerOptions,
    seen: &Rc<RefCell<Seen>>,
) -> anyhow::Result<Consumer<'a>> {
    let sink = Rc::clone(seen);
    Consumer::new(inst, t.abi(), copts, move |r| {
        let now = WallClock::monotonic_now();
        sink.borrow_mut().record(r.header.ts_ns, r.header.cpu, now);
    })
    .context("open the consumer")
}

/// Refuses a consumer (`who`, process `pid`) whose perf mmap is not what
/// xdpwall's consumer maps for `buffer`: else Rust against C would compare
/// buffer sizes. Returns the bytes mapped.
fn check_perf_mmap(who: &str, pid: &str, buffer: u64) -> anyhow::Result<u64> {
    let mapped = perf_mmap_bytes(pid)?;
    let expected = perf_mmap_expected(buffer);
    if mapped != expected {
        bail!("{who} mapped {mapped} bytes of perf buffer, expected {expected}");
    }
    Ok(mapped)
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Events per cell (all producers together; split evenly).
    pub events: u64,
    /// Buffer size in bytes (`[events] buffer`: the ring, or the perf buffer
    /// split across CPUs).
    pub buffer: u64,
    /// Longest epoll sleep of the consumer.
    pub epoll_timeout: Duration,
    /// Program runs per `BPF_PROG_TEST_RUN` call at most (default: a
    /// producer's whole share in one call — every call with repeat > 1 has a
    /// fixed cost of milliseconds, the kernel moving the program into the
    /// XDP dispatcher and back).
    pub repeat: u32,
    /// Nice value of the producer and consumer threads (None: unchanged),
    /// so that other work on a shared machine disturbs the cells less.
    pub nice: Option<i32>,
    /// Longest wait for the consumer to catch up after the producers stop.
    pub drain_timeout: Duration,
    /// Packet bytes per record (snaplen); the frame is 1514 bytes.
    pub snaplens: Vec<u32>,
    /// Producer counts (1 and/or 2).
    pub producers: Vec<u32>,
    /// Transports to measure.
    pub transports: Vec<Transport>,
    /// Consumer waiting strategies to measure.
    pub polls: Vec<Poll>,
    /// Ring-buffer wake-up policies.
    pub ring_wakeups: Vec<Wakeup>,
    /// Perf-buffer wake-up policies (`Every` or `Batch(n)`: the events'
    /// `wakeup_events`; adaptive has no perf equivalent).
    pub perf_wakeups: Vec<Wakeup>,
    /// The C reference consumer (see [`crate::c_consumer::build`]): when
    /// set, every cell is measured again with it.
    pub c_consumer: Option<std::path::PathBuf>,
    /// Drain repetitions per transport and record size (0: no drains): the
    /// consumers' own speed on a pre-filled buffer.
    pub drain_reps: usize,
    /// Fills drained per drain repetition, at least.
    pub drain_rounds: u32,
    /// Records drained per drain repetition, at least (more fills of large
    /// records: a short drain is mostly noise).
    pub drain_records: u64,
    /// Repetitions per cell, run repetition-major (the whole matrix, then
    /// again); a row reports the repetition with the median delivered rate
    /// (and every repetition's rate), so one disturbed window does not
    /// decide a comparison. The Rust and C consumers alternate within a
    /// cell, each going first in every other repetition.
    pub reps: usize,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            events: 1_000_000,
            buffer: 8 << 20,
            epoll_timeout: Duration::from_millis(10),
            repeat: u32::MAX,
            nice: Some(-20),
            drain_timeout: Duration::from_secs(5),
            snaplens: vec![16, 128, 1500],
            producers: vec![1, 2],
            transports: vec![Transport::Ringbuf, Transport::Perfbuf],
            polls: vec![Poll::Epoll, Poll::Busy],
            ring_wakeups: vec![Wakeup::Every, Wakeup::Batch(64), Wakeup::Adaptive],
            perf_wakeups: vec![Wakeup::Every, Wakeup::Batch(64)],
            c_consumer: None,
            drain_reps: 9,
            drain_rounds: 4,
            drain_records: 200_000,
            reps: 1,
        }
    }
}

/// One measured cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransportRow {
    /// Transport.
    pub transport: Transport,
    /// Producer threads.
    pub producers: u32,
    /// Their CPUs.
    pub producer_cpus: Vec<usize>,
    /// The consumer's CPU.
    pub consumer_cpu: usize,
    /// Whether the consumer shares its CPU with a producer.
    pub consumer_shares_cpu: bool,
    /// Packet bytes per record.
    pub snaplen: u32,
    /// Record payload: event header + snaplen (transport framing not included).
    pub record_bytes: u32,
    /// Wake-up policy.
    pub wakeup: Wakeup,
    /// Consumer waiting strategy: "epoll" or "busy".
    pub consumer: String,
    /// Epoll timeout of the consumer in ms.
    pub epoll_timeout_ms: u64,
    /// Nice value of the producer and consumer threads (None: inherited).
    pub nice: Option<i32>,
    /// Most program runs per `BPF_PROG_TEST_RUN` call of a producer.
    pub runs_per_call: u64,
    /// Events the program tried to emit (kernel counter).
    pub produced: u64,
    /// Records handed to the consumer's callback.
    pub delivered: u64,
    /// Events that did not fit (kernel counter).
    pub lost: u64,
    /// lost / produced.
    pub loss_ratio: f64,
    /// Samples the perf buffer itself reported lost (its lost callback).
    pub perf_lost_reported: u64,
    /// Seconds from the producers' start until the producers were done.
    pub produce_s: f64,
    /// Seconds from the producers' start until everything was delivered.
    pub elapsed_s: f64,
    /// produced / produce_s.
    pub offered_per_s: f64,
    /// delivered / elapsed_s.
    pub delivered_per_s: f64,
    /// Delivery latency (consumer's CLOCK_MONOTONIC in the callback minus
    /// the record's ts_ns), median, µs.
    pub latency_p50_us: f64,
    /// 99th percentile, µs.
    pub latency_p99_us: f64,
    /// Largest, µs (exact).
    pub latency_max_us: f64,
    /// memlock of the transport's map (/proc/self/fdinfo).
    pub map_memlock_bytes: u64,
    /// Bytes of perf buffer mmaps in this process (/proc/self/maps,
    /// `[perf_event]`: (pages + 1 metadata page) × page × CPUs).
    pub perf_mmap_bytes: u64,
    /// memlock + perf mmaps: kernel memory held for the transport.
    pub held_bytes: u64,
    /// Process RSS after draining minus before opening the consumer
    /// (/proc/self/statm). The ring buffer maps its data pages twice.
    pub rss_delta_bytes: i64,
    /// Wake-ups the program asked for (ring buffer); None for the perf
    /// buffer, whose events libbpf opens with wakeup_events = 1.
    pub wakeups: Option<u64>,
    /// Delivered records whose ts_ns is older than the previous record's.
    pub order_violations: u64,
    /// Largest such backwards step, µs.
    pub max_backwards_us: f64,
    /// The same, counted per producing CPU (header.cpu).
    pub per_cpu_order_violations: u64,
    /// Delivered records whose ts_ns is older than the newest delivered
    /// before them: what a reader would have to hold back and re-sort.
    pub late_records: u64,
    /// Largest such lateness (newest so far − ts_ns), µs.
    pub max_lateness_us: f64,
    /// CPU time (user + system) of the consumer thread (or C process) from
    /// the producers' start to the end of the drain, per delivered record, ns.
    pub consumer_cpu_ns_per_record: f64,
    /// That CPU time over the elapsed time: the share of a CPU the consumer
    /// got (with a producer on its CPU, the rest went mostly to the producer).
    pub consumer_cpu_share: f64,
    /// Voluntary context switches of the consumer (it slept).
    pub consumer_voluntary_switches: u64,
    /// Involuntary context switches of the consumer (it was preempted).
    pub consumer_involuntary_switches: u64,
    /// Repetitions of this cell; the row is the one with the median delivered rate.
    pub reps: u32,
    /// Delivered events/s of every repetition, in the order run.
    pub delivered_per_s_reps: Vec<f64>,
    /// Events lost in every repetition, in the order run.
    pub lost_reps: Vec<u64>,
    /// Per producer (in `producer_cpus` order): its events / its own time.
    pub producer_per_s: Vec<f64>,
    /// Per producer: its CPU time / its own time (with the consumer on its
    /// CPU, what the consumer left it).
    pub producer_cpu_share: Vec<f64>,
}

/// Runs every cell. `progress` gets one line per cell.
///
/// # Errors
/// A cell cannot be set up, a producer or the consumer fails, or the
/// accounting does not balance (`produced != delivered + lost`).
pub fn transport(
    opts: &TransportOptions,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<TransportRow>> {
    if opts.events == 0 || opts.repeat == 0 || opts.reps == 0 {
        bail!("transport bench: events, repeat and reps must be at least 1");
    }
    if opts.transports.is_empty() || opts.polls.is_empty() {
        bail!("transport bench: no transport or no polling strategy to measure");
    }
    let cpus = allowed_cpus()?;
    let (first, last, _guards) = consumer_thread(opts)?;

    let mut cells = Vec::new();
    for &t in &opts.transports {
        for &np in &opts.producers {
            for &snaplen in &opts.snaplens {
                let wakes = match t {
                    Transport::Ringbuf => opts.ring_wakeups.clone(),
                    Transport::Perfbuf => opts.perf_wakeups.clone(),
                };
                for w in wakes {
                    for &poll in &opts.polls {
                        cells.push((t, np, snaplen, w, poll));
                    }
                }
            }
        }
    }
    let total = cells.len();
    let mut planned = Vec::new();
    for (i, (t, np, snaplen, w, poll)) in cells.into_iter().enumerate() {
        let producer_cpus: Vec<usize> = match np {
            1 => vec![first],
            2 if cpus.len() >= 2 => vec![cpus[0], cpus[1]],
            2 => {
                progress(&format!(
                    "[{}/{total}] skipped: 2 producers need 2 CPUs, {} allowed",
                    i + 1,
                    cpus.len()
                ));
                continue;
            }
            n => bail!("transport bench: {n} producers not supported (1 or 2)"),
        };
        planned.push(Cell {
            transport: t,
            producer_cpus,
            consumer_cpu: last,
            snaplen,
            wakeup: w,
            poll,
        });
    }
    // Repetition-major: every cell once, then every cell again, so a
    // disturbed stretch of the run (other work on a shared machine) hits
    // one repetition of many cells rather than every repetition of a few —
    // which the medians then discard.
    let mut rust_runs: Vec<Vec<TransportRow>> = planned.iter().map(|_| Vec::new()).collect();
    let mut c_runs: Vec<Vec<TransportRow>> = planned.iter().map(|_| Vec::new()).collect();
    for rep in 0..opts.reps {
        // Alternate who goes first, so drift within a cell hits both alike.
        let c_first = rep % 2 == 1;
        for (i, cell) in planned.iter().enumerate() {
            let run_c = |c_runs: &mut Vec<TransportRow>| -> anyhow::Result<()> {
                if let Some(bin) = &opts.c_consumer {
                    c_runs.push(
                        run_cell_c(cell, opts, bin)
                            .with_context(|| format!("cell {} (C consumer)", cell.label()))?,
                    );
                }
                Ok(())
            };
            if c_first {
                run_c(&mut c_runs[i])?;
            }
            rust_runs[i]
                .push(run_cell(cell, opts).with_context(|| format!("cell {}", cell.label()))?);
            if !c_first {
                run_c(&mut c_runs[i])?;
            }
            let r = rust_runs[i].last().ok_or_else(|| anyhow!("no run"))?;
            let c = c_runs[i]
                .last()
                .map(|c| {
                    format!(
                        "; C consumer {:.0} ev/s, {} lost",
                        c.delivered_per_s, c.lost
                    )
                })
                .unwrap_or_default();
            progress(&format!(
                "[rep {}/{}, {}/{}] {}: {:.0} ev/s delivered, {} lost of {}, p50 {:.1} µs, consumer {:.0} ns/record{c}",
                rep + 1,
                opts.reps,
                i + 1,
                planned.len(),
                cell.label(),
                r.delivered_per_s,
                r.lost,
                r.produced,
                r.latency_p50_us,
                r.consumer_cpu_ns_per_record,
            ));
        }
    }
    let mut rows = Vec::new();
    for (rust, c) in rust_runs.into_iter().zip(c_runs) {
        rows.push(median_row(rust)?);
        if !c.is_empty() {
            rows.push(median_row(c)?);
        }
    }
    Ok(rows)
}

/// Pins this thread (the consumer) to the last allowed CPU and sets its
/// nice value, until the guards drop; returns the first and last CPU.
fn consumer_thread(
    opts: &TransportOptions,
) -> anyhow::Result<(usize, usize, (AffinityGuard, Option<NiceGuard>))> {
    let cpus = allowed_cpus()?;
    let first = *cpus.first().ok_or_else(|| anyhow!("no allowed CPU"))?;
    let last = *cpus.last().ok_or_else(|| anyhow!("no allowed CPU"))?;
    let restore = AffinityGuard::save()?;
    pin(last).with_context(|| format!("pin the consumer to CPU {last}"))?;
    let nice = match opts.nice {
        Some(n) => Some(NiceGuard::set(n)?),
        None => None,
    };
    Ok((first, last, (restore, nice)))
}

/// The consumers' own speed: for each transport and record size, a buffer
/// filled while nobody reads is drained by xdpwall's consumer and by the C
/// one (when built), `drain_reps` times each.
///
/// # Errors
/// A program cannot be loaded, a fill overflows or a consumer stalls.
pub fn drain(
    opts: &TransportOptions,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<DrainRow>> {
    let (first, last, _guards) = consumer_thread(opts)?;
    drain::drains(opts, first, last, progress)
}

/// The repetition with the median delivered rate (the lower middle of an
/// even count), carrying every repetition's rate in run order.
fn median_row(runs: Vec<TransportRow>) -> anyhow::Result<TransportRow> {
    let rates: Vec<f64> = runs.iter().map(|r| r.delivered_per_s).collect();
    let lost: Vec<u64> = runs.iter().map(|r| r.lost).collect();
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| rates[a].total_cmp(&rates[b]));
    let pick = *order
        .get(order.len().saturating_sub(1) / 2)
        .ok_or_else(|| anyhow!("no repetition ran"))?;
    let mut row = runs
        .into_iter()
        .nth(pick)
        .ok_or_else(|| anyhow!("no repetition ran"))?;
    row.reps = u32::try_from(rates.len()).unwrap_or(u32::MAX);
    row.delivered_per_s_reps = rates;
    row.lost_reps = lost;
    Ok(row)
}

/// The same cell with the C reference consumer in a child process pinned to
/// the consumer CPU (its perf mmap is measured; map memlock is the map's;
/// RSS is not measured for it).
fn run_cell_c(cell: &Cell, opts: &TransportOptions, bin: &Path) -> anyhow::Result<TransportRow> {
    let (inst, pkt, quotas) = setup_cell(cell, opts)?;
    let perf = cell.transport == Transport::Perfbuf;
    let map = transport_map(&inst, cell.transport);
    let map_id = libbpf_rs::MapCore::info(map).context("map info")?.info.id;
    // The same pages per CPU as the Rust consumer maps, from the same
    // function (not from this thread's affinity: it is pinned to one CPU).
    let pages = xdpwall_events::consumer::perf_pages(opts.buffer);
    let child = crate::c_consumer::Running::start(
        bin,
        map_id,
        perf,
        cell.poll == Poll::Busy,
        cell.wakeup.perf_per_wakeup(),
        pages,
        cell.consumer_cpu,
    )?;
    // What the child mapped, measured like the Rust consumer's.
    let pid = child.pid().to_string();
    let perf_mmap = if perf {
        check_perf_mmap("the C consumer", &pid, opts.buffer)?
    } else {
        perf_mmap_bytes(&pid)?
    };
    let t0 = WallClock::monotonic_now();
    // This thread shares the consumer's CPU: it must not wake periodically
    // while it waits (a timer wake-up every millisecond there makes the
    // scheduler switch away from the producer on that CPU and so hands the
    // C consumer CPU time the Rust consumer does not get). It sleeps until a
    // producer finishes (each unparks it); the timeout is only a backstop.
    let produce = run_producers(&inst, cell, opts, &quotas, &pkt, || {
        std::thread::park_timeout(Duration::from_secs(1));
        Ok(())
    })?;
    let rep = child.finish()?;
    // Until its last record's callback, as for the Rust consumer — not
    // until it has sorted its latencies and reported.
    let elapsed = delivery_time(t0, rep.last_ns, rep.delivered, produce.time);
    let k = stats::events(&inst).context("read the event counters")?;
    if rep.delivered + k.lost != k.produced {
        bail!(
            "ACCOUNTING MISMATCH (C consumer): produced {} != delivered {} + lost {}",
            k.produced,
            rep.delivered,
            k.lost
        );
    }
    let memlock = fdinfo_memlock(map.as_fd().as_raw_fd())?;
    let times = Times {
        produce: produce.time,
        elapsed,
        producers: produce.each,
    };
    let side = ConsumerSide {
        name: format!("C {}", poll_name(cell.poll)),
        epoll_timeout_ms: 10,
        nice: None,
        delivered: rep.delivered,
        perf_lost: rep.lost_cb,
        latency_ns: [rep.p50_ns, rep.p99_ns, rep.max_ns],
        memlock,
        perf_mmap,
        rss_delta: 0,
        order: rep.order,
        max_back_ns: rep.maxback_ns,
        late: rep.late,
        max_late_ns: rep.maxlate_ns,
        per_cpu_order: rep.percpu,
        usage: Usage {
            cpu_ns: rep.cpu_ns,
            voluntary: rep.nvcsw,
            involuntary: rep.nivcsw,
        },
    };
    Ok(row(cell, opts, &quotas, &k, times, side))
}

struct Cell {
    transport: Transport,
    producer_cpus: Vec<usize>,
    consumer_cpu: usize,
    snaplen: u32,
    wakeup: Wakeup,
    poll: Poll,
}

impl Cell {
    fn label(&self) -> String {
        format!(
            "{} {}p {}B {} {}",
            self.transport.name(),
            self.producer_cpus.len(),
            self.snaplen,
            self.wakeup.label(),
            poll_name(self.poll)
        )
    }
}

fn poll_name(p: Poll) -> &'static str {
    match p {
        Poll::Epoll => "epoll",
        Poll::Busy => "busy",
    }
}

/// The logged frame: 1514 bytes of UDP over IPv4 (a full Ethernet frame).
fn frame() -> anyhow::Result<Vec<u8>> {
    let mut pkt = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([198, 51, 100, 1], [198, 51, 100, 2], 64)
        .udp(40_000, 9)
        .write(&mut pkt, &[0xab; 1472])
        .context("build the test frame")?;
    Ok(pkt)
}

fn config(cell: &Cell, buffer: u64) -> String {
    format!(
        "[events]\ntransport = \"{}\"\nbuffer = {buffer}\nsnaplen = {s}\nwakeup = {}\n\n\
         [[rule]]\nname = \"l\"\nproto = \"udp\"\naction = \"drop\"\nlog = {{ snaplen = {s} }}\n",
        cell.transport.name(),
        cell.wakeup.toml(),
        s = cell.snaplen,
    )
}

/// What the consumer saw; allocated before the RSS baseline. Per record
/// the same work as the C consumer's `record()`.
struct Seen {
    lat: Latencies,
    delivered: u64,
    /// CLOCK_MONOTONIC of the last record's callback.
    last_now: u64,
    prev_ts: Option<u64>,
    violations: u64,
    max_back_ns: u64,
    /// Newest ts_ns delivered so far.
    newest: u64,
    /// Records older than the newest delivered before them.
    late: u64,
    /// Largest such lateness, ns.
    max_late_ns: u64,
    cpu_last: Vec<u64>,
    cpu_violations: u64,
    bad_cpu: u64,
}

impl Seen {
    fn new() -> Self {
        Self {
            // The C consumer's size, whatever the cell: a buffer sized to
            // the cell (1.6 MiB in a 1540-byte drain) lies on 4 KiB pages,
            // the C consumer's 32 MiB mostly on huge pages, and the extra
            // TLB entries cost a consumer whose ring already needs a new
            // page every few records.
            lat: Latencies::new(MAX_LATENCIES),
            delivered: 0,
            last_now: 0,
            prev_ts: None,
            violations: 0,
            max_back_ns: 0,
            newest: 0,
            late: 0,
            max_late_ns: 0,
            cpu_last: vec![0; MAX_CPUS],
            cpu_violations: 0,
            bad_cpu: 0,
        }
    }

    fn record(&mut self, ts: u64, cpu: u32, now: u64) {
        self.delivered += 1;
        self.last_now = now;
        self.lat.add(now.saturating_sub(ts));
        if let Some(prev) = self.prev_ts {
            if ts < prev {
                self.violations += 1;
                self.max_back_ns = self.max_back_ns.max(prev - ts);
            }
        }
        self.prev_ts = Some(ts);
        if ts < self.newest {
            self.late += 1;
            self.max_late_ns = self.max_late_ns.max(self.newest - ts);
        } else {
            self.newest = ts;
        }
        match self.cpu_last.get_mut(cpu as usize) {
            Some(last) => {
                if ts < *last {
                    self.cpu_violations += 1;
                }
                *last = ts;
            }
            None => self.bad_cpu += 1,
        }
    }
}

/// Counts a producer as done however its thread exits, and wakes the
/// waiting thread.
struct DoneGuard<'a>(&'a AtomicUsize, std::thread::Thread);

impl Drop for DoneGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
        self.1.unpark();
    }
}

/// Loads the program for `cell` and splits the events among its producers.
fn setup_cell(
    cell: &Cell,
    opts: &TransportOptions,
) -> anyhow::Result<(xdpwall_dataplane::Instance, Vec<u8>, Vec<u64>)> {
    let text = config(cell, opts.buffer);
    let cfg = parse_config(&text, Path::new("bench-transport.toml")).map_err(|e| anyhow!("{e}"))?;
    let compiled = compile(&cfg).map_err(|e| anyhow!("{e:?}"))?;
    let inst = load(
        &compiled,
        LoadOptions {
            trace: false,
            ..Default::default()
        },
    )
    .context("load the program")?;
    let np = cell.producer_cpus.len().max(1);
    let per = opts.events / np as u64;
    let quotas = (0..np)
        .map(|i| {
            if i + 1 == np {
                opts.events - per * (np as u64 - 1)
            } else {
                per
            }
        })
        .collect();
    Ok((inst, frame()?, quotas))
}

#[allow(clippy::too_many_lines)]
fn run_cell(cell: &Cell, opts: &TransportOptions) -> anyhow::Result<TransportRow> {
    let (inst, pkt, quotas) = setup_cell(cell, opts)?;

    let seen = Rc::new(RefCell::new(Seen::new()));
    let rss0 = rss_bytes()?;
    let copts = ConsumerOptions {
        poll: cell.poll,
        timeout: opts.epoll_timeout,
        buffer: opts.buffer,
        perf_per_wakeup: cell.wakeup.perf_per_wakeup(),
    };
    let consumer = open_consumer(&inst, cell.transport, copts, &seen)?;
    let memlock = fdinfo_memlock(transport_map(&inst, cell.transport).as_fd().as_raw_fd())?;
    let perf_mmap = if cell.transport == Transport::Perfbuf {
        check_perf_mmap("xdpwall's consumer", "self", opts.buffer)?
    } else {
        perf_mmap_bytes("self")?
    };

    let inst_ref = &inst;
    let usage0 = thread_usage()?;
    let t0 = WallClock::monotonic_now();
    let produce = run_producers(inst_ref, cell, opts, &quotas, &pkt, || {
        consumer
            .poll()
            .map_err(|e| anyhow::Error::new(e).context("consumer poll"))
    })?;
    let k = {
        // Everything is committed once the producers' test runs returned:
        // drain until the books balance.
        let deadline = Instant::now() + opts.drain_timeout;
        loop {
            consumer.drain().context("drain")?;
            let k = stats::events(inst_ref).context("read the event counters")?;
            let delivered = consumer.delivery().delivered;
            if delivered + k.lost == k.produced {
                break k;
            }
            if delivered + k.lost > k.produced || Instant::now() > deadline {
                bail!(
                    "ACCOUNTING MISMATCH: produced {} != delivered {delivered} + lost {} (waited {:?} after the producers)",
                    k.produced,
                    k.lost,
                    opts.drain_timeout
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let usage = thread_usage()?.since(usage0);
    let rss1 = rss_bytes()?;
    let d = consumer.delivery();
    drop(consumer);
    let mut seen = seen.borrow_mut();
    let latency_ns = seen.lat.quantiles();
    let elapsed = delivery_time(t0, seen.last_now, seen.delivered, produce.time);
    if k.produced != opts.events {
        bail!(
            "ACCOUNTING MISMATCH: the program counted {} events produced for {} runs",
            k.produced,
            opts.events
        );
    }
    if d.malformed != 0 || d.delivered != seen.delivered || seen.bad_cpu != 0 {
        bail!(
            "consumer saw {} malformed records, {} records with a CPU >= {}, delivered {} vs {} counted by the callback",
            d.malformed,
            seen.bad_cpu,
            seen.cpu_last.len(),
            d.delivered,
            seen.delivered
        );
    }
    if d.delivered + k.lost != k.produced {
        bail!(
            "ACCOUNTING MISMATCH: produced {} != delivered {} + lost {}",
            k.produced,
            d.delivered,
            k.lost
        );
    }
    let side = ConsumerSide {
        name: poll_name(cell.poll).into(),
        epoll_timeout_ms: u64::try_from(opts.epoll_timeout.as_millis()).unwrap_or(u64::MAX),
        nice: opts.nice,
        delivered: d.delivered,
        perf_lost: d.perf_lost,
        latency_ns,
        memlock,
        perf_mmap,
        rss_delta: i64::try_from(rss1).unwrap_or(i64::MAX)
            - i64::try_from(rss0).unwrap_or(i64::MAX),
        order: seen.violations,
        max_back_ns: seen.max_back_ns,
        late: seen.late,
        max_late_ns: seen.max_late_ns,
        per_cpu_order: seen.cpu_violations,
        usage,
    };
    Ok(row(
        cell,
        opts,
        &quotas,
        &k,
        Times {
            produce: produce.time,
            elapsed,
            producers: produce.each,
        },
        side,
    ))
}

/// Time from `t0` (CLOCK_MONOTONIC ns) to the last record's callback at
/// `last` — the same definition for both consumers; the producers' time
/// when nothing was delivered.
fn delivery_time(t0: u64, last: u64, delivered: u64, produce: Duration) -> Duration {
    if delivered == 0 || last < t0 {
        return produce;
    }
    Duration::from_nanos(last - t0).max(produce)
}

/// CPU time and context switches of a consumer over a cell.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu_ns: u64,
    voluntary: u64,
    involuntary: u64,
}

impl Usage {
    fn since(self, before: Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns.saturating_sub(before.cpu_ns),
            voluntary: self.voluntary.saturating_sub(before.voluntary),
            involuntary: self.involuntary.saturating_sub(before.involuntary),
        }
    }
}

/// The calling thread's CPU time and context switches so far.
fn thread_usage() -> anyhow::Result<Usage> {
    // SAFETY: rusage is plain data; all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrusage(RUSAGE_THREAD)");
    }
    let ns = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_usec).unwrap_or(0) * 1_000
    };
    Ok(Usage {
        cpu_ns: ns(ru.ru_utime) + ns(ru.ru_stime),
        voluntary: u64::try_from(ru.ru_nvcsw).unwrap_or(0),
        involuntary: u64::try_from(ru.ru_nivcsw).unwrap_or(0),
    })
}

/// When the producers were done, and when everything was delivered.
struct Times {
    produce: Duration,
    elapsed: Duration,
    /// Per producer: events/s, CPU share.
    producers: Vec<(f64, f64)>,
}

/// What a consumer (xdpwall's or the C reference) measured in one cell.
struct ConsumerSide {
    name: String,
    epoll_timeout_ms: u64,
    nice: Option<i32>,
    delivered: u64,
    perf_lost: u64,
    /// p50, p99, max.
    latency_ns: [u64; 3],
    memlock: u64,
    perf_mmap: u64,
    rss_delta: i64,
    order: u64,
    max_back_ns: u64,
    late: u64,
    max_late_ns: u64,
    per_cpu_order: u64,
    usage: Usage,
}

/// One table row: the cell, the kernel's counters, and the consumer's side.
fn row(
    cell: &Cell,
    opts: &TransportOptions,
    quotas: &[u64],
    k: &stats::EventCounters,
    t: Times,
    c: ConsumerSide,
) -> TransportRow {
    let us = |ns: u64| ns as f64 / 1e3;
    let secs = |d: Duration| d.as_secs_f64().max(1e-9);
    TransportRow {
        transport: cell.transport,
        producers: u32::try_from(quotas.len()).unwrap_or(u32::MAX),
        producer_cpus: cell.producer_cpus.clone(),
        consumer_cpu: cell.consumer_cpu,
        consumer_shares_cpu: cell.producer_cpus.contains(&cell.consumer_cpu),
        snaplen: cell.snaplen,
        record_bytes: u32::try_from(HEADER).unwrap_or(u32::MAX) + cell.snaplen,
        wakeup: cell.wakeup,
        consumer: c.name,
        epoll_timeout_ms: c.epoll_timeout_ms,
        nice: c.nice,
        runs_per_call: quotas
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .min(u64::from(opts.repeat)),
        produced: k.produced,
        delivered: c.delivered,
        lost: k.lost,
        loss_ratio: k.lost as f64 / k.produced.max(1) as f64,
        perf_lost_reported: c.perf_lost,
        produce_s: t.produce.as_secs_f64(),
        elapsed_s: t.elapsed.as_secs_f64(),
        offered_per_s: k.produced as f64 / secs(t.produce),
        delivered_per_s: c.delivered as f64 / secs(t.elapsed),
        latency_p50_us: us(c.latency_ns[0]),
        latency_p99_us: us(c.latency_ns[1]),
        latency_max_us: us(c.latency_ns[2]),
        map_memlock_bytes: c.memlock,
        perf_mmap_bytes: c.perf_mmap,
        held_bytes: c.memlock + c.perf_mmap,
        rss_delta_bytes: c.rss_delta,
        wakeups: (cell.transport == Transport::Ringbuf).then_some(k.wakeups),
        order_violations: c.order,
        max_backwards_us: us(c.max_back_ns),
        late_records: c.late,
        max_lateness_us: us(c.max_late_ns),
        per_cpu_order_violations: c.per_cpu_order,
        consumer_cpu_ns_per_record: c.usage.cpu_ns as f64 / c.delivered.max(1) as f64,
        consumer_cpu_share: c.usage.cpu_ns as f64 / 1e9 / secs(t.elapsed),
        consumer_voluntary_switches: c.usage.voluntary,
        consumer_involuntary_switches: c.usage.involuntary,
        reps: 1,
        delivered_per_s_reps: vec![c.delivered as f64 / secs(t.elapsed)],
        lost_reps: vec![k.lost],
        producer_per_s: t.producers.iter().map(|p| p.0).collect(),
        producer_cpu_share: t.producers.iter().map(|p| p.1).collect(),
    }
}

/// Runs the producers of `cell` (threads pinned to their CPUs, each calling
/// BPF_PROG_TEST_RUN for its quota) while `wait` is called on this thread;
/// returns the time until the last producer finished.
fn run_producers(
    inst: &xdpwall_dataplane::Instance,
    cell: &Cell,
    opts: &TransportOptions,
    quotas: &[u64],
    pkt: &[u8],
    mut wait: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Produced> {
    let np = quotas.len();
    let barrier = Barrier::new(np + 1);
    let done = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let waiter = std::thread::current();
    std::thread::scope(|s| -> anyhow::Result<Produced> {
        let handles: Vec<_> = cell
            .producer_cpus
            .iter()
            .zip(quotas)
            .map(|(&cpu, &quota)| {
                let (barrier, done, stop) = (&barrier, &done, &stop);
                let waiter = waiter.clone();
                s.spawn(move || -> anyhow::Result<(u64, Duration, Usage)> {
                    let _done = DoneGuard(done, waiter);
                    let pinned = pin(cpu).with_context(|| format!("pin a producer to CPU {cpu}"));
                    let niced = opts.nice.map_or(Ok(()), set_nice);
                    barrier.wait();
                    pinned?;
                    niced?;
                    let (t0, u0) = (Instant::now(), thread_usage()?);
                    let mut left = quota;
                    while left > 0 && !stop.load(Ordering::Relaxed) {
                        let n =
                            u32::try_from(left.min(u64::from(opts.repeat))).unwrap_or(opts.repeat);
                        inst.time_run(pkt, n).context("BPF_PROG_TEST_RUN")?;
                        left -= u64::from(n);
                    }
                    Ok((quota - left, t0.elapsed(), thread_usage()?.since(u0)))
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        let mut failure = None;
        while done.load(Ordering::Acquire) < np {
            if let Err(e) = wait() {
                stop.store(true, Ordering::Relaxed);
                failure = Some(e);
                break;
            }
        }
        let produce = t0.elapsed();
        let mut ran = 0;
        let mut each = Vec::new();
        for h in handles {
            match h.join() {
                Ok(Ok((n, t, u))) => {
                    ran += n;
                    let secs = t.as_secs_f64().max(1e-9);
                    each.push((n as f64 / secs, u.cpu_ns as f64 / 1e9 / secs));
                }
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => failure = failure.or(Some(anyhow!("a producer panicked"))),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if ran != opts.events {
            bail!("producers ran {ran} times, expected {}", opts.events);
        }
        Ok(Produced {
            time: produce,
            each,
        })
    })
}

/// What the producers did: the time until the last was done, and per
/// producer its events/s and the share of its CPU it got while running.
struct Produced {
    time: Duration,
    each: Vec<(f64, f64)>,
}

/// Most latencies kept per cell (as the C consumer: 4 Mi).
const MAX_LATENCIES: usize = 4 << 20;
/// Producing CPUs tracked for per-CPU order (as the C consumer).
const MAX_CPUS: usize = 64;

/// Latencies kept as the C consumer keeps them: one store per record into
/// memory written before the cell (no page faults in the callback), sorted
/// after the cell. (A histogram would be smaller, but its scattered
/// increments are work the C consumer does not do.)
struct Latencies {
    v: Vec<u64>,
    n: usize,
}

impl Latencies {
    fn new(cap: usize) -> Self {
        Self {
            v: vec![u64::MAX; cap],
            n: 0,
        }
    }

    fn add(&mut self, ns: u64) {
        if let Some(slot) = self.v.get_mut(self.n) {
            *slot = ns;
            self.n += 1;
        }
    }

    /// p50, p99 and max (the C consumer's indices: n/2, n·99/100, n−1).
    fn quantiles(&mut self) -> [u64; 3] {
        let Some(s) = self.v.get_mut(..self.n) else {
            return [0; 3];
        };
        if s.is_empty() {
            return [0; 3];
        }
        s.sort_unstable();
        let n = s.len();
        [s[n / 2], s[n * 99 / 100], s[n - 1]]
    }
}

fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
    }
    // SAFETY: c < CPU_SETSIZE, the bits of set.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: cpu < CPU_SETSIZE, checked above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: set is a valid cpu_set_t of the size passed; 0 = this thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Restores the calling thread's affinity when dropped.
struct AffinityGuard(libc::cpu_set_t);

impl AffinityGuard {
    fn save() -> anyhow::Result<Self> {
        // SAFETY: as in allowed_cpus.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: as in allowed_cpus.
        let r =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if r != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
        }
        Ok(Self(set))
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        // SAFETY: self.0 is a valid cpu_set_t; 0 = this thread.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
    }
}

/// Sets the nice value of the calling thread.
fn set_nice(n: i32) -> anyhow::Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: plain syscall on this thread.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, u32::try_from(tid).unwrap_or(0), n) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("set nice {n}"));
    }
    Ok(())
}

/// Restores the calling thread's nice value when dropped.
struct NiceGuard(i32);

impl NiceGuard {
    fn set(n: i32) -> anyhow::Result<Self> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        // getpriority returns -1 both as a value and on error: clear errno first.
        // SAFETY: errno location of this thread.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: plain syscall on this thread.
        let old = unsafe { libc::getpriority(libc::PRIO_PROCESS, u32::try_from(tid).unwrap_or(0)) };
        let e = std::io::Error::last_os_error();
        if old == -1 && e.raw_os_error().unwrap_or(0) != 0 {
            return Err(e).context("getpriority");
        }
        set_nice(n)?;
        Ok(Self(old))
    }
}

impl Drop for NiceGuard {
    fn drop(&mut self) {
        let _ = set_nice(self.0);
    }
}

fn fdinfo_memlock(fd: i32) -> anyhow::Result<u64> {
    let path = format!("/proc/self/fdinfo/{fd}");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("{path} has no memlock line"))
}

/// Bytes mapped from perf events (the perf buffer's per-CPU rings).
/// Bytes of perf buffer mmaps of process `pid` ("self" or a number).
fn perf_mmap_bytes(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/maps");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    perf_mmap_in(&text).with_context(|| format!("parse {path}"))
}

fn perf_mmap_in(maps: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for line in maps.lines().filter(|l| l.ends_with("[perf_event]")) {
        let range = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = range.split_once('-') {
            total += u64::from_str_radix(b, 16)?.saturating_sub(u64::from_str_radix(a, 16)?);
        }
    }
    Ok(total)
}

/// What xdpwall's consumer maps for a perf buffer of `buffer` bytes: per
/// possible CPU, its pages and one metadata page.
fn perf_mmap_expected(buffer: u64) -> u64 {
    let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1).max(1);
    let pages = xdpwall_events::consumer::perf_pages(buffer) + 1;
    u64::try_from(pages * cpus).unwrap_or(u64::MAX) * page_size()
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

fn rss_bytes() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").context("read /proc/self/statm")?;
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("/proc/self/statm: no resident field"))?;
    Ok(pages * page_size())
}

fn size(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn signed_size(b: i64) -> String {
    if b < 0 {
        format!("-{}", size(b.unsigned_abs()))
    } else {
        size(b.unsigned_abs())
    }
}

fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else {
        format!("{:.0} k", r / 1e3)
    }
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    match v.len() {
        0 => "-".into(),
        1 => rate(hi),
        _ => format!("{}–{}", rate(lo), rate(hi)),
    }
}

/// The rows as a Markdown table, with notes on what each column measures.
#[must_use]
pub fn markdown(rows: &[TransportRow]) -> String {
    let mut s = String::new();
    s.push_str(
        "| transport | prod. CPUs | cons. CPU | record B | wake-up | consumer | offered ev/s | delivered ev/s | lost | loss % | p50 µs | p99 µs | max µs | map memlock | perf mmap | RSS Δ | wake-ups | ts order viol. | max back µs | late rec. | max late µs | per-CPU viol. | cons. ns/rec | cons. CPU % | cons. sleeps / preempt. | per producer ev/s (CPU %) | delivered ev/s, reps min–max |\n",
    );
    s.push_str("|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let cpus: Vec<String> = r.producer_cpus.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {} | {} | {:.1} | {} | {:.1} | {} | {:.0} | {:.0} | {} / {} | {} | {} |",
            r.transport.name(),
            cpus.join("+"),
            r.consumer_cpu,
            if r.consumer_shares_cpu { " (shared)" } else { "" },
            r.record_bytes,
            r.wakeup.label(),
            r.consumer,
            rate(r.offered_per_s),
            rate(r.delivered_per_s),
            r.lost,
            r.loss_ratio * 100.0,
            r.latency_p50_us,
            r.latency_p99_us,
            r.latency_max_us,
            size(r.map_memlock_bytes),
            if r.perf_mmap_bytes == 0 { "-".into() } else { size(r.perf_mmap_bytes) },
            signed_size(r.rss_delta_bytes),
            r.wakeups.map_or_else(|| "n/a".into(), |w| w.to_string()),
            r.order_violations,
            r.max_backwards_us,
            r.late_records,
            r.max_lateness_us,
            r.per_cpu_order_violations,
            r.consumer_cpu_ns_per_record,
            r.consumer_cpu_share * 100.0,
            r.consumer_voluntary_switches,
            r.consumer_involuntary_switches,
            r.producer_per_s
                .iter()
                .zip(&r.producer_cpu_share)
                .map(|(p, c)| format!("{} ({:.0})", rate(*p), c * 100.0))
                .collect::<Vec<_>>()
                .join(" + "),
            spread(&r.delivered_per_s_reps),
        );
    }
    let timeout = rows.first().map_or(10, |r| r.epoll_timeout_ms);
    let runs = rows.first().map_or(0, |r| r.runs_per_call);
    let nice = rows
        .first()
        .and_then(|r| r.nice)
        .map_or_else(|| "inherited".to_string(), |n| n.to_string());
    let events = rows.first().map_or(0, |r| r.produced);
    let reps = rows.iter().map(|r| r.reps).max().unwrap_or(1);
    let _ = write!(
        s,
        "\nNotes: {events} events per cell from BPF_PROG_TEST_RUN producers (threads pinned to the listed CPUs) \
         running the real program on a 1514-byte UDP frame, up to {runs} runs per BPF_PROG_TEST_RUN call. Consumers: \
         `epoll`/`busy` is xdpwall-events' Consumer on the bench's main thread; `C epoll`/`C busy` is a minimal C \
         consumer on libbpf (crates/bench/c/consumer.c, a child process, built against the same libbpf as xdpwall). Per \
         record both decode the header and check the packet bytes it claims are there (as the product does), then take \
         CLOCK_MONOTONIC, keep the latency and count order violations overall and per CPU. Both are pinned to the \"cons. CPU\" — \"(shared)\" \
         means it shares that CPU with a producer — and run at nice {nice}, as the producers do; while the C \
         consumer runs, the bench's main thread sleeps until the producers finish. Each cell runs {reps} time(s), the whole matrix once per \
         repetition, the two consumers alternating which goes first; a row is the repetition with the median delivered rate. \
         Every run verified produced == delivered + lost exactly. Epoll consumers sleep at most {timeout} ms, \
         which bounds the delay of records written without a wake-up. \"record B\" is the event header + \
         snaplen (ring/perf framing, and the ring's size-class padding — a 1500-byte capture reserves 1536 — not included). offered = produced / time until the producers were done; \
         delivered = delivered / time from the producers' start to the last record's callback (both consumers \
         alike). Latency = consumer CLOCK_MONOTONIC in \
         the callback − record ts_ns (exact; both keep every latency and sort after the cell). cons. ns/rec = the consumer's CPU time \
         (user + system, getrusage) over the cell / delivered; cons. CPU % = that time / elapsed; sleeps / \
         preempt. = its voluntary / involuntary context switches. Map memlock is from /proc/self/fdinfo of the \
         transport's map; perf mmap is (pages + 1) × page × CPUs as mapped in the consumer's /proc/PID/maps and is kernel \
         memory on top of the map (both consumers map the same pages; the bench checks it); RSS Δ is /proc/self/statm after draining minus before opening the consumer \
         — the ring buffer maps its data pages twice, so its RSS Δ shows about 2× the ring. Wake-ups are \
         those the program asked for (ring buffer); n/a for the perf buffer, whose wake-ups the kernel makes \
         from the events' wakeup_events (1 for \"every\", N for \"batch N\"). ts order viol. = delivered records with ts_ns older than \
         the previous delivered record's (a whole batch read late counts once); late rec. = delivered records with ts_ns \
         older than the newest delivered before them (every record of such a batch counts: what a reader would \
         have to hold back to restore order), max late = the largest such gap; per-CPU viol. = order violations within one header.cpu.\n"
    );
    s
}

/// A run: its rows and the targets computed from them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransportReport {
    /// Every measured row (Rust and C consumers).
    pub rows: Vec<TransportRow>,
    /// The targets, from `rows`.
    pub targets: Targets,
    /// The consumers' drains of a pre-filled buffer (target c).
    #[serde(default)]
    pub drain: Vec<DrainRow>,
}

impl TransportReport {
    /// Computes the targets of `rows`.
    #[must_use]
    pub fn new(rows: Vec<TransportRow>, drain: Vec<DrainRow>) -> Self {
        let targets = targets(&rows);
        Self {
            rows,
            targets,
            drain,
        }
    }
}

/// The report as pretty-printed JSON.
///
/// # Errors
/// Serialization fails (not expected).
pub fn json(r: &TransportReport) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(r)?)
}

/// Reads a report written by [`json`] back (to re-draw without measuring).
///
/// # Errors
/// The text is not such a report.
pub fn from_json(text: &str) -> anyhow::Result<TransportReport> {
    Ok(serde_json::from_str(text)?)
}

#[cfg(test)]
mod testdata;

#[cfg(test)]
mod tests {
    use super::testdata::{fake, sample_rows};
    use super::*;

    #[test]
    fn latencies_give_the_c_consumers_quantiles_and_stop_at_capacity() {
        let mut l = Latencies::new(1000);
        for v in (1..=1000u64).rev() {
            l.add(v * 1000);
        }
        l.add(7); // beyond capacity: not kept
        assert_eq!(l.quantiles(), [501_000, 991_000, 1_000_000]);
        assert_eq!(Latencies::new(10).quantiles(), [0; 3]);
        let mut one = Latencies::new(10);
        one.add(5);
        assert_eq!(one.quantiles(), [5, 5, 5]);
    }

    #[test]
    fn perf_mmaps_are_summed_from_the_maps_file_alone() {
        let maps = "7f00a000-7f00c000 rw-s 00000000 00:0e 12 [perf_event]\n\
                    7f00c000-7f00d000 r--p 00000000 08:01 99 /usr/lib/libc.so.6\n\
                    7f010000-7f011000 rw-s 00000000 00:0e 13 [perf_event]\n";
        assert_eq!(perf_mmap_in(maps).expect("parses"), 0x3000);
        assert_eq!(perf_mmap_in("").expect("empty"), 0);
        assert!(perf_mmap_in("zz-7f00 rw-s 0 0 0 [perf_event]").is_err());
    }

    #[test]
    fn order_tracking_counts_backward_steps() {
        let mut s = Seen::new();
        for (ts, cpu) in [(10, 0), (20, 1), (15, 0), (30, 1), (25, 1)] {
            s.record(ts, cpu, 100);
        }
        assert_eq!(s.violations, 2); // 15 after 20, 25 after 30
        assert_eq!(s.max_back_ns, 5);
        assert_eq!(s.cpu_violations, 1); // cpu 1: 25 after 30
                                         // Late: 15 (newest 20) and 25 (newest 30), 5 ns each.
        assert_eq!((s.late, s.max_late_ns), (2, 5));
        // A batch behind: every record older than the newest counts.
        let mut b = Seen::new();
        for ts in [100, 200, 300, 10, 20, 30, 400] {
            b.record(ts, 0, 1000);
        }
        assert_eq!((b.violations, b.late, b.max_late_ns), (1, 3, 290));
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = TransportReport::new(sample_rows(), Vec::new());
        let back = from_json(&json(&r).expect("json")).expect("parse");
        assert_eq!(back.rows.len(), r.rows.len());
        assert_eq!(back.rows[4].wakeup, Wakeup::Batch(64));
        assert_eq!(back.targets.ring_vs_perf.len(), 3);
        assert!(from_json("{\"rows\": 1}").is_err());
    }

    #[test]
    fn median_row_picks_the_middle_rate_and_keeps_all() {
        let rows: Vec<TransportRow> = [3.0, 1.0, 2.0]
            .iter()
            .map(|&r| fake(Transport::Ringbuf, 1, 104, Wakeup::Adaptive, "epoll", r))
            .collect();
        let m = median_row(rows).expect("median");
        assert_eq!(m.delivered_per_s, 2.0);
        assert_eq!(m.delivered_per_s_reps, vec![3.0, 1.0, 2.0]);
        assert_eq!(m.reps, 3);
        assert!(median_row(Vec::new()).is_err());
    }

    #[test]
    fn self_check_small_run_balances_every_cell() {
        if !xdpwall_lab::require_root("self_check_small_run_balances_every_cell") {
            return;
        }
        // Every transport, wake-up, consumer and producer count; one record
        // size (the copy path) to keep it quick.
        let opts = TransportOptions {
            events: 4000,
            snaplens: vec![1500],
            ..TransportOptions::default()
        };
        let mut lines = Vec::new();
        let rows = transport(&opts, &mut |l| lines.push(l.to_string())).expect("transport bench");
        let two = allowed_cpus().expect("cpus").len() >= 2;
        // Per producer count: 3 ring wake-ups + 2 perf wake-ups, each with 2 consumers.
        assert_eq!(rows.len(), if two { 20 } else { 10 }, "{lines:#?}");
        for r in &rows {
            assert_eq!((r.produced, r.record_bytes), (4000, 1540));
            assert_eq!(r.produced, r.delivered + r.lost);
            assert_eq!(r.per_cpu_order_violations, 0, "{r:?}");
            assert!(r.map_memlock_bytes > 0);
            if r.transport == Transport::Perfbuf {
                assert!(r.perf_mmap_bytes >= 8 << 20, "{r:?}");
                assert_eq!(r.wakeups, None);
            } else {
                assert_eq!(r.perf_mmap_bytes, 0);
                assert!(r.map_memlock_bytes >= 8 << 20, "{r:?}");
            }
            if r.producers == 1 {
                assert_eq!(r.order_violations, 0, "one producer CPU: {r:?}");
                assert_eq!(r.late_records, 0, "one producer CPU: {r:?}");
            }
        }
        let md = markdown(&rows);
        assert!(md.contains("| ringbuf |") && md.contains("| perfbuf |"));
        assert!(md.contains("at most 10 ms"));
        let report = TransportReport::new(rows, Vec::new());
        // Per producer count: one group per poll mode (no C consumer here),
        // each with a ring (adaptive) row and perf rows.
        assert_eq!(report.targets.ring_vs_perf.len(), if two { 4 } else { 2 });
        let j = json(&report).expect("json");
        assert!(j.contains("\"transport\": \"perfbuf\""));
        assert!(j.contains("\"ring_vs_perf\""));
        println!("{md}");
    }
}
