//! Classes of the small-domain fields: protocol, ports, TCP flags, ICMP,
//! family, VLAN and fragment state. Each returns one class id per index of
//! the field's array in the data plane.

use std::collections::BTreeMap;

use super::abi::{
    FAMILY_ENTRIES, FAMILY_IPV4, FAMILY_IPV6, FRAG_ENTRIES, FRAG_FIRST, FRAG_NONE, FRAG_NON_FIRST,
    ICMP_ENTRIES, ICMP_NONE, KEY_FAMILY, KEY_FRAG, KEY_ICMP, KEY_PROTO, KEY_TCPF, PORT_ENTRIES,
    PROTO_ENTRIES, PROTO_NONE, TCPF_ENTRIES, TCPF_NONE, VLAN_ENTRIES,
};
use super::{Bitmap, Field, Interner};
use crate::model::{Conditions, Config, Family, FragMatch, PortRange};

/// A condition one test decides (`struct xw_check`): the packet's value `v`
/// (the field's array index) meets it when `lo <= v <= hi` and
/// `v & mask == want`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Lowest value that can match.
    pub lo: u32,
    /// Highest value that can match.
    pub hi: u32,
    /// Bits compared with `want`.
    pub mask: u32,
    /// What those bits must be.
    pub want: u32,
}

impl Check {
    /// Every value (a field the rule does not constrain).
    pub const ANY: Check = Check {
        lo: 0,
        hi: u32::MAX,
        mask: 0,
        want: 0,
    };

    fn range(lo: usize, hi: usize) -> Option<Check> {
        Some(Check {
            lo: u32::try_from(lo).ok()?,
            hi: u32::try_from(hi).ok()?,
            mask: 0,
            want: 0,
        })
    }

    /// Whether `v` meets it (what the data plane computes).
    #[must_use]
    pub fn holds(&self, v: u32) -> bool {
        self.lo <= v && v <= self.hi && v & self.mask == self.want
    }
}

impl Default for Check {
    fn default() -> Self {
        Check::ANY
    }
}

/// The rule's condition on `field` as one [`Check`], when one test decides it
/// exactly (the indices it admits are those [`matching_indices`] and the port
/// sweep give): a protocol, one port range (or ranges that touch), TCP flags,
/// an ICMP type and/or code, a family, a fragment state. `None` for a field
/// it does not constrain, for addresses and VLANs (outer or inner tag: two
/// values), and for port lists with gaps.
pub(super) fn direct_check(c: &Conditions, field: Field) -> Option<Check> {
    match field {
        Field::Proto => c.proto.and_then(|p| Check::range(p.into(), p.into())),
        Field::Sport => port_check(c.sport.as_deref()?),
        Field::Dport => port_check(c.dport.as_deref()?),
        // Index 256 (no TCP header) lies above every flags byte.
        Field::TcpFlags => c.tcp_flags.map(|f| Check {
            lo: 0,
            hi: 255,
            mask: u32::from(f.set | f.clear),
            want: u32::from(f.set),
        }),
        Field::Icmp => {
            if c.icmp_type.is_none() && c.icmp_code.is_none() {
                return None;
            }
            // Index (v6 << 16) | (type << 8) | code, either family; the
            // index of "no ICMP header" lies above them all.
            let (tm, t) = c.icmp_type.map_or((0, 0), |t| (0xff00, u32::from(t) << 8));
            let (cm, code) = c.icmp_code.map_or((0, 0), |x| (0xff, u32::from(x)));
            Some(Check {
                lo: 0,
                hi: (2 << 16) - 1,
                mask: tm | cm,
                want: t | code,
            })
        }
        Field::Family => match c.family? {
            Family::Ipv4 => Check::range(FAMILY_IPV4, FAMILY_IPV4),
            Family::Ipv6 => Check::range(FAMILY_IPV6, FAMILY_IPV6),
        },
        Field::Frag => match c.fragment? {
            FragMatch::Any => Check::range(FRAG_FIRST, FRAG_NON_FIRST),
            FragMatch::First => Check::range(FRAG_FIRST, FRAG_FIRST),
            FragMatch::NonFirst => Check::range(FRAG_NON_FIRST, FRAG_NON_FIRST),
            FragMatch::None => Check::range(FRAG_NONE, FRAG_NONE),
        },
        Field::Src | Field::Dst | Field::Vlan => None,
    }
}

/// A rule's direct checks as the data plane tests them (`struct xw_rule`):
/// one masked compare of the packet's key, one range per port field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packed {
    /// Bits of the key the rule compares.
    pub key_mask: u64,
    /// What they must be.
    pub key_want: u64,
    /// Source and destination port: `(lo, hi - lo)`; `(0, u32::MAX)` for any.
    pub port: [(u32, u32); 2],
}

impl Default for Packed {
    fn default() -> Self {
        Packed {
            key_mask: 0,
            key_want: 0,
            port: [(0, u32::MAX); 2],
        }
    }
}

/// A key field's place: its shift, its width, and how its value (the
/// field's table index) is encoded there.
type KeySlot = (u32, u32, fn(u32) -> u32);

