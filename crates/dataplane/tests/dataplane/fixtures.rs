//! Shared fixtures: config builders, a packet description that renders to
//! bytes (with etherparse) and to the facts a rule can see, a small reference
//! matcher over the config model, and a loaded-program wrapper whose every
//! run also checks that the XDP verdict agrees with the reported rule.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use etherparse::{
    ArpEthIpv4Packet, ArpOperation, EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type,
    Icmpv6Header, Icmpv6Type, IpAuthHeader, IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader,
    Ipv6Header, Ipv6RawExtHeader, SingleVlanHeader, TcpHeader, UdpHeader, VlanId, VlanPcp,
};
use ipnet::IpNet;
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::stats::{self, Counter, Stats};
use xdpwall_dataplane::testrun::Verdict as Run;
use xdpwall_dataplane::types::xw_info;
use xdpwall_dataplane::Instance;
use xdpwall_rules::{
    compile, Action, AddrItem, AddrMatch, Conditions, Config, EventsSection, Family, FragMatch,
    IpSet, PortRange, Rule, SetSource, TcpFlags, Verdict, XdpSection,
};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;
/// Malformed reasons (index into the malformed counters).
pub const TRUNCATED: u32 = 0;
pub const BAD_HEADER: u32 = 1;
pub const EXT_TOO_DEEP: u32 = 2;
pub const VLAN_TOO_DEEP: u32 = 3;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

/// Root gate: false (skip) when not root, panics when not root under CI=true.
pub fn root(test: &str) -> bool {
    xdpwall_lab::require_root(test)
}

// ---------------------------------------------------------------- config

/// A config under construction.
#[derive(Clone)]
pub struct Cfg(pub Config);

impl Cfg {
    pub fn new() -> Self {
        Cfg(Config {
            path: PathBuf::from("test.toml"),
            xdp: XdpSection::default(),
            events: EventsSection::default(),
            sets: BTreeMap::new(),
            rules: Vec::new(),
        })
    }
    pub fn default_action(mut self, v: Verdict) -> Self {
        self.0.xdp.default = v;
        self
    }
    pub fn malformed(mut self, v: Verdict) -> Self {
        self.0.xdp.malformed = v;
        self
    }
    pub fn set(mut self, name: &str, entries: &[&str]) -> Self {
        let entries = entries.iter().map(|e| net(e)).collect();
        self.0.sets.insert(
            name.into(),
            IpSet {
                name: name.into(),
                entries,
                source: SetSource::Inline,
            },
        );
        self
    }
    pub fn set_nets(mut self, name: &str, entries: Vec<IpNet>) -> Self {
        self.0.sets.insert(
            name.into(),
            IpSet {
                name: name.into(),
                entries: entries.into_iter().collect(),
                source: SetSource::Inline,
            },
        );
        self
    }
    pub fn rule(mut self, name: &str, cond: Conditions, action: Action) -> Self {
        let line = self.0.rules.len() + 1;
        self.0.rules.push(Rule {
            name: name.into(),
            line,
            cond,
            action,
            log: None,
            sample: None,
        });
        self
    }
    pub fn load(self) -> Fw {
        Fw::new(self.0)
    }

    /// Loads with other compile limits (e.g. no IPv4 trie nodes, so the
    /// exact-match tables answer).
    pub fn load_with(self, limits: compile::Limits) -> Fw {
        Fw::new_with(self.0, limits)
    }
    /// Loads a program that reads every frame's length with the helper, as
    /// on kernels before 6.2.
    pub fn load_helper_len(self) -> Fw {
        Fw::new_opts(
            self.0,
            compile::Limits::default(),
            LoadOptions {
                trace: true,
                helper_len: true,
                ..Default::default()
            },
        )
    }
    /// Loads from inside `ns` (redirect targets resolve there).
    pub fn load_in(self, ns: &xdpwall_lab::Netns) -> Fw {
        ns.run(|| Fw::new(self.0)).expect("enter the namespace")
    }
    /// `[xdp] rate_limit_table`.
    pub fn rate_limit_table(mut self, n: u32) -> Self {
        self.0.xdp.rate_limit_table = n;
        self
    }
}

/// `"10.0.0.0/8"` or `"10.1.2.3"` (a host).
pub fn net(s: &str) -> IpNet {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .unwrap_or_else(|_| panic!("bad net {s}"))
        .trunc()
}

