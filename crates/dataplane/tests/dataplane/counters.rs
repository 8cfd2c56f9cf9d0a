//! Counters: per rule (packets, bytes = frame length), default, malformed by
//! reason, and `count` rules counted only when evaluated before the winner.

use xdpwall_rules::{Action, Conditions, Verdict};

use super::fixtures::*;

#[test]
fn per_rule_and_default_packets_and_bytes() {
    if !root("per_rule_and_default_packets_and_bytes") {
        return;
    }
    let fw = Cfg::new()
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
            "dns",
            Conditions {
                proto: Some(17),
                dport: port(53),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "unused",
            Conditions {
                proto: Some(132),
                ..any()
            },
            Action::Drop,
        )
        .load();
    let pkts = [
        tcp4("192.0.2.1", "192.0.2.2", 1, 22),
        tcp4("192.0.2.1", "192.0.2.2", 1, 22).payload(100),
        tcp6("2001:db8::1", "2001:db8::2", 1, 22)
            .payload(1000)
            .vlan(3),
        udp4("192.0.2.1", "192.0.2.2", 1, 53).payload(7),
        udp4("192.0.2.1", "192.0.2.2", 1, 54).payload(9),
        arp(),
    ];
    let lens: Vec<u64> = pkts.iter().map(|p| p.bytes().len() as u64).collect();
    for p in &pkts {
        fw.verdict(p);
    }
    let s = fw.stats();
    assert_eq!(s.rules[0].name, "ssh");
    assert_eq!(
        (s.rules[0].counter.packets, s.rules[0].counter.bytes),
        (3, lens[0] + lens[1] + lens[2])
    );
    assert_eq!(
        (s.rules[1].counter.packets, s.rules[1].counter.bytes),
        (1, lens[3])
    );
    assert_eq!(
        (s.rules[2].counter.packets, s.rules[2].counter.bytes),
        (0, 0)
    );
    assert_eq!((s.default.packets, s.default.bytes), (2, lens[4] + lens[5]));
    assert_eq!(lens[0], 14 + 20 + 20);
    assert_eq!(lens[2], 14 + 4 + 40 + 20 + 1000);
    // Counters accumulate.
    fw.verdict(&pkts[3]);
    assert_eq!(fw.counter("dns").packets, 2);
    assert_eq!(fw.counter("dns").bytes, 2 * lens[3]);
}

/// Count rules before, between and after terminal rules; `pad` adds 33
/// unconditioned count rules at the end, overflowing the always-candidate
/// list so the program takes the bitmap scan.
fn count_config(pad: bool) -> Cfg {
    let mut c = Cfg::new()
        .rule(
            "c-tcp",
            Conditions {
                proto: Some(6),
                ..any()
            },
            Action::Count,
        )
        .rule("c-all", any(), Action::Count)
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
            "c-tcp-after",
            Conditions {
                proto: Some(6),
                ..any()
            },
            Action::Count,
        )
        .rule(
            "c-port22",
            Conditions {
                dport: port(22),
                ..any()
            },
            Action::Count,
        )
        .rule(
            "http",
            Conditions {
                dport: port(80),
                ..any()
            },
            Action::Pass,
        )
        .rule(
            "c-v10",
            Conditions {
                vlan: Some(10),
                ..any()
            },
            Action::Count,
        )
        .rule(
            "c-src",
            Conditions {
                src: addr(&["10.0.0.0/8"]),
                ..any()
            },
            Action::Count,
        )
        .rule(
            "v10",
            Conditions {
                vlan: Some(10),
                ..any()
            },
            Action::Drop,
        )
        .rule("c-last", any(), Action::Count);
    if pad {
        for i in 0..33 {
            c = c.rule(&format!("pad{i}"), any(), Action::Count);
        }
    }
    c
}

fn count_packets() -> Vec<Pkt> {
    vec![
        tcp4("192.0.2.1", "192.0.2.2", 1, 22),
        tcp4("10.0.0.1", "192.0.2.2", 1, 80).payload(5),
        udp4("10.0.0.1", "192.0.2.2", 1, 22),
        udp6("2001:db8::1", "2001:db8::2", 1, 80).vlan(10),
        udp4("10.0.0.1", "192.0.2.2", 1, 81).vlan(10),
        udp4("192.0.2.1", "192.0.2.2", 1, 81),
        arp(),
        arp().vlan(10),
    ]
}

