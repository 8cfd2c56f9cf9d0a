//! Choosing, for each rule, the field it is indexed on, and filling every
//! class's candidate list.
//!
//! A rule is listed as a candidate only in the classes of its index field, so
//! a packet checks the rules whose most selective condition it satisfies. The
//! index field is the one whose condition admits the smallest share of
//! plausible traffic; an estimate is enough, because a wrong choice only
//! lengthens lists (and an overflowing list falls back to the bitmap scan).

use ipnet::IpNet;

use super::abi::{CAND_CHECK_SHIFT, CAND_COUNT, CAND_DIRECT, CHECK_FIRST, MAX_CANDS};
use super::discrete::{constrains, direct_check};
use super::{Bitmap, Field, Interner, RuleEntry};
use crate::model::{AddrItem, AddrMatch, Conditions, Config, FragMatch};

/// The fields a rule's conditions constrain.
pub(super) fn fields_of(c: &Conditions) -> Vec<Field> {
    Field::ALL
        .iter()
        .copied()
        .filter(|&f| constrains(c, f))
        .collect()
}

fn net_share(net: &IpNet) -> f64 {
    // Share of the family's address space; v6 prefixes beyond /64 are hosts.
    match net {
        IpNet::V4(n) => 0.5f64.powi(i32::from(n.prefix_len())),
        IpNet::V6(n) => 0.5f64.powi(i32::from(n.prefix_len().min(64)) / 2),
    }
}

fn addr_share(cfg: &Config, m: &AddrMatch) -> f64 {
    if m.include.is_empty() {
        return 1.0;
    }
    let mut s = 0.0;
    for item in &m.include {
        s += match item {
            AddrItem::Net(n) => net_share(n),
            AddrItem::Set(name) => cfg.sets.get(name).map_or(0.0, |set| {
                set.entries.iter().map(|n| net_share(&n)).sum::<f64>()
            }),
        };
    }
    s.min(1.0)
}

/// Estimated share of traffic that satisfies the rule's condition on `f`.
fn share(cfg: &Config, c: &Conditions, f: Field) -> f64 {
    match f {
        Field::Src => c.src.as_ref().map_or(1.0, |m| addr_share(cfg, m)),
        Field::Dst => c.dst.as_ref().map_or(1.0, |m| addr_share(cfg, m)),
        // Few protocols carry most traffic.
        Field::Proto => 0.3,
        Field::Sport | Field::Dport => {
            let ranges = if f == Field::Sport {
                &c.sport
            } else {
                &c.dport
            };
            let n: u32 = ranges
                .iter()
                .flatten()
                .map(|r| u32::from(r.hi) - u32::from(r.lo) + 1)
                .sum();
            // A single port is a strong key; wide ranges are not.
            (f64::from(n) / 65_536.0).max(1.0 / 4096.0)
        }
        Field::TcpFlags => 0.5,
        Field::Icmp => match (c.icmp_type, c.icmp_code) {
            (Some(_), _) => 0.01,
            _ => 0.2,
        },
        Field::Family => 0.6,
        Field::Vlan => 1.0 / 4096.0,
        Field::Frag => match c.fragment {
            Some(FragMatch::None) => 0.99,
            _ => 0.01,
        },
    }
}

fn index_field(cfg: &Config, c: &Conditions) -> Option<Field> {
    let mut best: Option<(f64, Field)> = None;
    for f in fields_of(c) {
        let s = share(cfg, c, f);
        if best.is_none_or(|(b, _)| s < b) {
            best = Some((s, f));
        }
    }
    best.map(|(_, f)| f)
}

/// Moves the fields of `check` that one test decides into the rule's direct
/// checks; returns the fields left for the class bitmaps.
fn take_direct(c: &Conditions, check: u32, rule: &mut RuleEntry) -> u32 {
    let mut left = check;
    for f in Field::ALL {
        if check & f.bit() == 0 {
            continue;
        }
        if let Some(k) = direct_check(c, f) {
            rule.checks[f as usize - CHECK_FIRST] = k;
            rule.direct |= f.bit();
            left &= !f.bit();
        }
    }
    left
}

/// Fills every class's candidates and the rules' direct checks; returns the
/// mask of index fields.
pub(super) fn fill_candidates(
    cfg: &Config,
    int: &mut Interner,
    used_fields: u32,
    always_class: u32,
    entries: &mut [RuleEntry],
) -> u32 {
    let n = cfg.rules.len();
    let mut indexed: Vec<Bitmap> = vec![Bitmap::new(n); Field::ALL.len()];
    let mut always = Vec::new();
    // Per rule: the fields still to check once its index field matched.
    let mut check: Vec<u32> = vec![0; n];
    let mut index_fields = 0u32;
    for (r, rule) in cfg.rules.iter().enumerate() {
        let shape: u32 = fields_of(&rule.cond).iter().map(|f| f.bit()).sum();
        match index_field(cfg, &rule.cond) {
            Some(f) => {
                indexed[f as usize].set(r);
                index_fields |= f.bit();
                check[r] = take_direct(&rule.cond, shape & !f.bit(), &mut entries[r]);
            }
            None => always.push(r),
        }
    }
    let tag = |r: usize| {
        let direct = if entries[r].direct != 0 {
            CAND_DIRECT
        } else {
            0
        };
        let id = r as u32 | direct | (check[r] << CAND_CHECK_SHIFT);
        if cfg.rules[r].action.is_terminal() {
            id
        } else {
            id | CAND_COUNT
        }
    };

    for (id, field) in int.field_of.iter().enumerate() {
        let Some(f) = *field else { continue };
        if used_fields & f.bit() == 0 {
            continue;
        }
        let class = &mut int.classes[id];
        let idx = &indexed[f as usize];
        let cands: Vec<u32> = class
            .bits
            .words()
            .iter()
            .zip(idx.words())
            .enumerate()
            .flat_map(|(w, (&a, &b))| {
                let mut m = a & b;
                std::iter::from_fn(move || {
                    if m == 0 {
                        return None;
                    }
                    let bit = m.trailing_zeros() as usize;
                    m &= m - 1;
                    Some(w * 64 + bit)
                })
            })
            .map(tag)
            .collect();
        set_cands(class, cands);
    }
    let cands = always.into_iter().map(tag).collect();
    set_cands(&mut int.classes[always_class as usize], cands);
    index_fields
}

fn set_cands(class: &mut super::Class, cands: Vec<u32>) {
    if cands.len() > MAX_CANDS {
        class.overflow = true;
        class.cands = Vec::new();
    } else {
        class.cands = cands;
    }
}