/// An address condition from items: `"10.0.0.0/8"`, `"!10.1.0.0/16"`, `"@set"`, `"!@set"`.
pub fn addr(items: &[&str]) -> Option<AddrMatch> {
    let mut m = AddrMatch::default();
    for it in items {
        let (neg, body) = it.strip_prefix('!').map_or((false, *it), |b| (true, b));
        let item = match body.strip_prefix('@') {
            Some(set) => AddrItem::Set(set.into()),
            None => AddrItem::Net(net(body)),
        };
        if neg {
            m.exclude.push(item);
        } else {
            m.include.push(item);
        }
    }
    Some(m)
}

/// Port ranges: `ports(&[(22, 22), (8000, 8999)])`.
pub fn ports(r: &[(u16, u16)]) -> Option<Vec<PortRange>> {
    Some(r.iter().map(|&(lo, hi)| PortRange { lo, hi }).collect())
}

pub fn port(p: u16) -> Option<Vec<PortRange>> {
    ports(&[(p, p)])
}

pub fn flags(set: u8, clear: u8) -> Option<TcpFlags> {
    Some(TcpFlags { set, clear })
}

/// Shorthand for `Conditions { .., ..Default::default() }`.
pub fn any() -> Conditions {
    Conditions::default()
}

// ---------------------------------------------------------------- packets

/// A VLAN tag: TPID (0x8100 / 0x88a8) and id.
#[derive(Clone, Copy, Debug)]
pub struct Tag {
    pub tpid: u16,
    pub vid: u16,
}

/// Fragment state of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frag {
    None,
    First,
    /// Offset in 8-byte units (> 0).
    NonFirst(u16),
}

/// IPv6 extension headers (sizes in 8-byte units beyond the minimum).
#[derive(Clone, Copy, Debug)]
pub enum Ext {
    HopByHop(u8),
    Routing(u8),
    DestOpts(u8),
    /// `Frag::None` is an atomic fragment (offset 0, M clear).
    Fragment(Frag),
    /// ICV length in 4-byte words.
    Ah(u8),
}

