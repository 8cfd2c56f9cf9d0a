//! IPv4 multibit-trie nodes: the /16s that hold prefixes longer than /16,
//! answered by two array loads instead of one exact-match probe per prefix
//! length present (`bpf/classify.h`, `node4_class`).
//!
//! A /16 in node mode has a /24 node: 256 entries, one per /24 inside it,
//! each the class of that /24 or (where prefixes longer than /24 lie inside)
//! the index of a /32 node with one entry per address. Prefixes are expanded
//! into the entries, longer over shorter, so a lookup never searches. A node
//! is 1 KiB, so the /16s go to nodes densest first (prefixes per node) within
//! a budget of nodes per field; the rest keep the exact-match tables.
//!
//! A /16 that holds exactly one longer prefix needs no node: a lone entry
//! (mask, value, class inside, class outside) answers it with one load
//! instead of two, in 16 bytes instead of one or two KiB. Sparse sets —
//! hosts spread over the address space — are mostly such /16s.

use ipnet::Ipv4Net;

use super::abi::{DIR_BITS, ID_LONE, ID_NODE, ID_TRIE, LONE_MASK, LONG4_MIN, NODE_FANOUT};

/// One node: the class (or, in a /24 node, `ID_NODE | index`) per range.
pub type Node4 = [u32; NODE_FANOUT];

/// The one longer prefix of a /16 (`struct xw_lone4`): addresses `a` with
/// `a & mask == want` are in class `inside`, the rest of the /16 in
/// `outside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lone4 {
    /// The prefix's mask (host order).
    pub mask: u32,
    /// The prefix's address (host order, masked).
    pub want: u32,
    /// The prefix's class.
    pub inside: u32,
    /// The class of the rest of the /16.
    pub outside: u32,
}

impl Lone4 {
    /// The class of address `a` (in this entry's /16).
    #[must_use]
    pub fn class_of(&self, a: u32) -> u32 {
        if a & self.mask == self.want {
            self.inside
        } else {
            self.outside
        }
    }
}

/// The nodes of one address field (indices from 0; the loader offsets them
/// by generation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nodes4 {
    /// /24 nodes, one per /16 in node mode.
    pub n24: Vec<Node4>,
    /// /32 nodes, one per /24 holding prefixes longer than /24.
    pub n32: Vec<Node4>,
    /// Lone prefixes, one per /16 that holds a single longer prefix.
    pub lone: Vec<Lone4>,
}

impl Nodes4 {
    /// Nodes in all (what the budget counts; lone entries are not nodes).
    #[must_use]
    pub fn len(&self) -> usize {
        self.n24.len() + self.n32.len()
    }

    /// Whether no /16 is in node or lone mode.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n24.is_empty() && self.lone.is_empty()
    }
}

/// A /16 with long prefixes: where they are in the entries, and its cost.
struct Run {
    bucket: usize,
    start: usize,
    end: usize,
    nodes: usize,
}

fn bucket_of(net: &Ipv4Net) -> usize {
    (u32::from(net.network()) >> (32 - DIR_BITS)) as usize
}

/// The runs of prefixes over /16 per /16. `entries` is ascending by
/// (address, length), as the compiler makes it, so a /16's long prefixes
/// are contiguous among the long ones.
fn runs(entries: &[(Ipv4Net, u32)]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    let mut last24: Option<u32> = None;
    for (i, (net, _)) in entries.iter().enumerate() {
        if net.prefix_len() < LONG4_MIN {
            continue;
        }
        let b = bucket_of(net);
        match out.last_mut() {
            Some(r) if r.bucket == b => r.end = i + 1,
            _ => {
                out.push(Run {
                    bucket: b,
                    start: i,
                    end: i + 1,
                    nodes: 1,
                });
                last24 = None;
            }
        }
        if net.prefix_len() > 24 {
            let s24 = u32::from(net.network()) >> 8;
            if last24 != Some(s24) {
                last24 = Some(s24);
                if let Some(r) = out.last_mut() {
                    r.nodes += 1;
                }
            }
        }
    }
    out
}

