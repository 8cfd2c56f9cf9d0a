//! Lab tests of the protection actions with real traffic: `rate_limit`
//! accuracy on a veth pair, and `redirect` from one veth pair to another
//! (three namespaces), in generic and in native mode.
//!
//! Rate-limit tolerance: a bucket of `burst` packets refilling at `pps`
//! passes `burst + pps × t` packets of a flood lasting `t` (between the
//! first and the last packet the program sees). `t` is read at the
//! receiver: the kernel's receive timestamps (SO_TIMESTAMPNS, taken in the
//! NAPI poll that ran the program, with native XDP on the veth) of the
//! first and the last datagram passed. The first passed is the flood's
//! first (the bucket starts full); the last lies within one token (1 / pps)
//! of the flood's last. The sender's own clock is no measure of this: under
//! the suite's load a run passed 5 % fewer than the sender's span predicted,
//! as when the kernel runs the program on a backlog well after the first
//! sends. The test allows ±(2 + pps × 10 ms) packets. Measured figures are
//! printed (`--nocapture`).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use xdpwall_lab::{require_root, Lab, LabOptions, Netns, IFNAME_B};

use crate::fixtures::{
    b_addr, config_dir, listen_udp, rule, stats_json, Running, TempDir, Via, MARKER_UDP, WAIT,
};

fn lab() -> Lab {
    Lab::new(LabOptions::default().ipv6(false)).expect("building the lab")
}

fn setsockopt_int(sock: &UdpSocket, level: i32, name: i32, value: i32) {
    // SAFETY: a valid socket fd and a pointer to an int of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

/// A UDP socket bound in `ns` with room for every datagram of a test
/// (SO_RCVBUFFORCE, root), so what arrives is what the program passed.
fn roomy_socket(ns: &Netns, addr: SocketAddr) -> UdpSocket {
    let sock = ns
        .run(|| UdpSocket::bind(addr))
        .expect("entering the namespace")
        .expect("binding the receiver");
    setsockopt_int(&sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 64 << 20);
    setsockopt_int(&sock, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1);
    sock.set_nonblocking(true).expect("non-blocking");
    wait_for_stamping(ns, &sock, addr);
    sock
}

/// SO_TIMESTAMPNS stamps a datagram on arrival only once the kernel's
/// timestamp switch is on, and the first socket to ask may have it turned
/// on later, from a work item: a datagram that arrives before then is
/// stamped when it is read. This sends probes over loopback (no XDP, no
/// rate limit) until one comes stamped before it is read. Each probe is
/// read before the next is sent, so none is left for the flood's count.
fn wait_for_stamping(ns: &Netns, sock: &UdpSocket, addr: SocketAddr) {
    let probe = ns
        .run(|| UdpSocket::bind(SocketAddr::new(addr.ip(), 0)))
        .expect("entering the namespace")
        .expect("binding the probe");
    let deadline = Instant::now() + WAIT;
    for probes in 1.. {
        probe.send_to(b"probe", addr).expect("sending a probe");
        assert!(
            readable(sock, deadline),
            "a probe over loopback did not arrive"
        );
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let stamp = recv_stamped(sock).expect("the probe that poll saw");
        if stamp < before {
            eprintln!("receive timestamps on after {probes} probe(s)");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "receive timestamps did not come on within {WAIT:?}"
        );
    }
}

/// Waits (poll(2)) until `sock` has a datagram, or `deadline` passes.
fn readable(sock: &UdpSocket, deadline: Instant) -> bool {
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: one valid pollfd for the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return true;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// One datagram from a socket with SO_TIMESTAMPNS on: its kernel receive
/// time in ns, or None when nothing is waiting.
fn recv_stamped(sock: &UdpSocket) -> Option<u64> {
    let mut buf = [0u8; 2048];
    // Room for one cmsg carrying a timespec, u64-aligned.
    let mut ctl = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: zero is a valid msghdr; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&ctl);
    // SAFETY: a valid socket fd and a msghdr whose buffers are live.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return None;
    }
    // SAFETY: msg was filled by recvmsg; CMSG_* walk its control buffer.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !c.is_null() {
        // SAFETY: c points at a complete cmsghdr inside ctl.
        let h = unsafe { &*c };
        if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: SCM_TIMESTAMPNS carries a struct timespec.
            let ts: libc::timespec = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
            return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
        }
        // SAFETY: as above.
        c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
    }
    panic!("a datagram without its SO_TIMESTAMPNS receive time");
}