impl Ext {
    fn number(self) -> u8 {
        match self {
            Ext::HopByHop(_) => 0,
            Ext::Routing(_) => 43,
            Ext::Fragment(_) => 44,
            Ext::Ah(_) => 51,
            Ext::DestOpts(_) => 60,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Sctp {
        sport: u16,
        dport: u16,
    },
    Icmp {
        ty: u8,
        code: u8,
    },
    Icmp6 {
        ty: u8,
        code: u8,
    },
    /// Any other protocol number, no header.
    Other(u8),
}

impl L4 {
    fn proto(self) -> u8 {
        match self {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Sctp { .. } => 132,
            L4::Icmp { .. } => 1,
            L4::Icmp6 { .. } => 58,
            L4::Other(p) => p,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Net {
    Arp,
    /// A non-IP ethertype with an opaque payload (e.g. LLDP 0x88cc).
    Raw(u16, Vec<u8>),
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        options: Vec<u8>,
        frag: Frag,
        l4: L4,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        exts: Vec<Ext>,
        l4: L4,
    },
}

/// A packet description: renders to bytes and to the facts rules see.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub vlans: Vec<Tag>,
    pub net: Net,
    /// Bytes of payload after the last header.
    pub payload: usize,
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or_else(|_| panic!("bad IPv4 {s}"))
}
fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap_or_else(|_| panic!("bad IPv6 {s}"))
}

pub fn ip4(src: &str, dst: &str, l4: L4) -> Pkt {
    Pkt {
        vlans: vec![],
        net: Net::V4 {
            src: v4(src),
            dst: v4(dst),
            options: vec![],
            frag: Frag::None,
            l4,
        },
        payload: 0,
    }
}
pub fn ip6(src: &str, dst: &str, l4: L4) -> Pkt {
    Pkt {
        vlans: vec![],
        net: Net::V6 {
            src: v6(src),
            dst: v6(dst),
            exts: vec![],
            l4,
        },
        payload: 0,
    }
}
pub fn tcp4(src: &str, dst: &str, sport: u16, dport: u16) -> Pkt {
    ip4(
        src,
        dst,
        L4::Tcp {
            sport,
            dport,
            flags: ACK,
        },
    )
}
pub fn udp4(src: &str, dst: &str, sport: u16, dport: u16) -> Pkt {
    ip4(src, dst, L4::Udp { sport, dport })
}
pub fn tcp6(src: &str, dst: &str, sport: u16, dport: u16) -> Pkt {
    ip6(
        src,
        dst,
        L4::Tcp {
            sport,
            dport,
            flags: ACK,
        },
    )
}
pub fn udp6(src: &str, dst: &str, sport: u16, dport: u16) -> Pkt {
    ip6(src, dst, L4::Udp { sport, dport })
}
pub fn arp() -> Pkt {
    Pkt {
        vlans: vec![],
        net: Net::Arp,
        payload: 0,
    }
}

impl Pkt {
    /// Adds a 802.1Q tag inside the existing ones.
    pub fn vlan(mut self, vid: u16) -> Self {
        self.vlans.push(Tag { tpid: 0x8100, vid });
        self
    }
    /// Adds a tag with an explicit TPID.
    pub fn tag(mut self, tpid: u16, vid: u16) -> Self {
        self.vlans.push(Tag { tpid, vid });
        self
    }
    /// 802.1ad outer tag + 802.1Q inner tag.
    pub fn qinq(self, outer: u16, inner: u16) -> Self {
        self.tag(0x88a8, outer).vlan(inner)
    }
    pub fn flags(mut self, f: u8) -> Self {
        match &mut self.net {
            Net::V4 {
                l4: L4::Tcp { flags, .. },
                ..
            }
            | Net::V6 {
                l4: L4::Tcp { flags, .. },
                ..
            } => *flags = f,
            _ => panic!("flags on a non-TCP packet"),
        }
        self
    }
    /// IPv4 fragment state.
    pub fn frag(mut self, f: Frag) -> Self {
        match &mut self.net {
            Net::V4 { frag, .. } => *frag = f,
            _ => panic!("frag() is for IPv4; use ext(Ext::Fragment) for IPv6"),
        }
        self
    }
    pub fn options(mut self, o: &[u8]) -> Self {
        match &mut self.net {
            Net::V4 { options, .. } => *options = o.to_vec(),
            _ => panic!("options on non-IPv4"),
        }
        self
    }
    pub fn ext(mut self, e: Ext) -> Self {
        match &mut self.net {
            Net::V6 { exts, .. } => exts.push(e),
            _ => panic!("ext on non-IPv6"),
        }
        self
    }
    pub fn payload(mut self, n: usize) -> Self {
        self.payload = n;
        self
    }

    fn l4_bytes(l4: L4, payload: usize) -> Vec<u8> {
        match l4 {
            L4::Tcp {
                sport,
                dport,
                flags,
            } => {
                let mut h = TcpHeader::new(sport, dport, 1000, 64240);
                h.fin = flags & FIN != 0;
                h.syn = flags & SYN != 0;
                h.rst = flags & RST != 0;
                h.psh = flags & PSH != 0;
                h.ack = flags & ACK != 0;
                h.urg = flags & URG != 0;
                h.ece = flags & ECE != 0;
                h.cwr = flags & CWR != 0;
                h.to_bytes().to_vec()
            }
            L4::Udp { sport, dport } => UdpHeader {
                source_port: sport,
                destination_port: dport,
                length: u16::try_from(8 + payload).unwrap_or(0),
                checksum: 0,
            }
            .to_bytes()
            .to_vec(),
            // etherparse has no SCTP: the 12-byte common header
            // (source port, destination port, verification tag, checksum).
            L4::Sctp { sport, dport } => {
                let mut b = Vec::with_capacity(12);
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&0x1234_5678u32.to_be_bytes());
                b.extend_from_slice(&0u32.to_be_bytes());
                b
            }
            L4::Icmp { ty, code } => Icmpv4Header::new(Icmpv4Type::Unknown {
                type_u8: ty,
                code_u8: code,
                bytes5to8: [0; 4],
            })
            .to_bytes()
            .to_vec(),
            L4::Icmp6 { ty, code } => Icmpv6Header::new(Icmpv6Type::Unknown {
                type_u8: ty,
                code_u8: code,
                bytes5to8: [0; 4],
            })
            .to_bytes()
            .to_vec(),
            L4::Other(_) => Vec::new(),
        }
    }

    fn ext_bytes(e: Ext, next: u8) -> Vec<u8> {
        let nh = IpNumber(next);
        match e {
            Ext::HopByHop(n) | Ext::Routing(n) | Ext::DestOpts(n) => {
                Ipv6RawExtHeader::new_raw(nh, &vec![0u8; 6 + 8 * usize::from(n)])
                    .expect("ext payload")
                    .to_bytes()
                    .to_vec()
            }
            Ext::Fragment(f) => {
                let (off, more) = match f {
                    Frag::None => (0, false),
                    Frag::First => (0, true),
                    Frag::NonFirst(o) => (o, true),
                };
                let mut b = Ipv6FragmentHeader::new(
                    nh,
                    IpFragOffset::try_new(off).expect("offset"),
                    more,
                    0xabcd,
                )
                .to_bytes()
                .to_vec();
                // etherparse 0.19 serialises this word wrongly (offset not
                // shifted, M flag at 0x80 of byte 3; fixed in 0.21): write the
                // RFC 8200 layout, offset << 3 | M. See fixture_encodings.
                b[2..4].copy_from_slice(&((off << 3) | u16::from(more)).to_be_bytes());
                b
            }
            Ext::Ah(words) => IpAuthHeader::new(nh, 0x100, 1, &vec![0u8; 4 * usize::from(words)])
                .expect("icv")
                .to_bytes()
                .to_vec(),
        }
    }

    /// Ethertype and bytes after the Ethernet/VLAN headers.
    fn l3_bytes(&self) -> (u16, Vec<u8>) {
        let payload = vec![0x5au8; self.payload];
        match &self.net {
            Net::Arp => {
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
            Net::Raw(t, bytes) => {
                let mut b = bytes.clone();
                b.extend_from_slice(&payload);
                (*t, b)
            }
            Net::V4 {
                src,
                dst,
                options,
                frag,
                l4,
            } => {
                let mut body = Self::l4_bytes(*l4, self.payload);
                body.extend_from_slice(&payload);
                let mut h = Ipv4Header::new(
                    u16::try_from(body.len()).expect("len"),
                    64,
                    IpNumber(l4.proto()),
                    src.octets(),
                    dst.octets(),
                )
                .expect("ipv4 header");
                h.options = options[..]
                    .try_into()
                    .expect("options: multiple of 4, at most 40 bytes");
                match frag {
                    Frag::None => {}
                    Frag::First => {
                        h.dont_fragment = false;
                        h.more_fragments = true;
                    }
                    Frag::NonFirst(o) => {
                        h.dont_fragment = false;
                        h.more_fragments = true;
                        h.fragment_offset = IpFragOffset::try_new(*o).expect("offset");
                    }
                }
                h.header_checksum = h.calc_header_checksum();
                let mut b = h.to_bytes().to_vec();
                b.extend_from_slice(&body);
                (0x0800, b)
            }
            Net::V6 { src, dst, exts, l4 } => {
                let mut body = Vec::new();
                for (i, e) in exts.iter().enumerate() {
                    let next = exts.get(i + 1).map_or(l4.proto(), |n| n.number());
                    body.extend_from_slice(&Self::ext_bytes(*e, next));
                }
                body.extend_from_slice(&Self::l4_bytes(*l4, self.payload));
                body.extend_from_slice(&payload);
                let h = Ipv6Header {
                    traffic_class: 0,
                    flow_label: Default::default(),
                    payload_length: u16::try_from(body.len()).expect("len"),
                    next_header: IpNumber(exts.first().map_or(l4.proto(), |e| e.number())),
                    hop_limit: 64,
                    source: src.octets(),
                    destination: dst.octets(),
                };
                let mut b = h.to_bytes().to_vec();
                b.extend_from_slice(&body);
                (0x86dd, b)
            }
        }
    }

    /// The frame.
    pub fn bytes(&self) -> Vec<u8> {
        let (ethertype, l3) = self.l3_bytes();
        let mut out = Vec::new();
        let first = self.vlans.first().map_or(ethertype, |t| t.tpid);
        Ethernet2Header {
            source: [2, 0, 0, 0, 0, 0xaa],
            destination: [2, 0, 0, 0, 0, 0xbb],
            ether_type: EtherType(first),
        }
        .write(&mut out)
        .expect("write eth");
        for (i, t) in self.vlans.iter().enumerate() {
            let next = self.vlans.get(i + 1).map_or(ethertype, |n| n.tpid);
            let h = SingleVlanHeader {
                pcp: VlanPcp::ZERO,
                drop_eligible_indicator: false,
                vlan_id: VlanId::try_new(t.vid).expect("vid"),
                ether_type: EtherType(next),
            };
            out.extend_from_slice(&h.to_bytes());
        }
        out.extend_from_slice(&l3);
        out
    }

    /// What the data plane must conclude about a prefix of `len` bytes of
    /// this frame: `Err(reason)` when malformed, `Ok(())` when classified.
    ///
    /// Headers the program needs: Ethernet, up to two tags, the whole IPv4
    /// header (options included), the IPv6 header and each extension header
    /// it walks, and the L4 fields rules read: TCP's 20-byte header, UDP's 8,
    /// SCTP's 12-byte common header, ICMP type/code/checksum (4 bytes) when
    /// the ICMP flavour matches the family; nothing after a non-first fragment.
    pub fn expect_at(&self, len: usize) -> Result<(), u32> {
        let mut end = 14;
        if len < end {
            return Err(TRUNCATED);
        }
        for _ in self.vlans.iter().take(2) {
            end += 4;
            if len < end {
                return Err(TRUNCATED);
            }
        }
        if self.vlans.len() > 2 {
            return Err(VLAN_TOO_DEEP);
        }
        let (l4, v6, nonfirst) = match &self.net {
            Net::Arp | Net::Raw(..) => return Ok(()),
            Net::V4 {
                options, frag, l4, ..
            } => {
                end += 20 + options.len();
                if len < end {
                    return Err(TRUNCATED);
                }
                (*l4, false, matches!(frag, Frag::NonFirst(_)))
            }
            Net::V6 { exts, l4, .. } => {
                end += 40;
                if len < end {
                    return Err(TRUNCATED);
                }
                let mut nonfirst = false;
                for (i, e) in exts.iter().enumerate() {
                    if i == 8 {
                        return Err(EXT_TOO_DEEP);
                    }
                    end += Self::ext_bytes(*e, 0).len();
                    if len < end {
                        return Err(TRUNCATED);
                    }
                    if let Ext::Fragment(Frag::NonFirst(_)) = e {
                        nonfirst = true;
                        break;
                    }
                }
                (*l4, true, nonfirst)
            }
        };
        if nonfirst {
            return Ok(());
        }
        end += match l4 {
            L4::Tcp { .. } => 20,
            L4::Udp { .. } => 8,
            L4::Sctp { .. } => 12,
            L4::Icmp { .. } if !v6 => 4,
            L4::Icmp6 { .. } if v6 => 4,
            _ => 0,
        };
        if len < end {
            return Err(TRUNCATED);
        }
        Ok(())
    }

    /// The fields a rule can see (the packet must be well formed).
    pub fn facts(&self) -> Facts {
        let vlans = self.vlans.iter().map(|t| t.vid).collect();
        let ip = match &self.net {
            Net::Arp | Net::Raw(..) => None,
            Net::V4 {
                src, dst, frag, l4, ..
            } => Some(IpFacts::new(
                (*src).into(),
                (*dst).into(),
                *frag,
                *l4,
                l4.proto(),
            )),
            Net::V6 { src, dst, exts, l4 } => {
                let mut frag = Frag::None;
                let mut proto = l4.proto();
                for (i, e) in exts.iter().enumerate() {
                    if let Ext::Fragment(f) = e {
                        frag = *f;
                        if let Frag::NonFirst(_) = f {
                            proto = exts.get(i + 1).map_or(l4.proto(), |n| n.number());
                            break;
                        }
                    }
                }
                Some(IpFacts::new((*src).into(), (*dst).into(), frag, *l4, proto))
            }
        };
        Facts { vlans, ip }
    }
}

/// What rules can match on.
#[derive(Clone, Debug)]
pub struct Facts {
    pub vlans: Vec<u16>,
    pub ip: Option<IpFacts>,
}

#[derive(Clone, Debug)]
pub struct IpFacts {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub frag: Frag,
    pub ports: Option<(u16, u16)>,
    pub flags: Option<u8>,
    pub icmp: Option<(u8, u8)>,
}

impl IpFacts {
    fn new(src: IpAddr, dst: IpAddr, frag: Frag, l4: L4, proto: u8) -> Self {
        let mut f = IpFacts {
            src,
            dst,
            proto,
            frag,
            ports: None,
            flags: None,
            icmp: None,
        };
        if matches!(frag, Frag::NonFirst(_)) {
            return f;
        }
        match l4 {
            L4::Tcp {
                sport,
                dport,
                flags,
            } => {
                f.ports = Some((sport, dport));
                f.flags = Some(flags);
            }
            L4::Udp { sport, dport } | L4::Sctp { sport, dport } => f.ports = Some((sport, dport)),
            L4::Icmp { ty, code } if src.is_ipv4() => f.icmp = Some((ty, code)),
            L4::Icmp6 { ty, code } if src.is_ipv6() => f.icmp = Some((ty, code)),
            _ => {}
        }
        f
    }
}

// ---------------------------------------------------------------- reference

/// Naive first-match evaluation over the model (DESIGN.md "Rule model"):
/// the terminal winner and the `count` rules evaluated before it.
pub fn reference(cfg: &Config, f: &Facts) -> (Option<usize>, Vec<usize>) {
    let mut counted = Vec::new();
    for (i, r) in cfg.rules.iter().enumerate() {
        if rule_matches(cfg, &r.cond, f) {
            if r.action.is_terminal() {
                return (Some(i), counted);
            }
            counted.push(i);
        }
    }
    (None, counted)
}

fn in_ranges(rs: &[PortRange], p: u16) -> bool {
    rs.iter().any(|r| r.lo <= p && p <= r.hi)
}

fn addr_matches(cfg: &Config, m: &AddrMatch, a: IpAddr) -> bool {
    let hit = |items: &[AddrItem]| {
        items.iter().any(|it| match it {
            AddrItem::Net(n) => n.contains(&a),
            AddrItem::Set(s) => cfg.sets[s].entries.iter().any(|n| n.contains(&a)),
        })
    };
    (m.include.is_empty() || hit(&m.include)) && !hit(&m.exclude)
}

pub fn rule_matches(cfg: &Config, c: &Conditions, f: &Facts) -> bool {
    if let Some(v) = c.vlan {
        if !f.vlans.iter().take(2).any(|&t| t == v) {
            return false;
        }
    }
    let Some(ip) = &f.ip else {
        // Not IP: only rules without L3/L4 conditions.
        let l3 = Conditions {
            vlan: None,
            ..c.clone()
        };
        return l3 == Conditions::default();
    };
    let family = if ip.src.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    };
    c.src.as_ref().is_none_or(|m| addr_matches(cfg, m, ip.src))
        && c.dst.as_ref().is_none_or(|m| addr_matches(cfg, m, ip.dst))
        && c.proto.is_none_or(|p| p == ip.proto)
        && c.sport
            .as_ref()
            .is_none_or(|rs| ip.ports.is_some_and(|(s, _)| in_ranges(rs, s)))
        && c.dport
            .as_ref()
            .is_none_or(|rs| ip.ports.is_some_and(|(_, d)| in_ranges(rs, d)))
        && c.tcp_flags.is_none_or(|t| {
            ip.flags
                .is_some_and(|x| x & t.set == t.set && x & t.clear == 0)
        })
        && c.icmp_type
            .is_none_or(|t| ip.icmp.is_some_and(|(ty, _)| ty == t))
        && c.icmp_code
            .is_none_or(|k| ip.icmp.is_some_and(|(_, code)| code == k))
        && c.family.is_none_or(|fam| fam == family)
        && c.fragment.is_none_or(|m| match m {
            FragMatch::Any => ip.frag != Frag::None,
            FragMatch::First => ip.frag == Frag::First,
            FragMatch::NonFirst => matches!(ip.frag, Frag::NonFirst(_)),
            FragMatch::None => ip.frag == Frag::None,
        })
}

/// Counters the reference expects: (packets, bytes) per rule and default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub rules: Vec<(u64, u64)>,
    pub default: (u64, u64),
}

