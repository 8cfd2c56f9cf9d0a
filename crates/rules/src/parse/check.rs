//! Conditions that can never match together (DESIGN.md "Config file").

use toml::de::DeTable;

use super::cond::proto_name;
use super::value::key_span;
use super::Ctx;
use crate::model::{AddrItem, AddrMatch, Conditions, Family, FragMatch};

const TCP: u8 = 6;
const UDP: u8 = 17;
const SCTP: u8 = 132;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// Reports every combination of `cond`'s conditions that cannot match.
pub(super) fn check_conditions(cx: &mut Ctx<'_>, t: &DeTable<'_>, cond: &Conditions) {
    check_proto(cx, t, cond);
    check_l4_mix(cx, t, cond);
    check_icmp_family(cx, t, cond);
    check_address_families(cx, t, cond);
    check_non_first_fragment(cx, t, cond);
}

/// `proto`'s name, or its number.
fn proto_label(proto: u8) -> String {
    proto_name(proto).map_or_else(|| proto.to_string(), str::to_string)
}

/// The L4 keys present in `cond`, in a fixed order.
fn l4_keys(cond: &Conditions) -> Vec<&'static str> {
    [
        ("sport", cond.sport.is_some()),
        ("dport", cond.dport.is_some()),
        ("tcp_flags", cond.tcp_flags.is_some()),
        ("icmp_type", cond.icmp_type.is_some()),
        ("icmp_code", cond.icmp_code.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, present)| present.then_some(key))
    .collect()
}

fn report(cx: &mut Ctx<'_>, t: &DeTable<'_>, key: &str, message: String) {
    if let Some(span) = key_span(t, key) {
        cx.error(&span, message);
    }
}

/// Ports, TCP flags and ICMP fields need a protocol that has them.
fn check_proto(cx: &mut Ctx<'_>, t: &DeTable<'_>, cond: &Conditions) {
    let Some(proto) = cond.proto else { return };
    let name = proto_label(proto);
    for key in l4_keys(cond) {
        let message = match key {
            "sport" | "dport" if ![TCP, UDP, SCTP].contains(&proto) => {
                format!("{key}: ports need proto tcp, udp or sctp; proto {name} has no ports")
            }
            "tcp_flags" if proto != TCP => {
                format!("tcp_flags: needs proto tcp; proto {name} has no tcp flags")
            }
            "icmp_type" | "icmp_code" if ![ICMP, ICMPV6].contains(&proto) => {
                let what = key.replace('_', " ");
                format!("{key}: needs proto icmp or icmpv6; proto {name} has no {what}")
            }
            _ => continue,
        };
        report(cx, t, key, message);
    }
}

/// Without `proto`, ICMP fields exclude ports and TCP flags.
fn check_l4_mix(cx: &mut Ctx<'_>, t: &DeTable<'_>, cond: &Conditions) {
    if cond.proto.is_some() {
        return;
    }
    let keys = l4_keys(cond);
    let icmp = keys.iter().find(|k| k.starts_with("icmp_"));
    let other = keys.iter().find(|k| !k.starts_with("icmp_"));
    if let (Some(icmp), Some(other)) = (icmp, other) {
        let message =
            format!("{icmp}: never matches together with {other}; ICMP has no ports or tcp flags");
        report(cx, t, icmp, message);
    }
}

/// ICMP is IPv4-only and ICMPv6 IPv6-only.
fn check_icmp_family(cx: &mut Ctx<'_>, t: &DeTable<'_>, cond: &Conditions) {
    let message = match (cond.proto, cond.family) {
        (Some(ICMP), Some(Family::Ipv6)) => "family: ipv6 never matches proto icmp; use icmpv6",
        (Some(ICMPV6), Some(Family::Ipv4)) => "family: ipv4 never matches proto icmpv6; use icmp",
        _ => return,
    };
    report(cx, t, "family", message.to_string());
}

/// The family of an address condition whose plain entries are all literal
/// networks of one family (sets may hold both, so they make it `None`).
fn literal_family(m: &AddrMatch) -> Option<Family> {
    let mut family = None;
    for item in &m.include {
        let AddrItem::Net(net) = item else {
            return None;
        };
        let this = match net {
            ipnet::IpNet::V4(_) => Family::Ipv4,
            ipnet::IpNet::V6(_) => Family::Ipv6,
        };
        if family.is_some_and(|f| f != this) {
            return None;
        }
        family = Some(this);
    }
    family
}

fn family_word(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

fn networks_word(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

/// `family` against literal `src`/`dst` networks, and `src` against `dst`.
fn check_address_families(cx: &mut Ctx<'_>, t: &DeTable<'_>, cond: &Conditions) {
    let src = cond.src.as_ref().and_then(literal_family);
    let dst = cond.dst.as_ref().and_then(literal_family);
    if let Some(family) = cond.family {
        for (key, lit) in [("src", src), ("dst", dst)] {
            if let Some(lit) = lit.filter(|l| *l != family) {
                let message = format!(
                    "{key}: has only {} networks, so it never matches family {}",
                    networks_word(lit),
                    family_word(family)
                );
                report(cx, t, key, message);
            }
        }
    } else if let (Some(s), Some(d)) = (src, dst) {
        if s != d {
            let message = format!(
                "dst: has only {} networks but src only {}; a packet has one family, so the \
                 rule never matches",
                networks_word(d),
                networks_word(s)
            );
            report(cx, t, "dst", message);
        }
    }
}

/// Non-first fragments carry no L4 header.
fn check_non_first_fragment(cx: &mut Ctx<'_>, t: &DeTable<'_>, cond: &Conditions) {
    if cond.fragment != Some(FragMatch::NonFirst) {
        return;
    }
    let keys = l4_keys(cond);
    if !keys.is_empty() {
        let message = format!(
            "fragment: \"non-first\" never matches with {}; non-first fragments carry no L4 \
             header",
            keys.join(", ")
        );
        report(cx, t, "fragment", message);
    }
}
