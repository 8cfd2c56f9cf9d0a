//! Counter slots: where each rule's counters live in `xw_stats`.
//!
//! A reloaded (or taken-over) program shares the counter maps of the one it
//! replaces, and a rule keeps the slot its name had, so counters follow names
//! exactly: both programs count into the same memory, before and after the
//! atomic swap. New names get slots the running program does not use
//! (`XW_COUNTER_SLOTS` is twice the rule limit, so there always are enough),
//! zeroed before the swap because an older generation may have used them.

use std::collections::{HashMap, HashSet};

use libbpf_rs::{MapCore, MapFlags};
use xdpwall_rules::compile::{abi, Compiled};

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::skel::types;
use crate::stats::{c_name, rules};

/// The slot of every rule of a new program, and which of them are new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slots {
    /// Slot by rule id.
    pub of_rule: Vec<u32>,
    /// Slots the previous program did not use (to zero before the swap).
    pub new: Vec<u32>,
}

/// Slots of a program that shares nothing: rule id = slot.
pub(crate) fn fresh(nrules: usize) -> Slots {
    Slots {
        of_rule: (0..nrules as u32).collect(),
        new: Vec::new(),
    }
}

/// Fails with [`Error::Incompatible`] unless `prev`'s maps can be shared.
pub(crate) fn check_compatible(prev: &Instance) -> Result<()> {
    let want_stats = abi::COUNTER_SLOTS as u32 + 1;
    let m = &prev.maps;
    let checks = [
        ("xw_stats", m.stats.max_entries(), want_stats),
        (
            "xw_stats",
            m.stats.value_size(),
            std::mem::size_of::<types::xw_counter>() as u32,
        ),
        (
            "xw_rules",
            m.rules.value_size(),
            std::mem::size_of::<types::xw_rule>() as u32,
        ),
        (
            "xw_malformed",
            m.malformed.max_entries(),
            abi::MAL_MAX as u32,
        ),
        (
            "xw_actstats",
            m.actstats.max_entries(),
            abi::COUNTER_SLOTS as u32,
        ),
    ];
    for (map, have, want) in checks {
        if have != want {
            return Err(Error::Incompatible {
                map,
                what: format!("{have} where this version has {want}"),
            });
        }
    }
    Ok(())
}

/// Assigns slots to `c`'s rules, given the rules of the running `prev`.
pub(crate) fn assign(prev: &Instance, c: &Compiled) -> Result<Slots> {
    let old: Vec<(String, u32)> = rules(prev, &prev.info()?)?
        .iter()
        .map(|r| (c_name(&r.name), r.slot))
        .collect();
    Ok(plan(&old, c.rules.iter().map(|r| r.name.as_str())))
}

/// The pure part of [`assign`]: kept names keep their slots; new names take
/// the lowest slots no old rule holds.
fn plan<'a>(old: &[(String, u32)], names: impl Iterator<Item = &'a str>) -> Slots {
    let by_name: HashMap<&str, u32> = old
        .iter()
        .filter(|(_, s)| (*s as usize) < abi::COUNTER_SLOTS)
        .map(|(n, s)| (n.as_str(), *s))
        .collect();
    let taken: HashSet<u32> = by_name.values().copied().collect();
    let mut free = (0..abi::COUNTER_SLOTS as u32).filter(|s| !taken.contains(s));
    let mut out = Slots {
        of_rule: Vec::new(),
        new: Vec::new(),
    };
    for name in names {
        let slot = match by_name.get(name) {
            Some(&s) => s,
            None => {
                // Rule names are unique and at most MAX_RULES, and at most
                // MAX_RULES slots are taken: a free one always exists.
                let s = free.next().unwrap_or(0);
                out.new.push(s);
                s
            }
        };
        out.of_rule.push(slot);
    }
    out
}

/// Zeroes the slots new to this generation (not in use by any program yet).
pub(crate) fn zero(inst: &Instance, slots: &Slots) -> Result<()> {
    let ncpu = libbpf_rs::num_possible_cpus().map_err(|source| Error::Map {
        op: "size",
        map: "xw_stats",
        source,
    })?;
    let zero = |size: usize| vec![vec![0u8; size]; ncpu];
    let maps = [
        (
            &inst.maps.stats,
            "xw_stats",
            zero(std::mem::size_of::<types::xw_counter>()),
        ),
        (
            &inst.maps.actstats,
            "xw_actstats",
            zero(std::mem::size_of::<types::xw_actstat>()),
        ),
    ];
    for &s in &slots.new {
        for (map, name, zero) in &maps {
            map.update_percpu(&s.to_ne_bytes(), zero, MapFlags::ANY)
                .map_err(|source| Error::Map {
                    op: "zero",
                    map: name,
                    source,
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(v: &[(&str, u32)]) -> Vec<(String, u32)> {
        v.iter().map(|(n, s)| ((*n).to_string(), *s)).collect()
    }

    #[test]
    fn kept_names_keep_slots_new_names_avoid_old_slots() {
        let o = old(&[("a", 0), ("b", 1), ("c", 2)]);
        let s = plan(&o, ["c", "x", "a", "y"].into_iter());
        assert_eq!(s.of_rule, vec![2, 3, 0, 4]);
        assert_eq!(s.new, vec![3, 4]);
    }

    #[test]
    fn removed_names_free_their_slots_only_for_the_next_generation() {
        // "b" (slot 1) is gone: its slot is not reused in the same swap,
        // because the old program may still count into it until the swap.
        let o = old(&[("a", 0), ("b", 1)]);
        let s = plan(&o, ["a", "n"].into_iter());
        assert_eq!(s.of_rule, vec![0, 2]);
    }

    #[test]
    fn a_full_old_table_still_leaves_room_for_a_full_new_one() {
        let names: Vec<String> = (0..abi::MAX_RULES).map(|i| format!("o{i}")).collect();
        let o: Vec<(String, u32)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32 * 2))
            .collect();
        let fresh: Vec<String> = (0..abi::MAX_RULES).map(|i| format!("n{i}")).collect();
        let s = plan(&o, fresh.iter().map(String::as_str));
        let set: HashSet<u32> = s.of_rule.iter().copied().collect();
        assert_eq!(set.len(), abi::MAX_RULES, "every new rule has its own slot");
        assert!(s.of_rule.iter().all(|x| x % 2 == 1), "no old slot reused");
        assert!(s.of_rule.iter().all(|&x| (x as usize) < abi::COUNTER_SLOTS));
    }
}