impl Expected {
    pub fn new(cfg: &Config) -> Self {
        Expected {
            rules: vec![(0, 0); cfg.rules.len()],
            default: (0, 0),
        }
    }

    /// Accounts one well-formed packet: its `count` rules and its winner.
    pub fn add(&mut self, cfg: &Config, p: &Pkt) {
        let len = p.bytes().len() as u64;
        let (winner, counted) = reference(cfg, &p.facts());
        let bump = |c: &mut (u64, u64)| {
            c.0 += 1;
            c.1 += len;
        };
        for r in counted {
            bump(&mut self.rules[r]);
        }
        match winner {
            Some(r) => bump(&mut self.rules[r]),
            None => bump(&mut self.default),
        }
    }
}

// ---------------------------------------------------------------- program

/// A compiled and loaded config (with tracing, so runs report the rule).
pub struct Fw {
    pub cfg: Config,
    pub compiled: compile::Compiled,
    pub inst: Instance,
    /// What it was compiled against (set changes use the same).
    pub limits: compile::Limits,
}

fn xdp_of(v: Verdict) -> u32 {
    match v {
        Verdict::Pass => XDP_PASS,
        Verdict::Drop => XDP_DROP,
    }
}

impl Fw {
    pub fn new(cfg: Config) -> Self {
        Self::new_with(cfg, compile::Limits::default())
    }

