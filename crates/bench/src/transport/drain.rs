//! The consumer's own speed: a buffer filled while nobody reads, then
//! drained — by xdpwall's consumer and by the C one, each on a program of
//! its own loaded from the same config, taking turns. In the live cells a consumer that keeps up
//! delivers what the producers offer, so there Rust against C compares two
//! producer runs; here the consumer alone sets the pace.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use xdpwall_dataplane::{stats, Instance};
use xdpwall_events::consumer::perf_pages;
use xdpwall_events::record::{ring_record_bytes, HEADER};
use xdpwall_events::{ConsumerOptions, Poll};

use super::targets::RUST_VS_C_GOAL;
use super::{
    check_perf_mmap, open_consumer, page_size, setup_cell, transport_map, Cell, Seen, Transport,
    TransportOptions, Wakeup,
};

/// Longest a drain may take before the bench gives up (records lost while
/// filling would never come).
const STUCK: Duration = Duration::from_secs(5);

/// One transport and record size, drained by both consumers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrainRow {
    /// Transport.
    pub transport: Transport,
    /// Record payload: event header + snaplen.
    pub record_bytes: u32,
    /// Records per fill: three quarters of what the producer's buffer holds
    /// (the ring, or its CPU's share of the perf buffer).
    pub records: u64,
    /// Fills drained per repetition.
    pub rounds: u32,
    /// xdpwall's consumer: ns a record (drain time over records), per repetition.
    pub rust_ns: Vec<f64>,
    /// The C consumer: the same, per repetition (empty when it is not built).
    pub c_ns: Vec<f64>,
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len().checked_sub(1)? / 2).copied()
}

impl DrainRow {
    /// Rust's drain rate over C's: the median over the repetitions of C's
    /// ns a record over Rust's in the same repetition. Paired, because the
    /// two drain in turns within a repetition while the machine's state
    /// drifts between repetitions (a 168-byte drain took 62–147 ns a record
    /// from one repetition to the next, for either consumer).
    #[must_use]
    pub fn ratio(&self) -> Option<f64> {
        if self.rust_ns.len() != self.c_ns.len() {
            return None;
        }
        let paired: Vec<f64> = self
            .rust_ns
            .iter()
            .zip(&self.c_ns)
            .map(|(r, c)| c / r.max(1e-9))
            .collect();
        median(&paired)
    }

    /// The same by the two sides' medians (shown beside the paired ratio).
    #[must_use]
    pub fn ratio_of_medians(&self) -> Option<f64> {
        Some(median(&self.c_ns)? / median(&self.rust_ns)?.max(1e-9))
    }

    /// ratio ≥ RUST_VS_C_GOAL.
    #[must_use]
    pub fn met(&self) -> Option<bool> {
        self.ratio().map(|r| r >= RUST_VS_C_GOAL)
    }
}

/// Framed size of a record in its buffer: the ring's 8-byte header, or the
/// perf sample's header and size word, rounded up to 8 bytes.
fn framed(t: Transport, record_bytes: u64) -> u64 {
    match t {
        Transport::Ringbuf => {
            // The program reserves the capture's size class.
            let cap = u32::try_from(record_bytes.saturating_sub(HEADER as u64)).unwrap_or(u32::MAX);
            (8 + u64::from(ring_record_bytes(cap))).next_multiple_of(8)
        }
        Transport::Perfbuf => (8 + 4 + record_bytes).next_multiple_of(8),
    }
}

/// Records per fill: three quarters of the buffer one producer writes to.
fn records_per_fill(t: Transport, buffer: u64, record_bytes: u64) -> u64 {
    let cap = match t {
        Transport::Ringbuf => buffer,
        Transport::Perfbuf => u64::try_from(perf_pages(buffer)).unwrap_or(1) * page_size(),
    };
    (cap * 3 / 4 / framed(t, record_bytes)).max(1)
}

/// The producer for one program: `fill(n)` makes it emit `n` records
/// (BPF_PROG_TEST_RUN in a filler process pinned to the producer CPU) and
/// checks that all of them fit. A process of its own, not a thread of this
/// one, because the product's producer is the kernel, not a thread of
/// xdpwall's process; and so neither consumer shares a process with it.
struct Producer<'i> {
    inst: &'i Instance,
    filler: crate::c_consumer::Filler,
}

impl<'i> Producer<'i> {
    fn start(inst: &'i Instance, pkt: &[u8], cpu: usize, bin: &Path) -> anyhow::Result<Self> {
        let filler = crate::c_consumer::Filler::start(bin, inst.prog_id, pkt, cpu)?;
        Ok(Self { inst, filler })
    }

    fn fill(&mut self, n: u64) -> anyhow::Result<()> {
        self.filler
            .fill(u32::try_from(n).context("records per fill")?)?;
        let k = stats::events(self.inst).context("read the event counters")?;
        if k.lost != 0 {
            bail!("{} records did not fit while filling the buffer", k.lost);
        }
        Ok(())
    }
}

