//! The normalised rule table printed by `xdpwall check`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::model::{
    Action, AddrItem, AddrMatch, Conditions, Config, EventsSection, Family, FragMatch, IpSet,
    LogSpec, PortRange, RateBy, Rule, SetSource, TcpFlags, Wakeup, XdpSection,
};
use crate::parse::{proto_name, TCP_FLAGS};

const HEADER: [&str; 5] = ["#", "NAME", "ACTION", "MATCH", "LOG"];

/// Renders `cfg` as plain text: a header and one aligned row per rule
/// (`#` is the rule id, i.e. its 0-based position), then one line per set and
/// one line with the `[xdp]` and `[events]` settings. Deterministic.
///
/// ```text
/// #  NAME        ACTION  MATCH                         LOG
/// 0  ssh-admins  pass    ip saddr @admins tcp dport 22  -
/// ```
#[must_use]
pub fn format_rule_table(cfg: &Config) -> String {
    let rows: Vec<[String; 5]> = cfg.rules.iter().enumerate().map(rule_row).collect();
    let mut out = render_rows(&rows);
    if !cfg.sets.is_empty() {
        out.push('\n');
    }
    for set in cfg.sets.values() {
        out.push_str(&set_line(set, cfg));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&settings_line(&cfg.xdp, &cfg.events));
    let by_src = cfg.rules.iter().any(|r| {
        matches!(&r.action, crate::model::Action::RateLimit(rl) if rl.by == crate::model::RateBy::Src)
    });
    if by_src {
        // Shown only where it matters: the table is allocated only then.
        out.push_str(&format!(
            "; rate_limit_table {} sources",
            cfg.xdp.rate_limit_table
        ));
    }
    out.push('\n');
    out
}

fn rule_row((id, rule): (usize, &Rule)) -> [String; 5] {
    [
        id.to_string(),
        rule.name.clone(),
        action_text(&rule.action),
        match_text(&rule.cond),
        log_text(rule.log.as_ref(), rule.sample),
    ]
}

/// The header and `rows`, columns padded to their widest cell.
fn render_rows(rows: &[[String; 5]]) -> String {
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = HEADER.map(str::to_string);
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `pass`, `redirect eth1`, `rate_limit 1000/s burst 2000 by src`, …
pub(crate) fn action_text(action: &Action) -> String {
    match action {
        Action::Redirect(ifname) => format!("redirect {ifname}"),
        Action::RateLimit(rl) => {
            let by = match rl.by {
                RateBy::Src => "src",
                RateBy::Rule => "rule",
            };
            format!("rate_limit {}/s burst {} by {by}", rl.pps, rl.burst)
        }
        other => other.name().to_string(),
    }
}

/// A compact nft-like description of `cond`; `any` when it has none.
pub(crate) fn match_text(cond: &Conditions) -> String {
    let mut parts = Vec::new();
    if let Some(family) = cond.family {
        parts.push(format!("family {}", family_name(family)));
    }
    if let Some(vlan) = cond.vlan {
        parts.push(format!("vlan id {vlan}"));
    }
    let ip = ip_word(cond);
    addr_parts(&mut parts, ip, "saddr", cond.src.as_ref());
    addr_parts(&mut parts, ip, "daddr", cond.dst.as_ref());
    l4_parts(&mut parts, cond);
    if let Some(frag) = cond.fragment {
        parts.push(format!("frag {}", frag_name(frag)));
    }
    if parts.is_empty() {
        "any".to_string()
    } else {
        parts.join(" ")
    }
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

fn frag_name(frag: FragMatch) -> &'static str {
    match frag {
        FragMatch::Any => "any",
        FragMatch::First => "first",
        FragMatch::NonFirst => "non-first",
        FragMatch::None => "none",
    }
}

/// `ip6` when the rule is IPv6-only, else `ip`.
fn ip_word(cond: &Conditions) -> &'static str {
    let v6_only = |m: &Option<AddrMatch>| {
        m.as_ref().is_some_and(|m| {
            !m.include.is_empty()
                && m.include
                    .iter()
                    .all(|i| matches!(i, AddrItem::Net(ipnet::IpNet::V6(_))))
        })
    };
    if cond.family == Some(Family::Ipv6) || v6_only(&cond.src) || v6_only(&cond.dst) {
        "ip6"
    } else {
        "ip"
    }
}

fn addr_parts(parts: &mut Vec<String>, ip: &str, field: &str, m: Option<&AddrMatch>) {
    let Some(m) = m else { return };
    if !m.include.is_empty() {
        parts.push(format!(
            "{ip} {field} {}",
            braced(m.include.iter().map(addr_item))
        ));
    }
    if !m.exclude.is_empty() {
        parts.push(format!(
            "{ip} {field} != {}",
            braced(m.exclude.iter().map(addr_item))
        ));
    }
}

