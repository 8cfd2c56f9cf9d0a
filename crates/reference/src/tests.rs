//! One test per rule of the spec (DESIGN.md "Rule model", parsing,
//! address conditions), on frames built byte by byte here.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::Path;

use xdpwall_rules::{parse_config, Config, Family};

use crate::{classify, parse, Counter, Fragment, Outcome, Reason, Tally, Verdict};

// ------------------------------------------------------------ frame bytes

const TCP: u8 = 6;
const UDP: u8 = 17;
const SCTP: u8 = 132;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
const GRE: u8 = 47;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;

/// Ethernet header + tags (TPID, TCI) + the final ethertype + body.
fn frame(tags: &[(u16, u16)], ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0, 0xaa];
    let types: Vec<u16> = tags.iter().map(|t| t.0).chain([ethertype]).collect();
    f.extend_from_slice(&types[0].to_be_bytes());
    for (i, (_, tci)) in tags.iter().enumerate() {
        f.extend_from_slice(&tci.to_be_bytes());
        f.extend_from_slice(&types[i + 1].to_be_bytes());
    }
    f.extend_from_slice(body);
    f
}

fn v4addr(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().unwrap().octets()
}

fn v6addr(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// An IPv4 header (checksum left 0: nobody checks it) and its payload.
fn ipv4_raw(
    src: &str,
    dst: &str,
    proto: u8,
    frag_word: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 5 + options.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut h = vec![0x40 | ihl as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag_word.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&v4addr(src));
    h.extend_from_slice(&v4addr(dst));
    h.extend_from_slice(options);
    h.extend_from_slice(payload);
    h
}

fn ip4(src: &str, dst: &str, proto: u8, payload: &[u8]) -> Vec<u8> {
    frame(
        &[],
        0x0800,
        &ipv4_raw(src, dst, proto, 0x4000, &[], payload),
    )
}

fn ipv6_raw(src: &str, dst: &str, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&v6addr(src));
    h.extend_from_slice(&v6addr(dst));
    h.extend_from_slice(payload);
    h
}

fn ip6(src: &str, dst: &str, next: u8, payload: &[u8]) -> Vec<u8> {
    frame(&[], 0x86dd, &ipv6_raw(src, dst, next, payload))
}

/// A generic extension header (hop-by-hop, routing, dest-options) of
/// (units+1)·8 bytes.
fn ext(next: u8, units: u8) -> Vec<u8> {
    let mut e = vec![next, units];
    e.resize(8 * (usize::from(units) + 1), 0);
    e
}

/// A fragment header: offset in 8-byte units, M flag.
fn frag_ext(next: u8, offset: u16, more: bool) -> Vec<u8> {
    let mut e = vec![next, 0];
    e.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    e.extend_from_slice(&[0, 0, 0xab, 0xcd]);
    e
}

/// An authentication header with `words` 4-byte ICV words: (words+3)·4 bytes.
fn ah_ext(next: u8, words: u8) -> Vec<u8> {
    let mut e = vec![next, words + 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    e.resize(4 * (usize::from(words) + 3), 0);
    e
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    t
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 8, 0, 0]);
    u
}

fn sctp(sport: u16, dport: u16) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]);
    s
}

fn icmp(ty: u8, code: u8) -> Vec<u8> {
    vec![ty, code, 0, 0, 0, 0, 0, 0]
}

