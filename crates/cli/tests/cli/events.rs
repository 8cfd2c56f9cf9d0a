//! `run --events`: real traffic in a lab, events read back from each sink.

use std::collections::BTreeSet;

use pcap_file::pcapng::{Block, PcapNgReader};
use serde_json::Value;
use xdpwall_lab::{require_root, Lab, LabOptions};

use crate::fixtures::{b_addr, config_dir, send_udp, Running, WAIT};

/// Drops UDP 15000 with a log (snaplen 64), passes the rest.
const RULES: &str = r#"
[events]
snaplen = 64

[[rule]]
name = "udp-drop-logged"
proto = "udp"
dport = 15000
action = "drop"
log = true
"#;

fn lab() -> Lab {
    Lab::new(LabOptions::default().ipv6(false)).expect("building the lab")
}

/// Sends `n` datagrams to the logged port, stops `run`, returns its output.
fn run_with(
    tag: &str,
    events: &str,
    n: usize,
) -> (crate::fixtures::Out, Lab, crate::fixtures::TempDir) {
    let lab = lab();
    let (dir, cfg) = config_dir(tag, RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &["--events", events]);
    assert_eq!(send_udp(&lab, 15_000, n), n as u64);
    // Wait until `run` has delivered them all (it publishes the count).
    crate::fixtures::poll(WAIT, "events delivered", || {
        let st = crate::fixtures::stats_json(lab.b().ns(), crate::fixtures::Via::IpNetnsExec)?;
        let d = st["events"]["delivered"].as_u64().unwrap_or(0);
        if d >= n as u64 {
            Ok(())
        } else {
            Err(format!("delivered {d} of {n}: {st}"))
        }
    });
    run.signal(libc::SIGTERM);
    let out = run.wait_exit(WAIT);
    out.assert_code(0);
    assert!(
        out.stderr
            .contains(&format!("events: produced {n}, delivered {n}, lost 0")),
        "{}",
        out.describe()
    );
    (out, lab, dir)
}

#[test]
fn events_as_json_lines_carry_the_documented_keys() {
    if !require_root("events_as_json_lines_carry_the_documented_keys") {
        return;
    }
    let (out, lab, _dir) = run_with("ev-json", "json", 5);
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(
        lines.len(),
        5,
        "one line per event, nothing else on stdout:\n{}",
        out.stdout
    );
    let dst = b_addr(&lab, 15_000);
    let mut sports = BTreeSet::new();
    for v in &lines {
        for key in [
            "ts", "iface", "rule", "action", "family", "proto", "src", "dst", "sport", "dport",
            "len", "cpu",
        ] {
            assert!(v.get(key).is_some(), "key {key} missing: {v}");
        }
        assert_eq!(v["rule"], "udp-drop-logged");
        assert_eq!(v["action"], "drop");
        assert_eq!(v["family"], "ipv4");
        assert_eq!(v["proto"], "udp");
        assert_eq!(v["dst"], dst.ip().to_string());
        assert_eq!(v["src"], lab.a().ipv4().to_string());
        assert_eq!(v["dport"], 15_000);
        assert_eq!(v["iface"], lab.b().ifname());
        assert!(
            v["ts"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.len() == 30),
            "{v}"
        );
        sports.insert(v["sport"].as_u64().expect("sport"));
    }
    assert!(!sports.is_empty());
}

#[test]
fn events_as_terminal_lines_look_like_tcpdump() {
    if !require_root("events_as_terminal_lines_look_like_tcpdump") {
        return;
    }
    let (out, lab, _dir) = run_with("ev-term", "-", 3);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let want = format!("> {}.15000: udp", lab.b().ipv4());
    for l in lines {
        assert!(
            l.contains("drop udp-drop-logged IP ") && l.contains(&want),
            "{l}"
        );
    }
}