fn addr_item(item: &AddrItem) -> String {
    match item {
        AddrItem::Net(net) => net.to_string(),
        AddrItem::Set(name) => format!("@{name}"),
    }
}

/// One item bare, several as `{ a, b }`.
fn braced(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.as_slice() {
        [one] => one.clone(),
        _ => format!("{{ {} }}", items.join(", ")),
    }
}

fn proto_text(proto: u8) -> String {
    proto_name(proto).map_or_else(|| proto.to_string(), str::to_string)
}

/// Protocol, ports, TCP flags and ICMP fields.
fn l4_parts(parts: &mut Vec<String>, cond: &Conditions) {
    let has_ports = cond.sport.is_some() || cond.dport.is_some() || cond.tcp_flags.is_some();
    let has_icmp = cond.icmp_type.is_some() || cond.icmp_code.is_some();
    let mut words = match (cond.proto, has_ports, has_icmp) {
        (Some(p), true, _) | (Some(p), _, true) => vec![proto_text(p)],
        (Some(p), false, false) => vec![format!("proto {}", proto_text(p))],
        (None, true, _) if cond.tcp_flags.is_some() => vec!["tcp".to_string()],
        (None, true, _) => vec!["th".to_string()],
        (None, false, true) => vec!["icmpx".to_string()],
        (None, false, false) => return,
    };
    if let Some(ports) = &cond.sport {
        words.push(format!("sport {}", ports_text(ports)));
    }
    if let Some(ports) = &cond.dport {
        words.push(format!("dport {}", ports_text(ports)));
    }
    if let Some(flags) = cond.tcp_flags {
        words.push(format!("flags {}", flags_text(flags)));
    }
    if let Some(t) = cond.icmp_type {
        words.push(format!("type {t}"));
    }
    if let Some(c) = cond.icmp_code {
        words.push(format!("code {c}"));
    }
    parts.push(words.join(" "));
}

fn ports_text(ports: &[PortRange]) -> String {
    braced(ports.iter().map(|r| {
        if r.lo == r.hi {
            r.lo.to_string()
        } else {
            format!("{}-{}", r.lo, r.hi)
        }
    }))
}

/// `syn,!ack`: set flags then clear ones, each in bit order.
pub(crate) fn flags_text(flags: TcpFlags) -> String {
    let set = TCP_FLAGS
        .iter()
        .filter(|(_, bit)| flags.set & bit != 0)
        .map(|(n, _)| n.to_string());
    let clear = TCP_FLAGS
        .iter()
        .filter(|(_, bit)| flags.clear & bit != 0)
        .map(|(n, _)| format!("!{n}"));
    set.chain(clear).collect::<Vec<_>>().join(",")
}