/// One repetition: each consumer on a program of its own, the two taking
/// turns fill by fill (who goes first alternating), so that a slow stretch
/// of the machine hits both alike. Round 0 is not timed: it maps the
/// buffer's pages into each consumer (first touches fault), as a consumer
/// that has run a while has them. Returns ns a record (Rust, C).
fn drain_pair(
    cell: &Cell,
    opts: &TransportOptions,
    records: u64,
    rounds: u32,
    bin: &Path,
) -> anyhow::Result<(f64, f64)> {
    let (rust_inst, pkt, _) = setup_cell(cell, opts)?;
    let (c_inst, _, _) = setup_cell(cell, opts)?;
    let perf = cell.transport == Transport::Perfbuf;

    let total = records * u64::from(rounds);
    let seen = Rc::new(RefCell::new(Seen::new()));
    let copts = ConsumerOptions {
        poll: Poll::Busy,
        timeout: opts.epoll_timeout,
        buffer: opts.buffer,
        perf_per_wakeup: 64,
    };
    // Per record the same work as in the live cells (and as the C consumer).
    let consumer = open_consumer(&rust_inst, cell.transport, copts, &seen)?;

    let map = transport_map(&c_inst, cell.transport);
    let map_id = libbpf_rs::MapCore::info(map).context("map info")?.info.id;
    let mut child = crate::c_consumer::Running::start_drain(
        bin,
        map_id,
        perf,
        64,
        perf_pages(opts.buffer),
        cell.consumer_cpu,
    )?;
    if perf {
        check_perf_mmap("the C consumer", &child.pid().to_string(), opts.buffer)?;
    }

    let cpu = cell.producer_cpus[0];
    let mut rust_fill = Producer::start(&rust_inst, &pkt, cpu, bin)?;
    let mut c_fill = Producer::start(&c_inst, &pkt, cpu, bin)?;
    let (mut rust_took, mut c_took) = (Duration::ZERO, Duration::ZERO);
    for round in 0..=u64::from(rounds) {
        let want = records * (round + 1);
        let mut rust = || -> anyhow::Result<Duration> {
            rust_fill.fill(records)?;
            let t0 = Instant::now();
            while consumer.delivery().delivered < want {
                consumer.drain().context("drain")?;
                if t0.elapsed() > STUCK {
                    bail!(
                        "xdpwall's consumer drained {} of {want} records",
                        consumer.delivery().delivered
                    );
                }
            }
            Ok(t0.elapsed())
        };
        let mut c = || -> anyhow::Result<Duration> {
            c_fill.fill(records)?;
            child.drain(want)
        };
        let (r, t) = if round % 2 == 0 {
            let r = rust()?;
            (r, c()?)
        } else {
            let t = c()?;
            (rust()?, t)
        };
        if round > 0 {
            rust_took += r;
            c_took += t;
        }
    }
    let d = consumer.delivery();
    if d.malformed != 0 || d.perf_lost != 0 {
        bail!(
            "xdpwall's consumer saw {} malformed records and {} lost in a drain",
            d.malformed,
            d.perf_lost
        );
    }
    let per = |d: Duration| d.as_nanos() as f64 / total.max(1) as f64;
    Ok((per(rust_took), per(c_took)))
}

