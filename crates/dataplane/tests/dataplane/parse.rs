//! Parse paths: what the program reads, how far, and what it calls malformed.

use xdpwall_rules::{Action, Conditions, Family, Verdict};

use super::fixtures::*;

/// A rule set that recognises each packet shape below by its L4 fields, so
/// a classification proves the parser found the L4 header.
fn l4_rules() -> Cfg {
    Cfg::new()
        .rule(
            "tcp443",
            Conditions {
                proto: Some(6),
                dport: port(443),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "udp53",
            Conditions {
                proto: Some(17),
                dport: port(53),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "sctp9",
            Conditions {
                proto: Some(132),
                dport: port(9),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "echo4",
            Conditions {
                proto: Some(1),
                icmp_type: Some(8),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "echo6",
            Conditions {
                proto: Some(58),
                icmp_type: Some(128),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "gre",
            Conditions {
                proto: Some(47),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "v6",
            Conditions {
                family: Some(Family::Ipv6),
                ..any()
            },
            Action::Pass,
        )
}

#[test]
fn l4_headers_of_both_families() {
    if !root("l4_headers_of_both_families") {
        return;
    }
    let fw = l4_rules().load();
    assert_eq!(
        fw.hit(&tcp4("192.0.2.1", "192.0.2.2", 40000, 443)),
        Some("tcp443")
    );
    assert_eq!(fw.hit(&tcp4("192.0.2.1", "192.0.2.2", 40000, 444)), None);
    assert_eq!(
        fw.hit(&udp4("192.0.2.1", "192.0.2.2", 5353, 53)),
        Some("udp53")
    );
    assert_eq!(
        fw.hit(&ip4(
            "192.0.2.1",
            "192.0.2.2",
            L4::Sctp { sport: 1, dport: 9 }
        )),
        Some("sctp9")
    );
    assert_eq!(
        fw.hit(&ip4("192.0.2.1", "192.0.2.2", L4::Icmp { ty: 8, code: 0 })),
        Some("echo4")
    );
    assert_eq!(
        fw.hit(&ip4("192.0.2.1", "192.0.2.2", L4::Icmp { ty: 0, code: 0 })),
        None
    );
    assert_eq!(
        fw.hit(&ip4("192.0.2.1", "192.0.2.2", L4::Other(47))),
        Some("gre")
    );
    assert_eq!(
        fw.hit(&tcp6("2001:db8::1", "2001:db8::2", 40000, 443)),
        Some("tcp443")
    );
    assert_eq!(
        fw.hit(&udp6("2001:db8::1", "2001:db8::2", 5353, 53)),
        Some("udp53")
    );
    assert_eq!(
        fw.hit(&ip6(
            "2001:db8::1",
            "2001:db8::2",
            L4::Sctp { sport: 1, dport: 9 }
        )),
        Some("sctp9")
    );
    assert_eq!(
        fw.hit(&ip6(
            "2001:db8::1",
            "2001:db8::2",
            L4::Icmp6 { ty: 128, code: 0 }
        )),
        Some("echo6")
    );
    assert_eq!(
        fw.hit(&ip6("2001:db8::1", "2001:db8::2", L4::Other(47))),
        Some("gre")
    );
    assert_eq!(
        fw.hit(&udp6("2001:db8::1", "2001:db8::2", 5353, 54)),
        Some("v6")
    );
}

#[test]
fn vlan_tags_single_and_qinq() {
    if !root("vlan_tags_single_and_qinq") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "v100",
            Conditions {
                vlan: Some(100),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "v200-tcp80",
            Conditions {
                vlan: Some(200),
                proto: Some(6),
                dport: port(80),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "v0",
            Conditions {
                vlan: Some(0),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "v4095",
            Conditions {
                vlan: Some(4095),
                ..any()
            },
            Action::Drop,
        )
        .load();
    let t = || tcp4("192.0.2.1", "192.0.2.2", 1234, 80);
    assert_eq!(fw.hit(&t()), None, "untagged");
    assert_eq!(fw.hit(&t().vlan(100)), Some("v100"), "802.1Q");
    assert_eq!(
        fw.hit(&t().tag(0x88a8, 100)),
        Some("v100"),
        "802.1ad single tag"
    );
    assert_eq!(fw.hit(&t().vlan(101)), None);
    assert_eq!(fw.hit(&t().qinq(100, 7)), Some("v100"), "outer tag");
    assert_eq!(fw.hit(&t().qinq(7, 100)), Some("v100"), "inner tag");
    assert_eq!(
        fw.hit(&t().vlan(7).vlan(100)),
        Some("v100"),
        "802.1Q in 802.1Q"
    );
    assert_eq!(fw.hit(&t().qinq(7, 8)), None);
    // L3/L4 behind one and two tags.
    assert_eq!(fw.hit(&t().vlan(200)), Some("v200-tcp80"));
    assert_eq!(fw.hit(&t().qinq(9, 200)), Some("v200-tcp80"));
    assert_eq!(
        fw.hit(&tcp6("2001:db8::1", "2001:db8::2", 1, 80).qinq(200, 9)),
        Some("v200-tcp80")
    );
    assert_eq!(
        fw.hit(&udp4("192.0.2.1", "192.0.2.2", 1234, 80).vlan(200)),
        None
    );
    // Edge ids.
    assert_eq!(fw.hit(&t().vlan(0)), Some("v0"), "priority tag (id 0)");
    assert_eq!(fw.hit(&t().qinq(4095, 5)), Some("v4095"));
    assert_eq!(
        fw.hit(&arp().vlan(100)),
        Some("v100"),
        "tagged ARP matches a vlan-only rule"
    );
    assert_eq!(fw.hit(&arp().qinq(1, 4095)), Some("v4095"));
}

#[test]
fn three_vlan_tags_are_vlan_too_deep() {
    if !root("three_vlan_tags_are_vlan_too_deep") {
        return;
    }
    let fw = Cfg::new()
        .malformed(Verdict::Drop)
        .rule("all", any(), Action::Pass)
        .load();
    let frames = [
        tcp4("192.0.2.1", "192.0.2.2", 1, 2)
            .vlan(1)
            .vlan(2)
            .vlan(3)
            .bytes(),
        tcp4("192.0.2.1", "192.0.2.2", 1, 2)
            .qinq(1, 2)
            .vlan(3)
            .bytes(),
        arp().tag(0x88a8, 1).tag(0x88a8, 2).tag(0x88a8, 3).bytes(),
        tcp6("2001:db8::1", "2001:db8::2", 1, 2)
            .vlan(1)
            .vlan(2)
            .vlan(3)
            .vlan(4)
            .bytes(),
    ];
    let mut bytes = 0;
    for f in &frames {
        let v = fw.run(f);
        assert_eq!(v.malformed, Some(VLAN_TOO_DEEP), "{f:02x?}");
        assert_eq!(v.xdp, XDP_DROP);
        bytes += f.len() as u64;
    }
    let c = fw.malformed_counter(VLAN_TOO_DEEP);
    assert_eq!((c.packets, c.bytes), (frames.len() as u64, bytes));
    assert_eq!(fw.counter("all").packets, 0);
    // Two tags are fine.
    assert_eq!(
        fw.hit(&tcp4("192.0.2.1", "192.0.2.2", 1, 2).qinq(1, 2)),
        Some("all")
    );
}

#[test]
fn ipv4_options_are_skipped() {
    if !root("ipv4_options_are_skipped") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "https",
            Conditions {
                src: addr(&["198.51.100.0/24"]),
                proto: Some(6),
                dport: port(443),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "dns",
            Conditions {
                proto: Some(17),
                sport: port(53),
                ..any()
            },
            Action::Pass,
        )
        .load();
    // NOPs (1) then End of Options (0), padded to a multiple of 4.
    for n in [4usize, 8, 12, 20, 36, 40] {
        let mut o = vec![1u8; n];
        o[n - 1] = 0;
        let t = tcp4("198.51.100.9", "192.0.2.2", 5555, 443).options(&o);
        assert_eq!(fw.hit(&t), Some("https"), "{n} bytes of options");
        let u = udp4("192.0.2.2", "198.51.100.9", 53, 5555).options(&o);
        assert_eq!(fw.hit(&u), Some("dns"), "{n} bytes of options");
        // The port field sits right after the options, not at offset 20.
        assert_eq!(
            fw.hit(&tcp4("198.51.100.9", "192.0.2.2", 5555, 444).options(&o)),
            None
        );
    }
}

#[test]
fn ipv6_extension_headers_are_walked() {
    if !root("ipv6_extension_headers_are_walked") {
        return;
    }
    let fw = l4_rules().load();
    let chains: Vec<Vec<Ext>> = vec![
        vec![Ext::HopByHop(0)],
        vec![Ext::HopByHop(3)],
        vec![Ext::Routing(0)],
        vec![Ext::Routing(2)],
        vec![Ext::DestOpts(1)],
        vec![Ext::Fragment(Frag::First)],
        vec![Ext::Fragment(Frag::None)],
        vec![Ext::Ah(1)],
        vec![Ext::Ah(5)],
        vec![
            Ext::HopByHop(0),
            Ext::DestOpts(0),
            Ext::Routing(1),
            Ext::Fragment(Frag::First),
            Ext::Ah(3),
            Ext::DestOpts(2),
        ],
    ];
    for chain in chains {
        let with = |mut p: Pkt| {
            for e in &chain {
                p = p.ext(*e);
            }
            p
        };
        let s = "2001:db8::1";
        let d = "2001:db8::2";
        assert_eq!(
            fw.hit(&with(tcp6(s, d, 1000, 443))),
            Some("tcp443"),
            "{chain:?}"
        );
        assert_eq!(
            fw.hit(&with(udp6(s, d, 1000, 53))),
            Some("udp53"),
            "{chain:?}"
        );
        assert_eq!(
            fw.hit(&with(ip6(s, d, L4::Sctp { sport: 1, dport: 9 }))),
            Some("sctp9"),
            "{chain:?}"
        );
        assert_eq!(
            fw.hit(&with(ip6(s, d, L4::Icmp6 { ty: 128, code: 0 }))),
            Some("echo6"),
            "{chain:?}"
        );
        assert_eq!(
            fw.hit(&with(ip6(s, d, L4::Other(47)))),
            Some("gre"),
            "{chain:?}"
        );
        // The protocol is the upper layer's, not the last extension's.
        assert_eq!(
            fw.hit(&with(tcp6(s, d, 1000, 444))),
            Some("v6"),
            "{chain:?}"
        );
    }
}

#[test]
fn ipv6_extension_chain_depth() {
    if !root("ipv6_extension_chain_depth") {
        return;
    }
    let fw = l4_rules().malformed(Verdict::Drop).load();
    let kinds = [
        Ext::HopByHop(0),
        Ext::DestOpts(1),
        Ext::Routing(0),
        Ext::Ah(1),
        Ext::DestOpts(0),
        Ext::Routing(1),
        Ext::Fragment(Frag::First),
        Ext::DestOpts(0),
        Ext::Ah(3),
    ];
    let chain = |n: usize| {
        let mut p = tcp6("2001:db8::1", "2001:db8::2", 1000, 443);
        for e in kinds.iter().take(n) {
            p = p.ext(*e);
        }
        p
    };
    for n in 0..=8 {
        assert_eq!(fw.hit(&chain(n)), Some("tcp443"), "{n} extension headers");
    }
    let nine = chain(9).bytes();
    let v = fw.run(&nine);
    assert_eq!(v.malformed, Some(EXT_TOO_DEEP), "9 extension headers");
    assert_eq!(v.xdp, XDP_DROP);
    // Ten, and nine of which the first is hop-by-hop again.
    let mut ten = chain(9).ext(Ext::DestOpts(0));
    assert_eq!(fw.run(&ten.bytes()).malformed, Some(EXT_TOO_DEEP));
    ten = tcp6("2001:db8::1", "2001:db8::2", 1, 443);
    for _ in 0..9 {
        ten = ten.ext(Ext::DestOpts(0));
    }
    assert_eq!(fw.run(&ten.bytes()).malformed, Some(EXT_TOO_DEEP));
    let c = fw.malformed_counter(EXT_TOO_DEEP);
    assert_eq!(c.packets, 3);
    // A non-first fragment ends the walk: what follows is not parsed, so a
    // long chain behind it is not too deep.
    let mut nf = tcp6("2001:db8::1", "2001:db8::2", 1000, 443)
        .ext(Ext::HopByHop(0))
        .ext(Ext::Fragment(Frag::NonFirst(10)));
    for _ in 0..8 {
        nf = nf.ext(Ext::DestOpts(0));
    }
    let v = fw.run(&nf.bytes());
    assert_eq!(v.malformed, None, "non-first fragment stops the walk");
    assert_eq!(
        v.rule.map(|r| fw.cfg.rules[r as usize].name.as_str()),
        Some("v6")
    );
}

/// Shapes for the truncation sweep: every parse path, with the rule that
/// decides the whole frame.
fn shapes() -> Vec<Pkt> {
    let s6 = "2001:db8::1";
    let d6 = "2001:db8::2";
    let mut opts = vec![1u8; 12];
    opts[11] = 0;
    let mut nine = tcp6(s6, d6, 1, 443);
    for _ in 0..9 {
        nine = nine.ext(Ext::DestOpts(0));
    }
    vec![
        tcp4("192.0.2.1", "192.0.2.2", 1, 443).payload(10),
        udp4("192.0.2.1", "192.0.2.2", 1, 53).payload(3),
        ip4("192.0.2.1", "192.0.2.2", L4::Sctp { sport: 1, dport: 9 }),
        ip4("192.0.2.1", "192.0.2.2", L4::Icmp { ty: 8, code: 0 }).payload(8),
        ip4("192.0.2.1", "192.0.2.2", L4::Icmp6 { ty: 128, code: 0 }).payload(8),
        ip4("192.0.2.1", "192.0.2.2", L4::Other(47)).payload(8),
        tcp4("192.0.2.1", "192.0.2.2", 1, 443).options(&opts),
        tcp4("192.0.2.1", "192.0.2.2", 1, 443).frag(Frag::First),
        tcp4("192.0.2.1", "192.0.2.2", 1, 443).frag(Frag::NonFirst(100)),
        tcp4("192.0.2.1", "192.0.2.2", 1, 443).vlan(5),
        udp4("192.0.2.1", "192.0.2.2", 1, 53).qinq(5, 6),
        tcp4("192.0.2.1", "192.0.2.2", 1, 443)
            .vlan(1)
            .vlan(2)
            .vlan(3),
        tcp6(s6, d6, 1, 443).payload(4),
        udp6(s6, d6, 1, 53),
        ip6(s6, d6, L4::Icmp6 { ty: 128, code: 0 }),
        ip6(s6, d6, L4::Icmp { ty: 8, code: 0 }),
        ip6(s6, d6, L4::Sctp { sport: 1, dport: 9 }).qinq(7, 8),
        tcp6(s6, d6, 1, 443)
            .ext(Ext::HopByHop(1))
            .ext(Ext::Routing(0))
            .ext(Ext::DestOpts(0))
            .ext(Ext::Fragment(Frag::First))
            .ext(Ext::Ah(3)),
        udp6(s6, d6, 1, 53)
            .ext(Ext::HopByHop(0))
            .ext(Ext::Fragment(Frag::NonFirst(3)))
            .payload(16),
        nine,
        arp(),
        arp().vlan(9),
        Pkt {
            vlans: vec![],
            net: Net::Raw(0x88cc, vec![0x02, 0x07, 0x04, 0, 0, 0, 0, 0, 1]),
            payload: 0,
        },
    ]
}

#[test]
fn truncated_at_every_length() {
    if !root("truncated_at_every_length") {
        return;
    }
    let fw = l4_rules().malformed(Verdict::Drop).load();
    let mut want = [(0u64, 0u64); 4];
    let mut runs = 0;
    for p in shapes() {
        let full = p.bytes();
        let whole = fw.run(&full);
        assert_eq!(
            whole.malformed,
            p.expect_at(full.len()).err(),
            "whole frame {p:?}"
        );
        if let Some(reason) = whole.malformed {
            want[reason as usize].0 += 1;
            want[reason as usize].1 += full.len() as u64;
        }
        for len in 14..=full.len() {
            let v = fw.run(&full[..len]);
            runs += 1;
            match p.expect_at(len) {
                Err(reason) => {
                    assert_eq!(
                        v.malformed,
                        Some(reason),
                        "cut at {len}/{}: {p:?}",
                        full.len()
                    );
                    want[reason as usize].0 += 1;
                    want[reason as usize].1 += len as u64;
                }
                Ok(()) => {
                    // All the headers rules need are there: same decision
                    // as for the whole frame.
                    assert_eq!(v.malformed, None, "cut at {len}/{}: {p:?}", full.len());
                    assert_eq!(v.rule, whole.rule, "cut at {len}/{}: {p:?}", full.len());
                }
            }
        }
    }
    let s = fw.stats();
    for (i, (name, c)) in s.malformed.iter().enumerate() {
        assert_eq!((c.packets, c.bytes), want[i], "malformed counter {name}");
    }
    assert!(
        want[TRUNCATED as usize].0 > 300 && runs > 800,
        "sweep too small: {want:?}, {runs} runs"
    );
}

#[test]
fn too_short_for_the_kernel_is_refused_not_crashed() {
    if !root("too_short_for_the_kernel_is_refused_not_crashed") {
        return;
    }
    let fw = l4_rules().load();
    let full = tcp4("192.0.2.1", "192.0.2.2", 1, 443).bytes();
    for len in 0..xdpwall_dataplane::testrun::MIN_FRAME {
        assert!(
            fw.inst.test_run(&full[..len]).is_err(),
            "{len}-byte frame accepted by the kernel"
        );
    }
    // 14 bytes: an Ethernet header announcing IPv4 and nothing else.
    assert_eq!(fw.malformed(&full[..14]), Some(TRUNCATED));
}

/// Offsets in an untagged IPv4/TCP frame.
const IP4: usize = 14;
const TCP4: usize = 14 + 20;
const IP6: usize = 14;
const TCP6: usize = 14 + 40;

#[test]
fn bad_headers() {
    if !root("bad_headers") {
        return;
    }
    let fw = Cfg::new()
        .malformed(Verdict::Drop)
        .rule("all", any(), Action::Pass)
        .load();
    let t4 = tcp4("192.0.2.1", "192.0.2.2", 1, 443).payload(20).bytes();
    let t6 = tcp6("2001:db8::1", "2001:db8::2", 1, 443)
        .payload(20)
        .bytes();
    let with = |base: &[u8], at: usize, b: u8| {
        let mut f = base.to_vec();
        f[at] = b;
        f
    };
    let mut n = 0;
    let mut bad = |frame: Vec<u8>, why: &str| {
        assert_eq!(fw.malformed(&frame), Some(BAD_HEADER), "{why}");
        n += 1;
    };
    // Byte 0 of the IPv4 header is version (high nibble) and IHL (low nibble).
    bad(with(&t4, IP4, 0x55), "IPv4 version 5");
    bad(with(&t4, IP4, 0x65), "IPv4 version 6 in an IPv4 ethertype");
    bad(with(&t4, IP4, 0x05), "IPv4 version 0");
    bad(with(&t4, IP4, 0x44), "IPv4 IHL 4 (< 5)");
    bad(with(&t4, IP4, 0x40), "IPv4 IHL 0");
    // The same over UDP: nothing after the IP header would reject the frame
    // for another reason (TCP's data offset did, hiding an IHL check off by
    // one; found by scripts/mutation-check.sh, mutant 4).
    let u4 = udp4("192.0.2.1", "192.0.2.2", 1, 53).payload(20).bytes();
    bad(with(&u4, IP4, 0x44), "IPv4 IHL 4 (< 5) over UDP");
    // Byte 0 of the IPv6 header: version in the high nibble.
    bad(with(&t6, IP6, 0x40), "IPv6 ethertype, version 4");
    bad(with(&t6, IP6, 0x00), "IPv6 version 0");
    // TCP byte 12: data offset in the high nibble.
    bad(with(&t4, TCP4 + 12, 0x40), "TCP data offset 4 (IPv4)");
    bad(with(&t4, TCP4 + 12, 0x00), "TCP data offset 0 (IPv4)");
    bad(with(&t6, TCP6 + 12, 0x10), "TCP data offset 1 (IPv6)");
    assert_eq!(fw.malformed_counter(BAD_HEADER).packets, n);

    // IHL 15 (60-byte header) in a frame that holds only 20 + 40 bytes
    // after Ethernet: the header is cut, so truncated.
    let short = tcp4("192.0.2.1", "192.0.2.2", 1, 443).payload(20).bytes();
    assert_eq!(
        fw.malformed(&with(&short, IP4, 0x4f)[..IP4 + 50]),
        Some(TRUNCATED)
    );
    // A non-first fragment's payload is not a TCP header: doff 0 there is fine.
    let nf = tcp4("192.0.2.1", "192.0.2.2", 1, 443)
        .frag(Frag::NonFirst(8))
        .bytes();
    assert_eq!(fw.run(&with(&nf, TCP4 + 12, 0)).malformed, None);
}

#[test]
fn garbage_never_crashes_and_is_always_accounted() {
    if !root("garbage_never_crashes_and_is_always_accounted") {
        return;
    }
    let fw = Cfg::new()
        .malformed(Verdict::Drop)
        .rule("c", any(), Action::Count)
        .rule(
            "tcp",
            Conditions {
                proto: Some(6),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "v10",
            Conditions {
                vlan: Some(10),
                ..any()
            },
            Action::Pass,
        )
        .load();
    let mut rng = Rng::new(0x5eed);
    let types: [u16; 6] = [0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, 0x1234];
    let n = 3000u64;
    let mut bytes = 0;
    for i in 0..n {
        let len = 14 + rng.below(200) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 3 != 0 {
            // Make the garbage reach the IP/VLAN parsers most of the time.
            f[12..14].copy_from_slice(&rng.pick(&types).to_be_bytes());
            if len > 18 && rng.chance(50) {
                f[16..18].copy_from_slice(&rng.pick(&types).to_be_bytes());
            }
            if len > 14 && rng.chance(50) {
                f[14] = *rng.pick(&[0x45u8, 0x46, 0x4f, 0x60]);
            }
        }
        bytes += len as u64;
        fw.run(&f);
    }
    // Every frame is counted exactly once: by a terminal rule, the default
    // or a malformed reason (the `count` rule sees every non-malformed one).
    let s = fw.stats();
    let rules: u64 = s
        .rules
        .iter()
        .filter(|r| r.action != "count")
        .map(|r| r.counter.packets)
        .sum();
    let malformed: u64 = s.malformed.iter().map(|(_, c)| c.packets).sum();
    assert_eq!(rules + s.default.packets + malformed, n);
    assert_eq!(s.rules[0].counter.packets, n - malformed);
    let all_bytes: u64 = s
        .rules
        .iter()
        .filter(|r| r.action != "count")
        .map(|r| r.counter.bytes)
        .sum::<u64>()
        + s.default.bytes
        + s.malformed.iter().map(|(_, c)| c.bytes).sum::<u64>();
    assert_eq!(all_bytes, bytes);
    assert!(malformed > 0 && s.default.packets > 0, "{s:?}");
}

#[test]
fn non_ip_frames_are_not_malformed() {
    if !root("non_ip_frames_are_not_malformed") {
        return;
    }
    // Rules with any L3/L4 condition must not match ARP/LLDP; a vlan-only
    // rule and a rule without conditions can.
    let fw = Cfg::new()
        .default_action(Verdict::Drop)
        .rule(
            "src-not10",
            Conditions {
                src: addr(&["!10.0.0.0/8"]),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "dst-not-v6",
            Conditions {
                dst: addr(&["!2001:db8::/32"]),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "proto",
            Conditions {
                proto: Some(0),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "ports",
            Conditions {
                dport: ports(&[(0, 65535)]),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "flags",
            Conditions {
                tcp_flags: flags(0, SYN),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "icmp",
            Conditions {
                icmp_code: Some(0),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "fam4",
            Conditions {
                family: Some(Family::Ipv4),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "fam6",
            Conditions {
                family: Some(Family::Ipv6),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "frag-any",
            Conditions {
                fragment: Some(xdpwall_rules::FragMatch::Any),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "vlan7",
            Conditions {
                vlan: Some(7),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "vlan8-v4",
            Conditions {
                vlan: Some(8),
                family: Some(Family::Ipv4),
                ..any()
            },
            Action::Pass,
        )
        .load();
    let lldp = Pkt {
        vlans: vec![],
        net: Net::Raw(0x88cc, vec![0x02, 0x07, 0x04, 0, 0, 0, 0, 0, 1]),
        payload: 30,
    };
    for p in [
        arp(),
        arp().vlan(5),
        lldp.clone(),
        arp().vlan(8),
        arp().qinq(8, 9),
    ] {
        let v = fw.verdict(&p);
        assert_eq!(
            (v.malformed, v.rule, v.xdp),
            (None, None, XDP_DROP),
            "{p:?}"
        );
    }
    assert_eq!(fw.hit(&arp().vlan(7)), Some("vlan7"));
    assert_eq!(fw.hit(&lldp.qinq(1, 7)), Some("vlan7"));
    assert_eq!(fw.stats().default.packets, 5);
    for (_, c) in fw.stats().malformed {
        assert_eq!(c.packets, 0);
    }
    // And the same rules do see IP traffic.
    assert_eq!(
        fw.hit(&tcp4("11.0.0.1", "192.0.2.1", 1, 2)),
        Some("src-not10")
    );
    assert_eq!(
        fw.hit(&tcp4("10.0.0.1", "192.0.2.1", 1, 2)),
        Some("dst-not-v6")
    );
}

#[test]
fn jumbo_multi_buffer_frame() {
    if !root("jumbo_multi_buffer_frame") {
        return;
    }
    // Larger than a page: BPF_PROG_TEST_RUN puts the tail in XDP frags; the
    // headers are in the first buffer and bytes count the whole frame.
    let fw = l4_rules().load();
    let p = udp4("192.0.2.1", "192.0.2.2", 1, 53).payload(9000 - 42);
    let f = p.bytes();
    assert_eq!(f.len(), 9000);
    assert_eq!(fw.hit(&p), Some("udp53"));
    let c = fw.counter("udp53");
    assert_eq!((c.packets, c.bytes), (1, 9000));
}

/// The way kernels before 6.2 take (no bpf_cast_to_kern_ctx): every
/// frame's length from the helper. It loads, and counts a linear frame and
/// a multi-buffer one as the kfunc's way does.
#[test]
fn frame_length_through_the_helper() {
    if !root("frame_length_through_the_helper") {
        return;
    }
    let fw = l4_rules().load_helper_len();
    let small = udp4("192.0.2.1", "192.0.2.2", 1, 53).payload(100);
    let jumbo = udp4("192.0.2.1", "192.0.2.2", 1, 53).payload(9000 - 42);
    assert_eq!(fw.hit(&small), Some("udp53"));
    assert_eq!(fw.hit(&jumbo), Some("udp53"));
    let c = fw.counter("udp53");
    assert_eq!((c.packets, c.bytes), (2, 142 + 9000));
}

#[test]
fn fixture_encodings() {
    // No root needed: the packet builder itself, byte by byte where the
    // data plane depends on a layout (and etherparse 0.19 gets one wrong).
    let nf = udp6("::1", "::2", 1, 2)
        .ext(Ext::Fragment(Frag::NonFirst(0x1abc)))
        .bytes();
    let h = 14 + 40;
    assert_eq!(nf[14 + 6], 44, "next header: fragment");
    assert_eq!(nf[h], 17, "fragment header's next header: UDP");
    assert_eq!(
        u16::from_be_bytes([nf[h + 2], nf[h + 3]]),
        0x1abc << 3 | 1,
        "offset << 3 | M"
    );
    let first = udp6("::1", "::2", 1, 2)
        .ext(Ext::Fragment(Frag::First))
        .bytes();
    assert_eq!(u16::from_be_bytes([first[h + 2], first[h + 3]]), 1);
    let atomic = udp6("::1", "::2", 1, 2)
        .ext(Ext::Fragment(Frag::None))
        .bytes();
    assert_eq!(u16::from_be_bytes([atomic[h + 2], atomic[h + 3]]), 0);
    let v4 = udp4("1.1.1.1", "2.2.2.2", 1, 2)
        .frag(Frag::NonFirst(0x123))
        .bytes();
    assert_eq!(
        u16::from_be_bytes([v4[14 + 6], v4[14 + 7]]),
        0x2000 | 0x123,
        "IPv4: MF | offset"
    );
    let t = tcp4("1.1.1.1", "2.2.2.2", 0x1234, 0xfffe)
        .flags(SYN | ECE)
        .bytes();
    assert_eq!(&t[34..38], &[0x12, 0x34, 0xff, 0xfe]);
    assert_eq!(t[34 + 12] >> 4, 5, "TCP data offset");
    assert_eq!(t[34 + 13], SYN | ECE, "TCP flags byte");
    let ah = tcp6("::1", "::2", 1, 2).ext(Ext::Ah(3)).bytes();
    assert_eq!(ah[h + 1], 3 + 1, "AH length: 4-byte words minus 2");
    let hbh = tcp6("::1", "::2", 1, 2).ext(Ext::HopByHop(2)).bytes();
    assert_eq!(hbh[h + 1], 2, "hop-by-hop length: 8-byte units minus 1");
    let q = arp().qinq(0x123, 0x456).bytes();
    assert_eq!(
        &q[12..22],
        &[0x88, 0xa8, 0x01, 0x23, 0x81, 0x00, 0x04, 0x56, 0x08, 0x06]
    );
    let i = ip4("1.1.1.1", "2.2.2.2", L4::Icmp { ty: 3, code: 4 }).bytes();
    assert_eq!((i[14 + 9], i[34], i[35]), (1, 3, 4));
}
