//! The fixed-size field tables: one map value (`xw_tables`, `struct
//! xw_tables` in bpf/abi.h) the program looks up once a packet, then indexes
//! as plain arrays. User space builds it as an image of `u32`s at the C
//! struct's offsets and writes it whole: the kernel copies a map value
//! without tearing a 4-byte entry, and entries packets may be reading are
//! written with the value they already hold.

use std::mem::{offset_of, size_of};

use libbpf_rs::{MapCore, MapFlags, MapHandle};

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
    Src4Dir,
    Dst4Dir,
    Src4Lens,
    Dst4Lens,
    Src6Dir,
    Dst6Dir,
}

/// `size_of` a field, without a value of its (4 MiB) struct.
fn size_of_field<T, F>(_: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

impl Table {
    /// Where the array starts and how many entries it has, in `u32`s.
    fn span(self) -> (usize, usize) {
        macro_rules! at {
            ($f:ident) => {
                (
                    offset_of!(xw_tables, $f),
                    size_of_field(|t: &xw_tables| &t.$f),
                )
            };
        }
        let (off, len) = match self {
            Table::Proto => at!(proto),
            Table::Sport => at!(sport),
            Table::Dport => at!(dport),
            Table::TcpFlags => at!(tcpflags),
            Table::Icmp => at!(icmp),
            Table::Family => at!(family),
            Table::Vlan => at!(vlan),
            Table::Frag => at!(frag),
            Table::Src4Dir => at!(src4_dir),
            Table::Dst4Dir => at!(dst4_dir),
            Table::Src4Lens => at!(src4_lens),
            Table::Dst4Lens => at!(dst4_lens),
            Table::Src6Dir => at!(src6_dir),
            Table::Dst6Dir => at!(dst6_dir),
        };
        (off / 4, len / 4)
    }
}

/// An image of the map value.
pub(crate) struct Tables {
    words: Vec<u32>,
}

const NAME: &str = "xw_tables";
const GEN: usize = offset_of!(xw_tables, gen) / 4;

impl Tables {
    /// All entries 0 (class 0), generation 0.
    pub(crate) fn zeroed() -> Self {
        Self {
            words: vec![0; size_of::<xw_tables>() / 4],
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
        let mut t = Self::zeroed();
        if bytes.len() != t.words.len() * 4 {
            return Err(Error::Incompatible {
                map: NAME,
                what: format!("{} bytes, expected {}", bytes.len(), t.words.len() * 4),
            });
        }
        for (w, b) in t.words.iter_mut().zip(bytes.chunks_exact(4)) {
            *w = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(t)
    }

    /// Writes the image into `map`.
    pub(crate) fn write(&self, map: &MapHandle) -> Result<()> {
        map.update(
            &0u32.to_ne_bytes(),
            crate::pod::bytes_of_slice(&self.words),
            MapFlags::ANY,
        )
        .map_err(|source| Error::Map {
            op: "fill",
            map: NAME,
            source,
        })
    }

    /// The address-table generation packets use.
    pub(crate) fn gen(&self) -> u32 {
        self.words[GEN]
    }

    pub(crate) fn set_gen(&mut self, gen: u32) {
        self.words[GEN] = gen;
    }

    /// Copies `vals` into `table` from entry `base` on. Compiled tables are
    /// never longer than their array; a longer one (a compiler bug) is an
    /// error, not a write into the next array.
    pub(crate) fn put(&mut self, table: Table, base: usize, vals: &[u32]) -> Result<()> {
        let (off, len) = table.span();
        let room = len.saturating_sub(base);
        if vals.len() > room {
            return Err(Error::TableTooLong {
                table: format!("{table:?}"),
                len: vals.len(),
                base,
                room: len,
            });
        }
        self.words[off + base..off + base + vals.len()].copy_from_slice(vals);
        Ok(())
    }

    /// Entry `i` of `table` (tests).
    #[cfg(test)]
    fn at(&self, table: Table, i: usize) -> u32 {
        let (off, _) = table.span();
        self.words[off + i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpwall_rules::compile::abi;

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
            (Table::Src4Lens, 2 * abi::DIR_ENTRIES),
            (Table::Dst4Lens, 2 * abi::DIR_ENTRIES),
            (Table::Src6Dir, 2 * abi::DIR_ENTRIES),
            (Table::Dst6Dir, 2 * abi::DIR_ENTRIES),
        ];
        let mut spans: Vec<(usize, usize)> = all
            .iter()
            .map(|&(t, n)| {
                let (off, len) = t.span();
                assert_eq!(len, n, "{t:?}");
                (off, len)
            })
            .collect();
        spans.sort_unstable();
        assert!(spans[0].0 > GEN, "gen comes first");
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{w:?} overlap");
        }
        let (last_off, last_len) = spans[spans.len() - 1];
        assert!(last_off + last_len <= size_of::<xw_tables>() / 4);
    }

    #[test]
    fn put_writes_its_own_array_only() {
        let mut t = Tables::zeroed();
        let put = |t: &mut Tables, table, base, vals: &[u32]| {
            t.put(table, base, vals)
                .unwrap_or_else(|e| panic!("{table:?}: {e}"));
        };
        put(&mut t, Table::Sport, 0, &[7; abi::PORT_ENTRIES]);
        put(&mut t, Table::Src4Dir, abi::DIR_ENTRIES, &[9, 10]);
        t.set_gen(1);
        assert_eq!(t.at(Table::Sport, abi::PORT_ENTRIES - 1), 7);
        assert_eq!(t.at(Table::Dport, 0), 0, "the next array is untouched");
        assert_eq!(t.at(Table::Proto, abi::PROTO_ENTRIES - 1), 0);
        assert_eq!(t.at(Table::Src4Dir, abi::DIR_ENTRIES - 1), 0);
        assert_eq!(t.at(Table::Src4Dir, abi::DIR_ENTRIES + 1), 10);
        assert_eq!(t.gen(), 1);
    }

    #[test]
    fn a_table_longer_than_its_array_is_refused() {
        let mut t = Tables::zeroed();
        let err = t.put(Table::Vlan, 0, &[1; abi::VLAN_ENTRIES + 1]);
        assert!(
            matches!(err, Err(Error::TableTooLong { room, .. }) if room == abi::VLAN_ENTRIES),
            "{err:?}"
        );
        // Past the second generation's start, too.
        let err = t.put(Table::Src6Dir, abi::DIR_ENTRIES + 1, &[1; abi::DIR_ENTRIES]);
        assert!(matches!(err, Err(Error::TableTooLong { .. })), "{err:?}");
        assert_eq!(t.at(Table::Frag, 0), 0, "nothing written after the array");
    }
}
