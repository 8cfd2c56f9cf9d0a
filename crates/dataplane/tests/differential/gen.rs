//! Random rule sets: proptest strategies for a config model that the
//! validator accepts, rendered as `rules.toml` text and read back with
//! `xdpwall_rules::parse_config` (so a failing case prints as a config a
//! person can load, and the validator vouches for it).
//!
//! Conditions are drawn independently, then a few fix-ups remove the
//! combinations DESIGN.md calls errors (ports with a protocol that has none,
//! `tcp_flags` without TCP, ICMP fields with another protocol or with ports,
//! ICMP in the wrong family, literal networks of the other family,
//! `non-first` with L4 conditions).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::prelude::*;
use xdpwall_rules::{
    AddrItem, AddrMatch, Conditions, Config, Family, FragMatch, PortRange, TcpFlags, Verdict,
};

/// Names of the sets every generated config defines (`[sets]`).
pub const SET_NAMES: [&str; 3] = ["small", "mixed", "big"];

/// The interface `redirect` rules send to: `lo` exists in every network
/// namespace (and BPF_PROG_TEST_RUN transmits nothing).
pub const REDIRECT_TARGET: &str = "lo";

/// A rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Pass,
    Drop,
    Count,
    Redirect,
    /// pps, burst, by source (else by rule).
    RateLimit(u64, u64, bool),
}

/// One generated rule.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub cond: Conditions,
    pub action: Act,
}

/// One generated config.
#[derive(Debug, Clone)]
pub struct ConfigSpec {
    pub default: Verdict,
    pub malformed: Verdict,
    /// `(name, entries)`, names from [`SET_NAMES`].
    pub sets: Vec<(String, Vec<IpNet>)>,
    pub rules: Vec<RuleSpec>,
}

// ------------------------------------------------------------ networks

/// IPv4 anchors: networks cluster around them so prefixes overlap and
/// nest, and packets drawn near one prefix often fall in another.
const ANCHORS4: [u32; 7] = [
    0x0a00_0000, // 10.0.0.0
    0x0a01_0000, // 10.1.0.0
    0xc000_0200, // 192.0.2.0
    0xc633_6400, // 198.51.100.0
    0xac10_0000, // 172.16.0.0
    0x0000_0000,
    0xffff_ffff,
];

const ANCHORS6: [u128; 6] = [
    0x2001_0db8_0000_0000_0000_0000_0000_0000,
    0x2001_0db8_0001_0000_0000_0000_0000_0000,
    0xfe80_0000_0000_0000_0000_0000_0000_0000,
    0x0000_0000_0000_0000_0000_ffff_0a00_0000, // ::ffff:10.0.0.0 (v4-mapped)
    0,
    u128::MAX,
];

/// How many low bits of an anchor to randomise: mostly few, so networks
/// stay close to each other.
fn noise_bits(max: u32) -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0..=max / 4, 2 => 0..=max / 2, 1 => 0..=max]
}

fn prefix(max: u8) -> impl Strategy<Value = u8> {
    prop_oneof![
        1 => Just(0u8),
        3 => Just(max),
        2 => Just(max / 4),
        2 => Just(max / 2),
        2 => Just(max / 4 * 3),
        4 => 0..=max,
    ]
}

pub fn net4() -> impl Strategy<Value = Ipv4Net> {
    (0..ANCHORS4.len(), noise_bits(32), any::<u32>(), prefix(32)).prop_map(
        |(a, bits, noise, len)| {
            let mask = if bits >= 32 {
                u32::MAX
            } else {
                (1u32 << bits) - 1
            };
            let addr = ANCHORS4[a] ^ (noise & mask);
            Ipv4Net::new(Ipv4Addr::from(addr), len)
                .expect("prefix <= 32")
                .trunc()
        },
    )
}