fn check_count_rules(pad: bool) {
    let fw = count_config(pad).load();
    assert_eq!(
        fw.overflows(),
        pad,
        "candidate-list mode vs bitmap-scan mode"
    );
    let mut e = Expected::new(&fw.cfg);
    for p in count_packets() {
        fw.check(&p);
        e.add(&fw.cfg, &p);
    }
    fw.assert_counters(&e);
    // The same, spelled out (packets only).
    let s = fw.stats();
    let n = |name: &str| {
        s.rules
            .iter()
            .find(|r| r.name == name)
            .expect(name)
            .counter
            .packets
    };
    assert_eq!(n("c-tcp"), 2);
    assert_eq!(n("c-all"), 8);
    assert_eq!(n("ssh"), 1);
    assert_eq!(
        n("c-tcp-after"),
        1,
        "tcp:22 stops at ssh before reaching it"
    );
    assert_eq!(n("c-port22"), 1, "only the UDP one");
    assert_eq!(n("http"), 2);
    assert_eq!(n("c-v10"), 2, "udp:81 tagged 10 and tagged ARP");
    assert_eq!(n("c-src"), 2);
    assert_eq!(n("v10"), 2);
    assert_eq!(n("c-last"), 3, "udp:22, udp:81 and ARP reach the end");
    assert_eq!(s.default.packets, 3);
    if pad {
        assert_eq!(n("pad32"), 3);
    }
}

#[test]
fn count_rules_only_before_the_winner() {
    if !root("count_rules_only_before_the_winner") {
        return;
    }
    check_count_rules(false);
}

#[test]
fn count_rules_only_before_the_winner_bitmap_scan() {
    if !root("count_rules_only_before_the_winner_bitmap_scan") {
        return;
    }
    check_count_rules(true);
}

#[test]
fn malformed_counters_by_reason() {
    if !root("malformed_counters_by_reason") {
        return;
    }
    let fw = Cfg::new()
        .malformed(Verdict::Drop)
        .rule("c", any(), Action::Count)
        .rule("p", any(), Action::Pass)
        .load();
    let t4 = tcp4("192.0.2.1", "192.0.2.2", 1, 2).bytes();
    let mut bad_ver = t4.clone();
    bad_ver[14] = 0x65; // IPv4 header byte 0: version 6
    let mut deep6 = tcp6("::1", "::2", 1, 2);
    for _ in 0..9 {
        deep6 = deep6.ext(Ext::HopByHop(0));
    }
    let frames: Vec<(Vec<u8>, u32)> = vec![
        (t4[..30].to_vec(), TRUNCATED),
        (t4[..40].to_vec(), TRUNCATED),
        (bad_ver.clone(), BAD_HEADER),
        (bad_ver.clone(), BAD_HEADER),
        (bad_ver, BAD_HEADER),
        (deep6.bytes(), EXT_TOO_DEEP),
        (arp().vlan(1).vlan(2).vlan(3).bytes(), VLAN_TOO_DEEP),
    ];
    let mut want = [(0u64, 0u64); 4];
    for (f, reason) in &frames {
        let v = fw.run(f);
        assert_eq!((v.malformed, v.xdp), (Some(*reason), XDP_DROP));
        want[*reason as usize].0 += 1;
        want[*reason as usize].1 += f.len() as u64;
    }
    let s = fw.stats();
    let names: Vec<&str> = s.malformed.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["truncated", "bad_header", "ext_too_deep", "vlan_too_deep"]
    );
    for (i, (name, c)) in s.malformed.iter().enumerate() {
        assert_eq!((c.packets, c.bytes), want[i], "{name}");
    }
    // Malformed packets reach no rule, not even a `count` one, nor the default.
    assert!(s.rules.iter().all(|r| r.counter.packets == 0), "{s:?}");
    assert_eq!(s.default.packets, 0);
    assert_eq!(s.malformed_action, "drop");

    // Default malformed policy: pass.
    let fw = Cfg::new().default_action(Verdict::Drop).load();
    let v = fw.run(&t4[..20]);
    assert_eq!((v.malformed, v.xdp), (Some(TRUNCATED), XDP_PASS));
    assert_eq!(fw.stats().malformed_action, "pass");
}

#[test]
fn stats_name_rules_and_actions() {
    if !root("stats_name_rules_and_actions") {
        return;
    }
    // The longest name the compiler accepts (a longer one is refused, see
    // xdpwall-rules' limit tests) arrives whole.
    let long = "r".repeat(63);
    let fw = Cfg::new()
        .default_action(Verdict::Drop)
        .rule("a-pass", any(), Action::Pass)
        .rule("b-drop", any(), Action::Drop)
        .rule("c-count", any(), Action::Count)
        .rule(&long, any(), Action::Drop)
        .load();
    let s = fw.stats();
    let got: Vec<(String, &str)> = s.rules.iter().map(|r| (r.name.clone(), r.action)).collect();
    assert_eq!(
        got,
        vec![
            ("a-pass".into(), "pass"),
            ("b-drop".into(), "drop"),
            ("c-count".into(), "count"),
            // 63 bytes + NUL fill the ABI's name field exactly.
            ("r".repeat(63), "drop"),
        ]
    );
    assert_eq!(s.default_action, "drop");
}

