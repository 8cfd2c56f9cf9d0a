//! Random frames. A [`PacketSpec`] does not depend on the rule set: its
//! addresses, ports, VLAN ids, ICMP values and TCP flags are *picks* that
//! [`Pools`] resolves against the config at render time (a network's first
//! or last address, one just outside it, a host inside; a range's ends and
//! their neighbours; …), so packets hit the rules' prefixes and ports while
//! proptest shrinks packets and config independently.
//!
//! Valid headers are written with etherparse 0.19 (its IPv6 fragment header
//! is patched, see [`ext_bytes`]); then a spec may cut the frame, flip
//! bytes, or break a version / IHL / data offset on purpose. Other bodies:
//! ARP, other ethertypes, random bytes behind an IP or VLAN ethertype.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    ArpEthIpv4Packet, ArpOperation, EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type,
    Icmpv6Header, Icmpv6Type, IpAuthHeader, IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader,
    Ipv6Header, Ipv6RawExtHeader, SingleVlanHeader, TcpHeader, UdpHeader, VlanId, VlanPcp,
};
use ipnet::IpNet;
use proptest::collection::vec;
use proptest::prelude::*;
use xdpwall_rules::{AddrItem, AddrMatch, Config, PortRange};

// ------------------------------------------------------------ pools

/// Values the rules of a config care about, to aim packets at.
#[derive(Debug, Default)]
pub struct Pools {
    v4: Vec<(u32, u8)>,
    v6: Vec<(u128, u8)>,
    ports: Vec<PortRange>,
    vlans: Vec<u16>,
    icmp: Vec<u8>,
    flags: Vec<(u8, u8)>,
}

impl Pools {
    pub fn of(cfg: &Config) -> Self {
        let mut p = Pools::default();
        let add_net = |p: &mut Pools, n: &IpNet| match n {
            IpNet::V4(n) => p.v4.push((u32::from(n.network()), n.prefix_len())),
            IpNet::V6(n) => p.v6.push((u128::from(n.network()), n.prefix_len())),
        };
        for set in cfg.sets.values() {
            // A large set contributes a sample, not all of it.
            for n in set.entries.iter().take(64) {
                add_net(&mut p, &n);
            }
        }
        let add_match = |p: &mut Pools, m: &AddrMatch| {
            for item in m.include.iter().chain(&m.exclude) {
                if let AddrItem::Net(n) = item {
                    add_net(p, n);
                }
            }
        };
        for r in &cfg.rules {
            let c = &r.cond;
            if let Some(m) = &c.src {
                add_match(&mut p, m);
            }
            if let Some(m) = &c.dst {
                add_match(&mut p, m);
            }
            for rs in [&c.sport, &c.dport].into_iter().flatten() {
                p.ports.extend(rs.iter().copied());
            }
            p.vlans.extend(c.vlan);
            p.icmp.extend(c.icmp_type);
            p.icmp.extend(c.icmp_code);
            p.flags.extend(c.tcp_flags.map(|f| (f.set, f.clear)));
        }
        p
    }
}

fn pick<T: Copy>(pool: &[T], idx: u16) -> Option<T> {
    (!pool.is_empty()).then(|| pool[usize::from(idx) % pool.len()])
}

/// An address: from the pool (`how` says where in or around the network)
/// or random.
#[derive(Debug, Clone, Copy)]
pub struct AddrPick {
    pool: bool,
    idx: u16,
    how: u8,
    bits: u128,
}

fn addr_pick() -> impl Strategy<Value = AddrPick> {
    (
        prop::bool::weighted(0.8),
        any::<u16>(),
        0u8..8,
        any::<u128>(),
    )
        .prop_map(|(pool, idx, how, bits)| AddrPick {
            pool,
            idx,
            how,
            bits,
        })
}

/// Resolves a pick in a `width`-bit address space.
fn place(base: u128, len: u8, width: u32, how: u8, bits: u128) -> u128 {
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    let host = if u32::from(len) >= width {
        0
    } else {
        all >> len
    };
    let first = base & all & !host;
    let last = first | host;
    match how {
        0 => first,
        1 => last,
        2 => first.wrapping_sub(1) & all,
        3 => last.wrapping_add(1) & all,
        _ => first | (bits & host),
    }
}

