//! Compilation of a validated config into the tables the XDP program reads.
//!
//! Each packet field (source, destination, protocol, ports, …) is split into
//! equivalence classes: values that satisfy exactly the same rules share a
//! class. A class holds a bitmap of those rules and a short candidate list
//! (the rules *indexed* on that field that it satisfies). At run time the
//! program looks up one class per field; a rule matches when its bit is set in
//! every class, and the only rules worth checking are the candidates — so the
//! cost per packet depends on how many rules could match, not on how many
//! there are. See `bpf/classify.h`.

pub mod abi;
mod addr;
mod bitmap;
mod discrete;
mod index;
pub mod limits;
mod trie4;

use std::collections::HashMap;
use std::fmt;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::model::{Action, Config, Verdict};
pub use bitmap::Bitmap;
pub use discrete::{Check, Packed};
pub use limits::Limits;
pub use trie4::{hashed4, Lone4, Node4, Nodes4};

/// The packet fields a rule can constrain, in `enum xw_field` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Source address.
    Src = 0,
    /// Destination address.
    Dst = 1,
    /// IP protocol.
    Proto = 2,
    /// Source port.
    Sport = 3,
    /// Destination port.
    Dport = 4,
    /// TCP flags.
    TcpFlags = 5,
    /// ICMP type/code.
    Icmp = 6,
    /// Address family.
    Family = 7,
    /// VLAN id.
    Vlan = 8,
    /// Fragment state.
    Frag = 9,
}

impl Field {
    /// All fields in ABI order.
    pub const ALL: [Field; 10] = [
        Field::Src,
        Field::Dst,
        Field::Proto,
        Field::Sport,
        Field::Dport,
        Field::TcpFlags,
        Field::Icmp,
        Field::Family,
        Field::Vlan,
        Field::Frag,
    ];

    /// Bit of this field in `used_fields`.
    #[must_use]
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// One equivalence class as stored in `xw_classes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// Rules satisfied by the class's values.
    pub bits: Bitmap,
    /// Candidates, ascending: `rule id | CAND_COUNT if count rule |
    /// CAND_DIRECT if it has direct checks | fields still to check with the
    /// bitmaps << CAND_CHECK_SHIFT`.
    pub cands: Vec<u32>,
    /// The candidate list did not fit (`cands` is then empty).
    pub overflow: bool,
}

/// A rule as the data plane stores it (`struct xw_rule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEntry {
    /// Rule name.
    pub name: String,
    /// `abi::ACT_*`.
    pub action: u32,
    /// `abi::RULE_LOG` / `abi::RULE_SAMPLE`.
    pub flags: u32,
    /// Packet bytes its events carry.
    pub snaplen: u32,
    /// One event per this many matches (1: every match).
    pub sample: u32,
    /// At most one event per this many ns (0: no limit).
    pub every_ns: u64,
    /// Rate limit: its bucket (all zero for other actions).
    pub rate: RateParams,
    /// Redirect: the target interface's name (resolved at load).
    pub redirect: Option<String>,
    /// Fields a candidate of this rule checks with `checks` rather than
    /// the class bitmaps (`1 << Field`; never its index field).
    pub direct: u32,
    /// Direct checks, `checks[f - abi::CHECK_FIRST]` (the rest: [`Check::ANY`]).
    pub checks: [Check; abi::CHECKS],
    /// The same as the record holds them (`xw_rule.key_mask` ...).
    pub packed: Packed,
}

/// A rate limit's bucket as the data plane computes it (`xw_rule.rl_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateParams {
    /// Nanotokens gained per ns (= packets per second).
    pub pps: u64,
    /// Bucket size in nanotokens (`burst * RL_TOKEN`).
    pub cap: u64,
    /// Nanoseconds to fill an empty bucket (`ceil(cap / pps)`).
    pub fill_ns: u64,
}

impl RateParams {
    /// The bucket of `pps` packets/s and `burst` packets. Both are at least
    /// 1 and at most `RL_MAX_PPS` / `RL_MAX_BURST` in a validated config;
    /// larger values are clamped here so the arithmetic cannot overflow.
    #[must_use]
    pub fn new(pps: u64, burst: u64) -> Self {
        let pps = pps.clamp(1, abi::RL_MAX_PPS);
        let cap = burst.clamp(1, abi::RL_MAX_BURST) * abi::RL_TOKEN;
        RateParams {
            pps,
            cap,
            fill_ns: cap.div_ceil(pps),
        }
    }
}

