//! The sizes of the data plane's maps (`bpf/maps.h`), checked against the
//! compiled tables before anything is written, so a config that does not fit
//! is refused with the limit named instead of failing (or being cut) in the
//! kernel.
//!
//! | map (max_entries)                 | holds                       | limit |
//! |-----------------------------------|-----------------------------|-------|
//! | xw_src4, xw_dst4 (hash), xw_src6, xw_dst6 (LPM) | prefixes (set at load) | [`MAX_TRIE_ENTRIES`] each |
//! | xw_src4_n24/n32, xw_dst4_n24/n32 | IPv4 trie nodes (set at load) | a budget, [`MAX_NODES4`] |
//! | xw_src4_lone, xw_dst4_lone       | /16s with one longer IPv4 prefix (set at load) | one per /16 and generation |
//! | xw_classes                        | classes (set at load)       | [`MAX_CLASSES`] |
//! | xw_rules, xw_stats, xw_last_event, xw_sample_seen | rules     | `MAX_RULES` |
//! | xw_tables (one value: directories, proto, ports, …) | one class per index (fixed) | each array's size |
//!
//! Candidate lists (`XW_MAX_CANDS`) are not a limit: a longer list sets the
//! class's overflow flag and the program scans the bitmap instead.

use std::path::Path;

use super::abi;
use super::{CompileError, Compiled, Field};
use crate::model::{AddrItem, Config};
use crate::table::thousands;

/// Prefixes per LPM trie. The kernel has no cap of its own, but every
/// prefix costs it about 100 bytes of unswappable memory (node plus
/// intermediate node), so 16,777,216 is about 1.6 GiB per trie.
pub const MAX_TRIE_ENTRIES: usize = 1 << 24;
/// Classes in `xw_classes`. A class is 2,224 bytes (`struct xw_class`), so
/// this is 2.3 GiB; the kernel refuses an array over 4 GiB, and class ids
/// must fit `ID_MASK`.
pub const MAX_CLASSES: usize = 1 << 20;
/// IPv4 trie nodes (1 KiB each) per address field and generation: the
/// /16s with prefixes over /16 go to nodes, densest first, until this many
/// are used; the rest keep the exact-match tables (one probe per prefix
/// length instead of two array loads). 32 MiB: a 1,000,000-entry set of
/// /31s and /32s packed in 46 /16s takes about 11,800.
pub const MAX_NODES4: usize = 1 << 15;
/// Bytes of a rule name, without the NUL (`XW_NAME_LEN` - 1).
pub const MAX_NAME_BYTES: usize = abi::NAME_LEN - 1;

/// The limits a compilation is checked against (lowered in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Prefixes per LPM trie.
    pub trie_entries: usize,
    /// Classes.
    pub classes: usize,
    /// IPv4 trie nodes per address field (a budget: the rest is hashed).
    pub nodes4: usize,
    /// Lone entries per address field (/16s with one longer IPv4 prefix;
    /// beyond this they take nodes or the exact-match tables). Every /16
    /// can have one, so only tests lower it.
    pub lone4: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            trie_entries: MAX_TRIE_ENTRIES,
            classes: MAX_CLASSES,
            nodes4: MAX_NODES4,
            lone4: abi::DIR_ENTRIES,
        }
    }
}

fn error(path: &Path, line: usize, message: String) -> CompileError {
    CompileError {
        path: path.to_path_buf(),
        line,
        message,
    }
}

/// Refuses a config with more rules than the data plane's rule-id space, or
/// a rule name that does not fit `struct xw_rule` (checked before compiling:
/// the parser already refuses both, this guards configs built in code).
pub(super) fn check_rules(cfg: &Config) -> Result<(), CompileError> {
    let n = cfg.rules.len();
    if n > abi::MAX_RULES {
        let line = cfg.rules.get(abi::MAX_RULES).map_or(1, |r| r.line);
        let message = format!(
            "{} rules exceed the limit of {} (xw_rules max_entries, XW_MAX_RULES)",
            thousands(n as u64),
            thousands(abi::MAX_RULES as u64)
        );
        return Err(error(&cfg.path, line, message));
    }
    for rule in &cfg.rules {
        if rule.name.len() > MAX_NAME_BYTES {
            let message = format!(
                "rule `{}`: name is {} bytes, over the limit of {MAX_NAME_BYTES} \
                 (struct xw_rule name, XW_NAME_LEN)",
                rule.name,
                rule.name.len()
            );
            return Err(error(&cfg.path, rule.line, message));
        }
    }
    Ok(())
}

/// The sets used on `field`, with their prefix counts of one family, largest
/// first, and the line of the first rule using the largest.
fn sets_on(cfg: &Config, field: Field, v6: bool) -> (Vec<(&str, usize)>, usize) {
    let mut sets: Vec<(&str, usize, usize)> = Vec::new();
    for rule in &cfg.rules {
        let m = if field == Field::Src {
            rule.cond.src.as_ref()
        } else {
            rule.cond.dst.as_ref()
        };
        for item in m.iter().flat_map(|m| m.include.iter().chain(&m.exclude)) {
            let AddrItem::Set(name) = item else { continue };
            let Some(set) = cfg.sets.get(name) else {
                continue;
            };
            if sets.iter().all(|s| s.0 != name) {
                let n = if v6 {
                    set.entries.v6().len()
                } else {
                    set.entries.v4().len()
                };
                sets.push((name, n, rule.line));
            }
        }
    }
    sets.sort_by_key(|s| std::cmp::Reverse(s.1));
    let line = sets.first().map_or(1, |s| s.2);
    (sets.into_iter().map(|s| (s.0, s.1)).collect(), line)
}

