//! Privileged lab tests: `run` on `xwb` in namespace b (started with
//! `ip netns exec`), real traffic from namespace a, `stats`/`detach` from
//! inside the namespaces. Each test builds its own lab; the `Running` guard
//! is declared after the lab so it is stopped before the namespaces go.
//!
//! Whether traffic was dropped is proven with listeners (and a marker
//! datagram), counts with `run`'s own final counters; `stats` from another
//! process is exercised in tests of its own.

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use xdpwall_lab::traffic::{ping, tcp_connect_attempts};
use xdpwall_lab::{require_root, Lab, LabOptions, IFNAME_A, IFNAME_B};

use crate::fixtures::{
    assert_udp_arrives, assert_udp_dropped, b_addr, ci, config_dir, link_has_xdp, link_show,
    listen_udp, poll, prog_id_after, rule, rule_packets, send_udp, stats_json, table_row,
    table_rules, wait_rule_packets, xdpwall_in, Out, Running, TempDir, Via, DROP_TCP, DROP_UDP,
    LAB_RULES, PASS_UDP, WAIT,
};

const TCP_TIMEOUT: Duration = Duration::from_millis(300);

fn lab() -> Lab {
    Lab::new(LabOptions::default()).expect("building the lab")
}

/// TCP connects to the dropped port: all must time out (SYN dropped, no
/// RST). connect_timeout < the SYN RTO, so exactly one SYN per attempt.
fn assert_tcp_dropped(lab: &Lab, attempts: usize) {
    let t = tcp_connect_attempts(lab.a().ns(), b_addr(lab, DROP_TCP), attempts, TCP_TIMEOUT)
        .expect("tcp connects");
    assert_eq!(
        t.timed_out, attempts,
        "TCP to {DROP_TCP} must be dropped: {t:?}"
    );
}

/// SIGTERMs `run`, expects a clean detach, returns its output.
fn stop(run: &mut Running) -> Out {
    run.signal(libc::SIGTERM);
    let out = run.wait_exit(WAIT);
    out.assert_code(0);
    assert!(
        out.stderr.contains(&format!("detached from {IFNAME_B}")),
        "{}",
        out.describe()
    );
    out
}

/// What [`mixed_traffic`] sent.
struct Sent {
    ssh: u64,
    dns: u64,
    pings: u64,
    high: u64,
}

/// From a to b: 2 TCP connects to 22 (dropped), 10 UDP to 53 (a listener
/// proves arrival), 3 pings (counted, passed), 5 UDP to 15000 (dropped).
fn mixed_traffic(lab: &Lab) -> Sent {
    assert_tcp_dropped(lab, 2);
    let dns = listen_udp(lab, PASS_UDP);
    let sent = send_udp(lab, PASS_UDP, 10);
    assert!(
        dns.wait_for(sent, WAIT),
        "only {}/{sent} UDP datagrams to {PASS_UDP} arrived",
        dns.count()
    );
    let p = ping(
        lab.a().ns(),
        IpAddr::V4(lab.b().ipv4()),
        3,
        Duration::from_secs(2),
    )
    .expect("ping");
    assert_eq!((p.sent, p.replies), (3, 3), "pings must pass");
    assert_udp_dropped(lab, DROP_UDP, 5);
    Sent {
        ssh: 2,
        dns: sent,
        pings: 3,
        high: 5,
    }
}

// (a) ---------------------------------------------------------------------