/// Event settings the program is built with (`[events]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSettings {
    /// Some rule logs or samples.
    pub enabled: bool,
    /// `abi::TRANSPORT_*`.
    pub transport: u32,
    /// Ring size in bytes (perf: total, split across CPUs).
    pub buffer: u64,
    /// `abi::WAKE_*`.
    pub wakeup_mode: u32,
    /// Records per wake-up for `abi::WAKE_BATCH`.
    pub wakeup_batch: u32,
}

/// Everything the loader writes into the program's maps and `.rodata`.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Rules by id.
    pub rules: Vec<RuleEntry>,
    /// Bit per used field.
    pub used_fields: u32,
    /// Bit per field some rule is indexed on (looked up before the walk).
    pub index_fields: u32,
    /// Bitmap words in use (`ceil(rules / 64)`, at least 1).
    pub nwords: u32,
    /// Bits of the last word that are rules.
    pub tail_mask: u64,
    /// All classes, by id.
    pub classes: Vec<Class>,
    /// Source LPM entries (IPv4), prefix -> class.
    pub src4: Vec<(Ipv4Net, u32)>,
    /// Destination LPM entries (IPv4).
    pub dst4: Vec<(Ipv4Net, u32)>,
    /// Source LPM entries (IPv6).
    pub src6: Vec<(Ipv6Net, u32)>,
    /// Destination LPM entries (IPv6).
    pub dst6: Vec<(Ipv6Net, u32)>,
    /// Per /16 of the source (IPv4): which prefix lengths over /16 lie
    /// inside (bit k: length 17 + k); empty if unused.
    pub src4_lens: Vec<u32>,
    /// The same for the destination.
    pub dst4_lens: Vec<u32>,
    /// Source directory (IPv4), indexed by the first 16 bits; empty if unused.
    /// A /16 in node mode holds `ID_TRIE | ID_NODE | ` its /24 node's index.
    pub src4_dir: Vec<u32>,
    /// Destination directory (IPv4).
    pub dst4_dir: Vec<u32>,
    /// Source IPv4 trie nodes (the /16s in node mode; see [`Nodes4`]).
    pub src4_nodes: Nodes4,
    /// Destination IPv4 trie nodes.
    pub dst4_nodes: Nodes4,
    /// Source directory (IPv6).
    pub src6_dir: Vec<u32>,
    /// Destination directory (IPv6).
    pub dst6_dir: Vec<u32>,
    /// Source class of non-IP frames.
    pub src_nonip: u32,
    /// Destination class of non-IP frames.
    pub dst_nonip: u32,
    /// Per-index classes of the small fields (empty when the field is unused).
    /// Every class id in these tables carries its `abi::ID_*` hint bits.
    pub proto: Vec<u32>,
    /// Source port classes (`PORT_ENTRIES`).
    pub sport: Vec<u32>,
    /// Destination port classes.
    pub dport: Vec<u32>,
    /// TCP flag classes.
    pub tcpflags: Vec<u32>,
    /// ICMP classes.
    pub icmp: Vec<u32>,
    /// Family classes.
    pub family: Vec<u32>,
    /// VLAN classes.
    pub vlan: Vec<u32>,
    /// Fragment classes.
    pub frag: Vec<u32>,
    /// Class whose candidates are the rules with no condition.
    pub always_class: u32,
    /// Class whose bits are the `count` rules.
    pub count_class: u32,
    /// Whether any rule is a `count` rule.
    pub has_count_rules: bool,
    /// Verdict when no terminal rule matches.
    pub default: Verdict,
    /// Verdict for malformed packets.
    pub malformed: Verdict,
    /// Events.
    pub events: EventSettings,
    /// Entries of the per-source rate-limit table (`[xdp] rate_limit_table`).
    pub rate_limit_table: u32,
}

