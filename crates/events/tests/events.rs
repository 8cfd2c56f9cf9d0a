//! The event path end to end under BPF_PROG_TEST_RUN: records written by the
//! real program for each transport, read back by the consumer.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use etherparse::PacketBuilder;
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::{stats, Instance};
use xdpwall_events::{Consumer, ConsumerOptions, Poll};
use xdpwall_rules::compile::{abi, compile, Compiled};
use xdpwall_rules::parse_config;

fn root(name: &str) -> bool {
    xdpwall_lab::require_root(name)
}

fn setup(toml: &str) -> (Compiled, Instance) {
    let cfg = parse_config(toml, Path::new("events.toml")).unwrap_or_else(|e| panic!("{e}"));
    let c = compile(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let inst = load(
        &c,
        LoadOptions {
            trace: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (c, inst)
}

fn udp(dport: u16, payload: usize) -> Vec<u8> {
    let mut pkt = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([198, 51, 100, 1], [198, 51, 100, 2], 64)
        .udp(40_000, dport)
        .write(&mut pkt, &vec![0xab; payload])
        .expect("build packet");
    pkt
}

/// Header fields and bytes of one record, owned.
#[derive(Debug, Clone)]
struct Got {
    rule: u32,
    verdict: u32,
    wire_len: u32,
    cap_len: u32,
    kind: u32,
    ts_ns: u64,
    data: Vec<u8>,
}

fn collect(inst: &Instance, transport: u32, buffer: u64) -> (Consumer<'_>, Rc<RefCell<Vec<Got>>>) {
    let got = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&got);
    let opts = ConsumerOptions {
        poll: Poll::Epoll,
        timeout: Duration::from_millis(5),
        buffer,
        perf_per_wakeup: 1,
    };
    let c = Consumer::new(inst, transport, opts, move |r| {
        sink.borrow_mut().push(Got {
            rule: r.header.rule,
            verdict: r.header.verdict,
            wire_len: r.header.wire_len,
            cap_len: r.header.cap_len,
            kind: r.header.kind,
            ts_ns: r.header.ts_ns,
            data: r.data.to_vec(),
        });
    })
    .expect("consumer");
    (c, got)
}

const TRANSPORTS: [(&str, u32); 2] = [
    ("ringbuf", abi::TRANSPORT_RINGBUF),
    ("perfbuf", abi::TRANSPORT_PERFBUF),
];

fn config(transport: &str, buffer: &str, rules: &str) -> String {
    format!("[events]\ntransport = \"{transport}\"\nbuffer = \"{buffer}\"\nsnaplen = 64\n\n{rules}")
}

#[test]
fn a_logged_match_yields_one_record_with_header_and_bytes() {
    if !root("a_logged_match_yields_one_record_with_header_and_bytes") {
        return;
    }
    for (name, t) in TRANSPORTS {
        let (_c, inst) = setup(&config(
            name,
            "1MiB",
            "[[rule]]\nname = \"quiet\"\nproto = \"tcp\"\naction = \"drop\"\n\
             [[rule]]\nname = \"dns\"\nproto = \"udp\"\ndport = 53\naction = \"drop\"\nlog = true\n",
        ));
        let (consumer, got) = collect(&inst, t, 1 << 20);
        let pkt = udp(53, 100);
        let before = xdpwall_events::clock::WallClock::monotonic_now();
        let v = inst.test_run(&pkt).expect("test run");
        assert_eq!(v.rule, Some(1));
        consumer.drain().expect("drain");
        let got = got.borrow();
        assert_eq!(got.len(), 1, "{name}: one record");
        let g = &got[0];
        assert_eq!((g.rule, g.verdict, g.kind), (1, 1, abi::EV_LOG), "{name}");
        assert_eq!(g.wire_len as usize, pkt.len(), "{name}");
        assert_eq!(g.cap_len, 64, "{name}: [events] snaplen");
        assert_eq!(g.data, &pkt[..64], "{name}: the packet's first bytes");
        assert!(g.ts_ns >= before, "{name}: monotonic timestamp");
        let k = stats::events(&inst).expect("counters");
        assert_eq!((k.produced, k.lost), (1, 0), "{name}");
        assert_eq!(consumer.delivery().delivered, 1);
    }
}

#[test]
fn snaplen_truncates_and_zero_carries_no_bytes() {
    if !root("snaplen_truncates_and_zero_carries_no_bytes") {
        return;
    }
    for (name, t) in TRANSPORTS {
        let (_c, inst) = setup(&config(
            name,
            "1MiB",
            "[[rule]]\nname = \"small\"\ndport = 1\naction = \"pass\"\nlog = { snaplen = 16 }\n\
             [[rule]]\nname = \"none\"\ndport = 2\naction = \"pass\"\nlog = { snaplen = 0 }\n\
             [[rule]]\nname = \"big\"\ndport = 3\naction = \"pass\"\nlog = { snaplen = 9000 }\n",
        ));
        let (consumer, got) = collect(&inst, t, 1 << 20);
        for port in [1, 2, 3] {
            inst.test_run(&udp(port, 200)).expect("test run");
        }
        consumer.drain().expect("drain");
        let got = got.borrow();
        let caps: Vec<u32> = got.iter().map(|g| g.cap_len).collect();
        let full = udp(3, 200).len() as u32;
        assert_eq!(
            caps,
            vec![16, 0, full],
            "{name}: snaplen 16, 0 and longer than the frame"
        );
        assert!(got.iter().all(|g| g.data.len() == g.cap_len as usize));
    }
}

/// The ring buffer reserves a record per size class and copies the packet
/// straight into it: every class filled exactly and overflowing by one
/// byte into the next, across the fragments of a jumbo frame, carries exactly the
/// frame's first `cap_len` bytes (the perf buffer, which copies in the
/// kernel, must agree).
#[test]
fn captures_of_every_size_class_carry_the_frames_own_bytes() {
    if !root("captures_of_every_size_class_carry_the_frames_own_bytes") {
        return;
    }
    let snaplens = class_edges();
    let rules = log_rules(&snaplens);
    // A jumbo frame longer than the largest class: BPF_PROG_TEST_RUN hands
    // it to the program as a multi-buffer frame, so the copy crosses
    // fragments, and the largest class is filled to its last byte.
    let frame = |dport: u16| {
        let payload: Vec<u8> = (0..9300u32).map(|i| (i % 251) as u8).collect();
        let mut pkt = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 1], [198, 51, 100, 2], 64)
            .udp(40_000, dport)
            .write(&mut pkt, &payload)
            .expect("build packet");
        pkt
    };
    for (name, t) in TRANSPORTS {
        let (_c, inst) = setup(&config(name, "4MiB", &rules));
        let (consumer, got) = collect(&inst, t, 4 << 20);
        for (i, n) in snaplens.iter().enumerate() {
            let port = u16::try_from(i + 1).expect("port");
            let v = inst.test_run(&frame(port)).expect("test run");
            assert_eq!(v.rule, Some(i as u32), "{name}: rule s{n}");
        }
        consumer.drain().expect("drain");
        let got = got.borrow();
        assert_eq!(got.len(), snaplens.len(), "{name}: one record per frame");
        for (g, &n) in got.iter().zip(&snaplens) {
            let pkt = frame(u16::try_from(g.rule + 1).expect("port"));
            let want = n.min(pkt.len() as u32);
            assert_eq!(g.wire_len as usize, pkt.len(), "{name}: snaplen {n}");
            assert_eq!(g.cap_len, want, "{name}: snaplen {n}");
            assert!(
                g.data == pkt[..want as usize],
                "{name}: snaplen {n}: the record's bytes are not the frame's first {want}"
            );
        }
        let k = stats::events(&inst).expect("counters");
        assert_eq!((k.produced, k.lost), (snaplens.len() as u64, 0), "{name}");
    }
}

