//! The targets for the transport bench, computed from one run's
//! rows: the ring buffer with xdpwall's default wake-up against the best
//! perf-buffer setting (events/s and timestamp reorders), and xdpwall's
//! Rust consumer against the C consumer on libbpf.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{rate, Transport, TransportRow, Wakeup};

/// xdpwall's default wake-up policy (`[events] wakeup` when not set).
#[must_use]
pub fn default_wakeup() -> Wakeup {
    match xdpwall_rules::EventsSection::default().wakeup {
        xdpwall_rules::Wakeup::Every => Wakeup::Every,
        xdpwall_rules::Wakeup::Batch(n) => Wakeup::Batch(n),
        xdpwall_rules::Wakeup::Adaptive => Wakeup::Adaptive,
    }
}

/// The goal of the Rust consumer against the C one.
pub const RUST_VS_C_GOAL: f64 = 0.9;
/// "Far fewer" reorders: the ring buffer at most this share of the perf buffer's.
pub const REORDER_GOAL: f64 = 0.1;

/// The targets, each a ratio within one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Targets {
    /// The ring buffer's default wake-up policy.
    pub default_wakeup: Option<Wakeup>,
    /// Ring buffer (default wake-up) vs the best perf-buffer setting, per
    /// producers × record size × consumer.
    pub ring_vs_perf: Vec<RingVsPerf>,
    /// Rust consumer vs C consumer, per cell.
    pub rust_vs_c: Vec<RustVsC>,
}

/// Target (a) and (b) for one row group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RingVsPerf {
    /// Producer threads.
    pub producers: u32,
    /// Record payload bytes.
    pub record_bytes: u32,
    /// Consumer (`epoll`, `busy`, `C epoll`, `C busy`).
    pub consumer: String,
    /// Ring buffer (default wake-up) delivered events/s.
    pub ring_per_s: f64,
    /// The perf setting that delivered most.
    pub best_perf_wakeup: Wakeup,
    /// Its delivered events/s.
    pub perf_per_s: f64,
    /// ring / perf; the goal is ≥ 1.
    pub ratio: f64,
    /// ratio ≥ 1.
    pub met: bool,
    /// Late records (older than the newest delivered before them) of the
    /// ring row: the reorders target's measure.
    pub ring_late: u64,
    /// And of the best perf row.
    pub perf_late: u64,
    /// Largest lateness of the ring row, µs.
    pub ring_max_late_us: f64,
    /// And of the best perf row, µs.
    pub perf_max_late_us: f64,
    /// Order violations (older than the previous record) of the ring row.
    pub ring_order_violations: u64,
    /// And of the best perf row.
    pub perf_order_violations: u64,
    /// ring_late ≤ REORDER_GOAL × perf_late (none on either counts as met).
    pub reorders_met: bool,
}

impl RingVsPerf {
    /// Read by the C consumer on libbpf: a reference, not the target.
    /// Target (a) is about what xdpwall delivers — its ring, its default
    /// wake-up, its reader. libbpf's ring reader stores the consumer
    /// position after every record, a cache line the producer reads on
    /// every reservation (BENCHMARKS.md, transport), so its rows price
    /// that reader as much as the transport.
    #[must_use]
    pub fn is_reference(&self) -> bool {
        self.consumer.starts_with("C ")
    }
}

/// Target (c) for one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RustVsC {
    /// Transport.
    pub transport: Transport,
    /// Producer threads.
    pub producers: u32,
    /// Record payload bytes.
    pub record_bytes: u32,
    /// Wake-up policy.
    pub wakeup: Wakeup,
    /// `epoll` or `busy`.
    pub poll: String,
    /// xdpwall's consumer, delivered events/s.
    pub rust_per_s: f64,
    /// The C consumer, delivered events/s.
    pub c_per_s: f64,
    /// rust / c; the goal is ≥ RUST_VS_C_GOAL.
    pub ratio: f64,
    /// Loss ratios (Rust, C).
    pub loss: (f64, f64),
    /// ratio ≥ RUST_VS_C_GOAL.
    pub met: bool,
}