#[test]
fn run_filters_real_traffic_and_stats_elsewhere_fails_clearly() {
    if !require_root("run_filters_real_traffic_and_stats_elsewhere_fails_clearly") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("lab-traffic", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    let err = run.stderr();
    assert!(
        err.contains(&format!("attached to {IFNAME_B} (")) && err.contains("4 rules"),
        "{err}"
    );
    assert!(link_has_xdp(lab.b().ns()), "{}", link_show(lab.b().ns()));
    let sent = mixed_traffic(&lab);

    // From namespace a, where nothing runs: a clear failure, both ways in.
    for via in [Via::IpNetnsExec, Via::Nsenter] {
        let out = xdpwall_in(lab.a().ns(), via, &["stats", "--json"]);
        assert_eq!(out.code(), Some(1), "{via:?}\n{}", out.describe());
        assert!(
            out.stderr.contains("not running") && out.stderr.contains("namespace"),
            "{via:?}\n{}",
            out.describe()
        );
        assert!(out.stdout.is_empty(), "{}", out.describe());
    }
    let out = xdpwall_in(
        lab.a().ns(),
        Via::IpNetnsExec,
        &["stats", "--iface", IFNAME_A],
    );
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("not running") && out.stderr.contains(IFNAME_A),
        "{}",
        out.describe()
    );
    // xwb does not exist in a: the error names it.
    let out = xdpwall_in(
        lab.a().ns(),
        Via::IpNetnsExec,
        &["stats", "--iface", IFNAME_B],
    );
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    assert!(out.stderr.contains(IFNAME_B), "{}", out.describe());

    // The per-rule counts, from run's final counters.
    let out = stop(&mut run);
    let t = &out.stdout;
    assert_eq!(
        table_rules(t),
        ["count-icmp", "ssh-drop", "dns", "udp-high-drop"],
        "{t}"
    );
    assert_eq!(
        table_row(t, "ssh-drop"),
        Some(("drop".into(), sent.ssh)),
        "{t}"
    );
    assert_eq!(table_row(t, "dns"), Some(("pass".into(), sent.dns)), "{t}");
    assert_eq!(
        table_row(t, "count-icmp"),
        Some(("count".into(), sent.pings)),
        "{t}"
    );
    assert_eq!(
        table_row(t, "udp-high-drop"),
        Some(("drop".into(), sent.high)),
        "{t}"
    );
    let (action, default) = table_row(t, "(default)").expect("default row");
    assert_eq!(action, "pass", "{t}");
    assert!(
        default > sent.pings,
        "pings and the marker end at the default: {t}"
    );
}

