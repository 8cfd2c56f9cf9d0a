//! `xdpwall replay CONFIG FILE`: every packet through the real program.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::testrun::{MIN_FRAME, XDP_DROP};
use xdpwall_rules::compile::abi::MALFORMED_REASONS;
use xdpwall_rules::Verdict as CfgVerdict;

use crate::capture_file;
use crate::config::load_compiled;
use crate::exit::Failure;

fn action_name(xdp: u32) -> &'static str {
    match xdp {
        XDP_DROP => "drop",
        2 => "pass",
        0 => "aborted",
        3 => "tx",
        4 => "redirect",
        _ => "unknown",
    }
}

/// The reference classifier's verdict name.
fn reference_action(v: &xdpwall_reference::Verdict) -> &'static str {
    match v {
        xdpwall_reference::Verdict::Pass => "pass",
        xdpwall_reference::Verdict::Drop => "drop",
        xdpwall_reference::Verdict::Redirect(_) => "redirect",
        xdpwall_reference::Verdict::RateLimit => "rate_limit",
    }
}

/// Says on stderr how replay treats actions whose outcome depends on the
/// moment or the host: rate limits see the packets back to back, and
/// redirect targets need not exist here (nothing is transmitted).
fn note_stateful_actions(cfg: &xdpwall_rules::Config) {
    use xdpwall_rules::Action;
    if cfg
        .rules
        .iter()
        .any(|r| matches!(r.action, Action::RateLimit(_)))
    {
        eprintln!(
            "xdpwall: note: rate limits are judged at replay speed (packets back to back, \
             buckets starting full), not at the capture's timing"
        );
    }
    for r in &cfg.rules {
        if let Action::Redirect(ifname) = &r.action {
            if xdpwall_dataplane::instance::ifindex(ifname).is_err() {
                eprintln!(
                    "xdpwall: note: rule `{}` redirects to {ifname}, which does not exist here; \
                     replay shows its verdict as `redirect` anyway (nothing is sent)",
                    r.name
                );
            }
        }
    }
}

/// Replays `capture` against `config`, through the XDP program or, with
/// `reference`, through the pure-Rust reference classifier (no BPF, no root).
pub fn replay(config: &Path, capture: &Path, json_out: bool, reference: bool) -> Result<()> {
    let (cfg, compiled) = load_compiled(config)?;
    let cap = capture_file::read(capture).map_err(|e| Failure {
        code: 2,
        message: format!("{e:#}"),
    })?;
    let inst = if reference {
        None
    } else {
        note_stateful_actions(&cfg);
        let opts = LoadOptions {
            trace: true,
            stand_in_redirects: true,
            ..Default::default()
        };
        Some(load(&compiled, opts).context("cannot load the XDP program")?)
    };
    let malformed_action = if cfg.xdp.malformed == CfgVerdict::Drop {
        "drop"
    } else {
        "pass"
    };

    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, pkt) in cap.packets.iter().enumerate() {
        let n = i + 1;
        let mut limited = false;
        let (rule, action, malformed) = if pkt.len() < MIN_FRAME {
            // The kernel will not run XDP on less than an Ethernet header.
            (None, malformed_action, Some("truncated"))
        } else if let Some(inst) = &inst {
            let v = inst.test_run(pkt).with_context(|| format!("packet {n}"))?;
            limited = v.limited;
            let rule = v
                .rule
                .and_then(|r| compiled.rules.get(r as usize))
                .map(|r| r.name.as_str());
            let mal = v
                .malformed
                .and_then(|m| MALFORMED_REASONS.get(m as usize).copied());
            (rule, action_name(v.xdp), mal)
        } else {
            let o = xdpwall_reference::classify(&cfg, pkt);
            let rule = o
                .rule
                .and_then(|r| cfg.rules.get(r))
                .map(|r| r.name.as_str());
            let mal = o
                .malformed
                .and_then(|m| MALFORMED_REASONS.get(m as usize).copied());
            (rule, reference_action(&o.verdict), mal)
        };
        *totals.entry(action).or_default() += 1;
        if json_out {
            let mut o = json!({"packet": n, "rule": rule, "action": action});
            if let Some(m) = malformed {
                o["malformed"] = json!(m);
            }
            if limited {
                o["rate_limited"] = json!(true);
            }
            println!("{o}");
        } else {
            let what = match (rule, malformed) {
                (Some(r), _) if limited => format!("{r} (over the rate limit)"),
                (Some(r), _) => r.to_string(),
                (None, Some(m)) => format!("(malformed: {m})"),
                (None, None) => "(default)".to_string(),
            };
            println!("{n:>6}  len {:>5}  {action:<5}  {what}", pkt.len());
        }
    }
    if json_out {
        println!("{}", json!({ "totals": totals }));
    } else {
        let parts: Vec<String> = totals.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("{} packets: {}", cap.packets.len(), parts.join(", "));
    }
    if let Some(d) = cap.damage {
        return Err(Failure {
            code: 1,
            message: d,
        }
        .into());
    }
    Ok(())
}