    pub fn new_with(cfg: Config, limits: compile::Limits) -> Self {
        let opts = LoadOptions {
            trace: true,
            ..Default::default()
        };
        Self::new_opts(cfg, limits, opts)
    }

    pub fn new_opts(cfg: Config, limits: compile::Limits, opts: LoadOptions) -> Self {
        let c = compile::compile_with(&cfg, &limits).expect("compile");
        let inst = load(&c, opts).unwrap_or_else(|e| panic!("load: {e}"));
        Self::with(cfg, c, inst, limits)
    }

    /// Loads `cfg` as this program's successor (what a reload does): the new
    /// program shares this one's counters, rule slots follow names.
    pub fn successor(&self, cfg: Config) -> Self {
        let c = compile::compile_with(&cfg, &self.limits).expect("compile");
        let inst = xdpwall_dataplane::load::load_next(
            &c,
            LoadOptions {
                trace: true,
                ..Default::default()
            },
            &self.inst,
        )
        .unwrap_or_else(|e| panic!("load_next: {e}"));
        Self::with(cfg, c, inst, self.limits)
    }

    /// Applies `cfg` in place, as a reload whose only change is sets does:
    /// the program stays, its address tables switch generation. Returns the
    /// generation now live, or why the change needs a new program.
    pub fn update_sets(
        &mut self,
        cfg: Config,
    ) -> Result<u32, xdpwall_dataplane::update::NotInPlace> {
        let c = compile::compile_with(&cfg, &self.limits).expect("compile");
        xdpwall_dataplane::update::check(&self.inst, &self.compiled, &c)?;
        let g = xdpwall_dataplane::update::switch_sets(&self.inst, &c)
            .unwrap_or_else(|e| panic!("switch_sets: {e}"));
        xdpwall_dataplane::update::retire(&self.inst, &self.compiled)
            .unwrap_or_else(|e| panic!("retire: {e}"));
        self.cfg = cfg;
        self.compiled = c;
        Ok(g)
    }

