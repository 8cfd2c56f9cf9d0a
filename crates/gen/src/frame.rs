//! The frame template the generator sends: Ethernet, IPv4 or IPv6, UDP or a
//! TCP SYN, padded with payload to the requested size. The XDP program
//! rewrites only the source address and port of each copy.

use std::net::IpAddr;

use etherparse::PacketBuilder;

use crate::error::{Error, Result};

/// Largest frame the generator builds: a 1500-byte MTU plus the Ethernet header.
pub const MAX_SIZE: usize = 1514;
/// Smallest Ethernet frame without its FCS (shorter frames are padded).
pub const MIN_ETH: usize = 60;
const ETH_HLEN: usize = 14;

/// Layer-4 protocol of the generated frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP segments with only SYN set (the shape of a SYN flood).
    TcpSyn,
}

impl Proto {
    fn header_len(self) -> usize {
        match self {
            Proto::Udp => 8,
            Proto::TcpSyn => 20,
        }
    }
}

/// Everything about the template except what the program varies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpec {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC (the receiver's, so its stack takes the frame as its own).
    pub dst_mac: [u8; 6],
    /// Source address of the template (the program overwrites it).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// UDP or TCP SYN.
    pub proto: Proto,
    /// Source port of the template (the program overwrites it).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Frame size in bytes, Ethernet header to the end of the payload (no FCS).
    pub size: usize,
}

impl FrameSpec {
    /// Bytes of headers (Ethernet, IP, L4) before any payload.
    #[must_use]
    pub fn header_len(&self) -> usize {
        self.l4_offset() + self.proto.header_len()
    }

    /// Offset of the L4 header from the start of the frame.
    #[must_use]
    pub fn l4_offset(&self) -> usize {
        ETH_HLEN + if self.src.is_ipv6() { 40 } else { 20 }
    }

    /// The smallest size this spec allows: its headers, at least [`MIN_ETH`].
    #[must_use]
    pub fn min_size(&self) -> usize {
        self.header_len().max(MIN_ETH)
    }

    /// Builds the frame (checksums computed).
    ///
    /// # Errors
    /// The families of source and destination differ, or the size is
    /// outside `min_size()..=MAX_SIZE`.
    pub fn build(&self) -> Result<Vec<u8>> {
        if self.src.is_ipv6() != self.dst.is_ipv6() {
            return Err(Error::Invalid(format!(
                "source {} and destination {} are of different families",
                self.src, self.dst
            )));
        }
        if !(self.min_size()..=MAX_SIZE).contains(&self.size) {
            return Err(Error::Invalid(format!(
                "frame size {} not in {}..={MAX_SIZE} for {} {} (Ethernet header to end of payload, no FCS)",
                self.size,
                self.min_size(),
                if self.src.is_ipv6() { "IPv6" } else { "IPv4" },
                match self.proto {
                    Proto::Udp => "UDP",
                    Proto::TcpSyn => "TCP SYN",
                }
            )));
        }
        let payload = vec![0u8; self.size - self.header_len()];
        let eth = PacketBuilder::ethernet2(self.src_mac, self.dst_mac);
        let ip = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
            _ => unreachable!("families checked above"),
        };
        let mut out = Vec::with_capacity(self.size);
        let written = match self.proto {
            Proto::Udp => ip.udp(self.sport, self.dport).write(&mut out, &payload),
            Proto::TcpSyn => ip
                .tcp(self.sport, self.dport, 0x7864_7077, 64_240)
                .syn()
                .write(&mut out, &payload),
        };
        written.map_err(|e| Error::Invalid(format!("building the frame: {e}")))?;
        Ok(out)
    }
}

/// Sums 16-bit big-endian words in one's complement.
fn ones_sum(chunks: &[&[u8]]) -> u16 {
    let mut s: u32 = 0;
    for c in chunks {
        for w in c.chunks(2) {
            let hi = u32::from(w[0]) << 8;
            let lo = w.get(1).map_or(0, |b| u32::from(*b));
            s += hi | lo;
            s = (s & 0xffff) + (s >> 16);
        }
    }
    s as u16
}

