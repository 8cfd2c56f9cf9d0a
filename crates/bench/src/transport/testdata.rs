//! Synthetic rows for the unit tests of the targets and the charts.

use super::*;

/// A synthetic row: only the fields the targets and charts read matter.
pub(super) fn fake(
    t: Transport,
    producers: u32,
    bytes: u32,
    w: Wakeup,
    consumer: &str,
    rate: f64,
) -> TransportRow {
    TransportRow {
        transport: t,
        producers,
        producer_cpus: (0..producers as usize).collect(),
        consumer_cpu: 1,
        consumer_shares_cpu: producers > 1,
        snaplen: bytes - HEADER as u32,
        record_bytes: bytes,
        wakeup: w,
        consumer: consumer.into(),
        epoll_timeout_ms: 10,
        nice: Some(-20),
        runs_per_call: 1000,
        produced: 1000,
        delivered: 1000,
        lost: 0,
        loss_ratio: 0.0,
        perf_lost_reported: 0,
        produce_s: 1.0,
        elapsed_s: 1.0,
        offered_per_s: rate,
        delivered_per_s: rate,
        latency_p50_us: 1.0,
        latency_p99_us: 2.0,
        latency_max_us: 3.0,
        map_memlock_bytes: 8 << 20,
        perf_mmap_bytes: 0,
        held_bytes: 8 << 20,
        rss_delta_bytes: 0,
        wakeups: None,
        order_violations: if producers > 1 { 100 } else { 0 },
        max_backwards_us: 0.0,
        per_cpu_order_violations: 0,
        late_records: if producers > 1 { 100 } else { 0 },
        max_lateness_us: 0.0,
        consumer_cpu_ns_per_record: 100.0,
        consumer_cpu_share: 0.1,
        consumer_voluntary_switches: 0,
        consumer_involuntary_switches: 0,
        reps: 3,
        delivered_per_s_reps: vec![rate * 0.9, rate, rate * 1.1],
        lost_reps: vec![0, 0, 0],
        producer_per_s: vec![rate],
        producer_cpu_share: vec![1.0],
    }
}

/// Two row groups with one producer (ring wins) and one with two (perf
/// wins, but the ring has far fewer reorders).
pub(super) fn sample_rows() -> Vec<TransportRow> {
    use Transport::{Perfbuf, Ringbuf};
    use Wakeup::{Adaptive, Batch, Every};
    let mut rows = vec![
        // One producer, epoll: ring adaptive 2.0 M vs perf best (batch) 1.5 M.
        fake(Ringbuf, 1, 104, Every, "epoll", 0.2e6),
        fake(Ringbuf, 1, 104, Adaptive, "epoll", 2.0e6),
        fake(Ringbuf, 1, 104, Adaptive, "C epoll", 2.1e6),
        fake(Perfbuf, 1, 104, Every, "epoll", 0.3e6),
        fake(Perfbuf, 1, 104, Batch(64), "epoll", 1.5e6),
        fake(Perfbuf, 1, 104, Batch(64), "C epoll", 1.6e6),
        // Two producers, busy: ring 0.8 M vs perf 1.0 M — missed.
        fake(Ringbuf, 2, 1540, Adaptive, "busy", 0.8e6),
        fake(Perfbuf, 2, 1540, Batch(64), "busy", 1.0e6),
    ];
    // Ring reorders far fewer than perf's in the two-producer group.
    // Ring records far less often late than perf's in the two-producer group.
    rows[6].late_records = 5;
    rows[7].late_records = 4000;
    rows
}
