//! Tests of the compiler: classes, directories, candidates.

use std::path::Path;

use super::abi::{
    CAND_CHECK_SHIFT, CAND_COUNT, CAND_DIRECT, CAND_ID_MASK, CHECK_FIRST, DIR_ENTRIES, ID_LONE,
    ID_MASK, ID_NODE, ID_TRIE,
};
use super::*;
use crate::parse_config;

fn compiled(toml: &str) -> Compiled {
    let cfg = parse_config(toml, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    compile(&cfg).unwrap_or_else(|e| panic!("{e}"))
}

fn class(c: &Compiled, tagged: u32) -> &Class {
    &c.classes[(tagged & ID_MASK) as usize]
}

const SHORT_AND_LONG: &str = "[[rule]]\nname = \"a\"\nsrc = \"10.0.0.0/8\"\naction = \"drop\"\n\
     [[rule]]\nname = \"b\"\nsrc = \"10.1.2.0/24\"\naction = \"pass\"\n";

#[test]
fn directory_decides_short_prefixes_and_defers_long_ones() {
    // No node budget: the long prefix stays in the exact-match table.
    let cfg = parse_config(SHORT_AND_LONG, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let hashed = Limits {
        nodes4: 0,
        lone4: 0,
        ..Limits::default()
    };
    let c = compile_with(&cfg, &hashed).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.src4_nodes.is_empty());
    assert_eq!(c.src4_dir.len(), DIR_ENTRIES);
    // 10.1.x.x holds a /24: the trie decides.
    // 10.1/16 holds a longer prefix: flagged, and the /16's own class kept.
    assert_eq!(c.src4_dir[(10 << 8) | 1] & ID_TRIE, ID_TRIE);
    assert_eq!(
        c.src4_dir[(10 << 8) | 1] & !ID_TRIE,
        c.src4_dir[(10 << 8) | 7],
        "the rest of 10.1/16 is in 10/8's class"
    );
    assert_eq!(
        c.src4_lens[(10 << 8) | 1],
        1 << (24 - 17),
        "a /24 lies in 10.1/16"
    );
    assert_eq!(c.src4_lens[(10 << 8) | 7], 0);
    // 10.7.x.x: only the /8 covers it.
    let in8 = class(&c, c.src4_dir[(10 << 8) | 7]);
    assert!(in8.bits.get(0) && !in8.bits.get(1));
    // 11.0.x.x: nothing covers it.
    let outside = class(&c, c.src4_dir[11 << 8]);
    assert!(!outside.bits.get(0) && !outside.bits.get(1));
    // Unused fields have no directory.
    assert!(c.dst4_dir.is_empty() && c.dst6_dir.is_empty());
}

#[test]
fn a_sixteen_with_one_long_prefix_is_a_lone_entry() {
    let c = compiled(SHORT_AND_LONG);
    // 10.1/16 points to lone entry 0; its lengths leave the hash lookup.
    assert_eq!(c.src4_dir[(10 << 8) | 1], ID_TRIE | ID_NODE | ID_LONE);
    assert_eq!(c.src4_lens[(10 << 8) | 1], 0);
    assert!(c.src4_nodes.n24.is_empty());
    let lone = c.src4_nodes.lone[0];
    assert_eq!((lone.mask, lone.want), (0xffff_ff00, 0x0a01_0200));
    // 10.1.2.0/24 is b's; the rest of 10.1/16 keeps 10/8's class.
    let inside = class(&c, lone.inside);
    assert!(inside.bits.get(0) && inside.bits.get(1));
    assert_eq!(lone.outside, c.src4_dir[(10 << 8) | 7]);
    assert_eq!(hashed4(&c.src4, &c.src4_dir).count(), 0);
}

#[test]
fn a_sixteen_with_long_prefixes_goes_to_nodes_within_the_budget() {
    // Without lone entries, the one /24 of 10.1/16 takes a node.
    let cfg = parse_config(SHORT_AND_LONG, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let no_lone = Limits {
        lone4: 0,
        ..Limits::default()
    };
    let c = compile_with(&cfg, &no_lone).unwrap_or_else(|e| panic!("{e}"));
    // 10.1/16 points to /24 node 0; its lengths leave the hash lookup.
    assert_eq!(c.src4_dir[(10 << 8) | 1], ID_TRIE | ID_NODE);
    assert_eq!(c.src4_lens[(10 << 8) | 1], 0);
    assert_eq!(c.src4_nodes.n24.len(), 1);
    assert!(c.src4_nodes.n32.is_empty(), "nothing longer than /24");
    let node = &c.src4_nodes.n24[0];
    // 10.1.2.0/24 is b's; the rest of 10.1/16 keeps 10/8's class.
    let in24 = class(&c, node[2]);
    assert!(in24.bits.get(0) && in24.bits.get(1));
    assert_eq!(node[3], c.src4_dir[(10 << 8) | 7]);
    assert_eq!(node[0], c.src4_dir[(10 << 8) | 7]);
    assert_eq!(hashed4(&c.src4, &c.src4_dir).count(), 0);
}

#[test]
fn exclusions_win_over_inclusions_and_ipv6_matches_v4_only_exclusions() {
    let c = compiled(
        "[[rule]]\nname = \"a\"\nsrc = [\"10.0.0.0/8\", \"!10.1.0.0/16\"]\naction = \"drop\"\n\
         [[rule]]\nname = \"b\"\nsrc = \"!192.0.2.0/24\"\naction = \"drop\"\n",
    );
    let find = |addr: [u8; 4], len: u8| {
        let net = ipnet::Ipv4Net::new(addr.into(), len).expect("valid");
        c.src4
            .iter()
            .find(|(n, _)| *n == net)
            .map(|(_, id)| class(&c, *id).clone())
    };
    let excluded = find([10, 1, 0, 0], 16).expect("entry for the exclusion");
    assert!(!excluded.bits.get(0), "10.1/16 is excluded from rule a");
    assert!(excluded.bits.get(1), "rule b only excludes 192.0.2/24");
    let v6_root = c
        .src6
        .iter()
        .find(|(n, _)| n.prefix_len() == 0)
        .expect("v6 /0");
    let v6 = class(&c, v6_root.1);
    assert!(!v6.bits.get(0), "rule a has plain v4 entries only");
    assert!(v6.bits.get(1), "`!v4` alone matches every IPv6 source");
}

#[test]
fn port_sweep_gives_one_class_per_distinct_rule_set() {
    let c = compiled(
        "[[rule]]\nname = \"a\"\ndport = \"100-200\"\naction = \"drop\"\n\
         [[rule]]\nname = \"b\"\ndport = [150, 65535]\naction = \"pass\"\n",
    );
    let bits = |p: usize| class(&c, c.dport[p]).bits.clone();
    assert!(!bits(99).get(0) && bits(100).get(0) && bits(200).get(0) && !bits(201).get(0));
    assert!(bits(150).get(0) && bits(150).get(1));
    assert!(bits(65535).get(1) && !bits(65534).get(1));
    assert!(!bits(0).any(), "port 0 matches neither rule");
    assert!(!bits(abi::PORT_NONE).any(), "no ports matches no port rule");
    assert_eq!(c.dport[120], c.dport[199], "same rules, same class");
}

#[test]
fn candidates_carry_the_fields_left_to_check() {
    let c = compiled(
        "[[rule]]\nname = \"a\"\nsrc = \"192.0.2.1\"\nproto = \"udp\"\ndport = 53\naction = \"drop\"\n\
         [[rule]]\nname = \"b\"\nsrc = \"192.0.2.0/24\"\naction = \"count\"\n",
    );
    assert_eq!(
        c.index_fields,
        Field::Src.bit(),
        "the /32 and /24 are the most selective"
    );
    let host = c
        .src4
        .iter()
        .find(|(n, _)| n.prefix_len() == 32)
        .expect("/32 entry");
    let list = &class(&c, host.1).cands;
    assert_eq!(list.len(), 2);
    let a = list[0];
    assert_eq!(a & CAND_ID_MASK, 0);
    // Protocol and port: checked on the rule's record, none with bitmaps.
    assert_eq!(a >> CAND_CHECK_SHIFT, 0);
    assert_eq!(a & CAND_DIRECT, CAND_DIRECT);
    assert_eq!(c.rules[0].direct, Field::Proto.bit() | Field::Dport.bit());
    assert_eq!(list[1] & CAND_COUNT, CAND_COUNT, "rule b is a count rule");
    assert!(host.1 & abi::ID_TERMINALS != 0 && host.1 & abi::ID_COUNTS != 0);
}

/// `n` rules on source /24s (the bulk of a rule set), then `tail`.
fn bulk_then(n: usize, tail: &str) -> Compiled {
    let mut toml = String::new();
    for i in 0..n {
        toml += &format!(
            "[[rule]]\nname = \"s{i}\"\nsrc = \"10.{}.{}.0/24\"\naction = \"drop\"\n",
            i / 256,
            i % 256
        );
    }
    compiled(&(toml + tail))
}

#[test]
fn a_few_rules_do_not_make_every_packet_look_up_their_own_field() {
    // The VLAN is these two rules' most selective field (a 4,096th of the
    // traffic against their /8's 256th), but indexing it would cost every
    // packet both tags' lookups; the source is looked up anyway.
    let c = bulk_then(
        100,
        "[[rule]]\nname = \"v1\"\nsrc = \"172.0.0.0/8\"\nvlan = 7\naction = \"drop\"\n\
         [[rule]]\nname = \"v2\"\nsrc = \"173.0.0.0/8\"\nvlan = 8\nsport = \"1024-65535\"\naction = \"pass\"\n",
    );
    assert_eq!(c.index_fields, Field::Src.bit());
    let v2 = &c.rules[101];
    assert_eq!(
        v2.direct,
        Field::Sport.bit(),
        "its port is checked directly"
    );
    let dir = c.src4_dir[173 << 8];
    let list = &class(&c, dir).cands;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0] & CAND_ID_MASK, 101);
    assert_eq!(
        list[0] >> CAND_CHECK_SHIFT,
        Field::Vlan.bit(),
        "the VLAN is left to its class bitmaps"
    );
}