/// Datagrams waiting on a non-blocking socket, and the time from the first
/// one's arrival to the last one's (kernel receive timestamps).
fn drain(sock: &UdpSocket) -> (u64, Duration) {
    let mut n = 0;
    let (mut first, mut last) = (u64::MAX, 0);
    while let Some(t) = recv_stamped(sock) {
        n += 1;
        first = first.min(t);
        last = last.max(t);
    }
    (n, Duration::from_nanos(last.saturating_sub(first)))
}

/// From namespace a: `n` datagrams to `dst` as fast as one socket can,
/// then a marker to b:[`MARKER_UDP`]. Returns (accepted by the kernel,
/// time from the first send to the end of the last). `no_check`: send
/// without a UDP checksum (see [`redirect_case`]).
fn flood(lab: &Lab, dst: SocketAddr, n: usize, no_check: bool) -> (u64, Duration) {
    let marker = b_addr(lab, MARKER_UDP);
    lab.a()
        .ns()
        .run(|| {
            let sock = UdpSocket::bind("0.0.0.0:0").expect("bind UDP");
            if no_check {
                setsockopt_int(&sock, libc::SOL_SOCKET, libc::SO_NO_CHECK, 1);
            }
            let mut sent = 0;
            let t = Instant::now();
            for _ in 0..n {
                if sock.send_to(&[0x5a; 32], dst).is_ok() {
                    sent += 1;
                }
            }
            let elapsed = t.elapsed();
            sock.send_to(b"marker", marker).expect("send marker");
            (sent, elapsed)
        })
        .expect("entering namespace a")
}

fn rule_counts(lab: &Lab, name: &str) -> (u64, u64) {
    let s = stats_json(lab.b().ns(), Via::IpNetnsExec).unwrap_or_else(|e| panic!("{e}"));
    let r = rule(&s, name);
    let matched = r["packets"].as_u64().expect("packets");
    let limited = r["limited"]
        .as_u64()
        .unwrap_or_else(|| panic!("stats --json lacks `limited` for {name}: {s}"));
    (matched, limited)
}

const LIMITS: &str = r#"
[[rule]]
name = "limit-1k"
proto = "udp"
dport = 7001
rate_limit = { pps = 1000, burst = 100, by = "src" }

[[rule]]
name = "limit-10k"
proto = "udp"
dport = 7002
rate_limit = { pps = 10000, burst = 1000, by = "rule" }
"#;

#[test]
fn rate_limit_passes_burst_plus_rate_of_a_real_flood() {
    if !require_root("rate_limit_passes_burst_plus_rate_of_a_real_flood") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("ratelimit", LIMITS);
    let _run = Running::start(lab.b().ns(), &cfg, &[]);
    // (rule, port, pps, burst, datagrams): each flood offers far more than
    // the limit (a socket sends well over 50k datagrams/s).
    for (name, port, pps, burst, n) in [
        ("limit-1k", 7001, 1_000u64, 100u64, 20_000usize),
        ("limit-10k", 7002, 10_000, 1_000, 40_000),
    ] {
        let rx = roomy_socket(lab.b().ns(), b_addr(&lab, port));
        let marker = listen_udp(&lab, MARKER_UDP);
        let (sent, sender_t) = flood(&lab, b_addr(&lab, port), n, false);
        assert!(
            marker.wait_for(1, WAIT),
            "the marker after the flood did not arrive"
        );
        let (received, t) = drain(&rx);
        let (matched, limited) = rule_counts(&lab, name);
        assert!(
            matched > 0 && matched <= sent,
            "{matched} matched of {sent} sent"
        );
        assert!(
            limited > 0,
            "{name}: nothing over the limit; the flood was too slow"
        );
        assert_eq!(
            received,
            matched - limited,
            "{name}: what arrived must be what the rule passed ({matched} matched, {limited} over the limit)"
        );
        let expected = burst as f64 + pps as f64 * t.as_secs_f64();
        let tolerance = 2.0 + pps as f64 * 0.010;
        let offered = matched as f64 / t.as_secs_f64();
        eprintln!(
            "{name}: offered {offered:.0} pps for {:.1} ms at the receiver ({:.1} ms at the sender), passed {received}, expected {expected:.1} (burst {burst} + {pps} pps x t), error {:+.2}%",
            t.as_secs_f64() * 1e3,
            sender_t.as_secs_f64() * 1e3,
            (received as f64 / expected - 1.0) * 100.0
        );
        assert!(
            (received as f64 - expected).abs() <= tolerance,
            "{name}: passed {received}, expected {expected:.1} ± {tolerance:.0}"
        );
    }
}

