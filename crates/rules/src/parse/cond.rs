//! Rule conditions: addresses, protocol, ports, TCP flags and the simple
//! keyword/number conditions.

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};

use super::sets::{parse_net, valid_set_name};
use super::value::{field, int_range, keyword, mismatch, string};
use super::{Ctx, Value};
use crate::model::{
    AddrItem, AddrMatch, Conditions, Family, FragMatch, IpSet, PortRange, TcpFlags,
};

/// Protocol names accepted by `proto`, with their IP protocol numbers.
pub(crate) const PROTOS: &[(&str, u8)] = &[
    ("tcp", 6),
    ("udp", 17),
    ("icmp", 1),
    ("icmpv6", 58),
    ("sctp", 132),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ipip", 4),
    ("ipv6", 41),
    ("ospf", 89),
];

/// TCP flag names in bit order, with their bits in the flags byte.
pub(crate) const TCP_FLAGS: &[(&str, u8)] = &[
    ("fin", 0x01),
    ("syn", 0x02),
    ("rst", 0x04),
    ("psh", 0x08),
    ("ack", 0x10),
    ("urg", 0x20),
    ("ece", 0x40),
    ("cwr", 0x80),
];

const FAMILIES: &[(&str, Family)] = &[("ipv4", Family::Ipv4), ("ipv6", Family::Ipv6)];
const FRAGMENTS: &[(&str, FragMatch)] = &[
    ("any", FragMatch::Any),
    ("first", FragMatch::First),
    ("non-first", FragMatch::NonFirst),
    ("none", FragMatch::None),
];
const ADDR_HINT: &str = "a CIDR, an address or \"@set\" (optionally prefixed with `!`), or a \
                         list of them";
const PORT_HINT: &str = "a port, \"lo-hi\" or a list of them";

/// The name of IP protocol `number`, if it has one here.
pub(crate) fn proto_name(number: u8) -> Option<&'static str> {
    PROTOS
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(name, _)| *name)
}

/// Parses every condition key of a rule; a key with an error stays `None`.
pub(super) fn parse_conditions(
    cx: &mut Ctx<'_>,
    t: &DeTable<'_>,
    sets: &BTreeMap<String, IpSet>,
) -> Conditions {
    Conditions {
        src: field(t, "src").and_then(|v| parse_addr(cx, "src", v, sets)),
        dst: field(t, "dst").and_then(|v| parse_addr(cx, "dst", v, sets)),
        proto: field(t, "proto").and_then(|v| parse_proto(cx, v)),
        sport: field(t, "sport").and_then(|v| parse_ports(cx, "sport", v)),
        dport: field(t, "dport").and_then(|v| parse_ports(cx, "dport", v)),
        tcp_flags: field(t, "tcp_flags").and_then(|v| parse_tcp_flags(cx, v)),
        icmp_type: field(t, "icmp_type").and_then(|v| byte(cx, "icmp_type", v)),
        icmp_code: field(t, "icmp_code").and_then(|v| byte(cx, "icmp_code", v)),
        family: field(t, "family").and_then(|v| keyword(cx, "family", v, FAMILIES)),
        vlan: field(t, "vlan")
            .and_then(|v| int_range(cx, "vlan", v, 0, 4095))
            .map(to_u16),
        fragment: field(t, "fragment").and_then(|v| keyword(cx, "fragment", v, FRAGMENTS)),
    }
}

fn to_u16(n: i128) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn byte(cx: &mut Ctx<'_>, label: &str, value: &Value<'_>) -> Option<u8> {
    int_range(cx, label, value, 0, 255).and_then(|n| u8::try_from(n).ok())
}