/// Computes the targets from a run's rows.
#[must_use]
pub fn targets(rows: &[TransportRow]) -> Targets {
    let def = default_wakeup();
    let mut t = Targets {
        default_wakeup: Some(def),
        ..Targets::default()
    };
    for ring in rows
        .iter()
        .filter(|r| r.transport == Transport::Ringbuf && r.wakeup == def)
    {
        let best = rows
            .iter()
            .filter(|p| {
                p.transport == Transport::Perfbuf
                    && (p.producers, p.record_bytes, p.consumer.as_str())
                        == (ring.producers, ring.record_bytes, ring.consumer.as_str())
            })
            .max_by(|a, b| a.delivered_per_s.total_cmp(&b.delivered_per_s));
        let Some(perf) = best else { continue };
        let ratio = ring.delivered_per_s / perf.delivered_per_s.max(1e-9);
        t.ring_vs_perf.push(RingVsPerf {
            producers: ring.producers,
            record_bytes: ring.record_bytes,
            consumer: ring.consumer.clone(),
            ring_per_s: ring.delivered_per_s,
            best_perf_wakeup: perf.wakeup,
            perf_per_s: perf.delivered_per_s,
            ratio,
            met: ratio >= 1.0,
            ring_late: ring.late_records,
            perf_late: perf.late_records,
            ring_max_late_us: ring.max_lateness_us,
            perf_max_late_us: perf.max_lateness_us,
            ring_order_violations: ring.order_violations,
            perf_order_violations: perf.order_violations,
            reorders_met: ring.late_records as f64 <= REORDER_GOAL * perf.late_records as f64,
        });
    }
    for c in rows.iter().filter(|r| r.consumer.starts_with("C ")) {
        let poll = c.consumer.trim_start_matches("C ");
        let rust = rows.iter().find(|r| {
            r.consumer == poll
                && (r.transport, r.producers, r.record_bytes, r.wakeup)
                    == (c.transport, c.producers, c.record_bytes, c.wakeup)
        });
        let Some(rust) = rust else { continue };
        let ratio = rust.delivered_per_s / c.delivered_per_s.max(1e-9);
        t.rust_vs_c.push(RustVsC {
            transport: c.transport,
            producers: c.producers,
            record_bytes: c.record_bytes,
            wakeup: c.wakeup,
            poll: poll.to_string(),
            rust_per_s: rust.delivered_per_s,
            c_per_s: c.delivered_per_s,
            ratio,
            loss: (rust.loss_ratio, c.loss_ratio),
            met: ratio >= RUST_VS_C_GOAL,
        });
    }
    t
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// The targets as Markdown: one table per target and a one-line tally each.
#[must_use]
pub fn targets_markdown(t: &Targets) -> String {
    let mut s = String::from("### Targets\n\n");
    let def = t
        .default_wakeup
        .map_or_else(|| "the default".into(), Wakeup::label);
    let _ = writeln!(
        s,
        "(a) ring buffer with xdpwall's default wake-up ({def}) ≥ the best perf-buffer setting, delivered events/s; \
         (b) far fewer timestamp reorders: late records — delivered after a newer one — ring ≤ {REORDER_GOAL}× perf, against that same \
         perf row (none on either counts as met); the order violations (older than the previous record, a late batch counting once) beside them.\n"
    );
    s.push_str("| prod. CPUs | record B | consumer | ring ev/s | best perf | perf ev/s | ring / perf | (a) | ring late rec. (max µs) | perf late rec. (max µs) | ring / perf late | order viol. ring / perf | (b) |\n");
    s.push_str("|---:|---:|---|---:|---|---:|---:|---|---:|---:|---:|---:|---|\n");
    for g in &t.ring_vs_perf {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {} | {} ({:.1}) | {} ({:.1}) | {} | {} / {} | {} |",
            g.producers,
            g.record_bytes,
            g.consumer,
            rate(g.ring_per_s),
            g.best_perf_wakeup.label(),
            rate(g.perf_per_s),
            g.ratio,
            match (g.is_reference(), g.met) {
                (true, true) => "(ref.) met",
                (true, false) => "(ref.) below",
                (false, met) => verdict(met),
            },
            g.ring_late,
            g.ring_max_late_us,
            g.perf_late,
            g.perf_max_late_us,
            if g.perf_late == 0 {
                "-".to_string()
            } else {
                format!("{:.3}", g.ring_late as f64 / g.perf_late as f64)
            },
            g.ring_order_violations,
            g.perf_order_violations,
            verdict(g.reorders_met),
        );
    }
    let tally = |n: usize, of: usize| format!("{n} of {of}");
    let (reference, ours): (Vec<&RingVsPerf>, Vec<&RingVsPerf>) =
        t.ring_vs_perf.iter().partition(|g| g.is_reference());
    let met = |gs: &[&RingVsPerf]| gs.iter().filter(|g| g.met).count();
    let b = t.ring_vs_perf.iter().filter(|g| g.reorders_met).count();
    let reference_tally = if reference.is_empty() {
        String::new()
    } else {
        format!(
            " (read by libbpf's C reader, a reference that stores the consumer position after every record: {})",
            tally(met(&reference), reference.len())
        )
    };
    let _ = writeln!(
        s,
        "\n(a) met in {} row groups read by xdpwall's consumer{reference_tally}; (b) met in {}.\n",
        tally(met(&ours), ours.len()),
        tally(b, t.ring_vs_perf.len())
    );
    let _ = writeln!(
        s,
        "(c, live cells) xdpwall's Rust consumer against the C consumer on libbpf, delivered events/s, same cell. Where \
         neither loses, both deliver what the producers offer and the ratio is the producers' run-to-run spread; where \
         records are lost, it is who drains in time. The consumers' own cost is measured by the drains below.\n"
    );
    s.push_str("| transport | prod. CPUs | record B | wake-up | poll | Rust ev/s | C ev/s | Rust / C | loss % Rust / C | (c) |\n");
    s.push_str("|---|---:|---:|---|---|---:|---:|---:|---:|---|\n");
    for c in &t.rust_vs_c {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.2} / {:.2} | {} |",
            c.transport.name(),
            c.producers,
            c.record_bytes,
            c.wakeup.label(),
            c.poll,
            rate(c.rust_per_s),
            rate(c.c_per_s),
            c.ratio,
            c.loss.0 * 100.0,
            c.loss.1 * 100.0,
            verdict(c.met),
        );
    }
    let met = t.rust_vs_c.iter().filter(|c| c.met).count();
    let worst = t
        .rust_vs_c
        .iter()
        .map(|c| c.ratio)
        .fold(f64::INFINITY, f64::min);
    let _ = writeln!(
        s,
        "\n(c, live cells) Rust ≥ {RUST_VS_C_GOAL}× C in {} cells{}.",
        tally(met, t.rust_vs_c.len()),
        if worst.is_finite() {
            format!("; lowest ratio {worst:.3}")
        } else {
            String::new()
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::super::testdata::sample_rows;
    use super::*;

    #[test]
    fn targets_compare_default_ring_with_best_perf_and_rust_with_c() {
        assert_eq!(default_wakeup(), Wakeup::Adaptive);
        let t = targets(&sample_rows());
        assert_eq!(t.ring_vs_perf.len(), 3, "{t:#?}");
        let g = &t.ring_vs_perf[0];
        assert_eq!(
            (g.producers, g.record_bytes, g.consumer.as_str()),
            (1, 104, "epoll")
        );
        assert_eq!(g.best_perf_wakeup, Wakeup::Batch(64));
        assert!((g.ratio - 2.0 / 1.5).abs() < 1e-9 && g.met);
        // No reorders on either with one producer: met.
        assert!(g.reorders_met);
        let c = &t.ring_vs_perf[1];
        assert_eq!(c.consumer, "C epoll");
        assert!((c.ratio - 2.1 / 1.6).abs() < 1e-9);
        assert!(c.is_reference() && !g.is_reference());
        let two = &t.ring_vs_perf[2];
        assert!((two.ratio - 0.8).abs() < 1e-9 && !two.met);
        assert_eq!((two.ring_late, two.perf_late), (5, 4000));
        assert_eq!(
            (two.ring_order_violations, two.perf_order_violations),
            (100, 100)
        );
        assert!(two.reorders_met);
        // Rust vs C: the two cells that have both.
        assert_eq!(t.rust_vs_c.len(), 2, "{t:#?}");
        let r = &t.rust_vs_c[0];
        assert_eq!(
            (r.transport, r.wakeup, r.poll.as_str()),
            (Transport::Ringbuf, Wakeup::Adaptive, "epoll")
        );
        assert!((r.ratio - 2.0 / 2.1).abs() < 1e-9 && r.met);
        let p = &t.rust_vs_c[1];
        assert!((p.ratio - 1.5 / 1.6).abs() < 1e-9 && p.met);
        let md = targets_markdown(&t);
        assert!(
            md.contains(
                "| 2 | 1540 | busy | 800 k | batch 64 | 1.00 M | 0.800 | **missed** | 5 (0.0) | 4000 (0.0) | 0.001 | 100 / 100 | met |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "(a) met in 1 of 2 row groups read by xdpwall's consumer (read by libbpf's C reader, a reference \
                 that stores the consumer position after every record: 1 of 1); (b) met in 3 of 3."
            ),
            "{md}"
        );
        let c_row = md
            .lines()
            .find(|l| l.starts_with("| 1 | 104 | C epoll |"))
            .unwrap_or_default();
        assert!(c_row.contains("| (ref.) met |"), "{md}");
        assert!(
            md.contains("(c, live cells) Rust ≥ 0.9× C in 2 of 2 cells; lowest ratio 0.938."),
            "{md}"
        );
    }

    #[test]
    fn reorders_missed_when_the_ring_is_not_far_below_perf() {
        let mut rows = sample_rows();
        rows[6].late_records = 1000; // a quarter of perf's 4000
        let t = targets(&rows);
        assert!(!t.ring_vs_perf[2].reorders_met);
        assert!(targets_markdown(&t).contains("(b) met in 2 of 3."));
    }
}