// ---------------------------------------------------------------- redirect

/// Port whose datagrams the rule redirects.
const REDIRECTED: u16 = 7100;

const REDIRECT: &str = r#"
[[rule]]
name = "to-c"
proto = "udp"
dport = 7100
redirect = "xwr0"
"#;

/// A second veth pair from b (`xwr0`) to a third namespace c (`xwr1`).
/// `xwr1` takes b's MAC and IPv4 address, so frames redirected unchanged
/// (addressed to b) are for c: a listener there proves they arrived.
fn third_host(lab: &Lab) -> Netns {
    let c = Netns::new("redir-c").expect("namespace c");
    let b = lab.b().ns();
    b.ip(&[
        "link",
        "add",
        "xwr0",
        "type",
        "veth",
        "peer",
        "name",
        "xwr1",
        "netns",
        c.name(),
    ])
    .expect("second veth pair");
    b.ip(&["link", "set", "xwr0", "up"]).expect("xwr0 up");
    let mac: Vec<String> = lab.b().mac().iter().map(|x| format!("{x:02x}")).collect();
    c.ip(&["link", "set", "xwr1", "address", &mac.join(":"), "up"])
        .expect("xwr1 up");
    c.ip(&[
        "addr",
        "add",
        &format!("{}/24", lab.b().ipv4()),
        "dev",
        "xwr1",
    ])
    .expect("xwr1 address");
    c
}

/// Sends `n` datagrams to b:[`REDIRECTED`] and returns how many reached a
/// listener in c (all must also be counted by the rule, none reach b).
///
/// Over veth, native XDP loses the sender's checksum offload state
/// (CHECKSUM_PARTIAL): a redirected frame keeps an unfinished UDP checksum
/// and the receiver drops it (UdpInCsumErrors). The flood therefore sends
/// without a UDP checksum (legal in IPv4); real NICs fill in checksums
/// before XDP sees a frame.
fn redirect_case(lab: &Lab, c: &Netns, n: usize, want_arrived: bool) {
    let dst = SocketAddr::new(IpAddr::V4(lab.b().ipv4()), REDIRECTED);
    let in_c = xdpwall_lab::traffic::udp_listen(c, dst).expect("listener in c");
    let in_b = listen_udp(lab, REDIRECTED);
    let marker = listen_udp(lab, MARKER_UDP);
    let before = rule_packets(lab);
    let (sent, _) = flood(lab, dst, n, true);
    assert_eq!(sent, n as u64, "the kernel refused some datagrams");
    assert!(marker.wait_for(1, WAIT), "the marker did not arrive at b");
    assert_eq!(
        rule_packets(lab) - before,
        sent,
        "the rule counts every datagram"
    );
    if want_arrived {
        assert!(
            in_c.wait_for(sent, WAIT),
            "only {}/{sent} redirected datagrams reached c",
            in_c.count()
        );
    }
    let (got_c, got_b) = (in_c.stop(), in_b.stop());
    assert_eq!(got_b, 0, "redirected datagrams must not reach b's stack");
    if want_arrived {
        assert_eq!(got_c, sent);
    } else {
        assert_eq!(
            got_c, 0,
            "frames arrived though the kernel cannot send them"
        );
    }
}

fn rule_packets(lab: &Lab) -> u64 {
    let s = stats_json(lab.b().ns(), Via::IpNetnsExec).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rule(&s, "to-c")["redirect_errors"].as_u64(), Some(0), "{s}");
    rule(&s, "to-c")["packets"].as_u64().expect("packets")
}

