//! Synthetic rule sets for benchmarks and scale tests: many rules of mixed
//! shapes (address prefixes and lists, negations, protocols, single ports,
//! ranges and lists, TCP flags, ICMP types, VLANs, fragments), deterministic
//! for a seed.
//!
//! Every generated rule constrains its source or destination to 10.0.0.0/8
//! or 2001:db8::/32, so probe packets from outside those never match them;
//! the last rule is [`TARGET_RULE`], which the probe [`TARGET_SRC`] hits.

use std::fmt::Write as _;

/// Name of the last rule, hit by probes from [`TARGET_SRC`].
pub const TARGET_RULE: &str = "target";
/// Source address of probe packets that hit the last rule.
pub const TARGET_SRC: [u8; 4] = [192, 0, 2, 1];
/// UDP destination port of the probe that hits the last rule.
pub const TARGET_DPORT: u16 = 5353;

/// A tiny deterministic PRNG (xorshift64*), enough for shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn v4_prefix(rng: &mut Rng) -> String {
    let len = 8 + rng.below(25) as u32; // /8../32 inside 10.0.0.0/8
    let addr = (10u32 << 24) | (rng.next() as u32 & 0x00ff_ffff);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let a = addr & mask;
    format!(
        "{}.{}.{}.{}/{len}",
        a >> 24,
        (a >> 16) & 255,
        (a >> 8) & 255,
        a & 255
    )
}

fn v6_prefix(rng: &mut Rng) -> String {
    let len = 32 + rng.below(97) as u32; // /32../128 inside 2001:db8::/32
    let mut words = [0x2001u16, 0x0db8, 0, 0, 0, 0, 0, 0];
    for w in &mut words[2..] {
        *w = rng.next() as u16;
    }
    let addr = words
        .iter()
        .fold(0u128, |acc, &w| (acc << 16) | u128::from(w));
    let a = addr & (u128::MAX << (128 - len));
    format!("{}/{len}", std::net::Ipv6Addr::from(a))
}

fn addr_value(rng: &mut Rng, v6: bool) -> String {
    let one = |rng: &mut Rng| if v6 { v6_prefix(rng) } else { v4_prefix(rng) };
    match rng.below(10) {
        0..=5 => format!("\"{}\"", one(rng)),
        6..=8 => format!("[\"{}\", \"{}\"]", one(rng), one(rng)),
        _ => format!("[\"{}\", \"!{}\"]", one(rng), one(rng)),
    }
}

fn port_value(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=5 => (1024 + rng.below(60_000)).to_string(),
        6..=7 => {
            let lo = 1024 + rng.below(60_000);
            format!("\"{lo}-{}\"", (lo + rng.below(500)).min(65_535))
        }
        _ => format!(
            "[{}, {}]",
            1024 + rng.below(60_000),
            1024 + rng.below(60_000)
        ),
    }
}

fn one_rule(out: &mut String, i: usize, rng: &mut Rng) {
    let v6 = rng.chance(30);
    let _ = writeln!(out, "[[rule]]\nname = \"r{i}\"");
    let which = rng.below(3); // 0: src, 1: dst, 2: both
    if which != 1 {
        let _ = writeln!(out, "src = {}", addr_value(rng, v6));
    }
    if which != 0 {
        let _ = writeln!(out, "dst = {}", addr_value(rng, v6));
    }
    match rng.below(10) {
        0..=3 => {
            let _ = writeln!(out, "proto = \"tcp\"");
            if rng.chance(70) {
                let _ = writeln!(out, "dport = {}", port_value(rng));
            }
            if rng.chance(20) {
                let _ = writeln!(out, "sport = {}", port_value(rng));
            }
            if rng.chance(25) {
                let _ = writeln!(out, "tcp_flags = \"syn,!ack\"");
            }
        }
        4..=6 => {
            let _ = writeln!(out, "proto = \"udp\"");
            if rng.chance(80) {
                let _ = writeln!(out, "dport = {}", port_value(rng));
            }
        }
        7 => {
            let _ = writeln!(out, "proto = \"{}\"", if v6 { "icmpv6" } else { "icmp" });
            if rng.chance(60) {
                let _ = writeln!(out, "icmp_type = {}", rng.below(20));
            }
        }
        8 => {
            let _ = writeln!(out, "dport = {}", port_value(rng));
        }
        _ => {}
    }
    if rng.chance(5) {
        let _ = writeln!(out, "vlan = {}", 1 + rng.below(4000));
    }
    if rng.chance(3) {
        let _ = writeln!(out, "fragment = \"any\"");
    }
    let action = match rng.below(10) {
        0..=5 => "drop",
        6..=8 => "pass",
        _ => "count",
    };
    let _ = writeln!(out, "action = \"{action}\"\n");
}

/// A config with `n` rules (`n - 1` random ones, then [`TARGET_RULE`]).
#[must_use]
pub fn mixed_rules_toml(n: usize, seed: u64) -> String {
    let mut rng = Rng(seed | 1);
    let mut out = String::from("[xdp]\ndefault = \"pass\"\n\n");
    for i in 0..n.saturating_sub(1) {
        one_rule(&mut out, i, &mut rng);
    }
    let t = TARGET_SRC;
    let _ = writeln!(
        out,
        "[[rule]]\nname = \"{TARGET_RULE}\"\nsrc = \"{}.{}.{}.{}\"\nproto = \"udp\"\ndport = {TARGET_DPORT}\naction = \"drop\"",
        t[0], t[1], t[2], t[3]
    );
    out
}

