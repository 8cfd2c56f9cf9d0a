//! Classes of the address fields, for the LPM tries.
//!
//! Every prefix named by a rule or a set becomes a trie entry; an address
//! whose longest match is prefix P satisfies exactly the rules decided by the
//! prefixes on P's path from the root. Sets are expanded once per set (not
//! per referencing rule), and the class of a path is computed once per
//! distinct set of labels, so a 1,000,000-entry set costs one class.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{Bitmap, Field, Interner};
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

fn cond(cfg: &Config, r: usize, field: Field) -> Option<&AddrMatch> {
    let c = &cfg.rules[r].cond;
    if field == Field::Src {
        c.src.as_ref()
    } else {
        c.dst.as_ref()
    }
}

pub(super) fn compile_addr(cfg: &Config, field: Field, int: &mut Interner) -> AddrTables {
    let n = cfg.rules.len();
    let mut groups: Vec<Group> = Vec::new();
    let mut set_group: HashMap<&str, usize> = HashMap::new();
    let mut prefixes: Vec<(IpNet, u32)> = Vec::new();
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
                        let g = groups.len() - 1;
                        prefixes.push((*net, g as u32));
                        g
                    }
                    AddrItem::Set(name) => *set_group.entry(name.as_str()).or_insert_with(|| {
                        groups.push(Group::default());
                        let g = groups.len() - 1;
                        if let Some(set) = cfg.sets.get(name) {
                            prefixes.extend(set.entries.iter().map(|e| (*e, g as u32)));
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

    let mut v4: Vec<(u128, u8, u32)> = Vec::new();
    let mut v6: Vec<(u128, u8, u32)> = Vec::new();
    for (net, g) in prefixes {
        match net.trunc() {
            IpNet::V4(n4) => v4.push((u128::from(u32::from(n4.network())), n4.prefix_len(), g)),
            IpNet::V6(n6) => v6.push((u128::from(n6.network()), n6.prefix_len(), g)),
        }
    }
    let mut classes = PathClasses {
        groups: &groups,
        base: &base,
        field,
        cache: HashMap::new(),
    };
    let v4 = walk(v4, 32, &mut classes, int)
        .into_iter()
        .map(|(a, l, c)| {
            (
                Ipv4Net::new(Ipv4Addr::from(a as u32), l).unwrap_or_default(),
                c,
            )
        })
        .collect();
    let v6 = walk(v6, 128, &mut classes, int)
        .into_iter()
        .map(|(a, l, c)| (Ipv6Net::new(Ipv6Addr::from(a), l).unwrap_or_default(), c))
        .collect();
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
    fn class(&mut self, key: Vec<u32>, int: &mut Interner) -> u32 {
        if let Some(&c) = self.cache.get(&key) {
            return c;
        }
        let mut bits = self.base.clone();
        for &g in &key {
            for &r in &self.groups[g as usize].include {
                bits.set(r);
            }
        }
        // `!` entries win over plain ones.
        for &g in &key {
            for &r in &self.groups[g as usize].exclude {
                bits.clear(r);
            }
        }
        let c = int.intern(Some(self.field), bits);
        self.cache.insert(key, c);
        c
    }
}

fn contains(outer: (u128, u8), inner: (u128, u8), max: u8) -> bool {
    if outer.1 > inner.1 {
        return false;
    }
    if outer.1 == 0 {
        return true;
    }
    let shift = u32::from(max - outer.1);
    (outer.0 >> shift) == (inner.0 >> shift)
}

/// Assigns each distinct prefix the class of its root path; always includes /0.
fn walk(
    mut entries: Vec<(u128, u8, u32)>,
    max: u8,
    classes: &mut PathClasses<'_>,
    int: &mut Interner,
) -> Vec<(u128, u8, u32)> {
    entries.sort_unstable();
    let mut out = Vec::new();
    // Ancestors: (prefix, number of labels it pushed).
    let mut stack: Vec<((u128, u8), usize)> = Vec::new();
    let mut path: Vec<u32> = Vec::new();
    if entries.first().is_none_or(|e| e.1 != 0) {
        out.push((0, 0, classes.class(Vec::new(), int)));
    }
    let mut i = 0;
    while i < entries.len() {
        let p = (entries[i].0, entries[i].1);
        let start = path.len();
        while i < entries.len() && (entries[i].0, entries[i].1) == p {
            path.push(entries[i].2);
            i += 1;
        }
        // Pop ancestors that do not contain p (their labels sit below `start`).
        let mine: Vec<u32> = path.drain(start..).collect();
        while let Some(&(top, cnt)) = stack.last() {
            if contains(top, p, max) {
                break;
            }
            stack.pop();
            path.truncate(path.len() - cnt);
        }
        path.extend_from_slice(&mine);
        stack.push((p, mine.len()));
        let mut key = path.clone();
        key.sort_unstable();
        key.dedup();
        out.push((p.0, p.1, classes.class(key, int)));
    }
    out
}

/// The directory of one family's trie: per value of the first 16 address
/// bits, the class of every address there; where a prefix longer than /16
/// lies inside, the class of the /16 itself flagged `ID_TRIE` (the data
/// plane then looks further). Entries carry their hint bits already.
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

pub(super) fn directory(entries: impl Iterator<Item = (u128, u8, u32)>, max: u8) -> Vec<u32> {
    let bits = super::abi::DIR_BITS as u8;
    let mut list: Vec<(u128, u8, u32)> = entries.collect();
    if list.is_empty() {
        return Vec::new();
    }
    list.sort_by_key(|e| e.1);
    let mut dir = vec![super::abi::ID_TRIE; super::abi::DIR_ENTRIES];
    for &(addr, len, id) in &list {
        let bucket = (addr >> (max - bits)) as usize;
        if len <= bits {
            // Shorter prefixes first, so longer ones overwrite: longest match.
            let span = 1usize << (bits - len);
            let start = bucket & !(span - 1);
            for slot in &mut dir[start..start + span] {
                *slot = id;
            }
        } else {
            dir[bucket] |= super::abi::ID_TRIE;
        }
    }
    dir
}