#[test]
fn redirect_in_generic_mode_reaches_the_other_veth_pair() {
    if !require_root("redirect_in_generic_mode_reaches_the_other_veth_pair") {
        return;
    }
    let lab = lab();
    let c = third_host(&lab);
    let (_dir, cfg) = config_dir("redirect-generic", REDIRECT);
    let run = Running::start(lab.b().ns(), &cfg, &["--mode", "generic"]);
    assert!(run.stderr().contains("generic mode"), "{}", run.stderr());
    // Generic XDP hands the frame to xwr0 as an skb: nothing is needed on c.
    redirect_case(&lab, &c, 50, true);
}

#[test]
fn redirect_in_native_mode_needs_xdp_on_the_target_peer() {
    let test = "redirect_in_native_mode_needs_xdp_on_the_target_peer";
    if !require_root(test) {
        return;
    }
    let lab = lab();
    let c = third_host(&lab);
    let (_dir, cfg) = config_dir("redirect-native", REDIRECT);
    let run = Running::start(lab.b().ns(), &cfg, &["--mode", "native"]);
    assert!(run.stderr().contains("native mode"), "{}", run.stderr());
    // Native redirect to a veth transmits an XDP frame to its peer, which
    // only takes it when it runs XDP itself (veth then polls with NAPI):
    // without, the kernel drops the frames after xdpwall redirected them.
    redirect_case(&lab, &c, 20, false);
    let dir = TempDir::new("redirect-peer");
    let Some(obj) = crate::lab::foreign_object(&dir, test) else {
        return;
    };
    c.ip(&[
        "link",
        "set",
        "dev",
        "xwr1",
        "xdpdrv",
        "obj",
        obj.to_str().expect("utf-8"),
        "sec",
        "xdp",
    ])
    .expect("an XDP_PASS program on xwr1");
    redirect_case(&lab, &c, 50, true);
}

#[test]
fn run_refuses_a_redirect_to_a_missing_interface() {
    if !require_root("run_refuses_a_redirect_to_a_missing_interface") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("redirect-missing", REDIRECT);
    let mut run = Running::spawn(lab.b().ns(), &cfg, &[]);
    let out = run.wait_exit(WAIT);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("rules.toml:2:1: rule `to-c`: redirect target xwr0")
            && out.stderr.contains("same namespace"),
        "{}",
        out.describe()
    );
    assert!(
        !crate::fixtures::link_has_xdp(lab.b().ns()),
        "nothing may be attached to {IFNAME_B}"
    );
}

// ------------------------------------------------------------ bench ratelimit

#[test]
fn bench_ratelimit_refuses_loads_under_the_limit() {
    for (args, needle) in [
        (&["--factor", "0.5"][..], "--factor 0.5"),
        (&["--seconds", "0"][..], "--seconds 0"),
        (&["--rates", "0"][..], "--rates: 0 pps"),
    ] {
        let mut all = vec!["bench", "ratelimit"];
        all.extend_from_slice(args);
        let out = crate::fixtures::xdpwall(&all);
        out.assert_code(2);
        assert!(out.stderr.contains(needle), "{}", out.describe());
        assert!(out.stdout.is_empty(), "{}", out.describe());
    }
}

#[test]
fn bench_ratelimit_measures_each_limit_by_rule_and_source() {
    if !require_root("bench_ratelimit_measures_each_limit_by_rule_and_source") {
        return;
    }
    let out =
        crate::fixtures::xdpwall(&["bench", "ratelimit", "--rates", "1000", "--seconds", "0.3"]);
    out.assert_code(0);
    // Figures depend on the machine; the rows and their counts do not lie.
    for by in ["rule", "src"] {
        let row = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("| 1000 | {by} | 100 |")))
            .unwrap_or_else(|| panic!("no row for {by}\n{}", out.describe()));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (matched, passed): (u64, u64) = (
            cells[7].parse().expect("matched"),
            cells[8].parse().expect("passed"),
        );
        assert!(passed > 0 && passed < matched, "{row}");
    }
}
