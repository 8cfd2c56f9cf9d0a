//! The generator program under BPF_PROG_TEST_RUN (data plane) and sending
//! live frames across a real veth pair (lab). Both need root.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use xdpwall_gen::frame::checksums_valid;
use xdpwall_gen::prog::{XDP_DROP, XDP_TX};
use xdpwall_gen::{run, AddrRange, FrameSpec, GenOptions, GenProgram, PortRange, Proto, Receiver};
use xdpwall_lab::{require_root, Lab, LabOptions};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn spec(src: IpAddr, dst: IpAddr, proto: Proto, size: usize) -> FrameSpec {
    FrameSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        src,
        dst,
        proto,
        sport: 9,
        dport: 5353,
        size,
    }
}

fn src_and_sport(frame: &[u8]) -> (IpAddr, u16) {
    let p = SlicedPacket::from_ethernet(frame).unwrap_or_else(|e| panic!("{e}"));
    let src = match &p.net {
        Some(NetSlice::Ipv4(h)) => IpAddr::from(h.header().source()),
        Some(NetSlice::Ipv6(h)) => IpAddr::from(h.header().source()),
        other => panic!("no IP: {other:?}"),
    };
    let sport = match &p.transport {
        Some(TransportSlice::Udp(u)) => u.source_port(),
        Some(TransportSlice::Tcp(t)) => t.source_port(),
        other => panic!("no UDP/TCP: {other:?}"),
    };
    (src, sport)
}