impl AddrPick {
    fn v4(self, p: &Pools) -> Ipv4Addr {
        let a = match pick(&p.v4, self.idx).filter(|_| self.pool) {
            Some((base, len)) => place(u128::from(base), len, 32, self.how, self.bits),
            None => self.bits & 0xffff_ffff,
        };
        Ipv4Addr::from(u32::try_from(a).unwrap_or(0))
    }

    fn v6(self, p: &Pools) -> Ipv6Addr {
        let a = match pick(&p.v6, self.idx).filter(|_| self.pool) {
            Some((base, len)) => place(base, len, 128, self.how, self.bits),
            None => self.bits,
        };
        Ipv6Addr::from(a)
    }
}

/// A port: a pool range's ends, their neighbours or a port inside; else
/// 0, 65535 or random.
#[derive(Debug, Clone, Copy)]
pub struct PortPick {
    pool: bool,
    idx: u16,
    how: u8,
    raw: u16,
}

fn port_pick() -> impl Strategy<Value = PortPick> {
    (
        prop::bool::weighted(0.75),
        any::<u16>(),
        0u8..6,
        any::<u16>(),
    )
        .prop_map(|(pool, idx, how, raw)| PortPick {
            pool,
            idx,
            how,
            raw,
        })
}

impl PortPick {
    fn get(self, p: &Pools) -> u16 {
        match pick(&p.ports, self.idx).filter(|_| self.pool) {
            Some(r) => match self.how {
                0 => r.lo,
                1 => r.hi,
                2 => r.lo.wrapping_sub(1),
                3 => r.hi.wrapping_add(1),
                _ => {
                    r.lo.wrapping_add(self.raw % (r.hi - r.lo).saturating_add(1))
                }
            },
            None => match self.how {
                0 => 0,
                1 => 65535,
                _ => self.raw,
            },
        }
    }
}

/// A small value (VLAN id, ICMP type/code) from a pool or raw.
#[derive(Debug, Clone, Copy)]
pub struct SmallPick {
    pool: bool,
    idx: u16,
    raw: u16,
}

fn small_pick() -> impl Strategy<Value = SmallPick> {
    (prop::bool::weighted(0.7), any::<u16>(), any::<u16>()).prop_map(|(pool, idx, raw)| SmallPick {
        pool,
        idx,
        raw,
    })
}

impl SmallPick {
    fn vlan(self, p: &Pools) -> u16 {
        pick(&p.vlans, self.idx)
            .filter(|_| self.pool)
            .unwrap_or(self.raw & 0x0fff)
    }
    fn icmp(self, p: &Pools) -> u8 {
        pick(&p.icmp, self.idx)
            .filter(|_| self.pool)
            .unwrap_or(self.raw as u8)
    }
}

/// TCP flags: what a pool rule wants (plus noise outside its masks), that
/// with one bit flipped, or random.
#[derive(Debug, Clone, Copy)]
pub struct FlagsPick {
    pool: bool,
    idx: u16,
    how: u8,
    raw: u8,
}

fn flags_pick() -> impl Strategy<Value = FlagsPick> {
    (prop::bool::weighted(0.7), any::<u16>(), 0u8..3, any::<u8>()).prop_map(
        |(pool, idx, how, raw)| FlagsPick {
            pool,
            idx,
            how,
            raw,
        },
    )
}

impl FlagsPick {
    fn get(self, p: &Pools) -> u8 {
        match pick(&p.flags, self.idx).filter(|_| self.pool) {
            Some((set, clear)) => {
                let fit = set | (self.raw & !clear);
                match self.how {
                    0 | 1 => fit,
                    _ => fit ^ (1 << (self.raw % 8)),
                }
            }
            None => self.raw,
        }
    }
}

// ------------------------------------------------------------ specs