/// Where `field` sits in the packet's key; `None` for the ports and the
/// fields with no direct check.
fn key_slot(field: Field) -> Option<KeySlot> {
    fn same(v: u32) -> u32 {
        v
    }
    // Gray code: fragment states 0, 1, 2, 3 -> 0, 1, 3, 2, so "any
    // fragment" (1 or 2) is one bit and "not IP" (3) matches none.
    fn gray(v: u32) -> u32 {
        v ^ (v >> 1)
    }
    match field {
        Field::Proto => Some((KEY_PROTO, 9, same)),
        Field::TcpFlags => Some((KEY_TCPF, 9, same)),
        Field::Icmp => Some((KEY_ICMP, 18, same)),
        Field::Family => Some((KEY_FAMILY, 2, same)),
        Field::Frag => Some((KEY_FRAG, 2, gray)),
        _ => None,
    }
}

/// Mask and value, in the field's own bits, that hold for exactly the
/// values `k` holds for among `0..=top`, the field's indices.
fn masked(field: Field, k: &Check, top: u32) -> Option<(u32, u32)> {
    let (_, width, enc) = key_slot(field)?;
    let all = (1u32 << width) - 1;
    match field {
        // One value.
        Field::Proto | Field::Family if k.lo == k.hi && k.mask == 0 => Some((all, k.lo)),
        // lo = 0, hi just below the top bit: that bit clear, plus the mask.
        Field::TcpFlags | Field::Icmp
            if k.lo == 0 && k.hi == all >> 1 && k.mask & !k.hi == 0 && k.want & !k.mask == 0 =>
        {
            Some((k.mask | (all & !k.hi), k.want))
        }
        // Four states: find the mask and value that pick exactly these.
        Field::Frag => (0..=all)
            .flat_map(|m| (0..=all).map(move |w| (m, w)))
            .find(|&(m, w)| (0..=top).all(|v| k.holds(v) == (enc(v) & m == w))),
        _ => None,
    }
}

/// The top index of a key field's table (its `*_NONE` value, or the last).
fn top(field: Field) -> u32 {
    let t = match field {
        Field::Proto => PROTO_NONE,
        Field::TcpFlags => TCPF_NONE,
        Field::Icmp => ICMP_NONE,
        Field::Family => FAMILY_ENTRIES - 1,
        _ => FRAG_ENTRIES - 1,
    };
    u32::try_from(t).unwrap_or(u32::MAX)
}

/// Adds `field`'s direct check `k` to `p`; `false` (and `p` unchanged) if
/// the record cannot express it, so the check stays with the bitmaps.
pub(super) fn pack(p: &mut Packed, field: Field, k: &Check) -> bool {
    match field {
        Field::Sport | Field::Dport if k.mask == 0 && k.lo <= k.hi => {
            p.port[usize::from(field == Field::Dport)] = (k.lo, k.hi - k.lo);
            true
        }
        _ => {
            let Some((shift, _, _)) = key_slot(field) else {
                return false;
            };
            let Some((m, w)) = masked(field, k, top(field)) else {
                return false;
            };
            p.key_mask |= u64::from(m) << shift;
            p.key_want |= u64::from(w) << shift;
            true
        }
    }
}

/// Port ranges as one range, when their union has no gap.
fn port_check(ranges: &[PortRange]) -> Option<Check> {
    let mut rs: Vec<(u32, u32)> = ranges
        .iter()
        .map(|r| (u32::from(r.lo), u32::from(r.hi)))
        .collect();
    rs.sort_unstable();
    let (lo, mut hi) = *rs.first()?;
    for &(l, h) in &rs[1..] {
        if l > hi + 1 {
            return None;
        }
        hi = hi.max(h);
    }
    Some(Check {
        lo,
        hi,
        mask: 0,
        want: 0,
    })
}

/// Per-index classes for `field` (which some rule uses).
pub(super) fn compile_field(cfg: &Config, field: Field, int: &mut Interner) -> Vec<u32> {
    let n = cfg.rules.len();
    let mut base = Bitmap::new(n);
    for (r, rule) in cfg.rules.iter().enumerate() {
        if !constrains(&rule.cond, field) {
            base.set(r);
        }
    }
    if let Field::Sport | Field::Dport = field {
        return ports(cfg, field, &base, int);
    }

    // Index -> rules (constraining this field) that the index satisfies.
    let mut specific: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (r, rule) in cfg.rules.iter().enumerate() {
        for idx in matching_indices(&rule.cond, field) {
            specific.entry(idx).or_default().push(r);
        }
    }
    let base_id = int.intern(Some(field), base.clone());
    let mut out = vec![base_id; entries(field)];
    for (idx, rs) in specific {
        let mut bits = base.clone();
        for r in rs {
            bits.set(r);
        }
        out[idx] = int.intern(Some(field), bits);
    }
    out
}

