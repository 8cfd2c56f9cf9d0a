//! Reading an instance's counters (per-CPU values summed).

use libbpf_rs::{MapCore, MapFlags};
use xdpwall_rules::compile::abi;

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::pod::from_bytes;
use crate::skel::types;

/// Packets and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes (whole frame, all fragments of a multi-buffer frame).
    pub bytes: u64,
}

/// One rule's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStats {
    /// Rule name.
    pub name: String,
    /// Action name.
    pub action: &'static str,
    /// Counters: every packet the rule decided (or counted).
    pub counter: Counter,
    /// `rate_limit`: of those, the packets over the limit (dropped).
    pub limited: Counter,
    /// `redirect`: of those, the packets dropped for want of a target
    /// (the interface went away after load).
    pub redirect_errors: Counter,
}

/// A snapshot of all counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Per rule, in rule order.
    pub rules: Vec<RuleStats>,
    /// Default action name.
    pub default_action: &'static str,
    /// Packets the default action decided.
    pub default: Counter,
    /// Malformed packets by reason name (all reasons, zeros included).
    pub malformed: Vec<(&'static str, Counter)>,
    /// Malformed policy name.
    pub malformed_action: &'static str,
}

fn action_name(code: u32) -> &'static str {
    match code {
        abi::ACT_PASS => "pass",
        abi::ACT_DROP => "drop",
        abi::ACT_COUNT => "count",
        abi::ACT_REDIRECT => "redirect",
        abi::ACT_RATE_LIMIT => "rate_limit",
        _ => "unknown",
    }
}

fn verdict_name(xdp: u32) -> &'static str {
    if xdp == 1 {
        "drop"
    } else {
        "pass"
    }
}

fn percpu_sum(map: &libbpf_rs::MapHandle, name: &'static str, key: u32) -> Result<Counter> {
    let vals = map
        .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)
        .map_err(|source| Error::Map {
            op: "read",
            map: name,
            source,
        })?
        .unwrap_or_default();
    let mut c = Counter::default();
    for v in vals {
        if let Some(x) = from_bytes::<types::xw_counter>(&v) {
            c.packets += x.packets;
            c.bytes += x.bytes;
        }
    }
    Ok(c)
}

/// A rule's over-limit and redirect-error counters, summed over CPUs.
fn actstat_sum(inst: &Instance, rule: u32) -> Result<(Counter, Counter)> {
    let vals = inst
        .maps
        .actstats
        .lookup_percpu(&rule.to_ne_bytes(), MapFlags::ANY)
        .map_err(|source| Error::Map {
            op: "read",
            map: "xw_actstats",
            source,
        })?
        .unwrap_or_default();
    let (mut limited, mut redirect) = (Counter::default(), Counter::default());
    for v in vals {
        if let Some(x) = from_bytes::<types::xw_actstat>(&v) {
            limited.packets += x.limited;
            limited.bytes += x.limited_bytes;
            redirect.packets += x.redirect_err;
            redirect.bytes += x.redirect_err_bytes;
        }
    }
    Ok((limited, redirect))
}

/// Reads the rules from `xw_rules` (`info.nrules` of them when known).
pub(crate) fn rules(inst: &Instance, info: &types::xw_info) -> Result<Vec<types::xw_rule>> {
    let n = libbpf_rs::MapCore::max_entries(&inst.maps.rules);
    let n = if info.nrules > 0 {
        info.nrules.min(n)
    } else {
        n
    };
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let v = inst
            .maps
            .rules
            .lookup(&i.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| Error::Map {
                op: "read",
                map: "xw_rules",
                source,
            })?;
        if let Some(r) = v.and_then(|b| from_bytes::<types::xw_rule>(&b)) {
            out.push(r);
        }
    }
    // A table with no rules still has one (empty) slot: drop nameless ones.
    out.retain(|r| r.name[0] != 0);
    Ok(out)
}

/// Decodes a NUL-terminated ABI name.
#[must_use]
pub fn c_name(name: &[i8]) -> String {
    let bytes: Vec<u8> = name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The names of `inst`'s rules, by id.
///
/// # Errors
/// A map cannot be read.
pub fn rule_names(inst: &Instance) -> Result<Vec<String>> {
    Ok(rules(inst, &inst.info()?)?
        .iter()
        .map(|r| c_name(&r.name))
        .collect())
}

/// Reads every counter of `inst`.
///
/// # Errors
/// A map cannot be read.
pub fn read(inst: &Instance) -> Result<Stats> {
    let info = inst.info()?;
    let mut out = Stats {
        rules: Vec::new(),
        default_action: verdict_name(info.default_action),
        default: percpu_sum(&inst.maps.stats, "xw_stats", abi::STAT_DEFAULT)?,
        malformed: Vec::new(),
        malformed_action: verdict_name(info.malformed_action),
    };
    for r in &rules(inst, &info)? {
        let (limited, redirect_errors) = actstat_sum(inst, r.slot)?;
        out.rules.push(RuleStats {
            name: c_name(&r.name),
            action: action_name(r.action),
            counter: percpu_sum(&inst.maps.stats, "xw_stats", r.slot)?,
            limited,
            redirect_errors,
        });
    }
    for (i, reason) in abi::MALFORMED_REASONS.iter().enumerate() {
        out.malformed.push((
            reason,
            percpu_sum(&inst.maps.malformed, "xw_malformed", i as u32)?,
        ));
    }
    Ok(out)
}

/// The program's event counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounters {
    /// Events the program tried to emit.
    pub produced: u64,
    /// Of those, the ones that did not fit in the buffer.
    pub lost: u64,
    /// Wake-ups the program asked for (ring buffer).
    pub wakeups: u64,
    /// Capture-tap events tried.
    pub tap_produced: u64,
    /// Capture-tap events that did not fit.
    pub tap_lost: u64,
}

/// A per-CPU `u64` counter of `map` (named `name` in errors), summed.
pub(crate) fn percpu_u64(map: &libbpf_rs::MapHandle, name: &'static str, key: u32) -> Result<u64> {
    let vals = map
        .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)
        .map_err(|source| Error::Map {
            op: "read",
            map: name,
            source,
        })?
        .unwrap_or_default();
    Ok(vals
        .iter()
        .filter_map(|v| {
            v.get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_ne_bytes)
        })
        .sum())
}

/// Reads the event counters of `inst`.
///
/// # Errors
/// The map cannot be read.
pub fn events(inst: &Instance) -> Result<EventCounters> {
    Ok(EventCounters {
        produced: percpu_u64(&inst.maps.evstats, "xw_evstats", abi::EVS_PRODUCED)?,
        lost: percpu_u64(&inst.maps.evstats, "xw_evstats", abi::EVS_LOST)?,
        wakeups: percpu_u64(&inst.maps.evstats, "xw_evstats", abi::EVS_WAKEUPS)?,
        tap_produced: percpu_u64(&inst.maps.evstats, "xw_evstats", abi::EVS_TAP_PRODUCED)?,
        tap_lost: percpu_u64(&inst.maps.evstats, "xw_evstats", abi::EVS_TAP_LOST)?,
    })
}