#[derive(Debug, Clone)]
pub enum L4Spec {
    /// `opts`: 4-byte words of NOP options; `doff`: a data offset written
    /// over the real one (possibly < 5).
    Tcp {
        sport: PortPick,
        dport: PortPick,
        flags: FlagsPick,
        opts: u8,
        doff: Option<u8>,
    },
    Udp {
        sport: PortPick,
        dport: PortPick,
    },
    Sctp {
        sport: PortPick,
        dport: PortPick,
    },
    Icmp {
        ty: SmallPick,
        code: SmallPick,
    },
    Icmp6 {
        ty: SmallPick,
        code: SmallPick,
    },
    /// Any protocol number, no header of its own (the payload follows).
    Other(u8),
}

impl L4Spec {
    fn proto(&self) -> u8 {
        match self {
            L4Spec::Tcp { .. } => 6,
            L4Spec::Udp { .. } => 17,
            L4Spec::Sctp { .. } => 132,
            L4Spec::Icmp { .. } => 1,
            L4Spec::Icmp6 { .. } => 58,
            L4Spec::Other(p) => *p,
        }
    }
}

fn l4() -> impl Strategy<Value = L4Spec> {
    prop_oneof![
        6 => (port_pick(), port_pick(), flags_pick(), prop_oneof![4 => Just(0u8), 1 => 0u8..=10], prop::option::weighted(0.06, 0u8..16))
            .prop_map(|(sport, dport, flags, opts, doff)| L4Spec::Tcp { sport, dport, flags, opts, doff }),
        4 => (port_pick(), port_pick()).prop_map(|(sport, dport)| L4Spec::Udp { sport, dport }),
        2 => (port_pick(), port_pick()).prop_map(|(sport, dport)| L4Spec::Sctp { sport, dport }),
        2 => (small_pick(), small_pick()).prop_map(|(ty, code)| L4Spec::Icmp { ty, code }),
        2 => (small_pick(), small_pick()).prop_map(|(ty, code)| L4Spec::Icmp6 { ty, code }),
        1 => prop_oneof![Just(47u8), Just(4u8), Just(41u8), Just(50u8), any::<u8>()].prop_map(L4Spec::Other),
    ]
}

/// IPv4 fragment state.
#[derive(Debug, Clone, Copy)]
pub enum Frag4 {
    None,
    DontFragment,
    First,
    /// Offset in 8-byte units (> 0), more-fragments flag.
    Later(u16, bool),
}

fn frag4() -> impl Strategy<Value = Frag4> {
    prop_oneof![
        4 => Just(Frag4::None),
        3 => Just(Frag4::DontFragment),
        2 => Just(Frag4::First),
        2 => (1u16..8192, any::<bool>()).prop_map(|(o, m)| Frag4::Later(o, m)),
    ]
}

/// IPv6 extension header; sizes in the header's own units.
#[derive(Debug, Clone, Copy)]
pub enum ExtSpec {
    HopByHop(u8),
    Routing(u8),
    DestOpts(u8),
    /// Offset in 8-byte units (0: first or atomic), M flag.
    Fragment(u16, bool),
    /// ICV length in 4-byte words.
    Ah(u8),
}

impl ExtSpec {
    fn number(self) -> u8 {
        match self {
            ExtSpec::HopByHop(_) => 0,
            ExtSpec::Routing(_) => 43,
            ExtSpec::Fragment(..) => 44,
            ExtSpec::Ah(_) => 51,
            ExtSpec::DestOpts(_) => 60,
        }
    }
}

fn ext() -> impl Strategy<Value = ExtSpec> {
    prop_oneof![
        2 => (0u8..3).prop_map(ExtSpec::HopByHop),
        2 => (0u8..3).prop_map(ExtSpec::Routing),
        3 => (0u8..3).prop_map(ExtSpec::DestOpts),
        3 => prop_oneof![Just(0u16), 1u16..8192].prop_flat_map(|o| (Just(o), any::<bool>())).prop_map(|(o, m)| ExtSpec::Fragment(o, m)),
        1 => (0u8..5).prop_map(ExtSpec::Ah),
    ]
}