    fn with(cfg: Config, c: compile::Compiled, inst: Instance, limits: compile::Limits) -> Self {
        // The instance facts are written by whoever runs the program (as
        // `xdpwall run` does); `stats` reads the policies and nrules there.
        let info = xw_info {
            magic: 0x7877_616c_6c30_3031,
            pid: u64::from(std::process::id()),
            default_action: xdp_of(cfg.xdp.default),
            malformed_action: xdp_of(cfg.xdp.malformed),
            nrules: u32::try_from(cfg.rules.len()).expect("rules"),
            ..Default::default()
        };
        inst.set_info(&info).expect("write xw_info");
        Fw {
            cfg,
            compiled: c,
            inst,
            limits,
        }
    }

    /// Whether some class's candidate list overflowed (bitmap-scan mode).
    pub fn overflows(&self) -> bool {
        self.compiled.classes.iter().any(|c| c.overflow)
    }

    /// Asserts every rule counter and the default counter equal `e`.
    pub fn assert_counters(&self, e: &Expected) {
        let s = self.stats();
        assert_eq!(
            s.rules.len(),
            self.cfg.rules.len(),
            "stats lists every rule"
        );
        let mut bad = Vec::new();
        for (i, r) in s.rules.iter().enumerate() {
            assert_eq!(r.name, self.cfg.rules[i].name);
            let got = (r.counter.packets, r.counter.bytes);
            if got != e.rules[i] {
                bad.push(format!(
                    "rule {i} {} ({}): got {got:?}, want {:?}",
                    r.name, r.action, e.rules[i]
                ));
            }
        }
        if (s.default.packets, s.default.bytes) != e.default {
            bad.push(format!(
                "default: got {:?}, want {:?}",
                (s.default.packets, s.default.bytes),
                e.default
            ));
        }
        assert!(
            bad.is_empty(),
            "counters differ from the reference (packets, bytes):\n{}",
            bad.join("\n")
        );
    }

