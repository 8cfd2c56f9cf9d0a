//! JSON lines: one object per event, with the stable keys of DESIGN.md.
//!
//! ```json
//! {"ts":"2026-11-25T16:12:51.123456789Z","iface":"eth0","rule":"ssh-others","action":"drop",
//!  "family":"ipv4","proto":"tcp","src":"198.51.100.7","dst":"192.0.2.1","sport":51512,"dport":22,
//!  "len":74,"cpu":1,"kind":"log","caplen":74,"rx_queue":0,"ifindex":2,"vlan":null,
//!  "tcp_flags":"S","icmp_type":null,"icmp_code":null}
//! ```
//! (one line in the output). Every line has every key: a field the packet
//! does not have (no ports for ICMP, no addresses for ARP, no rule for the
//! default action) is `null`, never omitted, so each line has the same shape.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::clock::rfc3339_nanos;
use crate::summary::summarize;
use crate::{EventView, Sink};

/// The JSON record of one event. Keys are stable: add, never rename.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonEvent<'a> {
    /// Packet time, RFC 3339 in UTC with nanoseconds.
    pub ts: String,
    /// Interface name.
    pub iface: &'a str,
    /// Rule name, `null` for the default action or a capture.
    pub rule: Option<&'a str>,
    /// Verdict (`pass`, `drop`, `aborted`, `tx`, `redirect`).
    pub action: &'a str,
    /// `ipv4` or `ipv6`.
    pub family: Option<&'static str>,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, `gre` or the protocol number.
    pub proto: Option<String>,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// Original frame length on the wire.
    pub len: u32,
    /// CPU that ran the XDP program.
    pub cpu: u32,
    /// `log`, `sample` or `capture`.
    pub kind: &'a str,
    /// Number of frame bytes captured.
    pub caplen: u32,
    /// Receive queue.
    pub rx_queue: u32,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Outermost VLAN ID.
    pub vlan: Option<u16>,
    /// TCP flags, tcpdump style (`S`, `S.`, `F.`…).
    pub tcp_flags: Option<String>,
    /// ICMP/ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP/ICMPv6 code.
    pub icmp_code: Option<u8>,
}

impl<'a> JsonEvent<'a> {
    /// Builds the record of `ev`, summarising its packet bytes.
    pub fn from_view(ev: &EventView<'a>) -> Self {
        let s = summarize(ev.data);
        JsonEvent {
            ts: rfc3339_nanos(ev.ts_unix_ns),
            iface: ev.iface,
            rule: ev.rule,
            action: ev.action,
            family: s.family,
            proto: s.proto,
            src: s.src,
            dst: s.dst,
            sport: s.sport,
            dport: s.dport,
            len: ev.wire_len,
            cpu: ev.cpu,
            kind: ev.kind,
            caplen: u32::try_from(ev.data.len()).unwrap_or(u32::MAX),
            rx_queue: ev.rx_queue,
            ifindex: ev.ifindex,
            vlan: s.vlan,
            tcp_flags: s.tcp_flags,
            icmp_type: s.icmp_type,
            icmp_code: s.icmp_code,
        }
    }
}

/// Writes one JSON object per line. Output is buffered by the writer given;
/// [`Sink::flush`] pushes it out.
pub struct JsonSink<W: Write> {
    out: W,
}

