//! Event order with two producer CPUs, for both transports: threads pinned
//! to CPU 0 and CPU 1 run the real program under BPF_PROG_TEST_RUN while the
//! consumer drains concurrently. Across CPUs, records may arrive with a
//! timestamp older than the one before (the ring buffer's order is the order
//! of reservation, taken after the timestamp; the perf buffer is read one CPU
//! buffer at a time): those reorders are counted and printed, not forbidden.
//! Within one CPU they must never go backwards, and the books must balance.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::stats;
use xdpwall_events::{Consumer, ConsumerOptions, Poll};
use xdpwall_rules::compile::{abi, compile};
use xdpwall_rules::parse_config;

const TRANSPORTS: [(&str, u32); 2] = [
    ("ringbuf", abi::TRANSPORT_RINGBUF),
    ("perfbuf", abi::TRANSPORT_PERFBUF),
];
/// Events per producer (one BPF_PROG_TEST_RUN call each).
const PER_PRODUCER: u32 = 50_000;

fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; all-zero is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(
        r,
        0,
        "sched_getaffinity: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: c < CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; all-zero is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: cpu comes from allowed_cpus, below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: set is a valid cpu_set_t; 0 = the calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(
        r,
        0,
        "pin to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}

fn udp() -> Vec<u8> {
    let mut pkt = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([198, 51, 100, 1], [198, 51, 100, 2], 64)
        .udp(40_000, 9)
        .write(&mut pkt, &[0xab; 200])
        .expect("build packet");
    pkt
}

/// What one transport delivered, in delivery order.
struct Order {
    /// Delivered records whose ts_ns is older than the previous record's.
    reorders: u64,
    /// Largest such backwards step, ns.
    max_back_ns: u64,
    /// Per CPU: records delivered, and backwards steps within that CPU.
    per_cpu: Vec<(u32, u64, u64)>,
}

fn analyse(stream: &[(u64, u32)]) -> Order {
    let mut o = Order {
        reorders: 0,
        max_back_ns: 0,
        per_cpu: Vec::new(),
    };
    let mut prev: Option<u64> = None;
    let mut last: Vec<(u32, u64)> = Vec::new();
    for &(ts, cpu) in stream {
        if let Some(p) = prev {
            if ts < p {
                o.reorders += 1;
                o.max_back_ns = o.max_back_ns.max(p - ts);
            }
        }
        prev = Some(ts);
        match last.iter().position(|&(c, _)| c == cpu) {
            Some(i) => {
                let back = u64::from(ts < last[i].1);
                last[i].1 = ts;
                o.per_cpu[i].1 += 1;
                o.per_cpu[i].2 += back;
            }
            None => {
                last.push((cpu, ts));
                o.per_cpu.push((cpu, 1, 0));
            }
        }
    }
    o
}

#[test]
fn two_producer_cpus_keep_per_cpu_order_and_balance_the_books() {
    if !xdpwall_lab::require_root("two_producer_cpus_keep_per_cpu_order_and_balance_the_books") {
        return;
    }
    let cpus = allowed_cpus();
    if cpus.len() < 2 && !ci() {
        eprintln!("skipping two_producer_cpus_keep_per_cpu_order_and_balance_the_books: needs 2 CPUs, {} allowed", cpus.len());
        return;
    }
    // With one CPU (only under CI=true) both producers share it: the
    // accounting and per-CPU order are still checked.
    let producers = [cpus[0], *cpus.get(1).unwrap_or(&cpus[0])];
    let pkt = udp();
    for (name, t) in TRANSPORTS {
        let toml = format!(
            "[events]\ntransport = \"{name}\"\nbuffer = \"8MiB\"\nsnaplen = 64\n\n\
             [[rule]]\nname = \"l\"\nproto = \"udp\"\naction = \"drop\"\nlog = {{ snaplen = 64 }}\n"
        );
        let cfg = parse_config(&toml, Path::new("order.toml")).unwrap_or_else(|e| panic!("{e}"));
        let c = compile(&cfg).unwrap_or_else(|e| panic!("{e:?}"));
        let inst = load(
            &c,
            LoadOptions {
                trace: false,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));

        let stream = Rc::new(RefCell::new(Vec::with_capacity(2 * PER_PRODUCER as usize)));
        let sink = Rc::clone(&stream);
        let opts = ConsumerOptions {
            poll: Poll::Epoll,
            timeout: Duration::from_millis(5),
            buffer: 8 << 20,
            perf_per_wakeup: 1,
        };
        let consumer = Consumer::new(&inst, t, opts, move |r| {
            sink.borrow_mut().push((r.header.ts_ns, r.header.cpu))
        })
        .expect("consumer");

        let barrier = Barrier::new(producers.len() + 1);
        let done = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let handles: Vec<_> = producers
                .iter()
                .map(|&cpu| {
                    let (inst, pkt, barrier, done) = (&inst, &pkt, &barrier, &done);
                    s.spawn(move || {
                        pin(cpu);
                        barrier.wait();
                        let r = inst.time_run(pkt, PER_PRODUCER);
                        done.fetch_add(1, Ordering::Release);
                        r.expect("test run");
                    })
                })
                .collect();
            barrier.wait();
            while done.load(Ordering::Acquire) < producers.len() {
                consumer.poll().expect("poll");
            }
            for h in handles {
                h.join().expect("producer");
            }
        });
        // The producers' runs have returned, so every record is committed.
        let deadline = Instant::now() + Duration::from_secs(5);
        let (k, d) = loop {
            consumer.drain().expect("drain");
            let k = stats::events(&inst).expect("counters");
            let d = consumer.delivery();
            if d.delivered + k.lost >= k.produced || Instant::now() > deadline {
                break (k, d);
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let total = 2 * u64::from(PER_PRODUCER);
        assert_eq!(
            k.produced, total,
            "{name}: every run emits one event ({k:?})"
        );
        assert_eq!(
            k.produced,
            d.delivered + k.lost,
            "{name}: produced == delivered + lost ({k:?}, {d:?})"
        );
        assert_eq!(d.malformed, 0, "{name}");
        let stream = stream.borrow();
        assert_eq!(stream.len() as u64, d.delivered, "{name}");

        let o = analyse(&stream);
        for &(cpu, n, back) in &o.per_cpu {
            assert!(
                producers.contains(&(cpu as usize)),
                "{name}: a record from CPU {cpu}, producers ran on {producers:?}"
            );
            assert_eq!(
                back, 0,
                "{name}: CPU {cpu}: {back} of its {n} records went back in time"
            );
        }
        if producers[0] != producers[1] && k.lost == 0 {
            assert_eq!(
                o.per_cpu.len(),
                2,
                "{name}: records from both producer CPUs: {:?}",
                o.per_cpu
            );
        }
        println!(
            "{name}: producers on CPUs {producers:?}, delivered {} lost {} of {}; cross-CPU reorders {} \
             ({:.2} % of delivered), max backwards gap {:.1} µs; per CPU (cpu, records, backwards): {:?}",
            d.delivered,
            k.lost,
            k.produced,
            o.reorders,
            100.0 * o.reorders as f64 / d.delivered.max(1) as f64,
            o.max_back_ns as f64 / 1e3,
            o.per_cpu
        );
    }
}

#[test]
fn analyse_counts_cross_and_per_cpu_steps() {
    let o = analyse(&[(10, 0), (20, 1), (15, 0), (30, 1), (25, 1), (26, 0)]);
    assert_eq!(o.reorders, 2);
    assert_eq!(o.max_back_ns, 5);
    assert_eq!(o.per_cpu, vec![(0, 3, 0), (1, 3, 1)]);
}