impl Compiled {
    /// Whether `other` differs from `self` only in the address tables
    /// (directories, length masks, prefix entries) — the case a set change
    /// usually is: the same rules, classes and per-field tables, so the
    /// running program can switch to `other`'s address tables in place.
    #[must_use]
    pub fn differs_only_in_addresses(&self, other: &Compiled) -> bool {
        self.rules == other.rules
            && self.used_fields == other.used_fields
            && self.index_fields == other.index_fields
            && self.nwords == other.nwords
            && self.tail_mask == other.tail_mask
            && self.classes == other.classes
            && self.src_nonip == other.src_nonip
            && self.dst_nonip == other.dst_nonip
            && self.proto == other.proto
            && self.sport == other.sport
            && self.dport == other.dport
            && self.tcpflags == other.tcpflags
            && self.icmp == other.icmp
            && self.family == other.family
            && self.vlan == other.vlan
            && self.frag == other.frag
            && self.always_class == other.always_class
            && self.count_class == other.count_class
            && self.has_count_rules == other.has_count_rules
            && self.default == other.default
            && self.malformed == other.malformed
            && self.events == other.events
            && self.rate_limit_table == other.rate_limit_table
            // Used and unused address fields alike (an empty table means unused).
            && self.src4_dir.is_empty() == other.src4_dir.is_empty()
            && self.dst4_dir.is_empty() == other.dst4_dir.is_empty()
            && self.src6_dir.is_empty() == other.src6_dir.is_empty()
            && self.dst6_dir.is_empty() == other.dst6_dir.is_empty()
    }
}

/// Why a config cannot be compiled (it is valid, but asks for something the
/// data plane cannot represent, or more than its maps hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Config path.
    pub path: std::path::PathBuf,
    /// Line of the rule.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:1: {}",
            self.path.display(),
            self.line,
            self.message
        )
    }
}

impl std::error::Error for CompileError {}

/// The hint bits a class id carries in the field tables (`abi::ID_*`).
fn id_hints(c: &Class) -> u32 {
    let mut h = 0;
    if c.overflow {
        h |= abi::ID_OVERFLOW;
    }
    if c.cands.iter().any(|&e| e & abi::CAND_COUNT == 0) {
        h |= abi::ID_TERMINALS;
    }
    if c.cands.iter().any(|&e| e & abi::CAND_COUNT != 0) {
        h |= abi::ID_COUNTS;
    }
    h
}

/// Interns classes: equal (field, bitmap) pairs share one id.
struct Interner {
    classes: Vec<Class>,
    field_of: Vec<Option<Field>>,
    ids: HashMap<(Option<Field>, Bitmap), u32>,
}

impl Interner {
    fn new() -> Self {
        Self {
            classes: Vec::new(),
            field_of: Vec::new(),
            ids: HashMap::new(),
        }
    }

    fn intern(&mut self, field: Option<Field>, bits: Bitmap) -> u32 {
        if let Some(&id) = self.ids.get(&(field, bits.clone())) {
            return id;
        }
        let id = u32::try_from(self.classes.len()).unwrap_or(u32::MAX);
        self.classes.push(Class {
            bits: bits.clone(),
            cands: Vec::new(),
            overflow: false,
        });
        self.field_of.push(field);
        self.ids.insert((field, bits), id);
        id
    }

    /// A class that is not shared (always/count lists).
    fn unique(&mut self, bits: Bitmap) -> u32 {
        let id = u32::try_from(self.classes.len()).unwrap_or(u32::MAX);
        self.classes.push(Class {
            bits,
            cands: Vec::new(),
            overflow: false,
        });
        self.field_of.push(None);
        id
    }
}

fn action_code(a: &Action) -> u32 {
    match a {
        Action::Pass => abi::ACT_PASS,
        Action::Drop => abi::ACT_DROP,
        Action::Count => abi::ACT_COUNT,
        Action::Redirect(_) => abi::ACT_REDIRECT,
        Action::RateLimit(_) => abi::ACT_RATE_LIMIT,
    }
}