/// One logging rule per snaplen, rule i on UDP port i + 1.
fn log_rules(snaplens: &[u32]) -> String {
    snaplens
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "[[rule]]\nname = \"s{n}\"\ndport = {}\naction = \"pass\"\nlog = {{ snaplen = {n} }}\n",
                i + 1
            )
        })
        .collect()
}

/// Every size class and the capture one byte past it (the next class).
fn class_edges() -> Vec<u32> {
    abi::RING_CLASSES
        .iter()
        .flat_map(|&c| [c, c + 1])
        .filter(|&n| n <= abi::MAX_SNAPLEN)
        .chain([1])
        .collect()
}

/// A 4 KiB ring still carries a 3,500-byte capture: its size class (4096
/// bytes and the header) is larger than the ring asked for, so the ring is
/// made large enough for one such record instead of losing every event.
#[test]
fn a_small_ring_still_holds_one_record_of_the_largest_capture() {
    if !root("a_small_ring_still_holds_one_record_of_the_largest_capture") {
        return;
    }
    let (_c, inst) = setup(&config(
        "ringbuf",
        "4KiB",
        "[[rule]]\nname = \"big\"\nproto = \"udp\"\naction = \"pass\"\nlog = { snaplen = 3500 }\n",
    ));
    let (consumer, got) = collect(&inst, abi::TRANSPORT_RINGBUF, 4096);
    let pkt = udp(9, 3600);
    inst.test_run(&pkt).expect("test run");
    consumer.drain().expect("drain");
    let k = stats::events(&inst).expect("counters");
    assert_eq!((k.produced, k.lost), (1, 0));
    let got = got.borrow();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].data == pkt[..3500],
        "the record's bytes are the frame's"
    );
}