/// `src`/`dst`: one entry or a non-empty list; `!` entries exclude.
fn parse_addr(
    cx: &mut Ctx<'_>,
    label: &str,
    value: &Value<'_>,
    sets: &BTreeMap<String, IpSet>,
) -> Option<AddrMatch> {
    let items: Vec<&Value<'_>> = match value.get_ref() {
        DeValue::Array(items) if items.is_empty() => {
            cx.error(
                &value.span(),
                format!("{label}: empty list; expected {ADDR_HINT}"),
            );
            return None;
        }
        DeValue::Array(items) => items.iter().collect(),
        _ => vec![value],
    };
    let mut out = AddrMatch::default();
    let mut ok = true;
    for item in items {
        match addr_item(cx, label, item, sets) {
            Some((true, entry)) if !out.exclude.contains(&entry) => out.exclude.push(entry),
            Some((false, entry)) if !out.include.contains(&entry) => out.include.push(entry),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One address entry: `(negated, item)`.
fn addr_item(
    cx: &mut Ctx<'_>,
    label: &str,
    value: &Value<'_>,
    sets: &BTreeMap<String, IpSet>,
) -> Option<(bool, AddrItem)> {
    let text = string(cx, label, value, ADDR_HINT)?;
    let trimmed = text.trim();
    let (negated, body) = match trimmed.strip_prefix('!') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, trimmed),
    };
    let item = match body.strip_prefix('@') {
        Some(name) => set_ref(name, sets).map(AddrItem::Set),
        None => parse_net(body).map(AddrItem::Net),
    };
    match item {
        Ok(item) => Some((negated, item)),
        Err(message) => {
            cx.error(&value.span(), format!("{label}: {message}"));
            None
        }
    }
}

fn set_ref(name: &str, sets: &BTreeMap<String, IpSet>) -> Result<String, String> {
    if sets.contains_key(name) {
        return Ok(name.to_string());
    }
    if !valid_set_name(name) {
        return Err(format!(
            "`@{name}` is not a valid set name; use letters, digits, `_`, `-`"
        ));
    }
    let defined: Vec<String> = sets.keys().map(|n| format!("@{n}")).collect();
    Err(if defined.is_empty() {
        format!("unknown set `@{name}`; no sets are defined in [sets]")
    } else {
        format!(
            "unknown set `@{name}`; defined sets: {}",
            defined.join(", ")
        )
    })
}

/// `proto`: a name (case-insensitive) or a number 0–255.
fn parse_proto(cx: &mut Ctx<'_>, value: &Value<'_>) -> Option<u8> {
    let names: Vec<&str> = PROTOS.iter().map(|(name, _)| *name).collect();
    let expected = format!("{} or a number 0-255", names.join(", "));
    match value.get_ref() {
        DeValue::Integer(_) => byte(cx, "proto", value),
        DeValue::String(text) => {
            let text = text.trim();
            let named = PROTOS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(text));
            let number = named.map(|(_, n)| *n).or_else(|| text.parse::<u8>().ok());
            if number.is_none() {
                let message = format!("proto: unknown protocol `{text}`; expected {expected}");
                cx.error(&value.span(), message);
            }
            number
        }
        _ => {
            mismatch(cx, "proto", value, &expected);
            None
        }
    }
}

/// `sport`/`dport`: sorted, overlapping and adjacent ranges merged.
fn parse_ports(cx: &mut Ctx<'_>, label: &str, value: &Value<'_>) -> Option<Vec<PortRange>> {
    let items: Vec<&Value<'_>> = match value.get_ref() {
        DeValue::Array(items) if items.is_empty() => {
            cx.error(
                &value.span(),
                format!("{label}: empty list; expected {PORT_HINT}"),
            );
            return None;
        }
        DeValue::Array(items) => items.iter().collect(),
        _ => vec![value],
    };
    let mut ranges = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match port_item(cx, label, item) {
            Some(range) => ranges.push(range),
            None => ok = false,
        }
    }
    ok.then(|| merge_ranges(ranges))
}

fn port_item(cx: &mut Ctx<'_>, label: &str, value: &Value<'_>) -> Option<PortRange> {
    match value.get_ref() {
        DeValue::Integer(_) => {
            let port = to_u16(int_range(cx, label, value, 0, 65535)?);
            Some(PortRange { lo: port, hi: port })
        }
        DeValue::String(text) => match parse_port_text(text) {
            Ok(range) => Some(range),
            Err(message) => {
                cx.error(&value.span(), format!("{label}: {message}"));
                None
            }
        },
        _ => {
            mismatch(cx, label, value, PORT_HINT);
            None
        }
    }
}

/// `"22"` or `"1024-65535"`.
pub(crate) fn parse_port_text(text: &str) -> Result<PortRange, String> {
    let (lo, hi) = match text.split_once('-') {
        Some((lo, hi)) => (lo.trim(), hi.trim()),
        None => (text.trim(), text.trim()),
    };
    let lo = port_number(lo, text)?;
    let hi = port_number(hi, text)?;
    if lo > hi {
        return Err(format!("range {lo}-{hi} is inverted; write {hi}-{lo}"));
    }
    Ok(PortRange { lo, hi })
}

