//! XDP errors are counted from the kernel's tracepoints, for our program on
//! our interface only (DESIGN.md "Metrics": `xdpwall_xdp_errors_total`).
//!
//! A program loaded with a raw default verdict makes the kernel report an
//! error for every packet, deterministically: `XDP_ABORTED` is an
//! `xdp:xdp_exception`, and `XDP_REDIRECT` without a target is an
//! `xdp:xdp_redirect_err`. The lab has IPv6 off and static neighbours, so
//! the only frames crossing the veth are the datagrams the test sends; the
//! count must equal them exactly, in native and generic mode. Needs root.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use xdpwall_dataplane::load::{load_next, load_with_raw_default, LoadOptions};
use xdpwall_dataplane::xdperr::{self, XdpErrorCounter, XdpErrors};
use xdpwall_dataplane::{attach, stats, Instance};
use xdpwall_lab::{require_root, Lab, LabOptions};
use xdpwall_rules::compile::compile;
use xdpwall_rules::{parse_config, Mode};

const XDP_ABORTED: u32 = 0;
const XDP_REDIRECT: u32 = 4;
const SENT: usize = 25;

fn program(xdp: u32) -> Instance {
    let cfg = parse_config("", Path::new("xdperr.toml")).unwrap_or_else(|e| panic!("{e}"));
    let c = compile(&cfg).unwrap_or_else(|e| panic!("{e}"));
    load_with_raw_default(&c, LoadOptions::default(), xdp).unwrap_or_else(|e| panic!("{e}"))
}

fn attach_in(lab: &Lab, inst: &Instance, mode: Mode) {
    let iface = lab.b().ifname();
    lab.b()
        .ns()
        .run(|| attach::attach(inst, iface, mode, false))
        .expect("enter namespace b")
        .unwrap_or_else(|e| panic!("attach: {e}"));
}

/// Sends SENT datagrams from a to b; returns how many the kernel accepted.
fn send(lab: &Lab) -> u64 {
    let dst = SocketAddr::new(IpAddr::V4(lab.b().ipv4()), 7777);
    xdpwall_lab::traffic::udp_send(lab.a().ns(), None, dst, SENT, 32).expect("udp_send") as u64
}

/// Polls the counters until `done` holds; fails after a deadline.
fn wait(inst: &Instance, what: &str, done: impl Fn(&XdpErrors) -> bool) -> XdpErrors {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = xdperr::read(inst).expect("read xw_xdp_errors");
        if done(&e) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {e:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn errors_are_counted_exactly(mode: Mode) {
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("lab");

    // XDP_ABORTED: one exception per packet, under the `aborted` action.
    let aborted = program(XDP_ABORTED);
    attach_in(&lab, &aborted, mode);
    let _counting_aborts =
        XdpErrorCounter::attach(&aborted, lab.b().ifindex()).unwrap_or_else(|e| panic!("{e}"));
    let sent = send(&lab);
    assert!(sent > 0, "nothing sent");
    // The program itself saw exactly the packets sent (no stray frames)...
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats::read(&aborted).expect("stats").default.packets < sent {
        assert!(
            Instant::now() < deadline,
            "the program did not see {sent} packets"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ... and the kernel reported each of them once.
    let e = wait(&aborted, "one exception per packet", |e| {
        e.exception_total() >= sent
    });
    assert_eq!(e.exceptions[0], sent, "{mode:?}: aborted exceptions: {e:?}");
    assert_eq!(e.exception_total(), sent, "{e:?}");
    assert_eq!(e.redirect_total(), 0, "{e:?}");
    assert_eq!(stats::read(&aborted).expect("stats").default.packets, sent);

    // XDP_REDIRECT with no target: one redirect error per packet. The first
    // program's counter stays attached and must not count the second
    // program's errors on the same interface.
    let redirect = program(XDP_REDIRECT);
    attach_in(&lab, &redirect, mode);
    let _counting_redirects =
        XdpErrorCounter::attach(&redirect, lab.b().ifindex()).unwrap_or_else(|e| panic!("{e}"));
    let sent2 = send(&lab);
    assert!(sent2 > 0, "nothing sent");
    let e2 = wait(&redirect, "one redirect error per packet", |e| {
        e.redirect_total() >= sent2
    });
    assert_eq!(e2.redirect_err, sent2, "{mode:?}: {e2:?}");
    assert_eq!(e2.redirect_map_err, 0, "{e2:?}");
    assert_eq!(e2.exception_total(), 0, "{e2:?}");
    assert_eq!(
        xdperr::read(&aborted).expect("read"),
        e,
        "the first program's counters moved for another program's errors"
    );
    lab.b()
        .ns()
        .run(|| attach::detach(lab.b().ifname(), false))
        .expect("enter namespace b")
        .expect("detach");
}

#[test]
fn xdp_errors_are_counted_per_packet_in_native_mode() {
    if !require_root("xdp_errors_are_counted_per_packet_in_native_mode") {
        return;
    }
    errors_are_counted_exactly(Mode::Native);
}

#[test]
fn xdp_errors_are_counted_per_packet_in_generic_mode() {
    if !require_root("xdp_errors_are_counted_per_packet_in_generic_mode") {
        return;
    }
    errors_are_counted_exactly(Mode::Generic);
}

#[test]
fn counters_survive_without_the_tracepoints_and_carry_over() {
    if !require_root("counters_survive_without_the_tracepoints_and_carry_over") {
        return;
    }
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("lab");
    let old = program(XDP_ABORTED);
    attach_in(&lab, &old, Mode::Native);
    let counting =
        XdpErrorCounter::attach(&old, lab.b().ifindex()).unwrap_or_else(|e| panic!("{e}"));
    let sent = send(&lab);
    let e = wait(&old, "exceptions", |e| e.exception_total() >= sent);
    // The counters are the program's: they outlive the tracepoint links.
    drop(counting);
    assert_eq!(xdperr::read(&old).expect("read"), e);
    // A reload's program shares them, like the rule counters.
    let cfg = parse_config("", Path::new("xdperr.toml")).unwrap_or_else(|e| panic!("{e}"));
    let c = compile(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let new = load_next(&c, LoadOptions::default(), &old).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(xdperr::read(&new).expect("read"), e);
}