fn rule_entry(cfg: &Config, i: usize) -> Result<RuleEntry, CompileError> {
    let r = &cfg.rules[i];
    let mut flags = 0;
    let mut rate = RateParams::default();
    let mut redirect = None;
    match &r.action {
        Action::RateLimit(rl) => {
            if rl.pps > abi::RL_MAX_PPS
                || rl.burst > abi::RL_MAX_BURST
                || rl.pps == 0
                || rl.burst == 0
            {
                // The parser refuses these; a config built in code may not.
                return Err(CompileError {
                    path: cfg.path.clone(),
                    line: r.line,
                    message: format!(
                        "rule `{}`: rate_limit needs 1 <= pps <= {} and 1 <= burst <= {}",
                        r.name,
                        abi::RL_MAX_PPS,
                        abi::RL_MAX_BURST
                    ),
                });
            }
            rate = RateParams::new(rl.pps, rl.burst);
            if rl.by == crate::model::RateBy::Src {
                flags |= abi::RULE_BY_SRC;
            }
        }
        Action::Redirect(ifname) => redirect = Some(ifname.clone()),
        _ => {}
    }
    if r.log.is_some() {
        flags |= abi::RULE_LOG;
    }
    if r.sample.is_some() {
        flags |= abi::RULE_SAMPLE;
    }
    let snaplen = r.log.and_then(|l| l.snaplen).unwrap_or(cfg.events.snaplen);
    Ok(RuleEntry {
        name: r.name.clone(),
        action: action_code(&r.action),
        flags,
        rate,
        redirect,
        snaplen: snaplen.min(abi::MAX_SNAPLEN),
        sample: r.sample.unwrap_or(1).max(1),
        every_ns: r
            .log
            .and_then(|l| l.every)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        // Set with the candidates, once the rule's index field is known.
        direct: 0,
        checks: [Check::ANY; abi::CHECKS],
        packed: Packed::default(),
    })
}

fn event_settings(cfg: &Config, rules: &[RuleEntry]) -> EventSettings {
    let (wakeup_mode, wakeup_batch) = match cfg.events.wakeup {
        crate::model::Wakeup::Every => (abi::WAKE_EVERY, 1),
        crate::model::Wakeup::Batch(n) => (abi::WAKE_BATCH, n.max(1)),
        crate::model::Wakeup::Adaptive => (abi::WAKE_ADAPTIVE, 64),
    };
    EventSettings {
        enabled: rules
            .iter()
            .any(|r| r.flags & (abi::RULE_LOG | abi::RULE_SAMPLE) != 0),
        transport: match cfg.events.transport {
            crate::model::Transport::Ringbuf => abi::TRANSPORT_RINGBUF,
            crate::model::Transport::Perfbuf => abi::TRANSPORT_PERFBUF,
        },
        buffer: cfg.events.buffer,
        wakeup_mode,
        wakeup_batch,
    }
}

/// Compiles a validated config, checked against the data plane's map sizes.
///
/// # Errors
/// A rule's action has values the data plane cannot represent (only for
/// configs not made by the parser, which refuses them), or a table would
/// not fit its map (the message names the limit).
pub fn compile(cfg: &Config) -> Result<Compiled, CompileError> {
    compile_with(cfg, &Limits::default())
}