/// Refuses an address trie over its limit, naming the sets that fill it.
pub(super) fn check_trie(
    cfg: &Config,
    field: Field,
    v6: bool,
    entries: usize,
    limits: &Limits,
) -> Result<(), CompileError> {
    if entries <= limits.trie_entries {
        return Ok(());
    }
    let family = if v6 { "IPv6" } else { "IPv4" };
    let fname = if field == Field::Src { "src" } else { "dst" };
    let map = format!("xw_{fname}{}", if v6 { 6 } else { 4 });
    let limit = thousands(limits.trie_entries as u64);
    let (sets, line) = sets_on(cfg, field, v6);
    let message = match sets.first() {
        Some(&(name, n)) if n > limits.trie_entries => format!(
            "set {name}: {} {family} prefixes exceed the limit of {limit} ({map} max_entries); \
             aggregate adjacent prefixes or split the set",
            thousands(n as u64)
        ),
        _ => {
            let named: Vec<String> = sets
                .iter()
                .take(3)
                .map(|(name, n)| format!("{name} {}", thousands(*n as u64)))
                .collect();
            let from = if named.is_empty() {
                String::new()
            } else {
                format!(" (largest sets: {})", named.join(", "))
            };
            format!(
                "{fname}: {} {family} prefixes from rules and sets{from} exceed the limit of \
                 {limit} ({map} max_entries); aggregate prefixes or use fewer sets on {fname}",
                thousands(entries as u64)
            )
        }
    };
    Err(error(&cfg.path, line, message))
}

/// Checks every table of `c` against the map it is written to.
pub(super) fn check_tables(
    cfg: &Config,
    c: &Compiled,
    limits: &Limits,
) -> Result<(), CompileError> {
    let fail = |message: String| Err(error(&cfg.path, 1, message));
    if c.classes.len() > limits.classes.min(abi::ID_MASK as usize + 1) {
        return fail(format!(
            "{} classes exceed the limit of {} (xw_classes max_entries); the rules \
             combine too many distinct conditions: merge rules that differ only in one field",
            thousands(c.classes.len() as u64),
            thousands(limits.classes as u64)
        ));
    }
    if let Some((id, class)) =
        c.classes.iter().enumerate().find(|(_, k)| {
            k.cands.len() > abi::MAX_CANDS || k.bits.words().len() > abi::BITMAP_WORDS
        })
    {
        return fail(format!(
            "class {id}: {} candidates / {} bitmap words exceed XW_MAX_CANDS {} / \
             XW_BITMAP_WORDS {} (struct xw_class); this is a bug, please report it",
            class.cands.len(),
            class.bits.words().len(),
            abi::MAX_CANDS,
            abi::BITMAP_WORDS
        ));
    }
    let tries = [
        ("xw_src4", c.src4.len()),
        ("xw_dst4", c.dst4.len()),
        ("xw_src6", c.src6.len()),
        ("xw_dst6", c.dst6.len()),
    ];
    for (map, n) in tries {
        if n > limits.trie_entries {
            return fail(format!(
                "{} prefixes exceed the limit of {} ({map} max_entries)",
                thousands(n as u64),
                thousands(limits.trie_entries as u64)
            ));
        }
    }
    let arrays: [(&str, usize, usize); 14] = [
        ("xw_tables.src4_dir", c.src4_dir.len(), abi::DIR_ENTRIES),
        ("xw_tables.src4_lens", c.src4_lens.len(), abi::DIR_ENTRIES),
        ("xw_tables.dst4_lens", c.dst4_lens.len(), abi::DIR_ENTRIES),
        ("xw_tables.dst4_dir", c.dst4_dir.len(), abi::DIR_ENTRIES),
        ("xw_tables.src6_dir", c.src6_dir.len(), abi::DIR_ENTRIES),
        ("xw_tables.dst6_dir", c.dst6_dir.len(), abi::DIR_ENTRIES),
        ("xw_tables.proto", c.proto.len(), abi::PROTO_ENTRIES),
        ("xw_tables.sport", c.sport.len(), abi::PORT_ENTRIES),
        ("xw_tables.dport", c.dport.len(), abi::PORT_ENTRIES),
        ("xw_tables.tcpflags", c.tcpflags.len(), abi::TCPF_ENTRIES),
        ("xw_tables.icmp", c.icmp.len(), abi::ICMP_ENTRIES),
        ("xw_tables.family", c.family.len(), abi::FAMILY_ENTRIES),
        ("xw_tables.vlan", c.vlan.len(), abi::VLAN_ENTRIES),
        ("xw_tables.frag", c.frag.len(), abi::FRAG_ENTRIES),
    ];
    for (map, n, size) in arrays {
        // A field table is written whole, or not at all when unused.
        if n != 0 && n != size {
            return fail(format!(
                "{map}: {n} entries do not match its size {size}; this is a bug, \
                 please report it"
            ));
        }
    }
    // The /16 length masks are 16-bit arrays (lengths 17..32).
    for (map, lens) in [
        ("xw_tables.src4_lens", &c.src4_lens),
        ("xw_tables.dst4_lens", &c.dst4_lens),
    ] {
        if let Some(i) = lens.iter().position(|&m| m > 0xffff) {
            return fail(format!(
                "{map}: entry {i} is {:#x}, wider than its 16 bits; this is a bug, \
                 please report it",
                lens[i]
            ));
        }
    }
    Ok(())
}