fn arp() -> Vec<u8> {
    frame(
        &[],
        0x0806,
        &[
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0xaa, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
        ],
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ------------------------------------------------------------ configs

fn cfg(text: &str) -> Config {
    parse_config(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("config: {e}\n{text}"))
}

/// A config of one `drop` rule with the given condition lines, default pass.
fn one(cond: &str) -> Config {
    cfg(&format!(
        "[[rule]]\nname = \"r\"\n{cond}\naction = \"drop\"\n"
    ))
}

/// Whether the single rule of `c` decides `f`.
fn hits(c: &Config, f: &[u8]) -> bool {
    let o = classify(c, f);
    assert_eq!(o.malformed, None, "unexpectedly malformed: {f:02x?}");
    o.rule == Some(0)
}

fn malformed(f: &[u8]) -> Option<Reason> {
    parse(f).malformed
}

// ------------------------------------------------------------ parsing

#[test]
fn frame_shorter_than_ethernet_is_truncated() {
    for n in 0..14 {
        assert_eq!(malformed(&arp()[..n]), Some(Reason::Truncated), "{n} bytes");
    }
    let p = parse(&frame(&[], 0x88cc, &[]));
    assert_eq!((p.malformed, p.ethertype, p.ip), (None, Some(0x88cc), None));
}

#[test]
fn non_ip_frames_are_not_malformed() {
    let p = parse(&arp());
    assert_eq!(p.malformed, None);
    assert_eq!(p.ip, None);
    assert_eq!(p.ethertype, Some(0x0806));
}

#[test]
fn vlan_tags_outer_and_inner() {
    let f = frame(&[(0x88a8, 0xe064), (0x8100, 0x00c8)], 0x0806, &[0; 28]);
    let p = parse(&f);
    // The PCP/DEI bits are not part of the id.
    assert_eq!(p.vlans, vec![100, 200]);
    assert_eq!(p.malformed, None);
    let p = parse(&frame(
        &[(0x8100, 7)],
        0x0800,
        &ipv4_raw("10.0.0.1", "10.0.0.2", GRE, 0, &[], &[]),
    ));
    assert_eq!(p.vlans, vec![7]);
    assert!(p.ip.is_some());
}

#[test]
fn third_vlan_tag_is_too_deep_even_without_its_bytes() {
    let f = frame(&[(0x8100, 1), (0x8100, 2), (0x8100, 3)], 0x0800, &[]);
    assert_eq!(malformed(&f), Some(Reason::VlanTooDeep));
    // Two tags whose inner ethertype names a third tag, nothing after it.
    let f = frame(&[(0x88a8, 1), (0x8100, 2)], 0x8100, &[]);
    assert_eq!(malformed(&f), Some(Reason::VlanTooDeep));
    let f = frame(&[(0x88a8, 1), (0x8100, 2)], 0x88a8, &[]);
    assert_eq!(malformed(&f), Some(Reason::VlanTooDeep));
}

#[test]
fn cut_vlan_tag_is_truncated() {
    let f = frame(&[(0x8100, 1)], 0x0806, &[]);
    for n in 14..18 {
        assert_eq!(malformed(&f[..n]), Some(Reason::Truncated), "{n} bytes");
    }
    assert_eq!(malformed(&f), None);
}

#[test]
fn ipv4_header_checks() {
    let good = ip4("10.0.0.1", "10.0.0.2", GRE, &[]);
    let p = parse(&good);
    let i = p.ip.unwrap();
    assert_eq!(
        (i.src, i.dst, i.proto, i.family()),
        (ip("10.0.0.1"), ip("10.0.0.2"), GRE, Family::Ipv4)
    );
    // Shorter than 20 bytes: truncated, whatever the version nibble says.
    for n in 14..34 {
        assert_eq!(malformed(&good[..n]), Some(Reason::Truncated));
    }
    let mut bad = good.clone();
    bad[14] = 0x65; // version 6 in an IPv4 ethertype
    assert_eq!(malformed(&bad), Some(Reason::BadHeader));
    for ihl in 0..5 {
        bad[14] = 0x40 | ihl;
        assert_eq!(malformed(&bad), Some(Reason::BadHeader), "ihl {ihl}");
    }
}

#[test]
fn ipv4_options_are_skipped_and_must_be_present() {
    let opts = [1u8; 12];
    let f = frame(
        &[],
        0x0800,
        &ipv4_raw("10.0.0.1", "10.0.0.2", UDP, 0, &opts, &udp(53, 5353)),
    );
    assert_eq!(parse(&f).ip.unwrap().ports, Some((53, 5353)));
    // Cut inside the options.
    assert_eq!(malformed(&f[..14 + 20 + 11]), Some(Reason::Truncated));
    // IHL 15 with only a 20-byte header and nothing after it.
    let mut f = ip4("10.0.0.1", "10.0.0.2", GRE, &[0; 30]);
    f[14] = 0x4f;
    assert_eq!(malformed(&f), Some(Reason::Truncated));
}

#[test]
fn ipv4_fragment_states() {
    let at = |word: u16, payload: &[u8]| {
        let f = frame(
            &[],
            0x0800,
            &ipv4_raw("10.0.0.1", "10.0.0.2", TCP, word, &[], payload),
        );
        parse(&f)
    };
    let t = tcp(1, 2, SYN);
    assert_eq!(at(0x0000, &t).ip.unwrap().fragment, Fragment::None);
    assert_eq!(
        at(0x4000, &t).ip.unwrap().fragment,
        Fragment::None,
        "DF is not a fragment"
    );
    let first = at(0x2000, &t).ip.unwrap();
    assert_eq!(
        (first.fragment, first.ports),
        (Fragment::First, Some((1, 2)))
    );
    // Offset > 0, with or without MF: non-first, no L4 read at all.
    for word in [0x2001, 0x0001, 0x1fff, 0x3fff] {
        let p = at(word, &[]);
        assert_eq!(p.malformed, None, "{word:#x}");
        let i = p.ip.unwrap();
        assert_eq!(
            (i.fragment, i.ports, i.tcp_flags, i.proto),
            (Fragment::NonFirst, None, None, TCP)
        );
    }
    // A first fragment still needs its L4 header.
    assert_eq!(at(0x2000, &t[..10]).malformed, Some(Reason::Truncated));
}

#[test]
fn ipv6_header_checks() {
    let f = ip6("2001:db8::1", "2001:db8::2", GRE, &[]);
    let i = parse(&f).ip.unwrap();
    assert_eq!(
        (i.src, i.dst, i.proto, i.family()),
        (ip("2001:db8::1"), ip("2001:db8::2"), GRE, Family::Ipv6)
    );
    for n in 14..54 {
        assert_eq!(malformed(&f[..n]), Some(Reason::Truncated));
    }
    let mut bad = f.clone();
    bad[14] = 0x40;
    assert_eq!(malformed(&bad), Some(Reason::BadHeader));
}

/// A chain of `n` extension headers of mixed kinds, then `last`.
fn chain(n: usize, last: u8, tail: &[u8]) -> (u8, Vec<u8>) {
    let kinds = [0u8, 43, 60, 51, 60, 43, 60, 60, 43, 60];
    let mut body = tail.to_vec();
    let mut next = last;
    for i in (0..n).rev() {
        let k = kinds[i % kinds.len()];
        let mut h = match k {
            51 => ah_ext(next, 1),
            _ => ext(next, (i % 3) as u8),
        };
        h.extend_from_slice(&body);
        body = h;
        next = k;
    }
    (next, body)
}

#[test]
fn ipv6_extension_headers_to_a_depth_of_eight() {
    for n in 0..=8 {
        let (first, body) = chain(n, UDP, &udp(1000, 53));
        let f = ip6("2001:db8::1", "2001:db8::2", first, &body);
        let i = parse(&f).ip.unwrap_or_else(|| panic!("{n} headers"));
        assert_eq!((i.proto, i.ports), (UDP, Some((1000, 53))), "{n} headers");
    }
    let (first, body) = chain(9, UDP, &udp(1000, 53));
    assert_eq!(
        malformed(&ip6("2001:db8::1", "2001:db8::2", first, &body)),
        Some(Reason::ExtTooDeep)
    );
    // The ninth header is refused before its bytes are needed.
    let (first, body) = chain(8, 60, &[]);
    assert_eq!(
        malformed(&ip6("2001:db8::1", "2001:db8::2", first, &body)),
        Some(Reason::ExtTooDeep)
    );
}

#[test]
fn ipv6_extension_header_lengths() {
    // AH: (len + 2) * 4 bytes; others: (len + 1) * 8.
    let mut body = ah_ext(60, 3); // 24 bytes
    body.extend_from_slice(&ext(TCP, 2)); // 24 bytes
    body.extend_from_slice(&tcp(5, 6, ACK));
    let f = ip6("::1", "::2", 51, &body);
    assert_eq!(parse(&f).ip.unwrap().ports, Some((5, 6)));
    for cut in [
        54 + 7,
        54 + 8,
        54 + 23,
        54 + 24 + 7,
        54 + 24 + 23,
        54 + 48 + 19,
    ] {
        assert_eq!(
            malformed(&f[..cut]),
            Some(Reason::Truncated),
            "cut at {cut}"
        );
    }
}

#[test]
fn ipv6_fragment_header_states() {
    let with = |offset: u16, more: bool, tail: &[u8]| {
        let mut body = frag_ext(TCP, offset, more);
        body.extend_from_slice(tail);
        parse(&ip6("::1", "::2", 44, &body))
    };
    let t = tcp(1, 2, SYN);
    let first = with(0, true, &t).ip.unwrap();
    assert_eq!(
        (first.fragment, first.ports),
        (Fragment::First, Some((1, 2)))
    );
    let atomic = with(0, false, &t).ip.unwrap();
    assert_eq!(
        (atomic.fragment, atomic.ports),
        (Fragment::None, Some((1, 2)))
    );
    for (offset, more) in [(1, true), (1, false), (8191, true)] {
        let p = with(offset, more, &[]);
        assert_eq!(p.malformed, None);
        let i = p.ip.unwrap();
        assert_eq!(
            (i.fragment, i.proto, i.ports),
            (Fragment::NonFirst, TCP, None)
        );
    }
}

#[test]
fn non_first_fragment_ends_the_extension_walk() {
    // Nine headers after a non-first fragment header are its payload.
    let (next, rest) = chain(9, UDP, &[]);
    let mut body = frag_ext(next, 100, true);
    body.extend_from_slice(&rest);
    let i = parse(&ip6("::1", "::2", 44, &body)).ip.unwrap();
    assert_eq!((i.fragment, i.proto), (Fragment::NonFirst, next));
    // …but the headers before it count towards the depth.
    let (first, body) = chain(8, 44, &frag_ext(UDP, 100, true));
    assert_eq!(
        malformed(&ip6("::1", "::2", first, &body)),
        Some(Reason::ExtTooDeep)
    );
    let (first, body) = chain(7, 44, &frag_ext(UDP, 100, true));
    assert_eq!(
        parse(&ip6("::1", "::2", first, &body)).ip.unwrap().fragment,
        Fragment::NonFirst
    );
}

#[test]
fn two_fragment_headers() {
    // First then atomic: stays first. First then non-first: non-first.
    let mut body = frag_ext(44, 0, true);
    body.extend_from_slice(&frag_ext(UDP, 0, false));
    body.extend_from_slice(&udp(1, 2));
    assert_eq!(
        parse(&ip6("::1", "::2", 44, &body)).ip.unwrap().fragment,
        Fragment::First
    );
    let mut body = frag_ext(44, 0, true);
    body.extend_from_slice(&frag_ext(UDP, 3, false));
    assert_eq!(
        parse(&ip6("::1", "::2", 44, &body)).ip.unwrap().fragment,
        Fragment::NonFirst
    );
}

#[test]
fn tcp_needs_twenty_bytes_and_a_sane_offset() {
    let f = ip4("10.0.0.1", "10.0.0.2", TCP, &tcp(1234, 80, SYN | ACK));
    let i = parse(&f).ip.unwrap();
    assert_eq!((i.ports, i.tcp_flags), (Some((1234, 80)), Some(SYN | ACK)));
    assert_eq!(malformed(&f[..34 + 19]), Some(Reason::Truncated));
    // Options are not required: doff 15 in a 20-byte header is fine.
    let mut t = tcp(1, 2, 0);
    t[12] = 0xf0;
    assert_eq!(malformed(&ip4("10.0.0.1", "10.0.0.2", TCP, &t)), None);
    for doff in 0..5u8 {
        t[12] = doff << 4;
        assert_eq!(
            malformed(&ip4("10.0.0.1", "10.0.0.2", TCP, &t)),
            Some(Reason::BadHeader)
        );
        assert_eq!(
            malformed(&ip6("::1", "::2", TCP, &t)),
            Some(Reason::BadHeader)
        );
    }
}

#[test]
fn udp_sctp_icmp_header_sizes() {
    let cases: [(u8, Vec<u8>, usize); 3] = [
        (UDP, udp(1, 2), 8),
        (SCTP, sctp(3, 4), 12),
        (ICMP, icmp(8, 0), 4),
    ];
    for (proto, l4, need) in cases {
        let f = ip4("10.0.0.1", "10.0.0.2", proto, &l4);
        assert_eq!(malformed(&f[..34 + need]), None, "proto {proto}");
        assert_eq!(
            malformed(&f[..34 + need - 1]),
            Some(Reason::Truncated),
            "proto {proto}"
        );
    }
    let f = ip6("::1", "::2", SCTP, &sctp(3, 4));
    assert_eq!(parse(&f).ip.unwrap().ports, Some((3, 4)));
    let f = ip6("::1", "::2", ICMPV6, &icmp(128, 0));
    assert_eq!(parse(&f).ip.unwrap().icmp, Some((128, 0)));
    assert_eq!(malformed(&f[..54 + 3]), Some(Reason::Truncated));
}

#[test]
fn icmp_follows_the_family() {
    // ICMPv6 in IPv4 and ICMP in IPv6: no ICMP facts, no bytes needed.
    let p = parse(&ip4("10.0.0.1", "10.0.0.2", ICMPV6, &[]));
    let i = p.ip.unwrap();
    assert_eq!((i.proto, i.icmp), (ICMPV6, None));
    let p = parse(&ip6("::1", "::2", ICMP, &[]));
    let i = p.ip.unwrap();
    assert_eq!((i.proto, i.icmp), (ICMP, None));
}

#[test]
fn other_protocols_need_nothing() {
    let i = parse(&ip4("10.0.0.1", "10.0.0.2", GRE, &[])).ip.unwrap();
    assert_eq!((i.ports, i.tcp_flags, i.icmp), (None, None, None));
}

// ------------------------------------------------------------ classification

fn tcp4(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    ip4(src, dst, TCP, &tcp(sport, dport, ACK))
}

#[test]
fn first_terminal_rule_in_file_order_decides() {
    let c = cfg(r#"
[[rule]]
name = "a"
proto = "udp"
action = "drop"
[[rule]]
name = "b"
dport = 22
action = "pass"
[[rule]]
name = "c"
proto = "tcp"
action = "drop"
"#);
    assert_eq!(
        classify(&c, &tcp4("1.1.1.1", "2.2.2.2", 1, 22)).rule,
        Some(1)
    );
    let o = classify(&c, &tcp4("1.1.1.1", "2.2.2.2", 1, 23));
    assert_eq!((o.rule, o.verdict), (Some(2), Verdict::Drop));
    let o = classify(&c, &ip4("1.1.1.1", "2.2.2.2", UDP, &udp(1, 22)));
    assert_eq!((o.rule, o.verdict), (Some(0), Verdict::Drop));
}

#[test]
fn default_action_when_nothing_terminal_matches() {
    let c = cfg(
        "[xdp]\ndefault = \"drop\"\n[[rule]]\nname = \"a\"\nproto = \"udp\"\naction = \"pass\"\n",
    );
    let o = classify(&c, &tcp4("1.1.1.1", "2.2.2.2", 1, 22));
    assert_eq!(
        o,
        Outcome {
            verdict: Verdict::Drop,
            rule: None,
            malformed: None,
            counted: vec![]
        }
    );
    let c = cfg("[[rule]]\nname = \"a\"\nproto = \"udp\"\naction = \"drop\"\n");
    assert_eq!(
        classify(&c, &tcp4("1.1.1.1", "2.2.2.2", 1, 22)).verdict,
        Verdict::Pass
    );
}

#[test]
fn rule_without_conditions_matches_everything() {
    let c = cfg("[[rule]]\nname = \"all\"\naction = \"drop\"\n");
    assert!(hits(&c, &arp()));
    assert!(hits(&c, &tcp4("1.1.1.1", "2.2.2.2", 1, 22)));
    assert!(hits(&c, &ip6("::1", "::2", 250, &[])));
}

#[test]
fn count_rules_count_before_the_winner_only() {
    let c = cfg(r#"
[[rule]]
name = "c0"
action = "count"
[[rule]]
name = "c1"
proto = "udp"
action = "count"
[[rule]]
name = "win"
proto = "tcp"
action = "pass"
[[rule]]
name = "c3"
action = "count"
"#);
    let f = tcp4("1.1.1.1", "2.2.2.2", 1, 22);
    let o = classify(&c, &f);
    assert_eq!((o.rule, o.counted), (Some(2), vec![0]));
    let u = ip4("1.1.1.1", "2.2.2.2", UDP, &udp(1, 2));
    let o = classify(&c, &u);
    assert_eq!(
        (o.rule, o.counted, o.verdict),
        (None, vec![0, 1, 3], Verdict::Pass)
    );

    let mut t = Tally::new(&c);
    t.add(&classify(&c, &f), f.len());
    t.add(&classify(&c, &u), u.len());
    let n = |p: u64, b: usize| Counter {
        packets: p,
        bytes: b as u64,
    };
    assert_eq!(
        t.rules,
        vec![
            n(2, f.len() + u.len()),
            n(1, u.len()),
            n(1, f.len()),
            n(1, u.len())
        ]
    );
    assert_eq!(t.default, n(1, u.len()));
}

#[test]
fn malformed_policy_and_no_rule_no_count() {
    let c = cfg("[xdp]\nmalformed = \"drop\"\n[[rule]]\nname = \"c\"\naction = \"count\"\n[[rule]]\nname = \"p\"\naction = \"pass\"\n");
    let f = tcp4("1.1.1.1", "2.2.2.2", 1, 22);
    let cut = &f[..40];
    let o = classify(&c, cut);
    assert_eq!(
        o,
        Outcome {
            verdict: Verdict::Drop,
            rule: None,
            malformed: Some(Reason::Truncated),
            counted: vec![]
        }
    );
    let mut t = Tally::new(&c);
    t.add(&o, cut.len());
    assert_eq!(
        t.malformed[0],
        Counter {
            packets: 1,
            bytes: 40
        }
    );
    assert_eq!(
        (t.rules[0], t.default),
        (Counter::default(), Counter::default())
    );
    // Default malformed policy: pass.
    let c = cfg("[[rule]]\nname = \"d\"\naction = \"drop\"\n");
    assert_eq!(classify(&c, cut).verdict, Verdict::Pass);
}

#[test]
fn address_plain_entries_form_a_union() {
    let c = one(r#"src = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]"#);
    assert!(hits(&c, &tcp4("10.9.9.9", "1.1.1.1", 1, 2)));
    assert!(hits(&c, &tcp4("192.0.2.7", "1.1.1.1", 1, 2)));
    assert!(!hits(&c, &tcp4("192.0.2.8", "1.1.1.1", 1, 2)));
    assert!(!hits(&c, &tcp4("11.0.0.0", "1.1.1.1", 1, 2)));
    assert!(hits(&c, &ip6("2001:db8:ffff::1", "::2", GRE, &[])));
    assert!(!hits(&c, &ip6("2001:db9::1", "::2", GRE, &[])));
}

#[test]
fn address_negated_entries_exclude() {
    let c = one(r#"dst = ["10.0.0.0/8", "!10.1.0.0/16", "!10.2.3.4"]"#);
    assert!(hits(&c, &tcp4("1.1.1.1", "10.0.0.1", 1, 2)));
    assert!(!hits(&c, &tcp4("1.1.1.1", "10.1.2.3", 1, 2)));
    assert!(!hits(&c, &tcp4("1.1.1.1", "10.2.3.4", 1, 2)));
    assert!(hits(&c, &tcp4("1.1.1.1", "10.2.3.5", 1, 2)));
    assert!(!hits(&c, &tcp4("1.1.1.1", "11.0.0.1", 1, 2)));
}

#[test]
fn only_negated_entries_match_everything_else_including_the_other_family() {
    let c = one(r#"src = "!10.0.0.0/8""#);
    assert!(!hits(&c, &tcp4("10.1.1.1", "1.1.1.1", 1, 2)));
    assert!(hits(&c, &tcp4("11.1.1.1", "1.1.1.1", 1, 2)));
    assert!(hits(&c, &ip6("2001:db8::1", "::2", GRE, &[])));
    assert!(
        hits(&c, &ip6("::ffff:10.0.0.1", "::2", GRE, &[])),
        "a v4-mapped v6 address is IPv6"
    );
    // …and `family` restricts it.
    let c = one("src = \"!10.0.0.0/8\"\nfamily = \"ipv4\"");
    assert!(!hits(&c, &ip6("2001:db8::1", "::2", GRE, &[])));
}

#[test]
fn address_sets_and_prefix_extremes() {
    let c = cfg(r#"
[sets]
a = ["10.0.0.0/8", "2001:db8::/32"]
b = ["10.5.0.0/16", "0.0.0.0/32"]
[[rule]]
name = "r"
src = ["@a", "!@b", "255.255.255.255"]
action = "drop"
[[rule]]
name = "all4"
dst = "0.0.0.0/0"
action = "pass"
[[rule]]
name = "host6"
dst = "2001:db8::ffff/128"
action = "count"
"#);
    assert_eq!(
        classify(&c, &tcp4("10.1.1.1", "1.1.1.1", 1, 2)).rule,
        Some(0)
    );
    assert_eq!(
        classify(&c, &tcp4("10.5.1.1", "1.1.1.1", 1, 2)).rule,
        Some(1)
    );
    assert_eq!(
        classify(&c, &tcp4("255.255.255.255", "1.1.1.1", 1, 2)).rule,
        Some(0)
    );
    assert_eq!(
        classify(&c, &tcp4("0.0.0.0", "1.1.1.1", 1, 2)).rule,
        Some(1)
    );
    assert_eq!(
        classify(&c, &ip6("2001:db8::5", "::2", GRE, &[])).rule,
        Some(0)
    );
    let o = classify(&c, &ip6("2001:db9::5", "2001:db8::ffff", GRE, &[]));
    assert_eq!(
        (o.rule, o.counted),
        (None, vec![2]),
        "0.0.0.0/0 holds no IPv6 address"
    );
}

#[test]
fn non_ip_frames_match_only_rules_without_l3_l4_conditions() {
    let f = frame(&[(0x8100, 30)], 0x0806, &[0; 28]);
    for cond in [
        "src = \"!10.0.0.0/8\"",
        "dst = \"0.0.0.0/0\"",
        "proto = 0",
        "family = \"ipv4\"",
        "fragment = \"none\"",
        "fragment = \"any\"",
        "dport = \"0-65535\"",
        "tcp_flags = \"!syn\"",
        "icmp_type = 0",
        "vlan = 30\nfamily = \"ipv6\"",
    ] {
        assert!(!hits(&one(cond), &f), "{cond} matched a non-IP frame");
    }
    assert!(hits(&one("vlan = 30"), &f));
    assert!(!hits(&one("vlan = 31"), &f));
}

#[test]
fn proto_numbers_including_ipv6_after_extensions() {
    let c = one("proto = 47");
    assert!(hits(&c, &ip4("1.1.1.1", "2.2.2.2", GRE, &[])));
    let (first, body) = chain(3, GRE, &[]);
    assert!(hits(&c, &ip6("::1", "::2", first, &body)));
    assert!(!hits(&c, &ip6("::1", "::2", 4, &[])));
    // Non-first IPv6 fragment: the fragment header's next header.
    let c = one("proto = \"udp\"\nfragment = \"non-first\"");
    assert!(hits(&c, &ip6("::1", "::2", 44, &frag_ext(UDP, 9, false))));
}

#[test]
fn port_ranges_are_inclusive_and_only_tcp_udp_sctp_have_ports() {
    let c = one(r#"sport = [0, "1000-2000", 65535]"#);
    for p in [0, 1000, 1500, 2000, 65535] {
        assert!(hits(&c, &tcp4("1.1.1.1", "2.2.2.2", p, 9)), "port {p}");
        assert!(
            hits(&c, &ip4("1.1.1.1", "2.2.2.2", UDP, &udp(p, 9))),
            "port {p}"
        );
        assert!(hits(&c, &ip6("::1", "::2", SCTP, &sctp(p, 9))), "port {p}");
    }
    for p in [1, 999, 2001, 65534] {
        assert!(!hits(&c, &tcp4("1.1.1.1", "2.2.2.2", p, 9)), "port {p}");
    }
    // ICMP and other protocols have no ports, not even port 0.
    let c = one("dport = \"0-65535\"");
    assert!(!hits(&c, &ip4("1.1.1.1", "2.2.2.2", ICMP, &icmp(0, 0))));
    assert!(!hits(&c, &ip4("1.1.1.1", "2.2.2.2", GRE, &[])));
    assert!(hits(&c, &tcp4("1.1.1.1", "2.2.2.2", 0, 0)));
    // A non-first fragment carries none either.
    let c = one("dport = \"0-65535\"\nproto = \"udp\"");
    assert!(!hits(
        &c,
        &frame(
            &[],
            0x0800,
            &ipv4_raw("1.1.1.1", "2.2.2.2", UDP, 0x2010, &[], &udp(1, 2))
        )
    ));
}

#[test]
fn tcp_flags_set_and_clear_masks() {
    let c = one("tcp_flags = \"syn,!ack\"");
    assert!(hits(&c, &ip4("1.1.1.1", "2.2.2.2", TCP, &tcp(1, 2, SYN))));
    assert!(hits(
        &c,
        &ip4("1.1.1.1", "2.2.2.2", TCP, &tcp(1, 2, SYN | FIN | 0x80))
    ));
    assert!(!hits(
        &c,
        &ip4("1.1.1.1", "2.2.2.2", TCP, &tcp(1, 2, SYN | ACK))
    ));
    assert!(!hits(&c, &ip4("1.1.1.1", "2.2.2.2", TCP, &tcp(1, 2, 0))));
    assert!(
        !hits(&c, &ip4("1.1.1.1", "2.2.2.2", UDP, &udp(1, 2))),
        "UDP has no flags"
    );
    let c = one("tcp_flags = \"!fin,!syn,!rst,!psh,!ack,!urg,!ece,!cwr\"");
    assert!(hits(&c, &ip6("::1", "::2", TCP, &tcp(1, 2, 0))));
    assert!(!hits(&c, &ip6("::1", "::2", TCP, &tcp(1, 2, 0x40))));
}

#[test]
fn icmp_type_and_code_by_family() {
    let c = one("icmp_type = 8\nicmp_code = 0");
    assert!(hits(&c, &ip4("1.1.1.1", "2.2.2.2", ICMP, &icmp(8, 0))));
    assert!(!hits(&c, &ip4("1.1.1.1", "2.2.2.2", ICMP, &icmp(8, 1))));
    assert!(!hits(&c, &ip4("1.1.1.1", "2.2.2.2", ICMP, &icmp(0, 0))));
    assert!(hits(&c, &ip6("::1", "::2", ICMPV6, &icmp(8, 0))));
    // The other family's ICMP flavour has no type or code.
    assert!(!hits(&c, &ip4("1.1.1.1", "2.2.2.2", ICMPV6, &icmp(8, 0))));
    assert!(!hits(&c, &ip6("::1", "::2", ICMP, &icmp(8, 0))));
    let c = one("icmp_code = 3");
    assert!(hits(&c, &ip6("::1", "::2", ICMPV6, &icmp(1, 3))));
    assert!(!hits(&c, &ip4("1.1.1.1", "2.2.2.2", UDP, &udp(3, 3))));
}

#[test]
fn family_condition() {
    let c = one("family = \"ipv6\"");
    assert!(hits(&c, &ip6("::1", "::2", GRE, &[])));
    assert!(!hits(&c, &ip4("1.1.1.1", "2.2.2.2", GRE, &[])));
}

#[test]
fn vlan_matches_outer_or_inner_tag() {
    let c = one("vlan = 100");
    let body = ipv4_raw("1.1.1.1", "2.2.2.2", GRE, 0, &[], &[]);
    assert!(hits(&c, &frame(&[(0x8100, 100)], 0x0800, &body)));
    assert!(hits(
        &c,
        &frame(&[(0x88a8, 100), (0x8100, 5)], 0x0800, &body)
    ));
    assert!(hits(
        &c,
        &frame(&[(0x88a8, 5), (0x8100, 0x3064)], 0x0800, &body)
    ));
    assert!(!hits(
        &c,
        &frame(&[(0x88a8, 5), (0x8100, 6)], 0x0800, &body)
    ));
    assert!(!hits(&c, &frame(&[], 0x0800, &body)));
    let c = one("vlan = 0");
    assert!(
        hits(&c, &frame(&[(0x8100, 0xe000)], 0x0800, &body)),
        "a priority tag has id 0"
    );
    assert!(!hits(&c, &frame(&[], 0x0800, &body)), "no tag is not id 0");
}

#[test]
fn fragment_conditions() {
    let v4 = |word: u16| {
        frame(
            &[],
            0x0800,
            &ipv4_raw("1.1.1.1", "2.2.2.2", UDP, word, &[], &udp(1, 2)),
        )
    };
    let v6 = |off: u16, more: bool| {
        let mut b = frag_ext(UDP, off, more);
        b.extend_from_slice(&udp(1, 2));
        ip6("::1", "::2", 44, &b)
    };
    let none = [
        v4(0),
        v4(0x4000),
        v6(0, false),
        ip6("::1", "::2", UDP, &udp(1, 2)),
    ];
    let first = [v4(0x2000), v6(0, true)];
    let later = [v4(0x2001), v4(0x0100), v6(1, true), v6(77, false)];
    let check = |cond: &str, want: [bool; 3]| {
        let c = one(&format!("fragment = \"{cond}\""));
        for (frames, w) in [
            (&none[..], want[0]),
            (&first[..], want[1]),
            (&later[..], want[2]),
        ] {
            for f in frames {
                assert_eq!(hits(&c, f), w, "fragment = {cond} on {f:02x?}");
            }
        }
    };
    check("none", [true, false, false]);
    check("first", [false, true, false]);
    check("non-first", [false, false, true]);
    check("any", [false, true, true]);
}

#[test]
fn non_first_fragments_match_rules_without_l4_conditions() {
    let c = cfg(r#"
[[rule]]
name = "ports"
proto = "tcp"
dport = 80
action = "drop"
[[rule]]
name = "addr"
src = "10.0.0.0/8"
proto = "tcp"
action = "pass"
"#);
    let later = frame(
        &[],
        0x0800,
        &ipv4_raw("10.1.1.1", "2.2.2.2", TCP, 0x2008, &[], &tcp(1, 80, SYN)),
    );
    assert_eq!(classify(&c, &later).rule, Some(1));
    let first = frame(
        &[],
        0x0800,
        &ipv4_raw("10.1.1.1", "2.2.2.2", TCP, 0x2000, &[], &tcp(1, 80, SYN)),
    );
    assert_eq!(classify(&c, &first).rule, Some(0));
}

#[test]
fn reasons_have_counter_indices_and_names() {
    for (i, r) in Reason::ALL.iter().enumerate() {
        assert_eq!(r.index() as usize, i);
        assert_eq!(Reason::from_index(i as u32), Some(*r));
    }
    assert_eq!(Reason::from_index(4), None);
    assert_eq!(Reason::ExtTooDeep.name(), "ext_too_deep");
    assert_eq!(Verdict::Drop.xdp(), Some(1));
    assert_eq!(Verdict::Pass.xdp(), Some(2));
}

// ------------------------------------------------------------ rate limits

#[test]
fn rate_limit_buckets_let_the_burst_pass_per_rule_or_per_source() {
    let c = cfg(r#"
[[rule]]
name = "dns"
proto = "udp"
dport = 53
rate_limit = { pps = 1, burst = 2, by = "src" }
[[rule]]
name = "rest"
rate_limit = { pps = 1, burst = 1, by = "rule" }
"#);
    let mut b = crate::Buckets::new();
    let a1 = parse(&ip4("192.0.2.1", "192.0.2.2", UDP, &udp(1, 53)));
    let a2 = parse(&ip4("192.0.2.9", "192.0.2.2", UDP, &udp(1, 53)));
    let other = parse(&ip4("192.0.2.1", "192.0.2.2", UDP, &udp(1, 54)));
    assert_eq!(
        classify(&c, &ip4("192.0.2.1", "192.0.2.2", UDP, &udp(1, 53))).verdict,
        Verdict::RateLimit
    );
    // Two per source, then timing decides.
    assert_eq!(b.judge(&c, 0, &a1), Some(true));
    assert_eq!(b.judge(&c, 0, &a1), Some(true));
    assert_eq!(b.judge(&c, 0, &a1), None);
    assert_eq!(b.judge(&c, 0, &a2), Some(true));
    // One bucket for the whole rule, whatever the source.
    assert_eq!(b.judge(&c, 1, &other), Some(true));
    assert_eq!(b.judge(&c, 1, &a2), None);
    // Not a rate limit: nothing to say.
    let p = cfg("[[rule]]\nname = \"p\"\naction = \"pass\"\n");
    assert_eq!(b.judge(&p, 0, &a1), None);
}
