//! Frame parsing: from the bytes of one Ethernet frame to the facts rules
//! can see (DESIGN.md "Rule model", parsing paragraph).
//!
//! The parser reads headers in order and stops at the first one it cannot
//! read; each step says which [`Reason`] stops it. Length fields of the IP
//! headers (IPv4 total length, IPv6 payload length) are not consulted: the
//! frame's own length bounds every header (not in DESIGN.md; the data plane
//! does the same).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xdpwall_rules::Family;

/// Ethertype of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// TPID of an 802.1Q (C-)tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad (S-)tag.
pub const ETH_P_8021AD: u16 = 0x88a8;

/// VLAN tags followed; a frame with a further tag is `vlan_too_deep`.
pub const MAX_VLAN_TAGS: usize = 2;
/// IPv6 extension headers walked; a frame with a further one is
/// `ext_too_deep`. DESIGN.md says "a bounded depth"; 8 is the data plane's
/// bound (`MAX_IPV6_EXT` in `bpf/parse.h`).
pub const MAX_IPV6_EXT: usize = 8;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const IPV4_MIN_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
/// Every extension header starts with at least 8 bytes (RFC 8200).
const EXT_MIN_LEN: usize = 8;
/// TCP's header without options: ports, sequence, ack, offset, flags …
const TCP_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
/// SCTP's common header: ports, verification tag, checksum.
const SCTP_HLEN: usize = 12;
/// ICMP/ICMPv6: type, code, checksum.
const ICMP_HLEN: usize = 4;

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;
const IPPROTO_SCTP: u8 = 132;

/// Why a frame could not be parsed far enough. The discriminant is the
/// index of the data plane's malformed counter for the reason (the order of
/// `MALFORMED_REASONS` in the ABI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A header the classification needs extends beyond the frame.
    Truncated = 0,
    /// A header is present but invalid (IP version, IPv4 IHL < 5, TCP data
    /// offset < 5).
    BadHeader = 1,
    /// More IPv6 extension headers than [`MAX_IPV6_EXT`].
    ExtTooDeep = 2,
    /// More VLAN tags than [`MAX_VLAN_TAGS`].
    VlanTooDeep = 3,
}

impl Reason {
    /// Every reason, in counter order.
    pub const ALL: [Reason; 4] = [
        Reason::Truncated,
        Reason::BadHeader,
        Reason::ExtTooDeep,
        Reason::VlanTooDeep,
    ];

    /// Index of the malformed counter (and the data plane's reason code).
    #[must_use]
    pub fn index(self) -> u32 {
        self as u32
    }

    /// The reason from its counter index.
    #[must_use]
    pub fn from_index(i: u32) -> Option<Reason> {
        Reason::ALL.get(usize::try_from(i).ok()?).copied()
    }

    /// The name shown by `stats` and `replay`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Reason::Truncated => "truncated",
            Reason::BadHeader => "bad_header",
            Reason::ExtTooDeep => "ext_too_deep",
            Reason::VlanTooDeep => "vlan_too_deep",
        }
    }
}

/// Fragment state of an IP packet (`fragment` condition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fragment {
    /// Not a fragment. Also an IPv6 "atomic fragment" (a fragment header
    /// with offset 0 and M clear, RFC 6946): it is the whole packet.
    None,
    /// Offset 0 with more-fragments set.
    First,
    /// Offset > 0 (whatever the more-fragments flag). Carries no L4 header.
    NonFirst,
}

/// The network and transport facts of an IP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip {
    /// Source address (its kind is the packet's family).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4's protocol field; for IPv6 the next header after the extension
    /// headers walked (for a non-first fragment: the fragment header's next
    /// header, where the walk stops).
    pub proto: u8,
    /// Fragment state.
    pub fragment: Fragment,
    /// Source and destination port: TCP, UDP and SCTP, not in a non-first
    /// fragment.
    pub ports: Option<(u16, u16)>,
    /// The TCP flags byte (byte 13 of the TCP header): TCP only.
    pub tcp_flags: Option<u8>,
    /// ICMP type and code: protocol 1 in IPv4, 58 in IPv6 only ("ICMP or
    /// ICMPv6 by family"); ICMPv6 in IPv4 or ICMP in IPv6 has none.
    pub icmp: Option<(u8, u8)>,
}

