//! A protocol summary of the first bytes of an Ethernet frame.
//!
//! Layers 2 and 3 (Ethernet, VLAN/QinQ, IPv4 with options, IPv6 with
//! extension headers, ARP) are sliced with etherparse's lax parser, which
//! keeps whatever it could read from truncated or damaged frames. The
//! transport fields are then read straight from the first bytes of the IP
//! payload, so a TCP header cut after the ports still yields the ports, and
//! SCTP (which etherparse does not parse) gets its ports too. A non-first
//! fragment carries no transport header: it gets a protocol but no ports,
//! flags or ICMP type.

use std::net::IpAddr;

use etherparse::{
    IpNumber, LaxIpPayloadSlice, LaxIpv4Slice, LaxIpv6Slice, LaxNetSlice, LaxSlicedPacket,
};

/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_GRE: u8 = 47;
const IPPROTO_AH: u8 = 51;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;
const IPPROTO_SCTP: u8 = 132;
const IPPROTO_UDPLITE: u8 = 136;

/// What could be read from a frame; every field is `None` when the frame
/// does not have it or is too short to tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketSummary {
    /// EtherType after the last VLAN tag (e.g. `0x0806` for ARP).
    pub ether_type: Option<u16>,
    /// Outermost VLAN ID (the service tag of a QinQ frame).
    pub vlan: Option<u16>,
    /// `"ipv4"` or `"ipv6"`.
    pub family: Option<&'static str>,
    /// `"tcp"`, `"udp"`, `"icmp"`, `"icmpv6"`, `"sctp"`, `"gre"`, else the
    /// IP protocol number as a string (after IPv6 extension headers).
    pub proto: Option<String>,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Source port (TCP, UDP, UDP-Lite, SCTP).
    pub sport: Option<u16>,
    /// Destination port (TCP, UDP, UDP-Lite, SCTP).
    pub dport: Option<u16>,
    /// TCP flags, tcpdump style: `"S"`, `"S."`, `"F."`, `"R"`, `"P."`,
    /// `"none"` when no flag is set.
    pub tcp_flags: Option<String>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP or ICMPv6 code.
    pub icmp_code: Option<u8>,
}

/// Summarises an Ethernet frame (possibly truncated); never panics.
pub fn summarize(data: &[u8]) -> PacketSummary {
    let mut s = PacketSummary::default();
    let Ok(pkt) = LaxSlicedPacket::from_ethernet(data) else {
        return s;
    };
    s.vlan = pkt.vlan_ids().first().map(|id| id.value());
    s.ether_type = pkt.ether_payload().map(|p| p.ether_type.0);
    match &pkt.net {
        Some(LaxNetSlice::Ipv4(ip)) => add_ipv4(&mut s, ip),
        Some(LaxNetSlice::Ipv6(ip)) => add_ipv6(&mut s, ip),
        Some(LaxNetSlice::Arp(_)) | None => {}
    }
    s
}

fn add_ipv4(s: &mut PacketSummary, ip: &LaxIpv4Slice<'_>) {
    let h = ip.header();
    s.family = Some("ipv4");
    s.src = Some(IpAddr::V4(h.source_addr()));
    s.dst = Some(IpAddr::V4(h.destination_addr()));
    let non_first_fragment = h.fragments_offset().value() != 0;
    add_transport(s, ip.payload(), non_first_fragment);
}

fn add_ipv6(s: &mut PacketSummary, ip: &LaxIpv6Slice<'_>) {
    let h = ip.header();
    s.family = Some("ipv6");
    s.src = Some(IpAddr::V6(h.source_addr()));
    s.dst = Some(IpAddr::V6(h.destination_addr()));
    let exts = ip.extensions();
    let non_first_fragment = ipv6_non_first_fragment(exts.first_header(), exts.slice());
    add_transport(s, ip.payload(), non_first_fragment);
}

