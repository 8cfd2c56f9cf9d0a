//! The peer programs of `bench classify` decide what the bench assumes:
//! the bare program drops everything; xdp-filter drops exactly the listed
//! source address and destination port and passes the rest.

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use xdpwall_bench::peers::{bare_drop, xdp_filter, xdp_filter_object, FilterFill};
use xdpwall_dataplane::testrun::{time_fd, XDP_DROP, XDP_PASS};
use xdpwall_lab::require_root;

fn udp(src: [u8; 4], dport: u16) -> Vec<u8> {
    let mut pkt = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, [198, 51, 100, 2], 64)
        .udp(40_000, dport)
        .write(&mut pkt, &[0u8; 18])
        .expect("build");
    pkt
}

#[test]
fn bare_drop_drops() {
    if !require_root("bare_drop_drops") {
        return;
    }
    let p = bare_drop().expect("load");
    let (v, _) = time_fd(p.fd(), &udp([192, 0, 2, 1], 53), 1).expect("run");
    assert_eq!(v, XDP_DROP);
}

#[test]
fn xdp_filter_drops_listed_sources_and_ports_only() {
    if !require_root("xdp_filter_drops_listed_sources_and_ports_only") {
        return;
    }
    let Some(obj) = xdp_filter_object("xdpfilt_alw_all") else {
        eprintln!("skipped: xdp-filter's objects are not installed (XDPWALL_SETUP_BENCH=1 scripts/setup.sh)");
        return;
    };
    let fill = FilterFill {
        src4: vec![Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 7)],
        dports: vec![5353],
    };
    let p = xdp_filter(&obj, &fill).expect("load xdp-filter");
    let verdict = |src, port| time_fd(p.fd(), &udp(src, port), 1).expect("run").0;
    assert_eq!(verdict([192, 0, 2, 1], 4242), XDP_DROP, "listed source");
    assert_eq!(verdict([192, 0, 2, 9], 5353), XDP_DROP, "listed port");
    assert_eq!(verdict([192, 0, 2, 9], 4242), XDP_PASS, "nothing listed");
}
