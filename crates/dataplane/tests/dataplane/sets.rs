//! Set changes in place: the running program switches to new address
//! tables with one write; packets follow the new sets exactly (checked
//! against the reference matcher), counters continue, the old generation's
//! entries are gone afterwards, a packet listed in both sets is never
//! passed while tables switch under it, and a change beyond sets is refused.

use libbpf_rs::{MapCore, MapFlags};
use xdpwall_dataplane::testrun::{XDP_DROP, XDP_PASS};
use xdpwall_dataplane::types::xw_tables;
use xdpwall_dataplane::update::{self, NotInPlace};
use xdpwall_rules::compile::{abi, compile_with, Limits};
use xdpwall_rules::{Action, Conditions};

use super::fixtures::*;

// 192.0/16 and 203.0/16 hold one prefix over /16 in each set (lone
// entries), 198.51/16 two (trie nodes).
const S1: &[&str] = &[
    "192.0.2.0/24",
    "198.51.99.1",
    "198.51.100.7",
    "203.0.113.128/25",
    "2001:db8::/48",
    "2001:db8:1::1",
];
const S2: &[&str] = &[
    "192.0.2.128/25",
    "198.51.99.2",
    "198.51.100.9",
    "203.0.113.0/24",
    "2001:db8:2::/48",
    "2001:db8::5",
];

fn cfg(set: &[&str], web: u16) -> Cfg {
    Cfg::new()
        .set("block", set)
        .rule(
            "block",
            Conditions {
                src: addr(&["@block"]),
                ..any()
            },
            Action::Drop,
        )
        .rule(
            "web",
            Conditions {
                proto: Some(6),
                dport: port(web),
                ..any()
            },
            Action::Pass,
        )
}

/// Addresses in the /16s of S1's and S2's prefixes but outside both sets,
/// and on the edges of the lone prefixes (none is blocked by either set).
const EDGES: &[&str] = &[
    "192.0.3.1",
    "192.0.1.255",
    "198.51.99.3",
    "198.51.101.7",
    "203.0.112.255",
    "203.0.114.0",
];

/// Every edge address is judged as the reference judges it, and none is
/// blocked.
fn check_edges(fw: &Fw) {
    for a in EDGES {
        assert_eq!(fw.check(&udp4(a, "192.0.2.254", 9, 53)), None, "{a}");
    }
}

fn probes() -> Vec<Pkt> {
    let v4 = [
        "192.0.2.1",
        "192.0.2.200",
        "198.51.100.7",
        "198.51.100.9",
        "203.0.113.5",
        "203.0.113.200",
        "10.0.0.1",
    ];
    let v6 = [
        "2001:db8::1",
        "2001:db8::5",
        "2001:db8:1::1",
        "2001:db8:2::1",
        "2001:db9::1",
    ];
    let mut out: Vec<Pkt> = v4.iter().map(|s| udp4(s, "192.0.2.254", 9, 53)).collect();
    out.extend(v6.iter().map(|s| udp6(s, "2001:db8:ff::1", 9, 53)));
    out
}

/// Prefix entries of generation `gen` in the four prefix tables.
fn entries_of(fw: &Fw, gen: u32) -> usize {
    let m = &fw.inst.maps;
    let v4 = [&m.src4, &m.dst4]
        .iter()
        .flat_map(|t| t.keys().collect::<Vec<_>>())
        .filter(|k| u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) >> 8 == gen)
        .count();
    // The generation is the first word after the prefix length.
    let v6 = [&m.src6, &m.dst6]
        .iter()
        .flat_map(|t| t.keys().collect::<Vec<_>>())
        .filter(|k| u32::from_ne_bytes([k[4], k[5], k[6], k[7]]) == gen)
        .count();
    v4 + v6
}

/// The source directory entry of IPv4 /16 `bucket` in generation `gen`.
fn dir4_entry(fw: &Fw, gen: u32, bucket: u32) -> u32 {
    let v = fw
        .inst
        .maps
        .tables
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .expect("read xw_tables")
        .expect("its one entry");
    let at =
        std::mem::offset_of!(xw_tables, src4_dir) + 4 * (gen << abi::DIR_BITS | bucket) as usize;
    u32::from_ne_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]])
}