fn exts() -> impl Strategy<Value = Vec<ExtSpec>> {
    prop_oneof![5 => Just(Vec::new()), 4 => vec(ext(), 1..4), 2 => vec(ext(), 6..11)]
}

#[derive(Debug, Clone)]
pub enum Body {
    /// `opts`: words of IPv4 options (0–10); `ver_ihl`: a first byte
    /// written over the real one.
    V4 {
        src: AddrPick,
        dst: AddrPick,
        opts: u8,
        frag: Frag4,
        l4: L4Spec,
        ver_ihl: Option<u8>,
    },
    /// `version`: a version nibble written over 6.
    V6 {
        src: AddrPick,
        dst: AddrPick,
        exts: Vec<ExtSpec>,
        l4: L4Spec,
        version: Option<u8>,
    },
    Arp,
    /// Another ethertype (LLDP, …) with `len` bytes.
    NonIp {
        ethertype: u16,
        len: u8,
    },
    /// Random bytes behind an ethertype that promises headers.
    Garbage {
        ethertype: u16,
        bytes: Vec<u8>,
    },
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        10 => (addr_pick(), addr_pick(), prop_oneof![5 => Just(0u8), 1 => 1u8..=10], frag4(), l4(), prop::option::weighted(0.04, any::<u8>()))
            .prop_map(|(src, dst, opts, frag, l4, ver_ihl)| Body::V4 { src, dst, opts, frag, l4, ver_ihl }),
        10 => (addr_pick(), addr_pick(), exts(), l4(), prop::option::weighted(0.03, 0u8..16))
            .prop_map(|(src, dst, exts, l4, version)| Body::V6 { src, dst, exts, l4, version }),
        1 => Just(Body::Arp),
        1 => (prop_oneof![Just(0x88ccu16), Just(0x88b5u16), Just(0x9100u16), any::<u16>()], any::<u8>())
            .prop_map(|(ethertype, len)| Body::NonIp { ethertype, len }),
        2 => (prop_oneof![Just(0x0800u16), Just(0x86ddu16), Just(0x8100u16), Just(0x88a8u16)], vec(any::<u8>(), 0..120))
            .prop_map(|(ethertype, bytes)| Body::Garbage { ethertype, bytes }),
    ]
}

/// A VLAN tag: 802.1ad or 802.1Q TPID, an id pick, PCP/DEI bits.
#[derive(Debug, Clone, Copy)]
pub struct TagSpec {
    ad: bool,
    vid: SmallPick,
    pcp: u8,
}

fn tags() -> impl Strategy<Value = Vec<TagSpec>> {
    let tag = || {
        (any::<bool>(), small_pick(), 0u8..16).prop_map(|(ad, vid, pcp)| TagSpec { ad, vid, pcp })
    };
    prop_oneof![10 => Just(Vec::new()), 4 => vec(tag(), 1..=1), 3 => vec(tag(), 2..=2), 1 => vec(tag(), 3..=3)]
}

/// One frame to generate.
#[derive(Debug, Clone)]
pub struct PacketSpec {
    pub tags: Vec<TagSpec>,
    pub body: Body,
    /// Bytes of payload after the last header (sometimes more than fits in
    /// the first XDP buffer: the frame then has fragments).
    pub payload: u16,
    /// Cut the frame to 14 + (cut mod (len − 13)) bytes.
    pub cut: Option<u16>,
    /// `(position, xor)`: bytes flipped after rendering.
    pub flips: Vec<(u16, u8)>,
}

pub fn packet() -> impl Strategy<Value = PacketSpec> {
    (
        tags(),
        body(),
        prop_oneof![30 => Just(0u16), 20 => 0u16..64, 1 => 1400u16..9000],
        prop::option::weighted(0.15, any::<u16>()),
        prop_oneof![12 => Just(Vec::new()), 1 => vec((any::<u16>(), 1u8..=255), 1..4)],
    )
        .prop_map(|(tags, body, payload, cut, flips)| PacketSpec {
            tags,
            body,
            payload,
            cut,
            flips,
        })
}

// ------------------------------------------------------------ rendering

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;

