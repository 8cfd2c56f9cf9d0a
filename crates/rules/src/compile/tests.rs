//! Tests of the compiler: classes, directories, candidates.

use std::path::Path;

use super::abi::{CAND_CHECK_SHIFT, CAND_COUNT, CAND_ID_MASK, DIR_ENTRIES, ID_MASK, ID_TRIE};
use super::*;
use crate::parse_config;

fn compiled(toml: &str) -> Compiled {
    let cfg = parse_config(toml, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    compile(&cfg).unwrap_or_else(|e| panic!("{e}"))
}

fn class(c: &Compiled, tagged: u32) -> &Class {
    &c.classes[(tagged & ID_MASK) as usize]
}

#[test]
fn directory_decides_short_prefixes_and_defers_long_ones() {
    let c = compiled(
        "[[rule]]\nname = \"a\"\nsrc = \"10.0.0.0/8\"\naction = \"drop\"\n\
         [[rule]]\nname = \"b\"\nsrc = \"10.1.2.0/24\"\naction = \"pass\"\n",
    );
    assert_eq!(c.src4_dir.len(), DIR_ENTRIES);
    // 10.1.x.x holds a /24: the trie decides.
    assert_eq!(c.src4_dir[(10 << 8) | 1], ID_TRIE);
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
    assert_eq!(
        a >> CAND_CHECK_SHIFT,
        Field::Proto.bit() | Field::Dport.bit()
    );
    assert_eq!(list[1] & CAND_COUNT, CAND_COUNT, "rule b is a count rule");
    assert!(host.1 & abi::ID_TERMINALS != 0 && host.1 & abi::ID_COUNTS != 0);
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
    cfg.sets.get_mut("big").expect("set").entries = entries;
    let c = compile(&cfg).expect("compiles");
    assert_eq!(c.src4.len(), 1_000_001, "every entry plus /0");
    let distinct: std::collections::BTreeSet<u32> = c.src4.iter().map(|e| e.1).collect();
    assert_eq!(distinct.len(), 2, "members and non-members");
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