#[test]
fn giving_up_a_field_is_undone_when_it_overflows_more_lists() {
    // 40 VLAN rules on one /8: cheap enough to move to the source field
    // (1/256 against 1/4096 each), but then the /8's classes list 40
    // candidates, over XW_MAX_CANDS: the compiler keeps the VLAN.
    let mut tail = String::new();
    for v in 0..40 {
        tail += &format!(
            "[[rule]]\nname = \"v{v}\"\nsrc = \"10.0.0.0/8\"\nvlan = {}\naction = \"drop\"\n",
            v + 1
        );
    }
    let c = bulk_then(100, &tail);
    assert_eq!(c.index_fields, Field::Src.bit() | Field::Vlan.bit());
    assert!(
        c.classes.iter().all(|k| !k.overflow),
        "no list overflowed with the VLAN kept"
    );
}

#[test]
fn a_field_stays_indexed_when_moving_its_rules_costs_more() {
    // Only a protocol to move to (three tenths of the traffic): the VLAN
    // stays an index field.
    let c = bulk_then(
        100,
        "[[rule]]\nname = \"v\"\nproto = \"udp\"\nvlan = 7\naction = \"drop\"\n",
    );
    assert_eq!(c.index_fields, Field::Src.bit() | Field::Vlan.bit());
    // And a rule with nothing else keeps its only field.
    let c = bulk_then(10, "[[rule]]\nname = \"v\"\nvlan = 7\naction = \"drop\"\n");
    assert_eq!(c.index_fields, Field::Src.bit() | Field::Vlan.bit());
}