/// Fills `node[lo..lo + span]` (the prefix's ranges) with `class`.
fn expand(node: &mut Node4, index: usize, span: usize, class: u32) {
    let lo = index & !(span - 1);
    for e in &mut node[lo..lo + span] {
        *e = class;
    }
}

/// Builds the node of one /16 from its long prefixes (ascending, so an
/// ancestor always comes before its descendants and is overwritten by them).
fn build_run(entries: &[(Ipv4Net, u32)], base: u32, nodes: &mut Nodes4) -> u32 {
    let mut n24: Node4 = [base; NODE_FANOUT];
    for (net, class) in entries {
        let a = u32::from(net.network());
        let len = u32::from(net.prefix_len());
        let x = ((a >> 8) & 0xff) as usize;
        if len <= 24 {
            expand(&mut n24, x, 1 << (24 - len), *class);
            continue;
        }
        if n24[x] & ID_NODE == 0 {
            nodes.n32.push([n24[x]; NODE_FANOUT]);
            n24[x] = ID_NODE | (nodes.n32.len() - 1) as u32;
        }
        let i = (n24[x] & !ID_NODE) as usize;
        expand(
            &mut nodes.n32[i],
            (a & 0xff) as usize,
            1 << (32 - len),
            *class,
        );
    }
    nodes.n24.push(n24);
    (nodes.n24.len() - 1) as u32
}

/// The lone entry of a /16 whose directory entry (without `ID_TRIE`) is
/// `base` and whose one longer prefix is `net` of class `class`.
fn lone(net: &Ipv4Net, class: u32, base: u32) -> Lone4 {
    Lone4 {
        mask: u32::from(net.netmask()),
        // network() is already masked.
        want: u32::from(net.network()),
        inside: class,
        outside: base,
    }
}

/// Moves /16s from the exact-match tables: each /16 with one longer prefix
/// to a lone entry (`ID_TRIE | ID_NODE | ID_LONE | index`) while `lones`
/// allows, then the others to nodes, densest first, while `budget` nodes
/// allow (`ID_TRIE | ID_NODE | index`); their length masks become 0.
/// `entries` is the field's IPv4 prefixes, ascending; `dir` and `lens` its
/// directory and length masks (empty if the field is unused).
pub(super) fn build(
    entries: &[(Ipv4Net, u32)],
    dir: &mut [u32],
    lens: &mut [u32],
    budget: usize,
    lones: usize,
) -> Nodes4 {
    let mut nodes = Nodes4::default();
    if dir.is_empty() {
        return nodes;
    }
    let mut runs = runs(entries);
    // At most one a /16, so the index stays far below ID_LONE.
    runs.retain(|r| {
        if r.end - r.start != 1 || nodes.lone.len() >= lones {
            return true;
        }
        let (net, class) = &entries[r.start];
        let base = dir[r.bucket] & !ID_TRIE;
        let idx = nodes.lone.len() as u32;
        debug_assert!(idx <= LONE_MASK);
        nodes.lone.push(lone(net, *class, base));
        dir[r.bucket] = ID_TRIE | ID_NODE | ID_LONE | idx;
        lens[r.bucket] = 0;
        false
    });
    // Densest first: prefixes per node, compared without division.
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&runs[a], &runs[b]);
        ((rb.end - rb.start) * ra.nodes)
            .cmp(&((ra.end - ra.start) * rb.nodes))
            .then(ra.bucket.cmp(&rb.bucket))
    });
    let mut left = budget;
    let mut chosen = vec![false; runs.len()];
    for i in order {
        if runs[i].nodes <= left {
            left -= runs[i].nodes;
            chosen[i] = true;
        }
    }
    // In address order, so node indices follow addresses.
    for (r, _) in runs.iter_mut().zip(&chosen).filter(|(_, &c)| c) {
        let base = dir[r.bucket] & !ID_TRIE;
        let idx = build_run(&entries[r.start..r.end], base, &mut nodes);
        dir[r.bucket] = ID_TRIE | ID_NODE | idx;
        lens[r.bucket] = 0;
    }
    nodes
}

