//! `xdpwall reload`: the control channel to `run` (under `ip netns exec` and
//! `nsenter --net`), config errors reported with the old rules in force,
//! reloads under traffic leaking nothing, and what happens after `kill -9`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use xdpwall_lab::{require_root, Lab, LabOptions, IFNAME_B};

use crate::fixtures::{
    assert_udp_arrives, assert_udp_dropped, change_rules, config_dir, link_show, listen_udp,
    prog_id_after, rule_packets, send_udp, stats_json, xdpwall_in, Running, Via, DROP_UDP,
    LAB_RULES, PASS_UDP, WAIT,
};

const BROKEN: &str = "[[rule]]\nname = \"x\"\nsrc = \"10.0.0.300/8\"\naction = \"drop\"\n";

/// LAB_RULES with DNS dropped and the high UDP ports passed.
const SWAPPED: &str = r#"[xdp]
default = "pass"

[[rule]]
name = "dns"
proto = "udp"
dport = 53
action = "drop"
"#;

fn lab() -> Lab {
    Lab::new(LabOptions::default()).expect("building the lab")
}

#[test]
fn reload_reports_errors_applies_changes_and_survives_kill_9() {
    if !require_root("reload_reports_errors_applies_changes_and_survives_kill_9") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("reload-cmd", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    let id1 = prog_id_after(&run.stderr(), "attached to").expect("program id");

    // Unchanged config, under `ip netns exec`: applied in place (nothing
    // but sets may differ), the same program stays.
    let reload = || {
        xdpwall_in(
            lab.b().ns(),
            Via::IpNetnsExec,
            &["reload", "--iface", IFNAME_B],
        )
    };
    let out = reload();
    out.assert_ok();
    assert!(out.stdout.contains("in place"), "{}", out.describe());
    assert_eq!(prog_id_after(&out.stdout, "reloaded"), Some(id1));
    // Changed rules: a new program.
    change_rules(&cfg);
    let out = reload();
    out.assert_ok();
    let id2 = prog_id_after(&out.stdout, "reloaded").expect("reload names the new program");
    assert_ne!(id1, id2, "{}", out.describe());
    assert_udp_dropped(&lab, DROP_UDP, 5);

    // A broken config, under `nsenter --net`, without --iface: exit 2 with
    // the error's location; the running rules stay.
    std::fs::write(&cfg, BROKEN).expect("write broken config");
    let out = xdpwall_in(lab.b().ns(), Via::Nsenter, &["reload"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains(&format!("{}:3:7:", cfg.display()))
            && out.stderr.contains("previous rules stay in force"),
        "{}",
        out.describe()
    );
    assert!(
        link_show(lab.b().ns()).contains(&format!("prog/xdp id {id2} ")),
        "a failed reload replaced the program"
    );
    assert_udp_dropped(&lab, DROP_UDP, 5);

    // A valid change applies at once.
    std::fs::write(&cfg, SWAPPED).expect("write changed config");
    xdpwall_in(lab.b().ns(), Via::IpNetnsExec, &["reload"]).assert_ok();
    assert_udp_arrives(&lab, DROP_UDP, 5);
    assert_udp_dropped(&lab, PASS_UDP, 7);
    let before = rule_packets(
        &stats_json(lab.b().ns(), Via::IpNetnsExec).expect("stats"),
        "dns",
    );
    assert!(before >= 7, "dns dropped {before}");

    // No xdpwall in namespace a: a clear error, not a hang.
    let out = xdpwall_in(lab.a().ns(), Via::IpNetnsExec, &["reload"]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(out.stderr.contains("not running"), "{}", out.describe());

    // After kill -9 the rules stay, nobody serves reload, and the message
    // says how to take over; a new run does, and the counters continue.
    run.signal(libc::SIGKILL);
    let _ = run.wait_exit(WAIT);
    let out = xdpwall_in(lab.b().ns(), Via::IpNetnsExec, &["reload"]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("no `xdpwall run` process serves") && out.stderr.contains("takes over"),
        "{}",
        out.describe()
    );
    assert_udp_dropped(&lab, PASS_UDP, 3);
    let mut run2 = Running::start(lab.b().ns(), &cfg, &[]);
    assert!(run2.stderr().contains("took over"), "{}", run2.stderr());
    let after = rule_packets(
        &stats_json(lab.b().ns(), Via::Nsenter).expect("stats"),
        "dns",
    );
    assert_eq!(
        after,
        before + 3,
        "counters continue across kill -9 and restart"
    );
    xdpwall_in(lab.b().ns(), Via::Nsenter, &["reload"]).assert_ok();
    run2.signal(libc::SIGTERM);
    run2.wait_exit(WAIT).assert_code(0);
}

/// Alternates two configs that both drop the high UDP ports and both pass
/// DNS, reloading through the control channel while a sender streams to
/// both: not one datagram to the dropped port may arrive, every reload
/// must succeed, and the drop rule's counter must keep growing across the
/// swaps (it is shared by every generation).
#[test]
fn reloads_under_traffic_leak_nothing() {
    if !require_root("reloads_under_traffic_leak_nothing") {
        return;
    }
    const RELOADS: usize = 10;
    let lab = lab();
    let (_dir, cfg) = config_dir("reload-traffic", LAB_RULES);
    // The second config reorders and renames around the kept rule.
    let alt = LAB_RULES.replace("name = \"ssh-drop\"", "name = \"ssh-drop-2\"")
        + "\n[[rule]]\nname = \"extra\"\nproto = \"sctp\"\naction = \"drop\"\n";
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    let dropped = listen_udp(&lab, DROP_UDP);
    let passed = listen_udp(&lab, PASS_UDP);

    let stop = AtomicBool::new(false);
    let (sent_drop, sent_pass) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut last = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                sent_drop.fetch_add(send_udp(&lab, DROP_UDP, 200), Ordering::Relaxed);
                sent_pass.fetch_add(send_udp(&lab, PASS_UDP, 20), Ordering::Relaxed);
            }
        });
        for i in 0..RELOADS {
            let text = if i % 2 == 0 { alt.as_str() } else { LAB_RULES };
            std::fs::write(&cfg, text).expect("write config");
            let out = xdpwall_in(lab.b().ns(), Via::IpNetnsExec, &["reload"]);
            if out.code() != Some(0) {
                stop.store(true, Ordering::Relaxed);
                panic!("reload {i} failed:\n{}", out.describe());
            }
            let now = rule_packets(
                &stats_json(lab.b().ns(), Via::IpNetnsExec).expect("stats"),
                "udp-high-drop",
            );
            if now < last {
                stop.store(true, Ordering::Relaxed);
                panic!("the drop counter went back from {last} to {now} at reload {i}");
            }
            last = now;
        }
        stop.store(true, Ordering::Relaxed);
    });
    // Everything sent before the marker went through XDP.
    assert_udp_dropped(&lab, DROP_UDP + 1, 5);
    let (sd, sp) = (
        sent_drop.load(Ordering::Relaxed),
        sent_pass.load(Ordering::Relaxed),
    );
    let counted = rule_packets(
        &stats_json(lab.b().ns(), Via::IpNetnsExec).expect("stats"),
        "udp-high-drop",
    );
    eprintln!(
        "{RELOADS} reloads: sent {sd} to the dropped port, {sp} to the passed one; \
         counted {counted} drops, {} passed datagrams arrived",
        passed.count()
    );
    assert!(
        counted > last && counted <= sd + 5,
        "counted {counted}, sent {sd}"
    );
    assert!(passed.count() > 0, "the passed flow never arrived");
    run.signal(libc::SIGTERM);
    run.wait_exit(WAIT).assert_code(0);
    assert_eq!(
        dropped.stop(),
        0,
        "datagrams to the dropped port {DROP_UDP} passed during reloads"
    );
}

