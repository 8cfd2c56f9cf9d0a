//! Sample frames and events shared by the unit tests.

use etherparse::err::packet::BuildWriteError;
use etherparse::{
    ArpEthIpv4Packet, ArpOperation, EtherType, Ethernet2Header, IpFragOffset, IpHeaders, IpNumber,
    Ipv4Header, Ipv6Extensions, Ipv6Header, Ipv6RawExtHeader, Ipv6RoutingExtensions, PacketBuilder,
    UdpHeader, VlanId,
};

use crate::EventView;

pub const MAC1: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];
pub const SRC4: [u8; 4] = [198, 51, 100, 7];
pub const DST4: [u8; 4] = [192, 0, 2, 1];
/// fd00::1
pub const SRC6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// fd00::2
pub const DST6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// 2026-11-25T16:12:51.123456789Z
pub const TS: u64 = 1_795_623_171_123_456_789;

pub fn build(f: impl FnOnce(&mut Vec<u8>) -> Result<(), BuildWriteError>) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out).unwrap();
    out
}

fn eth() -> etherparse::PacketBuilderStep<Ethernet2Header> {
    PacketBuilder::ethernet2(MAC1, MAC2)
}

pub fn tcp4_syn() -> Vec<u8> {
    build(|w| {
        eth()
            .ipv4(SRC4, DST4, 64)
            .tcp(51512, 22, 1, 64240)
            .syn()
            .write(w, &[])
    })
}

pub fn tcp6_syn_ack() -> Vec<u8> {
    build(|w| {
        eth()
            .ipv6(SRC6, DST6, 64)
            .tcp(443, 40000, 7, 64240)
            .syn()
            .ack(2)
            .write(w, &[])
    })
}

pub fn udp4() -> Vec<u8> {
    build(|w| {
        eth()
            .ipv4(SRC4, DST4, 64)
            .udp(40000, 53)
            .write(w, &[0xab; 20])
    })
}

pub fn udp6() -> Vec<u8> {
    build(|w| {
        eth()
            .ipv6(SRC6, DST6, 64)
            .udp(5353, 5353)
            .write(w, &[0xcd; 12])
    })
}

pub fn icmp4_echo_request() -> Vec<u8> {
    build(|w| {
        eth()
            .ipv4(SRC4, DST4, 64)
            .icmpv4_echo_request(7, 1)
            .write(w, &[0; 16])
    })
}

pub fn icmp6_echo_request() -> Vec<u8> {
    build(|w| {
        eth()
            .ipv6(SRC6, DST6, 64)
            .icmpv6_echo_request(7, 1)
            .write(w, &[0; 16])
    })
}

/// An SCTP common header (ports, verification tag, checksum).
fn sctp_header(sport: u16, dport: u16) -> Vec<u8> {
    [sport.to_be_bytes(), dport.to_be_bytes()]
        .concat()
        .into_iter()
        .chain([0; 8])
        .collect()
}

pub fn sctp4() -> Vec<u8> {
    build(|w| {
        eth()
            .ipv4(SRC4, DST4, 64)
            .write(w, IpNumber::SCTP, &sctp_header(2905, 3868))
    })
}

pub fn sctp6() -> Vec<u8> {
    build(|w| {
        eth()
            .ipv6(SRC6, DST6, 64)
            .write(w, IpNumber::SCTP, &sctp_header(2905, 3868))
    })
}

pub fn vlan_udp4() -> Vec<u8> {
    let id = VlanId::try_new(100).unwrap();
    build(|w| {
        eth()
            .single_vlan(id)
            .ipv4(SRC4, DST4, 64)
            .udp(40000, 53)
            .write(w, &[1; 8])
    })
}

pub fn qinq_tcp6() -> Vec<u8> {
    let (outer, inner) = (VlanId::try_new(300).unwrap(), VlanId::try_new(400).unwrap());
    build(|w| {
        eth()
            .double_vlan(outer, inner)
            .ipv6(SRC6, DST6, 64)
            .tcp(1234, 80, 1, 1000)
            .syn()
            .write(w, &[])
    })
}

/// IPv6 with hop-by-hop, routing and destination options before UDP.
pub fn ipv6_exts_udp() -> Vec<u8> {
    let raw = || Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[0; 6]).unwrap();
    let exts = Ipv6Extensions {
        hop_by_hop_options: Some(raw()),
        destination_options: Some(raw()),
        routing: Some(Ipv6RoutingExtensions {
            routing: raw(),
            final_destination_options: Some(raw()),
        }),
        ..Default::default()
    };
    let ip = Ipv6Header {
        hop_limit: 64,
        source: SRC6,
        destination: DST6,
        ..Default::default()
    };
    build(|w| {
        eth()
            .ip(IpHeaders::Ipv6(ip, exts))
            .udp(1000, 2000)
            .write(w, &[9; 10])
    })
}