/// Every run takes the next (address, port) of the sequence: all frames
/// stay inside the ranges, keep valid checksums, and together cover every
/// address and port of small ranges; the counter counts each run.
#[test]
fn gen_program_rewrites_sources_within_ranges() {
    if !require_root("gen_program_rewrites_sources_within_ranges") {
        return;
    }
    let cases = [
        (
            "198.18.0.0-198.18.0.4",
            "198.18.1.2",
            Proto::Udp,
            64,
            "1000-1002",
            1,
        ),
        (
            "100.64.0.0-100.64.0.2",
            "198.18.1.2",
            Proto::TcpSyn,
            1500,
            "40000-40001",
            3,
        ),
        ("fd00::10-fd00::14", "fd00::1", Proto::Udp, 128, "7-9", 1),
        (
            "fd00::ffff:ff00/124",
            "fd00::1",
            Proto::TcpSyn,
            74,
            "65535",
            2,
        ),
    ];
    for (src, dst, proto, size, sport, step) in cases {
        let what = format!("{src} {proto:?} {size} {sport} step {step}");
        let src: AddrRange = src.parse().unwrap_or_else(|e| panic!("{what}: {e}"));
        let src = src
            .with_step(step)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let sport: PortRange = sport.parse().unwrap_or_else(|e| panic!("{what}: {e}"));
        let s = spec(src.first, ip(dst), proto, size);
        let template = s.build().unwrap_or_else(|e| panic!("{what}: {e}"));
        let prog =
            GenProgram::load(&s, &src, &sport, XDP_TX).unwrap_or_else(|e| panic!("{what}: {e}"));
        let combos = u64::from(src.count) * u64::from(sport.count);
        let mut seen = BTreeSet::new();
        for _ in 0..combos * 2 {
            let (verdict, out) = prog
                .run_once(&template)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(verdict, XDP_TX, "{what}");
            assert_eq!(out.len(), template.len(), "{what}");
            assert!(
                checksums_valid(&out),
                "{what}: checksum broken by the rewrite"
            );
            let (a, p) = src_and_sport(&out);
            assert!(src.contains(a), "{what}: source {a} outside the range");
            assert!(sport.contains(p), "{what}: port {p} outside the range");
            // Everything but source address and port is the template's.
            let mut expect = s.clone();
            expect.src = a;
            expect.sport = p;
            let rebuilt = expect.build().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                out, rebuilt,
                "{what}: the program changed more than source and port"
            );
            seen.insert((a, p));
        }
        // Runs here are on one CPU, so the sequence steps by the CPU count:
        // coverage is complete only when that count and the range share no factor.
        let cpus = u64::from(xdpwall_gen::prog::possible_cpus().unwrap_or(1));
        if gcd(cpus, combos) == 1 {
            assert_eq!(
                seen.len() as u64,
                combos,
                "{what}: not every (address, port) was used"
            );
        } else {
            assert!(
                seen.len() as u64 >= combos / cpus,
                "{what}: too few distinct tuples"
            );
        }
        let sent: u64 = prog
            .sent_per_cpu()
            .unwrap_or_default()
            .iter()
            .map(|c| c.packets)
            .sum();
        assert_eq!(sent, combos * 2, "{what}: counter");
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Live frames across a veth pair: the receiver (a counting XDP_DROP on
/// the peer) sees exactly the frames the generator's counters report, for
/// one and for every CPU, IPv4 UDP and IPv6 TCP SYN.
#[test]
fn live_frames_reach_the_peer_exactly() {
    if !require_root("live_frames_reach_the_peer_exactly") {
        return;
    }
    // IPv6 off on the veths: the stack then sends nothing of its own (no
    // MLD/ND), so every frame the peer sees is the generator's. The IPv6
    // frames below only carry the lab's addresses; nothing routes them.
    let lab = Lab::new(LabOptions::default().ipv6(false)).unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (lab.a(), lab.b());
    let rx = Receiver::drop_all().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rx.verdict(), XDP_DROP);
    let bidx = b.ifindex();
    b.ns()
        .run(|| rx.attach(bidx))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let all = xdpwall_gen::run::allowed_cpus().unwrap_or_else(|e| panic!("{e}"));
    let mut expected = 0u64;
    for (v6, proto, size, cpus, count) in [
        (false, Proto::Udp, 64, vec![all[0]], 100_000u64),
        (true, Proto::TcpSyn, 1514, all.clone(), 30_001),
    ] {
        let mut s = spec(a.ip(v6), b.ip(v6), proto, size);
        s.src_mac = a.mac();
        s.dst_mac = b.mac();
        let src = AddrRange {
            first: a.ip(v6),
            count: 16,
            step: 1,
        };
        let prog = GenProgram::load(
            &s,
            &src,
            &PortRange {
                first: 1024,
                count: 1000,
            },
            XDP_TX,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let frame = s.build().unwrap_or_else(|e| panic!("{e}"));
        let opts = GenOptions {
            ifindex: a.ifindex(),
            netns: Some(a.ns().path().to_path_buf()),
            cpus: cpus.clone(),
            batch: 64,
            rate: None,
            duration: None,
            count: Some(count),
            nice: None,
        };
        let report =
            run(&prog, &frame, &opts, &AtomicBool::new(false)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.sent.packets, count, "{v6} {proto:?}: sent");
        assert_eq!(report.sent.bytes, count * size as u64);
        assert_eq!(report.per_cpu.len(), cpus.len());
        // One sender never overfills the peer's ring (its NAPI runs on the
        // same CPU after every batch); several may, and the veth counts
        // what it refused as the sender's tx_dropped: nothing is unaccounted.
        if cpus.len() == 1 {
            assert_eq!(report.tx_dropped, 0, "one sender, nothing refused");
        }
        expected += count - report.tx_dropped;
        // With several CPUs another CPU's NAPI may still be draining.
        let got = settle(|| rx.count().map(|c| c.packets).unwrap_or(0), expected);
        assert_eq!(
            got, expected,
            "{v6} {proto:?}: received {got}, expected sent - tx_dropped = {expected}"
        );
        let link = xdpwall_gen::netdev::link_stats(Some(b.ns().path()), bidx)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            link.rx_packets, expected,
            "the receiving veth's own rx counter"
        );
    }
    b.ns()
        .run(|| rx.detach(bidx))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Polls `read` until it reaches `want` or stops changing for a while.
fn settle(read: impl Fn() -> u64, want: u64) -> u64 {
    let mut last = read();
    let mut still = 0;
    while last < want && still < 50 {
        std::thread::yield_now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let now = read();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    last
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within it; the
    // call changes only this thread's affinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// The program's own limit and pacing: past the limit, or ahead of the
/// pace, a run sends nothing (XDP_DROP, frame untouched, not counted).
#[test]
fn gen_program_holds_back_over_limit_and_ahead_of_pace() {
    if !require_root("gen_program_holds_back_over_limit_and_ahead_of_pace") {
        return;
    }
    let cpu = xdpwall_gen::run::allowed_cpus().unwrap_or_else(|e| panic!("{e}"))[0];
    let s = spec(ip("198.18.0.1"), ip("198.18.0.2"), Proto::Udp, 64);
    let src = AddrRange::single(s.src);
    let prog =
        GenProgram::load(&s, &src, &PortRange::single(9), XDP_TX).unwrap_or_else(|e| panic!("{e}"));
    let frame = s.build().unwrap_or_else(|e| panic!("{e}"));
    let sent = |p: &GenProgram| p.sent_per_cpu().unwrap_or_default()[cpu].packets;
    // Runs happen on the calling thread's CPU: keep it on one.
    std::thread::scope(|sc| {
        sc.spawn(|| {
            pin_to(cpu);
            prog.set_controls(&[(cpu, Some(2), 0)])
                .unwrap_or_else(|e| panic!("{e}"));
            let verdicts: Vec<u32> = (0..4)
                .map(|_| prog.run_once(&frame).unwrap_or_else(|e| panic!("{e}")).0)
                .collect();
            assert_eq!(verdicts, [XDP_TX, XDP_TX, XDP_DROP, XDP_DROP], "limit 2");
            let (_, held) = prog.run_once(&frame).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(held, frame, "a held frame is not rewritten");
            assert_eq!(sent(&prog), 2);
            // One frame a second: the first goes, the next is ahead of its time.
            prog.set_controls(&[(cpu, None, 1_000_000_000)])
                .unwrap_or_else(|e| panic!("{e}"));
            let verdicts: Vec<u32> = (0..3)
                .map(|_| prog.run_once(&frame).unwrap_or_else(|e| panic!("{e}")).0)
                .collect();
            assert_eq!(verdicts, [XDP_TX, XDP_DROP, XDP_DROP], "paced at 1/s");
            assert_eq!(sent(&prog), 3);
        });
    });
}
