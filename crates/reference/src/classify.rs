//! Rule matching over the config model (DESIGN.md "Rule model" and
//! "Address conditions"), done the obvious way: every rule, in file order.

use std::net::IpAddr;

use xdpwall_rules::{Action, AddrItem, AddrMatch, Conditions, Config, FragMatch, PortRange};

use crate::parse::{parse, Fragment, Parsed, Reason};

/// What happens to a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// XDP_PASS: a `pass` rule, or the default / malformed policy `pass`.
    Pass,
    /// XDP_DROP: a `drop` rule, or the default / malformed policy `drop`.
    Drop,
    /// A `redirect` rule decided: to this interface.
    Redirect(String),
    /// A `rate_limit` rule decided: drop over the limit, pass under it. The
    /// token bucket depends on time, which the reference does not model;
    /// [`crate::Buckets`] tells the packets that must pass.
    RateLimit,
}

impl Verdict {
    /// The XDP return code of `pass` (2) and `drop` (1); `None` for the
    /// verdicts that depend on state.
    #[must_use]
    pub fn xdp(&self) -> Option<u32> {
        match self {
            Verdict::Pass => Some(2),
            Verdict::Drop => Some(1),
            Verdict::Redirect(_) | Verdict::RateLimit => None,
        }
    }

    fn of_policy(v: xdpwall_rules::Verdict) -> Self {
        match v {
            xdpwall_rules::Verdict::Pass => Verdict::Pass,
            xdpwall_rules::Verdict::Drop => Verdict::Drop,
        }
    }

    fn of_action(a: &Action) -> Self {
        match a {
            Action::Pass | Action::Count => Verdict::Pass,
            Action::Drop => Verdict::Drop,
            Action::Redirect(ifname) => Verdict::Redirect(ifname.clone()),
            Action::RateLimit(_) => Verdict::RateLimit,
        }
    }
}

/// The decision for one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// The terminal rule that decided (index into `Config::rules`); `None`
    /// when the default action or the malformed policy applied.
    pub rule: Option<usize>,
    /// Why the frame could not be parsed far enough (then `rule` is `None`
    /// and `verdict` is the malformed policy's).
    pub malformed: Option<Reason>,
    /// The `count` rules that matched before the winner, in file order:
    /// each is counted. `count` rules after the winner are never evaluated.
    pub counted: Vec<usize>,
}

/// Classifies one frame under `cfg`: parse, then the first terminal rule
/// whose every condition holds decides, `count` rules met on the way are
/// counted, and the default action applies when no terminal rule matches.
/// A malformed frame gets the malformed policy and no rule at all.
#[must_use]
pub fn classify(cfg: &Config, frame: &[u8]) -> Outcome {
    classify_parsed(cfg, &parse(frame))
}

/// [`classify`] for a frame already parsed.
#[must_use]
pub fn classify_parsed(cfg: &Config, pkt: &Parsed) -> Outcome {
    if let Some(reason) = pkt.malformed {
        return Outcome {
            verdict: Verdict::of_policy(cfg.xdp.malformed),
            rule: None,
            malformed: Some(reason),
            counted: Vec::new(),
        };
    }
    let mut counted = Vec::new();
    for (i, rule) in cfg.rules.iter().enumerate() {
        if !matches(cfg, &rule.cond, pkt) {
            continue;
        }
        if rule.action.is_terminal() {
            return Outcome {
                verdict: Verdict::of_action(&rule.action),
                rule: Some(i),
                malformed: None,
                counted,
            };
        }
        counted.push(i);
    }
    Outcome {
        verdict: Verdict::of_policy(cfg.xdp.default),
        rule: None,
        malformed: None,
        counted,
    }
}