#[test]
fn events_to_pcapng_open_with_comments_and_lengths() {
    if !require_root("events_to_pcapng_open_with_comments_and_lengths") {
        return;
    }
    let dir = crate::fixtures::TempDir::new("ev-pcapng-out");
    let file = dir.path().join("drops.pcapng");
    let (_out, lab, _cfgdir) = run_with("ev-pcapng", file.to_str().expect("utf-8 path"), 4);
    let mut rd = PcapNgReader::new(std::fs::File::open(&file).expect("pcapng written"))
        .expect("valid pcapng");
    let (mut idbs, mut epbs) = (0, 0);
    while let Some(b) = rd.next_block() {
        match b.expect("undamaged block") {
            Block::InterfaceDescription(_) => idbs += 1,
            Block::EnhancedPacket(p) => {
                epbs += 1;
                // Ethernet 14 + IPv4 20 + UDP 8 + 32-byte payload, 64 captured.
                assert_eq!(p.original_len, 74);
                assert_eq!(p.data.len(), 64);
                let comments: Vec<String> = p
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption::Comment(c) => {
                            Some(c.to_string())
                        }
                        _ => None,
                    })
                    .collect();
                assert_eq!(
                    comments,
                    vec!["rule=udp-drop-logged action=drop".to_string()]
                );
            }
            _ => {}
        }
    }
    assert_eq!(
        (idbs, epbs),
        (1, 4),
        "one interface block, one packet block per event"
    );
    drop(lab);
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok()
    {
        let o = std::process::Command::new("tshark")
            .args(["-r"])
            .arg(&file)
            .args(["-T", "fields", "-e", "frame.len", "-e", "frame.cap_len"])
            .output()
            .expect("tshark runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            text.lines().filter(|l| l.trim() == "74\t64").count(),
            4,
            "{text}"
        );
    } else {
        eprintln!("tshark not installed: skipping the tshark read-back");
    }
}

/// `capture` on an interface without XDP: a pass-through program for the
/// duration, `-c N` stops after N packets, nothing stays attached.
#[test]
fn capture_without_xdpwall_passes_through_and_cleans_up() {
    if !require_root("capture_without_xdpwall_passes_through_and_cleans_up") {
        return;
    }
    let lab = lab();
    let dir = crate::fixtures::TempDir::new("cap-pass");
    let file = dir.path().join("cap.pcapng");
    let mut cmd = lab.b().ns().command(env!("CARGO_BIN_EXE_xdpwall"));
    cmd.args(["capture", "--iface", lab.b().ifname(), "-c", "5", "-w"])
        .arg(&file);
    let mut cap = crate::fixtures::Running::spawn_command(cmd);
    cap.wait_stderr("listening on", WAIT);
    // The UDP listener proves the pass-through program passes.
    let rx = crate::fixtures::listen_udp(&lab, 5000);
    let sent = send_udp(&lab, 5000, 8);
    assert!(
        rx.wait_for(sent, WAIT),
        "pass-through must pass: {}/{sent}",
        rx.count()
    );
    let out = cap.wait_exit(WAIT);
    out.assert_code(0);
    assert!(
        out.stderr.contains("5 packets captured"),
        "{}",
        out.describe()
    );
    assert!(
        !crate::fixtures::link_has_xdp(lab.b().ns()),
        "pass-through left attached"
    );
    let mut rd = PcapNgReader::new(std::fs::File::open(&file).expect("written")).expect("pcapng");
    let mut n = 0;
    while let Some(b) = rd.next_block() {
        if let Block::EnhancedPacket(_) = b.expect("block") {
            n += 1;
        }
    }
    assert_eq!(n, 5, "-c 5 writes 5 packets");
}

/// `capture` on an interface where `run` filters: it taps the running
/// program (drops included, with their rule), over both transports, and
/// leaves `run` and its rules untouched.
#[test]
fn capture_taps_a_running_instance_over_both_transports() {
    if !require_root("capture_taps_a_running_instance_over_both_transports") {
        return;
    }
    let lab = lab();
    let (_d, cfg) = config_dir("cap-tap", RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &["--events", "json"]);
    for transport in ["ringbuf", "perfbuf"] {
        let mut cmd = lab.b().ns().command(env!("CARGO_BIN_EXE_xdpwall"));
        cmd.args([
            "capture",
            "--iface",
            lab.b().ifname(),
            "-c",
            "3",
            "--transport",
            transport,
        ]);
        let mut cap = crate::fixtures::Running::spawn_command(cmd);
        cap.wait_stderr("tapping the xdpwall program", WAIT);
        send_udp(&lab, 15_000, 6);
        let out = cap.wait_exit(WAIT);
        out.assert_code(0);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{transport}: {}", out.describe());
        assert!(
            lines.iter().all(|l| l.contains("drop udp-drop-logged")),
            "{transport}: {}",
            out.stdout
        );
    }
    assert!(
        crate::fixtures::link_has_xdp(lab.b().ns()),
        "run's program must stay attached"
    );
    run.signal(libc::SIGTERM);
    let out = run.wait_exit(WAIT);
    out.assert_code(0);
    assert_eq!(
        out.stdout.lines().count(),
        12,
        "run still got its own events:\n{}",
        out.describe()
    );
}