/// The prefixes of `entries` that the exact-match table holds: over /16,
/// in a /16 that is not in node mode.
pub fn hashed4<'a>(
    entries: &'a [(Ipv4Net, u32)],
    dir: &'a [u32],
) -> impl Iterator<Item = &'a (Ipv4Net, u32)> + 'a {
    entries.iter().filter(move |(net, _)| {
        net.prefix_len() >= LONG4_MIN && dir.get(bucket_of(net)).is_none_or(|d| d & ID_NODE == 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::abi::{DIR_ENTRIES, ID_MASK};

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("prefix")
    }

    /// The class the data plane finds for `a` (what `node4_class` and
    /// `long4_class` do), with a longest-match search for hash mode.
    fn lookup(entries: &[(Ipv4Net, u32)], dir: &[u32], nodes: &Nodes4, a: u32) -> u32 {
        let d = dir[(a >> 16) as usize];
        if d & ID_TRIE == 0 {
            return d;
        }
        if d & ID_NODE != 0 && d & ID_LONE != 0 {
            return nodes.lone[(d & LONE_MASK) as usize].class_of(a);
        }
        if d & ID_NODE != 0 {
            let e = nodes.n24[(d & ID_MASK) as usize][((a >> 8) & 0xff) as usize];
            if e & ID_NODE == 0 {
                return e;
            }
            return nodes.n32[(e & ID_MASK) as usize][(a & 0xff) as usize];
        }
        hashed4(entries, dir)
            .filter(|(n, _)| n.contains(&std::net::Ipv4Addr::from(a)))
            .max_by_key(|(n, _)| n.prefix_len())
            .map_or(d & !ID_TRIE, |e| e.1)
    }

    /// Longest match over all entries: the truth.
    fn truth(entries: &[(Ipv4Net, u32)], a: u32) -> u32 {
        entries
            .iter()
            .filter(|(n, _)| n.contains(&std::net::Ipv4Addr::from(a)))
            .max_by_key(|(n, _)| n.prefix_len())
            .map_or(u32::MAX, |e| e.1)
    }

    fn setup(list: &[(&str, u32)]) -> (Vec<(Ipv4Net, u32)>, Vec<u32>, Vec<u32>) {
        let mut entries: Vec<(Ipv4Net, u32)> = list.iter().map(|&(s, c)| (net(s), c)).collect();
        entries.sort_by_key(|(n, _)| (u32::from(n.network()), n.prefix_len()));
        let mut dir = vec![0u32; DIR_ENTRIES];
        let mut lens = vec![0u32; DIR_ENTRIES];
        // The directory as the compiler makes it: short prefixes expanded,
        // ID_TRIE where longer ones lie inside.
        for (n, c) in &entries {
            let b = bucket_of(n);
            if n.prefix_len() <= 16 {
                let span = 1usize << (16 - n.prefix_len());
                for d in &mut dir[b..b + span] {
                    *d = *c;
                }
            }
        }
        for (n, _) in &entries {
            if n.prefix_len() >= LONG4_MIN {
                dir[bucket_of(n)] |= ID_TRIE;
                lens[bucket_of(n)] |= 1 << (n.prefix_len() - LONG4_MIN);
            }
        }
        (entries, dir, lens)
    }

    const LIST: &[(&str, u32)] = &[
        ("0.0.0.0/0", 1),
        ("10.0.0.0/8", 2),
        ("10.1.0.0/17", 3),
        ("10.1.4.0/22", 4),
        ("10.1.5.0/24", 5),
        ("10.1.5.128/25", 6),
        ("10.1.5.130/31", 7),
        ("10.1.5.131/32", 8),
        ("10.1.200.7/32", 9),
        ("10.2.0.0/32", 10),
        ("10.2.0.1/32", 11),
        ("10.2.0.2/32", 12),
        ("10.2.9.9/32", 13),
        ("172.16.5.4/30", 16),
        ("192.168.0.0/16", 14),
        ("192.168.3.64/26", 15),
    ];

    fn probes() -> Vec<u32> {
        let mut v = Vec::new();
        for (n, _) in LIST {
            let a = u32::from(net(n).network());
            for d in [0u32, 1, 2, 3, 127, 128, 129, 130, 131, 132, 255, 256] {
                v.push(a.wrapping_add(d));
                v.push(a.wrapping_sub(d));
            }
            v.push(u32::from(net(n).broadcast()));
        }
        v
    }

    #[test]
    fn nodes_answer_like_longest_match_within_and_beyond_the_budget() {
        for (budget, lones) in [0, 1, 3, 4, 5, 100]
            .into_iter()
            .flat_map(|b| [(b, 0), (b, 1), (b, 100)])
        {
            let (entries, mut dir, mut lens) = setup(LIST);
            let nodes = build(&entries, &mut dir, &mut lens, budget, lones);
            assert!(
                nodes.len() <= budget && nodes.lone.len() <= lones,
                "budget {budget}, {lones}: {} nodes, {} lone",
                nodes.len(),
                nodes.lone.len()
            );
            for a in probes() {
                assert_eq!(
                    lookup(&entries, &dir, &nodes, a),
                    truth(&entries, a),
                    "budget {budget}, {lones} lone, address {}",
                    std::net::Ipv4Addr::from(a)
                );
            }
        }
    }

    #[test]
    fn densest_sixteens_go_first_and_leave_the_hash_tables() {
        let (entries, mut dir, mut lens) = setup(LIST);
        // 10.1/16: 7 prefixes, 3 nodes (its /24 node, /32 nodes for 10.1.5
        // and 10.1.200); 10.2/16: 4 prefixes, 3 nodes; 172.16/16 and
        // 192.168/16: 1 prefix each, a lone entry whatever the budget.
        let nodes = build(&entries, &mut dir, &mut lens, 4, usize::MAX);
        assert_eq!(nodes.n24.len(), 1);
        assert_eq!(nodes.n32.len(), 2);
        assert_eq!(nodes.lone.len(), 2);
        assert_eq!(dir[(10 << 8) | 1], ID_TRIE | ID_NODE);
        assert_eq!(lens[(10 << 8) | 1], 0);
        assert_ne!(lens[(10 << 8) | 2], 0, "10.2/16 stays hashed");
        let hashed: Vec<String> = hashed4(&entries, &dir).map(|e| e.0.to_string()).collect();
        assert_eq!(
            hashed,
            ["10.2.0.0/32", "10.2.0.1/32", "10.2.0.2/32", "10.2.9.9/32"]
        );
        let (_, mut dir, mut lens) = setup(LIST);
        let all = build(&entries, &mut dir, &mut lens, usize::MAX, usize::MAX);
        assert_eq!((all.n24.len(), all.n32.len(), all.lone.len()), (2, 4, 2));
        assert_eq!(hashed4(&entries, &dir).count(), 0);
    }

    #[test]
    fn a_sixteen_with_one_long_prefix_is_a_lone_entry() {
        let (entries, mut dir, mut lens) = setup(LIST);
        let nodes = build(&entries, &mut dir, &mut lens, 0, usize::MAX);
        // In address order: 172.16/16 first.
        let b = (192 << 8) | 168;
        assert_eq!(dir[b], ID_TRIE | ID_NODE | ID_LONE | 1);
        assert_eq!(lens[b], 0);
        assert_eq!(
            nodes.lone[1],
            Lone4 {
                mask: 0xffff_ffc0,
                want: u32::from(std::net::Ipv4Addr::new(192, 168, 3, 64)),
                inside: 15,
                outside: 14,
            }
        );
        // Outside any prefix of LIST but 0.0.0.0/0 (class 1).
        assert_eq!(nodes.lone[0].outside, 1);
        assert_eq!(
            nodes.lone[0].class_of(u32::from(std::net::Ipv4Addr::new(172, 16, 5, 7))),
            16
        );
        assert_eq!(
            nodes.lone[0].class_of(u32::from(std::net::Ipv4Addr::new(172, 16, 5, 8))),
            1
        );
        // No nodes within a budget of none: only lone entries.
        assert_eq!(nodes.len(), 0);
        assert!(!nodes.is_empty());
    }

    #[test]
    fn an_unused_field_has_no_nodes() {
        let nodes = build(&[], &mut [], &mut [], 100, 100);
        assert!(nodes.is_empty());
    }
}
