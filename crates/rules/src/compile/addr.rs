//! Classes of the address fields, for the LPM tries.
//!
//! Every prefix named by a rule or a set becomes a trie entry; an address
//! whose longest match is prefix P satisfies exactly the rules decided by the
//! prefixes on P's path from the root. Sets are expanded once per set (not
//! per referencing rule), and the class of a path is computed once per
//! distinct set of labels, so a 1,000,000-entry set costs one class.

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{Bitmap, Field, Interner};
use crate::entries::{net4, net6};
use crate::model::{AddrItem, AddrMatch, Config};

/// Compiled trie entries of one address field.
pub(super) struct AddrTables {
    pub v4: Vec<(Ipv4Net, u32)>,
    pub v6: Vec<(Ipv6Net, u32)>,
    pub nonip: u32,
}

/// A label: the rules that a prefix decides, with polarity.
#[derive(Default)]
struct Group {
    include: Vec<usize>,
    exclude: Vec<usize>,
}

/// An address as the walk sorts it: `u32` for IPv4, big-endian bytes for
/// IPv6 (17-byte prefixes instead of the 32 a `u128` would take).
trait Addr: Copy + Ord + Default {
    /// Address bits.
    const BITS: u8;
    /// The address as a number.
    fn value(self) -> u128;
}

impl Addr for u32 {
    const BITS: u8 = 32;
    fn value(self) -> u128 {
        u128::from(self)
    }
}

impl Addr for [u8; 16] {
    const BITS: u8 = 128;
    fn value(self) -> u128 {
        u128::from_be_bytes(self)
    }
}

/// A prefix labelled with a group (before the walk) or a class (after it).
type Labelled<A> = (A, u8, u32);

fn cond(cfg: &Config, r: usize, field: Field) -> Option<&AddrMatch> {
    let c = &cfg.rules[r].cond;
    if field == Field::Src {
        c.src.as_ref()
    } else {
        c.dst.as_ref()
    }
}

/// Trie entries for `field`. Memory: one 12-byte (IPv4) or 24-byte (IPv6)
/// record per prefix, reused in place from labelling to the output.
pub(super) fn compile_addr(cfg: &Config, field: Field, int: &mut Interner) -> AddrTables {
    let n = cfg.rules.len();
    let mut groups: Vec<Group> = Vec::new();
    let mut set_group: HashMap<&str, usize> = HashMap::new();
    let mut v4: Vec<Labelled<u32>> = Vec::new();
    let mut v6: Vec<Labelled<[u8; 16]>> = Vec::new();
    // Rules with no condition on the field, or with only `!` entries, match
    // an address that no prefix decides.
    let mut base = Bitmap::new(n);
    let mut nonip = Bitmap::new(n);
    let mut used = false;

    for r in 0..n {
        let Some(m) = cond(cfg, r, field) else {
            base.set(r);
            nonip.set(r);
            continue;
        };
        used = true;
        if m.include.is_empty() {
            base.set(r);
        }
        for (items, exclude) in [(&m.include, false), (&m.exclude, true)] {
            for item in items {
                let g = match item {
                    AddrItem::Net(net) => {
                        groups.push(Group::default());
                        let g = (groups.len() - 1) as u32;
                        match net.trunc() {
                            IpNet::V4(n4) => v4.push((u32::from(n4.network()), n4.prefix_len(), g)),
                            IpNet::V6(n6) => v6.push((n6.network().octets(), n6.prefix_len(), g)),
                        }
                        g as usize
                    }
                    AddrItem::Set(name) => *set_group.entry(name.as_str()).or_insert_with(|| {
                        groups.push(Group::default());
                        let g = groups.len() - 1;
                        if let Some(set) = cfg.sets.get(name) {
                            let (s4, s6) = (set.entries.v4(), set.entries.v6());
                            v4.reserve_exact(s4.len());
                            v4.extend(s4.iter().map(|&(a, l)| (a, l, g as u32)));
                            v6.reserve_exact(s6.len());
                            v6.extend(s6.iter().map(|&(a, l)| (a, l, g as u32)));
                        }
                        g
                    }),
                };
                if exclude {
                    groups[g].exclude.push(r);
                } else {
                    groups[g].include.push(r);
                }
            }
        }
    }
    if !used {
        return AddrTables {
            v4: Vec::new(),
            v6: Vec::new(),
            nonip: 0,
        };
    }

    let mut classes = PathClasses {
        groups: &groups,
        base: &base,
        field,
        cache: HashMap::new(),
    };
    walk(&mut v4, &mut classes, int);
    walk(&mut v6, &mut classes, int);
    // Same size and alignment: these collect in place, without a copy.
    let v4 = v4.into_iter().map(|(a, l, c)| (net4((a, l)), c)).collect();
    let v6 = v6.into_iter().map(|(a, l, c)| (net6((a, l)), c)).collect();
    let nonip = int.intern(Some(field), nonip);
    AddrTables { v4, v6, nonip }
}

struct PathClasses<'a> {
    groups: &'a [Group],
    base: &'a Bitmap,
    field: Field,
    cache: HashMap<Vec<u32>, u32>,
}