/// A ring record takes the header and its capture's size class
/// (`ring_record_bytes`, which user space uses to size buffers, must agree
/// with what the program reserves), and the largest class is the largest
/// capture.
#[test]
fn ring_records_take_the_header_and_their_size_class() {
    if !root("ring_records_take_the_header_and_their_size_class") {
        return;
    }
    assert_eq!(
        xdpwall_events::record::RING_CLASSES.last().copied(),
        Some(abi::MAX_SNAPLEN)
    );
    let snaplens: Vec<u32> = std::iter::once(0).chain(class_edges()).collect();
    let rules = log_rules(&snaplens);
    let (_c, inst) = setup(&config("ringbuf", "4MiB", &rules));
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&sizes);
    let ring = xdpwall_events::ring::RingBuf::new(&inst.maps.ring, move |raw| {
        let r = xdpwall_events::decode(raw).expect("decode");
        sink.borrow_mut().push((r.header.cap_len, raw.len()));
    })
    .expect("ring");
    for i in 0..snaplens.len() {
        let port = u16::try_from(i + 1).expect("port");
        inst.test_run(&udp(port, 9300)).expect("test run");
    }
    ring.consume().expect("consume");
    let sizes = sizes.borrow();
    let want: Vec<(u32, usize)> = snaplens
        .iter()
        .map(|&n| {
            let cap = n.min(udp(1, 9300).len() as u32);
            (cap, xdpwall_events::record::ring_record_bytes(cap) as usize)
        })
        .collect();
    assert_eq!(*sizes, want, "(cap_len, record bytes) per snaplen");
}

/// Records whose slots do not divide the ring: over many laps some straddle
/// its end (read whole through the second mapping of the data pages), and
/// the reader frees room as it goes. Every record arrives once, whole, in
/// order.
#[test]
fn records_that_wrap_around_the_ring_arrive_whole_and_in_order() {
    if !root("records_that_wrap_around_the_ring_arrive_whole_and_in_order") {
        return;
    }
    let ring_bytes: u32 = 64 << 10;
    let rules =
        "[[rule]]\nname = \"w\"\nproto = \"udp\"\naction = \"pass\"\nlog = { snaplen = 32 }\n";
    let (_c, inst) = setup(&config("ringbuf", "64KiB", rules));
    // The ring's slot: its 8-byte header and the record, 8-byte aligned.
    let slot = (8 + xdpwall_events::record::ring_record_bytes(32)).next_multiple_of(8);
    assert_ne!(
        ring_bytes % slot,
        0,
        "a slot of {slot} bytes must not divide the ring"
    );
    let frame = udp(9, 100);
    let want = frame[..32].to_vec();
    // (records, last timestamp, records out of order or not whole)
    let seen = Rc::new(RefCell::new((0u32, 0u64, 0u32)));
    let sink = Rc::clone(&seen);
    let ring = xdpwall_events::ring::RingBuf::new(&inst.maps.ring, move |raw| {
        let mut s = sink.borrow_mut();
        let ok = xdpwall_events::decode(raw)
            .is_ok_and(|r| r.data == want.as_slice() && r.header.ts_ns >= s.1);
        if let Ok(r) = xdpwall_events::decode(raw) {
            s.1 = r.header.ts_ns;
        }
        s.0 += 1;
        s.2 += u32::from(!ok);
    })
    .expect("ring");
    // Two thirds of the ring a round: 20 rounds go round it ~13 times.
    let per_round = ring_bytes / slot * 2 / 3;
    for _ in 0..20 {
        inst.time_run(&frame, per_round).expect("test run");
        ring.consume().expect("consume");
    }
    let (n, _, bad) = *seen.borrow();
    assert_eq!(n, 20 * per_round, "every record once");
    assert_eq!(bad, 0, "records not whole or out of order");
}