    /// Runs a frame; asserts the XDP verdict is the one the reported rule,
    /// the default or the malformed policy calls for.
    pub fn run(&self, frame: &[u8]) -> Run {
        let v = self
            .inst
            .test_run(frame)
            .unwrap_or_else(|e| panic!("test_run ({} bytes): {e}", frame.len()));
        let want = match (v.malformed, v.rule) {
            (Some(m), r) => {
                assert!(m < 4, "unknown malformed reason {m}");
                assert_eq!(r, None, "malformed packet reported a rule");
                xdp_of(self.cfg.xdp.malformed)
            }
            (None, Some(r)) => {
                let rule = self
                    .cfg
                    .rules
                    .get(r as usize)
                    .unwrap_or_else(|| panic!("rule id {r} out of range"));
                match rule.action {
                    Action::Drop => XDP_DROP,
                    Action::Pass => XDP_PASS,
                    // The bucket decides; the trace says which way.
                    Action::RateLimit(_) if v.limited => XDP_DROP,
                    Action::RateLimit(_) => XDP_PASS,
                    Action::Redirect(_) if v.redirect_err => XDP_DROP,
                    Action::Redirect(_) => XDP_REDIRECT,
                    ref a => panic!(
                        "non-terminal rule {} ({}) reported as the winner",
                        rule.name,
                        a.name()
                    ),
                }
            }
            (None, None) => xdp_of(self.cfg.xdp.default),
        };
        assert_eq!(
            v.xdp,
            want,
            "XDP verdict disagrees with {v:?} for a {}-byte frame",
            frame.len()
        );
        v
    }