impl PathClasses<'_> {
    fn class(&mut self, key: &[u32], int: &mut Interner) -> u32 {
        if let Some(&c) = self.cache.get(key) {
            return c;
        }
        let mut bits = self.base.clone();
        for &g in key {
            for &r in &self.groups[g as usize].include {
                bits.set(r);
            }
        }
        // `!` entries win over plain ones.
        for &g in key {
            for &r in &self.groups[g as usize].exclude {
                bits.clear(r);
            }
        }
        let c = int.intern(Some(self.field), bits);
        self.cache.insert(key.to_vec(), c);
        c
    }
}

fn contains<A: Addr>(outer: (A, u8), inner: (A, u8)) -> bool {
    if outer.1 > inner.1 {
        return false;
    }
    if outer.1 == 0 {
        return true;
    }
    let shift = u32::from(A::BITS - outer.1);
    (outer.0.value() >> shift) == (inner.0.value() >> shift)
}

/// Replaces the labelled prefixes by the distinct prefixes, each with the
/// class of its root path, in place and ascending; always includes /0.
fn walk<A: Addr>(
    entries: &mut Vec<Labelled<A>>,
    classes: &mut PathClasses<'_>,
    int: &mut Interner,
) {
    entries.sort_unstable();
    // Ancestors: (prefix, number of labels it pushed).
    let mut stack: Vec<((A, u8), usize)> = Vec::new();
    let mut path: Vec<u32> = Vec::new();
    let mut key: Vec<u32> = Vec::new();
    let mut last: Option<(Vec<u32>, u32)> = None;
    let (mut read, mut write) = (0, 0);
    while read < entries.len() {
        let p = (entries[read].0, entries[read].1);
        // Pop ancestors that do not contain p, then push p's labels.
        while let Some(&(top, cnt)) = stack.last() {
            if contains(top, p) {
                break;
            }
            stack.pop();
            path.truncate(path.len() - cnt);
        }
        let start = path.len();
        while read < entries.len() && (entries[read].0, entries[read].1) == p {
            path.push(entries[read].2);
            read += 1;
        }
        stack.push((p, path.len() - start));
        key.clear();
        key.extend_from_slice(&path);
        key.sort_unstable();
        key.dedup();
        // Neighbours mostly share a path: skip the hash lookup then.
        let class = match &last {
            Some((k, c)) if *k == key => *c,
            _ => {
                let c = classes.class(&key, int);
                last = Some((key.clone(), c));
                c
            }
        };
        entries[write] = (p.0, p.1, class);
        write += 1;
    }
    entries.truncate(write);
    if entries.first().is_none_or(|e| e.1 != 0) {
        let root = classes.class(&[], int);
        entries.insert(0, (A::default(), 0, root));
    }
}

/// Per /16 of an IPv4 field: bit `k` set when prefixes of length
/// `LONG4_MIN + k` lie inside (which exact-match tables a lookup tries).
pub(super) fn long4_lens(entries: &[(Ipv4Net, u32)]) -> Vec<u32> {
    if entries.is_empty() {
        return Vec::new();
    }
    let min = super::abi::LONG4_MIN;
    let mut lens = vec![0u32; super::abi::DIR_ENTRIES];
    for (net, _) in entries {
        let len = net.prefix_len();
        if len >= min {
            lens[(u32::from(net.network()) >> 16) as usize] |= 1 << (len - min);
        }
    }
    lens
}

/// The directory of one family's trie: per value of the first 16 address
/// bits, the class of every address there; where a prefix longer than /16
/// lies inside, the class of the /16 itself flagged `ID_TRIE` (the data
/// plane then looks further). Entries carry their hint bits already.
pub(super) fn directory(entries: impl Iterator<Item = (u128, u8, u32)>, max: u8) -> Vec<u32> {
    let bits = super::abi::DIR_BITS as u8;
    // Only prefixes up to /16 (at most 2^17 of them) are kept; longer ones
    // just mark their bucket.
    let mut short: Vec<(u8, usize, u32)> = Vec::new();
    let mut long = vec![false; super::abi::DIR_ENTRIES];
    let mut any = false;
    for (addr, len, id) in entries {
        any = true;
        let bucket = (addr >> (max - bits)) as usize;
        if len <= bits {
            short.push((len, bucket, id));
        } else {
            long[bucket] = true;
        }
    }
    if !any {
        return Vec::new();
    }
    // Shorter prefixes first, so longer ones overwrite: longest match.
    short.sort_by_key(|e| e.0);
    let mut dir = vec![super::abi::ID_TRIE; super::abi::DIR_ENTRIES];
    for (len, bucket, id) in short {
        let span = 1usize << (bits - len);
        let start = bucket & !(span - 1);
        for slot in &mut dir[start..start + span] {
            *slot = id;
        }
    }
    for (slot, long) in dir.iter_mut().zip(long) {
        if long {
            // Keep the /16's own class for lookups that find nothing longer.
            *slot |= super::abi::ID_TRIE;
        }
    }
    dir
}