/// Asserts the `stats --json` key schema of DESIGN.md.
fn assert_schema(s: &Value) {
    for k in ["iface", "mode", "transport"] {
        assert!(s[k].is_string(), "{k} missing: {s}");
    }
    let rules = s["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("rules not an array: {s}"));
    for r in rules {
        assert!(r["name"].is_string() && r["action"].is_string(), "{r}");
        assert!(r["packets"].is_u64() && r["bytes"].is_u64(), "{r}");
    }
    assert!(s["default"]["action"].is_string(), "{s}");
    assert!(
        s["default"]["packets"].is_u64() && s["default"]["bytes"].is_u64(),
        "{s}"
    );
    assert!(s["malformed"].is_object(), "{s}");
    assert!(
        s["events"]["delivered"].is_u64() && s["events"]["lost"].is_u64(),
        "{s}"
    );
    // Traffic the program passes or drops is no XDP error: all zero.
    for k in ["exception", "redirect_err", "redirect_map_err"] {
        assert_eq!(s["xdp_errors"][k].as_u64(), Some(0), "xdp_errors.{k}: {s}");
    }
    assert_eq!(
        s["xdp_errors"]["exception_by_action"]["aborted"].as_u64(),
        Some(0),
        "{s}"
    );
}

/// `run` with `extra` args, mixed traffic, then `stats --json` in b via
/// `ip netns exec` and via `nsenter --net`: same instance, exact counts.
fn stats_json_case(tag: &str, extra: &[&str], want_mode: Option<&str>) {
    let lab = lab();
    let (_dir, cfg) = config_dir(tag, LAB_RULES);
    let run = Running::start(lab.b().ns(), &cfg, extra);
    let err = run.stderr();
    let mode = ["native", "generic"]
        .into_iter()
        .find(|m| err.contains(&format!("({m} mode")))
        .unwrap_or_else(|| panic!("no mode in the attach line: {err}"));
    if let Some(w) = want_mode {
        assert_eq!(mode, w, "{err}");
    }
    let sent = mixed_traffic(&lab);

    for via in [Via::IpNetnsExec, Via::Nsenter] {
        let s = poll(
            WAIT,
            &format!("{via:?}: stats with all traffic counted"),
            || {
                let s = stats_json(lab.b().ns(), via)?;
                let done = rule_packets(&s, "ssh-drop") >= sent.ssh
                    && rule_packets(&s, "dns") >= sent.dns
                    && rule_packets(&s, "count-icmp") >= sent.pings
                    && rule_packets(&s, "udp-high-drop") >= sent.high;
                if done {
                    Ok(s)
                } else {
                    Err(s.to_string())
                }
            },
        );
        assert_schema(&s);
        assert_eq!(s["iface"], IFNAME_B, "{via:?}: {s}");
        assert_eq!(s["mode"], mode, "{via:?}: {s}");
        assert_eq!(s["transport"], "ringbuf", "{via:?}: {s}");
        let names: Vec<&str> = s["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(
            names,
            ["count-icmp", "ssh-drop", "dns", "udp-high-drop"],
            "{via:?}: {s}"
        );
        for (name, action, n) in [
            ("count-icmp", "count", sent.pings),
            ("ssh-drop", "drop", sent.ssh),
            ("dns", "pass", sent.dns),
            ("udp-high-drop", "drop", sent.high),
        ] {
            assert_eq!(rule(&s, name)["action"], action, "{via:?}: {s}");
            assert_eq!(rule_packets(&s, name), n, "{via:?} {name}: {s}");
        }
        // Ethernet 14 + IPv4 20 + UDP 8 + 32 bytes of payload.
        assert_eq!(
            rule(&s, "dns")["bytes"].as_u64(),
            Some(sent.dns * 74),
            "{via:?}: {s}"
        );
        assert!(
            rule(&s, "ssh-drop")["bytes"].as_u64().unwrap_or(0) >= sent.ssh * 54,
            "{s}"
        );
        assert_eq!(s["default"]["action"], "pass", "{s}");
        assert!(
            s["default"]["packets"].as_u64().unwrap_or(0) > sent.pings,
            "pings and marker: {s}"
        );
    }
    // The human table, from inside b.
    let out = xdpwall_in(lab.b().ns(), Via::Nsenter, &["stats"]);
    out.assert_ok();
    assert!(
        out.stdout.contains(&format!("{IFNAME_B} ({mode} mode)")),
        "{}",
        out.describe()
    );
    assert_eq!(
        table_row(&out.stdout, "ssh-drop"),
        Some(("drop".into(), sent.ssh)),
        "{}",
        out.stdout
    );
    drop(run);
}

#[test]
fn stats_json_via_ip_netns_exec_and_nsenter() {
    if !require_root("stats_json_via_ip_netns_exec_and_nsenter") {
        return;
    }
    stats_json_case("lab-stats", &[], None);
}

#[test]
fn stats_json_shows_generic_mode() {
    if !require_root("stats_json_shows_generic_mode") {
        return;
    }
    stats_json_case("lab-stats-generic", &["--mode", "generic"], Some("generic"));
}

// (b) ---------------------------------------------------------------------

#[test]
fn sigterm_detaches_and_prints_final_counters() {
    if !require_root("sigterm_detaches_and_prints_final_counters") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("lab-sigterm", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    assert!(link_has_xdp(lab.b().ns()), "{}", link_show(lab.b().ns()));
    assert_tcp_dropped(&lab, 2);

    let out = stop(&mut run);
    assert_eq!(
        table_row(&out.stdout, "ssh-drop"),
        Some(("drop".into(), 2)),
        "final counters\n{}",
        out.describe()
    );
    assert!(
        table_row(&out.stdout, "(default)").is_some(),
        "{}",
        out.describe()
    );

    assert!(
        !link_has_xdp(lab.b().ns()),
        "XDP still attached:\n{}",
        link_show(lab.b().ns())
    );
    for via in [Via::IpNetnsExec, Via::Nsenter] {
        let st = xdpwall_in(lab.b().ns(), via, &["stats"]);
        assert_eq!(st.code(), Some(1), "{}", st.describe());
        assert!(st.stderr.contains("not running"), "{}", st.describe());
    }
    // Nothing filters any more: the closed port answers with a RST.
    let t = tcp_connect_attempts(
        lab.a().ns(),
        b_addr(&lab, DROP_TCP),
        1,
        Duration::from_secs(2),
    )
    .expect("tcp");
    assert_eq!(t.refused, 1, "{t:?}");
}

#[test]
fn sigint_detaches_too() {
    if !require_root("sigint_detaches_too") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("lab-sigint", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    run.signal(libc::SIGINT);
    let out = run.wait_exit(WAIT);
    out.assert_code(0);
    assert!(out.stderr.contains("detached from"), "{}", out.describe());
    assert!(!link_has_xdp(lab.b().ns()), "{}", link_show(lab.b().ns()));
}

// (c) ---------------------------------------------------------------------

/// Starts `run`, proves it drops, kills it with SIGKILL.
fn run_then_kill_9(lab: &Lab, cfg: &std::path::Path) {
    let mut run = Running::start(lab.b().ns(), cfg, &[]);
    assert_udp_dropped(lab, DROP_UDP, 5);
    run.signal(libc::SIGKILL);
    let out = run.wait_exit(WAIT);
    assert_eq!(out.code(), None, "killed by a signal\n{}", out.describe());
}

#[test]
fn kill_9_leaves_rules_in_force_until_detach() {
    if !require_root("kill_9_leaves_rules_in_force_until_detach") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("lab-kill9", LAB_RULES);
    run_then_kill_9(&lab, &cfg);

    // Still attached, still dropping.
    assert!(
        link_has_xdp(lab.b().ns()),
        "program gone after kill -9:\n{}",
        link_show(lab.b().ns())
    );
    assert_udp_dropped(&lab, DROP_UDP, 10);
    assert_tcp_dropped(&lab, 1);
    assert_udp_arrives(&lab, PASS_UDP, 3);

    let out = xdpwall_in(
        lab.b().ns(),
        Via::IpNetnsExec,
        &["detach", "--iface", IFNAME_B],
    );
    out.assert_ok();
    assert!(
        out.stdout.contains("detached XDP program id"),
        "{}",
        out.describe()
    );
    assert!(!link_has_xdp(lab.b().ns()), "{}", link_show(lab.b().ns()));
    assert_udp_arrives(&lab, DROP_UDP, 5);

    // Nothing left to detach: a clear failure.
    let again = xdpwall_in(
        lab.b().ns(),
        Via::IpNetnsExec,
        &["detach", "--iface", IFNAME_B],
    );
    assert_eq!(again.code(), Some(1), "{}", again.describe());
    assert!(again.stderr.contains("not running"), "{}", again.describe());
}

#[test]
fn stats_still_works_after_kill_9() {
    if !require_root("stats_still_works_after_kill_9") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("lab-kill9-stats", LAB_RULES);
    run_then_kill_9(&lab, &cfg);
    assert_udp_dropped(&lab, DROP_UDP, 10);
    for via in [Via::IpNetnsExec, Via::Nsenter] {
        let s = wait_rule_packets(lab.b().ns(), via, "udp-high-drop", 15);
        assert_eq!(
            rule_packets(&s, "udp-high-drop"),
            15,
            "{via:?}: counters survive the process: {s}"
        );
    }
    xdpwall_in(lab.b().ns(), Via::Nsenter, &["detach", "--iface", IFNAME_B]).assert_ok();
    assert!(!link_has_xdp(lab.b().ns()));
}

// (d) ---------------------------------------------------------------------

/// Sets the flag when dropped, so a failing assertion inside a thread scope
/// stops the sender instead of hanging the scope's join.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn second_run_takes_over_without_unfiltered_window() {
    if !require_root("second_run_takes_over_without_unfiltered_window") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("lab-takeover", LAB_RULES);
    let mut run1 = Running::start(lab.b().ns(), &cfg, &[]);
    let id1 = prog_id_after(&run1.stderr(), "attached to").expect("program id of the first run");
    let dropped = listen_udp(&lab, DROP_UDP);
    let passed = listen_udp(&lab, PASS_UDP);

    // A steady stream to a dropped and a passed port across the takeover.
    let stop_flag = AtomicBool::new(false);
    let (sent_drop, sent_pass) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut run2 = std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop_flag);
        s.spawn(|| {
            while !stop_flag.load(Ordering::Relaxed) {
                sent_drop.fetch_add(send_udp(&lab, DROP_UDP, 20), Ordering::Relaxed);
                sent_pass.fetch_add(send_udp(&lab, PASS_UDP, 5), Ordering::Relaxed);
            }
        });
        poll(WAIT, "traffic flowing before the takeover", || {
            (passed.count() >= 50)
                .then_some(())
                .ok_or_else(|| passed.count().to_string())
        });
        let run2 = Running::start(lab.b().ns(), &cfg, &[]);
        let at = passed.count();
        poll(WAIT, "traffic flowing after the takeover", || {
            (passed.count() >= at + 50)
                .then_some(())
                .ok_or_else(|| passed.count().to_string())
        });
        run2
    });
    let err2 = run2.stderr();
    assert!(
        err2.contains(&format!("took over from xdpwall program id {id1}")),
        "the second run must say it took over program {id1}:\n{err2}"
    );
    let id2 = prog_id_after(&err2, "attached to").expect("program id of the second run");
    assert_ne!(id1, id2);
    assert!(
        run1.try_status().is_none(),
        "the first run must still be running"
    );
    let sent_drop = sent_drop.load(Ordering::Relaxed);
    assert!(sent_drop > 0 && sent_pass.load(Ordering::Relaxed) > 0);
    // Everything sent before the marker has been through XDP.
    assert_udp_dropped(&lab, DROP_UDP + 1, 5);

    // The first run sees another program and leaves it attached.
    run1.signal(libc::SIGTERM);
    let out1 = run1.wait_exit(WAIT);
    out1.assert_code(0);
    assert!(
        out1.stderr.contains("leaving it attached"),
        "{}",
        out1.describe()
    );
    assert!(
        link_has_xdp(lab.b().ns()),
        "the first run's exit removed the second's program"
    );
    assert_udp_dropped(&lab, DROP_UDP + 1, 5);

    let out2 = stop(&mut run2);
    assert!(!link_has_xdp(lab.b().ns()));
    // The second program shares the first one's counters (they follow rule
    // names across the takeover): run 1's final figure is part of run 2's.
    let (_, by1) = table_row(&out1.stdout, "udp-high-drop").expect("final counters of run 1");
    let (_, by2) = table_row(&out2.stdout, "udp-high-drop").expect("final counters of run 2");
    assert!(by1 > 0, "run 1 dropped nothing");
    assert!(
        by2 >= by1,
        "counters did not continue: run 1 ended at {by1}, run 2 at {by2}"
    );
    assert!(
        by2 <= sent_drop + 10,
        "{by2} counted > {sent_drop} sent (+10 marker checks)"
    );
    // Checked last, to give any leaked datagram every chance to be counted.
    assert_eq!(
        dropped.stop(),
        0,
        "datagrams to the dropped port {DROP_UDP} passed during the takeover"
    );
}