fn log_text(log: Option<&LogSpec>, sample: Option<u32>) -> String {
    let mut parts = Vec::new();
    if let Some(log) = log {
        let mut text = "log".to_string();
        if let Some(every) = log.every {
            let _ = write!(text, " every {}", duration_text(every));
        }
        if let Some(snaplen) = log.snaplen {
            let _ = write!(text, " snaplen {snaplen}");
        }
        parts.push(text);
    }
    if let Some(n) = sample {
        parts.push(format!("sample 1/{n}"));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

/// The largest unit of `ns us ms s m` that divides `d` exactly.
pub(crate) fn duration_text(d: Duration) -> String {
    let ns = d.as_nanos();
    let units: [(u128, &str); 4] = [
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    units
        .iter()
        .find(|(size, _)| ns != 0 && ns.checked_rem(*size) == Some(0))
        .map_or_else(
            || format!("{ns}ns"),
            |(size, unit)| format!("{}{unit}", ns / size),
        )
}

/// `1,234,567`: a count with thousands separators, for limits in messages.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `8MiB`, `512KiB`, `1GiB`, or bytes.
pub(crate) fn size_text(bytes: u64) -> String {
    let units: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    units
        .iter()
        .find(|(size, _)| bytes != 0 && bytes.checked_rem(*size) == Some(0))
        .map_or_else(
            || format!("{bytes}B"),
            |(size, unit)| format!("{}{unit}", bytes / size),
        )
}

fn set_line(set: &IpSet, cfg: &Config) -> String {
    let n = set.entries.len();
    let noun = if n == 1 { "entry" } else { "entries" };
    let source = match &set.source {
        SetSource::Inline => "inline".to_string(),
        SetSource::File(path) => {
            let base = cfg.path.parent().unwrap_or(std::path::Path::new(""));
            let shown = path.strip_prefix(base).unwrap_or(path);
            format!("file {}", shown.display())
        }
    };
    format!("set {}: {n} {noun} ({source})", set.name)
}

fn settings_line(xdp: &XdpSection, events: &EventsSection) -> String {
    let wakeup = match events.wakeup {
        Wakeup::Every => "every".to_string(),
        Wakeup::Batch(n) => n.to_string(),
        Wakeup::Adaptive => "adaptive".to_string(),
    };
    format!(
        "xdp: interface {}, mode {}, default {}, malformed {}; events: transport {}, buffer {}, \
         snaplen {}, wakeup {wakeup}",
        xdp.interface.as_deref().unwrap_or("-"),
        xdp.mode.name(),
        xdp.default.name(),
        xdp.malformed.name(),
        events.transport.name(),
        size_text(events.buffer),
        events.snaplen,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_config;
    use std::path::{Path, PathBuf};

    const CONFIG: &str = r#"
[xdp]
interface = "eth0"
[events]
buffer = "512KiB"
wakeup = 32
[sets]
admins = ["192.0.2.10", "2001:db8:1::/64"]
[[rule]]
name = "ssh-admins"
src = ["10.0.0.0/8", "@admins"]
proto = "tcp"
dport = 22
tcp_flags = "syn,!ack"
action = "pass"
[[rule]]
name = "v6-only"
family = "ipv6"
dst = ["!2001:db8::/32", "!@admins"]
vlan = 7
fragment = "first"
redirect = "veth1"
log = { every = "100ms", snaplen = 64 }
sample = 10
[[rule]]
name = "ports"
sport = ["1024-65535", 53]
dport = [80, 443]
action = { rate_limit = { pps = 1000, burst = 2000 } }
[[rule]]
name = "ping"
proto = "icmp"
icmp_type = 8
action = "count"
log = true
[[rule]]
name = "gre"
proto = 47
action = "drop"
[[rule]]
name = "default-drop"
action = "drop"
"#;

    #[test]
    fn table_snapshot() {
        let mut cfg = parse_config(CONFIG, Path::new("/etc/xdpwall/rules.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let entries = vec!["198.51.100.0/24".parse().expect("net")];
        let source = SetSource::File(PathBuf::from("/etc/xdpwall/blocklist.txt"));
        let name = "blocklist".to_string();
        cfg.sets.insert(
            name.clone(),
            IpSet {
                name,
                entries: crate::model::SetEntries::from_nets(entries),
                source,
            },
        );
        let expected = "\
#  NAME          ACTION                               MATCH                                                                     LOG
0  ssh-admins    pass                                 ip saddr { 10.0.0.0/8, @admins } tcp dport 22 flags syn,!ack              -
1  v6-only       redirect veth1                       family ipv6 vlan id 7 ip6 daddr != { 2001:db8::/32, @admins } frag first  log every 100ms snaplen 64, sample 1/10
2  ports         rate_limit 1000/s burst 2000 by src  th sport { 53, 1024-65535 } dport { 80, 443 }                             -
3  ping          count                                icmp type 8                                                               log
4  gre           drop                                 proto gre                                                                 -
5  default-drop  drop                                 any                                                                       -

set admins: 2 entries (inline)
set blocklist: 1 entry (file blocklist.txt)

xdp: interface eth0, mode auto, default pass, malformed pass; events: transport ringbuf, buffer 512KiB, snaplen 128, wakeup 32; rate_limit_table 65536 sources
";
        assert_eq!(format_rule_table(&cfg), expected);
    }

    #[test]
    fn empty_config_table() {
        let cfg = parse_config("", Path::new("rules.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            format_rule_table(&cfg),
            "#  NAME  ACTION  MATCH  LOG\n\nxdp: interface -, mode auto, default pass, malformed pass; \
             events: transport ringbuf, buffer 8MiB, snaplen 128, wakeup adaptive\n"
        );
    }

    #[test]
    fn units() {
        assert_eq!(duration_text(Duration::from_secs(120)), "2m");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration_text(Duration::from_nanos(7)), "7ns");
        assert_eq!(size_text(1 << 30), "1GiB");
        assert_eq!(size_text(4096), "4KiB");
        assert_eq!(size_text(1000), "1000B");
        assert_eq!(
            flags_text(TcpFlags {
                set: 0x12,
                clear: 0x05
            }),
            "syn,ack,!fin,!rst"
        );
    }
}