/// No node or lone budget: every IPv4 prefix over /16 is in the
/// exact-match tables.
fn hashed() -> Limits {
    Limits {
        nodes4: 0,
        lone4: 0,
        ..Limits::default()
    }
}

#[test]
fn set_changes_switch_tables_in_place() {
    if !root("set_changes_switch_tables_in_place") {
        return;
    }
    switch_in_place(Limits::default());
}

#[test]
fn set_changes_switch_exact_match_tables_in_place() {
    if !root("set_changes_switch_exact_match_tables_in_place") {
        return;
    }
    switch_in_place(hashed());
}

fn switch_in_place(limits: Limits) {
    let nodes = limits.nodes4 > 0 && limits.lone4 > 0;
    let mut fw = cfg(S1, 80).load_with(limits);
    let prog = fw.inst.prog_id;
    let mut blocked = 0;
    for p in probes() {
        blocked += u64::from(fw.check(&p) == Some("block"));
    }
    assert_eq!(blocked, 7, "S1 lists 7 of the probes");
    check_edges(&fw);
    assert_eq!(
        fw.hit(&udp4("192.0.2.1", "192.0.2.254", 9, 53)),
        Some("block")
    );

    assert_eq!(fw.update_sets(cfg(S2, 80).0), Ok(1));
    assert_eq!(fw.inst.prog_id, prog);
    let mut now = 0;
    for p in probes() {
        now += u64::from(fw.check(&p) == Some("block"));
    }
    assert_eq!(now, 6, "S2 lists 6 of the probes");
    check_edges(&fw);
    assert_eq!(fw.hit(&udp4("192.0.2.1", "192.0.2.254", 9, 53)), None);
    assert_eq!(
        fw.hit(&udp4("203.0.113.5", "192.0.2.254", 9, 53)),
        Some("block")
    );
    // Counters are untouched by the switch: every block counted so far.
    assert_eq!(fw.counter("block").packets, blocked + now + 2);
    // Generation 0's prefixes are gone; generation 1 holds S2's (4 IPv4
    // over /16 — in lone entries and trie nodes when there is a budget —
    // and 3 IPv6) plus the /0 of the IPv6 trie.
    assert_eq!(entries_of(&fw, 0), 0);
    let live = entries_of(&fw, 1);
    assert_eq!(live, fw.compiled.src6.len() + if nodes { 0 } else { 4 });
    // In generation 1, 192.0/16's directory entry leads to its lone entry
    // in generation 1's half of the lone array, and 198.51/16's to its /24
    // node in generation 1's half of the node array.
    let lone = dir4_entry(&fw, 1, 0xc000);
    let node = dir4_entry(&fw, 1, 0xc633);
    for d in [lone, node] {
        assert_eq!(d & abi::ID_TRIE, abi::ID_TRIE);
    }
    if nodes {
        let half = fw.inst.maps.src4_lone.max_entries() / 2;
        assert_eq!(
            lone & (abi::ID_NODE | abi::ID_LONE),
            abi::ID_NODE | abi::ID_LONE
        );
        assert!(
            (lone & abi::LONE_MASK) >= half,
            "lone entry {lone:#x} in generation 1's half"
        );
        let half = fw.inst.maps.src4_n24.max_entries() / 2;
        assert_eq!(node & (abi::ID_NODE | abi::ID_LONE), abi::ID_NODE);
        assert!(
            (node & abi::ID_MASK) >= half,
            "node {node:#x} in generation 1's half"
        );
    } else {
        assert_eq!(lone & abi::ID_NODE, 0);
        assert_eq!(node & abi::ID_NODE, 0);
    }

    // And back: generation 0 again.
    assert_eq!(fw.update_sets(cfg(S1, 80).0), Ok(0));
    for p in probes() {
        fw.check(&p);
    }
    assert_eq!(entries_of(&fw, 1), 0);

    // A rule change is not a set change: refused, nothing switched.
    assert_eq!(
        fw.update_sets(cfg(S1, 8080).0),
        Err(NotInPlace::NotOnlySets)
    );
    assert_eq!(update::live_generation(&fw.inst).expect("gen"), 0);
    assert_eq!(fw.hit(&tcp4("10.0.0.1", "192.0.2.254", 9, 80)), Some("web"));
}