fn entries(field: Field) -> usize {
    match field {
        Field::Proto => PROTO_ENTRIES,
        Field::TcpFlags => TCPF_ENTRIES,
        Field::Icmp => ICMP_ENTRIES,
        Field::Family => FAMILY_ENTRIES,
        Field::Vlan => VLAN_ENTRIES,
        Field::Frag => FRAG_ENTRIES,
        Field::Sport | Field::Dport => PORT_ENTRIES,
        Field::Src | Field::Dst => 0,
    }
}

/// Whether the conditions constrain `field`.
pub(super) fn constrains(c: &Conditions, field: Field) -> bool {
    match field {
        Field::Src => c.src.is_some(),
        Field::Dst => c.dst.is_some(),
        Field::Proto => c.proto.is_some(),
        Field::Sport => c.sport.is_some(),
        Field::Dport => c.dport.is_some(),
        Field::TcpFlags => c.tcp_flags.is_some(),
        Field::Icmp => c.icmp_type.is_some() || c.icmp_code.is_some(),
        Field::Family => c.family.is_some(),
        Field::Vlan => c.vlan.is_some(),
        Field::Frag => c.fragment.is_some(),
    }
}

/// Array indices of `field` that satisfy the rule's condition on it.
fn matching_indices(c: &Conditions, field: Field) -> Vec<usize> {
    match field {
        Field::Proto => c.proto.map(|p| vec![usize::from(p)]).unwrap_or_default(),
        Field::TcpFlags => c
            .tcp_flags
            .map(|f| {
                (0..=255u8)
                    .filter(|v| v & f.set == f.set && v & f.clear == 0)
                    .map(usize::from)
                    .collect()
            })
            .unwrap_or_default(),
        Field::Icmp => icmp_indices(c),
        Field::Family => match c.family {
            Some(Family::Ipv4) => vec![FAMILY_IPV4],
            Some(Family::Ipv6) => vec![FAMILY_IPV6],
            None => Vec::new(),
        },
        Field::Vlan => c.vlan.map(|v| vec![usize::from(v)]).unwrap_or_default(),
        Field::Frag => match c.fragment {
            Some(FragMatch::Any) => vec![FRAG_FIRST, FRAG_NON_FIRST],
            Some(FragMatch::First) => vec![FRAG_FIRST],
            Some(FragMatch::NonFirst) => vec![FRAG_NON_FIRST],
            Some(FragMatch::None) => vec![FRAG_NONE],
            None => Vec::new(),
        },
        Field::Src | Field::Dst | Field::Sport | Field::Dport => Vec::new(),
    }
}

fn icmp_indices(c: &Conditions) -> Vec<usize> {
    if c.icmp_type.is_none() && c.icmp_code.is_none() {
        return Vec::new();
    }
    let types: Vec<usize> = c
        .icmp_type
        .map_or_else(|| (0..256).collect(), |t| vec![usize::from(t)]);
    let codes: Vec<usize> = c
        .icmp_code
        .map_or_else(|| (0..256).collect(), |t| vec![usize::from(t)]);
    let mut out = Vec::with_capacity(2 * types.len() * codes.len());
    for v6 in 0..2usize {
        for &t in &types {
            for &code in &codes {
                out.push((v6 << 16) | (t << 8) | code);
            }
        }
    }
    out
}

/// Ports by a sweep over range boundaries: cost follows the number of
/// distinct boundaries, not 65,536 × rules.
fn ports(cfg: &Config, field: Field, base: &Bitmap, int: &mut Interner) -> Vec<u32> {
    // boundary -> (rule, +1 | -1)
    let mut events: BTreeMap<u32, Vec<(usize, i32)>> = BTreeMap::new();
    for (r, rule) in cfg.rules.iter().enumerate() {
        let ranges: Option<&Vec<PortRange>> = if field == Field::Sport {
            rule.cond.sport.as_ref()
        } else {
            rule.cond.dport.as_ref()
        };
        for pr in ranges.into_iter().flatten() {
            events.entry(u32::from(pr.lo)).or_default().push((r, 1));
            events
                .entry(u32::from(pr.hi) + 1)
                .or_default()
                .push((r, -1));
        }
    }
    events.entry(0).or_default();
    events.entry(65_536).or_default();

    let mut out = vec![0u32; PORT_ENTRIES];
    let mut cover: Vec<i32> = vec![0; cfg.rules.len()];
    let mut bits = base.clone();
    let bounds: Vec<u32> = events.keys().copied().collect();
    for (i, &start) in bounds.iter().enumerate() {
        for &(r, d) in &events[&start] {
            cover[r] += d;
            if cover[r] > 0 {
                bits.set(r);
            } else {
                bits.clear(r);
            }
        }
        let end = bounds.get(i + 1).copied().unwrap_or(65_536);
        if start >= 65_536 {
            break;
        }
        let id = int.intern(Some(field), bits.clone());
        for slot in &mut out[start as usize..end as usize] {
            *slot = id;
        }
    }
    // No ports at all (not TCP/UDP/SCTP, or a non-first fragment).
    out[super::abi::PORT_NONE] = int.intern(Some(field), base.clone());
    out
}