fn port_number(digits: &str, whole: &str) -> Result<u16, String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{whole}` is not a port or range; expected e.g. \"22\" or \"1024-65535\""
        ));
    }
    digits
        .parse::<u16>()
        .map_err(|_| format!("{digits} is out of range 0-65535"))
}

/// Sorts ranges and merges overlapping or adjacent ones.
pub(crate) fn merge_ranges(mut ranges: Vec<PortRange>) -> Vec<PortRange> {
    ranges.sort_unstable();
    let mut merged: Vec<PortRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if u32::from(range.lo) <= u32::from(last.hi) + 1 => {
                last.hi = last.hi.max(range.hi);
            }
            _ => merged.push(range),
        }
    }
    merged
}

fn parse_tcp_flags(cx: &mut Ctx<'_>, value: &Value<'_>) -> Option<TcpFlags> {
    let text = string(cx, "tcp_flags", value, "a string like \"syn,!ack\"")?;
    match parse_flags_text(text) {
        Ok(flags) => Some(flags),
        Err(message) => {
            cx.error(&value.span(), format!("tcp_flags: {message}"));
            None
        }
    }
}

/// `"syn,!ack"`: names separated by commas or spaces; `!` means clear.
pub(crate) fn parse_flags_text(text: &str) -> Result<TcpFlags, String> {
    let mut flags = TcpFlags { set: 0, clear: 0 };
    let tokens = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty());
    for token in tokens {
        let (clear, name) = match token.strip_prefix('!') {
            Some(name) => (true, name),
            None => (false, token),
        };
        let bit = flag_bit(name)?;
        if clear {
            flags.clear |= bit;
        } else {
            flags.set |= bit;
        }
        if flags.set & flags.clear & bit != 0 {
            return Err(format!(
                "`{}` is both required set and clear",
                name.to_lowercase()
            ));
        }
    }
    if flags.set | flags.clear == 0 {
        return Err("no flags given; expected e.g. \"syn,!ack\"".to_string());
    }
    Ok(flags)
}

fn flag_bit(name: &str) -> Result<u8, String> {
    TCP_FLAGS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, bit)| *bit)
        .ok_or_else(|| {
            let names: Vec<&str> = TCP_FLAGS.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown flag `{name}`; expected {} (prefix `!` for clear)",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(lo: u16, hi: u16) -> PortRange {
        PortRange { lo, hi }
    }

    #[test]
    fn port_text() {
        assert_eq!(parse_port_text("22"), Ok(range(22, 22)));
        assert_eq!(parse_port_text("1024 - 65535"), Ok(range(1024, 65535)));
        assert_eq!(
            parse_port_text("2000-1000"),
            Err("range 2000-1000 is inverted; write 1000-2000".into())
        );
        assert_eq!(
            parse_port_text("70000"),
            Err("70000 is out of range 0-65535".into())
        );
        assert!(parse_port_text("ssh").is_err());
        assert!(parse_port_text("1-").is_err());
    }

    #[test]
    fn ranges_merge() {
        let merged = merge_ranges(vec![
            range(80, 80),
            range(22, 22),
            range(81, 90),
            range(85, 100),
        ]);
        assert_eq!(merged, vec![range(22, 22), range(80, 100)]);
        assert_eq!(
            merge_ranges(vec![range(0, 65535), range(65535, 65535)]),
            vec![range(0, 65535)]
        );
    }

    #[test]
    fn flags_text() {
        assert_eq!(
            parse_flags_text("syn,!ack"),
            Ok(TcpFlags {
                set: 0x02,
                clear: 0x10
            })
        );
        assert_eq!(
            parse_flags_text("SYN FIN, !Rst"),
            Ok(TcpFlags {
                set: 0x03,
                clear: 0x04
            })
        );
        assert_eq!(
            parse_flags_text("syn,!syn"),
            Err("`syn` is both required set and clear".into())
        );
        assert!(parse_flags_text("syn,foo")
            .err()
            .is_some_and(|e| e.starts_with("unknown flag `foo`")));
        assert!(parse_flags_text(" , ").is_err());
    }

    #[test]
    fn proto_names() {
        assert_eq!(proto_name(6), Some("tcp"));
        assert_eq!(proto_name(89), Some("ospf"));
        assert_eq!(proto_name(99), None);
    }
}