fn l4_bytes(l4: &L4Spec, p: &Pools, payload: usize) -> Vec<u8> {
    match l4 {
        L4Spec::Tcp {
            sport,
            dport,
            flags,
            opts,
            doff,
        } => {
            let mut h = TcpHeader::new(sport.get(p), dport.get(p), 0x0102_0304, 64240);
            let f = flags.get(p);
            h.fin = f & FIN != 0;
            h.syn = f & SYN != 0;
            h.rst = f & RST != 0;
            h.psh = f & PSH != 0;
            h.ack = f & ACK != 0;
            h.urg = f & URG != 0;
            h.ece = f & ECE != 0;
            h.cwr = f & CWR != 0;
            h.set_options_raw(&vec![1u8; 4 * usize::from(*opts)])
                .expect("tcp options");
            let mut b = h.to_bytes().to_vec();
            if let Some(d) = doff {
                b[12] = (d << 4) | (b[12] & 0x0f);
            }
            b
        }
        L4Spec::Udp { sport, dport } => UdpHeader {
            source_port: sport.get(p),
            destination_port: dport.get(p),
            length: u16::try_from(8 + payload).unwrap_or(0),
            checksum: 0,
        }
        .to_bytes()
        .to_vec(),
        // etherparse has no SCTP: ports, verification tag, checksum.
        L4Spec::Sctp { sport, dport } => {
            let mut b = Vec::with_capacity(12);
            b.extend_from_slice(&sport.get(p).to_be_bytes());
            b.extend_from_slice(&dport.get(p).to_be_bytes());
            b.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            b.extend_from_slice(&0u32.to_be_bytes());
            b
        }
        L4Spec::Icmp { ty, code } => Icmpv4Header::new(Icmpv4Type::Unknown {
            type_u8: ty.icmp(p),
            code_u8: code.icmp(p),
            bytes5to8: [0; 4],
        })
        .to_bytes()
        .to_vec(),
        L4Spec::Icmp6 { ty, code } => Icmpv6Header::new(Icmpv6Type::Unknown {
            type_u8: ty.icmp(p),
            code_u8: code.icmp(p),
            bytes5to8: [0; 4],
        })
        .to_bytes()
        .to_vec(),
        L4Spec::Other(_) => Vec::new(),
    }
}

/// One extension header's bytes.
fn ext_bytes(e: ExtSpec, next: u8) -> Vec<u8> {
    let nh = IpNumber(next);
    match e {
        ExtSpec::HopByHop(n) | ExtSpec::Routing(n) | ExtSpec::DestOpts(n) => {
            Ipv6RawExtHeader::new_raw(nh, &vec![0u8; 6 + 8 * usize::from(n)])
                .expect("ext payload")
                .to_bytes()
                .to_vec()
        }
        ExtSpec::Fragment(off, more) => {
            let mut b = Ipv6FragmentHeader::new(
                nh,
                IpFragOffset::try_new(off).expect("offset"),
                more,
                0xabcd,
            )
            .to_bytes()
            .to_vec();
            // etherparse 0.19 writes this word wrongly (offset not shifted,
            // M at 0x80 of byte 3): write RFC 8200's offset << 3 | M.
            b[2..4].copy_from_slice(&((off << 3) | u16::from(more)).to_be_bytes());
            b
        }
        ExtSpec::Ah(words) => IpAuthHeader::new(nh, 0x100, 1, &vec![0u8; 4 * usize::from(words)])
            .expect("icv")
            .to_bytes()
            .to_vec(),
    }
}

fn payload_bytes(n: u16) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(37) ^ 0x5a).collect()
}