/// Drains, per transport and record size: `opts.drain_reps` repetitions of
/// at least `opts.drain_rounds` fills and `opts.drain_records` records per
/// consumer, the two taking turns fill by fill. Producer on the first
/// allowed CPU, consumers on the last.
///
/// # Errors
/// A fill overflows, a consumer stalls, or a program cannot be loaded.
pub(super) fn drains(
    opts: &TransportOptions,
    first: usize,
    last: usize,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<DrainRow>> {
    let mut rows = Vec::new();
    if opts.drain_reps == 0 || opts.drain_rounds == 0 {
        return Ok(rows);
    }
    // The filler is the C binary's fill mode; without it there is neither
    // a producer process nor a reference to compare with.
    let Some(bin) = &opts.c_consumer else {
        progress("[drain] skipped: the C reference consumer is not available");
        return Ok(rows);
    };
    for &transport in &opts.transports {
        for &snaplen in &opts.snaplens {
            let cell = Cell {
                transport,
                producer_cpus: vec![first],
                consumer_cpu: last,
                snaplen,
                wakeup: match transport {
                    Transport::Ringbuf => Wakeup::Adaptive,
                    Transport::Perfbuf => Wakeup::Batch(64),
                },
                poll: Poll::Busy,
            };
            let record_bytes = u32::try_from(HEADER).unwrap_or(u32::MAX) + snaplen;
            let records = records_per_fill(transport, opts.buffer, u64::from(record_bytes));
            let rounds = u32::try_from(opts.drain_records.div_ceil(records))
                .unwrap_or(u32::MAX)
                .max(opts.drain_rounds);
            let mut row = DrainRow {
                transport,
                record_bytes,
                records,
                rounds,
                rust_ns: Vec::new(),
                c_ns: Vec::new(),
            };
            for _ in 0..opts.drain_reps {
                let (rust, c) = drain_pair(&cell, opts, records, rounds, bin)?;
                row.rust_ns.push(rust);
                row.c_ns.push(c);
            }
            progress(&format!(
                "[drain] {} {record_bytes} B: {records} records × {} fills, xdpwall {:.0} ns/record{}",
                transport.name(),
                rounds,
                median(&row.rust_ns).unwrap_or(0.0),
                median(&row.c_ns)
                    .map(|c| format!(", C {c:.0} ns/record"))
                    .unwrap_or_default()
            ));
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Target (c) from the drains, as Markdown.
#[must_use]
pub fn drain_markdown(rows: &[DrainRow]) -> String {
    let mut s = format!(
        "(c) xdpwall's Rust consumer ≥ {RUST_VS_C_GOAL}× the C consumer on libbpf, where the consumer sets the pace: \
         a buffer filled while nobody reads (three quarters full), then drained with `*_buffer__consume`; \
         ns a record, median of the repetitions (each the sum of its fills); Rust / C rate: the median over the \
         repetitions of C's ns over Rust's in the same repetition (the two drain in turns), and beside it the ratio \
         of the two medians:\n\n"
    );
    s.push_str("| transport | record B | records × fills | Rust ns/rec (min–max) | C ns/rec (min–max) | Rust / C rate | by medians | (c) |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---|\n");
    let range = |v: &[f64]| {
        let (lo, hi) = v.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
        match median(v) {
            Some(m) => format!("{m:.1} ({lo:.1}–{hi:.1})"),
            None => "-".into(),
        }
    };
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} × {} | {} | {} | {} | {} | {} |",
            r.transport.name(),
            r.record_bytes,
            r.records,
            r.rounds,
            range(&r.rust_ns),
            range(&r.c_ns),
            r.ratio().map_or("-".into(), |x| format!("{x:.3}")),
            r.ratio_of_medians()
                .map_or("-".into(), |x| format!("{x:.3}")),
            match r.met() {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "-",
            }
        );
    }
    let judged: Vec<_> = rows.iter().filter_map(DrainRow::met).collect();
    let _ = writeln!(
        s,
        "\n(c) met in {} of {} drains.",
        judged.iter().filter(|&&m| m).count(),
        judged.len()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rust: &[f64], c: &[f64]) -> DrainRow {
        DrainRow {
            transport: Transport::Perfbuf,
            record_bytes: 56,
            records: 1000,
            rounds: 2,
            rust_ns: rust.to_vec(),
            c_ns: c.to_vec(),
        }
    }

    #[test]
    fn the_ratio_is_the_median_of_cs_time_over_rusts_per_repetition() {
        // Per repetition 0.45, 0.94, 1.73: median 0.94; by the two
        // medians it would be 47 / 52 = 0.904.
        let r = row(&[100.0, 50.0, 52.0], &[45.0, 47.0, 90.0]);
        assert!((r.ratio().expect("both") - 47.0 / 50.0).abs() < 1e-9);
        assert!((r.ratio_of_medians().expect("both") - 47.0 / 52.0).abs() < 1e-9);
        assert_eq!(r.met(), Some(true));
        // Drift between repetitions that hits both alike does not count.
        let drift = row(&[40.0, 80.0, 160.0], &[42.0, 84.0, 168.0]);
        assert!((drift.ratio().expect("both") - 1.05).abs() < 1e-9);
        let slow = row(&[60.0], &[50.0]);
        assert_eq!(slow.met(), Some(false));
        assert_eq!(row(&[60.0], &[]).met(), None);
        let md = drain_markdown(&[r, slow]);
        assert!(
            md.contains(
                "| perfbuf | 56 | 1000 × 2 | 52.0 (50.0–100.0) | 47.0 (45.0–90.0) | 0.940 | 0.904 | met |"
            ),
            "{md}"
        );
        assert!(md.contains("(c) met in 1 of 2 drains."), "{md}");
    }

    #[test]
    fn fills_take_three_quarters_of_the_producers_buffer() {
        // Ring: 8 MiB shared; a 56-byte record takes 64 bytes framed.
        assert_eq!(framed(Transport::Ringbuf, 56), 64);
        assert_eq!(
            records_per_fill(Transport::Ringbuf, 8 << 20, 56),
            (6 << 20) / 64
        );
        // 1500 packet bytes reserve the 1536-byte class: 8 + 40 + 1536.
        assert_eq!(framed(Transport::Ringbuf, 1540), 1584);
        // Perf: the producer's CPU's pages only; 8 + 4 + 1540 → 1552.
        assert_eq!(framed(Transport::Perfbuf, 1540), 1552);
        let per_cpu = u64::try_from(perf_pages(8 << 20)).unwrap_or(0) * page_size();
        assert_eq!(
            records_per_fill(Transport::Perfbuf, 8 << 20, 1540),
            per_cpu * 3 / 4 / 1552
        );
    }
}
