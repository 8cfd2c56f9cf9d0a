//! `replay`: captures written here (pcap and pcapng, packets built with
//! etherparse) through the real XDP program. Loading BPF needs root.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
use pcap_file::DataLink;
use serde_json::{json, Value};
use xdpwall_lab::require_root;

use crate::fixtures::{xdpwall, TempDir};

const REPLAY_RULES: &str = r#"[xdp]
default = "pass"
malformed = "drop"

[[rule]]
name = "count-icmp"
proto = "icmp"
action = "count"

[[rule]]
name = "ssh-drop"
proto = "tcp"
dport = 22
action = "drop"

[[rule]]
name = "dns"
proto = "udp"
dport = 53
action = "pass"

[[rule]]
name = "v6-drop"
family = "ipv6"
action = "drop"
"#;

const MAC_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const MAC_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
const SRC4: [u8; 4] = [198, 51, 100, 7];
const DST4: [u8; 4] = [192, 0, 2, 1];

fn build(b: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    b(&mut v);
    v
}

/// A test packet and the verdict `replay --json` must give it.
struct Pkt {
    what: &'static str,
    bytes: Vec<u8>,
    expect: Value,
}

fn packets() -> Vec<Pkt> {
    let tcp22 = build(|v| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv4(SRC4, DST4, 64)
            .tcp(51_512, 22, 1, 64_240)
            .syn()
            .write(v, &[])
            .expect("tcp")
    });
    let udp53 = build(|v| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv4(SRC4, DST4, 64)
            .udp(40_000, 53)
            .write(v, b"dns query")
            .expect("udp")
    });
    let icmp = build(|v| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv4(SRC4, DST4, 64)
            .icmpv4_echo_request(7, 1)
            .write(v, b"ping")
            .expect("icmp")
    });
    let v6 = build(|v| {
        let src: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        let dst: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv6(src, dst, 64)
            .udp(40_000, 9_999)
            .write(v, b"v6")
            .expect("ipv6")
    });
    let tcp80 = build(|v| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv4(SRC4, DST4, 64)
            .tcp(51_513, 80, 1, 64_240)
            .syn()
            .write(v, &[])
            .expect("tcp80")
    });
    // 10 bytes: shorter than an Ethernet header.
    let runt = tcp22[..10].to_vec();
    // Ethernet header saying IPv4, then only 10 bytes of the 20-byte header.
    let trunc_ip = udp53[..14 + 10].to_vec();
    vec![
        Pkt {
            what: "TCP to 22",
            bytes: tcp22,
            expect: json!({"rule": "ssh-drop", "action": "drop"}),
        },
        Pkt {
            what: "UDP to 53",
            bytes: udp53,
            expect: json!({"rule": "dns", "action": "pass"}),
        },
        // count-icmp counts and evaluation goes on: the default decides.
        Pkt {
            what: "ICMP echo",
            bytes: icmp,
            expect: json!({"rule": null, "action": "pass"}),
        },
        Pkt {
            what: "IPv6 UDP",
            bytes: v6,
            expect: json!({"rule": "v6-drop", "action": "drop"}),
        },
        Pkt {
            what: "TCP to 80",
            bytes: tcp80,
            expect: json!({"rule": null, "action": "pass"}),
        },
        Pkt {
            what: "10-byte runt",
            bytes: runt,
            expect: json!({"rule": null, "action": "drop", "malformed": "truncated"}),
        },
        Pkt {
            what: "truncated IPv4 header",
            bytes: trunc_ip,
            expect: json!({"rule": null, "action": "drop", "malformed": "truncated"}),
        },
    ]
}

fn write_pcap(path: &Path, pkts: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new()).expect("pcap header");
    for (i, p) in pkts.iter().enumerate() {
        let ts = Duration::from_millis(1_700_000_000_000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, p.len() as u32, p))
            .expect("pcap packet");
    }
    let bytes = w.into_writer();
    std::fs::write(path, &bytes).expect("write pcap");
    bytes
}

fn write_pcapng(path: &Path, pkts: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).expect("pcapng header");
    let idb = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0xffff,
        options: vec![],
    };
    w.write_block(&idb.into_block()).expect("idb");
    for (i, p) in pkts.iter().enumerate() {
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_millis(1_700_000_000_000 + i as u64),
            original_len: p.len() as u32,
            data: Cow::Borrowed(p),
            options: vec![],
        };
        w.write_block(&epb.into_block()).expect("epb");
    }
    let bytes = w.into_inner();
    std::fs::write(path, &bytes).expect("write pcapng");
    bytes
}

fn parse_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{stdout}"))
        })
        .collect()
}

fn replay_json(cfg: &Path, capture: &Path) -> crate::fixtures::Out {
    xdpwall(&[
        "replay",
        cfg.to_str().expect("utf-8"),
        capture.to_str().expect("utf-8"),
        "--json",
    ])
}

