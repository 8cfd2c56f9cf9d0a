//! Choosing, for each rule, the field it is indexed on, and filling every
//! class's candidate list.
//!
//! A rule is listed as a candidate only in the classes of its index field, so
//! a packet checks the rules whose most selective condition it satisfies. The
//! index field is the one whose condition admits the smallest share of
//! plausible traffic; an estimate is enough, because a wrong choice only
//! lengthens lists (and an overflowing list falls back to the bitmap scan).

use ipnet::IpNet;

use super::abi::{CAND_CHECK_SHIFT, CAND_COUNT, CAND_DIRECT, CHECKS, CHECK_FIRST, MAX_CANDS};
use super::discrete::{constrains, direct_check, pack, Check, Packed};
use super::{Bitmap, Class, Field, Interner, RuleEntry};
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

/// The rule's most selective field among `allowed` (bit per field), with
/// its share.
fn most_selective(cfg: &Config, c: &Conditions, allowed: u32) -> Option<(f64, Field)> {
    let mut best: Option<(f64, Field)> = None;
    for f in fields_of(c) {
        if allowed & f.bit() == 0 {
            continue;
        }
        let s = share(cfg, c, f);
        if best.is_none_or(|(b, _)| s < b) {
            best = Some((s, f));
        }
    }
    best
}

/// Each rule's most selective field (`None`: it constrains nothing).
fn selective(cfg: &Config) -> Vec<Option<Field>> {
    cfg.rules
        .iter()
        .map(|r| most_selective(cfg, &r.cond, u32::MAX).map(|(_, f)| f))
        .collect()
}

/// What looking field `f` up ahead of the walk costs every packet, in
/// checks of one candidate (~10 ns under BPF_PROG_TEST_RUN here; a table
/// lookup and its hints ~1 ns, an address a little more, a VLAN two: the
/// outer and the inner tag). Session 12 measurement, BENCHMARKS.md.
fn lookup_cost(f: Field) -> f64 {
    match f {
        Field::Src | Field::Dst => 0.15,
        Field::Vlan => 0.2,
        _ => 0.1,
    }
}

/// Each rule's index field (`None`: it constrains nothing, so it is a
/// candidate for every packet).
///
/// First the most selective field of each rule. Then, since every index
/// field costs every packet a lookup, a field indexing only a few rules is
/// given up when moving them to their most selective field among the
/// remaining index fields costs less in expected candidate checks (the
/// difference of the shares) than the lookup it saves: a handful of VLAN
/// rules no longer make every packet look up both tags.
fn assign(cfg: &Config) -> Vec<Option<Field>> {
    let mut idx = selective(cfg);
    // Each round gives up one field or stops: at most one per field.
    for _ in 0..Field::ALL.len() {
        let mut count = [0usize; Field::ALL.len()];
        for f in idx.iter().flatten() {
            count[*f as usize] += 1;
        }
        let set: u32 = Field::ALL
            .iter()
            .filter(|f| count[**f as usize] > 0)
            .map(|f| f.bit())
            .sum();
        let mut by_count: Vec<Field> = Field::ALL
            .iter()
            .copied()
            .filter(|f| count[*f as usize] > 0)
            .collect();
        by_count.sort_by_key(|f| count[*f as usize]);
        let dropped = by_count
            .into_iter()
            .find_map(|f| moved_off(cfg, &idx, f, set & !f.bit()).map(|m| (f, m)));
        let Some((_, moves)) = dropped else { break };
        for (r, g) in moves {
            idx[r] = Some(g);
        }
    }
    idx
}

/// The moves that take every rule indexed on `f` to one of `rest`, if they
/// cost less than the lookup of `f` they save.
fn moved_off(
    cfg: &Config,
    idx: &[Option<Field>],
    f: Field,
    rest: u32,
) -> Option<Vec<(usize, Field)>> {
    let mut moves = Vec::new();
    let mut extra = 0.0;
    for (r, rule) in cfg.rules.iter().enumerate() {
        if idx[r] != Some(f) {
            continue;
        }
        let (s, g) = most_selective(cfg, &rule.cond, rest)?;
        extra += s - share(cfg, &rule.cond, f);
        if extra >= lookup_cost(f) {
            return None;
        }
        moves.push((r, g));
    }
    Some(moves)
}