impl Ip {
    /// The address family.
    #[must_use]
    pub fn family(&self) -> Family {
        match self.src {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

/// What the parser learnt about a frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// VLAN ids (low 12 bits of the TCI) of the tags read, outermost first;
    /// at most [`MAX_VLAN_TAGS`]. 802.1Q and 802.1ad tags alike.
    pub vlans: Vec<u16>,
    /// The ethertype after the tags, when parsing got that far.
    pub ethertype: Option<u16>,
    /// The IP facts of a well-formed IPv4/IPv6 packet; `None` for a frame
    /// that is not IP (ARP, LLDP, …), and for a malformed one.
    pub ip: Option<Ip>,
    /// Why parsing stopped early; such a frame is not classified by rules
    /// but by the `malformed` policy.
    pub malformed: Option<Reason>,
}

/// A read position in the frame.
struct Cursor<'a> {
    frame: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// The next `n` bytes without consuming them, or `Truncated`.
    fn peek(&self, n: usize) -> Result<&'a [u8], Reason> {
        self.frame
            .get(self.pos..self.pos.saturating_add(n))
            .filter(|b| b.len() == n)
            .ok_or(Reason::Truncated)
    }

    /// The next `n` bytes, consumed, or `Truncated`.
    fn take(&mut self, n: usize) -> Result<&'a [u8], Reason> {
        let b = self.peek(n)?;
        self.pos += n;
        Ok(b)
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn v4(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
}

fn v6(b: &[u8], at: usize) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(a))
}

/// Parses one frame.
///
/// * Shorter than an Ethernet header (14 bytes): `truncated`.
/// * Ethertype 0x8100 or 0x88a8: a tag (4 bytes, else `truncated`); up to
///   two; a third tag TPID after two tags is `vlan_too_deep` (whether or not
///   its bytes are there).
/// * Not IPv4/IPv6 after the tags: not malformed, no IP facts.
/// * IPv4: 20 bytes, else `truncated`; version ≠ 4 or IHL < 5: `bad_header`;
///   the IHL·4 bytes (options) beyond the frame: `truncated`.
/// * IPv6: 40 bytes, else `truncated`; version ≠ 6: `bad_header` (not in
///   DESIGN.md, which names the reason but not the check; the data plane
///   does it). Extension headers hop-by-hop (0), routing (43), fragment (44),
///   AH (51) and destination options (60) are walked, at most
///   [`MAX_IPV6_EXT`]; another one after those is `ext_too_deep`. Each
///   needs 8 bytes and then its whole length (fragment: 8; AH: (len+2)·4;
///   the others: (len+1)·8), else `truncated`. A non-first fragment ends the
///   walk: what follows is not parsed.
/// * L4 (not in a non-first fragment): TCP needs its 20-byte header (options
///   are not required) and a data offset ≥ 5 (`bad_header`); UDP 8 bytes;
///   SCTP its 12-byte common header; ICMP in IPv4 / ICMPv6 in IPv6 type,
///   code and checksum, 4 bytes. Missing bytes are `truncated`. Other
///   protocols (ICMPv6 in IPv4 included) need nothing. The exact byte counts
///   are not in DESIGN.md; they are the data plane's.
#[must_use]
pub fn parse(frame: &[u8]) -> Parsed {
    let mut p = Parsed::default();
    match parse_into(frame, &mut p) {
        Ok(ip) => p.ip = ip,
        Err(r) => p.malformed = Some(r),
    }
    p
}

fn parse_into(frame: &[u8], p: &mut Parsed) -> Result<Option<Ip>, Reason> {
    let mut c = Cursor { frame, pos: 0 };
    let eth = c.take(ETH_HLEN)?;
    let mut ethertype = be16(eth, 12);
    while ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        if p.vlans.len() == MAX_VLAN_TAGS {
            return Err(Reason::VlanTooDeep);
        }
        let tag = c.take(VLAN_HLEN)?;
        p.vlans.push(be16(tag, 0) & 0x0fff);
        ethertype = be16(tag, 2);
    }
    p.ethertype = Some(ethertype);
    let mut ip = match ethertype {
        ETH_P_IP => parse_ipv4(&mut c)?,
        ETH_P_IPV6 => parse_ipv6(&mut c)?,
        _ => return Ok(None),
    };
    if ip.fragment != Fragment::NonFirst {
        parse_l4(&mut c, &mut ip)?;
    }
    Ok(Some(ip))
}