#[test]
fn vlan_count_rule_counted_once_when_both_tags_match() {
    if !root("vlan_count_rule_counted_once_when_both_tags_match") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "c-v10",
            Conditions {
                vlan: Some(10),
                ..any()
            },
            Action::Count,
        )
        .load();
    assert!(!fw.overflows());
    let p = udp4("192.0.2.1", "192.0.2.2", 1, 2).qinq(10, 10);
    fw.verdict(&p);
    let c = fw.counter("c-v10");
    assert_eq!(
        (c.packets, c.bytes),
        (1, p.bytes().len() as u64),
        "one packet, counted once"
    );
}

#[test]
fn only_unconditioned_count_rules_in_bitmap_scan() {
    if !root("only_unconditioned_count_rules_in_bitmap_scan") {
        return;
    }
    // 33 `count` rules without conditions: the always-candidate list
    // overflows (bitmap scan) and no field is used at all.
    let mut cfg = Cfg::new().default_action(Verdict::Drop);
    for i in 0..33 {
        cfg = cfg.rule(&format!("c{i}"), any(), Action::Count);
    }
    let fw = cfg.load();
    assert!(fw.overflows());
    let p = udp4("192.0.2.1", "192.0.2.2", 1, 2);
    let v = fw.inst.test_run(&p.bytes()).expect("run");
    assert_eq!(
        (v.rule, v.xdp),
        (None, XDP_DROP),
        "no terminal rule: the default (drop) applies"
    );
    let mut e = Expected::new(&fw.cfg);
    e.add(&fw.cfg, &p);
    fw.assert_counters(&e);
}

/// A reload shares the counter maps: a rule's counts continue under its name
/// whatever its new position, packets the old program judges after the new
/// one is loaded (before the swap) are not lost, a new rule starts at zero
/// even in a slot an older generation used, and default and malformed
/// counters continue.
#[test]
fn counters_follow_rule_names_exactly_across_reloads() {
    if !root("counters_follow_rule_names_exactly_across_reloads") {
        return;
    }
    let udp = |p: u16| Conditions {
        proto: Some(17),
        dport: port(p),
        ..any()
    };
    let g1 = Cfg::new()
        .rule("a", udp(1), Action::Drop)
        .rule("b", udp(2), Action::Drop)
        .load();
    let (a, b, other) = (
        udp4("192.0.2.1", "192.0.2.2", 9, 1),
        udp4("192.0.2.1", "192.0.2.2", 9, 2),
        udp4("192.0.2.1", "192.0.2.2", 9, 3),
    );
    let (la, lb, lo) = (
        a.bytes().len() as u64,
        b.bytes().len() as u64,
        other.bytes().len() as u64,
    );
    for _ in 0..3 {
        g1.verdict(&a);
    }
    g1.verdict(&b);
    g1.verdict(&other);
    assert!(
        g1.malformed(&a.bytes()[..20]).is_some(),
        "a truncated IPv4 header"
    );

    // Generation 2: "b" removed, "c" added in front, "a" moved to the end.
    let g2 = g1.successor(
        Cfg::new()
            .rule("c", udp(3), Action::Drop)
            .rule("a", udp(1), Action::Drop)
            .0,
    );
    // The old program still runs until the swap: its counts must survive.
    g1.verdict(&a);
    g2.verdict(&a);
    g2.verdict(&other);
    assert_eq!(
        g2.counter("a").packets,
        5,
        "3 + 1 (old, after load) + 1 (new)"
    );
    assert_eq!(g2.counter("a").bytes, 5 * la);
    assert_eq!(g2.counter("c").packets, 1, "c starts at zero");
    assert_eq!(g2.counter("c").bytes, lo);
    let s = g2.stats();
    assert_eq!(s.default.packets, 1, "default continues");
    assert_eq!(s.malformed.iter().map(|(_, c)| c.packets).sum::<u64>(), 1);

    // Generation 3: "b" comes back; the slot it had in generation 1 may be
    // reused, but counts from then must not reappear.
    let g3 = g2.successor(
        Cfg::new()
            .rule("a", udp(1), Action::Drop)
            .rule("b", udp(2), Action::Drop)
            .rule("d", udp(4), Action::Drop)
            .0,
    );
    g3.verdict(&b);
    assert_eq!(
        g3.counter("b").packets,
        1,
        "a returning name starts at zero"
    );
    assert_eq!(g3.counter("b").bytes, lb);
    assert_eq!(g3.counter("d").packets, 0);
    assert_eq!(g3.counter("a").packets, 5);
    let names: Vec<String> = g3.stats().rules.into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["a", "b", "d"], "c is gone from the table");
}
