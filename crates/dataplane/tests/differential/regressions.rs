//! Fixed differential cases: corners of DESIGN.md checked against the
//! reference on hand-written frames, and minimal reproductions of bugs the
//! random tests found (marked `#[ignore = "BUG: …"]` until fixed).

use crate::harness::{assert_agree, unhex};

fn root(name: &str) -> bool {
    xdpwall_lab::require_root(name)
}

/// Ethernet header with `ethertype` (after optional tags).
fn eth(tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = unhex("02000000 00bb0200 000000aa");
    let types: Vec<u16> = tags.iter().map(|t| t.0).chain([ethertype]).collect();
    f.extend_from_slice(&types[0].to_be_bytes());
    for (i, (_, tci)) in tags.iter().enumerate() {
        f.extend_from_slice(&tci.to_be_bytes());
        f.extend_from_slice(&types[i + 1].to_be_bytes());
    }
    f
}

/// IPv4 header 10.0.0.1 -> 10.0.0.2, protocol `proto`, frag word `frag`.
fn ipv4(proto: u8, frag: u16) -> Vec<u8> {
    let mut h = unhex("45000028 12340000 40000000 0a000001 0a000002");
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[9] = proto;
    h
}

/// IPv6 header 2001:db8::1 -> 2001:db8::2 with next header `nh`.
fn ipv6(nh: u8) -> Vec<u8> {
    let mut h = unhex(
        "60000000 00000040 20010db8000000000000000000000001 20010db8000000000000000000000002",
    );
    h[6] = nh;
    h
}

const TCP_SYN_22: &str = "04d20016 00000001 00000000 5002faf0 00000000";

#[test]
fn negated_v4_prefix_matches_ipv6_but_not_arp() {
    if !root("negated_v4_prefix_matches_ipv6_but_not_arp") {
        return;
    }
    let toml = "[[rule]]\nname = \"not10\"\nsrc = \"!10.0.0.0/8\"\naction = \"drop\"\n";
    let mut v6 = eth(&[], 0x86dd);
    v6.extend(ipv6(6));
    v6.extend(unhex(TCP_SYN_22));
    assert_agree(toml, &v6);
    let mut arp = eth(&[], 0x0806);
    arp.extend(unhex(
        "0001080006040001 0200000000aa0a000001 0000000000000a000002",
    ));
    assert_agree(toml, &arp);
}

#[test]
fn inner_vlan_tag_and_third_tag() {
    if !root("inner_vlan_tag_and_third_tag") {
        return;
    }
    let toml = "[[rule]]\nname = \"v\"\nvlan = 200\naction = \"drop\"\n";
    let mut f = eth(&[(0x88a8, 100), (0x8100, 0x20c8)], 0x0800);
    f.extend(ipv4(6, 0x4000));
    f.extend(unhex(TCP_SYN_22));
    assert_agree(toml, &f);
    let mut f = eth(&[(0x88a8, 100), (0x8100, 200), (0x8100, 300)], 0x0800);
    f.extend(ipv4(6, 0x4000));
    assert_agree(toml, &f);
}

#[test]
fn non_first_fragment_against_port_rules() {
    if !root("non_first_fragment_against_port_rules") {
        return;
    }
    let toml = "[[rule]]\nname = \"ports\"\nproto = \"tcp\"\ndport = 22\naction = \"drop\"\n\
                [[rule]]\nname = \"frag\"\nfragment = \"non-first\"\naction = \"count\"\n\
                [[rule]]\nname = \"tcp\"\nproto = \"tcp\"\naction = \"pass\"\n";
    let mut f = eth(&[], 0x0800);
    f.extend(ipv4(6, 0x2003));
    f.extend(unhex(TCP_SYN_22));
    assert_agree(toml, &f);
    let mut f = eth(&[], 0x86dd);
    f.extend(ipv6(44));
    f.extend(unhex("06000019 0000abcd"));
    assert_agree(toml, &f);
}

#[test]
fn nine_ipv6_extension_headers() {
    if !root("nine_ipv6_extension_headers") {
        return;
    }
    let toml = "[xdp]\nmalformed = \"drop\"\n[[rule]]\nname = \"all\"\naction = \"pass\"\n";
    let mut f = eth(&[], 0x86dd);
    f.extend(ipv6(60));
    for i in 0..9 {
        let next = if i == 8 { 59 } else { 60 };
        f.extend([next, 0, 0, 0, 0, 0, 0, 0]);
    }
    assert_agree(toml, &f);
}