fn ip_facts(src: IpAddr, dst: IpAddr, proto: u8, fragment: Fragment) -> Ip {
    Ip {
        src,
        dst,
        proto,
        fragment,
        ports: None,
        tcp_flags: None,
        icmp: None,
    }
}

fn parse_ipv4(c: &mut Cursor<'_>) -> Result<Ip, Reason> {
    let base = c.peek(IPV4_MIN_HLEN)?;
    let version = base[0] >> 4;
    let ihl = usize::from(base[0] & 0x0f);
    if version != 4 || ihl < 5 {
        return Err(Reason::BadHeader);
    }
    let h = c.take(ihl * 4)?;
    let frag = be16(h, 6);
    let offset = frag & 0x1fff;
    let more = frag & 0x2000 != 0;
    let fragment = if offset != 0 {
        Fragment::NonFirst
    } else if more {
        Fragment::First
    } else {
        Fragment::None
    };
    Ok(ip_facts(v4(h, 12), v4(h, 16), h[9], fragment))
}

fn is_ipv6_ext(nh: u8) -> bool {
    matches!(
        nh,
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_FRAGMENT | IPPROTO_AH | IPPROTO_DSTOPTS
    )
}

/// IPv6 and its extension headers.
///
/// Several fragment headers (not in DESIGN.md; as the data plane): a
/// non-first one ends the walk; a first one makes the packet `First` unless
/// a later one is non-first; an atomic one changes nothing.
fn parse_ipv6(c: &mut Cursor<'_>) -> Result<Ip, Reason> {
    let h = c.take(IPV6_HLEN)?;
    if h[0] >> 4 != 6 {
        return Err(Reason::BadHeader);
    }
    let (src, dst) = (v6(h, 8), v6(h, 24));
    let mut nh = h[6];
    let mut fragment = Fragment::None;
    let mut walked = 0;
    while is_ipv6_ext(nh) {
        if walked == MAX_IPV6_EXT {
            return Err(Reason::ExtTooDeep);
        }
        let fixed = c.peek(EXT_MIN_LEN)?;
        let len = match nh {
            IPPROTO_FRAGMENT => {
                // Offset (13 bits) << 3 | reserved (2) | M (1).
                let word = be16(fixed, 2);
                if word >> 3 != 0 {
                    fragment = Fragment::NonFirst;
                } else if word & 1 != 0 {
                    fragment = Fragment::First;
                }
                EXT_MIN_LEN
            }
            IPPROTO_AH => (usize::from(fixed[1]) + 2) * 4,
            _ => (usize::from(fixed[1]) + 1) * 8,
        };
        c.take(len)?;
        walked += 1;
        nh = fixed[0];
        if fragment == Fragment::NonFirst {
            break;
        }
    }
    Ok(ip_facts(src, dst, nh, fragment))
}

fn parse_l4(c: &mut Cursor<'_>, ip: &mut Ip) -> Result<(), Reason> {
    let v6 = ip.family() == Family::Ipv6;
    match ip.proto {
        IPPROTO_TCP => {
            let t = c.peek(TCP_HLEN)?;
            if t[12] >> 4 < 5 {
                return Err(Reason::BadHeader);
            }
            ip.ports = Some((be16(t, 0), be16(t, 2)));
            ip.tcp_flags = Some(t[13]);
        }
        IPPROTO_UDP => {
            let u = c.peek(UDP_HLEN)?;
            ip.ports = Some((be16(u, 0), be16(u, 2)));
        }
        IPPROTO_SCTP => {
            let s = c.peek(SCTP_HLEN)?;
            ip.ports = Some((be16(s, 0), be16(s, 2)));
        }
        IPPROTO_ICMP if !v6 => {
            let i = c.peek(ICMP_HLEN)?;
            ip.icmp = Some((i[0], i[1]));
        }
        IPPROTO_ICMPV6 if v6 => {
            let i = c.peek(ICMP_HLEN)?;
            ip.icmp = Some((i[0], i[1]));
        }
        _ => {}
    }
    Ok(())
}