/// One rule per condition shape a direct check must decide, each indexed
/// on its own source /32 so that its other fields are checked, not indexed.
const DIRECT_SHAPES: &[&str] = &[
    "proto = \"tcp\"",
    "proto = \"udp\"\ndport = 22",
    "proto = \"tcp\"\ndport = \"1000-2000\"",
    "proto = \"tcp\"\ndport = [80, 81, 82]",
    "proto = \"tcp\"\ndport = [\"10-20\", \"15-30\"]",
    "proto = \"tcp\"\ndport = [80, 443]",
    "proto = \"udp\"\nsport = \"0-65535\"",
    "proto = \"tcp\"\ntcp_flags = \"syn,!ack\"",
    "proto = \"tcp\"\ntcp_flags = \"!rst\"",
    "proto = \"icmp\"\nicmp_type = 8",
    "icmp_code = 0",
    "proto = \"icmpv6\"\nicmp_type = 3\nicmp_code = 1",
    "family = \"ipv6\"",
    "family = \"ipv4\"",
    "fragment = \"any\"",
    "fragment = \"first\"",
    "fragment = \"non-first\"",
    "fragment = \"none\"",
];

/// What the data plane computes for field `f` of value `v` on a record's
/// direct checks (classify.h: pkt_key, direct_ok), that field alone.
fn packed_holds(p: &Packed, f: Field, v: u32) -> bool {
    use super::abi::{KEY_FAMILY, KEY_FRAG, KEY_ICMP, KEY_PROTO, KEY_TCPF};
    let (shift, width, enc) = match f {
        Field::Sport | Field::Dport => {
            let (lo, span) = p.port[usize::from(f == Field::Dport)];
            return v.wrapping_sub(lo) <= span;
        }
        Field::Proto => (KEY_PROTO, 9, v),
        Field::TcpFlags => (KEY_TCPF, 9, v),
        Field::Icmp => (KEY_ICMP, 18, v),
        Field::Family => (KEY_FAMILY, 2, v),
        Field::Frag => (KEY_FRAG, 2, v ^ (v >> 1)),
        _ => panic!("{f:?} has no direct check"),
    };
    let bits = ((1u64 << width) - 1) << shift;
    assert!(
        u64::from(enc) << shift & !bits == 0,
        "{f:?} value {v} overflows its bits"
    );
    (u64::from(enc) << shift ^ p.key_want) & p.key_mask & bits == 0
}