fn assert_verdicts(pkts: &[Pkt], lines: &[Value], out: &str) {
    assert_eq!(
        lines.len(),
        pkts.len() + 1,
        "one line per packet plus totals\n{out}"
    );
    for (i, (p, l)) in pkts.iter().zip(lines).enumerate() {
        let mut want = p.expect.clone();
        want["packet"] = json!(i + 1);
        assert_eq!(l, &want, "packet {} ({})", i + 1, p.what);
    }
    let mut want_totals = serde_json::Map::new();
    for p in pkts {
        let a = p.expect["action"].as_str().expect("action");
        let n = want_totals.get(a).and_then(Value::as_u64).unwrap_or(0);
        want_totals.insert(a.to_string(), json!(n + 1));
    }
    assert_eq!(
        lines[pkts.len()],
        json!({ "totals": want_totals }),
        "totals line\n{out}"
    );
}

fn replay_case(format: &str) {
    let dir = TempDir::new(&format!("replay-{format}"));
    let cfg = dir.write("rules.toml", REPLAY_RULES);
    let pkts = packets();
    let raw: Vec<Vec<u8>> = pkts.iter().map(|p| p.bytes.clone()).collect();
    let cap: PathBuf = dir.path().join(format!("trace.{format}"));
    match format {
        "pcap" => write_pcap(&cap, &raw),
        _ => write_pcapng(&cap, &raw),
    };
    let out = replay_json(&cfg, &cap);
    out.assert_code(0);
    assert_verdicts(&pkts, &parse_lines(&out.stdout), &out.describe());
}

#[test]
fn replay_json_pcap() {
    if !require_root("replay_json_pcap") {
        return;
    }
    replay_case("pcap");
}

#[test]
fn replay_json_pcapng() {
    if !require_root("replay_json_pcapng") {
        return;
    }
    replay_case("pcapng");
}

#[test]
fn replay_text_output() {
    if !require_root("replay_text_output") {
        return;
    }
    let dir = TempDir::new("replay-text");
    let cfg = dir.write("rules.toml", REPLAY_RULES);
    let pkts = packets();
    let raw: Vec<Vec<u8>> = pkts.iter().map(|p| p.bytes.clone()).collect();
    let cap = dir.path().join("trace.pcap");
    write_pcap(&cap, &raw);
    let out = xdpwall(&[
        "replay",
        cfg.to_str().expect("utf-8"),
        cap.to_str().expect("utf-8"),
    ]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), pkts.len() + 1, "{}", out.describe());
    assert!(
        lines[0].contains("drop") && lines[0].contains("ssh-drop"),
        "{}",
        out.stdout
    );
    assert!(lines[5].contains("truncated"), "{}", out.stdout);
    assert!(
        lines[pkts.len()].starts_with(&format!("{} packets", pkts.len())),
        "{}",
        out.stdout
    );
}

/// A capture that ends mid-record: lines for the packets before the damage,
/// the totals, and exit 1.
fn damaged_case(format: &str) {
    let dir = TempDir::new(&format!("replay-damaged-{format}"));
    let cfg = dir.write("rules.toml", REPLAY_RULES);
    let pkts: Vec<Pkt> = packets().into_iter().take(3).collect();
    let raw: Vec<Vec<u8>> = pkts.iter().map(|p| p.bytes.clone()).collect();
    let cap = dir.path().join(format!("damaged.{format}"));
    let bytes = match format {
        "pcap" => write_pcap(&cap, &raw),
        _ => write_pcapng(&cap, &raw),
    };
    // Cut the last record in the middle of its packet data.
    let last = raw.last().expect("packets").len();
    let cut = bytes.len() - last / 2 - if format == "pcap" { 0 } else { 4 };
    std::fs::write(&cap, &bytes[..cut]).expect("truncate");

    let out = replay_json(&cfg, &cap);
    out.assert_code(1);
    let lines = parse_lines(&out.stdout);
    assert_verdicts(&pkts[..2], &lines, &out.describe());
    assert!(
        out.stderr.contains("damaged.") && out.stderr.contains('2'),
        "the damage is named\n{}",
        out.describe()
    );
}

#[test]
fn replay_damaged_pcap_exits_1_after_good_packets() {
    if !require_root("replay_damaged_pcap_exits_1_after_good_packets") {
        return;
    }
    damaged_case("pcap");
}

#[test]
fn replay_damaged_pcapng_exits_1_after_good_packets() {
    if !require_root("replay_damaged_pcapng_exits_1_after_good_packets") {
        return;
    }
    damaged_case("pcapng");
}