pub fn net6() -> impl Strategy<Value = Ipv6Net> {
    (
        0..ANCHORS6.len(),
        noise_bits(128),
        any::<u128>(),
        prefix(128),
    )
        .prop_map(|(a, bits, noise, len)| {
            let mask = if bits >= 128 {
                u128::MAX
            } else {
                (1u128 << bits) - 1
            };
            let addr = ANCHORS6[a] ^ (noise & mask);
            Ipv6Net::new(Ipv6Addr::from(addr), len)
                .expect("prefix <= 128")
                .trunc()
        })
}

pub fn net() -> impl Strategy<Value = IpNet> {
    prop_oneof![net4().prop_map(IpNet::V4), net6().prop_map(IpNet::V6)]
}

/// A set's entries: small, or (rarely) large; v4 and v6 mixed.
fn set_entries(big: bool) -> BoxedStrategy<Vec<IpNet>> {
    if big {
        prop_oneof![
            6 => vec(net(), 1..20),
            1 => vec(net(), 200..1500),
        ]
        .boxed()
    } else {
        vec(net(), 1..10).boxed()
    }
}

fn addr_item() -> impl Strategy<Value = AddrItem> {
    prop_oneof![
        6 => net().prop_map(AddrItem::Net),
        1 => (0..SET_NAMES.len()).prop_map(|i| AddrItem::Set(SET_NAMES[i].to_string())),
    ]
}

fn addr_match() -> impl Strategy<Value = AddrMatch> {
    (vec(addr_item(), 0..4), vec(addr_item(), 0..3)).prop_map(|(mut include, mut exclude)| {
        dedup(&mut include);
        dedup(&mut exclude);
        if include.is_empty() && exclude.is_empty() {
            include.push(AddrItem::Net("10.0.0.0/8".parse().expect("net")));
        }
        AddrMatch { include, exclude }
    })
}

fn dedup(items: &mut Vec<AddrItem>) {
    let mut seen = Vec::new();
    items.retain(|i| {
        let new = !seen.contains(i);
        seen.push(i.clone());
        new
    });
}

// ------------------------------------------------------------ L4 values

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        1 => Just(0u16),
        1 => Just(65535u16),
        2 => prop::sample::select(vec![22u16, 53, 80, 443, 1024, 8080]),
        3 => any::<u16>(),
    ]
}

fn port_range() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        3 => port().prop_map(|p| PortRange { lo: p, hi: p }),
        2 => (port(), port()).prop_map(|(a, b)| PortRange { lo: a.min(b), hi: a.max(b) }),
        1 => (port(), 0u16..64).prop_map(|(a, w)| PortRange { lo: a, hi: a.saturating_add(w) }),
    ]
}

fn ports() -> impl Strategy<Value = Vec<PortRange>> {
    vec(port_range(), 1..4)
}

fn tcp_flags() -> impl Strategy<Value = TcpFlags> {
    (any::<u8>(), any::<u8>()).prop_map(|(set, clear)| {
        // Mostly one to three flags, like real rules.
        let thin = |x: u8| {
            if x.count_ones() > 3 {
                x & x.rotate_left(3)
            } else {
                x
            }
        };
        let set = thin(set);
        let clear = thin(clear) & !set;
        if set | clear == 0 {
            TcpFlags {
                set: 0x02,
                clear: 0,
            }
        } else {
            TcpFlags { set, clear }
        }
    })
}

fn icmp_value() -> impl Strategy<Value = u8> {
    prop_oneof![3 => prop::sample::select(vec![0u8, 1, 3, 8, 11, 128, 129, 135, 255]), 1 => any::<u8>()]
}

fn proto() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![
        8 => Just(None),
        4 => Just(Some(6u8)),
        3 => Just(Some(17u8)),
        1 => Just(Some(132u8)),
        2 => Just(Some(1u8)),
        2 => Just(Some(58u8)),
        1 => Just(Some(47u8)),
        1 => any::<u8>().prop_map(Some),
    ]
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)]
}

