//! Human-readable event lines, in the style of `tcpdump -n`.
//!
//! ```text
//! 16:12:51.123456789 eth0 drop ssh-others IP 198.51.100.7.51512 > 192.0.2.1.22: tcp S len 74
//! 16:12:51.123456789 eth0 pass - IP6 fd00::1 > fd00::2: icmp6 echo request len 118
//! 16:12:51.123456789 eth0 pass - ARP len 42
//! ```
//!
//! Fields: UTC time of day with ns, interface, action, rule (`-` for the
//! default action or a capture), then the packet: `vlan N` when tagged,
//! `IP`/`IP6` with addresses (ports appended after a dot, as tcpdump does),
//! the protocol (TCP flags, ICMP type names), and `len` = the wire length.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::clock::time_of_day_nanos;
use crate::summary::{summarize, PacketSummary, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::{EventView, Sink};

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const RESET: &str = "\x1b[0m";

/// Writes one line per event and flushes after each line, so lines appear
/// as events arrive. Times are UTC.
pub struct TerminalSink<W: Write> {
    out: W,
    colour: bool,
}

impl<W: Write> TerminalSink<W> {
    /// A sink writing to `out`; `colour` turns on ANSI colours for the action
    /// (drop/aborted red, pass green). The caller decides, e.g. on isatty.
    pub fn new(out: W, colour: bool) -> Self {
        TerminalSink { out, colour }
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for TerminalSink<W> {
    fn write(&mut self, ev: &EventView<'_>) -> io::Result<()> {
        writeln!(self.out, "{}", format_line(ev, self.colour))?;
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Formats one event as a terminal line (without the newline).
pub fn format_line(ev: &EventView<'_>, colour: bool) -> String {
    let summary = summarize(ev.data);
    format!(
        "{} {} {} {} {} len {}",
        time_of_day_nanos(ev.ts_unix_ns),
        printable(ev.iface),
        action(ev.action, colour),
        printable(ev.rule.unwrap_or("-")),
        describe(&summary, ev.data.len()),
        ev.wire_len
    )
}

/// Replaces control characters so names cannot inject terminal escapes.
fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

fn action(action: &str, colour: bool) -> Cow<'_, str> {
    let code = match action {
        "drop" | "aborted" => RED,
        "pass" => GREEN,
        _ => "",
    };
    if colour && !code.is_empty() {
        Cow::Owned(format!("{code}{}{RESET}", printable(action)))
    } else {
        printable(action)
    }
}

/// The packet part of the line: `[vlan N ]IP a.p > b.q: proto ...`.
fn describe(s: &PacketSummary, cap_len: usize) -> String {
    let body = match (s.family, s.src, s.dst) {
        (Some(family), Some(src), Some(dst)) => {
            let tag = if family == "ipv6" { "IP6" } else { "IP" };
            format!(
                "{tag} {} > {}: {}",
                endpoint(src, s.sport),
                endpoint(dst, s.dport),
                transport(s)
            )
        }
        _ => non_ip(s.ether_type, cap_len),
    };
    match s.vlan {
        Some(id) => format!("vlan {id} {body}"),
        None => body,
    }
}

fn endpoint(addr: std::net::IpAddr, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{addr}.{p}"),
        None => addr.to_string(),
    }
}

fn non_ip(ether_type: Option<u16>, cap_len: usize) -> String {
    match ether_type {
        Some(ETHERTYPE_ARP) => "ARP".into(),
        Some(ETHERTYPE_IPV4) => "IP [truncated]".into(),
        Some(ETHERTYPE_IPV6) => "IP6 [truncated]".into(),
        Some(t) => format!("ethertype 0x{t:04x}"),
        None if cap_len == 0 => "[no data]".into(),
        None => "[truncated]".into(),
    }
}

/// The protocol part: `tcp S`, `udp`, `icmp echo request`, `ip-proto-99`.
fn transport(s: &PacketSummary) -> String {
    let proto = s.proto.as_deref().unwrap_or("?");
    match proto {
        "tcp" => match &s.tcp_flags {
            Some(f) => format!("tcp {f}"),
            None => "tcp".into(),
        },
        "icmp" => icmp("icmp", s, icmp4_name),
        "icmpv6" => icmp("icmp6", s, icmp6_name),
        "udp" | "sctp" | "gre" | "?" => proto.into(),
        number => format!("ip-proto-{number}"),
    }
}

fn icmp(label: &str, s: &PacketSummary, name: fn(u8) -> Option<&'static str>) -> String {
    let Some(ty) = s.icmp_type else {
        return label.into();
    };
    let code = s.icmp_code.unwrap_or(0);
    match name(ty) {
        Some(n) if code == 0 => format!("{label} {n}"),
        Some(n) => format!("{label} {n} code {code}"),
        None => format!("{label} type {ty} code {code}"),
    }
}

fn icmp4_name(ty: u8) -> Option<&'static str> {
    Some(match ty {
        0 => "echo reply",
        3 => "unreachable",
        5 => "redirect",
        8 => "echo request",
        11 => "time exceeded",
        12 => "parameter problem",
        _ => return None,
    })
}

fn icmp6_name(ty: u8) -> Option<&'static str> {
    Some(match ty {
        1 => "unreachable",
        2 => "packet too big",
        3 => "time exceeded",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    fn line(data: &[u8], rule: Option<&str>, action: &str) -> String {
        let mut sink = TerminalSink::new(Vec::new(), false);
        let mut ev = event(data, rule, action);
        ev.wire_len = 74;
        sink.write(&ev).unwrap();
        String::from_utf8(sink.into_inner()).unwrap()
    }

    #[test]
    fn tcp_line_matches_the_design_example() {
        assert_eq!(
            line(&tcp4_syn(), Some("ssh-others"), "drop"),
            "16:12:51.123456789 eth0 drop ssh-others IP 198.51.100.7.51512 > 192.0.2.1.22: tcp S len 74\n"
        );
    }

    #[test]
    fn icmp6_udp_arp_lines() {
        assert_eq!(
            line(&icmp6_echo_request(), None, "pass"),
            "16:12:51.123456789 eth0 pass - IP6 fd00::1 > fd00::2: icmp6 echo request len 74\n"
        );
        assert_eq!(
            line(&udp4(), Some("dns"), "pass"),
            "16:12:51.123456789 eth0 pass dns IP 198.51.100.7.40000 > 192.0.2.1.53: udp len 74\n"
        );
        assert_eq!(
            line(&arp_request(), None, "pass"),
            "16:12:51.123456789 eth0 pass - ARP len 74\n"
        );
    }

    #[test]
    fn vlan_icmp4_sctp_fragment_lines() {
        let tail = |l: String| l.split_once(" - ").unwrap().1.to_string();
        assert_eq!(
            tail(line(&vlan_udp4(), None, "tx")),
            "vlan 100 IP 198.51.100.7.40000 > 192.0.2.1.53: udp len 74\n"
        );
        assert_eq!(
            tail(line(&icmp4_echo_request(), None, "tx")),
            "IP 198.51.100.7 > 192.0.2.1: icmp echo request len 74\n"
        );
        assert_eq!(
            tail(line(&sctp6(), None, "tx")),
            "IP6 fd00::1.2905 > fd00::2.3868: sctp len 74\n"
        );
        assert_eq!(
            tail(line(&udp4_fragment(185, false), None, "tx")),
            "IP 198.51.100.7 > 192.0.2.1: udp len 74\n"
        );
        assert_eq!(
            tail(line(&tcp6_syn_ack(), None, "tx")),
            "IP6 fd00::1.443 > fd00::2.40000: tcp S. len 74\n"
        );
    }

    #[test]
    fn truncated_and_empty_lines() {
        let tail = |l: String| l.split_once(" - ").unwrap().1.to_string();
        assert_eq!(tail(line(&[], None, "pass")), "[no data] len 74\n");
        assert_eq!(
            tail(line(&tcp4_syn()[..10], None, "pass")),
            "[truncated] len 74\n"
        );
        assert_eq!(
            tail(line(&tcp4_syn()[..20], None, "pass")),
            "IP [truncated] len 74\n"
        );
        assert_eq!(
            tail(line(&tcp4_syn()[..34], None, "pass")),
            "IP 198.51.100.7 > 192.0.2.1: tcp len 74\n"
        );
    }

    #[test]
    fn icmp_names_and_codes() {
        let s = |ty, code| PacketSummary {
            icmp_type: Some(ty),
            icmp_code: Some(code),
            ..Default::default()
        };
        assert_eq!(
            icmp("icmp", &s(3, 3), icmp4_name),
            "icmp unreachable code 3"
        );
        assert_eq!(
            icmp("icmp6", &s(135, 0), icmp6_name),
            "icmp6 neighbor solicitation"
        );
        assert_eq!(icmp("icmp", &s(42, 1), icmp4_name), "icmp type 42 code 1");
        let other = PacketSummary {
            proto: Some("99".into()),
            ..Default::default()
        };
        assert_eq!(transport(&other), "ip-proto-99");
    }

    #[test]
    fn colour_only_when_asked() {
        let ev = event(&[], Some("r"), "drop");
        assert!(format_line(&ev, true).contains("\x1b[31mdrop\x1b[0m"));
        assert!(!format_line(&ev, false).contains('\x1b'));
        let ev = event(&[], None, "pass");
        assert!(format_line(&ev, true).contains("\x1b[32mpass\x1b[0m"));
    }

    #[test]
    fn control_characters_in_names_are_neutralised() {
        let ev = event(&[], Some("evil\x1b[2J"), "drop");
        assert!(format_line(&ev, false).contains(" evil?[2J "));
    }

    #[test]
    fn flushes_after_every_line() {
        struct CountFlush(usize);
        impl Write for CountFlush {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0 += 1;
                Ok(())
            }
        }
        let mut sink = TerminalSink::new(CountFlush(0), false);
        sink.write(&event(&[], None, "pass")).unwrap();
        sink.write(&event(&[], None, "pass")).unwrap();
        assert_eq!(sink.into_inner().0, 2);
    }
}