/// Walks the raw bytes of the IPv6 extension headers that etherparse parsed
/// and tells whether one is a fragment header with a non-zero offset.
///
/// etherparse 0.19's `Ipv6ExtensionSliceIter` is not used: on a chain that
/// the lax parser cut short (truncated frame) it reads past the end of the
/// slice (undefined behaviour, caught by the debug-build UB checks).
fn ipv6_non_first_fragment(first: Option<IpNumber>, mut rest: &[u8]) -> bool {
    let Some(mut next) = first.map(|n| n.0) else {
        return false;
    };
    // Every extension header is at least 8 bytes long.
    while let [next_header, len_field, frag_hi, frag_lo, ..] = *rest {
        let len = match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => (usize::from(len_field) + 1) * 8,
            IPPROTO_AH => (usize::from(len_field) + 2) * 4,
            IPPROTO_FRAGMENT if u16::from_be_bytes([frag_hi, frag_lo]) >> 3 != 0 => return true,
            IPPROTO_FRAGMENT => 8,
            _ => return false,
        };
        let Some(after) = rest.get(len..) else {
            return false;
        };
        next = next_header;
        rest = after;
    }
    false
}

fn add_transport(s: &mut PacketSummary, payload: &LaxIpPayloadSlice<'_>, non_first_fragment: bool) {
    let proto = payload.ip_number.0;
    s.proto = Some(proto_name(proto));
    if non_first_fragment {
        return;
    }
    let b = payload.payload;
    match proto {
        IPPROTO_TCP => {
            add_ports(s, b);
            s.tcp_flags = b.get(12..14).map(|f| tcp_flags(f[0], f[1]));
        }
        IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP => add_ports(s, b),
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            s.icmp_type = b.first().copied();
            s.icmp_code = b.get(1).copied();
        }
        _ => {}
    }
}