/// Ethertype and the bytes after the Ethernet/VLAN headers.
fn l3_bytes(spec: &PacketSpec, p: &Pools) -> (u16, Vec<u8>) {
    let payload = payload_bytes(spec.payload);
    match &spec.body {
        Body::Arp => {
            let a = ArpEthIpv4Packet {
                operation: ArpOperation::REQUEST,
                sender_mac: [2, 0, 0, 0, 0, 1],
                sender_ipv4: [10, 0, 0, 1],
                target_mac: [0; 6],
                target_ipv4: [10, 0, 0, 2],
            };
            let mut b = a.to_arp_packet().to_bytes().to_vec();
            b.extend_from_slice(&payload);
            (0x0806, b)
        }
        Body::NonIp { ethertype, len } => (*ethertype, payload_bytes(u16::from(*len))),
        Body::Garbage { ethertype, bytes } => (*ethertype, bytes.clone()),
        Body::V4 {
            src,
            dst,
            opts,
            frag,
            l4,
            ver_ihl,
        } => {
            let mut body = l4_bytes(l4, p, payload.len());
            body.extend_from_slice(&payload);
            let mut h = Ipv4Header::new(
                u16::try_from(body.len()).expect("len"),
                64,
                IpNumber(l4.proto()),
                src.v4(p).octets(),
                dst.v4(p).octets(),
            )
            .expect("ipv4 header");
            let options = vec![1u8; 4 * usize::from(*opts)];
            h.options = options[..].try_into().expect("options");
            h.dont_fragment = false;
            match *frag {
                Frag4::None => {}
                Frag4::DontFragment => h.dont_fragment = true,
                Frag4::First => h.more_fragments = true,
                Frag4::Later(o, m) => {
                    h.more_fragments = m;
                    h.fragment_offset = IpFragOffset::try_new(o).expect("offset");
                }
            }
            h.header_checksum = h.calc_header_checksum();
            let mut b = h.to_bytes().to_vec();
            if let Some(x) = ver_ihl {
                b[0] = *x;
            }
            b.extend_from_slice(&body);
            (0x0800, b)
        }
        Body::V6 {
            src,
            dst,
            exts,
            l4,
            version,
        } => {
            let mut body = Vec::new();
            for (i, e) in exts.iter().enumerate() {
                let next = exts.get(i + 1).map_or(l4.proto(), |n| n.number());
                body.extend_from_slice(&ext_bytes(*e, next));
            }
            body.extend_from_slice(&l4_bytes(l4, p, payload.len()));
            body.extend_from_slice(&payload);
            let h = Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: u16::try_from(body.len()).expect("len"),
                next_header: IpNumber(exts.first().map_or(l4.proto(), |e| e.number())),
                hop_limit: 64,
                source: src.v6(p).octets(),
                destination: dst.v6(p).octets(),
            };
            let mut b = h.to_bytes().to_vec();
            if let Some(v) = version {
                b[0] = (v << 4) | (b[0] & 0x0f);
            }
            b.extend_from_slice(&body);
            (0x86dd, b)
        }
    }
}

/// The frame for `spec` aimed at `p` (at least 14 bytes).
pub fn render(spec: &PacketSpec, p: &Pools) -> Vec<u8> {
    let (ethertype, l3) = l3_bytes(spec, p);
    let tpid = |t: &TagSpec| if t.ad { 0x88a8 } else { 0x8100 };
    let first = spec.tags.first().map_or(ethertype, tpid);
    let mut out = Vec::new();
    Ethernet2Header {
        source: [2, 0, 0, 0, 0, 0xaa],
        destination: [2, 0, 0, 0, 0, 0xbb],
        ether_type: EtherType(first),
    }
    .write(&mut out)
    .expect("write eth");
    for (i, t) in spec.tags.iter().enumerate() {
        let next = spec.tags.get(i + 1).map_or(ethertype, tpid);
        let h = SingleVlanHeader {
            pcp: VlanPcp::try_new(t.pcp >> 1).expect("pcp"),
            drop_eligible_indicator: t.pcp & 1 != 0,
            vlan_id: VlanId::try_new(t.vid.vlan(p)).expect("vid"),
            ether_type: EtherType(next),
        };
        out.extend_from_slice(&h.to_bytes());
    }
    out.extend_from_slice(&l3);
    if let Some(c) = spec.cut {
        let keep = 14 + usize::from(c) % (out.len() - 13);
        out.truncate(keep);
    }
    let n = out.len();
    for &(pos, x) in &spec.flips {
        out[usize::from(pos) % n] ^= x;
    }
    out
}