/// Like [`compile`], checked against `limits` (tests lower them).
///
/// # Errors
/// As [`compile`].
pub fn compile_with(cfg: &Config, limits: &Limits) -> Result<Compiled, CompileError> {
    limits::check_rules(cfg)?;
    let n = cfg.rules.len();
    let mut rules = Vec::with_capacity(n);
    for i in 0..n {
        rules.push(rule_entry(cfg, i)?);
    }
    let events = event_settings(cfg, &rules);

    let mut used_fields = 0u32;
    for r in &cfg.rules {
        for f in index::fields_of(&r.cond) {
            used_fields |= f.bit();
        }
    }

    let mut int = Interner::new();
    let src = addr::compile_addr(cfg, Field::Src, &mut int);
    limits::check_trie(cfg, Field::Src, false, src.v4.len(), limits)?;
    limits::check_trie(cfg, Field::Src, true, src.v6.len(), limits)?;
    let dst = addr::compile_addr(cfg, Field::Dst, &mut int);
    limits::check_trie(cfg, Field::Dst, false, dst.v4.len(), limits)?;
    limits::check_trie(cfg, Field::Dst, true, dst.v6.len(), limits)?;
    let used = |f: Field| used_fields & f.bit() != 0;
    let small = |f: Field, int: &mut Interner| {
        if used(f) {
            discrete::compile_field(cfg, f, int)
        } else {
            Vec::new()
        }
    };
    let proto = small(Field::Proto, &mut int);
    let sport = small(Field::Sport, &mut int);
    let dport = small(Field::Dport, &mut int);
    let tcpflags = small(Field::TcpFlags, &mut int);
    let icmp = small(Field::Icmp, &mut int);
    let family = small(Field::Family, &mut int);
    let vlan = small(Field::Vlan, &mut int);
    let frag = small(Field::Frag, &mut int);

    let mut count_bits = Bitmap::new(n);
    for (i, r) in cfg.rules.iter().enumerate() {
        if !r.action.is_terminal() {
            count_bits.set(i);
        }
    }
    let has_count_rules = count_bits.any();
    let always_class = int.unique(Bitmap::new(n));
    let count_class = int.unique(count_bits);

    let index_fields = index::fill_candidates(cfg, &mut int, used_fields, always_class, &mut rules);
    let hints: Vec<u32> = int.classes.iter().map(id_hints).collect();
    let tag = |id: u32| id | hints[id as usize];
    let tag_all = |v: Vec<u32>| v.into_iter().map(tag).collect::<Vec<u32>>();
    let tag_lpm = |v: Vec<(Ipv4Net, u32)>| v.into_iter().map(|(n, id)| (n, tag(id))).collect();
    let tag_lpm6 = |v: Vec<(Ipv6Net, u32)>| v.into_iter().map(|(n, id)| (n, tag(id))).collect();

    let src4: Vec<(Ipv4Net, u32)> = tag_lpm(src.v4);
    let dst4: Vec<(Ipv4Net, u32)> = tag_lpm(dst.v4);
    let src6: Vec<(Ipv6Net, u32)> = tag_lpm6(src.v6);
    let dst6: Vec<(Ipv6Net, u32)> = tag_lpm6(dst.v6);
    let dir4 = |v: &[(Ipv4Net, u32)]| {
        addr::directory(
            v.iter()
                .map(|(n, id)| (u128::from(u32::from(n.network())), n.prefix_len(), *id)),
            32,
        )
    };
    let dir6 = |v: &[(Ipv6Net, u32)]| {
        addr::directory(
            v.iter()
                .map(|(n, id)| (u128::from(n.network()), n.prefix_len(), *id)),
            128,
        )
    };

    let (mut src4_dir, mut src4_lens) = (dir4(&src4), addr::long4_lens(&src4));
    let src4_nodes = trie4::build(
        &src4,
        &mut src4_dir,
        &mut src4_lens,
        limits.nodes4,
        limits.lone4,
    );
    let (mut dst4_dir, mut dst4_lens) = (dir4(&dst4), addr::long4_lens(&dst4));
    let dst4_nodes = trie4::build(
        &dst4,
        &mut dst4_dir,
        &mut dst4_lens,
        limits.nodes4,
        limits.lone4,
    );

    let compiled = Compiled {
        src4_lens,
        dst4_lens,
        src4_dir,
        dst4_dir,
        src4_nodes,
        dst4_nodes,
        src6_dir: dir6(&src6),
        dst6_dir: dir6(&dst6),
        rules,
        used_fields,
        index_fields,
        nwords: u32::try_from(n.div_ceil(64).max(1)).unwrap_or(u32::MAX),
        tail_mask: if n.is_multiple_of(64) && n > 0 {
            u64::MAX
        } else {
            (1u64 << (n % 64)) - 1
        },
        classes: int.classes,
        src4,
        dst4,
        src6,
        dst6,
        src_nonip: tag(src.nonip),
        dst_nonip: tag(dst.nonip),
        proto: tag_all(proto),
        sport: tag_all(sport),
        dport: tag_all(dport),
        tcpflags: tag_all(tcpflags),
        icmp: tag_all(icmp),
        family: tag_all(family),
        vlan: tag_all(vlan),
        frag: tag_all(frag),
        always_class: tag(always_class),
        count_class,
        has_count_rules,
        default: cfg.xdp.default,
        malformed: cfg.xdp.malformed,
        events,
        rate_limit_table: cfg.xdp.rate_limit_table,
    };
    limits::check_tables(cfg, &compiled, limits)?;
    Ok(compiled)
}

#[cfg(test)]
mod tests;