    pub fn verdict(&self, p: &Pkt) -> Run {
        self.run(&p.bytes())
    }

    /// Name of the terminal rule that decided `p` (None: default). Panics
    /// when the packet is reported malformed.
    pub fn hit(&self, p: &Pkt) -> Option<&str> {
        let v = self.verdict(p);
        assert_eq!(v.malformed, None, "unexpectedly malformed: {p:?}");
        v.rule.map(|r| self.cfg.rules[r as usize].name.as_str())
    }

    /// The malformed reason of a frame (None when classified).
    pub fn malformed(&self, frame: &[u8]) -> Option<u32> {
        self.run(frame).malformed
    }

    /// Runs `p` once, asserts the winner is the reference matcher's, and
    /// returns its name (None: default).
    pub fn check(&self, p: &Pkt) -> Option<&str> {
        let (want, _) = reference(&self.cfg, &p.facts());
        let got = self.verdict(p);
        assert_eq!(got.malformed, None, "malformed: {p:?}");
        assert_eq!(
            got.rule.map(|r| r as usize),
            want,
            "winner differs from reference for {p:?}: data plane {:?}, reference {:?}",
            got.rule.map(|r| &self.cfg.rules[r as usize].name),
            want.map(|r| &self.cfg.rules[r].name)
        );
        want.map(|r| self.cfg.rules[r].name.as_str())
    }

    pub fn stats(&self) -> Stats {
        stats::read(&self.inst).expect("read stats")
    }

    pub fn counter(&self, name: &str) -> Counter {
        let s = self.stats();
        s.rules
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no rule {name} in stats"))
            .counter
    }

    /// Malformed counter by reason index.
    pub fn malformed_counter(&self, reason: u32) -> Counter {
        self.stats().malformed[reason as usize].1
    }
}

// ---------------------------------------------------------------- misc

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