/// Whether an Ethernet frame's IPv4 header checksum (if IPv4) and its UDP or
/// TCP checksum over the pseudo-header are valid, as a receiver checks them.
/// False for frames that are not IP with UDP or TCP.
#[must_use]
pub fn checksums_valid(frame: &[u8]) -> bool {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        return false;
    };
    if !matches!(
        p.transport,
        Some(TransportSlice::Udp(_) | TransportSlice::Tcp(_))
    ) {
        return false;
    }
    let (pseudo, l4): (Vec<u8>, &[u8]) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            if ones_sum(&[h.slice()]) != 0xffff {
                return false;
            }
            let l4 = ip.payload().payload;
            let mut ph = Vec::with_capacity(12);
            ph.extend_from_slice(&h.source());
            ph.extend_from_slice(&h.destination());
            ph.extend_from_slice(&[0, h.protocol().0]);
            ph.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            (ph, l4)
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            let l4 = ip.payload().payload;
            let mut ph = Vec::with_capacity(40);
            ph.extend_from_slice(&h.source());
            ph.extend_from_slice(&h.destination());
            ph.extend_from_slice(&(l4.len() as u32).to_be_bytes());
            ph.extend_from_slice(&[0, 0, 0, h.next_header().0]);
            (ph, l4)
        }
        _ => return false,
    };
    ones_sum(&[&pseudo, l4]) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn spec(v6: bool, proto: Proto, size: usize) -> FrameSpec {
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            (
                "fd00:78:77::1".parse().unwrap_or_else(|e| panic!("{e}")),
                "fd00:78:77::2".parse().unwrap_or_else(|e| panic!("{e}")),
            )
        } else {
            (
                "198.18.0.1".parse().unwrap_or_else(|e| panic!("{e}")),
                "198.18.0.2".parse().unwrap_or_else(|e| panic!("{e}")),
            )
        };
        FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src,
            dst,
            proto,
            sport: 1234,
            dport: 5353,
            size,
        }
    }

    #[test]
    fn every_shape_and_size_parses_back_with_valid_checksums() {
        for v6 in [false, true] {
            for proto in [Proto::Udp, Proto::TcpSyn] {
                let min = spec(v6, proto, 0).min_size();
                for size in [min, 64, 65, 128, 512, 1000, 1500, MAX_SIZE]
                    .into_iter()
                    .filter(|s| *s >= min)
                {
                    let s = spec(v6, proto, size);
                    let f = s
                        .build()
                        .unwrap_or_else(|e| panic!("{v6} {proto:?} {size}: {e}"));
                    assert_eq!(f.len(), size, "{v6} {proto:?}");
                    let p = SlicedPacket::from_ethernet(&f).unwrap_or_else(|e| panic!("{e}"));
                    match (&p.net, v6) {
                        (Some(NetSlice::Ipv4(ip)), false) => {
                            let h = ip.header().to_header();
                            assert_eq!(h.calc_header_checksum(), h.header_checksum);
                        }
                        (Some(NetSlice::Ipv6(_)), true) => {}
                        other => panic!("wrong network layer {other:?}"),
                    }
                    match (&p.transport, proto) {
                        (Some(TransportSlice::Udp(u)), Proto::Udp) => {
                            assert_eq!((u.source_port(), u.destination_port()), (1234, 5353));
                        }
                        (Some(TransportSlice::Tcp(t)), Proto::TcpSyn) => {
                            assert!(t.syn() && !t.ack() && !t.rst() && !t.fin());
                            assert_eq!((t.source_port(), t.destination_port()), (1234, 5353));
                        }
                        other => panic!("wrong transport {other:?}"),
                    }
                    assert!(
                        checksums_valid(&f),
                        "{v6} {proto:?} {size}: bad L4 checksum"
                    );
                    assert_eq!(s.l4_offset() + proto.header_len(), s.header_len());
                }
            }
        }
    }

    #[test]
    fn sizes_and_families_are_checked() {
        assert_eq!(spec(false, Proto::Udp, 0).min_size(), 60);
        assert_eq!(spec(true, Proto::TcpSyn, 0).min_size(), 74);
        for (v6, proto, size) in [
            (false, Proto::Udp, 59),
            (true, Proto::TcpSyn, 64),
            (false, Proto::Udp, 1515),
        ] {
            let e = spec(v6, proto, size)
                .build()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("frame size"), "{size}: {e}");
        }
        let mut s = spec(false, Proto::Udp, 64);
        s.dst = "fd00::1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(s.build().is_err());
    }
}