fn vlan() -> impl Strategy<Value = u16> {
    prop_oneof![2 => prop::sample::select(vec![0u16, 1, 100, 200, 4095]), 1 => 0u16..4096]
}

fn fragment() -> impl Strategy<Value = FragMatch> {
    prop_oneof![
        Just(FragMatch::Any),
        Just(FragMatch::First),
        Just(FragMatch::NonFirst),
        Just(FragMatch::None)
    ]
}

/// `Some` with probability `p` in 100.
fn maybe<S: Strategy>(p: u32, s: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::weighted(f64::from(p) / 100.0, s)
}

// ------------------------------------------------------------ rules

/// Conditions; `density` (percent) scales how often each key is present.
fn conditions(density: u32) -> impl Strategy<Value = Conditions> {
    let p = |percent: u32| (percent * density / 100).max(1);
    let proto = prop_oneof![100 - p(50) => Just(None), p(50) => proto()];
    (
        (
            maybe(p(40), addr_match()),
            maybe(p(30), addr_match()),
            proto,
        ),
        (
            maybe(p(25), ports()),
            maybe(p(30), ports()),
            maybe(p(15), tcp_flags()),
        ),
        (
            maybe(p(12), icmp_value()),
            maybe(p(8), icmp_value()),
            maybe(p(20), family()),
        ),
        (
            maybe(p(10), vlan()),
            maybe(p(12), fragment()),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (src, dst, proto),
                (sport, dport, tcp_flags),
                (icmp_type, icmp_code, family),
                (vlan, fragment, keep_icmp),
            )| {
                let mut c = Conditions {
                    src,
                    dst,
                    proto,
                    sport,
                    dport,
                    tcp_flags,
                    icmp_type,
                    icmp_code,
                    family,
                    vlan,
                    fragment,
                };
                make_valid(&mut c, keep_icmp);
                c
            },
        )
}

/// Removes the combinations the validator refuses (DESIGN.md "Config file").
pub fn make_valid(c: &mut Conditions, keep_icmp: bool) {
    let no_ports = |c: &mut Conditions| {
        c.sport = None;
        c.dport = None;
    };
    let no_icmp = |c: &mut Conditions| {
        c.icmp_type = None;
        c.icmp_code = None;
    };
    match c.proto {
        Some(6) => no_icmp(c),
        Some(17 | 132) => {
            no_icmp(c);
            c.tcp_flags = None;
        }
        Some(1 | 58) => {
            no_ports(c);
            c.tcp_flags = None;
        }
        Some(_) => {
            no_icmp(c);
            no_ports(c);
            c.tcp_flags = None;
        }
        None => {
            let icmp = c.icmp_type.is_some() || c.icmp_code.is_some();
            let other = c.sport.is_some() || c.dport.is_some() || c.tcp_flags.is_some();
            if icmp && other {
                if keep_icmp {
                    no_ports(c);
                    c.tcp_flags = None;
                } else {
                    no_icmp(c);
                }
            }
        }
    }
    match (c.proto, c.family) {
        (Some(1), Some(Family::Ipv6)) | (Some(58), Some(Family::Ipv4)) => c.family = None,
        _ => {}
    }
    let src = c.src.as_ref().and_then(literal_family);
    let dst = c.dst.as_ref().and_then(literal_family);
    if let Some(f) = c.family {
        if src.is_some_and(|s| s != f) || dst.is_some_and(|d| d != f) {
            c.family = None;
        }
    }
    if c.family.is_none() {
        if let (Some(s), Some(d)) = (src, dst) {
            if s != d {
                c.dst = None;
            }
        }
    }
    let l4 = c.sport.is_some()
        || c.dport.is_some()
        || c.tcp_flags.is_some()
        || c.icmp_type.is_some()
        || c.icmp_code.is_some();
    if c.fragment == Some(FragMatch::NonFirst) && l4 {
        c.fragment = Some(FragMatch::Any);
    }
}

