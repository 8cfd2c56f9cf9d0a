//! From consumer records to a sink: names resolved, time converted, write
//! errors counted (a sink that fails must not stop the firewall).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use xdpwall_events::clock::WallClock;
use xdpwall_events::Record;
use xdpwall_rules::compile::abi;
use xdpwall_sinks::{EventView, Sink};

/// Writes records to a sink.
pub struct EventWriter {
    sink: Box<dyn Sink + Send>,
    rules: Vec<String>,
    clock: WallClock,
    ifaces: HashMap<u32, String>,
    /// Records the sink failed to write.
    pub write_errors: u64,
    first_error: Option<String>,
}

/// XDP verdict name.
pub fn verdict_name(xdp: u32) -> &'static str {
    match xdp {
        0 => "aborted",
        1 => "drop",
        2 => "pass",
        3 => "tx",
        4 => "redirect",
        _ => "unknown",
    }
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        abi::EV_LOG => "log",
        abi::EV_SAMPLE => "sample",
        _ => "capture",
    }
}

fn if_name(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return "?".into();
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

impl EventWriter {
    /// A writer for rules named `rules` (by id).
    pub fn new(sink: Box<dyn Sink + Send>, rules: Vec<String>) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self {
            sink,
            rules,
            clock: WallClock::new(),
            ifaces: HashMap::new(),
            write_errors: 0,
            first_error: None,
        }))
    }

    /// Rule names for a new rule set (after a reload).
    pub fn set_rules(&mut self, rules: Vec<String>) {
        self.rules = rules;
    }

    /// Writes one record.
    pub fn write(&mut self, r: &Record<'_>) {
        let h = &r.header;
        let iface = self
            .ifaces
            .entry(h.ifindex)
            .or_insert_with(|| if_name(h.ifindex))
            .clone();
        let rule = (h.rule != u32::MAX)
            .then(|| self.rules.get(h.rule as usize).map(String::as_str))
            .flatten();
        let view = EventView {
            ts_unix_ns: self.clock.unix_ns(h.ts_ns),
            ifindex: h.ifindex,
            iface: &iface,
            rx_queue: h.rx_queue,
            cpu: h.cpu,
            rule,
            action: verdict_name(h.verdict),
            kind: kind_name(h.kind),
            wire_len: h.wire_len,
            data: r.data,
        };
        if let Err(e) = self.sink.write(&view) {
            self.write_errors += 1;
            self.first_error.get_or_insert_with(|| e.to_string());
        }
    }

    /// Flushes the sink; returns the first write error seen, if any.
    pub fn finish(&mut self) -> Option<String> {
        if let Err(e) = self.sink.flush() {
            self.first_error.get_or_insert_with(|| e.to_string());
        }
        self.first_error.clone()
    }
}