#[test]
fn direct_checks_decide_exactly_what_the_class_bitmaps_decide() {
    let mut toml = String::new();
    for (i, shape) in DIRECT_SHAPES.iter().enumerate() {
        let src = if shape.contains("v6") {
            format!("2001:db8::{i}")
        } else {
            format!("192.0.2.{i}")
        };
        toml.push_str(&format!(
            "[[rule]]\nname = \"r{i}\"\nsrc = \"{src}\"\n{shape}\naction = \"drop\"\n"
        ));
    }
    let c = compiled(&toml);
    let tables: [(Field, &Vec<u32>); 7] = [
        (Field::Proto, &c.proto),
        (Field::Sport, &c.sport),
        (Field::Dport, &c.dport),
        (Field::TcpFlags, &c.tcpflags),
        (Field::Icmp, &c.icmp),
        (Field::Family, &c.family),
        (Field::Frag, &c.frag),
    ];
    let mut checked = 0;
    for (r, rule) in c.rules.iter().enumerate() {
        for &(f, table) in &tables {
            if rule.direct & f.bit() == 0 {
                continue;
            }
            let k = rule.checks[f as usize - CHECK_FIRST];
            // Every value the packet can carry, the "none" index included.
            for (v, &id) in table.iter().enumerate() {
                let v = u32::try_from(v).expect("small index");
                assert_eq!(
                    k.holds(v),
                    class(&c, id).bits.get(r),
                    "rule {} ({}), {f:?} value {v}: {k:?}",
                    r,
                    DIRECT_SHAPES[r]
                );
                assert_eq!(
                    packed_holds(&rule.packed, f, v),
                    k.holds(v),
                    "rule {r} ({}), {f:?} value {v}: the record's form {:?}",
                    DIRECT_SHAPES[r],
                    rule.packed
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= DIRECT_SHAPES.len(),
        "only {checked} direct checks"
    );
    // Which fields each shape checks directly: all but the source (its
    // index) and a port list with a gap.
    let direct_of = |shape: &str| -> u32 {
        let mut want = 0;
        for (key, f) in [
            ("proto", Field::Proto),
            ("sport", Field::Sport),
            ("dport", Field::Dport),
            ("tcp_flags", Field::TcpFlags),
            ("icmp_", Field::Icmp),
            ("family", Field::Family),
            ("fragment", Field::Frag),
        ] {
            if shape.contains(key) && !(key == "dport" && shape.contains("443")) {
                want |= f.bit();
            }
        }
        want
    };
    for (r, shape) in DIRECT_SHAPES.iter().enumerate() {
        assert_eq!(c.rules[r].direct, direct_of(shape), "{shape}");
    }
    // Every field of every rule is decided by exactly one of: its index
    // field's list (the source), a direct check, the candidate's bitmaps.
    let cfg = config(&toml);
    let mut cands = 0;
    for class in &c.classes {
        for &e in &class.cands {
            cands += 1;
            let r = (e & CAND_ID_MASK) as usize;
            let rule = &c.rules[r];
            let shape: u32 = index::fields_of(&cfg.rules[r].cond)
                .iter()
                .map(|f| f.bit())
                .sum();
            let check = e >> CAND_CHECK_SHIFT;
            assert_eq!(check & rule.direct, 0, "rule {r}: checked twice");
            assert_eq!(
                e & CAND_DIRECT != 0,
                rule.direct != 0,
                "rule {r}: flag and record disagree"
            );
            assert_eq!(
                check | rule.direct | Field::Src.bit(),
                shape,
                "rule {r}: a field checked by nothing"
            );
        }
    }
    assert!(cands >= DIRECT_SHAPES.len(), "only {cands} candidates");
    // A port list with a gap stays with the bitmaps, in the candidate's mask.
    let gap = DIRECT_SHAPES
        .iter()
        .position(|s| s.contains("[80, 443]"))
        .expect("gap rule");
    assert_eq!(c.rules[gap].direct & Field::Dport.bit(), 0);
    let host = c
        .src4
        .iter()
        .find(|(n, _)| n.addr() == std::net::Ipv4Addr::new(192, 0, 2, gap as u8))
        .expect("its /32");
    let cand = class(&c, host.1).cands[0];
    assert_eq!(cand >> CAND_CHECK_SHIFT, Field::Dport.bit());
    assert_eq!(cand & CAND_DIRECT, CAND_DIRECT, "its protocol is direct");
}

#[test]
fn long_candidate_lists_overflow_to_the_bitmap_scan() {
    let mut toml = String::new();
    for i in 0..(abi::MAX_CANDS + 1) {
        toml.push_str(&format!(
            "[[rule]]\nname = \"r{i}\"\nproto = \"tcp\"\naction = \"drop\"\n"
        ));
    }
    let c = compiled(&toml);
    let tcp = c.proto[6];
    assert!(tcp & abi::ID_OVERFLOW != 0);
    assert!(class(&c, tcp).overflow);
    assert_eq!(c.tail_mask, (1u64 << (abi::MAX_CANDS + 1)) - 1);
}

#[test]
fn a_million_entry_set_costs_one_class() {
    let entries: Vec<ipnet::IpNet> = (0..1_000_000u32)
        .map(|i| {
            ipnet::IpNet::V4(ipnet::Ipv4Net::new((0x6440_0000 + i).into(), 32).expect("valid"))
        })
        .collect();
    let mut cfg = parse_config(
        "[sets]\nbig = []\n[[rule]]\nname = \"a\"\nsrc = \"@big\"\naction = \"drop\"\n",
        Path::new("t.toml"),
    )
    .expect("valid");
    cfg.sets.get_mut("big").expect("set").entries = crate::model::SetEntries::from_nets(entries);
    let c = compile(&cfg).expect("compiles");
    assert_eq!(c.src4.len(), 1_000_001, "every entry plus /0");
    let distinct: std::collections::BTreeSet<u32> = c.src4.iter().map(|e| e.1).collect();
    assert_eq!(distinct.len(), 2, "members and non-members");
}

// ---------------------------------------------------------------- map limits

fn config(toml: &str) -> Config {
    parse_config(toml, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn limited(toml: &str, limits: Limits) -> Result<Compiled, String> {
    compile_with(&config(toml), &limits).map_err(|e| e.to_string())
}

/// A `[sets]` line with `n` distinct IPv4 /32s from `base`.
fn set_line(name: &str, base: u32, n: u32) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| format!("\"{}\"", std::net::Ipv4Addr::from(base + i)))
        .collect();
    format!("{name} = [{}]\n", items.join(", "))
}

#[test]
fn a_set_too_big_for_its_trie_is_refused_with_the_limit() {
    let toml = format!(
        "[sets]\n{}\n[[rule]]\nname = \"a\"\nsrc = \"@blocklist\"\naction = \"drop\"\n",
        set_line("blocklist", 0x0a00_0000, 10)
    );
    let small = Limits {
        trie_entries: 5,
        ..Limits::default()
    };
    assert_eq!(
        limited(&toml, small).expect_err("over"),
        "t.toml:4:1: set blocklist: 10 IPv4 prefixes exceed the limit of 5 (xw_src4 \
         max_entries); aggregate adjacent prefixes or split the set"
    );
    // The trie holds the set plus /0: 11 entries fit a limit of 11.
    let fits = Limits {
        trie_entries: 11,
        ..Limits::default()
    };
    assert!(limited(&toml, fits).is_ok());
}

#[test]
fn sets_that_fill_a_trie_together_are_named() {
    let toml = format!(
        "[sets]\n{}{}\n[[rule]]\nname = \"a\"\ndst = [\"@one\", \"@two\"]\naction = \"drop\"\n",
        set_line("one", 0x0a00_0000, 4),
        set_line("two", 0x0b00_0000, 3)
    );
    let small = Limits {
        trie_entries: 6,
        ..Limits::default()
    };
    assert_eq!(
        limited(&toml, small).expect_err("over"),
        "t.toml:5:1: dst: 8 IPv4 prefixes from rules and sets (largest sets: one 4, two 3) \
         exceed the limit of 6 (xw_dst4 max_entries); aggregate prefixes or use fewer sets on dst"
    );
}

#[test]
fn ipv6_tries_are_checked_too() {
    let toml =
        "[[rule]]\nname = \"a\"\nsrc = [\"2001:db8::/32\", \"2001:db9::/32\"]\naction = \"drop\"\n";
    let small = Limits {
        trie_entries: 2,
        ..Limits::default()
    };
    let e = limited(toml, small).expect_err("over");
    assert!(
        e.starts_with("t.toml:1:1: src: 3 IPv6 prefixes from rules and sets exceed the limit of 2 (xw_src6 max_entries)"),
        "{e}"
    );
}

#[test]
fn too_many_classes_are_refused_with_the_limit() {
    let mut toml = String::new();
    for i in 0..10 {
        toml.push_str(&format!(
            "[[rule]]\nname = \"r{i}\"\ndport = {}\naction = \"drop\"\n",
            1000 + i
        ));
    }
    let c = limited(&toml, Limits::default()).expect("compiles");
    let small = Limits {
        classes: c.classes.len() - 1,
        ..Limits::default()
    };
    let e = limited(&toml, small).expect_err("over");
    assert!(
        e.starts_with(&format!(
            "t.toml:1:1: {} classes exceed the limit of {} (xw_classes max_entries)",
            c.classes.len(),
            c.classes.len() - 1
        )),
        "{e}"
    );
}

#[test]
fn too_many_rules_and_long_names_are_refused_before_compiling() {
    let mut cfg = config("[[rule]]\nname = \"a\"\nproto = \"tcp\"\naction = \"drop\"\n");
    let rule = cfg.rules[0].clone();
    cfg.rules = vec![rule; abi::MAX_RULES + 1];
    assert_eq!(
        compile(&cfg).expect_err("over").to_string(),
        "t.toml:1:1: 16,385 rules exceed the limit of 16,384 (xw_rules max_entries, XW_MAX_RULES)"
    );
    cfg.rules.truncate(1);
    cfg.rules[0].name = "x".repeat(64);
    let e = compile(&cfg).expect_err("long name").to_string();
    assert!(
        e.ends_with("name is 64 bytes, over the limit of 63 (struct xw_rule name, XW_NAME_LEN)"),
        "{e}"
    );
}

#[test]
fn every_fixed_table_is_checked_against_its_map() {
    let cfg = config(
        "[[rule]]\nname = \"a\"\nproto = \"tcp\"\nsrc = \"10.0.0.0/8\"\naction = \"drop\"\n",
    );
    let good = compile(&cfg).expect("compiles");
    assert!(limits::check_tables(&cfg, &good, &Limits::default()).is_ok());
    let mut bad = good.clone();
    bad.proto.push(0);
    let e = limits::check_tables(&cfg, &bad, &Limits::default()).expect_err("bad");
    assert!(e
        .message
        .starts_with("xw_tables.proto: 258 entries do not match its size 257"));
    let mut bad = good.clone();
    bad.src4_dir.pop();
    let e = limits::check_tables(&cfg, &bad, &Limits::default()).expect_err("bad");
    assert!(e.message.starts_with("xw_tables.src4_dir: 65535 entries"));
    let mut bad = good.clone();
    bad.src4_lens[7] = 1 << 16;
    let e = limits::check_tables(&cfg, &bad, &Limits::default()).expect_err("bad");
    assert!(
        e.message
            .starts_with("xw_tables.src4_lens: entry 7 is 0x10000"),
        "{}",
        e.message
    );
    let mut bad = good;
    bad.classes[0].cands = vec![0; abi::MAX_CANDS + 1];
    let e = limits::check_tables(&cfg, &bad, &Limits::default()).expect_err("bad");
    assert!(e.message.contains("33 candidates"), "{}", e.message);
}

#[test]
fn protection_actions_compile_to_their_codes_and_buckets() {
    let c = compiled(
        "[xdp]\nrate_limit_table = 512\n\
         [[rule]]\nname = \"dns\"\nproto = \"udp\"\ndport = 53\n\
         rate_limit = { pps = 3, burst = 7, by = \"src\" }\n\
         [[rule]]\nname = \"all\"\nrate_limit = { pps = 1000000000, burst = 1000000000, by = \"rule\" }\n\
         [[rule]]\nname = \"ids\"\nredirect = \"eth1\"\n",
    );
    assert_eq!(c.rate_limit_table, 512);
    let (dns, all, ids) = (&c.rules[0], &c.rules[1], &c.rules[2]);
    assert_eq!(
        (dns.action, all.action),
        (abi::ACT_RATE_LIMIT, abi::ACT_RATE_LIMIT)
    );
    assert_eq!(dns.flags & abi::RULE_BY_SRC, abi::RULE_BY_SRC);
    assert_eq!(all.flags & abi::RULE_BY_SRC, 0);
    // 3 pps, 7 packets: 7e9 nanotokens, filled from empty in ceil(7e9 / 3) ns.
    assert_eq!(
        dns.rate,
        RateParams {
            pps: 3,
            cap: 7_000_000_000,
            fill_ns: 2_333_333_334
        }
    );
    // The largest bucket still leaves room for one refill step in 64 bits.
    assert_eq!(all.rate.cap, 1_000_000_000_000_000_000);
    assert!(all.rate.cap.checked_add(all.rate.pps).is_some());
    assert_eq!(all.rate.fill_ns, 1_000_000_000);
    assert_eq!(
        (ids.action, ids.redirect.as_deref()),
        (abi::ACT_REDIRECT, Some("eth1"))
    );
    assert_eq!(ids.rate, RateParams::default());
    // Protection actions are terminal and emit no events by themselves.
    assert!(!c.events.enabled);
    assert!(!c.has_count_rules);
}