/// Moves the fields of `check` that one test decides into the rule's direct
/// checks; returns the fields left for the class bitmaps.
fn take_direct(c: &Conditions, check: u32, rule: &mut RuleEntry) -> u32 {
    let mut left = check;
    for f in Field::ALL {
        if check & f.bit() == 0 {
            continue;
        }
        if let Some(k) = direct_check(c, f).filter(|k| pack(&mut rule.packed, f, k)) {
            rule.checks[f as usize - CHECK_FIRST] = k;
            rule.direct |= f.bit();
            left &= !f.bit();
        }
    }
    left
}

/// Fills every class's candidates and the rules' direct checks; returns the
/// mask of index fields. Giving up index fields (see [`assign`]) lengthens
/// the lists of the others; if that makes more lists overflow (whose
/// packets then fall back to the bitmap scan), each rule keeps its most
/// selective field instead.
pub(super) fn fill_candidates(
    cfg: &Config,
    int: &mut Interner,
    used_fields: u32,
    always_class: u32,
    entries: &mut [RuleEntry],
) -> u32 {
    let pruned = assign(cfg);
    let fields = &int.field_of;
    let classes = &mut int.classes;
    let index_fields = fill_with(
        cfg,
        fields,
        classes,
        used_fields,
        always_class,
        entries,
        &pruned,
    );
    let overflowed = |c: &[Class]| c.iter().filter(|c| c.overflow).count();
    let after = overflowed(classes);
    if after == 0 {
        return index_fields;
    }
    let selective = selective(cfg);
    if selective == pruned {
        return index_fields;
    }
    let mut trial = classes.clone();
    let mut trial_entries = entries.to_vec();
    let trial_fields = fill_with(
        cfg,
        fields,
        &mut trial,
        used_fields,
        always_class,
        &mut trial_entries,
        &selective,
    );
    if overflowed(&trial) < after {
        *classes = trial;
        entries.clone_from_slice(&trial_entries);
        return trial_fields;
    }
    index_fields
}

/// [`fill_candidates`] for a given index field per rule.
fn fill_with(
    cfg: &Config,
    field_of: &[Option<Field>],
    classes: &mut [Class],
    used_fields: u32,
    always_class: u32,
    entries: &mut [RuleEntry],
    assigned: &[Option<Field>],
) -> u32 {
    let n = cfg.rules.len();
    let mut indexed: Vec<Bitmap> = vec![Bitmap::new(n); Field::ALL.len()];
    let mut always = Vec::new();
    // Per rule: the fields still to check once its index field matched.
    let mut check: Vec<u32> = vec![0; n];
    let mut index_fields = 0u32;
    for (r, rule) in cfg.rules.iter().enumerate() {
        let shape: u32 = fields_of(&rule.cond).iter().map(|f| f.bit()).sum();
        entries[r].direct = 0;
        entries[r].checks = [Check::ANY; CHECKS];
        entries[r].packed = Packed::default();
        match assigned[r] {
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

    for (id, field) in field_of.iter().enumerate() {
        let Some(f) = *field else { continue };
        if used_fields & f.bit() == 0 {
            continue;
        }
        let class = &mut classes[id];
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
    set_cands(&mut classes[always_class as usize], cands);
    index_fields
}

fn set_cands(class: &mut super::Class, cands: Vec<u32>) {
    // Both ways set both fields: a second fill (the fallback above) must
    // not inherit the first one's overflow.
    if cands.len() > MAX_CANDS {
        class.overflow = true;
        class.cands = Vec::new();
    } else {
        class.overflow = false;
        class.cands = cands;
    }
}