#[test]
fn replay_rejects_a_file_that_is_no_capture() {
    if !require_root("replay_rejects_a_file_that_is_no_capture") {
        return;
    }
    let dir = TempDir::new("replay-notcap");
    let cfg = dir.write("rules.toml", REPLAY_RULES);
    let cap = dir.write("notes.txt", "hello, this is not a capture\n");
    let out = replay_json(&cfg, &cap);
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());
    assert!(
        out.stderr.contains("notes.txt") && out.stderr.contains("pcap"),
        "{}",
        out.describe()
    );
}

/// `replay --reference` needs no root: the reference classifier gives the
/// same verdicts as documented for the test capture.
#[test]
fn replay_reference_gives_the_documented_verdicts_without_bpf() {
    let dir = TempDir::new("replay-reference");
    let cfg = dir.write("rules.toml", REPLAY_RULES);
    let pkts = packets();
    let raw: Vec<Vec<u8>> = pkts.iter().map(|p| p.bytes.clone()).collect();
    let cap = dir.path().join("trace.pcapng");
    write_pcapng(&cap, &raw);
    let out = xdpwall(&[
        "replay",
        cfg.to_str().expect("utf-8"),
        cap.to_str().expect("utf-8"),
        "--json",
        "--reference",
    ]);
    out.assert_code(0);
    assert_verdicts(&pkts, &parse_lines(&out.stdout), &out.describe());
}

/// The XDP program and the reference agree line for line on the capture.
#[test]
fn replay_program_and_reference_agree() {
    if !require_root("replay_program_and_reference_agree") {
        return;
    }
    let dir = TempDir::new("replay-agree");
    let cfg = dir.write("rules.toml", REPLAY_RULES);
    let raw: Vec<Vec<u8>> = packets().into_iter().map(|p| p.bytes).collect();
    let cap = dir.path().join("trace.pcap");
    write_pcap(&cap, &raw);
    let args = [cfg.to_str().expect("utf-8"), cap.to_str().expect("utf-8")];
    let prog = xdpwall(&["replay", args[0], args[1], "--json"]);
    let reference = xdpwall(&["replay", args[0], args[1], "--json", "--reference"]);
    prog.assert_code(0);
    reference.assert_code(0);
    assert_eq!(prog.stdout, reference.stdout);
}

#[test]
fn replay_marks_rate_limited_packets_and_shows_redirects() {
    if !require_root("replay_marks_rate_limited_packets_and_shows_redirects") {
        return;
    }
    let dir = TempDir::new("replay-protect");
    let cfg = dir.write(
        "rules.toml",
        "[[rule]]\nname = \"mirror\"\nproto = \"tcp\"\nredirect = \"xwnothere0\"\n\
         [[rule]]\nname = \"dns\"\nproto = \"udp\"\nrate_limit = { pps = 1, burst = 2, by = \"src\" }\n",
    );
    let udp = || {
        build(|v| {
            PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
                .ipv4(SRC4, DST4, 64)
                .udp(5353, 53)
                .write(v, &[0; 8])
                .expect("udp")
        })
    };
    let tcp = build(|v| {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv4(SRC4, DST4, 64)
            .tcp(40000, 80, 1, 1024)
            .write(v, &[])
            .expect("tcp")
    });
    let cap = dir.path().join("p.pcap");
    write_pcap(&cap, &[udp(), udp(), udp(), udp(), tcp]);
    let t = std::time::Instant::now();
    let out = replay_json(&cfg, &cap);
    let took = t.elapsed();
    out.assert_code(0);
    let lines = parse_lines(&out.stdout);
    assert_eq!(lines.len(), 6, "{}", out.describe());
    // The burst passes; the bucket refills one packet a second, so while
    // the replay takes less than that the rest are over the limit.
    for l in &lines[..2] {
        assert_eq!(
            (l["rule"].as_str(), l["action"].as_str()),
            (Some("dns"), Some("pass")),
            "{l}"
        );
        assert!(l.get("rate_limited").is_none(), "{l}");
    }
    for l in &lines[2..4] {
        assert_eq!(l["rule"], json!("dns"), "{l}");
        match l["action"].as_str() {
            Some("drop") => assert_eq!(l["rate_limited"], json!(true), "{l}"),
            Some("pass") => assert!(took >= Duration::from_secs(1), "{l} after {took:?}"),
            a => panic!("unexpected action {a:?}: {l}"),
        }
    }
    // The target does not exist here: replay stands in and says so.
    assert_eq!(
        lines[4],
        json!({"packet": 5, "rule": "mirror", "action": "redirect"})
    );
    assert!(
        out.stderr
            .contains("redirects to xwnothere0, which does not exist here")
            && out.stderr.contains("replay speed"),
        "{}",
        out.describe()
    );
    assert_eq!(
        lines[5]["totals"]["redirect"],
        json!(1),
        "{}",
        out.describe()
    );
}