// (e) ---------------------------------------------------------------------

/// Builds a trivial XDP_PASS object named `foreign_pass`; None (after a
/// message) when clang-19 is missing and CI is not set.
pub(crate) fn foreign_object(dir: &TempDir, test: &str) -> Option<std::path::PathBuf> {
    let src = dir.write(
        "foreign.c",
        "__attribute__((section(\"xdp\"), used)) int foreign_pass(void *ctx) { return 2; /* XDP_PASS */ }\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    );
    let obj = dir.path().join("foreign.o");
    match Command::new("clang-19")
        .args(["-O2", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
    {
        Ok(o) if o.status.success() => Some(obj),
        Ok(o) => panic!("clang-19 failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ci() => {
            eprintln!("skipping {test}: clang-19 is not installed");
            None
        }
        Err(e) => panic!("cannot run clang-19: {e}"),
    }
}

/// Attaches the foreign object to xwb in generic mode with iproute2.
fn attach_foreign(lab: &Lab, obj: &std::path::Path) {
    let b = lab.b().ns();
    b.ip(&[
        "link",
        "set",
        "dev",
        IFNAME_B,
        "xdpgeneric",
        "obj",
        obj.to_str().expect("utf-8"),
        "sec",
        "xdp",
    ])
    .expect("attaching the foreign program");
    assert!(link_show(b).contains("foreign_pass"), "{}", link_show(b));
}

#[test]
fn run_force_replaces_a_foreign_program() {
    let test = "run_force_replaces_a_foreign_program";
    if !require_root(test) {
        return;
    }
    let dir = TempDir::new("foreign");
    let Some(obj) = foreign_object(&dir, test) else {
        return;
    };
    let lab = lab();
    let b = lab.b().ns();
    attach_foreign(&lab, &obj);
    let cfg = dir.write("rules.toml", LAB_RULES);

    // Without --force: refused, naming the program; it stays.
    let mut refused = Running::spawn(b, &cfg, &[]);
    let out = refused.wait_exit(WAIT);
    out.assert_code(1);
    assert!(
        out.stderr.contains("foreign_pass") && out.stderr.contains("--force"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("attached to"), "{}", out.describe());
    assert!(link_show(b).contains("foreign_pass"), "{}", link_show(b));
    // stats and detach do not mistake it for xdpwall.
    let st = xdpwall_in(b, Via::IpNetnsExec, &["stats", "--iface", IFNAME_B]);
    assert_eq!(st.code(), Some(1), "{}", st.describe());
    assert!(st.stderr.contains("foreign_pass"), "{}", st.describe());
    let de = xdpwall_in(b, Via::IpNetnsExec, &["detach", "--iface", IFNAME_B]);
    assert_eq!(de.code(), Some(1), "{}", de.describe());
    assert!(
        de.stderr.contains("foreign_pass") && de.stderr.contains("--force"),
        "{}",
        de.describe()
    );
    assert!(link_show(b).contains("foreign_pass"), "{}", link_show(b));

    // With --force: replaced, in the mode the foreign program used.
    let mut run = Running::start(b, &cfg, &["--force"]);
    assert!(run.stderr().contains("(generic mode"), "{}", run.stderr());
    let show = link_show(b);
    assert!(
        !show.contains("foreign_pass") && show.contains("xdpgeneric"),
        "{show}"
    );
    assert_tcp_dropped(&lab, 1);
    assert_udp_dropped(&lab, DROP_UDP, 3);
    stop(&mut run);
    assert!(!link_has_xdp(b), "{}", link_show(b));
}

#[test]
fn detach_force_removes_a_foreign_program() {
    let test = "detach_force_removes_a_foreign_program";
    if !require_root(test) {
        return;
    }
    let dir = TempDir::new("foreign-detach");
    let Some(obj) = foreign_object(&dir, test) else {
        return;
    };
    let lab = lab();
    attach_foreign(&lab, &obj);
    let out = xdpwall_in(
        lab.b().ns(),
        Via::Nsenter,
        &["detach", "--iface", IFNAME_B, "--force"],
    );
    out.assert_ok();
    assert!(!link_has_xdp(lab.b().ns()), "{}", link_show(lab.b().ns()));
}

#[test]
fn run_force_does_not_call_a_foreign_program_xdpwall() {
    let test = "run_force_does_not_call_a_foreign_program_xdpwall";
    if !require_root(test) {
        return;
    }
    let dir = TempDir::new("foreign-msg");
    let Some(obj) = foreign_object(&dir, test) else {
        return;
    };
    let lab = lab();
    attach_foreign(&lab, &obj);
    let cfg = dir.write("rules.toml", LAB_RULES);
    let run = Running::start(lab.b().ns(), &cfg, &["--force"]);
    let err = run.stderr();
    assert!(
        !err.contains("took over from xdpwall program"),
        "a foreign program is called xdpwall's:\n{err}"
    );
    drop(run);
}

// (f) ---------------------------------------------------------------------

#[test]
fn run_in_generic_mode() {
    if !require_root("run_in_generic_mode") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("lab-generic", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &["--mode", "generic"]);
    assert!(run.stderr().contains("(generic mode"), "{}", run.stderr());
    assert!(
        link_show(lab.b().ns()).contains("xdpgeneric"),
        "{}",
        link_show(lab.b().ns())
    );
    assert_tcp_dropped(&lab, 2);
    assert_udp_arrives(&lab, PASS_UDP, 5);
    assert_udp_dropped(&lab, DROP_UDP, 5);
    let out = stop(&mut run);
    assert!(
        out.stdout.contains(&format!("{IFNAME_B} (generic mode)")),
        "{}",
        out.describe()
    );
    assert_eq!(
        table_row(&out.stdout, "ssh-drop"),
        Some(("drop".into(), 2)),
        "{}",
        out.stdout
    );
    assert_eq!(
        table_row(&out.stdout, "dns"),
        Some(("pass".into(), 5)),
        "{}",
        out.stdout
    );
    assert_eq!(
        table_row(&out.stdout, "udp-high-drop"),
        Some(("drop".into(), 5)),
        "{}",
        out.stdout
    );
}

// (g) ---------------------------------------------------------------------

const BROKEN_RULES: &str = "[[rule]]\nname = \"x\"\nsrc = \"10.0.0.300/8\"\naction = \"drop\"\n";

/// The lab rules without udp-high-drop, and with DNS dropped.
const CHANGED_RULES: &str = r#"[xdp]
default = "pass"

[[rule]]
name = "ssh-drop"
proto = "tcp"
dport = 22
action = "drop"

[[rule]]
name = "dns-drop"
proto = "udp"
dport = 53
action = "drop"
"#;

#[test]
fn sighup_keeps_old_rules_on_error_and_applies_valid_changes() {
    if !require_root("sighup_keeps_old_rules_on_error_and_applies_valid_changes") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("lab-sighup", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    let id1 = prog_id_after(&run.stderr(), "attached to").expect("program id");
    assert_udp_dropped(&lab, DROP_UDP, 5);

    // A broken config: the error is logged with its location, the old
    // rules stay in force.
    std::fs::write(&cfg, BROKEN_RULES).expect("write broken config");
    run.signal(libc::SIGHUP);
    // Wait for the location itself: the message may arrive in pieces.
    let err = run.wait_stderr(&format!("{}:3:7:", cfg.display()), WAIT);
    assert!(
        err.contains("reload failed, the previous rules stay in force"),
        "{err}"
    );
    assert!(
        run.try_status().is_none(),
        "run must survive a broken reload"
    );
    assert!(
        link_show(lab.b().ns()).contains(&format!("prog/xdp id {id1} ")),
        "{}",
        link_show(lab.b().ns())
    );
    assert_udp_dropped(&lab, DROP_UDP, 5);
    assert_tcp_dropped(&lab, 1);
    assert_udp_arrives(&lab, PASS_UDP, 3);

    // A valid change: applied.
    std::fs::write(&cfg, CHANGED_RULES).expect("write changed config");
    run.signal(libc::SIGHUP);
    let err = run.wait_stderr("xdpwall: reloaded", WAIT);
    let id2 = prog_id_after(&err, "reloaded").expect("new program id");
    assert!(
        link_show(lab.b().ns()).contains(&format!("prog/xdp id {id2} ")),
        "{}",
        link_show(lab.b().ns())
    );
    assert_udp_arrives(&lab, DROP_UDP, 5);
    assert_udp_dropped(&lab, PASS_UDP, 5);
    assert_tcp_dropped(&lab, 1);
    assert!(run.try_status().is_none());
    let out = stop(&mut run);
    assert_eq!(
        table_rules(&out.stdout),
        ["ssh-drop", "dns-drop"],
        "{}",
        out.stdout
    );
    assert_eq!(
        table_row(&out.stdout, "dns-drop"),
        Some(("drop".into(), 5)),
        "{}",
        out.stdout
    );
    assert!(!link_has_xdp(lab.b().ns()));
}

#[test]
fn sighup_reload_keeps_counters_of_rules_by_name() {
    if !require_root("sighup_reload_keeps_counters_of_rules_by_name") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("lab-sighup-counters", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    assert_tcp_dropped(&lab, 2);
    std::fs::write(&cfg, CHANGED_RULES).expect("write changed config");
    run.signal(libc::SIGHUP);
    run.wait_stderr("xdpwall: reloaded", WAIT);
    assert_tcp_dropped(&lab, 1);
    // DESIGN.md: "counters follow the name across reloads": 2 before + 1 after.
    let out = stop(&mut run);
    assert_eq!(
        table_row(&out.stdout, "ssh-drop"),
        Some(("drop".into(), 3)),
        "ssh-drop lost its count:\n{}",
        out.stdout
    );
}

// (i) ---------------------------------------------------------------------

/// XDP multi-buffer: on a 9000-MTU veth the program attaches natively (it is
/// loaded with frags support) and judges 8,900-byte datagrams, counting the
/// whole frame's bytes.
#[test]
fn jumbo_frames_are_judged_natively_with_frags() {
    if !require_root("jumbo_frames_are_judged_natively_with_frags") {
        return;
    }
    let lab = Lab::new(LabOptions::default().mtu(9000).ipv6(false)).expect("building the lab");
    let (_dir, cfg) = config_dir("lab-jumbo", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &["--mode", "native"]);
    assert!(run.stderr().contains("native mode"), "{}", run.stderr());

    let dns = listen_udp(&lab, PASS_UDP);
    let payload = 8900;
    let sent =
        xdpwall_lab::traffic::udp_send(lab.a().ns(), None, b_addr(&lab, PASS_UDP), 5, payload)
            .expect("udp_send") as u64;
    assert_eq!(sent, 5);
    assert!(
        dns.wait_for(5, WAIT),
        "only {}/5 jumbo datagrams arrived",
        dns.count()
    );
    let big_drop =
        xdpwall_lab::traffic::udp_send(lab.a().ns(), None, b_addr(&lab, DROP_UDP), 3, payload)
            .expect("udp_send") as u64;
    assert_eq!(big_drop, 3);
    drop(dns);

    let out = stop(&mut run);
    // Ethernet 14 + IPv4 20 + UDP 8 + payload: one frame each, not fragmented.
    let frame = 14 + 20 + 8 + payload as u64;
    let (action, packets) = table_row(&out.stdout, "dns").expect("dns row");
    assert_eq!(
        (action.as_str(), packets),
        ("pass", 5),
        "{}",
        out.describe()
    );
    let (action, packets) = table_row(&out.stdout, "udp-high-drop").expect("drop row");
    assert_eq!(
        (action.as_str(), packets),
        ("drop", 3),
        "{}",
        out.describe()
    );
    let bytes_line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("dns "))
        .expect("dns line");
    assert!(
        bytes_line
            .split_whitespace()
            .any(|w| w == (5 * frame).to_string()),
        "dns bytes should be 5 x {frame}: {bytes_line}"
    );
}
