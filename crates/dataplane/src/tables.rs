//! The fixed-size field tables: one value (the program's global `xw_tables`,
//! `struct xw_tables` in bpf/abi.h, held by the one-entry map
//! `.bss.xw_tables`) that the program addresses directly and indexes as
//! plain arrays. User space builds it as a byte image at the C struct's
//! offsets and writes it whole: the kernel copies a map value without
//! tearing a 4-byte entry, and entries packets may be reading are written
//! with the value they already hold.

use std::mem::{offset_of, size_of};

use libbpf_rs::{MapCore, MapFlags, MapHandle};
use xdpwall_rules::compile::abi;

use crate::error::{Error, Result};
use crate::skel::types::xw_tables;

/// One array of `struct xw_tables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Proto,
    Sport,
    Dport,
    TcpFlags,
    Icmp,
    Family,
    Vlan,
    Frag,
    /// The arrays below hold two generations, `DIR_ENTRIES` each.
    Src4Dir,
    Dst4Dir,
    Src6Dir,
    Dst6Dir,
    Src4Lens,
    Dst4Lens,
}

/// `size_of` a field, without a value of its (4 MiB) struct.
fn size_of_field<T, F>(_: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Where an array lies in the value: byte offset, entries, bytes an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    off: usize,
    len: usize,
    width: usize,
}

impl Table {
    fn span(self) -> Span {
        macro_rules! at {
            ($f:ident, $t:ty) => {{
                let width = size_of::<$t>();
                Span {
                    off: offset_of!(xw_tables, $f),
                    len: size_of_field(|t: &xw_tables| &t.$f) / width,
                    width,
                }
            }};
        }
        match self {
            Table::Proto => at!(proto, u32),
            Table::Sport => at!(sport, u32),
            Table::Dport => at!(dport, u32),
            Table::TcpFlags => at!(tcpflags, u32),
            Table::Icmp => at!(icmp, u32),
            Table::Family => at!(family, u32),
            Table::Vlan => at!(vlan, u32),
            Table::Frag => at!(frag, u32),
            Table::Src4Dir => at!(src4_dir, u32),
            Table::Dst4Dir => at!(dst4_dir, u32),
            Table::Src6Dir => at!(src6_dir, u32),
            Table::Dst6Dir => at!(dst6_dir, u32),
            Table::Src4Lens => at!(src4_lens, u16),
            Table::Dst4Lens => at!(dst4_lens, u16),
        }
    }
}

/// An image of the map value.
pub(crate) struct Tables {
    bytes: Vec<u8>,
}

const NAME: &str = crate::instance::TABLES_MAP;
const GEN: usize = offset_of!(xw_tables, gen);

impl Tables {
    /// All entries 0 (class 0), generation 0.
    pub(crate) fn zeroed() -> Self {
        Self {
            bytes: vec![0; size_of::<xw_tables>()],
        }
    }