/// A rule hit by one of the probes of `bench classify`: name, source,
/// destination port (UDP).
pub struct ProbeRule {
    /// Rule name.
    pub name: &'static str,
    /// Source address the probe comes from.
    pub src: std::net::IpAddr,
    /// UDP destination port.
    pub dport: u16,
}

/// The first IPv4 rule of [`bench_rules_toml`].
pub const FIRST4: ProbeRule = ProbeRule {
    name: "first",
    src: std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)),
    dport: 5300,
};
/// The first IPv6 rule (second overall).
pub const FIRST6: ProbeRule = ProbeRule {
    name: "first6",
    src: std::net::IpAddr::V6(std::net::Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 2)),
    dport: 5300,
};
/// The last IPv6 rule (second to last overall).
pub const LAST6: ProbeRule = ProbeRule {
    name: "target6",
    src: std::net::IpAddr::V6(std::net::Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 1)),
    dport: TARGET_DPORT,
};
/// The last rule.
pub const LAST4: ProbeRule = ProbeRule {
    name: TARGET_RULE,
    src: std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        TARGET_SRC[0],
        TARGET_SRC[1],
        TARGET_SRC[2],
        TARGET_SRC[3],
    )),
    dport: TARGET_DPORT,
};

/// The TOML of one probe rule (UDP from its source to its port: drop).
#[must_use]
pub fn probe_rule_toml(r: &ProbeRule) -> String {
    format!(
        "[[rule]]\nname = \"{}\"\nsrc = \"{}\"\nproto = \"udp\"\ndport = {}\naction = \"drop\"\n\n",
        r.name, r.src, r.dport
    )
}

/// A config of `n` rules (n >= 4) for `bench classify`: [`FIRST4`],
/// [`FIRST6`], `n - 4` random rules as in [`mixed_rules_toml`], [`LAST6`],
/// [`LAST4`]. Probes from the probe rules' sources (outside 10.0.0.0/8 and
/// 2001:db8::/32) match no random rule.
#[must_use]
pub fn bench_rules_toml(n: usize, seed: u64) -> String {
    let mut rng = Rng(seed | 1);
    let mut out = String::from("[xdp]\ndefault = \"pass\"\n\n");
    out.push_str(&probe_rule_toml(&FIRST4));
    out.push_str(&probe_rule_toml(&FIRST6));
    for i in 0..n.saturating_sub(4) {
        one_rule(&mut out, i, &mut rng);
    }
    out.push_str(&probe_rule_toml(&LAST6));
    out.push_str(&probe_rule_toml(&LAST4));
    out
}

/// `n` distinct IPv4 /32s and /24s outside 10.0.0.0/8 and 192.0.2.0/24, one per
/// line (a set file), deterministic for a seed.
#[must_use]
pub fn set_file_lines(n: usize, seed: u64) -> String {
    let mut rng = Rng(seed | 1);
    let mut out = String::with_capacity(n * 18);
    for i in 0..n {
        // Walk 100.64.0.0/10 and beyond by index, so entries are distinct.
        let a = 0x6440_0000u32.wrapping_add(i as u32 * 3);
        let len = if rng.chance(10) { 31 } else { 32 };
        let a = if len == 31 { a & !1 } else { a };
        let _ = writeln!(
            out,
            "{}.{}.{}.{}/{len}",
            a >> 24,
            (a >> 16) & 255,
            (a >> 8) & 255,
            a & 255
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_rules_parse_and_end_with_target() {
        let text = mixed_rules_toml(500, 7);
        let cfg = crate::parse_config(&text, std::path::Path::new("synth.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(cfg.rules.len(), 500);
        assert_eq!(cfg.rules[499].name, TARGET_RULE);
        // Mixed shapes, not one shape repeated.
        let shapes: std::collections::BTreeSet<String> = cfg
            .rules
            .iter()
            .map(|r| {
                format!(
                    "{}{}{}{}{}",
                    r.cond.src.is_some() as u8,
                    r.cond.dst.is_some() as u8,
                    r.cond.proto.unwrap_or(0),
                    r.cond.dport.is_some() as u8,
                    r.cond.tcp_flags.is_some() as u8
                )
            })
            .collect();
        assert!(shapes.len() > 20, "only {} shapes", shapes.len());
        assert_eq!(mixed_rules_toml(50, 7), mixed_rules_toml(50, 7));
    }

    #[test]
    fn bench_rules_put_the_probe_rules_first_and_last() {
        let cfg = crate::parse_config(&bench_rules_toml(100, 1), std::path::Path::new("x"))
            .expect("parses");
        let names: Vec<&str> = cfg.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), 100);
        assert_eq!(&names[..2], ["first", "first6"]);
        assert_eq!(&names[98..], ["target6", "target"]);
    }

    #[test]
    fn set_lines_are_distinct() {
        let text = set_file_lines(1000, 3);
        let mut lines: Vec<&str> = text.lines().collect();
        let n = lines.len();
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), n);
    }
}
