//! The heaviest sources of a stream in bounded memory: the space-saving
//! algorithm (Metwally, Agrawal, El Abbadi 2005). At most `capacity` keys
//! are tracked; a new key replaces the one with the smallest count and
//! inherits that count as its possible overestimate (`error`). Every key
//! whose true count exceeds total/capacity is guaranteed to be present, so
//! under a flood of random sources the memory stays fixed and the real
//! heavy hitters still surface.

use std::collections::HashMap;
use std::hash::Hash;

/// One tracked key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<K> {
    /// The key (e.g. a source address).
    pub key: K,
    /// Packets counted for it (an overestimate by at most `error`).
    pub packets: u64,
    /// Bytes counted for it (overestimated like `packets`).
    pub bytes: u64,
    /// Most the counts may exceed the truth by.
    pub error: u64,
    /// A tag of its last item (e.g. the rule that dropped it).
    pub tag: u32,
}

/// A space-saving summary of at most `capacity` keys.
#[derive(Debug, Clone)]
pub struct SpaceSaving<K> {
    capacity: usize,
    entries: Vec<Entry<K>>,
    index: HashMap<K, usize>,
    total: u64,
}

impl<K: Clone + Eq + Hash> SpaceSaving<K> {
    /// An empty summary tracking at most `capacity` (≥ 1) keys.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            entries: Vec::with_capacity(capacity),
            index: HashMap::with_capacity(capacity),
            total: 0,
        }
    }

    /// Counts one item of `bytes` for `key`.
    pub fn add(&mut self, key: K, bytes: u64, tag: u32) {
        self.total += 1;
        if let Some(&i) = self.index.get(&key) {
            let e = &mut self.entries[i];
            e.packets += 1;
            e.bytes += bytes;
            e.tag = tag;
            return;
        }
        if self.entries.len() < self.capacity {
            self.index.insert(key.clone(), self.entries.len());
            self.entries.push(Entry {
                key,
                packets: 1,
                bytes,
                error: 0,
                tag,
            });
            return;
        }
        // Replace the smallest: the newcomer may have been it all along.
        let Some((i, _)) = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.packets)
        else {
            return;
        };
        let old = &mut self.entries[i];
        self.index.remove(&old.key);
        self.index.insert(key.clone(), i);
        *old = Entry {
            key,
            packets: old.packets + 1,
            bytes: old.bytes + bytes,
            error: old.packets,
            tag,
        };
    }

    /// Items counted in all.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Keys tracked now.
    #[must_use]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The `n` heaviest, by packets (then fewer possible overcount first).
    #[must_use]
    pub fn top(&self, n: usize) -> Vec<Entry<K>> {
        let mut v: Vec<&Entry<K>> = self.entries.iter().collect();
        v.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.error.cmp(&b.error)));
        v.into_iter().take(n).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_while_there_is_room() {
        let mut s = SpaceSaving::new(4);
        for (k, n) in [("a", 5), ("b", 3), ("c", 1)] {
            for _ in 0..n {
                s.add(k, 100, 7);
            }
        }
        let top = s.top(10);
        let got: Vec<(&str, u64, u64, u64)> = top
            .iter()
            .map(|e| (e.key, e.packets, e.bytes, e.error))
            .collect();
        assert_eq!(
            got,
            vec![("a", 5, 500, 0), ("b", 3, 300, 0), ("c", 1, 100, 0)]
        );
        assert_eq!(s.total(), 9);
        assert_eq!(s.top(1)[0].key, "a");
    }

    #[test]
    fn memory_stays_bounded_and_heavy_hitters_survive_a_flood() {
        let mut s = SpaceSaving::new(16);
        // Two heavy sources hidden in 100 000 packets from 50 000 distinct
        // addresses: each heavy one sends 10% of the traffic.
        let mut x: u32 = 12345;
        for i in 0..100_000u32 {
            let key = match i % 10 {
                0 => 1_000_000,
                5 => 2_000_000,
                _ => {
                    // xorshift: a cheap deterministic "random" source.
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x % 50_000
                }
            };
            s.add(key, 60, 0);
        }
        assert_eq!(s.len(), 16, "never more than the capacity");
        assert_eq!(s.index.len(), 16);
        let top = s.top(2);
        let mut keys: Vec<u32> = top.iter().map(|e| e.key).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec![1_000_000, 2_000_000]);
        for e in &top {
            // The guarantee: true count (10 000) <= packets <= true + error.
            assert!(
                e.packets >= 10_000 && e.packets - e.error <= 10_000,
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_newcomer_inherits_the_minimum_as_its_error() {
        let mut s = SpaceSaving::new(2);
        s.add("a", 1, 0);
        s.add("a", 1, 0);
        s.add("b", 1, 0);
        s.add("c", 1, 9);
        let top = s.top(2);
        assert_eq!((top[0].key, top[0].packets, top[0].error), ("a", 2, 0));
        assert_eq!(
            (top[1].key, top[1].packets, top[1].error, top[1].tag),
            ("c", 2, 1, 9)
        );
    }
}
