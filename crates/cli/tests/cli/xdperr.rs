//! XDP error counting follows `run`'s life: its tracepoint programs count
//! into the running program's map while `run` lives, are replaced by ones
//! for the new program on a reload (the map is shared, like the rule
//! counters), die with `run` (the counters stay, `stats` says nothing
//! counts them), and a restarted `run` counts again.

use xdpwall_dataplane::{attach, xdperr, Instance};
use xdpwall_lab::{require_root, Lab, LabOptions, IFNAME_B};

use crate::fixtures::{
    change_rules, config_dir, poll, stats_json, xdpwall_in, Running, Via, LAB_RULES, WAIT,
};

fn instance(lab: &Lab) -> Instance {
    lab.b()
        .ns()
        .run(|| attach::find(IFNAME_B))
        .expect("enter namespace b")
        .expect("find the instance")
}

/// Polls until `n` tracepoint programs count into `inst`'s map.
fn wait_counting(inst: &Instance, n: usize, what: &str) {
    poll(WAIT, what, || {
        let p = xdperr::counting_programs(inst).map_err(|e| e.to_string())?;
        if p.len() == n {
            Ok(())
        } else {
            Err(format!("{} counting programs: {p:?}", p.len()))
        }
    });
}

#[test]
fn xdp_errors_are_counted_while_run_lives_and_after_a_reload_or_restart() {
    if !require_root("xdp_errors_are_counted_while_run_lives_and_after_a_reload_or_restart") {
        return;
    }
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("lab");
    let (_d, cfg) = config_dir("xdperr", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    let first = instance(&lab);
    // xdp_exception and xdp_redirect_err.
    wait_counting(&first, 2, "run to attach its tracepoints");
    let s = stats_json(lab.b().ns(), Via::IpNetnsExec).expect("stats");
    assert_eq!(s["xdp_errors"]["counting"], true, "{s}");

    // A reload's program shares the counters; the old program's tracepoint
    // programs go and new ones (for the new program id) count.
    let old_tps = xdperr::counting_programs(&first).expect("counting programs");
    change_rules(&cfg);
    run.signal(libc::SIGHUP);
    run.wait_stderr("xdpwall: reloaded", WAIT);
    let second = instance(&lab);
    assert_ne!(second.prog_id, first.prog_id);
    poll(WAIT, "the reloaded program's own tracepoints", || {
        let p = xdperr::counting_programs(&second).map_err(|e| e.to_string())?;
        if p.len() == 2 && p.iter().all(|id| !old_tps.contains(id)) {
            Ok(())
        } else {
            Err(format!(
                "counting programs {p:?}, before the reload {old_tps:?}"
            ))
        }
    });

    // kill -9: the program and its counters stay, nothing counts them.
    run.signal(libc::SIGKILL);
    run.wait_exit(WAIT);
    wait_counting(&second, 0, "the tracepoints to die with run");
    let s = stats_json(lab.b().ns(), Via::Nsenter).expect("stats");
    assert_eq!(s["xdp_errors"]["counting"], false, "{s}");
    assert_eq!(s["xdp_errors"]["exception"], 0, "{s}");
    let text = xdpwall_in(lab.b().ns(), Via::IpNetnsExec, &["stats"]);
    text.assert_ok();
    assert!(
        text.stdout.contains("xdp errors: exception 0"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("not counting"), "{}", text.stdout);

    // A restarted run takes over and counts again.
    let mut again = Running::start(lab.b().ns(), &cfg, &[]);
    let third = instance(&lab);
    wait_counting(&third, 2, "the restarted run's tracepoints");
    let s = stats_json(lab.b().ns(), Via::IpNetnsExec).expect("stats");
    assert_eq!(s["xdp_errors"]["counting"], true, "{s}");
    again.signal(libc::SIGTERM);
    again.wait_exit(WAIT).assert_code(0);
    wait_counting(&third, 0, "the tracepoints to go with run");
}