    /// What `map` holds now.
    pub(crate) fn read(map: &MapHandle) -> Result<Self> {
        let bytes = map
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| Error::Map {
                op: "read",
                map: NAME,
                source,
            })?
            .unwrap_or_default();
        if bytes.len() != size_of::<xw_tables>() {
            return Err(Error::Layout {
                map: NAME,
                got: bytes.len(),
                want: size_of::<xw_tables>(),
            });
        }
        Ok(Self { bytes })
    }

    /// Writes the image into `map`; `op` names the step in errors.
    pub(crate) fn write(&self, map: &MapHandle, op: &'static str) -> Result<()> {
        map.update(&0u32.to_ne_bytes(), &self.bytes, MapFlags::ANY)
            .map_err(|source| Error::Map {
                op,
                map: NAME,
                source,
            })
    }

    /// The address-table generation packets use.
    pub(crate) fn gen(&self) -> u32 {
        let b = &self.bytes[GEN..GEN + 4];
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    }

    pub(crate) fn set_gen(&mut self, gen: u32) {
        self.bytes[GEN..GEN + 4].copy_from_slice(&gen.to_ne_bytes());
    }

    /// Writes `vals` as the whole of a field table (from entry 0).
    pub(crate) fn put(&mut self, table: Table, vals: &[u32]) -> Result<()> {
        let span = table.span();
        self.put_at(table, span, 0, span.len, vals)
    }

    /// Writes `vals` as generation `gen` (0 or 1) of an address array,
    /// never into the other generation's half (which packets may be using).
    pub(crate) fn put_gen(&mut self, table: Table, gen: u32, vals: &[u32]) -> Result<()> {
        let base = (gen as usize & 1) * abi::DIR_ENTRIES;
        self.put_at(table, table.span(), base, abi::DIR_ENTRIES, vals)
    }

    /// Writes `vals` at entries `base..` of `table`, at most `room` of them.
    /// Compiled tables always fit: one that does not is a compiler bug, and
    /// an error rather than a write into the next array.
    fn put_at(
        &mut self,
        table: Table,
        span: Span,
        base: usize,
        room: usize,
        vals: &[u32],
    ) -> Result<()> {
        if vals.len() > room || base + room > span.len {
            return Err(Error::TableTooLong {
                table: format!("{table:?}"),
                len: vals.len(),
                base,
                room,
            });
        }
        let start = span.off + base * span.width;
        let out = &mut self.bytes[start..start + vals.len() * span.width];
        for (i, (dst, &v)) in out.chunks_exact_mut(span.width).zip(vals).enumerate() {
            if span.width == 2 {
                let v16 = u16::try_from(v).map_err(|_| Error::TableValue {
                    table: format!("{table:?}"),
                    index: base + i,
                    value: v,
                    bits: 16,
                })?;
                dst.copy_from_slice(&v16.to_ne_bytes());
            } else {
                dst.copy_from_slice(&v.to_ne_bytes());
            }
        }
        Ok(())
    }

    /// Entry `i` of `table` (tests).
    #[cfg(test)]
    fn at(&self, table: Table, i: usize) -> u32 {
        let s = table.span();
        let b = &self.bytes[s.off + i * s.width..];
        if s.width == 2 {
            u32::from(u16::from_ne_bytes([b[0], b[1]]))
        } else {
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_the_abi_sizes_and_do_not_overlap() {
        let all = [
            (Table::Proto, abi::PROTO_ENTRIES),
            (Table::Sport, abi::PORT_ENTRIES),
            (Table::Dport, abi::PORT_ENTRIES),
            (Table::TcpFlags, abi::TCPF_ENTRIES),
            (Table::Icmp, abi::ICMP_ENTRIES),
            (Table::Family, abi::FAMILY_ENTRIES),
            (Table::Vlan, abi::VLAN_ENTRIES),
            (Table::Frag, abi::FRAG_ENTRIES),
            (Table::Src4Dir, 2 * abi::DIR_ENTRIES),
            (Table::Dst4Dir, 2 * abi::DIR_ENTRIES),
            (Table::Src6Dir, 2 * abi::DIR_ENTRIES),
            (Table::Dst6Dir, 2 * abi::DIR_ENTRIES),
            (Table::Src4Lens, 2 * abi::DIR_ENTRIES),
            (Table::Dst4Lens, 2 * abi::DIR_ENTRIES),
        ];
        let mut spans: Vec<(usize, usize)> = all
            .iter()
            .map(|&(t, n)| {
                let s = t.span();
                assert_eq!(s.len, n, "{t:?}");
                (s.off, s.len * s.width)
            })
            .collect();
        spans.sort_unstable();
        assert!(spans[0].0 >= GEN + 4, "gen comes first");
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{w:?} overlap");
        }
        let (last_off, last_len) = spans[spans.len() - 1];
        assert!(last_off + last_len <= size_of::<xw_tables>());
    }

    #[test]
    fn the_value_fits_what_linux_before_6_0_accepts() {
        // KMALLOC_MAX_SIZE with 4 KiB pages (bpf/abi.h asserts it too).
        assert!(
            size_of::<xw_tables>() <= 4 << 20,
            "{}",
            size_of::<xw_tables>()
        );
    }

    #[test]
    fn put_writes_its_own_array_and_generation_only() {
        let mut t = Tables::zeroed();
        let ok = |r: Result<()>| r.unwrap_or_else(|e| panic!("{e}"));
        ok(t.put(Table::Sport, &[7; abi::PORT_ENTRIES]));
        ok(t.put_gen(Table::Src4Dir, 1, &[9, 10]));
        ok(t.put_gen(Table::Src4Lens, 1, &[0xffff, 3]));
        t.set_gen(1);
        assert_eq!(t.at(Table::Sport, abi::PORT_ENTRIES - 1), 7);
        assert_eq!(t.at(Table::Dport, 0), 0, "the next array is untouched");
        assert_eq!(t.at(Table::Proto, abi::PROTO_ENTRIES - 1), 0);
        assert_eq!(t.at(Table::Src4Dir, abi::DIR_ENTRIES - 1), 0);
        assert_eq!(t.at(Table::Src4Dir, abi::DIR_ENTRIES + 1), 10);
        assert_eq!(t.at(Table::Src4Lens, abi::DIR_ENTRIES), 0xffff);
        assert_eq!(t.at(Table::Src4Lens, abi::DIR_ENTRIES + 1), 3);
        assert_eq!(t.at(Table::Src4Lens, abi::DIR_ENTRIES + 2), 0);
        assert_eq!(t.at(Table::Dst4Lens, 0), 0);
        assert_eq!(t.gen(), 1);
    }

    #[test]
    fn what_does_not_fit_is_refused() {
        let mut t = Tables::zeroed();
        let err = t.put(Table::Vlan, &[1; abi::VLAN_ENTRIES + 1]);
        assert!(
            matches!(err, Err(Error::TableTooLong { room, .. }) if room == abi::VLAN_ENTRIES),
            "{err:?}"
        );
        // One generation never spills into the other.
        let err = t.put_gen(Table::Src6Dir, 0, &[1; abi::DIR_ENTRIES + 1]);
        assert!(matches!(err, Err(Error::TableTooLong { .. })), "{err:?}");
        assert_eq!(t.at(Table::Src6Dir, abi::DIR_ENTRIES), 0);
        // A 16-bit array refuses a wider entry.
        let err = t.put_gen(Table::Dst4Lens, 0, &[1, 0x1_0000]);
        assert!(
            matches!(err, Err(Error::TableValue { index: 1, .. })),
            "{err:?}"
        );
        assert_eq!(t.at(Table::Frag, 0), 0, "nothing written after the array");
    }
}
