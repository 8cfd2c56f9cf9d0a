//! Event records as the kernel hands them over, then every sink's view of
//! the packet bytes (summary, JSON, terminal line, pcapng).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpwall_sinks::{EventView, JsonEvent, PcapngSink, Sink};

fn action(verdict: u32) -> &'static str {
    match verdict {
        0 => "aborted",
        1 => "drop",
        2 => "pass",
        3 => "tx",
        4 => "redirect",
        _ => "?",
    }
}

fn kind(k: u32) -> &'static str {
    match k {
        0 => "log",
        1 => "sample",
        2 => "capture",
        _ => "?",
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(rec) = xdpwall_events::decode(data) else {
        return;
    };
    let _ = xdpwall_sinks::summarize(rec.data);
    let h = rec.header;
    let rule = (h.rule != u32::MAX).then_some("rule\x1b[31m-name");
    let ev = EventView {
        ts_unix_ns: h.ts_ns,
        ifindex: h.ifindex,
        iface: "eth0",
        rx_queue: h.rx_queue,
        cpu: h.cpu,
        rule,
        action: action(h.verdict),
        kind: kind(h.kind),
        wire_len: h.wire_len,
        data: rec.data,
    };
    let j = JsonEvent::from_view(&ev);
    let _ = serde_json_like(&j);
    let _ = xdpwall_sinks::terminal::format_line(&ev, false);
    let _ = xdpwall_sinks::terminal::format_line(&ev, true);
    let _ = xdpwall_sinks::pcapng::packet_comment(&ev);
    let mut js = xdpwall_sinks::JsonSink::new(Vec::new());
    let _ = js.write(&ev);
    if let Ok(mut p) = PcapngSink::new(Vec::new()) {
        let _ = p.write(&ev);
        let _ = p.flush();
    }
});

fn serde_json_like(j: &JsonEvent<'_>) -> usize {
    format!("{j:?}").len()
}