pub fn arp_request() -> Vec<u8> {
    let arp = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: MAC1,
        sender_ipv4: [10, 0, 0, 1],
        target_mac: [0; 6],
        target_ipv4: [10, 0, 0, 2],
    };
    build(|w| eth().arp(arp.into()).write(w))
}

/// An IPv4 UDP fragment; `offset` is in 8-byte units.
pub fn udp4_fragment(offset: u16, more: bool) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::UDP, SRC4, DST4).unwrap();
    ip.fragment_offset = IpFragOffset::try_new(offset).unwrap();
    ip.more_fragments = more;
    build(|w| {
        eth()
            .ip(IpHeaders::Ipv4(ip, Default::default()))
            .udp(40000, 53)
            .write(w, &[2; 16])
    })
}

/// An IPv6 UDP fragment; `offset` is in 8-byte units. Built header by header
/// because etherparse 0.19 mis-encodes IPv6 fragment headers when writing:
/// the fragment header is written as a raw 8-byte extension header.
pub fn udp6_fragment(offset: u16, more: bool) -> Vec<u8> {
    udp6_fragment_with(offset, more, false)
}

/// Like [`udp6_fragment`], optionally behind a hop-by-hop options header.
pub fn udp6_fragment_with(offset: u16, more: bool, hop_by_hop: bool) -> Vec<u8> {
    let payload = [3u8; 16];
    let udp = UdpHeader {
        source_port: 40000,
        destination_port: 53,
        length: 24,
        checksum: 0,
    };
    let frag_field = (offset << 3) | u16::from(more);
    let frag_payload: Vec<u8> = frag_field
        .to_be_bytes()
        .into_iter()
        .chain(0x1234_5678u32.to_be_bytes())
        .collect();
    let frag = Ipv6RawExtHeader::new_raw(IpNumber::UDP, &frag_payload).unwrap();
    let hbh = Ipv6RawExtHeader::new_raw(IpNumber::IPV6_FRAGMENTATION_HEADER, &[0; 14]).unwrap();
    let (first, hbh_len) = match hop_by_hop {
        true => (IpNumber::IPV6_HEADER_HOP_BY_HOP, hbh.header_len()),
        false => (IpNumber::IPV6_FRAGMENTATION_HEADER, 0),
    };
    let ip = Ipv6Header {
        payload_length: (hbh_len + 8 + 8 + payload.len()) as u16,
        next_header: first,
        hop_limit: 64,
        source: SRC6,
        destination: DST6,
        ..Default::default()
    };
    let mut out = Vec::new();
    Ethernet2Header {
        source: MAC1,
        destination: MAC2,
        ether_type: EtherType::IPV6,
    }
    .write(&mut out)
    .unwrap();
    ip.write(&mut out).unwrap();
    if hop_by_hop {
        hbh.write(&mut out).unwrap();
    }
    frag.write(&mut out).unwrap();
    udp.write(&mut out).unwrap();
    out.extend_from_slice(&payload);
    out
}

pub fn all_samples() -> Vec<Vec<u8>> {
    vec![
        tcp4_syn(),
        tcp6_syn_ack(),
        udp4(),
        udp6(),
        icmp4_echo_request(),
        icmp6_echo_request(),
        sctp4(),
        sctp6(),
        vlan_udp4(),
        qinq_tcp6(),
        ipv6_exts_udp(),
        arp_request(),
        udp4_fragment(0, true),
        udp4_fragment(185, false),
        udp6_fragment(0, true),
        udp6_fragment(100, false),
        udp6_fragment_with(0, true, true),
        udp6_fragment_with(100, false, true),
    ]
}

/// An event around `data` with the example's names.
pub fn event<'a>(data: &'a [u8], rule: Option<&'a str>, action: &'a str) -> EventView<'a> {
    EventView {
        ts_unix_ns: TS,
        ifindex: 2,
        iface: "eth0",
        rx_queue: 3,
        cpu: 1,
        rule,
        action,
        kind: "log",
        wire_len: u32::try_from(data.len()).unwrap() + 20,
        data,
    }
}

/// A small deterministic PRNG for garbage inputs.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