/// Whether a rule's conditions all hold for a well-formed frame (a rule
/// with none matches everything).
///
/// * `vlan`: the id of the outer or the inner tag (a frame without tags has
///   none).
/// * A frame that is not IP matches no rule with an L3/L4 condition (`src`,
///   `dst`, `proto`, `sport`, `dport`, `tcp_flags`, `icmp_type`, `icmp_code`,
///   `family`, `fragment`) — also not `src = "!10.0.0.0/8"` nor
///   `fragment = "none"`.
/// * `src`/`dst`: set membership, see [`addr_matches`].
/// * `proto`: the protocol number (for IPv6 after the extension headers).
/// * `sport`/`dport`: in one of the inclusive ranges; only TCP, UDP and SCTP
///   have ports, and a non-first fragment has none.
/// * `tcp_flags`: every `set` flag set and every `clear` flag clear in the
///   flags byte; TCP only.
/// * `icmp_type`/`icmp_code`: ICMP in IPv4, ICMPv6 in IPv6.
/// * `family`: the IP version.
/// * `fragment`: `any` = first or non-first, `first`, `non-first`, `none`.
#[must_use]
pub fn matches(cfg: &Config, c: &Conditions, pkt: &Parsed) -> bool {
    if pkt.malformed.is_some() {
        return false;
    }
    if let Some(v) = c.vlan {
        if !pkt.vlans.contains(&v) {
            return false;
        }
    }
    let Some(ip) = &pkt.ip else {
        return !has_l3_l4(c);
    };
    c.src.as_ref().is_none_or(|m| addr_matches(cfg, m, ip.src))
        && c.dst.as_ref().is_none_or(|m| addr_matches(cfg, m, ip.dst))
        && c.proto.is_none_or(|p| p == ip.proto)
        && c.sport
            .as_ref()
            .is_none_or(|r| ip.ports.is_some_and(|(s, _)| in_ranges(r, s)))
        && c.dport
            .as_ref()
            .is_none_or(|r| ip.ports.is_some_and(|(_, d)| in_ranges(r, d)))
        && c.tcp_flags.is_none_or(|f| {
            ip.tcp_flags
                .is_some_and(|x| x & f.set == f.set && x & f.clear == 0)
        })
        && c.icmp_type
            .is_none_or(|t| ip.icmp.is_some_and(|(ty, _)| ty == t))
        && c.icmp_code
            .is_none_or(|k| ip.icmp.is_some_and(|(_, code)| code == k))
        && c.family.is_none_or(|f| f == ip.family())
        && c.fragment.is_none_or(|f| frag_matches(f, ip.fragment))
}

/// Whether `c` has a condition on anything beyond L2 (everything but `vlan`).
fn has_l3_l4(c: &Conditions) -> bool {
    let Conditions {
        src,
        dst,
        proto,
        sport,
        dport,
        tcp_flags,
        icmp_type,
        icmp_code,
        family,
        vlan: _,
        fragment,
    } = c;
    src.is_some()
        || dst.is_some()
        || proto.is_some()
        || sport.is_some()
        || dport.is_some()
        || tcp_flags.is_some()
        || icmp_type.is_some()
        || icmp_code.is_some()
        || family.is_some()
        || fragment.is_some()
}

fn frag_matches(m: FragMatch, f: Fragment) -> bool {
    match m {
        FragMatch::Any => f != Fragment::None,
        FragMatch::First => f == Fragment::First,
        FragMatch::NonFirst => f == Fragment::NonFirst,
        FragMatch::None => f == Fragment::None,
    }
}

fn in_ranges(ranges: &[PortRange], port: u16) -> bool {
    ranges.iter().any(|r| r.lo <= port && port <= r.hi)
}

/// Address set membership: `a` matches when it is in some plain (include)
/// entry — or there is none — and in no `!` (exclude) entry. An entry is a
/// network or a named set (the union of its networks); a network of the
/// other family contains nothing, so `!10.0.0.0/8` alone matches every IPv6
/// address. A set name missing from `cfg.sets` (never so in a validated
/// config) is taken as empty.
#[must_use]
pub fn addr_matches(cfg: &Config, m: &AddrMatch, a: IpAddr) -> bool {
    let in_item = |item: &AddrItem| match item {
        AddrItem::Net(n) => n.contains(&a),
        AddrItem::Set(name) => cfg
            .sets
            .get(name)
            .is_some_and(|s| s.entries.iter().any(|n| n.contains(&a))),
    };
    (m.include.is_empty() || m.include.iter().any(in_item)) && !m.exclude.iter().any(in_item)
}

/// Packets and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes (the frame's length).
    pub bytes: u64,
}

impl Counter {
    fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

/// The counters the data plane keeps, as the reference predicts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Per rule, in rule order: the terminal rule that decided a packet, and
    /// every `count` rule met before it.
    pub rules: Vec<Counter>,
    /// Packets the default action decided.
    pub default: Counter,
    /// Malformed packets by [`Reason::index`].
    pub malformed: [Counter; 4],
}

impl Tally {
    /// All zero, for `cfg`'s rules.
    #[must_use]
    pub fn new(cfg: &Config) -> Self {
        Tally {
            rules: vec![Counter::default(); cfg.rules.len()],
            default: Counter::default(),
            malformed: [Counter::default(); 4],
        }
    }

    /// Accounts a frame of `len` bytes that got `o`.
    pub fn add(&mut self, o: &Outcome, len: usize) {
        if let Some(r) = o.malformed {
            self.malformed[r as usize].add(len);
            return;
        }
        for &i in &o.counted {
            self.rules[i].add(len);
        }
        match o.rule {
            Some(i) => self.rules[i].add(len),
            None => self.default.add(len),
        }
    }
}
