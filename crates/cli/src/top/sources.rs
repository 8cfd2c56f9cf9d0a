//! The sink that turns tapped dropped packets into the sources table: each
//! event (decoded by the events crate, resolved into an `EventView` by the
//! event writer) counts once for its source address in a bounded
//! space-saving summary shared with the display loop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use xdpwall_sinks::{summarize, EventView, Sink};

use super::topk::{Entry, SpaceSaving};

/// Sources tracked at most (memory stays fixed under a flood).
pub const CAPACITY: usize = 256;

/// Tag of packets the default action dropped.
pub const DEFAULT_TAG: u32 = u32::MAX;

/// The summary and the rule names its tags stand for.
#[derive(Debug)]
pub struct Sources {
    table: SpaceSaving<Option<IpAddr>>,
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Default for Sources {
    fn default() -> Self {
        Self {
            table: SpaceSaving::new(CAPACITY),
            ids: HashMap::new(),
            names: Vec::new(),
        }
    }
}

impl Sources {
    /// Counts one dropped packet from `src` of `bytes`, dropped by `rule`.
    pub fn add(&mut self, src: Option<IpAddr>, bytes: u64, rule: Option<&str>) {
        let tag = match rule {
            None => DEFAULT_TAG,
            Some(name) => match self.ids.get(name) {
                Some(&id) => id,
                None => {
                    let id = u32::try_from(self.names.len()).unwrap_or(DEFAULT_TAG);
                    self.ids.insert(name.to_string(), id);
                    self.names.push(name.to_string());
                    id
                }
            },
        };
        self.table.add(src, bytes, tag);
    }

    /// The `n` heaviest, items counted, keys tracked, and the tag names.
    #[must_use]
    pub fn snapshot(&self, n: usize) -> (Vec<Entry<Option<IpAddr>>>, u64, usize, Vec<String>) {
        (
            self.table.top(n),
            self.table.total(),
            self.table.len(),
            self.names.clone(),
        )
    }
}

/// A [`Sink`] feeding shared [`Sources`].
pub struct SourceSink(pub Arc<Mutex<Sources>>);

impl Sink for SourceSink {
    fn write(&mut self, ev: &EventView<'_>) -> std::io::Result<()> {
        let src = summarize(ev.data).src;
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("sources table poisoned"))?
            .add(src, u64::from(ev.wire_len), ev.rule);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(src: [u8; 4]) -> Vec<u8> {
        let mut pkt = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, [192, 0, 2, 1], 64)
            .udp(4000, 53)
            .write(&mut pkt, &[0; 8])
            .expect("build");
        pkt
    }

    fn view<'a>(data: &'a [u8], rule: Option<&'a str>) -> EventView<'a> {
        EventView {
            ts_unix_ns: 0,
            ifindex: 1,
            iface: "xwb",
            rx_queue: 0,
            cpu: 0,
            rule,
            action: "drop",
            kind: "capture",
            wire_len: 100,
            data,
        }
    }

    #[test]
    fn events_count_for_their_source_and_rule() {
        let shared = Arc::new(Mutex::new(Sources::default()));
        let mut sink = SourceSink(Arc::clone(&shared));
        let a = frame([198, 51, 100, 7]);
        let b = frame([203, 0, 113, 9]);
        for _ in 0..3 {
            sink.write(&view(&a, Some("drop-bad"))).expect("write");
        }
        sink.write(&view(&b, None)).expect("write");
        // A frame cut before the IP header still counts, without an address.
        sink.write(&view(&a[..10], Some("drop-bad")))
            .expect("write");
        let (top, total, tracked, names) = shared.lock().expect("lock").snapshot(10);
        assert_eq!((total, tracked), (5, 3));
        assert_eq!(top[0].key, Some(IpAddr::from([198, 51, 100, 7])));
        assert_eq!((top[0].packets, top[0].bytes), (3, 300));
        assert_eq!(names[top[0].tag as usize], "drop-bad");
        let default = top.iter().find(|e| e.tag == DEFAULT_TAG).expect("default");
        assert_eq!(default.key, Some(IpAddr::from([203, 0, 113, 9])));
        assert!(top.iter().any(|e| e.key.is_none()));
    }
}