/// A config whose only change is a set's entries is applied in place: the
/// same program (same id on the link) switches to the new set at once; a
/// rule change still brings a new program.
#[test]
fn set_changes_apply_in_place_without_a_new_program() {
    if !require_root("set_changes_apply_in_place_without_a_new_program") {
        return;
    }
    let lab = lab();
    let a = lab.a().ipv4();
    let rules = |port: u16| {
        format!(
            "[sets]\nblock = {{ file = \"block.txt\" }}\n\n\
             [[rule]]\nname = \"block\"\nsrc = \"@block\"\nproto = \"udp\"\ndport = {port}\naction = \"drop\"\n"
        )
    };
    let (dir, cfg) = config_dir("reload-sets", &rules(PASS_UDP));
    let set = dir.write("block.txt", "203.0.113.9\n");
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    let id = prog_id_after(&run.stderr(), "attached to").expect("program id");
    assert_udp_arrives(&lab, PASS_UDP, 3);

    std::fs::write(&set, format!("203.0.113.9\n{a}\n")).expect("write set");
    let out = xdpwall_in(lab.b().ns(), Via::IpNetnsExec, &["reload"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("sets updated in place")
            && out.stdout.contains(&format!("program id {id},")),
        "{}",
        out.describe()
    );
    assert!(link_show(lab.b().ns()).contains(&format!("prog/xdp id {id} ")));
    assert_udp_dropped(&lab, PASS_UDP, 5);

    // Back out of the set: passes again, still the same program.
    std::fs::write(&set, "203.0.113.9\n").expect("write set");
    xdpwall_in(lab.b().ns(), Via::Nsenter, &["reload"]).assert_ok();
    assert!(link_show(lab.b().ns()).contains(&format!("prog/xdp id {id} ")));
    assert_udp_arrives(&lab, PASS_UDP, 3);

    // A rule change needs a new program.
    std::fs::write(&cfg, rules(DROP_UDP)).expect("write config");
    let out = xdpwall_in(lab.b().ns(), Via::IpNetnsExec, &["reload"]);
    out.assert_ok();
    let id2 = prog_id_after(&out.stdout, "reloaded").expect("program id");
    assert_ne!(id2, id, "{}", out.describe());
    assert!(!out.stdout.contains("in place"), "{}", out.describe());
    run.signal(libc::SIGTERM);
    run.wait_exit(WAIT).assert_code(0);
}

/// `kill -9` in the middle of a stream, then a new `run`: the rules stay in
/// force while no process serves them, the new `run` takes the program over
/// atomically, and not one datagram to the dropped port gets through.
#[test]
fn kill_9_then_restart_under_traffic_leaks_nothing() {
    if !require_root("kill_9_then_restart_under_traffic_leaks_nothing") {
        return;
    }
    let lab = lab();
    let (_dir, cfg) = config_dir("reload-kill9", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    let dropped = listen_udp(&lab, DROP_UDP);
    let passed = listen_udp(&lab, PASS_UDP);
    let stop = AtomicBool::new(false);
    let sent_drop = AtomicU64::new(0);
    let mut run2 = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                sent_drop.fetch_add(send_udp(&lab, DROP_UDP, 50), Ordering::Relaxed);
                send_udp(&lab, PASS_UDP, 5);
            }
        });
        let flowing = |what: &str| {
            let at = passed.count();
            crate::fixtures::poll(WAIT, what, || {
                (passed.count() >= at + 20)
                    .then_some(())
                    .ok_or_else(|| passed.count().to_string())
            });
        };
        flowing("traffic before the kill");
        run.signal(libc::SIGKILL);
        let _ = run.wait_exit(WAIT);
        flowing("traffic with no run process");
        let run2 = Running::start(lab.b().ns(), &cfg, &[]);
        flowing("traffic after the restart");
        stop.store(true, Ordering::Relaxed);
        run2
    });
    assert!(run2.stderr().contains("took over"), "{}", run2.stderr());
    // Everything sent before the marker went through XDP.
    assert_udp_dropped(&lab, DROP_UDP + 1, 5);
    let counted = rule_packets(
        &stats_json(lab.b().ns(), Via::IpNetnsExec).expect("stats"),
        "udp-high-drop",
    );
    let sent = sent_drop.load(Ordering::Relaxed);
    assert!(
        sent > 0 && counted > 0 && counted <= sent + 5,
        "counted {counted}, sent {sent}"
    );
    run2.signal(libc::SIGTERM);
    run2.wait_exit(WAIT).assert_code(0);
    assert_eq!(
        dropped.stop(),
        0,
        "datagrams to the dropped port {DROP_UDP} passed across kill -9 and restart"
    );
}
