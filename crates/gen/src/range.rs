//! Source address and port ranges the generator walks through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Addresses `first + i * step` for `i` in `0..count`. For IPv6 only the
/// low 32 bits vary, so a range stays inside one /96.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    /// The first address.
    pub first: IpAddr,
    /// How many addresses (at least 1).
    pub count: u32,
    /// Distance between consecutive addresses (at least 1).
    pub step: u32,
}

impl AddrRange {
    /// One address.
    #[must_use]
    pub fn single(a: IpAddr) -> Self {
        AddrRange {
            first: a,
            count: 1,
            step: 1,
        }
    }

    /// Uses every `step`-th address instead of every one; the range keeps
    /// its first address and count, so it must still fit its low 32 bits.
    ///
    /// # Errors
    /// `step` is 0 or the last address would leave the low 32 bits.
    pub fn with_step(mut self, step: u32) -> Result<Self> {
        if step == 0 {
            return Err(Error::Invalid("address step must be at least 1".into()));
        }
        self.step = step;
        self.check()?;
        Ok(self)
    }

    /// The low 32 bits of the first address (all of an IPv4 one), host order.
    #[must_use]
    pub fn base(&self) -> u32 {
        low32(self.first)
    }

    /// Whether the range is IPv6.
    #[must_use]
    pub fn is_v6(&self) -> bool {
        self.first.is_ipv6()
    }

    /// The `i`-th address (`i` taken modulo the count).
    #[must_use]
    pub fn nth(&self, i: u64) -> IpAddr {
        let off = (i % u64::from(self.count)) as u32;
        with_low32(
            self.first,
            self.base().wrapping_add(off.wrapping_mul(self.step)),
        )
    }

    /// Whether `a` is one of the range's addresses.
    #[must_use]
    pub fn contains(&self, a: IpAddr) -> bool {
        if a.is_ipv6() != self.is_v6() || with_low32(a, 0) != with_low32(self.first, 0) {
            return false;
        }
        let d = low32(a).wrapping_sub(self.base());
        d.is_multiple_of(self.step) && d / self.step < self.count
    }

    fn check(&self) -> Result<()> {
        let last = u64::from(self.base()) + u64::from(self.count - 1) * u64::from(self.step);
        if last > u64::from(u32::MAX) {
            return Err(Error::Invalid(format!(
                "address range from {} with {} addresses (step {}) leaves the {}: make it smaller",
                self.first,
                self.count,
                self.step,
                if self.is_v6() {
                    "low 32 bits of the IPv6 address"
                } else {
                    "IPv4 address space"
                }
            )));
        }
        Ok(())
    }
}

fn low32(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(v) => u32::from(v),
        IpAddr::V6(v) => (u128::from(v) & 0xffff_ffff) as u32,
    }
}

fn with_low32(a: IpAddr, low: u32) -> IpAddr {
    match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(low)),
        IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(
            (u128::from(v) & !0xffff_ffffu128) | u128::from(low),
        )),
    }
}

fn parse_ip(s: &str) -> Result<IpAddr> {
    s.trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("`{s}` is not an IPv4 or IPv6 address")))
}

impl FromStr for AddrRange {
    type Err = Error;

    /// `ADDR`, `ADDR/LEN` (every address of the prefix) or `FIRST-LAST`.
    fn from_str(s: &str) -> Result<Self> {
        let r = if let Some((a, len)) = s.split_once('/') {
            let a = parse_ip(a)?;
            let bits = if a.is_ipv6() { 128 } else { 32 };
            let len: u32 = len.parse().ok().filter(|l| *l <= bits).ok_or_else(|| {
                Error::Invalid(format!("`{s}`: prefix length must be 0..={bits}"))
            })?;
            let host_bits = bits - len;
            if host_bits >= 32 {
                return Err(Error::Invalid(format!(
                    "`{s}`: at most 2^32-1 addresses; use a /{} or longer",
                    bits - 31
                )));
            }
            let first = low32(a) & !((1u32 << host_bits) - 1);
            AddrRange {
                first: with_low32(a, first),
                count: 1u32 << host_bits,
                step: 1,
            }
        } else if let Some((a, b)) = s.split_once('-') {
            let (a, b) = (parse_ip(a)?, parse_ip(b)?);
            if a.is_ipv6() != b.is_ipv6() {
                return Err(Error::Invalid(format!(
                    "`{s}`: both ends must be of one family"
                )));
            }
            if with_low32(a, 0) != with_low32(b, 0) {
                return Err(Error::Invalid(format!(
                    "`{s}`: an IPv6 range may vary only the low 32 bits"
                )));
            }
            let (lo, hi) = (low32(a), low32(b));
            if hi < lo {
                return Err(Error::Invalid(format!(
                    "`{s}`: the last address is below the first"
                )));
            }
            let count = (hi - lo)
                .checked_add(1)
                .ok_or_else(|| Error::Invalid(format!("`{s}`: at most 2^32-1 addresses")))?;
            AddrRange {
                first: a,
                count,
                step: 1,
            }
        } else {
            AddrRange::single(parse_ip(s)?)
        };
        r.check()?;
        Ok(r)
    }
}