/// While another thread switches the tables back and forth, a source in
/// both sets is dropped every time and one in neither passes every time:
/// no packet sees a mix, or no table at all.
#[test]
fn packets_never_see_a_half_switched_set() {
    if !root("packets_never_see_a_half_switched_set") {
        return;
    }
    never_half_switched(Limits::default());
    never_half_switched(hashed());
}

fn never_half_switched(limits: Limits) {
    let fw = cfg(S1, 80).load_with(limits);
    let (c1, c2) = (
        compile_with(&cfg(S1, 80).0, &limits).expect("compile"),
        compile_with(&cfg(S2, 80).0, &limits).expect("compile"),
    );
    let both = udp4("192.0.2.200", "192.0.2.254", 9, 53).bytes();
    let both6 = udp6("2001:db8::5", "2001:db8:ff::1", 9, 53).bytes();
    let neither = udp4("10.0.0.1", "192.0.2.254", 9, 53).bytes();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let checker = s.spawn(|| {
            let mut runs = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (pkt, want) in [(&both, XDP_DROP), (&both6, XDP_DROP), (&neither, XDP_PASS)] {
                    let (v, _) = fw.inst.time_run(pkt, 64).expect("run");
                    assert_eq!(v, want, "a packet saw a half-switched set");
                    runs += 64;
                }
            }
            runs
        });
        let mut live = &c1;
        for i in 0..40 {
            let next = if i % 2 == 0 { &c2 } else { &c1 };
            update::check(&fw.inst, live, next).expect("in place");
            update::switch_sets(&fw.inst, next).expect("switch");
            update::retire(&fw.inst, live).expect("retire");
            live = next;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let runs = checker.join().expect("checker");
        assert!(runs > 0);
    });
}

/// A set change that needs more trie nodes than the live program's half of
/// the node array holds is refused (the caller then loads a new program),
/// and nothing is switched.
#[test]
fn a_set_outgrowing_its_nodes_needs_a_new_program() {
    if !root("a_set_outgrowing_its_nodes_needs_a_new_program") {
        return;
    }
    let mut fw = cfg(S1, 80).load();
    // 64 addresses, each in its own /24: 64 /32 nodes.
    let many: Vec<String> = (0..64).map(|i| format!("100.64.{i}.1")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        fw.update_sets(cfg(&many, 80).0),
        Err(NotInPlace::Full("xw_src4_n32"))
    );
    assert_eq!(update::live_generation(&fw.inst).expect("gen"), 0);
    assert_eq!(
        fw.hit(&udp4("192.0.2.1", "192.0.2.254", 9, 53)),
        Some("block")
    );
    // 40 addresses, each alone in its /16: 40 lone entries, where S1 has 2.
    let lone: Vec<String> = (0..40).map(|i| format!("100.{}.0.1", 64 + i)).collect();
    let lone: Vec<&str> = lone.iter().map(String::as_str).collect();
    assert_eq!(
        fw.update_sets(cfg(&lone, 80).0),
        Err(NotInPlace::Full("xw_src4_lone"))
    );
    assert_eq!(update::live_generation(&fw.inst).expect("gen"), 0);
    // What a reload then does: a new program, sized for the new set.
    let next = fw.successor(cfg(&many, 80).0);
    assert_eq!(
        next.hit(&udp4("100.64.63.1", "192.0.2.254", 9, 53)),
        Some("block")
    );
    assert_eq!(next.hit(&udp4("100.64.63.2", "192.0.2.254", 9, 53)), None);
    assert_eq!(next.hit(&udp4("192.0.2.1", "192.0.2.254", 9, 53)), None);
}