/// The family of an address condition whose plain entries are all literal
/// networks of one family.
fn literal_family(m: &AddrMatch) -> Option<Family> {
    let mut family = None;
    for item in &m.include {
        let AddrItem::Net(n) = item else { return None };
        let this = if n.addr().is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        if family.is_some_and(|f| f != this) {
            return None;
        }
        family = Some(this);
    }
    family
}

fn action() -> impl Strategy<Value = Act> {
    // Rate limits: tiny bursts (timing decides soon), huge ones (all pass),
    // slow and fast refills.
    let rate = (
        prop_oneof![Just(1u64), Just(1_000), Just(1_000_000_000)],
        prop_oneof![Just(1u64), Just(3), Just(1_000_000)],
        any::<bool>(),
    )
        .prop_map(|(pps, burst, by_src)| Act::RateLimit(pps, burst, by_src));
    prop_oneof![
        6 => Just(Act::Drop),
        4 => Just(Act::Pass),
        4 => Just(Act::Count),
        1 => Just(Act::Redirect),
        2 => rate,
    ]
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![Just(Verdict::Pass), Just(Verdict::Drop)]
}

fn rule(density: u32) -> impl Strategy<Value = RuleSpec> {
    (conditions(density), action()).prop_map(|(cond, action)| RuleSpec { cond, action })
}