#[test]
fn sample_emits_exactly_one_in_n_on_one_cpu() {
    if !root("sample_emits_exactly_one_in_n_on_one_cpu") {
        return;
    }
    for (name, t) in TRANSPORTS {
        let (_c, inst) = setup(&config(
            name,
            "4MiB",
            "[[rule]]\nname = \"s\"\nproto = \"udp\"\naction = \"pass\"\nsample = 10\n",
        ));
        let (consumer, got) = collect(&inst, t, 4 << 20);
        // One BPF_PROG_TEST_RUN call runs the program 1000 times on one CPU,
        // so the per-CPU sample counter makes the ratio exact.
        inst.time_run(&udp(9, 10), 1000).expect("test run");
        consumer.drain().expect("drain");
        assert_eq!(got.borrow().len(), 100, "{name}: 1 in 10 of 1000");
        assert!(got.borrow().iter().all(|g| g.kind == abi::EV_SAMPLE));
    }
}

#[test]
fn every_limits_a_rule_to_one_event_per_interval() {
    if !root("every_limits_a_rule_to_one_event_per_interval") {
        return;
    }
    for (name, t) in TRANSPORTS {
        let (_c, inst) = setup(&config(
            name,
            "1MiB",
            "[[rule]]\nname = \"e\"\nproto = \"udp\"\naction = \"pass\"\nlog = { every = \"60m\" }\n",
        ));
        let (consumer, got) = collect(&inst, t, 1 << 20);
        inst.time_run(&udp(9, 10), 5000).expect("test run");
        consumer.drain().expect("drain");
        assert_eq!(
            got.borrow().len(),
            1,
            "{name}: 5000 matches within an hour give one event"
        );
    }
}

#[test]
fn a_full_buffer_loses_events_and_counts_every_one() {
    if !root("a_full_buffer_loses_events_and_counts_every_one") {
        return;
    }
    for (name, t) in TRANSPORTS {
        // The smallest buffer and 1500-byte records: most of 2000 cannot fit
        // while nobody reads.
        let (_c, inst) = setup(&config(
            name,
            "4KiB",
            "[[rule]]\nname = \"l\"\nproto = \"udp\"\naction = \"pass\"\nlog = { snaplen = 1500 }\n",
        ));
        let (consumer, got) = collect(&inst, t, 4096);
        inst.time_run(&udp(9, 1400), 2000).expect("test run");
        consumer.drain().expect("drain");
        let k = stats::events(&inst).expect("counters");
        let d = consumer.delivery();
        assert_eq!(k.produced, 2000, "{name}");
        assert!(
            k.lost > 0,
            "{name}: a 4 KiB buffer cannot hold 2000 records"
        );
        assert_eq!(
            k.produced,
            d.delivered + k.lost,
            "{name}: produced == delivered + lost ({k:?}, {d:?})"
        );
        assert_eq!(got.borrow().len() as u64, d.delivered);
        if t == abi::TRANSPORT_PERFBUF {
            assert!(
                d.perf_lost <= k.lost,
                "{name}: perf lost samples {d:?} vs kernel {k:?}"
            );
        }
    }
}

/// Batched wake-ups leave a lone record without a wake-up: the epoll
/// consumer must still deliver it within one timeout (the documented bound).
#[test]
fn a_record_without_a_wake_up_is_delivered_within_one_poll_timeout() {
    if !root("a_record_without_a_wake_up_is_delivered_within_one_poll_timeout") {
        return;
    }
    for (name, t) in TRANSPORTS {
        let (_c, inst) = setup(&format!(
            "[events]\ntransport = \"{name}\"\nbuffer = \"1MiB\"\nwakeup = 64\n\n\
             [[rule]]\nname = \"l\"\nproto = \"udp\"\naction = \"pass\"\nlog = true\n"
        ));
        let got = Rc::new(RefCell::new(0u64));
        let sink = Rc::clone(&got);
        let opts = ConsumerOptions {
            poll: Poll::Epoll,
            timeout: Duration::from_millis(20),
            buffer: 1 << 20,
            perf_per_wakeup: 64,
        };
        let consumer =
            Consumer::new(&inst, t, opts, move |_| *sink.borrow_mut() += 1).expect("consumer");
        inst.test_run(&udp(9, 10)).expect("test run");
        let start = std::time::Instant::now();
        consumer.poll().expect("poll");
        assert_eq!(
            *got.borrow(),
            1,
            "{name}: one poll (<= one timeout) delivers it"
        );
        assert!(start.elapsed() < Duration::from_secs(1), "{name}");
        if t == abi::TRANSPORT_RINGBUF {
            assert_eq!(
                stats::events(&inst).expect("counters").wakeups,
                0,
                "{name}: no wake-up was asked for"
            );
        }
    }
}

