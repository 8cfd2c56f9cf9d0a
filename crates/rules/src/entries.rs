//! [`SetEntries`]: the networks of one set, stored compactly.
//!
//! A set file may hold millions of lines, so entries are not kept as
//! `IpNet` (18 bytes, and callers tend to copy them into wider tuples):
//! IPv4 prefixes take 8 bytes and IPv6 prefixes 17, in two sorted,
//! deduplicated vectors.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An IPv4 prefix: network address (host bits clear) and length.
pub type Prefix4 = (u32, u8);
/// An IPv6 prefix: network address (big-endian bytes, host bits clear) and
/// length. Bytes rather than `u128` keep it at 17 bytes (a `u128` is 16-byte
/// aligned, which would make the pair 32); byte order sorts numerically.
pub type Prefix6 = ([u8; 16], u8);

/// The networks of a set: normalised (host bits cleared), sorted (IPv4 before
/// IPv6), deduplicated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetEntries {
    v4: Vec<Prefix4>,
    v6: Vec<Prefix6>,
}

impl SetEntries {
    /// Normalises, sorts and deduplicates `nets`.
    #[must_use]
    pub fn from_nets(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut builder = SetBuilder::default();
        for net in nets {
            builder.push(net);
        }
        builder.finish()
    }

    /// Number of distinct networks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the set has no networks.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// IPv4 prefixes, ascending.
    #[must_use]
    pub fn v4(&self) -> &[Prefix4] {
        &self.v4
    }

    /// IPv6 prefixes, ascending.
    #[must_use]
    pub fn v6(&self) -> &[Prefix6] {
        &self.v6
    }

    /// Every network as an [`IpNet`], IPv4 first, ascending.
    pub fn iter(&self) -> impl Iterator<Item = IpNet> + '_ {
        let v4 = self.v4.iter().map(|&p| IpNet::V4(net4(p)));
        v4.chain(self.v6.iter().map(|&p| IpNet::V6(net6(p))))
    }

    /// Every network, collected (for tests and small sets).
    #[must_use]
    pub fn to_vec(&self) -> Vec<IpNet> {
        self.iter().collect()
    }

    /// Heap bytes held (capacity, not length).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.v4.capacity() * std::mem::size_of::<Prefix4>()
            + self.v6.capacity() * std::mem::size_of::<Prefix6>()
    }
}

impl FromIterator<IpNet> for SetEntries {
    fn from_iter<I: IntoIterator<Item = IpNet>>(iter: I) -> Self {
        Self::from_nets(iter)
    }
}

/// The [`Ipv4Net`] of a prefix (the length is at most 32 by construction).
#[must_use]
pub fn net4((addr, len): Prefix4) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(addr), len.min(32)).unwrap_or_default()
}

/// The [`Ipv6Net`] of a prefix (the length is at most 128 by construction).
#[must_use]
pub fn net6((addr, len): Prefix6) -> Ipv6Net {
    Ipv6Net::new(Ipv6Addr::from(addr), len.min(128)).unwrap_or_default()
}

/// Collects networks one at a time (a set file is streamed into one).
#[derive(Debug, Default)]
pub struct SetBuilder {
    v4: Vec<Prefix4>,
    v6: Vec<Prefix6>,
}

impl SetBuilder {
    /// Adds a network (host bits are cleared).
    pub fn push(&mut self, net: IpNet) {
        match net.trunc() {
            IpNet::V4(n) => self.v4.push((u32::from(n.network()), n.prefix_len())),
            IpNet::V6(n) => self.v6.push((n.network().octets(), n.prefix_len())),
        }
    }

    /// Entries pushed so far per family (duplicates included until
    /// [`SetBuilder::compact`]).
    #[must_use]
    pub fn counts(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    /// Sorts and deduplicates in place, so later pushes count distinct
    /// entries (and memory is not held by duplicates).
    pub fn compact(&mut self) {
        self.v4.sort_unstable();
        self.v4.dedup();
        self.v6.sort_unstable();
        self.v6.dedup();
    }

    /// The finished set, with spare capacity released.
    #[must_use]
    pub fn finish(mut self) -> SetEntries {
        self.compact();
        self.v4.shrink_to_fit();
        self.v6.shrink_to_fit();
        SetEntries {
            v4: self.v4,
            v6: self.v6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test net")
    }

    #[test]
    fn normalised_sorted_deduplicated_v4_first() {
        let set = SetEntries::from_nets([
            net("2001:db8::1/32"),
            net("10.1.2.3/8"),
            net("192.0.2.1/32"),
            net("10.0.0.0/8"),
            net("::/0"),
        ]);
        assert_eq!(
            set.to_vec(),
            vec![
                net("10.0.0.0/8"),
                net("192.0.2.1/32"),
                net("::/0"),
                net("2001:db8::/32")
            ]
        );
        assert_eq!(set.len(), 4);
        assert_eq!(set.v4(), &[(0x0a00_0000, 8), (0xc000_0201, 32)]);
    }

    #[test]
    fn entries_are_compact() {
        assert_eq!(std::mem::size_of::<Prefix4>(), 8);
        assert_eq!(std::mem::size_of::<Prefix6>(), 17);
        let set = SetEntries::from_nets(
            (0..1000u32)
                .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(i << 8), 24).expect("valid"))),
        );
        assert_eq!(set.heap_bytes(), 8000);
    }
}
