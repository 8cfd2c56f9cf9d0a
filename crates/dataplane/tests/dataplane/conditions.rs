//! Rule conditions and first-match semantics (DESIGN.md "Rule model").
//! Besides the explicit expectations, every packet is also checked against
//! the reference matcher (`Fw::check`).

use xdpwall_rules::{Action, Conditions, Family, FragMatch, Verdict};

use super::fixtures::*;

#[test]
fn addresses_cidr_lists_and_exclusions() {
    if !root("addresses_cidr_lists_and_exclusions") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "a",
            Conditions {
                src: addr(&["10.0.0.0/8", "192.168.1.0/24", "!10.1.0.0/16", "!10.2.3.4"]),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "b",
            Conditions {
                dst: addr(&["2001:db8::/32", "!2001:db8:bad::/48"]),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "c",
            Conditions {
                src: addr(&["!172.16.0.0/12"]),
                dst: addr(&["198.51.100.0/24"]),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "host6",
            Conditions {
                src: addr(&["2001:db8:1::7"]),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "not10",
            Conditions {
                src: addr(&["!10.0.0.0/8"]),
                ..any()
            },
            Action::Count,
        )
        .rule(
            "not10-term",
            Conditions {
                src: addr(&["!10.0.0.0/8"]),
                dst: addr(&["!0.0.0.0/0"]),
                ..any()
            },
            Action::Drop,
        )
        .load();
    let h = |s: &str, d: &str| {
        let p = if s.contains(':') {
            udp6(s, d, 1, 2)
        } else {
            udp4(s, d, 1, 2)
        };
        fw.check(&p).map(str::to_owned)
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(h("10.9.9.9", "192.0.2.1"), some("a"));
    assert_eq!(h("10.0.0.0", "192.0.2.1"), some("a"), "network address");
    assert_eq!(
        h("10.255.255.255", "192.0.2.1"),
        some("a"),
        "broadcast address"
    );
    assert_eq!(h("192.168.1.77", "192.0.2.1"), some("a"));
    assert_eq!(
        h("10.1.2.3", "198.51.100.1"),
        some("c"),
        "excluded /16 falls through"
    );
    assert_eq!(h("10.2.3.4", "192.0.2.1"), None, "excluded host");
    assert_eq!(
        h("10.2.3.5", "192.0.2.1"),
        some("a"),
        "neighbour of excluded host"
    );
    assert_eq!(h("192.168.2.1", "198.51.100.200"), some("c"));
    assert_eq!(h("172.16.0.1", "198.51.100.1"), None, "excluded by c");
    assert_eq!(h("172.32.0.1", "198.51.100.1"), some("c"));
    assert_eq!(h("2001:db8:1::7", "2001:db8:5::1"), some("b"));
    assert_eq!(
        h("2001:db8:1::7", "2001:db8:bad::1"),
        some("host6"),
        "excluded /48"
    );
    assert_eq!(h("2001:db8:1::8", "2001:db8:bad::1"), some("not10-term"));
    // `!10.0.0.0/8` alone also matches IPv6 sources ...
    assert_eq!(h("2001:db8:ffff::1", "2001:db9::1"), some("not10-term"));
    // ... and `!0.0.0.0/0` alone matches every IPv6 destination but no IPv4 one.
    assert_eq!(h("11.0.0.1", "192.0.2.1"), None);
    assert_eq!(h("11.0.0.1", "198.51.100.1"), some("c"));
    let s = fw.stats();
    let not10 = s
        .rules
        .iter()
        .find(|r| r.name == "not10")
        .expect("not10")
        .counter
        .packets;
    // 172.16.0.1, 2001:db8:1::8, 2001:db8:ffff::1, 11.0.0.1 -> 192.0.2.1:
    // not in 10/8 and no terminal rule before `not10` matched.
    assert_eq!(not10, 4, "count rule evaluated before the winner");
}

#[test]
fn sets_and_negated_sets() {
    if !root("sets_and_negated_sets") {
        return;
    }
    let fw = Cfg::new()
        .set(
            "block",
            &["203.0.113.0/24", "2001:db8:dead::/48", "198.51.100.7"],
        )
        .set("admins", &["192.0.2.10", "2001:db8:1::/64"])
        .set("inner", &["203.0.113.128/25"])
        .rule(
            "blk",
            Conditions {
                src: addr(&["@block", "!@inner"]),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "adm",
            Conditions {
                src: addr(&["@admins"]),
                proto: Some(6),
                dport: port(22),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "ssh",
            Conditions {
                proto: Some(6),
                dport: port(22),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "to-nonadmin",
            Conditions {
                dst: addr(&["!@admins"]),
                src: addr(&["@inner", "@admins"]),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "blk-dst",
            Conditions {
                dst: addr(&["@block"]),
                ..any()
            },
            Action::Pass,
        )
        .load();
    let cases: &[(&str, &str, u16, Option<&str>)] = &[
        ("203.0.113.5", "192.0.2.1", 80, Some("blk")),
        ("198.51.100.7", "192.0.2.1", 22, Some("blk")),
        ("198.51.100.8", "192.0.2.1", 22, Some("ssh")),
        ("203.0.113.200", "192.0.2.1", 80, Some("to-nonadmin")),
        ("203.0.113.200", "192.0.2.10", 80, None),
        ("192.0.2.10", "192.0.2.1", 22, Some("adm")),
        ("192.0.2.11", "192.0.2.1", 22, Some("ssh")),
        ("192.0.2.10", "192.0.2.1", 80, Some("to-nonadmin")),
        ("192.0.2.11", "203.0.113.9", 80, Some("blk-dst")),
        ("2001:db8:dead::1", "2001:db8::1", 22, Some("blk")),
        ("2001:db8:1::99", "2001:db8::1", 22, Some("adm")),
        ("2001:db8:1::99", "2001:db8:1::1", 80, None),
        ("2001:db8:2::99", "2001:db8:1::1", 22, Some("ssh")),
        ("2001:db8:2::99", "2001:db8:dead:1::1", 80, Some("blk-dst")),
    ];
    for &(s, d, dport, want) in cases {
        let p = if s.contains(':') {
            tcp6(s, d, 5000, dport)
        } else {
            tcp4(s, d, 5000, dport)
        };
        assert_eq!(fw.check(&p), want, "{s} -> {d}:{dport}");
    }
}

#[test]
fn nested_prefixes() {
    if !root("nested_prefixes") {
        return;
    }
    // A plain /24 inside an excluded /16 stays excluded ("in no ! entry").
    let fw = Cfg::new()
        .rule(
            "r1",
            Conditions {
                src: addr(&["10.0.0.0/8", "!10.1.0.0/16", "10.1.2.0/24"]),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "r2",
            Conditions {
                src: addr(&["10.1.0.0/16", "!10.1.2.128/25"]),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "r3",
            Conditions {
                src: addr(&["10.1.2.0/24"]),
                dst: addr(&["0.0.0.0/0"]),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "r4",
            Conditions {
                src: addr(&["0.0.0.0/1", "!10.0.0.0/7"]),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "r6",
            Conditions {
                src: addr(&["::/0", "!2001:db8::/32", "2001:db8:1::/48"]),
                ..any()
            },
            Action::Drop,
        )
        .load();
    assert_eq!(fw.hit(&udp4("10.1.2.1", "1.1.1.1", 1, 2)), Some("r2"));
    assert_eq!(fw.hit(&udp4("10.1.2.200", "1.1.1.1", 1, 2)), Some("r3"));
    assert_eq!(fw.hit(&udp4("10.200.0.1", "1.1.1.1", 1, 2)), Some("r1"));
    assert_eq!(
        fw.hit(&udp4("11.0.0.1", "1.1.1.1", 1, 2)),
        None,
        "in !10.0.0.0/7"
    );
    assert_eq!(fw.hit(&udp4("12.0.0.1", "1.1.1.1", 1, 2)), Some("r4"));
    assert_eq!(fw.hit(&udp4("128.0.0.1", "1.1.1.1", 1, 2)), None);
    assert_eq!(fw.hit(&udp6("2001:db8:1::1", "::1", 1, 2)), None);
    assert_eq!(fw.hit(&udp6("2001:db9::1", "::1", 1, 2)), Some("r6"));
    let mut rng = Rng::new(7);
    let bases = [
        "10.0.0.0",
        "10.1.0.0",
        "10.1.2.0",
        "10.1.2.128",
        "11.0.0.0",
        "127.255.255.0",
        "128.0.0.0",
    ];
    for _ in 0..200 {
        let b: std::net::Ipv4Addr = rng.pick(&bases).parse().expect("ip");
        let a = std::net::Ipv4Addr::from(u32::from(b).wrapping_add(rng.below(300) as u32));
        fw.check(&udp4(&a.to_string(), "1.1.1.1", 1, 2));
    }
}

#[test]
fn protocols() {
    if !root("protocols") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "gre",
            Conditions {
                proto: Some(47),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "p253",
            Conditions {
                proto: Some(253),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "p0",
            Conditions {
                proto: Some(0),
                family: Some(Family::Ipv4),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "p255",
            Conditions {
                proto: Some(255),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "udp",
            Conditions {
                proto: Some(17),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "icmp",
            Conditions {
                proto: Some(1),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "icmpv6",
            Conditions {
                proto: Some(58),
                ..any()
            },
            Action::Drop,
        )
        .load();
    for v6 in [false, true] {
        let p = |l4| {
            if v6 {
                ip6("2001:db8::1", "2001:db8::2", l4)
            } else {
                ip4("192.0.2.1", "192.0.2.2", l4)
            }
        };
        assert_eq!(fw.hit(&p(L4::Other(47))), Some("gre"));
        assert_eq!(fw.hit(&p(L4::Other(253))), Some("p253"));
        assert_eq!(fw.hit(&p(L4::Other(255))), Some("p255"));
        assert_eq!(fw.hit(&p(L4::Udp { sport: 1, dport: 2 })), Some("udp"));
        assert_eq!(fw.hit(&p(L4::Icmp { ty: 8, code: 0 })), Some("icmp"));
        assert_eq!(fw.hit(&p(L4::Icmp6 { ty: 128, code: 0 })), Some("icmpv6"));
        assert_eq!(
            fw.hit(&p(L4::Tcp {
                sport: 1,
                dport: 2,
                flags: SYN
            })),
            None
        );
        assert_eq!(
            fw.hit(&p(L4::Other(4))),
            None,
            "IP-in-IP: the tunnel's protocol"
        );
        // Protocol 0 in IPv6 is a hop-by-hop header, not an upper layer.
        if !v6 {
            assert_eq!(fw.hit(&p(L4::Other(0))), Some("p0"));
        }
    }
}

#[test]
fn ports_single_ranges_lists_and_edges() {
    if !root("ports_single_ranges_lists_and_edges") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "udp0",
            Conditions {
                proto: Some(17),
                dport: port(0),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "max",
            Conditions {
                dport: port(65535),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "range",
            Conditions {
                proto: Some(6),
                dport: ports(&[(1000, 2000)]),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "list",
            Conditions {
                dport: ports(&[(22, 22), (80, 80), (8000, 8080)]),
                sport: ports(&[(1024, 65535)]),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "sport0",
            Conditions {
                sport: port(0),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "sctp-all",
            Conditions {
                proto: Some(132),
                dport: ports(&[(0, 65535)]),
                ..any()
            },
            Action::Pass,
        )
        .load();
    let dports = [
        0u16, 1, 21, 22, 23, 79, 80, 81, 999, 1000, 1001, 1500, 1999, 2000, 2001, 7999, 8000, 8080,
        8081, 65534, 65535,
    ];
    let sports = [0u16, 1, 1023, 1024, 40000, 65535];
    let mut n = 0;
    for v6 in [false, true] {
        for &d in &dports {
            for &s in &sports {
                for l4 in [
                    L4::Tcp {
                        sport: s,
                        dport: d,
                        flags: ACK,
                    },
                    L4::Udp { sport: s, dport: d },
                    L4::Sctp { sport: s, dport: d },
                    L4::Icmp { ty: 8, code: 0 },
                    L4::Other(47),
                ] {
                    let p = if v6 {
                        ip6("2001:db8::1", "2001:db8::2", l4)
                    } else {
                        ip4("192.0.2.1", "192.0.2.2", l4)
                    };
                    fw.check(&p);
                    n += 1;
                }
            }
        }
    }
    assert!(n > 1000);
    let t = |s, d| tcp4("192.0.2.1", "192.0.2.2", s, d);
    assert_eq!(fw.hit(&t(5000, 0)), None, "port 0 rule is UDP-only");
    assert_eq!(
        fw.hit(&udp4("192.0.2.1", "192.0.2.2", 5000, 0)),
        Some("udp0")
    );
    assert_eq!(fw.hit(&t(5000, 65535)), Some("max"));
    assert_eq!(
        fw.hit(&ip6(
            "::1",
            "::2",
            L4::Sctp {
                sport: 9,
                dport: 65535
            }
        )),
        Some("max"),
        "SCTP without proto"
    );
    assert_eq!(
        fw.hit(&udp6("::1", "::2", 9, 65535)),
        Some("max"),
        "UDP without proto"
    );
    assert_eq!(fw.hit(&t(5000, 999)), None);
    assert_eq!(fw.hit(&t(5000, 1000)), Some("range"));
    assert_eq!(fw.hit(&t(5000, 2000)), Some("range"));
    assert_eq!(fw.hit(&t(5000, 2001)), None);
    assert_eq!(fw.hit(&t(1023, 22)), None, "sport below 1024");
    assert_eq!(fw.hit(&t(1024, 8080)), Some("list"));
    assert_eq!(fw.hit(&t(0, 8081)), Some("sport0"));
    assert_eq!(
        fw.hit(&ip4("1.1.1.1", "2.2.2.2", L4::Icmp { ty: 0, code: 0 })),
        None,
        "ICMP has no ports"
    );
    assert_eq!(
        fw.hit(&ip4("1.1.1.1", "2.2.2.2", L4::Other(47))),
        None,
        "GRE has no ports"
    );
}

#[test]
fn tcp_flags_set_and_cleared() {
    if !root("tcp_flags_set_and_cleared") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "syn-only",
            Conditions {
                tcp_flags: flags(SYN, ACK),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "finack",
            Conditions {
                proto: Some(6),
                tcp_flags: flags(FIN | ACK, 0),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "xmas",
            Conditions {
                tcp_flags: flags(FIN | PSH | URG, 0),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "ecn",
            Conditions {
                tcp_flags: flags(ECE | CWR, RST),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "no-rst",
            Conditions {
                tcp_flags: flags(0, RST),
                dport: port(80),
                ..any()
            },
            Action::Drop,
        )
        .load();
    for f in 0..=255u8 {
        fw.check(&tcp4("192.0.2.1", "192.0.2.2", 1, 80).flags(f));
        fw.check(&tcp6("2001:db8::1", "2001:db8::2", 1, 81).flags(f));
    }
    let t = |f| tcp4("192.0.2.1", "192.0.2.2", 1, 80).flags(f);
    assert_eq!(fw.hit(&t(SYN)), Some("syn-only"));
    assert_eq!(fw.hit(&t(SYN | ECE | CWR)), Some("syn-only"));
    assert_eq!(fw.hit(&t(SYN | ACK)), Some("no-rst"));
    assert_eq!(fw.hit(&t(FIN | ACK | PSH)), Some("finack"));
    assert_eq!(fw.hit(&t(FIN | PSH | URG)), Some("xmas"));
    assert_eq!(fw.hit(&t(ECE | CWR | RST)), None);
    assert_eq!(fw.hit(&t(RST)), None);
    // Flags conditions need a TCP header: never UDP, nor a non-first fragment.
    assert_eq!(fw.hit(&udp4("192.0.2.1", "192.0.2.2", 1, 80)), None);
    assert_eq!(fw.hit(&t(SYN).frag(Frag::NonFirst(1))), None);
    assert_eq!(fw.hit(&t(SYN).frag(Frag::First)), Some("syn-only"));
}

#[test]
fn icmp_type_and_code_by_family() {
    if !root("icmp_type_and_code_by_family") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "echo4",
            Conditions {
                proto: Some(1),
                icmp_type: Some(8),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "port-unreach",
            Conditions {
                icmp_type: Some(3),
                icmp_code: Some(3),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "code4",
            Conditions {
                icmp_code: Some(4),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "echo6",
            Conditions {
                proto: Some(58),
                icmp_type: Some(128),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "t128",
            Conditions {
                icmp_type: Some(128),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "t255c255",
            Conditions {
                icmp_type: Some(255),
                icmp_code: Some(255),
                ..any()
            },
            Action::Drop,
        )
        .load();
    let i4 = |ty, code| ip4("192.0.2.1", "192.0.2.2", L4::Icmp { ty, code });
    let i6 = |ty, code| ip6("2001:db8::1", "2001:db8::2", L4::Icmp6 { ty, code });
    assert_eq!(fw.hit(&i4(8, 0)), Some("echo4"));
    assert_eq!(fw.hit(&i4(3, 3)), Some("port-unreach"));
    assert_eq!(fw.hit(&i4(3, 1)), None);
    assert_eq!(fw.hit(&i4(5, 4)), Some("code4"));
    assert_eq!(fw.hit(&i4(128, 0)), Some("t128"), "ICMP type 128 in IPv4");
    assert_eq!(fw.hit(&i4(255, 255)), Some("t255c255"));
    assert_eq!(fw.hit(&i6(128, 0)), Some("echo6"));
    assert_eq!(fw.hit(&i6(8, 0)), None, "ICMPv6 type 8 is not echo4");
    assert_eq!(fw.hit(&i6(1, 4)), Some("code4"));
    assert_eq!(fw.hit(&i6(3, 3)), Some("port-unreach"));
    // ICMP in IPv6 and ICMPv6 in IPv4: the header does not follow the family.
    assert_eq!(
        fw.hit(&ip6(
            "2001:db8::1",
            "2001:db8::2",
            L4::Icmp { ty: 3, code: 3 }
        )),
        None
    );
    assert_eq!(
        fw.hit(&ip4(
            "192.0.2.1",
            "192.0.2.2",
            L4::Icmp6 { ty: 128, code: 0 }
        )),
        None
    );
    assert_eq!(
        fw.hit(&i4(8, 0).frag(Frag::NonFirst(2))),
        None,
        "non-first fragment"
    );
    for ty in [0u8, 3, 8, 128, 255] {
        for code in [0u8, 3, 4, 255] {
            fw.check(&i4(ty, code));
            fw.check(&i6(ty, code));
            fw.check(&i6(ty, code).ext(Ext::Fragment(Frag::First)));
        }
    }
}

#[test]
fn family() {
    if !root("family") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "v6",
            Conditions {
                family: Some(Family::Ipv6),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "v4-udp",
            Conditions {
                family: Some(Family::Ipv4),
                proto: Some(17),
                ..any()
            },
            Action::Pass,
        )
        .load();
    assert_eq!(
        fw.hit(&tcp6("2001:db8::1", "2001:db8::2", 1, 2)),
        Some("v6")
    );
    assert_eq!(
        fw.hit(&udp6("2001:db8::1", "2001:db8::2", 1, 2)),
        Some("v6")
    );
    assert_eq!(
        fw.hit(&udp4("192.0.2.1", "192.0.2.2", 1, 2)),
        Some("v4-udp")
    );
    assert_eq!(fw.hit(&tcp4("192.0.2.1", "192.0.2.2", 1, 2)), None);
    assert_eq!(fw.hit(&arp()), None);
}

#[test]
fn fragments() {
    if !root("fragments") {
        return;
    }
    // Rules that need L4 fields cannot match non-first fragments; others can.
    let fw = Cfg::new()
        .rule(
            "port80",
            Conditions {
                proto: Some(6),
                dport: port(80),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "syn",
            Conditions {
                tcp_flags: flags(SYN, 0),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "echo",
            Conditions {
                icmp_type: Some(8),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "src-nonfirst",
            Conditions {
                src: addr(&["10.9.0.0/16", "2001:db8:9::/48"]),
                fragment: Some(FragMatch::NonFirst),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "udp-first",
            Conditions {
                proto: Some(17),
                fragment: Some(FragMatch::First),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "nonfirst",
            Conditions {
                fragment: Some(FragMatch::NonFirst),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "any",
            Conditions {
                fragment: Some(FragMatch::Any),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "none",
            Conditions {
                fragment: Some(FragMatch::None),
                ..any()
            },
            Action::Drop,
        )
        .load();
    let mut n = 0;
    for src in ["10.9.1.1", "10.8.1.1", "2001:db8:9::1", "2001:db8:8::1"] {
        let v6 = src.contains(':');
        let dst = if v6 { "2001:db8::2" } else { "192.0.2.2" };
        for l4 in [
            L4::Tcp {
                sport: 1,
                dport: 80,
                flags: SYN,
            },
            L4::Tcp {
                sport: 1,
                dport: 81,
                flags: ACK,
            },
            L4::Udp {
                sport: 1,
                dport: 80,
            },
            L4::Icmp { ty: 8, code: 0 },
            L4::Icmp6 { ty: 8, code: 0 },
            L4::Other(47),
        ] {
            for frag in [
                Frag::None,
                Frag::First,
                Frag::NonFirst(1),
                Frag::NonFirst(8191),
            ] {
                let p = if v6 {
                    let p = ip6(src, dst, l4).ext(Ext::HopByHop(0));
                    if frag == Frag::None {
                        p
                    } else {
                        p.ext(Ext::Fragment(frag))
                    }
                } else {
                    ip4(src, dst, l4).frag(frag)
                };
                fw.check(&p);
                n += 1;
            }
        }
    }
    assert_eq!(n, 96);
    let t = |f| tcp4("10.8.1.1", "192.0.2.2", 1, 80).flags(SYN).frag(f);
    assert_eq!(fw.hit(&t(Frag::None)), Some("port80"));
    assert_eq!(fw.hit(&t(Frag::First)), Some("port80"));
    assert_eq!(fw.hit(&t(Frag::NonFirst(3))), Some("nonfirst"));
    assert_eq!(
        fw.hit(&tcp4("10.9.1.1", "192.0.2.2", 1, 80).frag(Frag::NonFirst(3))),
        Some("src-nonfirst")
    );
    assert_eq!(
        fw.hit(&udp4("10.8.1.1", "192.0.2.2", 1, 53).frag(Frag::First)),
        Some("udp-first")
    );
    assert_eq!(fw.hit(&udp4("10.8.1.1", "192.0.2.2", 1, 53)), Some("none"));
    assert_eq!(
        fw.hit(&ip4("10.8.1.1", "192.0.2.2", L4::Other(47)).frag(Frag::First)),
        Some("any")
    );
    // IPv6: the fragment header decides; an atomic fragment is not a fragment.
    let u6 = || udp6("2001:db8:8::1", "2001:db8::2", 1, 53);
    assert_eq!(
        fw.hit(&u6().ext(Ext::Fragment(Frag::First))),
        Some("udp-first")
    );
    assert_eq!(
        fw.hit(&u6().ext(Ext::Fragment(Frag::NonFirst(5)))),
        Some("nonfirst")
    );
    assert_eq!(fw.hit(&u6().ext(Ext::Fragment(Frag::None))), Some("none"));
    assert_eq!(
        fw.hit(&tcp6("2001:db8:8::1", "2001:db8::2", 1, 80).ext(Ext::Fragment(Frag::NonFirst(5)))),
        Some("nonfirst"),
        "port 80 is not visible in a non-first fragment"
    );
}

#[test]
fn first_terminal_match_wins_and_default_applies() {
    if !root("first_terminal_match_wins_and_default_applies") {
        return;
    }
    let fw = Cfg::new()
        .default_action(Verdict::Drop)
        .rule(
            "c1",
            Conditions {
                proto: Some(6),
                ..any()
            },
            Action::Count,
        )
        .rule(
            "ssh",
            Conditions {
                proto: Some(6),
                dport: port(22),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "tcp",
            Conditions {
                proto: Some(6),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "ssh-late",
            Conditions {
                dport: port(22),
                ..any()
            },
            Action::Drop,
        )
        .rule("c2", any(), Action::Count)
        .rule(
            "dns",
            Conditions {
                proto: Some(17),
                dport: port(53),
                ..any()
            },
            Action::Pass,
        )
        .load();
    let v = fw.verdict(&tcp4("192.0.2.1", "192.0.2.2", 1, 22));
    assert_eq!((v.rule, v.xdp), (Some(1), XDP_PASS));
    let v = fw.verdict(&tcp4("192.0.2.1", "192.0.2.2", 1, 23));
    assert_eq!((v.rule, v.xdp), (Some(2), XDP_DROP));
    let v = fw.verdict(&udp4("192.0.2.1", "192.0.2.2", 1, 22));
    assert_eq!((v.rule, v.xdp), (Some(3), XDP_DROP));
    let v = fw.verdict(&udp4("192.0.2.1", "192.0.2.2", 1, 53));
    assert_eq!(
        (v.rule, v.xdp),
        (Some(5), XDP_PASS),
        "after a count rule, evaluation continues"
    );
    let v = fw.verdict(&udp4("192.0.2.1", "192.0.2.2", 1, 54));
    assert_eq!((v.rule, v.xdp), (None, XDP_DROP), "default drop");
    let v = fw.verdict(&arp());
    assert_eq!((v.rule, v.xdp), (None, XDP_DROP));
}

#[test]
fn a_rule_without_conditions_matches_everything_well_formed() {
    if !root("a_rule_without_conditions_matches_everything_well_formed") {
        return;
    }
    let fw = Cfg::new()
        .default_action(Verdict::Drop)
        .rule("all", any(), Action::Pass)
        .load();
    for p in [
        tcp4("192.0.2.1", "192.0.2.2", 1, 2),
        udp6("::1", "::2", 1, 2),
        arp(),
        arp().qinq(1, 2),
        ip4("1.1.1.1", "2.2.2.2", L4::Other(47)).frag(Frag::NonFirst(9)),
    ] {
        assert_eq!(fw.hit(&p), Some("all"));
    }
    // An empty rule set: everything takes the default.
    let fw = Cfg::new().default_action(Verdict::Drop).load();
    assert_eq!(
        fw.verdict(&tcp4("192.0.2.1", "192.0.2.2", 1, 2)).xdp,
        XDP_DROP
    );
    assert_eq!(fw.verdict(&arp()).xdp, XDP_DROP);
    assert_eq!(fw.stats().default.packets, 2);
    let fw = Cfg::new().load();
    assert_eq!(fw.verdict(&tcp6("::1", "::2", 1, 2)).xdp, XDP_PASS);
}

#[test]
fn combined_conditions_all_must_hold() {
    if !root("combined_conditions_all_must_hold") {
        return;
    }
    let fw = Cfg::new()
        .set("web", &["198.51.100.0/24", "2001:db8:80::/48"])
        .rule(
            "all-of-them",
            Conditions {
                src: addr(&["10.0.0.0/8", "2001:db8:10::/48"]),
                dst: addr(&["@web"]),
                proto: Some(6),
                sport: ports(&[(1024, 65535)]),
                dport: ports(&[(80, 80), (443, 443)]),
                tcp_flags: flags(SYN, ACK),
                family: Some(Family::Ipv4),
                vlan: Some(42),
                fragment: Some(FragMatch::None),
                ..any()
            },
            Action::Drop,
        )
        .load();
    let base = || {
        tcp4("10.1.1.1", "198.51.100.9", 40000, 443)
            .flags(SYN)
            .vlan(42)
    };
    assert_eq!(fw.hit(&base()), Some("all-of-them"));
    assert_eq!(
        fw.hit(
            &tcp4("10.1.1.1", "198.51.100.9", 40000, 443)
                .flags(SYN)
                .qinq(42, 1)
        ),
        Some("all-of-them")
    );
    let misses = [
        tcp4("11.1.1.1", "198.51.100.9", 40000, 443)
            .flags(SYN)
            .vlan(42),
        tcp4("10.1.1.1", "198.51.101.9", 40000, 443)
            .flags(SYN)
            .vlan(42),
        udp4("10.1.1.1", "198.51.100.9", 40000, 443).vlan(42),
        tcp4("10.1.1.1", "198.51.100.9", 1000, 443)
            .flags(SYN)
            .vlan(42),
        tcp4("10.1.1.1", "198.51.100.9", 40000, 444)
            .flags(SYN)
            .vlan(42),
        tcp4("10.1.1.1", "198.51.100.9", 40000, 443)
            .flags(SYN | ACK)
            .vlan(42),
        tcp6("2001:db8:10::1", "2001:db8:80::1", 40000, 443)
            .flags(SYN)
            .vlan(42),
        tcp4("10.1.1.1", "198.51.100.9", 40000, 443)
            .flags(SYN)
            .vlan(43),
        tcp4("10.1.1.1", "198.51.100.9", 40000, 443).flags(SYN),
        base().frag(Frag::First),
    ];
    for p in misses {
        assert_eq!(fw.check(&p), None, "{p:?}");
    }
}

// ------------------------------------------------------------------ bugs

#[test]
fn fragment_none_does_not_match_non_ip() {
    if !root("fragment_none_does_not_match_non_ip") {
        return;
    }
    // DESIGN.md: non-IP frames match only rules without L3/L4 conditions;
    // `fragment` is an IP-level condition.
    let fw = Cfg::new()
        .rule(
            "none",
            Conditions {
                fragment: Some(FragMatch::None),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "none-v7",
            Conditions {
                fragment: Some(FragMatch::None),
                vlan: Some(7),
                ..any()
            },
            Action::Drop,
        )
        .load();
    assert_eq!(fw.hit(&udp4("192.0.2.1", "192.0.2.2", 1, 2)), Some("none"));
    assert_eq!(fw.hit(&arp()), None, "ARP matched `fragment = \"none\"`");
    assert_eq!(
        fw.hit(&arp().vlan(7)),
        None,
        "tagged ARP matched `fragment = \"none\"`"
    );
}

/// The program checks the first candidate of the first list inline and
/// walks the rest: a match there must not hide a lower rule in a later
/// list, a miss there must go on with the second candidate, and a `count`
/// rule between candidates is still counted.
#[test]
fn first_candidate_inline_and_the_rest_of_the_walk() {
    if !root("first_candidate_inline_and_the_rest_of_the_walk") {
        return;
    }
    let dns = |src: &[&str]| Conditions {
        src: addr(src),
        dport: ports(&[(53, 53)]),
        ..any()
    };
    // a, b, c, d are indexed on the destination port (a single port beats
    // a /8), h on its /32 source. The list checked inline is the lowest
    // field's: h's for 10.1.1.1, the port list for the other sources.
    let fw = Cfg::new()
        .rule("a", dns(&["10.0.0.0/8"]), Action::Drop)
        .rule("b", dns(&["192.0.0.0/8"]), Action::Pass)
        .rule("c", dns(&[]), Action::Count)
        .rule(
            "d",
            Conditions {
                proto: Some(17),
                ..dns(&[])
            },
            Action::Drop,
        )
        .rule(
            "h",
            Conditions {
                src: addr(&["10.1.1.1"]),
                proto: Some(17),
                ..any()
            },
            Action::Pass,
        )
        .load();
    let some = |s: &str| Some(s.to_owned());
    let hit = |p: &Pkt| fw.check(p).map(str::to_owned);
    // h matches inline, but a (lower) in the port list wins.
    assert_eq!(hit(&udp4("10.1.1.1", "192.0.2.1", 1, 53)), some("a"));
    assert_eq!(hit(&udp4("10.1.1.1", "192.0.2.1", 1, 54)), some("h"));
    // a misses inline; the walk goes on from b.
    assert_eq!(hit(&udp4("192.168.1.1", "192.0.2.1", 1, 53)), some("b"));
    // a and b miss; d matches after the count rule c, which counts.
    assert_eq!(hit(&udp4("8.8.8.8", "192.0.2.1", 1, 53)), some("d"));
    // Nothing terminal matches a TCP query; c counts it too.
    assert_eq!(hit(&tcp4("8.8.8.8", "192.0.2.1", 1, 53)), None);
    assert_eq!(
        fw.counter("c").packets,
        2,
        "c counts the packets no earlier terminal rule took"
    );
}

/// Every kind of direct check (the packed key's fields, both ports), each
/// on a rule indexed on its own source host so that the check is made on
/// the record (or the class's copy of it), not with a class bitmap. Every
/// packet kind from every source against the reference classifier.
#[test]
fn direct_checks_of_every_kind_agree_with_the_reference() {
    if !root("direct_checks_of_every_kind_agree_with_the_reference") {
        return;
    }
    let shapes: Vec<Conditions> = vec![
        Conditions {
            proto: Some(6),
            ..any()
        },
        Conditions {
            proto: Some(17),
            dport: port(53),
            ..any()
        },
        Conditions {
            proto: Some(6),
            dport: ports(&[(1000, 2000)]),
            ..any()
        },
        Conditions {
            proto: Some(17),
            sport: ports(&[(1024, 65535)]),
            ..any()
        },
        Conditions {
            proto: Some(6),
            tcp_flags: flags(SYN, ACK),
            ..any()
        },
        Conditions {
            tcp_flags: flags(0, RST),
            ..any()
        },
        Conditions {
            icmp_type: Some(8),
            ..any()
        },
        Conditions {
            icmp_type: Some(8),
            icmp_code: Some(0),
            ..any()
        },
        Conditions {
            icmp_code: Some(1),
            ..any()
        },
        Conditions {
            family: Some(Family::Ipv4),
            ..any()
        },
        Conditions {
            family: Some(Family::Ipv6),
            ..any()
        },
        Conditions {
            fragment: Some(FragMatch::Any),
            ..any()
        },
        Conditions {
            fragment: Some(FragMatch::First),
            ..any()
        },
        Conditions {
            fragment: Some(FragMatch::NonFirst),
            ..any()
        },
        Conditions {
            fragment: Some(FragMatch::None),
            ..any()
        },
        Conditions {
            proto: Some(17),
            fragment: Some(FragMatch::NonFirst),
            ..any()
        },
    ];
    let host4 = |i: usize| format!("10.77.{i}.1");
    let host6 = |i: usize| format!("2001:db8:77::{i:x}");
    let mut cfg = Cfg::new();
    for (i, shape) in shapes.iter().enumerate() {
        let src = addr(&[&host4(i), &host6(i)]);
        let action = if i % 2 == 0 {
            Action::Drop
        } else {
            Action::Pass
        };
        cfg = cfg.rule(
            &format!("r{i}"),
            Conditions {
                src,
                ..shape.clone()
            },
            action,
        );
    }
    // Each rule is indexed on its source, and checks the rest directly.
    let compiled = xdpwall_rules::compile::compile(&cfg.0).expect("compiles");
    assert_eq!(
        compiled.index_fields, 1,
        "the source is the only index field"
    );
    for (i, r) in compiled.rules.iter().enumerate() {
        assert_ne!(r.direct, 0, "rule {i}: no direct check");
    }
    let fw = cfg.load();
    let mut n = 0;
    for i in 0..shapes.len() {
        for (src, dst) in [
            (host4(i), "192.0.2.2".to_string()),
            (host6(i), "2001:db8::2".into()),
        ] {
            let v6 = src.contains(':');
            for l4 in [
                L4::Tcp {
                    sport: 1,
                    dport: 1500,
                    flags: SYN,
                },
                L4::Tcp {
                    sport: 1,
                    dport: 53,
                    flags: ACK | RST,
                },
                L4::Udp {
                    sport: 2000,
                    dport: 53,
                },
                L4::Udp {
                    sport: 53,
                    dport: 1500,
                },
                L4::Icmp { ty: 8, code: 0 },
                L4::Icmp { ty: 0, code: 1 },
                L4::Icmp6 { ty: 8, code: 1 },
                L4::Other(47),
            ] {
                for frag in [Frag::None, Frag::First, Frag::NonFirst(7)] {
                    let p = if v6 {
                        let p = ip6(&src, &dst, l4);
                        if frag == Frag::None {
                            p
                        } else {
                            p.ext(Ext::Fragment(frag))
                        }
                    } else {
                        ip4(&src, &dst, l4).frag(frag)
                    };
                    fw.check(&p);
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, shapes.len() * 2 * 8 * 3);
    // Spot checks that name the rule, beside the reference's agreement.
    let nonfirst = shapes.len() - 3;
    assert_eq!(
        fw.hit(&udp4(&host4(nonfirst), "192.0.2.2", 1, 53).frag(Frag::NonFirst(7))),
        Some(format!("r{nonfirst}").as_str())
    );
    assert_eq!(
        fw.hit(&udp4(&host4(nonfirst), "192.0.2.2", 1, 53).frag(Frag::First)),
        None
    );
}