/// A crowd: rules that share one condition (none, `proto = 6`,
/// `family = "ipv4"` or `fragment = "none"`) and rarely have another, so
/// more than 32 of them (`XW_MAX_CANDS`) land in one candidate list, which
/// overflows, and the data plane falls back to its bitmap scan.
fn crowd(n: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<RuleSpec>> {
    (0u8..4, vec((conditions(5), action(), any::<bool>()), n)).prop_map(|(theme, rules)| {
        rules
            .into_iter()
            .map(|(mut cond, action, keep_icmp)| {
                match theme {
                    0 => {}
                    1 => cond.proto = Some(6),
                    2 => cond.family = Some(Family::Ipv4),
                    _ => cond.fragment = Some(FragMatch::None),
                }
                make_valid(&mut cond, keep_icmp);
                RuleSpec { cond, action }
            })
            .collect()
    })
}

/// The rules of a config: mostly 1–40 independent rules; sometimes a crowd
/// of 36–40 (candidate lists overflow); now and then 41–150 rules, so that
/// bitmaps span several 64-bit words (independent rules, or a crowd).
fn rules() -> impl Strategy<Value = Vec<RuleSpec>> {
    prop_oneof![
        12 => vec(rule(100), 1..=40),
        3 => crowd(36..=40),
        1 => vec(rule(40), 41..=150),
        1 => crowd(41..=150),
    ]
}

/// A whole config: its rules, three sets, default and malformed policies.
pub fn config() -> impl Strategy<Value = ConfigSpec> {
    (
        verdict(),
        verdict(),
        set_entries(false),
        set_entries(false),
        set_entries(true),
        rules(),
    )
        .prop_map(
            |(default, malformed, small, mixed, big, rules)| ConfigSpec {
                default,
                malformed,
                sets: vec![
                    (SET_NAMES[0].to_string(), small),
                    (SET_NAMES[1].to_string(), mixed),
                    (SET_NAMES[2].to_string(), big),
                ],
                rules,
            },
        )
}

// ------------------------------------------------------------ TOML

fn item_text(item: &AddrItem) -> String {
    match item {
        AddrItem::Net(n) => n.to_string(),
        AddrItem::Set(s) => format!("@{s}"),
    }
}

fn addr_toml(m: &AddrMatch) -> String {
    let items: Vec<String> = m
        .include
        .iter()
        .map(|i| format!("\"{}\"", item_text(i)))
        .chain(m.exclude.iter().map(|i| format!("\"!{}\"", item_text(i))))
        .collect();
    format!("[{}]", items.join(", "))
}

fn ports_toml(rs: &[PortRange]) -> String {
    let items: Vec<String> = rs
        .iter()
        .map(|r| {
            if r.lo == r.hi {
                r.lo.to_string()
            } else {
                format!("\"{}-{}\"", r.lo, r.hi)
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

const FLAG_NAMES: [&str; 8] = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"];

fn flags_toml(f: TcpFlags) -> String {
    let mut parts = Vec::new();
    for (bit, name) in FLAG_NAMES.iter().enumerate() {
        if f.set & (1 << bit) != 0 {
            parts.push((*name).to_string());
        }
        if f.clear & (1 << bit) != 0 {
            parts.push(format!("!{name}"));
        }
    }
    format!("\"{}\"", parts.join(","))
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Drop => "drop",
    }
}

impl ConfigSpec {
    /// The config as `rules.toml` text.
    pub fn toml(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "[xdp]\ndefault = \"{}\"\nmalformed = \"{}\"\n",
            verdict_name(self.default),
            verdict_name(self.malformed)
        );
        t.push_str("[sets]\n");
        for (name, entries) in &self.sets {
            let items: Vec<String> = entries.iter().map(|n| format!("\"{n}\"")).collect();
            let _ = writeln!(t, "{name} = [{}]", items.join(", "));
        }
        for (i, r) in self.rules.iter().enumerate() {
            let c = &r.cond;
            let _ = writeln!(t, "\n[[rule]]\nname = \"r{i}\"");
            if let Some(m) = &c.src {
                let _ = writeln!(t, "src = {}", addr_toml(m));
            }
            if let Some(m) = &c.dst {
                let _ = writeln!(t, "dst = {}", addr_toml(m));
            }
            if let Some(p) = c.proto {
                let _ = writeln!(t, "proto = {p}");
            }
            if let Some(p) = &c.sport {
                let _ = writeln!(t, "sport = {}", ports_toml(p));
            }
            if let Some(p) = &c.dport {
                let _ = writeln!(t, "dport = {}", ports_toml(p));
            }
            if let Some(f) = c.tcp_flags {
                let _ = writeln!(t, "tcp_flags = {}", flags_toml(f));
            }
            if let Some(x) = c.icmp_type {
                let _ = writeln!(t, "icmp_type = {x}");
            }
            if let Some(x) = c.icmp_code {
                let _ = writeln!(t, "icmp_code = {x}");
            }
            if let Some(f) = c.family {
                let _ = writeln!(
                    t,
                    "family = \"{}\"",
                    if f == Family::Ipv4 { "ipv4" } else { "ipv6" }
                );
            }
            if let Some(v) = c.vlan {
                let _ = writeln!(t, "vlan = {v}");
            }
            if let Some(f) = c.fragment {
                let word = match f {
                    FragMatch::Any => "any",
                    FragMatch::First => "first",
                    FragMatch::NonFirst => "non-first",
                    FragMatch::None => "none",
                };
                let _ = writeln!(t, "fragment = \"{word}\"");
            }
            let _ = match r.action {
                Act::Pass => writeln!(t, "action = \"pass\""),
                Act::Drop => writeln!(t, "action = \"drop\""),
                Act::Count => writeln!(t, "action = \"count\""),
                Act::Redirect => writeln!(t, "redirect = \"{REDIRECT_TARGET}\""),
                Act::RateLimit(pps, burst, by_src) => writeln!(
                    t,
                    "rate_limit = {{ pps = {pps}, burst = {burst}, by = \"{}\" }}",
                    if by_src { "src" } else { "rule" }
                ),
            };
        }
        t
    }
}

/// Reads config text the way `xdpwall` does; panics with the diagnostics
/// (a generator bug, or a validator stricter than DESIGN.md).
pub fn config_of(toml: &str) -> Config {
    xdpwall_rules::parse_config(toml, Path::new("differential.toml")).unwrap_or_else(|e| {
        panic!("generated config refused by the validator:\n{e}\n--- config ---\n{toml}")
    })
}