/// Opens the capture tap's buffers of `inst` (like `collect`).
fn collect_tap(inst: &Instance, transport: u32) -> (Consumer<'_>, Rc<RefCell<Vec<Got>>>) {
    let got = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&got);
    let opts = ConsumerOptions {
        poll: Poll::Epoll,
        timeout: Duration::from_millis(5),
        buffer: u64::from(abi::TAP_RING_SIZE),
        perf_per_wakeup: 1,
    };
    let c = Consumer::tap(inst, transport, opts, move |r| {
        sink.borrow_mut().push(Got {
            rule: r.header.rule,
            verdict: r.header.verdict,
            wire_len: r.header.wire_len,
            cap_len: r.header.cap_len,
            kind: r.header.kind,
            ts_ns: r.header.ts_ns,
            data: r.data.to_vec(),
        });
    })
    .expect("tap consumer");
    (c, got)
}

/// The tap (capture, top) is a lease: the data plane ignores a tap whose
/// deadline has passed, so a tapper killed with -9 stops costing anything
/// by itself; the drops-only flag taps dropped packets alone.
#[test]
fn the_tap_honours_its_lease_and_its_drops_only_flag() {
    use xdpwall_dataplane::tap::{monotonic_ns, TapLease, TapSpec, TapState};
    use xdpwall_dataplane::types::xw_tap;
    if !root("the_tap_honours_its_lease_and_its_drops_only_flag") {
        return;
    }
    for (name, t) in TRANSPORTS {
        let (_c, inst) = setup(&config(
            name,
            "1MiB",
            "[[rule]]\nname = \"drop-9\"\nproto = \"udp\"\ndport = 9\naction = \"drop\"\n",
        ));
        let (consumer, got) = collect_tap(&inst, t);
        let run = |port| inst.test_run(&udp(port, 40)).expect("test run");

        // On, but the lease ran out (a tapper that died): nothing is tapped.
        inst.set_tap(&xw_tap {
            enabled: 1,
            snaplen: 64,
            transport: t,
            flags: 0,
            expires_ns: monotonic_ns() - 1,
        })
        .expect("set tap");
        assert_eq!(
            xdpwall_dataplane::tap::state(&inst).expect("state"),
            TapState::Free
        );
        run(9);
        run(53);
        consumer.drain().expect("drain");
        assert!(got.borrow().is_empty(), "{name}: an expired tap emitted");
        assert_eq!(stats::events(&inst).expect("counters").tap_produced, 0);

        // A live lease, dropped packets only: the drop is tapped, the pass not.
        let spec = TapSpec {
            snaplen: 64,
            transport: t,
            flags: abi::TAP_DROPS,
        };
        let mut lease = TapLease::acquire(&inst, "test", spec, false).expect("acquire");
        assert!(matches!(
            xdpwall_dataplane::tap::state(&inst).expect("state"),
            TapState::Held(_)
        ));
        run(9);
        run(53);
        consumer.drain().expect("drain");
        {
            let g = got.borrow();
            assert_eq!(g.len(), 1, "{name}: only the dropped packet");
            assert_eq!(
                (g[0].rule, g[0].verdict, g[0].kind),
                (0, 1, abi::EV_CAPTURE)
            );
            assert_eq!(g[0].cap_len, 64);
        }
        // A second tapper is refused while the lease is live, unless forced.
        assert!(matches!(
            TapLease::acquire(&inst, "test", spec, false),
            Err(xdpwall_dataplane::Error::TapBusy { .. })
        ));
        lease.renew().expect("renew");
        // Released: the tap is off.
        drop(lease);
        assert_eq!(inst.tap().expect("tap").enabled, 0);
        run(9);
        consumer.drain().expect("drain");
        assert_eq!(got.borrow().len(), 1, "{name}: tapped after release");

        // A forced take-over makes the previous holder's renewal fail.
        let mut first = TapLease::acquire(&inst, "test", spec, false).expect("acquire");
        let _second = TapLease::acquire(&inst, "test", spec, true).expect("forced");
        assert!(matches!(
            first.renew(),
            Err(xdpwall_dataplane::Error::TapLost(_))
        ));
    }
}
