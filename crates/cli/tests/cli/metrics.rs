//! `run --metrics`: scraped from inside the namespace, counters checked,
//! format checked by promtool where installed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use xdpwall_lab::{require_root, Lab, LabOptions};

use crate::fixtures::{assert_udp_dropped, config_dir, poll, Running, DROP_UDP, LAB_RULES, WAIT};

fn scrape(lab: &Lab, addr: SocketAddr, path: &str) -> String {
    lab.b()
        .ns()
        .run(|| {
            let mut c = TcpStream::connect(addr).expect("connect to the metrics server");
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send request");
            let mut body = String::new();
            c.read_to_string(&mut body).expect("read response");
            body
        })
        .expect("enter namespace b")
}

#[test]
fn metrics_are_served_with_the_design_names_and_real_counts() {
    if !require_root("metrics_are_served_with_the_design_names_and_real_counts") {
        return;
    }
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("lab");
    let (_d, cfg) = config_dir("metrics", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &["--metrics", "127.0.0.1:0"]);
    let line = run.wait_stderr("metrics at http://", WAIT);
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    assert_udp_dropped(&lab, DROP_UDP, 7);
    let want = "xdpwall_rule_packets_total{rule=\"udp-high-drop\",action=\"drop\"} 7";
    let resp = poll(WAIT, "the drop counter in the scrape", || {
        let r = scrape(&lab, addr, "/metrics");
        if r.contains(want) {
            Ok(r)
        } else {
            Err(r)
        }
    });
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(
        resp.contains("Content-Type: text/plain; version=0.0.4"),
        "{resp}"
    );
    let body = resp.split("\r\n\r\n").nth(1).expect("a body");
    for name in [
        "xdpwall_rule_bytes_total{rule=\"udp-high-drop\",action=\"drop\"}",
        "xdpwall_default_packets_total{action=\"pass\"}",
        "xdpwall_malformed_packets_total{reason=\"truncated\"} 0",
        "xdpwall_events_total{transport=\"ringbuf\"}",
        "xdpwall_events_lost_total{transport=\"ringbuf\"} 0",
        "xdpwall_reloads_total{result=\"ok\"} 0",
        "xdpwall_xdp_mode{mode=\"native\"} 1",
        "xdpwall_xdp_errors_total{kind=\"exception\"} 0",
        "xdpwall_xdp_errors_total{kind=\"redirect_err\"} 0",
        "xdpwall_xdp_exceptions_total{action=\"aborted\"} 0",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
    assert!(
        scrape(&lab, addr, "/nope").starts_with("HTTP/1.1 404"),
        "unknown paths are 404"
    );

    // promtool, where installed (Debian's `prometheus` package).
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(body.as_bytes())
                .expect("feed promtool");
            let out = child.wait_with_output().expect("promtool runs");
            assert!(
                out.status.success(),
                "promtool check metrics failed:\n{}{}\n{body}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => eprintln!(
            "promtool not installed: the format is checked by the sinks crate's unit tests only"
        ),
    }
    run.signal(libc::SIGTERM);
    run.wait_exit(WAIT).assert_code(0);
}