/// Ports `first..first + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// How many ports (1..=65536 - first).
    pub count: u32,
}

impl PortRange {
    /// One port.
    #[must_use]
    pub fn single(p: u16) -> Self {
        PortRange { first: p, count: 1 }
    }

    /// Whether `p` is in the range.
    #[must_use]
    pub fn contains(&self, p: u16) -> bool {
        p >= self.first && u32::from(p - self.first) < self.count
    }
}

impl FromStr for PortRange {
    type Err = Error;

    /// `PORT` or `FIRST-LAST`.
    fn from_str(s: &str) -> Result<Self> {
        let port = |p: &str| -> Result<u16> {
            p.trim()
                .parse()
                .map_err(|_| Error::Invalid(format!("`{p}` is not a port (0-65535)")))
        };
        match s.split_once('-') {
            None => Ok(PortRange::single(port(s)?)),
            Some((a, b)) => {
                let (a, b) = (port(a)?, port(b)?);
                if b < a {
                    return Err(Error::Invalid(format!(
                        "`{s}`: the last port is below the first"
                    )));
                }
                Ok(PortRange {
                    first: a,
                    count: u32::from(b - a) + 1,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> AddrRange {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn single_prefix_and_span() {
        assert_eq!(r("192.0.2.7"), AddrRange::single(ip("192.0.2.7")));
        let p = r("192.0.2.9/24");
        assert_eq!(p.first, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)));
        assert_eq!(p.count, 256);
        let s = r("198.18.0.10-198.18.1.9");
        assert_eq!(s.count, 256);
        assert!(s.contains(ip("198.18.0.255")));
        assert!(!s.contains(ip("198.18.1.10")));
        let v6 = r("2001:db8::1:0/112");
        assert_eq!(v6.count, 65536);
        assert_eq!(v6.nth(65537), ip("2001:db8::1:1"));
    }

    #[test]
    fn nth_walks_and_wraps_with_step() {
        let a = r("100.64.0.0-100.64.0.9")
            .with_step(3)
            .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<IpAddr> = (0..11).map(|i| a.nth(i)).collect();
        assert_eq!(got[1], IpAddr::V4(Ipv4Addr::new(100, 64, 0, 3)));
        assert_eq!(got[9], IpAddr::V4(Ipv4Addr::new(100, 64, 0, 27)));
        assert_eq!(got[10], got[0]);
        assert!(a.contains(got[9]) && !a.contains(IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1))));
    }

    #[test]
    fn bad_ranges_are_refused_with_reasons() {
        for (s, why) in [
            ("300.1.1.1", "not an IPv4 or IPv6"),
            ("10.0.0.0/33", "prefix length"),
            ("0.0.0.0/0", "at most 2^32-1"),
            ("2001:db8::/64", "/97 or longer"),
            ("10.0.0.9-10.0.0.1", "below the first"),
            ("10.0.0.1-2001:db8::1", "one family"),
            ("2001:db8::1-2001:db9::1", "low 32 bits"),
            ("255.255.255.0/24x", "prefix length"),
        ] {
            match s.parse::<AddrRange>() {
                Ok(v) => panic!("{s} accepted as {v:?}"),
                Err(e) => assert!(e.to_string().contains(why), "{s}: {e}"),
            }
        }
        let e = r("255.255.255.0/24").with_step(2);
        assert!(e.is_err(), "step 2 over the top of the space must fail");
        assert!(r("1.2.3.4").with_step(0).is_err());
    }

    #[test]
    fn ports() {
        let p: PortRange = "1024-65535".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.first, p.count), (1024, 64512));
        assert!(p.contains(65535) && !p.contains(1023));
        assert_eq!("53".parse::<PortRange>().ok(), Some(PortRange::single(53)));
        assert!("70000".parse::<PortRange>().is_err());
        assert!("9-1".parse::<PortRange>().is_err());
    }
}