/// Reads the two big-endian ports that start TCP, UDP and SCTP headers.
fn add_ports(s: &mut PacketSummary, b: &[u8]) {
    s.sport = be16(b, 0);
    s.dport = be16(b, 2);
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// The name of an IP protocol number as used in JSON (`"tcp"`, `"6"`…).
pub fn proto_name(proto: u8) -> String {
    match proto {
        IPPROTO_TCP => "tcp".into(),
        IPPROTO_UDP => "udp".into(),
        IPPROTO_ICMP => "icmp".into(),
        IPPROTO_ICMPV6 => "icmpv6".into(),
        IPPROTO_SCTP => "sctp".into(),
        IPPROTO_GRE => "gre".into(),
        n => n.to_string(),
    }
}

/// tcpdump's flag letters, in tcpdump's order.
const TCP_FLAG_LETTERS: [(u8, char); 8] = [
    (0x01, 'F'),
    (0x02, 'S'),
    (0x04, 'R'),
    (0x08, 'P'),
    (0x10, '.'),
    (0x20, 'U'),
    (0x40, 'E'),
    (0x80, 'W'),
];

/// Formats TCP header bytes 12 (data offset, AE bit) and 13 (flags) like
/// tcpdump: `S`, `S.`, `P.`, `F.`, `R`, `none`.
fn tcp_flags(offset_byte: u8, flags: u8) -> String {
    let mut out: String = TCP_FLAG_LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, c)| *c)
        .collect();
    if offset_byte & 0x01 != 0 {
        out.push('e');
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use etherparse::PacketBuilder;

    fn v4(a: [u8; 4]) -> Option<IpAddr> {
        Some(IpAddr::from(a))
    }

    fn v6(a: [u8; 16]) -> Option<IpAddr> {
        Some(IpAddr::from(a))
    }

    #[test]
    fn tcp_v4_syn() {
        let s = summarize(&tcp4_syn());
        assert_eq!(s.family, Some("ipv4"));
        assert_eq!(s.proto.as_deref(), Some("tcp"));
        assert_eq!((s.src, s.dst), (v4(SRC4), v4(DST4)));
        assert_eq!((s.sport, s.dport), (Some(51512), Some(22)));
        assert_eq!(s.tcp_flags.as_deref(), Some("S"));
        assert_eq!(s.ether_type, Some(ETHERTYPE_IPV4));
        assert_eq!((s.vlan, s.icmp_type, s.icmp_code), (None, None, None));
    }

    #[test]
    fn tcp_flag_combinations() {
        let b = |step: etherparse::PacketBuilderStep<etherparse::TcpHeader>| {
            summarize(&build(|w| step.write(w, b"x"))).tcp_flags
        };
        let tcp = || {
            PacketBuilder::ethernet2(MAC1, MAC2)
                .ipv4(SRC4, DST4, 64)
                .tcp(1, 2, 0, 1000)
        };
        assert_eq!(b(tcp().syn().ack(1)).as_deref(), Some("S."));
        assert_eq!(b(tcp().fin().ack(1)).as_deref(), Some("F."));
        assert_eq!(b(tcp().psh().ack(1)).as_deref(), Some("P."));
        assert_eq!(b(tcp().rst()).as_deref(), Some("R"));
        assert_eq!(b(tcp()).as_deref(), Some("none"));
        assert_eq!(b(tcp().syn().ece().cwr().ns()).as_deref(), Some("SEWe"));
    }

    #[test]
    fn tcp_v6() {
        let s = summarize(&tcp6_syn_ack());
        assert_eq!(s.family, Some("ipv6"));
        assert_eq!((s.src, s.dst), (v6(SRC6), v6(DST6)));
        assert_eq!((s.sport, s.dport), (Some(443), Some(40000)));
        assert_eq!(s.tcp_flags.as_deref(), Some("S."));
        assert_eq!(s.ether_type, Some(ETHERTYPE_IPV6));
    }

    #[test]
    fn udp_v4_and_v6() {
        let s = summarize(&udp4());
        assert_eq!((s.family, s.proto.as_deref()), (Some("ipv4"), Some("udp")));
        assert_eq!(
            (s.sport, s.dport, s.tcp_flags.as_deref()),
            (Some(40000), Some(53), None)
        );
        let s = summarize(&udp6());
        assert_eq!((s.family, s.proto.as_deref()), (Some("ipv6"), Some("udp")));
        assert_eq!(
            (s.src, s.dst, s.sport, s.dport),
            (v6(SRC6), v6(DST6), Some(5353), Some(5353))
        );
    }

    #[test]
    fn icmp_v4_and_v6() {
        let s = summarize(&icmp4_echo_request());
        assert_eq!(s.proto.as_deref(), Some("icmp"));
        assert_eq!(
            (s.icmp_type, s.icmp_code, s.sport, s.dport),
            (Some(8), Some(0), None, None)
        );
        let s = summarize(&icmp6_echo_request());
        assert_eq!(
            (s.family, s.proto.as_deref()),
            (Some("ipv6"), Some("icmpv6"))
        );
        assert_eq!((s.icmp_type, s.icmp_code), (Some(128), Some(0)));
    }

    #[test]
    fn sctp_v4_and_v6() {
        let s = summarize(&sctp4());
        assert_eq!((s.family, s.proto.as_deref()), (Some("ipv4"), Some("sctp")));
        assert_eq!((s.sport, s.dport), (Some(2905), Some(3868)));
        let s = summarize(&sctp6());
        assert_eq!((s.family, s.proto.as_deref()), (Some("ipv6"), Some("sctp")));
        assert_eq!((s.sport, s.dport), (Some(2905), Some(3868)));
    }

    #[test]
    fn gre_and_unknown_protocols_have_names_or_numbers() {
        let gre = build(|w| {
            PacketBuilder::ethernet2(MAC1, MAC2)
                .ipv4(SRC4, DST4, 64)
                .write(w, IpNumber(47), &[0; 8])
        });
        assert_eq!(summarize(&gre).proto.as_deref(), Some("gre"));
        let other = build(|w| {
            PacketBuilder::ethernet2(MAC1, MAC2)
                .ipv4(SRC4, DST4, 64)
                .write(w, IpNumber(99), &[0; 8])
        });
        let s = summarize(&other);
        assert_eq!((s.proto.as_deref(), s.sport), (Some("99"), None));
    }

    #[test]
    fn vlan_and_qinq() {
        let s = summarize(&vlan_udp4());
        assert_eq!((s.vlan, s.ether_type), (Some(100), Some(ETHERTYPE_IPV4)));
        assert_eq!((s.proto.as_deref(), s.dport), (Some("udp"), Some(53)));
        let s = summarize(&qinq_tcp6());
        assert_eq!((s.vlan, s.ether_type), (Some(300), Some(ETHERTYPE_IPV6)));
        assert_eq!(
            (s.proto.as_deref(), s.dport, s.tcp_flags.as_deref()),
            (Some("tcp"), Some(80), Some("S"))
        );
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let s = summarize(&ipv6_exts_udp());
        assert_eq!((s.family, s.proto.as_deref()), (Some("ipv6"), Some("udp")));
        assert_eq!((s.sport, s.dport), (Some(1000), Some(2000)));
    }

    #[test]
    fn arp_has_no_ip_fields() {
        let s = summarize(&arp_request());
        assert_eq!(s.ether_type, Some(ETHERTYPE_ARP));
        assert_eq!(
            s,
            PacketSummary {
                ether_type: Some(ETHERTYPE_ARP),
                ..Default::default()
            }
        );
    }

    #[test]
    fn first_fragment_has_ports_later_fragments_do_not() {
        let s = summarize(&udp4_fragment(0, true));
        assert_eq!(
            (s.proto.as_deref(), s.sport, s.dport),
            (Some("udp"), Some(40000), Some(53))
        );
        let s = summarize(&udp4_fragment(185, false));
        assert_eq!(
            (s.proto.as_deref(), s.sport, s.dport),
            (Some("udp"), None, None)
        );
        assert_eq!((s.src, s.dst), (v4(SRC4), v4(DST4)));
    }

    #[test]
    fn ipv6_fragments() {
        let s = summarize(&udp6_fragment(0, true));
        assert_eq!(
            (s.proto.as_deref(), s.sport, s.dport),
            (Some("udp"), Some(40000), Some(53))
        );
        let s = summarize(&udp6_fragment(100, false));
        assert_eq!((s.family, s.proto.as_deref()), (Some("ipv6"), Some("udp")));
        assert_eq!((s.sport, s.dport), (None, None));
        let s = summarize(&udp6_fragment_with(0, true, true));
        assert_eq!((s.proto.as_deref(), s.dport), (Some("udp"), Some(53)));
        let s = summarize(&udp6_fragment_with(100, false, true));
        assert_eq!((s.proto.as_deref(), s.dport), (Some("udp"), None));
    }

    #[test]
    fn truncated_keeps_what_it_can() {
        let p = tcp4_syn();
        // Ethernet(14) + IPv4(20) + the 4 port bytes only.
        let s = summarize(&p[..38]);
        assert_eq!(
            (s.sport, s.dport, s.tcp_flags),
            (Some(51512), Some(22), None)
        );
        let s = summarize(&p[..20]);
        assert_eq!((s.ether_type, s.family), (Some(ETHERTYPE_IPV4), None));
        assert_eq!(summarize(&p[..13]), PacketSummary::default());
        assert_eq!(summarize(&[]), PacketSummary::default());
    }

    #[test]
    fn every_truncation_of_every_sample_is_safe() {
        for p in all_samples() {
            for len in 0..=p.len() {
                let _ = summarize(&p[..len]);
            }
        }
    }

    #[test]
    fn random_garbage_is_safe() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let samples = all_samples();
        // XDPWALL_FUZZ_ITERS raises the count for a longer local run.
        let iters = std::env::var("XDPWALL_FUZZ_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        for i in 0..iters {
            let mut buf = if i % 2 == 0 {
                let len = (rng.next() % 200) as usize;
                (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>()
            } else {
                samples[i % samples.len()].clone()
            };
            // Flip a few bytes of a valid frame (or of the random one).
            for _ in 0..4 {
                if !buf.is_empty() {
                    let at = (rng.next() as usize) % buf.len();
                    buf[at] = rng.next() as u8;
                }
            }
            let _ = summarize(&buf);
        }
    }
}