impl<W: Write> JsonSink<W> {
    /// A sink writing JSON lines to `out`.
    pub fn new(out: W) -> Self {
        JsonSink { out }
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn write(&mut self, ev: &EventView<'_>) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &JsonEvent::from_view(ev))?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use serde_json::{json, Map, Value};

    const KEYS: [&str; 20] = [
        "ts",
        "iface",
        "rule",
        "action",
        "family",
        "proto",
        "src",
        "dst",
        "sport",
        "dport",
        "len",
        "cpu",
        "kind",
        "caplen",
        "rx_queue",
        "ifindex",
        "vlan",
        "tcp_flags",
        "icmp_type",
        "icmp_code",
    ];

    fn lines(events: &[EventView<'_>]) -> Vec<Map<String, Value>> {
        let mut sink = JsonSink::new(Vec::new());
        for ev in events {
            sink.write(ev).unwrap();
        }
        sink.flush().unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert!(text.ends_with('\n'));
        text.lines()
            .map(|l| match serde_json::from_str(l).unwrap() {
                Value::Object(m) => m,
                other => panic!("not an object: {other}"),
            })
            .collect()
    }

    #[test]
    fn design_example_values() {
        let data = tcp4_syn();
        let mut ev = event(&data, Some("ssh-others"), "drop");
        ev.wire_len = 74;
        let got = Value::Object(lines(&[ev]).remove(0));
        let want = json!({
            "ts": "2026-11-25T16:12:51.123456789Z", "iface": "eth0", "rule": "ssh-others", "action": "drop",
            "family": "ipv4", "proto": "tcp", "src": "198.51.100.7", "dst": "192.0.2.1", "sport": 51512,
            "dport": 22, "len": 74, "cpu": 1, "kind": "log", "caplen": 54, "rx_queue": 3, "ifindex": 2,
            "vlan": null, "tcp_flags": "S", "icmp_type": null, "icmp_code": null
        });
        assert_eq!(got, want);
    }

    #[test]
    fn every_line_has_every_key_with_its_type() {
        let samples = all_samples();
        let mut events: Vec<EventView<'_>> =
            samples.iter().map(|d| event(d, None, "pass")).collect();
        events.push(event(&[], Some("r"), "drop"));
        events.push(event(&samples[0][..5], Some("r"), "aborted"));
        for m in lines(&events) {
            assert_eq!(m.len(), KEYS.len(), "{m:?}");
            for k in KEYS {
                let v = &m[k];
                let ok = match k {
                    "ts" | "iface" | "action" | "kind" => v.is_string(),
                    "len" | "cpu" | "caplen" | "rx_queue" | "ifindex" => v.is_u64(),
                    "sport" | "dport" | "vlan" | "icmp_type" | "icmp_code" => {
                        v.is_null() || v.is_u64()
                    }
                    _ => v.is_null() || v.is_string(),
                };
                assert!(ok, "{k} = {v} in {m:?}");
            }
        }
    }

    #[test]
    fn missing_fields_are_null() {
        let arp = arp_request();
        let icmp = icmp6_echo_request();
        let m = lines(&[event(&arp, None, "pass"), event(&icmp, None, "pass")]);
        assert_eq!(m[0]["rule"], Value::Null);
        assert_eq!(
            (&m[0]["family"], &m[0]["src"], &m[0]["sport"]),
            (&Value::Null, &Value::Null, &Value::Null)
        );
        assert_eq!(
            (&m[1]["family"], &m[1]["proto"], &m[1]["src"]),
            (&json!("ipv6"), &json!("icmpv6"), &json!("fd00::1"))
        );
        assert_eq!(
            (&m[1]["sport"], &m[1]["icmp_type"]),
            (&Value::Null, &json!(128))
        );
    }

    #[test]
    fn timestamps_are_rfc3339_with_nanoseconds() {
        let mut a = event(&[], None, "pass");
        a.ts_unix_ns = 0;
        let mut b = a;
        b.ts_unix_ns = 1_709_251_199_000_000_001; // 2024-02-29, a leap day
        let m = lines(&[a, b]);
        assert_eq!(m[0]["ts"], "1970-01-01T00:00:00.000000000Z");
        assert_eq!(m[1]["ts"], "2024-02-29T23:59:59.000000001Z");
    }

    #[test]
    fn names_are_escaped() {
        let ev = event(&[], Some("quote\"and\nnewline"), "drop");
        let m = lines(&[ev]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0]["rule"], "quote\"and\nnewline");
    }
}
